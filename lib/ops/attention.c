/* Causal self-attention launchers (attention.cl) and the materialised path's batched GEMMs.
 *
 * The materialised path (op_attention_forward / _backward) keeps the probabilities of every
 * (sample, head), t x t floats each, for the backward, as PyTorch's eager GPT2Attention does;
 * its products are per-head GEMMs through op_gemm_batched, over the whole t x t square (the
 * causal half is zeros). The online forward computes no such matrix: it serves evaluation
 * and decoding with a key/value cache. */
#include <math.h>
#include <stdio.h>

#include "ops.h"

/* The online kernel's query rows per work-item (ATT_QB in attention.cl). */
#define ONLINE_ROWS 16
/* Up to this many query rows, attention_decode (a work-item per row): GPT-2 small, B=4, one
 * position at T-1 = 255 on PoCL took 1.14 ms of CPU time in the blocked kernel, 0.33 ms so. */
#define DECODE_ROWS 4

static float scale_of(const op_attn_shape *s) { return 1.0f / sqrtf((float)s->head_dim); }

static dlcl_status check_shape(const char *fn, const op_attn_shape *s)
{
    if (s->batch < 1 || s->t < 1 || s->heads < 1 || s->head_dim < 1 ||
        (double)s->batch * s->t * 3 * s->heads * s->head_dim > INT32_MAX ||
        (double)s->batch * s->heads * s->t * s->t > INT32_MAX)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: bad shape: batch %d, t %d, heads %d, head_dim %d (each >= 1, "
                         "at most 2^31 - 1 values of qkv and of the t x t planes)", fn, s->batch, s->t, s->heads,
                         s->head_dim);
    return DLCL_OK;
}

static dlcl_status check_offsets(const char *fn, const op_buf *bufs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (bufs[i].off > INT32_MAX)
            return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: buffer offset %zu exceeds the kernels' int range", fn,
                             bufs[i].off);
    return DLCL_OK;
}

static dlcl_status softmax_launch(dlcl_ctx *ctx, const char *name, op_buf a, op_buf b, op_buf c, int planes, int t,
                                  float scale)
{
    const op_buf bufs[] = {a, b, c};
    if (planes < 1 || t < 1 || (double)planes * t * t > INT32_MAX)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: bad shape %d planes of %d x %d", name, planes, t, t);
    dlcl_status st = check_offsets(name, bufs, c.mem ? 3 : 2);
    cl_kernel k;
    if (st == DLCL_OK) st = rt_kernel_get(ctx, "attention", "", name, &k);
    int ao = (int)a.off, bo = (int)b.off, co = (int)c.off;
    if (st == DLCL_OK && c.mem == NULL) /* forward: s, p */
        st = rt_set_args(k, name, RT_ARG(a.mem), RT_ARG(ao), RT_ARG(b.mem), RT_ARG(bo), RT_ARG(t), RT_ARG(scale),
                         RT_ARGS_END);
    else if (st == DLCL_OK) /* backward: p, dp, ds */
        st = rt_set_args(k, name, RT_ARG(a.mem), RT_ARG(ao), RT_ARG(b.mem), RT_ARG(bo), RT_ARG(c.mem), RT_ARG(co),
                         RT_ARG(t), RT_ARG(scale), RT_ARGS_END);
    size_t g[2] = {(size_t)t, (size_t)planes};
    return st == DLCL_OK ? rt_launch(ctx, k, name, 2, g, NULL) : st;
}

dlcl_status op_attention_softmax_forward(dlcl_ctx *ctx, op_buf s, op_buf p, int planes, int t, float scale)
{
    return softmax_launch(ctx, "attention_softmax_forward", s, p, op_b(NULL, 0), planes, t, scale);
}

dlcl_status op_attention_softmax_backward(dlcl_ctx *ctx, op_buf p, op_buf dp, op_buf ds, int planes, int t,
                                          float scale)
{
    if (ds.mem == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "op_attention_softmax_backward: ds is required");
    return softmax_launch(ctx, "attention_softmax_backward", p, dp, ds, planes, t, scale);
}

size_t op_attention_workspace(const op_attn_shape *s)
{
    return (size_t)s->batch * s->heads * s->t * s->t;
}

/* One operand of the per-head products: its base and leading dimension, and how far apart
 * the matrices of two samples and of two heads lie. */
typedef struct head_mat {
    op_buf m;
    size_t ld, sample, head;
} head_mat;

/* C_bh = op(A_bh) op(B_bh) for every sample b and head h: one strided-batched product per
 * sample over its heads, or per head over the samples, whichever takes fewer launches (the
 * matrices of (b, h) are not one stride apart). */
static dlcl_status per_head(dlcl_ctx *ctx, const op_attn_shape *s, dlcl_transpose ta, dlcl_transpose tb, size_t m,
                            size_t n, size_t k, head_mat a, head_mat b, head_mat c)
{
    const bool by_sample = s->batch <= s->heads;
    const int outer = by_sample ? s->batch : s->heads, inner = by_sample ? s->heads : s->batch;
    dlcl_status st = DLCL_OK;
    for (int o = 0; st == DLCL_OK && o < outer; o++) {
        const size_t ao = a.m.off + (size_t)o * (by_sample ? a.sample : a.head),
                     bo = b.m.off + (size_t)o * (by_sample ? b.sample : b.head),
                     co = c.m.off + (size_t)o * (by_sample ? c.sample : c.head);
        st = op_gemm_batched(ctx, ta, tb, m, n, k, op_b(a.m.mem, ao), a.ld, by_sample ? a.head : a.sample,
                             op_b(b.m.mem, bo), b.ld, by_sample ? b.head : b.sample, 0.0f, op_b(c.m.mem, co), c.ld,
                             by_sample ? c.head : c.sample, (size_t)inner);
    }
    return st;
}

/* q, k, v (part 0, 1, 2) of qkv, or of its gradient. */
static head_mat qkv_part(const op_attn_shape *s, op_buf qkv, int part)
{
    const size_t w = (size_t)s->heads * s->head_dim;
    return (head_mat){op_b(qkv.mem, qkv.off + part * w), 3 * w, (size_t)s->t * 3 * w, (size_t)s->head_dim};
}

static head_mat planes_of(const op_attn_shape *s, op_buf p)
{
    const size_t tt = (size_t)s->t * s->t;
    return (head_mat){p, (size_t)s->t, s->heads * tt, tt};
}

static head_mat merged(const op_attn_shape *s, op_buf z)
{
    const size_t w = (size_t)s->heads * s->head_dim;
    return (head_mat){z, w, (size_t)s->t * w, (size_t)s->head_dim};
}

dlcl_status op_attention_forward(dlcl_ctx *ctx, const op_attn_shape *s, op_buf qkv, op_buf probs, op_buf z,
                                 float rate, uint64_t seed, op_buf ws)
{
    dlcl_status st = check_shape("op_attention_forward", s);
    if (st != DLCL_OK) return st;
    const size_t t = (size_t)s->t, hd = (size_t)s->head_dim, n = op_attention_workspace(s);
    const int planes = s->batch * s->heads;
    head_mat p = planes_of(s, probs);
    st = per_head(ctx, s, DLCL_NO_TRANS, DLCL_TRANS, t, t, hd, qkv_part(s, qkv, 0), qkv_part(s, qkv, 1), p);
    if (st == DLCL_OK) st = op_attention_softmax_forward(ctx, probs, probs, planes, s->t, scale_of(s));
    if (st == DLCL_OK && rate > 0.0f) { /* GPT-2's attn_dropout: z = dropout(p) v, p kept undropped */
        st = op_dropout_apply(ctx, rate, seed, probs, ws, n);
        p = planes_of(s, ws);
    }
    if (st == DLCL_OK) st = per_head(ctx, s, DLCL_NO_TRANS, DLCL_NO_TRANS, t, hd, t, p, qkv_part(s, qkv, 2), merged(s, z));
    return st;
}

/* With pd = dropout(p) (p itself without dropout) and dP the gradient of pd:
 *   dv = pd^T dz,  dpd = dz v^T,  dp = dropout(dpd) (the same mask),
 *   ds = scale * p * (dp - rowsum(p * dp)),  dq = ds k,  dk = ds^T q.
 * The workspace holds pd, then dpd, dp and ds in place. */
dlcl_status op_attention_backward(dlcl_ctx *ctx, const op_attn_shape *s, op_buf qkv, op_buf probs, op_buf dz,
                                  op_buf dqkv, float rate, uint64_t seed, op_buf ws)
{
    dlcl_status st = check_shape("op_attention_backward", s);
    if (st != DLCL_OK) return st;
    const size_t t = (size_t)s->t, hd = (size_t)s->head_dim, n = op_attention_workspace(s);
    const int planes = s->batch * s->heads;
    const head_mat q = qkv_part(s, qkv, 0), k = qkv_part(s, qkv, 1), v = qkv_part(s, qkv, 2), dzm = merged(s, dz);
    head_mat pd = planes_of(s, probs);
    const head_mat slot = planes_of(s, ws);
    if (rate > 0.0f) {
        st = op_dropout_apply(ctx, rate, seed, probs, ws, n);
        pd = slot;
    }
    if (st == DLCL_OK) st = per_head(ctx, s, DLCL_TRANS, DLCL_NO_TRANS, t, hd, t, pd, dzm, qkv_part(s, dqkv, 2));
    if (st == DLCL_OK) st = per_head(ctx, s, DLCL_NO_TRANS, DLCL_TRANS, t, t, hd, dzm, v, slot);
    if (st == DLCL_OK && rate > 0.0f) st = op_dropout_apply(ctx, rate, seed, ws, ws, n);
    if (st == DLCL_OK) st = op_attention_softmax_backward(ctx, probs, ws, ws, planes, s->t, scale_of(s));
    if (st == DLCL_OK) st = per_head(ctx, s, DLCL_NO_TRANS, DLCL_NO_TRANS, t, hd, t, slot, k, qkv_part(s, dqkv, 0));
    if (st == DLCL_OK) st = per_head(ctx, s, DLCL_TRANS, DLCL_NO_TRANS, t, hd, t, slot, q, qkv_part(s, dqkv, 1));
    return st;
}

/* The kernel indexes a sample's rows with int (samples apart in size_t). */
static bool rows_fit_int(op_attn_rows r, int rows)
{
    return r.buf.off <= INT32_MAX && r.ld <= INT32_MAX && r.stride <= INT32_MAX && (double)rows * r.ld <= INT32_MAX;
}

dlcl_status op_attention_forward_online(dlcl_ctx *ctx, const op_attn_shape *s, op_attn_rows q, op_attn_rows k,
                                        op_attn_rows v, op_attn_rows z, int nq, int pos0)
{
    /* a decoding step's few rows: a work-item per row rather than 16 lanes of which one works */
    const bool decode = nq <= DECODE_ROWS && s->head_dim % 8 == 0;
    const char *name = decode ? "attention_decode" : "attention_forward_online";
    if (s->batch < 1 || s->heads < 1 || s->head_dim < 1 || nq < 1 || pos0 < 0 || s->head_dim > OP_ATTENTION_ONLINE_MAX_HEAD_DIM)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_attention_forward_online: bad shape: batch %d, heads %d, head_dim "
                         "%d (at most %d), %d query rows from position %d", s->batch, s->heads, s->head_dim,
                         OP_ATTENTION_ONLINE_MAX_HEAD_DIM, nq, pos0);
    if (!rows_fit_int(q, nq) || !rows_fit_int(z, nq) || !rows_fit_int(k, pos0 + nq) ||
        !rows_fit_int(v, pos0 + nq))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_attention_forward_online: operands exceed the kernel's int range");
    char opts[32];
    snprintf(opts, sizeof opts, "-DHEAD_DIM=%d", s->head_dim);
    cl_kernel kern;
    dlcl_status st = rt_kernel_get(ctx, "attention", opts, name, &kern);
    const float scale = scale_of(s);
    int qo = (int)q.buf.off, ldq = (int)q.ld, sq = (int)q.stride, ko = (int)k.buf.off, ldk = (int)k.ld,
        sk = (int)k.stride, vo = (int)v.buf.off, ldv = (int)v.ld, sv = (int)v.stride, zo = (int)z.buf.off,
        ldz = (int)z.ld, sz = (int)z.stride;
    if (st == DLCL_OK)
        st = rt_set_args(kern, name, RT_ARG(nq), RT_ARG(pos0), RT_ARG(scale), RT_ARG(q.buf.mem), RT_ARG(qo),
                         RT_ARG(ldq), RT_ARG(sq), RT_ARG(k.buf.mem), RT_ARG(ko), RT_ARG(ldk), RT_ARG(sk),
                         RT_ARG(v.buf.mem), RT_ARG(vo), RT_ARG(ldv), RT_ARG(sv), RT_ARG(z.buf.mem), RT_ARG(zo),
                         RT_ARG(ldz), RT_ARG(sz), RT_ARGS_END);
    size_t g[3] = {decode ? (size_t)nq : ((size_t)nq + ONLINE_ROWS - 1) / ONLINE_ROWS, (size_t)s->heads, (size_t)s->batch};
    return st == DLCL_OK ? rt_launch(ctx, kern, name, 3, g, NULL) : st;
}

dlcl_status op_attention_forward_cached(dlcl_ctx *ctx, const op_attn_shape *s, op_buf qkv_new, int n_new, int pos,
                                        op_buf k_cache, op_buf v_cache, op_buf z)
{
    const char *name = "attention_kv_append";
    dlcl_status st = check_shape("op_attention_forward_cached", s);
    if (st != DLCL_OK) return st;
    if (n_new < 1 || pos < 0 || pos + n_new > s->t)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "op_attention_forward_cached: positions %d .. %d do not fit a cache of "
                         "%d", pos, pos + n_new - 1, s->t);
    const op_buf bufs[] = {qkv_new, k_cache, v_cache, z};
    if ((st = check_offsets("op_attention_forward_cached", bufs, DLCL__ARRAY_LEN(bufs))) != DLCL_OK) return st;
    const size_t w = (size_t)s->heads * s->head_dim, cap = (size_t)s->t;
    int wi = (int)w, ti = s->t, qo = (int)qkv_new.off, ko = (int)k_cache.off, vo = (int)v_cache.off;
    cl_kernel k;
    if ((st = rt_kernel_get(ctx, "attention", "", name, &k)) == DLCL_OK)
        st = rt_set_args(k, name, RT_ARG(wi), RT_ARG(n_new), RT_ARG(pos), RT_ARG(ti), RT_ARG(qkv_new.mem), RT_ARG(qo),
                         RT_ARG(k_cache.mem), RT_ARG(ko), RT_ARG(v_cache.mem), RT_ARG(vo), RT_ARGS_END);
    size_t g[3] = {w, (size_t)n_new, (size_t)s->batch};
    if (st == DLCL_OK) st = rt_launch(ctx, k, name, 3, g, NULL);
    if (st != DLCL_OK) return st;
    const op_attn_rows q = {qkv_new, 3 * w, (size_t)n_new * 3 * w}, kr = {k_cache, w, cap * w},
                       vr = {v_cache, w, cap * w}, zr = {z, w, (size_t)n_new * w};
    return op_attention_forward_online(ctx, s, q, kr, vr, zr, n_new, pos);
}
