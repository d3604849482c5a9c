/* IDX files (LeCun's MNIST format), raw or gzip-compressed:
 *   u8 0, u8 0, u8 type (0x08 = uint8), u8 rank, rank x u32 big-endian dims, data.
 * zlib's gz* functions read both raw and compressed files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data.h"

#define IDX_MAX_ITEMS 100000000u    /* 1e8 samples */
#define IDX_MAX_ITEM_BYTES (16u << 20)
#define GZ_MAX_RATIO 1100u          /* deflate cannot expand beyond ~1032:1 */

typedef struct idx_file {
    int rank;
    uint32_t dims[3];
    uint8_t *data;
    size_t bytes;
} idx_file;

static dlcl_status read_idx(const char *path, int want_rank, idx_file *out)
{
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return dlcl__err(errno == ENOENT ? DLCL_ERR_NOT_FOUND : DLCL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    gzFile f = gzopen(path, "rb");
    if (f == NULL) return dlcl__err(DLCL_ERR_IO, "%s: cannot open", path);
    dlcl_status st = DLCL_OK;
    unsigned char hdr[4 + 4 * 3] = {0};
    int head = gzread(f, hdr, 4);
    if (head != 4) {
        st = dlcl__err(DLCL_ERR_DATA, "%s: %s (an IDX file starts with a 4-byte magic number)", path,
                       head == 0 ? "empty" : "truncated");
        goto fail;
    }
    if (hdr[0] != 0 || hdr[1] != 0 || hdr[2] != 0x08 || hdr[3] != want_rank) {
        st = dlcl__err(DLCL_ERR_DATA, "%s: magic %02x%02x%02x%02x is not an IDX uint8 file of rank %d (want 000008%02x)",
                       path, hdr[0], hdr[1], hdr[2], hdr[3], want_rank, want_rank);
        goto fail;
    }
    if (gzread(f, hdr + 4, 4u * (unsigned)want_rank) != 4 * want_rank) {
        st = dlcl__err(DLCL_ERR_DATA, "%s: truncated header (%d dimensions expected)", path, want_rank);
        goto fail;
    }
    uint64_t total = 1;
    out->rank = want_rank;
    for (int i = 0; i < want_rank; i++) {
        const unsigned char *d = hdr + 4 + 4 * i;
        out->dims[i] = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
        if (out->dims[i] == 0) {
            st = dlcl__err(DLCL_ERR_DATA, "%s: dimension %d is 0", path, i);
            goto fail;
        }
        total *= out->dims[i];
    }
    if (out->dims[0] > IDX_MAX_ITEMS || total / out->dims[0] > IDX_MAX_ITEM_BYTES) {
        st = dlcl__err(DLCL_ERR_DATA, "%s: header claims %u items of %llu bytes, beyond dlcl's limits", path, out->dims[0],
                       (unsigned long long)(total / out->dims[0]));
        goto fail;
    }
    /* never allocate more than the file can hold: its size, or what deflate can expand to */
    uint64_t can_hold = (uint64_t)sb.st_size * GZ_MAX_RATIO;
    if (total > can_hold) {
        st = dlcl__err(DLCL_ERR_DATA, "%s: header claims %llu bytes of data but the file has %lld bytes", path,
                       (unsigned long long)total, (long long)sb.st_size);
        goto fail;
    }
    out->bytes = (size_t)total;
    out->data = malloc(out->bytes);
    if (out->data == NULL) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: out of host memory for %zu bytes", path, out->bytes);
        goto fail;
    }
    size_t got = 0;
    while (got < out->bytes) {
        unsigned chunk = out->bytes - got > (1u << 30) ? (1u << 30) : (unsigned)(out->bytes - got);
        int r = gzread(f, out->data + got, chunk);
        if (r <= 0) break;
        got += (size_t)r;
    }
    int errnum = 0;
    const char *zmsg = gzerror(f, &errnum);
    if (got < out->bytes) {
        st = dlcl__err(DLCL_ERR_DATA, "%s: truncated: header claims %zu data bytes, file holds %zu%s%s", path, out->bytes,
                       got, errnum != Z_OK ? "; " : "", errnum != Z_OK ? zmsg : "");
        goto fail;
    }
    unsigned char extra;
    if (gzread(f, &extra, 1) > 0) {
        st = dlcl__err(DLCL_ERR_DATA, "%s: more data than the header's dimensions describe", path);
        goto fail;
    }
    gzclose(f);
    return DLCL_OK;
fail:
    gzclose(f);
    free(out->data);
    out->data = NULL;
    return st;
}

dlcl_status data_set_load_idx(const char *images_path, const char *labels_path, int classes, data_set *out)
{
    memset(out, 0, sizeof *out);
    if (images_path == NULL || labels_path == NULL || classes < 1)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "data_set_load_idx: bad arguments");
    idx_file im, lb;
    dlcl_status st = read_idx(images_path, 3, &im);
    if (st != DLCL_OK) return st;
    st = read_idx(labels_path, 1, &lb);
    if (st != DLCL_OK) {
        free(im.data);
        return st;
    }
    if (im.dims[0] != lb.dims[0]) {
        st = dlcl__err(DLCL_ERR_DATA, "%s has %u images but %s has %u labels", images_path, im.dims[0], labels_path,
                       lb.dims[0]);
        goto fail;
    }
    out->labels = malloc((size_t)lb.dims[0] * sizeof *out->labels);
    if (out->labels == NULL) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        goto fail;
    }
    for (uint32_t i = 0; i < lb.dims[0]; i++) {
        if (lb.data[i] >= classes) {
            st = dlcl__err(DLCL_ERR_DATA, "%s: label %u at index %u is out of range for classes=%d", labels_path,
                           lb.data[i], i, classes);
            goto fail;
        }
        out->labels[i] = lb.data[i];
    }
    out->n = (int)im.dims[0];
    out->c = 1;
    out->h = (int)im.dims[1];
    out->w = (int)im.dims[2];
    out->pixels = im.data;
    free(lb.data);
    return DLCL_OK;
fail:
    free(im.data);
    free(lb.data);
    free(out->labels);
    memset(out, 0, sizeof *out);
    return st;
}

dlcl_status data_source_idx(const char *images_path, const char *labels_path, int classes, data_source **out)
{
    *out = NULL;
    data_set ds;
    dlcl_status st = data_set_load_idx(images_path, labels_path, classes, &ds);
    return st != DLCL_OK ? st : data_source_memory("idx", &ds, NULL, out);
}
