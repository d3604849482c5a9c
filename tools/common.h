/* Small helpers shared by the command-line tools (not part of the library). */
#ifndef DLCL_TOOLS_COMMON_H
#define DLCL_TOOLS_COMMON_H

#include <stdio.h>
#include <stdlib.h>
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

/* Prints the summary table of a net (like torchsummary / darknet). */
static inline void tool_print_summary(dlcl_net *net, FILE *f)
{
    dlcl_net_info info;
    if (dlcl_net_get_info(net, &info) != DLCL_OK) return;
    fprintf(f, "device: %s\n", info.device_name);
    fprintf(f, "%-4s %-14s %-15s %-24s %-16s %12s %12s\n", "#", "layer", "type", "detail", "output", "params", "MFLOPs");
    char shape[48];
    snprintf(shape, sizeof shape, "%dx%dx%d", info.in_c, info.in_h, info.in_w);
    fprintf(f, "%-4s %-14s %-15s %-24s %-16s %12s %12s\n", "", "input", "", "", shape, "", "");
    for (size_t i = 0; i < info.n_layers; i++) {
        dlcl_layer_info li;
        if (dlcl_net_layer_info(net, i, &li) != DLCL_OK) return;
        snprintf(shape, sizeof shape, "%dx%dx%d", li.out_c, li.out_h, li.out_w);
        fprintf(f, "%-4zu %-14s %-15s %-24s %-16s %12zu %12.2f\n", i, li.name, li.type, li.detail, shape, li.params,
                li.flops * 1e-6);
    }
    fprintf(f, "parameters: %zu (%.2f MiB)   forward: %.2f MFLOPs/sample   batch: %d   device memory: %.1f MiB\n",
            info.n_params, info.n_params * 4.0 / 1048576.0, info.flops_per_sample * 1e-6, info.batch,
            info.device_bytes / 1048576.0);
}

#endif
