/* Running the net: forward over the DAG in topological order, the loss, the backward in
 * reverse order with the gradients of every reader of an output summed, numerical guards,
 * the optimizer step. One training-step routine (net_train_step) serves training,
 * profiling and data-parallel training; one host read per batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

static dlcl_status check_batch(const dlcl_net *net, const void *x, int count, const char *fn)
{
    if (net == NULL || x == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: net and x must not be NULL", fn);
    if (count < 1 || count > net->batch)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: count %d not in 1..%d (the net's batch size)", fn, count, net->batch);
    return DLCL_OK;
}

/* The buffer node k of layer l reads: a node's output, or the net's input. */
static op_buf input_buf(const dlcl_net *net, const layer *l, int k)
{
    return l->in_node[k] < 0 ? net->in : net->act[l->in_node[k]];
}

static layer_io make_io(dlcl_net *net, size_t i, int count, int training, op_buf *xs, op_buf *dxs)
{
    const layer *l = &net->layers[i];
    layer_io io = {0};
    io.ctx = net->ctx;
    io.batch = net->batch;
    io.count = count;
    io.training = training;
    for (int k = 0; k < l->n_in; k++) {
        xs[k] = input_buf(net, l, k);
        dxs[k] = op_b(NULL, 0);
        if (training && net->grad_mode) {
            net_grad_mode m = net->grad_mode[i][k];
            if (m == NET_GRAD_WRITE) dxs[k] = net->dact[l->in_node[k]];
            if (m == NET_GRAD_ADD) dxs[k] = net->tmp[net->grad_tmp[i][k]];
        }
    }
    io.x = xs;
    io.dx = dxs;
    io.y = net->act[i];
    io.dy = net->dact[i];
    io.params = net->params;
    io.grads = net->grads;
    io.buffers = net->buffers;
    io.counters = net->counters;
    io.ws = net->ws;
    io.seed = dlcl__mix64(net->seed ^ dlcl__mix64(net->step * 0x100000001b3ull + i + 1));
    io.accumulate = l->accumulate;
    net_exchange_io(net, &io);
    return io;
}

static dlcl_status after(const net_step_opts *o, net_phase phase, size_t layer)
{
    return o && o->after ? o->after(o->user, phase, layer) : DLCL_OK;
}

static dlcl_status layer_err(dlcl_status st, const char *pass, const layer *l, int count)
{
    char in[64], out[64];
    return dlcl__err_prefix(st, "%s of layer [%s] (%d x %s -> %s)", pass, l->name, count,
                            layer_shape_str(l->in[0], in, sizeof in), layer_shape_str(l->out, out, sizeof out));
}

static dlcl_status run_layer_forward(dlcl_net *net, size_t i, int count, int training)
{
    layer *l = &net->layers[i];
    op_buf xs[LAYER_MAX_INPUTS], dxs[LAYER_MAX_INPUTS];
    layer_io io = make_io(net, i, count, training, xs, dxs);
    dlcl_status st = l->type->forward(l, &io);
    return st == DLCL_OK ? DLCL_OK : layer_err(st, "forward", l, count);
}

/* Token ids outside the vocabulary of the layers that read them would index out of their
 * tables: the first one is an error naming the sample and position. */
static dlcl_status check_tokens(const dlcl_net *net, const int32_t *x, int count)
{
    if (net->input.dtype != DLCL_INT32) return DLCL_OK;
    size_t T = layer_shape_numel(net->input);
    for (size_t i = 0; i < (size_t)count * T; i++)
        if (x[i] < 0 || x[i] >= net->vocab)
            return dlcl__err(DLCL_ERR_INVALID_ARG, "token %d at position %zu of sample %zu is outside 0..%d (the "
                             "vocabulary of the layers that read the input)", (int)x[i], i % T, i / T, net->vocab - 1);
    return DLCL_OK;
}

dlcl_status net_forward_steps(dlcl_net *net, const int32_t *tokens, int count, int pos, int steps)
{
    if (steps < 1 || pos < 0 || pos + steps > net->input.dims[0] || count < 1 || count > net->batch)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "cached forward: positions %d..%d of a context of %d, %d samples", pos,
                         pos + steps - 1, net->input.dims[0], count);
    dlcl_status st = DLCL_OK;
    for (size_t i = 0; i < (size_t)count * (size_t)steps && st == DLCL_OK; i++)
        if (tokens[i] < 0 || tokens[i] >= net->vocab)
            st = dlcl__err(DLCL_ERR_INVALID_ARG, "token %d at position %zu is outside 0..%d", (int)tokens[i],
                           (size_t)pos + i % (size_t)steps, net->vocab - 1);
    if (st != DLCL_OK) return st;
    cl_int err = clEnqueueWriteBuffer(net->ctx->queue, net->in.mem, CL_FALSE, 0,
                                      (size_t)count * (size_t)steps * sizeof *tokens, tokens, 0, NULL, NULL);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clEnqueueWriteBuffer (network input)");
    for (size_t i = 0; i < net->n_layers && st == DLCL_OK; i++) {
        if (net_is_alias(net, i)) continue;
        layer *l = &net->layers[i];
        op_buf xs[LAYER_MAX_INPUTS], dxs[LAYER_MAX_INPUTS];
        layer_io io = make_io(net, i, count, 0, xs, dxs);
        io.steps = steps;
        io.pos = pos;
        st = l->type->forward(l, &io);
        if (st != DLCL_OK) st = layer_err(st, "cached forward", l, count);
    }
    return st;
}

/* A replica's rank without samples in this step runs only the layers whose training passes
 * call io->sum (sync_batchnorm), with count 0, so that every rank makes the same calls. */
static bool skip_empty(const dlcl_net *net, size_t i, const layer_io *io)
{
    return io->count == 0 && !(io->sum && (net->layers[i].type->flags & LAYER_COLLECTIVE));
}

dlcl_status net_forward(dlcl_net *net, const void *x, int count, int training, const net_step_opts *o)
{
    if (count == 0) { /* a replica's rank without samples (training only) */
        for (size_t i = 0; i < net->n_layers; i++) {
            if (net_is_alias(net, i)) continue;
            layer *l = &net->layers[i];
            op_buf xs[LAYER_MAX_INPUTS], dxs[LAYER_MAX_INPUTS];
            layer_io io = make_io(net, i, 0, training, xs, dxs);
            if (skip_empty(net, i, &io)) continue;
            dlcl_status st = l->type->forward(l, &io);
            if (st != DLCL_OK) return layer_err(st, "forward", l, 0);
        }
        return DLCL_OK;
    }
    size_t n = (size_t)count * layer_shape_numel(net->input); /* float32 or int32: 4 bytes each */
    dlcl_status st0 = check_tokens(net, x, count);
    if (st0 != DLCL_OK) return st0;
    cl_int err = clEnqueueWriteBuffer(net->ctx->queue, net->in.mem, CL_FALSE, 0, n * sizeof(float), x, 0, NULL, NULL);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clEnqueueWriteBuffer (network input)");
    for (size_t i = 0; i < net->n_layers; i++) {
        if (net_is_alias(net, i)) continue;
        dlcl_status st = run_layer_forward(net, i, count, training);
        if (st == DLCL_OK) st = after(o, NET_PHASE_FORWARD, i);
        if (st != DLCL_OK) return st;
    }
    return DLCL_OK;
}

/* The backward of layer i, then the gradients it wrote to scratch buffers added into those
 * of the outputs it read (readers after the first). */
static dlcl_status run_layer_backward(dlcl_net *net, size_t i, int count)
{
    layer *l = &net->layers[i];
    if (!net->needs_grad[i]) return DLCL_OK; /* no parameters at or above it */
    op_buf xs[LAYER_MAX_INPUTS], dxs[LAYER_MAX_INPUTS];
    layer_io io = make_io(net, i, count, 1, xs, dxs);
    if (skip_empty(net, i, &io)) return DLCL_OK;
    dlcl_status st = l->type->backward(l, &io);
    for (int k = 0; st == DLCL_OK && count > 0 && k < l->n_in; k++)
        if (net->grad_mode[i][k] == NET_GRAD_ADD)
            st = op_add_into(net->ctx, dxs[k], net->dact[l->in_node[k]], (size_t)count * layer_shape_numel(l->in[k]));
    return st == DLCL_OK ? DLCL_OK : layer_err(st, "backward", l, count);
}

static dlcl_status upload_labels(dlcl_net *net, const int32_t *y, int count)
{
    size_t L = (size_t)net->label_len, rows = (size_t)count * L;
    if (rows == 0) return DLCL_OK;
    for (size_t i = 0; i < rows; i++)
        if (y[i] < 0 || y[i] >= net->classes) {
            if (L == 1)
                return dlcl__err(DLCL_ERR_INVALID_ARG, "label %d of sample %zu is outside 0..%d", (int)y[i], i,
                                 net->classes - 1);
            return dlcl__err(DLCL_ERR_INVALID_ARG, "label %d at position %zu of sample %zu is outside 0..%d", (int)y[i],
                             i % L, i / L, net->classes - 1);
        }
    cl_int err = clEnqueueWriteBuffer(net->ctx->queue, net->labels, CL_FALSE, 0, rows * sizeof(int32_t), y, 0, NULL,
                                      NULL);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clEnqueueWriteBuffer (labels)");
}

/* Numerical guards. Flags which of the batch input, the layer outputs and (grads: 1) the
 * layers' parameter gradients hold NaN or Inf, with one blocking read. The outputs are still
 * those of this batch's forward pass: backward only writes gradients. */
static dlcl_status scan_nonfinite(dlcl_net *net, int count, int grads)
{
    size_t n = net->n_layers;
    int zero = 0;
    cl_int err = clEnqueueFillBuffer(net->ctx->queue, net->nf_flags, &zero, sizeof zero, 0, net->nf_bytes, 0, NULL,
                                     NULL);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clEnqueueFillBuffer (numerics flags)");
    dlcl_status st = op_flag_nonfinite(net->ctx, net->in, (size_t)count * layer_shape_numel(net->input), net->nf_flags, 0);
    for (size_t i = 0; i < n && st == DLCL_OK; i++) {
        layer *l = &net->layers[i];
        if (net_is_alias(net, i)) continue;
        /* inference: outputs share buffers, so run the layer again and flag its output before a
         * later one overwrites it (the in-order queue keeps the two in order) */
        if (net->inference) st = run_layer_forward(net, i, count, 0);
        if (st == DLCL_OK)
            st = op_flag_nonfinite(net->ctx, net->act[i], (size_t)count * layer_shape_numel(l->out), net->nf_flags,
                                   (int)(1 + i));
        for (int p = 0; st == DLCL_OK && grads && p < l->n_params; p++)
            if (l->params[p].region == LAYER_PARAM)
                st = op_flag_nonfinite(net->ctx, op_b(net->grads, l->params[p].off), l->params[p].numel, net->nf_flags,
                                       (int)(1 + n + i));
    }
    if (st != DLCL_OK) return st;
    err = clEnqueueReadBuffer(net->ctx->queue, net->nf_flags, CL_TRUE, 0, net->nf_bytes, net->nf_host, 0, NULL, NULL);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clEnqueueReadBuffer (numerics flags)");
}

/* Names the first non-finite place the last scan found (DLCL_ERR_NUMERIC), or DLCL_OK if none.
 * `what` starts the message, `after` ends it. Gradients are searched in backward order. */
static dlcl_status nonfinite_error(const dlcl_net *net, const char *what, const char *after_text)
{
    size_t n = net->n_layers;
    const int *f = net->nf_host;
    if (f[0])
        return dlcl__err(DLCL_ERR_NUMERIC, "%s: the input batch holds NaN or Inf (check the data and [data] scale)%s", what,
                         after_text);
    for (size_t i = 0; i < n; i++)
        if (f[1 + i]) {
            const layer *l = &net->layers[i];
            return dlcl__err(DLCL_ERR_NUMERIC, "%s: the output of layer [%s] (line %d) is the first that is not finite%s",
                             what, l->name, l->line, after_text);
        }
    for (size_t i = n; i-- > 0;)
        if (f[1 + n + i]) {
            const layer *l = &net->layers[i];
            return dlcl__err(DLCL_ERR_NUMERIC,
                             "%s: every output is finite, but the gradient of layer [%s] (line %d) parameters is not%s",
                             what, l->name, l->line, after_text);
        }
    return DLCL_OK;
}

/* check_numerics = 1: stop before the batch changes anything if an output or gradient is not finite. */
static dlcl_status check_numerics(dlcl_net *net, int count, int grads)
{
    if (!net->check_numerics || count == 0) return DLCL_OK;
    dlcl_status st = scan_nonfinite(net, count, grads);
    if (st != DLCL_OK) return st;
    char what[64];
    snprintf(what, sizeof what, "check_numerics at step %llu", (unsigned long long)net->step);
    return nonfinite_error(net, what, "; the parameters were not updated");
}

/* Reads the per-sample stats of the loss (one blocking read) and sums them; a non-finite
 * loss is an error naming where it started (this batch's outputs are still in act[]). */
static dlcl_status read_stats(dlcl_net *net, int count, int training, double *loss_sum, int *correct)
{
    int rows = count * net->label_len; /* a loss and a hit per label: per token for a sequence net */
    if (rows == 0) { /* a replica's rank without samples */
        if (loss_sum) *loss_sum = 0;
        if (correct) *correct = 0;
        return DLCL_OK;
    }
    cl_int err = clEnqueueReadBuffer(net->ctx->queue, net->stats.mem, CL_TRUE, 0, 2 * (size_t)rows * sizeof(float),
                                     net->stats_host, 0, NULL, NULL);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clEnqueueReadBuffer (loss)");
    double sum = 0;
    int hits = 0;
    for (int i = 0; i < rows; i++) {
        sum += net->stats_host[2 * i];
        hits += net->stats_host[2 * i + 1] > 0.5f;
    }
    if (!isfinite(sum)) {
        char what[96];
        snprintf(what, sizeof what, "the loss is not finite (%g) at step %llu", sum,
                 (unsigned long long)(net->step - (training ? 1 : 0)));
        const char *after_text = training ? "; the parameters were updated with it: reload the last checkpoint "
                                            "(lower learning_rate?)"
                                          : "";
        dlcl_status st = scan_nonfinite(net, count, 0);
        if (st == DLCL_OK) st = nonfinite_error(net, what, after_text);
        if (st != DLCL_OK) return st;
        return dlcl__err(DLCL_ERR_NUMERIC, "%s, though every layer's output is finite%s", what, after_text);
    }
    if (loss_sum) *loss_sum = sum;
    if (correct) *correct = hits;
    return DLCL_OK;
}

/* The optimizer over the parameter region: the gradient norm first when clipping, then one
 * launch for the parameters with weight decay and one for those no_decay exempts. */
static dlcl_status optimizer_step(dlcl_net *net, cl_mem grads, const net_step_opts *o)
{
    const net_optim *opt = &net->optim;
    float lr = o && o->zero_lr ? 0.0f : (float)optim_lr(opt, net->epoch, net->epochs, net->step);
    cl_mem gscale = opt->clip_grad_norm > 0 ? net->gscale : NULL;
    dlcl_status st = optim_clip(net->ctx, opt, op_b(grads, 0), net->n_params, net->clip_scratch, net->gscale);
    size_t n[2] = {net->n_decay, net->n_params - net->n_decay}, at[2] = {0, net->n_decay};
    float wd[2] = {(float)opt->weight_decay, 0.0f};
    for (int r = 0; r < 2 && st == DLCL_OK; r++)
        if (n[r] > 0)
            st = optim_step(net->ctx, opt, op_b(net->params, at[r]), op_b(grads, at[r]),
                            op_b(net->state, at[r]), net->n_params, n[r], lr, wd[r], net->step, gscale);
    return st;
}

/* [optimizer] accumulate = N > 1: the gradients of N batches are summed in gacc (the first
 * copied, the others added) and the optimizer steps on the sum every Nth batch; returns 1
 * when it is time to step (always with N = 1, or o->whole). */
static int accumulate_gradients(dlcl_net *net, const net_step_opts *o, dlcl_status *st)
{
    if (*st != DLCL_OK) return 0;
    if (net->optim.accumulate <= 1 || (o && o->whole)) return 1;
    size_t bytes = net->n_params * sizeof(float);
    if (net->micro == 0) {
        cl_int err = bytes ? clEnqueueCopyBuffer(net->ctx->queue, net->grads, net->gacc, 0, 0, bytes, 0, NULL, NULL)
                           : CL_SUCCESS;
        if (err != CL_SUCCESS) *st = dlcl__cl_err(err, "clEnqueueCopyBuffer (accumulated gradients)");
    } else if (net->n_params) {
        *st = op_add_into(net->ctx, op_b(net->grads, 0), op_b(net->gacc, 0), net->n_params);
    }
    if (*st != DLCL_OK) return 0;
    net->micro = (net->micro + 1) % net->optim.accumulate;
    return net->micro == 0;
}

/* The gradient region starts at zero on a replica's rank without samples: its backward
 * pass writes nothing, and the sums count it as nothing. */
static dlcl_status zero_grads(dlcl_net *net)
{
    float zero = 0.0f;
    cl_int err = net->n_params ? clEnqueueFillBuffer(net->ctx->queue, net->grads, &zero, sizeof zero, 0,
                                                     net->n_params * sizeof(float), 0, NULL, NULL)
                               : CL_SUCCESS;
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clEnqueueFillBuffer (gradients)");
}

dlcl_status net_train_step(dlcl_net *net, const void *x, const int32_t *y, int count, const net_step_opts *o,
                           double *loss_sum, int *correct)
{
    dlcl_status st = upload_labels(net, y, count);
    if (st == DLCL_OK) st = net_forward(net, x, count, 1, o);
    if (st == DLCL_OK) st = check_numerics(net, count, 0);
    if (st != DLCL_OK) return st;
    size_t out = (size_t)net->output;
    op_buf grad = net->needs_grad[out] ? net->dact[out] : op_b(NULL, 0);
    /* the mean over every label (per token for a sequence net), over every rank's samples,
     * and over the batches of an accumulated step: each counts 1/accumulate */
    int global = o && o->global_count ? o->global_count : count;
    int rows = count * net->label_len, accum = o && o->whole ? 1 : net->optim.accumulate;
    float scale = 1.0f / ((float)global * (float)net->label_len * (float)accum);
    /* a replica exchanges its gradients; during the backward pass only when they are final */
    int exchange = net->xc != NULL && !(o && o->local), overlap = exchange && accum == 1;
    if (rows > 0)
        st = op_softmax_xent_smooth(net->ctx, net->act[out], net->labels, rows, net->classes,
                                    (float)net->optim.label_smoothing, scale, grad, net->stats);
    else
        st = zero_grads(net);
    if (st == DLCL_OK) st = after(o, NET_PHASE_LOSS, 0);
    for (size_t i = net->n_layers; i-- > 0 && st == DLCL_OK;) {
        if (net_is_alias(net, i)) continue;
        st = run_layer_backward(net, i, count);
        if (st == DLCL_OK) st = after(o, NET_PHASE_BACKWARD, i);
        if (st == DLCL_OK && overlap && count > 0) st = net_exchange_after_backward(net, i);
    }
    if (st == DLCL_OK) st = check_numerics(net, count, 1);
    int steps = accumulate_gradients(net, o, &st); /* 0: the gradients wait for more batches */
    cl_mem grads = accum > 1 ? net->gacc : net->grads;
    if (st == DLCL_OK && steps && exchange) st = net_exchange_finish(net, grads);
    if (st == DLCL_OK && steps) st = optimizer_step(net, grads, o);
    if (st == DLCL_OK) st = after(o, NET_PHASE_STEP, 0);
    if (st != DLCL_OK) return st;
    net->step += (uint64_t)steps;
    return read_stats(net, count, 1, loss_sum, correct);
}

dlcl_status dlcl_net_train_batch(dlcl_net *net, const void *x, const int32_t *y, int count, double *loss_sum,
                                 int *correct)
{
    dlcl_status st = check_batch(net, x, count, "dlcl_net_train_batch");
    if (st == DLCL_OK) st = net_require_training(net, "dlcl_net_train_batch");
    if (st == DLCL_OK && y == NULL) st = dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_train_batch: y is NULL");
    if (st == DLCL_OK && net->xc != NULL)
        st = dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_train_batch: the net is a replica: train it with "
                       "dlcl_net_train_shard on every rank");
    if (st == DLCL_OK) st = net_train_step(net, x, y, count, NULL, loss_sum, correct);
    return st;
}

dlcl_status dlcl_net_train_shard(dlcl_net *net, const void *x, const int32_t *y, int count, int global_count,
                                 double *loss_sum, int *correct)
{
    const char *fn = "dlcl_net_train_shard";
    if (net == NULL || (count > 0 && (x == NULL || y == NULL)))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: net, x and y must not be NULL", fn);
    dlcl_status st = net_require_training(net, fn);
    if (st != DLCL_OK) return st;
    int ranks = net_ranks(net);
    if (count < 0 || count > net->batch)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: count %d not in 0..%d (this rank's share of a batch)", fn, count,
                         net->batch);
    if (global_count < 1 || global_count > net->global_batch || global_count < count ||
        (ranks == 1 && global_count != count))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: global_count %d: expected the samples of the step over all %d "
                         "ranks, %d..%d (this rank's %d among them)", fn, global_count, ranks, count > 1 ? count : 1,
                         ranks == 1 ? count : net->global_batch, count);
    net_step_opts o = {.global_count = global_count};
    return net_train_step(net, x, y, count, &o, loss_sum, correct);
}

static dlcl_status read_logits(dlcl_net *net, size_t row0, size_t rows, float *dst)
{
    size_t C = (size_t)net->classes;
    cl_int err = clEnqueueReadBuffer(net->ctx->queue, net->act[net->output].mem, CL_TRUE,
                                     (net->act[net->output].off + row0 * C) * sizeof(float), rows * C * sizeof(float),
                                     dst, 0, NULL, NULL);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clEnqueueReadBuffer (logits)");
}

static void argmax_rows(const float *logits, size_t count, int classes, int32_t *pred)
{
    for (size_t i = 0; i < count; i++) {
        const float *r = logits + i * (size_t)classes;
        int best = 0;
        for (int c = 1; c < classes; c++)
            if (r[c] > r[best]) best = c;
        pred[i] = best;
    }
}

/* The argmax of each of the count * label_len rows of logits, read batch rows at a time. */
static dlcl_status predict_rows(dlcl_net *net, int count, int32_t *pred)
{
    size_t rows = (size_t)count * (size_t)net->label_len, B = (size_t)net->batch;
    dlcl_status st = DLCL_OK;
    for (size_t r = 0; r < rows && st == DLCL_OK; r += B) {
        size_t n = rows - r < B ? rows - r : B;
        st = read_logits(net, r, n, net->host_scratch);
        if (st == DLCL_OK) argmax_rows(net->host_scratch, n, net->classes, pred + r);
    }
    return st;
}

dlcl_status dlcl_net_eval_batch(dlcl_net *net, const void *x, const int32_t *y, int count, double *loss_sum,
                                int *correct, int32_t *pred)
{
    dlcl_status st = check_batch(net, x, count, "dlcl_net_eval_batch");
    if (st == DLCL_OK && y == NULL) st = dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_eval_batch: y is NULL");
    if (st == DLCL_OK) st = upload_labels(net, y, count);
    if (st == DLCL_OK) st = net_forward(net, x, count, 0, NULL);
    if (st == DLCL_OK && pred != NULL) st = predict_rows(net, count, pred);
    int rows = st == DLCL_OK ? count * net->label_len : 1; /* net may be NULL past a failed check */
    if (st == DLCL_OK)
        st = op_softmax_xent(net->ctx, net->act[net->output], net->labels, rows, net->classes, 1.0f / (float)rows,
                             op_b(NULL, 0), net->stats);
    if (st == DLCL_OK) st = read_stats(net, count, 0, loss_sum, correct);
    return st;
}

dlcl_status dlcl_net_logits(dlcl_net *net, const void *x, int count, float *logits)
{
    dlcl_status st = check_batch(net, x, count, "dlcl_net_logits");
    if (st == DLCL_OK && logits == NULL) st = dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_logits: logits is NULL");
    if (st == DLCL_OK) st = net_forward(net, x, count, 0, NULL);
    if (st == DLCL_OK) st = read_logits(net, 0, (size_t)count * (size_t)net->label_len, logits);
    return st;
}

dlcl_status dlcl_net_predict(dlcl_net *net, const void *x, int count, float *probs)
{
    dlcl_status st = dlcl_net_logits(net, x, count, probs);
    if (st != DLCL_OK) return st;
    count *= net->label_len;
    for (int i = 0; i < count; i++) { /* softmax on the host: count*classes is small */
        float *r = probs + (size_t)i * net->classes, m = r[0];
        double sum = 0;
        for (int c = 1; c < net->classes; c++) m = r[c] > m ? r[c] : m;
        for (int c = 0; c < net->classes; c++) sum += (r[c] = expf(r[c] - m));
        for (int c = 0; c < net->classes; c++) r[c] = (float)(r[c] / sum);
    }
    return DLCL_OK;
}

/* dlcl_net_profile: the training step with a wait after every phase, each phase's wall time
 * added to its row. */
typedef struct profile {
    dlcl_net *net;
    double t0;
    dlcl_layer_timing *layers;
    double *loss_ms, *step_ms;
} profile;

static dlcl_status profile_lap(void *user, net_phase phase, size_t layer)
{
    profile *p = user;
    cl_int err = clFinish(p->net->ctx->queue);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clFinish (profile)");
    double t = rt_now_ms(), dt = t - p->t0;
    p->t0 = t;
    switch (phase) {
    case NET_PHASE_FORWARD: p->layers[layer].forward_ms += dt; break;
    case NET_PHASE_BACKWARD: p->layers[layer].backward_ms += dt; break;
    case NET_PHASE_LOSS: *p->loss_ms += dt; break;
    default: *p->step_ms += dt; break;
    }
    return DLCL_OK;
}

dlcl_status dlcl_net_profile(dlcl_net *net, const void *x, const int32_t *y, int count, int reps,
                             dlcl_layer_timing *layers, double *loss_ms, double *step_ms)
{
    dlcl_status st = check_batch(net, x, count, "dlcl_net_profile");
    if (st == DLCL_OK) st = net_require_training(net, "dlcl_net_profile");
    if (st == DLCL_OK && (y == NULL || layers == NULL || loss_ms == NULL || step_ms == NULL || reps < 1))
        st = dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_profile: NULL output or reps < 1");
    if (st != DLCL_OK) return st;
    memset(layers, 0, net->n_layers * sizeof *layers);
    *loss_ms = *step_ms = 0;
    profile p = {net, 0, layers, loss_ms, step_ms};
    net_step_opts o = {.zero_lr = 1, .whole = 1, .local = 1, .after = profile_lap, .user = &p};
    uint64_t step = net->step; /* the timing steps do not count: a schedule or Adam's bias correction stays put */
    for (int r = 0; r < reps && st == DLCL_OK; r++) {
        cl_int err = clFinish(net->ctx->queue);
        if (err != CL_SUCCESS) return dlcl__cl_err(err, "clFinish (profile)");
        /* the upload is timed with the first layer, as before; start the clock here */
        p.t0 = rt_now_ms();
        st = net_train_step(net, x, y, count, &o, NULL, NULL);
        net->step = step;
    }
    for (size_t i = 0; i < net->n_layers; i++) {
        layers[i].forward_ms /= reps;
        layers[i].backward_ms /= reps;
    }
    *loss_ms /= reps;
    *step_ms /= reps;
    return st;
}
