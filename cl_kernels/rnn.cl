/* One time step of PyTorch's LSTM and GRU cells, over `count` sequences of T positions.
 * Sequence tensors are position-major per sample: position t of sample b is row b*T + t.
 * A work-item per (hidden unit j, sample b): global (H, count). Gate blocks of a row follow
 * PyTorch's order: LSTM i, f, g, o; GRU r, z, n (G = 4 or 3 blocks of H).
 *
 * The matrix products around a step (x W_ih^T for every position at once, h_{t-1} W_hh^T,
 * and their transposes in the backward) are GEMMs run by lib/ops/rnn.c's callers; these
 * kernels do the element-wise rest, fused, and keep what the backward needs:
 * - gates: on entry the pre-activations without biases, on exit the activated gates; the
 *   backward overwrites them with the gradients of the pre-activations.
 * - hprev[row] = h_{t-1} (0 at t = 0), the operand of the next step's product and of dW_hh. */

inline float sigm(const float x) { return 1.0f / (1.0f + exp(-x)); }

/* tanh from one exp, a series near 0 where 1 - e^{-2|x|} would cancel: PoCL's tanh() made the
 * LSTM step 3-4x slower (0.8 against 0.2 ms for 32 x 256 units on the EPYC). Within a few
 * ulps of tanh: the series' next term is below 1e-9 relative for |x| < 1/16. */
inline float tanh_f(const float x)
{
    const float a = fabs(x), e = exp(-2.0f * a), x2 = x * x;
    const float r = a < 0.0625f ? a * (1.0f - x2 * (1.0f / 3.0f - x2 * (2.0f / 15.0f))) : (1.0f - e) / (1.0f + e);
    return copysign(r, x);
}

/* The bias of gate block k, unit j (b_ih + b_hh); 0 without biases. */
#define BIAS(k) (has_bias ? bi[bio + (k) * H + j] + bh[bho + (k) * H + j] : 0.0f)

/* LSTM forward, step t: gates[row] holds x W_ih^T + h_{t-1} W_hh^T (4H values);
 *   i = sig(.), f = sig(.), g = tanh(.), o = sig(.) (with b_ih + b_hh);
 *   c_t = f c_{t-1} + i g;  h_t = o tanh(c_t)
 * gates[row] = i, f, g, o;  c[row] = c_t;  y[row] = h_t;  hprev[row + 1] = h_t (t < T-1). */
__kernel void lstm_cell_forward(const int count, const int T, const int H, const int t,
                                __global float *gates, const int go, __global const float *bi, const int bio,
                                __global const float *bh, const int bho, const int has_bias,
                                __global float *c, const int co, __global float *y, const int yo,
                                __global float *hprev, const int hpo)
{
    const int j = get_global_id(0), b = get_global_id(1);
    if (j >= H || b >= count) return;
    const int row = b * T + t;
    __global float *g = gates + go + (size_t)row * 4 * H + j;
    const float ig = sigm(g[0] + BIAS(0)), fg = sigm(g[H] + BIAS(1)), gg = tanh_f(g[2 * H] + BIAS(2)),
                og = sigm(g[3 * H] + BIAS(3));
    const float cp = t > 0 ? c[co + (size_t)(row - 1) * H + j] : 0.0f;
    const float cn = fg * cp + ig * gg, h = og * tanh_f(cn);
    g[0] = ig;
    g[H] = fg;
    g[2 * H] = gg;
    g[3 * H] = og;
    c[co + (size_t)row * H + j] = cn;
    y[yo + (size_t)row * H + j] = h;
    if (t == 0) hprev[hpo + (size_t)row * H + j] = 0.0f;
    if (t + 1 < T) hprev[hpo + (size_t)(row + 1) * H + j] = h;
}

/* LSTM backward, step t (from T-1 down): dy[row] holds the whole dL/dh_t (the output's
 * gradient plus the next step's dG_{t+1} W_hh), dc[b] dL/dc_t through c_{t+1} (ignored at
 * t = T-1):
 *   dc = dc_next + dh o (1 - tanh^2 c_t);  do = dh tanh c_t;  di = dc g;  dg = dc i;
 *   df = dc c_{t-1};  dc[b] = dc f (for step t-1)
 * gates[row] = the pre-activation gradients di i (1-i), df f (1-f), dg (1-g^2), do o (1-o). */
__kernel void lstm_cell_backward(const int count, const int T, const int H, const int t,
                                 __global float *gates, const int go, __global const float *c, const int co,
                                 __global const float *dy, const int dyo, __global float *dc, const int dco)
{
    const int j = get_global_id(0), b = get_global_id(1);
    if (j >= H || b >= count) return;
    const int row = b * T + t;
    __global float *g = gates + go + (size_t)row * 4 * H + j;
    const float ig = g[0], fg = g[H], gg = g[2 * H], og = g[3 * H];
    const float cn = c[co + (size_t)row * H + j], cp = t > 0 ? c[co + (size_t)(row - 1) * H + j] : 0.0f;
    const float dh = dy[dyo + (size_t)row * H + j], tc = tanh_f(cn);
    const float dcv = dh * og * (1.0f - tc * tc) + (t + 1 < T ? dc[dco + b * H + j] : 0.0f);
    dc[dco + b * H + j] = dcv * fg;
    g[0] = dcv * gg * ig * (1.0f - ig);
    g[H] = dcv * cp * fg * (1.0f - fg);
    g[2 * H] = dcv * ig * (1.0f - gg * gg);
    g[3 * H] = dh * tc * og * (1.0f - og);
}

/* GRU forward, step t: xg[row] = x W_ih^T, hg[row] = h_{t-1} W_hh^T (3H each; hg is not
 * read at t = 0, where h_{-1} = 0);
 *   r = sig(xr + b_ir + hr + b_hr);  z = sig(xz + b_iz + hz + b_hz)
 *   n = tanh(xn + b_in + r (hn + b_hn));  h_t = (1 - z) n + z h_{t-1}
 * xg[row] = r, z, n;  hg[row][2H + j] = hn + b_hn;  y[row] = h_t;  hprev as the LSTM's. */
__kernel void gru_cell_forward(const int count, const int T, const int H, const int t,
                               __global float *xg, const int xgo, __global float *hg, const int hgo,
                               __global const float *bi, const int bio, __global const float *bh, const int bho,
                               const int has_bias, __global float *y, const int yo,
                               __global float *hprev, const int hpo)
{
    const int j = get_global_id(0), b = get_global_id(1);
    if (j >= H || b >= count) return;
    const int row = b * T + t;
    __global float *x = xg + xgo + (size_t)row * 3 * H + j, *h = hg + hgo + (size_t)row * 3 * H + j;
    const float bir = has_bias ? bi[bio + j] : 0.0f, biz = has_bias ? bi[bio + H + j] : 0.0f,
                bin = has_bias ? bi[bio + 2 * H + j] : 0.0f, bhr = has_bias ? bh[bho + j] : 0.0f,
                bhz = has_bias ? bh[bho + H + j] : 0.0f, bhn = has_bias ? bh[bho + 2 * H + j] : 0.0f;
    const float hr = t > 0 ? h[0] : 0.0f, hz = t > 0 ? h[H] : 0.0f, hn = (t > 0 ? h[2 * H] : 0.0f) + bhn;
    const float r = sigm(x[0] + bir + hr + bhr), z = sigm(x[H] + biz + hz + bhz);
    const float n = tanh_f(x[2 * H] + bin + r * hn);
    const float hp = t > 0 ? hprev[hpo + (size_t)row * H + j] : 0.0f, hn_t = (1.0f - z) * n + z * hp;
    x[0] = r;
    x[H] = z;
    x[2 * H] = n;
    h[2 * H] = hn;
    y[yo + (size_t)row * H + j] = hn_t;
    if (t == 0) hprev[hpo + (size_t)row * H + j] = 0.0f;
    if (t + 1 < T) hprev[hpo + (size_t)(row + 1) * H + j] = hn_t;
}

/* GRU backward, step t (from T-1 down): dy[row] holds the whole dL/dh_t;
 *   dn = dh (1 - z) (1 - n^2);  dz = dh (h_{t-1} - n) z (1 - z);  dr = dn (hn + b_hn) r (1 - r)
 * xg[row] = dr, dz, dn (the gradients of the input-side pre-activations);
 * hg[row] = dr, dz, dn r (those of the hidden-side ones, W_hh h + b_hh);
 * dy[row - 1] += dh z (t > 0: h_{t-1}'s direct path; the caller adds hg[row] W_hh). */
__kernel void gru_cell_backward(const int count, const int T, const int H, const int t,
                                __global float *xg, const int xgo, __global float *hg, const int hgo,
                                __global const float *hprev, const int hpo, __global float *dy, const int dyo)
{
    const int j = get_global_id(0), b = get_global_id(1);
    if (j >= H || b >= count) return;
    const int row = b * T + t;
    __global float *x = xg + xgo + (size_t)row * 3 * H + j, *h = hg + hgo + (size_t)row * 3 * H + j;
    const float r = x[0], z = x[H], n = x[2 * H], hn = h[2 * H];
    const float hp = hprev[hpo + (size_t)row * H + j], dh = dy[dyo + (size_t)row * H + j];
    const float dn = dh * (1.0f - z) * (1.0f - n * n), dz = dh * (hp - n) * z * (1.0f - z),
                dr = dn * hn * r * (1.0f - r);
    x[0] = dr;
    x[H] = dz;
    x[2 * H] = dn;
    h[0] = dr;
    h[H] = dz;
    h[2 * H] = dn * r;
    if (t > 0) dy[dyo + (size_t)(row - 1) * H + j] += dh * z;
}

/* The bias gradients: column sums of the gate gradients dg [rows][G], into db1 and, when
 * has2, db2 as well (the LSTM's b_ih and b_hh share theirs); acc: added to what is there.
 * A work-item per 16 columns (a cache line) walks every row with vector loads: a work-item
 * per column reads one float a row 4*G bytes apart, a cache miss each (bias_grad with
 * inner = 1: 94 ms for 4096 x 1024 on PoCL). */
__kernel void rnn_bias_grad(const int rows, const int G, __global const float *dg, const int dgo,
                            __global float *db1, const int db1o, const int acc1,
                            __global float *db2, const int db2o, const int acc2, const int has2)
{
    const int j0 = get_global_id(0) * 16;
    if (j0 >= G) return;
    __global const float *p = dg + dgo + j0;
    if (j0 + 16 <= G) { /* two float8: float16 changes the x86 call ABI without AVX-512, and PoCL warns */
        float8 a0 = 0.0f, b0 = 0.0f, a1 = 0.0f, b1 = 0.0f;
        int r = 0;
        for (; r + 2 <= rows; r += 2) {
            __global const float *q = p + (size_t)r * G;
            a0 += vload8(0, q);
            b0 += vload8(1, q);
            a1 += vload8(0, q + G);
            b1 += vload8(1, q + G);
        }
        if (r < rows) {
            a0 += vload8(0, p + (size_t)r * G);
            b0 += vload8(1, p + (size_t)r * G);
        }
        const float8 sa = a0 + a1, sb = b0 + b1;
        __global float *d1 = db1 + db1o + j0, *d2 = db2 + db2o + j0;
        vstore8(acc1 ? vload8(0, d1) + sa : sa, 0, d1);
        vstore8(acc1 ? vload8(1, d1) + sb : sb, 1, d1);
        if (has2) {
            vstore8(acc2 ? vload8(0, d2) + sa : sa, 0, d2);
            vstore8(acc2 ? vload8(1, d2) + sb : sb, 1, d2);
        }
        return;
    }
    for (int j = j0; j < G; j++) {
        float s = 0.0f;
        for (int r = 0; r < rows; r++) s += dg[dgo + (size_t)r * G + j];
        db1[db1o + j] = acc1 ? db1[db1o + j] + s : s;
        if (has2) db2[db2o + j] = acc2 ? db2[db2o + j] + s : s;
    }
}
