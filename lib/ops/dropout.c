/* Dropout launchers (dropout.cl). */
#include <math.h>

#include "ops.h"

static dlcl_status check(float rate, size_t n)
{
    if (!(rate >= 0.0f && rate < 1.0f))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dropout: rate %g not in [0, 1)", (double)rate);
    if (n > INT32_MAX) return dlcl__err(DLCL_ERR_INVALID_ARG, "dropout: %zu elements exceed the kernel's int range", n);
    return DLCL_OK;
}

/* drop when hash < threshold: P(drop) = threshold / 2^32 */
static cl_uint threshold_of(float rate)
{
    double t = ldexp((double)rate, 32);
    return t >= 4294967295.0 ? 4294967295u : (cl_uint)t;
}

dlcl_status op_dropout_forward(dlcl_ctx *ctx, float rate, uint64_t seed, op_buf x, op_buf y, op_buf mask, size_t n)
{
    dlcl_status st = check(rate, n);
    if (st != DLCL_OK || n == 0) return st;
    cl_kernel k;
    st = rt_kernel_get(ctx, "dropout", "", "dropout_forward", &k);
    cl_uint threshold = threshold_of(rate);
    cl_uint lo = (cl_uint)seed, hi = (cl_uint)(seed >> 32);
    float scale = 1.0f / (1.0f - rate);
    int ni = (int)n, xo = (int)x.off, yo = (int)y.off, mo = (int)mask.off;
    if (st == DLCL_OK)
        st = rt_set_args(k, "dropout_forward", RT_ARG(ni), RT_ARG(lo), RT_ARG(hi), RT_ARG(threshold), RT_ARG(scale),
                         RT_ARG(x.mem), RT_ARG(xo), RT_ARG(y.mem), RT_ARG(yo), RT_ARG(mask.mem), RT_ARG(mo), RT_ARGS_END);
    return st == DLCL_OK ? rt_launch_1d(ctx, k, "dropout_forward", n) : st;
}

dlcl_status op_dropout_apply(dlcl_ctx *ctx, float rate, uint64_t seed, op_buf x, op_buf y, size_t n)
{
    dlcl_status st = check(rate, n);
    if (st != DLCL_OK || n == 0) return st;
    cl_kernel k;
    st = rt_kernel_get(ctx, "dropout", "", "dropout_apply", &k);
    cl_uint threshold = threshold_of(rate), lo = (cl_uint)seed, hi = (cl_uint)(seed >> 32);
    float scale = 1.0f / (1.0f - rate);
    int ni = (int)n, xo = (int)x.off, yo = (int)y.off;
    if (st == DLCL_OK)
        st = rt_set_args(k, "dropout_apply", RT_ARG(ni), RT_ARG(lo), RT_ARG(hi), RT_ARG(threshold), RT_ARG(scale),
                         RT_ARG(x.mem), RT_ARG(xo), RT_ARG(y.mem), RT_ARG(yo), RT_ARGS_END);
    return st == DLCL_OK ? rt_launch_1d(ctx, k, "dropout_apply", n) : st;
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
