/* safetensors files: an 8-byte little-endian header length, a JSON header
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
 * then the data. Read fully validated against the file size; written atomically. */
#ifndef DLCL_SAFETENSORS_H
#define DLCL_SAFETENSORS_H

#include "../internal.h"

#define ST_MAX_DIMS 8

/* The element types of an st_tensor. On disk F16, BF16 and F64 are read too, widened or
 * narrowed to ST_F32; I64 is kept as is (PyTorch's batch-norm num_batches_tracked). */
typedef enum st_dtype {
    ST_F32, /* data */
    ST_I64, /* i64 */
    ST_DTYPE_COUNT
} st_dtype;

/* "F32", "I64": the safetensors names, indexed by st_dtype. */
extern const char *const st_dtype_names[ST_DTYPE_COUNT];

/* Owned by the st_file when read, by the caller when written. A zero-initialised dtype is
 * ST_F32, so {name, ndim, {dims}, data} is a float32 tensor. */
typedef struct st_tensor {
    char *name;
    int ndim;
    int64_t dims[ST_MAX_DIMS];
    float *data;    /* numel floats when dtype is ST_F32, else NULL */
    st_dtype dtype;
    int64_t *i64;   /* numel integers when dtype is ST_I64, else NULL */
} st_tensor;

typedef struct st_file {
    st_tensor *tensors;
    size_t count;
    char **meta_keys, **meta_values; /* __metadata__ (string values) */
    size_t meta_count;
} st_file;

/* Reads and validates path. F32 is read as is and F16, BF16 and F64 are converted to float32
 * (ST_F32, data); I64 is read as int64 (ST_I64, i64). Errors: DLCL_ERR_NOT_FOUND /
 * DLCL_ERR_IO to open or read, DLCL_ERR_CHECKPOINT for a malformed file, naming the tensor. */
dlcl_status st_read(const char *path, st_file *out);
/* Frees what st_read allocated in f (not f itself); NULL-safe. */
void st_file_free(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
/* Writes tensors (F32 from data, I64 from i64, as each one's dtype says) and string metadata
 * to path.tmp.<pid>, fsyncs, renames over path. The data follow one another in the given
 * order from an 8-byte aligned start: an I64 tensor is 8-byte aligned in the file when the
 * bytes before it are a multiple of 8 (Python's safetensors sorts by dtype size for that). */
dlcl_status st_write(const char *path, const st_tensor *tensors, size_t count, const char *const *meta_keys,
                     const char *const *meta_values, size_t meta_count);

#endif
