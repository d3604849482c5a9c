/* Numerical guards (elementwise.cl): flag buffers that hold NaN or Inf; and the storage
 * helpers of half-precision buffers. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ops.h"

const char *op_half_opts(char *buf, size_t cap, ...)
{
    va_list ap;
    va_start(ap, cap);
    size_t len = 0;
    buf[0] = '\0';
    for (const char *name; (name = va_arg(ap, const char *)) != NULL;) {
        op_buf b = va_arg(ap, op_buf);
        int n = b.half ? snprintf(buf + len, cap - len, "%s-D%s_HALF", len ? " " : "", name) : 0;
        if (n > 0 && (size_t)n < cap - len) len += (size_t)n;
    }
    va_end(ap);
    return buf;
}

dlcl_status op_require_float(const char *fn, const char *what, op_buf b)
{
    if (!b.half) return DLCL_OK;
    return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: %s is stored as half precision, which this op does not take "
                     "(precision = fp32 runs it)", fn, what);
}

dlcl_status op_convert(dlcl_ctx *ctx, op_buf x, op_buf y, size_t n)
{
    if (n > INT32_MAX || x.off > (size_t)INT32_MAX - n || y.off > (size_t)INT32_MAX - n)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "convert: %zu values exceed the kernel's int range", n);
    if (n == 0) return DLCL_OK;
    if (!x.half && !y.half) {
        cl_int err = clEnqueueCopyBuffer(ctx->queue, x.mem, y.mem, x.off * sizeof(float), y.off * sizeof(float),
                                         n * sizeof(float), 0, NULL, NULL);
        return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clEnqueueCopyBuffer (convert)");
    }
    char opt[32];
    cl_kernel k;
    dlcl_status st = rt_kernel_get(ctx, "elementwise", op_half_opts(opt, sizeof opt, "X", x, "Y", y, (const char *)NULL),
                                   "convert", &k);
    int ni = (int)n, xo = (int)x.off, yo = (int)y.off;
    if (st == DLCL_OK)
        st = rt_set_args(k, "convert", RT_ARG(ni), RT_ARG(x.mem), RT_ARG(xo), RT_ARG(y.mem), RT_ARG(yo), RT_ARGS_END);
    return st == DLCL_OK ? rt_launch_1d(ctx, k, "convert", (n + 7) / 8) : st;
}

dlcl_status op_flag_nonfinite(dlcl_ctx *ctx, op_buf x, size_t n, cl_mem flags, int slot)
{
    if (n > INT32_MAX || x.off > (size_t)INT32_MAX - n)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "flag_nonfinite: %zu floats exceed the kernel's int range", n);
    if (n == 0) return DLCL_OK;
    cl_kernel k;
    char opt[32];
    dlcl_status st = rt_kernel_get(ctx, "elementwise", op_half_opts(opt, sizeof opt, "X", x, (const char *)NULL),
                                   "flag_nonfinite", &k);
    int ni = (int)n, off = (int)x.off;
    if (st == DLCL_OK)
        st = rt_set_args(k, "flag_nonfinite", RT_ARG(x.mem), RT_ARG(off), RT_ARG(ni), RT_ARG(flags), RT_ARG(slot),
                         RT_ARGS_END);
    return st == DLCL_OK ? rt_launch_1d(ctx, k, "flag_nonfinite", n) : st;
}
