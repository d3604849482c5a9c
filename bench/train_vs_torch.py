#!/usr/bin/python3
"""Training epochs of the same networks in dlcl (OpenCL device, PoCL on a CPU-only
machine) and in PyTorch (on the CPU, or CUDA with --torch-device cuda), in one run; prints
both epoch times, their ratio and both test accuracies per network. Each framework runs in
its own process, one after the other, so their thread pools do not compete.

  /usr/bin/python3 bench/train_vs_torch.py [--config NET.ini]... (default: LeNet and VGG)
      [--build build] [--threads 2] [--train-samples N] [--epochs 1] [--rounds 1]
      [--torch-device cpu|cuda]

With cuda the whole data set lives on the GPU and the epoch ends with a synchronize, so
the torch figure is its best case; dlcl's includes its host loader and uploads.
"""
import argparse
import configparser
import gzip
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def torch_epoch(cfg_path, threads, samples, epochs, device="cpu"):
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    cfg = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    cfg.read(cfg_path)
    net_s, opt_s, data_s = cfg["net"], cfg["optimizer"], cfg["data"]
    c, h, w = (int(v) for v in net_s["input"].split(","))
    batch = int(net_s.get("batch", 64))
    torch.manual_seed(int(net_s.get("seed", 1)))

    def idx(path):
        with gzip.open(path) if path.endswith(".gz") else open(path, "rb") as f:
            data = f.read()
        nd = data[3]
        dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
        return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)

    scale, mean, std = float(data_s.get("scale", 1 / 255)), float(data_s.get("mean", 0)), float(data_s.get("std", 1))
    def load(prefix, limit):
        x = idx(data_s[prefix + "_images"])[:limit].astype(np.float32)
        y = idx(data_s[prefix + "_labels"])[:limit].astype(np.int64)
        return torch.from_numpy(((x * scale - mean) / std).reshape(-1, c, h, w)), torch.from_numpy(y)
    dev = torch.device(device)
    xtr, ytr = (t.to(dev) for t in load("train", samples))
    xte, yte = (t.to(dev) for t in load("test", None))

    layers, shape = [], (c, h, w)
    for name in cfg.sections():
        if name in ("net", "optimizer", "data"):
            continue
        s = cfg[name]
        t = s["type"]
        if t == "conv":
            k, size = int(s["filters"]), int(s["size"])
            stride, pad = int(s.get("stride", 1)), int(s.get("pad", 0))
            groups, dil = int(s.get("groups", 1)), int(s.get("dilation", 1))
            layers.append(nn.Conv2d(shape[0], k, size, stride, pad, dilation=dil, groups=groups))
            span = dil * (size - 1) + 1
            shape = (k, (shape[1] + 2 * pad - span) // stride + 1, (shape[2] + 2 * pad - span) // stride + 1)
        elif t in ("maxpool", "avgpool"):
            size = int(s.get("size", 2)); stride = int(s.get("stride", size))
            layers.append((nn.MaxPool2d if t == "maxpool" else nn.AvgPool2d)(size, stride))
            shape = (shape[0], (shape[1] - size) // stride + 1, (shape[2] - size) // stride + 1)
        elif t == "dense":
            if len(layers) == 0 or not isinstance(layers[-1], nn.Flatten):
                layers.append(nn.Flatten())
            units = int(s["units"])
            layers.append(nn.Linear(shape[0] * shape[1] * shape[2], units))
            shape = (units, 1, 1)
        elif t == "dropout":
            layers.append(nn.Dropout(float(s.get("rate", 0.5))))
        else:
            sys.exit(f"bench: layer type {t} not mapped to torch")
        act = s.get("activation", "linear")
        if act != "linear":
            layers.append({"relu": nn.ReLU(), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "gelu": nn.GELU()}[act])
    model = nn.Sequential(*layers).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=float(opt_s.get("learning_rate", 0.01)),
                          momentum=float(opt_s.get("momentum", 0)), nesterov=opt_s.get("nesterov", "0") in ("1", "true"),
                          weight_decay=float(opt_s.get("weight_decay", 0)))
    seconds = 0.0
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), device=dev)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(0, len(xtr), batch):
            j = perm[i:i + batch]
            opt.zero_grad()
            loss = F.cross_entropy(model(xtr[j]), ytr[j])
            loss.backward()
            opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t0
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(xte), 1000):
            correct += (model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
    return seconds, correct / len(xte)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", action="append", help="repeatable; default: fashion_lenet.ini and fashion_vgg.ini")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-samples", type=int, default=0, help="0: all")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1, help="pairs of runs per net, alternating which goes first")
    ap.add_argument("--torch-device", default="cpu", help="cpu, or cuda for PyTorch on the same GPU")
    ap.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_only:
        s, acc = torch_epoch(a.config[0], a.threads, a.train_samples or None, a.epochs, a.torch_device)
        print(f"torch_seconds={s:.2f} torch_accuracy={acc:.4f}")
        return
    configs = a.config or [os.path.join(ROOT, "examples", n) for n in ("fashion_lenet.ini", "fashion_vgg.ini")]
    rows = [run_one(a, c) for c in configs]
    print(f"\ntorch device: {a.torch_device}; torch threads: {a.threads}; epochs: {a.epochs}; train samples: {a.train_samples or 'all'}; "
          f"device: {rows[0][1]}")
    print(f"{'net':22} {'dlcl s':>9} {'torch s':>9} {'ratio':>7} {'dlcl acc':>9} {'torch acc':>10}")
    for name, _, pairs, d_acc, t_acc in rows:
        ratios = sorted(d / t for d, t in pairs)
        d_s, t_s = sorted(p[0] for p in pairs)[len(pairs) // 2], sorted(p[1] for p in pairs)[len(pairs) // 2]
        line = f"{name:22} {d_s:9.1f} {t_s:9.1f} {ratios[len(ratios) // 2]:7.2f} {d_acc:9.4f} {t_acc:10.4f}"
        if len(pairs) > 1:
            line += "   rounds: " + " ".join(f"{d:.1f}/{t:.1f}={d / t:.2f}" for d, t in pairs)
        print(line)
    if a.rounds > 1:
        print("(seconds and ratio: medians over the rounds)")


def run_dlcl(a, config):
    ckpt = os.path.join(os.environ.get("TMPDIR", "/tmp"), "dlcl-bench.safetensors")
    cmd = [os.path.join(a.build, "tools/dlcl-train"), config, "--set", f"net.epochs={a.epochs}",
           "--set", f"net.checkpoint={ckpt}"]
    if a.train_samples:
        cmd += ["--set", f"data.train_samples={a.train_samples}"]
    print("dlcl:  " + " ".join(cmd), flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True)
    m = re.search(r"^final: .*test_accuracy=([0-9.]+) .*train_seconds=([0-9.]+)", out.stdout, re.M)
    if out.returncode != 0 or not m:
        sys.exit("dlcl-train failed:\n" + out.stdout[-3000:] + out.stderr[-3000:])
    dev = re.search(r"^device: (.*)$", out.stdout, re.M)
    return float(m.group(2)), float(m.group(1)), dev.group(1) if dev else "?"


def run_torch(a, config):
    # torch in its own process with the same thread count
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    tcmd = [sys.executable, os.path.abspath(__file__), "--torch-only", "--config", config, "--threads", str(a.threads),
            "--train-samples", str(a.train_samples), "--epochs", str(a.epochs), "--torch-device", a.torch_device]
    print("torch: " + " ".join(tcmd), flush=True)
    out = subprocess.run(tcmd, capture_output=True, text=True, env=env)
    m = re.search(r"torch_seconds=([0-9.]+) torch_accuracy=([0-9.]+)", out.stdout)
    if out.returncode != 0 or not m:
        sys.exit("torch run failed:\n" + out.stdout[-3000:] + out.stderr[-3000:])
    return float(m.group(1)), float(m.group(2))


def run_one(a, config):
    """a.rounds epochs of each framework, alternating which goes first: a shared VM's speed
    drifts over minutes, so one pair of runs can favour either side."""
    pairs, dev, d_acc, t_acc = [], "?", 0.0, 0.0
    for r in range(a.rounds):
        if r % 2 == 0:
            d_s, d_acc, dev = run_dlcl(a, config)
            t_s, t_acc = run_torch(a, config)
        else:
            t_s, t_acc = run_torch(a, config)
            d_s, d_acc, dev = run_dlcl(a, config)
        pairs.append((d_s, t_s))
    return os.path.basename(config), dev, pairs, d_acc, t_acc


if __name__ == "__main__":
    main()
