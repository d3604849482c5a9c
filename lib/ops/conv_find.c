/* Per-device choice of how a convolution runs, like cuDNN's find mode: the candidates are
 * timed once on scratch buffers and the fastest is kept in the cache directory, keyed by
 * device, driver, kernel sources and shape, so later runs read it back.
 *
 * The candidates: the workspace chunk of half, the default and twice the default images
 * (context.c sizes the default to the last-level cache; the best size depends on the cache,
 * the shape and what else the machine runs); for a small reduction (c/groups*r*s), the
 * direct forward kernel against im2col + GEMM; for a 3x3 of stride 1, Winograd F(2x2,3x3)
 * for the forward and the data gradient; on GPUs, for a kernel of FIND_FFT_MIN_RS taps or
 * more at stride 1, the FFT forward (conv_fft.c), alone and with both gradients by FFT; on
 * CPUs, for stride 1, the implicit GEMM (conv_implicit.c) for the forward, with both
 * gradients by implicit GEMM or by im2col + GEMM. A
 * candidate replaces the default only when it takes under FIND_MARGIN of its time: on a shared 2-core VM the same run varies by 10-30%,
 * and with a 5% margin the cached choices for VGG (chunks of 4, 30 and 8 images) were no
 * better than the defaults in alternating dlcl-bench runs (117/102/93 against 102/86/93
 * ms). Large wins (the depthwise kernels, 5x) pass any margin. A half-precision layer
 * (OP_FIND_HALF) chooses between im2col + GEMM and direct only, the algorithms with a half
 * path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

#define FIND_VERSION 7
#define FIND_REPS 3            /* timed runs per candidate after one untimed (kernel builds) */
#define FIND_MARGIN 0.85       /* a candidate must take under 85% of the default's time */
#define FIND_DIRECT_MAX_K 32   /* c/groups*r*s up to which the direct forward kernel is timed */
#define FIND_FFT_MIN_RS 25     /* r*s from which the FFT is timed: its cost does not grow with r*s */

static bool find_enabled(const dlcl_ctx *ctx)
{
    const char *v = getenv("DLCL_AUTOTUNE");
    return ctx->cache_dir != NULL && !(v != NULL && strcmp(v, "0") == 0);
}

static uint64_t sources_hash(const dlcl_ctx *ctx)
{
    uint64_t h = 0;
    for (size_t i = 0; i < ctx->n_sources; i++) h = rt_hash64(&ctx->sources[i].hash, sizeof h, h);
    return h;
}

static void key_options(const op_conv_shape *s, int passes, char *buf, size_t cap)
{
    snprintf(buf, cap, "conv-find v%d n%d c%d h%d w%d k%d r%d s%d stride%d,%d pad%d,%d dil%d,%d groups%d passes%d",
             FIND_VERSION, s->n, s->c, s->h, s->w, s->k, s->r, s->s, s->stride_h, s->stride_w, s->pad_h, s->pad_w,
             s->dil_h, s->dil_w, s->groups, passes);
}

static bool direct_allowed(const op_conv_shape *s) { return (size_t)s->c / s->groups * s->r * s->s <= FIND_DIRECT_MAX_K; }

/* Not on CPU devices: on PoCL (2-core EPYC) the FFT lost to im2col + GEMM on every shape
 * tried, 5x5 (LeNet: 70-96 against 17 ms for conv2's forward), 7x7 (106 against 48) and
 * 9x9 (154 against 77), and timing it added 17 s to LeNet's cold start, most of it clFFT
 * generating and compiling its kernels. */
static bool fft_allowed(const dlcl_ctx *ctx, const op_conv_shape *s, int passes)
{
    return !ctx->cpu_device && !(passes & OP_FIND_HALF) && op_conv2d_fft_ok(s) && s->r * s->s >= FIND_FFT_MIN_RS;
}

static bool winograd_allowed(const op_conv_shape *s, int passes)
{
    return !(passes & OP_FIND_HALF) && op_conv2d_winograd_ok(s);
}

/* CPU devices only: its kernels are the CPU GEMM's tiles. In training not where the layer
 * fuses an activation, whose gradient needs dz formed apart (conv.c falls back to im2col
 * there); an inference forward adds the bias and a relu in its store. */
static bool implicit_allowed(const dlcl_ctx *ctx, const op_conv_shape *s, int passes)
{
    bool forward_only = (passes & ~(OP_FIND_ACT | OP_FIND_HALF)) == OP_FIND_FORWARD;
    return ctx->cpu_device && !(passes & OP_FIND_HALF) && (forward_only || !(passes & OP_FIND_ACT)) &&
           op_conv2d_implicit_ok(s);
}

/* DLCL_CONV_ALGO=gemm|direct|winograd|fft|implicit (fft, implicit: the gradients too) forces the forward
 * algorithm of every layer whose shape (and storage) allows it, untimed: for comparing
 * algorithms with dlcl-bench. Unset, empty or "auto": the find as usual. */
static bool forced_choice(const op_conv_shape *s, int passes, op_conv_choice *out)
{
    const char *v = getenv("DLCL_CONV_ALGO");
    if (v == NULL) return false;
    op_conv_algo a = strcmp(v, "gemm") == 0       ? OP_CONV_IM2COL_GEMM
                     : strcmp(v, "direct") == 0   ? OP_CONV_DIRECT
                     : strcmp(v, "winograd") == 0 ? OP_CONV_WINOGRAD
                     : strcmp(v, "fft") == 0      ? OP_CONV_FFT
                     : strcmp(v, "implicit") == 0 ? OP_CONV_IMPLICIT
                                                  : OP_CONV_AUTO;
    if (a == OP_CONV_AUTO || ((passes & OP_FIND_HALF) && a != OP_CONV_IM2COL_GEMM && a != OP_CONV_DIRECT) ||
        (a == OP_CONV_WINOGRAD && !op_conv2d_winograd_ok(s)) ||
        (a == OP_CONV_FFT && !op_conv2d_fft_ok(s)) || (a == OP_CONV_IMPLICIT && !op_conv2d_implicit_ok(s)))
        return false;
    out->forward = a;
    out->winograd_dx = a == OP_CONV_WINOGRAD;
    out->fft_bwd = a == OP_CONV_FFT;
    out->implicit_bwd = a == OP_CONV_IMPLICIT;
    return true;
}

/* A cached choice, checked against what this shape allows (a damaged entry is ignored). */
static bool load_choice(dlcl_ctx *ctx, const rt_cache_key *key, const op_conv_shape *s, int passes,
                        op_conv_choice *out)
{
    unsigned char *bin = NULL;
    size_t len = 0;
    if (rt_cache_load(ctx->cache_dir, key, &bin, &len) != DLCL_OK) return false;
    char text[128];
    size_t n = len < sizeof text - 1 ? len : sizeof text - 1;
    memcpy(text, bin, n);
    text[n] = '\0';
    free(bin);
    int algo = 0, chunk = 0, cands = 0, wdx = 0, fbwd = 0, ibwd = 0;
    double ms = 0;
    if (sscanf(text, "forward %d chunk %d wdx %d fbwd %d ibwd %d ms %lf candidates %d", &algo, &chunk, &wdx, &fbwd,
               &ibwd, &ms, &cands) != 7 ||
        chunk < 1 || chunk > s->n ||
        (algo != OP_CONV_IM2COL_GEMM && algo != OP_CONV_DIRECT && algo != OP_CONV_WINOGRAD && algo != OP_CONV_FFT &&
         algo != OP_CONV_IMPLICIT) ||
        (ibwd != 0 && ibwd != 1) || ((algo == OP_CONV_IMPLICIT || ibwd) && !implicit_allowed(ctx, s, passes)) ||
        (algo == OP_CONV_DIRECT && !direct_allowed(s)) || (wdx != 0 && wdx != 1) || (fbwd != 0 && fbwd != 1) ||
        ((algo == OP_CONV_WINOGRAD || wdx) && !winograd_allowed(s, passes)) ||
        (algo == OP_CONV_FFT && !fft_allowed(ctx, s, passes)) || (fbwd && algo != OP_CONV_FFT))
        return false;
    *out = (op_conv_choice){.forward = (op_conv_algo)algo, .chunk = chunk, .winograd_dx = wdx, .fft_bwd = fbwd,
                            .implicit_bwd = ibwd, .timed = 2, .ms = ms, .candidates = cands};
    return true;
}

typedef struct find_bufs {
    cl_mem x, w, y, dy, dx, dw, db, ws;
    op_act act; /* relu where the layer fuses an activation (OP_FIND_ACT), else linear */
    int half;   /* x, w and y hold halves (OP_FIND_HALF) */
} find_bufs;

/* Created and released outside the buffer pool: the pool would keep the timing's buffers
 * (tens of MiB for a large layer) idle for the rest of the run. */
static dlcl_status scratch(dlcl_ctx *ctx, size_t floats, float fill, cl_mem *out)
{
    cl_int err;
    size_t bytes = (floats ? floats : 1) * sizeof(float);
    *out = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clCreateBuffer (convolution find scratch)");
    err = clEnqueueFillBuffer(ctx->queue, *out, &fill, sizeof fill, 0, bytes, 0, NULL, NULL);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clEnqueueFillBuffer (convolution find scratch)");
}

/* Wall time of one forward (+ backward) with s's chunk, the queue drained before and after. */
static dlcl_status run_once(dlcl_ctx *ctx, const op_conv_shape *s, op_conv_algo algo, int backward, int need_dx,
                            const find_bufs *b, double *ms)
{
    cl_int err = clFinish(ctx->queue);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clFinish");
    double t0 = rt_now_ms();
    op_buf x = {b->x, 0, b->half}, w = {b->w, 0, b->half}, y = {b->y, 0, b->half};
    dlcl_status st = op_conv2d_forward_act(ctx, s, algo, x, w, op_b(b->db, 0), b->act, 0.0f, y, op_b(b->ws, 0));
    if (st == DLCL_OK && backward)
        st = op_conv2d_backward(ctx, s, b->act, 0.0f, op_b(b->y, 0), op_b(b->x, 0), op_b(b->dy, 0),
                                op_b(b->w, 0), op_b(b->dw, 0), op_b(b->db, 0),
                                need_dx ? op_b(b->dx, 0) : op_b(NULL, 0), op_b(b->ws, 0));
    if (st == DLCL_OK && (err = clFinish(ctx->queue)) != CL_SUCCESS) st = dlcl__cl_err(err, "clFinish");
    *ms = rt_now_ms() - t0;
    return st;
}

/* Best of FIND_REPS timed runs after an untimed one. */
static dlcl_status time_candidate(dlcl_ctx *ctx, const op_conv_shape *s, op_conv_algo algo, int backward,
                                  int need_dx, const find_bufs *b, double *best)
{
    double ms;
    dlcl_status st = run_once(ctx, s, algo, backward, need_dx, b, &ms);
    *best = 0;
    for (int i = 0; st == DLCL_OK && i < FIND_REPS; i++) {
        st = run_once(ctx, s, algo, backward, need_dx, b, &ms);
        if (i == 0 || ms < *best) *best = ms;
    }
    return st;
}

/* Times a candidate that replaces the forward and the gradients it covers (Winograd's data
 * gradient wdx, the FFT's gradients fbwd) and keeps it if it beats out by the margin. */
static dlcl_status try_whole(dlcl_ctx *ctx, op_conv_shape t, op_conv_algo algo, int wdx, int fbwd, int ibwd,
                             int backward, int need_dx, const find_bufs *b, op_conv_choice *out)
{
    double ms;
    t.winograd_dx = wdx, t.fft_bwd = fbwd, t.implicit_bwd = ibwd;
    dlcl_status st = time_candidate(ctx, &t, algo, backward, need_dx, b, &ms);
    if (st == DLCL_OK && ms < FIND_MARGIN * out->ms)
        out->forward = algo, out->winograd_dx = wdx, out->fft_bwd = fbwd, out->implicit_bwd = ibwd, out->ms = ms;
    out->candidates += 1;
    return st;
}

static dlcl_status time_all(dlcl_ctx *ctx, const op_conv_shape *s, int passes, op_conv_choice *out)
{
    int what = passes & ~(OP_FIND_ACT | OP_FIND_HALF), backward = what != OP_FIND_FORWARD, need_dx = what == OP_FIND_BACKWARD_DX;
    bool impl = implicit_allowed(ctx, s, passes);
    op_conv_shape t = *s;
    t.chunk = 0;
    int def = op_conv2d_chunk(ctx, &t), chunks[3] = {def, def / 2, def * 2}, nc = 0, uniq[3];
    for (int i = 0; i < 3; i++) {
        int c = chunks[i] < 1 ? 1 : chunks[i] > s->n ? s->n : chunks[i];
        bool seen = false;
        for (int j = 0; j < nc; j++) seen = seen || uniq[j] == c;
        if (!seen) uniq[nc++] = c;
    }
    size_t nx = (size_t)s->n * s->c * s->h * s->w, nw = (size_t)s->k * (s->c / s->groups) * s->r * s->s,
           ny = (size_t)s->n * s->k * s->p * s->q, nws = 0;
    for (int i = 0; i < nc; i++) { /* room for every candidate, Winograd's and the FFT's included */
        t.chunk = uniq[i];
        t.winograd = t.winograd_dx = winograd_allowed(s, passes);
        t.fft = t.fft_bwd = fft_allowed(ctx, s, passes);
        t.implicit = t.implicit_bwd = impl;
        size_t f = op_conv2d_workspace(ctx, &t);
        if (f > nws) nws = f;
    }
    t.winograd = t.winograd_dx = t.fft = t.fft_bwd = t.implicit = t.implicit_bwd = 0;
    find_bufs b = {.act = passes & OP_FIND_ACT ? OP_ACT_RELU : OP_ACT_LINEAR, .half = (passes & OP_FIND_HALF) != 0};
    dlcl_status st = scratch(ctx, nx, 0.5f, &b.x);
    if (st == DLCL_OK) st = scratch(ctx, nw, 0.01f, &b.w);
    if (st == DLCL_OK) st = scratch(ctx, ny, 0.0f, &b.y);
    if (st == DLCL_OK) st = scratch(ctx, ny, 0.25f, &b.dy);
    if (st == DLCL_OK && need_dx) st = scratch(ctx, nx, 0.0f, &b.dx);
    if (st == DLCL_OK) st = scratch(ctx, nw, 0.0f, &b.dw);
    if (st == DLCL_OK) st = scratch(ctx, (size_t)s->k, 0.0f, &b.db);
    if (st == DLCL_OK) st = scratch(ctx, nws, 0.0f, &b.ws);
    /* chunks, forward (and backward) through im2col + GEMM; uniq[0] is the default */
    double best = 0;
    int best_chunk = uniq[0];
    for (int i = 0; st == DLCL_OK && i < nc; i++) {
        double ms;
        t.chunk = uniq[i];
        st = time_candidate(ctx, &t, OP_CONV_IM2COL_GEMM, backward, need_dx, &b, &ms);
        if (st == DLCL_OK && (i == 0 || ms < FIND_MARGIN * best)) best = ms, best_chunk = uniq[i];
    }
    *out = (op_conv_choice){.forward = OP_CONV_IM2COL_GEMM, .chunk = best_chunk, .timed = 1, .ms = best, .candidates = nc};
    /* then the forward alone: direct against im2col + GEMM with the chunk chosen. The
     * heuristic's pick (op_conv2d_heuristic) is the default here too. */
    if (st == DLCL_OK && direct_allowed(s)) {
        double gemm_ms, direct_ms;
        t.chunk = best_chunk;
        st = time_candidate(ctx, &t, OP_CONV_IM2COL_GEMM, 0, need_dx, &b, &gemm_ms);
        if (st == DLCL_OK) st = time_candidate(ctx, &t, OP_CONV_DIRECT, 0, need_dx, &b, &direct_ms);
        bool direct_default = op_conv2d_heuristic(s) == OP_CONV_DIRECT;
        if (st == DLCL_OK && (direct_default ? !(gemm_ms < FIND_MARGIN * direct_ms) : direct_ms < FIND_MARGIN * gemm_ms)) {
            out->forward = OP_CONV_DIRECT;
            out->ms += direct_ms - gemm_ms;
        }
        out->candidates += 1;
    }
    /* then Winograd (forward and data gradient) and the FFT forward (gradients by im2col +
     * GEMM, or by FFT), each against the best so far as a whole */
    t.chunk = best_chunk;
    if (st == DLCL_OK && winograd_allowed(s, passes))
        st = try_whole(ctx, t, OP_CONV_WINOGRAD, need_dx, 0, 0, backward, need_dx, &b, out);
    for (int fbwd = 0; st == DLCL_OK && fft_allowed(ctx, s, passes) && fbwd <= backward; fbwd++)
        st = try_whole(ctx, t, OP_CONV_FFT, 0, fbwd, 0, backward, need_dx, &b, out);
    /* the implicit forward with its gradients, and with im2col's: on the quiet EPYC the
     * implicit forward of ResNet's 56x56 layers beat im2col's by 20% and its gradients lost
     * by 40% (build/bench/conv-bench --algo gemm|implicit) */
    for (int ibwd = backward; st == DLCL_OK && impl && ibwd >= 0; ibwd--)
        st = try_whole(ctx, t, OP_CONV_IMPLICIT, 0, 0, ibwd, backward, need_dx, &b, out);
    cl_mem all[] = {b.x, b.w, b.y, b.dy, b.dx, b.dw, b.db, b.ws};
    clFinish(ctx->queue);
    for (size_t i = 0; i < DLCL__ARRAY_LEN(all); i++)
        if (all[i]) clReleaseMemObject(all[i]);
    return st;
}

dlcl_status op_conv2d_find(dlcl_ctx *ctx, const op_conv_shape *s, int passes, op_conv_choice *out)
{
    op_conv_shape t = *s;
    t.chunk = 0;
    *out = (op_conv_choice){.forward = OP_CONV_AUTO, .chunk = op_conv2d_chunk(ctx, &t)};
    if (forced_choice(s, passes, out) || !find_enabled(ctx)) return DLCL_OK;
    char opts[256], platform_version[128] = "";
    key_options(s, passes, opts, sizeof opts);
    clGetPlatformInfo(ctx->platform, CL_PLATFORM_VERSION, sizeof platform_version - 1, platform_version, NULL);
    rt_cache_key key = {ctx->info.name, ctx->info.driver_version, platform_version, sources_hash(ctx), opts};
    if (load_choice(ctx, &key, s, passes, out)) return DLCL_OK;
    op_conv_choice c;
    dlcl_status st = time_all(ctx, s, passes, &c);
    if (st != DLCL_OK) { /* the real run reports real errors; a failed timing only costs speed */
        dlcl__log(ctx, DLCL_LOG_WARN, "convolution find: %s; using the default choice", dlcl_last_error());
        return DLCL_OK;
    }
    *out = c;
    char text[128];
    int n = snprintf(text, sizeof text, "forward %d chunk %d wdx %d fbwd %d ibwd %d ms %.3f candidates %d\n",
                     (int)c.forward, c.chunk, c.winograd_dx, c.fft_bwd, c.implicit_bwd, c.ms, c.candidates);
    if (rt_cache_store(ctx->cache_dir, &key, (const unsigned char *)text, (size_t)n) != DLCL_OK)
        dlcl__log(ctx, DLCL_LOG_WARN, "convolution find: %s (the choice is not kept)", dlcl_last_error());
    return DLCL_OK;
}
