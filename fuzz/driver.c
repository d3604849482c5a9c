/* A stand-in for libFuzzer's main, so that the test suite can run the fuzz targets with gcc
 * (fuzz/build.sh builds the real libFuzzer binaries with clang):
 *   fuzz_smoke_TARGET CORPUS_DIR SECONDS
 * runs every file of the corpus, then mutations of them (bit flips, random and boundary
 * bytes and integers, truncation, repeated chunks; from a fixed seed) until SECONDS have
 * passed, and reports one TAP line. A crash or a sanitizer report kills the process: the
 * test fails, and the input is in the scratch directory the target names. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"

#define FUZZ_MAX_INPUT 65536

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint64_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t mutate(uint8_t *d, size_t n)
{
    static const int64_t ints[] = {0, 1, -1, 0x7f, 0x80, 0xff, 0x7fffffff, -0x80000000LL, 0xffffffffLL,
                                   0x7fffffffffffffffLL, 1 << 16, 1 << 24};
    for (int m = 1 + (int)(next() % 4); m > 0; m--) {
        size_t at = n ? next() % n : 0;
        switch (next() % 6) {
        case 0: if (n) d[at] ^= (uint8_t)(1u << (next() % 8)); break;
        case 1: if (n) d[at] = (uint8_t)next(); break;
        case 2: { /* a boundary integer, 4 or 8 bytes, either byte order */
            int64_t v = ints[next() % (sizeof ints / sizeof ints[0])];
            size_t w = next() % 2 ? 8 : 4;
            int be = (int)(next() % 2);
            for (size_t i = 0; i < w && at + i < n; i++) d[at + i] = (uint8_t)(v >> (8 * (be ? w - 1 - i : i)));
            break;
        }
        case 3: n = at; break; /* truncate */
        case 4: { /* repeat a chunk */
            size_t len = 1 + next() % 64;
            if (at + len <= n && n + len <= FUZZ_MAX_INPUT) {
                memmove(d + at + len, d + at, n - at);
                n += len;
            }
            break;
        }
        default: if (n) d[at] = "\0\xff\x7f\x80 ,=[]{}\"\n0123456789"[next() % 18]; break;
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s CORPUS_DIR SECONDS\n", argv[0]);
        return 2;
    }
    double seconds = atof(argv[2]);
    static uint8_t seeds[64][FUZZ_MAX_INPUT], buf[FUZZ_MAX_INPUT];
    size_t sizes[64], n_seeds = 0;
    DIR *dir = opendir(argv[1]);
    struct dirent *e;
    while (dir && (e = readdir(dir)) != NULL && n_seeds < 64) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", argv[1], e->d_name);
        FILE *f = fopen(p, "rb");
        if (f == NULL) continue;
        sizes[n_seeds] = fread(seeds[n_seeds], 1, FUZZ_MAX_INPUT, f);
        fclose(f);
        n_seeds++;
    }
    if (dir) closedir(dir);
    printf("1..1\n");
    if (n_seeds == 0) {
        printf("not ok 1 - no corpus files in %s\n", argv[1]);
        return 1;
    }
    long runs = 0;
    for (size_t i = 0; i < n_seeds; i++, runs++) LLVMFuzzerTestOneInput(seeds[i], sizes[i]);
    double t0 = now();
    while (now() - t0 < seconds) {
        size_t s = next() % n_seeds, n = sizes[s];
        memcpy(buf, seeds[s], n);
        n = mutate(buf, n);
        LLVMFuzzerTestOneInput(buf, n);
        runs++;
    }
    printf("ok 1 - %ld inputs (%zu corpus files and mutations) without a crash\n", runs, n_seeds);
    fuzz_cleanup();
    return 0;
}
