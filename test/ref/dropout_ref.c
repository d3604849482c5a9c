/* The mask of dropout.cl, reproduced: element i is kept when hash(i, seed) >= rate * 2^32. */
#include <math.h>

#include "ref.h"

static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

int dropout_keep_ref(uint32_t i, uint64_t seed, float rate)
{
    uint32_t h = mix(mix(i ^ (uint32_t)seed) ^ (uint32_t)(seed >> 32));
    double t = ldexp((double)rate, 32);
    uint32_t threshold = t >= 4294967295.0 ? 4294967295u : (uint32_t)t;
    return h >= threshold;
}
