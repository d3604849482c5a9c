/* Softmax cross-entropy in double; argmax ties go to the lowest index. */
#include <math.h>

#include "ref.h"

void softmax_xent_ref(const float *z, const int32_t *labels, int n, int classes, float scale, double *loss,
                      int *correct, float *dz)
{
    for (int i = 0; i < n; i++) {
        const float *r = z + (size_t)i * classes;
        int arg = 0;
        for (int j = 1; j < classes; j++)
            if (r[j] > r[arg]) arg = j;
        double m = r[arg], sum = 0;
        for (int j = 0; j < classes; j++) sum += exp((double)r[j] - m);
        loss[i] = log(sum) + m - r[labels[i]];
        correct[i] = arg == labels[i];
        for (int j = 0; dz && j < classes; j++)
            dz[(size_t)i * classes + j] = (float)((exp((double)r[j] - m) / sum - (j == labels[i])) * scale);
    }
}
