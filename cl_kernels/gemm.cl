/* dlcl's own SGEMM for CPU devices (PoCL), row-major, C = alpha A B + beta C with A m x k,
 * B k x n (callers transpose operands first; see blas.c).
 *
 * Each work-item owns a 4 x 16 tile of C, held in eight float8 registers, and walks k
 * four steps at a time: a float4 of each of the 4 rows of A, a float8 pair of each of
 * the 4 rows of B. The arithmetic is 4 x 16 x 4 multiply-adds per 16 + 64 floats loaded,
 * which keeps a CPU core's vector units busy from L1/L2. Launched with 1 x 1 work-groups
 * (on a CPU, one work-item per group is one loop iteration: no barrier, no local memory).
 * Tiles that cross the edge of C take a guarded path. Global: (ceil(m/4), ceil(n/16), batch)
 * when rows_first, else (ceil(n/16), ceil(m/4), batch).
 *
 * The NN kernels and the thin ones (sgemv_*) read A through LDA (storage.clh): built with
 * -DA_HALF they take a binary16 A (a half net's conv filters) and widen it in registers,
 * the sums staying float. */

/* fma() where the device has fused multiply-add in hardware (the host adds -DDLCL_FMA,
 * lib/runtime/context.c): PoCL lowers mad() to a multiply and an add, two instructions in
 * the inner loop where fma() is one (1024^3 on the AVX2 EPYC: 89-107 -> 128-143 GFLOP/s). */
#ifdef DLCL_FMA
#define MADD(a, b, c) fma(a, b, c)
#else
#define MADD(a, b, c) mad(a, b, c)
#endif

#define TM 4
#define TN 16

__kernel void sgemm_nn_4x16(const int rows_first, const int m, const int n, const int k, const float alpha,
                            __global const A_T *a, const int ao, const int lda, const int sa,
                            __global const float *b, const int bo, const int ldb, const int pw, const int bps,
                            const int sb,
                            const float beta, __global float *c, const int co, const int ldc, const int sc)
{
    /* rows_first: consecutive work-items share a column strip of B (kept in cache while A
     * streams), which suits a small A; otherwise they share rows of A. */
    const int g0 = get_global_id(0), g1 = get_global_id(1); /* PoCL 3.1 fails on get_global_id(non-constant) */
    const int row0 = (rows_first ? g0 : g1) * TM, col0 = (rows_first ? g1 : g0) * TN;
    const int z = get_global_id(2);
    if (row0 >= m || col0 >= n) return;
    __global const A_T *A = a + ao + (size_t)z * sa;
    /* B's column j is column j % pw of strip j / pw, bps apart (plain B: pw = bps = 16) */
    __global const float *B = b + bo + (size_t)z * sb + (size_t)(col0 / pw) * bps + col0 % pw;
    __global float *C = c + co + (size_t)z * sc;

    if (row0 + TM <= m && col0 + TN <= n) {
        float8 c00 = 0, c01 = 0, c10 = 0, c11 = 0, c20 = 0, c21 = 0, c30 = 0, c31 = 0;
        __global const A_T *a0 = A + (size_t)row0 * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
        int l = 0;
        for (; l + 4 <= k; l += 4) {
            const float4 x0 = LDA4(0, a0 + l), x1 = LDA4(0, a1 + l), x2 = LDA4(0, a2 + l), x3 = LDA4(0, a3 + l);
#define STEP(j, s)                                                                           \
            {                                                                                \
                __global const float *br = B + (size_t)(l + j) * ldb;                        \
                const float8 b0 = vload8(0, br), b1 = vload8(1, br);                         \
                c00 = MADD((float8)x0.s, b0, c00); c01 = MADD((float8)x0.s, b1, c01);          \
                c10 = MADD((float8)x1.s, b0, c10); c11 = MADD((float8)x1.s, b1, c11);          \
                c20 = MADD((float8)x2.s, b0, c20); c21 = MADD((float8)x2.s, b1, c21);          \
                c30 = MADD((float8)x3.s, b0, c30); c31 = MADD((float8)x3.s, b1, c31);          \
            }
            STEP(0, x) STEP(1, y) STEP(2, z) STEP(3, w)
#undef STEP
        }
        for (; l < k; l++) {
            __global const float *br = B + (size_t)l * ldb;
            const float8 b0 = vload8(0, br), b1 = vload8(1, br);
            const float x0 = LDA(l, a0), x1 = LDA(l, a1), x2 = LDA(l, a2), x3 = LDA(l, a3);
            c00 = MADD((float8)x0, b0, c00); c01 = MADD((float8)x0, b1, c01);
            c10 = MADD((float8)x1, b0, c10); c11 = MADD((float8)x1, b1, c11);
            c20 = MADD((float8)x2, b0, c20); c21 = MADD((float8)x2, b1, c21);
            c30 = MADD((float8)x3, b0, c30); c31 = MADD((float8)x3, b1, c31);
        }
        __global float *r0 = C + (size_t)row0 * ldc + col0, *r1 = r0 + ldc, *r2 = r1 + ldc, *r3 = r2 + ldc;
        if (beta == 0.0f) { /* C may hold garbage (NaN): never read it */
            vstore8(alpha * c00, 0, r0); vstore8(alpha * c01, 1, r0);
            vstore8(alpha * c10, 0, r1); vstore8(alpha * c11, 1, r1);
            vstore8(alpha * c20, 0, r2); vstore8(alpha * c21, 1, r2);
            vstore8(alpha * c30, 0, r3); vstore8(alpha * c31, 1, r3);
        } else {
            vstore8(MADD(alpha, c00, beta * vload8(0, r0)), 0, r0); vstore8(MADD(alpha, c01, beta * vload8(1, r0)), 1, r0);
            vstore8(MADD(alpha, c10, beta * vload8(0, r1)), 0, r1); vstore8(MADD(alpha, c11, beta * vload8(1, r1)), 1, r1);
            vstore8(MADD(alpha, c20, beta * vload8(0, r2)), 0, r2); vstore8(MADD(alpha, c21, beta * vload8(1, r2)), 1, r2);
            vstore8(MADD(alpha, c30, beta * vload8(0, r3)), 0, r3); vstore8(MADD(alpha, c31, beta * vload8(1, r3)), 1, r3);
        }
        return;
    }
    /* edge tile: the same 4 x 16 accumulators with guarded loads (rows past m read row 0,
     * columns past n read 0), so edges cost little more than full tiles */
    float acc[TM][TN];
    for (int i = 0; i < TM; i++)
        for (int j = 0; j < TN; j++) acc[i][j] = 0.0f;
    const int rows = min(TM, m - row0), cols = min(TN, n - col0);
    for (int l = 0; l < k; l++) {
        float av[TM], bv[TN];
        for (int i = 0; i < TM; i++) av[i] = LDA((size_t)(row0 + (i < rows ? i : 0)) * lda + l, A);
        __global const float *br = B + (size_t)l * ldb;
        for (int j = 0; j < TN; j++) bv[j] = j < cols ? br[j] : 0.0f;
        for (int i = 0; i < TM; i++)
            for (int j = 0; j < TN; j++) acc[i][j] = MADD(av[i], bv[j], acc[i][j]);
    }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            __global float *cp = C + (size_t)(row0 + i) * ldc + col0 + j;
            *cp = beta == 0.0f ? alpha * acc[i][j] : MADD(alpha, acc[i][j], beta * *cp);
        }
}

/* out[z][j][i] = in[z][i][j]: an rows x cols matrix (leading dimension ld_in, batch stride
 * s_in) into a cols x rows one (ld_out, s_out), by 8 x 8 blocks: a work-item loads eight rows
 * of its block as float8 and stores eight columns after the unpack / shuffle / lane-swap
 * sequence of an AVX transpose (shuffle2 masks LLVM lowers to those instructions); blocks
 * cut by the edge go element by element. Global (ceil(cols/8), ceil(rows/8), batch).
 * DLCL_PROFILE=1 dlcl-bench on the EPYC: 0.25-0.27 ms per launch against 0.54-0.58 for a
 * work-item per element (LeNet's and VGG's operand transposes). */
#define T_LO(x, y) shuffle2(x, y, (uint8)(0, 8, 1, 9, 4, 12, 5, 13))
#define T_HI(x, y) shuffle2(x, y, (uint8)(2, 10, 3, 11, 6, 14, 7, 15))
#define T_44(x, y) shuffle2(x, y, (uint8)(0, 1, 8, 9, 4, 5, 12, 13))
#define T_EE(x, y) shuffle2(x, y, (uint8)(2, 3, 10, 11, 6, 7, 14, 15))
#define T_L0(x, y) shuffle2(x, y, (uint8)(0, 1, 2, 3, 8, 9, 10, 11))
#define T_L1(x, y) shuffle2(x, y, (uint8)(4, 5, 6, 7, 12, 13, 14, 15))
__kernel void transpose(const int rows, const int cols, __global const float *in, const int io, const int ld_in,
                        const int s_in, __global float *out, const int oo, const int ld_out, const int s_out)
{
    const int j0 = get_global_id(0) * 8, i0 = get_global_id(1) * 8, z = get_global_id(2);
    __global const float *a = in + io + (size_t)z * s_in + (size_t)i0 * ld_in + j0;
    __global float *o = out + oo + (size_t)z * s_out + (size_t)j0 * ld_out + i0;
    if (i0 + 8 <= rows && j0 + 8 <= cols) {
        const float8 r0 = vload8(0, a), r1 = vload8(0, a + ld_in), r2 = vload8(0, a + 2 * ld_in),
                     r3 = vload8(0, a + 3 * ld_in), r4 = vload8(0, a + 4 * ld_in), r5 = vload8(0, a + 5 * ld_in),
                     r6 = vload8(0, a + 6 * ld_in), r7 = vload8(0, a + 7 * ld_in);
        const float8 t0 = T_LO(r0, r1), t1 = T_HI(r0, r1), t2 = T_LO(r2, r3), t3 = T_HI(r2, r3);
        const float8 t4 = T_LO(r4, r5), t5 = T_HI(r4, r5), t6 = T_LO(r6, r7), t7 = T_HI(r6, r7);
        const float8 u0 = T_44(t0, t2), u1 = T_EE(t0, t2), u2 = T_44(t1, t3), u3 = T_EE(t1, t3);
        const float8 u4 = T_44(t4, t6), u5 = T_EE(t4, t6), u6 = T_44(t5, t7), u7 = T_EE(t5, t7);
        vstore8(T_L0(u0, u4), 0, o);
        vstore8(T_L0(u1, u5), 0, o + ld_out);
        vstore8(T_L0(u2, u6), 0, o + 2 * ld_out);
        vstore8(T_L0(u3, u7), 0, o + 3 * ld_out);
        vstore8(T_L1(u0, u4), 0, o + 4 * ld_out);
        vstore8(T_L1(u1, u5), 0, o + 5 * ld_out);
        vstore8(T_L1(u2, u6), 0, o + 6 * ld_out);
        vstore8(T_L1(u3, u7), 0, o + 7 * ld_out);
        return;
    }
    for (int i = 0; i < 8 && i0 + i < rows; i++)
        for (int j = 0; j < 8 && j0 + j < cols; j++) o[(size_t)j * ld_out + i] = a[(size_t)i * ld_in + j];
}

/* The same product with an 8 x 32 tile of C per work-item in sixteen float16 registers (one
 * AVX-512 register each): per step of k, two float16 loads of B and eight broadcasts of A
 * feed sixteen vector multiply-adds. Whole tiles only (m % 8 == 0, n % 32 == 0): blas.c
 * gives the edges to sgemm_nn_4x16. Same global layout as sgemm_nn_4x16 with 8 x 32 tiles.
 * B's element (l, j) is at b[bo + z*sb + (j/32)*bps + l*ldb + j%32]: bps = 32 reads a plain
 * row-major B, ldb = 32 and bps = 32*k one packed by pack_panels into contiguous strips. */
__kernel void sgemm_nn_8x32(const int rows_first, const int m, const int n, const int k, const float alpha,
                            __global const A_T *a, const int ao, const int lda, const int sa,
                            __global const float *b, const int bo, const int ldb, const int bps, const int sb,
                            const float beta, __global float *c, const int co, const int ldc, const int sc)
{
    const int g0 = get_global_id(0), g1 = get_global_id(1);
    const int row0 = (rows_first ? g0 : g1) * 8, col0 = (rows_first ? g1 : g0) * 32;
    const int z = get_global_id(2);
    __global const A_T *A = a + ao + (size_t)z * sa + (size_t)row0 * lda;
    __global const float *B = b + bo + (size_t)z * sb + (size_t)(col0 / 32) * bps;
    __global float *C = c + co + (size_t)z * sc + (size_t)row0 * ldc + col0;
    float16 c00 = 0, c01 = 0, c10 = 0, c11 = 0, c20 = 0, c21 = 0, c30 = 0, c31 = 0;
    float16 c40 = 0, c41 = 0, c50 = 0, c51 = 0, c60 = 0, c61 = 0, c70 = 0, c71 = 0;
    for (int l = 0; l < k; l++) {
        __global const float *br = B + (size_t)l * ldb;
        const float16 b0 = vload16(0, br), b1 = vload16(1, br);
        __global const A_T *ac = A + l;
        float x;
        x = LDA(0, ac);       c00 = MADD((float16)x, b0, c00); c01 = MADD((float16)x, b1, c01);
        x = LDA(lda, ac);     c10 = MADD((float16)x, b0, c10); c11 = MADD((float16)x, b1, c11);
        x = LDA(2 * lda, ac); c20 = MADD((float16)x, b0, c20); c21 = MADD((float16)x, b1, c21);
        x = LDA(3 * lda, ac); c30 = MADD((float16)x, b0, c30); c31 = MADD((float16)x, b1, c31);
        x = LDA(4 * lda, ac); c40 = MADD((float16)x, b0, c40); c41 = MADD((float16)x, b1, c41);
        x = LDA(5 * lda, ac); c50 = MADD((float16)x, b0, c50); c51 = MADD((float16)x, b1, c51);
        x = LDA(6 * lda, ac); c60 = MADD((float16)x, b0, c60); c61 = MADD((float16)x, b1, c61);
        x = LDA(7 * lda, ac); c70 = MADD((float16)x, b0, c70); c71 = MADD((float16)x, b1, c71);
    }
#define ST(i, r0, r1)                                                                              \
    {                                                                                              \
        __global float *cr = C + (size_t)(i) * ldc;                                                \
        if (beta == 0.0f) { vstore16(alpha * r0, 0, cr); vstore16(alpha * r1, 1, cr); }            \
        else { vstore16(MADD(alpha, r0, beta * vload16(0, cr)), 0, cr);                             \
               vstore16(MADD(alpha, r1, beta * vload16(1, cr)), 1, cr); }                           \
    }
    ST(0, c00, c01) ST(1, c10, c11) ST(2, c20, c21) ST(3, c30, c31)
    ST(4, c40, c41) ST(5, c50, c51) ST(6, c60, c61) ST(7, c70, c71)
#undef ST
}

/* The same product with an R x 16 tile of C in 2R float8 registers, for 8-wide vector
 * units. R = 6 is the shape of BLIS's Haswell micro-kernel: twelve accumulators, two
 * registers of B and the broadcast of A fill AVX2's sixteen; sgemm_nn_8x32's float16
 * accumulators spill there (and so do R = 8's: 0.45-0.52 of OpenBLAS where 6 reached
 * 0.63-0.80). R = 4 serves small m that 6 does not divide (32, 64 filters): 32x50192x288
 * at 0.82 of OpenBLAS against 0.46. Same global layout as sgemm_nn_8x32 with R x 16 tiles.
 *
 * Ragged edges (m >= R and n >= 16): the last row of tiles is moved up to end at row m,
 * the last column of tiles left to end at column n, and such a tile stores only the rows
 * and columns no other tile owns. The loads stay inside A and B and the loop is the whole
 * tiles' loop, where a guarded edge kernel (sgemm_nn_4x16) ran scalar at a fraction of the
 * speed (ResNet's 14x14 layers: n = 196 = 12 x 16 + 4). B is plain (packed 0: column j at
 * b[.. + j], rows ldb apart) or in strips of 16 columns bps apart (packed 1, pack_panels
 * or blas.c's transposes), the last strip holding columns n-16 .. n-1. */
#define NN16_ACC(i) float8 c##i##0 = 0, c##i##1 = 0;
#define NN16_FMA(i)                                                                                 \
    x = LDA((i) * lda, ac);                                                                         \
    c##i##0 = MADD((float8)x, b0, c##i##0);                                                          \
    c##i##1 = MADD((float8)x, b1, c##i##1);
#define NN16_STORE(i)                                                                               \
    {                                                                                               \
        __global float *cr = C + (size_t)(i) * ldc;                                                 \
        if (beta == 0.0f) { vstore8(alpha * c##i##0, 0, cr); vstore8(alpha * c##i##1, 1, cr); }     \
        else { vstore8(MADD(alpha, c##i##0, beta * vload8(0, cr)), 0, cr);                           \
               vstore8(MADD(alpha, c##i##1, beta * vload8(1, cr)), 1, cr); }                         \
    }
#define NN16_STORE_PART(i)                                                                          \
    if ((i) >= skip_r) {                                                                            \
        __global float *cr = C + (size_t)(i) * ldc;                                                 \
        float v[16];                                                                                \
        vstore8(c##i##0, 0, v);                                                                     \
        vstore8(c##i##1, 1, v);                                                                     \
        for (int j = skip_c; j < 16; j++) cr[j] = beta == 0.0f ? alpha * v[j] : MADD(alpha, v[j], beta * cr[j]); \
    }
#define NN16_ROWS4(M) M(0) M(1) M(2) M(3)
#define NN16_ROWS6(M) NN16_ROWS4(M) M(4) M(5)
#define NN16_KERNEL(NAME, R, ROWS)                                                                  \
__kernel void NAME(const int rows_first, const int m, const int n, const int k, const float alpha,  \
                   __global const A_T *a, const int ao, const int lda, const int sa,                \
                   __global const float *b, const int bo, const int ldb, const int bps, const int sb, \
                   const int packed, const float beta, __global float *c, const int co, const int ldc, \
                   const int sc)                                                                    \
{                                                                                                   \
    const int g0 = get_global_id(0), g1 = get_global_id(1);                                         \
    const int tr = rows_first ? g0 : g1, tc = rows_first ? g1 : g0;                                 \
    if (tr * (R) >= m || tc * 16 >= n) return;                                                      \
    const int row0 = min(tr * (R), m - (R)), col0 = min(tc * 16, n - 16);                           \
    const int skip_r = tr * (R) - row0, skip_c = tc * 16 - col0;                                    \
    const int z = get_global_id(2);                                                                 \
    __global const A_T *A = a + ao + (size_t)z * sa + (size_t)row0 * lda;                           \
    __global const float *B = b + bo + (size_t)z * sb + (packed ? (size_t)tc * bps : (size_t)col0); \
    __global float *C = c + co + (size_t)z * sc + (size_t)row0 * ldc + col0;                        \
    ROWS(NN16_ACC)                                                                                  \
    for (int l = 0; l < k; l++) {                                                                   \
        __global const float *br = B + (size_t)l * ldb;                                             \
        const float8 b0 = vload8(0, br), b1 = vload8(1, br);                                        \
        __global const A_T *ac = A + l;                                                             \
        float x;                                                                                    \
        ROWS(NN16_FMA)                                                                              \
    }                                                                                               \
    if (skip_r == 0 && skip_c == 0) {                                                               \
        ROWS(NN16_STORE)                                                                            \
    } else {                                                                                        \
        ROWS(NN16_STORE_PART)                                                                       \
    }                                                                                               \
}
NN16_KERNEL(sgemm_nn_4x16f, 4, NN16_ROWS4)
NN16_KERNEL(sgemm_nn_6x16, 6, NN16_ROWS6)

/* out[z][s][l][j % width] = in[z][l][col(s) + j % width], s = j / width: the first cols
 * columns (a multiple of width) of a rows x n block of B as contiguous strips of width
 * columns, strip s from column col(s) = min(s * width, n - width) (the last strip of a
 * ragged n overlaps the one before it, see NN16_KERNEL), so that the GEMM kernels read each
 * strip sequentially instead of one cache line per row of B at a stride of ld_in (a
 * multiple of 4 KiB maps every row onto the same L1 set). global (cols, rows, batch) */
__kernel void pack_panels(const int rows, const int cols, const int n, const int width, __global const float *in,
                          const int io, const int ld_in, const int s_in, __global float *out, const int s_out)
{
    const int j = get_global_id(0), l = get_global_id(1), z = get_global_id(2);
    const int strip = j / width, col = min(strip * width, n - width) + j % width;
    if (l < rows && j < cols)
        out[(size_t)z * s_out + ((size_t)strip * rows + l) * width + j % width] =
            in[io + (size_t)z * s_in + (size_t)l * ld_in + col];
}

/* c[i][j] = alpha * sum over z < np of part[z][i][j] + beta * c[i][j] (beta 0: c not read):
 * split-k partial products (m x n each, dense) added into C; global (n, m). */
__kernel void sum_parts(__global const float *part, const int np, const int m, const int n, const float alpha,
                        const float beta, __global float *c, const int co, const int ldc)
{
    const int j = get_global_id(0), i = get_global_id(1);
    if (i >= m || j >= n) return;
    float sum = 0.0f;
    for (int z = 0; z < np; z++) sum += part[((size_t)z * m + i) * n + j];
    __global float *cp = c + co + (size_t)i * ldc + j;
    *cp = beta == 0.0f ? alpha * sum : MADD(alpha, sum, beta * *cp);
}

/* Thin products, m <= 4 rows of A (one position's activations while generating): memory
 * bound, so each float of B is read once, in contiguous runs a work-item can vectorise.
 * C = alpha A B^T + beta C with B stored n x k (nn.Linear's weight, a tied head): a
 * work-item takes GV_ROWS rows of B and dots each with every row of A. Global: ceil(n/4). */
#define GV_ROWS 4
__kernel void sgemv_nt(const int m, const int n, const int k, const float alpha, __global const A_T *a,
                       const int ao, const int lda, __global const float *b, const int bo, const int ldb,
                       const float beta, __global float *c, const int co, const int ldc)
{
    const int j0 = get_global_id(0) * GV_ROWS;
    if (j0 >= n) return;
    for (int j = j0; j < j0 + GV_ROWS && j < n; j++) {
        __global const float *B = b + bo + (size_t)j * ldb;
        for (int i = 0; i < m; i++) {
            __global const A_T *A = a + ao + (size_t)i * lda;
            float8 acc = (float8)(0.0f);
            int p = 0;
            for (; p + 8 <= k; p += 8) acc = MADD(LDA8(0, A + p), vload8(0, B + p), acc);
            float4 h = acc.lo + acc.hi;
            float s = (h.x + h.y) + (h.z + h.w);
            for (; p < k; p++) s = MADD(LDA(p, A), B[p], s);
            __global float *C = c + co + (size_t)i * ldc + j;
            *C = beta == 0.0f ? alpha * s : MADD(beta, *C, alpha * s);
        }
    }
}

/* The same with B stored k x n (Hugging Face's Conv1D weight): work-item z takes rows
 * z*kc .. z*kc+kc-1 of B, each read whole and in order (a column strip per work-item would
 * read 64 bytes a row, a stride apart: 3-4 GB/s on the EPYC where this streams at the
 * memory's rate), and adds a[i][p] times row p into its own partial row of C, part
 * [z][i][n], which stays in cache; sum_parts adds the partial rows. Global: chunks. */
__kernel void sgemv_nn_part(const int m, const int n, const int k, const int kc, __global const A_T *a,
                            const int ao, const int lda, __global const float *b, const int bo, const int ldb,
                            __global float *part)
{
    const int z = get_global_id(0), p0 = z * kc, p1 = min(k, p0 + kc);
    __global float *P = part + (size_t)z * m * n;
    for (int j = 0; j < m * n; j++) P[j] = 0.0f;
    for (int p = p0; p < p1; p++) {
        __global const float *B = b + bo + (size_t)p * ldb;
        for (int i = 0; i < m; i++) {
            const float ai = LDA(ao + (size_t)i * lda + p, a);
            __global float *Pi = P + (size_t)i * n;
            int j = 0;
            for (; j + 16 <= n; j += 16) vstore16(MADD((float16)(ai), vload16(0, B + j), vload16(0, Pi + j)), 0, Pi + j);
            for (; j < n; j++) Pi[j] = MADD(ai, B[j], Pi[j]);
        }
    }
}

