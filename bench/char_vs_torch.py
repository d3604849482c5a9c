#!/usr/bin/python3
"""The char examples trained for a fixed number of steps by dlcl and by PyTorch, in one run,
from the same initial weights, on the same windows of the same text: both test losses (nats
per character), both training times and their ratio, and a sample dlcl generates.

  /usr/bin/python3 bench/char_vs_torch.py [--config examples/char_gpt.ini] [--steps 300]
      [--build build] [--threads 2] [--set section.key=value]...

Without --config: examples/char_gpt.ini and examples/char_lstm.ini. The data are the
configs' (data/fortunes, made by tools/setup.sh from Debian's fortunes). torch gets the net
from tools/ini_torch.py, its initial weights are saved and dlcl-train starts from them
(--init); dlcl-train runs one epoch of `steps` batches (data.train_samples = steps x batch),
so the learning rate is the config's warm-up and then constant (an epoch schedule does not
move within the one epoch), and torch does the same, on the windows dlcl draws (their
positions recomputed here from the seed, as lib/data/tokens.c draws them). Dropout masks
differ (each framework's own generator). The test loss is the mean cross-entropy over every
position of the test file's windows at stride T (dlcl-train's last line; torch the same).
"""
import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
M64 = (1 << 64) - 1


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def window_start(seed, epoch, window, n, T):
    s = mix64(seed ^ mix64((((epoch & 0xFFFFFFFF) << 32) | window) + 0x746F6B))
    return mix64(s) % (n - T)


def torch_run(net, kv, train, test, T, steps, batch, seed):
    import numpy as np
    import torch
    import torch.nn.functional as F
    o = kv.get("optimizer", {})
    kind = o.get("type", "sgd")
    lr, wd = float(o.get("learning_rate", 0.01)), float(o.get("weight_decay", 0))
    warm, clip = int(o.get("warmup_steps", 0)), float(o.get("clip_grad_norm", 0))
    betas = tuple(float(b) for b in o.get("betas", "0.9, 0.999").split(","))
    nd = [x.strip() for x in o.get("no_decay", "").split(",") if x.strip()]
    decay, no_decay = [], []
    for name, prm in net.named_parameters():
        d = net.dlcl_name(name)
        layer = d.rsplit(".", 1)[0]
        while layer.replace(".", "__") not in net.mods:
            layer = layer.rsplit(".", 1)[0]
        last = d.rsplit(".", 1)[1]
        exempt = ("bias" in nd and (last == "bias" or last.startswith("bias_"))) or \
                 (net.mods[layer.replace(".", "__")].type in nd)
        (no_decay if exempt else decay).append(prm)
    groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
    if kind == "adamw":
        opt = torch.optim.AdamW(groups, lr=lr, betas=betas)
    elif kind == "adam":
        opt = torch.optim.Adam(groups, lr=lr, betas=betas)
    else:
        opt = torch.optim.SGD(groups, lr=lr, momentum=float(o.get("momentum", 0)))
    n = len(train)
    net.train()
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * (min(1.0, (step + 1) / warm) if warm else 1.0)
        starts = [window_start(seed, 0, step * batch + b, n, T) for b in range(batch)]
        xb = torch.from_numpy(np.stack([train[s:s + T] for s in starts]).astype(np.int64))
        yb = torch.from_numpy(np.stack([train[s + 1:s + T + 1] for s in starts]).astype(np.int64))
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(xb).reshape(-1, 256), yb.reshape(-1))
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        opt.step()
        if step % 50 == 0:
            print(f"  torch step {step}: loss {loss.item():.4f}", file=sys.stderr, flush=True)
    secs = time.time() - t0
    net.eval()
    w = (len(test) - 1) // T
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, w, 64):
            idx = range(i, min(w, i + 64))
            x = torch.from_numpy(np.stack([test[j * T:j * T + T] for j in idx]).astype(np.int64))
            y = torch.from_numpy(np.stack([test[j * T + 1:j * T + T + 1] for j in idx]).astype(np.int64))
            total += F.cross_entropy(net(x).reshape(-1, 256), y.reshape(-1), reduction="sum").item()
            count += y.numel()
    return total / count, secs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", action="append")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()
    import numpy as np
    import torch
    import ini_torch
    from pth2safetensors import save_safetensors
    from resnet_vs_torch import cpu_name
    torch.set_num_threads(a.threads)
    tools = os.path.join(a.build, "tools")
    tmp = tempfile.mkdtemp(prefix="dlcl-char-")
    print(f"CPU: {cpu_name()}; torch {torch.__version__} with {a.threads} threads; {a.steps} steps each")
    for config in a.config or ["examples/char_gpt.ini", "examples/char_lstm.ini"]:
        config = config if os.path.isabs(config) else os.path.join(ROOT, config)
        name = os.path.splitext(os.path.basename(config))[0]
        secs = ini_torch.expanded_sections(tools, config, a.set)
        kv = dict(secs)
        T, batch, seed = int(kv["net"]["input"]), int(kv["net"]["batch"]), int(kv["net"].get("seed", 1))
        d = kv["data"]
        base = os.path.dirname(config)
        train = np.frombuffer(open(os.path.join(base, d["train"]), "rb").read(), dtype=np.uint8)
        test = np.frombuffer(open(os.path.join(base, d["test"]), "rb").read(), dtype=np.uint8)
        torch.manual_seed(seed)
        net = ini_torch.IniNet(secs, (T,), kv["net"].get("output"))
        init = os.path.join(tmp, f"{name}-init.safetensors")
        save_safetensors(net.dlcl_state(), init)
        ckpt = os.path.join(tmp, f"{name}.safetensors")
        cmd = [os.path.join(tools, "dlcl-train"), config, "--init", init]
        for s in a.set + ["net.epochs=1", f"data.train_samples={a.steps * batch}", f"net.checkpoint={ckpt}"]:
            cmd += ["--set", s]
        t0 = time.time()
        p = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.time() - t0
        m = re.search(r"final: .*test_loss=([0-9.]+) train_seconds=([0-9.]+)", p.stdout)
        if p.returncode != 0 or m is None:
            sys.stderr.write(p.stdout[-3000:] + p.stderr[-3000:])
            raise SystemExit(f"dlcl-train failed: {' '.join(cmd)}")
        dl_loss, dl_secs = float(m.group(1)), float(m.group(2))
        t_loss, t_secs = torch_run(net, kv, train, test, T, a.steps, batch, seed)
        print(f"{name}: {a.steps} steps of {batch} x {T} characters: test loss dlcl {dl_loss:.4f}, torch {t_loss:.4f} "
              f"nats/char (difference {dl_loss - t_loss:+.4f}); training dlcl {dl_secs:.1f} s, torch {t_secs:.1f} s, "
              f"ratio {dl_secs / t_secs:.2f} (dlcl-train wall {wall:.1f} s)", flush=True)
        g = subprocess.run([os.path.join(tools, "dlcl-generate"), config, "--weights", ckpt, "--prompt", "The ",
                            "--tokens", "300", "--seed", "1", "--temperature", "0.8"] +
                           sum((["--set", s] for s in a.set), []), capture_output=True, text=True, errors="replace")
        print(f"{name} sample (temperature 0.8):\n{g.stdout.rstrip()}\n{g.stderr.strip()}", flush=True)


if __name__ == "__main__":
    main()
