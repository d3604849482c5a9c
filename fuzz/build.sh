#!/usr/bin/env bash
# Builds the libFuzzer targets with clang 14 (Debian: clang-14 libclang-rt-14-dev) and
# AddressSanitizer + UndefinedBehaviorSanitizer into build-fuzz/:
#   bash fuzz/build.sh
#   build-fuzz/fuzz_config -max_total_time=600 build-fuzz/corpus-config fuzz/corpus/config
# (new inputs go to the first directory; the repo's seed corpus stays as it is). The targets
# compile the parsers' sources directly: no OpenCL device is involved.
set -euo pipefail
cd "$(dirname "$0")/.."
CC=${CC:-clang-14}
OUT=build-fuzz
mkdir -p "$OUT"
# the ONNX import's protobuf code, generated as lib/io/meson.build does
PROTO=${ONNX_PROTO:-/usr/include/onnx/onnx.proto}
mkdir -p "$OUT/gen/io"
protoc-c --proto_path="$(dirname "$PROTO")" --c_out="$OUT/gen/io" "$PROTO"
SRC=(lib/io/config.c lib/io/expand.c lib/io/expr.c lib/io/safetensors.c lib/io/onnx.c lib/io/onnx_fold.c
     lib/io/onnx_ops.c "$OUT/gen/io/onnx.pb-c.c" lib/data/source.c lib/data/idx.c lib/data/cifar.c
     lib/data/image.c lib/data/transform.c lib/data/resample.c lib/runtime/error.c lib/runtime/cache.c)
FLAGS=(-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -std=gnu11 -D_GNU_SOURCE -DCL_TARGET_OPENCL_VERSION=120 -DDLCL_BUILDING -Iinclude -Ilib -I$OUT/gen)
FLAGS+=($(pkg-config --cflags zlib inih libcjson stb libprotobuf-c))
LIBS=($(pkg-config --libs zlib inih libcjson stb libprotobuf-c) -lOpenCL -lm -lpthread)
for t in config idx cifar safetensors image onnx; do
    extra=()
    [ "$t" = image ] && extra=(fuzz/stb_impl.c) # stb_image itself instrumented, not the prebuilt libstb
    "$CC" "${FLAGS[@]}" "fuzz/fuzz_$t.c" "${extra[@]}" "${SRC[@]}" "${LIBS[@]}" -o "$OUT/fuzz_$t"
    mkdir -p "$OUT/corpus-$t"
    echo "built $OUT/fuzz_$t"
done
