/* Half-precision storage in the convolution forward and dlcl's GEMM: x, w and y stored as
 * IEEE binary16 (alone and mixed with float) against the float reference computed on the
 * same half-rounded inputs, so what is left to differ is the output's own rounding and the
 * order of the sums; the GEMM's kernels reading a half A natively, each tile kernel in
 * turn. Half buffers are dbufs of halves, between guards. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/ops/ops.h"
#include "ref/ref.h"

#include "dbuf.h"
#include "test.h"

/* ---------------------------------------------------------------- helpers */

static float *rnd_half(size_t n, uint64_t *rng)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (x == NULL) return NULL;
    t_fill_uniform(rng, x, n, -1, 1);
    for (size_t i = 0; i < n; i++) x[i] = dlcl__float_from_half(dlcl__half_from_float(x[i]));
    return x;
}

/* Whether the context's GEMMs go to dlcl's kernels, which read a half A as it lies */
static bool dlcl_gemm(const dlcl_ctx *ctx)
{
    return ctx->gemm_backend == BLAS_BACKEND_DLCL ||
           (ctx->gemm_backend == BLAS_BACKEND_AUTO && strcmp(ctx->info.type, "CPU") == 0);
}

/* Drops blas.c's buffer of widened operands, so that a call that widens one shows */
static void forget_widened(dlcl_ctx *ctx)
{
    if (ctx->blas_wide) rt_buffer_release(ctx, ctx->blas_wide);
    ctx->blas_wide = NULL, ctx->blas_wide_bytes = 0;
}

/* ---------------------------------------------------------------- convolution */

/* storage of (x, w, y): every mix with at least one half buffer */
static const int mixes[][3] = {{1, 1, 1}, {0, 1, 1}, {1, 1, 0}, {0, 1, 0}, {1, 0, 0}, {0, 0, 1}, {1, 0, 1}};

/* y = act(conv(x, w) + b) for every storage mix and both the im2col + GEMM and the direct
 * algorithms, against the reference on the rounded inputs: within 1e-3 of the output's
 * largest magnitude (a half y rounds each element by up to 2^-11 of itself). */
static bool half_conv_case(op_conv_shape s, int with_bias, op_act act)
{
    dlcl_ctx *ctx = t_ctx();
    if (ctx == NULL || op_conv_shape_infer(&s) != DLCL_OK) {
        printf("# shape: %s\n", dlcl_last_error());
        return false;
    }
    const float slope = 0.1f;
    ref_conv g = {s.n, s.c, s.h, s.w, s.k, s.r, s.s, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dil_h, s.dil_w,
                  s.groups, s.p, s.q};
    printf("# conv n%d c%d %dx%d k%d %dx%d stride %d,%d pad %d,%d groups %d bias %d act %s -> %dx%d\n", s.n, s.c, s.h,
           s.w, s.k, s.r, s.s, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.groups, with_bias, op_act_names[act], s.p,
           s.q);
    size_t nx = (size_t)s.n * s.c * s.h * s.w, nw = (size_t)s.k * (s.c / s.groups) * s.r * s.s,
           ny = (size_t)s.n * s.k * s.p * s.q;
    uint64_t rng = t_seed() ^ (nx * 1000003 + nw * 1009 + ny);
    float *x = rnd_half(nx, &rng), *w = rnd_half(nw, &rng), *b = rnd_half(s.k, &rng);
    float *want = malloc(ny * 4), *got = malloc(ny * 4);
    cl_mem ws = NULL;
    size_t ws_bytes = (op_conv2d_workspace(ctx, &s) + 1) * sizeof(float);
    bool ok = x && w && b && want && got && rt_buffer_acquire(ctx, ws_bytes, "ws", &ws) == DLCL_OK;
    if (ok) {
        conv2d_forward_ref(&g, x, w, with_bias ? b : NULL, want);
        for (size_t i = 0; i < ny; i++)
            want[i] = act == OP_ACT_RELU ? fmaxf(want[i], 0.0f) : act == OP_ACT_LEAKY && want[i] < 0 ? slope * want[i]
                                                                                                      : want[i];
    }
    float scale = 0.0f;
    for (size_t i = 0; ok && i < ny; i++) scale = fmaxf(scale, fabsf(want[i]));
    dbuf B = {0};
    ok = ok && dbuf_new(&B, b, s.k);
    op_buf bias = with_bias ? ob(&B) : op_b(NULL, 0);
    static const op_conv_algo algos[] = {OP_CONV_IM2COL_GEMM, OP_CONV_DIRECT};
    for (size_t m = 0; ok && m < T_COUNT(mixes); m++) {
        int xh = mixes[m][0], wh = mixes[m][1], yh = mixes[m][2];
        dbuf X = {0}, W = {0}, Y = {0};
        ok = dbuf_new_as(&X, x, nx, xh) && dbuf_new_as(&W, w, nw, wh) && dbuf_new_as(&Y, NULL, ny, yh);
        for (size_t a = 0; ok && a < T_COUNT(algos); a++) {
            char label[96];
            snprintf(label, sizeof label, "%s x %s w %s y %s", algos[a] == OP_CONV_DIRECT ? "direct" : "im2col+gemm",
                     xh ? "half" : "float", wh ? "half" : "float", yh ? "half" : "float");
            forget_widened(ctx);
            dlcl_status st = op_conv2d_forward_act(ctx, &s, algos[a], ob(&X), ob(&W), bias, act, slope,
                                                   ob(&Y), op_b(ws, 0));
            if (st != DLCL_OK) printf("# %s: %s\n", label, dlcl_last_error());
            ok = st == DLCL_OK && dbuf_read(&Y, got, label) && t_close(label, got, want, ny, 1e-3f, 1e-3f * scale);
            /* the filters are the GEMM's A: read as they lie where the device does so (GPUs;
             * CPU devices widen them, see blas.c's reads_half_a), never widened otherwise (an
             * x is B: im2col converts it into the float columns) */
            if (ok && algos[a] == OP_CONV_IM2COL_GEMM && dlcl_gemm(ctx) && ctx->gemm_half_native &&
                ctx->blas_wide != NULL) {
                printf("# %s: the GEMM widened a half operand\n", label);
                ok = false;
            }
        }
        dbuf_free(&X), dbuf_free(&W), dbuf_free(&Y);
    }
    dbuf_free(&B);
    if (ws) rt_buffer_release(ctx, ws);
    free(x), free(w), free(b), free(want), free(got);
    return ok;
}

/* n images of c x h x w, k square r x r filters, stride, padding and groups the same both ways */
static op_conv_shape conv(int n, int c, int h, int w, int k, int r, int stride, int pad, int groups)
{
    return (op_conv_shape){.n = n, .c = c, .h = h, .w = w, .k = k, .r = r, .s = r, .stride_h = stride,
                           .stride_w = stride, .pad_h = pad, .pad_w = pad, .dil_h = 1, .dil_w = 1, .groups = groups};
}

static void half_conv_matches_ref_3x3_pad1(void)
{
    T_CHECK(half_conv_case(conv(1, 8, 10, 11, 12, 3, 1, 1, 1), 1, OP_ACT_RELU), "3x3 pad 1, batch 1");
    T_CHECK(half_conv_case(conv(3, 8, 10, 11, 12, 3, 1, 1, 1), 0, OP_ACT_LEAKY), "3x3 pad 1, batch 3, no bias");
}

/* the 1x1 convolution whose columns are its float input (used in place) */
static void half_conv_matches_ref_1x1_stride1(void)
{
    T_CHECK(half_conv_case(conv(1, 16, 8, 8, 24, 1, 1, 0, 1), 1, OP_ACT_RELU), "1x1, batch 1");
    T_CHECK(half_conv_case(conv(3, 16, 8, 8, 24, 1, 1, 0, 1), 0, OP_ACT_LINEAR), "1x1, batch 3, linear");
}

static void half_conv_matches_ref_1x1_stride2(void)
{
    T_CHECK(half_conv_case(conv(3, 8, 9, 9, 16, 1, 2, 0, 1), 1, OP_ACT_RELU), "1x1 stride 2");
}

static void half_conv_matches_ref_7x7_stride2(void)
{
    T_CHECK(half_conv_case(conv(1, 3, 23, 23, 8, 7, 2, 3, 1), 1, OP_ACT_RELU), "7x7 stride 2 pad 3");
}

static void half_conv_matches_ref_grouped(void)
{
    T_CHECK(half_conv_case(conv(2, 8, 7, 7, 8, 3, 1, 1, 2), 1, OP_ACT_RELU), "3x3, 2 groups");
}

/* depthwise (dw_forward on the direct path), stride 1 and 2 */
static void half_conv_matches_ref_depthwise(void)
{
    T_CHECK(half_conv_case(conv(2, 6, 9, 10, 6, 3, 1, 1, 6), 1, OP_ACT_RELU), "depthwise 3x3");
    T_CHECK(half_conv_case(conv(1, 4, 9, 10, 8, 3, 2, 1, 4), 0, OP_ACT_LEAKY), "depthwise x2, stride 2");
}

/* a reduction of 4: the heuristic's direct kernel */
static void half_conv_matches_ref_small_k_direct(void)
{
    op_conv_shape s = conv(3, 1, 12, 13, 5, 2, 1, 0, 1);
    T_CHECK(op_conv2d_heuristic(&s) == OP_CONV_DIRECT, "the heuristic picks direct for a reduction of 4");
    T_CHECK(half_conv_case(s, 1, OP_ACT_RELU), "2x2 on one channel");
}

/* Winograd, the FFT and the implicit GEMM read floats only: a half buffer is an error that
 * says so, not a misread */
static void half_conv_rejected_by_float_only_algorithms(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "context");
    op_conv_shape s = conv(1, 16, 8, 8, 16, 3, 1, 1, 1);
    T_OK(op_conv_shape_infer(&s));
    s.winograd = s.implicit = 1;
    size_t nx = (size_t)s.c * s.h * s.w, nw = (size_t)s.k * s.c * 9, ny = (size_t)s.k * s.p * s.q;
    dbuf X = {0}, W = {0}, Y = {0};
    cl_mem ws = NULL;
    bool ok = dbuf_new_as(&X, NULL, nx, 1) && dbuf_new_as(&W, NULL, nw, 0) && dbuf_new_as(&Y, NULL, ny, 0) &&
              rt_buffer_acquire(ctx, op_conv2d_workspace(ctx, &s) * sizeof(float), "ws", &ws) == DLCL_OK;
    static const op_conv_algo algos[] = {OP_CONV_WINOGRAD, OP_CONV_FFT, OP_CONV_IMPLICIT};
    for (size_t a = 0; ok && a < T_COUNT(algos); a++)
        ok = t_err_matches(op_conv2d_forward_act(ctx, &s, algos[a], ob(&X), ob(&W), op_b(NULL, 0), OP_ACT_RELU,
                                                 0.0f, ob(&Y), op_b(ws, 0)),
                           DLCL_ERR_INVALID_ARG, "has no half-precision path (x is stored as half)");
    if (!ok) printf("# last error: %s\n", dlcl_last_error());
    dbuf_free(&X), dbuf_free(&W), dbuf_free(&Y);
    if (ws) rt_buffer_release(ctx, ws);
    T_CHECK(ok, "Winograd, FFT and implicit GEMM refuse a half x");
}

/* ---------------------------------------------------------------- GEMM with a half A */

/* C = A op(B) + beta C through op_gemm on dlcl's backend, A m x k stored as half (lda = k + 3),
 * with the device's vector width taken as vw (which picks the tile kernels, blas.c), against
 * the reference on the rounded A. The half A must be read as it lies: nothing widened. */
static bool half_gemm_case(size_t m, size_t n, size_t k, int tb, float beta, int vw)
{
    dlcl_ctx *ctx = t_ctx();
    if (ctx == NULL) return false;
    printf("# gemm %zux%zux%zu%s beta %g, vector width %d\n", m, n, k, tb ? " B^T" : "", beta, vw);
    size_t lda = k + 3, ldb = (tb ? k : n) + 1, ldc = n + 2, na = m * lda, nb = (tb ? n : k) * ldb, nc = m * ldc;
    uint64_t rng = t_seed() ^ (m * 1000003 + n * 1009 + k);
    float *a = rnd_half(na, &rng), *b = rnd_half(nb, &rng), *c = rnd_half(nc, &rng), *got = malloc(nc * 4);
    dbuf A = {0}, B = {0}, C = {0};
    bool ok = a && b && c && got && dbuf_new_as(&A, a, na, 1) && dbuf_new(&B, b, nb) && dbuf_new(&C, c, nc);
    blas_backend backend = ctx->gemm_backend;
    int width = ctx->gemm_vector_width, native = ctx->gemm_half_native;
    /* the kernels' half A path, which CPU devices do not take by default (blas.c) */
    ctx->gemm_backend = BLAS_BACKEND_DLCL, ctx->gemm_vector_width = vw, ctx->gemm_half_native = 1;
    forget_widened(ctx);
    dlcl_status st = ok ? op_gemm(ctx, DLCL_NO_TRANS, tb ? DLCL_TRANS : DLCL_NO_TRANS, m, n, k, ob(&A), lda, ob(&B),
                                  ldb, beta, ob(&C), ldc)
                        : DLCL_ERR_OPENCL;
    bool widened = ctx->blas_wide != NULL;
    ctx->gemm_backend = backend, ctx->gemm_vector_width = width, ctx->gemm_half_native = native;
    if (st != DLCL_OK) printf("# %s\n", dlcl_last_error());
    if (widened) printf("# the half A was widened instead of read as it lies\n");
    ok = ok && st == DLCL_OK && !widened && dbuf_read(&C, got, "c");
    if (ok) {
        gemm_ref(0, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc); /* c becomes the expected C */
        /* sums of k products of magnitude below 1 */
        ok = t_close("C", got, c, nc, 1e-4f, 1e-5f * (float)k);
    }
    dbuf_free(&A), dbuf_free(&B), dbuf_free(&C);
    free(a), free(b), free(c), free(got);
    return ok;
}

/* 8-wide units: the 6 x 16 tiles (m = 30), the 4 x 16f ones (m = 32, blas_tile_rows), ragged
 * n, and the guarded 4 x 16 kernel below a whole tile (m = 5, n = 9) */
static void half_gemm_a_nn16_tiles(void)
{
    T_CHECK(half_gemm_case(30, 45, 37, 0, 0.0f, 8), "6x16");
    T_CHECK(half_gemm_case(32, 50, 29, 0, 0.5f, 8), "4x16f, beta");
    T_CHECK(half_gemm_case(5, 9, 21, 0, 0.0f, 8), "4x16 edge");
}

/* 16-wide units: 8 x 32 tiles, the right and bottom strips by sgemm_nn_4x16 (whole and
 * guarded tiles) */
static void half_gemm_a_8x32_tiles(void)
{
    T_CHECK(half_gemm_case(21, 77, 19, 0, 0.0f, 16), "8x32 with edges");
    T_CHECK(half_gemm_case(64, 64, 33, 0, 0.5f, 16), "8x32, beta");
}

/* k longer than a block (beta 1 from the second block, A's offset moved on in halves),
 * split into partial products (a small C over a long k), and the thin product of a few
 * rows (a grouped conv's, gemm_thin) */
static void half_gemm_a_k_blocks_split_and_thin(void)
{
    T_CHECK(half_gemm_case(3, 40, 300, 0, 0.5f, 8), "at most 4 rows: sgemv_nn_part");
    T_CHECK(half_gemm_case(2, 10, 37, 1, 0.5f, 8), "at most 4 rows by B^T: sgemv_nt");
    T_CHECK(half_gemm_case(40, 33, 20, 1, 0.0f, 8), "B^T transposed into strips");
    T_CHECK(half_gemm_case(12, 40, 1300, 0, 0.0f, 8), "k blocks");
    T_CHECK(half_gemm_case(5, 20, 4500, 0, 0.0f, 8), "split k");
}

static const t_case cases[] = {
    T_CASE(half_conv_matches_ref_3x3_pad1),
    T_CASE(half_conv_matches_ref_1x1_stride1),
    T_CASE(half_conv_matches_ref_1x1_stride2),
    T_CASE(half_conv_matches_ref_7x7_stride2),
    T_CASE(half_conv_matches_ref_grouped),
    T_CASE(half_conv_matches_ref_depthwise),
    T_CASE(half_conv_matches_ref_small_k_direct),
    T_CASE(half_conv_rejected_by_float_only_algorithms),
    T_CASE(half_gemm_a_nn16_tiles),
    T_CASE(half_gemm_a_8x32_tiles),
    T_CASE(half_gemm_a_k_blocks_split_and_thin),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
