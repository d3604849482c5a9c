/* The inference forwards with half-precision storage (op_buf.half, [net] precision = fp16)
 * against the float references in ref/ run on the half-rounded inputs: every kernel an fp16
 * net can take, each with half input and output and with both mixes (float in, half out;
 * half in, float out). A half output may differ from the reference by its rounding, about
 * 1e-3 of the output's scale; a max, a copy or an upsampling of halves must be exact. Device
 * buffers (dbuf, of halves or floats) hold their values between guard regions, checked after
 * each launch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/ops/ops.h"
#include "ref/ref.h"

#include "dbuf.h"
#include "test.h"

/* An op's status, its message printed when it failed. */
static bool op_ok(dlcl_status st)
{
    if (st != DLCL_OK) printf("# %s: %s\n", dlcl_status_str(st), dlcl_last_error());
    return st == DLCL_OK;
}

static float to_half(float v) { return dlcl__float_from_half(dlcl__half_from_float(v)); }

static float *rnd(size_t n, float lo, float hi)
{
    static uint64_t s;
    if (s == 0) s = t_seed();
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (x) t_fill_uniform(&s, x, n, lo, hi);
    return x;
}

/* x as the device holds it: rounded to half when stored as half */
static void as_stored(float *x, size_t n, int half)
{
    for (size_t i = 0; half && i < n; i++) x[i] = to_half(x[i]);
}

/* Y against want (the float reference on the stored inputs). exact: Y is want rounded to
 * Y's storage; else within 1e-3 of the output's scale for a half Y (its rounding), float
 * roundoff for a float Y. */
static bool expect(const char *label, const dbuf *Y, const float *want, bool exact)
{
    size_t n = Y->n;
    float *got = malloc(n * sizeof *got), *w = malloc(n * sizeof *w);
    bool ok = got && w && dbuf_read(Y, got, label);
    float scale = 0.0f;
    for (size_t i = 0; ok && i < n; i++) {
        w[i] = exact && Y->half ? to_half(want[i]) : want[i];
        scale = fmaxf(scale, fabsf(want[i]));
    }
    float tol = exact ? 0.0f : Y->half ? 1e-3f : 1e-5f;
    ok = ok && t_close(label, got, w, n, tol, tol * scale);
    free(got), free(w);
    return ok;
}

/* The storages (x, y) each op runs with: half to half, and both mixes. */
static const struct {
    int x, y;
} mixes[] = {{1, 1}, {0, 1}, {1, 0}};

static const char *storage(int half) { return half ? "half" : "float"; }

/* ------------------------------------------------------------------ pooling */

#define POOL(...) ((op_pool_shape){__VA_ARGS__})

/* The max (without and with an argmax) and the average forward of shape s in every mix. */
static bool pool_half_case(op_pool_shape s)
{
    dlcl_ctx *ctx = t_ctx();
    if (ctx == NULL || op_pool_shape_infer(&s) != DLCL_OK) return false;
    ref_pool g = {s.n, s.c, s.h, s.w, s.size_h, s.size_w, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.p, s.q};
    size_t nx = (size_t)s.n * s.c * s.h * s.w, ny = (size_t)s.n * s.c * s.p * s.q;
    float *x0 = rnd(nx, -3, 3), *x = malloc(nx * 4), *yr = malloc(ny * 4), *garbage = malloc(ny * 4);
    cl_mem idx = NULL;
    bool ok = x0 && x && yr && garbage && rt_buffer_acquire(ctx, ny * sizeof(int32_t), "idx", &idx) == DLCL_OK;
    for (size_t i = 0; ok && i < ny; i++) garbage[i] = 7.0f;
    for (size_t m = 0; ok && m < DLCL__ARRAY_LEN(mixes); m++) {
        printf("# pool n%d c%d %dx%d size %dx%d stride %d,%d pad %d,%d, x %s, y %s\n", s.n, s.c, s.h, s.w, s.size_h,
               s.size_w, s.stride_h, s.stride_w, s.pad_h, s.pad_w, storage(mixes[m].x), storage(mixes[m].y));
        memcpy(x, x0, nx * 4);
        as_stored(x, nx, mixes[m].x);
        dbuf X = {0}, Y = {0}, Y2 = {0}, Y3 = {0};
        ok = dbuf_new_as(&X, x, nx, mixes[m].x) && dbuf_new_as(&Y, garbage, ny, mixes[m].y) &&
             dbuf_new_as(&Y2, garbage, ny, mixes[m].y) && dbuf_new_as(&Y3, garbage, ny, mixes[m].y);
        maxpool_forward_ref(&g, x, yr);
        ok = ok && op_ok(op_maxpool_forward(ctx, &s, ob(&X), ob(&Y), NULL)) &&
             expect("maxpool forward without argmax", &Y, yr, true) &&
             op_ok(op_maxpool_forward(ctx, &s, ob(&X), ob(&Y2), idx)) &&
             expect("maxpool forward with argmax", &Y2, yr, true);
        avgpool_forward_ref(&g, x, yr);
        ok = ok && op_ok(op_avgpool_forward(ctx, &s, ob(&X), ob(&Y3))) && expect("avgpool forward", &Y3, yr, false);
        dbuf_free(&X), dbuf_free(&Y), dbuf_free(&Y2), dbuf_free(&Y3);
    }
    if (idx) rt_buffer_release(ctx, idx);
    free(x0), free(x), free(yr), free(garbage);
    return ok;
}

/* fn through both kernel families: the row kernels of CPU devices and the per-element ones
 * of GPUs (run here by treating PoCL as a GPU) */
#define BOTH_FAMILIES(ok, call)                                                                    \
    do {                                                                                           \
        dlcl_ctx *ctx_ = t_ctx();                                                                  \
        T_CHECK(ctx_ != NULL, "no context");                                                       \
        const int was_cpu_ = ctx_->cpu_device;                                                     \
        for (int cpu_ = 0; cpu_ < 2; cpu_++) {                                                     \
            ctx_->cpu_device = cpu_;                                                               \
            printf("# %s kernels\n", cpu_ ? "CPU" : "GPU");                                       \
            ok = (call) && ok;                                                                     \
        }                                                                                          \
        ctx_->cpu_device = was_cpu_;                                                               \
    } while (0)

static void pool_forwards_match_ref_with_half_storage(void)
{
    bool ok = true;
    /* 2x2/2: maxpool_forward_2x2 on both; 3x3/2 pad 1: maxpool_forward and the rows kernels;
     * 3x3/1 without padding: maxpool_forward_nopad; a ragged 3x2/3,1 pad 1,0 window */
    BOTH_FAMILIES(ok, pool_half_case(POOL(.n = 3, .c = 2, .h = 7, .w = 13, .size_h = 2, .size_w = 2, .stride_h = 2,
                                          .stride_w = 2)));
    BOTH_FAMILIES(ok, pool_half_case(POOL(.n = 1, .c = 3, .h = 9, .w = 8, .size_h = 3, .size_w = 3, .stride_h = 2,
                                          .stride_w = 2, .pad_h = 1, .pad_w = 1)));
    BOTH_FAMILIES(ok, pool_half_case(POOL(.n = 2, .c = 1, .h = 5, .w = 7, .size_h = 3, .size_w = 3, .stride_h = 1,
                                          .stride_w = 1)));
    BOTH_FAMILIES(ok, pool_half_case(POOL(.n = 1, .c = 2, .h = 11, .w = 6, .size_h = 3, .size_w = 2, .stride_h = 3,
                                          .stride_w = 1, .pad_h = 1)));
    T_CHECK(ok, "a pooling forward differs from the reference");
}

static void global_avgpool_matches_ref_with_half_storage(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    const int n = 2, c = 3, hw = 11 * 13;
    size_t nx = (size_t)n * c * hw, ny = (size_t)n * c;
    float *x0 = rnd(nx, -2, 2), *x = malloc(nx * 4), yr[6];
    bool ok = x0 && x;
    for (size_t m = 0; ok && m < DLCL__ARRAY_LEN(mixes); m++) {
        printf("# global avgpool %d x %d x %d, x %s, y %s\n", n, c, hw, storage(mixes[m].x), storage(mixes[m].y));
        memcpy(x, x0, nx * 4);
        as_stored(x, nx, mixes[m].x);
        for (size_t p = 0; p < ny; p++) {
            double sum = 0.0;
            for (int i = 0; i < hw; i++) sum += x[p * hw + i];
            yr[p] = (float)(sum / hw);
        }
        dbuf X = {0}, Y = {0};
        ok = dbuf_new_as(&X, x, nx, mixes[m].x) && dbuf_new_as(&Y, NULL, ny, mixes[m].y) &&
             op_ok(op_global_avgpool_forward(ctx, n, c, hw, ob(&X), ob(&Y))) &&
             expect("global avgpool forward", &Y, yr, false);
        dbuf_free(&X), dbuf_free(&Y);
    }
    free(x0), free(x);
    T_CHECK(ok, "global average pooling differs from the reference");
}

/* ------------------------------------------------------------------ combining */

/* op_add of n_in inputs stored as x_half (the second as b_half), the sum as y_half */
static bool add_half_case(int n_in, bool relu, int x_half, int b_half, int y_half)
{
    dlcl_ctx *ctx = t_ctx();
    const size_t n = 1003;
    printf("# add of %d inputs%s, first and others %s, second %s, y %s\n", n_in, relu ? ", relu" : "",
           storage(x_half), storage(b_half), storage(y_half));
    float *xs[3] = {0}, *yr = malloc(n * 4);
    dbuf X[3] = {0}, Y = {0};
    op_buf bufs[3];
    bool ok = yr != NULL;
    for (int k = 0; ok && k < n_in; k++) {
        int half = k == 1 ? b_half : x_half;
        ok = (xs[k] = rnd(n, -2, 2)) != NULL;
        if (ok) as_stored(xs[k], n, half);
        ok = ok && dbuf_new_as(&X[k], xs[k], n, half);
        bufs[k] = ob(&X[k]);
    }
    ok = ok && dbuf_new_as(&Y, NULL, n, y_half);
    if (ok) add_ref((const float *const *)xs, n_in, n, relu, yr);
    /* with more than two inputs the partial sums are rounded to y's storage too: two roundings */
    ok = ok && op_ok(op_add(ctx, bufs, n_in, ob(&Y), n, relu)) && expect("add", &Y, yr, false);
    for (int k = 0; k < 3; k++) free(xs[k]), dbuf_free(&X[k]);
    dbuf_free(&Y);
    free(yr);
    return ok;
}

static bool add_half_cases(void)
{
    bool ok = true;
    for (size_t m = 0; m < DLCL__ARRAY_LEN(mixes); m++) {
        ok = add_half_case(2, false, mixes[m].x, mixes[m].x, mixes[m].y) && ok;
        ok = add_half_case(2, true, mixes[m].x, mixes[m].x, mixes[m].y) && ok;
        ok = add_half_case(3, true, mixes[m].x, mixes[m].x, mixes[m].y) && ok;
    }
    /* inputs of unlike storage: a residual branch of halves onto a float shortcut */
    ok = add_half_case(2, true, 1, 0, 1) && ok;
    return add_half_case(3, false, 0, 1, 0) && ok;
}

static void add_matches_ref_with_half_storage(void)
{
    bool ok = true;
    BOTH_FAMILIES(ok, add_half_cases()); /* a span of thousands per work-item on CPU devices, one on GPUs */
    T_CHECK(ok, "add differs from the reference");
}

/* op_copy_rows of rows x cols, src_ld and dst_ld apart, between storages: concatenation */
static bool copy_rows_case(size_t rows, size_t cols, size_t src_ld, size_t dst_ld, int x_half, int y_half)
{
    dlcl_ctx *ctx = t_ctx();
    printf("# copy_rows %zu x %zu, ld %zu -> %zu, x %s, y %s\n", rows, cols, src_ld, dst_ld, storage(x_half),
           storage(y_half));
    size_t ns = rows * src_ld, nd = rows * dst_ld;
    float *x = rnd(ns, -5, 5), *y0 = rnd(nd, -5, 5), *want = malloc(nd * 4);
    dbuf X = {0}, Y = {0};
    bool ok = x && y0 && want;
    if (ok) {
        as_stored(x, ns, x_half);
        as_stored(y0, nd, y_half);
        memcpy(want, y0, nd * 4); /* what lies between the rows stays */
        for (size_t r = 0; r < rows; r++) memcpy(want + r * dst_ld, x + r * src_ld, cols * 4);
    }
    ok = ok && dbuf_new_as(&X, x, ns, x_half) && dbuf_new_as(&Y, y0, nd, y_half) &&
         op_ok(op_copy_rows(ctx, ob(&X), src_ld, ob(&Y), dst_ld, rows, cols)) &&
         expect("copy_rows", &Y, want, true);
    dbuf_free(&X), dbuf_free(&Y);
    free(x), free(y0), free(want);
    return ok;
}

static void concat_copies_rows_between_storages(void)
{
    bool ok = true;
    for (size_t m = 0; m < DLCL__ARRAY_LEN(mixes); m++) {
        ok = copy_rows_case(5, 7, 7, 19, mixes[m].x, mixes[m].y) && ok;   /* the first of two inputs */
        ok = copy_rows_case(5, 12, 12, 19, mixes[m].x, mixes[m].y) && ok; /* the second, at its offset below */
        ok = copy_rows_case(4, 13, 13, 13, mixes[m].x, mixes[m].y) && ok; /* one contiguous block */
    }
    ok = copy_rows_case(3, 9, 11, 9, 1, 1) && ok;
    T_CHECK(ok, "copy_rows differs from the reference");
}

/* The concat layer's placement: input k at offset at of each sample's row of total, through
 * op_at on the output. */
static void concat_places_half_inputs_at_their_offset(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    const size_t rows = 3, a = 6, b = 10, total = a + b;
    float *xa = rnd(rows * a, -1, 1), *xb = rnd(rows * b, -1, 1), *want = malloc(rows * total * 4);
    T_CHECK(xa && xb && want, "out of memory");
    as_stored(xa, rows * a, 1);
    for (size_t r = 0; r < rows; r++) {
        memcpy(want + r * total, xa + r * a, a * 4);
        memcpy(want + r * total + a, xb + r * b, b * 4);
    }
    dbuf A = {0}, B = {0}, Y = {0};
    bool ok = dbuf_new_as(&A, xa, rows * a, 1) && dbuf_new_as(&B, xb, rows * b, 0) && dbuf_new_as(&Y, NULL, rows * total, 1) &&
              op_ok(op_copy_rows(ctx, ob(&A), a, ob(&Y), total, rows, a)) &&
              op_ok(op_copy_rows(ctx, ob(&B), b, op_at(ob(&Y), a), total, rows, b)) &&
              expect("concat of a half and a float input", &Y, want, true);
    dbuf_free(&A), dbuf_free(&B), dbuf_free(&Y);
    free(xa), free(xb), free(want);
    T_CHECK(ok, "concat differs from the reference");
}

static void upsample_matches_ref_with_half_storage(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    const int planes = 6, h = 5, w = 7;
    bool ok = true;
    for (int s = 2; ok && s <= 3; s++)
        for (size_t m = 0; ok && m < DLCL__ARRAY_LEN(mixes); m++) {
            printf("# upsample %d planes %dx%d by %d, x %s, y %s\n", planes, h, w, s, storage(mixes[m].x),
                   storage(mixes[m].y));
            size_t nx = (size_t)planes * h * w, ny = nx * s * s;
            float *x = rnd(nx, -4, 4), *yr = malloc(ny * 4);
            dbuf X = {0}, Y = {0};
            ok = x && yr;
            if (ok) {
                as_stored(x, nx, mixes[m].x);
                upsample_nearest_forward_ref(planes, h, w, s, x, yr);
            }
            ok = ok && dbuf_new_as(&X, x, nx, mixes[m].x) && dbuf_new_as(&Y, NULL, ny, mixes[m].y) &&
                 op_ok(op_upsample_nearest_forward(ctx, planes, h, w, s, ob(&X), ob(&Y))) &&
                 expect("upsample nearest forward", &Y, yr, true);
            dbuf_free(&X), dbuf_free(&Y);
            free(x), free(yr);
        }
    T_CHECK(ok, "upsampling differs from the reference");
}

/* ------------------------------------------------------------------ activations, bias, batch norm */

static void activations_match_ref_with_half_storage(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    const size_t n = 1001;
    const float slope = 0.1f;
    float *x0 = rnd(n, -4, 4), *x = malloc(n * 4), *yr = malloc(n * 4);
    bool ok = x0 && x && yr;
    for (int act = 0; ok && act < OP_ACT_COUNT; act++)
        for (size_t m = 0; ok && m < DLCL__ARRAY_LEN(mixes); m++) {
            printf("# %s forward, x %s, y %s\n", op_act_names[act], storage(mixes[m].x), storage(mixes[m].y));
            memcpy(x, x0, n * 4);
            as_stored(x, n, mixes[m].x);
            for (size_t i = 0; i < n; i++) yr[i] = activation_ref(act, slope, x[i]);
            dbuf X = {0}, Y = {0};
            ok = dbuf_new_as(&X, x, n, mixes[m].x) && dbuf_new_as(&Y, NULL, n, mixes[m].y) &&
                 op_ok(op_activation_forward(ctx, (op_act)act, slope, ob(&X), ob(&Y), n)) &&
                 expect(op_act_names[act], &Y, yr, act == OP_ACT_LINEAR || act == OP_ACT_RELU);
            dbuf_free(&X), dbuf_free(&Y);
        }
    /* in place, as an inference net runs an activation on its input's buffer */
    dbuf XY = {0};
    memcpy(x, x0, n * 4);
    as_stored(x, n, 1);
    for (size_t i = 0; ok && i < n; i++) yr[i] = activation_ref(OP_ACT_SIGMOID, slope, x[i]);
    ok = ok && dbuf_new_as(&XY, x, n, 1) &&
         op_ok(op_activation_forward(ctx, OP_ACT_SIGMOID, slope, ob(&XY), ob(&XY), n)) &&
         expect("sigmoid in place", &XY, yr, false);
    dbuf_free(&XY);
    free(x0), free(x), free(yr);
    T_CHECK(ok, "an activation differs from the reference");
}

static void bias_add_matches_ref_with_half_storage(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    const int outer = 3, channels = 5, inner = 37;
    const size_t n = (size_t)outer * channels * inner;
    bool ok = true;
    /* (bias, y): a float bias onto halves, as a conv's; and both half */
    static const int b_y[][2] = {{0, 1}, {1, 1}, {1, 0}};
    for (size_t m = 0; ok && m < DLCL__ARRAY_LEN(b_y); m++) {
        printf("# bias_add %d x %d x %d, b %s, y %s\n", outer, channels, inner, storage(b_y[m][0]),
               storage(b_y[m][1]));
        float *y = rnd(n, -2, 2), *b = rnd(channels, -1, 1), *yr = malloc(n * 4);
        dbuf Y = {0}, B = {0};
        ok = y && b && yr;
        if (ok) {
            as_stored(y, n, b_y[m][1]);
            as_stored(b, channels, b_y[m][0]);
            for (size_t i = 0; i < n; i++) yr[i] = y[i] + b[(i / inner) % channels];
        }
        ok = ok && dbuf_new_as(&Y, y, n, b_y[m][1]) && dbuf_new_as(&B, b, channels, b_y[m][0]) &&
             op_ok(op_bias_add(ctx, ob(&Y), ob(&B), outer, channels, inner)) && expect("bias_add", &Y, yr, false);
        dbuf_free(&Y), dbuf_free(&B);
        free(y), free(b), free(yr);
    }
    T_CHECK(ok, "bias_add differs from the reference");
}

/* batch norm in evaluation over outer x c x inner, x and y stored as the mix says, the
 * statistics and affine parameters float */
static bool bn_eval_half_case(int outer, int c, int inner, bool relu)
{
    dlcl_ctx *ctx = t_ctx();
    size_t n = (size_t)outer * c * inner;
    float *x0 = rnd(n, -3, 3), *x = malloc(n * 4), *yr = malloc(n * 4), *gamma = rnd(c, 0.5f, 1.5f),
          *beta = rnd(c, -1, 1), *rm = rnd(c, -1, 1), *rv = rnd(c, 0.2f, 2);
    dbuf G = {0}, Bt = {0}, RM = {0}, RV = {0};
    bool ok = x0 && x && yr && gamma && beta && rm && rv && dbuf_new(&G, gamma, c) && dbuf_new(&Bt, beta, c) &&
              dbuf_new(&RM, rm, c) && dbuf_new(&RV, rv, c);
    op_act act = relu ? OP_ACT_RELU : OP_ACT_LINEAR;
    for (size_t m = 0; ok && m < DLCL__ARRAY_LEN(mixes); m++) {
        printf("# batchnorm eval %d x %d x %d%s, x %s, y %s\n", outer, c, inner, relu ? ", relu" : "",
               storage(mixes[m].x), storage(mixes[m].y));
        memcpy(x, x0, n * 4);
        as_stored(x, n, mixes[m].x);
        batchnorm_forward_eval_ref(x, yr, outer, c, inner, gamma, beta, rm, rv, 1e-5f, relu);
        dbuf X = {0}, Y = {0};
        ok = dbuf_new_as(&X, x, n, mixes[m].x) && dbuf_new_as(&Y, NULL, n, mixes[m].y) &&
             op_ok(op_batchnorm_forward_eval(ctx, ob(&X), ob(&Y), outer, c, inner, ob(&G), ob(&Bt), ob(&RM), ob(&RV),
                                             1e-5f, act)) &&
             expect("batchnorm forward eval", &Y, yr, false);
        dbuf_free(&X), dbuf_free(&Y);
    }
    dbuf_free(&G), dbuf_free(&Bt), dbuf_free(&RM), dbuf_free(&RV);
    free(x0), free(x), free(yr), free(gamma), free(beta), free(rm), free(rv);
    return ok;
}

static void batchnorm_eval_matches_ref_with_half_storage(void)
{
    bool ok = true;
    BOTH_FAMILIES(ok, bn_eval_half_case(3, 5, 37, false)); /* the tile kernel's row pieces on CPU devices */
    BOTH_FAMILIES(ok, bn_eval_half_case(4, 6, 1, true));   /* a dense layer's [N, F]: the tile kernel's inner == 1 */
    BOTH_FAMILIES(ok, bn_eval_half_case(2, 3, 1500, true));
    T_CHECK(ok, "batch norm in evaluation differs from the reference");
}

/* ------------------------------------------------------------------ ops without a half path */

static void ops_without_half_path_refuse_half_buffers(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    dbuf X = {0}, Y = {0};
    bool ok = dbuf_new_as(&X, NULL, 64, 1) && dbuf_new_as(&Y, NULL, 64, 0);
    if (!ok) dbuf_free(&X), dbuf_free(&Y);
    T_CHECK(ok, "buffers");
    dlcl_status st = op_layernorm_forward(ctx, ob(&X), ob(&Y), 4, 16, op_b(NULL, 0), op_b(NULL, 0), 1e-5f,
                                          op_b(NULL, 0), op_b(NULL, 0));
    bool ln = t_err_matches(st, DLCL_ERR_INVALID_ARG, "op_layernorm_forward: x is stored as half precision");
    if (!ln) printf("# layernorm: %s: %s\n", dlcl_status_str(st), dlcl_last_error());
    /* half storage is for inference: the backwards refuse it, as batch norm's training forward */
    st = op_activation_backward(ctx, OP_ACT_RELU, 0.0f, ob(&Y), ob(&Y), ob(&X), ob(&Y), 64);
    bool act = t_err_matches(st, DLCL_ERR_INVALID_ARG, "op_activation_backward: dy is stored as half precision");
    if (!act) printf("# activation backward: %s: %s\n", dlcl_status_str(st), dlcl_last_error());
    st = op_batchnorm_forward_train(ctx, ob(&X), ob(&Y), 4, 4, 4, op_b(NULL, 0), op_b(NULL, 0), 1e-5f, 0.1f,
                                    op_b(NULL, 0), op_b(NULL, 0), op_b(NULL, 0), op_b(NULL, 0), OP_ACT_LINEAR);
    bool bn = t_err_matches(st, DLCL_ERR_INVALID_ARG, "op_batchnorm_forward_train: x is stored as half precision");
    if (!bn) printf("# batchnorm train: %s: %s\n", dlcl_status_str(st), dlcl_last_error());
    dbuf_free(&X), dbuf_free(&Y);
    T_CHECK(ln && act && bn, "an op without a half path took a half buffer");
}

/* ------------------------------------------------------------------ the conversions themselves */

/* n raw elements of `bytes` each between the host and a fresh buffer */
static cl_mem raw_buffer(const void *host, size_t bytes)
{
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateBuffer(t_ctx()->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err == CL_SUCCESS && host)
        err = clEnqueueWriteBuffer(t_ctx()->queue, m, CL_TRUE, 0, bytes, host, 0, NULL, NULL);
    if (err != CL_SUCCESS && m) clReleaseMemObject(m), m = NULL;
    return m;
}

/* op_convert both ways, against the host's conversions (checked against the compiler's
 * _Float16 when they were written): every one of the 65,536 halves to float, and to half
 * the floats around every half's rounding boundary (the halfway points and their
 * neighbours, where round-to-nearest-even decides), the overflow edge, subnormals, zeros,
 * infinities, NaN and a spread of random bit patterns: the device's vload_half and
 * vstore_half must give the same bits. */
static void conversions_match_ieee_binary16_bit_for_bit(void)
{
    dlcl_ctx *ctx = t_ctx();
    size_t nh = 65536, nf = 0, cap = 65536 * 6 + 4096;
    uint16_t *h = malloc(nh * sizeof *h), *h2 = malloc(cap * sizeof *h2);
    float *f = malloc(cap * sizeof *f), *f2 = malloc(nh * sizeof *f2);
    bool ok = ctx && h && h2 && f && f2;
    for (size_t i = 0; ok && i < nh; i++) h[i] = (uint16_t)i;
    for (size_t i = 0; ok && i + 1 < nh; i++) { /* the boundary between half i and i + 1, and its neighbours */
        if ((i & 0x7c00u) == 0x7c00u || i == 0x7fffu) continue;
        float a = dlcl__float_from_half((uint16_t)i), b = dlcl__float_from_half((uint16_t)(i + 1));
        float mid = a + (b - a) * 0.5f;
        f[nf++] = mid, f[nf++] = nextafterf(mid, -INFINITY), f[nf++] = nextafterf(mid, INFINITY);
    }
    static const float special[] = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, 1e6f, -1e6f, 6.1e-5f, 5.96e-8f,
                                    2.98e-8f, 2.99e-8f, 1e-10f, 1e-40f, INFINITY, -INFINITY, NAN};
    for (size_t i = 0; ok && i < T_COUNT(special); i++) f[nf++] = special[i];
    uint64_t s = t_seed();
    while (ok && nf < cap) {
        uint32_t bits = (uint32_t)(dlcl__splitmix64(&s) >> 32);
        memcpy(&f[nf++], &bits, sizeof bits);
    }
    cl_mem dh = ok ? raw_buffer(h, nh * 2) : NULL, df = ok ? raw_buffer(NULL, nh * 4) : NULL;
    cl_mem sf = ok ? raw_buffer(f, nf * 4) : NULL, sh = ok ? raw_buffer(NULL, nf * 2) : NULL;
    ok = ok && dh && df && sf && sh;
    ok = ok && op_ok(op_convert(ctx, (op_buf){dh, 0, 1}, op_b(df, 0), nh)) &&
         op_ok(op_convert(ctx, op_b(sf, 0), (op_buf){sh, 0, 1}, nf));
    ok = ok && clEnqueueReadBuffer(ctx->queue, df, CL_TRUE, 0, nh * 4, f2, 0, NULL, NULL) == CL_SUCCESS &&
         clEnqueueReadBuffer(ctx->queue, sh, CL_TRUE, 0, nf * 2, h2, 0, NULL, NULL) == CL_SUCCESS;
    size_t bad = 0;
    for (size_t i = 0; ok && i < nh; i++) {
        float want = dlcl__float_from_half(h[i]);
        if (isnan(want) ? !isnan(f2[i]) : memcmp(&want, &f2[i], 4) != 0) {
            if (bad++ < 5) printf("# half %04zx: device %a, want %a\n", i, (double)f2[i], (double)want);
        }
    }
    for (size_t i = 0; ok && i < nf; i++) {
        uint16_t want = dlcl__half_from_float(f[i]);
        bool nan = (want & 0x7c00u) == 0x7c00u && (want & 0x3ffu);
        bool got_nan = (h2[i] & 0x7c00u) == 0x7c00u && (h2[i] & 0x3ffu);
        if (nan ? !got_nan : h2[i] != want) {
            if (bad++ < 10) printf("# float %a: device %04x, want %04x\n", (double)f[i], h2[i], want);
        }
    }
    /* eight values a work-item: a ragged count between odd offsets, the floats around it kept */
    size_t off_h = 37, off_f = 5, nr = 1003;
    for (size_t i = 0; ok && i < nh; i++) f2[i] = -1.0f;
    ok = ok && clEnqueueWriteBuffer(ctx->queue, df, CL_TRUE, 0, nh * 4, f2, 0, NULL, NULL) == CL_SUCCESS &&
         op_ok(op_convert(ctx, (op_buf){dh, off_h, 1}, op_b(df, off_f), nr)) &&
         clEnqueueReadBuffer(ctx->queue, df, CL_TRUE, 0, nh * 4, f2, 0, NULL, NULL) == CL_SUCCESS;
    for (size_t i = 0; ok && i < off_f + nr + 64; i++) {
        bool in = i >= off_f && i < off_f + nr;
        float want = in ? dlcl__float_from_half(h[off_h + i - off_f]) : -1.0f;
        if (memcmp(&want, &f2[i], 4) != 0 && bad++ < 15) printf("# ragged: float %zu is %a, want %a\n", i, (double)f2[i], (double)want);
    }
    printf("# %zu halves to float, %zu floats to half, %zu differ\n", nh, nf, bad);
    T_CHECK(ok && bad == 0, "conversions differ from IEEE binary16 round to nearest even");
    for (cl_mem *m = (cl_mem[]){dh, df, sf, sh}, *e = m + 4; m < e; m++)
        if (*m) clReleaseMemObject(*m);
    free(h), free(h2), free(f), free(f2);
}

static const t_case cases[] = {
    T_CASE(conversions_match_ieee_binary16_bit_for_bit),
    T_CASE(pool_forwards_match_ref_with_half_storage),
    T_CASE(global_avgpool_matches_ref_with_half_storage),
    T_CASE(add_matches_ref_with_half_storage),
    T_CASE(concat_copies_rows_between_storages),
    T_CASE(concat_places_half_inputs_at_their_offset),
    T_CASE(upsample_matches_ref_with_half_storage),
    T_CASE(activations_match_ref_with_half_storage),
    T_CASE(bias_add_matches_ref_with_half_storage),
    T_CASE(batchnorm_eval_matches_ref_with_half_storage),
    T_CASE(ops_without_half_path_refuse_half_buffers),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
