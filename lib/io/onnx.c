/* ONNX models (opset 13 and later) as dlcl configs. Each node that computes becomes a
 * section (type=, input=, its keys: onnx_ops.c); what torch.onnx.export emits around them
 * (Constant, Shape, Gather, Unsqueeze, Concat, Cast, Slice chains feeding Reshape's shape;
 * Identity, Dropout; a final Softmax) is folded on the host (onnx_fold.c). This file reads
 * the model, keeps the table of the graph's tensors, walks the nodes in data-flow order,
 * fills [net]'s defaults from the graph's input and output, and writes the weights into the
 * net. Per-sample shapes are tracked as nodes are read, because Shape and Reshape need them;
 * the batch dimension stays symbolic. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../net/net.h"
#include "onnx_imp.h"

dlcl_status ox_oom(void) { return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory"); }

const char *ox_node_name(const Onnx__NodeProto *n)
{
    return n->name && n->name[0] ? n->name : n->n_output > 0 ? n->output[0] : "?";
}

/* "model.onnx: node 'Conv_3' (Conv): ..." */
dlcl_status ox_nerr(const imp *m, dlcl_status st, const Onnx__NodeProto *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dlcl__err(st, "%s: node '%s' (%s): %s", m->path, ox_node_name(n), n->op_type ? n->op_type : "?", msg);
}

oval *ox_find_val(const imp *m, const char *name)
{
    for (size_t i = m->nv; i-- > 0;)
        if (strcmp(m->v[i].name, name) == 0) return &m->v[i];
    return NULL;
}

oval *ox_new_val(imp *m, const char *name)
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

dlcl_status ox_def_act(imp *m, const char *name, const char *section, int ndim, const int *dims)
{
    size_t numel = 1;
    for (int d = 0; d < ndim; d++)
        if (dims[d] < 1 || !dlcl__mul_ok(numel, (size_t)dims[d], &numel) || numel > INT_MAX)
            return dlcl__err(DLCL_ERR_CONFIG, "%s: tensor '%s' would be empty or hold more than %d values per sample",
                             m->path, name, INT_MAX);
    oval *v = ox_new_val(m, name);
    if (v == NULL) return ox_oom();
    v->kind = OV_ACT;
    v->section = section;
    v->ndim = ndim;
    memcpy(v->dims, dims, (size_t)ndim * sizeof *dims);
    return DLCL_OK;
}

dlcl_status ox_def_const(imp *m, const char *name, const double *cv, size_t n, int rank)
{
    oval *v = ox_new_val(m, name);
    if (v == NULL) return ox_oom();
    v->kind = OV_CONST;
    v->rank = rank;
    v->n = n;
    if ((v->cv = malloc((n ? n : 1) * sizeof *v->cv)) == NULL) return ox_oom();
    memcpy(v->cv, cv, n * sizeof *cv);
    return DLCL_OK;
}

/* Outputs beyond the first must be unused (Dropout's mask, MaxPool's indices, ...). */
dlcl_status ox_one_output(const imp *m, const Onnx__NodeProto *n)
{
    if (n->n_output < 1 || n->output[0][0] == '\0') return ox_nerr(m, DLCL_ERR_DATA, n, "no output");
    for (size_t k = 1; k < n->n_output; k++)
        if (n->output[k][0] != '\0') {
            for (size_t i = 0; i < m->g->n_node; i++)
                for (size_t j = 0; j < m->g->node[i]->n_input; j++)
                    if (strcmp(m->g->node[i]->input[j], n->output[k]) == 0)
                        return ox_nerr(m, DLCL_ERR_CONFIG, n, "output %zu ('%s') is read by node '%s'; dlcl computes only "
                                       "the first output", k, n->output[k], ox_node_name(m->g->node[i]));
        }
    return DLCL_OK;
}

/* The nodes reading tensor name, and the one reader when there is exactly one. */
int ox_readers(const imp *m, const char *name, Onnx__NodeProto **only, size_t *only_idx)
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

/* One node into sections, values or nothing, by its operator. */
static dlcl_status translate(imp *m, size_t i)
{
    const Onnx__NodeProto *n = m->g->node[i];
    const char *op = n->op_type;
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
        return ox_nerr(m, DLCL_ERR_CONFIG, n, "operator domain '%s' is not supported", n->domain);
    if (strcmp(op, "Conv") == 0) return onnx_conv(m, n);
    if (strcmp(op, "Gemm") == 0) return onnx_gemm(m, n);
    if (strcmp(op, "MatMul") == 0) return onnx_matmul(m, n);
    if (strcmp(op, "BatchNormalization") == 0) return onnx_batchnorm(m, n);
    if (strcmp(op, "LayerNormalization") == 0) return onnx_layernorm(m, n);
    if (strcmp(op, "Relu") == 0 || strcmp(op, "Sigmoid") == 0 || strcmp(op, "Tanh") == 0 ||
        strcmp(op, "LeakyRelu") == 0 || strcmp(op, "Gelu") == 0)
        return onnx_act(m, n);
    if (strcmp(op, "Add") == 0) return onnx_add(m, n);
    if (strcmp(op, "Concat") == 0) return onnx_concat(m, n);
    if (strcmp(op, "MaxPool") == 0) return onnx_pool(m, n, 1);
    if (strcmp(op, "AveragePool") == 0) return onnx_pool(m, n, 0);
    if (strcmp(op, "GlobalAveragePool") == 0) return onnx_global_avgpool(m, n);
    if (strcmp(op, "Flatten") == 0) return onnx_flatten(m, n);
    if (strcmp(op, "Reshape") == 0) return onnx_reshape(m, n);
    if (strcmp(op, "Softmax") == 0) return onnx_softmax(m, n);
    if (strcmp(op, "Resize") == 0) return onnx_resize(m, n);
    if (strcmp(op, "Dropout") == 0 || strcmp(op, "Identity") == 0) return onnx_identity(m, n);
    if (strcmp(op, "Div") == 0) return onnx_div(m, i);
    if (strcmp(op, "Pad") == 0) return onnx_pad(m, n);
    if (strcmp(op, "Transpose") == 0) return onnx_transpose(m, n);
    if (strcmp(op, "Constant") == 0) return onnx_constant(m, n);
    if (strcmp(op, "Shape") == 0) return onnx_shape(m, n);
    if (strcmp(op, "Gather") == 0 || strcmp(op, "Unsqueeze") == 0 || strcmp(op, "Squeeze") == 0 ||
        strcmp(op, "Cast") == 0 || strcmp(op, "Slice") == 0)
        return onnx_fold(m, n);
    return ox_nerr(m, DLCL_ERR_CONFIG, n, "operator %s is not supported (dlcl imports Conv, Gemm, MatMul, "
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
    else if ((*data = malloc((size_t)n + 1)) == NULL) st = ox_oom();
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
        if (ox_find_val(m, v->name)) continue; /* an initializer listed as an input (IR < 4) */
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
        bool named = x->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && x->dim_param;
        if (x->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE || x->dim_value < 1 ||
            x->dim_value > (1 << 24))
            return dlcl__err(DLCL_ERR_CONFIG, "%s: input '%s': dimension %zu is dynamic ('%s'); dlcl needs every "
                             "dimension but the batch fixed (export with a fixed size)", m->path, in->name, d,
                             named ? x->dim_param : "?");
        dims[d - 1] = (int)x->dim_value;
    }
    return ox_def_act(m, in->name, "input", *ndim, dims);
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
    if ((m->done = calloc(n ? n : 1, sizeof *m->done)) == NULL) return ox_oom();
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
                ready = node->input[k][0] == '\0' || ox_find_val(m, node->input[k]) != NULL;
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
            if (in[0] == '\0' || ox_find_val(m, in)) continue;
            bool made = false;
            for (size_t j = 0; j < n && !made; j++)
                for (size_t o = 0; o < m->g->node[j]->n_output && !made; o++)
                    made = strcmp(m->g->node[j]->output[o], in) == 0;
            if (!made)
                return ox_nerr(m, DLCL_ERR_DATA, node, "input '%s' is defined nowhere (no node, initializer or graph "
                               "input; a missing initializer?)", in);
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!m->done[i])
            return ox_nerr(m, DLCL_ERR_DATA, m->g->node[i], "is part of a cycle (its inputs depend on its own output)");
    return DLCL_OK;
}

/* [net] key = value unless the config sets it. */
static dlcl_status net_default(imp *m, const char *key, const char *value)
{
    cfg_section *s = cfg_find_section(m->c, "net");
    if (cfg_find(s, key) != NULL) return DLCL_OK;
    return cfg_push_entry(s, key, value, 0);
}

/* protobuf-c leaves an absent string NULL: the graph's inputs and outputs must be named. */
static dlcl_status check_io_names(const imp *m)
{
    for (size_t i = 0; i < m->g->n_input; i++)
        if (m->g->input[i]->name == NULL)
            return dlcl__err(DLCL_ERR_DATA, "%s: graph input %zu has no name", m->path, i);
    for (size_t i = 0; i < m->g->n_output; i++)
        if (m->g->output[i]->name == NULL)
            return dlcl__err(DLCL_ERR_DATA, "%s: graph output %zu has no name", m->path, i);
    return DLCL_OK;
}

static dlcl_status import_graph(imp *m, Onnx__ModelProto *mp)
{
    dlcl_status st = check_opset(m, mp);
    if (st != DLCL_OK) return st;
    if (mp->graph == NULL) return dlcl__err(DLCL_ERR_DATA, "%s: the model has no graph", m->path);
    m->g = mp->graph;
    if ((st = check_io_names(m)) != DLCL_OK) return st;
    for (size_t i = 0; i < m->g->n_initializer; i++) {
        Onnx__TensorProto *t = m->g->initializer[i];
        if (t->name == NULL || t->name[0] == '\0') return dlcl__err(DLCL_ERR_DATA, "%s: initializer %zu has no name", m->path, i);
        oval *v = ox_new_val(m, t->name);
        if (v == NULL) return ox_oom();
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
    const oval *out = ox_find_val(m, m->g->output[0]->name);
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
    if (path == NULL) return ox_oom();
    imp m = {.path = path, .c = c};
    uint8_t *data = NULL;
    size_t len = 0;
    Onnx__ModelProto *mp = NULL;
    dlcl_status st = read_file(path, &data, &len);
    if (st == DLCL_OK && (mp = onnx__model_proto__unpack(NULL, len, data)) == NULL)
        st = dlcl__err(DLCL_ERR_DATA, "%s: not an ONNX model (the protobuf does not parse: truncated or another kind "
                       "of file)", path);
    if (st == DLCL_OK && (m.w = calloc(1, sizeof *m.w)) == NULL) st = ox_oom();
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
    dlcl_status st = (out->path = strdup(path)) ? DLCL_OK : ox_oom();
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
        if (p->region == LAYER_PARAM) {
            st = net_params_io(net, true, p->off, x->data, x->n, "clEnqueueWriteBuffer (ONNX weights)");
        } else {
            cl_int err = clEnqueueWriteBuffer(net->ctx->queue, net->buffers, CL_TRUE, p->off * sizeof(float),
                                              x->n * sizeof(float), x->data, 0, NULL, NULL);
            if (err != CL_SUCCESS) st = dlcl__cl_err(err, "clEnqueueWriteBuffer (ONNX weights)");
        }
    }
    onnx_weights_free(w);
    net->cfg.model = NULL;
    return st;
}
