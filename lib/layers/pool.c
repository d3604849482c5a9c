/* [name] type=maxpool | avgpool: 2-D pooling, PyTorch floor semantics (avg counts padding
 * as nn.AvgPool2d's default). [name] type=global_avgpool: mean over H, W. */
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"

typedef struct pool_priv {
    op_pool_shape shape;
    int is_max;
    dlcl_ctx *ctx;
    cl_mem idx; /* argmax for max pooling; NULL in an inference net */
} pool_priv;

static const char *const pool_keys[] = {"size", "stride", "pad", NULL};

static dlcl_status pool_parse_common(layer *l, const cfg *c, const cfg_section *s, int is_max)
{
    pool_priv *p = calloc(1, sizeof *p);
    if (p == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    l->priv = p;
    p->is_max = is_max;
    long size, stride, pad;
    dlcl_status st;
    if ((st = cfg_get_int(c, s, "size", 0, 2, 1, 1024, &size)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "stride", 0, size, 1, 1024, &stride)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "pad", 0, 0, 0, 512, &pad)) != DLCL_OK)
        return st;
    p->shape = (op_pool_shape){.size_h = (int)size, .size_w = (int)size, .stride_h = (int)stride,
                               .stride_w = (int)stride, .pad_h = (int)pad, .pad_w = (int)pad};
    return DLCL_OK;
}

static dlcl_status maxpool_parse(layer *l, const cfg *c, const cfg_section *s) { return pool_parse_common(l, c, s, 1); }
static dlcl_status avgpool_parse(layer *l, const cfg *c, const cfg_section *s) { return pool_parse_common(l, c, s, 0); }

static dlcl_status pool_shape(layer *l)
{
    pool_priv *p = l->priv;
    op_pool_shape *s = &p->shape;
    dlcl_status st = layer_want_chw(l, 0);
    if (st != DLCL_OK) return st;
    s->n = 1;
    s->c = l->in[0].dims[0];
    s->h = l->in[0].dims[1];
    s->w = l->in[0].dims[2];
    st = op_pool_shape_infer(s);
    if (st != DLCL_OK) return dlcl__err_prefix(st, "layer [%s]", l->name);
    l->out = layer_shape_chw(s->c, s->p, s->q);
    l->flops = (double)s->c * s->p * s->q * s->size_h * s->size_w;
    return DLCL_OK;
}

static dlcl_status pool_alloc(layer *l, dlcl_ctx *ctx, int batch)
{
    pool_priv *p = l->priv;
    p->ctx = ctx;
    if (!p->is_max || l->inference) return DLCL_OK; /* inference: no backward reads an argmax */
    size_t n = (size_t)batch * layer_shape_numel(l->out);
    char what[128];
    snprintf(what, sizeof what, "[%s] argmax", l->name);
    return rt_buffer_acquire(ctx, n * sizeof(int32_t), what, &p->idx);
}

static dlcl_status pool_forward(layer *l, const layer_io *io)
{
    pool_priv *p = l->priv;
    op_pool_shape s = p->shape;
    s.n = io->count;
    return p->is_max ? op_maxpool_forward(io->ctx, &s, io->x[0], io->y, p->idx)
                     : op_avgpool_forward(io->ctx, &s, io->x[0], io->y);
}

static dlcl_status pool_backward(layer *l, const layer_io *io)
{
    pool_priv *p = l->priv;
    if (io->dx[0].mem == NULL) return DLCL_OK;
    op_pool_shape s = p->shape;
    s.n = io->count;
    return p->is_max ? op_maxpool_backward(io->ctx, &s, io->dy, p->idx, io->dx[0])
                     : op_avgpool_backward(io->ctx, &s, io->dy, io->dx[0]);
}

static void pool_describe(const layer *l, char *buf, size_t cap)
{
    const pool_priv *p = l->priv;
    snprintf(buf, cap, "%dx%d/%d pad %d", p->shape.size_h, p->shape.size_w, p->shape.stride_h, p->shape.pad_h);
}

static void pool_free(layer *l)
{
    pool_priv *p = l->priv;
    if (p == NULL) return;
    if (p->ctx) rt_buffer_release(p->ctx, p->idx);
    free(p);
    l->priv = NULL;
}

const layer_type layer_maxpool = {"maxpool", pool_keys, 1, 1, LAYER_HALF, maxpool_parse, pool_shape,
                                  pool_alloc, pool_forward, pool_backward, pool_describe, pool_free, NULL, NULL};
const layer_type layer_avgpool = {"avgpool", pool_keys, 1, 1, LAYER_HALF, avgpool_parse, pool_shape,
                                  pool_alloc, pool_forward, pool_backward, pool_describe, pool_free, NULL, NULL};

/* ------------------------------------------------------------------ global average pooling */

static const char *const gap_keys[] = {NULL};

static dlcl_status gap_parse(layer *l, const cfg *c, const cfg_section *s)
{
    (void)l, (void)c, (void)s;
    return DLCL_OK;
}

/* Output C x 1 x 1, as nn.AdaptiveAvgPool2d(1). */
static dlcl_status gap_shape(layer *l)
{
    dlcl_status st = layer_want_chw(l, 0);
    if (st != DLCL_OK) return st;
    l->out = layer_shape_chw(l->in[0].dims[0], 1, 1);
    l->flops = (double)layer_shape_numel(l->in[0]);
    return DLCL_OK;
}

static int gap_hw(const layer *l) { return l->in[0].dims[1] * l->in[0].dims[2]; }

static dlcl_status gap_forward(layer *l, const layer_io *io)
{
    return op_global_avgpool_forward(io->ctx, io->count, l->in[0].dims[0], gap_hw(l), io->x[0], io->y);
}

static dlcl_status gap_backward(layer *l, const layer_io *io)
{
    if (io->dx[0].mem == NULL) return DLCL_OK;
    return op_global_avgpool_backward(io->ctx, io->count, l->in[0].dims[0], gap_hw(l), io->dy, io->dx[0]);
}

const layer_type layer_global_avgpool = {"global_avgpool", gap_keys, 1, 1, LAYER_HALF, gap_parse, gap_shape,
                                         NULL, gap_forward, gap_backward, NULL, NULL, NULL, NULL};
