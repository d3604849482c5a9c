#!/usr/bin/python3
"""The [data] formats through the tools, reported in TAP: a small net learns an image folder
(PNGs and JPEGs of mixed sizes, augmented, per-channel mean and std), dlcl-eval and dlcl-predict
print the folder's class names, a run resumed between epochs ends with the same weights as one
that ran through (augmentation included), and CIFAR-10 batches and synthetic data train.
Usage: data_tools.py TOOLS_DIR"""
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

TOOLS = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="dlcl-data-")
results = []


def report(ok, name, log=""):
    results.append(ok)
    print(f"{'ok' if ok else 'not ok'} {len(results)} - {name}", flush=True)
    if not ok:
        for line in log.splitlines()[-25:]:
            print("# " + line[:300])


def run(argv):
    p = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=300)
    return p.returncode, p.stdout + p.stderr


def png_rgb(path, w, h, pixel):
    """An 8-bit RGB PNG; pixel(x, y) -> (r, g, b)."""
    raw = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(w)) for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def weights_bytes(path):
    """The tensor data of a safetensors file, and its tensor names (the metadata may differ)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    return sorted(k for k in header if k != "__metadata__"), data[8 + n:]


# Three classes of colour: each image mostly one channel, with noise; sizes 8x8 and 12x10.
CLASSES = ["ant", "bee", "wasp"]
rng = random.Random(5)
for split, count in (("train", 12), ("val", 4)):
    for k, name in enumerate(CLASSES):
        os.makedirs(f"{tmp}/{split}/{name}")
        for i in range(count):
            w, h = (12, 10) if i % 3 == 2 else (8, 8)
            noise = [[rng.randrange(60) for _ in range(3 * w)] for _ in range(h)]
            png_rgb(f"{tmp}/{split}/{name}/{i}.png", w, h,
                    lambda x, y: tuple(min(255, (170 if c == k else 40) + noise[y][3 * x + c]) for c in range(3)))

FOLDER_CFG = f"""[net]
input = 3,8,8
classes = 3
batch = 8
epochs = 4
seed = 1
[optimizer]
type = sgd
learning_rate = 0.05
momentum = 0.9
[data]
format = folder
train = train
test = val
mean = 0.5, 0.45, 0.4
std = 0.25, 0.25, 0.3
flip = 1
random_crop = 1
workers = 2
[fc]
type = dense
units = 3
"""
cfg = f"{tmp}/folder.ini"
with open(cfg, "w") as f:
    f.write(FOLDER_CFG)

rc, out = run([f"{TOOLS}/dlcl-train", cfg, "--set", f"net.checkpoint={tmp}/straight.safetensors"])
m = re.search(r"^final: epochs=4 test_accuracy=([0-9.]+) test_loss=([0-9.]+)", out, re.M)
report(rc == 0 and "data: 36 training and 12 test images" in out and m and float(m.group(1)) >= 0.9,
       "folder_of_pngs_trains_to_90_percent", out)

rc, out2 = run([f"{TOOLS}/dlcl-eval", cfg, "--weights", f"{tmp}/straight.safetensors"])
acc = re.search(r"^accuracy=([0-9.]+) loss=([0-9.]+)$", out2, re.M)
names = all(re.search(rf"^\s+{k} {name}\s", out2, re.M) for k, name in enumerate(CLASSES))
report(rc == 0 and acc and m and acc.group(1) == m.group(1) and names and re.search(r"^\s+2 wasp\s+[0-9.]+\s+\d+/4$", out2, re.M),
       "eval_names_classes_and_matches_training", out2)

rc, out3 = run([f"{TOOLS}/dlcl-predict", cfg, "--weights", f"{tmp}/straight.safetensors", f"{tmp}/val/bee/0.png"])
report(rc == 0 and re.search(r"0\.png:\s+1 bee \([0-9.]+\)", out3), "predict_prints_class_names", out3)

# two epochs, then a resume to four: the same weights as four in one go (shuffle and augmentation
# are functions of seed, epoch and sample)
resumed = f"{tmp}/resumed.safetensors"
rc_a, out_a = run([f"{TOOLS}/dlcl-train", cfg, "--set", f"net.checkpoint={resumed}", "--set", "net.epochs=2"])
rc_b, out_b = run([f"{TOOLS}/dlcl-train", cfg, "--set", f"net.checkpoint={resumed}", "--resume", resumed])
same = rc_a == 0 and rc_b == 0 and weights_bytes(resumed) == weights_bytes(f"{tmp}/straight.safetensors")
report(same, "resume_between_epochs_reproduces_augmented_training", out_a + out_b)

# CIFAR-10: two training batches and a test batch, names beside them
os.makedirs(f"{tmp}/cifar")
for name, n in (("data_batch_1.bin", 20), ("data_batch_2.bin", 12), ("test_batch.bin", 8)):
    with open(f"{tmp}/cifar/{name}", "wb") as f:
        f.write(b"".join(bytes([i % 10]) + bytes(rng.randrange(256) for _ in range(3072)) for i in range(n)))
with open(f"{tmp}/cifar/batches.meta.txt", "w") as f:
    f.write("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n")
with open(f"{tmp}/cifar.ini", "w") as f:
    f.write("[net]\ninput = 3,32,32\nclasses = 10\nbatch = 8\nepochs = 1\n[optimizer]\ntype = sgd\nlearning_rate = 0.01\n"
            "[data]\nformat = cifar\ntrain = cifar/data_batch_1.bin, cifar/data_batch_2.bin\ntest = cifar/test_batch.bin\n"
            "mean = 0.4914, 0.4822, 0.4465\nstd = 0.247, 0.243, 0.261\nrandom_crop = 4\nflip = 1\n"
            f"[fc]\ntype = dense\nunits = 10\n")
rc, out = run([f"{TOOLS}/dlcl-train", f"{tmp}/cifar.ini", "--set", f"net.checkpoint={tmp}/cifar.safetensors"])
rc2, out2 = run([f"{TOOLS}/dlcl-eval", f"{tmp}/cifar.ini", "--weights", f"{tmp}/cifar.safetensors"])
report(rc == 0 and "data: 32 training and 8 test images" in out and rc2 == 0 and re.search(r"^\s+3 cat\s", out2, re.M),
       "cifar10_batches_train_and_eval_names_classes", out + out2)

with open(f"{tmp}/synthetic.ini", "w") as f:
    f.write("[net]\ninput = 3,16,16\nclasses = 5\nbatch = 16\nepochs = 1\n[optimizer]\ntype = sgd\nlearning_rate = 0.01\n"
            "[data]\nformat = synthetic\ntrain_samples = 64\ntest_samples = 16\n[fc]\ntype = dense\nunits = 5\n")
rc, out = run([f"{TOOLS}/dlcl-train", f"{tmp}/synthetic.ini", "--set", f"net.checkpoint={tmp}/syn.safetensors"])
report(rc == 0 and "data: 64 training and 16 test images" in out, "synthetic_data_trains", out)

print(f"1..{len(results)}")
shutil.rmtree(tmp, ignore_errors=True)
sys.exit(0 if all(results) else 1)
