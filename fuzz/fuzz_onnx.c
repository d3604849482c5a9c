/* Fuzz target: the ONNX import (lib/io/onnx*.c and the protobuf code protoc-c generates), as
 * dlcl_net_create reaches it through cfg_load_with: a bare .onnx path with --set overrides,
 * then (for a model that imports) a config naming it with [net] model =, which also restates
 * the input shape. The weights stay on the host: no OpenCL context is created. */
#include "fuzz.h"

#include "io/config.h"

static const char ini[] = "[net]\nmodel = m.onnx\nbatch = 2\nclasses = 7\n[data]\nscale = 0.5\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("m.onnx", data, size);
    const char *sets[] = {"net.batch=3", "data.scale=0.5"};
    cfg c;
    if (cfg_load_with(path, sets, 2, &c) != DLCL_OK) return 0;
    cfg_free(&c);
    if (cfg_load(fuzz_file("net.ini", (const uint8_t *)ini, sizeof ini - 1), &c) == DLCL_OK) cfg_free(&c);
    return 0;
}
