#!/usr/bin/python3
"""One training step of torchvision's ResNet-18 / ResNet-50 in dlcl and in PyTorch, in one
run, on the same machine; prints both step times and their ratio (dlcl / torch: below 1 is
dlcl faster).

  /usr/bin/python3 bench/resnet_vs_torch.py [--model resnet18 --batch 32] [--model resnet50 --batch 16]
      [--build build] [--threads 2] [--steps 3] [--rounds 1] [--torch-device cpu|cuda] [--size 224]

dlcl runs `dlcl-bench examples/<model>.ini --reps 0 --steps N --set net.batch=B` (random
inputs, the config's optimizer: SGD with momentum) and reads its last line,
`step_ms=MEDIAN ...`. PyTorch runs torchvision.models.<model>() in train mode with
torch.optim.SGD(momentum=0.9), torch.set_num_threads(threads) on the CPU, the same batch of
random inputs each step; its figure is also the median of the steps after the first. Each
framework runs in its own process, one after the other (the order alternates per round),
so their thread pools do not compete. Defaults: ResNet-18 at batch 32 and ResNet-50 at
batch 16, 224x224, 3 steps each, 2 threads.
"""
import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TORCH_STEP = r"""
import statistics, sys, time, torch, torchvision
model, batch, steps, threads, device, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
torch.set_num_threads(threads)
torch.manual_seed(1)
dev = torch.device(device)
m = getattr(torchvision.models, model)().to(dev).train()
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
x = torch.randn(batch, 3, size, size, device=dev)
y = torch.randint(0, 1000, (batch,), device=dev)
ms = []
for i in range(steps + 1):
    if device == "cuda": torch.cuda.synchronize()
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(m(x), y)
    loss.backward()
    opt.step()
    loss.item()
    ms.append((time.perf_counter() - t0) * 1e3)
    print(f"torch step {i}: {ms[-1]:.1f} ms", file=sys.stderr)
print(f"step_ms={statistics.median(ms[1:]):.2f}")
"""


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run(cmd, env=None):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-3000:] + p.stderr[-3000:])
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}")
    m = re.search(r"step_ms=([0-9.]+)", p.stdout)
    if m is None:
        raise SystemExit(f"no step_ms= line from: {' '.join(cmd)}")
    return float(m.group(1)), time.time() - t0


def dlcl_step(build, model, batch, steps, size):
    cfg = os.path.join(ROOT, "examples", f"{model}.ini")
    cmd = [os.path.join(build, "tools", "dlcl-bench"), cfg, "--reps", "0", "--steps", str(steps), "--set",
           f"net.batch={batch}"]
    if size != 224:
        cmd += ["--set", f"vars.size={size}"]
    return run(cmd)


def torch_step(model, batch, steps, threads, device, size):
    return run([sys.executable, "-c", TORCH_STEP, model, str(batch), str(steps), str(threads), device, str(size)])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="resnet18 or resnet50 (repeatable)")
    ap.add_argument("--batch", type=int, action="append", help="batch per --model, in order")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--torch-device", default="cpu")
    a = ap.parse_args()
    models = a.model or ["resnet18", "resnet50"]
    batches = a.batch or [32 if m == "resnet18" else 16 for m in models]
    if len(batches) != len(models):
        raise SystemExit("give one --batch per --model")
    import torch
    print(f"CPU: {cpu_name()}; torch {torch.__version__} on {a.torch_device} with {a.threads} threads; "
          f"{a.steps} steps after a first, median")
    for model, batch in zip(models, batches):
        ratios = []
        for r in range(a.rounds):
            order = ["dlcl", "torch"] if r % 2 == 0 else ["torch", "dlcl"]
            got = {}
            for who in order:
                if who == "dlcl":
                    got[who] = dlcl_step(a.build, model, batch, a.steps, a.size)
                else:
                    got[who] = torch_step(model, batch, a.steps, a.threads, a.torch_device, a.size)
            d, t = got["dlcl"][0], got["torch"][0]
            ratios.append(d / t)
            print(f"{model} batch {batch} round {r + 1}: dlcl {d:.0f} ms ({batch / d * 1e3:.1f} images/s), "
                  f"torch {t:.0f} ms ({batch / t * 1e3:.1f} images/s), ratio {d / t:.2f}", flush=True)
        print(f"{model} batch {batch}: median ratio dlcl/torch {statistics.median(ratios):.2f} over {a.rounds} "
              f"round(s)")


if __name__ == "__main__":
    main()
