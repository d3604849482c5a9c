#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine (run as root):
#   bash tools/setup.sh train   install packages, build, train examples/fashion_lenet.ini
#   bash tools/setup.sh test    install packages, build, run every test; last line "N passed, N failed"
#   bash tools/setup.sh build   install packages and build only
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_PKGS=(meson ninja-build pkg-config gcc libc6-dev ocl-icd-opencl-dev opencl-headers pocl-opencl-icd
            libclblast-dev libclfft-dev libstb-dev zlib1g-dev libinih-dev libcjson-dev libopenblas-dev)
DATA_PKGS=(dataset-fashion-mnist)
TEST_PKGS=(python3 python3-torch)

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

build() {
    if [ ! -f build/build.ninja ]; then
        meson setup build --buildtype=release
    fi
    ninja -C build
}

run_tests() {
    local rc=0
    meson test -C build --print-errorlogs --num-processes 1 "$@" || rc=$?
    # Count the TAP subtests (each test executable runs many cases); a test that died
    # without reporting a failing case counts as one failure.
    python3 - build/meson-logs/testlog.json <<'PY'
import json, re, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    t = json.loads(line)
    out = t.get("stdout") or ""
    ok = len(re.findall(r"^ok \d+", out, re.M))
    bad = len(re.findall(r"^not ok \d+", out, re.M))
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
        ./build/tools/dlcl-devices
        ./build/tools/dlcl-train examples/fashion_lenet.ini "${@:2}" ;;
    test)
        install_pkgs "${BUILD_PKGS[@]}" "${DATA_PKGS[@]}" "${TEST_PKGS[@]}"
        build
        run_tests "${@:2}" ;;
    *)
        echo "usage: bash tools/setup.sh train|test|build" >&2
        exit 2 ;;
esac
