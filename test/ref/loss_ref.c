/* Softmax cross-entropy in double; argmax ties go to the lowest index. */
#include <math.h>

#include "ref.h"

void softmax_xent_ref(const float *z, const int32_t *labels, int n, int classes, float scale, double *loss,
                      int *correct, float *dz)
{
    softmax_xent_smooth_ref(z, labels, n, classes, 0.0f, scale, loss, correct, dz);
}

/* torch.nn.CrossEntropyLoss(label_smoothing=eps): the target is (1 - eps) onehot + eps / K */
void softmax_xent_smooth_ref(const float *z, const int32_t *labels, int n, int classes, float eps, float scale,
                             double *loss, int *correct, float *dz)
{
    for (int i = 0; i < n; i++) {
        const float *r = z + (size_t)i * classes;
        int arg = 0;
        for (int j = 1; j < classes; j++)
            if (r[j] > r[arg]) arg = j;
        double m = r[arg], sum = 0;
        for (int j = 0; j < classes; j++) sum += exp((double)r[j] - m);
        const double lse = log(sum) + m;
        double mean_nll = 0;
        for (int j = 0; j < classes; j++) mean_nll += (lse - r[j]) / classes;
        loss[i] = (1.0 - eps) * (lse - r[labels[i]]) + eps * mean_nll;
        correct[i] = arg == labels[i];
        for (int j = 0; dz && j < classes; j++) {
            const double target = (1.0 - eps) * (j == labels[i]) + (double)eps / classes;
            dz[(size_t)i * classes + j] = (float)((exp((double)r[j] - m) / sum - target) * scale);
        }
    }
}
