/* Convolution: im2col + GEMM (through blas.c) for forward, backward-data and
 * backward-filter, and a direct kernel for forward passes with little reduction work.
 *
 * Images are processed in chunks so that the column buffer stays bounded. For a chunk of
 * nb images the columns are [c*r*s][nb*p*q] and the outputs [k][nb*p*q], so each group is
 * one GEMM with n = nb*p*q: whole tiles of the GEMM kernel instead of one narrow product
 * per image with a ragged edge of p*q % 16 columns (LeNet's conv2: p*q = 196). Small
 * kernels move tensors between NCHW and [k][nb*p*q]; the forward one adds the bias.
 *
 * The forward takes x, w and y stored as half (ops.h) on im2col's and the direct path: the
 * kernels that touch them are built with X_HALF, W_HALF, Y_HALF, dlcl's GEMM reads half
 * filters itself (blas.c), and the columns and the GEMM's result stay float in the
 * workspace. Winograd, the FFT, the implicit GEMM and the backward are float only. */
#include <stdio.h>
#include <stdlib.h>

#include "conv_fft.h"
#include "conv_implicit.h"

/* c/groups*r*s at or below this: direct kernel. Measured with `dlcl-bench examples/fashion_lenet.ini`
 * on PoCL: for the 1-channel 5x5 first layer (reduction 25) im2col + dlcl's GEMM takes 8.4 ms
 * forward against 16.3 ms for the direct kernel, so only tiny reductions stay direct. */
#define DIRECT_MAX_REDUCTION 4

dlcl_status op_conv_shape_infer(op_conv_shape *s)
{
    if (s->n < 1 || s->c < 1 || s->h < 1 || s->w < 1 || s->k < 1 || s->r < 1 || s->s < 1 || s->stride_h < 1 ||
        s->stride_w < 1 || s->pad_h < 0 || s->pad_w < 0 || s->dil_h < 1 || s->dil_w < 1 || s->groups < 1)
        return dlcl__err(DLCL_ERR_SHAPE, "convolution: every size must be positive (n %d c %d h %d w %d k %d r %d s %d "
                         "stride %dx%d pad %dx%d dilation %dx%d groups %d)", s->n, s->c, s->h, s->w, s->k, s->r, s->s,
                         s->stride_h, s->stride_w, s->pad_h, s->pad_w, s->dil_h, s->dil_w, s->groups);
    if (s->c % s->groups != 0 || s->k % s->groups != 0)
        return dlcl__err(DLCL_ERR_SHAPE, "convolution: groups = %d must divide the %d input channels and the %d filters",
                         s->groups, s->c, s->k);
    long eh = (long)s->dil_h * (s->r - 1) + 1, ew = (long)s->dil_w * (s->s - 1) + 1;
    long p = ((long)s->h + 2L * s->pad_h - eh) / s->stride_h + 1, q = ((long)s->w + 2L * s->pad_w - ew) / s->stride_w + 1;
    if ((long)s->h + 2L * s->pad_h < eh || (long)s->w + 2L * s->pad_w < ew || p < 1 || q < 1)
        return dlcl__err(DLCL_ERR_SHAPE, "convolution: the %ldx%ld kernel (with dilation) is larger than the %dx%d input "
                         "padded by %d,%d", eh, ew, s->h, s->w, s->pad_h, s->pad_w);
    if ((double)s->c * s->r * s->s * p * q > INT32_MAX || (double)s->n * s->c * s->h * s->w > INT32_MAX ||
        (double)s->n * s->k * p * q > INT32_MAX)
        return dlcl__err(DLCL_ERR_SHAPE, "convolution: tensors exceed 2^31 elements");
    s->p = (int)p;
    s->q = (int)q;
    return DLCL_OK;
}

static size_t per_image(const op_conv_shape *s)
{
    size_t crs = (size_t)s->c * s->r * s->s, pq = (size_t)s->p * s->q;
    return (crs + (size_t)s->k) * pq; /* columns + outputs (or gradients) as [k][nb*p*q] */
}

/* Images per chunk: as many as ctx->conv_chunk_floats of workspace hold (at least one).
 * On a CPU that is a few MiB, so that the columns im2col writes are still in the
 * last-level cache when the GEMM reads them (see context.c). */
static int chunk_images(const dlcl_ctx *ctx, const op_conv_shape *s)
{
    if (s->chunk > 0) return s->chunk < s->n ? s->chunk : s->n;
    size_t per = per_image(s), nb = per ? ctx->conv_chunk_floats / per : 1;
    if (nb < 1) nb = 1;
    if (nb > (size_t)s->n) nb = (size_t)s->n;
    return (int)nb;
}

/* Row length of the workspace matrices: at least n floats, an odd multiple of 16 (64 bytes).
 * The GEMM kernels read a 16- or 32-column strip of B one cache line per row; with a row
 * length that is a multiple of 1 or 4 KiB (LeNet's 64 x 196 = 12544, VGG's 64 x 784 = 50176)
 * those lines fall into a few L1 sets and evict each other, while an odd multiple of 64
 * bytes spreads them over every set. */
static size_t pad_ld(size_t n)
{
    size_t lines = (n + 15) / 16;
    return (lines | 1) * 16;
}

/* Workspace layout for a chunk of nb images (cols = nb*p*q): the columns [c*r*s][ldc] (in
 * backward, then their gradient) from element 0, the outputs or output gradients [k][ldc]
 * from t_off; after both, at wt_off for the largest chunk, the filter gradient transposed,
 * [c/groups*r*s][k/groups] per group, which backward accumulates across chunks. */
typedef struct {
    size_t cols, ldc, t_off, floats;
} ws_layout;

static ws_layout layout(const op_conv_shape *s, int nb)
{
    ws_layout l;
    l.cols = (size_t)nb * s->p * s->q;
    l.ldc = pad_ld(l.cols);
    l.t_off = (size_t)s->c * s->r * s->s * l.ldc;
    l.floats = l.t_off + (size_t)s->k * l.ldc;
    return l;
}

static size_t wt_floats(const op_conv_shape *s) { return (size_t)s->c / s->groups * s->r * s->s * s->k; }

int op_conv2d_chunk(const dlcl_ctx *ctx, const op_conv_shape *s) { return chunk_images(ctx, s); }

bool op_conv2d_winograd_ok(const op_conv_shape *s)
{
    return s->r == 3 && s->s == 3 && s->stride_h == 1 && s->stride_w == 1 && s->dil_h == 1 && s->dil_w == 1 &&
           s->groups == 1 && s->pad_h == s->pad_w && s->pad_h <= 2;
}

/* Winograd's part of the workspace, after the im2col layout and the filter gradient: U
 * (16 x c x k, the transformed filters), then V (16 x cin x ldv) and M (16 x cout x ldv)
 * for the chunk's tiles; the larger of the forward (cin c, cout k, p x q outputs) and the
 * data gradient (cin k, cout c, h x w). */
typedef struct wino_layout {
    int tw, tiles; /* tiles per row and per image */
    size_t ldv, v_off, m_off;
} wino_layout;

static wino_layout wino(const op_conv_shape *s, int nb, int backward, size_t base)
{
    int ho = backward ? s->h : s->p, wo = backward ? s->w : s->q, cin = backward ? s->k : s->c;
    wino_layout l;
    l.tw = (wo + 1) / 2;
    l.tiles = (ho + 1) / 2 * l.tw;
    l.ldv = pad_ld((size_t)nb * l.tiles);
    l.v_off = base + (size_t)16 * s->c * s->k;
    l.m_off = l.v_off + (size_t)16 * cin * l.ldv;
    return l;
}

static size_t wino_floats(const op_conv_shape *s, int nb)
{
    if (!op_conv2d_winograd_ok(s)) return 0;
    size_t f = (size_t)16 * s->c * s->k, a = wino(s, nb, 0, 0).ldv, b = wino(s, nb, 1, 0).ldv;
    size_t fwd = (size_t)16 * (s->c + s->k) * a, bwd = (size_t)16 * (s->k + s->c) * b;
    return f + (fwd > bwd ? fwd : bwd);
}

/* Where Winograd's or the FFT's part starts: after the im2col layout and the filter
 * gradient. The two are alternatives (one forward algorithm per call; the backward refuses
 * both at once), so they share the region. */
static size_t alt_base(const op_conv_shape *s, int nb) { return layout(s, nb).floats + wt_floats(s); }

/* Winograd's, the FFT's and the implicit GEMM's parts only where the shape asks for them
 * (s->winograd, s->winograd_dx, s->fft, s->fft_bwd, s->implicit, s->implicit_bwd) */
size_t op_conv2d_workspace(const dlcl_ctx *ctx, const op_conv_shape *s)
{
    int nb = chunk_images(ctx, s);
    size_t base = alt_base(s, nb), wino = s->winograd || s->winograd_dx ? base + wino_floats(s, nb) : base;
    size_t fft = (s->fft || s->fft_bwd) && op_conv2d_fft_ok(s) ? conv_fft_plan(s, nb, base).end : base;
    size_t impl = (s->implicit || s->implicit_bwd) && op_conv2d_implicit_ok(s) ? conv_implicit_plan(s, nb, base).end
                                                                                : base;
    size_t most = wino > fft ? wino : fft;
    return most > impl ? most : impl;
}

/* Common integer arguments of im2col/col2im, in kernel order after the buffers. */
#define GEOM(s) RT_ARG((s)->c), RT_ARG((s)->h), RT_ARG((s)->w), RT_ARG((s)->r), RT_ARG((s)->s), RT_ARG((s)->p), \
                RT_ARG((s)->q), RT_ARG((s)->stride_h), RT_ARG((s)->stride_w), RT_ARG((s)->pad_h), RT_ARG((s)->pad_w), \
                RT_ARG((s)->dil_h), RT_ARG((s)->dil_w)

/* Build options that specialise col2im.cl for this geometry (one program per shape, built
 * once and cached on disk like every other). */
static void geom_options(const op_conv_shape *s, char *buf, size_t cap)
{
    snprintf(buf, cap, "-DCV_C=%d -DCV_H=%d -DCV_W=%d -DCV_R=%d -DCV_S=%d -DCV_P=%d -DCV_Q=%d -DCV_SH=%d -DCV_SW=%d "
             "-DCV_PH=%d -DCV_PW=%d -DCV_DH=%d -DCV_DW=%d", s->c, s->h, s->w, s->r, s->s, s->p, s->q, s->stride_h,
             s->stride_w, s->pad_h, s->pad_w, s->dil_h, s->dil_w);
}

/* col [c*r*s][ld] at element 0 of col.mem (float, whatever x's storage) */
static dlcl_status im2col(dlcl_ctx *ctx, const op_conv_shape *s, op_buf x, int n0, int nb, size_t ldc, op_buf col)
{
    cl_kernel k;
    char opt[32];
    int xo = (int)(x.off + (size_t)n0 * s->c * s->h * s->w), pq = s->p * s->q, ld = (int)ldc;
    dlcl_status st = rt_kernel_get(ctx, "conv", op_half_opts(opt, sizeof opt, "X", x, (const char *)NULL), "im2col", &k);
    if (st == DLCL_OK)
        st = rt_set_args(k, "im2col", RT_ARG(x.mem), RT_ARG(xo), RT_ARG(col.mem), RT_ARG(pq), RT_ARG(ld), GEOM(s),
                         RT_ARGS_END);
    /* the kernel writes col from element 0 (check_ws rejects workspaces with an offset) */
    size_t g[2] = {(size_t)s->c * s->r * s->s, (size_t)nb};
    return st == DLCL_OK ? rt_launch(ctx, k, "im2col", 2, g, NULL) : st;
}

/* dx images n0 .. n0+nb-1 from the columns' gradient at element 0 of col.mem, with
 * col2im.cl built for this geometry: a work-item per input row (col2im_rows) from this
 * width up, per input element below it (see col2im.cl) */
#define COL2IM_ROWS_MIN_W 16
static dlcl_status col2im(dlcl_ctx *ctx, const op_conv_shape *s, op_buf col, int n0, int nb, size_t ldc, op_buf dx)
{
    cl_kernel k;
    char opt[256];
    int dxo = (int)(dx.off + (size_t)n0 * s->c * s->h * s->w), ipq = s->p * s->q, ld = (int)ldc;
    bool rows = s->w >= COL2IM_ROWS_MIN_W;
    const char *name = rows ? "col2im_rows" : "col2im";
    size_t gs[3] = {(size_t)s->h * (rows ? 1 : (size_t)s->w), (size_t)s->c, (size_t)nb};
    geom_options(s, opt, sizeof opt);
    dlcl_status st = rt_kernel_get(ctx, "col2im", opt, name, &k);
    if (st == DLCL_OK)
        st = rt_set_args(k, name, RT_ARG(col.mem), RT_ARG(ipq), RT_ARG(ld), RT_ARG(dx.mem), RT_ARG(dxo), RT_ARGS_END);
    return st == DLCL_OK ? rt_launch(ctx, k, name, 3, gs, NULL) : st;
}

/* t [k][ld] -> NCHW images n0 .. n0+nb-1 of y, adding the bias (bias.mem may be NULL)
 * and applying the activation. */
static dlcl_status kn_to_nchw(dlcl_ctx *ctx, const op_conv_shape *s, op_buf t, size_t ldc, op_buf y, op_buf bias,
                              op_act act, float slope, int n0, int nb)
{
    cl_kernel k;
    char opt[32];
    dlcl_status st = rt_kernel_get(ctx, "conv", op_half_opts(opt, sizeof opt, "Y", y, (const char *)NULL), "kn_to_nchw",
                                   &k);
    int pq = s->p * s->q, yo = (int)(y.off + (size_t)n0 * s->k * pq), bo = (int)bias.off, hb = bias.mem != NULL,
        to = (int)t.off, a = (int)act, ld = (int)ldc;
    cl_mem bm = bias.mem ? bias.mem : t.mem;
    if (st == DLCL_OK)
        st = rt_set_args(k, "kn_to_nchw", RT_ARG(t.mem), RT_ARG(to), RT_ARG(y.mem), RT_ARG(yo), RT_ARG(bm), RT_ARG(bo),
                         RT_ARG(hb), RT_ARG(s->k), RT_ARG(pq), RT_ARG(ld), RT_ARG(a), RT_ARG(slope), RT_ARGS_END);
    size_t g[2] = {(size_t)s->k, (size_t)nb};
    return st == DLCL_OK ? rt_launch(ctx, k, "kn_to_nchw", 2, g, NULL) : st;
}

/* NCHW gradients dy of images n0 .. n0+nb-1, through the activation whose output is y
 * (y.mem NULL: linear), -> t [k][ld]. */
static dlcl_status nchw_to_kn(dlcl_ctx *ctx, const op_conv_shape *s, op_buf dy, op_buf y, op_act act, float slope,
                              op_buf t, size_t ldc, int n0, int nb)
{
    cl_kernel k;
    dlcl_status st = rt_kernel_get(ctx, "conv", "", "nchw_to_kn", &k);
    int pq = s->p * s->q, first = (int)((size_t)n0 * s->k * pq), dyo = (int)dy.off + first,
        yo = y.mem ? (int)y.off + first : 0, to = (int)t.off, a = y.mem ? (int)act : 0, ld = (int)ldc;
    cl_mem ym = y.mem ? y.mem : dy.mem;
    if (st == DLCL_OK)
        st = rt_set_args(k, "nchw_to_kn", RT_ARG(dy.mem), RT_ARG(dyo), RT_ARG(ym), RT_ARG(yo), RT_ARG(t.mem), RT_ARG(to),
                         RT_ARG(s->k), RT_ARG(pq), RT_ARG(ld), RT_ARG(a), RT_ARG(slope), RT_ARGS_END);
    size_t g[2] = {(size_t)s->k, (size_t)nb};
    return st == DLCL_OK ? rt_launch(ctx, k, "nchw_to_kn", 2, g, NULL) : st;
}

/* A chunk's columns, outputs or output gradients as a matrix set: image b's rows x p*q block
 * at off + b*img, rows ld apart. The workspace keeps a chunk as [rows][ld] with the images
 * side by side in each row (img = p*q), so that one product spans all of them; an NCHW
 * tensor is used where it lies (ld = p*q, img = rows*p*q), which saves the relayout
 * (kn_to_nchw, nchw_to_kn, im2col and col2im of a 1x1 convolution) when in_place allows. */
typedef struct conv_view {
    cl_mem mem;
    size_t off, ld, img;
} conv_view;

static conv_view ws_view(cl_mem ws, size_t off, size_t ldc, size_t pq) { return (conv_view){ws, off, ldc, pq}; }

/* images n0 .. of an NCHW tensor t with `rows` channels */
static conv_view nchw_view(op_buf t, int n0, size_t rows, size_t pq)
{
    return (conv_view){t.mem, t.off + (size_t)n0 * rows * pq, pq, rows * pq};
}

static conv_view view_rows(conv_view v, size_t row0)
{
    v.off += row0 * v.ld;
    return v;
}

/* Whether a chunk of cnt images can use NCHW tensors in place. One image is one [rows][p*q]
 * block already. Several are a batch of products of p*q columns each, taken on CPU devices
 * where p*q fills whole tiles of the GEMM kernel (blas.c: 32 columns for 16-wide vectors),
 * or, for the 16-column tiles that take ragged edges themselves, where the last tile of
 * each image recomputes at most a sixteenth more: ResNet's 56x56, 28x28 and 14x14 layers,
 * not its 7x7 ones (49 = 3 x 16 + 1 would cost 15 columns in 64). GPUs keep one wide
 * product over the chunk and the relayouts, whose accesses coalesce. */
static bool in_place(const dlcl_ctx *ctx, const op_conv_shape *s, int cnt)
{
    size_t pq = (size_t)s->p * s->q, tiles = (pq + 15) / 16;
    if (cnt == 1) return true;
    if (!ctx->cpu_device) return false;
    return ctx->gemm_vector_width >= 16 ? pq % 32 == 0 : (tiles * 16 - pq) * 16 <= pq;
}

/* A 1x1 convolution of stride 1 without padding: its columns are its input's channels. */
static bool cols_are_input(const op_conv_shape *s)
{
    return s->r == 1 && s->s == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_h == 0 && s->pad_w == 0;
}

/* C = op(A) B over a chunk of nb images (A shared, op(A) m x k): one product over the
 * nb*p*q columns when both views keep the images side by side, else a batch of nb. */
static dlcl_status gemm_images(dlcl_ctx *ctx, dlcl_transpose ta, size_t m, size_t k, op_buf a, size_t lda, conv_view b,
                               conv_view c, int nb, size_t pq)
{
    bool wide = nb == 1 || (b.img == pq && c.img == pq);
    size_t n = wide ? (size_t)nb * pq : pq, batch = wide ? 1 : (size_t)nb;
    return op_gemm_batched(ctx, ta, DLCL_NO_TRANS, m, n, k, a, lda, 0, op_b(b.mem, b.off), b.ld, wide ? 0 : b.img,
                           0.0f, op_b(c.mem, c.off), c.ld, wide ? 0 : c.img, batch);
}

/* The transposed filter gradient of a group, wt (m x n = c/groups*r*s x k/groups) = col dz^T
 * summed over the chunk's images (first: overwritten, else added to): one product over all
 * the columns when both views keep the images side by side, else one per image. */
static dlcl_status gemm_filter_grad(dlcl_ctx *ctx, size_t m, size_t n, conv_view col, conv_view dz, int nb, size_t pq,
                                    bool first, op_buf wt)
{
    if (nb == 1 || (col.img == pq && dz.img == pq))
        return op_gemm(ctx, DLCL_NO_TRANS, DLCL_TRANS, m, n, (size_t)nb * pq, op_b(col.mem, col.off), col.ld,
                       op_b(dz.mem, dz.off), dz.ld, first ? 0.0f : 1.0f, wt, n);
    dlcl_status st = DLCL_OK;
    for (int b = 0; st == DLCL_OK && b < nb; b++)
        st = op_gemm(ctx, DLCL_NO_TRANS, DLCL_TRANS, m, n, pq, op_b(col.mem, col.off + b * col.img), col.ld,
                     op_b(dz.mem, dz.off + b * dz.img), dz.ld, first && b == 0 ? 0.0f : 1.0f, wt, n);
    return st;
}

/* y = act(y + bias) in place over images n0 .. n0+nb-1 of NCHW y (bias.mem may be NULL) */
static dlcl_status bias_act(dlcl_ctx *ctx, const op_conv_shape *s, op_buf y, op_buf bias, op_act act, float slope,
                            int n0, int nb)
{
    cl_kernel k;
    char opt[32];
    dlcl_status st = rt_kernel_get(ctx, "conv", op_half_opts(opt, sizeof opt, "Y", y, (const char *)NULL), "bias_act",
                                   &k);
    int pq = s->p * s->q, yo = (int)(y.off + (size_t)n0 * s->k * pq), bo = (int)bias.off, hb = bias.mem != NULL,
        a = (int)act;
    cl_mem bm = bias.mem ? bias.mem : y.mem;
    if (st == DLCL_OK)
        st = rt_set_args(k, "bias_act", RT_ARG(y.mem), RT_ARG(yo), RT_ARG(bm), RT_ARG(bo), RT_ARG(hb), RT_ARG(s->k),
                         RT_ARG(pq), RT_ARG(a), RT_ARG(slope), RT_ARGS_END);
    size_t g[2] = {(size_t)s->k, (size_t)nb};
    return st == DLCL_OK ? rt_launch(ctx, k, "bias_act", 2, g, NULL) : st;
}

/* Forward of images n0 .. n0+cnt-1 by im2col + GEMM (see conv_view for what stays in place).
 * A half x is never the GEMM's B: im2col converts it into the float columns, as widening
 * it would, without blas.c's extra buffer. A half y cannot be its C: the product goes to
 * the workspace and kn_to_nchw rounds it once, bias and activation included. */
static dlcl_status forward_gemm_chunk(dlcl_ctx *ctx, const op_conv_shape *s, op_buf x, op_buf w, op_buf bias,
                                      op_act act, float slope, op_buf y, op_buf ws, int n0, int cnt)
{
    int kg = s->k / s->groups;
    size_t K = (size_t)(s->c / s->groups) * s->r * s->s, pq = (size_t)s->p * s->q;
    ws_layout l = layout(s, cnt);
    bool inp = in_place(ctx, s, cnt), y_inp = inp && !y.half;
    conv_view col = inp && cols_are_input(s) && !x.half ? nchw_view(x, n0, (size_t)s->c, pq)
                                                         : ws_view(ws.mem, 0, l.ldc, pq);
    conv_view out = y_inp ? nchw_view(y, n0, (size_t)s->k, pq) : ws_view(ws.mem, l.t_off, l.ldc, pq);
    dlcl_status st = col.mem == ws.mem ? im2col(ctx, s, x, n0, cnt, l.ldc, ws) : DLCL_OK;
    for (int g = 0; st == DLCL_OK && g < s->groups; g++)
        st = gemm_images(ctx, DLCL_NO_TRANS, (size_t)kg, K, op_at(w, (size_t)g * kg * K), K,
                         view_rows(col, (size_t)g * K), view_rows(out, (size_t)g * kg), cnt, pq);
    if (st != DLCL_OK) return st;
    if (!y_inp) return kn_to_nchw(ctx, s, op_b(ws.mem, l.t_off), l.ldc, y, bias, act, slope, n0, cnt);
    return bias.mem != NULL || act != OP_ACT_LINEAR ? bias_act(ctx, s, y, bias, act, slope, n0, cnt) : DLCL_OK;
}

static dlcl_status forward_direct(dlcl_ctx *ctx, const op_conv_shape *s, op_buf x, op_buf w, op_buf bias, op_act act,
                                  float slope, op_buf y)
{
    cl_kernel k;
    char opt[64];
    dlcl_status st = rt_kernel_get(ctx, "conv", op_half_opts(opt, sizeof opt, "X", x, "W", w, "Y", y, (const char *)NULL),
                                   "conv2d_direct", &k);
    int xo = (int)x.off, wo = (int)w.off, bo = (int)bias.off, yo = (int)y.off, has_bias = bias.mem != NULL, a = (int)act;
    cl_mem bm = bias.mem ? bias.mem : w.mem;
    if (st == DLCL_OK)
        st = rt_set_args(k, "conv2d_direct", RT_ARG(x.mem), RT_ARG(xo), RT_ARG(w.mem), RT_ARG(wo), RT_ARG(bm), RT_ARG(bo),
                         RT_ARG(has_bias), RT_ARG(y.mem), RT_ARG(yo), RT_ARG(s->c), RT_ARG(s->h), RT_ARG(s->w),
                         RT_ARG(s->k), RT_ARG(s->r), RT_ARG(s->s), RT_ARG(s->p), RT_ARG(s->q), RT_ARG(s->stride_h),
                         RT_ARG(s->stride_w), RT_ARG(s->pad_h), RT_ARG(s->pad_w), RT_ARG(s->dil_h), RT_ARG(s->dil_w),
                         RT_ARG(s->groups), RT_ARG(a), RT_ARG(slope), RT_ARGS_END);
    size_t g[3] = {(size_t)s->p * s->q, (size_t)s->k, (size_t)s->n};
    return st == DLCL_OK ? rt_launch(ctx, k, "conv2d_direct", 3, g, NULL) : st;
}

/* groups == c > 1: every filter sees one input channel; the dw_* kernels of conv.c */
static bool depthwise(const op_conv_shape *s) { return s->groups == s->c && s->c > 1; }

op_conv_algo op_conv2d_heuristic(const op_conv_shape *s)
{
    size_t K = (size_t)s->c / s->groups * s->r * s->s;
    return K <= DIRECT_MAX_REDUCTION || depthwise(s) ? OP_CONV_DIRECT : OP_CONV_IM2COL_GEMM;
}

static dlcl_status dw_forward(dlcl_ctx *ctx, const op_conv_shape *s, op_buf x, op_buf w, op_buf bias, op_act act,
                              float slope, op_buf y)
{
    cl_kernel k;
    char opt[64];
    dlcl_status st = rt_kernel_get(ctx, "conv", op_half_opts(opt, sizeof opt, "X", x, "W", w, "Y", y, (const char *)NULL),
                                   "dw_forward", &k);
    int xo = (int)x.off, wo = (int)w.off, bo = (int)bias.off, yo = (int)y.off, has_bias = bias.mem != NULL, a = (int)act;
    cl_mem bm = bias.mem ? bias.mem : w.mem;
    if (st == DLCL_OK)
        st = rt_set_args(k, "dw_forward", RT_ARG(x.mem), RT_ARG(xo), RT_ARG(w.mem), RT_ARG(wo), RT_ARG(bm), RT_ARG(bo),
                         RT_ARG(has_bias), RT_ARG(y.mem), RT_ARG(yo), RT_ARG(s->c), RT_ARG(s->h), RT_ARG(s->w),
                         RT_ARG(s->k), RT_ARG(s->r), RT_ARG(s->s), RT_ARG(s->p), RT_ARG(s->q), RT_ARG(s->stride_h),
                         RT_ARG(s->stride_w), RT_ARG(s->pad_h), RT_ARG(s->pad_w), RT_ARG(s->dil_h), RT_ARG(s->dil_w),
                         RT_ARG(a), RT_ARG(slope), RT_ARGS_END);
    size_t g[3] = {(size_t)s->p, (size_t)s->k, (size_t)s->n};
    return st == DLCL_OK ? rt_launch(ctx, k, "dw_forward", 3, g, NULL) : st;
}

/* the geometry arguments of the dw_* kernels after their buffers */
#define DW_GEOM(s) RT_ARG((s)->c), RT_ARG((s)->h), RT_ARG((s)->w), RT_ARG((s)->k), RT_ARG((s)->r), RT_ARG((s)->s), \
                   RT_ARG((s)->p), RT_ARG((s)->q), RT_ARG((s)->stride_h), RT_ARG((s)->stride_w), RT_ARG((s)->pad_h), \
                   RT_ARG((s)->pad_w), RT_ARG((s)->dil_h), RT_ARG((s)->dil_w)

/* dw (first: overwritten, else added to) and dx of images n0 .. n0+nb-1 from dz in t [k][ld] */
static dlcl_status dw_backward(dlcl_ctx *ctx, const op_conv_shape *s, op_buf t, size_t ldc, op_buf x, op_buf w,
                               op_buf dw, op_buf dx, int n0, int nb)
{
    cl_kernel k;
    int zo = (int)t.off, ld = (int)ldc, first = n0 == 0, img = s->c * s->h * s->w;
    dlcl_status st = DLCL_OK;
    if (dw.mem != NULL) {
        int xo = (int)x.off + n0 * img, dwo = (int)dw.off;
        st = rt_kernel_get(ctx, "conv", "", "dw_backward_filter", &k);
        if (st == DLCL_OK)
            st = rt_set_args(k, "dw_backward_filter", RT_ARG(t.mem), RT_ARG(zo), RT_ARG(ld), RT_ARG(nb), RT_ARG(x.mem),
                             RT_ARG(xo), RT_ARG(dw.mem), RT_ARG(dwo), RT_ARG(first), DW_GEOM(s), RT_ARGS_END);
        size_t g[2] = {(size_t)s->r * s->s, (size_t)s->k};
        if (st == DLCL_OK) st = rt_launch(ctx, k, "dw_backward_filter", 2, g, NULL);
    }
    if (st == DLCL_OK && dx.mem != NULL) {
        int wo = (int)w.off, dxo = (int)dx.off + n0 * img;
        st = rt_kernel_get(ctx, "conv", "", "dw_backward_data", &k);
        if (st == DLCL_OK)
            st = rt_set_args(k, "dw_backward_data", RT_ARG(t.mem), RT_ARG(zo), RT_ARG(ld), RT_ARG(w.mem), RT_ARG(wo),
                             RT_ARG(dx.mem), RT_ARG(dxo), DW_GEOM(s), RT_ARGS_END);
        size_t g[3] = {(size_t)s->h, (size_t)s->c, (size_t)nb};
        if (st == DLCL_OK) st = rt_launch(ctx, k, "dw_backward_data", 3, g, NULL);
    }
    return st;
}

/* U = the 16 transformed filters at u_off (flip: the data gradient's, see conv.cl) */
static dlcl_status wino_filter(dlcl_ctx *ctx, const op_conv_shape *s, op_buf w, int flip, op_buf ws, size_t u_off)
{
    cl_kernel k;
    int wo = (int)w.off, cin = flip ? s->k : s->c, cout = flip ? s->c : s->k, uo = (int)u_off;
    dlcl_status st = rt_kernel_get(ctx, "conv", "", "winograd_filter", &k);
    if (st == DLCL_OK)
        st = rt_set_args(k, "winograd_filter", RT_ARG(w.mem), RT_ARG(wo), RT_ARG(ws.mem), RT_ARG(uo), RT_ARG(cin),
                         RT_ARG(cout), RT_ARG(flip), RT_ARGS_END);
    size_t g[2] = {(size_t)cin, (size_t)cout};
    return st == DLCL_OK ? rt_launch(ctx, k, "winograd_filter", 2, g, NULL) : st;
}

/* One chunk of nb images through Winograd: in (channel i of image b at in.off + i*sc +
 * b*sb, hin x win, cin channels) -> out (NCHW from out.off, cout channels, hout x wout),
 * with the transformed filters already in u (wino_filter); V and M in ws per l. */
static dlcl_status wino_chunk(dlcl_ctx *ctx, op_buf in, int sc, int sb, int cin, int hin, int win, int pad, int cout,
                              int hout, int wout, int nb, const wino_layout *l, op_buf u, op_buf ws, op_buf bias,
                              op_act act, float slope, op_buf out)
{
    cl_kernel k;
    int io = (int)in.off, tw = l->tw, tiles = l->tiles, ldv = (int)l->ldv;
    op_buf v = op_b(ws.mem, l->v_off), m = op_b(ws.mem, l->m_off);
    dlcl_status st = rt_kernel_get(ctx, "conv", "", "winograd_input", &k);
    cl_mem vm = v.mem;
    int vo = (int)v.off;
    if (st == DLCL_OK)
        st = rt_set_args(k, "winograd_input", RT_ARG(in.mem), RT_ARG(io), RT_ARG(sc), RT_ARG(sb), RT_ARG(hin),
                         RT_ARG(win), RT_ARG(pad), RT_ARG(tw), RT_ARG(tiles), RT_ARG(vm), RT_ARG(vo), RT_ARG(ldv),
                         RT_ARG(cin), RT_ARGS_END);
    size_t gi[3] = {(size_t)tiles, (size_t)cin, (size_t)nb};
    if (st == DLCL_OK) st = rt_launch(ctx, k, "winograd_input", 3, gi, NULL);
    size_t n = (size_t)nb * tiles;
    if (st == DLCL_OK)
        st = op_gemm_batched(ctx, DLCL_NO_TRANS, DLCL_NO_TRANS, (size_t)cout, n, (size_t)cin, u, (size_t)cin,
                  (size_t)cout * cin, v, l->ldv, (size_t)cin * l->ldv, 0.0f, m, l->ldv, (size_t)cout * l->ldv, 16);
    int mo = (int)m.off, bo = (int)bias.off, hb = bias.mem != NULL, oo = (int)out.off, a = (int)act;
    cl_mem bm = bias.mem ? bias.mem : ws.mem;
    if (st == DLCL_OK) st = rt_kernel_get(ctx, "conv", "", "winograd_output", &k);
    if (st == DLCL_OK)
        st = rt_set_args(k, "winograd_output", RT_ARG(m.mem), RT_ARG(mo), RT_ARG(ldv), RT_ARG(tw), RT_ARG(tiles),
                         RT_ARG(bm), RT_ARG(bo), RT_ARG(hb), RT_ARG(out.mem), RT_ARG(oo), RT_ARG(cout), RT_ARG(hout),
                         RT_ARG(wout), RT_ARG(a), RT_ARG(slope), RT_ARGS_END);
    size_t go[3] = {(size_t)tiles, (size_t)cout, (size_t)nb};
    return st == DLCL_OK ? rt_launch(ctx, k, "winograd_output", 3, go, NULL) : st;
}

/* Sub-buffer offsets: kernels that write the workspace take it from element 0, so a
 * workspace with an offset is rejected rather than silently overwritten. */
/* The workspace starts at 0 and holds what this call uses: the im2col layout, and
 * Winograd's part when it runs (so a workspace sized without s->winograd is refused). */
static dlcl_status check_ws(const dlcl_ctx *ctx, const op_conv_shape *s, int winograd, int fft, int implicit,
                            op_buf ws, const char *fn)
{
    if (ws.off != 0) return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: the workspace must start at offset 0", fn);
    if (ws.mem == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: no workspace", fn);
    op_conv_shape t = *s;
    t.winograd = winograd, t.winograd_dx = 0, t.fft = fft, t.fft_bwd = 0, t.implicit = implicit, t.implicit_bwd = 0;
    size_t need = op_conv2d_workspace(ctx, &t) * sizeof(float), have = 0;
    if (clGetMemObjectInfo(ws.mem, CL_MEM_SIZE, sizeof have, &have, NULL) != CL_SUCCESS || have < need)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: the workspace holds %zu bytes, this call needs %zu "
                         "(op_conv2d_workspace with the algorithm's flags)", fn, have, need);
    return DLCL_OK;
}

dlcl_status op_conv2d_forward_act(dlcl_ctx *ctx, const op_conv_shape *s, op_conv_algo algo, op_buf x, op_buf w,
                                  op_buf bias, op_act act, float slope, op_buf y, op_buf ws)
{
    if ((unsigned)act >= OP_ACT_COUNT) return dlcl__err(DLCL_ERR_INVALID_ARG, "op_conv2d_forward: activation %d", (int)act);
    if (bias.half) return op_require_float("op_conv2d_forward", "the bias", bias);
    if (algo == OP_CONV_AUTO) algo = op_conv2d_heuristic(s);
    if (algo == OP_CONV_DIRECT && depthwise(s)) return dw_forward(ctx, s, x, w, bias, act, slope, y);
    if (algo == OP_CONV_DIRECT) return forward_direct(ctx, s, x, w, bias, act, slope, y);
    if (algo != OP_CONV_IM2COL_GEMM && (x.half || w.half || y.half))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_conv2d_forward: the %s convolution has no half-precision path "
                         "(%s is stored as half); im2col + GEMM and the direct kernel have one",
                         algo == OP_CONV_WINOGRAD ? "Winograd" : algo == OP_CONV_FFT ? "FFT" : "implicit-GEMM",
                         x.half ? "x" : w.half ? "w" : "y");
    dlcl_status st = check_ws(ctx, s, algo == OP_CONV_WINOGRAD, algo == OP_CONV_FFT, algo == OP_CONV_IMPLICIT, ws,
                              "op_conv2d_forward");
    int nb = chunk_images(ctx, s);
    if (algo == OP_CONV_IMPLICIT) {
        if (!op_conv2d_implicit_ok(s))
            return dlcl__err(DLCL_ERR_INVALID_ARG, "op_conv2d_forward: the implicit GEMM needs stride 1, no dilation, "
                             "one group, 16 or more channels and filters, and a padding below the kernel size");
        conv_implicit_layout il = conv_implicit_plan(s, nb, alt_base(s, nb));
        /* the bias and a relu in the kernel's store (other activations after it) */
        bool fuse = act == OP_ACT_LINEAR || act == OP_ACT_RELU;
        op_buf fb = fuse ? bias : op_b(NULL, 0);
        for (int n0 = 0; st == DLCL_OK && n0 < s->n; n0 += nb)
            st = conv_implicit_forward_chunk(ctx, s, &il, x, w, fb, fuse && act == OP_ACT_RELU, n0,
                                             s->n - n0 < nb ? s->n - n0 : nb, y, ws.mem);
        if (st != DLCL_OK || fuse) return st;
        return bias_act(ctx, s, y, bias, act, slope, 0, s->n);
    }
    if (algo == OP_CONV_FFT) {
        if (!op_conv2d_fft_ok(s))
            return dlcl__err(DLCL_ERR_INVALID_ARG, "op_conv2d_forward: the FFT convolution needs stride 1, no dilation "
                             "and one group");
        conv_fft_layout fl = conv_fft_plan(s, nb, alt_base(s, nb));
        if (st == DLCL_OK) st = conv_fft_filter(ctx, s, &fl, w, ws.mem);
        for (int n0 = 0; st == DLCL_OK && n0 < s->n; n0 += nb) {
            int cnt = s->n - n0 < nb ? s->n - n0 : nb;
            st = conv_fft_forward_chunk(ctx, s, &fl, x, n0, cnt, bias, act, slope, y, ws.mem);
        }
        return st;
    }
    if (algo == OP_CONV_WINOGRAD) {
        if (!op_conv2d_winograd_ok(s))
            return dlcl__err(DLCL_ERR_INVALID_ARG, "op_conv2d_forward: Winograd F(2x2,3x3) needs a 3x3 kernel, stride 1, "
                             "no dilation, one group and a padding of at most 2");
        size_t base = alt_base(s, nb);
        if (st == DLCL_OK) st = wino_filter(ctx, s, w, 0, ws, base);
        for (int n0 = 0; st == DLCL_OK && n0 < s->n; n0 += nb) {
            int cnt = s->n - n0 < nb ? s->n - n0 : nb, hw = s->h * s->w;
            wino_layout wl = wino(s, cnt, 0, base);
            st = wino_chunk(ctx, op_b(x.mem, x.off + (size_t)n0 * s->c * hw), hw, s->c * hw, s->c, s->h, s->w, s->pad_h,
                            s->k, s->p, s->q, cnt, &wl, op_b(ws.mem, base), ws, bias, act, slope,
                            op_b(y.mem, y.off + (size_t)n0 * s->k * s->p * s->q));
        }
        return st;
    }
    for (int n0 = 0; st == DLCL_OK && n0 < s->n; n0 += nb)
        st = forward_gemm_chunk(ctx, s, x, w, bias, act, slope, y, ws, n0, s->n - n0 < nb ? s->n - n0 : nb);
    return st;
}

dlcl_status op_conv2d_forward_algo(dlcl_ctx *ctx, const op_conv_shape *s, op_conv_algo algo, op_buf x, op_buf w,
                                   op_buf bias, op_buf y, op_buf ws)
{
    return op_conv2d_forward_act(ctx, s, algo, x, w, bias, OP_ACT_LINEAR, 0.0f, y, ws);
}

dlcl_status op_conv2d_forward(dlcl_ctx *ctx, const op_conv_shape *s, op_buf x, op_buf w, op_buf bias, op_buf y,
                              op_buf ws)
{
    return op_conv2d_forward_act(ctx, s, OP_CONV_AUTO, x, w, bias, OP_ACT_LINEAR, 0.0f, y, ws);
}

/* Both gradients by implicit GEMM (conv_implicit.c), dz = dy: the bias gradient from dy,
 * dW^T accumulated over chunks as on im2col's path and transposed into dW at the end. */
static dlcl_status backward_implicit(dlcl_ctx *ctx, const op_conv_shape *s, int nb, op_buf dy, op_buf x, op_buf w,
                                     op_buf dw, op_buf db, op_buf dx, op_buf ws)
{
    size_t K = (size_t)s->c * s->r * s->s, pq = (size_t)s->p * s->q, wt_off = layout(s, nb).floats;
    conv_implicit_layout il = conv_implicit_plan(s, nb, alt_base(s, nb));
    op_buf wt = dw.mem != NULL ? op_b(ws.mem, wt_off) : op_b(NULL, 0);
    dlcl_status st = dx.mem != NULL ? conv_implicit_flip(ctx, s, &il, w, ws.mem) : DLCL_OK;
    for (int n0 = 0; st == DLCL_OK && n0 < s->n; n0 += nb) {
        int cnt = s->n - n0 < nb ? s->n - n0 : nb;
        if (db.mem != NULL)
            st = op_bias_grad_acc(ctx, op_b(dy.mem, dy.off + (size_t)n0 * s->k * pq), db, cnt, s->k, (int)pq, (int)pq,
                                  n0 > 0);
        if (st == DLCL_OK) st = conv_implicit_backward_chunk(ctx, s, &il, dy, x, n0, cnt, wt, dx, ws.mem);
    }
    if (st == DLCL_OK && dw.mem != NULL)
        st = blas_transpose(ctx, ws.mem, wt_off, (size_t)s->k, 0, K, (size_t)s->k, 1, dw.mem, dw.off, K, 0);
    return st;
}

/* Per chunk of images: dz = dy * act'(y) relaid out once as [k][cols]; the bias gradient
 * is its row sums; the forward's columns again (im2col) and the transposed filter gradient
 * dW_g^T (+)= col_g dz_g^T, accumulated across chunks and transposed into dW at the end;
 * then the columns' gradient W_g^T dz_g overwrites the columns and col2im scatters it into
 * dx. dW^T rather than dW = dz col^T: the product is the same, but im2col writes rows at
 * memory speed where a transposed im2col ("im2row") ran 2.5x slower, and the tall, narrow
 * product is as fast or faster (`dlcl-bench gemm --sizes 288x32x50176,32x288x50176,
 * 800x64x12544,64x800x12544` on an AVX2 EPYC: 51 vs 44, 96 vs 73 GFLOP/s). */
dlcl_status op_conv2d_backward(dlcl_ctx *ctx, const op_conv_shape *s, op_act act, float slope, op_buf y, op_buf x,
                               op_buf dy, op_buf w, op_buf dw, op_buf db, op_buf dx, op_buf ws)
{
    int cg = s->c / s->groups, kg = s->k / s->groups;
    size_t K = (size_t)cg * s->r * s->s;
    if ((unsigned)act >= OP_ACT_COUNT || op_act_needs_input(act) || (act != OP_ACT_LINEAR && y.mem == NULL))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_conv2d_backward: activation %d cannot be fused here", (int)act);
    const op_buf bufs[] = {y, x, dy, w, dw, db, dx};
    const char *names[] = {"y", "x", "dy", "w", "dw", "db", "dx"};
    for (size_t i = 0; i < DLCL__ARRAY_LEN(bufs); i++)
        if (bufs[i].half) return op_require_float("op_conv2d_backward", names[i], bufs[i]);
    bool wino_dx = dx.mem != NULL && s->winograd_dx, fft = s->fft_bwd && (dx.mem != NULL || dw.mem != NULL);
    /* by implicit GEMM where dz is dy itself (a fused activation's gradient takes im2col's
     * path, nchw_to_kn forming dz) */
    bool impl = s->implicit_bwd && act == OP_ACT_LINEAR && !wino_dx && !fft && (dx.mem != NULL || dw.mem != NULL);
    dlcl_status st = check_ws(ctx, s, wino_dx, fft, impl, ws, "op_conv2d_backward");
    int nb = chunk_images(ctx, s);
    size_t wt_off = layout(s, nb).floats, base = alt_base(s, nb);
    if (wino_dx && !op_conv2d_winograd_ok(s))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_conv2d_backward: no Winograd data gradient for this shape");
    if (fft && (wino_dx || !op_conv2d_fft_ok(s)))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_conv2d_backward: no FFT gradients for this shape%s",
                         wino_dx ? " (with a Winograd data gradient)" : "");
    if (impl && !op_conv2d_implicit_ok(s))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_conv2d_backward: no implicit-GEMM gradients for this shape");
    if (impl) return backward_implicit(ctx, s, nb, dy, x, w, dw, db, dx, ws);
    conv_fft_layout fl = {0};
    if (fft) fl = conv_fft_plan(s, nb, base);
    if (st == DLCL_OK && wino_dx) st = wino_filter(ctx, s, w, 1, ws, base);
    if (st == DLCL_OK && fft && dx.mem != NULL) st = conv_fft_filter(ctx, s, &fl, w, ws.mem);
    for (int n0 = 0; st == DLCL_OK && n0 < s->n; n0 += nb) {
        int cnt = s->n - n0 < nb ? s->n - n0 : nb;
        ws_layout l = layout(s, cnt);
        size_t pq = (size_t)s->p * s->q;
        bool inp = in_place(ctx, s, cnt);
        /* dz = dy * act'(y): dy itself when linear and every consumer takes it where it lies */
        conv_view dz = ws_view(ws.mem, l.t_off, l.ldc, pq);
        if (act == OP_ACT_LINEAR && inp && !fft && !depthwise(s))
            dz = nchw_view(dy, n0, (size_t)s->k, pq);
        else
            st = nchw_to_kn(ctx, s, dy, act == OP_ACT_LINEAR ? op_b(NULL, 0) : y, act, slope, op_b(dz.mem, dz.off),
                            l.ldc, n0, cnt);
        op_buf t = op_b(dz.mem, dz.off);
        if (st == DLCL_OK && db.mem != NULL) /* rows of the images side by side, or of each image */
            st = dz.img == pq ? op_bias_grad_acc(ctx, t, db, 1, s->k, (int)l.cols, (int)dz.ld, n0 > 0)
                              : op_bias_grad_acc(ctx, t, db, cnt, s->k, (int)pq, (int)pq, n0 > 0);
        if (fft) {
            if (st == DLCL_OK) st = conv_fft_backward_chunk(ctx, s, &fl, t, dz.ld, x, n0, cnt, dw.mem != NULL, dx, ws.mem);
            continue;
        }
        if (depthwise(s)) {
            if (st == DLCL_OK) st = dw_backward(ctx, s, t, dz.ld, x, w, dw, dx, n0, cnt);
            continue;
        }
        bool x_cols = inp && cols_are_input(s);
        if (st == DLCL_OK && dw.mem != NULL) {
            conv_view col = x_cols ? nchw_view(x, n0, (size_t)s->c, pq) : ws_view(ws.mem, 0, l.ldc, pq);
            if (!x_cols) st = im2col(ctx, s, x, n0, cnt, l.ldc, ws);
            for (int g = 0; st == DLCL_OK && g < s->groups; g++)
                st = gemm_filter_grad(ctx, K, (size_t)kg, view_rows(col, (size_t)g * K), view_rows(dz, (size_t)g * kg),
                                      cnt, pq, n0 == 0, op_b(ws.mem, wt_off + (size_t)g * K * kg));
        }
        if (st != DLCL_OK || dx.mem == NULL) continue;
        if (wino_dx) { /* dx = dz correlated with the rotated filters, padded by 2 - pad */
            wino_layout wl = wino(s, cnt, 1, base);
            st = wino_chunk(ctx, t, (int)dz.ld, (int)dz.img, s->k, s->p, s->q, 2 - s->pad_h, s->c, s->h, s->w, cnt, &wl,
                            op_b(ws.mem, base), ws, op_b(NULL, 0), OP_ACT_LINEAR, 0.0f,
                            op_b(dx.mem, dx.off + (size_t)n0 * s->c * s->h * s->w));
            continue;
        }
        /* the columns' gradient W_g^T dz_g: dx itself for a 1x1 convolution of stride 1 */
        conv_view dcol = x_cols ? nchw_view(dx, n0, (size_t)s->c, pq) : ws_view(ws.mem, 0, l.ldc, pq);
        for (int g = 0; st == DLCL_OK && g < s->groups; g++)
            st = gemm_images(ctx, DLCL_TRANS, K, (size_t)kg, op_b(w.mem, w.off + (size_t)g * kg * K), K,
                             view_rows(dz, (size_t)g * kg), view_rows(dcol, (size_t)g * K), cnt, pq);
        if (st == DLCL_OK && !x_cols) st = col2im(ctx, s, ws, n0, cnt, l.ldc, dx);
    }
    /* dW_g = (dW_g^T)^T, every group in one launch: group g's K x kg block at g*K*kg */
    if (st == DLCL_OK && dw.mem != NULL && fft) return conv_fft_filter_grad(ctx, s, &fl, dw, ws.mem);
    if (st == DLCL_OK && dw.mem != NULL && !depthwise(s))
        st = blas_transpose(ctx, ws.mem, wt_off, (size_t)kg, K * kg, K, (size_t)kg, (size_t)s->groups, dw.mem, dw.off, K,
                            (size_t)kg * K);
    return st;
}

dlcl_status op_conv2d_backward_data(dlcl_ctx *ctx, const op_conv_shape *s, op_buf dy, op_buf w, op_buf dx, op_buf ws)
{
    return op_conv2d_backward(ctx, s, OP_ACT_LINEAR, 0.0f, op_b(NULL, 0), op_b(NULL, 0), dy, w, op_b(NULL, 0),
                              op_b(NULL, 0), dx, ws);
}

dlcl_status op_conv2d_backward_filter(dlcl_ctx *ctx, const op_conv_shape *s, op_buf x, op_buf dy, op_buf dw, op_buf db,
                                      op_buf ws)
{
    return op_conv2d_backward(ctx, s, OP_ACT_LINEAR, 0.0f, op_b(NULL, 0), x, dy, op_b(NULL, 0), dw, db, op_b(NULL, 0),
                              ws);
}
