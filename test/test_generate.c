/* Generation (lib/net/generate.c): the cached forward, one position at a time with
 * attention's key/value cache, gives the tokens that full forward passes over the same
 * windows give; sampling is a function of the seed; misuse is refused with a message. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/net/net.h"
#include "test.h"

static const char *write_cfg(const char *text)
{
    static char path[600];
    const char *dir = t_tmpdir(0);
    if (dir == NULL) return NULL;
    snprintf(path, sizeof path, "%s/gen.ini", dir);
    return t_write_file(path, text, strlen(text)) ? path : NULL;
}

/* A two-block GPT with a context of 8 and a vocabulary of 23 (weights of std 0.5, so the
 * logits differ clearly between tokens). */
#define T_CTX 8
#define VOCAB 23
static const char *gpt_net =
    "[net]\ninput=8\nclasses=23\nbatch=2\nseed=7\noutput=head\n"
    "[wte]\ntype=embedding\nvocab=23\ndim=16\ninit_std=0.5\n"
    "[wpe]\ntype=position_embedding\ncontext=8\ndim=16\ninit_std=0.5\n"
    "[for i in 0..1]\n"
    "[b${i}]\ntype=identity\n"
    "[b${i}.ln_1]\ntype=layernorm\n"
    "[b${i}.attn]\ntype=attention\nheads=4\ninit_std=0.3\n"
    "[b${i}.res_1]\ntype=add\ninput=b${i}, b${i}.attn\n"
    "[b${i}.ln_2]\ntype=layernorm\n"
    "[b${i}.fc]\ntype=dense\nlayout=conv1d\nunits=32\nactivation=gelu_tanh\ninit_std=0.3\n"
    "[b${i}.proj]\ntype=dense\nlayout=conv1d\nunits=16\ninit_std=0.3\n"
    "[b${i}.res_2]\ntype=add\ninput=b${i}.res_1, b${i}.proj\n"
    "[end]\n"
    "[ln_f]\ntype=layernorm\n"
    "[head]\ntype=dense\nunits=23\nbias=0\ntie=wte\n";

typedef struct collected {
    int32_t tok[64];
    int n;
} collected;

static int collect(int32_t t, void *user)
{
    collected *c = user;
    if (c->n < 64) c->tok[c->n++] = t;
    return 0;
}

/* The argmax of the logits at position len - 1 of a full forward over window[0..len-1]
 * (padded to the context with zeros: causal attention does not look ahead). */
static int32_t full_forward_argmax(dlcl_net *net, const int32_t *window, int len, float *logits)
{
    int32_t x[T_CTX] = {0};
    memcpy(x, window, (size_t)len * sizeof *x);
    if (dlcl_net_logits(net, x, 1, logits) != DLCL_OK) return -1;
    const float *r = logits + (size_t)(len - 1) * VOCAB;
    int32_t best = 0;
    for (int c = 1; c < VOCAB; c++)
        if (r[c] > r[best]) best = c;
    return best;
}

static void check_cached_greedy(const char *text)
{
    const char *path = write_cfg(text);
    T_CHECK(path != NULL, "cannot write config");
    dlcl_net *net = NULL, *ref = NULL;
    T_OK(dlcl_net_create_inference(path, NULL, 0, NULL, &net));
    T_OK(dlcl_net_create_inference(path, NULL, 0, NULL, &ref)); /* the same seed: the same weights */
    const int32_t prompt[3] = {5, 17, 5};
    dlcl_generate_params gp = {.tokens = 20, .temperature = 0.0f, .seed = 1};
    collected got = {0};
    dlcl_status st = dlcl_net_generate(net, prompt, 3, &gp, collect, &got);
    T_CHECK(st == DLCL_OK && got.n == 20, "generate: %s (%d tokens)", dlcl_last_error(), got.n);
    /* the same windows as the generator: the prompt, one more token each step, and when the
     * context is full its last half and the new token */
    int32_t win[T_CTX];
    float logits[T_CTX * VOCAB];
    int len = 3, distinct = 0;
    memcpy(win, prompt, sizeof prompt);
    for (int i = 0; i < 20; i++) {
        int32_t want = full_forward_argmax(ref, win, len, logits);
        T_CHECK(want == got.tok[i], "token %d: cached %d, full forward %d (window of %d)", i, (int)got.tok[i],
                (int)want, len);
        distinct += i > 0 && got.tok[i] != got.tok[i - 1];
        if (len == T_CTX) {
            memmove(win, win + T_CTX / 2, (T_CTX / 2) * sizeof *win);
            len = T_CTX / 2;
        }
        win[len++] = got.tok[i];
    }
    T_CHECK(distinct >= 3, "only %d changes of token in 20: the test would not see a wrong position", distinct);
    /* a prompt longer than the context keeps its last T tokens */
    int32_t longp[11];
    for (int i = 0; i < 11; i++) longp[i] = (int32_t)(i * 7 % VOCAB);
    collected a = {0};
    gp.tokens = 1;
    T_OK(dlcl_net_generate(net, longp, 11, &gp, collect, &a));
    T_CHECK(a.tok[0] == full_forward_argmax(ref, longp + 3, T_CTX, logits), "long prompt: %d", (int)a.tok[0]);
    dlcl_net_free(net);
    dlcl_net_free(ref);
}

static void cached_greedy_tokens_equal_full_forward_passes(void) { check_cached_greedy(gpt_net); }

/* Recurrent nets carry h (and c) from one cached pass to the next in their buffers. */
static const char *rnn_net(const char *kind)
{
    static char buf[512];
    snprintf(buf, sizeof buf,
             "[net]\ninput=8\nclasses=23\nbatch=2\nseed=9\n[e]\ntype=embedding\nvocab=23\ndim=6\ninit_std=4\n"
             "[r]\ntype=%s\nhidden=12\nlayers=2\n[o]\ntype=dense\nunits=23\ninit_std=2\n", kind);
    return buf;
}
static void cached_lstm_tokens_equal_full_forward_passes(void) { check_cached_greedy(rnn_net("lstm")); }
static void cached_gru_tokens_equal_full_forward_passes(void) { check_cached_greedy(rnn_net("gru")); }

static void sampling_is_a_function_of_the_seed(void)
{
    const char *path = write_cfg(gpt_net);
    T_CHECK(path != NULL, "cannot write config");
    dlcl_net *net = NULL;
    T_OK(dlcl_net_create_inference(path, NULL, 0, NULL, &net));
    const int32_t prompt[1] = {3};
    dlcl_generate_params gp = {.tokens = 24, .temperature = 1.5f, .seed = 11};
    collected a = {0}, b = {0}, c = {0}, g = {0}, k1 = {0}, k3 = {0};
    T_OK(dlcl_net_generate(net, prompt, 1, &gp, collect, &a));
    T_OK(dlcl_net_generate(net, prompt, 1, &gp, collect, &b));
    gp.seed = 12;
    T_OK(dlcl_net_generate(net, prompt, 1, &gp, collect, &c));
    T_CHECK(memcmp(a.tok, b.tok, sizeof a.tok) == 0, "the same seed drew other tokens");
    T_CHECK(memcmp(a.tok, c.tok, sizeof a.tok) != 0, "seeds 11 and 12 drew the same 24 tokens");
    gp.temperature = 0.0f;
    T_OK(dlcl_net_generate(net, prompt, 1, &gp, collect, &g));
    gp.temperature = 1.0f;
    gp.top_k = 1;
    T_OK(dlcl_net_generate(net, prompt, 1, &gp, collect, &k1));
    T_CHECK(memcmp(g.tok, k1.tok, sizeof g.tok) == 0, "top_k = 1 is not greedy");
    /* top_k = 3: every drawn token is among the 3 likeliest of its position (checked by
     * running the net on the window again) */
    gp.top_k = 3;
    gp.tokens = 6;
    T_OK(dlcl_net_generate(net, prompt, 1, &gp, collect, &k3));
    int32_t win[T_CTX] = {3};
    float logits[T_CTX * VOCAB];
    for (int i = 0; i < 6; i++) {
        int32_t x[T_CTX] = {0};
        memcpy(x, win, (size_t)(i + 1) * sizeof *x);
        T_OK(dlcl_net_logits(net, x, 1, logits));
        const float *r = logits + (size_t)i * VOCAB;
        int above = 0;
        for (int v = 0; v < VOCAB; v++) above += r[v] > r[k3.tok[i]];
        T_CHECK(above < 3, "token %d (%d) has %d likelier tokens with top_k = 3", i, (int)k3.tok[i], above);
        win[i + 1] = k3.tok[i];
    }
    dlcl_net_free(net);
}

static void generation_misuse_is_refused(void)
{
    const char *path = write_cfg(gpt_net);
    T_CHECK(path != NULL, "cannot write config");
    dlcl_net *net = NULL;
    T_OK(dlcl_net_create_inference(path, NULL, 0, NULL, &net));
    dlcl_generate_params gp = {.tokens = 2, .temperature = 1.0f};
    const int32_t bad[2] = {1, 99};
    T_CHECK(t_err_matches(dlcl_net_generate(net, bad, 0, &gp, NULL, NULL), DLCL_ERR_INVALID_ARG,
                          "the prompt needs at least one token"),
            "empty prompt: %s", dlcl_last_error());
    T_CHECK(t_err_matches(dlcl_net_generate(net, bad, 2, &gp, NULL, NULL), DLCL_ERR_INVALID_ARG,
                          "token 99 at position 1 is outside 0..22"),
            "token out of range: %s", dlcl_last_error());
    gp.temperature = -1.0f;
    T_CHECK(t_err_matches(dlcl_net_generate(net, bad, 1, &gp, NULL, NULL), DLCL_ERR_INVALID_ARG, "temperature -1"),
            "negative temperature: %s", dlcl_last_error());
    dlcl_net_free(net);
    /* a classifier of images is not a next-token model */
    path = write_cfg("[net]\ninput=1,4,4\nclasses=3\nbatch=1\n[fc]\ntype=dense\nunits=3\n");
    T_OK(dlcl_net_create_inference(path, NULL, 0, NULL, &net));
    gp.temperature = 1.0f;
    T_CHECK(t_err_matches(dlcl_net_generate(net, bad, 1, &gp, NULL, NULL), DLCL_ERR_INVALID_ARG,
                          "is not a next-token model"),
            "classifier: %s", dlcl_last_error());
    dlcl_net_free(net);
}

static const t_case cases[] = {
    T_CASE(cached_greedy_tokens_equal_full_forward_passes),
    T_CASE(cached_lstm_tokens_equal_full_forward_passes),
    T_CASE(cached_gru_tokens_equal_full_forward_passes),
    T_CASE(sampling_is_a_function_of_the_seed),
    T_CASE(generation_misuse_is_refused),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
