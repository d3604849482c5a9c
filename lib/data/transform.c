/* A sample's way from raw pixels to the batch: geometry, augmentation, normalisation. The
 * steps, as torchvision applies them:
 *   geometry: RandomResizedCrop (a box of the source, resized to h x w), Resize(R) +
 *     CenterCrop((h, w)), CenterCrop((h, w)) alone, a plain resize to h x w, or nothing when
 *     the sample is h x w already;
 *   RandomCrop((h, w), padding=P): pad by P zeros, crop at (dy, dx) in [0, 2P]^2;
 *   RandomHorizontalFlip; then (pixel * scale - mean[c]) / std[c].
 * With antialias, a geometry that resamples is done first, as PIL does (resample.c), into an
 * h x w uint8 image. Everything else is one pass from the output back to the source: each step
 * is separable, so output row y reads source rows ymap[y] and column x source columns xmap[x],
 * and each output pixel is one bilinear sample of the source (or padding), pixel centres
 * aligned: src = (dst + 0.5) * in/out - 0.5, clamped to the image (torch's interpolate with
 * align_corners=False). Integer crops composed with one resampling are exact: without
 * antialias no intermediate image is rounded. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

/* Output index -> source indices i0, i1 and the weight a of i1; i0 < 0: padding (pixel 0). */
typedef struct axis_map {
    int i0, i1;
    float a;
} axis_map;

void *transform_scratch_get(transform_scratch *s, int i, size_t bytes)
{
    if (bytes > s->cap[i]) {
        void *p = realloc(s->buf[i], bytes);
        if (p == NULL) return NULL;
        s->buf[i] = p;
        s->cap[i] = bytes;
    }
    return s->buf[i];
}

void transform_scratch_free(transform_scratch *s)
{
    for (int i = 0; i < 4; i++) {
        free(s->buf[i]);
        s->buf[i] = NULL;
        s->cap[i] = 0;
    }
}

int transform_is_random(const data_transform *t) { return t->random_crop > 0 || t->flip || t->random_resized_crop; }

uint64_t transform_key(uint64_t seed, int epoch, int index)
{
    uint64_t k = dlcl__mix64(seed ^ 0x6a09e667f3bcc909ull); /* the augmentation's stream of seed */
    k = dlcl__mix64(k + (uint64_t)(uint32_t)epoch);
    return dlcl__mix64(k ^ ((uint64_t)(uint32_t)index << 20));
}

static double uniform01(uint64_t *s) { return (double)(dlcl__splitmix64(s) >> 11) * 0x1p-53; }

/* Python's round(): half to even, which nearbyint does in the default rounding mode. */
static int round_even(double x) { return (int)nearbyint(x); }

void transform_rrc_box(uint64_t key, int ih, int iw, int *top, int *left, int *bh, int *bw)
{
    uint64_t s = key ^ 0x3c6ef372fe94f82bull;
    const double area = (double)ih * (double)iw, lr0 = log(3.0 / 4.0), lr1 = log(4.0 / 3.0);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (0.08 + (1.0 - 0.08) * uniform01(&s));
        double aspect = exp(lr0 + (lr1 - lr0) * uniform01(&s));
        int w = round_even(sqrt(target * aspect)), h = round_even(sqrt(target / aspect));
        if (0 < w && w <= iw && 0 < h && h <= ih) {
            *top = (int)data_bounded(&s, (uint32_t)(ih - h + 1));
            *left = (int)data_bounded(&s, (uint32_t)(iw - w + 1));
            *bh = h;
            *bw = w;
            return;
        }
    }
    double ratio = (double)iw / (double)ih; /* torchvision's fallback: the centre, ratio clamped */
    int w = iw, h = ih;
    if (ratio < 3.0 / 4.0)
        h = round_even(w / (3.0 / 4.0));
    else if (ratio > 4.0 / 3.0)
        w = round_even(h * (4.0 / 3.0));
    *bh = h;
    *bw = w;
    *top = (ih - h) / 2;
    *left = (iw - w) / 2;
}

/* Resize(R) of torchvision: the short side becomes R, the long one int(R * long / short);
 * false when that is beyond 2^24 pixels (a sliver of an image). */
static bool resize_short_side(int r, int ih, int iw, int *nh, int *nw)
{
    double l = iw <= ih ? (double)((long long)r * ih) / iw : (double)((long long)r * iw) / ih;
    if (l > (double)(1 << 24)) return false;
    *nh = iw <= ih ? (int)l : r;
    *nw = iw <= ih ? r : (int)l;
    return true;
}

/* CenterCrop's offset of an n-long crop in a len-long axis (pads the axis when it is shorter). */
static int centre_offset(int len, int n) { return len >= n ? round_even((len - n) / 2.0) : -((n - len) / 2); }

/* One axis: out[v] for v in [0, g->n), after random_crop shift d - pad and flip. */
static void build_axis(const data_axis *g, int pad, int d, int flip, axis_map *out)
{
    float scale = (float)g->box_len / (float)g->len;
    for (int v = 0; v < g->n; v++) {
        int u = (flip ? g->n - 1 - v : v) + d - pad, r = u + g->off;
        if (u < 0 || u >= g->n || r < 0 || r >= g->len) {
            out[v] = (axis_map){-1, -1, 0.0f};
            continue;
        }
        float lo = (float)g->box0, hi = (float)(g->box0 + g->box_len - 1);
        float f = (float)g->box0 + ((float)r + 0.5f) * scale - 0.5f;
        f = f < lo ? lo : f > hi ? hi : f;
        int i0 = (int)f;
        out[v] = (axis_map){i0, i0 + 1 <= g->box0 + g->box_len - 1 ? i0 + 1 : i0, f - (float)i0};
    }
}

dlcl_status transform_apply(const data_transform *t, const float *lut, const data_sample *s, uint64_t key,
                            transform_scratch *scratch, float *out)
{
    const int H = t->h, W = t->w;
    int ih = s->h, iw = s->w;
    const uint8_t *px = s->px;
    if (ih < 1 || iw < 1) return dlcl__err(DLCL_ERR_INVALID_ARG, "transform_apply: empty sample");
    int random = transform_is_random(t);
    data_axis gy = {H, H, 0, 0, ih}, gx = {W, W, 0, 0, iw}; /* a plain resize to H x W: the default */
    if (random && t->random_resized_crop) {
        transform_rrc_box(key, ih, iw, &gy.box0, &gx.box0, &gy.box_len, &gx.box_len);
    } else if (t->resize > 0) {
        if (!resize_short_side(t->resize, ih, iw, &gy.len, &gx.len))
            return dlcl__err(DLCL_ERR_DATA, "a %dx%d image is too elongated to resize its short side to %d", iw, ih,
                             t->resize);
        gy.off = centre_offset(gy.len, H);
        gx.off = centre_offset(gx.len, W);
    } else if (t->crop) {
        gy.len = ih;
        gx.len = iw;
        gy.off = centre_offset(ih, H);
        gx.off = centre_offset(iw, W);
    }
    if (t->antialias && (gy.len != gy.box_len || gx.len != gx.box_len)) {
        /* resampled as PIL does into an H x W image, which the steps below then crop and flip */
        uint8_t *mid = transform_scratch_get(scratch, 1, (size_t)t->c * H * W);
        if (mid == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        dlcl_status st = resample_pil(px, t->c, ih, iw, &gy, &gx, scratch, mid);
        if (st != DLCL_OK) return st;
        px = mid;
        ih = H;
        iw = W;
        gy = (data_axis){H, H, 0, 0, H};
        gx = (data_axis){W, W, 0, 0, W};
    }
    axis_map *ym = transform_scratch_get(scratch, 0, ((size_t)H + (size_t)W) * sizeof(axis_map)), *xm = ym + H;
    if (ym == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    int pad = random ? t->random_crop : 0, dy = 0, dx = 0, flip = 0;
    if (pad > 0) {
        uint64_t c = key ^ 0xbb67ae8584caa73bull;
        dy = (int)data_bounded(&c, 2u * (uint32_t)pad + 1);
        dx = (int)data_bounded(&c, 2u * (uint32_t)pad + 1);
    }
    if (random && t->flip) {
        uint64_t f = key ^ 0xa54ff53a5f1d36f1ull;
        flip = uniform01(&f) < 0.5;
    }
    build_axis(&gy, pad, dy, 0, ym);
    build_axis(&gx, pad, dx, flip, xm);
    int exact = 1; /* every tap on a source pixel: the lookup table serves */
    for (int y = 0; y < H; y++) exact &= ym[y].a == 0.0f;
    for (int x = 0; x < W; x++) exact &= xm[x].a == 0.0f;
    const size_t plane = (size_t)ih * (size_t)iw;
    for (int ch = 0; ch < t->c; ch++) {
        const uint8_t *src = px + (size_t)ch * plane;
        float *dst = out + (size_t)ch * (size_t)H * (size_t)W;
        float zero = lut ? lut[ch * 256] : transform_norm(t, ch, 0.0f);
        for (int y = 0; y < H; y++, dst += W) {
            const axis_map my = ym[y];
            if (my.i0 < 0) {
                for (int x = 0; x < W; x++) dst[x] = zero;
                continue;
            }
            const uint8_t *r0 = src + (size_t)my.i0 * iw, *r1 = src + (size_t)my.i1 * iw;
            if (exact) {
                for (int x = 0; x < W; x++) {
                    float v = (float)r0[xm[x].i0 < 0 ? 0 : xm[x].i0];
                    dst[x] = xm[x].i0 < 0 ? zero : lut ? lut[ch * 256 + (int)v] : transform_norm(t, ch, v);
                }
                continue;
            }
            for (int x = 0; x < W; x++) {
                const axis_map mx = xm[x];
                if (mx.i0 < 0) {
                    dst[x] = zero;
                    continue;
                }
                float top = (1 - mx.a) * (float)r0[mx.i0] + mx.a * (float)r0[mx.i1];
                float bot = (1 - mx.a) * (float)r1[mx.i0] + mx.a * (float)r1[mx.i1];
                dst[x] = transform_norm(t, ch, (1 - my.a) * top + my.a * bot);
            }
        }
    }
    return DLCL_OK;
}
