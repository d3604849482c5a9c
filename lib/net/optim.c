/* The optimizer table, the [optimizer] section, the learning rate per step and gradient
 * clipping (optim.h). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim.h"

/* Defined unsized: a row too many or too few conflicts with the sized declaration in optim.h. */
const char *const optim_schedule_names[] = {"none", "step", "cosine", NULL};
const char *const optim_no_decay_names[] = {"bias", "batchnorm", "layernorm", NULL};
_Static_assert(DLCL__ARRAY_LEN(optim_schedule_names) == OPTIM_SCHED_COUNT + 1, "one name per schedule");
_Static_assert(DLCL__ARRAY_LEN(optim_no_decay_names) == OPTIM_NO_DECAY_COUNT + 1, "one name per no_decay kind");

/* Keys every type accepts. */
static const char *const common_keys[] = {"type",          "learning_rate",  "weight_decay", "schedule",
                                          "step_size",     "gamma",          "warmup_steps", "clip_grad_norm",
                                          "no_decay",      "label_smoothing", "accumulate",   NULL};

static dlcl_status bad_entry(const cfg *c, const cfg_section *s, const char *key, const char *fmt, ...)
    DLCL__PRINTF(4, 5);

/* "<file>:<line>: [optimizer] key = 'value': <what>" */
static dlcl_status bad_entry(const cfg *c, const cfg_section *s, const char *key, const char *fmt, ...)
{
    const cfg_entry *e = cfg_find(s, key);
    char what[384], where[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return dlcl__err(DLCL_ERR_CONFIG, "%s: [%s] %s = '%s': %s",
                     cfg_where(c, e ? e->line : s->line, where, sizeof where), s->name, key, e ? e->value : "", what);
}

/* ------------------------------------------------------------------ sgd */

static const char *const sgd_keys[] = {"momentum", "nesterov", NULL};
static const char *const sgd_state[] = {"momentum_buffer", NULL};

static dlcl_status sgd_parse(const cfg *c, const cfg_section *s, net_optim *o)
{
    dlcl_status st;
    if ((st = cfg_get_float(c, s, "momentum", 0, 0.0, 0.0, 1.0, &o->momentum)) != DLCL_OK ||
        (st = cfg_get_bool(c, s, "nesterov", 0, 0, &o->nesterov)) != DLCL_OK)
        return st;
    if (o->nesterov && o->momentum <= 0.0) return bad_entry(c, s, "nesterov", "nesterov needs momentum > 0");
    return DLCL_OK;
}

static dlcl_status step_sgd(dlcl_ctx *ctx, const net_optim *o, op_buf params, op_buf grads, op_buf state,
                             size_t state_stride, size_t n, float lr, float weight_decay, uint64_t step, cl_mem gscale)
{
    (void)state_stride, (void)step;
    return op_sgd_step_scaled(ctx, params, grads, state, n, lr, (float)o->momentum, weight_decay, o->nesterov, gscale);
}

/* ------------------------------------------------------------------ adam, adamw */

static const char *const adam_keys[] = {"betas", "eps", NULL};
static const char *const adam_state[] = {"exp_avg", "exp_avg_sq", NULL};

/* betas = b1, b2: two numbers in [0, 1) */
static dlcl_status parse_betas(const cfg *c, const cfg_section *s, double *b1, double *b2)
{
    const char *v;
    dlcl_status st = cfg_get_str(c, s, "betas", 0, "0.9, 0.999", &v);
    if (st != DLCL_OK) return st;
    double b[2];
    const char *p = v;
    for (int i = 0; i < 2; i++) {
        char *end;
        errno = 0;
        b[i] = strtod(p, &end);
        bool ok = errno == 0 && end != p && isfinite(b[i]) && b[i] >= 0.0 && b[i] < 1.0;
        while (isspace((unsigned char)*end)) end++;
        if (!ok || *end != (i == 0 ? ',' : '\0'))
            return bad_entry(c, s, "betas", "expected two numbers in [0, 1), as betas = 0.9, 0.999");
        p = end + 1;
    }
    *b1 = b[0], *b2 = b[1];
    return DLCL_OK;
}

static dlcl_status adam_parse(const cfg *c, const cfg_section *s, net_optim *o)
{
    dlcl_status st = parse_betas(c, s, &o->beta1, &o->beta2);
    return st != DLCL_OK ? st : cfg_get_float(c, s, "eps", 0, 1e-8, 0.0, 1.0, &o->eps);
}

static dlcl_status step_adam_any(dlcl_ctx *ctx, const net_optim *o, op_buf params, op_buf grads, op_buf state,
                                  size_t state_stride, size_t n, float lr, float weight_decay, uint64_t step,
                                  cl_mem gscale, int decoupled)
{
    if (state.off > SIZE_MAX - state_stride)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "optim_step: state offset %zu + stride %zu overflows", state.off,
                         state_stride);
    return op_adam_step(ctx, params, grads, state, op_b(state.mem, state.off + state_stride), n, lr, (float)o->beta1,
                        (float)o->beta2, (float)o->eps, weight_decay, decoupled, step + 1, gscale);
}

static dlcl_status step_adam(dlcl_ctx *ctx, const net_optim *o, op_buf params, op_buf grads, op_buf state,
                              size_t state_stride, size_t n, float lr, float weight_decay, uint64_t step, cl_mem gscale)
{
    return step_adam_any(ctx, o, params, grads, state, state_stride, n, lr, weight_decay, step, gscale, 0);
}

static dlcl_status step_adamw(dlcl_ctx *ctx, const net_optim *o, op_buf params, op_buf grads, op_buf state,
                               size_t state_stride, size_t n, float lr, float weight_decay, uint64_t step, cl_mem gscale)
{
    return step_adam_any(ctx, o, params, grads, state, state_stride, n, lr, weight_decay, step, gscale, 1);
}

/* ------------------------------------------------------------------ the table */

#define STATE(names) (int)(DLCL__ARRAY_LEN(names) - 1), names

const optim_type optim_types[] = {
    [OPTIM_SGD] = {"sgd", sgd_keys, STATE(sgd_state), 0.01, 0.0, sgd_parse, step_sgd},
    [OPTIM_ADAM] = {"adam", adam_keys, STATE(adam_state), 1e-3, 0.0, adam_parse, step_adam},
    [OPTIM_ADAMW] = {"adamw", adam_keys, STATE(adam_state), 1e-3, 1e-2, adam_parse, step_adamw},
};
/* the same names in the same order (test_optim checks it) */
const char *const optim_type_names[] = {"sgd", "adam", "adamw", NULL};
_Static_assert(DLCL__ARRAY_LEN(optim_types) == OPTIM_TYPE_COUNT, "one row per optimizer type");
_Static_assert(DLCL__ARRAY_LEN(optim_type_names) == OPTIM_TYPE_COUNT + 1, "one name per optimizer type");

/* ------------------------------------------------------------------ [optimizer] */

static bool listed(const char *const *list, const char *key)
{
    for (; *list; list++)
        if (strcmp(*list, key) == 0) return true;
    return false;
}

/* Keys nobody takes: a key of another type says so, else "did you mean" from this type's. */
static dlcl_status check_keys(const cfg *c, const cfg_section *s, const optim_type *t)
{
    const char *known[32];
    size_t k = 0;
    for (const char *const *p = common_keys; *p; p++) known[k++] = *p;
    for (const char *const *p = t->keys; *p && k < DLCL__ARRAY_LEN(known) - 1; p++) known[k++] = *p;
    known[k] = NULL;
    for (size_t i = 0; i < s->count; i++) {
        const cfg_entry *e = &s->entries[i];
        if (listed(known, e->key)) continue;
        for (int j = 0; j < OPTIM_TYPE_COUNT; j++)
            if (listed(optim_types[j].keys, e->key)) {
                char where[64], own[128] = "";
                for (const char *const *p = t->keys; *p; p++)
                    snprintf(own + strlen(own), sizeof own - strlen(own), "%s%s", p == t->keys ? "" : ", ", *p);
                return dlcl__err(DLCL_ERR_CONFIG, "%s: [%s]: key '%s' belongs to type %s, not %s (%s's own keys: %s)",
                                 cfg_where(c, e->line, where, sizeof where), s->name, e->key, optim_types[j].name,
                                 t->name, t->name, own[0] ? own : "none");
            }
    }
    return cfg_check_unused(c, s, known);
}

/* no_decay = bias, batchnorm (either, both, or empty) */
static dlcl_status parse_no_decay(const cfg *c, const cfg_section *s, unsigned *out)
{
    const char *v;
    dlcl_status st = cfg_get_str(c, s, "no_decay", 0, "", &v);
    *out = 0;
    for (const char *p = v; st == DLCL_OK && *p;) {
        while (isspace((unsigned char)*p)) p++;
        size_t len = strcspn(p, ",");
        const char *next = p[len] == ',' ? p + len + 1 : p + len;
        while (len > 0 && isspace((unsigned char)p[len - 1])) len--;
        char item[32];
        snprintf(item, sizeof item, "%.*s", (int)(len < sizeof item ? len : sizeof item - 1), p);
        int k = 0;
        while (optim_no_decay_names[k] && strcmp(optim_no_decay_names[k], item) != 0) k++;
        if (optim_no_decay_names[k] == NULL) {
            const char *sug = cfg_suggest(item, optim_no_decay_names);
            return bad_entry(c, s, "no_decay", "unknown item '%s' (%s%s%sa list of: bias, batchnorm, layernorm)", item,
                             sug ? "did you mean '" : "", sug ? sug : "", sug ? "'? " : "");
        }
        *out |= 1u << k;
        p = next;
    }
    return st;
}

dlcl_status optim_parse(const cfg *c, net_optim *out)
{
    net_optim o = {.type = &optim_types[OPTIM_SGD], .lr = 0.01, .gamma = 0.1, .step_size = 1, .beta1 = 0.9,
                   .beta2 = 0.999, .eps = 1e-8, .accumulate = 1};
    *out = o;
    cfg_section *s = cfg_find_section(c, "optimizer");
    if (s == NULL) return DLCL_OK;
    int type, sched;
    long step_size, warmup, accumulate;
    dlcl_status st = cfg_get_enum(c, s, "type", 0, OPTIM_SGD, optim_type_names, &type);
    if (st != DLCL_OK) return st;
    o.type = &optim_types[type];
    if ((st = check_keys(c, s, o.type)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "learning_rate", 0, o.type->default_lr, 0.0, 1e6, &o.lr)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "weight_decay", 0, o.type->default_weight_decay, 0.0, 1e3, &o.weight_decay)) !=
            DLCL_OK ||
        (st = cfg_get_enum(c, s, "schedule", 0, OPTIM_SCHED_NONE, optim_schedule_names, &sched)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "step_size", 0, 1, 1, 1 << 20, &step_size)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "gamma", 0, 0.1, 0.0, 1e3, &o.gamma)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "warmup_steps", 0, 0, 0, 1L << 30, &warmup)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "clip_grad_norm", 0, 0.0, 0.0, 1e6, &o.clip_grad_norm)) != DLCL_OK ||
        (st = parse_no_decay(c, s, &o.no_decay)) != DLCL_OK ||
        (st = cfg_get_float(c, s, "label_smoothing", 0, 0.0, 0.0, 1.0, &o.label_smoothing)) != DLCL_OK ||
        (st = cfg_get_int(c, s, "accumulate", 0, 1, 1, 1 << 16, &accumulate)) != DLCL_OK ||
        (st = o.type->parse(c, s, &o)) != DLCL_OK)
        return st;
    o.schedule = (optim_schedule)sched;
    o.step_size = (int)step_size;
    o.warmup_steps = warmup;
    o.accumulate = (int)accumulate;
    *out = o;
    return DLCL_OK;
}

/* ------------------------------------------------------------------ learning rate, decay */

double optim_lr(const net_optim *o, int epoch, int epochs, uint64_t step)
{
    double v = o->lr;
    switch (o->schedule) {
    case OPTIM_SCHED_NONE: break;
    case OPTIM_SCHED_STEP:
        if (o->step_size > 0) v = o->lr * pow(o->gamma, (double)(epoch / o->step_size));
        break;
    case OPTIM_SCHED_COSINE:
        if (epochs > 0) v = o->lr * 0.5 * (1.0 + cos(M_PI * (double)epoch / (double)epochs));
        break;
    case OPTIM_SCHED_COUNT: break;
    }
    if (o->warmup_steps > 0 && step < (uint64_t)o->warmup_steps)
        v *= (double)(step + 1) / (double)o->warmup_steps;
    return v;
}

int optim_state_slots(const net_optim *o)
{
    return o->type == &optim_types[OPTIM_SGD] && o->momentum == 0.0 ? 0 : o->type->n_state;
}

bool optim_no_decay(const net_optim *o, const char *param_suffix, const char *layer_type)
{
    if ((o->no_decay >> OPTIM_NO_DECAY_BATCHNORM & 1u) && layer_type && strcmp(layer_type, "batchnorm") == 0)
        return true;
    if ((o->no_decay >> OPTIM_NO_DECAY_LAYERNORM & 1u) && layer_type && strcmp(layer_type, "layernorm") == 0)
        return true;
    if (!(o->no_decay >> OPTIM_NO_DECAY_BIAS & 1u) || param_suffix == NULL) return false;
    /* "bias", "c_attn.bias", and nn.LSTM's "bias_ih_l0" / "bias_hh_l0" */
    const char *dot = strrchr(param_suffix, '.'), *last = dot ? dot + 1 : param_suffix;
    return strncmp(last, "bias", 4) == 0 && (last[4] == '\0' || last[4] == '_');
}

/* ------------------------------------------------------------------ step, clipping */

dlcl_status optim_step(dlcl_ctx *ctx, const net_optim *o, op_buf params, op_buf grads, op_buf state,
                       size_t state_stride, size_t n, float lr, float weight_decay, uint64_t step, cl_mem gscale)
{
    if (ctx == NULL || o == NULL || o->type == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "optim_step: no optimizer");
    const int slots = optim_state_slots(o);
    if (slots > 0 && state.mem == NULL)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "optim_step: %s needs %d state slots per parameter, got no buffer",
                         o->type->name, slots);
    if (slots > 1 && state_stride < n)
        return dlcl__err(DLCL_ERR_INVALID_ARG, "optim_step: state stride %zu is below the range's %zu parameters",
                         state_stride, n);
    return o->type->step(ctx, o, params, grads, state, state_stride, n, lr, weight_decay, step, gscale);
}

size_t optim_clip_scratch(const dlcl_ctx *ctx, size_t n)
{
    size_t np = op_sum_squares_partials(ctx, n);
    return np > 0 ? np : 1;
}

/* Bytes of a buffer, for the checks below (0 on error). */
static size_t mem_bytes(cl_mem m)
{
    size_t bytes = 0;
    if (m == NULL || clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof bytes, &bytes, NULL) != CL_SUCCESS) return 0;
    return bytes;
}

dlcl_status optim_clip(dlcl_ctx *ctx, const net_optim *o, op_buf grads, size_t n, cl_mem scratch, cl_mem gscale)
{
    if (o->clip_grad_norm <= 0.0) return DLCL_OK;
    const size_t np = op_sum_squares_partials(ctx, n);
    if (mem_bytes(scratch) < optim_clip_scratch(ctx, n) * sizeof(float))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "optim_clip: scratch of %zu bytes, %zu gradients need %zu",
                         mem_bytes(scratch), n, optim_clip_scratch(ctx, n) * sizeof(float));
    if (mem_bytes(gscale) < OPTIM_GSCALE_FLOATS * sizeof(float))
        return dlcl__err(DLCL_ERR_INVALID_ARG, "optim_clip: gscale must hold %d floats", OPTIM_GSCALE_FLOATS);
    dlcl_status st = op_sum_squares(ctx, grads, n, op_b(scratch, 0));
    return st != DLCL_OK ? st : op_clip_coef(ctx, op_b(scratch, 0), np, (float)o->clip_grad_norm, gscale);
}
