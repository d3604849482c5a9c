#!/usr/bin/python3
"""One training step of a sequence model (GPT-2, the char GPT, the char LSTM) in dlcl and in
PyTorch, in one run, on the same machine; prints both step times, tokens/s and their ratio
(dlcl / torch: below 1 is dlcl faster).

  /usr/bin/python3 bench/seq_vs_torch.py [--config examples/gpt2.ini --set vars.context=256 ...]
      [--batch B] [--build build] [--threads 2] [--steps 3] [--rounds 1] [--torch-device cpu|cuda]

Without --config: GPT-2 124M at context 256 and batch 4 (examples/gpt2.ini), the char GPT and
the char LSTM of examples/ at their own batch. dlcl runs `dlcl-bench CONFIG --reps 0 --steps
N` (random tokens, the config's optimizer) and reads `step_ms=`. PyTorch runs the same graph,
built from the expanded config by tools/ini_torch.py (Hugging Face GPT-2's attention math,
nn.LSTM, ...), in train mode with the config's optimizer (adamw/adam/sgd with its learning
rate, betas and weight decay), torch.set_num_threads(threads), on the same kind of random
tokens; its figure is also the median of the steps after the first. Each framework runs in
its own process, the order alternating per round.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

TORCH_STEP = r"""
import statistics, sys, time, torch
sys.path.insert(0, sys.argv[1])
import ini_torch
tools, config, batch, steps, threads, device = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
sets = sys.argv[8:]
torch.set_num_threads(threads)
torch.manual_seed(1)
secs = ini_torch.expanded_sections(tools, config, sets)
kv = dict(secs)
T = int(kv["net"]["input"].split(",")[0])
V = int(kv["net"]["classes"])
dev = torch.device(device)
m = ini_torch.IniNet(secs, (T,), kv["net"].get("output")).to(dev).train()
o = kv.get("optimizer", {})
lr = float(o.get("learning_rate", 1e-3))
betas = tuple(float(b) for b in o.get("betas", "0.9, 0.999").split(","))
wd = float(o.get("weight_decay", 0))
kind = o.get("type", "sgd")
if kind == "adamw":
    opt = torch.optim.AdamW(m.parameters(), lr=lr, betas=betas, weight_decay=wd)
elif kind == "adam":
    opt = torch.optim.Adam(m.parameters(), lr=lr, betas=betas, weight_decay=wd)
else:
    opt = torch.optim.SGD(m.parameters(), lr=lr, momentum=float(o.get("momentum", 0.9)), weight_decay=wd)
clip = float(o.get("clip_grad_norm", 0))
x = torch.randint(0, V, (batch, T), device=dev)
y = torch.randint(0, V, (batch, T), device=dev)
ms = []
for i in range(steps + 1):
    if device == "cuda": torch.cuda.synchronize()
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(m(x).reshape(-1, V), y.reshape(-1))
    loss.backward()
    if clip > 0: torch.nn.utils.clip_grad_norm_(m.parameters(), clip)
    opt.step()
    loss.item()
    ms.append((time.perf_counter() - t0) * 1e3)
    print(f"torch step {i}: {ms[-1]:.1f} ms", file=sys.stderr)
print(f"step_ms={statistics.median(ms[1:]):.2f}")
"""

DEFAULTS = [
    ("examples/gpt2.ini", 4, ["vars.context=256"]),
    ("examples/char_gpt.ini", 0, []),
    ("examples/char_lstm.ini", 0, []),
]


def run(cmd):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-3000:] + p.stderr[-3000:])
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}")
    m = re.search(r"step_ms=([0-9.]+)", p.stdout)
    if m is None:
        raise SystemExit(f"no step_ms= line from: {' '.join(cmd)}")
    return float(m.group(1)), time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="one config (default: GPT-2 at context 256, the char GPT and the char LSTM)")
    ap.add_argument("--set", action="append", default=[], help="section.key=value for --config (repeatable)")
    ap.add_argument("--batch", type=int, default=0, help="0: the config's")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--torch-device", default="cpu")
    a = ap.parse_args()
    import torch
    from resnet_vs_torch import cpu_name
    tools = os.path.join(a.build, "tools")
    runs = [(a.config, a.batch, a.set)] if a.config else DEFAULTS
    print(f"CPU: {cpu_name()}; torch {torch.__version__} on {a.torch_device} with {a.threads} threads; "
          f"{a.steps} steps after a first, median")
    import ini_torch
    for config, batch, sets in runs:
        config = os.path.join(ROOT, config) if not os.path.isabs(config) else config
        kv = dict(ini_torch.expanded_sections(tools, config, sets))
        if batch == 0:
            batch = int(kv["net"]["batch"])
        sets = list(sets) + [f"net.batch={batch}"]
        T = int(kv["net"]["input"].split(",")[0])
        ratios = []
        for r in range(a.rounds):
            order = ["dlcl", "torch"] if r % 2 == 0 else ["torch", "dlcl"]
            got = {}
            for who in order:
                if who == "dlcl":
                    cmd = [os.path.join(tools, "dlcl-bench"), config, "--reps", "0", "--steps", str(a.steps)]
                    for s in sets:
                        cmd += ["--set", s]
                    got[who] = run(cmd)
                else:
                    got[who] = run([sys.executable, "-c", TORCH_STEP, os.path.join(ROOT, "tools"), tools, config,
                                    str(batch), str(a.steps), str(a.threads), a.torch_device] + sets)
            d, t = got["dlcl"][0], got["torch"][0]
            ratios.append(d / t)
            tok = batch * T
            print(f"{os.path.basename(config)} {' '.join(sets)} round {r + 1}: dlcl {d:.1f} ms "
                  f"({tok / d * 1e3:.0f} tokens/s), torch {t:.1f} ms ({tok / t * 1e3:.0f} tokens/s), "
                  f"ratio {d / t:.2f}", flush=True)
        print(f"{os.path.basename(config)}: median ratio dlcl/torch {statistics.median(ratios):.2f} over "
              f"{a.rounds} round(s)")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
