/* Sequence layers by definition (torch.nn.Embedding, GPT-2's learned positions,
 * torch.nn.LayerNorm), every sum in double. Rows of dim floats, row = b * t + position. */
#include <math.h>
#include <string.h>

#include "ref.h"

void embedding_forward_ref(const int32_t *tok, const float *w, float *y, int rows, int vocab, int dim)
{
    for (int r = 0; r < rows; r++)
        for (int d = 0; d < dim; d++)
            y[(size_t)r * dim + d] = tok[r] >= 0 && tok[r] < vocab ? w[(size_t)tok[r] * dim + d] : 0.0f;
}

void embedding_backward_ref(const int32_t *tok, const float *dy, float *dw, int rows, int vocab, int dim,
                            int accumulate)
{
    for (int v = 0; v < vocab; v++)
        for (int d = 0; d < dim; d++) {
            double s = accumulate ? dw[(size_t)v * dim + d] : 0.0;
            for (int r = 0; r < rows; r++)
                if (tok[r] == v) s += dy[(size_t)r * dim + d];
            dw[(size_t)v * dim + d] = (float)s;
        }
}

void position_embedding_forward_ref(const float *x, const float *w, float *y, int count, int t, int dim)
{
    for (int b = 0; b < count; b++)
        for (int i = 0; i < t; i++)
            for (int d = 0; d < dim; d++) {
                const size_t at = ((size_t)b * t + i) * dim + d;
                y[at] = (float)((double)x[at] + w[(size_t)i * dim + d]);
            }
}

void position_embedding_backward_ref(const float *dy, float *dx, float *dw, int count, int t, int context, int dim,
                                     int accumulate)
{
    if (dx) memcpy(dx, dy, (size_t)count * t * dim * sizeof *dx);
    for (int i = 0; i < context; i++)
        for (int d = 0; d < dim; d++) {
            double s = accumulate ? dw[(size_t)i * dim + d] : 0.0;
            for (int b = 0; b < count && i < t; b++) s += dy[((size_t)b * t + i) * dim + d];
            dw[(size_t)i * dim + d] = (float)s;
        }
}

void layernorm_forward_ref(const float *x, float *y, int rows, int dim, const float *gamma, const float *beta,
                           float eps, float *save_mean, float *save_rstd)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * dim;
        double sum = 0, sq = 0;
        for (int d = 0; d < dim; d++) sum += xr[d];
        const double mean = sum / dim;
        for (int d = 0; d < dim; d++) sq += (xr[d] - mean) * (xr[d] - mean);
        const double rstd = 1 / sqrt(sq / dim + eps);
        for (int d = 0; d < dim; d++)
            y[(size_t)r * dim + d] = (float)((xr[d] - mean) * rstd * (gamma ? gamma[d] : 1) + (beta ? beta[d] : 0));
        if (save_mean) save_mean[r] = (float)mean;
        if (save_rstd) save_rstd[r] = (float)rstd;
    }
}

void layernorm_backward_ref(const float *x, const float *dy, float *dx, int rows, int dim, const float *gamma,
                            const float *save_mean, const float *save_rstd, float *dgamma, float *dbeta,
                            unsigned accumulate)
{
    for (int d = 0; d < dim; d++) {
        double sg = dgamma && (accumulate & 1u) ? dgamma[d] : 0, sb = dbeta && (accumulate & 2u) ? dbeta[d] : 0;
        for (int r = 0; r < rows; r++) {
            const size_t at = (size_t)r * dim + d;
            sg += (double)dy[at] * ((x[at] - (double)save_mean[r]) * save_rstd[r]);
            sb += dy[at];
        }
        if (dgamma) dgamma[d] = (float)sg;
        if (dbeta) dbeta[d] = (float)sb;
    }
    for (int r = 0; r < rows && dx; r++) {
        const size_t at = (size_t)r * dim;
        const double mean = save_mean[r], rstd = save_rstd[r];
        double a = 0, b = 0;
        for (int d = 0; d < dim; d++) {
            const double g = (double)dy[at + d] * (gamma ? gamma[d] : 1), xh = (x[at + d] - mean) * rstd;
            a += g;
            b += g * xh;
        }
        a /= dim;
        b /= dim;
        for (int d = 0; d < dim; d++) {
            const double g = (double)dy[at + d] * (gamma ? gamma[d] : 1), xh = (x[at + d] - mean) * rstd;
            dx[at + d] = (float)(rstd * (g - a - xh * b));
        }
    }
}
