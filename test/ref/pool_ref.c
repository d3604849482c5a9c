/* Pooling by definition (PyTorch semantics). */
#include <math.h>
#include <string.h>

#include "ref.h"

#define PLANE_LOOP                                                  \
    for (int pl = 0; pl < g->n * g->c; pl++)                        \
        for (int oh = 0; oh < g->p; oh++)                           \
            for (int ow = 0; ow < g->q; ow++)

static int argmax_window(const ref_pool *g, const float *xp, int oh, int ow)
{
    int arg = -1;
    for (int kh = 0; kh < g->size_h; kh++)
        for (int kw = 0; kw < g->size_w; kw++) {
            int ih = oh * g->stride_h - g->pad_h + kh, iw = ow * g->stride_w - g->pad_w + kw;
            if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) continue;
            if (arg < 0 || xp[ih * g->w + iw] > xp[arg]) arg = ih * g->w + iw;
        }
    return arg;
}

void maxpool_forward_ref(const ref_pool *g, const float *x, float *y)
{
    PLANE_LOOP
    {
        const float *xp = x + (size_t)pl * g->h * g->w;
        y[((size_t)pl * g->p + oh) * g->q + ow] = xp[argmax_window(g, xp, oh, ow)];
    }
}

void maxpool_backward_ref(const ref_pool *g, const float *x, const float *dy, float *dx)
{
    memset(dx, 0, (size_t)g->n * g->c * g->h * g->w * sizeof *dx);
    PLANE_LOOP
    {
        const float *xp = x + (size_t)pl * g->h * g->w;
        dx[(size_t)pl * g->h * g->w + argmax_window(g, xp, oh, ow)] += dy[((size_t)pl * g->p + oh) * g->q + ow];
    }
}

static int divisor(const ref_pool *g, int oh, int ow)
{
    int h0 = oh * g->stride_h - g->pad_h, w0 = ow * g->stride_w - g->pad_w;
    int h1 = h0 + g->size_h < g->h + g->pad_h ? h0 + g->size_h : g->h + g->pad_h;
    int w1 = w0 + g->size_w < g->w + g->pad_w ? w0 + g->size_w : g->w + g->pad_w;
    return (h1 - h0) * (w1 - w0);
}

void avgpool_forward_ref(const ref_pool *g, const float *x, float *y)
{
    PLANE_LOOP
    {
        const float *xp = x + (size_t)pl * g->h * g->w;
        double s = 0;
        for (int kh = 0; kh < g->size_h; kh++)
            for (int kw = 0; kw < g->size_w; kw++) {
                int ih = oh * g->stride_h - g->pad_h + kh, iw = ow * g->stride_w - g->pad_w + kw;
                if (ih >= 0 && ih < g->h && iw >= 0 && iw < g->w) s += xp[ih * g->w + iw];
            }
        y[((size_t)pl * g->p + oh) * g->q + ow] = (float)(s / divisor(g, oh, ow));
    }
}

void avgpool_backward_ref(const ref_pool *g, const float *dy, float *dx)
{
    memset(dx, 0, (size_t)g->n * g->c * g->h * g->w * sizeof *dx);
    PLANE_LOOP
    {
        float d = dy[((size_t)pl * g->p + oh) * g->q + ow] / (float)divisor(g, oh, ow);
        for (int kh = 0; kh < g->size_h; kh++)
            for (int kw = 0; kw < g->size_w; kw++) {
                int ih = oh * g->stride_h - g->pad_h + kh, iw = ow * g->stride_w - g->pad_w + kw;
                if (ih >= 0 && ih < g->h && iw >= 0 && iw < g->w) dx[((size_t)pl * g->h + ih) * g->w + iw] += d;
            }
    }
}
