/* The FFT convolution's pieces, for conv.c (which chunks the images and owns the
 * workspace layout) and conv_find.c. See conv_fft.c for the method. */
#ifndef DLCL_CONV_FFT_H
#define DLCL_CONV_FFT_H

#include "ops.h"

/* The FFT part of a convolution workspace for chunks of nb images, from base (offsets in
 * floats, each a multiple of FFT_ALIGN_FLOATS): the filter spectra W[k][c] at wf, the
 * filter gradient's spectra (summed over chunks) at dwf, real nh x nw planes at r, input
 * (or data-gradient) spectra at xf and output (or output-gradient) spectra at yf; end is
 * one past the last float. A spectrum is f complex values (nh x (nw/2+1)). */
typedef struct conv_fft_layout {
    int nh, nw, f;
    size_t n; /* floats per real plane */
    size_t wf, dwf, r, xf, yf, end;
} conv_fft_layout;

conv_fft_layout conv_fft_plan(const op_conv_shape *s, int nb, size_t base);
/* W[o][i] = FFT of filter (o, i) zero-padded at the origin, into l->wf. */
dlcl_status conv_fft_filter(dlcl_ctx *ctx, const op_conv_shape *s, const conv_fft_layout *l, op_buf w, cl_mem ws);
/* y = act(conv(x, w) + bias) for images n0 .. n0+nb-1, the filter spectra already in l->wf. */
dlcl_status conv_fft_forward_chunk(dlcl_ctx *ctx, const op_conv_shape *s, const conv_fft_layout *l, op_buf x, int n0,
                                   int nb, op_buf bias, op_act act, float slope, op_buf y, cl_mem ws);
/* From dz of images n0 .. n0+nb-1 in t ([k][ldc], image b at column b*p*q): dx of those
 * images (skipped when dx.mem is NULL; needs l->wf), and when want_dw the filter gradient's
 * spectra at l->dwf, overwritten for n0 == 0 and added to after. */
dlcl_status conv_fft_backward_chunk(dlcl_ctx *ctx, const op_conv_shape *s, const conv_fft_layout *l, op_buf t,
                                    size_t ldc, op_buf x, int n0, int nb, int want_dw, op_buf dx, cl_mem ws);
/* dw (OIHW) from the spectra summed at l->dwf. */
dlcl_status conv_fft_filter_grad(dlcl_ctx *ctx, const op_conv_shape *s, const conv_fft_layout *l, op_buf dw, cl_mem ws);

#endif
