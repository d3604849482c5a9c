/* Softmax cross-entropy with label smoothing eps (torch.nn.CrossEntropyLoss(label_smoothing))
 * and accuracy, one work-item per sample, K classes:
 *   loss_i = (1 - eps) (lse_i - z_i,label) + eps mean_j (lse_i - z_ij),  lse_i = log sum_j exp(z_ij)
 *   dz_ij  = (softmax_ij - (1 - eps) [j == label] - eps / K) * grad_scale
 * stats[2i] = loss_i, stats[2i+1] = 1 if argmax_j z_ij == label (first maximum wins). */
__kernel void softmax_xent(__global const float *z, const int zo, __global const int *labels,
                           const int n, const int classes, const float grad_scale, const int want_grad,
                           __global float *dz, const int dzo, __global float *stats, const int so,
                           const float smoothing)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    __global const float *row = z + zo + (size_t)i * classes;
    const int label = labels[i];
    float m = row[0];
    int arg = 0;
    for (int j = 1; j < classes; j++)
        if (row[j] > m) {
            m = row[j];
            arg = j;
        }
    float sum = 0.0f, gap = 0.0f; /* gap: sum_j (m - z_ij) >= 0, no cancellation */
    for (int j = 0; j < classes; j++) sum += exp(row[j] - m);
    if (smoothing != 0.0f)
        for (int j = 0; j < classes; j++) gap += m - row[j];
    const float zl = row[label];
    if (want_grad) {
        __global float *drow = dz + dzo + (size_t)i * classes;
        const float inv = 1.0f / sum, off = smoothing / classes, on = 1.0f - smoothing + off;
        for (int j = 0; j < classes; j++) /* read before write: dz may alias z */
            drow[j] = (exp(row[j] - m) * inv - (j == label ? on : off)) * grad_scale;
    }
    /* not log(sum) + m - zl: m's rounding swamps the loss at |z| ~ 1e4 */
    const float nll = m - zl;
    stats[so + 2 * i] = (smoothing != 0.0f ? mad(smoothing, gap / classes - nll, nll) : nll) + log(sum);
    stats[so + 2 * i + 1] = arg == label ? 1.0f : 0.0f;
}
