/* Device buffer pool: freed buffers are kept and handed out again to requests that fit,
 * so a training loop allocates nothing after its first step. */
#include <stdlib.h>

#include "../internal.h"

/* A pooled buffer serves a request of at least half its size, so waste stays < 2x. */
#define POOL_FIT_RATIO 2
/* The pool keeps at most this fraction of device memory idle (1/POOL_IDLE_DIV). */
#define POOL_IDLE_DIV 4

dlcl_status rt_buffer_acquire(dlcl_ctx *ctx, size_t bytes, const char *what, cl_mem *out)
{
    *out = NULL;
    if (bytes == 0) bytes = 4; /* OpenCL forbids empty buffers */
    if (bytes > ctx->info.max_alloc_bytes)
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY,
                         "%s needs %zu bytes (%.1f MiB), more than this device's largest buffer "
                         "(CL_DEVICE_MAX_MEM_ALLOC_SIZE = %.1f MiB on %s)",
                         what ? what : "buffer", bytes, bytes / 1048576.0,
                         ctx->info.max_alloc_bytes / 1048576.0, ctx->info.name);
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < ctx->n_pool; i++) {
        size_t b = ctx->pool[i].bytes;
        if (b >= bytes && b / POOL_FIT_RATIO <= bytes && (best == SIZE_MAX || b < ctx->pool[best].bytes))
            best = i;
    }
    if (best != SIZE_MAX) {
        *out = ctx->pool[best].mem;
        ctx->pool_bytes -= ctx->pool[best].bytes;
        ctx->pool[best] = ctx->pool[--ctx->n_pool];
        ctx->stats.pool_hits++;
        return DLCL_OK;
    }
    cl_int err;
    cl_mem m = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS) {
        dlcl__cl_err(err, "clCreateBuffer");
        return dlcl__err_prefix(err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_HOST_MEMORY
                                    ? DLCL_ERR_OUT_OF_MEMORY : DLCL_ERR_OPENCL,
                                "allocating %s (%zu bytes)", what ? what : "buffer", bytes);
    }
    ctx->stats.pool_misses++;
    *out = m;
    return DLCL_OK;
}

/* The pool books the buffer's real size: one that came from the pool may be up to
 * POOL_FIT_RATIO times larger than its borrower asked for. */
void rt_buffer_release(dlcl_ctx *ctx, cl_mem mem)
{
    if (mem == NULL) return;
    size_t bytes = 0;
    if (clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof bytes, &bytes, NULL) != CL_SUCCESS || bytes == 0) {
        clReleaseMemObject(mem); /* not a buffer the pool can book */
        return;
    }
    size_t limit = (size_t)(ctx->info.global_mem_bytes / POOL_IDLE_DIV);
    if (ctx->pool_bytes + bytes > limit) {
        clReleaseMemObject(mem);
        return;
    }
    if (ctx->n_pool == ctx->cap_pool) {
        size_t cap = ctx->cap_pool ? ctx->cap_pool * 2 : 32;
        rt_pool_entry *np = realloc(ctx->pool, cap * sizeof *np);
        if (np == NULL) {
            clReleaseMemObject(mem);
            return;
        }
        ctx->pool = np;
        ctx->cap_pool = cap;
    }
    ctx->pool[ctx->n_pool++] = (rt_pool_entry){mem, bytes};
    ctx->pool_bytes += bytes;
}

void rt_pool_free(dlcl_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_pool; i++) clReleaseMemObject(ctx->pool[i].mem);
    free(ctx->pool);
    ctx->pool = NULL;
    ctx->n_pool = ctx->cap_pool = ctx->pool_bytes = 0;
}
