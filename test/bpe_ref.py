#!/usr/bin/python3
"""GPT-2's byte-level BPE in C (lib/text/bpe.c) against a Python transcription of openai/gpt-2's
encoder.py, reported in TAP.

encoder.py splits text with the `regex` module; Debian's python3 has no `regex`, so the
pattern is transcribed below alternative by alternative with unicodedata's classes (the same
unicodedata that tools/gen_unicode_classes.py generated the C table from). Where `regex` or
Hugging Face's `tokenizers` can be imported, they are compared too; otherwise those rows skip.

A vocabulary is trained here (all 256 byte symbols first, as GPT-2's; merges by pair
frequency on a few KB of English and other scripts) and written in Hugging Face's format;
a second one has random merges in random order, which no trainer makes but which tells
encoder.py's pass-by-pass merging apart from a one-merge-at-a-time priority queue.
Usage: bpe_ref.py BPE_TOOL"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import unicodedata
from collections import Counter

TOOL = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="dlcl-bpe-")
results = []


def report(ok, name, log="", skip=None):
    results.append(ok)
    directive = f" # SKIP {skip}" if skip else ""
    print(f"{'ok' if ok else 'not ok'} {len(results)} - {name}{directive}", flush=True)
    if not ok:
        for line in log.splitlines()[-25:]:
            print("# " + line[:300])


# ------------------------------------------------------------ encoder.py, transcribed

def bytes_to_unicode():
    """encoder.py's, verbatim."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    cs = [chr(n) for n in cs]
    return dict(zip(bs, cs))


def get_pairs(word):
    pairs = set()
    prev_char = word[0]
    for char in word[1:]:
        pairs.add((prev_char, char))
        prev_char = char
    return pairs


def char_class(ch):
    """L for \\p{L}, N for \\p{N}, S for regex's \\s (Unicode White_Space: str.isspace() less
    U+001C..U+001F), O for anything else (lone surrogates, i.e. undecodable bytes, too)."""
    if ch.isspace() and not 0x1C <= ord(ch) <= 0x1F:
        return "S"
    cat = unicodedata.category(ch)
    return cat[0] if cat[0] in "LN" else "O"


# 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
# Each alternative returns the end of its match at i, or None; the first that matches wins.
def alt_contraction(t, i):
    for c in ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d"):
        if t.startswith(c, i):
            return i + len(c)
    return None


def alt_space_opt_run(cls):
    """ ?X+ : greedy optional space (tried first), then one or more of class X."""
    def alt(t, i):
        for start in ([i + 1, i] if t[i] == " " else [i]):
            end = start
            while end < len(t) and char_class(t[end]) == cls:
                end += 1
            if end > start:
                return end
        return None
    return alt


def alt_spaces_not_before_nonspace(t, i):
    """\\s+(?!\\S): the longest run of spaces not followed by a non-space (backtracking)."""
    end = i
    while end < len(t) and char_class(t[end]) == "S":
        end += 1
    for e in range(end, i, -1):
        if e == len(t) or char_class(t[e]) == "S":
            return e
    return None


def alt_spaces(t, i):
    end = i
    while end < len(t) and char_class(t[end]) == "S":
        end += 1
    return end if end > i else None


ALTERNATIVES = [alt_contraction, alt_space_opt_run("L"), alt_space_opt_run("N"), alt_space_opt_run("O"),
                alt_spaces_not_before_nonspace, alt_spaces]


def findall(t):
    """re.findall(pat, t) for GPT-2's pattern: every character is in some class, so a match
    starts wherever the previous one ended."""
    out, i = [], 0
    while i < len(t):
        end = next(e for e in (alt(t, i) for alt in ALTERNATIVES) if e is not None)
        out.append(t[i:end])
        i = end
    return out


class Encoder:
    """encoder.py's Encoder (without its cache), over bytes: undecodable bytes become lone
    surrogates (surrogateescape) for the pattern, and their own byte again for BPE."""

    def __init__(self, encoder, bpe_merges):
        self.encoder = encoder
        self.decoder = {v: k for k, v in self.encoder.items()}
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        self.bpe_ranks = dict(zip(bpe_merges, range(len(bpe_merges))))

    def bpe(self, token):
        """encoder.py's bpe(), verbatim but for the cache."""
        word = tuple(token)
        pairs = get_pairs(word)
        if not pairs:
            return token
        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            new_word = tuple(new_word)
            word = new_word
            if len(word) == 1:
                break
            else:
                pairs = get_pairs(word)
        return " ".join(word)

    def encode(self, data):
        bpe_tokens = []
        for token in findall(data.decode("utf-8", "surrogateescape")):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8", "surrogateescape"))
            bpe_tokens.extend(self.encoder[bpe_token] for bpe_token in self.bpe(token).split(" "))
        return bpe_tokens

    def decode(self, tokens):
        text = "".join([self.decoder[token] for token in tokens])
        return bytearray([self.byte_decoder[c] for c in text])


# ------------------------------------------------------------ vocabularies

CORPUS = """\
The quick brown fox jumps over the lazy dog. It's a sentence that uses every letter, and it's
been used to test typewriters, fonts and keyboards for more than a century. We'll use it too:
they've used it, you'd use it, I'm sure we're not the first, and the dog doesn't mind.

In 1859, Charles Darwin published "On the Origin of Species"; the first printing of 1,250
copies sold out on the first day. By 1872 there were six editions, and the sixth added the
word "evolution" for the first time. Numbers like 3.14159, 2.71828 and 1.41421 are constants;
prices like $19.99 or 42 EUR are not. Call 555-0123 before 10:30pm on 2024-03-15!

    def train(model, data, epochs=10):
        for epoch in range(epochs):
            loss = model.step(data)   # one step per batch
            print(f"epoch {epoch}: loss {loss:.4f}")

Tabs\tseparate\tcolumns\tin\tthis\tline, and    several   spaces   separate these words.
Windows line endings end this line.\r
Then comes a line of punctuation: ... !!! ??? --- *** ((())) [[[]]] {{{}}} <<<>>> @@@ ###

Le café est très bon, n'est-ce pas ? À Paris, les élèves étudient l'économie et la géographie.
Der Straßenbahnfahrer grüßt die Fußgänger; Äpfel, Öl und Übermut sind schön.
El niño comió piñata en la montaña; ¿Dónde está la biblioteca? ¡Olé!
Ελληνικά γράμματα: αλφα, βήτα, γάμμα, δέλτα. Русский текст: Привет, как дела? Всё хорошо.
中文文本测试：我们今天去公园散步，天气很好。日本語のテキスト：こんにちは、世界！カタカナもテスト。
한국어 문장도 있습니다. עברית מימין לשמאל. العربية من اليمين إلى اليسار. हिन्दी पाठ भी है।
Emoji: 😀 😃 😄 👍🏽 👨‍👩‍👧 🇫🇷 ❤️ 🎉🎉🎉 and symbols € © ® ™ — “quotes” ‘single’ … • ½ ² Ⅻ ①.
Non-breaking spaces and ideographic spaces　between　words, thin spaces too.

The rain in Spain stays mainly in the plain. She sells sea shells by the sea shore. Peter
Piper picked a peck of pickled peppers. How much wood would a woodchuck chuck if a woodchuck
could chuck wood? The the the the the. A man, a plan, a canal: Panama. Never odd or even.
I'll be there; you'll see. He'd have known. They'd've said so. Don't, won't, can't, shouldn't.
"""


def write_vocab(name, vocab, merges):
    vpath, mpath = f"{tmp}/{name}.vocab.json", f"{tmp}/{name}.merges.txt"
    with open(vpath, "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(mpath, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return vpath, mpath


def byte_vocab():
    """GPT-2's first 256 ids: the byte symbols in code-point order ('!' is 0, 'Ġ' is 220)."""
    return {ch: i for i, ch in enumerate(sorted(bytes_to_unicode().values()))}


def train(text, max_merges):
    """Classic BPE training on the pre-tokenised, byte-spelt words: merge the most frequent
    pair (ties: the smallest pair), down to pairs seen once, so most words end as one token."""
    enc = bytes_to_unicode()
    words = Counter("".join(enc[b] for b in w.encode("utf-8")) for w in findall(text))
    splits = {w: list(w) for w in words}
    vocab, merges = byte_vocab(), []
    for _ in range(max_merges):
        pairs = Counter()
        for w, count in words.items():
            s = splits[w]
            for i in range(len(s) - 1):
                pairs[s[i], s[i + 1]] += count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        vocab.setdefault(best[0] + best[1], len(vocab))
        for w, s in splits.items():
            i, out = 0, []
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            splits[w] = out
    vocab["<|endoftext|>"] = len(vocab)
    return vocab, merges


def random_merges(rng, alphabet, count):
    """Merges of random pairs of existing symbols, listed in a random order."""
    enc = bytes_to_unicode()
    symbols = [enc[ord(c)] for c in alphabet]
    vocab, merges = byte_vocab(), set()
    while len(merges) < count:
        a, b = rng.choice(symbols), rng.choice(symbols)
        if (a, b) in merges:
            continue
        merges.add((a, b))
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
            symbols.append(a + b)
    merges = sorted(merges)
    rng.shuffle(merges)
    return vocab, merges


# ------------------------------------------------------------ test strings

PALETTE = ["the", "The", " quick", "fox", "café", "Straße", "naïve", "über", "niño", "東京", "中文", "ひらがな", "カタカナ",
           "한국어", "Привет", "αβγ", "שלום", "مرحبا", "हिन्दी", "e\u0301", "😀", "👍🏽", "👨\u200d👩\u200d👧", "🇫🇷",
           "0", "7", "42", "2024", "3.14", "1,000", "½", "²", "Ⅻ", "٣", "①", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d",
           "'S", "'", "''", "'x", "don't", "I'm", " ", " ", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\u00a0",
           "\u3000", "\u2009", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\u2028", "\u200b", "!", "?", "...", ",", ".",
           "—", "“", "”", "€", "©", "$", "#", "@", "<|endoftext|>", "\x00", "\x7f", "_", "-", "(", ")", "{", "}"]

FIXED = ["", " ", "  ", "a", " a", "a ", "a  b", "a   b", "a\t\tb", "a \tb", "\n", "hello world", "Hello  World!",
         "it's", "IT'S", "they're we've I'm you'll he'd", "'s'", "''s", " 's", "x's's", "'", "' ",
         "123 4567 8.9", " 1 2  3", "a1b2", "²³", "$$$ !!!", " !?", "e\u0301", "👍🏽 👍🏽", "东京 tokyo",
         "<|endoftext|>", "text<|endoftext|>more", "trailing   ", "   leading", "\t\n \u00a0x", "\x1c\x1d x",
         "\u3000\u3000x", "a\u2028b", "\u0085\u0085 y"]


def random_text(rng):
    return "".join(rng.choice(PALETTE) for _ in range(rng.randrange(0, 40)))


def random_bytes(rng):
    """Invalid UTF-8 of many kinds: random bytes, truncated and mutated characters."""
    kind = rng.randrange(4)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
    if kind == 1:  # lead and continuation bytes, surrogates, overlongs
        parts = [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf8", b"\xff", b"\x80",
                 b"\xbf", b"\xc3", b"\xe6\x9d", b"\xf0\x9f\x98", b" ", b"a", b"'s", b"1", b"\xc3\xa9"]
        return b"".join(rng.choice(parts) for _ in range(rng.randrange(1, 30)))
    data = bytearray(random_text(rng).encode("utf-8") or b"x")
    for _ in range(rng.randrange(1, 5)):
        at = rng.randrange(len(data) + 1)
        if kind == 2:
            data[at:at] = bytes([rng.randrange(128, 256)])
        elif data:
            del data[min(at, len(data) - 1)]
    return bytes(data)


def records(path, items):
    with open(path, "wb") as f:
        for b in items:
            f.write(struct.pack("<I", len(b)) + b)


def run_tool(args):
    p = subprocess.run([TOOL] + args, capture_output=True, timeout=300)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def c_encode(vpath, mpath, items):
    """[(ids, decoded bytes, stream ok)] from bpe_tool, or (None, log)."""
    records(f"{tmp}/records", items)
    rc, out, err = run_tool(["encode", vpath, mpath, f"{tmp}/records"])
    lines = out.split("\n")[:-1]
    if rc != 0 or len(lines) != len(items):
        return None, f"bpe_tool exit {rc}, {len(lines)} lines for {len(items)} records\n{err}"
    rows = []
    for line in lines:
        ids, hexed, stream = line.split("\t")
        rows.append(([int(x) for x in ids.split()], bytes.fromhex(hexed), stream == "stream-ok"))
    return rows, ""


def compare(name, vpath, mpath, enc, items):
    rows, log = c_encode(vpath, mpath, items)
    if rows is None:
        report(False, name, log)
        return
    bad = []
    for data, (ids, decoded, stream) in zip(items, rows):
        want = enc.encode(data)
        if ids != want or decoded != data or not stream or bytes(enc.decode(want)) != data:
            bad.append(f"{data!r}: C {ids} Python {want}; C decode {decoded!r}, stream ok {stream}")
    report(not bad, f"{name} ({len(items)} strings, {sum(map(len, items))} bytes)",
           f"{len(bad)} differ; first ones:\n" + "\n".join(bad[:5]))


def main():
    seed = int(os.environ.get("T_SEED", "1"))
    rng = random.Random(seed)
    print(f"# seed {seed} (T_SEED), unicodedata {unicodedata.unidata_version}")
    texts = FIXED + [random_text(rng) for _ in range(600)] + CORPUS.split("\n") + [CORPUS]
    texts += ["".join(rng.choice("abcdefghij") for _ in range(3000))]  # one long piece
    utf8 = [t.encode("utf-8") for t in texts]
    invalid = [random_bytes(rng) for _ in range(400)] + [bytes(range(256)), bytes(range(255, -1, -1))]

    # the pre-tokeniser on its own: piece boundaries in bytes
    records(f"{tmp}/pretok", utf8 + invalid)
    rc, out, err = run_tool(["pretok", f"{tmp}/pretok"])
    got = out.split("\n")[:-1]
    bad = []
    for data, line in zip(utf8 + invalid, got):
        pieces = findall(data.decode("utf-8", "surrogateescape"))
        ends, at = [], 0
        for p in pieces:
            at += len(p.encode("utf-8", "surrogateescape"))
            ends.append(at)
        if [int(x) for x in line.split()] != ends:
            bad.append(f"{data!r}: C ends {line} Python pieces {pieces}")
    report(rc == 0 and len(got) == len(utf8 + invalid) and not bad, "pretokenize_matches_python_transcription",
           err + "\n".join(bad[:5]))

    try:
        import regex
    except ImportError:
        report(True, "python_transcription_matches_regex_module", skip="no regex module")
    else:
        pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
        bad = [t for t in texts + [d.decode("utf-8", "surrogateescape") for d in invalid]
               if pat.findall(t) != findall(t)]
        report(not bad, "python_transcription_matches_regex_module", "\n".join(repr(t) for t in bad[:5]))

    vocab, merges = train(CORPUS, 3000)
    vpath, mpath = write_vocab("trained", vocab, merges)
    print(f"# trained vocabulary: {len(vocab)} tokens, {len(merges)} merges")
    enc = Encoder(vocab, merges)
    compare("encode_matches_encoder_py_trained_vocab", vpath, mpath, enc, utf8)
    compare("encode_matches_encoder_py_invalid_utf8", vpath, mpath, enc, invalid)

    rvocab, rmerges = random_merges(rng, "abcde", 120)
    rvpath, rmpath = write_vocab("random", rvocab, rmerges)
    renc = Encoder(rvocab, rmerges)
    words = ["".join(rng.choice("abcde") for _ in range(rng.randrange(1, 40))) for _ in range(500)]
    compare("encode_matches_encoder_py_random_merge_order", rvpath, rmpath, renc,
            [w.encode() for w in words] + [b"a" * 100, b"ab" * 50, b"abc" * 40])

    try:
        from tokenizers import Tokenizer, models, pre_tokenizers
    except ImportError:
        report(True, "encode_matches_hf_tokenizers", skip="no tokenizers module")
    else:
        tok = Tokenizer(models.BPE.from_file(vpath, mpath))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        bad = [t for t in texts if tok.encode(t).ids != enc.encode(t.encode("utf-8"))]
        report(not bad, "encode_matches_hf_tokenizers", "\n".join(repr(t) for t in bad[:5]))

    # speed: ~1 MB of mixed text, and one 1 MB piece (no quadratic blow-up)
    mixed = CORPUS.encode() + b"".join(t + b"\n" for t in utf8[:600])
    with open(f"{tmp}/mixed.txt", "wb") as f:
        f.write((mixed * (1 + (1 << 20) // len(mixed)))[:1 << 20])
    with open(f"{tmp}/piece.txt", "wb") as f:
        f.write(bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(1 << 20)))
    for name, path in (("mixed_text", f"{tmp}/mixed.txt"), ("one_piece", f"{tmp}/piece.txt")):
        rc, out, err = run_tool(["bench", vpath, mpath, path])
        print(f"# encode speed, {name}: {out.strip()}")
        report(rc == 0, f"encode_1mb_{name}", err)

    print(f"1..{len(results)}")
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(0 if all(results) else 1)


main()
