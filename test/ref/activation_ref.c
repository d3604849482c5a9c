/* Activations and their derivatives by formula, in double. Indices follow op_act. */
#include <math.h>

#include "ref.h"

/* GPT-2's GELU: 0.5 x (1 + tanh(u)) with this u */
static double gelu_tanh_u(double x) { return sqrt(2 / M_PI) * (x + 0.044715 * x * x * x); }

float activation_ref(int act, float slope, float xf)
{
    double x = xf;
    switch (act) {
    case 1: return (float)(x < 0 ? 0 : x);                             /* relu (NaN kept) */
    case 2: return (float)(1 / (1 + exp(-x)));                          /* sigmoid */
    case 3: return (float)tanh(x);                                      /* tanh */
    case 4: return (float)(0.5 * x * (1 + erf(x / sqrt(2.0))));         /* gelu */
    case 5: return (float)(x > 0 ? x : slope * x);                      /* leaky */
    case 6: return (float)(0.5 * x * (1 + tanh(gelu_tanh_u(x))));       /* gelu_tanh */
    default: return xf;                                                 /* linear */
    }
}

float activation_grad_ref(int act, float slope, float xf)
{
    double x = xf, s;
    switch (act) {
    case 1: return x > 0 ? 1.0f : 0.0f;
    case 2: s = 1 / (1 + exp(-x)); return (float)(s * (1 - s));
    case 3: s = tanh(x); return (float)(1 - s * s);
    case 4: return (float)(0.5 * (1 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2 * M_PI));
    case 5: return x > 0 ? 1.0f : slope;
    case 6:
        s = tanh(gelu_tanh_u(x));
        return (float)(0.5 * (1 + s) + 0.5 * x * (1 - s * s) * sqrt(2 / M_PI) * (1 + 3 * 0.044715 * x * x));
    default: return 1.0f;
    }
}
