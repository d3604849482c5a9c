#!/usr/bin/python3
"""Batch norm on one shape in dlcl (bench/batchnorm-bench, the OpenCL device) and in PyTorch
(torch.nn.BatchNorm2d on the CPU), one after the other in one run; best of R for each.

  /usr/bin/python3 bench/batchnorm_vs_torch.py [--build build] [--shape 32,64,112,112]
      [--threads 2] [--reps 10]

Torch's figures include the allocation of its outputs (dlcl's ops write into buffers the
caller owns): "torch clone" shows what allocating and filling one tensor costs there.
"""
import argparse
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def best_ms(f, reps):
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def torch_times(shape, threads, reps):
    import torch

    torch.set_num_threads(threads)
    x = (torch.rand(*shape) * 2 - 1).requires_grad_(True)
    dy = torch.rand_like(x) * 2 - 1
    bn = torch.nn.BatchNorm2d(shape[1])
    out = {}

    def fwd_bwd(relu):
        def run():
            x.grad = bn.weight.grad = bn.bias.grad = None
            y = bn(x)
            (torch.relu(y) if relu else y).backward(dy)
        return run

    bn.train()
    with torch.no_grad():
        out["forward train + relu"] = best_ms(lambda: torch.relu(bn(x)), reps)
    out["forward + backward"] = best_ms(fwd_bwd(False), reps)
    out["forward + backward, relu"] = best_ms(fwd_bwd(True), reps)
    bn.eval()
    with torch.no_grad():
        out["forward eval + relu"] = best_ms(lambda: torch.relu(bn(x)), reps)
        y = torch.empty_like(x)
        out["buffer copy"] = best_ms(lambda: y.copy_(x), reps)
        out["torch clone"] = best_ms(lambda: x.clone(), reps)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--shape", default="32,64,112,112")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    shape = [int(v) for v in a.shape.split(",")]
    exe = os.path.join(a.build, "bench", "batchnorm-bench")
    res = subprocess.run([exe, "--shape", a.shape, "--reps", str(a.reps)], capture_output=True, text=True)
    sys.stdout.write(res.stdout)
    if res.returncode != 0:
        sys.stderr.write(res.stderr)
        sys.exit(1)
    dl = {m.group(1).strip(): float(m.group(2)) for m in re.finditer(r"^([^\d\n]+?)\s+([\d.]+)\s+\d+\s+[\d.]+$",
                                                                    res.stdout, re.M)}
    dl["forward + backward"] = dl["forward train + relu"] + dl["backward"]  # relu's cost in the forward is nil
    dl["forward + backward, relu"] = dl["forward train + relu"] + dl["backward + relu"]
    tt = torch_times(shape, a.threads, a.reps)
    print(f"\ntorch {__import__('torch').__version__}, {a.threads} threads, best of {a.reps}")
    print(f"{'pass':26} {'dlcl ms':>10} {'torch ms':>10} {'torch/dlcl':>11}")
    for k in ["forward train + relu", "forward eval + relu", "forward + backward", "forward + backward, relu",
              "buffer copy", "torch clone"]:
        d = dl.get(k)
        print(f"{k:26} {d if d else float('nan'):10.2f} {tt[k]:10.2f} {tt[k] / d if d else float('nan'):11.2f}")


if __name__ == "__main__":
    main()
