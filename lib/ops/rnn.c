/* Recurrent cell launchers (rnn.cl): one time step of PyTorch's LSTM and GRU, a work-item
 * per (sample, hidden unit). The layer (lib/layers/rnn.c) runs the GEMMs around them. */
#include "ops.h"

/* Shape and offsets in the kernels' int range; the offsets' ints into offs. */
static dlcl_status check(const char *fn, int count, int T, int H, int t, int gate_blocks, const op_buf *bufs,
                         size_t n, int *offs)
{
    if (count < 1 || T < 1 || H < 1 || t < 0 || t >= T ||
        (double)count * T * H * gate_blocks > (double)INT32_MAX)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: bad shape: %d sequences x %d positions x %d units, step %d", fn,
                         count, T, H, t);
    for (size_t i = 0; i < n; i++) {
        if (bufs[i].off > INT32_MAX)
            return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: buffer offset %zu exceeds the kernel's int range", fn,
                             bufs[i].off);
        offs[i] = (int)bufs[i].off;
    }
    return DLCL_OK;
}

/* The cell kernels: a work-item per (unit, sample). */
static dlcl_status launch_cells(dlcl_ctx *ctx, cl_kernel k, const char *name, int count, int H)
{
    const size_t g[2] = {(size_t)H, (size_t)count};
    return rt_launch(ctx, k, name, 2, g, NULL);
}

/* A bias pair as kernel arguments: without biases, any buffer stands in (never read). */
static cl_mem or_dummy(op_buf b, cl_mem dummy) { return b.mem ? b.mem : dummy; }

dlcl_status op_lstm_cell_forward(dlcl_ctx *ctx, int count, int T, int H, int t, op_buf gates, op_buf b_ih,
                                 op_buf b_hh, op_buf c, op_buf y, op_buf hprev)
{
    const char *name = "lstm_cell_forward";
    const op_buf bufs[] = {gates, b_ih, b_hh, c, y, hprev};
    int o[6], has_bias = b_ih.mem != NULL && b_hh.mem != NULL;
    dlcl_status s = check(name, count, T, H, t, 4, bufs, 6, o);
    cl_mem bi = or_dummy(b_ih, gates.mem), bh = or_dummy(b_hh, gates.mem);
    cl_kernel k;
    if (s == DLCL_OK) s = rt_kernel_get(ctx, "rnn", "", name, &k);
    if (s == DLCL_OK)
        s = rt_set_args(k, name, RT_ARG(count), RT_ARG(T), RT_ARG(H), RT_ARG(t), RT_ARG(gates.mem), RT_ARG(o[0]),
                        RT_ARG(bi), RT_ARG(o[1]), RT_ARG(bh), RT_ARG(o[2]), RT_ARG(has_bias), RT_ARG(c.mem),
                        RT_ARG(o[3]), RT_ARG(y.mem), RT_ARG(o[4]), RT_ARG(hprev.mem), RT_ARG(o[5]), RT_ARGS_END);
    return s == DLCL_OK ? launch_cells(ctx, k, name, count, H) : s;
}

dlcl_status op_lstm_cell_backward(dlcl_ctx *ctx, int count, int T, int H, int t, op_buf gates, op_buf c, op_buf dy,
                                  op_buf dc)
{
    const char *name = "lstm_cell_backward";
    const op_buf bufs[] = {gates, c, dy, dc};
    int o[4];
    dlcl_status s = check(name, count, T, H, t, 4, bufs, 4, o);
    cl_kernel k;
    if (s == DLCL_OK) s = rt_kernel_get(ctx, "rnn", "", name, &k);
    if (s == DLCL_OK)
        s = rt_set_args(k, name, RT_ARG(count), RT_ARG(T), RT_ARG(H), RT_ARG(t), RT_ARG(gates.mem), RT_ARG(o[0]),
                        RT_ARG(c.mem), RT_ARG(o[1]), RT_ARG(dy.mem), RT_ARG(o[2]), RT_ARG(dc.mem), RT_ARG(o[3]),
                        RT_ARGS_END);
    return s == DLCL_OK ? launch_cells(ctx, k, name, count, H) : s;
}

dlcl_status op_gru_cell_forward(dlcl_ctx *ctx, int count, int T, int H, int t, op_buf xg, op_buf hg, op_buf b_ih,
                                op_buf b_hh, op_buf y, op_buf hprev)
{
    const char *name = "gru_cell_forward";
    const op_buf bufs[] = {xg, hg, b_ih, b_hh, y, hprev};
    int o[6], has_bias = b_ih.mem != NULL && b_hh.mem != NULL;
    dlcl_status s = check(name, count, T, H, t, 3, bufs, 6, o);
    cl_mem bi = or_dummy(b_ih, xg.mem), bh = or_dummy(b_hh, xg.mem);
    cl_kernel k;
    if (s == DLCL_OK) s = rt_kernel_get(ctx, "rnn", "", name, &k);
    if (s == DLCL_OK)
        s = rt_set_args(k, name, RT_ARG(count), RT_ARG(T), RT_ARG(H), RT_ARG(t), RT_ARG(xg.mem), RT_ARG(o[0]),
                        RT_ARG(hg.mem), RT_ARG(o[1]), RT_ARG(bi), RT_ARG(o[2]), RT_ARG(bh), RT_ARG(o[3]),
                        RT_ARG(has_bias), RT_ARG(y.mem), RT_ARG(o[4]), RT_ARG(hprev.mem), RT_ARG(o[5]), RT_ARGS_END);
    return s == DLCL_OK ? launch_cells(ctx, k, name, count, H) : s;
}

dlcl_status op_gru_cell_backward(dlcl_ctx *ctx, int count, int T, int H, int t, op_buf xg, op_buf hg, op_buf hprev,
                                 op_buf dy)
{
    const char *name = "gru_cell_backward";
    const op_buf bufs[] = {xg, hg, hprev, dy};
    int o[4];
    dlcl_status s = check(name, count, T, H, t, 3, bufs, 4, o);
    cl_kernel k;
    if (s == DLCL_OK) s = rt_kernel_get(ctx, "rnn", "", name, &k);
    if (s == DLCL_OK)
        s = rt_set_args(k, name, RT_ARG(count), RT_ARG(T), RT_ARG(H), RT_ARG(t), RT_ARG(xg.mem), RT_ARG(o[0]),
                        RT_ARG(hg.mem), RT_ARG(o[1]), RT_ARG(hprev.mem), RT_ARG(o[2]), RT_ARG(dy.mem), RT_ARG(o[3]),
                        RT_ARGS_END);
    return s == DLCL_OK ? launch_cells(ctx, k, name, count, H) : s;
}

dlcl_status op_rnn_bias_grad(dlcl_ctx *ctx, op_buf dg, int rows, int G, op_buf db1, int acc1, op_buf db2, int acc2)
{
    const char *name = "rnn_bias_grad";
    const op_buf bufs[] = {dg, db1, db2};
    int o[3], has2 = db2.mem != NULL;
    dlcl_status s = check(name, rows, 1, G, 0, 1, bufs, 3, o);
    cl_mem m2 = or_dummy(db2, db1.mem);
    cl_kernel k;
    if (s == DLCL_OK) s = rt_kernel_get(ctx, "rnn", "", name, &k);
    if (s == DLCL_OK)
        s = rt_set_args(k, name, RT_ARG(rows), RT_ARG(G), RT_ARG(dg.mem), RT_ARG(o[0]), RT_ARG(db1.mem), RT_ARG(o[1]),
                        RT_ARG(acc1), RT_ARG(m2), RT_ARG(o[2]), RT_ARG(acc2), RT_ARG(has2), RT_ARGS_END);
    return s == DLCL_OK ? rt_launch(ctx, k, name, 1, (size_t[]){(size_t)(G + 15) / 16}, NULL) : s;
}

dlcl_status op_transpose(dlcl_ctx *ctx, op_buf in, size_t rows, size_t cols, op_buf out)
{
    if (rows * cols > (size_t)INT32_MAX || in.off > INT32_MAX || out.off > INT32_MAX)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_transpose: %zu x %zu at offsets %zu, %zu exceed the kernel's int "
                         "range", rows, cols, in.off, out.off);
    return blas_transpose(ctx, in.mem, in.off, cols, 0, rows, cols, 1, out.mem, out.off, rows, 0);
}
