/* Single images for prediction: decoded by stb_image, converted, resized and normalised. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb_image.h>

#include "data.h"

/* Bilinear sample of channel ch at (fy, fx) in an 8-bit interleaved image. */
static float sample(const unsigned char *img, int w, int h, int comp, int ch, float fy, float fx)
{
    int y0 = (int)fy, x0 = (int)fx;
    int y1 = y0 + 1 < h ? y0 + 1 : h - 1, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
    float ay = fy - (float)y0, ax = fx - (float)x0;
#define PX(yy, xx) ((float)img[((size_t)(yy) * (size_t)w + (size_t)(xx)) * (size_t)comp + (size_t)ch])
    return (1 - ay) * ((1 - ax) * PX(y0, x0) + ax * PX(y0, x1)) + ay * ((1 - ax) * PX(y1, x0) + ax * PX(y1, x1));
#undef PX
}

/* Interleaved 8-bit pixels with `comp` channels (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) to `c`
 * (1 or 3) channels; alpha is dropped and grey is stb_image's luma (77 R + 150 G + 29 B) / 256. */
static unsigned char *convert_channels(const unsigned char *src, size_t pixels, int comp, int c)
{
    unsigned char *dst = malloc(pixels * (size_t)c);
    if (dst == NULL) return NULL;
    for (size_t i = 0; i < pixels; i++) {
        const unsigned char *p = src + i * (size_t)comp;
        if (c == 1)
            dst[i] = comp >= 3 ? (unsigned char)((p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8) : p[0];
        else
            for (int ch = 0; ch < 3; ch++) dst[i * 3 + (size_t)ch] = comp >= 3 ? p[ch] : p[0];
    }
    return dst;
}

/* stb_image parses PNM header integers with a plain `value*10 + digit` that overflows int (UB) on
 * long digit runs (found by fuzz/fuzz_image). Such headers are refused here before stb sees them:
 * each of width, height and maxval may have at most 9 digits. Comments start with '#'. */
static int pnm_header_ok(const unsigned char *b, size_t n)
{
    if (n < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) return 1; /* not a PNM stb reads */
    size_t i = 2;
    for (int field = 0; field < 3; field++) {
        for (;;) {
            while (i < n && (b[i] == ' ' || (b[i] >= '\t' && b[i] <= '\r'))) i++;
            if (i < n && b[i] == '#') {
                while (i < n && b[i] != '\n' && b[i] != '\r') i++;
                continue;
            }
            break;
        }
        int digits = 0;
        while (i < n && b[i] >= '0' && b[i] <= '9') i++, digits++;
        if (digits > 9) return 0;
    }
    return 1;
}

/* stb_image computes `idata + ioff` with idata still NULL when the first IDAT chunk of a PNG is
 * empty (undefined behaviour, found by fuzz/fuzz_image). An empty IDAT adds no data, so such
 * chunks are cut out of the buffer (in place) before stb sees it; the image decodes the same. */
static void png_drop_empty_idat(unsigned char *b, size_t *len)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    size_t n = *len, i = 8;
    if (n < 8 || memcmp(b, sig, 8) != 0) return;
    while (i + 12 <= n) {
        uint32_t l = (uint32_t)b[i] << 24 | (uint32_t)b[i + 1] << 16 | (uint32_t)b[i + 2] << 8 | b[i + 3];
        if (l > n - i - 12) break; /* truncated: stb reports it */
        if (l == 0 && memcmp(b + i + 4, "IDAT", 4) == 0) {
            memmove(b + i, b + i + 12, n - i - 12);
            n -= 12;
            continue;
        }
        i += 12 + (size_t)l;
    }
    *len = n;
}

/* Reads the whole file, refusing files larger than any image within the pixel limit could be
 * (4 bytes a pixel plus 16 MiB of headers and metadata). */
static dlcl_status read_bounded(const char *path, long max_pixels, unsigned char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return dlcl__err(DLCL_ERR_NOT_FOUND, "%s: cannot open", path);
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return dlcl__err(DLCL_ERR_DATA, "%s: not a regular file", path);
    }
    uint64_t cap = 4 * (uint64_t)max_pixels + (16u << 20);
    if ((uint64_t)sb.st_size > cap) {
        fclose(f);
        return dlcl__err(DLCL_ERR_DATA, "%s: %lld bytes is larger than an image within the %ld-pixel limit can be",
                         path, (long long)sb.st_size, max_pixels);
    }
    if (sb.st_size == 0) {
        fclose(f);
        return dlcl__err(DLCL_ERR_DATA, "%s: empty file", path);
    }
    unsigned char *b = malloc((size_t)sb.st_size);
    if (b == NULL) {
        fclose(f);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: no host memory for %lld bytes", path, (long long)sb.st_size);
    }
    size_t got = fread(b, 1, (size_t)sb.st_size, f);
    fclose(f);
    if (got != (size_t)sb.st_size) {
        free(b);
        return dlcl__err(DLCL_ERR_IO, "%s: short read (%zu of %lld bytes)", path, got, (long long)sb.st_size);
    }
    *buf = b;
    *len = got;
    return DLCL_OK;
}

dlcl_status image_load(const char *path, int c, int h, int w, double scale, double mean, double std, long max_pixels,
                       float *out)
{
    if (path == NULL || out == NULL || h < 1 || w < 1 || std == 0.0 || max_pixels < 1)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "image_load: bad arguments");
    if (c != 1 && c != 3)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: images can feed nets with 1 or 3 input channels, not %d", path, c);
    unsigned char *file = NULL;
    size_t len = 0;
    dlcl_status st = read_bounded(path, max_pixels, &file, &len);
    if (st != DLCL_OK) return st;
    if (len > INT32_MAX) {
        free(file);
        return dlcl__err(DLCL_ERR_DATA, "%s: image files over 2 GiB are not supported", path);
    }
    if (!pnm_header_ok(file, len)) {
        free(file);
        return dlcl__err(DLCL_ERR_DATA, "%s: PNM header has a number longer than 9 digits", path);
    }
    png_drop_empty_idat(file, &len);
    int iw, ih, comp;
    if (!stbi_info_from_memory(file, (int)len, &iw, &ih, &comp)) {
        free(file);
        return dlcl__err(DLCL_ERR_DATA, "%s: not a readable image (%s)", path, stbi_failure_reason());
    }
    if (iw < 1 || ih < 1 || (uint64_t)iw * (uint64_t)ih > (uint64_t)max_pixels) {
        free(file);
        return dlcl__err(DLCL_ERR_DATA, "%s: %dx%d image is larger than the %ld-pixel limit ([data] max_image_pixels)",
                         path, iw, ih, max_pixels);
    }
    /* decoded with its own channel count: stb's conversion overruns on 16-bit PNM (fuzz/fuzz_image) */
    unsigned char *raw = stbi_load_from_memory(file, (int)len, &iw, &ih, &comp, 0);
    free(file);
    if (raw == NULL) return dlcl__err(DLCL_ERR_DATA, "%s: cannot decode (%s)", path, stbi_failure_reason());
    if ((uint64_t)iw * (uint64_t)ih > (uint64_t)max_pixels || comp < 1 || comp > 4) {
        stbi_image_free(raw);
        return dlcl__err(DLCL_ERR_DATA, "%s: decoded to %dx%d with %d channels, beyond the %ld-pixel limit", path, iw, ih,
                         comp, max_pixels);
    }
    unsigned char *img = convert_channels(raw, (size_t)iw * (size_t)ih, comp, c);
    stbi_image_free(raw);
    if (img == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: no host memory for a %dx%d image", path, iw, ih);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float fy = ((float)y + 0.5f) * (float)ih / (float)h - 0.5f;
                float fx = ((float)x + 0.5f) * (float)iw / (float)w - 0.5f;
                fy = fy < 0 ? 0 : fy > (float)(ih - 1) ? (float)(ih - 1) : fy;
                fx = fx < 0 ? 0 : fx > (float)(iw - 1) ? (float)(iw - 1) : fx;
                float v = sample(img, iw, ih, c, ch, fy, fx);
                out[((size_t)ch * h + y) * w + x] = (float)((v * scale - mean) / std);
            }
    free(img);
    return DLCL_OK;
}
