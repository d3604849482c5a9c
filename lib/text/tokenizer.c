/* The public tokenizer API (dlcl.h) over GPT-2's byte-level BPE (bpe.c). */
#include <stdlib.h>

#include "bpe.h"
#include "../internal.h"

struct dlcl_tokenizer {
    bpe *b;
};

dlcl_status dlcl_tokenizer_load(const char *vocab_json, const char *merges_txt, dlcl_tokenizer **out)
{
    if (out == NULL || vocab_json == NULL || merges_txt == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_tokenizer_load: arguments must not be NULL");
    *out = NULL;
    dlcl_tokenizer *t = calloc(1, sizeof *t);
    if (t == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    dlcl_status st = bpe_load(vocab_json, merges_txt, &t->b);
    if (st != DLCL_OK) {
        free(t);
        return st;
    }
    *out = t;
    return DLCL_OK;
}

void dlcl_tokenizer_free(dlcl_tokenizer *t)
{
    if (t == NULL) return;
    bpe_free(t->b);
    free(t);
}

int dlcl_tokenizer_vocab_size(const dlcl_tokenizer *t) { return t ? bpe_vocab_size(t->b) : 0; }

dlcl_status dlcl_tokenizer_encode(const dlcl_tokenizer *t, const char *text, size_t len, int32_t **tokens, size_t *n)
{
    if (t == NULL || (text == NULL && len > 0) || tokens == NULL || n == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_tokenizer_encode: arguments must not be NULL");
    return bpe_encode(t->b, text ? text : "", len, tokens, n);
}

dlcl_status dlcl_tokenizer_decode(const dlcl_tokenizer *t, const int32_t *tokens, size_t n, char **text, size_t *len)
{
    if (t == NULL || (tokens == NULL && n > 0) || text == NULL || len == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_tokenizer_decode: arguments must not be NULL");
    return bpe_decode(t->b, tokens, n, text, len);
}

dlcl_status dlcl_tokenizer_token_bytes(const dlcl_tokenizer *t, int32_t id, const char **bytes, size_t *len)
{
    if (t == NULL || bytes == NULL || len == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_tokenizer_token_bytes: arguments must not be NULL");
    return bpe_token_bytes(t->b, id, bytes, len);
}

int32_t dlcl_tokenizer_token_id(const dlcl_tokenizer *t, const char *key)
{
    return t && key ? bpe_token_id(t->b, key) : -1;
}
