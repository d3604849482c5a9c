/* The layer type table and helpers shared by the layer files. */
#include <stdio.h>
#include <string.h>

#include "layer.h"

static const layer_type *const types[] = {
    &layer_conv, &layer_dense, &layer_maxpool, &layer_avgpool, &layer_global_avgpool, &layer_dropout,
    &layer_activation, &layer_add, &layer_concat, &layer_upsample, &layer_flatten, &layer_identity,
    &layer_batchnorm, &layer_embedding, &layer_position_embedding, &layer_layernorm, &layer_attention,
    &layer_lstm, &layer_gru,
};

/* The names of types[], in the same order, for suggestions and messages. */
const char *const layer_type_names[] = {
    "conv", "dense", "maxpool", "avgpool", "global_avgpool", "dropout", "activation", "add", "concat", "upsample",
    "flatten", "identity", "batchnorm", "embedding", "position_embedding", "layernorm", "attention", "lstm",
    "gru", NULL,
};
_Static_assert(DLCL__ARRAY_LEN(layer_type_names) == DLCL__ARRAY_LEN(types) + 1, "one name per layer type");

const layer_type *layer_type_find(const char *name)
{
    for (size_t i = 0; i < DLCL__ARRAY_LEN(types); i++)
        if (strcmp(types[i]->name, name) == 0) return types[i];
    return NULL;
}

bool layer_shape_equal(layer_shape a, layer_shape b)
{
    if (a.ndim != b.ndim || a.dtype != b.dtype) return false;
    for (int d = 0; d < a.ndim; d++)
        if (a.dims[d] != b.dims[d]) return false;
    return true;
}

const char *layer_shape_str(layer_shape s, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int d = 0; d < s.ndim && n < cap; d++) n += (size_t)snprintf(buf + n, cap - n, "%s%d", d ? "x" : "", s.dims[d]);
    if (s.dtype == DLCL_INT32 && n < cap) snprintf(buf + n, cap - n, " int32");
    return buf;
}

dlcl_status layer_parse_activation(const cfg *c, const cfg_section *s, op_act *act, float *slope)
{
    int a;
    dlcl_status st = cfg_get_enum(c, s, "activation", 0, OP_ACT_LINEAR, op_act_names, &a);
    if (st != DLCL_OK) return st;
    double sl;
    st = cfg_get_float(c, s, "slope", 0, 0.01, -1e6, 1e6, &sl);
    if (st != DLCL_OK) return st;
    *act = (op_act)a;
    *slope = (float)sl;
    return DLCL_OK;
}

dlcl_status layer_want_chw(const layer *l, int k)
{
    if (l->in[k].ndim == 3) return DLCL_OK;
    char s[64];
    return dlcl__err(DLCL_ERR_SHAPE, "layer [%s] (%s): needs a C,H,W input, but %s is %s (%d-d)", l->name,
                     l->type->name, l->in_names && l->in_names[k] ? l->in_names[k] : "its input",
                     layer_shape_str(l->in[k], s, sizeof s), l->in[k].ndim);
}

void layer_add_param(layer *l, const char *suffix, int ndim, const int64_t *dims, layer_region region,
                     layer_init init, float fan_in)
{
    layer_param *p = &l->params[l->n_params++];
    *p = (layer_param){.suffix = suffix, .ndim = ndim, .region = region, .init = init, .fan_in = fan_in, .numel = 1};
    for (int d = 0; d < ndim; d++) {
        p->dims[d] = dims[d];
        p->numel *= (size_t)dims[d];
    }
    if (region == LAYER_PARAM) l->param_count += p->numel;
}

dlcl_status layer_buf_alloc(dlcl_ctx *ctx, size_t n, const layer *l, const char *what, op_buf *out)
{
    char label[160];
    size_t bytes;
    snprintf(label, sizeof label, "[%s] %s", l->name, what);
    if (!dlcl__mul_ok(n, sizeof(float), &bytes)) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: size overflows", label);
    out->off = 0;
    return rt_buffer_acquire(ctx, bytes, label, &out->mem);
}

void layer_buf_free(dlcl_ctx *ctx, op_buf *b)
{
    if (b->mem != NULL) rt_buffer_release(ctx, b->mem);
    b->mem = NULL;
}
