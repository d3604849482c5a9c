/* Causal self-attention by definition (Hugging Face's GPT2Attention), every value in double:
 * the softmax over the causal mask, the attention of qkv rows, and the whole layer with its
 * Conv1D projections, forward and backward. Dropout masks are dropout_keep_ref's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

void attention_softmax_ref(const float *s, float *p, int planes, int t, float scale)
{
    for (size_t r = 0; r < (size_t)planes * t; r++) {
        const float *sr = s + r * t;
        float *pr = p + r * t;
        const int i = (int)(r % (size_t)t);
        double m = -INFINITY, sum = 0;
        for (int j = 0; j <= i; j++) m = fmax(m, (double)sr[j] * scale);
        for (int j = 0; j <= i; j++) sum += exp((double)sr[j] * scale - m);
        for (int j = 0; j < t; j++) pr[j] = j <= i ? (float)(exp((double)sr[j] * scale - m) / sum) : 0.0f;
    }
}

void attention_softmax_backward_ref(const float *p, const float *dp, float *ds, int planes, int t, float scale)
{
    for (size_t r = 0; r < (size_t)planes * t; r++) {
        const float *pr = p + r * t, *dpr = dp + r * t;
        const int i = (int)(r % (size_t)t);
        double dot = 0;
        for (int j = 0; j <= i; j++) dot += (double)pr[j] * dpr[j];
        for (int j = 0; j < t; j++) ds[r * t + j] = j <= i ? (float)(scale * pr[j] * (dpr[j] - dot)) : 0.0f;
    }
}

/* The dropout factor of element idx: the kernel's float 1 / (1 - rate) kept, 0 dropped; 1
 * without dropout. */
static double keep(size_t idx, uint64_t seed, float rate)
{
    if (rate <= 0.0f) return 1.0;
    return dropout_keep_ref((uint32_t)idx, seed, rate) ? (double)(1.0f / (1.0f - rate)) : 0.0;
}

/* p (undropped) and pd = dropout(p) of sample b, head h: t x t each. */
static void probs(const ref_attn *g, const double *qkv, int b, int h, float rate, uint64_t seed, double *p,
                  double *pd)
{
    const int t = g->t, w = g->width, hd = w / g->heads;
    const double scale = 1.0 / sqrt((double)hd);
    for (int i = 0; i < t; i++) {
        const double *q = qkv + ((size_t)b * t + i) * 3 * w + h * hd;
        double m = -INFINITY, sum = 0;
        for (int j = 0; j < t; j++) {
            const double *k = qkv + ((size_t)b * t + j) * 3 * w + w + h * hd;
            double s = 0;
            for (int d = 0; d < hd; d++) s += q[d] * k[d];
            p[(size_t)i * t + j] = s * scale;
            if (j <= i) m = fmax(m, s * scale);
        }
        for (int j = 0; j <= i; j++) sum += exp(p[(size_t)i * t + j] - m);
        for (int j = 0; j < t; j++) {
            const size_t at = (size_t)i * t + j, idx = (((size_t)b * g->heads + h) * t + i) * t + j;
            p[at] = j <= i ? exp(p[at] - m) / sum : 0.0;
            pd[at] = p[at] * keep(idx, seed, rate);
        }
    }
}

/* z (rows of width, heads merged) from qkv, both [batch * t] rows. */
static void core_forward(const ref_attn *g, const double *qkv, float rate, uint64_t seed, double *z)
{
    const int t = g->t, w = g->width, hd = w / g->heads;
    double *p = malloc(2 * (size_t)t * t * sizeof *p), *pd = p + (size_t)t * t;
    for (int b = 0; p && b < g->batch; b++)
        for (int h = 0; h < g->heads; h++) {
            probs(g, qkv, b, h, rate, seed, p, pd);
            for (int i = 0; i < t; i++)
                for (int d = 0; d < hd; d++) {
                    double acc = 0;
                    for (int j = 0; j < t; j++)
                        acc += pd[(size_t)i * t + j] * qkv[((size_t)b * t + j) * 3 * w + 2 * w + h * hd + d];
                    z[((size_t)b * t + i) * w + h * hd + d] = acc;
                }
        }
    free(p);
}

static void core_backward(const ref_attn *g, const double *qkv, const double *dz, float rate, uint64_t seed,
                          double *dqkv)
{
    const int t = g->t, w = g->width, hd = w / g->heads;
    const double scale = 1.0 / sqrt((double)hd);
    double *p = malloc(3 * (size_t)t * t * sizeof *p), *pd = p + (size_t)t * t, *ds = pd + (size_t)t * t;
    memset(dqkv, 0, (size_t)g->batch * t * 3 * w * sizeof *dqkv);
    for (int b = 0; p && b < g->batch; b++)
        for (int h = 0; h < g->heads; h++) {
            probs(g, qkv, b, h, rate, seed, p, pd);
#define Q(i, d) qkv[((size_t)b * t + (i)) * 3 * w + h * hd + (d)]
#define K(i, d) qkv[((size_t)b * t + (i)) * 3 * w + w + h * hd + (d)]
#define V(i, d) qkv[((size_t)b * t + (i)) * 3 * w + 2 * w + h * hd + (d)]
#define DQ(i, d) dqkv[((size_t)b * t + (i)) * 3 * w + h * hd + (d)]
#define DK(i, d) dqkv[((size_t)b * t + (i)) * 3 * w + w + h * hd + (d)]
#define DV(i, d) dqkv[((size_t)b * t + (i)) * 3 * w + 2 * w + h * hd + (d)]
#define DZ(i, d) dz[((size_t)b * t + (i)) * w + h * hd + (d)]
            for (int i = 0; i < t; i++) {
                double dot = 0;
                for (int j = 0; j < t; j++) {
                    const size_t at = (size_t)i * t + j, idx = (((size_t)b * g->heads + h) * t + i) * t + j;
                    double dpd = 0;
                    for (int d = 0; d < hd; d++) {
                        dpd += DZ(i, d) * V(j, d);
                        DV(j, d) += pd[at] * DZ(i, d);
                    }
                    ds[at] = dpd * keep(idx, seed, rate); /* dp */
                    dot += p[at] * ds[at];
                }
                for (int j = 0; j < t; j++) ds[(size_t)i * t + j] = scale * p[(size_t)i * t + j] * (ds[(size_t)i * t + j] - dot);
            }
            for (int i = 0; i < t; i++)
                for (int j = 0; j < t; j++)
                    for (int d = 0; d < hd; d++) {
                        DQ(i, d) += ds[(size_t)i * t + j] * K(j, d);
                        DK(j, d) += ds[(size_t)i * t + j] * Q(i, d);
                    }
#undef Q
#undef K
#undef V
#undef DQ
#undef DK
#undef DV
#undef DZ
        }
    free(p);
}

static double *to_double(const float *x, size_t n)
{
    double *d = calloc(n ? n : 1, sizeof *d);
    for (size_t i = 0; d && i < n; i++) d[i] = x[i];
    return d;
}

static void to_float(const double *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i];
}

void attention_core_ref(const ref_attn *g, const float *qkv, float rate, uint64_t seed, float *z)
{
    const size_t rows = (size_t)g->batch * g->t, w = (size_t)g->width;
    double *q = to_double(qkv, rows * 3 * w), *zd = malloc(rows * w * sizeof *zd);
    if (q && zd) {
        core_forward(g, q, rate, seed, zd);
        to_float(zd, z, rows * w);
    }
    free(q), free(zd);
}

void attention_core_backward_ref(const ref_attn *g, const float *qkv, const float *dz, float rate, uint64_t seed,
                                 float *dqkv)
{
    const size_t rows = (size_t)g->batch * g->t, w = (size_t)g->width;
    double *q = to_double(qkv, rows * 3 * w), *dzd = to_double(dz, rows * w), *d = malloc(rows * 3 * w * sizeof *d);
    if (q && dzd && d) {
        core_backward(g, q, dzd, rate, seed, d);
        to_float(d, dqkv, rows * 3 * w);
    }
    free(q), free(dzd), free(d);
}

/* y[r][c] = b[c] + sum_k x[r][k] w[k][c] over rows of in values; b may be NULL. */
static void conv1d(const double *x, const float *wt, const float *b, size_t rows, size_t in, size_t out, double *y)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < out; c++) {
            double acc = b ? b[c] : 0.0;
            for (size_t k = 0; k < in; k++) acc += x[r * in + k] * wt[k * out + c];
            y[r * out + c] = acc;
        }
}

/* x, qkv and z of the forward in double (caller frees the one block). */
static double *layer_forward(const ref_attn *g, const float *x, const float *wa, const float *ba, float rate,
                             uint64_t seed_p, double **xd, double **qkv, double **z)
{
    const size_t rows = (size_t)g->batch * g->t, w = (size_t)g->width;
    double *blk = malloc(rows * 5 * w * sizeof *blk);
    if (blk == NULL) return NULL;
    *xd = blk, *qkv = blk + rows * w, *z = blk + rows * 4 * w;
    for (size_t i = 0; i < rows * w; i++) (*xd)[i] = x[i];
    conv1d(*xd, wa, ba, rows, w, 3 * w, *qkv);
    core_forward(g, *qkv, rate, seed_p, *z);
    return blk;
}

void attention_layer_forward_ref(const ref_attn *g, const float *x, const float *wa, const float *ba,
                                 const float *wp, const float *bp, float rate, uint64_t seed_p, uint64_t seed_y,
                                 float *y)
{
    const size_t rows = (size_t)g->batch * g->t, w = (size_t)g->width;
    double *xd, *qkv, *z, *blk = layer_forward(g, x, wa, ba, rate, seed_p, &xd, &qkv, &z),
                          *yd = malloc(rows * w * sizeof *yd);
    if (blk && yd) {
        conv1d(z, wp, bp, rows, w, w, yd);
        for (size_t i = 0; i < rows * w; i++) y[i] = (float)(yd[i] * keep(i, seed_y, rate));
    }
    free(blk), free(yd);
}

void attention_layer_backward_ref(const ref_attn *g, const float *x, const float *wa, const float *ba,
                                  const float *wp, float rate, uint64_t seed_p, uint64_t seed_y, const float *dy,
                                  float *dx, float *dwa, float *dba, float *dwp, float *dbp)
{
    const size_t rows = (size_t)g->batch * g->t, w = (size_t)g->width;
    double *xd, *qkv, *z, *blk = layer_forward(g, x, wa, ba, rate, seed_p, &xd, &qkv, &z);
    double *d = malloc(rows * 5 * w * sizeof *d), *dyd = d, *dz = d + rows * w, *dqkv = d + 2 * rows * w;
    if (blk == NULL || d == NULL) {
        free(blk), free(d);
        return;
    }
    for (size_t i = 0; i < rows * w; i++) dyd[i] = dy[i] * keep(i, seed_y, rate);
    for (size_t k = 0; k < w; k++)
        for (size_t c = 0; c < w; c++) {
            double acc = 0;
            for (size_t r = 0; r < rows; r++) acc += z[r * w + k] * dyd[r * w + c];
            dwp[k * w + c] = (float)acc;
        }
    for (size_t c = 0; dbp && c < w; c++) {
        double acc = 0;
        for (size_t r = 0; r < rows; r++) acc += dyd[r * w + c];
        dbp[c] = (float)acc;
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < w; k++) {
            double acc = 0;
            for (size_t c = 0; c < w; c++) acc += dyd[r * w + c] * wp[k * w + c];
            dz[r * w + k] = acc;
        }
    core_backward(g, qkv, dz, rate, seed_p, dqkv);
    for (size_t k = 0; k < w; k++)
        for (size_t c = 0; c < 3 * w; c++) {
            double acc = 0;
            for (size_t r = 0; r < rows; r++) acc += xd[r * w + k] * dqkv[r * 3 * w + c];
            dwa[k * 3 * w + c] = (float)acc;
        }
    for (size_t c = 0; dba && c < 3 * w; c++) {
        double acc = 0;
        for (size_t r = 0; r < rows; r++) acc += dqkv[r * 3 * w + c];
        dba[c] = (float)acc;
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < w; k++) {
            double acc = 0;
            for (size_t c = 0; c < 3 * w; c++) acc += dqkv[r * 3 * w + c] * wa[k * 3 * w + c];
            dx[r * w + k] = (float)acc;
        }
    free(blk), free(d);
}
