/* Data sources and the loader (lib/data, lib/net/data.c): CIFAR-10/100 batches and image
 * folders written by the test, synthetic samples, per-channel normalisation, resize and crop
 * geometry against a plain-C reference (and torchvision where it is installed), augmentation
 * reproducible per (seed, epoch, index) whatever the workers and only on the training split,
 * and malformed data refused with its status and message. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image_write.h>

#include "../lib/data/data.h"
#include "test.h"

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f}, imagenet_std[3] = {0.229f, 0.224f, 0.225f};

/* A path in a buffer of its own (8 in rotation). */
static const char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *pathf(const char *fmt, ...)
{
    static char bufs[8][700];
    static int slot;
    char *p = bufs[slot];
    slot = (slot + 1) % 8;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, 700, fmt, ap);
    va_end(ap);
    return p;
}

/* ------------------------------------------------------------------ CIFAR */

/* Pixel j of record r of a test batch: any byte value, different per record and position. */
static uint8_t cifar_px(int r, int j) { return (uint8_t)(r * 131 + j * 7 + (j >> 10) * 29); }

/* n records with the given labels; CIFAR-100 records get coarse label = fine / 5. */
static bool write_cifar(const char *path, int classes, int first, int n, const int *labels)
{
    int rec = classes == 10 ? 3073 : 3074;
    uint8_t *b = malloc((size_t)n * rec);
    if (b == NULL) return false;
    for (int r = 0; r < n; r++) {
        uint8_t *p = b + (size_t)r * rec;
        if (classes == 100) *p++ = (uint8_t)(labels[r] / 5);
        *p++ = (uint8_t)labels[r];
        for (int j = 0; j < 3072; j++) p[j] = cifar_px(first + r, j);
    }
    bool ok = t_write_file(path, b, (size_t)n * rec);
    free(b);
    return ok;
}

static void check_cifar(int classes)
{
    const char *dir = t_tmpdir(1);
    int la[3] = {0, classes - 1, 7}, lb[2] = {3, 5};
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/data_batch_1.bin", dir);
    snprintf(b, sizeof b, "%s/data_batch_2.bin", dir);
    T_CHECK(write_cifar(a, classes, 0, 3, la) && write_cifar(b, classes, 3, 2, lb), "write");
    const char *paths[2] = {a, b};
    data_source *src = NULL;
    T_OK(data_source_cifar(paths, 2, classes, &src));
    bool ok = src->n == 5 && src->c == 3 && src->h == 32 && src->w == 32 && src->classes == classes &&
              src->class_names == NULL;
    int want[5] = {la[0], la[1], la[2], lb[0], lb[1]}, bad = -1;
    for (int i = 0; i < 5; i++) {
        data_sample s;
        ok &= src->get(src, i, NULL, &s) == DLCL_OK && s.label == want[i] && s.h == 32 && s.w == 32;
        for (int j = 0; j < 3072 && bad < 0; j++)
            if (s.px[j] != cifar_px(i, j)) bad = i * 3072 + j; /* CHW as stored: byte j is pixel j */
    }
    data_source_free(src);
    T_CHECK(ok, "CIFAR-%d: shape, labels or class count wrong", classes);
    T_CHECK(bad < 0, "CIFAR-%d: pixel %d differs", classes, bad);
}

static void cifar10_records_keep_labels_and_chw_pixels(void) { check_cifar(10); }

static void cifar100_reads_the_fine_label(void) { check_cifar(100); }

static void cifar_class_names_come_from_the_meta_file(void)
{
    const char *dir = t_tmpdir(1);
    int l[1] = {9};
    const char *bin = pathf("%s/test_batch.bin", dir);
    T_CHECK(write_cifar(bin, 10, 0, 1, l), "write");
    const char *meta = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
    T_CHECK(t_write_file(pathf("%s/batches.meta.txt", dir), meta, strlen(meta)), "write");
    data_source *src = NULL;
    T_OK(data_source_cifar(&bin, 1, 10, &src));
    bool ok = src->class_names && !strcmp(src->class_names[0], "airplane") && !strcmp(src->class_names[9], "truck") &&
              src->class_names[10] == NULL;
    data_source_free(src);
    T_CHECK(ok, "names");
    const char *short_meta = "airplane\nautomobile\n";
    T_CHECK(t_write_file(pathf("%s/batches.meta.txt", dir), short_meta, strlen(short_meta)), "write");
    T_ERR(data_source_cifar(&bin, 1, 10, &src), DLCL_ERR_DATA, "batches.meta.txt: 2 class names, but [net] classes = 10");
}

/* ------------------------------------------------------------------ images */

/* An RGB test image: a pattern with edges and every byte value, or smooth when `smooth`. */
static uint8_t *pattern(int w, int h, int seed, bool smooth)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int y = 0; p && y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                p[((size_t)y * w + x) * 3 + c] =
                    smooth ? (uint8_t)(127.5 + 120 * sin(0.05 * x + 0.5 * c + seed) * cos(0.07 * y - 0.3 * c))
                           : (uint8_t)(x * 37 + y * 91 + c * 53 + seed * 17 + ((x * y) >> 2));
    return p;
}

/* Writes an image with stb_image_write by extension (png, bmp, jpg). */
static bool write_image(const char *path, int w, int h, int seed, bool smooth)
{
    uint8_t *p = pattern(w, h, seed, smooth);
    const char *ext = strrchr(path, '.') + 1;
    int ok = 0;
    if (p && !strcasecmp(ext, "png")) ok = stbi_write_png(path, w, h, 3, p, w * 3);
    else if (p && !strcasecmp(ext, "bmp")) ok = stbi_write_bmp(path, w, h, 3, p);
    else if (p) ok = stbi_write_jpg(path, w, h, 3, p, 90);
    free(p);
    return ok != 0;
}

/* A folder tree: classes in an order strcmp sorts differently from case-insensitive order. */
static const char *make_tree(void)
{
    const char *root = t_tmpdir(2);
    static char r[600];
    snprintf(r, sizeof r, "%s", root);
    static const char *const files[] = {
        "b_cat/z.png", "b_cat/a.BMP", "a_dog/img1.jpeg", "a_dog/img0.png", "C_up/x.JPG", "C_up/notes.txt",
    };
    static const int sizes[][2] = {{5, 7}, {8, 6}, {16, 12}, {9, 9}, {11, 4}, {0, 0}};
    mkdir(pathf("%s/b_cat", r), 0755);
    mkdir(pathf("%s/a_dog", r), 0755);
    mkdir(pathf("%s/C_up", r), 0755);
    mkdir(pathf("%s/C_up/nested", r), 0755);
    for (size_t i = 0; i < T_COUNT(files); i++) {
        const char *p = pathf("%s/%s", r, files[i]);
        if (sizes[i][0] == 0 ? !t_write_file(p, "not an image", 12) : !write_image(p, sizes[i][0], sizes[i][1], (int)i, 0))
            return NULL;
    }
    if (!write_image(pathf("%s/C_up/nested/ignored.png", r), 3, 3, 0, 0)) return NULL;
    return r;
}

static void folder_sorts_classes_and_files_like_torchvision(void)
{
    const char *root = make_tree();
    T_CHECK(root != NULL, "cannot write the tree");
    data_source *src = NULL;
    T_OK(data_source_folder(root, 3, 10, 1 << 20, 2, &src));
    static const char *const want_classes[] = {"C_up", "a_dog", "b_cat"};
    static const int want_label[] = {0, 1, 1, 2, 2}, want_hw[][2] = {{4, 11}, {9, 9}, {12, 16}, {6, 8}, {7, 5}};
    bool ok = src->n == 5 && src->classes == 3 && src->h == 0 && src->class_names != NULL;
    for (int k = 0; ok && k < 3; k++) ok &= strcmp(src->class_names[k], want_classes[k]) == 0;
    T_CHECK(ok, "%d samples, %d classes: %s %s %s", src->n, src->classes, src->class_names[0],
            src->class_names[1], src->class_names[2]);
    data_buf buf = {0};
    int bad = -1;
    for (int i = 0; i < 5; i++) {
        data_sample s;
        if (src->get(src, i, &buf, &s) != DLCL_OK || s.label != want_label[i] || s.h != want_hw[i][0] ||
            s.w != want_hw[i][1])
            bad = i;
    }
    /* a_dog/img0.png (sample 1) is lossless: planar pixels equal the pattern */
    data_sample s;
    uint8_t *p = pattern(9, 9, 3, 0);
    bool exact = src->get(src, 1, &buf, &s) == DLCL_OK;
    for (int c = 0; exact && c < 3; c++)
        for (int j = 0; j < 81; j++) exact &= s.px[c * 81 + j] == p[j * 3 + c];
    free(p);
    free(buf.px);
    data_source_free(src);
    T_CHECK(bad < 0, "sample %d: label or size wrong", bad);
    T_CHECK(exact, "PNG pixels are not planar copies of the file's");
}

/* ------------------------------------------------------------------ geometry */

/* torchvision's Resize (tensor path, antialias=False: bilinear, align_corners=False) of a
 * planar image to oh x ow, in double: the reference transform.c is checked against. */
static void ref_resize(const uint8_t *src, int c, int ih, int iw, int oh, int ow, double *dst)
{
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                double sy = fmax(0, (y + 0.5) * ih / oh - 0.5), sx = fmax(0, (x + 0.5) * iw / ow - 0.5);
                int y0 = (int)sy < ih - 1 ? (int)sy : ih - 1, x0 = (int)sx < iw - 1 ? (int)sx : iw - 1;
                int y1 = y0 + 1 < ih ? y0 + 1 : ih - 1, x1 = x0 + 1 < iw ? x0 + 1 : iw - 1;
                double ly = sy - y0, lx = sx - x0;
                const uint8_t *p = src + (size_t)ch * ih * iw;
                dst[((size_t)ch * oh + y) * ow + x] = (1 - ly) * ((1 - lx) * p[y0 * iw + x0] + lx * p[y0 * iw + x1]) +
                                                      ly * ((1 - lx) * p[y1 * iw + x0] + lx * p[y1 * iw + x1]);
            }
}

/* Resize(r) + CenterCrop(h, w) + Normalize, as torchvision computes sizes and offsets. */
static void ref_resize_crop(const uint8_t *src, int ih, int iw, int r, int h, int w, float *out)
{
    int nh, nw;
    if (iw <= ih)
        nw = r, nh = (int)((double)r * ih / iw);
    else
        nh = r, nw = (int)((double)r * iw / ih);
    double *big = malloc(sizeof(double) * 3 * nh * nw);
    ref_resize(src, 3, ih, iw, nh, nw, big);
    int top = (int)nearbyint((nh - h) / 2.0), left = (int)nearbyint((nw - w) / 2.0); /* Python's round */
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                out[((size_t)c * h + y) * w + x] =
                    (float)((big[((size_t)c * nh + y + top) * nw + x + left] / 255.0 - imagenet_mean[c]) /
                            imagenet_std[c]);
    free(big);
}

static data_transform imagenet_transform(int h, int w, int resize)
{
    data_transform t = {.c = 3, .h = h, .w = w, .resize = resize, .scale = 1.0f / 255.0f};
    memcpy(t.mean, imagenet_mean, sizeof imagenet_mean);
    memcpy(t.std, imagenet_std, sizeof imagenet_std);
    return t;
}

/* Planar copy of an interleaved RGB pattern. */
static uint8_t *planar(const uint8_t *rgb, int n)
{
    uint8_t *p = malloc((size_t)n * 3);
    for (int i = 0; p && i < n; i++)
        for (int c = 0; c < 3; c++) p[(size_t)c * n + i] = rgb[(size_t)i * 3 + c];
    return p;
}

static void resize_and_centre_crop_match_reference(void)
{
    /* (image w, h, resize, crop h, w): down, up, odd offsets that round half to even, portrait */
    static const int cases[][5] = {{37, 23, 20, 16, 16}, {13, 9, 30, 24, 24}, {50, 40, 21, 20, 20},
                                   {23, 37, 20, 17, 15}, {64, 64, 64, 64, 64}, {41, 30, 33, 33, 33}};
    transform_scratch scratch = {0};
    for (size_t k = 0; k < T_COUNT(cases); k++) {
        int iw = cases[k][0], ih = cases[k][1], r = cases[k][2], h = cases[k][3], w = cases[k][4];
        uint8_t *rgb = pattern(iw, ih, (int)k, 0), *px = planar(rgb, iw * ih);
        float *got = malloc(sizeof(float) * 3 * h * w), *want = malloc(sizeof(float) * 3 * h * w);
        data_transform t = imagenet_transform(h, w, r);
        data_sample s = {ih, iw, px, 0};
        dlcl_status st = transform_apply(&t, NULL, &s, 0, &scratch, got);
        ref_resize_crop(px, ih, iw, r, h, w, want);
        char label[64];
        snprintf(label, sizeof label, "%dx%d resize %d crop %dx%d", iw, ih, r, w, h);
        bool close = st == DLCL_OK && t_close(label, got, want, (size_t)3 * h * w, 0, 1e-4f);
        free(rgb);
        free(px);
        free(got);
        free(want);
        if (!close) transform_scratch_free(&scratch);
        T_CHECK(close, "%s differs from the reference", label);
    }
    /* no resize key: a sample of another size is stretched to h x w (aspect not kept) */
    uint8_t *rgb = pattern(19, 7, 1, 0), *px = planar(rgb, 19 * 7);
    float got[3 * 10 * 12];
    double ref[3 * 10 * 12];
    float want[3 * 10 * 12];
    data_transform t = imagenet_transform(10, 12, 0);
    data_sample s = {7, 19, px, 0};
    dlcl_status st = transform_apply(&t, NULL, &s, 0, &scratch, got);
    ref_resize(px, 3, 7, 19, 10, 12, ref);
    for (int i = 0; i < 3 * 120; i++) want[i] = (float)((ref[i] / 255.0 - imagenet_mean[i / 120]) / imagenet_std[i / 120]);
    free(rgb);
    free(px);
    transform_scratch_free(&scratch);
    T_CHECK(st == DLCL_OK, "%s", dlcl_last_error());
    T_CLOSE("19x7 stretched to 12x10", got, want, 3 * 120, 0, 1e-4f);
}

/* torchvision on the same PNG, both ways it resizes: PIL images (antialiased when shrinking,
 * uint8 between passes; ImageFolder's default) against antialias = 1, tensors with
 * antialias=False against antialias = 0; each within 1e-4 after normalisation. The size of the
 * difference between dlcl's plain bilinear and the PIL path is reported, for the README. */
static const char *tv_script =
    "import sys\n"
    "try:\n"
    "    import torch, torchvision.transforms as T\n"
    "    from PIL import Image\n"
    "except Exception:\n"
    "    sys.exit(77)\n"
    "img = Image.open(sys.argv[1]).convert('RGB')\n"
    "r, h, w = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])\n"
    "norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])\n"
    "if r < 0:\n"
    "    b = [int(v) for v in sys.argv[6:10]]\n"
    "    pil = lambda i: T.functional.resized_crop(i, *b, [h, w])\n"
    "    ten = lambda i: T.functional.resized_crop(i, *b, [h, w], antialias=False)\n"
    "elif r > 0:\n"
    "    pil = T.Compose([T.Resize(r), T.CenterCrop((h, w))])\n"
    "    ten = T.Compose([T.Resize(r, antialias=False), T.CenterCrop((h, w))])\n"
    "else:\n"
    "    pil = T.Resize((h, w))\n"
    "    ten = T.Resize((h, w), antialias=False)\n"
    "x = T.functional.pil_to_tensor(img).float() / 255\n"
    "t = norm(ten(x))\n"
    "p = norm(T.ToTensor()(pil(img)))\n"
    "open(sys.argv[5], 'wb').write(p.contiguous().numpy().tobytes() + t.contiguous().numpy().tobytes())\n";

static void resize_and_centre_crop_match_torchvision(void)
{
    if (system("/usr/bin/python3 -c 'import torchvision' >/dev/null 2>&1") != 0) T_SKIP("torchvision not installed");
    const char *dir = t_tmpdir(3);
    char script[700];
    snprintf(script, sizeof script, "%s/tv.py", dir);
    T_CHECK(t_write_file(script, tv_script, strlen(tv_script)), "write");
    /* (w, h, resize (0: to h x w; -1: RandomResizedCrop's box), crop h, w, smooth): shrink smooth
     * and sharp images, enlarge, shrink one side and enlarge the other, a resized crop */
    static const int cases[][6] = {{300, 200, 64, 56, 56, 1}, {300, 200, 64, 56, 56, 0}, {23, 37, 48, 40, 40, 0},
                                   {500, 375, 256, 224, 224, 0}, {90, 20, 0, 33, 41, 0},  {120, 90, -1, 32, 32, 0}};
    for (size_t k = 0; k < T_COUNT(cases); k++) {
        int iw = cases[k][0], ih = cases[k][1], r = cases[k][2], h = cases[k][3], w = cases[k][4];
        const char *png = pathf("%s/img%zu.png", dir, k), *out = pathf("%s/out%zu.f32", dir, k);
        T_CHECK(write_image(png, iw, ih, (int)k, cases[k][5]), "write %s", png);
        char cmd[2200];
        uint64_t key = transform_key(1, 2, 3);
        int box[4];
        transform_rrc_box(key, ih, iw, &box[0], &box[1], &box[2], &box[3]);
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %d %d %d %s %d %d %d %d", script, png, r, h, w, out, box[0],
                 box[1], box[2], box[3]);
        int rc = system(cmd);
        T_CHECK(rc == 0, "%s: exit %d", cmd, rc);
        size_t m = (size_t)3 * h * w;
        float *tv = malloc(2 * m * sizeof(float)), *pil = malloc(m * sizeof(float)), *plain = malloc(m * sizeof(float));
        FILE *f = fopen(out, "rb");
        bool read = f && tv && fread(tv, sizeof(float), 2 * m, f) == 2 * m;
        if (f) fclose(f);
        data_transform t = imagenet_transform(h, w, r > 0 ? r : 0);
        t.random_resized_crop = r < 0;
        data_buf buf = {0};
        transform_scratch scratch = {0};
        data_sample smp = {0};
        dlcl_status st = read ? image_decode(png, 3, 1 << 20, &buf, &smp.h, &smp.w) : DLCL_ERR_IO;
        smp.px = buf.px;
        t.antialias = 1;
        if (st == DLCL_OK) st = transform_apply(&t, NULL, &smp, key, &scratch, pil);
        t.antialias = 0;
        if (st == DLCL_OK) st = transform_apply(&t, NULL, &smp, key, &scratch, plain);
        free(buf.px);
        transform_scratch_free(&scratch);
        double max_d = 0, sum_d = 0;
        for (size_t i = 0; st == DLCL_OK && i < m; i++) {
            double d = fabs((double)plain[i] - tv[i]) * 255 * imagenet_std[i / ((size_t)h * w)]; /* in levels */
            max_d = d > max_d ? d : max_d;
            sum_d += d;
        }
        char geom[64];
        if (r < 0)
            snprintf(geom, sizeof geom, "resized_crop(%d, %d, %d, %d, (%d, %d))", box[0], box[1], box[2], box[3], h, w);
        else if (r)
            snprintf(geom, sizeof geom, "Resize(%d) + CenterCrop(%d, %d)", r, h, w);
        else
            snprintf(geom, sizeof geom, "Resize((%d, %d))", h, w);
        printf("# %dx%d %s image, %s: plain bilinear (antialias = 0) differs from PIL by %.2f levels on average, "
               "%.1f at most\n", iw, ih, cases[k][5] ? "smooth" : "sharp", geom, sum_d / (double)m, max_d);
        char label[96];
        snprintf(label, sizeof label, "case %zu, antialias = 1 against PIL", k);
        bool pil_ok = st == DLCL_OK && t_close(label, pil, tv, m, 0, 1e-4f);
        snprintf(label, sizeof label, "case %zu, antialias = 0 against tensors", k);
        bool tensor_ok = st == DLCL_OK && t_close(label, plain, tv + m, m, 0, 1e-4f);
        free(tv);
        free(pil);
        free(plain);
        T_CHECK(read && st == DLCL_OK, "%s", read ? dlcl_last_error() : "no torchvision output");
        T_CHECK(pil_ok && tensor_ok, "case %zu differs from torchvision (PIL %d, tensor %d)", k, pil_ok, tensor_ok);
    }
}

/* ------------------------------------------------------------------ synthetic */

static void synthetic_samples_are_a_function_of_seed_split_and_index(void)
{
    data_source *a = NULL, *b = NULL, *test = NULL, *other = NULL;
    T_OK(data_source_synthetic(50, 3, 4, 5, 7, 42, 0, &a));
    T_OK(data_source_synthetic(20, 3, 4, 5, 7, 42, 0, &b));
    T_OK(data_source_synthetic(50, 3, 4, 5, 7, 42, 1, &test));
    T_OK(data_source_synthetic(50, 3, 4, 5, 7, 43, 0, &other));
    data_buf ba = {0}, bb = {0};
    bool same = true, split_differs = false, seed_differs = false, in_range = true;
    int hist[256] = {0}, labels[7] = {0};
    for (int i = 0; i < 50; i++) {
        data_sample sa, sb;
        a->get(a, i, &ba, &sa);
        uint8_t copy[60];
        memcpy(copy, sa.px, 60);
        if (i < 20) {
            b->get(b, i, &bb, &sb);
            same &= !memcmp(copy, sb.px, 60) && sa.label == sb.label;
        }
        test->get(test, i, &bb, &sb);
        split_differs |= memcmp(copy, sb.px, 60) != 0;
        other->get(other, i, &bb, &sb);
        seed_differs |= memcmp(copy, sb.px, 60) != 0;
        in_range &= sa.label >= 0 && sa.label < 7;
        if (in_range) labels[sa.label]++;
        for (int j = 0; j < 60; j++) hist[copy[j]]++;
    }
    int levels = 0, classes = 0;
    for (int v = 0; v < 256; v++) levels += hist[v] > 0;
    for (int c = 0; c < 7; c++) classes += labels[c] > 0;
    free(ba.px);
    free(bb.px);
    data_source_free(a);
    data_source_free(b);
    data_source_free(test);
    data_source_free(other);
    T_CHECK(same, "the same (seed, split, index) gave different samples");
    T_CHECK(split_differs && seed_differs, "split %d seed %d", split_differs, seed_differs);
    T_CHECK(in_range && classes == 7 && levels > 200, "labels in range %d, %d classes, %d pixel levels", in_range,
            classes, levels);
}

/* ------------------------------------------------------------------ loader */

/* An in-memory source of n random 3 x h x w samples, label = index. */
static data_source *memory_source(int n, int h, int w, int grain)
{
    data_set ds = {n, 3, h, w, malloc((size_t)n * 3 * h * w), malloc((size_t)n * 4)};
    uint64_t s = 99;
    for (size_t j = 0; ds.pixels && j < (size_t)n * 3 * h * w; j++) ds.pixels[j] = (uint8_t)t_rand_u32(&s);
    for (int i = 0; ds.labels && i < n; i++) ds.labels[i] = i;
    data_source *src = NULL;
    if (data_source_memory("test", &ds, NULL, &src) != DLCL_OK) return NULL;
    src->grain = grain;
    return src;
}

/* Every batch of epoch e, concatenated (n * chw floats), and the labels. */
static bool run_epoch(data_loader *l, int e, float *x_all, int32_t *y_all, size_t chw)
{
    const float *x;
    const int32_t *y;
    int count, at = 0;
    if (data_loader_begin_epoch(l, e, 0) != DLCL_OK) return false;
    while (data_loader_next(l, &x, &y, &count) == DLCL_OK && count > 0) {
        memcpy(x_all + (size_t)at * chw, x, (size_t)count * chw * sizeof *x);
        memcpy(y_all + at, y, (size_t)count * sizeof *y);
        at += count;
    }
    return at == data_loader_samples(l);
}

static void loader_normalises_each_channel(void)
{
    enum { N = 9, H = 3, W = 4, CHW = 3 * H * W };
    data_source *src = memory_source(N, H, W, 2);
    T_CHECK(src != NULL, "source");
    data_loader_params p = {.batch = 4, .workers = 2, .t = imagenet_transform(H, W, 0)};
    data_loader *l = NULL;
    T_OK(data_loader_create(src, &p, &l));
    float x[N * CHW];
    int32_t y[N];
    bool ran = run_epoch(l, 0, x, y, CHW), exact = true;
    for (int i = 0; ran && i < N; i++) {
        data_sample s;
        src->get(src, y[i], NULL, &s);
        for (int j = 0; j < CHW; j++)
            exact &= x[i * CHW + j] == ((float)s.px[j] * (1.0f / 255.0f) - imagenet_mean[j / (H * W)]) /
                                           imagenet_std[j / (H * W)];
    }
    data_loader_free(l);
    data_source_free(src);
    T_CHECK(ran && exact, "x != (pixel / 255 - mean[c]) / std[c]");
}

/* The (dy, dx, flip) of RandomCrop(padding=pad) + RandomHorizontalFlip that turns sample s into
 * out, or -1: every output must be one of them exactly. */
static int find_crop_flip(const data_transform *t, const data_sample *s, const float *out, int pad)
{
    int H = t->h, W = t->w;
    for (int f = 0; f < 2; f++)
        for (int dy = 0; dy <= 2 * pad; dy++)
            for (int dx = 0; dx <= 2 * pad; dx++) {
                bool eq = true;
                for (int c = 0; eq && c < 3; c++)
                    for (int y = 0; eq && y < H; y++)
                        for (int x = 0; eq && x < W; x++) {
                            int u = y + dy - pad, v = (f ? W - 1 - x : x) + dx - pad;
                            float px = u < 0 || v < 0 || u >= H || v >= W ? 0.0f : (float)s->px[(c * H + u) * W + v];
                            eq = out[(c * H + y) * W + x] == transform_norm(t, c, px);
                        }
                if (eq) return f * 100 + dy * 10 + dx;
            }
    return -1;
}

static void augmentation_reproduces_per_epoch_and_ignores_workers(void)
{
    enum { N = 37, H = 6, W = 7, CHW = 3 * H * W };
    data_source *src = memory_source(N, H, W, 1);
    T_CHECK(src != NULL, "source");
    data_loader_params p = {.batch = 8, .shuffle = 1, .seed = 7, .workers = 1, .t = imagenet_transform(H, W, 0)};
    p.t.random_crop = 2;
    p.t.flip = 1;
    data_loader *one = NULL, *many = NULL;
    T_OK(data_loader_create(src, &p, &one));
    p.workers = 4;
    dlcl_status st = data_loader_create(src, &p, &many);
    static float x1[N * CHW], x4[N * CHW], x4b[N * CHW], x4e1[N * CHW];
    int32_t y1[N], y4[N], y4b[N], y4e1[N];
    bool ran = st == DLCL_OK && run_epoch(one, 0, x1, y1, CHW) && run_epoch(many, 0, x4, y4, CHW) &&
               run_epoch(many, 1, x4e1, y4e1, CHW) && run_epoch(many, 0, x4b, y4b, CHW);
    bool same_workers = ran && !memcmp(x1, x4, sizeof x1) && !memcmp(y1, y4, sizeof y1);
    bool same_again = ran && !memcmp(x4, x4b, sizeof x4);
    /* epoch 1: other offsets for the same samples (compared by sample, the order differs too) */
    int changed = 0, flips = 0, seen_offsets = 0, bad = -1;
    bool offsets[5][5] = {{false}};
    for (int i = 0; ran && i < N; i++) {
        int j = 0;
        while (y4e1[j] != y4[i]) j++;
        changed += memcmp(x4 + i * CHW, x4e1 + j * CHW, CHW * sizeof(float)) != 0;
        data_sample s;
        src->get(src, y4[i], NULL, &s);
        int g = find_crop_flip(&p.t, &s, x4 + i * CHW, 2);
        if (g < 0 && bad < 0) bad = y4[i];
        if (g >= 0) {
            flips += g >= 100;
            offsets[(g % 100) / 10][g % 10] = true;
        }
    }
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 5; b++) seen_offsets += offsets[a][b];
    data_loader_free(one);
    data_loader_free(many);
    data_source_free(src);
    T_CHECK(ran, "an epoch failed: %s", dlcl_last_error());
    T_CHECK(same_workers, "1 and 4 workers gave different batches");
    T_CHECK(same_again, "epoch 0 twice gave different batches");
    T_CHECK(bad < 0, "sample %d is no padded crop / flip of its image", bad);
    T_CHECK(changed > N / 2, "epoch 1 changed only %d of %d samples", changed, N);
    T_CHECK(flips > 5 && flips < N - 5 && seen_offsets > 12, "%d flips, %d offsets of 25 in %d samples", flips,
            seen_offsets, N);
}

static void random_resized_crop_draws_torchvision_boxes(void)
{
    int in_scale = 0, fallback_ok;
    for (int k = 0; k < 400; k++) {
        int top, left, bh, bw;
        transform_rrc_box(transform_key(3, k / 20, k), 40, 30, &top, &left, &bh, &bw);
        T_CHECK(top >= 0 && left >= 0 && bh > 0 && bw > 0 && top + bh <= 40 && left + bw <= 30,
                "box %d,%d %dx%d outside a 30x40 image", left, top, bw, bh);
        double frac = (double)bh * bw / 1200, ratio = (double)bw / bh;
        in_scale += frac > 0.06 && frac < 1.01 && ratio > 0.7 && ratio < 1.45;
    }
    /* no box fits a 1000 x 1 image in 10 attempts: the centre, ratio clamped to 4/3 */
    int top, left, bh, bw;
    transform_rrc_box(transform_key(3, 0, 0), 1, 1000, &top, &left, &bh, &bw);
    fallback_ok = top == 0 && bh == 1 && bw == 1 && left == 499;
    T_CHECK(in_scale == 400, "%d of 400 boxes outside scale (0.08, 1) or ratio (3/4, 4/3)", 400 - in_scale);
    T_CHECK(fallback_ok, "fallback box %d,%d %dx%d", left, top, bw, bh);
    /* the output is the box, resized */
    enum { IH = 23, IW = 31, H = 8, W = 8 };
    uint8_t *rgb = pattern(IW, IH, 5, 0), *px = planar(rgb, IH * IW);
    data_transform t = imagenet_transform(H, W, 0);
    t.random_resized_crop = 1;
    uint64_t key = transform_key(11, 2, 17);
    transform_rrc_box(key, IH, IW, &top, &left, &bh, &bw);
    uint8_t *box = malloc((size_t)3 * bh * bw);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < bh; y++)
            for (int x = 0; x < bw; x++) box[(c * bh + y) * bw + x] = px[(c * IH + top + y) * IW + left + x];
    double ref[3 * H * W];
    float want[3 * H * W], got[3 * H * W];
    ref_resize(box, 3, bh, bw, H, W, ref);
    for (int i = 0; i < 3 * H * W; i++)
        want[i] = (float)((ref[i] / 255.0 - imagenet_mean[i / (H * W)]) / imagenet_std[i / (H * W)]);
    transform_scratch scratch = {0};
    data_sample s = {IH, IW, px, 0};
    dlcl_status st = transform_apply(&t, NULL, &s, key, &scratch, got);
    transform_scratch_free(&scratch);
    free(box);
    free(rgb);
    free(px);
    T_CHECK(st == DLCL_OK, "%s", dlcl_last_error());
    T_CLOSE("RandomResizedCrop output", got, want, 3 * H * W, 0, 1e-4f);
}

/* ------------------------------------------------------------------ through the public API */

/* A one-layer net over [data] `data` (a folder or CIFAR), its config in dir. */
static const char *net_config(const char *dir, const char *input, int classes, const char *data)
{
    char text[2048];
    snprintf(text, sizeof text,
             "[net]\ninput = %s\nclasses = %d\nbatch = 4\nseed = 3\n[optimizer]\ntype = sgd\nlearning_rate = 0.1\n"
             "[data]\n%s\n[fc]\ntype = dense\nunits = %d\n",
             input, classes, data, classes);
    const char *p = pathf("%s/net.ini", dir);
    return t_write_file(p, text, strlen(text)) ? p : NULL;
}

/* Folder of 3 classes x 3 images of 8x8 (and one 12x10, resized). */
static const char *small_tree(void)
{
    static char root[600];
    snprintf(root, sizeof root, "%s/images", t_tmpdir(2));
    mkdir(root, 0755);
    static const char *const cls[] = {"ant", "bee", "wasp"};
    for (int c = 0; c < 3; c++) {
        mkdir(pathf("%s/%s", root, cls[c]), 0755);
        for (int i = 0; i < 3; i++)
            if (!write_image(pathf("%s/%s/%d.png", root, cls[c], i), c == 2 && i == 2 ? 12 : 8,
                             c == 2 && i == 2 ? 10 : 8, c * 3 + i, 0))
                return NULL;
    }
    return root;
}

static void augmentation_only_on_the_training_split(void)
{
    const char *root = small_tree();
    T_CHECK(root != NULL, "tree");
    char data[900];
    snprintf(data, sizeof data,
             "format = folder\ntrain = %s\ntest = %s\nrandom_crop = 2\nflip = 1\nmean = 0.485, 0.456, 0.406\n"
             "std = 0.229, 0.224, 0.225\nworkers = 3\nshuffle = 0", root, root);
    const char *cfg = net_config(pathf("%s/..", root), "3,8,8", 5, data);
    dlcl_net *net = NULL;
    T_OK(dlcl_net_create_inference(cfg, NULL, 0, NULL, &net));
    dlcl_loader *train = NULL, *test = NULL;
    dlcl_status st = dlcl_loader_create(net, DLCL_SPLIT_TRAIN, &train);
    if (st == DLCL_OK) st = dlcl_loader_create(net, DLCL_SPLIT_TEST, &test);
    static float xtr[9 * 192], xte[9 * 192], xte1[9 * 192], img[192];
    int32_t ytr[9], yte[9], yte1[9];
    bool ran = st == DLCL_OK && dlcl_loader_samples(test) == 9;
    for (int e = 0; ran && e < 2; e++) { /* the test split: the same in every epoch */
        const float *x;
        const int32_t *y;
        int count, at = 0;
        ran &= dlcl_loader_begin_epoch(test, e) == DLCL_OK;
        while (ran && dlcl_loader_next(test, &x, &y, &count) == DLCL_OK && count > 0) {
            memcpy((e ? xte1 : xte) + at * 192, x, count * 192 * sizeof *x);
            memcpy((e ? yte1 : yte) + at, y, count * sizeof *y);
            at += count;
        }
        ran &= at == 9;
    }
    const float *x;
    const int32_t *y;
    int count, at = 0;
    ran &= dlcl_loader_begin_epoch(train, 0) == DLCL_OK;
    while (ran && dlcl_loader_next(train, &x, &y, &count) == DLCL_OK && count > 0) {
        memcpy(xtr + at * 192, x, count * 192 * sizeof *x);
        memcpy(ytr + at, y, count * sizeof *y);
        at += count;
    }
    /* the test split is the plain transform: dlcl_net_load_image of the same file */
    bool plain = ran && dlcl_net_load_image(net, pathf("%s/wasp/2.png", root), img) == DLCL_OK &&
                 !memcmp(img, xte + 8 * 192, sizeof img) && !memcmp(xte, xte1, sizeof xte);
    int augmented = 0;
    for (int i = 0; i < 9; i++) augmented += memcmp(xtr + i * 192, xte + i * 192, 192 * sizeof(float)) != 0;
    bool labels = ran && ytr[0] == 0 && ytr[8] == 2 && yte[4] == 1 && !memcmp(ytr, yte, sizeof ytr);
    const char *n0 = dlcl_loader_class_name(test, 0), *n2 = dlcl_loader_class_name(test, 2);
    bool names = dlcl_loader_classes(test) == 3 && n0 && !strcmp(n0, "ant") && n2 && !strcmp(n2, "wasp") &&
                 dlcl_loader_class_name(test, 3) == NULL && dlcl_loader_class_name(test, -1) == NULL;
    char **list = NULL;
    int n_list = 0;
    dlcl_status sn = dlcl_net_class_names(net, &list, &n_list);
    bool net_names = sn == DLCL_OK && n_list == 3 && !strcmp(list[1], "bee") && list[3] == NULL;
    dlcl_class_names_free(list);
    dlcl_loader_free(train);
    dlcl_loader_free(test);
    dlcl_net_free(net);
    T_CHECK(st == DLCL_OK && ran, "%s", dlcl_last_error());
    T_CHECK(plain, "the test split is not the plain transform, or differs between epochs");
    T_CHECK(augmented >= 5, "only %d of 9 training samples augmented", augmented);
    T_CHECK(labels, "labels %d %d %d", ytr[0], ytr[8], yte[4]);
    T_CHECK(names && net_names, "class names");
}

static void load_image_uses_resize_crop_and_channel_means(void)
{
    const char *dir = t_tmpdir(1);
    const char *png = pathf("%s/photo.png", dir);
    T_CHECK(write_image(png, 37, 23, 4, 0), "write");
    const char *cfg = net_config(dir, "3,16,16", 10,
                                 "format = folder\nresize = 20\ncrop = 16\nmean = 0.485, 0.456, 0.406\n"
                                 "std = 0.229, 0.224, 0.225\nantialias = 0");
    dlcl_net *net = NULL;
    T_OK(dlcl_net_create_inference(cfg, NULL, 0, NULL, &net));
    float got[3 * 16 * 16], want[3 * 16 * 16];
    dlcl_status st = dlcl_net_load_image(net, png, got);
    char **list = (char **)1;
    int n = -1;
    dlcl_status sn = dlcl_net_class_names(net, &list, &n); /* no train= or test=: no names */
    dlcl_net_free(net);
    uint8_t *rgb = pattern(37, 23, 4, 0), *px = planar(rgb, 37 * 23);
    ref_resize_crop(px, 23, 37, 20, 16, 16, want);
    free(rgb);
    free(px);
    T_CHECK(st == DLCL_OK, "%s", dlcl_last_error());
    T_CHECK(sn == DLCL_OK && list == NULL && n == 0, "class names without a folder");
    T_CLOSE("dlcl_net_load_image with resize 20, crop 16", got, want, 3 * 16 * 16, 0, 1e-4f);
}

/* ------------------------------------------------------------------ malformed data */

typedef struct bad_data {
    const char *name;
    const char *data;   /* [data] lines; {D} is the case's directory */
    const char *input;  /* [net] input */
    int classes;
    void (*setup)(const char *dir);
    dlcl_status status;
    const char *msg; /* the message must contain it ({D} replaced) */
} bad_data;

static void put_cifar(const char *dir, int n, const int *labels, size_t cut)
{
    const char *p = pathf("%s/b.bin", dir);
    write_cifar(p, 10, 0, n, labels);
    if (cut) truncate(p, (off_t)(3073 * n - cut));
}

static void cifar_truncated(const char *dir) { put_cifar(dir, 3, (int[]){1, 2, 3}, 5); }
static void cifar_good(const char *dir) { put_cifar(dir, 3, (int[]){1, 2, 3}, 0); }
static void cifar_empty(const char *dir) { t_write_file(pathf("%s/b.bin", dir), "", 0); }
static void cifar_bad_label(const char *dir) { put_cifar(dir, 3, (int[]){1, 10, 3}, 0); }
static void folder_empty(const char *dir) { mkdir(pathf("%s/img", dir), 0755); }
static void folder_class_without_images(const char *dir)
{
    folder_empty(dir);
    mkdir(pathf("%s/img/cat", dir), 0755);
    mkdir(pathf("%s/img/dog", dir), 0755);
    write_image(pathf("%s/img/cat/1.png", dir), 4, 4, 0, 0);
    t_write_file(pathf("%s/img/dog/readme.txt", dir), "x", 1);
}
static void folder_corrupt_header(const char *dir)
{
    folder_empty(dir);
    mkdir(pathf("%s/img/cat", dir), 0755);
    write_image(pathf("%s/img/cat/1.png", dir), 4, 4, 0, 0);
    t_write_file(pathf("%s/img/cat/2.jpg", dir), "GIF89a, not a JPEG at all", 25);
}
static void folder_too_many_classes(const char *dir)
{
    folder_empty(dir);
    for (int c = 0; c < 4; c++) {
        mkdir(pathf("%s/img/c%d", dir, c), 0755);
        write_image(pathf("%s/img/c%d/1.png", dir, c), 4, 4, c, 0);
    }
}

static const bad_data bad_cases[] = {
    {"cifar_truncated", "format = cifar\ntrain = b.bin", "3,32,32", 10, cifar_truncated, DLCL_ERR_DATA,
     "{D}/b.bin: 9214 bytes is not a whole number of 3073-byte CIFAR-10 records (record 2 is cut short after 3068 bytes)"},
    {"cifar_empty", "format = cifar\ntrain = b.bin", "3,32,32", 10, cifar_empty, DLCL_ERR_DATA,
     "{D}/b.bin: empty file"},
    {"cifar_label_out_of_range", "format = cifar\ntrain = b.bin", "3,32,32", 10, cifar_bad_label, DLCL_ERR_DATA,
     "{D}/b.bin: record 1 has label 10, out of range for classes=10"},
    {"cifar_missing_file", "format = cifar\ntrain = b.bin, nope.bin", "3,32,32", 10, cifar_bad_label,
     DLCL_ERR_NOT_FOUND, "{D}/nope.bin: cannot open"},
    {"cifar_classes_not_10_or_100", "format = cifar\ntrain = b.bin", "3,32,32", 7, NULL, DLCL_ERR_CONFIG,
     "net.ini:10: [data] format=cifar reads CIFAR-10 or CIFAR-100 batches: [net] classes must be 10 or 100, not 7"},
    {"cifar_input_not_32x32", "format = cifar\ntrain = b.bin", "3,28,28", 10, cifar_good, DLCL_ERR_DATA,
     "images are 3x32x32 but [net] input = 3,28,28 (set [data] resize or crop"},
    {"folder_missing", "format = folder\ntrain = nowhere", "3,4,4", 3, NULL, DLCL_ERR_NOT_FOUND,
     "{D}/nowhere: cannot open directory"},
    {"folder_empty", "format = folder\ntrain = img", "3,4,4", 3, folder_empty, DLCL_ERR_DATA,
     "{D}/img: no class folders (format=folder reads one subfolder of images per class)"},
    {"folder_class_without_images", "format = folder\ntrain = img", "3,4,4", 3, folder_class_without_images,
     DLCL_ERR_DATA, "{D}/img/dog: class folder without images"},
    {"folder_corrupt_image", "format = folder\ntrain = img", "3,4,4", 3, folder_corrupt_header, DLCL_ERR_DATA,
     "{D}/img/cat/2.jpg: not a PNG, JPEG or BMP image"},
    {"folder_more_classes_than_net", "format = folder\ntrain = img", "3,4,4", 3, folder_too_many_classes,
     DLCL_ERR_DATA, "{D}/img: 4 class folders (c0 ... c3), but [net] classes = 3"},
    {"folder_four_channels", "format = folder\ntrain = img", "4,4,4", 3, folder_too_many_classes, DLCL_ERR_CONFIG,
     "format=folder decodes images to 1 or 3 channels, but [net] input has 4"},
    {"mean_list_wrong_length", "format = folder\ntrain = img\nmean = 0.5, 0.5", "3,4,4", 3, NULL, DLCL_ERR_CONFIG,
     "net.ini:12: [data] mean = '0.5, 0.5': 2 values, but [net] input has 3 channels"},
    {"std_zero", "format = folder\ntrain = img\nstd = 0.2, 0, 0.2", "3,4,4", 3, NULL, DLCL_ERR_CONFIG,
     "net.ini:12: [data] std = '0.2, 0, 0.2': expected comma-separated numbers in [1e-12"},
    {"crop_not_the_input", "format = folder\ntrain = img\nresize = 8\ncrop = 5", "3,4,4", 3, NULL, DLCL_ERR_CONFIG,
     "net.ini:13: [data] crop = 5: the centre crop is the net's input, and [net] input is 4x4"},
    {"idx_key_in_folder_format", "format = folder\ntrain_images = x.idx", "3,4,4", 3, NULL, DLCL_ERR_CONFIG,
     "net.ini:11: [data] train_images is not a key of format=folder, which reads train = DIR and test = DIR"},
    {"folder_two_dirs", "format = folder\ntrain = a, b", "3,4,4", 3, NULL, DLCL_ERR_CONFIG,
     "[data] train = 'a, b': format=folder reads one directory"},
    {"synthetic_without_size", "format = synthetic\ntest_samples = 8", "3,4,4", 3, NULL, DLCL_ERR_CONFIG,
     "[data] format=synthetic needs train_samples = N"},
    {"unknown_format", "format = cifar10", "3,4,4", 3, NULL, DLCL_ERR_CONFIG, "did you mean 'cifar'"},
};

static void malformed_data_is_refused_with_its_message(void)
{
    for (size_t i = 0; i < T_COUNT(bad_cases); i++) {
        const bad_data *b = &bad_cases[i];
        const char *dir = t_tmpdir(3);
        char dirc[600], msg[1200];
        snprintf(dirc, sizeof dirc, "%s", dir);
        if (b->setup) b->setup(dirc);
        const char *at = strstr(b->msg, "{D}");
        if (at)
            snprintf(msg, sizeof msg, "%.*s%s%s", (int)(at - b->msg), b->msg, dirc, at + 3);
        else
            snprintf(msg, sizeof msg, "%s", b->msg);
        const char *cfg = net_config(dirc, b->input, b->classes, b->data);
        dlcl_net *net = NULL;
        dlcl_loader *l = NULL;
        dlcl_status st = dlcl_net_create_inference(cfg, NULL, 0, NULL, &net);
        if (st == DLCL_OK) st = dlcl_loader_create(net, DLCL_SPLIT_TRAIN, &l);
        bool ok = t_err_matches(st, b->status, msg);
        if (!ok)
            printf("# %s: want %s \"%s\", got %s: %s\n", b->name, dlcl_status_str(b->status), msg, dlcl_status_str(st),
                   dlcl_last_error());
        dlcl_loader_free(l);
        dlcl_net_free(net);
        T_CHECK(ok, "case %s", b->name);
    }
}

/* A JPEG whose header is sound but whose data is cut: found when decoded, naming the file. */
static void corrupt_image_data_fails_its_batch_naming_the_file(void)
{
    const char *root = small_tree();
    T_CHECK(root != NULL, "tree");
    const char *bad = pathf("%s/bee/1.png", root);
    FILE *f = fopen(bad, "rb");
    unsigned char b[4096];
    size_t n = f ? fread(b, 1, sizeof b, f) : 0;
    if (f) fclose(f);
    T_CHECK(n > 80 && t_write_file(bad, b, 70), "cut %s", bad); /* IHDR intact, IDAT cut */
    data_source *src = NULL;
    T_OK(data_source_folder(root, 3, 3, 1 << 20, 1, &src));
    data_loader_params p = {.batch = 4, .workers = 2, .t = imagenet_transform(8, 8, 0)};
    data_loader *l = NULL;
    dlcl_status st = data_loader_create(src, &p, &l);
    const float *x;
    const int32_t *y;
    int count = -1;
    if (st == DLCL_OK) st = data_loader_begin_epoch(l, 0, 0);
    dlcl_status first = st == DLCL_OK ? data_loader_next(l, &x, &y, &count) : st; /* samples 0-3: 4 is bee/1 */
    dlcl_status second = first == DLCL_OK ? data_loader_next(l, &x, &y, &count) : first;
    char msg[600];
    snprintf(msg, sizeof msg, "%s", dlcl_last_error());
    dlcl_status third = second != DLCL_OK ? data_loader_next(l, &x, &y, &count) : DLCL_OK;
    data_loader_free(l);
    data_source_free(src);
    T_CHECK(first == DLCL_OK, "%s", dlcl_last_error());
    T_CHECK(second == DLCL_ERR_DATA && strstr(msg, "bee/1.png: cannot decode"), "%s: %s", dlcl_status_str(second), msg);
    T_CHECK(third == DLCL_OK && count == 1, "the batch after the bad one: %s, %d samples", dlcl_status_str(third), count);
}

static const t_case cases[] = {
    T_CASE(cifar10_records_keep_labels_and_chw_pixels),
    T_CASE(cifar100_reads_the_fine_label),
    T_CASE(cifar_class_names_come_from_the_meta_file),
    T_CASE(folder_sorts_classes_and_files_like_torchvision),
    T_CASE(resize_and_centre_crop_match_reference),
    T_CASE(resize_and_centre_crop_match_torchvision),
    T_CASE(synthetic_samples_are_a_function_of_seed_split_and_index),
    T_CASE(loader_normalises_each_channel),
    T_CASE(augmentation_reproduces_per_epoch_and_ignores_workers),
    T_CASE(random_resized_crop_draws_torchvision_boxes),
    T_CASE(augmentation_only_on_the_training_split),
    T_CASE(load_image_uses_resize_crop_and_channel_means),
    T_CASE(malformed_data_is_refused_with_its_message),
    T_CASE(corrupt_image_data_fails_its_batch_naming_the_file),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
