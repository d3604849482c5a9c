/* Helpers of the data tests (test_data.c, test_transform.c): paths, test images written with
 * stb_image_write, torchvision's transforms as a plain-C reference, small sources and nets. */
#ifndef DLCL_TEST_DATA_UTIL_H
#define DLCL_TEST_DATA_UTIL_H

#include "../lib/data/data.h"
#include "test.h"

extern const float imagenet_mean[3], imagenet_std[3];

/* A path in a buffer of its own (8 in rotation). */
const char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An interleaved RGB test image (malloc'ed): a pattern with edges and every byte value, or
 * smooth when `smooth`. */
uint8_t *pattern(int w, int h, int seed, bool smooth);
/* Writes pattern(w, h, seed, smooth) with stb_image_write by extension (png, bmp, else jpg). */
bool write_image(const char *path, int w, int h, int seed, bool smooth);
/* Planar copy (malloc'ed) of n interleaved RGB pixels. */
uint8_t *planar(const uint8_t *rgb, int n);
/* torchvision's Resize on tensors (antialias=False: bilinear, align_corners=False) of a planar
 * image to oh x ow, in double. */
void ref_resize(const uint8_t *src, int c, int ih, int iw, int oh, int ow, double *dst);
/* Resize(r) + CenterCrop(h, w) + Normalize(ImageNet's mean, std) of a planar RGB image, as
 * torchvision computes sizes and offsets. */
void ref_resize_crop(const uint8_t *src, int ih, int iw, int r, int h, int w, float *out);
/* 3 x h x w, resize r, ImageNet's mean and std, plain bilinear, no augmentation. */
data_transform imagenet_transform(int h, int w, int resize);
/* An in-memory source of n random 3 x h x w samples, label = index, grain samples a task. */
data_source *memory_source(int n, int h, int w, int grain);
/* A one-layer net's config in dir over the [data] lines `data`. */
const char *net_config(const char *dir, const char *input, int classes, const char *data);

#endif
