/* A layer type is a small vtable registered in one table (lib/layers/common.c); the graph
 * code in lib/net never switches on layer type. A new layer is one file plus one table row.
 *
 * A layer is a node of the net's DAG: it reads the outputs of n_in other nodes (or the
 * net's input) and writes one output. Shapes are per sample, N-d (up to LAYER_MAX_DIMS),
 * with a dtype; the batch dimension is implicit and comes first. */
#ifndef DLCL_LAYER_H
#define DLCL_LAYER_H

#include "../io/config.h"
#include "../ops/ops.h"

typedef struct layer layer;

#define LAYER_MAX_DIMS 4

/* Per-sample shape: an image is C,H,W (3-d), a feature vector 1-d, a sequence T,D (2-d:
 * position-major rows, so a batch of sequences is count*T rows of D values). */
typedef struct layer_shape {
    int ndim;
    int dims[LAYER_MAX_DIMS];
    dlcl_dtype dtype;
} layer_shape;

static inline layer_shape layer_shape_chw(int c, int h, int w) { return (layer_shape){3, {c, h, w, 0}, DLCL_FLOAT32}; }
static inline layer_shape layer_shape_vec(int n) { return (layer_shape){1, {n, 0, 0, 0}, DLCL_FLOAT32}; }

static inline size_t layer_shape_numel(layer_shape s)
{
    size_t n = 1;
    for (int d = 0; d < s.ndim; d++) n *= (size_t)s.dims[d];
    return n;
}

bool layer_shape_equal(layer_shape a, layer_shape b);
/* "64x56x56" (dtype appended when not float32) into buf. */
const char *layer_shape_str(layer_shape s, char *buf, size_t cap);

/* Where a layer_param lives. */
typedef enum layer_region {
    LAYER_PARAM,   /* trainable float32: the optimizer updates it, its gradient has the same layout */
    LAYER_BUFFER,  /* non-trainable float32 state (batch-norm running statistics) */
    LAYER_COUNTER, /* a host int64 scalar (batch norm's num_batches_tracked), saved as I64 */
    LAYER_REGION_COUNT
} layer_region;

/* How the net initialises a tensor (PyTorch's defaults). */
typedef enum layer_init {
    LAYER_INIT_FAN_IN, /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): Conv2d and Linear weights and biases */
    LAYER_INIT_ZERO,
    LAYER_INIT_ONE,
    LAYER_INIT_NORMAL, /* N(0, std^2): nn.Embedding's N(0, 1), GPT-2's N(0, 0.02^2) */
    LAYER_INIT_COUNT
} layer_init;

/* One named tensor of a layer, as stored in checkpoints (PyTorch names and layouts). */
typedef struct layer_param {
    const char *suffix; /* "weight", "bias", "running_mean", ... */
    int ndim;
    int64_t dims[4];
    size_t numel;
    layer_region region;
    layer_init init;
    float fan_in;   /* for LAYER_INIT_FAN_IN */
    float std;      /* for LAYER_INIT_NORMAL */
    size_t off;     /* set by the net: elements from the start of its region */
    /* Not NULL: this trainable tensor is the tensor of the same suffix and shape of the layer
     * named here (weight tying: GPT-2's head reads the token embedding). It has no storage,
     * initialisation, optimizer state or checkpoint name of its own; the net points off at
     * the other's and sums both gradients (layer.accumulate). */
    const char *tie;
} layer_param;

/* An lstm/gru layer holds 4 tensors per stacked layer, up to 8 of them. */
#define LAYER_MAX_PARAMS 32
#define LAYER_MAX_INPUTS 16

/* What a forward or backward pass hands a layer. Activation buffers hold `batch` samples;
 * only the first `count` are valid in this step. */
typedef struct layer_io {
    dlcl_ctx *ctx;
    int batch, count;
    int training;
    const op_buf *x;  /* the n_in inputs */
    const op_buf *dx; /* gradients w.r.t. the inputs, overwritten by backward (mem NULL: not needed) */
    op_buf y, dy;     /* output and its gradient; dy may be overwritten */
    cl_mem params, grads, buffers; /* the net's regions (layer_param.off indexes them) */
    int64_t *counters;             /* LAYER_COUNTER values, host side */
    op_buf ws;                     /* shared workspace of the largest ws_floats */
    uint64_t seed;                 /* per (step, layer), for dropout */
    /* Bit i set: the backward adds the gradient of tensor i into io->grads instead of
     * overwriting it (a weight tied to another layer's, whose gradient is already there). */
    unsigned accumulate;
    /* A cached forward (generation, LAYER_STEPS): each sample holds only the positions
     * pos .. pos+steps-1 of its sequence (rows of the usual layout, steps per sample instead of
     * T); layers with state (attention's keys and values) append to it. 0 in other passes. */
    int steps, pos;
    /* Data-parallel with [net] sync_batchnorm (else NULL): adds n doubles over the ranks in
     * place, blocking; every rank calls it in the same order. */
    dlcl_status (*sum)(void *user, double *v, size_t n);
    void *sum_user;
} layer_io;

/* A sequence shape: T positions first (T,D floats, or T int32 token ids). */
static inline bool layer_shape_is_seq(layer_shape s) { return s.ndim == 2 || (s.ndim == 1 && s.dtype == DLCL_INT32); }

/* Positions per sample of sequence shape s in this pass: io->steps in a cached forward, else T. */
static inline size_t layer_io_steps(const layer_io *io, layer_shape s)
{
    return io->steps > 0 && layer_shape_is_seq(s) ? (size_t)io->steps : (size_t)s.dims[0];
}

/* Values of shape s this pass handles: count samples, each with io->steps positions of a
 * sequence shape in a cached forward. */
static inline size_t layer_io_numel(const layer_io *io, layer_shape s)
{
    size_t n = layer_shape_numel(s);
    if (io->steps > 0 && layer_shape_is_seq(s)) n = n / (size_t)s.dims[0] * (size_t)io->steps;
    return (size_t)io->count * n;
}

/* Flags of a layer type. */
enum {
    /* The output is the input's data, reshaped: no kernel runs, readers read the input's
     * buffer (identity, flatten). */
    LAYER_ALIAS = 1,
    /* Input 0 holds int32 token ids (embedding): when it reads the net's input, the net's
     * input is int32 tokens, e.g. [net] input = T for a context of T positions. */
    LAYER_TOKEN_INPUT = 2,
    /* forward handles a cached pass (layer_io.steps > 0), so nets of it can generate */
    LAYER_STEPS = 4,
    /* Data-parallel: with layer_io.sum set, the training forward and backward call it (batch
     * norm's sync_batchnorm), so a rank without samples still runs them, with count 0. */
    LAYER_COLLECTIVE = 8,
    /* forward takes inputs and outputs stored as half precision (op_buf.half) in an inference
     * net of [net] precision = fp16; a net with a layer of another type refuses fp16 */
    LAYER_HALF = 16,
};

/* The most per-channel layers (batch norm, activations) folded into one conv or dense. */
#define LAYER_MAX_FOLD 4

typedef struct layer_type {
    const char *name;
    const char *const *keys; /* keys it accepts besides type and input; NULL-terminated */
    int min_inputs, max_inputs;
    unsigned flags;
    /* Reads the layer's keys; marks them used. */
    dlcl_status (*parse)(layer *l, const cfg *c, const cfg_section *s);
    /* From l->in[0..n_in-1] sets l->out, l->params/n_params, l->ws_floats, l->flops;
     * DLCL_ERR_SHAPE names the layer. */
    dlcl_status (*shape)(layer *l);
    /* Allocates per-layer device state for `batch` samples (optional). */
    dlcl_status (*alloc)(layer *l, dlcl_ctx *ctx, int batch);
    dlcl_status (*forward)(layer *l, const layer_io *io);
    dlcl_status (*backward)(layer *l, const layer_io *io);
    /* A short description for the summary: "5x5/1 pad 2, relu" (optional). */
    void (*describe)(const layer *l, char *buf, size_t cap);
    /* Releases what parse/alloc made (optional). */
    void (*free)(layer *l);
    /* Inference graph optimisation (lib/net/optimize.c); both optional. */
    /* A layer that in evaluation is a per-channel map y = act(x * scale[c] + shift[c]) over the
     * channels c of out.dims[0] (batch norm; an activation and dropout with scale 1, shift 0).
     * Sets *act, *slope and *identity (scale 1, shift 0 whatever the weights); with scale
     * not NULL, fills its out.dims[0] values of scale and shift from host copies of the
     * parameter and buffer regions (layer_param.off indexes them). */
    void (*eval_affine)(const layer *l, const float *params, const float *buffers, op_act *act, float *slope,
                        bool *identity, double *scale, double *shift);
    /* Takes a per-channel map and activation that follow the layer into its own epilogue:
     * false, changing nothing, unless its activation is linear, its output channels
     * (out.dims[0]) are its weight's (params[0]) leading dimension and it can run act; true
     * once its activation is act: its forward then reads l->fold's weight and bias. */
    bool (*absorb)(layer *l, op_act act, float slope);
} layer_type;

/* What the inference optimiser folded into a conv or dense (from: layer indices, in order):
 * w and b hold W' = W * scale[o] and b' = b * scale[o] + shift[o] of the composed maps (W and
 * b where n is 0: the device copy of a weight kept on the host, net_param_host_only),
 * refolded whenever the weights change; the net's own tensors keep the original values.
 * mem NULL: no such copy, the forward reads the net's tensors. */
typedef struct layer_fold {
    int n, from[LAYER_MAX_FOLD];
    op_buf w, b;
    op_buf wh; /* [net] precision = fp16: the weight (W', or W when nothing folded) as binary16; mem NULL: none */
} layer_fold;

struct layer {
    const layer_type *type;
    const char *name;
    int line;          /* of the section header, for messages */
    int n_in;
    char **in_names;   /* input= names; "input" is the net's input */
    int *in_node;      /* resolved: index of each input's node in the net, -1 the net's input */
    layer_shape *in;   /* the shape of each input */
    layer_shape out;
    layer_param params[LAYER_MAX_PARAMS];
    int n_params;
    size_t param_count; /* trainable floats (LAYER_PARAM tensors) */
    size_t ws_floats;
    int inference; /* set by the net before alloc: only forward passes in evaluation mode will run */
    int half;      /* set by the net before alloc ([net] precision = fp16, inference only): the layer's
                    * inputs and output may be stored as half (op_buf.half says which, per pass), and
                    * its conv or dense weights are (layer_weight_buf); only types with LAYER_HALF */
    int needs_dx;  /* set by the net: the backward must write the gradient of some input */
    double flops;  /* forward FLOPs per sample */
    unsigned accumulate; /* set by the net, handed over as layer_io.accumulate */
    int token_limit; /* LAYER_TOKEN_INPUT: set by shape, the ids input 0 may hold are below this (the vocab) */
    void *priv;    /* type-specific */
    layer_fold fold;  /* inference with [net] optimize or precision = fp16: what folded into this one, and copies */
    int folded_into;  /* inference with [net] optimize: 1 + the index of the layer this one was folded into; 0: none */
    int removed;      /* inference with [net] optimize: an identity in evaluation, now an alias of its input */
};


/* Looks up a type by name; NULL if none. */
const layer_type *layer_type_find(const char *name);
/* NULL-terminated list of type names, for suggestions. */
extern const char *const layer_type_names[];

/* Shared helpers of the layer files. */
dlcl_status layer_parse_activation(const cfg *c, const cfg_section *s, op_act *act, float *slope);
/* Input k must be C,H,W: DLCL_ERR_SHAPE naming the layer otherwise. */
dlcl_status layer_want_chw(const layer *l, int k);
/* Adds a tensor to l->params (the net assigns its offset). */
void layer_add_param(layer *l, const char *suffix, int ndim, const int64_t *dims, layer_region region,
                     layer_init init, float fan_in);
/* Views of tensor i of l in the regions io hands over. */
static inline op_buf layer_param_buf(const layer *l, const layer_io *io, int i)
{
    return op_b(l->params[i].region == LAYER_PARAM ? io->params : io->buffers, l->params[i].off);
}
/* The weight and bias a forward runs with: the folded copies when the inference optimiser
 * folded layers into l, else tensors w and b (b < 0: none) of the regions. */
static inline op_buf layer_weight_buf(const layer *l, const layer_io *io, int w)
{
    if (l->fold.wh.mem != NULL) return l->fold.wh;
    return l->fold.w.mem != NULL ? l->fold.w : layer_param_buf(l, io, w);
}
static inline op_buf layer_bias_buf(const layer *l, const layer_io *io, int b)
{
    if (l->fold.b.mem != NULL) return l->fold.b;
    return b < 0 ? op_b(NULL, 0) : layer_param_buf(l, io, b);
}
static inline op_buf layer_grad_buf(const layer *l, const layer_io *io, int i) { return op_b(io->grads, l->params[i].off); }
/* Device buffer of n floats owned by a layer (released with layer_buf_free). */
dlcl_status layer_buf_alloc(dlcl_ctx *ctx, size_t n, const layer *l, const char *what, op_buf *out);
void layer_buf_free(dlcl_ctx *ctx, op_buf *b);

extern const layer_type layer_conv, layer_dense, layer_maxpool, layer_avgpool, layer_global_avgpool,
    layer_dropout, layer_activation, layer_add, layer_concat, layer_upsample, layer_flatten, layer_identity,
    layer_batchnorm, layer_embedding, layer_position_embedding, layer_layernorm, layer_lstm, layer_gru;
extern const layer_type layer_attention;

/* Incremental forward of an attention layer for generation, in evaluation mode: io->x[0] holds
 * n_new rows of width per sequence (positions pos .. pos + n_new - 1 of io->count sequences,
 * position-major), io->y gets as many; io->ctx, io->params and io->ws (the net's workspace)
 * are read too. k_cache and v_cache hold attention_cache_floats(l, count) floats each,
 * [count][T][width] (T the layer's context), positions 0 .. pos - 1 filled by earlier calls;
 * this call writes the new positions' keys and values there. One call over positions 0 .. T - 1
 * gives the full forward's output; so do T calls of one position each. */
dlcl_status attention_forward_cached(layer *l, const layer_io *io, op_buf k_cache, op_buf v_cache, int pos, int n_new);
size_t attention_cache_floats(const layer *l, int batch);

#endif
