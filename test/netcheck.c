/* Whole-net gradient checks shared by the test programs: every trainable parameter's
 * gradient (a sample of them) against central differences of the loss. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/net/net.h"
#include "test.h"

/* Mean training-mode loss of the batch at the net's current parameters (batch norm uses the
 * batch's statistics): a training step with learning rate 0, which changes no weight. */
static dlcl_status mean_loss(dlcl_net *net, const void *x, const int32_t *y, int n, double *out)
{
    double sum;
    int c;
    dlcl_status s = dlcl_net_train_batch(net, x, y, n, &sum, &c);
    *out = sum / (n * net->label_len);
    return s;
}

void t_check_gradients_on(dlcl_net *net, const char *name, const void *x, const int32_t *y, int n, int stride)
{
    size_t np = net->n_params;
    float *w = malloc(np * sizeof *w), *g = malloc(np * sizeof *g);
    uint64_t rng = t_seed() ^ 0x6664ull;
    double loss;
    int correct;
    dlcl_status s = w && g ? dlcl_net_train_batch(net, x, y, n, &loss, &correct) : DLCL_ERR_OUT_OF_MEMORY;
    cl_int e1 = clEnqueueReadBuffer(net->ctx->queue, net->grads, CL_TRUE, 0, np * 4, g, 0, NULL, NULL);
    cl_int e2 = clEnqueueReadBuffer(net->ctx->queue, net->params, CL_TRUE, 0, np * 4, w, 0, NULL, NULL);
    int bad = 0, checked = 0;
    const float eps = 1e-2f;
    for (size_t i = 0; s == DLCL_OK && e1 == CL_SUCCESS && i < np; i += 1 + t_rand_u32(&rng) % (uint32_t)stride) {
        float orig = w[i];
        double lp = 0, lm = 0;
        w[i] = orig + eps;
        clEnqueueWriteBuffer(net->ctx->queue, net->params, CL_TRUE, 0, np * 4, w, 0, NULL, NULL);
        s = mean_loss(net, x, y, n, &lp);
        w[i] = orig - eps;
        clEnqueueWriteBuffer(net->ctx->queue, net->params, CL_TRUE, 0, np * 4, w, 0, NULL, NULL);
        if (s == DLCL_OK) s = mean_loss(net, x, y, n, &lm);
        w[i] = orig;
        double fd = (lp - lm) / (2 * eps);
        checked++;
        if (fabs(fd - g[i]) > 2e-3 + 3e-2 * fabs(fd) && bad++ < 5)
            printf("# %s: param %zu: analytic %.6g, finite difference %.6g\n", name, i, (double)g[i], fd);
    }
    free(w), free(g);
    T_CHECK(s == DLCL_OK && e1 == CL_SUCCESS && e2 == CL_SUCCESS, "%s: %s", name, dlcl_last_error());
    T_CHECK(bad == 0, "%s: %d of %d parameters disagree with finite differences", name, bad, checked);
    T_CHECK(checked > 30, "%s: only %d parameters checked", name, checked);
}

void t_check_net_gradients(const char *name, const char *text)
{
    char path_buf[600];
    const char *dir = t_tmpdir(0), *path = NULL;
    if (dir != NULL) {
        snprintf(path_buf, sizeof path_buf, "%s/fd-net.ini", dir);
        path = t_write_file(path_buf, text, strlen(text)) ? path_buf : NULL;
    }
    T_CHECK(path != NULL, "cannot write config");
    dlcl_net *net = NULL;
    T_OK(dlcl_net_create(path, NULL, 0, NULL, &net));
    enum { N = 3 };
    size_t per = layer_shape_numel(net->input), labels = N * (size_t)net->label_len;
    float *x = malloc(N * per * sizeof *x);
    int32_t *y = malloc(labels * sizeof *y);
    uint64_t rng = t_seed();
    for (size_t i = 0; y && i < labels; i++) y[i] = (int32_t)(t_rand_u32(&rng) % (uint32_t)net->classes);
    if (x && net->input.dtype == DLCL_INT32)
        for (size_t i = 0; i < N * per; i++) ((int32_t *)x)[i] = i % 4 == 1 ? 1 : (int32_t)(t_rand_u32(&rng) % (uint32_t)net->vocab);
    else if (x)
        t_fill_uniform(&rng, x, N * per, -1, 1);
    if (x && y) t_check_gradients_on(net, name, x, y, N, 3);
    else t_fail(__FILE__, __LINE__, "%s: out of memory", name);
    free(x), free(y);
    dlcl_net_free(net);
}
