/* Small helpers shared by the command-line tools (not part of the library). */
#ifndef DLCL_TOOLS_COMMON_H
#define DLCL_TOOLS_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dlcl.h"

/* Prints "<tool>: <STATUS>: <message>" to stderr and returns 1 (the exit code). */
static inline int tool_fail(const char *tool, dlcl_status s)
{
    fprintf(stderr, "%s: %s: %s\n", tool, dlcl_status_str(s), dlcl_last_error());
    return 1;
}

/* Library log lines to stderr; debug lines only with DLCL_VERBOSE set. */
static inline void tool_log(dlcl_log_level level, const char *msg, void *user)
{
    (void)user;
    static const char *const names[] = {"debug", "info", "warning"};
    if (level == DLCL_LOG_DEBUG && getenv("DLCL_VERBOSE") == NULL) return;
    fprintf(stderr, "dlcl: %s: %s\n", names[level], msg);
}

static inline double tool_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* "3x224x224": a per-sample shape from its dims. */
static inline const char *tool_shape(char *buf, size_t cap, int ndim, const int64_t *dims)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int d = 0; d < ndim && n < cap; d++) n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? "x" : "", (long long)dims[d]);
    return buf;
}

/* Prints the summary table of a net (like torchsummary / darknet): a layer's inputs are
 * shown when it does not simply read the row above. */
static inline void tool_print_summary(dlcl_net *net, FILE *f)
{
    dlcl_net_info info;
    if (dlcl_net_get_info(net, &info) != DLCL_OK) return;
    fprintf(f, "device: %s\n", info.device_name);
    fprintf(f, "%-4s %-22s %-15s %-30s %-14s %12s %10s  %s\n", "#", "layer", "type", "detail", "output", "params",
            "MFLOPs", "reads");
    char shape[64], prev[64] = "input";
    tool_shape(shape, sizeof shape, info.in_ndim, info.in_dims);
    fprintf(f, "%-4s %-22s %-15s %-30s %-14s\n", "", "input", "", "", shape);
    for (size_t i = 0; i < info.n_layers; i++) {
        dlcl_layer_info li;
        if (dlcl_net_layer_info(net, i, &li) != DLCL_OK) return;
        tool_shape(shape, sizeof shape, li.ndim, li.dims);
        fprintf(f, "%-4zu %-22s %-15s %-30s %-14s %12zu %10.2f  %s\n", i, li.name, li.type, li.detail, shape,
                li.params + li.buffers, li.flops * 1e-6, strcmp(li.inputs, prev) == 0 ? "" : li.inputs);
        snprintf(prev, sizeof prev, "%s", li.name);
    }
    fprintf(f, "parameters: %zu (%.2f MiB)%s   forward: %.2f MFLOPs/sample   batch: %d   loss reads: [%s]   "
               "device memory: %.1f MiB\n",
            info.n_params, info.n_params * 4.0 / 1048576.0, info.n_buffers ? " + buffers" : "",
            info.flops_per_sample * 1e-6, info.batch, info.output, info.device_bytes / 1048576.0);
}

#endif
