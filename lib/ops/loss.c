/* Softmax cross-entropy launcher (loss.cl). */
#include "ops.h"

dlcl_status op_softmax_xent(dlcl_ctx *ctx, op_buf logits, cl_mem labels, int n, int classes, float grad_scale,
                            op_buf dlogits, op_buf stats)
{
    return op_softmax_xent_smooth(ctx, logits, labels, n, classes, 0.0f, grad_scale, dlogits, stats);
}

dlcl_status op_softmax_xent_smooth(dlcl_ctx *ctx, op_buf logits, cl_mem labels, int n, int classes,
                                   float label_smoothing, float grad_scale, op_buf dlogits, op_buf stats)
{
    if (n < 1 || classes < 1 || (double)n * classes > INT32_MAX)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "softmax_xent: bad shape %d x %d", n, classes);
    if (!(label_smoothing >= 0.0f && label_smoothing <= 1.0f))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "softmax_xent: label_smoothing %g is not in [0, 1]",
                         (double)label_smoothing);
    cl_kernel k;
    dlcl_status st = rt_kernel_get(ctx, "loss", "", "softmax_xent", &k);
    int zo = (int)logits.off, dzo = (int)dlogits.off, so = (int)stats.off, want_grad = dlogits.mem != NULL;
    cl_mem dz = want_grad ? dlogits.mem : logits.mem; /* unused when want_grad is 0 */
    if (st == DLCL_OK)
        st = rt_set_args(k, "softmax_xent", RT_ARG(logits.mem), RT_ARG(zo), RT_ARG(labels), RT_ARG(n), RT_ARG(classes),
                         RT_ARG(grad_scale), RT_ARG(want_grad), RT_ARG(dz), RT_ARG(dzo), RT_ARG(stats.mem), RT_ARG(so),
                         RT_ARG(label_smoothing), RT_ARGS_END);
    return st == DLCL_OK ? rt_launch_1d(ctx, k, "softmax_xent", (size_t)n) : st;
}
