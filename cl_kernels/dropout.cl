/* Inverted dropout with a counter-based generator: the mask of element i is a hash of
 * (seed, i), so no generator state lives on the device and any element can be recomputed. */

/* A 32-bit integer hash (lowbias32 by C. Wellons) of the counter mixed with the seed. */
inline uint dropout_hash(uint i, uint seed_lo, uint seed_hi)
{
    uint x = i ^ seed_lo;
    x ^= x >> 16; x *= 0x7feb352du;
    x ^= x >> 15; x *= 0x846ca68bu;
    x ^= x >> 16;
    x ^= seed_hi;
    x ^= x >> 16; x *= 0x7feb352du;
    x ^= x >> 15; x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

/* mask[i] = keep ? scale : 0 with P(keep) = 1 - rate; y = x * mask */
__kernel void dropout_forward(const int n, const uint seed_lo, const uint seed_hi, const uint threshold,
                              const float scale, __global const float *x, const int xo,
                              __global float *y, const int yo, __global float *mask, const int mo)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    const float m = dropout_hash((uint)i, seed_lo, seed_hi) >= threshold ? scale : 0.0f;
    mask[mo + i] = m;
    y[yo + i] = x[xo + i] * m;
}

/* y = x * mask, the mask of dropout_forward for the same (seed, i) recomputed instead of read:
 * a dropout that keeps no mask (attention's) runs its forward and its backward, dx = dy * mask,
 * with this kernel. y may alias x. */
__kernel void dropout_apply(const int n, const uint seed_lo, const uint seed_hi, const uint threshold,
                            const float scale, __global const float *x, const int xo, __global float *y, const int yo)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    y[yo + i] = dropout_hash((uint)i, seed_lo, seed_hi) >= threshold ? x[xo + i] * scale : 0.0f;
}

/* dx = dy * mask */
__kernel void dropout_backward(const int n, __global const float *dy, const int dyo,
                               __global const float *mask, const int mo, __global float *dx, const int dxo)
{
    const int i = get_global_id(0);
    if (i < n) dx[dxo + i] = dy[dyo + i] * mask[mo + i];
}
