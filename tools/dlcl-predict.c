/* dlcl-predict config.ini --weights FILE IMAGE...
 * Classifies PNG/JPEG/BMP images: each is shaped like the [data] test split (resize, crop,
 * mean, std) and the five most likely classes are printed with their probabilities, and their
 * names where [data] has them (an image folder's class directories, CIFAR's meta file):
 *   cat.jpg:  3 cat (0.8123)  5 dog (0.1002) ... */
#include <stdlib.h>
#include <string.h>

#include "common.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: dlcl-predict CONFIG.ini --weights FILE.safetensors IMAGE...\n");
}

int main(int argc, char **argv)
{
    const char *config = NULL, *weights = NULL;
    const char **images = calloc((size_t)argc, sizeof *images);
    size_t n_images = 0;
    if (images == NULL) return 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--weights") == 0 && i + 1 < argc) {
            weights = argv[++i];
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
    if (config == NULL || weights == NULL || n_images == 0) {
        usage(stderr);
        return 2;
    }
    dlcl_ctx_params params = {.log = tool_log};
    dlcl_net *net = NULL;
    float *x = NULL, *probs = NULL;
    char **names = NULL;
    int n_names = 0, rc = 1, bad = 0;
    /* one image at a time: a batch of one, the net made for inference (no training state) */
    const char *one[] = {"net.batch=1"};
    dlcl_status s = dlcl_net_create_inference(config, one, 1, &params, &net);
    if (s != DLCL_OK) goto fail;
    dlcl_net_info info;
    dlcl_net_get_info(net, &info);
    if ((s = dlcl_net_load(net, weights, 0, NULL)) != DLCL_OK) goto fail;
    if (dlcl_net_class_names(net, &names, &n_names) != DLCL_OK) /* the data may be elsewhere: go on */
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
    return rc;
}
