/* Combining and reshaping activations: sums (residual connections, and the gradients of an
 * output read by several layers), nearest-neighbour upsampling. Each work-item handles a
 * span of contiguous elements: 1 on GPUs (coalesced), thousands on CPU devices, where a
 * plain loop vectorises and a few hundred work-items replace one per element. */

/* y[i] += x[i] */
__kernel void add_into(const int n, const int span, __global const X_T *restrict x, const int xo,
                       __global Y_T *restrict y, const int yo)
{
    const int i0 = get_global_id(0) * span, i1 = min(n, i0 + span);
    __global const X_T *xp = x + xo;
    __global Y_T *yp = y + yo;
    for (int i = i0; i < i1; i++) STY(LDY(i, yp) + LDX(i, xp), i, yp);
}

/* y[i] = act(a[i] + b[i]), act linear (relu = 0) or relu (relu = 1) */
__kernel void add2(const int n, const int span, __global const A_T *restrict a, const int ao,
                   __global const B_T *restrict b, const int bo, __global Y_T *restrict y, const int yo,
                   const int relu)
{
    const int i0 = get_global_id(0) * span, i1 = min(n, i0 + span);
    __global const A_T *ap = a + ao;
    __global const B_T *bp = b + bo;
    __global Y_T *yp = y + yo;
    if (relu) {
        for (int i = i0; i < i1; i++) STY(fmax(LDA(i, ap) + LDB(i, bp), 0.0f), i, yp);
    } else {
        for (int i = i0; i < i1; i++) STY(LDA(i, ap) + LDB(i, bp), i, yp);
    }
}

/* y[i] = relu(y[i]) */
__kernel void relu_inplace(const int n, const int span, __global Y_T *y, const int yo)
{
    const int i0 = get_global_id(0) * span, i1 = min(n, i0 + span);
    __global Y_T *yp = y + yo;
    for (int i = i0; i < i1; i++) STY(fmax(LDY(i, yp), 0.0f), i, yp);
}

/* dz[i] = y[i] > 0 ? dy[i] : 0 (the gradient through a relu, from its output) */
__kernel void relu_grad(const int n, const int span, __global const float *restrict y, const int yo,
                        __global const float *restrict dy, const int dyo, __global float *restrict dz, const int dzo)
{
    const int i0 = get_global_id(0) * span, i1 = min(n, i0 + span);
    __global const float *yp = y + yo, *gp = dy + dyo;
    __global float *zp = dz + dzo;
    for (int i = i0; i < i1; i++) zp[i] = yp[i] > 0.0f ? gp[i] : 0.0f;
}

/* Nearest-neighbour upsampling by an integer scale s of planes h x w: one output row per
 * work-item, y[p][i][j] = x[p][i / s][j / s] (p: plane = sample x channel). */
__kernel void upsample_nearest_forward(const int planes, const int h, const int w, const int s,
                                       __global const X_T *restrict x, const int xo, __global Y_T *restrict y,
                                       const int yo)
{
    const int row = get_global_id(0), p = get_global_id(1);
    const int ws = w * s;
    if (row >= h * s || p >= planes) return;
    __global const X_T *xr = x + xo + ((size_t)p * h + row / s) * w;
    __global Y_T *yr = y + yo + ((size_t)p * h * s + row) * ws;
    for (int j = 0; j < ws; j++) STY(LDX(j / s, xr), j, yr);
}

/* The gradient: dx[p][i][j] = sum of dy over the s x s block it was copied to. */
__kernel void upsample_nearest_backward(const int planes, const int h, const int w, const int s,
                                        __global const float *restrict dy, const int dyo,
                                        __global float *restrict dx, const int dxo)
{
    const int i = get_global_id(0), p = get_global_id(1);
    const int ws = w * s;
    if (i >= h || p >= planes) return;
    __global float *dr = dx + dxo + ((size_t)p * h + i) * w;
    for (int j = 0; j < w; j++) dr[j] = 0.0f;
    for (int a = 0; a < s; a++) {
        __global const float *gr = dy + dyo + ((size_t)p * h * s + (size_t)i * s + a) * ws;
        for (int j = 0; j < ws; j++) dr[j / s] += gr[j];
    }
}

/* y[r][c] = x[r][c] for rows of cols values, x's rows xld apart, y's yld apart, converting
 * between float and half storage (concatenation of inputs stored unlike the output; copies
 * of like storage go by clEnqueueCopyBufferRect). global (cols, rows). */
__kernel void copy_rows(const int rows, const int cols, __global const X_T *restrict x, const int xo, const int xld,
                        __global Y_T *restrict y, const int yo, const int yld)
{
    const int c = get_global_id(0), r = get_global_id(1);
    if (c < cols && r < rows) STY(LDX(xo + (size_t)r * xld + c, x), yo + (size_t)r * yld + c, y);
}
