/* The net's graph: layer sections to nodes, input= names to edges, a topological order,
 * shapes, aliases, readers, region offsets and the plan for summing gradients. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

static const char *const reserved[] = {"net", "optimizer", "data", "vars", NULL};

static bool is_reserved(const char *name)
{
    for (int i = 0; reserved[i]; i++)
        if (strcmp(reserved[i], name) == 0) return true;
    return false;
}

static dlcl_status oom(void) { return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory"); }

/* The line of key in section s (the header's when absent). */
static int key_line(const cfg *c, const char *section, const char *key, int fallback)
{
    const cfg_entry *e = cfg_find(cfg_find_section(c, section), key);
    return e && e->line > 0 ? e->line : fallback;
}

/* Splits "a, b ,c" into trimmed names. */
static dlcl_status split_names(const char *v, char ***out, int *n)
{
    int cap = 1;
    for (const char *p = v; *p; p++) cap += *p == ',';
    char **names = calloc((size_t)cap, sizeof *names);
    if (names == NULL) return oom();
    *out = names;
    *n = 0;
    for (const char *p = v;;) {
        while (*p == ' ' || *p == '\t') p++;
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        if ((names[(*n)++] = strndup(p, len)) == NULL) return oom();
        if (e == NULL) break;
        p = e + 1;
    }
    return DLCL_OK;
}

static dlcl_status unknown_type(const cfg *c, const cfg_section *s, const char *type)
{
    char where[64], types[256] = "";
    const char *sug = cfg_suggest(type, layer_type_names);
    for (const char *const *t = layer_type_names; *t; t++)
        snprintf(types + strlen(types), sizeof types - strlen(types), "%s%s", t == layer_type_names ? "" : ", ", *t);
    return dlcl__err(DLCL_ERR_CONFIG, "%s: [%s] type = '%s': unknown layer type (%s%s%sone of: %s)",
                     cfg_where(c, key_line(c, s->name, "type", s->line), where, sizeof where), s->name, type,
                     sug ? "did you mean '" : "", sug ? sug : "", sug ? "'? " : "", types);
}

/* One layer from its section: type, keys, input names (none: the section above). */
static dlcl_status parse_layer(dlcl_net *net, const cfg_section *s, const char *above)
{
    const cfg *c = &net->cfg;
    layer *l = &net->layers[net->n_layers];
    char where[64];
    l->name = s->name;
    l->line = s->line;
    const char *type, *input;
    dlcl_status st = cfg_get_str(c, s, "type", 1, NULL, &type);
    if (st != DLCL_OK) return st;
    if (strcmp(s->name, "input") == 0)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: a layer may not be named [input]: input= uses that name for the net's input",
                         cfg_where(c, s->line, where, sizeof where));
    if ((l->type = layer_type_find(type)) == NULL) return unknown_type(c, s, type);
    net->n_layers++; /* counted before parse so that dlcl_net_free releases its priv */
    /* unknown keys first: a typo should read "did you mean", not "missing key" */
    const char *known[40];
    size_t k = 0;
    known[k++] = "type";
    known[k++] = "input";
    for (const char *const *p = l->type->keys; *p && k < DLCL__ARRAY_LEN(known) - 1; p++) known[k++] = *p;
    known[k] = NULL;
    if ((st = cfg_check_unused(c, s, known)) != DLCL_OK) return st;
    if ((st = cfg_get_str(c, s, "input", 0, "", &input)) != DLCL_OK) return st;
    if (input[0] != '\0') {
        if ((st = split_names(input, &l->in_names, &l->n_in)) != DLCL_OK) return st;
    } else {
        if ((l->in_names = calloc(1, sizeof *l->in_names)) == NULL || (l->in_names[0] = strdup(above)) == NULL)
            return oom();
        l->n_in = 1;
    }
    int line = key_line(c, s->name, "input", s->line);
    for (int i = 0; i < l->n_in; i++)
        if (l->in_names[i][0] == '\0')
            return dlcl__err(DLCL_ERR_CONFIG, "%s: [%s] input = '%s': an empty name", cfg_where(c, line, where, sizeof where),
                             s->name, input);
    if (l->n_in < l->type->min_inputs || l->n_in > l->type->max_inputs) {
        if (l->type->min_inputs == l->type->max_inputs)
            return dlcl__err(DLCL_ERR_CONFIG, "%s: [%s] (%s) reads %d input%s, not %d", cfg_where(c, line, where, sizeof where),
                             s->name, type, l->type->min_inputs, l->type->min_inputs == 1 ? "" : "s", l->n_in);
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [%s] (%s) reads %d to %d inputs (input = a, b, ...), not %d",
                         cfg_where(c, line, where, sizeof where), s->name, type, l->type->min_inputs,
                         l->type->max_inputs, l->n_in);
    }
    if ((l->in_node = calloc((size_t)l->n_in, sizeof *l->in_node)) == NULL ||
        (l->in = calloc((size_t)l->n_in, sizeof *l->in)) == NULL)
        return oom();
    return l->type->parse(l, c, s);
}

static dlcl_status parse_layers(dlcl_net *net)
{
    const cfg *c = &net->cfg;
    size_t n = 0;
    for (size_t i = 0; i < c->count; i++) n += !is_reserved(c->sections[i].name);
    if (n == 0) return dlcl__err(DLCL_ERR_CONFIG, "%s: no layer sections (add e.g. [fc1] type=dense units=10)", c->path);
    if ((net->layers = calloc(n, sizeof *net->layers)) == NULL) return oom();
    const char *above = "input";
    for (size_t i = 0; i < c->count; i++) {
        const cfg_section *s = &c->sections[i];
        if (is_reserved(s->name)) continue;
        dlcl_status st = parse_layer(net, s, above);
        if (st != DLCL_OK) return st;
        above = s->name;
    }
    return DLCL_OK;
}

static int find_layer(const dlcl_net *net, const char *name)
{
    for (size_t j = 0; j < net->n_layers; j++)
        if (strcmp(net->layers[j].name, name) == 0) return (int)j;
    return -2;
}

static dlcl_status resolve_names(dlcl_net *net)
{
    const cfg *c = &net->cfg;
    const char **names = malloc((net->n_layers + 2) * sizeof *names);
    if (names == NULL) return oom();
    for (size_t j = 0; j < net->n_layers; j++) names[j] = net->layers[j].name;
    names[net->n_layers] = "input";
    names[net->n_layers + 1] = NULL;
    dlcl_status st = DLCL_OK;
    for (size_t i = 0; i < net->n_layers && st == DLCL_OK; i++) {
        layer *l = &net->layers[i];
        for (int k = 0; k < l->n_in && st == DLCL_OK; k++) {
            const char *nm = l->in_names[k];
            l->in_node[k] = strcmp(nm, "input") == 0 ? -1 : find_layer(net, nm);
            if (l->in_node[k] == (int)i) {
                char where[64];
                st = dlcl__err(DLCL_ERR_CONFIG, "%s: [%s] reads its own output (input = %s)",
                               cfg_where(c, key_line(c, l->name, "input", l->line), where, sizeof where), l->name, nm);
            } else if (l->in_node[k] == -2) {
                char where[64];
                const char *sug = cfg_suggest(nm, names);
                st = dlcl__err(DLCL_ERR_CONFIG, "%s: [%s] input = '%s': no layer of that name%s%s%s",
                               cfg_where(c, key_line(c, l->name, "input", l->line), where, sizeof where), l->name, nm,
                               sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
            }
        }
    }
    free(names);
    return st;
}

/* A cycle among the nodes not yet placed: follows inputs from one of them until a node
 * repeats (every unplaced node has an unplaced input), and names the loop in data-flow order. */
static dlcl_status cycle_error(const dlcl_net *net, const bool *placed)
{
    size_t n = net->n_layers, at = 0, len = 0;
    while (at < n && placed[at]) at++;
    if (at == n) return dlcl__err(DLCL_ERR_CONFIG, "%s: input= forms a cycle", net->cfg.path); /* not reached */
    int *seen = malloc(n * sizeof *seen);
    size_t *path = malloc(n * sizeof *path);
    if (seen == NULL || path == NULL) {
        free(seen);
        free(path);
        return oom();
    }
    for (size_t i = 0; i < n; i++) seen[i] = -1;
    do { /* at is unplaced and unseen on entry */
        seen[at] = (int)len;
        path[len++] = at;
        const layer *l = &net->layers[at];
        for (int k = 0; k < l->n_in; k++)
            if (l->in_node[k] >= 0 && !placed[l->in_node[k]]) {
                at = (size_t)l->in_node[k];
                break;
            }
    } while (seen[at] < 0);
    /* path[j + 1] is an input of path[j], and path[start] one of path[len - 1]: in data-flow
     * order the loop is path[len - 1], ..., path[start]; print it from its earliest section */
    size_t start = (size_t)seen[at], m = len - start, first = 0, w = 0; /* m >= 1: path[start] exists */
    for (size_t j = 0; j < m; j++)
        if (path[len - 1 - j] < path[len - 1 - first]) first = j;
    char loop[512], where[64];
    for (size_t j = 0; j <= m && w < sizeof loop; j++)
        w += (size_t)snprintf(loop + w, sizeof loop - w, j < m ? "[%s] -> " : "[%s]",
                              net->layers[path[len - 1 - (first + j) % m]].name);
    const layer *first_layer = &net->layers[path[len - 1 - first]];
    free(seen);
    free(path);
    return dlcl__err(DLCL_ERR_CONFIG, "%s: input= forms a cycle: %s (a layer without input= reads the section above it)",
                     cfg_where(&net->cfg, first_layer->line, where, sizeof where), loop);
}

/* Kahn's algorithm, always taking the earliest section that is ready: a file already in
 * data-flow order keeps its order. */
static dlcl_status sort_topologically(dlcl_net *net)
{
    size_t n = net->n_layers;
    bool *placed = calloc(n, sizeof *placed);
    size_t *order = malloc(n * sizeof *order), *pos = malloc(n * sizeof *pos);
    layer *sorted = malloc(n * sizeof *sorted);
    dlcl_status st = DLCL_OK;
    if (!placed || !order || !pos || !sorted) st = oom();
    for (size_t o = 0; st == DLCL_OK && o < n; o++) {
        size_t pick = n;
        for (size_t i = 0; i < n && pick == n; i++) {
            if (placed[i]) continue;
            bool ready = true;
            for (int k = 0; k < net->layers[i].n_in && ready; k++)
                ready = net->layers[i].in_node[k] < 0 || placed[net->layers[i].in_node[k]];
            if (ready) pick = i;
        }
        if (pick == n) {
            st = cycle_error(net, placed);
            break;
        }
        placed[pick] = true;
        order[o] = pick;
        pos[pick] = o;
    }
    if (st == DLCL_OK) {
        for (size_t o = 0; o < n; o++) sorted[o] = net->layers[order[o]];
        for (size_t o = 0; o < n; o++)
            for (int k = 0; k < sorted[o].n_in; k++)
                if (sorted[o].in_node[k] >= 0) sorted[o].in_node[k] = (int)pos[sorted[o].in_node[k]];
        memcpy(net->layers, sorted, n * sizeof *sorted);
    }
    free(placed);
    free(order);
    free(pos);
    free(sorted);
    return st;
}

/* The net's input holds int32 token ids when a layer that reads tokens (an embedding) reads
 * it; then every reader of the input must read tokens, and the input is T positions. */
static dlcl_status input_dtype(dlcl_net *net)
{
    const cfg *c = &net->cfg;
    char where[64];
    const layer *tok = NULL, *flt = NULL;
    for (size_t i = 0; i < net->n_layers; i++) {
        const layer *l = &net->layers[i];
        for (int k = 0; k < l->n_in; k++) {
            if (l->in_node[k] >= 0) continue;
            if (k == 0 && (l->type->flags & LAYER_TOKEN_INPUT)) {
                if (tok == NULL) tok = l;
            } else if (flt == NULL) {
                flt = l;
            }
        }
    }
    if (tok == NULL) return DLCL_OK;
    if (flt != NULL)
        return dlcl__err(DLCL_ERR_SHAPE, "%s: [%s] (%s) reads the net's input as float32 values, but [%s] (%s) reads it "
                         "as int32 token ids; the other readers of a token input must read its embedding",
                         cfg_where(c, flt->line, where, sizeof where), flt->name, flt->type->name, tok->name,
                         tok->type->name);
    if (net->input.ndim != 1)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [net] input: [%s] (%s) reads token ids, so the input is one size, the "
                         "context length T (input = 1024), not %d values", cfg_where(c, key_line(c, "net", "input", 0),
                         where, sizeof where), tok->name, tok->type->name, net->input.ndim);
    net->input.dtype = DLCL_INT32;
    return DLCL_OK;
}

static dlcl_status infer_shapes(dlcl_net *net)
{
    const cfg *c = &net->cfg;
    char where[64];
    dlcl_status st0 = input_dtype(net);
    if (st0 != DLCL_OK) return st0;
    for (size_t i = 0; i < net->n_layers; i++) {
        layer *l = &net->layers[i];
        for (int k = 0; k < l->n_in; k++) {
            l->in[k] = l->in_node[k] < 0 ? net->input : net->layers[l->in_node[k]].out;
            int wants_int = k == 0 && (l->type->flags & LAYER_TOKEN_INPUT);
            if (l->in[k].dtype != (wants_int ? DLCL_INT32 : DLCL_FLOAT32))
                return dlcl__err(DLCL_ERR_SHAPE, "%s: [%s] (%s) reads %s, but [%s] holds %s",
                                 cfg_where(c, l->line, where, sizeof where), l->name, l->type->name,
                                 wants_int ? "int32 token ids" : "float32 values", l->in_names[k],
                                 wants_int ? "float32 values" : "int32 token ids");
        }
        dlcl_status st = l->type->shape(l);
        if (st == DLCL_OK && (l->out.ndim < 1 || l->out.ndim > LAYER_MAX_DIMS))
            st = dlcl__err(DLCL_ERR_SHAPE, "layer [%s]: an output of %d dimensions", l->name, l->out.ndim);
        for (int d = 0; st == DLCL_OK && d < l->out.ndim; d++)
            if (l->out.dims[d] < 1) {
                char s[64];
                st = dlcl__err(DLCL_ERR_SHAPE, "layer [%s]: output shape %s is empty", l->name,
                               layer_shape_str(l->out, s, sizeof s));
            }
        if (st == DLCL_OK && layer_shape_numel(l->out) > (size_t)INT32_MAX)
            st = dlcl__err(DLCL_ERR_SHAPE, "layer [%s]: %zu values per sample is more than the kernels index",
                           l->name, layer_shape_numel(l->out));
        if (st != DLCL_OK) return dlcl__err_prefix(st, "%s", cfg_where(c, l->line, where, sizeof where));
    }
    net->vocab = INT32_MAX; /* a token input: ids below the smallest vocabulary of its readers */
    for (size_t i = 0; i < net->n_layers; i++) {
        const layer *l = &net->layers[i];
        if (l->in_node[0] < 0 && (l->type->flags & LAYER_TOKEN_INPUT) && l->token_limit > 0 && l->token_limit < net->vocab)
            net->vocab = l->token_limit;
    }
    if (net->vocab == INT32_MAX) net->vocab = net->classes;
    return DLCL_OK;
}

/* The loss reads [net] output (default: the last layer of the file); every other layer's
 * output must be read by some layer, so each one reaches the loss. */
static dlcl_status check_output(dlcl_net *net, const int *file_last)
{
    const cfg *c = &net->cfg;
    char where[64];
    size_t n = net->n_layers;
    int out = *file_last;
    if (net->output_name != NULL) {
        out = find_layer(net, net->output_name);
        if (out < 0)
            return dlcl__err(DLCL_ERR_CONFIG, "%s: [net] output = '%s': no layer of that name",
                             cfg_where(c, key_line(c, "net", "output", 0), where, sizeof where), net->output_name);
    }
    net->output_name = net->layers[out].name;
    int *uses = calloc(n, sizeof *uses);
    if (uses == NULL) return oom();
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < net->layers[i].n_in; k++)
            if (net->layers[i].in_node[k] >= 0) uses[net->layers[i].in_node[k]]++;
    dlcl_status st = DLCL_OK;
    for (size_t i = 0; i < n && st == DLCL_OK; i++)
        if (uses[i] == 0 && (int)i != out)
            st = dlcl__err(DLCL_ERR_CONFIG, "%s: the output of [%s] is never read: only the loss's input, [%s] (%s), "
                           "may be unread", cfg_where(c, net->layers[i].line, where, sizeof where),
                           net->layers[i].name, net->output_name,
                           net->output_name == net->layers[*file_last].name && cfg_find(cfg_find_section(c, "net"), "output") == NULL
                               ? "the last section; [net] output = NAME names another"
                               : "[net] output");
    free(uses);
    if (st != DLCL_OK) return st;
    const layer *lo = &net->layers[out];
    /* a sequence output (T, classes) has a label per position; anything else one per sample */
    int seq = lo->out.ndim == 2 && lo->out.dims[1] == net->classes;
    net->label_len = seq ? lo->out.dims[0] : 1;
    if (!seq && layer_shape_numel(lo->out) != (size_t)net->classes) {
        char s[64];
        return dlcl__err(DLCL_ERR_SHAPE, "%s: the loss reads [%s], which outputs %s = %zu values per sample, but [net] "
                         "classes = %d (a sequence output is T x classes)",
                         cfg_where(c, lo->line, where, sizeof where), lo->name, layer_shape_str(lo->out, s, sizeof s),
                         layer_shape_numel(lo->out), net->classes);
    }
    if (seq && net->input.dtype == DLCL_INT32 && net->label_len != net->input.dims[0])
        return dlcl__err(DLCL_ERR_SHAPE, "%s: the loss reads [%s], %d positions, but the input has %d: each position "
                         "predicts the next token of the input", cfg_where(c, lo->line, where, sizeof where), lo->name,
                         net->label_len, net->input.dims[0]);
    net->output = out;
    return DLCL_OK;
}

/* Aliases (identity, flatten) run nothing: a reader of one reads its source's buffer. */
static dlcl_status resolve_aliases(dlcl_net *net)
{
    size_t n = net->n_layers;
    if ((net->source = malloc(n * sizeof *net->source)) == NULL || (net->readers = calloc(n, sizeof *net->readers)) == NULL)
        return oom();
    for (size_t i = 0; i < n; i++) {
        const layer *l = &net->layers[i];
        int s = l->in_node[0];
        net->source[i] = (l->type->flags & LAYER_ALIAS) ? (s < 0 ? -1 : net->source[s]) : (int)i;
    }
    for (size_t i = 0; i < n; i++) {
        if (net_is_alias(net, i)) continue;
        const layer *l = &net->layers[i];
        for (int k = 0; k < l->n_in; k++)
            if (l->in_node[k] >= 0 && net->source[l->in_node[k]] >= 0) net->readers[net->source[l->in_node[k]]]++;
    }
    net->output = net->source[net->output] >= 0 ? net->source[net->output] : net->output;
    if (net->source[net->output] < 0)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [net] output = [%s] is the net's input itself", net->cfg.path,
                         net->output_name);
    return DLCL_OK;
}

/* Which nodes need the gradient of their output: those with trainable parameters at or
 * above them. A layer whose inputs need none gets dx = NULL (the first conv of a net). */
static dlcl_status plan_gradients(dlcl_net *net)
{
    size_t n = net->n_layers;
    bool *needs = net->needs_grad = calloc(n, sizeof *needs), *written = calloc(n, sizeof *written);
    net->grad_mode = calloc(n, sizeof *net->grad_mode);
    net->grad_tmp = calloc(n, sizeof *net->grad_tmp);
    if (!needs || !written || !net->grad_mode || !net->grad_tmp) {
        free(written);
        return oom();
    }
    for (size_t i = 0; i < n; i++) {
        const layer *l = &net->layers[i];
        needs[i] = false; /* trainable tensors of its own, or tied to another's */
        for (int p = 0; p < l->n_params; p++) needs[i] = needs[i] || l->params[p].region == LAYER_PARAM;
        for (int k = 0; k < l->n_in; k++)
            if (l->in_node[k] >= 0) needs[i] = needs[i] || needs[l->in_node[k]];
    }
    written[net->output] = true; /* the loss writes first */
    dlcl_status st = DLCL_OK;
    for (size_t i = n; i-- > 0 && st == DLCL_OK;) {
        layer *l = &net->layers[i];
        if ((net->grad_mode[i] = calloc((size_t)l->n_in, sizeof **net->grad_mode)) == NULL ||
            (net->grad_tmp[i] = calloc((size_t)l->n_in, sizeof **net->grad_tmp)) == NULL) {
            st = oom();
            break;
        }
        if (net_is_alias(net, i)) continue;
        int tmp = 0;
        for (int k = 0; k < l->n_in; k++) {
            int s = l->in_node[k] < 0 ? -1 : net->source[l->in_node[k]];
            if (s < 0 || !needs[s]) {
                net->grad_mode[i][k] = NET_GRAD_NONE;
            } else if (!written[s]) {
                net->grad_mode[i][k] = NET_GRAD_WRITE;
                written[s] = true;
            } else {
                net->grad_mode[i][k] = NET_GRAD_ADD;
                net->grad_tmp[i][k] = tmp++;
            }
            if (net->grad_mode[i][k] != NET_GRAD_NONE) l->needs_dx = 1;
        }
        if ((size_t)tmp > net->n_tmp) net->n_tmp = (size_t)tmp;
    }
    free(written);
    return st;
}

/* Offsets in the regions: decayed parameters first, then those [optimizer] no_decay exempts
 * (so that each range is one optimizer launch), buffers and counters in layer order. In an
 * optimised or fp16 inference net the conv and dense weights come last, after n_params_dev:
 * the device holds only their folded or binary16 copies (net_param_host_only). */
static void assign_offsets(dlcl_net *net)
{
    size_t off[LAYER_REGION_COUNT] = {0};
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 2) net->n_params_dev = off[LAYER_PARAM];
        for (size_t i = 0; i < net->n_layers; i++) {
            layer *l = &net->layers[i];
            for (int p = 0; p < l->n_params; p++) {
                layer_param *lp = &l->params[p];
                bool decay = !net_param_no_decay(net, l, lp), last = net_param_host_only(net, l, p);
                if (lp->tie) continue; /* tie_tensors points it at the other's */
                if (lp->region == LAYER_PARAM && (last ? pass == 2 : pass < 2 && decay == (pass == 0))) {
                    lp->off = off[LAYER_PARAM];
                    off[LAYER_PARAM] += lp->numel;
                } else if (lp->region != LAYER_PARAM && pass == 0) {
                    lp->off = off[lp->region];
                    off[lp->region] += lp->numel;
                }
            }
            if (pass == 0) net->n_decay = off[LAYER_PARAM];
        }
    }
    net->n_params = off[LAYER_PARAM];
    net->n_buffers = off[LAYER_BUFFER];
    net->n_counters = off[LAYER_COUNTER];
}

/* Weight tying: a tensor with tie = NAME shares the storage of layer NAME's tensor of the
 * same suffix, which must have its shape. Of the layers that share one tensor, the last in
 * topological order runs its backward first and writes the gradient; the others add to it. */
static dlcl_status tie_tensors(dlcl_net *net)
{
    const cfg *c = &net->cfg;
    char where[64], a[64], b[64];
    for (size_t i = 0; i < net->n_layers; i++) {
        layer *l = &net->layers[i];
        for (int p = 0; p < l->n_params; p++) {
            layer_param *lp = &l->params[p];
            if (lp->tie == NULL) continue;
            int line = key_line(c, l->name, "tie", l->line);
            int j = find_layer(net, lp->tie);
            layer *src = j < 0 ? NULL : &net->layers[j];
            int q = -1;
            for (int k = 0; src && k < src->n_params; k++)
                if (strcmp(src->params[k].suffix, lp->suffix) == 0 && src->params[k].tie == NULL) q = k;
            if (src == NULL || src == l || q < 0 || src->params[q].region != LAYER_PARAM)
                return dlcl__err(DLCL_ERR_CONFIG, "%s: [%s] tie = %s: %s", cfg_where(c, line, where, sizeof where), l->name,
                                 lp->tie, src == NULL ? "no layer of that name" : src == l ? "a layer cannot tie to itself"
                                 : "that layer has no trainable tensor of the same name to share");
            layer_param *sp = &src->params[q];
            layer_shape ls = {lp->ndim, {0}, DLCL_FLOAT32}, ss = {sp->ndim, {0}, DLCL_FLOAT32};
            for (int d = 0; d < lp->ndim && d < LAYER_MAX_DIMS; d++) ls.dims[d] = (int)lp->dims[d];
            for (int d = 0; d < sp->ndim && d < LAYER_MAX_DIMS; d++) ss.dims[d] = (int)sp->dims[d];
            if (!layer_shape_equal(ls, ss))
                return dlcl__err(DLCL_ERR_SHAPE, "%s: [%s] tie = %s: its %s is %s, but [%s].%s is %s",
                                 cfg_where(c, line, where, sizeof where), l->name, lp->tie, lp->suffix,
                                 layer_shape_str(ls, a, sizeof a), src->name, sp->suffix, layer_shape_str(ss, b, sizeof b));
            lp->off = sp->off;
            /* the later layer's backward runs first: it writes, the earlier one adds */
            if ((size_t)j < i) src->accumulate |= 1u << q;
            else l->accumulate |= 1u << p;
        }
    }
    return DLCL_OK;
}

dlcl_status net_build_graph(dlcl_net *net)
{
    dlcl_status st = parse_layers(net);
    if (st == DLCL_OK) st = resolve_names(net);
    if (st != DLCL_OK) return st;
    /* the default output: the last layer section of the file, before sorting moves it */
    int file_last = (int)net->n_layers - 1;
    const char *last_name = net->layers[file_last].name;
    if ((st = sort_topologically(net)) != DLCL_OK) return st;
    file_last = find_layer(net, last_name);
    if ((st = infer_shapes(net)) != DLCL_OK) return st;
    if ((st = check_output(net, &file_last)) != DLCL_OK) return st;
    if ((st = resolve_aliases(net)) != DLCL_OK) return st;
    assign_offsets(net);
    if ((st = tie_tensors(net)) != DLCL_OK) return st;
    return plan_gradients(net);
}
