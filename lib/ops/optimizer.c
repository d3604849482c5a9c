/* Optimizer launchers (optimizer.cl): each step is one launch over a flat range of
 * parameters, on CPU devices in spans of OPT_SPAN parameters per work-item (the `_rows`
 * kernels), elsewhere one work-item per parameter. */
#include <math.h>

#include "ops.h"

#define OPT_SPAN 4096
#define SUMSQ_WG 256      /* SUMSQ_WG in optimizer.cl: the largest work-group of the reductions */
#define SUMSQ_GROUPS 1024 /* work-groups of sum_squares_wg at most: its partial sums */

/* n elements from each buffer's offset must be addressable by the kernels' ints. */
static dlcl_status check_range(const char *fn, size_t n, const op_buf *b, size_t nb)
{
    if (n > INT32_MAX)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: %zu parameters exceed the kernel's int range", fn, n);
    for (size_t i = 0; i < nb; i++)
        if (b[i].off > (size_t)INT32_MAX - n)
            return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: offset %zu + %zu parameters exceed the kernel's int range", fn,
                             b[i].off, n);
    return DLCL_OK;
}

/* Sets the last arguments of a step kernel, from index `at`: the gradient scale (a dummy
 * buffer and scaled = 0 without one), then the span for the `_rows` variants. */
static dlcl_status set_tail(cl_kernel k, const char *name, cl_uint at, cl_mem gscale, cl_mem dummy, bool rows)
{
    cl_mem gs = gscale ? gscale : dummy;
    int scaled = gscale != NULL, span = OPT_SPAN;
    cl_int err = clSetKernelArg(k, at, sizeof gs, &gs);
    if (err == CL_SUCCESS) err = clSetKernelArg(k, at + 1, sizeof scaled, &scaled);
    if (err == CL_SUCCESS && rows) err = clSetKernelArg(k, at + 2, sizeof span, &span);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, name);
}

static size_t step_items(bool rows, size_t n) { return rows ? (n + OPT_SPAN - 1) / OPT_SPAN : n; }

dlcl_status op_sgd_step(dlcl_ctx *ctx, op_buf w, op_buf grad, op_buf velocity, size_t n, float lr, float momentum,
                        float weight_decay, int nesterov)
{
    return op_sgd_step_scaled(ctx, w, grad, velocity, n, lr, momentum, weight_decay, nesterov, NULL);
}

dlcl_status op_sgd_step_scaled(dlcl_ctx *ctx, op_buf w, op_buf grad, op_buf velocity, size_t n, float lr,
                               float momentum, float weight_decay, int nesterov, cl_mem gscale)
{
    const op_buf b[] = {w, grad, velocity};
    dlcl_status st = check_range("sgd_step", n, b, momentum != 0.0f ? 3 : 2);
    if (st != DLCL_OK || n == 0) return st;
    if (momentum != 0.0f && velocity.mem == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "sgd_step: momentum %g needs a velocity buffer", (double)momentum);
    const bool rows = ctx->cpu_device;
    const char *name = rows ? "sgd_step_rows" : "sgd_step";
    cl_mem v = velocity.mem ? velocity.mem : w.mem; /* not touched without momentum */
    int ni = (int)n, wo = (int)w.off, go = (int)grad.off, vo = velocity.mem ? (int)velocity.off : 0,
        nest = nesterov != 0;
    cl_kernel k;
    if ((st = rt_kernel_get(ctx, "optimizer", "", name, &k)) != DLCL_OK ||
        (st = rt_set_args(k, name, RT_ARG(ni), RT_ARG(w.mem), RT_ARG(wo), RT_ARG(grad.mem), RT_ARG(go), RT_ARG(v),
                          RT_ARG(vo), RT_ARG(lr), RT_ARG(momentum), RT_ARG(weight_decay), RT_ARG(nest),
                          RT_ARGS_END)) != DLCL_OK ||
        (st = set_tail(k, name, 11, gscale, grad.mem, rows)) != DLCL_OK)
        return st;
    return rt_launch_1d(ctx, k, name, step_items(rows, n));
}

dlcl_status op_adam_step(dlcl_ctx *ctx, op_buf w, op_buf grad, op_buf exp_avg, op_buf exp_avg_sq, size_t n, float lr,
                         float beta1, float beta2, float eps, float weight_decay, int decoupled, uint64_t step,
                         cl_mem gscale)
{
    const op_buf b[] = {w, grad, exp_avg, exp_avg_sq};
    dlcl_status st = check_range("adam_step", n, b, 4);
    if (st != DLCL_OK) return st;
    if (step < 1) return dlcl__err(DLCL_ERR_INVALID_ARG, "adam_step: step is the 1-based count of updates, got 0");
    if (!(beta1 >= 0.0f && beta1 < 1.0f && beta2 >= 0.0f && beta2 < 1.0f))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "adam_step: betas (%g, %g) must lie in [0, 1)", (double)beta1,
                         (double)beta2);
    if (n == 0) return DLCL_OK;
    /* as torch: the bias corrections in double, then single-precision scalars */
    const double bc1 = 1.0 - pow((double)beta1, (double)step), bc2 = 1.0 - pow((double)beta2, (double)step);
    float step_size = (float)((double)lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    float decay = decoupled ? (float)(1.0 - (double)lr * (double)weight_decay) : 1.0f;
    float wd = decoupled ? 0.0f : weight_decay;
    const bool rows = ctx->cpu_device;
    const char *name = rows ? "adam_step_rows" : "adam_step";
    int ni = (int)n, wo = (int)w.off, go = (int)grad.off, mo = (int)exp_avg.off, vo = (int)exp_avg_sq.off;
    cl_kernel k;
    if ((st = rt_kernel_get(ctx, "optimizer", "", name, &k)) != DLCL_OK ||
        (st = rt_set_args(k, name, RT_ARG(ni), RT_ARG(w.mem), RT_ARG(wo), RT_ARG(grad.mem), RT_ARG(go),
                          RT_ARG(exp_avg.mem), RT_ARG(mo), RT_ARG(exp_avg_sq.mem), RT_ARG(vo), RT_ARG(beta1),
                          RT_ARG(beta2), RT_ARG(eps), RT_ARG(wd), RT_ARG(decay), RT_ARG(step_size), RT_ARG(bc2_sqrt),
                          RT_ARGS_END)) != DLCL_OK ||
        (st = set_tail(k, name, 16, gscale, grad.mem, rows)) != DLCL_OK)
        return st;
    return rt_launch_1d(ctx, k, name, step_items(rows, n));
}

/* ------------------------------------------------------------------ gradient norm */

/* The work-group size of the reductions: a power of two, at most SUMSQ_WG. */
static size_t reduce_wg(const dlcl_ctx *ctx)
{
    size_t l = 1;
    while (l * 2 <= SUMSQ_WG && l * 2 <= ctx->info.max_work_group_size) l *= 2;
    return l;
}

size_t op_sum_squares_partials(const dlcl_ctx *ctx, size_t n)
{
    if (ctx->cpu_device) return (n + OPT_SPAN - 1) / OPT_SPAN;
    size_t groups = (n + reduce_wg(ctx) - 1) / reduce_wg(ctx);
    return groups < SUMSQ_GROUPS ? groups : SUMSQ_GROUPS;
}

dlcl_status op_sum_squares(dlcl_ctx *ctx, op_buf x, size_t n, op_buf partials)
{
    dlcl_status st = check_range("sum_squares", n, &x, 1);
    const size_t np = op_sum_squares_partials(ctx, n);
    if (st == DLCL_OK) st = check_range("sum_squares (partial sums)", np, &partials, 1);
    if (st != DLCL_OK || n == 0) return st;
    const bool rows = ctx->cpu_device;
    const char *name = rows ? "sum_squares_rows" : "sum_squares_wg";
    int ni = (int)n, xo = (int)x.off, po = (int)partials.off, span = OPT_SPAN;
    cl_kernel k;
    if ((st = rt_kernel_get(ctx, "optimizer", "", name, &k)) != DLCL_OK ||
        (st = rt_set_args(k, name, RT_ARG(ni), RT_ARG(x.mem), RT_ARG(xo), RT_ARG(partials.mem), RT_ARG(po),
                          RT_ARGS_END)) != DLCL_OK)
        return st;
    if (rows) {
        cl_int err = clSetKernelArg(k, 5, sizeof span, &span);
        return err == CL_SUCCESS ? rt_launch_1d(ctx, k, name, np) : dlcl__cl_err(err, name);
    }
    size_t l = reduce_wg(ctx), g = np * l;
    return rt_launch(ctx, k, name, 1, &g, &l);
}

dlcl_status op_clip_coef(dlcl_ctx *ctx, op_buf partials, size_t n_partials, float max_norm, cl_mem gscale)
{
    dlcl_status st = check_range("clip_coef", n_partials, &partials, 1);
    if (st != DLCL_OK) return st;
    if (!(max_norm >= 0.0f) || isinf(max_norm))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "clip_coef: max_norm %g is not a finite number >= 0", (double)max_norm);
    int np = (int)n_partials, po = (int)partials.off;
    cl_mem part = partials.mem ? partials.mem : gscale; /* not read when there are no partial sums */
    cl_kernel k;
    if ((st = rt_kernel_get(ctx, "optimizer", "", "clip_coef", &k)) != DLCL_OK ||
        (st = rt_set_args(k, "clip_coef", RT_ARG(np), RT_ARG(part), RT_ARG(po), RT_ARG(max_norm), RT_ARG(gscale),
                          RT_ARGS_END)) != DLCL_OK)
        return st;
    size_t l = reduce_wg(ctx);
    return rt_launch(ctx, k, "clip_coef", 1, &l, &l);
}
