/* The per-sample transform (lib/data/transform.c, resample.c) and the loader's workers: resize
 * and crop geometry against a plain-C reference and, where it is installed, torchvision (both
 * its PIL and its tensor path); RandomResizedCrop's boxes; per-channel normalisation;
 * augmentation reproducible per (seed, epoch, index) whatever the number of workers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "data_util.h"

/* ------------------------------------------------------------------ geometry */

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
    "norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])\n"
    "for line in open(sys.argv[1]):\n"
    "    png, out, r, h, w, *b = line.split()\n"
    "    r, h, w, b = int(r), int(h), int(w), [int(v) for v in b]\n"
    "    img = Image.open(png).convert('RGB')\n"
    "    if r < 0:\n"
    "        pil = lambda i: T.functional.resized_crop(i, *b, [h, w])\n"
    "        ten = lambda i: T.functional.resized_crop(i, *b, [h, w], antialias=False)\n"
    "    elif r > 0:\n"
    "        pil = T.Compose([T.Resize(r), T.CenterCrop((h, w))])\n"
    "        ten = T.Compose([T.Resize(r, antialias=False), T.CenterCrop((h, w))])\n"
    "    else:\n"
    "        pil = T.Resize((h, w))\n"
    "        ten = T.Resize((h, w), antialias=False)\n"
    "    t = norm(ten(T.functional.pil_to_tensor(img).float() / 255))\n"
    "    p = norm(T.ToTensor()(pil(img)))\n"
    "    open(out, 'wb').write(p.contiguous().numpy().tobytes() + t.contiguous().numpy().tobytes())\n";

/* (w, h, resize (0: to h x w; -1: RandomResizedCrop's box), crop h, w, smooth): shrink smooth
 * and sharp images, enlarge, shrink one side and enlarge the other, a resized crop */
static const int tv_cases[][6] = {{300, 200, 64, 56, 56, 1}, {300, 200, 64, 56, 56, 0}, {23, 37, 48, 40, 40, 0},
                                  {500, 375, 256, 224, 224, 0}, {90, 20, 0, 33, 41, 0},  {120, 90, -1, 32, 32, 0}};

/* Case k of tv_cases against torchvision's two outputs in tv (PIL, then tensors). */
static bool check_tv_case(size_t k, const char *png, const float *tv, uint64_t key, const int *box)
{
    int iw = tv_cases[k][0], ih = tv_cases[k][1], r = tv_cases[k][2], h = tv_cases[k][3], w = tv_cases[k][4];
    size_t m = (size_t)3 * h * w;
    float *pil = malloc(m * sizeof(float)), *plain = malloc(m * sizeof(float));
    data_transform t = imagenet_transform(h, w, r > 0 ? r : 0);
    t.random_resized_crop = r < 0;
    data_buf buf = {0};
    transform_scratch scratch = {0};
    data_sample smp = {0};
    dlcl_status st = pil && plain ? image_decode(png, 3, 1 << 20, &buf, &smp.h, &smp.w) : DLCL_ERR_OUT_OF_MEMORY;
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
    char geom[64], label[96];
    if (r < 0)
        snprintf(geom, sizeof geom, "resized_crop(%d, %d, %d, %d, (%d, %d))", box[0], box[1], box[2], box[3], h, w);
    else if (r)
        snprintf(geom, sizeof geom, "Resize(%d) + CenterCrop(%d, %d)", r, h, w);
    else
        snprintf(geom, sizeof geom, "Resize((%d, %d))", h, w);
    printf("# %dx%d %s image, %s: plain bilinear (antialias = 0) differs from PIL by %.2f levels on average, "
           "%.1f at most\n", iw, ih, tv_cases[k][5] ? "smooth" : "sharp", geom, sum_d / (double)m, max_d);
    if (st != DLCL_OK) printf("# case %zu: %s\n", k, dlcl_last_error());
    snprintf(label, sizeof label, "case %zu, antialias = 1 against PIL", k);
    bool ok = st == DLCL_OK && t_close(label, pil, tv, m, 0, 1e-4f);
    snprintf(label, sizeof label, "case %zu, antialias = 0 against tensors", k);
    ok = ok && t_close(label, plain, tv + m, m, 0, 1e-4f);
    free(pil);
    free(plain);
    return ok;
}

static void resize_and_centre_crop_match_torchvision(void)
{
    const char *dir = t_tmpdir(3);
    char script[700], list[700], cmd[1600];
    snprintf(script, sizeof script, "%s/tv.py", dir);
    snprintf(list, sizeof list, "%s/cases.txt", dir);
    FILE *f = fopen(list, "w");
    T_CHECK(f && t_write_file(script, tv_script, strlen(tv_script)), "write");
    uint64_t key = transform_key(1, 2, 3);
    int box[T_COUNT(tv_cases)][4];
    for (size_t k = 0; k < T_COUNT(tv_cases); k++) { /* every image first: python starts once */
        int iw = tv_cases[k][0], ih = tv_cases[k][1];
        const char *png = pathf("%s/img%zu.png", dir, k);
        bool ok = write_image(png, iw, ih, (int)k, tv_cases[k][5]);
        transform_rrc_box(key, ih, iw, &box[k][0], &box[k][1], &box[k][2], &box[k][3]);
        fprintf(f, "%s %s/out%zu.f32 %d %d %d %d %d %d %d\n", png, dir, k, tv_cases[k][2], tv_cases[k][3],
                tv_cases[k][4], box[k][0], box[k][1], box[k][2], box[k][3]);
        if (!ok) fclose(f);
        T_CHECK(ok, "write %s", png);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", script, list);
    int rc = system(cmd);
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) T_SKIP("torchvision or PIL not installed");
    T_CHECK(rc == 0, "%s: exit %d", cmd, rc);
    for (size_t k = 0; k < T_COUNT(tv_cases); k++) {
        size_t m = (size_t)3 * tv_cases[k][3] * tv_cases[k][4];
        float *tv = malloc(2 * m * sizeof(float));
        FILE *o = fopen(pathf("%s/out%zu.f32", dir, k), "rb");
        bool read = o && tv && fread(tv, sizeof(float), 2 * m, o) == 2 * m;
        if (o) fclose(o);
        bool ok = read && check_tv_case(k, pathf("%s/img%zu.png", dir, k), tv, key, box[k]);
        free(tv);
        T_CHECK(read, "case %zu: no torchvision output", k);
        T_CHECK(ok, "case %zu differs from torchvision", k);
    }
}

/* ------------------------------------------------------------------ loader */

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

static const t_case cases[] = {
    T_CASE(resize_and_centre_crop_match_reference),
    T_CASE(resize_and_centre_crop_match_torchvision),
    T_CASE(random_resized_crop_draws_torchvision_boxes),
    T_CASE(loader_normalises_each_channel),
    T_CASE(augmentation_reproduces_per_epoch_and_ignores_workers),
    T_CASE(load_image_uses_resize_crop_and_channel_means),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
