/* SGEMM through lib/blas.c (CLBlast) against a double-accumulating reference: odd shapes,
 * both transposes, offsets, leading dimensions past the matrix, alpha/beta, batches, and
 * calls that would run past a buffer. One process: CLBlast compiles on first use. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/internal.h"
#include "ref/ref.h"
#include "test.h"

typedef struct gemm_case {
    size_t m, n, k;
    int ta, tb;
    size_t pad_ld, off; /* extra leading dimension, element offset of every operand */
    size_t batch;
    float alpha, beta;
    bool nan_c; /* C's matrices start as NaN: with beta 0, C must not be read (BLAS rule) */
} gemm_case;

static bool run_case_on(const gemm_case *g, blas_backend backend)
{
    dlcl_ctx *ctx = t_ctx();
    if (ctx == NULL) return false;
    ctx->gemm_backend = backend;
    size_t ar = g->ta ? g->k : g->m, ac = g->ta ? g->m : g->k, br = g->tb ? g->n : g->k, bc = g->tb ? g->k : g->n;
    size_t lda = ac + g->pad_ld, ldb = bc + g->pad_ld, ldc = g->n + g->pad_ld;
    size_t sa = ar * lda + 3, sb = br * ldb + 5, sc = g->m * ldc + 7; /* strides with gaps between matrices */
    size_t na = g->off + sa * g->batch, nb = g->off + sb * g->batch, nc = g->off + sc * g->batch;
    uint64_t rng = t_seed() ^ (g->m * 1000003 + g->n * 1009 + g->k);
    float *a = malloc(na * 4), *b = malloc(nb * 4), *c = malloc(nc * 4), *want = malloc(nc * 4), *got = malloc(nc * 4);
    t_fill_uniform(&rng, a, na, -1, 1);
    t_fill_uniform(&rng, b, nb, -1, 1);
    t_fill_uniform(&rng, c, nc, -1, 1);
    bool *in_c = calloc(nc, 1); /* elements of the C matrices; all others must stay as they were */
    for (size_t z = 0; in_c && z < g->batch; z++)
        for (size_t i = 0; i < g->m; i++)
            for (size_t j = 0; j < g->n; j++) in_c[g->off + z * sc + i * ldc + j] = true;
    for (size_t i = 0; g->nan_c && in_c && i < nc; i++)
        if (in_c[i]) c[i] = NAN;
    memcpy(want, c, nc * 4);
    for (size_t i = 0; i < g->batch; i++)
        gemm_ref(g->ta, g->tb, g->m, g->n, g->k, g->alpha, a + g->off + i * sa, lda, b + g->off + i * sb, ldb, g->beta,
                 want + g->off + i * sc, ldc);
    int64_t da = (int64_t)na, db = (int64_t)nb, dc = (int64_t)nc;
    dlcl_tensor *A = NULL, *B = NULL, *C = NULL;
    dlcl_status s = dlcl_tensor_create(ctx, 1, &da, &A);
    if (s == DLCL_OK) s = dlcl_tensor_create(ctx, 1, &db, &B);
    if (s == DLCL_OK) s = dlcl_tensor_create(ctx, 1, &dc, &C);
    if (s == DLCL_OK) s = dlcl_tensor_upload(A, a, 0, na);
    if (s == DLCL_OK) s = dlcl_tensor_upload(B, b, 0, nb);
    if (s == DLCL_OK) s = dlcl_tensor_upload(C, c, 0, nc);
    if (s == DLCL_OK) {
        if (g->batch == 1)
            s = dlcl_sgemm(ctx, g->ta, g->tb, g->m, g->n, g->k, g->alpha, A, g->off, lda, B, g->off, ldb, g->beta, C,
                           g->off, ldc);
        else
            s = dlcl_sgemm_strided_batched(ctx, g->ta, g->tb, g->m, g->n, g->k, g->alpha, A, g->off, lda, sa, B, g->off,
                                           ldb, sb, g->beta, C, g->off, ldc, sc, g->batch);
    }
    if (s == DLCL_OK) s = dlcl_tensor_download(C, got, 0, nc);
    char label[160];
    snprintf(label, sizeof label, "%s gemm %zux%zux%zu ta %d tb %d ld+%zu off %zu batch %zu alpha %g beta %g",
             blas_backend_names[backend], g->m, g->n, g->k, g->ta, g->tb, g->pad_ld, g->off, g->batch, (double)g->alpha,
             (double)g->beta);
    if (s != DLCL_OK) printf("# %s: %s: %s\n", label, dlcl_status_str(s), dlcl_last_error());
    /* the C matrices within tolerance; every element outside them (offset, padding past n,
     * gaps between batches) bit-for-bit unchanged */
    bool ok = s == DLCL_OK && in_c != NULL && t_close(label, got, want, nc, 1e-4f, 1e-4f);
    for (size_t i = 0; ok && i < nc; i++)
        if (!in_c[i] && memcmp(&got[i], &want[i], sizeof got[i]) != 0) {
            printf("# %s: element %zu outside every C matrix changed: %.9g -> %.9g\n", label, i, (double)want[i],
                   (double)got[i]);
            ok = false;
        }
    dlcl_tensor_free(A), dlcl_tensor_free(B), dlcl_tensor_free(C);
    free(a), free(b), free(c), free(want), free(got), free(in_c);
    return ok;
}

/* Every case runs through both backends: CLBlast and dlcl's own kernel. */
static bool run_case(const gemm_case *g)
{
    bool ok = run_case_on(g, BLAS_BACKEND_CLBLAST) && run_case_on(g, BLAS_BACKEND_DLCL);
    t_ctx()->gemm_backend = BLAS_BACKEND_AUTO;
    return ok;
}

static void gemm_matches_ref_1x1x1(void)
{
    T_CHECK(run_case(&(gemm_case){1, 1, 1, 0, 0, 0, 0, 1, 1.0f, 0.0f, false}), "mismatch");
}

static void gemm_matches_ref_7x13x5_every_transpose(void)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            T_CHECK(run_case(&(gemm_case){7, 13, 5, ta, tb, 0, 0, 1, 1.0f, 0.0f, false}), "mismatch");
}

static void gemm_matches_ref_129x65x33_offsets_ld_alpha_beta(void)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            T_CHECK(run_case(&(gemm_case){129, 65, 33, ta, tb, 3, 11, 1, 0.75f, -0.5f, false}), "mismatch");
}

static void gemm_strided_batched_matches_ref(void)
{
    T_CHECK(run_case(&(gemm_case){7, 13, 5, 0, 1, 2, 4, 3, 1.0f, 1.0f, false}), "mismatch");
    T_CHECK(run_case(&(gemm_case){33, 17, 65, 1, 0, 0, 0, 3, -1.0f, 0.0f, false}), "mismatch");
}

static void gemm_matches_ref_on_full_and_edge_tiles(void)
{
    T_CHECK(run_case(&(gemm_case){64, 256, 100, 0, 0, 0, 0, 1, 1.0f, 0.0f, false}), "full tiles only");
    T_CHECK(run_case(&(gemm_case){67, 250, 99, 1, 1, 5, 3, 2, 1.5f, 0.25f, false}), "edges, both transposed, batched");
    /* A B^T with B much wider than A: computed as (B A^T)^T (a dense layer's forward) */
    T_CHECK(run_case(&(gemm_case){7, 65, 33, 0, 1, 3, 5, 1, 0.5f, 0.0f, false}), "wide NT");
    /* k cut into blocks on CPU devices (blas.c GEMM_KB = 256): a block of 256 then a last one
     * of 450, accumulated with beta = 1 after the caller's beta; rows-first and columns-first */
    T_CHECK(run_case(&(gemm_case){40, 96, 706, 0, 0, 1, 2, 2, 0.5f, -0.75f, false}), "k blocks, wide");
    T_CHECK(run_case(&(gemm_case){99, 35, 1030, 1, 0, 0, 0, 1, 1.0f, 0.0f, false}), "k blocks, tall");
    T_CHECK(run_case(&(gemm_case){70, 40, 1300, 0, 0, 3, 1, 2, 0.75f, 0.5f, false}),
            "k blocks, tall, batched (B packed per block and batch entry)");
    /* a small C over a long k: split into 1024-long chunks summed afterwards, plus a rest */
    T_CHECK(run_case(&(gemm_case){13, 21, 4500, 0, 0, 2, 1, 1, 0.5f, 0.25f, false}), "split k");
    /* on the CLBlast path too (blas.c clblast_splitk_chunks: fewer 64-square tiles of C than
     * compute units), with every transpose, a rest of k, and C not read when beta is 0 */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            T_CHECK(run_case(&(gemm_case){13, 21, 4503, ta, tb, 2, 1, 1, 0.5f, 0.25f, false}), "split k, transposes");
            T_CHECK(run_case(&(gemm_case){9, 5, 1030, ta, tb, 0, 3, 1, 1.0f, 0.0f, true}), "split k, NaN C, beta 0");
        }
    /* B transposed straight into strips of the tile width (blas.c b_wants_panels: a conv's
     * filter gradient), with a narrow last strip, a bottom strip of rows, k blocks, and
     * split k with a rest */
    T_CHECK(run_case(&(gemm_case){101, 40, 1300, 0, 1, 3, 1, 1, 0.5f, -0.75f, false}), "B^T strips, k blocks");
    T_CHECK(run_case(&(gemm_case){101, 40, 5000, 0, 1, 2, 3, 1, 1.0f, 0.0f, false}), "B^T strips, split k");
}

/* m <= 4 rows on a CPU (generation's one position): sgemv_nt / sgemv_nn, both layouts of B,
 * full and narrow strips, k with and without a rest of 8, offsets, ld, alpha/beta, NaN C. */
static void thin_gemm_matches_ref(void)
{
    for (size_t m = 1; m <= 4; m++)
        for (int tb = 0; tb < 2; tb++) {
            T_CHECK(run_case(&(gemm_case){m, 37, 13, 0, tb, 2, 3, 1, 0.5f, -0.25f, false}), "m %zu tb %d", m, tb);
            T_CHECK(run_case(&(gemm_case){m, 64, 776, 0, tb, 0, 0, 1, 1.0f, 0.0f, true}), "m %zu tb %d, NaN C", m, tb);
        }
    T_CHECK(run_case(&(gemm_case){1, 5, 3, 0, 0, 0, 1, 1, 1.0f, 1.0f, false}), "a strip narrower than 16");
}

static void gemm_beta_zero_ignores_nan_in_c(void)
{
    for (int t = 0; t < 4; t++)
        T_CHECK(run_case(&(gemm_case){7, 13, 5, t & 1, t >> 1, 1, 2, 1, 1.0f, 0.0f, true}), "ta %d tb %d", t & 1,
                t >> 1);
    T_CHECK(run_case(&(gemm_case){67, 250, 99, 0, 0, 0, 0, 3, 0.5f, 0.0f, true}), "batched, edge tiles");
    T_CHECK(run_case(&(gemm_case){7, 65, 33, 0, 1, 3, 5, 1, 0.5f, 0.0f, true}), "wide NT");
}

/* A call that must be refused with DLCL_ERR_INVALID_ARG and a message containing substr. */
static bool refused(dlcl_status s, const char *what, const char *substr)
{
    if (s == DLCL_ERR_INVALID_ARG && strstr(dlcl_last_error(), substr) != NULL) return true;
    printf("# %s: want DLCL_ERR_INVALID_ARG with \"%s\", got %s: %s\n", what, substr, dlcl_status_str(s),
           dlcl_last_error());
    return false;
}

/* Each refused call names the operand and launches nothing: C keeps its sentinel values. */
static void gemm_rejects_calls_that_overrun_a_buffer(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    int64_t d = 7 * 13;
    float sentinel[7 * 13], after[7 * 13];
    for (int i = 0; i < 7 * 13; i++) sentinel[i] = 1000.0f + (float)i;
    dlcl_tensor *a = NULL, *b = NULL, *c = NULL;
    dlcl_status s = dlcl_tensor_create(ctx, 1, &d, &a);
    if (s == DLCL_OK) s = dlcl_tensor_create(ctx, 1, &d, &b);
    if (s == DLCL_OK) s = dlcl_tensor_create(ctx, 1, &d, &c);
    if (s == DLCL_OK) s = dlcl_tensor_upload(a, sentinel, 0, 7 * 13);
    if (s == DLCL_OK) s = dlcl_tensor_upload(b, sentinel, 0, 7 * 13);
    if (s == DLCL_OK) s = dlcl_tensor_upload(c, sentinel, 0, 7 * 13);
    bool all = s == DLCL_OK;
    /* 7x13 = A(7x5) B(5x13) fits each 91-float buffer; each call below breaks one bound */
    all &= refused(dlcl_sgemm(ctx, 0, 0, 7, 13, 13, 1, a, 0, 13, b, 0, 13, 0, c, 0, 13), "B 13x13", "B (13 x 13");
    all &= refused(dlcl_sgemm(ctx, 0, 0, 7, 13, 5, 1, a, 0, 5, b, 0, 13, 0, c, 1, 13), "C + 1", "C (7 x 13, offset 1,");
    all &= refused(dlcl_sgemm(ctx, 0, 0, 7, 13, 5, 1, a, 0, 4, b, 0, 13, 0, c, 0, 13), "lda < k", "ldA = 4");
    all &= refused(dlcl_sgemm(ctx, 0, 0, 7, 13, 5, 1, a, 91, 5, b, 0, 13, 0, c, 0, 13), "A+91", "A (7 x 5, offset 91,");
    all &= refused(dlcl_sgemm(ctx, 0, 0, 7, 13, 5, 1, a, 0, 5, b, 0, 13, 0, c, 0, 14), "ldc 14", "ld 14");
    all &= refused(dlcl_sgemm(ctx, 0, 0, 7, 13, 5, 1, a, 0, 5, b, 0, 13, 0, c, SIZE_MAX - 10, 13), "offset wraps",
                   "runs past");
    all &= refused(dlcl_sgemm(ctx, 0, 0, 7, 13, 5, 1, a, 0, SIZE_MAX / 2, b, 0, 13, 0, c, 0, 13), "lda * rows wraps",
                   "runs past");
    all &= refused(dlcl_sgemm_strided_batched(ctx, 0, 0, 7, 13, 1, 1, a, 0, 1, 7, b, 0, 13, 13, 0, c, 0, 13, 91, 2),
                   "second C of the batch", "batch 2");
    dlcl_status sd = dlcl_tensor_download(c, after, 0, 7 * 13);
    dlcl_status ok = dlcl_sgemm(ctx, 0, 0, 7, 13, 5, 1, a, 1, 5, b, 0, 13, 0, c, 0, 13); /* A + 1 still fits */
    if (ok == DLCL_OK) ok = dlcl_sgemm(ctx, 1, 1, 7, 13, 5, 1, a, 56, 7, b, 26, 5, 0, c, 0, 13); /* both ends exact */
    dlcl_tensor_free(a), dlcl_tensor_free(b), dlcl_tensor_free(c);
    T_CHECK(all, "a call past a buffer was not refused as it should be (see above)");
    T_CHECK(sd == DLCL_OK, "download: %s", dlcl_last_error());
    T_CHECK(memcmp(sentinel, after, sizeof after) == 0, "a refused call wrote to C");
    T_CHECK(ok == DLCL_OK, "valid call: %s %s", dlcl_status_str(ok), dlcl_last_error());
}

static const t_case cases[] = {
    T_CASE(gemm_matches_ref_1x1x1),
    T_CASE(gemm_matches_ref_7x13x5_every_transpose),
    T_CASE(gemm_matches_ref_129x65x33_offsets_ld_alpha_beta),
    T_CASE(gemm_strided_batched_matches_ref),
    T_CASE(gemm_matches_ref_on_full_and_edge_tiles),
    T_CASE(gemm_beta_zero_ignores_nan_in_c),
    T_CASE(thin_gemm_matches_ref),
    T_CASE(gemm_rejects_calls_that_overrun_a_buffer),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
