/* [name] type=lstm | gru  hidden=H [layers=1] [dropout=0] [bias=1]
 * torch.nn.LSTM / nn.GRU with batch_first=True, one direction, zero initial states: a T,D
 * sequence in, the last layer's hidden state at every position out (T,hidden). Tensors as
 * PyTorch names them, per layer k: weight_ih_lk [G*hidden][in], weight_hh_lk
 * [G*hidden][hidden], bias_ih_lk and bias_hh_lk [G*hidden] (G = 4 for the LSTM's gates
 * i, f, g, o; 3 for the GRU's r, z, n), all U(-1/sqrt(hidden), 1/sqrt(hidden)) as PyTorch
 * initialises them. dropout applies to the outputs of every layer but the last, in training
 * only, as PyTorch's.
 *
 * Layer k runs one GEMM for the input projection of every position ([count*T][in] x W_ih^T),
 * then per step t the [count][hidden] product h_{t-1} W_hh^T (rows T apart in the
 * position-major buffers) and a fused cell kernel (lib/ops/rnn.c). The backward goes back
 * through time with the cell's gradient kernel and dh_{t-1} += dG_t W_hh per step, then
 * dW_ih, dW_hh, the biases and dx over all positions at once. */
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"

/* 4 tensors a layer: 8 layers fill LAYER_MAX_PARAMS. */
#define RNN_MAX_LAYERS 8
_Static_assert(RNN_MAX_LAYERS * 4 <= LAYER_MAX_PARAMS, "an rnn layer's tensors fit in layer.params");

/* Device state of layer k, for `batch` sequences (rows b*T + t). */
typedef struct rnn_level {
    op_buf xg;       /* [rows][G*H]: input projection, then activated gates, then their gradients */
    op_buf hg;       /* GRU: [rows][G*H] hidden projection, then the hidden-side gradients */
    op_buf c;        /* LSTM: [rows][H] cell states */
    op_buf hprev;    /* [rows][H] h_{t-1} of each row (0 at t = 0) */
    op_buf y, dy;    /* [rows][H] output and its gradient, below the last layer (which uses io's) */
    op_buf xd, mask; /* k >= 1 with dropout: the dropped input and its mask */
    op_buf whh_t;    /* [H][G*H] W_hh^T, made at each forward: the steps' products need no transpose */
} rnn_level;

typedef struct rnn_priv {
    int gru; /* 0: LSTM, 1: GRU */
    int hidden, layers, bias;
    float dropout;
    int T, D;
    dlcl_ctx *ctx;
    rnn_level lv[RNN_MAX_LAYERS];
    op_buf dc; /* LSTM backward: dL/dc carried between steps, [batch][H] */
    op_buf ylast; /* cached passes: the last level's output at rows b*T + t, made on the first */
    char names[RNN_MAX_LAYERS][4][24]; /* "weight_ih_l0", ...: the tensors' suffixes */
} rnn_priv;

static const char *const rnn_keys[] = {"hidden", "layers", "dropout", "bias", NULL};

static int gate_blocks(const rnn_priv *p) { return p->gru ? 3 : 4; }
static int tensors_per_level(const rnn_priv *p) { return p->bias ? 4 : 2; }

static dlcl_status rnn_parse(layer *l, const cfg *c, const cfg_section *s, int gru)
{
    rnn_priv *p = calloc(1, sizeof *p);
    if (p == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    l->priv = p;
    p->gru = gru;
    long hidden, layers;
    double dropout;
    dlcl_status st;
    if ((st = cfg_get_int(c, s, "hidden", 1, 0, 1, 1 << 16, &hidden)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "layers", 0, 1, 1, RNN_MAX_LAYERS, &layers)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "dropout", 0, 0.0, 0.0, 0.999, &dropout)) != DLCL_OK ||
        (st = cfg_get_bool(c, s, "bias", 0, 1, &p->bias)) != DLCL_OK)
        return st;
    p->hidden = (int)hidden;
    p->layers = (int)layers;
    p->dropout = (float)dropout;
    return DLCL_OK;
}

static dlcl_status lstm_parse(layer *l, const cfg *c, const cfg_section *s) { return rnn_parse(l, c, s, 0); }
static dlcl_status gru_parse(layer *l, const cfg *c, const cfg_section *s) { return rnn_parse(l, c, s, 1); }

static dlcl_status rnn_shape(layer *l)
{
    rnn_priv *p = l->priv;
    const layer_shape *in = &l->in[0];
    char s[64];
    if (in->ndim != 2)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s] (%s): needs a T,D sequence input (T positions of D features), "
                         "but %s is %s (%d-d)", l->name, l->type->name,
                         l->in_names && l->in_names[0] ? l->in_names[0] : "its input",
                         layer_shape_str(*in, s, sizeof s), in->ndim);
    p->T = in->dims[0];
    p->D = in->dims[1];
    const int64_t g = (int64_t)gate_blocks(p) * p->hidden, h = p->hidden;
    if ((double)p->T * (double)g > (double)INT32_MAX || (double)g * (p->D > h ? p->D : h) > (double)INT32_MAX)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s] (%s): %d positions x %lld gate values is too large", l->name,
                         l->type->name, p->T, (long long)g);
    l->out = (layer_shape){2, {p->T, p->hidden, 0, 0}, DLCL_FLOAT32};
    l->flops = 0;
    for (int k = 0; k < p->layers; k++) {
        const int64_t in_k = k ? h : p->D;
        snprintf(p->names[k][0], sizeof p->names[k][0], "weight_ih_l%d", k);
        snprintf(p->names[k][1], sizeof p->names[k][1], "weight_hh_l%d", k);
        snprintf(p->names[k][2], sizeof p->names[k][2], "bias_ih_l%d", k);
        snprintf(p->names[k][3], sizeof p->names[k][3], "bias_hh_l%d", k);
        layer_add_param(l, p->names[k][0], 2, (int64_t[]){g, in_k}, LAYER_PARAM, LAYER_INIT_FAN_IN, (float)h);
        layer_add_param(l, p->names[k][1], 2, (int64_t[]){g, h}, LAYER_PARAM, LAYER_INIT_FAN_IN, (float)h);
        if (p->bias) {
            layer_add_param(l, p->names[k][2], 1, &g, LAYER_PARAM, LAYER_INIT_FAN_IN, (float)h);
            layer_add_param(l, p->names[k][3], 1, &g, LAYER_PARAM, LAYER_INIT_FAN_IN, (float)h);
        }
        l->flops += 2.0 * p->T * (double)g * (double)(in_k + h) + 12.0 * p->T * (double)h;
    }
    return DLCL_OK;
}

static dlcl_status rnn_alloc(layer *l, dlcl_ctx *ctx, int batch)
{
    rnn_priv *p = l->priv;
    p->ctx = ctx;
    const size_t rows = (size_t)batch * p->T, h = (size_t)p->hidden, g = (size_t)gate_blocks(p) * h;
    if ((double)rows * (double)g > (double)INT32_MAX)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s] (%s): %d sequences x %d positions x %zu gate values exceed the "
                         "kernels' int range (lower the batch)", l->name, l->type->name, batch, p->T, g);
    const bool train = !l->inference, drop = train && p->dropout > 0.0f;
    dlcl_status st = DLCL_OK;
    for (int k = 0; k < p->layers && st == DLCL_OK; k++) {
        rnn_level *v = &p->lv[k];
        st = layer_buf_alloc(ctx, rows * g, l, "gates", &v->xg);
        if (st == DLCL_OK && p->gru) st = layer_buf_alloc(ctx, rows * g, l, "hidden projection", &v->hg);
        if (st == DLCL_OK && !p->gru) st = layer_buf_alloc(ctx, rows * h, l, "cell states", &v->c);
        if (st == DLCL_OK) st = layer_buf_alloc(ctx, rows * h, l, "previous hidden states", &v->hprev);
        if (st == DLCL_OK) st = layer_buf_alloc(ctx, h * g, l, "transposed weight_hh", &v->whh_t);
        if (st == DLCL_OK && k + 1 < p->layers) st = layer_buf_alloc(ctx, rows * h, l, "layer output", &v->y);
        if (st == DLCL_OK && k + 1 < p->layers && train)
            st = layer_buf_alloc(ctx, rows * h, l, "layer output gradient", &v->dy);
        if (st == DLCL_OK && k > 0 && drop) st = layer_buf_alloc(ctx, rows * h, l, "dropped input", &v->xd);
        if (st == DLCL_OK && k > 0 && drop) st = layer_buf_alloc(ctx, rows * h, l, "dropout mask", &v->mask);
    }
    if (st == DLCL_OK && train && !p->gru) st = layer_buf_alloc(ctx, (size_t)batch * h, l, "cell gradient", &p->dc);
    return st;
}

/* Views of tensor j (0 weight_ih, 1 weight_hh, 2 bias_ih, 3 bias_hh) of level k. */
static int tensor_index(const rnn_priv *p, int k, int j) { return k * tensors_per_level(p) + j; }
static op_buf weight(const layer *l, const layer_io *io, int k, int j)
{
    return layer_param_buf(l, io, tensor_index(l->priv, k, j));
}
static op_buf bias(const layer *l, const layer_io *io, int k, int j)
{
    return ((const rnn_priv *)l->priv)->bias ? weight(l, io, k, j) : op_b(NULL, 0);
}

static op_buf at(op_buf b, size_t off) { return op_b(b.mem, b.off + off); }

/* The dropout mask before level k: its own stream of the step's seed. */
static uint64_t level_seed(const layer_io *io, int k) { return dlcl__mix64(io->seed + (uint64_t)k); }

/* The recurrence of level k over positions t0 .. t1-1 (its gates' input projection in xg),
 * from the state the step before t0 left in its buffers. */
static dlcl_status level_steps(const layer *l, const layer_io *io, int k, int t0, int t1, op_buf y)
{
    const rnn_priv *p = l->priv;
    const rnn_level *v = &p->lv[k];
    const size_t T = (size_t)p->T, h = (size_t)p->hidden, g = (size_t)gate_blocks(p) * h, count = (size_t)io->count;
    const op_buf b_ih = bias(l, io, k, 2), b_hh = bias(l, io, k, 3);
    dlcl_status st = DLCL_OK;
    for (int t = t0; t < t1 && st == DLCL_OK; t++) {
        if (t > 0)
            st = op_gemm(io->ctx, DLCL_NO_TRANS, DLCL_NO_TRANS, count, g, h, at(v->hprev, t * h), T * h, v->whh_t, g,
                         p->gru ? 0.0f : 1.0f, at(p->gru ? v->hg : v->xg, t * g), T * g);
        if (st != DLCL_OK) break;
        if (p->gru)
            st = op_gru_cell_forward(io->ctx, io->count, p->T, p->hidden, t, v->xg, v->hg, b_ih, b_hh, y, v->hprev);
        else
            st = op_lstm_cell_forward(io->ctx, io->count, p->T, p->hidden, t, v->xg, b_ih, b_hh, v->c, y, v->hprev);
    }
    return st;
}

/* Level k over x [rows][in] into y [rows][H]. */
static dlcl_status level_forward(const layer *l, const layer_io *io, int k, op_buf x, size_t in, op_buf y)
{
    const rnn_priv *p = l->priv;
    const rnn_level *v = &p->lv[k];
    const size_t T = (size_t)p->T, h = (size_t)p->hidden, g = (size_t)gate_blocks(p) * h, count = (size_t)io->count;
    dlcl_status st = op_transpose(io->ctx, weight(l, io, k, 1), g, h, v->whh_t);
    /* xg = x W_ih^T at every position */
    if (st == DLCL_OK)
        st = op_gemm(io->ctx, DLCL_NO_TRANS, DLCL_TRANS, count * T, g, in, x, in, weight(l, io, k, 0), in, 0.0f, v->xg,
                     g);
    return st == DLCL_OK ? level_steps(l, io, k, 0, p->T, y) : st;
}

/* A cached pass (generation): positions pos .. pos+steps-1 continue from the states that the
 * earlier passes left at rows b*T + pos - 1 of each level's buffers; io->x[0] holds steps rows
 * per sample, and so does io->y. Dropout is off (evaluation). */
static dlcl_status rnn_forward_steps(layer *l, const layer_io *io)
{
    rnn_priv *p = l->priv;
    const size_t T = (size_t)p->T, h = (size_t)p->hidden, g = (size_t)gate_blocks(p) * h, steps = (size_t)io->steps;
    const size_t pos = (size_t)io->pos, count = (size_t)io->count;
    dlcl_status st = DLCL_OK;
    if (p->ylast.mem == NULL) st = layer_buf_alloc(io->ctx, (size_t)io->batch * T * h, l, "cached output", &p->ylast);
    for (int k = 0; k < p->layers && st == DLCL_OK; k++) {
        rnn_level *v = &p->lv[k];
        size_t in = k ? h : (size_t)p->D;
        st = op_transpose(io->ctx, weight(l, io, k, 1), g, h, v->whh_t);
        for (size_t b = 0; b < count && st == DLCL_OK; b++) { /* xg rows b*T + pos.. = x W_ih^T */
            op_buf x = k ? at(p->lv[k - 1].y, (b * T + pos) * h) : at(io->x[0], b * steps * in);
            st = op_gemm(io->ctx, DLCL_NO_TRANS, DLCL_TRANS, steps, g, in, x, in, weight(l, io, k, 0), in, 0.0f,
                         at(v->xg, (b * T + pos) * g), g);
        }
        if (st == DLCL_OK) st = level_steps(l, io, k, (int)pos, (int)(pos + steps), k + 1 < p->layers ? v->y : p->ylast);
    }
    /* the new positions of every sample, to io->y's steps rows per sample */
    if (st == DLCL_OK) st = op_copy_rows(io->ctx, at(p->ylast, pos * h), T * h, io->y, steps * h, count, steps * h);
    return st;
}

static dlcl_status rnn_forward(layer *l, const layer_io *io)
{
    rnn_priv *p = l->priv;
    if (io->steps > 0) return rnn_forward_steps(l, io);
    const size_t n = (size_t)io->count * p->T * p->hidden;
    op_buf x = io->x[0];
    dlcl_status st = DLCL_OK;
    for (int k = 0; k < p->layers && st == DLCL_OK; k++) {
        rnn_level *v = &p->lv[k];
        if (k > 0 && io->training && p->dropout > 0.0f) {
            st = op_dropout_forward(io->ctx, p->dropout, level_seed(io, k), x, v->xd, v->mask, n);
            x = v->xd;
        }
        op_buf y = k + 1 < p->layers ? v->y : io->y;
        if (st == DLCL_OK) st = level_forward(l, io, k, x, k ? (size_t)p->hidden : (size_t)p->D, y);
        x = y;
    }
    return st;
}

/* Whether the backward adds tensor i's gradient to what is there (a tied weight's). */
static int adds(const layer_io *io, int i) { return (int)((io->accumulate >> i) & 1u); }

/* Level k back from dy [rows][H] (overwritten): its tensors' gradients (added where
 * io->accumulate says), and dx [rows][in] when dx.mem is not NULL. */
static dlcl_status level_backward(const layer *l, const layer_io *io, int k, op_buf x, size_t in, op_buf dy, op_buf dx)
{
    const rnn_priv *p = l->priv;
    const rnn_level *v = &p->lv[k];
    const size_t T = (size_t)p->T, h = (size_t)p->hidden, g = (size_t)gate_blocks(p) * h, count = (size_t)io->count,
                 rows = count * T;
    const op_buf w_hh = weight(l, io, k, 1), dgh = p->gru ? v->hg : v->xg; /* hidden-side gate gradients */
    dlcl_status st = DLCL_OK;
    for (int t = p->T - 1; t >= 0 && st == DLCL_OK; t--) {
        st = p->gru ? op_gru_cell_backward(io->ctx, io->count, p->T, p->hidden, t, v->xg, v->hg, v->hprev, dy)
                    : op_lstm_cell_backward(io->ctx, io->count, p->T, p->hidden, t, v->xg, v->c, dy, p->dc);
        if (st == DLCL_OK && t > 0) /* dh_{t-1} += dG_t W_hh */
            st = op_gemm(io->ctx, DLCL_NO_TRANS, DLCL_NO_TRANS, count, h, g, at(dgh, t * g), T * g, w_hh, h, 1.0f,
                         at(dy, (t - 1) * h), T * h);
    }
    const int i0 = tensor_index(p, k, 0);
    if (st == DLCL_OK) /* dW_ih = dG_x^T x */
        st = op_gemm(io->ctx, DLCL_TRANS, DLCL_NO_TRANS, g, in, rows, v->xg, g, x, in, adds(io, i0) ? 1.0f : 0.0f,
                     layer_grad_buf(l, io, i0), in);
    if (st == DLCL_OK) /* dW_hh = dG_h^T hprev */
        st = op_gemm(io->ctx, DLCL_TRANS, DLCL_NO_TRANS, g, h, rows, dgh, g, v->hprev, h,
                     adds(io, i0 + 1) ? 1.0f : 0.0f, layer_grad_buf(l, io, i0 + 1), h);
    /* the biases: the LSTM's two get the same sums; the GRU's differ in the n block */
    if (st == DLCL_OK && p->bias)
        st = op_rnn_bias_grad(io->ctx, v->xg, (int)rows, (int)g, layer_grad_buf(l, io, i0 + 2), adds(io, i0 + 2),
                              p->gru ? op_b(NULL, 0) : layer_grad_buf(l, io, i0 + 3), adds(io, i0 + 3));
    if (st == DLCL_OK && p->bias && p->gru)
        st = op_rnn_bias_grad(io->ctx, dgh, (int)rows, (int)g, layer_grad_buf(l, io, i0 + 3), adds(io, i0 + 3),
                              op_b(NULL, 0), 0);
    if (st != DLCL_OK || dx.mem == NULL) return st;
    /* dx = dG_x W_ih */
    return op_gemm(io->ctx, DLCL_NO_TRANS, DLCL_NO_TRANS, rows, in, g, v->xg, g, weight(l, io, k, 0), in, 0.0f, dx, in);
}

static dlcl_status rnn_backward(layer *l, const layer_io *io)
{
    rnn_priv *p = l->priv;
    const size_t n = (size_t)io->count * p->T * p->hidden;
    const bool drop = p->dropout > 0.0f; /* a backward follows a training forward */
    dlcl_status st = DLCL_OK;
    for (int k = p->layers - 1; k >= 0 && st == DLCL_OK; k--) {
        const rnn_level *v = &p->lv[k];
        op_buf x = k == 0 ? io->x[0] : drop ? v->xd : p->lv[k - 1].y;
        op_buf dy = k + 1 < p->layers ? v->dy : io->dy, dx = k == 0 ? io->dx[0] : p->lv[k - 1].dy;
        st = level_backward(l, io, k, x, k ? (size_t)p->hidden : (size_t)p->D, dy, dx);
        if (st == DLCL_OK && k > 0 && drop) st = op_dropout_backward(io->ctx, dx, v->mask, dx, n);
    }
    return st;
}

static void rnn_describe(const layer *l, char *buf, size_t cap)
{
    const rnn_priv *p = l->priv;
    int n = snprintf(buf, cap, "%d -> %d, %d layer%s", p->D, p->hidden, p->layers, p->layers > 1 ? "s" : "");
    if (n >= 0 && (size_t)n < cap && p->dropout > 0.0f && p->layers > 1)
        n += snprintf(buf + n, cap - (size_t)n, ", dropout %g", (double)p->dropout);
    if (n >= 0 && (size_t)n < cap && !p->bias) snprintf(buf + n, cap - (size_t)n, ", no bias");
}

static void rnn_free(layer *l)
{
    rnn_priv *p = l->priv;
    if (p == NULL) return;
    if (p->ctx) {
        for (int k = 0; k < RNN_MAX_LAYERS; k++) {
            rnn_level *v = &p->lv[k];
            op_buf *bufs[] = {&v->xg, &v->hg, &v->c, &v->hprev, &v->y, &v->dy, &v->xd, &v->mask, &v->whh_t};
            for (size_t i = 0; i < DLCL__ARRAY_LEN(bufs); i++) layer_buf_free(p->ctx, bufs[i]);
        }
        layer_buf_free(p->ctx, &p->dc);
    }
    free(p);
    l->priv = NULL;
}

const layer_type layer_lstm = {"lstm", rnn_keys, 1, 1, LAYER_STEPS, lstm_parse, rnn_shape, rnn_alloc,
                               rnn_forward, rnn_backward, rnn_describe, rnn_free, NULL, NULL};
const layer_type layer_gru = {"gru", rnn_keys, 1, 1, LAYER_STEPS, gru_parse, rnn_shape, rnn_alloc,
                              rnn_forward, rnn_backward, rnn_describe, rnn_free, NULL, NULL};
