#!/usr/bin/python3
"""dlcl-tune end to end, in TAP: the two quickest CLBlast tuners (clblast-utils) on the test
device with --quick, the stored result shown, applied by a context (its info line) and
checked by SGEMMs through CLBlast, then --clear; and bad arguments. Skipped when the
tuners are not installed. Usage: tune_tool.py TOOLS_DIR"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

TOOLS = sys.argv[1]
if shutil.which("clblast_tuner_copy_fast") is None:
    print("1..0 # SKIP clblast_tuner_copy_fast not in PATH (apt-get install clblast-utils)")
    sys.exit(0)
tmp = tempfile.mkdtemp(prefix="dlcl-tune-test-")
env = dict(os.environ, DLCL_CACHE_DIR=tmp, TMPDIR=tmp)
env.pop("DLCL_NO_CACHE", None)


def tune(*args, timeout=240):
    p = subprocess.run([f"{TOOLS}/dlcl-tune", *args], capture_output=True, text=True, errors="replace",
                       env=env, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


CASES = [
    # (name, args, exit code, substrings the output must hold, substrings it must not)
    ("show_before_tuning_says_none", ["--show"], 0, ["no CLBlast tuning stored for this device"], []),
    ("quick_tune_stores_applies_and_checks", ["--quick", "--kernels", "copy_fast,transpose_pad"], 0,
     ["clblast_tuner_copy_fast -platform", "-precision 32 -fraction 20 -m 256 -n 256 -runs 1",
      # every configuration run (how many the tuner has depends on the device: 6 on PoCL, 3 on an H100)
      re.compile(r"\[2/2\] transpose_pad: configuration (\d+)/\1,"), "stored in " + tmp, "Copy ", "Padtranspose ",
      "info: CLBlast: applied tuned parameters for", "Copy (4 parameters",
      "check: SGEMM 1500x1400x1300 through CLBlast: 256 sampled entries match the host"], ["WRONG", "warning"]),
    ("tuner_directory_removed_after_success", None, 0, [], []),
    ("show_prints_the_stored_parameters", ["--show"], 0, ["CLBlast tuning in " + tmp, "COPY_VW=", "PADTRA_TILE="],
     ["no CLBlast tuning"]),
    ("clear_removes_it", ["--clear"], 0, ["removed " + tmp], []),
    ("show_after_clear_says_none", ["--show"], 0, ["no CLBlast tuning stored"], []),
    ("fraction_below_one_is_refused", ["--fraction", "0.01"], 2, ["it must be a number >= 1"], []),
    ("unknown_tuner_is_refused", ["--kernels", "xgemm,xgemv"], 2, ["unknown tuner 'xgemv'"], []),
    ("unknown_device_is_refused", ["--device", "no-such-device-42"], 1, ["no-such-device-42"], []),
]

print(f"1..{len(CASES)}", flush=True)
failed = 0
for n, (name, args, want_rc, must, must_not) in enumerate(CASES, 1):
    if args is None:  # the tuners ran in TMPDIR=tmp: only the cache entry may be left
        left = [f for f in os.listdir(tmp) if f.startswith("dlcl-tune-")]
        rc, out = (0 if not left else 1), f"left behind: {left}"
    else:
        rc, out = tune(*args)
    found = lambda s: s.search(out) is not None if isinstance(s, re.Pattern) else s in out
    bad = [s for s in must if not found(s)] + [f"not: {s}" for s in must_not if s in out]
    ok = rc == want_rc and not bad and "Sanitizer" not in out and "runtime error:" not in out
    if not ok:
        failed += 1
        print(f"# dlcl-tune {' '.join(args or [])}: exit {rc} (want {want_rc}); missing {bad}")
        for line in out.splitlines()[-15:]:
            print("# " + line[:300])
    print(f"{'ok' if ok else 'not ok'} {n} - {name}", flush=True)
shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if failed else 0)
