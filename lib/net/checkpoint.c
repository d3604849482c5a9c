/* Checkpoints. The weights file is a PyTorch state_dict as safetensors: every tensor of the
 * net under <layer>.<suffix> (trainable parameters, then buffers such as batch norm's
 * running statistics), so it loads into torch with a strict load_state_dict, and a
 * state_dict saved by torch loads here. "<path>.state" beside it holds everything a resume
 * needs in one file: the same tensors again ("param." names), the optimizer state
 * ("state.<layer>.<suffix>.<name>", PyTorch's state names: momentum_buffer, exp_avg, ...) and
 * the position (epoch, batch, step, seed, the epoch's running sums) in its metadata.
 * st_write writes each file atomically (temporary file, fsync, rename), and the state file
 * goes first: whenever the process dies, the state file is a whole, consistent snapshot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../io/safetensors.h"
#include "net.h"

#define STATE_SUFFIX ".state"
#define ACC_NAME "accum.grad" /* the gradients summed so far in an accumulated step */
#define NAME_CAP 192

/* PyTorch's name of optimizer state slot k ("momentum_buffer", "exp_avg", ...). */
static const char *state_name(const dlcl_net *net, int slot) { return net->optim.type->state_names[slot]; }

/* Host copies of the regions, in the layout of the device ones. */
typedef struct host_regions {
    float *params, *buffers, *state;
    int64_t *counters; /* LAYER_COUNTER values, copied from or to net->counters */
} host_regions;

static void host_free(host_regions *h)
{
    free(h->params);
    free(h->buffers);
    free(h->state);
    free(h->counters);
}

static dlcl_status host_alloc(const dlcl_net *net, host_regions *h, bool state)
{
    *h = (host_regions){0};
    h->params = malloc((net->n_params ? net->n_params : 1) * sizeof(float));
    h->buffers = malloc((net->n_buffers ? net->n_buffers : 1) * sizeof(float));
    if (state) h->state = malloc((net->n_params ? net->n_params * (size_t)net->n_state : 1) * sizeof(float));
    h->counters = malloc((net->n_counters ? net->n_counters : 1) * sizeof *h->counters);
    if (h->counters) memcpy(h->counters, net->counters, net->n_counters * sizeof *h->counters);
    if (h->params && h->buffers && h->counters && (!state || h->state)) return DLCL_OK;
    host_free(h);
    return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory for a checkpoint");
}

static dlcl_status transfer(dlcl_net *net, bool write, cl_mem m, float *h, size_t floats, const char *what)
{
    if (floats == 0) return DLCL_OK;
    cl_int err = write ? clEnqueueWriteBuffer(net->ctx->queue, m, CL_TRUE, 0, floats * sizeof(float), h, 0, NULL, NULL)
                       : clEnqueueReadBuffer(net->ctx->queue, m, CL_TRUE, 0, floats * sizeof(float), h, 0, NULL, NULL);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, what);
}

/* Tensor p as a safetensors entry pointing into the host copies: float32 for the parameters
 * and buffers, int64 for the counters. */
static void point_into(st_tensor *t, const host_regions *h, const layer_param *p)
{
    if (p->region == LAYER_COUNTER) {
        t->dtype = ST_I64;
        t->i64 = h->counters + p->off;
    } else {
        t->dtype = ST_F32;
        t->data = p->region == LAYER_PARAM ? h->params + p->off : h->buffers + p->off;
    }
}

static size_t count_tensors(const dlcl_net *net)
{
    size_t n = 0;
    for (size_t i = 0; i < net->n_layers; i++)
        for (int p = 0; p < net->layers[i].n_params; p++) n += net->layers[i].params[p].tie == NULL;
    return n;
}

static void tensor_name(char *out, const char *prefix, const layer *l, const layer_param *p, const char *suffix)
{
    snprintf(out, NAME_CAP, "%s%s.%s%s%s", prefix, l->name, p->suffix, suffix ? "." : "", suffix ? suffix : "");
}

/* Lists every tensor of the net under prefix (and, with state, the optimizer state of each
 * trainable one after them), pointing into h. Returns the count written. */
static size_t list_tensors(const dlcl_net *net, const host_regions *h, const char *prefix, bool state,
                           st_tensor *tensors, char (*names)[NAME_CAP])
{
    size_t t = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        const layer *l = &net->layers[i];
        for (int p = 0; p < l->n_params; p++) {
            const layer_param *lp = &l->params[p];
            if (lp->tie) continue; /* saved under the name of the tensor it is */
            tensor_name(names[t], prefix, l, lp, NULL);
            tensors[t] = (st_tensor){.name = names[t], .ndim = lp->ndim};
            point_into(&tensors[t], h, lp);
            memcpy(tensors[t].dims, lp->dims, sizeof lp->dims);
            t++;
        }
    }
    for (int k = 0; state && k < net->n_state; k++)
        for (size_t i = 0; i < net->n_layers; i++) {
            const layer *l = &net->layers[i];
            for (int p = 0; p < l->n_params; p++) {
                const layer_param *lp = &l->params[p];
                if (lp->region != LAYER_PARAM || lp->tie) continue;
                tensor_name(names[t], "state.", l, lp, state_name(net, k));
                tensors[t] = (st_tensor){.name = names[t], .ndim = lp->ndim,
                                         .data = h->state + (size_t)k * net->n_params + lp->off};
                memcpy(tensors[t].dims, lp->dims, sizeof lp->dims);
                t++;
            }
        }
    return t;
}

dlcl_status dlcl_net_save(dlcl_net *net, const char *path, int epochs_done)
{
    dlcl_train_progress p = {epochs_done, 0, 0.0, 0, 0};
    return dlcl_net_save_progress(net, path, &p);
}

dlcl_status dlcl_net_save_progress(dlcl_net *net, const char *path, const dlcl_train_progress *pr)
{
    if (net == NULL || path == NULL || pr == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_save_progress: net, path and progress must not be NULL");
    dlcl_status st = net_require_training(net, "dlcl_net_save");
    if (st != DLCL_OK) return st;
    size_t nt = count_tensors(net), cap = nt * (1 + (size_t)net->n_state) + 1, plen = strlen(path);
    host_regions h;
    float *acc = NULL;
    if ((st = host_alloc(net, &h, true)) != DLCL_OK) return st;
    st_tensor *tensors = calloc(cap, sizeof *tensors);
    char (*names)[NAME_CAP] = calloc(cap, sizeof *names);
    char *state_path = malloc(plen + sizeof STATE_SUFFIX);
    if (!tensors || !names || !state_path) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    snprintf(state_path, plen + sizeof STATE_SUFFIX, "%s%s", path, STATE_SUFFIX);
    char epochs[32], batches[32], step[32], seed[32], loss[48], correct[32], images[32], micro[32];
    snprintf(epochs, sizeof epochs, "%d", pr->epochs_done);
    snprintf(batches, sizeof batches, "%lld", (long long)pr->batches_done);
    snprintf(step, sizeof step, "%llu", (unsigned long long)net->step);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)net->seed);
    snprintf(loss, sizeof loss, "%.17g", pr->loss_sum); /* round-trips exactly */
    snprintf(correct, sizeof correct, "%lld", (long long)pr->correct);
    snprintf(images, sizeof images, "%lld", (long long)pr->images);
    snprintf(micro, sizeof micro, "%d", net->micro);
    const char *keys[] = {"format", "producer", "epochs_done", "step", "seed",
                          "batches_done", "loss_sum", "correct", "images", "micro"};
    const char *vals[] = {"pt", "dlcl " DLCL_VERSION_STRING, epochs, step, seed, batches, loss, correct, images, micro};
    if ((st = net_params_io(net, false, 0, h.params, net->n_params, "clEnqueueReadBuffer (checkpoint)")) != DLCL_OK ||
        (st = transfer(net, false, net->buffers, h.buffers, net->n_buffers, "clEnqueueReadBuffer (checkpoint)")) !=
            DLCL_OK ||
        (st = transfer(net, false, net->state, h.state, net->n_params * (size_t)net->n_state,
                       "clEnqueueReadBuffer (checkpoint)")) != DLCL_OK)
        goto done;
    /* the state file: every tensor and the optimizer state, one atomic write; in the middle of
     * an accumulated step, the gradients summed so far too */
    size_t n = list_tensors(net, &h, "param.", true, tensors, names);
    if (net->micro > 0) {
        if ((acc = malloc(net->n_params * sizeof *acc)) == NULL) {
            st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
            goto done;
        }
        if ((st = transfer(net, false, net->gacc, acc, net->n_params, "clEnqueueReadBuffer (checkpoint)")) != DLCL_OK)
            goto done;
        tensors[n++] = (st_tensor){.name = ACC_NAME, .ndim = 1, .dims = {(int64_t)net->n_params}, .data = acc};
    }
    if ((st = st_write(state_path, tensors, n, keys, vals, DLCL__ARRAY_LEN(keys))) != DLCL_OK) goto done;
    /* the weights for users (and PyTorch), from the same host copy */
    n = list_tensors(net, &h, "", false, tensors, names);
    st = st_write(path, tensors, n, keys, vals, 5);
done:
    host_free(&h);
    free(acc);
    free(tensors);
    free(names);
    free(state_path);
    return st;
}

static const char *meta(const st_file *f, const char *key)
{
    for (size_t i = 0; i < f->meta_count; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

static dlcl_status shape_error(const char *path, const st_tensor *t, const layer_param *lp)
{
    char want[96] = "", got[96] = "";
    for (int d = 0; d < lp->ndim; d++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "," : "", (long long)lp->dims[d]);
    for (int d = 0; d < t->ndim && d < ST_MAX_DIMS; d++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "", (long long)t->dims[d]);
    return dlcl__err(DLCL_ERR_CHECKPOINT, "%s: tensor '%s' has shape [%s], the net needs [%s]", path, t->name, got, want);
}

/* How match treats a file's names. */
typedef struct match_opts {
    const char *alt_prefix; /* a missing tensor is looked up under this prefix too (old "momentum." names) */
    int weights;            /* the user's weights (prefix ""): Hugging Face's conventions apply, see below */
    int partial;            /* a missing tensor keeps its value and is listed in missing (cap bytes) */
    char *missing;
    size_t cap;
} match_opts;

/* Hugging Face's files name a model's tensors with a "transformer." prefix (GPT2LMHeadModel)
 * or without (GPT2Model), and carry the attention's causal masks (".attn.bias",
 * ".attn.masked_bias") as buffers: those are not parameters and are ignored. */
#define HF_PREFIX "transformer."
static bool hf_ignored(const char *name)
{
    size_t n = strlen(name);
    static const char *const masks[] = {".attn.bias", ".attn.masked_bias"};
    for (size_t i = 0; i < DLCL__ARRAY_LEN(masks); i++) {
        size_t m = strlen(masks[i]);
        if (n >= m && strcmp(name + n - m, masks[i]) == 0) return true;
    }
    return false;
}

/* A tied tensor's own name (lm_head.weight: the head that shares the token embedding) in a
 * file is the same data again, and is ignored. */
static bool is_tied_name(const dlcl_net *net, const char *name)
{
    char buf[NAME_CAP];
    for (size_t i = 0; i < net->n_layers; i++) {
        const layer *l = &net->layers[i];
        for (int p = 0; p < l->n_params; p++) {
            if (l->params[p].tie == NULL) continue;
            tensor_name(buf, "", l, &l->params[p], NULL);
            if (strcmp(buf, name) == 0 || (strncmp(name, HF_PREFIX, strlen(HF_PREFIX)) == 0 &&
                                           strcmp(buf, name + strlen(HF_PREFIX)) == 0))
                return true;
        }
    }
    return false;
}

static void list_missing(const match_opts *o, const char *name)
{
    size_t at = strlen(o->missing);
    if (at + 4 < o->cap) snprintf(o->missing + at, o->cap - at, "%s%s", at ? ", " : "", name);
}

/* Copies every tensor of the list (names from list_tensors) from f into the host copies;
 * each must be present with its shape (unless o->partial), and f may hold no other tensor
 * under the list's prefix. */
static dlcl_status match(const dlcl_net *net, const st_file *f, const char *path, const st_tensor *want, size_t n,
                         const char *prefix, const match_opts *o)
{
    size_t plen = strlen(prefix);
    char alt[NAME_CAP + 16];
    bool *used = calloc(f->count + 1, sizeof *used);
    if (used == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    dlcl_status st = DLCL_OK;
    for (size_t i = 0; i < n && st == DLCL_OK; i++) {
        const st_tensor *t = st_find(f, want[i].name);
        if (t == NULL && o->alt_prefix != NULL) { /* state.<name>.momentum_buffer was momentum.<name> */
            const char *base = want[i].name + plen, *dot = strrchr(base, '.');
            snprintf(alt, sizeof alt, "%s%.*s", o->alt_prefix, (int)(dot ? dot - base : (long)strlen(base)), base);
            t = st_find(f, alt);
        }
        if (t == NULL && o->weights) {
            snprintf(alt, sizeof alt, HF_PREFIX "%s", want[i].name);
            t = st_find(f, alt);
        }
        if (t == NULL) {
            if (o->partial) {
                list_missing(o, want[i].name);
                continue;
            }
            st = dlcl__err(DLCL_ERR_CHECKPOINT, "%s: tensor '%s' is missing", path, want[i].name);
            break;
        }
        used[t - f->tensors] = true;
        if (t->dtype != want[i].dtype) {
            st = dlcl__err(DLCL_ERR_CHECKPOINT, "%s: tensor '%s' is %s, the net needs %s", path, want[i].name,
                           st_dtype_names[t->dtype], want[i].dtype == ST_I64 ? "int64" : "float32");
            break;
        }
        bool same = t->ndim == want[i].ndim;
        for (int d = 0; same && d < t->ndim; d++) same = t->dims[d] == want[i].dims[d];
        if (!same) {
            layer_param lp = {.ndim = want[i].ndim};
            memcpy(lp.dims, want[i].dims, sizeof lp.dims);
            st = shape_error(path, t, &lp);
            break;
        }
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= (size_t)t->dims[d];
        if (t->dtype == ST_I64)
            memcpy(want[i].i64, t->i64, numel * sizeof *t->i64);
        else
            memcpy(want[i].data, t->data, numel * sizeof(float));
    }
    for (size_t i = 0; i < f->count && st == DLCL_OK; i++) {
        const char *name = f->tensors[i].name;
        if (used[i] || strncmp(name, prefix, plen) != 0) continue;
        if (o->alt_prefix && strncmp(name, o->alt_prefix, strlen(o->alt_prefix)) == 0) continue;
        if (o->weights && (hf_ignored(name) || is_tied_name(net, name))) continue;
        st = dlcl__err(DLCL_ERR_CHECKPOINT, "%s: tensor '%s' is not a parameter of this net", path, name);
    }
    free(used);
    return st;
}

/* What scatter loads from a file. */
enum { LOAD_TENSORS = 1, LOAD_STATE = 2, LOAD_PARTIAL = 4 };

/* Loads from f into the device regions: the tensors (names under prefix, "" or "param.")
 * and/or the optimizer state ("state.<tensor>.<name>"; old files' "momentum.<tensor>").
 * LOAD_PARTIAL: tensors the file lacks keep their values and are listed in missing. */
static dlcl_status scatter(dlcl_net *net, const st_file *f, const char *path, const char *prefix, int what,
                           char *missing, size_t cap)
{
    bool state = what & LOAD_STATE, tensors_too = what & LOAD_TENSORS;
    size_t nt = count_tensors(net), cap_t = nt * (1 + (size_t)net->n_state) + 1;
    host_regions h;
    dlcl_status st = host_alloc(net, &h, state);
    if (st != DLCL_OK) return st;
    st_tensor *tensors = calloc(cap_t, sizeof *tensors);
    char (*names)[NAME_CAP] = calloc(cap_t, sizeof *names);
    if (!tensors || !names) st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    if (st == DLCL_OK && (what & LOAD_PARTIAL)) { /* start from the values the file does not replace */
        st = net_params_io(net, false, 0, h.params, net->n_params, "clEnqueueReadBuffer (checkpoint)");
        if (st == DLCL_OK)
            st = transfer(net, false, net->buffers, h.buffers, net->n_buffers, "clEnqueueReadBuffer (checkpoint)");
        if (st == DLCL_OK) memcpy(h.counters, net->counters, net->n_counters * sizeof *net->counters);
    }
    size_t n = st == DLCL_OK ? list_tensors(net, &h, prefix, state, tensors, names) : 0;
    match_opts mo = {.weights = prefix[0] == '\0', .partial = (what & LOAD_PARTIAL) != 0, .missing = missing, .cap = cap};
    if (missing && cap) missing[0] = '\0';
    if (st == DLCL_OK && tensors_too) st = match(net, f, path, tensors, nt, prefix, &mo);
    match_opts so = {.alt_prefix = "momentum."};
    if (st == DLCL_OK && state) st = match(net, f, path, tensors + nt, n - nt, "state.", &so);
    if (st == DLCL_OK && tensors_too)
        st = net_params_io(net, true, 0, h.params, net->n_params, "clEnqueueWriteBuffer (checkpoint)");
    if (st == DLCL_OK && tensors_too)
        st = transfer(net, true, net->buffers, h.buffers, net->n_buffers, "clEnqueueWriteBuffer (checkpoint)");
    if (st == DLCL_OK && state)
        st = transfer(net, true, net->state, h.state, net->n_params * (size_t)net->n_state,
                      "clEnqueueWriteBuffer (checkpoint)");
    if (st == DLCL_OK && tensors_too) memcpy(net->counters, h.counters, net->n_counters * sizeof *net->counters);
    if (st == DLCL_OK && tensors_too) st = net_refold(net); /* the folded copies follow the weights */
    host_free(&h);
    free(tensors);
    free(names);
    return st;
}

dlcl_status dlcl_net_init_from(dlcl_net *net, const char *path, int partial, char *missing, size_t cap)
{
    if (net == NULL || path == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_init_from: net and path must not be NULL");
    if (missing && cap) missing[0] = '\0';
    st_file f = {0};
    dlcl_status st = st_read(path, &f);
    if (st == DLCL_OK)
        st = scatter(net, &f, path, "", LOAD_TENSORS | (partial ? LOAD_PARTIAL : 0), missing, missing ? cap : 0);
    st_file_free(&f);
    return st;
}

static int64_t meta_i64(const st_file *f, const char *key)
{
    const char *v = meta(f, key);
    return v ? strtoll(v, NULL, 10) : 0;
}

/* The position in f's metadata; false when a value is missing or out of range. */
static bool read_progress(const st_file *f, dlcl_train_progress *p, uint64_t *step)
{
    const char *e = meta(f, "epochs_done"), *s = meta(f, "step");
    if (e == NULL || s == NULL) return false;
    p->epochs_done = atoi(e);
    p->batches_done = meta_i64(f, "batches_done");
    const char *l = meta(f, "loss_sum");
    p->loss_sum = l ? strtod(l, NULL) : 0.0;
    p->correct = meta_i64(f, "correct");
    p->images = meta_i64(f, "images");
    *step = strtoull(s, NULL, 10);
    return p->epochs_done >= 0 && p->batches_done >= 0 && p->correct >= 0 && p->images >= 0;
}

static char *state_path_of(const char *path)
{
    size_t plen = strlen(path);
    char *s = malloc(plen + sizeof STATE_SUFFIX);
    if (s) snprintf(s, plen + sizeof STATE_SUFFIX, "%s%s", path, STATE_SUFFIX);
    return s;
}

/* The gradients of an accumulated step that was cut by the checkpoint ([optimizer]
 * accumulate > 1, "micro" batches summed so far). */
static dlcl_status load_accumulated(dlcl_net *net, const st_file *s, const char *path)
{
    net->micro = 0;
    int micro = (int)meta_i64(s, "micro");
    if (micro <= 0) return DLCL_OK;
    const st_tensor *t = st_find(s, ACC_NAME);
    if (micro >= net->optim.accumulate || net->gacc == NULL)
        return dlcl__err(DLCL_ERR_CHECKPOINT, "%s: saved %d batches into an accumulated step, but [optimizer] "
                         "accumulate = %d now", path, micro, net->optim.accumulate);
    if (t == NULL || t->dtype != ST_F32 || t->ndim != 1 || t->dims[0] != (int64_t)net->n_params)
        return dlcl__err(DLCL_ERR_CHECKPOINT, "%s: tensor '%s' (%zu floats) is missing or of another shape", path,
                         ACC_NAME, net->n_params);
    dlcl_status st = transfer(net, true, net->gacc, t->data, net->n_params, "clEnqueueWriteBuffer (checkpoint)");
    if (st == DLCL_OK) net->micro = micro;
    return st;
}

dlcl_status dlcl_net_load_progress(dlcl_net *net, const char *path, dlcl_train_progress *p)
{
    if (net == NULL || path == NULL || p == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_load_progress: net, path and progress must not be NULL");
    *p = (dlcl_train_progress){0};
    dlcl_status st = net_require_training(net, "dlcl_net_load_progress");
    if (st != DLCL_OK) return st;
    char *state_path = state_path_of(path);
    if (state_path == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    st_file s = {0};
    uint64_t step = 0;
    bool has_params = false;
    if (access(state_path, F_OK) == 0) {
        if ((st = st_read(state_path, &s)) != DLCL_OK) goto done;
        for (size_t i = 0; i < s.count && !has_params; i++) has_params = strncmp(s.tensors[i].name, "param.", 6) == 0;
    } else {
        dlcl__log(net->ctx, DLCL_LOG_WARN, "%s not found: resuming from the weights in %s with the optimizer state zero",
                  state_path, path);
    }
    if (!has_params) { /* no state file, or one from an older dlcl (momentum only) */
        int epochs = 0;
        st = dlcl_net_load(net, path, 1, &epochs);
        p->epochs_done = epochs;
        goto done;
    }
    if (!read_progress(&s, p, &step)) {
        st = dlcl__err(DLCL_ERR_CHECKPOINT, "%s: the metadata lacks epochs_done or step, or holds negative values",
                       state_path);
        goto done;
    }
    if ((st = scatter(net, &s, state_path, "param.", LOAD_TENSORS | LOAD_STATE, NULL, 0)) != DLCL_OK) goto done;
    net->step = step;
    if ((st = load_accumulated(net, &s, state_path)) != DLCL_OK) goto done;
done:
    st_file_free(&s);
    free(state_path);
    return st;
}

dlcl_status dlcl_net_load(dlcl_net *net, const char *path, int with_state, int *epochs_done)
{
    if (net == NULL || path == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_load: net and path must not be NULL");
    if (epochs_done) *epochs_done = 0;
    st_file f = {0}, s = {0};
    char *state_path = NULL;
    dlcl_status st = st_read(path, &f);
    if (st == DLCL_OK) st = scatter(net, &f, path, "", LOAD_TENSORS, NULL, 0);
    if (st != DLCL_OK || !with_state || net->inference) goto done; /* an inference net has no state to restore */
    const char *ew = meta(&f, "epochs_done");
    if (epochs_done && ew) *epochs_done = atoi(ew);
    const char *sw = meta(&f, "step");
    if (sw) net->step = strtoull(sw, NULL, 10);
    if ((state_path = state_path_of(path)) == NULL) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    if (access(state_path, F_OK) == 0) {
        st = st_read(state_path, &s);
        const char *es = st == DLCL_OK ? meta(&s, "epochs_done") : NULL;
        if (st == DLCL_OK && ew && es && strcmp(ew, es) != 0)
            st = dlcl__err(DLCL_ERR_CHECKPOINT, "%s is from epoch %s but %s from epoch %s; delete the .state file to "
                           "resume without the optimizer state", state_path, es, path, ew);
        if (st == DLCL_OK) st = scatter(net, &s, state_path, "param.", LOAD_STATE, NULL, 0);
    } else {
        dlcl__log(net->ctx, DLCL_LOG_WARN, "%s not found: the optimizer state starts from zero", state_path);
    }
done:
    free(state_path);
    st_file_free(&f);
    st_file_free(&s);
    return st;
}
