/* Convolution kernels: im2col / col2im around GEMM, the layout changes between NCHW and
 * the GEMM's [k][images*p*q], and a direct forward kernel.
 *
 * Layouts: x [n][c][h][w], w [k][c/groups][r][s] (OIHW), y [n][k][p][q].
 * col: rows ordered (channel, kernel row, kernel column); image b's p*q entries of row
 * `row` start at b*img_stride + row*row_ld. conv.c uses img_stride = p*q and
 * row_ld >= nb*p*q: [c*r*s][nb*p*q], so one GEMM spans all nb images (conv.c pads row_ld
 * so that rows do not share cache sets).
 *
 * Half storage (storage.clh): the forward kernels read x as X_T, the filters as W_T and
 * write y as Y_T (im2col, conv2d_direct, dw_forward, kn_to_nchw, bias_act); the columns,
 * the GEMM's [k][nb*p*q] result, the bias and every sum stay float. */

/* fma() where the device has it in hardware (-DDLCL_FMA, lib/runtime/context.c) */
#ifdef DLCL_FMA
#define MADD(a, b, c) fma(a, b, c)
#else
#define MADD(a, b, c) mad(a, b, c)
#endif

/* col entries for nb images starting at x; global (c*r*s, nb). A work-item fills one row of
 * one image, p*q entries, row by row of the output: the output columns whose input column
 * is inside the image, [lo, hi), are a plain copy (contiguous for stride 1) between
 * zero-filled edges, loops that LLVM vectorises inside the work-item. (PoCL does not
 * vectorise across work-items whose body has loops; a work-item per output column with a
 * bounds test per element ran scalar at 2-5 GB/s.) A "same" convolution (stride 1, output
 * as large as the input) copies the whole plane at once instead, which helps short rows:
 * LeNet's 14-wide layers 4.8-5.3 -> 3.8-4.4 ms per launch, VGG's unchanged (DLCL_PROFILE=1
 * dlcl-bench, three alternating runs on the EPYC). */
__kernel void im2col(__global const X_T *restrict x, const int xo, __global float *restrict col,
                     const int img_stride, const int row_ld, const int c, const int h, const int w, const int r,
                     const int s, const int p, const int q, const int stride_h, const int stride_w,
                     const int pad_h, const int pad_w, const int dil_h, const int dil_w)
{
    const int row = get_global_id(0), b = get_global_id(1);
    if (row >= c * r * s) return;
    const int kw = row % s, kh = (row / s) % r, ci = row / (r * s);
    __global const X_T *xp = x + xo + ((size_t)b * c + ci) * h * w;
    __global float *out = col + (size_t)b * img_stride + (size_t)row * row_ld;
    if (stride_h == 1 && stride_w == 1 && dil_h == 1 && dil_w == 1 && p == h && q == w) {
        /* a "same" convolution: the row is the input plane shifted by (dh, dw), one long
         * copy, then zeros where the shift leaves the plane (whole rows, then the columns
         * that wrapped around) */
        const int dh = kh - pad_h, dw = kw - pad_w, shift = dh * w + dw, pq = p * q;
        const int r0 = max(0, -dh), r1 = min(p, h - dh); /* output rows inside the input */
        const int c0 = max(r0 * q, -shift), c1 = max(c0, min(r1 * q, h * w - shift));
        for (int i = 0; i < c0; i++) out[i] = 0.0f;
        for (int i = c0; i < c1; i++) out[i] = LDX(i + shift, xp);
        for (int i = c1; i < pq; i++) out[i] = 0.0f;
        const int lo = min(max(0, -dw), q), hi = max(lo, min(q, w - dw)); /* columns inside */
        for (int oh = r0; oh < r1; oh++) {
            for (int ow = 0; ow < lo; ow++) out[oh * q + ow] = 0.0f;
            for (int ow = hi; ow < q; ow++) out[oh * q + ow] = 0.0f;
        }
        return;
    }
    const int off = kw * dil_w - pad_w; /* input column of output column ow: ow * stride_w + off */
    int lo = off >= 0 ? 0 : (-off + stride_w - 1) / stride_w;
    int hi = w - 1 - off < 0 ? 0 : (w - 1 - off) / stride_w + 1;
    lo = min(lo, q);
    hi = max(lo, min(hi, q));
    for (int oh = 0; oh < p; oh++, out += q) {
        const int ih = oh * stride_h - pad_h + kh * dil_h;
        if (ih < 0 || ih >= h) {
            for (int ow = 0; ow < q; ow++) out[ow] = 0.0f;
            continue;
        }
        __global const X_T *xr = xp + ih * w + off;
        for (int ow = 0; ow < lo; ow++) out[ow] = 0.0f;
        /* a stride LLVM knows vectorises (interleaved loads); one read from an argument runs
         * scalar: ResNet's 7x7/2 stem, 147 rows of 112 x 112 per image, 2.9 -> 1.1 ms */
        if (stride_w == 1)
            for (int ow = lo; ow < hi; ow++) out[ow] = LDX(ow, xr);
        else if (stride_w == 2)
            for (int ow = lo; ow < hi; ow++) out[ow] = LDX(ow * 2, xr);
        else
            for (int ow = lo; ow < hi; ow++) out[ow] = LDX(ow * stride_w, xr);
        for (int ow = hi; ow < q; ow++) out[ow] = 0.0f;
    }
}

/* Activations fused into the direct kernels and the relayouts; `act` follows lib/ops/ops.h op_act: 0 linear,
 * 1 relu, 2 sigmoid, 3 tanh, 4 gelu, 5 leaky, 6 gelu_tanh. It is a kernel argument, the same for every
 * work-item, so the branch does not diverge. */
inline float act_fwd(const int act, const float slope, const float v)
{
    if (act == 1) return select(v, 0.0f, v < 0.0f); /* NaN stays NaN, as in PyTorch */
    if (act == 2) return 1.0f / (1.0f + exp(-v));
    if (act == 3) return tanh(v);
    if (act == 4) return 0.5f * v * (1.0f + erf(v * 0.70710678118654752f));
    if (act == 5) return select(slope * v, v, v > 0.0f);
    if (act == 6) return v / (1.0f + exp(-1.5957691216057308f * (v + 0.044715f * v * v * v)));
    return v;
}

/* Direct forward convolution for small c/groups*r*s (e.g. a first layer with one input
 * channel), where im2col + GEMM spends more on memory than on arithmetic. One work-item
 * per output element; global (p*q, k, n). bias may be unused (has_bias 0); activation as
 * act_fwd, applied before the store (a half y holds the activation's output only). */
__kernel void conv2d_direct(__global const X_T *x, const int xo, __global const W_T *wt, const int wo,
                            __global const float *bias, const int bo, const int has_bias,
                            __global Y_T *y, const int yo,
                            const int c, const int h, const int w, const int k, const int r, const int s,
                            const int p, const int q, const int stride_h, const int stride_w,
                            const int pad_h, const int pad_w, const int dil_h, const int dil_w, const int groups,
                            const int act, const float slope)
{
    const int pix = get_global_id(0), ko = get_global_id(1), b = get_global_id(2);
    if (pix >= p * q || ko >= k) return;
    const int oh = pix / q, ow = pix % q;
    const int cg = c / groups, g = ko / (k / groups);
    float sum = has_bias ? bias[bo + ko] : 0.0f;
    for (int ci = 0; ci < cg; ci++) {
        __global const X_T *xc = x + xo + ((size_t)b * c + g * cg + ci) * h * w;
        __global const W_T *wc = wt + wo + ((size_t)ko * cg + ci) * r * s;
        /* a tap in the padding multiplies a zero, as im2col's columns do: the same sums (and
         * the same NaN from 0 * Inf) whichever algorithm runs */
        for (int kh = 0; kh < r; kh++) {
            const int ih = oh * stride_h - pad_h + kh * dil_h;
            const bool row_in = ih >= 0 && ih < h;
            for (int kw = 0; kw < s; kw++) {
                const int iw = ow * stride_w - pad_w + kw * dil_w;
                const bool in = row_in && iw >= 0 && iw < w;
                const float xv = LDX(in ? ih * w + iw : 0, xc);
                sum = mad(in ? xv : 0.0f, LDW(kh * s + kw, wc), sum);
            }
        }
    }
    STY(act_fwd(act, slope, sum), (size_t)yo + ((size_t)b * k + ko) * p * q + pix, y);
}

/* The gradient through the activation from its output y (the gelus have no such form and is not
 * fused backward; relu and leaky use y > 0, which holds exactly when the input was > 0). */
inline float act_bwd_from_y(const int act, const float slope, const float g, const float y)
{
    if (act == 1) return select(0.0f, g, y > 0.0f);
    if (act == 2) return g * y * (1.0f - y);
    if (act == 3) return g * (1.0f - y * y);
    if (act == 5) return select(slope * g, g, y > 0.0f);
    return g;
}

/* y[b][ko][:] = act(t[ko*ld + b*pq + :] (+ bias[ko])): the GEMM's [k][nb*p*q] result (rows
 * ld apart) into NCHW; global (k, nb). A work-item copies one image's plane, contiguous on
 * both sides, in loops LLVM vectorises (the activation is chosen outside them). */
__kernel void kn_to_nchw(__global const float *restrict t, const int to, __global Y_T *restrict y, const int yo,
                         __global const float *bias, const int bo, const int has_bias, const int k, const int pq,
                         const int ld, const int act, const float slope)
{
    const int ko = get_global_id(0), b = get_global_id(1);
    if (ko >= k) return;
    const float add = has_bias ? bias[bo + ko] : 0.0f;
    __global const float *src = t + to + (size_t)ko * ld + (size_t)b * pq;
    __global Y_T *dst = y + yo + ((size_t)b * k + ko) * pq;
    if (act == 0)
        for (int i = 0; i < pq; i++) STY(src[i] + add, i, dst);
    else if (act == 1)
        for (int i = 0; i < pq; i++) STY(select(src[i] + add, 0.0f, src[i] + add < 0.0f), i, dst);
    else
        for (int i = 0; i < pq; i++) STY(act_fwd(act, slope, src[i] + add), i, dst);
}

/* t[ko*ld + b*pq + :] = dy[b][ko][:] * act'(y[b][ko][:]): NCHW gradients into the GEMM's
 * [k][nb*p*q] (rows ld apart), through the fused activation (act 0: y is not read); global
 * (k, nb), a plane per work-item as in kn_to_nchw. */
__kernel void nchw_to_kn(__global const float *dy, const int dyo, __global const float *y, const int yo,
                         __global float *restrict t, const int to, const int k, const int pq, const int ld,
                         const int act, const float slope)
{
    const int ko = get_global_id(0), b = get_global_id(1);
    if (ko >= k) return;
    const size_t plane = ((size_t)b * k + ko) * pq;
    __global const float *g = dy + dyo + plane, *yp = y + yo + plane;
    __global float *dst = t + to + (size_t)ko * ld + (size_t)b * pq;
    if (act == 0)
        for (int i = 0; i < pq; i++) dst[i] = g[i];
    else if (act == 1)
        for (int i = 0; i < pq; i++) dst[i] = select(0.0f, g[i], yp[i] > 0.0f);
    else
        for (int i = 0; i < pq; i++) dst[i] = act_bwd_from_y(act, slope, g[i], yp[i]);
}

/* Depthwise convolution (groups == c, m = k/c outputs per input channel: output channel o
 * reads input channel o/m), as row loops that LLVM vectorises along the row (PoCL does not
 * vectorise across work-items whose body loops). The grouped GEMMs they replace ran one
 * launch per channel per chunk on 1 x (r*s) x (r*s) products. Taps in the padding multiply
 * zeros, as im2col's columns do, so every path gives the same sums and the same NaN. */

/* y row oh of channel o, image b (x, y NCHW); bias optional; activation as kn_to_nchw.
 * global (p, k, n) */
__kernel void dw_forward(__global const X_T *restrict x, const int xo, __global const W_T *restrict wt,
                         const int wo, __global const float *bias, const int bo, const int has_bias,
                         __global Y_T *restrict y, const int yo, const int c, const int h, const int w,
                         const int k, const int r, const int s, const int p, const int q, const int stride_h,
                         const int stride_w, const int pad_h, const int pad_w, const int dil_h, const int dil_w,
                         const int act, const float slope)
{
    const int oh = get_global_id(0), o = get_global_id(1), b = get_global_id(2);
    if (oh >= p || o >= k) return;
    const int m = k / c, ci = o / m;
    __global const X_T *xp = x + xo + ((size_t)b * c + ci) * h * w;
    __global const W_T *wp = wt + wo + (size_t)o * r * s;
    __global Y_T *yr = y + yo + (((size_t)b * k + o) * p + oh) * q;
    const float b0 = has_bias ? bias[bo + o] : 0.0f;
#ifdef Y_HALF
    /* a half row cannot hold the partial sums (every tap would round them): each output sums
     * its taps in a register, as conv2d_direct does, and is stored once */
    for (int ow = 0; ow < q; ow++) {
        float sum = b0;
        for (int kh = 0; kh < r; kh++) {
            const int ih = oh * stride_h - pad_h + kh * dil_h;
            const bool row_in = ih >= 0 && ih < h;
            for (int kw = 0; kw < s; kw++) {
                const int iw = ow * stride_w - pad_w + kw * dil_w;
                const bool in = row_in && iw >= 0 && iw < w;
                const float xv = LDX(in ? ih * w + iw : 0, xp);
                sum = mad(LDW(kh * s + kw, wp), in ? xv : 0.0f, sum);
            }
        }
        STY(act_fwd(act, slope, sum), ow, yr);
    }
#else
    for (int ow = 0; ow < q; ow++) yr[ow] = b0;
    for (int kh = 0; kh < r; kh++) {
        const int ih = oh * stride_h - pad_h + kh * dil_h;
        const bool row_in = ih >= 0 && ih < h;
        __global const X_T *xr = xp + (row_in ? ih : 0) * w;
        for (int kw = 0; kw < s; kw++) {
            const float wv = LDW(kh * s + kw, wp);
            const int off = kw * dil_w - pad_w; /* input column of output column ow: ow * stride_w + off */
            int lo = off >= 0 ? 0 : (-off + stride_w - 1) / stride_w;
            int hi = w - 1 - off < 0 ? 0 : (w - 1 - off) / stride_w + 1;
            lo = row_in ? min(lo, q) : q;
            hi = max(lo, min(hi, q));
            for (int ow = 0; ow < lo; ow++) yr[ow] = mad(wv, 0.0f, yr[ow]);
            if (stride_w == 1)
                for (int ow = lo; ow < hi; ow++) yr[ow] = mad(wv, LDX(ow + off, xr), yr[ow]);
            else
                for (int ow = lo; ow < hi; ow++) yr[ow] = mad(wv, LDX(ow * stride_w + off, xr), yr[ow]);
            for (int ow = hi; ow < q; ow++) yr[ow] = mad(wv, 0.0f, yr[ow]);
        }
    }
    if (act == 1)
        for (int ow = 0; ow < q; ow++) yr[ow] = select(yr[ow], 0.0f, yr[ow] < 0.0f);
    else if (act != 0)
        for (int ow = 0; ow < q; ow++) yr[ow] = act_fwd(act, slope, yr[ow]);
#endif
}

/* dx row ih of channel ci, image b of the chunk, from dz in the [k][ld] layout of
 * nchw_to_kn (image b's plane of channel o at o*ld + b*p*q): every output row whose window
 * covers ih, each tap scattered along the row. global (h, c, nb) */
__kernel void dw_backward_data(__global const float *restrict dz, const int zo, const int ld,
                               __global const float *restrict wt, const int wo, __global float *restrict dx,
                               const int dxo, const int c, const int h, const int w, const int k, const int r,
                               const int s, const int p, const int q, const int stride_h, const int stride_w,
                               const int pad_h, const int pad_w, const int dil_h, const int dil_w)
{
    const int ih = get_global_id(0), ci = get_global_id(1), b = get_global_id(2);
    if (ih >= h || ci >= c) return;
    const int m = k / c;
    __global float *dr = dx + dxo + (((size_t)b * c + ci) * h + ih) * w;
    for (int iw = 0; iw < w; iw++) dr[iw] = 0.0f;
    for (int o = ci * m; o < ci * m + m; o++)
        for (int kh = 0; kh < r; kh++) {
            const int t = ih + pad_h - kh * dil_h; /* = oh * stride_h */
            if (t < 0 || t % stride_h != 0 || t / stride_h >= p) continue;
            __global const float *zr = dz + zo + (size_t)o * ld + ((size_t)b * p + t / stride_h) * q;
            for (int kw = 0; kw < s; kw++) {
                const float wv = wt[wo + ((size_t)o * r + kh) * s + kw];
                const int off = kw * dil_w - pad_w;
                int lo = off >= 0 ? 0 : (-off + stride_w - 1) / stride_w;
                int hi = w - 1 - off < 0 ? 0 : (w - 1 - off) / stride_w + 1;
                lo = min(lo, q);
                hi = max(lo, min(hi, q));
                if (stride_w == 1)
                    for (int ow = lo; ow < hi; ow++) dr[ow + off] = mad(wv, zr[ow], dr[ow + off]);
                else
                    for (int ow = lo; ow < hi; ow++) dr[ow * stride_w + off] = mad(wv, zr[ow], dr[ow * stride_w + off]);
            }
        }
}

/* dw[o][kh][kw] (+)= sum over the chunk's nb images and output pixels of dz * x (x 0 in the
 * padding); first: overwrite, else add (chunks accumulate). global (r*s, k) */
__kernel void dw_backward_filter(__global const float *restrict dz, const int zo, const int ld, const int nb,
                                 __global const float *restrict x, const int xo, __global float *dw, const int dwo,
                                 const int first, const int c, const int h, const int w, const int k, const int r,
                                 const int s, const int p, const int q, const int stride_h, const int stride_w,
                                 const int pad_h, const int pad_w, const int dil_h, const int dil_w)
{
    const int tap = get_global_id(0), o = get_global_id(1);
    if (tap >= r * s || o >= k) return;
    const int kh = tap / s, kw = tap % s, m = k / c, ci = o / m, off = kw * dil_w - pad_w;
    /* the columns whose input column is inside the image, [lo, hi), as in dw_forward; along
     * a row of stride 1 they go eight at a time into a float8 of partial sums */
    int lo = off >= 0 ? 0 : (-off + stride_w - 1) / stride_w;
    int hi = w - 1 - off < 0 ? 0 : (w - 1 - off) / stride_w + 1;
    lo = min(lo, q);
    hi = max(lo, min(hi, q));
    float sum = 0.0f;
    float8 acc = 0.0f;
    for (int b = 0; b < nb; b++) {
        __global const float *xp = x + xo + ((size_t)b * c + ci) * h * w;
        __global const float *zp = dz + zo + (size_t)o * ld + (size_t)b * p * q;
        for (int oh = 0; oh < p; oh++) {
            const int ih = oh * stride_h - pad_h + kh * dil_h;
            __global const float *zr = zp + oh * q;
            if (ih < 0 || ih >= h) {
                for (int ow = 0; ow < q; ow++) sum = mad(zr[ow], 0.0f, sum);
                continue;
            }
            __global const float *xr = xp + ih * w;
            for (int ow = 0; ow < lo; ow++) sum = mad(zr[ow], 0.0f, sum);
            int ow = lo;
            if (stride_w == 1) {
                for (; ow + 8 <= hi; ow += 8) acc = MADD(vload8(0, zr + ow), vload8(0, xr + ow + off), acc);
                for (; ow < hi; ow++) sum = mad(zr[ow], xr[ow + off], sum);
            } else {
                for (; ow < hi; ow++) sum = mad(zr[ow], xr[ow * stride_w + off], sum);
            }
            for (ow = hi; ow < q; ow++) sum = mad(zr[ow], 0.0f, sum);
        }
    }
    const float4 a4 = acc.lo + acc.hi;
    sum += (a4.x + a4.y) + (a4.z + a4.w);
    __global float *d = dw + dwo + (size_t)o * r * s + tap;
    *d = first ? sum : *d + sum;
}

/* Winograd F(2x2, 3x3) (Lavin and Gray, 2015) for 3x3 convolutions of stride 1: each 2x2
 * block of outputs of each filter is A^T [(G g G^T) . (B^T d B)] A over a 4x4 input tile d,
 * so the 16 products of each tile position (xi) form one GEMM over channels, 16 GEMMs in
 * a batch: M[xi] (cout x T) = U[xi] (cout x cin) V[xi] (cin x T), T tiles of the chunk.
 * The same kernels run the data gradient: the input is then dz, the filters are rotated
 * by 180 degrees with cin and cout swapped (flip), and the padding is 2 - pad. */

/* U[xi][o][i] = (G g G^T)[xi] from u + uo, g = w[o][i] (flip: g = w[i][o] rotated by 180
 * degrees; o < cout, i < cin). global (cin, cout) */
__kernel void winograd_filter(__global const float *restrict wt, const int wo, __global float *restrict u,
                              const int uo, const int cin, const int cout, const int flip)
{
    const int i = get_global_id(0), o = get_global_id(1);
    if (i >= cin || o >= cout) return;
    float g[3][3];
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            g[a][b] = flip ? wt[wo + ((size_t)i * cout + o) * 9 + (2 - a) * 3 + (2 - b)]
                           : wt[wo + ((size_t)o * cin + i) * 9 + a * 3 + b];
    float t[4][3]; /* G g */
    for (int b = 0; b < 3; b++) {
        t[0][b] = g[0][b];
        t[1][b] = 0.5f * (g[0][b] + g[1][b] + g[2][b]);
        t[2][b] = 0.5f * (g[0][b] - g[1][b] + g[2][b]);
        t[3][b] = g[2][b];
    }
    const size_t plane = (size_t)cout * cin, at = (size_t)uo + (size_t)o * cin + i;
    for (int a = 0; a < 4; a++) { /* (G g) G^T */
        u[(a * 4 + 0) * plane + at] = t[a][0];
        u[(a * 4 + 1) * plane + at] = 0.5f * (t[a][0] + t[a][1] + t[a][2]);
        u[(a * 4 + 2) * plane + at] = 0.5f * (t[a][0] - t[a][1] + t[a][2]);
        u[(a * 4 + 3) * plane + at] = t[a][2];
    }
}

/* V[xi][i][b*tiles + tile] = (B^T d B)[xi], d the 4x4 input patch at (2*ty - pad, 2*tx - pad)
 * of channel i, image b (zeros outside); channel i of image b starts at in + io + i*sc +
 * b*sb. global (th*tw, cin, nb) */
__kernel void winograd_input(__global const float *restrict in, const int io, const int sc, const int sb,
                             const int hin, const int win, const int pad, const int tw, const int tiles,
                             __global float *restrict v, const int vo, const int ldv, const int cin)
{
    const int tile = get_global_id(0), i = get_global_id(1), b = get_global_id(2);
    if (tile >= tiles) return;
    const int y0 = (tile / tw) * 2 - pad, x0 = (tile % tw) * 2 - pad;
    __global const float *src = in + io + (size_t)i * sc + (size_t)b * sb;
    float d[4][4];
    for (int a = 0; a < 4; a++)
        for (int e = 0; e < 4; e++) {
            const int yy = y0 + a, xx = x0 + e;
            const bool inside = yy >= 0 && yy < hin && xx >= 0 && xx < win;
            const float val = src[inside ? yy * win + xx : 0];
            d[a][e] = inside ? val : 0.0f;
        }
    float t[4][4]; /* B^T d */
    for (int e = 0; e < 4; e++) {
        t[0][e] = d[0][e] - d[2][e];
        t[1][e] = d[1][e] + d[2][e];
        t[2][e] = d[2][e] - d[1][e];
        t[3][e] = d[1][e] - d[3][e];
    }
    const size_t plane = (size_t)cin * ldv, at = (size_t)vo + (size_t)i * ldv + (size_t)b * tiles + tile;
    for (int a = 0; a < 4; a++) { /* (B^T d) B */
        v[(a * 4 + 0) * plane + at] = t[a][0] - t[a][2];
        v[(a * 4 + 1) * plane + at] = t[a][1] + t[a][2];
        v[(a * 4 + 2) * plane + at] = t[a][2] - t[a][1];
        v[(a * 4 + 3) * plane + at] = t[a][1] - t[a][3];
    }
}

/* out[b][o][2ty + a][2tx + e] = act((A^T M A)[a][e] (+ bias[o])) for the outputs inside
 * hout x wout; out is NCHW from out + oo (image b at b*cout*hout*wout). global (th*tw, cout, nb) */
__kernel void winograd_output(__global const float *restrict m, const int mo, const int ldv, const int tw,
                              const int tiles,
                              __global const float *bias, const int bo, const int has_bias,
                              __global float *restrict out, const int oo, const int cout, const int hout,
                              const int wout, const int act, const float slope)
{
    const int tile = get_global_id(0), o = get_global_id(1), b = get_global_id(2);
    if (tile >= tiles) return;
    const size_t plane = (size_t)cout * ldv, at = (size_t)mo + (size_t)o * ldv + (size_t)b * tiles + tile;
    float mm[4][4];
    for (int a = 0; a < 4; a++)
        for (int e = 0; e < 4; e++) mm[a][e] = m[(a * 4 + e) * plane + at];
    float t[2][4]; /* A^T M */
    for (int e = 0; e < 4; e++) {
        t[0][e] = mm[0][e] + mm[1][e] + mm[2][e];
        t[1][e] = mm[1][e] - mm[2][e] - mm[3][e];
    }
    const float add = has_bias ? bias[bo + o] : 0.0f;
    const int y0 = (tile / tw) * 2, x0 = (tile % tw) * 2;
    __global float *dst = out + oo + ((size_t)b * cout + o) * hout * wout;
    for (int a = 0; a < 2; a++) {
        const float r0 = t[a][0] + t[a][1] + t[a][2] + add, r1 = t[a][1] - t[a][2] - t[a][3] + add;
        if (y0 + a >= hout) continue;
        dst[(y0 + a) * wout + x0] = act_fwd(act, slope, r0);
        if (x0 + 1 < wout) dst[(y0 + a) * wout + x0 + 1] = act_fwd(act, slope, r1);
    }
}

/* ---------------------------------------------------------------- FFT convolution (lib/ops/conv_fft.c) */

/* Zero-padded real planes for the FFT: plane z = b*cin + ch of nh x nw at dst + z*nh*nw
 * holds the rows x cols source plane at src + so + ch*sc + b*sb placed at (top, left),
 * zeros around it; global (nh, nb*cin), a work-item per row (on a CPU a work-item per
 * element of rows 14 to 18 wide left most of each work-group idle). */
__kernel void fft_pad(__global const float *restrict src, const int so, const int sc, const int sb, const int rows,
                      const int cols, const int top, const int left, __global float *restrict dst, const int dof,
                      const int nh, const int nw, const int cin)
{
    const int i = get_global_id(0), z = get_global_id(1);
    if (i >= nh) return;
    const int r = i - top, b = z / cin, ch = z % cin;
    __global float *d = dst + dof + (size_t)z * nh * nw + (size_t)i * nw;
    if (r < 0 || r >= rows) {
        for (int j = 0; j < nw; j++) d[j] = 0.0f;
        return;
    }
    __global const float *sp = src + so + (size_t)ch * sc + (size_t)b * sb + (size_t)r * cols;
    for (int j = 0; j < left; j++) d[j] = 0.0f;
    for (int j = 0; j < cols; j++) d[left + j] = sp[j];
    for (int j = left + cols; j < nw; j++) d[j] = 0.0f;
}

/* A small complex matrix product per frequency, over spectra of f complex values each:
 *   C[z1*cs1 + z2*cs2] (+)= sum over j < nj of A'[z1*as1 + j*asj] * B'[z2*bs2 + j*bsj]
 * where X' is X or its conjugate (ca, cb) and each index counts whole spectra. The
 * forward's output spectrum of image b, filter o is sum_i X[b][i] conj(W[o][i])
 * (correlation); the data gradient's sum_o DZ[b][o] W[o][i]; the filter gradient's
 * sum_b conj(DZ[b][o]) X[b][i]. A work-item computes FFT_MUL_N2 consecutive z2 of one
 * frequency, loading each A once for them; global (f, ceil(n2 / FFT_MUL_N2), n1). */
#define FFT_MUL_N2 4
__kernel void fft_mul(__global const float2 *restrict a, const int ao, const int as1, const int asj, const int ca,
                      __global const float2 *restrict bm, const int bo, const int bs2, const int bsj, const int cb,
                      __global float2 *restrict cm, const int co, const int cs1, const int cs2, const int accumulate,
                      const int nj, const int n2, const int f)
{
    const int e = get_global_id(0), z2 = get_global_id(1) * FFT_MUL_N2, z1 = get_global_id(2);
    if (e >= f) return;
    const int m = min(FFT_MUL_N2, n2 - z2);
    __global const float2 *ap = a + ao + (size_t)z1 * as1 * f + e, *bp = bm + bo + (size_t)z2 * bs2 * f + e;
    const float sa = ca ? -1.0f : 1.0f, sb = cb ? -1.0f : 1.0f;
    float re[FFT_MUL_N2] = {0.0f}, im[FFT_MUL_N2] = {0.0f};
    for (int j = 0; j < nj; j++) {
        const float2 x = ap[(size_t)j * asj * f];
        const float xi = sa * x.y;
        for (int u = 0; u < FFT_MUL_N2; u++) {
            const float2 y = bp[((size_t)j * bsj + (size_t)(u < m ? u : 0) * bs2) * f];
            const float yi = sb * y.y;
            re[u] += x.x * y.x - xi * yi;
            im[u] += x.x * yi + xi * y.x;
        }
    }
    for (int u = 0; u < m; u++) {
        __global float2 *cp = cm + co + ((size_t)z1 * cs1 + (size_t)(z2 + u) * cs2) * f + e;
        const float2 v = (float2)(re[u], im[u]);
        *cp = accumulate ? *cp + v : v;
    }
}

/* NCHW out[b][ch] (cout planes of hout x wout from oo) = act(the window at (top, left) of
 * real plane b*cout + ch of nh x nw at src + so (+ bias[ch])); global (hout, nb*cout), a
 * work-item per row, the activation chosen outside the loops as in kn_to_nchw. */
__kernel void fft_crop(__global const float *restrict src, const int so, const int nh, const int nw, const int top,
                       const int left, __global const float *bias, const int bo, const int has_bias,
                       __global float *restrict out, const int oo, const int cout, const int hout, const int wout,
                       const int act, const float slope)
{
    const int i = get_global_id(0), z = get_global_id(1);
    if (i >= hout) return;
    const float add = has_bias ? bias[bo + z % cout] : 0.0f;
    __global const float *sp = src + so + (size_t)z * nh * nw + (size_t)(i + top) * nw + left;
    __global float *d = out + oo + (size_t)z * hout * wout + (size_t)i * wout;
    if (act == 0)
        for (int j = 0; j < wout; j++) d[j] = sp[j] + add;
    else if (act == 1)
        for (int j = 0; j < wout; j++) d[j] = select(sp[j] + add, 0.0f, sp[j] + add < 0.0f); /* NaN stays */
    else
        for (int j = 0; j < wout; j++) d[j] = act_fwd(act, slope, sp[j] + add);
}

/* y[b][ko][:] = act(y[b][ko][:] (+ bias[ko])) in place, for outputs the GEMM wrote straight
 * into NCHW (conv.c); global (k, nb), a plane per work-item as in kn_to_nchw. */
__kernel void bias_act(__global Y_T *y, const int yo, __global const float *bias, const int bo, const int has_bias,
                       const int k, const int pq, const int act, const float slope)
{
    const int ko = get_global_id(0), b = get_global_id(1);
    if (ko >= k) return;
    const float add = has_bias ? bias[bo + ko] : 0.0f;
    __global Y_T *d = y + yo + ((size_t)b * k + ko) * pq;
    if (act == 1)
        for (int i = 0; i < pq; i++) STY(select(LDY(i, d) + add, 0.0f, LDY(i, d) + add < 0.0f), i, d);
    else
        for (int i = 0; i < pq; i++) STY(act_fwd(act, slope, LDY(i, d) + add), i, d);
}
