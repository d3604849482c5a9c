/* Activations, forward and backward, one kernel per function so that each inner loop is
 * branch-free and vectorises on CPU devices. In the expressions, X is the input element,
 * Y the output element, G the incoming gradient and slope the leaky slope. */

#define X LDX(xo + i, x)
#define Y LDY(yo + i, y)
#define G dy[dyo + i]

#define ACT_KERNELS(NAME, FWD, BWD)                                                              \
    __kernel void NAME##_forward(const int n, __global const X_T *x, const int xo,               \
                                 __global Y_T *y, const int yo, const float slope)               \
    {                                                                                            \
        const int i = get_global_id(0);                                                          \
        if (i < n) STY((FWD), yo + i, y);                                                        \
    }                                                                                            \
    __kernel void NAME##_backward(const int n, __global const X_T *x, const int xo,              \
                                  __global const Y_T *y, const int yo,                           \
                                  __global const float *dy, const int dyo,                       \
                                  __global float *dx, const int dxo, const float slope)          \
    {                                                                                            \
        const int i = get_global_id(0);                                                          \
        if (i < n) dx[dxo + i] = (BWD);                                                          \
    }

/* f(x) = max(0, x), NaN kept (as PyTorch); f' = [x > 0] */
ACT_KERNELS(relu, select(X, 0.0f, X < 0.0f), select(0.0f, G, X > 0.0f))
/* f(x) = 1 / (1 + exp(-x)); f' = y (1 - y) */
ACT_KERNELS(sigmoid, 1.0f / (1.0f + exp(-X)), G * Y * (1.0f - Y))
/* f(x) = tanh(x); f' = 1 - y^2 */
ACT_KERNELS(tanh, tanh(X), G * (1.0f - Y * Y))
/* f(x) = x Phi(x), exact erf form as torch.nn.GELU(); f' = Phi(x) + x phi(x) */
ACT_KERNELS(gelu, 0.5f * X * (1.0f + erf(X * 0.70710678118654752f)),
            G * (0.5f * (1.0f + erf(X * 0.70710678118654752f)) + X * 0.39894228040143268f * exp(-0.5f * X * X)))
/* f(x) = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), written as x s with
 * s = 1 / (1 + exp(-2u)) (the same function: 1 + tanh(u) = 2 s), which keeps its relative
 * accuracy for x < 0 where 1 + tanh(u) cancels; f' = s + x s (1 - s) 2 u' */
#define GT_U(x) (0.7978845608028654f * ((x) + 0.044715f * (x) * (x) * (x)))
#define GT_S(x) (1.0f / (1.0f + exp(-2.0f * GT_U(x))))
ACT_KERNELS(gelu_tanh, X * GT_S(X),
            G * (GT_S(X) + X * GT_S(X) * (1.0f - GT_S(X)) * 1.5957691216057308f * (1.0f + 0.134145f * X * X)))
/* f(x) = x > 0 ? x : slope x */
ACT_KERNELS(leaky, select(slope * X, X, X > 0.0f), select(slope * G, G, X > 0.0f))
/* f(x) = x */
ACT_KERNELS(linear, X, G)
