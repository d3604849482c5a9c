/* Kernel sources, program building with the disk cache, kernel objects, launches.
 *
 * Each .cl file in the kernel directory is one program source, named by its stem. A
 * program is (source, build options); it is built at most once per process and kept in
 * the context's registry. Sources must be self-contained (no #include), so the source
 * hash covers everything that goes into the binary; the one shared text, storage.clh (the
 * storage types of half-precision buffers), is prepended to each at load time. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../internal.h"

#define BASE_OPTIONS "-cl-std=CL1.2"
#define RT_CPU_LOCAL0 16     /* see rt_launch */
#define RT_CPU_LOCAL_MAX 256
#define MAX_SOURCE_BYTES ((size_t)16 << 20)

static bool is_dir(const char *p)
{
    struct stat st;
    return p != NULL && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

dlcl_status rt_kernel_dir_resolve(const char *env_dir, const char *param_dir, const char *build_dir,
                                  const char *install_dir, char **out)
{
    const char *cands[] = {env_dir, param_dir, build_dir, install_dir};
    const char *labels[] = {"DLCL_KERNEL_DIR", "kernel_dir parameter", "build tree", "install dir"};
    char tried[4096] = "";
    size_t len = 0;
    *out = NULL;
    for (size_t i = 0; i < DLCL__ARRAY_LEN(cands); i++) {
        if (cands[i] == NULL || cands[i][0] == '\0') continue;
        if (is_dir(cands[i])) {
            *out = strdup(cands[i]);
            return *out ? DLCL_OK : dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        }
        if (len < sizeof tried)
            len += (size_t)snprintf(tried + len, sizeof tried - len, "\n  %s (%s)", cands[i], labels[i]);
        /* An explicit DLCL_KERNEL_DIR that does not exist is a mistake, not a hint. */
        if (i == 0) break;
    }
    return dlcl__err(DLCL_ERR_NOT_FOUND,
                     "kernel directory not found; tried:%s\nset DLCL_KERNEL_DIR to the "
                     "directory that holds dlcl's .cl files", len ? tried : " (nothing)");
}

static dlcl_status read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return dlcl__err(DLCL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 16384;
            char *nb = cap <= MAX_SOURCE_BYTES ? realloc(buf, cap) : NULL;
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return dlcl__err(DLCL_ERR_IO, "%s: too large or out of memory", path);
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r < 4096) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return dlcl__err(DLCL_ERR_IO, "read error on %s", path);
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return DLCL_OK;
}

static int cmp_source(const void *a, const void *b)
{
    return strcmp(((const rt_source *)a)->name, ((const rt_source *)b)->name);
}

#define PRELUDE_NAME "storage.clh"

/* prelude, then "#line 1" so that build logs give the file's own line numbers, then text */
static dlcl_status prepend(const char *prelude, size_t plen, char **text, size_t *len)
{
    static const char mark[] = "#line 1\n";
    size_t n = plen + sizeof mark - 1 + *len;
    char *t = malloc(n + 1);
    if (t == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    memcpy(t, prelude, plen);
    memcpy(t + plen, mark, sizeof mark - 1);
    memcpy(t + plen + sizeof mark - 1, *text, *len + 1);
    free(*text);
    *text = t, *len = n;
    return DLCL_OK;
}

dlcl_status rt_sources_load(dlcl_ctx *ctx)
{
    char *prelude = NULL;
    size_t plen = 0;
    char ppath[4096];
    snprintf(ppath, sizeof ppath, "%s/%s", ctx->kernel_dir, PRELUDE_NAME);
    if (read_file(ppath, &prelude, &plen) != DLCL_OK)
        return dlcl__err(DLCL_ERR_NOT_FOUND, "kernel directory %s: cannot read %s, which every kernel source needs "
                         "(%s)", ctx->kernel_dir, PRELUDE_NAME, dlcl_last_error());
    DIR *d = opendir(ctx->kernel_dir);
    if (d == NULL) {
        free(prelude);
        return dlcl__err(DLCL_ERR_NOT_FOUND, "cannot open kernel directory %s: %s", ctx->kernel_dir,
                         strerror(errno));
    }
    dlcl_status s = DLCL_OK;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl < 4 || strcmp(e->d_name + nl - 3, ".cl") != 0 || e->d_name[0] == '.') continue;
        if (ctx->n_sources == cap) {
            cap = cap ? cap * 2 : 16;
            rt_source *ns = realloc(ctx->sources, cap * sizeof *ns);
            if (ns == NULL) {
                s = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
                break;
            }
            ctx->sources = ns;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", ctx->kernel_dir, e->d_name);
        rt_source *src = &ctx->sources[ctx->n_sources];
        memset(src, 0, sizeof *src);
        s = read_file(path, &src->text, &src->len);
        if (s != DLCL_OK) break;
        if ((s = prepend(prelude, plen, &src->text, &src->len)) != DLCL_OK) {
            free(src->text);
            break;
        }
        src->name = strndup(e->d_name, nl - 3);
        if (src->name == NULL) {
            free(src->text);
            s = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
            break;
        }
        src->hash = rt_hash64(src->text, src->len, 0);
        ctx->n_sources++;
    }
    closedir(d);
    free(prelude);
    if (s == DLCL_OK && ctx->n_sources == 0)
        s = dlcl__err(DLCL_ERR_NOT_FOUND, "kernel directory %s holds no .cl file", ctx->kernel_dir);
    if (s == DLCL_OK) qsort(ctx->sources, ctx->n_sources, sizeof *ctx->sources, cmp_source);
    ctx->stats.kernel_sources = ctx->n_sources;
    return s;
}

void rt_sources_free(dlcl_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_sources; i++) {
        free(ctx->sources[i].name);
        free(ctx->sources[i].text);
    }
    free(ctx->sources);
    ctx->sources = NULL;
    ctx->n_sources = 0;
}

static const rt_source *find_source(const dlcl_ctx *ctx, const char *name)
{
    for (size_t i = 0; i < ctx->n_sources; i++)
        if (strcmp(ctx->sources[i].name, name) == 0) return &ctx->sources[i];
    return NULL;
}

static dlcl_status build_log_err(dlcl_ctx *ctx, cl_program prog, const char *name, const char *options,
                                 cl_int err)
{
    size_t n = 0;
    char *log = NULL;
    if (clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) == CL_SUCCESS &&
        n > 0 && (log = malloc(n + 1)) != NULL) {
        if (clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, n, log, NULL) != CL_SUCCESS)
            n = 0;
        log[n] = '\0';
    }
    dlcl_status s = dlcl__err(DLCL_ERR_BUILD, "kernel source '%s.cl' (options '%s') failed to build on %s: %s (%d)\n%s",
                              name, options, ctx->info.name, dlcl__cl_error_name(err), (int)err,
                              log ? log : "(no build log)");
    free(log);
    return s;
}

static dlcl_status get_binary(dlcl_ctx *ctx, cl_program prog, unsigned char **bin, size_t *len)
{
    size_t sz = 0;
    cl_int err = clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof sz, &sz, NULL);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clGetProgramInfo(BINARY_SIZES)");
    (void)ctx;
    if (sz == 0) return dlcl__err(DLCL_ERR_OPENCL, "driver returned an empty program binary");
    unsigned char *b = malloc(sz);
    if (b == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    err = clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof b, &b, NULL);
    if (err != CL_SUCCESS) {
        free(b);
        return dlcl__cl_err(err, "clGetProgramInfo(BINARIES)");
    }
    *bin = b;
    *len = sz;
    return DLCL_OK;
}

static dlcl_status try_cached(dlcl_ctx *ctx, const rt_cache_key *key, const char *opts, cl_program *out)
{
    unsigned char *bin = NULL;
    size_t len = 0;
    dlcl_status s = rt_cache_load(ctx->cache_dir, key, &bin, &len);
    if (s == DLCL_ERR_NOT_FOUND) return s;
    if (s != DLCL_OK) {
        ctx->stats.cache_rejected++;
        dlcl__log(ctx, DLCL_LOG_WARN, "%s; rebuilding", dlcl_last_error());
        return s;
    }
    cl_int err, bin_status = CL_SUCCESS;
    const unsigned char *cb = bin;
    cl_program p = clCreateProgramWithBinary(ctx->context, 1, &ctx->device, &len, &cb, &bin_status, &err);
    free(bin);
    if (err == CL_SUCCESS && bin_status == CL_SUCCESS) {
        err = clBuildProgram(p, 1, &ctx->device, opts, NULL, NULL);
        if (err == CL_SUCCESS) {
            *out = p;
            return DLCL_OK;
        }
    }
    if (p) clReleaseProgram(p);
    ctx->stats.cache_rejected++;
    dlcl__log(ctx, DLCL_LOG_WARN, "cached binary rejected by the driver (%s); rebuilding",
              dlcl__cl_error_name(err != CL_SUCCESS ? err : bin_status));
    return DLCL_ERR_DATA;
}

static dlcl_status build_program(dlcl_ctx *ctx, const rt_source *src, const char *options, cl_program *out)
{
    char opts[2048];
    int n = snprintf(opts, sizeof opts, "%s %s %s", BASE_OPTIONS, ctx->device_defines ? ctx->device_defines : "",
                     options);
    if (n < 0 || (size_t)n >= sizeof opts) return dlcl__err(DLCL_ERR_INVALID_ARG, "build options too long");
    char platform_version[128] = "";
    clGetPlatformInfo(ctx->platform, CL_PLATFORM_VERSION, sizeof platform_version - 1, platform_version, NULL);
    rt_cache_key key = {ctx->info.name, ctx->info.driver_version, platform_version, src->hash, opts};
    if (ctx->cache_dir != NULL && try_cached(ctx, &key, opts, out) == DLCL_OK) {
        ctx->stats.programs_cached++;
        return DLCL_OK;
    }
    cl_int err;
    const char *text = src->text;
    cl_program p = clCreateProgramWithSource(ctx->context, 1, &text, &src->len, &err);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clCreateProgramWithSource");
    err = clBuildProgram(p, 1, &ctx->device, opts, NULL, NULL);
    if (err != CL_SUCCESS) {
        dlcl_status s = build_log_err(ctx, p, src->name, options, err);
        clReleaseProgram(p);
        return s;
    }
    ctx->stats.programs_compiled++;
    if (ctx->cache_dir != NULL) {
        unsigned char *bin = NULL;
        size_t len = 0;
        dlcl_status s = get_binary(ctx, p, &bin, &len);
        if (s == DLCL_OK) s = rt_cache_store(ctx->cache_dir, &key, bin, len);
        if (s != DLCL_OK) /* a cache that cannot be written costs time, not correctness */
            dlcl__log(ctx, DLCL_LOG_WARN, "program cache: %s", dlcl_last_error());
        free(bin);
    }
    *out = p;
    return DLCL_OK;
}

dlcl_status rt_program_get(dlcl_ctx *ctx, const char *name, const char *options, rt_program **out)
{
    if (options == NULL) options = "";
    for (size_t i = 0; i < ctx->n_programs; i++) {
        rt_program *p = ctx->programs[i];
        if (strcmp(p->name, name) == 0 && strcmp(p->options, options) == 0) {
            *out = p;
            return DLCL_OK;
        }
    }
    const rt_source *src = find_source(ctx, name);
    if (src == NULL)
        return dlcl__err(DLCL_ERR_NOT_FOUND, "kernel source '%s.cl' not found in %s", name, ctx->kernel_dir);
    if (ctx->n_programs == ctx->cap_programs) {
        size_t cap = ctx->cap_programs ? ctx->cap_programs * 2 : 16;
        rt_program **np = realloc(ctx->programs, cap * sizeof *np);
        if (np == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        ctx->programs = np;
        ctx->cap_programs = cap;
    }
    rt_program *p = calloc(1, sizeof *p);
    if (p == NULL || (p->name = strdup(name)) == NULL || (p->options = strdup(options)) == NULL) {
        if (p) free(p->name);
        free(p);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    dlcl_status s = build_program(ctx, src, options, &p->program);
    if (s != DLCL_OK) {
        free(p->name);
        free(p->options);
        free(p);
        return s;
    }
    ctx->programs[ctx->n_programs++] = p;
    *out = p;
    return DLCL_OK;
}

dlcl_status rt_kernel_get(dlcl_ctx *ctx, const char *program, const char *options, const char *kernel,
                          cl_kernel *out)
{
    rt_program *p;
    dlcl_status s = rt_program_get(ctx, program, options, &p);
    if (s != DLCL_OK) return s;
    for (size_t i = 0; i < ctx->n_kernels; i++) {
        if (ctx->kernels[i].prog == p && strcmp(ctx->kernels[i].name, kernel) == 0) {
            *out = ctx->kernels[i].kernel;
            return DLCL_OK;
        }
    }
    if (ctx->n_kernels == ctx->cap_kernels) {
        size_t cap = ctx->cap_kernels ? ctx->cap_kernels * 2 : 32;
        rt_kernel *nk = realloc(ctx->kernels, cap * sizeof *nk);
        if (nk == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        ctx->kernels = nk;
        ctx->cap_kernels = cap;
    }
    cl_int err;
    cl_kernel k = clCreateKernel(p->program, kernel, &err);
    if (err != CL_SUCCESS)
        return dlcl__err(err == CL_INVALID_KERNEL_NAME ? DLCL_ERR_NOT_FOUND : DLCL_ERR_OPENCL,
                         "clCreateKernel('%s' in %s.cl) failed: %s", kernel, program, dlcl__cl_error_name(err));
    char *kn = strdup(kernel);
    if (kn == NULL) {
        clReleaseKernel(k);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    ctx->kernels[ctx->n_kernels++] = (rt_kernel){p, kn, k};
    *out = k;
    return DLCL_OK;
}

void rt_programs_free(dlcl_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_kernels; i++) {
        clReleaseKernel(ctx->kernels[i].kernel);
        free(ctx->kernels[i].name);
    }
    free(ctx->kernels);
    ctx->kernels = NULL;
    ctx->n_kernels = ctx->cap_kernels = 0;
    for (size_t i = 0; i < ctx->n_programs; i++) {
        clReleaseProgram(ctx->programs[i]->program);
        free(ctx->programs[i]->name);
        free(ctx->programs[i]->options);
        free(ctx->programs[i]);
    }
    free(ctx->programs);
    ctx->programs = NULL;
    ctx->n_programs = ctx->cap_programs = 0;
}

dlcl_status rt_set_args(cl_kernel k, const char *kname, ...)
{
    va_list ap;
    va_start(ap, kname);
    for (cl_uint i = 0;; i++) {
        size_t sz = va_arg(ap, size_t);
        if (sz == 0) break;
        const void *v = va_arg(ap, const void *);
        cl_int err = clSetKernelArg(k, i, sz, v);
        if (err != CL_SUCCESS) {
            va_end(ap);
            return dlcl__err(DLCL_ERR_OPENCL, "clSetKernelArg(%s, arg %u) failed: %s", kname, i,
                             dlcl__cl_error_name(err));
        }
    }
    va_end(ap);
    return DLCL_OK;
}

double rt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* Waits for the launch and books its wall time under the kernel's name. */
static cl_int rt_kprof_add(dlcl_ctx *ctx, const char *kname, double t0)
{
    cl_int err = clFinish(ctx->queue);
    double ms = rt_now_ms() - t0;
    size_t i = 0;
    while (i < ctx->n_kprof && strncmp(ctx->kprof[i].name, kname, sizeof ctx->kprof[i].name - 1) != 0) i++;
    if (i == ctx->n_kprof) {
        if (ctx->n_kprof == ctx->cap_kprof) {
            size_t cap = ctx->cap_kprof ? 2 * ctx->cap_kprof : 16;
            rt_kprof *p = realloc(ctx->kprof, cap * sizeof *p);
            if (p == NULL) return err; /* profiling is best effort */
            ctx->kprof = p, ctx->cap_kprof = cap;
        }
        rt_kprof *r = &ctx->kprof[ctx->n_kprof++];
        snprintf(r->name, sizeof r->name, "%s", kname);
        r->launches = 0, r->ms = 0.0, r->first_ms = ms;
        return err;
    }
    ctx->kprof[i].launches++;
    ctx->kprof[i].ms += ms;
    return err;
}

static int kprof_cmp(const void *a, const void *b)
{
    double d = ((const rt_kprof *)b)->ms - ((const rt_kprof *)a)->ms;
    return (d > 0) - (d < 0);
}

void rt_kprof_print(dlcl_ctx *ctx)
{
    if (ctx->n_kprof == 0) return;
    double total = 0;
    for (size_t i = 0; i < ctx->n_kprof; i++) total += ctx->kprof[i].ms;
    qsort(ctx->kprof, ctx->n_kprof, sizeof *ctx->kprof, kprof_cmp);
    dlcl__log(ctx, DLCL_LOG_INFO, "DLCL_PROFILE: kernel wall time, each launch waited for; the first launch of "
                                  "each kernel is counted apart (drivers compile there)");
    dlcl__log(ctx, DLCL_LOG_INFO, "%-24s %10s %12s %8s %6s %10s", "kernel", "launches", "total ms", "ms each", "share",
              "first ms");
    for (size_t i = 0; i < ctx->n_kprof; i++) {
        const rt_kprof *r = &ctx->kprof[i];
        dlcl__log(ctx, DLCL_LOG_INFO, "%-24s %10zu %12.1f %8.3f %5.1f%% %10.1f", r->name, r->launches, r->ms,
                  r->launches ? r->ms / r->launches : 0.0, total > 0 ? 100.0 * r->ms / total : 0.0, r->first_ms);
    }
}

/* The first local size of a CPU launch without one (see rt_launch): the first global size
 * rounded up to RT_CPU_LOCAL0, at most RT_CPU_LOCAL_MAX, and small enough that the launch
 * has two work-groups per compute unit where it can: PoCL runs a work-group on one thread,
 * and a launch of one image's rows (im2col over ResNet's 7x7 stem: 147 rows, one image per
 * chunk) was a single work-group on a single core. */
static size_t cpu_local0(const dlcl_ctx *ctx, cl_uint dims, const size_t *global)
{
    size_t l0 = (global[0] + RT_CPU_LOCAL0 - 1) / RT_CPU_LOCAL0 * RT_CPU_LOCAL0, rest = 1;
    if (l0 > RT_CPU_LOCAL_MAX) l0 = RT_CPU_LOCAL_MAX;
    for (cl_uint i = 1; i < dims; i++) rest *= global[i] ? global[i] : 1;
    size_t want = 2 * (ctx->info.compute_units ? ctx->info.compute_units : 1);
    if (rest >= want || (global[0] + l0 - 1) / l0 * rest >= want) return l0;
    size_t per = (global[0] + (want + rest - 1) / rest - 1) / ((want + rest - 1) / rest); /* items per group */
    size_t fit = (per + RT_CPU_LOCAL0 - 1) / RT_CPU_LOCAL0 * RT_CPU_LOCAL0;
    return fit < l0 ? fit : l0;
}

dlcl_status rt_launch(dlcl_ctx *ctx, cl_kernel k, const char *kname, cl_uint dims, const size_t *global,
                      const size_t *local)
{
    size_t g[3] = {1, 1, 1};
    if (dims < 1 || dims > 3) return dlcl__err(DLCL_ERR_INVALID_ARG, "launch of '%s': %u dimensions", kname, dims);
    /* On a CPU device a launch without a local size gets L x 1 x 1, L the first global size
     * rounded up to RT_CPU_LOCAL0 (at most RT_CPU_LOCAL_MAX), not PoCL's choice: PoCL picks a
     * local size that divides the whole global size and compiles the kernel again for each
     * new one, so every chunk or batch size cost a compile (LeNet's cold start: 85 variants,
     * 28 more when conv find tried three chunk sizes). The first dimension of dlcl's launches
     * is a layer's geometry (rows, channels, pixels), the chunk and batch are the others, so
     * this gives one variant per geometry. A fixed 16 x 1 x 1 did the same for compiles but
     * made a training loop 5-10% slower (many more work-groups). Every kernel launched this
     * way tests its first index against its size, so the global size can be rounded up. */
    size_t cpu_local[3] = {1, 1, 1};
    if (local == NULL && ctx->cpu_device) {
        cpu_local[0] = cpu_local0(ctx, dims, global);
        local = cpu_local;
    }
    for (cl_uint i = 0; i < dims; i++) {
        g[i] = global[i];
        if (g[i] == 0) return DLCL_OK; /* nothing to do */
        if (local != NULL && local[i] > 0) g[i] = (g[i] + local[i] - 1) / local[i] * local[i];
    }
    double t0 = ctx->kprof_on ? rt_now_ms() : 0.0;
    cl_int err = clEnqueueNDRangeKernel(ctx->queue, k, dims, NULL, g, local, 0, NULL, NULL);
    if (err == CL_SUCCESS && ctx->kprof_on) err = rt_kprof_add(ctx, kname, t0);
    if (err != CL_SUCCESS) {
        char shape[160];
        int at = snprintf(shape, sizeof shape, "global %zu x %zu x %zu", g[0], dims > 1 ? g[1] : 1, dims > 2 ? g[2] : 1);
        if (local != NULL)
            snprintf(shape + at, sizeof shape - (size_t)at, ", local %zu x %zu x %zu", local[0], dims > 1 ? local[1] : 1,
                     dims > 2 ? local[2] : 1);
        return dlcl__err(err == CL_MEM_OBJECT_ALLOCATION_FAILURE ? DLCL_ERR_OUT_OF_MEMORY : DLCL_ERR_OPENCL,
                         "launch of kernel '%s' (%s) failed: %s (%d)", kname, shape,
                         dlcl__cl_error_name(err), (int)err);
    }
    return DLCL_OK;
}

dlcl_status rt_launch_1d(dlcl_ctx *ctx, cl_kernel k, const char *kname, size_t n)
{
    size_t local = ctx->wg_1d;
    return rt_launch(ctx, k, kname, 1, &n, &local);
}

dlcl_status dlcl_ctx_build_all(dlcl_ctx *ctx)
{
    if (ctx == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_ctx_build_all: ctx is NULL");
    for (size_t i = 0; i < ctx->n_sources; i++) {
        rt_program *p;
        dlcl_status s = rt_program_get(ctx, ctx->sources[i].name, "", &p);
        if (s != DLCL_OK) return s;
    }
    return DLCL_OK;
}
