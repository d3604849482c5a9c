/* Data-parallel replicas (lib/net/exchange.c) without MPI: N threads, each with its own net
 * and context, talk through a dlcl_comm made of barriers and shared memory. Trained on the
 * same batches, N replicas end with the weights of one net trained on whole batches, up to
 * float summation order: with an uneven split, a rank without samples, batch norm's
 * statistics summed over the ranks (sync_batchnorm), gradient accumulation, and a state
 * broadcast from rank 0. The tools' MPI path is tested end to end in test/mpi_train.py. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/net/net.h"
#include "test.h"

#define MAX_RANKS 4
#define MAX_BUCKETS 256

/* ---------------------------------------------------------------- a comm of threads */

typedef struct group {
    int ranks;
    pthread_barrier_t bar;
    float *bucket[MAX_RANKS][MAX_BUCKETS];
    size_t bucket_n[MAX_RANKS][MAX_BUCKETS];
    int started[MAX_RANKS];
    double *dv[MAX_RANKS];
    void *bc[MAX_RANKS];
    int order_ok; /* 0 once two ranks started different sizes under one bucket number */
} group;

typedef struct member {
    group *g;
    int rank;
} member;

static dlcl_status g_start(void *user, int bucket, float *data, size_t n)
{
    member *m = user;
    if (bucket < 0 || bucket >= MAX_BUCKETS) return dlcl__err(DLCL_ERR_INVALID_ARG, "bucket %d", bucket);
    m->g->bucket[m->rank][bucket] = data;
    m->g->bucket_n[m->rank][bucket] = n;
    m->g->started[m->rank] = bucket + 1 > m->g->started[m->rank] ? bucket + 1 : m->g->started[m->rank];
    return DLCL_OK;
}

/* Rank 0 adds the ranks' buffers in rank order and copies the sums to every rank. */
static dlcl_status g_wait(void *user)
{
    member *m = user;
    group *g = m->g;
    pthread_barrier_wait(&g->bar);
    if (m->rank == 0)
        for (int b = 0; b < g->started[0]; b++) {
            size_t n = g->bucket_n[0][b];
            for (int r = 1; r < g->ranks; r++)
                if (g->started[r] != g->started[0] || g->bucket_n[r][b] != n) g->order_ok = 0;
            if (!g->order_ok) break;
            for (size_t i = 0; i < n; i++) {
                float s = g->bucket[0][b][i];
                for (int r = 1; r < g->ranks; r++) s += g->bucket[r][b][i];
                for (int r = 0; r < g->ranks; r++) g->bucket[r][b][i] = s;
            }
        }
    pthread_barrier_wait(&g->bar);
    g->started[m->rank] = 0;
    return g->order_ok ? DLCL_OK : dlcl__err(DLCL_ERR_INVALID_ARG, "ranks started different buckets");
}

static dlcl_status g_sum(void *user, double *v, size_t n)
{
    member *m = user;
    group *g = m->g;
    g->dv[m->rank] = v;
    pthread_barrier_wait(&g->bar);
    if (m->rank == 0)
        for (size_t i = 0; i < n; i++) {
            double s = 0;
            for (int r = 0; r < g->ranks; r++) s += g->dv[r][i];
            for (int r = 0; r < g->ranks; r++) g->dv[r][i] = s;
        }
    pthread_barrier_wait(&g->bar);
    return DLCL_OK;
}

static dlcl_status g_broadcast(void *user, void *data, size_t bytes)
{
    member *m = user;
    group *g = m->g;
    g->bc[m->rank] = data;
    pthread_barrier_wait(&g->bar);
    if (m->rank != 0) memcpy(data, g->bc[0], bytes);
    pthread_barrier_wait(&g->bar);
    return DLCL_OK;
}

/* ---------------------------------------------------------------- training */

typedef struct job {
    const char *config;
    const char *const *sets;
    size_t n_sets;
    int steps, batch, samples, in_numel;
    const float *x; /* samples * in_numel */
    const int32_t *y;
} job;

typedef struct rank_run {
    const job *j;
    member m;
    dlcl_net *net;
    dlcl_status st;
    char err[512];
    float *params; /* n_params floats after training */
    size_t n_params;
    dlcl_exchange_stats stats;
} rank_run;

/* Global batch s of the job: samples [s * batch, ...) wrapping around the data, the last
 * step of `samples` may be short (the loaders' last batch of an epoch). */
static int batch_at(const job *j, int s, int *first)
{
    *first = (s * j->batch) % j->samples;
    int left = j->samples - *first;
    return left < j->batch ? left : j->batch;
}

/* The parameters, then the buffers (batch norm's running statistics). */
static dlcl_status read_params(dlcl_net *net, float **out, size_t *n)
{
    *n = net->n_params + net->n_buffers;
    *out = malloc((*n ? *n : 1) * sizeof **out);
    if (*out == NULL) return DLCL_ERR_OUT_OF_MEMORY;
    cl_int err = clEnqueueReadBuffer(net->ctx->queue, net->params, CL_TRUE, 0, net->n_params * sizeof **out, *out, 0,
                                     NULL, NULL);
    if (err == CL_SUCCESS && net->n_buffers)
        err = clEnqueueReadBuffer(net->ctx->queue, net->buffers, CL_TRUE, 0, net->n_buffers * sizeof **out,
                                  *out + net->n_params, 0, NULL, NULL);
    return err == CL_SUCCESS ? DLCL_OK : DLCL_ERR_OPENCL;
}

static void *rank_main(void *arg)
{
    rank_run *r = arg;
    const job *j = r->j;
    group *g = r->m.g;
    dlcl_comm comm = {r->m.rank, g->ranks, &r->m, g_start, g_wait, g_sum, g_broadcast};
    dlcl_status st = dlcl_net_create_replica(j->config, j->sets, j->n_sets, NULL, &comm, &r->net);
    /* a different initialisation on the other ranks: the broadcast must replace it */
    if (st == DLCL_OK && r->m.rank > 0) {
        r->net->seed += 99;
        st = net_init_params(r->net);
        r->net->seed -= 99;
    }
    if (st == DLCL_OK) st = dlcl_net_broadcast_state(r->net);
    for (int s = 0; s < j->steps && st == DLCL_OK; s++) {
        int first, G = batch_at(j, s, &first);
        int lo = G * r->m.rank / g->ranks, hi = G * (r->m.rank + 1) / g->ranks;
        st = dlcl_net_train_shard(r->net, j->x + (size_t)(first + lo) * j->in_numel, j->y + first + lo, hi - lo, G,
                                  NULL, NULL);
    }
    if (st == DLCL_OK) st = read_params(r->net, &r->params, &r->n_params);
    if (st == DLCL_OK) st = dlcl_net_exchange_stats(r->net, &r->stats);
    r->st = st;
    if (st != DLCL_OK) snprintf(r->err, sizeof r->err, "%s", dlcl_last_error());
    return NULL;
}

/* One net on whole batches: the reference. */
static dlcl_status train_single(const job *j, float **params, size_t *n)
{
    dlcl_net *net = NULL;
    dlcl_status st = dlcl_net_create(j->config, j->sets, j->n_sets, NULL, &net);
    for (int s = 0; s < j->steps && st == DLCL_OK; s++) {
        int first, G = batch_at(j, s, &first);
        st = dlcl_net_train_batch(net, j->x + (size_t)first * j->in_numel, j->y + first, G, NULL, NULL);
    }
    if (st == DLCL_OK) st = read_params(net, params, n);
    dlcl_net_free(net);
    return st;
}

static const char *write_cfg(const char *name, const char *text)
{
    static char path[4][600];
    static int slot;
    const char *dir = t_tmpdir(0);
    if (dir == NULL) return NULL;
    char *p = path[slot++ % 4];
    snprintf(p, 600, "%s/%s.ini", dir, name);
    return t_write_file(p, text, strlen(text)) ? p : NULL;
}

/* Conv, batch norm (with a fused relu), pooling, dropout-free, on 1x8x8 inputs of 5 classes. */
static const char *bn_net = "[net]\ninput=1,8,8\nclasses=5\nbatch=7\nseed=3\n"
                            "[optimizer]\ntype=sgd\nlearning_rate=0.2\nmomentum=0.9\nweight_decay=1e-4\n"
                            "[c1]\ntype=conv\nfilters=6\nsize=3\npad=1\nbias=0\n"
                            "[bn1]\ntype=batchnorm\nactivation=relu\n"
                            "[p1]\ntype=maxpool\nsize=2\n"
                            "[c2]\ntype=conv\nfilters=8\nsize=3\npad=1\nactivation=relu\n"
                            "[g]\ntype=global_avgpool\n"
                            "[fc]\ntype=dense\nunits=5\n";

static const char *plain_net = "[net]\ninput=1,8,8\nclasses=5\nbatch=7\nseed=3\n"
                               "[optimizer]\ntype=adam\nlearning_rate=0.01\n"
                               "[c1]\ntype=conv\nfilters=6\nsize=3\npad=1\nactivation=relu\n"
                               "[p1]\ntype=maxpool\nsize=2\n"
                               "[fc1]\ntype=dense\nunits=16\nactivation=tanh\n"
                               "[fc]\ntype=dense\nunits=5\n";

/* Trains job j with 1 net and with `ranks` replicas and compares the weights and running
 * statistics: every replica equal to rank 0's bit for bit, rank 0's close to the single net's. */
static void compare(const char *label, const job *j, int ranks, float rtol, float atol, dlcl_exchange_stats *stats)
{
    float *ref = NULL;
    size_t n_ref = 0;
    T_OK(train_single(j, &ref, &n_ref));
    group g = {.ranks = ranks, .order_ok = 1};
    pthread_barrier_init(&g.bar, NULL, (unsigned)ranks);
    rank_run runs[MAX_RANKS] = {0};
    pthread_t th[MAX_RANKS];
    for (int r = 0; r < ranks; r++) {
        runs[r] = (rank_run){.j = j, .m = {&g, r}};
        pthread_create(&th[r], NULL, rank_main, &runs[r]);
    }
    for (int r = 0; r < ranks; r++) pthread_join(th[r], NULL);
    pthread_barrier_destroy(&g.bar);
    int ok = 1;
    for (int r = 0; r < ranks && ok; r++)
        if (runs[r].st != DLCL_OK) {
            t_fail(__FILE__, __LINE__, "%s: rank %d: %s: %s", label, r, dlcl_status_str(runs[r].st), runs[r].err);
            ok = 0;
        }
    if (ok) {
        for (int r = 1; r < ranks && ok; r++)
            if (memcmp(runs[r].params, runs[0].params, n_ref * sizeof(float)) != 0) {
                t_fail(__FILE__, __LINE__, "%s: rank %d's weights differ from rank 0's", label, r);
                ok = 0;
            }
        if (ok && runs[0].n_params != n_ref) {
            t_fail(__FILE__, __LINE__, "%s: %zu parameters, want %zu", label, runs[0].n_params, n_ref);
            ok = 0;
        }
        if (ok && !t_close(label, runs[0].params, ref, n_ref, rtol, atol)) {
            t_fail(__FILE__, __LINE__, "%s: the replicas' weights differ from one net's", label);
            ok = 0;
        }
        double worst = 0;
        for (size_t i = 0; ok && i < n_ref; i++) worst = fmax(worst, fabs((double)runs[0].params[i] - ref[i]));
        if (ok) printf("# %s: %d ranks, %zu weights and statistics, largest difference from one net %.3g\n", label, ranks, n_ref, worst);
        if (stats) *stats = runs[0].stats;
    }
    for (int r = 0; r < ranks; r++) {
        free(runs[r].params);
        dlcl_net_free(runs[r].net);
    }
    free(ref);
}

/* Random inputs and labels for `samples` samples. */
static void make_data(job *j, float **x, int32_t **y)
{
    uint64_t s = t_seed();
    *x = malloc((size_t)j->samples * j->in_numel * sizeof **x);
    *y = malloc((size_t)j->samples * sizeof **y);
    if (*x == NULL || *y == NULL) return;
    t_fill_uniform(&s, *x, (size_t)j->samples * j->in_numel, -1.0f, 1.0f);
    for (int i = 0; i < j->samples; i++) (*y)[i] = (int32_t)(t_rand_u32(&s) % 5);
    j->x = *x;
    j->y = *y;
}

static void run_case(const char *label, const char *text, const char *const *sets, size_t n_sets, int ranks,
                     int steps, int samples, float rtol, float atol, dlcl_exchange_stats *stats)
{
    const char *cfg = write_cfg(label, text);
    T_CHECK(cfg != NULL, "cannot write the config");
    job j = {.config = cfg, .sets = sets, .n_sets = n_sets, .steps = steps, .batch = 7, .samples = samples,
             .in_numel = 64};
    float *x = NULL;
    int32_t *y = NULL;
    make_data(&j, &x, &y);
    if (x && y) compare(label, &j, ranks, rtol, atol, stats);
    else t_fail(__FILE__, __LINE__, "out of memory");
    free(x);
    free(y);
}

/* batch 7 over 2 and 3 ranks: shares 3+4 and 2+2+3; 30 samples: the fifth batch has 2. */
static void replicas_equal_one_net_adam(void)
{
    run_case("adam2", plain_net, NULL, 0, 2, 12, 30, 2e-4f, 2e-5f, NULL);
    if (!t_failed()) run_case("adam3", plain_net, NULL, 0, 3, 12, 30, 2e-4f, 2e-5f, NULL);
}

/* Small buckets: many of them, started in the same order on every rank, some during the
 * backward pass (the copy of the last layers' gradients is enqueued right after their
 * backward). */
static void many_buckets_same_result(void)
{
    const char *sets[] = {"net.bucket_mb=0.00001"};
    dlcl_exchange_stats st = {0};
    run_case("buckets", plain_net, sets, 1, 3, 6, 30, 2e-4f, 2e-5f, &st);
    if (t_failed()) return;
    printf("# %d buckets per step, %llu started, %llu of them during the backward pass\n", st.n_buckets,
           (unsigned long long)st.buckets, (unsigned long long)st.overlapped);
    T_CHECK(st.n_buckets >= 4, "%d buckets with bucket_mb=0.00001", st.n_buckets);
    T_CHECK(st.buckets == (uint64_t)st.n_buckets * 6 && st.steps == 6, "%llu buckets in %llu steps",
            (unsigned long long)st.buckets, (unsigned long long)st.steps);
}

/* sync_batchnorm: the batch statistics over every rank are those of the whole batch. */
static void sync_batchnorm_equals_one_net(void)
{
    const char *sets[] = {"net.sync_batchnorm=1"};
    run_case("syncbn3", bn_net, sets, 1, 3, 10, 30, 1e-3f, 1e-4f, NULL);
}

/* 3 ranks, batches of 7 over 15 samples: the third batch has 1 sample, so two ranks have
 * none (their gradients count as zero, and with sync_batchnorm they still join the sums). */
static void rank_without_samples(void)
{
    const char *sets[] = {"net.sync_batchnorm=1", "net.batch=7"};
    run_case("empty_rank", bn_net, sets, 2, 3, 6, 15, 1e-3f, 1e-4f, NULL);
}

/* accumulate = 2: the exchange waits for the second batch of each step. */
static void accumulation_over_replicas(void)
{
    const char *sets[] = {"optimizer.accumulate=2"};
    run_case("accum2", plain_net, sets, 1, 2, 8, 28, 2e-4f, 2e-5f, NULL);
}

/* Without sync_batchnorm each rank normalises over its own share: not the single net's result
 * (this is what makes the sync test above able to fail). */
static void local_batchnorm_differs(void)
{
    const char *cfg = write_cfg("localbn", bn_net);
    T_CHECK(cfg != NULL, "cannot write the config");
    job j = {.config = cfg, .steps = 4, .batch = 7, .samples = 28, .in_numel = 64};
    float *x = NULL, *ref = NULL;
    int32_t *y = NULL;
    size_t n = 0;
    make_data(&j, &x, &y);
    T_CHECK(x && y, "out of memory");
    dlcl_status st = train_single(&j, &ref, &n);
    group g = {.ranks = 2, .order_ok = 1};
    pthread_barrier_init(&g.bar, NULL, 2);
    rank_run runs[2] = {{.j = &j, .m = {&g, 0}}, {.j = &j, .m = {&g, 1}}};
    pthread_t th[2];
    for (int r = 0; r < 2; r++) pthread_create(&th[r], NULL, rank_main, &runs[r]);
    for (int r = 0; r < 2; r++) pthread_join(th[r], NULL);
    pthread_barrier_destroy(&g.bar);
    double worst = 0;
    if (st == DLCL_OK && runs[0].st == DLCL_OK)
        for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)runs[0].params[i] - ref[i]));
    for (int r = 0; r < 2; r++) {
        free(runs[r].params);
        dlcl_net_free(runs[r].net);
    }
    free(ref);
    free(x);
    free(y);
    T_CHECK(st == DLCL_OK && runs[0].st == DLCL_OK && runs[1].st == DLCL_OK, "training failed: %s", runs[0].err);
    printf("# per-rank batch norm: largest difference from one net %.3g\n", worst);
    T_CHECK(worst > 1e-3, "per-rank statistics gave the whole batch's (%.3g)", worst);
}

static dlcl_status noop_start(void *u, int b, float *d, size_t n)
{
    (void)u, (void)b, (void)d, (void)n;
    return DLCL_OK;
}
static dlcl_status noop_wait(void *u)
{
    (void)u;
    return DLCL_OK;
}
static dlcl_status noop_sum(void *u, double *d, size_t n)
{
    (void)u, (void)d, (void)n;
    return DLCL_OK;
}
static dlcl_status noop_bcast(void *u, void *d, size_t n)
{
    (void)u, (void)d, (void)n;
    return DLCL_OK;
}

static void replica_misuse_refused(void)
{
    const char *cfg = write_cfg("misuse", plain_net);
    T_CHECK(cfg != NULL, "cannot write the config");
    dlcl_net *net = NULL;
    dlcl_comm bad = {2, 2, NULL, noop_start, noop_wait, noop_sum, noop_bcast};
    T_ERR(dlcl_net_create_replica(cfg, NULL, 0, NULL, &bad, &net), DLCL_ERR_INVALID_ARG, "rank 2 of 2");
    dlcl_comm no_wait = {0, 2, NULL, noop_start, NULL, noop_sum, noop_bcast};
    T_ERR(dlcl_net_create_replica(cfg, NULL, 0, NULL, &no_wait, &net), DLCL_ERR_INVALID_ARG, "NULL call");
    T_CHECK(net == NULL, "a refused replica was returned");
    dlcl_comm ok = {1, 2, NULL, noop_start, noop_wait, noop_sum, noop_bcast};
    T_OK(dlcl_net_create_replica(cfg, NULL, 0, NULL, &ok, &net));
    dlcl_net_info info;
    T_OK(dlcl_net_get_info(net, &info));
    float x[7 * 64] = {0};
    int32_t y[7] = {0};
    dlcl_status st1 = dlcl_net_train_batch(net, x, y, 3, NULL, NULL);
    int msg1 = strstr(dlcl_last_error(), "replica") != NULL;
    dlcl_status st2 = dlcl_net_train_shard(net, x, y, 4, 8, NULL, NULL); /* 4 > ceil(7/2) */
    dlcl_status st3 = dlcl_net_train_shard(net, x, y, 3, 2, NULL, NULL); /* global < count */
    dlcl_net_free(net);
    T_CHECK(info.batch == 7 && info.shard_batch == 4 && info.rank == 1 && info.ranks == 2,
            "info: batch %d shard %d rank %d of %d", info.batch, info.shard_batch, info.rank, info.ranks);
    T_CHECK(st1 == DLCL_ERR_INVALID_ARG && msg1, "dlcl_net_train_batch on a replica: %s", dlcl_status_str(st1));
    T_CHECK(st2 == DLCL_ERR_INVALID_ARG && st3 == DLCL_ERR_INVALID_ARG, "bad counts accepted: %s %s",
            dlcl_status_str(st2), dlcl_status_str(st3));
    T_ERR(dlcl_net_broadcast_state(NULL), DLCL_ERR_INVALID_ARG, "NULL");
    T_OK(dlcl_net_create(cfg, NULL, 0, NULL, &net));
    dlcl_status st4 = dlcl_net_broadcast_state(net);
    dlcl_net_free(net);
    T_CHECK(st4 == DLCL_ERR_INVALID_ARG, "broadcast on a plain net: %s", dlcl_status_str(st4));
}

static const t_case cases[] = {
    T_CASE(replicas_equal_one_net_adam), T_CASE(many_buckets_same_result), T_CASE(sync_batchnorm_equals_one_net),
    T_CASE(rank_without_samples),        T_CASE(accumulation_over_replicas), T_CASE(local_batchnorm_differs),
    T_CASE(replica_misuse_refused),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
