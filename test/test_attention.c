/* Causal self-attention (lib/ops/attention.c, cl_kernels/attention.cl, lib/layers/attention.c)
 * against the double reference in ref/attention_ref.c on odd shapes: the softmax, the
 * materialised and online paths, the layer forward and backward with and without dropout and
 * bias, the key/value cache against the full forward, central finite differences through small
 * nets, malformed configs, GPT-2's initialisation and names, and Hugging Face's GPT2Attention
 * written in torch (test/torch_attention.py). Timings: bench/attention.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/net/net.h"
#include "dbuf.h"
#include "ref/ref.h"
#include "test.h"

static uint64_t rng;

static void fill(float *x, size_t n, float lo, float hi)
{
    if (rng == 0) rng = t_seed();
    t_fill_uniform(&rng, x, n, lo, hi);
}

/* What follows an attention layer in the test nets: a classifier for the loss. */
#define TAIL "[flat]\ntype=flatten\n[fc]\ntype=dense\nunits=3\n"

static const char *write_cfg(const char *name, const char *text)
{
    static char path[600];
    const char *dir = t_tmpdir(0);
    if (dir == NULL) return NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return t_write_file(path, text, strlen(text)) ? path : NULL;
}

/* batch, t, heads, head_dim: odd sizes, one of everything, more samples than heads (the
 * per-head GEMMs loop over heads then), rows past a multiple of the online kernel's 16, few
 * rows with head_dim a multiple of 8 (the decoding kernel) */
static const op_attn_shape shapes[] = {{3, 7, 3, 4}, {1, 1, 1, 8}, {4, 9, 2, 3}, {2, 13, 5, 4}, {2, 37, 2, 6},
                                       {3, 3, 2, 16}};

static ref_attn ref_of(const op_attn_shape *s) { return (ref_attn){s->batch, s->t, s->heads * s->head_dim, s->heads}; }

/* ------------------------------------------------------------------ ops */

static bool softmax_case(int planes, int t)
{
    const size_t n = (size_t)planes * t * t;
    const float scale = 0.37f;
    float *h = malloc(6 * n * sizeof *h), *s = h, *p = h + n, *pr = h + 2 * n, *dp = h + 3 * n, *ds = h + 4 * n,
          *dsr = h + 5 * n;
    dbuf S = {0}, P = {0}, DP = {0};
    bool ok = h != NULL;
    if (ok) {
        fill(s, n, -8, 8);
        fill(dp, n, -1, 1);
        attention_softmax_ref(s, pr, planes, t, scale);
        attention_softmax_backward_ref(pr, dp, dsr, planes, t, scale);
    }
    /* the forward in place, the backward into dp itself */
    ok = ok && dbuf_new(&S, s, n) && dbuf_new(&P, NULL, n) && dbuf_new(&DP, dp, n) &&
         op_attention_softmax_forward(t_ctx(), ob(&S), ob(&S), planes, t, scale) == DLCL_OK &&
         dbuf_read(&S, p, "p") && t_close("causal softmax", p, pr, n, 1e-5f, 1e-7f) && dbuf_new(&P, p, n) &&
         op_attention_softmax_backward(t_ctx(), ob(&P), ob(&DP), ob(&DP), planes, t, scale) == DLCL_OK &&
         dbuf_read(&DP, ds, "ds") && t_close("causal softmax backward", ds, dsr, n, 1e-5f, 1e-6f);
    if (!ok) printf("# %d planes of %d x %d, seed %llu: %s\n", planes, t, t, (unsigned long long)t_seed(),
                    dlcl_last_error());
    dbuf_free(&S), dbuf_free(&P), dbuf_free(&DP);
    free(h);
    return ok;
}

static void attention_softmax_matches_ref_odd_rows(void)
{
    static const int cases[][2] = {{1, 1}, {5, 7}, {3, 8}, {2, 13}, {4, 37}};
    for (size_t i = 0; i < T_COUNT(cases); i++)
        T_CHECK(softmax_case(cases[i][0], cases[i][1]), "%d planes of %d", cases[i][0], cases[i][1]);
}

/* op_dropout_apply is op_dropout_forward's mask, not stored: both ways of dropout agree */
static void dropout_apply_equals_dropout_forward(void)
{
    enum { N = 1000 + 7 };
    float x[N], y[N], want[N], mask[N];
    fill(x, N, -1, 1);
    dbuf X = {0}, Y = {0}, M = {0};
    dlcl_ctx *ctx = t_ctx();
    bool ok = ctx && dbuf_new(&X, x, N) && dbuf_new(&Y, NULL, N) && dbuf_new(&M, NULL, N) &&
              op_dropout_forward(ctx, 0.3f, 0x1234567890abull, ob(&X), ob(&Y), ob(&M), N) == DLCL_OK &&
              dbuf_read(&Y, want, "dropout_forward") && dbuf_read(&M, mask, "mask") &&
              op_dropout_apply(ctx, 0.3f, 0x1234567890abull, ob(&X), ob(&X), N) == DLCL_OK && dbuf_read(&X, y, "apply");
    dbuf_free(&X), dbuf_free(&Y), dbuf_free(&M);
    T_CHECK(ok, "%s", dlcl_last_error());
    T_CLOSE("op_dropout_apply in place vs op_dropout_forward", y, want, N, 0, 0);
}

/* The materialised path (op_attention_forward / _backward) and the online forward against the
 * reference; dropout over the probabilities at rate. */
static bool ops_case(const op_attn_shape *s, float rate)
{
    dlcl_ctx *ctx = t_ctx();
    const ref_attn g = ref_of(s);
    const size_t w = (size_t)g.width, rows = (size_t)s->batch * s->t, nq = rows * 3 * w, nz = rows * w,
                 np = op_attention_workspace(s);
    const uint64_t seed = 0x5eed0000ull + (uint64_t)s->t;
    float *h = malloc((3 * nq + 4 * nz) * sizeof *h), *qkv = h, *dqkv = h + nq, *dqkvr = h + 2 * nq,
          *z = h + 3 * nq, *zr = z + nz, *dz = zr + nz, *zo = dz + nz;
    dbuf Q = {0}, P = {0}, Z = {0}, DZ = {0}, DQ = {0}, WS = {0}, ZO = {0};
    bool ok = ctx && h;
    if (ok) {
        fill(qkv, nq, -1.5f, 1.5f);
        fill(dz, nz, -1, 1);
        attention_core_ref(&g, qkv, rate, seed, zr);
        attention_core_backward_ref(&g, qkv, dz, rate, seed, dqkvr);
    }
    ok = ok && dbuf_new(&Q, qkv, nq) && dbuf_new(&P, NULL, np) && dbuf_new(&Z, NULL, nz) && dbuf_new(&DZ, dz, nz) &&
         dbuf_new(&DQ, NULL, nq) && dbuf_new(&WS, NULL, np) && dbuf_new(&ZO, NULL, nz) && dbuf_fill(&Z, NAN) &&
         dbuf_fill(&DQ, NAN) && dbuf_fill(&ZO, NAN) &&
         op_attention_forward(ctx, s, ob(&Q), ob(&P), ob(&Z), rate, seed, ob(&WS)) == DLCL_OK &&
         dbuf_read(&Z, z, "z") && t_close("op_attention_forward z", z, zr, nz, 1e-5f, 1e-6f) &&
         op_attention_backward(ctx, s, ob(&Q), ob(&P), ob(&DZ), ob(&DQ), rate, seed, ob(&WS)) == DLCL_OK &&
         dbuf_read(&DQ, dqkv, "dqkv") && t_close("op_attention_backward dqkv", dqkv, dqkvr, nq, 1e-4f, 1e-5f);
    if (ok && rate == 0.0f) {
        const op_attn_rows q = {ob(&Q), 3 * w, (size_t)s->t * 3 * w}, k = {op_b(Q.mem, GUARD + w), 3 * w, q.stride},
                           v = {op_b(Q.mem, GUARD + 2 * w), 3 * w, q.stride}, zz = {ob(&ZO), w, (size_t)s->t * w};
        ok = op_attention_forward_online(ctx, s, q, k, v, zz, s->t, 0) == DLCL_OK && dbuf_read(&ZO, zo, "z online") &&
             t_close("op_attention_forward_online z", zo, zr, nz, 1e-5f, 1e-6f);
    }
    if (!ok) printf("# batch %d, t %d, heads %d, head_dim %d, rate %g, seed %llu: %s\n", s->batch, s->t, s->heads,
                    s->head_dim, (double)rate, (unsigned long long)t_seed(), dlcl_last_error());
    dbuf *all[] = {&Q, &P, &Z, &DZ, &DQ, &WS, &ZO};
    for (size_t i = 0; i < T_COUNT(all); i++) dbuf_free(all[i]);
    free(h);
    return ok;
}

static void attention_ops_match_ref_odd_shapes(void)
{
    for (size_t i = 0; i < T_COUNT(shapes); i++) T_CHECK(ops_case(&shapes[i], 0.0f), "shape %zu", i);
}

static void attention_ops_dropout_matches_ref_mask(void)
{
    for (size_t i = 0; i < T_COUNT(shapes); i++) T_CHECK(ops_case(&shapes[i], 0.3f), "shape %zu", i);
}

/* ------------------------------------------------------------------ the layer */

typedef struct fixture {
    dlcl_net *net;
    layer *l; /* [attn] */
    int b, t, w, heads, bias;
    float rate;
    float *wa, *ba, *wp, *bp; /* the weights written to the net */
} fixture;

static void fixture_free(fixture *f)
{
    dlcl_net_free(f->net);
    free(f->wa);
    memset(f, 0, sizeof *f);
}

/* A net [attn] -> flatten -> dense over b sequences of t x w, with random weights. */
static bool fixture_new(fixture *f, int b, int t, int w, int heads, int bias, float rate)
{
    char text[512];
    snprintf(text, sizeof text, "[net]\ninput=%d,%d\nclasses=3\nbatch=%d\nseed=3\n[attn]\ntype=attention\nheads=%d\n"
             "bias=%d\ndropout=%g\n[flat]\ntype=flatten\n[fc]\ntype=dense\nunits=3\n", t, w, b, heads, bias,
             (double)rate);
    *f = (fixture){.b = b, .t = t, .w = w, .heads = heads, .bias = bias, .rate = rate};
    const char *path = write_cfg("attn.ini", text);
    if (path == NULL || dlcl_net_create(path, NULL, 0, NULL, &f->net) != DLCL_OK) {
        printf("# %s\n", dlcl_last_error());
        return false;
    }
    for (size_t i = 0; i < f->net->n_layers; i++)
        if (strcmp(f->net->layers[i].name, "attn") == 0) f->l = &f->net->layers[i];
    const size_t ww = (size_t)w * w;
    f->wa = malloc((4 * ww + 4 * (size_t)w) * sizeof *f->wa);
    if (f->l == NULL || f->wa == NULL) return false;
    f->ba = f->wa + 3 * ww, f->wp = f->ba + 3 * w, f->bp = f->wp + ww;
    fill(f->wa, 3 * ww, -0.5f, 0.5f);
    fill(f->wp, ww, -0.5f, 0.5f);
    fill(f->ba, 3 * (size_t)w, -0.2f, 0.2f);
    fill(f->bp, (size_t)w, -0.2f, 0.2f);
    const float *src[] = {f->wa, f->ba, f->wp, f->bp};
    const int which[] = {0, 1, 2, 3};
    cl_command_queue q = f->net->ctx->queue;
    for (int i = 0, k = 0; i < 4; i++) {
        if (!bias && (which[i] == 1 || which[i] == 3)) continue;
        const layer_param *p = &f->l->params[k++];
        if (clEnqueueWriteBuffer(q, f->net->params, CL_TRUE, p->off * 4, p->numel * 4, src[i], 0, NULL, NULL))
            return false;
    }
    return true;
}

/* Device buffers of the fixture's net (its own context, not t_ctx's), laid out as dbuf's:
 * n floats between guards of sentinels, which nb_read checks. */
static bool nb_new(const fixture *f, dbuf *d, const float *host, size_t n)
{
    d->n = n;
    d->bytes = (n + 2 * GUARD) * sizeof(float);
    float *tmp = malloc(d->bytes);
    cl_int err = tmp ? CL_SUCCESS : CL_OUT_OF_HOST_MEMORY;
    for (size_t i = 0; tmp && i < n + 2 * GUARD; i++) tmp[i] = i >= GUARD && i < GUARD + n ? (host ? host[i - GUARD] : 0.0f) : SENTINEL;
    d->mem = tmp ? clCreateBuffer(f->net->ctx->context, CL_MEM_READ_WRITE, d->bytes, NULL, &err) : NULL;
    bool ok = err == CL_SUCCESS &&
              clEnqueueWriteBuffer(f->net->ctx->queue, d->mem, CL_TRUE, 0, d->bytes, tmp, 0, NULL, NULL) == CL_SUCCESS;
    free(tmp);
    return ok;
}

static bool nb_fill(const fixture *f, dbuf *d, float v)
{
    return clEnqueueFillBuffer(f->net->ctx->queue, d->mem, &v, sizeof v, GUARD * sizeof(float), d->n * sizeof(float),
                               0, NULL, NULL) == CL_SUCCESS;
}

static bool nb_read(const fixture *f, const dbuf *d, float *host, const char *label)
{
    float *tmp = malloc(d->bytes);
    bool ok = tmp && clEnqueueReadBuffer(f->net->ctx->queue, d->mem, CL_TRUE, 0, d->bytes, tmp, 0, NULL, NULL) ==
                         CL_SUCCESS;
    for (size_t i = 0; ok && i < GUARD; i++)
        if (tmp[i] != SENTINEL || tmp[GUARD + d->n + i] != SENTINEL) {
            printf("# %s: guard element %zu overwritten\n", label, i);
            ok = false;
        }
    if (ok) memcpy(host, tmp + GUARD, d->n * sizeof(float));
    free(tmp);
    return ok;
}

static layer_io io_of(const fixture *f, int training, const op_buf *x, const op_buf *dx, op_buf y, op_buf dy,
                      uint64_t seed)
{
    const dlcl_net *n = f->net;
    return (layer_io){.ctx = n->ctx, .batch = n->batch, .count = f->b, .training = training, .x = x, .dx = dx,
                      .y = y, .dy = dy, .params = n->params, .grads = n->grads, .buffers = n->buffers,
                      .counters = n->counters, .ws = n->ws, .seed = seed};
}

/* Gradient k of the layer's tensors (in the order c_attn.weight, c_attn.bias, c_proj.weight,
 * c_proj.bias; the biases absent without bias) into host. */
static bool read_grad(const fixture *f, int k, float *host)
{
    const layer_param *p = &f->l->params[k];
    return clEnqueueReadBuffer(f->net->ctx->queue, f->net->grads, CL_TRUE, p->off * 4, p->numel * 4, host, 0, NULL,
                               NULL) == CL_SUCCESS;
}

/* Forward (training, then evaluation with both kernel paths) and backward of the layer against
 * the reference; a second backward with every accumulate bit set must add the same again. */
static bool layer_case(int b, int t, int w, int heads, int bias, float rate)
{
    fixture f;
    bool ok = fixture_new(&f, b, t, w, heads, bias, rate);
    const ref_attn g = {b, t, w, heads};
    const size_t n = (size_t)b * t * w, ww = (size_t)w * w;
    const uint64_t seed = 0xabcdef12345ull + (uint64_t)t;
    float *h = malloc((6 * n + 8 * ww + 8 * (size_t)w) * sizeof *h);
    float *x = h, *y = x + n, *yr = y + n, *dy = yr + n, *dx = dy + n, *dxr = dx + n, *g0 = dxr + n,
          *gr = g0 + 4 * ww + 4 * (size_t)w;
    float *dwar = gr, *dbar = dwar + 3 * ww, *dwpr = dbar + 3 * w, *dbpr = dwpr + ww;
    dbuf X = {0}, Y = {0}, DY = {0}, DX = {0};
    ok = ok && h;
    if (ok) {
        fill(x, n, -1, 1);
        fill(dy, n, -1, 1);
        attention_layer_forward_ref(&g, x, f.wa, bias ? f.ba : NULL, f.wp, bias ? f.bp : NULL, rate, seed,
                                    dlcl__mix64(seed), yr);
        attention_layer_backward_ref(&g, x, f.wa, bias ? f.ba : NULL, f.wp, rate, seed, dlcl__mix64(seed), dy, dxr,
                                     dwar, dbar, dwpr, dbpr);
    }
    ok = ok && nb_new(&f, &X, x, n) && nb_new(&f, &Y, NULL, n) && nb_new(&f, &DY, dy, n) && nb_new(&f, &DX, NULL, n);
    const op_buf xs[1] = {ob(&X)}, dxs[1] = {ob(&DX)};
    layer_io io = io_of(&f, 1, xs, dxs, ob(&Y), ob(&DY), seed);
    const float *want[4] = {dwar, dbar, dwpr, dbpr};
    const char *names[4] = {"dc_attn.weight", "dc_attn.bias", "dc_proj.weight", "dc_proj.bias"};
    ok = ok && f.l->type->forward(f.l, &io) == DLCL_OK && nb_read(&f, &Y, y, "y") &&
         t_close("layer forward (training)", y, yr, n, 1e-4f, 1e-5f) && f.l->type->backward(f.l, &io) == DLCL_OK &&
         nb_read(&f, &DX, dx, "dx") && t_close("layer backward dx", dx, dxr, n, 1e-4f, 1e-5f);
    for (int i = 0, k = 0; ok && i < 4; i++) {
        if (!bias && (i == 1 || i == 3)) continue;
        const size_t m = f.l->params[k].numel;
        ok = read_grad(&f, k, g0) && t_close(names[i], g0, want[i], m, 1e-4f, 1e-4f);
        k++;
    }
    /* accumulate: the gradients twice over (dy was overwritten by the dropout: a fresh copy) */
    if (ok) {
        dbuf_free(&DY);
        ok = nb_new(&f, &DY, dy, n);
        io.dy = ob(&DY);
        io.accumulate = 0xFu;
        ok = ok && f.l->type->forward(f.l, &io) == DLCL_OK && f.l->type->backward(f.l, &io) == DLCL_OK;
        for (int i = 0, k = 0; ok && i < 4; i++) {
            if (!bias && (i == 1 || i == 3)) continue;
            const size_t m = f.l->params[k].numel;
            float *twice = malloc(m * sizeof *twice);
            for (size_t j = 0; twice && j < m; j++) twice[j] = 2 * want[i][j];
            ok = twice && read_grad(&f, k, g0) && t_close("gradient accumulated over two backwards", g0, twice, m,
                                                          1e-4f, 2e-4f);
            free(twice);
            k++;
        }
    }
    /* evaluation: no dropout, the online kernel (CPU devices) and the materialised path */
    if (ok && rate > 0.0f)
        attention_layer_forward_ref(&g, x, f.wa, bias ? f.ba : NULL, f.wp, bias ? f.bp : NULL, 0.0f, 0, 0, yr);
    const int was_cpu = f.net ? f.net->ctx->cpu_device : 0;
    for (int cpu = 0; ok && cpu < 2; cpu++) {
        f.net->ctx->cpu_device = cpu;
        io.training = 0;
        ok = nb_fill(&f, &Y, NAN) && f.l->type->forward(f.l, &io) == DLCL_OK && nb_read(&f, &Y, y, "y eval") &&
             t_close(cpu ? "layer forward (evaluation, online kernel)" : "layer forward (evaluation, materialised)",
                     y, yr, n, 1e-4f, 1e-5f);
    }
    if (f.net) f.net->ctx->cpu_device = was_cpu;
    if (!ok) printf("# batch %d, t %d, width %d, heads %d, bias %d, dropout %g, seed %llu: %s\n", b, t, w, heads, bias,
                    (double)rate, (unsigned long long)t_seed(), dlcl_last_error());
    dbuf_free(&X), dbuf_free(&Y), dbuf_free(&DY), dbuf_free(&DX);
    free(h);
    fixture_free(&f);
    return ok;
}

static void attention_layer_matches_ref_b3_t7_w12_h3(void)
{
    T_CHECK(layer_case(3, 7, 12, 3, 1, 0.0f), "mismatch");
    T_CHECK(layer_case(3, 7, 12, 3, 0, 0.0f), "mismatch without bias");
}

static void attention_layer_matches_ref_other_shapes(void)
{
    T_CHECK(layer_case(1, 1, 8, 2, 1, 0.0f), "t 1");
    T_CHECK(layer_case(4, 13, 10, 5, 1, 0.0f), "more samples than heads, head_dim 2");
    T_CHECK(layer_case(2, 19, 12, 1, 1, 0.0f), "one head of 12");
}

/* dropout 0.2 on the probabilities (io->seed) and the output (dlcl__mix64(io->seed)): the
 * reference applies dropout_keep_ref's masks */
static void attention_layer_dropout_matches_ref_masks(void)
{
    T_CHECK(layer_case(3, 7, 12, 3, 1, 0.2f), "dropout 0.2");
    T_CHECK(layer_case(2, 13, 8, 2, 0, 0.5f), "dropout 0.5, no bias");
}

/* The same seed gives the same output, another seed another; evaluation ignores the seed. */
static void attention_dropout_reproducible_from_seed_and_off_in_eval(void)
{
    fixture f;
    T_CHECK(fixture_new(&f, 2, 9, 12, 3, 1, 0.3f), "cannot build the net");
    const size_t n = 2 * 9 * 12;
    float x[2 * 9 * 12], y[4][2 * 9 * 12];
    fill(x, n, -1, 1);
    dbuf X = {0}, Y = {0};
    bool ok = nb_new(&f, &X, x, n) && nb_new(&f, &Y, NULL, n);
    const op_buf xs[1] = {ob(&X)}, dxs[1] = {op_b(NULL, 0)};
    const uint64_t seeds[4] = {11, 11, 12, 13};
    const int training[4] = {1, 1, 1, 0};
    for (int i = 0; ok && i < 4; i++) {
        layer_io io = io_of(&f, training[i], xs, dxs, ob(&Y), op_b(NULL, 0), seeds[i]);
        ok = f.l->type->forward(f.l, &io) == DLCL_OK && nb_read(&f, &Y, y[i], "y");
    }
    float eval_ref[2 * 9 * 12];
    const ref_attn g = {2, 9, 12, 3};
    attention_layer_forward_ref(&g, x, f.wa, f.ba, f.wp, f.bp, 0.0f, 0, 0, eval_ref);
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) zeros += y[0][i] == 0.0f;
    dbuf_free(&X), dbuf_free(&Y);
    fixture_free(&f);
    T_CHECK(ok, "%s", dlcl_last_error());
    T_CHECK(memcmp(y[0], y[1], sizeof y[0]) == 0, "the same seed gave two outputs");
    T_CHECK(memcmp(y[0], y[2], sizeof y[0]) != 0, "seeds 11 and 12 gave the same output");
    T_CHECK(zeros > n / 8 && zeros < n / 2, "%zu of %zu outputs dropped at rate 0.3", zeros, n);
    T_CLOSE("evaluation (seed 13) vs the reference without dropout", y[3], eval_ref, n, 1e-4f, 1e-5f);
}

/* ------------------------------------------------------------------ key/value cache */

/* T steps of one position, and a prefill of `pre` positions then single steps, against the full
 * evaluation forward; the caches against the k and v rows of the projection. */
static bool cached_case(int b, int t, int w, int heads, int pre)
{
    fixture f;
    bool ok = fixture_new(&f, b, t, w, heads, 1, 0.1f);
    const size_t n = (size_t)b * t * w;
    float *h = malloc(4 * n * sizeof *h), *x = h, *yfull = h + n, *ystep = h + 2 * n, *xs = h + 3 * n;
    dbuf X = {0}, Y = {0}, XS = {0}, YS = {0}, KC = {0}, VC = {0};
    ok = ok && h && nb_new(&f, &X, NULL, n) && nb_new(&f, &Y, NULL, n) && nb_new(&f, &XS, NULL, n) &&
         nb_new(&f, &YS, NULL, n) && nb_new(&f, &KC, NULL, attention_cache_floats(f.l, b)) &&
         nb_new(&f, &VC, NULL, attention_cache_floats(f.l, b));
    if (ok) fill(x, n, -1, 1);
    ok = ok && clEnqueueWriteBuffer(f.net->ctx->queue, X.mem, CL_TRUE, GUARD * 4, n * 4, x, 0, NULL, NULL) == 0;
    const op_buf xb[1] = {ob(&X)}, xsb[1] = {ob(&XS)}, none[1] = {op_b(NULL, 0)};
    layer_io io = io_of(&f, 0, xb, none, ob(&Y), op_b(NULL, 0), 0);
    ok = ok && f.l->type->forward(f.l, &io) == DLCL_OK && nb_read(&f, &Y, yfull, "y full");
    for (int round = 0; ok && round < 2; round++) {
        const int first = round == 0 ? 1 : pre;
        for (int pos = 0; ok && pos < t;) {
            const int step = pos == 0 ? first : 1;
            for (int s = 0; s < b; s++) /* rows pos .. pos + step - 1 of each sequence */
                memcpy(xs + (size_t)s * step * w, x + ((size_t)s * t + pos) * w, (size_t)step * w * sizeof *xs);
            layer_io st = io_of(&f, 0, xsb, none, ob(&YS), op_b(NULL, 0), 0);
            ok = clEnqueueWriteBuffer(f.net->ctx->queue, XS.mem, CL_TRUE, GUARD * 4, (size_t)b * step * w * 4, xs, 0,
                                      NULL, NULL) == 0 &&
                 attention_forward_cached(f.l, &st, ob(&KC), ob(&VC), pos, step) == DLCL_OK &&
                 nb_read(&f, &YS, xs, "y step");
            for (int s = 0; ok && s < b; s++)
                memcpy(ystep + ((size_t)s * t + pos) * w, xs + (size_t)s * step * w, (size_t)step * w * sizeof *xs);
            pos += step;
        }
        ok = ok && t_close(round == 0 ? "cached steps of 1 vs full forward" : "prefill then steps vs full forward",
                           ystep, yfull, n, 1e-5f, 1e-6f);
    }
    /* beyond the context: refused */
    layer_io st = io_of(&f, 0, xsb, none, ob(&YS), op_b(NULL, 0), 0);
    ok = ok && t_err_matches(attention_forward_cached(f.l, &st, ob(&KC), ob(&VC), t - 1, 2), DLCL_ERR_INVALID_ARG,
                             "do not fit its context");
    if (!ok) printf("# batch %d, t %d, width %d, heads %d, prefill %d: %s\n", b, t, w, heads, pre, dlcl_last_error());
    dbuf *all[] = {&X, &Y, &XS, &YS, &KC, &VC};
    for (size_t i = 0; i < T_COUNT(all); i++) dbuf_free(all[i]);
    free(h);
    fixture_free(&f);
    return ok;
}

static void attention_cached_steps_equal_full_forward(void)
{
    T_CHECK(cached_case(3, 7, 12, 3, 3), "b 3, t 7");
    T_CHECK(cached_case(2, 21, 8, 2, 10), "b 2, t 21 (query blocks past 8 in the prefill)");
    T_CHECK(cached_case(1, 5, 6, 1, 5), "b 1, prefill of the whole context");
    /* head_dim a multiple of 8: steps of few rows by attention_decode */
    T_CHECK(cached_case(2, 11, 32, 2, 3), "b 2, t 11, head_dim 16");
    T_CHECK(cached_case(3, 9, 24, 3, 2), "b 3, t 9, head_dim 8");
}

/* An inference net (no saved tensors, a workspace without the t x t planes on CPU devices)
 * loads the training net's checkpoint and gives its logits; dropout is off in both. */
static void attention_inference_net_matches_training_net(void)
{
    const char *path = write_cfg("inf.ini", "[net]\ninput=9,16\nclasses=3\nbatch=2\nseed=4\n"
                                            "[a]\ntype=attention\nheads=4\ndropout=0.3\ninit_std=0.5\n" TAIL);
    T_CHECK(path != NULL, "cannot write config");
    char ckpt[700];
    snprintf(ckpt, sizeof ckpt, "%s.safetensors", path);
    dlcl_net *tr = NULL, *inf = NULL;
    T_OK(dlcl_net_create(path, NULL, 0, NULL, &tr));
    dlcl_status s = dlcl_net_create_inference(path, NULL, 0, NULL, &inf);
    float x[2 * 9 * 16], lt[6], li[6];
    fill(x, T_COUNT(x), -1, 1);
    if (s == DLCL_OK) s = dlcl_net_save(tr, ckpt, 0);
    if (s == DLCL_OK) s = dlcl_net_load(inf, ckpt, 0, NULL);
    if (s == DLCL_OK) s = dlcl_net_logits(tr, x, 2, lt);
    if (s == DLCL_OK) s = dlcl_net_logits(inf, x, 2, li);
    dlcl_net_free(tr);
    dlcl_net_free(inf);
    T_OK(s);
    T_CLOSE("inference net logits vs training net's", li, lt, 6, 1e-5f, 1e-6f);
}

/* ------------------------------------------------------------------ nets */


#define FD_NET "[net]\ninput=5,12\nclasses=3\nbatch=3\nseed=5\n[optimizer]\nlearning_rate=0\nmomentum=0\n"

/* a per-position dense before the attention (its gradient flows through dx), a residual add
 * (the input's gradient summed from two readers), a second attention without bias */
static void attention_net_gradients_match_finite_differences(void)
{
    t_check_net_gradients("attention", FD_NET
        "[d0]\ntype=dense\nunits=12\nactivation=tanh\n"
        "[a1]\ntype=attention\nheads=3\ninit_std=0.4\n"
        "[res]\ntype=add\ninput=a1, d0\n"
        "[a2]\ntype=attention\nheads=2\nbias=0\ninit_std=0.4\n"
        "[flat]\ntype=flatten\n"
        "[fc]\ntype=dense\nunits=3\n");
}

/* ------------------------------------------------------------------ configs, init, names */

typedef struct bad_cfg {
    const char *name, *text;
    dlcl_status status;
    const char *msg1, *msg2;
} bad_cfg;

#define NET_SEQ "[net]\ninput=7,12\nclasses=3\nbatch=2\n"

static const bad_cfg bad_cfgs[] = {
    {"width_not_multiple_of_heads", NET_SEQ "[h.0.attn]\ntype=attention\nheads=5\n" TAIL, DLCL_ERR_SHAPE,
     "net.ini:5:", "[h.0.attn] (attention): width 12 is not a multiple of heads = 5"},
    {"vector_input", "[net]\ninput=12\nclasses=3\nbatch=2\n[attn]\ntype=attention\nheads=3\n" TAIL, DLCL_ERR_SHAPE,
     "[attn] (attention): needs a sequence input T,width (2-d)", "is 12 (1-d)"},
    {"image_input", "[net]\ninput=3,4,4\nclasses=3\nbatch=2\n[attn]\ntype=attention\nheads=3\n" TAIL,
     DLCL_ERR_SHAPE, "[attn] (attention): needs a sequence input", "3x4x4 (3-d)"},
    {"heads_missing", NET_SEQ "[attn]\ntype=attention\n" TAIL, DLCL_ERR_CONFIG, "[attn]", "heads"},
    {"heads_zero", NET_SEQ "[attn]\ntype=attention\nheads=0\n" TAIL, DLCL_ERR_CONFIG, "[attn] heads = '0'", NULL},
    {"dropout_one", NET_SEQ "[attn]\ntype=attention\nheads=3\ndropout=1\n" TAIL, DLCL_ERR_CONFIG,
     "[attn] dropout = '1'", NULL},
    {"misspelt_key", NET_SEQ "[attn]\ntype=attention\nhead=3\n" TAIL, DLCL_ERR_CONFIG, "[attn]",
     "did you mean 'heads'"},
};

static void attention_malformed_configs_name_the_section(void)
{
    for (size_t i = 0; i < T_COUNT(bad_cfgs); i++) {
        const bad_cfg *b = &bad_cfgs[i];
        const char *path = write_cfg("net.ini", b->text);
        T_CHECK(path != NULL, "cannot write config");
        dlcl_net *net = NULL;
        dlcl_status s = dlcl_net_create(path, NULL, 0, NULL, &net);
        const char *msg = dlcl_last_error();
        bool ok = s == b->status && strstr(msg, b->msg1) && (b->msg2 == NULL || strstr(msg, b->msg2));
        dlcl_net_free(net);
        T_CHECK(ok && net == NULL, "case %s: want %s with '%s' and '%s', got %s: %s", b->name,
                dlcl_status_str(b->status), b->msg1, b->msg2 ? b->msg2 : "", dlcl_status_str(s), msg);
    }
}

/* GPT-2's initialisation (weights N(0, 0.02^2), biases 0) and its names and Conv1D shapes in a
 * checkpoint: h.0.attn.c_attn.weight [48, 144] etc. */
static void attention_init_and_checkpoint_names_are_gpt2s(void)
{
    const char *path = write_cfg("gpt.ini", "[net]\ninput=4,48\nclasses=3\nbatch=1\nseed=9\n"
                                            "[h.0.attn]\ntype=attention\nheads=4\n" TAIL);
    T_CHECK(path != NULL, "cannot write config");
    char ckpt[700];
    snprintf(ckpt, sizeof ckpt, "%s.safetensors", path);
    dlcl_net *net = NULL;
    T_OK(dlcl_net_create(path, NULL, 0, NULL, &net));
    const layer *l = &net->layers[0];
    float *v = malloc(48 * 144 * sizeof *v);
    double stats[4][2] = {{0}};
    bool ok = v && l->n_params == 4;
    for (int k = 0; ok && k < 4; k++) {
        const layer_param *p = &l->params[k];
        ok = clEnqueueReadBuffer(net->ctx->queue, net->params, CL_TRUE, p->off * 4, p->numel * 4, v, 0, NULL, NULL) ==
             CL_SUCCESS;
        for (size_t j = 0; ok && j < p->numel; j++) stats[k][0] += v[j], stats[k][1] += (double)v[j] * v[j];
        stats[k][0] /= (double)p->numel;
        stats[k][1] = sqrt(stats[k][1] / (double)p->numel - stats[k][0] * stats[k][0]);
    }
    dlcl_status s = ok ? dlcl_net_save(net, ckpt, 0) : DLCL_ERR_OUT_OF_MEMORY;
    dlcl_net_free(net);
    free(v);
    T_CHECK(ok && s == DLCL_OK, "%s", dlcl_last_error());
    for (int k = 0; k < 4; k += 2)
        T_CHECK(fabs(stats[k][0]) < 2e-3 && fabs(stats[k][1] - 0.02) < 1.5e-3,
                "weight %d: mean %g, std %g, want N(0, 0.02^2)", k, stats[k][0], stats[k][1]);
    for (int k = 1; k < 4; k += 2)
        T_CHECK(stats[k][0] == 0 && stats[k][1] == 0, "bias %d not zero", k);
    char head[4096] = "";
    FILE *f = fopen(ckpt, "rb");
    size_t got = f ? fread(head, 1, sizeof head - 1, f) : 0;
    if (f) fclose(f);
    head[got] = '\0';
    for (size_t i = 8; i < got; i++)
        if (head[i] == '\0') head[i] = ' ';
    static const char *const want[][2] = {{"\"h.0.attn.c_attn.weight\"", "[48,144]"}, {"\"h.0.attn.c_attn.bias\"", "[144]"},
                                          {"\"h.0.attn.c_proj.weight\"", "[48,48]"}, {"\"h.0.attn.c_proj.bias\"", "[48]"}};
    for (size_t i = 0; i < T_COUNT(want); i++) {
        const char *at = strstr(head + 8, want[i][0]);
        const char *shape = at ? strstr(at, "\"shape\"") : NULL;
        T_CHECK(at != NULL, "%s missing from the checkpoint header", want[i][0]);
        T_CHECK(shape && strncmp(strchr(shape, '['), want[i][1], strlen(want[i][1])) == 0, "%s: shape not %s",
                want[i][0], want[i][1]);
    }
}

/* ------------------------------------------------------------------ PyTorch */

static bool put(const char *dir, const char *name, const float *v, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return t_write_file(path, v, n * sizeof *v);
}

static bool get(const char *dir, const char *name, float *v, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(v, sizeof *v, n, f) : 0;
    if (f) fclose(f);
    if (got != n) printf("# %s: %zu of %zu floats\n", path, got, n);
    return got == n;
}

/* The layer's training forward and backward (no dropout) against test/torch_attention.py;
 * -1: torch is missing. */
static int torch_case(const char *dir, int b, int t, int w, int heads, int bias)
{
    const char *src = getenv("DLCL_TEST_SOURCE_DIR");
    fixture f;
    if (src == NULL || !fixture_new(&f, b, t, w, heads, bias, 0.0f)) return 0;
    const size_t n = (size_t)b * t * w, ww = (size_t)w * w;
    float *h = malloc((6 * n + 8 * ww + 8 * (size_t)w) * sizeof *h);
    float *x = h, *dy = x + n, *y = dy + n, *ty = y + n, *dx = ty + n, *tdx = dx + n, *g = tdx + n,
          *tg = g + 4 * ww + 4 * (size_t)w;
    if (h == NULL) {
        fixture_free(&f);
        return 0;
    }
    fill(x, n, -1, 1);
    fill(dy, n, -1, 1);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/test/torch_attention.py' '%s' %d %d %d %d %d 1>&2", src, dir, b, t,
             w, heads, bias);
    bool ok = put(dir, "x", x, n) && put(dir, "dy", dy, n) && put(dir, "c_attn.weight", f.wa, 3 * ww) &&
              put(dir, "c_attn.bias", f.ba, 3 * (size_t)w) && put(dir, "c_proj.weight", f.wp, ww) &&
              put(dir, "c_proj.bias", f.bp, (size_t)w);
    fflush(stdout);
    int rc = ok ? system(cmd) : -1;
    if (rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
        free(h);
        fixture_free(&f);
        return -1;
    }
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        printf("# %s: exit status %d (reason on stderr)\n", cmd, rc);
        ok = false;
    }
    dbuf X = {0}, Y = {0}, DY = {0}, DX = {0};
    ok = ok && get(dir, "y", ty, n) && get(dir, "dx", tdx, n) && nb_new(&f, &X, x, n) && nb_new(&f, &Y, NULL, n) &&
         nb_new(&f, &DY, dy, n) && nb_new(&f, &DX, NULL, n);
    const op_buf xs[1] = {ob(&X)}, dxs[1] = {ob(&DX)};
    layer_io io = io_of(&f, 1, xs, dxs, ob(&Y), ob(&DY), 1);
    ok = ok && f.l->type->forward(f.l, &io) == DLCL_OK && f.l->type->backward(f.l, &io) == DLCL_OK &&
         nb_read(&f, &Y, y, "y") && nb_read(&f, &DX, dx, "dx") && t_close("y vs torch", y, ty, n, 1e-4f, 1e-5f) &&
         t_close("dx vs torch", dx, tdx, n, 1e-4f, 1e-5f);
    for (int k = 0; ok && k < f.l->n_params; k++) {
        char name[64];
        const layer_param *p = &f.l->params[k];
        snprintf(name, sizeof name, "d%s", p->suffix);
        ok = get(dir, name, tg, p->numel) && read_grad(&f, k, g) && t_close(name, g, tg, p->numel, 1e-4f, 1e-4f);
    }
    if (!ok) printf("# %d x %d x %d, %d heads, bias %d, seed %llu: %s\n", b, t, w, heads, bias,
                    (unsigned long long)t_seed(), dlcl_last_error());
    dbuf_free(&X), dbuf_free(&Y), dbuf_free(&DY), dbuf_free(&DX);
    free(h);
    fixture_free(&f);
    return ok ? 1 : 0;
}

static void attention_matches_torch_gpt2_attention(void)
{
    if (getenv("DLCL_TEST_SOURCE_DIR") == NULL) {
        T_SKIP("DLCL_TEST_SOURCE_DIR is not set (run through meson test)");
    }
    if (access("/usr/bin/python3", X_OK) != 0) {
        T_SKIP("no /usr/bin/python3");
    }
    const char *dir = t_tmpdir(1);
    T_CHECK(dir != NULL, "no scratch directory");
    int r = torch_case(dir, 3, 7, 12, 3, 1);
    if (r < 0) {
        T_SKIP("/usr/bin/python3 cannot import torch");
    }
    T_CHECK(r == 1, "3 x 7 x 12, 3 heads differs from torch");
    T_CHECK(torch_case(dir, 2, 11, 16, 4, 0) == 1, "2 x 11 x 16, 4 heads, no bias differs from torch");
}

static const t_case cases[] = {
    T_CASE(attention_softmax_matches_ref_odd_rows),
    T_CASE(dropout_apply_equals_dropout_forward),
    T_CASE(attention_ops_match_ref_odd_shapes),
    T_CASE(attention_ops_dropout_matches_ref_mask),
    T_CASE(attention_layer_matches_ref_b3_t7_w12_h3),
    T_CASE(attention_layer_matches_ref_other_shapes),
    T_CASE(attention_layer_dropout_matches_ref_masks),
    T_CASE(attention_dropout_reproducible_from_seed_and_off_in_eval),
    T_CASE(attention_cached_steps_equal_full_forward),
    T_CASE(attention_inference_net_matches_training_net),
    T_CASE(attention_net_gradients_match_finite_differences),
    T_CASE(attention_malformed_configs_name_the_section),
    T_CASE(attention_init_and_checkpoint_names_are_gpt2s),
    T_CASE(attention_matches_torch_gpt2_attention),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
