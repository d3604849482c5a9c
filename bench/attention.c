/* attention-bench: time of dlcl's causal self-attention core (lib/ops/attention.c: after the
 * q/k/v projection, before the output one) on one shape, default GPT-2 small's at batch 4 and
 * context 256 (4 x 256, width 768, 12 heads of 64), with GFLOP/s over the causal half
 * (4 T (T+1) / 2 width per sequence forward, twice that backward).
 *
 *   attention-bench [--shape B,T,WIDTH,HEADS] [--reps R]
 *
 * Passes: the materialised forward (per-head GEMMs, causal softmax), the online forward
 * (no t x t matrix; what evaluation runs on CPU devices), the materialised backward, and one
 * decoding step of every sequence at position T-1 with a full key/value cache. Two figures
 * each: the best wall time of R runs, and the CPU time of the process per run over the
 * device's compute units (the VMs this runs on are shared: the wall time moves with the
 * neighbours' load, the CPU time much less; on a GPU only the wall time means anything). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "internal.h"
#include "ops/ops.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static double cpu_ms(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-3;
}

static void log_line(dlcl_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level != DLCL_LOG_DEBUG) fprintf(stderr, "dlcl: %s\n", msg);
}

static int fail(dlcl_status s)
{
    fprintf(stderr, "attention-bench: %s: %s\n", dlcl_status_str(s), dlcl_last_error());
    return 1;
}

enum { B_QKV, B_PROBS, B_Z, B_DZ, B_DQKV, B_WS, B_CACHE, B_COUNT };

typedef struct bench {
    dlcl_ctx *ctx;
    op_attn_shape s;
    cl_mem m[B_COUNT];
} bench;

static op_buf buf(const bench *b, int i) { return op_b(b->m[i], 0); }

/* One pass: 0 materialised forward, 1 online forward, 2 backward, 3 a decoding step. */
static dlcl_status run(bench *b, int what)
{
    const size_t w = (size_t)b->s.heads * b->s.head_dim, st = (size_t)b->s.t * 3 * w,
                 cache = (size_t)b->s.batch * b->s.t * w;
    switch (what) {
    case 0: return op_attention_forward(b->ctx, &b->s, buf(b, B_QKV), buf(b, B_PROBS), buf(b, B_Z), 0.0f, 0, buf(b, B_WS));
    case 1: {
        const op_attn_rows q = {buf(b, B_QKV), 3 * w, st}, k = {op_b(b->m[B_QKV], w), 3 * w, st},
                           v = {op_b(b->m[B_QKV], 2 * w), 3 * w, st}, z = {buf(b, B_Z), w, (size_t)b->s.t * w};
        return op_attention_forward_online(b->ctx, &b->s, q, k, v, z, b->s.t, 0);
    }
    case 2:
        return op_attention_backward(b->ctx, &b->s, buf(b, B_QKV), buf(b, B_PROBS), buf(b, B_DZ), buf(b, B_DQKV), 0.0f,
                                     0, buf(b, B_WS));
    default: /* the new rows' q, k, v: the first row of each sequence's qkv block */
        return op_attention_forward_cached(b->ctx, &b->s, buf(b, B_QKV), 1, b->s.t - 1, buf(b, B_CACHE),
                                           op_b(b->m[B_CACHE], cache), buf(b, B_Z));
    }
}

int main(int argc, char **argv)
{
    int nb = 4, t = 256, width = 768, heads = 12, reps = 10;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--shape") == 0 && i + 1 < argc &&
            sscanf(argv[i + 1], "%d,%d,%d,%d", &nb, &t, &width, &heads) == 4)
            i++;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: attention-bench [--shape B,T,WIDTH,HEADS] [--reps R]\n");
            return 2;
        }
    }
    if (nb < 1 || t < 1 || heads < 1 || width < heads || width % heads || reps < 1 ||
        (double)nb * heads * t * t > INT32_MAX || (double)nb * t * 3 * width > INT32_MAX) {
        fprintf(stderr, "attention-bench: bad shape or reps\n");
        return 2;
    }
    bench b = {.s = {nb, t, heads, width / heads}};
    dlcl_ctx_params params = {.log = log_line}; /* DLCL_PROFILE=1: the per-kernel table at the end */
    dlcl_status s = dlcl_ctx_create(&params, &b.ctx);
    if (s != DLCL_OK) return fail(s);
    const size_t rows = (size_t)nb * t, w = (size_t)width, planes = op_attention_workspace(&b.s);
    const size_t floats[B_COUNT] = {rows * 3 * w, planes, rows * w, rows * w, rows * 3 * w, planes, 2 * rows * w};
    float *host = malloc(floats[B_PROBS] > floats[B_QKV] ? floats[B_PROBS] * sizeof *host : floats[B_QKV] * sizeof *host);
    s = host ? DLCL_OK : DLCL_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; host && i < floats[B_QKV]; i++) host[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    for (int i = 0; i < B_COUNT && s == DLCL_OK; i++) {
        s = rt_buffer_acquire(b.ctx, floats[i] * sizeof(float), "bench tensor", &b.m[i]);
        cl_int err = s == DLCL_OK ? clEnqueueWriteBuffer(b.ctx->queue, b.m[i], CL_TRUE, 0,
                                                         (floats[i] < floats[B_QKV] ? floats[i] : floats[B_QKV]) * 4,
                                                         host, 0, NULL, NULL)
                                  : CL_SUCCESS;
        if (err != CL_SUCCESS) s = dlcl__cl_err(err, "clEnqueueWriteBuffer");
    }
    const double flop = 4.0 * nb * (t * (t + 1.0) / 2) * w, units = b.ctx->info.compute_units ? b.ctx->info.compute_units : 1;
    static const char *const names[] = {"forward, materialised", "forward, online", "backward, materialised",
                                        "decode 1 position at T-1"};
    const double work[] = {flop, flop, 2 * flop, 4.0 * nb * t * w};
    printf("device: %s, batch %d x T %d, width %d, %d heads of %d; best of %d (wall), CPU time / %g units (cpu)\n",
           b.ctx->info.name, nb, t, width, heads, width / heads, reps, units);
    printf("%-26s %10s %10s %10s %10s\n", "pass", "wall ms", "GFLOP/s", "cpu ms", "GFLOP/s");
    for (int p = 0; p < 4 && s == DLCL_OK; p++) {
        s = run(&b, p); /* warm-up: builds the program */
        if (s == DLCL_OK) s = dlcl_ctx_finish(b.ctx);
        double best = 1e30, c0 = cpu_ms();
        for (int r = 0; r < reps && s == DLCL_OK; r++) {
            double t0 = now_ms();
            s = run(&b, p);
            if (s == DLCL_OK) s = dlcl_ctx_finish(b.ctx);
            best = fmin(best, now_ms() - t0);
        }
        const double c = (cpu_ms() - c0) / reps / units;
        if (s == DLCL_OK)
            printf("%-26s %10.2f %10.1f %10.2f %10.1f\n", names[p], best, work[p] / best * 1e-6, c, work[p] / c * 1e-6);
    }
    for (int i = 0; i < B_COUNT; i++)
        if (b.m[i]) rt_buffer_release(b.ctx, b.m[i]);
    free(host);
    int rc = s == DLCL_OK ? 0 : fail(s);
    dlcl_ctx_free(b.ctx);
    return rc;
}
