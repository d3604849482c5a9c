#include "dbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

bool dbuf_new(dbuf *d, const float *host, size_t n)
{
    dlcl_ctx *ctx = t_ctx();
    d->mem = NULL;
    if (ctx == NULL) return false;
    d->n = n;
    d->bytes = (n + 2 * GUARD) * sizeof(float);
    float *tmp = malloc(d->bytes);
    if (tmp == NULL) return false;
    for (size_t i = 0; i < n + 2 * GUARD; i++) tmp[i] = SENTINEL;
    for (size_t i = 0; i < n; i++) tmp[GUARD + i] = host ? host[i] : 0.0f;
    cl_int err = CL_SUCCESS;
    d->mem = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, d->bytes, NULL, &err);
    bool ok = err == CL_SUCCESS &&
              clEnqueueWriteBuffer(ctx->queue, d->mem, CL_TRUE, 0, d->bytes, tmp, 0, NULL, NULL) == CL_SUCCESS;
    free(tmp);
    return ok;
}

bool dbuf_fill(dbuf *d, float v)
{
    cl_int err = clEnqueueFillBuffer(t_ctx()->queue, d->mem, &v, sizeof v, GUARD * sizeof(float), d->n * sizeof(float),
                                     0, NULL, NULL);
    if (err != CL_SUCCESS) printf("# clEnqueueFillBuffer: %d\n", err);
    return err == CL_SUCCESS;
}

bool dbuf_read(const dbuf *d, float *host, const char *label)
{
    float *tmp = malloc(d->bytes);
    bool ok = tmp && clEnqueueReadBuffer(t_ctx()->queue, d->mem, CL_TRUE, 0, d->bytes, tmp, 0, NULL, NULL) == CL_SUCCESS;
    for (size_t i = 0; ok && i < GUARD; i++)
        if (tmp[i] != SENTINEL || tmp[GUARD + d->n + i] != SENTINEL) {
            printf("# %s: guard element %zu overwritten\n", label, i);
            ok = false;
        }
    if (ok) memcpy(host, tmp + GUARD, d->n * sizeof(float));
    free(tmp);
    return ok;
}

void dbuf_free(dbuf *d)
{
    if (d->mem) clReleaseMemObject(d->mem);
    d->mem = NULL;
}
