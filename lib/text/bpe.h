/* GPT-2's byte-level BPE tokenizer, read from Hugging Face's vocab.json and merges.txt.
 *
 * Exactly openai/gpt-2's encoder.py (and Hugging Face's GPT2Tokenizer):
 *   1. the text is split by the pattern
 *        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      (matched by hand over UTF-8, classes from lib/text/unicode_classes.c);
 *   2. each piece's bytes become symbols, one per byte (vocab.json spells byte b as the
 *      character bytes_to_unicode()[b]: printable bytes as themselves, the rest as U+0100...);
 *   3. the adjacent pair of lowest rank (its line in merges.txt) is merged everywhere in the
 *      piece, left to right without overlap, and again, until no pair has a rank;
 *   4. each symbol's id is read from vocab.json.
 * Text is bytes: a byte that does not begin a valid UTF-8 sequence (overlong forms,
 * surrogates and truncated sequences included) is one character of no letter, number or
 * space class, as Python's surrogateescape would make it; so every byte string encodes and
 * decode(encode(s)) == s. `<|endoftext|>` in the text is plain text (as encoder.py and
 * tiktoken's encode_ordinary do; Hugging Face's tokenizers would give its one id): find the
 * id with bpe_token_id() to stop on it or to insert it.
 *
 * A bpe is immutable after bpe_load, so threads may share one. */
#ifndef DLCL_TEXT_BPE_H
#define DLCL_TEXT_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "dlcl.h"

typedef struct bpe bpe;

/* Reads the vocabulary (a JSON object: token string -> id) and the merges ("left right" a
 * line; a first line "#version..." is skipped, as are blank lines; a pair listed twice takes
 * its last rank, as encoder.py's dict does). Errors name the file and the key or line:
 * DLCL_ERR_NOT_FOUND / DLCL_ERR_IO for a file, DLCL_ERR_DATA for its content (not a JSON
 * object, an id that is not an integer in [0, 2^31-2], an id or key given twice, a byte
 * without its symbol, a merge line without two symbols, a merge part or result missing
 * from the vocabulary). A vocabulary key with a character outside the byte alphabet (an
 * added token) decodes to its own UTF-8 and is never produced by merges. */
dlcl_status bpe_load(const char *vocab_json, const char *merges_txt, bpe **out);
void bpe_free(bpe *b);

/* Largest id + 1 (ids may have gaps: those decode as errors). */
int bpe_vocab_size(const bpe *b);

/* Encodes len bytes of text (any bytes; NUL is a byte like others). *tokens is allocated
 * (free() it; NULL when *n == 0). */
dlcl_status bpe_encode(const bpe *b, const char *text, size_t len, int32_t **tokens, size_t *n);

/* Decodes n ids into their bytes; *text is allocated with a NUL after its *len bytes (free()
 * it). An id outside the vocabulary is DLCL_ERR_INVALID_ARG naming it and its position. */
dlcl_status bpe_decode(const bpe *b, const int32_t *tokens, size_t n, char **text, size_t *len);

/* The bytes of one id, owned by b, for printing tokens as they are generated (a character
 * may span two tokens: write the bytes as they come). */
dlcl_status bpe_token_bytes(const bpe *b, int32_t id, const char **bytes, size_t *len);

/* The id of a vocabulary key as written in vocab.json (e.g. "<|endoftext|>", "Ġthe"), or -1. */
int32_t bpe_token_id(const bpe *b, const char *key);

/* GPT-2's pre-tokeniser (lib/text/pretokenize.c): the end of the piece that starts at pos
 * (pos < len; the result is > pos). Exposed for tests. */
size_t bpe_pretokenize_next(const char *text, size_t len, size_t pos);

#endif
