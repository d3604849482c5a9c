/* CLBlast tuning results: read from the JSON files CLBlast's tuners write, stored per device.
 *
 * A tuner (clblast_tuner_xgemm, ...) writes clblast_<family>_<precision>.json: metadata, then
 * every configuration it timed, {"kernel", "time" (ms), "parameters": {NAME: value}}. The
 * xgemm tuner runs four phases (GEMMK 0 and 1, each a fixed set and a random sample) and
 * writes a file per phase, xgemm_1, xgemm_2, xgemm_11, xgemm_12. CLBlast's own database
 * scripts (scripts/database: load_tuning_results, get_best_results) strip the "_<digits>"
 * from the family, drop the PRECISION parameter and keep, per device and kernel, the
 * configuration with the lowest time over all files: so does dlcl_tuning_add_tuner_json.
 *
 * The chosen sets are stored as JSON inside an entry of the program cache (runtime/cache.c),
 * keyed by device name and driver version: written atomically, and a damaged file fails its
 * payload hash. blas.c applies them. This file does not call CLBlast. */
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define TUNE_MAX_KERNELS 8
#define TUNE_MAX_PARAMS 24
#define TUNE_NAME 32
#define TUNE_MAX_VALUE 65536 /* no CLBlast parameter is near this; larger is a damaged file */
#define TUNE_FORMAT "dlcl-clblast-tuning"
#define TUNE_VERSION 1

typedef struct tune_entry {
    char kernel[TUNE_NAME], family[TUNE_NAME];
    double time_ms;
    size_t m, n, k, n_params;
    char names[TUNE_MAX_PARAMS][TUNE_NAME];
    const char *name_ptrs[TUNE_MAX_PARAMS]; /* into names, for dlcl_tuning_get */
    size_t values[TUNE_MAX_PARAMS];
} tune_entry;

struct dlcl_tuning {
    tune_entry e[TUNE_MAX_KERNELS];
    size_t n;
};

/* Tuner kernel families (without "_<digits>") and the CLBlast database kernel each tunes:
 * the kernel_name that CLBlastOverrideParameters takes. */
static const struct {
    const char *family, *kernel;
} families[] = {
    {"xgemm", "Xgemm"},     {"xgemm_direct", "XgemmDirect"}, {"copy", "Copy"},
    {"pad", "Pad"},         {"transpose", "Transpose"},      {"padtranspose", "Padtranspose"},
};

dlcl_status dlcl_tuning_create(dlcl_tuning **out)
{
    if (out == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_tuning_create: out is NULL");
    *out = calloc(1, sizeof **out);
    return *out ? DLCL_OK : dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
}

void dlcl_tuning_free(dlcl_tuning *t) { free(t); }

size_t dlcl_tuning_count(const dlcl_tuning *t) { return t ? t->n : 0; }

dlcl_status dlcl_tuning_get(const dlcl_tuning *t, size_t i, dlcl_tuning_kernel *out)
{
    if (t == NULL || out == NULL || i >= t->n)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_tuning_get: no kernel %zu", i);
    const tune_entry *e = &t->e[i];
    *out = (dlcl_tuning_kernel){e->kernel, e->family, e->time_ms, e->m, e->n, e->k, e->n_params, e->name_ptrs,
                                e->values};
    return DLCL_OK;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= TUNE_NAME) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) return false;
    return true;
}

/* A non-negative integer no larger than max, from a JSON number or a string of digits
 * (the tuners write arg_m as "256"). */
static bool json_uint(const cJSON *v, size_t max, size_t *out)
{
    double d;
    if (cJSON_IsNumber(v)) {
        d = v->valuedouble;
    } else if (cJSON_IsString(v)) {
        char *end;
        errno = 0;
        d = strtod(v->valuestring, &end);
        if (end == v->valuestring || *end != '\0' || errno != 0) return false;
    } else {
        return false;
    }
    if (!(d >= 0 && d <= (double)max) || d != floor(d)) return false;
    *out = (size_t)d;
    return true;
}

/* Fills e's parameters from a JSON object {NAME: value}, without PRECISION. */
static dlcl_status parse_params(const cJSON *obj, tune_entry *e, const char *what)
{
    if (!cJSON_IsObject(obj)) return dlcl__err(DLCL_ERR_DATA, "%s: \"parameters\" is not an object", what);
    e->n_params = 0;
    for (const cJSON *p = obj->child; p; p = p->next) {
        if (p->string == NULL || !name_ok(p->string))
            return dlcl__err(DLCL_ERR_DATA, "%s: bad parameter name '%s'", what, p->string ? p->string : "");
        if (strcmp(p->string, "PRECISION") == 0) continue;
        if (e->n_params == TUNE_MAX_PARAMS)
            return dlcl__err(DLCL_ERR_DATA, "%s: more than %d parameters", what, TUNE_MAX_PARAMS);
        size_t v;
        if (!json_uint(p, TUNE_MAX_VALUE, &v))
            return dlcl__err(DLCL_ERR_DATA, "%s: parameter %s is not an integer in 0..%d", what, p->string,
                             TUNE_MAX_VALUE);
        snprintf(e->names[e->n_params], TUNE_NAME, "%s", p->string);
        e->name_ptrs[e->n_params] = e->names[e->n_params];
        e->values[e->n_params++] = v;
    }
    if (e->n_params == 0) return dlcl__err(DLCL_ERR_DATA, "%s: no parameters", what);
    return DLCL_OK;
}

static void fix_ptrs(tune_entry *e)
{
    for (size_t i = 0; i < e->n_params; i++) e->name_ptrs[i] = e->names[i];
}

/* Keeps e unless t holds the same kernel with a lower time. */
static dlcl_status merge(dlcl_tuning *t, const tune_entry *e)
{
    size_t i = 0;
    while (i < t->n && strcmp(t->e[i].kernel, e->kernel) != 0) i++;
    if (i == TUNE_MAX_KERNELS) return dlcl__err(DLCL_ERR_DATA, "more than %d tuned kernels", TUNE_MAX_KERNELS);
    if (i < t->n && t->e[i].time_ms <= e->time_ms) return DLCL_OK;
    t->e[i] = *e;
    fix_ptrs(&t->e[i]);
    if (i == t->n) t->n++;
    return DLCL_OK;
}

/* "xgemm_11" -> "xgemm", "xgemm_direct_2" -> "xgemm_direct" (CLBlast's re.sub(r'_\d+', '')) */
static void strip_phase(char *s)
{
    char *o = s;
    for (const char *p = s; *p;) {
        if (p[0] == '_' && p[1] >= '0' && p[1] <= '9') {
            p++;
            while (*p >= '0' && *p <= '9') p++;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
}

static dlcl_status parse_tuner(const cJSON *root, tune_entry *best, const char *what)
{
    const cJSON *fam = cJSON_GetObjectItemCaseSensitive(root, "kernel_family"),
                *prec = cJSON_GetObjectItemCaseSensitive(root, "precision"),
                *res = cJSON_GetObjectItemCaseSensitive(root, "results");
    if (!cJSON_IsString(fam) || strlen(fam->valuestring) >= TUNE_NAME)
        return dlcl__err(DLCL_ERR_DATA, "%s: no \"kernel_family\"", what);
    if (!cJSON_IsString(prec) || strcmp(prec->valuestring, "32") != 0)
        return dlcl__err(DLCL_ERR_DATA, "%s: precision %s, expected 32 (single; dlcl's tensors are float32)", what,
                         cJSON_IsString(prec) ? prec->valuestring : "missing");
    memset(best, 0, sizeof *best);
    snprintf(best->family, TUNE_NAME, "%s", fam->valuestring);
    strip_phase(best->family);
    const char *kernel = NULL;
    for (size_t i = 0; i < DLCL__ARRAY_LEN(families); i++)
        if (strcmp(best->family, families[i].family) == 0) kernel = families[i].kernel;
    if (kernel == NULL)
        return dlcl__err(DLCL_ERR_DATA, "%s: kernel family '%s' is not one dlcl applies (xgemm, xgemm_direct, copy, "
                         "pad, transpose, padtranspose)", what, best->family);
    snprintf(best->kernel, TUNE_NAME, "%s", kernel);
    const char *dims[3] = {"arg_m", "arg_n", "arg_k"};
    size_t *dv[3] = {&best->m, &best->n, &best->k};
    for (int d = 0; d < 3; d++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, dims[d]);
        if (v && !json_uint(v, SIZE_MAX >> 1, dv[d])) return dlcl__err(DLCL_ERR_DATA, "%s: bad %s", what, dims[d]);
    }
    if (!cJSON_IsArray(res) || cJSON_GetArraySize(res) == 0)
        return dlcl__err(DLCL_ERR_DATA, "%s: no \"results\" (did the tuner explore any configuration?)", what);
    best->time_ms = INFINITY;
    tune_entry e = *best;
    for (const cJSON *r = res->child; r; r = r->next) {
        const cJSON *time = cJSON_GetObjectItemCaseSensitive(r, "time");
        if (!cJSON_IsNumber(time) || !(time->valuedouble > 0) || !isfinite(time->valuedouble))
            return dlcl__err(DLCL_ERR_DATA, "%s: a result without a positive \"time\"", what);
        dlcl_status s = parse_params(cJSON_GetObjectItemCaseSensitive(r, "parameters"), &e, what);
        if (s != DLCL_OK) return s;
        if (time->valuedouble < best->time_ms) {
            e.time_ms = time->valuedouble;
            *best = e;
        }
    }
    fix_ptrs(best);
    return DLCL_OK;
}

dlcl_status dlcl_tuning_add_tuner_json(dlcl_tuning *t, const char *json, const char *what)
{
    if (t == NULL || json == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_tuning_add_tuner_json: t and json must not be NULL");
    if (what == NULL) what = "tuner output";
    cJSON *root = cJSON_Parse(json);
    tune_entry *e = malloc(sizeof *e);
    dlcl_status s;
    if (e == NULL) {
        s = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        goto fail;
    }
    if (root == NULL) {
        s = dlcl__err(DLCL_ERR_DATA, "%s: not valid JSON", what);
        goto fail;
    }
    s = parse_tuner(root, e, what);
    if (s == DLCL_OK) s = merge(t, e);
fail:
    cJSON_Delete(root);
    free(e);
    return s;
}

/* ------------------------------------------------------------ storage */

static dlcl_status store_key(const dlcl_device_info *dev, const char *cache_dir, char **dir, rt_cache_key *key)
{
    *dir = NULL;
    if (dev == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "CLBlast tuning: device info is NULL");
    /* an explicit directory wins over DLCL_CACHE_DIR (rt_cache_dir_resolve ranks it below) */
    dlcl_status s = cache_dir ? ((*dir = strdup(cache_dir)) ? DLCL_OK : dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory"))
                              : rt_cache_dir_resolve(NULL, 0, dir);
    if (s != DLCL_OK) return s;
    if (*dir == NULL)
        return dlcl__err(DLCL_ERR_NOT_FOUND, "CLBlast tuning needs a cache directory: DLCL_NO_CACHE is set, or "
                         "neither DLCL_CACHE_DIR, XDG_CACHE_HOME nor HOME is");
    /* the source hash of a program entry; here a fixed tag, so the two never share a key */
    *key = (rt_cache_key){dev->name, dev->driver_version, "", rt_hash64(TUNE_FORMAT, strlen(TUNE_FORMAT), 0),
                          TUNE_FORMAT};
    return DLCL_OK;
}

static char *to_json(const dlcl_tuning *t, const dlcl_device_info *dev)
{
    cJSON *root = cJSON_CreateObject(), *ks = NULL;
    char *text = NULL;
    bool ok = root && cJSON_AddStringToObject(root, "format", TUNE_FORMAT) &&
              cJSON_AddNumberToObject(root, "version", TUNE_VERSION) &&
              cJSON_AddStringToObject(root, "device", dev->name) &&
              cJSON_AddStringToObject(root, "driver_version", dev->driver_version) &&
              cJSON_AddNumberToObject(root, "precision", 32) && (ks = cJSON_AddArrayToObject(root, "kernels"));
    for (size_t i = 0; ok && i < t->n; i++) {
        const tune_entry *e = &t->e[i];
        cJSON *k = cJSON_CreateObject(), *p = NULL;
        if (k != NULL && !cJSON_AddItemToArray(ks, k)) cJSON_Delete(k), k = NULL; /* else root owns k */
        ok = k && cJSON_AddStringToObject(k, "kernel", e->kernel) && cJSON_AddStringToObject(k, "family", e->family) &&
             cJSON_AddNumberToObject(k, "time_ms", e->time_ms) && cJSON_AddNumberToObject(k, "m", (double)e->m) &&
             cJSON_AddNumberToObject(k, "n", (double)e->n) && cJSON_AddNumberToObject(k, "k", (double)e->k) &&
             (p = cJSON_AddObjectToObject(k, "parameters"));
        for (size_t j = 0; ok && j < e->n_params; j++)
            ok = cJSON_AddNumberToObject(p, e->names[j], (double)e->values[j]) != NULL;
    }
    if (ok) text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

static dlcl_status from_json(const char *text, size_t len, const dlcl_device_info *dev, dlcl_tuning *t,
                             const char *path)
{
    cJSON *root = cJSON_ParseWithLength(text, len);
    tune_entry *e = malloc(sizeof *e);
    dlcl_status s = DLCL_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format"),
                *ver = cJSON_GetObjectItemCaseSensitive(root, "version"),
                *devn = cJSON_GetObjectItemCaseSensitive(root, "device"),
                *ks = cJSON_GetObjectItemCaseSensitive(root, "kernels");
    if (e == NULL) {
        s = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        goto fail;
    }
    if (root == NULL || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, TUNE_FORMAT) != 0 || !cJSON_IsNumber(ver) ||
        ver->valueint != TUNE_VERSION || !cJSON_IsString(devn) || strcmp(devn->valuestring, dev->name) != 0 ||
        !cJSON_IsArray(ks)) {
        s = dlcl__err(DLCL_ERR_DATA, "%s: not a version %d CLBlast tuning for '%s'", path, TUNE_VERSION, dev->name);
        goto fail;
    }
    for (const cJSON *k = ks->child; k && s == DLCL_OK; k = k->next) {
        const cJSON *kn = cJSON_GetObjectItemCaseSensitive(k, "kernel"),
                    *fam = cJSON_GetObjectItemCaseSensitive(k, "family"),
                    *tm = cJSON_GetObjectItemCaseSensitive(k, "time_ms");
        memset(e, 0, sizeof *e);
        bool known = false;
        for (size_t i = 0; cJSON_IsString(kn) && cJSON_IsString(fam) && i < DLCL__ARRAY_LEN(families); i++)
            known |= strcmp(kn->valuestring, families[i].kernel) == 0 && strcmp(fam->valuestring, families[i].family) == 0;
        if (!known || !cJSON_IsNumber(tm) || !json_uint(cJSON_GetObjectItemCaseSensitive(k, "m"), SIZE_MAX >> 1, &e->m) ||
            !json_uint(cJSON_GetObjectItemCaseSensitive(k, "n"), SIZE_MAX >> 1, &e->n) ||
            !json_uint(cJSON_GetObjectItemCaseSensitive(k, "k"), SIZE_MAX >> 1, &e->k)) {
            s = dlcl__err(DLCL_ERR_DATA, "%s: a kernel entry without a known kernel, family, time_ms, m, n, k", path);
            break;
        }
        snprintf(e->kernel, TUNE_NAME, "%s", kn->valuestring);
        snprintf(e->family, TUNE_NAME, "%s", fam->valuestring);
        e->time_ms = tm->valuedouble;
        s = parse_params(cJSON_GetObjectItemCaseSensitive(k, "parameters"), e, path);
        if (s == DLCL_OK) s = merge(t, e);
    }
fail:
    cJSON_Delete(root);
    free(e);
    return s;
}

dlcl_status dlcl_tuning_store(const dlcl_tuning *t, const dlcl_device_info *dev, const char *cache_dir, char *path,
                              size_t cap)
{
    if (t == NULL || t->n == 0) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_tuning_store: nothing to store");
    char *dir = NULL, *text = NULL;
    rt_cache_key key;
    dlcl_status s = store_key(dev, cache_dir, &dir, &key);
    if (s == DLCL_OK && path != NULL) s = rt_cache_path(dir, &key, path, cap);
    if (s == DLCL_OK && (text = to_json(t, dev)) == NULL) s = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    if (s == DLCL_OK) s = rt_cache_store(dir, &key, (const unsigned char *)text, strlen(text));
    free(text);
    free(dir);
    return s;
}

dlcl_status dlcl_tuning_load(const dlcl_device_info *dev, const char *cache_dir, dlcl_tuning **out, char *path,
                             size_t cap)
{
    if (out == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_tuning_load: out is NULL");
    *out = NULL;
    char *dir = NULL, where[4096] = "";
    unsigned char *bin = NULL;
    size_t len = 0;
    dlcl_tuning *t = NULL;
    rt_cache_key key;
    dlcl_status s = store_key(dev, cache_dir, &dir, &key);
    if (s == DLCL_OK) s = rt_cache_path(dir, &key, where, sizeof where);
    if (s != DLCL_OK) goto fail;
    if (path != NULL) snprintf(path, cap, "%s", where);
    s = rt_cache_load(dir, &key, &bin, &len);
    if (s == DLCL_ERR_NOT_FOUND) {
        s = dlcl__err(DLCL_ERR_NOT_FOUND, "no CLBlast tuning stored for '%s' (driver %s) in %s", dev->name,
                      dev->driver_version, dir);
        goto fail;
    }
    if (s != DLCL_OK) goto fail;
    s = dlcl_tuning_create(&t);
    if (s == DLCL_OK) s = from_json((const char *)bin, len, dev, t, where);
    if (s == DLCL_OK && t->n == 0) s = dlcl__err(DLCL_ERR_DATA, "%s: no kernels", where);
    if (s != DLCL_OK) goto fail;
    *out = t;
    free(bin);
    free(dir);
    return DLCL_OK;
fail:
    dlcl_tuning_free(t);
    free(bin);
    free(dir);
    return s;
}

dlcl_status dlcl_tuning_clear(const dlcl_device_info *dev, const char *cache_dir, char *path, size_t cap)
{
    char *dir = NULL, where[4096] = "";
    rt_cache_key key;
    dlcl_status s = store_key(dev, cache_dir, &dir, &key);
    if (s == DLCL_OK) s = rt_cache_path(dir, &key, where, sizeof where);
    if (s == DLCL_OK && path != NULL) snprintf(path, cap, "%s", where);
    if (s == DLCL_OK && unlink(where) != 0)
        s = errno == ENOENT ? dlcl__err(DLCL_ERR_NOT_FOUND, "no CLBlast tuning stored for '%s' (%s)", dev->name, where)
                            : dlcl__err(DLCL_ERR_IO, "cannot remove %s: %s", where, strerror(errno));
    free(dir);
    return s;
}
