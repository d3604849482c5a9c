#!/usr/bin/python3
"""Writes an image folder of JPEGs (ImageNet-like photos in size and file size: smooth blobs
plus noise, quality 90) and a config that reads it, for `dlcl-bench loader`:
  /usr/bin/python3 bench/jpeg_folder.py DIR [--size 500x375] [--classes 10] [--per-class 40]
  build/tools/dlcl-bench loader DIR/folder.ini --split test --set data.workers=2
The config's input is 3,224,224; images of another size get resize=256 (torchvision's
eval transform: Resize(256) + CenterCrop(224)). Needs numpy and PIL (python3-torch has both)."""
import argparse
import os

import numpy as np
from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--size", default="500x375")
ap.add_argument("--classes", type=int, default=10)
ap.add_argument("--per-class", type=int, default=40)
a = ap.parse_args()
w, h = (int(v) for v in a.size.split("x"))
rng = np.random.default_rng(0)
for c in range(a.classes):
    d = os.path.join(a.dir, "images", f"class{c:03d}")
    os.makedirs(d, exist_ok=True)
    for i in range(a.per_class):
        low = rng.random((h // 16 + 2, w // 16 + 2, 3))
        img = np.kron(low, np.ones((16, 16, 1)))[:h, :w] * 200 + rng.normal(0, 20, (h, w, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(d, f"{i:05d}.jpg"), quality=90)
resize = "" if (w, h) == (224, 224) else "resize = 256\ncrop = 224\n"
with open(os.path.join(a.dir, "folder.ini"), "w") as f:
    f.write(f"[net]\ninput = 3,224,224\nclasses = {a.classes}\nbatch = 32\n[optimizer]\ntype = sgd\nlearning_rate = 0.01\n"
            f"[data]\nformat = folder\ntrain = images\ntest = images\n{resize}"
            "mean = 0.485, 0.456, 0.406\nstd = 0.229, 0.224, 0.225\n"
            f"[fc]\ntype = dense\nunits = {a.classes}\n")
print(f"wrote {a.classes * a.per_class} JPEGs of {w}x{h} and {os.path.join(a.dir, 'folder.ini')}")
