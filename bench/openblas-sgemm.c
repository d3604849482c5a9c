/* openblas-sgemm N... [--reps R]: best time of R square cblas_sgemm calls per size, one
 * line "n ms" each. A separate process from dlcl-bench on purpose: OpenBLAS's threads,
 * once started, compete with PoCL's for the same cores. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int reps = 5;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[i + 1]);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0) {
            i++;
            continue;
        }
        int n = atoi(argv[i]);
        if (n < 1) continue;
        float *a = malloc((size_t)n * n * sizeof *a), *c = malloc((size_t)n * n * sizeof *c);
        if (a == NULL || c == NULL) return 1;
        for (size_t j = 0; j < (size_t)n * n; j++) a[j] = (float)((j * 7919) % 1000) / 1000.0f - 0.5f;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, a, n, 0, c, n);
        double best = 1e30;
        for (int r = 0; r < (reps > 0 ? reps : 1); r++) {
            double t0 = now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, a, n, 0, c, n);
            double t = now() - t0;
            best = t < best ? t : best;
        }
        printf("%d %.6f\n", n, best * 1e3);
        free(a);
        free(c);
    }
    return 0;
}
