/* [name] type=batchnorm [eps=1e-5] [momentum=0.1] [affine=1] [activation=relu]
 * Batch normalisation over the first per-sample dimension: the channels of C,H,W images
 * (nn.BatchNorm2d), the features of a vector (nn.BatchNorm1d), or the channels of C,L.
 * Training normalises with the batch's statistics and updates the running ones (unbiased
 * variance, PyTorch's momentum); evaluation uses the running ones. Tensors as PyTorch names
 * them: weight and bias (trainable, when affine), running_mean and running_var (buffers),
 * num_batches_tracked (an int64 counter). A relu may be fused (activation=relu).
 * Data-parallel with [net] sync_batchnorm = 1 (layer_io.sum set), training normalises over
 * every rank's samples: each rank's mean and variance, and in the backward its two sums, are
 * added over the ranks on the host (in double) between the kernels, so the result is that of
 * one process on the whole batch, up to float rounding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"

typedef struct bn_priv {
    float eps, momentum;
    int affine;
    op_act act;
    int c, inner;
    dlcl_ctx *ctx;
    op_buf save_mean, save_invstd; /* the batch's statistics, for the backward */
    /* sync_batchnorm: device dx coefficients (3c, from offset 0 as the kernel reads them)
     * then sums (2c); host scratch; the values over every rank of the last forward */
    op_buf sync_dev;
    float *hf;  /* 5c floats */
    double *hd; /* 2c + 1 doubles */
    double m_total;
} bn_priv;

enum { BN_WEIGHT, BN_BIAS }; /* when affine; then running_mean, running_var, num_batches_tracked */

static const char *const bn_keys[] = {"eps", "momentum", "affine", "activation", "slope", NULL};

static dlcl_status bn_parse(layer *l, const cfg *c, const cfg_section *s)
{
    bn_priv *p = calloc(1, sizeof *p);
    if (p == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    l->priv = p;
    double eps, momentum;
    float slope;
    dlcl_status st;
    if ((st = cfg_get_float(c, s, "eps", 0, 1e-5, 1e-12, 1.0, &eps)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "momentum", 0, 0.1, 0.0, 1.0, &momentum)) != DLCL_OK ||
        (st = cfg_get_bool(c, s, "affine", 0, 1, &p->affine)) != DLCL_OK ||
        (st = layer_parse_activation(c, s, &p->act, &slope)) != DLCL_OK)
        return st;
    if (p->act != OP_ACT_LINEAR && p->act != OP_ACT_RELU) {
        const cfg_entry *e = cfg_find(s, "activation");
        char where[64];
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [%s] activation = '%s': batchnorm fuses relu or linear; put an "
                         "activation layer after it for others", cfg_where(c, e ? e->line : s->line, where, sizeof where),
                         s->name, e ? e->value : "");
    }
    p->eps = (float)eps;
    p->momentum = (float)momentum;
    return DLCL_OK;
}

static dlcl_status bn_shape(layer *l)
{
    bn_priv *p = l->priv;
    const layer_shape *in = &l->in[0];
    p->c = in->dims[0];
    p->inner = (int)(layer_shape_numel(*in) / (size_t)in->dims[0]);
    l->out = *in;
    int64_t c = p->c;
    if (p->affine) {
        layer_add_param(l, "weight", 1, &c, LAYER_PARAM, LAYER_INIT_ONE, 0);
        layer_add_param(l, "bias", 1, &c, LAYER_PARAM, LAYER_INIT_ZERO, 0);
    }
    layer_add_param(l, "running_mean", 1, &c, LAYER_BUFFER, LAYER_INIT_ZERO, 0);
    layer_add_param(l, "running_var", 1, &c, LAYER_BUFFER, LAYER_INIT_ONE, 0);
    layer_add_param(l, "num_batches_tracked", 0, NULL, LAYER_COUNTER, LAYER_INIT_ZERO, 0);
    l->flops = 4.0 * (double)layer_shape_numel(*in);
    return DLCL_OK;
}

static dlcl_status bn_alloc(layer *l, dlcl_ctx *ctx, int batch)
{
    (void)batch;
    bn_priv *p = l->priv;
    p->ctx = ctx;
    if (l->inference) return DLCL_OK;
    size_t c = (size_t)p->c;
    dlcl_status st = layer_buf_alloc(ctx, c, l, "batch mean", &p->save_mean);
    if (st == DLCL_OK) st = layer_buf_alloc(ctx, c, l, "batch inverse deviation", &p->save_invstd);
    if (st == DLCL_OK) st = layer_buf_alloc(ctx, 5 * c, l, "sync_batchnorm sums", &p->sync_dev);
    p->hf = malloc(5 * c * sizeof *p->hf);
    p->hd = malloc((2 * c + 1) * sizeof *p->hd);
    if (st == DLCL_OK && (p->hf == NULL || p->hd == NULL)) st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    return st;
}

static dlcl_status rw(const layer_io *io, int write, op_buf b, size_t n, float *host)
{
    cl_int err = write ? clEnqueueWriteBuffer(io->ctx->queue, b.mem, CL_TRUE, b.off * sizeof(float), n * sizeof(float),
                                              host, 0, NULL, NULL)
                       : clEnqueueReadBuffer(io->ctx->queue, b.mem, CL_TRUE, b.off * sizeof(float), n * sizeof(float),
                                             host, 0, NULL, NULL);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, write ? "clEnqueueWriteBuffer (sync_batchnorm)"
                                                                 : "clEnqueueReadBuffer (sync_batchnorm)");
}

/* The index in l->params of running_mean (after weight and bias when affine). */
static int first_buffer(const bn_priv *p) { return p->affine ? 2 : 0; }

/* sync_batchnorm's forward: this rank's mean and variance (none without samples) summed over
 * the ranks as m * mean and m * (var + mean^2), the running statistics updated identically
 * on every rank, then the normalisation with the statistics of the whole batch. */
static dlcl_status bn_forward_sync(layer *l, const layer_io *io, op_buf gamma, op_buf beta, op_buf rm, op_buf rv)
{
    bn_priv *p = l->priv;
    size_t c = (size_t)p->c;
    float *mean = p->hf, *invstd = p->hf + c, *run = p->hf + 2 * c; /* run: mean then var */
    double *v = p->hd, m = (double)io->count * p->inner;
    dlcl_status st = DLCL_OK;
    if (io->count > 0) {
        st = op_batchnorm_stats(io->ctx, io->x[0], io->count, p->c, p->inner, p->save_mean, p->save_invstd);
        if (st == DLCL_OK) st = rw(io, 0, p->save_mean, c, mean);
        if (st == DLCL_OK) st = rw(io, 0, p->save_invstd, c, invstd);
    }
    if (st == DLCL_OK) st = rw(io, 0, rm, c, run);
    if (st == DLCL_OK) st = rw(io, 0, rv, c, run + c);
    if (st != DLCL_OK) return st;
    for (size_t k = 0; k < c; k++) {
        double mu = io->count > 0 ? mean[k] : 0, is = io->count > 0 ? invstd[k] : 1;
        double var = isinf(is) ? 0.0 : 1.0 / (is * is);
        v[k] = m * mu;
        v[c + k] = m * (var + mu * mu);
    }
    v[2 * c] = m;
    if ((st = io->sum(io->sum_user, v, 2 * c + 1)) != DLCL_OK) return st;
    double M = v[2 * c];
    if (M < 2)
        return dlcl__err(DLCL_ERR_SHAPE, "batch norm: expected more than 1 value per channel when training, got %.0f "
                         "over every rank", M);
    p->m_total = M;
    for (size_t k = 0; k < c; k++) {
        double mu = v[k] / M, var = v[c + k] / M - mu * mu;
        var = var > 0 ? var : 0;
        mean[k] = (float)mu;
        invstd[k] = (float)(1.0 / sqrt(var + p->eps));
        run[k] = (float)((1.0 - p->momentum) * run[k] + p->momentum * mu);
        run[c + k] = (float)((1.0 - p->momentum) * run[c + k] + p->momentum * var * M / (M - 1));
    }
    st = rw(io, 1, rm, c, run);
    if (st == DLCL_OK) st = rw(io, 1, rv, c, run + c);
    if (st != DLCL_OK || io->count == 0) return st;
    st = rw(io, 1, p->save_mean, c, mean);
    if (st == DLCL_OK) st = rw(io, 1, p->save_invstd, c, invstd);
    if (st == DLCL_OK)
        st = op_batchnorm_apply(io->ctx, io->x[0], io->y, io->count, p->c, p->inner, gamma, beta, p->save_mean,
                                p->save_invstd, p->act);
    return st;
}

/* sync_batchnorm's backward: this rank's sums of dz and dz (x - mean) give its share of
 * dgamma and dbeta (the gradient exchange adds the ranks' shares), and summed over the ranks
 * the coefficients of dx. */
static dlcl_status bn_backward_sync(layer *l, const layer_io *io)
{
    bn_priv *p = l->priv;
    size_t c = (size_t)p->c;
    float *sums = p->hf, *coef = p->hf + 2 * c; /* coef: 3c */
    double *v = p->hd, M = p->m_total;
    dlcl_status st = DLCL_OK;
    if (io->count > 0) {
        st = op_batchnorm_grad_sums(io->ctx, io->x[0], io->y, io->dy, io->count, p->c, p->inner, p->save_mean,
                                    op_b(p->sync_dev.mem, 3 * c), p->act);
        if (st == DLCL_OK) st = rw(io, 0, op_b(p->sync_dev.mem, 3 * c), 2 * c, sums);
        if (st != DLCL_OK) return st;
    }
    for (size_t k = 0; k < 2 * c; k++) v[k] = io->count > 0 ? sums[k] : 0.0;
    if ((st = io->sum(io->sum_user, v, 2 * c)) != DLCL_OK || io->count == 0) return st;
    float *invstd = coef, *gamma = coef + c; /* read into coef's planes, then overwritten */
    st = rw(io, 0, p->save_invstd, c, invstd);
    if (st == DLCL_OK && p->affine) st = rw(io, 0, layer_param_buf(l, io, BN_WEIGHT), c, gamma);
    if (st != DLCL_OK) return st;
    if (p->affine) { /* this rank's share of the parameter gradients */
        for (size_t k = 0; k < c; k++) sums[c + k] *= invstd[k];
        st = rw(io, 1, layer_grad_buf(l, io, BN_BIAS), c, sums);
        if (st == DLCL_OK) st = rw(io, 1, layer_grad_buf(l, io, BN_WEIGHT), c, sums + c);
        if (st != DLCL_OK) return st;
    }
    if (io->dx[0].mem == NULL) return DLCL_OK;
    for (size_t k = 0; k < c; k++) {
        double inv = invstd[k], a = (p->affine ? gamma[k] : 1.0) * inv;
        coef[k] = (float)a; /* invstd[k] is read before coef[k] overwrites it, gamma[k] before coef[c + k] */
        coef[c + k] = (float)(a * inv * inv * v[c + k] / M);
        coef[2 * c + k] = (float)(a * v[k] / M);
    }
    st = rw(io, 1, p->sync_dev, 3 * c, coef);
    if (st == DLCL_OK)
        st = op_batchnorm_backward_data(io->ctx, io->x[0], io->y, io->dy, io->dx[0], io->count, p->c, p->inner,
                                        p->save_mean, p->sync_dev.mem, p->act);
    return st;
}

static dlcl_status bn_forward(layer *l, const layer_io *io)
{
    bn_priv *p = l->priv;
    op_buf gamma = p->affine ? layer_param_buf(l, io, BN_WEIGHT) : op_b(NULL, 0);
    op_buf beta = p->affine ? layer_param_buf(l, io, BN_BIAS) : op_b(NULL, 0);
    int b = first_buffer(p);
    op_buf rm = layer_param_buf(l, io, b), rv = layer_param_buf(l, io, b + 1);
    if (!io->training)
        return op_batchnorm_forward_eval(io->ctx, io->x[0], io->y, io->count, p->c, p->inner, gamma, beta, rm, rv,
                                         p->eps, p->act);
    io->counters[l->params[b + 2].off]++; /* num_batches_tracked, as each training forward of PyTorch's */
    if (io->sum) return bn_forward_sync(l, io, gamma, beta, rm, rv);
    return op_batchnorm_forward_train(io->ctx, io->x[0], io->y, io->count, p->c, p->inner, gamma, beta, p->eps,
                                      p->momentum, rm, rv, p->save_mean, p->save_invstd, p->act);
}

static dlcl_status bn_backward(layer *l, const layer_io *io)
{
    bn_priv *p = l->priv;
    op_buf gamma = p->affine ? layer_param_buf(l, io, BN_WEIGHT) : op_b(NULL, 0);
    op_buf dgamma = p->affine ? layer_grad_buf(l, io, BN_WEIGHT) : op_b(NULL, 0);
    op_buf dbeta = p->affine ? layer_grad_buf(l, io, BN_BIAS) : op_b(NULL, 0);
    if (io->sum) return bn_backward_sync(l, io);
    return op_batchnorm_backward(io->ctx, io->x[0], io->y, io->dy, io->dx[0], io->count, p->c, p->inner, gamma,
                                 p->save_mean, p->save_invstd, dgamma, dbeta, p->act);
}

static void bn_describe(const layer *l, char *buf, size_t cap)
{
    const bn_priv *p = l->priv;
    snprintf(buf, cap, "%d channels%s%s", p->c, p->affine ? "" : ", no affine", p->act == OP_ACT_RELU ? ", relu" : "");
}

/* Evaluation: y = act(x * scale + shift), scale = gamma / sqrt(running_var + eps),
 * shift = beta - running_mean * scale (gamma 1, beta 0 without affine). */
static void bn_eval_affine(const layer *l, const float *params, const float *buffers, op_act *act, float *slope,
                           bool *identity, double *scale, double *shift)
{
    const bn_priv *p = l->priv;
    *act = p->act;
    *slope = 0.0f;
    *identity = false;
    if (scale == NULL) return;
    int b = first_buffer(p);
    const float *mean = buffers + l->params[b].off, *var = buffers + l->params[b + 1].off;
    for (int c = 0; c < p->c; c++) {
        double g = p->affine ? params[l->params[BN_WEIGHT].off + c] : 1.0;
        double beta = p->affine ? params[l->params[BN_BIAS].off + c] : 0.0;
        scale[c] = g / sqrt((double)var[c] + (double)p->eps);
        shift[c] = beta - (double)mean[c] * scale[c];
    }
}

static void bn_free(layer *l)
{
    bn_priv *p = l->priv;
    if (p == NULL) return;
    if (p->ctx) {
        layer_buf_free(p->ctx, &p->save_mean);
        layer_buf_free(p->ctx, &p->save_invstd);
        layer_buf_free(p->ctx, &p->sync_dev);
    }
    free(p->hf);
    free(p->hd);
    free(p);
    l->priv = NULL;
}

const layer_type layer_batchnorm = {"batchnorm", bn_keys, 1, 1, LAYER_COLLECTIVE | LAYER_HALF, bn_parse, bn_shape,
                                    bn_alloc, bn_forward, bn_backward, bn_describe, bn_free, bn_eval_affine, NULL};
