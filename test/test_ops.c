/* Every op family, forward and backward, against the plain-C references in ref/ on odd
 * shapes. Device buffers carry sentinel guard regions before and after the data (the ops
 * get an offset into them) and the guards are checked after each launch. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/ops/ops.h"
#include "ref/ref.h"

#include "dbuf.h"
#include "test.h"

static float *rnd(size_t n, float lo, float hi)
{
    static uint64_t s;
    if (s == 0) s = t_seed();
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (x) t_fill_uniform(&s, x, n, lo, hi);
    return x;
}

/* ------------------------------------------------------------------ convolution */

/* Fills a workspace with NaN before an op uses it, so that an element an im2col kernel
 * fails to write (a zero of the padding, say) poisons the result instead of passing with
 * whatever an earlier call left there. */

static bool poison(cl_mem ws, size_t bytes)
{
    const float nan = NAN;
    cl_int err = clEnqueueFillBuffer(t_ctx()->queue, ws, &nan, sizeof nan, 0, bytes, 0, NULL, NULL);
    if (err != CL_SUCCESS) printf("# clEnqueueFillBuffer: %d\n", err);
    return err == CL_SUCCESS;
}

static bool conv_case(op_conv_shape s, int with_bias)
{
    dlcl_ctx *ctx = t_ctx();
    if (ctx == NULL || op_conv_shape_infer(&s) != DLCL_OK) {
        printf("# shape: %s\n", dlcl_last_error());
        return false;
    }
    ref_conv g = {s.n, s.c, s.h, s.w, s.k, s.r, s.s, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dil_h, s.dil_w,
                  s.groups, s.p, s.q};
    printf("# conv n%d c%d %dx%d k%d %dx%d stride %d,%d pad %d,%d dil %d,%d groups %d bias %d -> %dx%d\n", s.n, s.c,
           s.h, s.w, s.k, s.r, s.s, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dil_h, s.dil_w, s.groups, with_bias,
           s.p, s.q);
    size_t nx = (size_t)s.n * s.c * s.h * s.w, nw = (size_t)s.k * (s.c / s.groups) * s.r * s.s,
           ny = (size_t)s.n * s.k * s.p * s.q;
    float *x = rnd(nx, -1, 1), *w = rnd(nw, -1, 1), *b = rnd(s.k, -1, 1), *dy = rnd(ny, -1, 1);
    float *y_ref = malloc(ny * 4), *y = malloc(ny * 4), *dx_ref = malloc(nx * 4), *dx = malloc(nx * 4);
    float *dw_ref = malloc(nw * 4), *dw = malloc(nw * 4), *db_ref = malloc(s.k * 4), *db = malloc(s.k * 4);
    /* the gradients start as garbage: every element must be written, none accumulated into */
    for (size_t i = 0; dx && i < nx; i++) dx[i] = 7.0f;
    for (size_t i = 0; dw && i < nw; i++) dw[i] = 7.0f;
    for (int i = 0; db && i < s.k; i++) db[i] = 7.0f;
    dbuf X = {0}, Wt = {0}, B = {0}, Y = {0}, DY = {0}, DX = {0}, DW = {0}, DB = {0};
    cl_mem ws = NULL;
    op_conv_shape room = s; /* room for every algorithm conv_case runs */
    room.winograd = room.winograd_dx = op_conv2d_winograd_ok(&s);
    room.implicit = room.implicit_bwd = op_conv2d_implicit_ok(&s);
    size_t ws_bytes = (op_conv2d_workspace(ctx, &room) + 1) * sizeof(float);
    bool ok = x && w && b && dy && y_ref && y && dx_ref && dx && dw_ref && dw && db_ref && db && dbuf_new(&X, x, nx) &&
              dbuf_new(&Wt, w, nw) && dbuf_new(&B, b, s.k) && dbuf_new(&Y, NULL, ny) && dbuf_new(&DY, dy, ny) &&
              dbuf_new(&DX, dx, nx) && dbuf_new(&DW, dw, nw) && dbuf_new(&DB, db, s.k) &&
              rt_buffer_acquire(ctx, ws_bytes, "ws", &ws) == DLCL_OK;
    conv2d_forward_ref(&g, x, w, with_bias ? b : NULL, y_ref);
    conv2d_backward_data_ref(&g, dy, w, dx_ref);
    conv2d_backward_filter_ref(&g, x, dy, dw_ref, db_ref);
    op_buf bias = with_bias ? ob(&B) : op_b(NULL, 0), dbias = with_bias ? ob(&DB) : op_b(NULL, 0);
    static const char *const algo_label[OP_CONV_ALGO_COUNT] = {"", "forward (im2col+gemm)", "forward (direct)",
                                                                "forward (winograd)", "forward (fft)",
                                                                "forward (implicit gemm)"};
    /* every forward algorithm the shape allows but the FFT (test_fft.c) */
    int algos[OP_CONV_ALGO_COUNT], n_algos = 0;
    for (int a = OP_CONV_IM2COL_GEMM; a < OP_CONV_ALGO_COUNT; a++)
        if (a == OP_CONV_IM2COL_GEMM || a == OP_CONV_DIRECT || (a == OP_CONV_WINOGRAD && op_conv2d_winograd_ok(&s)) ||
            (a == OP_CONV_IMPLICIT && op_conv2d_implicit_ok(&s)))
            algos[n_algos++] = a;
    for (int i = 0; ok && i < n_algos; i++) {
        int algo = algos[i];
        dlcl_status st = poison(ws, ws_bytes) ? op_conv2d_forward_algo(ctx, &s, (op_conv_algo)algo, ob(&X), ob(&Wt), bias,
                                                                      ob(&Y), op_b(ws, 0))
                                              : DLCL_ERR_OPENCL;
        ok = st == DLCL_OK && dbuf_read(&Y, y, "y") && t_close(algo_label[algo], y, y_ref, ny, 1e-4f, 1e-4f);
        if (st != DLCL_OK) printf("# %s\n", dlcl_last_error());
    }
    /* backward sums up to k*r*s (data) or n*p*q (filter) float products: looser atol */
    if (ok) ok = poison(ws, ws_bytes) && op_conv2d_backward_data(ctx, &s, ob(&DY), ob(&Wt), ob(&DX), op_b(ws, 0)) == DLCL_OK &&
                 dbuf_read(&DX, dx, "dx") && t_close("backward data", dx, dx_ref, nx, 1e-4f, 2e-4f);
    if (ok) ok = poison(ws, ws_bytes) && op_conv2d_backward_filter(ctx, &s, ob(&X), ob(&DY), ob(&DW), dbias, op_b(ws, 0)) == DLCL_OK &&
                 dbuf_read(&DW, dw, "dw") && t_close("backward filter", dw, dw_ref, nw, 1e-4f, 1e-3f);
    if (ok && with_bias) ok = dbuf_read(&DB, db, "db") && t_close("bias gradient", db, db_ref, s.k, 1e-4f, 1e-3f);
    if (ok && op_conv2d_implicit_ok(&s)) { /* both gradients by implicit GEMM, starting as garbage */
        op_conv_shape si = s;
        si.implicit_bwd = 1;
        ok = dbuf_fill(&DX, 7.0f) && dbuf_fill(&DW, 7.0f) && poison(ws, ws_bytes) &&
             op_conv2d_backward(ctx, &si, OP_ACT_LINEAR, 0.0f, op_b(NULL, 0), ob(&X), ob(&DY), ob(&Wt), ob(&DW), dbias,
                                ob(&DX), op_b(ws, 0)) == DLCL_OK &&
             dbuf_read(&DX, dx, "dx") && t_close("backward data (implicit gemm)", dx, dx_ref, nx, 1e-4f, 2e-4f) &&
             dbuf_read(&DW, dw, "dw") && t_close("backward filter (implicit gemm)", dw, dw_ref, nw, 1e-4f, 1e-3f);
        if (ok && with_bias) ok = dbuf_read(&DB, db, "db") && t_close("bias gradient (implicit)", db, db_ref, s.k, 1e-4f, 1e-3f);
    }
    /* fused activation (relu with a bias, leaky without): y = act(conv + b) in the forward
     * relayout, dz = dy * act'(y) in the backward one; the reference runs the plain conv
     * and applies the activation and its derivative on the host */
    op_act act = with_bias ? OP_ACT_RELU : OP_ACT_LEAKY;
    const float slope = 0.1f;
    for (size_t i = 0; i < ny; i++) y_ref[i] = y_ref[i] > 0 ? y_ref[i] : act == OP_ACT_RELU ? 0.0f : slope * y_ref[i];
    float *dz = malloc(ny * 4);
    ok = ok && dz != NULL;
    if (ok) {
        for (size_t i = 0; i < ny; i++) dz[i] = y_ref[i] > 0 ? dy[i] : act == OP_ACT_RELU ? 0.0f : slope * dy[i];
        conv2d_backward_data_ref(&g, dz, w, dx_ref);
        conv2d_backward_filter_ref(&g, x, dz, dw_ref, db_ref);
    }
    for (int i = 0; ok && i < n_algos; i++)
        ok = poison(ws, ws_bytes) && op_conv2d_forward_act(ctx, &s, (op_conv_algo)algos[i], ob(&X), ob(&Wt), bias, act, slope, ob(&Y),
                                   op_b(ws, 0)) == DLCL_OK &&
             dbuf_read(&Y, y, "y") && t_close(algo_label[algos[i]], y, y_ref, ny, 1e-4f, 1e-4f);
    if (ok) ok = poison(ws, ws_bytes) && op_conv2d_backward(ctx, &s, act, slope, ob(&Y), ob(&X), ob(&DY), ob(&Wt), ob(&DW), dbias, ob(&DX),
                                    op_b(ws, 0)) == DLCL_OK &&
                 dbuf_read(&DX, dx, "dx") && t_close("fused backward data", dx, dx_ref, nx, 1e-4f, 2e-4f) &&
                 dbuf_read(&DW, dw, "dw") && t_close("fused backward filter", dw, dw_ref, nw, 1e-4f, 1e-3f);
    if (ok && with_bias) ok = dbuf_read(&DB, db, "db") && t_close("fused bias gradient", db, db_ref, s.k, 1e-4f, 1e-3f);
    if (ok && op_conv2d_winograd_ok(&s)) { /* the data gradient by Winograd, dx starting as garbage */
        op_conv_shape sw = s;
        sw.winograd_dx = 1;
        ok = dbuf_fill(&DX, 7.0f) && poison(ws, ws_bytes) &&
             op_conv2d_backward(ctx, &sw, act, slope, ob(&Y), ob(&X), ob(&DY), ob(&Wt), ob(&DW), dbias, ob(&DX),
                                op_b(ws, 0)) == DLCL_OK &&
             dbuf_read(&DX, dx, "dx") && t_close("backward data (winograd)", dx, dx_ref, nx, 1e-4f, 2e-4f) &&
             dbuf_read(&DW, dw, "dw") && t_close("backward filter beside it", dw, dw_ref, nw, 1e-4f, 1e-3f);
    }
    free(dz);
    if (!ok && dlcl_last_error()[0]) printf("# last error: %s\n", dlcl_last_error());
    dbuf *all[] = {&X, &Wt, &B, &Y, &DY, &DX, &DW, &DB};
    for (size_t i = 0; i < T_COUNT(all); i++) dbuf_free(all[i]);
    if (ws) rt_buffer_release(ctx, ws);
    free(x), free(w), free(b), free(dy), free(y_ref), free(y), free(dx_ref), free(dx), free(dw_ref), free(dw);
    free(db_ref), free(db);
    return ok;
}

#define CONV(...) ((op_conv_shape){__VA_ARGS__})

static void conv_matches_ref_first_layer_5x5_pad2(void)
{
    T_CHECK(conv_case(CONV(.n = 3, .c = 1, .h = 28, .w = 28, .k = 5, .r = 5, .s = 5, .stride_h = 1, .stride_w = 1,
                           .pad_h = 2, .pad_w = 2, .dil_h = 1, .dil_w = 1, .groups = 1), 1), "mismatch");
}

static void conv_matches_ref_odd_stride2_pad1(void)
{
    T_CHECK(conv_case(CONV(.n = 2, .c = 3, .h = 7, .w = 13, .k = 4, .r = 3, .s = 3, .stride_h = 2, .stride_w = 2,
                           .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1), 1), "mismatch");
    /* 16 columns and wider: the data gradient goes through col2im_rows (conv.c) */
    T_CHECK(conv_case(CONV(.n = 2, .c = 3, .h = 7, .w = 21, .k = 4, .r = 3, .s = 3, .stride_h = 2, .stride_w = 2,
                           .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1), 1), "mismatch (21 wide)");
}

static void conv_matches_ref_dilation2_nonsquare(void)
{
    T_CHECK(conv_case(CONV(.n = 1, .c = 5, .h = 13, .w = 11, .k = 7, .r = 3, .s = 2, .stride_h = 1, .stride_w = 2,
                           .pad_h = 2, .pad_w = 0, .dil_h = 2, .dil_w = 3, .groups = 1), 0), "mismatch");
    T_CHECK(conv_case(CONV(.n = 1, .c = 5, .h = 13, .w = 19, .k = 7, .r = 3, .s = 2, .stride_h = 3, .stride_w = 2,
                           .pad_h = 2, .pad_w = 1, .dil_h = 2, .dil_w = 3, .groups = 1), 0), "mismatch (19 wide)");
}

/* More images than one workspace chunk holds (context.c sizes chunks per device: 16M floats
 * on a GPU, an eighth of the cache on a CPU): per image (c*r*s + k)*p*q = (576 + 8)*24*23
 * floats (plus row padding), so 61 images take several chunks, the last one short, and the
 * filter gradient accumulates across them. Groups 2 and a bias on the way. */
static void conv_matches_ref_across_workspace_chunks(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    op_conv_shape s = CONV(.n = 61, .c = 64, .h = 24, .w = 23, .k = 8, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1,
                           .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 2);
    T_CHECK(op_conv_shape_infer(&s) == DLCL_OK, "%s", dlcl_last_error());
    T_CHECK(op_conv2d_workspace(ctx, &s) < (size_t)s.n * (s.c * 9 + s.k) * s.p * s.q, "one chunk would hold every image");
    T_CHECK(conv_case(s, 1), "mismatch");
}

static void conv_matches_ref_groups2_and_depthwise(void)
{
    T_CHECK(conv_case(CONV(.n = 3, .c = 4, .h = 9, .w = 7, .k = 6, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1,
                           .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 2), 1), "groups 2");
    T_CHECK(conv_case(CONV(.n = 2, .c = 6, .h = 8, .w = 5, .k = 6, .r = 3, .s = 3, .stride_h = 2, .stride_w = 1,
                           .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 6), 1), "depthwise");
}

/* groups == channels runs the dw_* kernels (forward as the direct algorithm, both
 * gradients always): two outputs per channel, stride, dilation and padding that differ by
 * axis, a non-square kernel; then a MobileNet-like 3x3 over three chunks */
static void conv_matches_ref_depthwise_kernels(void)
{
    T_CHECK(conv_case(CONV(.n = 3, .c = 5, .h = 11, .w = 17, .k = 10, .r = 3, .s = 5, .stride_h = 2, .stride_w = 1,
                           .pad_h = 2, .pad_w = 1, .dil_h = 1, .dil_w = 2, .groups = 5), 1), "multiplier 2, odd geometry");
    T_CHECK(conv_case(CONV(.n = 7, .c = 8, .h = 14, .w = 14, .k = 8, .r = 3, .s = 3, .stride_h = 1, .stride_w = 2,
                           .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 8, .chunk = 3), 0),
            "3x3 in chunks of 3, stride 2 across");
}

static void conv_matches_ref_1x1_and_large_reduction(void)
{
    T_CHECK(conv_case(CONV(.n = 2, .c = 13, .h = 5, .w = 5, .k = 3, .r = 1, .s = 1, .stride_h = 1, .stride_w = 1,
                           .pad_h = 0, .pad_w = 0, .dil_h = 1, .dil_w = 1, .groups = 1), 1), "1x1");
    T_CHECK(conv_case(CONV(.n = 3, .c = 16, .h = 14, .w = 14, .k = 32, .r = 5, .s = 5, .stride_h = 1, .stride_w = 1,
                           .pad_h = 2, .pad_w = 2, .dil_h = 1, .dil_w = 1, .groups = 1), 1), "lenet conv2-like");
}

/* Where the GEMMs read and write NCHW tensors in place (conv.c, conv_view): a chunk of one
 * image; on CPU devices chunks of several whose p*q fills whole GEMM tiles (8x8, 8x4) or
 * nearly (17x17), as a batch of products, the filter gradient summed image by image; and a 1x1 convolution of
 * stride 1, whose columns are its input. Each case runs with the CPU's choices and with a
 * GPU's (one wide product and the relayouts). */
static void conv_matches_ref_in_place_nchw(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    const op_conv_shape shapes[] = {
        CONV(.n = 5, .c = 3, .h = 8, .w = 8, .k = 4, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1,
             .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1, .chunk = 2),
        CONV(.n = 5, .c = 6, .h = 8, .w = 4, .k = 4, .r = 1, .s = 1, .stride_h = 1, .stride_w = 1, .dil_h = 1,
             .dil_w = 1, .groups = 2, .chunk = 2),
        CONV(.n = 3, .c = 7, .h = 5, .w = 3, .k = 5, .r = 1, .s = 1, .stride_h = 1, .stride_w = 1, .dil_h = 1,
             .dil_w = 1, .groups = 1, .chunk = 1),
        CONV(.n = 3, .c = 5, .h = 9, .w = 18, .k = 6, .r = 1, .s = 1, .stride_h = 2, .stride_w = 2, .dil_h = 1,
             .dil_w = 1, .groups = 1, .chunk = 3),
        /* 17 x 17 = 289 = 18 x 16 + 1 outputs per image: a ragged batch (the last tile of each
         * image overlapping the one before it) */
        CONV(.n = 3, .c = 5, .h = 17, .w = 17, .k = 7, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1,
             .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1, .chunk = 2),
        CONV(.n = 3, .c = 9, .h = 17, .w = 17, .k = 7, .r = 1, .s = 1, .stride_h = 1, .stride_w = 1, .dil_h = 1,
             .dil_w = 1, .groups = 1, .chunk = 2),
    };
    const int was_cpu = ctx->cpu_device;
    for (int cpu = 0; cpu < 2; cpu++)
        for (size_t i = 0; i < T_COUNT(shapes); i++) {
            ctx->cpu_device = cpu;
            bool ok = conv_case(shapes[i], (int)(i % 2));
            ctx->cpu_device = was_cpu;
            T_CHECK(ok, "shape %zu, %s choices: mismatch", i, cpu ? "CPU" : "GPU");
        }
}

/* The implicit GEMM (conv_implicit.c) on its edges: filters and channels that are not
 * multiples of the tiles (19 filters: a last strip of 16 overlapping the first), no
 * padding, 5x5 and 1x3 kernels, a reduction over several blocks of input channels (150 x
 * 9 taps), a filter gradient over several blocks of grid columns (30 x 32), chunks of 2 */
static void conv_matches_ref_implicit_gemm(void)
{
    const op_conv_shape shapes[] = {
        CONV(.n = 3, .c = 17, .h = 9, .w = 13, .k = 19, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1,
             .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1, .chunk = 2),
        CONV(.n = 2, .c = 16, .h = 10, .w = 11, .k = 24, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1, .dil_h = 1,
             .dil_w = 1, .groups = 1),
        CONV(.n = 2, .c = 20, .h = 8, .w = 9, .k = 16, .r = 5, .s = 5, .stride_h = 1, .stride_w = 1, .pad_h = 2,
             .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1),
        CONV(.n = 2, .c = 16, .h = 7, .w = 12, .k = 18, .r = 1, .s = 3, .stride_h = 1, .stride_w = 1, .pad_w = 1,
             .dil_h = 1, .dil_w = 1, .groups = 1),
        CONV(.n = 2, .c = 150, .h = 6, .w = 5, .k = 16, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1,
             .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1),
        CONV(.n = 2, .c = 16, .h = 30, .w = 30, .k = 32, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1,
             .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1, .chunk = 1),
    };
    for (size_t i = 0; i < T_COUNT(shapes); i++) T_CHECK(conv_case(shapes[i], (int)(i % 2)), "shape %zu: mismatch", i);
    /* several blocks of input channels with a bias and relu, which the last block's store
     * adds and applies (the blocks before it must not) */
    T_CHECK(conv_case(CONV(.n = 2, .c = 150, .h = 6, .w = 5, .k = 22, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1,
                           .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1),
                      1),
            "blocks with a bias and relu: mismatch");
}

/* Images in chunks of a given size (what op_conv2d_find picks): 2 + 2 + 1 images, the
 * filter gradient accumulated across the chunks, the last one short */
static void conv_matches_ref_with_a_chosen_chunk(void)
{
    T_CHECK(conv_case(CONV(.n = 5, .c = 3, .h = 9, .w = 11, .k = 4, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1,
                           .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1, .chunk = 2), 1), "mismatch");
}

/* op_conv2d_find: times the candidates once and keeps the choice in the cache directory,
 * reads it back the next time, re-times over a damaged entry, and does nothing with
 * DLCL_AUTOTUNE=0. */
static void conv_find_times_once_then_reads_the_cache(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    char dir[] = "/tmp/dlcl-find-XXXXXX";
    T_CHECK(mkdtemp(dir) != NULL, "mkdtemp failed");
    char *saved = ctx->cache_dir;
    ctx->cache_dir = dir;
    const char *env = getenv("DLCL_AUTOTUNE");
    char *env_saved = env ? strdup(env) : NULL;
    unsetenv("DLCL_AUTOTUNE");
    op_conv_shape s = CONV(.n = 8, .c = 2, .h = 12, .w = 12, .k = 6, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1,
                           .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1);
    op_conv_choice a = {0}, b = {0}, c = {0}, d = {0};
    bool ok = op_conv_shape_infer(&s) == DLCL_OK && op_conv2d_find(ctx, &s, OP_FIND_BACKWARD_DX, &a) == DLCL_OK &&
              op_conv2d_find(ctx, &s, OP_FIND_BACKWARD_DX, &b) == DLCL_OK;
    /* damage every entry in the directory: the find entry, and programs built for this shape */
    int damaged = 0;
    DIR *dh = opendir(dir);
    for (struct dirent *e; dh && (e = readdir(dh)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r+b");
        if (f && fseek(f, -3, SEEK_END) == 0 && fputs("zz", f) >= 0) damaged++;
        if (f) fclose(f);
    }
    if (dh) closedir(dh);
    ok = ok && op_conv2d_find(ctx, &s, OP_FIND_BACKWARD_DX, &c) == DLCL_OK;
    setenv("DLCL_AUTOTUNE", "0", 1);
    ok = ok && op_conv2d_find(ctx, &s, OP_FIND_BACKWARD_DX, &d) == DLCL_OK;
    if (env_saved) setenv("DLCL_AUTOTUNE", env_saved, 1);
    else unsetenv("DLCL_AUTOTUNE");
    free(env_saved);
    ctx->cache_dir = saved;
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    T_CHECK(system(cmd) == 0, "cannot remove %s", dir);
    T_CHECK(ok, "%s", dlcl_last_error());
    printf("# first: forward %d, %d images per chunk, %.2f ms, %d candidates\n", (int)a.forward, a.chunk, a.ms,
           a.candidates);
    T_CHECK(a.timed == 1 && a.candidates >= 2, "first find: timed %d, %d candidates", a.timed, a.candidates);
    T_CHECK(a.chunk >= 1 && a.chunk <= s.n, "chunk %d", a.chunk);
    T_CHECK(a.forward == OP_CONV_IM2COL_GEMM || a.forward == OP_CONV_DIRECT, "forward %d", (int)a.forward);
    T_CHECK(b.timed == 2 && b.forward == a.forward && b.chunk == a.chunk, "second find: timed %d, %d/%d", b.timed,
            (int)b.forward, b.chunk);
    T_CHECK(damaged >= 1, "no cache entry written");
    T_CHECK(c.timed == 1, "a damaged entry was used (timed %d)", c.timed);
    T_CHECK(d.timed == 0 && d.forward == OP_CONV_AUTO, "DLCL_AUTOTUNE=0 still timed (%d)", d.timed);
}

/* Winograd F(2x2, 3x3) for the forward and the data gradient (conv_case runs both where
 * op_conv2d_winograd_ok): no padding with odd outputs (partial tiles), padding 2 (the data
 * gradient's padding is then 0), and a VGG-like layer in chunks of 3 */
static void conv_matches_ref_winograd(void)
{
    T_CHECK(conv_case(CONV(.n = 2, .c = 5, .h = 10, .w = 7, .k = 3, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1,
                           .pad_h = 0, .pad_w = 0, .dil_h = 1, .dil_w = 1, .groups = 1), 1), "pad 0, 8x5 outputs");
    T_CHECK(conv_case(CONV(.n = 3, .c = 4, .h = 6, .w = 9, .k = 6, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1,
                           .pad_h = 2, .pad_w = 2, .dil_h = 1, .dil_w = 1, .groups = 1), 0), "pad 2");
    T_CHECK(conv_case(CONV(.n = 7, .c = 16, .h = 14, .w = 14, .k = 24, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1,
                           .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1, .chunk = 3), 1),
            "16 -> 24 channels, chunks of 3");
    /* a workspace sized without room for Winograd is refused, not overrun */
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    op_conv_shape s = CONV(.n = 2, .c = 3, .h = 8, .w = 8, .k = 4, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1,
                           .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1);
    T_CHECK(op_conv_shape_infer(&s) == DLCL_OK, "%s", dlcl_last_error());
    dbuf X = {0}, Wt = {0}, Y = {0};
    cl_mem ws = NULL;
    size_t ws_bytes = op_conv2d_workspace(ctx, &s) * sizeof(float);
    cl_int err = CL_SUCCESS; /* its own buffer: the pool may hand out a larger one */
    bool made = dbuf_new(&X, NULL, 2 * 3 * 64) && dbuf_new(&Wt, NULL, 4 * 3 * 9) && dbuf_new(&Y, NULL, 2 * 4 * 64) &&
                (ws = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, ws_bytes, NULL, &err)) != NULL;
    dlcl_status st = made ? op_conv2d_forward_algo(ctx, &s, OP_CONV_WINOGRAD, ob(&X), ob(&Wt), op_b(NULL, 0), ob(&Y),
                                                   op_b(ws, 0))
                          : DLCL_ERR_OPENCL;
    bool named = strstr(dlcl_last_error(), "workspace") != NULL;
    dbuf_free(&X), dbuf_free(&Wt), dbuf_free(&Y);
    if (ws) clReleaseMemObject(ws);
    T_CHECK(st == DLCL_ERR_INVALID_ARG && named, "small workspace: %s: %s", dlcl_status_str(st), dlcl_last_error());
}

static void conv_shape_errors_are_reported(void)
{
    op_conv_shape s = CONV(.n = 1, .c = 3, .h = 4, .w = 4, .k = 4, .r = 5, .s = 5, .stride_h = 1, .stride_w = 1,
                           .dil_h = 1, .dil_w = 1, .groups = 1);
    T_ERR(op_conv_shape_infer(&s), DLCL_ERR_SHAPE, "larger than the 4x4 input");
    s.r = s.s = 3;
    s.groups = 2;
    T_ERR(op_conv_shape_infer(&s), DLCL_ERR_SHAPE, "groups = 2");
    s.groups = 1;
    s.stride_h = 0;
    T_ERR(op_conv_shape_infer(&s), DLCL_ERR_SHAPE, "positive");
}

/* ------------------------------------------------------------------ pooling */

/* ties: inputs rounded to halves, so windows hold equal maxima and the backward pass shows
 * which one the forward chose (the first, as in PyTorch and the reference) */
static bool pool_case_x(op_pool_shape s, bool ties)
{
    dlcl_ctx *ctx = t_ctx();
    if (ctx == NULL || op_pool_shape_infer(&s) != DLCL_OK) return false;
    printf("# pool n%d c%d %dx%d size %dx%d stride %d,%d pad %d,%d -> %dx%d\n", s.n, s.c, s.h, s.w, s.size_h, s.size_w,
           s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.p, s.q);
    ref_pool g = {s.n, s.c, s.h, s.w, s.size_h, s.size_w, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.p, s.q};
    size_t nx = (size_t)s.n * s.c * s.h * s.w, ny = (size_t)s.n * s.c * s.p * s.q;
    float *x = rnd(nx, -1, 1), *dy = rnd(ny, -1, 1), *y = malloc(ny * 4), *yr = malloc(ny * 4), *dx = malloc(nx * 4),
          *dxr = malloc(nx * 4);
    for (size_t i = 0; ties && x && i < nx; i++) x[i] = floorf(x[i] * 2.0f) / 2.0f;
    for (size_t i = 0; dx && i < nx; i++) dx[i] = 7.0f; /* dx starts as garbage: every element must be written */
    dbuf X = {0}, Y = {0}, DY = {0}, DX = {0};
    cl_mem idx = NULL;
    bool ok = x && dy && y && yr && dx && dxr && dbuf_new(&X, x, nx) && dbuf_new(&Y, NULL, ny) &&
              dbuf_new(&DY, dy, ny) && dbuf_new(&DX, dx, nx) && rt_buffer_acquire(ctx, ny * 4, "idx", &idx) == DLCL_OK;
    maxpool_forward_ref(&g, x, yr);
    maxpool_backward_ref(&g, x, dy, dxr);
    ok = ok && op_maxpool_forward(ctx, &s, ob(&X), ob(&Y), idx) == DLCL_OK && dbuf_read(&Y, y, "y") &&
         t_close("maxpool forward", y, yr, ny, 0, 0) && op_maxpool_backward(ctx, &s, ob(&DY), idx, ob(&DX)) == DLCL_OK &&
         dbuf_read(&DX, dx, "dx") && t_close("maxpool backward", dx, dxr, nx, 1e-6f, 1e-6f);
    /* an inference net's pool keeps no argmax (idx NULL): the same outputs, NaN and ties included */
    ok = ok && dbuf_fill(&Y, 7.0f) && op_maxpool_forward(ctx, &s, ob(&X), ob(&Y), NULL) == DLCL_OK &&
         dbuf_read(&Y, y, "y") && t_close("maxpool forward without argmax", y, yr, ny, 0, 0);
    avgpool_forward_ref(&g, x, yr);
    avgpool_backward_ref(&g, dy, dxr);
    ok = ok && op_avgpool_forward(ctx, &s, ob(&X), ob(&Y)) == DLCL_OK && dbuf_read(&Y, y, "y") &&
         t_close("avgpool forward", y, yr, ny, 1e-5f, 1e-6f) && op_avgpool_backward(ctx, &s, ob(&DY), ob(&DX)) == DLCL_OK &&
         dbuf_read(&DX, dx, "dx") && t_close("avgpool backward", dx, dxr, nx, 1e-5f, 1e-6f);
    dbuf_free(&X), dbuf_free(&Y), dbuf_free(&DY), dbuf_free(&DX);
    if (idx) rt_buffer_release(ctx, idx);
    free(x), free(dy), free(y), free(yr), free(dx), free(dxr);
    return ok;
}

/* every case through both kernel families: the row kernels of CPU devices and the
 * per-element ones of GPUs (run here by treating PoCL as a GPU) */
static bool pool_case_both(op_pool_shape s, bool ties)
{
    dlcl_ctx *ctx = t_ctx();
    if (ctx == NULL) return false;
    const int was_cpu = ctx->cpu_device;
    bool ok = true;
    for (int cpu = 0; cpu < 2; cpu++) {
        ctx->cpu_device = cpu;
        printf("# %s kernels\n", cpu ? "CPU" : "GPU");
        ok = pool_case_x(s, ties) && ok;
    }
    ctx->cpu_device = was_cpu;
    return ok;
}

static bool pool_case(op_pool_shape s) { return pool_case_both(s, false); }

#define POOL(...) ((op_pool_shape){__VA_ARGS__})

static void pool_matches_ref_on_odd_shapes(void)
{
    T_CHECK(pool_case(POOL(.n = 3, .c = 2, .h = 7, .w = 13, .size_h = 2, .size_w = 2, .stride_h = 2, .stride_w = 2)), "2/2");
    T_CHECK(pool_case(POOL(.n = 1, .c = 3, .h = 9, .w = 8, .size_h = 3, .size_w = 3, .stride_h = 2, .stride_w = 2,
                           .pad_h = 1, .pad_w = 1)), "3/2 pad 1");
    T_CHECK(pool_case(POOL(.n = 2, .c = 1, .h = 5, .w = 7, .size_h = 3, .size_w = 3, .stride_h = 1, .stride_w = 1)), "3/1");
    T_CHECK(pool_case(POOL(.n = 1, .c = 2, .h = 11, .w = 6, .size_h = 3, .size_w = 2, .stride_h = 3, .stride_w = 1,
                           .pad_h = 1)), "non-square");
    T_CHECK(pool_case_both(POOL(.n = 2, .c = 3, .h = 8, .w = 9, .size_h = 2, .size_w = 2, .stride_h = 2, .stride_w = 2),
                           true), "2/2 with ties");
    T_CHECK(pool_case_both(POOL(.n = 2, .c = 3, .h = 8, .w = 9, .size_h = 3, .size_w = 2, .stride_h = 2, .stride_w = 2),
                           true), "3x2/2 with ties");
    /* the row kernels' edges: windows cut by the padding on every side, strides 1 to 3 */
    T_CHECK(pool_case_both(POOL(.n = 2, .c = 3, .h = 13, .w = 11, .size_h = 3, .size_w = 3, .stride_h = 2, .stride_w = 2,
                                .pad_h = 1, .pad_w = 1), true), "3/2 pad 1 with ties (ResNet's stem pool)");
    T_CHECK(pool_case(POOL(.n = 1, .c = 2, .h = 7, .w = 9, .size_h = 3, .size_w = 3, .stride_h = 1, .stride_w = 1,
                           .pad_h = 1, .pad_w = 1)), "3/1 pad 1");
    T_CHECK(pool_case(POOL(.n = 3, .c = 1, .h = 10, .w = 17, .size_h = 4, .size_w = 5, .stride_h = 3, .stride_w = 3,
                           .pad_h = 2, .pad_w = 2)), "4x5/3 pad 2");
    T_CHECK(pool_case(POOL(.n = 1, .c = 1, .h = 1, .w = 7, .size_h = 1, .size_w = 3, .stride_h = 1, .stride_w = 2,
                           .pad_w = 1)), "a single row, 1x3/2 pad 1");
}

static void pool_shape_errors_are_reported(void)
{
    op_pool_shape s = POOL(.n = 1, .c = 1, .h = 4, .w = 4, .size_h = 2, .size_w = 2, .stride_h = 2, .stride_w = 2,
                           .pad_h = 2);
    T_ERR(op_pool_shape_infer(&s), DLCL_ERR_SHAPE, "at most half");
    s.pad_h = 0;
    s.size_h = s.size_w = 5;
    T_ERR(op_pool_shape_infer(&s), DLCL_ERR_SHAPE, "larger than");
}

static void global_avgpool_matches_mean(void)
{
    int n = 3, c = 5, hw = 13;
    size_t nx = (size_t)n * c * hw;
    float *x = rnd(nx, -1, 1), y[15], yr[15], dy[15], *dx = malloc(nx * 4), *dxr = malloc(nx * 4);
    for (int i = 0; i < n * c; i++) {
        double s = 0;
        for (int j = 0; j < hw; j++) s += x[i * hw + j];
        yr[i] = (float)(s / hw);
        dy[i] = (float)i - 7.0f;
        for (int j = 0; j < hw; j++) dxr[i * hw + j] = dy[i] / hw;
    }
    dbuf X = {0}, Y = {0}, DY = {0}, DX = {0};
    dlcl_ctx *ctx = t_ctx();
    bool ok = ctx && dbuf_new(&X, x, nx) && dbuf_new(&Y, NULL, 15) && dbuf_new(&DY, dy, 15) && dbuf_new(&DX, NULL, nx) &&
              op_global_avgpool_forward(ctx, n, c, hw, ob(&X), ob(&Y)) == DLCL_OK && dbuf_read(&Y, y, "y") &&
              t_close("global avgpool forward", y, yr, 15, 1e-5f, 1e-6f) &&
              op_global_avgpool_backward(ctx, n, c, hw, ob(&DY), ob(&DX)) == DLCL_OK && dbuf_read(&DX, dx, "dx") &&
              t_close("global avgpool backward", dx, dxr, nx, 1e-6f, 1e-7f);
    dbuf_free(&X), dbuf_free(&Y), dbuf_free(&DY), dbuf_free(&DX);
    free(x), free(dx), free(dxr);
    T_CHECK(ok, "mismatch");
}

/* ------------------------------------------------------------------ activations, bias */

static void activations_match_ref_forward_and_backward(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    size_t sizes[] = {1, 7, 1013};
    float slopes[] = {0.01f, 0.2f};
    for (int act = 0; act < OP_ACT_COUNT; act++)
        for (size_t si = 0; si < T_COUNT(sizes); si++)
            for (int sl = 0; sl < (act == OP_ACT_LEAKY ? 2 : 1); sl++) {
                size_t n = sizes[si];
                float slope = slopes[sl], *x = rnd(n, -4, 4), *dy = rnd(n, -1, 1), *y = malloc(n * 4),
                      *yr = malloc(n * 4), *dx = malloc(n * 4), *dxr = malloc(n * 4);
                for (size_t i = 0; i < n; i++) {
                    yr[i] = activation_ref(act, slope, x[i]);
                    dxr[i] = dy[i] * activation_grad_ref(act, slope, x[i]);
                }
                dbuf X = {0}, Y = {0}, DY = {0}, DX = {0};
                char label[64];
                snprintf(label, sizeof label, "%s n=%zu slope %g", op_act_names[act], n, (double)slope);
                /* tanh/sigmoid/gelu use the device's exp/erf (ULP-bounded, not exact): 1e-5 relative */
                bool ok = dbuf_new(&X, x, n) && dbuf_new(&Y, NULL, n) && dbuf_new(&DY, dy, n) && dbuf_new(&DX, NULL, n) &&
                          op_activation_forward(ctx, (op_act)act, slope, ob(&X), ob(&Y), n) == DLCL_OK &&
                          dbuf_read(&Y, y, label) && t_close(label, y, yr, n, 1e-5f, 1e-6f) &&
                          op_activation_backward(ctx, (op_act)act, slope, ob(&X), ob(&Y), ob(&DY), ob(&DX), n) == DLCL_OK &&
                          dbuf_read(&DX, dx, label) && t_close(label, dx, dxr, n, 1e-5f, 1e-6f);
                dbuf_free(&X), dbuf_free(&Y), dbuf_free(&DY), dbuf_free(&DX);
                free(x), free(dy), free(y), free(yr), free(dx), free(dxr);
                T_CHECK(ok, "%s", label);
            }
}

static bool bias_case(dlcl_ctx *ctx, int outer, int ch, int inner, const char *label)
{
    size_t n = (size_t)outer * ch * inner;
    float *y = rnd(n, -1, 1), *b = rnd(ch, -1, 1), *got = malloc(n * 4), *want = malloc(n * 4);
    float *db = malloc(ch * 4), *dbr = calloc(ch, 4);
    for (size_t i = 0; y && b && want && dbr && i < n; i++) {
        want[i] = y[i] + b[(i / inner) % ch];
        dbr[(i / inner) % ch] += y[i];
    }
    dbuf Y = {0}, B = {0}, DB = {0};
    bool ok = ctx && got && db && dbuf_new(&Y, y, n) && dbuf_new(&B, b, ch) && dbuf_new(&DB, NULL, ch) &&
              op_bias_grad(ctx, ob(&Y), ob(&DB), outer, ch, inner) == DLCL_OK && dbuf_read(&DB, db, label) &&
              t_close(label, db, dbr, ch, 1e-4f, 1e-5f) &&
              op_bias_add(ctx, ob(&Y), ob(&B), outer, ch, inner) == DLCL_OK && dbuf_read(&Y, got, label) &&
              t_close(label, got, want, n, 1e-6f, 1e-6f);
    dbuf_free(&Y), dbuf_free(&B), dbuf_free(&DB);
    free(y), free(b), free(got), free(want), free(db), free(dbr);
    return ok;
}

/* Each bias_grad kernel (bias.c): a work-item per channel (short rows), vector rows on CPU
 * devices, a work-group per channel elsewhere (run here by treating PoCL as a GPU). */
static void bias_add_and_grad_match_ref(void)
{
    dlcl_ctx *ctx = t_ctx();
    if (ctx == NULL) return;
    const int was_cpu = ctx->cpu_device;
    const int shapes[3][3] = {{3, 7, 13}, {5, 3, 1000}, {1, 2, 257}};
    for (int cpu = 0; cpu < 2; cpu++)
        for (int i = 0; i < 3; i++) {
            char label[96];
            snprintf(label, sizeof label, "bias %dx%dx%d, %s kernels", shapes[i][0], shapes[i][1], shapes[i][2],
                     cpu ? "CPU" : "GPU");
            ctx->cpu_device = cpu;
            bool ok = bias_case(ctx, shapes[i][0], shapes[i][1], shapes[i][2], label);
            ctx->cpu_device = was_cpu;
            T_CHECK(ok, "%s: mismatch", label);
        }
}

/* ------------------------------------------------------------------ dropout */

static void dropout_mask_is_reproducible_scaled_and_about_rate(void)
{
    dlcl_ctx *ctx = t_ctx();
    size_t n = 20011;
    float rate = 0.3f, *x = rnd(n, 0.5f, 1.5f), *y = malloc(n * 4), *m = malloc(n * 4), *dx = malloc(n * 4);
    dbuf X = {0}, Y = {0}, M = {0}, DX = {0};
    bool ok = ctx && dbuf_new(&X, x, n) && dbuf_new(&Y, NULL, n) && dbuf_new(&M, NULL, n) && dbuf_new(&DX, NULL, n) &&
              op_dropout_forward(ctx, rate, 0x123456789abcdefull, ob(&X), ob(&Y), ob(&M), n) == DLCL_OK &&
              dbuf_read(&Y, y, "y") && dbuf_read(&M, m, "mask") &&
              op_dropout_backward(ctx, ob(&X), ob(&M), ob(&DX), n) == DLCL_OK && dbuf_read(&DX, dx, "dx");
    size_t kept = 0, bad = 0;
    float scale = 1.0f / (1.0f - rate);
    for (size_t i = 0; ok && i < n; i++) {
        int keep = dropout_keep_ref((uint32_t)i, 0x123456789abcdefull, rate);
        kept += keep;
        bad += m[i] != (keep ? scale : 0.0f) || y[i] != x[i] * m[i] || dx[i] != x[i] * m[i];
    }
    /* binomial(n, 0.7): 5 standard deviations is about 325 */
    double expect = n * (1 - rate);
    bool rate_ok = fabs((double)kept - expect) < 5 * sqrt(n * rate * (1 - rate));
    float *y2 = malloc(n * 4);
    bool differs = ok && op_dropout_forward(ctx, rate, 42, ob(&X), ob(&Y), ob(&M), n) == DLCL_OK &&
                   dbuf_read(&Y, y2, "y") && memcmp(y, y2, n * 4) != 0;
    bool identity = ok && op_dropout_forward(ctx, 0.0f, 42, ob(&X), ob(&Y), ob(&M), n) == DLCL_OK &&
                    dbuf_read(&Y, y2, "y") && memcmp(x, y2, n * 4) == 0;
    dbuf_free(&X), dbuf_free(&Y), dbuf_free(&M), dbuf_free(&DX);
    free(x), free(y), free(m), free(dx), free(y2);
    T_CHECK(ok && bad == 0, "%zu elements differ from the reference mask", bad);
    T_CHECK(rate_ok, "kept %zu of %zu, expected about %.0f", kept, n, expect);
    T_CHECK(differs, "another seed gives the same mask");
    T_CHECK(identity, "rate 0 is not the identity");
    T_ERR(op_dropout_forward(ctx, 1.0f, 1, op_b(NULL, 0), op_b(NULL, 0), op_b(NULL, 0), 4), DLCL_ERR_INVALID_ARG, "rate");
}

/* ------------------------------------------------------------------ loss */

static bool xent_case(int n, int classes, float lo, float hi)
{
    dlcl_ctx *ctx = t_ctx();
    size_t nz = (size_t)n * classes;
    float *z = rnd(nz, lo, hi), *dz = malloc(nz * 4), *dzr = malloc(nz * 4), *st = malloc(2 * n * 4),
          *loss = malloc(n * 4), *lref = malloc(n * 4), *cor = malloc(n * 4), *cref = malloc(n * 4);
    int32_t *lab = malloc(n * 4);
    double *ld = malloc(n * sizeof *ld);
    int *ci = malloc(n * sizeof *ci);
    uint64_t s = t_seed() + (uint64_t)n;
    for (int i = 0; i < n; i++) lab[i] = (int32_t)(t_rand_u32(&s) % (uint32_t)classes);
    if (n > 1) z[classes + lab[1]] = z[classes] > z[classes + lab[1]] ? z[classes] : z[classes + lab[1]]; /* a tie */
    softmax_xent_ref(z, lab, n, classes, 1.0f / n, ld, ci, dzr);
    for (int i = 0; i < n; i++) lref[i] = (float)ld[i], cref[i] = (float)ci[i];
    dbuf Z = {0}, DZ = {0}, S = {0};
    cl_mem labels = NULL;
    bool ok = ctx && dbuf_new(&Z, z, nz) && dbuf_new(&DZ, NULL, nz) && dbuf_new(&S, NULL, 2 * (size_t)n) &&
              rt_buffer_acquire(ctx, (size_t)n * 4, "labels", &labels) == DLCL_OK &&
              clEnqueueWriteBuffer(ctx->queue, labels, CL_TRUE, 0, (size_t)n * 4, lab, 0, NULL, NULL) == CL_SUCCESS &&
              op_softmax_xent(ctx, ob(&Z), labels, n, classes, 1.0f / n, ob(&DZ), ob(&S)) == DLCL_OK &&
              dbuf_read(&DZ, dz, "dz") && dbuf_read(&S, st, "stats");
    for (int i = 0; ok && i < n; i++) loss[i] = st[2 * i], cor[i] = st[2 * i + 1];
    char label[64];
    snprintf(label, sizeof label, "xent n=%d classes=%d logits in [%g,%g]", n, classes, (double)lo, (double)hi);
    ok = ok && t_close(label, loss, lref, n, 1e-5f, 1e-5f) && t_close("correct flags", cor, cref, n, 0, 0) &&
         t_close("gradient", dz, dzr, nz, 1e-5f, 1e-6f);
    dbuf_free(&Z), dbuf_free(&DZ), dbuf_free(&S);
    if (labels) rt_buffer_release(ctx, labels);
    free(z), free(dz), free(dzr), free(st), free(loss), free(lref), free(cor), free(cref), free(lab), free(ld), free(ci);
    return ok;
}

static void softmax_xent_matches_ref_and_is_stable(void)
{
    T_CHECK(xent_case(13, 10, -3, 3), "ordinary logits");
    T_CHECK(xent_case(1, 10, -3, 3), "n = 1");
    T_CHECK(xent_case(7, 1, -3, 3), "classes = 1");
    T_CHECK(xent_case(5, 10, -1e4f, 1e4f), "huge logits");
}

static void softmax_xent_gradient_matches_finite_differences(void)
{
    int n = 3, classes = 4;
    float *z = rnd(12, -2, 2), dz[12];
    int32_t lab[3] = {0, 3, 1};
    double loss[3], lp[3], lm[3];
    int c[3];
    softmax_xent_ref(z, lab, n, classes, 1.0f / n, loss, c, dz);
    for (int i = 0; i < 12; i++) {
        float o = z[i];
        z[i] = o + 1e-3f;
        softmax_xent_ref(z, lab, n, classes, 1, lp, c, NULL);
        z[i] = o - 1e-3f;
        softmax_xent_ref(z, lab, n, classes, 1, lm, c, NULL);
        z[i] = o;
        double fd = ((lp[0] + lp[1] + lp[2]) - (lm[0] + lm[1] + lm[2])) / (3 * 2e-3);
        T_CHECK(fabs(fd - dz[i]) < 1e-4, "element %d: reference gradient %g, finite difference %g", i, (double)dz[i], fd);
    }
    free(z);
}

/* ------------------------------------------------------------------ optimizer */

/* Both SGD kernels (optimizer.c): one work-item per parameter, and on CPU devices spans of
 * SGD_SPAN (4096) per work-item, here over one short span and over three and a ragged one.
 * PoCL runs the first by clearing ctx->cpu_device. */
static void sgd_matches_torch_formula_over_several_steps(void)
{
    dlcl_ctx *ctx = t_ctx();
    if (ctx == NULL) return;
    struct {
        float lr, momentum, wd;
        int nesterov;
    } cfgs[] = {{0.1f, 0, 0, 0}, {0.05f, 0.9f, 0, 0}, {0.05f, 0.9f, 0, 1}, {0.01f, 0.9f, 5e-4f, 1}, {0.1f, 0, 1e-2f, 0}};
    const size_t sizes[2] = {1013, 3 * 4096 + 5};
    const int was_cpu = ctx->cpu_device;
    for (int cpu = 0; cpu < 2; cpu++)
        for (size_t si = 0; si < 2; si++)
            for (size_t c = 0; c < T_COUNT(cfgs); c++) {
                size_t n = sizes[si];
                float *w = rnd(n, -1, 1), *wr = malloc(n * 4), *v = calloc(n, 4), *got = malloc(n * 4),
                      *g = malloc(n * 4);
                dbuf W = {0}, G = {0}, V = {0};
                bool ok = w && wr && v && got && g && dbuf_new(&W, w, n) && dbuf_new(&G, NULL, n) &&
                          dbuf_new(&V, NULL, n);
                if (ok) memcpy(wr, w, n * 4);
                ctx->cpu_device = cpu;
                for (int step = 0; ok && step < 4; step++) {
                    float *gs = rnd(n, -1, 1);
                    memcpy(g, gs, n * 4);
                    free(gs);
                    sgd_step_ref(wr, g, v, n, cfgs[c].lr, cfgs[c].momentum, cfgs[c].wd, cfgs[c].nesterov);
                    ok = clEnqueueWriteBuffer(ctx->queue, G.mem, CL_TRUE, GUARD * 4, n * 4, g, 0, NULL, NULL) ==
                             CL_SUCCESS &&
                         op_sgd_step(ctx, ob(&W), ob(&G), ob(&V), n, cfgs[c].lr, cfgs[c].momentum, cfgs[c].wd,
                                     cfgs[c].nesterov) == DLCL_OK;
                }
                ctx->cpu_device = was_cpu;
                ok = ok && dbuf_read(&W, got, "w") && t_close("sgd weights", got, wr, n, 1e-5f, 1e-6f);
                if (cfgs[c].momentum != 0.0f) /* without momentum v holds the last step, not checked */
                    ok = ok && dbuf_read(&V, got, "v") && t_close("sgd velocity", got, v, n, 1e-5f, 1e-6f);
                dbuf_free(&W), dbuf_free(&G), dbuf_free(&V);
                free(w), free(wr), free(v), free(got), free(g);
                T_CHECK(ok, "%s kernel, n %zu, config %zu (lr %g momentum %g wd %g nesterov %d)", cpu ? "CPU" : "GPU",
                        n, c, (double)cfgs[c].lr, (double)cfgs[c].momentum, (double)cfgs[c].wd, cfgs[c].nesterov);
            }
}

/* The reference above is only as good as its reading of torch's docs: compare it with
 * torch.optim.SGD itself when Debian's python3-torch is there. */
static void sgd_ref_matches_torch_optim_sgd(void)
{
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
        T_SKIP("/usr/bin/python3 cannot import torch");
    }
    float w[3] = {0.5f, -1.0f, 2.0f}, v[3] = {0}, g[3] = {0.1f, -0.2f, 0.3f};
    for (int s = 0; s < 3; s++) sgd_step_ref(w, g, v, 3, 0.1f, 0.9f, 0.01f, 1);
    FILE *p = popen("/usr/bin/python3 -c \"import torch\n"
                    "w = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)\n"
                    "o = torch.optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)\n"
                    "for _ in range(3):\n"
                    "    w.grad = torch.tensor([0.1, -0.2, 0.3]); o.step()\n"
                    "print(*w.tolist())\"",
                    "r");
    T_CHECK(p != NULL, "popen failed");
    float t[3];
    int got = fscanf(p, "%f %f %f", &t[0], &t[1], &t[2]);
    pclose(p);
    T_CHECK(got == 3, "could not read torch's output");
    T_CLOSE("reference vs torch.optim.SGD", w, t, 3, 1e-6f, 1e-6f);
}

static const t_case cases[] = {
    T_CASE(conv_matches_ref_first_layer_5x5_pad2),
    T_CASE(conv_matches_ref_odd_stride2_pad1),
    T_CASE(conv_matches_ref_dilation2_nonsquare),
    T_CASE(conv_matches_ref_groups2_and_depthwise),
    T_CASE(conv_matches_ref_depthwise_kernels),
    T_CASE(conv_matches_ref_across_workspace_chunks),
    T_CASE(conv_matches_ref_1x1_and_large_reduction),
    T_CASE(conv_matches_ref_with_a_chosen_chunk),
    T_CASE(conv_matches_ref_in_place_nchw),
    T_CASE(conv_matches_ref_implicit_gemm),
    T_CASE(conv_find_times_once_then_reads_the_cache),
    T_CASE(conv_matches_ref_winograd),
    T_CASE(conv_shape_errors_are_reported),
    T_CASE(pool_matches_ref_on_odd_shapes),
    T_CASE(pool_shape_errors_are_reported),
    T_CASE(global_avgpool_matches_mean),
    T_CASE(activations_match_ref_forward_and_backward),
    T_CASE(bias_add_and_grad_match_ref),
    T_CASE(dropout_mask_is_reproducible_scaled_and_about_rate),
    T_CASE(softmax_xent_matches_ref_and_is_stable),
    T_CASE(softmax_xent_gradient_matches_finite_differences),
    T_CASE(sgd_matches_torch_formula_over_several_steps),
    T_CASE(sgd_ref_matches_torch_optim_sgd),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
