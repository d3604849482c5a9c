/* dlcl-train config.ini [--set section.key=value]... [--resume FILE | --init WEIGHTS [--init-partial]]
 * Trains the network of an INI file, with a progress bar, a test evaluation, a checkpoint
 * and a metrics CSV line per epoch, and checkpoints inside epochs every [net]
 * checkpoint_every batches or checkpoint_seconds seconds. Ctrl-C saves and stops; --resume
 * continues from the exact batch where a checkpoint was taken, so a killed run loses at
 * most the batches since its last checkpoint. The last line is
 *   final: epochs=N test_accuracy=0.xxxx test_loss=0.xxxx train_seconds=S
 * Under mpirun (mpi_comm.h), N processes train the one model data-parallel: each rank a share
 * of every [net] batch, gradients summed over the ranks; rank 0 prints and writes the files. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "mpi_comm.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
    dp_on_signal();
}

static void usage(FILE *f)
{
    fprintf(f, "usage: dlcl-train CONFIG.ini [--set section.key=value]... [--resume CHECKPOINT]\n"
               "                  [--init WEIGHTS.safetensors [--init-partial]] [--expand]\n"
               "  --set      override any key of the config (repeatable), e.g. --set net.epochs=1;\n"
               "             --set vars.NAME=value changes a [vars] variable before the config is expanded\n"
               "  --expand   print the config with [vars], [for] blocks and if= expanded, and exit\n"
               "  --resume   continue from a checkpoint written by dlcl-train (weights + .state)\n"
               "  --init     start from pretrained weights (a dlcl, PyTorch or Hugging Face safetensors file)\n"
               "             with a fresh optimizer: fine-tuning; a tensor the file lacks is an error\n"
               "  --init-partial  with --init: tensors the file lacks keep their initial values (listed)\n"
               "environment: DLCL_DEVICE (platform:device or name), DLCL_KERNEL_DIR, DLCL_CACHE_DIR\n"
               "data-parallel: mpirun -np N dlcl-train CONFIG.ini ... (the same arguments)\n");
}

/* "dlcl-train: STATUS: message", naming the rank and host under mpirun. Returns 1. */
static int train_fail(dlcl_status s)
{
    fprintf(stderr, "dlcl-train: %s%s: %s\n", dp_who(), dlcl_status_str(s), dlcl_last_error());
    return 1;
}

/* The next batch, or under mpirun this rank's share of it (*count, maybe 0) and the whole
 * batch's size (*global, 0 at the end of the epoch). */
static dlcl_status next_batch(dlcl_loader *l, const void **x, const int32_t **y, int *count, int *global)
{
    if (dp_active()) return dlcl_loader_next_shard(l, x, y, count, global);
    dlcl_status s = dlcl_loader_next(l, x, y, count);
    *global = *count;
    return s;
}

typedef struct progress {
    int tty;
    double start, last_print;
    size_t total;
    int last_decile;
    const char *unit; /* "img/s", or "tok/s" for a sequence net */
} progress;

static void progress_update(progress *p, int epoch, int epochs, size_t done, size_t images, double loss, int final)
{
    double now = tool_now(), el = now - p->start;
    double rate = el > 0 ? (double)images / el : 0, frac = p->total ? (double)done / (double)p->total : 1;
    double eta = frac > 0 ? el * (1 - frac) / frac : 0;
    if (p->tty) {
        if (!final && now - p->last_print < 0.2) return;
        p->last_print = now;
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
        bar[30] = '\0';
        printf("\repoch %d/%d [%s] %zu/%zu  loss %.4f  %.0f %s  ETA %.0fs ", epoch + 1, epochs, bar, done, p->total,
               loss, rate, p->unit, eta);
        if (final) printf("\n");
        fflush(stdout);
    } else {
        int decile = (int)(frac * 10);
        if (decile == p->last_decile) return; /* plain lines: one per tenth of the epoch */
        p->last_decile = decile;
        printf("epoch %d/%d %3.0f%% batch %zu/%zu loss %.4f %.0f %s ETA %.0fs\n", epoch + 1, epochs, frac * 100, done,
               p->total, loss, rate, p->unit, eta);
        fflush(stdout);
    }
}

/* The mean loss and accuracy over the test split's labels (a sequence net's: every predicted
 * token, so the loss is the mean cross-entropy per token in nats). */
static dlcl_status evaluate(dlcl_net *net, dlcl_loader *test, int per, double *loss, double *acc)
{
    /* under mpirun every rank evaluates its share with rank 0's batch-norm statistics: the model saved */
    dlcl_status s = dp_active() ? dlcl_net_broadcast_buffers(net) : DLCL_OK;
    if (s == DLCL_OK) s = dlcl_loader_begin_epoch(test, 0);
    double sum = 0;
    long hits = 0, n = 0;
    const void *x;
    const int32_t *y;
    int count, global;
    while (s == DLCL_OK && (s = next_batch(test, &x, &y, &count, &global)) == DLCL_OK && global > 0) {
        double l = 0;
        int c = 0;
        if (count > 0) s = dlcl_net_eval_batch(net, x, y, count, &l, &c, NULL);
        sum += l;
        hits += c;
        n += (long)count * per;
    }
    double all[3] = {sum, (double)hits, (double)n}; /* each rank evaluated its share */
    dp_sum(all, 3);
    *loss = all[2] > 0 ? all[0] / all[2] : 0;
    *acc = all[2] > 0 ? all[1] / all[2] : 0;
    return s;
}

/* What every rank knows after a training step: the batch's sums over the ranks, whether to
 * stop (an interrupt on any rank) and whether to checkpoint (rank 0's clock decides, so all
 * take part). Without MPI, this process's own. */
typedef struct step_result {
    double loss, correct, labels;
    int stop, save;
    double now;
} step_result;

/* One step; *end at the end of the epoch. save_every is [net] checkpoint_seconds. */
static dlcl_status train_step(dlcl_net *net, dlcl_loader *train, int per, double last_ckpt, double save_every,
                              step_result *r, int *end)
{
    const void *x;
    const int32_t *y;
    int count, global, c = 0;
    double l = 0;
    dlcl_status s = next_batch(train, &x, &y, &count, &global);
    *end = s != DLCL_OK || global == 0;
    if (*end) return s;
    s = dp_active() ? dlcl_net_train_shard(net, x, y, count, global, &l, &c)
                    : dlcl_net_train_batch(net, x, y, count, &l, &c);
    if (s != DLCL_OK) return s;
    r->now = tool_now();
    double v[5] = {l, c, (double)count * per, interrupted, dp_rank() == 0 && r->now - last_ckpt >= save_every};
    dp_sum(v, 5);
    r->loss = v[0];
    r->correct = v[1];
    r->labels = v[2];
    r->stop = v[3] > 0;
    r->save = v[4] > 0;
    return DLCL_OK;
}

/* A checkpoint: under mpirun every rank first hands rank 0 its part of the state
 * (dlcl_net_gather_state), then rank 0 writes. pos NULL: an epoch's end (dlcl_net_save). */
static dlcl_status save(dlcl_net *net, const char *path, const dlcl_train_progress *pos, int epochs_done)
{
    dlcl_status s = dp_active() ? dlcl_net_gather_state(net) : DLCL_OK;
    if (s != DLCL_OK || dp_rank() != 0) return s;
    return pos ? dlcl_net_save_progress(net, path, pos) : dlcl_net_save(net, path, epochs_done);
}

/* Keeps the header and the lines of epochs 1..epochs of a metrics CSV (a resumed run writes
 * the later ones again); rewritten through a temporary file and a rename. */
static int csv_keep_epochs(const char *path, int epochs)
{
    FILE *in = fopen(path, "r");
    if (in == NULL) return 0; /* nothing to keep: a new file gets a header below */
    size_t n = strlen(path) + 8;
    char *tmp = malloc(n), line[4096];
    FILE *out = tmp ? (snprintf(tmp, n, "%s.tmp", path), fopen(tmp, "w")) : NULL;
    int first = 1, ok = out != NULL;
    while (ok && fgets(line, sizeof line, in)) {
        if (first || atoi(line) <= epochs) ok = fputs(line, out) >= 0;
        first = 0;
    }
    fclose(in);
    if (out && fclose(out) != 0) ok = 0;
    if (ok && rename(tmp, path) != 0) ok = 0;
    if (!ok && tmp) remove(tmp);
    free(tmp);
    return ok ? 0 : -1;
}

static char *metrics_path(const char *ckpt)
{
    size_t n = strlen(ckpt);
    const char *ext = ".safetensors";
    size_t e = strlen(ext);
    char *p = malloc(n + 5);
    if (p == NULL) return NULL;
    if (n > e && strcmp(ckpt + n - e, ext) == 0) n -= e;
    snprintf(p, n + 5, "%.*s.csv", (int)n, ckpt);
    return p;
}

static int train_main(int argc, char **argv)
{
    const char *config = NULL, *resume = NULL, *init = NULL;
    int expand = 0, init_partial = 0;
    const char **sets = calloc((size_t)argc + DP_MAX_OVERRIDES, sizeof *sets);
    size_t n_sets = 0;
    if (sets == NULL) return 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            sets[n_sets++] = argv[++i];
        } else if (strncmp(argv[i], "--set=", 6) == 0) {
            sets[n_sets++] = argv[i] + 6;
        } else if (strcmp(argv[i], "--expand") == 0) {
            expand = 1;
        } else if (strcmp(argv[i], "--resume") == 0 && i + 1 < argc) {
            resume = argv[++i];
        } else if (strcmp(argv[i], "--init") == 0 && i + 1 < argc) {
            init = argv[++i];
        } else if (strcmp(argv[i], "--init-partial") == 0) {
            init_partial = 1;
        } else if (argv[i][0] == '-' || config != NULL) {
            fprintf(stderr, "dlcl-train: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            config = argv[i];
        }
    }
    if (config == NULL || (init && resume) || (init_partial && !init)) {
        if (config != NULL)
            fprintf(stderr, "dlcl-train: %s\n", init && resume ? "--init starts a new run and --resume continues one: "
                                                                 "give one of them"
                                                               : "--init-partial goes with --init WEIGHTS");
        usage(stderr);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (expand) {
        char *text = NULL;
        dlcl_status es = dlcl_config_expand(config, sets, n_sets, &text);
        free(sets);
        if (es != DLCL_OK) return tool_fail("dlcl-train", es);
        fputs(text, stdout);
        free(text);
        return 0;
    }
    double t_start = tool_now();
    dlcl_ctx_params params = {.log = dp_log_fn()};
    dlcl_net *net = NULL;
    dlcl_loader *train = NULL, *test = NULL;
    FILE *csv = NULL;
    char *csv_path = NULL;
    int rc = 1;
    dlcl_net_info info = {0};
    dlcl_comm comm;
    dp_comm(&comm);
    n_sets = dp_add_overrides(config, sets, n_sets); /* under mpirun: this rank's device and data workers */
    dlcl_status s = dp_active() ? dlcl_net_create_replica(config, sets, n_sets, &params, &comm, &net)
                                : dlcl_net_create(config, sets, n_sets, &params, &net);
    if (s != DLCL_OK) goto fail;
    dlcl_net_get_info(net, &info);
    tool_print_summary(net, stdout);
    if (dp_active())
        printf("data-parallel: %d ranks, at most %d samples of each batch of %d on each; gradient buckets of %g MB%s\n",
               info.ranks, info.shard_batch, info.batch, info.bucket_mb,
               info.sync_batchnorm ? "; batch norm over the whole batch" : "");
    /* every data file is read and validated before the first step */
    if ((s = dlcl_loader_create(net, DLCL_SPLIT_TRAIN, &train)) != DLCL_OK) goto fail;
    if ((s = dlcl_loader_create(net, DLCL_SPLIT_TEST, &test)) != DLCL_OK) goto fail;
    if (dp_active() && ((s = dlcl_loader_shard(train, dp_rank(), dp_ranks())) != DLCL_OK ||
                        (s = dlcl_loader_shard(test, dp_rank(), dp_ranks())) != DLCL_OK))
        goto fail;
    if (info.labels_per_sample > 1)
        printf("data: %zu training and %zu test windows of %d tokens\n", dlcl_loader_samples(train),
               dlcl_loader_samples(test), info.labels_per_sample);
    else
        printf("data: %zu training and %zu test images\n", dlcl_loader_samples(train), dlcl_loader_samples(test));
    /* under mpirun rank 0 reads the weights and the position, and every rank takes them from it */
    dlcl_train_progress at = {0};
    if (init != NULL && dp_rank() == 0) {
        char missing[4096];
        if ((s = dlcl_net_init_from(net, init, init_partial, missing, sizeof missing)) != DLCL_OK) goto fail;
        printf("initialised from %s%s%s\n", init, missing[0] ? "; left at their initial values: " : "", missing);
    }
    if (resume != NULL && dp_rank() == 0) {
        if ((s = dlcl_net_load_progress(net, resume, &at)) != DLCL_OK) goto fail;
        if ((size_t)at.batches_done > dlcl_loader_batches(train)) {
            fprintf(stderr, "dlcl-train: %s%s stopped at batch %lld of an epoch, but this config has %zu batches per "
                            "epoch (was the batch size or the data changed?)\n",
                    dp_who(), resume, (long long)at.batches_done, dlcl_loader_batches(train));
            goto done;
        }
        printf("resumed from %s: %d epochs and %lld batches done\n", resume, at.epochs_done,
               (long long)at.batches_done);
    }
    if (dp_active()) {
        dp_broadcast(&at, sizeof at);
        if ((s = dlcl_net_broadcast_state(net)) != DLCL_OK) goto fail;
    }
    csv_path = metrics_path(info.checkpoint);
    if (dp_rank() == 0) {
        if (csv_path != NULL && resume && csv_keep_epochs(csv_path, at.epochs_done) != 0) {
            fprintf(stderr, "dlcl-train: %scannot rewrite metrics file %s\n", dp_who(), csv_path);
            goto done;
        }
        int csv_new = csv_path == NULL || !resume || access(csv_path, F_OK) != 0;
        if (csv_path == NULL || (csv = fopen(csv_path, csv_new ? "w" : "a")) == NULL) {
            fprintf(stderr, "dlcl-train: %scannot write metrics file %s\n", dp_who(),
                    csv_path ? csv_path : "(out of memory)");
            goto done;
        }
        if (csv_new) fprintf(csv, "epoch,train_loss,train_accuracy,test_loss,test_accuracy,learning_rate,seconds\n");
        fflush(csv);
    }
    printf("checkpoint: %s   metrics: %s   start-up %.2fs\n", info.checkpoint, csv_path, tool_now() - t_start);

    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    double train_seconds = 0, test_loss = 0, test_acc = 0;
    int tty = isatty(STDOUT_FILENO), epoch;
    double last_ckpt = tool_now();
    for (epoch = at.epochs_done; epoch < info.epochs; epoch++) {
        float lr;
        /* a resumed epoch starts at the checkpoint's batch with its running sums */
        dlcl_train_progress pos = {epoch, 0, 0.0, 0, 0};
        if (epoch == at.epochs_done) pos = at;
        if ((s = dlcl_net_begin_epoch(net, epoch, &lr)) != DLCL_OK) goto fail;
        if ((s = dlcl_loader_begin_epoch_at(train, epoch, (size_t)pos.batches_done)) != DLCL_OK) goto fail;
        /* a sequence net counts tokens (its labels) where an image net counts images */
        int per = info.labels_per_sample;
        progress p = {tty, tool_now(), 0, dlcl_loader_batches(train), -1, per > 1 ? "tok/s" : "img/s"};
        double t0 = tool_now();
        size_t run_images = 0;
        int stop = dp_any(interrupted), end = 0;
        while (!stop) {
            step_result r;
            if ((s = train_step(net, train, per, last_ckpt, info.checkpoint_seconds, &r, &end)) != DLCL_OK || end)
                break;
            pos.loss_sum += r.loss;
            pos.correct += (int64_t)r.correct;
            pos.images += (int64_t)r.labels;
            pos.batches_done++;
            run_images += (size_t)r.labels;
            progress_update(&p, epoch, info.epochs, (size_t)pos.batches_done, run_images,
                            pos.loss_sum / (double)pos.images, 0);
            if ((info.checkpoint_every > 0 && pos.batches_done % info.checkpoint_every == 0) || r.save) {
                if ((s = save(net, info.checkpoint, &pos, 0)) != DLCL_OK) break;
                last_ckpt = r.now;
            }
            stop = r.stop;
        }
        double loss_sum = pos.loss_sum;
        long hits = (long)pos.correct;
        size_t images = (size_t)pos.images, done_batches = (size_t)pos.batches_done;
        double epoch_seconds = tool_now() - t0;
        train_seconds += epoch_seconds;
        if (s != DLCL_OK) goto fail;
        if ((stop = dp_any(interrupted)) != 0) { /* also a signal during the epoch's last step */
            if (tty) printf("\n");
            printf("interrupted in epoch %d after batch %zu: saving %s (--resume %s continues from there)\n",
                   epoch + 1, done_batches, info.checkpoint, info.checkpoint);
            if ((s = save(net, info.checkpoint, &pos, 0)) != DLCL_OK) goto fail;
            rc = 130;
            goto done;
        }
        progress_update(&p, epoch, info.epochs, done_batches, run_images, images ? loss_sum / (double)images : 0, 1);
        if ((s = evaluate(net, test, per, &test_loss, &test_acc)) != DLCL_OK) goto fail;
        double train_loss = images ? loss_sum / (double)images : 0, train_acc = images ? (double)hits / (double)images : 0;
        lr = dlcl_net_learning_rate(net); /* after warm-up, the rate the epoch ended at */
        printf("epoch %d/%d: train_loss=%.4f train_accuracy=%.4f test_loss=%.4f test_accuracy=%.4f lr=%.5g %.1fs\n",
               epoch + 1, info.epochs, train_loss, train_acc, test_loss, test_acc, (double)lr, epoch_seconds);
        if (csv) {
            fprintf(csv, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f\n", epoch + 1, train_loss, train_acc, test_loss, test_acc,
                    (double)lr, epoch_seconds);
            fflush(csv);
        }
        if ((s = save(net, info.checkpoint, NULL, epoch + 1)) != DLCL_OK) goto fail;
        last_ckpt = tool_now();
    }
    if (at.epochs_done >= info.epochs &&
        (s = evaluate(net, test, info.labels_per_sample, &test_loss, &test_acc)) != DLCL_OK)
        goto fail;
    printf("final: epochs=%d test_accuracy=%.4f test_loss=%.4f train_seconds=%.1f\n", info.epochs, test_acc, test_loss,
           train_seconds);
    rc = 0;
    goto done;
fail:
    rc = train_fail(s);
    if (s == DLCL_ERR_NUMERIC && info.checkpoint != NULL)
        fprintf(stderr, "dlcl-train: training stopped; %s keeps the last good checkpoint (it was not overwritten)\n",
                info.checkpoint);
done:
    if (csv) fclose(csv);
    free(csv_path);
    dlcl_loader_free(train);
    dlcl_loader_free(test);
    dlcl_net_free(net);
    free(sets);
    return rc;
}

int main(int argc, char **argv)
{
    /* Under mpirun: MPI up, PoCL limited to this rank's cores, before any OpenCL call. */
    int dp = dp_init(&argc, &argv, "dlcl-train");
    int rc = train_main(argc, argv);
    if (dp) {
        /* A failed rank ends the job: the others may be waiting for it in a collective. A usage
         * error (2) is every rank's, and an interrupt (130) ends every rank after rank 0 saved. */
        if (rc != 0 && rc != 2 && rc != 130) dp_abort(rc);
        dp_finalize();
    }
    return rc;
}
