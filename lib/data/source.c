/* What every data source shares: freeing, name lists, pixel buffers, and the in-memory
 * source that IDX and CIFAR both are (their files are small enough to hold as uint8). */
#include <stdlib.h>
#include <string.h>

#include "data.h"

dlcl_status data_buf_reserve(data_buf *buf, size_t bytes)
{
    if (bytes <= buf->cap) return DLCL_OK;
    uint8_t *p = realloc(buf->px, bytes);
    if (p == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory for a %zu-byte image", bytes);
    buf->px = p;
    buf->cap = bytes;
    return DLCL_OK;
}

void data_names_free(char **names)
{
    if (names == NULL) return;
    for (char **p = names; *p; p++) free(*p);
    free(names);
}

void data_source_free(data_source *src)
{
    if (src == NULL) return;
    if (src->free_impl) src->free_impl(src->impl);
    data_names_free(src->class_names);
    free(src);
}

void data_set_free(data_set *ds)
{
    if (ds == NULL) return;
    free(ds->pixels);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

static dlcl_status memory_get(const data_source *src, int i, data_buf *buf, data_sample *out)
{
    (void)buf;
    const data_set *ds = src->impl;
    size_t chw = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    *out = (data_sample){ds->h, ds->w, ds->pixels + (size_t)i * chw, ds->labels[i]};
    return DLCL_OK;
}

static void memory_free(void *impl)
{
    data_set_free(impl);
    free(impl);
}

dlcl_status data_source_memory(const char *format, data_set *ds, char **class_names, data_source **out)
{
    *out = NULL;
    data_source *src = calloc(1, sizeof *src);
    data_set *own = malloc(sizeof *own);
    if (src == NULL || own == NULL) {
        free(src);
        free(own);
        data_set_free(ds);
        data_names_free(class_names);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    *own = *ds;
    memset(ds, 0, sizeof *ds);
    int classes = 0;
    for (int i = 0; i < own->n; i++)
        if (own->labels[i] >= classes) classes = own->labels[i] + 1;
    *src = (data_source){.format = format,
                         .n = own->n,
                         .c = own->c,
                         .h = own->h,
                         .w = own->w,
                         .classes = classes,
                         .class_names = class_names,
                         .grain = 32,
                         .get = memory_get,
                         .free_impl = memory_free,
                         .impl = own};
    *out = src;
    return DLCL_OK;
}
