/* Fuzz target: the IDX reader (lib/data/idx.c), raw or gzip. The first input byte picks
 * which file of the pair is fuzzed (images or labels); the other is a small valid file. */
#include "fuzz.h"

#include "data/data.h"

static const uint8_t good_images[4 + 12 + 2 * 3 * 3] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3};
static const uint8_t good_labels[4 + 4 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 7};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *img, *lbl;
    if (data[0] & 1) {
        img = fuzz_file("images.idx", data + 1, size - 1);
        lbl = fuzz_file("labels.idx", good_labels, sizeof good_labels);
    } else {
        img = fuzz_file("images.idx", good_images, sizeof good_images);
        lbl = fuzz_file("labels.idx", data + 1, size - 1);
    }
    data_set ds;
    if (data_set_load_idx(img, lbl, 10, &ds) == DLCL_OK) data_set_free(&ds);
    return 0;
}
