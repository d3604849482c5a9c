/* Sampling from a sequence net: the prompt in one cached forward, then one position per new
 * token (attention keeps its keys and values, so a token costs one position, not the whole
 * prefix). Temperature and top-k as Hugging Face's and nanoGPT's samplers: logits / T, the
 * k largest kept, softmax, one draw from a stream seeded by the caller.
 *
 * When the context is full, the last half of it is run again from position 0 (the cache
 * starts over), so the window the model sees stays between T/2 and T tokens; nanoGPT crops
 * to the last T and reruns the whole window for every token instead. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

/* A token from the logits of one position (classes values, overwritten). */
static int32_t sample(float *z, int classes, const dlcl_generate_params *p, uint64_t *rng, int *order)
{
    int best = 0;
    for (int c = 1; c < classes; c++)
        if (z[c] > z[best]) best = c;
    if (p->temperature <= 0.0f || p->top_k == 1) return best; /* greedy */
    int k = p->top_k > 0 && p->top_k < classes ? p->top_k : classes;
    float floor = -INFINITY;
    if (k < classes) { /* the k-th largest logit: keep those >= it (ties may keep a few more, as torch.topk's mask) */
        for (int c = 0; c < classes; c++) order[c] = c;
        int lo = 0, hi = classes - 1, want = k - 1; /* quickselect, descending */
        while (lo < hi) {
            float pivot = z[order[(lo + hi) / 2]];
            int i = lo, j = hi;
            while (i <= j) {
                while (z[order[i]] > pivot) i++;
                while (z[order[j]] < pivot) j--;
                if (i <= j) {
                    int t = order[i];
                    order[i++] = order[j];
                    order[j--] = t;
                }
            }
            if (want <= j) hi = j;
            else if (want >= i) lo = i;
            else break;
        }
        floor = z[order[want]];
    }
    double sum = 0, m = z[best];
    for (int c = 0; c < classes; c++) {
        double e = z[c] >= floor ? exp(((double)z[c] - m) / p->temperature) : 0.0;
        z[c] = (float)e;
        sum += e;
    }
    double u = (double)(dlcl__splitmix64(rng) >> 11) * (1.0 / 9007199254740992.0) * sum, acc = 0;
    for (int c = 0; c < classes; c++) {
        acc += z[c];
        if (u < acc && z[c] > 0) return c;
    }
    return best; /* rounding left u past the last: the likeliest */
}

static dlcl_status last_logits(dlcl_net *net, int steps, float *dst)
{
    size_t C = (size_t)net->classes;
    op_buf out = net->act[net->output];
    cl_int err = clEnqueueReadBuffer(net->ctx->queue, out.mem, CL_TRUE, (out.off + (size_t)(steps - 1) * C) * sizeof(float),
                                     C * sizeof(float), dst, 0, NULL, NULL);
    return err == CL_SUCCESS ? DLCL_OK : dlcl__cl_err(err, "clEnqueueReadBuffer (logits)");
}

dlcl_status dlcl_net_generate(dlcl_net *net, const int32_t *prompt, size_t n_prompt, const dlcl_generate_params *p,
                              dlcl_token_fn fn, void *user)
{
    if (net == NULL || p == NULL || (prompt == NULL && n_prompt > 0))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_generate: net and params must not be NULL");
    if (n_prompt == 0)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_generate: the prompt needs at least one token (GPT-2 starts "
                         "from <|endoftext|>, id 50256)");
    if (net->input.dtype != DLCL_INT32 || net->label_len != net->input.dims[0])
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_generate: %s is not a next-token model (an embedding reading "
                         "the input, a T x classes output)", net->cfg.path);
    if (p->tokens < 0 || !(p->temperature >= 0.0f) || p->top_k < 0)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_generate: tokens %d, temperature %g, top_k %d", p->tokens,
                         (double)p->temperature, p->top_k);
    for (size_t i = 0; i < net->n_layers; i++) {
        const layer *l = &net->layers[i];
        if (!(l->type->flags & LAYER_STEPS))
            return dlcl__err(DLCL_ERR_INVALID_ARG, "dlcl_net_generate: layer [%s] (%s) cannot run one position at a "
                             "time", l->name, l->type->name);
    }
    int T = net->input.dims[0], C = net->classes;
    int32_t *hist = malloc((size_t)T * sizeof *hist); /* the tokens in the cache, positions 0 .. len-1 */
    float *z = malloc((size_t)C * sizeof *z);
    int *order = malloc((size_t)C * sizeof *order);
    dlcl_status st = hist && z && order ? DLCL_OK : dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    size_t start = n_prompt > (size_t)T ? n_prompt - (size_t)T : 0; /* a long prompt: its last T tokens */
    int len = (int)(n_prompt - start);
    if (st == DLCL_OK) {
        memcpy(hist, prompt + start, (size_t)len * sizeof *hist);
        st = net_forward_steps(net, hist, 1, 0, len);
    }
    uint64_t rng = dlcl__mix64(p->seed ^ 0x67656e6572617465ull);
    int last = len; /* positions of the last forward: the logits to sample from are its last row */
    for (int i = 0; i < p->tokens && st == DLCL_OK; i++) {
        if ((st = last_logits(net, last, z)) != DLCL_OK) break;
        int32_t tok = sample(z, C, p, &rng, order);
        if ((fn && fn(tok, user) != 0) || i + 1 == p->tokens) break;
        if (len == T) { /* full: the last half and the new token again from position 0 */
            int keep = T / 2;
            memmove(hist, hist + (T - keep), (size_t)keep * sizeof *hist);
            len = keep;
            hist[len++] = tok;
            st = net_forward_steps(net, hist, 1, 0, len);
            last = len;
        } else {
            hist[len] = tok;
            st = net_forward_steps(net, hist + len, 1, len, 1);
            len++;
            last = 1;
        }
    }
    free(hist);
    free(z);
    free(order);
    return st;
}
