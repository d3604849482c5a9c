/* The net's device memory: the three regions (parameters with their gradients, buffers,
 * optimizer state), each layer's output, the output gradients sharing buffers by liveness
 * over the DAG, the scratch gradients that readers beyond the first add in, one shared
 * workspace; checked against the device before anything is allocated. Inference keeps no
 * gradients or state, and its layer outputs share buffers by liveness. */
#include <stdio.h>
#include <stdlib.h>

#include "net.h"

static dlcl_status oom(void) { return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory"); }

static dlcl_status alloc_floats(dlcl_net *net, size_t floats, const char *what, cl_mem *out)
{
    size_t bytes;
    if (!dlcl__mul_ok(floats ? floats : 1, sizeof(float), &bytes))
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: size overflows", what);
    net->device_bytes += bytes;
    return rt_buffer_acquire(net->ctx, bytes, what, out);
}

static dlcl_status alloc_buf(dlcl_net *net, size_t floats, const char *what, op_buf *b)
{
    b->off = 0;
    return alloc_floats(net, floats, what, &b->mem);
}

static size_t out_floats(const dlcl_net *net, size_t i) { return (size_t)net->batch * layer_shape_numel(net->layers[i].out); }

/* Before any device buffer exists: the sizes of the net's buffers against the device's
 * largest buffer and its memory, so that a net too large for the device fails at once with
 * the tensor to blame, not half-allocated (or, on PoCL, by swapping the host). Layer-private
 * buffers (pre-activations, dropout masks, statistics) are at most one output each: counted
 * as such; the output gradients as two buffers of the largest output, plus the scratch ones. */
static dlcl_status plan_device_memory(const dlcl_net *net)
{
    const dlcl_device_info *d = &net->ctx->info;
    double B = net->batch;
    double total = (2.0 + net->n_state) * net->n_params * sizeof(float) + net->n_buffers * 4.0 +
                   B * layer_shape_numel(net->input) * 4.0;
    double largest = 0;
    const char *largest_name = "parameters";
    for (size_t i = 0; i < net->n_layers; i++) {
        const layer *l = &net->layers[i];
        if (net_is_alias(net, i)) continue;
        double bytes = B * (double)layer_shape_numel(l->out) * sizeof(float);
        total += 2 * bytes + (double)l->ws_floats * sizeof(float); /* output, private buffers */
        if (bytes > largest) largest = bytes, largest_name = l->name;
        if (bytes > (double)d->max_alloc_bytes)
            return dlcl__err(DLCL_ERR_OUT_OF_MEMORY,
                             "layer [%s]: its output for a batch of %d (%.2f GiB) is larger than the largest buffer of "
                             "%s (%.2f GiB); lower [net] batch or the input size", l->name, net->batch,
                             bytes / 1073741824.0, d->name, d->max_alloc_bytes / 1073741824.0);
    }
    total += (2.0 + (double)net->n_tmp) * largest; /* output gradients (plan_slots) and scratch gradients */
    if (total > (double)d->global_mem_bytes)
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY,
                         "the net needs about %.2f GiB of device memory for a batch of %d (largest: layer [%s] output, "
                         "%.2f GiB), more than the %.2f GiB of %s; lower [net] batch or the input size",
                         total / 1073741824.0, net->batch, largest_name, largest / 1073741824.0,
                         d->global_mem_bytes / 1073741824.0, d->name);
    return DLCL_OK;
}

/* Buffers shared by liveness: item i is live from step birth[i] to step death[i], both
 * included, and needs need[i] floats (items with use[i] false take no slot). Items are
 * placed in the order of their births; before item i, the slots of items dead before
 * birth[i] are free, and i takes the free slot that fits best (growing the largest free one
 * if none fits). Two items live in the same step never share. slot_floats has room for n. */
static dlcl_status plan_slots(size_t n, const bool *use, const size_t *birth, const size_t *death, const size_t *need,
                              size_t *slot_of, size_t *slot_floats, size_t *n_slots)
{
    size_t *order = malloc(n * sizeof *order), *owner = malloc(n * sizeof *owner); /* slot -> item, SIZE_MAX: free */
    if (order == NULL || owner == NULL) {
        free(order);
        free(owner);
        return oom();
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) { /* insertion sort by birth: n is the number of layers */
        if (!use[i]) continue;
        size_t j = m++;
        for (; j > 0 && birth[order[j - 1]] > birth[i]; j--) order[j] = order[j - 1];
        order[j] = i;
    }
    *n_slots = 0;
    for (size_t o = 0; o < m; o++) {
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
 * reads it; the loss's input lives to the end. Training keeps every output (the backward
 * reads them), but the output gradients share buffers: with the loss as step 0 and layer
 * i's backward as step n - i, gradient j is read in step n - j and born in the step of the
 * first backward that writes it (its last reader's, or the loss's). Aliases take no buffer.
 * Both plans are over the DAG; a chain needs two buffers either way. */
static dlcl_status plan_net_slots(dlcl_net *net, bool gradients, size_t *slot_of)
{
    size_t n = net->n_layers, *slot_floats = calloc(n, sizeof *slot_floats);
    size_t *birth = calloc(n, sizeof *birth), *death = calloc(n, sizeof *death), *need = calloc(n, sizeof *need);
    bool *use = calloc(n, sizeof *use);
    net->slots = calloc(n, sizeof *net->slots);
    dlcl_status st = DLCL_OK;
    if (!birth || !death || !need || !use || !slot_floats || !net->slots) st = oom();
    for (size_t i = 0; st == DLCL_OK && i < n; i++) {
        use[i] = !net_is_alias(net, i) && (!gradients || net->needs_grad[i]);
        need[i] = net_out_half(net, i) ? (out_floats(net, i) + 1) / 2 : out_floats(net, i); /* halves pair up */
        if (gradients)
            death[i] = n - i, birth[i] = (int)i == net->output ? 0 : n - i;
        else
            birth[i] = i, death[i] = (int)i == net->output ? n : i;
    }
    for (size_t r = 0; st == DLCL_OK && r < n; r++) {
        const layer *l = &net->layers[r];
        if (net_is_alias(net, r)) continue;
        for (int k = 0; k < l->n_in; k++) {
            int s = l->in_node[k] < 0 ? -1 : net->source[l->in_node[k]];
            if (s < 0) continue;
            if (gradients && n - r < birth[s]) birth[s] = n - r;
            if (!gradients && death[s] < r) death[s] = r;
        }
    }
    if (st == DLCL_OK) st = plan_slots(n, use, birth, death, need, slot_of, slot_floats, &net->n_slots);
    for (size_t k = 0; st == DLCL_OK && k < net->n_slots; k++) {
        char what[96];
        snprintf(what, sizeof what, "%s buffer %zu of %zu", gradients ? "output gradient" : "activation", k + 1,
                 net->n_slots);
        st = alloc_floats(net, slot_floats[k], what, &net->slots[k]);
    }
    free(birth);
    free(death);
    free(need);
    free(use);
    free(slot_floats);
    return st;
}

/* An alias's output (and gradient) is its source's: the net's input for an alias of it. */
static void point_aliases(dlcl_net *net)
{
    for (size_t i = 0; i < net->n_layers; i++) {
        if (!net_is_alias(net, i)) continue;
        int s = net->source[i];
        net->act[i] = s < 0 ? net->in : net->act[s];
        net->dact[i] = s < 0 ? op_b(NULL, 0) : net->dact[s];
    }
}

/* Per-layer state (alloc), the shared workspace, labels, loss statistics and host scratch. */
static dlcl_status alloc_common(dlcl_net *net)
{
    size_t B = (size_t)net->batch, n = net->n_layers, ws = 0, rows = B * (size_t)net->label_len;
    dlcl_status st = DLCL_OK;
    for (size_t i = 0; st == DLCL_OK && i < n; i++) {
        layer *l = &net->layers[i];
        l->inference = net->inference;
        if (l->type->alloc) st = l->type->alloc(l, net->ctx, net->batch);
        if (l->ws_floats > ws) ws = l->ws_floats;
    }
    if (st == DLCL_OK) st = alloc_buf(net, ws, "workspace", &net->ws);
    if (st == DLCL_OK) st = alloc_buf(net, 2 * rows, "loss statistics", &net->stats);
    net->nf_bytes = (1 + 2 * n) * sizeof(int);
    net->device_bytes += rows * sizeof(int32_t) + net->nf_bytes;
    if (st == DLCL_OK) st = rt_buffer_acquire(net->ctx, rows * sizeof(int32_t), "labels", &net->labels);
    if (st == DLCL_OK) st = rt_buffer_acquire(net->ctx, net->nf_bytes, "numerics flags", &net->nf_flags);
    if (st != DLCL_OK) return st;
    net->nf_host = malloc(net->nf_bytes);
    net->stats_host = malloc(2 * rows * sizeof(float));
    net->host_scratch = malloc(B * (size_t)net->classes * sizeof(float)); /* B rows of logits at a time */
    net->counters = calloc(net->n_counters ? net->n_counters : 1, sizeof *net->counters);
    if (!net->stats_host || !net->host_scratch || !net->nf_host || !net->counters) return oom();
    return DLCL_OK;
}

/* The parameter and buffer regions, the input, the per-node tables. */
static dlcl_status alloc_regions(dlcl_net *net)
{
    size_t n = net->n_layers;
    dlcl_status st = alloc_floats(net, net->n_params_dev, "parameters", &net->params);
    if (st == DLCL_OK && net->n_params_dev < net->n_params &&
        (net->params_host = calloc(net->n_params, sizeof(float))) == NULL)
        st = oom();
    if (st == DLCL_OK) st = alloc_floats(net, net->n_buffers, "buffers (running statistics)", &net->buffers);
    if (st == DLCL_OK) st = alloc_buf(net, (size_t)net->batch * layer_shape_numel(net->input), "network input", &net->in);
    if (st != DLCL_OK) return st;
    net->act = calloc(n, sizeof *net->act);
    net->dact = calloc(n, sizeof *net->dact);
    return net->act && net->dact ? DLCL_OK : oom();
}

dlcl_status net_alloc_inference(dlcl_net *net)
{
    size_t n = net->n_layers;
    dlcl_status st = alloc_regions(net);
    size_t *slot_of = calloc(n, sizeof *slot_of);
    if (st == DLCL_OK && slot_of == NULL) st = oom();
    if (st == DLCL_OK) st = plan_net_slots(net, false, slot_of);
    for (size_t i = 0; st == DLCL_OK && i < n; i++)
        if (!net_is_alias(net, i)) net->act[i] = (op_buf){net->slots[slot_of[i]], 0, net_out_half(net, i)};
    free(slot_of);
    if (st == DLCL_OK) point_aliases(net);
    if (st == DLCL_OK) st = net_alloc_folds(net);
    if (st == DLCL_OK) st = alloc_common(net);
    return st == DLCL_OK ? net_init_params(net) : st;
}

dlcl_status net_alloc_training(dlcl_net *net)
{
    size_t n = net->n_layers;
    net->n_state = optim_state_slots(&net->optim);
    dlcl_status st = plan_device_memory(net);
    if (st == DLCL_OK) st = alloc_regions(net);
    if (st == DLCL_OK) st = alloc_floats(net, net->n_params, "gradients", &net->grads);
    size_t state_floats = 0;
    if (st == DLCL_OK && !dlcl__mul_ok(net->n_params, (size_t)net->n_state, &state_floats))
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "optimizer state: size overflows");
    if (st == DLCL_OK) st = alloc_floats(net, state_floats, "optimizer state", &net->state);
    float zero = 0.0f;
    if (st == DLCL_OK && net->n_params > 0) {
        cl_int err = state_floats == 0 ? CL_SUCCESS
                                       : clEnqueueFillBuffer(net->ctx->queue, net->state, &zero, sizeof zero, 0,
                                                             state_floats * sizeof(float), 0, NULL, NULL);
        if (err == CL_SUCCESS)
            err = clEnqueueFillBuffer(net->ctx->queue, net->grads, &zero, sizeof zero, 0, net->n_params * sizeof(float),
                                      0, NULL, NULL);
        if (err != CL_SUCCESS) st = dlcl__cl_err(err, "clEnqueueFillBuffer (optimizer state)");
    }
    if (st == DLCL_OK && net->optim.clip_grad_norm > 0)
        st = alloc_floats(net, optim_clip_scratch(net->ctx, net->n_params), "gradient norm partial sums",
                          &net->clip_scratch);
    if (st == DLCL_OK && net->optim.clip_grad_norm > 0)
        st = alloc_floats(net, OPTIM_GSCALE_FLOATS, "gradient clipping factor", &net->gscale);
    if (st == DLCL_OK && net->optim.accumulate > 1)
        st = alloc_floats(net, net->n_params, "accumulated gradients", &net->gacc);
    size_t *slot_of = calloc(n, sizeof *slot_of);
    if (st == DLCL_OK && slot_of == NULL) st = oom();
    if (st == DLCL_OK) st = plan_net_slots(net, true, slot_of);
    for (size_t i = 0; st == DLCL_OK && i < n; i++)
        if (!net_is_alias(net, i) && net->needs_grad[i]) net->dact[i] = op_b(net->slots[slot_of[i]], 0);
    free(slot_of);
    char what[160];
    for (size_t i = 0; st == DLCL_OK && i < n; i++) {
        if (net_is_alias(net, i)) continue;
        snprintf(what, sizeof what, "[%s] output", net->layers[i].name);
        st = alloc_buf(net, out_floats(net, i), what, &net->act[i]);
    }
    if (st == DLCL_OK) point_aliases(net);
    size_t tmp_floats = 0; /* scratch gradients: the largest input summed into */
    for (size_t i = 0; st == DLCL_OK && i < n; i++)
        for (int k = 0; k < net->layers[i].n_in; k++)
            if (net->grad_mode[i][k] == NET_GRAD_ADD) {
                size_t f = (size_t)net->batch * layer_shape_numel(net->layers[i].in[k]);
                if (f > tmp_floats) tmp_floats = f;
            }
    if (st == DLCL_OK && net->n_tmp > 0 && (net->tmp = calloc(net->n_tmp, sizeof *net->tmp)) == NULL) st = oom();
    for (size_t t = 0; st == DLCL_OK && t < net->n_tmp; t++) {
        snprintf(what, sizeof what, "scratch gradient %zu (summing the gradients of an output read twice)", t + 1);
        st = alloc_buf(net, tmp_floats, what, &net->tmp[t]);
    }
    if (st == DLCL_OK) st = alloc_common(net);
    return st == DLCL_OK ? net_init_params(net) : st;
}

static void release(dlcl_net *net, cl_mem *m)
{
    rt_buffer_release(net->ctx, *m);
    *m = NULL;
}

void net_free_buffers(dlcl_net *net)
{
    for (size_t i = 0; net->act && !net->inference && i < net->n_layers; i++) /* inference: slots own them */
        if (!net_is_alias(net, i)) release(net, &net->act[i].mem);
    for (size_t k = 0; k < net->n_slots; k++) release(net, &net->slots[k]);
    for (size_t t = 0; net->tmp && t < net->n_tmp; t++) release(net, &net->tmp[t].mem);
    release(net, &net->params);
    release(net, &net->grads);
    release(net, &net->buffers);
    release(net, &net->folded);
    release(net, &net->half_w);
    release(net, &net->state);
    release(net, &net->clip_scratch);
    release(net, &net->gacc);
    release(net, &net->gscale);
    release(net, &net->in.mem);
    release(net, &net->ws.mem);
    release(net, &net->labels);
    release(net, &net->stats.mem);
    release(net, &net->nf_flags);
    free(net->slots);
    free(net->act);
    free(net->dact);
    free(net->tmp);
    free(net->stats_host);
    free(net->nf_host);
    free(net->host_scratch);
    free(net->counters);
    free(net->params_host);
}
