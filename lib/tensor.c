/* Device tensors: float32, contiguous, row-major; storage from the context's pool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

uint16_t dlcl__half_from_float(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u, e = (x >> 23) & 0xffu, m = x & 0x7fffffu;
    if (e == 0xffu) return (uint16_t)(sign | 0x7c00u | (m ? 0x200u | (m >> 13) : 0)); /* Inf, NaN (quiet) */
    int exp = (int)e - 127 + 15;
    if (exp >= 31) return (uint16_t)(sign | 0x7c00u); /* too large: infinity */
    if (exp <= 0) {                                  /* subnormal half, or zero */
        if (exp < -10) return (uint16_t)sign;
        m |= 0x800000u; /* the implicit bit */
        int shift = 14 - exp;
        uint32_t h = m >> shift, rest = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rest > halfway || (rest == halfway && (h & 1u))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)exp << 10) | (m >> 13), rest = m & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++; /* a carry into the exponent is right, up to Inf */
    return (uint16_t)(sign | h);
}

float dlcl__float_from_half(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
    if (e == 0x1fu) {
        x = sign | 0x7f800000u | (m << 13);
    } else if (e != 0) {
        x = sign | ((e - 15 + 127) << 23) | (m << 13);
    } else if (m == 0) {
        x = sign;
    } else { /* subnormal: normalise */
        int shift = 0;
        while (!(m & 0x400u)) m <<= 1, shift++;
        x = sign | ((uint32_t)(127 - 15 + 1 - shift) << 23) | ((m & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

dlcl_status dlcl_tensor_create(dlcl_ctx *ctx, int ndim, const int64_t *dims, dlcl_tensor **out)
{
    if (out == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_tensor_create: out is NULL");
    *out = NULL;
    if (ctx == NULL || dims == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_tensor_create: ctx and dims must not be NULL");
    if (ndim < 1 || ndim > DLCL_MAX_DIMS)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_tensor_create: ndim %d not in 1..%d", ndim, DLCL_MAX_DIMS);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 1)
            return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_tensor_create: dimension %d is %lld (must be >= 1)", i,
                             (long long)dims[i]);
        if (!dlcl__mul_ok(numel, (size_t)dims[i], &numel))
            return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "dlcl_tensor_create: element count overflows");
    }
    size_t bytes;
    if (!dlcl__mul_ok(numel, sizeof(float), &bytes))
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "dlcl_tensor_create: size overflows");
    dlcl_tensor *t = calloc(1, sizeof *t);
    if (t == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    dlcl_status s = rt_buffer_acquire(ctx, bytes, "tensor", &t->mem);
    if (s != DLCL_OK) {
        free(t);
        return s;
    }
    t->ctx = ctx;
    t->bytes = bytes;
    t->ndim = ndim;
    memcpy(t->dims, dims, (size_t)ndim * sizeof *dims);
    t->numel = (int64_t)numel;
    t->magic = DLCL__TENSOR_MAGIC;
    *out = t;
    return DLCL_OK;
}

void dlcl_tensor_free(dlcl_tensor *t)
{
    if (!dlcl__tensor_ok(t)) return;
    rt_buffer_release(t->ctx, t->mem);
    t->magic = 0;
    t->mem = NULL;
    free(t);
}

int dlcl_tensor_ndim(const dlcl_tensor *t) { return dlcl__tensor_ok(t) ? t->ndim : -1; }

int64_t dlcl_tensor_dim(const dlcl_tensor *t, int i)
{
    if (!dlcl__tensor_ok(t) || i < 0 || i >= t->ndim) return -1;
    return t->dims[i];
}

int64_t dlcl_tensor_numel(const dlcl_tensor *t) { return dlcl__tensor_ok(t) ? t->numel : -1; }

static dlcl_status check_range(const dlcl_tensor *t, const void *host, size_t offset, size_t count,
                               const char *fn)
{
    if (!dlcl__tensor_ok(t)) return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: invalid tensor handle", fn);
    if (host == NULL && count > 0) return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: host pointer is NULL", fn);
    if (offset > (size_t)t->numel || count > (size_t)t->numel - offset)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: range [%zu, %zu) outside tensor of %lld elements", fn,
                         offset, offset + count, (long long)t->numel);
    return DLCL_OK;
}

dlcl_status dlcl_tensor_upload(dlcl_tensor *t, const float *src, size_t offset, size_t count)
{
    dlcl_status s = check_range(t, src, offset, count, "dlcl_tensor_upload");
    if (s != DLCL_OK || count == 0) return s;
    cl_int err = clEnqueueWriteBuffer(t->ctx->queue, t->mem, CL_TRUE, offset * sizeof(float),
                                      count * sizeof(float), src, 0, NULL, NULL);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clEnqueueWriteBuffer (tensor upload)");
}

dlcl_status dlcl_tensor_download(const dlcl_tensor *t, float *dst, size_t offset, size_t count)
{
    dlcl_status s = check_range(t, dst, offset, count, "dlcl_tensor_download");
    if (s != DLCL_OK || count == 0) return s;
    cl_int err = clEnqueueReadBuffer(t->ctx->queue, t->mem, CL_TRUE, offset * sizeof(float),
                                     count * sizeof(float), dst, 0, NULL, NULL);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clEnqueueReadBuffer (tensor download)");
}

dlcl_status dlcl_tensor_fill(dlcl_tensor *t, float value)
{
    if (!dlcl__tensor_ok(t)) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_tensor_fill: invalid tensor handle");
    if (t->numel > INT32_MAX)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_tensor_fill: %lld elements exceed the kernel's int range",
                         (long long)t->numel);
    cl_kernel k;
    dlcl_status s = rt_kernel_get(t->ctx, "elementwise", "", "fill", &k);
    if (s != DLCL_OK) return s;
    int n = (int)t->numel;
    s = rt_set_args(k, "fill", RT_ARG(t->mem), RT_ARG(n), RT_ARG(value), RT_ARGS_END);
    if (s != DLCL_OK) return s;
    return rt_launch_1d(t->ctx, k, "fill", (size_t)n);
}
