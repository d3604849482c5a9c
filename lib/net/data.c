/* The public data API over lib/data: loaders configured by the net's [data] section, and
 * single images for prediction. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../data/data.h"
#include "net.h"

static const char *const data_keys[] = {"format", "train_images", "train_labels", "test_images", "test_labels",
                                        "scale", "mean", "std", "shuffle", "train_samples", "test_samples",
                                        "max_image_pixels", NULL};

static char *resolve_path(const char *config_path, const char *p)
{
    if (p == NULL || p[0] == '\0') return NULL;
    if (p[0] == '/') return strdup(p);
    char *tmp = strdup(config_path);
    if (tmp == NULL) return NULL;
    const char *dir = dirname(tmp);
    size_t n = strlen(dir) + strlen(p) + 2;
    char *out = malloc(n);
    if (out) snprintf(out, n, "%s/%s", dir, p);
    free(tmp);
    return out;
}

/* The [data] section (paths resolved against the config file's directory). */
dlcl_status net_parse_data(dlcl_net *net)
{
    const cfg *c = &net->cfg;
    net_data_cfg *d = &net->data;
    d->scale = 1.0 / 255.0;
    d->std = 1.0;
    d->shuffle = 1;
    d->max_image_pixels = IMAGE_DEFAULT_MAX_PIXELS;
    cfg_section *s = cfg_find_section(c, "data");
    if (s == NULL) return DLCL_OK;
    static const char *const formats[] = {"idx", NULL};
    static const char *const keys[DLCL_SPLIT_COUNT][2] = {{"train_images", "train_labels"},
                                                           {"test_images", "test_labels"}};
    int fmt;
    dlcl_status st;
    if ((st = cfg_get_enum(c, s, "format", 0, 0, formats, &fmt)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "scale", 0, 1.0 / 255.0, -1e9, 1e9, &d->scale)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "mean", 0, 0.0, -1e9, 1e9, &d->mean)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "std", 0, 1.0, 1e-12, 1e9, &d->std)) != DLCL_OK ||
        (st = cfg_get_bool(c, s, "shuffle", 0, 1, &d->shuffle)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "train_samples", 0, 0, 0, 1L << 40, &d->limit[DLCL_SPLIT_TRAIN])) != DLCL_OK ||
        (st = cfg_get_int(c, s, "test_samples", 0, 0, 0, 1L << 40, &d->limit[DLCL_SPLIT_TEST])) != DLCL_OK ||
        (st = cfg_get_int(c, s, "max_image_pixels", 0, IMAGE_DEFAULT_MAX_PIXELS, 1, 1L << 40, &d->max_image_pixels)) !=
            DLCL_OK)
        return st;
    for (int sp = 0; sp < DLCL_SPLIT_COUNT; sp++)
        for (int k = 0; k < 2; k++) {
            const char *v;
            if ((st = cfg_get_str(c, s, keys[sp][k], 0, "", &v)) != DLCL_OK) return st;
            if (v[0] != '\0' && (d->paths[sp][k] = resolve_path(c->path, v)) == NULL)
                return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        }
    return cfg_check_unused(c, s, data_keys);
}

/* The net's input as images, C,H,W: the one place the data code reads the net's shape. */
static dlcl_status input_chw(const dlcl_net *net, int *c, int *h, int *w)
{
    if (net->input.ndim != 3)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: image data needs [net] input = C,H,W, not %d values", net->cfg.path,
                         net->input.ndim);
    *c = net->input.dims[0], *h = net->input.dims[1], *w = net->input.dims[2];
    return DLCL_OK;
}

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
    int c = 0, h = 0, w = 0;
    dlcl_status st = input_chw(net, &c, &h, &w);
    if (st == DLCL_OK) st = data_set_load_idx(d->paths[split][0], d->paths[split][1], net->classes, &l->ds);
    if (st == DLCL_OK && (l->ds.c != c || l->ds.h != h || l->ds.w != w))
        st = dlcl__err(DLCL_ERR_DATA, "%s: images are %dx%dx%d but [net] input = %d,%d,%d", d->paths[split][0], l->ds.c,
                       l->ds.h, l->ds.w, c, h, w);
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

dlcl_status dlcl_net_load_image(const dlcl_net *net, const char *path, float *out)
{
    if (net == NULL || path == NULL || out == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_load_image: arguments must not be NULL");
    const net_data_cfg *d = &net->data;
    int c = 0, h = 0, w = 0;
    dlcl_status st = input_chw(net, &c, &h, &w);
    return st == DLCL_OK ? image_load(path, c, h, w, d->scale, d->mean, d->std, d->max_image_pixels, out) : st;
}
