/* [name] type=batchnorm [eps=1e-5] [momentum=0.1] [affine=1] [activation=relu]
 * Batch normalisation over the first per-sample dimension: the channels of C,H,W images
 * (nn.BatchNorm2d), the features of a vector (nn.BatchNorm1d), or the channels of C,L.
 * Training normalises with the batch's statistics and updates the running ones (unbiased
 * variance, PyTorch's momentum); evaluation uses the running ones. Tensors as PyTorch names
 * them: weight and bias (trainable, when affine), running_mean and running_var (buffers),
 * num_batches_tracked (an int64 counter). A relu may be fused (activation=relu). */
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"

typedef struct bn_priv {
    float eps, momentum;
    int affine;
    op_act act;
    int c, inner;
    dlcl_ctx *ctx;
    op_buf save_mean, save_invstd; /* the batch's statistics, for the backward */
} bn_priv;

enum { BN_WEIGHT, BN_BIAS }; /* when affine; then running_mean, running_var, num_batches_tracked */

static const char *const bn_keys[] = {"eps", "momentum", "affine", "activation", "slope", NULL};

static dlcl_status bn_parse(layer *l, const cfg *c, const cfg_section *s)
{
    bn_priv *p = calloc(1, sizeof *p);
    if (p == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    l->priv = p;
    double eps, momentum;
    float slope;
    dlcl_status st;
    if ((st = cfg_get_float(c, s, "eps", 0, 1e-5, 1e-12, 1.0, &eps)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "momentum", 0, 0.1, 0.0, 1.0, &momentum)) != DLCL_OK ||
        (st = cfg_get_bool(c, s, "affine", 0, 1, &p->affine)) != DLCL_OK ||
        (st = layer_parse_activation(c, s, &p->act, &slope)) != DLCL_OK)
        return st;
    if (p->act != OP_ACT_LINEAR && p->act != OP_ACT_RELU) {
        const cfg_entry *e = cfg_find(s, "activation");
        char where[64];
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [%s] activation = '%s': batchnorm fuses relu or linear; put an "
                         "activation layer after it for others", cfg_where(c, e ? e->line : s->line, where, sizeof where),
                         s->name, e ? e->value : "");
    }
    p->eps = (float)eps;
    p->momentum = (float)momentum;
    return DLCL_OK;
}

static dlcl_status bn_shape(layer *l)
{
    bn_priv *p = l->priv;
    const layer_shape *in = &l->in[0];
    p->c = in->dims[0];
    p->inner = (int)(layer_shape_numel(*in) / (size_t)in->dims[0]);
    l->out = *in;
    int64_t c = p->c;
    if (p->affine) {
        layer_add_param(l, "weight", 1, &c, LAYER_PARAM, LAYER_INIT_ONE, 0);
        layer_add_param(l, "bias", 1, &c, LAYER_PARAM, LAYER_INIT_ZERO, 0);
    }
    layer_add_param(l, "running_mean", 1, &c, LAYER_BUFFER, LAYER_INIT_ZERO, 0);
    layer_add_param(l, "running_var", 1, &c, LAYER_BUFFER, LAYER_INIT_ONE, 0);
    layer_add_param(l, "num_batches_tracked", 0, NULL, LAYER_COUNTER, LAYER_INIT_ZERO, 0);
    l->flops = 4.0 * (double)layer_shape_numel(*in);
    return DLCL_OK;
}

static dlcl_status bn_alloc(layer *l, dlcl_ctx *ctx, int batch)
{
    (void)batch;
    bn_priv *p = l->priv;
    p->ctx = ctx;
    if (l->inference) return DLCL_OK;
    dlcl_status st = layer_buf_alloc(ctx, (size_t)p->c, l, "batch mean", &p->save_mean);
    return st == DLCL_OK ? layer_buf_alloc(ctx, (size_t)p->c, l, "batch inverse deviation", &p->save_invstd) : st;
}

/* The index in l->params of running_mean (after weight and bias when affine). */
static int first_buffer(const bn_priv *p) { return p->affine ? 2 : 0; }

static dlcl_status bn_forward(layer *l, const layer_io *io)
{
    bn_priv *p = l->priv;
    op_buf gamma = p->affine ? layer_param_buf(l, io, BN_WEIGHT) : op_b(NULL, 0);
    op_buf beta = p->affine ? layer_param_buf(l, io, BN_BIAS) : op_b(NULL, 0);
    int b = first_buffer(p);
    op_buf rm = layer_param_buf(l, io, b), rv = layer_param_buf(l, io, b + 1);
    if (!io->training)
        return op_batchnorm_forward_eval(io->ctx, io->x[0], io->y, io->count, p->c, p->inner, gamma, beta, rm, rv,
                                         p->eps, p->act);
    io->counters[l->params[b + 2].off]++; /* num_batches_tracked, as each training forward of PyTorch's */
    return op_batchnorm_forward_train(io->ctx, io->x[0], io->y, io->count, p->c, p->inner, gamma, beta, p->eps,
                                      p->momentum, rm, rv, p->save_mean, p->save_invstd, p->act);
}

static dlcl_status bn_backward(layer *l, const layer_io *io)
{
    bn_priv *p = l->priv;
    op_buf gamma = p->affine ? layer_param_buf(l, io, BN_WEIGHT) : op_b(NULL, 0);
    op_buf dgamma = p->affine ? layer_grad_buf(l, io, BN_WEIGHT) : op_b(NULL, 0);
    op_buf dbeta = p->affine ? layer_grad_buf(l, io, BN_BIAS) : op_b(NULL, 0);
    return op_batchnorm_backward(io->ctx, io->x[0], io->y, io->dy, io->dx[0], io->count, p->c, p->inner, gamma,
                                 p->save_mean, p->save_invstd, dgamma, dbeta, p->act);
}

static void bn_describe(const layer *l, char *buf, size_t cap)
{
    const bn_priv *p = l->priv;
    snprintf(buf, cap, "%d channels%s%s", p->c, p->affine ? "" : ", no affine", p->act == OP_ACT_RELU ? ", relu" : "");
}

static void bn_free(layer *l)
{
    bn_priv *p = l->priv;
    if (p == NULL) return;
    if (p->ctx) {
        layer_buf_free(p->ctx, &p->save_mean);
        layer_buf_free(p->ctx, &p->save_invstd);
    }
    free(p);
    l->priv = NULL;
}

const layer_type layer_batchnorm = {"batchnorm", bn_keys, 1, 1, 0, bn_parse, bn_shape, bn_alloc,
                                    bn_forward, bn_backward, bn_describe, bn_free};
