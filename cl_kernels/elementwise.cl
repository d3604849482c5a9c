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
