/* Checkpoints: weights as safetensors with PyTorch names and layouts (so the file loads into
 * torch with strict load_state_dict), and "<path>.state" beside them with everything a resume
 * needs in one file: the weights again ("param." names), the momentum buffers ("momentum."),
 * and the position (epoch, batch, step, seed, the epoch's running sums) in its metadata.
 * st_write writes each atomically (temporary file, fsync, rename), and the state file goes
 * first: whenever the process dies, the state file is a whole, consistent snapshot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../io/safetensors.h"
#include "net.h"

#define STATE_SUFFIX ".state"

static size_t count_tensors(const dlcl_net *net)
{
    size_t n = 0;
    for (size_t i = 0; i < net->n_layers; i++) n += (size_t)net->layers[i].n_params;
    return n;
}

/* Fills tensors[] with one entry per parameter, data pointing into host (a copy of buf). */
static dlcl_status gather(dlcl_net *net, cl_mem buf, float *host, st_tensor *tensors, char (*names)[160],
                          const char *prefix)
{
    cl_int err = clEnqueueReadBuffer(net->ctx->queue, buf, CL_TRUE, 0, net->n_params * sizeof(float), host, 0, NULL, NULL);
    if (err != CL_SUCCESS) return dlcl__cl_err(err, "clEnqueueReadBuffer (checkpoint)");
    size_t t = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        const layer *l = &net->layers[i];
        for (int p = 0; p < l->n_params; p++, t++) {
            const layer_param *lp = &l->params[p];
            snprintf(names[t], sizeof names[t], "%s%s.%s", prefix, l->name, lp->suffix);
            tensors[t].name = names[t];
            tensors[t].ndim = lp->ndim;
            memcpy(tensors[t].dims, lp->dims, sizeof lp->dims);
            tensors[t].data = host + l->param_off + lp->offset;
        }
    }
    return DLCL_OK;
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
    dlcl_status rs = net_require_training(net, "dlcl_net_save");
    if (rs != DLCL_OK) return rs;
    size_t nt = count_tensors(net), plen = strlen(path);
    float *host = malloc((net->n_params ? 2 * net->n_params : 1) * sizeof *host);
    st_tensor *tensors = calloc(nt ? 2 * nt : 1, sizeof *tensors);
    char (*names)[160] = calloc(nt ? 2 * nt : 1, sizeof *names);
    char *state_path = malloc(plen + sizeof STATE_SUFFIX);
    dlcl_status st = DLCL_OK;
    if (!host || !tensors || !names || !state_path) {
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
    /* the state file: weights and momentum, one atomic write */
    if ((st = gather(net, net->params, host, tensors, names, "param.")) != DLCL_OK) goto done;
    if ((st = gather(net, net->velocity, host + net->n_params, tensors + nt, names + nt, "momentum.")) != DLCL_OK)
        goto done;
    if ((st = st_write(state_path, tensors, 2 * nt, keys, vals, DLCL__ARRAY_LEN(keys))) != DLCL_OK) goto done;
    /* the weights for users (and PyTorch), from the same host copy */
    for (size_t t = 0; t < nt; t++) tensors[t].name = names[t] + strlen("param.");
    st = st_write(path, tensors, nt, keys, vals, 5);
done:
    free(host);
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

/* Copies every parameter of the net from f (names with prefix) into buf; strict. */
static dlcl_status scatter(dlcl_net *net, const st_file *f, const char *path, const char *prefix, cl_mem buf)
{
    float *host = malloc((net->n_params ? net->n_params : 1) * sizeof *host);
    if (host == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    dlcl_status st = DLCL_OK;
    size_t matched = 0;
    char name[160];
    for (size_t i = 0; i < net->n_layers && st == DLCL_OK; i++) {
        const layer *l = &net->layers[i];
        for (int p = 0; p < l->n_params && st == DLCL_OK; p++) {
            const layer_param *lp = &l->params[p];
            snprintf(name, sizeof name, "%s%s.%s", prefix, l->name, lp->suffix);
            const st_tensor *t = st_find(f, name);
            if (t == NULL) {
                st = dlcl__err(DLCL_ERR_CHECKPOINT, "%s: tensor '%s' is missing", path, name);
                break;
            }
            if (t->dtype != ST_F32) { /* an int64 tensor (num_batches_tracked, say) under a parameter's name */
                st = dlcl__err(DLCL_ERR_CHECKPOINT, "%s: tensor '%s' is %s, the net needs float32", path, name,
                               st_dtype_names[t->dtype]);
                break;
            }
            bool same = t->ndim == lp->ndim;
            for (int d = 0; same && d < lp->ndim; d++) same = t->dims[d] == lp->dims[d];
            if (!same) {
                char want[96] = "", got[96] = "";
                for (int d = 0; d < lp->ndim; d++)
                    snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "," : "", (long long)lp->dims[d]);
                for (int d = 0; d < t->ndim && d < 8; d++)
                    snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "", (long long)t->dims[d]);
                st = dlcl__err(DLCL_ERR_CHECKPOINT, "%s: tensor '%s' has shape [%s], the net needs [%s]", path, name, got, want);
                break;
            }
            memcpy(host + l->param_off + lp->offset, t->data, lp->numel * sizeof(float));
            matched++;
        }
    }
    size_t with_prefix = 0, plen = strlen(prefix);
    for (size_t i = 0; i < f->count; i++) with_prefix += strncmp(f->tensors[i].name, prefix, plen) == 0;
    if (st == DLCL_OK && matched != with_prefix) {
        for (size_t i = 0; i < f->count; i++) {
            if (strncmp(f->tensors[i].name, prefix, plen) != 0) continue;
            bool known = false;
            for (size_t j = 0; j < net->n_layers && !known; j++)
                for (int p = 0; p < net->layers[j].n_params && !known; p++) {
                    snprintf(name, sizeof name, "%s%s.%s", prefix, net->layers[j].name, net->layers[j].params[p].suffix);
                    known = strcmp(name, f->tensors[i].name) == 0;
                }
            if (!known) {
                st = dlcl__err(DLCL_ERR_CHECKPOINT, "%s: tensor '%s' is not a parameter of this net", path,
                               f->tensors[i].name);
                break;
            }
        }
    }
    if (st == DLCL_OK && net->n_params > 0) {
        cl_int err = clEnqueueWriteBuffer(net->ctx->queue, buf, CL_TRUE, 0, net->n_params * sizeof(float), host, 0,
                                          NULL, NULL);
        if (err != CL_SUCCESS) st = dlcl__cl_err(err, "clEnqueueWriteBuffer (checkpoint)");
    }
    free(host);
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

dlcl_status dlcl_net_load_progress(dlcl_net *net, const char *path, dlcl_train_progress *p)
{
    if (net == NULL || path == NULL || p == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_load_progress: net, path and progress must not be NULL");
    *p = (dlcl_train_progress){0};
    dlcl_status rs = net_require_training(net, "dlcl_net_load_progress");
    if (rs != DLCL_OK) return rs;
    size_t plen = strlen(path);
    char *state_path = malloc(plen + sizeof STATE_SUFFIX);
    if (state_path == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    snprintf(state_path, plen + sizeof STATE_SUFFIX, "%s%s", path, STATE_SUFFIX);
    st_file s = {0};
    dlcl_status st = DLCL_OK;
    uint64_t step = 0;
    bool has_params = false;
    if (access(state_path, F_OK) == 0) {
        if ((st = st_read(state_path, &s)) != DLCL_OK) goto done;
        for (size_t i = 0; i < s.count && !has_params; i++) has_params = strncmp(s.tensors[i].name, "param.", 6) == 0;
    } else {
        dlcl__log(net->ctx, DLCL_LOG_WARN, "%s not found: resuming from the weights in %s with momentum zero",
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
    if ((st = scatter(net, &s, state_path, "param.", net->params)) != DLCL_OK) goto done;
    if ((st = scatter(net, &s, state_path, "momentum.", net->velocity)) != DLCL_OK) goto done;
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
    dlcl_status st = st_read(path, &f);
    if (st == DLCL_OK) st = scatter(net, &f, path, "", net->params);
    if (st != DLCL_OK || !with_state || net->inference) goto done; /* an inference net has no state to restore */
    const char *ew = meta(&f, "epochs_done");
    if (epochs_done && ew) *epochs_done = atoi(ew);
    const char *sw = meta(&f, "step");
    if (sw) net->step = strtoull(sw, NULL, 10);
    size_t plen = strlen(path);
    char *state_path = malloc(plen + sizeof STATE_SUFFIX);
    if (state_path == NULL) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    snprintf(state_path, plen + sizeof STATE_SUFFIX, "%s%s", path, STATE_SUFFIX);
    if (access(state_path, F_OK) == 0) {
        st = st_read(state_path, &s);
        const char *es = st == DLCL_OK ? meta(&s, "epochs_done") : NULL;
        if (st == DLCL_OK && ew && es && strcmp(ew, es) != 0)
            st = dlcl__err(DLCL_ERR_CHECKPOINT, "%s is from epoch %s but %s from epoch %s; delete the .state file to "
                           "resume without momentum", state_path, es, path, ew);
        if (st == DLCL_OK) st = scatter(net, &s, state_path, "momentum.", net->velocity);
    } else {
        dlcl__log(net->ctx, DLCL_LOG_WARN, "%s not found: momentum buffers start from zero", state_path);
    }
    free(state_path);
done:
    st_file_free(&f);
    st_file_free(&s);
    return st;
}
