/* ONNX import, the host side: tensor values, attributes and a node's inputs (shared by the
 * translations), and the nodes folded away without a layer: Constant, Shape and the
 * Gather/Unsqueeze/Squeeze/Cast/Slice arithmetic on shape vectors, Identity and Dropout,
 * an empty Pad, the Transpose of a weight. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_imp.h"

/* ---- tensors and attributes ---- */

bool ox_tensor_numel(const Onnx__TensorProto *t, size_t *n)
{
    size_t k = 1;
    for (size_t d = 0; d < t->n_dims; d++)
        if (t->dims[d] < 0 || !dlcl__mul_ok(k, (size_t)t->dims[d], &k)) return false;
    *n = k;
    return true;
}

/* The values of an initializer or constant tensor as doubles (malloc'ed). */
dlcl_status ox_tensor_values(const imp *m, const Onnx__NodeProto *node, const Onnx__TensorProto *t, double **out,
                             size_t *count)
{
    size_t n;
    const char *nm = t->name ? t->name : "";
    if (!ox_tensor_numel(t, &n) || n > ONNX_MAX_FILE)
        return node ? ox_nerr(m, DLCL_ERR_DATA, node, "tensor '%s' has a bad shape", nm)
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
    if (v == NULL) return ox_oom();
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

const Onnx__AttributeProto *ox_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0) return n->attribute[i];
    return NULL;
}

long ox_attr_i(const Onnx__NodeProto *n, const char *name, long def)
{
    const Onnx__AttributeProto *a = ox_attr(n, name);
    return a ? (long)a->i : def;
}

double ox_attr_f(const Onnx__NodeProto *n, const char *name, double def)
{
    const Onnx__AttributeProto *a = ox_attr(n, name);
    return a ? a->f : def;
}

/* The string attribute, or def; copied into buf. */
const char *ox_attr_s(const Onnx__NodeProto *n, const char *name, const char *def, char *buf, size_t cap)
{
    const Onnx__AttributeProto *a = ox_attr(n, name);
    if (a == NULL || !a->has_s) return def;
    snprintf(buf, cap, "%.*s", (int)a->s.len, (const char *)a->s.data);
    return buf;
}

/* An ints attribute whose values are all equal (a square kernel, equal strides and pads):
 * its value, def when absent; -1 when the values differ or the count is not want. */
long ox_attr_same(const Onnx__NodeProto *n, const char *name, size_t want, long def)
{
    const Onnx__AttributeProto *a = ox_attr(n, name);
    if (a == NULL) return def;
    if (a->n_ints != want) return -1;
    for (size_t i = 1; i < a->n_ints; i++)
        if (a->ints[i] != a->ints[0]) return -1;
    return (long)a->ints[0];
}

/* Attributes a translation does not know are errors: they might change the result. */
dlcl_status ox_check_attrs(const imp *m, const Onnx__NodeProto *n, const char *const *known)
{
    for (size_t i = 0; i < n->n_attribute; i++) {
        const char *a = n->attribute[i]->name ? n->attribute[i]->name : "";
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++) ok = strcmp(*k, a) == 0;
        if (!ok) return ox_nerr(m, DLCL_ERR_CONFIG, n, "attribute '%s' is not supported", a);
    }
    return DLCL_OK;
}

/* ---- inputs ---- */

oval *ox_input(const imp *m, const Onnx__NodeProto *n, size_t k)
{
    if (k >= n->n_input || n->input[k][0] == '\0') return NULL;
    return ox_find_val(m, n->input[k]);
}

dlcl_status ox_want_act(const imp *m, const Onnx__NodeProto *n, size_t k, oval **out)
{
    oval *v = ox_input(m, n, k);
    if (v == NULL) return ox_nerr(m, DLCL_ERR_DATA, n, "input %zu is missing", k);
    if (v->kind != OV_ACT)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "input %zu ('%s') is a constant; dlcl computes this operator only on the "
                       "net's data", k, v->name);
    *out = v;
    return DLCL_OK;
}

/* A float initializer of the expected number of values, copied out (malloc'ed floats). */
dlcl_status ox_want_init(const imp *m, const Onnx__NodeProto *n, size_t k, const char *what, size_t numel,
                         float **out)
{
    oval *v = ox_input(m, n, k);
    if (v == NULL) return ox_nerr(m, DLCL_ERR_DATA, n, "the %s (input %zu) is missing", what, k);
    if (v->kind != OV_INIT)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "the %s ('%s') is computed, not an initializer; dlcl needs it as a weight",
                       what, v->name);
    if (v->t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return ox_nerr(m, DLCL_ERR_DATA, n, "the %s ('%s') has ONNX data type %d, not float", what, v->name,
                       v->t->data_type);
    double *d;
    size_t cnt;
    dlcl_status st = ox_tensor_values(m, n, v->t, &d, &cnt);
    if (st != DLCL_OK) return st;
    if (numel != 0 && cnt != numel) {
        free(d);
        return ox_nerr(m, DLCL_ERR_DATA, n, "the %s ('%s') holds %zu values, expected %zu", what, v->name, cnt, numel);
    }
    float *f = malloc((cnt ? cnt : 1) * sizeof *f);
    if (f == NULL) {
        free(d);
        return ox_oom();
    }
    for (size_t i = 0; i < cnt; i++) f[i] = (float)d[i];
    free(d);
    *out = f;
    return DLCL_OK;
}

/* The values of a constant input (folded or an initializer); malloc'ed. */
dlcl_status ox_want_const(const imp *m, const Onnx__NodeProto *n, size_t k, double **out, size_t *cnt, int *rank)
{
    oval *v = ox_input(m, n, k);
    if (v == NULL) return ox_nerr(m, DLCL_ERR_DATA, n, "input %zu is missing", k);
    if (v->kind == OV_ACT)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "input %zu ('%s') depends on the data; dlcl needs it constant (a dynamic "
                       "shape)", k, v->name);
    if (v->kind == OV_INIT) {
        if (rank) *rank = (int)v->t->n_dims;
        return ox_tensor_values(m, n, v->t, out, cnt);
    }
    if ((*out = malloc((v->n ? v->n : 1) * sizeof **out)) == NULL) return ox_oom();
    memcpy(*out, v->cv, v->n * sizeof **out);
    *cnt = v->n;
    if (rank) *rank = v->rank;
    return DLCL_OK;
}

dlcl_status ox_add_weight(imp *m, const char *section, const char *suffix, float *data, size_t n)
{
    struct onnx_weights *w = m->w;
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        onnx_weight *p = realloc(w->w, cap * sizeof *p);
        if (p == NULL) {
            free(data);
            return ox_oom();
        }
        w->w = p;
        w->cap = cap;
    }
    char *s = strdup(section);
    if (s == NULL) {
        free(data);
        return ox_oom();
    }
    w->w[w->n++] = (onnx_weight){s, suffix, data, n};
    return DLCL_OK;
}

const char *const ox_no_attrs[] = {NULL};

/* y = x (Identity, Dropout at inference, a Reshape that keeps the shape): no layer. */
dlcl_status ox_alias(imp *m, const Onnx__NodeProto *n, const oval *x)
{
    oval copy = *x;
    oval *v = ox_new_val(m, n->output[0]);
    if (v == NULL) return ox_oom();
    *v = copy;
    v->name = n->output[0];
    if (copy.kind == OV_CONST) {
        if ((v->cv = malloc((copy.n ? copy.n : 1) * sizeof *v->cv)) == NULL) return ox_oom();
        memcpy(v->cv, copy.cv, copy.n * sizeof *v->cv);
    }
    return DLCL_OK;
}


/* Dropout at inference and Identity: y = x. */
dlcl_status onnx_identity(imp *m, const Onnx__NodeProto *n)
{
    const oval *x = ox_input(m, n, 0);
    dlcl_status st = ox_one_output(m, n);
    if (st != DLCL_OK) return st;
    if (x == NULL) return ox_nerr(m, DLCL_ERR_DATA, n, "input 0 is missing");
    if (n->n_input > 2 && n->input[2][0]) {
        const oval *t = ox_input(m, n, 2);
        if (t == NULL || t->kind == OV_ACT || (t->kind == OV_CONST && t->n == 1 && t->cv[0] != 0))
            return ox_nerr(m, DLCL_ERR_CONFIG, n, "training_mode is not a constant false; dlcl imports for inference");
    }
    return ox_alias(m, n, x);
}

/* ---- constant folding for shapes ---- */

dlcl_status onnx_constant(imp *m, const Onnx__NodeProto *n)
{
    const Onnx__AttributeProto *a = n->n_attribute == 1 ? n->attribute[0] : NULL;
    if (a == NULL || a->name == NULL) return ox_nerr(m, DLCL_ERR_DATA, n, "a Constant needs exactly one attribute");
    if (strcmp(a->name, "value") == 0 && a->t) {
        double *v;
        size_t cnt;
        dlcl_status st = ox_tensor_values(m, n, a->t, &v, &cnt);
        if (st != DLCL_OK) return st;
        st = ox_def_const(m, n->output[0], v, cnt, (int)a->t->n_dims);
        free(v);
        return st;
    }
    if (strcmp(a->name, "value_float") == 0) return ox_def_const(m, n->output[0], (double[]){a->f}, 1, 0);
    if (strcmp(a->name, "value_int") == 0) return ox_def_const(m, n->output[0], (double[]){(double)a->i}, 1, 0);
    if (strcmp(a->name, "value_ints") == 0 || strcmp(a->name, "value_floats") == 0) {
        size_t cnt = a->n_ints ? a->n_ints : a->n_floats;
        double *v = malloc((cnt ? cnt : 1) * sizeof *v);
        if (v == NULL) return ox_oom();
        for (size_t i = 0; i < cnt; i++) v[i] = a->n_ints ? (double)a->ints[i] : a->floats[i];
        dlcl_status st = ox_def_const(m, n->output[0], v, cnt, 1);
        free(v);
        return st;
    }
    return ox_nerr(m, DLCL_ERR_CONFIG, n, "a Constant's attribute '%s' is not supported", a->name);
}

dlcl_status onnx_shape(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"start", "end", NULL};
    dlcl_status st = ox_check_attrs(m, n, known);
    const oval *x = ox_input(m, n, 0);
    if (st != DLCL_OK) return st;
    if (x == NULL) return ox_nerr(m, DLCL_ERR_DATA, n, "input 0 is missing");
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
    long a = ox_attr_i(n, "start", 0), b = ox_attr_i(n, "end", r);
    if (a < 0) a += r;
    if (b < 0) b += r;
    a = a < 0 ? 0 : a > r ? r : a;
    b = b < a ? a : b > r ? r : b;
    return ox_def_const(m, n->output[0], s + a, (size_t)(b - a), 1);
}

/* Gather, Unsqueeze, Squeeze, Cast, Slice on constant vectors (shapes). */
dlcl_status onnx_fold(imp *m, const Onnx__NodeProto *n)
{
    double *v, *ix = NULL;
    size_t cnt, ni = 0;
    int rank;
    dlcl_status st = ox_want_const(m, n, 0, &v, &cnt, &rank);
    if (st != DLCL_OK) return st;
    const char *op = n->op_type;
    if (strcmp(op, "Gather") == 0) {
        int irank;
        if (ox_attr_i(n, "axis", 0) != 0 || rank > 1) st = ox_nerr(m, DLCL_ERR_CONFIG, n, "only axis 0 of a vector is folded");
        else st = ox_want_const(m, n, 1, &ix, &ni, &irank);
        for (size_t i = 0; st == DLCL_OK && i < ni; i++) {
            if (!(ix[i] >= -0x1p62 && ix[i] <= 0x1p62)) { /* NaN, the batch symbol, out of long's range */
                st = ox_nerr(m, DLCL_ERR_DATA, n, "index %g is out of range", ix[i]);
                break;
            }
            long k = (long)ix[i];
            if (k < 0) k += (long)cnt;
            if (k < 0 || k >= (long)cnt) st = ox_nerr(m, DLCL_ERR_DATA, n, "index %ld is out of range", (long)ix[i]);
            else ix[i] = v[k];
        }
        if (st == DLCL_OK) st = ox_def_const(m, n->output[0], ix, ni, irank);
    } else if (strcmp(op, "Unsqueeze") == 0 || strcmp(op, "Squeeze") == 0) {
        int d = strcmp(op, "Unsqueeze") == 0 ? 1 : -1;
        if (n->n_input > 1 && n->input[1][0]) st = ox_want_const(m, n, 1, &ix, &ni, NULL);
        if (st == DLCL_OK) st = ox_def_const(m, n->output[0], v, cnt, rank + d * (ni ? (int)ni : 1) < 0 ? 0 : rank + d * (ni ? (int)ni : 1));
    } else if (strcmp(op, "Cast") == 0) {
        st = ox_def_const(m, n->output[0], v, cnt, rank);
    } else { /* Slice of a vector, steps 1 */
        double *a = NULL, *b = NULL, *ax = NULL, *sp = NULL;
        size_t na = 0, nb = 0, nax = 0, nsp = 0;
        if (rank > 1) st = ox_nerr(m, DLCL_ERR_CONFIG, n, "only a vector is folded");
        if (st == DLCL_OK) st = ox_want_const(m, n, 1, &a, &na, NULL);
        if (st == DLCL_OK) st = ox_want_const(m, n, 2, &b, &nb, NULL);
        if (st == DLCL_OK && ox_input(m, n, 3)) st = ox_want_const(m, n, 3, &ax, &nax, NULL);
        if (st == DLCL_OK && ox_input(m, n, 4)) st = ox_want_const(m, n, 4, &sp, &nsp, NULL);
        if (st == DLCL_OK && (na != 1 || nb != 1 || (nax && ax[0] != 0) || (nsp && sp[0] != 1)))
            st = ox_nerr(m, DLCL_ERR_CONFIG, n, "only a slice of a vector with step 1 is folded");
        if (st == DLCL_OK && (isnan(a[0]) || isnan(b[0])))
            st = ox_nerr(m, DLCL_ERR_DATA, n, "a slice bound is not a number");
        if (st == DLCL_OK) {
            double lo = a[0] < 0 ? a[0] + (double)cnt : a[0], hi = b[0] < 0 ? b[0] + (double)cnt : b[0];
            lo = lo < 0 ? 0 : lo > (double)cnt ? (double)cnt : lo;
            hi = hi < lo ? lo : hi > (double)cnt ? (double)cnt : hi;
            st = ox_def_const(m, n->output[0], v + (size_t)lo, (size_t)(hi - lo), 1);
        }
        free(a), free(b), free(ax), free(sp);
    }
    free(v);
    free(ix);
    return st;
}

/* torch's AvgPool2d pads explicitly, often by nothing: only that is supported. */
dlcl_status onnx_pad(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"mode", NULL};
    oval *x = NULL;
    double *p;
    size_t cnt;
    char buf[16];
    dlcl_status st;
    if ((st = ox_check_attrs(m, n, known)) != DLCL_OK || (st = ox_want_act(m, n, 0, &x)) != DLCL_OK ||
        (st = ox_want_const(m, n, 1, &p, &cnt, NULL)) != DLCL_OK)
        return st;
    bool zero = true;
    for (size_t i = 0; i < cnt; i++) zero = zero && p[i] == 0;
    free(p);
    if (!zero)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "padding by a separate Pad (mode %s) is not supported; only an empty one",
                       ox_attr_s(n, "mode", "constant", buf, sizeof buf));
    return ox_alias(m, n, x);
}

/* The transpose of a 2-D initializer (a Linear's weight, unfolded) is read as such by MatMul and Gemm. */
dlcl_status onnx_transpose(imp *m, const Onnx__NodeProto *n)
{
    static const char *const known[] = {"perm", NULL};
    const oval *x = ox_input(m, n, 0);
    const Onnx__AttributeProto *perm = ox_attr(n, "perm");
    dlcl_status st = ox_check_attrs(m, n, known);
    if (st != DLCL_OK) return st;
    if (x == NULL || x->kind != OV_INIT || x->t->n_dims != 2 ||
        (perm && (perm->n_ints != 2 || perm->ints[0] != 1 || perm->ints[1] != 0)))
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "only the transpose of a 2-D initializer (a weight) is supported");
    dlcl_status s2 = ox_alias(m, n, x);
    if (s2 == DLCL_OK) m->v[m->nv - 1].transposed ^= 1;
    return s2;
}
