/* [name] type=conv: 2-D convolution (+ bias) (+ fused activation).
 * y = act(conv(x, W) + b), W in OIHW as PyTorch's nn.Conv2d. */
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"

typedef struct conv_priv {
    op_conv_shape shape;
    int bias;
    op_act act;
    float slope;
    dlcl_ctx *ctx;
    op_buf z; /* pre-activation output, kept for the GELUs only: other activations are fused */
    op_conv_choice choice; /* forward algorithm and chunk (op_conv2d_find) */
} conv_priv;

static const char *const conv_keys[] = {"filters", "size", "stride", "pad", "dilation", "groups", "bias",
                                        "activation", "slope", NULL};

static dlcl_status conv_parse(layer *l, const cfg *c, const cfg_section *s)
{
    conv_priv *p = calloc(1, sizeof *p);
    if (p == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    l->priv = p;
    long filters, size, stride, pad, dil, groups;
    int bias;
    dlcl_status st;
    if ((st = cfg_get_int(c, s, "filters", 1, 0, 1, 1 << 16, &filters)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "size", 1, 0, 1, 1024, &size)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "stride", 0, 1, 1, 1024, &stride)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "pad", 0, 0, 0, 1024, &pad)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "dilation", 0, 1, 1, 1024, &dil)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "groups", 0, 1, 1, 1 << 16, &groups)) != DLCL_OK ||
        (st = cfg_get_bool(c, s, "bias", 0, 1, &bias)) != DLCL_OK ||
        (st = layer_parse_activation(c, s, &p->act, &p->slope)) != DLCL_OK)
        return st;
    p->shape = (op_conv_shape){.k = (int)filters, .r = (int)size, .s = (int)size, .stride_h = (int)stride,
                               .stride_w = (int)stride, .pad_h = (int)pad, .pad_w = (int)pad, .dil_h = (int)dil,
                               .dil_w = (int)dil, .groups = (int)groups};
    p->bias = bias;
    return DLCL_OK;
}

static dlcl_status conv_shape(layer *l)
{
    conv_priv *p = l->priv;
    op_conv_shape *s = &p->shape;
    dlcl_status st = layer_want_chw(l, 0);
    if (st != DLCL_OK) return st;
    s->n = 1;
    s->c = l->in[0].dims[0];
    s->h = l->in[0].dims[1];
    s->w = l->in[0].dims[2];
    st = op_conv_shape_infer(s);
    if (st != DLCL_OK) return dlcl__err_prefix(st, "layer [%s]", l->name);
    l->out = layer_shape_chw(s->k, s->p, s->q);
    int cg = s->c / s->groups;
    float fan_in = (float)cg * s->r * s->s;
    layer_add_param(l, "weight", 4, (int64_t[]){s->k, cg, s->r, s->s}, LAYER_PARAM, LAYER_INIT_FAN_IN, fan_in);
    if (p->bias) layer_add_param(l, "bias", 1, (int64_t[]){s->k}, LAYER_PARAM, LAYER_INIT_FAN_IN, fan_in);
    l->flops = 2.0 * (double)s->k * s->p * s->q * cg * s->r * s->s;
    return DLCL_OK;
}

static const char *algo_name(const op_conv_shape *s, op_conv_algo a)
{
    if (a == OP_CONV_AUTO) a = op_conv2d_heuristic(s);
    return a == OP_CONV_DIRECT     ? "direct"
           : a == OP_CONV_WINOGRAD ? "winograd"
           : a == OP_CONV_FFT      ? "fft"
           : a == OP_CONV_IMPLICIT ? "implicit"
                                   : "gemm";
}

/* The forward algorithm and workspace chunk are timed on this device for this batch the
 * first time (op_conv2d_find; DLCL_AUTOTUNE=0: the heuristic), then read from the cache. */
static dlcl_status conv_alloc(layer *l, dlcl_ctx *ctx, int batch)
{
    conv_priv *p = l->priv;
    p->ctx = ctx;
    op_conv_shape s = p->shape;
    s.n = batch;
    double t0 = rt_now_ms();
    int passes = l->inference ? OP_FIND_FORWARD : l->needs_dx ? OP_FIND_BACKWARD_DX : OP_FIND_BACKWARD;
    if (p->act != OP_ACT_LINEAR && !op_act_needs_input(p->act)) passes |= OP_FIND_ACT; /* GELUs run apart */
    if (l->half) passes |= OP_FIND_HALF; /* im2col + GEMM or direct, the forwards with a half path */
    dlcl_status st = op_conv2d_find(ctx, &s, passes, &p->choice);
    if (st != DLCL_OK) return dlcl__err_prefix(st, "layer [%s]", l->name);
    if (p->choice.timed == 1)
        dlcl__log(ctx, DLCL_LOG_INFO, "layer [%s]: timed %d convolution candidates in %.2f s: %s forward, %d images "
                  "per chunk (kept in the cache; DLCL_AUTOTUNE=0 skips this)", l->name, p->choice.candidates,
                  (rt_now_ms() - t0) * 1e-3, algo_name(&p->shape, p->choice.forward),
                  p->choice.chunk);
    p->shape.chunk = s.chunk = p->choice.chunk;
    p->shape.winograd_dx = s.winograd_dx = p->choice.winograd_dx;
    p->shape.winograd = s.winograd = p->choice.forward == OP_CONV_WINOGRAD;
    p->shape.fft = s.fft = p->choice.forward == OP_CONV_FFT;
    p->shape.fft_bwd = s.fft_bwd = p->choice.fft_bwd;
    p->shape.implicit = s.implicit = p->choice.forward == OP_CONV_IMPLICIT;
    p->shape.implicit_bwd = s.implicit_bwd = p->choice.implicit_bwd;
    l->ws_floats = op_conv2d_workspace(ctx, &s);
    if (!op_act_needs_input(p->act)) return DLCL_OK;
    return layer_buf_alloc(ctx, (size_t)batch * layer_shape_numel(l->out), l, "pre-activation", &p->z);
}

/* The activation is applied in the conv's output relayout and undone from y in the
 * gradient relayout (op_conv2d_forward_act / op_conv2d_backward); the GELUs, whose derivative
 * need its input, keep z and run their own kernels (on the float z, then rounded into a
 * half y). */
static dlcl_status conv_forward(layer *l, const layer_io *io)
{
    conv_priv *p = l->priv;
    op_conv_shape s = p->shape;
    s.n = io->count;
    op_buf w = layer_weight_buf(l, io, 0), b = layer_bias_buf(l, io, p->bias ? 1 : -1);
    if (!op_act_needs_input(p->act))
        return op_conv2d_forward_act(io->ctx, &s, p->choice.forward, io->x[0], w, b, p->act, p->slope, io->y, io->ws);
    size_t n = (size_t)io->count * layer_shape_numel(l->out);
    dlcl_status st = op_conv2d_forward_algo(io->ctx, &s, p->choice.forward, io->x[0], w, b, p->z, io->ws);
    if (st != DLCL_OK) return st;
    if (!io->y.half) return op_activation_forward(io->ctx, p->act, p->slope, p->z, io->y, n);
    st = op_activation_forward(io->ctx, p->act, p->slope, p->z, p->z, n);
    return st == DLCL_OK ? op_convert(io->ctx, p->z, io->y, n) : st;
}

static dlcl_status conv_backward(layer *l, const layer_io *io)
{
    conv_priv *p = l->priv;
    op_conv_shape s = p->shape;
    s.n = io->count;
    op_act act = p->act;
    if (op_act_needs_input(act)) { /* dz overwrites dy in place */
        dlcl_status st = op_activation_backward(io->ctx, act, p->slope, p->z, io->y, io->dy, io->dy,
                                                (size_t)io->count * layer_shape_numel(l->out));
        if (st != DLCL_OK) return st;
        act = OP_ACT_LINEAR;
    }
    op_buf dw = layer_grad_buf(l, io, 0);
    op_buf db = p->bias ? layer_grad_buf(l, io, 1) : op_b(NULL, 0);
    return op_conv2d_backward(io->ctx, &s, act, p->slope, io->y, io->x[0], io->dy, layer_param_buf(l, io, 0), dw, db,
                              io->dx[0], io->ws);
}

static void conv_describe(const layer *l, char *buf, size_t cap)
{
    const conv_priv *p = l->priv;
    const op_conv_shape *s = &p->shape;
    int n = snprintf(buf, cap, "%dx%d/%d pad %d", s->r, s->s, s->stride_h, s->pad_h);
    if (n > 0 && (size_t)n < cap && s->dil_h > 1) n += snprintf(buf + n, cap - n, " dil %d", s->dil_h);
    if (n > 0 && (size_t)n < cap && s->groups > 1) n += snprintf(buf + n, cap - n, " groups %d", s->groups);
    if (n > 0 && (size_t)n < cap && p->act != OP_ACT_LINEAR) n += snprintf(buf + n, cap - n, ", %s", op_act_names[p->act]);
    /* how it runs here (after alloc): the forward algorithm, images per workspace chunk */
    if (n > 0 && (size_t)n < cap && p->choice.chunk > 0)
        snprintf(buf + n, cap - n, "; %s, %d/chunk%s", algo_name(s, p->choice.forward), p->choice.chunk,
                 p->choice.timed ? " (timed)" : "");
}

/* Batch norm and activations after it fold into the weights and the output relayout. */
static bool conv_absorb(layer *l, op_act act, float slope)
{
    conv_priv *p = l->priv;
    if (p->act != OP_ACT_LINEAR || l->out.dims[0] != p->shape.k) return false;
    p->act = act;
    p->slope = slope;
    return true;
}

static void conv_free(layer *l)
{
    conv_priv *p = l->priv;
    if (p == NULL) return;
    if (p->ctx) layer_buf_free(p->ctx, &p->z);
    free(p);
    l->priv = NULL;
}

const layer_type layer_conv = {"conv", conv_keys, 1, 1, LAYER_HALF, conv_parse, conv_shape, conv_alloc,
                               conv_forward, conv_backward, conv_describe, conv_free, NULL, conv_absorb};
