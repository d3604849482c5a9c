/* One layer of torch.nn.LSTM / nn.GRU, zero initial state, in double: the forward step by
 * step as the equations in PyTorch's documentation read, and backpropagation through time
 * written out for each gate. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

static double sig(double v) { return 1.0 / (1.0 + exp(-v)); }

/* The whole forward of sample b, in double: per position t, the activated gates (G*h),
 * the LSTM's cell state or the GRU's hn + b_hn (h), and the hidden states hs[t + 1] with
 * hs[0] = 0. */
typedef struct rnn_trace {
    double *gate, *cs, *hs;
} rnn_trace;

static void trace(int gru, int b, int T, int d, int h, const float *x, const float *w_ih, const float *w_hh,
                  const float *b_ih, const float *b_hh, rnn_trace *tr)
{
    const int G = gru ? 3 : 4;
    double *px = malloc((size_t)G * h * sizeof *px), *ph = malloc((size_t)G * h * sizeof *ph);
    memset(tr->hs, 0, (size_t)h * sizeof *tr->hs);
    for (int t = 0; t < T; t++) {
        const float *xt = x + ((size_t)b * T + t) * d;
        const double *hp = tr->hs + (size_t)t * h;
        for (int r = 0; r < G * h; r++) {
            double sx = b_ih ? b_ih[r] : 0.0, sh = b_hh ? b_hh[r] : 0.0;
            for (int i = 0; i < d; i++) sx += (double)w_ih[(size_t)r * d + i] * xt[i];
            for (int i = 0; i < h; i++) sh += (double)w_hh[(size_t)r * h + i] * hp[i];
            px[r] = sx, ph[r] = sh;
        }
        double *g = tr->gate + (size_t)t * G * h, *cs = tr->cs + (size_t)t * h, *hn = tr->hs + (size_t)(t + 1) * h;
        for (int j = 0; j < h; j++) {
            if (!gru) {
                double ig = sig(px[j] + ph[j]), fg = sig(px[h + j] + ph[h + j]),
                       gg = tanh(px[2 * h + j] + ph[2 * h + j]), og = sig(px[3 * h + j] + ph[3 * h + j]);
                double cp = t > 0 ? tr->cs[(size_t)(t - 1) * h + j] : 0.0;
                g[j] = ig, g[h + j] = fg, g[2 * h + j] = gg, g[3 * h + j] = og;
                cs[j] = fg * cp + ig * gg;
                hn[j] = og * tanh(cs[j]);
            } else {
                double r = sig(px[j] + ph[j]), z = sig(px[h + j] + ph[h + j]);
                double n = tanh(px[2 * h + j] + r * ph[2 * h + j]);
                g[j] = r, g[h + j] = z, g[2 * h + j] = n;
                cs[j] = ph[2 * h + j];
                hn[j] = (1 - z) * n + z * hp[j];
            }
        }
    }
    free(px);
    free(ph);
}

static bool trace_new(int gru, int T, int h, rnn_trace *tr)
{
    tr->gate = malloc((size_t)T * (gru ? 3 : 4) * h * sizeof(double));
    tr->cs = malloc((size_t)T * h * sizeof(double));
    tr->hs = malloc((size_t)(T + 1) * h * sizeof(double));
    return tr->gate && tr->cs && tr->hs;
}

static void trace_free(rnn_trace *tr)
{
    free(tr->gate);
    free(tr->cs);
    free(tr->hs);
}

void rnn_forward_ref(int gru, int n, int T, int d, int h, const float *x, const float *w_ih, const float *w_hh,
                     const float *b_ih, const float *b_hh, float *y)
{
    rnn_trace tr;
    if (trace_new(gru, T, h, &tr))
        for (int b = 0; b < n; b++) {
            trace(gru, b, T, d, h, x, w_ih, w_hh, b_ih, b_hh, &tr);
            for (int t = 0; t < T; t++)
                for (int j = 0; j < h; j++) y[((size_t)b * T + t) * h + j] = (float)tr.hs[(size_t)(t + 1) * h + j];
        }
    trace_free(&tr);
}

void rnn_backward_ref(int gru, int n, int T, int d, int h, const float *x, const float *w_ih, const float *w_hh,
                      const float *b_ih, const float *b_hh, const float *dy, float *dx, float *dw_ih, float *dw_hh,
                      float *db_ih, float *db_hh)
{
    const int G = gru ? 3 : 4;
    const size_t gh = (size_t)G * h;
    double *gwi = calloc(gh * d, sizeof *gwi), *gwh = calloc(gh * h, sizeof *gwh), *gbi = calloc(gh, sizeof *gbi),
           *gbh = calloc(gh, sizeof *gbh), *dpx = malloc(gh * sizeof *dpx), *dph = malloc(gh * sizeof *dph),
           *dh_next = malloc((size_t)h * sizeof *dh_next), *dc_next = malloc((size_t)h * sizeof *dc_next);
    rnn_trace tr;
    bool ok = trace_new(gru, T, h, &tr) && gwi && gwh && gbi && gbh && dpx && dph && dh_next && dc_next;
    for (int b = 0; ok && b < n; b++) {
        trace(gru, b, T, d, h, x, w_ih, w_hh, b_ih, b_hh, &tr);
        memset(dh_next, 0, (size_t)h * sizeof *dh_next);
        memset(dc_next, 0, (size_t)h * sizeof *dc_next);
        for (int t = T - 1; t >= 0; t--) {
            const size_t row = (size_t)b * T + t;
            const double *g = tr.gate + (size_t)t * gh, *hp = tr.hs + (size_t)t * h;
            for (int j = 0; j < h; j++) {
                double dh = dy[row * h + j] + dh_next[j];
                if (!gru) {
                    double ig = g[j], fg = g[h + j], gg = g[2 * h + j], og = g[3 * h + j];
                    double c = tr.cs[(size_t)t * h + j], cp = t > 0 ? tr.cs[(size_t)(t - 1) * h + j] : 0.0;
                    double tc = tanh(c), dc = dc_next[j] + dh * og * (1 - tc * tc);
                    dc_next[j] = dc * fg;
                    dpx[j] = dc * gg * ig * (1 - ig);
                    dpx[h + j] = dc * cp * fg * (1 - fg);
                    dpx[2 * h + j] = dc * ig * (1 - gg * gg);
                    dpx[3 * h + j] = dh * tc * og * (1 - og);
                    for (int k = 0; k < 4; k++) dph[k * h + j] = dpx[k * h + j];
                    dh_next[j] = 0.0;
                } else {
                    double r = g[j], z = g[h + j], nn = g[2 * h + j], hn = tr.cs[(size_t)t * h + j];
                    double dn = dh * (1 - z) * (1 - nn * nn), dz = dh * (hp[j] - nn) * z * (1 - z),
                           dr = dn * hn * r * (1 - r);
                    dpx[j] = dph[j] = dr;
                    dpx[h + j] = dph[h + j] = dz;
                    dpx[2 * h + j] = dn;
                    dph[2 * h + j] = dn * r;
                    dh_next[j] = dh * z; /* h_{t-1}'s direct path; W_hh's below */
                }
            }
            const float *xt = x + row * d;
            for (size_t r = 0; r < gh; r++) {
                for (int i = 0; i < d; i++) gwi[r * d + i] += dpx[r] * xt[i];
                for (int i = 0; i < h; i++) gwh[r * h + i] += dph[r] * hp[i];
                gbi[r] += dpx[r];
                gbh[r] += dph[r];
            }
            for (int i = 0; dx && i < d; i++) {
                double s = 0;
                for (size_t r = 0; r < gh; r++) s += dpx[r] * w_ih[r * d + i];
                dx[row * d + i] = (float)s;
            }
            for (int i = 0; i < h; i++) {
                double s = 0;
                for (size_t r = 0; r < gh; r++) s += dph[r] * w_hh[r * h + i];
                dh_next[i] += s;
            }
        }
    }
    for (size_t i = 0; ok && i < gh * d; i++) dw_ih[i] = (float)gwi[i];
    for (size_t i = 0; ok && i < gh * h; i++) dw_hh[i] = (float)gwh[i];
    for (size_t i = 0; ok && db_ih && i < gh; i++) db_ih[i] = (float)gbi[i];
    for (size_t i = 0; ok && db_hh && i < gh; i++) db_hh[i] = (float)gbh[i];
    trace_free(&tr);
    free(gwi), free(gwh), free(gbi), free(gbh), free(dpx), free(dph), free(dh_next), free(dc_next);
}
