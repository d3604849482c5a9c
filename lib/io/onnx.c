/* ONNX models (opset 13 and later) as dlcl configs. Each node that computes becomes a
 * section (type=, input=, its keys); what torch.onnx.export emits around them (Constant,
 * Shape, Gather, Unsqueeze, Concat, Cast, Slice chains feeding Reshape's shape; Identity,
 * Dropout; a final Softmax) is folded on the host. Per-sample shapes are tracked as nodes
 * are read, because Shape and Reshape need them; the batch dimension stays symbolic.
 * Names: a node with a weight initializer "conv1.weight" becomes [conv1] (so checkpoints
 * carry PyTorch's names); others take the node's name, sanitised. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../net/net.h"
#include "io/onnx.pb-c.h"
#include "onnx.h"

#define ONNX_BATCH (-1e300) /* a shape value that is the batch size */
#define ONNX_MAX_FILE ((size_t)2 << 30)

typedef struct onnx_weight {
    char *section;
    const char *suffix; /* "weight", "bias", "running_mean", "running_var" */
    float *data;
    size_t n;
} onnx_weight;

struct onnx_weights {
    onnx_weight *w;
    size_t n, cap;
};

enum { OV_ACT, OV_INIT, OV_CONST };

/* A tensor of the ONNX graph as the import sees it. */
typedef struct oval {
    const char *name;
    int kind;
    const char *section;            /* OV_ACT: the dlcl node holding it ("input": the net's input) */
    int ndim, dims[LAYER_MAX_DIMS]; /* OV_ACT: per sample */
    const Onnx__TensorProto *t;     /* OV_INIT */
    int transposed;                 /* OV_INIT: the 2-D t read transposed (a folded Transpose) */
    double *cv;                     /* OV_CONST: values (ONNX_BATCH for the batch size) */
    size_t n;
    int rank;
} oval;

typedef struct imp {
    const char *path;
    cfg *c;
    Onnx__GraphProto *g;
    oval *v;
    size_t nv, capv;
    struct onnx_weights *w;
    bool *done;
    long batch; /* the model's static batch size, 0 if symbolic */
} imp;

static dlcl_status oom(void) { return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory"); }

static const char *node_name(const Onnx__NodeProto *n)
{
    return n->name && n->name[0] ? n->name : n->n_output > 0 ? n->output[0] : "?";
}

/* "model.onnx: node 'Conv_3' (Conv): ..." */
static dlcl_status nerr(const imp *m, dlcl_status st, const Onnx__NodeProto *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dlcl__err(st, "%s: node '%s' (%s): %s", m->path, node_name(n), n->op_type ? n->op_type : "?", msg);
}

static oval *find_val(const imp *m, const char *name)
{
    for (size_t i = m->nv; i-- > 0;)
        if (strcmp(m->v[i].name, name) == 0) return &m->v[i];
    return NULL;
}

static oval *new_val(imp *m, const char *name)
{
    if (m->nv == m->capv) {
        size_t cap = m->capv ? 2 * m->capv : 64;
        oval *v = realloc(m->v, cap * sizeof *v);
        if (v == NULL) return NULL;
        m->v = v;
        m->capv = cap;
    }
    oval *v = &m->v[m->nv++];
    memset(v, 0, sizeof *v);
    v->name = name;
    return v;
}

static dlcl_status def_act(imp *m, const char *name, const char *section, int ndim, const int *dims)
{
    oval *v = new_val(m, name);
    if (v == NULL) return oom();
    v->kind = OV_ACT;
    v->section = section;
    v->ndim = ndim;
    memcpy(v->dims, dims, (size_t)ndim * sizeof *dims);
    return DLCL_OK;
}

static dlcl_status def_const(imp *m, const char *name, const double *cv, size_t n, int rank)
{
    oval *v = new_val(m, name);
    if (v == NULL) return oom();
    v->kind = OV_CONST;
    v->rank = rank;
    v->n = n;
    if ((v->cv = malloc((n ? n : 1) * sizeof *v->cv)) == NULL) return oom();
    memcpy(v->cv, cv, n * sizeof *cv);
    return DLCL_OK;
}

/* ---- tensors and attributes ---- */

static bool tensor_numel(const Onnx__TensorProto *t, size_t *n)
{
    size_t k = 1;
    for (size_t d = 0; d < t->n_dims; d++)
        if (t->dims[d] < 0 || !dlcl__mul_ok(k, (size_t)t->dims[d], &k)) return false;
    *n = k;
    return true;
}

/* The values of an initializer or constant tensor as doubles (malloc'ed). */
static dlcl_status tensor_values(const imp *m, const Onnx__NodeProto *node, const Onnx__TensorProto *t, double **out,
                                 size_t *count)
{
    size_t n;
    const char *nm = t->name ? t->name : "";
    if (!tensor_numel(t, &n) || n > ONNX_MAX_FILE)
        return node ? nerr(m, DLCL_ERR_DATA, node, "tensor '%s' has a bad shape", nm)
                    : dlcl__err(DLCL_ERR_DATA, "%s: tensor '%s' has a bad shape", m->path, nm);
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return dlcl__err(DLCL_ERR_DATA, "%s: tensor '%s' keeps its data in an external file, which dlcl does not read "
                         "(save the model with the weights inside)", m->path, nm);
    int dt = t->data_type;
    size_t esz = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ? 4
                 : dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? 8 : 0;
    if (esz == 0)
        return dlcl__err(DLCL_ERR_DATA, "%s: tensor '%s' has ONNX data type %d; dlcl reads float, double, int32 and "
                         "int64 tensors", m->path, nm, dt);
    size_t have = t->has_raw_data ? t->raw_data.len / esz
                  : dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? t->n_float_data
                  : dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ? t->n_int32_data
                  : dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? t->n_int64_data : t->n_double_data;
    if (have != n || (t->has_raw_data && t->raw_data.len != n * esz))
        return dlcl__err(DLCL_ERR_DATA, "%s: tensor '%s' holds %zu values, but its shape says %zu", m->path, nm, have, n);
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (v == NULL) return oom();
    for (size_t i = 0; i < n; i++) {
        if (t->has_raw_data) { /* little-endian, as ONNX stores it */
            const uint8_t *p = t->raw_data.data + i * esz;
            if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) { float f; memcpy(&f, p, 4); v[i] = f; }
            else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32) { int32_t x; memcpy(&x, p, 4); v[i] = x; }
            else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64) { int64_t x; memcpy(&x, p, 8); v[i] = (double)x; }
            else { memcpy(&v[i], p, 8); }
        } else {
            v[i] = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? t->float_data[i]
                   : dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ? t->int32_data[i]
                   : dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? (double)t->int64_data[i] : t->double_data[i];
        }
    }
    *out = v;
    *count = n;
    return DLCL_OK;
}

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0) return n->attribute[i];
    return NULL;
}

static long attr_i(const Onnx__NodeProto *n, const char *name, long def)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a ? (long)a->i : def;
}

static double attr_f(const Onnx__NodeProto *n, const char *name, double def)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a ? a->f : def;
}

/* The string attribute, or def; copied into buf. */
static const char *attr_s(const Onnx__NodeProto *n, const char *name, const char *def, char *buf, size_t cap)
{
    const Onnx__AttributeProto *a = attr(n, name);
    if (a == NULL || !a->has_s) return def;
    snprintf(buf, cap, "%.*s", (int)a->s.len, (const char *)a->s.data);
    return buf;
}

/* An ints attribute whose values are all equal (a square kernel, equal strides and pads):
 * its value, def when absent; -1 when the values differ or the count is not want. */
static long attr_same(const Onnx__NodeProto *n, const char *name, size_t want, long def)
{
    const Onnx__AttributeProto *a = attr(n, name);
    if (a == NULL) return def;
    if (a->n_ints != want) return -1;
    for (size_t i = 1; i < a->n_ints; i++)
        if (a->ints[i] != a->ints[0]) return -1;
    return (long)a->ints[0];
}

/* Attributes a translation does not know are errors: they might change the result. */
static dlcl_status check_attrs(const imp *m, const Onnx__NodeProto *n, const char *const *known)
{
    for (size_t i = 0; i < n->n_attribute; i++) {
        const char *a = n->attribute[i]->name ? n->attribute[i]->name : "";
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++) ok = strcmp(*k, a) == 0;
        if (!ok) return nerr(m, DLCL_ERR_CONFIG, n, "attribute '%s' is not supported", a);
    }
    return DLCL_OK;
}

/* ---- inputs ---- */

static oval *input(const imp *m, const Onnx__NodeProto *n, size_t k)
{
    if (k >= n->n_input || n->input[k][0] == '\0') return NULL;
    return find_val(m, n->input[k]);
}

static dlcl_status want_act(const imp *m, const Onnx__NodeProto *n, size_t k, oval **out)
{
    oval *v = input(m, n, k);
    if (v == NULL) return nerr(m, DLCL_ERR_DATA, n, "input %zu is missing", k);
    if (v->kind != OV_ACT)
        return nerr(m, DLCL_ERR_CONFIG, n, "input %zu ('%s') is a constant; dlcl computes this operator only on the "
                    "net's data", k, v->name);
    *out = v;
    return DLCL_OK;
}

/* A float initializer of the expected number of values, copied out (malloc'ed floats). */
static dlcl_status want_init(const imp *m, const Onnx__NodeProto *n, size_t k, const char *what, size_t numel,
                             float **out)
{
    oval *v = input(m, n, k);
    if (v == NULL) return nerr(m, DLCL_ERR_DATA, n, "the %s (input %zu) is missing", what, k);
    if (v->kind != OV_INIT)
        return nerr(m, DLCL_ERR_CONFIG, n, "the %s ('%s') is computed, not an initializer; dlcl needs it as a weight",
                    what, v->name);
    if (v->t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return nerr(m, DLCL_ERR_DATA, n, "the %s ('%s') has ONNX data type %d, not float", what, v->name,
                    v->t->data_type);
    double *d;
    size_t cnt;
    dlcl_status st = tensor_values(m, n, v->t, &d, &cnt);
    if (st != DLCL_OK) return st;
    if (numel != 0 && cnt != numel) {
        free(d);
        return nerr(m, DLCL_ERR_DATA, n, "the %s ('%s') holds %zu values, expected %zu", what, v->name, cnt, numel);
    }
    float *f = malloc((cnt ? cnt : 1) * sizeof *f);
    if (f == NULL) {
        free(d);
        return oom();
    }
    for (size_t i = 0; i < cnt; i++) f[i] = (float)d[i];
    free(d);
    *out = f;
    return DLCL_OK;
}

/* The values of a constant input (folded or an initializer); malloc'ed. */
static dlcl_status want_const(const imp *m, const Onnx__NodeProto *n, size_t k, double **out, size_t *cnt, int *rank)
{
    oval *v = input(m, n, k);
    if (v == NULL) return nerr(m, DLCL_ERR_DATA, n, "input %zu is missing", k);
    if (v->kind == OV_ACT)
        return nerr(m, DLCL_ERR_CONFIG, n, "input %zu ('%s') depends on the data; dlcl needs it constant (a dynamic "
                    "shape)", k, v->name);
    if (v->kind == OV_INIT) {
        if (rank) *rank = (int)v->t->n_dims;
        return tensor_values(m, n, v->t, out, cnt);
    }
    if ((*out = malloc((v->n ? v->n : 1) * sizeof **out)) == NULL) return oom();
    memcpy(*out, v->cv, v->n * sizeof **out);
    *cnt = v->n;
    if (rank) *rank = v->rank;
    return DLCL_OK;
}

static dlcl_status add_weight(imp *m, const char *section, const char *suffix, float *data, size_t n)
{
    struct onnx_weights *w = m->w;
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        onnx_weight *p = realloc(w->w, cap * sizeof *p);
        if (p == NULL) {
            free(data);
            return oom();
        }
        w->w = p;
        w->cap = cap;
    }
    char *s = strdup(section);
    if (s == NULL) {
        free(data);
        return oom();
    }
    w->w[w->n++] = (onnx_weight){s, suffix, data, n};
    return DLCL_OK;
}

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
    oval *w = input(m, n, 1);
    if (w && w->kind == OV_INIT && w->t->name) { /* t->name: through a folded Transpose too */
        size_t len = strlen(w->t->name);
        if (len > 7 && len < sizeof buf && strcmp(w->t->name + len - 7, ".weight") == 0) {
            snprintf(buf, sizeof buf, "%.*s", (int)(len - 7), w->t->name);
            base = buf;
        }
    }
    if (base == NULL) {
        const char *src = node_name(n);
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
    if (st == DLCL_OK) st = def_act(m, n->output[0], sec(m, *idx), ndim, dims);
    return st;
}

/* Outputs beyond the first must be unused (Dropout's mask, MaxPool's indices, ...). */
static dlcl_status one_output(const imp *m, const Onnx__NodeProto *n)
{
    if (n->n_output < 1 || n->output[0][0] == '\0') return nerr(m, DLCL_ERR_DATA, n, "no output");
    for (size_t k = 1; k < n->n_output; k++)
        if (n->output[k][0] != '\0') {
            for (size_t i = 0; i < m->g->n_node; i++)
                for (size_t j = 0; j < m->g->node[i]->n_input; j++)
                    if (strcmp(m->g->node[i]->input[j], n->output[k]) == 0)
                        return nerr(m, DLCL_ERR_CONFIG, n, "output %zu ('%s') is read by node '%s'; dlcl computes only "
                                    "the first output", k, n->output[k], node_name(m->g->node[i]));
        }
    return DLCL_OK;
}

/* The nodes reading tensor name, and the one reader when there is exactly one. */
static int readers(const imp *m, const char *name, Onnx__NodeProto **only, size_t *only_idx)
{
    int r = 0;
    for (size_t i = 0; i < m->g->n_node; i++)
        for (size_t j = 0; j < m->g->node[i]->n_input; j++)
            if (strcmp(m->g->node[i]->input[j], name) == 0) {
                r++;
                if (only) *only = m->g->node[i];
                if (only_idx) *only_idx = i;
                break;
            }
    for (size_t i = 0; i < m->g->n_output; i++) r += strcmp(m->g->output[i]->name, name) == 0;
    return r;
}

/* ---- operators ---- */

static const char *const no_attrs[] = {NULL};

/* y = x (Identity, Dropout at inference, a Reshape that keeps the shape): no layer. */
static dlcl_status alias(imp *m, const Onnx__NodeProto *n, const oval *x)
{
    oval copy = *x;
    oval *v = new_val(m, n->output[0]);
    if (v == NULL) return oom();
    *v = copy;
    v->name = n->output[0];
    if (copy.kind == OV_CONST) {
        if ((v->cv = malloc((copy.n ? copy.n : 1) * sizeof *v->cv)) == NULL) return oom();
        memcpy(v->cv, copy.cv, copy.n * sizeof *v->cv);
    }
    return DLCL_OK;
}

static int out_size(int in, int k, int stride, int pad, int dil)
{
    return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

/* Conv, MaxPool, AveragePool share their window attributes: square, symmetric, no auto_pad. */
static dlcl_status window(const imp *m, const Onnx__NodeProto *n, long *k, long *stride, long *pad, long *dil)
{
    char buf[32];
    const char *ap = attr_s(n, "auto_pad", "NOTSET", buf, sizeof buf);
    if (strcmp(ap, "NOTSET") != 0 && strcmp(ap, "VALID") != 0)
        return nerr(m, DLCL_ERR_CONFIG, n, "auto_pad = %s is not supported (NOTSET or VALID)", ap);
    *k = attr_same(n, "kernel_shape", 2, *k);
    *stride = attr_same(n, "strides", 2, 1);
    *pad = attr_same(n, "pads", 4, 0);
    *dil = attr_same(n, "dilations", 2, 1);
    if (*k < 1) return nerr(m, DLCL_ERR_CONFIG, n, "kernel_shape: dlcl supports square 2-D windows only");
    if (*stride < 1) return nerr(m, DLCL_ERR_CONFIG, n, "strides: dlcl supports equal 2-D strides only");
    if (*pad < 0) return nerr(m, DLCL_ERR_CONFIG, n, "pads: dlcl supports equal padding on all four sides only");
    if (*dil < 1) return nerr(m, DLCL_ERR_CONFIG, n, "dilations: dlcl supports equal 2-D dilations only");
    return DLCL_OK;
}

static dlcl_status want_chw(const imp *m, const Onnx__NodeProto *n, const oval *x)
{
    if (x->ndim == 3) return DLCL_OK;
    return nerr(m, DLCL_ERR_CONFIG, n, "input '%s' has %d dimensions per sample; this operator needs N,C,H,W", x->name,
                x->ndim + 1);
}

static dlcl_status onnx_conv(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", NULL};
    oval *x, *w = input(m, n, 1);
    dlcl_status st;
    if ((st = check_attrs(m, n, known)) != DLCL_OK || (st = want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = want_chw(m, n, x)) != DLCL_OK || (st = one_output(m, n)) != DLCL_OK)
        return st;
    if (w == NULL || w->kind != OV_INIT || w->t->n_dims != 4)
        return nerr(m, DLCL_ERR_CONFIG, n, "the weight must be a 4-D initializer (a computed or missing weight)");
    long k = w->t->dims[2], stride, pad, dil, groups = attr_i(n, "group", 1);
    if ((st = window(m, n, &k, &stride, &pad, &dil)) != DLCL_OK) return st;
    if (w->t->dims[2] != w->t->dims[3] || w->t->dims[2] != k)
        return nerr(m, DLCL_ERR_CONFIG, n, "a %lldx%lld kernel: dlcl supports square kernels only",
                    (long long)w->t->dims[2], (long long)w->t->dims[3]);
    long filters = (long)w->t->dims[0];
    if (groups < 1 || x->dims[0] % groups || filters % groups || w->t->dims[1] * groups != x->dims[0])
        return nerr(m, DLCL_ERR_DATA, n, "the weight [%lld,%lld,...] does not fit %d input channels in %ld groups",
                    (long long)w->t->dims[0], (long long)w->t->dims[1], x->dims[0], groups);
    size_t numel = (size_t)filters * (size_t)w->t->dims[1] * (size_t)k * (size_t)k;
    float *wd = NULL, *bd = NULL;
    if ((st = want_init(m, n, 1, "weight", numel, &wd)) != DLCL_OK) return st;
    if (input(m, n, 2) != NULL || (n->n_input > 2 && n->input[2][0])) {
        if ((st = want_init(m, n, 2, "bias", (size_t)filters, &bd)) != DLCL_OK) {
            free(wd);
            return st;
        }
    }
    int dims[3] = {(int)filters, out_size(x->dims[1], (int)k, (int)stride, (int)pad, (int)dil),
                   out_size(x->dims[2], (int)k, (int)stride, (int)pad, (int)dil)};
    size_t idx;
    if (dims[1] < 1 || dims[2] < 1) st = nerr(m, DLCL_ERR_DATA, n, "the output would be empty");
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
    st = add_weight(m, sec(m, idx), "weight", wd, numel);
    if (st == DLCL_OK && bd) return add_weight(m, sec(m, idx), "bias", bd, (size_t)filters);
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
    if (st == DLCL_OK) st = def_act(m, out, sec(m, idx), ndim, dims);
    if (st != DLCL_OK) {
        free(wd);
        free(bd);
        return st;
    }
    st = add_weight(m, sec(m, idx), "weight", wd, (size_t)units * in);
    if (st == DLCL_OK && bd) return add_weight(m, sec(m, idx), "bias", bd, (size_t)units);
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
static dlcl_status onnx_gemm(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"alpha", "beta", "transA", "transB", NULL};
    oval *x, *b = input(m, n, 1);
    dlcl_status st;
    if ((st = check_attrs(m, n, known)) != DLCL_OK || (st = want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = one_output(m, n)) != DLCL_OK)
        return st;
    if (attr_i(n, "transA", 0) != 0) return nerr(m, DLCL_ERR_CONFIG, n, "transA = 1 is not supported");
    if (x->ndim != 1)
        return nerr(m, DLCL_ERR_CONFIG, n, "input '%s' has %d dimensions; Gemm reads [batch, features]", x->name,
                    x->ndim + 1);
    if (b == NULL || b->kind != OV_INIT || b->t->n_dims != 2)
        return nerr(m, DLCL_ERR_CONFIG, n, "B must be a 2-D initializer (a computed or missing weight)");
    int tb = (attr_i(n, "transB", 0) != 0) ^ b->transposed;
    long in = (long)b->t->dims[tb ? 1 : 0], units = (long)b->t->dims[tb ? 0 : 1];
    if (in != x->dims[0])
        return nerr(m, DLCL_ERR_DATA, n, "B is [%lld,%lld] (transposed: %d) but the input has %d features",
                    (long long)b->t->dims[0], (long long)b->t->dims[1], tb, x->dims[0]);
    float *bd = NULL, *wd = NULL, *cd = NULL;
    double alpha = attr_f(n, "alpha", 1.0), beta = attr_f(n, "beta", 1.0);
    if ((st = want_init(m, n, 1, "weight B", (size_t)(in * units), &bd)) != DLCL_OK) return st;
    if (tb) {
        wd = bd;
    } else {
        wd = transpose(bd, (size_t)in, (size_t)units);
        free(bd);
        if (wd == NULL) return oom();
    }
    for (long i = 0; i < in * units; i++) wd[i] *= (float)alpha;
    if (n->n_input > 2 && n->input[2][0]) {
        if ((st = want_init(m, n, 2, "bias C", (size_t)units, &cd)) != DLCL_OK) {
            free(wd);
            return st;
        }
        for (long i = 0; i < units; i++) cd[i] *= (float)beta;
    }
    return dense(m, n, x, n->output[0], wd, cd, (int)units);
}

/* Y = A B with B a [in, out] initializer; a following Add of a [out] initializer is its bias. */
static dlcl_status onnx_matmul(imp *m, const Onnx__NodeProto *n)
{
    oval *x, *b = input(m, n, 1);
    dlcl_status st;
    if ((st = check_attrs(m, n, no_attrs)) != DLCL_OK || (st = want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = one_output(m, n)) != DLCL_OK)
        return st;
    if (b == NULL || b->kind != OV_INIT || b->t->n_dims != 2)
        return nerr(m, DLCL_ERR_CONFIG, n, "B must be a 2-D initializer (a product of two computed tensors is not "
                    "supported)");
    int tr = b->transposed; /* then t is [out, in] already */
    long in = (long)b->t->dims[tr ? 1 : 0], units = (long)b->t->dims[tr ? 0 : 1];
    if (in != x->dims[x->ndim - 1])
        return nerr(m, DLCL_ERR_DATA, n, "B is [%ld,%ld] but the input's last dimension is %d", in, units,
                    x->dims[x->ndim - 1]);
    float *bd, *cd = NULL, *wd;
    if ((st = want_init(m, n, 1, "weight B", (size_t)(in * units), &bd)) != DLCL_OK) return st;
    if (tr) {
        wd = bd;
    } else {
        wd = transpose(bd, (size_t)in, (size_t)units);
        free(bd);
        if (wd == NULL) return oom();
    }
    const char *out = n->output[0];
    Onnx__NodeProto *add = NULL;
    size_t add_i = 0;
    if (readers(m, out, &add, &add_i) == 1 && add && strcmp(add->op_type, "Add") == 0 && add->n_input == 2 &&
        add->n_attribute == 0) {
        size_t k = strcmp(add->input[0], out) == 0 ? 1 : 0;
        const oval *c = find_val(m, add->input[k]);
        size_t cn;
        if (c && c->kind == OV_INIT && tensor_numel(c->t, &cn) && cn == (size_t)units &&
            c->t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
            if ((st = want_init(m, add, k, "bias", (size_t)units, &cd)) != DLCL_OK) {
                free(wd);
                return st;
            }
            m->done[add_i] = true;
            out = add->output[0];
        }
    }
    return dense(m, n, x, out, wd, cd, (int)units);
}

static dlcl_status onnx_batchnorm(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"epsilon", "momentum", "training_mode", "spatial", NULL};
    static const char *const what[] = {"scale", "bias", "running mean", "running variance"};
    static const char *const suffix[] = {"weight", "bias", "running_mean", "running_var"};
    oval *x;
    dlcl_status st;
    if ((st = check_attrs(m, n, known)) != DLCL_OK || (st = want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = one_output(m, n)) != DLCL_OK)
        return st;
    if (attr_i(n, "training_mode", 0) != 0) return nerr(m, DLCL_ERR_CONFIG, n, "training_mode = 1 is not supported");
    float *p[4] = {NULL};
    size_t c = (size_t)x->dims[0], idx;
    for (int k = 0; k < 4 && st == DLCL_OK; k++) st = want_init(m, n, (size_t)k + 1, what[k], c, &p[k]);
    if (st == DLCL_OK) st = layer1(m, n, "batchnorm", x, x->ndim, x->dims, &idx);
    if (st == DLCL_OK) st = kv(m, idx, "eps", "%.9g", attr_f(n, "epsilon", 1e-5));
    if (st == DLCL_OK) st = kv(m, idx, "momentum", "%.9g", 1.0 - attr_f(n, "momentum", 0.9));
    int k = 0;
    for (; k < 4 && st == DLCL_OK; k++) st = add_weight(m, sec(m, idx), suffix[k], p[k], c);
    for (int j = st == DLCL_OK ? 4 : k; j < 4; j++) free(p[j]);
    return st;
}

static dlcl_status onnx_layernorm(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"axis", "epsilon", "stash_type", NULL};
    oval *x;
    dlcl_status st;
    if ((st = check_attrs(m, n, known)) != DLCL_OK || (st = want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = one_output(m, n)) != DLCL_OK)
        return st;
    long axis = attr_i(n, "axis", -1);
    if (axis != -1 && axis != x->ndim)
        return nerr(m, DLCL_ERR_CONFIG, n, "axis = %ld: dlcl normalises over the last dimension only", axis);
    size_t d = (size_t)x->dims[x->ndim - 1], idx;
    float *w = NULL, *b = NULL;
    if ((st = want_init(m, n, 1, "scale", d, &w)) != DLCL_OK) return st;
    if (n->n_input > 2 && n->input[2][0]) st = want_init(m, n, 2, "bias", d, &b);
    else if ((b = calloc(d, sizeof *b)) == NULL) st = oom();
    if (st == DLCL_OK) st = layer1(m, n, "layernorm", x, x->ndim, x->dims, &idx);
    if (st == DLCL_OK) st = kv(m, idx, "eps", "%.9g", attr_f(n, "epsilon", 1e-5));
    if (st != DLCL_OK) {
        free(w);
        free(b);
        return st;
    }
    st = add_weight(m, sec(m, idx), "weight", w, d);
    if (st == DLCL_OK) return add_weight(m, sec(m, idx), "bias", b, d);
    free(b);
    return st;
}

static dlcl_status activation(imp *m, const Onnx__NodeProto *n, const char *act, double slope)
{
    oval *x;
    size_t idx;
    dlcl_status st;
    if ((st = want_act(m, n, 0, &x)) != DLCL_OK || (st = one_output(m, n)) != DLCL_OK) return st;
    if ((st = layer1(m, n, "activation", x, x->ndim, x->dims, &idx)) != DLCL_OK) return st;
    st = kv(m, idx, "activation", "%s", act);
    if (st == DLCL_OK && strcmp(act, "leaky") == 0) st = kv(m, idx, "slope", "%.9g", slope);
    return st;
}

static dlcl_status onnx_pool(imp *m, const Onnx__NodeProto *n, int is_max)
{
    static const char *const known[] = {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides",
                                        "storage_order", "count_include_pad", NULL};
    oval *x;
    dlcl_status st;
    if ((st = check_attrs(m, n, known)) != DLCL_OK || (st = want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = want_chw(m, n, x)) != DLCL_OK || (st = one_output(m, n)) != DLCL_OK)
        return st;
    long k = 0, stride, pad, dil;
    if ((st = window(m, n, &k, &stride, &pad, &dil)) != DLCL_OK) return st;
    if (dil != 1) return nerr(m, DLCL_ERR_CONFIG, n, "dilations other than 1 are not supported");
    if (attr_i(n, "ceil_mode", 0) != 0) return nerr(m, DLCL_ERR_CONFIG, n, "ceil_mode = 1 is not supported");
    if (attr_i(n, "storage_order", 0) != 0) return nerr(m, DLCL_ERR_CONFIG, n, "storage_order = 1 is not supported");
    if (!is_max && pad > 0 && attr_i(n, "count_include_pad", 0) == 0)
        return nerr(m, DLCL_ERR_CONFIG, n, "count_include_pad = 0 with padding: dlcl's average counts the padding");
    if (2 * pad >= k + 1 || pad > k / 2) return nerr(m, DLCL_ERR_CONFIG, n, "padding %ld is over half the window", pad);
    int dims[3] = {x->dims[0], out_size(x->dims[1], (int)k, (int)stride, (int)pad, 1),
                   out_size(x->dims[2], (int)k, (int)stride, (int)pad, 1)};
    if (dims[1] < 1 || dims[2] < 1) return nerr(m, DLCL_ERR_DATA, n, "the output would be empty");
    size_t idx;
    st = layer1(m, n, is_max ? "maxpool" : "avgpool", x, 3, dims, &idx);
    if (st == DLCL_OK) st = kv(m, idx, "size", "%ld", k);
    if (st == DLCL_OK) st = kv(m, idx, "stride", "%ld", stride);
    if (st == DLCL_OK) st = kv(m, idx, "pad", "%ld", pad);
    return st;
}

static dlcl_status onnx_add(imp *m, const Onnx__NodeProto *n)
{
    oval *a, *b;
    dlcl_status st;
    if ((st = check_attrs(m, n, no_attrs)) != DLCL_OK) return st;
    if (n->n_input != 2) return nerr(m, DLCL_ERR_DATA, n, "%zu inputs, not 2", n->n_input);
    oval *ca = input(m, n, 0), *cb = input(m, n, 1);
    if (ca && cb && ca->kind == OV_CONST && cb->kind == OV_CONST && ca->n == cb->n) { /* shape arithmetic */
        double *v = malloc((ca->n ? ca->n : 1) * sizeof *v);
        if (v == NULL) return oom();
        for (size_t i = 0; i < ca->n; i++) v[i] = ca->cv[i] + cb->cv[i];
        st = def_const(m, n->output[0], v, ca->n, ca->rank);
        free(v);
        return st;
    }
    if ((st = want_act(m, n, 0, &a)) != DLCL_OK || (st = want_act(m, n, 1, &b)) != DLCL_OK) return st;
    bool same = a->ndim == b->ndim;
    for (int d = 0; same && d < a->ndim; d++) same = a->dims[d] == b->dims[d];
    if (!same) return nerr(m, DLCL_ERR_CONFIG, n, "the inputs differ in shape; broadcasting is not supported");
    char as[256], bs[256];
    snprintf(as, sizeof as, "%s", a->section);
    snprintf(bs, sizeof bs, "%s", b->section);
    int ndim = a->ndim, dims[LAYER_MAX_DIMS];
    memcpy(dims, a->dims, sizeof dims);
    size_t idx;
    st = new_section(m, n, "add", &idx);
    if (st == DLCL_OK) st = kv(m, idx, "input", "%s, %s", as, bs);
    if (st == DLCL_OK) st = def_act(m, n->output[0], sec(m, idx), ndim, dims);
    return st;
}

static dlcl_status onnx_concat(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"axis", NULL};
    dlcl_status st = check_attrs(m, n, known);
    if (st != DLCL_OK) return st;
    long axis = attr_i(n, "axis", 0);
    bool all_const = true;
    for (size_t k = 0; k < n->n_input; k++) {
        const oval *v = input(m, n, k);
        if (v == NULL) return nerr(m, DLCL_ERR_DATA, n, "input %zu is missing", k);
        all_const = all_const && v->kind != OV_ACT;
    }
    if (all_const) { /* shape vectors */
        double *all = NULL;
        size_t total = 0;
        for (size_t k = 0; k < n->n_input && st == DLCL_OK; k++) {
            double *v;
            size_t cnt;
            if ((st = want_const(m, n, k, &v, &cnt, NULL)) != DLCL_OK) break;
            double *g = realloc(all, (total + cnt + 1) * sizeof *g);
            if (g == NULL) st = oom();
            else {
                all = g;
                memcpy(all + total, v, cnt * sizeof *v);
                total += cnt;
            }
            free(v);
        }
        if (st == DLCL_OK) st = def_const(m, n->output[0], all, total, 1);
        free(all);
        return st;
    }
    if (n->n_input < 1 || n->n_input > LAYER_MAX_INPUTS)
        return nerr(m, DLCL_ERR_CONFIG, n, "%zu inputs (dlcl concatenates 1 to %d)", n->n_input, LAYER_MAX_INPUTS);
    oval *first;
    if ((st = want_act(m, n, 0, &first)) != DLCL_OK) return st;
    if (axis < 0) axis += first->ndim + 1;
    if (axis != 1) return nerr(m, DLCL_ERR_CONFIG, n, "axis = %ld: dlcl concatenates along channels (axis 1) only", axis);
    int ndim = first->ndim, dims[LAYER_MAX_DIMS];
    memcpy(dims, first->dims, sizeof dims);
    char list[4096] = "";
    size_t w = 0;
    for (size_t k = 0; k < n->n_input; k++) {
        oval *v;
        if ((st = want_act(m, n, k, &v)) != DLCL_OK) return st;
        bool ok = v->ndim == ndim;
        for (int d = 1; ok && d < ndim; d++) ok = v->dims[d] == dims[d];
        if (!ok) return nerr(m, DLCL_ERR_DATA, n, "input '%s' differs in shape beyond the channels", v->name);
        if (k > 0) dims[0] += v->dims[0];
        w += (size_t)snprintf(list + w, sizeof list - w, "%s%s", k ? ", " : "", v->section);
        if (w >= sizeof list) return nerr(m, DLCL_ERR_CONFIG, n, "the input names are too long");
    }
    size_t idx;
    st = new_section(m, n, "concat", &idx);
    if (st == DLCL_OK) st = kv(m, idx, "input", "%s", list);
    if (st == DLCL_OK) st = def_act(m, n->output[0], sec(m, idx), ndim, dims);
    return st;
}

static dlcl_status flatten(imp *m, const Onnx__NodeProto *n, const oval *x)
{
    int numel = 1;
    for (int d = 0; d < x->ndim; d++) numel *= x->dims[d];
    if (x->ndim == 1) return alias(m, n, x);
    size_t idx;
    return layer1(m, n, "flatten", x, 1, &numel, &idx);
}

static dlcl_status onnx_flatten(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"axis", NULL};
    oval *x;
    dlcl_status st;
    if ((st = check_attrs(m, n, known)) != DLCL_OK || (st = want_act(m, n, 0, &x)) != DLCL_OK) return st;
    long axis = attr_i(n, "axis", 1);
    if (axis < 0) axis += x->ndim + 1;
    if (axis != 1) return nerr(m, DLCL_ERR_CONFIG, n, "axis = %ld: dlcl flattens each sample (axis 1) only", axis);
    return flatten(m, n, x);
}

/* Reshape to [batch, -1] (or [batch, numel]) is a flatten; to the same shape, nothing. */
static dlcl_status onnx_reshape(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"allowzero", NULL};
    oval *x;
    double *s;
    size_t cnt;
    dlcl_status st;
    if ((st = check_attrs(m, n, known)) != DLCL_OK || (st = want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = want_const(m, n, 1, &s, &cnt, NULL)) != DLCL_OK)
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
        return nerr(m, DLCL_ERR_CONFIG, n, "a reshape of %s (batch plus %ld values) to (%s): dlcl supports a flatten "
                    "(batch, -1) or the same shape only", x->name, numel, shape);
    bool same = tn == x->ndim;
    for (int i = 0; same && i < tn; i++) same = tgt[i] == x->dims[i];
    if (same) return alias(m, n, x);
    if (tn == 1) return flatten(m, n, x);
    return nerr(m, DLCL_ERR_CONFIG, n, "a reshape of %s to (%s): dlcl supports a flatten (batch, -1) or the same shape "
                "only", x->name, shape);
}

/* Nearest-neighbour upsampling by an integer factor (nn.Upsample(scale_factor=s)). */
static dlcl_status onnx_resize(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"mode", "coordinate_transformation_mode", "nearest_mode",
                                        "cubic_coeff_a", "exclude_outside", "extrapolation_value", NULL};
    oval *x;
    char b1[32], b2[32], b3[32];
    dlcl_status st;
    if ((st = check_attrs(m, n, known)) != DLCL_OK || (st = want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = want_chw(m, n, x)) != DLCL_OK)
        return st;
    const char *mode = attr_s(n, "mode", "nearest", b1, sizeof b1),
               *ct = attr_s(n, "coordinate_transformation_mode", "half_pixel", b2, sizeof b2),
               *nm = attr_s(n, "nearest_mode", "round_prefer_floor", b3, sizeof b3);
    if (strcmp(mode, "nearest") != 0) return nerr(m, DLCL_ERR_CONFIG, n, "mode = %s: dlcl upsamples by nearest only", mode);
    /* with an integer factor these all pick source pixel floor(x / s) */
    bool ok = (strcmp(ct, "asymmetric") == 0 && strcmp(nm, "floor") == 0) ||
              ((strcmp(ct, "half_pixel") == 0 || strcmp(ct, "pytorch_half_pixel") == 0) &&
               (strcmp(nm, "round_prefer_floor") == 0 || strcmp(nm, "round_prefer_ceil") == 0));
    if (!ok)
        return nerr(m, DLCL_ERR_CONFIG, n, "coordinate_transformation_mode = %s with nearest_mode = %s is not supported",
                    ct, nm);
    double *v;
    size_t cnt;
    double sh, sw;
    if (input(m, n, 2) != NULL) { /* scales */
        if ((st = want_const(m, n, 2, &v, &cnt, NULL)) != DLCL_OK) return st;
        ok = cnt == 4 && v[0] == 1 && v[1] == 1;
        sh = ok ? v[2] : 0, sw = ok ? v[3] : 0;
    } else if (input(m, n, 3) != NULL) { /* sizes */
        if ((st = want_const(m, n, 3, &v, &cnt, NULL)) != DLCL_OK) return st;
        ok = cnt == 4 && v[1] == x->dims[0];
        sh = ok ? v[2] / x->dims[1] : 0, sw = ok ? v[3] / x->dims[2] : 0;
    } else {
        return nerr(m, DLCL_ERR_DATA, n, "neither scales nor sizes is given");
    }
    free(v);
    if (!ok || sh != sw || sh < 1 || sh > 64 || sh != floor(sh))
        return nerr(m, DLCL_ERR_CONFIG, n, "dlcl upsamples H and W by one integer factor only (scales 1,1,s,s)");
    int dims[3] = {x->dims[0], x->dims[1] * (int)sh, x->dims[2] * (int)sh};
    size_t idx;
    st = layer1(m, n, "upsample", x, 3, dims, &idx);
    return st == DLCL_OK ? kv(m, idx, "scale", "%d", (int)sh) : st;
}

/* The last node may be a Softmax over the classes: the net's output is then the logits,
 * and dlcl_net_predict gives the probabilities. Anywhere else it is unsupported. */
static dlcl_status onnx_softmax(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"axis", NULL};
    oval *x;
    dlcl_status st;
    if ((st = check_attrs(m, n, known)) != DLCL_OK || (st = want_act(m, n, 0, &x)) != DLCL_OK) return st;
    long axis = attr_i(n, "axis", -1);
    bool last = m->g->n_output == 1 && strcmp(m->g->output[0]->name, n->output[0]) == 0 &&
                readers(m, n->output[0], NULL, NULL) == 1;
    if (!last || x->ndim != 1 || (axis != -1 && axis != 1))
        return nerr(m, DLCL_ERR_CONFIG, n, "dlcl supports Softmax only as the last node, over the classes of a "
                    "[batch, classes] output");
    return alias(m, n, x);
}

/* torch's GELU before opset 20: x * (erf(x / sqrt 2) + 1) * 0.5, starting at the Div. */
static dlcl_status onnx_div(imp *m, size_t i)
{
    const Onnx__NodeProto *n = m->g->node[i];
    Onnx__NodeProto *e, *a, *m1, *m2;
    size_t ie, ia, im1, im2;
    const oval *x = input(m, n, 0), *c = input(m, n, 1);
    double *v = NULL;
    size_t cnt = 0;
    bool ok = x && x->kind == OV_ACT && c && c->kind != OV_ACT && n->n_input == 2;
    if (ok && want_const(m, n, 1, &v, &cnt, NULL) == DLCL_OK) {
        ok = cnt == 1 && fabs(v[0] - 1.4142135623730951) < 1e-5;
        free(v);
    } else {
        ok = false;
    }
    ok = ok && readers(m, n->output[0], &e, &ie) == 1 && strcmp(e->op_type, "Erf") == 0 &&
         readers(m, e->output[0], &a, &ia) == 1 && strcmp(a->op_type, "Add") == 0 &&
         readers(m, a->output[0], &m1, &im1) == 1 && strcmp(m1->op_type, "Mul") == 0 && m1->n_input == 2 &&
         (strcmp(m1->input[0], x->name) == 0 || strcmp(m1->input[1], x->name) == 0) &&
         readers(m, m1->output[0], &m2, &im2) == 1 && strcmp(m2->op_type, "Mul") == 0 && m2->n_input == 2;
    if (ok) { /* the constants 1 and 0.5 */
        const oval *one = find_val(m, strcmp(a->input[0], e->output[0]) == 0 ? a->input[1] : a->input[0]);
        const oval *half = find_val(m, strcmp(m2->input[0], m1->output[0]) == 0 ? m2->input[1] : m2->input[0]);
        ok = one && half && one->kind == OV_CONST && half->kind == OV_CONST && one->n == 1 && half->n == 1 &&
             one->cv[0] == 1.0 && half->cv[0] == 0.5;
    }
    if (!ok) return nerr(m, DLCL_ERR_CONFIG, n, "Div is supported only as part of torch's GELU (x / sqrt(2) -> Erf)");
    oval *xa = (oval *)x;
    size_t idx;
    dlcl_status st = new_section(m, n, "activation", &idx);
    char xs[256];
    snprintf(xs, sizeof xs, "%s", xa->section);
    int ndim = xa->ndim, dims[LAYER_MAX_DIMS];
    memcpy(dims, xa->dims, sizeof dims);
    if (st == DLCL_OK) st = kv(m, idx, "input", "%s", xs);
    if (st == DLCL_OK) st = kv(m, idx, "activation", "gelu");
    if (st == DLCL_OK) st = def_act(m, m2->output[0], sec(m, idx), ndim, dims);
    m->done[ie] = m->done[ia] = m->done[im1] = m->done[im2] = true;
    return st;
}

/* ---- constant folding for shapes ---- */

static dlcl_status onnx_constant(imp *m, const Onnx__NodeProto *n)
{
    const Onnx__AttributeProto *a = n->n_attribute == 1 ? n->attribute[0] : NULL;
    if (a == NULL) return nerr(m, DLCL_ERR_DATA, n, "a Constant needs exactly one attribute");
    if (strcmp(a->name, "value") == 0 && a->t) {
        double *v;
        size_t cnt;
        dlcl_status st = tensor_values(m, n, a->t, &v, &cnt);
        if (st != DLCL_OK) return st;
        st = def_const(m, n->output[0], v, cnt, (int)a->t->n_dims);
        free(v);
        return st;
    }
    if (strcmp(a->name, "value_float") == 0) return def_const(m, n->output[0], (double[]){a->f}, 1, 0);
    if (strcmp(a->name, "value_int") == 0) return def_const(m, n->output[0], (double[]){(double)a->i}, 1, 0);
    if (strcmp(a->name, "value_ints") == 0 || strcmp(a->name, "value_floats") == 0) {
        size_t cnt = a->n_ints ? a->n_ints : a->n_floats;
        double *v = malloc((cnt ? cnt : 1) * sizeof *v);
        if (v == NULL) return oom();
        for (size_t i = 0; i < cnt; i++) v[i] = a->n_ints ? (double)a->ints[i] : a->floats[i];
        dlcl_status st = def_const(m, n->output[0], v, cnt, 1);
        free(v);
        return st;
    }
    return nerr(m, DLCL_ERR_CONFIG, n, "a Constant's attribute '%s' is not supported", a->name);
}

static dlcl_status onnx_shape(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"start", "end", NULL};
    dlcl_status st = check_attrs(m, n, known);
    const oval *x = input(m, n, 0);
    if (st != DLCL_OK) return st;
    if (x == NULL) return nerr(m, DLCL_ERR_DATA, n, "input 0 is missing");
    double s[LAYER_MAX_DIMS + 1];
    long r = 0;
    if (x->kind == OV_ACT) {
        s[r++] = ONNX_BATCH;
        for (int d = 0; d < x->ndim; d++) s[r++] = x->dims[d];
    } else if (x->kind == OV_INIT && x->t->n_dims <= LAYER_MAX_DIMS + 1) {
        for (size_t d = 0; d < x->t->n_dims; d++) s[r++] = (double)x->t->dims[d];
    } else {
        s[r++] = (double)x->n;
    }
    long a = attr_i(n, "start", 0), b = attr_i(n, "end", r);
    if (a < 0) a += r;
    if (b < 0) b += r;
    a = a < 0 ? 0 : a > r ? r : a;
    b = b < a ? a : b > r ? r : b;
    return def_const(m, n->output[0], s + a, (size_t)(b - a), 1);
}

/* Gather, Unsqueeze, Squeeze, Cast, Slice on constant vectors (shapes). */
static dlcl_status onnx_fold(imp *m, const Onnx__NodeProto *n)
{
    double *v, *ix = NULL;
    size_t cnt, ni = 0;
    int rank;
    dlcl_status st = want_const(m, n, 0, &v, &cnt, &rank);
    if (st != DLCL_OK) return st;
    const char *op = n->op_type;
    if (strcmp(op, "Gather") == 0) {
        int irank;
        if (attr_i(n, "axis", 0) != 0 || rank > 1) st = nerr(m, DLCL_ERR_CONFIG, n, "only axis 0 of a vector is folded");
        else st = want_const(m, n, 1, &ix, &ni, &irank);
        for (size_t i = 0; st == DLCL_OK && i < ni; i++) {
            long k = (long)ix[i];
            if (k < 0) k += (long)cnt;
            if (k < 0 || k >= (long)cnt) st = nerr(m, DLCL_ERR_DATA, n, "index %ld is out of range", (long)ix[i]);
            else ix[i] = v[k];
        }
        if (st == DLCL_OK) st = def_const(m, n->output[0], ix, ni, irank);
    } else if (strcmp(op, "Unsqueeze") == 0 || strcmp(op, "Squeeze") == 0) {
        int d = strcmp(op, "Unsqueeze") == 0 ? 1 : -1;
        if (n->n_input > 1 && n->input[1][0]) st = want_const(m, n, 1, &ix, &ni, NULL);
        if (st == DLCL_OK) st = def_const(m, n->output[0], v, cnt, rank + d * (ni ? (int)ni : 1) < 0 ? 0 : rank + d * (ni ? (int)ni : 1));
    } else if (strcmp(op, "Cast") == 0) {
        st = def_const(m, n->output[0], v, cnt, rank);
    } else { /* Slice of a vector, steps 1 */
        double *a = NULL, *b = NULL, *ax = NULL, *sp = NULL;
        size_t na = 0, nb = 0, nax = 0, nsp = 0;
        if (rank > 1) st = nerr(m, DLCL_ERR_CONFIG, n, "only a vector is folded");
        if (st == DLCL_OK) st = want_const(m, n, 1, &a, &na, NULL);
        if (st == DLCL_OK) st = want_const(m, n, 2, &b, &nb, NULL);
        if (st == DLCL_OK && input(m, n, 3)) st = want_const(m, n, 3, &ax, &nax, NULL);
        if (st == DLCL_OK && input(m, n, 4)) st = want_const(m, n, 4, &sp, &nsp, NULL);
        if (st == DLCL_OK && (na != 1 || nb != 1 || (nax && ax[0] != 0) || (nsp && sp[0] != 1)))
            st = nerr(m, DLCL_ERR_CONFIG, n, "only a slice of a vector with step 1 is folded");
        if (st == DLCL_OK) {
            double lo = a[0] < 0 ? a[0] + (double)cnt : a[0], hi = b[0] < 0 ? b[0] + (double)cnt : b[0];
            lo = lo < 0 ? 0 : lo > (double)cnt ? (double)cnt : lo;
            hi = hi < lo ? lo : hi > (double)cnt ? (double)cnt : hi;
            st = def_const(m, n->output[0], v + (size_t)lo, (size_t)(hi - lo), 1);
        }
        free(a), free(b), free(ax), free(sp);
    }
    free(v);
    free(ix);
    return st;
}

/* torch's AvgPool2d pads explicitly, often by nothing: only that is supported. */
static dlcl_status onnx_pad(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"mode", NULL};
    oval *x;
    double *p;
    size_t cnt;
    char buf[16];
    dlcl_status st;
    if ((st = check_attrs(m, n, known)) != DLCL_OK || (st = want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = want_const(m, n, 1, &p, &cnt, NULL)) != DLCL_OK)
        return st;
    bool zero = true;
    for (size_t i = 0; i < cnt; i++) zero = zero && p[i] == 0;
    free(p);
    if (!zero)
        return nerr(m, DLCL_ERR_CONFIG, n, "padding by a separate Pad (mode %s) is not supported; only an empty one",
                    attr_s(n, "mode", "constant", buf, sizeof buf));
    return alias(m, n, x);
}

/* The transpose of a 2-D initializer (a Linear's weight, unfolded) is read as such by MatMul and Gemm. */
static dlcl_status onnx_transpose(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"perm", NULL};
    const oval *x = input(m, n, 0);
    const Onnx__AttributeProto *perm = attr(n, "perm");
    dlcl_status st = check_attrs(m, n, known);
    if (st != DLCL_OK) return st;
    if (x == NULL || x->kind != OV_INIT || x->t->n_dims != 2 ||
        (perm && (perm->n_ints != 2 || perm->ints[0] != 1 || perm->ints[1] != 0)))
        return nerr(m, DLCL_ERR_CONFIG, n, "only the transpose of a 2-D initializer (a weight) is supported");
    dlcl_status s2 = alias(m, n, x);
    if (s2 == DLCL_OK) m->v[m->nv - 1].transposed ^= 1;
    return s2;
}

static dlcl_status translate(imp *m, size_t i)
{
    const Onnx__NodeProto *n = m->g->node[i];
    const char *op = n->op_type;
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
        return nerr(m, DLCL_ERR_CONFIG, n, "operator domain '%s' is not supported", n->domain);
    if (strcmp(op, "Conv") == 0) return onnx_conv(m, n);
    if (strcmp(op, "Gemm") == 0) return onnx_gemm(m, n);
    if (strcmp(op, "MatMul") == 0) return onnx_matmul(m, n);
    if (strcmp(op, "BatchNormalization") == 0) return onnx_batchnorm(m, n);
    if (strcmp(op, "LayerNormalization") == 0) return onnx_layernorm(m, n);
    if (strcmp(op, "Relu") == 0 || strcmp(op, "Sigmoid") == 0 || strcmp(op, "Tanh") == 0) {
        dlcl_status st = check_attrs(m, n, no_attrs);
        return st != DLCL_OK ? st : activation(m, n, op[0] == 'R' ? "relu" : op[0] == 'S' ? "sigmoid" : "tanh", 0);
    }
    if (strcmp(op, "LeakyRelu") == 0) {
        static const char *const known[] = {"alpha", NULL};
        dlcl_status st = check_attrs(m, n, known);
        return st != DLCL_OK ? st : activation(m, n, "leaky", attr_f(n, "alpha", 0.01));
    }
    if (strcmp(op, "Gelu") == 0) {
        static const char *const known[] = {"approximate", NULL};
        char buf[16];
        const char *ap = attr_s(n, "approximate", "none", buf, sizeof buf);
        dlcl_status st = check_attrs(m, n, known);
        if (st != DLCL_OK) return st;
        if (strcmp(ap, "none") != 0 && strcmp(ap, "tanh") != 0)
            return nerr(m, DLCL_ERR_CONFIG, n, "approximate = %s is not supported", ap);
        return activation(m, n, strcmp(ap, "tanh") == 0 ? "gelu_tanh" : "gelu", 0);
    }
    if (strcmp(op, "Add") == 0) return onnx_add(m, n);
    if (strcmp(op, "Concat") == 0) return onnx_concat(m, n);
    if (strcmp(op, "MaxPool") == 0) return onnx_pool(m, n, 1);
    if (strcmp(op, "AveragePool") == 0) return onnx_pool(m, n, 0);
    if (strcmp(op, "GlobalAveragePool") == 0) {
        oval *x;
        size_t idx;
        dlcl_status st;
        if ((st = check_attrs(m, n, no_attrs)) != DLCL_OK || (st = want_act(m, n, 0, &x)) != DLCL_OK ||
            (st = want_chw(m, n, x)) != DLCL_OK)
            return st;
        return layer1(m, n, "global_avgpool", x, 3, (int[]){x->dims[0], 1, 1}, &idx);
    }
    if (strcmp(op, "Flatten") == 0) return onnx_flatten(m, n);
    if (strcmp(op, "Reshape") == 0) return onnx_reshape(m, n);
    if (strcmp(op, "Softmax") == 0) return onnx_softmax(m, n);
    if (strcmp(op, "Resize") == 0) return onnx_resize(m, n);
    if (strcmp(op, "Dropout") == 0 || strcmp(op, "Identity") == 0) {
        const oval *x = input(m, n, 0);
        dlcl_status st = one_output(m, n);
        if (st != DLCL_OK) return st;
        if (x == NULL) return nerr(m, DLCL_ERR_DATA, n, "input 0 is missing");
        if (n->n_input > 2 && n->input[2][0]) {
            const oval *t = input(m, n, 2);
            if (t == NULL || t->kind == OV_ACT || (t->kind == OV_CONST && t->n == 1 && t->cv[0] != 0))
                return nerr(m, DLCL_ERR_CONFIG, n, "training_mode is not a constant false; dlcl imports for inference");
        }
        return alias(m, n, x);
    }
    if (strcmp(op, "Div") == 0) return onnx_div(m, i);
    if (strcmp(op, "Pad") == 0) return onnx_pad(m, n);
    if (strcmp(op, "Transpose") == 0) return onnx_transpose(m, n);
    if (strcmp(op, "Constant") == 0) return onnx_constant(m, n);
    if (strcmp(op, "Shape") == 0) return onnx_shape(m, n);
    if (strcmp(op, "Gather") == 0 || strcmp(op, "Unsqueeze") == 0 || strcmp(op, "Squeeze") == 0 ||
        strcmp(op, "Cast") == 0 || strcmp(op, "Slice") == 0)
        return onnx_fold(m, n);
    return nerr(m, DLCL_ERR_CONFIG, n, "operator %s is not supported (dlcl imports Conv, Gemm, MatMul, "
                "BatchNormalization, LayerNormalization, Relu, Sigmoid, Tanh, Gelu, LeakyRelu, Add, Concat, MaxPool, "
                "AveragePool, GlobalAveragePool, Flatten, Reshape, Softmax (last), Dropout, Identity, Resize (nearest) "
                "and constant shape arithmetic)", op);
}

/* ---- the model ---- */

static dlcl_status read_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return dlcl__err(DLCL_ERR_NOT_FOUND, "%s: cannot open the ONNX model", path);
    dlcl_status st = DLCL_OK;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) st = dlcl__err(DLCL_ERR_IO, "%s: cannot read", path);
    else if ((size_t)n > ONNX_MAX_FILE) st = dlcl__err(DLCL_ERR_DATA, "%s: %ld bytes is more than dlcl reads", path, n);
    else if ((*data = malloc((size_t)n + 1)) == NULL) st = oom();
    else if (fread(*data, 1, (size_t)n, f) != (size_t)n) {
        free(*data);
        st = dlcl__err(DLCL_ERR_IO, "%s: cannot read", path);
    }
    *len = (size_t)n;
    fclose(f);
    return st;
}

/* The graph's one data input: float, [batch, static dims...]. */
static dlcl_status graph_input(imp *m, int *ndim, int *dims)
{
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t i = 0; i < m->g->n_input; i++) {
        const Onnx__ValueInfoProto *v = m->g->input[i];
        if (find_val(m, v->name)) continue; /* an initializer listed as an input (IR < 4) */
        if (in != NULL)
            return dlcl__err(DLCL_ERR_CONFIG, "%s: the model has several inputs ('%s', '%s'); dlcl nets read one",
                             m->path, in->name, v->name);
        in = v;
    }
    if (in == NULL) return dlcl__err(DLCL_ERR_DATA, "%s: the graph has no input", m->path);
    const Onnx__TypeProto *t = in->type;
    if (t == NULL || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || t->tensor_type->shape == NULL)
        return dlcl__err(DLCL_ERR_DATA, "%s: input '%s' has no tensor type and shape", m->path, in->name);
    if (t->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: input '%s' has ONNX data type %d; dlcl reads float inputs", m->path,
                         in->name, t->tensor_type->elem_type);
    const Onnx__TensorShapeProto *s = t->tensor_type->shape;
    if (s->n_dim < 2 || s->n_dim > LAYER_MAX_DIMS + 1)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: input '%s' has %zu dimensions; dlcl reads [batch, ...] with 1 to %d "
                         "more", m->path, in->name, s->n_dim, LAYER_MAX_DIMS);
    const Onnx__TensorShapeProto__Dimension *b = s->dim[0];
    m->batch = b->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ? (long)b->dim_value : 0;
    *ndim = (int)s->n_dim - 1;
    for (size_t d = 1; d < s->n_dim; d++) {
        const Onnx__TensorShapeProto__Dimension *x = s->dim[d];
        if (x->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE || x->dim_value < 1 ||
            x->dim_value > (1 << 24))
            return dlcl__err(DLCL_ERR_CONFIG, "%s: input '%s': dimension %zu is dynamic ('%s'); dlcl needs every "
                             "dimension but the batch fixed (export with a fixed size)", m->path, in->name, d,
                             x->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM ? x->dim_param : "?");
        dims[d - 1] = (int)x->dim_value;
    }
    return def_act(m, in->name, "input", *ndim, dims);
}

static dlcl_status check_opset(const imp *m, const Onnx__ModelProto *mp)
{
    long ver = -1;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if (o->domain == NULL || o->domain[0] == '\0' || strcmp(o->domain, "ai.onnx") == 0) ver = (long)o->version;
    }
    if (ver < 0) return dlcl__err(DLCL_ERR_DATA, "%s: the model imports no ONNX operator set", m->path);
    if (ver < 13)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: operator set %ld; dlcl imports opset 13 and later (export with "
                         "opset_version=13 or more)", m->path, ver);
    return DLCL_OK;
}

/* Nodes in data-flow order (ONNX requires it; a node whose inputs are not ready waits). */
static dlcl_status translate_nodes(imp *m)
{
    size_t n = m->g->n_node, left = n;
    if ((m->done = calloc(n ? n : 1, sizeof *m->done)) == NULL) return oom();
    /* constants first: a pattern (torch's GELU) looks ahead at constants that come later */
    for (size_t i = 0; i < n; i++)
        if (strcmp(m->g->node[i]->op_type, "Constant") == 0 && m->g->node[i]->n_input == 0) {
            m->done[i] = true;
            left--;
            dlcl_status st = translate(m, i);
            if (st != DLCL_OK) return st;
        }
    while (left > 0) {
        size_t before = left;
        for (size_t i = 0; i < n; i++) {
            if (m->done[i]) continue;
            const Onnx__NodeProto *node = m->g->node[i];
            bool ready = true;
            for (size_t k = 0; k < node->n_input && ready; k++)
                ready = node->input[k][0] == '\0' || find_val(m, node->input[k]) != NULL;
            if (!ready) continue;
            m->done[i] = true;
            dlcl_status st = translate(m, i);
            if (st != DLCL_OK) return st;
        }
        left = 0;
        for (size_t i = 0; i < n; i++) left += !m->done[i];
        if (left == before) break;
    }
    if (left == 0) return DLCL_OK;
    /* stuck: an input nobody defines, or a cycle */
    for (size_t i = 0; i < n; i++) {
        if (m->done[i]) continue;
        const Onnx__NodeProto *node = m->g->node[i];
        for (size_t k = 0; k < node->n_input; k++) {
            const char *in = node->input[k];
            if (in[0] == '\0' || find_val(m, in)) continue;
            bool made = false;
            for (size_t j = 0; j < n && !made; j++)
                for (size_t o = 0; o < m->g->node[j]->n_output && !made; o++)
                    made = strcmp(m->g->node[j]->output[o], in) == 0;
            if (!made)
                return nerr(m, DLCL_ERR_DATA, node, "input '%s' is defined nowhere (no node, initializer or graph "
                            "input; a missing initializer?)", in);
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!m->done[i])
            return nerr(m, DLCL_ERR_DATA, m->g->node[i], "is part of a cycle (its inputs depend on its own output)");
    return DLCL_OK;
}

/* [net] key = value unless the config sets it. */
static dlcl_status net_default(imp *m, const char *key, const char *value)
{
    cfg_section *s = cfg_find_section(m->c, "net");
    if (cfg_find(s, key) != NULL) return DLCL_OK;
    return cfg_push_entry(s, key, value, 0);
}

static dlcl_status import_graph(imp *m, Onnx__ModelProto *mp)
{
    dlcl_status st = check_opset(m, mp);
    if (st != DLCL_OK) return st;
    if (mp->graph == NULL) return dlcl__err(DLCL_ERR_DATA, "%s: the model has no graph", m->path);
    m->g = mp->graph;
    for (size_t i = 0; i < m->g->n_initializer; i++) {
        Onnx__TensorProto *t = m->g->initializer[i];
        if (t->name == NULL || t->name[0] == '\0') return dlcl__err(DLCL_ERR_DATA, "%s: initializer %zu has no name", m->path, i);
        oval *v = new_val(m, t->name);
        if (v == NULL) return oom();
        v->kind = OV_INIT;
        v->t = t;
    }
    int ndim = 0, dims[LAYER_MAX_DIMS];
    if ((st = graph_input(m, &ndim, dims)) != DLCL_OK) return st;
    for (size_t i = 0; i < m->g->n_node; i++)
        if (m->g->node[i]->op_type == NULL || m->g->node[i]->n_output == 0)
            return dlcl__err(DLCL_ERR_DATA, "%s: node %zu has no operator or output", m->path, i);
    if ((st = translate_nodes(m)) != DLCL_OK) return st;
    if (m->g->n_output != 1)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: the model has %zu outputs; dlcl nets have one", m->path, m->g->n_output);
    const oval *out = find_val(m, m->g->output[0]->name);
    if (out == NULL)
        return dlcl__err(DLCL_ERR_DATA, "%s: the graph output '%s' is computed by no node", m->path, m->g->output[0]->name);
    if (out->kind != OV_ACT || strcmp(out->section, "input") == 0)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: the graph output '%s' is a constant or the input itself", m->path, out->name);
    char v[160];
    size_t numel = 1, w = 0;
    for (int d = 0; d < ndim; d++) w += (size_t)snprintf(v + w, sizeof v - w, "%s%d", d ? "," : "", dims[d]);
    /* the config may restate the input, but not change it */
    const cfg_entry *e = cfg_find(cfg_find_section(m->c, "net"), "input");
    if (e != NULL) {
        char a[160] = "";
        size_t j = 0;
        for (const char *p = e->value; *p && j + 1 < sizeof a; p++)
            if (*p != ' ' && *p != '\t') a[j++] = *p;
        a[j] = '\0';
        if (strcmp(a, v) != 0)
            return dlcl__err(DLCL_ERR_CONFIG, "%s: [net] input = %s, but the model '%s' reads %s per sample", m->c->path,
                             e->value, m->path, v);
    }
    if ((st = net_default(m, "input", v)) != DLCL_OK) return st;
    for (int d = 0; d < out->ndim; d++) numel *= (size_t)out->dims[d];
    snprintf(v, sizeof v, "%zu", out->ndim == 2 ? (size_t)out->dims[1] : numel);
    if ((st = net_default(m, "classes", v)) != DLCL_OK) return st;
    if ((st = net_default(m, "output", out->section)) != DLCL_OK) return st;
    if (m->batch > 0) {
        snprintf(v, sizeof v, "%ld", m->batch);
        if ((st = net_default(m, "batch", v)) != DLCL_OK) return st;
    }
    return DLCL_OK;
}

static char *resolve(const char *config_path, const char *p)
{
    if (p[0] == '/' || strchr(config_path, '/') == NULL) return strdup(p);
    size_t dir = (size_t)(strrchr(config_path, '/') - config_path), n = dir + strlen(p) + 2;
    char *out = malloc(n);
    if (out) snprintf(out, n, "%.*s/%s", (int)dir, config_path, p);
    return out;
}

dlcl_status onnx_import_config(cfg *c)
{
    cfg_section *net = cfg_find_section(c, "net");
    const cfg_entry *e = net ? cfg_find(net, "model") : NULL;
    if (e == NULL) return DLCL_OK;
    char where[64];
    for (size_t i = 0; i < c->count; i++) {
        const char *s = c->sections[i].name;
        if (strcmp(s, "net") && strcmp(s, "data") && strcmp(s, "optimizer") && strcmp(s, "vars"))
            return dlcl__err(DLCL_ERR_CONFIG, "%s: [%s]: a config with [net] model = %s takes its layers from the model "
                             "and may not list any", cfg_where(c, c->sections[i].line, where, sizeof where), s, e->value);
    }
    char *path = resolve(c->path, e->value);
    if (path == NULL) return oom();
    imp m = {.path = path, .c = c};
    uint8_t *data = NULL;
    size_t len = 0;
    Onnx__ModelProto *mp = NULL;
    dlcl_status st = read_file(path, &data, &len);
    if (st == DLCL_OK && (mp = onnx__model_proto__unpack(NULL, len, data)) == NULL)
        st = dlcl__err(DLCL_ERR_DATA, "%s: not an ONNX model (the protobuf does not parse: truncated or another kind "
                       "of file)", path);
    if (st == DLCL_OK && (m.w = calloc(1, sizeof *m.w)) == NULL) st = oom();
    if (st == DLCL_OK) st = import_graph(&m, mp);
    if (st == DLCL_OK) {
        onnx_weights_free(c->model);
        c->model = m.w;
        m.w = NULL;
    }
    onnx_weights_free(m.w);
    for (size_t i = 0; i < m.nv; i++) free(m.v[i].cv);
    free(m.v);
    free(m.done);
    if (mp) onnx__model_proto__free_unpacked(mp, NULL);
    free(data);
    free(path);
    return st;
}

dlcl_status onnx_bare_config(const char *path, cfg *out)
{
    memset(out, 0, sizeof *out);
    dlcl_status st = (out->path = strdup(path)) ? DLCL_OK : oom();
    const char *base = strrchr(path, '/');
    if (st == DLCL_OK) st = cfg_push_section(out, "net", 3, 0);
    if (st == DLCL_OK) st = cfg_push_entry(&out->sections[0], "model", base ? base + 1 : path, 0);
    if (st == DLCL_OK) st = cfg_push_section(out, "data", 4, 0);
    if (st != DLCL_OK) cfg_free(out);
    return st;
}

void onnx_weights_free(struct onnx_weights *w)
{
    if (w == NULL) return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->w[i].section);
        free(w->w[i].data);
    }
    free(w->w);
    free(w);
}

dlcl_status onnx_weights_apply(dlcl_net *net)
{
    struct onnx_weights *w = net->cfg.model;
    if (w == NULL) return DLCL_OK;
    dlcl_status st = DLCL_OK;
    for (size_t i = 0; i < w->n && st == DLCL_OK; i++) {
        const onnx_weight *x = &w->w[i];
        const layer_param *p = NULL;
        for (size_t j = 0; j < net->n_layers && p == NULL; j++) {
            const layer *l = &net->layers[j];
            if (strcmp(l->name, x->section) != 0) continue;
            for (int k = 0; k < l->n_params && p == NULL; k++)
                if (strcmp(l->params[k].suffix, x->suffix) == 0) p = &l->params[k];
        }
        if (p == NULL || p->numel != x->n || p->tie || (p->region != LAYER_PARAM && p->region != LAYER_BUFFER)) {
            st = dlcl__err(DLCL_ERR_SHAPE, "%s: the model's %s.%s (%zu values) has no tensor of that size in the net",
                           net->cfg.path, x->section, x->suffix, x->n);
            break;
        }
        cl_mem mem = p->region == LAYER_PARAM ? net->params : net->buffers;
        cl_int err = clEnqueueWriteBuffer(net->ctx->queue, mem, CL_TRUE, p->off * sizeof(float), x->n * sizeof(float),
                                          x->data, 0, NULL, NULL);
        if (err != CL_SUCCESS) st = dlcl__cl_err(err, "clEnqueueWriteBuffer (ONNX weights)");
    }
    onnx_weights_free(w);
    net->cfg.model = NULL;
    return st;
}
