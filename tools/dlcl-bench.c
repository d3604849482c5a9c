/* dlcl-bench SUBCOMMAND: measurements anyone can rerun.
 *   gemm [--sizes 256,512,64x12544x800] [--reps N]   SGEMM GFLOP/s through dlcl next to OpenBLAS
 *                                            (N is N x N x N; MxNxK is C[M][N] = A[M][K] B[K][N])
 *   startup                                  context creation + building every kernel
 *   loader CONFIG.ini [--split test] [--epochs N] [--set k=v]...
 *                                            images/s the [data] loader delivers, nothing trained
 *   CONFIG.ini [--reps N] [--steps N]        per-layer time of a training step, then whole steps:
 *                                            the last line reads step_ms=... images_per_s=...
 *   --inference CONFIG.ini [--batches 1,8,64] [--iters N] [--warmup N] [--set k=v]...
 *                                            latency of dlcl_net_logits on an inference net, a line per
 *                                            batch size: batch=B p50_ms=... p99_ms=... images_per_s=...
 *   under mpirun, CONFIG.ini                 data-parallel steps, each rank its share of the batch:
 *                                            ranks=N step_ms=... images_per_s=... allreduce_wait_ms=...
 *                                            busbw_gbps=... overlapped=K/B buckets ... */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "mpi_comm.h"

#include <libgen.h>
#include <unistd.h>

static int bench_gemm(int argc, char **argv)
{
    int sizes[16][3] = {{256, 256, 256}, {512, 512, 512}, {1024, 1024, 1024}}, n_sizes = 3, reps = 5;
    char *tokens[16] = {"256", "512", "1024"};
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) {
            n_sizes = 0;
            for (char *t = strtok(argv[++i], ","); t && n_sizes < 16; t = strtok(NULL, ",")) {
                long v[3];
                int got = 0;
                char *q = t, *end = t;
                while (got < 3) {
                    v[got++] = strtol(q, &end, 10);
                    if (*end != 'x') break;
                    q = end + 1;
                }
                if (got == 1) v[1] = v[2] = v[0];
                if (*end != '\0' || got == 2 || v[0] < 1 || v[1] < 1 || v[2] < 1 || v[0] > 65536 || v[1] > 65536 ||
                    v[2] > 65536) {
                    fprintf(stderr, "dlcl-bench gemm: bad size '%s' (want N or MxNxK, each 1..65536)\n", t);
                    return 2;
                }
                tokens[n_sizes] = t;
                for (int j = 0; j < 3; j++) sizes[n_sizes][j] = (int)v[j];
                n_sizes++;
            }
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else {
            fprintf(stderr, "dlcl-bench gemm: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    dlcl_ctx_params params = {.log = tool_log};
    dlcl_ctx *ctx;
    dlcl_status s = dlcl_ctx_create(&params, &ctx);
    if (s != DLCL_OK) return tool_fail("dlcl-bench", s);
    printf("device: %s\n", dlcl_ctx_device_name(ctx));
    double dl_ms[16] = {0};
    for (int i = 0; i < n_sizes; i++) { /* dlcl first, then OpenBLAS: their threads compete for the cores */
        int m = sizes[i][0], n = sizes[i][1], k = sizes[i][2];
        int64_t da[2] = {m, k}, db[2] = {k, n}, dc[2] = {m, n};
        size_t big = (size_t)(m > n ? m : n) * k;
        dlcl_tensor *a = NULL, *b = NULL, *c = NULL;
        float *h = malloc(big * sizeof *h);
        for (size_t j = 0; h && j < big; j++) h[j] = (float)((j * 7919) % 1000) / 1000.0f - 0.5f;
        s = h ? DLCL_OK : DLCL_ERR_OUT_OF_MEMORY;
        if (s == DLCL_OK) s = dlcl_tensor_create(ctx, 2, da, &a);
        if (s == DLCL_OK) s = dlcl_tensor_create(ctx, 2, db, &b);
        if (s == DLCL_OK) s = dlcl_tensor_create(ctx, 2, dc, &c);
        if (s == DLCL_OK) s = dlcl_tensor_upload(a, h, 0, (size_t)m * k);
        if (s == DLCL_OK) s = dlcl_tensor_upload(b, h, 0, (size_t)k * n);
        /* warm-up: CLBlast compiles its kernels on first use */
        if (s == DLCL_OK) s = dlcl_sgemm(ctx, DLCL_NO_TRANS, DLCL_NO_TRANS, m, n, k, 1, a, 0, k, b, 0, n, 0, c, 0, n);
        if (s == DLCL_OK) s = dlcl_ctx_finish(ctx);
        double best = 1e30;
        for (int r = 0; r < reps && s == DLCL_OK; r++) {
            double t0 = tool_now();
            s = dlcl_sgemm(ctx, DLCL_NO_TRANS, DLCL_NO_TRANS, m, n, k, 1, a, 0, k, b, 0, n, 0, c, 0, n);
            if (s == DLCL_OK) s = dlcl_ctx_finish(ctx);
            double t = tool_now() - t0;
            best = t < best ? t : best;
        }
        dlcl_tensor_free(a);
        dlcl_tensor_free(b);
        dlcl_tensor_free(c);
        free(h);
        if (s != DLCL_OK) {
            dlcl_ctx_free(ctx);
            return tool_fail("dlcl-bench", s);
        }
        dl_ms[i] = best * 1e3;
    }
    dlcl_ctx_free(ctx);
    /* OpenBLAS in its own process (bench/openblas-sgemm beside this build's tools/) */
    double ob_ms[16] = {0};
    char exe[4096], cmd[8192];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    FILE *p = NULL;
    if (len > 0) {
        exe[len] = '\0';
        int n = snprintf(cmd, sizeof cmd, "'%s/../bench/openblas-sgemm' --reps %d", dirname(exe), reps);
        for (int i = 0; i < n_sizes && n > 0 && (size_t)n < sizeof cmd - 16; i++)
            n += snprintf(cmd + n, sizeof cmd - (size_t)n, " %dx%dx%d", sizes[i][0], sizes[i][1], sizes[i][2]);
        snprintf(cmd + n, sizeof cmd - (size_t)n, " 2>/dev/null");
        p = popen(cmd, "r");
    }
    int gm, gn, gk;
    double got_ms;
    while (p && fscanf(p, "%dx%dx%d %lf", &gm, &gn, &gk, &got_ms) == 4)
        for (int i = 0; i < n_sizes; i++)
            if (sizes[i][0] == gm && sizes[i][1] == gn && sizes[i][2] == gk) ob_ms[i] = got_ms;
    if (p) pclose(p);
    printf("%16s %12s %12s %14s %14s %8s\n", "size", "dlcl ms", "dlcl GFLOP/s", "OpenBLAS ms", "OpenBLAS GF/s", "ratio");
    for (int i = 0; i < n_sizes; i++) {
        double flop = 2.0 * sizes[i][0] * sizes[i][1] * sizes[i][2], dl_gf = flop / (dl_ms[i] * 1e-3) * 1e-9;
        if (ob_ms[i] > 0) {
            double ob_gf = flop / (ob_ms[i] * 1e-3) * 1e-9;
            printf("%16s %12.2f %12.1f %14.2f %14.1f %8.2f\n", tokens[i], dl_ms[i], dl_gf, ob_ms[i], ob_gf, dl_gf / ob_gf);
        } else {
            printf("%16s %12.2f %12.1f %14s %14s %8s\n", tokens[i], dl_ms[i], dl_gf, "-", "-", "-");
        }
    }
    return 0;
}

static int bench_startup(int argc, char **argv)
{
    (void)argv;
    if (argc > 0) {
        fprintf(stderr, "dlcl-bench startup takes no arguments\n");
        return 2;
    }
    double t0 = tool_now();
    dlcl_ctx_params params = {.log = tool_log};
    dlcl_ctx *ctx;
    dlcl_status s = dlcl_ctx_create(&params, &ctx);
    if (s != DLCL_OK) return tool_fail("dlcl-bench", s);
    double t1 = tool_now();
    s = dlcl_ctx_build_all(ctx);
    double t2 = tool_now();
    dlcl_ctx_stats st;
    dlcl_ctx_get_stats(ctx, &st);
    dlcl_ctx_free(ctx);
    if (s != DLCL_OK) return tool_fail("dlcl-bench", s);
    printf("context %.3f s, build all kernels %.3f s, total %.3f s; sources %llu, compiled %llu, from cache %llu, "
           "cache entries rejected %llu\n",
           t1 - t0, t2 - t1, t2 - t0, (unsigned long long)st.kernel_sources, (unsigned long long)st.programs_compiled,
           (unsigned long long)st.programs_cached, (unsigned long long)st.cache_rejected);
    return 0;
}

/* "dlcl-bench: STATUS: message", naming the rank and host under mpirun. Returns 1. */
static int bench_fail(dlcl_status s)
{
    fprintf(stderr, "dlcl-bench: %s%s: %s\n", dp_who(), dlcl_status_str(s), dlcl_last_error());
    return 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Under mpirun: how the data-parallel steps went, printed by rank 0 as the last line. The step
 * time is the slowest rank's median; allreduce_wait_ms the mean time a rank waited for the sums
 * after its backward pass; the bus bandwidth NCCL's: algbw = gradient bytes / (first bucket
 * started .. last bucket summed), busbw = algbw * 2(n-1)/n (the bytes each link carries in a
 * ring allreduce); overlapped counts the buckets, over all ranks, started while the backward
 * pass was still running. */
static void dp_report(const dlcl_net_info *info, const char *unit, double med_ms, int steps,
                      const dlcl_exchange_stats *x0, const dlcl_exchange_stats *x1, const dp_stats *d0,
                      const dp_stats *d1)
{
    int n = dp_ranks();
    double v[5] = {x1->wait_ms - x0->wait_ms, (double)(x1->overlapped - x0->overlapped),
                   (double)(x1->buckets - x0->buckets), d1->bytes - d0->bytes, d1->exchange_s - d0->exchange_s};
    dp_sum(v, 5);
    double wait_ms = v[0] / n / steps, bytes = v[3] / n, secs = v[4] / n;
    double busbw = secs > 0 ? bytes / secs * 2.0 * (n - 1) / n * 1e-9 : 0;
    printf("ranks=%d step_ms=%.2f %s_per_s=%.2f allreduce_wait_ms=%.3f busbw_gbps=%.3f overlapped=%.0f/%.0f buckets "
           "batch=%d steps=%d device=\"%s\"\n",
           n, med_ms, unit, (double)info->batch * info->labels_per_sample / (med_ms * 1e-3), wait_ms, busbw, v[1], v[2],
           info->batch, steps, info->device_name);
}

/* dlcl-bench CONFIG.ini [--reps N] [--steps N] [--set k=v]...: where a training step's time
 * goes (each launch waited for), then whole training steps as dlcl-train runs them, ending
 * with the line "step_ms=... images_per_s=..." (the median of the steps after the first).
 * Under mpirun the per-layer profile is left out (it trains no replica) and each rank steps on
 * its share of the same batch. */
static int bench_net(const char *config, int argc, char **argv)
{
    int reps = 5, steps = 5;
    const char **sets = calloc((size_t)argc + 1 + DP_MAX_OVERRIDES, sizeof *sets);
    size_t n_sets = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc) steps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) sets[n_sets++] = argv[++i];
        else {
            fprintf(stderr, "dlcl-bench: unexpected argument '%s'\n", argv[i]);
            free(sets);
            return 2;
        }
    }
    if (dp_active()) reps = 0;
    if (reps < 0 || steps < 0 || reps + steps == 0) {
        fprintf(stderr, "dlcl-bench: --reps and --steps must be >= 0, not both 0%s\n",
                dp_active() ? " (under mpirun only --steps counts)" : "");
        free(sets);
        return 2;
    }
    dlcl_ctx_params params = {.log = dp_log_fn()};
    dlcl_net *net = NULL;
    dlcl_comm comm;
    dp_comm(&comm);
    n_sets = dp_add_overrides(config, sets, n_sets);
    dlcl_status s = dp_active() ? dlcl_net_create_replica(config, sets, n_sets, &params, &comm, &net)
                                : dlcl_net_create(config, sets, n_sets, &params, &net);
    free(sets);
    if (s != DLCL_OK) return bench_fail(s);
    dlcl_net_info info;
    dlcl_net_get_info(net, &info);
    /* random inputs in [-1, 1), or random tokens for a sequence net (a label per position) */
    size_t per = info.in_numel, labels = (size_t)info.batch * (size_t)info.labels_per_sample;
    int tokens = info.in_dtype == DLCL_INT32;
    const char *unit = info.labels_per_sample > 1 ? "tokens" : "images";
    float *x = malloc((size_t)info.batch * per * sizeof *x); /* 4 bytes a value, float or int32 */
    int32_t *y = malloc(labels * sizeof *y);
    dlcl_layer_timing *t = calloc(info.n_layers, sizeof *t);
    double *step_ms = calloc((size_t)steps + 1, sizeof *step_ms);
    if (!x || !y || !t || !step_ms) return 1;
    uint64_t r = 12345;
    for (size_t i = 0; i < (size_t)info.batch * per; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        if (tokens)
            ((int32_t *)x)[i] = (int32_t)((r >> 33) % (uint64_t)info.classes);
        else
            x[i] = (float)(r >> 40) / 16777216.0f * 2 - 1;
    }
    for (size_t i = 0; i < labels; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        y[i] = tokens ? (int32_t)((r >> 33) % (uint64_t)info.classes) : (int32_t)(i % (size_t)info.classes);
    }
    double per_step = (double)labels; /* images, or tokens, a step */
    double loss_ms = 0, opt_ms = 0;
    if (reps > 0) {
        s = dlcl_net_profile(net, x, y, info.batch, 1, t, &loss_ms, &opt_ms); /* warm-up: kernel builds */
        if (s == DLCL_OK) s = dlcl_net_profile(net, x, y, info.batch, reps, t, &loss_ms, &opt_ms);
    }
    if (s == DLCL_OK && reps > 0) {
        printf("device: %s   batch %d   mean of %d steps, each launch waited for\n", info.device_name, info.batch,
               reps);
        printf("%-22s %-15s %-30s %10s %10s %10s %10s\n", "layer", "type", "detail", "fwd ms", "fwd GF/s", "bwd ms",
               "bwd GF/s");
        double total = loss_ms + opt_ms;
        for (size_t i = 0; i < info.n_layers; i++) {
            dlcl_layer_info li;
            dlcl_net_layer_info(net, i, &li);
            double f = li.flops * info.batch * 1e-9; /* backward of conv/dense is twice the forward work */
            printf("%-22s %-15s %-30s %10.2f %10.1f %10.2f %10.1f\n", li.name, li.type, li.detail, t[i].forward_ms,
                   t[i].forward_ms > 0 ? f / (t[i].forward_ms * 1e-3) : 0, t[i].backward_ms,
                   t[i].backward_ms > 0 ? 2 * f / (t[i].backward_ms * 1e-3) : 0);
            total += t[i].forward_ms + t[i].backward_ms;
        }
        printf("%-22s %-15s %-30s %10.2f\n%-22s %-15s %-30s %10.2f\n", "loss", "softmax_xent", "", loss_ms,
               "optimizer", info.optimizer, "", opt_ms);
        printf("profiled step %.2f ms = %.0f %s/s; device memory %.1f MiB\n", total, per_step / (total * 1e-3), unit,
               info.device_bytes / 1048576.0);
    }
    /* Under mpirun this rank's share of the batch: the samples split in order, as evenly as
     * possible (as dlcl_loader_shard splits them). */
    int n_ranks = dp_ranks(), rank = dp_rank(), share = info.batch / n_ranks, extra = info.batch % n_ranks;
    int first = rank * share + (rank < extra ? rank : extra), count = share + (rank < extra);
    const void *xs = x + (size_t)first * per;
    const int32_t *ys = y + (size_t)first * (size_t)info.labels_per_sample;
    dlcl_exchange_stats x0 = {0}, x1 = {0};
    dp_stats d0 = {0}, d1 = {0};
    if (dp_active()) printf("data-parallel: %d ranks, at most %d samples each; gradient buckets of %g MB\n", n_ranks,
                            info.shard_batch, info.bucket_mb);
    /* whole steps, nothing waited for but the loss read at the end of each (as in training) */
    for (int i = 0; i < steps + 1 && s == DLCL_OK && steps > 0; i++) {
        double t0, loss;
        int correct;
        if (i == 1 && dp_active()) { /* the first step builds kernels: count from the second */
            dlcl_net_exchange_stats(net, &x0);
            dp_stats_get(&d0);
        }
        dp_barrier(); /* every rank starts the step together */
        t0 = tool_now();
        s = dp_active() ? dlcl_net_train_shard(net, xs, ys, count, info.batch, &loss, &correct)
                        : dlcl_net_train_batch(net, x, y, info.batch, &loss, &correct);
        step_ms[i] = (tool_now() - t0) * 1e3;
        if (s == DLCL_OK) dp_max(&step_ms[i], 1);
        if (s == DLCL_OK) printf("step %d: %.2f ms%s\n", i, step_ms[i], i == 0 ? " (not counted: first)" : "");
    }
    if (s == DLCL_OK && steps > 0) {
        qsort(step_ms + 1, (size_t)steps, sizeof *step_ms, cmp_double);
        double med = steps % 2 ? step_ms[1 + steps / 2] : 0.5 * (step_ms[steps / 2] + step_ms[1 + steps / 2]);
        if (dp_active()) {
            dlcl_net_exchange_stats(net, &x1);
            dp_stats_get(&d1);
            dp_report(&info, unit, med, steps, &x0, &x1, &d0, &d1);
        } else {
            printf("step_ms=%.2f %s_per_s=%.2f batch=%d steps=%d device=\"%s\"\n", med, unit,
                   per_step / (med * 1e-3), info.batch, steps, info.device_name);
        }
    }
    free(x), free(y), free(t), free(step_ms);
    if (s != DLCL_OK) {
        dlcl_net_free(net);
        return bench_fail(s);
    }
    dlcl_net_free(net);
    return 0;
}

/* The random inputs of a batch: values in [-1, 1), or token ids below `classes`. */
static void fill_random(void *x, size_t n, int tokens, int classes)
{
    uint64_t r = 12345;
    for (size_t i = 0; i < n; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        if (tokens)
            ((int32_t *)x)[i] = (int32_t)((r >> 33) % (uint64_t)classes);
        else
            ((float *)x)[i] = (float)(r >> 40) / 16777216.0f * 2 - 1;
    }
}

/* The q-quantile (0..1) of n sorted values, by the nearest rank. */
static double quantile(const double *v, int n, double q)
{
    int k = (int)(q * n + 0.999999);
    k = k < 1 ? 1 : k > n ? n : k;
    return v[k - 1];
}

/* One batch size of dlcl-bench --inference: an inference net at net.batch=B, `warm` calls of
 * dlcl_net_logits on a fixed random batch (kernel builds, the conv find), then `iters` timed
 * calls, each one a whole call (upload, forward, blocking read of the logits). Prints
 * "batch=B p50_ms=... p99_ms=... images_per_s=..." and what the timed calls allocated. */
static int bench_inference_batch(const char *config, const char **sets, size_t n_sets, int batch, int iters, int warm)
{
    char set_batch[32];
    snprintf(set_batch, sizeof set_batch, "net.batch=%d", batch);
    sets[n_sets] = set_batch;
    dlcl_ctx_params params = {.log = tool_log};
    dlcl_net *net = NULL;
    dlcl_status s = dlcl_net_create_inference(config, sets, n_sets + 1, &params, &net);
    if (s != DLCL_OK) return tool_fail("dlcl-bench", s);
    dlcl_net_info info;
    dlcl_net_get_info(net, &info);
    size_t n_in = (size_t)batch * info.in_numel, n_out = (size_t)batch * info.labels_per_sample * (size_t)info.classes;
    void *x = malloc(n_in * 4); /* float32 or int32 */
    float *logits = malloc(n_out * sizeof *logits);
    double *ms = calloc((size_t)iters, sizeof *ms);
    if (!x || !logits || !ms) {
        free(x), free(logits), free(ms);
        dlcl_net_free(net);
        fprintf(stderr, "dlcl-bench: out of memory\n");
        return 1;
    }
    fill_random(x, n_in, info.in_dtype == DLCL_INT32, info.classes);
    for (int i = 0; i < warm && s == DLCL_OK; i++) s = dlcl_net_logits(net, x, batch, logits);
    dlcl_ctx_stats s0, s1;
    dlcl_ctx_get_stats(dlcl_net_ctx(net), &s0);
    double total = 0;
    for (int i = 0; i < iters && s == DLCL_OK; i++) {
        double t0 = tool_now();
        s = dlcl_net_logits(net, x, batch, logits);
        ms[i] = (tool_now() - t0) * 1e3;
        total += ms[i];
    }
    dlcl_ctx_get_stats(dlcl_net_ctx(net), &s1);
    if (s == DLCL_OK) {
        qsort(ms, (size_t)iters, sizeof *ms, cmp_double);
        printf("batch=%d p50_ms=%.3f p99_ms=%.3f images_per_s=%.2f iters=%d new_buffers=%llu new_programs=%llu "
               "precision=%s device_mib=%.1f device=\"%s\"\n",
               batch, quantile(ms, iters, 0.5), quantile(ms, iters, 0.99), batch * iters / (total * 1e-3), iters,
               (unsigned long long)(s1.pool_misses - s0.pool_misses),
               (unsigned long long)(s1.programs_compiled + s1.programs_cached - s0.programs_compiled -
                                    s0.programs_cached),
               info.precision, info.device_bytes / 1048576.0, info.device_name);
    }
    free(x), free(logits), free(ms);
    dlcl_net_free(net);
    return s == DLCL_OK ? 0 : tool_fail("dlcl-bench", s);
}

/* dlcl-bench --inference CONFIG.ini [--batches 1,8,64] [--iters N] [--warmup N] [--set k=v]...:
 * latency and throughput of dlcl_net_logits on an inference net, one line per batch size. */
static int bench_inference(int argc, char **argv)
{
    const char *config = NULL, *batches = "1,8,64";
    int iters = 20, warm = 2;
    const char **sets = calloc((size_t)argc + 2, sizeof *sets);
    size_t n_sets = 0;
    if (sets == NULL) return 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--batches") == 0 && i + 1 < argc) batches = argv[++i];
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) iters = atoi(argv[++i]);
        else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc) warm = atoi(argv[++i]);
        else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) sets[n_sets++] = argv[++i];
        else if (argv[i][0] != '-' && config == NULL) config = argv[i];
        else {
            fprintf(stderr, "dlcl-bench --inference: unexpected argument '%s'\n", argv[i]);
            free(sets);
            return 2;
        }
    }
    if (config == NULL || iters < 1 || warm < 0) {
        fprintf(stderr, "usage: dlcl-bench --inference CONFIG.ini [--batches 1,8,64] [--iters N >= 1] [--warmup N] "
                        "[--set k=v]...\n");
        free(sets);
        return 2;
    }
    int list[32], n = 0;
    for (const char *p = batches; *p && n < 32;) {
        char *end;
        long b = strtol(p, &end, 10);
        if (end == p || b < 1 || b > 1 << 20 || (*end != ',' && *end != '\0')) {
            fprintf(stderr, "dlcl-bench --inference: bad --batches '%s' (want sizes >= 1, comma-separated)\n", batches);
            free(sets);
            return 2;
        }
        list[n++] = (int)b;
        p = *end ? end + 1 : end;
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) rc = bench_inference_batch(config, sets, n_sets, list[i], iters, warm);
    free(sets);
    return rc;
}

/* dlcl-bench loader CONFIG.ini: how fast the [data] loader delivers batches (decoding,
 * augmenting, normalising on its workers) to a caller that does nothing with them. */
static int bench_loader(int argc, char **argv)
{
    const char *config = NULL;
    int epochs = 2, split = DLCL_SPLIT_TRAIN;
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    size_t n_sets = 0;
    if (sets == NULL) return 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--epochs") == 0 && i + 1 < argc) epochs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--split") == 0 && i + 1 < argc) split = strcmp(argv[++i], "test") == 0;
        else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) sets[n_sets++] = argv[++i];
        else if (argv[i][0] != '-' && config == NULL) config = argv[i];
        else {
            fprintf(stderr, "dlcl-bench loader: unexpected argument '%s'\n", argv[i]);
            free(sets);
            return 2;
        }
    }
    if (config == NULL) {
        fprintf(stderr, "usage: dlcl-bench loader CONFIG.ini [--split train|test] [--epochs N] [--set k=v]...\n");
        free(sets);
        return 2;
    }
    dlcl_ctx_params params = {.log = tool_log};
    dlcl_net *net = NULL;
    dlcl_loader *l = NULL;
    double t0 = tool_now();
    dlcl_status s = dlcl_net_create_inference(config, sets, n_sets, &params, &net);
    free(sets);
    if (s == DLCL_OK) s = dlcl_loader_create(net, (dlcl_split)split, &l);
    if (s != DLCL_OK) {
        dlcl_net_free(net);
        return tool_fail("dlcl-bench", s);
    }
    dlcl_net_info info;
    dlcl_net_get_info(net, &info);
    printf("%zu %s images of %dx%dx%d in %zu batches of %d; opened and checked in %.2f s\n", dlcl_loader_samples(l),
           split ? "test" : "training", info.in_c, info.in_h, info.in_w, dlcl_loader_batches(l), info.batch,
           tool_now() - t0);
    for (int e = 0; e < epochs && s == DLCL_OK; e++) {
        const void *x;
        const int32_t *y;
        int count;
        size_t images = 0;
        double t = tool_now();
        s = dlcl_loader_begin_epoch(l, e);
        while (s == DLCL_OK && (s = dlcl_loader_next(l, &x, &y, &count)) == DLCL_OK && count > 0) images += (size_t)count;
        double secs = tool_now() - t;
        if (s == DLCL_OK) printf("epoch %d: %zu images in %.2f s = %.0f images/s\n", e, images, secs, images / secs);
    }
    dlcl_loader_free(l);
    dlcl_net_free(net);
    return s == DLCL_OK ? 0 : tool_fail("dlcl-bench", s);
}

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"--inference", bench_inference, "--inference CONFIG.ini [--batches 1,8,64] [--iters 20] [--warmup 2]   latency of "
                                     "dlcl_net_logits\n      on an inference net: batch=B p50_ms=... p99_ms=... images_per_s=... per size"},
    {"gemm", bench_gemm, "gemm [--sizes 256,512,MxNxK] [--reps 5]   SGEMM GFLOP/s, dlcl next to OpenBLAS"},
    {"loader", bench_loader, "loader CONFIG.ini [--split test] [--epochs 2]   images/s of the [data] loader alone"},
    {"startup", bench_startup, "startup                                 context + build of every kernel (cache cold/warm)"},
};

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    size_t l = argc >= 2 ? strlen(argv[1]) : 0;
    if (l > 4 && strcmp(argv[1] + l - 4, ".ini") == 0) {
        /* under mpirun: the data-parallel step (MPI up and PoCL limited before any OpenCL call) */
        int dp = dp_init(&argc, &argv, "dlcl-bench");
        int rc = bench_net(argv[1], argc - 2, argv + 2);
        if (dp) {
            if (rc != 0 && rc != 2) dp_abort(rc); /* the other ranks may be waiting for this one */
            dp_finalize();
        }
        return rc;
    }
    for (size_t i = 0; argc >= 2 && i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 2, argv + 2);
    FILE *f = argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr;
    fprintf(f, "usage: dlcl-bench COMMAND | CONFIG.ini [--reps N] [--steps N] [--set section.key=value]...\n"
               "  CONFIG.ini                              per-layer forward/backward time of a training step (--reps,\n"
               "                                          default 5, 0: none), then --steps whole steps (default 5);\n"
               "                                          last line: step_ms=MEDIAN images_per_s=...\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) fprintf(f, "  %s\n", commands[i].help);
    return f == stdout ? 0 : 2;
}
