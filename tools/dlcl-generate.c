/* dlcl-generate config.ini --weights FILE [--prompt TEXT | --prompt-tokens 1,2,3] [--tokens N]
 *               [--temperature T] [--top-k K] [--seed S] [--vocab vocab.json --merges merges.txt]
 * Continues a prompt with a next-token model and prints the result as it is drawn:
 *   - a byte-level model (classes = 256: format=text) reads and prints text;
 *   - with --vocab and --merges (Hugging Face's GPT-2 tokenizer files), text goes through
 *     GPT-2's byte-level BPE both ways;
 *   - otherwise prompts and output are token ids (--prompt-tokens).
 * Without a prompt, generation starts from a newline (bytes), <|endoftext|> (GPT-2), or token 0. */
#include <stdlib.h>
#include <string.h>

#include "common.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: dlcl-generate CONFIG.ini --weights FILE.safetensors [--prompt TEXT | --prompt-tokens 1,2,3]\n"
               "                     [--tokens N] [--temperature T] [--top-k K] [--seed S] [--set section.key=value]...\n"
               "                     [--vocab vocab.json --merges merges.txt]\n"
               "  --tokens       how many tokens to generate (default 200)\n"
               "  --temperature  0 picks the likeliest token each time (default 1)\n"
               "  --top-k        draw among the K likeliest tokens only (default 0: all)\n"
               "  --seed         the draws are a function of it (default 1)\n"
               "  --vocab, --merges  GPT-2's tokenizer files: prompt and output as text\n");
}

typedef struct out_state {
    int mode; /* 0: token ids, 1: bytes, 2: BPE */
    const dlcl_tokenizer *tok;
    int first;
} out_state;

static int print_token(int32_t t, void *user)
{
    out_state *o = user;
    if (o->mode == 1) {
        putchar((unsigned char)t);
    } else if (o->mode == 2) {
        const char *b;
        size_t n;
        if (dlcl_tokenizer_token_bytes(o->tok, t, &b, &n) == DLCL_OK) fwrite(b, 1, n, stdout);
    } else {
        printf("%s%d", o->first ? "" : " ", (int)t);
    }
    o->first = 0;
    fflush(stdout);
    return 0;
}

/* "1, 2,3" into a malloc'ed list. */
static int32_t *parse_ids(const char *s, size_t *n)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int32_t *ids = malloc(cap * sizeof *ids);
    *n = 0;
    if (ids == NULL) return NULL;
    for (const char *p = s; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > INT32_MAX) {
            free(ids);
            return NULL;
        }
        ids[(*n)++] = (int32_t)v;
        p = end;
        while (*p == ' ' || *p == ',') p++;
    }
    return ids;
}

int main(int argc, char **argv)
{
    const char *config = NULL, *weights = NULL, *prompt = NULL, *prompt_ids = NULL, *vocab = NULL, *merges = NULL;
    dlcl_generate_params gp = {.tokens = 200, .temperature = 1.0f, .top_k = 0, .seed = 1};
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    size_t n_sets = 0;
    if (sets == NULL) return 1;
    sets[n_sets++] = "net.batch=1";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            free(sets);
            return 0;
        }
        if (a[0] == '-' && v == NULL) {
            fprintf(stderr, "dlcl-generate: %s needs a value\n", a);
            free(sets);
            return 2;
        }
        if (strcmp(a, "--weights") == 0) weights = argv[++i];
        else if (strcmp(a, "--prompt") == 0) prompt = argv[++i];
        else if (strcmp(a, "--prompt-tokens") == 0) prompt_ids = argv[++i];
        else if (strcmp(a, "--tokens") == 0) gp.tokens = atoi(argv[++i]);
        else if (strcmp(a, "--temperature") == 0) gp.temperature = (float)atof(argv[++i]);
        else if (strcmp(a, "--top-k") == 0) gp.top_k = atoi(argv[++i]);
        else if (strcmp(a, "--seed") == 0) gp.seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(a, "--vocab") == 0) vocab = argv[++i];
        else if (strcmp(a, "--merges") == 0) merges = argv[++i];
        else if (strcmp(a, "--set") == 0) sets[n_sets++] = argv[++i];
        else if (a[0] == '-' || config != NULL) {
            fprintf(stderr, "dlcl-generate: unexpected argument '%s'\n", a);
            usage(stderr);
            free(sets);
            return 2;
        } else config = a;
    }
    if (config == NULL || weights == NULL || (prompt && prompt_ids) || (!vocab != !merges)) {
        if (prompt && prompt_ids) fprintf(stderr, "dlcl-generate: give --prompt or --prompt-tokens, not both\n");
        if (!vocab != !merges) fprintf(stderr, "dlcl-generate: --vocab and --merges go together\n");
        usage(stderr);
        free(sets);
        return 2;
    }
    dlcl_ctx_params params = {.log = tool_log};
    dlcl_net *net = NULL;
    dlcl_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int rc = 1;
    dlcl_status s = dlcl_net_create_inference(config, sets, n_sets, &params, &net);
    if (s != DLCL_OK) goto fail;
    dlcl_net_info info;
    dlcl_net_get_info(net, &info);
    if ((s = dlcl_net_load(net, weights, 0, NULL)) != DLCL_OK) goto fail;
    out_state o = {.mode = 0, .first = 1};
    if (vocab) {
        if ((s = dlcl_tokenizer_load(vocab, merges, &tok)) != DLCL_OK) goto fail;
        o.mode = 2;
        o.tok = tok;
    } else if (info.classes == 256) {
        o.mode = 1;
    }
    if (prompt_ids) {
        if ((ids = parse_ids(prompt_ids, &n_ids)) == NULL || n_ids == 0) {
            fprintf(stderr, "dlcl-generate: --prompt-tokens '%s': expected comma-separated token ids\n", prompt_ids);
            goto done;
        }
    } else if (prompt && o.mode == 2) {
        if ((s = dlcl_tokenizer_encode(tok, prompt, strlen(prompt), &ids, &n_ids)) != DLCL_OK) goto fail;
    } else if (prompt && o.mode == 1) {
        n_ids = strlen(prompt);
        ids = malloc((n_ids ? n_ids : 1) * sizeof *ids);
        for (size_t i = 0; ids && i < n_ids; i++) ids[i] = (unsigned char)prompt[i];
    } else if (prompt) {
        fprintf(stderr, "dlcl-generate: a model of %d classes reads token ids: give --prompt-tokens, or --vocab and "
                        "--merges to encode text\n", info.classes);
        goto done;
    }
    if (n_ids == 0) { /* no prompt: a newline (bytes), <|endoftext|> (GPT-2), or token 0 */
        free(ids);
        ids = malloc(sizeof *ids);
        int32_t eot = o.mode == 2 ? dlcl_tokenizer_token_id(tok, "<|endoftext|>") : -1;
        if (ids) ids[0] = o.mode == 1 ? '\n' : eot >= 0 ? eot : (info.classes == 50257 ? 50256 : 0);
        n_ids = 1;
    }
    if (ids == NULL) goto done;
    if (o.mode != 0 && prompt) {
        fputs(prompt, stdout);
    }
    double t0 = tool_now();
    s = dlcl_net_generate(net, ids, n_ids, &gp, print_token, &o);
    double secs = tool_now() - t0;
    printf("\n");
    if (s != DLCL_OK) goto fail;
    fprintf(stderr, "dlcl-generate: %d tokens in %.2f s (%.1f tokens/s, prompt %zu tokens)\n", gp.tokens, secs,
            secs > 0 ? gp.tokens / secs : 0.0, n_ids);
    rc = 0;
    goto done;
fail:
    rc = tool_fail("dlcl-generate", s);
done:
    free(ids);
    dlcl_tokenizer_free(tok);
    dlcl_net_free(net);
    free(sets);
    return rc;
}
