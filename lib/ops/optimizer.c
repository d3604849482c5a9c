/* Optimizer launchers (optimizer.cl): one launch over the whole flat parameter buffer. */
#include "ops.h"

#define SGD_SPAN 4096

dlcl_status op_sgd_step(dlcl_ctx *ctx, op_buf w, op_buf grad, op_buf velocity, size_t n, float lr, float momentum,
                        float weight_decay, int nesterov)
{
    if (n > INT32_MAX) return dlcl__err(DLCL_ERR_INVALID_ARG, "sgd_step: %zu parameters exceed the kernel's int range", n);
    if (n == 0) return DLCL_OK;
    /* CPU devices: SGD_SPAN parameters per work-item (sgd_step_rows) */
    const bool rows = ctx->cpu_device && n <= (size_t)INT32_MAX - SGD_SPAN;
    const char *name = rows ? "sgd_step_rows" : "sgd_step";
    cl_kernel k;
    dlcl_status st = rt_kernel_get(ctx, "optimizer", "", name, &k);
    int ni = (int)n, wo = (int)w.off, go = (int)grad.off, vo = (int)velocity.off, nest = nesterov != 0, span = SGD_SPAN;
    if (st == DLCL_OK)
        st = rt_set_args(k, name, RT_ARG(ni), RT_ARG(w.mem), RT_ARG(wo), RT_ARG(grad.mem), RT_ARG(go),
                         RT_ARG(velocity.mem), RT_ARG(vo), RT_ARG(lr), RT_ARG(momentum), RT_ARG(weight_decay),
                         RT_ARG(nest), RT_ARGS_END);
    if (st == DLCL_OK && rows) { /* its last argument */
        cl_int err = clSetKernelArg(k, 11, sizeof span, &span);
        if (err != CL_SUCCESS) st = dlcl__cl_err(err, "clSetKernelArg (sgd_step_rows span)");
    }
    if (st != DLCL_OK) return st;
    return rt_launch_1d(ctx, k, name, rows ? (n + SGD_SPAN - 1) / SGD_SPAN : n);
}
