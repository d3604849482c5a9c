/* conv-bench: time of dlcl's convolution ops (lib/ops/conv.c) on one shape, default
 * ResNet-18's layer1 3x3 convolution at batch 32, per pass with its GFLOP/s: the forward,
 * the filter gradient alone, and both gradients (data and filter) as a training step runs
 * them. Each pass is timed alone, the queue drained before and after, best of --reps.
 *
 *   conv-bench [--shape N,C,H,W,K,R,S,STRIDE,PAD] [--chunk IMAGES] [--algo gemm|winograd|implicit]
 *              [--reps R] [--gpu-kernels] [--half]
 *
 * --gpu-kernels makes the context pick what a GPU gets (ctx->cpu_device = 0), on PoCL.
 * --half stores x, w and y as half precision (an fp16 inference net's): the forward only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "ops/ops.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static void log_line(dlcl_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level != DLCL_LOG_DEBUG) fprintf(stderr, "dlcl: %s\n", msg);
}

static int fail(dlcl_status s)
{
    fprintf(stderr, "conv-bench: %s: %s\n", dlcl_status_str(s), dlcl_last_error());
    return 1;
}

enum { B_X, B_W, B_Y, B_DY, B_DX, B_DW, B_WS, B_COUNT };

/* 0 forward, 1 filter gradient, 2 data and filter gradients */
static dlcl_status run(dlcl_ctx *ctx, const op_conv_shape *s, op_conv_algo algo, cl_mem *m, int pass, int half)
{
    op_buf none = op_b(NULL, 0);
    dlcl_status st;
    if (pass == 0)
        st = op_conv2d_forward_algo(ctx, s, algo, (op_buf){m[B_X], 0, half}, (op_buf){m[B_W], 0, half}, none,
                                    (op_buf){m[B_Y], 0, half}, op_b(m[B_WS], 0));
    else
        st = op_conv2d_backward(ctx, s, OP_ACT_LINEAR, 0.0f, none, op_b(m[B_X], 0), op_b(m[B_DY], 0), op_b(m[B_W], 0),
                                op_b(m[B_DW], 0), none, pass == 2 ? op_b(m[B_DX], 0) : none, op_b(m[B_WS], 0));
    return st == DLCL_OK ? dlcl_ctx_finish(ctx) : st;
}

static int usage(void)
{
    fprintf(stderr, "usage: conv-bench [--shape N,C,H,W,K,R,S,STRIDE,PAD] [--chunk IMAGES] [--algo gemm|winograd|implicit] "
                    "[--reps R] [--gpu-kernels] [--half]\n");
    return 2;
}

int main(int argc, char **argv)
{
    op_conv_shape s = {.n = 32, .c = 64, .h = 56, .w = 56, .k = 64, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1,
                       .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1};
    int reps = 5, gpu_kernels = 0, stride = 1, pad = 1, half = 0;
    op_conv_algo algo = OP_CONV_IM2COL_GEMM;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--shape") == 0 && i + 1 < argc &&
            sscanf(argv[i + 1], "%d,%d,%d,%d,%d,%d,%d,%d,%d", &s.n, &s.c, &s.h, &s.w, &s.k, &s.r, &s.s, &stride,
                   &pad) == 9)
            i++;
        else if (strcmp(argv[i], "--chunk") == 0 && i + 1 < argc)
            s.chunk = atoi(argv[++i]);
        else if (strcmp(argv[i], "--algo") == 0 && i + 1 < argc && strcmp(argv[i + 1], "winograd") == 0)
            algo = OP_CONV_WINOGRAD, i++;
        else if (strcmp(argv[i], "--algo") == 0 && i + 1 < argc && strcmp(argv[i + 1], "implicit") == 0)
            algo = OP_CONV_IMPLICIT, i++;
        else if (strcmp(argv[i], "--algo") == 0 && i + 1 < argc && strcmp(argv[i + 1], "gemm") == 0)
            i++;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--gpu-kernels") == 0)
            gpu_kernels = 1;
        else if (strcmp(argv[i], "--half") == 0)
            half = 1;
        else
            return usage();
    }
    s.stride_h = s.stride_w = stride, s.pad_h = s.pad_w = pad;
    s.winograd = s.winograd_dx = algo == OP_CONV_WINOGRAD;
    s.implicit = s.implicit_bwd = algo == OP_CONV_IMPLICIT;
    dlcl_status st = op_conv_shape_infer(&s);
    if (st != DLCL_OK) return fail(st);
    if (reps < 1 || s.chunk < 0) return usage();
    dlcl_ctx *ctx = NULL;
    dlcl_ctx_params params = {.log = log_line}; /* DLCL_PROFILE=1: the per-kernel table at the end */
    st = dlcl_ctx_create(&params, &ctx);
    if (st != DLCL_OK) return fail(st);
    if (gpu_kernels) ctx->cpu_device = 0;
    size_t nx = (size_t)s.n * s.c * s.h * s.w, nw = (size_t)s.k * s.c * s.r * s.s, ny = (size_t)s.n * s.k * s.p * s.q;
    size_t floats[B_COUNT] = {nx, nw, ny, ny, nx, nw, op_conv2d_workspace(ctx, &s) + 1};
    cl_mem m[B_COUNT] = {0};
    for (int i = 0; i < B_COUNT && st == DLCL_OK; i++) {
        st = rt_buffer_acquire(ctx, floats[i] * sizeof(float), "bench tensor", &m[i]);
        float v = i == B_W ? 0.01f : 0.5f;
        if (st == DLCL_OK && clEnqueueFillBuffer(ctx->queue, m[i], &v, sizeof v, 0, floats[i] * sizeof(float), 0, NULL,
                                                 NULL) != CL_SUCCESS)
            st = dlcl__err(DLCL_ERR_OPENCL, "clEnqueueFillBuffer");
    }
    double gflop = 2.0 * s.n * s.k * s.p * s.q * (double)s.c * s.r * s.s / 1e9;
    static const char *const names[] = {"forward", "filter gradient", "data + filter gradients"};
    printf("device: %s (%s choices), n%d c%d %dx%d k%d %dx%d/%d pad %d -> %dx%d, %d images per chunk, %s%s, best of %d\n",
           ctx->info.name, ctx->cpu_device ? "CPU" : "GPU", s.n, s.c, s.h, s.w, s.k, s.r, s.s, stride, pad, s.p, s.q,
           op_conv2d_chunk(ctx, &s), algo == OP_CONV_WINOGRAD ? "winograd" : algo == OP_CONV_IMPLICIT ? "implicit gemm" : "im2col + gemm",
           half ? ", half x w y" : "", reps);
    printf("%-24s %10s %10s\n", "pass", "ms", "GFLOP/s");
    for (int p = 0; p < (half ? 1 : 3) && st == DLCL_OK; p++) {
        st = run(ctx, &s, algo, m, p, half); /* warm-up: builds the programs */
        double best = 1e30;
        for (int r = 0; r < reps && st == DLCL_OK; r++) {
            double t0 = now_ms();
            st = run(ctx, &s, algo, m, p, half);
            double t = now_ms() - t0;
            best = t < best ? t : best;
        }
        if (st == DLCL_OK) printf("%-24s %10.2f %10.1f\n", names[p], best, (p == 2 ? 2 : 1) * gflop / best * 1e3);
    }
    for (int i = 0; i < B_COUNT; i++)
        if (m[i]) rt_buffer_release(ctx, m[i]);
    int rc = st == DLCL_OK ? 0 : fail(st);
    dlcl_ctx_free(ctx);
    return rc;
}
