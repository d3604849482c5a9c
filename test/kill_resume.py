#!/usr/bin/python3
"""Crash safety of dlcl-train, reported in TAP. A reference run trains without interruption;
a second run is killed with SIGKILL in the middle of an epoch, resumed, killed again in the
middle of writing a checkpoint (fault injection: DLCL_FAULT_KILL_IN_WRITE), and resumed to
the end, then made to diverge (a non-finite loss must stop it and keep the checkpoint).
Training is deterministic (the shuffle follows seed and epoch, dropout seed and
step, and no kernel reduces in a varying order), so the two runs must end with the same
weights, byte for byte, and the same per-epoch metrics. The net has batch norm (running
statistics and num_batches_tracked must resume too) and a residual add, and trains with
adamw, warm-up per step and clipping (exp_avg, exp_avg_sq and the step count resume).
Usage: kill_resume.py TOOLS_DIR"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOOLS = sys.argv[1]
DATA = "/usr/share/datasets/fashion-mnist"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tap  # noqa: E402
from tap import report  # noqa: E402


if not os.path.exists(f"{DATA}/train-images-idx3-ubyte.gz"):
    print("1..0 # SKIP Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    sys.exit(0)

tmp = tempfile.mkdtemp(prefix="dlcl-kill-")
CONFIG = f"""[net]
input = 1,28,28
classes = 10
batch = 32
epochs = 3
seed = 7
checkpoint_every = 5

[optimizer]
type = adamw
learning_rate = 0.003
warmup_steps = 30
clip_grad_norm = 2
no_decay = bias, batchnorm

[data]
format = idx
train_images = {DATA}/train-images-idx3-ubyte.gz
train_labels = {DATA}/train-labels-idx1-ubyte.gz
test_images = {DATA}/t10k-images-idx3-ubyte.gz
test_labels = {DATA}/t10k-labels-idx1-ubyte.gz
train_samples = 2048
test_samples = 256
scale = 0.00392156862745098

[conv1]
type = conv
filters = 8
size = 3
pad = 1
bias = 0

[bn1]
type = batchnorm
activation = relu

[conv2]
type = conv
filters = 8
size = 3
pad = 1
bias = 0

[bn2]
type = batchnorm

[res]
type = add
input = bn2, bn1
activation = relu

[pool1]
type = maxpool
size = 2
stride = 2

[drop1]
type = dropout
rate = 0.25

[fc1]
type = dense
units = 32
activation = relu

[fc2]
type = dense
units = 10
"""
cfg = f"{tmp}/net.ini"
with open(cfg, "w") as f:
    f.write(CONFIG)
print("1..6", flush=True)


def train(name, extra=(), env=None):
    e = dict(os.environ, **(env or {}))
    p = subprocess.run([f"{TOOLS}/dlcl-train", cfg, "--set", f"net.checkpoint={tmp}/{name}.safetensors"] + list(extra),
                       capture_output=True, text=True, env=e, timeout=300)
    return p.returncode, p.stdout + p.stderr


def metrics(name):
    """Epoch lines of the metrics CSV without the wall-time column."""
    path = f"{tmp}/{name}.csv"
    if not os.path.exists(path):
        return None
    return [",".join(line.split(",")[:-1]) for line in open(path).read().splitlines()]


def read(path):
    return open(path, "rb").read() if os.path.exists(path) else b""


rc, out = train("ref")
report(rc == 0 and "final: epochs=3" in out, "uninterrupted_reference_run", out)

# Run 2: SIGKILL once the second epoch is under way (between checkpoints, most likely).
ckpt = f"{tmp}/run.safetensors"
p = subprocess.Popen([f"{TOOLS}/dlcl-train", cfg, "--set", f"net.checkpoint={ckpt}"],
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
buf, deadline = "", time.time() + 120
while time.time() < deadline:
    line = p.stdout.readline()
    buf += line
    if not line or re.match(r"epoch 2/3\s+[3-9]0%", line):
        break
p.send_signal(signal.SIGKILL)
p.wait()
state = read(ckpt + ".state")
report(p.returncode == -signal.SIGKILL and len(state) > 0, "sigkill_mid_epoch_leaves_a_checkpoint", buf)

# Resume, and die (SIGKILL) halfway through writing the third checkpoint after that.
rc, out = train("run", ["--resume", ckpt], {"DLCL_FAULT_KILL_IN_WRITE": "3"})
resumed = re.search(r"resumed from .*: (\d+) epochs and (\d+) batches done", out)
report(rc == -signal.SIGKILL and resumed and (int(resumed.group(1)), int(resumed.group(2))) >= (1, 1),
       "resume_mid_epoch_then_sigkill_mid_write", f"rc {rc}\n{out}")

# Resume again: the half-written temporary file must not matter.
rc, out = train("run", ["--resume", ckpt])
report(rc == 0 and "final: epochs=3" in out and "resumed from" in out, "second_resume_finishes", out)

same_weights = read(f"{tmp}/ref.safetensors") == read(ckpt) and len(read(ckpt)) > 0
ref_m, run_m = metrics("ref"), metrics("run")
report(same_weights and ref_m is not None and ref_m == run_m and len(ref_m) == 4,
       "killed_and_resumed_run_equals_uninterrupted_run",
       f"weights equal: {same_weights}\nreference:\n" + "\n".join(ref_m or []) + "\nresumed:\n" + "\n".join(run_m or []))
# A learning rate that blows up: training stops at the first non-finite loss, names the layer
# where it started, and leaves the last good checkpoint as it was.
before = read(ckpt), read(ckpt + ".state")
rc, out = train("run", ["--resume", ckpt, "--set", "net.epochs=4", "--set", "optimizer.learning_rate=1e6",
                         "--set", "net.checkpoint_every=0"])  # no checkpoint inside the epoch before it diverges
report(rc not in (0, None) and rc > 0 and "DLCL_ERR_NUMERIC" in out and re.search(r"output of layer \[\w+\]", out)
       and before == (read(ckpt), read(ckpt + ".state")) and len(before[0]) > 0,
       "nonfinite_loss_stops_naming_the_layer_and_keeps_the_checkpoint", f"rc {rc}\n{out}")
shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if tap.failed else 0)
