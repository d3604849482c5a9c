/* Parsers of untrusted files: INI configs (lib/io/config.c) and IDX data with its loader
 * (lib/data); safetensors has test_safetensors.c. Each malformed input expects its status
 * and a message naming the place. No OpenCL needed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../lib/data/data.h"
#include "../lib/io/config.h"
#include "test.h"

static const char *tmpfile_with(const char *name, const void *data, size_t len)
{
    static char path[4][700];
    static int slot;
    const char *dir = t_tmpdir(slot);
    if (dir == NULL) return NULL;
    char *p = path[slot];
    slot = (slot + 1) % 4;
    snprintf(p, 700, "%s/%s", dir, name);
    return t_write_file(p, data, len) ? p : NULL;
}

/* ------------------------------------------------------------------ INI */

typedef struct cfg_bad {
    const char *text, *msg;
} cfg_bad;

static void config_syntax_errors_name_the_line(void)
{
    static const cfg_bad bad[] = {
        {"[a]\nx=1\n[broken\n", "c.ini:3:"},
        {"[a]\nx=1\nno equals sign here\n", "c.ini:3: syntax error"},
        {"x=1\n[a]\n", "c.ini:1: key 'x' before any [section]"},
        {"[a]\nx=1\n[b]\n[a]\n", "c.ini:4: duplicate section [a] (first at"},
        {"[a]\nx=1\ny=2\nx=3\n", "c.ini:4: [a] duplicate key 'x' (first at"},
        {"[]\n", "c.ini:1: empty section name"},
    };
    for (size_t i = 0; i < T_COUNT(bad); i++) {
        const char *p = tmpfile_with("c.ini", bad[i].text, strlen(bad[i].text));
        cfg c;
        dlcl_status s = cfg_load(p, &c);
        T_CHECK(s == DLCL_ERR_CONFIG && strstr(dlcl_last_error(), bad[i].msg), "case %zu: %s: %s", i,
                dlcl_status_str(s), dlcl_last_error());
    }
    char longline[400];
    memset(longline, 'a', sizeof longline);
    memcpy(longline, "[s]\nk=", 6);
    longline[sizeof longline - 1] = '\n';
    cfg c;
    T_ERR(cfg_load(tmpfile_with("c.ini", longline, sizeof longline), &c), DLCL_ERR_CONFIG, "c.ini:2: line longer");
    T_ERR(cfg_load("/nonexistent/dir/c.ini", &c), DLCL_ERR_NOT_FOUND, "/nonexistent/dir/c.ini");
}

static const char *good_ini = "; comment\n# another\n\n[net]\n  input = 1, 28,28 ; inline\nbatch=64 # inline\n"
                              "name = a;b\nempty =\n[empty]\n[layer]\ntype=conv\nfilters = 32\nact = rleu\n"
                              "flag = yes\nrate = 0.5\n";

static void config_values_getters_and_errors(void)
{
    const char *p = tmpfile_with("g.ini", good_ini, strlen(good_ini));
    cfg c;
    T_OK(cfg_load(p, &c));
    cfg_section *net = cfg_find_section(&c, "net"), *empty = cfg_find_section(&c, "empty"),
                *l = cfg_find_section(&c, "layer");
    long in[3], v;
    int n = 0, b;
    double d;
    const char *str;
    static const char *const acts[] = {"relu", "sigmoid", "tanh", NULL};
    bool ok = net && empty && l && net->line == 4 && empty->line == 9 && empty->count == 0 && l->line == 10;
    dlcl_status s1 = cfg_get_int_list(&c, net, "input", 1, 1, 100, in, 3, &n);
    dlcl_status s2 = cfg_get_int(&c, net, "batch", 1, 0, 1, 1000, &v);
    dlcl_status s3 = cfg_get_str(&c, net, "name", 1, NULL, &str);
    bool strs = s3 == DLCL_OK && strcmp(str, "a;b") == 0 && cfg_find(net, "empty") && cfg_find(net, "empty")->value[0] == 0;
    dlcl_status s4 = cfg_get_bool(&c, l, "flag", 1, 0, &b);
    dlcl_status s5 = cfg_get_float(&c, l, "rate", 1, 0, 0, 1, &d);
    int e;
    dlcl_status s6 = cfg_get_enum(&c, l, "act", 1, 0, acts, &e);
    char m6[512];
    snprintf(m6, sizeof m6, "%s", dlcl_last_error());
    dlcl_status s7 = cfg_get_int(&c, l, "filters", 1, 0, 64, 128, &v);
    char m7[512];
    snprintf(m7, sizeof m7, "%s", dlcl_last_error());
    dlcl_status s8 = cfg_get_int(&c, l, "missing", 1, 0, 0, 1, &v);
    char m8[512];
    snprintf(m8, sizeof m8, "%s", dlcl_last_error());
    static const char *const known[] = {"type", "filters", "activation", "flag", "rate", NULL};
    dlcl_status s9 = cfg_check_unused(&c, l, known); /* 'act' was read: nothing unknown */
    dlcl_status o1 = cfg_override(&c, "layer.filters=abc");
    dlcl_status s10 = cfg_get_int(&c, l, "filters", 1, 0, 1, 128, &v);
    char m10[512];
    snprintf(m10, sizeof m10, "%s", dlcl_last_error());
    dlcl_status o2 = cfg_override(&c, "layr.filters=3");
    char mo2[512];
    snprintf(mo2, sizeof mo2, "%s", dlcl_last_error());
    dlcl_status o3 = cfg_override(&c, "nodot=3"), o4 = cfg_override(&c, "layer.newkey=7");
    dlcl_status s11 = cfg_check_unused(&c, l, known);
    char m11[512];
    snprintf(m11, sizeof m11, "%s", dlcl_last_error());
    cfg_free(&c);
    T_CHECK(ok, "sections or lines wrong");
    T_CHECK(s1 == DLCL_OK && n == 3 && in[0] == 1 && in[1] == 28 && in[2] == 28, "int list");
    T_CHECK(s2 == DLCL_OK && strs && s4 == DLCL_OK && b == 1 && s5 == DLCL_OK && d == 0.5, "values");
    T_CHECK(s6 == DLCL_ERR_CONFIG && strstr(m6, "g.ini:13: [layer] act = 'rleu'") && strstr(m6, "did you mean 'relu'"), "%s", m6);
    T_CHECK(s7 == DLCL_ERR_CONFIG && strstr(m7, "g.ini:12:") && strstr(m7, "[64, 128]"), "%s", m7);
    T_CHECK(s8 == DLCL_ERR_CONFIG && strstr(m8, "g.ini:10: [layer]: missing key 'missing'"), "%s", m8);
    T_CHECK(s9 == DLCL_OK, "check_unused flagged a read key");
    T_CHECK(o1 == DLCL_OK && s10 == DLCL_ERR_CONFIG && strstr(m10, "--set: [layer] filters = 'abc'"), "%s", m10);
    T_CHECK(o2 == DLCL_ERR_CONFIG && strstr(mo2, "did you mean [layer]"), "%s", mo2);
    T_CHECK(o3 == DLCL_ERR_CONFIG && o4 == DLCL_OK, "override parsing");
    T_CHECK(s11 == DLCL_ERR_CONFIG && strstr(m11, "unknown key 'newkey'") && strstr(m11, "valid keys"), "%s", m11);
}

static void config_suggest_picks_nearest_close_name(void)
{
    static const char *const c[] = {"filters", "size", "stride", "pad", NULL};
    T_CHECK(cfg_suggest("filtres", c) == c[0], "transposition");
    T_CHECK(cfg_suggest("strde", c) == c[2], "deletion");
    T_CHECK(cfg_suggest("paddingx", c) == NULL, "far word");
    T_CHECK(cfg_suggest("SIZE", c) == c[1], "case");
}

/* ------------------------------------------------------------------ IDX and loader */

static size_t idx_bytes(unsigned char *buf, int rank, const uint32_t *dims, const uint8_t *data, size_t n)
{
    buf[0] = buf[1] = 0;
    buf[2] = 8;
    buf[3] = (unsigned char)rank;
    for (int i = 0; i < rank; i++)
        for (int b = 0; b < 4; b++) buf[4 + 4 * i + b] = (unsigned char)(dims[i] >> (24 - 8 * b));
    memcpy(buf + 4 + 4 * rank, data, n);
    return 4 + 4 * (size_t)rank + n;
}

static const char *gz_file(const char *name, const void *data, size_t n)
{
    const char *dir = t_tmpdir(3);
    static char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    gzFile g = gzopen(path, "wb");
    if (g == NULL) return NULL;
    gzwrite(g, data, (unsigned)n);
    gzclose(g);
    return path;
}

static void idx_raw_and_gzip_load_identically(void)
{
    enum { N = 13, H = 5, W = 7 };
    static unsigned char img[16 + N * H * W], lab[8 + N];
    uint8_t px[N * H * W], lb[N];
    for (int i = 0; i < N * H * W; i++) px[i] = (uint8_t)(i * 31);
    for (int i = 0; i < N; i++) lb[i] = (uint8_t)(i % 10);
    uint32_t di[3] = {N, H, W}, dl[1] = {N};
    size_t ni = idx_bytes(img, 3, di, px, sizeof px), nl = idx_bytes(lab, 1, dl, lb, sizeof lb);
    char ip[700], lp[700];
    snprintf(ip, sizeof ip, "%s", tmpfile_with("img", img, ni));
    snprintf(lp, sizeof lp, "%s", tmpfile_with("lab", lab, nl));
    data_set a, b;
    T_OK(data_set_load_idx(ip, lp, 10, &a));
    char gi[700];
    snprintf(gi, sizeof gi, "%s", gz_file("img.gz", img, ni));
    dlcl_status s = data_set_load_idx(gi, lp, 10, &b);
    bool same = s == DLCL_OK && a.n == N && a.h == H && a.w == W && a.c == 1 && b.n == N &&
                !memcmp(a.pixels, px, sizeof px) && !memcmp(b.pixels, px, sizeof px) && a.labels[12] == 2;
    data_set_free(&a);
    data_set_free(&b);
    data_set_free(&b);
    T_CHECK(same, "%s", dlcl_last_error());
}

static void idx_malformed_files_are_refused(void)
{
    static unsigned char img[4096], lab[256];
    uint8_t px[6 * 4 * 4] = {0}, lb[6] = {1, 2, 3, 4, 5, 9};
    uint32_t di[3] = {6, 4, 4}, dl[1] = {6};
    size_t ni = idx_bytes(img, 3, di, px, sizeof px), nl = idx_bytes(lab, 1, dl, lb, sizeof lb);
    char good_img[700], good_lab[700];
    snprintf(good_img, sizeof good_img, "%s", tmpfile_with("gi", img, ni));
    snprintf(good_lab, sizeof good_lab, "%s", tmpfile_with("gl", lab, nl));
    data_set ds;
    /* truncated images */
    T_ERR(data_set_load_idx(tmpfile_with("t", img, ni - 5), good_lab, 10, &ds), DLCL_ERR_DATA, "truncated");
    /* truncated gzip stream */
    char gz[700];
    snprintf(gz, sizeof gz, "%s", gz_file("full.gz", img, ni));
    FILE *f = fopen(gz, "rb");
    unsigned char gzb[4096];
    size_t gzn = f ? fread(gzb, 1, sizeof gzb, f) : 0;
    if (f) fclose(f);
    T_ERR(data_set_load_idx(tmpfile_with("cut.gz", gzb, gzn / 2), good_lab, 10, &ds), DLCL_ERR_DATA, "truncated");
    /* trailing garbage */
    img[ni] = 7;
    T_ERR(data_set_load_idx(tmpfile_with("long", img, ni + 1), good_lab, 10, &ds), DLCL_ERR_DATA, "more data");
    /* wrong magic, wrong rank */
    unsigned char bad[4096];
    memcpy(bad, img, ni);
    bad[2] = 0x0d;
    T_ERR(data_set_load_idx(tmpfile_with("magic", bad, ni), good_lab, 10, &ds), DLCL_ERR_DATA, "magic");
    T_ERR(data_set_load_idx(good_lab, good_lab, 10, &ds), DLCL_ERR_DATA, "rank 3");
    /* zero dimension */
    uint32_t dz[3] = {6, 0, 4};
    size_t nz = idx_bytes(bad, 3, dz, px, 0);
    T_ERR(data_set_load_idx(tmpfile_with("zero", bad, nz), good_lab, 10, &ds), DLCL_ERR_DATA, "dimension 1 is 0");
    /* absurd header in a tiny file: refused before allocating */
    uint32_t dh[3] = {0x7fffffff, 28, 28};
    size_t nh = idx_bytes(bad, 3, dh, px, 16);
    T_ERR(data_set_load_idx(tmpfile_with("absurd", bad, nh), good_lab, 10, &ds), DLCL_ERR_DATA, "beyond dlcl's limits");
    uint32_t dm[3] = {60000, 28, 28}; /* plausible, but far more than a 48-byte file can hold */
    nh = idx_bytes(bad, 3, dm, px, 32);
    T_ERR(data_set_load_idx(tmpfile_with("short", bad, nh), good_lab, 10, &ds), DLCL_ERR_DATA, "but the file has");
    /* count mismatch and label range */
    uint32_t d5[1] = {5};
    size_t n5 = idx_bytes(bad, 1, d5, lb, 5);
    T_ERR(data_set_load_idx(good_img, tmpfile_with("l5", bad, n5), 10, &ds), DLCL_ERR_DATA, "6 images but");
    T_ERR(data_set_load_idx(good_img, good_lab, 9, &ds), DLCL_ERR_DATA, "label 9 at index 5 is out of range for classes=9");
    T_ERR(data_set_load_idx("/nonexistent/img.gz", good_lab, 10, &ds), DLCL_ERR_NOT_FOUND, "/nonexistent/img.gz");
}

static void idx_reads_real_fashion_mnist_test_set(void)
{
    const char *img = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
               *lab = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
    FILE *f = fopen(img, "rb");
    if (f == NULL) {
        T_SKIP("%s not installed", img);
    }
    fclose(f);
    data_set ds;
    T_OK(data_set_load_idx(img, lab, 10, &ds));
    int hist[10] = {0};
    for (int i = 0; i < ds.n; i++) hist[ds.labels[i]]++;
    bool ok = ds.n == 10000 && ds.h == 28 && ds.w == 28;
    for (int c = 0; c < 10; c++) ok &= hist[c] == 1000;
    data_set_free(&ds);
    T_CHECK(ok, "n %d, %dx%d, histogram wrong", ds.n, ds.h, ds.w);
}

static data_source *counting_source(int n)
{
    data_set ds = {n, 1, 2, 3, malloc((size_t)n * 6), malloc((size_t)n * 4)};
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 6; j++) ds.pixels[i * 6 + j] = (uint8_t)((i + j * 40) % 256);
        ds.labels[i] = i;
    }
    data_source *src = NULL;
    return data_source_memory("test", &ds, NULL, &src) == DLCL_OK ? src : NULL;
}

/* Runs one epoch; returns the order of labels seen (labels are sample indices here). */
static int epoch_order(data_loader *l, int epoch, int *order, int n, int *batches, const data_source *src,
                       const data_loader_params *p, bool *values_ok)
{
    const float *x;
    const int32_t *y;
    int count, seen = 0;
    *batches = 0;
    if (data_loader_begin_epoch(l, epoch, 0) != DLCL_OK) return -1;
    while (data_loader_next(l, &x, &y, &count) == DLCL_OK && count > 0) {
        for (int i = 0; i < count && seen < n; i++, seen++) {
            order[seen] = y[i];
            data_sample smp;
            src->get(src, y[i], NULL, &smp);
            for (int j = 0; j < 6; j++) {
                float want = ((float)smp.px[j] * p->t.scale - p->t.mean[0]) / p->t.std[0];
                if (x[i * 6 + j] != want) *values_ok = false;
            }
        }
        (*batches)++;
    }
    return seen;
}

static void loader_covers_each_sample_once_and_reproduces_shuffles(void)
{
    enum { N = 103 };
    data_source *src = counting_source(N);
    T_CHECK(src != NULL, "source");
    data_loader_params p = {.batch = 10, .shuffle = 1, .seed = 5, .t = {.c = 1, .h = 2, .w = 3, .scale = 1 / 255.0f}};
    p.t.mean[0] = 0.25f;
    p.t.std[0] = 0.5f;
    data_loader *a = NULL, *b = NULL;
    T_OK(data_loader_create(src, &p, &a));
    T_OK(data_loader_create(src, &p, &b));
    int o0[N], o1[N], o0b[N], batches;
    bool values_ok = true;
    int s0 = epoch_order(a, 0, o0, N, &batches, src, &p, &values_ok);
    int nb0 = batches;
    int s1 = epoch_order(a, 1, o1, N, &batches, src, &p, &values_ok);
    int s2 = epoch_order(b, 0, o0b, N, &batches, src, &p, &values_ok);
    int seen[N] = {0};
    for (int i = 0; s0 == N && i < N; i++) seen[o0[i]]++;
    bool once = s0 == N && s1 == N && s2 == N;
    for (int i = 0; i < N; i++) once &= seen[i] == 1;
    bool same = !memcmp(o0, o0b, sizeof o0), differs = memcmp(o0, o1, sizeof o0) != 0;
    bool shuffled = false;
    for (int i = 0; i < N; i++) shuffled |= o0[i] != i;
    /* the shuffle of (seed 5, epoch 0) as dlcl has always drawn it: resumed runs depend on it */
    static const int first10[10] = {68, 97, 20, 57, 11, 40, 74, 32, 88, 23};
    bool kept = !memcmp(o0, first10, sizeof first10);
    data_loader_free(a);
    data_loader_free(b);
    /* unshuffled, drop_last */
    p.shuffle = 0;
    p.drop_last = 1;
    T_OK(data_loader_create(src, &p, &a));
    int o2[N];
    int s3 = epoch_order(a, 0, o2, N, &batches, src, &p, &values_ok);
    bool in_order = s3 == 100 && batches == 10 && data_loader_batches(a) == 10;
    for (int i = 0; i < 100; i++) in_order &= o2[i] == i;
    /* free in the middle of an epoch */
    const float *x;
    const int32_t *y;
    int count;
    data_loader_begin_epoch(a, 1, 0);
    data_loader_next(a, &x, &y, &count);
    data_loader_free(a);
    data_source_free(src);
    T_CHECK(once, "a sample missing or repeated (%d %d %d)", s0, s1, s2);
    T_CHECK(nb0 == 11, "%d batches for 103 samples of 10", nb0);
    T_CHECK(same && differs && shuffled, "same %d differs %d shuffled %d", same, differs, shuffled);
    T_CHECK(kept, "the shuffle changed: %d %d %d %d %d ...", o0[0], o0[1], o0[2], o0[3], o0[4]);
    T_CHECK(values_ok, "normalised values differ");
    T_CHECK(in_order, "unshuffled drop_last order wrong");
}

static const t_case cases[] = {
    T_CASE(config_syntax_errors_name_the_line),
    T_CASE(config_values_getters_and_errors),
    T_CASE(config_suggest_picks_nearest_close_name),
    T_CASE(idx_raw_and_gzip_load_identically),
    T_CASE(idx_malformed_files_are_refused),
    T_CASE(idx_reads_real_fashion_mnist_test_set),
    T_CASE(loader_covers_each_sample_once_and_reproduces_shuffles),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
