/* [name] type=embedding vocab=V dim=D [init_std=1]: torch.nn.Embedding. Input 0 holds int32
 * token ids (per sample [T], or any shape of ids); the output appends dim: [T, D] vectors,
 * rows of weight [V, D] (PyTorch's nn.Embedding.weight; GPT-2's wte). The weight starts
 * N(0, init_std^2): nn.Embedding's default 1, GPT-2's 0.02. The backward adds each
 * position's gradient into its token's row (repeated tokens sum); with a tied weight
 * (io->accumulate bit 0) into the gradient already there. Ids carry no gradient. */
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"

typedef struct emb_priv {
    int vocab, dim;
    float init_std;
} emb_priv;

static const char *const emb_keys[] = {"vocab", "dim", "init_std", NULL};

static dlcl_status emb_parse(layer *l, const cfg *c, const cfg_section *s)
{
    emb_priv *p = calloc(1, sizeof *p);
    if (p == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    l->priv = p;
    long vocab, dim;
    double std;
    dlcl_status st;
    if ((st = cfg_get_int(c, s, "vocab", 1, 0, 1, INT32_MAX, &vocab)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "dim", 1, 0, 1, 1 << 24, &dim)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "init_std", 0, 1.0, 0.0, 1e6, &std)) != DLCL_OK)
        return st;
    p->vocab = (int)vocab;
    p->dim = (int)dim;
    p->init_std = (float)std;
    return DLCL_OK;
}

static dlcl_status emb_shape(layer *l)
{
    emb_priv *p = l->priv;
    const layer_shape *in = &l->in[0];
    char s[64];
    if (in->dtype != DLCL_INT32)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s] (embedding): reads int32 token ids, but %s holds float32 values "
                         "(%s); an embedding reads the net's input or another int32 output", l->name,
                         l->in_names && l->in_names[0] ? l->in_names[0] : "its input",
                         layer_shape_str(*in, s, sizeof s));
    if (in->ndim >= LAYER_MAX_DIMS)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s] (embedding): ids of %d dimensions leave no room for the vectors' "
                         "(at most %d)", l->name, in->ndim, LAYER_MAX_DIMS - 1);
    if ((double)p->vocab * p->dim > INT32_MAX)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s]: vocab %d x dim %d is too large (2^31 - 1 values at most)",
                         l->name, p->vocab, p->dim);
    l->out = (layer_shape){in->ndim + 1, {0}, DLCL_FLOAT32};
    for (int d = 0; d < in->ndim; d++) l->out.dims[d] = in->dims[d];
    l->out.dims[in->ndim] = p->dim;
    layer_add_param(l, "weight", 2, (int64_t[]){p->vocab, p->dim}, LAYER_PARAM, LAYER_INIT_NORMAL, 0);
    l->params[l->n_params - 1].std = p->init_std;
    l->flops = 0;
    l->token_limit = p->vocab;
    return DLCL_OK;
}

static dlcl_status emb_forward(layer *l, const layer_io *io)
{
    emb_priv *p = l->priv;
    int rows = (int)layer_io_numel(io, l->in[0]);
    return op_embedding_forward(io->ctx, io->x[0], layer_param_buf(l, io, 0), io->y, rows, p->vocab, p->dim);
}

static dlcl_status emb_backward(layer *l, const layer_io *io)
{
    emb_priv *p = l->priv;
    int rows = io->count * (int)layer_shape_numel(l->in[0]);
    return op_embedding_backward(io->ctx, io->x[0], io->dy, layer_grad_buf(l, io, 0), rows, p->vocab, p->dim,
                                 (int)(io->accumulate & 1u));
}

static void emb_describe(const layer *l, char *buf, size_t cap)
{
    const emb_priv *p = l->priv;
    snprintf(buf, cap, "%d tokens -> %d", p->vocab, p->dim);
}

static void emb_free(layer *l)
{
    free(l->priv);
    l->priv = NULL;
}

const layer_type layer_embedding = {"embedding", emb_keys, 1, 1, LAYER_TOKEN_INPUT | LAYER_STEPS, emb_parse, emb_shape, NULL,
                                    emb_forward, emb_backward, emb_describe, emb_free, NULL, NULL};
