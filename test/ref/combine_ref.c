/* Plain-C twins of combine.cl. */
#include "ref.h"

void add_ref(const float *const *xs, int n_in, size_t n, int relu, float *y)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < n_in; k++) s += xs[k][i];
        y[i] = (float)(relu && s < 0 ? 0 : s);
    }
}

void relu_grad_ref(const float *y, const float *dy, size_t n, float *dz)
{
    for (size_t i = 0; i < n; i++) dz[i] = y[i] > 0 ? dy[i] : 0.0f;
}

void upsample_nearest_forward_ref(int planes, int h, int w, int s, const float *x, float *y)
{
    for (int p = 0; p < planes; p++)
        for (int i = 0; i < h * s; i++)
            for (int j = 0; j < w * s; j++)
                y[((size_t)p * h * s + i) * w * s + j] = x[((size_t)p * h + i / s) * w + j / s];
}

void upsample_nearest_backward_ref(int planes, int h, int w, int s, const float *dy, float *dx)
{
    for (size_t i = 0; i < (size_t)planes * h * w; i++) dx[i] = 0;
    for (int p = 0; p < planes; p++)
        for (int i = 0; i < h * s; i++)
            for (int j = 0; j < w * s; j++)
                dx[((size_t)p * h + i / s) * w + j / s] += dy[((size_t)p * h * s + i) * w * s + j];
}
