/* SGD as torch.optim.SGD (dampening 0), one work-item per parameter:
 *   g = grad + wd * w;  v = momentum * v + g;  step = nesterov ? g + momentum * v : v;  w -= lr * step
 * With momentum 0, v stays unused and step = g. */
__kernel void sgd_step(const int n, __global float *w, const int wo, __global const float *grad, const int go,
                       __global float *v, const int vo, const float lr, const float momentum,
                       const float weight_decay, const int nesterov)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    const float wi = w[wo + i];
    const float g = mad(weight_decay, wi, grad[go + i]);
    const float vn = mad(momentum, v[vo + i], g);
    v[vo + i] = vn;
    const float step = nesterov ? mad(momentum, vn, g) : (momentum != 0.0f ? vn : g);
    w[wo + i] = wi - lr * step;
}

/* The same step for CPU devices, a contiguous span of `span` parameters per work-item: a
 * plain loop that LLVM vectorises, and a few hundred work-items rather than one per
 * parameter (PoCL schedules work-groups one by one: LeNet's 3.3M parameters were 12.8k
 * work-groups of 256). */
__kernel void sgd_step_rows(const int n, __global float *restrict w, const int wo, __global const float *restrict grad,
                            const int go, __global float *restrict v, const int vo, const float lr,
                            const float momentum, const float weight_decay, const int nesterov, const int span)
{
    const int i0 = get_global_id(0) * span;
    const int i1 = min(n, i0 + span);
    __global float *wp = w + wo;
    __global const float *gp = grad + go;
    __global float *vp = v + vo;
    if (nesterov) {
        for (int i = i0; i < i1; i++) {
            const float wi = wp[i], g = mad(weight_decay, wi, gp[i]), vn = mad(momentum, vp[i], g);
            vp[i] = vn;
            wp[i] = wi - lr * mad(momentum, vn, g);
        }
    } else if (momentum != 0.0f) {
        for (int i = i0; i < i1; i++) {
            const float wi = wp[i], vn = mad(momentum, vp[i], mad(weight_decay, wi, gp[i]));
            vp[i] = vn;
            wp[i] = wi - lr * vn;
        }
    } else {
        for (int i = i0; i < i1; i++) {
            const float wi = wp[i], g = mad(weight_decay, wi, gp[i]);
            vp[i] = g; /* as sgd_step: v = 0 * v + g */
            wp[i] = wi - lr * g;
        }
    }
}
