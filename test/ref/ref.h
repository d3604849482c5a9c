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

/* optimizer_ref.c: one step of torch.optim.SGD */
void sgd_step_ref(float *w, const float *g, float *v, size_t n, float lr, float momentum, float wd, int nesterov);

/* dropout_ref.c: the keep decision of element i (same hash as dropout.cl) */
int dropout_keep_ref(uint32_t i, uint64_t seed, float rate);

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

#endif
