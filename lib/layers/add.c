/* [name] type=add input=a, b[, ...] [activation=relu]: the residual sum of two or more
 * inputs of one shape, y = act(a + b + ...), act linear or relu (fused). */
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"

typedef struct add_priv {
    op_act act;
} add_priv;

static const char *const add_keys[] = {"activation", "slope", NULL};

static dlcl_status add_parse(layer *l, const cfg *c, const cfg_section *s)
{
    add_priv *p = calloc(1, sizeof *p);
    if (p == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    l->priv = p;
    float slope;
    dlcl_status st = layer_parse_activation(c, s, &p->act, &slope);
    if (st == DLCL_OK && p->act != OP_ACT_LINEAR && p->act != OP_ACT_RELU) {
        const cfg_entry *e = cfg_find(s, "activation");
        char where[64];
        st = dlcl__err(DLCL_ERR_CONFIG, "%s: [%s] activation = '%s': add fuses relu or linear; put an activation "
                       "layer after it for others", cfg_where(c, e ? e->line : s->line, where, sizeof where), s->name,
                       e ? e->value : "");
    }
    return st;
}

static dlcl_status add_shape(layer *l)
{
    for (int k = 1; k < l->n_in; k++)
        if (!layer_shape_equal(l->in[k], l->in[0])) {
            char a[64], b[64];
            return dlcl__err(DLCL_ERR_SHAPE, "layer [%s] (add): its inputs differ in shape: [%s] is %s, [%s] is %s",
                             l->name, l->in_names[0], layer_shape_str(l->in[0], a, sizeof a), l->in_names[k],
                             layer_shape_str(l->in[k], b, sizeof b));
        }
    l->out = l->in[0];
    l->flops = (double)(l->n_in - 1) * (double)layer_shape_numel(l->out);
    return DLCL_OK;
}

static dlcl_status add_forward(layer *l, const layer_io *io)
{
    const add_priv *p = l->priv;
    return op_add(io->ctx, io->x, l->n_in, io->y, layer_io_numel(io, l->out), p->act == OP_ACT_RELU);
}

/* Every input's gradient is dy (through the relu): copies, one per input that needs one. */
static dlcl_status add_backward(layer *l, const layer_io *io)
{
    const add_priv *p = l->priv;
    size_t n = (size_t)io->count * layer_shape_numel(l->out);
    dlcl_status st = DLCL_OK;
    if (p->act == OP_ACT_RELU) st = op_relu_grad(io->ctx, io->y, io->dy, io->dy, n);
    for (int k = 0; st == DLCL_OK && k < l->n_in; k++)
        if (io->dx[k].mem != NULL) st = op_copy_rows(io->ctx, io->dy, n, io->dx[k], n, 1, n);
    return st;
}

static void add_describe(const layer *l, char *buf, size_t cap)
{
    const add_priv *p = l->priv;
    snprintf(buf, cap, "%d inputs%s", l->n_in, p->act == OP_ACT_RELU ? ", relu" : "");
}

static void add_free(layer *l)
{
    free(l->priv);
    l->priv = NULL;
}

const layer_type layer_add = {"add", add_keys, 2, LAYER_MAX_INPUTS, LAYER_STEPS | LAYER_HALF, add_parse, add_shape,
                              NULL, add_forward, add_backward, add_describe, add_free, NULL, NULL};
