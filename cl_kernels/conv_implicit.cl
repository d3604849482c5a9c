/* Implicit-GEMM convolution of stride 1 (lib/ops/conv_implicit.c): the GEMM kernels of
 * gemm.cl (R x 16 tiles, twelve or eight float8 accumulators) reading the columns straight
 * from a zero-padded copy of the input instead of an im2col matrix nine times its size.
 *
 * In a padded plane of pitch IM_WP (input width plus both pads), output (oh, ow) reads tap
 * (kh, kw) at (oh + kh) * IM_WP + ow + kw: with the outputs laid on the padded grid,
 * o = oh * IM_WP + ow, the column of tap t is the plane shifted by TAP_OFF(t), so row
 * (ci, t) of the implicit column matrix is plane ci read from TAP_OFF(t) on. The grid has
 * IM_WP - IM_QV junk columns per row (outputs past the valid width), computed and dropped
 * (ResNet's 56x56: 3136 of 3248 grid columns are outputs). A junk column reads past its
 * row, never past the padded planes but for the last plane's last s - 1 floats, which the
 * workspace leaves as slack.
 *
 * Built per geometry (-D IM_R, IM_S kernel size, IM_WP grid pitch, IM_PLANE floats per
 * padded plane, IM_QV valid outputs per grid row; see conv_implicit.c), so that the taps
 * unroll with constant offsets; without them (dlcl_ctx_build_all) for a 1x1 placeholder. */
#ifndef IM_R
#define IM_R 1
#define IM_S 1
#define IM_WP 16
#define IM_PLANE 16
#define IM_QV 16
#endif
#define IM_RS (IM_R * IM_S)
#define TAP_OFF(t) (((t) / IM_S) * IM_WP + (t) % IM_S)

#ifdef DLCL_FMA
#define MADD(a, b, c) fma(a, b, c)
#else
#define MADD(a, b, c) mad(a, b, c)
#endif

/* Stores row i of a tile (two float8 of grid columns col0 .. col0+15, the first skip_c
 * owned by another tile) into an NCHW output plane out of IM_QV-wide rows, dropping junk
 * columns; beta 0: out not read. Then, on the last block of input channels, the epilogue:
 * plus the row's bias badd, and relu (NaN stays NaN, as in PyTorch), which saves the
 * output a second pass (conv.c's bias_act). A tile inside one row's valid part stores two
 * vectors. */
inline float8 epilogue8(const float8 v, const float badd, const int relu)
{
    const float8 r = v + badd;
    return relu ? select(r, (float8)0.0f, r < 0.0f) : r;
}

inline void grid_store(__global float *out, const float8 v0, const float8 v1, const int col0, const int skip_c,
                       const float beta, const float badd, const int relu)
{
    const int oh = col0 / IM_WP, ow = col0 - oh * IM_WP;
    __global float *o = out + oh * IM_QV + ow;
    if (skip_c == 0 && ow + 16 <= IM_QV) {
        if (beta == 0.0f) {
            vstore8(epilogue8(v0, badd, relu), 0, o);
            vstore8(epilogue8(v1, badd, relu), 1, o);
        } else {
            vstore8(epilogue8(MADD(beta, vload8(0, o), v0), badd, relu), 0, o);
            vstore8(epilogue8(MADD(beta, vload8(1, o), v1), badd, relu), 1, o);
        }
        return;
    }
    float v[16];
    vstore8(v0, 0, v);
    vstore8(v1, 1, v);
    for (int j = skip_c; j < 16; j++) {
        const int g = col0 + j, gh = g / IM_WP, gw = g - gh * IM_WP;
        if (gw >= IM_QV) continue;
        __global float *d = out + gh * IM_QV + gw;
        const float r = (beta == 0.0f ? v[j] : MADD(beta, *d, v[j])) + badd;
        *d = relu ? select(r, 0.0f, r < 0.0f) : r;
    }
}

/* y (+)= W x over the padded input: C[o][g] for output channels o < m and grid columns
 * g < n = rows * IM_WP, reduced over the input channels ci0 .. ci0+cin-1 of the padded
 * planes (image z at b + bo + z*sb) and their taps; filters a [m][lda] from ao (row o's
 * taps of channel ci at ci * IM_RS); outputs NCHW, image z at c + co + z*sc, planes of
 * plane_out floats; then bias[bo_bias + o] (has_bias) and relu, set on the last block of
 * channels only. Ragged edges as NN16_KERNEL in gemm.cl (the last tile of rows moved up,
 * of columns left, storing only what no other tile owns). global as sgemm_nn_6x16. */
#define IF_ACC(i) float8 c##i##0 = 0, c##i##1 = 0;
#define IF_FMA(i)                                                                                   \
    x = ar[(i) * lda];                                                                              \
    c##i##0 = MADD((float8)x, b0, c##i##0);                                                          \
    c##i##1 = MADD((float8)x, b1, c##i##1);
#define IF_STORE(i)                                                                                 \
    if ((i) >= skip_r)                                                                              \
        grid_store(C + (size_t)(i) * plane_out, c##i##0, c##i##1, col0, skip_c, beta,               \
                   has_bias ? bias[bo_bias + row0 + (i)] : 0.0f, relu);
#define IF_ROWS4(M) M(0) M(1) M(2) M(3)
#define IF_ROWS6(M) IF_ROWS4(M) M(4) M(5)
#define IMPLICIT_FORWARD(NAME, R, ROWS)                                                             \
__kernel void NAME(const int rows_first, const int m, const int n, const int cin,                   \
                   __global const float *restrict a, const int ao, const int lda,                   \
                   __global const float *restrict b, const int bo, const int sb, const float beta,  \
                   __global float *restrict c, const int co, const int sc, const int plane_out,     \
                   __global const float *restrict bias, const int bo_bias, const int has_bias,      \
                   const int relu)                                                                  \
{                                                                                                   \
    const int g0 = get_global_id(0), g1 = get_global_id(1), z = get_global_id(2);                   \
    const int tr = rows_first ? g0 : g1, tc = rows_first ? g1 : g0;                                 \
    if (tr * (R) >= m || tc * 16 >= n) return;                                                      \
    const int row0 = min(tr * (R), m - (R)), col0 = min(tc * 16, n - 16);                           \
    const int skip_r = tr * (R) - row0, skip_c = tc * 16 - col0;                                    \
    __global const float *A = a + ao + (size_t)row0 * lda;                                          \
    __global const float *B = b + bo + (size_t)z * sb + col0;                                       \
    __global float *C = c + co + (size_t)z * sc + (size_t)row0 * plane_out;                         \
    ROWS(IF_ACC)                                                                                    \
    for (int ci = 0; ci < cin; ci++) {                                                              \
        __global const float *bc = B + (size_t)ci * IM_PLANE, *ac = A + ci * IM_RS;                 \
        _Pragma("unroll")                                                                           \
        for (int t = 0; t < IM_RS; t++) {                                                           \
            __global const float *br = bc + TAP_OFF(t), *ar = ac + t;                               \
            const float8 b0 = vload8(0, br), b1 = vload8(1, br);                                    \
            float x;                                                                                \
            ROWS(IF_FMA)                                                                            \
        }                                                                                           \
    }                                                                                               \
    ROWS(IF_STORE)                                                                                  \
}
IMPLICIT_FORWARD(implicit_forward_4x16, 4, IF_ROWS4)
IMPLICIT_FORWARD(implicit_forward_6x16, 6, IF_ROWS6)

/* The transposed filter gradient, dW^T[(ci, t)][o] (+)= sum over grid columns g of
 * x_pad[ci][TAP_OFF(t) + g] dz[o][g]: the implicit columns as A (m = cin * IM_RS rows, each
 * a padded plane read from its tap's offset, from ao on: a block of k grid columns of one
 * image), dz as B in strips of 16 filters (implicit_dz_strips: [g][16], bps apart, the last
 * strip ending at filter n). C [m][ldc] from co; beta 0: overwritten. Ragged edges as in
 * IMPLICIT_FORWARD; global as sgemm_nn_6x16. */
#define IW_ROW(i) __global const float *a##i = a + ao + rowoff(row0 + (i));
#define IW_ACC(i) float8 c##i##0 = 0, c##i##1 = 0;
#define IW_FMA(i)                                                                                   \
    x = a##i[l];                                                                                    \
    c##i##0 = MADD((float8)x, b0, c##i##0);                                                          \
    c##i##1 = MADD((float8)x, b1, c##i##1);
#define IW_STORE(i)                                                                                 \
    if ((i) >= skip_r) {                                                                            \
        __global float *cr = C + (size_t)(i) * ldc;                                                 \
        float v[16];                                                                                \
        vstore8(c##i##0, 0, v);                                                                     \
        vstore8(c##i##1, 1, v);                                                                     \
        for (int j = skip_c; j < 16; j++) cr[j] = beta == 0.0f ? v[j] : MADD(beta, cr[j], v[j]);    \
    }
inline size_t rowoff(const int r) { return (size_t)(r / IM_RS) * IM_PLANE + TAP_OFF(r % IM_RS); }
#define IMPLICIT_FILTER_GRAD(NAME, R, ROWS)                                                         \
__kernel void NAME(const int rows_first, const int m, const int n, const int k,                     \
                   __global const float *restrict a, const int ao, __global const float *restrict b, \
                   const int bo, const int bps, const float beta, __global float *restrict c,       \
                   const int co, const int ldc)                                                     \
{                                                                                                   \
    const int g0 = get_global_id(0), g1 = get_global_id(1);                                         \
    const int tr = rows_first ? g0 : g1, tc = rows_first ? g1 : g0;                                 \
    if (tr * (R) >= m || tc * 16 >= n) return;                                                      \
    const int row0 = min(tr * (R), m - (R)), col0 = min(tc * 16, n - 16);                           \
    const int skip_r = tr * (R) - row0, skip_c = tc * 16 - col0;                                    \
    ROWS(IW_ROW)                                                                                    \
    __global const float *B = b + bo + (size_t)tc * bps;                                            \
    __global float *C = c + co + (size_t)row0 * ldc + col0;                                         \
    ROWS(IW_ACC)                                                                                    \
    for (int l = 0; l < k; l++) {                                                                   \
        const float8 b0 = vload8(0, B + (size_t)l * 16), b1 = vload8(1, B + (size_t)l * 16);        \
        float x;                                                                                    \
        ROWS(IW_FMA)                                                                                \
    }                                                                                               \
    ROWS(IW_STORE)                                                                                  \
}
IMPLICIT_FILTER_GRAD(implicit_filter_grad_4x16, 4, IF_ROWS4)
IMPLICIT_FILTER_GRAD(implicit_filter_grad_6x16, 6, IF_ROWS6)

/* dz of image z as strips of 16 filters on the grid of the forward: out[z][s][g][j] =
 * dz[z][f + j][oh][ow] for g = oh * IM_WP + ow (0 in the junk columns ow >= IM_QV), f =
 * min(16 s, k - 16) (the last strip ends at filter k). dz NCHW from dzo, images k*rows*IM_QV
 * apart; out from oo, images strips * rows * IM_WP * 16 apart. global (rows, strips, nb): a
 * work-item per grid row of a strip, writing it contiguously. */
__kernel void implicit_dz_strips(__global const float *restrict dz, const int dzo, __global float *restrict out,
                                 const int oo, const int k, const int rows, const int strips)
{
    const int oh = get_global_id(0), s = get_global_id(1), z = get_global_id(2);
    if (oh >= rows || s >= strips) return;
    const int f = min(16 * s, k - 16);
    __global const float *src = dz + dzo + ((size_t)z * k + f) * rows * IM_QV + (size_t)oh * IM_QV;
    __global float *d = out + oo + (((size_t)z * strips + s) * rows + oh) * IM_WP * 16;
    for (int ow = 0; ow < IM_WP; ow++)
        for (int j = 0; j < 16; j++)
            d[ow * 16 + j] = ow < IM_QV ? src[(size_t)j * rows * IM_QV + (ow < IM_QV ? ow : 0)] : 0.0f;
}

/* The data gradient's filters: wf[ci][o][t] = w[o][ci][IM_RS - 1 - t] (rotated by 180
 * degrees, input and output channels swapped). global (cin * IM_RS, cout) */
__kernel void implicit_flip(__global const float *restrict w, const int wo, __global float *restrict wf,
                            const int wfo, const int cin, const int cout)
{
    const int i = get_global_id(0), o = get_global_id(1);
    if (i >= cin * IM_RS || o >= cout) return;
    const int ci = i / IM_RS, t = i % IM_RS;
    wf[wfo + ((size_t)ci * cout + o) * IM_RS + t] = w[wo + ((size_t)o * cin + ci) * IM_RS + IM_RS - 1 - t];
}
