/* Direct convolution by definition, accumulating in double. */
#include <stdlib.h>
#include <string.h>

#include "ref.h"

/* Visits every (output element, weight, input element) triple that the convolution sums. */
#define CONV_LOOP(BODY)                                                                           \
    int cg = g->c / g->groups, kg = g->k / g->groups;                                             \
    for (int b = 0; b < g->n; b++)                                                                \
        for (int ko = 0; ko < g->k; ko++)                                                         \
            for (int oh = 0; oh < g->p; oh++)                                                     \
                for (int ow = 0; ow < g->q; ow++)                                                 \
                    for (int ci = 0; ci < cg; ci++)                                               \
                        for (int kh = 0; kh < g->r; kh++)                                         \
                            for (int kw = 0; kw < g->s; kw++) {                                   \
                                int ih = oh * g->stride_h - g->pad_h + kh * g->dil_h;             \
                                int iw = ow * g->stride_w - g->pad_w + kw * g->dil_w;             \
                                if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) continue;       \
                                size_t xi = (((size_t)b * g->c + (ko / kg) * cg + ci) * g->h + ih) * g->w + iw; \
                                size_t wi = (((size_t)ko * cg + ci) * g->r + kh) * g->s + kw;     \
                                size_t yi = (((size_t)b * g->k + ko) * g->p + oh) * g->q + ow;    \
                                BODY;                                                             \
                            }

static double *zeros(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

static void store(float *dst, const double *src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
}

void conv2d_forward_ref(const ref_conv *g, const float *x, const float *w, const float *bias, float *y)
{
    size_t ny = (size_t)g->n * g->k * g->p * g->q;
    double *acc = zeros(ny);
    if (acc == NULL) return;
    CONV_LOOP(acc[yi] += (double)x[xi] * w[wi])
    size_t pq = (size_t)g->p * g->q;
    for (size_t i = 0; bias && i < ny; i++) acc[i] += bias[(i / pq) % (size_t)g->k];
    store(y, acc, ny);
    free(acc);
}

void conv2d_backward_data_ref(const ref_conv *g, const float *dy, const float *w, float *dx)
{
    size_t nx = (size_t)g->n * g->c * g->h * g->w;
    double *acc = zeros(nx);
    if (acc == NULL) return;
    CONV_LOOP(acc[xi] += (double)dy[yi] * w[wi])
    store(dx, acc, nx);
    free(acc);
}

void conv2d_backward_filter_ref(const ref_conv *g, const float *x, const float *dy, float *dw, float *db)
{
    size_t nw = (size_t)g->k * (g->c / g->groups) * g->r * g->s, pq = (size_t)g->p * g->q;
    double *acc = zeros(nw);
    if (acc == NULL) return;
    CONV_LOOP(acc[wi] += (double)x[xi] * dy[yi])
    store(dw, acc, nw);
    free(acc);
    if (db == NULL) return;
    for (int ko = 0; ko < g->k; ko++) {
        double s = 0;
        for (int b = 0; b < g->n; b++)
            for (size_t i = 0; i < pq; i++) s += dy[((size_t)b * g->k + ko) * pq + i];
        db[ko] = (float)s;
    }
}
