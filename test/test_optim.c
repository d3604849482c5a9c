/* The smoothed cross-entropy against the plain-C reference in ref/, and the reference
 * against torch when /usr/bin/python3 has it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/ops/ops.h"
#include "ref/ref.h"

#include "dbuf.h"
#include "test.h"

static float *rnd(size_t n, float lo, float hi)
{
    static uint64_t s;
    if (s == 0) s = t_seed() ^ 0x6f7074696dull;
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (x) t_fill_uniform(&s, x, n, lo, hi);
    return x;
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
    if (labels) rt_buffer_release(ctx, labels, (size_t)n * 4);
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
    if (labels) rt_buffer_release(ctx, labels, sizeof lab);
    T_CHECK(ok, "kernel vs torch");
}
static const t_case cases[] = {
    T_CASE(smoothed_xent_matches_ref),
    T_CASE(smoothed_xent_ref_and_kernel_match_torch_cross_entropy),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
