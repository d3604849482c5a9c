#!/usr/bin/python3
"""A stacked LSTM or GRU, forward + backward, in dlcl (tools/dlcl-bench on a net whose loss reads
the layer, the OpenCL device) and in PyTorch (torch.nn.LSTM / nn.GRU on the CPU), alternating
in one run; the best round of each and their ratio.

  /usr/bin/python3 bench/rnn_vs_torch.py [--build build] [--kind lstm] [--batch 32] [--seq 128]
      [--input 64] [--hidden 256] [--layers 2] [--threads 2] [--rounds 3] [--reps 3]

Defaults: a char-LSTM (batch 32, 128 positions, a 64-wide embedding, hidden 256, 2 layers).
dlcl's time is the layer's forward plus backward from dlcl-bench's per-layer profile (mean of
--reps steps, a wait after each layer); torch's is y, _ = m(x); y.backward(dy), mean of --reps.
Neither computes the input's gradient: the layer reads the net's input in dlcl, and x does not
require grad in torch.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dlcl_ms(a, cfg):
    p = subprocess.run([os.path.join(a.build, "tools", "dlcl-bench"), cfg, "--reps", str(a.reps), "--steps", "0"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("dlcl-bench failed:\n" + p.stdout + p.stderr)
    for line in p.stdout.splitlines():
        m = re.match(r"rnn\s+\S+\s+.*?\s([\d.]+)\s+[\d.]+\s+([\d.]+)\s+[\d.]+\s*$", line)
        if m:
            return float(m.group(1)), float(m.group(2))
    sys.exit("no rnn row in dlcl-bench's output:\n" + p.stdout)


def torch_ms(a, m, x, dy):
    y, _ = m(x)  # warm-up
    y.backward(dy)
    fwd = tot = 0.0
    for _ in range(a.reps):
        for p in m.parameters():
            p.grad = None
        t0 = time.perf_counter()
        y, _ = m(x)
        t1 = time.perf_counter()
        y.backward(dy)
        t2 = time.perf_counter()
        fwd += t1 - t0
        tot += t2 - t0
    return fwd / a.reps * 1e3, (tot - fwd) / a.reps * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--kind", choices=("lstm", "gru"), default="lstm")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--input", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    cls = torch.nn.LSTM if a.kind == "lstm" else torch.nn.GRU
    m = cls(a.input, a.hidden, a.layers, batch_first=True)
    x = torch.rand(a.batch, a.seq, a.input) * 2 - 1
    dy = torch.rand(a.batch, a.seq, a.hidden) * 2 - 1
    tmp = tempfile.mkdtemp(prefix="dlcl-rnn-bench-")
    cfg = os.path.join(tmp, "rnn.ini")
    with open(cfg, "w") as f:
        f.write(f"[net]\ninput = {a.seq},{a.input}\nclasses = {a.seq * a.hidden}\nbatch = {a.batch}\n"
                f"[optimizer]\ntype = sgd\nlearning_rate = 0.01\n"
                f"[rnn]\ntype = {a.kind}\nhidden = {a.hidden}\nlayers = {a.layers}\n")
    best_d = best_t = None
    for r in range(a.rounds):
        d = dlcl_ms(a, cfg)
        t = torch_ms(a, m, x, dy)
        print(f"round {r}: dlcl {d[0]:.1f} + {d[1]:.1f} = {sum(d):.1f} ms   torch {t[0]:.1f} + {t[1]:.1f} = "
              f"{sum(t):.1f} ms", flush=True)
        best_d = d if best_d is None or sum(d) < sum(best_d) else best_d
        best_t = t if best_t is None or sum(t) < sum(best_t) else best_t
    print(f"{a.kind} batch {a.batch} x {a.seq} x {a.input}, hidden {a.hidden}, {a.layers} layers, forward + backward, "
          f"best of {a.rounds} rounds:")
    print(f"  dlcl  {sum(best_d):8.1f} ms  (forward {best_d[0]:.1f}, backward {best_d[1]:.1f})")
    print(f"  torch {sum(best_t):8.1f} ms  (forward {best_t[0]:.1f}, backward {best_t[1]:.1f}; "
          f"{a.threads} threads, torch {torch.__version__})")
    print(f"  dlcl / torch = {sum(best_d) / sum(best_t):.2f}")


if __name__ == "__main__":
    main()
