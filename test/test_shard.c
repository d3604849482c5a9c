/* Data-parallel sharding of the loaders (dlcl_loader_shard, dlcl_loader_next_shard): for 1, 2
 * and 3 ranks, the ranks' shares of every batch, rank 0 first, are bit for bit the batch the
 * unsharded loader yields (x and y, augmentation and shuffle included), also when resuming
 * mid-epoch, when the last batch is short and when it holds fewer samples than ranks (empty
 * shares: count 0 of a batch of global_count > 0). Image sources (synthetic, IDX, an image
 * folder decoded one file at a time) and token windows (synthetic, text). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data_util.h"

#define MAX_BATCHES 64
#define MAX_RANKS 3

/* One epoch of the unsharded loader: the batches' samples one after another. */
typedef struct epoch_ref {
    int batches;
    int count[MAX_BATCHES];
    int at[MAX_BATCHES]; /* the batch's first sample */
    uint8_t *x, *y;
} epoch_ref;

static char why[600];

static bool collect(const dlcl_net *net, dlcl_split split, int epoch, size_t first, size_t sx, size_t sy, epoch_ref *r)
{
    *r = (epoch_ref){0};
    dlcl_loader *l = NULL;
    dlcl_status st = dlcl_loader_create(net, split, &l);
    size_t n = st == DLCL_OK ? dlcl_loader_samples(l) : 0;
    r->x = malloc(n * sx + 1);
    r->y = malloc(n * sy + 1);
    if (st == DLCL_OK && (r->x == NULL || r->y == NULL)) st = DLCL_ERR_OUT_OF_MEMORY;
    if (st == DLCL_OK) st = dlcl_loader_begin_epoch_at(l, epoch, first);
    int total = 0;
    for (;;) {
        const void *x;
        const int32_t *y;
        int count = 0;
        if (st != DLCL_OK || (st = dlcl_loader_next(l, &x, &y, &count)) != DLCL_OK || count == 0) break;
        if (r->batches == MAX_BATCHES || (size_t)(total + count) > n) {
            st = DLCL_ERR_INVALID_ARG;
            break;
        }
        memcpy(r->x + (size_t)total * sx, x, (size_t)count * sx);
        memcpy(r->y + (size_t)total * sy, y, (size_t)count * sy);
        r->at[r->batches] = total;
        r->count[r->batches++] = count;
        total += count;
    }
    dlcl_loader_free(l);
    if (st != DLCL_OK) snprintf(why, sizeof why, "unsharded epoch %d: %s", epoch, dlcl_last_error());
    return st == DLCL_OK;
}

/* Epoch `epoch` from batch `first` on `ranks` loaders in lockstep against the unsharded
 * loader: NULL when every share matches, else what differs. */
static const char *check_shards(const dlcl_net *net, dlcl_split split, int epoch, size_t first, int ranks, size_t sx,
                                size_t sy)
{
    epoch_ref ref;
    if (!collect(net, split, epoch, first, sx, sy, &ref)) {
        free(ref.x);
        free(ref.y);
        return why;
    }
    why[0] = '\0';
    dlcl_loader *l[MAX_RANKS] = {0};
    for (int r = 0; r < ranks && !why[0]; r++) {
        if (dlcl_loader_create(net, split, &l[r]) != DLCL_OK || dlcl_loader_shard(l[r], r, ranks) != DLCL_OK ||
            dlcl_loader_begin_epoch_at(l[r], epoch, first) != DLCL_OK)
            snprintf(why, sizeof why, "rank %d of %d: %s", r, ranks, dlcl_last_error());
        else if (dlcl_loader_batches(l[r]) != first + (size_t)ref.batches)
            snprintf(why, sizeof why, "rank %d of %d: %zu batches, not %zu", r, ranks, dlcl_loader_batches(l[r]),
                     first + (size_t)ref.batches);
    }
    for (int b = 0; b <= ref.batches && !why[0]; b++) { /* b == ref.batches: the end of the epoch */
        int g = b < ref.batches ? ref.count[b] : 0;
        for (int r = 0; r < ranks && !why[0]; r++) {
            const void *x = NULL;
            const int32_t *y = NULL;
            int count = -1, global = -1;
            dlcl_status st = dlcl_loader_next_shard(l[r], &x, &y, &count, &global);
            int lo = g * r / ranks, hi = g * (r + 1) / ranks;
            size_t at = b < ref.batches ? (size_t)(ref.at[b] + lo) : 0;
            if (st != DLCL_OK)
                snprintf(why, sizeof why, "batch %d, rank %d of %d: %s", b, r, ranks, dlcl_last_error());
            else if (count != hi - lo || global != g)
                snprintf(why, sizeof why, "batch %d, rank %d of %d: %d of %d samples, want %d of %d", b, r, ranks,
                         count, global, hi - lo, g);
            else if (count > 0 && (memcmp(x, ref.x + at * sx, (size_t)count * sx) != 0 ||
                                   memcmp(y, ref.y + at * sy, (size_t)count * sy) != 0))
                snprintf(why, sizeof why, "batch %d, rank %d of %d: samples %d..%d differ from the unsharded batch's",
                         b, r, ranks, lo, hi - 1);
        }
    }
    for (int r = 0; r < ranks; r++) dlcl_loader_free(l[r]);
    free(ref.x);
    free(ref.y);
    return why[0] ? why : NULL;
}

/* Every split, epochs 0 and 1, from every batch (and from the end), over 1, 2 and 3 ranks:
 * starting at the last batch makes an empty share the first a rank sees. */
static const char *check_all_shards(const char *cfg, size_t sx, size_t sy)
{
    dlcl_net *net = NULL;
    if (dlcl_net_create_inference(cfg, NULL, 0, NULL, &net) != DLCL_OK) {
        snprintf(why, sizeof why, "%s: %s", cfg, dlcl_last_error());
        return why;
    }
    const char *bad = NULL;
    for (int split = 0; split < DLCL_SPLIT_COUNT && !bad; split++) {
        dlcl_loader *l = NULL;
        if (dlcl_loader_create(net, (dlcl_split)split, &l) != DLCL_OK) {
            snprintf(why, sizeof why, "%s: %s", cfg, dlcl_last_error());
            bad = why;
        }
        size_t batches = dlcl_loader_batches(l);
        dlcl_loader_free(l);
        for (int epoch = 0; epoch < 2 && !bad; epoch++)
            for (size_t first = 0; first <= batches && !bad; first++)
                for (int ranks = 1; ranks <= MAX_RANKS && !bad; ranks++)
                    if ((bad = check_shards(net, (dlcl_split)split, epoch, first, ranks, sx, sy)) != NULL)
                        printf("# %s, epoch %d from batch %zu, %d ranks\n", split ? "test" : "train", epoch, first,
                               ranks);
    }
    dlcl_net_free(net);
    return bad;
}

/* An image net's config in dir: [net] batch and the [data] lines. */
static const char *image_net(const char *dir, const char *input, int classes, int batch, const char *data)
{
    char text[2048];
    snprintf(text, sizeof text,
             "[net]\ninput = %s\nclasses = %d\nbatch = %d\nseed = 11\n[optimizer]\ntype = sgd\nlearning_rate = 0.1\n"
             "[data]\n%s\n[fc]\ntype = dense\nunits = %d\n",
             input, classes, batch, data, classes);
    const char *p = pathf("%s/net%d.ini", dir, batch);
    return t_write_file(p, text, strlen(text)) ? p : NULL;
}

/* 17 samples in batches of 8 (8, 8, 1: the last has fewer samples than ranks) and of 5 (5,
 * 5, 5, 2: a short last batch, empty for one of 3 ranks). */
static const int batch_sizes[] = {8, 5};

static void synthetic_image_shards_concatenate_to_the_unsharded_batches(void)
{
    const char *dir = t_tmpdir(1);
    for (size_t i = 0; i < T_COUNT(batch_sizes); i++) {
        const char *cfg = image_net(dir, "3,5,4", 7, batch_sizes[i],
                                    "format = synthetic\ntrain_samples = 17\ntest_samples = 17\nrandom_crop = 1\n"
                                    "flip = 1\nworkers = 3");
        const char *bad = check_all_shards(cfg, 3 * 5 * 4 * sizeof(float), sizeof(int32_t));
        T_CHECK(bad == NULL, "batch %d: %s", batch_sizes[i], bad);
    }
}

/* An IDX file of rank `rank` (uint8) with dims; returns its path. */
static const char *write_idx(const char *path, int rank, const uint32_t *dims, const uint8_t *data, size_t n)
{
    uint8_t *b = malloc(4 + 4 * (size_t)rank + n);
    if (b == NULL) return NULL;
    b[0] = b[1] = 0;
    b[2] = 8;
    b[3] = (uint8_t)rank;
    for (int i = 0; i < rank; i++)
        for (int k = 0; k < 4; k++) b[4 + 4 * i + k] = (uint8_t)(dims[i] >> (24 - 8 * k));
    memcpy(b + 4 + 4 * rank, data, n);
    bool ok = t_write_file(path, b, 4 + 4 * (size_t)rank + n);
    free(b);
    return ok ? path : NULL;
}

static void idx_image_shards_concatenate_to_the_unsharded_batches(void)
{
    const char *dir = t_tmpdir(1);
    uint8_t px[17 * 6 * 6], lb[17];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 37 + i / 36);
    for (int i = 0; i < 17; i++) lb[i] = (uint8_t)(i * 3 % 10);
    T_CHECK(write_idx(pathf("%s/images.idx", dir), 3, (uint32_t[]){17, 6, 6}, px, sizeof px) &&
                write_idx(pathf("%s/labels.idx", dir), 1, (uint32_t[]){17}, lb, sizeof lb),
            "write");
    for (size_t i = 0; i < T_COUNT(batch_sizes); i++) {
        const char *cfg = image_net(dir, "1,6,6", 10, batch_sizes[i],
                                    "format = idx\ntrain_images = images.idx\ntrain_labels = labels.idx\n"
                                    "test_images = images.idx\ntest_labels = labels.idx\nrandom_crop = 2\nflip = 1\n"
                                    "mean = 0.5\nstd = 0.25\nworkers = 2");
        const char *bad = check_all_shards(cfg, 6 * 6 * sizeof(float), sizeof(int32_t));
        T_CHECK(bad == NULL, "batch %d: %s", batch_sizes[i], bad);
    }
}

/* A folder source decodes one file per task (grain 1), so the workers split each share. */
static void folder_image_shards_concatenate_to_the_unsharded_batches(void)
{
    const char *dir = t_tmpdir(1);
    char root[700]; /* pathf's buffers rotate */
    snprintf(root, sizeof root, "%s/img", dir);
    mkdir(root, 0755);
    for (int c = 0; c < 3; c++) mkdir(pathf("%s/c%d", root, c), 0755);
    for (int i = 0; i < 17; i++)
        T_CHECK(write_image(pathf("%s/c%d/%02d.png", root, i % 3, i), 8 + i % 3, 7 + i % 4, i, 0), "write image %d",
                i);
    for (size_t i = 0; i < T_COUNT(batch_sizes); i++) {
        const char *cfg = image_net(dir, "3,6,6", 3, batch_sizes[i],
                                    "format = folder\ntrain = img\ntest = img\nrandom_resized_crop = 1\nflip = 1\n"
                                    "resize = 6\ncrop = 6\nworkers = 3");
        const char *bad = check_all_shards(cfg, 3 * 6 * 6 * sizeof(float), sizeof(int32_t));
        T_CHECK(bad == NULL, "batch %d: %s", batch_sizes[i], bad);
    }
}

/* A token net over windows of T = 8: an embedding and a dense layer at every position. */
#define T_CTX 8
static const char *token_net(const char *dir, int vocab, int batch, const char *data)
{
    char text[2048];
    snprintf(text, sizeof text,
             "[net]\ninput = %d\nclasses = %d\nbatch = %d\nseed = 5\n[optimizer]\ntype = sgd\nlearning_rate = 0.1\n"
             "[data]\n%s\n[e]\ntype = embedding\nvocab = %d\ndim = 4\n[o]\ntype = dense\nunits = %d\n",
             T_CTX, vocab, batch, data, vocab, vocab);
    const char *p = pathf("%s/tok%d.ini", dir, batch);
    return t_write_file(p, text, strlen(text)) ? p : NULL;
}

/* Synthetic tokens: the test split's 17 windows end in a short batch; the training split's
 * are whole batches of random windows. Text: 17 random training windows of a file's bytes. */
static void token_window_shards_concatenate_to_the_unsharded_batches(void)
{
    const char *dir = t_tmpdir(1);
    char text[1000];
    for (size_t i = 0; i < sizeof text; i++) text[i] = (char)(' ' + (i * 7 + i / 13) % 90);
    T_CHECK(t_write_file(pathf("%s/text.txt", dir), text, sizeof text), "write");
    size_t sx = T_CTX * sizeof(int32_t);
    for (size_t i = 0; i < T_COUNT(batch_sizes); i++) {
        const char *bad = check_all_shards(token_net(dir, 23, batch_sizes[i],
                                                     "format = synthetic\ntrain_samples = 17\ntest_samples = 17"),
                                           sx, sx);
        T_CHECK(bad == NULL, "synthetic tokens, batch %d: %s", batch_sizes[i], bad);
        bad = check_all_shards(token_net(dir, 256, batch_sizes[i],
                                         "format = text\ntrain = text.txt\ntest = text.txt\ntrain_samples = 17\n"
                                         "test_samples = 17"),
                               sx, sx);
        T_CHECK(bad == NULL, "text, batch %d: %s", batch_sizes[i], bad);
    }
}

/* Bad ranks are refused naming the argument; dlcl_loader_next refuses a loader sharded over
 * several ranks (an empty share would end its epoch early); a shard starts with the next
 * epoch; ranks = 1 is the unsharded loader. */
static void shard_arguments_are_checked_and_next_refuses_a_sharded_loader(void)
{
    const char *dir = t_tmpdir(1);
    const char *cfgs[2] = {image_net(dir, "3,5,4", 7, 8, "format = synthetic\ntrain_samples = 17\ntest_samples = 17"),
                           token_net(dir, 23, 8, "format = synthetic\ntrain_samples = 17\ntest_samples = 17")};
    for (int k = 0; k < 2; k++) {
        dlcl_net *net = NULL;
        dlcl_loader *l = NULL;
        T_OK(dlcl_net_create_inference(cfgs[k], NULL, 0, NULL, &net));
        dlcl_status st = dlcl_loader_create(net, DLCL_SPLIT_TEST, &l);
        const void *x;
        const int32_t *y;
        int count = -1, global = -1;
        static const struct {
            int rank, ranks;
            const char *msg;
        } bad[] = {
            {0, 0, "dlcl_loader_shard: ranks = 0; there must be at least one"},
            {0, -3, "dlcl_loader_shard: ranks = -3; there must be at least one"},
            {-1, 2, "dlcl_loader_shard: rank -1 is not one of the ranks 0 .. 1"},
            {2, 2, "dlcl_loader_shard: rank 2 is not one of the ranks 0 .. 1"},
        };
        bool refused = st == DLCL_OK, ok = st == DLCL_OK;
        for (size_t i = 0; i < T_COUNT(bad) && refused; i++) {
            refused &= t_err_matches(dlcl_loader_shard(l, bad[i].rank, bad[i].ranks), DLCL_ERR_INVALID_ARG, bad[i].msg);
            if (!refused) printf("# case %zu: %s\n", i, dlcl_last_error());
        }
        refused &= t_err_matches(dlcl_loader_shard(NULL, 0, 1), DLCL_ERR_INVALID_ARG, "dlcl_loader_shard");
        refused &= t_err_matches(dlcl_loader_next_shard(l, &x, &y, NULL, &global), DLCL_ERR_INVALID_ARG,
                                 "dlcl_loader_next_shard: arguments must not be NULL");
        /* the bad calls changed nothing; ranks = 1 is plain batches either way */
        ok &= dlcl_loader_begin_epoch(l, 0) == DLCL_OK && dlcl_loader_next(l, &x, &y, &count) == DLCL_OK && count == 8;
        ok &= dlcl_loader_shard(l, 0, 1) == DLCL_OK && dlcl_loader_next(l, &x, &y, &count) == DLCL_OK && count == 8;
        /* mid-epoch, a shard waits for the next epoch */
        ok &= dlcl_loader_shard(l, 1, 2) == DLCL_OK &&
              dlcl_loader_next_shard(l, &x, &y, &count, &global) == DLCL_OK && count == 1 && global == 1;
        refused &= t_err_matches(dlcl_loader_next(l, &x, &y, &count), DLCL_ERR_INVALID_ARG,
                                 "sharded over 2 ranks: use dlcl_loader_next_shard");
        ok &= dlcl_loader_begin_epoch(l, 0) == DLCL_OK &&
              dlcl_loader_next_shard(l, &x, &y, &count, &global) == DLCL_OK && count == 4 && global == 8;
        refused &= t_err_matches(dlcl_loader_next(l, &x, &y, &count), DLCL_ERR_INVALID_ARG,
                                 "dlcl_loader_next_shard");
        dlcl_loader_free(l);
        dlcl_net_free(net);
        T_CHECK(refused, "%s loader: a bad call was not refused as expected: %s", k ? "token" : "image",
                dlcl_last_error());
        T_CHECK(ok, "%s loader: count %d global %d: %s", k ? "token" : "image", count, global, dlcl_last_error());
    }
}

static const t_case cases[] = {
    T_CASE(synthetic_image_shards_concatenate_to_the_unsharded_batches),
    T_CASE(idx_image_shards_concatenate_to_the_unsharded_batches),
    T_CASE(folder_image_shards_concatenate_to_the_unsharded_batches),
    T_CASE(token_window_shards_concatenate_to_the_unsharded_batches),
    T_CASE(shard_arguments_are_checked_and_next_refuses_a_sharded_loader),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
