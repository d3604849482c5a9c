/* Batch normalisation (lib/ops/norm.c, cl_kernels/norm.cl) against the double reference in
 * ref/norm_ref.c on odd shapes, each run with the CPU kernels (tiles of rows) and the GPU
 * kernels (a work-group per channel, run on PoCL by clearing ctx->cpu_device); central
 * finite differences of the gradients through the training forward; the refused cases; and
 * one step compared with torch.nn.BatchNorm2d/1d through test/torch_norm.py. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/ops/ops.h"
#include "ref/ref.h"

#include "dbuf.h"
#include "test.h"

static uint64_t rng;

static void fill(float *x, size_t n, float lo, float hi)
{
    if (rng == 0) rng = t_seed();
    t_fill_uniform(&rng, x, n, lo, hi);
}

static const op_buf none = {NULL, 0, 0};

typedef struct bn_cfg {
    int outer, c, inner;
    int affine, track, relu;
    int cpu;              /* 1: the CPU kernels, 0: the GPU kernels */
    float center, spread; /* x uniform in center +- spread */
} bn_cfg;

static void label_of(const bn_cfg *k, char *buf, size_t cap)
{
    snprintf(buf, cap, "%d x %d x %d, affine %d, running stats %d, relu %d, %s kernels, x in %g +- %g, seed %llu",
             k->outer, k->c, k->inner, k->affine, k->track, k->relu, k->cpu ? "CPU" : "GPU", (double)k->center,
             (double)k->spread, (unsigned long long)t_seed());
}

/* Host arrays of one case, in one block. */
enum { H_X, H_Y, H_YR, H_DY, H_DX, H_DXR, H_YE, H_YER, H_BIG };
enum { C_G, C_B, C_RM, C_RV, C_RMR, C_RVR, C_SM, C_SI, C_SMR, C_SIR, C_DG, C_DGR, C_DB, C_DBR, C_SMALL };

/* Forward (train), backward, eval and in-place eval of one configuration against the
 * reference. Tolerances: outputs and dx 1e-5 relative + 1e-5 absolute (they are O(1):
 * errors come from invstd's and the mean's few ulps); the mean 1e-6 of the spread plus an
 * ulp of the centre; dgamma and dbeta, sums of m terms of O(1), 5e-7 * m absolute. */
static bool bn_case(const bn_cfg *k)
{
    dlcl_ctx *ctx = t_ctx();
    if (ctx == NULL) return false;
    char label[256];
    label_of(k, label, sizeof label);
    const size_t n = (size_t)k->outer * k->c * k->inner, m = (size_t)k->outer * k->inner, c = (size_t)k->c;
    float *big = malloc(H_BIG * n * sizeof *big), *small = malloc(C_SMALL * c * sizeof *small);
    if (big == NULL || small == NULL) {
        free(big), free(small);
        return false;
    }
    float *h[H_BIG], *s[C_SMALL];
    for (int i = 0; i < H_BIG; i++) h[i] = big + i * n;
    for (int i = 0; i < C_SMALL; i++) s[i] = small + i * c;
    fill(h[H_X], n, k->center - k->spread, k->center + k->spread);
    fill(h[H_DY], n, -1, 1);
    fill(s[C_G], c, 0.5f, 1.5f);
    fill(s[C_B], c, -0.5f, 0.5f);
    fill(s[C_RM], c, -1, 1);
    fill(s[C_RV], c, 0.5f, 2);
    memcpy(s[C_RMR], s[C_RM], c * sizeof(float));
    memcpy(s[C_RVR], s[C_RV], c * sizeof(float));
    const float eps = 1e-5f, momentum = 0.1f;
    const op_act act = k->relu ? OP_ACT_RELU : OP_ACT_LINEAR;
    dbuf X = {0}, Y = {0}, DY = {0}, DX = {0}, XE = {0}, G = {0}, B = {0}, RM = {0}, RV = {0}, SM = {0}, SI = {0},
         DG = {0}, DB = {0};
    bool ok = dbuf_new(&X, h[H_X], n) && dbuf_new(&Y, NULL, n) && dbuf_new(&DY, h[H_DY], n) &&
              dbuf_new(&DX, NULL, n) && dbuf_new(&XE, h[H_X], n) && dbuf_new(&G, s[C_G], c) &&
              dbuf_new(&B, s[C_B], c) && dbuf_new(&RM, s[C_RM], c) && dbuf_new(&RV, s[C_RV], c) &&
              dbuf_new(&SM, NULL, c) && dbuf_new(&SI, NULL, c) && dbuf_new(&DG, NULL, c) && dbuf_new(&DB, NULL, c);
    const op_buf g = k->affine ? ob(&G) : none, b = k->affine ? ob(&B) : none, rm = k->track ? ob(&RM) : none,
                 rv = k->track ? ob(&RV) : none;
    const int was_cpu = ctx->cpu_device;
    ctx->cpu_device = k->cpu;
    dlcl_status st = ok ? op_batchnorm_forward_train(ctx, ob(&X), ob(&Y), k->outer, k->c, k->inner, g, b, eps,
                                                     momentum, rm, rv, ob(&SM), ob(&SI), act)
                        : DLCL_ERR_OPENCL;
    ctx->cpu_device = was_cpu;
    batchnorm_forward_train_ref(h[H_X], h[H_YR], k->outer, k->c, k->inner, k->affine ? s[C_G] : NULL,
                                k->affine ? s[C_B] : NULL, eps, momentum, k->track ? s[C_RMR] : NULL,
                                k->track ? s[C_RVR] : NULL, s[C_SMR], s[C_SIR], k->relu);
    const float mean_atol = 1e-6f * k->spread + 1e-7f * fabsf(k->center), sum_atol = 5e-7f * (float)m + 1e-5f;
    ok = ok && st == DLCL_OK && dbuf_read(&Y, h[H_Y], "y") && dbuf_read(&SM, s[C_SM], "save_mean") &&
         dbuf_read(&SI, s[C_SI], "save_invstd") && t_close("forward train y", h[H_Y], h[H_YR], n, 1e-5f, 1e-5f) &&
         t_close("save_mean", s[C_SM], s[C_SMR], c, 1e-6f, mean_atol) &&
         t_close("save_invstd", s[C_SI], s[C_SIR], c, 1e-5f, 0);
    if (ok && k->track)
        ok = dbuf_read(&RM, s[C_RM], "running_mean") && dbuf_read(&RV, s[C_RV], "running_var") &&
             t_close("running_mean after a step", s[C_RM], s[C_RMR], c, 1e-6f, mean_atol) &&
             t_close("running_var after a step", s[C_RV], s[C_RVR], c, 1e-5f, 1e-6f);
    /* backward from the device's forward: first dx alone, then dgamma and dbeta alone (dx
     * must stay as it was: filled with 7) */
    if (ok)
        batchnorm_backward_ref(h[H_X], h[H_Y], h[H_DY], h[H_DXR], k->outer, k->c, k->inner,
                               k->affine ? s[C_G] : NULL, s[C_SM], s[C_SI], s[C_DGR], s[C_DBR], k->relu);
    ctx->cpu_device = k->cpu;
    if (ok)
        ok = (st = op_batchnorm_backward(ctx, ob(&X), k->relu ? ob(&Y) : none, ob(&DY), ob(&DX), k->outer, k->c,
                                         k->inner, g, ob(&SM), ob(&SI), none, none, act)) == DLCL_OK &&
             dbuf_read(&DX, h[H_DX], "dx") && t_close("backward dx", h[H_DX], h[H_DXR], n, 1e-5f, 1e-5f) &&
             dbuf_fill(&DX, 7.0f) &&
             (st = op_batchnorm_backward(ctx, ob(&X), k->relu ? ob(&Y) : none, ob(&DY), none, k->outer, k->c,
                                         k->inner, g, ob(&SM), ob(&SI), ob(&DG), ob(&DB), act)) == DLCL_OK &&
             dbuf_read(&DG, s[C_DG], "dgamma") && dbuf_read(&DB, s[C_DB], "dbeta") && dbuf_read(&DX, h[H_DX], "dx") &&
             t_close("backward dgamma", s[C_DG], s[C_DGR], c, 1e-4f, sum_atol) &&
             t_close("backward dbeta", s[C_DB], s[C_DBR], c, 1e-4f, sum_atol);
    for (size_t i = 0; ok && i < n; i++)
        if (h[H_DX][i] != 7.0f) {
            printf("# dx[%zu] = %g written though dx.mem was NULL\n", i, (double)h[H_DX][i]);
            ok = false;
        }
    /* eval with the running statistics after the step (the initial ones without tracking), in place */
    batchnorm_forward_eval_ref(h[H_X], h[H_YER], k->outer, k->c, k->inner, k->affine ? s[C_G] : NULL,
                               k->affine ? s[C_B] : NULL, s[C_RMR], s[C_RVR], eps, k->relu);
    if (ok)
        ok = (st = op_batchnorm_forward_eval(ctx, ob(&XE), ob(&XE), k->outer, k->c, k->inner, g, b, ob(&RM), ob(&RV),
                                             eps, act)) == DLCL_OK &&
             dbuf_read(&XE, h[H_YE], "y (eval, in place)") &&
             t_close("forward eval in place", h[H_YE], h[H_YER], n, 1e-5f, 1e-5f);
    ctx->cpu_device = was_cpu;
    if (st != DLCL_OK) printf("# %s\n", dlcl_last_error());
    if (!ok) printf("# case: %s\n", label);
    dbuf *all[] = {&X, &Y, &DY, &DX, &XE, &G, &B, &RM, &RV, &SM, &SI, &DG, &DB};
    for (size_t i = 0; i < T_COUNT(all); i++) dbuf_free(all[i]);
    free(big), free(small);
    return ok;
}

/* Every combination of affine, running statistics and relu, with both kernel families. */
static bool bn_all_variants(int outer, int c, int inner, float center, float spread)
{
    for (int v = 0; v < 16; v++) {
        bn_cfg k = {outer, c, inner, v & 1, (v >> 1) & 1, (v >> 2) & 1, (v >> 3) & 1, center, spread};
        if (!bn_case(&k)) return false;
    }
    return true;
}

static void batchnorm_matches_ref_nchw_3x7x13x11(void)
{
    T_CHECK(bn_all_variants(3, 7, 13 * 11, 2.5f, 3.0f), "mismatch");
}

/* BatchNorm1d's [N, F] input: inner = 1, the elementwise kernels */
static void batchnorm_matches_ref_2d_5x7(void) { T_CHECK(bn_all_variants(5, 7, 1, -1.0f, 2.0f), "mismatch"); }

/* One image, long rows: 7 tiles of the CPU kernels per channel, the last one ragged; data
 * far from zero (mean 100, spread 1), where a float sum of x itself would lose the mean */
static void batchnorm_matches_ref_outer1_inner_large(void)
{
    for (int cpu = 0; cpu < 2; cpu++)
        for (int relu = 0; relu < 2; relu++) {
            bn_cfg k = {1, 2, 100003, 1, 1, relu, cpu, 100.0f, 1.0f};
            T_CHECK(bn_case(&k), "mismatch");
        }
}

/* The CPU tiles (norm.c): tiles that start and end inside rows (5000 values a row, 16384 a
 * tile), tiles of many short rows, channel blocks with a ragged last one, and inner = 1 with
 * several channel blocks or several tiles of rows; the GPU kernels on the same shapes */
static void batchnorm_matches_ref_across_tiles(void)
{
    static const int shapes[][3] = {{9, 3, 5000}, {5000, 2, 7}, {40, 300, 5}, {6, 2000, 1}, {20000, 3, 1}};
    for (int cpu = 0; cpu < 2; cpu++)
        for (size_t i = 0; i < T_COUNT(shapes); i++) {
            bn_cfg k = {shapes[i][0], shapes[i][1], shapes[i][2], 1, 1, (int)i & 1, cpu, 0.5f, 2.0f};
            T_CHECK(bn_case(&k), "%d x %d x %d", shapes[i][0], shapes[i][1], shapes[i][2]);
        }
}

/* ------------------------------------------------------------------ finite differences */

/* sum(y * r) in double, y from the device's training forward (no running statistics). */
static bool fd_loss(const bn_cfg *k, dbuf *X, dbuf *Y, dbuf *G, dbuf *B, const float *x, const float *gm,
                    const float *bt, const float *r, float *y, double *loss)
{
    dlcl_ctx *ctx = t_ctx();
    const size_t n = (size_t)k->outer * k->c * k->inner;
    bool ok = clEnqueueWriteBuffer(ctx->queue, X->mem, CL_TRUE, GUARD * 4, n * 4, x, 0, NULL, NULL) == CL_SUCCESS &&
              clEnqueueWriteBuffer(ctx->queue, G->mem, CL_TRUE, GUARD * 4, (size_t)k->c * 4, gm, 0, NULL, NULL) ==
                  CL_SUCCESS &&
              clEnqueueWriteBuffer(ctx->queue, B->mem, CL_TRUE, GUARD * 4, (size_t)k->c * 4, bt, 0, NULL, NULL) ==
                  CL_SUCCESS &&
              op_batchnorm_forward_train(ctx, ob(X), ob(Y), k->outer, k->c, k->inner, ob(G), ob(B), 1e-5f, 0.1f, none,
                                         none, none, none, k->relu ? OP_ACT_RELU : OP_ACT_LINEAR) == DLCL_OK &&
              dbuf_read(Y, y, "y");
    *loss = 0;
    for (size_t i = 0; ok && i < n; i++) *loss += (double)y[i] * r[i];
    return ok;
}

/* relu's inputs (the double reference's pre-activation) with x, gamma and beta as given. */
static void fd_preact(const bn_cfg *k, const float *x, const float *gm, const float *bt, float *z)
{
    batchnorm_forward_train_ref(x, z, k->outer, k->c, k->inner, gm, bt, 1e-5f, 0.1f, NULL, NULL, NULL, NULL, 0);
}

/* Whether every relu input of channel ch keeps its sign from zp to zm and stays 1e-3 or
 * more from 0 at both. */
static bool fd_clear_of_kink(const bn_cfg *k, const float *zp, const float *zm, int ch)
{
    for (int o = 0; o < k->outer; o++)
        for (int i = 0; i < k->inner; i++) {
            const size_t at = ((size_t)o * k->c + ch) * k->inner + i;
            if (fabsf(zp[at]) < 1e-3f || fabsf(zm[at]) < 1e-3f || (zp[at] > 0) != (zm[at] > 0)) return false;
        }
    return true;
}

/* One parameter p perturbed by +-h: the central difference, or NAN when relu's kink is near. */
static double fd_point(const bn_cfg *k, dbuf *X, dbuf *Y, dbuf *G, dbuf *B, float *x, float *gm, float *bt,
                       const float *r, float *y, float *p, int ch, bool *ok)
{
    const float h = 1e-2f, p0 = *p;
    float zp[64], zm[64];
    double lp = 0, lm = 0;
    *p = p0 + h;
    fd_preact(k, x, gm, bt, zp);
    *ok = *ok && fd_loss(k, X, Y, G, B, x, gm, bt, r, y, &lp);
    *p = p0 - h;
    fd_preact(k, x, gm, bt, zm);
    *ok = *ok && fd_loss(k, X, Y, G, B, x, gm, bt, r, y, &lm);
    *p = p0;
    return !k->relu || fd_clear_of_kink(k, zp, zm, ch) ? (lp - lm) / (2.0 * h) : NAN;
}

/* dx, dgamma and dbeta of loss = sum(y * r) against central differences (h = 1e-2) through
 * the device's training forward, the batch statistics moving with x. Tolerance 2e-3 + 1e-2
 * relative: float rounding in the loss (~1e-7 of 30 terms, over 2h) and the O(h^2) term. A
 * point is skipped when a relu input of its channel changes sign between x - h and x + h or
 * comes within 1e-3 of 0 there (the loss then moves by a kink, not a slope). */
static bool fd_case(const bn_cfg *k)
{
    dlcl_ctx *ctx = t_ctx();
    const size_t n = (size_t)k->outer * k->c * k->inner, c = (size_t)k->c;
    float x[64], r[64], y[64], dx[64], gm[8], bt[8], dg[8], db[8], sm[8], si[8];
    if (ctx == NULL || n > 64 || c > 8) return false;
    fill(x, n, -2, 2);
    fill(r, n, -1, 1);
    fill(gm, c, 0.5f, 1.5f);
    fill(bt, c, -0.3f, 0.3f);
    dbuf X = {0}, Y = {0}, G = {0}, B = {0}, R = {0}, DX = {0}, DG = {0}, DB = {0}, SM = {0}, SI = {0};
    const op_act act = k->relu ? OP_ACT_RELU : OP_ACT_LINEAR;
    bool ok = dbuf_new(&X, x, n) && dbuf_new(&Y, NULL, n) && dbuf_new(&G, gm, c) && dbuf_new(&B, bt, c) &&
              dbuf_new(&R, r, n) && dbuf_new(&DX, NULL, n) && dbuf_new(&DG, NULL, c) && dbuf_new(&DB, NULL, c) &&
              dbuf_new(&SM, NULL, c) && dbuf_new(&SI, NULL, c) &&
              op_batchnorm_forward_train(ctx, ob(&X), ob(&Y), k->outer, k->c, k->inner, ob(&G), ob(&B), 1e-5f, 0.1f,
                                         none, none, ob(&SM), ob(&SI), act) == DLCL_OK &&
              op_batchnorm_backward(ctx, ob(&X), ob(&Y), ob(&R), ob(&DX), k->outer, k->c, k->inner, ob(&G), ob(&SM),
                                    ob(&SI), ob(&DG), ob(&DB), act) == DLCL_OK &&
              dbuf_read(&DX, dx, "dx") && dbuf_read(&DG, dg, "dgamma") && dbuf_read(&DB, db, "dbeta") &&
              dbuf_read(&SM, sm, "save_mean") && dbuf_read(&SI, si, "save_invstd");
    int checked = 0, skipped = 0;
    for (size_t j = 0; ok && j < n + 2 * c; j++) {
        const int ch = j < n ? (int)((j / k->inner) % c) : (int)((j - n) % c);
        float *p = j < n ? &x[j] : j < n + c ? &gm[j - n] : &bt[j - n - c];
        const float an = j < n ? dx[j] : j < n + c ? dg[j - n] : db[j - n - c];
        const char *what = j < n ? "dx" : j < n + c ? "dgamma" : "dbeta";
        const size_t at = j < n ? j : j < n + c ? j - n : j - n - c;
        const double fd = fd_point(k, &X, &Y, &G, &B, x, gm, bt, r, y, p, ch, &ok);
        if (isnan(fd)) {
            skipped++;
            continue;
        }
        checked++;
        if (ok && !(fabs(fd - an) <= 2e-3 + 1e-2 * fabs(fd))) {
            printf("# %s[%zu]: backward %.7g, central difference %.7g (relu %d, seed %llu)\n", what, at, (double)an,
                   fd, k->relu, (unsigned long long)t_seed());
            ok = false;
        }
    }
    if (ok && checked < (int)(n + 2 * c) / 2) {
        printf("# only %d of %d points clear of relu's kink\n", checked, checked + skipped);
        ok = false;
    }
    dbuf *all[] = {&X, &Y, &G, &B, &R, &DX, &DG, &DB, &SM, &SI};
    for (size_t i = 0; i < T_COUNT(all); i++) dbuf_free(all[i]);
    return ok;
}

static void batchnorm_backward_matches_finite_differences(void)
{
    for (int relu = 0; relu < 2; relu++) {
        bn_cfg k = {3, 2, 5, 1, 0, relu, 1, 0, 2};
        T_CHECK(fd_case(&k), "3 x 2 x 5, relu %d", relu);
        bn_cfg k1 = {6, 3, 1, 1, 0, relu, 1, 0, 2}; /* [6, 3]: BatchNorm1d */
        T_CHECK(fd_case(&k1), "6 x 3 x 1, relu %d", relu);
    }
}

/* ------------------------------------------------------------------ refused arguments */

static void batchnorm_bad_arguments_are_refused(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    float xv[4] = {0.5f, -1, 3, 10}, mv[4] = {1, -2, 0, 4}, vv[4] = {1, 2, 3, 0.5f}, y[4], want[4];
    dbuf X = {0}, Y = {0}, M = {0}, V = {0};
    T_CHECK(dbuf_new(&X, xv, 4) && dbuf_new(&Y, NULL, 4) && dbuf_new(&M, mv, 4) && dbuf_new(&V, vv, 4),
            "cannot create buffers");
    dlcl_status st[8];
    /* one value per channel: PyTorch's "Expected more than 1 value per channel when training" */
    st[0] = op_batchnorm_forward_train(ctx, ob(&X), ob(&Y), 1, 4, 1, none, none, 1e-5f, 0.1f, none, none, ob(&M),
                                       ob(&V), OP_ACT_LINEAR);
    const bool m1 = t_err_matches(st[0], DLCL_ERR_SHAPE, "more than 1 value per channel");
    st[1] = op_batchnorm_forward_train(ctx, ob(&X), ob(&Y), 2, 2, 1, none, none, 1e-5f, 0.1f, none, none, ob(&M),
                                       ob(&V), OP_ACT_SIGMOID);
    st[2] = op_batchnorm_backward(ctx, ob(&X), ob(&Y), ob(&X), ob(&Y), 2, 2, 1, none, ob(&M), ob(&V), none, none,
                                  OP_ACT_GELU);
    const bool act = t_err_matches(st[1], DLCL_ERR_INVALID_ARG, "cannot be fused (linear or relu)") &&
                     t_err_matches(st[2], DLCL_ERR_INVALID_ARG, "cannot be fused");
    st[3] = op_batchnorm_forward_eval(ctx, ob(&X), ob(&Y), 0, 4, 2, none, none, ob(&M), ob(&V), 1e-5f, OP_ACT_LINEAR);
    const bool shape = t_err_matches(st[3], DLCL_ERR_INVALID_ARG, "bad shape 0 x 4 x 2");
    st[4] = op_batchnorm_forward_train(ctx, ob(&X), ob(&Y), 2, 2, 1, none, none, 1e-5f, 0.1f, ob(&M), none, ob(&M),
                                       ob(&V), OP_ACT_LINEAR);
    const bool half = t_err_matches(st[4], DLCL_ERR_INVALID_ARG, "both or neither");
    st[5] = op_batchnorm_forward_eval(ctx, ob(&X), ob(&Y), 2, 2, 1, none, none, none, none, 1e-5f, OP_ACT_LINEAR);
    const bool norun = t_err_matches(st[5], DLCL_ERR_INVALID_ARG, "running_mean and running_var are required");
    st[6] = op_batchnorm_backward(ctx, ob(&X), none, ob(&X), ob(&Y), 2, 2, 1, none, ob(&M), ob(&V), none, none,
                                  OP_ACT_RELU);
    const bool noy = t_err_matches(st[6], DLCL_ERR_INVALID_ARG, "y with a fused relu");
    /* eval with one value per channel is fine, as in PyTorch */
    st[7] = op_batchnorm_forward_eval(ctx, ob(&X), ob(&Y), 1, 4, 1, none, none, ob(&M), ob(&V), 1e-5f, OP_ACT_RELU);
    const bool ok = st[7] == DLCL_OK && dbuf_read(&Y, y, "y");
    batchnorm_forward_eval_ref(xv, want, 1, 4, 1, NULL, NULL, mv, vv, 1e-5f, 1);
    dbuf_free(&X), dbuf_free(&Y), dbuf_free(&M), dbuf_free(&V);
    T_CHECK(m1, "m == 1 in training: %s: %s", dlcl_status_str(st[0]), dlcl_last_error());
    T_CHECK(act, "an activation other than linear/relu was accepted");
    T_CHECK(shape, "outer 0 accepted");
    T_CHECK(half, "running_mean without running_var accepted");
    T_CHECK(norun, "eval without running statistics accepted");
    T_CHECK(noy, "relu backward without y accepted");
    T_CHECK(ok, "eval of one value per channel: %s", dlcl_last_error());
    T_CLOSE("eval of one value per channel", y, want, 4, 1e-6f, 1e-6f);
}

/* ------------------------------------------------------------------ PyTorch */

static bool put(const char *dir, const char *name, const float *v, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return t_write_file(path, v, n * sizeof *v);
}

static bool get(const char *dir, const char *name, float *v, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(v, sizeof *v, n, f) : 0;
    if (f) fclose(f);
    if (got != n) printf("# %s: %zu of %zu floats\n", path, got, n);
    return got == n;
}

/* One training step (relu fused, momentum 0.1), its backward and an eval pass against
 * test/torch_norm.py; -1: torch is missing. Tolerances as against the reference. */
static int torch_case(const char *dir, int nb, int c, int h, int w, int relu)
{
    dlcl_ctx *ctx = t_ctx();
    const char *src = getenv("DLCL_TEST_SOURCE_DIR");
    const int inner = h > 0 ? h * w : 1;
    const size_t n = (size_t)nb * c * inner;
    float *big = malloc(8 * n * sizeof *big), small[10][16];
    if (ctx == NULL || src == NULL || big == NULL || c > 16) {
        free(big);
        return 0;
    }
    float *x = big, *dy = big + n, *y = big + 2 * n, *ty = big + 3 * n, *dx = big + 4 * n, *tdx = big + 5 * n,
          *ye = big + 6 * n, *tye = big + 7 * n;
    float *g = small[0], *b = small[1], *rm = small[2], *rv = small[3], *trm = small[4], *trv = small[5],
          *dg = small[6], *tdg = small[7], *db = small[8], *tdb = small[9];
    fill(x, n, -1, 3);
    fill(dy, n, -1, 1);
    fill(g, c, 0.5f, 1.5f);
    fill(b, c, -0.5f, 0.5f);
    fill(rm, c, -0.2f, 0.2f);
    fill(rv, c, 0.8f, 1.2f);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/test/torch_norm.py' '%s' %d %d %d %d 1e-5 0.1 %d 1>&2", src, dir,
             nb, c, h, w, relu);
    bool ok = put(dir, "x", x, n) && put(dir, "dy", dy, n) && put(dir, "gamma", g, c) && put(dir, "beta", b, c) &&
              put(dir, "running_mean", rm, c) && put(dir, "running_var", rv, c);
    fflush(stdout);
    int rc = ok ? system(cmd) : -1;
    if (rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
        free(big);
        return -1;
    }
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        printf("# %s: exit status %d (reason on stderr)\n", cmd, rc);
        ok = false;
    }
    ok = ok && get(dir, "y", ty, n) && get(dir, "dx", tdx, n) && get(dir, "dgamma", tdg, c) &&
         get(dir, "dbeta", tdb, c) && get(dir, "running_mean.out", trm, c) && get(dir, "running_var.out", trv, c) &&
         get(dir, "y_eval", tye, n);
    const op_act act = relu ? OP_ACT_RELU : OP_ACT_LINEAR;
    dbuf X = {0}, Y = {0}, DY = {0}, DX = {0}, G = {0}, B = {0}, RM = {0}, RV = {0}, SM = {0}, SI = {0}, DG = {0},
         DB = {0};
    ok = ok && dbuf_new(&X, x, n) && dbuf_new(&Y, NULL, n) && dbuf_new(&DY, dy, n) && dbuf_new(&DX, NULL, n) &&
         dbuf_new(&G, g, c) && dbuf_new(&B, b, c) && dbuf_new(&RM, rm, c) && dbuf_new(&RV, rv, c) &&
         dbuf_new(&SM, NULL, c) && dbuf_new(&SI, NULL, c) && dbuf_new(&DG, NULL, c) && dbuf_new(&DB, NULL, c) &&
         op_batchnorm_forward_train(ctx, ob(&X), ob(&Y), nb, c, inner, ob(&G), ob(&B), 1e-5f, 0.1f, ob(&RM), ob(&RV),
                                    ob(&SM), ob(&SI), act) == DLCL_OK &&
         op_batchnorm_backward(ctx, ob(&X), ob(&Y), ob(&DY), ob(&DX), nb, c, inner, ob(&G), ob(&SM), ob(&SI), ob(&DG),
                               ob(&DB), act) == DLCL_OK &&
         dbuf_read(&Y, y, "y") && dbuf_read(&DX, dx, "dx") && dbuf_read(&DG, dg, "dgamma") &&
         dbuf_read(&DB, db, "dbeta") && dbuf_read(&RM, rm, "running_mean") && dbuf_read(&RV, rv, "running_var") &&
         op_batchnorm_forward_eval(ctx, ob(&X), ob(&Y), nb, c, inner, ob(&G), ob(&B), ob(&RM), ob(&RV), 1e-5f, act) ==
             DLCL_OK &&
         dbuf_read(&Y, ye, "y eval");
    const float sum_atol = 5e-7f * (float)(nb * inner) + 1e-5f;
    ok = ok && t_close("y vs torch", y, ty, n, 1e-5f, 1e-5f) && t_close("dx vs torch", dx, tdx, n, 1e-5f, 1e-5f) &&
         t_close("dgamma vs torch", dg, tdg, c, 1e-4f, sum_atol) &&
         t_close("dbeta vs torch", db, tdb, c, 1e-4f, sum_atol) &&
         t_close("running_mean vs torch", rm, trm, c, 1e-6f, 1e-6f) &&
         t_close("running_var vs torch", rv, trv, c, 1e-5f, 1e-6f) &&
         t_close("eval y vs torch", ye, tye, n, 1e-5f, 1e-5f);
    if (!ok) printf("# %d x %d x %d x %d relu %d, seed %llu: %s\n", nb, c, h, w, relu, (unsigned long long)t_seed(),
                    dlcl_last_error());
    dbuf *all[] = {&X, &Y, &DY, &DX, &G, &B, &RM, &RV, &SM, &SI, &DG, &DB};
    for (size_t i = 0; i < T_COUNT(all); i++) dbuf_free(all[i]);
    free(big);
    return ok ? 1 : 0;
}

static void batchnorm_matches_torch_batchnorm(void)
{
    if (getenv("DLCL_TEST_SOURCE_DIR") == NULL) {
        T_SKIP("DLCL_TEST_SOURCE_DIR is not set (run through meson test)");
    }
    if (access("/usr/bin/python3", X_OK) != 0) {
        T_SKIP("no /usr/bin/python3");
    }
    const char *dir = t_tmpdir(0);
    T_CHECK(dir != NULL, "no scratch directory");
    int r = torch_case(dir, 4, 5, 6, 7, 1); /* nn.BatchNorm2d + relu */
    if (r < 0) {
        T_SKIP("/usr/bin/python3 cannot import torch");
    }
    T_CHECK(r == 1, "BatchNorm2d 4 x 5 x 6 x 7 with relu differs from torch");
    T_CHECK(torch_case(dir, 9, 6, 0, 0, 0) == 1, "BatchNorm1d 9 x 6 differs from torch");
}

static const t_case cases[] = {
    T_CASE(batchnorm_matches_ref_nchw_3x7x13x11),
    T_CASE(batchnorm_matches_ref_2d_5x7),
    T_CASE(batchnorm_matches_ref_outer1_inner_large),
    T_CASE(batchnorm_matches_ref_across_tiles),
    T_CASE(batchnorm_backward_matches_finite_differences),
    T_CASE(batchnorm_bad_arguments_are_refused),
    T_CASE(batchnorm_matches_torch_batchnorm),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
