/* The only file that calls CLBlast. Row-major SGEMM, plain and strided-batched.
 *
 * Every call is checked against the buffers' sizes here, so a bad offset or leading
 * dimension is a clear DLCL_ERR_INVALID_ARG rather than a CLBlast code. The backend is
 * chosen per call through one switch, so a tuned parameter set (CLBlastOverrideParameters)
 * or dlcl's own GEMM kernel can be added as another blas_backend row. */
#include <clblast_c.h>
#include <stdio.h>

#include "internal.h"

static dlcl_status clblast_err(CLBlastStatusCode c, const dlcl_ctx *ctx, const blas_gemm_args *g)
{
    const char *what = "CLBlast error";
    switch (c) {
    case CLBlastOpenCLBuildProgramFailure: what = "CLBlast kernel failed to compile"; break;
    case CLBlastTempBufferAllocFailure:
    case CLBlastOpenCLOutOfResources:
    case CLBlastOpenCLOutOfHostMemory:
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "SGEMM %zux%zux%zu (batch %zu) on %s: out of memory (CLBlast %d)",
                         g->m, g->n, g->k, g->batch, ctx->info.name, (int)c);
    case CLBlastInvalidLocalMemUsage: what = "not enough local memory"; break;
    case CLBlastDatabaseError: what = "no CLBlast parameters for this device"; break;
    case CLBlastNotImplemented: what = "not implemented in CLBlast"; break;
    default:
        if ((int)c > -100) what = dlcl__cl_error_name((cl_int)c);
        break;
    }
    return dlcl__err(DLCL_ERR_BLAS, "SGEMM %zux%zux%zu (batch %zu) on %s failed: %s (CLBlast status %d)", g->m,
                     g->n, g->k, g->batch, ctx->info.name, what, (int)c);
}

/* Elements spanned by `batch` row-major rows x cols matrices with leading dim ld. */
static dlcl_status check_operand(const char *name, size_t rows, size_t cols, size_t off, size_t ld,
                                 size_t stride, size_t batch, size_t size)
{
    if (ld < cols)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "SGEMM: ld%s = %zu is smaller than the %zu columns of %s", name, ld,
                         cols, name);
    size_t span, bspan;
    if (!dlcl__mul_ok(rows - 1, ld, &span) || (span += cols) < cols ||
        !dlcl__mul_ok(batch - 1, stride, &bspan) || (span += bspan) < bspan || (span += off) < off ||
        span > size)
        return dlcl__err(DLCL_ERR_INVALID_ARG,
                         "SGEMM: %s (%zu x %zu, offset %zu, ld %zu, stride %zu, batch %zu) runs past its "
                         "buffer of %zu elements",
                         name, rows, cols, off, ld, stride, batch, size);
    return DLCL_OK;
}

static dlcl_status gemm_clblast(dlcl_ctx *ctx, const blas_gemm_args *g)
{
    CLBlastTranspose ta = g->ta == DLCL_TRANS ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastTranspose tb = g->tb == DLCL_TRANS ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastStatusCode c;
    if (g->batch == 1)
        c = CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, g->m, g->n, g->k, g->alpha, g->a, g->a_off, g->lda, g->b,
                         g->b_off, g->ldb, g->beta, g->c, g->c_off, g->ldc, &ctx->queue, NULL);
    else
        c = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, g->m, g->n, g->k, g->alpha, g->a, g->a_off,
                                       g->lda, g->a_stride, g->b, g->b_off, g->ldb, g->b_stride, g->beta, g->c,
                                       g->c_off, g->ldc, g->c_stride, g->batch, &ctx->queue, NULL);
    return c == CLBlastSuccess ? DLCL_OK : clblast_err(c, ctx, g);
}

static blas_backend choose_backend(const dlcl_ctx *ctx, const blas_gemm_args *g)
{
    (void)ctx;
    (void)g;
    return BLAS_BACKEND_CLBLAST;
}

dlcl_status blas_sgemm(dlcl_ctx *ctx, const blas_gemm_args *g)
{
    if (g->m == 0 || g->n == 0 || g->batch == 0) return DLCL_OK;
    if (g->k == 0) return dlcl__err(DLCL_ERR_INVALID_ARG, "SGEMM: k must be at least 1");
    size_t ar = g->ta ? g->k : g->m, ac = g->ta ? g->m : g->k;
    size_t br = g->tb ? g->n : g->k, bc = g->tb ? g->k : g->n;
    dlcl_status s = check_operand("A", ar, ac, g->a_off, g->lda, g->a_stride, g->batch, g->a_size);
    if (s == DLCL_OK) s = check_operand("B", br, bc, g->b_off, g->ldb, g->b_stride, g->batch, g->b_size);
    if (s == DLCL_OK) s = check_operand("C", g->m, g->n, g->c_off, g->ldc, g->c_stride, g->batch, g->c_size);
    if (s != DLCL_OK) return s;
    switch (choose_backend(ctx, g)) {
    case BLAS_BACKEND_CLBLAST: return gemm_clblast(ctx, g);
    case BLAS_BACKEND_COUNT: break;
    }
    return dlcl__err(DLCL_ERR_BLAS, "SGEMM: no backend");
}

dlcl_status dlcl_sgemm_strided_batched(dlcl_ctx *ctx, dlcl_transpose ta, dlcl_transpose tb, size_t m, size_t n,
                                       size_t k, float alpha, const dlcl_tensor *a, size_t a_off, size_t lda,
                                       size_t a_stride, const dlcl_tensor *b, size_t b_off, size_t ldb,
                                       size_t b_stride, float beta, dlcl_tensor *c, size_t c_off, size_t ldc,
                                       size_t c_stride, size_t batch)
{
    if (ctx == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_sgemm: ctx is NULL");
    if (!dlcl__tensor_ok(a) || !dlcl__tensor_ok(b) || !dlcl__tensor_ok(c))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_sgemm: invalid tensor handle for %s",
                         !dlcl__tensor_ok(a) ? "A" : !dlcl__tensor_ok(b) ? "B" : "C");
    if ((ta != DLCL_NO_TRANS && ta != DLCL_TRANS) || (tb != DLCL_NO_TRANS && tb != DLCL_TRANS))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_sgemm: transpose flag must be DLCL_NO_TRANS or DLCL_TRANS");
    if (a->ctx != ctx || b->ctx != ctx || c->ctx != ctx)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_sgemm: tensors belong to another context");
    blas_gemm_args g = {ta, tb, m, n, k, alpha, beta, a->mem, b->mem, c->mem, a_off, b_off, c_off, lda, ldb, ldc,
                        a_stride, b_stride, c_stride, batch, (size_t)a->numel, (size_t)b->numel, (size_t)c->numel};
    return blas_sgemm(ctx, &g);
}

dlcl_status dlcl_sgemm(dlcl_ctx *ctx, dlcl_transpose ta, dlcl_transpose tb, size_t m, size_t n, size_t k,
                       float alpha, const dlcl_tensor *a, size_t a_off, size_t lda, const dlcl_tensor *b,
                       size_t b_off, size_t ldb, float beta, dlcl_tensor *c, size_t c_off, size_t ldc)
{
    return dlcl_sgemm_strided_batched(ctx, ta, tb, m, n, k, alpha, a, a_off, lda, 0, b, b_off, ldb, 0, beta, c,
                                      c_off, ldc, 0, 1);
}
