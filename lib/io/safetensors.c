/* safetensors reader and writer (see safetensors.h). The reader trusts nothing: the
 * header length is bounded by the file size and by 100 MiB, the header must be UTF-8 JSON
 * with nothing after it but whitespace, every offset is bounded by the data size, every
 * shape product is overflow-checked against its byte range, and the ranges must tile the
 * data section exactly (as the reference implementation requires). Tensor data is read
 * straight into its float (or int64) buffer, so nothing larger than the file (twice it for
 * 16-bit dtypes, which widen to float) is ever allocated. */
#include <cJSON.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"

/* Tensor bytes are copied between memory and file as is: safetensors is little-endian. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "lib/io/safetensors.c assumes a little-endian host"
#endif

#define ST_MAX_HEADER ((uint64_t)100 << 20)
/* JSON numbers are doubles in cJSON: integers above 2^53 would not survive a round trip. */
#define ST_MAX_JSON_INT ((uint64_t)1 << 53)
#define ST_CHUNK 65536

const char *const st_dtype_names[ST_DTYPE_COUNT] = {"F32", "I64"};
_Static_assert(DLCL__ARRAY_LEN(st_dtype_names) == ST_DTYPE_COUNT, "one name per st_dtype");

/* The dtypes on disk, and the st_dtype each one is read as. */
enum { DT_F32, DT_F16, DT_BF16, DT_F64, DT_I64, DT_COUNT };
static const struct {
    const char *name;
    size_t size;
    st_dtype as;
} dtypes[] = {{"F32", 4, ST_F32}, {"F16", 2, ST_F32}, {"BF16", 2, ST_F32}, {"F64", 8, ST_F32}, {"I64", 8, ST_I64}};
_Static_assert(DLCL__ARRAY_LEN(dtypes) == DT_COUNT, "one dtypes row per DT_*");
static const size_t st_dtype_size[ST_DTYPE_COUNT] = {4, 8};
_Static_assert(DLCL__ARRAY_LEN(st_dtype_size) == ST_DTYPE_COUNT, "one size per st_dtype");

/* IEEE half -> float bits, exact (subnormals normalised, NaN payloads kept). */
static uint32_t half_bits_to_float_bits(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f) return sign | 0x7f800000u | man << 13;
    if (exp != 0) return sign | (exp + 112) << 23 | man << 13;
    if (man == 0) return sign;
    exp = 113; /* 127 - 15 + 1: the subnormal exponent, lowered while normalising */
    while (!(man & 0x400u)) {
        man <<= 1;
        exp--;
    }
    return sign | exp << 23 | (man & 0x3ffu) << 13;
}

/* Widens n elements of dtype dt at src (little-endian bytes) to float32. */
static void convert(int dt, const unsigned char *src, float *dst, size_t n)
{
    uint16_t h;
    uint32_t u;
    double d;
    switch (dt) {
    case DT_F32: memcpy(dst, src, n * 4); break;
    case DT_F16:
        for (size_t i = 0; i < n; i++) {
            memcpy(&h, src + 2 * i, 2);
            u = half_bits_to_float_bits(h);
            memcpy(&dst[i], &u, 4);
        }
        break;
    case DT_BF16: /* bfloat16 is the top half of a float32 */
        for (size_t i = 0; i < n; i++) {
            memcpy(&h, src + 2 * i, 2);
            u = (uint32_t)h << 16;
            memcpy(&dst[i], &u, 4);
        }
        break;
    case DT_F64:
        for (size_t i = 0; i < n; i++) {
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d;
        }
        break;
    }
}

void st_file_free(st_file *f)
{
    if (f == NULL) return;
    for (size_t i = 0; i < f->count; i++) {
        free(f->tensors[i].name);
        free(f->tensors[i].data);
        free(f->tensors[i].i64);
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
    for (size_t i = 0; f && name && i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xbf;
        if (c < 0x80) len = 1;
        else if (c >= 0xc2 && c <= 0xdf) len = 2;
        else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else
            return false;
        if (len > n - i) return false;
        for (size_t k = 1; k < len; k++) {
            unsigned b = s[i + k];
            if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf)) return false;
        }
        i += len;
    }
    return true;
}

static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Sets *dup to a name that occurs twice in names[0..n) (NULL if none), in O(n log n). */
static dlcl_status find_duplicate(const char *const *names, size_t n, const char **dup)
{
    *dup = NULL;
    if (n < 2) return DLCL_OK;
    const char **sorted = malloc(n * sizeof *sorted);
    if (sorted == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    memcpy(sorted, names, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_str_ptr);
    for (size_t i = 1; i < n && *dup == NULL; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) *dup = sorted[i];
    free(sorted);
    return DLCL_OK;
}

/* ------------------------------------------------------------------ reading */

typedef struct range {
    uint64_t begin, end;
    const char *name;
} range;

static int cmp_range(const void *a, const void *b)
{
    const range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end; /* empty ranges first at the same offset */
}

static dlcl_status bad(const char *path, const char *name, const char *fmt, ...) DLCL__PRINTF(3, 4);
static dlcl_status bad(const char *path, const char *name, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (name) return dlcl__err(DLCL_ERR_CHECKPOINT, "%s: tensor '%.200s': %s", path, name, what);
    return dlcl__err(DLCL_ERR_CHECKPOINT, "%s: %s", path, what);
}

static bool get_u64(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= 0) || j->valuedouble > (double)ST_MAX_JSON_INT ||
        j->valuedouble != (double)(uint64_t)j->valuedouble)
        return false;
    *out = (uint64_t)j->valuedouble;
    return true;
}

/* Parses one tensor entry: fills t (name and shape, not data), its byte range and dtype. */
static dlcl_status parse_entry(const char *path, const cJSON *e, st_tensor *t, range *r, int *dt, uint64_t blob_len)
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
    if (*dt < 0) return bad(path, name, "dtype '%.32s' is not supported (F32, F16, BF16, F64, I64)", jd->valuestring);
    t->dtype = dtypes[*dt].as;
    int nd = cJSON_GetArraySize(js);
    if (nd > ST_MAX_DIMS) return bad(path, name, "%d dimensions, at most %d are supported", nd, ST_MAX_DIMS);
    uint64_t numel = 1;
    int d = 0;
    for (const cJSON *jx = js->child; jx; jx = jx->next, d++) {
        uint64_t x;
        if (!get_u64(jx, &x)) return bad(path, name, "shape entries must be non-negative integers");
        if (x != 0 && numel > UINT64_MAX / x) return bad(path, name, "shape product overflows");
        numel *= x;
        t->dims[d] = (int64_t)x;
    }
    t->ndim = nd;
    if (!get_u64(jo->child, &r->begin) || !get_u64(jo->child->next, &r->end) || r->end < r->begin ||
        r->end > blob_len)
        return bad(path, name, "data_offsets outside the data section of %llu bytes", (unsigned long long)blob_len);
    if (numel > UINT64_MAX / dtypes[*dt].size || numel * dtypes[*dt].size != r->end - r->begin)
        return bad(path, name, "shape and dtype do not match the size of its data_offsets range (%llu bytes)",
                   (unsigned long long)(r->end - r->begin));
    if ((t->name = strdup(name)) == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: out of host memory", path);
    r->name = t->name;
    return DLCL_OK;
}

static dlcl_status parse_meta(const char *path, const cJSON *m, st_file *f)
{
    if (f->meta_keys) return bad(path, NULL, "__metadata__ appears twice");
    if (!cJSON_IsObject(m)) return bad(path, NULL, "__metadata__ is not an object");
    size_t n = (size_t)cJSON_GetArraySize(m);
    f->meta_keys = calloc(n + 1, sizeof *f->meta_keys);
    f->meta_values = calloc(n + 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: out of host memory", path);
    for (const cJSON *e = m->child; e; e = e->next) {
        if (!cJSON_IsString(e)) return bad(path, NULL, "__metadata__ value of '%.64s' is not a string", e->string);
        f->meta_keys[f->meta_count] = strdup(e->string);
        f->meta_values[f->meta_count] = strdup(e->valuestring);
        f->meta_count++;
        if (!f->meta_keys[f->meta_count - 1] || !f->meta_values[f->meta_count - 1])
            return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: out of host memory", path);
    }
    return DLCL_OK;
}

/* Builds out->tensors (without data) and ranges from the parsed header. */
static dlcl_status parse_header(const char *path, const cJSON *root, st_file *out, range *ranges, int *dts,
                                uint64_t blob_len)
{
    dlcl_status st = DLCL_OK;
    for (const cJSON *e = root->child; e && st == DLCL_OK; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            st = parse_meta(path, e, out);
            continue;
        }
        size_t i = out->count;
        st = parse_entry(path, e, &out->tensors[i], &ranges[i], &dts[i], blob_len);
        if (out->tensors[i].name) out->count++;
    }
    if (st != DLCL_OK) return st;
    const char **names = malloc((out->count + 1) * sizeof *names);
    if (names == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: out of host memory", path);
    for (size_t i = 0; i < out->count; i++) names[i] = out->tensors[i].name;
    const char *dup;
    st = find_duplicate(names, out->count, &dup);
    free(names);
    if (st == DLCL_OK && dup) st = bad(path, dup, "appears twice in the header");
    return st;
}

/* The ranges must tile [0, blob_len) exactly: sorted, no overlap, no gap. */
static dlcl_status check_ranges(const char *path, const range *ranges, size_t n, uint64_t blob_len)
{
    range *sorted = malloc((n + 1) * sizeof *sorted);
    if (sorted == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: out of host memory", path);
    memcpy(sorted, ranges, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_range);
    dlcl_status st = DLCL_OK;
    uint64_t at = 0;
    for (size_t i = 0; i < n && st == DLCL_OK; i++) {
        if (sorted[i].begin < at)
            st = bad(path, sorted[i].name, "data overlaps another tensor (bytes %llu..%llu)",
                     (unsigned long long)sorted[i].begin, (unsigned long long)sorted[i].end);
        else if (sorted[i].begin > at)
            st = bad(path, sorted[i].name, "gap in the data section before this tensor (bytes %llu..%llu unused)",
                     (unsigned long long)at, (unsigned long long)sorted[i].begin);
        at = sorted[i].end;
    }
    if (st == DLCL_OK && at != blob_len)
        st = bad(path, NULL, "data section is longer than its tensors (%llu of %llu bytes used)", (unsigned long long)at,
                 (unsigned long long)blob_len);
    free(sorted);
    return st;
}

/* Reads each tensor's bytes from fp into a new buffer of its st_dtype: F32 and I64 straight
 * in, the other dtypes through a chunk, widened to float as it goes. */
static dlcl_status read_data(const char *path, FILE *fp, uint64_t data_start, st_file *out, const range *ranges,
                             const int *dts)
{
    unsigned char *chunk = malloc(ST_CHUNK);
    if (chunk == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: out of host memory", path);
    dlcl_status st = DLCL_OK;
    for (size_t i = 0; i < out->count && st == DLCL_OK; i++) {
        size_t esz = dtypes[dts[i]].size, numel = (size_t)((ranges[i].end - ranges[i].begin) / esz);
        st_tensor *t = &out->tensors[i];
        const size_t out_size = st_dtype_size[t->dtype];
        void *buf = malloc(numel ? numel * out_size : out_size);
        if (buf == NULL) {
            st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: tensor '%s': out of host memory (%zu %s values)", path,
                           t->name, numel, st_dtype_names[t->dtype]);
            break;
        }
        if (t->dtype == ST_I64) t->i64 = buf;
        else t->data = buf;
        if (numel == 0) continue;
        if (fseeko(fp, (off_t)(data_start + ranges[i].begin), SEEK_SET) != 0) {
            st = dlcl__err(DLCL_ERR_IO, "%s: tensor '%s': seek failed: %s", path, t->name, strerror(errno));
            break;
        }
        const bool as_is = dts[i] == DT_F32 || dts[i] == DT_I64;
        size_t per = as_is ? numel : ST_CHUNK / esz;
        for (size_t done = 0; done < numel && st == DLCL_OK; done += per) {
            size_t k = numel - done < per ? numel - done : per;
            void *dst = as_is ? (void *)((unsigned char *)buf + done * esz) : (void *)chunk;
            if (fread(dst, esz, k, fp) != k)
                st = dlcl__err(DLCL_ERR_IO, "%s: tensor '%s': %s", path, t->name,
                               ferror(fp) ? strerror(errno) : "unexpected end of file (did it shrink while read?)");
            else if (!as_is)
                convert(dts[i], chunk, t->data + done, k);
        }
    }
    free(chunk);
    return st;
}

dlcl_status st_read(const char *path, st_file *out)
{
    if (out == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "st_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (path == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "st_read: path is NULL");
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return dlcl__err(errno == ENOENT ? DLCL_ERR_NOT_FOUND : DLCL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *hdr = NULL;
    cJSON *root = NULL;
    range *ranges = NULL;
    int *dts = NULL;
    dlcl_status st = DLCL_OK;
    struct stat sb;
    unsigned char lenb[8];
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = dlcl__err(DLCL_ERR_IO, "%s: not a regular file", path);
        goto done;
    }
    uint64_t fsize = (uint64_t)sb.st_size;
    if (fsize < 8 || fread(lenb, 1, 8, fp) != 8) {
        st = bad(path, NULL, "shorter than the 8-byte header length (%llu bytes)", (unsigned long long)fsize);
        goto done;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenb[i];
    if (hlen > fsize - 8 || hlen > ST_MAX_HEADER) {
        st = bad(path, NULL, "header length %llu does not fit in the %llu-byte file (limit %llu)",
                 (unsigned long long)hlen, (unsigned long long)fsize, (unsigned long long)ST_MAX_HEADER);
        goto done;
    }
    uint64_t blob_len = fsize - 8 - hlen;
    if (blob_len > SIZE_MAX / 4) {
        st = bad(path, NULL, "data section of %llu bytes is too large for this host", (unsigned long long)blob_len);
        goto done;
    }
    if ((hdr = malloc((size_t)hlen + 1)) == NULL) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: out of host memory", path);
        goto done;
    }
    if (fread(hdr, 1, (size_t)hlen, fp) != hlen) {
        st = dlcl__err(DLCL_ERR_IO, "%s: cannot read the header: %s", path, ferror(fp) ? strerror(errno) : "short read");
        goto done;
    }
    hdr[hlen] = '\0';
    if (memchr(hdr, '\0', (size_t)hlen) || !utf8_valid((const unsigned char *)hdr, (size_t)hlen)) {
        st = bad(path, NULL, "header is not valid UTF-8 text");
        goto done;
    }
    /* length hlen + 1 takes in the NUL, which cJSON needs to see to refuse trailing text */
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen + 1, &end, 1);
    if (root == NULL) {
        st = bad(path, NULL, "header is not a JSON object (parse error near byte %zu of %llu)",
                 end ? (size_t)(end - hdr) : (size_t)0, (unsigned long long)hlen);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        st = bad(path, NULL, "header is not a JSON object");
        goto done;
    }
    size_t n = (size_t)cJSON_GetArraySize(root);
    out->tensors = calloc(n + 1, sizeof *out->tensors);
    ranges = calloc(n + 1, sizeof *ranges);
    dts = calloc(n + 1, sizeof *dts);
    if (!out->tensors || !ranges || !dts) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: out of host memory", path);
        goto done;
    }
    if ((st = parse_header(path, root, out, ranges, dts, blob_len)) != DLCL_OK) goto done;
    if ((st = check_ranges(path, ranges, out->count, blob_len)) != DLCL_OK) goto done;
    st = read_data(path, fp, 8 + hlen, out, ranges, dts);
done:
    fclose(fp);
    cJSON_Delete(root);
    free(hdr);
    free(ranges);
    free(dts);
    if (st != DLCL_OK) st_file_free(out);
    return st;
}

/* ------------------------------------------------------------------ writing */

static cJSON *json_u64(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(buf); /* exact integer text, never 1e+15 */
}

/* The JSON header, padded with spaces so that the data starts 8-byte aligned. */
static char *build_header(const st_tensor *t, const uint64_t *bytes, size_t count, const char *const *mk,
                          const char *const *mv, size_t mc, size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok && mc > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        ok = m != NULL;
        for (size_t i = 0; ok && i < mc; i++) ok = cJSON_AddStringToObject(m, mk[i], mv[i]) != NULL;
    }
    uint64_t off = 0;
    for (size_t i = 0; ok && i < count; i++) {
        cJSON *e = cJSON_AddObjectToObject(root, t[i].name), *shape = NULL, *offs = NULL;
        ok = e && cJSON_AddStringToObject(e, "dtype", st_dtype_names[t[i].dtype]) &&
             (shape = cJSON_AddArrayToObject(e, "shape"));
        for (int d = 0; ok && d < t[i].ndim; d++) ok = cJSON_AddItemToArray(shape, json_u64((uint64_t)t[i].dims[d]));
        ok = ok && (offs = cJSON_AddArrayToObject(e, "data_offsets")) && cJSON_AddItemToArray(offs, json_u64(off)) &&
             cJSON_AddItemToArray(offs, json_u64(off + bytes[i]));
        off += bytes[i];
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

/* Checks the arguments of st_write and fills bytes[i] with the size of tensor i. */
static dlcl_status check_write_args(const st_tensor *tensors, size_t count, const char *const *mk,
                                    const char *const *mv, size_t mc, uint64_t *bytes)
{
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        const st_tensor *t = &tensors[i];
        if (t->name == NULL || !utf8_valid((const unsigned char *)t->name, strlen(t->name)) ||
            strcmp(t->name, "__metadata__") == 0)
            return dlcl__err(DLCL_ERR_INVALID_ARG, "st_write: tensor %zu has no name, a reserved one or one that is "
                             "not UTF-8", i);
        if ((unsigned)t->dtype >= ST_DTYPE_COUNT)
            return dlcl__err(DLCL_ERR_INVALID_ARG, "st_write: tensor '%s' has dtype %d (0..%d)", t->name,
                             (int)t->dtype, ST_DTYPE_COUNT - 1);
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS)
            return dlcl__err(DLCL_ERR_INVALID_ARG, "st_write: tensor '%s' has rank %d (0..%d)", t->name, t->ndim,
                             ST_MAX_DIMS);
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->dims[d] < 0)
                return dlcl__err(DLCL_ERR_INVALID_ARG, "st_write: tensor '%s' has a negative dimension", t->name);
            uint64_t x = (uint64_t)t->dims[d];
            if (x != 0 && numel > UINT64_MAX / x) numel = UINT64_MAX;
            else numel *= x;
        }
        const size_t esz = st_dtype_size[t->dtype];
        if (numel > (ST_MAX_JSON_INT - total) / esz || numel > SIZE_MAX / esz)
            return dlcl__err(DLCL_ERR_INVALID_ARG, "st_write: tensor '%s' makes the file too large", t->name);
        if (numel > 0 && (t->dtype == ST_I64 ? (const void *)t->i64 : (const void *)t->data) == NULL)
            return dlcl__err(DLCL_ERR_INVALID_ARG, "st_write: tensor '%s' has no data (%s, %s is NULL)", t->name,
                             st_dtype_names[t->dtype], t->dtype == ST_I64 ? "i64" : "data");
        bytes[i] = numel * esz;
        total += bytes[i];
    }
    for (size_t i = 0; i < mc; i++)
        if (mk[i] == NULL || mv[i] == NULL || !utf8_valid((const unsigned char *)mk[i], strlen(mk[i])) ||
            !utf8_valid((const unsigned char *)mv[i], strlen(mv[i])))
            return dlcl__err(DLCL_ERR_INVALID_ARG, "st_write: metadata entry %zu is NULL or not UTF-8", i);
    return DLCL_OK;
}

/* Makes the rename durable; best effort, as some file systems refuse fsync on a directory. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (dir == NULL) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

/* Fault injection for the crash test (test/kill_resume.py): with DLCL_FAULT_KILL_IN_WRITE=N
 * in the environment, the N-th st_write of the process kills the process (SIGKILL, as an
 * OOM killer or a power cut would) halfway through writing its temporary file. */
static void fault_kill_mid_write(void)
{
    static int calls;
    const char *v = getenv("DLCL_FAULT_KILL_IN_WRITE");
    if (v != NULL && ++calls == atoi(v)) raise(SIGKILL);
}

dlcl_status st_write(const char *path, const st_tensor *tensors, size_t count, const char *const *meta_keys,
                     const char *const *meta_values, size_t meta_count)
{
    if (path == NULL || (count > 0 && tensors == NULL) || (meta_count > 0 && (!meta_keys || !meta_values)))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "st_write: NULL argument");
    uint64_t *bytes = malloc((count + 1) * sizeof *bytes);
    const char **names = calloc(count + meta_count + 1, sizeof *names);
    char *hdr = NULL, *tmp = NULL;
    int fd = -1;
    bool tmp_exists = false;
    const char *dup = NULL;
    size_t hlen = 0;
    dlcl_status st = DLCL_OK;
    if (bytes == NULL || names == NULL) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    if ((st = check_write_args(tensors, count, meta_keys, meta_values, meta_count, bytes)) != DLCL_OK) goto done;
    for (size_t i = 0; i < count; i++) names[i] = tensors[i].name;
    if ((st = find_duplicate(names, count, &dup)) != DLCL_OK) goto done;
    if (dup == NULL && meta_count > 0) {
        memcpy(names, meta_keys, meta_count * sizeof *names);
        if ((st = find_duplicate(names, meta_count, &dup)) != DLCL_OK) goto done;
    }
    if (dup) {
        st = dlcl__err(DLCL_ERR_INVALID_ARG, "st_write: %s: name '%s' is given twice", path, dup);
        goto done;
    }
    if ((hdr = build_header(tensors, bytes, count, meta_keys, meta_values, meta_count, &hlen)) == NULL) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "st_write: %s: cannot build the header", path);
        goto done;
    }
    size_t plen = strlen(path) + 32;
    if ((tmp = malloc(plen)) == NULL) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        st = dlcl__err(DLCL_ERR_IO, "%s: cannot create the temporary file %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    tmp_exists = true;
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    bool ok = dlcl__write_all(fd, lenb, 8) == 0 && dlcl__write_all(fd, hdr, hlen) == 0;
    for (size_t i = 0; ok && i < count; i++) {
        if (i == count / 2) fault_kill_mid_write();
        const void *src = tensors[i].dtype == ST_I64 ? (const void *)tensors[i].i64 : (const void *)tensors[i].data;
        ok = dlcl__write_all(fd, src, (size_t)bytes[i]) == 0;
    }
    ok = ok && fsync(fd) == 0;
    if (!ok) {
        st = dlcl__err(DLCL_ERR_IO, "%s: cannot write %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    int rc = close(fd);
    fd = -1;
    if (rc != 0 || rename(tmp, path) != 0) {
        st = dlcl__err(DLCL_ERR_IO, "%s: cannot %s %s: %s", path, rc ? "close" : "rename", tmp, strerror(errno));
        goto done;
    }
    tmp_exists = false;
    sync_parent_dir(path);
done:
    if (fd >= 0) close(fd);
    if (tmp_exists) unlink(tmp);
    free(tmp);
    free(hdr);
    free(names);
    free(bytes);
    return st;
}
