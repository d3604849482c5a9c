/* Pooling over [n][c][h][w] planes; PyTorch floor-mode output sizes. Padding never wins a
 * max and counts in an average (count_include_pad=True, nn.AvgPool2d's default). */

/* Built with -DPOOL_NO_ARGMAX for nets that only run forward (pool.c passes no idx): the max
 * forwards then write no argmax, which no backward will read. */
#ifdef POOL_NO_ARGMAX
#define KEEP_ARG(store)
#else
#define KEEP_ARG(store) store;
#endif

/* global (p*q, n*c) */
__kernel void maxpool_forward(__global const X_T *x, const int xo, __global Y_T *y, const int yo,
                              __global int *idx, const int h, const int w, const int p, const int q,
                              const int size_h, const int size_w, const int stride_h, const int stride_w,
                              const int pad_h, const int pad_w)
{
    const int pix = get_global_id(0), plane = get_global_id(1);
    if (pix >= p * q) return;
    const int oh = pix / q, ow = pix % q;
    __global const X_T *xp = x + xo + (size_t)plane * h * w;
    float best = -INFINITY;
    int arg = -1;
    for (int kh = 0; kh < size_h; kh++) {
        const int ih = oh * stride_h - pad_h + kh;
        if (ih < 0 || ih >= h) continue;
        for (int kw = 0; kw < size_w; kw++) {
            const int iw = ow * stride_w - pad_w + kw;
            if (iw < 0 || iw >= w) continue;
            const float v = LDX(ih * w + iw, xp);
            if (v > best || arg < 0 || isnan(v)) { /* NaN propagates, as in PyTorch */
                best = v;
                arg = ih * w + iw;
            }
        }
    }
    const size_t o = (size_t)plane * p * q + pix;
    STY(best, yo + o, y);
    KEEP_ARG(idx[o] = arg)
}

/* The running max of the unpadded kernels: a later candidate wins only if larger, so ties
 * keep the first; a NaN wins and stays, as in PyTorch. A select, not a branch. */
inline void max_take(const float v, const int i, float *best, int *arg)
{
    const bool take = v > *best || (isnan(v) && !isnan(*best));
    *best = take ? v : *best;
    *arg = take ? i : *arg;
}

/* maxpool_forward without padding: every window lies inside the plane (floor mode), so the
 * loops have uniform bounds and the running max is a select, with no branch: PoCL
 * vectorises it across work-items (VGG's 2x2 pools took 4.5 ms each with the general
 * kernel). Ties keep the first, a NaN wins and stays, as in PyTorch. global (p*q, n*c) */
__kernel void maxpool_forward_nopad(__global const X_T *x, const int xo, __global Y_T *y, const int yo,
                                    __global int *idx, const int h, const int w, const int p, const int q,
                                    const int size_h, const int size_w, const int stride_h, const int stride_w)
{
    const int pix = get_global_id(0), plane = get_global_id(1);
    if (pix >= p * q) return;
    const int oh = pix / q, ow = pix % q;
    __global const X_T *xp = x + xo + (size_t)plane * h * w;
    const int first = oh * stride_h * w + ow * stride_w;
    float best = LDX(first, xp);
    int arg = first;
    for (int kh = 0; kh < size_h; kh++)
        for (int kw = 0; kw < size_w; kw++) max_take(LDX(first + kh * w + kw, xp), first + kh * w + kw, &best, &arg);
    const size_t o = (size_t)plane * p * q + pix;
    STY(best, yo + o, y);
    KEEP_ARG(idx[o] = arg)
}

/* 2x2 windows at stride 2 without padding, the common pool: a work-item per output row,
 * global (p, n*c), whose loop along the row has no inner loop, so LLVM vectorises it (PoCL
 * does not vectorise across work-items whose body loops). The same candidates in the same
 * order as maxpool_forward_nopad: ties keep the first, a NaN wins and stays. */
__kernel void maxpool_forward_2x2(__global const X_T *restrict x, const int xo, __global Y_T *restrict y,
                                  const int yo, __global int *restrict idx, const int h, const int w, const int p,
                                  const int q)
{
    const int oh = get_global_id(0), plane = get_global_id(1);
    if (oh >= p) return;
    __global const X_T *xp = x + xo + (size_t)plane * h * w;
    const size_t o = (size_t)plane * p * q + (size_t)oh * q;
    const int top = 2 * oh * w;
    for (int ow = 0; ow < q; ow++) {
        const int i = top + 2 * ow;
        float best = LDX(i, xp);
        int arg = i;
        max_take(LDX(i + 1, xp), i + 1, &best, &arg);
        max_take(LDX(i + w, xp), i + w, &best, &arg);
        max_take(LDX(i + w + 1, xp), i + w + 1, &best, &arg);
        STY(best, yo + o + ow, y);
        KEEP_ARG(idx[o + ow] = arg)
    }
}

/* dx[i] = sum of dy over the windows whose argmax is i (a gather); global (h*w, n*c) */
__kernel void maxpool_backward(__global const float *dy, const int dyo, __global const int *idx,
                               __global float *dx, const int dxo, const int h, const int w, const int p,
                               const int q, const int size_h, const int size_w, const int stride_h,
                               const int stride_w, const int pad_h, const int pad_w)
{
    const int pix = get_global_id(0), plane = get_global_id(1);
    if (pix >= h * w) return;
    const int ih = pix / w, iw = pix % w;
    /* output rows whose window covers ih: oh*stride - pad <= ih <= oh*stride - pad + size - 1 */
    const int oh0 = max(0, (ih + pad_h - size_h + stride_h) / stride_h), oh1 = min(p - 1, (ih + pad_h) / stride_h);
    const int ow0 = max(0, (iw + pad_w - size_w + stride_w) / stride_w), ow1 = min(q - 1, (iw + pad_w) / stride_w);
    const size_t base = (size_t)plane * p * q;
    float sum = 0.0f;
    for (int oh = oh0; oh <= oh1; oh++)
        for (int ow = ow0; ow <= ow1; ow++) {
            const size_t o = base + oh * q + ow;
            if (idx[o] == pix) sum += dy[dyo + o];
        }
    dx[dxo + (size_t)plane * h * w + pix] = sum;
}

/* Non-overlapping windows (stride >= size): each input has at most one window, so each
 * output scatters its gradient to its argmax in a zeroed dx without conflicts; global (p*q, n*c). */
__kernel void maxpool_backward_scatter(__global const float *dy, const int dyo, __global const int *idx,
                                       __global float *dx, const int dxo, const int h, const int w, const int p,
                                       const int q)
{
    const int pix = get_global_id(0), plane = get_global_id(1);
    if (pix >= p * q) return;
    const size_t o = (size_t)plane * p * q + pix;
    const int i = idx[o];
    if (i >= 0) dx[dxo + (size_t)plane * h * w + i] = dy[dyo + o];
}

/* global (p*q, n*c) */
__kernel void avgpool_forward(__global const X_T *x, const int xo, __global Y_T *y, const int yo,
                              const int h, const int w, const int p, const int q, const int size_h,
                              const int size_w, const int stride_h, const int stride_w, const int pad_h,
                              const int pad_w)
{
    const int pix = get_global_id(0), plane = get_global_id(1);
    if (pix >= p * q) return;
    const int oh = pix / q, ow = pix % q;
    __global const X_T *xp = x + xo + (size_t)plane * h * w;
    const int h0 = oh * stride_h - pad_h, w0 = ow * stride_w - pad_w;
    /* the divisor counts padding but not the part of the window past the padded edge */
    const int hend = min(h0 + size_h, h + pad_h), wend = min(w0 + size_w, w + pad_w);
    const float div = (float)((hend - h0) * (wend - w0));
    float sum = 0.0f;
    for (int ih = max(h0, 0); ih < min(hend, h); ih++)
        for (int iw = max(w0, 0); iw < min(wend, w); iw++) sum += LDX(ih * w + iw, xp);
    STY(sum / div, yo + (size_t)plane * p * q + pix, y);
}

/* global (h*w, n*c) */
__kernel void avgpool_backward(__global const float *dy, const int dyo, __global float *dx, const int dxo,
                               const int h, const int w, const int p, const int q, const int size_h,
                               const int size_w, const int stride_h, const int stride_w, const int pad_h,
                               const int pad_w)
{
    const int pix = get_global_id(0), plane = get_global_id(1);
    if (pix >= h * w) return;
    const int ih = pix / w, iw = pix % w;
    const int oh0 = max(0, (ih + pad_h - size_h + stride_h) / stride_h), oh1 = min(p - 1, (ih + pad_h) / stride_h);
    const int ow0 = max(0, (iw + pad_w - size_w + stride_w) / stride_w), ow1 = min(q - 1, (iw + pad_w) / stride_w);
    const size_t base = (size_t)plane * p * q;
    float sum = 0.0f;
    for (int oh = oh0; oh <= oh1; oh++)
        for (int ow = ow0; ow <= ow1; ow++) {
            const int h0 = oh * stride_h - pad_h, w0 = ow * stride_w - pad_w;
            const int hend = min(h0 + size_h, h + pad_h), wend = min(w0 + size_w, w + pad_w);
            sum += dy[dyo + base + oh * q + ow] / (float)((hend - h0) * (wend - w0));
        }
    dx[dxo + (size_t)plane * h * w + pix] = sum;
}

/* ---------------------------------------------------------------- kernels for CPU devices
 * A work-item per row (an output row forward, an input row for the average's gradient),
 * global (rows, n*c), with the window's taps as the outer loops and the row as the inner
 * one: uniform loops along the row that LLVM vectorises, no division per element. PoCL does
 * not vectorise across work-items whose bodies loop, and the per-element kernels above (a
 * division, a bounds test per tap) ran ResNet's 3x3/2 pad 1 pool over 32 x 64 x 112 x 112
 * in 138 ms forward and 210 ms backward (DLCL_PROFILE=1 dlcl-bench examples/resnet18.ini
 * on the EPYC); the max's gradient goes a plane per work-item (maxpool_backward_planes). */

/* The output columns ow whose input column ow * stride + off lies in [0, w): [*lo, *hi) */
inline void pool_cols(const int off, const int stride, const int w, const int q, int *lo, int *hi)
{
    int l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int e = w - 1 - off < 0 ? 0 : (w - 1 - off) / stride + 1;
    l = min(l, q);
    *lo = l;
    *hi = max(l, min(e, q));
}

/* One tap of the window for output columns [lo, hi) of a row, with a stride that is a
 * constant where the caller can make it one: LLVM vectorises a loop over x[base + ow * 2]
 * with a known stride (interleaved loads), not with a stride read from an argument
 * (ResNet's stem pool: 48 against 290 ms, the same kernel otherwise). The update is
 * branch-free: a branch on the comparison mispredicts on every other element. */
#ifndef POOL_NO_ARGMAX
#define MAX_TAPS(lo, hi, base, stride)                                                       \
    for (int ow = lo; ow < hi; ow++) {                                                      \
        const int i = base + ow * (stride);                                                 \
        const float v = LDX(i, xp), best = LDY(ow, yr);                                     \
        const int arg = ir[ow], take = (v > best) | (arg < 0) | isnan(v);                   \
        STY(select(best, v, take), ow, yr);                                                 \
        ir[ow] = select(arg, i, take);                                                      \
    }

#else /* the same values without the index: the first tap's test (arg < 0) is v > -inf or a NaN */
#define MAX_TAPS(lo, hi, base, stride)                                                       \
    for (int ow = lo; ow < hi; ow++) {                                                      \
        const float v = LDX(base + ow * (stride), xp), best = LDY(ow, yr);                  \
        STY(select(best, v, (v > best) | isnan(v)), ow, yr);                               \
    }
#endif

/* maxpool_forward's result for output row oh: the same candidates in the same (kh, kw)
 * order for each output, the same rule (first maximum, a NaN wins), kept in y and idx. */
__kernel void maxpool_forward_rows(__global const X_T *restrict x, const int xo, __global Y_T *restrict y,
                                   const int yo, __global int *restrict idx, const int h, const int w, const int p,
                                   const int q, const int size_h, const int size_w, const int stride_h,
                                   const int stride_w, const int pad_h, const int pad_w)
{
    const int oh = get_global_id(0), plane = get_global_id(1);
    if (oh >= p) return;
    __global const X_T *xp = x + xo + (size_t)plane * h * w;
    const size_t o = ((size_t)plane * p + oh) * q;
    __global Y_T *yr = y + yo + o;
    __global int *ir = idx + o;
    for (int ow = 0; ow < q; ow++) {
        STY(-INFINITY, ow, yr);
        KEEP_ARG(ir[ow] = -1)
    }
    for (int kh = 0; kh < size_h; kh++) {
        const int ih = oh * stride_h - pad_h + kh;
        if (ih < 0 || ih >= h) continue;
        for (int kw = 0; kw < size_w; kw++) {
            const int off = kw - pad_w, base = ih * w + off;
            int lo, hi;
            pool_cols(off, stride_w, w, q, &lo, &hi);
            if (stride_w == 1)
                MAX_TAPS(lo, hi, base, 1)
            else if (stride_w == 2)
                MAX_TAPS(lo, hi, base, 2)
            else
                MAX_TAPS(lo, hi, base, stride_w)
        }
    }
}

/* maxpool_backward's sums for a whole plane: zero it, then each output adds its gradient
 * at its argmax, in output order (as the reference). A work-item per plane, global (n*c):
 * a scatter within the plane has no conflicts, and a loop of real stores beats gathering
 * per input row (111 -> 15 ms for ResNet's stem pool, where a row's gather tests every
 * output of the rows above and below it, a data-dependent branch). */
__kernel void maxpool_backward_planes(__global const float *restrict dy, const int dyo,
                                      __global const int *restrict idx, __global float *restrict dx, const int dxo,
                                      const int planes, const int hw, const int pq)
{
    const int plane = get_global_id(0);
    if (plane >= planes) return;
    __global float *d = dx + dxo + (size_t)plane * hw;
    for (int i = 0; i < hw; i++) d[i] = 0.0f;
    const size_t o = (size_t)plane * pq;
    for (int j = 0; j < pq; j++) {
        const int i = idx[o + j];
        if (i >= 0) d[i] += dy[dyo + o + j]; /* -1: a window wholly in the padding (none in floor mode) */
    }
}

/* The divisor of output (oh, ow): the window within the padded plane (count_include_pad) */
inline float pool_div(const int oh, const int ow, const int h, const int w, const int size_h, const int size_w,
                      const int stride_h, const int stride_w, const int pad_h, const int pad_w)
{
    const int h0 = oh * stride_h - pad_h, w0 = ow * stride_w - pad_w;
    return (float)((min(h0 + size_h, h + pad_h) - h0) * (min(w0 + size_w, w + pad_w) - w0));
}

/* avgpool_forward for output row oh, the taps summed in the same order */
__kernel void avgpool_forward_rows(__global const X_T *restrict x, const int xo, __global Y_T *restrict y,
                                   const int yo, const int h, const int w, const int p, const int q, const int size_h,
                                   const int size_w, const int stride_h, const int stride_w, const int pad_h,
                                   const int pad_w)
{
    const int oh = get_global_id(0), plane = get_global_id(1);
    if (oh >= p) return;
    __global const X_T *xp = x + xo + (size_t)plane * h * w;
    __global Y_T *yr = y + yo + ((size_t)plane * p + oh) * q;
    for (int ow = 0; ow < q; ow++) STY(0.0f, ow, yr);
    for (int kh = 0; kh < size_h; kh++) {
        const int ih = oh * stride_h - pad_h + kh;
        if (ih < 0 || ih >= h) continue;
        for (int kw = 0; kw < size_w; kw++) {
            const int off = kw - pad_w;
            int lo, hi;
            pool_cols(off, stride_w, w, q, &lo, &hi);
            __global const X_T *xr = xp + ih * w + off;
            if (stride_w == 1)
                for (int ow = lo; ow < hi; ow++) STY(LDY(ow, yr) + LDX(ow, xr), ow, yr);
            else if (stride_w == 2)
                for (int ow = lo; ow < hi; ow++) STY(LDY(ow, yr) + LDX(ow * 2, xr), ow, yr);
            else
                for (int ow = lo; ow < hi; ow++) STY(LDY(ow, yr) + LDX(ow * stride_w, xr), ow, yr);
        }
    }
    for (int ow = 0; ow < q; ow++)
        STY(LDY(ow, yr) / pool_div(oh, ow, h, w, size_h, size_w, stride_h, stride_w, pad_h, pad_w), ow, yr);
}

/* avgpool_backward for input row ih: every output row whose window covers it spreads
 * dy / divisor over the row's columns its windows cover, tap by tap. */
__kernel void avgpool_backward_rows(__global const float *restrict dy, const int dyo, __global float *restrict dx,
                                    const int dxo, const int h, const int w, const int p, const int q,
                                    const int size_h, const int size_w, const int stride_h, const int stride_w,
                                    const int pad_h, const int pad_w)
{
    const int ih = get_global_id(0), plane = get_global_id(1);
    if (ih >= h) return;
    __global float *d = dx + dxo + ((size_t)plane * h + ih) * w;
    for (int iw = 0; iw < w; iw++) d[iw] = 0.0f;
    const int oh0 = max(0, (ih + pad_h - size_h + stride_h) / stride_h), oh1 = min(p - 1, (ih + pad_h) / stride_h);
    for (int oh = oh0; oh <= oh1; oh++) {
        __global const float *g = dy + dyo + ((size_t)plane * p + oh) * q;
        for (int kw = 0; kw < size_w; kw++) {
            const int off = kw - pad_w;
            int lo, hi;
            pool_cols(off, stride_w, w, q, &lo, &hi);
            for (int ow = lo; ow < hi; ow++)
                d[ow * stride_w + off] +=
                    g[ow] / pool_div(oh, ow, h, w, size_h, size_w, stride_h, stride_w, pad_h, pad_w);
        }
    }
}

/* y[plane] = mean of the plane; one work-item per plane. */
__kernel void global_avgpool_forward(__global const X_T *x, const int xo, __global Y_T *y, const int yo,
                                     const int planes, const int hw)
{
    const int plane = get_global_id(0);
    if (plane >= planes) return;
    __global const X_T *xp = x + xo + (size_t)plane * hw;
    float sum = 0.0f;
    for (int i = 0; i < hw; i++) sum += LDX(i, xp);
    STY(sum / (float)hw, yo + plane, y);
}

/* dx[plane][i] = dy[plane] / hw; one work-item per input element. */
__kernel void global_avgpool_backward(__global const float *dy, const int dyo, __global float *dx, const int dxo,
                                      const int n, const int hw)
{
    const int i = get_global_id(0);
    if (i < n) dx[dxo + i] = dy[dyo + i / hw] / (float)hw;
}
