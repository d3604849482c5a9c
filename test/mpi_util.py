"""Shared by the MPI tests (test/mpi_train.py, test/mpi_kill_resume.py): TAP reporting, mpirun
on one machine, and a safetensors reader (no torch needed)."""
import array
import json
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tap  # noqa: E402,F401  (report and the tallies: tap.report, tap.failed)
from tap import report  # noqa: E402,F401


# Several ranks on a 2-core machine, as root in a container: mpirun refuses root and more ranks
# than cores unless told, and the shared-memory transport's single-copy mechanism (CMA) needs a
# ptrace permission containers often lack.
MPIRUN_FLAGS = ["--allow-run-as-root", "--oversubscribe"]
MPI_ENV = {"OMPI_MCA_btl_vader_single_copy_mechanism": "none", "OMPI_MCA_rmaps_base_oversubscribe": "1"}




def env():
    e = dict(os.environ, **MPI_ENV)
    if "ASAN_OPTIONS" in e:  # a sanitizer build: Open MPI's own leaks are suppressed by library name
        e["ASAN_OPTIONS"] += ":fast_unwind_on_malloc=0"  # (tools/lsan.supp), which needs whole stacks
    return e


def mpirun(mpirun_exe, n, args, timeout=300):
    """Runs args under mpirun with n ranks: (returncode, stdout + stderr)."""
    p = subprocess.run([mpirun_exe] + MPIRUN_FLAGS + ["-np", str(n)] + args, capture_output=True, text=True,
                       env=env(), timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def run(args, timeout=300):
    p = subprocess.run(args, capture_output=True, text=True, env=env(), timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def read_safetensors(path):
    """{name: list of values} of a safetensors file (F32 and I64 tensors), and its metadata."""
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    data = b[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        a = array.array({"F32": "f", "I64": "q"}[t["dtype"]])
        a.frombytes(data[lo:hi])
        out[name] = a
    return out, header.get("__metadata__", {})


def max_diff(a, b):
    """Largest absolute difference over the tensors of two checkpoints; inf when the names or
    shapes differ."""
    if set(a) != set(b):
        return float("inf")
    worst = 0.0
    for k in a:
        if len(a[k]) != len(b[k]):
            return float("inf")
        worst = max([worst] + [abs(x - y) for x, y in zip(a[k], b[k])])
    return worst


def csv_rows(path):
    """The metrics CSV's epoch rows as floats, without the wall-time column."""
    if not os.path.exists(path):
        return []
    lines = open(path).read().splitlines()[1:]
    return [[float(v) for v in line.split(",")[:-1]] for line in lines]
