/* Data-parallel training for the tools over Open MPI (not part of the library: libdlcl never
 * links MPI). Under mpirun, dp_init initialises MPI and every dp_ function below works on the
 * job; run plainly (no OMPI_COMM_WORLD_SIZE or PMIX_RANK in the environment), dp_init touches
 * no MPI, dp_active() is 0, this process is rank 0 of 1 and the collectives do nothing, so a
 * tool reads the same either way. Built without MPI (meson -Dmpi=disabled) the functions are
 * the inline stubs at the end.
 *
 * The prefix is dp_ ("data parallel") rather than mpi_comm_: Open MPI's Fortran bindings
 * already export lower-case names such as mpi_comm_rank. */
#ifndef DLCL_TOOLS_MPI_COMM_H
#define DLCL_TOOLS_MPI_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* The gradient exchange as the communication thread saw it, since dp_init. */
typedef struct dp_stats {
    uint64_t steps;    /* wait() calls that had buckets to wait for */
    double bytes;      /* gradient bytes summed (this rank's buffers, each counted once) */
    double exchange_s; /* per step, from the first start() to the last bucket's completion, summed */
    double wait_s;     /* time the caller spent blocked in wait() */
} dp_stats;

/* Most overrides dp_add_overrides appends: the sets array needs this many free entries. */
#define DP_MAX_OVERRIDES 2

#if DLCL_WITH_MPI

/* Under mpirun: limits PoCL to this rank's share of the cores (see mpi_comm.c), initialises
 * MPI (MPI_THREAD_MULTIPLE), starts the communication thread, sends stdout of ranks other than
 * 0 to /dev/null and returns 1. Otherwise returns 0 and changes nothing. tool names the program
 * in messages. A failure prints why and exits the process (MPI_Abort when MPI is up). */
int dp_init(int *argc, char ***argv, const char *tool);
int dp_active(void);
int dp_rank(void);       /* 0 .. dp_ranks()-1 */
int dp_ranks(void);
int dp_local_rank(void); /* among the ranks on this host */
int dp_local_size(void);
const char *dp_host(void);
/* "rank R on HOST: " under mpirun, else "": the prefix of every error message. */
const char *dp_who(void);

/* The library's dlcl_comm on this job's gradient communicator (dlcl_net_create_replica). */
void dp_comm(dlcl_comm *out);
/* The log sink: tool_log on rank 0; the other ranks print warnings only, naming the rank. */
dlcl_log_fn dp_log_fn(void);
/* Appends the overrides a rank needs unless the user chose otherwise: net.device = this local
 * rank's GPU when the host has several GPUs (not with DLCL_DEVICE set or a --set net.device),
 * and data.workers = this rank's share of the cores (not when the config or a --set gives
 * workers, nor for token data, which has no workers). Returns the new count. */
size_t dp_add_overrides(const char *config, const char **sets, size_t n_sets);

/* Blocking collectives of the tool on its own communicator (not the gradients'). */
void dp_sum(double *v, size_t n);
void dp_max(double *v, size_t n);
void dp_broadcast(void *data, size_t bytes); /* from rank 0 */
void dp_barrier(void);
/* 1 on every rank when flag is non-zero on any rank. */
int dp_any(int flag);

void dp_stats_get(dp_stats *out);

/* For the tool's SIGINT/SIGTERM handler (async-signal-safe). mpirun, on Ctrl-C, stops reading
 * the ranks' output, then sends them SIGTERM and, a second later, SIGKILL: a rank 0 blocked
 * printing would never reach its checkpoint. From the signal on, its prints are dropped
 * instead (stdout and stderr non-blocking); the signal itself ends the write under way. */
void dp_on_signal(void);

/* Ends the whole job: MPI_Abort(MPI_COMM_WORLD, code) after flushing stdout and stderr. Print
 * the message first, prefixed with dp_who(). */
_Noreturn void dp_abort(int code);
/* Stops the communication thread, waits for every rank (so that rank 0's last checkpoint is
 * written before any rank exits) and finalises MPI. */
void dp_finalize(void);

#else /* built without MPI: one process, nothing to exchange */

static inline int dp_init(int *argc, char ***argv, const char *tool) { (void)argc, (void)argv, (void)tool; return 0; }
static inline int dp_active(void) { return 0; }
static inline int dp_rank(void) { return 0; }
static inline int dp_ranks(void) { return 1; }
static inline int dp_local_rank(void) { return 0; }
static inline int dp_local_size(void) { return 1; }
static inline const char *dp_host(void) { return ""; }
static inline const char *dp_who(void) { return ""; }
static inline void dp_comm(dlcl_comm *out) { *out = (dlcl_comm){.rank = 0, .ranks = 1}; }
static inline dlcl_log_fn dp_log_fn(void) { return tool_log; }
static inline size_t dp_add_overrides(const char *config, const char **sets, size_t n_sets)
{
    (void)config, (void)sets;
    return n_sets;
}
static inline void dp_sum(double *v, size_t n) { (void)v, (void)n; }
static inline void dp_max(double *v, size_t n) { (void)v, (void)n; }
static inline void dp_broadcast(void *data, size_t bytes) { (void)data, (void)bytes; }
static inline void dp_barrier(void) {}
static inline int dp_any(int flag) { return flag != 0; }
static inline void dp_stats_get(dp_stats *out) { *out = (dp_stats){0}; }
static inline void dp_on_signal(void) {}
static inline _Noreturn void dp_abort(int code) { exit(code); }
static inline void dp_finalize(void) {}

#endif
#endif
