/* [name] type=dense: fully connected, y = act(x W^T + b) with W [units][in] as PyTorch's
 * nn.Linear, or with layout = conv1d y = act(x W + b) with W [in][units] as Hugging Face's
 * Conv1D (GPT-2's attention and MLP weights), so its files load unchanged. A sequence input (T,D) is transformed at each position, as nn.Linear does on
 * [batch, T, D]: a [count*T, D] x [D, units] product and a T,units output. Any other input
 * is flattened in row-major order like torch.flatten (a no-op on NCHW). */
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"

typedef struct dense_priv {
    const char *tie; /* tie = NAME: the weight is layer NAME's (GPT-2's head: the token embedding) */
    int units, bias;
    int conv1d; /* layout = conv1d: W is [in][units] */
    double init_std; /* > 0: weight ~ N(0, init_std^2), bias 0 (GPT-2's); 0: nn.Linear's uniform */
    op_act act;
    float slope;
    dlcl_ctx *ctx;
    op_buf z;
} dense_priv;

static const char *const dense_keys[] = {"units", "bias", "activation", "slope", "tie", "layout", "init_std", NULL};
static const char *const dense_layouts[] = {"linear", "conv1d", NULL};

static dlcl_status dense_parse(layer *l, const cfg *c, const cfg_section *s)
{
    dense_priv *p = calloc(1, sizeof *p);
    if (p == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    l->priv = p;
    long units;
    dlcl_status st;
    if ((st = cfg_get_int(c, s, "units", 1, 0, 1, 1 << 24, &units)) != DLCL_OK ||
        (st = cfg_get_bool(c, s, "bias", 0, 1, &p->bias)) != DLCL_OK ||
        (st = layer_parse_activation(c, s, &p->act, &p->slope)) != DLCL_OK ||
        (st = cfg_get_str(c, s, "tie", 0, "", &p->tie)) != DLCL_OK ||
        (st = cfg_get_enum(c, s, "layout", 0, 0, dense_layouts, &p->conv1d)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "init_std", 0, 0.0, 0.0, 1e6, &p->init_std)) != DLCL_OK)
        return st;
    if (p->tie[0] == '\0') p->tie = NULL;
    p->units = (int)units;
    return DLCL_OK;
}

/* Rows of the product per sample (T for a sequence, else 1) and the features of each row. */
static size_t dense_rows(const layer *l) { return l->in[0].ndim == 2 ? (size_t)l->in[0].dims[0] : 1; }
static size_t dense_in(const layer *l) { return l->in[0].ndim == 2 ? (size_t)l->in[0].dims[1] : layer_shape_numel(l->in[0]); }

static dlcl_status dense_shape(layer *l)
{
    dense_priv *p = l->priv;
    size_t in = dense_in(l), wn;
    if (l->in[0].dtype != DLCL_FLOAT32)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s] (dense): its input holds int32 token ids; an embedding layer turns "
                                         "them into vectors", l->name);
    if (in > (size_t)1 << 30 || !dlcl__mul_ok(in, (size_t)p->units, &wn) || wn > (size_t)INT32_MAX)
        return dlcl__err(DLCL_ERR_SHAPE, "layer [%s]: %zu inputs x %d units is too large", l->name, in, p->units);
    l->out = layer_shape_vec(p->units);
    if (l->in[0].ndim == 2) l->out = (layer_shape){2, {l->in[0].dims[0], p->units, 0, 0}, DLCL_FLOAT32};
    int64_t w[2] = {p->units, (int64_t)in};
    if (p->conv1d) w[0] = (int64_t)in, w[1] = p->units;
    layer_add_param(l, "weight", 2, w, LAYER_PARAM, LAYER_INIT_FAN_IN, (float)in);
    l->params[0].tie = p->tie;
    if (p->tie) l->param_count -= l->params[0].numel; /* not a tensor of its own */
    if (p->init_std > 0) {
        l->params[0].init = LAYER_INIT_NORMAL;
        l->params[0].std = (float)p->init_std;
    }
    if (p->bias)
        layer_add_param(l, "bias", 1, (int64_t[]){p->units}, LAYER_PARAM,
                        p->init_std > 0 ? LAYER_INIT_ZERO : LAYER_INIT_FAN_IN, (float)in);
    l->flops = 2.0 * (double)in * p->units * (double)dense_rows(l);
    return DLCL_OK;
}

static dlcl_status dense_alloc(layer *l, dlcl_ctx *ctx, int batch)
{
    dense_priv *p = l->priv;
    p->ctx = ctx;
    if (p->act == OP_ACT_LINEAR && !l->half) return DLCL_OK; /* half: the product is float, stored after */
    return layer_buf_alloc(ctx, (size_t)batch * dense_rows(l) * (size_t)p->units, l, "pre-activation", &p->z);
}

static dlcl_status dense_forward(layer *l, const layer_io *io)
{
    dense_priv *p = l->priv;
    size_t in = dense_in(l), m = (size_t)io->count * (l->in[0].ndim == 2 ? layer_io_steps(io, l->in[0]) : 1);
    size_t u = (size_t)p->units;
    op_buf out = p->act == OP_ACT_LINEAR && !io->y.half ? io->y : p->z;
    op_buf w = layer_weight_buf(l, io, 0), b = layer_bias_buf(l, io, p->bias ? 1 : -1);
    dlcl_status st = p->conv1d
                         ? op_gemm(io->ctx, DLCL_NO_TRANS, DLCL_NO_TRANS, m, u, in, io->x[0], in, w, u, 0.0f, out, u)
                         : op_gemm(io->ctx, DLCL_NO_TRANS, DLCL_TRANS, m, u, in, io->x[0], in, w, in, 0.0f, out, u);
    if (st == DLCL_OK && b.mem != NULL) st = op_bias_add(io->ctx, out, b, (int)m, p->units, 1);
    if (st != DLCL_OK || out.mem == io->y.mem) return st;
    if (p->act == OP_ACT_LINEAR) return op_convert(io->ctx, p->z, io->y, m * u);
    return op_activation_forward(io->ctx, p->act, p->slope, p->z, io->y, m * u);
}

static dlcl_status dense_backward(layer *l, const layer_io *io)
{
    dense_priv *p = l->priv;
    size_t in = dense_in(l), m = (size_t)io->count * dense_rows(l), u = (size_t)p->units;
    dlcl_status st = DLCL_OK;
    if (p->act != OP_ACT_LINEAR)
        st = op_activation_backward(io->ctx, p->act, p->slope, p->z, io->y, io->dy, io->dy, m * u);
    float beta = (io->accumulate & 1u) ? 1.0f : 0.0f; /* + dW when the weight is shared */
    if (st == DLCL_OK && p->conv1d) /* dW = x^T dy */
        st = op_gemm(io->ctx, DLCL_TRANS, DLCL_NO_TRANS, in, u, m, io->x[0], in, io->dy, u, beta,
                     layer_grad_buf(l, io, 0), u);
    else if (st == DLCL_OK) /* dW = dy^T x */
        st = op_gemm(io->ctx, DLCL_TRANS, DLCL_NO_TRANS, u, in, m, io->dy, u, io->x[0], in, beta,
                     layer_grad_buf(l, io, 0), in);
    if (st == DLCL_OK && p->bias) st = op_bias_grad(io->ctx, io->dy, layer_grad_buf(l, io, 1), (int)m, p->units, 1);
    if (st != DLCL_OK || io->dx[0].mem == NULL) return st;
    if (p->conv1d) /* dx = dy W^T */
        return op_gemm(io->ctx, DLCL_NO_TRANS, DLCL_TRANS, m, in, u, io->dy, u, layer_param_buf(l, io, 0), u, 0.0f,
                       io->dx[0], in);
    /* dx = dy W */
    return op_gemm(io->ctx, DLCL_NO_TRANS, DLCL_NO_TRANS, m, in, u, io->dy, u, layer_param_buf(l, io, 0), in, 0.0f,
                   io->dx[0], in);
}

static void dense_describe(const layer *l, char *buf, size_t cap)
{
    const dense_priv *p = l->priv;
    snprintf(buf, cap, "%zu -> %d%s%s", dense_in(l), p->units, p->act != OP_ACT_LINEAR ? ", " : "",
             p->act != OP_ACT_LINEAR ? op_act_names[p->act] : "");
}

/* A batch norm over its units (a 1-d output; W [units][in]) folds into W and the bias. */
static bool dense_absorb(layer *l, op_act act, float slope)
{
    dense_priv *p = l->priv;
    if (p->act != OP_ACT_LINEAR || p->conv1d || l->out.ndim != 1) return false;
    p->act = act;
    p->slope = slope;
    return true;
}

static void dense_free(layer *l)
{
    dense_priv *p = l->priv;
    if (p == NULL) return;
    if (p->ctx) layer_buf_free(p->ctx, &p->z);
    free(p);
    l->priv = NULL;
}

const layer_type layer_dense = {"dense", dense_keys, 1, 1, LAYER_STEPS | LAYER_HALF, dense_parse, dense_shape, dense_alloc,
                                dense_forward, dense_backward, dense_describe, dense_free, NULL, dense_absorb};
