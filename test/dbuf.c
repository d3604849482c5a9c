#include "dbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

bool dbuf_new_as(dbuf *d, const float *host, size_t n, int half)
{
    dlcl_ctx *ctx = t_ctx();
    d->mem = NULL;
    if (ctx == NULL) return false;
    d->n = n;
    d->half = half;
    d->bytes = (n + 2 * GUARD) * (half ? sizeof(uint16_t) : sizeof(float));
    void *tmp = malloc(d->bytes);
    if (tmp == NULL) return false;
    for (size_t i = 0; i < n + 2 * GUARD; i++) {
        float v = i < GUARD || i >= GUARD + n ? SENTINEL : host ? host[i - GUARD] : 0.0f;
        if (half)
            ((uint16_t *)tmp)[i] = i < GUARD || i >= GUARD + n ? HALF_SENTINEL : dlcl__half_from_float(v);
        else
            ((float *)tmp)[i] = v;
    }
    cl_int err = CL_SUCCESS;
    d->mem = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, d->bytes, NULL, &err);
    bool ok = err == CL_SUCCESS &&
              clEnqueueWriteBuffer(ctx->queue, d->mem, CL_TRUE, 0, d->bytes, tmp, 0, NULL, NULL) == CL_SUCCESS;
    free(tmp);
    return ok;
}

bool dbuf_new(dbuf *d, const float *host, size_t n) { return dbuf_new_as(d, host, n, 0); }

bool dbuf_fill(dbuf *d, float v)
{
    uint16_t h = dlcl__half_from_float(v);
    size_t e = d->half ? sizeof h : sizeof v;
    cl_int err = clEnqueueFillBuffer(t_ctx()->queue, d->mem, d->half ? (void *)&h : (void *)&v, e, GUARD * e, d->n * e,
                                     0, NULL, NULL);
    if (err != CL_SUCCESS) printf("# clEnqueueFillBuffer: %d\n", err);
    return err == CL_SUCCESS;
}

bool dbuf_read(const dbuf *d, float *host, const char *label)
{
    void *tmp = malloc(d->bytes);
    bool ok = tmp && clEnqueueReadBuffer(t_ctx()->queue, d->mem, CL_TRUE, 0, d->bytes, tmp, 0, NULL, NULL) == CL_SUCCESS;
    const float *f = tmp;
    const uint16_t *h = tmp;
    for (size_t i = 0, j = GUARD + d->n; ok && i < GUARD; i++, j++)
        if (d->half ? h[i] != HALF_SENTINEL || h[j] != HALF_SENTINEL : f[i] != SENTINEL || f[j] != SENTINEL) {
            printf("# %s: guard element %zu overwritten\n", label, i);
            ok = false;
        }
    for (size_t i = 0; ok && i < d->n; i++) host[i] = d->half ? dlcl__float_from_half(h[GUARD + i]) : f[GUARD + i];
    free(tmp);
    return ok;
}

void dbuf_free(dbuf *d)
{
    if (d->mem) clReleaseMemObject(d->mem);
    d->mem = NULL;
}
