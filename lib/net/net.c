/* Building a network from its configuration: the [net] and [optimizer] sections, the graph
 * (graph.c), device memory (memory.c), PyTorch-style initialisation; info and freeing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../data/data.h"
#include "../io/onnx.h"
#include "net.h"

static const char *const net_keys[] = {"input",  "classes",          "batch",
                                       "epochs", "seed",             "device",
                                       "checkpoint", "checkpoint_every", "checkpoint_seconds",
                                       "check_numerics", "output", "sync_batchnorm", "bucket_mb", "optimize",
                                       "model", "precision", NULL};
static const char *const precisions[] = {"fp32", "fp16", NULL};
static dlcl_status parse_net_section(dlcl_net *net, const char **device)
{
    const cfg *c = &net->cfg;
    cfg_section *s = cfg_find_section(c, "net");
    if (s == NULL)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: missing section [net] (it sets input=C,H,W and classes)", c->path);
    long in[LAYER_MAX_DIMS + 1], classes, batch, epochs, seed, every, seconds, numerics, sync_bn, optimize;
    double bucket_mb;
    int n_in = 0, half = 0;
    dlcl_status st;
    if ((st = cfg_get_int_list(c, s, "input", 1, 1, 1 << 24, in, LAYER_MAX_DIMS + 1, &n_in)) != DLCL_OK) return st;
    size_t numel = 1;
    for (int d = 0; d < n_in; d++) numel *= (size_t)in[d];
    if (n_in > LAYER_MAX_DIMS || numel > (size_t)1 << 30) {
        cfg_entry *e = cfg_find(s, "input");
        char where[64];
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [net] input: expected the per-sample shape, C,H,W for images or one size "
                         "for features (at most %d values, 2^30 in all), got %d values",
                         cfg_where(c, e ? e->line : s->line, where, sizeof where), LAYER_MAX_DIMS, n_in);
    }
    const char *ckpt, *output;
    if ((st = cfg_get_int(c, s, "classes", 1, 0, 1, 1 << 20, &classes)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "batch", 0, 64, 1, 1 << 16, &batch)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "epochs", 0, 10, 0, 1 << 20, &epochs)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "seed", 0, 1, 0, 0x7fffffffL, &seed)) != DLCL_OK ||
        (st = cfg_get_str(c, s, "device", 0, "", device)) != DLCL_OK ||
        (st = cfg_get_str(c, s, "checkpoint", 0, "", &ckpt)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "checkpoint_every", 0, 0, 0, 1L << 30, &every)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "checkpoint_seconds", 0, 600, 1, 1L << 30, &seconds)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "check_numerics", 0, 0, 0, 1, &numerics)) != DLCL_OK ||
        (st = cfg_get_str(c, s, "output", 0, "", &output)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "sync_batchnorm", 0, 0, 0, 1, &sync_bn)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "bucket_mb", 0, 4.0, 1e-6, 65536.0, &bucket_mb)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "optimize", 0, 1, 0, 1, &optimize)) != DLCL_OK ||
        (st = cfg_get_enum(c, s, "precision", 0, 0, precisions, &half)) != DLCL_OK ||
        (st = cfg_check_unused(c, s, net_keys)) != DLCL_OK)
        return st;
    net->input = (layer_shape){.ndim = n_in, .dtype = DLCL_FLOAT32};
    for (int d = 0; d < n_in; d++) net->input.dims[d] = (int)in[d];
    net->output_name = output[0] ? output : NULL;
    net->classes = (int)classes;
    net->batch = (int)batch;
    net->global_batch = net->batch;
    net->sync_batchnorm = (int)sync_bn;
    net->bucket_mb = bucket_mb;
    net->epochs = (int)epochs;
    net->seed = (uint64_t)seed;
    net->checkpoint_every = (int)every;
    net->checkpoint_seconds = (double)seconds;
    net->check_numerics = (int)numerics;
    net->half = half;
    if (half && !net->inference) {
        cfg_entry *e = cfg_find(s, "precision");
        char where[64];
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [net] precision = fp16 stores an inference net's activations and weights "
                         "as half precision (dlcl-eval, dlcl-predict, dlcl-bench --inference); training keeps float32: "
                         "set precision = fp32 or leave it out to train",
                         cfg_where(c, e ? e->line : s->line, where, sizeof where));
    }
    const char *env = getenv("DLCL_OPTIMIZE"); /* overrides the config, as DLCL_DEVICE does */
    net->optimize = env && env[0] ? atoi(env) != 0 : (int)optimize;
    if (ckpt[0] != '\0') {
        net->checkpoint = strdup(ckpt);
    } else { /* <config stem>.safetensors in the working directory */
        const char *base = strrchr(c->path, '/');
        base = base ? base + 1 : c->path;
        size_t n = strlen(base);
        if (n > 4 && strcmp(base + n - 4, ".ini") == 0) n -= 4;
        net->checkpoint = malloc(n + 13);
        if (net->checkpoint) snprintf(net->checkpoint, n + 13, "%.*s.safetensors", (int)n, base);
    }
    return net->checkpoint ? DLCL_OK : dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
}

bool net_param_no_decay(const dlcl_net *net, const layer *l, const layer_param *p)
{
    return optim_no_decay(&net->optim, p->suffix, l->type->name);
}

/* A standard normal value by Box-Muller from two values of the stream (u1 in (0, 1], so the
 * logarithm is finite). */
static float normal01(uint64_t *state)
{
    const double u1 = (double)((dlcl__splitmix64(state) >> 11) + 1) * (1.0 / 9007199254740992.0),
                 u2 = (double)(dlcl__splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

dlcl_status net_params_io(dlcl_net *net, bool write, size_t off, float *h, size_t n, const char *what)
{
    if (net->params_host) {
        if (!write) {
            memcpy(h, net->params_host + off, n * sizeof *h);
            return DLCL_OK;
        }
        memcpy(net->params_host + off, h, n * sizeof *h);
        n = off >= net->n_params_dev ? 0 : off + n <= net->n_params_dev ? n : net->n_params_dev - off;
    }
    if (n == 0) return DLCL_OK;
    cl_command_queue q = net->ctx->queue;
    size_t at = off * sizeof(float), bytes = n * sizeof(float);
    cl_int err = write ? clEnqueueWriteBuffer(q, net->params, CL_TRUE, at, bytes, h, 0, NULL, NULL)
                       : clEnqueueReadBuffer(q, net->params, CL_TRUE, at, bytes, h, 0, NULL, NULL);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, what);
}

/* Writes n floats of one region, initialised tensor by tensor. */
static dlcl_status init_region(dlcl_net *net, layer_region region, size_t n, cl_mem mem, uint64_t *state)
{
    if (n == 0) return DLCL_OK;
    float *h = malloc(n * sizeof *h);
    if (h == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory for %zu parameters", n);
    for (size_t i = 0; i < net->n_layers; i++) {
        const layer *l = &net->layers[i];
        for (int p = 0; p < l->n_params; p++) {
            const layer_param *lp = &l->params[p];
            if (lp->region != region || lp->tie) continue;
            float *dst = h + lp->off, bound = 1.0f / sqrtf(lp->fan_in > 0 ? lp->fan_in : 1.0f);
            for (size_t j = 0; j < lp->numel; j++) {
                switch (lp->init) {
                case LAYER_INIT_FAN_IN: /* uniform in [-bound, bound) */
                    dst[j] = bound * (float)((double)(dlcl__splitmix64(state) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
                    break;
                case LAYER_INIT_ONE: dst[j] = 1.0f; break;
                case LAYER_INIT_NORMAL: dst[j] = lp->std * normal01(state); break;
                default: dst[j] = 0.0f; break;
                }
            }
        }
    }
    const char *what = "clEnqueueWriteBuffer (initial weights)";
    dlcl_status st = DLCL_OK;
    if (region == LAYER_PARAM) {
        st = net_params_io(net, true, 0, h, n, what);
    } else {
        cl_int err = clEnqueueWriteBuffer(net->ctx->queue, mem, CL_TRUE, 0, n * sizeof(float), h, 0, NULL, NULL);
        if (err != CL_SUCCESS) st = dlcl__cl_err(err, what);
    }
    free(h);
    return st;
}

/* PyTorch's defaults: Conv2d and Linear take kaiming_uniform_(a=sqrt(5)) for the weight and
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias, both that same bound; batch norm's
 * weight and running variance are ones, its bias and running mean zeros; embeddings are
 * N(0, std^2) (nn.Embedding: std 1; GPT-2: 0.02). The stream of
 * values follows the tensors in layer order from [net] seed. */
dlcl_status net_init_params(dlcl_net *net)
{
    uint64_t state = net->seed * 0x2545F4914F6CDD1Dull + 1;
    dlcl_status st = init_region(net, LAYER_PARAM, net->n_params, net->params, &state);
    if (st == DLCL_OK) st = init_region(net, LAYER_BUFFER, net->n_buffers, net->buffers, &state);
    for (size_t i = 0; i < net->n_counters; i++) net->counters[i] = 0;
    return st == DLCL_OK ? net_refold(net) : st;
}

static dlcl_status create(const char *fn, const char *config_path, const char *const *overrides, size_t n_overrides,
                          const dlcl_ctx_params *params, int inference, const dlcl_comm *comm, dlcl_net **out)
{
    if (out == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (config_path == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: config_path is NULL", fn);
    if (n_overrides > 0 && overrides == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: overrides is NULL", fn);
    dlcl_net *net = calloc(1, sizeof *net);
    if (net == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    net->inference = inference;
    const char *device = "";
    dlcl_status st = cfg_load_with(config_path, overrides, n_overrides, &net->cfg);
    if (st == DLCL_OK) st = parse_net_section(net, &device);
    if (st == DLCL_OK) st = optim_parse(&net->cfg, &net->optim);
    if (st == DLCL_OK) st = net_parse_data(net);
    if (st == DLCL_OK) st = net_build_graph(net);
    if (st == DLCL_OK && inference && net->optimize) st = net_optimize_graph(net);
    if (st == DLCL_OK && net->half) st = net_check_half(net);
    if (st != DLCL_OK) goto fail;
    if (comm != NULL && comm->ranks > 1) /* a replica's memory holds its share of a batch */
        net->batch = (net->global_batch + comm->ranks - 1) / comm->ranks;
    dlcl_ctx_params p = params ? *params : (dlcl_ctx_params){0};
    if (device[0] != '\0') p.device = device;
    if ((st = dlcl_ctx_create(&p, &net->ctx)) != DLCL_OK) goto fail;
    if ((st = inference ? net_alloc_inference(net) : net_alloc_training(net)) != DLCL_OK) goto fail;
    if (net->cfg.model != NULL) { /* [net] model: its initializers, and the folded copies after them */
        if ((st = onnx_weights_apply(net)) != DLCL_OK || (st = net_refold(net)) != DLCL_OK) goto fail;
    }
    if (comm != NULL && (st = net_exchange_create(net, comm)) != DLCL_OK) goto fail;
    *out = net;
    return DLCL_OK;
fail:
    dlcl_net_free(net);
    return st;
}

dlcl_status dlcl_config_expand(const char *config_path, const char *const *overrides, size_t n_overrides, char **text)
{
    if (config_path == NULL || text == NULL || (n_overrides > 0 && overrides == NULL))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_config_expand: NULL argument");
    *text = NULL;
    cfg c;
    dlcl_status st = cfg_load_with(config_path, overrides, n_overrides, &c);
    if (st != DLCL_OK) return st;
    st = cfg_to_text(&c, text);
    cfg_free(&c);
    return st;
}

dlcl_status dlcl_net_create(const char *config_path, const char *const *overrides, size_t n_overrides,
                            const dlcl_ctx_params *params, dlcl_net **out)
{
    return create("dlcl_net_create", config_path, overrides, n_overrides, params, 0, NULL, out);
}

dlcl_status dlcl_net_create_replica(const char *config_path, const char *const *overrides, size_t n_overrides,
                                    const dlcl_ctx_params *params, const dlcl_comm *comm, dlcl_net **out)
{
    if (comm == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_create_replica: comm is NULL");
    if (comm->ranks < 1 || comm->rank < 0 || comm->rank >= comm->ranks)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_create_replica: rank %d of %d ranks", comm->rank, comm->ranks);
    return create("dlcl_net_create_replica", config_path, overrides, n_overrides, params, 0, comm, out);
}

dlcl_status dlcl_net_create_inference(const char *config_path, const char *const *overrides, size_t n_overrides,
                                      const dlcl_ctx_params *params, dlcl_net **out)
{
    return create("dlcl_net_create_inference", config_path, overrides, n_overrides, params, 1, NULL, out);
}

dlcl_status net_require_training(const dlcl_net *net, const char *fn)
{
    if (net != NULL && net->inference)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: the net was made by dlcl_net_create_inference, which keeps no "
                         "gradients or optimizer state; use dlcl_net_create to train", fn);
    return DLCL_OK;
}

void dlcl_net_free(dlcl_net *net)
{
    if (net == NULL) return;
    for (size_t i = 0; i < net->n_layers; i++) {
        layer *l = &net->layers[i];
        if (l->type->free) l->type->free(l);
        for (int k = 0; l->in_names && k < l->n_in; k++) free(l->in_names[k]);
        free(l->in_names);
        free(l->in_node);
        free(l->in);
        if (net->grad_mode) free(net->grad_mode[i]);
        if (net->grad_tmp) free(net->grad_tmp[i]);
    }
    net_exchange_free(net);
    if (net->ctx != NULL) net_free_buffers(net);
    dlcl_ctx_free(net->ctx);
    free(net->grad_mode);
    free(net->grad_tmp);
    free(net->source);
    free(net->readers);
    free(net->needs_grad);
    free(net->layers);
    free(net->checkpoint);
    for (int s = 0; s < DLCL_SPLIT_COUNT; s++) {
        free(net->data.paths[s][0]);
        free(net->data.paths[s][1]);
    }
    cfg_free(&net->cfg);
    free(net);
}

/* The c, h, w of the compatibility fields: a 3-d shape's dims; otherwise numel, 1, 1. */
static void shape_chw(layer_shape s, int *c, int *h, int *w)
{
    if (s.ndim == 3) {
        *c = s.dims[0], *h = s.dims[1], *w = s.dims[2];
    } else {
        *c = (int)layer_shape_numel(s), *h = 1, *w = 1;
    }
}

dlcl_status dlcl_net_get_info(const dlcl_net *net, dlcl_net_info *o)
{
    if (net == NULL || o == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_get_info: net and out must not be NULL");
    double flops = 0;
    for (size_t i = 0; i < net->n_layers; i++) flops += net->layers[i].flops;
    memset(o, 0, sizeof *o);
    o->batch = net->global_batch;
    o->shard_batch = net->batch;
    o->rank = net_rank(net);
    o->ranks = net_ranks(net);
    o->sync_batchnorm = net->sync_batchnorm;
    o->bucket_mb = net->bucket_mb;
    o->epochs = net->epochs;
    o->classes = net->classes;
    shape_chw(net->input, &o->in_c, &o->in_h, &o->in_w);
    o->seed = net->seed;
    o->n_layers = net->n_layers;
    o->n_params = net->n_params;
    o->flops_per_sample = flops;
    o->device_bytes = net->device_bytes;
    o->device_name = net->ctx->info.name;
    o->checkpoint = net->checkpoint;
    o->checkpoint_every = net->checkpoint_every;
    o->checkpoint_seconds = net->checkpoint_seconds;
    o->in_ndim = net->input.ndim;
    for (int d = 0; d < net->input.ndim; d++) o->in_dims[d] = net->input.dims[d];
    o->in_numel = layer_shape_numel(net->input);
    o->in_dtype = net->input.dtype;
    o->n_buffers = net->n_buffers;
    o->output = net->output_name;
    o->optimizer = net->optim.type->name;
    o->labels_per_sample = net->label_len;
    const cfg_entry *model = cfg_find(cfg_find_section(&net->cfg, "net"), "model");
    o->model = model ? model->value : NULL;
    o->precision = net->half ? "fp16" : "fp32";
    return DLCL_OK;
}

static void append(char *buf, size_t cap, const char *a, const char *b)
{
    size_t n = strlen(buf);
    if (n + 1 < cap && snprintf(buf + n, cap - n, "%s%s", a, b) < 0) buf[n] = '\0';
}

/* What the inference optimisation did to layer l, around its own description: "folded into
 * conv1: 64 channels, relu", "removed (the identity in evaluation): rate 0.5", "3x3/1 pad 1,
 * relu; gemm ... +bn1". */
static void describe_optimised(const dlcl_net *net, const layer *l, char *buf, size_t cap)
{
    char own[sizeof ((dlcl_layer_info *)0)->detail];
    size_t k = strnlen(buf, sizeof own - 1);
    memcpy(own, buf, k);
    own[k] = '\0';
    if (l->folded_into || l->removed) {
        buf[0] = '\0';
        append(buf, cap, l->folded_into ? "folded into " : "removed (the identity in evaluation)",
               l->folded_into ? net->layers[l->folded_into - 1].name : "");
        append(buf, cap, own[0] ? ": " : "", own);
    }
    for (int f = 0; f < l->fold.n; f++) append(buf, cap, " +", net->layers[l->fold.from[f]].name);
}

dlcl_status dlcl_net_layer_info(const dlcl_net *net, size_t index, dlcl_layer_info *o)
{
    if (net == NULL || o == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_layer_info: net and out must not be NULL");
    if (index >= net->n_layers)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_layer_info: index %zu >= %zu layers", index, net->n_layers);
    const layer *l = &net->layers[index];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", l->name);
    snprintf(o->type, sizeof o->type, "%s", l->type->name);
    if (l->type->describe) l->type->describe(l, o->detail, sizeof o->detail);
    describe_optimised(net, l, o->detail, sizeof o->detail);
    shape_chw(l->out, &o->out_c, &o->out_h, &o->out_w);
    o->params = l->param_count;
    o->flops = l->flops;
    o->ndim = l->out.ndim;
    for (int d = 0; d < l->out.ndim; d++) o->dims[d] = l->out.dims[d];
    o->dtype = l->out.dtype;
    size_t w = 0;
    for (int k = 0; k < l->n_in && w < sizeof o->inputs; k++)
        w += (size_t)snprintf(o->inputs + w, sizeof o->inputs - w, "%s%s", k ? ", " : "", l->in_names[k]);
    for (int p = 0; p < l->n_params; p++)
        if (l->params[p].region == LAYER_BUFFER) o->buffers += l->params[p].numel;
    return DLCL_OK;
}

dlcl_ctx *dlcl_net_ctx(dlcl_net *net) { return net ? net->ctx : NULL; }

float dlcl_net_learning_rate(const dlcl_net *net)
{
    return net ? (float)optim_lr(&net->optim, net->epoch, net->epochs, net->step) : 0.0f;
}

dlcl_status dlcl_net_begin_epoch(dlcl_net *net, int epoch, float *lr)
{
    if (net == NULL || epoch < 0) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_begin_epoch: bad net or epoch");
    net->epoch = epoch;
    if (lr) *lr = (float)optim_lr(&net->optim, epoch, net->epochs, net->step);
    return DLCL_OK;
}
