/* Networks from INI files: malformed configs (status, message, line), shape inference,
 * a finite-difference check of a whole net's gradients, checkpoint round trip and its
 * error cases. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/io/safetensors.h"
#include "../lib/net/net.h"
#include "test.h"

static const char *write_cfg(const char *text)
{
    static char path[600];
    const char *dir = t_tmpdir(0);
    if (dir == NULL) return NULL;
    snprintf(path, sizeof path, "%s/net.ini", dir);
    return t_write_file(path, text, strlen(text)) ? path : NULL;
}

#define NET_OK "[net]\ninput=1,8,8\nclasses=3\nbatch=4\n"

typedef struct bad_cfg {
    const char *name, *text;
    dlcl_status status;
    const char *msg1, *msg2; /* substrings the message must contain */
} bad_cfg;

static const bad_cfg bad_cfgs[] = {
    {"unknown_layer_type", NET_OK "[c1]\ntype=conv2d\nfilters=3\nsize=3\n", DLCL_ERR_CONFIG, "net.ini:6:",
     "did you mean 'conv'"},
    {"unknown_key_suggests", NET_OK "[c1]\ntype=conv\nfiltres=3\nsize=3\n[f]\ntype=dense\nunits=3\n", DLCL_ERR_CONFIG,
     "net.ini:7:", "did you mean 'filters'"},
    {"missing_required_key", NET_OK "[c1]\ntype=conv\nsize=3\n[f]\ntype=dense\nunits=3\n", DLCL_ERR_CONFIG,
     "net.ini:5:", "filters"},
    {"bad_integer", NET_OK "[f]\ntype=dense\nunits=ten\n", DLCL_ERR_CONFIG, "net.ini:7:", "units"},
    {"integer_out_of_range", NET_OK "[f]\ntype=dense\nunits=0\n", DLCL_ERR_CONFIG, "net.ini:7:", "units"},
    {"missing_net_section", "[f]\ntype=dense\nunits=3\n", DLCL_ERR_CONFIG, "[net]", NULL},
    {"input_more_than_four_values", "[net]\ninput=1,2,2,2,2\nclasses=3\n[f]\ntype=dense\nunits=3\n", DLCL_ERR_CONFIG,
     "net.ini:2:", "at most 4"},
    {"conv_on_a_vector", "[net]\ninput=8\nclasses=3\n[c]\ntype=conv\nfilters=3\nsize=1\n", DLCL_ERR_SHAPE,
     "net.ini:4:", "needs a C,H,W input"},
    {"bad_activation_suggests", NET_OK "[f]\ntype=dense\nunits=3\nactivation=rleu\n", DLCL_ERR_CONFIG, "net.ini:8:",
     "did you mean 'relu'"},
    {"no_layers", NET_OK, DLCL_ERR_CONFIG, "no layer sections", NULL},
    {"last_layer_not_classes", NET_OK "[f]\ntype=dense\nunits=4\n", DLCL_ERR_SHAPE, "net.ini:5:", "classes = 3"},
    {"kernel_larger_than_input", NET_OK "[c1]\ntype=conv\nfilters=3\nsize=9\n[f]\ntype=dense\nunits=3\n",
     DLCL_ERR_SHAPE, "net.ini:5:", "[c1]"},
    {"groups_do_not_divide", NET_OK "[c1]\ntype=conv\nfilters=3\nsize=3\ngroups=2\n[f]\ntype=dense\nunits=3\n",
     DLCL_ERR_SHAPE, "net.ini:5:", "groups"},
    {"input_forms_a_cycle", NET_OK "[a]\ntype=dense\nunits=3\ninput=b\n[b]\ntype=dense\nunits=3\n",
     DLCL_ERR_CONFIG, "cycle: [a] -> [b] -> [a]", "net.ini:"},
    {"input_names_no_layer", NET_OK "[a]\ntype=dense\nunits=3\ninput=inptu\n", DLCL_ERR_CONFIG, "net.ini:8:",
     "did you mean 'input'"},
    {"unread_output", NET_OK "[a]\ntype=dense\nunits=3\n[b]\ntype=dense\nunits=3\ninput=input\n", DLCL_ERR_CONFIG,
     "net.ini:5:", "[a] is never read"},
    {"output_names_no_layer", NET_OK "output=zz\n[a]\ntype=dense\nunits=3\n", DLCL_ERR_CONFIG, "net.ini:5:",
     "output = 'zz'"},
    {"unknown_optimizer", NET_OK "[optimizer]\ntype=lbfgs\n[f]\ntype=dense\nunits=3\n", DLCL_ERR_CONFIG, "net.ini:6:",
     "sgd"},
    {"unknown_schedule_suggests", NET_OK "[optimizer]\nschedule=cosin\n[f]\ntype=dense\nunits=3\n", DLCL_ERR_CONFIG,
     "net.ini:6:", "did you mean 'cosine'"},
    {"pool_larger_than_input", NET_OK "[p]\ntype=maxpool\nsize=16\n[f]\ntype=dense\nunits=3\n", DLCL_ERR_SHAPE,
     "net.ini:5:", "[p]"},
    {"syntax_error", NET_OK "[f\ntype=dense\n", DLCL_ERR_CONFIG, "net.ini:5:", NULL},
    {"dropout_rate_out_of_range", NET_OK "[d]\ntype=dropout\nrate=1.5\n[f]\ntype=dense\nunits=3\n", DLCL_ERR_CONFIG,
     "net.ini:7:", "rate"},
    {"unknown_net_key", NET_OK "epoch=3\n[f]\ntype=dense\nunits=3\n", DLCL_ERR_CONFIG, "net.ini:5:",
     "did you mean 'epochs'"},
    /* templated configs: a layer's error names the expanded section and the template's line */
    {"bad_value_in_loop_body", NET_OK "[for i in 1..3]\n[fc${i}]\ntype=dense\nunits=${i == 2 ? 0 : 3}\n[end]\n",
     DLCL_ERR_CONFIG, "net.ini:8: [fc2] units = '0'", NULL},
    {"unknown_key_in_loop_body", NET_OK "[for i in 1..2]\n[fc${i}]\ntype=dense\nunits=3\nunit=3\n[end]\n",
     DLCL_ERR_CONFIG, "net.ini:9: [fc1]: unknown key 'unit'", "did you mean 'units'"},
    {"template_error", NET_OK "[for i in 1..2]\n[fc${i}]\ntype=dense\nunits=${i * 2 + }\n[end]\n", DLCL_ERR_CONFIG,
     "net.ini:8: [fc1] units = '${i * 2 + }': bad expression", "(in [for i] at line 5, i = 1)"},
    {"layer_named_vars", NET_OK "[vars]\nn=vars\n[${n}]\ntype=dense\nunits=3\n", DLCL_ERR_CONFIG,
     "net.ini:7: [${n}] the section name [vars] is reserved", NULL},
};

static void malformed_configs_name_file_line_section(void)
{
    for (size_t i = 0; i < T_COUNT(bad_cfgs); i++) {
        const bad_cfg *b = &bad_cfgs[i];
        const char *path = write_cfg(b->text);
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

static void override_fixes_config_and_reports_unknown_section(void)
{
    const char *path = write_cfg(NET_OK "[f]\ntype=dense\nunits=4\n");
    T_CHECK(path != NULL, "cannot write config");
    dlcl_net *net = NULL;
    const char *fix[] = {"f.units=3"};
    T_OK(dlcl_net_create(path, fix, 1, NULL, &net));
    dlcl_net_info info;
    T_OK(dlcl_net_get_info(net, &info));
    dlcl_net_free(net);
    T_CHECK(info.n_params == 64 * 3 + 3, "params %zu", info.n_params);
    const char *bad[] = {"g.units=3"};
    T_ERR(dlcl_net_create(path, bad, 1, NULL, &net), DLCL_ERR_CONFIG, "[g]");
}

/* A [vars] + [for] config builds the same net as the one it spells out, and --set
 * vars.NAME reshapes it. */
static void templated_config_builds_the_net_it_spells_out(void)
{
    static const char *tmpl = NET_OK "[vars]\nwidths = 6, 5\nacts = relu, tanh\n"
                                     "[for i in 0..len(widths) - 1]\n[fc.${i}]\ntype=dense\nunits=${widths[i]}\n"
                                     "activation=${acts[i % 2]}\n[end]\n[out]\ntype=dense\nunits=3\n";
    static const char *plain = NET_OK "[fc.0]\ntype=dense\nunits=6\nactivation=relu\n"
                                      "[fc.1]\ntype=dense\nunits=5\nactivation=tanh\n[out]\ntype=dense\nunits=3\n";
    dlcl_net *a = NULL, *b = NULL, *c = NULL;
    dlcl_net_info ia, ib, ic;
    T_OK(dlcl_net_create(write_cfg(plain), NULL, 0, NULL, &a));
    dlcl_status s = dlcl_net_get_info(a, &ia);
    dlcl_net_free(a);
    T_OK(s);
    T_OK(dlcl_net_create(write_cfg(tmpl), NULL, 0, NULL, &b));
    dlcl_layer_info l1;
    s = dlcl_net_get_info(b, &ib);
    if (s == DLCL_OK) s = dlcl_net_layer_info(b, 1, &l1);
    dlcl_net_free(b);
    T_OK(s);
    const char *sets[] = {"vars.widths=7, 7, 7", "fc.2.units=4"};
    T_OK(dlcl_net_create(write_cfg(tmpl), sets, 2, NULL, &c));
    s = dlcl_net_get_info(c, &ic);
    dlcl_net_free(c);
    T_OK(s);
    size_t want = (64 * 6 + 6) + (6 * 5 + 5) + (5 * 3 + 3), want_set = (64 * 7 + 7) + (7 * 7 + 7) + (7 * 4 + 4) + (4 * 3 + 3);
    T_CHECK(ia.n_layers == 3 && ia.n_params == want, "plain: %zu layers, %zu params", ia.n_layers, ia.n_params);
    T_CHECK(ib.n_layers == 3 && ib.n_params == want && !strcmp(l1.name, "fc.1"), "templated: %zu layers, %zu params, "
            "layer 1 '%s'", ib.n_layers, ib.n_params, l1.name);
    T_CHECK(ic.n_layers == 4 && ic.n_params == want_set, "--set vars.widths: %zu layers, %zu params", ic.n_layers,
            ic.n_params);
}

static const char *lenet_like =
    "[net]\ninput=2,9,7\nclasses=5\nbatch=3\nseed=7\n"
    "[optimizer]\nlearning_rate=0\nmomentum=0\n"
    "[c1]\ntype=conv\nfilters=4\nsize=3\npad=1\nactivation=tanh\n"
    "[p1]\ntype=avgpool\nsize=2\nstride=2\n"
    "[c2]\ntype=conv\nfilters=4\nsize=3\npad=1\ngroups=2\nactivation=sigmoid\n"
    "[p2]\ntype=maxpool\nsize=2\nstride=1\n"
    "[f1]\ntype=dense\nunits=6\nactivation=gelu\n"
    "[f2]\ntype=dense\nunits=5\n";

static void shapes_and_parameter_counts_are_inferred(void)
{
    const char *path = write_cfg(lenet_like);
    T_CHECK(path != NULL, "cannot write config");
    dlcl_net *net = NULL;
    T_OK(dlcl_net_create(path, NULL, 0, NULL, &net));
    int want[][3] = {{4, 9, 7}, {4, 4, 3}, {4, 4, 3}, {4, 3, 2}, {6, 1, 1}, {5, 1, 1}};
    size_t want_params[] = {4 * 2 * 9 + 4, 0, 4 * 2 * 9 + 4, 0, 24 * 6 + 6, 6 * 5 + 5};
    for (size_t i = 0; i < 6; i++) {
        dlcl_layer_info li;
        dlcl_status s = dlcl_net_layer_info(net, i, &li);
        bool ok = s == DLCL_OK && li.out_c == want[i][0] && li.out_h == want[i][1] && li.out_w == want[i][2] &&
                  li.params == want_params[i];
        if (!ok) dlcl_net_free(net);
        T_CHECK(ok, "layer %zu: %dx%dx%d params %zu", i, li.out_c, li.out_h, li.out_w, li.params);
    }
    dlcl_net_free(net);
}

/* Mean loss of the batch at the net's current parameters. */
static dlcl_status mean_loss(dlcl_net *net, const float *x, const int32_t *y, int n, double *out)
{
    double sum;
    int c;
    dlcl_status s = dlcl_net_eval_batch(net, x, y, n, &sum, &c, NULL);
    *out = sum / n;
    return s;
}

static void whole_net_gradients_match_finite_differences(void)
{
    const char *path = write_cfg(lenet_like);
    T_CHECK(path != NULL, "cannot write config");
    dlcl_net *net = NULL;
    T_OK(dlcl_net_create(path, NULL, 0, NULL, &net));
    uint64_t rng = t_seed();
    enum { N = 3 };
    float x[N * 2 * 9 * 7];
    int32_t y[N] = {0, 3, 4};
    t_fill_uniform(&rng, x, T_COUNT(x), -1, 1);
    size_t np = net->n_params;
    float *w = malloc(np * sizeof *w), *g = malloc(np * sizeof *g);
    double loss;
    int correct;
    dlcl_status s = dlcl_net_train_batch(net, x, y, N, &loss, &correct); /* lr 0: grads only */
    cl_int e1 = clEnqueueReadBuffer(net->ctx->queue, net->grads, CL_TRUE, 0, np * 4, g, 0, NULL, NULL);
    cl_int e2 = clEnqueueReadBuffer(net->ctx->queue, net->params, CL_TRUE, 0, np * 4, w, 0, NULL, NULL);
    int bad = 0, checked = 0;
    const float eps = 1e-2f;
    for (size_t i = 0; s == DLCL_OK && i < np; i += 1 + t_rand_u32(&rng) % 5) {
        float orig = w[i];
        double lp = 0, lm = 0;
        w[i] = orig + eps;
        clEnqueueWriteBuffer(net->ctx->queue, net->params, CL_TRUE, 0, np * 4, w, 0, NULL, NULL);
        s = mean_loss(net, x, y, N, &lp);
        w[i] = orig - eps;
        clEnqueueWriteBuffer(net->ctx->queue, net->params, CL_TRUE, 0, np * 4, w, 0, NULL, NULL);
        if (s == DLCL_OK) s = mean_loss(net, x, y, N, &lm);
        w[i] = orig;
        double fd = (lp - lm) / (2 * eps);
        checked++;
        if (fabs(fd - g[i]) > 2e-3 + 3e-2 * fabs(fd)) {
            if (bad++ < 5) printf("# param %zu: analytic %.6g, finite difference %.6g\n", i, (double)g[i], fd);
        }
    }
    free(w);
    free(g);
    dlcl_net_free(net);
    T_CHECK(s == DLCL_OK && e1 == CL_SUCCESS && e2 == CL_SUCCESS, "%s", dlcl_last_error());
    T_CHECK(bad == 0, "%d of %d parameters disagree with finite differences", bad, checked);
    T_CHECK(checked > 50, "only %d parameters checked", checked);
}

static void checkpoint_round_trip_and_errors_name_the_tensor(void)
{
    const char *path = write_cfg(lenet_like);
    T_CHECK(path != NULL, "cannot write config");
    char ckpt[700], cfg2[700];
    snprintf(ckpt, sizeof ckpt, "%s.safetensors", path);
    dlcl_net *a = NULL, *b = NULL;
    T_OK(dlcl_net_create(path, NULL, 0, NULL, &a));
    const char *seed2[] = {"net.seed=99"};
    dlcl_status s = dlcl_net_create(path, seed2, 1, NULL, &b);
    float x[2 * 9 * 7 * 2], la[10], lb[10];
    uint64_t rng = t_seed();
    t_fill_uniform(&rng, x, T_COUNT(x), -1, 1);
    if (s == DLCL_OK) s = dlcl_net_save(a, ckpt, 3);
    if (s == DLCL_OK) s = dlcl_net_logits(a, x, 2, la);
    int epochs = -1;
    if (s == DLCL_OK) s = dlcl_net_load(b, ckpt, 1, &epochs);
    if (s == DLCL_OK) s = dlcl_net_logits(b, x, 2, lb);
    dlcl_net_free(a);
    dlcl_net_free(b);
    T_CHECK(s == DLCL_OK, "%s: %s", dlcl_status_str(s), dlcl_last_error());
    T_CHECK(epochs == 3, "epochs_done %d", epochs);
    T_CHECK(memcmp(la, lb, sizeof la) == 0, "logits differ after save/load");
    /* the same checkpoint into nets that differ: missing, extra and mismatching tensors */
    struct {
        const char *set, *msg;
    } cases[] = {{"f1.units=7", "'f1.weight' has shape"}, {"c1.bias=0", "'c1.bias' is not a parameter"}};
    for (size_t i = 0; i < T_COUNT(cases); i++) {
        const char *o[] = {cases[i].set};
        T_OK(dlcl_net_create(path, o, 1, NULL, &b));
        s = dlcl_net_load(b, ckpt, 0, NULL);
        dlcl_net_free(b);
        T_CHECK(t_err_matches(s, DLCL_ERR_CHECKPOINT, cases[i].msg), "%s: got %s: %s", cases[i].set,
                dlcl_status_str(s), dlcl_last_error());
    }
    /* a parameter stored as int64 (a num_batches_tracked under a parameter's name, say) */
    char ckpt_i64[720];
    snprintf(ckpt_i64, sizeof ckpt_i64, "%s.i64.safetensors", path);
    st_file f;
    T_OK(st_read(ckpt, &f));
    st_tensor *ts = malloc(f.count * sizeof *ts);
    int64_t zeros[64] = {0};
    bool swapped = false;
    for (size_t i = 0; ts && i < f.count; i++) {
        ts[i] = f.tensors[i];
        if (strcmp(ts[i].name, "c1.bias") == 0 && ts[i].ndim == 1 && ts[i].dims[0] <= 64) {
            ts[i].dtype = ST_I64, ts[i].data = NULL, ts[i].i64 = zeros;
            swapped = true;
        }
    }
    s = ts && swapped ? st_write(ckpt_i64, ts, f.count, NULL, NULL, 0) : DLCL_ERR_INVALID_ARG;
    free(ts);
    st_file_free(&f);
    T_CHECK(s == DLCL_OK, "cannot write %s (c1.bias found: %d): %s", ckpt_i64, swapped, dlcl_last_error());
    T_OK(dlcl_net_create(path, NULL, 0, NULL, &b));
    s = dlcl_net_load(b, ckpt_i64, 0, NULL);
    dlcl_net_free(b);
    unlink(ckpt_i64);
    T_CHECK(t_err_matches(s, DLCL_ERR_CHECKPOINT, "tensor 'c1.bias' is I64, the net needs float32"), "got %s: %s",
            dlcl_status_str(s), dlcl_last_error());
    snprintf(cfg2, sizeof cfg2, "%s", path);
    const char *more[] = {"f2.units=5", "f1.activation=relu"};
    T_OK(dlcl_net_create(cfg2, more, 2, NULL, &b));
    s = dlcl_net_load(b, "/nonexistent/ckpt.safetensors", 0, NULL);
    dlcl_net_free(b);
    T_CHECK(s == DLCL_ERR_NOT_FOUND || s == DLCL_ERR_IO, "missing file gave %s", dlcl_status_str(s));
}

static void training_reduces_loss_on_a_fixed_batch(void)
{
    const char *path = write_cfg(lenet_like);
    T_CHECK(path != NULL, "cannot write config");
    dlcl_net *net = NULL;
    const char *o[] = {"optimizer.learning_rate=0.1", "optimizer.momentum=0.9", "c2.activation=relu"};
    T_OK(dlcl_net_create(path, o, 3, NULL, &net));
    float x[3 * 2 * 9 * 7];
    int32_t y[3] = {1, 2, 4};
    uint64_t rng = t_seed();
    t_fill_uniform(&rng, x, T_COUNT(x), -1, 1);
    double first = 0, last = 0;
    dlcl_status s = DLCL_OK;
    for (int i = 0; i < 150 && s == DLCL_OK; i++) {
        int c;
        s = dlcl_net_train_batch(net, x, y, 3, &last, &c);
        if (i == 0) first = last;
        if (getenv("T_VERBOSE")) printf("# step %d loss %g\n", i, last);
    }
    dlcl_net_free(net);
    T_CHECK(s == DLCL_OK, "%s", dlcl_last_error());
    T_CHECK(last < 0.25 * first, "loss went from %g to %g", first, last);
}

/* Poisons one weight of layer `name` with +Inf, through the net's flat parameter buffer. */
/* An infinite first weight in layer `name`, through the region and the refold (an inference
 * net runs a copy of its conv and dense weights) */
static bool poison_weight(dlcl_net *net, const char *name)
{
    for (size_t i = 0; i < net->n_layers; i++)
        if (strcmp(net->layers[i].name, name) == 0) {
            float inf = INFINITY;
            return net_params_io(net, true, net->layers[i].params[0].off, &inf, 1, "poison") == DLCL_OK &&
                   net_refold(net) == DLCL_OK;
        }
    return false;
}

static size_t mem_bytes(cl_mem m)
{
    size_t b = 0;
    clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof b, &b, NULL);
    return b;
}

static bool read_params(dlcl_net *net, float *dst)
{
    return clEnqueueReadBuffer(net->ctx->queue, net->params, CL_TRUE, 0, net->n_params * sizeof(float), dst, 0, NULL,
                               NULL) == CL_SUCCESS;
}

/* A non-finite loss names the first layer whose output is not finite (or the input); with
 * check_numerics=1 training stops before the parameters change. */
static void nonfinite_values_name_the_first_layer(void)
{
    const char *path = write_cfg(lenet_like);
    T_CHECK(path != NULL, "cannot write config");
    float x[3 * 2 * 9 * 7];
    int32_t y[3] = {1, 2, 4};
    uint64_t rng = t_seed();
    t_fill_uniform(&rng, x, T_COUNT(x), -1, 1);
    for (int check = 0; check < 2; check++) {
        dlcl_net *net = NULL;
        const char *o[] = {"optimizer.learning_rate=0.1", check ? "net.check_numerics=1" : "net.check_numerics=0"};
        T_OK(dlcl_net_create(path, o, 2, NULL, &net));
        double loss;
        int c;
        /* an infinite weight in c2: c1 and p1 stay finite, c2 is the first that is not */
        float *before = malloc(net->n_params * sizeof(float)), *after = malloc(net->n_params * sizeof(float));
        bool poisoned = before && after && poison_weight(net, "c2") && read_params(net, before);
        dlcl_status s = dlcl_net_eval_batch(net, x, y, 3, &loss, &c, NULL);
        bool eval_named = s == DLCL_ERR_NUMERIC && strstr(dlcl_last_error(), "layer [c2]") != NULL;
        char msg0[512];
        snprintf(msg0, sizeof msg0, "%s", dlcl_last_error());
        s = dlcl_net_train_batch(net, x, y, 3, &loss, &c);
        bool c2_named = s == DLCL_ERR_NUMERIC && strstr(dlcl_last_error(), "layer [c2] (line ") != NULL;
        bool unchanged = poisoned && read_params(net, after) && memcmp(before, after, net->n_params * sizeof(float)) == 0;
        char msg2[512];
        snprintf(msg2, sizeof msg2, "%s", dlcl_last_error());
        /* a NaN pixel: the input is named first, whatever the parameters hold now */
        x[17] = NAN;
        s = dlcl_net_train_batch(net, x, y, 3, &loss, &c);
        x[17] = 0.5f;
        bool input_named = s == DLCL_ERR_NUMERIC && strstr(dlcl_last_error(), "input batch") != NULL;
        char msg1[512];
        snprintf(msg1, sizeof msg1, "%s", dlcl_last_error());
        free(before);
        free(after);
        dlcl_net_free(net);
        T_CHECK(input_named, "check %d: NaN input: %s", check, msg1);
        T_CHECK(poisoned && c2_named, "check %d: Inf weight in c2: %s", check, msg2);
        T_CHECK(!check || unchanged, "check_numerics=1 updated the parameters of a non-finite batch");
        T_CHECK(check || !unchanged, "without check_numerics the step should have been taken (test is blind)");
        T_CHECK(eval_named, "check %d: eval: %s", check, msg0);
    }
}

/* dlcl_net_create_inference: the same logits and loss as the training net from the same
 * config and seed, in less device memory; the layer outputs share buffers by liveness (a
 * chain, the only graph configs make today, takes two: a layer never writes the buffer it
 * reads); training entry points refuse; a non-finite output is still named, from a
 * layer-by-layer rerun. */
static const char *chain_net =
    "[net]\ninput=2,9,7\nclasses=5\nbatch=3\nseed=11\n"
    "[c1]\ntype=conv\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
    "[c2]\ntype=conv\nfilters=4\nsize=3\npad=1\n"
    "[c3]\ntype=conv\nfilters=3\nsize=3\npad=1\nactivation=tanh\n"
    "[p1]\ntype=maxpool\nsize=2\nstride=2\n"
    "[d1]\ntype=dropout\nrate=0.5\n"
    "[f1]\ntype=dense\nunits=6\nactivation=relu\n"
    "[f2]\ntype=dense\nunits=5\n";

static void inference_net_shares_buffers_and_matches_training_net(void)
{
    const char *path = write_cfg(chain_net);
    T_CHECK(path != NULL, "cannot write config");
    dlcl_net *tr = NULL, *inf = NULL;
    T_OK(dlcl_net_create(path, NULL, 0, NULL, &tr));
    dlcl_status s = dlcl_net_create_inference(path, NULL, 0, NULL, &inf);
    if (s != DLCL_OK) dlcl_net_free(tr);
    T_OK(s);
    float x[3 * 2 * 9 * 7], lt[3 * 5], li[3 * 5];
    int32_t y[3] = {4, 0, 2};
    uint64_t rng = t_seed();
    t_fill_uniform(&rng, x, T_COUNT(x), -1, 1);
    double loss_t = 0, loss_i = 0;
    int ct = 0, ci = 0;
    dlcl_net_info it, ii;
    dlcl_net_get_info(tr, &it);
    dlcl_net_get_info(inf, &ii);
    bool ok = dlcl_net_logits(tr, x, 3, lt) == DLCL_OK && dlcl_net_logits(inf, x, 3, li) == DLCL_OK &&
              dlcl_net_eval_batch(tr, x, y, 3, &loss_t, &ct, NULL) == DLCL_OK &&
              dlcl_net_eval_batch(inf, x, y, 3, &loss_i, &ci, NULL) == DLCL_OK;
    char err[512];
    snprintf(err, sizeof err, "%s", dlcl_last_error());
    /* inference: the outputs in two shared buffers; training: every output kept, the output
     * gradients in two shared buffers of the largest output's size */
    size_t slots = inf->n_slots, inf_act = 0, tr_act = 0, tr_grad = 0, largest = 0;
    for (size_t k = 0; k < inf->n_slots; k++) inf_act += mem_bytes(inf->slots[k]);
    for (size_t i = 0; i < tr->n_layers; i++) {
        size_t b = (size_t)tr->batch * layer_shape_numel(tr->layers[i].out) * sizeof(float);
        tr_act += b;
        if (b > largest) largest = b;
    }
    for (size_t k = 0; k < tr->n_slots; k++) tr_grad += mem_bytes(tr->slots[k]);
    size_t grad_slots = tr->n_slots;
    dlcl_status refused[3] = {dlcl_net_train_batch(inf, x, y, 3, &loss_i, &ci), DLCL_OK, DLCL_OK};
    dlcl_layer_timing lt3[8];
    double a, b;
    refused[1] = dlcl_net_profile(inf, x, y, 3, 1, lt3, &a, &b);
    char ckpt[600];
    snprintf(ckpt, sizeof ckpt, "%s/inf.safetensors", t_tmpdir(0));
    refused[2] = dlcl_net_save(inf, ckpt, 0);
    /* an Inf weight in c3: c1 and c2 stay finite, c3 is the first that is not */
    bool poisoned = poison_weight(inf, "c3");
    s = dlcl_net_eval_batch(inf, x, y, 3, &loss_i, &ci, NULL);
    bool named = s == DLCL_ERR_NUMERIC && strstr(dlcl_last_error(), "layer [c3]") != NULL;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", dlcl_last_error());
    dlcl_net_free(tr);
    dlcl_net_free(inf);
    T_CHECK(ok, "%s", err);
    printf("# device memory: training %.3f MiB, inference %.3f MiB in %zu activation buffers\n",
           it.device_bytes / 1048576.0, ii.device_bytes / 1048576.0, slots);
    T_CHECK(t_close("inference logits", li, lt, T_COUNT(lt), 1e-5f, 1e-5f), "logits differ from the training net's");
    T_CHECK(fabs(loss_i - loss_t) <= 1e-5 * fabs(loss_t) && ci == ct, "loss %g vs %g, correct %d vs %d", loss_i, loss_t,
            ci, ct);
    T_CHECK(slots == 2, "%zu activation buffers, expected 2", slots);
    T_CHECK(inf_act < tr_act, "inference outputs take %zu bytes, training's %zu", inf_act, tr_act);
    T_CHECK(grad_slots == 2 && tr_grad <= 2 * largest, "training: %zu output gradient buffers of %zu bytes in all, "
            "expected 2 of at most %zu", grad_slots, tr_grad, largest);
    for (int i = 0; i < 3; i++) T_CHECK(refused[i] == DLCL_ERR_INVALID_ARG, "training call %d: %s", i, dlcl_status_str(refused[i]));
    T_CHECK(poisoned && named, "Inf weight in c3: %s", msg);
}


/* [optimizer] accumulate = 2 on batches of 4 takes the step that one batch of 8 takes (same
 * mean gradient, up to summation order), and a checkpoint taken between the two halves
 * resumes to the same weights. adamw with clipping: the step reads the summed gradients. */
static void accumulated_steps_equal_one_large_batch_and_resume(void)
{
    const char *path = write_cfg("[net]\ninput=6\nclasses=3\nbatch=8\nseed=3\n"
                                 "[optimizer]\ntype=adamw\nlearning_rate=0.01\nclip_grad_norm=0.5\n"
                                 "[h]\ntype=dense\nunits=7\nactivation=tanh\n[o]\ntype=dense\nunits=3\n");
    T_CHECK(path != NULL, "cannot write config");
    float x[3][8 * 6];
    int32_t y[3][8];
    uint64_t rng = t_seed();
    for (int b = 0; b < 3; b++) {
        t_fill_uniform(&rng, x[b], 8 * 6, -1, 1);
        for (int i = 0; i < 8; i++) y[b][i] = (int32_t)((b * 8 + i * 5) % 3);
    }
    const char *acc[] = {"net.batch=4", "optimizer.accumulate=2"};
    dlcl_net *big = NULL, *small = NULL, *resumed = NULL;
    T_OK(dlcl_net_create(path, NULL, 0, NULL, &big));
    T_OK(dlcl_net_create(path, acc, 2, NULL, &small));
    T_OK(dlcl_net_create(path, acc, 2, NULL, &resumed));
    size_t n = big->n_params;
    float *pb = malloc(n * sizeof *pb), *ps = malloc(n * sizeof *ps), *pr = malloc(n * sizeof *pr);
    char ckpt[700];
    snprintf(ckpt, sizeof ckpt, "%s/acc.safetensors", t_tmpdir(0));
    dlcl_status st = DLCL_OK;
    double l;
    int c;
    for (int b = 0; b < 3 && st == DLCL_OK; b++) {
        st = dlcl_net_train_batch(big, x[b], y[b], 8, &l, &c);
        if (st == DLCL_OK) st = dlcl_net_train_batch(small, x[b], y[b], 4, &l, &c);
        if (st == DLCL_OK && b == 2) { /* half way through the third step: save, resume in another net */
            dlcl_train_progress p = {0, 5, 0.0, 0, 0};
            st = dlcl_net_save_progress(small, ckpt, &p);
            if (st == DLCL_OK) st = dlcl_net_load_progress(resumed, ckpt, &p);
            if (st == DLCL_OK) st = dlcl_net_train_batch(resumed, x[b] + 4 * 6, y[b] + 4, 4, &l, &c);
        }
        if (st == DLCL_OK) st = dlcl_net_train_batch(small, x[b] + 4 * 6, y[b] + 4, 4, &l, &c);
    }
    T_CHECK(st == DLCL_OK, "%s", dlcl_last_error());
    T_CHECK(big->step == 3 && small->step == 3 && resumed->step == 3, "steps %llu %llu %llu",
            (unsigned long long)big->step, (unsigned long long)small->step, (unsigned long long)resumed->step);
    T_CHECK(read_params(big, pb) && read_params(small, ps) && read_params(resumed, pr), "read");
    double worst = 0, resume_diff = 0, moved = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)pb[i] - ps[i]));
        resume_diff = fmax(resume_diff, fabs((double)pr[i] - ps[i]));
    }
    dlcl_net *fresh = NULL;
    T_OK(dlcl_net_create(path, NULL, 0, NULL, &fresh));
    float *pf = malloc(n * sizeof *pf);
    T_CHECK(read_params(fresh, pf), "read");
    for (size_t i = 0; i < n; i++) moved = fmax(moved, fabs((double)pb[i] - pf[i]));
    dlcl_net_free(fresh);
    free(pf);
    dlcl_net_free(big);
    dlcl_net_free(small);
    dlcl_net_free(resumed);
    free(pb), free(ps), free(pr);
    T_CHECK(moved > 1e-3, "the weights moved by %g only", moved);
    T_CHECK(worst < 2e-6, "accumulated 2 x 4 vs one batch of 8: weights differ by %g", worst);
    T_CHECK(resume_diff == 0, "resumed between the halves of a step: weights differ by %g", resume_diff);
}

static const t_case cases[] = {
    T_CASE(accumulated_steps_equal_one_large_batch_and_resume),
    T_CASE(inference_net_shares_buffers_and_matches_training_net),
    T_CASE(malformed_configs_name_file_line_section),
    T_CASE(override_fixes_config_and_reports_unknown_section),
    T_CASE(templated_config_builds_the_net_it_spells_out),
    T_CASE(shapes_and_parameter_counts_are_inferred),
    T_CASE(whole_net_gradients_match_finite_differences),
    T_CASE(checkpoint_round_trip_and_errors_name_the_tensor),
    T_CASE(training_reduces_loss_on_a_fixed_batch),
    T_CASE(nonfinite_values_name_the_first_layer),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
