/* Causal self-attention (GPT-2's): the softmax over the causal mask and its backward for the
 * materialised path, a fused forward with an online softmax (no t x t matrix), and the
 * key/value cache's append. Layouts in lib/ops/ops.h (op_attn_shape). */

/* One work-item per row (gid0 = row i, gid1 = plane): p[i][j] = exp((s_ij - max) * scale) / sum
 * over j <= i, 0 past the diagonal. Rows are walked in float8 pieces: the rows of a work-group
 * differ in length, so PoCL cannot vectorise across its work-items. p may alias s. */
__kernel void attention_softmax_forward(__global const float *s, const int so, __global float *p, const int po,
                                        const int t, const float scale)
{
    const int i = get_global_id(0);
    if (i >= t) return;
    const size_t row = ((size_t)get_global_id(1) * t + i) * t;
    __global const float *sr = s + so + row;
    __global float *pr = p + po + row;
    const int n = i + 1, n8 = n & ~7;
    float8 m8 = (float8)(-INFINITY);
    float m = -INFINITY;
    for (int j = 0; j < n8; j += 8) m8 = fmax(m8, vload8(0, sr + j));
    for (int j = n8; j < n; j++) m = fmax(m, sr[j]);
    float4 m4 = fmax(m8.lo, m8.hi);
    m = fmax(m, fmax(fmax(m4.x, m4.y), fmax(m4.z, m4.w)));
    float8 sum8 = 0.0f;
    float sum = 0.0f;
    for (int j = 0; j < n8; j += 8) {
        const float8 e = exp((vload8(0, sr + j) - m) * scale);
        vstore8(e, 0, pr + j);
        sum8 += e;
    }
    for (int j = n8; j < n; j++) {
        const float e = exp((sr[j] - m) * scale);
        pr[j] = e;
        sum += e;
    }
    const float4 s4 = sum8.lo + sum8.hi;
    const float inv = 1.0f / (sum + ((s4.x + s4.y) + (s4.z + s4.w)));
    for (int j = 0; j < n8; j += 8) vstore8(vload8(0, pr + j) * inv, 0, pr + j);
    for (int j = n8; j < n; j++) pr[j] *= inv;
    for (int j = n; j < t; j++) pr[j] = 0.0f;
}

/* ds[i][j] = scale * p_ij * (dp_ij - sum_k p_ik dp_ik) for j <= i, 0 past the diagonal; one
 * work-item per row as the forward. ds may alias dp. */
__kernel void attention_softmax_backward(__global const float *p, const int po, __global const float *dp,
                                         const int dpo, __global float *ds, const int dso, const int t,
                                         const float scale)
{
    const int i = get_global_id(0);
    if (i >= t) return;
    const size_t row = ((size_t)get_global_id(1) * t + i) * t;
    __global const float *pr = p + po + row, *dpr = dp + dpo + row;
    __global float *dsr = ds + dso + row;
    const int n = i + 1, n8 = n & ~7;
    float8 dot8 = 0.0f;
    float dot = 0.0f;
    for (int j = 0; j < n8; j += 8) dot8 = mad(vload8(0, pr + j), vload8(0, dpr + j), dot8);
    for (int j = n8; j < n; j++) dot = mad(pr[j], dpr[j], dot);
    const float4 d4 = dot8.lo + dot8.hi;
    dot += (d4.x + d4.y) + (d4.z + d4.w);
    for (int j = 0; j < n8; j += 8) {
        const float8 pj = vload8(0, pr + j);
        vstore8(pj * (vload8(0, dpr + j) - dot) * scale, 0, dsr + j);
    }
    for (int j = n8; j < n; j++) dsr[j] = pr[j] * (dpr[j] - dot) * scale;
    for (int j = n; j < t; j++) dsr[j] = 0.0f;
}

#ifndef HEAD_DIM
#define HEAD_DIM 64 /* set per layer by the launcher (-D HEAD_DIM=) */
#endif
/* Query rows of a work-item (the lanes of a float16; ONLINE_ROWS in attention.c) and keys per
 * tile. On PoCL (2-core AVX2, GPT-2 small's B=4, T=256, 12 heads of 64) in CPU time: 16 x 4
 * 7.3 ms, 8 x 8 (float8 lanes) 9.3 ms, 16 x 8 (scores spilled) and 8 x 4 slower still. */
#define ATT_QB 16
#define ATT_KB 4
#define ATT_REP(X) X(0) X(1) X(2) X(3)
/* Builtins take float16 in halves: on AVX2 a float16 argument of a call changes the ABI (clang
 * warns at every build); operators (a * b + c contracts to fma, ?: selects) need no call. */
#define ATT_EXP(x) ((float16)(exp((x).lo), exp((x).hi)))
#define ATT_ANY(c) (any((c).lo) || any((c).hi))

/* Flash attention's forward on a CPU's vector unit: a work-item takes ATT_QB query rows of one
 * head (gid0: the block of rows, gid1: head, gid2: sample), each row a lane of a vector, and
 * walks the keys it may see in tiles of ATT_KB: the tile's scores (ATT_KB vectors, written out
 * so that they stay in registers), the running maximum m and sum l updated once per tile,
 *   m' = max(m, max s), acc = acc * exp(m - m') + sum_j exp(s_j - m') v_j, l likewise,
 * and z = acc / l at the end. Query row i sits at position pos0 + i and sees keys 0 .. pos0 + i
 * (the causal mask); rows past nq repeat the last one and are not written. Key 0 is visible
 * to every row, so m is finite after the first tile. */
__kernel void attention_forward_online(const int nq, const int pos0, const float scale, __global const float *q,
                                       const int qo, const int ldq, const int sq, __global const float *k,
                                       const int ko, const int ldk, const int sk, __global const float *v,
                                       const int vo, const int ldv, const int sv, __global float *z, const int zo,
                                       const int ldz, const int sz)
{
    const int i0 = get_global_id(0) * ATT_QB, h = get_global_id(1), b = get_global_id(2);
    if (i0 >= nq) return;
    const int rows = min(ATT_QB, nq - i0), nk = pos0 + i0 + rows;
    __global const float *qp = q + qo + (size_t)b * sq + (size_t)i0 * ldq + h * HEAD_DIM;
    __global const float *kp = k + ko + (size_t)b * sk + h * HEAD_DIM;
    __global const float *vp = v + vo + (size_t)b * sv + h * HEAD_DIM;
    __global float *zp = z + zo + (size_t)b * sz + (size_t)i0 * ldz + h * HEAD_DIM;
    union {
        float16 v[HEAD_DIM];
        float f[HEAD_DIM * ATT_QB]; /* lane r of v[d] is f[d * ATT_QB + r] */
    } qt, acc;
    union {
        int16 v;
        int i[ATT_QB];
    } pos;
    for (int r = 0; r < ATT_QB; r++) {
        __global const float *qr = qp + (size_t)min(r, rows - 1) * ldq;
        for (int d = 0; d < HEAD_DIM; d++) qt.f[d * ATT_QB + r] = qr[d];
        pos.i[r] = pos0 + i0 + r;
    }
    for (int d = 0; d < HEAD_DIM; d++) acc.v[d] = 0.0f;
    float16 m = -INFINITY, l = 0.0f;
    for (int j0 = 0; j0 < nk; j0 += ATT_KB) {
        /* keys past nk repeat the last one, masked below */
#define ATT_ROWS(u)                                                                                   \
        __global const float *k##u = kp + min(j0 + u, nk - 1) * ldk, *v##u = vp + min(j0 + u, nk - 1) * ldv; \
        float16 s##u = 0.0f;
        ATT_REP(ATT_ROWS)
        for (int d = 0; d < HEAD_DIM; d++) {
            const float16 qd = qt.v[d];
#define ATT_DOT(u) s##u = qd * k##u[d] + s##u;
            ATT_REP(ATT_DOT)
        }
        float16 mt = m;
#define ATT_MASK(u)                                                                                   \
        s##u = (int16)(j0 + u) > pos.v ? (float16)(-INFINITY) : s##u * scale;                           \
        mt = s##u > mt ? s##u : mt;
        ATT_REP(ATT_MASK)
        if (ATT_ANY(mt > m)) { /* rescale only when a maximum grew: rarely after the first tiles */
            const float16 corr = ATT_EXP(m - mt);
            l *= corr;
            for (int d = 0; d < HEAD_DIM; d++) acc.v[d] *= corr;
            m = mt;
        }
#define ATT_P(u)                                                                                      \
        s##u = ATT_EXP(s##u - m);                                                                       \
        l += s##u;
        ATT_REP(ATT_P)
        for (int d = 0; d < HEAD_DIM; d++) {
            float16 a = acc.v[d];
#define ATT_PV(u) a = s##u * v##u[d] + a;
            ATT_REP(ATT_PV)
            acc.v[d] = a;
        }
    }
    const float16 inv = 1.0f / l;
    for (int d = 0; d < HEAD_DIM; d++) acc.v[d] *= inv;
    for (int r = 0; r < rows; r++)
        for (int d = 0; d < HEAD_DIM; d++) zp[(size_t)r * ldz + d] = acc.f[d * ATT_QB + r];
}

/* The online forward for a few query rows (a decoding step with a key/value cache), where
 * attention_forward_online would leave most of its lanes idle: a work-item per query row
 * (gid0 = row, gid1 = head, gid2 = sample), head_dim in float8 pieces (HEAD_DIM a multiple of
 * 8), the keys one at a time with the running maximum and sum. Arguments as
 * attention_forward_online's. */
#if HEAD_DIM % 8 == 0
__kernel void attention_decode(const int nq, const int pos0, const float scale, __global const float *q,
                               const int qo, const int ldq, const int sq, __global const float *k, const int ko,
                               const int ldk, const int sk, __global const float *v, const int vo, const int ldv,
                               const int sv, __global float *z, const int zo, const int ldz, const int sz)
{
    const int i = get_global_id(0), h = get_global_id(1), b = get_global_id(2);
    if (i >= nq) return;
    __global const float *qp = q + qo + (size_t)b * sq + (size_t)i * ldq + h * HEAD_DIM;
    __global const float *kp = k + ko + (size_t)b * sk + h * HEAD_DIM;
    __global const float *vp = v + vo + (size_t)b * sv + h * HEAD_DIM;
    __global float *zp = z + zo + (size_t)b * sz + (size_t)i * ldz + h * HEAD_DIM;
    float8 qv[HEAD_DIM / 8], acc[HEAD_DIM / 8];
    for (int c = 0; c < HEAD_DIM / 8; c++) {
        qv[c] = vload8(c, qp);
        acc[c] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    const int nk = pos0 + i + 1;
    for (int j = 0; j < nk; j++) {
        __global const float *kr = kp + (size_t)j * ldk, *vr = vp + (size_t)j * ldv;
        float8 d8 = qv[0] * vload8(0, kr);
        for (int c = 1; c < HEAD_DIM / 8; c++) d8 = mad(qv[c], vload8(c, kr), d8);
        const float4 d4 = d8.lo + d8.hi;
        const float s = ((d4.x + d4.y) + (d4.z + d4.w)) * scale;
        if (s > m) {
            const float corr = exp(m - s);
            l *= corr;
            for (int c = 0; c < HEAD_DIM / 8; c++) acc[c] *= corr;
            m = s;
        }
        const float p = exp(s - m);
        l += p;
        for (int c = 0; c < HEAD_DIM / 8; c++) acc[c] = mad((float8)p, vload8(c, vr), acc[c]);
    }
    const float inv = 1.0f / l;
    for (int c = 0; c < HEAD_DIM / 8; c++) vstore8(acc[c] * inv, c, zp);
}
#endif

/* The key/value cache's append: k_cache[b][pos + r][c] = qkv[b][r][width + c] and v_cache from
 * qkv[b][r][2 * width + c], for the n_new rows r of each sample (gid0 = c, gid1 = r, gid2 = b). */
__kernel void attention_kv_append(const int width, const int n_new, const int pos, const int cap,
                                  __global const float *qkv, const int qo, __global float *kc, const int kco,
                                  __global float *vc, const int vco)
{
    const int c = get_global_id(0), r = get_global_id(1), b = get_global_id(2);
    if (c >= width) return;
    const size_t src = qo + ((size_t)b * n_new + r) * 3 * width + width + c,
                 dst = ((size_t)b * cap + pos + r) * width + c;
    kc[kco + dst] = qkv[src];
    vc[vco + dst] = qkv[src + width];
}
