/* Fuzz target: the CIFAR reader (lib/data/cifar.c). The first input byte picks CIFAR-10 or
 * CIFAR-100 records, whether a second, valid file follows the fuzzed one, and whether the
 * input is also the class-name file beside the batches. */
#include "fuzz.h"

#include "data/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t good[2 * 3074];
    if (size < 1) return 0;
    int classes = data[0] & 1 ? 100 : 10;
    const char *paths[2];
    char first[256];
    snprintf(first, sizeof first, "%s", fuzz_file("batch.bin", data + 1, size - 1));
    paths[0] = first;
    paths[1] = fuzz_file("good.bin", good, (size_t)(classes == 10 ? 3073 : 3074) * (data[0] & 2 ? 2 : 1));
    data_set ds;
    if (data_set_load_cifar(paths, data[0] & 4 ? 2 : 1, classes, &ds) == DLCL_OK) data_set_free(&ds);
    const char *meta = fuzz_path(classes == 10 ? "batches.meta.txt" : "fine_label_names.txt");
    if (data[0] & 8)
        fuzz_file(classes == 10 ? "batches.meta.txt" : "fine_label_names.txt", data + 1, size - 1);
    else
        remove(meta);
    char **names;
    if (cifar_class_names(first, classes, &names) == DLCL_OK) data_names_free(names);
    return 0;
}
