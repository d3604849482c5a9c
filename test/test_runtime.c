/* The runtime: kernel directory resolution, build errors with the compiler's log, the
 * disk cache (warm start builds nothing, corrupt entries are rebuilt), device choice,
 * tensors and the buffer pool. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/internal.h"
#include "test.h"

static char saved_env[4][1024];
static const char *const env_names[4] = {"DLCL_KERNEL_DIR", "DLCL_CACHE_DIR", "DLCL_NO_CACHE", "DLCL_DEVICE"};
static int saved_set[4];

static void env_save(void)
{
    for (int i = 0; i < 4; i++) {
        const char *v = getenv(env_names[i]);
        saved_set[i] = v != NULL;
        snprintf(saved_env[i], sizeof saved_env[i], "%s", v ? v : "");
    }
}

static void env_restore(void)
{
    for (int i = 0; i < 4; i++) {
        if (saved_set[i]) setenv(env_names[i], saved_env[i], 1);
        else unsetenv(env_names[i]);
    }
    t_ctx_reset();
}

static const char *kernel_src_dir(void)
{
    static char dir[1024];
    const char *src = getenv("DLCL_TEST_SOURCE_DIR");
    snprintf(dir, sizeof dir, "%s/cl_kernels", src ? src : "..");
    return dir;
}

/* A kernel directory holding a copy of elementwise.cl (+ extra source if given). */
/* the source tree's kernel file name into dir */
static bool copy_kernel_file(const char *dir, const char *name)
{
    char from[1200], to[1200];
    snprintf(from, sizeof from, "%s/%s", kernel_src_dir(), name);
    snprintf(to, sizeof to, "%s/%s", dir, name);
    FILE *f = fopen(from, "rb");
    if (f == NULL) return false;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return t_write_file(to, buf, n);
}

/* a kernel directory with elementwise.cl, the storage.clh every source needs, and extra */
static const char *make_kernel_dir(int slot, const char *extra_name, const char *extra_src)
{
    const char *dir = t_tmpdir(slot);
    if (dir == NULL) return NULL;
    char to[1200];
    if (!copy_kernel_file(dir, "elementwise.cl") || !copy_kernel_file(dir, "storage.clh")) return NULL;
    if (extra_name) {
        snprintf(to, sizeof to, "%s/%s", dir, extra_name);
        if (!t_write_file(to, extra_src, strlen(extra_src))) return NULL;
    }
    return dir;
}

static void kernel_dir_resolves_each_location_in_order(void)
{
    const char *a = t_tmpdir(0), *b = t_tmpdir(1);
    char *out = NULL;
    T_CHECK(a && b, "tmpdir");
    T_OK(rt_kernel_dir_resolve(a, b, NULL, NULL, &out));
    T_CHECK(strcmp(out, a) == 0, "env first: %s", out);
    free(out);
    T_OK(rt_kernel_dir_resolve(NULL, b, a, NULL, &out));
    T_CHECK(strcmp(out, b) == 0, "param second: %s", out);
    free(out);
    T_OK(rt_kernel_dir_resolve(NULL, NULL, a, b, &out));
    T_CHECK(strcmp(out, a) == 0, "build tree third: %s", out);
    free(out);
    T_OK(rt_kernel_dir_resolve(NULL, "/nonexistent/p", "/nonexistent/b", b, &out));
    T_CHECK(strcmp(out, b) == 0, "install dir last: %s", out);
    free(out);
    T_ERR(rt_kernel_dir_resolve(NULL, "/nonexistent/p", "/nonexistent/b", "/nonexistent/i", &out), DLCL_ERR_NOT_FOUND,
          "/nonexistent/i (install dir)");
    T_CHECK(strstr(dlcl_last_error(), "/nonexistent/p (kernel_dir parameter)") &&
            strstr(dlcl_last_error(), "/nonexistent/b (build tree)"), "not every path listed: %s", dlcl_last_error());
    /* an explicit DLCL_KERNEL_DIR that is missing is an error, not a fallback */
    T_ERR(rt_kernel_dir_resolve("/nonexistent/env", NULL, a, NULL, &out), DLCL_ERR_NOT_FOUND, "DLCL_KERNEL_DIR");
}

static void ctx_reads_kernels_from_env_dir_and_runs_them(void)
{
    env_save();
    const char *dir = make_kernel_dir(0, NULL, NULL);
    T_CHECK(dir != NULL, "cannot make kernel dir");
    setenv("DLCL_KERNEL_DIR", dir, 1);
    setenv("DLCL_NO_CACHE", "1", 1);
    dlcl_ctx *ctx = NULL;
    dlcl_status s = dlcl_ctx_create(NULL, &ctx);
    bool same = s == DLCL_OK && strcmp(dlcl_ctx_kernel_dir(ctx), dir) == 0;
    dlcl_ctx_stats st = {0};
    if (s == DLCL_OK) dlcl_ctx_get_stats(ctx, &st);
    /* the copied source builds and runs: fill 13 floats (a ragged work-group) */
    dlcl_tensor *t = NULL;
    int64_t dim = 13;
    float out[13] = {0};
    dlcl_status run = s;
    if (run == DLCL_OK) run = dlcl_tensor_create(ctx, 1, &dim, &t);
    if (run == DLCL_OK) run = dlcl_tensor_fill(t, -3.25f);
    if (run == DLCL_OK) run = dlcl_tensor_download(t, out, 0, 13);
    char run_msg[1024];
    snprintf(run_msg, sizeof run_msg, "%s", dlcl_last_error());
    dlcl_tensor_free(t);
    dlcl_ctx_free(ctx);
    setenv("DLCL_KERNEL_DIR", "/nonexistent/kernels", 1);
    dlcl_status s2 = dlcl_ctx_create(NULL, &ctx);
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", dlcl_last_error());
    env_restore();
    T_CHECK(s == DLCL_OK && same && st.kernel_sources == 1, "%s", dlcl_last_error());
    T_CHECK(run == DLCL_OK, "fill from the env kernel dir: %s: %s", dlcl_status_str(run), run_msg);
    for (int i = 0; i < 13; i++) T_CHECK(out[i] == -3.25f, "fill[%d] = %g", i, (double)out[i]);
    T_CHECK(s2 == DLCL_ERR_NOT_FOUND && ctx == NULL && strstr(msg, "/nonexistent/kernels"), "missing dir: %s", msg);
}

static void broken_kernel_reports_compiler_log(void)
{
    env_save();
    const char *dir = make_kernel_dir(0, "broken.cl",
                                      "__kernel void broken(__global float *x) { x[0] = undeclared_thing_42; }\n");
    T_CHECK(dir != NULL, "cannot make kernel dir");
    setenv("DLCL_KERNEL_DIR", dir, 1);
    setenv("DLCL_NO_CACHE", "1", 1);
    dlcl_ctx *ctx = NULL;
    dlcl_status s = dlcl_ctx_create(NULL, &ctx);
    dlcl_status b = s == DLCL_OK ? dlcl_ctx_build_all(ctx) : s;
    char msg[4096];
    snprintf(msg, sizeof msg, "%s", dlcl_last_error());
    dlcl_ctx_free(ctx);
    env_restore();
    T_CHECK(s == DLCL_OK, "ctx: %s", msg);
    T_CHECK(b == DLCL_ERR_BUILD, "build_all returned %s", dlcl_status_str(b));
    T_CHECK(strstr(msg, "broken.cl") && strstr(msg, "undeclared_thing_42"), "message lacks file or log: %s", msg);
}

static int count_bin_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) n += strstr(e->d_name, ".bin") != NULL;
    if (d) closedir(d);
    return n;
}

static bool build_all_stats(dlcl_ctx_stats *st)
{
    dlcl_ctx *ctx = NULL;
    bool ok = dlcl_ctx_create(NULL, &ctx) == DLCL_OK && dlcl_ctx_build_all(ctx) == DLCL_OK &&
              dlcl_ctx_get_stats(ctx, st) == DLCL_OK;
    dlcl_ctx_free(ctx);
    return ok;
}

static void warm_start_builds_nothing(void)
{
    env_save();
    const char *cache = t_tmpdir(1);
    setenv("DLCL_CACHE_DIR", cache, 1);
    unsetenv("DLCL_NO_CACHE");
    dlcl_ctx_stats cold = {0}, warm = {0};
    bool ok1 = build_all_stats(&cold), ok2 = build_all_stats(&warm);
    /* in one process, the same (source, options) is built once */
    dlcl_ctx *ctx = NULL;
    rt_program *p1 = NULL, *p2 = NULL;
    dlcl_ctx_stats once = {0};
    bool ok3 = dlcl_ctx_create(NULL, &ctx) == DLCL_OK && rt_program_get(ctx, "elementwise", "-DX=1", &p1) == DLCL_OK &&
               rt_program_get(ctx, "elementwise", "-DX=1", &p2) == DLCL_OK && dlcl_ctx_get_stats(ctx, &once) == DLCL_OK;
    dlcl_ctx_free(ctx);
    env_restore();
    T_CHECK(ok1 && ok2 && ok3, "%s", dlcl_last_error());
    T_CHECK(cold.programs_compiled == cold.kernel_sources && cold.programs_cached == 0, "cold: compiled %llu of %llu",
            (unsigned long long)cold.programs_compiled, (unsigned long long)cold.kernel_sources);
    T_CHECK(warm.programs_compiled == 0 && warm.programs_cached == warm.kernel_sources, "warm: compiled %llu, cached %llu",
            (unsigned long long)warm.programs_compiled, (unsigned long long)warm.programs_cached);
    T_CHECK(p1 == p2 && once.programs_compiled + once.programs_cached == 1, "same program built twice");
}

static void corrupt_cache_entries_are_rebuilt(void)
{
    env_save();
    const char *cache = t_tmpdir(1);
    setenv("DLCL_CACHE_DIR", cache, 1);
    unsetenv("DLCL_NO_CACHE");
    dlcl_ctx_stats first = {0}, second = {0};
    bool ok = build_all_stats(&first);
    int n = count_bin_files(cache), corrupted = 0;
    DIR *d = opendir(cache);
    struct dirent *e;
    while (ok && d && (e = readdir(d)) != NULL) {
        if (!strstr(e->d_name, ".bin")) continue;
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", cache, e->d_name);
        struct stat sb;
        stat(path, &sb);
        if (corrupted % 2 == 0) { /* truncate */
            ok = truncate(path, sb.st_size / 2) == 0;
        } else { /* flip a byte near the end, in the payload */
            FILE *f = fopen(path, "r+b");
            ok = f && fseek(f, sb.st_size - 10, SEEK_SET) == 0;
            int c = ok ? fgetc(f) : 0;
            ok = ok && fseek(f, sb.st_size - 10, SEEK_SET) == 0 && fputc(c ^ 0x5a, f) != EOF;
            if (f) fclose(f);
        }
        corrupted++;
    }
    if (d) closedir(d);
    ok = ok && build_all_stats(&second);
    /* the rebuilt programs work */
    dlcl_ctx *ctx = NULL;
    dlcl_tensor *t = NULL;
    int64_t dim = 300;
    float out[300];
    ok = ok && dlcl_ctx_create(NULL, &ctx) == DLCL_OK && dlcl_tensor_create(ctx, 1, &dim, &t) == DLCL_OK &&
         dlcl_tensor_fill(t, 2.5f) == DLCL_OK && dlcl_tensor_download(t, out, 0, 300) == DLCL_OK;
    dlcl_ctx_stats third = {0};
    if (ctx) dlcl_ctx_get_stats(ctx, &third);
    dlcl_tensor_free(t);
    dlcl_ctx_free(ctx);
    env_restore();
    T_CHECK(ok, "%s", dlcl_last_error());
    T_CHECK(n > 0 && corrupted == n, "corrupted %d of %d entries", corrupted, n);
    T_CHECK(second.cache_rejected == (uint64_t)n && second.programs_compiled == (uint64_t)n,
            "rejected %llu, compiled %llu of %d", (unsigned long long)second.cache_rejected,
            (unsigned long long)second.programs_compiled, n);
    T_CHECK(third.programs_cached >= 1 && third.cache_rejected == 0, "rewritten entry not used");
    for (int i = 0; i < 300; i++) T_CHECK(out[i] == 2.5f, "fill[%d] = %g", i, (double)out[i]);
}

static void no_cache_writes_nothing(void)
{
    env_save();
    const char *cache = t_tmpdir(1);
    setenv("DLCL_CACHE_DIR", cache, 1);
    setenv("DLCL_NO_CACHE", "1", 1);
    dlcl_ctx_stats st = {0};
    bool ok = build_all_stats(&st);
    int n = count_bin_files(cache);
    env_restore();
    T_CHECK(ok && n == 0 && st.programs_cached == 0, "ok %d, %d files written", ok, n);
}

static void device_choice_by_dlcl_device(void)
{
    env_save();
    dlcl_device_info *list = NULL;
    size_t n = 0;
    int chosen = -1;
    unsetenv("DLCL_DEVICE");
    dlcl_status s = dlcl_devices_list(NULL, &list, &n, &chosen);
    if (s != DLCL_OK || n == 0 || chosen < 0) {
        dlcl_devices_free(list);
        env_restore();
        T_CHECK(false, "dlcl_devices_list: %s: %s (n %zu, chosen %d)", dlcl_status_str(s), dlcl_last_error(), n, chosen);
    }
    char name_part[8];
    snprintf(name_part, sizeof name_part, "%.6s", list[chosen].name);
    char idx[32];
    snprintf(idx, sizeof idx, "%d:%d", list[chosen].platform_index, list[chosen].device_index);
    const char *good[] = {idx, name_part};
    bool all_ok = true;
    for (int i = 0; i < 2; i++) {
        setenv("DLCL_DEVICE", good[i], 1);
        dlcl_ctx *ctx = NULL;
        s = dlcl_ctx_create(NULL, &ctx);
        all_ok &= s == DLCL_OK && strcmp(dlcl_ctx_device_name(ctx), list[chosen].name) == 0;
        dlcl_ctx_free(ctx);
    }
    const char *bad[] = {"nonexistent-xyz", "9:9"};
    char msg[2][2048];
    dlcl_status bs[2];
    for (int i = 0; i < 2; i++) {
        setenv("DLCL_DEVICE", bad[i], 1);
        dlcl_ctx *ctx = NULL;
        bs[i] = dlcl_ctx_create(NULL, &ctx);
        snprintf(msg[i], sizeof msg[i], "%s", dlcl_last_error());
        dlcl_ctx_free(ctx);
    }
    int chosen_bad = 0;
    dlcl_device_info *l2 = NULL;
    size_t n2;
    dlcl_devices_list("nonexistent-xyz", &l2, &n2, &chosen_bad);
    dlcl_devices_free(l2);
    char first_name[128];
    snprintf(first_name, sizeof first_name, "%s", list[0].name);
    dlcl_devices_free(list);
    env_restore();
    T_CHECK(all_ok, "a valid DLCL_DEVICE was not honoured");
    for (int i = 0; i < 2; i++)
        T_CHECK(bs[i] == DLCL_ERR_NO_DEVICE && strstr(msg[i], bad[i]) && strstr(msg[i], first_name),
                "%s: %s: %s", bad[i], dlcl_status_str(bs[i]), msg[i]);
    T_CHECK(chosen_bad == -1, "devices_list marks a device for a bad selector");
}

static void tensor_round_trip_and_pool_reuse(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    int64_t dims[3] = {3, 7, 13};
    dlcl_tensor *t = NULL;
    T_OK(dlcl_tensor_create(ctx, 3, dims, &t));
    T_CHECK(dlcl_tensor_ndim(t) == 3 && dlcl_tensor_dim(t, 2) == 13 && dlcl_tensor_numel(t) == 273, "shape queries");
    float in[273], out[273];
    for (int i = 0; i < 273; i++) in[i] = (float)i * 0.5f - 7;
    T_OK(dlcl_tensor_upload(t, in, 0, 273));
    T_OK(dlcl_tensor_download(t, out, 0, 273));
    T_CHECK(memcmp(in, out, sizeof in) == 0, "round trip differs");
    T_OK(dlcl_tensor_upload(t, in, 100, 5));
    T_OK(dlcl_tensor_download(t, out, 100, 5));
    T_CHECK(memcmp(in, out, 5 * sizeof *in) == 0, "partial round trip differs");
    dlcl_ctx_stats before, after;
    T_OK(dlcl_ctx_get_stats(ctx, &before));
    dlcl_tensor_free(t);
    T_OK(dlcl_tensor_create(ctx, 3, dims, &t));
    T_OK(dlcl_ctx_get_stats(ctx, &after));
    dlcl_tensor_free(t);
    T_CHECK(after.pool_hits == before.pool_hits + 1 && after.pool_misses == before.pool_misses,
            "pool not reused: hits %llu -> %llu", (unsigned long long)before.pool_hits,
            (unsigned long long)after.pool_hits);
    /* a pooled buffer lent to a smaller tensor keeps its real size: a 100-float buffer that
     * served 60 floats still serves 100 */
    int64_t big = 100, small = 60;
    T_OK(dlcl_tensor_create(ctx, 1, &big, &t));
    dlcl_tensor_free(t);
    T_OK(dlcl_tensor_create(ctx, 1, &small, &t));
    dlcl_tensor_free(t);
    T_OK(dlcl_ctx_get_stats(ctx, &before));
    T_OK(dlcl_tensor_create(ctx, 1, &big, &t));
    T_OK(dlcl_ctx_get_stats(ctx, &after));
    T_OK(dlcl_tensor_upload(t, in, 0, 100));
    T_OK(dlcl_tensor_download(t, out, 0, 100));
    dlcl_tensor_free(t);
    T_CHECK(memcmp(in, out, 100 * sizeof *in) == 0, "reused buffer round trip differs");
    T_CHECK(after.pool_hits == before.pool_hits + 1 && after.pool_misses == before.pool_misses,
            "buffer shrank in the pool's books: hits %llu -> %llu, misses %llu -> %llu",
            (unsigned long long)before.pool_hits, (unsigned long long)after.pool_hits,
            (unsigned long long)before.pool_misses, (unsigned long long)after.pool_misses);
    int64_t huge[2] = {1 << 20, 1 << 20}; /* 4 TiB */
    T_ERR(dlcl_tensor_create(ctx, 2, huge, &t), DLCL_ERR_OUT_OF_MEMORY, "MAX_MEM_ALLOC_SIZE");
}

/* A failed launch names the kernel and its launch shape (here: a work-group larger than any
 * device allows). */
static void launch_failure_names_kernel_and_shape(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    cl_kernel k;
    T_OK(rt_kernel_get(ctx, "elementwise", "", "fill", &k));
    cl_mem m;
    T_OK(rt_buffer_acquire(ctx, 64, "launch test", &m));
    int n = 3;
    float v = 1;
    dlcl_status s = rt_set_args(k, "fill", RT_ARG(m), RT_ARG(n), RT_ARG(v), RT_ARGS_END);
    size_t global = 3, local = (size_t)1 << 20;
    if (s == DLCL_OK) s = rt_launch(ctx, k, "fill", 1, &global, &local);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", dlcl_last_error());
    rt_buffer_release(ctx, m);
    T_CHECK(s == DLCL_ERR_OPENCL && strstr(msg, "kernel 'fill'") && strstr(msg, "global 1048576 x 1 x 1") &&
                strstr(msg, "CL_INVALID_WORK_GROUP_SIZE"),
            "%s: %s", dlcl_status_str(s), msg);
}

static const t_case cases[] = {
    T_CASE(kernel_dir_resolves_each_location_in_order),
    T_CASE(ctx_reads_kernels_from_env_dir_and_runs_them),
    T_CASE(broken_kernel_reports_compiler_log),
    T_CASE(warm_start_builds_nothing),
    T_CASE(corrupt_cache_entries_are_rebuilt),
    T_CASE(no_cache_writes_nothing),
    T_CASE(device_choice_by_dlcl_device),
    T_CASE(tensor_round_trip_and_pool_reuse),
    T_CASE(launch_failure_names_kernel_and_shape),
};

int main(int argc, char **argv)
{
    return t_main(cases, T_COUNT(cases), argc, argv);
}
