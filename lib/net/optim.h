/* Optimizers: a table of types like the layer types (name, keys, state, parse, step), the
 * [optimizer] section, the learning rate per step and gradient-norm clipping.
 *
 * The net keeps three flat device regions; the optimizer sees two of them: the trainable
 * parameters with their gradients (same layout) and the optimizer state, which holds
 * n_state slots of one float per parameter, slot k of parameter i at state.off +
 * k * state_stride + i. Parameters with weight decay come first, those exempted by
 * no_decay after them, so a step is one optim_step per range, each with its own
 * weight_decay. A step reads the gradients as grad * gscale[0] when gscale is not NULL: the
 * factor optim_clip writes. */
#ifndef DLCL_OPTIM_H
#define DLCL_OPTIM_H

#include "../io/config.h"
#include "../ops/ops.h"

typedef struct net_optim net_optim;

typedef struct optim_type {
    const char *name;                /* "sgd", "adam", "adamw" */
    const char *const *keys;         /* the [optimizer] keys of this type alone, NULL-terminated */
    int n_state;                     /* per-parameter state slots at most (optim_state_slots) */
    const char *const *state_names;  /* PyTorch's names of the slots, n_state of them */
    double default_lr, default_weight_decay; /* torch.optim's defaults (sgd: dlcl's lr 0.01) */
    /* Reads the type's keys from the [optimizer] section s into o (marks them used). */
    dlcl_status (*parse)(const cfg *c, const cfg_section *s, net_optim *o);
    /* One launch over n parameters and their state; the arguments are optim_step's. */
    dlcl_status (*step)(dlcl_ctx *ctx, const net_optim *o, op_buf params, op_buf grads, op_buf state,
                        size_t state_stride, size_t n, float lr, float weight_decay, uint64_t step, cl_mem gscale);
} optim_type;

typedef enum optim_kind { OPTIM_SGD, OPTIM_ADAM, OPTIM_ADAMW, OPTIM_TYPE_COUNT } optim_kind;

/* Indexed by optim_kind; the names also as a NULL-terminated list, for cfg_get_enum. */
extern const optim_type optim_types[OPTIM_TYPE_COUNT];
extern const char *const optim_type_names[OPTIM_TYPE_COUNT + 1];

/* Epoch schedules of the learning rate. */
typedef enum optim_schedule {
    OPTIM_SCHED_NONE,
    OPTIM_SCHED_STEP,   /* StepLR(step_size, gamma): lr * gamma^(epoch / step_size) */
    OPTIM_SCHED_COSINE, /* CosineAnnealingLR(T_max=epochs, eta_min=0): lr * (1 + cos(pi * epoch / epochs)) / 2 */
    OPTIM_SCHED_COUNT
} optim_schedule;
extern const char *const optim_schedule_names[OPTIM_SCHED_COUNT + 1];

/* What no_decay may list: bit k of net_optim.no_decay is optim_no_decay_names[k]. */
typedef enum optim_no_decay_kind {
    OPTIM_NO_DECAY_BIAS,      /* parameter tensors named *.bias (and nn.LSTM's bias_ih_l0, ...) */
    OPTIM_NO_DECAY_BATCHNORM, /* every parameter of batchnorm layers */
    OPTIM_NO_DECAY_LAYERNORM, /* every parameter of layernorm layers (GPT-2 recipes decay only matrices) */
    OPTIM_NO_DECAY_COUNT
} optim_no_decay_kind;
extern const char *const optim_no_decay_names[OPTIM_NO_DECAY_COUNT + 1];

struct net_optim {
    const optim_type *type;
    double lr;                /* learning_rate: the base of the schedule */
    double weight_decay;      /* for parameters not exempted by no_decay */
    optim_schedule schedule;  /* per epoch */
    int step_size;            /* StepLR's */
    double gamma;             /* StepLR's */
    long warmup_steps;        /* linear warm-up over the first steps (0: none), see optim_lr */
    double clip_grad_norm;    /* max_norm of clip_grad_norm_ (0: no clipping) */
    unsigned no_decay;        /* bit set of optim_no_decay_kind */
    double label_smoothing;   /* of the training loss (op_softmax_xent_smooth); 0: none */
    int accumulate;           /* batches whose gradients are summed into one step (1: none) */
    /* the types' own keys */
    double momentum;          /* sgd */
    int nesterov;             /* sgd */
    double beta1, beta2, eps; /* adam, adamw: betas = 0.9, 0.999 and eps */
};

/* Reads the [optimizer] section of c. Without one: sgd with learning_rate 0.01 and nothing
 * else. Every key is checked (file:line errors, "did you mean"); a key of another type says
 * which type takes it. DLCL_ERR_CONFIG on a bad section. */
dlcl_status optim_parse(const cfg *c, net_optim *out);

/* The learning rate of a step: the epoch schedule (epochs: the run's length, for cosine)
 * times the warm-up min(1, (step + 1) / warmup_steps), step counted from 0 over the whole run
 * (torch's LambdaLR(lambda s: min(1, (s + 1) / w)) stepped per batch, composed with the
 * epoch scheduler stepped per epoch). */
double optim_lr(const net_optim *o, int epoch, int epochs, uint64_t step);

/* State slots per parameter the net must keep for o: o->type->n_state, but none for sgd
 * without momentum (torch keeps no momentum_buffer then). */
int optim_state_slots(const net_optim *o);

/* Whether a parameter gets weight decay 0: its name's last part (param_suffix: "bias", or a
 * whole name such as "fc.bias") under no_decay = bias, or any parameter of a layer whose
 * type is "batchnorm" under no_decay = batchnorm. */
bool optim_no_decay(const net_optim *o, const char *param_suffix, const char *layer_type);

/* One update of n parameters from params.off (gradients from grads.off), their state slots
 * at state.off + k * state_stride (state.mem may be NULL when optim_state_slots is 0),
 * learning rate lr (optim_lr) and weight_decay (o->weight_decay or 0 for a no_decay range).
 * step counts the updates made before this one, from 0 as in optim_lr (Adam's bias
 * correction uses step + 1). gscale: optim_clip's buffer, or NULL for the raw gradients. */
dlcl_status optim_step(dlcl_ctx *ctx, const net_optim *o, op_buf params, op_buf grads, op_buf state,
                       size_t state_stride, size_t n, float lr, float weight_decay, uint64_t step, cl_mem gscale);

/* Floats of gscale: the factor, then the norm. */
#define OPTIM_GSCALE_FLOATS 2

/* Floats of scratch optim_clip needs for n gradients on ctx's device. */
size_t optim_clip_scratch(const dlcl_ctx *ctx, size_t n);

/* With o->clip_grad_norm > 0, the gradient norm of the n gradients from grads.off into
 * gscale[1] and clip_grad_norm_'s factor min(1, max_norm / (norm + 1e-6)) into gscale[0], all
 * on the device; the caller passes gscale to optim_step. scratch holds optim_clip_scratch(n)
 * floats, gscale OPTIM_GSCALE_FLOATS. Without clipping it does nothing and the caller passes
 * NULL as optim_step's gscale. */
dlcl_status optim_clip(dlcl_ctx *ctx, const net_optim *o, op_buf grads, size_t n, cl_mem scratch, cl_mem gscale);

#endif
