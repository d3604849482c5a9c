/* The network: a DAG of layers in topological order over three flat device regions
 * (trainable parameters with their gradients, non-trainable buffers, optimizer state). */
#ifndef DLCL_NET_H
#define DLCL_NET_H

#include "../layers/layer.h"
#include "optim.h"

typedef enum net_data_format {
    NET_DATA_IDX,
    NET_DATA_CIFAR,
    NET_DATA_FOLDER,
    NET_DATA_SYNTHETIC,
    NET_DATA_TOKENS,
    NET_DATA_TEXT,
    NET_DATA_FORMAT_COUNT
} net_data_format;

typedef struct net_data_cfg {
    net_data_format format;
    char *paths[DLCL_SPLIT_COUNT][2]; /* idx: [split][0 images, 1 labels], resolved against the config dir */
    const char *files[DLCL_SPLIT_COUNT]; /* cifar, folder, tokens, text: the train= / test= value as written (owned by
                                          * net->cfg), resolved when a loader opens it */
    double scale;
    int n_mean, n_std; /* 1 (every channel) or the input's channels */
    double mean[64], std[64];
    int shuffle;
    int workers;                 /* loader threads; 0: online CPUs, at most 8 */
    int resize, crop;            /* short side to resize, centre crop (crop = the input's size) */
    int random_crop, flip, random_resized_crop; /* training augmentation */
    int antialias;               /* resize as PIL does (1, the default) or plain bilinear (0) */
    long limit[DLCL_SPLIT_COUNT]; /* use only the first N samples (0: all); synthetic: the split's size */
    long max_image_pixels;        /* larger images are refused from their header */
} net_data_cfg;

/* What a training step calls back after each phase (profiling times them; data-parallel
 * training reduces the gradients of a layer as soon as its backward has run). */
typedef enum net_phase { NET_PHASE_FORWARD, NET_PHASE_LOSS, NET_PHASE_BACKWARD, NET_PHASE_STEP, NET_PHASE_COUNT } net_phase;

typedef struct net_step_opts {
    int zero_lr; /* 1: learning rate 0 (profiling: the weights stay; optimizer state does not) */
    int whole;   /* 1: a whole step even when [optimizer] accumulate > 1 (profiling) */
    int global_count; /* data-parallel: the samples of this step over every rank (0: count, this rank's) */
    int local;        /* 1: no gradient exchange on a replica (profiling times one rank) */
    /* Called after each layer's forward (layer = its index), the loss, each layer's backward
     * and the optimizer step (layer 0); an error status stops the step. May be NULL. */
    dlcl_status (*after)(void *user, net_phase phase, size_t layer);
    void *user;
} net_step_opts;

/* How the backward pass hands a layer the gradient of input k: straight into the gradient
 * of the node it reads (the first writer), into a scratch buffer then added (later writers,
 * so every reader's contribution is summed), or not at all (the net's input). */
typedef enum net_grad_mode { NET_GRAD_NONE, NET_GRAD_WRITE, NET_GRAD_ADD, NET_GRAD_MODE_COUNT } net_grad_mode;

struct dlcl_net {
    dlcl_ctx *ctx;
    cfg cfg;
    char *checkpoint;
    int checkpoint_every;      /* batches; 0: epoch ends */
    double checkpoint_seconds; /* at most this long between checkpoints */
    int check_numerics;        /* 1: test every layer's output for NaN/Inf after each batch */
    int batch, epochs, classes;
    int global_batch;  /* [net] batch: the samples of a step over every rank (batch is this rank's share, the same without ranks) */
    int label_len;     /* labels per sample: T for a sequence output (T x classes), else 1 */
    int vocab;         /* token input: ids must be below this (the smallest vocab of its readers) */
    layer_shape input;
    const char *output_name; /* [net] output, or the last layer */
    int output;              /* node the loss reads (an alias resolved to its source) */
    uint64_t seed;
    net_optim optim;
    net_data_cfg data;

    layer *layers; /* topological order */
    size_t n_layers;
    int *source;   /* per node: the node whose buffer holds its output (itself, or an alias's source) */
    int *readers;  /* per node: layers that read it (an alias's readers count for its source) */
    bool *needs_grad; /* per node: the gradient of its output is needed (trainable parameters at or above it) */
    net_grad_mode **grad_mode; /* per layer, per input */
    int **grad_tmp;            /* per layer, per input: the scratch buffer of a NET_GRAD_ADD input */

    /* regions */
    size_t n_params, n_decay; /* trainable floats; the first n_decay get weight decay */
    size_t n_params_dev;      /* of them on the device: n_params, or in an optimised inference net those before
                               * the conv and dense weights (net_param_host_only), whose device copies are the
                               * folded ones (optimize.c) */
    float *params_host;       /* with n_params_dev < n_params: the whole parameter region on the host, which
                               * loads, init_from and the refold read and write (net_params_io) */
    size_t n_buffers, n_counters;
    int n_state;              /* optimizer state slots per parameter (optim_state_slots) */
    cl_mem params, grads, buffers, state;
    cl_mem clip_scratch, gscale; /* [optimizer] clip_grad_norm: partial sums, and the factor and norm */
    cl_mem gacc;                 /* [optimizer] accumulate > 1: the gradients summed over the batches so far */
    int micro;                   /* batches summed in gacc since the last step (0 .. accumulate-1) */
    int64_t *counters;

    op_buf in;            /* network input, batch samples */
    op_buf *act, *dact;   /* per node: its output and the gradient w.r.t. it (an alias: its source's) */
    op_buf ws;
    op_buf *tmp;          /* scratch gradients for NET_GRAD_ADD */
    size_t n_tmp;
    cl_mem labels;
    op_buf stats; /* per sample: loss, correct */
    float *stats_host;
    cl_mem nf_flags; /* int per slot: 0 the input, 1+i layer i's output, 1+n+i its parameter gradient */
    size_t nf_bytes;
    int *nf_host;
    float *host_scratch; /* batch*classes floats for logits/probabilities */

    int epoch;      /* the current epoch (dlcl_net_begin_epoch): the schedule's position */
    uint64_t step;  /* optimizer steps taken */
    uint64_t device_bytes;

    /* data-parallel (dlcl_net_create_replica; exchange.c) */
    struct net_exchange *xc; /* NULL: not a replica */
    int sync_batchnorm;      /* [net] sync_batchnorm */
    double bucket_mb;        /* [net] bucket_mb */

    int inference;        /* dlcl_net_create_inference: no gradients, optimizer state or backward */
    cl_mem *slots;        /* buffers shared by liveness: the layer outputs of an inference net (act[i] points
                           * into one), the output gradients of a training net (dact[i]) */
    size_t n_slots;
    int optimize;         /* [net] optimize (DLCL_OPTIMIZE overrides): the inference graph optimisation */
    cl_mem folded;        /* optimize.c: the folded weights and biases of the convs and denses batch norms fold into */
    size_t n_folded;      /* floats in folded (0: nothing folded) */
    int half;             /* [net] precision = fp16 (inference only): activations and conv/dense weights as binary16 */
    cl_mem half_w;        /* optimize.c: with half, every conv's and dense's weight (folded or not) as binary16 */
    size_t n_half_w;      /* halves in half_w */
};

static inline bool net_is_alias(const dlcl_net *net, size_t i) { return net->source[i] != (int)i; }

/* Whether tensor p of layer l lives on the host only: the weight of a conv or dense in an
 * inference net that copies every such weight to the device as it runs it, folded (W', float,
 * with [net] optimize) or as binary16 (half_w, [net] precision = fp16), so the device holds
 * one copy of each weight rather than the original beside the folded one. */
static inline bool net_param_host_only(const dlcl_net *net, const layer *l, int p)
{
    return net->inference && (net->optimize || net->half) && p == 0 && l->type->absorb != NULL &&
           l->params[0].region == LAYER_PARAM && l->params[0].tie == NULL;
}

/* net.c: n floats of the parameter region from element off, host to device (write) or back.
 * With a host mirror (params_host) it holds every value, reads come from it, and writes also
 * reach the device for the part of the span below n_params_dev. */
dlcl_status net_params_io(dlcl_net *net, bool write, size_t off, float *h, size_t n, const char *what);

/* Whether node i's output is stored as half: every node of a precision = fp16 net but the one
 * the loss and the logits read, which stays float for them (and for the caller). */
static inline bool net_out_half(const dlcl_net *net, size_t i) { return net->half && (int)i != net->output; }

/* optimize.c: with [net] precision = fp16, DLCL_ERR_CONFIG naming the first layer whose type
 * has no half-precision forward (LAYER_HALF); else marks every layer half */
dlcl_status net_check_half(dlcl_net *net);

/* net.c: DLCL_ERR_INVALID_ARG for a net made by dlcl_net_create_inference */
dlcl_status net_require_training(const dlcl_net *net, const char *fn);
/* net.c: whether [optimizer] no_decay exempts tensor p of layer l from weight decay */
bool net_param_no_decay(const dlcl_net *net, const layer *l, const layer_param *p);
/* net.c: PyTorch's default initialisation from [net] seed, written to the regions */
dlcl_status net_init_params(dlcl_net *net);

/* graph.c: resolves input= names (a missing name or a cycle is an error), orders the layers
 * topologically, infers every shape, resolves aliases, counts readers, assigns each tensor
 * its offset in its region and plans how gradients are summed. */
dlcl_status net_build_graph(dlcl_net *net);

/* memory.c: every device buffer of a training net, or of an inference net (outputs in
 * shared buffers, no gradients or optimizer state); both end with net_init_params */
dlcl_status net_alloc_training(dlcl_net *net);
dlcl_status net_alloc_inference(dlcl_net *net);
void net_free_buffers(dlcl_net *net);

/* optimize.c: on an inference net with [net] optimize, after net_build_graph: per-channel
 * maps (batch norm, activations) folded into the conv or dense before them, identities in
 * evaluation (dropout) made aliases. alloc_folds makes the buffer of the folded weights
 * (before the layers' alloc); refold writes them from the regions, after every change of the
 * weights (a no-op when nothing is folded). */
dlcl_status net_optimize_graph(dlcl_net *net);
dlcl_status net_alloc_folds(dlcl_net *net);
dlcl_status net_refold(dlcl_net *net);

/* data.c: the [data] section (after [net]: it checks mean=, crop= against the input) */
dlcl_status net_parse_data(dlcl_net *net);

/* run.c */
dlcl_status net_forward(dlcl_net *net, const void *x, int count, int training, const net_step_opts *o);
/* A cached forward in evaluation mode (generation): positions pos .. pos+steps-1 of count
 * token sequences (tokens: count x steps ids), every layer LAYER_STEPS; layers with state
 * (attention's keys and values) keep what earlier positions left. The logits are
 * count x steps rows of net->act[net->output]. */
dlcl_status net_forward_steps(dlcl_net *net, const int32_t *tokens, int count, int pos, int steps);
/* The one training step: upload, forward, loss, backward (gradients of every reader
 * summed), numerical checks, optimizer step. */
dlcl_status net_train_step(dlcl_net *net, const void *x, const int32_t *y, int count, const net_step_opts *o,
                           double *loss_sum, int *correct);

/* exchange.c: data-parallel training. create makes the buckets (after allocation); the
 * step calls after_backward once layer i's backward is enqueued (gradient exchange during the
 * backward pass: only without accumulation) and finish before the optimizer (every bucket of
 * grads, which is the gradient region or gacc, summed over the ranks back into it). */
dlcl_status net_exchange_create(dlcl_net *net, const dlcl_comm *comm);
void net_exchange_free(dlcl_net *net);
dlcl_status net_exchange_after_backward(dlcl_net *net, size_t layer);
dlcl_status net_exchange_finish(dlcl_net *net, cl_mem grads);
/* Sets io->sum when batch norm's statistics are summed over the ranks; the seed of rank r's dropout. */
void net_exchange_io(dlcl_net *net, layer_io *io);
int net_rank(const dlcl_net *net);
int net_ranks(const dlcl_net *net);

#endif
