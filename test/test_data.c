/* Data sources (lib/data) and the public loader (lib/net/data.c): CIFAR-10/100 batches and
 * image folders written by the test, synthetic samples, augmentation only on the training
 * split, class names, and malformed data refused with its status and message. Geometry and
 * augmentation themselves: test_transform.c. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data_util.h"

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

/* ------------------------------------------------------------------ through the public API */

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
        const void *x;
        const int32_t *y;
        int count, at = 0;
        ran &= dlcl_loader_begin_epoch(test, e) == DLCL_OK;
        while (ran && dlcl_loader_next(test, &x, &y, &count) == DLCL_OK && count > 0) {
            memcpy((e ? xte1 : xte) + at * 192, x, count * 192 * sizeof(float));
            memcpy((e ? yte1 : yte) + at, y, count * sizeof *y);
            at += count;
        }
        ran &= at == 9;
    }
    const void *x;
    const int32_t *y;
    int count, at = 0;
    ran &= dlcl_loader_begin_epoch(train, 0) == DLCL_OK;
    while (ran && dlcl_loader_next(train, &x, &y, &count) == DLCL_OK && count > 0) {
        memcpy(xtr + at * 192, x, count * 192 * sizeof(float));
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
static void folder_dangling_link(const char *dir)
{
    folder_class_without_images(dir);
    symlink("nowhere.png", pathf("%s/img/dog/gone.png", dir));
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
    {"folder_dangling_link", "format = folder\ntrain = img", "3,4,4", 3, folder_dangling_link, DLCL_ERR_NOT_FOUND,
     "{D}/img/dog/gone.png: cannot open: No such file or directory"},
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


/* ------------------------------------------------------------------ tokens */

/* An llm.c token file: the 256-int32 header (magic, version, count) and count uint16 tokens;
 * tokens[i] = (i * 37 + first) % vocab. */
static bool write_llmc(const char *path, int32_t magic, int32_t version, int32_t count, int n, int first, int vocab)
{
    size_t bytes = 1024 + 2 * (size_t)n;
    uint8_t *b = calloc(1, bytes);
    if (b == NULL) return false;
    int32_t h[3] = {magic, version, count};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++) b[4 * i + k] = (uint8_t)((uint32_t)h[i] >> (8 * k));
    for (int i = 0; i < n; i++) {
        int t = (i * 37 + first) % vocab;
        b[1024 + 2 * i] = (uint8_t)t;
        b[1024 + 2 * i + 1] = (uint8_t)(t >> 8);
    }
    bool ok = t_write_file(path, b, bytes);
    free(b);
    return ok;
}

static void token_files_concatenate_and_window(void)
{
    const char *dir = t_tmpdir(1);
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/a.bin", dir);
    snprintf(b, sizeof b, "%s/b.bin", dir);
    T_CHECK(write_llmc(a, 20240520, 1, 300, 300, 0, 50257) && write_llmc(b, 20240520, 1, 101, 101, 5, 50257), "write");
    const char *paths[2] = {a, b};
    token_set ts;
    dlcl_status st = token_set_load(paths, 2, 1, 50257, &ts);
    T_CHECK(st == DLCL_OK, "load: %s", dlcl_last_error());
    T_CHECK(ts.n == 401 && ts.tok[299] == (299 * 37) % 50257 && ts.tok[300] == 5 && ts.tok[400] == (100 * 37 + 5),
            "tokens: n %zu, [299] %d, [300] %d", ts.n, (int)ts.tok[299], (int)ts.tok[300]);
    /* evaluation: windows at stride T from 0, each input T tokens and its T next ones */
    token_loader *l = NULL;
    token_loader_params p = {.batch = 3, .context = 16, .train = 0, .seed = 1, .what = "t"};
    T_CHECK(token_loader_create(&ts, &p, &l) == DLCL_OK, "%s", dlcl_last_error());
    T_CHECK(token_loader_windows(l) == 25 && token_loader_batches(l) == 9, "eval: %ld windows, %d batches",
            token_loader_windows(l), token_loader_batches(l));
    const int32_t *x, *y;
    int count, seen = 0;
    bool ok = true;
    token_loader_begin_epoch(l, 0, 0);
    while (token_loader_next(l, &x, &y, &count) == DLCL_OK && count > 0) {
        for (int s = 0; s < count; s++, seen++)
            for (int t = 0; t < 16; t++)
                ok &= x[s * 16 + t] == ts.tok[seen * 16 + t] && y[s * 16 + t] == ts.tok[seen * 16 + t + 1];
    }
    T_CHECK(ok && seen == 25, "eval windows: %d seen", seen);
    token_loader_free(l);
    /* training: tokens / (batch T) batches of windows drawn from (seed, epoch, window) */
    p.train = 1;
    p.batch = 4;
    T_CHECK(token_loader_create(&ts, &p, &l) == DLCL_OK, "%s", dlcl_last_error());
    T_CHECK(token_loader_batches(l) == 6 && token_loader_windows(l) == 24, "train: %d batches", token_loader_batches(l));
    size_t w0[24], w1[24], again[24];
    for (int i = 0; i < 24; i++) {
        w0[i] = token_window_start(l, 0, i);
        w1[i] = token_window_start(l, 1, i);
        T_CHECK(w0[i] + 16 < ts.n, "window %d starts at %zu: no room for the next token", i, w0[i]);
    }
    token_loader_begin_epoch(l, 0, 2); /* a resume at batch 2 sees the windows 8.. of the same epoch */
    T_CHECK(token_loader_next(l, &x, &y, &count) == DLCL_OK && count == 4, "next");
    for (int s = 0; s < 4; s++) {
        again[s] = token_window_start(l, 0, 8 + s);
        T_CHECK(x[s * 16] == ts.tok[w0[8 + s]] && y[s * 16 + 15] == ts.tok[w0[8 + s] + 16], "resumed window %d", s);
    }
    int differ = 0;
    for (int i = 0; i < 24; i++) differ += w0[i] != w1[i];
    T_CHECK(again[0] == w0[8] && differ > 12, "epochs draw other windows (%d of 24 differ)", differ);
    token_loader_free(l);
    token_set_free(&ts);
}

static void malformed_token_files_are_refused_naming_the_file(void)
{
    const char *dir = t_tmpdir(1);
    char p[700];
    snprintf(p, sizeof p, "%s/t.bin", dir);
    const char *paths[1] = {p};
    token_set ts;
    struct {
        int32_t magic, version, count;
        int n, vocab;
        dlcl_status want;
        const char *msg;
    } cases[] = {
        {20240521, 1, 10, 10, 100, DLCL_ERR_DATA, "magic 20240521 is not an llm.c token file's (20240520)"},
        {20240520, 2, 10, 10, 100, DLCL_ERR_DATA, "token file version 2; dlcl reads version 1"},
        {20240520, 1, 11, 10, 100, DLCL_ERR_DATA, "the header says 11 tokens (1046 bytes with the header), but the file has 1044"},
        {20240520, 1, 0, 0, 100, DLCL_ERR_DATA, "no tokens"},
        {20240520, 1, 10, 10, 40, DLCL_ERR_DATA, "token 2 is 74, outside the vocabulary of [net] classes = 40"},
    };
    for (size_t i = 0; i < T_COUNT(cases); i++) {
        T_CHECK(write_llmc(p, cases[i].magic, cases[i].version, cases[i].count, cases[i].n, 0, 100), "write");
        dlcl_status st = token_set_load(paths, 1, 1, cases[i].vocab, &ts);
        T_CHECK(st == cases[i].want && strstr(dlcl_last_error(), cases[i].msg) && strstr(dlcl_last_error(), p),
                "case %zu: status %d, message '%s'", i, (int)st, dlcl_last_error());
        T_CHECK(ts.tok == NULL, "case %zu: nothing kept", i);
    }
    T_CHECK(t_write_file(p, "abc", 3), "write");
    T_CHECK(token_set_load(paths, 1, 1, 100, &ts) == DLCL_ERR_DATA && strstr(dlcl_last_error(), "shorter than the 1024-byte header"),
            "short file: %s", dlcl_last_error());
    T_CHECK(token_set_load(paths, 1, 0, 100, &ts) == DLCL_ERR_CONFIG && strstr(dlcl_last_error(), "classes must be 256"),
            "text with another vocabulary: %s", dlcl_last_error());
    T_CHECK(token_set_load(paths, 1, 0, 256, &ts) == DLCL_OK && ts.n == 3 && ts.tok[2] == 'c', "text: %s",
            dlcl_last_error());
    token_loader *l;
    token_loader_params lp = {.batch = 2, .context = 3, .train = 1, .what = p};
    T_CHECK(token_loader_create(&ts, &lp, &l) == DLCL_ERR_DATA && strstr(dlcl_last_error(), "3 tokens, fewer than one window"),
            "too short for a window: %s", dlcl_last_error());
    token_set_free(&ts);
    snprintf(p, sizeof p, "%s/missing.bin", dir);
    T_CHECK(token_set_load(paths, 1, 1, 100, &ts) == DLCL_ERR_NOT_FOUND, "missing file: %s", dlcl_last_error());
}

static const t_case cases[] = {
    T_CASE(cifar10_records_keep_labels_and_chw_pixels),
    T_CASE(cifar100_reads_the_fine_label),
    T_CASE(cifar_class_names_come_from_the_meta_file),
    T_CASE(folder_sorts_classes_and_files_like_torchvision),
    T_CASE(synthetic_samples_are_a_function_of_seed_split_and_index),
    T_CASE(augmentation_only_on_the_training_split),
    T_CASE(malformed_data_is_refused_with_its_message),
    T_CASE(corrupt_image_data_fails_its_batch_naming_the_file),
    T_CASE(token_files_concatenate_and_window),
    T_CASE(malformed_token_files_are_refused_naming_the_file),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
