/* batchnorm-bench: time of dlcl's batch-norm ops (lib/ops/norm.c) on one shape, default
 * ResNet-18's first BN at batch 32 (32 x 64 x 112 x 112), with the bandwidth each achieves
 * over the bytes it must move, next to a device buffer copy of the same tensor.
 *
 *   batchnorm-bench [--shape N,C,H,W] [--reps R] [--gpu-kernels]
 *
 * --gpu-kernels runs the work-group-per-channel kernels (what a GPU gets) on a CPU device.
 * bench/batchnorm_vs_torch.py prints these figures beside torch.nn.BatchNorm2d's. */
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
    fprintf(stderr, "batchnorm-bench: %s: %s\n", dlcl_status_str(s), dlcl_last_error());
    return 1;
}

enum { B_X, B_Y, B_DY, B_DX, B_COUNT };
enum { P_GAMMA, P_BETA, P_RMEAN, P_RVAR, P_MEAN, P_INVSTD, P_DGAMMA, P_DBETA, P_COUNT };

typedef struct bench {
    dlcl_ctx *ctx;
    int n, c, hw;
    cl_mem big[B_COUNT], small;
} bench;

static op_buf par(const bench *b, int i) { return op_b(b->small, (size_t)i * b->c); }

/* One pass: 0 forward train, 1 forward eval, 2 backward, 3 backward with relu, 4 copy. */
static dlcl_status run(bench *b, int what)
{
    op_buf x = op_b(b->big[B_X], 0), y = op_b(b->big[B_Y], 0), dy = op_b(b->big[B_DY], 0), dx = op_b(b->big[B_DX], 0);
    switch (what) {
    case 0:
        return op_batchnorm_forward_train(b->ctx, x, y, b->n, b->c, b->hw, par(b, P_GAMMA), par(b, P_BETA), 1e-5f, 0.1f,
                                          par(b, P_RMEAN), par(b, P_RVAR), par(b, P_MEAN), par(b, P_INVSTD),
                                          OP_ACT_RELU);
    case 1:
        return op_batchnorm_forward_eval(b->ctx, x, y, b->n, b->c, b->hw, par(b, P_GAMMA), par(b, P_BETA),
                                         par(b, P_RMEAN), par(b, P_RVAR), 1e-5f, OP_ACT_RELU);
    case 2:
    case 3:
        return op_batchnorm_backward(b->ctx, x, y, dy, dx, b->n, b->c, b->hw, par(b, P_GAMMA), par(b, P_MEAN),
                                     par(b, P_INVSTD), par(b, P_DGAMMA), par(b, P_DBETA),
                                     what == 3 ? OP_ACT_RELU : OP_ACT_LINEAR);
    default: {
        size_t bytes = (size_t)b->n * b->c * b->hw * sizeof(float);
        cl_int err = clEnqueueCopyBuffer(b->ctx->queue, b->big[B_X], b->big[B_DX], 0, 0, bytes, 0, NULL, NULL);
        return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clEnqueueCopyBuffer");
    }
    }
}

int main(int argc, char **argv)
{
    int n = 32, c = 64, h = 112, w = 112, reps = 10, gpu_kernels = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--shape") == 0 && i + 1 < argc && sscanf(argv[i + 1], "%d,%d,%d,%d", &n, &c, &h, &w) == 4)
            i++;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--gpu-kernels") == 0)
            gpu_kernels = 1;
        else {
            fprintf(stderr, "usage: batchnorm-bench [--shape N,C,H,W] [--reps R] [--gpu-kernels]\n");
            return 2;
        }
    }
    if (n < 1 || c < 1 || h < 1 || w < 1 || reps < 1 || (double)n * c * h * w > 1 << 30) {
        fprintf(stderr, "batchnorm-bench: bad shape or reps\n");
        return 2;
    }
    bench b = {.n = n, .c = c, .hw = h * w};
    dlcl_ctx_params params = {.log = log_line}; /* DLCL_PROFILE=1: the per-kernel table at the end */
    dlcl_status s = dlcl_ctx_create(&params, &b.ctx);
    if (s != DLCL_OK) return fail(s);
    if (gpu_kernels) b.ctx->cpu_device = 0;
    const size_t count = (size_t)n * c * h * w, bytes = count * sizeof(float);
    float *host = malloc(bytes), *ph = malloc(P_COUNT * (size_t)c * sizeof *ph);
    for (size_t i = 0; host && i < count; i++) host[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    for (size_t i = 0; ph && i < P_COUNT * (size_t)c; i++) ph[i] = 1.0f;
    s = host && ph ? DLCL_OK : DLCL_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < B_COUNT && s == DLCL_OK; i++) s = rt_buffer_acquire(b.ctx, bytes, "bench tensor", &b.big[i]);
    if (s == DLCL_OK) s = rt_buffer_acquire(b.ctx, P_COUNT * (size_t)c * sizeof(float), "bench params", &b.small);
    for (int i = 0; i < B_COUNT && s == DLCL_OK; i++) {
        cl_int err = clEnqueueWriteBuffer(b.ctx->queue, b.big[i], CL_TRUE, 0, bytes, host, 0, NULL, NULL);
        if (err != CL_SUCCESS) s = dlcl__cl_err(err, "clEnqueueWriteBuffer");
    }
    if (s == DLCL_OK && clEnqueueWriteBuffer(b.ctx->queue, b.small, CL_TRUE, 0, P_COUNT * (size_t)c * sizeof(float),
                                             ph, 0, NULL, NULL) != CL_SUCCESS)
        s = dlcl__err(DLCL_ERR_OPENCL, "clEnqueueWriteBuffer (params)");
    /* floats each pass must read or write at least once, per value */
    static const struct {
        const char *name;
        int streams;
    } passes[] = {{"forward train + relu", 3},   {"forward eval + relu", 2}, {"backward", 5},
                  {"backward + relu", 7},        {"buffer copy", 2}};
    printf("device: %s (%s kernels), shape %d x %d x %d x %d, best of %d\n", b.ctx->info.name,
           b.ctx->cpu_device ? "CPU" : "GPU", n, c, h, w, reps);
    printf("%-22s %10s %10s %10s\n", "pass", "ms", "MB moved", "GB/s");
    for (int p = 0; p < 5 && s == DLCL_OK; p++) {
        s = run(&b, p); /* warm-up: builds the program */
        if (s == DLCL_OK) s = dlcl_ctx_finish(b.ctx);
        double best = 1e30;
        for (int r = 0; r < reps && s == DLCL_OK; r++) {
            double t0 = now_ms();
            s = run(&b, p);
            if (s == DLCL_OK) s = dlcl_ctx_finish(b.ctx);
            double t = now_ms() - t0;
            best = t < best ? t : best;
        }
        double mb = (double)passes[p].streams * bytes / 1e6;
        if (s == DLCL_OK) printf("%-22s %10.2f %10.0f %10.1f\n", passes[p].name, best, mb, mb / best);
    }
    for (int i = 0; i < B_COUNT; i++)
        if (b.big[i]) rt_buffer_release(b.ctx, b.big[i]);
    if (b.small) rt_buffer_release(b.ctx, b.small);
    free(host), free(ph);
    int rc = s == DLCL_OK ? 0 : fail(s);
    dlcl_ctx_free(b.ctx);
    return rc;
}
