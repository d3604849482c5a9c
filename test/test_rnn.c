/* The lstm and gru layers (lib/layers/rnn.c, lib/ops/rnn.c, cl_kernels/rnn.cl): forward and
 * backward of stacked layers against the double reference in ref/rnn_ref.c on odd sizes,
 * with and without biases, a partial batch, dropout between layers and gradient
 * accumulation; gradients of whole nets against finite differences; outputs and every
 * gradient against torch.nn.LSTM / nn.GRU through test/torch_rnn.py, with torch's weights
 * loaded by name; and malformed configs. The layer is driven directly through its vtable
 * inside a net built from a config, on guarded device buffers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/io/safetensors.h"
#include "../lib/net/net.h"
#include "dbuf.h"
#include "ref/ref.h"
#include "test.h"

static const char *write_cfg(const char *name, const char *text)
{
    static char path[600];
    const char *dir = t_tmpdir(0);
    if (dir == NULL) return NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return t_write_file(path, text, strlen(text)) ? path : NULL;
}

/* One configuration of the layer under test. */
typedef struct rnn_cfg {
    int gru;
    int batch, count; /* the net's batch; the samples of this step */
    int T, D, H, layers, bias;
    float dropout;
    int training;
} rnn_cfg;

static void label_of(const rnn_cfg *k, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s: %d of batch %d, T %d, D %d, hidden %d, %d layers, bias %d, dropout %g, training %d, "
             "seed %llu", k->gru ? "gru" : "lstm", k->count, k->batch, k->T, k->D, k->H, k->layers, k->bias,
             (double)k->dropout, k->training, (unsigned long long)t_seed());
}

/* A net whose loss reads the rnn layer itself (classes = T * hidden). */
static dlcl_status make_net(const rnn_cfg *k, dlcl_net **net)
{
    char text[512];
    snprintf(text, sizeof text,
             "[net]\ninput = %d,%d\nclasses = %d\nbatch = %d\nseed = 3\n[optimizer]\nlearning_rate = 0\n"
             "[rnn]\ntype = %s\nhidden = %d\nlayers = %d\nbias = %d\ndropout = %g\n",
             k->T, k->D, k->T * k->H, k->batch, k->gru ? "gru" : "lstm", k->H, k->layers, k->bias, (double)k->dropout);
    const char *path = write_cfg("rnn.ini", text);
    if (path == NULL) return dlcl__err(DLCL_ERR_IO, "cannot write the config");
    return dlcl_net_create(path, NULL, 0, NULL, net);
}

static bool read_region(dlcl_net *net, cl_mem m, float *dst)
{
    return clEnqueueReadBuffer(net->ctx->queue, m, CL_TRUE, 0, net->n_params * sizeof(float), dst, 0, NULL, NULL) ==
           CL_SUCCESS;
}

static bool write_region(dlcl_net *net, cl_mem m, const float *src)
{
    return clEnqueueWriteBuffer(net->ctx->queue, m, CL_TRUE, 0, net->n_params * sizeof(float), src, 0, NULL, NULL) ==
           CL_SUCCESS;
}

/* Guarded device buffers as dbuf.h's, but in the net's own context (the layer runs on its
 * queue; a dbuf lives in the tests' shared context, which the net's queue does not order). */
static bool gbuf_new(dlcl_net *net, dbuf *d, const float *host, float fill, size_t n)
{
    d->n = n;
    d->bytes = (n + 2 * GUARD) * sizeof(float);
    float *tmp = malloc(d->bytes);
    cl_int err = CL_OUT_OF_HOST_MEMORY;
    d->mem = tmp ? clCreateBuffer(net->ctx->context, CL_MEM_READ_WRITE, d->bytes, NULL, &err) : NULL;
    for (size_t i = 0; tmp && i < n + 2 * GUARD; i++)
        tmp[i] = i < GUARD || i >= GUARD + n ? SENTINEL : host ? host[i - GUARD] : fill;
    bool ok = err == CL_SUCCESS &&
              clEnqueueWriteBuffer(net->ctx->queue, d->mem, CL_TRUE, 0, d->bytes, tmp, 0, NULL, NULL) == CL_SUCCESS;
    free(tmp);
    return ok;
}

static bool gbuf_read(dlcl_net *net, const dbuf *d, float *host, const char *label)
{
    float *tmp = malloc(d->bytes);
    bool ok = tmp &&
              clEnqueueReadBuffer(net->ctx->queue, d->mem, CL_TRUE, 0, d->bytes, tmp, 0, NULL, NULL) == CL_SUCCESS;
    for (size_t i = 0; ok && i < GUARD; i++)
        if (tmp[i] != SENTINEL || tmp[GUARD + d->n + i] != SENTINEL) {
            printf("# %s: guard element %zu overwritten\n", label, i);
            ok = false;
        }
    if (ok) memcpy(host, tmp + GUARD, d->n * sizeof(float));
    free(tmp);
    return ok;
}

/* The layer's forward, then (dy not NULL) its backward, on guarded buffers (y and dx start
 * as NaN, so an element not written shows): y and dx from them, the gradients region into
 * grads (its content before the backward from grads_in when not NULL). */
static bool run_layer(dlcl_net *net, const rnn_cfg *k, uint64_t seed, unsigned accumulate, const float *x,
                      const float *dy, const float *grads_in, float *y, float *dx, float *grads)
{
    layer *l = &net->layers[0];
    const size_t nx = (size_t)k->count * k->T * k->D, ny = (size_t)k->count * k->T * k->H;
    dbuf X = {0}, Y = {0}, DY = {0}, DX = {0};
    bool ok = gbuf_new(net, &X, x, 0, nx) && gbuf_new(net, &Y, NULL, NAN, ny) && gbuf_new(net, &DY, dy, 0, ny) &&
              gbuf_new(net, &DX, NULL, NAN, nx);
    if (ok && grads_in) ok = write_region(net, net->grads, grads_in);
    op_buf xs[1] = {ob(&X)}, dxs[1] = {ob(&DX)};
    layer_io io = {.ctx = net->ctx, .batch = net->batch, .count = k->count, .training = k->training, .x = xs,
                   .dx = dxs, .y = ob(&Y), .dy = ob(&DY), .params = net->params, .grads = net->grads,
                   .buffers = net->buffers, .counters = net->counters, .ws = net->ws, .seed = seed,
                   .accumulate = accumulate};
    dlcl_status s = ok ? l->type->forward(l, &io) : DLCL_ERR_OUT_OF_MEMORY;
    if (s == DLCL_OK && dy) s = l->type->backward(l, &io);
    ok = s == DLCL_OK && gbuf_read(net, &Y, y, "y") &&
         (!dy || (gbuf_read(net, &DX, dx, "dx") && read_region(net, net->grads, grads)));
    if (s != DLCL_OK) printf("# layer: %s\n", dlcl_last_error());
    dbuf_free(&X), dbuf_free(&Y), dbuf_free(&DY), dbuf_free(&DX);
    return ok;
}

/* The stacked reference: level by level through rnn_ref.c, dropout masks as the layer draws
 * them (dropout.cl's hash of mix64(seed + level)), gradients into the region's layout. */
static void stack_ref(const layer *l, const rnn_cfg *k, uint64_t seed, const float *w, const float *x, const float *dy,
                      float *y, float *dx, float *g)
{
    const int L = k->layers, per = k->bias ? 4 : 2;
    const size_t nh = (size_t)k->count * k->T * k->H, nx = (size_t)k->count * k->T * k->D;
    const bool drop = k->training && k->dropout > 0.0f;
    float **in = calloc((size_t)L, sizeof *in), **out = calloc((size_t)L, sizeof *out), *d = malloc(nh * sizeof *d),
          *dxk = malloc((nh > nx ? nh : nx) * sizeof *dxk), *scale = malloc(nh * L * sizeof *scale);
    for (int lv = 0; lv < L; lv++) {
        const layer_param *p = &l->params[lv * per];
        const float *bi = k->bias ? w + p[2].off : NULL, *bh = k->bias ? w + p[3].off : NULL;
        const int din = lv ? k->H : k->D;
        in[lv] = malloc((lv ? nh : nx) * sizeof **in);
        out[lv] = malloc(nh * sizeof **out);
        memcpy(in[lv], lv ? out[lv - 1] : x, (lv ? nh : nx) * sizeof(float));
        for (size_t i = 0; lv > 0 && i < nh; i++) {
            scale[lv * nh + i] = !drop ? 1.0f : dropout_keep_ref((uint32_t)i, dlcl__mix64(seed + (uint64_t)lv),
                                                                 k->dropout) ? 1.0f / (1.0f - k->dropout) : 0.0f;
            in[lv][i] *= scale[lv * nh + i];
        }
        rnn_forward_ref(k->gru, k->count, k->T, din, k->H, in[lv], w + p[0].off, w + p[1].off, bi, bh, out[lv]);
    }
    memcpy(y, out[L - 1], nh * sizeof *y);
    if (dy) memcpy(d, dy, nh * sizeof *d);
    for (int lv = L - 1; dy && lv >= 0; lv--) {
        const layer_param *p = &l->params[lv * per];
        const float *bi = k->bias ? w + p[2].off : NULL, *bh = k->bias ? w + p[3].off : NULL;
        rnn_backward_ref(k->gru, k->count, k->T, lv ? k->H : k->D, k->H, in[lv], w + p[0].off, w + p[1].off, bi, bh,
                         d, lv ? dxk : dx, g + p[0].off, g + p[1].off, k->bias ? g + p[2].off : NULL,
                         k->bias ? g + p[3].off : NULL);
        for (size_t i = 0; lv > 0 && i < nh; i++) d[i] = dxk[i] * scale[lv * nh + i];
    }
    for (int lv = 0; lv < L; lv++) free(in[lv]), free(out[lv]);
    free(in), free(out), free(d), free(dxk), free(scale);
}

/* Per-tensor comparison of the gradients region, each to 1e-4 of its largest magnitude
 * (sums over count*T positions of products of O(1) terms). */
static bool grads_close(const layer *l, const float *got, const float *want, const char *what)
{
    bool ok = true;
    for (int i = 0; i < l->n_params && ok; i++) {
        const layer_param *p = &l->params[i];
        float scale = 0;
        for (size_t j = 0; j < p->numel; j++) scale = fmaxf(scale, fabsf(want[p->off + j]));
        char label[96];
        snprintf(label, sizeof label, "%s %s", what, p->suffix);
        ok = t_close(label, got + p->off, want + p->off, p->numel, 0, 1e-4f * scale + 1e-6f);
    }
    return ok;
}

/* Random weights, input and output gradient; the layer against the reference. With
 * accumulate, the gradients region holds values before the backward that it must add to. */
static bool ref_case(const rnn_cfg *k, bool accumulate)
{
    char label[256];
    label_of(k, label, sizeof label);
    printf("# %s%s\n", label, accumulate ? ", accumulating" : "");
    dlcl_net *net = NULL;
    if (make_net(k, &net) != DLCL_OK) {
        printf("# %s\n", dlcl_last_error());
        return false;
    }
    const size_t np = net->n_params, nx = (size_t)k->count * k->T * k->D, ny = (size_t)k->count * k->T * k->H;
    float *w = malloc(np * 4), *g = malloc(np * 4), *gw = malloc(np * 4), *g0 = malloc(np * 4), *x = malloc(nx * 4),
          *dx = malloc(nx * 4), *dxw = malloc(nx * 4), *dy = malloc(ny * 4), *y = malloc(ny * 4), *yw = malloc(ny * 4);
    bool ok = w && g && gw && g0 && x && dx && dxw && dy && y && yw;
    uint64_t rng = t_seed() ^ (uint64_t)k->T * 131 ^ (uint64_t)k->gru;
    const uint64_t seed = 0x5eed + (uint64_t)k->layers;
    if (ok) {
        t_fill_uniform(&rng, w, np, -0.6f, 0.6f);
        t_fill_uniform(&rng, g0, np, -1, 1);
        t_fill_uniform(&rng, x, nx, -1, 1);
        t_fill_uniform(&rng, dy, ny, -1, 1);
    }
    ok = ok && write_region(net, net->params, w) &&
         run_layer(net, k, seed, accumulate ? ~0u : 0u, x, dy, accumulate ? g0 : NULL, y, dx, g);
    if (ok) {
        stack_ref(&net->layers[0], k, seed, w, x, dy, yw, dxw, gw);
        for (size_t i = 0; accumulate && i < np; i++) gw[i] += g0[i];
        ok = t_close("y", y, yw, ny, 1e-5f, 1e-5f) && t_close("dx", dx, dxw, nx, 1e-4f, 1e-5f) &&
             grads_close(&net->layers[0], g, gw, "gradient of");
    }
    /* evaluation mode: no dropout, the same forward as a net without it */
    rnn_cfg e = *k;
    e.training = 0;
    if (ok && k->dropout > 0) {
        ok = run_layer(net, &e, seed, 0, x, NULL, NULL, y, NULL, NULL);
        e.dropout = 0;
        stack_ref(&net->layers[0], &e, seed, w, x, NULL, yw, NULL, NULL);
        ok = ok && t_close("y in evaluation mode", y, yw, ny, 1e-5f, 1e-5f);
    }
    if (!ok) printf("# failed: %s: %s\n", label, dlcl_last_error());
    dlcl_net_free(net);
    free(w), free(g), free(gw), free(g0), free(x), free(dx), free(dxw), free(dy), free(y), free(yw);
    return ok;
}

static void lstm_matches_ref_b3_t7_d5_h6_l2(void)
{
    rnn_cfg k = {.gru = 0, .batch = 3, .count = 3, .T = 7, .D = 5, .H = 6, .layers = 2, .bias = 1, .training = 1};
    T_CHECK(ref_case(&k, false), "lstm differs from the reference");
}

static void gru_matches_ref_b3_t7_d5_h6_l2(void)
{
    rnn_cfg k = {.gru = 1, .batch = 3, .count = 3, .T = 7, .D = 5, .H = 6, .layers = 2, .bias = 1, .training = 1};
    T_CHECK(ref_case(&k, false), "gru differs from the reference");
}

/* A partial batch without biases; one position; one unit; three layers. */
static void rnn_matches_ref_edge_shapes(void)
{
    for (int gru = 0; gru < 2; gru++) {
        rnn_cfg a = {.gru = gru, .batch = 3, .count = 2, .T = 13, .D = 3, .H = 7, .layers = 1, .bias = 0,
                     .training = 1};
        rnn_cfg b = {.gru = gru, .batch = 1, .count = 1, .T = 1, .D = 1, .H = 1, .layers = 3, .bias = 1, .training = 1};
        rnn_cfg c = {.gru = gru, .batch = 5, .count = 4, .T = 3, .D = 17, .H = 33, .layers = 2, .bias = 1,
                     .training = 1};
        T_CHECK(ref_case(&a, false), "partial batch, no bias");
        T_CHECK(ref_case(&b, false), "T = D = hidden = 1, three layers");
        T_CHECK(ref_case(&c, false), "wider hidden");
    }
}

/* Dropout on the outputs of the lower layers in training (the masks dropout.cl draws), none
 * in evaluation. */
static void rnn_dropout_between_layers_matches_ref(void)
{
    for (int gru = 0; gru < 2; gru++) {
        rnn_cfg k = {.gru = gru, .batch = 3, .count = 3, .T = 7, .D = 5, .H = 6, .layers = 3, .bias = 1,
                     .dropout = 0.4f, .training = 1};
        T_CHECK(ref_case(&k, false), "%s with dropout", gru ? "gru" : "lstm");
    }
}

/* io->accumulate with every bit set: each tensor's gradient is added to what is there. */
static void rnn_backward_accumulates_where_asked(void)
{
    for (int gru = 0; gru < 2; gru++) {
        rnn_cfg k = {.gru = gru, .batch = 3, .count = 3, .T = 5, .D = 4, .H = 3, .layers = 2, .bias = 1, .training = 1};
        T_CHECK(ref_case(&k, true), "%s accumulating", gru ? "gru" : "lstm");
    }
}

/* ------------------------------------------------------------------ finite differences */


#define FD_NET(type)                                                                                              \
    "[net]\ninput = 7,5\nclasses = 3\nbatch = 3\nseed = 5\n[optimizer]\nlearning_rate = 0\nmomentum = 0\n"       \
    "[rnn]\ntype = " type "\nhidden = 4\nlayers = 2\n"                                                            \
    "[proj]\ntype = dense\nunits = 3\nactivation = tanh\n"                                                        \
    "[flat]\ntype = flatten\n"                                                                                    \
    "[fc]\ntype = dense\nunits = 3\n"

/* lstm -> dense per position -> flatten -> dense: through both stacked layers and time */
static void lstm_net_gradients_match_finite_differences(void) { t_check_net_gradients("lstm", FD_NET("lstm")); }
static void gru_net_gradients_match_finite_differences(void) { t_check_net_gradients("gru", FD_NET("gru")); }

/* ------------------------------------------------------------------ against torch */

static bool put(const char *dir, const char *name, const float *v, size_t n)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return t_write_file(path, v, n * sizeof *v);
}

static bool get(const char *dir, const char *name, float *v, size_t n)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(v, sizeof *v, n, f) : 0;
    if (f) fclose(f);
    if (got != n) printf("# %s: %zu of %zu floats\n", path, got, n);
    return got == n;
}

/* Output within 1e-4 of its scale, as every gradient (torch's float32 sums in another order). */
static bool close_to_scale(const char *label, const float *got, const float *want, size_t n)
{
    float scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmaxf(scale, fabsf(want[i]));
    return t_close(label, got, want, n, 0, 1e-4f * scale + 1e-7f);
}

/* test/torch_rnn.py builds the torch module (its own initialisation), runs x forward and dy
 * backward, and writes its state_dict and gradients as safetensors under the section's name;
 * dlcl_net_load takes the weights by name. 1: agrees; 0: differs; -1: torch is missing. */
static int torch_case(const char *dir, const rnn_cfg *k)
{
    const char *src = getenv("DLCL_TEST_SOURCE_DIR");
    char label[256], cmd[2048], path[700];
    label_of(k, label, sizeof label);
    printf("# against torch: %s\n", label);
    const size_t nx = (size_t)k->count * k->T * k->D, ny = (size_t)k->count * k->T * k->H;
    float *x = malloc(nx * 4), *dx = malloc(nx * 4), *tdx = malloc(nx * 4), *dy = malloc(ny * 4), *y = malloc(ny * 4),
          *ty = malloc(ny * 4);
    uint64_t rng = t_seed() + 17;
    bool ok = x && dx && tdx && dy && y && ty;
    if (ok) {
        t_fill_uniform(&rng, x, nx, -1, 1);
        t_fill_uniform(&rng, dy, ny, -1, 1);
    }
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/test/torch_rnn.py' '%s' %s %d %d %d %d %d %d 1>&2", src, dir,
             k->gru ? "gru" : "lstm", k->count, k->T, k->D, k->H, k->layers, k->bias);
    ok = ok && put(dir, "x", x, nx) && put(dir, "dy", dy, ny);
    fflush(stdout);
    int rc = ok ? system(cmd) : -1;
    if (rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
        free(x), free(dx), free(tdx), free(dy), free(y), free(ty);
        return -1;
    }
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        printf("# %s: exit status %d (reason on stderr)\n", cmd, rc);
        ok = false;
    }
    ok = ok && get(dir, "y", ty, ny) && get(dir, "dx", tdx, nx);
    dlcl_net *net = NULL;
    st_file grads = {0};
    float *g = NULL;
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    ok = ok && make_net(k, &net) == DLCL_OK && dlcl_net_load(net, path, 0, NULL) == DLCL_OK;
    snprintf(path, sizeof path, "%s/grads.safetensors", dir);
    ok = ok && st_read(path, &grads) == DLCL_OK && (g = malloc(net->n_params * 4)) != NULL &&
         run_layer(net, k, 1, 0, x, dy, NULL, y, dx, g);
    ok = ok && close_to_scale("y vs torch", y, ty, ny) && close_to_scale("dx vs torch", dx, tdx, nx);
    const layer *l = ok ? &net->layers[0] : NULL;
    for (int i = 0; ok && i < l->n_params; i++) {
        char name[64];
        snprintf(name, sizeof name, "rnn.%s", l->params[i].suffix);
        const st_tensor *t = st_find(&grads, name);
        ok = t != NULL && t->dtype == ST_F32 && close_to_scale(name, g + l->params[i].off, t->data, l->params[i].numel);
        if (t == NULL) printf("# torch wrote no gradient %s\n", name);
    }
    if (!ok) printf("# failed against torch: %s: %s\n", label, dlcl_last_error());
    st_file_free(&grads);
    dlcl_net_free(net);
    free(g), free(x), free(dx), free(tdx), free(dy), free(y), free(ty);
    return ok ? 1 : 0;
}

static void torch_cases(int gru)
{
    if (getenv("DLCL_TEST_SOURCE_DIR") == NULL) {
        T_SKIP("DLCL_TEST_SOURCE_DIR is not set (run through meson test)");
    }
    if (access("/usr/bin/python3", X_OK) != 0) {
        T_SKIP("no /usr/bin/python3");
    }
    const char *dir = t_tmpdir(1);
    T_CHECK(dir != NULL, "no scratch directory");
    rnn_cfg a = {.gru = gru, .batch = 3, .count = 3, .T = 7, .D = 5, .H = 6, .layers = 2, .bias = 1, .training = 1};
    rnn_cfg b = {.gru = gru, .batch = 2, .count = 2, .T = 19, .D = 11, .H = 24, .layers = 3, .bias = 0, .training = 1};
    int r = torch_case(dir, &a);
    if (r < 0) {
        T_SKIP("/usr/bin/python3 cannot import torch");
    }
    T_CHECK(r == 1, "%s 3 x 7 x 5, hidden 6, 2 layers differs from torch", gru ? "GRU" : "LSTM");
    T_CHECK(torch_case(dir, &b) == 1, "%s 2 x 19 x 11, hidden 24, 3 layers, no bias differs from torch",
            gru ? "GRU" : "LSTM");
}

static void lstm_matches_torch_lstm(void) { torch_cases(0); }
static void gru_matches_torch_gru(void) { torch_cases(1); }

/* ------------------------------------------------------------------ nets */

/* An inference net (no backward buffers, no dropout masks) gives the training net's logits
 * from the same seed; a checkpoint holds PyTorch's names and shapes, <section>.weight_ih_l0 ... */
static void rnn_inference_net_and_checkpoint_names(void)
{
    static const char *text =
        "[net]\ninput = 9,5\nclasses = 4\nbatch = 3\nseed = 4\n"
        "[enc]\ntype = gru\nhidden = 6\nlayers = 2\ndropout = 0.3\n"
        "[dec]\ntype = lstm\nhidden = 7\nbias = 0\n"
        "[flat]\ntype = flatten\n[fc]\ntype = dense\nunits = 4\n";
    const char *path = write_cfg("nets.ini", text);
    T_CHECK(path != NULL, "cannot write config");
    dlcl_net *tr = NULL, *inf = NULL;
    T_OK(dlcl_net_create(path, NULL, 0, NULL, &tr));
    dlcl_status s = dlcl_net_create_inference(path, NULL, 0, NULL, &inf);
    if (s != DLCL_OK) dlcl_net_free(tr);
    T_OK(s);
    float x[3 * 9 * 5], lt[3 * 4], li[3 * 4];
    uint64_t rng = t_seed();
    t_fill_uniform(&rng, x, T_COUNT(x), -1, 1);
    char ckpt[700];
    snprintf(ckpt, sizeof ckpt, "%s/nets.safetensors", t_tmpdir(0));
    bool ok = dlcl_net_logits(tr, x, 3, lt) == DLCL_OK && dlcl_net_logits(inf, x, 3, li) == DLCL_OK &&
              dlcl_net_save(tr, ckpt, 0) == DLCL_OK;
    char err[512];
    snprintf(err, sizeof err, "%s", dlcl_last_error());
    dlcl_net_free(tr);
    dlcl_net_free(inf);
    T_CHECK(ok, "%s", err);
    T_CLOSE("inference logits", li, lt, T_COUNT(lt), 0, 0);
    st_file f = {0};
    T_OK(st_read(ckpt, &f));
    static const struct {
        const char *name;
        int ndim;
        int64_t d0, d1;
    } want[] = {
        {"enc.weight_ih_l0", 2, 18, 5}, {"enc.weight_hh_l0", 2, 18, 6}, {"enc.bias_ih_l0", 1, 18, 0},
        {"enc.bias_hh_l0", 1, 18, 0},   {"enc.weight_ih_l1", 2, 18, 6}, {"enc.weight_hh_l1", 2, 18, 6},
        {"enc.bias_ih_l1", 1, 18, 0},   {"enc.bias_hh_l1", 1, 18, 0},   {"dec.weight_ih_l0", 2, 28, 6},
        {"dec.weight_hh_l0", 2, 28, 7}, {"fc.weight", 2, 4, 63},        {"fc.bias", 1, 4, 0},
    };
    size_t tensors = 0;
    for (size_t i = 0; i < f.count; i++) tensors += strncmp(f.tensors[i].name, "state.", 6) != 0;
    for (size_t i = 0; i < T_COUNT(want) && ok; i++) {
        const st_tensor *t = st_find(&f, want[i].name);
        ok = t && t->ndim == want[i].ndim && t->dims[0] == want[i].d0 && (t->ndim < 2 || t->dims[1] == want[i].d1);
        if (!ok) printf("# %s: %s\n", want[i].name, t ? "wrong shape" : "missing");
    }
    st_file_free(&f);
    T_CHECK(ok && tensors == T_COUNT(want), "checkpoint names or shapes differ (%zu tensors)", tensors);
}

/* ------------------------------------------------------------------ malformed configs */

static void malformed_rnn_configs_name_the_section(void)
{
    static const struct {
        const char *input, *layer;
        dlcl_status status;
        const char *message;
    } bad[] = {
        {"7,5", "type = lstm\n", DLCL_ERR_CONFIG, "[seq]: missing key 'hidden'"},
        {"7,5", "type = gru\nhidden = 0\n", DLCL_ERR_CONFIG, "[seq] hidden = '0'"},
        {"35", "type = gru\nhidden = 4\n", DLCL_ERR_SHAPE, "[seq] (gru): needs a T,D sequence input"},
        {"2,7,5", "type = lstm\nhidden = 4\n", DLCL_ERR_SHAPE, "[seq] (lstm): needs a T,D sequence input"},
        {"7,5", "type = lstm\nhidden = 4\nlayers = 9\n", DLCL_ERR_CONFIG,
         "[seq] layers = '9': expected an integer in [1, 8]"},
        {"7,5", "type = gru\nhidden = 4\ndropout = 1\n", DLCL_ERR_CONFIG, "[seq] dropout = '1'"},
        {"7,5", "type = lstm\nhidden = 4\nbidirectional = 1\n", DLCL_ERR_CONFIG, "bidirectional"},
    };
    for (size_t i = 0; i < T_COUNT(bad); i++) {
        char text[512];
        snprintf(text, sizeof text, "[net]\ninput = %s\nclasses = 3\nbatch = 2\n[seq]\n%s[flat]\ntype = flatten\n"
                 "[fc]\ntype = dense\nunits = 3\n", bad[i].input, bad[i].layer);
        const char *path = write_cfg("bad.ini", text);
        T_CHECK(path != NULL, "cannot write config");
        dlcl_net *net = NULL;
        dlcl_status s = dlcl_net_create(path, NULL, 0, NULL, &net);
        dlcl_net_free(net);
        T_CHECK(t_err_matches(s, bad[i].status, bad[i].message), "case %zu: want %s with \"%s\", got %s: %s", i,
                dlcl_status_str(bad[i].status), bad[i].message, dlcl_status_str(s), dlcl_last_error());
    }
}

static const t_case cases[] = {
    T_CASE(lstm_matches_ref_b3_t7_d5_h6_l2),
    T_CASE(gru_matches_ref_b3_t7_d5_h6_l2),
    T_CASE(rnn_matches_ref_edge_shapes),
    T_CASE(rnn_dropout_between_layers_matches_ref),
    T_CASE(rnn_backward_accumulates_where_asked),
    T_CASE(lstm_net_gradients_match_finite_differences),
    T_CASE(gru_net_gradients_match_finite_differences),
    T_CASE(lstm_matches_torch_lstm),
    T_CASE(gru_matches_torch_gru),
    T_CASE(rnn_inference_net_and_checkpoint_names),
    T_CASE(malformed_rnn_configs_name_the_section),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
