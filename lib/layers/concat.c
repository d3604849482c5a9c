/* [name] type=concat input=a, b[, ...]: concatenation along the first per-sample dimension
 * (channels of C,H,W images), as torch.cat(dim=1); the other dimensions must agree. */
#include <stdio.h>

#include "layer.h"

static const char *const concat_keys[] = {NULL};

static dlcl_status concat_parse(layer *l, const cfg *c, const cfg_section *s)
{
    (void)l, (void)c, (void)s;
    return DLCL_OK;
}

static dlcl_status concat_shape(layer *l)
{
    layer_shape out = l->in[0];
    for (int k = 1; k < l->n_in; k++) {
        layer_shape a = l->in[0], b = l->in[k];
        bool same = a.ndim == b.ndim && a.dtype == b.dtype;
        for (int d = 1; same && d < a.ndim; d++) same = a.dims[d] == b.dims[d];
        if (!same) {
            char sa[64], sb[64];
            return dlcl__err(DLCL_ERR_SHAPE, "layer [%s] (concat): [%s] is %s and [%s] is %s; all but the first "
                             "(channel) dimension must agree", l->name, l->in_names[0],
                             layer_shape_str(a, sa, sizeof sa), l->in_names[k], layer_shape_str(b, sb, sizeof sb));
        }
        out.dims[0] += b.dims[0];
    }
    l->out = out;
    return DLCL_OK;
}

/* Each input is a block of numel(in[k]) values per sample, placed at its offset in the
 * sample's output: one strided copy per input. */
static dlcl_status concat_forward(layer *l, const layer_io *io)
{
    size_t total = layer_shape_numel(l->out), at = 0;
    dlcl_status st = DLCL_OK;
    for (int k = 0; st == DLCL_OK && k < l->n_in; k++) {
        size_t inner = layer_shape_numel(l->in[k]);
        st = op_copy_rows(io->ctx, io->x[k], inner, op_at(io->y, at), total, (size_t)io->count, inner);
        at += inner;
    }
    return st;
}

static dlcl_status concat_backward(layer *l, const layer_io *io)
{
    size_t total = layer_shape_numel(l->out), at = 0;
    dlcl_status st = DLCL_OK;
    for (int k = 0; st == DLCL_OK && k < l->n_in; k++) {
        size_t inner = layer_shape_numel(l->in[k]);
        if (io->dx[k].mem != NULL)
            st = op_copy_rows(io->ctx, op_b(io->dy.mem, io->dy.off + at), total, io->dx[k], inner, (size_t)io->count,
                              inner);
        at += inner;
    }
    return st;
}

static void concat_describe(const layer *l, char *buf, size_t cap) { snprintf(buf, cap, "%d inputs", l->n_in); }

const layer_type layer_concat = {"concat", concat_keys, 2, LAYER_MAX_INPUTS, LAYER_HALF, concat_parse, concat_shape,
                                 NULL, concat_forward, concat_backward, concat_describe, NULL, NULL, NULL};
