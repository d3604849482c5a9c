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
    if ((st = host_alloc(net, &h, true)) != DLCL_OK) return st;
    st_tensor *tensors = calloc(cap, sizeof *tensors);
    char (*names)[NAME_CAP] = calloc(cap, sizeof *names);
    char *state_path = malloc(plen + sizeof STATE_SUFFIX);
    if (!tensors || !names || !state_path) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    snprintf(state_path, plen + sizeof STATE_SUFFIX, "%s%s", path, STATE_SUFFIX);
    char epochs[32], batches[32], step[32], seed[32], loss[48], correct[32], images[32];
    snprintf(epochs, sizeof epochs, "%d", pr->epochs_done);
    snprintf(batches, sizeof batches, "%lld", (long long)pr->batches_done);
    snprintf(step, sizeof step, "%llu", (unsigned long long)net->step);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)net->seed);
    snprintf(loss, sizeof loss, "%.17g", pr->loss_sum); /* round-trips exactly */
    snprintf(correct, sizeof correct, "%lld", (long long)pr->correct);
    snprintf(images, sizeof images, "%lld", (long long)pr->images);
    const char *keys[] = {"format", "producer", "epochs_done", "step", "seed",
                          "batches_done", "loss_sum", "correct", "images"};
    const char *vals[] = {"pt", "dlcl " DLCL_VERSION_STRING, epochs, step, seed, batches, loss, correct, images};
    if ((st = transfer(net, false, net->params, h.params, net->n_params, "clEnqueueReadBuffer (checkpoint)")) != DLCL_OK ||
        (st = transfer(net, false, net->buffers, h.buffers, net->n_buffers, "clEnqueueReadBuffer (checkpoint)")) !=
            DLCL_OK ||
        (st = transfer(net, false, net->state, h.state, net->n_params * (size_t)net->n_state,
                       "clEnqueueReadBuffer (checkpoint)")) != DLCL_OK)
        goto done;
    /* the state file: every tensor and the optimizer state, one atomic write */
    size_t n = list_tensors(net, &h, "param.", true, tensors, names);
    if ((st = st_write(state_path, tensors, n, keys, vals, DLCL__ARRAY_LEN(keys))) != DLCL_OK) goto done;
    /* the weights for users (and PyTorch), from the same host copy */
    n = list_tensors(net, &h, "", false, tensors, names);
    st = st_write(path, tensors, n, keys, vals, 5);
done:
    host_free(&h);
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

/* Copies every tensor of the list (names from list_tensors) from f into the host copies;
 * strict: each must be present with its shape, and f may hold no other tensor under the
 * list's prefix. A missing one named alt (old files' "momentum." names) is looked up there. */
static dlcl_status match(const st_file *f, const char *path, const st_tensor *want, size_t n, const char *prefix,
                         const char *alt_prefix)
{
    size_t matched = 0, plen = strlen(prefix);
    char alt[NAME_CAP + 16];
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = st_find(f, want[i].name);
        if (t == NULL && alt_prefix != NULL) { /* state.<name>.momentum_buffer was momentum.<name> */
            const char *base = want[i].name + plen, *dot = strrchr(base, '.');
            snprintf(alt, sizeof alt, "%s%.*s", alt_prefix, (int)(dot ? dot - base : (long)strlen(base)), base);
            if ((t = st_find(f, alt)) != NULL) matched--; /* not under prefix: not counted below */
        }
        if (t == NULL) return dlcl__err(DLCL_ERR_CHECKPOINT, "%s: tensor '%s' is missing", path, want[i].name);
        if (t->dtype != want[i].dtype)
            return dlcl__err(DLCL_ERR_CHECKPOINT, "%s: tensor '%s' is %s, the net needs %s", path, want[i].name,
                             st_dtype_names[t->dtype], want[i].dtype == ST_I64 ? "int64" : "float32");
        bool same = t->ndim == want[i].ndim;
        for (int d = 0; same && d < t->ndim; d++) same = t->dims[d] == want[i].dims[d];
        if (!same) {
            layer_param lp = {.ndim = want[i].ndim};
            memcpy(lp.dims, want[i].dims, sizeof lp.dims);
            return shape_error(path, t, &lp);
        }
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= (size_t)t->dims[d];
        if (t->dtype == ST_I64)
            memcpy(want[i].i64, t->i64, numel * sizeof *t->i64);
        else
            memcpy(want[i].data, t->data, numel * sizeof(float));
        matched++;
    }
    size_t with_prefix = 0;
    for (size_t i = 0; i < f->count; i++) with_prefix += strncmp(f->tensors[i].name, prefix, plen) == 0;
    if (matched == with_prefix) return DLCL_OK;
    for (size_t i = 0; i < f->count; i++) {
        if (strncmp(f->tensors[i].name, prefix, plen) != 0) continue;
        bool known = false;
        for (size_t j = 0; j < n && !known; j++) known = strcmp(want[j].name, f->tensors[i].name) == 0;
        if (!known) return dlcl__err(DLCL_ERR_CHECKPOINT, "%s: tensor '%s' is not a parameter of this net", path,
                                     f->tensors[i].name);
    }
    return DLCL_OK;
}

/* What scatter loads from a file. */
enum { LOAD_TENSORS = 1, LOAD_STATE = 2 };

/* Loads from f into the device regions: the tensors (names under prefix, "" or "param.")
 * and/or the optimizer state ("state.<tensor>.<name>"; old files' "momentum.<tensor>"). */
static dlcl_status scatter(dlcl_net *net, const st_file *f, const char *path, const char *prefix, int what)
{
    bool state = what & LOAD_STATE, tensors_too = what & LOAD_TENSORS;
    size_t nt = count_tensors(net), cap = nt * (1 + (size_t)net->n_state) + 1;
    host_regions h;
    dlcl_status st = host_alloc(net, &h, state);
    if (st != DLCL_OK) return st;
    st_tensor *tensors = calloc(cap, sizeof *tensors);
    char (*names)[NAME_CAP] = calloc(cap, sizeof *names);
    if (!tensors || !names) st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    size_t n = st == DLCL_OK ? list_tensors(net, &h, prefix, state, tensors, names) : 0;
    if (st == DLCL_OK && tensors_too) st = match(f, path, tensors, nt, prefix, NULL);
    if (st == DLCL_OK && state) st = match(f, path, tensors + nt, n - nt, "state.", "momentum.");
    if (st == DLCL_OK && tensors_too)
        st = transfer(net, true, net->params, h.params, net->n_params, "clEnqueueWriteBuffer (checkpoint)");
    if (st == DLCL_OK && tensors_too)
        st = transfer(net, true, net->buffers, h.buffers, net->n_buffers, "clEnqueueWriteBuffer (checkpoint)");
    if (st == DLCL_OK && state)
        st = transfer(net, true, net->state, h.state, net->n_params * (size_t)net->n_state,
                      "clEnqueueWriteBuffer (checkpoint)");
    if (st == DLCL_OK && tensors_too) memcpy(net->counters, h.counters, net->n_counters * sizeof *net->counters);
    host_free(&h);
    free(tensors);
    free(names);
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
    if ((st = scatter(net, &s, state_path, "param.", LOAD_TENSORS | LOAD_STATE)) != DLCL_OK) goto done;
    net->step = step;
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
    if (st == DLCL_OK) st = scatter(net, &f, path, "", LOAD_TENSORS);
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
        if (st == DLCL_OK) st = scatter(net, &s, state_path, "param.", LOAD_STATE);
    } else {
        dlcl__log(net->ctx, DLCL_LOG_WARN, "%s not found: the optimizer state starts from zero", state_path);
    }
done:
    free(state_path);
    st_file_free(&f);
    st_file_free(&s);
    return st;
}
