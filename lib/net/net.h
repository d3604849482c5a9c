/* The network: layers in topological (file) order over flat parameter/gradient buffers. */
#ifndef DLCL_NET_H
#define DLCL_NET_H

#include "../layers/layer.h"

typedef enum net_schedule { NET_SCHED_NONE, NET_SCHED_STEP, NET_SCHED_COSINE, NET_SCHED_COUNT } net_schedule;

typedef struct net_optim {
    double lr, momentum, weight_decay, gamma;
    int nesterov, step_size;
    net_schedule schedule;
} net_optim;

typedef enum net_data_format {
    NET_DATA_IDX,
    NET_DATA_CIFAR,
    NET_DATA_FOLDER,
    NET_DATA_SYNTHETIC,
    NET_DATA_FORMAT_COUNT
} net_data_format;

typedef struct net_data_cfg {
    net_data_format format;
    char *paths[DLCL_SPLIT_COUNT][2]; /* idx: [split][0 images, 1 labels], resolved against the config dir */
    const char *files[DLCL_SPLIT_COUNT]; /* cifar, folder: the train= / test= value as written (owned by
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

struct dlcl_net {
    dlcl_ctx *ctx;
    cfg cfg;
    char *checkpoint;
    int checkpoint_every;      /* batches; 0: epoch ends */
    double checkpoint_seconds; /* at most this long between checkpoints */
    int check_numerics;        /* 1: test every layer's output for NaN/Inf after each batch */
    int batch, epochs, classes;
    layer_shape input;
    uint64_t seed;
    net_optim optim;
    net_data_cfg data;

    layer *layers;
    size_t n_layers;

    size_t n_params;
    cl_mem params, grads, velocity;
    size_t params_bytes;

    op_buf in;            /* network input, batch samples */
    op_buf *act, *dact;   /* output of each layer and its gradient */
    size_t *act_bytes;
    size_t in_bytes;
    op_buf ws;
    size_t ws_bytes;
    cl_mem labels;
    size_t labels_bytes;
    op_buf stats; /* per sample: loss, correct */
    size_t stats_bytes;
    float *stats_host;
    cl_mem nf_flags; /* int per slot: 0 the input, 1+i layer i's output, 1+n+i its parameter gradient */
    size_t nf_bytes;
    int *nf_host;
    float *host_scratch; /* batch*classes floats for logits/probabilities */

    float lr;
    uint64_t step;
    uint64_t device_bytes;

    int inference;        /* dlcl_net_create_inference: no gradients, optimizer state or backward */
    cl_mem *slots;        /* buffers shared by liveness: the layer outputs of an inference net (act[i] points
                           * into one), the output gradients of a training net (dact[i]) */
    size_t *slot_bytes;
    size_t n_slots;
};

/* net.c: DLCL_ERR_INVALID_ARG for a net made by dlcl_net_create_inference */
dlcl_status net_require_training(const dlcl_net *net, const char *fn);
/* net.c: PyTorch's default initialisation from [net] seed, written to net->params */
dlcl_status net_init_params(dlcl_net *net);

/* memory.c: every device buffer of a training net, or of an inference net (outputs in
 * shared buffers, no gradients or optimizer state); both end with net_init_params */
dlcl_status net_alloc_training(dlcl_net *net);
dlcl_status net_alloc_inference(dlcl_net *net);

/* data.c: the [data] section (after [net]: it checks mean=, crop= against the input) */
dlcl_status net_parse_data(dlcl_net *net);

/* run.c */
dlcl_status net_forward(dlcl_net *net, const float *x, int count, int training);

#endif
