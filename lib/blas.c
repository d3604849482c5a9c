/* The only file that calls CLBlast. Row-major SGEMM, plain and strided-batched.
 *
 * Every call is checked against the buffers' sizes here, so a bad offset or leading
 * dimension is a clear DLCL_ERR_INVALID_ARG rather than a CLBlast code. The backend is
 * chosen per context: CLBlast, or dlcl's own kernel (gemm.cl), which is the default on CPU
 * devices, where CLBlast's generic kernels reach a fraction of the machine (see the note
 * in gemm.cl and the figures of `dlcl-bench gemm`). DLCL_GEMM=clblast|dlcl overrides. */
#include <clblast_c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "ops/ops.h" /* op_convert, for half-precision operands */

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
    return dlcl__err(DLCL_ERR_BLAS, "SGEMM %zux%zux%zu (batch %zu) on %s failed: %s (CLBlast status %d)%s%s%s", g->m,
                     g->n, g->k, g->batch, ctx->info.name, what, (int)c,
                     ctx->blas_tuning_path ? "; CLBlast runs with the tuned parameters of " : "",
                     ctx->blas_tuning_path ? ctx->blas_tuning_path : "",
                     ctx->blas_tuning_path ? " (dlcl-tune --clear removes them)" : "");
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

/* Applies the device's stored tuning (dlcl-tune) before the context's first CLBlast call.
 * CLBlast keeps overrides per cl_device_id for the whole process, so a later context on
 * the same device sees them too; applying them again is harmless. Nothing here fails the
 * GEMM: no tuning, a damaged file or a set CLBlast rejects leaves CLBlast's own defaults
 * for that kernel, with a warning for the latter two. */
static void apply_tuning(dlcl_ctx *ctx)
{
    ctx->blas_tuning_done = 1;
    if (ctx->cache_dir == NULL) return; /* DLCL_NO_CACHE: no stored tuning either */
    char path[4096] = "", applied[512] = "";
    dlcl_tuning *t = NULL;
    dlcl_status s = dlcl_tuning_load(&ctx->info, ctx->cache_dir, &t, path, sizeof path);
    if (s == DLCL_ERR_NOT_FOUND) {
        dlcl__log(ctx, DLCL_LOG_DEBUG, "CLBlast: no stored tuning for %s, using CLBlast's defaults", ctx->info.name);
    } else if (s != DLCL_OK) {
        dlcl__log(ctx, DLCL_LOG_WARN, "CLBlast: ignoring the stored tuning (%s): %s; using CLBlast's defaults "
                  "(rerun dlcl-tune, or dlcl-tune --clear)", dlcl_status_str(s), dlcl_last_error());
    }
    size_t len = 0;
    for (size_t i = 0; i < dlcl_tuning_count(t); i++) {
        dlcl_tuning_kernel k;
        if (dlcl_tuning_get(t, i, &k) != DLCL_OK) break;
        CLBlastStatusCode c = CLBlastOverrideParameters(ctx->device, k.kernel, CLBlastPrecisionSingle, k.n_params,
                                                        (const char **)k.names, k.values);
        if (c != CLBlastSuccess) {
            dlcl__log(ctx, DLCL_LOG_WARN, "CLBlast rejected the tuned parameters for %s (status %d%s) from %s; "
                      "it keeps its defaults for that kernel", k.kernel, (int)c,
                      c == CLBlastMissingOverrideParameter ? ": parameters missing, a tuning from another CLBlast "
                      "version?" : c == CLBlastInvalidOverrideKernel ? ": unknown kernel" : "", path);
            continue;
        }
        int n = snprintf(applied + len, sizeof applied - len, "%s%s (%zu parameters, %.3g ms)", len ? ", " : "",
                         k.kernel, k.n_params, k.time_ms);
        if (n > 0) len = (size_t)n >= sizeof applied - len ? sizeof applied - 1 : len + (size_t)n;
    }
    if (len > 0) {
        dlcl__log(ctx, DLCL_LOG_INFO, "CLBlast: applied tuned parameters for %s from %s: %s", ctx->info.name, path,
                  applied);
        ctx->blas_tuning_path = strdup(path); /* NULL on failure: only the error message loses it */
    }
    dlcl_tuning_free(t);
    dlcl__clear_error();
}

static dlcl_status clblast_gemm(dlcl_ctx *ctx, const blas_gemm_args *g)
{
    if (!ctx->blas_tuning_done) apply_tuning(ctx);
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

static dlcl_status sum_parts(dlcl_ctx *ctx, cl_mem part, size_t chunks, const blas_gemm_args *g);

/* CLBlast gives a small C a handful of work-groups, each running the whole k, however many
 * compute units the device has. A conv's filter gradient is such a product: on an H100
 * (132 units) LeNet's conv1 backward (32 x 25 over k = 64 images x 784 pixels) took 3.75 ms
 * of a 6.2 ms step. So when C has fewer CLBLAST_TILE-square tiles than the device has units,
 * k is cut into chunks (at least SPLITK_MIN_K long) computed as one strided-batched product
 * into partial Cs, which sum_parts adds up; the rest of k is added to C afterwards. */
#define CLBLAST_TILE 64
#define SPLITK_MIN_K 256

static size_t clblast_splitk_chunks(const dlcl_ctx *ctx, const blas_gemm_args *g)
{
    size_t tiles = (g->m + CLBLAST_TILE - 1) / CLBLAST_TILE * ((g->n + CLBLAST_TILE - 1) / CLBLAST_TILE);
    size_t units = ctx->info.compute_units ? ctx->info.compute_units : 1;
    if (g->batch != 1 || tiles >= units || g->c_off + g->m * g->ldc > (size_t)INT32_MAX) return 0; /* sum_parts: int */
    size_t want = (2 * units + tiles - 1) / tiles, most = g->k / SPLITK_MIN_K;
    size_t chunks = want < most ? want : most;
    return chunks >= 4 ? chunks : 0;
}

typedef dlcl_status (*gemm_fn)(dlcl_ctx *ctx, const blas_gemm_args *g);

/* C = A B with k cut into `chunks` chunks of kc: one batched product `run` into partial Cs,
 * summed by sum_parts, then the rest of k added to C by `run`. ka, kb: the distance between
 * two k of A, of B (as run reads them). */
static dlcl_status gemm_splitk(dlcl_ctx *ctx, const blas_gemm_args *g, size_t chunks, size_t kc, size_t ka, size_t kb,
                               gemm_fn run)
{
    size_t mn = g->m * g->n, bytes = chunks * mn * sizeof(float), done = chunks * kc;
    cl_mem part = NULL;
    dlcl_status s = rt_buffer_acquire(ctx, bytes, "GEMM split-k partial products", &part);
    /* partial z = A[:, z*kc ...] B[z*kc ..., :], a batch of chunks */
    blas_gemm_args h = *g;
    h.k = kc, h.alpha = 1.0f, h.beta = 0.0f, h.a_stride = kc * ka, h.b_stride = kc * kb, h.batch = chunks;
    h.c = part, h.c_off = 0, h.ldc = g->n, h.c_stride = mn;
    if (s == DLCL_OK) s = run(ctx, &h);
    if (s == DLCL_OK) s = sum_parts(ctx, part, chunks, g);
    if (part) rt_buffer_release(ctx, part); /* in-order queue: a later user runs after */
    if (s == DLCL_OK && done < g->k) { /* the rest of k, added to C */
        h = *g;
        h.k = g->k - done, h.a_off += done * ka, h.b_off += done * kb, h.beta = 1.0f;
        s = run(ctx, &h);
    }
    return s;
}

static dlcl_status gemm_clblast(dlcl_ctx *ctx, const blas_gemm_args *g)
{
    size_t chunks = clblast_splitk_chunks(ctx, g);
    if (chunks == 0) return clblast_gemm(ctx, g);
    return gemm_splitk(ctx, g, chunks, g->k / chunks, g->ta ? g->lda : 1, g->tb ? 1 : g->ldb, clblast_gemm);
}

const char *const blas_backend_names[BLAS_BACKEND_COUNT] = {"auto", "clblast", "dlcl"};

dlcl_status blas_init(dlcl_ctx *ctx)
{
    const char *v = getenv("DLCL_GEMM");
    cl_uint vw = 0;
    ctx->gemm_backend = BLAS_BACKEND_AUTO;
    if (clGetDeviceInfo(ctx->device, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof vw, &vw, NULL) != CL_SUCCESS) vw = 0;
    ctx->gemm_vector_width = (int)vw;
    ctx->gemm_half_native = !ctx->cpu_device; /* see reads_half_a */
    if (v == NULL || v[0] == '\0') return DLCL_OK;
    for (int i = 0; i < BLAS_BACKEND_COUNT; i++)
        if (strcmp(v, blas_backend_names[i]) == 0) {
            ctx->gemm_backend = i;
            return DLCL_OK;
        }
    return dlcl__err(DLCL_ERR_INVALID_ARG, "DLCL_GEMM='%s': expected auto, clblast or dlcl", v);
}

void blas_free(dlcl_ctx *ctx)
{
    if (ctx->blas_scratch) rt_buffer_release(ctx, ctx->blas_scratch);
    if (ctx->blas_pack) rt_buffer_release(ctx, ctx->blas_pack);
    if (ctx->blas_wide) rt_buffer_release(ctx, ctx->blas_wide);
    ctx->blas_scratch = ctx->blas_pack = ctx->blas_wide = NULL;
    ctx->blas_wide_bytes = 0;
    free(ctx->blas_tuning_path);
    ctx->blas_tuning_path = NULL;
    ctx->blas_scratch_bytes = ctx->blas_pack_bytes = 0;
}

static bool fits_int(size_t v) { return v <= (size_t)INT32_MAX; }

static blas_backend choose_backend(const dlcl_ctx *ctx, const blas_gemm_args *g)
{
    /* the kernels index with int: anything larger goes to CLBlast. An operand stored with
     * R rows of leading dimension ld spans R * ld elements past its offset. */
    size_t rows_a = g->ta ? g->k : g->m, rows_b = g->tb ? g->n : g->k;
    size_t span_a = g->a_off + g->a_stride * (g->batch - 1), span_b = g->b_off + g->b_stride * (g->batch - 1),
           span_c = g->c_off + g->c_stride * (g->batch - 1);
    bool small = fits_int(span_a + rows_a * g->lda) && fits_int(span_b + rows_b * g->ldb) &&
                 fits_int(span_c + g->m * g->ldc) && fits_int(g->batch * (g->m * g->k + g->n * g->k + g->n * g->m));
    if (ctx->gemm_backend == BLAS_BACKEND_CLBLAST || !small) return BLAS_BACKEND_CLBLAST;
    if (ctx->gemm_backend == BLAS_BACKEND_DLCL) return BLAS_BACKEND_DLCL;
    return strcmp(ctx->info.type, "CPU") == 0 ? BLAS_BACKEND_DLCL : BLAS_BACKEND_CLBLAST;
}

static dlcl_status scratch(dlcl_ctx *ctx, size_t floats)
{
    size_t bytes = floats * sizeof(float);
    if (bytes <= ctx->blas_scratch_bytes) return DLCL_OK;
    if (ctx->blas_scratch) rt_buffer_release(ctx, ctx->blas_scratch);
    ctx->blas_scratch = NULL, ctx->blas_scratch_bytes = 0;
    bytes += bytes / 4; /* grow with headroom: batches vary */
    dlcl_status s = rt_buffer_acquire(ctx, bytes, "GEMM transpose scratch", &ctx->blas_scratch);
    if (s == DLCL_OK) ctx->blas_scratch_bytes = bytes;
    return s;
}

dlcl_status blas_transpose(dlcl_ctx *ctx, cl_mem in, size_t io, size_t ld_in, size_t s_in, size_t rows, size_t cols,
                           size_t batch, cl_mem out, size_t oo, size_t ld_out, size_t s_out)
{
    cl_kernel k;
    dlcl_status s = rt_kernel_get(ctx, "gemm", "", "transpose", &k);
    int r = (int)rows, c = (int)cols, ioi = (int)io, ldi = (int)ld_in, si = (int)s_in, ooi = (int)oo, ldo = (int)ld_out,
        so = (int)s_out;
    if (s == DLCL_OK)
        s = rt_set_args(k, "transpose", RT_ARG(r), RT_ARG(c), RT_ARG(in), RT_ARG(ioi), RT_ARG(ldi), RT_ARG(si),
                        RT_ARG(out), RT_ARG(ooi), RT_ARG(ldo), RT_ARG(so), RT_ARGS_END);
    size_t gs[3] = {(cols + 7) / 8, (rows + 7) / 8, batch};
    return s == DLCL_OK ? rt_launch(ctx, k, "transpose", 3, gs, NULL) : s;
}

static dlcl_status gemm_nn_kernel(dlcl_ctx *ctx, const blas_gemm_args *g);

/* C = A B^T with B much larger than A (a dense layer's forward: B is the weight matrix):
 * packing B^T would move all of B each call, so compute D = B A^T (only the small A is
 * packed) and transpose the small D into C. */
static bool wide_nt(const blas_gemm_args *g)
{
    return !g->ta && g->tb && g->batch == 1 && g->beta == 0.0f && g->n >= 4 * g->m;
}

static dlcl_status gemm_wide_nt(dlcl_ctx *ctx, const blas_gemm_args *g)
{
    size_t km = g->k * g->m;
    dlcl_status s = scratch(ctx, km + g->n * g->m);
    if (s == DLCL_OK) s = blas_transpose(ctx, g->a, g->a_off, g->lda, 0, g->m, g->k, 1, ctx->blas_scratch, 0, g->m, 0);
    blas_gemm_args d = {DLCL_NO_TRANS, DLCL_NO_TRANS, g->n, g->m, g->k, g->alpha, 0.0f, g->b, ctx->blas_scratch,
                        ctx->blas_scratch, g->b_off, 0, km, g->ldb, g->m, g->m, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    if (s == DLCL_OK) s = gemm_nn_kernel(ctx, &d);
    if (s == DLCL_OK) s = blas_transpose(ctx, ctx->blas_scratch, km, g->m, 0, g->n, g->m, 1, g->c, g->c_off, g->ldc, 0);
    return s;
}

static bool b_wants_panels(const dlcl_ctx *ctx, const blas_gemm_args *g);

/* Transposed operands are packed into scratch (O(mk + kn) work against the O(mnk) product),
 * so one kernel, NN, serves every layout. A transposed B that the tile kernels would pack
 * into strips anyway is transposed straight into them: one launch instead of a transpose
 * and a pack per k block (a conv's filter gradient, dW^T = col dz^T, chunk by chunk). */
/* A product of at most GEMV_MAX_M rows of A by a weight matrix, on a CPU (one position of a
 * sequence while generating): the tile kernels would compute 4 or 8 rows for each; these
 * read each float of B once (sgemv_nt / sgemv_nn in gemm.cl). */
#define GEMV_MAX_M 4
static bool thin(const dlcl_ctx *ctx, const blas_gemm_args *g)
{
    return g->m <= GEMV_MAX_M && !g->ta && g->batch == 1 && g->b_panel == 0 && strcmp(ctx->info.type, "CPU") == 0;
}

/* B^T (nn.Linear's layout): sgemv_nt, a work-item per 4 rows of B. B (Conv1D's layout, k x
 * n): sgemv_nn_part over 4 chunks of k rows per compute unit, then sum_parts. */
static dlcl_status gemm_thin(dlcl_ctx *ctx, const blas_gemm_args *g)
{
    int m = (int)g->m, n = (int)g->n, kk = (int)g->k, ao = (int)g->a_off, lda = (int)g->lda, bo = (int)g->b_off,
        ldb = (int)g->ldb, co = (int)g->c_off, ldc = (int)g->ldc;
    const char *a_opt = g->a_half ? "-DA_HALF" : "";
    cl_kernel k;
    dlcl_status s;
    if (g->tb) {
        s = rt_kernel_get(ctx, "gemm", a_opt, "sgemv_nt", &k);
        if (s == DLCL_OK)
            s = rt_set_args(k, "sgemv_nt", RT_ARG(m), RT_ARG(n), RT_ARG(kk), RT_ARG(g->alpha), RT_ARG(g->a), RT_ARG(ao),
                            RT_ARG(lda), RT_ARG(g->b), RT_ARG(bo), RT_ARG(ldb), RT_ARG(g->beta), RT_ARG(g->c),
                            RT_ARG(co), RT_ARG(ldc), RT_ARGS_END);
        size_t gs[1] = {(g->n + 3) / 4};
        return s == DLCL_OK ? rt_launch(ctx, k, "sgemv_nt", 1, gs, NULL) : s;
    }
    size_t want = 4 * (ctx->info.compute_units ? ctx->info.compute_units : 1);
    size_t kc = (g->k + want - 1) / want, chunks = (g->k + kc - 1) / kc;
    int kci = (int)kc;
    s = scratch(ctx, chunks * g->m * g->n);
    if (s == DLCL_OK) s = rt_kernel_get(ctx, "gemm", a_opt, "sgemv_nn_part", &k);
    if (s == DLCL_OK)
        s = rt_set_args(k, "sgemv_nn_part", RT_ARG(m), RT_ARG(n), RT_ARG(kk), RT_ARG(kci), RT_ARG(g->a), RT_ARG(ao),
                        RT_ARG(lda), RT_ARG(g->b), RT_ARG(bo), RT_ARG(ldb), RT_ARG(ctx->blas_scratch), RT_ARGS_END);
    size_t one[1] = {1};
    if (s == DLCL_OK) s = rt_launch(ctx, k, "sgemv_nn_part", 1, &chunks, one);
    return s == DLCL_OK ? sum_parts(ctx, ctx->blas_scratch, chunks, g) : s;
}

static dlcl_status gemm_dlcl(dlcl_ctx *ctx, const blas_gemm_args *g)
{
    if (thin(ctx, g)) return gemm_thin(ctx, g);
    if (wide_nt(g)) return gemm_wide_nt(ctx, g);
    blas_gemm_args h = *g;
    size_t a_copies = g->a_stride ? g->batch : 1; /* an A shared by the batch (a conv's filters) once */
    size_t na = g->ta ? a_copies * g->m * g->k : 0, nb = g->tb ? g->batch * g->k * ((g->n + 31) / 32 * 32) : 0;
    dlcl_status s = DLCL_OK;
    if (na + nb > 0) s = scratch(ctx, na + nb);
    if (s == DLCL_OK && g->ta) { /* A stored k x m: pack A^T as m x k */
        s = blas_transpose(ctx, g->a, g->a_off, g->lda, g->a_stride, g->k, g->m, a_copies, ctx->blas_scratch, 0, g->k,
                           g->m * g->k);
        h.a = ctx->blas_scratch, h.a_off = 0, h.lda = g->k, h.a_stride = g->a_stride ? g->m * g->k : 0;
    }
    if (s == DLCL_OK && g->tb && b_wants_panels(ctx, g)) {
        /* B stored n x k: its rows j*W .. j*W+W-1 become strip j, k x W; a ragged last strip
         * is narrower for the 8 x 32 tiles, and for the R x 16 ones (NN16_KERNEL in gemm.cl)
         * the last W rows, overlapping the strip before it */
        size_t w = ctx->gemm_vector_width >= 16 ? 32 : 16, full = g->n / w, panel = w * g->k;
        bool shifted = w == 16 && g->n % w && full > 0;
        if (full > 0)
            s = blas_transpose(ctx, g->b, g->b_off, g->ldb, w * g->ldb, w, g->k, full, ctx->blas_scratch, na, w,
                               panel);
        if (s == DLCL_OK && shifted)
            s = blas_transpose(ctx, g->b, g->b_off + (g->n - w) * g->ldb, g->ldb, 0, w, g->k, 1, ctx->blas_scratch,
                               na + full * panel, w, 0);
        else if (s == DLCL_OK && g->n % w)
            s = blas_transpose(ctx, g->b, g->b_off + full * w * g->ldb, g->ldb, 0, g->n % w, g->k, 1,
                               ctx->blas_scratch, na + full * panel, w, 0);
        h.b = ctx->blas_scratch, h.b_off = na, h.ldb = w, h.b_stride = 0, h.b_panel = panel;
    } else if (s == DLCL_OK && g->tb) { /* B stored n x k: pack B^T as k x n */
        s = blas_transpose(ctx, g->b, g->b_off, g->ldb, g->b_stride, g->n, g->k, g->batch, ctx->blas_scratch, na,
                           g->n, g->k * g->n);
        h.b = ctx->blas_scratch, h.b_off = na, h.ldb = g->n, h.b_stride = g->k * g->n;
    }
    if (s != DLCL_OK) return s;
    return gemm_nn_kernel(ctx, &h);
}

/* Blocking of dlcl's GEMM on CPU devices (PoCL runs each work-item's whole k loop before
 * the next work-item): k is cut into blocks of GEMM_KB so that a work-item's 32-column strip
 * of B (GEMM_KB x 32 floats, 32 KiB) stays in L1 while neighbouring work-items reuse it, and
 * the block of the other operand they stream stays in L2. Measured with `dlcl-bench gemm` on
 * a 2-core AVX-512 Xeon (48 KiB L1d, 2 MiB L2 per core): 1024^3 from 90 to 160-186 GFLOP/s,
 * 64x800x12544 (a filter gradient) from 53 to 104; 128 and 512 were slower than 256.
 * The 16-column tiles of 8-wide devices take blocks twice as long (the same 32 KiB strip):
 * on a 2-core AMD EPYC (AVX2, 32 KiB L1d, 512 KiB L2), three runs alternating, GFLOP/s
 * 256 -> 512: 288x32x50176 41-51 -> 56-58, 576x64x12544 65-84 -> 85-100, 800x64x12544
 * 57-74 -> 75-81 (VGG's and LeNet's filter gradients), 64x3136x1024 62-73 -> 78-82,
 * 1536^3 70-74 -> 95-96; but 1024^3 fell from 85 to 73-76, because its longer block of B
 * (2 MiB) passed GEMM_STREAM_MAX and changed the traversal: the longer block is only
 * taken where it leaves the traversal as it was. */
#define GEMM_KB 256
#define GEMM_STREAM_MAX ((size_t)1 << 20) /* bytes of a streamed operand block kept in L2 */

static size_t k_block(const dlcl_ctx *ctx, const blas_gemm_args *g)
{
    if (strcmp(ctx->info.type, "CPU") != 0) return g->k;
    size_t b_block = g->n * GEMM_KB * sizeof(float);
    if (ctx->gemm_vector_width < 16 && (2 * b_block <= GEMM_STREAM_MAX || b_block > GEMM_STREAM_MAX))
        return 2 * GEMM_KB;
    return GEMM_KB;
}

/* One launch of an NN tile kernel over h's m x n (tm x tn per work-item). rows_first:
 * neighbouring work-items walk down a column strip of C (sharing B's strip, streaming A);
 * otherwise along a row strip (sharing A's rows, streaming B). B's column j is column j % pw
 * of strip j / pw, strips bps apart (see gemm.cl); pw = 0 for the whole-tile kernels, whose
 * strips are tn wide. */
static dlcl_status launch_nn(dlcl_ctx *ctx, const char *kname, size_t tm, size_t tn, int rows_first, int pw, int bps,
                             const blas_gemm_args *h)
{
    cl_kernel k;
    dlcl_status s = rt_kernel_get(ctx, "gemm", h->a_half ? "-DA_HALF" : "", kname, &k);
    int m = (int)h->m, n = (int)h->n, kk = (int)h->k, ao = (int)h->a_off, lda = (int)h->lda, sa = (int)h->a_stride,
        bo = (int)h->b_off, ldb = (int)h->ldb, sb = (int)h->b_stride, co = (int)h->c_off, ldc = (int)h->ldc,
        sc = (int)h->c_stride;
    if (s == DLCL_OK && pw == 0)
        s = rt_set_args(k, kname, RT_ARG(rows_first), RT_ARG(m), RT_ARG(n), RT_ARG(kk), RT_ARG(h->alpha), RT_ARG(h->a),
                        RT_ARG(ao), RT_ARG(lda), RT_ARG(sa), RT_ARG(h->b), RT_ARG(bo), RT_ARG(ldb), RT_ARG(bps),
                        RT_ARG(sb), RT_ARG(h->beta), RT_ARG(h->c), RT_ARG(co), RT_ARG(ldc), RT_ARG(sc), RT_ARGS_END);
    else if (s == DLCL_OK)
        s = rt_set_args(k, kname, RT_ARG(rows_first), RT_ARG(m), RT_ARG(n), RT_ARG(kk), RT_ARG(h->alpha), RT_ARG(h->a),
                        RT_ARG(ao), RT_ARG(lda), RT_ARG(sa), RT_ARG(h->b), RT_ARG(bo), RT_ARG(ldb), RT_ARG(pw),
                        RT_ARG(bps), RT_ARG(sb), RT_ARG(h->beta), RT_ARG(h->c), RT_ARG(co), RT_ARG(ldc), RT_ARG(sc),
                        RT_ARGS_END);
    size_t gs[3] = {(h->m + tm - 1) / tm, (h->n + tn - 1) / tn, h->batch}, one[3] = {1, 1, 1};
    if (!rows_first) gs[0] = (h->n + tn - 1) / tn, gs[1] = (h->m + tm - 1) / tm;
    return s == DLCL_OK ? rt_launch(ctx, k, kname, 3, gs, strcmp(ctx->info.type, "CPU") == 0 ? one : NULL) : s;
}

/* sgemm_nn_4x16 over h, with B plain or in strips of width tn (h->b_panel) */
static dlcl_status launch_edge(dlcl_ctx *ctx, size_t tn, int rows_first, const blas_gemm_args *h)
{
    int pw = h->b_panel ? (int)tn : 16, bps = h->b_panel ? (int)h->b_panel : 16;
    return launch_nn(ctx, "sgemm_nn_4x16", 4, 16, rows_first, pw, bps, h);
}

/* Copies n columns (a multiple of width) of h's B, per batch entry, into ctx->blas_pack as
 * strips of width columns, the last one ending at column h->n (pack_panels in gemm.cl). */
static dlcl_status pack_b(dlcl_ctx *ctx, const blas_gemm_args *h, size_t n, size_t width)
{
    size_t floats = h->batch * h->k * n, bytes = floats * sizeof(float);
    dlcl_status s = DLCL_OK;
    if (bytes > ctx->blas_pack_bytes) {
        if (ctx->blas_pack) rt_buffer_release(ctx, ctx->blas_pack);
        ctx->blas_pack = NULL, ctx->blas_pack_bytes = 0;
        s = rt_buffer_acquire(ctx, bytes, "GEMM packed B panels", &ctx->blas_pack);
        if (s != DLCL_OK) return s;
        ctx->blas_pack_bytes = bytes;
    }
    cl_kernel k;
    int rows = (int)h->k, cols = (int)n, all = (int)h->n, w = (int)width, bo = (int)h->b_off, ldb = (int)h->ldb,
        sb = (int)h->b_stride, so = (int)(h->k * n);
    s = rt_kernel_get(ctx, "gemm", "", "pack_panels", &k);
    if (s == DLCL_OK)
        s = rt_set_args(k, "pack_panels", RT_ARG(rows), RT_ARG(cols), RT_ARG(all), RT_ARG(w), RT_ARG(h->b), RT_ARG(bo),
                        RT_ARG(ldb), RT_ARG(sb), RT_ARG(ctx->blas_pack), RT_ARG(so), RT_ARGS_END);
    size_t gs[3] = {n, h->k, h->batch};
    return s == DLCL_OK ? rt_launch(ctx, k, "pack_panels", 3, gs, NULL) : s;
}

/* The whole tiles of C go to the big kernel for the device's vector width: 8 x 32 in
 * sixteen float16 accumulators for 16-wide units (AVX-512), 6 x 16 in twelve float8 for
 * 8-wide ones (AVX2), where the float16 accumulators spill. Measured with `dlcl-bench gemm
 * --sizes 1024,800x12560x64,288x50192x64,64x12560x800` on a 2-core AMD EPYC (AVX2), ratio
 * to OpenBLAS in the same run: 6 x 16 0.45-0.76, 8 x 32 0.54-0.66, 6 x 16 ahead on three
 * (gemm.cl gives the figures for the 4-row variant).
 *
 * When work-items walk along rows of C (!rows_first), each streams B's strips, one cache
 * line per row of B at a stride of ldb (a multiple of 4 KiB at n = 1024: every row in the
 * same L1 set). Then B is first packed into contiguous strips (pack_panels), once per k
 * block, paid back when m spans PACK_MIN_M rows: 1024^3 from 63 to 92 GFLOP/s (0.45 to 0.62
 * of OpenBLAS). Down a column (rows_first: conv's short, wide products) a strip stays in
 * cache and packing only costs: 64x12560x800 from 0.52 to 0.33. For the 8 x 32 tiles,
 * sgemm_nn_4x16, which has an edge path, takes the right and bottom strips from the plain
 * B; the R x 16 kernels take their edges themselves (gemm_nn16_tiles). */
#define PACK_MIN_M 64
static dlcl_status gemm_nn16_tiles(dlcl_ctx *ctx, int rows_first, const blas_gemm_args *g);

static dlcl_status gemm_nn_tiles(dlcl_ctx *ctx, int rows_first, const blas_gemm_args *g)
{
    if (ctx->gemm_vector_width < 16) return gemm_nn16_tiles(ctx, rows_first, g);
    const char *big = "sgemm_nn_8x32";
    size_t tm = 8, tn = 32, mb = g->m / tm * tm, nbig = g->n / tn * tn;
    if (mb == 0 || nbig == 0) return launch_edge(ctx, tn, rows_first, g);
    blas_gemm_args h = *g;
    h.m = mb, h.n = nbig;
    dlcl_status s = DLCL_OK;
    int pack = !rows_first && g->m >= PACK_MIN_M && g->b_panel == 0;
    size_t bps = g->b_panel ? g->b_panel : pack ? tn * g->k : tn;
    if (pack) {
        s = pack_b(ctx, g, nbig, tn);
        h.b = ctx->blas_pack, h.b_off = 0, h.ldb = tn, h.b_stride = g->k * nbig;
    }
    if (s == DLCL_OK) s = launch_nn(ctx, big, tm, tn, rows_first, 0, (int)bps, &h);
    if (s == DLCL_OK && nbig < g->n) { /* right strip, all rows */
        h = *g;
        h.n = g->n - nbig, h.c_off += nbig;
        h.b_off += g->b_panel ? nbig / tn * g->b_panel : nbig; /* in the last strip, at its column 0 */
        s = launch_edge(ctx, tn, rows_first, &h);
    }
    if (s == DLCL_OK && mb < g->m) { /* bottom strip, left of the right strip */
        h = *g;
        h.m = g->m - mb, h.n = nbig, h.a_off += mb * g->lda, h.c_off += mb * g->ldc;
        s = launch_edge(ctx, tn, rows_first, &h);
    }
    return s;
}

/* One launch of sgemm_nn_6x16 or sgemm_nn_4x16f over all of h's C, ragged edges included
 * (NN16_KERNEL in gemm.cl); B plain, or in 16-column strips bps apart (packed). */
static dlcl_status launch_nn16(dlcl_ctx *ctx, const char *kname, size_t tm, int rows_first, int packed, int bps,
                               const blas_gemm_args *h)
{
    cl_kernel k;
    dlcl_status s = rt_kernel_get(ctx, "gemm", h->a_half ? "-DA_HALF" : "", kname, &k);
    int m = (int)h->m, n = (int)h->n, kk = (int)h->k, ao = (int)h->a_off, lda = (int)h->lda, sa = (int)h->a_stride,
        bo = (int)h->b_off, ldb = (int)h->ldb, sb = (int)h->b_stride, co = (int)h->c_off, ldc = (int)h->ldc,
        sc = (int)h->c_stride;
    if (s == DLCL_OK)
        s = rt_set_args(k, kname, RT_ARG(rows_first), RT_ARG(m), RT_ARG(n), RT_ARG(kk), RT_ARG(h->alpha), RT_ARG(h->a),
                        RT_ARG(ao), RT_ARG(lda), RT_ARG(sa), RT_ARG(h->b), RT_ARG(bo), RT_ARG(ldb), RT_ARG(bps),
                        RT_ARG(sb), RT_ARG(packed), RT_ARG(h->beta), RT_ARG(h->c), RT_ARG(co), RT_ARG(ldc), RT_ARG(sc),
                        RT_ARGS_END);
    size_t tiles_m = (h->m + tm - 1) / tm, tiles_n = (h->n + 15) / 16, one[3] = {1, 1, 1};
    size_t gs[3] = {rows_first ? tiles_m : tiles_n, rows_first ? tiles_n : tiles_m, h->batch};
    return s == DLCL_OK ? rt_launch(ctx, k, kname, 3, gs, strcmp(ctx->info.type, "CPU") == 0 ? one : NULL) : s;
}

/* R = 6, or 4 where 4 divides m and 6's overlapping last tile (see NN16_KERNEL) would
 * recompute an eighth of m or more (m = 32: 36 rows). m = 64 and 128 (ResNet's first two
 * stages) used to take 4; 6 computes 66 and 132 rows but twelve accumulators against eight:
 * `dlcl-bench --inference examples/resnet18.ini`, alternated with the 4-row choice on the
 * EPYC, is in the README ("Inference latency"). */
size_t blas_tile_rows(size_t m)
{
    size_t waste = (m + 5) / 6 * 6 - m;
    return m % 4 == 0 && waste * 8 >= m ? 4 : 6;
}

/* Whether rows ld floats apart fall into few L1 sets: a multiple of 1 KiB (1024^3's 4 KiB).
 * Only then does packing B into strips (pack_panels) pay: a conv's columns come with rows an
 * odd number of cache lines apart (conv.c's pad_ld) or p*q long (3136, 784, 196, 49 floats),
 * which the kernels stream as they lie, and the pack, a copy of B per k block, cost ResNet-18
 * 11% of a batch-1 call (one pack per product of its 14x14 and 7x7 stages). */
static bool rows_alias(size_t ld) { return ld * sizeof(float) % 1024 == 0; }

/* 8-wide vector units: R x 16 tiles (blas_tile_rows; gemm.cl). The kernels take ragged
 * edges themselves from m >= R and n >= 16, so one launch covers C; smaller products go to
 * the guarded sgemm_nn_4x16. B is packed into strips as for the 8 x 32 tiles (see
 * gemm_nn_tiles) where its rows alias, the last strip ending at column n. */
static dlcl_status gemm_nn16_tiles(dlcl_ctx *ctx, int rows_first, const blas_gemm_args *g)
{
    size_t tm = blas_tile_rows(g->m), strips = (g->n + 15) / 16;
    if (g->m < tm || g->n < 16) return launch_edge(ctx, 16, rows_first, g);
    blas_gemm_args h = *g;
    int pack = !rows_first && g->m >= PACK_MIN_M && g->b_panel == 0 && rows_alias(g->ldb);
    size_t bps = g->b_panel ? g->b_panel : 16;
    dlcl_status s = DLCL_OK;
    if (pack) {
        s = pack_b(ctx, g, strips * 16, 16);
        h.b = ctx->blas_pack, h.b_off = 0, h.ldb = 16, h.b_stride = g->k * strips * 16, bps = 16 * g->k;
    }
    if (s != DLCL_OK) return s;
    return launch_nn16(ctx, tm == 4 ? "sgemm_nn_4x16f" : "sgemm_nn_6x16", tm, rows_first, pack || g->b_panel != 0,
                       (int)bps, &h);
}

/* stream whichever operand block is smaller; B's when both fit (measured: 1024^3 186
 * against 150 GFLOP/s, 2048^3 100 against 150 when B's block outgrows L2) */
static int rows_first(const dlcl_ctx *ctx, const blas_gemm_args *g)
{
    size_t kb = k_block(ctx, g), kbl = g->k < kb ? g->k : kb;
    return g->m < g->n || g->n * kbl * sizeof(float) > GEMM_STREAM_MAX;
}

/* Whether gemm_nn_tiles would pack g's B (k x n after any transpose) into strips: the
 * same test, for a plain (not batched) product. */
static bool b_wants_panels(const dlcl_ctx *ctx, const blas_gemm_args *g)
{
    return strcmp(ctx->info.type, "CPU") == 0 && g->batch == 1 && g->m >= PACK_MIN_M && !rows_first(ctx, g);
}

/* C = alpha A B + beta C by blocks of k (see GEMM_KB). */
static dlcl_status gemm_nn_blocked(dlcl_ctx *ctx, const blas_gemm_args *g)
{
    size_t kb = k_block(ctx, g);
    int rf = rows_first(ctx, g);
    dlcl_status s = DLCL_OK;
    for (size_t k0 = 0; s == DLCL_OK && k0 < g->k;) {
        blas_gemm_args h = *g;
        h.k = g->k - k0 < kb + kb / 2 ? g->k - k0 : kb; /* no short last block */
        h.a_off += k0, h.b_off += k0 * g->ldb;
        if (k0 > 0) h.beta = 1.0f;
        s = gemm_nn_tiles(ctx, rf, &h);
        k0 += h.k;
    }
    return s;
}

/* A small C with a long k (a first conv layer's filter gradient: 32 x 25 over k = 64 images x
 * 784 pixels) has too few tiles to keep the cores busy, and blocking k would mean hundreds of
 * launches: cut k into SPLITK_CHUNK-long chunks computed as one batched product into partial
 * Cs, then add them up. Measured on LeNet's conv1 (32 x 25 x 50176): CLBlast 7.5 ms; blocked
 * 196 launches, 9 ms. */
#define SPLITK_CHUNK 1024
#define SPLITK_MAX_TILES 64

/* C = alpha * (the sum of the chunks partial Cs in part, each m x n) + beta * C */
static dlcl_status sum_parts(dlcl_ctx *ctx, cl_mem part, size_t chunks, const blas_gemm_args *g)
{
    cl_kernel k;
    dlcl_status s = rt_kernel_get(ctx, "gemm", "", "sum_parts", &k);
    int m = (int)g->m, n = (int)g->n, np = (int)chunks, co = (int)g->c_off, ldc = (int)g->ldc;
    if (s == DLCL_OK)
        s = rt_set_args(k, "sum_parts", RT_ARG(part), RT_ARG(np), RT_ARG(m), RT_ARG(n), RT_ARG(g->alpha),
                        RT_ARG(g->beta), RT_ARG(g->c), RT_ARG(co), RT_ARG(ldc), RT_ARGS_END);
    size_t gs[2] = {g->n, g->m};
    if (s == DLCL_OK) s = rt_launch(ctx, k, "sum_parts", 2, gs, NULL);
    return s;
}

static dlcl_status gemm_nn_kernel(dlcl_ctx *ctx, const blas_gemm_args *g)
{
    size_t tiles = (g->m + 7) / 8 * ((g->n + 31) / 32) * g->batch, chunks = g->k / SPLITK_CHUNK;
    if (strcmp(ctx->info.type, "CPU") == 0 && g->batch == 1 && tiles <= SPLITK_MAX_TILES && chunks >= 4)
        return gemm_splitk(ctx, g, chunks, SPLITK_CHUNK, 1, g->ldb, gemm_nn_blocked); /* B is k x n here */
    return gemm_nn_blocked(ctx, g);
}

/* Elements an operand of `batch` rows x cols matrices (ld, stride) spans from its offset. */
static size_t span(size_t rows, size_t cols, size_t ld, size_t stride, size_t batch)
{
    return (batch - 1) * stride + (rows - 1) * ld + cols;
}

/* The half-precision operands of g widened into ctx->blas_wide (A first, then B), h the
 * same product over them: the path for backends and kernels that read floats only (see
 * reads_half_a). */
static dlcl_status widen(dlcl_ctx *ctx, const blas_gemm_args *g, blas_gemm_args *h)
{
    size_t na = g->a_half ? span(g->ta ? g->k : g->m, g->ta ? g->m : g->k, g->lda, g->a_stride, g->batch) : 0;
    size_t nb = g->b_half ? span(g->tb ? g->n : g->k, g->tb ? g->k : g->n, g->ldb, g->b_stride, g->batch) : 0;
    size_t bytes = (na + nb) * sizeof(float);
    dlcl_status s = DLCL_OK;
    if (bytes > ctx->blas_wide_bytes) {
        if (ctx->blas_wide) rt_buffer_release(ctx, ctx->blas_wide);
        ctx->blas_wide = NULL, ctx->blas_wide_bytes = 0;
        s = rt_buffer_acquire(ctx, bytes, "GEMM operands widened from half precision", &ctx->blas_wide);
        if (s != DLCL_OK) return s;
        ctx->blas_wide_bytes = bytes;
    }
    *h = *g;
    if (na > 0) s = op_convert(ctx, (op_buf){g->a, g->a_off, 1}, op_b(ctx->blas_wide, 0), na);
    if (s == DLCL_OK && nb > 0) s = op_convert(ctx, (op_buf){g->b, g->b_off, 1}, op_b(ctx->blas_wide, na), nb);
    if (na > 0) h->a = ctx->blas_wide, h->a_off = 0, h->a_half = 0, h->a_size = na;
    if (nb > 0) h->b = ctx->blas_wide, h->b_off = na, h->b_half = 0, h->b_size = na + nb;
    return s;
}

/* Whether dlcl's kernels take g's half A as it lies (the NN tile and thin kernels, built
 * with -DA_HALF, an offset counted in halves): an untransposed A beside a float B, outside
 * wide_nt, which transposes A with a kernel that reads floats. That is a conv's filters,
 * read every call: widening them first writes 4 bytes per weight and reads them back. But
 * on PoCL's CPU device a vload_half in the tile kernels' inner loop costs more than that:
 * `conv-bench --half` on the 2-core EPYC, 3x3 64->64 at 56x56: 13.7 ms read as it lies,
 * 4.1 ms widened first (float weights 6.9-7.3 ms, a loaded machine); 1x1 256->256 at 14x14:
 * 1.19 against 0.55 ms. So CPU devices widen (ctx->gemm_half_native, blas_init). */
static bool reads_half_a(const dlcl_ctx *ctx, const blas_gemm_args *g)
{
    return g->a_half && !g->b_half && !g->ta && ctx->gemm_half_native && choose_backend(ctx, g) == BLAS_BACKEND_DLCL &&
           !wide_nt(g);
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
    blas_gemm_args w;
    if ((g->a_half && !reads_half_a(ctx, g)) || g->b_half) {
        if ((s = widen(ctx, g, &w)) != DLCL_OK) return s;
        g = &w;
    }
    switch (choose_backend(ctx, g)) {
    case BLAS_BACKEND_CLBLAST: return gemm_clblast(ctx, g);
    case BLAS_BACKEND_DLCL: return gemm_dlcl(ctx, g);
    case BLAS_BACKEND_AUTO:
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
                        a_stride, b_stride, c_stride, batch, (size_t)a->numel, (size_t)b->numel, (size_t)c->numel, 0, 0, 0};
    return blas_sgemm(ctx, &g);
}

dlcl_status dlcl_sgemm(dlcl_ctx *ctx, dlcl_transpose ta, dlcl_transpose tb, size_t m, size_t n, size_t k,
                       float alpha, const dlcl_tensor *a, size_t a_off, size_t lda, const dlcl_tensor *b,
                       size_t b_off, size_t ldb, float beta, dlcl_tensor *c, size_t c_off, size_t ldc)
{
    return dlcl_sgemm_strided_batched(ctx, ta, tb, m, n, k, alpha, a, a_off, lda, 0, b, b_off, ldb, 0, beta, c,
                                      c_off, ldc, 0, 1);
}
