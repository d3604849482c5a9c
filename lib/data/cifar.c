/* CIFAR-10 and CIFAR-100 binary batches (https://www.cs.toronto.edu/~kriz/cifar.html), held in
 * memory as uint8. A file is records one after another, nothing else:
 *   CIFAR-10:  u8 label,                 3072 pixel bytes
 *   CIFAR-100: u8 coarse label, u8 fine label, 3072 pixel bytes
 * the pixels 1024 red, 1024 green, 1024 blue, each 32 rows of 32 (CHW, as dlcl keeps them). */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data.h"

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_MAX_SAMPLES 100000000L
#define CIFAR_CHUNK 256 /* records per read */

static const char *cifar_name(int classes) { return classes == 10 ? "CIFAR-10" : "CIFAR-100"; }

/* Records in path, after checking its size: a whole, non-zero number of records. */
static dlcl_status count_records(const char *path, int classes, int rec, long *n)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return dlcl__err(errno == ENOENT ? DLCL_ERR_NOT_FOUND : DLCL_ERR_IO, "%s: cannot open: %s", path,
                         strerror(errno));
    if (!S_ISREG(sb.st_mode)) return dlcl__err(DLCL_ERR_DATA, "%s: not a regular file", path);
    if (sb.st_size == 0)
        return dlcl__err(DLCL_ERR_DATA, "%s: empty file (a %s batch is records of %d bytes)", path,
                         cifar_name(classes), rec);
    if (sb.st_size % rec != 0)
        return dlcl__err(DLCL_ERR_DATA,
                         "%s: %lld bytes is not a whole number of %d-byte %s records (record %lld is cut short "
                         "after %lld bytes)",
                         path, (long long)sb.st_size, rec, cifar_name(classes), (long long)(sb.st_size / rec),
                         (long long)(sb.st_size % rec));
    *n = (long)(sb.st_size / rec);
    return DLCL_OK;
}

/* Reads n records of path into pixels/labels, checking every label. */
static dlcl_status read_records(const char *path, int classes, int rec, long n, uint8_t *pixels, int32_t *labels)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return dlcl__err(DLCL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char *chunk = malloc((size_t)CIFAR_CHUNK * (size_t)rec);
    dlcl_status st = DLCL_OK;
    if (chunk == NULL) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    for (long r = 0; r < n;) {
        size_t want = (size_t)(n - r < CIFAR_CHUNK ? n - r : CIFAR_CHUNK);
        size_t got = fread(chunk, (size_t)rec, want, f);
        if (got != want) {
            st = dlcl__err(DLCL_ERR_IO, "%s: read failed at record %ld (did the file change?)", path, r + (long)got);
            goto done;
        }
        for (size_t k = 0; k < got; k++, r++) {
            const unsigned char *p = chunk + k * (size_t)rec;
            int label = p[rec - CIFAR_PIXELS - 1]; /* CIFAR-100: the fine label, after the coarse one */
            if (label >= classes) {
                st = dlcl__err(DLCL_ERR_DATA, "%s: record %ld has label %d, out of range for classes=%d", path, r,
                               label, classes);
                goto done;
            }
            labels[r] = label;
            memcpy(pixels + (size_t)r * CIFAR_PIXELS, p + rec - CIFAR_PIXELS, CIFAR_PIXELS);
        }
    }
done:
    free(chunk);
    fclose(f);
    return st;
}

dlcl_status data_set_load_cifar(const char *const *paths, int n_paths, int classes, data_set *out)
{
    memset(out, 0, sizeof *out);
    if (paths == NULL || n_paths < 1) return dlcl__err(DLCL_ERR_INVALID_ARG, "data_set_load_cifar: no files");
    if (classes != 10 && classes != 100)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "CIFAR batches hold 10 or 100 classes, not %d", classes);
    int rec = classes == 10 ? 1 + CIFAR_PIXELS : 2 + CIFAR_PIXELS;
    long *counts = calloc((size_t)n_paths, sizeof *counts), total = 0;
    if (counts == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    dlcl_status st = DLCL_OK;
    for (int i = 0; i < n_paths; i++) { /* every size checked before anything is read */
        if ((st = count_records(paths[i], classes, rec, &counts[i])) != DLCL_OK) goto fail;
        total += counts[i];
        if (total > CIFAR_MAX_SAMPLES) {
            st = dlcl__err(DLCL_ERR_DATA, "%s: more than %ld records in all, beyond dlcl's limit", paths[i],
                           CIFAR_MAX_SAMPLES);
            goto fail;
        }
    }
    size_t bytes;
    if (!dlcl__mul_ok((size_t)total, CIFAR_PIXELS, &bytes)) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%ld CIFAR images do not fit in the address space", total);
        goto fail;
    }
    out->pixels = malloc(bytes);
    out->labels = malloc((size_t)total * sizeof *out->labels);
    if (out->pixels == NULL || out->labels == NULL) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory for %ld CIFAR images", total);
        goto fail;
    }
    for (int i = 0, at = 0; i < n_paths; at += (int)counts[i], i++)
        if ((st = read_records(paths[i], classes, rec, counts[i], out->pixels + (size_t)at * CIFAR_PIXELS,
                               out->labels + at)) != DLCL_OK)
            goto fail;
    out->n = (int)total;
    out->c = 3;
    out->h = out->w = CIFAR_SIDE;
    free(counts);
    return DLCL_OK;
fail:
    free(counts);
    data_set_free(out);
    return st;
}

dlcl_status cifar_class_names(const char *path, int classes, char ***names)
{
    *names = NULL;
    char *tmp = strdup(path);
    if (tmp == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    const char *file = classes == 10 ? "batches.meta.txt" : "fine_label_names.txt";
    size_t len = strlen(tmp) + strlen(file) + 2;
    char *meta = malloc(len);
    char **list = calloc((size_t)classes + 2, sizeof *list);
    dlcl_status st = DLCL_OK;
    FILE *f = NULL;
    if (meta == NULL || list == NULL) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    snprintf(meta, len, "%s/%s", dirname(tmp), file);
    if ((f = fopen(meta, "r")) == NULL) goto done; /* no names: fine */
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t'))
            line[--l] = '\0';
        if (l == 0) continue;
        if (n == classes) {
            n++;
            break;
        }
        if ((list[n++] = strdup(line)) == NULL) {
            st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
            goto done;
        }
    }
    if (n != classes) {
        st = dlcl__err(DLCL_ERR_DATA, "%s: %s%d class names, but [net] classes = %d", meta, n > classes ? "more than " : "",
                       n > classes ? classes : n, classes);
        goto done;
    }
    *names = list;
    list = NULL;
done:
    if (f) fclose(f);
    data_names_free(list);
    free(meta);
    free(tmp);
    return st;
}

dlcl_status data_source_cifar(const char *const *paths, int n_paths, int classes, data_source **out)
{
    *out = NULL;
    data_set ds;
    char **names = NULL;
    dlcl_status st = data_set_load_cifar(paths, n_paths, classes, &ds);
    if (st != DLCL_OK) return st;
    if ((st = cifar_class_names(paths[0], classes, &names)) != DLCL_OK) {
        data_set_free(&ds);
        return st;
    }
    if ((st = data_source_memory("cifar", &ds, names, out)) != DLCL_OK) return st;
    (*out)->classes = classes;
    return DLCL_OK;
}
