/* The optimizer kernels (sgd, adam/adamw, gradient norm and clip factor) and the smoothed
 * cross-entropy against the plain-C references in ref/, both kernel variants (spans on CPU
 * devices, an item per parameter elsewhere: PoCL runs the second with ctx->cpu_device
 * cleared); the references against torch when /usr/bin/python3 has it; and lib/net/optim.c:
 * the [optimizer] section, the learning rate per step, optim_step and optim_clip. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/net/optim.h"
#include "ref/ref.h"

#include "dbuf.h"
#include "test.h"

static const size_t odd_sizes[] = {1, 7, 4097, 100003};

static float *rnd(size_t n, float lo, float hi)
{
    static uint64_t s;
    if (s == 0) s = t_seed() ^ 0x6f7074696dull;
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (x) t_fill_uniform(&s, x, n, lo, hi);
    return x;
}

/* Gradients for the step tests, 0.5 <= |g| <= 1: where grad * s + wd * w cancels to near 0,
 * Adam's first steps lr * g / (|g| + eps) turn one rounding of g (fused or not, in the
 * kernel as in torch) into a difference of order lr, which no tolerance separates from a bug. */
static float *rnd_grad(size_t n)
{
    float *g = rnd(n, -1, 1);
    for (size_t i = 0; g && i < n; i++) g[i] = copysignf(0.5f + 0.5f * fabsf(g[i]), g[i]);
    return g;
}

/* A plain buffer of n floats (the gradient scale is read from element 0, so it has no
 * leading guard): SENTINEL everywhere but the first `set` floats, which hold host. */
static cl_mem plain_buf(const float *host, size_t set, size_t n)
{
    float tmp[16];
    for (size_t i = 0; i < n && i < 16; i++) tmp[i] = i < set ? host[i] : SENTINEL;
    cl_int err;
    cl_mem m = clCreateBuffer(t_ctx()->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, n * sizeof(float), tmp, &err);
    return err == CL_SUCCESS ? m : NULL;
}

static bool write_dev(const dbuf *d, const float *host)
{
    return clEnqueueWriteBuffer(t_ctx()->queue, d->mem, CL_TRUE, GUARD * sizeof(float), d->n * sizeof(float), host, 0,
                                NULL, NULL) == CL_SUCCESS;
}

/* ------------------------------------------------------------------ step kernels */

typedef struct step_cfg {
    int adam, decoupled, nesterov;
    float lr, momentum, wd, beta1, beta2, eps;
    float gscale; /* 0: no gradient scale buffer */
} step_cfg;

/* Three steps of one configuration on n parameters, kernel variant cpu, against the
 * reference; the state slots share one buffer, stride n + 5 apart. */
static bool step_case(const step_cfg *c, size_t n, int cpu)
{
    dlcl_ctx *ctx = t_ctx();
    const size_t stride = n + 5;
    float *w = rnd(n, -1, 1), *got = malloc(n * 4), *s0 = calloc(n, 4), *s1 = calloc(n, 4), *g = NULL;
    dbuf W = {0}, G = {0}, S = {0};
    cl_mem gs = c->gscale != 0.0f ? plain_buf(&c->gscale, 1, 4) : NULL;
    const float gsv = c->gscale != 0.0f ? c->gscale : 1.0f;
    bool ok = ctx && w && got && s0 && s1 && (c->gscale == 0.0f || gs) && dbuf_new(&W, w, n) &&
              dbuf_new(&G, NULL, n) && dbuf_new(&S, NULL, 2 * stride);
    const int was_cpu = ctx ? ctx->cpu_device : 0;
    for (uint64_t step = 1; ok && step <= 3; step++) {
        free(g);
        g = rnd_grad(n);
        if (c->adam)
            adam_step_ref(w, g, s0, s1, n, c->lr, c->beta1, c->beta2, c->eps, c->wd, c->decoupled, step, gsv);
        else
            sgd_step_scaled_ref(w, g, s0, n, c->lr, c->momentum, c->wd, c->nesterov, gsv);
        ctx->cpu_device = cpu;
        dlcl_status st = !(ok = g && write_dev(&G, g)) ? DLCL_ERR_OPENCL
                         : c->adam ? op_adam_step(ctx, ob(&W), ob(&G), ob(&S), op_b(S.mem, GUARD + stride), n, c->lr,
                                                  c->beta1, c->beta2, c->eps, c->wd, c->decoupled, step, gs)
                                   : op_sgd_step_scaled(ctx, ob(&W), ob(&G), ob(&S), n, c->lr, c->momentum, c->wd,
                                                        c->nesterov, gs);
        ctx->cpu_device = was_cpu;
        if (st != DLCL_OK) printf("# %s\n", dlcl_last_error());
        ok = ok && st == DLCL_OK;
    }
    float *state = malloc(2 * stride * 4);
    ok = ok && state && dbuf_read(&W, got, "w") && t_close("weights", got, w, n, 1e-5f, 1e-6f) &&
         dbuf_read(&S, state, "state");
    if (ok && (c->adam || c->momentum != 0.0f)) ok = t_close("state slot 0", state, s0, n, 1e-5f, 1e-6f);
    if (ok && c->adam) ok = t_close("state slot 1", state + stride, s1, n, 1e-5f, 1e-7f);
    for (size_t i = n; ok && i < stride; i++) /* between the slots */
        ok = state[i] == 0.0f || (printf("# state element %zu between the slots written\n", i), false);
    if (ok && !c->adam && c->momentum == 0.0f) /* without momentum the state is not touched */
        for (size_t i = 0; ok && i < n; i++) ok = state[i] == 0.0f || (printf("# velocity written\n"), false);
    float gback[4];
    if (ok && gs) ok = clEnqueueReadBuffer(ctx->queue, gs, CL_TRUE, 0, sizeof gback, gback, 0, NULL, NULL) == CL_SUCCESS &&
                       gback[0] == c->gscale && gback[1] == SENTINEL;
    dbuf_free(&W), dbuf_free(&G), dbuf_free(&S);
    if (gs) clReleaseMemObject(gs);
    free(w), free(got), free(s0), free(s1), free(g), free(state);
    return ok;
}

static void sgd_kernels_match_ref_on_odd_sizes(void)
{
    const step_cfg cfgs[] = {
        {.lr = 0.1f},
        {.lr = 0.05f, .momentum = 0.9f, .wd = 5e-4f, .nesterov = 1},
        {.lr = 0.05f, .momentum = 0.9f, .wd = 1e-2f, .gscale = 0.37f},
        {.lr = 0.1f, .wd = 1e-2f, .gscale = 0.5f},
    };
    for (int cpu = 0; cpu < 2; cpu++)
        for (size_t si = 0; si < T_COUNT(odd_sizes); si++)
            for (size_t c = 0; c < T_COUNT(cfgs); c++)
                T_CHECK(step_case(&cfgs[c], odd_sizes[si], cpu), "%s kernel, n %zu, config %zu (momentum %g nesterov %d "
                        "wd %g gscale %g)", cpu ? "CPU" : "GPU", odd_sizes[si], c, (double)cfgs[c].momentum,
                        cfgs[c].nesterov, (double)cfgs[c].wd, (double)cfgs[c].gscale);
}

static void adam_kernels_match_ref_on_odd_sizes(void)
{
    const step_cfg cfgs[] = {
        {.adam = 1, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
        {.adam = 1, .lr = 1e-2f, .beta1 = 0.8f, .beta2 = 0.99f, .eps = 1e-6f, .wd = 0.1f, .gscale = 0.37f},
        {.adam = 1, .decoupled = 1, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .wd = 1e-2f},
        {.adam = 1, .decoupled = 1, .lr = 3e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .wd = 0.1f, .gscale = 0.5f},
    };
    for (int cpu = 0; cpu < 2; cpu++)
        for (size_t si = 0; si < T_COUNT(odd_sizes); si++)
            for (size_t c = 0; c < T_COUNT(cfgs); c++)
                T_CHECK(step_case(&cfgs[c], odd_sizes[si], cpu), "%s kernel, n %zu, %s config %zu (lr %g wd %g gscale %g)",
                        cpu ? "CPU" : "GPU", odd_sizes[si], cfgs[c].decoupled ? "adamw" : "adam", c, (double)cfgs[c].lr,
                        (double)cfgs[c].wd, (double)cfgs[c].gscale);
    dlcl_ctx *ctx = t_ctx();
    T_ERR(op_adam_step(ctx, op_b(NULL, 0), op_b(NULL, 0), op_b(NULL, 0), op_b(NULL, 0), 4, 1e-3f, 0.9f, 0.999f, 1e-8f,
                       0, 0, 0, NULL), DLCL_ERR_INVALID_ARG, "1-based");
    T_ERR(op_adam_step(ctx, op_b(NULL, 0), op_b(NULL, 0), op_b(NULL, 0), op_b(NULL, 0), 4, 1e-3f, 1.0f, 0.999f, 1e-8f,
                       0, 0, 1, NULL), DLCL_ERR_INVALID_ARG, "betas");
}

/* ------------------------------------------------------------------ gradient norm */

/* The norm and clip factor of n random gradients (magnitudes from 1e-3 to 10) by kernel
 * variant cpu; *rel the relative error of norm^2 against the double sum. */
static bool norm_case(size_t n, int cpu, float max_frac, float tol, double *rel, float out[2])
{
    dlcl_ctx *ctx = t_ctx();
    float *x = rnd(n, -1, 1);
    for (size_t i = 0; x && i < n; i++) x[i] *= powf(10.0f, (float)((i / 1000) % 5) - 3.0f);
    const double sum = x ? sum_squares_ref(x, n) : 0, norm = sqrt(sum), max_norm = max_frac * norm;
    const int was_cpu = ctx ? ctx->cpu_device : 0;
    if (ctx) ctx->cpu_device = cpu;
    const size_t np = ctx ? op_sum_squares_partials(ctx, n) : 0;
    dbuf X = {0}, P = {0};
    cl_mem gs = plain_buf(NULL, 0, 4);
    float back[4] = {0}, first[2] = {0};
    bool ok = ctx && x && gs && np >= 1 && dbuf_new(&X, x, n) && dbuf_new(&P, NULL, np);
    for (int rep = 0; ok && rep < 2; rep++) { /* twice: the same bits */
        memcpy(first, back, sizeof first);
        ok = op_sum_squares(ctx, ob(&X), n, ob(&P)) == DLCL_OK &&
             op_clip_coef(ctx, ob(&P), np, (float)max_norm, gs) == DLCL_OK &&
             clEnqueueReadBuffer(ctx->queue, gs, CL_TRUE, 0, sizeof back, back, 0, NULL, NULL) == CL_SUCCESS;
    }
    ok = ok && (memcmp(first, back, sizeof first) == 0 ||
                (printf("# a second run gave %.9g %.9g, the first %.9g %.9g\n", (double)back[0], (double)back[1],
                        (double)first[0], (double)first[1]), false));
    if (ctx) ctx->cpu_device = was_cpu;
    float *part = ok ? malloc(np * 4) : NULL;
    ok = ok && part && dbuf_read(&P, part, "partial sums") && dbuf_read(&X, x, "x");
    const float want[2] = {(float)clip_coef_ref(norm, max_norm), (float)norm};
    *rel = fabs((double)back[1] * back[1] / sum - 1.0);
    ok = ok && back[2] == SENTINEL && back[3] == SENTINEL && t_close("clip factor, norm", back, want, 2, tol, 0);
    memcpy(out, back, 2 * sizeof(float));
    if (!ok && dlcl_last_error()[0]) printf("# %s\n", dlcl_last_error());
    dbuf_free(&X), dbuf_free(&P);
    if (gs) clReleaseMemObject(gs);
    free(x), free(part);
    return ok;
}

static void sum_squares_and_clip_coef_match_ref_on_odd_sizes(void)
{
    const float fracs[] = {0.5f, 2.0f, 0.0f}; /* clipped, not clipped, max_norm 0: factor 1 */
    for (int cpu = 0; cpu < 2; cpu++)
        for (size_t si = 0; si < T_COUNT(odd_sizes); si++)
            for (size_t f = 0; f < T_COUNT(fracs); f++) {
                double rel;
                float out[2];
                T_CHECK(norm_case(odd_sizes[si], cpu, fracs[f], 2e-6f, &rel, out), "%s kernels, n %zu, max_norm %g x norm",
                        cpu ? "CPU" : "GPU", odd_sizes[si], (double)fracs[f]);
                T_CHECK(fracs[f] < 1.0f || out[0] == 1.0f, "factor %g, want exactly 1", (double)out[0]);
            }
    T_ERR(op_clip_coef(t_ctx(), op_b(NULL, 0), 0, -1.0f, NULL), DLCL_ERR_INVALID_ARG, "max_norm");
}

/* A ResNet-50-sized gradient: the float partial sums and their combine stay within 1e-5 of
 * the double sum, and two runs give the same bits. */
static void sum_squares_of_25m_gradients_is_close_and_deterministic(void)
{
    const size_t n = 25000003;
    for (int cpu = 0; cpu < 2; cpu++) {
        double rel;
        float out[2];
        T_CHECK(norm_case(n, cpu, 0.5f, 1e-5f, &rel, out), "%s kernels", cpu ? "CPU" : "GPU");
        printf("# %s kernels: norm^2 within %.2e of the double sum\n", cpu ? "CPU" : "GPU", rel);
        T_CHECK(rel <= 1e-5, "%s kernels: norm^2 off by %.2e relative", cpu ? "CPU" : "GPU", rel);
    }
}

/* ------------------------------------------------------------------ smoothed cross-entropy */

static bool smooth_case(int n, int classes, float eps, float lo, float hi)
{
    dlcl_ctx *ctx = t_ctx();
    size_t nz = (size_t)n * classes;
    float *z = rnd(nz, lo, hi), *dz = malloc(nz * 4), *dzr = malloc(nz * 4), *st = malloc(2 * n * 4),
          *loss = malloc(n * 4), *lref = malloc(n * 4);
    int32_t *lab = malloc(n * 4);
    double *ld = malloc(n * sizeof *ld);
    int *ci = malloc(n * sizeof *ci);
    uint64_t s = t_seed() + (uint64_t)n * 31 + (uint64_t)classes;
    bool ok = ctx && z && dz && dzr && st && loss && lref && lab && ld && ci;
    for (int i = 0; ok && i < n; i++) lab[i] = (int32_t)(t_rand_u32(&s) % (uint32_t)classes);
    if (ok) softmax_xent_smooth_ref(z, lab, n, classes, eps, 1.0f / n, ld, ci, dzr);
    for (int i = 0; ok && i < n; i++) lref[i] = (float)ld[i];
    dbuf Z = {0}, DZ = {0}, S = {0};
    cl_mem labels = NULL;
    ok = ok && dbuf_new(&Z, z, nz) && dbuf_new(&DZ, NULL, nz) && dbuf_new(&S, NULL, 2 * (size_t)n) &&
         rt_buffer_acquire(ctx, (size_t)n * 4, "labels", &labels) == DLCL_OK &&
         clEnqueueWriteBuffer(ctx->queue, labels, CL_TRUE, 0, (size_t)n * 4, lab, 0, NULL, NULL) == CL_SUCCESS &&
         op_softmax_xent_smooth(ctx, ob(&Z), labels, n, classes, eps, 1.0f / n, ob(&DZ), ob(&S)) == DLCL_OK &&
         dbuf_read(&DZ, dz, "dz") && dbuf_read(&S, st, "stats");
    for (int i = 0; ok && i < n; i++) loss[i] = st[2 * i];
    char label[96];
    snprintf(label, sizeof label, "loss, n=%d classes=%d eps %g logits in [%g,%g]", n, classes, (double)eps, (double)lo,
             (double)hi);
    ok = ok && t_close(label, loss, lref, n, 1e-5f, 1e-5f) && t_close("gradient", dz, dzr, nz, 1e-5f, 1e-6f);
    dbuf_free(&Z), dbuf_free(&DZ), dbuf_free(&S);
    if (labels) rt_buffer_release(ctx, labels);
    free(z), free(dz), free(dzr), free(st), free(loss), free(lref), free(lab), free(ld), free(ci);
    return ok;
}

static void smoothed_xent_matches_ref(void)
{
    const float eps[] = {0.0f, 0.1f, 1.0f};
    for (size_t e = 0; e < T_COUNT(eps); e++) {
        T_CHECK(smooth_case(13, 10, eps[e], -3, 3), "eps %g, ordinary logits", (double)eps[e]);
        T_CHECK(smooth_case(1, 7, eps[e], -3, 3), "eps %g, n = 1", (double)eps[e]);
        T_CHECK(smooth_case(3, 1, eps[e], -3, 3), "eps %g, classes = 1", (double)eps[e]);
        T_CHECK(smooth_case(5, 1000, eps[e], -1e4f, 1e4f), "eps %g, huge logits", (double)eps[e]);
    }
    T_ERR(op_softmax_xent_smooth(t_ctx(), op_b(NULL, 0), NULL, 1, 2, 1.5f, 1, op_b(NULL, 0), op_b(NULL, 0)),
          DLCL_ERR_INVALID_ARG, "label_smoothing");
}

/* ------------------------------------------------------------------ against torch */

static const char torch_prelude[] = "import sys, array, torch\n"
                                    "d = sys.argv[1]\n"
                                    "def rd(name):\n"
                                    "    a = array.array('f')\n"
                                    "    a.frombytes(open(d + '/' + name, 'rb').read())\n"
                                    "    return torch.tensor(a.tolist(), dtype=torch.float32)\n"
                                    "def wr(name, *ts):\n"
                                    "    a = array.array('f')\n"
                                    "    for t in ts: a.extend(t.detach().reshape(-1).tolist())\n"
                                    "    open(d + '/' + name, 'wb').write(a.tobytes())\n";

static bool have_torch(void) { return system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0; }

/* Writes in.bin (n floats) to dir, runs the prelude and body with /usr/bin/python3, which
 * writes out.bin, and reads m floats of it back. */
static bool run_torch(const char *dir, const float *in, size_t n, const char *body, float *out, size_t m)
{
    char path[600], cmd[1400];
    snprintf(path, sizeof path, "%s/in.bin", dir);
    if (!t_write_file(path, in, n * sizeof *in)) return false;
    snprintf(path, sizeof path, "%s/t.py", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL) return false;
    fputs(torch_prelude, f);
    fputs(body, f);
    if (fclose(f) != 0) return false;
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", path, dir);
    int rc = system(cmd);
    if (rc != 0) {
        printf("# python exited with %d\n", rc);
        return false;
    }
    snprintf(path, sizeof path, "%s/out.bin", dir);
    f = fopen(path, "rb");
    bool ok = f && fread(out, sizeof *out, m, f) == m && fgetc(f) == EOF;
    if (f) fclose(f);
    if (!ok) printf("# %s: expected %zu floats\n", path, m);
    return ok;
}

/* 20 steps of torch.optim.Adam and AdamW with weight decay on one tensor against the
 * reference and the kernels (weights and both state tensors). The hyperparameters are
 * handed to torch as the doubles of the floats dlcl gets, so both sides use the same. */
static void adam_and_adamw_refs_and_kernels_match_torch_over_20_steps(void)
{
    if (!have_torch()) T_SKIP("/usr/bin/python3 cannot import torch");
    enum { N = 29, STEPS = 20 };
    const float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.1f;
    float in[N * (STEPS + 1)], want[2][3][N];
    float *r = rnd(N, -1, 1), *gr = rnd_grad(N * STEPS);
    T_CHECK(r && gr, "out of memory");
    memcpy(in, r, N * sizeof(float));
    memcpy(in + N, gr, N * STEPS * sizeof(float));
    free(r), free(gr);
    char body[1024];
    snprintf(body, sizeof body,
             "x = rd('in.bin'); w0 = x[:%d]; g = x[%d:].reshape(%d, %d); out = []\n"
             "for cls in (torch.optim.Adam, torch.optim.AdamW):\n"
             "    p = torch.nn.Parameter(w0.clone())\n"
             "    o = cls([p], lr=%.17g, betas=(%.17g, %.17g), eps=%.17g, weight_decay=%.17g)\n"
             "    for s in range(%d):\n"
             "        p.grad = g[s].clone(); o.step()\n"
             "    out += [p, o.state[p]['exp_avg'], o.state[p]['exp_avg_sq']]\n"
             "wr('out.bin', *out)\n",
             N, N, STEPS, N, (double)lr, (double)b1, (double)b2, (double)eps, (double)wd, STEPS);
    T_CHECK(run_torch(t_tmpdir(0), in, T_COUNT(in), body, &want[0][0][0], 6 * N), "torch did not run");
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    const int was_cpu = ctx->cpu_device;
    for (int decoupled = 0; decoupled < 2; decoupled++) {
        const char *name = decoupled ? "AdamW" : "Adam";
        float w[N], m[N] = {0}, v[N] = {0}, got[3][N];
        memcpy(w, in, sizeof w);
        for (int s = 0; s < STEPS; s++)
            adam_step_ref(w, in + N * (s + 1), m, v, N, lr, b1, b2, eps, wd, decoupled, (uint64_t)s + 1, 1.0f);
        printf("# %s\n", name);
        T_CLOSE("reference weights vs torch", w, want[decoupled][0], N, 1e-5f, 1e-6f);
        T_CLOSE("reference exp_avg vs torch", m, want[decoupled][1], N, 1e-5f, 1e-6f);
        T_CLOSE("reference exp_avg_sq vs torch", v, want[decoupled][2], N, 1e-5f, 1e-8f);
        for (int cpu = 0; cpu < 2; cpu++) {
            dbuf W = {0}, G = {0}, M = {0}, V = {0};
            bool ok = dbuf_new(&W, in, N) && dbuf_new(&G, NULL, N) && dbuf_new(&M, NULL, N) && dbuf_new(&V, NULL, N);
            ctx->cpu_device = cpu;
            for (int s = 0; ok && s < STEPS; s++)
                ok = write_dev(&G, in + N * (s + 1)) &&
                     op_adam_step(ctx, ob(&W), ob(&G), ob(&M), ob(&V), N, lr, b1, b2, eps, wd, decoupled,
                                  (uint64_t)s + 1, NULL) == DLCL_OK;
            ctx->cpu_device = was_cpu;
            ok = ok && dbuf_read(&W, got[0], "w") && dbuf_read(&M, got[1], "m") && dbuf_read(&V, got[2], "v");
            printf("# %s kernel\n", cpu ? "CPU" : "GPU");
            ok = ok && t_close("kernel weights vs torch", got[0], want[decoupled][0], N, 1e-5f, 1e-6f) &&
                 t_close("kernel exp_avg vs torch", got[1], want[decoupled][1], N, 1e-5f, 1e-6f) &&
                 t_close("kernel exp_avg_sq vs torch", got[2], want[decoupled][2], N, 1e-5f, 1e-8f);
            dbuf_free(&W), dbuf_free(&G), dbuf_free(&M), dbuf_free(&V);
            T_CHECK(ok, "%s, %s kernel", name, cpu ? "CPU" : "GPU");
        }
    }
}

/* clip_grad_norm_ over two tensors (13 and 7 gradients), clipped (max_norm 1) and not (10):
 * the reference's norm and clipped gradients, then the kernels': the norm from gscale[1],
 * the gradients as an SGD step from w = 0 with lr = -1 leaves them (w = g * gscale[0]). */
static void clip_matches_torch_clip_grad_norm(void)
{
    if (!have_torch()) T_SKIP("/usr/bin/python3 cannot import torch");
    enum { N = 20 };
    const float maxes[2] = {1.0f, 10.0f};
    float g[N], want[2][1 + N];
    float *r = rnd(N, -1, 1);
    T_CHECK(r != NULL, "out of memory");
    memcpy(g, r, sizeof g);
    free(r);
    const char *body = "x = rd('in.bin'); out = []\n"
                       "for mx in (1.0, 10.0):\n"
                       "    a = torch.nn.Parameter(torch.zeros(13)); b = torch.nn.Parameter(torch.zeros(7))\n"
                       "    a.grad = x[:13].clone(); b.grad = x[13:].clone()\n"
                       "    out += [torch.nn.utils.clip_grad_norm_([a, b], mx).reshape(1), a.grad, b.grad]\n"
                       "wr('out.bin', *out)\n";
    T_CHECK(run_torch(t_tmpdir(0), g, N, body, &want[0][0], 2 * (1 + N)), "torch did not run");
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    const int was_cpu = ctx->cpu_device;
    for (int k = 0; k < 2; k++) {
        printf("# max_norm %g, torch's norm %g\n", (double)maxes[k], (double)want[k][0]);
        const double norm = sqrt(sum_squares_ref(g, N));
        const float coef = (float)clip_coef_ref(norm, maxes[k]), fnorm = (float)norm;
        float ref[N], got[N], gs_back[2];
        for (int i = 0; i < N; i++) ref[i] = g[i] * coef;
        T_CLOSE("reference norm vs torch", &fnorm, want[k], 1, 1e-6f, 0);
        T_CLOSE("reference clipped gradients vs torch", ref, want[k] + 1, N, 1e-6f, 1e-7f);
        for (int cpu = 0; cpu < 2; cpu++) {
            ctx->cpu_device = cpu;
            size_t np = op_sum_squares_partials(ctx, N);
            dbuf G = {0}, P = {0}, W = {0};
            cl_mem gs = plain_buf(NULL, 0, 2);
            float zero = 0.0f;
            bool ok = gs && dbuf_new(&G, g, N) && dbuf_new(&P, NULL, np) && dbuf_new(&W, NULL, N) &&
                      op_sum_squares(ctx, ob(&G), N, ob(&P)) == DLCL_OK &&
                      op_clip_coef(ctx, ob(&P), np, maxes[k], gs) == DLCL_OK &&
                      op_sgd_step_scaled(ctx, ob(&W), ob(&G), op_b(NULL, 0), N, -1.0f, zero, zero, 0, gs) == DLCL_OK &&
                      dbuf_read(&W, got, "clipped") &&
                      clEnqueueReadBuffer(ctx->queue, gs, CL_TRUE, 0, sizeof gs_back, gs_back, 0, NULL, NULL) == CL_SUCCESS;
            ctx->cpu_device = was_cpu;
            printf("# %s kernels\n", cpu ? "CPU" : "GPU");
            ok = ok && t_close("kernel norm vs torch", gs_back + 1, want[k], 1, 1e-6f, 0) &&
                 t_close("kernel clipped gradients vs torch", got, want[k] + 1, N, 1e-6f, 1e-7f);
            dbuf_free(&G), dbuf_free(&P), dbuf_free(&W);
            if (gs) clReleaseMemObject(gs);
            T_CHECK(ok, "max_norm %g, %s kernels", (double)maxes[k], cpu ? "CPU" : "GPU");
        }
    }
}

/* F.cross_entropy(z, y, label_smoothing=0.2), a mean over 5 samples of 7 classes: the loss
 * and z's gradient, against the reference and the kernel. */
static void smoothed_xent_ref_and_kernel_match_torch_cross_entropy(void)
{
    if (!have_torch()) T_SKIP("/usr/bin/python3 cannot import torch");
    enum { N = 5, K = 7 };
    const float eps = 0.2f;
    float in[N * K + N], want[1 + N * K];
    int32_t lab[N];
    float *r = rnd(N * K, -3, 3);
    T_CHECK(r != NULL, "out of memory");
    memcpy(in, r, N * K * sizeof(float));
    free(r);
    uint64_t s = t_seed();
    for (int i = 0; i < N; i++) in[N * K + i] = (float)(lab[i] = (int32_t)(t_rand_u32(&s) % K));
    char body[512];
    snprintf(body, sizeof body,
             "x = rd('in.bin'); z = x[:%d].reshape(%d, %d).clone().requires_grad_(); y = x[%d:].long()\n"
             "l = torch.nn.functional.cross_entropy(z, y, label_smoothing=%.17g); l.backward()\n"
             "wr('out.bin', l.reshape(1), z.grad)\n",
             N * K, N, K, N * K, (double)eps);
    T_CHECK(run_torch(t_tmpdir(0), in, T_COUNT(in), body, want, T_COUNT(want)), "torch did not run");
    double loss[N];
    int correct[N];
    float dz[N * K], mean;
    softmax_xent_smooth_ref(in, lab, N, K, eps, 1.0f / N, loss, correct, dz);
    mean = (float)((loss[0] + loss[1] + loss[2] + loss[3] + loss[4]) / N);
    T_CLOSE("reference loss vs torch", &mean, want, 1, 1e-6f, 0);
    T_CLOSE("reference gradient vs torch", dz, want + 1, N * K, 1e-5f, 1e-7f);
    dlcl_ctx *ctx = t_ctx();
    dbuf Z = {0}, DZ = {0}, S = {0};
    cl_mem labels = NULL;
    float st[2 * N];
    bool ok = ctx && dbuf_new(&Z, in, N * K) && dbuf_new(&DZ, NULL, N * K) && dbuf_new(&S, NULL, 2 * N) &&
              rt_buffer_acquire(ctx, sizeof lab, "labels", &labels) == DLCL_OK &&
              clEnqueueWriteBuffer(ctx->queue, labels, CL_TRUE, 0, sizeof lab, lab, 0, NULL, NULL) == CL_SUCCESS &&
              op_softmax_xent_smooth(ctx, ob(&Z), labels, N, K, eps, 1.0f / N, ob(&DZ), ob(&S)) == DLCL_OK &&
              dbuf_read(&DZ, dz, "dz") && dbuf_read(&S, st, "stats");
    mean = ok ? (st[0] + st[2] + st[4] + st[6] + st[8]) / N : 0;
    ok = ok && t_close("kernel loss vs torch", &mean, want, 1, 1e-6f, 0) &&
         t_close("kernel gradient vs torch", dz, want + 1, N * K, 1e-5f, 1e-7f);
    dbuf_free(&Z), dbuf_free(&DZ), dbuf_free(&S);
    if (labels) rt_buffer_release(ctx, labels);
    T_CHECK(ok, "kernel vs torch");
}
/* ------------------------------------------------------------------ lib/net/optim.c */

static void optim_types_table_is_consistent(void)
{
    for (int i = 0; i < OPTIM_TYPE_COUNT; i++) {
        const optim_type *t = &optim_types[i];
        T_CHECK(optim_type_names[i] && strcmp(t->name, optim_type_names[i]) == 0, "type %d: name '%s' vs '%s'", i,
                t->name, optim_type_names[i] ? optim_type_names[i] : "(null)");
        int n = 0;
        while (t->state_names[n]) n++;
        T_CHECK(n == t->n_state, "%s: %d state names for %d slots", t->name, n, t->n_state);
        T_CHECK(t->parse && t->step && t->keys, "%s: missing parse, step or keys", t->name);
    }
    T_CHECK(optim_type_names[OPTIM_TYPE_COUNT] == NULL, "names not NULL-terminated");
    T_CHECK(strcmp(optim_types[OPTIM_ADAMW].state_names[1], "exp_avg_sq") == 0, "adamw's second slot");
}

/* An INI with a [net] section (lines 1-2), then [optimizer] (line 3) and text from line 4,
 * loaded and parsed. */
static dlcl_status parse_text(const char *text, net_optim *o)
{
    char path[600], ini[1024];
    snprintf(path, sizeof path, "%s/opt.ini", t_tmpdir(1));
    int len = snprintf(ini, sizeof ini, "[net]\ninput=1,2,3\n%s%s\n", text ? "[optimizer]\n" : "", text ? text : "");
    if (!t_write_file(path, ini, (size_t)len)) return dlcl__err(DLCL_ERR_IO, "cannot write %s", path);
    cfg c = {0};
    dlcl_status st = cfg_load(path, &c);
    if (st == DLCL_OK) st = optim_parse(&c, o);
    cfg_free(&c);
    return st;
}

static void optim_parse_reads_good_configs(void)
{
    net_optim o;
    T_OK(parse_text(NULL, &o));
    T_CHECK(o.type == &optim_types[OPTIM_SGD] && o.lr == 0.01 && o.weight_decay == 0 && o.schedule == OPTIM_SCHED_NONE &&
            o.clip_grad_norm == 0 && o.warmup_steps == 0 && o.label_smoothing == 0 && o.no_decay == 0 &&
            optim_state_slots(&o) == 0, "defaults without [optimizer]");
    T_OK(parse_text("type=sgd\nlearning_rate=0.1\nmomentum=0.9\nnesterov=1\nweight_decay=5e-4\nschedule=step\n"
                    "step_size=3\ngamma=0.5", &o));
    T_CHECK(o.lr == 0.1 && o.momentum == 0.9 && o.nesterov && o.weight_decay == 5e-4 && o.schedule == OPTIM_SCHED_STEP &&
            o.step_size == 3 && o.gamma == 0.5 && optim_state_slots(&o) == 1, "today's sgd keys");
    T_OK(parse_text("type=adamw\nlearning_rate=1e-3\nweight_decay=0.05\nwarmup_steps=500\nschedule=cosine\n"
                    "clip_grad_norm=1\nbetas = 0.8 , 0.95\neps=1e-6\nno_decay = bias, batchnorm\nlabel_smoothing=0.1", &o));
    T_CHECK(o.type == &optim_types[OPTIM_ADAMW] && o.lr == 1e-3 && o.weight_decay == 0.05 && o.warmup_steps == 500 &&
            o.schedule == OPTIM_SCHED_COSINE && o.clip_grad_norm == 1 && o.beta1 == 0.8 && o.beta2 == 0.95 &&
            o.eps == 1e-6 && o.no_decay == 3 && o.label_smoothing == 0.1 && optim_state_slots(&o) == 2,
            "a full adamw section");
    T_OK(parse_text("type=adam", &o)); /* torch.optim's defaults */
    T_CHECK(o.lr == 1e-3 && o.weight_decay == 0 && o.beta1 == 0.9 && o.beta2 == 0.999 && o.eps == 1e-8, "adam defaults");
    T_OK(parse_text("type=adamw\nno_decay=", &o));
    T_CHECK(o.lr == 1e-3 && o.weight_decay == 1e-2 && o.no_decay == 0, "adamw defaults");
}

static void optim_parse_rejects_bad_configs(void)
{
    static const struct {
        const char *text, *message;
    } bad[] = {
        {"type=adma", "opt.ini:4: [optimizer] type = 'adma': unknown value (did you mean 'adam'?"},
        {"type=rmsprop", "one of: sgd, adam, adamw"},
        {"type=adam\nmomentum=0.9", "opt.ini:5: [optimizer]: key 'momentum' belongs to type sgd, not adam"},
        {"betas=0.9, 0.99", "key 'betas' belongs to type adam, not sgd"},
        {"learning_rat=0.1", "opt.ini:4: [optimizer]: unknown key 'learning_rat' (did you mean 'learning_rate'?)"},
        {"momentum=0\nnesterov=1", "opt.ini:5: [optimizer] nesterov = '1': nesterov needs momentum > 0"},
        {"type=adam\nbetas=0.9", "betas = '0.9': expected two numbers in [0, 1)"},
        {"type=adam\nbetas=0.9, 1", "expected two numbers in [0, 1)"},
        {"type=adam\nbetas=0.9, 0.99, 0.9", "expected two numbers in [0, 1)"},
        {"type=adamw\neps=-1", "eps = '-1'"},
        {"no_decay=bias, bais", "no_decay = 'bias, bais': unknown item 'bais' (did you mean 'bias'?"},
        {"no_decay=weights", "unknown item 'weights' (a list of: bias, batchnorm, layernorm)"},
        {"label_smoothing=1.5", "label_smoothing = '1.5': expected a number in [0, 1]"},
        {"warmup_steps=-1", "warmup_steps = '-1'"},
        {"clip_grad_norm=-1", "clip_grad_norm = '-1'"},
        {"schedule=cosin", "did you mean 'cosine'"},
        {"learning_rate=fast", "learning_rate = 'fast'"},
    };
    for (size_t i = 0; i < T_COUNT(bad); i++) {
        net_optim o;
        printf("# case %zu: ", i); /* one TAP comment line: the newlines as "; " */
        for (const char *p = bad[i].text; *p; p++) fputs(*p == '\n' ? "; " : (char[2]){*p, 0}, stdout);
        putchar('\n');
        T_ERR(parse_text(bad[i].text, &o), DLCL_ERR_CONFIG, bad[i].message);
    }
}

static bool near(double got, double want) { return fabs(got - want) <= 1e-12 * fabs(want); }

static void optim_lr_matches_closed_forms(void)
{
    net_optim o = {.type = &optim_types[OPTIM_SGD], .lr = 0.1, .warmup_steps = 4, .step_size = 1, .gamma = 0.1};
    const double warm[] = {0.025, 0.05, 0.075, 0.1, 0.1, 0.1};
    for (uint64_t s = 0; s < T_COUNT(warm); s++)
        T_CHECK(near(optim_lr(&o, 0, 10, s), warm[s]), "warm-up step %llu: %g, want %g", (unsigned long long)s,
                optim_lr(&o, 0, 10, s), warm[s]);
    o.schedule = OPTIM_SCHED_COSINE;
    o.warmup_steps = 100;
    for (int e = 0; e <= 10; e++) {
        const double cosine = 0.1 * 0.5 * (1 + cos(M_PI * e / 10));
        T_CHECK(near(optim_lr(&o, e, 10, 1000), cosine), "cosine epoch %d", e);
        T_CHECK(near(optim_lr(&o, e, 10, 9), cosine * 0.1), "cosine epoch %d, warm-up step 9", e);
    }
    T_CHECK(near(optim_lr(&o, 3, 0, 1000), 0.1), "cosine over 0 epochs keeps lr");
    o.schedule = OPTIM_SCHED_STEP;
    o.step_size = 3;
    o.gamma = 0.5;
    const double step[] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025};
    for (int e = 0; e < (int)T_COUNT(step); e++)
        T_CHECK(near(optim_lr(&o, e, 8, 100), step[e]) && near(optim_lr(&o, e, 8, 49), step[e] / 2), "step epoch %d", e);
}

static void optim_no_decay_picks_bias_and_batchnorm(void)
{
    net_optim o = {.type = &optim_types[OPTIM_SGD]};
    T_CHECK(!optim_no_decay(&o, "bias", "dense") && !optim_no_decay(&o, "weight", "batchnorm"), "nothing listed");
    o.no_decay = 1u << OPTIM_NO_DECAY_BIAS;
    T_CHECK(optim_no_decay(&o, "bias", "dense") && optim_no_decay(&o, "layer1.0.conv1.bias", NULL), "bias");
    T_CHECK(!optim_no_decay(&o, "weight", "dense") && !optim_no_decay(&o, "biases", "conv") &&
            !optim_no_decay(&o, "weight", "batchnorm"), "bias only");
    o.no_decay |= 1u << OPTIM_NO_DECAY_BATCHNORM;
    T_CHECK(optim_no_decay(&o, "weight", "batchnorm") && !optim_no_decay(&o, "weight", "conv"), "batchnorm");
}

/* One configuration of optim_step as the net runs it: parameters with weight decay then
 * those without (two ranges, each one call), state slots a whole region apart, gradients
 * clipped by optim_clip, the learning rate from optim_lr; three steps against the refs. */
static bool optim_step_case(const net_optim *o)
{
    enum { N1 = 5003, N2 = 1037, N = N1 + N2 };
    dlcl_ctx *ctx = t_ctx();
    const int slots = optim_state_slots(o);
    float *w = rnd(N, -1, 1), *got = malloc(N * 4), *st = calloc(2 * N, 4), *g = NULL, *sg = malloc(2 * N * 4);
    dbuf W = {0}, G = {0}, S = {0};
    cl_mem scratch = NULL, gs = plain_buf(NULL, 0, OPTIM_GSCALE_FLOATS);
    cl_int err = CL_SUCCESS;
    bool ok = ctx && w && got && st && sg && gs && dbuf_new(&W, w, N) && dbuf_new(&G, NULL, N) &&
              (slots == 0 || dbuf_new(&S, NULL, (size_t)slots * N));
    if (ok) scratch = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, optim_clip_scratch(ctx, N) * 4, NULL, &err);
    ok = ok && err == CL_SUCCESS;
    const size_t off[2] = {0, N1}, len[2] = {N1, N2};
    const float wd[2] = {(float)o->weight_decay, 0.0f};
    for (uint64_t step = 0; ok && step < 3; step++) {
        free(g);
        g = rnd_grad(N);
        const float lr = (float)optim_lr(o, 0, 5, step);
        const float coef = o->clip_grad_norm > 0 ? (float)clip_coef_ref(sqrt(sum_squares_ref(g, N)), o->clip_grad_norm) : 1;
        ok = g && write_dev(&G, g) && optim_clip(ctx, o, ob(&G), N, scratch, gs) == DLCL_OK;
        for (int r = 0; ok && r < 2; r++) {
            float *wr = w + off[r], *gr = g + off[r], *m = st + off[r], *v = st + N + off[r];
            if (o->type == &optim_types[OPTIM_SGD])
                sgd_step_scaled_ref(wr, gr, m, len[r], lr, (float)o->momentum, wd[r], o->nesterov, coef);
            else
                adam_step_ref(wr, gr, m, v, len[r], lr, (float)o->beta1, (float)o->beta2, (float)o->eps, wd[r],
                              o->type == &optim_types[OPTIM_ADAMW], step + 1, coef);
            op_buf state = slots ? op_b(S.mem, GUARD + off[r]) : op_b(NULL, 0);
            ok = optim_step(ctx, o, op_b(W.mem, GUARD + off[r]), op_b(G.mem, GUARD + off[r]), state, N, len[r], lr,
                            wd[r], step, o->clip_grad_norm > 0 ? gs : NULL) == DLCL_OK;
        }
    }
    if (!ok && dlcl_last_error()[0]) printf("# %s\n", dlcl_last_error());
    ok = ok && dbuf_read(&W, got, "w") && t_close("weights", got, w, N, 1e-5f, 1e-6f);
    if (ok && slots) ok = dbuf_read(&S, sg, "state") && t_close("state", sg, st, (size_t)slots * N, 1e-5f, 1e-6f);
    dbuf_free(&W), dbuf_free(&G), dbuf_free(&S);
    if (scratch) clReleaseMemObject(scratch);
    if (gs) clReleaseMemObject(gs);
    free(w), free(got), free(st), free(g), free(sg);
    return ok;
}

static void optim_step_matches_refs_over_two_ranges(void)
{
    static const char *const configs[] = {
        "type=sgd\nlearning_rate=0.1\nmomentum=0.9\nnesterov=1\nweight_decay=1e-2\nclip_grad_norm=5\nwarmup_steps=2",
        "type=sgd\nlearning_rate=0.1\nweight_decay=1e-2",
        "type=adam\nlearning_rate=1e-2\nweight_decay=1e-2\nclip_grad_norm=10\nwarmup_steps=3",
        "type=adamw\nlearning_rate=1e-2\nweight_decay=0.1\nbetas=0.8, 0.99\nclip_grad_norm=1e3",
    };
    for (size_t i = 0; i < T_COUNT(configs); i++) {
        net_optim o;
        T_OK(parse_text(configs[i], &o));
        T_CHECK(optim_step_case(&o), "config %zu: %s", i, configs[i]);
    }
    net_optim o;
    T_OK(parse_text("type=adam", &o));
    T_ERR(optim_step(t_ctx(), &o, op_b(NULL, 0), op_b(NULL, 0), op_b(NULL, 0), 8, 8, 0.1f, 0, 0, NULL),
          DLCL_ERR_INVALID_ARG, "2 state slots");
    cl_mem dummy = plain_buf(NULL, 0, 2);
    T_CHECK(dummy != NULL, "no buffer");
    T_ERR(optim_step(t_ctx(), &o, op_b(dummy, 0), op_b(dummy, 0), op_b(dummy, 0), 1, 2, 0.1f, 0, 0, NULL),
          DLCL_ERR_INVALID_ARG, "stride");
    T_OK(parse_text("clip_grad_norm=1", &o));
    T_ERR(optim_clip(t_ctx(), &o, op_b(dummy, 0), 1u << 20, dummy, dummy), DLCL_ERR_INVALID_ARG, "scratch");
    clReleaseMemObject(dummy);
}

static const t_case cases[] = {
    T_CASE(sgd_kernels_match_ref_on_odd_sizes),
    T_CASE(adam_kernels_match_ref_on_odd_sizes),
    T_CASE(sum_squares_and_clip_coef_match_ref_on_odd_sizes),
    T_CASE(sum_squares_of_25m_gradients_is_close_and_deterministic),
    T_CASE(smoothed_xent_matches_ref),
    T_CASE(adam_and_adamw_refs_and_kernels_match_torch_over_20_steps),
    T_CASE(clip_matches_torch_clip_grad_norm),
    T_CASE(smoothed_xent_ref_and_kernel_match_torch_cross_entropy),
    T_CASE(optim_types_table_is_consistent),
    T_CASE(optim_parse_reads_good_configs),
    T_CASE(optim_parse_rejects_bad_configs),
    T_CASE(optim_lr_matches_closed_forms),
    T_CASE(optim_no_decay_picks_bias_and_batchnorm),
    T_CASE(optim_step_matches_refs_over_two_ranges),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
