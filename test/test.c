/* Test runner, tolerance compare, RNG, shared context. See test.h. */
#include "test.h"
#include "../lib/internal.h"

#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool cur_failed;
static uint64_t seed_value;

void t_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char msg[8192];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* keep TAP valid: every line of the message is a comment */
    printf("# %s:%d: ", file, line);
    for (const char *p = msg; *p; p++) {
        putchar(*p);
        if (*p == '\n' && p[1]) printf("#   ");
    }
    putchar('\n');
    cur_failed = true;
}

bool t_failed(void) { return cur_failed; }

static char skip_reason[512];

void t_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(skip_reason, sizeof skip_reason, fmt, ap);
    va_end(ap);
    for (char *p = skip_reason; *p; p++) /* one TAP line */
        if (*p == '\n') *p = ' ';
    if (skip_reason[0] == '\0') snprintf(skip_reason, sizeof skip_reason, "skipped");
}

bool t_err_matches(dlcl_status got, dlcl_status want, const char *substr)
{
    return got == want && (substr == NULL || strstr(dlcl_last_error(), substr) != NULL);
}

bool t_close(const char *label, const float *got, const float *want, size_t n, float rtol, float atol)
{
    size_t bad = 0, worst = 0;
    double worst_excess = -1.0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i], tol = atol + rtol * fabs(w);
        double excess = isfinite(g) && isfinite(w) ? fabs(g - w) - tol : INFINITY;
        if (excess > 0) bad++;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    if (bad == 0) return true;
    printf("# %s: %zu of %zu elements out of tolerance (rtol %g, atol %g); worst at [%zu]: got %.9g want %.9g\n",
           label, bad, n, (double)rtol, (double)atol, worst, (double)got[worst], (double)want[worst]);
    return false;
}

uint64_t t_seed(void) { return seed_value; }

uint32_t t_rand_u32(uint64_t *s)
{
    return (uint32_t)(dlcl__splitmix64(s) >> 32);
}

float t_rand_uniform(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)((t_rand_u32(s) >> 8) * (1.0 / 16777216.0));
}

void t_fill_uniform(uint64_t *s, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = t_rand_uniform(s, lo, hi);
}

static FILE *capture_file;
static int capture_saved_fd = -1;

void t_capture_stdout_begin(void)
{
    fflush(stdout);
    if (capture_saved_fd >= 0 || (capture_file = tmpfile()) == NULL) return;
    capture_saved_fd = dup(STDOUT_FILENO);
    if (capture_saved_fd < 0 || dup2(fileno(capture_file), STDOUT_FILENO) < 0) {
        if (capture_saved_fd >= 0) close(capture_saved_fd);
        capture_saved_fd = -1;
        fclose(capture_file);
        capture_file = NULL;
    }
}

void t_capture_stdout_end(void)
{
    if (capture_saved_fd < 0) return;
    fflush(stdout);
    dup2(capture_saved_fd, STDOUT_FILENO);
    close(capture_saved_fd);
    capture_saved_fd = -1;
    rewind(capture_file);
    char line[1024];
    bool fresh = true;
    while (fgets(line, sizeof line, capture_file)) {
        printf("%s%s", fresh ? "# captured: " : "", line);
        fresh = strchr(line, '\n') != NULL;
    }
    if (!fresh) putchar('\n');
    fclose(capture_file);
    capture_file = NULL;
}

static dlcl_ctx *shared_ctx;

static void log_to_tap(dlcl_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level >= DLCL_LOG_INFO) printf("# dlcl: %s\n", msg);
}

dlcl_ctx *t_ctx(void)
{
    if (shared_ctx != NULL) return shared_ctx;
    dlcl_ctx_params p = {0};
    p.log = log_to_tap;
    dlcl_status s = dlcl_ctx_create(&p, &shared_ctx);
    if (s != DLCL_OK) {
        t_fail(__FILE__, __LINE__, "dlcl_ctx_create: %s: %s", dlcl_status_str(s), dlcl_last_error());
        shared_ctx = NULL;
    }
    return shared_ctx;
}

void t_ctx_reset(void)
{
    dlcl_ctx_free(shared_ctx);
    shared_ctx = NULL;
}

/* Every directory t_tmpdir made, removed (with its contents) when t_main returns. */
static char made_dirs[256][512];
static int n_made;

const char *t_tmpdir(int slot)
{
    static char bufs[4][512];
    if (slot < 0 || slot > 3) return NULL;
    const char *base = getenv("TMPDIR");
    snprintf(bufs[slot], sizeof bufs[slot], "%s/dlcl-test-XXXXXX", base && base[0] ? base : "/tmp");
    const char *d = mkdtemp(bufs[slot]);
    if (d != NULL && n_made < 256) snprintf(made_dirs[n_made++], sizeof made_dirs[0], "%s", d);
    return d;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void tmpdirs_remove(void)
{
    for (int i = 0; i < n_made; i++) nftw(made_dirs[i], remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    n_made = 0;
}

bool t_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return (fclose(f) == 0) && ok;
}

int t_main(const t_case *cases, size_t n, int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *se = getenv("T_SEED");
    seed_value = se ? strtoull(se, NULL, 10) : 20261124ull;
    size_t run = 0, failed = 0;
    bool sel[4096] = {false};
    for (size_t i = 0; i < n && i < 4096; i++) {
        sel[i] = argc <= 1;
        for (int a = 1; a < argc; a++)
            if (strcmp(argv[a], cases[i].name) == 0) sel[i] = true;
        run += sel[i];
    }
    printf("1..%zu\n# seed %llu (set T_SEED to change)\n", run, (unsigned long long)seed_value);
    size_t idx = 0;
    for (size_t i = 0; i < n && i < 4096; i++) {
        if (!sel[i]) continue;
        cur_failed = false;
        skip_reason[0] = '\0';
        cases[i].fn();
        idx++;
        if (skip_reason[0] != '\0' && !cur_failed)
            printf("ok %zu - %s # SKIP %s\n", idx, cases[i].name, skip_reason);
        else
            printf("%s %zu - %s\n", cur_failed ? "not ok" : "ok", idx, cases[i].name);
        failed += cur_failed;
    }
    t_ctx_reset();
    if (getenv("T_KEEP_TMP") == NULL) tmpdirs_remove();
    return failed ? 1 : 0;
}
