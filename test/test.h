/* dlcl's one way to write tests: each test executable holds a table of cases, runs them
 * (or those named on the command line) and reports in TAP, which `meson test` reads.
 *
 *   static void gemm_matches_ref_7x13x5(void) { ... T_CHECK(cond, "fmt", ...); ... }
 *   static const t_case cases[] = { T_CASE(gemm_matches_ref_7x13x5), };
 *   int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
 *
 * A failed check prints "# file:line: message" and ends the case. */
#ifndef DLCL_TEST_H
#define DLCL_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dlcl.h"

typedef struct t_case {
    const char *name;
    void (*fn)(void);
} t_case;

#define T_CASE(f) {#f, f}
#define T_COUNT(a) (sizeof(a) / sizeof((a)[0]))

int t_main(const t_case *cases, size_t n, int argc, char **argv);

/* Marks the running case failed; used by the macros below. */
void t_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool t_failed(void);
/* Marks the running case skipped: t_main reports "ok N - name # SKIP reason" (TAP's
 * directive). The case should return right after. */
void t_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Skips the running case and returns from it. */
#define T_SKIP(...)                                                                                \
    do {                                                                                           \
        t_skip(__VA_ARGS__);                                                                       \
        return;                                                                                    \
    } while (0)

#define T_CHECK(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            t_fail(__FILE__, __LINE__, __VA_ARGS__);                                               \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* A dlcl call that must succeed; on failure prints its status and dlcl_last_error(). */
#define T_OK(call)                                                                                 \
    do {                                                                                           \
        dlcl_status t__s = (call);                                                                 \
        if (t__s != DLCL_OK) {                                                                     \
            t_fail(__FILE__, __LINE__, "%s returned %s: %s", #call, dlcl_status_str(t__s),         \
                   dlcl_last_error());                                                             \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* A dlcl call that must fail with `status` and a message containing `substr`. */
#define T_ERR(call, status, substr)                                                                \
    do {                                                                                           \
        dlcl_status t__s = (call);                                                                 \
        if (!t_err_matches(t__s, (status), (substr))) {                                            \
            t_fail(__FILE__, __LINE__, "%s: want %s with \"%s\", got %s: %s", #call,               \
                   dlcl_status_str(status), (substr), dlcl_status_str(t__s), dlcl_last_error());   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

bool t_err_matches(dlcl_status got, dlcl_status want, const char *substr);

/* Compares got against want elementwise: |g - w| <= atol + rtol * |w|. On failure prints
 * the label, the count of bad elements and the worst one (index, got, want). NaN fails. */
bool t_close(const char *label, const float *got, const float *want, size_t n, float rtol, float atol);
#define T_CLOSE(label, got, want, n, rtol, atol)                                                   \
    do {                                                                                           \
        if (!t_close((label), (got), (want), (n), (rtol), (atol))) {                               \
            t_fail(__FILE__, __LINE__, "%s differs from reference", (label));                      \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Deterministic generator; the seed is printed by t_main (override with T_SEED=n). */
uint64_t t_seed(void);
uint32_t t_rand_u32(uint64_t *state);
float t_rand_uniform(uint64_t *state, float lo, float hi);
void t_fill_uniform(uint64_t *state, float *x, size_t n, float lo, float hi);

/* One context per test process (creating one per case would dominate run time on PoCL).
 * Device from DLCL_DEVICE as usual; log lines are printed as TAP comments. NULL on error
 * (the error is reported and the case failed). */
dlcl_ctx *t_ctx(void);
/* Frees the shared context (called by t_main at exit; tests that need a fresh one call it). */
void t_ctx_reset(void);

/* Between these two, whatever the process writes to its standard output (fd 1: a third-party
 * library such as CLBlast printing a compiler log) is captured, then replayed as "# " TAP
 * comments, so it cannot break the TAP stream. */
void t_capture_stdout_begin(void);
void t_capture_stdout_end(void);

/* Creates a temporary directory (mkdtemp under $TMPDIR or /tmp); returns its path in a
 * static buffer per call slot (0..3). t_main removes every one at exit unless T_KEEP_TMP
 * is set. */
const char *t_tmpdir(int slot);
/* Writes a file; returns false on failure. */
bool t_write_file(const char *path, const void *data, size_t len);

/* netcheck.c: builds the net of config text (in t_tmpdir(0)), takes a training step with the
 * config's learning rate (0: the weights stay) on random inputs (token ids for a token net)
 * and random labels (a label per position for a sequence output), and checks a sample of
 * the parameters' gradients against central differences of the mean loss. */
void t_check_net_gradients(const char *name, const char *text);
/* The check itself on a net the caller made: a training step on (x, y), n samples, then every
 * stride-th parameter or so (a random step of 1 .. stride) against central differences. */
void t_check_gradients_on(dlcl_net *net, const char *name, const void *x, const int32_t *y, int n, int stride);

#endif
