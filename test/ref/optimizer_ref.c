/* torch.optim's steps and torch.nn.utils.clip_grad_norm_, written as their documentation
 * states them, in double with float storage. */
#include <math.h>

#include "ref.h"

void sgd_step_ref(float *w, const float *g, float *v, size_t n, float lr, float momentum, float wd, int nesterov)
{
    sgd_step_scaled_ref(w, g, v, n, lr, momentum, wd, nesterov, 1.0f);
}

void sgd_step_scaled_ref(float *w, const float *g, float *v, size_t n, float lr, float momentum, float wd,
                         int nesterov, float gscale)
{
    for (size_t i = 0; i < n; i++) {
        double d = (double)(g[i] * gscale) + (double)wd * w[i];
        if (momentum != 0.0f) {
            v[i] = (float)((double)momentum * v[i] + d);
            d = nesterov ? d + (double)momentum * v[i] : v[i];
        }
        w[i] = (float)(w[i] - (double)lr * d);
    }
}

void adam_step_ref(float *w, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                   float eps, float wd, int decoupled, uint64_t step, float gscale)
{
    const double bc1 = 1.0 - pow(beta1, (double)step), bc2 = 1.0 - pow(beta2, (double)step);
    for (size_t i = 0; i < n; i++) {
        double wi = w[i], gi = (double)(g[i] * gscale);
        if (decoupled)
            wi *= 1.0 - (double)lr * wd;
        else
            gi += (double)wd * wi;
        const double mi = (double)beta1 * m[i] + (1.0 - beta1) * gi;
        const double vi = (double)beta2 * v[i] + (1.0 - beta2) * gi * gi;
        m[i] = (float)mi;
        v[i] = (float)vi;
        w[i] = (float)(wi - (double)lr / bc1 * mi / (sqrt(vi) / sqrt(bc2) + eps));
    }
}

double sum_squares_ref(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

double clip_coef_ref(double norm, double max_norm)
{
    if (max_norm <= 0) return 1.0;
    const double c = max_norm / (norm + 1e-6);
    return c < 1.0 ? c : 1.0;
}
