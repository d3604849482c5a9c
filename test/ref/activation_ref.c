/* Activations and their derivatives by formula, in double. Indices follow op_act. */
#include <math.h>

#include "ref.h"

float activation_ref(int act, float slope, float xf)
{
    double x = xf;
    switch (act) {
    case 1: return (float)(x < 0 ? 0 : x);                             /* relu (NaN kept) */
    case 2: return (float)(1 / (1 + exp(-x)));                          /* sigmoid */
    case 3: return (float)tanh(x);                                      /* tanh */
    case 4: return (float)(0.5 * x * (1 + erf(x / sqrt(2.0))));         /* gelu */
    case 5: return (float)(x > 0 ? x : slope * x);                      /* leaky */
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
    default: return 1.0f;
    }
}
