/* openblas-sgemm MxNxK... [--reps R]: best time of R cblas_sgemm calls (row-major
 * C[M][N] = A[M][K] B[K][N]) per size, one line "MxNxK ms" each; a plain N is N x N x N. A separate process from dlcl-bench on purpose: OpenBLAS's threads,
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
        int m = 0, n = 0, k = 0, got = sscanf(argv[i], "%dx%dx%d", &m, &n, &k);
        if (got == 1) n = k = m;
        else if (got != 3) continue;
        if (m < 1 || n < 1 || k < 1) continue;
        size_t big = (size_t)(m > n ? m : n) * k;
        float *a = malloc(big * sizeof *a), *c = malloc((size_t)m * n * sizeof *c);
        if (a == NULL || c == NULL) return 1;
        for (size_t j = 0; j < big; j++) a[j] = (float)((j * 7919) % 1000) / 1000.0f - 0.5f;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, a, n, 0, c, n);
        double best = 1e30;
        for (int r = 0; r < (reps > 0 ? reps : 1); r++) {
            double t0 = now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, a, n, 0, c, n);
            double t = now() - t0;
            best = t < best ? t : best;
        }
        printf("%dx%dx%d %.6f\n", m, n, k, best * 1e3);
        free(a);
        free(c);
    }
    return 0;
}
