/* Data-parallel training: the gradient region cut into buckets, each handed to the program's
 * dlcl_comm as soon as the backward pass has produced it, batch norm's sums over the ranks,
 * and the training state copied from rank 0.
 *
 * A bucket is a run of whole tensors of the gradient region. The region holds the tensors
 * with weight decay in layer order, then those without, so walking each part from its end
 * meets them in backward order; a bucket is final once the backward of the first layer (in
 * topological order) that writes any of its tensors has run. After each layer's backward the
 * newly final buckets are copied to the host without waiting (an event each), and every
 * bucket whose copy has arrived is started, in bucket order, so every rank starts them in the
 * same order. Before the optimizer step the rest are waited for and started, comm->wait
 * returns the sums, and they are written back. */
#include <stdlib.h>
#include <string.h>

#include "net.h"

#define STAGE_BYTES ((size_t)16 << 20) /* host staging for the state broadcast */

typedef struct net_bucket {
    size_t off, n; /* floats of the gradient region */
    int ready;     /* final once the backward of this layer has run */
    cl_event read; /* its copy to the host, NULL until enqueued */
    int started;
} net_bucket;

typedef struct net_exchange {
    dlcl_comm comm;
    net_bucket *b;
    int n_b;
    int next_read, next_start; /* buckets in order: the next to copy, the next to start */
    cl_event bwd_done;         /* marker after the backward pass (NULL while it is being enqueued) */
    float *host;               /* n_params floats: the gradients on their way through the sums */
    dlcl_exchange_stats stats;
} net_exchange;

int net_rank(const dlcl_net *net) { return net->xc ? net->xc->comm.rank : 0; }
int net_ranks(const dlcl_net *net) { return net->xc ? net->xc->comm.ranks : 1; }

/* The first layer (topological order) whose backward writes the gradient at floats
 * [off, off + n) of the region: tied tensors share their offset. */
static int first_writer(const dlcl_net *net, size_t off, size_t n)
{
    int first = (int)net->n_layers;
    for (size_t i = 0; i < net->n_layers && first == (int)net->n_layers; i++) {
        const layer *l = &net->layers[i];
        for (int p = 0; p < l->n_params; p++) {
            const layer_param *lp = &l->params[p];
            if (lp->region == LAYER_PARAM && lp->off < off + n && off < lp->off + lp->numel) first = (int)i;
        }
    }
    return first;
}

/* Tensor boundaries of the region, ascending (the starts of every parameter tensor, the end of
 * the decay part, the region's end): buckets are cut only there. */
static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static size_t *tensor_bounds(const dlcl_net *net, size_t *count)
{
    size_t n = 2;
    for (size_t i = 0; i < net->n_layers; i++) n += (size_t)net->layers[i].n_params;
    size_t *v = malloc(n * sizeof *v), k = 0;
    if (v == NULL) return NULL;
    for (size_t i = 0; i < net->n_layers; i++)
        for (int p = 0; p < net->layers[i].n_params; p++)
            if (net->layers[i].params[p].region == LAYER_PARAM && !net->layers[i].params[p].tie)
                v[k++] = net->layers[i].params[p].off;
    v[k++] = net->n_decay;
    v[k++] = net->n_params;
    qsort(v, k, sizeof *v, cmp_size);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || v[i] != v[u - 1]) v[u++] = v[i];
    *count = u;
    return v;
}

static int cmp_bucket(const void *a, const void *b)
{
    const net_bucket *x = a, *y = b;
    if (x->ready != y->ready) return x->ready > y->ready ? -1 : 1; /* backward order */
    return x->off > y->off ? -1 : x->off < y->off;
}

/* Buckets of about bucket_mb each, cut at tensor boundaries from the end of each part of the
 * region (decay, no_decay), then put in the order their gradients become final. */
static dlcl_status make_buckets(dlcl_net *net, net_exchange *x)
{
    size_t nb = 0, *bounds = tensor_bounds(net, &nb);
    if (bounds == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    x->b = calloc(nb, sizeof *x->b);
    if (x->b == NULL) {
        free(bounds);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    size_t cap = (size_t)(net->bucket_mb * 1048576.0 / sizeof(float));
    if (cap < 1) cap = 1;
    size_t end = nb - 1; /* bounds[end] closes the bucket being filled */
    for (size_t i = nb - 1; i-- > 0;) {
        int part_start = bounds[i] == 0 || bounds[i] == net->n_decay;
        if (bounds[end] - bounds[i] >= cap || part_start) {
            net_bucket *b = &x->b[x->n_b++];
            b->off = bounds[i];
            b->n = bounds[end] - bounds[i];
            b->ready = first_writer(net, b->off, b->n);
            end = i;
        }
    }
    free(bounds);
    qsort(x->b, (size_t)x->n_b, sizeof *x->b, cmp_bucket);
    x->stats.n_buckets = x->n_b;
    return DLCL_OK;
}

dlcl_status net_exchange_create(dlcl_net *net, const dlcl_comm *comm)
{
    if (comm->ranks < 1 || comm->rank < 0 || comm->rank >= comm->ranks || comm->start == NULL ||
        comm->wait == NULL || comm->sum == NULL || comm->broadcast == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_create_replica: rank %d of %d ranks, or a NULL call in "
                         "comm (start, wait, sum and broadcast are required)", comm->rank, comm->ranks);
    net_exchange *x = calloc(1, sizeof *x);
    if (x == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    net->xc = x;
    x->comm = *comm;
    x->host = malloc((net->n_params ? net->n_params : 1) * sizeof(float));
    if (x->host == NULL)
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory for the gradient exchange (%zu floats)",
                         net->n_params);
    return make_buckets(net, x);
}

static void release_events(net_exchange *x)
{
    for (int i = 0; i < x->n_b; i++) {
        if (x->b[i].read) clReleaseEvent(x->b[i].read);
        x->b[i].read = NULL;
        x->b[i].started = 0;
    }
    if (x->bwd_done) clReleaseEvent(x->bwd_done);
    x->bwd_done = NULL;
    x->next_read = x->next_start = 0;
}

void net_exchange_free(dlcl_net *net)
{
    net_exchange *x = net->xc;
    if (x == NULL) return;
    release_events(x);
    free(x->b);
    free(x->host);
    free(x);
    net->xc = NULL;
}

/* Timed comm->sum for batch norm. */
static dlcl_status timed_sum(void *user, double *v, size_t n)
{
    net_exchange *x = user;
    double t0 = rt_now_ms();
    dlcl_status st = x->comm.sum(x->comm.user, v, n);
    x->stats.sync_ms += rt_now_ms() - t0;
    return st;
}

void net_exchange_io(dlcl_net *net, layer_io *io)
{
    net_exchange *x = net->xc;
    if (x == NULL) return;
    if (x->comm.rank > 0) io->seed = dlcl__mix64(io->seed ^ dlcl__mix64(0x51ed270b27ull * (uint64_t)x->comm.rank));
    if (net->sync_batchnorm && x->comm.ranks > 1) {
        io->sum = timed_sum;
        io->sum_user = x;
    }
}

static dlcl_status enqueue_read(dlcl_net *net, cl_mem grads, net_bucket *b)
{
    cl_int err = clEnqueueReadBuffer(net->ctx->queue, grads, CL_FALSE, b->off * sizeof(float), b->n * sizeof(float),
                                     net->xc->host + b->off, 0, NULL, &b->read);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clEnqueueReadBuffer (gradient bucket)");
}

/* Whether the backward pass is still running on the device. */
static int backward_running(const net_exchange *x)
{
    cl_int status = CL_QUEUED;
    if (x->bwd_done == NULL) return 1;
    if (clGetEventInfo(x->bwd_done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL) != CL_SUCCESS)
        return 0;
    return status > CL_COMPLETE; /* CL_COMPLETE is 0, errors are negative */
}

static dlcl_status start_bucket(net_exchange *x, net_bucket *b)
{
    x->stats.buckets++;
    x->stats.bytes += (double)b->n * sizeof(float);
    x->stats.overlapped += (uint64_t)backward_running(x);
    b->started = 1;
    x->next_start++;
    return x->comm.start(x->comm.user, (int)(b - x->b), x->host + b->off, b->n);
}

/* Starts, in order, the buckets whose copy has arrived; wait = 1 waits for each copy. */
static dlcl_status start_arrived(net_exchange *x, int wait)
{
    dlcl_status st = DLCL_OK;
    while (st == DLCL_OK && x->next_start < x->next_read) {
        net_bucket *b = &x->b[x->next_start];
        cl_int status = CL_QUEUED, err;
        if (wait) {
            err = clWaitForEvents(1, &b->read);
            status = CL_COMPLETE;
        } else {
            err = clGetEventInfo(b->read, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL);
        }
        if (err != CL_SUCCESS) return dlcl__cl_err(err, "waiting for a gradient bucket's copy");
        if (status < 0) return dlcl__cl_err(status, "gradient bucket copy");
        if (status != CL_COMPLETE) break;
        st = start_bucket(x, b);
    }
    return st;
}

dlcl_status net_exchange_after_backward(dlcl_net *net, size_t layer)
{
    net_exchange *x = net->xc;
    if (x == NULL || x->comm.ranks < 2) return DLCL_OK;
    dlcl_status st = DLCL_OK;
    int queued = 0;
    while (st == DLCL_OK && x->next_read < x->n_b && x->b[x->next_read].ready >= (int)layer) {
        st = enqueue_read(net, net->grads, &x->b[x->next_read]);
        x->next_read += st == DLCL_OK;
        queued = 1;
    }
    if (st == DLCL_OK && queued) {
        cl_int err = clFlush(net->ctx->queue);
        if (err != CL_SUCCESS) return dlcl__cl_err(err, "clFlush (gradient buckets)");
    }
    return st == DLCL_OK ? start_arrived(x, 0) : st;
}

dlcl_status net_exchange_finish(dlcl_net *net, cl_mem grads)
{
    net_exchange *x = net->xc;
    if (x == NULL || x->comm.ranks < 2 || net->n_params == 0) return DLCL_OK;
    dlcl_status st = DLCL_OK;
    cl_int err = clEnqueueMarkerWithWaitList(net->ctx->queue, 0, NULL, &x->bwd_done);
    if (err != CL_SUCCESS) st = dlcl__cl_err(err, "clEnqueueMarker (end of the backward pass)");
    for (; st == DLCL_OK && x->next_read < x->n_b; x->next_read++) st = enqueue_read(net, grads, &x->b[x->next_read]);
    if (st == DLCL_OK && (err = clFlush(net->ctx->queue)) != CL_SUCCESS) st = dlcl__cl_err(err, "clFlush");
    if (st == DLCL_OK) st = start_arrived(x, 1);
    if (st == DLCL_OK) {
        double t0 = rt_now_ms();
        st = x->comm.wait(x->comm.user);
        x->stats.wait_ms += rt_now_ms() - t0;
    }
    /* the sums back into the region; the host copy lives until the next step's reads, which
     * the in-order queue runs after these writes */
    for (int i = 0; st == DLCL_OK && i < x->n_b; i++) {
        const net_bucket *b = &x->b[i];
        err = clEnqueueWriteBuffer(net->ctx->queue, grads, CL_FALSE, b->off * sizeof(float), b->n * sizeof(float),
                                   x->host + b->off, 0, NULL, NULL);
        if (err != CL_SUCCESS) st = dlcl__cl_err(err, "clEnqueueWriteBuffer (summed gradients)");
    }
    x->stats.steps += st == DLCL_OK;
    release_events(x);
    return st;
}

/* Rank 0's n bytes of region mem (at byte offset 0) to every rank, through the host. */
static dlcl_status broadcast_region(dlcl_net *net, cl_mem mem, size_t bytes, void *stage)
{
    net_exchange *x = net->xc;
    dlcl_status st = DLCL_OK;
    for (size_t at = 0; at < bytes && st == DLCL_OK; at += STAGE_BYTES) {
        size_t n = bytes - at < STAGE_BYTES ? bytes - at : STAGE_BYTES;
        cl_int err = CL_SUCCESS;
        if (x->comm.rank == 0) err = clEnqueueReadBuffer(net->ctx->queue, mem, CL_TRUE, at, n, stage, 0, NULL, NULL);
        if (err != CL_SUCCESS) return dlcl__cl_err(err, "clEnqueueReadBuffer (state broadcast)");
        st = x->comm.broadcast(x->comm.user, stage, n);
        if (st == DLCL_OK && x->comm.rank != 0) {
            err = clEnqueueWriteBuffer(net->ctx->queue, mem, CL_TRUE, at, n, stage, 0, NULL, NULL);
            if (err != CL_SUCCESS) st = dlcl__cl_err(err, "clEnqueueWriteBuffer (state broadcast)");
        }
    }
    return st;
}

static dlcl_status need_replica(const dlcl_net *net, const char *fn)
{
    if (net == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: net is NULL", fn);
    if (net->xc == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: the net is not a replica (dlcl_net_create_replica)", fn);
    return DLCL_OK;
}

dlcl_status dlcl_net_broadcast_state(dlcl_net *net)
{
    dlcl_status st = need_replica(net, "dlcl_net_broadcast_state");
    if (st != DLCL_OK) return st;
    net_exchange *x = net->xc;
    if (x->comm.ranks < 2) return DLCL_OK;
    void *stage = malloc(STAGE_BYTES);
    if (stage == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    const size_t state_floats = net->n_params * (size_t)net->n_state;
    st = broadcast_region(net, net->params, net->n_params * sizeof(float), stage);
    if (st == DLCL_OK) st = broadcast_region(net, net->buffers, net->n_buffers * sizeof(float), stage);
    if (st == DLCL_OK && state_floats) st = broadcast_region(net, net->state, state_floats * sizeof(float), stage);
    free(stage);
    if (st == DLCL_OK && net->n_counters)
        st = x->comm.broadcast(x->comm.user, net->counters, net->n_counters * sizeof *net->counters);
    int64_t pos[3] = {(int64_t)net->step, net->micro, net->epoch};
    if (st == DLCL_OK) st = x->comm.broadcast(x->comm.user, pos, sizeof pos);
    if (st != DLCL_OK) return st;
    net->step = (uint64_t)pos[0];
    net->micro = (int)pos[1];
    net->epoch = (int)pos[2];
    if (net->gacc && x->comm.rank != 0 && net->n_params) { /* a partial accumulation counts once: rank 0's */
        float zero = 0.0f;
        cl_int err = clEnqueueFillBuffer(net->ctx->queue, net->gacc, &zero, sizeof zero, 0,
                                         net->n_params * sizeof(float), 0, NULL, NULL);
        if (err != CL_SUCCESS) return dlcl__cl_err(err, "clEnqueueFillBuffer (accumulated gradients)");
    }
    return DLCL_OK;
}

dlcl_status dlcl_net_broadcast_buffers(dlcl_net *net)
{
    dlcl_status st = need_replica(net, "dlcl_net_broadcast_buffers");
    if (st != DLCL_OK || net->xc->comm.ranks < 2) return st;
    void *stage = malloc(STAGE_BYTES);
    if (stage == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    st = broadcast_region(net, net->buffers, net->n_buffers * sizeof(float), stage);
    free(stage);
    if (st == DLCL_OK && net->n_counters)
        st = net->xc->comm.broadcast(net->xc->comm.user, net->counters, net->n_counters * sizeof *net->counters);
    return st;
}

dlcl_status dlcl_net_gather_state(dlcl_net *net)
{
    dlcl_status st = need_replica(net, "dlcl_net_gather_state");
    if (st != DLCL_OK) return st;
    net_exchange *x = net->xc;
    if (x->comm.ranks < 2 || net->gacc == NULL || net->micro == 0 || net->n_params == 0) return DLCL_OK;
    /* the gradients summed so far: every rank's into rank 0's, the others' zeroed, so that
     * the step they finish counts each once whether or not it resumes from this checkpoint */
    size_t bytes = net->n_params * sizeof(float);
    cl_int err = clEnqueueReadBuffer(net->ctx->queue, net->gacc, CL_TRUE, 0, bytes, x->host, 0, NULL, NULL);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clEnqueueReadBuffer (accumulated gradients)");
    st = x->comm.start(x->comm.user, 0, x->host, net->n_params);
    if (st == DLCL_OK) st = x->comm.wait(x->comm.user);
    if (st != DLCL_OK) return st;
    if (x->comm.rank == 0) {
        err = clEnqueueWriteBuffer(net->ctx->queue, net->gacc, CL_TRUE, 0, bytes, x->host, 0, NULL, NULL);
    } else {
        float zero = 0.0f;
        err = clEnqueueFillBuffer(net->ctx->queue, net->gacc, &zero, sizeof zero, 0, bytes, 0, NULL, NULL);
    }
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "writing the accumulated gradients");
}

dlcl_status dlcl_net_exchange_stats(const dlcl_net *net, dlcl_exchange_stats *out)
{
    if (out == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_exchange_stats: out is NULL");
    dlcl_status st = need_replica(net, "dlcl_net_exchange_stats");
    if (st != DLCL_OK) return st;
    *out = net->xc->stats;
    return DLCL_OK;
}
