/* dlcl — a portable OpenCL deep-learning runtime.
 *
 * The one public header. Every handle is opaque; every fallible function returns a
 * dlcl_status (DLCL_OK == 0) and writes its result through an out-pointer. On failure
 * dlcl_last_error() holds a thread-local message with context (file and line, OpenCL
 * error name, kernel name, compiler log). The library never prints and never exits;
 * log lines go through the callback in dlcl_ctx_params. Every _free accepts NULL.
 */
#ifndef DLCL_H
#define DLCL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(DLCL_BUILDING) && defined(__GNUC__)
#define DLCL_API __attribute__((visibility("default")))
#else
#define DLCL_API
#endif

#define DLCL_VERSION_MAJOR 0
#define DLCL_VERSION_MINOR 1
#define DLCL_VERSION_PATCH 0
#define DLCL_VERSION_STRING "0.1.0"

typedef enum dlcl_status {
    DLCL_OK = 0,
    DLCL_ERR_INVALID_ARG,   /* NULL pointer, bad handle, out-of-range value */
    DLCL_ERR_NO_DEVICE,     /* no OpenCL platform/device, or DLCL_DEVICE matched none */
    DLCL_ERR_OPENCL,        /* an OpenCL call failed; the message names it */
    DLCL_ERR_BUILD,         /* a kernel failed to compile; the message holds the log */
    DLCL_ERR_NOT_FOUND,     /* a file or directory is missing; the message lists paths */
    DLCL_ERR_IO,            /* read/write failure */
    DLCL_ERR_OUT_OF_MEMORY, /* host or device allocation failed or would exceed limits */
    DLCL_ERR_BLAS,          /* CLBlast reported an error */
    DLCL_ERR_CONFIG,        /* bad configuration (file:line [section]: ...) */
    DLCL_ERR_DATA,          /* malformed data file */
    DLCL_ERR_SHAPE,         /* incompatible tensor shapes */
    DLCL_ERR_CHECKPOINT,    /* malformed or mismatching checkpoint */
    DLCL_ERR_NUMERIC,       /* non-finite values */
    DLCL_ERR_INTERRUPTED,   /* stopped on request */
    DLCL_STATUS_COUNT
} dlcl_status;

/* Short constant name of a status ("DLCL_ERR_BUILD"); "unknown status" if out of range. */
DLCL_API const char *dlcl_status_str(dlcl_status s);

/* Message of the last failure on this thread; "" if none. Valid until the next call. */
DLCL_API const char *dlcl_last_error(void);

/* ---------------------------------------------------------------- context */

typedef struct dlcl_ctx dlcl_ctx;

typedef enum dlcl_log_level {
    DLCL_LOG_DEBUG,
    DLCL_LOG_INFO,
    DLCL_LOG_WARN,
    DLCL_LOG_LEVEL_COUNT
} dlcl_log_level;

typedef void (*dlcl_log_fn)(dlcl_log_level level, const char *msg, void *user);

/* Options of dlcl_ctx_create. Zero-initialise, then set what you need; every field
 * left 0/NULL takes the default. Environment variables win over these fields. */
typedef struct dlcl_ctx_params {
    const char *device;     /* "platform:device" indices or a name substring; NULL = first GPU,
                               else first device. Env DLCL_DEVICE overrides. */
    const char *kernel_dir; /* directory of .cl sources; NULL = build tree, then install dir.
                               Env DLCL_KERNEL_DIR overrides. */
    const char *cache_dir;  /* compiled-program cache; NULL = $XDG_CACHE_HOME/dlcl or
                               ~/.cache/dlcl. Env DLCL_CACHE_DIR overrides. */
    int no_cache;           /* 1 = never read or write the disk cache. Env DLCL_NO_CACHE=1. */
    dlcl_log_fn log;        /* optional log sink; the library prints nothing itself */
    void *log_user;
} dlcl_ctx_params;

/* Opens the chosen device, creates a context and an in-order queue, and reads every
 * .cl source of the kernel directory. params may be NULL (all defaults). */
DLCL_API dlcl_status dlcl_ctx_create(const dlcl_ctx_params *params, dlcl_ctx **out);
DLCL_API void dlcl_ctx_free(dlcl_ctx *ctx);

/* Name of the device in use, owned by ctx. NULL if ctx is NULL. */
DLCL_API const char *dlcl_ctx_device_name(const dlcl_ctx *ctx);

/* Directory the kernel sources were read from, owned by ctx. */
DLCL_API const char *dlcl_ctx_kernel_dir(const dlcl_ctx *ctx);

/* Counters since the context was created. */
typedef struct dlcl_ctx_stats {
    uint64_t programs_compiled;  /* clBuildProgram from source */
    uint64_t programs_cached;    /* loaded from the disk cache as a binary */
    uint64_t cache_rejected;     /* cache entries found corrupt or stale and rebuilt */
    uint64_t pool_hits;          /* device buffers reused from the pool */
    uint64_t pool_misses;        /* device buffers newly allocated */
    uint64_t kernel_sources;     /* .cl files read at start-up */
} dlcl_ctx_stats;

DLCL_API dlcl_status dlcl_ctx_get_stats(const dlcl_ctx *ctx, dlcl_ctx_stats *out);

/* Builds (or loads from cache) the default variant of every kernel source, as the
 * runtime will first use them. Useful to warm the cache and to time start-up. */
DLCL_API dlcl_status dlcl_ctx_build_all(dlcl_ctx *ctx);

/* Blocks until every queued command has finished. */
DLCL_API dlcl_status dlcl_ctx_finish(dlcl_ctx *ctx);

/* ---------------------------------------------------------------- devices */

typedef struct dlcl_device_info {
    int platform_index, device_index;
    char platform_name[128];
    char name[128];
    char vendor[128];
    char type[32];           /* "GPU", "CPU", "ACCELERATOR", "OTHER" */
    char driver_version[64];
    char opencl_c_version[64];
    uint32_t compute_units;
    uint64_t global_mem_bytes;
    uint64_t local_mem_bytes;
    uint64_t max_alloc_bytes;
    size_t max_work_group_size;
    int fp16, fp64;          /* cl_khr_fp16 / cl_khr_fp64 reported */
} dlcl_device_info;

/* Lists every device of every platform. *out is malloc'ed; release with dlcl_devices_free.
 * *chosen is the index in the list dlcl would pick for the given selector (NULL = default
 * rule, env DLCL_DEVICE honoured), or -1 if the selector matches none. */
DLCL_API dlcl_status dlcl_devices_list(const char *selector, dlcl_device_info **out, size_t *count,
                              int *chosen);
DLCL_API void dlcl_devices_free(dlcl_device_info *list);

/* ---------------------------------------------------------------- tensors */

#define DLCL_MAX_DIMS 8

/* Element types. Tensors made with dlcl_tensor_create are float32; int32 holds labels and
 * (later) token ids. */
typedef enum dlcl_dtype { DLCL_FLOAT32, DLCL_INT32, DLCL_DTYPE_COUNT } dlcl_dtype;

typedef struct dlcl_tensor dlcl_tensor;

/* A float32 tensor in device memory, contiguous, row-major (NCHW for images).
 * Contents are undefined until written. Buffers come from the context's pool. */
DLCL_API dlcl_status dlcl_tensor_create(dlcl_ctx *ctx, int ndim, const int64_t *dims, dlcl_tensor **out);
/* Returns the buffer to the pool. */
DLCL_API void dlcl_tensor_free(dlcl_tensor *t);

DLCL_API int dlcl_tensor_ndim(const dlcl_tensor *t);            /* -1 for NULL */
DLCL_API int64_t dlcl_tensor_dim(const dlcl_tensor *t, int i);  /* -1 if out of range */
DLCL_API int64_t dlcl_tensor_numel(const dlcl_tensor *t);       /* -1 for NULL */

/* Copies count floats from host to the tensor starting at element offset (blocking). */
DLCL_API dlcl_status dlcl_tensor_upload(dlcl_tensor *t, const float *src, size_t offset, size_t count);
/* Copies count floats from the tensor starting at element offset to host (blocking). */
DLCL_API dlcl_status dlcl_tensor_download(const dlcl_tensor *t, float *dst, size_t offset, size_t count);
/* Sets every element to value. */
DLCL_API dlcl_status dlcl_tensor_fill(dlcl_tensor *t, float value);

/* ---------------------------------------------------------------- BLAS */

typedef enum dlcl_transpose { DLCL_NO_TRANS = 0, DLCL_TRANS = 1 } dlcl_transpose;

/* C = alpha * op(A) * op(B) + beta * C, row-major. op(A) is m x k, op(B) is k x n,
 * C is m x n. Offsets and leading dimensions are in elements. Every access is checked
 * against the tensors' sizes before launch. */
DLCL_API dlcl_status dlcl_sgemm(dlcl_ctx *ctx, dlcl_transpose ta, dlcl_transpose tb,
                       size_t m, size_t n, size_t k, float alpha,
                       const dlcl_tensor *a, size_t a_off, size_t lda,
                       const dlcl_tensor *b, size_t b_off, size_t ldb, float beta,
                       dlcl_tensor *c, size_t c_off, size_t ldc);

/* batch independent GEMMs; matrix i starts at off + i * stride in each tensor. */
DLCL_API dlcl_status dlcl_sgemm_strided_batched(dlcl_ctx *ctx, dlcl_transpose ta, dlcl_transpose tb,
                                       size_t m, size_t n, size_t k, float alpha,
                                       const dlcl_tensor *a, size_t a_off, size_t lda,
                                       size_t a_stride,
                                       const dlcl_tensor *b, size_t b_off, size_t ldb,
                                       size_t b_stride, float beta,
                                       dlcl_tensor *c, size_t c_off, size_t ldc,
                                       size_t c_stride, size_t batch);


/* ---------------------------------------------------------------- CLBlast tuning (dlcl-tune) */

/* The parameters CLBlast's own tuners (clblast_tuner_xgemm, ...; Debian's clblast-utils)
 * found fastest on a device, one set per CLBlast kernel. dlcl-tune stores them in the cache
 * directory, keyed by device name and driver version; a context applies them with
 * CLBlastOverrideParameters before its first CLBlast call (so only where CLBlast runs the
 * GEMMs: GPUs by default, see DLCL_GEMM), logging what it applied. */
typedef struct dlcl_tuning dlcl_tuning;

typedef struct dlcl_tuning_kernel {
    const char *kernel;       /* CLBlast's kernel name: "Xgemm", "XgemmDirect", "Copy", ... */
    const char *family;       /* the tuner's kernel family: "xgemm", "xgemm_direct", "copy", ... */
    double time_ms;           /* the tuner's time for this set, the lowest it measured */
    size_t m, n, k;           /* the problem it tuned on (0 where the tuner takes none) */
    size_t n_params;
    const char *const *names; /* "MWG", ...: n_params of them, owned by the dlcl_tuning */
    const size_t *values;
} dlcl_tuning_kernel;

DLCL_API dlcl_status dlcl_tuning_create(dlcl_tuning **out);
DLCL_API void dlcl_tuning_free(dlcl_tuning *t);
/* Adds the fastest configuration of one tuner JSON file (its text; `what` names it in
 * errors), keeping per kernel the lowest time over every file added, as CLBlast's database
 * scripts do (the xgemm tuner writes a file per phase: xgemm_1, _2, _11, _12). Single
 * precision only. A malformed file is DLCL_ERR_DATA and leaves t as it was. */
DLCL_API dlcl_status dlcl_tuning_add_tuner_json(dlcl_tuning *t, const char *json, const char *what);
DLCL_API size_t dlcl_tuning_count(const dlcl_tuning *t);
/* Kernel i (< count); out's pointers live as long as t. */
DLCL_API dlcl_status dlcl_tuning_get(const dlcl_tuning *t, size_t i, dlcl_tuning_kernel *out);
/* Store (atomically), load or remove the tuning of device dev in cache_dir (NULL: the
 * directory a context uses: DLCL_CACHE_DIR, $XDG_CACHE_HOME/dlcl, ~/.cache/dlcl; none with
 * DLCL_NO_CACHE). path (may be NULL) receives the file's path. Load: DLCL_ERR_NOT_FOUND when nothing is stored,
 * DLCL_ERR_DATA for a damaged file; *out is freed with dlcl_tuning_free. */
DLCL_API dlcl_status dlcl_tuning_store(const dlcl_tuning *t, const dlcl_device_info *dev, const char *cache_dir,
                                       char *path, size_t cap);
DLCL_API dlcl_status dlcl_tuning_load(const dlcl_device_info *dev, const char *cache_dir, dlcl_tuning **out,
                                      char *path, size_t cap);
DLCL_API dlcl_status dlcl_tuning_clear(const dlcl_device_info *dev, const char *cache_dir, char *path, size_t cap);


/* ---------------------------------------------------------------- networks */

typedef struct dlcl_net dlcl_net;

/* The config as dlcl reads it: [vars] substituted, [for] blocks and `if` expanded, the
 * overrides applied ("section.key=value"; "vars.NAME=value" before the expansion), as INI
 * text with each section's source line in a comment. *text is malloc'ed: free() it.
 * dlcl-train --expand prints it. */
DLCL_API dlcl_status dlcl_config_expand(const char *config_path, const char *const *overrides, size_t n_overrides,
                                        char **text);

/* Builds a network from an INI file (see README "Configuration"): parses and validates
 * every section, infers shapes, creates a context on the configured device (params may be
 * NULL; its device is used when the config has no device= and DLCL_DEVICE is unset),
 * allocates parameters, activations and optimizer state, and initialises the weights like
 * PyTorch's defaults from [net] seed. overrides are "section.key=value" strings applied
 * before validation. Errors name file, line and section. */
DLCL_API dlcl_status dlcl_net_create(const char *config_path, const char *const *overrides, size_t n_overrides,
                                     const dlcl_ctx_params *params, dlcl_net **out);
/* The same net for inference only (dlcl-eval, dlcl-predict): no gradients, optimizer state
 * or gradient buffers, and the layer outputs share device buffers by liveness (a chain of
 * layers needs two). Evaluation, prediction, logits and loading weights work; training,
 * profiling and saving return DLCL_ERR_INVALID_ARG. */
DLCL_API dlcl_status dlcl_net_create_inference(const char *config_path, const char *const *overrides,
                                               size_t n_overrides, const dlcl_ctx_params *params, dlcl_net **out);
DLCL_API void dlcl_net_free(dlcl_net *net);

/* Per-sample shapes are N-d (up to DLCL_NET_MAX_DIMS); the batch dimension is implicit.
 * The c/h/w fields of dlcl_net_info and dlcl_layer_info are kept for programs written for
 * image nets: for a 3-d shape they are its dims, for a 1-d one (features) c = n, h = w = 1. */
#define DLCL_NET_MAX_DIMS 4

typedef struct dlcl_net_info {
    int batch, epochs, classes;
    int in_c, in_h, in_w;     /* the input shape, as above */
    uint64_t seed;
    size_t n_layers;
    size_t n_params;          /* trainable floats */
    double flops_per_sample;  /* forward */
    uint64_t device_bytes;    /* parameters, gradients, optimizer state, activations, workspace: the peak */
    const char *device_name;  /* owned by the net */
    const char *checkpoint;   /* [net] checkpoint or <config stem>.safetensors; owned by the net */
    int checkpoint_every;     /* [net] checkpoint_every: batches between checkpoints (0: epoch ends) */
    double checkpoint_seconds; /* [net] checkpoint_seconds: at most this long between checkpoints */
    int in_ndim;              /* the per-sample input shape */
    int64_t in_dims[DLCL_NET_MAX_DIMS];
    size_t in_numel;          /* values per sample: x of dlcl_net_train_batch holds count * in_numel */
    dlcl_dtype in_dtype;
    size_t n_buffers;         /* non-trainable floats (batch-norm running statistics) */
    const char *output;       /* the layer the loss reads ([net] output, default the last); owned by the net */
    const char *optimizer;    /* "sgd", "adam", "adamw" */
    int labels_per_sample;    /* 1, or T for a sequence net (its output is T x classes: a label per position) */
    int rank, ranks;          /* a replica (dlcl_net_create_replica): its rank and their number; else 0, 1 */
    int shard_batch;          /* samples per step this net holds: ceil(batch / ranks) */
    int sync_batchnorm;       /* [net] sync_batchnorm */
    double bucket_mb;         /* [net] bucket_mb: the gradient buckets' size */
    const char *model;        /* [net] model: the ONNX file whose layers and weights the net took, else NULL; owned by the net */
    const char *precision;    /* [net] precision: "fp32", or "fp16" (an inference net's activations and conv/dense
                               * weights stored as half precision, arithmetic in float) */
} dlcl_net_info;

DLCL_API dlcl_status dlcl_net_get_info(const dlcl_net *net, dlcl_net_info *out);

typedef struct dlcl_layer_info {
    char name[64];
    char type[32];
    char detail[96];         /* "5x5/1 pad 2, relu" */
    int out_c, out_h, out_w; /* per sample, as in dlcl_net_info */
    size_t params;           /* trainable floats */
    double flops;            /* forward, per sample */
    int ndim;                /* the per-sample output shape */
    int64_t dims[DLCL_NET_MAX_DIMS];
    dlcl_dtype dtype;
    char inputs[128];        /* the layers it reads, comma-separated ("input": the net's input) */
    size_t buffers;          /* non-trainable floats */
} dlcl_layer_info;

/* Layers in execution (topological) order. */
DLCL_API dlcl_status dlcl_net_layer_info(const dlcl_net *net, size_t index, dlcl_layer_info *out);

/* The context the net runs on (owned by the net). */
DLCL_API dlcl_ctx *dlcl_net_ctx(dlcl_net *net);

/* Starts epoch (0-based): the [optimizer] schedule's position. The learning rate is set per
 * step from it: lr(step) = learning_rate * schedule(epoch) * min(1, (step+1)/warmup_steps);
 * *lr (if not NULL) receives that of the epoch's next step. */
DLCL_API dlcl_status dlcl_net_begin_epoch(dlcl_net *net, int epoch, float *lr);

/* The learning rate the next training step will use (see dlcl_net_begin_epoch); 0 for NULL. */
DLCL_API float dlcl_net_learning_rate(const dlcl_net *net);

/* One training step on count samples (count <= batch): forward, loss, backward (the
 * gradients of every reader of an output summed), optional clipping, one [optimizer] update.
 * x is count * in_numel values of in_dtype (dlcl_net_info): floats (NCHW for images, already
 * normalised), or int32 token ids for a sequence net; y holds count * labels_per_sample
 * labels (a sequence net: the next token at each position). *loss_sum is the summed loss of
 * those labels (cross-entropy, with label_smoothing; the step minimises its mean), *correct
 * the number of argmax hits (both before the update). Batch norm uses the batch's
 * statistics and updates its running ones.
 * A non-finite loss gives DLCL_ERR_NUMERIC naming the input or the first layer whose output
 * is not finite; the step has then been taken, so reload a checkpoint. With [net]
 * check_numerics=1 every output and parameter gradient is tested before the step, which is
 * then not taken (one extra pass over the activations and a read per batch). */
DLCL_API dlcl_status dlcl_net_train_batch(dlcl_net *net, const void *x, const int32_t *y, int count,
                                          double *loss_sum, int *correct);

/* Forward pass in evaluation mode (dropout off, batch norm from its running statistics).
 * pred (count * labels_per_sample int32, may be NULL) receives the argmax class of each
 * label; the loss is the plain cross-entropy, summed over the labels as in training. */
DLCL_API dlcl_status dlcl_net_eval_batch(dlcl_net *net, const void *x, const int32_t *y, int count,
                                         double *loss_sum, int *correct, int32_t *pred);

/* Forward pass in evaluation mode; probs receives count * labels_per_sample * classes softmax
 * probabilities. */
DLCL_API dlcl_status dlcl_net_predict(dlcl_net *net, const void *x, int count, float *probs);

/* Raw logits (the output the loss reads: [net] output) for count samples
 * (count * labels_per_sample * classes floats). */
DLCL_API dlcl_status dlcl_net_logits(dlcl_net *net, const void *x, int count, float *logits);

/* Text generation from a next-token model (an embedding reads the input, the loss reads a
 * T x classes output; every layer able to run one position at a time). */
typedef struct dlcl_generate_params {
    int tokens;        /* how many tokens to generate */
    float temperature; /* logits / temperature before the softmax; 0: greedy (argmax) */
    int top_k;         /* draw among the k likeliest only; 0: the whole vocabulary */
    uint64_t seed;     /* the draws are a function of it */
} dlcl_generate_params;

/* Receives each generated token as it is drawn; a non-zero return stops the generation. */
typedef int (*dlcl_token_fn)(int32_t token, void *user);

/* Continues prompt (n_prompt >= 1 token ids; only the last T are kept, T the context):
 * the prompt runs in one forward pass, then each new token costs one position, as
 * attention keeps its keys and values (a key/value cache). When the context is full, its
 * last half and the new token run again from position 0. fn (may be NULL) gets every token. */
DLCL_API dlcl_status dlcl_net_generate(dlcl_net *net, const int32_t *prompt, size_t n_prompt,
                                       const dlcl_generate_params *p, dlcl_token_fn fn, void *user);

/* GPT-2's byte-level BPE tokenizer, from Hugging Face's vocab.json and merges.txt (exactly
 * openai/gpt-2's encoder.py: its pre-tokenising pattern over UTF-8, merges by rank). Any byte
 * string encodes (invalid UTF-8 included) and decodes back to itself; "<|endoftext|>" in
 * text is plain text, as in encoder.py: dlcl_tokenizer_token_id gives its id. Errors name
 * the file and the key or line. A tokenizer is immutable: threads may share one. */
typedef struct dlcl_tokenizer dlcl_tokenizer;
DLCL_API dlcl_status dlcl_tokenizer_load(const char *vocab_json, const char *merges_txt, dlcl_tokenizer **out);
DLCL_API void dlcl_tokenizer_free(dlcl_tokenizer *t);
/* Largest id + 1. */
DLCL_API int dlcl_tokenizer_vocab_size(const dlcl_tokenizer *t);
/* *tokens is malloc'ed (free() it). */
DLCL_API dlcl_status dlcl_tokenizer_encode(const dlcl_tokenizer *t, const char *text, size_t len, int32_t **tokens,
                                           size_t *n);
/* *text is malloc'ed with a NUL after its *len bytes; an unknown id is DLCL_ERR_INVALID_ARG. */
DLCL_API dlcl_status dlcl_tokenizer_decode(const dlcl_tokenizer *t, const int32_t *tokens, size_t n, char **text,
                                           size_t *len);
/* The bytes of one token, owned by t (print tokens as they are generated: a character may
 * span two tokens). */
DLCL_API dlcl_status dlcl_tokenizer_token_bytes(const dlcl_tokenizer *t, int32_t id, const char **bytes, size_t *len);
/* The id of a vocabulary key as vocab.json spells it ("<|endoftext|>"), or -1. */
DLCL_API int32_t dlcl_tokenizer_token_id(const dlcl_tokenizer *t, const char *key);

/* Writes the net's tensors as a safetensors state_dict with PyTorch names and layouts
 * (<layer>.weight OIHW or [out,in], <layer>.bias, batch norm's running_mean, running_var and
 * int64 num_batches_tracked), and everything a resume needs (the tensors again, the optimizer
 * state under torch's names: state.<tensor>.momentum_buffer / exp_avg / exp_avg_sq, the step)
 * to "<path>.state" beside it, both atomically. epochs_done goes into both files' metadata. */
DLCL_API dlcl_status dlcl_net_save(dlcl_net *net, const char *path, int epochs_done);

/* Loads the net's tensors from a safetensors file (written by dlcl, or a PyTorch state_dict:
 * tools/pth2safetensors.py). Every tensor of the net must be present with its exact shape
 * and dtype; missing, extra or mismatching tensors are errors naming the tensor. If
 * "<path>.state" exists and with_state is set, the optimizer state is restored too and
 * *epochs_done (may be NULL) receives the epoch count (else 0). */
DLCL_API dlcl_status dlcl_net_load(dlcl_net *net, const char *path, int with_state, int *epochs_done);

/* Starts training from pretrained weights (fine-tuning): loads the tensors of path as
 * dlcl_net_load does, with the optimizer state and step left as they are (fresh). Hugging
 * Face's conventions are accepted: a "transformer." prefix on every name, the attention's
 * mask buffers (".attn.bias", ".attn.masked_bias") and a tied head's weight (lm_head.weight)
 * are ignored. partial = 0: a tensor the file lacks is an error naming it; partial = 1: it
 * keeps its initial value, and missing (cap bytes, may be NULL) receives the names of those,
 * comma-separated. */
DLCL_API dlcl_status dlcl_net_init_from(dlcl_net *net, const char *path, int partial, char *missing, size_t cap);

/* Where training stands: enough to continue exactly where it stopped (the shuffle is a
 * function of seed and epoch, dropout of seed and step; the step counter is saved too). */
typedef struct dlcl_train_progress {
    int epochs_done;      /* complete epochs */
    int64_t batches_done; /* batches of the current (next) epoch already trained */
    double loss_sum;      /* that epoch's running sums, so its metrics line comes out whole */
    int64_t correct, images;
} dlcl_train_progress;

/* Like dlcl_net_save, with a position inside an epoch. The .state file then holds everything
 * a resume needs (tensors, optimizer state, progress) in one atomic file, so a crash at any
 * moment, even between the two files, leaves a consistent state to resume from. */
DLCL_API dlcl_status dlcl_net_save_progress(dlcl_net *net, const char *path, const dlcl_train_progress *p);

/* Resumes from what dlcl_net_save_progress wrote: from "<path>.state" when it is complete
 * (tensors and optimizer state), else from the tensors at path alone (optimizer state zero,
 * position from its metadata, a warning logged): a torch state_dict can start a run. */
DLCL_API dlcl_status dlcl_net_load_progress(dlcl_net *net, const char *path, dlcl_train_progress *p);

/* Per-layer timing of one training step, each launch followed by a wait (so the figures
 * add up to more than a real step, which overlaps nothing but also waits for nothing). */
typedef struct dlcl_layer_timing {
    double forward_ms, backward_ms;
} dlcl_layer_timing;

/* Runs reps training steps on (x, y) through the same step routine as dlcl_net_train_batch,
 * with learning rate 0 and a wait after every layer (the weights do not change; the
 * optimizer state, batch norm's running statistics and num_batches_tracked do; the step count
 * does not), and writes the mean time of each layer to layers[0..n_layers-1]; *loss_ms and
 * *step_ms get the loss and the optimizer step. */
DLCL_API dlcl_status dlcl_net_profile(dlcl_net *net, const void *x, const int32_t *y, int count, int reps,
                                      dlcl_layer_timing *layers, double *loss_ms, double *step_ms);

/* ---------------------------------------------------------------- data-parallel training */

/* Data-parallel training: N processes ("ranks", one per device) each hold a replica of the
 * net, compute their share of every [net] batch and add their gradients together before each
 * step, so the same config trains the same way at any N (up to float summation order). dlcl
 * knows no MPI: the program (dlcl-train under mpirun) fills a dlcl_comm with its
 * communication library's calls. Every rank calls them in the same order. */
typedef struct dlcl_comm {
    int rank, ranks; /* this process (0 .. ranks-1) and how many train the one model */
    void *user;      /* passed to every call */
    /* Starts summing n floats over the ranks, in place, without waiting (MPI_Iallreduce on
     * a communicator of its own). Buckets are numbered from 0 in each step; every rank starts
     * them in that order. data stays untouched by dlcl until wait() returns. */
    dlcl_status (*start)(void *user, int bucket, float *data, size_t n);
    /* Returns when every sum started since the last wait() is complete. */
    dlcl_status (*wait)(void *user);
    /* Sums n doubles over the ranks in place and returns when done (MPI_Allreduce): batch
     * norm's statistics with [net] sync_batchnorm = 1, the gradients summed so far. */
    dlcl_status (*sum)(void *user, double *data, size_t n);
    /* Copies bytes at data from rank 0 to every other rank, blocking (MPI_Bcast). */
    dlcl_status (*broadcast)(void *user, void *data, size_t bytes);
} dlcl_comm;

/* A replica for data-parallel training: as dlcl_net_create, with comm (copied; its user
 * pointer must outlive the net). The net's device memory holds this rank's share of a batch,
 * ceil(batch / ranks) samples; dlcl_net_info.batch stays the global [net] batch. Dropout
 * draws a stream per rank. The weights are this rank's initialisation until
 * dlcl_net_broadcast_state. [net] bucket_mb (default 4) sizes the gradient buckets and
 * sync_batchnorm = 1 normalises over the whole global batch (two sum() calls per batch-norm
 * layer and step) instead of each rank's share, as PyTorch's DDP does by default. */
DLCL_API dlcl_status dlcl_net_create_replica(const char *config_path, const char *const *overrides,
                                             size_t n_overrides, const dlcl_ctx_params *params,
                                             const dlcl_comm *comm, dlcl_net **out);

/* One data-parallel training step, called by every rank with its share of the same global
 * batch: count samples here (0 .. ceil(batch / ranks); 0 when the batch has fewer samples
 * than ranks), global_count in all. The loss is the mean over the global batch, so each
 * sample weighs the same whatever the split. Each bucket of gradients is handed to
 * comm->start as soon as the backward pass has produced it, while the backward pass goes on;
 * the optimizer steps on the sum after comm->wait, identically on every rank. *loss_sum and
 * *correct are this rank's. Otherwise as dlcl_net_train_batch. */
DLCL_API dlcl_status dlcl_net_train_shard(dlcl_net *net, const void *x, const int32_t *y, int count,
                                          int global_count, double *loss_sum, int *correct);

/* Collective: every rank gets rank 0's training state (parameters, buffers, counters,
 * optimizer state, step), as after loading rank 0's checkpoint or initialising rank 0's
 * weights; gradients summed for an [optimizer] accumulate step stay rank 0's alone. */
DLCL_API dlcl_status dlcl_net_broadcast_state(dlcl_net *net);
/* Collective: rank 0 gets every rank's part of the training state it alone saves: the
 * gradients summed so far in an [optimizer] accumulate step (added into rank 0's, zeroed on
 * the others) and, without sync_batchnorm, nothing else (each rank's batch-norm running
 * statistics follow its own share; rank 0's are the model's, as in DDP). Call before rank 0
 * saves a checkpoint. */
DLCL_API dlcl_status dlcl_net_gather_state(dlcl_net *net);

/* Collective: every rank gets rank 0's buffers and counters (batch norm's running statistics
 * and num_batches_tracked), which without sync_batchnorm differ per rank. Call before the
 * ranks evaluate shares of a test set, so that they all evaluate the model rank 0 saves (as
 * DDP's broadcast_buffers makes every rank use rank 0's). */
DLCL_API dlcl_status dlcl_net_broadcast_buffers(dlcl_net *net);

/* What the gradient exchange did since the replica was made. */
typedef struct dlcl_exchange_stats {
    uint64_t steps;        /* exchanges (optimizer steps) */
    uint64_t buckets;      /* buckets started */
    uint64_t overlapped;   /* buckets started while the backward pass was still running on the device */
    double bytes;          /* gradient bytes this rank handed to start() */
    double wait_ms;        /* time spent in comm->wait: the exchange not hidden behind the backward */
    double sync_ms;        /* time spent in comm->sum for batch norm */
    int n_buckets;         /* buckets per step */
} dlcl_exchange_stats;

DLCL_API dlcl_status dlcl_net_exchange_stats(const dlcl_net *net, dlcl_exchange_stats *out);

/* ---------------------------------------------------------------- data */

typedef struct dlcl_loader dlcl_loader;

typedef enum dlcl_split { DLCL_SPLIT_TRAIN, DLCL_SPLIT_TEST, DLCL_SPLIT_COUNT } dlcl_split;

/* Opens and validates the [data] files of split, ready to batch with the net's batch size,
 * normalisation and seed: every file is checked before this returns (sizes, headers, labels;
 * an image folder's headers, without decoding). The training split is shuffled per (seed,
 * epoch) and augmented as [data] asks; the test split is neither. Relative paths in the
 * config are relative to the config file's directory. */
DLCL_API dlcl_status dlcl_loader_create(const dlcl_net *net, dlcl_split split, dlcl_loader **out);
DLCL_API void dlcl_loader_free(dlcl_loader *l);
/* Samples in the split, and batches per epoch. */
DLCL_API size_t dlcl_loader_samples(const dlcl_loader *l);
DLCL_API size_t dlcl_loader_batches(const dlcl_loader *l);
/* Classes the split's data holds: its labels are below this (an image folder: the class
 * directories found, which may be fewer than [net] classes). 0 for NULL. */
DLCL_API int dlcl_loader_classes(const dlcl_loader *l);
/* Name of class index (an image folder's directory name; CIFAR's batches.meta.txt or
 * fine_label_names.txt beside the batches), owned by the loader; NULL when the data names no
 * classes (IDX, synthetic) or index is not below dlcl_loader_classes. */
DLCL_API const char *dlcl_loader_class_name(const dlcl_loader *l, int index);
/* Starts epoch (0-based); the shuffle is a function of (seed, epoch), so resuming reproduces it. */
DLCL_API dlcl_status dlcl_loader_begin_epoch(dlcl_loader *l, int epoch);
/* The same, skipping the epoch's first first_batch batches (resuming mid-epoch). */
DLCL_API dlcl_status dlcl_loader_begin_epoch_at(dlcl_loader *l, int epoch, size_t first_batch);
/* Next batch, prepared by worker threads ([data] workers) while the caller computes: *x (count
 * normalised C*H*W samples as floats, or count windows of T int32 tokens for format=tokens /
 * text) and *y (count labels, or count * T next tokens) stay valid until the next call; *count
 * is 0 at the end of the epoch. An image that cannot be decoded fails its batch with
 * DLCL_ERR_DATA naming it. A sample's augmentation (a window's position) is a function of
 * (seed, epoch, sample), whatever the workers. */
DLCL_API dlcl_status dlcl_loader_next(dlcl_loader *l, const void **x, const int32_t **y, int *count);

/* Data-parallel: from the next dlcl_loader_begin_epoch on, this loader yields rank's share of
 * each batch (the batch's samples split over ranks in order, as evenly as possible: sizes
 * differ by at most one), decoding only those. The shuffle stays a function of (seed,
 * epoch), so the ranks together see exactly the batches one process would. A batch of G
 * samples gives rank r its positions [G r / ranks, G (r + 1) / ranks). dlcl_loader_batches
 * and dlcl_loader_begin_epoch_at count whole batches. 0 <= rank < ranks; with ranks > 1,
 * dlcl_loader_next is an error (an empty share would look like the end of the epoch). */
DLCL_API dlcl_status dlcl_loader_shard(dlcl_loader *l, int rank, int ranks);
/* dlcl_loader_next for a sharded loader: *count this rank's samples (may be 0 when a batch
 * has fewer samples than ranks) and *global_count the batch's, 0 at the end of the epoch. */
DLCL_API dlcl_status dlcl_loader_next_shard(dlcl_loader *l, const void **x, const int32_t **y, int *count,
                                            int *global_count);

/* The class names of the net's [data] section without opening a split (for dlcl-predict): the
 * class directories of the test (else train) image folder, or the names beside CIFAR batches.
 * *names is a NULL-terminated array of *count names, for the caller to release with
 * dlcl_class_names_free; NULL and 0 when the format names no classes. */
DLCL_API dlcl_status dlcl_net_class_names(const dlcl_net *net, char ***names, int *count);
DLCL_API void dlcl_class_names_free(char **names); /* NULL-safe */

/* Reads a PNG/JPEG/BMP image (stb_image), converts it to the net's input channels and shapes
 * it as the [data] test split is: with resize = R the short side becomes R and the centre
 * H x W is cut out (torchvision's Resize(R) + CenterCrop); with crop alone the centre is cut
 * out; otherwise an image of another size is resized to H x W. Resizing is PIL's bilinear
 * (antialiased when shrinking, as torchvision's transforms on PIL images) unless [data]
 * antialias = 0. Then x = (pixel * scale - mean[c]) / std[c]; out holds C*H*W floats. */
DLCL_API dlcl_status dlcl_net_load_image(const dlcl_net *net, const char *path, float *out);

#ifdef __cplusplus
}
#endif
#endif /* DLCL_H */
