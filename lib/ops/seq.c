/* Sequence-layer launchers (seq.cl): token embedding, position embedding, layer norm.
 *
 * CPU devices run a work-item per block of rows with local size 1 (PoCL runs a work-group on
 * one thread; alone in it, a work-item's loops along a row are what LLVM vectorises) and
 * about CPU_ITEMS_PER_CU of them per compute unit. GPUs run work-items across a row (nw of
 * them, coalesced) and a row per block; layer norm's rows by a work-group each. Scratch
 * (layer norm's partial sums) comes from the pool and is released once enqueued. */
#include "ops.h"

/* Work-items per compute unit of a CPU launch over rows: enough that a core that finishes
 * early takes another block, few enough that each is a long run of rows. */
#define CPU_ITEMS_PER_CU 8
/* Vocabulary chunks of the embedding's backward on GPUs: each group scans every token, so
 * more groups cost token reads; fewer leave the device idle. */
#define GPU_EMBED_GROUPS 1024
/* Rows per block of layer norm's column sums on GPUs. */
#define GPU_LN_ROWS 32

static dlcl_status check_offsets(const char *fn, const op_buf *bufs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (bufs[i].off > INT32_MAX)
            return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: buffer offset %zu exceeds the kernels' int range", fn,
                             bufs[i].off);
    return DLCL_OK;
}

static dlcl_status check_rows(const char *fn, int rows, int dim)
{
    if (rows < 0 || dim < 1 || (double)rows * dim > INT32_MAX)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: bad shape %d rows x %d (rows >= 0, dim >= 1, at most 2^31 - 1 "
                         "values)", fn, rows, dim);
    return DLCL_OK;
}

static cl_mem or_dummy(op_buf b, cl_mem dummy) { return b.mem ? b.mem : dummy; }

/* A launch over rows: CPU, blocks of rb rows with one work-item across a row (local 1 x 1);
 * GPU, a row per block and nw work-items across it (local chosen by the driver). */
typedef struct row_grid {
    int rb, nw, blocks;
    size_t global[2], local[2]; /* local: 1 x 1 on CPU devices, else the driver's choice */
} row_grid;

static const size_t *grid_local(const dlcl_ctx *ctx, const row_grid *g) { return ctx->cpu_device ? g->local : NULL; }


static int cpu_items(const dlcl_ctx *ctx)
{
    return CPU_ITEMS_PER_CU * (int)(ctx->info.compute_units ? ctx->info.compute_units : 1);
}

static row_grid grid_rows(const dlcl_ctx *ctx, int rows, int dim)
{
    row_grid g = {.rb = 1, .nw = 1, .local = {1, 1}};
    if (ctx->cpu_device) {
        int items = cpu_items(ctx);
        g.rb = rows > items ? (rows + items - 1) / items : 1;
    } else {
        g.nw = dim < 256 ? dim : 256;
    }
    g.blocks = rows > 0 ? (rows - 1) / g.rb + 1 : 0;
    g.global[0] = (size_t)g.nw;
    g.global[1] = (size_t)g.blocks;
    return g;
}

/* ------------------------------------------------------------------ token embedding */

dlcl_status op_embedding_forward(dlcl_ctx *ctx, op_buf tokens, op_buf weight, op_buf y, int rows, int vocab, int dim)
{
    const char *fn = "op_embedding_forward", *name = "embedding_forward";
    const op_buf bufs[] = {tokens, weight, y};
    dlcl_status s = check_rows(fn, rows, dim);
    if (s == DLCL_OK) s = check_offsets(fn, bufs, DLCL__ARRAY_LEN(bufs));
    if (s == DLCL_OK && (vocab < 1 || (double)vocab * dim > INT32_MAX))
        s = dlcl__err(DLCL_ERR_INVALID_ARG, "%s: bad vocabulary %d x %d", fn, vocab, dim);
    if (s == DLCL_OK && (tokens.mem == NULL || weight.mem == NULL || y.mem == NULL))
        s = dlcl__err(DLCL_ERR_INVALID_ARG, "%s: tokens, weight and y are required", fn);
    if (s != DLCL_OK || rows == 0) return s;
    row_grid g = grid_rows(ctx, rows, dim);
    int to = (int)tokens.off, wo = (int)weight.off, yo = (int)y.off;
    cl_kernel k;
    if ((s = rt_kernel_get(ctx, "seq", "", name, &k)) == DLCL_OK)
        s = rt_set_args(k, name, RT_ARG(tokens.mem), RT_ARG(to), RT_ARG(weight.mem), RT_ARG(wo), RT_ARG(y.mem),
                        RT_ARG(yo), RT_ARG(rows), RT_ARG(vocab), RT_ARG(dim), RT_ARG(g.rb), RT_ARG(g.nw), RT_ARGS_END);
    return s == DLCL_OK ? rt_launch(ctx, k, name, 2, g.global, grid_local(ctx, &g)) : s;
}

dlcl_status op_embedding_backward(dlcl_ctx *ctx, op_buf tokens, op_buf dy, op_buf dweight, int rows, int vocab,
                                  int dim, int accumulate)
{
    const char *fn = "op_embedding_backward", *name = "embedding_backward";
    const op_buf bufs[] = {tokens, dy, dweight};
    dlcl_status s = check_rows(fn, rows, dim);
    if (s == DLCL_OK) s = check_offsets(fn, bufs, DLCL__ARRAY_LEN(bufs));
    if (s == DLCL_OK && (vocab < 1 || (double)vocab * dim > INT32_MAX))
        s = dlcl__err(DLCL_ERR_INVALID_ARG, "%s: bad vocabulary %d x %d", fn, vocab, dim);
    if (s == DLCL_OK && (dweight.mem == NULL || (rows > 0 && (tokens.mem == NULL || dy.mem == NULL))))
        s = dlcl__err(DLCL_ERR_INVALID_ARG, "%s: tokens, dy and dweight are required", fn);
    if (s != DLCL_OK) return s;
    /* CPU: a work-item per chunk; GPU: a work-group of up to 256 across d per chunk */
    int chunks = ctx->cpu_device ? cpu_items(ctx) : GPU_EMBED_GROUPS;
    if (chunks > vocab) chunks = vocab;
    int vc = (vocab + chunks - 1) / chunks;
    chunks = (vocab + vc - 1) / vc;
    size_t wg = 1;
    if (!ctx->cpu_device)
        while (wg < (size_t)dim && wg < 256 && wg < ctx->wg_1d) wg *= 2;
    size_t global = wg * (size_t)chunks;
    int to = (int)tokens.off, dyo = (int)dy.off, dwo = (int)dweight.off, acc = accumulate != 0;
    cl_mem dym = or_dummy(dy, dweight.mem), tm = or_dummy(tokens, dweight.mem);
    cl_kernel k;
    if ((s = rt_kernel_get(ctx, "seq", "", name, &k)) == DLCL_OK)
        s = rt_set_args(k, name, RT_ARG(tm), RT_ARG(to), RT_ARG(dym), RT_ARG(dyo), RT_ARG(dweight.mem), RT_ARG(dwo),
                        RT_ARG(rows), RT_ARG(vocab), RT_ARG(dim), RT_ARG(vc), RT_ARG(acc), RT_ARGS_END);
    return s == DLCL_OK ? rt_launch(ctx, k, name, 1, &global, &wg) : s;
}

/* ------------------------------------------------------------------ position embedding */

static dlcl_status pos_check(const char *fn, int count, int t, int context, int dim, const op_buf *bufs, size_t n)
{
    if (count < 0 || t < 1 || t > context || dim < 1 || (double)count * t * dim > INT32_MAX ||
        (double)context * dim > INT32_MAX)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: bad shape: %d sequences of %d positions (context %d) x %d", fn,
                         count, t, context, dim);
    return check_offsets(fn, bufs, n);
}

dlcl_status op_position_embedding_forward(dlcl_ctx *ctx, op_buf x, op_buf weight, op_buf y, int count, int t, int dim)
{
    const char *fn = "op_position_embedding_forward", *name = "position_embedding_forward";
    const op_buf bufs[] = {x, weight, y};
    dlcl_status s = pos_check(fn, count, t, t, dim, bufs, DLCL__ARRAY_LEN(bufs));
    if (s == DLCL_OK && (x.mem == NULL || weight.mem == NULL || y.mem == NULL))
        s = dlcl__err(DLCL_ERR_INVALID_ARG, "%s: x, weight and y are required", fn);
    if (s != DLCL_OK || count == 0) return s;
    const int rows = count * t;
    row_grid g = grid_rows(ctx, rows, dim);
    int xo = (int)x.off, wo = (int)weight.off, yo = (int)y.off;
    cl_kernel k;
    if ((s = rt_kernel_get(ctx, "seq", "", name, &k)) == DLCL_OK)
        s = rt_set_args(k, name, RT_ARG(x.mem), RT_ARG(xo), RT_ARG(weight.mem), RT_ARG(wo), RT_ARG(y.mem), RT_ARG(yo),
                        RT_ARG(rows), RT_ARG(t), RT_ARG(dim), RT_ARG(g.rb), RT_ARG(g.nw), RT_ARGS_END);
    return s == DLCL_OK ? rt_launch(ctx, k, name, 2, g.global, grid_local(ctx, &g)) : s;
}

dlcl_status op_position_embedding_backward(dlcl_ctx *ctx, op_buf dy, op_buf dx, op_buf dweight, int count, int t,
                                           int context, int dim, int accumulate)
{
    const char *fn = "op_position_embedding_backward", *name = "position_embedding_backward";
    const op_buf bufs[] = {dy, dx, dweight};
    dlcl_status s = pos_check(fn, count, t, context, dim, bufs, DLCL__ARRAY_LEN(bufs));
    if (s == DLCL_OK && (dweight.mem == NULL || (count > 0 && dy.mem == NULL)))
        s = dlcl__err(DLCL_ERR_INVALID_ARG, "%s: dy and dweight are required", fn);
    if (s != DLCL_OK) return s;
    /* a work-item per position: CPU, along the whole row (local 1 x 1); GPU, nw across it */
    row_grid g = grid_rows(ctx, context, dim);
    size_t global[2] = {(size_t)g.nw, (size_t)context};
    int dyo = (int)dy.off, dxo = (int)dx.off, dwo = (int)dweight.off, has_dx = dx.mem != NULL,
        acc = accumulate != 0;
    cl_mem dym = or_dummy(dy, dweight.mem), dxm = or_dummy(dx, dweight.mem);
    cl_kernel k;
    if ((s = rt_kernel_get(ctx, "seq", "", name, &k)) == DLCL_OK)
        s = rt_set_args(k, name, RT_ARG(dym), RT_ARG(dyo), RT_ARG(dxm), RT_ARG(dxo), RT_ARG(has_dx),
                        RT_ARG(dweight.mem), RT_ARG(dwo), RT_ARG(count), RT_ARG(t), RT_ARG(context), RT_ARG(dim),
                        RT_ARG(g.nw), RT_ARG(acc), RT_ARGS_END);
    return s == DLCL_OK ? rt_launch(ctx, k, name, 2, global, grid_local(ctx, &g)) : s;
}

/* ------------------------------------------------------------------ layer normalisation */

/* A work-group per row on GPUs: the largest power of two within the device's 1-D size, the
 * kernel's limit and 256, not far past dim; its local tree is argument red_arg. */
static dlcl_status launch_row_groups(dlcl_ctx *ctx, cl_kernel k, const char *name, cl_uint red_arg, int rows, int dim)
{
    size_t kmax = 0, wg = 1;
    cl_int err = clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax, NULL);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clGetKernelWorkGroupInfo (layer norm)");
    while (wg * 2 <= ctx->wg_1d && wg * 2 <= kmax && wg * 2 <= 256 && wg < (size_t)dim) wg *= 2;
    if ((err = clSetKernelArg(k, red_arg, wg * sizeof(float), NULL)) != CL_SUCCESS)
        return dlcl__cl_err(err, "clSetKernelArg (layer norm local tree)");
    size_t gl = wg * (size_t)rows;
    return rt_launch(ctx, k, name, 1, &gl, &wg);
}

dlcl_status op_layernorm_forward(dlcl_ctx *ctx, op_buf x, op_buf y, int rows, int dim, op_buf gamma, op_buf beta,
                                 float eps, op_buf save_mean, op_buf save_rstd)
{
    const char *fn = "op_layernorm_forward";
    const op_buf bufs[] = {x, y, gamma, beta, save_mean, save_rstd};
    dlcl_status s = check_rows(fn, rows, dim);
    if (s == DLCL_OK) s = check_offsets(fn, bufs, DLCL__ARRAY_LEN(bufs));
    if (s == DLCL_OK) s = op_require_float(fn, "x", x); /* the row kernels read floats */
    if (s == DLCL_OK) s = op_require_float(fn, "y", y);
    if (s != DLCL_OK) return s;
    if (x.mem == NULL || y.mem == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: x and y are required", fn);
    if ((gamma.mem == NULL) != (beta.mem == NULL) || (save_mean.mem == NULL) != (save_rstd.mem == NULL))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: gamma and beta, and save_mean and save_rstd, are given both or "
                         "neither", fn);
    if (!(eps >= 0.0f)) return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: eps %g < 0", fn, (double)eps);
    if (rows == 0) return DLCL_OK;
    int xo = (int)x.off, yo = (int)y.off, go = (int)gamma.off, bo = (int)beta.off, mo = (int)save_mean.off,
        ro = (int)save_rstd.off, affine = gamma.mem != NULL, save = save_mean.mem != NULL;
    cl_mem gm = or_dummy(gamma, x.mem), bm = or_dummy(beta, x.mem), mm = or_dummy(save_mean, x.mem),
           rm = or_dummy(save_rstd, x.mem);
    const char *name = ctx->cpu_device ? "layernorm_forward_rows" : "layernorm_forward_wg";
    cl_kernel k;
    if ((s = rt_kernel_get(ctx, "seq", "", name, &k)) != DLCL_OK) return s;
    if (!ctx->cpu_device) {
        s = rt_set_args(k, name, RT_ARG(x.mem), RT_ARG(xo), RT_ARG(y.mem), RT_ARG(yo), RT_ARG(rows), RT_ARG(dim),
                        RT_ARG(gm), RT_ARG(go), RT_ARG(bm), RT_ARG(bo), RT_ARG(affine), RT_ARG(eps), RT_ARG(mm),
                        RT_ARG(mo), RT_ARG(rm), RT_ARG(ro), RT_ARG(save), RT_ARGS_END);
        return s == DLCL_OK ? launch_row_groups(ctx, k, name, 17, rows, dim) : s;
    }
    row_grid g = grid_rows(ctx, rows, dim);
    s = rt_set_args(k, name, RT_ARG(x.mem), RT_ARG(xo), RT_ARG(y.mem), RT_ARG(yo), RT_ARG(rows), RT_ARG(dim),
                    RT_ARG(g.rb), RT_ARG(gm), RT_ARG(go), RT_ARG(bm), RT_ARG(bo), RT_ARG(affine), RT_ARG(eps),
                    RT_ARG(mm), RT_ARG(mo), RT_ARG(rm), RT_ARG(ro), RT_ARG(save), RT_ARGS_END);
    return s == DLCL_OK ? rt_launch(ctx, k, name, 2, g.global, grid_local(ctx, &g)) : s;
}

/* dgamma and dbeta from the blocks' partial sums (nk blocks of 2 * dim floats in part). */
static dlcl_status param_grad_combine(dlcl_ctx *ctx, cl_mem part, int nk, int dim, op_buf dgamma, op_buf dbeta,
                                      unsigned accumulate)
{
    const char *name = "layernorm_param_grad_combine";
    int dgo = (int)dgamma.off, dbo = (int)dbeta.off, has_dg = dgamma.mem != NULL, has_db = dbeta.mem != NULL,
        acc_g = (accumulate & 1u) != 0, acc_b = (accumulate & 2u) != 0;
    cl_mem dgm = or_dummy(dgamma, part), dbm = or_dummy(dbeta, part);
    cl_kernel k;
    dlcl_status s = rt_kernel_get(ctx, "seq", "", name, &k);
    if (s == DLCL_OK)
        s = rt_set_args(k, name, RT_ARG(part), RT_ARG(nk), RT_ARG(dim), RT_ARG(dgm), RT_ARG(dgo), RT_ARG(has_dg),
                        RT_ARG(acc_g), RT_ARG(dbm), RT_ARG(dbo), RT_ARG(has_db), RT_ARG(acc_b), RT_ARGS_END);
    return s == DLCL_OK ? rt_launch_1d(ctx, k, name, (size_t)dim) : s;
}

/* GPUs: dx by a work-group per row, then the column sums of dgamma and dbeta by blocks. */
static dlcl_status backward_gpu(dlcl_ctx *ctx, op_buf x, op_buf dy, op_buf dx, int rows, int dim, op_buf gamma,
                                op_buf mean, op_buf rstd, cl_mem part, int nk)
{
    int xo = (int)x.off, dyo = (int)dy.off, dxo = (int)dx.off, go = (int)gamma.off, mo = (int)mean.off,
        ro = (int)rstd.off, affine = gamma.mem != NULL, rb = GPU_LN_ROWS;
    cl_mem gm = or_dummy(gamma, x.mem);
    cl_kernel k;
    dlcl_status s = DLCL_OK;
    const char *name = "layernorm_param_grad_cols";
    if (part != NULL) {
        size_t global[2] = {(size_t)dim, (size_t)nk};
        if ((s = rt_kernel_get(ctx, "seq", "", name, &k)) == DLCL_OK)
            s = rt_set_args(k, name, RT_ARG(x.mem), RT_ARG(xo), RT_ARG(dy.mem), RT_ARG(dyo), RT_ARG(rows), RT_ARG(dim),
                            RT_ARG(rb), RT_ARG(mean.mem), RT_ARG(mo), RT_ARG(rstd.mem), RT_ARG(ro), RT_ARG(part),
                            RT_ARGS_END);
        if (s == DLCL_OK) s = rt_launch(ctx, k, name, 2, global, NULL);
    }
    if (s != DLCL_OK || dx.mem == NULL) return s;
    name = "layernorm_backward_wg"; /* after the column sums: dx may alias dy */
    if ((s = rt_kernel_get(ctx, "seq", "", name, &k)) == DLCL_OK)
        s = rt_set_args(k, name, RT_ARG(x.mem), RT_ARG(xo), RT_ARG(dy.mem), RT_ARG(dyo), RT_ARG(dx.mem), RT_ARG(dxo),
                        RT_ARG(rows), RT_ARG(dim), RT_ARG(gm), RT_ARG(go), RT_ARG(affine), RT_ARG(mean.mem), RT_ARG(mo),
                        RT_ARG(rstd.mem), RT_ARG(ro), RT_ARGS_END);
    return s == DLCL_OK ? launch_row_groups(ctx, k, name, 15, rows, dim) : s;
}

dlcl_status op_layernorm_backward(dlcl_ctx *ctx, op_buf x, op_buf dy, op_buf dx, int rows, int dim, op_buf gamma,
                                  op_buf save_mean, op_buf save_rstd, op_buf dgamma, op_buf dbeta, unsigned accumulate)
{
    const char *fn = "op_layernorm_backward";
    const op_buf bufs[] = {x, dy, dx, gamma, save_mean, save_rstd, dgamma, dbeta};
    dlcl_status s = check_rows(fn, rows, dim);
    if (s == DLCL_OK) s = check_offsets(fn, bufs, DLCL__ARRAY_LEN(bufs));
    if (s != DLCL_OK) return s;
    if (x.mem == NULL || dy.mem == NULL || save_mean.mem == NULL || save_rstd.mem == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: x, dy, save_mean and save_rstd are required", fn);
    bool sums = dgamma.mem != NULL || dbeta.mem != NULL;
    if (!sums && dx.mem == NULL) return DLCL_OK;
    row_grid g = grid_rows(ctx, rows, dim);
    int nk = ctx->cpu_device ? g.blocks : (rows + GPU_LN_ROWS - 1) / GPU_LN_ROWS;
    if (rows == 0) nk = 0; /* no rows: the combine writes zero sums */
    cl_mem part = NULL;
    if (sums) {
        size_t bytes = ((size_t)(nk > 0 ? nk : 1) * 2 * (size_t)dim) * sizeof(float);
        if ((s = rt_buffer_acquire(ctx, bytes, "layer norm partial sums", &part)) != DLCL_OK) return s;
    }
    if (rows > 0 && !ctx->cpu_device) {
        s = backward_gpu(ctx, x, dy, dx, rows, dim, gamma, save_mean, save_rstd, part, nk);
    } else if (rows > 0) {
        const char *name = "layernorm_backward_rows";
        int xo = (int)x.off, dyo = (int)dy.off, dxo = (int)dx.off, go = (int)gamma.off, mo = (int)save_mean.off,
            ro = (int)save_rstd.off, affine = gamma.mem != NULL, has_dx = dx.mem != NULL, has_part = sums;
        cl_mem dxm = or_dummy(dx, x.mem), gm = or_dummy(gamma, x.mem), pm = part ? part : x.mem;
        cl_kernel k;
        if ((s = rt_kernel_get(ctx, "seq", "", name, &k)) == DLCL_OK)
            s = rt_set_args(k, name, RT_ARG(x.mem), RT_ARG(xo), RT_ARG(dy.mem), RT_ARG(dyo), RT_ARG(dxm), RT_ARG(dxo),
                            RT_ARG(has_dx), RT_ARG(rows), RT_ARG(dim), RT_ARG(g.rb), RT_ARG(gm), RT_ARG(go),
                            RT_ARG(affine), RT_ARG(save_mean.mem), RT_ARG(mo), RT_ARG(save_rstd.mem), RT_ARG(ro),
                            RT_ARG(pm), RT_ARG(has_part), RT_ARGS_END);
        if (s == DLCL_OK) s = rt_launch(ctx, k, name, 2, g.global, grid_local(ctx, &g));
    }
    if (s == DLCL_OK && sums) s = param_grad_combine(ctx, part, nk, dim, dgamma, dbeta, accumulate);
    rt_buffer_release(ctx, part);
    return s;
}
