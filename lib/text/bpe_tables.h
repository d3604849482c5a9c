/* The tables of a loaded bpe, shared by lib/text/bpe.c (which fills them from vocab.json and
 * merges.txt) and lib/text/bpe_encode.c (which reads them). Not for use outside lib/text. */
#ifndef DLCL_TEXT_BPE_TABLES_H
#define DLCL_TEXT_BPE_TABLES_H

#include "bpe.h"
#include "internal.h"

#define BPE_MAX_ID 0x7FFFFFFE /* ids and ranks stay below INT32_MAX */
#define BPE_NO_TOKEN UINT32_MAX
#define BPE_ALPHABET 324 /* bytes_to_unicode's code points are all below 256 + 68 */

typedef struct merge_slot {
    uint64_t key; /* left id << 32 | right id; MERGE_EMPTY when unused */
    int32_t rank, id;
} merge_slot;
#define MERGE_EMPTY UINT64_MAX

/* Tokens are kept as the bytes they stand for, not as vocab.json spells them: byte b is
 * spelt bytes_to_unicode()[b] there, a bijection, so merging symbol strings and merging
 * byte strings are the same thing, and decoding is a copy. */
struct bpe {
    int32_t vocab_size;
    char *arena;      /* every token's bytes, back to back */
    uint32_t *off;    /* [vocab_size] offset of each id's bytes in arena */
    uint32_t *len;    /* [vocab_size] their length; BPE_NO_TOKEN for an unused id */
    uint8_t *added;   /* [vocab_size] 1: a key outside the byte alphabet, kept out of `index` */
    int32_t *index;   /* bytes -> id, open addressing, -1 empty */
    size_t index_cap; /* a power of two */
    int32_t byte_id[256];
    int16_t dec[BPE_ALPHABET]; /* bytes_to_unicode's inverse: code point -> byte, or -1 */
    uint16_t enc[256];         /* bytes_to_unicode: byte -> code point */
    merge_slot *merges;        /* (left id, right id) -> rank, merged id; open addressing */
    size_t merge_cap;          /* a power of two */
};

static inline uint64_t bpe_hash_bytes(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then mixed for the low bits */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return dlcl__mix64(h);
}

/* The rank and result of merging the pair (left, right), or NULL when it has none. */
static inline const merge_slot *bpe_merge_find(const bpe *b, int32_t left, int32_t right)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t mask = b->merge_cap - 1, i = (size_t)dlcl__mix64(key) & mask;
    while (b->merges[i].key != MERGE_EMPTY) {
        if (b->merges[i].key == key) return &b->merges[i];
        i = (i + 1) & mask;
    }
    return NULL;
}

static inline size_t bpe_pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

#endif
