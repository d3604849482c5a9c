/* The graph core: the combining ops against their references, nets with branches (an
 * output read by three layers, concatenation, upsampling, aliases) against finite
 * differences, sections in any order, the memory plan over a DAG, and malformed graphs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* ------------------------------------------------------------------ ops */

/* Runs fn with the span (CPU) and the one-element (GPU) kernel variants in turn. */
#define BOTH_VARIANTS(body)                                                                        \
    do {                                                                                           \
        dlcl_ctx *ctx_ = t_ctx();                                                                  \
        T_CHECK(ctx_ != NULL, "no context");                                                       \
        int saved_ = ctx_->cpu_device;                                                             \
        for (int v_ = 0; v_ < 2; v_++) {                                                           \
            ctx_->cpu_device = v_ == 0;                                                            \
            body;                                                                                  \
        }                                                                                          \
        ctx_->cpu_device = saved_;                                                                 \
    } while (0)

static bool add_case(size_t n, int n_in, int relu, uint64_t *rng)
{
    float *h[3], *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
    dbuf d[3] = {{0}}, y = {0};
    op_buf xs[3];
    bool ok = want && got;
    for (int k = 0; k < n_in; k++) {
        h[k] = malloc(n * sizeof *h[k]);
        ok = ok && h[k];
        if (h[k]) t_fill_uniform(rng, h[k], n, -1, 1);
        ok = ok && dbuf_new(&d[k], h[k], n);
        xs[k] = ob(&d[k]);
    }
    ok = ok && dbuf_new(&y, NULL, n) && dbuf_fill(&y, NAN);
    ok = ok && op_add(t_ctx(), xs, n_in, ob(&y), n, relu) == DLCL_OK && dbuf_read(&y, got, "add");
    if (ok) {
        add_ref((const float *const *)h, n_in, n, relu, want);
        char label[96];
        snprintf(label, sizeof label, "add of %d x %zu, relu %d, cpu variant %d", n_in, n, relu, t_ctx()->cpu_device);
        ok = t_close(label, got, want, n, 1e-6f, 1e-6f);
    }
    /* y += x0 */
    if (ok) {
        for (size_t i = 0; i < n; i++) want[i] = got[i] + h[0][i];
        ok = op_add_into(t_ctx(), xs[0], ob(&y), n) == DLCL_OK && dbuf_read(&y, got, "add_into") &&
             t_close("add_into", got, want, n, 1e-6f, 1e-6f);
    }
    /* dz = y > 0 ? dy : 0, into dy itself */
    if (ok) {
        float *yv = malloc(n * sizeof *yv);
        ok = yv && dbuf_read(&y, yv, "y");
        if (ok) relu_grad_ref(yv, h[1], n, want);
        ok = ok && op_relu_grad(t_ctx(), ob(&y), xs[1], xs[1], n) == DLCL_OK && dbuf_read(&d[1], got, "relu_grad") &&
             t_close("relu_grad", got, want, n, 0, 0);
        free(yv);
    }
    for (int k = 0; k < n_in; k++) {
        free(h[k]);
        dbuf_free(&d[k]);
    }
    dbuf_free(&y);
    free(want);
    free(got);
    return ok;
}

static void add_ops_match_ref_on_odd_sizes(void)
{
    uint64_t rng = t_seed();
    size_t sizes[] = {1, 7, 4096 + 13, 3 * 4096};
    BOTH_VARIANTS({
        for (size_t i = 0; i < T_COUNT(sizes); i++)
            for (int relu = 0; relu < 2; relu++)
                for (int n_in = 2; n_in <= 3; n_in++)
                    T_CHECK(add_case(sizes[i], n_in, relu, &rng), "n %zu, %d inputs, relu %d, cpu variant %d: %s",
                            sizes[i], n_in, relu, v_ == 0, dlcl_last_error());
    });
}

static void upsample_matches_ref_forward_and_backward(void)
{
    uint64_t rng = t_seed();
    int cases[][4] = {{3 * 7, 13, 11, 2}, {2, 1, 5, 3}, {1, 4, 4, 1}};
    for (size_t c = 0; c < T_COUNT(cases); c++) {
        int planes = cases[c][0], h = cases[c][1], w = cases[c][2], s = cases[c][3];
        size_t nin = (size_t)planes * h * w, nout = nin * s * s;
        float *x = malloc(nin * 4), *y = malloc(nout * 4), *want_y = malloc(nout * 4), *dx = malloc(nin * 4),
              *want_dx = malloc(nin * 4);
        T_CHECK(x && y && want_y && dx && want_dx, "out of memory");
        t_fill_uniform(&rng, x, nin, -1, 1);
        t_fill_uniform(&rng, y, nout, -1, 1); /* as dy below */
        upsample_nearest_forward_ref(planes, h, w, s, x, want_y);
        upsample_nearest_backward_ref(planes, h, w, s, y, want_dx);
        dbuf bx, by, bdy, bdx;
        bool ok = dbuf_new(&bx, x, nin) && dbuf_new(&by, NULL, nout) && dbuf_new(&bdy, y, nout) &&
                  dbuf_new(&bdx, NULL, nin) && dbuf_fill(&by, NAN) && dbuf_fill(&bdx, NAN);
        ok = ok && op_upsample_nearest_forward(t_ctx(), planes, h, w, s, ob(&bx), ob(&by)) == DLCL_OK &&
             op_upsample_nearest_backward(t_ctx(), planes, h, w, s, ob(&bdy), ob(&bdx)) == DLCL_OK &&
             dbuf_read(&by, y, "upsample y") && dbuf_read(&bdx, dx, "upsample dx");
        printf("# upsample %d planes %dx%d x%d\n", planes, h, w, s);
        ok = ok && t_close("upsample forward", y, want_y, nout, 0, 0) &&
             t_close("upsample backward", dx, want_dx, nin, 1e-6f, 1e-6f);
        dbuf_free(&bx), dbuf_free(&by), dbuf_free(&bdy), dbuf_free(&bdx);
        free(x), free(y), free(want_y), free(dx), free(want_dx);
        T_CHECK(ok, "upsample case %zu: %s", c, dlcl_last_error());
    }
}

static void copy_rows_places_strided_blocks(void)
{
    enum { ROWS = 3, COLS = 13, LD = 29, AT = 5 };
    float src[ROWS * COLS], dst[ROWS * LD], want[ROWS * LD];
    uint64_t rng = t_seed();
    t_fill_uniform(&rng, src, T_COUNT(src), -1, 1);
    for (size_t i = 0; i < T_COUNT(want); i++) want[i] = -7.0f;
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < COLS && AT + c < LD; c++) want[r * LD + AT + c] = src[r * COLS + c];
    dbuf bs, bd;
    bool ok = dbuf_new(&bs, src, T_COUNT(src)) && dbuf_new(&bd, NULL, T_COUNT(dst)) && dbuf_fill(&bd, -7.0f);
    ok = ok && op_copy_rows(t_ctx(), ob(&bs), COLS, op_b(bd.mem, GUARD + AT), LD, ROWS, COLS) == DLCL_OK &&
         dbuf_read(&bd, dst, "copy_rows") && t_close("copy_rows", dst, want, T_COUNT(dst), 0, 0);
    dbuf_free(&bs), dbuf_free(&bd);
    T_CHECK(ok, "%s", dlcl_last_error());
}

/* ------------------------------------------------------------------ nets */

#define FD_NET_WITH(extra) "[net]\ninput=2,7,5\nclasses=3\nbatch=3\nseed=5\n" extra "[optimizer]\nlearning_rate=0\nmomentum=0\n"
#define FD_NET FD_NET_WITH("")

/* c1's output is read by three layers (c2, c3 and the add): its gradient is the sum of
 * their three contributions. */
static const char *fan_out_net = FD_NET
    "[c1]\ntype=conv\nfilters=4\nsize=3\npad=1\nactivation=tanh\n"
    "[c2]\ntype=conv\nfilters=4\nsize=3\npad=1\nactivation=tanh\n"
    "[c3]\ntype=conv\nfilters=4\nsize=1\ninput=c1\nactivation=sigmoid\n"
    "[sum]\ntype=add\ninput=c2, c3, c1\n"
    "[gap]\ntype=global_avgpool\n"
    "[fc]\ntype=dense\nunits=3\n";

static void fan_out_net_gradients_match_finite_differences(void) { t_check_net_gradients("fan-out", fan_out_net); }

/* batch norm over channels (fused relu, no affine) and over features, a residual add with
 * relu: training-mode gradients through the batch statistics */
static const char *batchnorm_net = FD_NET
    "[c1]\ntype=conv\nfilters=4\nsize=3\npad=1\nbias=0\n"
    "[bn1]\ntype=batchnorm\n"
    "[c2]\ntype=conv\nfilters=4\nsize=3\npad=1\nbias=0\nactivation=tanh\n"
    "[bn2]\ntype=batchnorm\naffine=0\nmomentum=0.3\n"
    "[sum]\ntype=add\ninput=bn2, bn1\n"
    "[c3]\ntype=conv\nfilters=2\nsize=3\nstride=2\nactivation=sigmoid\n"
    "[fc1]\ntype=dense\nunits=5\n"
    "[bn3]\ntype=batchnorm\neps=1e-3\n"
    "[fc]\ntype=dense\nunits=3\n";

static void batchnorm_net_gradients_match_finite_differences(void) { t_check_net_gradients("batchnorm", batchnorm_net); }

/* concatenation of an output with its upsampled pooling, through an identity and a flatten */
static const char *concat_net = FD_NET
    "[c1]\ntype=conv\nfilters=3\nsize=3\npad=1\nactivation=tanh\n"
    "[p1]\ntype=avgpool\nsize=2\nstride=2\npad=1\n"
    "[up]\ntype=upsample\nscale=2\n"
    "[crop]\ntype=conv\nfilters=2\nsize=2\nactivation=tanh\n"
    "[cat]\ntype=concat\ninput=c1, crop\n"
    "[same]\ntype=identity\n"
    "[c2]\ntype=conv\nfilters=2\nsize=3\nactivation=tanh\n"
    "[flat]\ntype=flatten\n"
    "[fc]\ntype=dense\nunits=3\n";

static void concat_upsample_alias_net_gradients_match_finite_differences(void)
{
    t_check_net_gradients("concat/upsample/identity/flatten", concat_net);
}

/* The fan-out net with its sections in reverse order: the same graph, so a checkpoint of
 * one loads into the other and gives the same logits. */
static void sections_in_any_order_build_the_same_graph(void)
{
    const char *rev = FD_NET_WITH("output=fc\n")
        "[fc]\ntype=dense\nunits=3\ninput=gap\n"
        "[gap]\ntype=global_avgpool\ninput=sum\n"
        "[sum]\ntype=add\ninput=c2, c3, c1\n"
        "[c3]\ntype=conv\nfilters=4\nsize=1\ninput=c1\nactivation=sigmoid\n"
        "[c2]\ntype=conv\nfilters=4\nsize=3\npad=1\nactivation=tanh\ninput=c1\n"
        "[c1]\ntype=conv\nfilters=4\nsize=3\npad=1\nactivation=tanh\ninput=input\n";
    char a_path[600], b_path[600], ckpt[640];
    const char *p = write_cfg("a.ini", fan_out_net);
    T_CHECK(p != NULL, "cannot write");
    snprintf(a_path, sizeof a_path, "%s", p);
    p = write_cfg("b.ini", rev);
    T_CHECK(p != NULL, "cannot write");
    snprintf(b_path, sizeof b_path, "%s", p);
    snprintf(ckpt, sizeof ckpt, "%s.safetensors", a_path);
    dlcl_net *a = NULL, *b = NULL;
    T_OK(dlcl_net_create(a_path, NULL, 0, NULL, &a));
    dlcl_status s = dlcl_net_create(b_path, NULL, 0, NULL, &b);
    float x[3 * 2 * 7 * 5], la[9], lb[9];
    uint64_t rng = t_seed();
    t_fill_uniform(&rng, x, T_COUNT(x), -1, 1);
    dlcl_net_info ib = {0};
    if (s == DLCL_OK) s = dlcl_net_save(a, ckpt, 0);
    if (s == DLCL_OK) s = dlcl_net_load(b, ckpt, 0, NULL);
    if (s == DLCL_OK) s = dlcl_net_logits(a, x, 3, la);
    if (s == DLCL_OK) s = dlcl_net_logits(b, x, 3, lb);
    if (s == DLCL_OK) s = dlcl_net_get_info(b, &ib);
    bool order_ok = b && strcmp(b->layers[0].name, "c1") == 0 && strcmp(b->layers[b->n_layers - 1].name, "fc") == 0;
    bool output_ok = s == DLCL_OK && strcmp(ib.output, "fc") == 0;
    dlcl_net_free(a);
    dlcl_net_free(b);
    T_OK(s);
    T_CHECK(order_ok, "the reversed file was not put in data-flow order");
    T_CHECK(output_ok, "the loss does not read [fc]");
    T_CHECK(memcmp(la, lb, sizeof la) == 0, "logits differ between the two orders");
}

/* Inference over a residual net: outputs share buffers by liveness over the DAG (a block's
 * input lives until the add reads it: three buffers), aliases take none, and the logits
 * equal the training net's. */
static void residual_inference_shares_buffers_by_liveness(void)
{
    const char *res = FD_NET
        "[c0]\ntype=conv\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
        "[b1a]\ntype=conv\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
        "[b1b]\ntype=conv\nfilters=4\nsize=3\npad=1\n"
        "[b1]\ntype=add\ninput=b1b, c0\nactivation=relu\n"
        "[b2a]\ntype=conv\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
        "[b2b]\ntype=conv\nfilters=4\nsize=3\npad=1\n"
        "[b2]\ntype=add\ninput=b2b, b1\nactivation=relu\n"
        "[id]\ntype=identity\n"
        "[flat]\ntype=flatten\n"
        "[fc]\ntype=dense\nunits=3\n";
    const char *path = write_cfg("res.ini", res);
    T_CHECK(path != NULL, "cannot write");
    dlcl_net *tr = NULL, *inf = NULL;
    T_OK(dlcl_net_create(path, NULL, 0, NULL, &tr));
    dlcl_status s = dlcl_net_create_inference(path, NULL, 0, NULL, &inf);
    float x[3 * 2 * 7 * 5], lt[9], li[9];
    uint64_t rng = t_seed();
    t_fill_uniform(&rng, x, T_COUNT(x), -1, 1);
    if (s == DLCL_OK) s = dlcl_net_logits(tr, x, 3, lt);
    if (s == DLCL_OK) s = dlcl_net_logits(inf, x, 3, li);
    size_t slots = inf ? inf->n_slots : 0, grad_slots = tr->n_slots;
    dlcl_net_free(tr);
    dlcl_net_free(inf);
    T_OK(s);
    T_CHECK(slots == 3, "%zu activation buffers, expected 3 (a block input lives beside two more)", slots);
    T_CHECK(grad_slots == 3, "%zu output gradient buffers, expected 3", grad_slots);
    T_CHECK(t_close("inference logits", li, lt, 9, 1e-5f, 1e-5f), "logits differ from the training net's");
}

typedef struct bad_graph {
    const char *name, *text;
    dlcl_status status;
    const char *msg1, *msg2;
} bad_graph;

#define NET_OK "[net]\ninput=2,7,5\nclasses=3\nbatch=2\n"

static const bad_graph bad_graphs[] = {
    {"add_shapes_differ", NET_OK "[a]\ntype=conv\nfilters=3\nsize=3\n[b]\ntype=conv\nfilters=3\nsize=1\ninput=input\n"
     "[s]\ntype=add\ninput=a, b\n[f]\ntype=dense\nunits=3\n", DLCL_ERR_SHAPE, "net.ini:14:",
     "[s] (add): its inputs differ in shape: [a] is 3x5x3, [b] is 3x7x5"},
    {"concat_spatial_sizes_differ", NET_OK "[a]\ntype=conv\nfilters=3\nsize=3\n[b]\ntype=conv\nfilters=3\nsize=1\n"
     "input=input\n[s]\ntype=concat\ninput=a, b\n[f]\ntype=dense\nunits=3\n", DLCL_ERR_SHAPE, "net.ini:14:",
     "all but the first"},
    {"add_of_one_input", NET_OK "[s]\ntype=add\n[f]\ntype=dense\nunits=3\n", DLCL_ERR_CONFIG, "net.ini:5:",
     "reads 2 to 16 inputs"},
    {"add_activation_not_fused", NET_OK "[a]\ntype=dense\nunits=3\n[s]\ntype=add\ninput=a, a\nactivation=tanh\n",
     DLCL_ERR_CONFIG, "net.ini:11:", "relu or linear"},
    {"cycle_of_three", NET_OK "[a]\ntype=dense\nunits=3\ninput=c\n[b]\ntype=dense\nunits=3\n[c]\ntype=dense\nunits=3\n"
     "[d]\ntype=dense\nunits=3\ninput=input\n", DLCL_ERR_CONFIG, "cycle: [a] -> [b] -> [c] -> [a]", "net.ini:5:"},
    {"reads_itself", NET_OK "[a]\ntype=dense\nunits=3\ninput=a\n", DLCL_ERR_CONFIG, "net.ini:8:", "its own output"},
    {"layer_named_input", NET_OK "[input]\ntype=dense\nunits=3\n", DLCL_ERR_CONFIG, "net.ini:5:", "[input]"},
    {"unknown_input_suggests", NET_OK "[conv1]\ntype=conv\nfilters=3\nsize=1\n[f]\ntype=dense\nunits=3\ninput=conv_1\n",
     DLCL_ERR_CONFIG, "net.ini:12:", "did you mean 'conv1'"},
    {"upsample_of_a_vector", NET_OK "[f]\ntype=dense\nunits=4\n[u]\ntype=upsample\n[g]\ntype=dense\nunits=3\n",
     DLCL_ERR_SHAPE, "net.ini:8:", "needs a C,H,W input"},
    {"empty_input_name", NET_OK "[f]\ntype=dense\nunits=3\ninput=input,\n", DLCL_ERR_CONFIG, "net.ini:8:", "empty name"},
};

static void malformed_graphs_name_file_line_section(void)
{
    for (size_t i = 0; i < T_COUNT(bad_graphs); i++) {
        const bad_graph *b = &bad_graphs[i];
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


/* A sequence input (T,D): dense at each position, in nn.Linear's and in Conv1D's layout,
 * and a sequence output with a label per position. */
static const char *sequence_net = "[net]\ninput=5,6\nclasses=4\nbatch=3\nseed=5\n[optimizer]\nlearning_rate=0\n"
                                  "[a]\ntype=dense\nunits=7\nlayout=conv1d\nactivation=gelu\n"
                                  "[b]\ntype=dense\nunits=4\n";

static void sequence_dense_gradients_match_finite_differences(void)
{
    t_check_net_gradients("sequence dense", sequence_net);
}

/* Weight tying: [dec] uses [enc]'s weight, so its gradient is the sum of both layers'. */
static void tied_weight_gradients_match_finite_differences(void)
{
    t_check_net_gradients("tied", "[net]\ninput=5,6\nclasses=6\nbatch=3\nseed=5\n[optimizer]\nlearning_rate=0\n"
                                "[enc]\ntype=dense\nunits=6\nactivation=tanh\n[mid]\ntype=dense\nunits=6\nactivation=tanh\n"
                                "[dec]\ntype=dense\nunits=6\nbias=0\ntie=enc\n");
}

/* layout=conv1d holds W^T: with the transposed weights, both layouts give the same logits,
 * and a sequence net's logits are count x T x classes. */
static void conv1d_layout_is_the_transposed_linear(void)
{
    const char *path = write_cfg("net.ini", sequence_net);
    T_CHECK(path != NULL, "cannot write config");
    const char *lin[] = {"a.layout=linear"};
    dlcl_net *c = NULL, *l = NULL;
    T_OK(dlcl_net_create(path, NULL, 0, NULL, &c));
    T_OK(dlcl_net_create(path, lin, 1, NULL, &l));
    T_CHECK(c->label_len == 5 && c->layers[0].params[0].dims[0] == 6 && l->layers[0].params[0].dims[0] == 7,
            "labels %d, conv1d weight [%lld, ...]", c->label_len, (long long)c->layers[0].params[0].dims[0]);
    size_t np = c->n_params;
    float *wc = malloc(np * 4), *wl = malloc(np * 4), x[3 * 30], lc[3 * 5 * 4], ll[3 * 5 * 4];
    uint64_t rng = t_seed();
    t_fill_uniform(&rng, x, 90, -1, 1);
    clEnqueueReadBuffer(c->ctx->queue, c->params, CL_TRUE, 0, np * 4, wc, 0, NULL, NULL);
    memcpy(wl, wc, np * 4);
    const layer_param *w = &c->layers[0].params[0]; /* [6][7] in conv1d, [7][6] in linear */
    for (int i = 0; i < 6; i++)
        for (int o = 0; o < 7; o++) wl[l->layers[0].params[0].off + (size_t)o * 6 + i] = wc[w->off + (size_t)i * 7 + o];
    clEnqueueWriteBuffer(l->ctx->queue, l->params, CL_TRUE, 0, np * 4, wl, 0, NULL, NULL);
    dlcl_status s1 = dlcl_net_logits(c, x, 3, lc), s2 = dlcl_net_logits(l, x, 3, ll);
    double worst = 0;
    for (int i = 0; i < 60; i++) worst = fmax(worst, fabs((double)lc[i] - ll[i]));
    free(wc), free(wl);
    dlcl_net_free(c);
    dlcl_net_free(l);
    T_CHECK(s1 == DLCL_OK && s2 == DLCL_OK, "%s", dlcl_last_error());
    T_CHECK(worst < 1e-5, "conv1d vs linear layout: logits differ by %g", worst);
}

static const t_case cases[] = {
    T_CASE(sequence_dense_gradients_match_finite_differences),
    T_CASE(tied_weight_gradients_match_finite_differences),
    T_CASE(conv1d_layout_is_the_transposed_linear),
    T_CASE(add_ops_match_ref_on_odd_sizes),
    T_CASE(upsample_matches_ref_forward_and_backward),
    T_CASE(copy_rows_places_strided_blocks),
    T_CASE(fan_out_net_gradients_match_finite_differences),
    T_CASE(batchnorm_net_gradients_match_finite_differences),
    T_CASE(concat_upsample_alias_net_gradients_match_finite_differences),
    T_CASE(sections_in_any_order_build_the_same_graph),
    T_CASE(residual_inference_shares_buffers_by_liveness),
    T_CASE(malformed_graphs_name_file_line_section),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
