/* The public data API over lib/data: loaders configured by the net's [data] section, and
 * single images for prediction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb_image.h>

#include "../data/data.h"
#include "net.h"

#define IMAGE_MAX_PIXELS (64u << 20) /* refuse decoding anything larger than 64 Mpixel */

struct dlcl_loader {
    data_set ds;
    data_loader *dl;
};

static const char *const split_names[DLCL_SPLIT_COUNT] = {"train", "test"};

dlcl_status dlcl_loader_create(const dlcl_net *net, dlcl_split split, dlcl_loader **out)
{
    if (out == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_loader_create: out is NULL");
    *out = NULL;
    if (net == NULL || (int)split < 0 || split >= DLCL_SPLIT_COUNT)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_loader_create: bad net or split");
    const net_data_cfg *d = &net->data;
    if (d->paths[split][0] == NULL || d->paths[split][1] == NULL)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [data] needs %s_images and %s_labels", net->cfg.path,
                         split_names[split], split_names[split]);
    dlcl_loader *l = calloc(1, sizeof *l);
    if (l == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    dlcl_status st = data_set_load_idx(d->paths[split][0], d->paths[split][1], net->classes, &l->ds);
    if (st == DLCL_OK &&
        (l->ds.c != net->input.c || l->ds.h != net->input.h || l->ds.w != net->input.w))
        st = dlcl__err(DLCL_ERR_DATA, "%s: images are %dx%dx%d but [net] input = %d,%d,%d", d->paths[split][0], l->ds.c,
                       l->ds.h, l->ds.w, net->input.c, net->input.h, net->input.w);
    if (st == DLCL_OK && d->limit[split] > 0 && d->limit[split] < l->ds.n) l->ds.n = (int)d->limit[split];
    if (st == DLCL_OK) {
        data_loader_params p = {.batch = net->batch,
                                .shuffle = split == DLCL_SPLIT_TRAIN && d->shuffle,
                                .seed = net->seed,
                                .scale = (float)d->scale,
                                .mean = (float)d->mean,
                                .std = (float)d->std,
                                .drop_last = 0};
        st = data_loader_create(&l->ds, &p, &l->dl);
    }
    if (st != DLCL_OK) {
        dlcl_loader_free(l);
        return st;
    }
    *out = l;
    return DLCL_OK;
}

void dlcl_loader_free(dlcl_loader *l)
{
    if (l == NULL) return;
    data_loader_free(l->dl);
    data_set_free(&l->ds);
    free(l);
}

size_t dlcl_loader_samples(const dlcl_loader *l) { return l ? (size_t)l->ds.n : 0; }

size_t dlcl_loader_batches(const dlcl_loader *l) { return l ? (size_t)data_loader_batches(l->dl) : 0; }

dlcl_status dlcl_loader_begin_epoch(dlcl_loader *l, int epoch) { return dlcl_loader_begin_epoch_at(l, epoch, 0); }

dlcl_status dlcl_loader_begin_epoch_at(dlcl_loader *l, int epoch, size_t first_batch)
{
    if (l == NULL || epoch < 0) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_loader_begin_epoch: bad loader or epoch");
    if (first_batch > (size_t)data_loader_batches(l->dl))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_loader_begin_epoch_at: batch %zu is past the %d of an epoch",
                         first_batch, data_loader_batches(l->dl));
    return data_loader_begin_epoch(l->dl, epoch, (int)first_batch);
}

dlcl_status dlcl_loader_next(dlcl_loader *l, const float **x, const int32_t **y, int *count)
{
    if (l == NULL || x == NULL || y == NULL || count == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_loader_next: arguments must not be NULL");
    return data_loader_next(l->dl, x, y, count);
}

/* Bilinear sample of channel ch at (fy, fx) in an 8-bit interleaved image. */
static float sample(const unsigned char *img, int w, int h, int comp, int ch, float fy, float fx)
{
    int y0 = (int)fy, x0 = (int)fx;
    int y1 = y0 + 1 < h ? y0 + 1 : h - 1, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
    float ay = fy - (float)y0, ax = fx - (float)x0;
#define PX(yy, xx) ((float)img[((size_t)(yy) * (size_t)w + (size_t)(xx)) * (size_t)comp + (size_t)ch])
    return (1 - ay) * ((1 - ax) * PX(y0, x0) + ax * PX(y0, x1)) + ay * ((1 - ax) * PX(y1, x0) + ax * PX(y1, x1));
#undef PX
}

dlcl_status dlcl_net_load_image(const dlcl_net *net, const char *path, float *out)
{
    if (net == NULL || path == NULL || out == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_load_image: arguments must not be NULL");
    int w, h, comp, want = net->input.c == 1 ? 1 : 3;
    if (net->input.c != 1 && net->input.c != 3)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "%s: images can feed nets with 1 or 3 input channels, not %d", path,
                         net->input.c);
    struct stat sb;
    if (stat(path, &sb) != 0) return dlcl__err(DLCL_ERR_NOT_FOUND, "%s: no such file", path);
    if (!stbi_info(path, &w, &h, &comp))
        return dlcl__err(DLCL_ERR_DATA, "%s: not a readable image (%s)", path, stbi_failure_reason());
    if (w < 1 || h < 1 || (uint64_t)w * (uint64_t)h > IMAGE_MAX_PIXELS)
        return dlcl__err(DLCL_ERR_DATA, "%s: %dx%d image is larger than the %u-pixel limit", path, w, h, IMAGE_MAX_PIXELS);
    unsigned char *img = stbi_load(path, &w, &h, &comp, want);
    if (img == NULL) return dlcl__err(DLCL_ERR_DATA, "%s: cannot decode (%s)", path, stbi_failure_reason());
    const net_data_cfg *d = &net->data;
    int H = net->input.h, W = net->input.w;
    for (int c = 0; c < net->input.c; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                /* align pixel centres, as torch's interpolate(align_corners=False) */
                float fy = ((float)y + 0.5f) * (float)h / (float)H - 0.5f;
                float fx = ((float)x + 0.5f) * (float)w / (float)W - 0.5f;
                fy = fy < 0 ? 0 : fy > (float)(h - 1) ? (float)(h - 1) : fy;
                fx = fx < 0 ? 0 : fx > (float)(w - 1) ? (float)(w - 1) : fx;
                float v = sample(img, w, h, want, c, fy, fx);
                out[((size_t)c * H + y) * W + x] = (float)((v * d->scale - d->mean) / d->std);
            }
    stbi_image_free(img);
    return DLCL_OK;
}
