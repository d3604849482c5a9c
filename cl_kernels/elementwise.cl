/* Elementwise kernels over flat float buffers. Launched over n rounded up to the
 * work-group size; the guard handles the ragged end. */

/* x[i] = value */
__kernel void fill(__global float *x, const int n, const float value)
{
    const int i = get_global_id(0);
    if (i < n) x[i] = value;
}

/* y[i] = alpha * x[i] + y[i] */
__kernel void axpy(const int n, const float alpha, __global const float *x, __global float *y)
{
    const int i = get_global_id(0);
    if (i < n) y[i] = mad(alpha, x[i], y[i]);
}

/* x[i] = alpha * x[i] */
__kernel void scale(__global float *x, const int n, const float alpha)
{
    const int i = get_global_id(0);
    if (i < n) x[i] *= alpha;
}

/* flags[slot] = 1 if any of x[off .. off+n) is NaN or infinite (every writer stores the same 1). */
__kernel void flag_nonfinite(__global const X_T *x, const int off, const int n, __global int *flags, const int slot)
{
    const int i = get_global_id(0);
    if (i < n && !isfinite(LDX(off + i, x))) flags[slot] = 1;
}

/* y[yo + i] = x[xo + i], each stored as float or half (storage.clh), eight values a
 * work-item: vload_half8 converts them in one go where PoCL made a call per value of the
 * one-value form (a GEMM's weights widened at 1.4 GB/s). global ceil(n / 8). */
__kernel void convert(const int n, __global const X_T *x, const int xo, __global Y_T *y, const int yo)
{
    const int i = get_global_id(0), j = 8 * i;
    if (j + 8 <= n) {
        STY8(LDX8(i, x + xo), i, y + yo);
    } else {
        for (int k = j; k < n; k++) STY(LDX(xo + k, x), yo + k, y);
    }
}
