/* [name] type=dropout rate=0.5: inverted dropout in training, identity in evaluation. */
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"

typedef struct dropout_priv {
    float rate;
    dlcl_ctx *ctx;
    op_buf mask;
} dropout_priv;

static const char *const dropout_keys[] = {"rate", NULL};

static dlcl_status dropout_parse(layer *l, const cfg *c, const cfg_section *s)
{
    dropout_priv *p = calloc(1, sizeof *p);
    if (p == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    l->priv = p;
    double rate;
    dlcl_status st = cfg_get_float(c, s, "rate", 0, 0.5, 0.0, 0.999, &rate);
    p->rate = (float)rate;
    return st;
}

static dlcl_status dropout_shape(layer *l)
{
    l->out = l->in[0];
    return DLCL_OK;
}

static dlcl_status dropout_alloc(layer *l, dlcl_ctx *ctx, int batch)
{
    dropout_priv *p = l->priv;
    p->ctx = ctx;
    if (l->inference) return DLCL_OK; /* evaluation copies its input: no mask */
    return layer_buf_alloc(ctx, (size_t)batch * layer_shape_numel(l->out), l, "dropout mask", &p->mask);
}

static dlcl_status copy(dlcl_ctx *ctx, op_buf src, op_buf dst, size_t n)
{
    if (src.mem == dst.mem && src.off == dst.off) return DLCL_OK;
    cl_int err = clEnqueueCopyBuffer(ctx->queue, src.mem, dst.mem, src.off * sizeof(float), dst.off * sizeof(float),
                                     n * sizeof(float), 0, NULL, NULL);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clEnqueueCopyBuffer (dropout)");
}

static dlcl_status dropout_forward(layer *l, const layer_io *io)
{
    dropout_priv *p = l->priv;
    size_t n = layer_io_numel(io, l->out);
    if (!io->training || p->rate == 0.0f) return copy(io->ctx, io->x[0], io->y, n);
    return op_dropout_forward(io->ctx, p->rate, io->seed, io->x[0], io->y, p->mask, n);
}

static dlcl_status dropout_backward(layer *l, const layer_io *io)
{
    dropout_priv *p = l->priv;
    if (io->dx[0].mem == NULL) return DLCL_OK;
    size_t n = (size_t)io->count * layer_shape_numel(l->out);
    if (p->rate == 0.0f) return copy(io->ctx, io->dy, io->dx[0], n);
    return op_dropout_backward(io->ctx, io->dy, p->mask, io->dx[0], n);
}

static void dropout_describe(const layer *l, char *buf, size_t cap)
{
    snprintf(buf, cap, "rate %g", (double)((const dropout_priv *)l->priv)->rate);
}

/* Evaluation copies the input: an identity the inference optimiser removes. */
static void dropout_eval_affine(const layer *l, const float *params, const float *buffers, op_act *act, float *slope,
                                bool *identity, double *scale, double *shift)
{
    (void)params, (void)buffers;
    *act = OP_ACT_LINEAR;
    *slope = 0.0f;
    *identity = true;
    for (int c = 0; scale != NULL && c < l->out.dims[0]; c++) scale[c] = 1.0, shift[c] = 0.0;
}

static void dropout_free(layer *l)
{
    dropout_priv *p = l->priv;
    if (p == NULL) return;
    if (p->ctx) layer_buf_free(p->ctx, &p->mask);
    free(p);
    l->priv = NULL;
}

const layer_type layer_dropout = {"dropout", dropout_keys, 1, 1, LAYER_STEPS, dropout_parse, dropout_shape, dropout_alloc,
                                  dropout_forward, dropout_backward, dropout_describe, dropout_free,
                                  dropout_eval_affine, NULL};
