/* Batch normalisation (PyTorch's nn.BatchNorm1d/2d) over x viewed as [outer][channels][inner]:
 * NCHW has outer = N, inner = H*W; a 2-d [N, F] input has inner = 1. Channel c has the
 * m = outer*inner values e = o*inner + i, at x[(o*channels + c)*inner + i].
 *
 * Two families of kernels (lib/ops/norm.c picks one per device):
 * - *_tile, for CPU devices: work-item (k, b) takes the values [k*q, (k+1)*q) of the
 *   channels [b*cb, (b+1)*cb), row piece by row piece, with plain loops that LLVM
 *   vectorises. Long rows: one channel, q a fixed chunk. Short rows: q whole rows and
 *   enough channels that each row of the tile is a contiguous run of a few KiB; one
 *   channel's pieces alone would be a few floats a page apart, and the loads would wait
 *   on memory one by one. The reductions write a partial result per (k, channel), and a
 *   *_combine kernel adds a channel's parts in the order of k.
 * - *_wg, for GPUs: a work-group per channel strides over its values and adds the
 *   work-items' partial sums by a tree in local memory.
 * The mean comes first, then the sum of squared deviations from it (never E[x^2] - E[x]^2,
 * which cancels catastrophically when the mean is large beside the spread). The sums for
 * the mean are of x - K, K the channel's first value: with data far from zero (a mean of
 * 1000, a spread of 1) a float sum of x itself would lose the mean's low digits.
 *
 * Per-channel arrays of the CPU kernels are laid out as planes of `channels` floats:
 * part[k] = {sums[channels], second sums[channels]}, coef = {plane 0, 1, 2}, so that with
 * inner = 1 the loop over a tile's channels is a contiguous, vectorisable loop. */

/* Work-item (k, b)'s tile: values [*e0, *e1) of channels [*c0, *c1); false past the last. */
inline bool tile(const int m, const int channels, const int q, const int cb, int *e0, int *e1, int *c0, int *c1)
{
    const int k = get_global_id(0), b = get_global_id(1);
    if (k > (m - 1) / q || b > (channels - 1) / cb) return false;
    *e0 = k * q;
    *e1 = *e0 + min(q, m - *e0);
    *c0 = b * cb;
    *c1 = *c0 + min(cb, channels - *c0);
    return true;
}

/* The body after it runs once per row piece of the tile, rows outermost: channel c, values
 * [i0, i0 + len) of row o, at offset ((size_t)o * channels + c) * inner + i0. */
#define FOR_PIECES(e0, e1, c0, c1)                                                                                  \
    for (int o = (e0) / inner, o_end = ((e1) - 1) / inner + 1; o < o_end; o++)                                     \
        for (int i0 = max((e0) - o * inner, 0), len = min((e1) - o * inner, inner) - i0, c = (c0); c < (c1); c++)
#define PIECE_AT (((size_t)o * channels + c) * inner + i0)

inline float hsum8(const float8 a)
{
    const float4 h = a.lo + a.hi;
    return (h.x + h.y) + (h.z + h.w);
}

/* The sum of p[i] - shift over i < n in 32 lanes (float8, AVX2's width: wider vectors
 * change the x86 call ABI, and PoCL warns): short float chains, which keep rounding small,
 * and LLVM cannot vectorise a float sum by itself (it may not reorder the additions). */
inline float seg_sum(__global const float *p, const int n, const float shift)
{
    float8 a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    float t = 0.0f;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 += vload8(0, p + i) - shift;
        a1 += vload8(1, p + i) - shift;
        a2 += vload8(2, p + i) - shift;
        a3 += vload8(3, p + i) - shift;
    }
    for (; i + 8 <= n; i += 8) a0 += vload8(0, p + i) - shift; /* short rows (7x7: 49) end in these */
    for (; i < n; i++) t += p[i] - shift;
    return hsum8((a0 + a1) + (a2 + a3)) + t;
}

/* The sum of (p[i] - mean)^2 over i < n, in 32 lanes. */
inline float seg_sqdev(__global const float *p, const int n, const float mean)
{
    float8 a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    float t = 0.0f;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        const float8 d0 = vload8(0, p + i) - mean, d1 = vload8(1, p + i) - mean, d2 = vload8(2, p + i) - mean,
                     d3 = vload8(3, p + i) - mean;
        a0 += d0 * d0;
        a1 += d1 * d1;
        a2 += d2 * d2;
        a3 += d3 * d3;
    }
    for (; i + 8 <= n; i += 8) {
        const float8 d = vload8(0, p + i) - mean;
        a0 += d * d;
    }
    for (; i < n; i++) {
        const float d = p[i] - mean;
        t += d * d;
    }
    return hsum8((a0 + a1) + (a2 + a3)) + t;
}

/* The backward's two sums over a piece: *sdz = sum of dz, *sdzx = sum of dz * (x - mean),
 * dz = dy, or dy where y > 0 when relu (y is relu's output); 16 lanes each. */
inline void seg_grad_sums(__global const float *x, __global const float *y, __global const float *dy, const int n,
                          const float mean, const int relu, float *sdz, float *sdzx)
{
    float8 a0 = 0.0f, a1 = 0.0f, b0 = 0.0f, b1 = 0.0f;
    float ta = 0.0f, tb = 0.0f;
    int i = 0;
    if (relu) {
        for (; i + 16 <= n; i += 16) {
            const float8 g0 = select((float8)0.0f, vload8(0, dy + i), isgreater(vload8(0, y + i), (float8)0.0f)),
                         g1 = select((float8)0.0f, vload8(1, dy + i), isgreater(vload8(1, y + i), (float8)0.0f));
            a0 += g0;
            a1 += g1;
            b0 += g0 * (vload8(0, x + i) - mean);
            b1 += g1 * (vload8(1, x + i) - mean);
        }
        for (; i + 8 <= n; i += 8) {
            const float8 g = select((float8)0.0f, vload8(0, dy + i), isgreater(vload8(0, y + i), (float8)0.0f));
            a0 += g;
            b0 += g * (vload8(0, x + i) - mean);
        }
        for (; i < n; i++) {
            const float g = y[i] > 0.0f ? dy[i] : 0.0f;
            ta += g;
            tb += g * (x[i] - mean);
        }
    } else {
        for (; i + 16 <= n; i += 16) {
            const float8 g0 = vload8(0, dy + i), g1 = vload8(1, dy + i);
            a0 += g0;
            a1 += g1;
            b0 += g0 * (vload8(0, x + i) - mean);
            b1 += g1 * (vload8(1, x + i) - mean);
        }
        for (; i + 8 <= n; i += 8) {
            const float8 g = vload8(0, dy + i);
            a0 += g;
            b0 += g * (vload8(0, x + i) - mean);
        }
        for (; i < n; i++) {
            ta += dy[i];
            tb += dy[i] * (x[i] - mean);
        }
    }
    *sdz = hsum8(a0 + a1) + ta;
    *sdzx = hsum8(b0 + b1) + tb;
}

/* Stores channel c's batch statistics from its mean and sum of squared deviations m2 over
 * m values: mean, invstd = 1/sqrt(var + eps) with the biased var = m2/m, and when track,
 * running = (1 - momentum) * running + momentum * stat, the unbiased var m2/(m-1) for
 * running_var (m > 1: norm.c refuses m == 1 in training, as PyTorch does). */
inline void stats_store(const int c, const float mu, const float m2, const int m, const float eps,
                        __global float *mean, const int mo, __global float *invstd, const int io, const int track,
                        __global float *rmean, const int rmo, __global float *rvar, const int rvo, const float momentum)
{
    mean[mo + c] = mu;
    invstd[io + c] = rsqrt(m2 / (float)m + eps);
    if (track) {
        rmean[rmo + c] = (1.0f - momentum) * rmean[rmo + c] + momentum * mu;
        rvar[rvo + c] = (1.0f - momentum) * rvar[rvo + c] + momentum * (m2 / (float)(m - 1));
    }
}

/* Per tile and channel, the sum of x - K and the sum of squared deviations from the tile's
 * own mean of the channel: part[k] planes 0 and 1. The second pass over the tile (64 KiB)
 * reads the cache, not memory. global (ceil(m / q), ceil(channels / cb)), local (1, 1). */
__kernel void batchnorm_stats_tile(__global const float *restrict x, const int xo, __global float *restrict part,
                                   const int po, const int outer, const int channels, const int inner, const int q,
                                   const int cb)
{
    int e0, e1, c0, c1;
    if (!tile(outer * inner, channels, q, cb, &e0, &e1, &c0, &c1)) return;
    __global const float *xc = x + xo;
    __global float *sum = part + po + 2 * (size_t)get_global_id(0) * channels, *m2 = sum + channels;
    for (int c = c0; c < c1; c++) sum[c] = m2[c] = 0.0f;
    if (inner == 1) { /* a tile row is the channels' values side by side, K their first row */
        for (int o = e0; o < e1; o++)
            for (int c = c0; c < c1; c++) sum[c] += xc[(size_t)o * channels + c] - xc[c];
        const float inv_n = 1.0f / (float)(e1 - e0);
        for (int o = e0; o < e1; o++)
            for (int c = c0; c < c1; c++) {
                const float d = xc[(size_t)o * channels + c] - (xc[c] + sum[c] * inv_n);
                m2[c] += d * d;
            }
        return;
    }
    FOR_PIECES(e0, e1, c0, c1) sum[c] += seg_sum(xc + PIECE_AT, len, xc[(size_t)c * inner]);
    const float inv_n = 1.0f / (float)(e1 - e0);
    FOR_PIECES(e0, e1, c0, c1) m2[c] += seg_sqdev(xc + PIECE_AT, len, xc[(size_t)c * inner] + sum[c] * inv_n);
}

/* Channel c's statistics from its nk parts (tiles of q values, the last one shorter), added
 * in order: the mean from the parts' sums, then m2 = sum over parts of (m2_k + n_k *
 * (mean_k - mean)^2), which is exact algebra (the parallel-axis theorem) with no
 * cancellation. global (channels). */
__kernel void batchnorm_stats_combine(__global const float *restrict x, const int xo,
                                      __global const float *restrict part, const int po, const int outer,
                                      const int channels, const int inner, const int q, const float eps,
                                      __global float *mean, const int mo, __global float *invstd, const int io,
                                      const int track, __global float *rmean, const int rmo, __global float *rvar,
                                      const int rvo, const float momentum)
{
    const int c = get_global_id(0), m = outer * inner, nk = (m - 1) / q + 1;
    if (c >= channels) return;
    __global const float *p = part + po + c;
    float sum = 0.0f;
    for (int k = 0; k < nk; k++) sum += p[2 * (size_t)k * channels];
    const float mu = sum / (float)m; /* of x - K */
    float m2 = 0.0f;
    for (int k = 0; k < nk; k++) {
        const float nk_values = (float)min(q, m - k * q), d = p[2 * (size_t)k * channels] / nk_values - mu;
        m2 += p[(2 * (size_t)k + 1) * channels] + nk_values * d * d;
    }
    stats_store(c, x[xo + (size_t)c * inner] + mu, m2, m, eps, mean, mo, invstd, io, track, rmean, rmo, rvar, rvo,
                momentum);
}

/* The sum of v over the work-group, by a tree in red[local size] (a power of two); every
 * work-item gets it. Call from uniform control flow. */
inline float group_sum(__local float *red, const float v)
{
    const int lid = get_local_id(0);
    red[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = get_local_size(0) / 2; h > 0; h >>= 1) {
        if (lid < h) red[lid] += red[lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float s = red[0];
    barrier(CLK_LOCAL_MEM_FENCE); /* red is free again */
    return s;
}

/* The offset of channel c's value e in the tensor. */
inline size_t value_at(const int e, const int inner, const int channels, const int c)
{
    const int o = e / inner;
    return ((size_t)o * channels + c) * inner + (e - o * inner);
}

/* batchnorm_stats_tile and _combine in one kernel for GPUs: work-group c strides over
 * channel c's values (neighbouring work-items read neighbouring addresses), takes the mean
 * by group_sum (of x - K), then the squared deviations. global (channels * local), local a
 * power of two. */
__kernel void batchnorm_stats_wg(__global const float *restrict x, const int xo, const int outer, const int channels,
                                 const int inner, const float eps, __global float *mean, const int mo,
                                 __global float *invstd, const int io, const int track, __global float *rmean,
                                 const int rmo, __global float *rvar, const int rvo, const float momentum,
                                 __local float *red)
{
    const int c = get_group_id(0), lid = get_local_id(0), wg = get_local_size(0), m = outer * inner;
    __global const float *xc = x + xo;
    const float shift = xc[(size_t)c * inner];
    float s = 0.0f;
    for (int e = lid; e < m; e += wg) s += xc[value_at(e, inner, channels, c)] - shift;
    const float mu = shift + group_sum(red, s) / (float)m;
    float q = 0.0f;
    for (int e = lid; e < m; e += wg) {
        const float d = xc[value_at(e, inner, channels, c)] - mu;
        q += d * d;
    }
    const float m2 = group_sum(red, q);
    if (lid == 0) stats_store(c, mu, m2, m, eps, mean, mo, invstd, io, track, rmean, rmo, rvar, rvo, momentum);
}

/* The forward's per-channel coefficients, y = (x - mean) * scale + shift:
 *   coef plane 0 = mean, 1 = scale = invstd * gamma, 2 = shift = beta,
 * sd holding invstd (training: the batch's) or, when sd_is_var, the running variance, from
 * which invstd = 1/sqrt(var + eps). gamma and beta count only when has_gamma / has_beta
 * (affine=False: 1 and 0). global (channels). */
__kernel void batchnorm_coef(const int channels, __global const float *mean, const int mo, __global const float *sd,
                             const int so, const int sd_is_var, const float eps, __global const float *gamma,
                             const int go, const int has_gamma, __global const float *beta, const int bo,
                             const int has_beta, __global float *coef)
{
    const int c = get_global_id(0);
    if (c >= channels) return;
    const float inv = sd_is_var ? rsqrt(sd[so + c] + eps) : sd[so + c];
    coef[c] = mean[mo + c];
    coef[channels + c] = has_gamma ? gamma[go + c] * inv : inv;
    coef[2 * channels + c] = has_beta ? beta[bo + c] : 0.0f;
}

/* relu that keeps NaN, as torch.relu does */
inline float relu_keep_nan(const float v) { return v < 0.0f ? 0.0f : v; }

/* y = (x - mean) * scale + shift (batchnorm_coef), then relu when relu is set; a work-item
 * per value, for GPUs. y may alias x. global (outer * channels * inner). */
__kernel void batchnorm_apply(__global const X_T *x, const int xo, __global Y_T *y, const int yo, const int outer,
                              const int channels, const int inner, __global const float *restrict coef,
                              const int relu)
{
    const int e = get_global_id(0);
    if (e >= outer * channels * inner) return;
    const int c = (e / inner) % channels;
    const float v = (LDX(e, x + xo) - coef[c]) * coef[channels + c] + coef[2 * channels + c];
    STY(relu ? relu_keep_nan(v) : v, e, y + yo);
}

/* The same by tiles for CPU devices. y may alias x. global and local as batchnorm_stats_tile. */
__kernel void batchnorm_apply_tile(__global const X_T *x, const int xo, __global Y_T *y, const int yo,
                                   const int outer, const int channels, const int inner, const int q, const int cb,
                                   __global const float *restrict coef, const int relu)
{
    int e0, e1, c0, c1;
    if (!tile(outer * inner, channels, q, cb, &e0, &e1, &c0, &c1)) return;
    __global const float *mean = coef, *scale = coef + channels, *shift = coef + 2 * channels;
    if (inner == 1) {
        for (int o = e0; o < e1; o++) {
            __global const X_T *xr = x + xo + (size_t)o * channels;
            __global Y_T *yr = y + yo + (size_t)o * channels;
            if (relu)
                for (int c = c0; c < c1; c++) STY(relu_keep_nan((LDX(c, xr) - mean[c]) * scale[c] + shift[c]), c, yr);
            else
                for (int c = c0; c < c1; c++) STY((LDX(c, xr) - mean[c]) * scale[c] + shift[c], c, yr);
        }
        return;
    }
    FOR_PIECES(e0, e1, c0, c1)
    {
        __global const X_T *xp = x + xo + PIECE_AT;
        __global Y_T *yp = y + yo + PIECE_AT;
        const float mu = mean[c], s = scale[c], b = shift[c];
        if (relu)
            for (int i = 0; i < len; i++) STY(relu_keep_nan((LDX(i, xp) - mu) * s + b), i, yp);
        else
            for (int i = 0; i < len; i++) STY((LDX(i, xp) - mu) * s + b, i, yp);
    }
}

/* Channel c's gradients from its sums sdz = sum dz and sdzx = sum dz * (x - mean):
 * dbeta = sdz, dgamma = sdzx * invstd (each when asked for), and the coefficients of
 *   dx = gamma * invstd / m * (m * dz - sdz - xhat * sum(dz * xhat)),  xhat = (x - mean) * invstd
 *      = a * dz - b * (x - mean) - d,  a = gamma * invstd, b = a * invstd^2 * sdzx / m, d = a * sdz / m
 * in coef planes 0, 1, 2. */
inline void grad_store(const int c, const int channels, const float sdz, const float sdzx, const int m,
                       __global const float *gamma, const int go, const int has_gamma, __global const float *invstd,
                       const int io, __global float *dgamma, const int dgo, const int has_dgamma,
                       __global float *dbeta, const int dbo, const int has_dbeta, __global float *coef)
{
    const float inv = invstd[io + c], a = (has_gamma ? gamma[go + c] : 1.0f) * inv;
    if (has_dbeta) dbeta[dbo + c] = sdz;
    if (has_dgamma) dgamma[dgo + c] = sdzx * inv;
    coef[c] = a;
    coef[channels + c] = a * inv * inv * (sdzx / (float)m);
    coef[2 * channels + c] = a * (sdz / (float)m);
}

/* Per tile and channel, the backward's two sums (seg_grad_sums) into part[k] planes 0 and 1.
 * global and local as batchnorm_stats_tile. */
__kernel void batchnorm_backward_tile(__global const float *restrict x, const int xo, __global const float *restrict y,
                                      const int yo, __global const float *restrict dy, const int dyo,
                                      __global const float *restrict mean, const int mo, __global float *restrict part,
                                      const int po, const int outer, const int channels, const int inner,
                                      const int q, const int cb, const int relu)
{
    int e0, e1, c0, c1;
    if (!tile(outer * inner, channels, q, cb, &e0, &e1, &c0, &c1)) return;
    __global float *sdz = part + po + 2 * (size_t)get_global_id(0) * channels, *sdzx = sdz + channels;
    __global const float *mu = mean + mo;
    for (int c = c0; c < c1; c++) sdz[c] = sdzx[c] = 0.0f;
    if (inner == 1) {
        for (int o = e0; o < e1; o++) {
            const size_t r = (size_t)o * channels;
            __global const float *xr = x + xo + r, *yr = y + yo + r, *dyr = dy + dyo + r;
            for (int c = c0; c < c1; c++) {
                const float g = !relu || yr[c] > 0.0f ? dyr[c] : 0.0f;
                sdz[c] += g;
                sdzx[c] += g * (xr[c] - mu[c]);
            }
        }
        return;
    }
    FOR_PIECES(e0, e1, c0, c1)
    {
        float a, b;
        seg_grad_sums(x + xo + PIECE_AT, y + yo + PIECE_AT, dy + dyo + PIECE_AT, len, mu[c], relu, &a, &b);
        sdz[c] += a;
        sdzx[c] += b;
    }
}

/* Channel c's sums from its parts, in order, then grad_store. global (channels). */
__kernel void batchnorm_backward_combine(__global const float *restrict part, const int po, const int outer,
                                         const int channels, const int inner, const int q,
                                         __global const float *gamma, const int go, const int has_gamma,
                                         __global const float *invstd, const int io, __global float *dgamma,
                                         const int dgo, const int has_dgamma, __global float *dbeta, const int dbo,
                                         const int has_dbeta, __global float *coef)
{
    const int c = get_global_id(0), m = outer * inner, nk = (m - 1) / q + 1;
    if (c >= channels) return;
    __global const float *p = part + po + c;
    float sdz = 0.0f, sdzx = 0.0f;
    for (int k = 0; k < nk; k++) {
        sdz += p[2 * (size_t)k * channels];
        sdzx += p[(2 * (size_t)k + 1) * channels];
    }
    grad_store(c, channels, sdz, sdzx, m, gamma, go, has_gamma, invstd, io, dgamma, dgo, has_dgamma, dbeta, dbo,
               has_dbeta, coef);
}

/* batchnorm_backward_tile and _combine in one kernel for GPUs: a work-group per channel.
 * global (channels * local), local a power of two. */
__kernel void batchnorm_backward_wg(__global const float *restrict x, const int xo, __global const float *restrict y,
                                    const int yo, __global const float *restrict dy, const int dyo,
                                    __global const float *restrict mean, const int mo, const int outer,
                                    const int channels, const int inner, const int relu, __global const float *gamma,
                                    const int go, const int has_gamma, __global const float *invstd, const int io,
                                    __global float *dgamma, const int dgo, const int has_dgamma,
                                    __global float *dbeta, const int dbo, const int has_dbeta, __global float *coef,
                                    __local float *red)
{
    const int c = get_group_id(0), lid = get_local_id(0), wg = get_local_size(0), m = outer * inner;
    const float mu = mean[mo + c];
    float a = 0.0f, b = 0.0f;
    for (int e = lid; e < m; e += wg) {
        const size_t at = value_at(e, inner, channels, c);
        const float g = !relu || y[yo + at] > 0.0f ? dy[dyo + at] : 0.0f;
        a += g;
        b += g * (x[xo + at] - mu);
    }
    const float sdz = group_sum(red, a), sdzx = group_sum(red, b);
    if (lid == 0)
        grad_store(c, channels, sdz, sdzx, m, gamma, go, has_gamma, invstd, io, dgamma, dgo, has_dgamma, dbeta, dbo,
                   has_dbeta, coef);
}

/* dx = a * dz - b * (x - mean) - d with channel c's coefficients (grad_store); dz = dy, or
 * dy where y > 0 when relu; a work-item per value, for GPUs. dx may alias dy.
 * global (outer * channels * inner). */
__kernel void batchnorm_backward_data(__global const float *x, const int xo, __global const float *y, const int yo,
                                      __global const float *dy, const int dyo, __global float *dx, const int dxo,
                                      __global const float *restrict mean, const int mo,
                                      __global const float *restrict coef, const int outer, const int channels,
                                      const int inner, const int relu)
{
    const int e = get_global_id(0);
    if (e >= outer * channels * inner) return;
    const int c = (e / inner) % channels;
    const float g = !relu || (y + yo)[e] > 0.0f ? (dy + dyo)[e] : 0.0f;
    (dx + dxo)[e] = coef[c] * g - coef[channels + c] * ((x + xo)[e] - mean[mo + c]) - coef[2 * channels + c];
}

/* The same by tiles for CPU devices. dx may alias dy. global and local as batchnorm_stats_tile. */
__kernel void batchnorm_backward_data_tile(__global const float *x, const int xo, __global const float *y,
                                           const int yo, __global const float *dy, const int dyo, __global float *dx,
                                           const int dxo, __global const float *restrict mean, const int mo,
                                           __global const float *restrict coef, const int outer, const int channels,
                                           const int inner, const int q, const int cb, const int relu)
{
    int e0, e1, c0, c1;
    if (!tile(outer * inner, channels, q, cb, &e0, &e1, &c0, &c1)) return;
    __global const float *mu = mean + mo, *ca = coef, *cbt = coef + channels, *cd = coef + 2 * channels;
    if (inner == 1) {
        for (int o = e0; o < e1; o++) {
            const size_t r = (size_t)o * channels;
            __global const float *xr = x + xo + r, *yr = y + yo + r, *dyr = dy + dyo + r;
            __global float *dxr = dx + dxo + r;
            if (relu)
                for (int c = c0; c < c1; c++)
                    dxr[c] = ca[c] * (yr[c] > 0.0f ? dyr[c] : 0.0f) - cbt[c] * (xr[c] - mu[c]) - cd[c];
            else
                for (int c = c0; c < c1; c++) dxr[c] = ca[c] * dyr[c] - cbt[c] * (xr[c] - mu[c]) - cd[c];
        }
        return;
    }
    FOR_PIECES(e0, e1, c0, c1)
    {
        __global const float *xp = x + xo + PIECE_AT, *dyp = dy + dyo + PIECE_AT, *yp = y + yo + PIECE_AT;
        __global float *dxp = dx + dxo + PIECE_AT;
        const float a = ca[c], b = cbt[c], d = cd[c], m = mu[c];
        if (relu)
            for (int i = 0; i < len; i++) dxp[i] = a * (yp[i] > 0.0f ? dyp[i] : 0.0f) - b * (xp[i] - m) - d;
        else
            for (int i = 0; i < len; i++) dxp[i] = a * dyp[i] - b * (xp[i] - m) - d;
    }
}
