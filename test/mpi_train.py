#!/usr/bin/python3
"""Data-parallel training under mpirun, reported in TAP:
 - the same training at any N: a small conv net on synthetic data, batch 10 (3 ranks split it
   4, 3, 3), trained 4 epochs of 6 steps plainly and with N = 1, 2, 3: the per-epoch losses
   and accuracies of the metrics CSV and the final weights agree within float summation
   order; with batch norm and net.sync_batchnorm=1 too (the running statistics included);
 - mpirun -np 1 gives plain dlcl-train's weights;
 - with per-rank batch norm the reported test metrics are those of the model rank 0 saves;
 - overlap is real: dlcl-bench under mpirun -np 2 with small buckets reports buckets started
   while the backward pass was still running, and its report line is complete.
Usage: mpi_train.py TOOLS_DIR MPIRUN"""
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mpi_util import csv_rows, max_diff, mpirun, read_safetensors, report, run  # noqa: E402
import mpi_util  # noqa: E402

TOOLS, MPIRUN = sys.argv[1], sys.argv[2]
TRAIN = f"{TOOLS}/dlcl-train"
tmp = tempfile.mkdtemp(prefix="dlcl-mpi-")

CONV = """[net]
input = 2,10,10
classes = 4
batch = 10
epochs = 4
seed = 5

[optimizer]
type = adamw
learning_rate = 0.01
warmup_steps = 5
clip_grad_norm = 1

[data]
format = synthetic
train_samples = 60
test_samples = 25

[conv1]
type = conv
filters = 6
size = 3
pad = 1
{bn}
[pool1]
type = maxpool
size = 2
stride = 2

[fc1]
type = dense
units = 12
activation = relu

[fc2]
type = dense
units = 4
"""
PLAIN_CONV = "activation = relu\n"
BN_CONV = "bias = 0\n\n[bn1]\ntype = batchnorm\nactivation = relu\n"
LOSS_TOL, WEIGHT_TOL = 2e-5, 2e-5  # float32 sums in another order; a wrong split is off by 1e-2


def write(name, text):
    path = f"{tmp}/{name}.ini"
    with open(path, "w") as f:
        f.write(text)
    return path


def train(cfg, name, n, extra=()):
    """Trains cfg plainly (n = 0) or under mpirun -np n; returns (rc, output, weights, csv rows)."""
    ckpt = f"{tmp}/{name}.safetensors"
    args = [TRAIN, cfg, "--set", f"net.checkpoint={ckpt}"] + list(extra)
    rc, out = run(args) if n == 0 else mpirun(MPIRUN, n, args)
    weights = read_safetensors(ckpt)[0] if rc == 0 and os.path.exists(ckpt) else {}
    return rc, out, weights, csv_rows(f"{tmp}/{name}.csv")


def compare(label, ref, runs):
    """ref and runs: (rc, out, weights, rows) from train(); runs maps N to one."""
    rc0, out0, w0, rows0 = ref
    ok0 = rc0 == 0 and len(rows0) == 4 and w0
    report(ok0, f"{label}_plain_reference_trains", out0)
    for n, (rc, out, w, rows) in runs.items():
        loss_diff = max((abs(a - b) for r0, r in zip(rows0, rows) for a, b in zip(r0, r)), default=float("inf"))
        wd = max_diff(w0, w) if w else float("inf")
        ok = ok0 and rc == 0 and len(rows) == len(rows0) and loss_diff <= LOSS_TOL and wd <= WEIGHT_TOL
        detail = (f"rc {rc}, worst metrics difference {loss_diff:.3g} (tolerance {LOSS_TOL}), worst weight "
                  f"difference {wd:.3g} (tolerance {WEIGHT_TOL})\nplain: {rows0}\nN={n}: {rows}\n{out}")
        report(ok, f"{label}_mpirun_np{n}_same_losses_and_weights_as_one_process", detail)
        print(f"# {label} N={n}: metrics within {loss_diff:.2g}, weights within {wd:.2g}")
    return ok0


print("1..11", flush=True)

# a. the same training at any N (and d. -np 1 against plain, bit for bit)
cfg = write("conv", CONV.format(bn=PLAIN_CONV))
ref = train(cfg, "conv_plain", 0)
runs = {n: train(cfg, f"conv_np{n}", n) for n in (1, 2, 3)}
compare("conv", ref, runs)
w1 = runs[1][2]
report(ref[2] and w1 and max_diff(ref[2], w1) <= 1e-6, "mpirun_np1_weights_equal_plain_dlcl_train_within_1e-6",
       f"worst difference {max_diff(ref[2], w1) if w1 else 'no weights'}\n{runs[1][1]}")

cfg_bn = write("bn", CONV.format(bn=BN_CONV))
sync = ["--set", "net.sync_batchnorm=1"]
ref_bn = train(cfg_bn, "bn_plain", 0)
runs_bn = {n: train(cfg_bn, f"bn_np{n}", n, sync) for n in (2, 3)}
compare("batchnorm_sync", ref_bn, runs_bn)

# per-rank batch norm (DDP's default): the ranks' running statistics differ, but every rank
# evaluates its share of the test set with rank 0's (dlcl_net_broadcast_buffers), so the
# test metrics of the last epoch are those of the checkpoint rank 0 saves, as dlcl-eval finds
rc, out, w, rows = train(cfg_bn, "bn_local_np2", 2)
erc, eout = run([f"{TOOLS}/dlcl-eval", cfg_bn, "--weights", f"{tmp}/bn_local_np2.safetensors"])
m = re.search(r"^accuracy=([0-9.]+) loss=([0-9.]+)", eout, re.M)
ok = rc == 0 and erc == 0 and m is not None and rows and abs(rows[-1][3] - float(m.group(2))) <= 1e-4 and \
    abs(rows[-1][4] - float(m.group(1))) <= 1e-6
print(f"# per-rank batch norm, N=2: last epoch test loss {rows[-1][3] if rows else '?'}, dlcl-eval of the checkpoint "
      f"{m.group(2) if m else '?'}")
report(ok, "per_rank_batchnorm_np2_test_metrics_are_the_saved_models", f"{rows}\n{out}\n{eout}")

# b. overlap: several buckets (0.01 MB is 2560 floats: a bucket a tensor or two here), a backward
# pass long enough to start some of them before it ends
BENCH = CONV.replace("input = 2,10,10", "input = 3,24,24").replace("filters = 6", "filters = 16")
cfg_bench = write("bench", BENCH.format(bn=PLAIN_CONV).replace("batch = 10", "batch = 32"))
rc, out = mpirun(MPIRUN, 2, [f"{TOOLS}/dlcl-bench", cfg_bench, "--steps", "8", "--set", "net.bucket_mb=0.01"])
m = re.search(r"^ranks=2 step_ms=([0-9.]+) images_per_s=([0-9.]+) allreduce_wait_ms=([0-9.]+) busbw_gbps=([0-9.]+) "
              r"overlapped=(\d+)/(\d+) buckets", out, re.M)
print(f"# {m.group(0) if m else 'no report line'}")
report(rc == 0 and m is not None and int(m.group(6)) >= 2 * 8 * 2 and float(m.group(4)) > 0,
       "dlcl_bench_np2_reports_step_wait_busbw_and_buckets", f"rc {rc}\n{out}")
report(m is not None and int(m.group(5)) > 0, "dlcl_bench_np2_buckets_overlap_the_backward_pass", out)

shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if mpi_util.tap.failed else 0)
