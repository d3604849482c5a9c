/* Batch normalisation by definition (PyTorch's nn.BatchNorm1d/2d in training and eval mode),
 * over [outer][c][inner], every sum in double. */
#include <math.h>

#include "ref.h"

#define AT(o, ch, i) (((size_t)(o) * c + (ch)) * inner + (i))

static float act_ref(double v, int relu) { return (float)(relu && v < 0 ? 0.0 : v); }

void batchnorm_forward_train_ref(const float *x, float *y, int outer, int c, int inner, const float *gamma,
                                 const float *beta, float eps, float momentum, float *running_mean, float *running_var,
                                 float *save_mean, float *save_invstd, int relu)
{
    const double m = (double)outer * inner;
    for (int ch = 0; ch < c; ch++) {
        double sum = 0, sq = 0;
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++) sum += x[AT(o, ch, i)];
        const double mean = sum / m;
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++) sq += (x[AT(o, ch, i)] - mean) * (x[AT(o, ch, i)] - mean);
        const double var = sq / m, invstd = 1 / sqrt(var + eps);
        const double g = gamma ? gamma[ch] : 1, b = beta ? beta[ch] : 0;
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++) y[AT(o, ch, i)] = act_ref((x[AT(o, ch, i)] - mean) * invstd * g + b, relu);
        if (save_mean) save_mean[ch] = (float)mean;
        if (save_invstd) save_invstd[ch] = (float)invstd;
        if (running_mean) {
            running_mean[ch] = (float)((1 - momentum) * running_mean[ch] + momentum * mean);
            running_var[ch] = (float)((1 - momentum) * running_var[ch] + momentum * sq / (m - 1));
        }
    }
}

void batchnorm_forward_eval_ref(const float *x, float *y, int outer, int c, int inner, const float *gamma,
                                const float *beta, const float *running_mean, const float *running_var, float eps,
                                int relu)
{
    for (int ch = 0; ch < c; ch++) {
        const double invstd = 1 / sqrt((double)running_var[ch] + eps), g = gamma ? gamma[ch] : 1,
                     b = beta ? beta[ch] : 0;
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
                y[AT(o, ch, i)] = act_ref((x[AT(o, ch, i)] - (double)running_mean[ch]) * invstd * g + b, relu);
    }
}

void batchnorm_backward_ref(const float *x, const float *y, const float *dy, float *dx, int outer, int c, int inner,
                            const float *gamma, const float *save_mean, const float *save_invstd, float *dgamma,
                            float *dbeta, int relu)
{
    const double m = (double)outer * inner;
    for (int ch = 0; ch < c; ch++) {
        const double mean = save_mean[ch], invstd = save_invstd[ch], g = gamma ? gamma[ch] : 1;
        double sdz = 0, sdzxh = 0;
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++) {
                const size_t at = AT(o, ch, i);
                const double dz = relu && !(y[at] > 0) ? 0 : dy[at];
                sdz += dz;
                sdzxh += dz * (x[at] - mean) * invstd;
            }
        if (dbeta) dbeta[ch] = (float)sdz;
        if (dgamma) dgamma[ch] = (float)sdzxh;
        for (int o = 0; dx && o < outer; o++)
            for (int i = 0; i < inner; i++) {
                const size_t at = AT(o, ch, i);
                const double dz = relu && !(y[at] > 0) ? 0 : dy[at], xhat = (x[at] - mean) * invstd;
                dx[at] = (float)(g * invstd / m * (m * dz - sdz - xhat * sdzxh));
            }
    }
}
