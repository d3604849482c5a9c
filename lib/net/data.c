/* The public data API over lib/data: the [data] section, loaders configured by it, class
 * names for the tools, and single images for prediction. */
#include <ctype.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../data/data.h"
#include "net.h"

/* The net's input as images, C,H,W: the one place lib/net/data.c reads net->input. Data
 * sources feed images, so another shape is an error (a net of another input shape reads
 * its data elsewhere: token files come with step 6). */
static dlcl_status net_input_chw(const dlcl_net *net, int *c, int *h, int *w)
{
    *c = 1, *h = *w = 0;
    if (net->input.ndim != 3)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [data] feeds images, which need [net] input = C,H,W, not %d values",
                         net->cfg.path, net->input.ndim);
    *c = net->input.dims[0], *h = net->input.dims[1], *w = net->input.dims[2];
    return DLCL_OK;
}

static const char *const format_names[] = {"idx", "cifar", "folder", "synthetic", "tokens", "text", NULL};
_Static_assert(DLCL__ARRAY_LEN(format_names) == NET_DATA_FORMAT_COUNT + 1, "a name per [data] format");

#define F_IDX (1u << NET_DATA_IDX)
#define F_TOKENS (1u << NET_DATA_TOKENS | 1u << NET_DATA_TEXT)
#define F_FILES (1u << NET_DATA_CIFAR | 1u << NET_DATA_FOLDER | F_TOKENS)
#define F_ALL ((1u << NET_DATA_FORMAT_COUNT) - 1)
#define F_IMG (F_ALL & ~F_TOKENS) /* synthetic too: random images, or random tokens for a token net */

/* Every [data] key and the formats it belongs to. */
static const struct data_key {
    const char *key;
    unsigned formats;
} data_keys[] = {
    {"format", F_ALL},       {"train_images", F_IDX},        {"train_labels", F_IDX},  {"test_images", F_IDX},
    {"test_labels", F_IDX},  {"train", F_FILES},             {"test", F_FILES},        {"scale", F_IMG},
    {"mean", F_IMG},         {"std", F_IMG},                 {"shuffle", F_ALL},       {"train_samples", F_ALL},
    {"test_samples", F_ALL}, {"max_image_pixels", F_IMG},    {"workers", F_IMG},       {"resize", F_IMG},
    {"crop", F_IMG},         {"random_crop", F_IMG},         {"flip", F_IMG},          {"random_resized_crop", F_IMG},
    {"antialias", F_IMG},
};

/* What each format reads, for messages. */
static const char *const format_inputs[] = {
    "train_images, train_labels, test_images, test_labels (IDX files)",
    "train = FILE[, FILE...] and test = FILE[, FILE...] (CIFAR binary batches)",
    "train = DIR and test = DIR (one subfolder of images per class)",
    "train_samples = N and test_samples = N (random samples of the input's shape)",
    "train = FILE[, FILE...] and test = FILE (llm.c token files), train_samples / test_samples (windows)",
    "train = FILE[, FILE...] and test = FILE (bytes as tokens), train_samples / test_samples (windows)",
};
_Static_assert(DLCL__ARRAY_LEN(format_inputs) == NET_DATA_FORMAT_COUNT, "a line per [data] format");

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

/* A key present in [data] that another format reads is an error naming the line. */
static dlcl_status check_format_keys(const cfg *c, const cfg_section *s, net_data_format fmt)
{
    for (size_t i = 0; i < DLCL__ARRAY_LEN(data_keys); i++) {
        const cfg_entry *e = cfg_find(s, data_keys[i].key);
        if (e == NULL || (data_keys[i].formats & (1u << fmt))) continue;
        char where[64];
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [data] %s is not a key of format=%s, which reads %s",
                         cfg_where(c, e->line, where, sizeof where), e->key, format_names[fmt], format_inputs[fmt]);
    }
    return DLCL_OK;
}

/* mean= or std=: one value for every channel, or one per input channel. */
static dlcl_status parse_channel_list(const cfg *c, const cfg_section *s, const char *key, double def, double min,
                                      int channels, double *out, int *n)
{
    dlcl_status st = cfg_get_float_list(c, s, key, 0, min, 1e9, out, 64, n);
    if (st != DLCL_OK) return st;
    if (*n == 0) {
        out[0] = def;
        *n = 1;
    } else if (*n != 1 && *n != channels) {
        char where[64];
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [data] %s = '%s': %d values, but [net] input has %d channels (give one "
                         "value for all, or one per channel)",
                         cfg_where(c, cfg_find(s, key)->line, where, sizeof where), key, cfg_find(s, key)->value, *n,
                         channels);
    }
    return DLCL_OK;
}

/* train= / test= of cifar and folder: non-empty comma-separated items. */
static dlcl_status check_file_list(const cfg *c, const cfg_section *s, const char *key, net_data_format fmt)
{
    const cfg_entry *e = cfg_find(s, key);
    if (e == NULL) return DLCL_OK;
    int items = 1, empty = 0;
    const char *start = e->value;
    for (const char *p = e->value;; p++) {
        if (*p == ',' || *p == '\0') {
            const char *a = start;
            while (a < p && isspace((unsigned char)*a)) a++;
            empty |= a == p;
            if (*p == '\0') break;
            items++;
            start = p + 1;
        }
    }
    char where[64];
    cfg_where(c, e->line, where, sizeof where);
    if (empty) return dlcl__err(DLCL_ERR_CONFIG, "%s: [data] %s = '%s': an empty path", where, key, e->value);
    if (fmt == NET_DATA_FOLDER && items > 1)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [data] %s = '%s': format=folder reads one directory", where, key,
                         e->value);
    return DLCL_OK;
}

/* The [data] section (paths resolved against the config file's directory). */
dlcl_status net_parse_data(dlcl_net *net)
{
    const cfg *c = &net->cfg;
    net_data_cfg *d = &net->data;
    int in_c, in_h, in_w;
    (void)net_input_chw(net, &in_c, &in_h, &in_w); /* a net without image input may still parse [data] */
    dlcl__clear_error();
    d->scale = 1.0 / 255.0;
    d->n_mean = d->n_std = 1;
    d->mean[0] = 0.0;
    d->std[0] = 1.0;
    d->shuffle = 1;
    d->antialias = 1;
    d->max_image_pixels = IMAGE_DEFAULT_MAX_PIXELS;
    cfg_section *s = cfg_find_section(c, "data");
    if (s == NULL) return DLCL_OK;
    static const char *const idx_keys[DLCL_SPLIT_COUNT][2] = {{"train_images", "train_labels"},
                                                               {"test_images", "test_labels"}};
    static const char *const file_keys[DLCL_SPLIT_COUNT] = {"train", "test"};
    int fmt;
    long v[4];
    dlcl_status st;
    if ((st = cfg_get_enum(c, s, "format", 0, NET_DATA_IDX, format_names, &fmt)) != DLCL_OK) return st;
    d->format = (net_data_format)fmt;
    if ((st = check_format_keys(c, s, d->format)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "scale", 0, 1.0 / 255.0, -1e9, 1e9, &d->scale)) != DLCL_OK ||
        (st = parse_channel_list(c, s, "mean", 0.0, -1e9, in_c, d->mean, &d->n_mean)) != DLCL_OK ||
        (st = parse_channel_list(c, s, "std", 1.0, 1e-12, in_c, d->std, &d->n_std)) != DLCL_OK ||
        (st = cfg_get_bool(c, s, "shuffle", 0, 1, &d->shuffle)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "train_samples", 0, 0, 0, 1L << 30, &d->limit[DLCL_SPLIT_TRAIN])) != DLCL_OK ||
        (st = cfg_get_int(c, s, "test_samples", 0, 0, 0, 1L << 30, &d->limit[DLCL_SPLIT_TEST])) != DLCL_OK ||
        (st = cfg_get_int(c, s, "max_image_pixels", 0, IMAGE_DEFAULT_MAX_PIXELS, 1, 1L << 40, &d->max_image_pixels)) !=
            DLCL_OK ||
        (st = cfg_get_int(c, s, "workers", 0, 0, 0, 64, &v[0])) != DLCL_OK ||
        (st = cfg_get_int(c, s, "resize", 0, 0, 0, 1 << 16, &v[1])) != DLCL_OK ||
        (st = cfg_get_int(c, s, "crop", 0, 0, 0, 1 << 16, &v[2])) != DLCL_OK ||
        (st = cfg_get_int(c, s, "random_crop", 0, 0, 0, 1 << 16, &v[3])) != DLCL_OK ||
        (st = cfg_get_bool(c, s, "flip", 0, 0, &d->flip)) != DLCL_OK ||
        (st = cfg_get_bool(c, s, "random_resized_crop", 0, 0, &d->random_resized_crop)) != DLCL_OK ||
        (st = cfg_get_bool(c, s, "antialias", 0, 1, &d->antialias)) != DLCL_OK)
        return st;
    d->workers = (int)v[0];
    d->resize = (int)v[1];
    d->crop = (int)v[2];
    d->random_crop = (int)v[3];
    char where[64];
    if (d->crop != 0 && (d->crop != in_h || d->crop != in_w))
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [data] crop = %d: the centre crop is the net's input, and [net] input is "
                         "%dx%d", cfg_where(c, cfg_find(s, "crop")->line, where, sizeof where), d->crop, in_h, in_w);
    if (d->format == NET_DATA_CIFAR && net->classes != 10 && net->classes != 100)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [data] format=cifar reads CIFAR-10 or CIFAR-100 batches: [net] classes "
                         "must be 10 or 100, not %d", cfg_where(c, cfg_find(s, "format")->line, where, sizeof where),
                         net->classes);
    for (int sp = 0; sp < DLCL_SPLIT_COUNT; sp++) {
        if (d->format == NET_DATA_IDX) {
            for (int k = 0; k < 2; k++) {
                const char *p;
                if ((st = cfg_get_str(c, s, idx_keys[sp][k], 0, "", &p)) != DLCL_OK) return st;
                if (p[0] != '\0' && (d->paths[sp][k] = resolve_path(c->path, p)) == NULL)
                    return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
            }
        } else if (d->format != NET_DATA_SYNTHETIC) {
            if ((st = check_file_list(c, s, file_keys[sp], d->format)) != DLCL_OK) return st;
            if ((st = cfg_get_str(c, s, file_keys[sp], 0, NULL, &d->files[sp])) != DLCL_OK) return st;
        }
    }
    const char *known[DLCL__ARRAY_LEN(data_keys) + 1];
    for (size_t i = 0; i < DLCL__ARRAY_LEN(data_keys); i++) known[i] = data_keys[i].key;
    known[DLCL__ARRAY_LEN(data_keys)] = NULL;
    return cfg_check_unused(c, s, known);
}

/* The comma-separated paths of a train= / test= value, each resolved; a NULL-terminated list. */
static dlcl_status split_paths(const char *config_path, const char *value, char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    int cap = 1;
    for (const char *p = value; *p; p++) cap += *p == ',';
    char **list = calloc((size_t)cap + 1, sizeof *list);
    if (list == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    const char *p = value;
    for (int i = 0; i < cap; i++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && isspace((unsigned char)*p)) p++, len--;
        while (len > 0 && isspace((unsigned char)p[len - 1])) len--;
        char *item = strndup(p, len);
        if (item == NULL || (list[i] = resolve_path(config_path, item)) == NULL) {
            free(item);
            data_names_free(list);
            return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        }
        free(item);
        p = comma ? comma + 1 : p + len;
    }
    *out = list;
    *n = cap;
    return DLCL_OK;
}

static const char *const split_names[DLCL_SPLIT_COUNT] = {"train", "test"};

/* Opens the split's data source: every file of it validated. */
static dlcl_status open_source(const dlcl_net *net, dlcl_split split, data_source **out)
{
    const net_data_cfg *d = &net->data;
    const char *sp = split_names[split], *cfg_path = net->cfg.path;
    int c, h, w;
    dlcl_status st = net_input_chw(net, &c, &h, &w);
    if (st != DLCL_OK) return st;
    switch (d->format) {
    case NET_DATA_IDX:
        if (d->paths[split][0] == NULL || d->paths[split][1] == NULL)
            return dlcl__err(DLCL_ERR_CONFIG, "%s: [data] needs %s_images and %s_labels", cfg_path, sp, sp);
        return data_source_idx(d->paths[split][0], d->paths[split][1], net->classes, out);
    case NET_DATA_CIFAR:
    case NET_DATA_FOLDER: {
        if (d->files[split] == NULL)
            return dlcl__err(DLCL_ERR_CONFIG, "%s: [data] format=%s needs %s = %s", cfg_path, format_names[d->format],
                             sp, d->format == NET_DATA_CIFAR ? "FILE[, FILE...]" : "DIR");
        char **paths;
        int n;
        dlcl_status st = split_paths(cfg_path, d->files[split], &paths, &n);
        if (st != DLCL_OK) return st;
        if (d->format == NET_DATA_CIFAR)
            st = data_source_cifar((const char *const *)paths, n, net->classes, out);
        else if (c != 1 && c != 3)
            st = dlcl__err(DLCL_ERR_CONFIG, "%s: [data] format=folder decodes images to 1 or 3 channels, but [net] "
                           "input has %d", cfg_path, c);
        else
            st = data_source_folder(paths[0], c, net->classes, d->max_image_pixels,
                                    d->workers > 0 ? d->workers : data_default_workers(), out);
        data_names_free(paths);
        return st;
    }
    case NET_DATA_SYNTHETIC:
        if (d->limit[split] < 1)
            return dlcl__err(DLCL_ERR_CONFIG, "%s: [data] format=synthetic needs %s_samples = N (the split's size)",
                             cfg_path, sp);
        return data_source_synthetic((int)d->limit[split], c, h, w, net->classes, net->seed, (uint64_t)split, out);
    case NET_DATA_TOKENS: /* token data has its own loader (token_loader_open) */
    case NET_DATA_TEXT:
    case NET_DATA_FORMAT_COUNT:
        break;
    }
    return dlcl__err(DLCL_ERR_INVALID_ARG, "unknown data format");
}

/* The transform of the [data] section for the net's input; augmentation on training only. */
static dlcl_status make_transform(const dlcl_net *net, int train, data_transform *t)
{
    const net_data_cfg *d = &net->data;
    memset(t, 0, sizeof *t);
    dlcl_status st = net_input_chw(net, &t->c, &t->h, &t->w);
    if (st != DLCL_OK) return st;
    if (t->c > DATA_MAX_CHANNELS)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [data] loaders feed at most %d input channels, not %d", net->cfg.path,
                         DATA_MAX_CHANNELS, t->c);
    t->resize = d->resize;
    t->crop = d->crop;
    t->antialias = d->antialias;
    t->scale = (float)d->scale;
    for (int ch = 0; ch < t->c; ch++) {
        t->mean[ch] = (float)d->mean[d->n_mean == 1 ? 0 : ch];
        t->std[ch] = (float)d->std[d->n_std == 1 ? 0 : ch];
    }
    if (train) {
        t->random_crop = d->random_crop;
        t->flip = d->flip;
        t->random_resized_crop = d->random_resized_crop;
    }
    return DLCL_OK;
}


/* A split of token data: its files read and checked, or random tokens for format=synthetic
 * (samples windows of T+1). */
static dlcl_status open_tokens(const dlcl_net *net, dlcl_split split, token_set *ts)
{
    const net_data_cfg *d = &net->data;
    const char *sp = split_names[split], *cfg_path = net->cfg.path;
    if (d->format == NET_DATA_SYNTHETIC) {
        if (d->limit[split] < 1)
            return dlcl__err(DLCL_ERR_CONFIG, "%s: [data] format=synthetic needs %s_samples = N (the split's windows)",
                             cfg_path, sp);
        size_t n = (size_t)d->limit[split] * (size_t)net->input.dims[0] + 1;
        if ((ts->tok = malloc(n * sizeof *ts->tok)) == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        uint64_t rng = dlcl__mix64(net->seed ^ (0x73796e746f6bull + (uint64_t)split));
        for (size_t i = 0; i < n; i++) ts->tok[i] = (int32_t)data_bounded(&rng, (uint32_t)net->vocab);
        ts->n = n;
        ts->vocab = net->vocab;
        return DLCL_OK;
    }
    if (d->files[split] == NULL)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [data] format=%s needs %s = FILE[, FILE...]", cfg_path,
                         format_names[d->format], sp);
    char **paths;
    int n;
    dlcl_status st = split_paths(cfg_path, d->files[split], &paths, &n);
    if (st != DLCL_OK) return st;
    st = token_set_load((const char *const *)paths, n, d->format == NET_DATA_TOKENS, net->classes, ts);
    data_names_free(paths);
    return st;
}

struct dlcl_loader {
    data_source *src; /* images */
    data_loader *dl;
    token_set ts;     /* tokens */
    token_loader *tl;
    int ranks;        /* dlcl_loader_shard's: more than 1 needs dlcl_loader_next_shard */
};

static dlcl_status token_loader_open(const dlcl_net *net, dlcl_split split, dlcl_loader *l)
{
    const net_data_cfg *d = &net->data;
    if (net->input.dtype != DLCL_INT32)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [data] format=%s feeds token ids, but no embedding layer reads the net's "
                         "input", net->cfg.path, format_names[d->format]);
    if (net->label_len != net->input.dims[0])
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [data] format=%s trains next-token prediction: the loss must read a "
                         "T x classes output, and [%s] is not one", net->cfg.path, format_names[d->format],
                         net->output_name);
    if (d->format == NET_DATA_TEXT && net->classes != 256)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [data] format=text reads bytes: [net] classes must be 256 (the byte "
                         "vocabulary), not %d", net->cfg.path, net->classes);
    dlcl_status st = open_tokens(net, split, &l->ts);
    if (st != DLCL_OK) return st;
    char *what = NULL; /* the split's files as resolved, for messages */
    int n_paths = 0;
    char **paths = NULL;
    if (d->files[split] && split_paths(net->cfg.path, d->files[split], &paths, &n_paths) == DLCL_OK && n_paths == 1)
        what = strdup(paths[0]);
    data_names_free(paths);
    token_loader_params p = {.batch = net->global_batch,
                             .context = net->input.dims[0],
                             .train = split == DLCL_SPLIT_TRAIN,
                             .seed = net->seed,
                             .limit = d->format == NET_DATA_SYNTHETIC ? 0 : d->limit[split],
                             .what = what ? what : d->files[split] ? d->files[split] : "synthetic tokens"};
    st = token_loader_create(&l->ts, &p, &l->tl);
    free(what);
    return st;
}

dlcl_status dlcl_loader_create(const dlcl_net *net, dlcl_split split, dlcl_loader **out)
{
    if (out == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_loader_create: out is NULL");
    *out = NULL;
    if (net == NULL || (int)split < 0 || split >= DLCL_SPLIT_COUNT)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_loader_create: bad net or split");
    const net_data_cfg *d = &net->data;
    dlcl_status st;
    dlcl_loader *l = calloc(1, sizeof *l);
    if (l == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    l->ranks = 1;
    if (d->format == NET_DATA_TOKENS || d->format == NET_DATA_TEXT ||
        (d->format == NET_DATA_SYNTHETIC && net->input.dtype == DLCL_INT32)) {
        if ((st = token_loader_open(net, split, l)) != DLCL_OK) goto fail;
        *out = l;
        return DLCL_OK;
    }
    int train = split == DLCL_SPLIT_TRAIN;
    data_loader_params p = {.batch = net->global_batch,
                            .shuffle = train && d->shuffle,
                            .seed = net->seed,
                            .n = d->format == NET_DATA_SYNTHETIC ? 0 : (int)d->limit[split],
                            .drop_last = 0,
                            .workers = d->workers};
    if ((st = make_transform(net, train, &p.t)) != DLCL_OK) goto fail;
    if ((st = open_source(net, split, &l->src)) != DLCL_OK) goto fail;
    const data_source *src = l->src;
    const char *what = d->format == NET_DATA_IDX ? d->paths[split][0] : d->files[split] ? d->files[split] : "data";
    /* samples of a fixed size other than the input's are an error unless a resize or crop is asked for */
    int reshaped = d->resize || d->crop || (train && d->random_resized_crop);
    if (src->c != p.t.c || (src->h != 0 && !reshaped && (src->h != p.t.h || src->w != p.t.w))) {
        st = dlcl__err(DLCL_ERR_DATA, "%s: images are %dx%dx%d but [net] input = %d,%d,%d%s", what, src->c, src->h,
                       src->w, p.t.c, p.t.h, p.t.w,
                       src->c == p.t.c ? " (set [data] resize or crop to resize them)" : "");
        goto fail;
    }
    if ((st = data_loader_create(src, &p, &l->dl)) != DLCL_OK) goto fail;
    *out = l;
    return DLCL_OK;
fail:
    dlcl_loader_free(l);
    return st;
}

void dlcl_loader_free(dlcl_loader *l)
{
    if (l == NULL) return;
    data_loader_free(l->dl);
    data_source_free(l->src);
    token_loader_free(l->tl);
    token_set_free(&l->ts);
    free(l);
}

size_t dlcl_loader_samples(const dlcl_loader *l)
{
    if (l == NULL) return 0;
    return l->tl ? (size_t)token_loader_windows(l->tl) : (size_t)data_loader_samples(l->dl);
}

size_t dlcl_loader_batches(const dlcl_loader *l)
{
    if (l == NULL) return 0;
    return l->tl ? (size_t)token_loader_batches(l->tl) : (size_t)data_loader_batches(l->dl);
}

int dlcl_loader_classes(const dlcl_loader *l)
{
    if (l == NULL) return 0;
    return l->tl ? l->ts.vocab : l->src->classes;
}

const char *dlcl_loader_class_name(const dlcl_loader *l, int index)
{
    if (l == NULL || l->src == NULL || l->src->class_names == NULL || index < 0 || index >= l->src->classes) return NULL;
    return l->src->class_names[index];
}

dlcl_status dlcl_loader_begin_epoch(dlcl_loader *l, int epoch) { return dlcl_loader_begin_epoch_at(l, epoch, 0); }

dlcl_status dlcl_loader_begin_epoch_at(dlcl_loader *l, int epoch, size_t first_batch)
{
    if (l == NULL || epoch < 0) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_loader_begin_epoch: bad loader or epoch");
    size_t batches = dlcl_loader_batches(l);
    if (first_batch > batches)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_loader_begin_epoch_at: batch %zu is past the %zu of an epoch",
                         first_batch, batches);
    if (l->tl) return token_loader_begin_epoch(l->tl, epoch, (int)first_batch);
    return data_loader_begin_epoch(l->dl, epoch, (int)first_batch);
}

dlcl_status dlcl_loader_shard(dlcl_loader *l, int rank, int ranks)
{
    if (l == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_loader_shard: the loader is NULL");
    dlcl_status st = data_shard_check("dlcl_loader_shard", rank, ranks);
    if (st != DLCL_OK) return st;
    st = l->tl ? token_loader_shard(l->tl, rank, ranks) : data_loader_shard(l->dl, rank, ranks);
    if (st == DLCL_OK) l->ranks = ranks;
    return st;
}

dlcl_status dlcl_loader_next_shard(dlcl_loader *l, const void **x, const int32_t **y, int *count, int *global_count)
{
    if (l == NULL || x == NULL || y == NULL || count == NULL || global_count == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_loader_next_shard: arguments must not be NULL");
    if (l->tl) {
        const int32_t *xt = NULL;
        dlcl_status st = token_loader_next_shard(l->tl, &xt, y, count, global_count);
        *x = xt;
        return st;
    }
    const float *xf = NULL;
    dlcl_status st = data_loader_next_shard(l->dl, &xf, y, count, global_count);
    *x = xf;
    return st;
}

dlcl_status dlcl_loader_next(dlcl_loader *l, const void **x, const int32_t **y, int *count)
{
    if (l == NULL || x == NULL || y == NULL || count == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_loader_next: arguments must not be NULL");
    if (l->ranks > 1) /* an empty share (a batch smaller than ranks) would read as the end of the epoch */
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_loader_next: the loader is sharded over %d ranks: use "
                         "dlcl_loader_next_shard", l->ranks);
    if (l->tl) {
        const int32_t *xt = NULL;
        dlcl_status st = token_loader_next(l->tl, &xt, y, count);
        *x = xt;
        return st;
    }
    const float *xf = NULL;
    dlcl_status st = data_loader_next(l->dl, &xf, y, count);
    *x = xf;
    return st;
}

dlcl_status dlcl_net_class_names(const dlcl_net *net, char ***names, int *count)
{
    if (names == NULL || count == NULL || net == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_class_names: arguments must not be NULL");
    *names = NULL;
    *count = 0;
    const net_data_cfg *d = &net->data;
    if (d->format != NET_DATA_CIFAR && d->format != NET_DATA_FOLDER) return DLCL_OK;
    const char *value = d->files[DLCL_SPLIT_TEST] ? d->files[DLCL_SPLIT_TEST] : d->files[DLCL_SPLIT_TRAIN];
    if (value == NULL) return DLCL_OK;
    char **paths;
    int n;
    dlcl_status st = split_paths(net->cfg.path, value, &paths, &n);
    if (st != DLCL_OK) return st;
    if (d->format == NET_DATA_FOLDER) {
        st = folder_class_names(paths[0], names, count);
    } else if ((st = cifar_class_names(paths[0], net->classes, names)) == DLCL_OK && *names != NULL) {
        *count = net->classes;
    }
    data_names_free(paths);
    return st;
}

void dlcl_class_names_free(char **names) { data_names_free(names); }

dlcl_status dlcl_net_load_image(const dlcl_net *net, const char *path, float *out)
{
    if (net == NULL || path == NULL || out == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_load_image: arguments must not be NULL");
    data_transform t;
    dlcl_status st = make_transform(net, 0, &t);
    return st != DLCL_OK ? st : image_load(path, &t, net->data.max_image_pixels, out);
}
