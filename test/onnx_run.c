/* Test helper for test/onnx_import.py and test/fp16.py:
 * onnx_run MODEL.onnx|CONFIG.ini IN.f32 COUNT LOGITS.f32 PROBS.f32 [SECTION.KEY=VALUE]...
 * builds the net for inference with batch COUNT and the overrides, runs COUNT samples of raw float32 input
 * through dlcl_net_logits and dlcl_net_predict and writes both. A failure prints
 * "STATUS: message" and exits 1. */
#include <stdio.h>
#include <stdlib.h>

#include "dlcl.h"

static int fail(dlcl_status s)
{
    printf("%s: %s\n", dlcl_status_str(s), dlcl_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 6 || argc > 6 + 8) {
        fprintf(stderr, "usage: onnx_run MODEL IN.f32 COUNT LOGITS.f32 PROBS.f32 [SECTION.KEY=VALUE]... (at most 8)\n");
        return 2;
    }
    int count = atoi(argv[3]);
    char batch[32];
    snprintf(batch, sizeof batch, "net.batch=%d", count);
    const char *over[9] = {batch};
    for (int i = 6; i < argc; i++) over[i - 5] = argv[i];
    dlcl_net *net = NULL;
    dlcl_status s = dlcl_net_create_inference(argv[1], over, (size_t)(argc - 5), NULL, &net);
    if (s != DLCL_OK) return fail(s);
    dlcl_net_info info;
    dlcl_net_get_info(net, &info);
    size_t nx = info.in_numel * (size_t)count, ny = (size_t)info.classes * (size_t)count;
    float *x = malloc(nx * sizeof *x), *y = malloc(ny * sizeof *y);
    FILE *f = fopen(argv[2], "rb");
    if (!x || !y || !f || fread(x, sizeof *x, nx, f) != nx) {
        fprintf(stderr, "onnx_run: cannot read %zu floats from %s\n", nx, argv[2]);
        return 2;
    }
    fclose(f);
    for (int k = 0; k < 2; k++) {
        s = k == 0 ? dlcl_net_logits(net, x, count, y) : dlcl_net_predict(net, x, count, y);
        if (s != DLCL_OK) return fail(s);
        FILE *o = fopen(argv[4 + k], "wb");
        if (!o || fwrite(y, sizeof *y, ny, o) != ny || fclose(o) != 0) return 2;
    }
    printf("ok classes=%d input=%zu precision=%s device_mib=%.1f\n", info.classes, info.in_numel, info.precision,
           info.device_bytes / 1048576.0);
    free(x);
    free(y);
    dlcl_net_free(net);
    return 0;
}
