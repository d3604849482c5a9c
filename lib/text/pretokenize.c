/* GPT-2's pre-tokenisation pattern, matched by hand over UTF-8 bytes:
 *
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * Python's `regex` tries the alternatives in order at each position and takes the first that
 * matches, each quantifier greedy. Every character is exactly one of letter, number, space
 * or other, so one of the alternatives always matches and the pieces tile the text. The
 * only backtracking is in \s+(?!\S): a run of spaces followed by a non-space gives back its
 * last character (which then leads the next piece, " word"), unless the run is one
 * character long, when \s+ takes it alone. */
#include "bpe.h"
#include "unicode_classes.h"

/* Length of the strictly valid UTF-8 sequence at p[0..n) and its code point, or 0 when the
 * byte at p does not begin one (overlong, surrogate, above U+10FFFF, truncated, stray
 * continuation): that byte then stands alone. */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0; /* overlong */
        if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        if (c == 0xF0) lo = 0x90; /* overlong */
        if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (p[i] & 0x3F);
    }
    *cp = v;
    return len;
}

static int class_of(uint32_t cp)
{
    if (cp < 128) return uc_ascii[cp];
    size_t lo = 0, hi = uc_range_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < uc_ranges[mid].lo) hi = mid;
        else if (cp > uc_ranges[mid].hi) lo = mid + 1;
        else return uc_ranges[mid].cls;
    }
    return UC_OTHER;
}

/* The class of the character at t[pos] (pos < len); *next is where the one after begins. */
static int char_at(const unsigned char *t, size_t len, size_t pos, size_t *next)
{
    uint32_t cp;
    size_t k = utf8_decode(t + pos, len - pos, &cp);
    if (k == 0) {
        *next = pos + 1;
        return UC_OTHER; /* an undecodable byte: like a lone surrogate, of no class */
    }
    *next = pos + k;
    return class_of(cp);
}

/* The end of the run of characters of class cls that begins at pos. */
static size_t run_end(const unsigned char *t, size_t len, size_t pos, int cls)
{
    while (pos < len) {
        size_t next;
        if (char_at(t, len, pos, &next) != cls) break;
        pos = next;
    }
    return pos;
}

/* 's 't 're 've 'm 'll 'd (lower case only, as the pattern is case-sensitive): the length
 * matched at t[pos] == '\'', or 0. */
static size_t contraction(const unsigned char *t, size_t len, size_t pos)
{
    if (pos + 1 >= len) return 0;
    unsigned c1 = t[pos + 1];
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
    if (pos + 2 >= len) return 0;
    unsigned c2 = t[pos + 2];
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
    return 0;
}

size_t bpe_pretokenize_next(const char *text, size_t len, size_t pos)
{
    const unsigned char *t = (const unsigned char *)text;
    if (t[pos] == '\'') {
        size_t k = contraction(t, len, pos);
        if (k) return pos + k;
    }
    size_t next;
    /* " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional space, then a run of one
     * class; the space is taken when a non-space follows it. */
    if (t[pos] == ' ' && pos + 1 < len) {
        int cls = char_at(t, len, pos + 1, &next);
        if (cls != UC_SPACE) return run_end(t, len, next, cls);
    }
    int cls = char_at(t, len, pos, &next);
    if (cls != UC_SPACE) return run_end(t, len, next, cls);
    /* "\s+(?!\S)|\s+" */
    size_t last = pos, end = next;
    while (end < len) {
        size_t after;
        if (char_at(t, len, end, &after) != UC_SPACE) break;
        last = end;
        end = after;
    }
    if (end == len || last == pos) return end;
    return last;
}
