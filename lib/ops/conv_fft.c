/* Convolution by FFT (stride 1, no dilation, one group), through fft.c (clFFT).
 *
 * A convolution in deep learning is a cross-correlation, y[b][o] = sum_i x[b][i] * w[o][i]
 * (with * correlating); by the correlation theorem its spectrum is sum_i X[b][i] conj(W[o][i]).
 * Every plane is zero-padded to nh x nw, the next lengths clFFT transforms from h + 2 pad_h
 * and w + 2 pad_w: the circular correlation then equals the linear one at every output
 * (an output index plus a filter index stays below h + 2 pad_h), so no flip is needed and
 * the p x q outputs are the top-left window of the inverse transform. The data gradient is
 * the full convolution of dz with w, sum_o DZ[b][o] W[o][i], cropped at (pad_h, pad_w); the
 * filter gradient the correlation of the padded x with dz, sum_b X[b][i] conj(DZ[b][o]),
 * cropped to r x s at the origin and summed over chunks in the frequency domain, so one
 * inverse transform serves the whole batch. The spectral products are small complex matrix
 * products per frequency (fft_mul in conv.cl); the transforms are batched per chunk. */
#include "conv_fft.h"

#define FFT_MUL_N2 4 /* outputs per work-item of fft_mul (conv.cl) */

bool op_conv2d_fft_ok(const op_conv_shape *s)
{
    return s->stride_h == 1 && s->stride_w == 1 && s->dil_h == 1 && s->dil_w == 1 && s->groups == 1 &&
           (long)s->h + 2L * s->pad_h <= 1 << 14 && (long)s->w + 2L * s->pad_w <= 1 << 14;
}

static size_t align_up(size_t v) { return (v + FFT_ALIGN_FLOATS - 1) / FFT_ALIGN_FLOATS * FFT_ALIGN_FLOATS; }

conv_fft_layout conv_fft_plan(const op_conv_shape *s, int nb, size_t base)
{
    conv_fft_layout l;
    l.nh = fft_good_length(s->h + 2 * s->pad_h);
    l.nw = fft_good_length(s->w + 2 * s->pad_w);
    l.f = l.nh * (l.nw / 2 + 1);
    l.n = (size_t)l.nh * l.nw;
    size_t fc = 2 * (size_t)l.f, kc = (size_t)s->k * s->c, m = (size_t)nb * (s->c > s->k ? s->c : s->k);
    l.wf = align_up(base);
    l.dwf = align_up(l.wf + kc * fc);
    l.r = align_up(l.dwf + kc * fc);
    l.xf = align_up(l.r + (m > kc ? m : kc) * l.n);
    l.yf = align_up(l.xf + m * fc);
    l.end = l.yf + m * fc;
    return l;
}

/* Planes z = b*cin + ch (b < planes / cin) of src (channel stride sc, image stride sb,
 * rows x cols from so) at (top, left) of zeroed nh x nw planes at ws's l->r. */
static dlcl_status pad(dlcl_ctx *ctx, const conv_fft_layout *l, cl_mem src, size_t so, int sc, int sb, int rows,
                       int cols, int top, int left, int cin, int planes, cl_mem ws)
{
    cl_kernel k;
    int o = (int)so, d = (int)l->r;
    dlcl_status st = rt_kernel_get(ctx, "conv", "", "fft_pad", &k);
    if (st == DLCL_OK)
        st = rt_set_args(k, "fft_pad", RT_ARG(src), RT_ARG(o), RT_ARG(sc), RT_ARG(sb), RT_ARG(rows), RT_ARG(cols),
                         RT_ARG(top), RT_ARG(left), RT_ARG(ws), RT_ARG(d), RT_ARG(l->nh), RT_ARG(l->nw), RT_ARG(cin),
                         RT_ARGS_END);
    size_t g[2] = {(size_t)l->nh, (size_t)planes};
    return st == DLCL_OK ? rt_launch(ctx, k, "fft_pad", 2, g, NULL) : st;
}

/* C = sum over j of A' B' per frequency (see fft_mul in conv.cl); offsets in floats */
typedef struct {
    size_t off;
    int s_z, s_j, conj;
} spectra;

static dlcl_status mul(dlcl_ctx *ctx, const conv_fft_layout *l, cl_mem ws, spectra a, spectra b, size_t c_off,
                       int cs1, int cs2, int accumulate, int nj, int n1, int n2)
{
    cl_kernel k;
    int ao = (int)(a.off / 2), bo = (int)(b.off / 2), co = (int)(c_off / 2);
    dlcl_status st = rt_kernel_get(ctx, "conv", "", "fft_mul", &k);
    if (st == DLCL_OK)
        st = rt_set_args(k, "fft_mul", RT_ARG(ws), RT_ARG(ao), RT_ARG(a.s_z), RT_ARG(a.s_j), RT_ARG(a.conj), RT_ARG(ws),
                         RT_ARG(bo), RT_ARG(b.s_z), RT_ARG(b.s_j), RT_ARG(b.conj), RT_ARG(ws), RT_ARG(co), RT_ARG(cs1),
                         RT_ARG(cs2), RT_ARG(accumulate), RT_ARG(nj), RT_ARG(n2), RT_ARG(l->f), RT_ARGS_END);
    size_t g[3] = {(size_t)l->f, (size_t)(n2 + FFT_MUL_N2 - 1) / FFT_MUL_N2, (size_t)n1};
    return st == DLCL_OK ? rt_launch(ctx, k, "fft_mul", 3, g, NULL) : st;
}

/* out (NCHW, cout channels of hout x wout, nb images from oo) = act(window at (top, left)
 * of the real planes at l->r (+ bias)) */
static dlcl_status crop(dlcl_ctx *ctx, const conv_fft_layout *l, cl_mem ws, int top, int left, op_buf bias, op_buf out,
                        size_t oo, int cout, int hout, int wout, int nb, op_act act, float slope)
{
    cl_kernel k;
    int so = (int)l->r, bo = (int)bias.off, hb = bias.mem != NULL, o = (int)oo, a = (int)act;
    cl_mem bm = bias.mem ? bias.mem : ws;
    dlcl_status st = rt_kernel_get(ctx, "conv", "", "fft_crop", &k);
    if (st == DLCL_OK)
        st = rt_set_args(k, "fft_crop", RT_ARG(ws), RT_ARG(so), RT_ARG(l->nh), RT_ARG(l->nw), RT_ARG(top), RT_ARG(left),
                         RT_ARG(bm), RT_ARG(bo), RT_ARG(hb), RT_ARG(out.mem), RT_ARG(o), RT_ARG(cout), RT_ARG(hout),
                         RT_ARG(wout), RT_ARG(a), RT_ARG(slope), RT_ARGS_END);
    size_t g[2] = {(size_t)hout, (size_t)nb * cout};
    return st == DLCL_OK ? rt_launch(ctx, k, "fft_crop", 2, g, NULL) : st;
}

dlcl_status conv_fft_filter(dlcl_ctx *ctx, const op_conv_shape *s, const conv_fft_layout *l, op_buf w, cl_mem ws)
{
    dlcl_status st = pad(ctx, l, w.mem, w.off, s->r * s->s, s->c * s->r * s->s, s->r, s->s, 0, 0, s->c, s->k * s->c, ws);
    return st == DLCL_OK ? fft_2d(ctx, FFT_R2C, l->nh, l->nw, (size_t)s->k * s->c, ws, l->r, ws, l->wf) : st;
}

/* X[b][i] of images n0 .. n0+nb-1 at l->xf */
static dlcl_status input_spectra(dlcl_ctx *ctx, const op_conv_shape *s, const conv_fft_layout *l, op_buf x, int n0,
                                 int nb, cl_mem ws)
{
    int hw = s->h * s->w;
    dlcl_status st = pad(ctx, l, x.mem, x.off + (size_t)n0 * s->c * hw, hw, s->c * hw, s->h, s->w, s->pad_h, s->pad_w,
                         s->c, nb * s->c, ws);
    return st == DLCL_OK ? fft_2d(ctx, FFT_R2C, l->nh, l->nw, (size_t)nb * s->c, ws, l->r, ws, l->xf) : st;
}

dlcl_status conv_fft_forward_chunk(dlcl_ctx *ctx, const op_conv_shape *s, const conv_fft_layout *l, op_buf x, int n0,
                                   int nb, op_buf bias, op_act act, float slope, op_buf y, cl_mem ws)
{
    dlcl_status st = input_spectra(ctx, s, l, x, n0, nb, ws);
    /* Y[b][o] = sum_i X[b][i] conj(W[o][i]) */
    spectra a = {l->xf, s->c, 1, 0}, b = {l->wf, s->c, 1, 1};
    if (st == DLCL_OK) st = mul(ctx, l, ws, a, b, l->yf, s->k, 1, 0, s->c, nb, s->k);
    if (st == DLCL_OK) st = fft_2d(ctx, FFT_C2R, l->nh, l->nw, (size_t)nb * s->k, ws, l->yf, ws, l->r);
    size_t yo = y.off + (size_t)n0 * s->k * s->p * s->q;
    return st == DLCL_OK ? crop(ctx, l, ws, 0, 0, bias, y, yo, s->k, s->p, s->q, nb, act, slope) : st;
}

dlcl_status conv_fft_backward_chunk(dlcl_ctx *ctx, const op_conv_shape *s, const conv_fft_layout *l, op_buf t,
                                    size_t ldc, op_buf x, int n0, int nb, int want_dw, op_buf dx, cl_mem ws)
{
    /* DZ[b][o] at l->yf from t, image b's plane o at t.off + o*ldc + b*p*q */
    int pq = s->p * s->q;
    dlcl_status st = pad(ctx, l, t.mem, t.off, (int)ldc, pq, s->p, s->q, 0, 0, s->k, nb * s->k, ws);
    if (st == DLCL_OK) st = fft_2d(ctx, FFT_R2C, l->nh, l->nw, (size_t)nb * s->k, ws, l->r, ws, l->yf);
    if (st == DLCL_OK && dx.mem != NULL) { /* DX[b][i] = sum_o DZ[b][o] W[o][i] */
        spectra a = {l->yf, s->k, 1, 0}, b = {l->wf, 1, s->c, 0};
        st = mul(ctx, l, ws, a, b, l->xf, s->c, 1, 0, s->k, nb, s->c);
        if (st == DLCL_OK) st = fft_2d(ctx, FFT_C2R, l->nh, l->nw, (size_t)nb * s->c, ws, l->xf, ws, l->r);
        size_t dxo = dx.off + (size_t)n0 * s->c * s->h * s->w;
        if (st == DLCL_OK)
            st = crop(ctx, l, ws, s->pad_h, s->pad_w, op_b(NULL, 0), dx, dxo, s->c, s->h, s->w, nb, OP_ACT_LINEAR, 0.0f);
    }
    if (st == DLCL_OK && want_dw) { /* DW[o][i] (+)= sum_b conj(DZ[b][o]) X[b][i] */
        st = input_spectra(ctx, s, l, x, n0, nb, ws);
        spectra a = {l->yf, 1, s->k, 1}, b = {l->xf, 1, s->c, 0};
        if (st == DLCL_OK) st = mul(ctx, l, ws, a, b, l->dwf, s->c, 1, n0 > 0, nb, s->k, s->c);
    }
    return st;
}

dlcl_status conv_fft_filter_grad(dlcl_ctx *ctx, const op_conv_shape *s, const conv_fft_layout *l, op_buf dw, cl_mem ws)
{
    dlcl_status st = fft_2d(ctx, FFT_C2R, l->nh, l->nw, (size_t)s->k * s->c, ws, l->dwf, ws, l->r);
    return st == DLCL_OK ? crop(ctx, l, ws, 0, 0, op_b(NULL, 0), dw, dw.off, s->c, s->r, s->s, s->k, OP_ACT_LINEAR, 0.0f)
                         : st;
}
