/* Random samples for benchmarks and smoke tests: uniform uint8 pixels and uniform labels,
 * nothing stored. Sample i is a function of (seed, stream, i) alone (dlcl__mix64), so the
 * training split (stream 0) and the test split (stream 1) differ and both reproduce. */
#include <stdlib.h>
#include <string.h>

#include "data.h"

typedef struct synthetic {
    uint64_t key; /* of (seed, stream) */
    int classes;
} synthetic;

static dlcl_status synthetic_get(const data_source *src, int i, data_buf *buf, data_sample *out)
{
    const synthetic *sy = src->impl;
    size_t bytes = (size_t)src->c * (size_t)src->h * (size_t)src->w;
    dlcl_status st = data_buf_reserve(buf, bytes);
    if (st != DLCL_OK) return st;
    uint64_t s = dlcl__mix64(sy->key ^ (uint64_t)(uint32_t)i);
    out->label = (int32_t)data_bounded(&s, (uint32_t)sy->classes);
    for (size_t j = 0; j < bytes; j += 8) {
        uint64_t r = dlcl__splitmix64(&s);
        size_t k = bytes - j < 8 ? bytes - j : 8;
        for (size_t b = 0; b < k; b++) buf->px[j + b] = (uint8_t)(r >> (8 * b));
    }
    out->h = src->h;
    out->w = src->w;
    out->px = buf->px;
    return DLCL_OK;
}

dlcl_status data_source_synthetic(int n, int c, int h, int w, int classes, uint64_t seed, uint64_t stream,
                                  data_source **out)
{
    *out = NULL;
    size_t chw;
    if (n < 1 || c < 1 || h < 1 || w < 1 || classes < 1 || !dlcl__mul_ok((size_t)c * (size_t)h, (size_t)w, &chw))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "data_source_synthetic: bad sizes");
    data_source *src = calloc(1, sizeof *src);
    synthetic *sy = malloc(sizeof *sy);
    if (src == NULL || sy == NULL) {
        free(src);
        free(sy);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    sy->key = dlcl__mix64(dlcl__mix64(seed ^ 0x510e527fade682d1ull) + stream);
    sy->classes = classes;
    *src = (data_source){.format = "synthetic",
                         .n = n,
                         .c = c,
                         .h = h,
                         .w = w,
                         .classes = classes,
                         .grain = 8,
                         .get = synthetic_get,
                         .free_impl = free,
                         .impl = sy};
    *out = src;
    return DLCL_OK;
}
