/* Labelled images and token streams. Images: data sources (one file per format), the per-sample transform (geometry,
 * augmentation, normalisation) and the batch loader with its worker threads.
 *
 *   source (idx.c, cifar.c, folder.c, synthetic.c) -> get(i): raw uint8 pixels + label
 *   transform.c: resize / crop / flip, then (pixel * scale - mean[c]) / std[c]
 *   loader.c: shuffled batches, filled by worker threads while the caller trains */
#ifndef DLCL_DATA_H
#define DLCL_DATA_H

#include "../internal.h"

/* Uniform integer in [0, bound) from the stream *s, without modulo bias (Lemire's method with
 * rejection). The loader's shuffle, the augmentation and the synthetic labels draw with it. */
static inline uint32_t data_bounded(uint64_t *s, uint32_t bound)
{
    uint64_t m = (uint64_t)(uint32_t)(dlcl__splitmix64(s) >> 32) * bound;
    uint32_t low = (uint32_t)m;
    if (low < bound) {
        uint32_t t = -bound % bound;
        while (low < t) {
            m = (uint64_t)(uint32_t)(dlcl__splitmix64(s) >> 32) * bound;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

/* Data-parallel: rank's share of a batch of g samples split over ranks in order, positions
 * [*lo, *hi) = [g rank / ranks, g (rank + 1) / ranks): sizes differ by at most one, and a share
 * is empty when g < ranks. Both loaders split their batches with it. */
static inline void data_share(int g, int rank, int ranks, int *lo, int *hi)
{
    *lo = (int)((int64_t)g * rank / ranks);
    *hi = (int)((int64_t)g * (rank + 1) / ranks);
}

/* ------------------------------------------------------------ sources */

/* One sample as get() produces it: c planes of h x w uint8 pixels, planar (CHW: channel ch
 * at px + ch*h*w, rows top to bottom), and its label. */
typedef struct data_sample {
    int h, w;
    const uint8_t *px;
    int32_t label;
} data_sample;

/* A growable pixel buffer owned by one thread; get() decodes into it when it must. */
typedef struct data_buf {
    uint8_t *px;
    size_t cap;
} data_buf;

/* Makes buf hold at least bytes (NULL-safe to free with free(buf->px)). */
dlcl_status data_buf_reserve(data_buf *buf, size_t bytes);

typedef struct data_source data_source;

/* A labelled collection of n images behind one interface, so that a format is one file.
 * Everything a source can check is checked when it is opened (file sizes, headers, labels),
 * naming the file; what only decoding can find (a corrupt JPEG body) fails get(). */
struct data_source {
    const char *format; /* "idx", "cifar", ...: for messages */
    int n;              /* samples */
    int c;              /* channels of every sample */
    int h, w;           /* size of every sample; 0 when samples differ (folders: see get) */
    int classes;        /* labels are < classes (folders: the class directories found) */
    char **class_names; /* classes names, NULL-terminated; NULL when the format has none */
    int grain;          /* samples a worker takes at a time: 1 where get() decodes a file */
    /* Sample i (0 <= i < n) into *out: out->px points into the source's memory, or into buf
     * (grown as needed) when the sample is decoded. Safe to call from several threads at once,
     * each with its own buf. Errors name the file (and record). */
    dlcl_status (*get)(const data_source *src, int i, data_buf *buf, data_sample *out);
    void (*free_impl)(void *impl);
    void *impl;
};

void data_source_free(data_source *src); /* NULL-safe */

/* A NULL-terminated array of strdup'ed names; NULL-safe. */
void data_names_free(char **names);

/* In-memory images (IDX, CIFAR): n samples of c x h x w uint8 CHW, int32 labels. */
typedef struct data_set {
    int n, c, h, w;
    uint8_t *pixels;
    int32_t *labels;
} data_set;

void data_set_free(data_set *ds); /* NULL-safe, idempotent */

/* source.c: a source over ds, which it takes (ds is emptied, also on failure); class_names
 * (may be NULL) likewise. */
dlcl_status data_source_memory(const char *format, data_set *ds, char **class_names, data_source **out);

/* idx.c: reads an IDX image file (rank 3, uint8) and label file (rank 1, uint8), raw or gzip.
 * Validates magic, rank, dtype, dimensions, exact file length, matching counts and every
 * label < classes; never allocates more than the file can hold. Errors name the path. */
dlcl_status data_set_load_idx(const char *images_path, const char *labels_path, int classes, data_set *out);
dlcl_status data_source_idx(const char *images_path, const char *labels_path, int classes, data_source **out);

/* cifar.c: CIFAR-10 (classes = 10: records of 1 label byte + 3072 pixel bytes) or CIFAR-100
 * (classes = 100: coarse label, fine label, 3072 pixels; the fine label is used) binary
 * batches, 3 x 32 x 32 CHW as CIFAR stores them, the files' records one after another. An
 * empty file, a size that is not a whole number of records and a label >= classes are errors
 * naming the file and the record. */
dlcl_status data_set_load_cifar(const char *const *paths, int n_paths, int classes, data_set *out);
/* The class names CIFAR ships beside its batches (batches.meta.txt for CIFAR-10,
 * fine_label_names.txt for CIFAR-100) in the directory of path: *names NULL when there is no
 * such file; a file without exactly `classes` names is an error. */
dlcl_status cifar_class_names(const char *path, int classes, char ***names);
dlcl_status data_source_cifar(const char *const *paths, int n_paths, int classes, data_source **out);

/* folder.c: torchvision's ImageFolder. One subdirectory of dir per class, classes sorted by
 * name (strcmp), label = index in that order; in each, the .png/.jpg/.jpeg/.bmp files (any
 * case; other files and subdirectories are ignored) sorted by name. Every header is read at
 * open by `workers` threads (the image must be a PNG, JPEG or BMP of at most max_pixels);
 * get() decodes one image to c (1 or 3) channels. An empty dir, a class directory without
 * images, more classes than max_classes and an unreadable image are errors naming it. */
dlcl_status data_source_folder(const char *dir, int c, int max_classes, long max_pixels, int workers,
                               data_source **out);
/* The class directories of dir, sorted, without reading any image. */
dlcl_status folder_class_names(const char *dir, char ***names, int *count);

/* synthetic.c: n random samples of c x h x w with labels < classes; sample i is a function
 * of (seed, stream, i) alone, so any split (stream) of any size is reproducible. */
dlcl_status data_source_synthetic(int n, int c, int h, int w, int classes, uint64_t seed, uint64_t stream,
                                  data_source **out);

/* ------------------------------------------------------------ images (image.c) */

/* Images for prediction: larger ones are refused before decoding (see [data] max_image_pixels). */
#define IMAGE_DEFAULT_MAX_PIXELS (64L << 20)

/* Checks the file's header (stb_image's info, no decoding): a regular, non-empty file holding
 * a PNG, JPEG or BMP (by its bytes, whatever the name) of at most max_pixels. */
dlcl_status image_probe(const char *path, long max_pixels, int *w, int *h);
/* Decodes an image (any format stb_image reads) to c (1 or 3) planar channels in buf: alpha
 * is dropped, grey is stb_image's luma (77 R + 150 G + 29 B) / 256. Images over max_pixels
 * are refused from their header, before decoding. Errors name the path. */
dlcl_status image_decode(const char *path, int c, long max_pixels, data_buf *buf, int *h, int *w);

/* ------------------------------------------------------------ transform (transform.c) */

#define DATA_MAX_CHANNELS 64

/* What happens to a sample between the source and the batch, in torchvision's order:
 * geometry (random_resized_crop on training batches; else resize and centre crop, or a centre
 * crop, or a plain resize to h x w of a sample of another size), then random_crop, then flip, then
 * x = (pixel * scale - mean[c]) / std[c]. Resizing is bilinear with pixel centres aligned,
 * either as PIL does it (antialias: torchvision's transforms on PIL images, ImageFolder's
 * default) or plain (torch's interpolate, align_corners=False: torchvision on tensors with
 * antialias=False). */
typedef struct data_transform {
    int c, h, w;             /* the output: the net's input */
    int resize;              /* > 0: short side to this (aspect kept), then the centre h x w */
    int crop;                /* without resize: the centre h x w of the sample as it is */
    int random_crop;         /* > 0: pad by this many zero pixels, crop h x w at a random offset */
    int flip;                /* horizontal flip with probability 0.5 */
    int random_resized_crop; /* RandomResizedCrop((h, w), scale=(0.08, 1), ratio=(3/4, 4/3)) */
    int antialias;           /* 1: resample as PIL does (resample_pil); 0: plain bilinear in float */
    float scale;
    float mean[DATA_MAX_CHANNELS], std[DATA_MAX_CHANNELS]; /* c values each */
} data_transform;

/* Per-thread scratch of transform_apply: growable buffers, kept between samples. */
typedef struct transform_scratch {
    void *buf[4];
    size_t cap[4];
} transform_scratch;

/* Buffer i (< 4) of at least bytes, or NULL when out of memory. */
void *transform_scratch_get(transform_scratch *s, int i, size_t bytes);
void transform_scratch_free(transform_scratch *s);

/* One axis of a sample's geometry: the source span [box0, box0 + box_len) is resized to len
 * pixels, and the output's n pixels are pixels off, off + 1, ... of those (outside [0, len):
 * padding, pixel value 0). */
typedef struct data_axis {
    int n, len, off, box0, box_len;
} data_axis;

/* resample.c: PIL's Image.resize with its BILINEAR filter (what torchvision's Resize and
 * RandomResizedCrop do to PIL images): a triangle filter stretched by the shrink factor, so a
 * shrink averages every source pixel under it (antialiasing), in fixed point, horizontal pass
 * then vertical, each rounded to uint8. src is c planes of ih x iw; out gets c planes of
 * ay->n x ax->n. Uses scratch buffers 2 and 3. */
dlcl_status resample_pil(const uint8_t *src, int c, int ih, int iw, const data_axis *ay, const data_axis *ax,
                         transform_scratch *scratch, uint8_t *out);

/* True when the transform draws random numbers (the training split's augmentation). */
int transform_is_random(const data_transform *t);
/* The value of pixel v of channel ch, normalised: (v * scale - mean[ch]) / std[ch]. */
static inline float transform_norm(const data_transform *t, int ch, float v)
{
    return (v * t->scale - t->mean[ch]) / t->std[ch];
}
/* The randomness of one sample: a function of (seed, epoch, sample index) only. */
uint64_t transform_key(uint64_t seed, int epoch, int index);
/* torchvision's RandomResizedCrop.get_params for an ih x iw image: the box (top, left,
 * height, width) drawn from key, or the centre-crop fallback after 10 attempts. */
void transform_rrc_box(uint64_t key, int ih, int iw, int *top, int *left, int *bh, int *bw);
/* Writes t->c * t->h * t->w floats (CHW) of sample s (t->c channels). key is ignored unless
 * the transform is random. lut (may be NULL) holds c*256 normalised values of each pixel. */
dlcl_status transform_apply(const data_transform *t, const float *lut, const data_sample *s, uint64_t key,
                            transform_scratch *scratch, float *out);

/* Decodes path (image_decode) and applies t without augmentation: c*h*w floats. */
dlcl_status image_load(const char *path, const data_transform *t, long max_pixels, float *out);

/* ------------------------------------------------------------ loader (loader.c) */

typedef struct data_loader data_loader;

typedef struct data_loader_params {
    int batch;
    int shuffle;
    uint64_t seed;
    int n;         /* use the source's first n samples (0: all) */
    int drop_last; /* 0: the last batch may be short */
    int workers;   /* threads preparing batches (0: online CPUs, at most 8) */
    data_transform t;
} data_loader_params;

/* A loader over src (which must outlive it): workers fill the next batch, sample by sample,
 * while the caller uses the current one. A sample's augmentation is a function of (seed,
 * epoch, its index in the source), so batches do not depend on the number of workers. */
dlcl_status data_loader_create(const data_source *src, const data_loader_params *p, data_loader **out);
/* Starts epoch e: the order is a function of (seed, e), so a resumed run repeats it. */
dlcl_status data_loader_begin_epoch(data_loader *l, int epoch, int first_batch);
/* DLCL_OK when 0 <= rank < ranks, else DLCL_ERR_INVALID_ARG with a message that begins with who. */
dlcl_status data_shard_check(const char *who, int rank, int ranks);
/* From the next begin_epoch on, the loader prepares only rank's share of each batch (data_share)
 * (0 <= rank < ranks; ranks = 1, the default, is the whole batch). */
dlcl_status data_loader_shard(data_loader *l, int rank, int ranks);
/* Next batch: *count samples (this rank's share) of a batch of *global; *x, *y valid until the
 * next call; both 0 at the end of the epoch, *count alone 0 for an empty share. A sample that
 * failed (a corrupt image) fails the batch with its error. */
dlcl_status data_loader_next_shard(data_loader *l, const float **x, const int32_t **y, int *count, int *global);
/* The same for a loader that is not sharded (an error when ranks > 1: an empty share would read
 * as the end of the epoch). */
dlcl_status data_loader_next(data_loader *l, const float **x, const int32_t **y, int *count);
int data_loader_batches(const data_loader *l);
int data_loader_samples(const data_loader *l);
int data_default_workers(void); /* online CPUs, at most 8 */
void data_loader_free(data_loader *l); /* joins the workers; NULL-safe */

/* ------------------------------------------------------------ tokens (tokens.c) */

/* A split's token stream: the files' tokens one after another, each < vocab. */
typedef struct token_set {
    int32_t *tok;
    size_t n;
    int vocab;
} token_set;

/* Reads every file of a split, checking it whole before training starts: llmc = 1, llm.c's
 * token files (header of 256 int32: magic 20240520, version 1, token count, then count
 * uint16 tokens; the count must match the file's size); llmc = 0, raw bytes (vocab must be
 * 256). Errors name the file and, for a token outside the vocabulary, its index. */
dlcl_status token_set_load(const char *const *paths, int n_paths, int llmc, int vocab, token_set *out);
void token_set_free(token_set *ts); /* NULL-safe, idempotent */

typedef struct token_loader token_loader;

typedef struct token_loader_params {
    int batch;
    int context; /* T: a window is T inputs and the T next tokens */
    int train;   /* 1: random windows; 0: consecutive windows at stride T from position 0 */
    uint64_t seed;
    long limit;  /* at most this many windows per epoch (0: all) */
    const char *what; /* the split's files, for messages */
} token_loader_params;

/* Windows over ts (which must outlive the loader). Training: an epoch is tokens / (batch T)
 * batches (at least one) of windows starting at positions drawn from (seed, epoch, window),
 * so a resume reproduces them. Evaluation: windows i = 0, 1, ... start at i T, the last
 * partial one dropped, the last batch possibly short. */
dlcl_status token_loader_create(const token_set *ts, const token_loader_params *p, token_loader **out);
void token_loader_free(token_loader *l); /* NULL-safe */
int token_loader_batches(const token_loader *l);
long token_loader_windows(const token_loader *l);
dlcl_status token_loader_begin_epoch(token_loader *l, int epoch, int first_batch);
/* From the next begin_epoch on, only rank's share of each batch's windows (data_share). */
dlcl_status token_loader_shard(token_loader *l, int rank, int ranks);
/* The first token of window `window` of epoch `epoch`. */
size_t token_window_start(const token_loader *l, int epoch, long window);
/* Next batch: *x and *y hold *count x T tokens (inputs, and the next token of each: this rank's
 * share of a batch of *global windows), valid until the next call; both 0 at the end of the
 * epoch, *count alone 0 for an empty share. */
dlcl_status token_loader_next_shard(token_loader *l, const int32_t **x, const int32_t **y, int *count, int *global);
/* The same for a loader that is not sharded (an error when ranks > 1). */
dlcl_status token_loader_next(token_loader *l, const int32_t **x, const int32_t **y, int *count);

#endif
