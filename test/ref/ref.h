/* Plain-C references for every kernel family, in double accumulation. Layouts match the
 * kernels: NCHW activations, OIHW filters, row-major matrices. */
#ifndef DLCL_REF_H
#define DLCL_REF_H

#include <stddef.h>
#include <stdint.h>

/* gemm_ref.c: C = alpha op(A) op(B) + beta C, row-major */
void gemm_ref(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda, const float *b,
              size_t ldb, float beta, float *c, size_t ldc);

/* conv_ref.c */
typedef struct ref_conv {
    int n, c, h, w, k, r, s, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, p, q;
} ref_conv;
void conv2d_forward_ref(const ref_conv *g, const float *x, const float *w, const float *bias, float *y);
void conv2d_backward_data_ref(const ref_conv *g, const float *dy, const float *w, float *dx);
void conv2d_backward_filter_ref(const ref_conv *g, const float *x, const float *dy, float *dw, float *db);

/* pool_ref.c (PyTorch floor mode; avg counts padding) */
typedef struct ref_pool {
    int n, c, h, w, size_h, size_w, stride_h, stride_w, pad_h, pad_w, p, q;
} ref_pool;
void maxpool_forward_ref(const ref_pool *g, const float *x, float *y);
void maxpool_backward_ref(const ref_pool *g, const float *x, const float *dy, float *dx);
void avgpool_forward_ref(const ref_pool *g, const float *x, float *y);
void avgpool_backward_ref(const ref_pool *g, const float *dy, float *dx);

/* activation_ref.c: act is an op_act value */
float activation_ref(int act, float slope, float x);
float activation_grad_ref(int act, float slope, float x);

/* loss_ref.c: per-sample loss and correct flag; dz = (softmax - onehot) * scale */
void softmax_xent_ref(const float *z, const int32_t *labels, int n, int classes, float scale, double *loss,
                      int *correct, float *dz);
/* the same with label smoothing eps: dz = (softmax - (1 - eps) onehot - eps / classes) * scale */
void softmax_xent_smooth_ref(const float *z, const int32_t *labels, int n, int classes, float eps, float scale,
                             double *loss, int *correct, float *dz);

/* optimizer_ref.c: one step of torch.optim.SGD; the same on gradients times gscale */
void sgd_step_ref(float *w, const float *g, float *v, size_t n, float lr, float momentum, float wd, int nesterov);
void sgd_step_scaled_ref(float *w, const float *g, float *v, size_t n, float lr, float momentum, float wd,
                         int nesterov, float gscale);
/* one step of torch.optim.Adam (decoupled 0) or AdamW (1), step 1-based, on gradients times gscale */
void adam_step_ref(float *w, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                   float eps, float wd, int decoupled, uint64_t step, float gscale);
/* sum of x^2 in double; clip_grad_norm_'s factor min(1, max_norm / (norm + 1e-6)), 1 for max_norm 0 */
double sum_squares_ref(const float *x, size_t n);
double clip_coef_ref(double norm, double max_norm);

/* dropout_ref.c: the keep decision of element i (same hash as dropout.cl) */
int dropout_keep_ref(uint32_t i, uint64_t seed, float rate);

/* combine_ref.c: y = sum of n_in inputs (then relu); dz = y > 0 ? dy : 0; nearest upsampling */
void add_ref(const float *const *xs, int n_in, size_t n, int relu, float *y);
void relu_grad_ref(const float *y, const float *dy, size_t n, float *dz);
void upsample_nearest_forward_ref(int planes, int h, int w, int s, const float *x, float *y);
void upsample_nearest_backward_ref(int planes, int h, int w, int s, const float *dy, float *dx);

/* norm_ref.c: batch norm over [outer][c][inner] as PyTorch's BatchNorm1d/2d; gamma/beta NULL:
 * affine=False; running_* NULL: no running statistics; save_* may be NULL; relu fused into y.
 * The backward is training mode's, with dz = dy * (y > 0) when relu; dx/dgamma/dbeta may be NULL. */
void batchnorm_forward_train_ref(const float *x, float *y, int outer, int c, int inner, const float *gamma,
                                 const float *beta, float eps, float momentum, float *running_mean, float *running_var,
                                 float *save_mean, float *save_invstd, int relu);
void batchnorm_forward_eval_ref(const float *x, float *y, int outer, int c, int inner, const float *gamma,
                                const float *beta, const float *running_mean, const float *running_var, float eps,
                                int relu);
void batchnorm_backward_ref(const float *x, const float *y, const float *dy, float *dx, int outer, int c, int inner,
                            const float *gamma, const float *save_mean, const float *save_invstd, float *dgamma,
                            float *dbeta, int relu);

/* seq_ref.c: rows of dim floats, row = b * t + position. Embedding: ids outside [0, vocab)
 * give zeros and no gradient; the backward adds into dw when accumulate. Position embedding:
 * dw rows t..context-1 zero (kept when accumulate); dx (may be NULL) = dy. Layer norm as
 * torch.nn.LayerNorm (gamma/beta NULL: no affine; save_* may be NULL); backward bit 0 of
 * accumulate adds into dgamma, bit 1 into dbeta; dx/dgamma/dbeta may be NULL. */
void embedding_forward_ref(const int32_t *tok, const float *w, float *y, int rows, int vocab, int dim);
void embedding_backward_ref(const int32_t *tok, const float *dy, float *dw, int rows, int vocab, int dim,
                            int accumulate);
void position_embedding_forward_ref(const float *x, const float *w, float *y, int count, int t, int dim);
void position_embedding_backward_ref(const float *dy, float *dx, float *dw, int count, int t, int context, int dim,
                                     int accumulate);
void layernorm_forward_ref(const float *x, float *y, int rows, int dim, const float *gamma, const float *beta,
                           float eps, float *save_mean, float *save_rstd);
void layernorm_backward_ref(const float *x, const float *dy, float *dx, int rows, int dim, const float *gamma,
                            const float *save_mean, const float *save_rstd, float *dgamma, float *dbeta,
                            unsigned accumulate);

/* attention_ref.c: GPT-2's causal self-attention (ops.h's op_attn_shape layouts: qkv rows of
 * q, k, v; z rows of merged heads; planes b * heads + h of t x t). Dropout at rate (0: none)
 * with dropout_keep_ref's masks: seed over the probability planes, seed_y over y. */
typedef struct ref_attn {
    int batch, t, width, heads;
} ref_attn;
/* p = softmax over j <= i of s * scale, 0 past the diagonal; ds = scale p (dp - rowsum(p dp)) */
void attention_softmax_ref(const float *s, float *p, int planes, int t, float scale);
void attention_softmax_backward_ref(const float *p, const float *dp, float *ds, int planes, int t, float scale);
/* z from qkv; dqkv from qkv and dz */
void attention_core_ref(const ref_attn *g, const float *qkv, float rate, uint64_t seed, float *z);
void attention_core_backward_ref(const ref_attn *g, const float *qkv, const float *dz, float rate, uint64_t seed,
                                 float *dqkv);
/* the layer: wa [width][3 width], ba [3 width], wp [width][width], bp [width] (biases may be NULL) */
void attention_layer_forward_ref(const ref_attn *g, const float *x, const float *wa, const float *ba,
                                 const float *wp, const float *bp, float rate, uint64_t seed_p, uint64_t seed_y,
                                 float *y);
void attention_layer_backward_ref(const ref_attn *g, const float *x, const float *wa, const float *ba,
                                  const float *wp, float rate, uint64_t seed_p, uint64_t seed_y, const float *dy,
                                  float *dx, float *dwa, float *dba, float *dwp, float *dbp);

/* rnn_ref.c: one layer of torch.nn.LSTM (gru 0: gates i, f, g, o) or nn.GRU (gru 1: r, z, n), zero
 * initial state, over n sequences of T positions: x [n*T][d], y and dy [n*T][h] (row b*T + t),
 * w_ih [G*h][d], w_hh [G*h][h], b_ih and b_hh [G*h] or NULL (bias=False). The backward recomputes
 * the forward and writes dx (may be NULL), dw_ih, dw_hh, db_ih and db_hh (NULL without bias). */
void rnn_forward_ref(int gru, int n, int T, int d, int h, const float *x, const float *w_ih, const float *w_hh,
                     const float *b_ih, const float *b_hh, float *y);
void rnn_backward_ref(int gru, int n, int T, int d, int h, const float *x, const float *w_ih, const float *w_hh,
                      const float *b_ih, const float *b_hh, const float *dy, float *dx, float *dw_ih, float *dw_hh,
                      float *db_ih, float *db_hh);

#endif
