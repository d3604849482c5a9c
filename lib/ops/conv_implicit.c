/* Convolution of stride 1 by implicit GEMM (conv_implicit.cl): the forward, the data and
 * the filter gradients as GEMMs whose columns are read straight from zero-padded input
 * planes, where im2col wrote r*s shifted copies of the input and the GEMM read them back
 * (ResNet-18's 3x3 layers: 0.9 s of a 4.8 s step in im2col and 0.4 s in col2im on the
 * 2-core EPYC). The padded planes cost one copy of the input; the outputs are computed on
 * the padded grid (s - 1 junk columns per row) and stored straight into NCHW.
 *
 * Data gradient: a convolution of stride 1 again, of dz padded by (r-1-pad_h, s-1-pad_w)
 * with the filters rotated by 180 degrees and their channels swapped. Filter gradient: the
 * implicit columns times dz^T, dz laid on the same grid in strips of 16 filters; summed
 * over the chunk's images and over chunks into dW^T, which conv.c transposes into dW.
 * CPU devices only (conv_find.c times it there): the kernels are gemm.cl's CPU tiles. */
#include <stdio.h>

#include "conv_implicit.h"

#define IMPLICIT_SLACK 64     /* floats past the padded planes a junk column may read */
#define IMPLICIT_KB 512       /* grid columns per block of the filter gradient (16-wide strip: 32 KiB) */
#define IMPLICIT_CB_FLOATS 512 /* input channels x taps per block of the forward's reduction */

bool op_conv2d_implicit_ok(const op_conv_shape *s)
{
    return s->stride_h == 1 && s->stride_w == 1 && s->dil_h == 1 && s->dil_w == 1 && s->groups == 1 && s->c >= 16 &&
           s->k >= 16 && s->pad_h < s->r && s->pad_w < s->s && (size_t)s->p * s->q >= 16;
}

/* A stride-1 convolution's padded grid: planes of hp x wp, outputs rows x wp (qv valid) */
typedef struct grid {
    int r, s, hp, wp, rows, qv;
} grid;

static grid forward_grid(const op_conv_shape *s)
{
    return (grid){s->r, s->s, s->h + 2 * s->pad_h, s->w + 2 * s->pad_w, s->p, s->q};
}

/* the data gradient's: dz padded by r-1-pad_h, s-1-pad_w, outputs h x w */
static grid data_grid(const op_conv_shape *s)
{
    int th = s->r - 1 - s->pad_h, tw = s->s - 1 - s->pad_w;
    return (grid){s->r, s->s, s->p + 2 * th, s->q + 2 * tw, s->h, s->w};
}

static size_t plane(grid g) { return (size_t)g.hp * g.wp; }

static int strips(const op_conv_shape *s) { return (s->k + 15) / 16; }

conv_implicit_layout conv_implicit_plan(const op_conv_shape *s, int nb, size_t base)
{
    conv_implicit_layout l;
    size_t dz_strips = (size_t)nb * strips(s) * s->p * forward_grid(s).wp * 16,
           dz_pad = (size_t)nb * s->k * plane(data_grid(s)) + IMPLICIT_SLACK;
    l.xpad = base;
    l.wf = l.xpad + (size_t)nb * s->c * plane(forward_grid(s)) + IMPLICIT_SLACK;
    l.r2 = l.wf + (size_t)s->c * s->k * s->r * s->s;
    l.end = l.r2 + (dz_strips > dz_pad ? dz_strips : dz_pad);
    return l;
}

static dlcl_status kernel(dlcl_ctx *ctx, grid g, const char *name, cl_kernel *k)
{
    char opt[160];
    snprintf(opt, sizeof opt, "-DIM_R=%d -DIM_S=%d -DIM_WP=%d -DIM_PLANE=%zu -DIM_QV=%d", g.r, g.s, g.wp, plane(g),
             g.qv);
    return rt_kernel_get(ctx, "conv_implicit", opt, name, k);
}

/* nb images of cin rows x cols planes (channel stride rows*cols) from src + so into g's
 * padded planes at ws + dst, at (top, left): conv.cl's fft_pad. The slack after them is
 * zeroed: a junk column reads it, and the filter gradient multiplies it by a zero of dz,
 * which a NaN left there by an earlier use of the workspace would survive. */
static dlcl_status pad(dlcl_ctx *ctx, cl_mem src, size_t so, int cin, int rows, int cols, int top, int left, grid g,
                       int nb, cl_mem ws, size_t dst)
{
    cl_kernel k;
    int o = (int)so, sc = rows * cols, sb = cin * rows * cols, d = (int)dst;
    float zero = 0.0f;
    cl_int err = clEnqueueFillBuffer(ctx->queue, ws, &zero, sizeof zero, (dst + (size_t)nb * cin * plane(g)) * sizeof zero,
                                     IMPLICIT_SLACK * sizeof zero, 0, NULL, NULL);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clEnqueueFillBuffer (implicit GEMM slack)");
    dlcl_status st = rt_kernel_get(ctx, "conv", "", "fft_pad", &k);
    if (st == DLCL_OK)
        st = rt_set_args(k, "fft_pad", RT_ARG(src), RT_ARG(o), RT_ARG(sc), RT_ARG(sb), RT_ARG(rows), RT_ARG(cols),
                         RT_ARG(top), RT_ARG(left), RT_ARG(ws), RT_ARG(d), RT_ARG(g.hp), RT_ARG(g.wp), RT_ARG(cin),
                         RT_ARGS_END);
    size_t gs[2] = {(size_t)g.hp, (size_t)nb * cin};
    return st == DLCL_OK ? rt_launch(ctx, k, "fft_pad", 2, gs, NULL) : st;
}

/* 6 rows per tile, or 4 (as blas.c's R x 16 tiles) */
static int tile_rows(size_t m) { return (int)blas_tile_rows(m); }

/* Tiles over (rows, columns, batch), rows first (consecutive work-items share a column
 * tile of B) or columns first; a work-item per work-group on CPU devices (as blas.c). */
static dlcl_status launch_tiles(dlcl_ctx *ctx, cl_kernel k, const char *name, int rows_first, size_t m, size_t n,
                                int tm, size_t batch)
{
    size_t tr = (m + (size_t)tm - 1) / (size_t)tm, tc = (n + 15) / 16, one[3] = {1, 1, 1};
    size_t gs[3] = {rows_first ? tr : tc, rows_first ? tc : tr, batch};
    return rt_launch(ctx, k, name, 3, gs, ctx->cpu_device ? one : NULL);
}

/* out (NCHW, m planes of g.rows x g.qv per image, from oo) = filters a [m][cin*r*s] from
 * ao times the implicit columns of cin padded planes per image at ws + src, nb images; the
 * reduction cut into blocks of input channels, each a launch adding to the last. */
/* out = A times the implicit columns, then + bias (bias.mem may be NULL) and relu: the
 * epilogue of the last block of input channels (IMPLICIT_FORWARD) */
static dlcl_status implicit_gemm(dlcl_ctx *ctx, grid g, int m, int cin, cl_mem a, size_t ao, cl_mem ws, size_t src,
                                 cl_mem out, size_t oo, int nb, op_buf bias, int relu)
{
    int tm = tile_rows((size_t)m), n = g.rows * g.wp, rs = g.r * g.s, lda = cin * rs, sb = cin * (int)plane(g),
        sc = m * g.rows * g.qv, po = g.rows * g.qv, co = (int)oo, rows_first = m < n;
    int cb = IMPLICIT_CB_FLOATS / rs > 0 ? IMPLICIT_CB_FLOATS / rs : 1;
    const char *name = tm == 4 ? "implicit_forward_4x16" : "implicit_forward_6x16";
    cl_kernel k;
    dlcl_status st = kernel(ctx, g, name, &k);
    for (int c0 = 0; st == DLCL_OK && c0 < cin;) {
        int cnt = cin - c0 < cb + cb / 2 ? cin - c0 : cb; /* no short last block */
        int ab = (int)ao + c0 * rs, bo = (int)(src + (size_t)c0 * plane(g));
        float beta = c0 > 0 ? 1.0f : 0.0f;
        int last = c0 + cnt == cin, has_bias = last && bias.mem != NULL, r = last && relu, bb = (int)bias.off;
        cl_mem bm = bias.mem ? bias.mem : out;
        st = rt_set_args(k, name, RT_ARG(rows_first), RT_ARG(m), RT_ARG(n), RT_ARG(cnt), RT_ARG(a), RT_ARG(ab),
                         RT_ARG(lda), RT_ARG(ws), RT_ARG(bo), RT_ARG(sb), RT_ARG(beta), RT_ARG(out), RT_ARG(co),
                         RT_ARG(sc), RT_ARG(po), RT_ARG(bm), RT_ARG(bb), RT_ARG(has_bias), RT_ARG(r), RT_ARGS_END);
        if (st == DLCL_OK) st = launch_tiles(ctx, k, name, rows_first, (size_t)m, (size_t)n, tm, (size_t)nb);
        c0 += cnt;
    }
    return st;
}

dlcl_status conv_implicit_forward_chunk(dlcl_ctx *ctx, const op_conv_shape *s, const conv_implicit_layout *l, op_buf x,
                                        op_buf w, op_buf bias, int relu, int n0, int nb, op_buf y, cl_mem ws)
{
    grid g = forward_grid(s);
    dlcl_status st = pad(ctx, x.mem, x.off + (size_t)n0 * s->c * s->h * s->w, s->c, s->h, s->w, s->pad_h, s->pad_w, g,
                         nb, ws, l->xpad);
    if (st != DLCL_OK) return st;
    return implicit_gemm(ctx, g, s->k, s->c, w.mem, w.off, ws, l->xpad, y.mem, y.off + (size_t)n0 * s->k * s->p * s->q,
                         nb, bias, relu);
}

dlcl_status conv_implicit_flip(dlcl_ctx *ctx, const op_conv_shape *s, const conv_implicit_layout *l, op_buf w,
                               cl_mem ws)
{
    cl_kernel k;
    int wo = (int)w.off, wfo = (int)l->wf;
    dlcl_status st = kernel(ctx, data_grid(s), "implicit_flip", &k);
    if (st == DLCL_OK)
        st = rt_set_args(k, "implicit_flip", RT_ARG(w.mem), RT_ARG(wo), RT_ARG(ws), RT_ARG(wfo), RT_ARG(s->c),
                         RT_ARG(s->k), RT_ARGS_END);
    size_t gs[2] = {(size_t)s->c * s->r * s->s, (size_t)s->k};
    return st == DLCL_OK ? rt_launch(ctx, k, "implicit_flip", 2, gs, NULL) : st;
}

/* dW^T (+)= the implicit columns of each image times its dz strips, by blocks of grid
 * columns: one launch per image and block, each adding to the last (first: the very first
 * overwrites). */
static dlcl_status filter_grad(dlcl_ctx *ctx, const op_conv_shape *s, const conv_implicit_layout *l, int nb, bool first,
                               op_buf wt, cl_mem ws)
{
    grid g = forward_grid(s);
    int m = s->c * s->r * s->s, n = s->k, cols = g.rows * g.wp, tm = tile_rows((size_t)m), bps = cols * 16,
        co = (int)wt.off, ldc = s->k, rows_first = 1;
    const char *name = tm == 4 ? "implicit_filter_grad_4x16" : "implicit_filter_grad_6x16";
    cl_kernel k;
    dlcl_status st = kernel(ctx, g, name, &k);
    for (int b = 0; st == DLCL_OK && b < nb; b++)
        for (int c0 = 0; st == DLCL_OK && c0 < cols;) {
            int kk = cols - c0 < IMPLICIT_KB + IMPLICIT_KB / 2 ? cols - c0 : IMPLICIT_KB;
            int ao = (int)(l->xpad + (size_t)b * s->c * plane(g)) + c0,
                bo = (int)(l->r2 + (size_t)b * strips(s) * bps) + c0 * 16;
            float beta = first && b == 0 && c0 == 0 ? 0.0f : 1.0f;
            st = rt_set_args(k, name, RT_ARG(rows_first), RT_ARG(m), RT_ARG(n), RT_ARG(kk), RT_ARG(ws), RT_ARG(ao),
                             RT_ARG(ws), RT_ARG(bo), RT_ARG(bps), RT_ARG(beta), RT_ARG(wt.mem), RT_ARG(co), RT_ARG(ldc),
                             RT_ARGS_END);
            if (st == DLCL_OK) st = launch_tiles(ctx, k, name, rows_first, (size_t)m, (size_t)n, tm, 1);
            c0 += kk;
        }
    return st;
}

dlcl_status conv_implicit_backward_chunk(dlcl_ctx *ctx, const op_conv_shape *s, const conv_implicit_layout *l,
                                         op_buf dy, op_buf x, int n0, int nb, op_buf wt, op_buf dx, cl_mem ws)
{
    size_t dyo = dy.off + (size_t)n0 * s->k * s->p * s->q;
    dlcl_status st = DLCL_OK;
    if (wt.mem != NULL) {
        grid g = forward_grid(s);
        cl_kernel k;
        int dzo = (int)dyo, oo = (int)l->r2, ns = strips(s);
        st = pad(ctx, x.mem, x.off + (size_t)n0 * s->c * s->h * s->w, s->c, s->h, s->w, s->pad_h, s->pad_w, g, nb, ws,
                 l->xpad);
        if (st == DLCL_OK) st = kernel(ctx, g, "implicit_dz_strips", &k);
        if (st == DLCL_OK)
            st = rt_set_args(k, "implicit_dz_strips", RT_ARG(dy.mem), RT_ARG(dzo), RT_ARG(ws), RT_ARG(oo),
                             RT_ARG(s->k), RT_ARG(g.rows), RT_ARG(ns), RT_ARGS_END);
        size_t gs[3] = {(size_t)g.rows, (size_t)ns, (size_t)nb};
        if (st == DLCL_OK) st = rt_launch(ctx, k, "implicit_dz_strips", 3, gs, NULL);
        if (st == DLCL_OK) st = filter_grad(ctx, s, l, nb, n0 == 0, wt, ws);
    }
    if (st != DLCL_OK || dx.mem == NULL) return st;
    grid g = data_grid(s);
    st = pad(ctx, dy.mem, dyo, s->k, s->p, s->q, s->r - 1 - s->pad_h, s->s - 1 - s->pad_w, g, nb, ws, l->r2);
    if (st != DLCL_OK) return st;
    return implicit_gemm(ctx, g, s->c, s->k, ws, l->wf, ws, l->r2, dx.mem, dx.off + (size_t)n0 * s->c * s->h * s->w,
                         nb, op_b(NULL, 0), 0);
}
