/* Images decoded by stb_image: headers checked without decoding (image folders), files decoded
 * to planar uint8 channels (folders and prediction), and single images for prediction. Files
 * are read whole and fixed up before stb_image sees them (see pnm_header_ok, png_drop_empty_idat). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb_image.h>

#include "data.h"

/* Interleaved 8-bit pixels with `comp` channels (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) to `c`
 * (1 or 3) planes; alpha is dropped and grey is stb_image's luma (77 R + 150 G + 29 B) / 256. */
static void to_planes(const unsigned char *src, size_t pixels, int comp, int c, uint8_t *dst)
{
    for (size_t i = 0; i < pixels; i++) {
        const unsigned char *p = src + i * (size_t)comp;
        if (c == 1)
            dst[i] = comp >= 3 ? (uint8_t)((p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8) : p[0];
        else
            for (int ch = 0; ch < 3; ch++) dst[(size_t)ch * pixels + i] = comp >= 3 ? p[ch] : p[0];
    }
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

/* stb_image's failure reason, or a plain one where stb has none: an unknown PNG chunk's reason
 * starts with the chunk type, which is "\0\0\0\0" when the file ends early. */
static const char *stb_reason(void)
{
    const char *r = stbi_failure_reason();
    return r != NULL && r[0] >= ' ' ? r : "corrupt or truncated data";
}

/* Reads the whole file, refusing files larger than any image within the pixel limit could be
 * (4 bytes a pixel plus 16 MiB of headers and metadata). */
static dlcl_status read_bounded(const char *path, long max_pixels, unsigned char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return dlcl__err(errno == ENOENT ? DLCL_ERR_NOT_FOUND : DLCL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
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

/* The first bytes of the formats image folders hold. */
static int png_jpeg_bmp(const unsigned char *b, size_t n)
{
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    return (n >= 8 && memcmp(b, png, 8) == 0) || (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) ||
           (n >= 2 && b[0] == 'B' && b[1] == 'M');
}

dlcl_status image_probe(const char *path, long max_pixels, int *w, int *h)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return dlcl__err(errno == ENOENT ? DLCL_ERR_NOT_FOUND : DLCL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    dlcl_status st = DLCL_OK;
    unsigned char head[8];
    size_t got;
    int comp;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = dlcl__err(DLCL_ERR_DATA, "%s: not a regular file", path);
    } else if (sb.st_size == 0) {
        st = dlcl__err(DLCL_ERR_DATA, "%s: empty file", path);
    } else if ((uint64_t)sb.st_size > 4 * (uint64_t)max_pixels + (16u << 20)) {
        st = dlcl__err(DLCL_ERR_DATA, "%s: %lld bytes is larger than an image within the %ld-pixel limit can be", path,
                       (long long)sb.st_size, max_pixels);
    } else if ((got = fread(head, 1, sizeof head, f)) < 2 || !png_jpeg_bmp(head, got)) {
        st = dlcl__err(DLCL_ERR_DATA, "%s: not a PNG, JPEG or BMP image", path);
    } else if (fseek(f, 0, SEEK_SET) != 0 || !stbi_info_from_file(f, w, h, &comp)) {
        st = dlcl__err(DLCL_ERR_DATA, "%s: unreadable header, a truncated or corrupt image (%s)", path, stb_reason());
    } else if (*w < 1 || *h < 1 || (uint64_t)*w * (uint64_t)*h > (uint64_t)max_pixels) {
        st = dlcl__err(DLCL_ERR_DATA, "%s: %dx%d image is larger than the %ld-pixel limit ([data] max_image_pixels)",
                       path, *w, *h, max_pixels);
    }
    fclose(f);
    return st;
}

dlcl_status image_decode(const char *path, int c, long max_pixels, data_buf *buf, int *h, int *w)
{
    if (path == NULL || buf == NULL || max_pixels < 1 || (c != 1 && c != 3))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "image_decode: bad arguments");
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
        return dlcl__err(DLCL_ERR_DATA, "%s: not a readable image (%s)", path, stb_reason());
    }
    if (iw < 1 || ih < 1 || (uint64_t)iw * (uint64_t)ih > (uint64_t)max_pixels) {
        free(file);
        return dlcl__err(DLCL_ERR_DATA, "%s: %dx%d image is larger than the %ld-pixel limit ([data] max_image_pixels)",
                         path, iw, ih, max_pixels);
    }
    /* decoded with its own channel count: stb's conversion overruns on 16-bit PNM (fuzz/fuzz_image) */
    unsigned char *raw = stbi_load_from_memory(file, (int)len, &iw, &ih, &comp, 0);
    free(file);
    if (raw == NULL) return dlcl__err(DLCL_ERR_DATA, "%s: cannot decode (%s)", path, stb_reason());
    if (iw < 1 || ih < 1 || (uint64_t)iw * (uint64_t)ih > (uint64_t)max_pixels || comp < 1 || comp > 4) {
        stbi_image_free(raw);
        return dlcl__err(DLCL_ERR_DATA, "%s: decoded to %dx%d with %d channels, beyond the %ld-pixel limit", path, iw, ih,
                         comp, max_pixels);
    }
    size_t pixels = (size_t)iw * (size_t)ih;
    if ((st = data_buf_reserve(buf, pixels * (size_t)c)) == DLCL_OK) {
        to_planes(raw, pixels, comp, c, buf->px);
        *h = ih;
        *w = iw;
    }
    stbi_image_free(raw);
    return st;
}

dlcl_status image_load(const char *path, const data_transform *t, long max_pixels, float *out)
{
    if (path == NULL || t == NULL || out == NULL || t->h < 1 || t->w < 1 || max_pixels < 1)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "image_load: bad arguments");
    if (t->c != 1 && t->c != 3)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: images can feed nets with 1 or 3 input channels, not %d", path,
                         t->c);
    data_buf buf = {0};
    transform_scratch scratch = {0};
    data_sample s = {0};
    dlcl_status st = image_decode(path, t->c, max_pixels, &buf, &s.h, &s.w);
    s.px = buf.px;
    if (st == DLCL_OK) st = transform_apply(t, NULL, &s, 0, &scratch, out);
    free(buf.px);
    transform_scratch_free(&scratch);
    return st;
}
