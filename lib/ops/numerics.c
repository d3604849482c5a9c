/* Numerical guards (elementwise.cl): flag buffers that hold NaN or Inf. */
#include "ops.h"

dlcl_status op_flag_nonfinite(dlcl_ctx *ctx, op_buf x, size_t n, cl_mem flags, int slot)
{
    if (n > INT32_MAX || x.off > (size_t)INT32_MAX - n)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "flag_nonfinite: %zu floats exceed the kernel's int range", n);
    if (n == 0) return DLCL_OK;
    cl_kernel k;
    dlcl_status st = rt_kernel_get(ctx, "elementwise", "", "flag_nonfinite", &k);
    int ni = (int)n, off = (int)x.off;
    if (st == DLCL_OK)
        st = rt_set_args(k, "flag_nonfinite", RT_ARG(x.mem), RT_ARG(off), RT_ARG(ni), RT_ARG(flags), RT_ARG(slot),
                         RT_ARGS_END);
    return st == DLCL_OK ? rt_launch_1d(ctx, k, "flag_nonfinite", n) : st;
}
