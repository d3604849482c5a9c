/* [name] type=layernorm [eps=1e-5] [affine=1]: torch.nn.LayerNorm over the last dimension
 * of its input (each position of a T,D sequence, or a whole D vector), biased variance.
 * Tensors weight (ones) and bias (zeros) of [D] when affine (elementwise_affine). The
 * training forward keeps each row's mean and 1/std for the backward. With half-precision
 * storage ([net] precision = fp16) the forward widens its input into a float buffer of its
 * own, normalises there and stores the result: the row kernels (seq.cl) read floats. */
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"

typedef struct ln_priv {
    float eps;
    int affine;
    int dim, rows; /* rows of dim values per sample */
    dlcl_ctx *ctx;
    op_buf save_mean, save_rstd;
    op_buf wide; /* half storage: the rows as floats */
} ln_priv;

static const char *const ln_keys[] = {"eps", "affine", NULL};

static dlcl_status ln_parse(layer *l, const cfg *c, const cfg_section *s)
{
    ln_priv *p = calloc(1, sizeof *p);
    if (p == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    l->priv = p;
    double eps;
    dlcl_status st;
    if ((st = cfg_get_float(c, s, "eps", 0, 1e-5, 0.0, 1.0, &eps)) != DLCL_OK ||
        (st = cfg_get_bool(c, s, "affine", 0, 1, &p->affine)) != DLCL_OK)
        return st;
    p->eps = (float)eps;
    return DLCL_OK;
}

static dlcl_status ln_shape(layer *l)
{
    ln_priv *p = l->priv;
    const layer_shape *in = &l->in[0];
    if (in->dtype != DLCL_FLOAT32)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s] (layernorm): its input holds int32 token ids; an embedding layer "
                         "turns them into vectors", l->name);
    p->dim = in->dims[in->ndim - 1];
    p->rows = (int)(layer_shape_numel(*in) / (size_t)p->dim);
    l->out = *in;
    if (p->affine) {
        layer_add_param(l, "weight", 1, (int64_t[]){p->dim}, LAYER_PARAM, LAYER_INIT_ONE, 0);
        layer_add_param(l, "bias", 1, (int64_t[]){p->dim}, LAYER_PARAM, LAYER_INIT_ZERO, 0);
    }
    l->flops = 8.0 * (double)layer_shape_numel(*in);
    return DLCL_OK;
}

static dlcl_status ln_alloc(layer *l, dlcl_ctx *ctx, int batch)
{
    ln_priv *p = l->priv;
    p->ctx = ctx;
    size_t n = (size_t)batch * (size_t)p->rows;
    if (l->half) return layer_buf_alloc(ctx, n * (size_t)p->dim, l, "rows widened from half precision", &p->wide);
    if (l->inference) return DLCL_OK;
    dlcl_status st = layer_buf_alloc(ctx, n, l, "row means", &p->save_mean);
    return st == DLCL_OK ? layer_buf_alloc(ctx, n, l, "row inverse deviations", &p->save_rstd) : st;
}

static dlcl_status ln_forward(layer *l, const layer_io *io)
{
    ln_priv *p = l->priv;
    op_buf g = p->affine ? layer_param_buf(l, io, 0) : op_b(NULL, 0),
           b = p->affine ? layer_param_buf(l, io, 1) : op_b(NULL, 0);
    size_t n = layer_io_numel(io, l->in[0]);
    int rows = (int)(n / (size_t)p->dim);
    if (!io->x[0].half && !io->y.half)
        return op_layernorm_forward(io->ctx, io->x[0], io->y, rows, p->dim, g, b, p->eps, p->save_mean,
                                    p->save_rstd);
    dlcl_status st = op_convert(io->ctx, io->x[0], p->wide, n);
    if (st == DLCL_OK) st = op_layernorm_forward(io->ctx, p->wide, p->wide, rows, p->dim, g, b, p->eps, p->save_mean,
                                                 p->save_rstd);
    return st == DLCL_OK ? op_convert(io->ctx, p->wide, io->y, n) : st;
}

static dlcl_status ln_backward(layer *l, const layer_io *io)
{
    ln_priv *p = l->priv;
    op_buf g = p->affine ? layer_param_buf(l, io, 0) : op_b(NULL, 0),
           dg = p->affine ? layer_grad_buf(l, io, 0) : op_b(NULL, 0),
           db = p->affine ? layer_grad_buf(l, io, 1) : op_b(NULL, 0);
    return op_layernorm_backward(io->ctx, io->x[0], io->dy, io->dx[0], io->count * p->rows, p->dim, g, p->save_mean,
                                 p->save_rstd, dg, db, io->accumulate & 3u);
}

static void ln_describe(const layer *l, char *buf, size_t cap)
{
    const ln_priv *p = l->priv;
    snprintf(buf, cap, "over %d%s", p->dim, p->affine ? "" : ", no affine");
}

static void ln_free(layer *l)
{
    ln_priv *p = l->priv;
    if (p == NULL) return;
    if (p->ctx) {
        layer_buf_free(p->ctx, &p->save_mean);
        layer_buf_free(p->ctx, &p->save_rstd);
        layer_buf_free(p->ctx, &p->wide);
    }
    free(p);
    l->priv = NULL;
}

const layer_type layer_layernorm = {"layernorm", ln_keys, 1, 1, LAYER_STEPS | LAYER_HALF, ln_parse, ln_shape, ln_alloc,
                                    ln_forward, ln_backward, ln_describe, ln_free, NULL, NULL};
