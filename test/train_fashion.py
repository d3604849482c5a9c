#!/usr/bin/python3
"""End to end on real Fashion-MNIST, reported in TAP: a short dlcl-train run must learn,
dlcl-eval agrees with it, --resume continues, dlcl-predict classifies a PNG, Ctrl-C saves.
Usage: train_fashion.py TOOLS_DIR SOURCE_DIR"""
import gzip
import os
import shutil
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

TOOLS, SRC = sys.argv[1], sys.argv[2]
DATA = "/usr/share/datasets/fashion-mnist"
MIN_ACCURACY = 0.78  # one epoch of the MLP on 12000 images reached 0.8175 here; chance is 0.10
tmp = tempfile.mkdtemp(prefix="dlcl-e2e-")
ckpt = f"{tmp}/mlp.safetensors"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tap  # noqa: E402
from tap import report  # noqa: E402


def run(args, **kw):
    p = subprocess.run(args, capture_output=True, text=True, **kw)
    return p.returncode, p.stdout + p.stderr


def final_line(out):
    m = re.search(r"^final: epochs=(\d+) test_accuracy=([0-9.]+) test_loss=([0-9.]+) train_seconds=([0-9.]+)$", out, re.M)
    return m and (int(m.group(1)), float(m.group(2)), float(m.group(3)), float(m.group(4)))


def write_png(path, pixels, w, h):
    raw = b"".join(b"\x00" + bytes(pixels[y * w:(y + 1) * w]) for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


if not os.path.exists(f"{DATA}/train-images-idx3-ubyte.gz"):
    print("1..0 # SKIP Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    sys.exit(0)

print("1..6", flush=True)
cfg = f"{SRC}/examples/fashion_mlp.ini"
common = ["--set", "data.train_samples=12000", "--set", "data.test_samples=2000", "--set", f"net.checkpoint={ckpt}"]
rc, out = run([f"{TOOLS}/dlcl-train", cfg, "--set", "net.epochs=1"] + common)
fin = final_line(out)
report(rc == 0 and fin and fin[1] >= MIN_ACCURACY,
       f"mlp_learns_fashion_mnist_accuracy_at_least_{MIN_ACCURACY}", out)
print(f"# {fin}")

rc2, out2 = run([f"{TOOLS}/dlcl-eval", cfg, "--weights", ckpt, "--set", "data.test_samples=2000"])
m = re.search(r"^accuracy=([0-9.]+) loss=([0-9.]+)$", out2, re.M)
report(rc2 == 0 and fin and m and abs(float(m.group(1)) - fin[1]) < 1e-9 and abs(float(m.group(2)) - fin[2]) < 2e-4,
       "dlcl_eval_reproduces_final_accuracy_and_loss", out2)

rc3, out3 = run([f"{TOOLS}/dlcl-train", cfg, "--set", "net.epochs=2", "--resume", ckpt] + common)
fin3 = final_line(out3)
csv = open(f"{tmp}/mlp.csv").read().splitlines() if os.path.exists(f"{tmp}/mlp.csv") else []
report(rc3 == 0 and "1 epochs and 0 batches done" in out3 and fin3 and fin3[0] == 2 and len(csv) == 3 and csv[2].startswith("2,"),
       "resume_continues_with_next_epoch_and_appends_metrics", out3 + "\n" + "\n".join(csv))

with gzip.open(f"{DATA}/t10k-images-idx3-ubyte.gz") as f:
    f.read(16)
    img = f.read(28 * 28)
write_png(f"{tmp}/first.png", img, 28, 28)
rc4, out4 = run([f"{TOOLS}/dlcl-eval", cfg, "--weights", ckpt, "--set", "data.test_samples=1", "--set", "net.batch=1",
                 "--logits", f"{tmp}/one.bin"])
logits = struct.unpack("<10f", open(f"{tmp}/one.bin", "rb").read()) if rc4 == 0 else None
rc5, out5 = run([f"{TOOLS}/dlcl-predict", cfg, "--weights", ckpt, f"{tmp}/first.png"])
top = re.search(r"first\.png:\s+(\d+) \(([0-9.]+)\)", out5)
report(rc5 == 0 and logits and top and int(top.group(1)) == max(range(10), key=lambda i: logits[i]),
       "predict_on_png_matches_eval_of_same_image", out4 + out5)

rc6, out6 = run([f"{TOOLS}/dlcl-predict", cfg, "--weights", ckpt, f"{tmp}/missing.png"])
report(rc6 != 0 and "missing.png" in out6, "predict_reports_missing_image", out6)

p = subprocess.Popen([f"{TOOLS}/dlcl-train", cfg, "--set", "net.epochs=50", "--set",
                      f"net.checkpoint={tmp}/int.safetensors", "--set", "data.test_samples=100"],
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
deadline = time.time() + 120
buf = ""
while time.time() < deadline:  # wait for the first progress line, then interrupt
    line = p.stdout.readline()
    buf += line
    if line.startswith("epoch 1/50") or not line:
        break
p.send_signal(signal.SIGINT)
try:
    rest, _ = p.communicate(timeout=120)
except subprocess.TimeoutExpired:
    p.kill()
    rest, _ = p.communicate()
buf += rest
report(p.returncode == 130 and "interrupted" in buf and os.path.exists(f"{tmp}/int.safetensors"),
       "sigint_saves_checkpoint_and_stops", buf)
shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if tap.failed else 0)
