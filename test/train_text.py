#!/usr/bin/python3
"""End to end on real text, in TAP: the char examples (examples/char_gpt.ini, char_lstm.ini),
made small, learn English from Debian's fortunes (data/fortunes, split by
tools/text_corpus.py) in 400 steps: the test loss per character must fall well below the
test text's own byte entropy (a model that ignores context scores that entropy), then
dlcl-generate continues a prompt with mostly printable text, the same text again for the
same seed.

Usage: train_text.py TOOLS_DIR SOURCE_DIR"""
import collections
import math
import os
import re
import subprocess
import sys
import tempfile

TOOLS, SRC = sys.argv[1], os.path.abspath(sys.argv[2])
tmp = tempfile.mkdtemp(prefix="dlcl-text-")
data = os.path.join(SRC, "data", "fortunes")
if not os.path.exists(os.path.join(data, "train.txt")):
    data = os.path.join(tmp, "fortunes")
    p = subprocess.run([sys.executable, os.path.join(SRC, "tools", "text_corpus.py"), data], capture_output=True,
                       text=True)
    if p.returncode != 0:
        print("1..0 # SKIP no text corpus: %s" % p.stderr.strip()[-200:])
        sys.exit(0)
count = failed = 0


def report(ok, name, detail=""):
    global failed, count
    count += 1
    if not ok:
        failed += 1
    for line in detail.splitlines():
        print("# " + line)
    print("%s %d - %s" % ("ok" if ok else "not ok", count, name), flush=True)


test = open(os.path.join(data, "test.txt"), "rb").read()
freq = collections.Counter(test)
entropy = -sum(v / len(test) * math.log(v / len(test)) for v in freq.values())
SMALL = {
    "char_gpt": ["vars.layers=2", "vars.width=64", "vars.context=64", "vars.dropout=0", "optimizer.learning_rate=3e-3",
                 "optimizer.warmup_steps=50"],
    "char_lstm": ["vars.hidden=128", "vars.layers=1", "vars.context=64"],
}
for name, extra in SMALL.items():
    config = os.path.join(SRC, "examples", name + ".ini")
    ckpt = os.path.join(tmp, name + ".safetensors")
    sets = extra + [f"vars.data={data}", "net.batch=16", "data.train_samples=6400", "data.test_samples=512",
                    "net.epochs=1", f"net.checkpoint={ckpt}"]
    args = sum((["--set", s] for s in sets), [])
    p = subprocess.run([f"{TOOLS}/dlcl-train", config] + args, capture_output=True, text=True)
    m = re.search(r"final: .*test_loss=([0-9.]+) train_seconds=([0-9.]+)", p.stdout)
    loss = float(m.group(1)) if m else float("inf")
    report(p.returncode == 0 and loss < entropy - 0.5, f"{name}_learns_english_in_400_steps",
           f"test loss {loss:.4f} nats/char against the text's byte entropy {entropy:.4f}" +
           ("" if m else "\n" + p.stdout[-1500:] + p.stderr[-1500:]) + (f" ({m.group(2)} s)" if m else ""))
    gen = [f"{TOOLS}/dlcl-generate", config, "--weights", ckpt, "--prompt", "The ", "--tokens", "200", "--seed", "5",
           "--temperature", "0.8"] + args
    a = subprocess.run(gen, capture_output=True)
    b = subprocess.run(gen, capture_output=True)
    text = a.stdout
    printable = sum(1 for c in text if 32 <= c < 127 or c in b"\n\t") / max(1, len(text))
    report(a.returncode == 0 and a.stdout == b.stdout and printable > 0.95 and len(text) >= 200,
           f"{name}_generates_text_deterministically",
           f"{printable:.0%} printable, same for the same seed: {a.stdout == b.stdout}\n" +
           text.decode("utf-8", "replace")[:240] + "\n" + a.stderr.decode("utf-8", "replace")[-300:])
print(f"1..{count}")
sys.exit(1 if failed else 0)
