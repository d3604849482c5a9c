/* dlcl-eval config.ini --weights FILE [--set section.key=value]...
 * Evaluates weights on the [data] test split: a confusion matrix (up to 32 classes) and the
 * accuracy of each class (up to 100 with samples), with the class names where the data has
 * them (image folders, CIFAR's meta files), then the line
 *   accuracy=0.xxxx loss=0.xxxx */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: dlcl-eval CONFIG.ini --weights FILE.safetensors [--set section.key=value]... [--logits OUT]\n"
               "  --weights     may be left out when the config names an ONNX model ([net] model = x.onnx)\n"
               "  --logits OUT  also write the raw logits of every test sample to OUT (float32, [n][classes])\n");
}

int main(int argc, char **argv)
{
    const char *config = NULL, *weights = NULL, *logits_path = NULL;
    const char **sets = calloc((size_t)argc, sizeof *sets);
    size_t n_sets = 0;
    if (sets == NULL) return 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--weights") == 0 && i + 1 < argc) {
            weights = argv[++i];
        } else if (strcmp(argv[i], "--logits") == 0 && i + 1 < argc) {
            logits_path = argv[++i];
        } else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            sets[n_sets++] = argv[++i];
        } else if (argv[i][0] == '-' || config != NULL) {
            fprintf(stderr, "dlcl-eval: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            config = argv[i];
        }
    }
    if (config == NULL) {
        usage(stderr);
        return 2;
    }
    dlcl_ctx_params params = {.log = tool_log};
    dlcl_net *net = NULL;
    dlcl_loader *test = NULL;
    long *confusion = NULL;
    int32_t *pred = NULL;
    float *logits = NULL;
    FILE *lf = NULL;
    int rc = 1;
    dlcl_status s = dlcl_net_create_inference(config, sets, n_sets, &params, &net);
    if (s != DLCL_OK) goto fail;
    dlcl_net_info info;
    dlcl_net_get_info(net, &info);
    if (weights == NULL && info.model == NULL) {
        fprintf(stderr, "dlcl-eval: %s names no model ([net] model = x.onnx): give its weights with --weights\n", config);
        usage(stderr);
        rc = 2;
        goto done;
    }
    if (weights != NULL && (s = dlcl_net_load(net, weights, 0, NULL)) != DLCL_OK) goto fail;
    if ((s = dlcl_loader_create(net, DLCL_SPLIT_TEST, &test)) != DLCL_OK) goto fail;
    int k = info.classes, per = info.labels_per_sample; /* per > 1: a sequence net, a label per token */
    size_t rows = (size_t)info.batch * (size_t)per;
    /* a confusion matrix for classifiers; a sequence net's vocabulary is too large for one */
    confusion = per == 1 ? calloc((size_t)k * (size_t)k, sizeof *confusion) : malloc(1);
    pred = malloc(rows * sizeof *pred);
    logits = logits_path ? malloc(rows * (size_t)k * sizeof *logits) : malloc(1);
    if (logits_path != NULL && (lf = fopen(logits_path, "wb")) == NULL) {
        fprintf(stderr, "dlcl-eval: cannot write %s\n", logits_path);
        goto done;
    }
    if (confusion == NULL || pred == NULL || logits == NULL) {
        fprintf(stderr, "dlcl-eval: out of memory\n");
        goto done;
    }
    if ((s = dlcl_loader_begin_epoch(test, 0)) != DLCL_OK) goto fail;
    double loss = 0;
    long hits = 0, n = 0;
    const void *x;
    const int32_t *y;
    int count;
    while ((s = dlcl_loader_next(test, &x, &y, &count)) == DLCL_OK && count > 0) {
        double l;
        int c;
        if ((s = dlcl_net_eval_batch(net, x, y, count, &l, &c, per == 1 ? pred : NULL)) != DLCL_OK) goto fail;
        loss += l;
        hits += c;
        n += (long)count * per;
        for (int i = 0; per == 1 && i < count; i++) confusion[(size_t)y[i] * k + pred[i]]++;
        if (lf != NULL) {
            size_t vals = (size_t)count * (size_t)per * (size_t)k;
            if ((s = dlcl_net_logits(net, x, count, logits)) != DLCL_OK) goto fail;
            if (fwrite(logits, sizeof *logits, vals, lf) != vals) {
                fprintf(stderr, "dlcl-eval: write error on %s\n", logits_path);
                goto done;
            }
        }
    }
    if (s != DLCL_OK) goto fail;
    if (per > 1) { /* next-token prediction: the mean cross-entropy per token, in nats */
        double mean = n ? loss / (double)n : 0.0;
        printf("tokens=%ld windows of %d: loss per token %.4f nats (%.4f bits, perplexity %.2f)\n", n, per, mean,
               mean / log(2.0), exp(mean));
        printf("device memory: %.1f MiB (batch %d)\n", info.device_bytes / 1048576.0, info.batch);
        printf("accuracy=%.4f loss=%.4f\n", n ? (double)hits / n : 0.0, mean);
        rc = 0;
        goto done;
    }
    /* class names where the data has them (image folders, CIFAR's meta files), else indices */
    int named = 0;
    for (int i = 0; i < k; i++) named |= dlcl_loader_class_name(test, i) != NULL;
    if (k <= 32) {
        printf("confusion matrix (rows: true class, columns: predicted)\n%6s%s", "", named ? " class       " : "");
        for (int j = 0; j < k; j++) printf(" %6d", j);
        printf("\n");
        for (int i = 0; i < k; i++) {
            const char *name = dlcl_loader_class_name(test, i);
            printf("%6d", i);
            if (named) printf(" %-12.12s", name ? name : "");
            for (int j = 0; j < k; j++) printf(" %6ld", confusion[(size_t)i * k + j]);
            printf("\n");
        }
    }
    int present = 0; /* classes with test samples: one line each, when a person can read them */
    for (int i = 0; i < k; i++) {
        long row = 0;
        for (int j = 0; j < k; j++) row += confusion[(size_t)i * k + j];
        present += row > 0;
    }
    if (present <= 100) {
        printf("per class (true class: accuracy, hits/samples)\n");
        for (int i = 0; i < k; i++) {
            long row = 0, hit = confusion[(size_t)i * k + i];
            for (int j = 0; j < k; j++) row += confusion[(size_t)i * k + j];
            if (row == 0) continue;
            const char *name = dlcl_loader_class_name(test, i);
            printf("%6d %-24s %.4f  %ld/%ld\n", i, name ? name : "", (double)hit / (double)row, hit, row);
        }
    }
    printf("device memory: %.1f MiB (weights, activations sharing buffers, workspace; batch %d)\n",
           info.device_bytes / 1048576.0, info.batch);
    printf("accuracy=%.4f loss=%.4f\n", n ? (double)hits / n : 0.0, n ? loss / n : 0.0);
    rc = 0;
    goto done;
fail:
    rc = tool_fail("dlcl-eval", s);
done:
    if (lf != NULL && fclose(lf) != 0 && rc == 0) rc = 1;
    free(logits);
    free(confusion);
    free(pred);
    dlcl_loader_free(test);
    dlcl_net_free(net);
    free(sets);
    return rc;
}
