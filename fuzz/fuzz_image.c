/* Fuzz target: the image path of dlcl-predict (lib/data/image.c: stb_image decode, channel
 * conversion, bilinear resize), to 1 and 3 channels, with a 4-Mpixel limit. */
#include "fuzz.h"

#include "data/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static float out[3 * 28 * 28];
    const char *p = fuzz_file("image", data, size);
    (void)image_load(p, 1, 28, 28, 1.0 / 255.0, 0.5, 0.25, 4L << 20, out);
    (void)image_load(p, 3, 28, 28, 1.0 / 255.0, 0.5, 0.25, 4L << 20, out);
    return 0;
}
