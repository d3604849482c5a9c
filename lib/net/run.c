/* Forward, backward and the SGD step over the whole network; one host read per batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net.h"

static dlcl_status check_batch(const dlcl_net *net, const void *x, int count, const char *fn)
{
    if (net == NULL || x == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: net and x must not be NULL", fn);
    if (count < 1 || count > net->batch)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: count %d not in 1..%d (the net's batch size)", fn, count, net->batch);
    return DLCL_OK;
}

static layer_io make_io(const dlcl_net *net, size_t i, int count, int training)
{
    const layer *l = &net->layers[i];
    layer_io io = {0};
    io.ctx = net->ctx;
    io.batch = net->batch;
    io.count = count;
    io.training = training;
    io.x = l->input_index < 0 ? net->in : net->act[l->input_index];
    io.y = net->act[i];
    io.dx = l->input_index < 0 ? op_b(NULL, 0) : net->dact[l->input_index];
    io.dy = net->dact[i];
    io.params = net->params;
    io.grads = net->grads;
    io.ws = net->ws;
    io.seed = dlcl__mix64(net->seed ^ dlcl__mix64(net->step * 0x100000001b3ull + i + 1));
    return io;
}

dlcl_status net_forward(dlcl_net *net, const float *x, int count, int training)
{
    size_t n = (size_t)count * layer_shape_numel(net->input);
    cl_int err = clEnqueueWriteBuffer(net->ctx->queue, net->in.mem, CL_FALSE, 0, n * sizeof(float), x, 0, NULL, NULL);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clEnqueueWriteBuffer (network input)");
    for (size_t i = 0; i < net->n_layers; i++) {
        layer *l = &net->layers[i];
        layer_io io = make_io(net, i, count, training);
        dlcl_status st = l->type->forward(l, &io);
        if (st != DLCL_OK)
            return dlcl__err_prefix(st, "forward of layer [%s] (%d x %dx%dx%d -> %dx%dx%d)", l->name, count, l->in.c,
                                    l->in.h, l->in.w, l->out.c, l->out.h, l->out.w);
    }
    return DLCL_OK;
}

static dlcl_status upload_labels(dlcl_net *net, const int32_t *y, int count)
{
    for (int i = 0; i < count; i++)
        if (y[i] < 0 || y[i] >= net->classes)
            return dlcl__err(DLCL_ERR_INVALID_ARG, "label %d of sample %d is outside 0..%d", (int)y[i], i, net->classes - 1);
    cl_int err = clEnqueueWriteBuffer(net->ctx->queue, net->labels, CL_FALSE, 0, (size_t)count * sizeof(int32_t), y, 0,
                                      NULL, NULL);
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
        if (net->inference) { /* outputs share buffers: run the layer again and flag its output before a later one
                                 overwrites it (the in-order queue keeps the two in order) */
            layer_io io = make_io(net, i, count, 0);
            st = l->type->forward(l, &io);
        }
        if (st == DLCL_OK)
            st = op_flag_nonfinite(net->ctx, net->act[i], (size_t)count * layer_shape_numel(l->out), net->nf_flags,
                                   (int)(1 + i));
        if (st == DLCL_OK && grads && l->param_count > 0)
            st = op_flag_nonfinite(net->ctx, op_b(net->grads, l->param_off), l->param_count, net->nf_flags,
                                   (int)(1 + n + i));
    }
    if (st != DLCL_OK) return st;
    err = clEnqueueReadBuffer(net->ctx->queue, net->nf_flags, CL_TRUE, 0, net->nf_bytes, net->nf_host, 0, NULL, NULL);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clEnqueueReadBuffer (numerics flags)");
}

/* Names the first non-finite place the last scan found (DLCL_ERR_NUMERIC), or DLCL_OK if none.
 * `what` starts the message, `after` ends it. Gradients are searched in backward order. */
static dlcl_status nonfinite_error(const dlcl_net *net, const char *what, const char *after)
{
    size_t n = net->n_layers;
    const int *f = net->nf_host;
    if (f[0])
        return dlcl__err(DLCL_ERR_NUMERIC, "%s: the input batch holds NaN or Inf (check the data and [data] scale)%s", what,
                         after);
    for (size_t i = 0; i < n; i++)
        if (f[1 + i]) {
            const layer *l = &net->layers[i];
            return dlcl__err(DLCL_ERR_NUMERIC, "%s: the output of layer [%s] (line %d) is the first that is not finite%s",
                             what, l->name, l->line, after);
        }
    for (size_t i = n; i-- > 0;)
        if (f[1 + n + i]) {
            const layer *l = &net->layers[i];
            return dlcl__err(DLCL_ERR_NUMERIC,
                             "%s: every output is finite, but the gradient of layer [%s] (line %d) parameters is not%s",
                             what, l->name, l->line, after);
        }
    return DLCL_OK;
}

/* check_numerics = 1: stop before the batch changes anything if an output or gradient is not finite. */
static dlcl_status check_numerics(dlcl_net *net, int count, int grads)
{
    if (!net->check_numerics) return DLCL_OK;
    dlcl_status st = scan_nonfinite(net, count, grads);
    if (st != DLCL_OK) return st;
    char what[64];
    snprintf(what, sizeof what, "check_numerics at step %llu", (unsigned long long)net->step);
    return nonfinite_error(net, what, "; the parameters were not updated");
}

/* Runs the loss (with gradient into dact[last] when training) and reads the per-sample stats. */
static dlcl_status loss_and_stats(dlcl_net *net, int count, int training, double *loss_sum, int *correct)
{
    size_t last = net->n_layers - 1;
    op_buf grad = training ? net->dact[last] : op_b(NULL, 0);
    dlcl_status st = op_softmax_xent(net->ctx, net->act[last], net->labels, count, net->classes, 1.0f / (float)count,
                                     grad, net->stats);
    if (st != DLCL_OK) return st;
    if (training) {
        for (size_t i = net->n_layers; i-- > 0;) {
            layer *l = &net->layers[i];
            layer_io io = make_io(net, i, count, 1);
            st = l->type->backward(l, &io);
            if (st != DLCL_OK)
                return dlcl__err_prefix(st, "backward of layer [%s] (%d x %dx%dx%d -> %dx%dx%d)", l->name, count,
                                        l->in.c, l->in.h, l->in.w, l->out.c, l->out.h, l->out.w);
        }
        if ((st = check_numerics(net, count, 1)) != DLCL_OK) return st;
        const net_optim *o = &net->optim;
        st = op_sgd_step(net->ctx, op_b(net->params, 0), op_b(net->grads, 0), op_b(net->velocity, 0), net->n_params,
                         net->lr, (float)o->momentum, (float)o->weight_decay, o->nesterov);
        if (st != DLCL_OK) return st;
        net->step++;
    }
    cl_int err = clEnqueueReadBuffer(net->ctx->queue, net->stats.mem, CL_TRUE, 0, 2 * (size_t)count * sizeof(float),
                                     net->stats_host, 0, NULL, NULL);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clEnqueueReadBuffer (loss)");
    double sum = 0;
    int hits = 0;
    for (int i = 0; i < count; i++) {
        sum += net->stats_host[2 * i];
        hits += net->stats_host[2 * i + 1] > 0.5f;
    }
    if (!isfinite(sum)) {
        /* find where it started: this batch's outputs are still in act[] */
        char what[96];
        snprintf(what, sizeof what, "the loss is not finite (%g) at step %llu", sum,
                 (unsigned long long)(net->step - (training ? 1 : 0)));
        const char *after = training ? "; the parameters were updated with it: reload the last checkpoint "
                                       "(lower learning_rate?)"
                                     : "";
        if ((st = scan_nonfinite(net, count, 0)) != DLCL_OK) return st;
        if ((st = nonfinite_error(net, what, after)) != DLCL_OK) return st;
        return dlcl__err(DLCL_ERR_NUMERIC, "%s, though every layer's output is finite%s", what, after);
    }
    if (loss_sum) *loss_sum = sum;
    if (correct) *correct = hits;
    return DLCL_OK;
}

dlcl_status dlcl_net_train_batch(dlcl_net *net, const float *x, const int32_t *y, int count, double *loss_sum,
                                 int *correct)
{
    dlcl_status st = check_batch(net, x, count, "dlcl_net_train_batch");
    if (st == DLCL_OK) st = net_require_training(net, "dlcl_net_train_batch");
    if (st == DLCL_OK && y == NULL) st = dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_train_batch: y is NULL");
    if (st == DLCL_OK) st = upload_labels(net, y, count);
    if (st == DLCL_OK) st = net_forward(net, x, count, 1);
    if (st == DLCL_OK) st = check_numerics(net, count, 0);
    if (st == DLCL_OK) st = loss_and_stats(net, count, 1, loss_sum, correct);
    return st;
}

static dlcl_status read_logits(dlcl_net *net, int count, float *dst)
{
    cl_int err = clEnqueueReadBuffer(net->ctx->queue, net->act[net->n_layers - 1].mem, CL_TRUE, 0,
                                     (size_t)count * (size_t)net->classes * sizeof(float), dst, 0, NULL, NULL);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clEnqueueReadBuffer (logits)");
}

static void argmax_rows(const float *logits, int count, int classes, int32_t *pred)
{
    for (int i = 0; i < count; i++) {
        const float *r = logits + (size_t)i * classes;
        int best = 0;
        for (int c = 1; c < classes; c++)
            if (r[c] > r[best]) best = c;
        pred[i] = best;
    }
}

dlcl_status dlcl_net_eval_batch(dlcl_net *net, const float *x, const int32_t *y, int count, double *loss_sum,
                                int *correct, int32_t *pred)
{
    dlcl_status st = check_batch(net, x, count, "dlcl_net_eval_batch");
    if (st == DLCL_OK && y == NULL) st = dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_eval_batch: y is NULL");
    if (st == DLCL_OK) st = upload_labels(net, y, count);
    if (st == DLCL_OK) st = net_forward(net, x, count, 0);
    if (st == DLCL_OK && pred != NULL) {
        st = read_logits(net, count, net->host_scratch);
        if (st == DLCL_OK) argmax_rows(net->host_scratch, count, net->classes, pred);
    }
    if (st == DLCL_OK) st = loss_and_stats(net, count, 0, loss_sum, correct);
    return st;
}

dlcl_status dlcl_net_logits(dlcl_net *net, const float *x, int count, float *logits)
{
    dlcl_status st = check_batch(net, x, count, "dlcl_net_logits");
    if (st == DLCL_OK && logits == NULL) st = dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_logits: logits is NULL");
    if (st == DLCL_OK) st = net_forward(net, x, count, 0);
    if (st == DLCL_OK) st = read_logits(net, count, logits);
    return st;
}

dlcl_status dlcl_net_predict(dlcl_net *net, const float *x, int count, float *probs)
{
    dlcl_status st = dlcl_net_logits(net, x, count, probs);
    if (st != DLCL_OK) return st;
    for (int i = 0; i < count; i++) { /* softmax on the host: count*classes is small */
        float *r = probs + (size_t)i * net->classes, m = r[0];
        double sum = 0;
        for (int c = 1; c < net->classes; c++) m = r[c] > m ? r[c] : m;
        for (int c = 0; c < net->classes; c++) sum += (r[c] = expf(r[c] - m));
        for (int c = 0; c < net->classes; c++) r[c] = (float)(r[c] / sum);
    }
    return DLCL_OK;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Waits for the queue and returns the time since *t0 (then resets it). */
static dlcl_status lap(dlcl_net *net, double *t0, double *acc)
{
    cl_int err = clFinish(net->ctx->queue);
    double t = now_ms();
    *acc += t - *t0;
    *t0 = t;
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clFinish (profile)");
}

dlcl_status dlcl_net_profile(dlcl_net *net, const float *x, const int32_t *y, int count, int reps,
                             dlcl_layer_timing *layers, double *loss_ms, double *step_ms)
{
    dlcl_status st = check_batch(net, x, count, "dlcl_net_profile");
    if (st == DLCL_OK) st = net_require_training(net, "dlcl_net_profile");
    if (st == DLCL_OK && (y == NULL || layers == NULL || loss_ms == NULL || step_ms == NULL || reps < 1))
        st = dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_profile: NULL output or reps < 1");
    if (st == DLCL_OK) st = upload_labels(net, y, count);
    if (st != DLCL_OK) return st;
    memset(layers, 0, net->n_layers * sizeof *layers);
    *loss_ms = *step_ms = 0;
    size_t n = (size_t)count * layer_shape_numel(net->input);
    size_t last = net->n_layers - 1;
    for (int r = 0; r < reps && st == DLCL_OK; r++) {
        cl_int err = clEnqueueWriteBuffer(net->ctx->queue, net->in.mem, CL_TRUE, 0, n * sizeof(float), x, 0, NULL, NULL);
        if (err != CL_SUCCESS) return dlcl__cl_err(err, "clEnqueueWriteBuffer (network input)");
        double t0 = now_ms();
        for (size_t i = 0; i < net->n_layers && st == DLCL_OK; i++) {
            layer_io io = make_io(net, i, count, 1);
            st = net->layers[i].type->forward(&net->layers[i], &io);
            if (st == DLCL_OK) st = lap(net, &t0, &layers[i].forward_ms);
        }
        if (st == DLCL_OK)
            st = op_softmax_xent(net->ctx, net->act[last], net->labels, count, net->classes, 1.0f / (float)count,
                                 net->dact[last], net->stats);
        if (st == DLCL_OK) st = lap(net, &t0, loss_ms);
        for (size_t i = net->n_layers; i-- > 0 && st == DLCL_OK;) {
            layer_io io = make_io(net, i, count, 1);
            st = net->layers[i].type->backward(&net->layers[i], &io);
            if (st == DLCL_OK) st = lap(net, &t0, &layers[i].backward_ms);
        }
        if (st == DLCL_OK) /* learning rate 0: the timing run leaves the weights as they were */
            st = op_sgd_step(net->ctx, op_b(net->params, 0), op_b(net->grads, 0), op_b(net->velocity, 0),
                             net->n_params, 0.0f, 0.0f, 0.0f, 0);
        if (st == DLCL_OK) st = lap(net, &t0, step_ms);
    }
    for (size_t i = 0; i < net->n_layers; i++) {
        layers[i].forward_ms /= reps;
        layers[i].backward_ms /= reps;
    }
    *loss_ms /= reps;
    *step_ms /= reps;
    return st;
}
