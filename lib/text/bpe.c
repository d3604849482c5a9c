/* GPT-2's byte-level BPE (see bpe.h): loading vocab.json and merges.txt into the tables of
 * bpe_tables.h, looking tokens up, decoding. Encoding is in bpe_encode.c. */
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe_tables.h"

#define BPE_MAX_FILE ((size_t)1 << 30)

/* ------------------------------------------------------------ bytes_to_unicode */

/* GPT-2's bytes_to_unicode(): printable bytes map to themselves, the other 68 (in byte
 * order) to U+0100 upwards. dec[cp] is the byte spelt by code point cp, or -1. */
static void byte_alphabet(int16_t dec[BPE_ALPHABET], uint16_t enc[256])
{
    for (int cp = 0; cp < BPE_ALPHABET; cp++) dec[cp] = -1;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        enc[b] = (uint16_t)(printable ? b : 256 + n++);
        dec[enc[b]] = (int16_t)b;
    }
}

/* Converts a vocab.json spelling to the bytes it stands for (out has room for strlen(s)):
 * 1 when every character is in the alphabet, 0 when some is not (an added token), -1 when s
 * is not valid UTF-8 (of at most 2 bytes a character, which covers the whole alphabet). */
static int unspell(const int16_t *dec, const char *s, unsigned char *out, size_t *n)
{
    const unsigned char *p = (const unsigned char *)s;
    int ok = 1;
    *n = 0;
    while (*p) {
        uint32_t cp;
        if (p[0] < 0x80) {
            cp = *p++;
        } else if (p[0] >= 0xC2 && p[0] <= 0xDF && (p[1] & 0xC0) == 0x80) {
            cp = (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
            p += 2;
        } else {
            /* longer characters are never in the alphabet; skip a valid one */
            size_t k = p[0] >= 0xE0 && p[0] <= 0xEF ? 3 : p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : 0;
            for (size_t i = 1; i < k; i++)
                if ((p[i] & 0xC0) != 0x80) k = 0;
            if (k == 0) return -1;
            p += k;
            ok = 0;
            continue;
        }
        if (cp >= BPE_ALPHABET || dec[cp] < 0) ok = 0;
        else out[(*n)++] = (unsigned char)dec[cp];
    }
    return ok;
}

/* ------------------------------------------------------------ hash tables */

/* The slot of bytes p[0..n) in b->index: holding its id, or empty (-1) where it would go. */
static size_t index_slot(const bpe *b, const unsigned char *p, size_t n)
{
    size_t mask = b->index_cap - 1, i = (size_t)bpe_hash_bytes(p, n) & mask;
    for (;;) {
        int32_t id = b->index[i];
        if (id < 0 || (b->len[id] == n && memcmp(b->arena + b->off[id], p, n) == 0)) return i;
        i = (i + 1) & mask;
    }
}

static int32_t index_find(const bpe *b, const unsigned char *p, size_t n)
{
    return b->index[index_slot(b, p, n)];
}

/* Sets the rank and result of a pair; a pair seen before takes the new rank. */
static void merge_put(bpe *b, int32_t left, int32_t right, int32_t rank, int32_t id)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t mask = b->merge_cap - 1, i = (size_t)dlcl__mix64(key) & mask;
    while (b->merges[i].key != MERGE_EMPTY && b->merges[i].key != key) i = (i + 1) & mask;
    b->merges[i] = (merge_slot){key, rank, id};
}

/* ------------------------------------------------------------ files */

/* Reads a whole file, NUL-terminated. */
static dlcl_status read_file(const char *path, char **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return dlcl__err(errno == ENOENT ? DLCL_ERR_NOT_FOUND : DLCL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    dlcl_status st = DLCL_OK;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf == NULL) {
            st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: out of memory reading it", path);
            break;
        }
        n += fread(buf + n, 1, cap - 1 - n, f);
        if (ferror(f)) {
            st = dlcl__err(DLCL_ERR_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
        if (feof(f)) break;
        if (cap >= BPE_MAX_FILE) {
            st = dlcl__err(DLCL_ERR_DATA, "%s: larger than %zu MiB", path, BPE_MAX_FILE >> 20);
            break;
        }
        char *grown = realloc(buf, cap *= 2);
        if (grown == NULL) free(buf);
        buf = grown;
    }
    fclose(f);
    if (st != DLCL_OK) {
        free(buf);
        return st;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return DLCL_OK;
}

/* 1-based line and column of byte `at` of text. */
static void line_col(const char *text, size_t at, size_t *line, size_t *col)
{
    *line = 1;
    size_t start = 0;
    for (size_t i = 0; i < at; i++)
        if (text[i] == '\n') {
            (*line)++;
            start = i + 1;
        }
    *col = at - start + 1;
}

/* ------------------------------------------------------------ vocab.json */

/* The id of a vocab.json value, or -1 when it is not an integer in [0, BPE_MAX_ID]. */
static int32_t json_id(const cJSON *v)
{
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= BPE_MAX_ID) || d != (double)(int32_t)d) return -1;
    return (int32_t)d;
}

/* The key of the first entry with this id (for naming both sides of a duplicate). */
static const char *key_of_id(const cJSON *root, int32_t id)
{
    for (const cJSON *it = root->child; it; it = it->next)
        if (json_id(it) == id) return it->string;
    return "?";
}

/* Sizes the tables for the vocabulary in root (an object whose ids are all valid). */
static dlcl_status vocab_alloc(bpe *b, const cJSON *root, const char *path)
{
    size_t count = 0, bytes = 0;
    int32_t max_id = -1;
    for (const cJSON *it = root->child; it; it = it->next) {
        int32_t id = json_id(it);
        if (id < 0)
            return dlcl__err(DLCL_ERR_DATA, "%s: key \"%.80s\": the id is not an integer in [0, %d]", path,
                             it->string, BPE_MAX_ID);
        if (id > max_id) max_id = id;
        count++;
        bytes += strlen(it->string);
    }
    if (count == 0) return dlcl__err(DLCL_ERR_DATA, "%s: the vocabulary is empty", path);
    if (bytes >= UINT32_MAX) return dlcl__err(DLCL_ERR_DATA, "%s: the keys hold 4 GiB or more", path);
    b->vocab_size = max_id + 1;
    b->index_cap = bpe_pow2_at_least(2 * count);
    b->arena = malloc(bytes + 1);
    b->off = malloc((size_t)b->vocab_size * sizeof *b->off);
    b->len = malloc((size_t)b->vocab_size * sizeof *b->len);
    b->added = calloc((size_t)b->vocab_size, 1);
    b->index = malloc(b->index_cap * sizeof *b->index);
    if (!b->arena || !b->off || !b->len || !b->added || !b->index)
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu tokens", path, count);
    for (int32_t i = 0; i < b->vocab_size; i++) b->len[i] = BPE_NO_TOKEN;
    memset(b->index, 0xFF, b->index_cap * sizeof *b->index);
    return DLCL_OK;
}

static dlcl_status vocab_fill(bpe *b, const cJSON *root, const char *path)
{
    uint32_t used = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        int32_t id = json_id(it);
        unsigned char *dst = (unsigned char *)b->arena + used;
        size_t n;
        int spelt = unspell(b->dec, it->string, dst, &n);
        if (spelt < 0) return dlcl__err(DLCL_ERR_DATA, "%s: key \"%.80s\" is not valid UTF-8", path, it->string);
        if (b->len[id] != BPE_NO_TOKEN)
            return dlcl__err(DLCL_ERR_DATA, "%s: key \"%.80s\": id %d is already the id of \"%.80s\"", path,
                             it->string, id, key_of_id(root, id));
        if (spelt == 0) { /* an added token: its own bytes, found by no merge */
            n = strlen(it->string);
            memcpy(dst, it->string, n);
            b->added[id] = 1;
        }
        b->off[id] = used;
        b->len[id] = (uint32_t)n;
        used += (uint32_t)n;
        if (spelt == 0) continue;
        size_t slot = index_slot(b, dst, n);
        if (b->index[slot] >= 0)
            return dlcl__err(DLCL_ERR_DATA, "%s: key \"%.80s\" appears twice", path, it->string);
        b->index[slot] = id;
    }
    for (int c = 0; c < 256; c++) {
        unsigned char byte = (unsigned char)c;
        b->byte_id[c] = index_find(b, &byte, 1);
        if (b->byte_id[c] < 0)
            return dlcl__err(DLCL_ERR_DATA, "%s: no token for byte 0x%02X (key \"\\u%04X\"); a byte-level vocabulary has all 256",
                             path, c, b->enc[c]);
    }
    return DLCL_OK;
}

static dlcl_status vocab_load(bpe *b, const char *path)
{
    char *text;
    size_t n;
    dlcl_status st = read_file(path, &text, &n);
    if (st != DLCL_OK) return st;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (root == NULL) {
        size_t line, col;
        line_col(text, end ? (size_t)(end - text) : 0, &line, &col);
        st = dlcl__err(DLCL_ERR_DATA, "%s:%zu:%zu: not valid JSON", path, line, col);
    } else if (!cJSON_IsObject(root)) {
        st = dlcl__err(DLCL_ERR_DATA, "%s: not a JSON object of token -> id", path);
    } else {
        st = vocab_alloc(b, root, path);
        if (st == DLCL_OK) st = vocab_fill(b, root, path);
    }
    cJSON_Delete(root);
    free(text);
    return st;
}

/* ------------------------------------------------------------ merges.txt */

/* Splits line (NUL-terminated, modified) at runs of blanks into at most 3 fields. */
static int split_fields(char *line, char *field[3])
{
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\v' || *p == '\f') *p++ = '\0';
        if (*p == '\0' || n == 3) return n + (*p != '\0');
        field[n++] = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\v' && *p != '\f') p++;
    }
}

/* The id of one merge symbol (spelt as in vocab.json), or -1. buf has room for it. */
static int32_t symbol_id(const bpe *b, const char *s, unsigned char *buf, size_t *n)
{
    if (unspell(b->dec, s, buf, n) != 1) return -1;
    return index_find(b, buf, *n);
}

static dlcl_status merge_line(bpe *b, const char *path, const char *vocab_path,
                              size_t lineno, char *line, int32_t rank)
{
    char *f[3];
    int nf = split_fields(line, f);
    if (nf == 0) return DLCL_OK; /* blank */
    if (nf != 2)
        return dlcl__err(DLCL_ERR_DATA, "%s:%zu: a merge is two symbols separated by a space, found %s", path, lineno,
                         nf == 1 ? "one" : "more");
    size_t la = strlen(f[0]), lb = strlen(f[1]), na, nb;
    unsigned char *buf = malloc(la + lb + 1);
    if (buf == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s:%zu: out of memory", path, lineno);
    dlcl_status st = DLCL_OK;
    int32_t left = symbol_id(b, f[0], buf, &na), right = left < 0 ? -1 : symbol_id(b, f[1], buf + na, &nb);
    if (left < 0 || right < 0) {
        st = dlcl__err(DLCL_ERR_DATA, "%s:%zu: merge symbol \"%.80s\" is not in %s", path, lineno,
                       left < 0 ? f[0] : f[1], vocab_path);
    } else {
        int32_t id = index_find(b, buf, na + nb);
        if (id < 0)
            st = dlcl__err(DLCL_ERR_DATA, "%s:%zu: merged symbol \"%s%s\" is not in %s", path, lineno, f[0], f[1],
                           vocab_path);
        else
            merge_put(b, left, right, rank, id);
    }
    free(buf);
    return st;
}

static dlcl_status merges_load(bpe *b, const char *path, const char *vocab_path)
{
    char *text;
    size_t n;
    dlcl_status st = read_file(path, &text, &n);
    if (st != DLCL_OK) return st;
    size_t lines = 1;
    for (size_t i = 0; i < n; i++) lines += text[i] == '\n';
    if (lines >= BPE_MAX_ID) st = dlcl__err(DLCL_ERR_DATA, "%s: more than %d lines", path, BPE_MAX_ID);
    b->merge_cap = bpe_pow2_at_least(2 * lines);
    b->merges = st == DLCL_OK ? malloc(b->merge_cap * sizeof *b->merges) : NULL;
    if (st == DLCL_OK && b->merges == NULL) st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    if (st == DLCL_OK) memset(b->merges, 0xFF, b->merge_cap * sizeof *b->merges);
    char *line = text;
    for (size_t lineno = 1; st == DLCL_OK && line < text + n; lineno++) {
        char *nl = memchr(line, '\n', (size_t)(text + n - line));
        char *next = nl ? nl + 1 : text + n;
        if (nl) *nl = '\0';
        if (line + strlen(line) != (nl ? nl : text + n))
            st = dlcl__err(DLCL_ERR_DATA, "%s:%zu: a NUL byte in the line", path, lineno);
        else if (!(lineno == 1 && strncmp(line, "#version", 8) == 0))
            st = merge_line(b, path, vocab_path, lineno, line, (int32_t)lineno);
        line = next;
    }
    free(text);
    return st;
}

/* ------------------------------------------------------------ public */

dlcl_status bpe_load(const char *vocab_json, const char *merges_txt, bpe **out)
{
    if (out) *out = NULL;
    if (vocab_json == NULL || merges_txt == NULL || out == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "bpe_load: NULL argument");
    bpe *b = calloc(1, sizeof *b);
    if (b == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "bpe_load: out of memory");
    byte_alphabet(b->dec, b->enc);
    dlcl_status st = vocab_load(b, vocab_json);
    if (st == DLCL_OK) st = merges_load(b, merges_txt, vocab_json);
    if (st != DLCL_OK) {
        bpe_free(b);
        return st;
    }
    *out = b;
    return DLCL_OK;
}

void bpe_free(bpe *b)
{
    if (b == NULL) return;
    free(b->arena);
    free(b->off);
    free(b->len);
    free(b->added);
    free(b->index);
    free(b->merges);
    free(b);
}

int bpe_vocab_size(const bpe *b) { return b ? b->vocab_size : 0; }


int32_t bpe_token_id(const bpe *b, const char *key)
{
    if (b == NULL || key == NULL) return -1;
    size_t kl = strlen(key), n;
    unsigned char *buf = malloc(kl + 1);
    if (buf == NULL) return -1;
    int spelt = unspell(b->dec, key, buf, &n);
    int32_t id = spelt == 1 ? index_find(b, buf, n) : -1;
    free(buf);
    for (int32_t i = 0; id < 0 && spelt == 0 && i < b->vocab_size; i++) /* added tokens: few, so a scan */
        if (b->added[i] && b->len[i] == kl && memcmp(b->arena + b->off[i], key, kl) == 0) id = i;
    return id;
}

dlcl_status bpe_token_bytes(const bpe *b, int32_t id, const char **bytes, size_t *len)
{
    if (b == NULL || bytes == NULL || len == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "bpe_token_bytes: NULL argument");
    if (id < 0 || id >= b->vocab_size || b->len[id] == BPE_NO_TOKEN)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "token id %d is not in the vocabulary (ids 0..%d)", id, b->vocab_size - 1);
    *bytes = b->arena + b->off[id];
    *len = b->len[id];
    return DLCL_OK;
}

dlcl_status bpe_decode(const bpe *b, const int32_t *tokens, size_t n, char **text, size_t *len)
{
    if (b == NULL || (tokens == NULL && n) || text == NULL || len == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "bpe_decode: NULL argument");
    *text = NULL;
    *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = tokens[i];
        if (id < 0 || id >= b->vocab_size || b->len[id] == BPE_NO_TOKEN)
            return dlcl__err(DLCL_ERR_INVALID_ARG, "bpe_decode: token id %d at position %zu is not in the vocabulary (ids 0..%d)",
                             id, i, b->vocab_size - 1);
        if (total + b->len[id] < total) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "bpe_decode: text size overflows");
        total += b->len[id];
    }
    char *out = malloc(total + 1);
    if (out == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "bpe_decode: out of memory for %zu bytes", total);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(out + at, b->arena + b->off[tokens[i]], b->len[tokens[i]]);
        at += b->len[tokens[i]];
    }
    out[at] = '\0';
    *text = out;
    *len = at;
    return DLCL_OK;
}
