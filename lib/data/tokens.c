/* Token streams for sequence nets, and their windows.
 *
 *   format=tokens: llm.c's token files (what its dev/data scripts write): a header of 256 little-endian int32
 *     (magic 20240520, version 1, token count, the rest unused), then count uint16 tokens.
 *   format=text: any file, each byte a token (vocabulary 256), for character-level models.
 *
 * The files of a split are read whole and concatenated; every token is checked against the
 * vocabulary when the split is opened. A sample is a window of T+1 consecutive tokens: the
 * first T are the input, the last T the labels (the next token at each position). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data.h"

#define LLMC_MAGIC 20240520
#define LLMC_VERSION 1
#define LLMC_HEADER_INTS 256
#define TOKENS_MAX ((size_t)1 << 34)

void token_set_free(token_set *ts)
{
    if (ts == NULL) return;
    free(ts->tok);
    *ts = (token_set){0};
}

static dlcl_status file_size(const char *path, size_t *out)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return dlcl__err(errno == ENOENT ? DLCL_ERR_NOT_FOUND : DLCL_ERR_IO, "%s: cannot open: %s", path,
                         strerror(errno));
    if (!S_ISREG(sb.st_mode)) return dlcl__err(DLCL_ERR_DATA, "%s: not a regular file", path);
    *out = (size_t)sb.st_size;
    return DLCL_OK;
}

static dlcl_status read_at(FILE *f, const char *path, void *dst, size_t bytes, size_t at)
{
    if (fread(dst, 1, bytes, f) != bytes)
        return dlcl__err(DLCL_ERR_IO, "%s: read failed at byte %zu (did the file change?)", path, at);
    return DLCL_OK;
}

/* Checks the header of an llm.c token file against its size; *count its tokens. */
static dlcl_status llmc_header(FILE *f, const char *path, size_t size, size_t *count)
{
    size_t hdr_bytes = LLMC_HEADER_INTS * sizeof(int32_t);
    if (size < hdr_bytes)
        return dlcl__err(DLCL_ERR_DATA, "%s: %zu bytes is shorter than the %zu-byte header of an llm.c token file", path,
                         size, hdr_bytes);
    unsigned char h[12];
    dlcl_status st = read_at(f, path, h, sizeof h, 0);
    if (st != DLCL_OK) return st;
    int32_t v[3];
    for (int i = 0; i < 3; i++) /* little-endian whatever the host */
        v[i] = (int32_t)((uint32_t)h[4 * i] | (uint32_t)h[4 * i + 1] << 8 | (uint32_t)h[4 * i + 2] << 16 |
                         (uint32_t)h[4 * i + 3] << 24);
    if (v[0] != LLMC_MAGIC)
        return dlcl__err(DLCL_ERR_DATA, "%s: magic %d is not an llm.c token file's (%d)", path, (int)v[0], LLMC_MAGIC);
    if (v[1] != LLMC_VERSION)
        return dlcl__err(DLCL_ERR_DATA, "%s: token file version %d; dlcl reads version %d (uint16 tokens)", path,
                         (int)v[1], LLMC_VERSION);
    if (v[2] < 0) return dlcl__err(DLCL_ERR_DATA, "%s: negative token count %d in the header", path, (int)v[2]);
    size_t want = hdr_bytes + 2 * (size_t)v[2];
    if (size != want)
        return dlcl__err(DLCL_ERR_DATA, "%s: the header says %d tokens (%zu bytes with the header), but the file has %zu "
                         "bytes", path, (int)v[2], want, size);
    *count = (size_t)v[2];
    return fseek(f, (long)hdr_bytes, SEEK_SET) == 0 ? DLCL_OK
                                                    : dlcl__err(DLCL_ERR_IO, "%s: seek failed: %s", path, strerror(errno));
}

/* Appends one file's tokens to ts->tok[ts->n ...] (room reserved by the caller). */
static dlcl_status read_tokens(FILE *f, const char *path, int llmc, size_t count, int vocab, token_set *ts)
{
    enum { CHUNK = 1 << 16 };
    unsigned char *buf = malloc(CHUNK * 2);
    if (buf == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    dlcl_status st = DLCL_OK;
    size_t width = llmc ? 2 : 1, base = llmc ? LLMC_HEADER_INTS * sizeof(int32_t) : 0;
    for (size_t i = 0; i < count && st == DLCL_OK;) {
        size_t n = count - i < CHUNK ? count - i : CHUNK;
        if ((st = read_at(f, path, buf, n * width, base + i * width)) != DLCL_OK) break;
        for (size_t j = 0; j < n; j++) {
            int32_t t = llmc ? (int32_t)(buf[2 * j] | buf[2 * j + 1] << 8) : (int32_t)buf[j];
            if (t >= vocab) {
                st = dlcl__err(DLCL_ERR_DATA, "%s: token %zu is %d, outside the vocabulary of [net] classes = %d", path,
                               i + j, (int)t, vocab);
                break;
            }
            ts->tok[ts->n + i + j] = t;
        }
        i += n;
    }
    if (st == DLCL_OK) ts->n += count;
    free(buf);
    return st;
}

dlcl_status token_set_load(const char *const *paths, int n_paths, int llmc, int vocab, token_set *out)
{
    *out = (token_set){0};
    if (!llmc && vocab != 256)
        return dlcl__err(DLCL_ERR_CONFIG, "format=text reads bytes: [net] classes must be 256 (the byte vocabulary), "
                         "not %d", vocab);
    FILE **f = calloc((size_t)n_paths, sizeof *f);
    size_t *count = calloc((size_t)n_paths, sizeof *count), total = 0;
    dlcl_status st = f && count ? DLCL_OK : dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    /* every file checked (header, size) before any is read */
    for (int i = 0; i < n_paths && st == DLCL_OK; i++) {
        size_t size = 0;
        if ((st = file_size(paths[i], &size)) != DLCL_OK) break;
        if ((f[i] = fopen(paths[i], "rb")) == NULL) {
            st = dlcl__err(DLCL_ERR_IO, "%s: cannot open: %s", paths[i], strerror(errno));
            break;
        }
        if (llmc)
            st = llmc_header(f[i], paths[i], size, &count[i]);
        else
            count[i] = size;
        if (st == DLCL_OK && count[i] == 0)
            st = dlcl__err(DLCL_ERR_DATA, "%s: no tokens (an empty %s)", paths[i], llmc ? "token file" : "file");
        total += count[i];
        if (st == DLCL_OK && total > TOKENS_MAX)
            st = dlcl__err(DLCL_ERR_DATA, "%s: more than %zu tokens in a split", paths[i], TOKENS_MAX);
    }
    if (st == DLCL_OK && (out->tok = malloc(total * sizeof *out->tok)) == NULL)
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory for %zu tokens", total);
    for (int i = 0; i < n_paths && st == DLCL_OK; i++) st = read_tokens(f[i], paths[i], llmc, count[i], vocab, out);
    for (int i = 0; f && i < n_paths; i++)
        if (f[i]) fclose(f[i]);
    free(f);
    free(count);
    if (st != DLCL_OK) token_set_free(out);
    out->vocab = vocab;
    return st;
}

/* ------------------------------------------------------------ windows */

struct token_loader {
    const token_set *ts;
    token_loader_params p;
    long windows;   /* per epoch */
    int batches;    /* per epoch */
    int epoch, next; /* the batch next() returns */
    int rank, ranks;           /* this epoch's share of each batch's windows (data_share) */
    int next_rank, next_ranks; /* token_loader_shard's, from the next epoch on */
    int32_t *x, *y;
};

dlcl_status token_loader_create(const token_set *ts, const token_loader_params *p, token_loader **out)
{
    *out = NULL;
    if (p->context < 1 || p->batch < 1) return dlcl__err(DLCL_ERR_INVALID_ARG, "token loader: bad context or batch");
    if (ts->n < (size_t)p->context + 1)
        return dlcl__err(DLCL_ERR_DATA, "%s: %zu tokens, fewer than one window of [net] input = %d positions plus the "
                         "next token", p->what, ts->n, p->context);
    token_loader *l = calloc(1, sizeof *l);
    if (l == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    l->ts = ts;
    l->p = *p;
    l->ranks = l->next_ranks = 1;
    size_t T = (size_t)p->context;
    /* training: tokens / T windows per epoch (tokens / (batch T) full batches, at least one);
     * evaluation: every window at stride T that fits, the last partial one dropped */
    size_t w = p->train ? ts->n / T : (ts->n - 1) / T;
    if (p->train) {
        size_t b = w / (size_t)p->batch;
        w = (b ? b : 1) * (size_t)p->batch;
    }
    if (p->limit > 0 && (size_t)p->limit < w) w = (size_t)p->limit;
    if (w > (size_t)INT32_MAX / 2) w = (size_t)INT32_MAX / 2;
    l->windows = (long)w;
    l->batches = (int)((w + (size_t)p->batch - 1) / (size_t)p->batch);
    size_t cells = (size_t)p->batch * T;
    l->x = malloc(cells * sizeof *l->x);
    l->y = malloc(cells * sizeof *l->y);
    if (l->x == NULL || l->y == NULL) {
        token_loader_free(l);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    *out = l;
    return DLCL_OK;
}

void token_loader_free(token_loader *l)
{
    if (l == NULL) return;
    free(l->x);
    free(l->y);
    free(l);
}

int token_loader_batches(const token_loader *l) { return l->batches; }
long token_loader_windows(const token_loader *l) { return l->windows; }

dlcl_status token_loader_begin_epoch(token_loader *l, int epoch, int first_batch)
{
    l->epoch = epoch;
    l->next = first_batch;
    l->rank = l->next_rank;
    l->ranks = l->next_ranks;
    return DLCL_OK;
}

dlcl_status token_loader_shard(token_loader *l, int rank, int ranks)
{
    dlcl_status st = data_shard_check("token_loader_shard", rank, ranks);
    if (st != DLCL_OK) return st;
    l->next_rank = rank;
    l->next_ranks = ranks;
    return DLCL_OK;
}

size_t token_window_start(const token_loader *l, int epoch, long window)
{
    size_t T = (size_t)l->p.context;
    if (!l->p.train) return (size_t)window * T;
    /* a function of (seed, epoch, window) alone: a resume draws the same windows */
    uint64_t s = dlcl__mix64(l->p.seed ^ dlcl__mix64(((uint64_t)(uint32_t)epoch << 32 | (uint64_t)window) + 0x746f6bull));
    uint64_t span = (uint64_t)(l->ts->n - T); /* starts 0 .. n-T-1 leave room for the next token */
    return (size_t)(dlcl__mix64(s) % span);
}

dlcl_status token_loader_next(token_loader *l, const int32_t **x, const int32_t **y, int *count)
{
    if (l->ranks > 1)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "token_loader_next: the loader is sharded over %d ranks (use "
                         "token_loader_next_shard)", l->ranks);
    int global;
    return token_loader_next_shard(l, x, y, count, &global);
}

dlcl_status token_loader_next_shard(token_loader *l, const int32_t **x, const int32_t **y, int *count, int *global)
{
    *count = *global = 0;
    if (l->next >= l->batches) return DLCL_OK;
    long first = (long)l->next * l->p.batch;
    int g = (int)(l->windows - first < l->p.batch ? l->windows - first : l->p.batch), lo, hi;
    data_share(g, l->rank, l->ranks, &lo, &hi);
    size_t T = (size_t)l->p.context;
    for (int b = 0; b < hi - lo; b++) {
        const int32_t *w = l->ts->tok + token_window_start(l, l->epoch, first + lo + b);
        memcpy(l->x + (size_t)b * T, w, T * sizeof *w);
        memcpy(l->y + (size_t)b * T, w + 1, T * sizeof *w);
    }
    l->next++;
    *x = l->x;
    *y = l->y;
    *count = hi - lo;
    *global = g;
    return DLCL_OK;
}
