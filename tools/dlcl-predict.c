/* dlcl-predict config.ini --weights FILE IMAGE...
 * dlcl-predict model.onnx [--scale S] [--mean M] [--std S] IMAGE...
 * Classifies PNG/JPEG/BMP images: each is shaped like the [data] test split (resize, crop,
 * mean, std) and the five most likely classes are printed with their probabilities, and their
 * names where [data] has them (an image folder's class directories, CIFAR's meta file):
 *   cat.jpg:  3 cat (0.8123)  5 dog (0.1002) ...
 * A config naming an ONNX model ([net] model =), or the model itself, needs no --weights:
 * its initializers are the weights (--weights still replaces them). The flags set [data]'s
 * scale (default 1/255), mean and std (per channel, comma-separated). */
#include <stdlib.h>
#include <string.h>

#include "common.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: dlcl-predict CONFIG.ini --weights FILE.safetensors IMAGE...\n"
               "       dlcl-predict MODEL.onnx|CONFIG.ini [--weights FILE] [--scale S] [--mean M1,M2,M3] [--std S1,S2,S3] "
               "[--set section.key=value]... IMAGE...\n");
}

int main(int argc, char **argv)
{
    const char *config = NULL, *weights = NULL;
    const char **images = calloc((size_t)argc, sizeof *images);
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    size_t n_images = 0, n_sets = 0;
    if (images == NULL || sets == NULL) return 1;
    /* one image at a time: a batch of one, the net made for inference (no training state) */
    sets[n_sets++] = strdup("net.batch=1");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--weights") == 0 && i + 1 < argc) {
            weights = argv[++i];
        } else if ((strcmp(argv[i], "--scale") == 0 || strcmp(argv[i], "--mean") == 0 ||
                    strcmp(argv[i], "--std") == 0 || strcmp(argv[i], "--set") == 0) && i + 1 < argc) {
            const char *flag = argv[i] + 2, *v = argv[++i];
            size_t n = strlen(flag) + strlen(v) + 8;
            if ((sets[n_sets] = malloc(n)) == NULL) return 1;
            if (strcmp(flag, "set") == 0) snprintf(sets[n_sets++], n, "%s", v);
            else snprintf(sets[n_sets++], n, "data.%s=%s", flag, v);
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "dlcl-predict: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (config == NULL) {
            config = argv[i];
        } else {
            images[n_images++] = argv[i];
        }
    }
    if (config == NULL || n_images == 0) {
        usage(stderr);
        return 2;
    }
    dlcl_ctx_params params = {.log = tool_log};
    dlcl_net *net = NULL;
    float *x = NULL, *probs = NULL;
    char **names = NULL;
    int n_names = 0, rc = 1, bad = 0;
    dlcl_status s = dlcl_net_create_inference(config, (const char *const *)sets, n_sets, &params, &net);
    if (s != DLCL_OK) goto fail;
    dlcl_net_info info;
    dlcl_net_get_info(net, &info);
    if (weights == NULL && info.model == NULL) {
        fprintf(stderr, "dlcl-predict: %s names no model ([net] model = x.onnx): give its weights with --weights\n",
                config);
        rc = 2;
        goto done;
    }
    if (weights != NULL && (s = dlcl_net_load(net, weights, 0, NULL)) != DLCL_OK) goto fail;
    size_t clen = strlen(config);
    int bare = clen > 5 && strcmp(config + clen - 5, ".onnx") == 0; /* no [data]: no names to look for */
    if (!bare && dlcl_net_class_names(net, &names, &n_names) != DLCL_OK) /* the data may be elsewhere: go on */
        fprintf(stderr, "dlcl-predict: warning: no class names: %s\n", dlcl_last_error());
    x = malloc(info.in_numel * sizeof *x);
    probs = malloc((size_t)info.classes * sizeof *probs);
    if (x == NULL || probs == NULL) goto done;
    for (size_t i = 0; i < n_images; i++) {
        s = dlcl_net_load_image(net, images[i], x);
        if (s == DLCL_OK) s = dlcl_net_predict(net, x, 1, probs);
        if (s != DLCL_OK) { /* report and go on with the other images */
            tool_fail("dlcl-predict", s);
            bad = 1;
            continue;
        }
        printf("%s:", images[i]);
        for (int r = 0; r < 5 && r < info.classes; r++) {
            int best = -1;
            for (int c = 0; c < info.classes; c++)
                if (probs[c] >= 0 && (best < 0 || probs[c] > probs[best])) best = c;
            if (best < n_names)
                printf("  %d %s (%.4f)", best, names[best], (double)probs[best]);
            else
                printf("  %d (%.4f)", best, (double)probs[best]);
            probs[best] = -1;
        }
        printf("\n");
    }
    rc = bad;
    goto done;
fail:
    rc = tool_fail("dlcl-predict", s);
done:
    free(x);
    free(probs);
    dlcl_class_names_free(names);
    dlcl_net_free(net);
    free(images);
    for (size_t i = 0; i < n_sets; i++) free(sets[i]);
    free(sets);
    return rc;
}
