#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine (run as root):
#   bash tools/setup.sh train   install packages, build, train examples/fashion_lenet.ini
#   bash tools/setup.sh test    install packages, build, run every test; last line "N passed, N failed"
#   bash tools/setup.sh build   install packages and build only
#   bash tools/setup.sh sanitize  build into build-asan/ with ASan+UBSan, run every test with
#                                 leak checking and halting on undefined behaviour
#   bash tools/setup.sh fuzz [S]  build the libFuzzer targets (clang 14), run each S seconds (600)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_PKGS=(meson ninja-build pkg-config gcc libc6-dev ocl-icd-opencl-dev opencl-headers pocl-opencl-icd
            libclblast-dev libclfft-dev libstb-dev zlib1g-dev libinih-dev libcjson-dev libopenblas-dev
            libopenmpi-dev openmpi-bin
            protobuf-c-compiler libprotobuf-c-dev libonnx-dev)  # ONNX import: protoc-c generates C from onnx.proto; Open MPI: mpirun -np N dlcl-train (data-parallel), built where found
DATA_PKGS=(dataset-fashion-mnist fortunes)  # fortunes: the English text of the sequence examples (tools/text_corpus.py)
TEST_PKGS=(python3 python3-torch python3-torchvision python3-onnx clblast-utils)  # python3-onnx: test/onnx_import.py; clblast-utils: CLBlast's tuners, for dlcl-tune (test/tune_tool.py)
FUZZ_PKGS=(clang-14 libclang-rt-14-dev)

need_install() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || return 0
    done
    return 1
}

install_pkgs() {
    if need_install "$@"; then
        echo "== installing Debian packages: $*"
        export DEBIAN_FRONTEND=noninteractive
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    fi
}

# data/fortunes/{train,test}.txt from Debian's fortunes, split by tools/text_corpus.py's fixed rule
corpus() {
    [ -f data/fortunes/train.txt ] || python3 tools/text_corpus.py data/fortunes
}

build() {
    if [ ! -f build/build.ninja ]; then
        meson setup build --buildtype=release
    fi
    ninja -C build
}

run_tests() {
    local rc=0 dir=${TEST_BUILD_DIR:-build}
    meson test -C "$dir" --print-errorlogs --num-processes 1 "$@" || rc=$?
    # Count the TAP subtests (each test executable runs many cases); a test that died
    # without reporting a failing case counts as one failure.
    python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, re, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    t = json.loads(line)
    out = t.get("stdout") or ""
    skip = len(re.findall(r"^ok \d+.*# SKIP", out, re.M | re.I))
    ok = len(re.findall(r"^ok \d+", out, re.M)) - skip
    bad = len(re.findall(r"^not ok \d+", out, re.M))
    skipped += skip
    if re.search(r"^1\.\.0 # SKIP", out, re.M):
        skipped += 1
    if t["result"] not in ("OK", "EXPECTEDFAIL", "SKIP") and bad == 0:
        bad = 1
    passed += ok
    failed += bad
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
    return $rc
}

case "${1:-}" in
    build)
        install_pkgs "${BUILD_PKGS[@]}"
        build ;;
    train)
        install_pkgs "${BUILD_PKGS[@]}" "${DATA_PKGS[@]}"
        build
        corpus
        ./build/tools/dlcl-devices
        ./build/tools/dlcl-train examples/fashion_lenet.ini "${@:2}" ;;
    test)
        install_pkgs "${BUILD_PKGS[@]}" "${DATA_PKGS[@]}" "${TEST_PKGS[@]}"
        build
        corpus
        run_tests "${@:2}" ;;
    sanitize)
        install_pkgs "${BUILD_PKGS[@]}" "${DATA_PKGS[@]}" "${TEST_PKGS[@]}"
        [ -f build-asan/build.ninja ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false
        ninja -C build-asan
        # Leaks are checked; any UBSan report aborts the test that hit it; the Python tests also
        # fail a case whose tool printed a report. The settings below are for third-party
        # libraries, none for dlcl (dlcl is C: it has no new/delete): clFFT deletes a plan's
        # action through a base type of the wrong size (new_delete_type_mismatch), clFFT and
        # PoCL leak (tools/lsan.supp), and after a process has used clFFT LSan's tracer
        # crashes on a stale dynamic-TLS entry when it scans TLS as a root (use_tls=0: fewer
        # roots can only add reports, never hide one).
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:new_delete_type_mismatch=0:${ASAN_OPTIONS:-}
        export LSAN_OPTIONS=suppressions=$PWD/tools/lsan.supp:use_tls=0:${LSAN_OPTIONS:-}
        export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}
        TEST_BUILD_DIR=build-asan run_tests "${@:2}" ;;
    fuzz)
        install_pkgs "${BUILD_PKGS[@]}" "${FUZZ_PKGS[@]}"
        bash fuzz/build.sh
        secs=${2:-600}
        for t in config idx cifar safetensors image onnx; do
            echo "== fuzz_$t for ${secs}s"
            build-fuzz/fuzz_$t -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
                -print_final_stats=1 -artifact_prefix="build-fuzz/$t-" "build-fuzz/corpus-$t" "fuzz/corpus/$t" 2>&1 |
                grep -E "^stat::number_of_executed_units|ERROR|SUMMARY|Test unit written" || true
        done ;;
    *)
        echo "usage: bash tools/setup.sh train|test|build|sanitize|fuzz [seconds]" >&2
        exit 2 ;;
esac
