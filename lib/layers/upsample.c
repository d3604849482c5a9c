/* [name] type=upsample scale=2: nearest-neighbour upsampling of C,H,W images by an integer
 * factor, as nn.Upsample(scale_factor=s, mode='nearest'). */
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"

static const char *const upsample_keys[] = {"scale", NULL};

static dlcl_status upsample_parse(layer *l, const cfg *c, const cfg_section *s)
{
    long scale;
    dlcl_status st = cfg_get_int(c, s, "scale", 0, 2, 1, 64, &scale);
    if (st != DLCL_OK) return st;
    int *p = malloc(sizeof *p);
    if (p == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    *p = (int)scale;
    l->priv = p;
    return DLCL_OK;
}

static int scale_of(const layer *l) { return *(const int *)l->priv; }

static dlcl_status upsample_shape(layer *l)
{
    dlcl_status st = layer_want_chw(l, 0);
    if (st != DLCL_OK) return st;
    int s = scale_of(l);
    const layer_shape *in = &l->in[0];
    if ((size_t)in->dims[1] * s > (size_t)1 << 20 || (size_t)in->dims[2] * s > (size_t)1 << 20)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s]: %dx%d upsampled by %d is too large", l->name, in->dims[1],
                         in->dims[2], s);
    l->out = layer_shape_chw(in->dims[0], in->dims[1] * s, in->dims[2] * s);
    return DLCL_OK;
}

static dlcl_status upsample_forward(layer *l, const layer_io *io)
{
    const layer_shape *in = &l->in[0];
    return op_upsample_nearest_forward(io->ctx, io->count * in->dims[0], in->dims[1], in->dims[2], scale_of(l), io->x[0],
                                       io->y);
}

static dlcl_status upsample_backward(layer *l, const layer_io *io)
{
    if (io->dx[0].mem == NULL) return DLCL_OK;
    const layer_shape *in = &l->in[0];
    return op_upsample_nearest_backward(io->ctx, io->count * in->dims[0], in->dims[1], in->dims[2], scale_of(l), io->dy,
                                        io->dx[0]);
}

static void upsample_describe(const layer *l, char *buf, size_t cap) { snprintf(buf, cap, "nearest x%d", scale_of(l)); }

static void upsample_free(layer *l)
{
    free(l->priv);
    l->priv = NULL;
}

const layer_type layer_upsample = {"upsample", upsample_keys, 1, 1, LAYER_HALF, upsample_parse, upsample_shape, NULL,
                                   upsample_forward, upsample_backward, upsample_describe, upsample_free, NULL, NULL};
