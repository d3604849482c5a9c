/* Combining activations (combine.cl): sums for residual connections and for the gradients
 * of an output read by several layers, copies of row blocks for concatenation, and
 * nearest-neighbour upsampling. */
#include "ops.h"

/* Elements per work-item on CPU devices (see combine.cl); 1 on GPUs. */
#define COMBINE_SPAN 4096

static dlcl_status check_n(size_t n, const char *fn)
{
    if (n > (size_t)INT32_MAX - COMBINE_SPAN)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: %zu elements exceed the kernel's int range", fn, n);
    return DLCL_OK;
}

/* Launches a span kernel over n elements; its first two arguments are n and the span. */
static dlcl_status launch_span(dlcl_ctx *ctx, cl_kernel k, const char *name, size_t n)
{
    int ni = (int)n, span = ctx->cpu_device ? COMBINE_SPAN : 1;
    cl_int err = clSetKernelArg(k, 0, sizeof ni, &ni);
    if (err == CL_SUCCESS) err = clSetKernelArg(k, 1, sizeof span, &span);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, name);
    return rt_launch_1d(ctx, k, name, (n + (size_t)span - 1) / (size_t)span);
}

dlcl_status op_add_into(dlcl_ctx *ctx, op_buf x, op_buf y, size_t n)
{
    dlcl_status st = check_n(n, "add_into");
    if (st != DLCL_OK || n == 0) return st;
    cl_kernel k;
    char opt[32];
    int xo = (int)x.off, yo = (int)y.off, zero = 0;
    op_half_opts(opt, sizeof opt, "X", x, "Y", y, (const char *)NULL);
    if ((st = rt_kernel_get(ctx, "combine", opt, "add_into", &k)) != DLCL_OK) return st;
    st = rt_set_args(k, "add_into", RT_ARG(zero), RT_ARG(zero), RT_ARG(x.mem), RT_ARG(xo), RT_ARG(y.mem), RT_ARG(yo),
                     RT_ARGS_END);
    return st == DLCL_OK ? launch_span(ctx, k, "add_into", n) : st;
}

dlcl_status op_add(dlcl_ctx *ctx, const op_buf *xs, int n_in, op_buf y, size_t n, bool relu)
{
    dlcl_status st = check_n(n, "add2");
    if (st != DLCL_OK || n == 0) return st;
    if (n_in < 2) return dlcl__err(DLCL_ERR_INVALID_ARG, "op_add: %d inputs (at least 2)", n_in);
    cl_kernel k;
    char opt[48];
    int ao = (int)xs[0].off, bo = (int)xs[1].off, yo = (int)y.off, zero = 0, r = relu && n_in == 2;
    op_half_opts(opt, sizeof opt, "A", xs[0], "B", xs[1], "Y", y, (const char *)NULL);
    if ((st = rt_kernel_get(ctx, "combine", opt, "add2", &k)) != DLCL_OK) return st;
    st = rt_set_args(k, "add2", RT_ARG(zero), RT_ARG(zero), RT_ARG(xs[0].mem), RT_ARG(ao), RT_ARG(xs[1].mem), RT_ARG(bo),
                     RT_ARG(y.mem), RT_ARG(yo), RT_ARG(r), RT_ARGS_END);
    if (st == DLCL_OK) st = launch_span(ctx, k, "add2", n);
    for (int i = 2; st == DLCL_OK && i < n_in; i++) st = op_add_into(ctx, xs[i], y, n);
    if (st != DLCL_OK || !relu || n_in == 2) return st;
    if ((st = rt_kernel_get(ctx, "combine", op_half_opts(opt, sizeof opt, "Y", y, (const char *)NULL), "relu_inplace",
                            &k)) != DLCL_OK)
        return st;
    st = rt_set_args(k, "relu_inplace", RT_ARG(zero), RT_ARG(zero), RT_ARG(y.mem), RT_ARG(yo), RT_ARGS_END);
    return st == DLCL_OK ? launch_span(ctx, k, "relu_inplace", n) : st;
}

dlcl_status op_relu_grad(dlcl_ctx *ctx, op_buf y, op_buf dy, op_buf dz, size_t n)
{
    dlcl_status st = check_n(n, "relu_grad");
    if (st == DLCL_OK) st = op_require_float("relu_grad", "y", y);
    if (st != DLCL_OK || n == 0) return st;
    cl_kernel k;
    int yo = (int)y.off, dyo = (int)dy.off, dzo = (int)dz.off, zero = 0;
    if ((st = rt_kernel_get(ctx, "combine", "", "relu_grad", &k)) != DLCL_OK) return st;
    st = rt_set_args(k, "relu_grad", RT_ARG(zero), RT_ARG(zero), RT_ARG(y.mem), RT_ARG(yo), RT_ARG(dy.mem), RT_ARG(dyo),
                     RT_ARG(dz.mem), RT_ARG(dzo), RT_ARGS_END);
    return st == DLCL_OK ? launch_span(ctx, k, "relu_grad", n) : st;
}

/* Rows of unlike storage: copy_rows converts as it copies. */
static dlcl_status convert_rows(dlcl_ctx *ctx, op_buf src, size_t src_ld, op_buf dst, size_t dst_ld, size_t rows,
                                size_t cols)
{
    size_t last = (rows - 1) * (src_ld > dst_ld ? src_ld : dst_ld) + cols;
    if (src_ld > INT32_MAX || dst_ld > INT32_MAX || rows > INT32_MAX || last > (size_t)INT32_MAX ||
        src.off > (size_t)INT32_MAX - last || dst.off > (size_t)INT32_MAX - last)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "copy_rows: %zu rows of %zu exceed the kernel's int range", rows, cols);
    cl_kernel k;
    char opt[32];
    int r = (int)rows, c = (int)cols, xo = (int)src.off, xld = (int)src_ld, yo = (int)dst.off, yld = (int)dst_ld;
    op_half_opts(opt, sizeof opt, "X", src, "Y", dst, (const char *)NULL);
    dlcl_status st = rt_kernel_get(ctx, "combine", opt, "copy_rows", &k);
    if (st == DLCL_OK)
        st = rt_set_args(k, "copy_rows", RT_ARG(r), RT_ARG(c), RT_ARG(src.mem), RT_ARG(xo), RT_ARG(xld),
                         RT_ARG(dst.mem), RT_ARG(yo), RT_ARG(yld), RT_ARGS_END);
    size_t global[2] = {cols, rows};
    return st == DLCL_OK ? rt_launch(ctx, k, "copy_rows", 2, global, NULL) : st;
}

dlcl_status op_copy_rows(dlcl_ctx *ctx, op_buf src, size_t src_ld, op_buf dst, size_t dst_ld, size_t rows,
                         size_t cols)
{
    if (rows == 0 || cols == 0) return DLCL_OK;
    if (src.half != dst.half) return convert_rows(ctx, src, src_ld, dst, dst_ld, rows, cols);
    size_t f = op_elem_bytes(src);
    if (src_ld == cols && dst_ld == cols) {
        cl_int err = clEnqueueCopyBuffer(ctx->queue, src.mem, dst.mem, src.off * f, dst.off * f, rows * cols * f, 0,
                                         NULL, NULL);
        return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clEnqueueCopyBuffer (copy_rows)");
    }
    /* a rectangle: rows of cols elements, ld apart; the buffer origins carry the offsets */
    size_t so[3] = {src.off * f, 0, 0}, dor[3] = {dst.off * f, 0, 0}, region[3] = {cols * f, rows, 1};
    cl_int err = clEnqueueCopyBufferRect(ctx->queue, src.mem, dst.mem, so, dor, region, src_ld * f, 0, dst_ld * f, 0, 0,
                                         NULL, NULL);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clEnqueueCopyBufferRect (copy_rows)");
}

static dlcl_status upsample(dlcl_ctx *ctx, const char *name, int planes, int h, int w, int s, op_buf in, op_buf out,
                            size_t rows)
{
    if ((size_t)planes * h * w * s * s > (size_t)INT32_MAX)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: the output exceeds the kernel's int range", name);
    cl_kernel k;
    char opt[32];
    int io = (int)in.off, oo = (int)out.off;
    dlcl_status st = rt_kernel_get(ctx, "combine", op_half_opts(opt, sizeof opt, "X", in, "Y", out, (const char *)NULL),
                                   name, &k);
    if (st == DLCL_OK)
        st = rt_set_args(k, name, RT_ARG(planes), RT_ARG(h), RT_ARG(w), RT_ARG(s), RT_ARG(in.mem), RT_ARG(io),
                         RT_ARG(out.mem), RT_ARG(oo), RT_ARGS_END);
    size_t global[2] = {rows, (size_t)planes};
    return st == DLCL_OK ? rt_launch(ctx, k, name, 2, global, NULL) : st;
}

dlcl_status op_upsample_nearest_forward(dlcl_ctx *ctx, int planes, int h, int w, int s, op_buf x, op_buf y)
{
    return upsample(ctx, "upsample_nearest_forward", planes, h, w, s, x, y, (size_t)h * s);
}

dlcl_status op_upsample_nearest_backward(dlcl_ctx *ctx, int planes, int h, int w, int s, op_buf dy, op_buf dx)
{
    dlcl_status st = op_require_float("upsample_nearest_backward", "dy", dy);
    if (st == DLCL_OK) st = op_require_float("upsample_nearest_backward", "dx", dx);
    return st == DLCL_OK ? upsample(ctx, "upsample_nearest_backward", planes, h, w, s, dy, dx, (size_t)h) : st;
}
