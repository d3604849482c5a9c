/* [name] type=position_embedding context=N dim=D [init_std=1]: learned positions, GPT-2's
 * wpe: y[b][t][:] = x[b][t][:] + weight[t][:] over a T,D input with T <= context (a shorter
 * sequence uses the first T rows). weight [context, D] (Hugging Face's wpe.weight) starts
 * N(0, init_std^2) as an nn.Embedding (GPT-2: 0.02). The backward passes dy through and sums
 * it over the batch into weight's first T rows; the rest of its gradient is zero. */
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"

typedef struct pos_priv {
    int context, dim;
    float init_std;
} pos_priv;

static const char *const pos_keys[] = {"context", "dim", "init_std", NULL};

static dlcl_status pos_parse(layer *l, const cfg *c, const cfg_section *s)
{
    pos_priv *p = calloc(1, sizeof *p);
    if (p == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    l->priv = p;
    long context, dim;
    double std;
    dlcl_status st;
    if ((st = cfg_get_int(c, s, "context", 1, 0, 1, 1 << 24, &context)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "dim", 1, 0, 1, 1 << 24, &dim)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "init_std", 0, 1.0, 0.0, 1e6, &std)) != DLCL_OK)
        return st;
    p->context = (int)context;
    p->dim = (int)dim;
    p->init_std = (float)std;
    return DLCL_OK;
}

static dlcl_status pos_shape(layer *l)
{
    pos_priv *p = l->priv;
    const layer_shape *in = &l->in[0];
    const char *from = l->in_names && l->in_names[0] ? l->in_names[0] : "its input";
    char s[64];
    if (in->ndim != 2 || in->dtype != DLCL_FLOAT32)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s] (position_embedding): needs a T,D sequence of vectors, but %s is "
                         "%s (%d-d)", l->name, from, layer_shape_str(*in, s, sizeof s), in->ndim);
    if (in->dims[1] != p->dim)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s] (position_embedding): dim = %d, but %s has %d features per "
                         "position (%s)", l->name, p->dim, from, in->dims[1], layer_shape_str(*in, s, sizeof s));
    if (in->dims[0] > p->context)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s] (position_embedding): %s has %d positions, more than context = %d",
                         l->name, from, in->dims[0], p->context);
    if ((double)p->context * p->dim > INT32_MAX)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s]: context %d x dim %d is too large (2^31 - 1 values at most)",
                         l->name, p->context, p->dim);
    l->out = *in;
    layer_add_param(l, "weight", 2, (int64_t[]){p->context, p->dim}, LAYER_PARAM, LAYER_INIT_NORMAL, 0);
    l->params[l->n_params - 1].std = p->init_std;
    l->flops = (double)layer_shape_numel(*in);
    return DLCL_OK;
}

static dlcl_status pos_forward(layer *l, const layer_io *io)
{
    pos_priv *p = l->priv;
    /* a cached forward holds positions pos .. pos+steps-1: rows pos.. of the weight */
    op_buf w = layer_param_buf(l, io, 0);
    w.off += (size_t)io->pos * (size_t)p->dim;
    return op_position_embedding_forward(io->ctx, io->x[0], w, io->y, io->count, (int)layer_io_steps(io, l->in[0]),
                                         p->dim);
}

static dlcl_status pos_backward(layer *l, const layer_io *io)
{
    pos_priv *p = l->priv;
    return op_position_embedding_backward(io->ctx, io->dy, io->dx[0], layer_grad_buf(l, io, 0), io->count,
                                          l->in[0].dims[0], p->context, p->dim, (int)(io->accumulate & 1u));
}

static void pos_describe(const layer *l, char *buf, size_t cap)
{
    const pos_priv *p = l->priv;
    snprintf(buf, cap, "%d of %d positions", l->in[0].dims[0], p->context);
}

static void pos_free(layer *l)
{
    free(l->priv);
    l->priv = NULL;
}

const layer_type layer_position_embedding = {"position_embedding", pos_keys, 1, 1, LAYER_STEPS, pos_parse, pos_shape, NULL,
                                             pos_forward, pos_backward, pos_describe, pos_free, NULL, NULL};
