/* Batch normalisation launchers (norm.cl): PyTorch's nn.BatchNorm1d/2d over [outer][c][inner].
 *
 * CPU devices run the *_tile kernels (a work-item per tile of BN_CHUNK values, loops along
 * rows; see norm.cl), with partial sums per tile that a *_combine kernel per channel adds in
 * order. Other devices run the *_wg kernels: a work-group per channel and a tree in local
 * memory, of the device's 1-D work-group size. Partial sums and per-channel coefficients
 * live in a pool buffer, released once the launches are enqueued (the queue is in order,
 * so a later user of the buffer runs after them). */
#include "ops.h"

/* Values of a channel per CPU tile: 64 KiB, so that the second pass over a tile reads the
 * cache (L2) rather than memory. */
#define BN_CHUNK 16384
/* Rows shorter than this many floats are taken a whole row at a time and several channels
 * per tile, so that each row of a tile is a contiguous run of at least this many: alone, a
 * channel's short rows are a few floats a page apart and every load waits on memory
 * (256 x 512 x 4 x 4: 28 ms for the statistics of 2M values, per channel). */
#define BN_RUN 1024

typedef struct bn_geom {
    int outer, c, inner, m, n;
    int q, cb, nk, nb; /* CPU tiles: q values of cb channels; nk x nb of them */
} bn_geom;

static cl_mem or_dummy(op_buf b, cl_mem dummy) { return b.mem ? b.mem : dummy; }

/* half_xy: bufs[0] and bufs[1], x and y of an evaluation forward, may be stored as half;
 * the statistics, parameters and every tensor of training stay float. */
static dlcl_status check(const char *fn, int outer, int c, int inner, op_act act, const op_buf *bufs, size_t nbufs,
                         bool half_xy, bn_geom *g)
{
    if (outer < 1 || c < 1 || inner < 1 || (double)outer * c * inner > INT32_MAX)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: bad shape %d x %d x %d (outer x channels x inner, each >= 1, "
                         "at most 2^31 - 1 values)", fn, outer, c, inner);
    if (act != OP_ACT_LINEAR && act != OP_ACT_RELU)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: activation %d cannot be fused (linear or relu)", fn, (int)act);
    for (size_t i = 0; i < nbufs; i++) {
        if (bufs[i].off > INT32_MAX)
            return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: buffer offset %zu exceeds the kernels' int range", fn,
                             bufs[i].off);
        if (bufs[i].half && (!half_xy || i >= 2))
            return op_require_float(fn, half_xy ? "gamma, beta or a statistic" : i == 0 ? "x" : "a tensor other than x",
                                    bufs[i]);
    }
    *g = (bn_geom){.outer = outer, .c = c, .inner = inner, .m = outer * inner, .n = outer * c * inner};
    if (inner >= BN_RUN) {
        g->cb = 1;
        g->q = BN_CHUNK;
    } else {
        g->cb = (BN_RUN + inner - 1) / inner < c ? (BN_RUN + inner - 1) / inner : c;
        const int rows = BN_CHUNK / (g->cb * inner);
        g->q = (rows > 1 ? rows : 1) * inner;
    }
    g->nk = (g->m - 1) / g->q + 1;
    g->nb = (c - 1) / g->cb + 1;
    return DLCL_OK;
}

/* The tile kernels: global (nk, nb), a work-item per group. */
static dlcl_status launch_tiles(dlcl_ctx *ctx, cl_kernel k, const char *name, const bn_geom *g)
{
    size_t gl[2] = {(size_t)g->nk, (size_t)g->nb}, l[2] = {1, 1};
    return rt_launch(ctx, k, name, 2, gl, l);
}

/* The per-channel work-group kernels: the largest power of two within the device's 1-D
 * work-group size and the kernel's limit, with its local tree of as many floats (the last
 * argument, index red_arg). */
static dlcl_status launch_wg(dlcl_ctx *ctx, cl_kernel k, const char *name, cl_uint red_arg, const bn_geom *g)
{
    size_t kmax = 0, wg = 1;
    cl_int err = clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax, NULL);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clGetKernelWorkGroupInfo (batchnorm)");
    while (wg * 2 <= ctx->wg_1d && wg * 2 <= kmax) wg *= 2;
    if ((err = clSetKernelArg(k, red_arg, wg * sizeof(float), NULL)) != CL_SUCCESS)
        return dlcl__cl_err(err, "clSetKernelArg (batchnorm local tree)");
    size_t gl = wg * (size_t)g->c;
    return rt_launch(ctx, k, name, 1, &gl, &wg);
}

/* Scratch of one call, from the pool: the per-channel coefficients (3 planes of c floats),
 * mean and invstd when the caller keeps none (2 planes), and the CPU kernels' partial
 * sums (2 planes per tile row k). */
typedef struct bn_scratch {
    cl_mem mem;
    size_t bytes, coef, stats, part; /* offsets in floats */
} bn_scratch;

static dlcl_status scratch_get(dlcl_ctx *ctx, const bn_geom *g, bool stats, bool part, bn_scratch *sc)
{
    sc->coef = 0;
    sc->stats = 3 * (size_t)g->c;
    sc->part = sc->stats + (stats ? 2 * (size_t)g->c : 0);
    sc->bytes = (sc->part + (part && ctx->cpu_device ? 2 * (size_t)g->nk * g->c : 0)) * sizeof(float);
    return rt_buffer_acquire(ctx, sc->bytes, "batch norm scratch", &sc->mem);
}

/* coef = (mean, invstd(sd) * gamma, beta), then y = act((x - coef0) * coef1 + coef2): the
 * elementwise kernel on GPUs, the tile one on CPU devices. */
static dlcl_status apply(dlcl_ctx *ctx, const bn_geom *g, op_buf x, op_buf y, op_buf mean, op_buf sd, int sd_is_var,
                         float eps, op_buf gamma, op_buf beta, int relu, cl_mem coef)
{
    int mo = (int)mean.off, so = (int)sd.off, go = (int)gamma.off, bo = (int)beta.off, has_g = gamma.mem != NULL,
        has_b = beta.mem != NULL;
    cl_mem gm = or_dummy(gamma, mean.mem), bm = or_dummy(beta, mean.mem);
    cl_kernel k;
    const char *name = "batchnorm_coef";
    dlcl_status s = rt_kernel_get(ctx, "norm", "", name, &k);
    if (s == DLCL_OK)
        s = rt_set_args(k, name, RT_ARG(g->c), RT_ARG(mean.mem), RT_ARG(mo), RT_ARG(sd.mem), RT_ARG(so),
                        RT_ARG(sd_is_var), RT_ARG(eps), RT_ARG(gm), RT_ARG(go), RT_ARG(has_g), RT_ARG(bm), RT_ARG(bo),
                        RT_ARG(has_b), RT_ARG(coef), RT_ARGS_END);
    if (s == DLCL_OK) s = rt_launch_1d(ctx, k, name, (size_t)g->c);
    if (s != DLCL_OK) return s;
    int xo = (int)x.off, yo = (int)y.off;
    char opt[32];
    op_half_opts(opt, sizeof opt, "X", x, "Y", y, (const char *)NULL);
    if (!ctx->cpu_device) {
        name = "batchnorm_apply";
        if ((s = rt_kernel_get(ctx, "norm", opt, name, &k)) == DLCL_OK)
            s = rt_set_args(k, name, RT_ARG(x.mem), RT_ARG(xo), RT_ARG(y.mem), RT_ARG(yo), RT_ARG(g->outer),
                            RT_ARG(g->c), RT_ARG(g->inner), RT_ARG(coef), RT_ARG(relu), RT_ARGS_END);
        return s == DLCL_OK ? rt_launch_1d(ctx, k, name, (size_t)g->n) : s;
    }
    name = "batchnorm_apply_tile";
    if ((s = rt_kernel_get(ctx, "norm", opt, name, &k)) == DLCL_OK)
        s = rt_set_args(k, name, RT_ARG(x.mem), RT_ARG(xo), RT_ARG(y.mem), RT_ARG(yo), RT_ARG(g->outer), RT_ARG(g->c),
                        RT_ARG(g->inner), RT_ARG(g->q), RT_ARG(g->cb), RT_ARG(coef), RT_ARG(relu), RT_ARGS_END);
    return s == DLCL_OK ? launch_tiles(ctx, k, name, g) : s;
}

/* Batch statistics into mean and invstd, running statistics updated when track. */
static dlcl_status stats(dlcl_ctx *ctx, const bn_geom *g, op_buf x, float eps, float momentum, op_buf rmean,
                         op_buf rvar, op_buf mean, op_buf invstd, op_buf part)
{
    int xo = (int)x.off, mo = (int)mean.off, io = (int)invstd.off, rmo = (int)rmean.off, rvo = (int)rvar.off,
        track = rmean.mem != NULL, po = (int)part.off;
    cl_mem rm = or_dummy(rmean, mean.mem), rv = or_dummy(rvar, mean.mem);
    cl_kernel k;
    dlcl_status s;
    if (!ctx->cpu_device) {
        const char *name = "batchnorm_stats_wg";
        if ((s = rt_kernel_get(ctx, "norm", "", name, &k)) != DLCL_OK) return s;
        s = rt_set_args(k, name, RT_ARG(x.mem), RT_ARG(xo), RT_ARG(g->outer), RT_ARG(g->c), RT_ARG(g->inner),
                        RT_ARG(eps), RT_ARG(mean.mem), RT_ARG(mo), RT_ARG(invstd.mem), RT_ARG(io), RT_ARG(track),
                        RT_ARG(rm), RT_ARG(rmo), RT_ARG(rv), RT_ARG(rvo), RT_ARG(momentum), RT_ARGS_END);
        return s == DLCL_OK ? launch_wg(ctx, k, name, 16, g) : s;
    }
    const char *name = "batchnorm_stats_tile";
    if ((s = rt_kernel_get(ctx, "norm", "", name, &k)) != DLCL_OK) return s;
    s = rt_set_args(k, name, RT_ARG(x.mem), RT_ARG(xo), RT_ARG(part.mem), RT_ARG(po), RT_ARG(g->outer), RT_ARG(g->c),
                    RT_ARG(g->inner), RT_ARG(g->q), RT_ARG(g->cb), RT_ARGS_END);
    if (s == DLCL_OK) s = launch_tiles(ctx, k, name, g);
    name = "batchnorm_stats_combine";
    if (s == DLCL_OK) s = rt_kernel_get(ctx, "norm", "", name, &k);
    if (s == DLCL_OK)
        s = rt_set_args(k, name, RT_ARG(x.mem), RT_ARG(xo), RT_ARG(part.mem), RT_ARG(po), RT_ARG(g->outer),
                        RT_ARG(g->c), RT_ARG(g->inner), RT_ARG(g->q), RT_ARG(eps), RT_ARG(mean.mem), RT_ARG(mo),
                        RT_ARG(invstd.mem), RT_ARG(io), RT_ARG(track), RT_ARG(rm), RT_ARG(rmo), RT_ARG(rv),
                        RT_ARG(rvo), RT_ARG(momentum), RT_ARGS_END);
    return s == DLCL_OK ? rt_launch_1d(ctx, k, name, (size_t)g->c) : s;
}

dlcl_status op_batchnorm_forward_train(dlcl_ctx *ctx, op_buf x, op_buf y, int outer, int c, int inner, op_buf gamma,
                                       op_buf beta, float eps, float momentum, op_buf running_mean, op_buf running_var,
                                       op_buf save_mean, op_buf save_invstd, op_act act)
{
    const op_buf bufs[] = {x, y, gamma, beta, running_mean, running_var, save_mean, save_invstd};
    bn_geom g;
    dlcl_status s = check("op_batchnorm_forward_train", outer, c, inner, act, bufs, DLCL__ARRAY_LEN(bufs), false, &g);
    if (s != DLCL_OK) return s;
    if (x.mem == NULL || y.mem == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_batchnorm_forward_train: x and y are required");
    if ((running_mean.mem == NULL) != (running_var.mem == NULL) || (save_mean.mem == NULL) != (save_invstd.mem == NULL))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_batchnorm_forward_train: running_mean and running_var, and "
                         "save_mean and save_invstd, are given both or neither");
    if (g.m == 1)
        return dlcl__err(DLCL_ERR_SHAPE, "batch norm: expected more than 1 value per channel when training, got "
                         "%d x %d x %d (outer x channels x inner): the variance of one value is undefined", outer, c,
                         inner);
    if (!(eps >= 0.0f)) return dlcl__err(DLCL_ERR_INVALID_ARG, "op_batchnorm_forward_train: eps %g < 0", (double)eps);
    bn_scratch sc;
    if ((s = scratch_get(ctx, &g, save_mean.mem == NULL, true, &sc)) != DLCL_OK) return s;
    op_buf mean = save_mean.mem ? save_mean : op_b(sc.mem, sc.stats),
           invstd = save_mean.mem ? save_invstd : op_b(sc.mem, sc.stats + g.c);
    s = stats(ctx, &g, x, eps, momentum, running_mean, running_var, mean, invstd, op_b(sc.mem, sc.part));
    if (s == DLCL_OK) s = apply(ctx, &g, x, y, mean, invstd, 0, eps, gamma, beta, act == OP_ACT_RELU, sc.mem);
    rt_buffer_release(ctx, sc.mem);
    return s;
}

dlcl_status op_batchnorm_forward_eval(dlcl_ctx *ctx, op_buf x, op_buf y, int outer, int c, int inner, op_buf gamma,
                                      op_buf beta, op_buf running_mean, op_buf running_var, float eps, op_act act)
{
    const op_buf bufs[] = {x, y, gamma, beta, running_mean, running_var};
    bn_geom g;
    dlcl_status s = check("op_batchnorm_forward_eval", outer, c, inner, act, bufs, DLCL__ARRAY_LEN(bufs), true, &g);
    if (s != DLCL_OK) return s;
    if (x.mem == NULL || y.mem == NULL || running_mean.mem == NULL || running_var.mem == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_batchnorm_forward_eval: x, y, running_mean and running_var are "
                         "required (without running statistics, normalise by the batch's: forward_train)");
    if (!(eps >= 0.0f)) return dlcl__err(DLCL_ERR_INVALID_ARG, "op_batchnorm_forward_eval: eps %g < 0", (double)eps);
    bn_scratch sc;
    if ((s = scratch_get(ctx, &g, false, false, &sc)) != DLCL_OK) return s;
    s = apply(ctx, &g, x, y, running_mean, running_var, 1, eps, gamma, beta, act == OP_ACT_RELU, sc.mem);
    rt_buffer_release(ctx, sc.mem);
    return s;
}

/* The sums of the backward into dgamma, dbeta and the dx coefficients (coef, 3 planes). */
static dlcl_status grad_sums(dlcl_ctx *ctx, const bn_geom *g, op_buf x, op_buf y, op_buf dy, op_buf gamma,
                             op_buf mean, op_buf invstd, op_buf dgamma, op_buf dbeta, int relu, cl_mem coef,
                             op_buf part)
{
    int xo = (int)x.off, yo = (int)y.off, dyo = (int)dy.off, mo = (int)mean.off, go = (int)gamma.off,
        io = (int)invstd.off, dgo = (int)dgamma.off, dbo = (int)dbeta.off, has_g = gamma.mem != NULL,
        has_dg = dgamma.mem != NULL, has_db = dbeta.mem != NULL, po = (int)part.off;
    cl_mem ym = or_dummy(y, x.mem), gm = or_dummy(gamma, invstd.mem), dgm = or_dummy(dgamma, coef),
           dbm = or_dummy(dbeta, coef);
    cl_kernel k;
    dlcl_status s;
    if (!ctx->cpu_device) {
        const char *name = "batchnorm_backward_wg";
        if ((s = rt_kernel_get(ctx, "norm", "", name, &k)) != DLCL_OK) return s;
        s = rt_set_args(k, name, RT_ARG(x.mem), RT_ARG(xo), RT_ARG(ym), RT_ARG(yo), RT_ARG(dy.mem), RT_ARG(dyo),
                        RT_ARG(mean.mem), RT_ARG(mo), RT_ARG(g->outer), RT_ARG(g->c), RT_ARG(g->inner), RT_ARG(relu),
                        RT_ARG(gm), RT_ARG(go), RT_ARG(has_g), RT_ARG(invstd.mem), RT_ARG(io), RT_ARG(dgm),
                        RT_ARG(dgo), RT_ARG(has_dg), RT_ARG(dbm), RT_ARG(dbo), RT_ARG(has_db), RT_ARG(coef),
                        RT_ARGS_END);
        return s == DLCL_OK ? launch_wg(ctx, k, name, 24, g) : s;
    }
    const char *name = "batchnorm_backward_tile";
    if ((s = rt_kernel_get(ctx, "norm", "", name, &k)) != DLCL_OK) return s;
    s = rt_set_args(k, name, RT_ARG(x.mem), RT_ARG(xo), RT_ARG(ym), RT_ARG(yo), RT_ARG(dy.mem), RT_ARG(dyo),
                    RT_ARG(mean.mem), RT_ARG(mo), RT_ARG(part.mem), RT_ARG(po), RT_ARG(g->outer), RT_ARG(g->c),
                    RT_ARG(g->inner), RT_ARG(g->q), RT_ARG(g->cb), RT_ARG(relu), RT_ARGS_END);
    if (s == DLCL_OK) s = launch_tiles(ctx, k, name, g);
    name = "batchnorm_backward_combine";
    if (s == DLCL_OK) s = rt_kernel_get(ctx, "norm", "", name, &k);
    if (s == DLCL_OK)
        s = rt_set_args(k, name, RT_ARG(part.mem), RT_ARG(po), RT_ARG(g->outer), RT_ARG(g->c), RT_ARG(g->inner),
                        RT_ARG(g->q), RT_ARG(gm), RT_ARG(go), RT_ARG(has_g), RT_ARG(invstd.mem), RT_ARG(io),
                        RT_ARG(dgm), RT_ARG(dgo), RT_ARG(has_dg), RT_ARG(dbm), RT_ARG(dbo), RT_ARG(has_db),
                        RT_ARG(coef), RT_ARGS_END);
    return s == DLCL_OK ? rt_launch_1d(ctx, k, name, (size_t)g->c) : s;
}

static dlcl_status grad_data(dlcl_ctx *ctx, const bn_geom *g, op_buf x, op_buf y, op_buf dy, op_buf dx, op_buf mean,
                             int relu, cl_mem coef)
{
    const char *name = ctx->cpu_device ? "batchnorm_backward_data_tile" : "batchnorm_backward_data";
    int xo = (int)x.off, yo = (int)y.off, dyo = (int)dy.off, dxo = (int)dx.off, mo = (int)mean.off;
    cl_mem ym = or_dummy(y, x.mem);
    cl_kernel k;
    dlcl_status s = rt_kernel_get(ctx, "norm", "", name, &k);
    if (s != DLCL_OK) return s;
    if (!ctx->cpu_device) {
        s = rt_set_args(k, name, RT_ARG(x.mem), RT_ARG(xo), RT_ARG(ym), RT_ARG(yo), RT_ARG(dy.mem), RT_ARG(dyo),
                        RT_ARG(dx.mem), RT_ARG(dxo), RT_ARG(mean.mem), RT_ARG(mo), RT_ARG(coef), RT_ARG(g->outer),
                        RT_ARG(g->c), RT_ARG(g->inner), RT_ARG(relu), RT_ARGS_END);
        return s == DLCL_OK ? rt_launch_1d(ctx, k, name, (size_t)g->n) : s;
    }
    s = rt_set_args(k, name, RT_ARG(x.mem), RT_ARG(xo), RT_ARG(ym), RT_ARG(yo), RT_ARG(dy.mem), RT_ARG(dyo),
                    RT_ARG(dx.mem), RT_ARG(dxo), RT_ARG(mean.mem), RT_ARG(mo), RT_ARG(coef), RT_ARG(g->outer),
                    RT_ARG(g->c), RT_ARG(g->inner), RT_ARG(g->q), RT_ARG(g->cb), RT_ARG(relu), RT_ARGS_END);
    return s == DLCL_OK ? launch_tiles(ctx, k, name, g) : s;
}

dlcl_status op_batchnorm_backward(dlcl_ctx *ctx, op_buf x, op_buf y, op_buf dy, op_buf dx, int outer, int c, int inner,
                                  op_buf gamma, op_buf save_mean, op_buf save_invstd, op_buf dgamma, op_buf dbeta,
                                  op_act act)
{
    const op_buf bufs[] = {x, y, dy, dx, gamma, save_mean, save_invstd, dgamma, dbeta};
    bn_geom g;
    dlcl_status s = check("op_batchnorm_backward", outer, c, inner, act, bufs, DLCL__ARRAY_LEN(bufs), false, &g);
    if (s != DLCL_OK) return s;
    if (x.mem == NULL || dy.mem == NULL || save_mean.mem == NULL || save_invstd.mem == NULL ||
        (act == OP_ACT_RELU && y.mem == NULL))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_batchnorm_backward: x, dy, save_mean and save_invstd are required, "
                         "and y with a fused relu");
    if (dx.mem == NULL && dgamma.mem == NULL && dbeta.mem == NULL) return DLCL_OK;
    bn_scratch sc;
    if ((s = scratch_get(ctx, &g, false, true, &sc)) != DLCL_OK) return s;
    s = grad_sums(ctx, &g, x, y, dy, gamma, save_mean, save_invstd, dgamma, dbeta, act == OP_ACT_RELU, sc.mem,
                  op_b(sc.mem, sc.part));
    if (s == DLCL_OK && dx.mem) s = grad_data(ctx, &g, x, y, dy, dx, save_mean, act == OP_ACT_RELU, sc.mem);
    rt_buffer_release(ctx, sc.mem);
    return s;
}

/* ---------------------------------------------------------------- sync_batchnorm's pieces */

dlcl_status op_batchnorm_stats(dlcl_ctx *ctx, op_buf x, int outer, int c, int inner, op_buf mean, op_buf invstd)
{
    const op_buf bufs[] = {x, mean, invstd};
    bn_geom g;
    dlcl_status s = check("op_batchnorm_stats", outer, c, inner, OP_ACT_LINEAR, bufs, DLCL__ARRAY_LEN(bufs), false, &g);
    if (s != DLCL_OK) return s;
    if (x.mem == NULL || mean.mem == NULL || invstd.mem == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_batchnorm_stats: x, mean and invstd are required");
    bn_scratch sc;
    if ((s = scratch_get(ctx, &g, false, true, &sc)) != DLCL_OK) return s;
    s = stats(ctx, &g, x, 0.0f, 0.0f, op_b(NULL, 0), op_b(NULL, 0), mean, invstd, op_b(sc.mem, sc.part));
    rt_buffer_release(ctx, sc.mem);
    return s;
}

dlcl_status op_batchnorm_apply(dlcl_ctx *ctx, op_buf x, op_buf y, int outer, int c, int inner, op_buf gamma,
                               op_buf beta, op_buf mean, op_buf invstd, op_act act)
{
    const op_buf bufs[] = {x, y, gamma, beta, mean, invstd};
    bn_geom g;
    dlcl_status s = check("op_batchnorm_apply", outer, c, inner, act, bufs, DLCL__ARRAY_LEN(bufs), true, &g);
    if (s != DLCL_OK) return s;
    if (x.mem == NULL || y.mem == NULL || mean.mem == NULL || invstd.mem == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_batchnorm_apply: x, y, mean and invstd are required");
    bn_scratch sc;
    if ((s = scratch_get(ctx, &g, false, false, &sc)) != DLCL_OK) return s;
    s = apply(ctx, &g, x, y, mean, invstd, 0, 0.0f, gamma, beta, act == OP_ACT_RELU, sc.mem);
    rt_buffer_release(ctx, sc.mem);
    return s;
}

dlcl_status op_batchnorm_grad_sums(dlcl_ctx *ctx, op_buf x, op_buf y, op_buf dy, int outer, int c, int inner,
                                   op_buf mean, op_buf sums, op_act act)
{
    const op_buf bufs[] = {x, y, dy, mean, sums};
    bn_geom g;
    dlcl_status s = check("op_batchnorm_grad_sums", outer, c, inner, act, bufs, DLCL__ARRAY_LEN(bufs), false, &g);
    if (s != DLCL_OK) return s;
    if (x.mem == NULL || dy.mem == NULL || mean.mem == NULL || sums.mem == NULL || (act == OP_ACT_RELU && !y.mem))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_batchnorm_grad_sums: x, dy, mean and sums are required, and y "
                         "with a fused relu");
    /* grad_sums with gamma 1 and invstd 1 stores sum dz as "dbeta" and sum dz (x - mean) as "dgamma" */
    bn_scratch sc;
    if ((s = scratch_get(ctx, &g, true, true, &sc)) != DLCL_OK) return s;
    float one = 1.0f;
    cl_int err = clEnqueueFillBuffer(ctx->queue, sc.mem, &one, sizeof one, sc.stats * sizeof(float),
                                     (size_t)c * sizeof(float), 0, NULL, NULL);
    if (err != CL_SUCCESS) s = dlcl__cl_err(err, "clEnqueueFillBuffer (batch norm ones)");
    if (s == DLCL_OK)
        s = grad_sums(ctx, &g, x, y, dy, op_b(NULL, 0), mean, op_b(sc.mem, sc.stats), op_b(sums.mem, sums.off + c),
                      sums, act == OP_ACT_RELU, sc.mem, op_b(sc.mem, sc.part));
    rt_buffer_release(ctx, sc.mem);
    return s;
}

dlcl_status op_batchnorm_backward_data(dlcl_ctx *ctx, op_buf x, op_buf y, op_buf dy, op_buf dx, int outer, int c,
                                       int inner, op_buf mean, cl_mem coef, op_act act)
{
    const op_buf bufs[] = {x, y, dy, dx, mean};
    bn_geom g;
    dlcl_status s = check("op_batchnorm_backward_data", outer, c, inner, act, bufs, DLCL__ARRAY_LEN(bufs), false, &g);
    if (s != DLCL_OK) return s;
    if (x.mem == NULL || dy.mem == NULL || dx.mem == NULL || mean.mem == NULL || coef == NULL ||
        (act == OP_ACT_RELU && y.mem == NULL))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_batchnorm_backward_data: x, dy, dx, mean and coef are required, "
                         "and y with a fused relu");
    return grad_data(ctx, &g, x, y, dy, dx, mean, act == OP_ACT_RELU, coef);
}
