/* The implicit-GEMM convolution's pieces, for conv.c (which chunks the images and owns the
 * workspace layout) and conv_find.c. See conv_implicit.c for the method. */
#ifndef DLCL_CONV_IMPLICIT_H
#define DLCL_CONV_IMPLICIT_H

#include "ops.h"

/* The implicit part of a convolution workspace for chunks of nb images, from base (offsets
 * in floats): the padded input planes at xpad, the data gradient's filters at wf, and one
 * region at r2 holding, one after the other in a chunk, dz as strips of 16 filters (the
 * filter gradient) and the padded dz planes (the data gradient); end is one past the last. */
typedef struct conv_implicit_layout {
    size_t xpad, wf, r2, end;
} conv_implicit_layout;

conv_implicit_layout conv_implicit_plan(const op_conv_shape *s, int nb, size_t base);
/* y = conv(x, w) + bias (bias.mem may be NULL), then relu if set (NCHW, overwritten), for
 * images n0 .. n0+nb-1 */
dlcl_status conv_implicit_forward_chunk(dlcl_ctx *ctx, const op_conv_shape *s, const conv_implicit_layout *l, op_buf x,
                                        op_buf w, op_buf bias, int relu, int n0, int nb, op_buf y, cl_mem ws);
/* The data gradient's filters (w rotated, channels swapped) at l->wf: once per backward. */
dlcl_status conv_implicit_flip(dlcl_ctx *ctx, const op_conv_shape *s, const conv_implicit_layout *l, op_buf w,
                               cl_mem ws);
/* From dz = dy (NCHW) of images n0 .. n0+nb-1: when wt.mem is set the transposed filter
 * gradient [c*r*s][k] at wt (overwritten for n0 == 0, added to after); when dx.mem is set,
 * dx of those images (needs conv_implicit_flip). */
dlcl_status conv_implicit_backward_chunk(dlcl_ctx *ctx, const op_conv_shape *s, const conv_implicit_layout *l,
                                         op_buf dy, op_buf x, int n0, int nb, op_buf wt, op_buf dx, cl_mem ws);

#endif
