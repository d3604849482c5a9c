/* Device buffers for the op tests: n floats (or halves: dbuf_new_as) between two guard
 * regions of GUARD sentinels.
 * An op gets an offset into the buffer (ob); dbuf_read checks both guards, so a kernel
 * that writes past either end of its data fails the test. Buffers are created at their
 * exact size, outside the context's pool, so an op that checks CL_MEM_SIZE sees it. */
#ifndef DLCL_TEST_DBUF_H
#define DLCL_TEST_DBUF_H

#include "../lib/ops/ops.h"

#define GUARD 37
#define SENTINEL 12345.0f
#define HALF_SENTINEL 0x5a5a /* 203.25 as binary16 */

typedef struct dbuf {
    cl_mem mem;
    size_t n, bytes;
    int half; /* the elements are IEEE binary16 ([net] precision = fp16's storage) */
} dbuf;

/* Device copy of host[n] between the guards; host may be NULL (zeros). */
bool dbuf_new(dbuf *d, const float *host, size_t n);
/* The same, stored as halves (host rounded to nearest even) when half. dbuf_fill and
 * dbuf_read convert; ob hands the op an op_buf with its storage. */
bool dbuf_new_as(dbuf *d, const float *host, size_t n, int half);
/* d's n elements (not its guards) set to v: a result that is not written shows */
bool dbuf_fill(dbuf *d, float v);
/* The data back into host; false (with a line naming label) when a guard was overwritten. */
bool dbuf_read(const dbuf *d, float *host, const char *label);
void dbuf_free(dbuf *d);
static inline op_buf ob(const dbuf *d) { return (op_buf){d->mem, GUARD, d->half}; }

#endif
