/* GPT-2's byte-level BPE (lib/text/bpe.c) on vocabularies small enough to check by hand: the
 * pre-tokeniser's pieces, merges in encoder.py's order, decoding, round trips of arbitrary
 * bytes, and a table of malformed vocab.json / merges.txt files, each with its status and
 * message. test/bpe_ref.py compares whole encodings with a transcription of encoder.py. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test.h"
#include "text/bpe.h"

/* ------------------------------------------------------------------ helpers */

/* GPT-2's bytes_to_unicode(): the code point that spells byte b in vocab.json. */
static unsigned spell_cp(unsigned b)
{
    unsigned n = 0;
    for (unsigned c = 0; c < 256; c++) {
        bool printable = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
        if (c == b) return printable ? c : 256 + n;
        n += !printable;
    }
    return 0;
}

/* The id of byte b's symbol in GPT-2's layout: the 256 symbols in code-point order. */
static int32_t byte_tok(unsigned b)
{
    int32_t id = 0;
    for (unsigned c = 0; c < 256; c++) id += spell_cp(c) < spell_cp(b);
    return id;
}

/* Appends the JSON entries of the 256 byte symbols but `skip` (-1: none), GPT-2's ids. */
static size_t byte_entries(char *out, int skip)
{
    size_t n = 0;
    for (unsigned b = 0; b < 256; b++) {
        if ((int)b == skip) continue;
        unsigned cp = spell_cp(b);
        n += (size_t)sprintf(out + n, "%s\"", n ? ", " : "");
        if (cp == '"' || cp == '\\') out[n++] = '\\';
        if (cp < 0x80) {
            out[n++] = (char)cp;
        } else {
            out[n++] = (char)(0xC0 | cp >> 6);
            out[n++] = (char)(0x80 | (cp & 0x3F));
        }
        n += (size_t)sprintf(out + n, "\": %d", byte_tok(b));
    }
    return n;
}

/* A path in the process's scratch directory (four calls' results live at once). */
static const char *scratch(const char *name)
{
    static const char *dir;
    static char path[4][1024];
    static int k;
    if (dir == NULL) dir = t_tmpdir(0);
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", dir ? dir : "/nonexistent", name);
    return path[k];
}

/* Writes vocab.json (the byte symbols but `skip`, then `extra` JSON entries) and merges.txt. */
static bool write_files(const char *extra, int skip, const char *merges)
{
    char *json = malloc(16384);
    if (json == NULL) return false;
    size_t n = (size_t)sprintf(json, "{");
    n += byte_entries(json + n, skip);
    n += (size_t)sprintf(json + n, "%s}", extra);
    bool ok = t_write_file(scratch("vocab.json"), json, n) && t_write_file(scratch("merges.txt"), merges, strlen(merges));
    free(json);
    return ok;
}

/* The hand vocabulary: "hello world" is [hello, Ġwor, ld]; "<|endoftext|>" is 264. */
static const char hand_extra[] = ", \"he\": 256, \"ll\": 257, \"hell\": 258, \"hello\": 259, \"\xC4\xA0w\": 260, "
                                 "\"or\": 261, \"\xC4\xA0wor\": 262, \"ld\": 263, \"<|endoftext|>\": 264";
static const char hand_merges[] = "#version: 0.2\nh e\nl l\nhe ll\nhell o\n\xC4\xA0 w\no r\n\xC4\xA0w or\nl d\n";

static bpe *load_hand(void)
{
    bpe *b = NULL;
    if (!write_files(hand_extra, -1, hand_merges)) return NULL;
    if (bpe_load(scratch("vocab.json"), scratch("merges.txt"), &b) != DLCL_OK)
        t_fail(__FILE__, __LINE__, "bpe_load: %s", dlcl_last_error());
    return b;
}

/* Encodes text and compares with want[0..nwant); reports the first difference. */
static bool encodes_to(const bpe *b, const char *text, size_t len, const int32_t *want, size_t nwant)
{
    int32_t *ids;
    size_t n;
    if (bpe_encode(b, text, len, &ids, &n) != DLCL_OK) {
        t_fail(__FILE__, __LINE__, "bpe_encode(\"%s\"): %s", text, dlcl_last_error());
        return false;
    }
    bool same = n == nwant && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    if (!same) {
        char got[512];
        size_t at = 0;
        for (size_t i = 0; i < n && at < sizeof got - 16; i++) at += (size_t)sprintf(got + at, " %d", ids[i]);
        got[at] = '\0';
        t_fail(__FILE__, __LINE__, "\"%s\" encodes to [%s ] (%zu ids, want %zu)", text, got, n, nwant);
    }
    free(ids);
    return same;
}

/* ------------------------------------------------------------------ cases */

/* Pieces as GPT-2's pattern finds them (checked with Python's `regex`), joined by '/'. */
static void bpe_pretokenize_splits_like_gpt2_pattern(void)
{
    static const char *cases[][2] = {
        {"hello world", "hello/ world"},
        {"Hello  World!", "Hello/ / World/!"},
        {"a   b", "a/  / b"},        /* a run of spaces leaves its last to the word */
        {"a\t\tb", "a/\t/\t/b"},    /* ...but only a ' ' joins the word */
        {"a \tb", "a/ /\t/b"},
        {"\n\nHi", "\n/\n/Hi"},
        {"trailing   ", "trailing/   "},
        {"it's they're we've I'm you'll he'd", "it/'s/ they/'re/ we/'ve/ I/'m/ you/'ll/ he/'d"},
        {"IT'S", "IT/'/S"}, /* contractions are lower case only */
        {"''s", "''/s"},
        {" 's", " '/s"},
        {"?'s", "?'/s"},
        {"123 4567 8.9", "123/ 4567/ 8/./9"},
        {"a1b2", "a/1/b/2"},
        {" !?", " !?"},
        {"caf\xC3\xA9 \xE6\x9D\xB1\xE4\xBA\xAC", "caf\xC3\xA9/ \xE6\x9D\xB1\xE4\xBA\xAC"},
        {"e\xCC\x81", "e/\xCC\x81"},                  /* a combining mark is not a letter */
        {"\xC2\xA0\xC2\xA0x", "\xC2\xA0/\xC2\xA0/x"},  /* U+00A0 is \s */
        {"\x1C\x1D x", "\x1C\x1D/ x"},                /* U+001C..1F: not regex's \s */
        {"x\xFF\xFEy", "x/\xFF\xFE/y"},               /* undecodable bytes: "other" */
        {"\xE6\x9D", "\xE6\x9D"},                     /* a truncated character */
        {"<|endoftext|>", "<|/endoftext/|>"},          /* plain text (see bpe.h) */
    };
    for (size_t c = 0; c < T_COUNT(cases); c++) {
        const char *text = cases[c][0];
        char got[256];
        size_t len = strlen(text), at = 0;
        for (size_t pos = 0; pos < len;) {
            size_t end = bpe_pretokenize_next(text, len, pos);
            T_CHECK(end > pos && end <= len, "\"%s\": piece at %zu ends at %zu", text, pos, end);
            at += (size_t)snprintf(got + at, sizeof got - at, "%s%.*s", pos ? "/" : "", (int)(end - pos), text + pos);
            pos = end;
        }
        T_CHECK(strcmp(got, cases[c][1]) == 0, "\"%s\" splits as \"%s\", want \"%s\"", text, got, cases[c][1]);
    }
}

static void bpe_encodes_hand_vocab_by_merge_rank(void)
{
    bpe *b = load_hand();
    T_CHECK(b, "no vocabulary");
    T_CHECK(bpe_vocab_size(b) == 265, "vocab size %d, want 265", bpe_vocab_size(b));
    const int32_t hello_world[] = {259, 262, 263};
    bool ok = encodes_to(b, "hello world", 11, hello_world, 3);
    const int32_t hel[] = {256, byte_tok('l')}, nl[] = {byte_tok('\n'), byte_tok('h')};
    ok = ok && encodes_to(b, "hel", 3, hel, 2) && encodes_to(b, "\nh", 2, nl, 2);
    /* <|endoftext|> is text: its characters, not id 264 */
    int32_t eot[13];
    for (int i = 0; i < 13; i++) eot[i] = byte_tok((unsigned char)"<|endoftext|>"[i]);
    ok = ok && encodes_to(b, "<|endoftext|>", 13, eot, 13);
    ok = ok && encodes_to(b, "", 0, NULL, 0);
    T_CHECK(bpe_token_id(b, "<|endoftext|>") == 264, "<|endoftext|> has id %d", bpe_token_id(b, "<|endoftext|>"));
    T_CHECK(bpe_token_id(b, "\xC4\xA0wor") == 262 && bpe_token_id(b, "!") == 0 && bpe_token_id(b, "zz") == -1,
            "bpe_token_id: %d %d %d", bpe_token_id(b, "\xC4\xA0wor"), bpe_token_id(b, "!"), bpe_token_id(b, "zz"));
    bpe_free(b);
    T_CHECK(ok, "see above");
}

/* encoder.py merges every occurrence of the lowest-ranked pair in one pass and only then
 * looks at the pairs that made: "ab a" outranks "a b", yet "abab" is [ab, ab], not
 * [aba, b]; and "a a" over "aaa" leaves the last a. */
static void bpe_merges_whole_passes_like_encoder_py(void)
{
    T_CHECK(write_files(", \"ab\": 256, \"aba\": 257, \"aa\": 258", -1, "#version: 0.2\nab a\na b\na a\n"), "write");
    bpe *b;
    T_OK(bpe_load(scratch("vocab.json"), scratch("merges.txt"), &b));
    const int32_t abab[] = {256, 256}, aaa[] = {258, byte_tok('a')}, aaaa[] = {258, 258};
    const int32_t ababa[] = {256, 257}; /* pass 1: ab ab a; pass 2: (ab, a) */
    bool ok = encodes_to(b, "abab", 4, abab, 2) && encodes_to(b, "aaa", 3, aaa, 2) && encodes_to(b, "aaaa", 4, aaaa, 2) &&
              encodes_to(b, "ababa", 5, ababa, 2);
    bpe_free(b);
    T_CHECK(ok, "see above");
}

/* Every byte string encodes (NUL, invalid UTF-8, long pieces) and decodes back, also token
 * by token through bpe_token_bytes. */
static void bpe_roundtrips_random_bytes(void)
{
    bpe *b = load_hand();
    T_CHECK(b, "no vocabulary");
    uint64_t rng = t_seed();
    char text[4096];
    for (int iter = 0; iter < 3000 && !t_failed(); iter++) {
        size_t len = t_rand_u32(&rng) % (iter < 2900 ? 64 : sizeof text);
        int kind = iter % 3;
        for (size_t i = 0; i < len; i++) {
            uint32_t r = t_rand_u32(&rng);
            text[i] = kind == 0 ? (char)r : kind == 1 ? "helo wrd\n\t'"[r % 11] : (char)(r % 2 ? 0x80 | (r >> 8) % 64 : 0xC0 + (r >> 8) % 64);
        }
        int32_t *ids;
        size_t n, dlen, at = 0;
        char *dec;
        T_OK(bpe_encode(b, text, len, &ids, &n));
        dlcl_status st = bpe_decode(b, ids, n, &dec, &dlen);
        bool same = st == DLCL_OK && dlen == len && memcmp(dec, text, len) == 0 && dec[dlen] == '\0';
        for (size_t i = 0; same && i < n; i++) {
            const char *bytes;
            size_t blen;
            same = bpe_token_bytes(b, ids[i], &bytes, &blen) == DLCL_OK && memcmp(text + at, bytes, blen) == 0;
            at += blen;
        }
        free(ids);
        if (st == DLCL_OK) free(dec);
        T_CHECK(same && at == len, "iteration %d (%zu bytes, kind %d) does not round-trip (seed %llu)", iter, len, kind,
                (unsigned long long)t_seed());
    }
    bpe_free(b);
}

static void bpe_decode_rejects_unknown_ids(void)
{
    T_CHECK(write_files(", \"<pad> x\": 300", -1, "#version: 0.2\n"), "write");
    bpe *b;
    T_OK(bpe_load(scratch("vocab.json"), scratch("merges.txt"), &b));
    char *text = NULL;
    size_t len;
    const char *bytes;
    const int32_t over[] = {1, 2, 301}, neg[] = {-1}, gap[] = {3, 299};
    dlcl_status s1 = bpe_decode(b, over, 3, &text, &len);
    char m1[256];
    snprintf(m1, sizeof m1, "%s", dlcl_last_error());
    dlcl_status s2 = bpe_decode(b, neg, 1, &text, &len);
    bool gap_ok = t_err_matches(bpe_decode(b, gap, 2, &text, &len), DLCL_ERR_INVALID_ARG, "token id 299 at position 1");
    bool tb_ok = t_err_matches(bpe_token_bytes(b, 5000, &bytes, &len), DLCL_ERR_INVALID_ARG, "token id 5000");
    /* a key outside the byte alphabet (a space) is an added token: it decodes to itself */
    int32_t pad = bpe_token_id(b, "<pad> x");
    bool pad_ok = pad == 300 && bpe_token_bytes(b, pad, &bytes, &len) == DLCL_OK && len == 7 && memcmp(bytes, "<pad> x", 7) == 0;
    int size = bpe_vocab_size(b);
    bpe_free(b);
    T_CHECK(s1 == DLCL_ERR_INVALID_ARG && strstr(m1, "token id 301 at position 2"), "id 301: %s %s", dlcl_status_str(s1), m1);
    T_CHECK(s2 == DLCL_ERR_INVALID_ARG && text == NULL, "id -1: %s", dlcl_status_str(s2));
    T_CHECK(gap_ok && tb_ok, "gap id 299 or bpe_token_bytes(5000) not rejected: %s", dlcl_last_error());
    T_CHECK(pad_ok && size == 301, "added token: id %d, vocab size %d", pad, size);
}

/* "#version" is skipped only on line 1; blank lines and CRLF endings are fine. */
static void bpe_load_accepts_crlf_and_blank_lines(void)
{
    T_CHECK(write_files(", \"he\": 256, \"##\": 257", -1, "#version: 0.2\r\n\r\nh e\r\n\n# #\r\n"), "write");
    bpe *b;
    T_OK(bpe_load(scratch("vocab.json"), scratch("merges.txt"), &b));
    const int32_t hashes[] = {257}, he[] = {256};
    bool ok = encodes_to(b, "##", 2, hashes, 1) && encodes_to(b, "he", 2, he, 1);
    bpe_free(b);
    T_CHECK(ok, "see above");
}

typedef struct bad_case {
    const char *name;
    const char *vocab_extra; /* JSON entries after the byte symbols */
    const char *vocab_raw;   /* or the whole file (NULL: built from vocab_extra) */
    int skip_byte;           /* a byte symbol left out, or -1 */
    const char *merges;
    dlcl_status status;
    const char *message;
} bad_case;

#define MERGES_OK "#version: 0.2\na b\n"
static const bad_case bad_cases[] = {
    {"not_json", "", "{\"a\": 1,,}", -1, MERGES_OK, DLCL_ERR_DATA, "vocab.json:1:10: not valid JSON"},
    {"json_error_line", "", "{\n \"a\": 1,\n oops\n}", -1, MERGES_OK, DLCL_ERR_DATA, "vocab.json:3:"},
    {"array", "", "[1, 2]", -1, MERGES_OK, DLCL_ERR_DATA, "vocab.json: not a JSON object"},
    {"empty_object", "", "{}", -1, MERGES_OK, DLCL_ERR_DATA, "vocab.json: the vocabulary is empty"},
    {"string_id", ", \"ab\": \"256\"", NULL, -1, MERGES_OK, DLCL_ERR_DATA, "key \"ab\": the id is not an integer"},
    {"fraction_id", ", \"ab\": 256.5", NULL, -1, MERGES_OK, DLCL_ERR_DATA, "key \"ab\": the id is not an integer"},
    {"negative_id", ", \"ab\": -1", NULL, -1, MERGES_OK, DLCL_ERR_DATA, "key \"ab\": the id is not an integer"},
    {"huge_id", ", \"ab\": 3e9", NULL, -1, MERGES_OK, DLCL_ERR_DATA, "key \"ab\": the id is not an integer"},
    {"duplicate_id", ", \"ab\": 256, \"ba\": 256", NULL, -1, MERGES_OK, DLCL_ERR_DATA,
     "key \"ba\": id 256 is already the id of \"ab\""},
    {"duplicate_key", ", \"ab\": 256, \"ab\": 257", NULL, -1, MERGES_OK, DLCL_ERR_DATA, "key \"ab\" appears twice"},
    {"invalid_utf8_key", ", \"a\xFF\": 256", NULL, -1, MERGES_OK, DLCL_ERR_DATA, "is not valid UTF-8"},
    {"missing_byte", ", \"ab\": 256", NULL, 0x0A, MERGES_OK, DLCL_ERR_DATA, "vocab.json: no token for byte 0x0A"},
    {"merge_one_symbol", ", \"ab\": 256", NULL, -1, "#version: 0.2\na b\nab\n", DLCL_ERR_DATA,
     "merges.txt:3: a merge is two symbols separated by a space, found one"},
    {"merge_three_symbols", ", \"ab\": 256", NULL, -1, "#version: 0.2\na b c\n", DLCL_ERR_DATA,
     "merges.txt:2: a merge is two symbols separated by a space, found more"},
    {"merge_part_missing", ", \"ab\": 256", NULL, -1, "#version: 0.2\na b\nzz a\n", DLCL_ERR_DATA,
     "merges.txt:3: merge symbol \"zz\" is not in"},
    {"merge_part_unspellable", ", \"ab\": 256", NULL, -1, "a \xE4\xB8\xAD\n", DLCL_ERR_DATA,
     "merges.txt:1: merge symbol \"\xE4\xB8\xAD\" is not in"},
    {"merge_result_missing", ", \"ab\": 256", NULL, -1, "#version: 0.2\na b\nb a\n", DLCL_ERR_DATA,
     "merges.txt:3: merged symbol \"ba\" is not in"},
    {"merge_nul_byte", ", \"ab\": 256", NULL, -1, "#version: 0.2\na\0b\n", DLCL_ERR_DATA, "merges.txt:2: a NUL byte"},
};

static void bpe_load_rejects_bad_files(void)
{
    for (size_t c = 0; c < T_COUNT(bad_cases); c++) {
        const bad_case *k = &bad_cases[c];
        size_t mlen = strcmp(k->name, "merge_nul_byte") == 0 ? 18 : strlen(k->merges);
        bool written = k->vocab_raw ? t_write_file(scratch("vocab.json"), k->vocab_raw, strlen(k->vocab_raw))
                                    : write_files(k->vocab_extra, k->skip_byte, "");
        written = written && t_write_file(scratch("merges.txt"), k->merges, mlen);
        T_CHECK(written, "%s: cannot write the files", k->name);
        bpe *b = (bpe *)1;
        dlcl_status st = bpe_load(scratch("vocab.json"), scratch("merges.txt"), &b);
        T_CHECK(t_err_matches(st, k->status, k->message) && b == NULL, "%s: want %s \"%s\", got %s \"%s\"", k->name,
                dlcl_status_str(k->status), k->message, dlcl_status_str(st), dlcl_last_error());
        if (st == DLCL_OK) bpe_free(b);
    }
}

static void bpe_load_names_missing_and_unreadable_files(void)
{
    T_CHECK(write_files("", -1, MERGES_OK), "write");
    bpe *b;
    T_ERR(bpe_load(scratch("nothere.json"), scratch("merges.txt"), &b), DLCL_ERR_NOT_FOUND, "nothere.json: cannot open");
    T_ERR(bpe_load(scratch("vocab.json"), scratch("nothere.txt"), &b), DLCL_ERR_NOT_FOUND, "nothere.txt: cannot open");
    const char *dir = scratch("a_directory");
    T_CHECK(mkdir(dir, 0700) == 0, "mkdir %s", dir);
    T_ERR(bpe_load(dir, scratch("merges.txt"), &b), DLCL_ERR_IO, "a_directory: read error");
    T_ERR(bpe_load(NULL, scratch("merges.txt"), &b), DLCL_ERR_INVALID_ARG, "NULL");
}

static const t_case cases[] = {
    T_CASE(bpe_pretokenize_splits_like_gpt2_pattern),
    T_CASE(bpe_encodes_hand_vocab_by_merge_rank),
    T_CASE(bpe_merges_whole_passes_like_encoder_py),
    T_CASE(bpe_roundtrips_random_bytes),
    T_CASE(bpe_decode_rejects_unknown_ids),
    T_CASE(bpe_load_accepts_crlf_and_blank_lines),
    T_CASE(bpe_load_rejects_bad_files),
    T_CASE(bpe_load_names_missing_and_unreadable_files),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
