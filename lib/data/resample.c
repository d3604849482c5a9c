/* PIL's bilinear resize (Pillow's libImaging/Resample.c: precompute_coeffs,
 * normalize_coeffs_8bpc, ImagingResampleHorizontal_8bpc / Vertical_8bpc), so that a folder
 * read by dlcl gives the pixels torchvision's Resize, CenterCrop and RandomResizedCrop give
 * PIL images. Output pixel x of a span resized by scale = in/out reads the source pixels within
 * `support` = max(scale, 1) of its centre (x + 0.5) * scale, weighted by the triangle
 * 1 - |d| / max(scale, 1): plain bilinear when enlarging, an average over every pixel under it
 * when shrinking. Weights are normalised, then made 22-bit fixed point; each pass rounds to
 * uint8. A resized crop (RandomResizedCrop: crop, then resize) reads only its box. */
#include <math.h>
#include <string.h>

#include "data.h"

#define PRECISION_BITS (32 - 8 - 2)

static double triangle(double x)
{
    x = x < 0 ? -x : x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static uint8_t clip8(int v)
{
    v >>= PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* acc[x] += row[x] * k: apart, so that the compiler knows they do not overlap and vectorises. */
static void vertical_tap(int32_t *restrict acc, const uint8_t *restrict row, int32_t k, int n)
{
    for (int x = 0; x < n; x++) acc[x] += row[x] * k;
}

/* Taps per output pixel of an axis. */
static int axis_ksize(const data_axis *a)
{
    double scale = (double)a->box_len / a->len, support = scale > 1.0 ? scale : 1.0;
    return (int)ceil(support) * 2 + 1;
}

/* For each output pixel: its first source pixel and tap count (bounds[2v], bounds[2v+1]; count
 * -1 for padding) and ksize fixed-point weights. Computed in double as Pillow does. */
static void axis_coeffs(const data_axis *a, int ksize, int *bounds, int32_t *k, double *w)
{
    double scale = (double)a->box_len / a->len, filterscale = scale > 1.0 ? scale : 1.0, support = filterscale;
    double ss = 1.0 / filterscale;
    for (int v = 0; v < a->n; v++) {
        int xx = v + a->off;
        int32_t *kk = k + (size_t)v * ksize;
        memset(kk, 0, (size_t)ksize * sizeof *kk);
        if (xx < 0 || xx >= a->len) {
            bounds[2 * v] = 0;
            bounds[2 * v + 1] = -1;
            continue;
        }
        double center = a->box0 + (xx + 0.5) * scale, ww = 0.0;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < a->box0) xmin = a->box0;
        if (xmax > a->box0 + a->box_len) xmax = a->box0 + a->box_len;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            w[x] = triangle((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        for (int x = 0; x < xmax; x++) {
            double f = ww != 0.0 ? w[x] / ww : w[x];
            kk[x] = (int32_t)(f < 0 ? -0.5 + f * (1 << PRECISION_BITS) : 0.5 + f * (1 << PRECISION_BITS));
        }
        bounds[2 * v] = xmin;
        bounds[2 * v + 1] = xmax;
    }
}

dlcl_status resample_pil(const uint8_t *src, int c, int ih, int iw, const data_axis *ay, const data_axis *ax,
                         transform_scratch *scratch, uint8_t *out)
{
    (void)ih;
    int ky = axis_ksize(ay), kx = axis_ksize(ax);
    /* one buffer: bounds of y and x, weights of y and x, and one output's weights in double;
     * n * ksize is about twice the source span at most (n <= len, ksize ~ 2 * span / len) */
    size_t nb = (size_t)2 * ((size_t)ay->n + (size_t)ax->n), nw = (size_t)ay->n * ky + (size_t)ax->n * kx;
    size_t dbl_at = (nb * sizeof(int) + nw * sizeof(int32_t) + 7) / 8 * 8;
    int *by = transform_scratch_get(scratch, 2, dbl_at + (size_t)(ky > kx ? ky : kx) * sizeof(double));
    if (by == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory for resampling weights");
    int *bx = by + 2 * ay->n;
    int32_t *wy = (int32_t *)(bx + 2 * ax->n), *wx = wy + (size_t)ay->n * ky;
    double *w = (double *)((char *)by + dbl_at);
    axis_coeffs(ay, ky, by, wy, w);
    axis_coeffs(ax, kx, bx, wx, w);
    int r0 = -1, r1 = -1; /* the source rows the vertical pass reads */
    for (int v = 0; v < ay->n; v++) {
        if (by[2 * v + 1] < 0) continue;
        if (r0 < 0 || by[2 * v] < r0) r0 = by[2 * v];
        if (by[2 * v] + by[2 * v + 1] > r1) r1 = by[2 * v] + by[2 * v + 1];
    }
    if (r0 < 0) { /* every row is padding */
        memset(out, 0, (size_t)c * ay->n * ax->n);
        return DLCL_OK;
    }
    size_t rows = (size_t)(r1 - r0), plane = (size_t)ay->n * ax->n, acc_at = (rows * (size_t)ax->n + 3) / 4 * 4;
    uint8_t *tmp = transform_scratch_get(scratch, 3, acc_at + (size_t)ax->n * sizeof(int32_t));
    if (tmp == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    int32_t *acc = (int32_t *)(tmp + acc_at);
    const int nx = ax->n, ny = ay->n; /* locals: the stores below cannot change them */
    for (int ch = 0; ch < c; ch++) {
        const uint8_t *in = src + (size_t)ch * ih * iw;
        for (size_t r = 0; r < rows; r++) { /* horizontal: source rows r0.. to nx columns */
            const uint8_t *row = in + (r0 + r) * (size_t)iw;
            for (int x = 0; x < nx; x++) {
                int n = bx[2 * x + 1], ss = 1 << (PRECISION_BITS - 1);
                const int32_t *k = wx + (size_t)x * kx;
                const uint8_t *p = row + bx[2 * x];
                for (int i = 0; i < n; i++) ss += p[i] * k[i];
                tmp[r * nx + x] = n < 0 ? 0 : clip8(ss);
            }
        }
        uint8_t *o = out + (size_t)ch * plane;
        for (int y = 0; y < ny; y++, o += nx) { /* vertical: a row at a time, which vectorises */
            int n = by[2 * y + 1];
            const int32_t *k = wy + (size_t)y * ky;
            for (int x = 0; x < nx; x++) acc[x] = 1 << (PRECISION_BITS - 1);
            for (int i = 0; i < n; i++)
                vertical_tap(acc, tmp + (size_t)(by[2 * y] - r0 + i) * nx, k[i], nx);
            for (int x = 0; x < nx; x++) o[x] = n < 0 || bx[2 * x + 1] < 0 ? 0 : clip8(acc[x]);
        }
    }
    return DLCL_OK;
}
