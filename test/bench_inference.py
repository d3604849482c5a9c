#!/usr/bin/python3
"""dlcl-bench --inference end to end, in TAP: on a tiny conv net, in float32 and with
net.precision=fp16, one line per batch size with the precision, p50 <= p99, a positive
throughput, and nothing allocated or built by the timed calls; bad
arguments exit 2 with a usage message. Usage: bench_inference.py TOOLS_DIR"""
import os
import shutil
import re
import subprocess
import sys
import tempfile

TOOLS = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="dlcl-bench-inference-")
CONFIG = os.path.join(tmp, "tiny.ini")
with open(CONFIG, "w") as f:
    f.write("[net]\ninput = 2, 9, 9\nclasses = 5\nbatch = 4\n\n"
            "[c1]\ntype = conv\nfilters = 6\nsize = 3\npad = 1\n\n[bn]\ntype = batchnorm\nactivation = relu\n\n"
            "[p]\ntype = maxpool\nsize = 2\nstride = 2\n\n[fc]\ntype = dense\nunits = 5\n")
LINE = re.compile(r"^batch=(\d+) p50_ms=([\d.]+) p99_ms=([\d.]+) images_per_s=([\d.]+) iters=(\d+) "
                  r"new_buffers=(\d+) new_programs=(\d+) precision=(fp32|fp16) device_mib=[\d.]+ device=\"[^\"]*\"$")


def bench(*args):
    p = subprocess.run([f"{TOOLS}/dlcl-bench", "--inference", *args], capture_output=True, text=True,
                       errors="replace", timeout=240)
    return p.returncode, p.stdout, p.stderr


results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok' if ok else 'not ok'} {len(results)} - {name}")
    if not ok:
        for line in detail.splitlines():
            print("# " + line)


for prec in ("fp32", "fp16"):
    rc, out, err = bench(CONFIG, "--batches", "1,3", "--iters", "9", "--warmup", "1", "--set", f"net.precision={prec}")
    lines = [m for m in (LINE.match(l) for l in out.splitlines()) if m]
    check(f"{prec}_inference_bench_exits_0_with_a_line_per_batch",
          rc == 0 and [m.group(1) for m in lines] == ["1", "3"] and all(m.group(8) == prec for m in lines),
          f"rc={rc}\n{out}\n{err}")
    for m in lines:
        b, p50, p99, ips, iters = (int(m.group(1)), float(m.group(2)), float(m.group(3)), float(m.group(4)),
                                   int(m.group(5)))
        check(f"{prec}_batch_{b}_p50_le_p99_and_throughput_positive", 0 < p50 <= p99 and ips > 0 and iters == 9,
              m.group(0))
        # the timed calls run on buffers and kernels the warm-up made: nothing new
        check(f"{prec}_batch_{b}_timed_calls_allocate_and_build_nothing", m.group(6) == "0" and m.group(7) == "0",
              m.group(0))
        # throughput is images over the summed call times: no slower than every call at p99
        check(f"{prec}_batch_{b}_throughput_at_least_batch_over_p99", ips >= b / (p99 * 1e-3) * 0.999, m.group(0))

for name, args in [("bad_batches_list_exits_2", [CONFIG, "--batches", "1,x"]),
                   ("zero_iters_exits_2", [CONFIG, "--iters", "0"]),
                   ("missing_config_exits_2", ["--iters", "3"])]:
    rc, out, err = bench(*args)
    check(name, rc == 2 and "dlcl-bench --inference" in err, f"rc={rc}\n{err}")
rc, out, err = bench(os.path.join(tmp, "absent.ini"), "--batches", "1")
check("absent_config_exits_1_naming_it", rc == 1 and "absent.ini" in err, f"rc={rc}\n{err}")
shutil.rmtree(tmp, ignore_errors=True)
print(f"1..{len(results)}")
sys.exit(0 if all(results) else 1)
