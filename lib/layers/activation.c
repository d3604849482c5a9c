/* [name] type=activation activation=relu|sigmoid|tanh|gelu|gelu_tanh|leaky|linear (slope= for leaky). */
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"

typedef struct act_priv {
    op_act act;
    float slope;
} act_priv;

static const char *const act_keys[] = {"activation", "slope", NULL};

static dlcl_status act_parse(layer *l, const cfg *c, const cfg_section *s)
{
    act_priv *p = calloc(1, sizeof *p);
    if (p == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    l->priv = p;
    if (cfg_find(s, "activation") == NULL)
        return dlcl__err(DLCL_ERR_CONFIG, "%s:%d: [%s]: missing key 'activation'", c->path, s->line, s->name);
    return layer_parse_activation(c, s, &p->act, &p->slope);
}

static dlcl_status act_shape(layer *l)
{
    l->out = l->in[0];
    l->flops = (double)layer_shape_numel(l->in[0]);
    return DLCL_OK;
}

static dlcl_status act_forward(layer *l, const layer_io *io)
{
    act_priv *p = l->priv;
    return op_activation_forward(io->ctx, p->act, p->slope, io->x[0], io->y, layer_io_numel(io, l->out));
}

static dlcl_status act_backward(layer *l, const layer_io *io)
{
    act_priv *p = l->priv;
    if (io->dx[0].mem == NULL) return DLCL_OK;
    return op_activation_backward(io->ctx, p->act, p->slope, io->x[0], io->y, io->dy, io->dx[0],
                                  (size_t)io->count * layer_shape_numel(l->out));
}

static void act_describe(const layer *l, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", op_act_names[((const act_priv *)l->priv)->act]);
}

static void act_eval_affine(const layer *l, const float *params, const float *buffers, op_act *act, float *slope,
                            bool *identity, double *scale, double *shift)
{
    (void)params, (void)buffers;
    const act_priv *p = l->priv;
    *act = p->act;
    *slope = p->slope;
    *identity = true;
    for (int c = 0; scale != NULL && c < l->out.dims[0]; c++) scale[c] = 1.0, shift[c] = 0.0;
}

static void act_free(layer *l)
{
    free(l->priv);
    l->priv = NULL;
}

const layer_type layer_activation = {"activation", act_keys, 1, 1, LAYER_STEPS | LAYER_HALF, act_parse, act_shape,
                                     NULL, act_forward, act_backward, act_describe, act_free, act_eval_affine, NULL};
