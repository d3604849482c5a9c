/* Image folders, as torchvision's ImageFolder reads them:
 *   DIR/<class>/<image>   classes sorted by name (strcmp), label = index in that order,
 *                         images (.png .jpg .jpeg .bmp, any case) sorted by name
 * Opening lists every class directory and reads every image's header (stb_image's info, on
 * `workers` threads: no pixel is decoded), so a file that is not a PNG, JPEG or BMP, or is too
 * large, is found before training, named. The images are decoded one by one by get(), in the
 * loader's workers: the folder is never held in memory (ImageNet is 140 GiB of pixels), and an
 * image whose header is sound but whose data is corrupt fails the batch it is in, named.
 * Unlike torchvision, images in subdirectories of a class directory are not read. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data.h"

#define FOLDER_MAX_PATH 4096

typedef struct folder {
    char *root;
    char **classes;   /* borrowed from the source's class_names */
    char *pool;       /* the file names, NUL-terminated, one after another */
    size_t pool_len, pool_cap;
    size_t *name_off; /* of sample i in pool */
    int32_t *labels;
    int n, cap;
    int c;
    long max_pixels;
} folder;

static int is_image_name(const char *name)
{
    static const char *const ext[] = {"png", "jpg", "jpeg", "bmp"};
    const char *dot = strrchr(name, '.');
    if (dot == NULL || dot == name) return 0;
    for (size_t i = 0; i < DLCL__ARRAY_LEN(ext); i++)
        if (strcasecmp(dot + 1, ext[i]) == 0) return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The entries of dir that are directories (want_dirs) or image files, sorted; NULL-terminated. */
static dlcl_status list_dir(const char *dir, int want_dirs, char ***out, int *count)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return dlcl__err(errno == ENOENT ? DLCL_ERR_NOT_FOUND : DLCL_ERR_IO, "%s: cannot open directory: %s", dir,
                         strerror(errno));
    char **list = NULL;
    int n = 0, cap = 0;
    dlcl_status st = DLCL_OK;
    struct dirent *e;
    char path[FOLDER_MAX_PATH];
    for (;;) {
        errno = 0; /* readdir's only way to tell an error from the end (stat below sets it too) */
        if ((e = readdir(d)) == NULL) {
            if (errno != 0) st = dlcl__err(DLCL_ERR_IO, "%s: cannot read directory: %s", dir, strerror(errno));
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (!want_dirs && !is_image_name(e->d_name)) continue;
        int is_dir = e->d_type == DT_DIR, is_reg = e->d_type == DT_REG;
        if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) { /* follow links, as torchvision does */
            struct stat sb;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            int ok = stat(path, &sb) == 0;
            if (!ok && !want_dirs) { /* an image's name on a dangling link: say so, not skip it */
                st = dlcl__err(DLCL_ERR_NOT_FOUND, "%s: cannot open: %s", path, strerror(errno));
                break;
            }
            is_dir = ok && S_ISDIR(sb.st_mode);
            is_reg = ok && S_ISREG(sb.st_mode);
        }
        if (want_dirs ? !is_dir : !is_reg) continue;
        if (n + 1 >= cap) {
            if (cap >= INT_MAX / 2) {
                st = dlcl__err(DLCL_ERR_DATA, "%s: too many entries", dir);
                break;
            }
            cap = cap ? 2 * cap : 64;
            char **l = realloc(list, (size_t)cap * sizeof *l);
            if (l == NULL) {
                st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory listing %s", dir);
                break;
            }
            list = l;
        }
        if ((list[n] = strdup(e->d_name)) == NULL) {
            st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory listing %s", dir);
            break;
        }
        list[++n] = NULL;
    }
    closedir(d);
    if (st != DLCL_OK) {
        data_names_free(list);
        return st;
    }
    if (list == NULL && (list = calloc(1, sizeof *list)) == NULL)
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    qsort(list, (size_t)n, sizeof *list, cmp_str);
    *out = list;
    *count = n;
    return DLCL_OK;
}

dlcl_status folder_class_names(const char *dir, char ***names, int *count)
{
    dlcl_status st = list_dir(dir, 1, names, count);
    if (st == DLCL_OK && *count == 0) {
        data_names_free(*names);
        *names = NULL;
        return dlcl__err(DLCL_ERR_DATA, "%s: no class folders (format=folder reads one subfolder of images per class)",
                         dir);
    }
    return st;
}

static void folder_free(void *impl)
{
    folder *f = impl;
    if (f == NULL) return;
    free(f->root);
    free(f->pool);
    free(f->name_off);
    free(f->labels);
    free(f);
}

/* Appends the sample (label, name). */
static dlcl_status add_file(folder *f, int label, const char *name)
{
    size_t len = strlen(name) + 1;
    if (f->n == f->cap) {
        if (f->cap >= INT_MAX / 2) return dlcl__err(DLCL_ERR_DATA, "%s: more than %d images", f->root, INT_MAX / 2);
        int cap = f->cap ? 2 * f->cap : 1024;
        size_t *o = realloc(f->name_off, (size_t)cap * sizeof *o);
        if (o) f->name_off = o;
        int32_t *l = o ? realloc(f->labels, (size_t)cap * sizeof *l) : NULL;
        if (l == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory listing %s", f->root);
        f->labels = l;
        f->cap = cap;
    }
    if (f->pool_len + len > f->pool_cap) {
        size_t cap = f->pool_cap ? 2 * f->pool_cap : 1u << 16;
        while (cap < f->pool_len + len) cap *= 2;
        char *p = realloc(f->pool, cap);
        if (p == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory listing %s", f->root);
        f->pool = p;
        f->pool_cap = cap;
    }
    memcpy(f->pool + f->pool_len, name, len);
    f->name_off[f->n] = f->pool_len;
    f->labels[f->n++] = label;
    f->pool_len += len;
    return DLCL_OK;
}

/* The path of sample i; every path was checked to fit at open. */
static void sample_path(const folder *f, int i, char *buf)
{
    snprintf(buf, FOLDER_MAX_PATH, "%s/%s/%s", f->root, f->classes[f->labels[i]], f->pool + f->name_off[i]);
}

static dlcl_status folder_get(const data_source *src, int i, data_buf *buf, data_sample *out)
{
    const folder *f = src->impl;
    char path[FOLDER_MAX_PATH];
    sample_path(f, i, path);
    out->label = f->labels[i];
    dlcl_status st = image_decode(path, f->c, f->max_pixels, buf, &out->h, &out->w);
    out->px = buf->px;
    return st;
}

/* Header checks on threads: worker k probes samples k, k + workers, ... and stops at its first
 * failure, so the lowest failing sample over all workers is the first bad file in order. */
typedef struct probe_job {
    const folder *f;
    int first, step;
    int bad; /* first failing sample, or -1 */
    dlcl_status st;
    char msg[512];
} probe_job;

static void *probe_main(void *arg)
{
    probe_job *j = arg;
    char path[FOLDER_MAX_PATH];
    for (int i = j->first; i < j->f->n; i += j->step) {
        int w, h;
        sample_path(j->f, i, path);
        dlcl_status st = image_probe(path, j->f->max_pixels, &w, &h);
        if (st != DLCL_OK) {
            j->bad = i;
            j->st = st;
            snprintf(j->msg, sizeof j->msg, "%s", dlcl_last_error());
            break;
        }
    }
    return NULL;
}

static dlcl_status probe_all(const folder *f, int workers)
{
    if (workers > f->n) workers = f->n;
    if (workers < 1) workers = 1;
    probe_job *jobs = calloc((size_t)workers, sizeof *jobs);
    pthread_t *threads = calloc((size_t)workers, sizeof *threads);
    int *started = calloc((size_t)workers, sizeof *started);
    if (jobs == NULL || threads == NULL || started == NULL) {
        free(jobs);
        free(threads);
        free(started);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    for (int k = 0; k < workers; k++) {
        jobs[k] = (probe_job){f, k, workers, -1, DLCL_OK, ""};
        started[k] = k > 0 && pthread_create(&threads[k], NULL, probe_main, &jobs[k]) == 0;
    }
    for (int k = 0; k < workers; k++) /* job 0, and any whose thread did not start, here */
        if (!started[k]) probe_main(&jobs[k]);
    int worst = -1;
    for (int k = 0; k < workers; k++) {
        if (started[k]) pthread_join(threads[k], NULL);
        if (jobs[k].bad >= 0 && (worst < 0 || jobs[k].bad < jobs[worst].bad)) worst = k;
    }
    dlcl_status st = worst < 0 ? DLCL_OK : dlcl__err(jobs[worst].st, "%s", jobs[worst].msg);
    free(jobs);
    free(threads);
    free(started);
    return st;
}

dlcl_status data_source_folder(const char *dir, int c, int max_classes, long max_pixels, int workers,
                               data_source **out)
{
    *out = NULL;
    if (dir == NULL || (c != 1 && c != 3) || max_classes < 1 || max_pixels < 1)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "data_source_folder: bad arguments");
    char **classes = NULL, **files = NULL;
    int n_classes = 0, n_files = 0;
    dlcl_status st = folder_class_names(dir, &classes, &n_classes);
    if (st != DLCL_OK) return st;
    folder *f = calloc(1, sizeof *f);
    data_source *src = calloc(1, sizeof *src);
    if (f == NULL || src == NULL || (f->root = strdup(dir)) == NULL) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        goto fail;
    }
    f->classes = classes;
    f->c = c;
    f->max_pixels = max_pixels;
    if (n_classes > max_classes) {
        st = dlcl__err(DLCL_ERR_DATA, "%s: %d class folders (%s ... %s), but [net] classes = %d", dir, n_classes,
                       classes[0], classes[n_classes - 1], max_classes);
        goto fail;
    }
    char path[FOLDER_MAX_PATH];
    for (int k = 0; k < n_classes; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, classes[k]);
        if ((st = list_dir(path, 0, &files, &n_files)) != DLCL_OK) goto fail;
        if (n_files == 0) {
            st = dlcl__err(DLCL_ERR_DATA, "%s: class folder without images (.png, .jpg, .jpeg or .bmp files)", path);
            goto fail;
        }
        for (int i = 0; i < n_files; i++) {
            if (strlen(dir) + strlen(classes[k]) + strlen(files[i]) + 3 > FOLDER_MAX_PATH) {
                st = dlcl__err(DLCL_ERR_DATA, "%s/%s: path longer than %d bytes", path, files[i], FOLDER_MAX_PATH);
                goto fail;
            }
            if ((st = add_file(f, k, files[i])) != DLCL_OK) goto fail;
        }
        data_names_free(files);
        files = NULL;
    }
    if ((st = probe_all(f, workers)) != DLCL_OK) goto fail;
    *src = (data_source){.format = "folder",
                         .n = f->n,
                         .c = c,
                         .classes = n_classes,
                         .class_names = classes,
                         .grain = 1,
                         .get = folder_get,
                         .free_impl = folder_free,
                         .impl = f};
    *out = src;
    return DLCL_OK;
fail:
    data_names_free(files);
    data_names_free(classes);
    folder_free(f);
    free(src);
    return st;
}
