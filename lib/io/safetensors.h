/* safetensors files: an 8-byte little-endian header length, a JSON header
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
 * then the data. Read fully validated against the file size; written atomically. */
#ifndef DLCL_SAFETENSORS_H
#define DLCL_SAFETENSORS_H

#include "../internal.h"

#define ST_MAX_DIMS 8

typedef struct st_tensor {
    char *name;
    int ndim;
    int64_t dims[ST_MAX_DIMS];
    float *data; /* numel floats: owned by the st_file when read, by the caller when written */
} st_tensor;

typedef struct st_file {
    st_tensor *tensors;
    size_t count;
    char **meta_keys, **meta_values; /* __metadata__ (string values) */
    size_t meta_count;
} st_file;

/* Reads and validates path. F32 is read as is; F16, BF16 and F64 are converted to float32.
 * Errors: DLCL_ERR_NOT_FOUND / DLCL_ERR_IO to open or read, DLCL_ERR_CHECKPOINT for a
 * malformed file, naming the tensor. */
dlcl_status st_read(const char *path, st_file *out);
/* Frees what st_read allocated in f (not f itself); NULL-safe. */
void st_file_free(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
/* Writes F32 tensors and string metadata to path.tmp.<pid>, fsyncs, renames over path. */
dlcl_status st_write(const char *path, const st_tensor *tensors, size_t count, const char *const *meta_keys,
                     const char *const *meta_values, size_t meta_count);

#endif
