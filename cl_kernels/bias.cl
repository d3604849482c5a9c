/* Per-channel bias over [outer][channels][inner] tensors. */

/* y[o][c][i] += b[c]; one work-item per element of y. */
__kernel void bias_add(__global float *y, const int yo, __global const float *b, const int bo,
                       const int n, const int channels, const int inner)
{
    const int i = get_global_id(0);
    if (i < n) y[yo + i] += b[bo + (i / inner) % channels];
}

/* db[c] = sum over o, i of dy[o][c][i]; one work-item per channel. */
__kernel void bias_grad(__global const float *dy, const int dyo, __global float *db, const int dbo,
                        const int outer, const int channels, const int inner)
{
    const int c = get_global_id(0);
    if (c >= channels) return;
    float sum = 0.0f;
    for (int o = 0; o < outer; o++) {
        __global const float *p = dy + dyo + ((size_t)o * channels + c) * inner;
        for (int i = 0; i < inner; i++) sum += p[i];
    }
    db[dbo + c] = sum;
}
