/* Building a network from its configuration: sections to layers, shape inference,
 * device memory, PyTorch-style initialisation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../data/data.h"
#include "net.h"

static const char *const net_keys[] = {"input",  "classes",          "batch",
                                       "epochs", "seed",             "device",
                                       "checkpoint", "checkpoint_every", "checkpoint_seconds",
                                       "check_numerics", NULL};
static const char *const optim_keys[] = {"type", "learning_rate", "momentum", "nesterov", "weight_decay",
                                         "schedule", "step_size", "gamma", NULL};
static const char *const reserved[] = {"vars", "net", "optimizer", "data", NULL};

static bool is_reserved(const char *name)
{
    for (int i = 0; reserved[i]; i++)
        if (strcmp(reserved[i], name) == 0) return true;
    return false;
}

static dlcl_status parse_net_section(dlcl_net *net, const char **device)
{
    const cfg *c = &net->cfg;
    cfg_section *s = cfg_find_section(c, "net");
    if (s == NULL) return dlcl__err(DLCL_ERR_CONFIG, "%s: missing section [net] (it sets input=C,H,W and classes)", c->path);
    long in[3], classes, batch, epochs, seed, every, seconds, numerics;
    int n_in = 0;
    dlcl_status st;
    if ((st = cfg_get_int_list(c, s, "input", 1, 1, 1 << 16, in, 3, &n_in)) != DLCL_OK) return st;
    if (n_in != 3) {
        cfg_entry *e = cfg_find(s, "input");
        char where[64];
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [net] input: expected C,H,W (3 values), got %d",
                         cfg_where(c, e ? e->line : s->line, where, sizeof where), n_in);
    }
    const char *ckpt;
    if ((st = cfg_get_int(c, s, "classes", 1, 0, 1, 1 << 20, &classes)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "batch", 0, 64, 1, 1 << 16, &batch)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "epochs", 0, 10, 0, 1 << 20, &epochs)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "seed", 0, 1, 0, 0x7fffffffL, &seed)) != DLCL_OK ||
        (st = cfg_get_str(c, s, "device", 0, "", device)) != DLCL_OK ||
        (st = cfg_get_str(c, s, "checkpoint", 0, "", &ckpt)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "checkpoint_every", 0, 0, 0, 1L << 30, &every)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "checkpoint_seconds", 0, 600, 1, 1L << 30, &seconds)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "check_numerics", 0, 0, 0, 1, &numerics)) != DLCL_OK ||
        (st = cfg_check_unused(c, s, net_keys)) != DLCL_OK)
        return st;
    net->input = (layer_shape){(int)in[0], (int)in[1], (int)in[2]};
    net->classes = (int)classes;
    net->batch = (int)batch;
    net->epochs = (int)epochs;
    net->seed = (uint64_t)seed;
    net->checkpoint_every = (int)every;
    net->checkpoint_seconds = (double)seconds;
    net->check_numerics = (int)numerics;
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

static dlcl_status parse_optimizer(dlcl_net *net)
{
    const cfg *c = &net->cfg;
    net_optim *o = &net->optim;
    *o = (net_optim){.lr = 0.01, .gamma = 0.1, .step_size = 1};
    cfg_section *s = cfg_find_section(c, "optimizer");
    if (s == NULL) return DLCL_OK;
    static const char *const types[] = {"sgd", NULL};
    static const char *const schedules[] = {"none", "step", "cosine", NULL};
    _Static_assert(DLCL__ARRAY_LEN(schedules) == NET_SCHED_COUNT + 1, "one name per schedule");
    int type, sched;
    long step_size;
    dlcl_status st;
    if ((st = cfg_get_enum(c, s, "type", 0, 0, types, &type)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "learning_rate", 0, 0.01, 0.0, 1e6, &o->lr)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "momentum", 0, 0.0, 0.0, 1.0, &o->momentum)) != DLCL_OK ||
        (st = cfg_get_bool(c, s, "nesterov", 0, 0, &o->nesterov)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "weight_decay", 0, 0.0, 0.0, 1e3, &o->weight_decay)) != DLCL_OK ||
        (st = cfg_get_enum(c, s, "schedule", 0, NET_SCHED_NONE, schedules, &sched)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "step_size", 0, 1, 1, 1 << 20, &step_size)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "gamma", 0, 0.1, 0.0, 1e3, &o->gamma)) != DLCL_OK ||
        (st = cfg_check_unused(c, s, optim_keys)) != DLCL_OK)
        return st;
    if (o->nesterov && o->momentum <= 0.0) {
        cfg_entry *e = cfg_find(s, "nesterov");
        char where[64];
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [optimizer] nesterov needs momentum > 0",
                         cfg_where(c, e ? e->line : s->line, where, sizeof where));
    }
    o->schedule = (net_schedule)sched;
    o->step_size = (int)step_size;
    return DLCL_OK;
}

static dlcl_status parse_layers(dlcl_net *net)
{
    const cfg *c = &net->cfg;
    size_t n = 0;
    for (size_t i = 0; i < c->count; i++) n += !is_reserved(c->sections[i].name);
    if (n == 0) return dlcl__err(DLCL_ERR_CONFIG, "%s: no layer sections (add e.g. [fc1] type=dense units=10)", c->path);
    net->layers = calloc(n, sizeof *net->layers);
    if (net->layers == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    char where[64];
    for (size_t i = 0; i < c->count; i++) {
        const cfg_section *s = &c->sections[i];
        if (is_reserved(s->name)) continue;
        layer *l = &net->layers[net->n_layers];
        l->name = s->name;
        l->line = s->line;
        const char *type;
        dlcl_status st = cfg_get_str(c, s, "type", 1, NULL, &type);
        if (st != DLCL_OK) return st;
        l->type = layer_type_find(type);
        if (l->type == NULL) {
            const char *sug = cfg_suggest(type, layer_type_names());
            cfg_entry *e = cfg_find(s, "type");
            char types[256] = "";
            for (const char *const *t = layer_type_names(); *t; t++)
                snprintf(types + strlen(types), sizeof types - strlen(types), "%s%s", t == layer_type_names() ? "" : ", ", *t);
            return dlcl__err(DLCL_ERR_CONFIG, "%s: [%s] type = '%s': unknown layer type (%s%s%sone of: %s)",
                             cfg_where(c, e ? e->line : s->line, where, sizeof where), s->name, type,
                             sug ? "did you mean '" : "", sug ? sug : "", sug ? "'? " : "", types);
        }
        net->n_layers++; /* counted before parse so that free() releases its priv */
        /* unknown keys first: a typo should read "did you mean", not "missing key" */
        const char *known[32];
        size_t k = 0;
        known[k++] = "type";
        known[k++] = "input";
        for (const char *const *p = l->type->keys; *p && k < DLCL__ARRAY_LEN(known) - 1; p++) known[k++] = *p;
        known[k] = NULL;
        if ((st = cfg_check_unused(c, s, known)) != DLCL_OK) return st;
        const char *input;
        if ((st = cfg_get_str(c, s, "input", 0, "", &input)) != DLCL_OK) return st;
        l->input = input[0] ? input : NULL;
        if ((st = l->type->parse(l, c, s)) != DLCL_OK) return st;
    }
    return DLCL_OK;
}

/* Resolves input= references and infers every shape, in file order. */
static dlcl_status infer_shapes(dlcl_net *net)
{
    const cfg *c = &net->cfg;
    char where[64];
    int *uses = calloc(net->n_layers, sizeof *uses);
    if (uses == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    dlcl_status st = DLCL_OK;
    for (size_t i = 0; i < net->n_layers && st == DLCL_OK; i++) {
        layer *l = &net->layers[i];
        l->input_index = (int)i - 1;
        if (l->input != NULL) {
            l->input_index = -2;
            if (strcmp(l->input, "input") == 0) l->input_index = -1;
            for (size_t j = 0; j < i; j++)
                if (strcmp(net->layers[j].name, l->input) == 0) l->input_index = (int)j;
            if (l->input_index == -2) {
                const cfg_section *s = cfg_find_section(c, l->name);
                cfg_entry *e = s ? cfg_find(s, "input") : NULL;
                st = dlcl__err(DLCL_ERR_CONFIG, "%s: [%s] input = '%s': no earlier layer of that name%s",
                               cfg_where(c, e ? e->line : l->line, where, sizeof where), l->name, l->input,
                               cfg_find_section(c, l->input) ? " (a layer may only read layers above it)" : "");
                break;
            }
        }
        if (l->input_index >= 0 && ++uses[l->input_index] > 1) {
            st = dlcl__err(DLCL_ERR_CONFIG, "%s: [%s] reads the output of [%s], which another layer already reads; "
                           "branches need add/concat layers, which dlcl does not have yet",
                           cfg_where(c, l->line, where, sizeof where), l->name, net->layers[l->input_index].name);
            break;
        }
        l->in = l->input_index < 0 ? net->input : net->layers[l->input_index].out;
        st = l->type->shape(l);
        if (st == DLCL_OK && (l->out.c < 1 || l->out.h < 1 || l->out.w < 1))
            st = dlcl__err(DLCL_ERR_SHAPE, "layer [%s]: output shape %dx%dx%d is empty", l->name, l->out.c, l->out.h, l->out.w);
        if (st != DLCL_OK) st = dlcl__err_prefix(st, "%s", cfg_where(c, l->line, where, sizeof where));
    }
    for (size_t i = 0; st == DLCL_OK && i + 1 < net->n_layers; i++)
        if (uses[i] == 0)
            st = dlcl__err(DLCL_ERR_CONFIG, "%s: the output of [%s] is never used (only the last layer may be unread)",
                           cfg_where(c, net->layers[i].line, where, sizeof where), net->layers[i].name);
    free(uses);
    if (st != DLCL_OK) return st;
    const layer *last = &net->layers[net->n_layers - 1];
    if (layer_shape_numel(last->out) != (size_t)net->classes)
        return dlcl__err(DLCL_ERR_SHAPE, "%s: the last layer [%s] outputs %dx%dx%d = %zu values but [net] classes = %d",
                         cfg_where(c, last->line, where, sizeof where), last->name, last->out.c, last->out.h,
                         last->out.w, layer_shape_numel(last->out), net->classes);
    size_t off = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        net->layers[i].param_off = off;
        off += net->layers[i].param_count;
    }
    net->n_params = off;
    return DLCL_OK;
}

/* PyTorch's default for Conv2d and Linear: kaiming_uniform_(a=sqrt(5)) for the weight and
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias; both reduce to that same bound. */
dlcl_status net_init_params(dlcl_net *net)
{
    if (net->n_params == 0) return DLCL_OK;
    float *h = malloc(net->n_params * sizeof *h);
    if (h == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory for %zu parameters", net->n_params);
    uint64_t state = net->seed * 0x2545F4914F6CDD1Dull + 1;
    for (size_t i = 0; i < net->n_layers; i++) {
        const layer *l = &net->layers[i];
        for (int p = 0; p < l->n_params; p++) {
            const layer_param *lp = &l->params[p];
            float bound = 1.0f / sqrtf(lp->fan_in);
            float *dst = h + l->param_off + lp->offset;
            for (size_t j = 0; j < lp->numel; j++)
                dst[j] = bound * (float)((double)(dlcl__splitmix64(&state) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
        }
    }
    cl_int err = clEnqueueWriteBuffer(net->ctx->queue, net->params, CL_TRUE, 0, net->n_params * sizeof(float), h, 0,
                                      NULL, NULL);
    free(h);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clEnqueueWriteBuffer (initial weights)");
}

static dlcl_status create(const char *fn, const char *config_path, const char *const *overrides, size_t n_overrides,
                          const dlcl_ctx_params *params, int inference, dlcl_net **out)
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
    if (st == DLCL_OK) st = parse_optimizer(net);
    if (st == DLCL_OK) st = net_parse_data(net);
    if (st == DLCL_OK) st = parse_layers(net);
    if (st == DLCL_OK) st = infer_shapes(net);
    if (st != DLCL_OK) goto fail;
    dlcl_ctx_params p = params ? *params : (dlcl_ctx_params){0};
    if (device[0] != '\0') p.device = device;
    if ((st = dlcl_ctx_create(&p, &net->ctx)) != DLCL_OK) goto fail;
    if ((st = inference ? net_alloc_inference(net) : net_alloc_training(net)) != DLCL_OK) goto fail;
    net->lr = (float)net->optim.lr;
    *out = net;
    return DLCL_OK;
fail:
    dlcl_net_free(net);
    return st;
}

dlcl_status dlcl_net_create(const char *config_path, const char *const *overrides, size_t n_overrides,
                            const dlcl_ctx_params *params, dlcl_net **out)
{
    return create("dlcl_net_create", config_path, overrides, n_overrides, params, 0, out);
}

dlcl_status dlcl_net_create_inference(const char *config_path, const char *const *overrides, size_t n_overrides,
                                      const dlcl_ctx_params *params, dlcl_net **out)
{
    return create("dlcl_net_create_inference", config_path, overrides, n_overrides, params, 1, out);
}

dlcl_status net_require_training(const dlcl_net *net, const char *fn)
{
    if (net != NULL && net->inference)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: the net was made by dlcl_net_create_inference, which keeps no "
                         "gradients or optimizer state; use dlcl_net_create to train", fn);
    return DLCL_OK;
}

static void release(dlcl_net *net, cl_mem *m, size_t bytes)
{
    if (*m != NULL) rt_buffer_release(net->ctx, *m, bytes);
    *m = NULL;
}

void dlcl_net_free(dlcl_net *net)
{
    if (net == NULL) return;
    for (size_t i = 0; i < net->n_layers; i++)
        if (net->layers[i].type->free) net->layers[i].type->free(&net->layers[i]);
    if (net->ctx != NULL) {
        for (size_t i = 0; i < net->n_layers; i++) {
            if (net->act && !net->inference) release(net, &net->act[i].mem, net->act_bytes[i]); /* else: slots */
        }
        for (size_t k = 0; k < net->n_slots; k++) release(net, &net->slots[k], net->slot_bytes[k]);
        release(net, &net->params, net->params_bytes);
        release(net, &net->grads, net->params_bytes);
        release(net, &net->velocity, net->params_bytes);
        release(net, &net->in.mem, net->in_bytes);
        release(net, &net->ws.mem, net->ws_bytes);
        release(net, &net->labels, net->labels_bytes);
        release(net, &net->stats.mem, net->stats_bytes);
        release(net, &net->nf_flags, net->nf_bytes);
    }
    dlcl_ctx_free(net->ctx);
    free(net->slots);
    free(net->slot_bytes);
    free(net->act);
    free(net->dact);
    free(net->act_bytes);
    free(net->stats_host);
    free(net->nf_host);
    free(net->host_scratch);
    free(net->layers);
    free(net->checkpoint);
    for (int s = 0; s < DLCL_SPLIT_COUNT; s++) {
        free(net->data.paths[s][0]);
        free(net->data.paths[s][1]);
    }
    cfg_free(&net->cfg);
    free(net);
}

dlcl_status dlcl_net_get_info(const dlcl_net *net, dlcl_net_info *o)
{
    if (net == NULL || o == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_get_info: net and out must not be NULL");
    double flops = 0;
    for (size_t i = 0; i < net->n_layers; i++) flops += net->layers[i].flops;
    *o = (dlcl_net_info){net->batch, net->epochs, net->classes, net->input.c, net->input.h, net->input.w, net->seed,
                         net->n_layers, net->n_params, flops, net->device_bytes, net->ctx->info.name, net->checkpoint,
                         net->checkpoint_every, net->checkpoint_seconds};
    return DLCL_OK;
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
    o->out_c = l->out.c;
    o->out_h = l->out.h;
    o->out_w = l->out.w;
    o->params = l->param_count;
    o->flops = l->flops;
    return DLCL_OK;
}

dlcl_ctx *dlcl_net_ctx(dlcl_net *net) { return net ? net->ctx : NULL; }

dlcl_status dlcl_net_begin_epoch(dlcl_net *net, int epoch, float *lr)
{
    if (net == NULL || epoch < 0) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_begin_epoch: bad net or epoch");
    const net_optim *o = &net->optim;
    double v = o->lr;
    switch (o->schedule) {
    case NET_SCHED_NONE: break;
    case NET_SCHED_STEP: v = o->lr * pow(o->gamma, (double)(epoch / o->step_size)); break;
    case NET_SCHED_COSINE: /* CosineAnnealingLR(T_max=epochs, eta_min=0), stepped per epoch */
        v = net->epochs > 0 ? o->lr * 0.5 * (1.0 + cos(M_PI * (double)epoch / (double)net->epochs)) : o->lr;
        break;
    case NET_SCHED_COUNT: break;
    }
    net->lr = (float)v;
    if (lr) *lr = net->lr;
    return DLCL_OK;
}
