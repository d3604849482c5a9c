/* Bias launchers (bias.cl). */
#include <string.h>

#include "ops.h"

dlcl_status op_bias_add(dlcl_ctx *ctx, op_buf y, op_buf b, int outer, int channels, int inner)
{
    size_t n = (size_t)outer * (size_t)channels * (size_t)inner;
    if (outer < 0 || channels < 1 || inner < 1 || n > INT32_MAX)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_bias_add: bad shape %d x %d x %d", outer, channels, inner);
    if (n == 0) return DLCL_OK;
    cl_kernel k;
    char opt[32];
    dlcl_status s = rt_kernel_get(ctx, "bias", op_half_opts(opt, sizeof opt, "Y", y, "B", b, (const char *)NULL),
                                  "bias_add", &k);
    int yo = (int)y.off, bo = (int)b.off, ni = (int)n;
    if (s == DLCL_OK)
        s = rt_set_args(k, "bias_add", RT_ARG(y.mem), RT_ARG(yo), RT_ARG(b.mem), RT_ARG(bo), RT_ARG(ni),
                        RT_ARG(channels), RT_ARG(inner), RT_ARGS_END);
    return s == DLCL_OK ? rt_launch_1d(ctx, k, "bias_add", n) : s;
}

dlcl_status op_bias_grad(dlcl_ctx *ctx, op_buf dy, op_buf db, int outer, int channels, int inner)
{
    return op_bias_grad_acc(ctx, dy, db, outer, channels, inner, inner, 0);
}

#define BIAS_GRAD_WG 256 /* BIAS_WG in bias.cl */

dlcl_status op_bias_grad_acc(dlcl_ctx *ctx, op_buf dy, op_buf db, int outer, int channels, int inner, int ld,
                             int accumulate)
{
    if (outer < 0 || channels < 1 || inner < 1 || ld < inner || (size_t)outer * channels * ld > INT32_MAX)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_bias_grad: bad shape %d x %d x %d", outer, channels, inner);
    dlcl_status hs = op_require_float("op_bias_grad", "dy", dy);
    if (hs != DLCL_OK) return hs;
    /* A work-item per channel; on CPU devices with long rows, bias_grad_rows, which sums a
     * row with vector loads: LeNet's conv1 gradient (32 channels x 64 images x 784) took
     * 2.3 ms with the scalar kernel on PoCL. On other devices with many values per channel,
     * bias_grad_wg: a work-group of BIAS_GRAD_WG per channel (bias.cl). */
    const bool rows = inner >= 32 && ctx->cpu_device;
    const bool group = !ctx->cpu_device && (size_t)outer * inner >= BIAS_GRAD_WG &&
                       ctx->info.max_work_group_size >= BIAS_GRAD_WG;
    const char *name = rows ? "bias_grad_rows" : group ? "bias_grad_wg" : "bias_grad";
    int dyo = (int)dy.off, dbo = (int)db.off;
    cl_kernel k;
    dlcl_status s = rt_kernel_get(ctx, "bias", "", name, &k);
    if (s == DLCL_OK)
        s = rt_set_args(k, name, RT_ARG(dy.mem), RT_ARG(dyo), RT_ARG(db.mem), RT_ARG(dbo), RT_ARG(outer),
                        RT_ARG(channels), RT_ARG(inner), RT_ARG(ld), RT_ARG(accumulate), RT_ARGS_END);
    if (s != DLCL_OK) return s;
    size_t g = (size_t)channels, l = 1;
    if (group) g *= (l = BIAS_GRAD_WG);
    if (!rows && !group) return rt_launch_1d(ctx, k, name, g);
    return rt_launch(ctx, k, name, 1, &g, &l);
}
