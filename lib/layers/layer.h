/* A layer type is a small vtable registered in one table (registry.c); the graph code in
 * lib/net never switches on layer type. A new layer is one file plus one table row. */
#ifndef DLCL_LAYER_H
#define DLCL_LAYER_H

#include "../io/config.h"
#include "../ops/ops.h"

typedef struct layer layer;

/* Per-sample shape: channels, height, width (a dense output is c=units, h=w=1). */
typedef struct layer_shape {
    int c, h, w;
} layer_shape;

static inline size_t layer_shape_numel(layer_shape s) { return (size_t)s.c * (size_t)s.h * (size_t)s.w; }

/* One named parameter tensor of a layer, as stored in checkpoints (PyTorch names/layouts). */
typedef struct layer_param {
    const char *suffix; /* "weight", "bias" */
    int ndim;
    int64_t dims[4];
    size_t offset; /* floats from the layer's param_off */
    size_t numel;
    float fan_in; /* for PyTorch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
} layer_param;

#define LAYER_MAX_PARAMS 4

/* What a forward or backward pass hands a layer. Activation buffers hold `batch` samples;
 * only the first `count` are valid in this step. */
typedef struct layer_io {
    dlcl_ctx *ctx;
    int batch, count;
    int training;
    op_buf x, y;   /* input and output activations */
    op_buf dx, dy; /* gradients w.r.t. input (dx.mem NULL: not needed) and output; dy may be overwritten */
    cl_mem params, grads;
    op_buf ws;     /* shared workspace of net->ws_floats */
    uint64_t seed; /* per (step, layer), for dropout */
} layer_io;

typedef struct layer_type {
    const char *name;
    const char *const *keys; /* keys it accepts besides type and input; NULL-terminated */
    /* Reads the layer's keys; marks them used. */
    dlcl_status (*parse)(layer *l, const cfg *c, const cfg_section *s);
    /* From l->in sets l->out, l->params/n_params, l->ws_floats, l->flops; DLCL_ERR_SHAPE names the layer. */
    dlcl_status (*shape)(layer *l);
    /* Allocates per-layer device state for `batch` samples (optional). */
    dlcl_status (*alloc)(layer *l, dlcl_ctx *ctx, int batch);
    dlcl_status (*forward)(layer *l, const layer_io *io);
    dlcl_status (*backward)(layer *l, const layer_io *io);
    /* A short description for the summary: "5x5/1 pad 2, relu" (optional). */
    void (*describe)(const layer *l, char *buf, size_t cap);
    /* Releases what parse/alloc made (optional). */
    void (*free)(layer *l);
} layer_type;

struct layer {
    const layer_type *type;
    char *name;
    int line; /* of the section header, for messages */
    const char *input; /* input= value (a section name) or NULL for the previous layer */
    int input_index;   /* resolved: -1 is the network input */
    layer_shape in, out;
    layer_param params[LAYER_MAX_PARAMS];
    int n_params;
    size_t param_off, param_count; /* slice of the net's flat parameter buffer */
    size_t ws_floats;
    int inference; /* set by the net before alloc: only forward passes in evaluation mode will run */
    double flops; /* forward FLOPs per sample */
    void *priv;   /* type-specific */
};

/* Looks up a type by name; NULL if none. */
const layer_type *layer_type_find(const char *name);
/* NULL-terminated list of type names, for suggestions. */
const char *const *layer_type_names(void);

/* Shared helpers of the layer files. */
dlcl_status layer_parse_activation(const cfg *c, const cfg_section *s, op_act *act, float *slope);
/* Device buffer of n floats owned by a layer (released with layer_buf_free). */
dlcl_status layer_buf_alloc(dlcl_ctx *ctx, size_t n, const layer *l, const char *what, op_buf *out, size_t *bytes);
void layer_buf_free(dlcl_ctx *ctx, op_buf *b, size_t bytes);

extern const layer_type layer_conv, layer_dense, layer_maxpool, layer_avgpool, layer_global_avgpool,
    layer_dropout, layer_activation;

#endif
