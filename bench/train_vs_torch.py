#!/usr/bin/python3
"""Training epochs of the same networks in dlcl (OpenCL device, PoCL on a CPU-only
machine) and in PyTorch (on the CPU, or CUDA with --torch-device cuda), in one run; prints
both epoch times, their ratio and both test accuracies per network. Each framework runs in
its own process, one after the other, so their thread pools do not compete. The torch net is
the config's own graph (tools/ini_torch.py, over `dlcl-train --expand`), trained with the
same optimizer, schedule, warm-up, clipping, label smoothing and augmentation.

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


def torch_optimizer(model, opt_s):
    """torch.optim as dlcl's [optimizer] section describes it: the type, no_decay groups, and
    what the step needs for warm-up, clipping and label smoothing."""
    import torch

    kind = opt_s.get("type", "sgd")
    lr = float(opt_s.get("learning_rate", 0.01 if kind == "sgd" else 1e-3))
    wd = float(opt_s.get("weight_decay", 0.01 if kind == "adamw" else 0))
    nd = [v.strip() for v in opt_s.get("no_decay", "").split(",") if v.strip()]
    decay, exempt = [], []
    for name, p in model.named_parameters():
        dname = model.dlcl_name(name)
        layer = model.mods[dname.rsplit(".", 1)[0].replace(".", "__")]
        skip = ("bias" in nd and dname.endswith(".bias")) or ("batchnorm" in nd and layer.type == "batchnorm")
        (exempt if skip else decay).append(p)
    groups = [{"params": decay, "weight_decay": wd}, {"params": exempt, "weight_decay": 0.0}]
    if kind == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=float(opt_s.get("momentum", 0)),
                              nesterov=opt_s.get("nesterov", "0") in ("1", "true", "yes", "on"))
    else:
        betas = tuple(float(v) for v in opt_s.get("betas", "0.9, 0.999").split(","))
        cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
        opt = cls(groups, lr=lr, betas=betas, eps=float(opt_s.get("eps", 1e-8)))
    return opt, lr


def epoch_lr(opt_s, lr, epoch, epochs):
    import math

    sched = opt_s.get("schedule", "none")
    if sched == "step":
        return lr * float(opt_s.get("gamma", 0.1)) ** (epoch // int(opt_s.get("step_size", 1)))
    if sched == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    return lr


def augment(x, pad, flip, gen):
    """RandomCrop(size, padding=pad) and RandomHorizontalFlip on a batch, as dlcl's [data]
    random_crop and flip do on the training split."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    if pad:
        xp = F.pad(x, (pad, pad, pad, pad))
        oy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        ox = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        rows = (oy[:, None] + torch.arange(h)[None, :])[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w)[None, :])[:, None, None, :]
        x = xp[torch.arange(n)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows, cols]
    if flip:
        m = torch.rand(n, generator=gen) < 0.5
        x = torch.where(m[:, None, None, None], x.flip(3), x)
    return x


def torch_epoch(cfg_path, threads, samples, epochs, device="cpu", build=None):
    """The config's net (tools/ini_torch.py: any graph dlcl takes, from `dlcl-train --expand`)
    trained in torch on the same IDX data, optimizer, schedule, warm-up, clipping, label
    smoothing and augmentation; returns (seconds of training, test accuracy)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import ini_torch

    torch.set_num_threads(threads)
    sections = ini_torch.expanded_sections(os.path.join(build, "tools"), cfg_path)
    cfg = dict(sections)
    net_s, opt_s, data_s = cfg["net"], cfg.get("optimizer", {}), cfg["data"]
    shape = tuple(int(v) for v in net_s["input"].split(","))
    batch = int(net_s.get("batch", 64))
    torch.manual_seed(int(net_s.get("seed", 1)))

    def idx(path):
        with gzip.open(path) if path.endswith(".gz") else open(path, "rb") as f:
            data = f.read()
        nd = data[3]
        dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
        return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)

    if data_s.get("format", "idx") != "idx":
        sys.exit("bench: the torch side reads IDX data only")
    scale, mean, std = float(data_s.get("scale", 1 / 255)), float(data_s.get("mean", 0)), float(data_s.get("std", 1))

    def load(prefix, limit):
        x = idx(data_s[prefix + "_images"])[:limit].astype(np.float32)
        y = idx(data_s[prefix + "_labels"])[:limit].astype(np.int64)
        return torch.from_numpy(((x * scale - mean) / std).reshape((-1,) + shape)), torch.from_numpy(y)
    dev = torch.device(device)
    xtr, ytr = load("train", samples)
    xte, yte = (t.to(dev) for t in load("test", None))
    model = ini_torch.IniNet(sections, shape, net_s.get("output")).to(dev)
    opt, base_lr = torch_optimizer(model, opt_s)
    warm = int(opt_s.get("warmup_steps", 0))
    clip = float(opt_s.get("clip_grad_norm", 0))
    smooth = float(opt_s.get("label_smoothing", 0))
    pad, flip = int(data_s.get("random_crop", 0)), data_s.get("flip", "0") in ("1", "true", "yes", "on")
    gen = torch.Generator().manual_seed(int(net_s.get("seed", 1)))
    total_epochs = int(net_s.get("epochs", epochs))
    seconds, step = 0.0, 0
    for epoch in range(epochs):
        model.train()
        lr_e = epoch_lr(opt_s, base_lr, epoch, total_epochs)
        perm = torch.randperm(len(xtr))
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(0, len(xtr), batch):
            j = perm[i:i + batch]
            xb = augment(xtr[j], pad, flip, gen) if (pad or flip) else xtr[j]
            xb, yb = xb.to(dev), ytr[j].to(dev)
            for g in opt.param_groups:
                g["lr"] = lr_e * (min(1.0, (step + 1) / warm) if warm else 1.0)
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb, label_smoothing=smooth)
            loss.backward()
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            step += 1
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
        s, acc = torch_epoch(a.config[0], a.threads, a.train_samples or None, a.epochs, a.torch_device, a.build)
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
            "--train-samples", str(a.train_samples), "--epochs", str(a.epochs), "--torch-device", a.torch_device,
            "--build", a.build]
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
