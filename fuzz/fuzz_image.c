/* Fuzz target: the image paths of image folders and dlcl-predict (lib/data/image.c: the header
 * check, stb_image decode, channel conversion; lib/data/transform.c: resize, crop), to 1 and 3
 * channels, with a 4-Mpixel limit. */
#include "fuzz.h"

#include "data/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static float out[3 * 28 * 28];
    const char *p = fuzz_file("image", data, size);
    data_transform t = {.c = 1, .h = 28, .w = 28, .scale = 1.0f / 255.0f};
    for (int ch = 0; ch < 3; ch++) {
        t.mean[ch] = 0.5f;
        t.std[ch] = 0.25f;
    }
    int w, h;
    (void)image_probe(p, 4L << 20, &w, &h);
    (void)image_load(p, &t, 4L << 20, out);
    t.c = 3;
    t.resize = size % 2 ? 32 : 0; /* short side to 32, centre 28 x 28 */
    t.crop = size % 3 == 0;
    (void)image_load(p, &t, 4L << 20, out);
    return 0;
}
