/* Stateless op launchers. Each family is one lib/ops/<family>.c paired with
 * cl_kernels/<family>.cl and a plain-C twin in test/ref/<family>_ref.c.
 *
 * Conventions:
 * - Buffers are passed as op_buf (cl_mem + offset in floats), because parameters and
 *   gradients live at offsets inside one flat buffer. Kernels take the offset as an int
 *   argument (OpenCL 1.2 has no pointer offsets on the host side).
 * - Tensors are float32 NCHW contiguous. Labels are int32 buffers.
 * - Half storage (an inference net's [net] precision = fp16): an op_buf with half set holds
 *   IEEE binary16 values, off counted in halves. Kernels load and store them with
 *   vload_half / vstore_half (core OpenCL, no cl_khr_fp16) and compute in float; a kernel
 *   whose pointer argument x may be either is written with X_T, LDX() and STX() and built
 *   with -DX_HALF for a half buffer (op_half_opts), so each combination is its own cached
 *   program. An op that has no half path for a buffer says so (op_require_float).
 * - Launchers only enqueue: no clFinish, no host reads. Errors name the kernel.
 * - "backward" functions overwrite their outputs (no accumulation) unless said otherwise.
 */
#ifndef DLCL_OPS_H
#define DLCL_OPS_H

#include "../internal.h"

typedef struct op_buf {
    cl_mem mem;
    size_t off; /* in elements */
    int half;   /* elements are binary16 (storage only), else float32 (or int32 where said) */
} op_buf;

static inline op_buf op_b(cl_mem m, size_t off) { return (op_buf){m, off, 0}; }
/* the same storage type as b, at element off of m */
static inline op_buf op_like(op_buf b, cl_mem m, size_t off) { return (op_buf){m, off, b.half}; }
/* b moved on by n elements */
static inline op_buf op_at(op_buf b, size_t n) { return (op_buf){b.mem, b.off + n, b.half}; }
static inline size_t op_elem_bytes(op_buf b) { return b.half ? 2 : 4; }

/* Build options naming the half buffers among pairs (macro prefix, op_buf), NULL-ended:
 * op_half_opts(buf, cap, "X", x, "Y", y, (const char *)NULL) gives "-DX_HALF -DY_HALF" when
 * both hold halves, "" when neither. Returns buf. */
const char *op_half_opts(char *buf, size_t cap, ...);
/* DLCL_ERR_INVALID_ARG naming fn and the buffer when b holds halves (an op without a half path). */
dlcl_status op_require_float(const char *fn, const char *what, op_buf b);
/* y = x over n elements, converting between float and half storage as their flags say
 * (elementwise.cl convert; vstore_half rounds to nearest even). */
dlcl_status op_convert(dlcl_ctx *ctx, op_buf x, op_buf y, size_t n);

/* ---------------------------------------------------------------- GEMM (lib/blas.c) */

/* C = op(A) op(B) + beta C, row-major, batch products whose matrices lie sa, sb, sc
 * elements apart: the one place that fills blas_gemm_args for the ops and layers. Sizes are
 * trusted (the graph inferred them), so the buffers' bounds are not checked. */
static inline dlcl_status op_gemm_batched(dlcl_ctx *ctx, dlcl_transpose ta, dlcl_transpose tb, size_t m, size_t n,
                                          size_t k, op_buf a, size_t lda, size_t sa, op_buf b, size_t ldb, size_t sb,
                                          float beta, op_buf c, size_t ldc, size_t sc, size_t batch)
{
    blas_gemm_args g = {.ta = ta, .tb = tb, .m = m, .n = n, .k = k, .alpha = 1.0f, .beta = beta,
                        .a = a.mem, .b = b.mem, .c = c.mem, .a_off = a.off, .b_off = b.off, .c_off = c.off,
                        .lda = lda, .ldb = ldb, .ldc = ldc, .a_stride = sa, .b_stride = sb, .c_stride = sc,
                        .batch = batch, .a_size = SIZE_MAX, .b_size = SIZE_MAX, .c_size = SIZE_MAX,
                        .a_half = a.half, .b_half = b.half};
    if (c.half) return dlcl__err(DLCL_ERR_INVALID_ARG, "SGEMM: C is stored as half precision; products are float");
    return blas_sgemm(ctx, &g);
}

static inline dlcl_status op_gemm(dlcl_ctx *ctx, dlcl_transpose ta, dlcl_transpose tb, size_t m, size_t n, size_t k,
                                  op_buf a, size_t lda, op_buf b, size_t ldb, float beta, op_buf c, size_t ldc)
{
    return op_gemm_batched(ctx, ta, tb, m, n, k, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}

/* ---------------------------------------------------------------- activations (activation.c) */

typedef enum op_act {
    OP_ACT_LINEAR,  /* f(x) = x */
    OP_ACT_RELU,    /* f(x) = max(0, x) */
    OP_ACT_SIGMOID, /* f(x) = 1 / (1 + exp(-x)) */
    OP_ACT_TANH,    /* f(x) = tanh(x) */
    OP_ACT_GELU,    /* f(x) = x * Phi(x), exact erf form as torch.nn.GELU() */
    OP_ACT_LEAKY,   /* f(x) = x > 0 ? x : slope * x */
    OP_ACT_GELU_TANH, /* f(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): GPT-2's, GELU(approximate='tanh') */
    OP_ACT_COUNT
} op_act;

/* "linear", "relu", ... indexed by op_act, NULL-terminated. */
extern const char *const op_act_names[OP_ACT_COUNT + 1];
/* Whether f' needs the activation's input (the GELU forms): then it cannot be undone from the
 * output, and a layer keeps the pre-activation for the backward. */
static inline bool op_act_needs_input(op_act act) { return act == OP_ACT_GELU || act == OP_ACT_GELU_TANH; }

/* y = f(x) over n elements; y may alias x. */
dlcl_status op_activation_forward(dlcl_ctx *ctx, op_act act, float slope, op_buf x, op_buf y, size_t n);
/* dx = dy * f'(x), where x is the activation's input and y its output (whichever is cheaper
 * is used); dx may alias dy. */
dlcl_status op_activation_backward(dlcl_ctx *ctx, op_act act, float slope, op_buf x, op_buf y, op_buf dy,
                                   op_buf dx, size_t n);

/* ---------------------------------------------------------------- bias (bias.c) */

/* y[o][c][i] += b[c] for o < outer, c < channels, i < inner. */
dlcl_status op_bias_add(dlcl_ctx *ctx, op_buf y, op_buf b, int outer, int channels, int inner);
/* db[c] = sum over o, i of dy[o][c][i]. */
dlcl_status op_bias_grad(dlcl_ctx *ctx, op_buf dy, op_buf db, int outer, int channels, int inner);
/* The same over rows of inner values ld apart, added to db when accumulate is set (for sums
 * over chunks). */
dlcl_status op_bias_grad_acc(dlcl_ctx *ctx, op_buf dy, op_buf db, int outer, int channels, int inner, int ld,
                             int accumulate);

/* ---------------------------------------------------------------- combining (combine.c) */

/* y += x over n elements (y rounded to its storage: a half y rounds each partial sum). */
dlcl_status op_add_into(dlcl_ctx *ctx, op_buf x, op_buf y, size_t n);
/* y = sum of the n_in (>= 2) inputs, then max(0, .) if relu; y may alias none of them but
 * the first two. */
dlcl_status op_add(dlcl_ctx *ctx, const op_buf *xs, int n_in, op_buf y, size_t n, bool relu);
/* dz = y > 0 ? dy : 0, the gradient through a relu from its output; dz may alias dy. */
dlcl_status op_relu_grad(dlcl_ctx *ctx, op_buf y, op_buf dy, op_buf dz, size_t n);
/* rows blocks of cols values, src_ld apart in src, to dst_ld apart in dst (concatenation),
 * converted where src and dst differ in storage (float or half). */
dlcl_status op_copy_rows(dlcl_ctx *ctx, op_buf src, size_t src_ld, op_buf dst, size_t dst_ld, size_t rows,
                         size_t cols);
/* y[p][i][j] = x[p][i/s][j/s] over planes of h x w inputs; the backward sums each s x s block. */
dlcl_status op_upsample_nearest_forward(dlcl_ctx *ctx, int planes, int h, int w, int s, op_buf x, op_buf y);
dlcl_status op_upsample_nearest_backward(dlcl_ctx *ctx, int planes, int h, int w, int s, op_buf dy, op_buf dx);

/* ---------------------------------------------------------------- convolution (conv.c) */

typedef struct op_conv_shape {
    int n, c, h, w;       /* input */
    int k, r, s;          /* filters, kernel height, kernel width */
    int stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
    int p, q;             /* output height, width: filled by op_conv_shape_infer */
    int chunk;            /* images per workspace chunk; 0: the device's default (op_conv2d_chunk) */
    int winograd_dx;      /* 1: the data gradient by Winograd (needs op_conv2d_winograd_ok) */
    int winograd;         /* 1: the workspace has room for a Winograd forward (op_conv2d_workspace) */
    int fft;              /* 1: the workspace has room for an FFT forward (op_conv2d_workspace) */
    int fft_bwd;          /* 1: the data and filter gradients by FFT (needs op_conv2d_fft_ok; room included) */
    int implicit;         /* 1: the workspace has room for an implicit-GEMM forward (op_conv2d_workspace) */
    int implicit_bwd;     /* 1: both gradients by implicit GEMM (needs op_conv2d_implicit_ok; room included) */
} op_conv_shape;

/* Computes p, q (PyTorch formula) and validates; DLCL_ERR_SHAPE on a bad geometry. */
dlcl_status op_conv_shape_infer(op_conv_shape *s);
/* Workspace the conv functions need on ctx's device, in floats (may be 0). */
size_t op_conv2d_workspace(const dlcl_ctx *ctx, const op_conv_shape *s);
/* Images per workspace chunk: s->chunk (at most n) or the device's default. */
int op_conv2d_chunk(const dlcl_ctx *ctx, const op_conv_shape *s);
/* y = conv(x, w) + bias; w is OIHW [k][c/groups][r][s]; bias.mem may be NULL. */
dlcl_status op_conv2d_forward(dlcl_ctx *ctx, const op_conv_shape *s, op_buf x, op_buf w, op_buf bias, op_buf y,
                              op_buf ws);
/* Forward algorithms; op_conv2d_forward picks one by a heuristic (see conv.c). */
typedef enum op_conv_algo {
    OP_CONV_AUTO,
    OP_CONV_IM2COL_GEMM,
    OP_CONV_DIRECT,
    OP_CONV_WINOGRAD, /* F(2x2, 3x3): 3x3, stride 1, no dilation, one group, pad <= 2 (op_conv2d_winograd_ok) */
    OP_CONV_FFT,      /* through clFFT (conv_fft.c): stride 1, no dilation, one group (op_conv2d_fft_ok) */
    OP_CONV_IMPLICIT, /* implicit GEMM (conv_implicit.c): stride 1, no dilation, one group, c and k >= 16 */
    OP_CONV_ALGO_COUNT
} op_conv_algo;
/* The forward algorithm OP_CONV_AUTO stands for when nothing was timed: direct for a
 * reduction c/groups*r*s of at most 4 and for depthwise shapes, else im2col + GEMM. */
op_conv_algo op_conv2d_heuristic(const op_conv_shape *s);
/* Whether Winograd F(2x2, 3x3) can run this shape, forward and data gradient. */
bool op_conv2d_winograd_ok(const op_conv_shape *s);
/* Whether the FFT convolution can run this shape, forward and gradients. */
bool op_conv2d_fft_ok(const op_conv_shape *s);
/* Whether the implicit-GEMM convolution can run this shape, forward and gradients. */
bool op_conv2d_implicit_ok(const op_conv_shape *s);
dlcl_status op_conv2d_forward_algo(dlcl_ctx *ctx, const op_conv_shape *s, op_conv_algo algo, op_buf x, op_buf w,
                                   op_buf bias, op_buf y, op_buf ws);
/* y = act(conv(x, w) + bias), the activation fused into the output relayout. */
dlcl_status op_conv2d_forward_act(dlcl_ctx *ctx, const op_conv_shape *s, op_conv_algo algo, op_buf x, op_buf w,
                                  op_buf bias, op_act act, float slope, op_buf y, op_buf ws);
/* The whole backward pass of y = act(conv(x, w) + b) from dy, with dy relaid out once:
 * dz = dy * act'(z) from the output y (act may be any but GELU; y.mem may be NULL for
 * linear), dw = correlate(x, dz), db = sums of dz, dx = conv_transpose(dz, w). Each of dw,
 * db, dx is skipped when its mem is NULL (x is then not needed for dw; w not for dx). */
dlcl_status op_conv2d_backward(dlcl_ctx *ctx, const op_conv_shape *s, op_act act, float slope, op_buf y, op_buf x,
                               op_buf dy, op_buf w, op_buf dw, op_buf db, op_buf dx, op_buf ws);
/* dx = conv_transpose(dy, w). */
dlcl_status op_conv2d_backward_data(dlcl_ctx *ctx, const op_conv_shape *s, op_buf dy, op_buf w, op_buf dx,
                                    op_buf ws);
/* dw = correlate(x, dy); db = sum of dy per filter (skipped when db.mem is NULL). */
dlcl_status op_conv2d_backward_filter(dlcl_ctx *ctx, const op_conv_shape *s, op_buf x, op_buf dy, op_buf dw,
                                      op_buf db, op_buf ws);

/* How a convolution layer runs on this device (conv_find.c): the forward algorithm and the
 * images per workspace chunk (s->chunk). */
typedef struct op_conv_choice {
    op_conv_algo forward;
    int chunk;
    int winograd_dx; /* the data gradient by Winograd */
    int fft_bwd;     /* the data and filter gradients by FFT */
    int implicit_bwd; /* the data and filter gradients by implicit GEMM */
    int timed;       /* 1: measured now, 2: read from the tuning cache, 0: the heuristic */
    double ms;       /* the chosen candidate's forward + backward time when timed */
    int candidates;  /* how many were timed */
} op_conv_choice;
/* What op_conv2d_find times: the forward alone (inference), or with the backward, without
 * or with the data gradient (a first layer has none); OP_FIND_ACT added when the layer fuses
 * an activation into the convolution (timed with relu; without it, linear); OP_FIND_HALF
 * when x, w and y are stored as half (a forward only): then only the algorithms with a
 * half path, im2col + GEMM and direct, are candidates, timed on half buffers. */
enum { OP_FIND_FORWARD, OP_FIND_BACKWARD, OP_FIND_BACKWARD_DX, OP_FIND_ACT = 4, OP_FIND_HALF = 8 };
/* cuDNN-style find: times the candidates (chunks of half, the default and twice the default
 * images; the direct forward kernel where the reduction is small) on scratch buffers for a
 * batch of s->n, the passes given, and keeps the fastest in the cache directory per device,
 * driver, kernel sources, shape and passes. DLCL_AUTOTUNE=0 or no cache directory: the
 * heuristic (OP_CONV_AUTO, default chunk), nothing timed. */
dlcl_status op_conv2d_find(dlcl_ctx *ctx, const op_conv_shape *s, int passes, op_conv_choice *out);

/* ---------------------------------------------------------------- pooling (pool.c) */

typedef struct op_pool_shape {
    int n, c, h, w;
    int size_h, size_w, stride_h, stride_w, pad_h, pad_w;
    int p, q; /* output: filled by op_pool_shape_infer (PyTorch floor mode) */
} op_pool_shape;

dlcl_status op_pool_shape_infer(op_pool_shape *s);
/* Max pooling; idx (int32, n*c*p*q) records the argmax for backward; padding never wins. */
dlcl_status op_maxpool_forward(dlcl_ctx *ctx, const op_pool_shape *s, op_buf x, op_buf y, cl_mem idx);
dlcl_status op_maxpool_backward(dlcl_ctx *ctx, const op_pool_shape *s, op_buf dy, cl_mem idx, op_buf dx);
/* Average pooling, count_include_pad=True as PyTorch's default. */
dlcl_status op_avgpool_forward(dlcl_ctx *ctx, const op_pool_shape *s, op_buf x, op_buf y);
dlcl_status op_avgpool_backward(dlcl_ctx *ctx, const op_pool_shape *s, op_buf dy, op_buf dx);
/* y[n][c] = mean over h, w; backward spreads dy / (h*w). */
dlcl_status op_global_avgpool_forward(dlcl_ctx *ctx, int n, int c, int hw, op_buf x, op_buf y);
dlcl_status op_global_avgpool_backward(dlcl_ctx *ctx, int n, int c, int hw, op_buf dy, op_buf dx);

/* ---------------------------------------------------------------- dropout (dropout.c) */

/* Inverted dropout: mask[i] = keep ? 1/(1-rate) : 0 from a counter-based hash of
 * (seed, i), so no RNG state lives on the device; y = x * mask. */
dlcl_status op_dropout_forward(dlcl_ctx *ctx, float rate, uint64_t seed, op_buf x, op_buf y, op_buf mask,
                               size_t n);
/* y = x * mask with the mask op_dropout_forward makes for (seed, i), recomputed, not stored:
 * the forward and, on dy, the backward of a dropout that keeps no mask. y may alias x. */
dlcl_status op_dropout_apply(dlcl_ctx *ctx, float rate, uint64_t seed, op_buf x, op_buf y, size_t n);
/* dx = dy * mask. */
dlcl_status op_dropout_backward(dlcl_ctx *ctx, op_buf dy, op_buf mask, op_buf dx, size_t n);

/* ---------------------------------------------------------------- loss (loss.c) */

/* Numerically stable softmax cross-entropy over logits [n][classes] and int32 labels.
 * stats[2*i] = loss of sample i, stats[2*i+1] = 1 if argmax == label else 0.
 * If dlogits.mem is not NULL: dlogits = (softmax - onehot) * grad_scale (grad_scale is
 * 1/batch for a mean loss). dlogits may alias logits. */
dlcl_status op_softmax_xent(dlcl_ctx *ctx, op_buf logits, cl_mem labels, int n, int classes, float grad_scale,
                            op_buf dlogits, op_buf stats);
/* The same with label smoothing eps in [0, 1], as torch.nn.CrossEntropyLoss(label_smoothing=eps):
 *   loss_i = (1 - eps) * (-log p_i,label) + eps * mean_k(-log p_ik)   (stats[2*i])
 *   dlogits = (softmax - ((1 - eps) * onehot + eps / classes)) * grad_scale
 * eps = 0 is op_softmax_xent. */
dlcl_status op_softmax_xent_smooth(dlcl_ctx *ctx, op_buf logits, cl_mem labels, int n, int classes,
                                   float label_smoothing, float grad_scale, op_buf dlogits, op_buf stats);

/* ---------------------------------------------------------------- numerical guards (numerics.c) */

/* Sets the int flags[slot] to 1 if any of the n floats of x is NaN or infinite; leaves it
 * alone otherwise (the caller zeroes the flags). */
dlcl_status op_flag_nonfinite(dlcl_ctx *ctx, op_buf x, size_t n, cl_mem flags, int slot);

/* ---------------------------------------------------------------- optimizer (optimizer.c) */

/* The step kernels read the gradient as grad * gscale[0] when gscale is not NULL: the factor
 * op_clip_coef writes, so clipping never rewrites the gradients. On CPU devices a work-item
 * updates a span of 4096 parameters (ctx->cpu_device picks the variant). */

/* PyTorch SGD (dampening 0) over n parameters:
 *   g = grad + weight_decay * w;  v = momentum * v + g;
 *   step = nesterov ? g + momentum * v : v  (step = g when momentum == 0);  w -= lr * step
 * With momentum 0, velocity is not touched (its mem may be NULL). */
dlcl_status op_sgd_step(dlcl_ctx *ctx, op_buf w, op_buf grad, op_buf velocity, size_t n, float lr,
                        float momentum, float weight_decay, int nesterov);
/* The same with g = grad * gscale[0] + weight_decay * w (gscale NULL: op_sgd_step). */
dlcl_status op_sgd_step_scaled(dlcl_ctx *ctx, op_buf w, op_buf grad, op_buf velocity, size_t n, float lr,
                               float momentum, float weight_decay, int nesterov, cl_mem gscale);
/* torch.optim.Adam (decoupled 0) or AdamW (decoupled 1), amsgrad off, as torch's single-tensor
 * code; step is the 1-based count of this update, the bias corrections are taken in double:
 *   g = grad * gscale[0];  decoupled ? w *= 1 - lr * wd : g += wd * w
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2  (exp_avg, exp_avg_sq)
 *   w -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps) */
dlcl_status op_adam_step(dlcl_ctx *ctx, op_buf w, op_buf grad, op_buf exp_avg, op_buf exp_avg_sq, size_t n, float lr,
                         float beta1, float beta2, float eps, float weight_decay, int decoupled, uint64_t step,
                         cl_mem gscale);

/* Gradient-norm clipping as torch.nn.utils.clip_grad_norm_(max_norm, norm_type=2), without a
 * host round trip: op_sum_squares over the gradients (one or more ranges, their partial sums
 * side by side), then op_clip_coef, then the step kernels with gscale. */

/* How many partial sums op_sum_squares writes for n floats on ctx's device (depends on
 * ctx->cpu_device: n / 4096 rounded up on CPUs, at most 1024 elsewhere). */
size_t op_sum_squares_partials(const dlcl_ctx *ctx, size_t n);
/* partials[0 .. op_sum_squares_partials(n)) = sums of x^2 over fixed pieces of x, each in a
 * fixed order: the same bits on every run. */
dlcl_status op_sum_squares(dlcl_ctx *ctx, op_buf x, size_t n, op_buf partials);
/* From n_partials partial sums: norm = sqrt(sum), and into the 2 floats of gscale
 *   gscale[0] = min(1, max_norm / (norm + 1e-6))  (1 when max_norm is 0),  gscale[1] = norm.
 * A NaN norm gives a NaN factor, as torch's clamp does. */
dlcl_status op_clip_coef(dlcl_ctx *ctx, op_buf partials, size_t n_partials, float max_norm, cl_mem gscale);

/* ---------------------------------------------------------------- batch norm (norm.c) */

/* Batch normalisation as PyTorch's nn.BatchNorm1d/2d, over x viewed as [outer][c][inner]
 * (NCHW: outer = N, inner = H*W; a 2-d [N, F] input: outer = N, c = F, inner = 1); each
 * channel over its m = outer*inner values. gamma.mem / beta.mem NULL: affine=False (1, 0).
 * act: OP_ACT_LINEAR, or OP_ACT_RELU fused into the output (y = relu(bn(x))); any other is
 * DLCL_ERR_INVALID_ARG. y may alias x. */

/* mean = sum x / m, var = sum (x - mean)^2 / m (biased; the mean first, then the squared
 * deviations), invstd = 1 / sqrt(var + eps), y = act((x - mean) * invstd * gamma + beta).
 * save_mean and save_invstd (c floats each, for op_batchnorm_backward) may both be NULL.
 * With running_mean and running_var (both or neither; NULL: track_running_stats=False):
 *   running_mean = (1 - momentum) * running_mean + momentum * mean,
 *   running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1).
 * (PyTorch's momentum=None, a cumulative average, is momentum = 1 / num_batches_tracked.)
 * m == 1 is DLCL_ERR_SHAPE, as PyTorch refuses it in training. */
dlcl_status op_batchnorm_forward_train(dlcl_ctx *ctx, op_buf x, op_buf y, int outer, int c, int inner, op_buf gamma,
                                       op_buf beta, float eps, float momentum, op_buf running_mean, op_buf running_var,
                                       op_buf save_mean, op_buf save_invstd, op_act act);
/* y = act((x - running_mean) / sqrt(running_var + eps) * gamma + beta). */
dlcl_status op_batchnorm_forward_eval(dlcl_ctx *ctx, op_buf x, op_buf y, int outer, int c, int inner, op_buf gamma,
                                      op_buf beta, op_buf running_mean, op_buf running_var, float eps, op_act act);
/* The training-mode backward (the batch statistics depend on x), from the forward's x, y (read
 * only with OP_ACT_RELU; y.mem may be NULL for linear), save_mean and save_invstd:
 *   dz = dy, or dy * (y > 0) for relu;  xhat = (x - mean) * invstd
 *   dbeta = sum dz,  dgamma = sum dz * xhat   (overwritten, not accumulated)
 *   dx = gamma * invstd / m * (m * dz - sum dz - xhat * sum(dz * xhat))
 * Each of dx, dgamma, dbeta is skipped when its mem is NULL. dy is not modified; dx may
 * alias dy. */
dlcl_status op_batchnorm_backward(dlcl_ctx *ctx, op_buf x, op_buf y, op_buf dy, op_buf dx, int outer, int c, int inner,
                                  op_buf gamma, op_buf save_mean, op_buf save_invstd, op_buf dgamma, op_buf dbeta,
                                  op_act act);

/* The pieces of sync_batchnorm, whose statistics are summed over data-parallel ranks between
 * them. stats: this batch's mean and 1/sqrt(var) (biased, no eps: +inf for a constant
 * channel; m == 1 allowed). apply: y = act((x - mean) * invstd * gamma + beta). grad_sums:
 * sums (2c floats) = sum dz, then sum dz * (x - mean), with dz as in op_batchnorm_backward.
 * backward_data: dx = coef[c] * dz - coef[C + c] * (x - mean) - coef[2C + c]. */
dlcl_status op_batchnorm_stats(dlcl_ctx *ctx, op_buf x, int outer, int c, int inner, op_buf mean, op_buf invstd);
dlcl_status op_batchnorm_apply(dlcl_ctx *ctx, op_buf x, op_buf y, int outer, int c, int inner, op_buf gamma,
                               op_buf beta, op_buf mean, op_buf invstd, op_act act);
dlcl_status op_batchnorm_grad_sums(dlcl_ctx *ctx, op_buf x, op_buf y, op_buf dy, int outer, int c, int inner,
                                   op_buf mean, op_buf sums, op_act act);
dlcl_status op_batchnorm_backward_data(dlcl_ctx *ctx, op_buf x, op_buf y, op_buf dy, op_buf dx, int outer, int c,
                                       int inner, op_buf mean, cl_mem coef, op_act act);

/* ---------------------------------------------------------------- sequences (seq.c) */

/* A batch of sequences is rows of dim floats, row = b * t + position (position-major). Token
 * ids are int32 (tokens.off counts int32s). */

/* torch.nn.Embedding over rows ids: y[r][:] = weight[tok[r]][:], weight [vocab][dim]. An id
 * outside [0, vocab) gives a row of zeros (the loader refuses such ids; the kernel must only
 * not read out of bounds). */
dlcl_status op_embedding_forward(dlcl_ctx *ctx, op_buf tokens, op_buf weight, op_buf y, int rows, int vocab, int dim);
/* dweight[v][:] = sum over r with tok[r] == v of dy[r][:], in the order of r: a scatter-add
 * without atomics, right for repeated ids, the same bits on every run. accumulate: added to
 * dweight (a tied weight); else every row of dweight is written (zero where no id names it).
 * Ids outside [0, vocab) are skipped. */
dlcl_status op_embedding_backward(dlcl_ctx *ctx, op_buf tokens, op_buf dy, op_buf dweight, int rows, int vocab,
                                  int dim, int accumulate);

/* Learned positions (GPT-2's wpe) over count sequences of t positions:
 * y[b][i][:] = x[b][i][:] + weight[i][:]; y may alias x. */
dlcl_status op_position_embedding_forward(dlcl_ctx *ctx, op_buf x, op_buf weight, op_buf y, int count, int t,
                                          int dim);
/* dweight[i][:] = sum over b of dy[b][i][:] for i < t (b in order), rows t..context-1 zero;
 * with accumulate the sums are added and rows past t left alone. dx = dy when dx.mem is not
 * NULL (dx may alias dy). */
dlcl_status op_position_embedding_backward(dlcl_ctx *ctx, op_buf dy, op_buf dx, op_buf dweight, int count, int t,
                                           int context, int dim, int accumulate);

/* torch.nn.LayerNorm over the last dimension: each of rows rows of dim floats
 *   mean = sum x / dim, var = sum (x - mean)^2 / dim (biased), rstd = 1 / sqrt(var + eps),
 *   y = (x - mean) * rstd * gamma + beta
 * gamma.mem / beta.mem NULL: elementwise_affine=False (both or neither). save_mean and
 * save_rstd (rows floats each, for the backward) may both be NULL. y may alias x. */
dlcl_status op_layernorm_forward(dlcl_ctx *ctx, op_buf x, op_buf y, int rows, int dim, op_buf gamma, op_buf beta,
                                 float eps, op_buf save_mean, op_buf save_rstd);
/* From the forward's x, save_mean and save_rstd, with xhat = (x - mean) * rstd, g = dy * gamma:
 *   dx = rstd * (g - mean_d(g) - xhat * mean_d(g * xhat))
 *   dgamma = sum over rows of dy * xhat,  dbeta = sum over rows of dy
 * Each of dx, dgamma, dbeta skipped when its mem is NULL; dgamma is added to (accumulate bit
 * 0), dbeta (bit 1), else overwritten. dx may alias dy. */
dlcl_status op_layernorm_backward(dlcl_ctx *ctx, op_buf x, op_buf dy, op_buf dx, int rows, int dim, op_buf gamma,
                                  op_buf save_mean, op_buf save_rstd, op_buf dgamma, op_buf dbeta,
                                  unsigned accumulate);

/* ---------------------------------------------------------------- attention (attention.c) */

/* Causal multi-head self-attention as Hugging Face's GPT2Attention, on the output of its fused
 * projection. A sample is t rows (positions); row r of qkv holds q, k and v side by side,
 * 3 * width floats (width = heads * head_dim, head h at columns h * head_dim of each), and
 * row r of z the heads merged, width floats. For each sample and head:
 *   z = dropout(softmax(q k^T * scale + causal mask)) v,  scale = 1 / sqrt(head_dim)
 * Scores and probabilities are planes of t x t, plane b * heads + h. Dropout on the
 * probabilities is op_dropout_apply's mask over the planes (seed, index in the planes). */
typedef struct op_attn_shape {
    int batch, t, heads, head_dim;
} op_attn_shape;

/* p[i][j] = softmax_j(s[i][j] * scale) over j <= i, and 0 for j > i, in each of `planes`
 * t x t planes; p may alias s. */
dlcl_status op_attention_softmax_forward(dlcl_ctx *ctx, op_buf s, op_buf p, int planes, int t, float scale);
/* ds[i][j] = scale * p[i][j] * (dp[i][j] - sum_k p[i][k] dp[i][k]): the gradient of the
 * scores from that of the probabilities; ds may alias dp. */
dlcl_status op_attention_softmax_backward(dlcl_ctx *ctx, op_buf p, op_buf dp, op_buf ds, int planes, int t,
                                          float scale);
/* Floats of workspace op_attention_forward (with dropout) and op_attention_backward take. */
size_t op_attention_workspace(const op_attn_shape *s);
/* The materialised path: scores by batched GEMMs into probs (batch * heads planes, kept for
 * the backward), the causal softmax in place, dropout at `rate` into ws when rate > 0, z by
 * batched GEMMs. */
dlcl_status op_attention_forward(dlcl_ctx *ctx, const op_attn_shape *s, op_buf qkv, op_buf probs, op_buf z,
                                 float rate, uint64_t seed, op_buf ws);
/* From dz and the forward's qkv, probs, rate and seed: dqkv (overwritten), the gradients of
 * q, k and v in qkv's layout. */
dlcl_status op_attention_backward(dlcl_ctx *ctx, const op_attn_shape *s, op_buf qkv, op_buf probs, op_buf dz,
                                  op_buf dqkv, float rate, uint64_t seed, op_buf ws);

/* Rows of attention operands: a base, the distance between two rows (ld) and between two
 * samples (stride), in floats; head h starts h * head_dim further. */
typedef struct op_attn_rows {
    op_buf buf;
    size_t ld, stride;
} op_attn_rows;

/* The largest head_dim of the online kernel: it keeps 2 * head_dim vectors of 16 floats in
 * private memory per work-item. */
#define OP_ATTENTION_ONLINE_MAX_HEAD_DIM 256
/* The fused forward without a t x t matrix: a work-item per 16 query rows of a head walks
 * the keys in tiles with an online softmax (running maximum and sum, flash attention's
 * recurrence). Query row i of a sample (i < nq) sits at position pos0 + i and attends to
 * key rows 0 .. pos0 + i of k and v; its output is row i of z. s->t is unused; no dropout. */
dlcl_status op_attention_forward_online(dlcl_ctx *ctx, const op_attn_shape *s, op_attn_rows q, op_attn_rows k,
                                        op_attn_rows v, op_attn_rows z, int nq, int pos0);
/* Incremental decoding with a key/value cache: k_cache and v_cache hold s->t positions of
 * width floats per sample ([batch][t][width]), positions 0 .. pos - 1 filled. qkv_new holds
 * n_new rows per sample (positions pos .. pos + n_new - 1, qkv's layout): their k and v are
 * written into the caches, then z (n_new rows of width per sample) = their attention over
 * positions 0 .. their own. pos + n_new <= s->t. */
dlcl_status op_attention_forward_cached(dlcl_ctx *ctx, const op_attn_shape *s, op_buf qkv_new, int n_new, int pos,
                                        op_buf k_cache, op_buf v_cache, op_buf z);

/* ---------------------------------------------------------------- recurrent cells (rnn.c) */

/* One time step t of torch.nn.LSTM / nn.GRU over `count` sequences of T positions and H
 * hidden units. Sequence tensors are position-major per sample (position t of sample b is
 * row b*T + t), gate blocks in PyTorch's order (LSTM i, f, g, o; GRU r, z, n), biases b_ih
 * and b_hh of 4H or 3H (mem NULL: bias=False). The caller runs the GEMMs between steps; the
 * step keeps what the backward needs in place (see rnn.cl):
 *   hprev [count*T][H]: hprev[row] = h_{t-1}, 0 at t = 0 (the next product's operand, and
 *   dW_hh = sum over rows of dG_h^T hprev). */

/* gates [count*T][4H]: on entry x W_ih^T + h_{t-1} W_hh^T, on exit i, f, g, o activated;
 *   c_t = f c_{t-1} + i g,  h_t = o tanh(c_t)  into c[row], y[row], hprev[row + 1]. */
dlcl_status op_lstm_cell_forward(dlcl_ctx *ctx, int count, int T, int H, int t, op_buf gates, op_buf b_ih,
                                 op_buf b_hh, op_buf c, op_buf y, op_buf hprev);
/* From T-1 down: dy[row] = the whole dL/dh_t (the caller has added dG_{t+1} W_hh), dc [count][H]
 * dL/dc carried between steps (read from t < T-1, written for t-1). gates[row] becomes
 * the gradients of the 4H pre-activations. */
dlcl_status op_lstm_cell_backward(dlcl_ctx *ctx, int count, int T, int H, int t, op_buf gates, op_buf c, op_buf dy,
                                  op_buf dc);
/* xg [count*T][3H] = x W_ih^T, hg [count*T][3H] = h_{t-1} W_hh^T (not read at t = 0):
 *   r = sig(xr + hr + b_r), z = sig(xz + hz + b_z), n = tanh(xn + b_in + r (hn + b_hn)),
 *   h_t = (1 - z) n + z h_{t-1};  xg[row] = r, z, n;  hg[row] n block = hn + b_hn. */
dlcl_status op_gru_cell_forward(dlcl_ctx *ctx, int count, int T, int H, int t, op_buf xg, op_buf hg, op_buf b_ih,
                                op_buf b_hh, op_buf y, op_buf hprev);
/* From T-1 down: dy[row] = the whole dL/dh_t; xg[row] becomes the input-side pre-activation
 * gradients (dr, dz, dn), hg[row] the hidden-side ones (dr, dz, dn r), and dy[row - 1] += dh z
 * (the caller adds hg[row] W_hh to it). */
dlcl_status op_gru_cell_backward(dlcl_ctx *ctx, int count, int T, int H, int t, op_buf xg, op_buf hg, op_buf hprev,
                                 op_buf dy);

/* db1 = column sums of dg [rows][G] (acc1: added to db1), and the same into db2 when its mem
 * is not NULL (acc2 likewise): the bias gradients from the gate gradients. */
dlcl_status op_rnn_bias_grad(dlcl_ctx *ctx, op_buf dg, int rows, int G, op_buf db1, int acc1, op_buf db2, int acc2);
/* out [cols][rows] = in [rows][cols]^T: the recurrent layers keep W_hh^T, so that the product
 * of every step is a plain NN GEMM rather than one that transposes W_hh again. */
dlcl_status op_transpose(dlcl_ctx *ctx, op_buf in, size_t rows, size_t cols, op_buf out);

#endif
