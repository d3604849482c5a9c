/* Dropout launchers (dropout.cl). */
#include <math.h>

#include "ops.h"

dlcl_status op_dropout_forward(dlcl_ctx *ctx, float rate, uint64_t seed, op_buf x, op_buf y, op_buf mask, size_t n)
{
    if (!(rate >= 0.0f && rate < 1.0f))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dropout: rate %g not in [0, 1)", (double)rate);
    if (n > INT32_MAX) return dlcl__err(DLCL_ERR_INVALID_ARG, "dropout: %zu elements exceed the kernel's int range", n);
    if (n == 0) return DLCL_OK;
    cl_kernel k;
    dlcl_status st = rt_kernel_get(ctx, "dropout", "", "dropout_forward", &k);
    /* drop when hash < threshold: P(drop) = threshold / 2^32 */
    double t = ldexp((double)rate, 32);
    cl_uint threshold = t >= 4294967295.0 ? 4294967295u : (cl_uint)t;
    cl_uint lo = (cl_uint)seed, hi = (cl_uint)(seed >> 32);
    float scale = 1.0f / (1.0f - rate);
    int ni = (int)n, xo = (int)x.off, yo = (int)y.off, mo = (int)mask.off;
    if (st == DLCL_OK)
        st = rt_set_args(k, "dropout_forward", RT_ARG(ni), RT_ARG(lo), RT_ARG(hi), RT_ARG(threshold), RT_ARG(scale),
                         RT_ARG(x.mem), RT_ARG(xo), RT_ARG(y.mem), RT_ARG(yo), RT_ARG(mask.mem), RT_ARG(mo), RT_ARGS_END);
    return st == DLCL_OK ? rt_launch_1d(ctx, k, "dropout_forward", n) : st;
}

dlcl_status op_dropout_backward(dlcl_ctx *ctx, op_buf dy, op_buf mask, op_buf dx, size_t n)
{
    if (n > INT32_MAX) return dlcl__err(DLCL_ERR_INVALID_ARG, "dropout: %zu elements exceed the kernel's int range", n);
    if (n == 0) return DLCL_OK;
    cl_kernel k;
    dlcl_status st = rt_kernel_get(ctx, "dropout", "", "dropout_backward", &k);
    int ni = (int)n, dyo = (int)dy.off, mo = (int)mask.off, dxo = (int)dx.off;
    if (st == DLCL_OK)
        st = rt_set_args(k, "dropout_backward", RT_ARG(ni), RT_ARG(dy.mem), RT_ARG(dyo), RT_ARG(mask.mem), RT_ARG(mo),
                         RT_ARG(dx.mem), RT_ARG(dxo), RT_ARGS_END);
    return st == DLCL_OK ? rt_launch_1d(ctx, k, "dropout_backward", n) : st;
}
