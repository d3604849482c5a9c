/* Batching with per-epoch shuffling, over any data source. Two batch slots: the caller holds
 * one while worker threads fill the other, each worker taking the next few samples of the
 * batch (src->grain), so decoding JPEGs runs on every worker at once. A sample's output
 * position and its augmentation depend only on (seed, epoch, its index), never on which worker
 * took it: the batches are the same with 1 worker or 8. A sharded loader (data-parallel ranks)
 * fills a slot with its rank's share of the batch only, the same samples that positions
 * lo..hi-1 of the whole batch would hold. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"

#define MAX_WORKERS 64

typedef enum slot_state { SLOT_IDLE, SLOT_FILLING, SLOT_READY, SLOT_STATE_COUNT } slot_state;

typedef struct slot {
    float *x;
    int32_t *y;
    slot_state state;
    int batch, count; /* batch index being filled, the samples of this rank's share of it */
    int global, first; /* the batch's samples over every rank; perm index of the share's first */
    int next, done;   /* samples handed to workers, samples finished */
    dlcl_status err;  /* the failed sample earliest in the batch: its status, position and message */
    int err_at;       /* (workers have their own thread-local dlcl_last_error: it is copied here) */
    char msg[512];
} slot;

typedef struct worker {
    data_loader *l;
    pthread_t thread;
    int started;
    data_buf buf;
    transform_scratch scratch;
} worker;

struct data_loader {
    const data_source *src;
    data_loader_params p;
    int n; /* samples used */
    size_t chw;
    int batches, epoch;
    int rank, ranks;           /* this epoch's share, set by begin_epoch while the workers are idle */
    int next_rank, next_ranks; /* data_loader_shard's, for the next epoch */
    int *perm;
    float *lut; /* c*256: the normalised value of each pixel value of each channel */
    slot slots[2];
    int cur;        /* slot held by the caller, -1 before the first batch of an epoch */
    int next_batch; /* next batch index to hand to the workers */
    int quit;
    worker *workers;
    int n_workers;
    pthread_mutex_t mu;
    pthread_cond_t cv;     /* work for the workers, or quit */
    pthread_cond_t done_cv; /* a slot became ready */
    int sync_ok;
};

int data_default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

/* Prepares samples [from, to) of the batch in slot s (no lock held). */
static void fill_samples(worker *wk, slot *s, int from, int to)
{
    data_loader *l = wk->l;
    const data_source *src = l->src;
    for (int k = from; k < to; k++) {
        int idx = l->perm[s->first + k];
        data_sample smp = {0};
        dlcl_status st = src->get(src, idx, &wk->buf, &smp);
        if (st == DLCL_OK) {
            uint64_t key = transform_key(l->p.seed, l->epoch, idx);
            st = transform_apply(&l->p.t, l->lut, &smp, key, &wk->scratch, s->x + (size_t)k * l->chw);
        }
        s->y[k] = smp.label;
        if (st != DLCL_OK) {
            pthread_mutex_lock(&l->mu);
            if (s->err == DLCL_OK || k < s->err_at) { /* the same error whatever the number of workers */
                s->err = st;
                s->err_at = k;
                snprintf(s->msg, sizeof s->msg, "%s", dlcl_last_error());
            }
            pthread_mutex_unlock(&l->mu);
        }
    }
}

/* The filling slot with work left, the earlier batch first; -1 if none (mutex held). */
static int slot_with_work(const data_loader *l)
{
    int best = -1;
    for (int i = 0; i < 2; i++) {
        const slot *s = &l->slots[i];
        if (s->state == SLOT_FILLING && s->next < s->count && (best < 0 || s->batch < l->slots[best].batch)) best = i;
    }
    return best;
}

static void *worker_main(void *arg)
{
    worker *wk = arg;
    data_loader *l = wk->l;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        int i;
        while (!l->quit && (i = slot_with_work(l)) < 0) pthread_cond_wait(&l->cv, &l->mu);
        if (l->quit) break;
        slot *s = &l->slots[i];
        int from = s->next, to = from + l->src->grain < s->count ? from + l->src->grain : s->count;
        s->next = to;
        pthread_mutex_unlock(&l->mu);
        fill_samples(wk, s, from, to);
        pthread_mutex_lock(&l->mu);
        s->done += to - from;
        if (s->done == s->count) {
            s->state = SLOT_READY;
            pthread_cond_broadcast(&l->done_cv);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Asks for this rank's share of the next batch in slot i (mutex held). Past the end, the slot
 * holds 0 samples of 0; an empty share is ready at once, holding 0 samples of the batch's. */
static void request(data_loader *l, int i)
{
    slot *s = &l->slots[i];
    s->err = DLCL_OK;
    s->msg[0] = '\0';
    s->next = s->done = 0;
    if (l->next_batch >= l->batches) {
        s->count = s->global = 0;
        s->state = SLOT_READY;
        return;
    }
    s->batch = l->next_batch++;
    int start = s->batch * l->p.batch, lo, hi;
    s->global = l->n - start < l->p.batch ? l->n - start : l->p.batch;
    data_share(s->global, l->rank, l->ranks, &lo, &hi);
    s->first = start + lo;
    s->count = hi - lo;
    s->state = s->count > 0 ? SLOT_FILLING : SLOT_READY;
    if (s->count > 0) pthread_cond_broadcast(&l->cv);
}

dlcl_status data_loader_create(const data_source *src, const data_loader_params *p, data_loader **out)
{
    if (out == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "data_loader_create: out is NULL");
    *out = NULL;
    if (src == NULL || p == NULL || src->n < 1 || p->batch < 1 || p->n < 0 || p->workers < 0 || p->t.c != src->c ||
        p->t.c < 1 || p->t.c > DATA_MAX_CHANNELS || p->t.h < 1 || p->t.w < 1)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "data_loader_create: empty source, batch < 1 or shape mismatch");
    for (int ch = 0; ch < p->t.c; ch++)
        if (!(p->t.std[ch] > 0.0f)) return dlcl__err(DLCL_ERR_INVALID_ARG, "data_loader_create: std <= 0");
    data_loader *l = calloc(1, sizeof *l);
    if (l == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    l->src = src;
    l->p = *p;
    if (l->p.t.scale == 0.0f) l->p.t.scale = 1.0f / 255.0f;
    l->n = p->n > 0 && p->n < src->n ? p->n : src->n;
    l->chw = (size_t)p->t.c * (size_t)p->t.h * (size_t)p->t.w;
    l->batches = p->drop_last ? l->n / p->batch : (l->n + p->batch - 1) / p->batch;
    l->n_workers = p->workers > 0 ? p->workers : data_default_workers();
    if (l->n_workers > MAX_WORKERS) l->n_workers = MAX_WORKERS;
    l->cur = -1;
    l->next_batch = l->batches; /* no epoch begun: next() reports the end */
    l->ranks = l->next_ranks = 1;
    size_t batch_floats;
    dlcl_status st = DLCL_OK;
    if (!dlcl__mul_ok((size_t)p->batch, l->chw, &batch_floats) ||
        !dlcl__mul_ok(batch_floats, sizeof(float), &batch_floats)) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "a batch of %d samples of %zu values is too large", p->batch, l->chw);
        free(l);
        return st;
    }
    if (pthread_mutex_init(&l->mu, NULL) != 0 || pthread_cond_init(&l->cv, NULL) != 0 ||
        pthread_cond_init(&l->done_cv, NULL) != 0) {
        free(l);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "cannot create the data loader's locks");
    }
    l->sync_ok = 1;
    l->lut = malloc((size_t)p->t.c * 256 * sizeof *l->lut);
    l->perm = malloc((size_t)l->n * sizeof *l->perm);
    l->workers = calloc((size_t)l->n_workers, sizeof *l->workers);
    for (int s = 0; s < 2; s++) {
        l->slots[s].x = malloc(batch_floats);
        l->slots[s].y = malloc((size_t)p->batch * sizeof(int32_t));
    }
    if (!l->lut || !l->perm || !l->workers || !l->slots[0].x || !l->slots[1].x || !l->slots[0].y || !l->slots[1].y) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory for batch buffers");
        goto fail;
    }
    for (int ch = 0; ch < p->t.c; ch++)
        for (int v = 0; v < 256; v++) l->lut[ch * 256 + v] = transform_norm(&l->p.t, ch, (float)v);
    for (int i = 0; i < l->n_workers; i++) {
        l->workers[i].l = l;
        if (pthread_create(&l->workers[i].thread, NULL, worker_main, &l->workers[i]) != 0) {
            st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "cannot start data loader thread %d of %d", i + 1, l->n_workers);
            goto fail;
        }
        l->workers[i].started = 1;
    }
    *out = l;
    return DLCL_OK;
fail:
    data_loader_free(l);
    return st;
}

dlcl_status data_loader_begin_epoch(data_loader *l, int epoch, int first_batch)
{
    if (l == NULL || epoch < 0 || first_batch < 0)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "data_loader_begin_epoch: bad arguments");
    pthread_mutex_lock(&l->mu);
    while (l->slots[0].state == SLOT_FILLING || l->slots[1].state == SLOT_FILLING)
        pthread_cond_wait(&l->done_cv, &l->mu); /* workers idle */
    int n = l->n;
    for (int i = 0; i < n; i++) l->perm[i] = i;
    if (l->p.shuffle) { /* Fisher-Yates from (seed, epoch) */
        uint64_t s = l->p.seed * 0x9e3779b97f4a7c15ull ^ ((uint64_t)epoch + 1) * 0xd1b54a32d192ed03ull;
        for (int i = n - 1; i > 0; i--) {
            int j = (int)data_bounded(&s, (uint32_t)i + 1);
            int t = l->perm[i];
            l->perm[i] = l->perm[j];
            l->perm[j] = t;
        }
    }
    l->epoch = epoch;
    l->rank = l->next_rank;
    l->ranks = l->next_ranks;
    l->next_batch = first_batch < l->batches ? first_batch : l->batches;
    l->cur = -1;
    l->slots[0].state = l->slots[1].state = SLOT_IDLE;
    request(l, 0);
    pthread_mutex_unlock(&l->mu);
    return DLCL_OK;
}

dlcl_status data_shard_check(const char *who, int rank, int ranks)
{
    if (ranks < 1) return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: ranks = %d; there must be at least one", who, ranks);
    if (rank < 0 || rank >= ranks)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: rank %d is not one of the ranks 0 .. %d", who, rank, ranks - 1);
    return DLCL_OK;
}

dlcl_status data_loader_shard(data_loader *l, int rank, int ranks)
{
    if (l == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "data_loader_shard: NULL loader");
    dlcl_status st = data_shard_check("data_loader_shard", rank, ranks);
    if (st != DLCL_OK) return st;
    l->next_rank = rank; /* only the caller's thread reads these (in begin_epoch) */
    l->next_ranks = ranks;
    return DLCL_OK;
}

dlcl_status data_loader_next(data_loader *l, const float **x, const int32_t **y, int *count)
{
    if (l != NULL && l->ranks > 1)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "data_loader_next: the loader is sharded over %d ranks (use "
                         "data_loader_next_shard)", l->ranks);
    int global;
    return data_loader_next_shard(l, x, y, count, &global);
}

dlcl_status data_loader_next_shard(data_loader *l, const float **x, const int32_t **y, int *count, int *global)
{
    if (l == NULL || x == NULL || y == NULL || count == NULL || global == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "data_loader_next_shard: NULL argument");
    *count = *global = 0;
    *x = NULL;
    *y = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->cur < 0 && l->slots[0].state == SLOT_IDLE) { /* no epoch begun */
        pthread_mutex_unlock(&l->mu);
        return DLCL_OK;
    }
    int i = l->cur < 0 ? 0 : 1 - l->cur;
    slot *s = &l->slots[i];
    while (s->state != SLOT_READY) pthread_cond_wait(&l->done_cv, &l->mu);
    if (l->cur >= 0 || s->global > 0) {
        int other = 1 - i; /* the caller is done with it: prefetch the batch after this one */
        if (l->slots[other].state != SLOT_FILLING) request(l, other);
    }
    l->cur = i;
    dlcl_status st = s->err;
    if (st != DLCL_OK) {
        char msg[sizeof s->msg];
        memcpy(msg, s->msg, sizeof msg);
        pthread_mutex_unlock(&l->mu);
        return dlcl__err(st, "%s", msg);
    }
    *x = s->x;
    *y = s->y;
    *count = s->count;
    *global = s->global;
    pthread_mutex_unlock(&l->mu);
    return DLCL_OK;
}

int data_loader_batches(const data_loader *l) { return l ? l->batches : 0; }

int data_loader_samples(const data_loader *l) { return l ? l->n : 0; }

void data_loader_free(data_loader *l)
{
    if (l == NULL) return;
    if (l->sync_ok) {
        pthread_mutex_lock(&l->mu);
        l->quit = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
    for (int i = 0; l->workers && i < l->n_workers; i++) {
        if (l->workers[i].started) pthread_join(l->workers[i].thread, NULL);
        free(l->workers[i].buf.px);
        transform_scratch_free(&l->workers[i].scratch);
    }
    if (l->sync_ok) {
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
        pthread_cond_destroy(&l->done_cv);
    }
    free(l->workers);
    free(l->perm);
    free(l->lut);
    for (int s = 0; s < 2; s++) {
        free(l->slots[s].x);
        free(l->slots[s].y);
    }
    free(l);
}
