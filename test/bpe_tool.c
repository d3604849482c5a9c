/* The C side of test/bpe_ref.py, which compares it with a Python transcription of GPT-2's
 * encoder.py. Records are files of [uint32 little-endian length][bytes]...
 *
 *   bpe_tool encode VOCAB MERGES RECORDS  one line a record: the ids, a tab, the hex of
 *                                         bpe_decode(ids), a tab, "stream-ok" when the bytes
 *                                         of bpe_token_bytes, id by id, are the same
 *   bpe_tool pretok RECORDS               one line a record: the end offset of each piece
 *   bpe_tool bench VOCAB MERGES FILE      encodes FILE (best of 3) and prints
 *                                         "bytes B tokens T seconds S MB/s R" */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text/bpe.h"

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    size_t cap = 1 << 20, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        unsigned char *grown = realloc(buf, cap *= 2);
        if (grown == NULL) free(buf);
        buf = grown;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Calls fn on each record of the file; returns 0, or 1 on a malformed file. */
static int each_record(const char *path, int (*fn)(const bpe *, const char *, size_t), const bpe *b)
{
    size_t len, at = 0;
    unsigned char *buf = slurp(path, &len);
    if (buf == NULL) {
        fprintf(stderr, "bpe_tool: cannot read %s\n", path);
        return 1;
    }
    int rc = 0;
    while (rc == 0 && at < len) {
        if (len - at < 4) {
            rc = 1;
            break;
        }
        size_t n = (size_t)buf[at] | (size_t)buf[at + 1] << 8 | (size_t)buf[at + 2] << 16 | (size_t)buf[at + 3] << 24;
        at += 4;
        if (n > len - at) {
            rc = 1;
            break;
        }
        rc = fn(b, (const char *)buf + at, n);
        at += n;
    }
    if (rc) fprintf(stderr, "bpe_tool: %s: failed at byte %zu\n", path, at);
    free(buf);
    return rc;
}

static int encode_record(const bpe *b, const char *text, size_t len)
{
    int32_t *ids;
    size_t n, dlen;
    char *dec;
    if (bpe_encode(b, text, len, &ids, &n) != DLCL_OK || bpe_decode(b, ids, n, &dec, &dlen) != DLCL_OK) {
        fprintf(stderr, "bpe_tool: %s\n", dlcl_last_error());
        return 1;
    }
    int stream_ok = 1;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const char *bytes;
        size_t blen;
        if (bpe_token_bytes(b, ids[i], &bytes, &blen) != DLCL_OK || at + blen > dlen || memcmp(dec + at, bytes, blen))
            stream_ok = 0;
        at += blen;
        printf("%s%d", i ? " " : "", ids[i]);
    }
    printf("\t");
    for (size_t i = 0; i < dlen; i++) printf("%02x", (unsigned char)dec[i]);
    printf("\t%s\n", stream_ok && at == dlen ? "stream-ok" : "stream-differs");
    free(ids);
    free(dec);
    return 0;
}

static int pretok_record(const bpe *b, const char *text, size_t len)
{
    (void)b;
    for (size_t pos = 0; pos < len;) {
        size_t end = bpe_pretokenize_next(text, len, pos);
        if (end <= pos || end > len) return 1;
        printf("%s%zu", pos ? " " : "", end);
        pos = end;
    }
    printf("\n");
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int bench(const bpe *b, const char *path)
{
    size_t len, n = 0;
    unsigned char *text = slurp(path, &len);
    if (text == NULL) return 1;
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        int32_t *ids;
        double t0 = now();
        if (bpe_encode(b, (const char *)text, len, &ids, &n) != DLCL_OK) {
            fprintf(stderr, "bpe_tool: %s\n", dlcl_last_error());
            free(text);
            return 1;
        }
        double t = now() - t0;
        if (t < best) best = t;
        free(ids);
    }
    printf("bytes %zu tokens %zu seconds %.4f MB/s %.1f\n", len, n, best, len / best / 1e6);
    free(text);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "pretok") == 0) return each_record(argv[2], pretok_record, NULL);
    if (argc != 5 || (strcmp(argv[1], "encode") != 0 && strcmp(argv[1], "bench") != 0)) {
        fprintf(stderr, "usage: bpe_tool encode|bench VOCAB MERGES FILE | bpe_tool pretok RECORDS\n");
        return 2;
    }
    bpe *b;
    if (bpe_load(argv[2], argv[3], &b) != DLCL_OK) {
        fprintf(stderr, "bpe_tool: %s\n", dlcl_last_error());
        return 1;
    }
    int rc = strcmp(argv[1], "bench") == 0 ? bench(b, argv[4]) : each_record(argv[4], encode_record, b);
    bpe_free(b);
    return rc;
}
