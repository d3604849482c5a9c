/* safetensors reader and writer (lib/io/safetensors.c): round trips (float32 and int64),
 * files laid out the way Python's safetensors writes them with F16/BF16/F64 data, a table of
 * malformed files each with its status and message, atomic writes, and interop with PyTorch
 * through test/torch_interop_st.py. No OpenCL. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/io/safetensors.h"
#include "test.h"

/* ------------------------------------------------------------------ helpers */

static const char *scratch_dir(void)
{
    static const char *dir;
    if (dir == NULL) dir = t_tmpdir(0);
    return dir;
}

static const char *scratch_path(const char *name)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", scratch_dir(), name);
    return path;
}

static void put_le(unsigned char *p, uint64_t v, int nbytes)
{
    for (int i = 0; i < nbytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* A safetensors file: the u64 header length (hlen, or strlen(header) when hlen is 0), the
 * header text, then data_len bytes of data. Returns the total length. */
static size_t st_bytes(unsigned char *buf, const char *header, uint64_t hlen, const void *data, size_t data_len)
{
    size_t n = strlen(header);
    put_le(buf, hlen ? hlen : n, 8);
    memcpy(buf + 8, header, n);
    if (data_len) memcpy(buf + 8 + n, data, data_len);
    return 8 + n + data_len;
}

static int count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static bool same_float(float a, float b) { return (isnan(a) && isnan(b)) || (a == b && !signbit(a) == !signbit(b)); }

static size_t numel_of(const st_tensor *t)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->dims[d];
    return n;
}

/* ------------------------------------------------------------------ round trip */

static void st_round_trip_keeps_odd_shapes_order_and_metadata(void)
{
    uint64_t rng = t_seed();
    static float w[3 * 1 * 3 * 3], fc[7 * 13], odd[13 * 3], deep[16];
    float bias[3] = {-0.0f, INFINITY, 1e-45f}, scalar[1] = {NAN};
    t_fill_uniform(&rng, w, T_COUNT(w), -1, 1);
    t_fill_uniform(&rng, fc, T_COUNT(fc), -3, 3);
    t_fill_uniform(&rng, odd, T_COUNT(odd), -1e-3f, 1e-3f);
    t_fill_uniform(&rng, deep, T_COUNT(deep), 0, 100);
    const st_tensor t[] = {
        {"conv1.weight", 4, {3, 1, 3, 3}, w, ST_F32, NULL},
        {"conv1.bias", 1, {3}, bias, ST_F32, NULL},
        {"fc.weight", 2, {7, 13}, fc, ST_F32, NULL},
        {"odd", 5, {1, 1, 13, 1, 3}, odd, ST_F32, NULL},
        {"scalar", 0, {0}, scalar, ST_F32, NULL},
        {"empty", 2, {0, 5}, NULL, ST_F32, NULL},
        {"deep", 8, {2, 1, 2, 1, 2, 1, 2, 1}, deep, ST_F32, NULL},
    };
    const size_t nt = T_COUNT(t);
    const char *keys[] = {"format", "epochs_done", "note", "empty"};
    const char *vals[] = {"pt", "3", "quote \" backslash \\ newline \n tab \t \xc2\xb5 \xe2\x9c\x93", ""};
    const char *path = scratch_path("round.safetensors");
    T_OK(st_write(path, t, nt, keys, vals, T_COUNT(keys)));

    /* layout: header padded with spaces to a multiple of 8, data in the given order */
    static unsigned char raw[8192];
    FILE *fp = fopen(path, "rb");
    T_CHECK(fp != NULL, "cannot open %s", path);
    size_t len = fread(raw, 1, sizeof raw, fp);
    fclose(fp);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | raw[i];
    size_t data_bytes = sizeof w + sizeof bias + sizeof fc + sizeof odd + sizeof scalar + sizeof deep;
    T_CHECK(hlen % 8 == 0 && len == 8 + hlen + data_bytes, "file of %zu bytes, header %llu, data %zu", len,
            (unsigned long long)hlen, data_bytes);
    size_t close_brace = (size_t)hlen;
    while (close_brace > 0 && raw[8 + close_brace - 1] == ' ') close_brace--;
    T_CHECK(raw[8] == '{' && close_brace > 0 && raw[8 + close_brace - 1] == '}', "header is not '{...}' + spaces");
    T_CHECK(memcmp(raw + 8 + hlen, w, sizeof w) == 0 && memcmp(raw + 8 + hlen + sizeof w, bias, sizeof bias) == 0,
            "data blob is not in the given order");

    st_file f;
    T_OK(st_read(path, &f));
    char why[256] = "";
    if (f.count != nt) snprintf(why, sizeof why, "%zu tensors, want %zu", f.count, nt);
    for (size_t i = 0; !why[0] && i < nt; i++) {
        const st_tensor *r = &f.tensors[i];
        bool ok = strcmp(r->name, t[i].name) == 0 && r->ndim == t[i].ndim && st_find(&f, t[i].name) == r;
        for (int d = 0; ok && d < r->ndim; d++) ok = r->dims[d] == t[i].dims[d];
        ok = ok && r->data != NULL && (numel_of(r) == 0 || memcmp(r->data, t[i].data, numel_of(r) * 4) == 0);
        if (!ok) snprintf(why, sizeof why, "tensor %zu ('%s') differs", i, t[i].name);
    }
    if (!why[0] && f.meta_count != T_COUNT(keys)) snprintf(why, sizeof why, "%zu metadata entries", f.meta_count);
    for (size_t i = 0; !why[0] && i < T_COUNT(keys); i++)
        if (strcmp(f.meta_keys[i], keys[i]) || strcmp(f.meta_values[i], vals[i]))
            snprintf(why, sizeof why, "metadata %zu: '%s'='%s'", i, f.meta_keys[i], f.meta_values[i]);
    if (!why[0] && st_find(&f, "absent") != NULL) snprintf(why, sizeof why, "st_find found an absent name");
    st_file_free(&f);
    st_file_free(&f); /* a freed file is empty: freeing it again is a no-op */
    st_file_free(NULL);
    T_CHECK(!why[0], "seed %llu: %s", (unsigned long long)t_seed(), why);
}

/* F32 and I64 tensors mixed: an I64 scalar after an odd number of floats (its data 4-byte
 * aligned in the file), an empty I64, extreme int64 values; each read back with its dtype,
 * its data in i64 or data and the other pointer NULL. */
static void st_round_trip_mixes_f32_and_i64(void)
{
    float w[3] = {0.5f, -1, 2}, b[2] = {-0.0f, 7};
    int64_t nbt = 123, steps[4] = {0, -1, INT64_MAX, INT64_MIN};
    const st_tensor t[] = {
        {"bn.weight", 1, {3}, w, ST_F32, NULL},
        {"bn.num_batches_tracked", 0, {0}, NULL, ST_I64, &nbt},
        {"steps", 2, {2, 2}, NULL, ST_I64, steps},
        {"none", 2, {3, 0}, NULL, ST_I64, NULL},
        {"bn.bias", 1, {2}, b, ST_F32, NULL},
    };
    const char *path = scratch_path("mixed.safetensors");
    T_OK(st_write(path, t, T_COUNT(t), NULL, NULL, 0));
    static unsigned char raw[4096];
    FILE *fp = fopen(path, "rb");
    T_CHECK(fp != NULL, "cannot open %s", path);
    size_t len = fread(raw, 1, sizeof raw - 1, fp);
    fclose(fp);
    raw[len] = 0;
    T_CHECK(len > 8 && strstr((const char *)raw + 8, "\"bn.num_batches_tracked\":{\"dtype\":\"I64\"") != NULL,
            "the header does not name I64: %.200s", (const char *)raw + 8);
    st_file f;
    T_OK(st_read(path, &f));
    char why[256] = "";
    if (f.count != T_COUNT(t)) snprintf(why, sizeof why, "%zu tensors", f.count);
    for (size_t i = 0; !why[0] && i < T_COUNT(t); i++) {
        const st_tensor *r = st_find(&f, t[i].name);
        bool ok = r && r->dtype == t[i].dtype && r->ndim == t[i].ndim;
        for (int d = 0; ok && d < r->ndim; d++) ok = r->dims[d] == t[i].dims[d];
        if (ok && t[i].dtype == ST_I64) /* an empty tensor ("none") has nothing to compare */
            ok = r->data == NULL && r->i64 != NULL && (numel_of(r) == 0 || memcmp(r->i64, t[i].i64, numel_of(r) * 8) == 0);
        else if (ok)
            ok = r->i64 == NULL && r->data != NULL && memcmp(r->data, t[i].data, numel_of(r) * 4) == 0;
        if (!ok) snprintf(why, sizeof why, "tensor '%s' differs (dtype %s)", t[i].name, st_dtype_names[t[i].dtype]);
    }
    st_file_free(&f);
    T_CHECK(!why[0], "%s", why);
}

/* ------------------------------------------------------------------ other dtypes */

/* A file as Python writes it (json.dumps spacing, __metadata__ first, header padded with
 * spaces), its data blob in a different order than its header, and an empty tensor sharing
 * its offset with a non-empty one. */
static void st_reads_python_layout_and_widens_f16_bf16_f64(void)
{
    static const uint16_t h[9] = {0x3c00, 0xc500, 0x0001, 0x03ff, 0x7bff, 0x8000, 0x7c00, 0x3555, 0x7e00};
    const float hw[9] = {1, -5, ldexpf(1, -24), 1023 * ldexpf(1, -24), 65504, -0.0f, INFINITY, 0.333251953125f, NAN};
    static const uint16_t bf[5] = {0x3f80, 0xc049, 0x0001, 0x7f80, 0x4780};
    const float bw[5] = {1, -3.140625f, ldexpf(1, -133), INFINITY, 65536};
    const double dv[4] = {1.0 / 3, -2.5, 1e-300, 3.4028234663852886e38};
    const float dw[4] = {(float)(1.0 / 3), -2.5f, 0.0f, 3.4028234663852886e38f};
    const float fv[3] = {1.5f, -0.0f, 7};

    /* blob order: F64 (32 bytes), F32 (12), BF16 (10), F16 (18) */
    unsigned char data[32 + 12 + 10 + 18];
    for (int i = 0; i < 4; i++) {
        uint64_t u;
        memcpy(&u, &dv[i], 8);
        put_le(data + 8 * i, u, 8);
    }
    for (int i = 0; i < 3; i++) {
        uint32_t u;
        memcpy(&u, &fv[i], 4);
        put_le(data + 32 + 4 * i, u, 4);
    }
    for (int i = 0; i < 5; i++) put_le(data + 44 + 2 * i, bf[i], 2);
    for (int i = 0; i < 9; i++) put_le(data + 54 + 2 * i, h[i], 2);
    char header[1024];
    int n = snprintf(header, sizeof header,
                     "{\"__metadata__\": {\"format\": \"pt\"}, "
                     "\"layer.f16\": {\"dtype\": \"F16\", \"shape\": [3, 3], \"data_offsets\": [54, 72]}, "
                     "\"layer.bf16\": {\"dtype\": \"BF16\", \"shape\": [5], \"data_offsets\": [44, 54]}, "
                     "\"layer.zero\": {\"dtype\": \"F16\", \"shape\": [0], \"data_offsets\": [44, 44]}, "
                     "\"layer.f64\": {\"dtype\": \"F64\", \"shape\": [2, 1, 2], \"data_offsets\": [0, 32]}, "
                     "\"layer.f32\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [32, 44]}}");
    while (n % 8) header[n++] = ' ';
    header[n] = '\0';
    static unsigned char buf[2048];
    size_t len = st_bytes(buf, header, 0, data, sizeof data);
    const char *path = scratch_path("python_layout.safetensors");
    T_CHECK(t_write_file(path, buf, len), "cannot write %s", path);

    st_file f;
    T_OK(st_read(path, &f));
    const st_tensor *th = st_find(&f, "layer.f16"), *tb = st_find(&f, "layer.bf16"), *td = st_find(&f, "layer.f64"),
                    *tf = st_find(&f, "layer.f32"), *tz = st_find(&f, "layer.zero");
    char why[256] = "";
    if (!th || !tb || !td || !tf || !tz || f.count != 5) snprintf(why, sizeof why, "tensors missing");
    else if (th->ndim != 2 || th->dims[0] != 3 || td->ndim != 3 || td->dims[2] != 2 || tz->ndim != 1 || tz->dims[0])
        snprintf(why, sizeof why, "shapes wrong");
    else if (f.meta_count != 1 || strcmp(f.meta_keys[0], "format") || strcmp(f.meta_values[0], "pt"))
        snprintf(why, sizeof why, "metadata wrong");
    for (int i = 0; !why[0] && i < 9; i++)
        if (!same_float(th->data[i], hw[i]))
            snprintf(why, sizeof why, "F16 [%d] 0x%04x: got %.9g want %.9g", i, h[i], th->data[i], hw[i]);
    for (int i = 0; !why[0] && i < 5; i++)
        if (!same_float(tb->data[i], bw[i]))
            snprintf(why, sizeof why, "BF16 [%d] 0x%04x: got %.9g want %.9g", i, bf[i], tb->data[i], bw[i]);
    for (int i = 0; !why[0] && i < 4; i++)
        if (!same_float(td->data[i], dw[i]))
            snprintf(why, sizeof why, "F64 [%d]: got %.9g want %.9g", i, td->data[i], dw[i]);
    for (int i = 0; !why[0] && i < 3; i++)
        if (!same_float(tf->data[i], fv[i])) snprintf(why, sizeof why, "F32 [%d]: got %.9g", i, tf->data[i]);
    st_file_free(&f);
    T_CHECK(!why[0], "%s", why);
}

/* ------------------------------------------------------------------ malformed files */

static void st_malformed_files_are_refused_with_reason(void)
{
    static const unsigned char zeros[64];
    static const struct {
        const char *label, *header;
        uint64_t hlen;   /* declared header length; 0: the header's own length */
        size_t data_len; /* zero bytes after the header */
        size_t cut;      /* when nonzero, the file is cut to this many bytes */
        dlcl_status status;
        const char *msg, *msg2;
    } cases[] = {
        {"shorter than 8 bytes", "{}", 0, 0, 5, DLCL_ERR_CHECKPOINT, "shorter than the 8-byte header length", NULL},
        {"empty file", "", 0, 0, 0, DLCL_ERR_CHECKPOINT, "shorter than the 8-byte", NULL},
        {"header length larger than the file", "{}", 100, 0, 0, DLCL_ERR_CHECKPOINT, "header length 100 does not fit",
         NULL},
        {"header length 2^62 in a tiny file", "{}", (uint64_t)1 << 62, 0, 0, DLCL_ERR_CHECKPOINT,
         "header length 4611686018427387904 does not fit", NULL},
        {"header not JSON", "not json at all", 0, 0, 0, DLCL_ERR_CHECKPOINT, "header is not a JSON object", NULL},
        {"truncated JSON", "{\"w\": {\"dtype\": ", 0, 0, 0, DLCL_ERR_CHECKPOINT, "not a JSON object", NULL},
        {"text after the JSON", "{} x", 0, 0, 0, DLCL_ERR_CHECKPOINT, "not a JSON object", NULL},
        {"header is an array", "[1, 2]   ", 0, 0, 0, DLCL_ERR_CHECKPOINT, "not a JSON object", NULL},
        {"header not UTF-8", "{\"w\xff\": 1}", 0, 0, 0, DLCL_ERR_CHECKPOINT, "not valid UTF-8", NULL},
        {"entry not an object", "{\"w\": 3}", 0, 0, 0, DLCL_ERR_CHECKPOINT, "tensor 'w': entry is not an object", NULL},
        {"entry without dtype", "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, 0, DLCL_ERR_CHECKPOINT,
         "tensor 'w': needs dtype", NULL},
        {"entry without data_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 0, 8, 0, DLCL_ERR_CHECKPOINT,
         "tensor 'w': needs dtype", NULL},
        {"unknown dtype I8", "{\"conv1.weight\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 0, 2, 0,
         DLCL_ERR_CHECKPOINT, "tensor 'conv1.weight'", "dtype 'I8' is not supported"},
        {"shape and offsets disagree", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 0, 8, 0,
         DLCL_ERR_CHECKPOINT, "tensor 'w': shape and dtype do not match", NULL},
        {"F16 counted as F32", "{\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, 0,
         DLCL_ERR_CHECKPOINT, "tensor 'w': shape and dtype do not match", NULL},
        {"I64 scalar in 4 bytes",
         "{\"bn.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,4]}}", 0, 4, 0,
         DLCL_ERR_CHECKPOINT, "tensor 'bn.num_batches_tracked': shape and dtype do not match", "(4 bytes)"},
        {"I64 counted as F32", "{\"steps\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[0,12]}}", 0, 12,
         0, DLCL_ERR_CHECKPOINT, "tensor 'steps': shape and dtype do not match", "(12 bytes)"},
        {"I64 beside F32 with one byte short",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"n\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[4,11]}}",
         0, 11, 0, DLCL_ERR_CHECKPOINT, "tensor 'n': shape and dtype do not match", NULL},
        {"I64 past the end", "{\"n\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 0, 8, 0,
         DLCL_ERR_CHECKPOINT, "tensor 'n': data_offsets outside the data section of 8 bytes", NULL},
        {"offsets past the end", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 4, 0,
         DLCL_ERR_CHECKPOINT, "tensor 'w': data_offsets outside the data section of 4 bytes", NULL},
        {"offsets reversed", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 0, 8, 0,
         DLCL_ERR_CHECKPOINT, "tensor 'w': data_offsets outside", NULL},
        {"offset not a number", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}}", 0, 8, 0,
         DLCL_ERR_CHECKPOINT, "tensor 'w': data_offsets outside", NULL},
        {"overlapping tensors",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         0, 12, 0, DLCL_ERR_CHECKPOINT, "tensor 'b': data overlaps another tensor", NULL},
        {"same range twice",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         0, 8, 0, DLCL_ERR_CHECKPOINT, "data overlaps another tensor", NULL},
        {"negative dimension", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 0, 8, 0,
         DLCL_ERR_CHECKPOINT, "tensor 'w': shape entries must be non-negative integers", NULL},
        {"fractional dimension", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 0, 8, 0,
         DLCL_ERR_CHECKPOINT, "non-negative integers", NULL},
        {"shape product overflow",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 0, 8, 0,
         DLCL_ERR_CHECKPOINT, "tensor 'w': shape product overflows", NULL},
        {"size overflow after the dtype",
         "{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,1073741824],\"data_offsets\":[0,8]}}", 0, 8, 0,
         DLCL_ERR_CHECKPOINT, "tensor 'w': shape and dtype do not match", NULL},
        {"nine dimensions", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 0, 4,
         0, DLCL_ERR_CHECKPOINT, "tensor 'w': 9 dimensions, at most 8", NULL},
        {"gap before a tensor", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 0, 8, 0,
         DLCL_ERR_CHECKPOINT, "tensor 'w': gap in the data section", NULL},
        {"data longer than the tensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 8, 0,
         DLCL_ERR_CHECKPOINT, "data section is longer than its tensors", NULL},
        {"name twice",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         0, 8, 0, DLCL_ERR_CHECKPOINT, "tensor 'w': appears twice", NULL},
        {"metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, 0, 0, DLCL_ERR_CHECKPOINT,
         "__metadata__ appears twice", NULL},
        {"metadata value not a string", "{\"__metadata__\":{\"epochs\":3}}", 0, 0, 0, DLCL_ERR_CHECKPOINT,
         "value of 'epochs' is not a string", NULL},
        {"metadata not an object", "{\"__metadata__\":\"pt\"}", 0, 0, 0, DLCL_ERR_CHECKPOINT,
         "__metadata__ is not an object", NULL},
    };
    static unsigned char buf[1024];
    const char *path = scratch_path("bad.safetensors");
    for (size_t i = 0; i < T_COUNT(cases); i++) {
        size_t len = st_bytes(buf, cases[i].header, cases[i].hlen, zeros, cases[i].data_len);
        if (cases[i].cut || !cases[i].header[0]) len = cases[i].cut;
        T_CHECK(t_write_file(path, buf, len), "cannot write %s", path);
        st_file f;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        dlcl_status s = st_read(path, &f);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6;
        const char *m = dlcl_last_error();
        T_CHECK(s == cases[i].status && strstr(m, cases[i].msg) && (!cases[i].msg2 || strstr(m, cases[i].msg2)) &&
                    strstr(m, path),
                "case %zu (%s): want %s with \"%s\", got %s: %s", i, cases[i].label, dlcl_status_str(cases[i].status),
                cases[i].msg, dlcl_status_str(s), m);
        T_CHECK(f.count == 0 && f.tensors == NULL && f.meta_count == 0, "case %zu (%s): output not emptied", i,
                cases[i].label);
        T_CHECK(ms < 500, "case %zu (%s): took %.0f ms", i, cases[i].label, ms);
        st_file_free(&f);
    }
    st_file f;
    T_ERR(st_read(scratch_path("no-such-file.safetensors"), &f), DLCL_ERR_NOT_FOUND, "no-such-file.safetensors");
    T_ERR(st_read(scratch_dir(), &f), DLCL_ERR_IO, "not a regular file");
}

/* A header length past the 100 MiB limit is refused before anything is allocated or read,
 * even where the file is large enough to hold it (a sparse file here). */
static void st_header_over_100mib_is_refused_without_reading(void)
{
    const char *path = scratch_path("sparse.safetensors");
    unsigned char head[16];
    put_le(head, (101u << 20), 8);
    memcpy(head + 8, "{}      ", 8);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    T_CHECK(fd >= 0, "cannot create %s", path);
    bool ok = write(fd, head, sizeof head) == (ssize_t)sizeof head && ftruncate(fd, (off_t)(102u << 20)) == 0;
    close(fd);
    T_CHECK(ok, "cannot make the sparse file");
    st_file f;
    T_ERR(st_read(path, &f), DLCL_ERR_CHECKPOINT, "header length 105906176 does not fit");
    T_ERR(st_read(path, &f), DLCL_ERR_CHECKPOINT, "limit 104857600");
    unlink(path);
}

/* ------------------------------------------------------------------ atomic writes */

static void st_write_failure_leaves_no_temp_file_and_old_file_intact(void)
{
    const char *dir = t_tmpdir(1);
    T_CHECK(dir != NULL, "no scratch directory");
    float a[3] = {1, 2, 3};
    st_tensor t = {"a", 1, {3}, a, ST_F32, NULL};
    char path[1024];

    /* (a) the directory does not exist: nothing is created anywhere */
    snprintf(path, sizeof path, "%s/missing/w.safetensors", dir);
    T_ERR(st_write(path, &t, 1, NULL, NULL, 0), DLCL_ERR_IO, "missing/w.safetensors");
    T_CHECK(count_dir_entries(dir) == 0, "%d entries left in %s", count_dir_entries(dir), dir);

    /* (b) the rename fails (the target is a non-empty directory): the temporary file is
     * removed and the directory is untouched */
    snprintf(path, sizeof path, "%s/target", dir);
    T_CHECK(mkdir(path, 0755) == 0, "mkdir %s: %s", path, strerror(errno));
    char keep[1100];
    snprintf(keep, sizeof keep, "%s/keep", path);
    T_CHECK(t_write_file(keep, "x", 1), "cannot write %s", keep);
    T_ERR(st_write(path, &t, 1, NULL, NULL, 0), DLCL_ERR_IO, "rename");
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    T_CHECK(access(tmp, F_OK) != 0 && count_dir_entries(dir) == 1 && count_dir_entries(path) == 1,
            "temporary file left behind (%d entries in %s)", count_dir_entries(dir), dir);

    /* (c) bad arguments: the existing file keeps its contents */
    snprintf(path, sizeof path, "%s/good.safetensors", dir);
    T_OK(st_write(path, &t, 1, NULL, NULL, 0));
    st_tensor no_data = {"a", 1, {3}, NULL, ST_F32, NULL};
    T_ERR(st_write(path, &no_data, 1, NULL, NULL, 0), DLCL_ERR_INVALID_ARG, "tensor 'a' has no data");
    st_file f;
    T_OK(st_read(path, &f));
    bool ok = f.count == 1 && f.tensors[0].dims[0] == 3 && memcmp(f.tensors[0].data, a, sizeof a) == 0;
    st_file_free(&f);
    T_CHECK(ok && count_dir_entries(dir) == 2, "old file changed or temporary file left behind");
}

static void st_overwrite_replaces_the_file_atomically(void)
{
    const char *dir = t_tmpdir(2);
    T_CHECK(dir != NULL, "no scratch directory");
    char path[1024];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    static float big[101];
    float small[3] = {-1, 0.5f, 9};
    for (int i = 0; i < 101; i++) big[i] = (float)i;
    st_tensor old_t[2] = {{"a", 2, {1, 101}, big, ST_F32, NULL}, {"b", 1, {7}, big, ST_F32, NULL}};
    const char *k[] = {"v"}, *v1[] = {"1"}, *v2[] = {"2"};
    T_OK(st_write(path, old_t, 2, k, v1, 1));
    struct stat before;
    T_CHECK(stat(path, &before) == 0, "stat %s", path);
    /* a reader that opened the old file keeps seeing it whole: the new file is renamed over
     * it, never written into it */
    int fd = open(path, O_RDONLY);
    T_CHECK(fd >= 0, "open %s", path);
    st_tensor new_t = {"c", 1, {3}, small, ST_F32, NULL};
    dlcl_status s = st_write(path, &new_t, 1, k, v2, 1);
    struct stat held, after;
    bool stat_ok = fstat(fd, &held) == 0 && stat(path, &after) == 0;
    close(fd);
    T_OK(s);
    T_CHECK(stat_ok && held.st_size == before.st_size && after.st_ino != before.st_ino,
            "old file changed in place (sizes %lld -> %lld)", (long long)before.st_size, (long long)held.st_size);
    st_file f;
    T_OK(st_read(path, &f));
    bool ok = f.count == 1 && st_find(&f, "a") == NULL && st_find(&f, "c") &&
              memcmp(st_find(&f, "c")->data, small, sizeof small) == 0 && f.meta_count == 1 &&
              strcmp(f.meta_values[0], "2") == 0;
    st_file_free(&f);
    T_CHECK(ok, "new contents not read back");
    T_CHECK(count_dir_entries(dir) == 1, "%d entries in %s: temporary file left behind", count_dir_entries(dir), dir);
}

static void st_write_rejects_bad_arguments(void)
{
    const char *dir = t_tmpdir(3);
    T_CHECK(dir != NULL, "no scratch directory");
    char path[1024];
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    float x[4] = {0};
    st_tensor two[2] = {{"w", 1, {4}, x, ST_F32, NULL}, {"w", 1, {4}, x, ST_F32, NULL}};
    T_ERR(st_write(path, two, 2, NULL, NULL, 0), DLCL_ERR_INVALID_ARG, "name 'w' is given twice");
    const char *k[] = {"a", "a"}, *v[] = {"1", "2"};
    T_ERR(st_write(path, two, 1, k, v, 2), DLCL_ERR_INVALID_ARG, "name 'a' is given twice");
    st_tensor meta_name = {"__metadata__", 1, {4}, x, ST_F32, NULL};
    T_ERR(st_write(path, &meta_name, 1, NULL, NULL, 0), DLCL_ERR_INVALID_ARG, "reserved");
    st_tensor neg = {"w", 2, {2, -2}, x, ST_F32, NULL};
    T_ERR(st_write(path, &neg, 1, NULL, NULL, 0), DLCL_ERR_INVALID_ARG, "tensor 'w' has a negative dimension");
    st_tensor rank9 = {"w", 9, {1}, x, ST_F32, NULL};
    T_ERR(st_write(path, &rank9, 1, NULL, NULL, 0), DLCL_ERR_INVALID_ARG, "rank 9");
    st_tensor huge = {"w", 3, {(int64_t)1 << 40, (int64_t)1 << 40, 4}, x, ST_F32, NULL};
    T_ERR(st_write(path, &huge, 1, NULL, NULL, 0), DLCL_ERR_INVALID_ARG, "too large");
    st_tensor no_i64 = {"bn.num_batches_tracked", 0, {0}, x, ST_I64, NULL};
    T_ERR(st_write(path, &no_i64, 1, NULL, NULL, 0), DLCL_ERR_INVALID_ARG,
          "tensor 'bn.num_batches_tracked' has no data (I64, i64 is NULL)");
    st_tensor bad_dtype = {"w", 1, {4}, x, ST_DTYPE_COUNT, NULL};
    T_ERR(st_write(path, &bad_dtype, 1, NULL, NULL, 0), DLCL_ERR_INVALID_ARG, "tensor 'w' has dtype 2");
    st_tensor noname = {NULL, 1, {4}, x, ST_F32, NULL};
    T_ERR(st_write(path, &noname, 1, NULL, NULL, 0), DLCL_ERR_INVALID_ARG, "tensor 0 has no name");
    const char *nullv[] = {NULL};
    T_ERR(st_write(path, two, 1, k, nullv, 1), DLCL_ERR_INVALID_ARG, "metadata entry 0");
    T_CHECK(count_dir_entries(dir) == 0, "a refused write left %d files", count_dir_entries(dir));
}

/* ------------------------------------------------------------------ PyTorch interop */

static void st_torch_reads_dlcl_file_and_dlcl_reads_torch_file(void)
{
    const char *src = getenv("DLCL_TEST_SOURCE_DIR");
    if (src == NULL || strchr(src, '\'') != NULL) {
        T_SKIP("DLCL_TEST_SOURCE_DIR is not set (run through meson test)");
    }
    if (access("/usr/bin/python3", X_OK) != 0) {
        T_SKIP("no /usr/bin/python3");
    }
    float ar[30], nb[7], sc[1] = {42};
    int64_t nbt = 7, idx[3] = {-1, (int64_t)1 << 40, INT64_MIN};
    for (int i = 0; i < 30; i++) ar[i] = (float)i * 0.5f - 3;
    for (int i = 0; i < 7; i++) nb[i] = -(float)i * 0.25f;
    const st_tensor t[] = {
        {"arange", 3, {2, 3, 5}, ar, ST_F32, NULL},
        {"neg_bias", 1, {7}, nb, ST_F32, NULL},
        {"scalar", 0, {0}, sc, ST_F32, NULL},
        {"empty", 2, {0, 4}, NULL, ST_F32, NULL},
        {"bn.num_batches_tracked", 0, {0}, NULL, ST_I64, &nbt},
        {"index", 1, {3}, NULL, ST_I64, idx},
    };
    const char *keys[] = {"format", "note"}, *vals[] = {"pt", "dlcl \"quoted\" \xc2\xb5"};
    char path[1024], back[1100], cmd[3000];
    snprintf(path, sizeof path, "%s", scratch_path("interop.safetensors"));
    snprintf(back, sizeof back, "%s.torch.safetensors", path);
    T_OK(st_write(path, t, T_COUNT(t), keys, vals, T_COUNT(keys)));
    /* the script's output goes to stderr so that it cannot break the TAP stream */
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/test/torch_interop_st.py' check '%s' 1>&2", src, path);
    fflush(stdout);
    int rc = system(cmd);
    T_CHECK(rc != -1 && WIFEXITED(rc), "cannot run: %s", cmd);
    if (WEXITSTATUS(rc) == 77) {
        T_SKIP("/usr/bin/python3 cannot import torch");
    }
    T_CHECK(WEXITSTATUS(rc) == 0, "%s: exit status %d (reason on stderr)", cmd, WEXITSTATUS(rc));

    st_file f;
    T_OK(st_read(back, &f));
    float f32w[24], f16w[6] = {0.333251953125f, -65504, ldexpf(1, -24), 0.5f, -0.0f, 1000};
    float bf16b[4] = {1, -3.140625f, ldexpf(1, -100), 65536}, f64m[3] = {(float)0.1, -2.5f, (float)1e-3}, dbl[30];
    for (int i = 0; i < 24; i++) f32w[i] = (float)i / 8 - 1;
    for (int i = 0; i < 30; i++) dbl[i] = ar[i] * 2;
    const struct {
        const char *name;
        int ndim;
        int64_t d0;
        const float *want;
        size_t n;
    } want[] = {
        {"f32.weight", 3, 2, f32w, 24}, {"f16.weight", 2, 2, f16w, 6},       {"bf16.bias", 1, 4, bf16b, 4},
        {"f64.running_mean", 1, 3, f64m, 3}, {"arange.doubled", 3, 2, dbl, 30},
    };
    char why[256] = "";
    if (f.count != T_COUNT(want) + 2) snprintf(why, sizeof why, "%zu tensors", f.count);
    for (size_t i = 0; !why[0] && i < T_COUNT(want); i++) {
        const st_tensor *r = st_find(&f, want[i].name);
        if (!r || r->dtype != ST_F32 || r->i64 != NULL || r->ndim != want[i].ndim || r->dims[0] != want[i].d0 ||
            numel_of(r) != want[i].n) {
            snprintf(why, sizeof why, "'%s' missing or misshapen", want[i].name);
            break;
        }
        for (size_t j = 0; !why[0] && j < want[i].n; j++)
            if (!same_float(r->data[j], want[i].want[j]))
                snprintf(why, sizeof why, "'%s'[%zu]: got %.9g want %.9g", want[i].name, j, r->data[j], want[i].want[j]);
    }
    /* int64 from torch: a num_batches_tracked scalar, and the C file's index tensor times 1 */
    const st_tensor *tn = st_find(&f, "bn.num_batches_tracked"), *ti = st_find(&f, "index.copy");
    const int64_t want_idx[3] = {-1, (int64_t)1 << 40, INT64_MIN};
    if (!why[0] && (!tn || tn->dtype != ST_I64 || tn->data || !tn->i64 || tn->ndim != 0 || tn->i64[0] != 12345678901))
        snprintf(why, sizeof why, "'bn.num_batches_tracked' is not the int64 scalar 12345678901");
    if (!why[0] && (!ti || ti->dtype != ST_I64 || ti->ndim != 1 || ti->dims[0] != 3 ||
                    memcmp(ti->i64, want_idx, sizeof want_idx) != 0))
        snprintf(why, sizeof why, "'index.copy' is not the int64 [-1, 2^40, -2^63]");
    bool meta_ok = false;
    for (size_t i = 0; i < f.meta_count; i++)
        meta_ok |= strcmp(f.meta_keys[i], "writer") == 0 && strcmp(f.meta_values[i], "torch") == 0;
    if (!why[0] && !meta_ok) snprintf(why, sizeof why, "metadata 'writer' missing");
    st_file_free(&f);
    T_CHECK(!why[0], "%s: %s", back, why);
    unlink(back);
}

static const t_case cases[] = {
    T_CASE(st_round_trip_keeps_odd_shapes_order_and_metadata),
    T_CASE(st_round_trip_mixes_f32_and_i64),
    T_CASE(st_reads_python_layout_and_widens_f16_bf16_f64),
    T_CASE(st_malformed_files_are_refused_with_reason),
    T_CASE(st_header_over_100mib_is_refused_without_reading),
    T_CASE(st_write_failure_leaves_no_temp_file_and_old_file_intact),
    T_CASE(st_overwrite_replaces_the_file_atomically),
    T_CASE(st_write_rejects_bad_arguments),
    T_CASE(st_torch_reads_dlcl_file_and_dlcl_reads_torch_file),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
