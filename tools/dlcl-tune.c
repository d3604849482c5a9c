/* dlcl-tune [--device SPEC] [--kernels xgemm,xgemm_direct,...] [--fraction F] [--quick] [--keep]
 * dlcl-tune --show | --clear [--device SPEC]
 * Runs CLBlast's own tuners (clblast_tuner_*, Debian's clblast-utils) for single precision on
 * the chosen device, each in a temporary directory, keeps the fastest configuration per
 * CLBlast kernel, stores it in dlcl's cache keyed by device name and driver version, and
 * checks that an SGEMM through CLBlast with those parameters is still correct. Contexts on
 * that device then apply them before their first CLBlast call. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#include "common.h"

/* The tuners of the kernels CLBlast's SGEMM runs: the GEMM kernels and the copy / pad /
 * transpose kernels of its indirect path. quick: a -fraction that leaves a few
 * configurations of each phase (xgemm's four phases have 578, 120800, 407 and 16566:
 * 2000 skips the two fixed sets and samples 60 + 8; xgemm_direct's 46 and 8420). */
static const struct {
    const char *name;
    int has_k;
    double quick_fraction;
} tuners[] = {
    {"xgemm", 1, 2000}, {"xgemm_direct", 1, 400}, {"copy_fast", 0, 20},
    {"copy_pad", 0, 10}, {"transpose_fast", 0, 10}, {"transpose_pad", 0, 5},
};
#define N_TUNERS (sizeof tuners / sizeof tuners[0])
#define QUICK_SIZE "256"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dlcl-tune [--device SPEC] [--kernels LIST] [--fraction F] [--quick] [--keep]\n"
            "       dlcl-tune --show | --clear [--device SPEC]\n"
            "  --device    platform:device or a name substring (default: DLCL_DEVICE, else the first GPU)\n"
            "  --kernels   tuners to run, comma-separated (default all):\n"
            "              xgemm,xgemm_direct,copy_fast,copy_pad,transpose_fast,transpose_pad\n"
            "  --fraction  CLBlast's -fraction: each tuner times 1/F of its configurations (F >= 1;\n"
            "              default: CLBlast's own, all of the fixed sets and 1/512 of the large ones)\n"
            "  --quick     a smoke test: 256^3 problems, one run each, a few configurations per tuner\n"
            "  --keep      keep the tuners' directory (their logs and JSON files)\n"
            "  --show      print the tuning stored for the device;  --clear  remove it\n"
            "The tuners come from PATH (Debian: apt-get install clblast-utils). The tuning only matters\n"
            "where CLBlast runs the GEMMs: GPUs, or any device with DLCL_GEMM=clblast.\n");
}

static int find_in_path(const char *exe, char *out, size_t cap)
{
    const char *path = getenv("PATH");
    char *dup = strdup(path && path[0] ? path : "/usr/bin:/bin");
    int found = 0;
    for (char *save = NULL, *d = dup ? strtok_r(dup, ":", &save) : NULL; d && !found; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, cap, "%s/%s", d, exe);
        found = access(out, X_OK) == 0;
    }
    free(dup);
    return found;
}

/* Follows a tuner's table in its log: "* (2/4) Tuning ..." starts a phase, "|   37 |    60 |"
 * is configuration 37 of 60. */
typedef struct progress {
    int fd;
    char line[512];
    size_t len;
    char phase[8];
    long cur, total;
} progress;

static void progress_read(progress *p)
{
    char buf[4096];
    ssize_t n;
    while ((n = read(p->fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                if (p->len < sizeof p->line - 1) p->line[p->len++] = buf[i];
                continue;
            }
            p->line[p->len] = '\0';
            p->len = 0;
            int a, b;
            long c, t;
            if (sscanf(p->line, "* (%d/%d)", &a, &b) == 2) {
                snprintf(p->phase, sizeof p->phase, "%d/%d", a, b);
                p->cur = p->total = 0;
            } else if (sscanf(p->line, "| %ld | %ld |", &c, &t) == 2) {
                p->cur = c, p->total = t;
            }
        }
}

static void print_progress(const progress *p, const char *name, size_t i, size_t n, double secs, int tty)
{
    char where[64] = "", what[64] = "reference run";
    if (p->phase[0]) snprintf(where, sizeof where, "phase %s, ", p->phase);
    if (p->total > 0) snprintf(what, sizeof what, "configuration %ld/%ld", p->cur, p->total);
    printf("%s[%zu/%zu] %s: %s%s, %dm%02ds%s", tty ? "\r" : "", i + 1, n, name, where, what, (int)secs / 60,
           (int)secs % 60, tty ? "   " : "\n");
    fflush(stdout);
}

/* Runs one tuner in dir with its output to dir/log.txt, printing progress; its exit status. */
static int run_tuner(const char *exe, char *const *argv, const char *dir, const char *name, size_t i, size_t n)
{
    char log[4400];
    snprintf(log, sizeof log, "%s/log.txt", dir);
    int out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0) {
        fprintf(stderr, "dlcl-tune: cannot create %s: %s\n", log, strerror(errno));
        return -1;
    }
    progress p = {.fd = open(log, O_RDONLY)};
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(dir) != 0 || dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0) _exit(126);
        execv(exe, argv);
        _exit(127);
    }
    close(out);
    if (pid < 0) {
        fprintf(stderr, "dlcl-tune: fork: %s\n", strerror(errno));
        if (p.fd >= 0) close(p.fd);
        return -1;
    }
    int tty = isatty(STDOUT_FILENO), status = 0;
    double t0 = tool_now(), last = -1e9;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w < 0 && errno != EINTR) break;
        if (p.fd >= 0) progress_read(&p);
        double now = tool_now();
        if (w == pid || now - last >= (tty ? 1.0 : 30.0)) {
            print_progress(&p, name, i, n, now - t0, tty);
            last = now;
        }
        if (w == pid) break;
        usleep(200 * 1000);
    }
    if (tty) printf("\n");
    if (p.fd >= 0) close(p.fd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long len;
    if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && len < (1L << 26) && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)len + 1)) != NULL) {
        if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
            free(buf);
            buf = NULL;
        } else {
            buf[len] = '\0';
        }
    }
    if (f) fclose(f);
    return buf;
}

/* Adds every clblast_*.json of dir to t; how many were usable, *found how many there were. */
static int collect(dlcl_tuning *t, const char *dir, int *found)
{
    *found = 0;
    DIR *d = opendir(dir);
    int used = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "clblast_", 8) != 0 || l < 5 || strcmp(e->d_name + l - 5, ".json") != 0) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *text = read_file(path);
        (*found)++;
        dlcl_status s = text ? dlcl_tuning_add_tuner_json(t, text, path) : DLCL_ERR_IO;
        if (s == DLCL_OK) used++;
        else if (text) fprintf(stderr, "dlcl-tune: skipping %s\n", dlcl_last_error());
        else fprintf(stderr, "dlcl-tune: skipping %s: cannot read it\n", path);
        free(text);
    }
    if (d) closedir(d);
    return used;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char path[4400];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(path);
        else unlink(path);
    }
    if (d) closedir(d);
    rmdir(dir);
}

static void print_tuning(const dlcl_tuning *t)
{
    for (size_t i = 0; i < dlcl_tuning_count(t); i++) {
        dlcl_tuning_kernel k;
        if (dlcl_tuning_get(t, i, &k) != DLCL_OK) return;
        printf("  %-13s %9.3f ms", k.kernel, k.time_ms);
        if (k.m) printf(" at %zux%zu%s%.0zu", k.m, k.n, k.k ? "x" : "", k.k);
        printf(" (tuner %s):", k.family);
        for (size_t j = 0; j < k.n_params; j++) printf(" %s=%zu", k.names[j], k.values[j]);
        printf("\n");
    }
}

/* A few entries of C = op(A) op(B) recomputed on the host: |error| within 1e-4 of sum |a b|. */
static int check_one(dlcl_ctx *ctx, int m, int n, int k, dlcl_transpose ta, uint64_t *rng)
{
    int64_t da[2] = {ta ? k : m, ta ? m : k}, db[2] = {k, n}, dc[2] = {m, n};
    size_t na = (size_t)m * k, nb = (size_t)k * n, nc = (size_t)m * n;
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c = malloc(nc * sizeof *c);
    dlcl_tensor *ta_ = NULL, *tb = NULL, *tc = NULL;
    dlcl_status s = a && b && c ? DLCL_OK : DLCL_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; s == DLCL_OK && i < na + nb; i++) {
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        *(i < na ? &a[i] : &b[i - na]) = (float)(*rng >> 40) / 16777216.0f - 0.5f;
    }
    if (s == DLCL_OK) s = dlcl_tensor_create(ctx, 2, da, &ta_);
    if (s == DLCL_OK) s = dlcl_tensor_create(ctx, 2, db, &tb);
    if (s == DLCL_OK) s = dlcl_tensor_create(ctx, 2, dc, &tc);
    if (s == DLCL_OK) s = dlcl_tensor_upload(ta_, a, 0, na);
    if (s == DLCL_OK) s = dlcl_tensor_upload(tb, b, 0, nb);
    if (s == DLCL_OK)
        s = dlcl_sgemm(ctx, ta, DLCL_NO_TRANS, m, n, k, 1.0f, ta_, 0, ta ? m : k, tb, 0, n, 0.0f, tc, 0, n);
    if (s == DLCL_OK) s = dlcl_tensor_download(tc, c, 0, nc);
    int bad = 0;
    for (int t = 0; s == DLCL_OK && t < 256; t++) {
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        size_t i = (size_t)(*rng >> 33) % (size_t)m, j = (size_t)(*rng >> 13) % (size_t)n;
        double want = 0, mag = 0;
        for (size_t p = 0; p < (size_t)k; p++) {
            double x = ta ? a[p * m + i] : a[i * k + p], y = b[p * n + j];
            want += x * y, mag += fabs(x * y);
        }
        if (!(fabs(c[i * n + j] - want) <= 1e-4 * mag + 1e-6)) {
            if (bad++ == 0)
                fprintf(stderr, "dlcl-tune: SGEMM %dx%dx%d%s: C[%zu][%zu] = %g, want %g\n", m, n, k, ta ? " (A^T)" : "",
                        i, j, c[i * n + j], want);
        }
    }
    if (s != DLCL_OK) tool_fail("dlcl-tune", s);
    else printf("check: SGEMM %dx%dx%d%s through CLBlast: %s\n", m, n, k, ta ? " (A transposed)" : "",
                bad ? "WRONG" : "256 sampled entries match the host");
    dlcl_tensor_free(ta_), dlcl_tensor_free(tb), dlcl_tensor_free(tc);
    free(a), free(b), free(c);
    return s == DLCL_OK && bad == 0;
}

/* SGEMMs through CLBlast (DLCL_GEMM=clblast, even on a CPU device) in a fresh context, which
 * applies the stored tuning and logs it: small ones take CLBlast's direct kernel, large
 * ragged ones the indirect path with its pad and transpose kernels. */
static int check_sgemm(const dlcl_device_info *dev)
{
    char sel[32];
    snprintf(sel, sizeof sel, "%d:%d", dev->platform_index, dev->device_index);
    if (setenv("DLCL_GEMM", "clblast", 1) != 0) return 0;
    dlcl_ctx_params params = {.device = sel, .log = tool_log};
    dlcl_ctx *ctx = NULL;
    dlcl_status s = dlcl_ctx_create(&params, &ctx);
    if (s != DLCL_OK) return tool_fail("dlcl-tune", s), 0;
    uint64_t rng = 42;
    int ok = check_one(ctx, 67, 45, 33, DLCL_NO_TRANS, &rng) && check_one(ctx, 1500, 1400, 1300, DLCL_NO_TRANS, &rng) &&
             check_one(ctx, 1100, 1000, 900, DLCL_TRANS, &rng);
    dlcl_ctx_free(ctx);
    return ok;
}

static int tune(const dlcl_device_info *dev, const int *run, size_t n_run, const char *fraction, int quick, int keep)
{
    static char exes[N_TUNERS][4096];
    for (size_t i = 0; i < N_TUNERS; i++) {
        char name[64];
        snprintf(name, sizeof name, "clblast_tuner_%s", tuners[i].name);
        if (run[i] && !find_in_path(name, exes[i], sizeof exes[i])) {
            fprintf(stderr, "dlcl-tune: %s not found in PATH: install CLBlast's tuners (Debian: apt-get install "
                            "clblast-utils)\n", name);
            return 1;
        }
    }
    const char *tmp = getenv("TMPDIR");
    char root[4096], dir[4200], plat[16], devi[16];
    snprintf(root, sizeof root, "%s/dlcl-tune-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    snprintf(plat, sizeof plat, "%d", dev->platform_index);
    snprintf(devi, sizeof devi, "%d", dev->device_index);
    dlcl_tuning *t = NULL;
    dlcl_status s = dlcl_tuning_create(&t);
    if (s != DLCL_OK) return tool_fail("dlcl-tune", s);
    if (mkdtemp(root) == NULL) {
        fprintf(stderr, "dlcl-tune: cannot create %s: %s\n", root, strerror(errno));
        dlcl_tuning_free(t);
        return 1;
    }
    printf("running %zu CLBlast tuner%s in %s; each takes minutes on a GPU, longer on a CPU\n", n_run,
           n_run == 1 ? "" : "s", root);
    double t0 = tool_now();
    int rc = 0;
    size_t k = 0;
    for (size_t i = 0; i < N_TUNERS; i++) {
        if (!run[i]) continue;
        char qf[32];
        snprintf(qf, sizeof qf, "%g", tuners[i].quick_fraction);
        const char *f = fraction ? fraction : quick ? qf : NULL;
        char *av[20] = {exes[i], "-platform", plat, "-device", devi, "-precision", "32"};
        int ac = 7;
        if (f) av[ac++] = "-fraction", av[ac++] = (char *)f;
        if (quick) {
            av[ac++] = "-m", av[ac++] = QUICK_SIZE, av[ac++] = "-n", av[ac++] = QUICK_SIZE;
            if (tuners[i].has_k) av[ac++] = "-k", av[ac++] = QUICK_SIZE;
            av[ac++] = "-runs", av[ac++] = "1";
        }
        av[ac] = NULL;
        snprintf(dir, sizeof dir, "%s/%s", root, tuners[i].name);
        printf("$ (cd %s &&", dir);
        for (int j = 0; j < ac; j++) printf(" %s", av[j]);
        printf(")\n");
        int st = mkdir(dir, 0755) == 0 ? run_tuner(exes[i], av, dir, tuners[i].name, k++, n_run) : -1;
        int found = 0, used = collect(t, dir, &found);
        if (st != 0)
            fprintf(stderr, "dlcl-tune: %s %s (see %s/log.txt)\n", tuners[i].name,
                    st < 0 ? "could not be started" : "failed", dir);
        if (used == 0)
            fprintf(stderr, "dlcl-tune: no result from %s%s\n", tuners[i].name,
                    found ? "" : f ? ": with this -fraction a phase may have had no configuration left" : "");
        if (st != 0 || used == 0) rc = 1;
    }
    double secs = tool_now() - t0;
    printf("tuners done in %dm%02ds\n", (int)secs / 60, (int)secs % 60);
    char path[4096] = "";
    if (dlcl_tuning_count(t) == 0) {
        fprintf(stderr, "dlcl-tune: no tuning result; nothing stored (logs in %s)\n", root);
        dlcl_tuning_free(t);
        return 1;
    }
    s = dlcl_tuning_store(t, dev, NULL, path, sizeof path);
    if (s == DLCL_OK) printf("stored in %s:\n", path), print_tuning(t);
    dlcl_tuning_free(t);
    if (s != DLCL_OK) return tool_fail("dlcl-tune", s);
    if (!check_sgemm(dev)) {
        fprintf(stderr, "dlcl-tune: SGEMM with the tuned parameters failed; removing them (logs in %s)\n", root);
        dlcl_tuning_clear(dev, NULL, NULL, 0);
        return 1;
    }
    if (keep || rc != 0) printf("tuner logs and JSON files kept in %s\n", root);
    else remove_tree(root);
    return rc;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *device = NULL, *kernels = NULL, *fraction = NULL;
    int quick = 0, keep = 0, show = 0, clear = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--device") == 0 && i + 1 < argc) device = argv[++i];
        else if (strcmp(argv[i], "--kernels") == 0 && i + 1 < argc) kernels = argv[++i];
        else if (strcmp(argv[i], "--fraction") == 0 && i + 1 < argc) fraction = argv[++i];
        else if (strcmp(argv[i], "--quick") == 0) quick = 1;
        else if (strcmp(argv[i], "--keep") == 0) keep = 1;
        else if (strcmp(argv[i], "--show") == 0) show = 1;
        else if (strcmp(argv[i], "--clear") == 0) clear = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "dlcl-tune: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (fraction) {
        char *end;
        double f = strtod(fraction, &end);
        if (*end != '\0' || !(f >= 1.0) || !isfinite(f)) {
            fprintf(stderr, "dlcl-tune: --fraction %s: F is CLBlast's divisor, each tuner times 1/F of its "
                            "configurations; it must be a number >= 1 (e.g. 100)\n", fraction);
            return 2;
        }
    }
    int run[N_TUNERS] = {0};
    size_t n_run = 0;
    for (size_t i = 0; i < N_TUNERS; i++) run[i] = kernels == NULL;
    if (kernels) {
        char *dup = strdup(kernels);
        for (char *save = NULL, *k = dup ? strtok_r(dup, ",", &save) : NULL; k; k = strtok_r(NULL, ",", &save)) {
            size_t j = 0;
            while (j < N_TUNERS && strcmp(k, tuners[j].name) != 0) j++;
            if (j == N_TUNERS) {
                fprintf(stderr, "dlcl-tune: --kernels: unknown tuner '%s'\n", k);
                free(dup);
                usage(stderr);
                return 2;
            }
            run[j] = 1;
        }
        free(dup);
    }
    for (size_t i = 0; i < N_TUNERS; i++) n_run += run[i];

    dlcl_device_info *list = NULL;
    size_t count = 0;
    int chosen = -1;
    dlcl_status s = dlcl_devices_list(device, &list, &count, &chosen);
    if (s != DLCL_OK) return tool_fail("dlcl-tune", s);
    if (chosen < 0) {
        fprintf(stderr, "dlcl-tune: device '%s' matches no device (see dlcl-devices)\n",
                device ? device : getenv("DLCL_DEVICE") ? getenv("DLCL_DEVICE") : "");
        dlcl_devices_free(list);
        return 1;
    }
    dlcl_device_info dev = list[chosen];
    dlcl_devices_free(list);
    printf("device %d:%d: %s (%s, driver %s)\n", dev.platform_index, dev.device_index, dev.name, dev.type,
           dev.driver_version);
    char path[4096] = "";
    if (show || clear) {
        dlcl_tuning *t = NULL;
        s = clear ? dlcl_tuning_clear(&dev, NULL, path, sizeof path) : dlcl_tuning_load(&dev, NULL, &t, path, sizeof path);
        if (s == DLCL_ERR_NOT_FOUND) {
            printf("no CLBlast tuning stored for this device (%s)\n", path);
            return 0;
        }
        if (s != DLCL_OK) return tool_fail("dlcl-tune", s);
        if (clear) printf("removed %s\n", path);
        else printf("CLBlast tuning in %s:\n", path), print_tuning(t);
        dlcl_tuning_free(t);
        return 0;
    }
    return tune(&dev, run, n_run, fraction, quick, keep);
}
