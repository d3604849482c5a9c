#!/usr/bin/env python3
"""The English text corpus of dlcl's sequence examples and tests, from Debian's `fortunes`
package (tools/setup.sh installs it): the fortune files of /usr/share/games/fortunes.

    python3 tools/text_corpus.py OUT_DIR [--source DIR]

writes OUT_DIR/train.txt and OUT_DIR/test.txt, split by a fixed rule so that anyone gets the
same bytes from the same package version:
  - the regular files of DIR without an extension (the .dat indices and the .u8 links are
    skipped), in sorted order;
  - each file's fortunes are the texts between lines holding a single '%';
  - numbering every fortune of every file in that order from 0, fortune i goes to test when
    i % 10 == 9, else to train (so about 10% of the text is held out, spread over every file);
  - each fortune is written followed by a line '%', as in the files.
It prints the sizes and a SHA-256 of each file. Nothing is downloaded."""
import argparse
import hashlib
import os
import sys


def fortunes(path):
    with open(path, "rb") as f:
        text = f.read()
    cur = []
    for line in text.split(b"\n"):
        if line.strip() == b"%":
            if cur:
                yield b"\n".join(cur).strip(b"\n") + b"\n"
            cur = []
        else:
            cur.append(line)
    if any(line.strip() for line in cur):
        yield b"\n".join(cur).strip(b"\n") + b"\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--source", default="/usr/share/games/fortunes")
    a = ap.parse_args()
    if not os.path.isdir(a.source):
        sys.exit("text_corpus.py: %s not found: install Debian's fortunes package (apt-get install fortunes)" % a.source)
    names = sorted(n for n in os.listdir(a.source)
                   if "." not in n and os.path.isfile(os.path.join(a.source, n))
                   and not os.path.islink(os.path.join(a.source, n)))
    if not names:
        sys.exit("text_corpus.py: no fortune files in %s" % a.source)
    os.makedirs(a.out, exist_ok=True)
    parts = {"train": [], "test": []}
    i = 0
    for n in names:
        for f in fortunes(os.path.join(a.source, n)):
            parts["test" if i % 10 == 9 else "train"].append(f + b"%\n")
            i += 1
    for split, chunks in parts.items():
        data = b"".join(chunks)
        path = os.path.join(a.out, split + ".txt")
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        print("%s: %d fortunes, %d bytes, sha256 %s" % (path, len(chunks), len(data), hashlib.sha256(data).hexdigest()))


if __name__ == "__main__":
    main()
