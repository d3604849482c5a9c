/* Data-parallel training over Open MPI for the tools (see mpi_comm.h).
 *
 * Two communicators, duplicated from MPI_COMM_WORLD so their messages never meet:
 *  - grad: only the communication thread uses it. start() queues a bucket and wakes the thread,
 *    which calls MPI_Iallreduce(MPI_IN_PLACE, SUM) for each bucket in the order they were
 *    queued (the same on every rank) and then keeps calling MPI_Testsome while any is in
 *    flight: Open MPI's shared-memory and TCP transports only progress inside MPI calls, so
 *    without this the sums would start moving only at wait(), after the backward pass.
 *  - main: the calling thread's blocking collectives (batch norm's sums, broadcasts, the tool's
 *    per-step agreement). MPI_THREAD_MULTIPLE lets both threads be inside MPI at once.
 * The process is one MPI job member, so the state is a file-level singleton. */
#include "mpi_comm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <unistd.h>

#include <mpi.h>

/* Largest piece one MPI call moves: counts are int. */
#define DP_CHUNK (1 << 30)
/* The thread polls in-flight sums back to back for this long after any progress, then sleeps
 * DP_POLL_SLEEP_NS between polls: on a CPU device it shares the cores with the kernels. */
#define DP_SPIN_S 100e-6
#define DP_POLL_SLEEP_NS 20000

typedef struct bucket {
    float *data;
    int n;
} bucket;

static struct {
    int active, rank, ranks, local_rank, local_size;
    const char *tool;
    char host[MPI_MAX_PROCESSOR_NAME + 1];
    char who[MPI_MAX_PROCESSOR_NAME + 64];
    MPI_Comm grad, main;

    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    int quit;
    /* this step's buckets: [0, done) complete, [done, issued) in flight, [issued, queued) waiting */
    bucket *q;
    int cap, queued, issued, done;
    MPI_Request *reqs; /* the thread's, as long as q */
    double step_bytes, t_first, t_last;
    dp_stats stats;
} dp = {.mu = PTHREAD_MUTEX_INITIALIZER, .work_cv = PTHREAD_COND_INITIALIZER, .done_cv = PTHREAD_COND_INITIALIZER};

static double now_s(void) { return tool_now(); }

/* A message naming this rank, then the end of the job. */
static _Noreturn void dp_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: %s", dp.tool ? dp.tool : "dlcl", dp.who);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    dp_abort(1);
}

static void check(int rc, const char *what)
{
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", rc);
    dp_die("%s failed: %s", what, msg);
}

/* ---------------------------------------------------------------- the communication thread */

static void *comm_thread(void *arg)
{
    (void)arg;
    double last_progress = 0;
    pthread_mutex_lock(&dp.mu);
    while (!dp.quit) {
        if (dp.issued == dp.queued && dp.done == dp.issued) {
            pthread_cond_wait(&dp.work_cv, &dp.mu);
            last_progress = now_s();
            continue;
        }
        while (dp.issued < dp.queued) { /* in queue order: every rank issues the same sequence */
            bucket b = dp.q[dp.issued];
            int i = dp.issued++;
            pthread_mutex_unlock(&dp.mu);
            check(MPI_Iallreduce(MPI_IN_PLACE, b.data, b.n, MPI_FLOAT, MPI_SUM, dp.grad, &dp.reqs[i]),
                  "MPI_Iallreduce");
            pthread_mutex_lock(&dp.mu);
        }
        int n = dp.issued, out = 0;
        int *idx = malloc((size_t)n * sizeof *idx);
        if (idx == NULL) dp_die("out of memory");
        pthread_mutex_unlock(&dp.mu);
        /* completed requests are MPI_REQUEST_NULL, which Testsome skips */
        check(MPI_Testsome(n, dp.reqs, &out, idx, MPI_STATUSES_IGNORE), "MPI_Testsome");
        free(idx);
        double t = now_s();
        pthread_mutex_lock(&dp.mu);
        if (out != MPI_UNDEFINED && out > 0) {
            dp.done += out;
            last_progress = t;
            if (dp.done == dp.queued) {
                dp.t_last = t;
                pthread_cond_broadcast(&dp.done_cv);
            }
        } else if (t - last_progress > DP_SPIN_S && dp.issued == dp.queued) {
            pthread_mutex_unlock(&dp.mu);
            struct timespec ts = {0, DP_POLL_SLEEP_NS};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&dp.mu);
        }
    }
    pthread_mutex_unlock(&dp.mu);
    return NULL;
}

static int grow(int need)
{
    if (need <= dp.cap) return 0;
    int cap = dp.cap ? dp.cap * 2 : 64;
    while (cap < need) cap *= 2;
    bucket *q = realloc(dp.q, (size_t)cap * sizeof *q);
    if (q == NULL) return -1;
    dp.q = q;
    /* reqs is only resized here, while the thread holds no request (it takes the lock to
     * issue, and tests only [0, issued) that it read under the lock): see comm_start */
    MPI_Request *r = realloc(dp.reqs, (size_t)cap * sizeof *r);
    if (r == NULL) return -1;
    dp.reqs = r;
    dp.cap = cap;
    return 0;
}

static dlcl_status comm_start(void *user, int index, float *data, size_t n)
{
    (void)user, (void)index;
    pthread_mutex_lock(&dp.mu);
    /* Growing reqs while the thread is inside MPI_Testsome on it would pull the array from
     * under it: wait for the in-flight sums first (rare: only the first steps grow). */
    size_t pieces = (n + DP_CHUNK - 1) / DP_CHUNK;
    if (pieces == 0) pieces = 1;
    if (dp.queued + (int)pieces > dp.cap) {
        while (dp.done < dp.issued) pthread_cond_wait(&dp.done_cv, &dp.mu);
        if (grow(dp.queued + (int)pieces) != 0) {
            pthread_mutex_unlock(&dp.mu);
            dp_die("out of memory queueing a gradient bucket");
        }
    }
    if (dp.queued == 0) {
        dp.t_first = now_s();
        dp.step_bytes = 0;
    }
    size_t off = 0;
    do {
        size_t m = n - off < DP_CHUNK ? n - off : DP_CHUNK;
        dp.q[dp.queued++] = (bucket){data + off, (int)m};
        off += m;
    } while (off < n);
    dp.step_bytes += (double)n * sizeof(float);
    pthread_cond_signal(&dp.work_cv);
    pthread_mutex_unlock(&dp.mu);
    return DLCL_OK;
}

static dlcl_status comm_wait(void *user)
{
    (void)user;
    double t0 = now_s();
    pthread_mutex_lock(&dp.mu);
    while (dp.done < dp.queued) pthread_cond_wait(&dp.done_cv, &dp.mu);
    if (dp.queued > 0) {
        dp.stats.steps++;
        dp.stats.bytes += dp.step_bytes;
        dp.stats.exchange_s += dp.t_last - dp.t_first;
        dp.stats.wait_s += now_s() - t0;
    }
    dp.queued = dp.issued = dp.done = 0; /* the thread is idle: nothing queued or in flight */
    pthread_mutex_unlock(&dp.mu);
    return DLCL_OK;
}

static dlcl_status comm_sum(void *user, double *data, size_t n)
{
    (void)user;
    dp_sum(data, n);
    return DLCL_OK;
}

static dlcl_status comm_broadcast(void *user, void *data, size_t bytes)
{
    (void)user;
    dp_broadcast(data, bytes);
    return DLCL_OK;
}

void dp_comm(dlcl_comm *out)
{
    *out = (dlcl_comm){.rank = dp.rank, .ranks = dp.ranks, .user = NULL, .start = comm_start, .wait = comm_wait,
                       .sum = comm_sum, .broadcast = comm_broadcast};
}

/* ---------------------------------------------------------------- collectives of the tool */

static void allreduce(double *v, size_t n, MPI_Op op, const char *what)
{
    if (!dp.active) return;
    for (size_t off = 0; off < n; off += DP_CHUNK) {
        size_t m = n - off < DP_CHUNK ? n - off : DP_CHUNK;
        check(MPI_Allreduce(MPI_IN_PLACE, v + off, (int)m, MPI_DOUBLE, op, dp.main), what);
    }
}

void dp_sum(double *v, size_t n) { allreduce(v, n, MPI_SUM, "MPI_Allreduce (sum)"); }
void dp_max(double *v, size_t n) { allreduce(v, n, MPI_MAX, "MPI_Allreduce (max)"); }

void dp_broadcast(void *data, size_t bytes)
{
    if (!dp.active) return;
    for (size_t off = 0; off < bytes; off += DP_CHUNK) {
        size_t m = bytes - off < DP_CHUNK ? bytes - off : DP_CHUNK;
        check(MPI_Bcast((char *)data + off, (int)m, MPI_BYTE, 0, dp.main), "MPI_Bcast");
    }
}

void dp_barrier(void)
{
    if (dp.active) check(MPI_Barrier(dp.main), "MPI_Barrier");
}

int dp_any(int flag)
{
    double v = flag != 0;
    dp_sum(&v, 1);
    return v > 0;
}

void dp_stats_get(dp_stats *out)
{
    pthread_mutex_lock(&dp.mu);
    *out = dp.stats;
    pthread_mutex_unlock(&dp.mu);
}

/* ---------------------------------------------------------------- the job */

int dp_active(void) { return dp.active; }
int dp_rank(void) { return dp.rank; }
int dp_ranks(void) { return dp.active ? dp.ranks : 1; }
int dp_local_rank(void) { return dp.local_rank; }
int dp_local_size(void) { return dp.active ? dp.local_size : 1; }
const char *dp_host(void) { return dp.host; }
const char *dp_who(void) { return dp.who; }

void dp_on_signal(void)
{
    if (!dp.active) return;
    for (int fd = STDOUT_FILENO; fd <= STDERR_FILENO; fd++) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    }
}

_Noreturn void dp_abort(int code)
{
    fflush(stdout);
    fflush(stderr);
    if (dp.active) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

static int env_set(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0';
}

/* This rank's share of the host's cores: the cores it may run on (mpirun binds each rank to
 * one core for np <= 2, to a socket above), at most an equal split of the online cores among
 * the ranks of this host. */
static int core_share(void)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 1) online = 1;
    long share = online / (dp.local_size > 0 ? dp.local_size : 1);
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0 && CPU_COUNT(&set) < share)
        share = CPU_COUNT(&set);
    return share < 1 ? 1 : (int)share;
}

/* PoCL starts a thread per core for every process: N ranks on one host would run N times as
 * many threads as cores. Debian 12's PoCL 3.1 reads POCL_MAX_PTHREAD_COUNT (its pthread driver
 * also reports that many compute units, which dlcl's GEMM splits its work by); PoCL 4 and
 * later renamed it POCL_CPU_MAX_CU_COUNT. Set both to this rank's share, before the first
 * OpenCL call, unless the user set either. */
static void limit_pocl_threads(void)
{
    if (env_set("POCL_MAX_PTHREAD_COUNT") || env_set("POCL_CPU_MAX_CU_COUNT")) return;
    char v[32];
    snprintf(v, sizeof v, "%d", core_share());
    setenv("POCL_MAX_PTHREAD_COUNT", v, 1);
    setenv("POCL_CPU_MAX_CU_COUNT", v, 1);
}

int dp_init(int *argc, char ***argv, const char *tool)
{
    dp.tool = tool;
    if (!env_set("OMPI_COMM_WORLD_SIZE") && !env_set("PMIX_RANK")) return 0; /* not under mpirun */
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "%s: MPI_Init_thread failed\n", tool);
        exit(1);
    }
    dp.active = 1;
    int len = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &dp.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &dp.ranks);
    if (MPI_Get_processor_name(dp.host, &len) != MPI_SUCCESS || len <= 0) gethostname(dp.host, sizeof dp.host - 1);
    snprintf(dp.who, sizeof dp.who, "rank %d on %s: ", dp.rank, dp.host);
    if (provided < MPI_THREAD_MULTIPLE)
        dp_die("this MPI provides thread level %d, not MPI_THREAD_MULTIPLE: the gradients are summed on a thread of "
               "their own", provided);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check(MPI_Comm_dup(MPI_COMM_WORLD, &dp.grad), "MPI_Comm_dup");
    check(MPI_Comm_dup(MPI_COMM_WORLD, &dp.main), "MPI_Comm_dup");
    /* the ranks sharing this host's memory, for the local rank (OMPI_COMM_WORLD_LOCAL_RANK
     * under Open MPI's mpirun; this works under any launcher) */
    MPI_Comm local;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, dp.rank, MPI_INFO_NULL, &local),
          "MPI_Comm_split_type");
    MPI_Comm_rank(local, &dp.local_rank);
    MPI_Comm_size(local, &dp.local_size);
    MPI_Comm_free(&local);
    limit_pocl_threads();

    /* When mpirun ends the job (Ctrl-C), it stops forwarding output first: a rank printing then
     * must not die of SIGPIPE before rank 0 has saved its checkpoint. */
    signal(SIGPIPE, SIG_IGN);

    if (grow(64) != 0) dp_die("out of memory");
    if (pthread_create(&dp.thread, NULL, comm_thread, NULL) != 0)
        dp_die("cannot start the communication thread: %s", strerror(errno));
    dp.thread_started = 1;
    /* rank 0 prints; the others' stdout would repeat it N times */
    if (dp.rank != 0 && freopen("/dev/null", "w", stdout) == NULL) dp_die("cannot redirect stdout: %s", strerror(errno));
    return 1;
}

void dp_finalize(void)
{
    if (!dp.active) return;
    pthread_mutex_lock(&dp.mu);
    dp.quit = 1;
    pthread_cond_signal(&dp.work_cv);
    pthread_mutex_unlock(&dp.mu);
    if (dp.thread_started) pthread_join(dp.thread, NULL);
    dp_barrier();
    MPI_Comm_free(&dp.grad);
    MPI_Comm_free(&dp.main);
    MPI_Finalize();
    free(dp.q);
    free(dp.reqs);
    dp.active = 0;
}

/* ---------------------------------------------------------------- per-rank settings */

static void log_rank(dlcl_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level == DLCL_LOG_WARN) fprintf(stderr, "dlcl: warning: %s%s\n", dp.who, msg);
}

dlcl_log_fn dp_log_fn(void) { return dp.active && dp.rank != 0 ? log_rank : tool_log; }

static int set_by_user(const char **sets, size_t n, const char *key)
{
    size_t l = strlen(key);
    for (size_t i = 0; i < n; i++)
        if (strncmp(sets[i], key, l) == 0 && sets[i][l] == '=') return 1;
    return 0;
}

/* Whether [data] of the expanded config has workers, and whether its format has workers at
 * all (token data is read on the caller's thread). */
static void data_keys(const char *config, const char **sets, size_t n, int *has_workers, int *takes_workers)
{
    char *text = NULL;
    *has_workers = 0;
    *takes_workers = 0;
    if (dlcl_config_expand(config, sets, n, &text) != DLCL_OK) return; /* dlcl_net_create will say why */
    int in_data = 0;
    *takes_workers = 1;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == ' ' || *line == '\t') line++;
        if (*line == '[') {
            in_data = strncmp(line, "[data]", 6) == 0;
            continue;
        }
        if (!in_data) continue;
        char key[32] = "", val[32] = "";
        if (sscanf(line, "%31[a-z_] = %31s", key, val) < 1) continue;
        if (strcmp(key, "workers") == 0) *has_workers = 1;
        if (strcmp(key, "format") == 0 && (strcmp(val, "tokens") == 0 || strcmp(val, "text") == 0))
            *takes_workers = 0;
    }
    free(text);
}

size_t dp_add_overrides(const char *config, const char **sets, size_t n_sets)
{
    if (!dp.active) return n_sets;
    static char device[64], workers[64];
    size_t n = n_sets;
    if (!env_set("DLCL_DEVICE") && !set_by_user(sets, n_sets, "net.device")) {
        dlcl_device_info *list = NULL;
        size_t count = 0;
        int chosen = -1, gpus = 0, mine = -1;
        if (dlcl_devices_list(NULL, &list, &count, &chosen) == DLCL_OK) {
            for (size_t i = 0; i < count; i++) gpus += strcmp(list[i].type, "GPU") == 0;
            for (size_t i = 0, g = 0; gpus > 1 && i < count; i++)
                if (strcmp(list[i].type, "GPU") == 0 && (int)g++ == dp.local_rank % gpus) mine = (int)i;
            if (mine >= 0) {
                snprintf(device, sizeof device, "net.device=%d:%d", list[mine].platform_index, list[mine].device_index);
                sets[n++] = device;
            }
            if (gpus > 1 && dp.local_size > gpus && dp.local_rank == 0)
                fprintf(stderr, "%s: warning: %d ranks on %s share its %d GPUs\n", dp.tool, dp.local_size, dp.host,
                        gpus);
        }
        dlcl_devices_free(list);
    }
    int has_workers, takes_workers;
    if (!set_by_user(sets, n_sets, "data.workers")) {
        data_keys(config, sets, n_sets, &has_workers, &takes_workers);
        if (takes_workers && !has_workers) {
            snprintf(workers, sizeof workers, "data.workers=%d", core_share());
            sets[n++] = workers;
        }
    }
    return n;
}
