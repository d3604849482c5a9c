/* GPT-2's byte-level BPE, encoding (see bpe.h): the text is cut into pieces by GPT-2's
 * pattern (pretokenize.c) and each piece is merged as encoder.py's bpe() does, with a heap
 * of candidate pairs instead of its rescans, so a long piece costs n log n, not n^2. */
#include <stdlib.h>
#include <string.h>

#include "bpe_tables.h"

/* Working arrays for one piece of n bytes, reused across pieces: a doubly linked list of
 * symbols (node i starts at byte i; a merge keeps the left node) and a min-heap of
 * candidate pairs keyed rank << 32 | node, so equal ranks pop left to right. */
typedef struct bpe_work {
    size_t cap;
    int32_t *id, *next, *prev, *merged;
    uint64_t *heap;
    size_t heap_n;
    /* Pieces already encoded in this call (natural text repeats most of its words): where
     * the piece is in the text and where its ids are in the output. len 0: an empty slot. */
    struct piece_memo {
        uint32_t text_off, len, out_off, count;
    } *memo;
    size_t memo_cap, memo_n; /* memo_cap: a power of two, or 0 (no memo) */
} bpe_work;

static bool work_reserve(bpe_work *w, size_t n)
{
    if (n <= w->cap) return true;
    size_t cap = bpe_pow2_at_least(n), bytes;
    if (!dlcl__mul_ok(cap, 3 * sizeof(uint64_t), &bytes)) return false;
    free(w->id);
    free(w->heap);
    w->id = malloc(4 * cap * sizeof(int32_t));
    w->heap = malloc(bytes); /* each merge pushes at most two pairs: n - 1 + 2 (n - 1) */
    if (w->id == NULL || w->heap == NULL) {
        w->cap = 0;
        return false;
    }
    w->cap = cap;
    w->next = w->id + cap;
    w->prev = w->id + 2 * cap;
    w->merged = w->id + 3 * cap;
    return true;
}

static void heap_push(bpe_work *w, uint64_t e)
{
    size_t i = w->heap_n++;
    while (i > 0 && w->heap[(i - 1) / 2] > e) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = e;
}

static uint64_t heap_pop(bpe_work *w)
{
    uint64_t top = w->heap[0], e = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && w->heap[c + 1] < w->heap[c]) c++;
        if (w->heap[c] >= e) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    w->heap[i] = e;
    return top;
}

/* Queues the pair that starts at node i, if it has a rank. */
static void push_pair(const bpe *b, bpe_work *w, int32_t i, int32_t n)
{
    if (i < 0 || w->next[i] >= n) return;
    const merge_slot *m = bpe_merge_find(b, w->id[i], w->id[w->next[i]]);
    if (m) heap_push(w, (uint64_t)(uint32_t)m->rank << 32 | (uint32_t)i);
}

/* encoder.py's bpe() on one piece: while some adjacent pair has a rank, take the lowest and
 * merge all its occurrences left to right, without overlap ("a a a" -> "aa a"). Pairs made
 * by a pass are queued only after it, so a pass never sees them, as in encoder.py where
 * they could otherwise outrank the pass's own pair. Appends the ids to out. */
static void encode_piece(const bpe *b, bpe_work *w, const unsigned char *p, int32_t n, int32_t *out, size_t *nout)
{
    w->heap_n = 0;
    for (int32_t i = 0; i < n; i++) {
        w->id[i] = b->byte_id[p[i]];
        w->next[i] = i + 1;
        w->prev[i] = i - 1;
    }
    for (int32_t i = 0; i + 1 < n; i++) push_pair(b, w, i, n);
    while (w->heap_n > 0) {
        uint64_t e = heap_pop(w);
        int32_t i = (int32_t)(uint32_t)e, rank = (int32_t)(e >> 32);
        if (w->id[i] < 0 || w->next[i] >= n) continue;
        const merge_slot *m = bpe_merge_find(b, w->id[i], w->id[w->next[i]]);
        if (m == NULL || m->rank != rank) continue; /* stale: node i changed since */
        int32_t left = w->id[i], right = w->id[w->next[i]], nmerged = 0;
        for (;;) {
            if (w->id[i] == left && w->next[i] < n && w->id[w->next[i]] == right) {
                int32_t j = w->next[i];
                w->id[i] = m->id;
                w->id[j] = -1;
                w->next[i] = w->next[j];
                if (w->next[j] < n) w->prev[w->next[j]] = i;
                w->merged[nmerged++] = i;
            }
            if (w->heap_n == 0 || (int32_t)(w->heap[0] >> 32) != rank) break;
            i = (int32_t)(uint32_t)heap_pop(w);
        }
        for (int32_t k = 0; k < nmerged; k++) {
            push_pair(b, w, w->prev[w->merged[k]], n);
            push_pair(b, w, w->merged[k], n);
        }
    }
    for (int32_t i = 0; i < n; i = w->next[i]) out[(*nout)++] = w->id[i];
}

/* Encodes the piece text[pos..end) into out at *count, from the memo when the same bytes
 * were seen before in this call (a piece's ids are a function of its bytes alone). */
static void encode_memo(const bpe *b, bpe_work *w, const char *text, size_t pos, size_t end, int32_t *out, size_t *count)
{
    const unsigned char *p = (const unsigned char *)text + pos;
    uint32_t n = (uint32_t)(end - pos);
    struct piece_memo *slot = NULL;
    if (w->memo_cap) {
        size_t mask = w->memo_cap - 1, i = (size_t)bpe_hash_bytes(p, n) & mask;
        for (; w->memo[i].len; i = (i + 1) & mask) {
            const struct piece_memo *m = &w->memo[i];
            if (m->len == n && memcmp(text + m->text_off, p, n) == 0) {
                memcpy(out + *count, out + m->out_off, m->count * sizeof *out);
                *count += m->count;
                return;
            }
        }
        if (w->memo_n < w->memo_cap / 2) slot = &w->memo[i];
    }
    size_t start = *count;
    encode_piece(b, w, p, (int32_t)n, out, count);
    if (slot) {
        *slot = (struct piece_memo){(uint32_t)pos, n, (uint32_t)start, (uint32_t)(*count - start)};
        w->memo_n++;
    }
}

dlcl_status bpe_encode(const bpe *b, const char *text, size_t len, int32_t **tokens, size_t *n)
{
    if (b == NULL || (text == NULL && len) || tokens == NULL || n == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "bpe_encode: NULL argument");
    *tokens = NULL;
    *n = 0;
    if (len > INT32_MAX) return dlcl__err(DLCL_ERR_INVALID_ARG, "bpe_encode: %zu bytes is more than 2 GiB", len);
    if (len == 0) return DLCL_OK;
    /* at most one token a byte; a text of ~4.5 bytes a token leaves the rest unused */
    int32_t *out = malloc(len * sizeof *out);
    if (out == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "bpe_encode: out of memory for %zu bytes of text", len);
    bpe_work w = {0};
    w.memo_cap = bpe_pow2_at_least(len / 8 < 65536 ? len / 8 : 65536);
    w.memo = calloc(w.memo_cap, sizeof *w.memo);
    if (w.memo == NULL) w.memo_cap = 0; /* slower, not wrong */
    size_t count = 0;
    dlcl_status st = DLCL_OK;
    for (size_t pos = 0; pos < len;) {
        size_t end = bpe_pretokenize_next(text, len, pos);
        if (end - pos == 1) {
            out[count++] = b->byte_id[(unsigned char)text[pos]];
        } else if (!work_reserve(&w, end - pos)) {
            st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "bpe_encode: out of memory for a piece of %zu bytes", end - pos);
            break;
        } else {
            encode_memo(b, &w, text, pos, end, out, &count);
        }
        pos = end;
    }
    free(w.id);
    free(w.heap);
    free(w.memo);
    if (st != DLCL_OK) {
        free(out);
        return st;
    }
    int32_t *shrunk = realloc(out, count * sizeof *out);
    *tokens = shrunk ? shrunk : out;
    *n = count;
    return DLCL_OK;
}
