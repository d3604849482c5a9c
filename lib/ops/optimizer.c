/* Optimizer launchers (optimizer.cl): one launch over the whole flat parameter buffer. */
#include "ops.h"

dlcl_status op_sgd_step(dlcl_ctx *ctx, op_buf w, op_buf grad, op_buf velocity, size_t n, float lr, float momentum,
                        float weight_decay, int nesterov)
{
    if (n > INT32_MAX) return dlcl__err(DLCL_ERR_INVALID_ARG, "sgd_step: %zu parameters exceed the kernel's int range", n);
    if (n == 0) return DLCL_OK;
    cl_kernel k;
    dlcl_status st = rt_kernel_get(ctx, "optimizer", "", "sgd_step", &k);
    int ni = (int)n, wo = (int)w.off, go = (int)grad.off, vo = (int)velocity.off, nest = nesterov != 0;
    if (st == DLCL_OK)
        st = rt_set_args(k, "sgd_step", RT_ARG(ni), RT_ARG(w.mem), RT_ARG(wo), RT_ARG(grad.mem), RT_ARG(go),
                         RT_ARG(velocity.mem), RT_ARG(vo), RT_ARG(lr), RT_ARG(momentum), RT_ARG(weight_decay),
                         RT_ARG(nest), RT_ARGS_END);
    return st == DLCL_OK ? rt_launch_1d(ctx, k, "sgd_step", n) : st;
}
