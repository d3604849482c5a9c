#!/usr/bin/python3
"""PyTorch interop, reported in TAP: dlcl-written weights give the same logits in torch
(load_state_dict, strict), and torch-written weights give the same logits and loss in
dlcl-eval. Usage: torch_interop.py TOOLS_DIR"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # not a failure of dlcl: report a skip
    print("1..0 # SKIP PyTorch not importable: %s" % e)
    sys.exit(0)

TOOLS = sys.argv[1]
torch.manual_seed(0)
rng = np.random.default_rng(1)
tmp = tempfile.mkdtemp(prefix="dlcl-interop-")
failed = 0
count = 0


def report(ok, name, detail=""):
    global failed, count
    count += 1
    if not ok:
        failed += 1
        for line in detail.splitlines():
            print("# " + line)
    print("%s %d - %s" % ("ok" if ok else "not ok", count, name))


def write_idx(path, arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    magic = 0x800 | arr.ndim
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic))
        for d in arr.shape:
            f.write(struct.pack(">I", d))
        f.write(arr.tobytes())


def st_read(path):
    """safetensors reader (format: u64 header length, JSON header, data blob)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    blob = data[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", e["dtype"]
        b, end = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(blob[b:end]), dtype=torch.float32).reshape(e["shape"]).clone()
    return out


def st_write(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


class Net(nn.Module):
    """The torch twin of CONFIG below: same names, same layouts."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, groups=2)
        self.fc1 = nn.Linear(6 * 2 * 2, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2, 2)
        x = F.avg_pool2d(torch.tanh(self.conv2(x)), 2, 2)
        x = F.gelu(self.fc1(torch.flatten(x, 1)))
        x = F.dropout(x, 0.3, self.training)
        return self.fc2(x)


SCALE, MEAN, STD = 1 / 255, 0.5, 0.25
CONFIG = f"""
[net]
input = 1,12,12
classes = 10
batch = 16
epochs = 1
seed = 3
checkpoint = {tmp}/dlcl.safetensors
[optimizer]
learning_rate = 0.05
momentum = 0.9
weight_decay = 1e-4
[data]
train_images = train-images
train_labels = train-labels
test_images = test-images
test_labels = test-labels
scale = {SCALE!r}
mean = {MEAN}
std = {STD}
[conv1]
type = conv
filters = 4
size = 3
pad = 1
activation = relu
[pool1]
type = maxpool
size = 2
stride = 2
[conv2]
type = conv
filters = 6
size = 3
groups = 2
activation = tanh
[pool2]
type = avgpool
size = 2
stride = 2
[fc1]
type = dense
units = 16
activation = gelu
[drop]
type = dropout
rate = 0.3
[fc2]
type = dense
units = 10
"""


def run(args):
    p = subprocess.run(args, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def main():
    train_x = rng.integers(0, 256, (96, 12, 12))
    train_y = rng.integers(0, 10, 96)
    test_x = rng.integers(0, 256, (37, 12, 12))
    test_y = rng.integers(0, 10, 37)
    write_idx(f"{tmp}/train-images", train_x)
    write_idx(f"{tmp}/train-labels", train_y)
    write_idx(f"{tmp}/test-images", test_x)
    write_idx(f"{tmp}/test-labels", test_y)
    cfg = f"{tmp}/net.ini"
    with open(cfg, "w") as f:
        f.write(CONFIG)
    xt = torch.tensor(((test_x * SCALE - MEAN) / STD)[:, None], dtype=torch.float32)
    yt = torch.tensor(test_y, dtype=torch.long)

    print("1..4")
    rc, out = run([f"{TOOLS}/dlcl-train", cfg])
    report(rc == 0, "dlcl_train_writes_checkpoint", out)
    if rc != 0:
        return
    net = Net().eval()
    try:
        net.load_state_dict(st_read(f"{tmp}/dlcl.safetensors"), strict=True)
        report(True, "dlcl_checkpoint_loads_into_torch_strict")
    except Exception as e:  # noqa: BLE001 - report whatever torch says
        report(False, "dlcl_checkpoint_loads_into_torch_strict", str(e))
        return
    rc, out = run([f"{TOOLS}/dlcl-eval", cfg, "--weights", f"{tmp}/dlcl.safetensors", "--logits", f"{tmp}/l1"])
    with torch.no_grad():
        want = net(xt)
    got = torch.from_numpy(np.fromfile(f"{tmp}/l1", dtype=np.float32)).reshape(want.shape) if rc == 0 else None
    diff = (got - want).abs().max().item() if got is not None else float("inf")
    report(diff <= 1e-4, "dlcl_weights_give_torch_logits_within_1e-4", f"max |diff| {diff}\n{out}")

    torch.manual_seed(5)
    tnet = Net().eval()
    st_write(f"{tmp}/torch.safetensors", tnet.state_dict())
    rc, out = run([f"{TOOLS}/dlcl-eval", cfg, "--weights", f"{tmp}/torch.safetensors", "--logits", f"{tmp}/l2"])
    with torch.no_grad():
        want = tnet(xt)
        want_loss = F.cross_entropy(want, yt).item()
    ok, detail = False, out
    if rc == 0:
        got = torch.from_numpy(np.fromfile(f"{tmp}/l2", dtype=np.float32)).reshape(want.shape)
        diff = (got - want).abs().max().item()
        loss = float(out.split("loss=")[-1].split()[0])
        ok = diff <= 1e-4 and abs(loss - want_loss) <= 1e-4 + 5e-5
        detail = f"max |logit diff| {diff}, dlcl-eval loss {loss}, torch loss {want_loss:.6f}\n{out}"
    report(ok, "torch_weights_give_same_dlcl_eval_loss", detail)


main()
shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if failed else 0)
