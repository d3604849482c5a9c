/* Internal declarations shared by the files of lib/. Not installed. */
#ifndef DLCL_INTERNAL_H
#define DLCL_INTERNAL_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dlcl.h"

#if defined(__GNUC__)
#define DLCL__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define DLCL__PRINTF(f, a)
#endif

#define DLCL__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------ errors (runtime/error.c) */

/* Sets the thread-local message and returns status, so failures read
 * `return dlcl__err(DLCL_ERR_CONFIG, "%s:%d [%s]: ...", ...)`. */
dlcl_status dlcl__err(dlcl_status status, const char *fmt, ...) DLCL__PRINTF(2, 3);
/* Prepends "prefix: " to the current message, keeping status. */
dlcl_status dlcl__err_prefix(dlcl_status status, const char *fmt, ...) DLCL__PRINTF(2, 3);
/* Maps a failed OpenCL call to DLCL_ERR_OPENCL (or OUT_OF_MEMORY) with its error name. */
dlcl_status dlcl__cl_err(cl_int err, const char *what);
const char *dlcl__cl_error_name(cl_int err);
void dlcl__clear_error(void);

/* IEEE binary16 <-> float32 on the host (what vstore_half / vload_half do on the device):
 * round to nearest even, overflow to infinity, subnormals kept, NaN stays NaN. */
uint16_t dlcl__half_from_float(float f);
float dlcl__float_from_half(uint16_t h);

/* Overflow-checked size arithmetic: return false on overflow. */
static inline bool dlcl__mul_ok(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return false;
    *out = a * b;
    return true;
}

/* splitmix64's finaliser: a bijective mix of 64 bits. The one seeded hash of dlcl: weight
 * initialisation, shuffles, dropout and augmentation seeds are all functions of it. */
static inline uint64_t dlcl__mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* splitmix64: the next value of the stream whose state is *s. */
static inline uint64_t dlcl__splitmix64(uint64_t *s) { return dlcl__mix64(*s += 0x9e3779b97f4a7c15ull); }

/* ------------------------------------------------------------ context */

typedef struct rt_program {
    char *name;    /* source file stem, e.g. "elementwise" */
    char *options; /* build options */
    cl_program program;
} rt_program;

typedef struct rt_source {
    char *name; /* file stem */
    char *text;
    size_t len;
    uint64_t hash;
} rt_source;

typedef struct rt_kernel {
    rt_program *prog;
    char *name;
    cl_kernel kernel;
} rt_kernel;

typedef struct rt_pool_entry {
    cl_mem mem;
    size_t bytes;
} rt_pool_entry;

/* One row of the DLCL_PROFILE=1 table: a kernel name, its launches after the first and
 * their wall time; the first launch is apart (drivers such as PoCL compile there). */
typedef struct {
    char name[40];
    size_t launches;
    double ms, first_ms;
} rt_kprof;

struct dlcl_ctx {
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;
    dlcl_device_info info;

    char *kernel_dir;
    char *cache_dir; /* NULL when caching is off */
    rt_source *sources;
    size_t n_sources;

    rt_program **programs; /* every program built in this process, never twice */
    size_t n_programs, cap_programs;
    rt_kernel *kernels;
    size_t n_kernels, cap_kernels;

    rt_pool_entry *pool; /* free device buffers */
    size_t n_pool, cap_pool, pool_bytes;

    size_t wg_1d; /* work-group size for simple 1-D kernels, chosen per device */
    int cpu_device; /* CL_DEVICE_TYPE_CPU: launches without a local size get a fixed one (rt_launch) */
    const char *device_defines; /* build options every program gets for this device (program.c) */
    size_t conv_chunk_floats;   /* convolution workspace per chunk of images (ops/conv.c), chosen per device */
    int gemm_backend;  /* blas_backend; from DLCL_GEMM, default auto */
    int gemm_vector_width; /* CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT: picks the GEMM tile (blas.c) */
    cl_mem blas_scratch; /* transposed GEMM operands (blas.c) */
    size_t blas_scratch_bytes;
    cl_mem blas_pack;    /* B packed into strips for the GEMM kernels (blas.c) */
    size_t blas_pack_bytes;
    cl_mem blas_wide;    /* half-precision operands widened to float (blas.c) */
    int gemm_half_native; /* dlcl's GEMM kernels read a half A as it lies (GPUs), else it is widened first (blas.c) */
    size_t blas_wide_bytes;
    struct fft_plan *fft_plans; /* baked clFFT plans, one per size, batch and direction (fft.c) */
    size_t n_fft_plans, cap_fft_plans;
    size_t fft_bakes; /* plans baked so far (the tests check the cache) */
    int fft_setup;    /* this context holds a reference on clfftSetup */
    int blas_tuning_done; /* stored CLBlast tuning looked up and applied (blas.c) */
    char *blas_tuning_path; /* the tuning file CLBlast runs with; NULL: CLBlast's defaults */

    dlcl_ctx_stats stats;
    rt_kprof *kprof; /* DLCL_PROFILE=1: per-kernel wall time, logged at dlcl_ctx_free */
    size_t n_kprof, cap_kprof;
    int kprof_on;
    dlcl_log_fn log;
    void *log_user;
};

void dlcl__log(const dlcl_ctx *ctx, dlcl_log_level level, const char *fmt, ...)
    DLCL__PRINTF(3, 4);

/* ------------------------------------------------------------ devices (runtime/device.c) */

/* Chooses a device by selector (see dlcl_ctx_params.device). */
dlcl_status rt_device_choose(const char *selector, cl_platform_id *platform,
                             cl_device_id *device);
dlcl_status rt_device_query(cl_platform_id platform, cl_device_id device, int pi, int di,
                            dlcl_device_info *out);

/* ------------------------------------------------------------ programs (runtime/program.c) */

/* Resolves the kernel directory: the first of env_dir, param_dir, build_dir, install_dir
 * (NULLs skipped) that exists. On failure the error lists every path tried. */
dlcl_status rt_kernel_dir_resolve(const char *env_dir, const char *param_dir,
                                  const char *build_dir, const char *install_dir,
                                  char **out);
/* Reads every *.cl file of ctx->kernel_dir into ctx->sources. */
dlcl_status rt_sources_load(dlcl_ctx *ctx);
void rt_sources_free(dlcl_ctx *ctx);

/* Returns the program built from source `name` with `options`, building it (or loading
 * it from the disk cache) on first use. */
dlcl_status rt_program_get(dlcl_ctx *ctx, const char *name, const char *options,
                           rt_program **out);
/* Returns kernel `kernel` of program (name, options); created once per process. */
dlcl_status rt_kernel_get(dlcl_ctx *ctx, const char *program, const char *options,
                          const char *kernel, cl_kernel *out);
void rt_programs_free(dlcl_ctx *ctx);

/* Sets kernel arguments: pairs of (size, pointer), terminated by size 0. */
dlcl_status rt_set_args(cl_kernel k, const char *kname, ...);
#define RT_ARG(v) sizeof(v), (const void *)&(v)
#define RT_ARGS_END ((size_t)0)

/* Enqueues k over `dims` dimensions; global sizes are rounded up to multiples of local
 * (local may be NULL: the driver chooses). Errors name the kernel. */
dlcl_status rt_launch(dlcl_ctx *ctx, cl_kernel k, const char *kname, cl_uint dims,
                      const size_t *global, const size_t *local);
/* 1-D launch over n items with the device's 1-D work-group size. */
dlcl_status rt_launch_1d(dlcl_ctx *ctx, cl_kernel k, const char *kname, size_t n);
/* Milliseconds on the monotonic clock. */
double rt_now_ms(void);
/* Logs the DLCL_PROFILE=1 table (kernels by total wall time), a line per info message. */
void rt_kprof_print(dlcl_ctx *ctx);

/* ------------------------------------------------------------ cache (runtime/cache.c) */

/* Key of a compiled program: everything that changes the binary. */
typedef struct rt_cache_key {
    const char *device_name;
    const char *driver_version;
    const char *platform_version;
    uint64_t source_hash;
    const char *options;
} rt_cache_key;

/* Loads a cached binary. Returns DLCL_OK with *bin (malloc'ed) on a valid entry,
 * DLCL_ERR_NOT_FOUND when there is none, DLCL_ERR_DATA when the entry is corrupt. */
dlcl_status rt_cache_load(const char *dir, const rt_cache_key *key, unsigned char **bin,
                          size_t *len);
/* Writes a binary atomically (temporary file, fsync, rename). */
dlcl_status rt_cache_store(const char *dir, const rt_cache_key *key, const unsigned char *bin,
                           size_t len);
/* Path of the cache entry for key (for tests). */
dlcl_status rt_cache_path(const char *dir, const rt_cache_key *key, char *out, size_t cap);
/* Resolves the cache dir: env DLCL_CACHE_DIR, param, $XDG_CACHE_HOME/dlcl, ~/.cache/dlcl.
 * *out NULL when caching is disabled. */
dlcl_status rt_cache_dir_resolve(const char *param_dir, int no_cache, char **out);

uint64_t rt_hash64(const void *data, size_t len, uint64_t seed);

/* write(2) until all n bytes are out, retrying on EINTR; 0 or -1 (errno set). */
int dlcl__write_all(int fd, const void *buf, size_t n);

/* ------------------------------------------------------------ buffer pool (runtime/pool.c) */

dlcl_status rt_buffer_acquire(dlcl_ctx *ctx, size_t bytes, const char *what, cl_mem *out);
/* Returns a buffer to the pool (its size is the buffer's own); NULL is a no-op. */
void rt_buffer_release(dlcl_ctx *ctx, cl_mem mem);
void rt_pool_free(dlcl_ctx *ctx);

/* ------------------------------------------------------------ tensors (tensor.c) */

struct dlcl_tensor {
    dlcl_ctx *ctx;
    cl_mem mem;
    size_t bytes;
    int ndim;
    int64_t dims[DLCL_MAX_DIMS];
    int64_t numel;
    uint32_t magic; /* guards against freed or foreign handles */
};

#define DLCL__TENSOR_MAGIC 0x544C4344u /* "DCLT" */

static inline bool dlcl__tensor_ok(const dlcl_tensor *t)
{
    return t != NULL && t->magic == DLCL__TENSOR_MAGIC && t->mem != NULL;
}

/* ------------------------------------------------------------ BLAS (blas.c) */

/* The GEMM backends a device can use; chosen per context. CLBlast is the default;
 * tuned parameter sets or dlcl's own kernel slot in as further rows. */
typedef enum blas_backend {
    BLAS_BACKEND_AUTO,    /* dlcl's kernel on CPU devices, CLBlast elsewhere */
    BLAS_BACKEND_CLBLAST,
    BLAS_BACKEND_DLCL,    /* cl_kernels/gemm.cl */
    BLAS_BACKEND_COUNT
} blas_backend;

/* "auto", "clblast", "dlcl": the values of DLCL_GEMM. */
extern const char *const blas_backend_names[BLAS_BACKEND_COUNT];

/* Row-major strided-batched SGEMM on raw buffers; batch 1 is a plain GEMM.
 * a_size etc. are the buffers' sizes in elements, checked before launch. */
typedef struct blas_gemm_args {
    dlcl_transpose ta, tb;
    size_t m, n, k;
    float alpha, beta;
    cl_mem a, b, c;
    size_t a_off, b_off, c_off;
    size_t lda, ldb, ldc;
    size_t a_stride, b_stride, c_stride;
    size_t batch;
    size_t a_size, b_size, c_size;
    size_t b_panel; /* internal to blas.c: B already in strips of the tile width, this far apart (0: plain) */
    int a_half, b_half; /* the operand is stored as binary16 (op_buf.half); C is always float */
} blas_gemm_args;

dlcl_status blas_sgemm(dlcl_ctx *ctx, const blas_gemm_args *g);
/* out[z] = in[z]^T for batch rows x cols matrices (ld_in, s_in) into (ld_out, s_out). */
/* Rows per tile of the R x 16 kernels of 8-wide CPUs (gemm.cl, conv_implicit.cl) for m rows: 6, or 4
 * where the 6-row tiles' overlapping last tile would recompute an eighth of m or more. */
size_t blas_tile_rows(size_t m);
dlcl_status blas_transpose(dlcl_ctx *ctx, cl_mem in, size_t io, size_t ld_in, size_t s_in, size_t rows, size_t cols,
                           size_t batch, cl_mem out, size_t oo, size_t ld_out, size_t s_out);
/* Reads DLCL_GEMM into ctx->gemm_backend; an unknown value is an error naming the valid ones. */
dlcl_status blas_init(dlcl_ctx *ctx);
void blas_free(dlcl_ctx *ctx);

/* ------------------------------------------------------------ FFT (fft.c) */

typedef enum fft_dir {
    FFT_R2C, /* real planes -> Hermitian half-spectra */
    FFT_C2R, /* half-spectra -> real planes, scaled by 1/(nh*nw) */
    FFT_DIR_COUNT
} fft_dir;

/* Offsets of FFT buffers other than 0 are multiples of this (4 KiB, at least any device's
 * CL_DEVICE_MEM_BASE_ADDR_ALIGN): clFFT takes whole buffers, so they become sub-buffers. */
#define FFT_ALIGN_FLOATS 1024

/* The smallest length >= n with no prime factor above 7 (lengths clFFT transforms). */
int fft_good_length(int n);
/* batch 2-D real FFTs of nh x nw planes (lengths from fft_good_length), out of place.
 * FFT_R2C: real planes nh*nw floats apart at in -> half-spectra nh x (nw/2+1) interleaved
 * complex, nh*(nw/2+1)*2 floats apart, at out; FFT_C2R the reverse, scaled by 1/(nh*nw)
 * (its input may be overwritten). Offsets in floats. The plan is baked once per context. */
dlcl_status fft_2d(dlcl_ctx *ctx, fft_dir dir, int nh, int nw, size_t batch, cl_mem in, size_t in_off, cl_mem out,
                   size_t out_off);
/* Destroys the context's plans and drops its reference on clfftSetup. */
void fft_free(dlcl_ctx *ctx);

#endif /* DLCL_INTERNAL_H */
