/* Internal to the ONNX import (onnx.c, onnx_fold.c, onnx_ops.c): the tensors of the graph as the
 * import sees them, the import's state, and the helpers the three files share (prefix ox_). */
#ifndef DLCL_ONNX_IMP_H
#define DLCL_ONNX_IMP_H

#include <stdbool.h>
#include <stddef.h>

#include "../layers/layer.h"
#include "io/onnx.pb-c.h"
#include "onnx.h"

#define ONNX_BATCH (-1e300) /* a shape value that is the batch size */
#define ONNX_MAX_FILE ((size_t)2 << 30)

typedef struct onnx_weight {
    char *section;
    const char *suffix; /* "weight", "bias", "running_mean", "running_var" */
    float *data;
    size_t n;
} onnx_weight;

struct onnx_weights {
    onnx_weight *w;
    size_t n, cap;
};

enum { OV_ACT, OV_INIT, OV_CONST };

/* A tensor of the ONNX graph as the import sees it. */
typedef struct oval {
    const char *name;
    int kind;
    const char *section;            /* OV_ACT: the dlcl node holding it ("input": the net's input) */
    int ndim, dims[LAYER_MAX_DIMS]; /* OV_ACT: per sample */
    const Onnx__TensorProto *t;     /* OV_INIT */
    int transposed;                 /* OV_INIT: the 2-D t read transposed (a folded Transpose) */
    double *cv;                     /* OV_CONST: values (ONNX_BATCH for the batch size) */
    size_t n;
    int rank;
} oval;

typedef struct imp {
    const char *path;
    cfg *c;
    Onnx__GraphProto *g;
    oval *v;
    size_t nv, capv;
    struct onnx_weights *w;
    bool *done;
    long batch; /* the model's static batch size, 0 if symbolic */
} imp;

dlcl_status ox_oom(void);
const char *ox_node_name(const Onnx__NodeProto *n);
/* "model.onnx: node 'Conv_3' (Conv): ..." */
dlcl_status ox_nerr(const imp *m, dlcl_status st, const Onnx__NodeProto *n, const char *fmt, ...) DLCL__PRINTF(4, 5);

/* the value table (onnx.c) */
oval *ox_find_val(const imp *m, const char *name);
oval *ox_new_val(imp *m, const char *name);
dlcl_status ox_def_act(imp *m, const char *name, const char *section, int ndim, const int *dims);
dlcl_status ox_def_const(imp *m, const char *name, const double *cv, size_t n, int rank);
/* Outputs beyond the first must be unused (Dropout's mask, MaxPool's indices, ...). */
dlcl_status ox_one_output(const imp *m, const Onnx__NodeProto *n);
/* The nodes reading tensor name, and the one reader when there is exactly one. */
int ox_readers(const imp *m, const char *name, Onnx__NodeProto **only, size_t *only_idx);

/* tensors, attributes, inputs (onnx_fold.c) */
bool ox_tensor_numel(const Onnx__TensorProto *t, size_t *n);
/* The values of an initializer or constant tensor as doubles (malloc'ed). */
dlcl_status ox_tensor_values(const imp *m, const Onnx__NodeProto *node, const Onnx__TensorProto *t, double **out,
                             size_t *count);
const Onnx__AttributeProto *ox_attr(const Onnx__NodeProto *n, const char *name);
long ox_attr_i(const Onnx__NodeProto *n, const char *name, long def);
double ox_attr_f(const Onnx__NodeProto *n, const char *name, double def);
const char *ox_attr_s(const Onnx__NodeProto *n, const char *name, const char *def, char *buf, size_t cap);
long ox_attr_same(const Onnx__NodeProto *n, const char *name, size_t want, long def);
dlcl_status ox_check_attrs(const imp *m, const Onnx__NodeProto *n, const char *const *known);
extern const char *const ox_no_attrs[];
oval *ox_input(const imp *m, const Onnx__NodeProto *n, size_t k);
dlcl_status ox_want_act(const imp *m, const Onnx__NodeProto *n, size_t k, oval **out);
dlcl_status ox_want_init(const imp *m, const Onnx__NodeProto *n, size_t k, const char *what, size_t numel,
                         float **out);
dlcl_status ox_want_const(const imp *m, const Onnx__NodeProto *n, size_t k, double **out, size_t *cnt, int *rank);
dlcl_status ox_add_weight(imp *m, const char *section, const char *suffix, float *data, size_t n);
dlcl_status ox_alias(imp *m, const Onnx__NodeProto *n, const oval *x);

/* translations folded on the host, no layer (onnx_fold.c) */
dlcl_status onnx_constant(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_shape(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_fold(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_identity(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_pad(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_transpose(imp *m, const Onnx__NodeProto *n);

/* translations into layer sections (onnx_ops.c) */
dlcl_status onnx_conv(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_gemm(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_matmul(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_batchnorm(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_layernorm(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_act(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_add(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_concat(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_pool(imp *m, const Onnx__NodeProto *n, int is_max);
dlcl_status onnx_global_avgpool(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_flatten(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_reshape(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_resize(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_softmax(imp *m, const Onnx__NodeProto *n);
dlcl_status onnx_div(imp *m, size_t i);

#endif
