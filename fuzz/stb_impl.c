/* stb_image compiled into the image fuzz target (instead of Debian's prebuilt libstb), so
 * that libFuzzer sees its branches and the sanitizers check its memory accesses. */
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
