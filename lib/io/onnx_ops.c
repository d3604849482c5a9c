/* ONNX import, the operators that compute: each translation checks its attributes and
 * inputs, adds a dlcl section (type=, input=, its keys) named after its weights (conv1.weight
 * makes [conv1], so checkpoints carry PyTorch's names) or the node, defines its output's
 * per-sample shape and attaches its initializers as the section's weights. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_imp.h"

/* ---- sections ---- */

static bool name_taken(const imp *m, const char *s)
{
    static const char *const reserved[] = {"net", "optimizer", "data", "vars", "input", "end", NULL};
    for (int i = 0; reserved[i]; i++)
        if (strcmp(reserved[i], s) == 0) return true;
    return cfg_find_section(m->c, s) != NULL;
}

/* A new section named after base (sanitised, made unique) with type=; its index in *idx. */
static dlcl_status new_section(imp *m, const Onnx__NodeProto *n, const char *type, size_t *idx)
{
    const char *base = NULL;
    char buf[200];
    /* a weight initializer named like a PyTorch parameter names the layer */
    oval *w = ox_input(m, n, 1);
    if (w && w->kind == OV_INIT && w->t->name) { /* t->name: through a folded Transpose too */
        size_t len = strlen(w->t->name);
        if (len > 7 && len < sizeof buf && strcmp(w->t->name + len - 7, ".weight") == 0) {
            snprintf(buf, sizeof buf, "%.*s", (int)(len - 7), w->t->name);
            base = buf;
        }
    }
    if (base == NULL) {
        const char *src = ox_node_name(n);
        size_t j = 0;
        for (const char *p = src; *p && j < 120; p++) {
            char ch = *p;
            bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                      ch == '.' || ch == '-';
            if (j == 0 && !(ok && ch != '.' && ch != '-')) continue;
            buf[j++] = ok ? ch : '_';
        }
        buf[j] = '\0';
        if (j == 0) snprintf(buf, sizeof buf, "%s", n->op_type);
        base = buf;
    }
    char name[240];
    snprintf(name, sizeof name, "%s", base);
    for (int k = 2; name_taken(m, name); k++) snprintf(name, sizeof name, "%s_%d", base, k);
    dlcl_status st = cfg_push_section(m->c, name, strlen(name), 0);
    if (st != DLCL_OK) return st;
    *idx = m->c->count - 1;
    return cfg_push_entry(&m->c->sections[*idx], "type", type, 0);
}

static dlcl_status kv(imp *m, size_t idx, const char *key, const char *fmt, ...)
{
    char v[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    return cfg_push_entry(&m->c->sections[idx], key, v, 0);
}

static const char *sec(const imp *m, size_t idx) { return m->c->sections[idx].name; }

/* A one-input layer: the section, input=, the output tensor defined with dims. */
static dlcl_status layer1(imp *m, const Onnx__NodeProto *n, const char *type, const oval *x, int ndim, const int *dims,
                          size_t *idx)
{
    const char *xs = x->section; /* read before new_section: x may move */
    char xs_copy[256];
    snprintf(xs_copy, sizeof xs_copy, "%s", xs);
    dlcl_status st = new_section(m, n, type, idx);
    if (st == DLCL_OK) st = kv(m, *idx, "input", "%s", xs_copy);
    if (st == DLCL_OK) st = ox_def_act(m, n->output[0], sec(m, *idx), ndim, dims);
    return st;
}

#define WINDOW_MAX (1L << 24) /* windows, strides, pads, dilations: as large as an input dimension */

/* 0 or less: empty (window() bounds the arguments, so this cannot overflow) */
static int out_size(int in, long k, long stride, long pad, long dil)
{
    long long o = ((long long)in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
    return o < 1 ? 0 : o > INT_MAX ? INT_MAX : (int)o;
}

/* Conv, MaxPool, AveragePool share their window attributes: square, symmetric, no auto_pad. */
static dlcl_status window(const imp *m, const Onnx__NodeProto *n, long *k, long *stride, long *pad, long *dil)
{
    char buf[32];
    const char *ap = ox_attr_s(n, "auto_pad", "NOTSET", buf, sizeof buf);
    if (strcmp(ap, "NOTSET") != 0 && strcmp(ap, "VALID") != 0)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "auto_pad = %s is not supported (NOTSET or VALID)", ap);
    *k = ox_attr_same(n, "kernel_shape", 2, *k);
    *stride = ox_attr_same(n, "strides", 2, 1);
    *pad = ox_attr_same(n, "pads", 4, 0);
    *dil = ox_attr_same(n, "dilations", 2, 1);
    if (*k < 1) return ox_nerr(m, DLCL_ERR_CONFIG, n, "kernel_shape: dlcl supports square 2-D windows only");
    if (*stride < 1) return ox_nerr(m, DLCL_ERR_CONFIG, n, "strides: dlcl supports equal 2-D strides only");
    if (*pad < 0) return ox_nerr(m, DLCL_ERR_CONFIG, n, "pads: dlcl supports equal padding on all four sides only");
    if (*dil < 1) return ox_nerr(m, DLCL_ERR_CONFIG, n, "dilations: dlcl supports equal 2-D dilations only");
    if (*k > WINDOW_MAX || *stride > WINDOW_MAX || *pad > WINDOW_MAX || *dil > WINDOW_MAX)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "a window, stride, pad or dilation over %ld", WINDOW_MAX);
    return DLCL_OK;
}

static dlcl_status want_chw(const imp *m, const Onnx__NodeProto *n, const oval *x)
{
    if (x->ndim == 3) return DLCL_OK;
    return ox_nerr(m, DLCL_ERR_CONFIG, n, "input '%s' has %d dimensions per sample; this operator needs N,C,H,W", x->name,
                   x->ndim + 1);
}

dlcl_status onnx_conv(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", NULL};
    oval *x, *w = ox_input(m, n, 1);
    dlcl_status st;
    if ((st = ox_check_attrs(m, n, known)) != DLCL_OK || (st = ox_want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = want_chw(m, n, x)) != DLCL_OK || (st = ox_one_output(m, n)) != DLCL_OK)
        return st;
    if (w == NULL || w->kind != OV_INIT || w->t->n_dims != 4)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "the weight must be a 4-D initializer (a computed or missing weight)");
    long k = w->t->dims[2], stride, pad, dil, groups = ox_attr_i(n, "group", 1);
    if ((st = window(m, n, &k, &stride, &pad, &dil)) != DLCL_OK) return st;
    if (w->t->dims[2] != w->t->dims[3] || w->t->dims[2] != k)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "a %lldx%lld kernel: dlcl supports square kernels only",
                       (long long)w->t->dims[2], (long long)w->t->dims[3]);
    long filters = (long)w->t->dims[0];
    if (groups < 1 || x->dims[0] % groups || filters % groups || w->t->dims[1] != x->dims[0] / groups)
        return ox_nerr(m, DLCL_ERR_DATA, n, "the weight [%lld,%lld,...] does not fit %d input channels in %ld groups",
                       (long long)w->t->dims[0], (long long)w->t->dims[1], x->dims[0], groups);
    size_t numel = (size_t)filters * (size_t)w->t->dims[1] * (size_t)k * (size_t)k;
    float *wd = NULL, *bd = NULL;
    if ((st = ox_want_init(m, n, 1, "weight", numel, &wd)) != DLCL_OK) return st;
    if (ox_input(m, n, 2) != NULL || (n->n_input > 2 && n->input[2][0])) {
        if ((st = ox_want_init(m, n, 2, "bias", (size_t)filters, &bd)) != DLCL_OK) {
            free(wd);
            return st;
        }
    }
    int dims[3] = {(int)filters, out_size(x->dims[1], k, stride, pad, dil),
                   out_size(x->dims[2], k, stride, pad, dil)};
    size_t idx;
    if (dims[1] < 1 || dims[2] < 1) st = ox_nerr(m, DLCL_ERR_DATA, n, "the output would be empty");
    if (st == DLCL_OK) st = layer1(m, n, "conv", x, 3, dims, &idx);
    if (st == DLCL_OK) st = kv(m, idx, "filters", "%ld", filters);
    if (st == DLCL_OK) st = kv(m, idx, "size", "%ld", k);
    if (st == DLCL_OK) st = kv(m, idx, "stride", "%ld", stride);
    if (st == DLCL_OK) st = kv(m, idx, "pad", "%ld", pad);
    if (st == DLCL_OK && dil != 1) st = kv(m, idx, "dilation", "%ld", dil);
    if (st == DLCL_OK && groups != 1) st = kv(m, idx, "groups", "%ld", groups);
    if (st == DLCL_OK) st = kv(m, idx, "bias", "%d", bd != NULL);
    if (st != DLCL_OK) {
        free(wd);
        free(bd);
        return st;
    }
    st = ox_add_weight(m, sec(m, idx), "weight", wd, numel);
    if (st == DLCL_OK && bd) return ox_add_weight(m, sec(m, idx), "bias", bd, (size_t)filters);
    if (st != DLCL_OK) free(bd);
    return st;
}

/* A dense layer from weight wd [units, in] (owned) and bias bd (owned, may be NULL). */
static dlcl_status dense(imp *m, const Onnx__NodeProto *n, const oval *x, const char *out, float *wd, float *bd,
                         int units)
{
    int dims[LAYER_MAX_DIMS];
    memcpy(dims, x->dims, sizeof dims);
    dims[x->ndim - 1] = units;
    size_t idx, in = (size_t)x->dims[x->ndim - 1];
    char xs[256];
    snprintf(xs, sizeof xs, "%s", x->section);
    int ndim = x->ndim;
    dlcl_status st = new_section(m, n, "dense", &idx);
    if (st == DLCL_OK) st = kv(m, idx, "input", "%s", xs);
    if (st == DLCL_OK) st = kv(m, idx, "units", "%d", units);
    if (st == DLCL_OK) st = kv(m, idx, "bias", "%d", bd != NULL);
    if (st == DLCL_OK) st = ox_def_act(m, out, sec(m, idx), ndim, dims);
    if (st != DLCL_OK) {
        free(wd);
        free(bd);
        return st;
    }
    st = ox_add_weight(m, sec(m, idx), "weight", wd, (size_t)units * in);
    if (st == DLCL_OK && bd) return ox_add_weight(m, sec(m, idx), "bias", bd, (size_t)units);
    if (st != DLCL_OK) free(bd);
    return st;
}

static float *transpose(const float *a, size_t rows, size_t cols)
{
    float *t = malloc((rows * cols > 0 ? rows * cols : 1) * sizeof *t);
    if (t == NULL) return NULL;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
    return t;
}

/* Y = alpha * A B' + beta * C (transB = 1: B is [out, in], torch's Linear). */
dlcl_status onnx_gemm(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"alpha", "beta", "transA", "transB", NULL};
    oval *x, *b = ox_input(m, n, 1);
    dlcl_status st;
    if ((st = ox_check_attrs(m, n, known)) != DLCL_OK || (st = ox_want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = ox_one_output(m, n)) != DLCL_OK)
        return st;
    if (ox_attr_i(n, "transA", 0) != 0) return ox_nerr(m, DLCL_ERR_CONFIG, n, "transA = 1 is not supported");
    if (x->ndim != 1)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "input '%s' has %d dimensions; Gemm reads [batch, features]", x->name,
                       x->ndim + 1);
    if (b == NULL || b->kind != OV_INIT || b->t->n_dims != 2)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "B must be a 2-D initializer (a computed or missing weight)");
    int tb = (ox_attr_i(n, "transB", 0) != 0) ^ b->transposed;
    long in = (long)b->t->dims[tb ? 1 : 0], units = (long)b->t->dims[tb ? 0 : 1];
    if (in != x->dims[0])
        return ox_nerr(m, DLCL_ERR_DATA, n, "B is [%lld,%lld] (transposed: %d) but the input has %d features",
                       (long long)b->t->dims[0], (long long)b->t->dims[1], tb, x->dims[0]);
    float *bd = NULL, *wd = NULL, *cd = NULL;
    double alpha = ox_attr_f(n, "alpha", 1.0), beta = ox_attr_f(n, "beta", 1.0);
    if ((st = ox_want_init(m, n, 1, "weight B", (size_t)(in * units), &bd)) != DLCL_OK) return st;
    if (tb) {
        wd = bd;
    } else {
        wd = transpose(bd, (size_t)in, (size_t)units);
        free(bd);
        if (wd == NULL) return ox_oom();
    }
    for (long i = 0; i < in * units; i++) wd[i] *= (float)alpha;
    if (n->n_input > 2 && n->input[2][0]) {
        if ((st = ox_want_init(m, n, 2, "bias C", (size_t)units, &cd)) != DLCL_OK) {
            free(wd);
            return st;
        }
        for (long i = 0; i < units; i++) cd[i] *= (float)beta;
    }
    return dense(m, n, x, n->output[0], wd, cd, (int)units);
}

/* Y = A B with B a [in, out] initializer; a following Add of a [out] initializer is its bias. */
dlcl_status onnx_matmul(imp *m, const Onnx__NodeProto *n)
{
    oval *x, *b = ox_input(m, n, 1);
    dlcl_status st;
    if ((st = ox_check_attrs(m, n, ox_no_attrs)) != DLCL_OK || (st = ox_want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = ox_one_output(m, n)) != DLCL_OK)
        return st;
    if (b == NULL || b->kind != OV_INIT || b->t->n_dims != 2)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "B must be a 2-D initializer (a product of two computed tensors is not "
                       "supported)");
    int tr = b->transposed; /* then t is [out, in] already */
    long in = (long)b->t->dims[tr ? 1 : 0], units = (long)b->t->dims[tr ? 0 : 1];
    if (in != x->dims[x->ndim - 1])
        return ox_nerr(m, DLCL_ERR_DATA, n, "B is [%ld,%ld] but the input's last dimension is %d", in, units,
                       x->dims[x->ndim - 1]);
    float *bd, *cd = NULL, *wd;
    if ((st = ox_want_init(m, n, 1, "weight B", (size_t)(in * units), &bd)) != DLCL_OK) return st;
    if (tr) {
        wd = bd;
    } else {
        wd = transpose(bd, (size_t)in, (size_t)units);
        free(bd);
        if (wd == NULL) return ox_oom();
    }
    const char *out = n->output[0];
    Onnx__NodeProto *add = NULL;
    size_t add_i = 0;
    if (ox_readers(m, out, &add, &add_i) == 1 && add && strcmp(add->op_type, "Add") == 0 && add->n_input == 2 &&
        add->n_attribute == 0) {
        size_t k = strcmp(add->input[0], out) == 0 ? 1 : 0;
        const oval *c = ox_find_val(m, add->input[k]);
        size_t cn;
        if (c && c->kind == OV_INIT && ox_tensor_numel(c->t, &cn) && cn == (size_t)units &&
            c->t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
            if ((st = ox_want_init(m, add, k, "bias", (size_t)units, &cd)) != DLCL_OK) {
                free(wd);
                return st;
            }
            m->done[add_i] = true;
            out = add->output[0];
        }
    }
    return dense(m, n, x, out, wd, cd, (int)units);
}

dlcl_status onnx_batchnorm(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"epsilon", "momentum", "training_mode", "spatial", NULL};
    static const char *const what[] = {"scale", "bias", "running mean", "running variance"};
    static const char *const suffix[] = {"weight", "bias", "running_mean", "running_var"};
    oval *x;
    dlcl_status st;
    if ((st = ox_check_attrs(m, n, known)) != DLCL_OK || (st = ox_want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = ox_one_output(m, n)) != DLCL_OK)
        return st;
    if (ox_attr_i(n, "training_mode", 0) != 0) return ox_nerr(m, DLCL_ERR_CONFIG, n, "training_mode = 1 is not supported");
    float *p[4] = {NULL};
    size_t c = (size_t)x->dims[0], idx;
    for (int k = 0; k < 4 && st == DLCL_OK; k++) st = ox_want_init(m, n, (size_t)k + 1, what[k], c, &p[k]);
    if (st == DLCL_OK) st = layer1(m, n, "batchnorm", x, x->ndim, x->dims, &idx);
    if (st == DLCL_OK) st = kv(m, idx, "eps", "%.9g", ox_attr_f(n, "epsilon", 1e-5));
    if (st == DLCL_OK) st = kv(m, idx, "momentum", "%.9g", 1.0 - ox_attr_f(n, "momentum", 0.9));
    int k = 0;
    for (; k < 4 && st == DLCL_OK; k++) st = ox_add_weight(m, sec(m, idx), suffix[k], p[k], c);
    for (int j = st == DLCL_OK ? 4 : k; j < 4; j++) free(p[j]);
    return st;
}

dlcl_status onnx_layernorm(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"axis", "epsilon", "stash_type", NULL};
    oval *x;
    dlcl_status st;
    if ((st = ox_check_attrs(m, n, known)) != DLCL_OK || (st = ox_want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = ox_one_output(m, n)) != DLCL_OK)
        return st;
    long axis = ox_attr_i(n, "axis", -1);
    if (axis != -1 && axis != x->ndim)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "axis = %ld: dlcl normalises over the last dimension only", axis);
    size_t d = (size_t)x->dims[x->ndim - 1], idx;
    float *w = NULL, *b = NULL;
    if ((st = ox_want_init(m, n, 1, "scale", d, &w)) != DLCL_OK) return st;
    if (n->n_input > 2 && n->input[2][0]) st = ox_want_init(m, n, 2, "bias", d, &b);
    else if ((b = calloc(d, sizeof *b)) == NULL) st = ox_oom();
    if (st == DLCL_OK) st = layer1(m, n, "layernorm", x, x->ndim, x->dims, &idx);
    if (st == DLCL_OK) st = kv(m, idx, "eps", "%.9g", ox_attr_f(n, "epsilon", 1e-5));
    if (st != DLCL_OK) {
        free(w);
        free(b);
        return st;
    }
    st = ox_add_weight(m, sec(m, idx), "weight", w, d);
    if (st == DLCL_OK) return ox_add_weight(m, sec(m, idx), "bias", b, d);
    free(b);
    return st;
}

static dlcl_status activation(imp *m, const Onnx__NodeProto *n, const char *act, double slope)
{
    oval *x;
    size_t idx;
    dlcl_status st;
    if ((st = ox_want_act(m, n, 0, &x)) != DLCL_OK || (st = ox_one_output(m, n)) != DLCL_OK) return st;
    if ((st = layer1(m, n, "activation", x, x->ndim, x->dims, &idx)) != DLCL_OK) return st;
    st = kv(m, idx, "activation", "%s", act);
    if (st == DLCL_OK && strcmp(act, "leaky") == 0) st = kv(m, idx, "slope", "%.9g", slope);
    return st;
}

dlcl_status onnx_pool(imp *m, const Onnx__NodeProto *n, int is_max)
{
    static const char *const known[] = {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides",
                                        "storage_order", "count_include_pad", NULL};
    oval *x;
    dlcl_status st;
    if ((st = ox_check_attrs(m, n, known)) != DLCL_OK || (st = ox_want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = want_chw(m, n, x)) != DLCL_OK || (st = ox_one_output(m, n)) != DLCL_OK)
        return st;
    long k = 0, stride, pad, dil;
    if ((st = window(m, n, &k, &stride, &pad, &dil)) != DLCL_OK) return st;
    if (dil != 1) return ox_nerr(m, DLCL_ERR_CONFIG, n, "dilations other than 1 are not supported");
    if (ox_attr_i(n, "ceil_mode", 0) != 0) return ox_nerr(m, DLCL_ERR_CONFIG, n, "ceil_mode = 1 is not supported");
    if (ox_attr_i(n, "storage_order", 0) != 0) return ox_nerr(m, DLCL_ERR_CONFIG, n, "storage_order = 1 is not supported");
    if (!is_max && pad > 0 && ox_attr_i(n, "count_include_pad", 0) == 0)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "count_include_pad = 0 with padding: dlcl's average counts the padding");
    if (2 * pad >= k + 1 || pad > k / 2) return ox_nerr(m, DLCL_ERR_CONFIG, n, "padding %ld is over half the window", pad);
    int dims[3] = {x->dims[0], out_size(x->dims[1], k, stride, pad, 1),
                   out_size(x->dims[2], k, stride, pad, 1)};
    if (dims[1] < 1 || dims[2] < 1) return ox_nerr(m, DLCL_ERR_DATA, n, "the output would be empty");
    size_t idx;
    st = layer1(m, n, is_max ? "maxpool" : "avgpool", x, 3, dims, &idx);
    if (st == DLCL_OK) st = kv(m, idx, "size", "%ld", k);
    if (st == DLCL_OK) st = kv(m, idx, "stride", "%ld", stride);
    if (st == DLCL_OK) st = kv(m, idx, "pad", "%ld", pad);
    return st;
}

dlcl_status onnx_add(imp *m, const Onnx__NodeProto *n)
{
    oval *a, *b;
    dlcl_status st;
    if ((st = ox_check_attrs(m, n, ox_no_attrs)) != DLCL_OK) return st;
    if (n->n_input != 2) return ox_nerr(m, DLCL_ERR_DATA, n, "%zu inputs, not 2", n->n_input);
    oval *ca = ox_input(m, n, 0), *cb = ox_input(m, n, 1);
    if (ca && cb && ca->kind == OV_CONST && cb->kind == OV_CONST && ca->n == cb->n) { /* shape arithmetic */
        double *v = malloc((ca->n ? ca->n : 1) * sizeof *v);
        if (v == NULL) return ox_oom();
        for (size_t i = 0; i < ca->n; i++) v[i] = ca->cv[i] + cb->cv[i];
        st = ox_def_const(m, n->output[0], v, ca->n, ca->rank);
        free(v);
        return st;
    }
    if ((st = ox_want_act(m, n, 0, &a)) != DLCL_OK || (st = ox_want_act(m, n, 1, &b)) != DLCL_OK) return st;
    bool same = a->ndim == b->ndim;
    for (int d = 0; same && d < a->ndim; d++) same = a->dims[d] == b->dims[d];
    if (!same) return ox_nerr(m, DLCL_ERR_CONFIG, n, "the inputs differ in shape; broadcasting is not supported");
    char as[256], bs[256];
    snprintf(as, sizeof as, "%s", a->section);
    snprintf(bs, sizeof bs, "%s", b->section);
    int ndim = a->ndim, dims[LAYER_MAX_DIMS];
    memcpy(dims, a->dims, sizeof dims);
    size_t idx;
    st = new_section(m, n, "add", &idx);
    if (st == DLCL_OK) st = kv(m, idx, "input", "%s, %s", as, bs);
    if (st == DLCL_OK) st = ox_def_act(m, n->output[0], sec(m, idx), ndim, dims);
    return st;
}

dlcl_status onnx_concat(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"axis", NULL};
    dlcl_status st = ox_check_attrs(m, n, known);
    if (st != DLCL_OK) return st;
    long axis = ox_attr_i(n, "axis", 0);
    bool all_const = true;
    for (size_t k = 0; k < n->n_input; k++) {
        const oval *v = ox_input(m, n, k);
        if (v == NULL) return ox_nerr(m, DLCL_ERR_DATA, n, "input %zu is missing", k);
        all_const = all_const && v->kind != OV_ACT;
    }
    if (all_const) { /* shape vectors */
        double *all = NULL;
        size_t total = 0;
        for (size_t k = 0; k < n->n_input && st == DLCL_OK; k++) {
            double *v;
            size_t cnt;
            if ((st = ox_want_const(m, n, k, &v, &cnt, NULL)) != DLCL_OK) break;
            double *g = realloc(all, (total + cnt + 1) * sizeof *g);
            if (g == NULL) st = ox_oom();
            else {
                all = g;
                memcpy(all + total, v, cnt * sizeof *v);
                total += cnt;
            }
            free(v);
        }
        if (st == DLCL_OK) st = ox_def_const(m, n->output[0], all, total, 1);
        free(all);
        return st;
    }
    if (n->n_input < 1 || n->n_input > LAYER_MAX_INPUTS)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "%zu inputs (dlcl concatenates 1 to %d)", n->n_input, LAYER_MAX_INPUTS);
    oval *first;
    if ((st = ox_want_act(m, n, 0, &first)) != DLCL_OK) return st;
    if (axis < 0) axis += first->ndim + 1;
    if (axis != 1) return ox_nerr(m, DLCL_ERR_CONFIG, n, "axis = %ld: dlcl concatenates along channels (axis 1) only", axis);
    int ndim = first->ndim, dims[LAYER_MAX_DIMS];
    memcpy(dims, first->dims, sizeof dims);
    char list[4096] = "";
    size_t w = 0;
    for (size_t k = 0; k < n->n_input; k++) {
        oval *v;
        if ((st = ox_want_act(m, n, k, &v)) != DLCL_OK) return st;
        bool ok = v->ndim == ndim;
        for (int d = 1; ok && d < ndim; d++) ok = v->dims[d] == dims[d];
        if (!ok) return ox_nerr(m, DLCL_ERR_DATA, n, "input '%s' differs in shape beyond the channels", v->name);
        if (k > 0) dims[0] += v->dims[0];
        w += (size_t)snprintf(list + w, sizeof list - w, "%s%s", k ? ", " : "", v->section);
        if (w >= sizeof list) return ox_nerr(m, DLCL_ERR_CONFIG, n, "the input names are too long");
    }
    size_t idx;
    st = new_section(m, n, "concat", &idx);
    if (st == DLCL_OK) st = kv(m, idx, "input", "%s", list);
    if (st == DLCL_OK) st = ox_def_act(m, n->output[0], sec(m, idx), ndim, dims);
    return st;
}

static dlcl_status flatten(imp *m, const Onnx__NodeProto *n, const oval *x)
{
    int numel = 1;
    for (int d = 0; d < x->ndim; d++) numel *= x->dims[d];
    if (x->ndim == 1) return ox_alias(m, n, x);
    size_t idx;
    return layer1(m, n, "flatten", x, 1, &numel, &idx);
}

dlcl_status onnx_flatten(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"axis", NULL};
    oval *x;
    dlcl_status st;
    if ((st = ox_check_attrs(m, n, known)) != DLCL_OK || (st = ox_want_act(m, n, 0, &x)) != DLCL_OK) return st;
    long axis = ox_attr_i(n, "axis", 1);
    if (axis < 0) axis += x->ndim + 1;
    if (axis != 1) return ox_nerr(m, DLCL_ERR_CONFIG, n, "axis = %ld: dlcl flattens each sample (axis 1) only", axis);
    return flatten(m, n, x);
}

/* Reshape to [batch, -1] (or [batch, numel]) is a flatten; to the same shape, nothing. */
dlcl_status onnx_reshape(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"allowzero", NULL};
    oval *x;
    double *s;
    size_t cnt;
    dlcl_status st;
    if ((st = ox_check_attrs(m, n, known)) != DLCL_OK || (st = ox_want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = ox_want_const(m, n, 1, &s, &cnt, NULL)) != DLCL_OK)
        return st;
    long numel = 1;
    for (int d = 0; d < x->ndim; d++) numel *= x->dims[d];
    char shape[256] = "";
    size_t w = 0;
    for (size_t i = 0; i < cnt && w < sizeof shape; i++)
        w += (size_t)snprintf(shape + w, sizeof shape - w, s[i] == ONNX_BATCH ? "%sbatch" : "%s%.0f", i ? "," : "", s[i]);
    /* the first value must keep the batch: its symbol, 0 (copy), the static batch size, or -1 with the rest fixed */
    long tgt[LAYER_MAX_DIMS + 1], prod = 1;
    int infer = -1, tn = (int)cnt - 1;
    bool ok = cnt >= 2 && cnt <= LAYER_MAX_DIMS + 1;
    bool first_minus = ok && s[0] == -1;
    ok = ok && (s[0] == ONNX_BATCH || s[0] == 0 || (m->batch > 0 && s[0] == (double)m->batch) || first_minus);
    for (int i = 0; ok && i < tn; i++) {
        double v = s[i + 1];
        if (v == 0 && i < x->ndim) tgt[i] = x->dims[i];
        else if (v == -1 && infer < 0 && !first_minus) infer = i, tgt[i] = 1;
        else if (v >= 1 && v <= (1 << 30)) tgt[i] = (long)v;
        else ok = false;
        prod *= tgt[i];
    }
    if (ok && infer >= 0) {
        ok = prod > 0 && numel % prod == 0;
        if (ok) tgt[infer] = numel / prod, prod = numel;
    }
    ok = ok && prod == numel;
    free(s);
    if (!ok)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "a reshape of %s (batch plus %ld values) to (%s): dlcl supports a flatten "
                       "(batch, -1) or the same shape only", x->name, numel, shape);
    bool same = tn == x->ndim;
    for (int i = 0; same && i < tn; i++) same = tgt[i] == x->dims[i];
    if (same) return ox_alias(m, n, x);
    if (tn == 1) return flatten(m, n, x);
    return ox_nerr(m, DLCL_ERR_CONFIG, n, "a reshape of %s to (%s): dlcl supports a flatten (batch, -1) or the same shape "
                   "only", x->name, shape);
}

/* Nearest-neighbour upsampling by an integer factor (nn.Upsample(scale_factor=s)). */
dlcl_status onnx_resize(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"mode", "coordinate_transformation_mode", "nearest_mode",
                                        "cubic_coeff_a", "exclude_outside", "extrapolation_value", NULL};
    oval *x;
    char b1[32], b2[32], b3[32];
    dlcl_status st;
    if ((st = ox_check_attrs(m, n, known)) != DLCL_OK || (st = ox_want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = want_chw(m, n, x)) != DLCL_OK)
        return st;
    const char *mode = ox_attr_s(n, "mode", "nearest", b1, sizeof b1),
               *ct = ox_attr_s(n, "coordinate_transformation_mode", "half_pixel", b2, sizeof b2),
               *nm = ox_attr_s(n, "nearest_mode", "round_prefer_floor", b3, sizeof b3);
    if (strcmp(mode, "nearest") != 0) return ox_nerr(m, DLCL_ERR_CONFIG, n, "mode = %s: dlcl upsamples by nearest only", mode);
    /* with an integer factor these all pick source pixel floor(x / s) */
    bool ok = (strcmp(ct, "asymmetric") == 0 && strcmp(nm, "floor") == 0) ||
              ((strcmp(ct, "half_pixel") == 0 || strcmp(ct, "pytorch_half_pixel") == 0) &&
               (strcmp(nm, "round_prefer_floor") == 0 || strcmp(nm, "round_prefer_ceil") == 0));
    if (!ok)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "coordinate_transformation_mode = %s with nearest_mode = %s is not supported",
                       ct, nm);
    double *v;
    size_t cnt;
    double sh, sw;
    if (ox_input(m, n, 2) != NULL) { /* scales */
        if ((st = ox_want_const(m, n, 2, &v, &cnt, NULL)) != DLCL_OK) return st;
        ok = cnt == 4 && v[0] == 1 && v[1] == 1;
        sh = ok ? v[2] : 0, sw = ok ? v[3] : 0;
    } else if (ox_input(m, n, 3) != NULL) { /* sizes */
        if ((st = ox_want_const(m, n, 3, &v, &cnt, NULL)) != DLCL_OK) return st;
        ok = cnt == 4 && v[1] == x->dims[0];
        sh = ok ? v[2] / x->dims[1] : 0, sw = ok ? v[3] / x->dims[2] : 0;
    } else {
        return ox_nerr(m, DLCL_ERR_DATA, n, "neither scales nor sizes is given");
    }
    free(v);
    if (!ok || sh != sw || sh < 1 || sh > 64 || sh != floor(sh))
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "dlcl upsamples H and W by one integer factor only (scales 1,1,s,s)");
    if ((long long)x->dims[1] * (long long)sh > INT_MAX || (long long)x->dims[2] * (long long)sh > INT_MAX)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "the output would hold more than %d values per sample", INT_MAX);
    int dims[3] = {x->dims[0], x->dims[1] * (int)sh, x->dims[2] * (int)sh};
    size_t idx;
    st = layer1(m, n, "upsample", x, 3, dims, &idx);
    return st == DLCL_OK ? kv(m, idx, "scale", "%d", (int)sh) : st;
}

/* The last node may be a Softmax over the classes: the net's output is then the logits,
 * and dlcl_net_predict gives the probabilities. Anywhere else it is unsupported. */
dlcl_status onnx_softmax(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"axis", NULL};
    oval *x;
    dlcl_status st;
    if ((st = ox_check_attrs(m, n, known)) != DLCL_OK || (st = ox_want_act(m, n, 0, &x)) != DLCL_OK) return st;
    long axis = ox_attr_i(n, "axis", -1);
    bool last = m->g->n_output == 1 && strcmp(m->g->output[0]->name, n->output[0]) == 0 &&
                ox_readers(m, n->output[0], NULL, NULL) == 1;
    if (!last || x->ndim != 1 || (axis != -1 && axis != 1))
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "dlcl supports Softmax only as the last node, over the classes of a "
                       "[batch, classes] output");
    return ox_alias(m, n, x);
}

/* torch's GELU before opset 20: x * (erf(x / sqrt 2) + 1) * 0.5, starting at the Div. */
dlcl_status onnx_div(imp *m, size_t i)
{
    const Onnx__NodeProto *n = m->g->node[i];
    Onnx__NodeProto *e, *a, *m1, *m2;
    size_t ie, ia, im1, im2;
    const oval *x = ox_input(m, n, 0), *c = ox_input(m, n, 1);
    double *v = NULL;
    size_t cnt = 0;
    bool ok = x && x->kind == OV_ACT && c && c->kind != OV_ACT && n->n_input == 2;
    if (ok && ox_want_const(m, n, 1, &v, &cnt, NULL) == DLCL_OK) {
        ok = cnt == 1 && fabs(v[0] - 1.4142135623730951) < 1e-5;
        free(v);
    } else {
        ok = false;
    }
    ok = ok && ox_readers(m, n->output[0], &e, &ie) == 1 && strcmp(e->op_type, "Erf") == 0 &&
         ox_readers(m, e->output[0], &a, &ia) == 1 && strcmp(a->op_type, "Add") == 0 &&
         ox_readers(m, a->output[0], &m1, &im1) == 1 && strcmp(m1->op_type, "Mul") == 0 && m1->n_input == 2 &&
         (strcmp(m1->input[0], x->name) == 0 || strcmp(m1->input[1], x->name) == 0) &&
         ox_readers(m, m1->output[0], &m2, &im2) == 1 && strcmp(m2->op_type, "Mul") == 0 && m2->n_input == 2;
    if (ok) { /* the constants 1 and 0.5 */
        const oval *one = ox_find_val(m, strcmp(a->input[0], e->output[0]) == 0 ? a->input[1] : a->input[0]);
        const oval *half = ox_find_val(m, strcmp(m2->input[0], m1->output[0]) == 0 ? m2->input[1] : m2->input[0]);
        ok = one && half && one->kind == OV_CONST && half->kind == OV_CONST && one->n == 1 && half->n == 1 &&
             one->cv[0] == 1.0 && half->cv[0] == 0.5;
    }
    if (!ok) return ox_nerr(m, DLCL_ERR_CONFIG, n, "Div is supported only as part of torch's GELU (x / sqrt(2) -> Erf)");
    oval *xa = (oval *)x;
    size_t idx;
    dlcl_status st = new_section(m, n, "activation", &idx);
    char xs[256];
    snprintf(xs, sizeof xs, "%s", xa->section);
    int ndim = xa->ndim, dims[LAYER_MAX_DIMS];
    memcpy(dims, xa->dims, sizeof dims);
    if (st == DLCL_OK) st = kv(m, idx, "input", "%s", xs);
    if (st == DLCL_OK) st = kv(m, idx, "activation", "gelu");
    if (st == DLCL_OK) st = ox_def_act(m, m2->output[0], sec(m, idx), ndim, dims);
    m->done[ie] = m->done[ia] = m->done[im1] = m->done[im2] = true;
    return st;
}

/* Relu, Sigmoid, Tanh, LeakyRelu, Gelu: an activation layer. */
dlcl_status onnx_act(imp *m, const Onnx__NodeProto *n)
{
    const char *op = n->op_type;
    if (strcmp(op, "LeakyRelu") == 0) {
        static const char *const known[] = {"alpha", NULL};
        dlcl_status st = ox_check_attrs(m, n, known);
        return st != DLCL_OK ? st : activation(m, n, "leaky", ox_attr_f(n, "alpha", 0.01));
    }
    if (strcmp(op, "Gelu") == 0) {
        static const char *const known[] = {"approximate", NULL};
        char buf[16];
        const char *ap = ox_attr_s(n, "approximate", "none", buf, sizeof buf);
        dlcl_status st = ox_check_attrs(m, n, known);
        if (st != DLCL_OK) return st;
        if (strcmp(ap, "none") != 0 && strcmp(ap, "tanh") != 0)
            return ox_nerr(m, DLCL_ERR_CONFIG, n, "approximate = %s is not supported", ap);
        return activation(m, n, strcmp(ap, "tanh") == 0 ? "gelu_tanh" : "gelu", 0);
    }
    dlcl_status st = ox_check_attrs(m, n, ox_no_attrs);
    return st != DLCL_OK ? st : activation(m, n, op[0] == 'R' ? "relu" : op[0] == 'S' ? "sigmoid" : "tanh", 0);
}

dlcl_status onnx_global_avgpool(imp *m, const Onnx__NodeProto *n)
{
    oval *x;
    size_t idx;
    dlcl_status st;
    if ((st = ox_check_attrs(m, n, ox_no_attrs)) != DLCL_OK || (st = ox_want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = want_chw(m, n, x)) != DLCL_OK)
        return st;
    return layer1(m, n, "global_avgpool", x, 3, (int[]){x->dims[0], 1, 1}, &idx);
}
