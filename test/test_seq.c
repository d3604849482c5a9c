/* Sequence layers (lib/ops/seq.c, cl_kernels/seq.cl; lib/layers embedding, position_embedding,
 * layernorm; the gelu_tanh activation) against the double reference in ref/seq_ref.c on odd
 * shapes, each with the CPU kernels (blocks of rows per work-item) and the GPU kernels (run
 * on PoCL by clearing ctx->cpu_device); gradients of small layer chains and nets by central
 * differences, with repeated tokens and a tied weight; malformed configs; a chain against
 * torch through test/torch_seq.py; speed at GPT-2 small's sizes with T_BENCH=1. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/net/net.h"
#include "ref/ref.h"

#include "dbuf.h"
#include "test.h"

static uint64_t rng;

static float *rnd(size_t n, float lo, float hi)
{
    if (rng == 0) rng = t_seed();
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (x) t_fill_uniform(&rng, x, n, lo, hi);
    return x;
}

static const op_buf none = {NULL, 0, 0};

/* Device copy of n int32 ids between dbuf's guards. */
static bool tok_new(dbuf *d, const int32_t *tok, size_t n)
{
    float *f = malloc((n ? n : 1) * sizeof *f);
    bool ok = f != NULL;
    if (ok) memcpy(f, tok, n * sizeof *tok);
    ok = ok && dbuf_new(d, f, n);
    free(f);
    return ok;
}

/* A fresh device copy of host[n] in d (freed first). */
static bool dbuf_reset(dbuf *d, const float *host, size_t n)
{
    dbuf_free(d);
    return dbuf_new(d, host, n);
}

static bool all_equal(const char *label, const float *got, float v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (got[i] != v) {
            printf("# %s: element %zu = %g, expected it untouched (%g)\n", label, i, (double)got[i], (double)v);
            return false;
        }
    return true;
}

/* t_close, and with T_VERBOSE set the worst errors on a line: the largest absolute one and
 * the largest relative one among elements of magnitude 1e-3 or more. */
static bool close_to(const char *label, const float *got, const float *want, size_t n, float rtol, float atol)
{
    if (getenv("T_VERBOSE")) {
        double abs_err = 0, rel_err = 0;
        for (size_t i = 0; i < n; i++) {
            const double e = fabs((double)got[i] - want[i]);
            if (e > abs_err) abs_err = e;
            if (fabs(want[i]) >= 1e-3 && e / fabs(want[i]) > rel_err) rel_err = e / fabs(want[i]);
        }
        printf("# %-48s worst absolute error %.3g, relative %.3g (%zu values)\n", label, abs_err, rel_err, n);
    }
    return t_close(label, got, want, n, rtol, atol);
}

static const char *write_cfg(const char *name, const char *text)
{
    static char path[600];
    const char *dir = t_tmpdir(0);
    if (dir == NULL) return NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return t_write_file(path, text, strlen(text)) ? path : NULL;
}

/* ------------------------------------------------------------------ token embedding */

enum { IDS_RANDOM, IDS_ALL_SAME, IDS_OUT_OF_RANGE };

/* Forward, backward (overwriting, then accumulating) of rows ids against the reference.
 * Random ids always repeat (the first at the middle and last rows, other sequences of the
 * batch); IDS_OUT_OF_RANGE puts -1, vocab and INT32_MAX among them (zero rows, no gradient).
 * Tolerances: the forward is a copy (exact); the gradient rows are float sums of at most rows
 * terms of |dy| <= 1 in order: 1e-5 relative + 1e-6 * rows. */
static bool emb_case(int cpu, int rows, int vocab, int dim, int ids)
{
    dlcl_ctx *ctx = t_ctx();
    if (ctx == NULL) return false;
    const size_t nw = (size_t)vocab * dim, ny = (size_t)rows * dim;
    int32_t *tok = malloc((size_t)rows * sizeof *tok);
    float *w = rnd(nw, -1, 1), *dy = rnd(ny, -1, 1), *dw0 = rnd(nw, -1, 1), *y = malloc(ny * 4), *yr = malloc(ny * 4),
          *dw = malloc(nw * 4), *dwr = malloc(nw * 4);
    bool ok = tok && w && dy && dw0 && y && yr && dw && dwr;
    for (int r = 0; ok && r < rows; r++) tok[r] = ids == IDS_ALL_SAME ? vocab / 2 : (int32_t)(t_rand_u32(&rng) % vocab);
    if (ok && ids != IDS_ALL_SAME && rows > 2) tok[rows - 1] = tok[rows / 2] = tok[0];
    if (ok && ids == IDS_OUT_OF_RANGE && rows >= 4) tok[1] = -1, tok[2] = vocab, tok[3] = INT32_MAX;
    char label[160];
    snprintf(label, sizeof label, "%d ids, vocab %d, dim %d, ids %d, %s kernels, seed %llu", rows, vocab, dim, ids,
             cpu ? "CPU" : "GPU", (unsigned long long)t_seed());
    dbuf T = {0}, W = {0}, Y = {0}, DY = {0}, DW = {0};
    const int was = ctx->cpu_device;
    ctx->cpu_device = cpu;
    ok = ok && tok_new(&T, tok, (size_t)rows) && dbuf_new(&W, w, nw) && dbuf_new(&Y, NULL, ny) &&
         dbuf_new(&DY, dy, ny) && dbuf_new(&DW, NULL, nw) && dbuf_fill(&DW, 7.0f);
    if (ok) embedding_forward_ref(tok, w, yr, rows, vocab, dim);
    ok = ok && op_embedding_forward(ctx, ob(&T), ob(&W), ob(&Y), rows, vocab, dim) == DLCL_OK &&
         dbuf_read(&Y, y, "y") && close_to("embedding forward", y, yr, ny, 0, 0);
    if (ok) embedding_backward_ref(tok, dy, dwr, rows, vocab, dim, 0);
    const float atol = 1e-6f * (float)rows;
    ok = ok && op_embedding_backward(ctx, ob(&T), ob(&DY), ob(&DW), rows, vocab, dim, 0) == DLCL_OK &&
         dbuf_read(&DW, dw, "dweight") && close_to("embedding backward (overwrite)", dw, dwr, nw, 1e-5f, atol);
    if (ok) {
        memcpy(dwr, dw0, nw * sizeof *dwr);
        embedding_backward_ref(tok, dy, dwr, rows, vocab, dim, 1);
    }
    ok = ok && dbuf_reset(&DW, dw0, nw) &&
         op_embedding_backward(ctx, ob(&T), ob(&DY), ob(&DW), rows, vocab, dim, 1) == DLCL_OK &&
         dbuf_read(&DW, dw, "dweight") && close_to("embedding backward (accumulate)", dw, dwr, nw, 1e-5f, atol);
    ctx->cpu_device = was;
    if (!ok) printf("# case: %s: %s\n", label, dlcl_last_error());
    dbuf *all[] = {&T, &W, &Y, &DY, &DW};
    for (size_t i = 0; i < T_COUNT(all); i++) dbuf_free(all[i]);
    free(tok), free(w), free(dy), free(dw0), free(y), free(yr), free(dw), free(dwr);
    return ok;
}

static void embedding_matches_ref_3x7_vocab13_dim13(void)
{
    for (int cpu = 1; cpu >= 0; cpu--) {
        T_CHECK(emb_case(cpu, 3 * 7, 13, 13, IDS_RANDOM), "random ids");
        T_CHECK(emb_case(cpu, 3 * 7, 13, 13, IDS_OUT_OF_RANGE), "ids outside the vocabulary");
    }
}

/* dim 1; many vocabulary chunks; fewer words than chunks; one token everywhere (every
 * gradient in one row); GPT-2's vocabulary */
static void embedding_matches_ref_odd_sizes(void)
{
    static const int cases[][4] = {{21, 5, 1, IDS_RANDOM},       {200, 1000, 37, IDS_RANDOM},
                                   {64, 3001, 3, IDS_OUT_OF_RANGE}, {1, 1, 1, IDS_RANDOM},
                                   {50, 7, 300, IDS_ALL_SAME},   {100, 50257, 4, IDS_RANDOM}};
    for (int cpu = 1; cpu >= 0; cpu--)
        for (size_t i = 0; i < T_COUNT(cases); i++)
            T_CHECK(emb_case(cpu, cases[i][0], cases[i][1], cases[i][2], cases[i][3]), "case %zu", i);
}

/* ------------------------------------------------------------------ position embedding */

/* Forward (also in place), backward with dx, without dx and accumulating, and with dx
 * aliasing dy, against the reference. The forward and dx are exact; dweight sums count
 * values: 1e-5 relative + 1e-6 * count. */
static bool pos_case(int cpu, int count, int t, int context, int dim)
{
    dlcl_ctx *ctx = t_ctx();
    if (ctx == NULL) return false;
    const size_t n = (size_t)count * t * dim, nw = (size_t)context * dim;
    float *x = rnd(n, -1, 1), *w = rnd(nw, -1, 1), *dy = rnd(n, -1, 1), *dw0 = rnd(nw, -1, 1), *y = malloc(n * 4),
          *yr = malloc(n * 4), *dx = malloc(n * 4), *dxr = malloc(n * 4), *dw = malloc(nw * 4), *dwr = malloc(nw * 4);
    bool ok = x && w && dy && dw0 && y && yr && dx && dxr && dw && dwr;
    char label[160];
    snprintf(label, sizeof label, "%d x %d positions of %d, dim %d, %s kernels, seed %llu", count, t, context, dim,
             cpu ? "CPU" : "GPU", (unsigned long long)t_seed());
    dbuf X = {0}, W = {0}, Y = {0}, DY = {0}, DX = {0}, DW = {0};
    const int was = ctx->cpu_device;
    ctx->cpu_device = cpu;
    ok = ok && dbuf_new(&X, x, n) && dbuf_new(&W, w, nw) && dbuf_new(&Y, NULL, n) && dbuf_new(&DY, dy, n) &&
         dbuf_new(&DX, NULL, n) && dbuf_new(&DW, NULL, nw);
    if (ok) position_embedding_forward_ref(x, w, yr, count, t, dim);
    ok = ok && op_position_embedding_forward(ctx, ob(&X), ob(&W), ob(&Y), count, t, dim) == DLCL_OK &&
         dbuf_read(&Y, y, "y") && close_to("position forward", y, yr, n, 0, 0) &&
         op_position_embedding_forward(ctx, ob(&X), ob(&W), ob(&X), count, t, dim) == DLCL_OK &&
         dbuf_read(&X, y, "y in place") && close_to("position forward in place", y, yr, n, 0, 0);
    const float atol = 1e-6f * (float)count;
    if (ok) position_embedding_backward_ref(dy, dxr, dwr, count, t, context, dim, 0);
    ok = ok && dbuf_fill(&DW, 7.0f) && dbuf_fill(&DX, 7.0f) &&
         op_position_embedding_backward(ctx, ob(&DY), ob(&DX), ob(&DW), count, t, context, dim, 0) == DLCL_OK &&
         dbuf_read(&DX, dx, "dx") && dbuf_read(&DW, dw, "dweight") && close_to("position dx", dx, dxr, n, 0, 0) &&
         close_to("position dweight", dw, dwr, nw, 1e-5f, atol);
    if (ok) { /* no dx; accumulating (rows past t keep their values) */
        memcpy(dwr, dw0, nw * sizeof *dwr);
        position_embedding_backward_ref(dy, NULL, dwr, count, t, context, dim, 1);
    }
    ok = ok && dbuf_fill(&DX, 7.0f) && dbuf_reset(&DW, dw0, nw) &&
         op_position_embedding_backward(ctx, ob(&DY), none, ob(&DW), count, t, context, dim, 1) == DLCL_OK &&
         dbuf_read(&DX, dx, "dx") && dbuf_read(&DW, dw, "dweight") && all_equal("dx without dx", dx, 7.0f, n) &&
         close_to("position dweight (accumulate)", dw, dwr, nw, 1e-5f, atol);
    if (ok) position_embedding_backward_ref(dy, NULL, dwr, count, t, context, dim, 0);
    ok = ok && op_position_embedding_backward(ctx, ob(&DY), ob(&DY), ob(&DW), count, t, context, dim, 0) == DLCL_OK &&
         dbuf_read(&DY, dx, "dx = dy") && dbuf_read(&DW, dw, "dweight") &&
         close_to("position dx in place", dx, dy, n, 0, 0) &&
         close_to("position dweight (dx in place)", dw, dwr, nw, 1e-5f, atol);
    ctx->cpu_device = was;
    if (!ok) printf("# case: %s: %s\n", label, dlcl_last_error());
    dbuf *all[] = {&X, &W, &Y, &DY, &DX, &DW};
    for (size_t i = 0; i < T_COUNT(all); i++) dbuf_free(all[i]);
    free(x), free(w), free(dy), free(dw0), free(y), free(yr), free(dx), free(dxr), free(dw), free(dwr);
    return ok;
}

static void position_embedding_matches_ref_odd_sizes(void)
{
    static const int cases[][4] = {{3, 7, 9, 13}, {1, 1, 1, 1}, {5, 16, 16, 300}, {2, 3, 40, 5}, {4, 64, 100, 768}};
    for (int cpu = 1; cpu >= 0; cpu--)
        for (size_t i = 0; i < T_COUNT(cases); i++)
            T_CHECK(pos_case(cpu, cases[i][0], cases[i][1], cases[i][2], cases[i][3]), "case %zu", i);
}

/* ------------------------------------------------------------------ layer norm */

enum { L_X, L_Y, L_YR, L_DY, L_DX, L_DXR, L_N };
enum { S_G, S_B, S_DG0, S_DB0, S_DG, S_DB, S_DGR, S_DBR, S_N };

/* Forward (saving the statistics, then in place without them) and the backward: dx with
 * dgamma and dbeta overwritten, the sums alone with dgamma accumulated (bit 0) and dbeta
 * overwritten, dx alone in place of dy; the reference's backward takes the device's saved
 * statistics. Tolerances: y 1e-5 relative + 1e-5 (2e-5 * rstd-scaled ulps of the centre far
 * from zero); mean 1e-6 of the spread + an ulp of the centre; dx 1e-4 + 1e-5; the column sums
 * of rows O(1) terms 1e-4 + 5e-7 * rows. */
static bool ln_case(int cpu, int rows, int dim, int affine, float center, float spread)
{
    dlcl_ctx *ctx = t_ctx();
    if (ctx == NULL) return false;
    const size_t n = (size_t)rows * dim, d = (size_t)dim, r = (size_t)rows;
    float *big = malloc(L_N * n * sizeof *big), *small = malloc(S_N * d * sizeof *small),
          *st = malloc(4 * r * sizeof *st);
    if (big == NULL || small == NULL || st == NULL || rng == 0) rng = t_seed();
    bool ok = big && small && st;
    float *h[L_N], *s[S_N], *sm = st, *sr = st + r, *smr = st + 2 * r, *srr = st + 3 * r;
    for (int i = 0; ok && i < L_N; i++) h[i] = big + i * n;
    for (int i = 0; ok && i < S_N; i++) s[i] = small + i * d;
    if (ok) {
        t_fill_uniform(&rng, h[L_X], n, center - spread, center + spread);
        t_fill_uniform(&rng, h[L_DY], n, -1, 1);
        t_fill_uniform(&rng, s[S_G], d, 0.5f, 1.5f);
        t_fill_uniform(&rng, s[S_B], d, -0.5f, 0.5f);
        t_fill_uniform(&rng, s[S_DG0], d, -1, 1);
        t_fill_uniform(&rng, s[S_DB0], d, -1, 1);
    }
    char label[200];
    snprintf(label, sizeof label, "%d rows x %d, affine %d, x in %g +- %g, %s kernels, seed %llu", rows, dim, affine,
             (double)center, (double)spread, cpu ? "CPU" : "GPU", (unsigned long long)t_seed());
    const float eps = 1e-5f;
    dbuf X = {0}, XI = {0}, Y = {0}, DY = {0}, DX = {0}, G = {0}, B = {0}, SM = {0}, SR = {0}, DG = {0}, DB = {0};
    ok = ok && dbuf_new(&X, h[L_X], n) && dbuf_new(&XI, h[L_X], n) && dbuf_new(&Y, NULL, n) &&
         dbuf_new(&DY, h[L_DY], n) && dbuf_new(&DX, NULL, n) && dbuf_new(&G, s[S_G], d) && dbuf_new(&B, s[S_B], d) &&
         dbuf_new(&SM, NULL, r) && dbuf_new(&SR, NULL, r) && dbuf_new(&DG, NULL, d) && dbuf_new(&DB, NULL, d);
    const op_buf g = affine ? ob(&G) : none, b = affine ? ob(&B) : none;
    const float *gh = affine ? s[S_G] : NULL, *bh = affine ? s[S_B] : NULL;
    const int was = ctx->cpu_device;
    ctx->cpu_device = cpu;
    if (ok) layernorm_forward_ref(h[L_X], h[L_YR], rows, dim, gh, bh, eps, smr, srr);
    const float yatol = 1e-5f + 2e-7f * fabsf(center), matol = 1e-6f * spread + 1e-7f * fabsf(center);
    ok = ok && op_layernorm_forward(ctx, ob(&X), ob(&Y), rows, dim, g, b, eps, ob(&SM), ob(&SR)) == DLCL_OK &&
         dbuf_read(&Y, h[L_Y], "y") && dbuf_read(&SM, sm, "mean") && dbuf_read(&SR, sr, "rstd") &&
         close_to("layernorm y", h[L_Y], h[L_YR], n, 1e-5f, yatol) && close_to("layernorm mean", sm, smr, r, 1e-6f, matol) &&
         close_to("layernorm rstd", sr, srr, r, 1e-5f, 0) &&
         op_layernorm_forward(ctx, ob(&XI), ob(&XI), rows, dim, g, b, eps, none, none) == DLCL_OK &&
         dbuf_read(&XI, h[L_Y], "y in place") && close_to("layernorm y in place", h[L_Y], h[L_YR], n, 1e-5f, yatol);
    /* the whole backward, everything overwritten */
    if (ok) layernorm_backward_ref(h[L_X], h[L_DY], h[L_DXR], rows, dim, gh, sm, sr, s[S_DGR], s[S_DBR], 0);
    const float satol = 5e-7f * (float)rows + 1e-5f;
    ok = ok && dbuf_fill(&DX, 7.0f) && dbuf_fill(&DG, 7.0f) && dbuf_fill(&DB, 7.0f) &&
         op_layernorm_backward(ctx, ob(&X), ob(&DY), ob(&DX), rows, dim, g, ob(&SM), ob(&SR), ob(&DG), ob(&DB), 0) ==
             DLCL_OK &&
         dbuf_read(&DX, h[L_DX], "dx") && dbuf_read(&DG, s[S_DG], "dgamma") && dbuf_read(&DB, s[S_DB], "dbeta") &&
         close_to("layernorm dx", h[L_DX], h[L_DXR], n, 1e-4f, 1e-5f) &&
         close_to("layernorm dgamma", s[S_DG], s[S_DGR], d, 1e-4f, satol) &&
         close_to("layernorm dbeta", s[S_DB], s[S_DBR], d, 1e-4f, satol);
    /* the sums alone: dgamma added to (a tied weight), dbeta overwritten, dx left alone */
    if (ok) {
        memcpy(s[S_DGR], s[S_DG0], d * sizeof(float));
        memcpy(s[S_DBR], s[S_DB0], d * sizeof(float));
        layernorm_backward_ref(h[L_X], h[L_DY], NULL, rows, dim, gh, sm, sr, s[S_DGR], s[S_DBR], 1u);
    }
    ok = ok && dbuf_fill(&DX, 7.0f) && dbuf_reset(&DG, s[S_DG0], d) && dbuf_reset(&DB, s[S_DB0], d) &&
         op_layernorm_backward(ctx, ob(&X), ob(&DY), none, rows, dim, g, ob(&SM), ob(&SR), ob(&DG), ob(&DB), 1u) ==
             DLCL_OK &&
         dbuf_read(&DX, h[L_DX], "dx (not asked)") && dbuf_read(&DG, s[S_DG], "dgamma") &&
         dbuf_read(&DB, s[S_DB], "dbeta") && all_equal("dx when not asked", h[L_DX], 7.0f, n) &&
         close_to("layernorm dgamma (accumulate)", s[S_DG], s[S_DGR], d, 1e-4f, satol) &&
         close_to("layernorm dbeta (overwrite beside an accumulated dgamma)", s[S_DB], s[S_DBR], d, 1e-4f, satol);
    /* dx alone, in place of dy */
    ok = ok && op_layernorm_backward(ctx, ob(&X), ob(&DY), ob(&DY), rows, dim, g, ob(&SM), ob(&SR), none, none, 0) ==
                   DLCL_OK &&
         dbuf_read(&DY, h[L_DX], "dx in place") && close_to("layernorm dx in place", h[L_DX], h[L_DXR], n, 1e-4f, 1e-5f);
    ctx->cpu_device = was;
    if (!ok) printf("# case: %s: %s\n", label, dlcl_last_error());
    dbuf *all[] = {&X, &XI, &Y, &DY, &DX, &G, &B, &SM, &SR, &DG, &DB};
    for (size_t i = 0; i < T_COUNT(all); i++) dbuf_free(all[i]);
    free(big), free(small), free(st);
    return ok;
}

static void layernorm_matches_ref_3x7x13(void)
{
    for (int cpu = 1; cpu >= 0; cpu--)
        for (int affine = 0; affine < 2; affine++) T_CHECK(ln_case(cpu, 3 * 7, 13, affine, 0.5f, 2.0f), "affine %d", affine);
}

/* one value a row (y = beta); GPT-2's width; many short rows; rows longer than a work-group;
 * data far from zero (mean 100, spread 1), where a float sum of x itself would lose the mean */
static void layernorm_matches_ref_odd_sizes(void)
{
    static const int cases[][2] = {{5, 1}, {3, 768}, {1000, 7}, {2, 1025}, {37, 64}};
    for (int cpu = 1; cpu >= 0; cpu--) {
        for (size_t i = 0; i < T_COUNT(cases); i++)
            T_CHECK(ln_case(cpu, cases[i][0], cases[i][1], (int)i & 1, -1.0f, 3.0f), "%d x %d", cases[i][0], cases[i][1]);
        T_CHECK(ln_case(cpu, 9, 300, 1, 100.0f, 1.0f), "data far from zero");
    }
}

/* ------------------------------------------------------------------ bad arguments */

/* Each call must fail with DLCL_ERR_INVALID_ARG and a message holding the text. */
#define REFUSED(call, text)                                                                                         \
    do {                                                                                                            \
        dlcl_status s_ = (call);                                                                                    \
        if (!t_err_matches(s_, DLCL_ERR_INVALID_ARG, (text))) {                                                     \
            printf("# %s: want \"%s\", got %s: %s\n", #call, (text), dlcl_status_str(s_), dlcl_last_error());        \
            bad++;                                                                                                  \
        }                                                                                                           \
    } while (0)

static void seq_ops_refuse_bad_arguments(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    dbuf A = {0}, B = {0};
    T_CHECK(dbuf_new(&A, NULL, 64) && dbuf_new(&B, NULL, 64), "no buffers");
    const op_buf a = ob(&A), b = ob(&B), far = op_b(A.mem, (size_t)INT32_MAX + 1);
    int bad = 0;
    REFUSED(op_embedding_forward(ctx, a, b, a, -1, 4, 4), "bad shape");
    REFUSED(op_embedding_forward(ctx, a, b, a, 2, 0, 4), "bad vocabulary");
    REFUSED(op_embedding_forward(ctx, a, none, a, 2, 4, 4), "are required");
    REFUSED(op_embedding_backward(ctx, a, b, none, 2, 4, 4, 0), "are required");
    REFUSED(op_embedding_backward(ctx, far, b, a, 2, 4, 4, 0), "int range");
    REFUSED(op_position_embedding_forward(ctx, a, b, a, 2, 0, 4), "bad shape");
    REFUSED(op_position_embedding_backward(ctx, a, b, a, 2, 5, 4, 4, 0), "bad shape"); /* t > context */
    REFUSED(op_position_embedding_backward(ctx, none, b, a, 2, 3, 4, 4, 0), "are required");
    REFUSED(op_layernorm_forward(ctx, a, a, 2, 0, none, none, 1e-5f, none, none), "bad shape");
    REFUSED(op_layernorm_forward(ctx, a, a, 2, 4, a, none, 1e-5f, none, none), "both or neither");
    REFUSED(op_layernorm_forward(ctx, a, a, 2, 4, none, none, -1.0f, none, none), "eps");
    REFUSED(op_layernorm_backward(ctx, a, b, a, 2, 4, none, none, none, none, none, 0), "are required");
    dbuf_free(&A), dbuf_free(&B);
    T_CHECK(bad == 0, "%d bad calls accepted or refused for another reason", bad);
}

/* ------------------------------------------------------------------ gelu_tanh */

/* Over [-12, 12] and a few points where it saturates or is tiny: 2e-5 relative, 1e-7
 * absolute, so the negative side, where 1 + tanh cancels, is held to relative accuracy. */
static void gelu_tanh_matches_ref_wide_range(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    enum { N = 1013 };
    static const float pts[] = {-30.0f, -9.0f, -5.0f, -1e-3f, 0.0f, 1e-3f, 5.0f, 30.0f};
    float *x = rnd(N, -12, 12), *dy = rnd(N, -1, 1), y[N], yr[N], dx[N], dxr[N];
    T_CHECK(x && dy, "out of memory");
    memcpy(x, pts, sizeof pts);
    for (int i = 0; i < N; i++) {
        yr[i] = activation_ref(OP_ACT_GELU_TANH, 0, x[i]);
        dxr[i] = dy[i] * activation_grad_ref(OP_ACT_GELU_TANH, 0, x[i]);
    }
    dbuf X = {0}, Y = {0}, DY = {0}, DX = {0};
    bool ok = dbuf_new(&X, x, N) && dbuf_new(&Y, NULL, N) && dbuf_new(&DY, dy, N) && dbuf_new(&DX, NULL, N) &&
              op_activation_forward(ctx, OP_ACT_GELU_TANH, 0, ob(&X), ob(&Y), N) == DLCL_OK &&
              op_activation_backward(ctx, OP_ACT_GELU_TANH, 0, ob(&X), ob(&Y), ob(&DY), ob(&DX), N) == DLCL_OK &&
              dbuf_read(&Y, y, "y") && dbuf_read(&DX, dx, "dx") && close_to("gelu_tanh forward", y, yr, N, 2e-5f, 1e-7f) &&
              close_to("gelu_tanh backward", dx, dxr, N, 2e-5f, 1e-7f);
    dbuf_free(&X), dbuf_free(&Y), dbuf_free(&DY), dbuf_free(&DX);
    free(x), free(dy);
    T_CHECK(ok, "gelu_tanh differs from the reference: %s", dlcl_last_error());
}

/* ------------------------------------------------------------------ layer chains */

#define CHAIN_MAX 10

/* A straight chain of layers built from INI text the way the net builds them (type, parse,
 * shape, alloc), run on count samples of an int32 or float input, with the loss sum(y * r)
 * taken on the host. It drives the layers' vtables, io->accumulate and a tied weight (tie:
 * the last layer's first tensor is layer 0's, whose backward then adds into its gradient, as
 * GPT-2's head and wte) without the net's token input. */
typedef struct chain {
    cfg c;
    layer l[CHAIN_MAX];
    layer_shape in[CHAIN_MAX];
    char *in_names[CHAIN_MAX];
    int n, count, tie;
    size_t np;
    dbuf x, params, grads, act[CHAIN_MAX], dact[CHAIN_MAX], ws;
} chain;

static void chain_free(chain *ch)
{
    for (int i = 0; i < ch->n; i++)
        if (ch->l[i].type && ch->l[i].type->free) ch->l[i].type->free(&ch->l[i]);
    for (int i = 0; i < CHAIN_MAX; i++) dbuf_free(&ch->act[i]), dbuf_free(&ch->dact[i]);
    dbuf_free(&ch->x), dbuf_free(&ch->params), dbuf_free(&ch->grads), dbuf_free(&ch->ws);
    cfg_free(&ch->c);
}

static bool chain_build(chain *ch, const char *text, layer_shape input, int count, int tie)
{
    memset(ch, 0, sizeof *ch);
    ch->count = count;
    ch->tie = tie;
    const char *path = write_cfg("chain.ini", text);
    dlcl_ctx *ctx = t_ctx();
    if (path == NULL || ctx == NULL || cfg_load(path, &ch->c) != DLCL_OK) return false;
    layer_shape prev = input;
    const char *prev_name = "input";
    size_t off = GUARD, ws = 1;
    for (size_t i = 0; i < ch->c.count && ch->n < CHAIN_MAX; i++) {
        const cfg_section *s = &ch->c.sections[i];
        layer *l = &ch->l[ch->n];
        const char *type;
        if (cfg_get_str(&ch->c, s, "type", 1, NULL, &type) != DLCL_OK || (l->type = layer_type_find(type)) == NULL)
            return false;
        ch->in_names[ch->n] = (char *)prev_name;
        ch->in[ch->n] = prev;
        *l = (layer){.type = l->type, .name = s->name, .line = s->line, .n_in = 1, .in_names = &ch->in_names[ch->n],
                     .in = &ch->in[ch->n], .needs_dx = ch->n > 0};
        ch->n++;
        if (l->type->parse(l, &ch->c, s) != DLCL_OK || l->type->shape(l) != DLCL_OK) return false;
        const bool last = i + 1 == ch->c.count;
        for (int p = 0; p < l->n_params; p++) {
            if (tie && last && p == 0) continue;
            l->params[p].off = off;
            off += l->params[p].numel;
        }
        if (l->ws_floats > ws) ws = l->ws_floats;
        prev = l->out;
        prev_name = l->name;
    }
    if (tie) {
        if (ch->l[ch->n - 1].params[0].numel != ch->l[0].params[0].numel) return false;
        ch->l[ch->n - 1].params[0].off = ch->l[0].params[0].off;
    }
    ch->np = off - GUARD;
    float *w = rnd(ch->np, -0.5f, 0.5f);
    bool ok = w && dbuf_new(&ch->params, w, ch->np) && dbuf_new(&ch->grads, NULL, ch->np) && dbuf_new(&ch->ws, NULL, ws) &&
              dbuf_new(&ch->x, NULL, (size_t)count * layer_shape_numel(input));
    free(w);
    for (int i = 0; ok && i < ch->n; i++) {
        layer *l = &ch->l[i];
        size_t ny = (size_t)count * layer_shape_numel(l->out);
        ok = dbuf_new(&ch->act[i], NULL, ny) && dbuf_new(&ch->dact[i], NULL, ny) &&
             (l->type->alloc == NULL || l->type->alloc(l, ctx, count) == DLCL_OK);
    }
    return ok;
}

static layer_io chain_io(chain *ch, int i, op_buf *x, op_buf *dx)
{
    *x = i > 0 ? ob(&ch->act[i - 1]) : ob(&ch->x);
    *dx = i > 0 ? ob(&ch->dact[i - 1]) : none;
    return (layer_io){.ctx = t_ctx(), .batch = ch->count, .count = ch->count, .training = 1, .x = x, .dx = dx,
                      .y = ob(&ch->act[i]), .dy = ob(&ch->dact[i]), .params = ch->params.mem, .grads = ch->grads.mem,
                      .ws = ob(&ch->ws), .accumulate = ch->tie && i == 0 ? 1u : 0u};
}

/* The loss sum(y * r) of the forward with the current parameters. */
static bool chain_loss(chain *ch, const float *r, float *y, double *loss)
{
    op_buf x, dx;
    for (int i = 0; i < ch->n; i++) {
        layer_io io = chain_io(ch, i, &x, &dx);
        if (ch->l[i].type->forward(&ch->l[i], &io) != DLCL_OK) return false;
    }
    const dbuf *out = &ch->act[ch->n - 1];
    if (!dbuf_read(out, y, "chain output")) return false;
    *loss = 0;
    for (size_t i = 0; i < out->n; i++) *loss += (double)y[i] * r[i];
    return true;
}

static bool chain_backward(chain *ch, const float *r)
{
    dlcl_ctx *ctx = t_ctx();
    const dbuf *d = &ch->dact[ch->n - 1];
    if (clEnqueueWriteBuffer(ctx->queue, d->mem, CL_TRUE, GUARD * 4, d->n * 4, r, 0, NULL, NULL) != CL_SUCCESS)
        return false;
    op_buf x, dx;
    for (int i = ch->n - 1; i >= 0; i--) {
        layer_io io = chain_io(ch, i, &x, &dx);
        if (ch->l[i].type->backward(&ch->l[i], &io) != DLCL_OK) return false;
    }
    return true;
}

/* Every parameter's gradient against central differences of the loss (step 1e-2), with the
 * CPU kernels or the GPU ones; x is count samples of the input (int32 ids or floats). */
static bool chain_gradients(const char *name, const char *text, layer_shape input, const void *x, int count, int tie,
                            int cpu)
{
    dlcl_ctx *ctx = t_ctx();
    chain ch;
    const int was = ctx ? ctx->cpu_device : 0;
    if (ctx) ctx->cpu_device = cpu;
    bool ok = ctx && chain_build(&ch, text, input, count, tie);
    if (!ok) printf("# %s: cannot build the chain: %s\n", name, dlcl_last_error());
    const size_t nx = (size_t)count * layer_shape_numel(input), ny = ok ? ch.act[ch.n - 1].n : 1, np = ok ? ch.np : 1;
    float *r = rnd(ny, -1, 1), *y = malloc(ny * 4), *w = malloc(np * 4), *g = malloc(np * 4);
    ok = ok && r && y && w && g &&
         clEnqueueWriteBuffer(ctx->queue, ch.x.mem, CL_TRUE, GUARD * 4, nx * 4, x, 0, NULL, NULL) == CL_SUCCESS;
    double l0;
    ok = ok && chain_loss(&ch, r, y, &l0) && chain_backward(&ch, r) && dbuf_read(&ch.grads, g, "gradients") &&
         dbuf_read(&ch.params, w, "parameters");
    int bad = 0, checked = 0;
    double worst = 0;
    const float eps = 1e-2f;
    for (size_t i = 0; ok && i < np; i++) {
        const float orig = w[i];
        double lp, lm;
        w[i] = orig + eps;
        ok = clEnqueueWriteBuffer(ctx->queue, ch.params.mem, CL_TRUE, (GUARD + i) * 4, 4, &w[i], 0, NULL, NULL) ==
                 CL_SUCCESS && chain_loss(&ch, r, y, &lp);
        w[i] = orig - eps;
        ok = ok && clEnqueueWriteBuffer(ctx->queue, ch.params.mem, CL_TRUE, (GUARD + i) * 4, 4, &w[i], 0, NULL, NULL) ==
                       CL_SUCCESS && chain_loss(&ch, r, y, &lm);
        w[i] = orig;
        ok = ok && clEnqueueWriteBuffer(ctx->queue, ch.params.mem, CL_TRUE, (GUARD + i) * 4, 4, &w[i], 0, NULL, NULL) ==
                       CL_SUCCESS;
        const double fd = (lp - lm) / (2 * eps), err = fabs(fd - g[i]) / (2e-3 + 1e-2 * fabs(fd));
        checked++;
        if (err > worst) worst = err;
        if (err > 1 && bad++ < 5)
            printf("# %s: parameter %zu: analytic %.6g, finite difference %.6g\n", name, i, (double)g[i], fd);
    }
    if (ctx) ctx->cpu_device = was;
    if (ok) printf("# %s (%s kernels): %d parameters, worst |error| / (2e-3 + 1e-2 |fd|) = %.3f\n", name,
                   cpu ? "CPU" : "GPU", checked, worst);
    else printf("# %s: %s\n", name, dlcl_last_error());
    chain_free(&ch);
    free(r), free(y), free(w), free(g);
    return ok && bad == 0;
}

/* GPT-2's front and head in small: token and position embeddings, layer norms with and
 * without affine, dense layers with gelu_tanh and gelu on T,D, and the head's weight tied to
 * the token embedding's. The ids repeat within and across the 3 sequences of 7. */
static const char *token_chain = "[wte]\ntype=embedding\nvocab=11\ndim=6\ninit_std=0.5\n"
                                 "[wpe]\ntype=position_embedding\ncontext=9\ndim=6\n"
                                 "[ln1]\ntype=layernorm\n"
                                 "[fc1]\ntype=dense\nunits=10\nactivation=gelu_tanh\n"
                                 "[fc2]\ntype=dense\nunits=6\nactivation=gelu\n"
                                 "[ln2]\ntype=layernorm\naffine=0\neps=1e-3\n"
                                 "[head]\ntype=dense\nunits=11\nbias=0\n";
static const int32_t token_ids[3 * 7] = {1, 4, 1, 7, 1, 0, 10, 4, 4, 2, 9, 1, 3, 5, 10, 6, 8, 1, 0, 2, 4};

static void token_chain_gradients_match_finite_differences(void)
{
    const layer_shape in = {1, {7, 0, 0, 0}, DLCL_INT32};
    for (int cpu = 1; cpu >= 0; cpu--) {
        T_CHECK(chain_gradients("token chain, tied head", token_chain, in, token_ids, 3, 1, cpu), "tied head");
        T_CHECK(chain_gradients("token chain", token_chain, in, token_ids, 3, 0, cpu), "untied head");
    }
}

/* ------------------------------------------------------------------ nets */

/* test_graph's check (test/netcheck.c) on 3 given samples, labels 0, 2, 1 */
static void check_net_gradients(dlcl_net *net, const char *name, const void *x)
{
    const int32_t y[3] = {0, 2, 1};
    t_check_gradients_on(net, name, x, y, 3, 2);
}

#define SEQ_NET(input) "[net]\ninput=" input "\nclasses=3\nbatch=3\nseed=5\n[optimizer]\nlearning_rate=0\nmomentum=0\n"
#define HEAD "[flat]\ntype=flatten\n[fc]\ntype=dense\nunits=3\n"

/* A float sequence through position embedding, layer norms, dense layers with gelu_tanh and
 * gelu at each position and a gelu_tanh activation layer, then a classifier. */
static void sequence_net_gradients_match_finite_differences(void)
{
    const char *text = SEQ_NET("7,6") "[wpe]\ntype=position_embedding\ncontext=9\ndim=6\ninit_std=0.5\n"
                                      "[ln1]\ntype=layernorm\n"
                                      "[fc1]\ntype=dense\nunits=8\nactivation=gelu_tanh\n"
                                      "[act]\ntype=activation\nactivation=gelu_tanh\n"
                                      "[fc2]\ntype=dense\nunits=6\nactivation=gelu\n"
                                      "[ln2]\ntype=layernorm\naffine=0\n" HEAD;
    const char *path = write_cfg("seq.ini", text);
    T_CHECK(path != NULL, "cannot write config");
    dlcl_net *net = NULL;
    T_OK(dlcl_net_create(path, NULL, 0, NULL, &net));
    float x[3 * 7 * 6];
    uint64_t r = t_seed();
    t_fill_uniform(&r, x, T_COUNT(x), -1, 1);
    check_net_gradients(net, "sequence net", x);
    dlcl_net_free(net);
}

/* gelu_tanh in a convolution (kept apart from the fused activations, as gelu: its derivative
 * needs the input), in a dense layer on a vector and as its own layer on C,H,W. */
static void gelu_tanh_conv_net_gradients_match_finite_differences(void)
{
    const char *text = SEQ_NET("2,7,5") "[c1]\ntype=conv\nfilters=3\nsize=3\npad=1\nactivation=gelu_tanh\n"
                                        "[a1]\ntype=activation\nactivation=gelu_tanh\n"
                                        "[flat0]\ntype=flatten\n"
                                        "[fc1]\ntype=dense\nunits=6\nactivation=gelu_tanh\n" HEAD;
    const char *path = write_cfg("conv.ini", text);
    T_CHECK(path != NULL, "cannot write config");
    dlcl_net *net = NULL;
    T_OK(dlcl_net_create(path, NULL, 0, NULL, &net));
    float x[3 * 2 * 7 * 5];
    uint64_t r = t_seed();
    t_fill_uniform(&r, x, T_COUNT(x), -2, 2);
    check_net_gradients(net, "gelu_tanh conv net", x);
    dlcl_net_free(net);
}

/* The same with token ids as the net's input (an embedding reads it, so it is int32). */
static void token_net_gradients_match_finite_differences(void)
{
    const char *text = SEQ_NET("7") "[wte]\ntype=embedding\nvocab=11\ndim=6\ninit_std=0.5\n"
                                    "[wpe]\ntype=position_embedding\ncontext=9\ndim=6\n"
                                    "[ln1]\ntype=layernorm\n"
                                    "[fc1]\ntype=dense\nunits=8\nactivation=gelu_tanh\n" HEAD;
    const char *path = write_cfg("tok.ini", text);
    T_CHECK(path != NULL, "cannot write config");
    dlcl_net *net = NULL;
    T_OK(dlcl_net_create(path, NULL, 0, NULL, &net));
    T_CHECK(net->input.dtype == DLCL_INT32 && net->vocab == 11, "the input is int32 ids below 11");
    check_net_gradients(net, "token net", token_ids);
    dlcl_net_free(net);
}

typedef struct bad_net {
    const char *name, *text;
    dlcl_status status;
    const char *msg;
} bad_net;

static const bad_net bad_nets[] = {
    {"more positions than context", SEQ_NET("7,6") "[wpe]\ntype=position_embedding\ncontext=5\ndim=6\n" HEAD,
     DLCL_ERR_SHAPE, "[wpe] (position_embedding): input has 7 positions, more than context = 5"},
    {"position dim differs from the input's", SEQ_NET("7,6") "[wpe]\ntype=position_embedding\ncontext=9\ndim=5\n" HEAD,
     DLCL_ERR_SHAPE, "[wpe] (position_embedding): dim = 5, but input has 6 features per position"},
    {"positions of a vector", SEQ_NET("6") "[wpe]\ntype=position_embedding\ncontext=9\ndim=6\n" HEAD, DLCL_ERR_SHAPE,
     "[wpe] (position_embedding): needs a T,D sequence of vectors, but input is 6 (1-d)"},
    {"embedding of float values",
     SEQ_NET("7,6") "[fc0]\ntype=dense\nunits=4\n[wte]\ntype=embedding\nvocab=5\ndim=3\n" HEAD, DLCL_ERR_SHAPE,
     "[wte] (embedding) reads int32 token ids, but [fc0] holds float32 values"},
    {"embedding without vocab", SEQ_NET("7") "[wte]\ntype=embedding\ndim=3\n" HEAD, DLCL_ERR_CONFIG,
     "[wte]: missing key 'vocab'"},
    {"negative init_std", SEQ_NET("7") "[wte]\ntype=embedding\nvocab=5\ndim=3\ninit_std=-1\n" HEAD, DLCL_ERR_CONFIG,
     "[wte] init_std"},
    {"layernorm key typo", SEQ_NET("7,6") "[ln]\ntype=layernorm\nesp=1e-5\n" HEAD, DLCL_ERR_CONFIG,
     "did you mean 'eps'"},
};

static void malformed_sequence_configs_name_the_section(void)
{
    for (size_t i = 0; i < T_COUNT(bad_nets); i++) {
        const char *path = write_cfg("bad.ini", bad_nets[i].text);
        T_CHECK(path != NULL, "cannot write config");
        dlcl_net *net = NULL;
        dlcl_status s = dlcl_net_create(path, NULL, 0, NULL, &net);
        dlcl_net_free(net);
        if (getenv("T_VERBOSE")) printf("# %s: %s\n", bad_nets[i].name, dlcl_last_error());
        T_CHECK(t_err_matches(s, bad_nets[i].status, bad_nets[i].msg), "%s: want %s with \"%s\", got %s: %s",
                bad_nets[i].name, dlcl_status_str(bad_nets[i].status), bad_nets[i].msg, dlcl_status_str(s),
                dlcl_last_error());
    }
}

/* ------------------------------------------------------------------ PyTorch */

static bool put(const char *dir, const char *name, const void *v, size_t bytes)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return t_write_file(path, v, bytes);
}

static bool get(const char *dir, const char *name, float *v, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(v, sizeof *v, n, f) : 0;
    if (f) fclose(f);
    if (got != n) printf("# %s: %zu of %zu floats\n", path, got, n);
    return got == n;
}

/* y = gelu_tanh(layernorm(wte[tok] + wpe[:t])) and its backward from dy by the ops, against
 * test/torch_seq.py (nn.functional.embedding, layer_norm, gelu(approximate='tanh')); 1 pass,
 * 0 fail, -1 torch missing. */
static int torch_chain(const char *dir, int count, int t, int context, int vocab, int dim)
{
    dlcl_ctx *ctx = t_ctx();
    const char *src = getenv("DLCL_TEST_SOURCE_DIR");
    const int rows = count * t;
    const size_t n = (size_t)rows * dim, nte = (size_t)vocab * dim, npe = (size_t)context * dim;
    int32_t *tok = malloc((size_t)rows * 4);
    float *wte = rnd(nte, -1, 1), *wpe = rnd(npe, -1, 1), *gm = rnd((size_t)dim, 0.5f, 1.5f),
          *bt = rnd((size_t)dim, -0.5f, 0.5f), *dy = rnd(n, -1, 1), *out = malloc((n + nte + npe + 2 * dim) * 4),
          *ref = malloc((n + nte + npe + 2 * dim) * 4);
    bool ok = ctx && src && tok && wte && wpe && gm && bt && dy && out && ref;
    for (int r = 0; ok && r < rows; r++) tok[r] = (int32_t)(t_rand_u32(&rng) % (uint32_t)vocab);
    if (ok && rows > 3) tok[rows - 1] = tok[1] = tok[0];
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/test/torch_seq.py' '%s' %d %d %d %d %d 1>&2", src ? src : ".", dir,
             count, t, context, vocab, dim);
    ok = ok && put(dir, "tokens", tok, (size_t)rows * 4) && put(dir, "wte", wte, nte * 4) &&
         put(dir, "wpe", wpe, npe * 4) && put(dir, "gamma", gm, (size_t)dim * 4) && put(dir, "beta", bt, (size_t)dim * 4) &&
         put(dir, "dy", dy, n * 4);
    fflush(stdout);
    int rc = ok ? system(cmd) : -1;
    if (rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
        free(tok), free(wte), free(wpe), free(gm), free(bt), free(dy), free(out), free(ref);
        return -1;
    }
    if (ok && (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0)) {
        printf("# %s: exit status %d (reason on stderr)\n", cmd, rc);
        ok = false;
    }
    float *ty = ref, *tdte = ref + n, *tdpe = tdte + nte, *tdg = tdpe + npe, *tdb = tdg + dim;
    float *y = out, *dte = out + n, *dpe = dte + nte, *dg = dpe + npe, *db = dg + dim;
    ok = ok && get(dir, "y", ty, n) && get(dir, "dwte", tdte, nte) && get(dir, "dwpe", tdpe, npe) &&
         get(dir, "dgamma", tdg, (size_t)dim) && get(dir, "dbeta", tdb, (size_t)dim);
    dbuf T = {0}, WTE = {0}, WPE = {0}, G = {0}, B = {0}, H = {0}, Z = {0}, Y = {0}, DY = {0}, SM = {0}, SR = {0},
         DTE = {0}, DPE = {0}, DG = {0}, DB = {0};
    ok = ok && tok_new(&T, tok, (size_t)rows) && dbuf_new(&WTE, wte, nte) && dbuf_new(&WPE, wpe, npe) &&
         dbuf_new(&G, gm, (size_t)dim) && dbuf_new(&B, bt, (size_t)dim) && dbuf_new(&H, NULL, n) &&
         dbuf_new(&Z, NULL, n) && dbuf_new(&Y, NULL, n) && dbuf_new(&DY, dy, n) && dbuf_new(&SM, NULL, (size_t)rows) &&
         dbuf_new(&SR, NULL, (size_t)rows) && dbuf_new(&DTE, NULL, nte) && dbuf_new(&DPE, NULL, npe) &&
         dbuf_new(&DG, NULL, (size_t)dim) && dbuf_new(&DB, NULL, (size_t)dim) &&
         op_embedding_forward(ctx, ob(&T), ob(&WTE), ob(&H), rows, vocab, dim) == DLCL_OK &&
         op_position_embedding_forward(ctx, ob(&H), ob(&WPE), ob(&H), count, t, dim) == DLCL_OK &&
         op_layernorm_forward(ctx, ob(&H), ob(&Z), rows, dim, ob(&G), ob(&B), 1e-5f, ob(&SM), ob(&SR)) == DLCL_OK &&
         op_activation_forward(ctx, OP_ACT_GELU_TANH, 0, ob(&Z), ob(&Y), n) == DLCL_OK &&
         op_activation_backward(ctx, OP_ACT_GELU_TANH, 0, ob(&Z), ob(&Y), ob(&DY), ob(&DY), n) == DLCL_OK &&
         op_layernorm_backward(ctx, ob(&H), ob(&DY), ob(&DY), rows, dim, ob(&G), ob(&SM), ob(&SR), ob(&DG), ob(&DB),
                               0) == DLCL_OK &&
         op_position_embedding_backward(ctx, ob(&DY), ob(&DY), ob(&DPE), count, t, context, dim, 0) == DLCL_OK &&
         op_embedding_backward(ctx, ob(&T), ob(&DY), ob(&DTE), rows, vocab, dim, 0) == DLCL_OK &&
         dbuf_read(&Y, y, "y") && dbuf_read(&DTE, dte, "dwte") && dbuf_read(&DPE, dpe, "dwpe") &&
         dbuf_read(&DG, dg, "dgamma") && dbuf_read(&DB, db, "dbeta");
    /* torch's kernels differ in summation order (and rsqrt's ulps): 1e-4 relative, sums of
     * up to rows terms 1e-6 * rows absolute */
    const float satol = 1e-6f * (float)rows + 1e-5f;
    ok = ok && close_to("y vs torch", y, ty, n, 1e-4f, 1e-5f) && close_to("dwte vs torch", dte, tdte, nte, 1e-4f, satol) &&
         close_to("dwpe vs torch", dpe, tdpe, npe, 1e-4f, satol) &&
         close_to("dgamma vs torch", dg, tdg, dim, 1e-4f, satol) &&
         close_to("dbeta vs torch", db, tdb, dim, 1e-4f, satol);
    if (!ok) printf("# %d x %d (context %d), vocab %d, dim %d, seed %llu: %s\n", count, t, context, vocab, dim,
                    (unsigned long long)t_seed(), dlcl_last_error());
    dbuf *all[] = {&T, &WTE, &WPE, &G, &B, &H, &Z, &Y, &DY, &SM, &SR, &DTE, &DPE, &DG, &DB};
    for (size_t i = 0; i < T_COUNT(all); i++) dbuf_free(all[i]);
    free(tok), free(wte), free(wpe), free(gm), free(bt), free(dy), free(out), free(ref);
    return ok ? 1 : 0;
}

static void embedding_layernorm_gelu_tanh_match_torch(void)
{
    if (getenv("DLCL_TEST_SOURCE_DIR") == NULL) T_SKIP("DLCL_TEST_SOURCE_DIR is not set (run through meson test)");
    if (access("/usr/bin/python3", X_OK) != 0) T_SKIP("no /usr/bin/python3");
    const char *dir = t_tmpdir(1);
    T_CHECK(dir != NULL, "no scratch directory");
    int r = torch_chain(dir, 3, 7, 9, 13, 13);
    if (r < 0) T_SKIP("/usr/bin/python3 cannot import torch");
    T_CHECK(r == 1, "3 x 7 tokens of 13, dim 13 differ from torch");
    T_CHECK(torch_chain(dir, 2, 33, 40, 301, 96) == 1, "2 x 33 tokens of 301, dim 96 differ from torch");
}

/* ------------------------------------------------------------------ speed (T_BENCH=1) */

/* The least milliseconds of reps runs of call after one warm-up (compiles), each run to the
 * end of the queue: the machine is shared, and the least is the op's own time. */
#define TIME_MS(ms, reps, call)                                                                                     \
    do {                                                                                                            \
        dlcl_status s_ = (call);                                                                                    \
        clFinish(ctx->queue);                                                                                       \
        (ms) = 1e30;                                                                                                \
        for (int i_ = 0; s_ == DLCL_OK && i_ < (reps); i_++) {                                                      \
            double t0_ = rt_now_ms();                                                                               \
            s_ = (call);                                                                                            \
            clFinish(ctx->queue);                                                                                   \
            double t_ = rt_now_ms() - t0_;                                                                          \
            if (t_ < (ms)) (ms) = t_;                                                                               \
        }                                                                                                           \
        if (s_ != DLCL_OK) (ms) = -1.0;                                                                             \
    } while (0)

static void report(const char *what, double ms, double bytes)
{
    printf("# %-44s %8.3f ms %7.1f GB/s (%.1f MB moved at least)\n", what, ms, bytes / ms / 1e6, bytes / 1e6);
}

/* GPT-2 small: B*T = 4 x 256 rows of 768, vocabulary 50257. Bytes are the least each op
 * must read and write; the copy of 64 MB beside them is the device's memory rate. */
static void speed_at_gpt2_small_sizes(void)
{
    if (getenv("T_BENCH") == NULL) T_SKIP("set T_BENCH=1 to time the sequence ops");
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    enum { B = 4, T = 256, D = 768, V = 50257, ROWS = B * T, REPS = 20 };
    const size_t n = (size_t)ROWS * D, nv = (size_t)V * D, ncopy = (size_t)16 << 20;
    int32_t *tok = malloc(ROWS * 4);
    float *x = rnd(n, -1, 1);
    T_CHECK(tok && x, "out of memory");
    for (int r = 0; r < ROWS; r++) tok[r] = (int32_t)(t_rand_u32(&rng) % V);
    dbuf TK = {0}, X = {0}, Y = {0}, DY = {0}, W = {0}, DW = {0}, G = {0}, Bt = {0}, SM = {0}, SR = {0}, DG = {0},
         DB = {0}, P = {0}, DP = {0}, C0 = {0}, C1 = {0};
    bool ok = tok_new(&TK, tok, ROWS) && dbuf_new(&X, x, n) && dbuf_new(&Y, NULL, n) && dbuf_new(&DY, x, n) &&
              dbuf_new(&W, NULL, nv) && dbuf_new(&DW, NULL, nv) && dbuf_new(&G, NULL, D) && dbuf_new(&Bt, NULL, D) &&
              dbuf_new(&SM, NULL, ROWS) && dbuf_new(&SR, NULL, ROWS) && dbuf_new(&DG, NULL, D) &&
              dbuf_new(&DB, NULL, D) && dbuf_new(&P, NULL, (size_t)1024 * D) && dbuf_new(&DP, NULL, (size_t)1024 * D) &&
              dbuf_new(&C0, NULL, ncopy) && dbuf_new(&C1, NULL, ncopy);
    free(tok), free(x);
    double ms[10];
    if (ok) {
        TIME_MS(ms[0], REPS, op_copy_rows(ctx, ob(&C0), 4096, ob(&C1), 4096, ncopy / 4096, 4096));
        const float zero = 0.0f;
        TIME_MS(ms[9], REPS, clEnqueueFillBuffer(ctx->queue, DW.mem, &zero, 4, GUARD * 4, nv * 4, 0, NULL, NULL) ==
                                     CL_SUCCESS ? DLCL_OK : DLCL_ERR_OPENCL);
        TIME_MS(ms[1], REPS, op_embedding_forward(ctx, ob(&TK), ob(&W), ob(&Y), ROWS, V, D));
        TIME_MS(ms[2], REPS, op_embedding_backward(ctx, ob(&TK), ob(&DY), ob(&DW), ROWS, V, D, 0));
        TIME_MS(ms[3], REPS, op_embedding_backward(ctx, ob(&TK), ob(&DY), ob(&DW), ROWS, V, D, 1));
        TIME_MS(ms[4], REPS, op_position_embedding_forward(ctx, ob(&X), ob(&P), ob(&Y), B, T, D));
        TIME_MS(ms[5], REPS, op_position_embedding_backward(ctx, ob(&DY), ob(&Y), ob(&DP), B, T, 1024, D, 0));
        TIME_MS(ms[6], REPS, op_layernorm_forward(ctx, ob(&X), ob(&Y), ROWS, D, ob(&G), ob(&Bt), 1e-5f, ob(&SM), ob(&SR)));
        TIME_MS(ms[7], REPS, op_layernorm_backward(ctx, ob(&X), ob(&DY), ob(&Y), ROWS, D, ob(&G), ob(&SM), ob(&SR),
                                                   ob(&DG), ob(&DB), 0));
        TIME_MS(ms[8], REPS, op_layernorm_backward(ctx, ob(&X), ob(&DY), ob(&Y), ROWS, D, ob(&G), ob(&SM), ob(&SR),
                                                   none, none, 0));
        const double f = 4.0, act = (double)n * f;
        printf("# %s, %d x %d rows of %d, vocabulary %d, %s kernels\n", dlcl_ctx_device_name(ctx), B, T, D, V,
               ctx->cpu_device ? "CPU" : "GPU");
        report("copy 64 MB (the memory rate)", ms[0], 2.0 * ncopy * f);
        report("fill 154 MB (clEnqueueFillBuffer)", ms[9], (double)nv * f);
        report("embedding forward", ms[1], 2 * act + ROWS * 4.0);
        report("embedding backward (zero the rest)", ms[2], (double)nv * f + 3 * act);
        report("embedding backward (accumulate, tied)", ms[3], 3 * act);
        report("position embedding forward", ms[4], 2 * act + (double)T * D * f);
        report("position embedding backward (with dx)", ms[5], 2 * act + 1024.0 * D * f);
        report("layernorm forward", ms[6], 2 * act);
        report("layernorm backward (dx, dgamma, dbeta)", ms[7], 3 * act);
        report("layernorm backward (dx only)", ms[8], 3 * act);
        for (int i = 0; i < 10; i++) ok = ok && ms[i] >= 0;
    }
    dbuf *all[] = {&TK, &X, &Y, &DY, &W, &DW, &G, &Bt, &SM, &SR, &DG, &DB, &P, &DP, &C0, &C1};
    for (size_t i = 0; i < T_COUNT(all); i++) dbuf_free(all[i]);
    T_CHECK(ok, "%s", dlcl_last_error());
}

static const t_case cases[] = {
    T_CASE(embedding_matches_ref_3x7_vocab13_dim13),
    T_CASE(embedding_matches_ref_odd_sizes),
    T_CASE(position_embedding_matches_ref_odd_sizes),
    T_CASE(layernorm_matches_ref_3x7x13),
    T_CASE(layernorm_matches_ref_odd_sizes),
    T_CASE(seq_ops_refuse_bad_arguments),
    T_CASE(gelu_tanh_matches_ref_wide_range),
    T_CASE(token_chain_gradients_match_finite_differences),
    T_CASE(sequence_net_gradients_match_finite_differences),
    T_CASE(gelu_tanh_conv_net_gradients_match_finite_differences),
    T_CASE(token_net_gradients_match_finite_differences),
    T_CASE(malformed_sequence_configs_name_the_section),
    T_CASE(embedding_layernorm_gelu_tanh_match_torch),
    T_CASE(speed_at_gpt2_small_sizes),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
