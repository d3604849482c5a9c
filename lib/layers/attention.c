/* [name] type=attention heads=12 [dropout=0] [bias=1] [init_std=0.02]
 * Causal multi-head self-attention as Hugging Face's GPT2Attention, on a sequence T,width:
 *   q, k, v = split(x W_attn + b_attn)
 *   z = merged heads of dropout(softmax(q_h k_h^T / sqrt(width / heads) + causal mask)) v_h
 *   y = dropout(z W_proj + b_proj)
 * GPT-2's tensors in its Conv1D layout (input-major: y = x @ W), so that its files load
 * unchanged: c_attn.weight [width][3 width], c_attn.bias [3 width], c_proj.weight
 * [width][width], c_proj.bias [width]; weights N(0, init_std^2), biases zero (GPT-2's
 * _init_weights). Dropout, in training only: the probabilities with io->seed (attn_dropout),
 * the output with dlcl__mix64(io->seed) (resid_dropout); masks are recomputed in the
 * backward, not stored. attention_forward_cached (layer.h) decodes with a key/value cache. */
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"

typedef struct attn_priv {
    int heads, bias;
    float dropout, init_std;
    int t, width;
    int w_attn, b_attn, w_proj, b_proj; /* indices in l->params; the biases -1 when bias=0 */
    dlcl_ctx *ctx;
    op_buf qkv, probs, z; /* the training forward's, for the backward */
    op_buf k_cache, v_cache; /* cached passes (generation): keys and values of the positions so far */
    uint64_t seed;        /* the training forward's io->seed: the backward's masks */
} attn_priv;

static const char *const attn_keys[] = {"heads", "dropout", "bias", "init_std", NULL};

static dlcl_status attn_parse(layer *l, const cfg *c, const cfg_section *s)
{
    attn_priv *p = calloc(1, sizeof *p);
    if (p == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    l->priv = p;
    long heads;
    double dropout, std;
    dlcl_status st;
    if ((st = cfg_get_int(c, s, "heads", 1, 0, 1, 1 << 16, &heads)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "dropout", 0, 0.0, 0.0, 0.999, &dropout)) != DLCL_OK ||
        (st = cfg_get_bool(c, s, "bias", 0, 1, &p->bias)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "init_std", 0, 0.02, 0.0, 1e3, &std)) != DLCL_OK)
        return st;
    p->heads = (int)heads;
    p->dropout = (float)dropout;
    p->init_std = (float)std;
    return DLCL_OK;
}

static op_attn_shape shape_of(const attn_priv *p, int count)
{
    return (op_attn_shape){count, p->t, p->heads, p->width / p->heads};
}

static void add_weight(layer *l, const char *suffix, int64_t rows, int64_t cols)
{
    layer_add_param(l, suffix, 2, (int64_t[]){rows, cols}, LAYER_PARAM, LAYER_INIT_NORMAL, 0);
    l->params[l->n_params - 1].std = ((const attn_priv *)l->priv)->init_std;
}

static dlcl_status attn_shape(layer *l)
{
    attn_priv *p = l->priv;
    const layer_shape *in = &l->in[0];
    char s[64];
    if (in->ndim != 2)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s] (attention): needs a sequence input T,width (2-d), but %s is %s "
                         "(%d-d)", l->name, l->in_names && l->in_names[0] ? l->in_names[0] : "its input",
                         layer_shape_str(*in, s, sizeof s), in->ndim);
    p->t = in->dims[0];
    p->width = in->dims[1];
    if (p->width % p->heads != 0)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s] (attention): width %d is not a multiple of heads = %d", l->name,
                         p->width, p->heads);
    if ((double)p->t * 3 * p->width > INT32_MAX || 3.0 * p->width * p->width > INT32_MAX)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s] (attention): T %d x width %d is too large", l->name, p->t,
                         p->width);
    const int64_t w = p->width;
    p->w_attn = l->n_params;
    add_weight(l, "c_attn.weight", w, 3 * w);
    p->b_attn = p->bias ? l->n_params : -1;
    if (p->bias) layer_add_param(l, "c_attn.bias", 1, (int64_t[]){3 * w}, LAYER_PARAM, LAYER_INIT_ZERO, 0);
    p->w_proj = l->n_params;
    add_weight(l, "c_proj.weight", w, w);
    p->b_proj = p->bias ? l->n_params : -1;
    if (p->bias) layer_add_param(l, "c_proj.bias", 1, (int64_t[]){w}, LAYER_PARAM, LAYER_INIT_ZERO, 0);
    l->out = *in;
    /* the projections, then q k^T and p v over the causal half */
    l->flops = 8.0 * p->t * (double)w * w + 2.0 * p->t * (p->t + 1.0) * w;
    return DLCL_OK;
}

/* Evaluation runs the online kernel on CPU devices (measured faster there: attention.cl), the
 * materialised path on GPUs, whose private memory would not hold the online kernel's rows. */
static bool online(const dlcl_ctx *ctx, const op_attn_shape *s)
{
    return ctx->cpu_device && s->head_dim <= OP_ATTENTION_ONLINE_MAX_HEAD_DIM;
}

/* Workspace (floats): qkv and z (evaluation, decoding) or dz and dqkv (backward), 4 rows of
 * width per position, and the t x t planes unless evaluation runs the online kernel. */
static dlcl_status attn_alloc(layer *l, dlcl_ctx *ctx, int batch)
{
    attn_priv *p = l->priv;
    p->ctx = ctx;
    const op_attn_shape s = shape_of(p, batch);
    const size_t rows = (size_t)batch * p->t, w = (size_t)p->width, planes = op_attention_workspace(&s);
    if ((double)rows * 3 * w > INT32_MAX || (double)batch * p->heads * p->t * p->t > INT32_MAX)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s] (attention): a batch of %d sequences of %d x %d (%d heads) "
                         "exceeds 2^31 - 1 values in qkv or the attention probabilities; lower [net] batch", l->name,
                         batch, p->t, p->width, p->heads);
    l->ws_floats = rows * 4 * w + (l->inference && online(ctx, &s) ? 0 : planes);
    if (l->inference) return DLCL_OK;
    dlcl_status st = layer_buf_alloc(ctx, rows * 3 * w, l, "q, k, v", &p->qkv);
    if (st == DLCL_OK) st = layer_buf_alloc(ctx, planes, l, "attention probabilities", &p->probs);
    if (st == DLCL_OK) st = layer_buf_alloc(ctx, rows * w, l, "merged heads", &p->z);
    return st;
}

/* y = x W + b over m rows, W input-major [in][out] (GPT-2's Conv1D); no bias when bi < 0. */
static dlcl_status project(const layer *l, const layer_io *io, op_buf x, int wi, int bi, op_buf y, size_t m,
                           size_t in, size_t out)
{
    dlcl_status st = op_gemm(io->ctx, DLCL_NO_TRANS, DLCL_NO_TRANS, m, out, in, x, in, layer_param_buf(l, io, wi), out,
                             0.0f, y, out);
    if (st == DLCL_OK && bi >= 0) st = op_bias_add(io->ctx, y, layer_param_buf(l, io, bi), (int)m, (int)out, 1);
    return st;
}

/* dW = x^T dy and db = the column sums of dy, added to what is there for the tensors whose
 * io->accumulate bit is set. */
static dlcl_status project_grads(const layer *l, const layer_io *io, op_buf x, op_buf dy, int wi, int bi, size_t m,
                                 size_t in, size_t out)
{
    const unsigned acc = io->accumulate;
    dlcl_status st = op_gemm(io->ctx, DLCL_TRANS, DLCL_NO_TRANS, in, out, m, x, in, dy, out,
                             (acc >> wi & 1u) ? 1.0f : 0.0f, layer_grad_buf(l, io, wi), out);
    if (st == DLCL_OK && bi >= 0)
        st = op_bias_grad_acc(io->ctx, dy, layer_grad_buf(l, io, bi), (int)m, (int)out, 1, 1, (int)(acc >> bi & 1u));
    return st;
}

static dlcl_status attn_forward(layer *l, const layer_io *io)
{
    attn_priv *p = l->priv;
    if (io->steps > 0) { /* a cached pass: the caches are made on the first, for the net's batch */
        dlcl_status st = DLCL_OK;
        size_t n = attention_cache_floats(l, io->batch);
        p->ctx = io->ctx;
        if (p->k_cache.mem == NULL) st = layer_buf_alloc(io->ctx, n, l, "key cache", &p->k_cache);
        if (st == DLCL_OK && p->v_cache.mem == NULL) st = layer_buf_alloc(io->ctx, n, l, "value cache", &p->v_cache);
        return st == DLCL_OK ? attention_forward_cached(l, io, p->k_cache, p->v_cache, io->pos, io->steps) : st;
    }
    const op_attn_shape s = shape_of(p, io->count);
    const size_t m = (size_t)io->count * p->t, w = (size_t)p->width;
    const bool train = io->training != 0;
    const op_buf qkv = train ? p->qkv : io->ws, z = train ? p->z : op_b(io->ws.mem, io->ws.off + m * 3 * w);
    dlcl_status st = project(l, io, io->x[0], p->w_attn, p->b_attn, qkv, m, w, 3 * w);
    if (st != DLCL_OK) return st;
    if (train) {
        p->seed = io->seed;
        st = op_attention_forward(io->ctx, &s, qkv, p->probs, z, p->dropout, io->seed, io->ws);
    } else if (online(io->ctx, &s)) {
        const op_attn_rows q = {qkv, 3 * w, (size_t)p->t * 3 * w}, k = {op_b(qkv.mem, qkv.off + w), 3 * w, q.stride},
                           v = {op_b(qkv.mem, qkv.off + 2 * w), 3 * w, q.stride}, zr = {z, w, (size_t)p->t * w};
        st = op_attention_forward_online(io->ctx, &s, q, k, v, zr, p->t, 0);
    } else {
        st = op_attention_forward(io->ctx, &s, qkv, op_b(io->ws.mem, io->ws.off + m * 4 * w), z, 0.0f, 0, io->ws);
    }
    if (st == DLCL_OK) st = project(l, io, z, p->w_proj, p->b_proj, io->y, m, w, w);
    if (st == DLCL_OK && train && p->dropout > 0.0f)
        st = op_dropout_apply(io->ctx, p->dropout, dlcl__mix64(io->seed), io->y, io->y, m * w);
    return st;
}

/* Workspace: dz (m x width), dqkv (m x 3 width), then the planes of op_attention_backward. */
static dlcl_status attn_backward(layer *l, const layer_io *io)
{
    attn_priv *p = l->priv;
    const op_attn_shape s = shape_of(p, io->count);
    const size_t m = (size_t)io->count * p->t, w = (size_t)p->width;
    const op_buf dz = io->ws, dqkv = op_b(io->ws.mem, io->ws.off + m * w),
                 rest = op_b(io->ws.mem, io->ws.off + m * 4 * w);
    dlcl_status st = DLCL_OK;
    if (p->dropout > 0.0f) st = op_dropout_apply(io->ctx, p->dropout, dlcl__mix64(p->seed), io->dy, io->dy, m * w);
    if (st == DLCL_OK) st = project_grads(l, io, p->z, io->dy, p->w_proj, p->b_proj, m, w, w);
    if (st == DLCL_OK) /* dz = dy W_proj^T */
        st = op_gemm(io->ctx, DLCL_NO_TRANS, DLCL_TRANS, m, w, w, io->dy, w, layer_param_buf(l, io, p->w_proj), w,
                     0.0f, dz, w);
    if (st == DLCL_OK) st = op_attention_backward(io->ctx, &s, p->qkv, p->probs, dz, dqkv, p->dropout, p->seed, rest);
    if (st == DLCL_OK) st = project_grads(l, io, io->x[0], dqkv, p->w_attn, p->b_attn, m, w, 3 * w);
    if (st != DLCL_OK || io->dx[0].mem == NULL) return st;
    /* dx = dqkv W_attn^T */
    return op_gemm(io->ctx, DLCL_NO_TRANS, DLCL_TRANS, m, w, 3 * w, dqkv, 3 * w, layer_param_buf(l, io, p->w_attn),
                   3 * w, 0.0f, io->dx[0], w);
}

dlcl_status attention_forward_cached(layer *l, const layer_io *io, op_buf k_cache, op_buf v_cache, int pos, int n_new)
{
    if (l == NULL || io == NULL || l->type != &layer_attention)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "attention_forward_cached: layer [%s] is not an attention layer",
                         l && l->name ? l->name : "?");
    attn_priv *p = l->priv;
    if (io->count < 1 || n_new < 1 || pos < 0 || pos + n_new > p->t)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "attention_forward_cached: layer [%s]: %d sequences, positions %d .. %d "
                         "do not fit its context of %d", l->name, io->count, pos, pos + n_new - 1, p->t);
    const op_attn_shape s = shape_of(p, io->count);
    const size_t m = (size_t)io->count * n_new, w = (size_t)p->width;
    const op_buf qkv = io->ws, z = op_b(io->ws.mem, io->ws.off + m * 3 * w);
    dlcl_status st = project(l, io, io->x[0], p->w_attn, p->b_attn, qkv, m, w, 3 * w);
    if (st == DLCL_OK) st = op_attention_forward_cached(io->ctx, &s, qkv, n_new, pos, k_cache, v_cache, z);
    if (st == DLCL_OK) st = project(l, io, z, p->w_proj, p->b_proj, io->y, m, w, w);
    return st;
}

size_t attention_cache_floats(const layer *l, int batch)
{
    const attn_priv *p = l->priv;
    return (size_t)batch * p->t * p->width;
}

static void attn_describe(const layer *l, char *buf, size_t cap)
{
    const attn_priv *p = l->priv;
    char drop[40] = "";
    if (p->dropout > 0.0f) snprintf(drop, sizeof drop, ", dropout %g", (double)p->dropout);
    snprintf(buf, cap, "%d heads x %d, causal%s%s", p->heads, p->width / p->heads, p->bias ? "" : ", no bias", drop);
}

static void attn_free(layer *l)
{
    attn_priv *p = l->priv;
    if (p == NULL) return;
    if (p->ctx) {
        layer_buf_free(p->ctx, &p->qkv);
        layer_buf_free(p->ctx, &p->probs);
        layer_buf_free(p->ctx, &p->z);
        layer_buf_free(p->ctx, &p->k_cache);
        layer_buf_free(p->ctx, &p->v_cache);
    }
    free(p);
    l->priv = NULL;
}

const layer_type layer_attention = {"attention", attn_keys, 1, 1, LAYER_STEPS, attn_parse, attn_shape, attn_alloc,
                                    attn_forward, attn_backward, attn_describe, attn_free, NULL, NULL};
