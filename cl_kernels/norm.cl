/* Batch normalisation (PyTorch's nn.BatchNorm1d/2d) over x viewed as [outer][channels][inner]:
 * NCHW has outer = N, inner = H*W; a 2-d [N, F] input has inner = 1. Channel c has the
 * m = outer*inner values e = o*inner + i, at x[(o*channels + c)*inner + i].
 *
 * Two families of kernels (lib/ops/norm.c picks one per device):
 * - *_rows, for CPU devices: a work-item per (chunk of `chunk` consecutive values, channel)
 *   walks the chunk's pieces of contiguous rows with plain loops that LLVM vectorises, and
 *   writes a partial result per chunk; a *_combine kernel then adds the chunks of a channel
 *   in their order. Thousands of work-items of one value each are slow on PoCL.
 * - *_wg, for GPUs: a work-group per channel strides over its values and adds the
 *   work-items' partial sums by a tree in local memory.
 * The mean comes first, then the sum of squared deviations from it (never E[x^2] - E[x]^2,
 * which cancels catastrophically when the mean is large beside the spread). The sums for
 * the mean are of x - K, K the channel's first value: with data far from zero (a mean of
 * 1000, a spread of 1) a float sum of x itself would lose the mean's low digits. */

/* The piece of channel c's values from value e to the end of its row or to e1, whichever
 * comes first: returns its length and sets *at to its offset in the tensor. */
inline int piece(const int e, const int e1, const int inner, const int channels, const int c, size_t *at)
{
    const int o = e / inner, i = e - o * inner;
    *at = ((size_t)o * channels + c) * inner + i;
    return min(inner - i, e1 - e);
}

/* Chunk k of channel c: values [*e0, *e1); false past the last chunk. */
inline bool chunk_range(const int k, const int c, const int channels, const int m, const int chunk, int *e0, int *e1)
{
    if (c >= channels || k >= (m + chunk - 1) / chunk) return false;
    *e0 = k * chunk;
    *e1 = *e0 + min(chunk, m - *e0);
    return true;
}

inline float hsum16(const float16 a)
{
    const float8 h8 = a.lo + a.hi;
    const float4 h4 = h8.lo + h8.hi;
    return (h4.x + h4.y) + (h4.z + h4.w);
}

/* The sum of p[i] - shift over i < n in 32 lanes: short float chains, which keep rounding
 * small, and LLVM cannot vectorise a float sum by itself (it may not reorder the additions). */
inline float seg_sum(__global const float *p, const int n, const float shift)
{
    float16 a0 = 0.0f, a1 = 0.0f;
    float t = 0.0f;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 += vload16(0, p + i) - shift;
        a1 += vload16(1, p + i) - shift;
    }
    for (; i < n; i++) t += p[i] - shift;
    return hsum16(a0 + a1) + t;
}

/* The sum of (p[i] - mean)^2 over i < n, in 32 lanes. */
inline float seg_sqdev(__global const float *p, const int n, const float mean)
{
    float16 a0 = 0.0f, a1 = 0.0f;
    float t = 0.0f;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        const float16 d0 = vload16(0, p + i) - mean, d1 = vload16(1, p + i) - mean;
        a0 += d0 * d0;
        a1 += d1 * d1;
    }
    for (; i < n; i++) {
        const float d = p[i] - mean;
        t += d * d;
    }
    return hsum16(a0 + a1) + t;
}

/* The backward's two sums over a piece: *sdz += sum of dz, *sdzx += sum of dz * (x - mean),
 * dz = dy, or dy where y > 0 when relu (y is relu's output). */
inline void seg_grad_sums(__global const float *x, __global const float *y, __global const float *dy, const int n,
                          const float mean, const int relu, float *sdz, float *sdzx)
{
    float16 a = 0.0f, b = 0.0f;
    float ta = 0.0f, tb = 0.0f;
    int i = 0;
    if (relu) {
        for (; i + 16 <= n; i += 16) {
            const float16 g = select((float16)0.0f, vload16(0, dy + i), isgreater(vload16(0, y + i), (float16)0.0f));
            a += g;
            b += g * (vload16(0, x + i) - mean);
        }
        for (; i < n; i++) {
            const float g = y[i] > 0.0f ? dy[i] : 0.0f;
            ta += g;
            tb += g * (x[i] - mean);
        }
    } else {
        for (; i + 16 <= n; i += 16) {
            const float16 g = vload16(0, dy + i);
            a += g;
            b += g * (vload16(0, x + i) - mean);
        }
        for (; i < n; i++) {
            ta += dy[i];
            tb += dy[i] * (x[i] - mean);
        }
    }
    *sdz += hsum16(a) + ta;
    *sdzx += hsum16(b) + tb;
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

/* Per chunk of values, the sum of x - K and the sum of squared deviations from the chunk's
 * own mean: part[po + 2*(c*nchunk + k) + {0, 1}]. The second pass over the chunk (a few tens of KiB)
 * reads the cache, not memory. global (nchunk, channels), local (1, 1). */
__kernel void batchnorm_stats_rows(__global const float *restrict x, const int xo, __global float *restrict part,
                                   const int po, const int outer, const int channels, const int inner, const int chunk)
{
    const int k = get_global_id(0), c = get_global_id(1), m = outer * inner;
    int e0, e1;
    if (!chunk_range(k, c, channels, m, chunk, &e0, &e1)) return;
    __global const float *xc = x + xo;
    const float shift = xc[(size_t)c * inner];
    float sum = 0.0f, m2 = 0.0f;
    size_t at;
    for (int e = e0, len; e < e1; e += len) {
        len = piece(e, e1, inner, channels, c, &at);
        sum += seg_sum(xc + at, len, shift);
    }
    const float mu = shift + sum / (float)(e1 - e0);
    for (int e = e0, len; e < e1; e += len) {
        len = piece(e, e1, inner, channels, c, &at);
        m2 += seg_sqdev(xc + at, len, mu);
    }
    const size_t p = po + 2 * ((size_t)c * ((m + chunk - 1) / chunk) + k);
    part[p] = sum;
    part[p + 1] = m2;
}

/* Channel c's statistics from its chunks, added in chunk order: the mean from the chunks'
 * sums, then m2 = sum over chunks of (m2_k + n_k * (mean_k - mean)^2), which is exact
 * algebra (the parallel-axis theorem) with no cancellation. global (channels). */
__kernel void batchnorm_stats_combine(__global const float *restrict x, const int xo,
                                      __global const float *restrict part, const int po, const int outer,
                                      const int channels, const int inner, const int chunk, const float eps,
                                      __global float *mean, const int mo, __global float *invstd, const int io,
                                      const int track, __global float *rmean, const int rmo, __global float *rvar,
                                      const int rvo, const float momentum)
{
    const int c = get_global_id(0), m = outer * inner, nchunk = (m + chunk - 1) / chunk;
    if (c >= channels) return;
    __global const float *p = part + po + 2 * (size_t)c * nchunk;
    float sum = 0.0f;
    for (int k = 0; k < nchunk; k++) sum += p[2 * k];
    const float mu = sum / (float)m; /* of x - K */
    float m2 = 0.0f;
    for (int k = 0; k < nchunk; k++) {
        const float nk = (float)min(chunk, m - k * chunk), d = p[2 * k] / nk - mu;
        m2 += p[2 * k + 1] + nk * d * d;
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

/* batchnorm_stats_rows and _combine in one kernel for GPUs: work-group c strides over
 * channel c's values (neighbouring work-items read neighbouring addresses), takes the mean
 * by group_sum (of x - K), then the squared deviations. global (channels * local), local a power of two. */
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

/* The arguments of both apply kernels: y = (x - mean) * invstd * gamma + beta, then relu
 * when relu is set. sd holds invstd (training: the batch's) or, when sd_is_var, the
 * running variance, from which invstd = 1/sqrt(var + eps). gamma and beta count only when
 * has_gamma / has_beta (affine=False: 1 and 0). */
#define APPLY_ARGS                                                                                                  \
    __global const float *x, const int xo, __global float *y, const int yo, const int outer, const int channels,   \
        const int inner, const int chunk, __global const float *mean, const int mo, __global const float *sd,      \
        const int so, const int sd_is_var, const float eps, __global const float *gamma, const int go,             \
        const int has_gamma, __global const float *beta, const int bo, const int has_beta, const int relu

/* Channel c's scale and shift: y = (x - mean) * scale + shift. */
inline void apply_coef(const int c, __global const float *sd, const int so, const int sd_is_var, const float eps,
                       __global const float *gamma, const int go, const int has_gamma, __global const float *beta,
                       const int bo, const int has_beta, float *scale, float *shift)
{
    const float inv = sd_is_var ? rsqrt(sd[so + c] + eps) : sd[so + c];
    *scale = has_gamma ? gamma[go + c] * inv : inv;
    *shift = has_beta ? beta[bo + c] : 0.0f;
}

/* relu that keeps NaN, as torch.relu does */
inline float relu_keep_nan(const float v) { return v < 0.0f ? 0.0f : v; }

/* A work-item per value; for GPUs and for rows too short for batchnorm_apply_rows (chunk is
 * not used). y may alias x. global (outer * channels * inner). */
__kernel void batchnorm_apply(APPLY_ARGS)
{
    const int e = get_global_id(0);
    if (e >= outer * channels * inner) return;
    const int c = (e / inner) % channels;
    float scale, shift;
    apply_coef(c, sd, so, sd_is_var, eps, gamma, go, has_gamma, beta, bo, has_beta, &scale, &shift);
    const float v = ((x + xo)[e] - mean[mo + c]) * scale + shift;
    (y + yo)[e] = relu ? relu_keep_nan(v) : v;
}

/* A work-item per (chunk, channel) for CPU devices, a plain loop along each row piece.
 * y may alias x. global (nchunk, channels), local (1, 1). */
__kernel void batchnorm_apply_rows(APPLY_ARGS)
{
    const int k = get_global_id(0), c = get_global_id(1);
    int e0, e1;
    if (!chunk_range(k, c, channels, outer * inner, chunk, &e0, &e1)) return;
    float scale, shift;
    apply_coef(c, sd, so, sd_is_var, eps, gamma, go, has_gamma, beta, bo, has_beta, &scale, &shift);
    const float mu = mean[mo + c];
    size_t at;
    for (int e = e0, len; e < e1; e += len) {
        len = piece(e, e1, inner, channels, c, &at);
        __global const float *xp = x + xo + at;
        __global float *yp = y + yo + at;
        if (relu)
            for (int i = 0; i < len; i++) yp[i] = relu_keep_nan((xp[i] - mu) * scale + shift);
        else
            for (int i = 0; i < len; i++) yp[i] = (xp[i] - mu) * scale + shift;
    }
}

/* Channel c's gradients from its sums sdz = sum dz and sdzx = sum dz * (x - mean):
 * dbeta = sdz, dgamma = sdzx * invstd (each when asked for), and the coefficients of
 *   dx = gamma * invstd / m * (m * dz - sdz - xhat * sum(dz * xhat)),  xhat = (x - mean) * invstd
 *      = a * dz - b * (x - mean) - d,  a = gamma * invstd, b = a * invstd^2 * sdzx / m, d = a * sdz / m
 * in coef[3c .. 3c+2]. */
inline void grad_store(const int c, const float sdz, const float sdzx, const int m, __global const float *gamma,
                       const int go, const int has_gamma, __global const float *invstd, const int io,
                       __global float *dgamma, const int dgo, const int has_dgamma, __global float *dbeta,
                       const int dbo, const int has_dbeta, __global float *coef)
{
    const float inv = invstd[io + c], a = (has_gamma ? gamma[go + c] : 1.0f) * inv;
    if (has_dbeta) dbeta[dbo + c] = sdz;
    if (has_dgamma) dgamma[dgo + c] = sdzx * inv;
    coef[3 * c] = a;
    coef[3 * c + 1] = a * inv * inv * (sdzx / (float)m);
    coef[3 * c + 2] = a * (sdz / (float)m);
}

/* Per chunk, the backward's two sums (seg_grad_sums) into part[po + 2*(c*nchunk + k) + {0, 1}].
 * global (nchunk, channels), local (1, 1). */
__kernel void batchnorm_backward_rows(__global const float *restrict x, const int xo, __global const float *restrict y,
                                      const int yo, __global const float *restrict dy, const int dyo,
                                      __global const float *restrict mean, const int mo, __global float *restrict part,
                                      const int po, const int outer, const int channels, const int inner,
                                      const int chunk, const int relu)
{
    const int k = get_global_id(0), c = get_global_id(1), m = outer * inner;
    int e0, e1;
    if (!chunk_range(k, c, channels, m, chunk, &e0, &e1)) return;
    const float mu = mean[mo + c];
    float sdz = 0.0f, sdzx = 0.0f;
    size_t at;
    for (int e = e0, len; e < e1; e += len) {
        len = piece(e, e1, inner, channels, c, &at);
        seg_grad_sums(x + xo + at, y + yo + at, dy + dyo + at, len, mu, relu, &sdz, &sdzx);
    }
    const size_t p = po + 2 * ((size_t)c * ((m + chunk - 1) / chunk) + k);
    part[p] = sdz;
    part[p + 1] = sdzx;
}

/* Channel c's sums from its chunks, in chunk order, then grad_store. global (channels). */
__kernel void batchnorm_backward_combine(__global const float *restrict part, const int po, const int outer,
                                         const int channels, const int inner, const int chunk,
                                         __global const float *gamma, const int go,
                                         const int has_gamma, __global const float *invstd, const int io,
                                         __global float *dgamma, const int dgo, const int has_dgamma,
                                         __global float *dbeta, const int dbo, const int has_dbeta,
                                         __global float *coef)
{
    const int c = get_global_id(0), m = outer * inner, nchunk = (m + chunk - 1) / chunk;
    if (c >= channels) return;
    __global const float *p = part + po + 2 * (size_t)c * nchunk;
    float sdz = 0.0f, sdzx = 0.0f;
    for (int k = 0; k < nchunk; k++) {
        sdz += p[2 * k];
        sdzx += p[2 * k + 1];
    }
    grad_store(c, sdz, sdzx, m, gamma, go, has_gamma, invstd, io, dgamma, dgo, has_dgamma, dbeta, dbo, has_dbeta, coef);
}

/* batchnorm_backward_rows and _combine in one kernel for GPUs: a work-group per channel.
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
        grad_store(c, sdz, sdzx, m, gamma, go, has_gamma, invstd, io, dgamma, dgo, has_dgamma, dbeta, dbo, has_dbeta,
                   coef);
}

/* The arguments of both dx kernels: dx = a * dz - b * (x - mean) - d with channel c's
 * coefficients coef[3c..3c+2] (grad_store); dz = dy, or dy where y > 0 when relu. dx may
 * alias dy. */
#define DATA_ARGS                                                                                                   \
    __global const float *x, const int xo, __global const float *y, const int yo, __global const float *dy,        \
        const int dyo, __global float *dx, const int dxo, __global const float *mean, const int mo,                \
        __global const float *coef, const int outer, const int channels, const int inner, const int chunk,         \
        const int relu

/* A work-item per value (chunk is not used). global (outer * channels * inner). */
__kernel void batchnorm_backward_data(DATA_ARGS)
{
    const int e = get_global_id(0);
    if (e >= outer * channels * inner) return;
    const int c = (e / inner) % channels;
    const float g = !relu || (y + yo)[e] > 0.0f ? (dy + dyo)[e] : 0.0f;
    (dx + dxo)[e] = coef[3 * c] * g - coef[3 * c + 1] * ((x + xo)[e] - mean[mo + c]) - coef[3 * c + 2];
}

/* A work-item per (chunk, channel) for CPU devices. global (nchunk, channels), local (1, 1). */
__kernel void batchnorm_backward_data_rows(DATA_ARGS)
{
    const int k = get_global_id(0), c = get_global_id(1);
    int e0, e1;
    if (!chunk_range(k, c, channels, outer * inner, chunk, &e0, &e1)) return;
    const float a = coef[3 * c], b = coef[3 * c + 1], d = coef[3 * c + 2], mu = mean[mo + c];
    size_t at;
    for (int e = e0, len; e < e1; e += len) {
        len = piece(e, e1, inner, channels, c, &at);
        __global const float *xp = x + xo + at, *dyp = dy + dyo + at, *yp = y + yo + at;
        __global float *dxp = dx + dxo + at;
        if (relu)
            for (int i = 0; i < len; i++) dxp[i] = a * (yp[i] > 0.0f ? dyp[i] : 0.0f) - b * (xp[i] - mu) - d;
        else
            for (int i = 0; i < len; i++) dxp[i] = a * dyp[i] - b * (xp[i] - mu) - d;
    }
}
