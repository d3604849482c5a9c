/* The inference graph optimisation of a net made by dlcl_net_create_inference ([net]
 * optimize = 1, the default; DLCL_OPTIMIZE=0 or 1 overrides the config):
 * - a per-channel map after a conv or dense (batch norm, an activation layer) folds into it
 *   when it is that layer's only reader and the layer's output has no other reader (nor the
 *   loss): W' = W * scale[o], b' = b * scale[o] + shift[o], with batch norm's
 *   scale = gamma / sqrt(var + eps), shift = beta - mean * scale; its activation (batch norm's
 *   fused relu, an activation layer's) becomes the conv's or dense's, which conv already runs
 *   in its output relayout with the bias. The folded layer becomes an alias: no kernel, no
 *   buffer.
 * - layers that are the identity in evaluation (dropout, activation = linear) become aliases
 *   of their input instead of a copy.
 * The memory plan (memory.c) then runs over the aliases as over identity and flatten.
 *
 * The weights: the net's regions keep the original tensors (so dlcl_net_init_from's partial
 * load reads them back, and the names and values are those of the file), and the folded
 * weight and bias of each conv or dense live in one extra device buffer, written by
 * net_refold whenever the regions change (initialisation, dlcl_net_load, dlcl_net_init_from).
 * Every conv and dense gets such a copy, W' = W where nothing folded into it, and their
 * original weights live on the host only (net_param_host_only, graph.c's offsets): the
 * device holds each weight once (ResNet-18 at batch 1: 60.4 MiB, against 103.0 with the
 * originals beside the folded copies, `dlcl-bench --inference`), at the cost of one host copy of the weights
 * and a pass over them per load, against recomputing nothing per batch.
 *
 * [net] precision = fp16: every layer must have a half-precision forward (LAYER_HALF), and
 * every conv's and dense's weight, folded or not, lives as binary16 in a second buffer
 * (half_w) instead, written by the same refold; the folded biases stay float in `folded`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

static dlcl_status oom(void) { return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory"); }

static bool optimised_alias(const layer *l) { return (l->type->flags & LAYER_ALIAS) || l->removed || l->folded_into; }

/* source[] and readers[] again after a layer became an alias (graph.c's rules), and the
 * loss's node resolved through it. */
static void resolve(dlcl_net *net)
{
    size_t n = net->n_layers;
    for (size_t i = 0; i < n; i++) {
        const layer *l = &net->layers[i];
        int s = l->in_node[0];
        net->source[i] = optimised_alias(l) ? (s < 0 ? -1 : net->source[s]) : (int)i;
    }
    memset(net->readers, 0, n * sizeof *net->readers);
    for (size_t i = 0; i < n; i++) {
        if (net_is_alias(net, i)) continue;
        const layer *l = &net->layers[i];
        for (int k = 0; k < l->n_in; k++)
            if (l->in_node[k] >= 0 && net->source[l->in_node[k]] >= 0) net->readers[net->source[l->in_node[k]]]++;
    }
    net->output = net->source[net->output];
}

/* Folds layer i (a per-channel map) into the conv or dense whose output it reads, if that
 * is its only reader; true when it did. */
static bool fold_into_source(dlcl_net *net, size_t i, op_act act, float slope)
{
    layer *l = &net->layers[i];
    int in = l->in_node[0], s = in < 0 ? -1 : net->source[in];
    if (s < 0 || s == net->output || net->readers[s] != 1) return false;
    layer *t = &net->layers[s];
    if (t->type->absorb == NULL || t->fold.n == LAYER_MAX_FOLD || !layer_shape_equal(net->layers[in].out, t->out) ||
        t->n_params < 1 || t->params[0].dims[0] != t->out.dims[0] || !t->type->absorb(t, act, slope))
        return false;
    t->fold.from[t->fold.n++] = (int)i;
    l->folded_into = s + 1;
    return true;
}

dlcl_status net_optimize_graph(dlcl_net *net)
{
    for (size_t i = 0; i < net->n_layers; i++) {
        layer *l = &net->layers[i];
        if (l->type->eval_affine == NULL || net_is_alias(net, i)) continue;
        op_act act;
        float slope;
        bool identity;
        l->type->eval_affine(l, NULL, NULL, &act, &slope, &identity, NULL, NULL);
        int in = l->in_node[0];
        if (identity && act == OP_ACT_LINEAR) { /* the loss may not read the net's input itself */
            if ((in < 0 || net->source[in] < 0) && (int)i == net->output) continue;
            l->removed = 1;
        } else if (!fold_into_source(net, i, act, slope)) {
            continue;
        }
        resolve(net);
    }
    return DLCL_OK;
}

/* The bias tensor of a conv or dense (a LAYER_PARAM "bias" of its channels), or -1. */
static int bias_index(const layer *t)
{
    for (int p = 0; p < t->n_params; p++)
        if (strcmp(t->params[p].suffix, "bias") == 0 && t->params[p].region == LAYER_PARAM &&
            t->params[p].numel == (size_t)t->out.dims[0])
            return p;
    return -1;
}

dlcl_status net_check_half(dlcl_net *net)
{
    for (size_t i = 0; i < net->n_layers; i++) {
        layer *l = &net->layers[i];
        if (!net_is_alias(net, i) && !(l->type->flags & LAYER_HALF))
            return dlcl__err(DLCL_ERR_CONFIG, "%s:%d: [%s]: layers of type %s have no half-precision path, which "
                             "[net] precision = fp16 needs for every layer; use precision = fp32 for this net",
                             net->cfg.path, l->line, l->name, l->type->name);
        l->half = 1;
    }
    return DLCL_OK;
}

/* A conv or dense whose weight graph.c placed on the host only (net_param_host_only): each
 * must get its device copy, binary16 in half_w with precision = fp16, else folded (W' = W
 * when nothing folded into it). A conv or dense is never made an alias. */
static bool host_weight(const dlcl_net *net, size_t i)
{
    const layer *t = &net->layers[i];
    return t->n_params > 0 && net_param_host_only(net, t, 0);
}

static bool half_weight(const dlcl_net *net, size_t i) { return net->half && host_weight(net, i); }

/* A float32 net's device copy of a host-only weight into which nothing folded: W as it is,
 * the bias read from the region as usual (folding's per-channel layout may not even apply:
 * a sequence's dense, a Conv1D-layout weight). */
static bool copy_only(const dlcl_net *net, size_t i)
{
    return net->layers[i].fold.n == 0 && !net->half && host_weight(net, i);
}

static dlcl_status acquire(dlcl_net *net, size_t n, size_t elem, const char *what, cl_mem *out)
{
    size_t bytes;
    if (!dlcl__mul_ok(n, elem, &bytes)) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: size overflows", what);
    net->device_bytes += bytes;
    return rt_buffer_acquire(net->ctx, bytes, what, out);
}

dlcl_status net_alloc_folds(dlcl_net *net)
{
    size_t floats = 0, halves = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        layer *t = &net->layers[i];
        if (half_weight(net, i)) {
            t->fold.wh = (op_buf){NULL, halves, 1};
            halves += t->params[0].numel;
        }
        if (t->fold.n == 0 && !copy_only(net, i)) continue;
        t->fold.w = op_b(NULL, floats);
        if (!half_weight(net, i)) floats += t->params[0].numel; /* with half_w only the bias is float */
        if (copy_only(net, i)) continue;
        t->fold.b = op_b(NULL, floats);
        floats += (size_t)t->out.dims[0];
    }
    net->n_folded = floats, net->n_half_w = halves;
    dlcl_status st = DLCL_OK;
    if (floats > 0) st = acquire(net, floats, sizeof(float), "conv and dense weights (batch norm folded in)", &net->folded);
    if (st == DLCL_OK && halves > 0)
        st = acquire(net, halves, sizeof(uint16_t), "conv and dense weights in half precision", &net->half_w);
    for (size_t i = 0; st == DLCL_OK && i < net->n_layers; i++) {
        layer *t = &net->layers[i];
        if (t->fold.wh.half) t->fold.wh.mem = net->half_w;
        if (t->fold.n == 0 && !copy_only(net, i)) continue;
        t->fold.w.mem = half_weight(net, i) ? NULL : net->folded;
        t->fold.b.mem = copy_only(net, i) ? NULL : net->folded;
    }
    return st;
}

/* W' and b' of conv or dense t from host copies of the regions into wo and bo. */
static void fold_layer(const dlcl_net *net, const layer *t, const float *hp, const float *hb, double *scale,
                       double *shift, double *sf, double *tf, float *wo, float *bo)
{
    size_t C = (size_t)t->out.dims[0], K = t->params[0].numel / C;
    for (size_t c = 0; c < C; c++) scale[c] = 1.0, shift[c] = 0.0;
    for (int f = 0; f < t->fold.n; f++) { /* compose: x -> (x * scale + shift) * sf + tf */
        const layer *l = &net->layers[t->fold.from[f]];
        op_act act;
        float slope;
        bool identity;
        l->type->eval_affine(l, hp, hb, &act, &slope, &identity, sf, tf);
        for (size_t c = 0; c < C; c++) scale[c] *= sf[c], shift[c] = shift[c] * sf[c] + tf[c];
    }
    const layer_param *wp = &t->params[0];
    const float *w = (wp->region == LAYER_PARAM ? hp : hb) + wp->off;
    for (size_t c = 0; c < C; c++)
        for (size_t k = 0; k < K; k++) wo[c * K + k] = (float)(w[c * K + k] * scale[c]);
    int b = bias_index(t);
    for (size_t c = 0; c < C; c++) bo[c] = (float)((b >= 0 ? hp[t->params[b].off + c] : 0.0) * scale[c] + shift[c]);
}

/* The weight of conv or dense i (W' of wf if it folded, else the region's) as binary16 into
 * out; DLCL_ERR_NUMERIC naming the layer when a value is beyond half precision's range. */
static dlcl_status halve_weight(const dlcl_net *net, size_t i, const float *wf, const float *hp, const float *hb,
                                uint16_t *out)
{
    const layer *t = &net->layers[i];
    const layer_param *wp = &t->params[0];
    const float *w = wf ? wf : (wp->region == LAYER_PARAM ? hp : hb) + wp->off;
    for (size_t k = 0; k < wp->numel; k++) {
        out[k] = dlcl__half_from_float(w[k]);
        if ((out[k] & 0x7c00u) == 0x7c00u && isfinite(w[k]))
            return dlcl__err(DLCL_ERR_NUMERIC, "layer [%s] (line %d): weight %zu is %g%s, beyond half precision's "
                             "range (65504); use [net] precision = fp32 for this model", t->name, t->line, k,
                             (double)w[k], t->fold.n ? " once batch norm is folded in" : "");
    }
    return DLCL_OK;
}

dlcl_status net_refold(dlcl_net *net)
{
    if (net->n_folded == 0 && net->n_half_w == 0) return DLCL_OK;
    size_t C = 1, wmax = 1;
    for (size_t i = 0; i < net->n_layers; i++) {
        const layer *t = &net->layers[i];
        if ((size_t)t->out.dims[0] > C) C = (size_t)t->out.dims[0];
        if (t->fold.wh.mem && t->params[0].numel > wmax) wmax = t->params[0].numel;
    }
    float *hp = malloc((net->n_params ? net->n_params : 1) * sizeof *hp);
    float *hb = malloc((net->n_buffers ? net->n_buffers : 1) * sizeof *hb);
    float *out = malloc((net->n_folded ? net->n_folded : 1) * sizeof *out), *wtmp = NULL;
    uint16_t *halves = NULL;
    if (net->n_half_w > 0) wtmp = malloc(wmax * sizeof *wtmp), halves = malloc(net->n_half_w * sizeof *halves);
    double *coef = malloc(4 * C * sizeof *coef);
    dlcl_status st = hp && hb && out && coef && (net->n_half_w == 0 || (wtmp && halves)) ? DLCL_OK : oom();
    cl_command_queue q = net->ctx->queue;
    cl_int err = CL_SUCCESS;
    if (st == DLCL_OK) st = net_params_io(net, false, 0, hp, net->n_params, "clEnqueueReadBuffer (weights to fold)");
    if (st == DLCL_OK && net->n_buffers)
        err = clEnqueueReadBuffer(q, net->buffers, CL_TRUE, 0, net->n_buffers * sizeof *hb, hb, 0, NULL, NULL);
    if (err != CL_SUCCESS) st = dlcl__cl_err(err, "clEnqueueReadBuffer (weights to fold)");
    for (size_t i = 0; st == DLCL_OK && i < net->n_layers; i++) {
        const layer *t = &net->layers[i];
        bool wh = t->fold.wh.mem != NULL;
        if (copy_only(net, i))
            memcpy(out + t->fold.w.off, hp + t->params[0].off, t->params[0].numel * sizeof *out);
        else if (t->fold.n > 0)
            fold_layer(net, t, hp, hb, coef, coef + C, coef + 2 * C, coef + 3 * C, wh ? wtmp : out + t->fold.w.off,
                       out + t->fold.b.off);
        if (wh) st = halve_weight(net, i, t->fold.n > 0 ? wtmp : NULL, hp, hb, halves + t->fold.wh.off);
    }
    if (st == DLCL_OK && net->n_folded > 0) {
        err = clEnqueueWriteBuffer(q, net->folded, CL_TRUE, 0, net->n_folded * sizeof *out, out, 0, NULL, NULL);
        if (err != CL_SUCCESS) st = dlcl__cl_err(err, "clEnqueueWriteBuffer (folded weights)");
    }
    if (st == DLCL_OK && net->n_half_w > 0) {
        err = clEnqueueWriteBuffer(q, net->half_w, CL_TRUE, 0, net->n_half_w * sizeof *halves, halves, 0, NULL, NULL);
        if (err != CL_SUCCESS) st = dlcl__cl_err(err, "clEnqueueWriteBuffer (half-precision weights)");
    }
    free(hp);
    free(hb);
    free(out);
    free(wtmp);
    free(halves);
    free(coef);
    return st;
}
