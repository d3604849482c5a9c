#!/usr/bin/python3
"""A rank that dies ends the data-parallel job, and a different N resumes it; in TAP.
mpirun -np 2 dlcl-train runs until rank 0 has checkpointed inside the second epoch; then rank
1 gets SIGKILL. The job must end non-zero within seconds with no rank left running, the
checkpoint must be whole (it parses, and dlcl-eval loads it), and mpirun -np 3 dlcl-train
--resume must continue from it to the end, reaching the weights of an uninterrupted
one-process run (within float summation order). A SIGTERM on one rank stops every rank
together and rank 0 saves (exit 130). A rank that fails names its rank and host.
Usage: mpi_kill_resume.py TOOLS_DIR MPIRUN"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mpi_util import MPIRUN_FLAGS, env, max_diff, mpirun, read_safetensors, report, run  # noqa: E402
import mpi_util  # noqa: E402

TOOLS, MPIRUN = sys.argv[1], sys.argv[2]
TRAIN = f"{TOOLS}/dlcl-train"
tmp = tempfile.mkdtemp(prefix="dlcl-mpikill-")
EPOCHS = 3
CONFIG = f"""[net]
input = 1,12,12
classes = 5
batch = 12
epochs = {EPOCHS}
seed = 11
checkpoint_every = 100

[optimizer]
type = sgd
learning_rate = 0.02
momentum = 0.9

[data]
format = synthetic
train_samples = 24000
test_samples = 60

[conv1]
type = conv
filters = 4
size = 3
pad = 1
activation = relu

[pool1]
type = maxpool
size = 2
stride = 2

[fc1]
type = dense
units = 5
"""
cfg = f"{tmp}/net.ini"
with open(cfg, "w") as f:
    f.write(CONFIG)
print("1..7", flush=True)


def metadata(path):
    try:
        return read_safetensors(path)[1]
    except (OSError, ValueError, KeyError):
        return {}


def rank_pids(mpirun_pid):
    """{rank: pid} of mpirun's children (the ranks, on one machine)."""
    out = subprocess.run(["ps", "--ppid", str(mpirun_pid), "-o", "pid="], capture_output=True, text=True).stdout
    ranks = {}
    for pid in out.split():
        try:
            environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        for kv in environ:
            if kv.startswith(b"OMPI_COMM_WORLD_RANK="):
                ranks[int(kv.split(b"=")[1])] = int(pid)
    return ranks


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def start_and_signal(name, sig, when):
    """Starts mpirun -np 2 dlcl-train; once when(metadata of the checkpoint) holds, sends sig to
    rank 1. Returns (rc, output, seconds from the signal to mpirun's end, rank pids, signalled)."""
    ckpt = f"{tmp}/{name}.safetensors"
    log = open(f"{tmp}/{name}.log", "w+")
    p = subprocess.Popen([MPIRUN] + MPIRUN_FLAGS + ["-np", "2", TRAIN, cfg, "--set", f"net.checkpoint={ckpt}"],
                         stdout=log, stderr=subprocess.STDOUT, env=env())
    deadline, pids, sent, t_sig = time.time() + 120, {}, False, time.time()
    while time.time() < deadline and p.poll() is None:
        if len(pids) < 2:
            pids = rank_pids(p.pid)
        if len(pids) == 2 and when(metadata(ckpt + ".state")):
            os.kill(pids[1], sig)
            sent, t_sig = True, time.time()
            break
        time.sleep(0.02)
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    took = time.time() - t_sig
    log.seek(0)
    return p.returncode, log.read(), took, pids, sent


# an uninterrupted one-process run: the weights the others must reach
rc, out = run([TRAIN, cfg, "--set", f"net.checkpoint={tmp}/ref.safetensors"])
ref = read_safetensors(f"{tmp}/ref.safetensors")[0] if rc == 0 else {}
report(rc == 0 and "final: epochs=3" in out, "uninterrupted_reference_run", out)

# SIGKILL rank 1 inside the second epoch, after a checkpoint in it
ckpt = f"{tmp}/run.safetensors"
rc, out, took, pids, sent = start_and_signal(
    "run", signal.SIGKILL, lambda m: int(m.get("epochs_done", 0)) >= 1 and int(m.get("batches_done", 0)) > 0)
time.sleep(0.5)
left = [pid for pid in pids.values() if alive(pid)]
for _ in range(50):  # the kernel may take a moment to reap what mpirun killed
    left = [pid for pid in pids.values() if alive(pid)]
    if not left:
        break
    time.sleep(0.1)
report(sent and rc not in (0, None) and took < 10 and not left, "sigkill_of_rank1_ends_the_job_within_seconds",
       f"signalled {sent}, rc {rc}, {took:.1f} s after the kill, still running: {left}\n{out}")
meta = metadata(ckpt + ".state")
rc_eval, out_eval = run([f"{TOOLS}/dlcl-eval", cfg, "--weights", ckpt])
report(meta and rc_eval == 0 and re.search(r"^accuracy=", out_eval, re.M), "checkpoint_after_the_kill_is_whole",
       f"metadata {meta}\n{out_eval}")
print(f"# the job ended {took:.1f} s after the kill; checkpoint: epochs_done={meta.get('epochs_done')} "
      f"batches_done={meta.get('batches_done')}")

# resume with three ranks
rc, out = mpirun(MPIRUN, 3, [TRAIN, cfg, "--set", f"net.checkpoint={ckpt}", "--resume", ckpt])
resumed = re.search(r"resumed from .*: (\d+) epochs and (\d+) batches done", out)
w = read_safetensors(ckpt)[0] if rc == 0 else {}
wd = max_diff(ref, w) if w and ref else float("inf")
report(rc == 0 and resumed and int(resumed.group(2)) > 0 and "final: epochs=3" in out,
       "mpirun_np3_resumes_mid_epoch_and_finishes", f"rc {rc}\n{out}")
report(wd <= 2e-5, "resumed_run_reaches_the_uninterrupted_weights", f"worst weight difference {wd}")

# SIGTERM on one rank: every rank stops after the same step, rank 0 saves, exit 130
rc, out, took, pids, sent = start_and_signal("term", signal.SIGTERM, lambda m: int(m.get("batches_done", 0)) > 0)
meta = metadata(f"{tmp}/term.safetensors.state")
report(sent and rc != 0 and "Exit code:    130" in out and re.search(r"interrupted in epoch \d+ after batch \d+", out)
       and meta, "sigterm_on_rank1_stops_all_ranks_and_rank0_saves", f"rc {rc}\n{out}")

# a failing rank names itself and its host, and ends the job
rc, out = run([MPIRUN] + MPIRUN_FLAGS + ["-np", "1", TRAIN, cfg, "--set", f"net.checkpoint={tmp}/e.safetensors", ":",
                                         "-np", "1", "-x", "DLCL_DEVICE=no-such-device", TRAIN, cfg, "--set",
                                         f"net.checkpoint={tmp}/e.safetensors"], timeout=120)
report(rc != 0 and re.search(r"^dlcl-train: rank 1 on \S+: DLCL_ERR_NO_DEVICE: ", out, re.M),
       "a_failing_rank_names_its_rank_and_host_and_ends_the_job", f"rc {rc}\n{out}")

shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if mpi_util.tap.failed else 0)
