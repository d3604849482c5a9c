/* Labelled image sets in host memory and the prefetching batch loader. */
#ifndef DLCL_DATA_H
#define DLCL_DATA_H

#include "../internal.h"

/* Raw uint8 pixels NCHW (c = 1 for IDX) and int32 labels. */
typedef struct data_set {
    int n, c, h, w;
    uint8_t *pixels;
    int32_t *labels;
} data_set;

/* Reads an IDX image file (rank 3, uint8) and label file (rank 1, uint8), raw or gzip.
 * Validates magic, rank, dtype, dimensions, exact file length, matching counts and every
 * label < classes; never allocates more than the file can hold. Errors name the path. */
dlcl_status data_set_load_idx(const char *images_path, const char *labels_path, int classes, data_set *out);
void data_set_free(data_set *ds); /* NULL-safe, idempotent */

/* Images for prediction: larger ones are refused before decoding (see [data] max_image_pixels). */
#define IMAGE_DEFAULT_MAX_PIXELS (64L << 20)
/* Reads a PNG/JPEG/BMP/GIF/PNM/... image (stb_image), converts it to c channels (1 or 3),
 * resizes it bilinearly to h x w (pixel centres aligned, as torch's interpolate with
 * align_corners=False) and writes (v * scale - mean) / std as c*h*w floats. Images over
 * max_pixels are refused from their header, before decoding. Errors name the path. */
dlcl_status image_load(const char *path, int c, int h, int w, double scale, double mean, double std, long max_pixels,
                       float *out);

typedef struct data_loader data_loader;

typedef struct data_loader_params {
    int batch;
    int shuffle;
    uint64_t seed;
    float scale, mean, std; /* x = (pixel * scale - mean) / std; scale 0 means 1/255 */
    int drop_last;          /* 0: the last batch may be short */
} data_loader_params;

/* A loader over ds (which must outlive it); a worker thread prepares the next batch
 * while the caller uses the current one. */
dlcl_status data_loader_create(const data_set *ds, const data_loader_params *p, data_loader **out);
/* Starts epoch e: the order is a function of (seed, e), so a resumed run repeats it. */
dlcl_status data_loader_begin_epoch(data_loader *l, int epoch, int first_batch);
/* Next batch; *x, *y valid until the next call; *count 0 at the end of the epoch. */
dlcl_status data_loader_next(data_loader *l, const float **x, const int32_t **y, int *count);
int data_loader_batches(const data_loader *l);
void data_loader_free(data_loader *l); /* joins the worker; NULL-safe */

#endif
