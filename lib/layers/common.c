/* Helpers shared by the layer files and the type table. */
#include <stdio.h>
#include <string.h>

#include "layer.h"

static const layer_type *const types[] = {
    &layer_conv, &layer_dense, &layer_maxpool, &layer_avgpool, &layer_global_avgpool, &layer_dropout,
    &layer_activation,
};

static const char *type_names[DLCL__ARRAY_LEN(types) + 1];

const layer_type *layer_type_find(const char *name)
{
    for (size_t i = 0; i < DLCL__ARRAY_LEN(types); i++)
        if (strcmp(types[i]->name, name) == 0) return types[i];
    return NULL;
}

const char *const *layer_type_names(void)
{
    for (size_t i = 0; i < DLCL__ARRAY_LEN(types); i++) type_names[i] = types[i]->name;
    type_names[DLCL__ARRAY_LEN(types)] = NULL;
    return type_names;
}

dlcl_status layer_parse_activation(const cfg *c, const cfg_section *s, op_act *act, float *slope)
{
    static const char *names[OP_ACT_COUNT + 2];
    for (int i = 0; i < OP_ACT_COUNT; i++) names[i] = op_act_names[i];
    names[OP_ACT_COUNT] = NULL;
    int a;
    dlcl_status st = cfg_get_enum(c, s, "activation", 0, OP_ACT_LINEAR, names, &a);
    if (st != DLCL_OK) return st;
    double sl;
    st = cfg_get_float(c, s, "slope", 0, 0.01, -1e6, 1e6, &sl);
    if (st != DLCL_OK) return st;
    *act = (op_act)a;
    *slope = (float)sl;
    return DLCL_OK;
}

dlcl_status layer_buf_alloc(dlcl_ctx *ctx, size_t n, const layer *l, const char *what, op_buf *out, size_t *bytes)
{
    char label[160];
    snprintf(label, sizeof label, "[%s] %s", l->name, what);
    if (!dlcl__mul_ok(n, sizeof(float), bytes)) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: size overflows", label);
    out->off = 0;
    return rt_buffer_acquire(ctx, *bytes, label, &out->mem);
}

void layer_buf_free(dlcl_ctx *ctx, op_buf *b, size_t bytes)
{
    if (b->mem != NULL) rt_buffer_release(ctx, b->mem, bytes);
    b->mem = NULL;
}
