/* torch.optim.SGD's step (dampening 0), written as its documentation states it. */
#include "ref.h"

void sgd_step_ref(float *w, const float *g, float *v, size_t n, float lr, float momentum, float wd, int nesterov)
{
    for (size_t i = 0; i < n; i++) {
        double d = (double)g[i] + (double)wd * w[i];
        if (momentum != 0.0f) {
            v[i] = (float)((double)momentum * v[i] + d);
            d = nesterov ? d + (double)momentum * v[i] : v[i];
        }
        w[i] = (float)(w[i] - (double)lr * d);
    }
}
