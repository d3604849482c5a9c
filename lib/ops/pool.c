/* Pooling launchers (pool.cl). */
#include <stdio.h>
#include <string.h>

#include "ops.h"

dlcl_status op_pool_shape_infer(op_pool_shape *s)
{
    if (s->n < 1 || s->c < 1 || s->h < 1 || s->w < 1 || s->size_h < 1 || s->size_w < 1 || s->stride_h < 1 ||
        s->stride_w < 1 || s->pad_h < 0 || s->pad_w < 0)
        return dlcl__err(DLCL_ERR_SHAPE, "pooling: every size must be positive (size %dx%d stride %dx%d pad %dx%d)",
                         s->size_h, s->size_w, s->stride_h, s->stride_w, s->pad_h, s->pad_w);
    if (2 * s->pad_h > s->size_h || 2 * s->pad_w > s->size_w)
        return dlcl__err(DLCL_ERR_SHAPE, "pooling: pad %dx%d must be at most half the %dx%d window", s->pad_h, s->pad_w,
                         s->size_h, s->size_w);
    if (s->h + 2 * s->pad_h < s->size_h || s->w + 2 * s->pad_w < s->size_w)
        return dlcl__err(DLCL_ERR_SHAPE, "pooling: the %dx%d window is larger than the %dx%d input padded by %d,%d",
                         s->size_h, s->size_w, s->h, s->w, s->pad_h, s->pad_w);
    if ((double)s->n * s->c * s->h * s->w > INT32_MAX) return dlcl__err(DLCL_ERR_SHAPE, "pooling: input exceeds 2^31 elements");
    s->p = (s->h + 2 * s->pad_h - s->size_h) / s->stride_h + 1;
    s->q = (s->w + 2 * s->pad_w - s->size_w) / s->stride_w + 1;
    return DLCL_OK;
}

#define POOL_GEOM(s) RT_ARG((s)->h), RT_ARG((s)->w), RT_ARG((s)->p), RT_ARG((s)->q), RT_ARG((s)->size_h), \
                     RT_ARG((s)->size_w), RT_ARG((s)->stride_h), RT_ARG((s)->stride_w), RT_ARG((s)->pad_h),   \
                     RT_ARG((s)->pad_w)

/* Launches over (pixels, planes) where pixels is the output (forward) or input (backward) plane. */
static dlcl_status launch(dlcl_ctx *ctx, cl_kernel k, const char *name, size_t pixels, const op_pool_shape *s)
{
    size_t g[2] = {pixels, (size_t)s->n * s->c};
    return rt_launch(ctx, k, name, 2, g, NULL);
}

/* The forwards' build options: x's and y's storage, and for a max, idx NULL (a net that
 * never runs backward) keeps no argmax. Float storage gives the options of old, so the
 * float programs stay the same binaries. */
#define POOL_OPTS 64
static const char *forward_options(char *buf, op_buf x, op_buf y, bool max, cl_mem idx)
{
    char half[32];
    op_half_opts(half, sizeof half, "X", x, "Y", y, (const char *)NULL);
    const char *arg = max && idx == NULL ? "-DPOOL_NO_ARGMAX" : "";
    snprintf(buf, POOL_OPTS, "%s%s%s", half, *half && *arg ? " " : "", arg);
    return buf;
}

/* On CPU devices the row kernels (pool.cl) run the forward passes but the 2x2/2 max, which
 * has its own row kernel, and the average's gradient, launched over (rows, planes): rows
 * of the output forward, of the input backward. */
static dlcl_status launch_rows(dlcl_ctx *ctx, const char *name, bool backward, op_buf in, op_buf out, cl_mem idx,
                               const op_pool_shape *s)
{
    cl_kernel k;
    char opts[POOL_OPTS];
    int io = (int)in.off, oo = (int)out.off;
    bool max = strcmp(name, "maxpool_forward_rows") == 0;
    const char *o = backward ? "" : forward_options(opts, in, out, max, idx);
    dlcl_status st = rt_kernel_get(ctx, "pool", o, name, &k);
    if (st == DLCL_OK && max)
        st = rt_set_args(k, name, RT_ARG(in.mem), RT_ARG(io), RT_ARG(out.mem), RT_ARG(oo), RT_ARG(idx), POOL_GEOM(s),
                         RT_ARGS_END);
    else if (st == DLCL_OK)
        st = rt_set_args(k, name, RT_ARG(in.mem), RT_ARG(io), RT_ARG(out.mem), RT_ARG(oo), POOL_GEOM(s), RT_ARGS_END);
    size_t g[2] = {(size_t)(backward ? s->h : s->p), (size_t)s->n * s->c};
    return st == DLCL_OK ? rt_launch(ctx, k, name, 2, g, NULL) : st;
}

static bool is_2x2(const op_pool_shape *s)
{
    return s->pad_h == 0 && s->pad_w == 0 && s->size_h == 2 && s->size_w == 2 && s->stride_h == 2 && s->stride_w == 2;
}

/* The backwards have no half path (half storage is for inference). */
static dlcl_status float_grads(const char *fn, op_buf dy, op_buf dx)
{
    dlcl_status st = op_require_float(fn, "dy", dy);
    return st == DLCL_OK ? op_require_float(fn, "dx", dx) : st;
}

/* idx NULL: no argmax is kept (evaluation only) */
dlcl_status op_maxpool_forward(dlcl_ctx *ctx, const op_pool_shape *s, op_buf x, op_buf y, cl_mem idx)
{
    cl_kernel k;
    char opts[POOL_OPTS];
    forward_options(opts, x, y, true, idx);
    if (ctx->cpu_device && !is_2x2(s)) return launch_rows(ctx, "maxpool_forward_rows", false, x, y, idx, s);
    if (is_2x2(s)) {
        dlcl_status st = rt_kernel_get(ctx, "pool", opts, "maxpool_forward_2x2", &k);
        int xo = (int)x.off, yo = (int)y.off;
        if (st == DLCL_OK)
            st = rt_set_args(k, "maxpool_forward_2x2", RT_ARG(x.mem), RT_ARG(xo), RT_ARG(y.mem), RT_ARG(yo), RT_ARG(idx),
                             RT_ARG(s->h), RT_ARG(s->w), RT_ARG(s->p), RT_ARG(s->q), RT_ARGS_END);
        return st == DLCL_OK ? launch(ctx, k, "maxpool_forward_2x2", (size_t)s->p, s) : st;
    }
    if (s->pad_h == 0 && s->pad_w == 0) {
        dlcl_status st = rt_kernel_get(ctx, "pool", opts, "maxpool_forward_nopad", &k);
        int xo = (int)x.off, yo = (int)y.off;
        if (st == DLCL_OK)
            st = rt_set_args(k, "maxpool_forward_nopad", RT_ARG(x.mem), RT_ARG(xo), RT_ARG(y.mem), RT_ARG(yo),
                             RT_ARG(idx), RT_ARG(s->h), RT_ARG(s->w), RT_ARG(s->p), RT_ARG(s->q), RT_ARG(s->size_h),
                             RT_ARG(s->size_w), RT_ARG(s->stride_h), RT_ARG(s->stride_w), RT_ARGS_END);
        return st == DLCL_OK ? launch(ctx, k, "maxpool_forward_nopad", (size_t)s->p * s->q, s) : st;
    }
    dlcl_status st = rt_kernel_get(ctx, "pool", opts, "maxpool_forward", &k);
    int xo = (int)x.off, yo = (int)y.off;
    if (st == DLCL_OK)
        st = rt_set_args(k, "maxpool_forward", RT_ARG(x.mem), RT_ARG(xo), RT_ARG(y.mem), RT_ARG(yo), RT_ARG(idx),
                         POOL_GEOM(s), RT_ARGS_END);
    return st == DLCL_OK ? launch(ctx, k, "maxpool_forward", (size_t)s->p * s->q, s) : st;
}

dlcl_status op_maxpool_backward(dlcl_ctx *ctx, const op_pool_shape *s, op_buf dy, cl_mem idx, op_buf dx)
{
    dlcl_status hs = float_grads("maxpool_backward", dy, dx);
    if (hs != DLCL_OK) return hs;
    cl_kernel k;
    if (ctx->cpu_device) { /* a work-item per plane, eight to a work-group */
        int dyo = (int)dy.off, dxo = (int)dx.off, planes = s->n * s->c, hw = s->h * s->w, pq = s->p * s->q;
        dlcl_status st = rt_kernel_get(ctx, "pool", "", "maxpool_backward_planes", &k);
        if (st == DLCL_OK)
            st = rt_set_args(k, "maxpool_backward_planes", RT_ARG(dy.mem), RT_ARG(dyo), RT_ARG(idx), RT_ARG(dx.mem),
                             RT_ARG(dxo), RT_ARG(planes), RT_ARG(hw), RT_ARG(pq), RT_ARGS_END);
        size_t g = (size_t)planes, l = 8;
        return st == DLCL_OK ? rt_launch(ctx, k, "maxpool_backward_planes", 1, &g, &l) : st;
    }
    if (s->stride_h >= s->size_h && s->stride_w >= s->size_w) { /* zero, then scatter: 4x fewer work-items for 2x2/2 */
        float zero = 0.0f;
        size_t nx = (size_t)s->n * s->c * s->h * s->w;
        cl_int err = clEnqueueFillBuffer(ctx->queue, dx.mem, &zero, sizeof zero, dx.off * sizeof(float),
                                         nx * sizeof(float), 0, NULL, NULL);
        if (err != CL_SUCCESS) return dlcl__cl_err(err, "clEnqueueFillBuffer (maxpool backward)");
        dlcl_status st = rt_kernel_get(ctx, "pool", "", "maxpool_backward_scatter", &k);
        int dyo = (int)dy.off, dxo = (int)dx.off;
        if (st == DLCL_OK)
            st = rt_set_args(k, "maxpool_backward_scatter", RT_ARG(dy.mem), RT_ARG(dyo), RT_ARG(idx), RT_ARG(dx.mem),
                             RT_ARG(dxo), RT_ARG(s->h), RT_ARG(s->w), RT_ARG(s->p), RT_ARG(s->q), RT_ARGS_END);
        return st == DLCL_OK ? launch(ctx, k, "maxpool_backward_scatter", (size_t)s->p * s->q, s) : st;
    }
    dlcl_status st = rt_kernel_get(ctx, "pool", "", "maxpool_backward", &k);
    int dyo = (int)dy.off, dxo = (int)dx.off;
    if (st == DLCL_OK)
        st = rt_set_args(k, "maxpool_backward", RT_ARG(dy.mem), RT_ARG(dyo), RT_ARG(idx), RT_ARG(dx.mem), RT_ARG(dxo),
                         POOL_GEOM(s), RT_ARGS_END);
    return st == DLCL_OK ? launch(ctx, k, "maxpool_backward", (size_t)s->h * s->w, s) : st;
}

dlcl_status op_avgpool_forward(dlcl_ctx *ctx, const op_pool_shape *s, op_buf x, op_buf y)
{
    /* the row kernel sums in y itself, which would round every partial sum to a half */
    if (ctx->cpu_device && !y.half) return launch_rows(ctx, "avgpool_forward_rows", false, x, y, NULL, s);
    cl_kernel k;
    char opts[POOL_OPTS];
    dlcl_status st = rt_kernel_get(ctx, "pool", forward_options(opts, x, y, false, NULL), "avgpool_forward", &k);
    int xo = (int)x.off, yo = (int)y.off;
    if (st == DLCL_OK)
        st = rt_set_args(k, "avgpool_forward", RT_ARG(x.mem), RT_ARG(xo), RT_ARG(y.mem), RT_ARG(yo), POOL_GEOM(s),
                         RT_ARGS_END);
    return st == DLCL_OK ? launch(ctx, k, "avgpool_forward", (size_t)s->p * s->q, s) : st;
}

dlcl_status op_avgpool_backward(dlcl_ctx *ctx, const op_pool_shape *s, op_buf dy, op_buf dx)
{
    dlcl_status hs = float_grads("avgpool_backward", dy, dx);
    if (hs != DLCL_OK) return hs;
    if (ctx->cpu_device) return launch_rows(ctx, "avgpool_backward_rows", true, dy, dx, NULL, s);
    cl_kernel k;
    dlcl_status st = rt_kernel_get(ctx, "pool", "", "avgpool_backward", &k);
    int dyo = (int)dy.off, dxo = (int)dx.off;
    if (st == DLCL_OK)
        st = rt_set_args(k, "avgpool_backward", RT_ARG(dy.mem), RT_ARG(dyo), RT_ARG(dx.mem), RT_ARG(dxo), POOL_GEOM(s),
                         RT_ARGS_END);
    return st == DLCL_OK ? launch(ctx, k, "avgpool_backward", (size_t)s->h * s->w, s) : st;
}

dlcl_status op_global_avgpool_forward(dlcl_ctx *ctx, int n, int c, int hw, op_buf x, op_buf y)
{
    if (n < 1 || c < 1 || hw < 1 || (double)n * c * hw > INT32_MAX)
        return dlcl__err(DLCL_ERR_SHAPE, "global_avgpool: bad shape %d x %d x %d", n, c, hw);
    cl_kernel k;
    char opts[POOL_OPTS];
    dlcl_status st = rt_kernel_get(ctx, "pool", forward_options(opts, x, y, false, NULL), "global_avgpool_forward", &k);
    int xo = (int)x.off, yo = (int)y.off, planes = n * c;
    if (st == DLCL_OK)
        st = rt_set_args(k, "global_avgpool_forward", RT_ARG(x.mem), RT_ARG(xo), RT_ARG(y.mem), RT_ARG(yo),
                         RT_ARG(planes), RT_ARG(hw), RT_ARGS_END);
    return st == DLCL_OK ? rt_launch_1d(ctx, k, "global_avgpool_forward", (size_t)planes) : st;
}

dlcl_status op_global_avgpool_backward(dlcl_ctx *ctx, int n, int c, int hw, op_buf dy, op_buf dx)
{
    if (n < 1 || c < 1 || hw < 1 || (double)n * c * hw > INT32_MAX)
        return dlcl__err(DLCL_ERR_SHAPE, "global_avgpool: bad shape %d x %d x %d", n, c, hw);
    dlcl_status st = float_grads("global_avgpool_backward", dy, dx);
    if (st != DLCL_OK) return st;
    cl_kernel k;
    st = rt_kernel_get(ctx, "pool", "", "global_avgpool_backward", &k);
    int dyo = (int)dy.off, dxo = (int)dx.off, total = n * c * hw;
    if (st == DLCL_OK)
        st = rt_set_args(k, "global_avgpool_backward", RT_ARG(dy.mem), RT_ARG(dyo), RT_ARG(dx.mem), RT_ARG(dxo),
                         RT_ARG(total), RT_ARG(hw), RT_ARGS_END);
    return st == DLCL_OK ? rt_launch_1d(ctx, k, "global_avgpool_backward", (size_t)total) : st;
}
