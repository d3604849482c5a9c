/* Fuzz target: the safetensors reader (lib/io/safetensors.c), every dtype it widens and int64. */
#include "fuzz.h"

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_file f;
    if (st_read(fuzz_file("w.safetensors", data, size), &f) != DLCL_OK) return 0;
    volatile float sink = 0;
    volatile uint64_t isink = 0; /* unsigned: int64 sums may wrap */
    for (size_t i = 0; i < f.count; i++) {
        int64_t n = 1;
        for (int d = 0; d < f.tensors[i].ndim; d++) n *= f.tensors[i].dims[d];
        for (int64_t j = 0; j < n; j++) { /* every element must be readable, in the buffer of its dtype */
            if (f.tensors[i].dtype == ST_I64) isink += (uint64_t)f.tensors[i].i64[j];
            else sink += f.tensors[i].data[j];
        }
        (void)st_find(&f, f.tensors[i].name);
    }
    st_file_free(&f);
    return 0;
}
