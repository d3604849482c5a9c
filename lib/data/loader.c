/* Batching with normalisation and per-epoch shuffling. A worker thread fills one of two
 * batch buffers while the caller holds the other, so the device never waits for the host
 * to gather and normalise a batch. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

struct data_loader {
    const data_set *ds;
    data_loader_params p;
    size_t chw;
    int batches;
    int *perm;
    float *x[2];
    int32_t *y[2];
    int count[2], ready[2], pending[2], fill_batch[2];
    int cur;        /* slot held by the caller, -1 before the first batch of an epoch */
    int next_batch; /* next batch index to hand to the worker */
    int quit;
    float lut[256]; /* normalised value of each pixel value */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int thread_started;
};

/* Uniform integer in [0, bound) without modulo bias (Lemire's method with rejection). */
static uint32_t bounded(uint64_t *s, uint32_t bound)
{
    uint64_t m = (uint64_t)(uint32_t)(dlcl__splitmix64(s) >> 32) * bound;
    uint32_t low = (uint32_t)m;
    if (low < bound) {
        uint32_t t = -bound % bound;
        while (low < t) {
            m = (uint64_t)(uint32_t)(dlcl__splitmix64(s) >> 32) * bound;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

static void fill(data_loader *l, int slot, int b)
{
    const data_set *ds = l->ds;
    int start = b * l->p.batch, n = ds->n - start < l->p.batch ? ds->n - start : l->p.batch;
    float *x = l->x[slot];
    for (int i = 0; i < n; i++) {
        int s = l->perm[start + i];
        const uint8_t *src = ds->pixels + (size_t)s * l->chw;
        float *dst = x + (size_t)i * l->chw;
        for (size_t j = 0; j < l->chw; j++) dst[j] = l->lut[src[j]];
        l->y[slot][i] = ds->labels[s];
    }
    l->count[slot] = n;
}

static void *worker(void *arg)
{
    data_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->quit && !l->pending[0] && !l->pending[1]) pthread_cond_wait(&l->cv, &l->mu);
        if (l->quit) break;
        int slot = l->pending[0] ? 0 : 1, b = l->fill_batch[slot];
        pthread_mutex_unlock(&l->mu);
        fill(l, slot, b);
        pthread_mutex_lock(&l->mu);
        l->pending[slot] = 0;
        l->ready[slot] = 1;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Asks for the next batch in slot (mutex held). Past the end, the slot holds 0 samples. */
static void request(data_loader *l, int slot)
{
    l->ready[slot] = 0;
    if (l->next_batch >= l->batches) {
        l->count[slot] = 0;
        l->ready[slot] = 1;
        return;
    }
    l->fill_batch[slot] = l->next_batch++;
    l->pending[slot] = 1;
    pthread_cond_broadcast(&l->cv);
}

dlcl_status data_loader_create(const data_set *ds, const data_loader_params *p, data_loader **out)
{
    if (out == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "data_loader_create: out is NULL");
    *out = NULL;
    if (ds == NULL || p == NULL || ds->n < 1 || p->batch < 1 || !(p->std > 0.0f))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "data_loader_create: empty data set, batch < 1 or std <= 0");
    data_loader *l = calloc(1, sizeof *l);
    if (l == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    l->ds = ds;
    l->p = *p;
    if (l->p.scale == 0.0f) l->p.scale = 1.0f / 255.0f;
    l->chw = (size_t)ds->c * ds->h * ds->w;
    l->batches = p->drop_last ? ds->n / p->batch : (ds->n + p->batch - 1) / p->batch;
    for (int v = 0; v < 256; v++) l->lut[v] = ((float)v * l->p.scale - l->p.mean) / l->p.std;
    l->perm = malloc((size_t)ds->n * sizeof *l->perm);
    for (int s = 0; s < 2; s++) {
        l->x[s] = malloc((size_t)p->batch * l->chw * sizeof(float));
        l->y[s] = malloc((size_t)p->batch * sizeof(int32_t));
    }
    l->cur = -1;
    l->next_batch = l->batches; /* no epoch begun: next() reports the end */
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (!l->perm || !l->x[0] || !l->x[1] || !l->y[0] || !l->y[1]) {
        data_loader_free(l);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory for batch buffers");
    }
    if (pthread_create(&l->thread, NULL, worker, l) != 0) {
        data_loader_free(l);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "cannot start the data loader thread");
    }
    l->thread_started = 1;
    *out = l;
    return DLCL_OK;
}

dlcl_status data_loader_begin_epoch(data_loader *l, int epoch, int first_batch)
{
    if (l == NULL || epoch < 0 || first_batch < 0)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "data_loader_begin_epoch: bad arguments");
    pthread_mutex_lock(&l->mu);
    while (l->pending[0] || l->pending[1]) pthread_cond_wait(&l->cv, &l->mu); /* worker idle */
    int n = l->ds->n;
    for (int i = 0; i < n; i++) l->perm[i] = i;
    if (l->p.shuffle) { /* Fisher-Yates from (seed, epoch) */
        uint64_t s = l->p.seed * 0x9e3779b97f4a7c15ull ^ ((uint64_t)epoch + 1) * 0xd1b54a32d192ed03ull;
        for (int i = n - 1; i > 0; i--) {
            int j = (int)bounded(&s, (uint32_t)i + 1);
            int t = l->perm[i];
            l->perm[i] = l->perm[j];
            l->perm[j] = t;
        }
    }
    l->next_batch = first_batch < l->batches ? first_batch : l->batches;
    l->cur = -1;
    l->ready[0] = l->ready[1] = 0;
    request(l, 0);
    pthread_mutex_unlock(&l->mu);
    return DLCL_OK;
}

dlcl_status data_loader_next(data_loader *l, const float **x, const int32_t **y, int *count)
{
    if (l == NULL || x == NULL || y == NULL || count == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "data_loader_next: NULL argument");
    pthread_mutex_lock(&l->mu);
    if (l->cur < 0 && !l->ready[0] && !l->pending[0]) { /* no epoch begun */
        pthread_mutex_unlock(&l->mu);
        *count = 0;
        *x = NULL;
        *y = NULL;
        return DLCL_OK;
    }
    int s = l->cur < 0 ? 0 : 1 - l->cur;
    while (!l->ready[s]) pthread_cond_wait(&l->cv, &l->mu);
    if (l->cur >= 0 || l->count[s] > 0) {
        int other = 1 - s; /* the caller is done with it: prefetch the batch after this one */
        if (!l->pending[other]) request(l, other);
    }
    l->cur = s;
    *x = l->x[s];
    *y = l->y[s];
    *count = l->count[s];
    pthread_mutex_unlock(&l->mu);
    return DLCL_OK;
}

int data_loader_batches(const data_loader *l) { return l ? l->batches : 0; }

void data_loader_free(data_loader *l)
{
    if (l == NULL) return;
    if (l->thread_started) {
        pthread_mutex_lock(&l->mu);
        l->quit = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->perm);
    for (int s = 0; s < 2; s++) {
        free(l->x[s]);
        free(l->y[s]);
    }
    free(l);
}
