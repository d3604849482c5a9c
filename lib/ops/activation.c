/* Activation launchers: one kernel pair per function in activation.cl. */
#include <stdio.h>

#include "ops.h"

const char *const op_act_names[OP_ACT_COUNT + 1] = {
    [OP_ACT_LINEAR] = "linear", [OP_ACT_RELU] = "relu", [OP_ACT_SIGMOID] = "sigmoid",
    [OP_ACT_TANH] = "tanh",     [OP_ACT_GELU] = "gelu", [OP_ACT_LEAKY] = "leaky",
    [OP_ACT_GELU_TANH] = "gelu_tanh", [OP_ACT_COUNT] = NULL,
};
_Static_assert(DLCL__ARRAY_LEN(op_act_names) == OP_ACT_COUNT + 1, "one name per activation, then NULL");

static dlcl_status check(op_act act, size_t n, const char *fn)
{
    if ((int)act < 0 || act >= OP_ACT_COUNT) return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: bad activation %d", fn, (int)act);
    if (n > INT32_MAX) return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: %zu elements exceed the kernel's int range", fn, n);
    return DLCL_OK;
}

dlcl_status op_activation_forward(dlcl_ctx *ctx, op_act act, float slope, op_buf x, op_buf y, size_t n)
{
    dlcl_status s = check(act, n, "op_activation_forward");
    if (s != DLCL_OK || n == 0) return s;
    char name[64], opt[32];
    snprintf(name, sizeof name, "%s_forward", op_act_names[act]);
    cl_kernel k;
    op_half_opts(opt, sizeof opt, "X", x, "Y", y, (const char *)NULL);
    if ((s = rt_kernel_get(ctx, "activation", opt, name, &k)) != DLCL_OK) return s;
    int ni = (int)n, xo = (int)x.off, yo = (int)y.off;
    s = rt_set_args(k, name, RT_ARG(ni), RT_ARG(x.mem), RT_ARG(xo), RT_ARG(y.mem), RT_ARG(yo), RT_ARG(slope),
                    RT_ARGS_END);
    return s == DLCL_OK ? rt_launch_1d(ctx, k, name, n) : s;
}

dlcl_status op_activation_backward(dlcl_ctx *ctx, op_act act, float slope, op_buf x, op_buf y, op_buf dy, op_buf dx,
                                   size_t n)
{
    dlcl_status s = check(act, n, "op_activation_backward");
    const op_buf bufs[] = {x, y, dy, dx};
    static const char *const what[] = {"x", "y", "dy", "dx"};
    for (size_t i = 0; s == DLCL_OK && i < DLCL__ARRAY_LEN(bufs); i++)
        s = op_require_float("op_activation_backward", what[i], bufs[i]);
    if (s != DLCL_OK || n == 0) return s;
    char name[64];
    snprintf(name, sizeof name, "%s_backward", op_act_names[act]);
    cl_kernel k;
    if ((s = rt_kernel_get(ctx, "activation", "", name, &k)) != DLCL_OK) return s;
    int ni = (int)n, xo = (int)x.off, yo = (int)y.off, dyo = (int)dy.off, dxo = (int)dx.off;
    s = rt_set_args(k, name, RT_ARG(ni), RT_ARG(x.mem), RT_ARG(xo), RT_ARG(y.mem), RT_ARG(yo), RT_ARG(dy.mem),
                    RT_ARG(dyo), RT_ARG(dx.mem), RT_ARG(dxo), RT_ARG(slope), RT_ARGS_END);
    return s == DLCL_OK ? rt_launch_1d(ctx, k, name, n) : s;
}
