/* The net's device memory: what training allocates (parameters, gradients, momentum, each
 * layer's output and output gradient, one shared workspace), checked against the device
 * before anything is allocated, and the inference plan, where layer outputs share buffers
 * by liveness. */
#include <stdio.h>
#include <stdlib.h>

#include "net.h"

static dlcl_status alloc_buf(dlcl_net *net, size_t floats, const char *what, op_buf *b, size_t *bytes)
{
    if (!dlcl__mul_ok(floats ? floats : 1, sizeof(float), bytes))
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: size overflows", what);
    b->off = 0;
    net->device_bytes += *bytes;
    return rt_buffer_acquire(net->ctx, *bytes, what, &b->mem);
}

/* Before any device buffer exists: the sizes of the net's buffers against the device's
 * largest buffer and its memory, so that a net too large for the device fails at once with
 * the tensor to blame, not half-allocated (or, on PoCL, by swapping the host). Layer-private
 * buffers (pre-activations, dropout masks) are at most one output each: counted as such. */
static dlcl_status plan_device_memory(const dlcl_net *net)
{
    const dlcl_device_info *d = &net->ctx->info;
    double B = net->batch, total = 3.0 * net->n_params * sizeof(float) + B * layer_shape_numel(net->input) * 4.0;
    double largest = 0;
    const char *largest_name = "parameters";
    for (size_t i = 0; i < net->n_layers; i++) {
        const layer *l = &net->layers[i];
        double bytes = B * (double)layer_shape_numel(l->out) * sizeof(float);
        total += 3 * bytes + (double)l->ws_floats * sizeof(float);
        if (bytes > largest) largest = bytes, largest_name = l->name;
        if (bytes > (double)d->max_alloc_bytes)
            return dlcl__err(DLCL_ERR_OUT_OF_MEMORY,
                             "layer [%s]: its output for a batch of %d (%.2f GiB) is larger than the largest buffer of "
                             "%s (%.2f GiB); lower [net] batch or the input size", l->name, net->batch,
                             bytes / 1073741824.0, d->name, d->max_alloc_bytes / 1073741824.0);
    }
    if (total > (double)d->global_mem_bytes)
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY,
                         "the net needs about %.2f GiB of device memory for a batch of %d (largest: layer [%s] output, "
                         "%.2f GiB), more than the %.2f GiB of %s; lower [net] batch or the input size",
                         total / 1073741824.0, net->batch, largest_name, largest / 1073741824.0,
                         d->global_mem_bytes / 1073741824.0, d->name);
    return DLCL_OK;
}

/* Inference: layer outputs share buffers by liveness. Output i is live from layer i until
 * the last layer that reads it (the net's output until the end); before layer i runs, the
 * slots of outputs no later layer reads are free, and i takes the free slot that fits best
 * (growing the largest free one if none fits). A layer never gets the slot of its own
 * input, which is still live while it runs. A chain of layers needs two slots. */
static dlcl_status plan_slots(dlcl_net *net, size_t *slot_of, size_t *slot_floats, size_t *n_slots)
{
    size_t n = net->n_layers, *last = calloc(n, sizeof *last);
    int *owner = calloc(n, sizeof *owner); /* slot -> layer whose output it holds, -1: free */
    if (last == NULL || owner == NULL) {
        free(last);
        free(owner);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    for (size_t i = 0; i < n; i++) last[i] = i == n - 1 ? n : i; /* an unread output dies at once */
    for (size_t i = 0; i < n; i++)
        if (net->layers[i].input_index >= 0 && last[net->layers[i].input_index] < i) last[net->layers[i].input_index] = i;
    *n_slots = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < *n_slots; k++)
            if (owner[k] >= 0 && last[owner[k]] < i) owner[k] = -1;
        size_t need = (size_t)net->batch * layer_shape_numel(net->layers[i].out), pick = SIZE_MAX;
        for (size_t k = 0; k < *n_slots; k++) {
            if (owner[k] >= 0) continue;
            bool fits = slot_floats[k] >= need, best_fits = pick != SIZE_MAX && slot_floats[pick] >= need;
            if (pick == SIZE_MAX || (fits && (!best_fits || slot_floats[k] < slot_floats[pick])) ||
                (!fits && !best_fits && slot_floats[k] > slot_floats[pick]))
                pick = k;
        }
        if (pick == SIZE_MAX) pick = (*n_slots)++, slot_floats[pick] = 0;
        if (slot_floats[pick] < need) slot_floats[pick] = need;
        owner[pick] = (int)i;
        slot_of[i] = pick;
    }
    free(last);
    free(owner);
    return DLCL_OK;
}

dlcl_status net_alloc_inference(dlcl_net *net)
{
    size_t B = (size_t)net->batch, n = net->n_layers;
    op_buf tmp;
    dlcl_status st;
    if ((st = alloc_buf(net, net->n_params, "parameters", &tmp, &net->params_bytes)) != DLCL_OK) return st;
    net->params = tmp.mem;
    if ((st = alloc_buf(net, B * layer_shape_numel(net->input), "network input", &net->in, &net->in_bytes)) != DLCL_OK)
        return st;
    net->act = calloc(n, sizeof *net->act);
    net->dact = calloc(n, sizeof *net->dact); /* all NULL: no backward */
    net->act_bytes = calloc(n, sizeof *net->act_bytes); /* 0: the slots own the buffers */
    size_t *slot_of = calloc(n, sizeof *slot_of);
    net->slots = calloc(n, sizeof *net->slots);
    net->slot_bytes = calloc(n, sizeof *net->slot_bytes);
    if (!net->act || !net->dact || !net->act_bytes || !slot_of || !net->slots || !net->slot_bytes) {
        free(slot_of);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    st = plan_slots(net, slot_of, net->slot_bytes, &net->n_slots); /* floats for now */
    for (size_t k = 0; st == DLCL_OK && k < net->n_slots; k++) {
        char what[64];
        snprintf(what, sizeof what, "activation buffer %zu of %zu", k + 1, net->n_slots);
        tmp.mem = NULL;
        st = alloc_buf(net, net->slot_bytes[k], what, &tmp, &net->slot_bytes[k]);
        net->slots[k] = tmp.mem;
    }
    size_t ws = 0;
    for (size_t i = 0; st == DLCL_OK && i < n; i++) {
        layer *l = &net->layers[i];
        net->act[i] = op_b(net->slots[slot_of[i]], 0);
        l->inference = 1;
        if (l->type->alloc && (st = l->type->alloc(l, net->ctx, net->batch)) != DLCL_OK) break;
        if (l->ws_floats > ws) ws = l->ws_floats;
    }
    free(slot_of);
    if (st == DLCL_OK) st = alloc_buf(net, ws, "workspace", &net->ws, &net->ws_bytes);
    if (st == DLCL_OK) st = alloc_buf(net, 2 * B, "loss statistics", &net->stats, &net->stats_bytes);
    net->labels_bytes = B * sizeof(int32_t);
    net->nf_bytes = (1 + 2 * n) * sizeof(int);
    net->device_bytes += net->labels_bytes + net->nf_bytes;
    if (st == DLCL_OK) st = rt_buffer_acquire(net->ctx, net->labels_bytes, "labels", &net->labels);
    if (st == DLCL_OK) st = rt_buffer_acquire(net->ctx, net->nf_bytes, "numerics flags", &net->nf_flags);
    if (st != DLCL_OK) return st;
    net->nf_host = malloc(net->nf_bytes);
    net->stats_host = malloc(2 * B * sizeof(float));
    net->host_scratch = malloc(B * (size_t)net->classes * sizeof(float));
    if (!net->stats_host || !net->host_scratch || !net->nf_host) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    return net_init_params(net);
}

dlcl_status net_alloc_training(dlcl_net *net)
{
    size_t B = (size_t)net->batch;
    op_buf tmp;
    dlcl_status st;
    char what[128];
    if ((st = plan_device_memory(net)) != DLCL_OK) return st;
    if ((st = alloc_buf(net, net->n_params, "parameters", &tmp, &net->params_bytes)) != DLCL_OK) return st;
    net->params = tmp.mem;
    if ((st = alloc_buf(net, net->n_params, "gradients", &tmp, &net->params_bytes)) != DLCL_OK) return st;
    net->grads = tmp.mem;
    if ((st = alloc_buf(net, net->n_params, "momentum buffers", &tmp, &net->params_bytes)) != DLCL_OK) return st;
    net->velocity = tmp.mem;
    float zero = 0.0f;
    cl_int err = clEnqueueFillBuffer(net->ctx->queue, net->velocity, &zero, sizeof zero, 0, net->params_bytes, 0, NULL, NULL);
    if (err == CL_SUCCESS)
        err = clEnqueueFillBuffer(net->ctx->queue, net->grads, &zero, sizeof zero, 0, net->params_bytes, 0, NULL, NULL);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clEnqueueFillBuffer (optimizer state)");
    if ((st = alloc_buf(net, B * layer_shape_numel(net->input), "network input", &net->in, &net->in_bytes)) != DLCL_OK)
        return st;
    size_t n = net->n_layers;
    net->act = calloc(n, sizeof *net->act);
    net->dact = calloc(n, sizeof *net->dact);
    net->act_bytes = calloc(n, sizeof *net->act_bytes);
    if (!net->act || !net->dact || !net->act_bytes) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    size_t ws = 0;
    for (size_t i = 0; i < n; i++) {
        layer *l = &net->layers[i];
        size_t floats = B * layer_shape_numel(l->out), bytes;
        snprintf(what, sizeof what, "[%s] output", l->name);
        if ((st = alloc_buf(net, floats, what, &net->act[i], &net->act_bytes[i])) != DLCL_OK) return st;
        snprintf(what, sizeof what, "[%s] output gradient", l->name);
        if ((st = alloc_buf(net, floats, what, &net->dact[i], &bytes)) != DLCL_OK) return st;
        if (l->type->alloc && (st = l->type->alloc(l, net->ctx, net->batch)) != DLCL_OK) return st;
        if (l->ws_floats > ws) ws = l->ws_floats;
    }
    if ((st = alloc_buf(net, ws, "workspace", &net->ws, &net->ws_bytes)) != DLCL_OK) return st;
    net->labels_bytes = B * sizeof(int32_t);
    net->device_bytes += net->labels_bytes;
    if ((st = rt_buffer_acquire(net->ctx, net->labels_bytes, "labels", &net->labels)) != DLCL_OK) return st;
    if ((st = alloc_buf(net, 2 * B, "loss statistics", &net->stats, &net->stats_bytes)) != DLCL_OK) return st;
    net->nf_bytes = (1 + 2 * n) * sizeof(int);
    net->device_bytes += net->nf_bytes;
    if ((st = rt_buffer_acquire(net->ctx, net->nf_bytes, "numerics flags", &net->nf_flags)) != DLCL_OK) return st;
    net->nf_host = malloc(net->nf_bytes);
    net->stats_host = malloc(2 * B * sizeof(float));
    net->host_scratch = malloc(B * (size_t)net->classes * sizeof(float));
    if (!net->stats_host || !net->host_scratch || !net->nf_host) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    return net_init_params(net);
}
