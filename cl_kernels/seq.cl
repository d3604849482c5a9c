/* Sequence layers: token embedding (gather, and a scatter-add without atomics), learned
 * position embedding, layer normalisation. A batch of sequences is rows of dim floats,
 * row r = b*t + i (position-major), contiguous.
 *
 * Launch shapes (lib/ops/seq.c picks them per device):
 * - CPU devices: a work-item per block of rows, local size 1, plain loops along a row that
 *   LLVM vectorises; `nw` (work-items across a row) is 1.
 * - GPUs: work-items across a row (adjacent d, coalesced), column d = i, i + nw, ...; row
 *   blocks of one row; layer norm's row statistics by a work-group per row.
 * Reductions are in a fixed order, so every run gives the same bits. */

/* ------------------------------------------------------------------ row helpers */

inline float hsum8(const float8 a)
{
    const float4 h = a.lo + a.hi;
    return (h.x + h.y) + (h.z + h.w);
}

/* sum of p[i] - shift, i < n, in 16 lanes: LLVM may not reorder a float sum by itself, so the
 * lanes are written out (float8: AVX2's width; wider vectors change PoCL's call ABI). */
inline float row_sum(__global const float *p, const int n, const float shift)
{
    float8 a0 = 0.0f, a1 = 0.0f;
    float t = 0.0f;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 += vload8(0, p + i) - shift;
        a1 += vload8(1, p + i) - shift;
    }
    for (; i + 8 <= n; i += 8) a0 += vload8(0, p + i) - shift;
    for (; i < n; i++) t += p[i] - shift;
    return hsum8(a0 + a1) + t;
}

/* sum of (p[i] - mean)^2, i < n, in 16 lanes */
inline float row_sqdev(__global const float *p, const int n, const float mean)
{
    float8 a0 = 0.0f, a1 = 0.0f;
    float t = 0.0f;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const float8 d0 = vload8(0, p + i) - mean, d1 = vload8(1, p + i) - mean;
        a0 += d0 * d0;
        a1 += d1 * d1;
    }
    for (; i + 8 <= n; i += 8) {
        const float8 d = vload8(0, p + i) - mean;
        a0 += d * d;
    }
    for (; i < n; i++) {
        const float d = p[i] - mean;
        t += d * d;
    }
    return hsum8(a0 + a1) + t;
}

/* Layer norm backward's row sums: *sg = sum of g, *sgx = sum of g * xhat, where
 * g = dy * gamma (gamma NULL: 1) and xhat = (x - mean) * rstd; 8 lanes each. */
inline void row_grad_sums(__global const float *x, __global const float *dy, __global const float *gamma,
                          const int n, const float mean, const float rstd, float *sg, float *sgx)
{
    float8 a = 0.0f, b = 0.0f;
    float ta = 0.0f, tb = 0.0f;
    int i = 0;
    if (gamma)
        for (; i + 8 <= n; i += 8) {
            const float8 g = vload8(0, dy + i) * vload8(0, gamma + i);
            a += g;
            b += g * ((vload8(0, x + i) - mean) * rstd);
        }
    else
        for (; i + 8 <= n; i += 8) {
            const float8 g = vload8(0, dy + i);
            a += g;
            b += g * ((vload8(0, x + i) - mean) * rstd);
        }
    for (; i < n; i++) {
        const float g = dy[i] * (gamma ? gamma[i] : 1.0f);
        ta += g;
        tb += g * ((x[i] - mean) * rstd);
    }
    *sg = hsum8(a) + ta;
    *sgx = hsum8(b) + tb;
}

/* The sum of v over the work-group by a tree in local memory (local size a power of two). */
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

/* A work-group's loop over a row, work-item lid taking d = lid, lid + wg, ... < n. Written as
 * whole strides with a bound inside: PoCL 3.1 (Debian 12) compiled the plain form
 * `for (d = lid; d < n; d += wg)` after two barriers into stores past n from the work-items
 * with lid >= n (layernorm_backward_wg, dim 13 in groups of 16, caught by the tests' guards). */
#define FOR_GROUP_STRIDE(d, lid, wg, n) for (int d##0_ = 0; d##0_ < (n); d##0_ += (wg)) \
    for (int d = d##0_ + (lid); d < min(d##0_ + (wg), (n)); d += (wg))

/* Work-item (i, blk)'s rows [*r0, *r1) of rb rows a block; false past the last. */
inline bool row_block(const int rows, const int rb, int *r0, int *r1)
{
    *r0 = get_global_id(1) * rb;
    *r1 = min(*r0 + rb, rows);
    return *r0 < rows;
}

/* ------------------------------------------------------------------ token embedding */

/* y[r][:] = w[tok[r]][:] (zeros for an id outside [0, vocab)). global (nw, ceil(rows / rb)). */
__kernel void embedding_forward(__global const int *tok, const int to, __global const float *restrict w, const int wo,
                                __global float *restrict y, const int yo, const int rows, const int vocab,
                                const int dim, const int rb, const int nw)
{
    int r0, r1;
    const int i = get_global_id(0);
    if (i >= nw || !row_block(rows, rb, &r0, &r1)) return;
    for (int r = r0; r < r1; r++) {
        const int v = tok[to + r];
        const bool ok = v >= 0 && v < vocab;
        __global const float *src = w + wo + (size_t)(ok ? v : 0) * dim;
        __global float *dst = y + yo + (size_t)r * dim;
        if (nw == 1) {
            if (ok)
                for (int d = 0; d < dim; d++) dst[d] = src[d];
            else
                for (int d = 0; d < dim; d++) dst[d] = 0.0f;
        } else {
            for (int d = i; d < dim; d += nw) dst[d] = ok ? src[d] : 0.0f;
        }
    }
}

/* dw[v][:] (+)= sum over r with tok[r] == v of dy[r][:], r in order. Work-group g owns the
 * vocabulary rows [g*vc, (g+1)*vc): it zeroes them (unless accumulate), then scans every
 * token and adds the rows of its own ids, its work-items across d. No two groups write the
 * same row, so a repeated token needs no atomics, and the order of the sums is fixed.
 * CPU: local size 1, a work-item per chunk; GPU: a work-group per chunk of a few rows.
 * global (local * ceil(vocab / vc)). */
__kernel void embedding_backward(__global const int *tok, const int to, __global const float *restrict dy,
                                 const int dyo, __global float *restrict dw, const int dwo, const int rows,
                                 const int vocab, const int dim, const int vc, const int accumulate)
{
    const int v0 = get_group_id(0) * vc, v1 = min(v0 + vc, vocab), lid = get_local_id(0), nw = get_local_size(0);
    if (v0 >= vocab) return;
    __global float *w = dw + dwo;
    if (!accumulate) {
        if (nw == 1)
            for (size_t e = (size_t)v0 * dim, end = (size_t)v1 * dim; e < end; e++) w[e] = 0.0f;
        else
            for (int v = v0; v < v1; v++)
                for (int d = lid; d < dim; d += nw) w[(size_t)v * dim + d] = 0.0f;
    }
    for (int r = 0; r < rows; r++) {
        const int v = tok[to + r];
        if (v < v0 || v >= v1) continue;
        __global float *dst = w + (size_t)v * dim;
        __global const float *src = dy + dyo + (size_t)r * dim;
        if (nw == 1)
            for (int d = 0; d < dim; d++) dst[d] += src[d];
        else
            for (int d = lid; d < dim; d += nw) dst[d] += src[d];
    }
}

/* ------------------------------------------------------------------ position embedding */

/* y[r][:] = x[r][:] + w[r % t][:]; y may alias x. global (nw, ceil(rows / rb)). */
__kernel void position_embedding_forward(__global const float *x, const int xo, __global const float *restrict w,
                                         const int wo, __global float *y, const int yo, const int rows, const int t,
                                         const int dim, const int rb, const int nw)
{
    int r0, r1;
    const int i = get_global_id(0);
    if (i >= nw || !row_block(rows, rb, &r0, &r1)) return;
    for (int r = r0; r < r1; r++) {
        __global const float *xr = x + xo + (size_t)r * dim, *wr = w + wo + (size_t)(r % t) * dim;
        __global float *yr = y + yo + (size_t)r * dim;
        if (nw == 1)
            for (int d = 0; d < dim; d++) yr[d] = xr[d] + wr[d];
        else
            for (int d = i; d < dim; d += nw) yr[d] = xr[d] + wr[d];
    }
}

/* Position p < context: dw[p][:] (+)= sum over b of dy[b*t + p][:] for p < t (b in order),
 * and dx = dy on those rows when has_dx (dx may alias dy); rows p >= t of dw zeroed unless
 * accumulate. global (nw, context). */
__kernel void position_embedding_backward(__global const float *dy, const int dyo, __global float *dx, const int dxo,
                                          const int has_dx, __global float *restrict dw, const int dwo,
                                          const int count, const int t, const int context, const int dim,
                                          const int nw, const int accumulate)
{
    const int i = get_global_id(0), p = get_global_id(1);
    if (i >= nw || p >= context) return;
    __global float *wr = dw + dwo + (size_t)p * dim;
    if (p >= t) {
        if (!accumulate)
            for (int d = i; d < dim; d += nw) wr[d] = 0.0f;
        return;
    }
    if (nw == 1) { /* the row of dw is the accumulator (in cache); the loops along d vectorise */
        if (!accumulate)
            for (int d = 0; d < dim; d++) wr[d] = 0.0f;
        for (int b = 0; b < count; b++) {
            const size_t at = ((size_t)b * t + p) * dim;
            __global const float *g = dy + dyo + at;
            for (int d = 0; d < dim; d++) wr[d] += g[d];
            if (has_dx) {
                __global float *o = dx + dxo + at;
                for (int d = 0; d < dim; d++) o[d] = g[d];
            }
        }
        return;
    }
    for (int d = i; d < dim; d += nw) {
        float s = accumulate ? wr[d] : 0.0f;
        for (int b = 0; b < count; b++) {
            const size_t at = ((size_t)b * t + p) * dim + d;
            const float g = dy[dyo + at];
            s += g;
            if (has_dx) dx[dxo + at] = g;
        }
        wr[d] = s;
    }
}

/* ------------------------------------------------------------------ layer normalisation */

/* One row's statistics and output: mean from the sum of x - x[0] (a float sum of x itself
 * loses the mean's low digits when it is large beside the spread), then the squared
 * deviations from it; rstd = 1 / sqrt(var + eps), var biased; y = (x - mean) rstd gamma + beta. */
inline void ln_row(__global const float *xr, __global float *yr, const int dim, __global const float *gamma,
                   __global const float *beta, const float eps, float *mean, float *rstd)
{
    const float mu = xr[0] + row_sum(xr, dim, xr[0]) / (float)dim;
    const float rs = rsqrt(row_sqdev(xr, dim, mu) / (float)dim + eps);
    if (gamma)
        for (int d = 0; d < dim; d++) yr[d] = (xr[d] - mu) * rs * gamma[d] + beta[d];
    else
        for (int d = 0; d < dim; d++) yr[d] = (xr[d] - mu) * rs;
    *mean = mu;
    *rstd = rs;
}

/* A work-item per block of rb rows (CPU devices); mean and rstd saved when save.
 * global (1, ceil(rows / rb)), local (1, 1). y may alias x. */
__kernel void layernorm_forward_rows(__global const float *x, const int xo, __global float *y, const int yo,
                                     const int rows, const int dim, const int rb, __global const float *gamma,
                                     const int go, __global const float *beta, const int bo, const int affine,
                                     const float eps, __global float *mean, const int mo, __global float *rstd,
                                     const int ro, const int save)
{
    int r0, r1;
    if (!row_block(rows, rb, &r0, &r1)) return;
    for (int r = r0; r < r1; r++) {
        float mu, rs;
        ln_row(x + xo + (size_t)r * dim, y + yo + (size_t)r * dim, dim, affine ? gamma + go : 0,
               affine ? beta + bo : 0, eps, &mu, &rs);
        if (save) {
            mean[mo + r] = mu;
            rstd[ro + r] = rs;
        }
    }
}

/* A work-group per row (GPUs), the sums by group_sum. global (local * rows), local a power
 * of two. */
__kernel void layernorm_forward_wg(__global const float *x, const int xo, __global float *y, const int yo,
                                   const int rows, const int dim, __global const float *gamma, const int go,
                                   __global const float *beta, const int bo, const int affine, const float eps,
                                   __global float *mean, const int mo, __global float *rstd, const int ro,
                                   const int save, __local float *red)
{
    const int r = get_group_id(0), lid = get_local_id(0), wg = get_local_size(0);
    if (r >= rows) return;
    __global const float *xr = x + xo + (size_t)r * dim;
    __global float *yr = y + yo + (size_t)r * dim;
    const float shift = xr[0];
    float s = 0.0f;
    FOR_GROUP_STRIDE(d, lid, wg, dim) s += xr[d] - shift;
    const float mu = shift + group_sum(red, s) / (float)dim;
    float q = 0.0f;
    FOR_GROUP_STRIDE(d, lid, wg, dim) q += (xr[d] - mu) * (xr[d] - mu);
    const float rs = rsqrt(group_sum(red, q) / (float)dim + eps);
    FOR_GROUP_STRIDE(d, lid, wg, dim)
        yr[d] = affine ? (xr[d] - mu) * rs * gamma[go + d] + beta[bo + d] : (xr[d] - mu) * rs;
    if (save && lid == 0) {
        mean[mo + r] = mu;
        rstd[ro + r] = rs;
    }
}

/* dx of one row, as torch.nn.LayerNorm: g = dy gamma, xhat = (x - mean) rstd,
 * dx = rstd (g - mean(g) - xhat mean(g xhat)). dx may alias dy. */
inline void ln_row_dx(__global const float *xr, __global const float *dyr, __global float *dxr,
                      __global const float *gamma, const int dim, const float mu, const float rs)
{
    float sg, sgx;
    row_grad_sums(xr, dyr, gamma, dim, mu, rs, &sg, &sgx);
    const float a = sg / (float)dim, b = sgx / (float)dim;
    if (gamma)
        for (int d = 0; d < dim; d++) dxr[d] = rs * (dyr[d] * gamma[d] - a - (xr[d] - mu) * rs * b);
    else
        for (int d = 0; d < dim; d++) dxr[d] = rs * (dyr[d] - a - (xr[d] - mu) * rs * b);
}

/* A work-item per block of rb rows (CPU devices): dx when has_dx, and when has_part the
 * block's sums part[blk][d] = sum of dy xhat, part[blk][dim + d] = sum of dy over its rows
 * (for dgamma and dbeta, added over blocks by layernorm_param_grad_combine). dx may alias
 * dy: a row's dy is read for every sum before its dx is written. global (1, ceil(rows / rb)),
 * local (1, 1). */
__kernel void layernorm_backward_rows(__global const float *x, const int xo, __global const float *dy, const int dyo,
                                      __global float *dx, const int dxo, const int has_dx, const int rows,
                                      const int dim, const int rb, __global const float *gamma, const int go,
                                      const int affine, __global const float *mean, const int mo,
                                      __global const float *rstd, const int ro, __global float *restrict part,
                                      const int has_part)
{
    int r0, r1;
    if (!row_block(rows, rb, &r0, &r1)) return;
    __global float *pg = part + (size_t)get_global_id(1) * 2 * dim, *pb = pg + dim;
    if (has_part)
        for (int d = 0; d < 2 * dim; d++) pg[d] = 0.0f;
    for (int r = r0; r < r1; r++) {
        const size_t at = (size_t)r * dim;
        __global const float *xr = x + xo + at, *dyr = dy + dyo + at;
        const float mu = mean[mo + r], rs = rstd[ro + r];
        if (has_part)
            for (int d = 0; d < dim; d++) {
                pg[d] += dyr[d] * ((xr[d] - mu) * rs);
                pb[d] += dyr[d];
            }
        if (has_dx) ln_row_dx(xr, dyr, dx + dxo + at, affine ? gamma + go : 0, dim, mu, rs);
    }
}

/* dx by a work-group per row (GPUs). global (local * rows), local a power of two. */
__kernel void layernorm_backward_wg(__global const float *x, const int xo, __global const float *dy, const int dyo,
                                    __global float *dx, const int dxo, const int rows, const int dim,
                                    __global const float *gamma, const int go, const int affine,
                                    __global const float *mean, const int mo, __global const float *rstd, const int ro,
                                    __local float *red)
{
    const int r = get_group_id(0), lid = get_local_id(0), wg = get_local_size(0);
    if (r >= rows) return;
    const size_t at = (size_t)r * dim;
    __global const float *xr = x + xo + at, *dyr = dy + dyo + at;
    __global float *dxr = dx + dxo + at;
    const float mu = mean[mo + r], rs = rstd[ro + r];
    float a = 0.0f, b = 0.0f;
    FOR_GROUP_STRIDE(d, lid, wg, dim) {
        const float g = dyr[d] * (affine ? gamma[go + d] : 1.0f);
        a += g;
        b += g * ((xr[d] - mu) * rs);
    }
    const float ma = group_sum(red, a) / (float)dim, mb = group_sum(red, b) / (float)dim;
    FOR_GROUP_STRIDE(d, lid, wg, dim) { /* dy[d] is read before dx[d] is written, by the same work-item */
        const float g = dyr[d] * (affine ? gamma[go + d] : 1.0f);
        dxr[d] = rs * (g - ma - (xr[d] - mu) * rs * mb);
    }
}

/* The block sums of layernorm_backward_rows by columns (GPUs): work-item (d, blk) over the
 * rb rows of its block. global (dim, ceil(rows / rb)). */
__kernel void layernorm_param_grad_cols(__global const float *x, const int xo, __global const float *dy,
                                        const int dyo, const int rows, const int dim, const int rb,
                                        __global const float *mean, const int mo, __global const float *rstd,
                                        const int ro, __global float *part)
{
    int r0, r1;
    const int d = get_global_id(0);
    if (d >= dim || !row_block(rows, rb, &r0, &r1)) return;
    float sg = 0.0f, sb = 0.0f;
    for (int r = r0; r < r1; r++) {
        const size_t at = (size_t)r * dim + d;
        const float g = dy[dyo + at];
        sg += g * ((x[xo + at] - mean[mo + r]) * rstd[ro + r]);
        sb += g;
    }
    __global float *p = part + (size_t)get_global_id(1) * 2 * dim;
    p[d] = sg;
    p[dim + d] = sb;
}

/* dgamma[d] (+)= sum over blocks k of part[k][d], dbeta[d] (+)= of part[k][dim + d], k in
 * order; each skipped when its has_ flag is 0. global (dim). */
__kernel void layernorm_param_grad_combine(__global const float *part, const int nk, const int dim,
                                           __global float *dgamma, const int dgo, const int has_dg, const int acc_g,
                                           __global float *dbeta, const int dbo, const int has_db, const int acc_b)
{
    const int d = get_global_id(0);
    if (d >= dim) return;
    float sg = 0.0f, sb = 0.0f;
    for (int k = 0; k < nk; k++) {
        sg += part[(size_t)k * 2 * dim + d];
        sb += part[(size_t)k * 2 * dim + dim + d];
    }
    if (has_dg) dgamma[dgo + d] = acc_g ? dgamma[dgo + d] + sg : sg;
    if (has_db) dbeta[dbo + d] = acc_b ? dbeta[dbo + d] + sb : sb;
}
