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
