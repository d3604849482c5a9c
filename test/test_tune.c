/* CLBlast tuning (lib/tune.c, blas.c's apply_tuning): the tuners' JSON (fixtures in
 * data/clblast_tuner are real output of clblast_tuner_* 1.5.3 on PoCL), the per-device store,
 * damaged files, and SGEMMs through CLBlast with the stored parameters applied. The last case
 * leaves CLBlast (process-wide) with impossible Xgemm parameters and then restores good ones. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ref/ref.h"
#include "test.h"

static char *slurp(const char *name)
{
    const char *dir = getenv("DLCL_TEST_DATA_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/clblast_tuner/%s", dir ? dir : "test/data", name);
    FILE *f = fopen(path, "rb");
    char *buf = f ? malloc(1 << 20) : NULL;
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    if (buf) buf[n] = '\0';
    if (f) fclose(f);
    if (buf == NULL) printf("# cannot read %s\n", path);
    return buf;
}

static bool add_fixture(dlcl_tuning *t, const char *name)
{
    char *text = slurp(name);
    dlcl_status s = text ? dlcl_tuning_add_tuner_json(t, text, name) : DLCL_ERR_IO;
    if (s != DLCL_OK) printf("# %s: %s\n", name, dlcl_last_error());
    free(text);
    return s == DLCL_OK;
}

/* Value of parameter name in kernel k of t, or -1. */
static long param(const dlcl_tuning *t, const char *kernel, const char *name, double *time_ms)
{
    for (size_t i = 0; i < dlcl_tuning_count(t); i++) {
        dlcl_tuning_kernel k;
        if (dlcl_tuning_get(t, i, &k) != DLCL_OK || strcmp(k.kernel, kernel) != 0) continue;
        if (time_ms) *time_ms = k.time_ms;
        for (size_t j = 0; j < k.n_params; j++)
            if (strcmp(k.names[j], name) == 0) return (long)k.values[j];
    }
    return -1;
}

static void tuner_json_keeps_fastest_result_without_precision(void)
{
    dlcl_tuning *t = NULL;
    T_OK(dlcl_tuning_create(&t));
    bool ok = add_fixture(t, "clblast_xgemm_1_32.json");
    dlcl_tuning_kernel k = {0};
    dlcl_status s = ok ? dlcl_tuning_get(t, 0, &k) : DLCL_ERR_IO;
    size_t n = dlcl_tuning_count(t);
    double time = 0;
    long mwg = param(t, "Xgemm", "MWG", &time), vwn = param(t, "Xgemm", "VWN", NULL), mdimc = param(t, "Xgemm", "MDIMC", NULL),
         prec = param(t, "Xgemm", "PRECISION", NULL);
    bool names_ok = s == DLCL_OK && strcmp(k.kernel, "Xgemm") == 0 && strcmp(k.family, "xgemm") == 0;
    size_t np = k.n_params, m = k.m;
    dlcl_tuning_free(t);
    T_CHECK(ok && n == 1 && names_ok, "want one Xgemm from family xgemm, got %zu (%s)", n, k.kernel ? k.kernel : "-");
    /* the fastest of its five results: 1.915 ms, MWG=64 NWG=64 MDIMC=8 VWM=4 VWN=4 */
    T_CHECK(time == 1.915 && mwg == 64 && vwn == 4 && mdimc == 8, "best: %g ms MWG=%ld VWN=%ld MDIMC=%ld", time, mwg,
            vwn, mdimc);
    T_CHECK(prec == -1 && np == 16 && m == 256, "PRECISION %ld, %zu parameters, m %zu", prec, np, m);
    /* the fastest in the middle of the list, neither first nor last */
    const char *mid = "{\"kernel_family\": \"copy\", \"precision\": \"32\", \"results\": ["
                      "{\"kernel\": \"CopyMatrixFast\", \"time\": 0.3, \"parameters\": {\"COPY_VW\": 1}},"
                      "{\"kernel\": \"CopyMatrixFast\", \"time\": 0.1, \"parameters\": {\"COPY_VW\": 8}},"
                      "{\"kernel\": \"CopyMatrixFast\", \"time\": 0.2, \"parameters\": {\"COPY_VW\": 2}}]}";
    T_OK(dlcl_tuning_create(&t));
    ok = dlcl_tuning_add_tuner_json(t, mid, "mid") == DLCL_OK;
    long vw = param(t, "Copy", "COPY_VW", &time);
    dlcl_tuning_free(t);
    T_CHECK(ok && vw == 8 && time == 0.1, "fastest of three: COPY_VW=%ld, %g ms", vw, time);
}

static void tuner_json_every_family_maps_to_its_clblast_kernel(void)
{
    static const char *const files[][2] = {
        {"clblast_xgemm_direct_2_32.json", "XgemmDirect"}, {"clblast_copy_32.json", "Copy"},
        {"clblast_pad_32.json", "Pad"},                    {"clblast_transpose_32.json", "Transpose"},
        {"clblast_padtranspose_32.json", "Padtranspose"},
    };
    dlcl_tuning *t = NULL;
    T_OK(dlcl_tuning_create(&t));
    bool ok = true;
    for (size_t i = 0; i < T_COUNT(files); i++) ok &= add_fixture(t, files[i][0]);
    size_t n = dlcl_tuning_count(t);
    double dt = 0;
    long wgd = param(t, "XgemmDirect", "WGD", &dt), kwid = param(t, "XgemmDirect", "KWID", NULL),
         vw = param(t, "Copy", "COPY_VW", NULL), tile = param(t, "Padtranspose", "PADTRA_TILE", NULL);
    dlcl_tuning_free(t);
    T_CHECK(ok && n == T_COUNT(files), "%zu kernels", n);
    /* XgemmDirectTN's fastest of 21 (1.563 ms); CopyMatrixFast's of 7 (0.049 ms) */
    T_CHECK(dt == 1.563 && wgd == 64 && kwid == 16 && vw == 4 && tile >= 0, "XgemmDirect %g ms WGD=%ld KWID=%ld, "
            "COPY_VW=%ld, PADTRA_TILE=%ld", dt, wgd, kwid, vw, tile);
}

/* One xgemm phase file per call: the tuning keeps the lowest time, whatever the order. */
static const char *phase(const char *family, double time, int mwg)
{
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"kernel_family\": \"%s\", \"precision\": \"32\", \"results\": [{\"kernel\": \"Xgemm\", \"time\": %g, "
             "\"parameters\": {\"GEMMK\": 1,\"KREG\": 2,\"KWG\": 1,\"KWI\": 1,\"MDIMA\": 16,\"MDIMC\": 16,\"MWG\": %d,"
             "\"NDIMB\": 8,\"NDIMC\": 8,\"NWG\": 32,\"PRECISION\": 32,\"SA\": 0,\"SB\": 0,\"STRM\": 0,\"STRN\": 0,"
             "\"VWM\": 2,\"VWN\": 1}}]}",
             family, time, mwg);
    return buf;
}

static void tuner_json_phases_merge_to_lowest_time(void)
{
    dlcl_tuning *t = NULL;
    T_OK(dlcl_tuning_create(&t));
    bool ok = dlcl_tuning_add_tuner_json(t, phase("xgemm_12", 2.5, 128), "12") == DLCL_OK && /* slower than _1 */
              add_fixture(t, "clblast_xgemm_1_32.json");
    long after_1 = param(t, "Xgemm", "MWG", NULL), gemmk_1 = param(t, "Xgemm", "GEMMK", NULL);
    ok &= dlcl_tuning_add_tuner_json(t, phase("xgemm_11", 1.25, 32), "11") == DLCL_OK; /* faster */
    ok &= dlcl_tuning_add_tuner_json(t, phase("xgemm_2", 1.5, 16), "2") == DLCL_OK;    /* between */
    double time = 0;
    long mwg = param(t, "Xgemm", "MWG", &time), gemmk = param(t, "Xgemm", "GEMMK", NULL);
    size_t n = dlcl_tuning_count(t);
    dlcl_tuning_free(t);
    T_CHECK(ok && n == 1, "%zu kernels: %s", n, dlcl_last_error());
    T_CHECK(after_1 == 64 && gemmk_1 == 0, "after xgemm_12 (2.5 ms) and xgemm_1 (1.915 ms): MWG=%ld GEMMK=%ld", after_1,
            gemmk_1);
    T_CHECK(mwg == 32 && gemmk == 1 && time == 1.25, "after xgemm_11 (1.25) and xgemm_2 (1.5): MWG=%ld GEMMK=%ld %g ms",
            mwg, gemmk, time);
}

static void tuner_json_malformed_is_rejected(void)
{
    static const struct {
        const char *json, *want;
    } bad[] = {
        {"{\"kernel_family\": \"xgemm_1\", ", "not valid JSON"},
        {"{\"precision\": \"32\", \"results\": []}", "no \"kernel_family\""},
        {"{\"kernel_family\": \"xgemm_1\", \"precision\": \"64\", \"results\": []}", "precision 64, expected 32"},
        {"{\"kernel_family\": \"xgemv\", \"precision\": \"32\", \"results\": []}", "'xgemv' is not one dlcl applies"},
        {"{\"kernel_family\": \"copy\", \"precision\": \"32\", \"results\": []}", "no \"results\""},
        {"{\"kernel_family\": \"copy\", \"precision\": \"32\", \"results\": [{\"time\": -1, \"parameters\": "
         "{\"COPY_VW\": 2}}]}", "without a positive \"time\""},
        {"{\"kernel_family\": \"copy\", \"precision\": \"32\", \"results\": [{\"time\": 1, \"parameters\": "
         "{\"COPY_VW\": 2.5}}]}", "COPY_VW is not an integer"},
        {"{\"kernel_family\": \"copy\", \"precision\": \"32\", \"results\": [{\"time\": 1, \"parameters\": "
         "{\"COPY_VW\": 1e9}}]}", "COPY_VW is not an integer in 0..65536"},
        {"{\"kernel_family\": \"copy\", \"precision\": \"32\", \"results\": [{\"time\": 1, \"parameters\": "
         "{\"copy vw\": 2}}]}", "bad parameter name 'copy vw'"},
        {"{\"kernel_family\": \"copy\", \"precision\": \"32\", \"results\": [{\"time\": 1, \"parameters\": 4}]}",
         "\"parameters\" is not an object"},
        {"{\"kernel_family\": \"copy\", \"precision\": \"32\", \"arg_m\": \"-3\", \"results\": []}", "bad arg_m"},
    };
    dlcl_tuning *t = NULL;
    T_OK(dlcl_tuning_create(&t));
    for (size_t i = 0; i < T_COUNT(bad); i++) {
        dlcl_status s = dlcl_tuning_add_tuner_json(t, bad[i].json, "case");
        if (!t_err_matches(s, DLCL_ERR_DATA, bad[i].want) || dlcl_tuning_count(t) != 0) {
            dlcl_tuning_free(t);
            T_CHECK(false, "case %zu: want DLCL_ERR_DATA \"%s\", got %s: %s", i, bad[i].want, dlcl_status_str(s),
                    dlcl_last_error());
        }
    }
    dlcl_tuning_free(t);
    T_ERR(dlcl_tuning_add_tuner_json(NULL, "{}", NULL), DLCL_ERR_INVALID_ARG, "must not be NULL");
}

static bool all_fixtures(dlcl_tuning **t)
{
    static const char *const files[] = {"clblast_xgemm_1_32.json", "clblast_xgemm_direct_2_32.json",
                                        "clblast_copy_32.json",    "clblast_pad_32.json",
                                        "clblast_transpose_32.json", "clblast_padtranspose_32.json"};
    if (dlcl_tuning_create(t) != DLCL_OK) return false;
    for (size_t i = 0; i < T_COUNT(files); i++)
        if (!add_fixture(*t, files[i])) return false;
    return true;
}

static void tuning_store_load_clear_round_trip(void)
{
    dlcl_device_info dev = {0}, other;
    snprintf(dev.name, sizeof dev.name, "Test GPU 9000");
    snprintf(dev.driver_version, sizeof dev.driver_version, "535.1");
    other = dev;
    snprintf(other.driver_version, sizeof other.driver_version, "535.2");
    const char *dir = t_tmpdir(0);
    dlcl_tuning *t = NULL, *back = NULL, *none = NULL;
    char path[1024] = "", path2[1024] = "";
    bool ok = all_fixtures(&t);
    dlcl_status st = ok ? dlcl_tuning_store(t, &dev, dir, path, sizeof path) : DLCL_ERR_IO;
    dlcl_status ld = dlcl_tuning_load(&dev, dir, &back, path2, sizeof path2);
    dlcl_status lo = dlcl_tuning_load(&other, dir, &none, NULL, 0); /* a driver update: tune again */
    bool same = back && dlcl_tuning_count(back) == dlcl_tuning_count(t) && dlcl_tuning_count(t) == 6;
    for (size_t i = 0; same && i < dlcl_tuning_count(t); i++) {
        dlcl_tuning_kernel a, b;
        same = dlcl_tuning_get(t, i, &a) == DLCL_OK && dlcl_tuning_get(back, i, &b) == DLCL_OK &&
               strcmp(a.kernel, b.kernel) == 0 && strcmp(a.family, b.family) == 0 && a.time_ms == b.time_ms &&
               a.m == b.m && a.k == b.k && a.n_params == b.n_params;
        for (size_t j = 0; same && j < a.n_params; j++)
            same = strcmp(a.names[j], b.names[j]) == 0 && a.values[j] == b.values[j];
    }
    dlcl_tuning_free(t);
    dlcl_tuning_free(back);
    T_CHECK(st == DLCL_OK && ld == DLCL_OK, "store %s, load %s: %s", dlcl_status_str(st), dlcl_status_str(ld),
            dlcl_last_error());
    T_CHECK(same && strcmp(path, path2) == 0 && strncmp(path, dir, strlen(dir)) == 0, "round trip differs (%s, %s)",
            path, path2);
    T_CHECK(lo == DLCL_ERR_NOT_FOUND && none == NULL, "another driver version found %s", dlcl_status_str(lo));
    T_OK(dlcl_tuning_clear(&dev, dir, NULL, 0));
    T_CHECK(access(path, F_OK) != 0, "%s still there after clear", path);
    T_ERR(dlcl_tuning_load(&dev, dir, &none, NULL, 0), DLCL_ERR_NOT_FOUND, "no CLBlast tuning stored for 'Test GPU 9000'");
    T_ERR(dlcl_tuning_clear(&dev, dir, NULL, 0), DLCL_ERR_NOT_FOUND, "no CLBlast tuning stored");
}

static void damaged_tuning_file_is_a_data_error(void)
{
    dlcl_device_info dev = {0};
    snprintf(dev.name, sizeof dev.name, "Test GPU 9000");
    const char *dir = t_tmpdir(0);
    char path[1024] = "";
    dlcl_tuning *t = NULL, *back = NULL;
    bool ok = all_fixtures(&t) && dlcl_tuning_store(t, &dev, dir, path, sizeof path) == DLCL_OK;
    dlcl_tuning_free(t);
    T_CHECK(ok, "store: %s", dlcl_last_error());
    FILE *f = fopen(path, "r+b");
    long len = f && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    bool flipped = len > 100 && fseek(f, len - 40, SEEK_SET) == 0 && fputc('#', f) != EOF; /* inside the JSON */
    if (f) fclose(f);
    T_CHECK(flipped, "cannot damage %s", path);
    T_ERR(dlcl_tuning_load(&dev, dir, &back, NULL, 0), DLCL_ERR_DATA, "truncated or corrupt payload");
    T_CHECK(truncate(path, len / 2) == 0, "truncate");
    T_ERR(dlcl_tuning_load(&dev, dir, &back, NULL, 0), DLCL_ERR_DATA, "corrupt");
    T_CHECK(back == NULL, "a damaged file gave a tuning");
}

/* ------------------------------------------------------------ applied to CLBlast */

static char logbuf[16384];

static void log_capture(dlcl_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level == DLCL_LOG_DEBUG) return;
    printf("# log: %s\n", msg);
    size_t l = strlen(logbuf);
    snprintf(logbuf + l, sizeof logbuf - l, "%s\n", msg);
}

/* DLCL_GEMM=clblast and DLCL_CACHE_DIR=dir for one context; restored after. */
typedef struct env_keep {
    char cache[1024], gemm[64];
    int had_cache, had_gemm;
} env_keep;

static void env_push(env_keep *e, const char *dir)
{
    const char *c = getenv("DLCL_CACHE_DIR"), *g = getenv("DLCL_GEMM");
    e->had_cache = c != NULL, e->had_gemm = g != NULL;
    snprintf(e->cache, sizeof e->cache, "%s", c ? c : "");
    snprintf(e->gemm, sizeof e->gemm, "%s", g ? g : "");
    setenv("DLCL_CACHE_DIR", dir, 1);
    setenv("DLCL_GEMM", "clblast", 1);
}

static void env_pop(const env_keep *e)
{
    if (e->had_cache) setenv("DLCL_CACHE_DIR", e->cache, 1);
    else unsetenv("DLCL_CACHE_DIR");
    if (e->had_gemm) setenv("DLCL_GEMM", e->gemm, 1);
    else unsetenv("DLCL_GEMM");
}

/* The device a context would choose (DLCL_DEVICE honoured). */
static bool this_device(dlcl_device_info *out)
{
    dlcl_device_info *list = NULL;
    size_t n = 0;
    int chosen = -1;
    bool ok = dlcl_devices_list(NULL, &list, &n, &chosen) == DLCL_OK && chosen >= 0;
    if (ok) *out = list[chosen];
    dlcl_devices_free(list);
    return ok;
}

/* C = A B (m x n x k, row-major) through a fresh context (CLBlast, with the stored tuning of
 * dir); 0 when it matches the reference, else the status or -1 for a wrong result. */
static int sgemm_in_fresh_ctx(const char *dir, size_t m, size_t n, size_t k)
{
    env_keep e;
    env_push(&e, dir);
    logbuf[0] = '\0';
    dlcl_ctx_params p = {.log = log_capture};
    dlcl_ctx *ctx = NULL;
    dlcl_tensor *A = NULL, *B = NULL, *C = NULL;
    int64_t da[2] = {(int64_t)m, (int64_t)k}, db[2] = {(int64_t)k, (int64_t)n}, dc[2] = {(int64_t)m, (int64_t)n};
    float *a = malloc(m * k * 4), *b = malloc(k * n * 4), *c = malloc(m * n * 4), *want = calloc(m * n, 4);
    uint64_t rng = t_seed() ^ (m * 7 + n);
    dlcl_status s = a && b && c && want ? dlcl_ctx_create(&p, &ctx) : DLCL_ERR_OUT_OF_MEMORY;
    env_pop(&e);
    if (s == DLCL_OK) {
        t_fill_uniform(&rng, a, m * k, -1, 1);
        t_fill_uniform(&rng, b, k * n, -1, 1);
        gemm_ref(0, 0, m, n, k, 1.0f, a, k, b, n, 0.0f, want, n);
        s = dlcl_tensor_create(ctx, 2, da, &A);
    }
    if (s == DLCL_OK) s = dlcl_tensor_create(ctx, 2, db, &B);
    if (s == DLCL_OK) s = dlcl_tensor_create(ctx, 2, dc, &C);
    if (s == DLCL_OK) s = dlcl_tensor_upload(A, a, 0, m * k);
    if (s == DLCL_OK) s = dlcl_tensor_upload(B, b, 0, k * n);
    if (s == DLCL_OK) s = dlcl_sgemm(ctx, DLCL_NO_TRANS, DLCL_NO_TRANS, m, n, k, 1.0f, A, 0, k, B, 0, n, 0.0f, C, 0, n);
    if (s == DLCL_OK) s = dlcl_tensor_download(C, c, 0, m * n);
    int r = s != DLCL_OK ? (int)s : t_close("C", c, want, m * n, 1e-4f, 1e-4f) ? 0 : -1;
    if (s != DLCL_OK) printf("# SGEMM %zux%zux%zu: %s: %s\n", m, n, k, dlcl_status_str(s), dlcl_last_error());
    dlcl_tensor_free(A), dlcl_tensor_free(B), dlcl_tensor_free(C);
    dlcl_ctx_free(ctx);
    free(a), free(b), free(c), free(want);
    return r;
}

/* a GEMM that CLBlast runs with its direct kernel, and a ragged one that takes the indirect
 * path: Xgemm plus the pad kernels */
#define SMALL 67, 45, 33
#define LARGE 700, 600, 500

static void clblast_sgemm_with_tuned_parameters_matches_ref(void)
{
    dlcl_device_info dev;
    dlcl_tuning *t = NULL;
    const char *dir = t_tmpdir(1);
    bool ok = this_device(&dev) && all_fixtures(&t) && dlcl_tuning_store(t, &dev, dir, NULL, 0) == DLCL_OK;
    dlcl_tuning_free(t);
    T_CHECK(ok, "%s", dlcl_last_error());
    int small = sgemm_in_fresh_ctx(dir, SMALL);
    bool logged = strstr(logbuf, "CLBlast: applied tuned parameters for") && strstr(logbuf, "Xgemm (16 parameters") &&
                  strstr(logbuf, "XgemmDirect (10 parameters") && strstr(logbuf, "Padtranspose (3 parameters");
    int large = sgemm_in_fresh_ctx(dir, LARGE);
    T_CHECK(small == 0 && large == 0, "SGEMM small %d, large %d", small, large);
    T_CHECK(logged, "the context did not log the tuning it applied");
}

static void damaged_tuning_is_ignored_with_a_warning(void)
{
    dlcl_device_info dev;
    dlcl_tuning *t = NULL;
    const char *dir = t_tmpdir(1);
    char path[1024] = "";
    bool ok = this_device(&dev) && all_fixtures(&t) && dlcl_tuning_store(t, &dev, dir, path, sizeof path) == DLCL_OK;
    dlcl_tuning_free(t);
    T_CHECK(ok && truncate(path, 30) == 0, "%s", dlcl_last_error());
    int r = sgemm_in_fresh_ctx(dir, SMALL);
    T_CHECK(r == 0, "SGEMM with a damaged tuning file: %d", r);
    T_CHECK(strstr(logbuf, "ignoring the stored tuning (DLCL_ERR_DATA)") && !strstr(logbuf, "applied"),
            "no warning about the damaged file");
}

static void tuning_clblast_rejects_gives_warning_and_defaults(void)
{
    dlcl_device_info dev;
    dlcl_tuning *t = NULL;
    const char *dir = t_tmpdir(1);
    /* Xgemm without 15 of its 16 parameters: CLBlastMissingOverrideParameter */
    const char *json = "{\"kernel_family\": \"xgemm_1\", \"precision\": \"32\", \"results\": "
                       "[{\"kernel\": \"Xgemm\", \"time\": 1, \"parameters\": {\"MWG\": 32}}]}";
    bool ok = this_device(&dev) && dlcl_tuning_create(&t) == DLCL_OK &&
              dlcl_tuning_add_tuner_json(t, json, "partial") == DLCL_OK && add_fixture(t, "clblast_copy_32.json") &&
              dlcl_tuning_store(t, &dev, dir, NULL, 0) == DLCL_OK;
    dlcl_tuning_free(t);
    T_CHECK(ok, "%s", dlcl_last_error());
    int r = sgemm_in_fresh_ctx(dir, LARGE);
    T_CHECK(r == 0, "SGEMM after a rejected override: %d", r);
    T_CHECK(strstr(logbuf, "CLBlast rejected the tuned parameters for Xgemm (status -2047") &&
                strstr(logbuf, "applied tuned parameters") && strstr(logbuf, "Copy (4 parameters"),
            "want a warning for Xgemm and Copy applied");
}

/* Proof that the overrides reach CLBlast: VWM=3 (no such vector type in xgemm.opencl)
 * makes Xgemm fail to compile, and the error names the tuning file. Good parameters are
 * stored and applied again after, since CLBlast keeps overrides for the whole process. */
static void tuned_parameters_reach_clblast(void)
{
    dlcl_device_info dev;
    dlcl_tuning *t = NULL;
    const char *dir = t_tmpdir(1);
    char *text = slurp("clblast_xgemm_1_32.json"), *p = text ? strstr(text, "\"time\": 1.915") : NULL;
    p = p ? strstr(p, "\"VWM\": 4") : NULL;
    if (p) p[7] = '3';
    bool ok = p && this_device(&dev) && dlcl_tuning_create(&t) == DLCL_OK &&
              dlcl_tuning_add_tuner_json(t, text, "vwm3") == DLCL_OK && dlcl_tuning_store(t, &dev, dir, NULL, 0) == DLCL_OK;
    dlcl_tuning_free(t);
    free(text);
    T_CHECK(ok, "%s", dlcl_last_error());
    t_capture_stdout_begin(); /* CLBlast prints the compiler's log of the bad kernel to stdout */
    int bad = sgemm_in_fresh_ctx(dir, LARGE);
    t_capture_stdout_end();
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", dlcl_last_error());
    ok = all_fixtures(&t) && dlcl_tuning_store(t, &dev, dir, NULL, 0) == DLCL_OK;
    dlcl_tuning_free(t);
    int good = ok ? sgemm_in_fresh_ctx(dir, LARGE) : -2;
    T_CHECK(bad == DLCL_ERR_BLAS, "SGEMM with VWM=3 gave %d, want DLCL_ERR_BLAS", bad);
    T_CHECK(strstr(msg, "tuned parameters of") && strstr(msg, "dlcl-tune --clear"), "error lacks the file: %s", msg);
    T_CHECK(good == 0, "SGEMM after restoring good parameters: %d", good);
}

static const t_case cases[] = {
    T_CASE(tuner_json_keeps_fastest_result_without_precision),
    T_CASE(tuner_json_every_family_maps_to_its_clblast_kernel),
    T_CASE(tuner_json_phases_merge_to_lowest_time),
    T_CASE(tuner_json_malformed_is_rejected),
    T_CASE(tuning_store_load_clear_round_trip),
    T_CASE(damaged_tuning_file_is_a_data_error),
    T_CASE(clblast_sgemm_with_tuned_parameters_matches_ref),
    T_CASE(damaged_tuning_is_ignored_with_a_warning),
    T_CASE(tuning_clblast_rejects_gives_warning_and_defaults),
    T_CASE(tuned_parameters_reach_clblast),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
