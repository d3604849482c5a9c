/* The inference graph optimisation (lib/net/optimize.c): on a small residual net with
 * conv + batch norm (+ relu) + residual add, a batch norm that cannot fold (after the add),
 * conv + batch norm + activation layer, dense + batch norm 1d, dropout and identity, with
 * random weights and batch-norm statistics loaded from a file: the optimised net gives the
 * plain inference net's logits and the training net's evaluation, refolds on every load,
 * keeps the original tensors in its regions, says what it folded, and [net] optimize = 0 or
 * DLCL_OPTIMIZE=0 turn it off. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/net/net.h"
#include "test.h"

#define BATCH 4
#define CLASSES 5

static const char *net_text =
    "[net]\ninput=3,8,8\nclasses=5\nbatch=4\nseed=3\n[optimizer]\nlearning_rate=0\n"
    "[c1]\ntype=conv\nfilters=6\nsize=3\npad=1\nbias=0\n"
    "[bn1]\ntype=batchnorm\nactivation=relu\n"
    "[c2]\ntype=conv\nfilters=6\nsize=3\npad=1\nbias=0\n"
    "[bn2]\ntype=batchnorm\n"
    "[add]\ntype=add\ninput=bn2, bn1\nactivation=relu\n"
    "[bna]\ntype=batchnorm\n"
    "[c3]\ntype=conv\nfilters=5\nsize=3\nstride=2\npad=1\n"
    "[bn3]\ntype=batchnorm\n"
    "[act3]\ntype=activation\nactivation=relu\n"
    "[drop]\ntype=dropout\nrate=0.3\n"
    "[id]\ntype=identity\n"
    "[flat]\ntype=flatten\n"
    "[fc1]\ntype=dense\nunits=7\n"
    "[bnf]\ntype=batchnorm\n"
    "[drop2]\ntype=dropout\n"
    "[fc2]\ntype=dense\nunits=5\n";

static const char *write_cfg(void)
{
    static char path[600];
    const char *dir = t_tmpdir(0);
    if (dir == NULL) return NULL;
    snprintf(path, sizeof path, "%s/opt.ini", dir);
    return t_write_file(path, net_text, strlen(net_text)) ? path : NULL;
}

/* Random weights in the training net's regions, batch-norm statistics far from 0 and 1
 * (variance in [0.3, 3]); the host copies stay in *hp and *hb. */
static bool randomise(dlcl_net *net, uint64_t *rng, float **hp, float **hb)
{
    *hp = malloc(net->n_params * sizeof **hp);
    *hb = malloc(net->n_buffers * sizeof **hb);
    if (*hp == NULL || *hb == NULL) return false;
    t_fill_uniform(rng, *hp, net->n_params, -0.6f, 0.6f);
    for (size_t i = 0; i < net->n_layers; i++) {
        const layer *l = &net->layers[i];
        for (int p = 0; p < l->n_params; p++) {
            const layer_param *lp = &l->params[p];
            if (lp->region != LAYER_BUFFER) continue;
            bool var = strcmp(lp->suffix, "running_var") == 0;
            t_fill_uniform(rng, *hb + lp->off, lp->numel, var ? 0.3f : -0.8f, var ? 3.0f : 0.8f);
        }
        if (strcmp(l->type->name, "batchnorm") == 0) /* gamma in [0.5, 1.5], some negative */
            for (size_t c = 0; c < l->params[0].numel; c++)
                (*hp)[l->params[0].off + c] = t_rand_uniform(rng, 0.5f, 1.5f) * (c % 3 == 2 ? -1.0f : 1.0f);
    }
    cl_command_queue q = net->ctx->queue;
    return clEnqueueWriteBuffer(q, net->params, CL_TRUE, 0, net->n_params * 4, *hp, 0, NULL, NULL) == CL_SUCCESS &&
           clEnqueueWriteBuffer(q, net->buffers, CL_TRUE, 0, net->n_buffers * 4, *hb, 0, NULL, NULL) == CL_SUCCESS;
}

static float scale_of(const float *x, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

/* got against want within 1e-5 of want's scale */
static bool same_logits(const char *label, const float *got, const float *want)
{
    size_t n = BATCH * CLASSES;
    float s = scale_of(want, n);
    printf("# %s: logits of scale %g\n", label, (double)s);
    return s > 0 && t_close(label, got, want, n, 1e-5f, 1e-5f * s);
}

static int find(const dlcl_net *net, const char *name)
{
    for (size_t i = 0; i < net->n_layers; i++)
        if (strcmp(net->layers[i].name, name) == 0) return (int)i;
    return -1;
}

static bool detail_has(const dlcl_net *net, const char *layer_name, const char *text)
{
    dlcl_layer_info li;
    int i = find(net, layer_name);
    if (i < 0 || dlcl_net_layer_info(net, (size_t)i, &li) != DLCL_OK) return false;
    printf("# [%s] %s\n", layer_name, li.detail);
    return strstr(li.detail, text) != NULL;
}

/* Whether any layer's detail says it was folded or removed. */
static bool any_optimised(const dlcl_net *net)
{
    for (size_t i = 0; i < net->n_layers; i++) {
        dlcl_layer_info li;
        if (dlcl_net_layer_info(net, i, &li) != DLCL_OK || strstr(li.detail, "folded") ||
            strstr(li.detail, "removed") || strchr(li.detail, '+'))
            return true;
    }
    return net->n_folded > 0;
}

/* Whether every tensor of net holds the values of the same tensor in hp and hb, the regions
 * of ref (the training net of the same config, whose parameter layout differs: an optimised
 * inference net keeps its conv and dense weights last, on the host only). */
static bool regions_equal(const dlcl_net *net, const dlcl_net *ref, const float *hp, const float *hb)
{
    float *p = malloc(net->n_params * 4), *b = malloc(net->n_buffers * 4);
    cl_command_queue q = net->ctx->queue;
    bool ok = p && b && net->n_layers == ref->n_layers && net->n_params == ref->n_params &&
              net_params_io((dlcl_net *)net, false, 0, p, net->n_params, "regions") == DLCL_OK &&
              clEnqueueReadBuffer(q, net->buffers, CL_TRUE, 0, net->n_buffers * 4, b, 0, NULL, NULL) == CL_SUCCESS &&
              memcmp(b, hb, net->n_buffers * 4) == 0;
    for (size_t i = 0; ok && i < net->n_layers; i++)
        for (int k = 0; ok && k < net->layers[i].n_params; k++) {
            const layer_param *a = &net->layers[i].params[k], *r = &ref->layers[i].params[k];
            if (a->region == LAYER_PARAM) ok = memcmp(p + a->off, hp + r->off, a->numel * 4) == 0;
        }
    free(p);
    free(b);
    return ok;
}

static void folded_net_matches_plain_and_training_eval(void)
{
    const char *cfg = write_cfg();
    T_CHECK(cfg != NULL, "cannot write the config");
    char w1[640], w2[640];
    snprintf(w1, sizeof w1, "%s/w1.safetensors", t_tmpdir(0));
    snprintf(w2, sizeof w2, "%s/w2.safetensors", t_tmpdir(0));
    uint64_t rng = t_seed();
    float x[BATCH * 3 * 8 * 8], lt[BATCH * CLASSES], lo[BATCH * CLASSES], lp[BATCH * CLASSES];
    t_fill_uniform(&rng, x, T_COUNT(x), -1, 1);
    const char *plain_set[] = {"net.optimize=0"};
    dlcl_net *tr = NULL, *opt = NULL, *plain = NULL;
    float *hp1 = NULL, *hb1 = NULL, *hp2 = NULL, *hb2 = NULL;
    bool ok1 = false, ok2 = false, info_ok = false, plain_info_ok = false, regions_ok = false, regions2_ok = false;
    bool l1 = false, l2 = false, l3 = false, l4 = false;
    size_t opt_slots = 0, plain_slots = 0;
    dlcl_status s = dlcl_net_create(cfg, NULL, 0, NULL, &tr);
    if (s == DLCL_OK) s = dlcl_net_create_inference(cfg, NULL, 0, NULL, &opt);
    if (s == DLCL_OK) s = dlcl_net_create_inference(cfg, plain_set, 1, NULL, &plain);
    /* file 1 through dlcl_net_load */
    if (s == DLCL_OK && !(ok1 = randomise(tr, &rng, &hp1, &hb1))) s = DLCL_ERR_OPENCL;
    if (s == DLCL_OK) s = dlcl_net_save(tr, w1, 0);
    if (s == DLCL_OK) s = dlcl_net_logits(tr, x, BATCH, lt);
    if (s == DLCL_OK) s = dlcl_net_load(opt, w1, 0, NULL);
    if (s == DLCL_OK) s = dlcl_net_load(plain, w1, 0, NULL);
    if (s == DLCL_OK) s = dlcl_net_logits(opt, x, BATCH, lo);
    if (s == DLCL_OK) s = dlcl_net_logits(plain, x, BATCH, lp);
    if (s == DLCL_OK) {
        l1 = same_logits("optimised vs plain inference (file 1)", lo, lp);
        l2 = same_logits("optimised inference vs training net's evaluation (file 1)", lo, lt);
        regions_ok = regions_equal(opt, tr, hp1, hb1);
        info_ok = detail_has(opt, "bn1", "folded into c1") && detail_has(opt, "bn2", "folded into c2") &&
                  detail_has(opt, "bn3", "folded into c3") && detail_has(opt, "act3", "folded into c3") &&
                  detail_has(opt, "bnf", "folded into fc1") && detail_has(opt, "drop", "removed") &&
                  detail_has(opt, "drop2", "removed") && detail_has(opt, "c3", "+bn3 +act3") &&
                  detail_has(opt, "c1", "relu") && !detail_has(opt, "bna", "folded") && opt->n_folded > 0;
        plain_info_ok = !any_optimised(plain);
        opt_slots = opt->n_slots, plain_slots = plain->n_slots;
    }
    /* file 2 (other statistics) through dlcl_net_init_from: the folded copies follow */
    if (s == DLCL_OK && !(ok2 = randomise(tr, &rng, &hp2, &hb2))) s = DLCL_ERR_OPENCL;
    if (s == DLCL_OK) s = dlcl_net_save(tr, w2, 0);
    if (s == DLCL_OK) s = dlcl_net_logits(tr, x, BATCH, lt);
    if (s == DLCL_OK) s = dlcl_net_init_from(opt, w2, 0, NULL, 0);
    if (s == DLCL_OK) s = dlcl_net_init_from(plain, w2, 0, NULL, 0);
    if (s == DLCL_OK) s = dlcl_net_logits(opt, x, BATCH, lo);
    if (s == DLCL_OK) s = dlcl_net_logits(plain, x, BATCH, lp);
    if (s == DLCL_OK) {
        l3 = same_logits("optimised vs plain inference (file 2)", lo, lp);
        l4 = same_logits("optimised inference vs training net's evaluation (file 2)", lo, lt);
        regions2_ok = regions_equal(opt, tr, hp2, hb2);
    }
    dlcl_net_free(tr);
    dlcl_net_free(opt);
    dlcl_net_free(plain);
    free(hp1), free(hb1), free(hp2), free(hb2);
    T_OK(s);
    T_CHECK(l1 && l2 && l3 && l4, "logits differ (file 1: plain %d, training %d; file 2: plain %d, training %d)",
            l1, l2, l3, l4);
    T_CHECK(regions_ok && regions2_ok, "the optimised net's tensors are not the file's (file 1 %d, file 2 %d)",
            regions_ok, regions2_ok);
    T_CHECK(info_ok, "the layer info does not say what was folded and removed");
    T_CHECK(plain_info_ok, "optimize = 0 still folded or removed layers");
    printf("# activation buffers: optimised %zu, plain %zu\n", opt_slots, plain_slots);
}

/* DLCL_OPTIMIZE overrides [net] optimize both ways. */
static void env_overrides_the_switch(void)
{
    const char *cfg = write_cfg();
    T_CHECK(cfg != NULL, "cannot write the config");
    const char *off[] = {"net.optimize=0"};
    dlcl_net *a = NULL, *b = NULL;
    setenv("DLCL_OPTIMIZE", "0", 1);
    dlcl_status s = dlcl_net_create_inference(cfg, NULL, 0, NULL, &a);
    setenv("DLCL_OPTIMIZE", "1", 1);
    if (s == DLCL_OK) s = dlcl_net_create_inference(cfg, off, 1, NULL, &b);
    unsetenv("DLCL_OPTIMIZE");
    bool a_plain = s == DLCL_OK && !any_optimised(a), b_opt = s == DLCL_OK && any_optimised(b);
    dlcl_net_free(a);
    dlcl_net_free(b);
    T_OK(s);
    T_CHECK(a_plain, "DLCL_OPTIMIZE=0 did not turn the optimisation off");
    T_CHECK(b_opt, "DLCL_OPTIMIZE=1 did not turn it on over optimize = 0");
}

/* A training net folds nothing, whatever the switch says. */
static void training_net_is_not_optimised(void)
{
    const char *cfg = write_cfg();
    T_CHECK(cfg != NULL, "cannot write the config");
    dlcl_net *net = NULL;
    T_OK(dlcl_net_create(cfg, NULL, 0, NULL, &net));
    bool plain = !any_optimised(net);
    dlcl_net_free(net);
    T_CHECK(plain, "a training net was optimised");
}

static const t_case cases[] = {
    T_CASE(folded_net_matches_plain_and_training_eval),
    T_CASE(env_overrides_the_switch),
    T_CASE(training_net_is_not_optimised),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
