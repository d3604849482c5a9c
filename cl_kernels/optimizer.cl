/* Optimizer steps and gradient-norm clipping over flat parameter buffers.
 *
 * Every step kernel comes twice: one work-item per parameter (GPUs), and `_rows` for CPU
 * devices, a contiguous span of `span` parameters per work-item: a plain loop that LLVM
 * vectorises, and a few hundred work-items rather than one per parameter (PoCL schedules
 * work-groups one by one: LeNet's 3.3M parameters were 12.8k work-groups of 256).
 *
 * The gradient is read as grad * gs[0] when `scaled` is set: gs is what clip_coef wrote, so
 * clipping never rewrites the gradients. */

#define GSCALE(gs, scaled) ((scaled) ? (gs)[0] : 1.0f)

/* The items past the last span return (the launch is rounded up; i0 must not overflow). */
#define SPAN_GUARD(n, span)                                                                                 \
    if ((int)get_global_id(0) >= (n) / (span) + ((n) % (span) != 0)) return

/* SGD as torch.optim.SGD (dampening 0):
 *   g = grad * s + wd * w;  v = momentum * v + g;  step = nesterov ? g + momentum * v : v;  w -= lr * step
 * With momentum 0, step = g and v is neither read nor written (it may be a dummy). */
__kernel void sgd_step(const int n, __global float *w, const int wo, __global const float *grad, const int go,
                       __global float *v, const int vo, const float lr, const float momentum,
                       const float weight_decay, const int nesterov, __global const float *gs, const int scaled)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    const float wi = w[wo + i];
    const float g = mad(weight_decay, wi, grad[go + i] * GSCALE(gs, scaled));
    if (momentum == 0.0f) {
        w[wo + i] = wi - lr * g;
        return;
    }
    const float vn = mad(momentum, v[vo + i], g);
    v[vo + i] = vn;
    w[wo + i] = wi - lr * (nesterov ? mad(momentum, vn, g) : vn);
}

__kernel void sgd_step_rows(const int n, __global float *restrict w, const int wo, __global const float *restrict grad,
                            const int go, __global float *restrict v, const int vo, const float lr,
                            const float momentum, const float weight_decay, const int nesterov,
                            __global const float *gs, const int scaled, const int span)
{
    SPAN_GUARD(n, span);
    const int i0 = get_global_id(0) * span;
    const int i1 = min(n, i0 + span);
    const float s = GSCALE(gs, scaled);
    __global float *wp = w + wo;
    __global const float *gp = grad + go;
    __global float *vp = v + vo;
    if (momentum == 0.0f) {
        for (int i = i0; i < i1; i++) {
            const float wi = wp[i];
            wp[i] = wi - lr * mad(weight_decay, wi, gp[i] * s);
        }
    } else if (nesterov) {
        for (int i = i0; i < i1; i++) {
            const float wi = wp[i], g = mad(weight_decay, wi, gp[i] * s), vn = mad(momentum, vp[i], g);
            vp[i] = vn;
            wp[i] = wi - lr * mad(momentum, vn, g);
        }
    } else {
        for (int i = i0; i < i1; i++) {
            const float wi = wp[i], vn = mad(momentum, vp[i], mad(weight_decay, wi, gp[i] * s));
            vp[i] = vn;
            wp[i] = wi - lr * vn;
        }
    }
}

/* Adam (decay = 1) and AdamW (weight_decay = 0, decay = 1 - lr * wd) as torch.optim's
 * single-tensor code, amsgrad off:
 *   w *= decay;  g = grad * s + weight_decay * w;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   w -= step_size * m / (sqrt(v) / bc2_sqrt + eps)
 * step_size = lr / (1 - b1^t) and bc2_sqrt = sqrt(1 - b2^t) come from the host (double). */
inline void adam_one(__global float *w, __global const float *grad, __global float *m, __global float *v,
                     const float s, const float beta1, const float beta2, const float eps, const float weight_decay,
                     const float decay, const float step_size, const float bc2_sqrt)
{
    const float wi = *w * decay;
    const float g = mad(weight_decay, wi, *grad * s);
    const float mi = mad(beta1, *m, (1.0f - beta1) * g);
    const float vi = mad(beta2, *v, (1.0f - beta2) * g * g);
    *m = mi;
    *v = vi;
    *w = wi - step_size * (mi / (sqrt(vi) / bc2_sqrt + eps));
}

__kernel void adam_step(const int n, __global float *w, const int wo, __global const float *grad, const int go,
                        __global float *m, const int mo, __global float *v, const int vo, const float beta1,
                        const float beta2, const float eps, const float weight_decay, const float decay,
                        const float step_size, const float bc2_sqrt, __global const float *gs, const int scaled)
{
    const int i = get_global_id(0);
    if (i < n)
        adam_one(w + wo + i, grad + go + i, m + mo + i, v + vo + i, GSCALE(gs, scaled), beta1, beta2, eps,
                 weight_decay, decay, step_size, bc2_sqrt);
}

__kernel void adam_step_rows(const int n, __global float *restrict w, const int wo, __global const float *restrict grad,
                             const int go, __global float *restrict m, const int mo, __global float *restrict v,
                             const int vo, const float beta1, const float beta2, const float eps,
                             const float weight_decay, const float decay, const float step_size, const float bc2_sqrt,
                             __global const float *gs, const int scaled, const int span)
{
    SPAN_GUARD(n, span);
    const int i0 = get_global_id(0) * span;
    const int i1 = min(n, i0 + span);
    const float s = GSCALE(gs, scaled);
    for (int i = i0; i < i1; i++)
        adam_one(w + wo + i, grad + go + i, m + mo + i, v + vo + i, s, beta1, beta2, eps, weight_decay, decay,
                 step_size, bc2_sqrt);
}

/* ------------------------------------------------------------------ gradient norm */

/* Partial sums of x^2, each in a fixed order so that the norm is the same on every run.
 * CPU devices: a work-item per span of `span` floats, summed in 32 float lanes (each lane
 * adds span/32 squares: the float error stays near 1e-7 relative), part[po + item]. */
__kernel void sum_squares_rows(const int n, __global const float *x, const int xo, __global float *part, const int po,
                               const int span)
{
    SPAN_GUARD(n, span);
    const int i0 = get_global_id(0) * span;
    const int i1 = min(n, i0 + span);
    __global const float *p = x + xo;
    float16 a0 = 0, a1 = 0;
    float tail = 0.0f;
    int i = i0;
    for (; i + 32 <= i1; i += 32) {
        const float16 u = vload16(0, p + i), w = vload16(1, p + i);
        a0 = mad(u, u, a0);
        a1 = mad(w, w, a1);
    }
    for (; i < i1; i++) tail = mad(p[i], p[i], tail);
    a0 += a1;
    const float8 h8 = a0.lo + a0.hi;
    const float4 h4 = h8.lo + h8.hi;
    part[po + get_global_id(0)] = (h4.x + h4.y) + (h4.z + h4.w) + tail;
}

/* Elsewhere: work-groups of a power-of-two size (at most SUMSQ_WG) stride over x, then add
 * their items' sums as a tree in local memory: part[po + group]. */
#define SUMSQ_WG 256
__kernel void sum_squares_wg(const int n, __global const float *x, const int xo, __global float *part, const int po)
{
    __local float acc[SUMSQ_WG];
    const int lid = get_local_id(0), l = get_local_size(0), stride = get_global_size(0);
    float s = 0.0f;
    for (int i = get_global_id(0); i < n; i += stride) s = mad(x[xo + i], x[xo + i], s);
    acc[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = l / 2; h > 0; h >>= 1) {
        if (lid < h) acc[lid] += acc[lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) part[po + get_group_id(0)] = acc[0];
}

/* One work-group: the np partial sums -> norm = sqrt(sum) and the factor of
 * torch.nn.utils.clip_grad_norm_, min(1, max_norm / (norm + 1e-6)) (1 when max_norm <= 0).
 * gs[0] = factor, gs[1] = norm. A NaN norm gives a NaN factor, as torch's clamp does. */
__kernel void clip_coef(const int np, __global const float *part, const int po, const float max_norm,
                        __global float *gs)
{
    __local float acc[SUMSQ_WG];
    const int lid = get_local_id(0), l = get_local_size(0);
    float s = 0.0f;
    for (int i = lid; i < np; i += l) s += part[po + i];
    acc[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = l / 2; h > 0; h >>= 1) {
        if (lid < h) acc[lid] += acc[lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        const float norm = sqrt(acc[0]);
        const float c = max_norm / (norm + 1e-6f);
        gs[0] = max_norm <= 0.0f ? 1.0f : c >= 1.0f ? 1.0f : c;
        gs[1] = norm;
    }
}
