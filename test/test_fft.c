/* The FFT convolution (lib/ops/conv_fft.c through lib/fft.c) against the plain-C
 * reference in ref/conv_ref.c on odd shapes, forward and both gradients, and the plan
 * cache of fft.c. Device buffers carry sentinel guard regions (checked after each op) and
 * the workspace is filled with NaN first, so an element left unwritten shows.
 *
 * Tolerance: |got - want| <= 1e-4 |want| + FFT_ATOL * K for a reduction of K products of
 * values in [-1, 1] (forward c*r*s, data gradient k*r*s, filter gradient n*p*q). Float
 * FFTs round every output of a plane at about eps * log2(nh*nw) times the plane's norm,
 * where the direct sum rounds at eps * sqrt(K) times the output, so the error is absolute
 * and grows with the reduction, not with the value. Measured worst on PoCL: 1e-8 per
 * product (3.8e-6 over the 400 of LeNet's conv2), so FFT_ATOL leaves a margin of 10. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/ops/ops.h"
#include "ref/ref.h"

#include "dbuf.h"
#include "test.h"

#define FFT_ATOL 1e-7f

static float *rnd(size_t n)
{
    static uint64_t s;
    if (s == 0) s = t_seed();
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (x) t_fill_uniform(&s, x, n, -1.0f, 1.0f);
    return x;
}

static bool poison(cl_mem ws, size_t bytes)
{
    const float nan = NAN;
    return clEnqueueFillBuffer(t_ctx()->queue, ws, &nan, sizeof nan, 0, bytes, 0, NULL, NULL) == CL_SUCCESS;
}

/* Forward (linear with the bias, then relu fused), the data gradient and the filter
 * gradient (with the bias gradient) by FFT against the reference. */
static bool fft_case(op_conv_shape s, int with_bias)
{
    dlcl_ctx *ctx = t_ctx();
    if (ctx == NULL || op_conv_shape_infer(&s) != DLCL_OK || !op_conv2d_fft_ok(&s)) {
        printf("# shape: %s\n", dlcl_last_error());
        return false;
    }
    ref_conv g = {s.n, s.c, s.h, s.w, s.k, s.r, s.s, 1, 1, s.pad_h, s.pad_w, 1, 1, 1, s.p, s.q};
    size_t nx = (size_t)s.n * s.c * s.h * s.w, nw = (size_t)s.k * s.c * s.r * s.s, ny = (size_t)s.n * s.k * s.p * s.q;
    printf("# fft conv n%d c%d %dx%d k%d %dx%d pad %d,%d bias %d chunk %d -> %dx%d\n", s.n, s.c, s.h, s.w, s.k, s.r,
           s.s, s.pad_h, s.pad_w, with_bias, s.chunk, s.p, s.q);
    float *x = rnd(nx), *w = rnd(nw), *b = rnd(s.k), *dy = rnd(ny), *y_ref = malloc(ny * 4), *y = malloc(ny * 4);
    float *dx_ref = malloc(nx * 4), *dx = malloc(nx * 4), *dw_ref = malloc(nw * 4), *dw = malloc(nw * 4);
    float *db_ref = malloc(s.k * 4), *db = malloc(s.k * 4);
    dbuf X = {0}, Wt = {0}, B = {0}, Y = {0}, DY = {0}, DX = {0}, DW = {0}, DB = {0};
    cl_mem ws = NULL;
    op_conv_shape room = s;
    room.fft = room.fft_bwd = 1;
    size_t ws_bytes = op_conv2d_workspace(ctx, &room) * sizeof(float);
    cl_int err = CL_SUCCESS;
    bool ok = x && w && b && dy && y_ref && y && dx_ref && dx && dw_ref && dw && db_ref && db && dbuf_new(&X, x, nx) &&
              dbuf_new(&Wt, w, nw) && dbuf_new(&B, b, s.k) && dbuf_new(&Y, NULL, ny) && dbuf_new(&DY, dy, ny) &&
              dbuf_new(&DX, NULL, nx) && dbuf_new(&DW, NULL, nw) && dbuf_new(&DB, NULL, s.k) &&
              (ws = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, ws_bytes, NULL, &err)) != NULL;
    /* outputs start as garbage */
    ok = ok && dbuf_fill(&Y, 7.0f) && dbuf_fill(&DX, 7.0f) && dbuf_fill(&DW, 7.0f) && dbuf_fill(&DB, 7.0f);
    op_buf bias = with_bias ? ob(&B) : op_b(NULL, 0), dbias = with_bias ? ob(&DB) : op_b(NULL, 0);
    float fwd_atol = FFT_ATOL * s.c * s.r * s.s, dx_atol = FFT_ATOL * s.k * s.r * s.s, dw_atol = FFT_ATOL * s.n * s.p * s.q;
    if (ok) {
        conv2d_forward_ref(&g, x, w, with_bias ? b : NULL, y_ref);
        ok = poison(ws, ws_bytes) &&
             op_conv2d_forward_algo(ctx, &s, OP_CONV_FFT, ob(&X), ob(&Wt), bias, ob(&Y), op_b(ws, 0)) == DLCL_OK &&
             dbuf_read(&Y, y, "y") && t_close("forward (fft)", y, y_ref, ny, 1e-4f, fwd_atol);
    }
    /* relu fused into the crop; its backward through y, both gradients by FFT */
    for (size_t i = 0; i < ny; i++) y_ref[i] = y_ref[i] > 0 ? y_ref[i] : 0.0f;
    ok = ok && poison(ws, ws_bytes) &&
         op_conv2d_forward_act(ctx, &s, OP_CONV_FFT, ob(&X), ob(&Wt), bias, OP_ACT_RELU, 0.0f, ob(&Y), op_b(ws, 0)) ==
             DLCL_OK &&
         dbuf_read(&Y, y, "y") && t_close("forward relu (fft)", y, y_ref, ny, 1e-4f, fwd_atol);
    if (ok) {
        for (size_t i = 0; i < ny; i++) dy[i] = y[i] > 0 ? dy[i] : 0.0f; /* dz, on the device's y */
        conv2d_backward_data_ref(&g, dy, w, dx_ref);
        conv2d_backward_filter_ref(&g, x, dy, dw_ref, db_ref);
        op_conv_shape sb = s;
        sb.fft_bwd = 1;
        dlcl_status st = poison(ws, ws_bytes) ? op_conv2d_backward(ctx, &sb, OP_ACT_RELU, 0.0f, ob(&Y), ob(&X), ob(&DY),
                                                                   ob(&Wt), ob(&DW), dbias, ob(&DX), op_b(ws, 0))
                                              : DLCL_ERR_OPENCL;
        ok = st == DLCL_OK && dbuf_read(&DX, dx, "dx") && t_close("backward data (fft)", dx, dx_ref, nx, 1e-4f, dx_atol) &&
             dbuf_read(&DW, dw, "dw") && t_close("backward filter (fft)", dw, dw_ref, nw, 1e-4f, dw_atol);
        if (ok && with_bias) ok = dbuf_read(&DB, db, "db") && t_close("bias gradient", db, db_ref, s.k, 1e-4f, 1e-3f);
    }
    if (!ok && dlcl_last_error()[0]) printf("# last error: %s\n", dlcl_last_error());
    dbuf *all[] = {&X, &Wt, &B, &Y, &DY, &DX, &DW, &DB};
    for (size_t i = 0; i < T_COUNT(all); i++) dbuf_free(all[i]);
    if (ws) clReleaseMemObject(ws);
    free(x), free(w), free(b), free(dy), free(y_ref), free(y), free(dx_ref), free(dx), free(dw_ref), free(dw);
    free(db_ref), free(db);
    return ok;
}

#define CONV(...) ((op_conv_shape){.stride_h = 1, .stride_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1, __VA_ARGS__})

static void conv_fft_matches_ref_7x13_5x5_pad0_and_pad2(void)
{
    T_CHECK(fft_case(CONV(.n = 3, .c = 1, .h = 7, .w = 13, .k = 4, .r = 5, .s = 5, .pad_h = 0, .pad_w = 0), 1), "pad 0");
    T_CHECK(fft_case(CONV(.n = 3, .c = 1, .h = 7, .w = 13, .k = 4, .r = 5, .s = 5, .pad_h = 2, .pad_w = 2), 0), "pad 2");
}

static void conv_fft_matches_ref_7x7_kernel_pad3_channels(void)
{
    T_CHECK(fft_case(CONV(.n = 3, .c = 3, .h = 13, .w = 7, .k = 5, .r = 7, .s = 7, .pad_h = 3, .pad_w = 3), 1),
            "7x7 pad 3, 3 -> 5 channels");
    /* a non-square kernel and padding that differs by axis */
    T_CHECK(fft_case(CONV(.n = 2, .c = 2, .h = 9, .w = 11, .k = 3, .r = 3, .s = 5, .pad_h = 1, .pad_w = 0), 0),
            "3x5, pad 1,0");
}

/* 2 + 2 + 1 images: the filter gradient's spectra summed over chunks, the last one short
 * (another batch size, so another plan); then LeNet's conv2 shape */
static void conv_fft_matches_ref_across_chunks(void)
{
    T_CHECK(fft_case(CONV(.n = 5, .c = 2, .h = 7, .w = 13, .k = 3, .r = 5, .s = 5, .pad_h = 2, .pad_w = 2, .chunk = 2), 1),
            "chunks of 2");
    T_CHECK(fft_case(CONV(.n = 3, .c = 16, .h = 14, .w = 14, .k = 32, .r = 5, .s = 5, .pad_h = 2, .pad_w = 2), 1),
            "lenet conv2-like");
}

/* op_conv2d_find times the FFT (forward alone, and with FFT gradients) for a 5x5 on GPUs
 * and not on CPU devices (conv_find.c fft_allowed); PoCL stands in for a GPU by clearing
 * ctx->cpu_device. Whatever wins, the choice must be one the shape allows. */
static void conv_find_times_fft_on_gpus_only(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    char dir[] = "/tmp/dlcl-fft-find-XXXXXX";
    T_CHECK(mkdtemp(dir) != NULL, "mkdtemp failed");
    char *saved = ctx->cache_dir;
    const int was_cpu = ctx->cpu_device;
    const char *env = getenv("DLCL_AUTOTUNE");
    char *env_saved = env ? strdup(env) : NULL;
    unsetenv("DLCL_AUTOTUNE");
    /* the FFT size of conv_fft_matches_ref_7x13_5x5_pad0_and_pad2: clFFT reuses its kernels */
    op_conv_shape s = CONV(.n = 4, .c = 2, .h = 7, .w = 13, .k = 3, .r = 5, .s = 5, .pad_h = 2, .pad_w = 2);
    op_conv_choice gpu = {0}, cpu = {0};
    bool ok = op_conv_shape_infer(&s) == DLCL_OK;
    ctx->cache_dir = dir;
    ctx->cpu_device = 0;
    ok = ok && op_conv2d_find(ctx, &s, OP_FIND_BACKWARD_DX, &gpu) == DLCL_OK;
    ctx->cpu_device = 1;
    s.n = 5; /* another shape: not read from the cache */
    ok = ok && op_conv_shape_infer(&s) == DLCL_OK && op_conv2d_find(ctx, &s, OP_FIND_BACKWARD_DX, &cpu) == DLCL_OK;
    ctx->cpu_device = was_cpu;
    ctx->cache_dir = saved;
    if (env_saved) setenv("DLCL_AUTOTUNE", env_saved, 1);
    free(env_saved);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    T_CHECK(system(cmd) == 0, "cannot remove %s", dir);
    T_CHECK(ok, "%s", dlcl_last_error());
    printf("# as a GPU: %d candidates, forward %d, FFT gradients %d; as a CPU: %d candidates, forward %d\n",
           gpu.candidates, (int)gpu.forward, gpu.fft_bwd, cpu.candidates, (int)cpu.forward);
    T_CHECK(gpu.timed == 1 && cpu.timed == 1, "timed %d / %d", gpu.timed, cpu.timed);
    T_CHECK(gpu.candidates == cpu.candidates + 2, "%d candidates as a GPU, %d as a CPU: want 2 more (the FFT's)",
            gpu.candidates, cpu.candidates);
    T_CHECK(cpu.forward != OP_CONV_FFT && !cpu.fft_bwd, "FFT chosen on a CPU device");
    T_CHECK(!gpu.fft_bwd || gpu.forward == OP_CONV_FFT, "FFT gradients without the FFT forward");
}

/* The plan for a size, batch and direction is baked once per context: a second forward of
 * the same shape bakes nothing, another size bakes again. */
static void fft_plan_cache_bakes_once_per_size(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    op_conv_shape s = CONV(.n = 2, .c = 2, .h = 10, .w = 6, .k = 3, .r = 5, .s = 5, .pad_h = 1, .pad_w = 1);
    T_CHECK(op_conv_shape_infer(&s) == DLCL_OK, "%s", dlcl_last_error());
    op_conv_shape room = s; /* room for the second size too: 14 x 10 planes take more */
    room.fft = 1;
    room.pad_h = room.pad_w = 2;
    T_CHECK(op_conv_shape_infer(&room) == DLCL_OK, "%s", dlcl_last_error());
    size_t bytes = op_conv2d_workspace(ctx, &room) * sizeof(float);
    dbuf X = {0}, Wt = {0}, Y = {0};
    cl_mem ws = NULL;
    cl_int err = CL_SUCCESS;
    size_t before = ctx->fft_bakes, first = 0, second = 0, third = 0;
    bool ok = dbuf_new(&X, NULL, 2 * 2 * 60) && dbuf_new(&Wt, NULL, 3 * 2 * 25) && dbuf_new(&Y, NULL, 2 * 3 * 10 * 6) &&
              (ws = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &err)) != NULL &&
              op_conv2d_forward_algo(ctx, &s, OP_CONV_FFT, ob(&X), ob(&Wt), op_b(NULL, 0), ob(&Y), op_b(ws, 0)) == DLCL_OK;
    first = ctx->fft_bakes - before;
    ok = ok && op_conv2d_forward_algo(ctx, &s, OP_CONV_FFT, ob(&X), ob(&Wt), op_b(NULL, 0), ob(&Y), op_b(ws, 0)) == DLCL_OK;
    second = ctx->fft_bakes - before;
    s.pad_h = s.pad_w = 2; /* 14 x 10 planes: 14 and 10 are both clFFT lengths, new plans */
    ok = ok && op_conv_shape_infer(&s) == DLCL_OK;
    ok = ok && op_conv2d_forward_algo(ctx, &s, OP_CONV_FFT, ob(&X), ob(&Wt), op_b(NULL, 0), ob(&Y), op_b(ws, 0)) == DLCL_OK;
    third = ctx->fft_bakes - before;
    float *y = malloc(Y.n * sizeof *y); /* the guards around y (sized for the larger output) */
    ok = ok && y != NULL && dbuf_read(&Y, y, "y");
    free(y);
    dbuf_free(&X), dbuf_free(&Wt), dbuf_free(&Y);
    if (ws) clReleaseMemObject(ws);
    T_CHECK(ok, "%s", dlcl_last_error());
    /* the filters (batch k*c = 6), the input (n*c = 4) and the output (n*k = 6, inverse) */
    T_CHECK(first == 3, "first forward baked %zu plans, want 3", first);
    T_CHECK(second == first, "the same shape again baked %zu more", second - first);
    T_CHECK(third == first + 3, "a new size baked %zu plans, want 3", third - second);
}

/* Bad requests are refused with a message, never run: lengths clFFT has no radix for, an
 * offset that cannot be a sub-buffer, a shape the FFT path does not take, a workspace
 * without the FFT's room. */
static void fft_bad_requests_are_refused(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    T_CHECK(fft_good_length(11) == 12 && fft_good_length(13) == 14 && fft_good_length(17) == 18 &&
                fft_good_length(1) == 1 && fft_good_length(49) == 49 && fft_good_length(121) == 125,
            "fft_good_length");
    cl_int err = CL_SUCCESS;
    cl_mem buf = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, 1 << 16, NULL, &err);
    T_CHECK(err == CL_SUCCESS, "clCreateBuffer: %d", err);
    dlcl_status a = fft_2d(ctx, FFT_R2C, 11, 8, 1, buf, 0, buf, 2048);
    bool a_named = strstr(dlcl_last_error(), "11x8") != NULL;
    dlcl_status b = fft_2d(ctx, FFT_R2C, 8, 8, 1, buf, 100, buf, 2048);
    bool b_named = strstr(dlcl_last_error(), "multiple of") != NULL;
    dlcl_status c = fft_2d(ctx, FFT_R2C, 8, 8, 1000, buf, 0, buf, 2048);
    bool c_named = strstr(dlcl_last_error(), "past") != NULL;
    op_conv_shape s = CONV(.n = 1, .c = 1, .h = 8, .w = 8, .k = 1, .r = 5, .s = 5);
    s.stride_h = 2;
    dlcl_status d = op_conv_shape_infer(&s);
    d = d == DLCL_OK ? op_conv2d_forward_algo(ctx, &s, OP_CONV_FFT, op_b(buf, 0), op_b(buf, 0), op_b(NULL, 0),
                                              op_b(buf, 0), op_b(buf, 0))
                     : d;
    bool d_named = strstr(dlcl_last_error(), "stride 1") != NULL;
    s.stride_h = 1;
    dlcl_status e = op_conv_shape_infer(&s);
    size_t small = op_conv2d_workspace(ctx, &s) * sizeof(float); /* without s.fft */
    cl_mem ws = e == DLCL_OK ? clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, small, NULL, &err) : NULL;
    e = ws ? op_conv2d_forward_algo(ctx, &s, OP_CONV_FFT, op_b(buf, 0), op_b(buf, 0), op_b(NULL, 0), op_b(buf, 0),
                                    op_b(ws, 0))
           : DLCL_ERR_OPENCL;
    bool e_named = strstr(dlcl_last_error(), "workspace") != NULL;
    if (ws) clReleaseMemObject(ws);
    clReleaseMemObject(buf);
    T_CHECK(a == DLCL_ERR_INVALID_ARG && a_named, "length 11: %s", dlcl_status_str(a));
    T_CHECK(b == DLCL_ERR_INVALID_ARG && b_named, "offset 100: %s", dlcl_status_str(b));
    T_CHECK(c == DLCL_ERR_INVALID_ARG && c_named, "batch past the buffer: %s", dlcl_status_str(c));
    T_CHECK(d == DLCL_ERR_INVALID_ARG && d_named, "stride 2: %s", dlcl_status_str(d));
    T_CHECK(e == DLCL_ERR_INVALID_ARG && e_named, "small workspace: %s", dlcl_status_str(e));
}

static const t_case cases[] = {
    T_CASE(conv_fft_matches_ref_7x13_5x5_pad0_and_pad2),
    T_CASE(conv_fft_matches_ref_7x7_kernel_pad3_channels),
    T_CASE(conv_fft_matches_ref_across_chunks),
    T_CASE(fft_plan_cache_bakes_once_per_size),
    T_CASE(fft_bad_requests_are_refused),
    T_CASE(conv_find_times_fft_on_gpus_only),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
