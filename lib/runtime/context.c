/* Context: device, OpenCL context and in-order queue, kernel sources, caches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"

#ifndef DLCL_BUILD_KERNEL_DIR
#define DLCL_BUILD_KERNEL_DIR ""
#endif
#ifndef DLCL_INSTALL_KERNEL_DIR
#define DLCL_INSTALL_KERNEL_DIR ""
#endif

void dlcl__log(const dlcl_ctx *ctx, dlcl_log_level level, const char *fmt, ...)
{
    if (ctx == NULL || ctx->log == NULL) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ctx->log(level, msg, ctx->log_user);
}

/* Work-group size for simple 1-D kernels. GPUs want a few warps per group; on a CPU
 * device (PoCL) a group is one loop that the compiler vectorises, so a larger group
 * amortises the per-group overhead. */
/* -DDLCL_FMA when the device does single-precision fused multiply-add in hardware
 * (CL_FP_FMA): kernels then call fma(), which LLVM (PoCL) lowers to one vfmadd where mad()
 * became a vmulps + vaddps pair; without it fma() would be a slow software routine, so
 * mad() stays. Measured with `dlcl-bench gemm` on the EPYC (AVX2): 1024^3 from 89-107 to
 * 128-143 GFLOP/s. */
static const char *device_defines(cl_device_id d)
{
    cl_device_fp_config fp = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL) != CL_SUCCESS) fp = 0;
    return (fp & CL_FP_FMA) ? "-DDLCL_FMA=1" : "";
}

/* Workspace floats per chunk of images in a convolution (ops/conv.c). im2col's columns are
 * written and then read once by the GEMM: on a CPU the round trip is to memory unless the
 * chunk fits the last-level cache with room to spare, an eighth of CL_DEVICE_GLOBAL_MEM_
 * CACHE_SIZE (PoCL reports L3). Measured with `dlcl-bench examples/fashion_vgg.ini` on the
 * EPYC (32 MiB L3), step time by chunk size in floats, two runs each: 16M 121-165 ms, 2M
 * 87-125, 1M 93-119, 0.5M 99-101; LeNet 89-128, 71-109, 77-91, 73-81. A GPU keeps the large
 * chunk: its cache is small beside its bandwidth, and each chunk is a round of launches. */
static size_t choose_conv_chunk(cl_device_id d, const dlcl_device_info *info)
{
    if (strcmp(info->type, "CPU") != 0) return (size_t)16 << 20;
    cl_ulong cache = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_CACHE_SIZE, sizeof cache, &cache, NULL) != CL_SUCCESS || cache == 0)
        cache = (cl_ulong)32 << 20;
    size_t floats = (size_t)(cache / 8 / sizeof(float));
    return floats < ((size_t)1 << 18) ? (size_t)1 << 18 : floats;
}

static size_t choose_wg_1d(const dlcl_device_info *info)
{
    size_t want = strcmp(info->type, "CPU") == 0 ? 256 : 128;
    if (want > info->max_work_group_size) want = info->max_work_group_size;
    return want ? want : 1;
}

dlcl_status dlcl_ctx_create(const dlcl_ctx_params *params, dlcl_ctx **out)
{
    if (out == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_ctx_create: out is NULL");
    *out = NULL;
    dlcl_ctx_params def = {0};
    if (params == NULL) params = &def;
    dlcl_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    ctx->log = params->log;
    ctx->log_user = params->log_user;

    dlcl_status s = rt_kernel_dir_resolve(getenv("DLCL_KERNEL_DIR"), params->kernel_dir,
                                          DLCL_BUILD_KERNEL_DIR, DLCL_INSTALL_KERNEL_DIR, &ctx->kernel_dir);
    if (s != DLCL_OK) goto fail;
    s = rt_cache_dir_resolve(params->cache_dir, params->no_cache, &ctx->cache_dir);
    if (s != DLCL_OK) goto fail;
    s = rt_device_choose(params->device, &ctx->platform, &ctx->device);
    if (s != DLCL_OK) goto fail;
    s = rt_device_query(ctx->platform, ctx->device, -1, -1, &ctx->info);
    if (s != DLCL_OK) goto fail;
    ctx->wg_1d = choose_wg_1d(&ctx->info);
    ctx->cpu_device = strcmp(ctx->info.type, "CPU") == 0;
    ctx->device_defines = device_defines(ctx->device);
    ctx->conv_chunk_floats = choose_conv_chunk(ctx->device, &ctx->info);
    const char *prof = getenv("DLCL_PROFILE");
    ctx->kprof_on = prof != NULL && prof[0] != '\0' && strcmp(prof, "0") != 0;

    cl_int err;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->platform, 0};
    ctx->context = clCreateContext(props, 1, &ctx->device, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        s = dlcl__cl_err(err, "clCreateContext");
        goto fail;
    }
    ctx->queue = clCreateCommandQueue(ctx->context, ctx->device, 0, &err);
    if (err != CL_SUCCESS) {
        s = dlcl__cl_err(err, "clCreateCommandQueue");
        goto fail;
    }
    s = rt_sources_load(ctx);
    if (s != DLCL_OK) goto fail;
    s = blas_init(ctx);
    if (s != DLCL_OK) goto fail;
    dlcl__log(ctx, DLCL_LOG_DEBUG, "device %s (%s), kernels from %s, cache %s", ctx->info.name,
              ctx->info.driver_version, ctx->kernel_dir, ctx->cache_dir ? ctx->cache_dir : "off");
    *out = ctx;
    return DLCL_OK;
fail:
    dlcl_ctx_free(ctx);
    return s;
}

void dlcl_ctx_free(dlcl_ctx *ctx)
{
    if (ctx == NULL) return;
    if (ctx->queue) clFinish(ctx->queue);
    rt_kprof_print(ctx);
    free(ctx->kprof);
    blas_free(ctx);
    fft_free(ctx);
    rt_pool_free(ctx);
    rt_programs_free(ctx);
    rt_sources_free(ctx);
    if (ctx->queue) clReleaseCommandQueue(ctx->queue);
    if (ctx->context) clReleaseContext(ctx->context);
    free(ctx->kernel_dir);
    free(ctx->cache_dir);
    free(ctx);
}

const char *dlcl_ctx_device_name(const dlcl_ctx *ctx) { return ctx ? ctx->info.name : NULL; }

const char *dlcl_ctx_kernel_dir(const dlcl_ctx *ctx) { return ctx ? ctx->kernel_dir : NULL; }

dlcl_status dlcl_ctx_get_stats(const dlcl_ctx *ctx, dlcl_ctx_stats *out)
{
    if (ctx == NULL || out == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_ctx_get_stats: ctx and out must not be NULL");
    *out = ctx->stats;
    return DLCL_OK;
}

dlcl_status dlcl_ctx_finish(dlcl_ctx *ctx)
{
    if (ctx == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_ctx_finish: ctx is NULL");
    cl_int err = clFinish(ctx->queue);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clFinish");
}
