/* Every public function given NULL, a bad value or a foreign handle returns an error
 * status with a message, and never crashes; every _free accepts NULL. */
#include <string.h>

#include "test.h"

#define T_BAD(call, status)                                                                        \
    do {                                                                                           \
        dlcl_status t__s = (call);                                                                 \
        T_CHECK(t__s == (status) && dlcl_last_error()[0] != '\0', "%s: got %s (%s)", #call,        \
                dlcl_status_str(t__s), dlcl_last_error());                                         \
    } while (0)

/* Like T_BAD for calls whose cleanup must still run: prints and returns false on a mismatch. */
static bool refused(dlcl_status s, const char *what, const char *substr)
{
    if (s == DLCL_ERR_INVALID_ARG && strstr(dlcl_last_error(), substr) != NULL) return true;
    printf("# %s: want DLCL_ERR_INVALID_ARG with \"%s\", got %s: %s\n", what, substr, dlcl_status_str(s),
           dlcl_last_error());
    return false;
}

static void status_names_are_distinct(void)
{
    for (int i = 0; i < DLCL_STATUS_COUNT; i++) {
        const char *a = dlcl_status_str((dlcl_status)i);
        T_CHECK(a != NULL && strncmp(a, "DLCL_", 5) == 0, "status %d: %s", i, a ? a : "NULL");
        for (int j = 0; j < i; j++)
            T_CHECK(strcmp(a, dlcl_status_str((dlcl_status)j)) != 0, "%d and %d share a name", i, j);
    }
    T_CHECK(strcmp(dlcl_status_str(DLCL_STATUS_COUNT), "unknown status") == 0, "out of range");
    T_CHECK(strcmp(dlcl_status_str((dlcl_status)-1), "unknown status") == 0, "negative");
}

static void free_functions_accept_null(void)
{
    dlcl_ctx_free(NULL);
    dlcl_tensor_free(NULL);
    dlcl_devices_free(NULL);
    dlcl_net_free(NULL);
    dlcl_loader_free(NULL);
    dlcl_class_names_free(NULL);
    T_CHECK(dlcl_ctx_device_name(NULL) == NULL && dlcl_ctx_kernel_dir(NULL) == NULL && dlcl_net_ctx(NULL) == NULL,
            "NULL queries");
    T_CHECK(dlcl_tensor_ndim(NULL) == -1 && dlcl_tensor_dim(NULL, 0) == -1 && dlcl_tensor_numel(NULL) == -1,
            "tensor queries");
    T_CHECK(dlcl_loader_samples(NULL) == 0 && dlcl_loader_batches(NULL) == 0 && dlcl_loader_classes(NULL) == 0 &&
                dlcl_loader_class_name(NULL, 0) == NULL,
            "loader queries");
}

static void context_functions_reject_null(void)
{
    dlcl_ctx_stats st;
    T_BAD(dlcl_ctx_create(NULL, NULL), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_ctx_get_stats(NULL, &st), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_ctx_get_stats(t_ctx(), NULL), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_ctx_build_all(NULL), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_ctx_finish(NULL), DLCL_ERR_INVALID_ARG);
    size_t n;
    dlcl_device_info *list = NULL;
    T_BAD(dlcl_devices_list(NULL, NULL, &n, NULL), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_devices_list(NULL, &list, NULL, NULL), DLCL_ERR_INVALID_ARG);
    T_CHECK(list == NULL, "list written on failure");
}

static void tensor_functions_reject_bad_arguments(void)
{
    dlcl_ctx *ctx = t_ctx();
    T_CHECK(ctx != NULL, "no context");
    int64_t dims[DLCL_MAX_DIMS + 1] = {2, 3, 1, 1, 1, 1, 1, 1, 1}, zero[2] = {2, 0}, neg[1] = {-4};
    dlcl_tensor *t = NULL;
    float buf[8];
    T_BAD(dlcl_tensor_create(NULL, 1, dims, &t), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_tensor_create(ctx, 1, NULL, &t), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_tensor_create(ctx, 1, dims, NULL), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_tensor_create(ctx, 0, dims, &t), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_tensor_create(ctx, DLCL_MAX_DIMS + 1, dims, &t), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_tensor_create(ctx, 2, zero, &t), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_tensor_create(ctx, 1, neg, &t), DLCL_ERR_INVALID_ARG);
    T_CHECK(t == NULL, "handle written on failure");
    int64_t big[2] = {INT64_MAX / 2, 4};
    T_BAD(dlcl_tensor_create(ctx, 2, big, &t), DLCL_ERR_OUT_OF_MEMORY); /* element count overflows */
    T_BAD(dlcl_tensor_upload(NULL, buf, 0, 1), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_tensor_download(NULL, buf, 0, 1), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_tensor_fill(NULL, 1), DLCL_ERR_INVALID_ARG);
    T_OK(dlcl_tensor_create(ctx, 2, dims, &t));
    dlcl_status s1 = dlcl_tensor_upload(t, buf, 4, 3);   /* 4 + 3 > 6 */
    dlcl_status s2 = dlcl_tensor_download(t, NULL, 0, 2);
    dlcl_status s3 = dlcl_tensor_download(t, buf, 7, 0); /* offset past the end */
    dlcl_status s4 = dlcl_tensor_upload(t, NULL, 0, 2);
    dlcl_status s5 = dlcl_tensor_upload(t, buf, 2, SIZE_MAX); /* offset + count wraps */
    dlcl_status s6 = dlcl_tensor_download(t, buf, SIZE_MAX, 2);
    dlcl_status s7 = dlcl_tensor_upload(t, buf, 6, 0);         /* empty range at the end: allowed */
    T_CHECK(dlcl_tensor_dim(t, 2) == -1 && dlcl_tensor_dim(t, -1) == -1, "dim out of range");
    dlcl_tensor_free(t);
    T_CHECK(s1 == DLCL_ERR_INVALID_ARG && s2 == DLCL_ERR_INVALID_ARG && s3 == DLCL_ERR_INVALID_ARG &&
                s4 == DLCL_ERR_INVALID_ARG && s5 == DLCL_ERR_INVALID_ARG && s6 == DLCL_ERR_INVALID_ARG,
            "ranges: %s %s %s %s %s %s", dlcl_status_str(s1), dlcl_status_str(s2), dlcl_status_str(s3),
            dlcl_status_str(s4), dlcl_status_str(s5), dlcl_status_str(s6));
    T_CHECK(s7 == DLCL_OK, "empty range: %s", dlcl_status_str(s7));
}

static void gemm_rejects_foreign_and_null_handles(void)
{
    dlcl_ctx *ctx = t_ctx(), *other = NULL;
    T_CHECK(ctx != NULL, "no context");
    T_OK(dlcl_ctx_create(NULL, &other));
    int64_t d = 4;
    dlcl_tensor *a = NULL, *b = NULL, *foreign = NULL;
    dlcl_status s = dlcl_tensor_create(ctx, 1, &d, &a);
    if (s == DLCL_OK) s = dlcl_tensor_create(ctx, 1, &d, &b);
    if (s == DLCL_OK) s = dlcl_tensor_create(other, 1, &d, &foreign);
    bool all = s == DLCL_OK;
    all &= refused(dlcl_sgemm(ctx, 0, 0, 2, 2, 2, 1, a, 0, 2, b, 0, 2, 0, foreign, 0, 2), "C from another context",
                   "another context");
    all &= refused(dlcl_sgemm(NULL, 0, 0, 2, 2, 2, 1, a, 0, 2, b, 0, 2, 0, b, 0, 2), "NULL ctx", "ctx is NULL");
    all &= refused(dlcl_sgemm(ctx, 0, 0, 2, 2, 2, 1, NULL, 0, 2, b, 0, 2, 0, b, 0, 2), "NULL A", "for A");
    all &= refused(dlcl_sgemm(ctx, 0, 0, 2, 2, 2, 1, a, 0, 2, b, 0, 2, 0, NULL, 0, 2), "NULL C", "for C");
    all &= refused(dlcl_sgemm(ctx, (dlcl_transpose)7, 0, 2, 2, 2, 1, a, 0, 2, b, 0, 2, 0, b, 0, 2), "transpose 7",
                   "transpose");
    all &= refused(dlcl_sgemm(ctx, 0, 0, 2, 2, 0, 1, a, 0, 2, b, 0, 2, 0, b, 0, 2), "k = 0", "k must");
    /* the batched entry point checks the same things */
    all &= refused(dlcl_sgemm_strided_batched(NULL, 0, 0, 2, 2, 2, 1, a, 0, 2, 0, b, 0, 2, 0, 0, b, 0, 2, 0, 1),
                   "batched, NULL ctx", "ctx is NULL");
    all &= refused(dlcl_sgemm_strided_batched(ctx, 0, 0, 2, 2, 2, 1, a, 0, 2, 0, NULL, 0, 2, 0, 0, b, 0, 2, 0, 1),
                   "batched, NULL B", "for B");
    all &= refused(dlcl_sgemm_strided_batched(ctx, 0, 0, 2, 2, 2, 1, foreign, 0, 2, 0, b, 0, 2, 0, 0, b, 0, 2, 0, 1),
                   "batched, A from another context", "another context");
    all &= refused(dlcl_sgemm_strided_batched(ctx, 0, (dlcl_transpose)-1, 2, 2, 2, 1, a, 0, 2, 0, b, 0, 2, 0, 0, b, 0,
                                              2, 0, 1),
                   "batched, transpose -1", "transpose");
    dlcl_tensor_free(a), dlcl_tensor_free(b), dlcl_tensor_free(foreign);
    dlcl_ctx_free(other);
    T_CHECK(s == DLCL_OK, "%s", dlcl_last_error());
    T_CHECK(all, "a bad GEMM call was not refused as it should be (see above)");
}

static void net_and_loader_functions_reject_null(void)
{
    dlcl_net *net = NULL;
    dlcl_loader *l = NULL;
    dlcl_net_info info;
    dlcl_layer_info li;
    float x[4];
    int32_t y[1];
    double loss;
    int c;
    const void *px;
    const int32_t *py;
    T_BAD(dlcl_net_create(NULL, NULL, 0, NULL, &net), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_net_create("x.ini", NULL, 0, NULL, NULL), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_net_create("x.ini", NULL, 2, NULL, &net), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_net_create("/nonexistent/x.ini", NULL, 0, NULL, &net), DLCL_ERR_NOT_FOUND);
    T_BAD(dlcl_net_get_info(NULL, &info), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_net_layer_info(NULL, 0, &li), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_net_begin_epoch(NULL, 0, NULL), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_net_train_batch(NULL, x, y, 1, &loss, &c), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_net_eval_batch(NULL, x, y, 1, &loss, &c, NULL), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_net_predict(NULL, x, 1, x), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_net_logits(NULL, x, 1, x), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_net_save(NULL, "x", 0), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_net_load(NULL, "x", 0, NULL), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_net_load_image(NULL, "x.png", x), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_loader_create(NULL, DLCL_SPLIT_TRAIN, &l), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_loader_create(NULL, DLCL_SPLIT_TRAIN, NULL), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_loader_begin_epoch(NULL, 0), DLCL_ERR_INVALID_ARG);
    T_BAD(dlcl_loader_next(NULL, &px, &py, &c), DLCL_ERR_INVALID_ARG);
    char **names;
    int n_names;
    T_BAD(dlcl_net_class_names(NULL, &names, &n_names), DLCL_ERR_INVALID_ARG);
    dlcl_layer_timing lt[1];
    double lms, sms;
    T_BAD(dlcl_net_profile(NULL, x, y, 1, 1, lt, &lms, &sms), DLCL_ERR_INVALID_ARG);
}

static const t_case cases[] = {
    T_CASE(status_names_are_distinct),
    T_CASE(free_functions_accept_null),
    T_CASE(context_functions_reject_null),
    T_CASE(tensor_functions_reject_bad_arguments),
    T_CASE(gemm_rejects_foreign_and_null_handles),
    T_CASE(net_and_loader_functions_reject_null),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
