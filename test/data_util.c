/* Helpers of the data tests: see data_util.h. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <stb_image_write.h>

#include "data_util.h"

const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f}, imagenet_std[3] = {0.229f, 0.224f, 0.225f};

const char *pathf(const char *fmt, ...)
{
    static char bufs[8][700];
    static int slot;
    char *p = bufs[slot];
    slot = (slot + 1) % 8;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, 700, fmt, ap);
    va_end(ap);
    return p;
}

/* An RGB test image: a pattern with edges and every byte value, or smooth when `smooth`. */
uint8_t *pattern(int w, int h, int seed, bool smooth)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int y = 0; p && y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                p[((size_t)y * w + x) * 3 + c] =
                    smooth ? (uint8_t)(127.5 + 120 * sin(0.05 * x + 0.5 * c + seed) * cos(0.07 * y - 0.3 * c))
                           : (uint8_t)(x * 37 + y * 91 + c * 53 + seed * 17 + ((x * y) >> 2));
    return p;
}

/* Writes an image with stb_image_write by extension (png, bmp, jpg). */
bool write_image(const char *path, int w, int h, int seed, bool smooth)
{
    uint8_t *p = pattern(w, h, seed, smooth);
    const char *ext = strrchr(path, '.') + 1;
    int ok = 0;
    if (p && !strcasecmp(ext, "png")) ok = stbi_write_png(path, w, h, 3, p, w * 3);
    else if (p && !strcasecmp(ext, "bmp")) ok = stbi_write_bmp(path, w, h, 3, p);
    else if (p) ok = stbi_write_jpg(path, w, h, 3, p, 90);
    free(p);
    return ok != 0;
}

/* torchvision's Resize (tensor path, antialias=False: bilinear, align_corners=False) of a
 * planar image to oh x ow, in double: the reference transform.c is checked against. */
void ref_resize(const uint8_t *src, int c, int ih, int iw, int oh, int ow, double *dst)
{
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                double sy = fmax(0, (y + 0.5) * ih / oh - 0.5), sx = fmax(0, (x + 0.5) * iw / ow - 0.5);
                int y0 = (int)sy < ih - 1 ? (int)sy : ih - 1, x0 = (int)sx < iw - 1 ? (int)sx : iw - 1;
                int y1 = y0 + 1 < ih ? y0 + 1 : ih - 1, x1 = x0 + 1 < iw ? x0 + 1 : iw - 1;
                double ly = sy - y0, lx = sx - x0;
                const uint8_t *p = src + (size_t)ch * ih * iw;
                dst[((size_t)ch * oh + y) * ow + x] = (1 - ly) * ((1 - lx) * p[y0 * iw + x0] + lx * p[y0 * iw + x1]) +
                                                      ly * ((1 - lx) * p[y1 * iw + x0] + lx * p[y1 * iw + x1]);
            }
}

/* Resize(r) + CenterCrop(h, w) + Normalize, as torchvision computes sizes and offsets. */
void ref_resize_crop(const uint8_t *src, int ih, int iw, int r, int h, int w, float *out)
{
    int nh, nw;
    if (iw <= ih)
        nw = r, nh = (int)((double)r * ih / iw);
    else
        nh = r, nw = (int)((double)r * iw / ih);
    double *big = malloc(sizeof(double) * 3 * nh * nw);
    ref_resize(src, 3, ih, iw, nh, nw, big);
    int top = (int)nearbyint((nh - h) / 2.0), left = (int)nearbyint((nw - w) / 2.0); /* Python's round */
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                out[((size_t)c * h + y) * w + x] =
                    (float)((big[((size_t)c * nh + y + top) * nw + x + left] / 255.0 - imagenet_mean[c]) /
                            imagenet_std[c]);
    free(big);
}

data_transform imagenet_transform(int h, int w, int resize)
{
    data_transform t = {.c = 3, .h = h, .w = w, .resize = resize, .scale = 1.0f / 255.0f};
    memcpy(t.mean, imagenet_mean, sizeof imagenet_mean);
    memcpy(t.std, imagenet_std, sizeof imagenet_std);
    return t;
}

/* Planar copy of an interleaved RGB pattern. */
uint8_t *planar(const uint8_t *rgb, int n)
{
    uint8_t *p = malloc((size_t)n * 3);
    for (int i = 0; p && i < n; i++)
        for (int c = 0; c < 3; c++) p[(size_t)c * n + i] = rgb[(size_t)i * 3 + c];
    return p;
}

/* An in-memory source of n random 3 x h x w samples, label = index. */
data_source *memory_source(int n, int h, int w, int grain)
{
    data_set ds = {n, 3, h, w, malloc((size_t)n * 3 * h * w), malloc((size_t)n * 4)};
    uint64_t s = 99;
    for (size_t j = 0; ds.pixels && j < (size_t)n * 3 * h * w; j++) ds.pixels[j] = (uint8_t)t_rand_u32(&s);
    for (int i = 0; ds.labels && i < n; i++) ds.labels[i] = i;
    data_source *src = NULL;
    if (data_source_memory("test", &ds, NULL, &src) != DLCL_OK) return NULL;
    src->grain = grain;
    return src;
}

/* A one-layer net over [data] `data` (a folder or CIFAR), its config in dir. */
const char *net_config(const char *dir, const char *input, int classes, const char *data)
{
    char text[2048];
    snprintf(text, sizeof text,
             "[net]\ninput = %s\nclasses = %d\nbatch = 4\nseed = 3\n[optimizer]\ntype = sgd\nlearning_rate = 0.1\n"
             "[data]\n%s\n[fc]\ntype = dense\nunits = %d\n",
             input, classes, data, classes);
    const char *p = pathf("%s/net.ini", dir);
    return t_write_file(p, text, strlen(text)) ? p : NULL;
}

