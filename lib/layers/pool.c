/* [name] type=maxpool | avgpool: 2-D pooling, PyTorch floor semantics (avg counts padding
 * as nn.AvgPool2d's default). [name] type=global_avgpool: mean over H, W. */
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"

typedef struct pool_priv {
    op_pool_shape shape;
    int is_max;
    dlcl_ctx *ctx;
    cl_mem idx; /* argmax for max pooling */
    size_t idx_bytes;
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
    s->n = 1;
    s->c = l->in.c;
    s->h = l->in.h;
    s->w = l->in.w;
    dlcl_status st = op_pool_shape_infer(s);
    if (st != DLCL_OK) return dlcl__err_prefix(st, "layer [%s]", l->name);
    l->out = (layer_shape){s->c, s->p, s->q};
    l->flops = (double)s->c * s->p * s->q * s->size_h * s->size_w;
    return DLCL_OK;
}

static dlcl_status pool_alloc(layer *l, dlcl_ctx *ctx, int batch)
{
    pool_priv *p = l->priv;
    p->ctx = ctx;
    if (!p->is_max) return DLCL_OK;
    size_t n = (size_t)batch * layer_shape_numel(l->out);
    p->idx_bytes = n * sizeof(int32_t);
    char what[128];
    snprintf(what, sizeof what, "[%s] argmax", l->name);
    return rt_buffer_acquire(ctx, p->idx_bytes, what, &p->idx);
}

static dlcl_status pool_forward(layer *l, const layer_io *io)
{
    pool_priv *p = l->priv;
    op_pool_shape s = p->shape;
    s.n = io->count;
    return p->is_max ? op_maxpool_forward(io->ctx, &s, io->x, io->y, p->idx)
                     : op_avgpool_forward(io->ctx, &s, io->x, io->y);
}

static dlcl_status pool_backward(layer *l, const layer_io *io)
{
    pool_priv *p = l->priv;
    if (io->dx.mem == NULL) return DLCL_OK;
    op_pool_shape s = p->shape;
    s.n = io->count;
    return p->is_max ? op_maxpool_backward(io->ctx, &s, io->dy, p->idx, io->dx)
                     : op_avgpool_backward(io->ctx, &s, io->dy, io->dx);
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
    if (p->ctx && p->idx) rt_buffer_release(p->ctx, p->idx, p->idx_bytes);
    free(p);
    l->priv = NULL;
}

const layer_type layer_maxpool = {"maxpool", pool_keys, maxpool_parse, pool_shape, pool_alloc,
                                  pool_forward, pool_backward, pool_describe, pool_free};
const layer_type layer_avgpool = {"avgpool", pool_keys, avgpool_parse, pool_shape, pool_alloc,
                                  pool_forward, pool_backward, pool_describe, pool_free};

/* ------------------------------------------------------------------ global average pooling */

static const char *const gap_keys[] = {NULL};

static dlcl_status gap_parse(layer *l, const cfg *c, const cfg_section *s)
{
    (void)l, (void)c, (void)s;
    return DLCL_OK;
}

static dlcl_status gap_shape(layer *l)
{
    l->out = (layer_shape){l->in.c, 1, 1};
    l->flops = (double)layer_shape_numel(l->in);
    return DLCL_OK;
}

static dlcl_status gap_forward(layer *l, const layer_io *io)
{
    return op_global_avgpool_forward(io->ctx, io->count, l->in.c, l->in.h * l->in.w, io->x, io->y);
}

static dlcl_status gap_backward(layer *l, const layer_io *io)
{
    if (io->dx.mem == NULL) return DLCL_OK;
    return op_global_avgpool_backward(io->ctx, io->count, l->in.c, l->in.h * l->in.w, io->dy, io->dx);
}

const layer_type layer_global_avgpool = {"global_avgpool", gap_keys, gap_parse, gap_shape, NULL,
                                         gap_forward, gap_backward, NULL, NULL};
