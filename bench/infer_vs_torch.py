#!/usr/bin/python3
"""Inference latency and throughput of torchvision's ResNet-18 (224x224, random weights) in
dlcl, PyTorch and ONNX Runtime on the CPU, in one run on the same machine; prints each figure
and the ratios dlcl/torch and dlcl/ort (below 1: dlcl faster).

  /usr/bin/python3 bench/infer_vs_torch.py [--batches 1,64] [--iters 20,3] [--threads 2] [--rounds 2]
      [--build build] [--size 224] [--no-ort] [--no-fp16]

dlcl runs `dlcl-bench --inference examples/resnet18.ini --batches B --iters N` (an inference
net, dlcl_net_logits on a fixed random batch after warm-up) and reads its line
`batch=B p50_ms=... images_per_s=...`, once as is (dlcl, float32) and once with
--set net.precision=fp16 (dlcl_fp16: activations and weights stored as half precision, float
arithmetic), unless --no-fp16. PyTorch runs torchvision.models.resnet18() in eval mode
under torch.no_grad() with torch.set_num_threads(threads); ONNX Runtime runs the same model
exported by torch.onnx.export to a temporary file, CPUExecutionProvider, intra_op_num_threads =
threads. Each runs in its own process, one after the other, the order rotating per round, so
their thread pools never compete; each figure is the median call time after two warm-up calls,
and throughput is the batch over that median. ONNX Runtime is taken from the import path, else
installed once with `pip install --no-deps --target BUILD/pyort onnxruntime` (skipped, with a
note, if that fails or with --no-ort). PoCL gets POCL_CPU_MAX_CU_COUNT = threads.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TORCH = r"""
import statistics, sys, time, torch, torchvision
batch, iters, threads, size = (int(v) for v in sys.argv[1:5])
torch.set_num_threads(threads)
torch.manual_seed(1)
m = torchvision.models.resnet18().eval()
x = torch.randn(batch, 3, size, size)
ms = []
with torch.no_grad():
    for i in range(iters + 2):
        t0 = time.perf_counter()
        m(x)
        ms.append((time.perf_counter() - t0) * 1e3)
print(f"p50_ms={statistics.median(ms[2:]):.3f}")
"""

ORT = r"""
import statistics, sys, time, numpy, onnxruntime
path, batch, iters, threads, size = sys.argv[1], *(int(v) for v in sys.argv[2:6])
o = onnxruntime.SessionOptions()
o.intra_op_num_threads = threads
o.inter_op_num_threads = 1
s = onnxruntime.InferenceSession(path, o, providers=["CPUExecutionProvider"])
x = numpy.random.default_rng(1).standard_normal((batch, 3, size, size), dtype=numpy.float32)
ms = []
for i in range(iters + 2):
    t0 = time.perf_counter()
    s.run(None, {"x": x})
    ms.append((time.perf_counter() - t0) * 1e3)
print(f"p50_ms={statistics.median(ms[2:]):.3f}")
"""

EXPORT = r"""
import sys, torch, torchvision
torch.manual_seed(1)
m = torchvision.models.resnet18().eval()
size = int(sys.argv[2])
torch.onnx.export(m, torch.randn(1, 3, size, size), sys.argv[1], input_names=["x"], output_names=["y"],
                  dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, opset_version=13)
"""


def run(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-3000:] + p.stderr[-3000:])
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd[:3])} ...")
    m = re.search(r"p50_ms=([0-9.]+)", p.stdout)
    if m is None:
        raise SystemExit(f"no p50_ms= in the output of: {' '.join(cmd[:3])} ...")
    return float(m.group(1))


def ort_env(build):
    """The environment in which `import onnxruntime` works, or None."""
    env = dict(os.environ)
    probe = [sys.executable, "-c", "import onnxruntime"]
    if subprocess.run(probe, capture_output=True, env=env).returncode == 0:
        return env
    target = os.path.join(build, "pyort")
    env["PYTHONPATH"] = target + os.pathsep + env.get("PYTHONPATH", "")
    if subprocess.run(probe, capture_output=True, env=env).returncode != 0:
        print(f"installing onnxruntime into {target} (pip --no-deps --target)", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target, "onnxruntime"],
                       capture_output=True)
    if subprocess.run(probe, capture_output=True, env=env).returncode == 0:
        return env
    print("note: onnxruntime does not import or install here; ONNX Runtime left out", flush=True)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--iters", default="20,3", help="timed calls per batch size, in order (one value: all)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--no-ort", action="store_true")
    ap.add_argument("--no-fp16", action="store_true")
    a = ap.parse_args()
    batches = [int(b) for b in a.batches.split(",")]
    iters = [int(i) for i in a.iters.split(",")]
    iters = iters * len(batches) if len(iters) == 1 else iters
    if len(iters) != len(batches):
        raise SystemExit("give one --iters value, or one per batch size")
    import torch
    from resnet_vs_torch import cpu_name
    env = None if a.no_ort else ort_env(a.build)
    tmp = tempfile.mkdtemp(prefix="dlcl-infer-")
    onnx = os.path.join(tmp, "resnet18.onnx")
    if env is not None:
        subprocess.run([sys.executable, "-c", EXPORT, onnx, str(a.size)], check=True, capture_output=True)
    dlcl_env = dict(os.environ, POCL_CPU_MAX_CU_COUNT=str(a.threads))
    cfg = os.path.join(ROOT, "examples", "resnet18.ini")
    print(f"CPU: {cpu_name()}; {os.cpu_count()} cores; torch {torch.__version__}, {a.threads} threads; "
          f"ResNet-18 {a.size}x{a.size}, eval, median call after 2 warm-ups", flush=True)

    def one(who, batch, n):
        if who.startswith("dlcl"):
            cmd = [os.path.join(a.build, "tools", "dlcl-bench"), "--inference", cfg, "--batches", str(batch),
                   "--iters", str(n)]
            if a.size != 224:
                cmd += ["--set", f"vars.size={a.size}"]
            if who == "dlcl_fp16":
                cmd += ["--set", "net.precision=fp16"]
            return run(cmd, dlcl_env)
        if who == "torch":
            return run([sys.executable, "-c", TORCH, str(batch), str(n), str(a.threads), str(a.size)])
        return run([sys.executable, "-c", ORT, onnx, str(batch), str(n), str(a.threads), str(a.size)], env)

    who_all = ["dlcl"] + ([] if a.no_fp16 else ["dlcl_fp16"]) + ["torch"] + (["ort"] if env is not None else [])
    for batch, n in zip(batches, iters):
        got = {w: [] for w in who_all}
        for r in range(a.rounds):
            order = who_all[r % len(who_all):] + who_all[:r % len(who_all)]
            for w in order:
                got[w].append(one(w, batch, n))
            print(f"batch {batch} round {r + 1}: " + ", ".join(f"{w} {got[w][-1]:.1f} ms" for w in who_all), flush=True)
        med = {w: statistics.median(v) for w, v in got.items()}
        line = f"batch={batch} " + " ".join(f"{w}_ms={med[w]:.2f} {w}_images_per_s={batch / med[w] * 1e3:.2f}"
                                              for w in who_all)
        for d in [w for w in who_all if w.startswith("dlcl")]:
            line += f" {d}/torch={med[d] / med['torch']:.2f}"
            if "ort" in med:
                line += f" {d}/ort={med[d] / med['ort']:.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
