/* safetensors reader and writer (see safetensors.h). The reader trusts nothing: the
 * header length is bounded by the file size, every offset by the data size, every shape
 * product is overflow-checked against its byte range, and ranges may neither overlap nor
 * leave gaps. Nothing larger than the file is ever allocated. */
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"

#define ST_MAX_HEADER ((uint64_t)100 << 20)

typedef struct dtype_info {
    const char *name;
    size_t size;
} dtype_info;

enum { DT_F32, DT_F16, DT_BF16, DT_F64, DT_COUNT };
static const dtype_info dtypes[DT_COUNT] = {{"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F64", 8}};

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu;
    float v;
    if (exp == 0)
        v = ldexpf((float)man, -24);
    else if (exp == 31)
        v = man ? NAN : INFINITY;
    else
        v = ldexpf((float)(man | 0x400u), (int)exp - 25);
    return sign ? -v : v;
}

static void convert(int dt, const unsigned char *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (dt) {
        case DT_F32: memcpy(&dst[i], src + 4 * i, 4); break;
        case DT_F16: {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = half_to_float(h);
            break;
        }
        case DT_BF16: {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            uint32_t u = (uint32_t)h << 16;
            memcpy(&dst[i], &u, 4);
            break;
        }
        case DT_F64: {
            double d;
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d;
            break;
        }
        }
    }
}

void st_file_free(st_file *f)
{
    if (f == NULL) return;
    for (size_t i = 0; i < f->count; i++) {
        free(f->tensors[i].name);
        free(f->tensors[i].data);
    }
    for (size_t i = 0; i < f->meta_count; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_values);
    memset(f, 0, sizeof *f);
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    for (size_t i = 0; f && i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

typedef struct range {
    uint64_t begin, end;
    const char *name;
} range;

static int cmp_range(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static dlcl_status bad(const char *path, const char *name, const char *what)
{
    if (name) return dlcl__err(DLCL_ERR_CHECKPOINT, "%s: tensor '%s': %s", path, name, what);
    return dlcl__err(DLCL_ERR_CHECKPOINT, "%s: %s", path, what);
}

static bool get_u64(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j) || j->valuedouble < 0 || j->valuedouble > 9007199254740992.0 ||
        j->valuedouble != floor(j->valuedouble))
        return false;
    *out = (uint64_t)j->valuedouble;
    return true;
}

/* Parses one tensor entry; fills t (without data) and its byte range. */
static dlcl_status parse_entry(const char *path, const cJSON *e, st_tensor *t, range *r, int *dt, uint64_t blob)
{
    const char *name = e->string;
    if (!cJSON_IsObject(e)) return bad(path, name, "entry is not an object");
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype"), *js = cJSON_GetObjectItemCaseSensitive(e, "shape"),
                *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return bad(path, name, "needs dtype (string), shape (array) and data_offsets ([begin, end])");
    *dt = -1;
    for (int i = 0; i < DT_COUNT; i++)
        if (strcmp(jd->valuestring, dtypes[i].name) == 0) *dt = i;
    if (*dt < 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "dtype '%.32s' is not supported (F32, F16, BF16, F64)", jd->valuestring);
        return bad(path, name, msg);
    }
    int nd = cJSON_GetArraySize(js);
    if (nd > ST_MAX_DIMS) return bad(path, name, "more than 8 dimensions");
    uint64_t numel = 1;
    t->ndim = nd;
    for (int i = 0; i < nd; i++) {
        uint64_t d;
        if (!get_u64(cJSON_GetArrayItem(js, i), &d)) return bad(path, name, "shape entries must be non-negative integers");
        if (d != 0 && numel > UINT64_MAX / d) return bad(path, name, "shape product overflows");
        numel *= d;
        t->dims[i] = (int64_t)d;
    }
    if (!get_u64(cJSON_GetArrayItem(jo, 0), &r->begin) || !get_u64(cJSON_GetArrayItem(jo, 1), &r->end) ||
        r->end < r->begin || r->end > blob)
        return bad(path, name, "data_offsets outside the data section");
    if (numel > UINT64_MAX / dtypes[*dt].size || numel * dtypes[*dt].size != r->end - r->begin)
        return bad(path, name, "shape and dtype do not match the size of its data_offsets range");
    if ((t->name = strdup(name)) == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    r->name = t->name;
    return DLCL_OK;
}

static dlcl_status parse_meta(const char *path, const cJSON *m, st_file *f)
{
    if (!cJSON_IsObject(m)) return bad(path, NULL, "__metadata__ is not an object");
    int n = cJSON_GetArraySize(m);
    f->meta_keys = calloc((size_t)n + 1, sizeof *f->meta_keys);
    f->meta_values = calloc((size_t)n + 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    for (const cJSON *e = m->child; e; e = e->next) {
        if (!cJSON_IsString(e)) return bad(path, NULL, "__metadata__ values must be strings");
        f->meta_keys[f->meta_count] = strdup(e->string);
        f->meta_values[f->meta_count] = strdup(e->valuestring);
        if (!f->meta_keys[f->meta_count] || !f->meta_values[f->meta_count])
            return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        f->meta_count++;
    }
    return DLCL_OK;
}

dlcl_status st_read(const char *path, st_file *out)
{
    memset(out, 0, sizeof *out);
    if (path == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "st_read: path is NULL");
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return dlcl__err(errno == ENOENT ? DLCL_ERR_NOT_FOUND : DLCL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    char *hdr = NULL;
    unsigned char *blob = NULL;
    cJSON *root = NULL;
    range *ranges = NULL;
    int *dts = NULL;
    dlcl_status st = DLCL_OK;
    unsigned char lenb[8];
    if (fstat(fileno(fp), &sb) != 0 || fread(lenb, 1, 8, fp) != 8) {
        st = bad(path, NULL, "shorter than the 8-byte header length");
        goto done;
    }
    uint64_t hlen = 0, fsize = (uint64_t)sb.st_size;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenb[i];
    if (hlen < 2 || hlen > ST_MAX_HEADER || hlen > fsize - 8) {
        char msg[160];
        snprintf(msg, sizeof msg, "header length %llu does not fit in the %llu-byte file", (unsigned long long)hlen,
                 (unsigned long long)fsize);
        st = bad(path, NULL, msg);
        goto done;
    }
    uint64_t blob_len = fsize - 8 - hlen;
    hdr = malloc((size_t)hlen + 1);
    blob = malloc(blob_len ? (size_t)blob_len : 1);
    if (!hdr || !blob) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: out of host memory", path);
        goto done;
    }
    if (fread(hdr, 1, (size_t)hlen, fp) != hlen || fread(blob, 1, (size_t)blob_len, fp) != blob_len) {
        st = dlcl__err(DLCL_ERR_IO, "%s: read error", path);
        goto done;
    }
    hdr[hlen] = '\0';
    root = cJSON_ParseWithLength(hdr, (size_t)hlen);
    if (!cJSON_IsObject(root)) {
        st = bad(path, NULL, "header is not a JSON object");
        goto done;
    }
    size_t n = (size_t)cJSON_GetArraySize(root);
    out->tensors = calloc(n + 1, sizeof *out->tensors);
    ranges = calloc(n + 1, sizeof *ranges);
    dts = calloc(n + 1, sizeof *dts);
    if (!out->tensors || !ranges || !dts) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    for (const cJSON *e = root->child; e && st == DLCL_OK; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            st = parse_meta(path, e, out);
            continue;
        }
        if (st_find(out, e->string)) {
            st = bad(path, e->string, "appears twice");
            break;
        }
        size_t i = out->count;
        st = parse_entry(path, e, &out->tensors[i], &ranges[i], &dts[i], blob_len);
        if (out->tensors[i].name) out->count++;
    }
    if (st != DLCL_OK) goto done;
    /* ranges must tile the data section exactly: sorted, no overlap, no gap */
    range *sorted = malloc((out->count + 1) * sizeof *sorted);
    if (sorted == NULL) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    memcpy(sorted, ranges, out->count * sizeof *sorted);
    qsort(sorted, out->count, sizeof *sorted, cmp_range);
    uint64_t at = 0;
    for (size_t i = 0; i < out->count && st == DLCL_OK; i++) {
        if (sorted[i].begin < at) st = bad(path, sorted[i].name, "data overlaps another tensor");
        else if (sorted[i].begin > at) st = bad(path, sorted[i].name, "gap in the data section before this tensor");
        at = sorted[i].end > at ? sorted[i].end : at;
    }
    if (st == DLCL_OK && at != blob_len) st = bad(path, NULL, "data section is longer than its tensors");
    free(sorted);
    for (size_t i = 0; i < out->count && st == DLCL_OK; i++) {
        size_t numel = (size_t)((ranges[i].end - ranges[i].begin) / dtypes[dts[i]].size);
        out->tensors[i].data = malloc(numel ? numel * sizeof(float) : 1);
        if (out->tensors[i].data == NULL) st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        else convert(dts[i], blob + ranges[i].begin, out->tensors[i].data, numel);
    }
done:
    fclose(fp);
    cJSON_Delete(root);
    free(hdr);
    free(blob);
    free(ranges);
    free(dts);
    if (st != DLCL_OK) st_file_free(out);
    return st;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static char *build_header(const st_tensor *t, size_t count, const char *const *mk, const char *const *mv, size_t mc,
                          size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    if (root == NULL) return NULL;
    bool ok = true;
    if (mc > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (size_t i = 0; ok && i < mc; i++) ok = m && cJSON_AddStringToObject(m, mk[i], mv[i]);
    }
    uint64_t off = 0;
    for (size_t i = 0; ok && i < count; i++) {
        cJSON *e = cJSON_AddObjectToObject(root, t[i].name);
        cJSON *shape = e ? cJSON_AddArrayToObject(e, "shape") : NULL, *offs = NULL;
        ok = e && cJSON_AddStringToObject(e, "dtype", "F32") && shape;
        uint64_t numel = 1;
        for (int d = 0; ok && d < t[i].ndim; d++) {
            numel *= (uint64_t)t[i].dims[d];
            ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t[i].dims[d]));
        }
        if (ok) ok = (offs = cJSON_AddArrayToObject(e, "data_offsets")) != NULL;
        if (ok) ok = cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        off += numel * 4;
        if (ok) ok = cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
    }
    char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (s == NULL) return NULL;
    size_t n = strlen(s), padded = (n + 7) / 8 * 8;
    char *p = realloc(s, padded + 1);
    if (p == NULL) {
        free(s);
        return NULL;
    }
    memset(p + n, ' ', padded - n);
    p[padded] = '\0';
    *len = padded;
    return p;
}

dlcl_status st_write(const char *path, const st_tensor *tensors, size_t count, const char *const *meta_keys,
                     const char *const *meta_values, size_t meta_count)
{
    if (path == NULL || (count > 0 && tensors == NULL) || (meta_count > 0 && (!meta_keys || !meta_values)))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "st_write: NULL argument");
    for (size_t i = 0; i < count; i++) {
        if (tensors[i].name == NULL || tensors[i].ndim < 0 || tensors[i].ndim > ST_MAX_DIMS)
            return dlcl__err(DLCL_ERR_INVALID_ARG, "st_write: tensor %zu has no name or a bad rank", i);
        for (int d = 0; d < tensors[i].ndim; d++)
            if (tensors[i].dims[d] < 0)
                return dlcl__err(DLCL_ERR_INVALID_ARG, "st_write: tensor '%s' has a negative dimension", tensors[i].name);
    }
    size_t hlen;
    char *hdr = build_header(tensors, count, meta_keys, meta_values, meta_count, &hlen);
    if (hdr == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "st_write: cannot build the header");
    size_t plen = strlen(path) + 32;
    char *tmp = malloc(plen);
    if (tmp == NULL) {
        free(hdr);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        dlcl_status st = dlcl__err(DLCL_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(hdr);
        free(tmp);
        return st;
    }
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int fail = write_all(fd, lenb, 8) || write_all(fd, hdr, hlen);
    for (size_t i = 0; !fail && i < count; i++) {
        size_t numel = 1;
        for (int d = 0; d < tensors[i].ndim; d++) numel *= (size_t)tensors[i].dims[d];
        fail = write_all(fd, tensors[i].data, numel * sizeof(float));
    }
    fail |= fsync(fd) != 0;
    int e = errno;
    fail |= close(fd) != 0;
    free(hdr);
    if (fail || rename(tmp, path) != 0) {
        if (!fail) e = errno;
        unlink(tmp);
        dlcl_status st = dlcl__err(DLCL_ERR_IO, "%s: write failed: %s", path, strerror(e));
        free(tmp);
        return st;
    }
    free(tmp);
    return DLCL_OK;
}
