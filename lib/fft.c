/* The only file that calls clFFT: batched 2-D real-to-complex and complex-to-real
 * transforms on raw buffers, for the FFT convolution (ops/conv_fft.c).
 *
 * clfftSetup and clfftTeardown act on the whole process (clFFT keeps one repository of
 * plans and compiled kernels), so the contexts that use FFTs share one setup through a
 * reference count under a mutex: the one piece of process-wide state in dlcl, because the
 * library it wraps has it. A context sets up on its first transform, not at creation.
 *
 * Plans are expensive to bake (clFFT generates and compiles OpenCL kernels; PoCL takes
 * seconds for a cold one), so each context keeps its plans, one per (height, width, batch,
 * direction), and destroys them in dlcl_ctx_free. A plan that differs from a cached one
 * only in its batch reuses clFFT's compiled kernels and bakes in milliseconds. */
#include <clFFT.h>
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

struct fft_plan {
    int nh, nw, dir;
    size_t batch;
    clfftPlanHandle handle;
};

static pthread_mutex_t setup_lock = PTHREAD_MUTEX_INITIALIZER;
static int setup_refs; /* contexts holding clfftSetup; guarded by setup_lock */

static const char *clfft_status_name(clfftStatus c)
{
    switch (c) {
    case CLFFT_BUGCHECK: return "CLFFT_BUGCHECK";
    case CLFFT_NOTIMPLEMENTED: return "CLFFT_NOTIMPLEMENTED";
    case CLFFT_TRANSPOSED_NOTIMPLEMENTED: return "CLFFT_TRANSPOSED_NOTIMPLEMENTED";
    case CLFFT_FILE_NOT_FOUND: return "CLFFT_FILE_NOT_FOUND";
    case CLFFT_FILE_CREATE_FAILURE: return "CLFFT_FILE_CREATE_FAILURE";
    case CLFFT_VERSION_MISMATCH: return "CLFFT_VERSION_MISMATCH";
    case CLFFT_INVALID_PLAN: return "CLFFT_INVALID_PLAN";
    case CLFFT_DEVICE_NO_DOUBLE: return "CLFFT_DEVICE_NO_DOUBLE";
    case CLFFT_DEVICE_MISMATCH: return "CLFFT_DEVICE_MISMATCH";
    default: return dlcl__cl_error_name((cl_int)c); /* below 4096 clFFT reuses OpenCL's codes */
    }
}

/* A failed clFFT call: its name, the transform and clFFT's status. */
static dlcl_status clfft_err(clfftStatus c, const char *call, int nh, int nw, size_t batch)
{
    dlcl_status st = c == CLFFT_OUT_OF_HOST_MEMORY || c == CLFFT_OUT_OF_RESOURCES ||
                             c == CLFFT_MEM_OBJECT_ALLOCATION_FAILURE
                         ? DLCL_ERR_OUT_OF_MEMORY
                         : DLCL_ERR_OPENCL;
    return dlcl__err(st, "%s (2-D FFT %dx%d, batch %zu) failed: %s (clFFT status %d)", call, nh, nw, batch,
                     clfft_status_name(c), (int)c);
}

static dlcl_status setup_acquire(dlcl_ctx *ctx)
{
    if (ctx->fft_setup) return DLCL_OK;
    clfftStatus c = CLFFT_SUCCESS;
    pthread_mutex_lock(&setup_lock);
    if (setup_refs == 0) {
        clfftSetupData sd;
        c = clfftInitSetupData(&sd);
        if (c == CLFFT_SUCCESS) c = clfftSetup(&sd);
    }
    if (c == CLFFT_SUCCESS) setup_refs++;
    pthread_mutex_unlock(&setup_lock);
    if (c != CLFFT_SUCCESS) return dlcl__err(DLCL_ERR_OPENCL, "clfftSetup failed: %s (clFFT status %d)",
                                             clfft_status_name(c), (int)c);
    ctx->fft_setup = 1;
    return DLCL_OK;
}

void fft_free(dlcl_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_fft_plans; i++) clfftDestroyPlan(&ctx->fft_plans[i].handle);
    free(ctx->fft_plans);
    ctx->fft_plans = NULL;
    ctx->n_fft_plans = ctx->cap_fft_plans = 0;
    if (!ctx->fft_setup) return;
    pthread_mutex_lock(&setup_lock);
    if (--setup_refs == 0) clfftTeardown();
    pthread_mutex_unlock(&setup_lock);
    ctx->fft_setup = 0;
}

int fft_good_length(int n)
{
    static const int radix[] = {2, 3, 5, 7};
    for (int m = n < 1 ? 1 : n;; m++) {
        int r = m;
        for (size_t i = 0; i < DLCL__ARRAY_LEN(radix); i++)
            while (r % radix[i] == 0) r /= radix[i];
        if (r == 1) return m;
    }
}

/* Creates and bakes a plan: real planes nh*nw floats apart <-> Hermitian half-spectra of
 * nh x (nw/2+1) interleaved complex, out of place; C2R scaled by 1/(nh*nw) (clFFT's
 * default backward scale). clFFT lists lengths fastest dimension first. */
static dlcl_status plan_bake(dlcl_ctx *ctx, fft_dir dir, int nh, int nw, size_t batch, clfftPlanHandle *out)
{
    size_t len[2] = {(size_t)nw, (size_t)nh}, rs[2] = {1, (size_t)nw}, cs[2] = {1, (size_t)nw / 2 + 1};
    size_t rd = (size_t)nh * nw, cd = (size_t)nh * (nw / 2 + 1);
    clfftPlanHandle p;
    const char *call = "clfftCreateDefaultPlan";
    clfftStatus c = clfftCreateDefaultPlan(&p, ctx->context, CLFFT_2D, len);
    if (c != CLFFT_SUCCESS) return clfft_err(c, call, nh, nw, batch);
    bool r2c = dir == FFT_R2C;
    if ((c = clfftSetPlanPrecision(p, CLFFT_SINGLE)) != CLFFT_SUCCESS) call = "clfftSetPlanPrecision";
    else if ((c = clfftSetLayout(p, r2c ? CLFFT_REAL : CLFFT_HERMITIAN_INTERLEAVED,
                                 r2c ? CLFFT_HERMITIAN_INTERLEAVED : CLFFT_REAL)) != CLFFT_SUCCESS)
        call = "clfftSetLayout";
    else if ((c = clfftSetResultLocation(p, CLFFT_OUTOFPLACE)) != CLFFT_SUCCESS) call = "clfftSetResultLocation";
    else if ((c = clfftSetPlanBatchSize(p, batch)) != CLFFT_SUCCESS) call = "clfftSetPlanBatchSize";
    else if ((c = clfftSetPlanInStride(p, CLFFT_2D, r2c ? rs : cs)) != CLFFT_SUCCESS) call = "clfftSetPlanInStride";
    else if ((c = clfftSetPlanOutStride(p, CLFFT_2D, r2c ? cs : rs)) != CLFFT_SUCCESS) call = "clfftSetPlanOutStride";
    else if ((c = clfftSetPlanDistance(p, r2c ? rd : cd, r2c ? cd : rd)) != CLFFT_SUCCESS) call = "clfftSetPlanDistance";
    else if ((c = clfftBakePlan(p, 1, &ctx->queue, NULL, NULL)) != CLFFT_SUCCESS) call = "clfftBakePlan";
    if (c != CLFFT_SUCCESS) {
        clfftDestroyPlan(&p);
        return clfft_err(c, call, nh, nw, batch);
    }
    *out = p;
    return DLCL_OK;
}

static dlcl_status plan_get(dlcl_ctx *ctx, fft_dir dir, int nh, int nw, size_t batch, clfftPlanHandle *out)
{
    for (size_t i = 0; i < ctx->n_fft_plans; i++) {
        const struct fft_plan *e = &ctx->fft_plans[i];
        if (e->nh == nh && e->nw == nw && e->batch == batch && e->dir == (int)dir) {
            *out = e->handle;
            return DLCL_OK;
        }
    }
    if (ctx->n_fft_plans == ctx->cap_fft_plans) {
        size_t cap = ctx->cap_fft_plans ? 2 * ctx->cap_fft_plans : 8;
        struct fft_plan *grown = realloc(ctx->fft_plans, cap * sizeof *grown);
        if (grown == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory (FFT plan cache)");
        ctx->fft_plans = grown;
        ctx->cap_fft_plans = cap;
    }
    dlcl_status st = setup_acquire(ctx);
    if (st == DLCL_OK) st = plan_bake(ctx, dir, nh, nw, batch, out);
    if (st != DLCL_OK) return st;
    ctx->fft_plans[ctx->n_fft_plans++] = (struct fft_plan){nh, nw, (int)dir, batch, *out};
    ctx->fft_bakes++;
    return DLCL_OK;
}

/* clFFT takes whole buffers: a region at a non-zero offset becomes a sub-buffer, which
 * OpenCL keeps alive until the commands using it finish (so it is released right away). */
static dlcl_status region(cl_mem mem, size_t off, size_t floats, cl_mem *out)
{
    size_t bytes = floats * sizeof(float), have = 0;
    cl_int err = clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof have, &have, NULL);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clGetMemObjectInfo (FFT buffer)");
    if (off > have / sizeof(float) || bytes > have - off * sizeof(float))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "FFT: %zu floats at offset %zu run past a buffer of %zu bytes", floats,
                         off, have);
    if (off == 0) {
        err = clRetainMemObject(mem);
        *out = mem;
        return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clRetainMemObject (FFT buffer)");
    }
    if (off % FFT_ALIGN_FLOATS != 0)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "FFT: offset %zu is not a multiple of %d floats", off, FFT_ALIGN_FLOATS);
    cl_buffer_region r = {off * sizeof(float), bytes};
    *out = clCreateSubBuffer(mem, 0, CL_BUFFER_CREATE_TYPE_REGION, &r, &err);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clCreateSubBuffer (FFT buffer)");
}

dlcl_status fft_2d(dlcl_ctx *ctx, fft_dir dir, int nh, int nw, size_t batch, cl_mem in, size_t in_off, cl_mem out,
                   size_t out_off)
{
    if (nh < 1 || nw < 1 || batch < 1 || fft_good_length(nh) != nh || fft_good_length(nw) != nw)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "FFT: %dx%d (batch %zu) is not a size clFFT transforms", nh, nw, batch);
    size_t rf = (size_t)nh * nw * batch, cf = (size_t)nh * (nw / 2 + 1) * 2 * batch;
    clfftPlanHandle p = 0;
    cl_mem bi = NULL, bo = NULL;
    dlcl_status st = region(in, in_off, dir == FFT_R2C ? rf : cf, &bi);
    if (st == DLCL_OK) st = region(out, out_off, dir == FFT_R2C ? cf : rf, &bo);
    if (st == DLCL_OK) st = plan_get(ctx, dir, nh, nw, batch, &p);
    if (st != DLCL_OK) goto fail;
    clfftStatus c = clfftEnqueueTransform(p, dir == FFT_R2C ? CLFFT_FORWARD : CLFFT_BACKWARD, 1, &ctx->queue, 0, NULL,
                                          NULL, &bi, &bo, NULL);
    if (c != CLFFT_SUCCESS) st = clfft_err(c, "clfftEnqueueTransform", nh, nw, batch);
fail:
    if (bi) clReleaseMemObject(bi);
    if (bo) clReleaseMemObject(bo);
    return st;
}
