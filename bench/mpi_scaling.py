#!/usr/bin/python3
"""Data-parallel scaling on one machine: training steps of the same networks with 1 rank and
with N ranks, one core each, in dlcl (mpirun + dlcl-bench) and in PyTorch (DDP over gloo),
in one run; prints images/s, the scaling efficiency (N-rank images/s over N times 1-rank
images/s) of both, and dlcl's time waiting in allreduce.

  /usr/bin/python3 bench/mpi_scaling.py [--config NET.ini]... (default: fashion_lenet and
      fashion_resnet) [--build build] [--ranks 2] [--steps 20] [--rounds 1]

Strong scaling: the global batch is the config's [net] batch, split over the ranks. Every
process is bound to its own core (dlcl: mpirun --bind-to core, PoCL limited to one thread
per rank; torch: sched_setaffinity and torch.set_num_threads(1)). dlcl-bench runs
`--reps 0 --steps N` on random inputs and its rank 0 prints
`ranks=R step_ms=... images_per_s=... allreduce_wait_ms=... busbw_gbps=...`. The torch side
is the config's own graph (tools/ini_torch.py) with the config's optimizer, its step time
the median after the first two steps. With --rounds R > 1 a last row per peer, marked "~",
holds the median of each figure over the rounds.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "bench"))

TORCH_DDP = r"""
import os, statistics, sys, time
import torch, torch.distributed as dist
sys.path.insert(0, sys.argv[1] + "/tools"); sys.path.insert(0, sys.argv[1] + "/bench")
import ini_torch, train_vs_torch
config, build, ranks, rank, steps, port = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
os.sched_setaffinity(0, {rank % os.cpu_count()})
torch.set_num_threads(1)
torch.manual_seed(1)
sections = ini_torch.expanded_sections(os.path.join(build, "tools"), config)
d = dict(sections)
net_s, opt_s = d["net"], d.get("optimizer", {})
shape = [int(v) for v in net_s["input"].split(",")]
batch, classes = int(net_s.get("batch", 64)), int(net_s["classes"])
model = ini_torch.IniNet(sections, shape, net_s.get("output"))
if ranks > 1:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=ranks)
    model = torch.nn.parallel.DistributedDataParallel(model)
opt = train_vs_torch.torch_optimizer(model.module if ranks > 1 else model, opt_s)[0]
share = batch * (rank + 1) // ranks - batch * rank // ranks
x = torch.randn([share] + shape)
y = torch.randint(0, classes, (share,))
ms = []
for i in range(steps + 2):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    loss.item()
    ms.append((time.perf_counter() - t0) * 1e3)
if rank == 0:
    print(f"step_ms={statistics.median(ms[2:]):.3f} images_per_s={batch * 1000 / statistics.median(ms[2:]):.1f}")
if ranks > 1:
    dist.destroy_process_group()
"""

MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "core"]


def run(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p.stdout


def field(text, key):
    m = re.findall(rf"\b{key}=([0-9.eE+-]+)", text)
    return float(m[-1]) if m else float("nan")


def dlcl(build, config, ranks, steps):
    env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none")
    out = run(MPIRUN + ["-np", str(ranks), f"{build}/tools/dlcl-bench", config, "--reps", "0", "--steps", str(steps)],
              env)
    return {k: field(out, k) for k in ("step_ms", "images_per_s", "allreduce_wait_ms", "busbw_gbps")}


def torch_ddp(build, config, ranks, steps, port):
    procs = [subprocess.Popen([sys.executable, "-c", TORCH_DDP, ROOT, config, build, str(ranks), str(r), str(steps),
                               str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(ranks)]
    outs = [p.communicate() for p in procs]
    for p, (o, e) in zip(procs, outs):
        if p.returncode != 0:
            sys.exit(f"torch DDP failed ({p.returncode}):\n{e[-2000:]}")
    return {k: field(outs[0][0], k) for k in ("step_ms", "images_per_s")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", action="append")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    configs = a.config or [os.path.join(ROOT, "examples", c) for c in ("fashion_lenet.ini", "fashion_resnet.ini")]
    from resnet_vs_torch import cpu_name
    print(f"# {cpu_name()}, {os.cpu_count()} cores; 1 rank x 1 core vs {a.ranks} ranks x 1 core, the config's global batch")
    print(f"{'network':<16} {'peer':<6} {'1 rank img/s':>13} {f'{a.ranks} ranks img/s':>14} {'efficiency':>10} "
          f"{'allreduce wait ms/step':>23} {'busbw GB/s':>10}")
    port = 29500 + os.getpid() % 1000

    def row(name, peer, one, many):
        eff = many["images_per_s"] / (a.ranks * one["images_per_s"])
        wait = f"{many['allreduce_wait_ms']:.2f}" if "allreduce_wait_ms" in many else "-"
        bw = f"{many['busbw_gbps']:.2f}" if "busbw_gbps" in many else "-"
        print(f"{name:<16} {peer:<6} {one['images_per_s']:>13.1f} {many['images_per_s']:>14.1f} {eff:>10.2f} "
              f"{wait:>23} {bw:>10}", flush=True)

    for config in configs:
        name = os.path.splitext(os.path.basename(config))[0]
        seen = {"dlcl": [], "torch": []}
        for rnd in range(a.rounds):  # 1 rank and N ranks back to back, the peers' order alternating
            for peer in (("dlcl", "torch") if rnd % 2 == 0 else ("torch", "dlcl")):
                if peer == "dlcl":
                    one, many = dlcl(a.build, config, 1, a.steps), dlcl(a.build, config, a.ranks, a.steps)
                else:
                    port += 2
                    one, many = (torch_ddp(a.build, config, 1, a.steps, port),
                                 torch_ddp(a.build, config, a.ranks, a.steps, port + 1))
                seen[peer].append((one, many))
                row(name, peer, one, many)
        if a.rounds > 1:  # the median of each figure over the rounds
            for peer, runs in seen.items():
                med = [{k: statistics.median(r[i][k] for r in runs) for k in runs[0][i]} for i in (0, 1)]
                row(name, peer + "~", med[0], med[1])


if __name__ == "__main__":
    main()
