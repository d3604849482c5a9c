/* col2im specialised for one convolution geometry: lib/ops/conv.c builds this file once
 * per shape with -D CV_C=.. CV_H=.. (see geom_options), so the divisions by the stride are
 * by constants and the r*s loop unrolls with uniform control flow, which PoCL vectorises
 * across work-items. Measured with `DLCL_PROFILE=1 dlcl-bench examples/fashion_vgg.ini`:
 * 5.2 ms per launch against 7.7 ms for a kernel taking the geometry as arguments (AMD EPYC,
 * PoCL 3.1; 5 against 16 ms on a Xeon). The same specialisation made the im2col of that
 * time slower there (12.4 against 8.2 ms), so im2col stays generic in conv.cl.
 * col2im_rows (below) is faster where rows are long: VGG's 28x28 3x3 layer 49 -> 38-45 ms
 * backward, while LeNet's 14x14 5x5 one was no faster or slower (three alternating runs of
 * dlcl-bench on the EPYC), so conv.c takes it from 16 columns up.
 * Without the -D options (dlcl_ctx_build_all) the file builds for a 1x1 placeholder.
 *
 * col: rows ordered (channel, kernel row, kernel column); image b's p*q entries of row
 * `row` start at b*img_stride + row*row_ld (conv.cl describes the layout). */
#ifndef CV_C
#define CV_C 1
#define CV_H 1
#define CV_W 1
#define CV_R 1
#define CV_S 1
#define CV_P 1
#define CV_Q 1
#define CV_SH 1
#define CV_SW 1
#define CV_PH 0
#define CV_PW 0
#define CV_DH 1
#define CV_DW 1
#endif
#define CV_PQ (CV_P * CV_Q)
#define CV_HW (CV_H * CV_W)
#define CV_RS (CV_R * CV_S)

/* dx[b][ci][ih][iw] = the sum of the col entries im2col copied from it (a gather, no
 * atomics); global (h*w, c, nb). The r*s candidates unroll; the ones outside the output
 * or off the stride grid add 0. */
__kernel void col2im(__global const float *col, const int img_stride, const int row_ld, __global float *dx,
                     const int dxo)
{
    const int pix = get_global_id(0), ci = get_global_id(1), b = get_global_id(2);
    if (pix >= CV_H * CV_W) return;
    const int ih = pix / CV_W, iw = pix % CV_W;
    __global const float *cb = col + (size_t)b * img_stride + (size_t)ci * CV_RS * row_ld;
    float sum = 0.0f;
#pragma unroll
    for (int kh = 0; kh < CV_R; kh++) {
        const int th = ih + CV_PH - kh * CV_DH, oh = th / CV_SH;
        const bool hin = th >= 0 && oh * CV_SH == th && oh < CV_P;
#pragma unroll
        for (int kw = 0; kw < CV_S; kw++) {
            const int tw = iw + CV_PW - kw * CV_DW, ow = tw / CV_SW;
            const bool in = hin && tw >= 0 && ow * CV_SW == tw && ow < CV_Q && pix < CV_HW;
            const float v = cb[(size_t)(kh * CV_S + kw) * row_ld + (in ? oh * CV_Q + ow : 0)];
            sum += in ? v : 0.0f;
        }
    }
    if (pix < CV_HW) dx[(size_t)dxo + ((size_t)b * CV_C + ci) * CV_HW + pix] = sum;
}

/* The same sums a row at a time, for images at least COL2IM_ROWS_MIN_W (conv.c) wide; global
 * (h, c, nb). A work-item zeroes its row of dx and adds, for each kernel offset (kh, kw)
 * whose output row exists, the matching stretch of one col row: a plain loop (contiguous for
 * stride 1) that LLVM vectorises, in the same (kh, kw) order as a sum per element. */
__kernel void col2im_rows(__global const float *restrict col, const int img_stride, const int row_ld,
                          __global float *restrict dx, const int dxo)
{
    const int ih = get_global_id(0), ci = get_global_id(1), b = get_global_id(2);
    if (ih >= CV_H) return;
    __global float *d = dx + dxo + ((size_t)b * CV_C + ci) * CV_HW + (size_t)ih * CV_W;
    for (int iw = 0; iw < CV_W; iw++) d[iw] = 0.0f;
    __global const float *cb = col + (size_t)b * img_stride + (size_t)ci * CV_RS * row_ld;
    for (int kh = 0; kh < CV_R; kh++) {
        const int th = ih + CV_PH - kh * CV_DH;
        if (th < 0 || th % CV_SH != 0 || th / CV_SH >= CV_P) continue;
        __global const float *src_row = cb + (size_t)kh * CV_S * row_ld + (th / CV_SH) * CV_Q;
        for (int kw = 0; kw < CV_S; kw++) {
            const int off = kw * CV_DW - CV_PW; /* input column of output column ow: ow * CV_SW + off */
            const int lo = off >= 0 ? 0 : (-off + CV_SW - 1) / CV_SW;
            const int hi = min(CV_Q, CV_W - 1 - off < 0 ? 0 : (CV_W - 1 - off) / CV_SW + 1);
            __global const float *src = src_row + (size_t)kw * row_ld;
            for (int ow = lo; ow < hi; ow++) d[ow * CV_SW + off] += src[ow];
        }
    }
}
