/* The net's device memory: what training allocates (parameters, gradients, momentum, each
 * layer's output, the output gradients sharing buffers by liveness, one shared workspace),
 * checked against the device before anything is allocated, and the inference plan, where
 * layer outputs share buffers by liveness. */
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
 * buffers (pre-activations, dropout masks) are at most one output each: counted as such; the
 * output gradients as two buffers of the largest output. */
static dlcl_status plan_device_memory(const dlcl_net *net)
{
    const dlcl_device_info *d = &net->ctx->info;
    double B = net->batch, total = 3.0 * net->n_params * sizeof(float) + B * layer_shape_numel(net->input) * 4.0;
    double largest = 0;
    const char *largest_name = "parameters";
    for (size_t i = 0; i < net->n_layers; i++) {
        const layer *l = &net->layers[i];
        double bytes = B * (double)layer_shape_numel(l->out) * sizeof(float);
        total += 2 * bytes + (double)l->ws_floats * sizeof(float); /* output, private buffers */
        if (bytes > largest) largest = bytes, largest_name = l->name;
        if (bytes > (double)d->max_alloc_bytes)
            return dlcl__err(DLCL_ERR_OUT_OF_MEMORY,
                             "layer [%s]: its output for a batch of %d (%.2f GiB) is larger than the largest buffer of "
                             "%s (%.2f GiB); lower [net] batch or the input size", l->name, net->batch,
                             bytes / 1073741824.0, d->name, d->max_alloc_bytes / 1073741824.0);
    }
    total += 2 * largest; /* the output gradients share two buffers (plan_net_slots) */
    if (total > (double)d->global_mem_bytes)
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY,
                         "the net needs about %.2f GiB of device memory for a batch of %d (largest: layer [%s] output, "
                         "%.2f GiB), more than the %.2f GiB of %s; lower [net] batch or the input size",
                         total / 1073741824.0, net->batch, largest_name, largest / 1073741824.0,
                         d->global_mem_bytes / 1073741824.0, d->name);
    return DLCL_OK;
}

/* Buffers shared by liveness: item i (a layer's output, or its gradient) is live from step
 * birth[i] to step death[i], both included, and needs need[i] floats. Items are placed in
 * the order of their births; before item i, the slots of items dead before birth[i] are
 * free, and i takes the free slot that fits best (growing the largest free one if none
 * fits). Two items live in the same step never share: a layer's input and its output, or
 * the gradients it reads and writes. slot_floats has room for n slots. */
static dlcl_status plan_slots(size_t n, const size_t *birth, const size_t *death, const size_t *need, size_t *slot_of,
                              size_t *slot_floats, size_t *n_slots)
{
    size_t *order = malloc(n * sizeof *order), *owner = malloc(n * sizeof *owner); /* slot -> item, SIZE_MAX: free */
    if (order == NULL || owner == NULL) {
        free(order);
        free(owner);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    for (size_t i = 0; i < n; i++) { /* insertion sort by birth: n is the number of layers */
        size_t j = i;
        for (; j > 0 && birth[order[j - 1]] > birth[i]; j--) order[j] = order[j - 1];
        order[j] = i;
    }
    *n_slots = 0;
    for (size_t o = 0; o < n; o++) {
        size_t i = order[o], pick = SIZE_MAX;
        for (size_t k = 0; k < *n_slots; k++)
            if (owner[k] != SIZE_MAX && death[owner[k]] < birth[i]) owner[k] = SIZE_MAX;
        for (size_t k = 0; k < *n_slots; k++) {
            if (owner[k] != SIZE_MAX) continue;
            bool fits = slot_floats[k] >= need[i], best_fits = pick != SIZE_MAX && slot_floats[pick] >= need[i];
            if (pick == SIZE_MAX || (fits && (!best_fits || slot_floats[k] < slot_floats[pick])) ||
                (!fits && !best_fits && slot_floats[k] > slot_floats[pick]))
                pick = k;
        }
        if (pick == SIZE_MAX) pick = (*n_slots)++, slot_floats[pick] = 0;
        if (slot_floats[pick] < need[i]) slot_floats[pick] = need[i];
        owner[pick] = i;
        slot_of[i] = pick;
    }
    free(order);
    free(owner);
    return DLCL_OK;
}

/* Inference: output i is born when layer i runs (step i) and dies after the last layer that
 * reads it; the net's output lives to the end. Training keeps every output (the backward
 * reads them), but the output gradients share buffers: with the loss as step 0 and layer i's
 * backward as step n - i, gradient j is read in step n - j, and born in the step of the
 * first backward that writes it (its reader's, or the loss's for the last layer). A chain
 * needs two buffers either way. */
static dlcl_status plan_net_slots(dlcl_net *net, bool gradients, size_t *slot_of)
{
    size_t n = net->n_layers;
    size_t *birth = calloc(n, sizeof *birth), *death = calloc(n, sizeof *death), *need = calloc(n, sizeof *need);
    net->slots = calloc(n, sizeof *net->slots);
    net->slot_bytes = calloc(n, sizeof *net->slot_bytes);
    dlcl_status st = DLCL_OK;
    if (!birth || !death || !need || !net->slots || !net->slot_bytes)
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    for (size_t i = 0; st == DLCL_OK && i < n; i++) {
        need[i] = (size_t)net->batch * layer_shape_numel(net->layers[i].out);
        if (gradients)
            death[i] = n - i, birth[i] = i == n - 1 ? 0 : n - i; /* unwritten: lives in its own step */
        else
            birth[i] = i, death[i] = i == n - 1 ? n : i; /* unread: dies at once */
    }
    for (size_t r = 0; st == DLCL_OK && r < n; r++) {
        int in = net->layers[r].input_index;
        if (in < 0) continue;
        if (gradients && n - r < birth[in]) birth[in] = n - r;
        if (!gradients && death[in] < r) death[in] = r;
    }
    if (st == DLCL_OK) st = plan_slots(n, birth, death, need, slot_of, net->slot_bytes, &net->n_slots);
    free(birth);
    free(death);
    free(need);
    for (size_t k = 0; st == DLCL_OK && k < net->n_slots; k++) {
        char what[96];
        op_buf tmp = {0};
        snprintf(what, sizeof what, "%s buffer %zu of %zu", gradients ? "output gradient" : "activation", k + 1,
                 net->n_slots);
        st = alloc_buf(net, net->slot_bytes[k], what, &tmp, &net->slot_bytes[k]);
        net->slots[k] = tmp.mem;
    }
    return st;
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
    if (!net->act || !net->dact || !net->act_bytes || !slot_of) {
        free(slot_of);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    st = plan_net_slots(net, false, slot_of);
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
    size_t *slot_of = calloc(n, sizeof *slot_of);
    if (!net->act || !net->dact || !net->act_bytes || !slot_of) {
        free(slot_of);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    st = plan_net_slots(net, true, slot_of);
    for (size_t i = 0; st == DLCL_OK && i < n; i++) net->dact[i] = op_b(net->slots[slot_of[i]], 0);
    free(slot_of);
    if (st != DLCL_OK) return st;
    size_t ws = 0;
    for (size_t i = 0; i < n; i++) {
        layer *l = &net->layers[i];
        size_t floats = B * layer_shape_numel(l->out);
        snprintf(what, sizeof what, "[%s] output", l->name);
        if ((st = alloc_buf(net, floats, what, &net->act[i], &net->act_bytes[i])) != DLCL_OK) return st;
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
