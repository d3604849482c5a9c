/* [vars], [for NAME in A..B] ... [end], `if` and ${EXPR}: a raw config (cfg_load_raw)
 * expanded into plain sections, so that the rest of dlcl never sees a template.
 *
 * One pass classifies the raw sections and pairs each [for] with its [end]; [vars] is
 * evaluated next (each var sees the ones above it), then the sections are walked in file
 * order, a [for] repeating the sections up to its [end] once per value. Every expanded
 * key keeps its template's line, so later errors name the template line and the expanded
 * section. Work is bounded (CFG_MAX_* in config.h), duplicate names are found by hashing. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "expr.h"

enum { K_PLAIN, K_VARS, K_FOR, K_END };

typedef struct strbuf {
    char *p;
    size_t len, cap;
} strbuf;

/* Expanded section names -> index + 1 in out (0: empty slot); open addressing. */
typedef struct name_set {
    size_t *slot;
    size_t cap;
} name_set;

typedef struct loop {
    char name[256];
    int line;
} loop;

typedef struct xp {
    const cfg *raw;
    cfg *out;
    unsigned char *kind; /* per raw section */
    size_t *match;       /* per [for]: the index of its [end] */
    bool *checked;       /* per plain section: keys checked for duplicates */
    size_t *cond;        /* per plain section: the index of its `if` entry, or SIZE_MAX */
    expr_var *vars;      /* [vars], in order; text owned */
    size_t *sorted, n_vars;
    expr_var loop_vars[CFG_MAX_LOOPS];
    loop loops[CFG_MAX_LOOPS];
    size_t n_loops;
    size_t steps, bytes, expr_chars;
    name_set names;
    strbuf buf;
} xp;

/* Where an error is: a template line, the section (expanded when known), the key. */
typedef struct site {
    int line;
    const char *section, *key, *value;
} site;

/* "(in [for s] at line 5, s = 2; [for b] at line 6, b = 0)" */
static void loop_context(const xp *x, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < x->n_loops && n < cap; i++) {
        char v[32];
        expr_format(x->loop_vars[i].v.num, v, sizeof v);
        n += (size_t)snprintf(buf + n, cap - n, "%s[for %s] at line %d, %s = %s%s", i ? "; " : " (in ",
                              x->loops[i].name, x->loops[i].line, x->loops[i].name, v, i + 1 == x->n_loops ? ")" : "");
    }
}

static dlcl_status fail(const xp *x, const site *at, const char *fmt, ...) DLCL__PRINTF(3, 4);

static dlcl_status fail(const xp *x, const site *at, const char *fmt, ...)
{
    char what[1024], ctx[512], where[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    loop_context(x, ctx, sizeof ctx);
    cfg_where(x->raw, at->line, where, sizeof where);
    if (at->key != NULL)
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [%s] %s = '%s': %s%s", where, at->section, at->key, at->value, what, ctx);
    if (at->section != NULL) return dlcl__err(DLCL_ERR_CONFIG, "%s: [%s] %s%s", where, at->section, what, ctx);
    return dlcl__err(DLCL_ERR_CONFIG, "%s: %s%s", where, what, ctx);
}

static dlcl_status oom(void) { return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory"); }

static bool sb_append(strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) return false;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

/* ------------------------------------------------------------ names and values */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* The slot of name: the one holding it, or the empty one where it would go. */
static size_t *ns_slot(const name_set *ns, const cfg *out, const char *name)
{
    size_t mask = ns->cap - 1;
    for (size_t i = (size_t)hash_str(name) & mask;; i = (i + 1) & mask)
        if (ns->slot[i] == 0 || strcmp(out->sections[ns->slot[i] - 1].name, name) == 0) return &ns->slot[i];
}

/* Room for one more name (the table is kept at most half full). */
static bool ns_reserve(name_set *ns, const cfg *out)
{
    if (2 * (out->count + 1) <= ns->cap) return true;
    name_set bigger = {calloc(ns->cap ? 2 * ns->cap : 64, sizeof(size_t)), ns->cap ? 2 * ns->cap : 64};
    if (bigger.slot == NULL) return false;
    for (size_t i = 0; i < out->count; i++) *ns_slot(&bigger, out, out->sections[i].name) = i + 1;
    free(ns->slot);
    *ns = bigger;
    return true;
}

static expr_env env_of(const xp *x)
{
    return (expr_env){x->loop_vars, x->n_loops, x->vars, x->sorted, x->n_vars};
}

static dlcl_status too_large(const xp *x, const site *at)
{
    return fail(x, at, "expansion too large: more than %d MiB of names and values", CFG_MAX_BYTES >> 20);
}

/* Counts one step of work (a loop iteration, a section visited, a key written, a ${}
 * evaluated) and the bytes of a key; an error past the limits. subst counts the bytes it
 * writes. */
static dlcl_status count(xp *x, const site *at, size_t bytes)
{
    if (++x->steps > CFG_MAX_STEPS)
        return fail(x, at, "expansion too large: more than %d steps (loop iterations, sections, keys, ${...})",
                    CFG_MAX_STEPS);
    if ((x->bytes += bytes) > CFG_MAX_BYTES) return too_large(x, at);
    return DLCL_OK;
}

/* expr_eval, with the characters it reads counted against CFG_MAX_EXPR_CHARS. */
static dlcl_status evaluate(xp *x, const site *at, const char *s, size_t len, expr_val *v)
{
    expr_env env = env_of(x);
    char msg[768];
    if ((x->expr_chars += len) > CFG_MAX_EXPR_CHARS)
        return fail(x, at, "expansion too large: more than %d MiB of ${...} evaluated", CFG_MAX_EXPR_CHARS >> 20);
    if (!expr_eval(s, len, &env, v, msg, sizeof msg)) return fail(x, at, "%s", msg);
    return DLCL_OK;
}

/* text with each ${EXPR} replaced by its value, into x->buf. */
static dlcl_status subst(xp *x, const site *at, const char *text)
{
    strbuf *b = &x->buf;
    b->len = 0;
    if (!sb_append(b, "", 0)) return oom();
    for (const char *p = text; *p;) {
        const char *d = strstr(p, "${"), *end = d ? strchr(d + 2, '}') : NULL;
        size_t plain = d ? (size_t)(d - p) : strlen(p);
        char num[40];
        expr_val v;
        if (b->len + plain > CFG_MAX_VALUE) return fail(x, at, "longer than %d characters after substitution", CFG_MAX_VALUE);
        if (!sb_append(b, p, plain)) return oom();
        if (d == NULL) break;
        if (end == NULL) return fail(x, at, "'${' without its '}'");
        dlcl_status st = count(x, at, 0);
        if (st == DLCL_OK) st = evaluate(x, at, d + 2, (size_t)(end - d - 2), &v);
        if (st != DLCL_OK) return st;
        if (v.is_num) {
            expr_format(v.num, num, sizeof num);
            v.s = num;
            v.len = strlen(num);
        }
        if (b->len + v.len > CFG_MAX_VALUE) return fail(x, at, "longer than %d characters after substitution", CFG_MAX_VALUE);
        if (!sb_append(b, v.s, v.len)) return oom();
        p = end + 1;
    }
    if ((x->bytes += b->len) > CFG_MAX_BYTES) return too_large(x, at);
    return DLCL_OK;
}

/* text, after substitution, evaluated as an expression that must give a number. */
static dlcl_status eval_number(xp *x, const site *at, const char *text, double *out)
{
    expr_val v = {true, 0, NULL, 0};
    dlcl_status st = subst(x, at, text);
    if (st == DLCL_OK) st = evaluate(x, at, x->buf.p, x->buf.len, &v);
    if (st != DLCL_OK) return st;
    if (!v.is_num) return fail(x, at, "'%.*s' is not a number", (int)(v.len < 40 ? v.len : 40), v.s);
    *out = v.num;
    return DLCL_OK;
}

/* ------------------------------------------------------------ structure */

static bool is_for(const char *name) { return strncmp(name, "for", 3) == 0 && (name[3] == '\0' || isspace((unsigned char)name[3])); }
static bool is_reserved(const char *name) { return strcmp(name, "vars") == 0 || strcmp(name, "end") == 0 || is_for(name); }

static bool is_identifier(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_')) return false;
    return true;
}

static dlcl_status dup_section(const xp *x, int line, const char *name, int first)
{
    char where[64];
    site at = {line, NULL, NULL, NULL};
    return fail(x, &at, "duplicate section [%s] (first at %s)", name, cfg_where(x->raw, first, where, sizeof where));
}

/* The `if` entry of plain section i, into x->cond[i]. */
static dlcl_status find_if(xp *x, size_t i)
{
    const cfg_section *t = &x->raw->sections[i];
    char where[64];
    x->cond[i] = SIZE_MAX;
    for (size_t j = 0; j < t->count; j++) {
        if (strcmp(t->entries[j].key, "if") != 0) continue;
        site at = {t->entries[j].line, t->name, NULL, NULL};
        if (x->cond[i] != SIZE_MAX)
            return fail(x, &at, "duplicate key 'if' (first at %s)",
                        cfg_where(x->raw, t->entries[x->cond[i]].line, where, sizeof where));
        x->cond[i] = j;
    }
    return DLCL_OK;
}

/* Kinds of the raw sections, the [end] of each [for], the `if` of each section. */
static dlcl_status classify(xp *x)
{
    const cfg *raw = x->raw;
    size_t open[CFG_MAX_LOOPS], depth = 0, vars = SIZE_MAX;
    dlcl_status st;
    for (size_t i = 0; i < raw->count; i++) {
        const cfg_section *s = &raw->sections[i];
        site at = {s->line, NULL, NULL, NULL};
        int k = strcmp(s->name, "vars") == 0 ? K_VARS : strcmp(s->name, "end") == 0 ? K_END : is_for(s->name) ? K_FOR : K_PLAIN;
        x->kind[i] = (unsigned char)k;
        if (k == K_VARS && depth > 0)
            return fail(x, &at, "[vars] inside the [for] at line %d", raw->sections[open[depth - 1]].line);
        if (k == K_VARS && vars != SIZE_MAX) return dup_section(x, s->line, "vars", raw->sections[vars].line);
        if (k == K_VARS) vars = i;
        if (k == K_END && depth == 0) return fail(x, &at, "[end] without a [for] to close");
        if (k == K_END) x->match[open[--depth]] = i;
        if (k == K_FOR && depth == CFG_MAX_LOOPS) return fail(x, &at, "[for] nested deeper than %d", CFG_MAX_LOOPS);
        if (k == K_FOR) open[depth++] = i;
        if (k == K_PLAIN && (st = find_if(x, i)) != DLCL_OK) return st;
        if ((k == K_FOR || k == K_END) && s->count > 0) {
            at.line = s->entries[0].line;
            return fail(x, &at, "key '%s' after [%s] belongs to no section", s->entries[0].key, s->name);
        }
    }
    if (depth > 0) {
        const cfg_section *s = &raw->sections[open[depth - 1]];
        site at = {s->line, NULL, NULL, NULL};
        return fail(x, &at, "[%s] without its [end]", s->name);
    }
    return DLCL_OK;
}

/* The index of var name in x->sorted where it is or would go; *found if it is there. */
static size_t var_rank(const xp *x, const char *name, bool *found)
{
    size_t lo = 0, hi = x->n_vars;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(name, x->vars[x->sorted[mid]].name);
        if (r == 0) return (*found = true, mid);
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *found = false;
    return lo;
}

/* Entry j of [vars] (vs): substituted with the vars above it, then visible to those below. */
static dlcl_status eval_var(xp *x, const cfg_section *vs, size_t j)
{
    const cfg_entry *e = &vs->entries[j];
    site at = {e->line, "vars", e->key, e->value};
    char where[64];
    bool found;
    if (!is_identifier(e->key, strlen(e->key)) || strcmp(e->key, "if") == 0)
        return fail(x, &at, "'%s' is not a variable name (letters, digits and '_', not a digit first; not 'if')", e->key);
    size_t rank = var_rank(x, e->key, &found);
    if (found)
        return fail(x, &at, "duplicate key '%s' (first at %s)", e->key,
                    cfg_where(x->raw, vs->entries[x->sorted[rank]].line, where, sizeof where));
    dlcl_status st = subst(x, &at, e->value);
    if (st != DLCL_OK) return st;
    char *text = strdup(x->buf.p);
    if (text == NULL) return oom();
    if (!expr_var_init(&x->vars[x->n_vars], e->key, text)) {
        free(text);
        return oom();
    }
    memmove(x->sorted + rank + 1, x->sorted + rank, (x->n_vars - rank) * sizeof *x->sorted);
    x->sorted[rank] = x->n_vars++;
    return DLCL_OK;
}

static dlcl_status eval_vars(xp *x)
{
    for (size_t i = 0; i < x->raw->count; i++) {
        if (x->kind[i] != K_VARS) continue;
        const cfg_section *vs = &x->raw->sections[i];
        x->vars = calloc(vs->count + 1, sizeof *x->vars);
        x->sorted = calloc(vs->count + 1, sizeof *x->sorted);
        if (x->vars == NULL || x->sorted == NULL) return oom();
        for (size_t j = 0; j < vs->count; j++) {
            dlcl_status st = eval_var(x, vs, j);
            if (st != DLCL_OK) return st;
        }
    }
    return DLCL_OK;
}

/* ------------------------------------------------------------ expansion */

/* Appends section name (NUL-terminated, not reserved) to out, unless it is there already. */
static dlcl_status new_section(xp *x, const site *at, const char *name, int line)
{
    dlcl_status st;
    if (x->out->count >= CFG_MAX_SECTIONS) return fail(x, at, "expands to more than %d sections", CFG_MAX_SECTIONS);
    if (!ns_reserve(&x->names, x->out)) return oom();
    size_t *slot = ns_slot(&x->names, x->out, name);
    if (*slot != 0) return dup_section(x, line, name, x->out->sections[*slot - 1].line);
    if ((st = cfg_push_section(x->out, name, strlen(name), line)) != DLCL_OK) return st;
    *slot = x->out->count;
    return DLCL_OK;
}

static dlcl_status emit_vars(xp *x, size_t i)
{
    const cfg_section *t = &x->raw->sections[i];
    site at = {t->line, NULL, NULL, NULL};
    dlcl_status st = new_section(x, &at, "vars", t->line);
    cfg_section *s = &x->out->sections[x->out->count - 1];
    for (size_t j = 0; st == DLCL_OK && j < x->n_vars; j++) {
        const cfg_entry *e = &t->entries[j];
        site eat = {e->line, "vars", e->key, e->value};
        st = count(x, &eat, strlen(e->key));
        if (st == DLCL_OK) st = cfg_push_entry(s, e->key, x->vars[j].text, e->line);
    }
    return st;
}

/* The section's `if` (when it has one): *keep is false when it evaluates to 0. */
static dlcl_status eval_if(xp *x, size_t i, bool *keep)
{
    const cfg_section *t = &x->raw->sections[i];
    *keep = true;
    if (x->cond[i] == SIZE_MAX) return DLCL_OK;
    const cfg_entry *e = &t->entries[x->cond[i]];
    site at = {e->line, t->name, "if", e->value};
    double v = 0;
    dlcl_status st = eval_number(x, &at, e->value, &v);
    *keep = v != 0;
    return st;
}

/* Duplicate keys of template t, reported in its first expanded section (name). */
static dlcl_status check_keys(xp *x, const cfg_section *t, const char *name)
{
    char where[64];
    for (size_t j = 1; j < t->count; j++)
        for (size_t m = 0; m < j; m++)
            if (strcmp(t->entries[j].key, t->entries[m].key) == 0) {
                site at = {t->entries[j].line, name, NULL, NULL};
                return fail(x, &at, "duplicate key '%s' (first at %s)", t->entries[j].key,
                            cfg_where(x->raw, t->entries[m].line, where, sizeof where));
            }
    return DLCL_OK;
}

/* The name of template t substituted and trimmed, NUL-terminated in x->buf. */
static dlcl_status section_name(xp *x, const cfg_section *t, const char **name)
{
    site at = {t->line, t->name, NULL, NULL};
    dlcl_status st = subst(x, &at, t->name);
    if (st != DLCL_OK) return st;
    char *a = x->buf.p, *b = x->buf.p + x->buf.len;
    while (a < b && isspace((unsigned char)*a)) a++;
    while (b > a && isspace((unsigned char)b[-1])) b--;
    *b = '\0';
    if (a == b) return fail(x, &at, "the section name is empty after substitution");
    if (is_reserved(a)) return fail(x, &at, "the section name [%s] is reserved (a [vars], [end] or [for] header)", a);
    *name = a;
    return DLCL_OK;
}

static dlcl_status emit_section(xp *x, size_t i)
{
    const cfg_section *t = &x->raw->sections[i];
    site at = {t->line, t->name, NULL, NULL};
    const char *name = NULL;
    bool keep;
    dlcl_status st = count(x, &at, 0);
    if (st == DLCL_OK) st = eval_if(x, i, &keep);
    if (st != DLCL_OK || !keep) return st;
    if ((st = section_name(x, t, &name)) != DLCL_OK || (st = new_section(x, &at, name, t->line)) != DLCL_OK) return st;
    cfg_section *s = &x->out->sections[x->out->count - 1];
    if (!x->checked[i] && (st = check_keys(x, t, s->name)) != DLCL_OK) return st;
    x->checked[i] = true;
    for (size_t j = 0; st == DLCL_OK && j < t->count; j++) {
        const cfg_entry *e = &t->entries[j];
        if (strcmp(e->key, "if") == 0) continue;
        site eat = {e->line, s->name, e->key, e->value};
        if ((st = subst(x, &eat, e->value)) == DLCL_OK && (st = count(x, &eat, strlen(e->key))) == DLCL_OK)
            st = cfg_push_entry(s, e->key, x->buf.p, e->line);
    }
    return st;
}

/* The first ".." outside ${...}. */
static const char *find_range_dots(const char *s)
{
    bool in_expr = false;
    for (const char *p = s; *p; p++) {
        if (!in_expr && p[0] == '$' && p[1] == '{')
            in_expr = true, p++;
        else if (in_expr && *p == '}')
            in_expr = false;
        else if (!in_expr && p[0] == '.' && p[1] == '.')
            return p;
    }
    return NULL;
}

/* "for NAME in FIRST..LAST": the name into l, the bounds' text into *first (allocated) and *last. */
static dlcl_status parse_header(xp *x, const site *at, const char *h, loop *l, char **first, const char **last)
{
    const char *p = h + 3, *name, *dots;
    while (isspace((unsigned char)*p)) p++;
    for (name = p; isalnum((unsigned char)*p) || *p == '_'; p++) {}
    size_t n = (size_t)(p - name);
    while (isspace((unsigned char)*p)) p++;
    bool ok = is_identifier(name, n) && n < sizeof l->name && p[0] == 'i' && p[1] == 'n' && isspace((unsigned char)p[2]);
    if (!ok || (dots = find_range_dots(p + 2)) == NULL)
        return fail(x, at, "malformed loop header (expected [for NAME in FIRST..LAST])");
    memcpy(l->name, name, n);
    l->name[n] = '\0';
    for (size_t i = 0; i < x->n_loops; i++)
        if (strcmp(x->loops[i].name, l->name) == 0)
            return fail(x, at, "'%s' is already the variable of the [for] at line %d", l->name, x->loops[i].line);
    if ((*first = strndup(p + 2, (size_t)(dots - p - 2))) == NULL) return oom();
    *last = dots + 2;
    return DLCL_OK;
}

static dlcl_status bound(xp *x, const site *at, const char *text, double *v)
{
    dlcl_status st = eval_number(x, at, text, v);
    if (st != DLCL_OK) return st;
    char buf[40];
    expr_format(*v, buf, sizeof buf);
    if (*v != floor(*v) || fabs(*v) >= 9007199254740992.0) return fail(x, at, "loop bound %s is not an integer", buf);
    return DLCL_OK;
}

static dlcl_status expand_range(xp *x, size_t from, size_t to);

static dlcl_status expand_loop(xp *x, size_t i)
{
    const cfg_section *t = &x->raw->sections[i];
    site at = {t->line, t->name, NULL, NULL};
    loop *l = &x->loops[x->n_loops];
    char *first = NULL;
    const char *last = NULL;
    double a = 0, b = -1;
    dlcl_status st = parse_header(x, &at, t->name, l, &first, &last);
    if (st == DLCL_OK) st = bound(x, &at, first, &a);
    if (st == DLCL_OK) st = bound(x, &at, last, &b);
    free(first);
    if (st != DLCL_OK) return st;
    l->line = t->line;
    x->loop_vars[x->n_loops] = expr_var_number(l->name, a);
    x->n_loops++;
    for (double v = a; st == DLCL_OK && v <= b; v++) {
        x->loop_vars[x->n_loops - 1].v.num = v;
        if ((st = count(x, &at, 0)) == DLCL_OK) st = expand_range(x, i + 1, x->match[i]);
    }
    x->n_loops--;
    return st;
}

static dlcl_status expand_range(xp *x, size_t from, size_t to)
{
    dlcl_status st = DLCL_OK;
    for (size_t i = from; st == DLCL_OK && i < to; i++) {
        if (x->kind[i] == K_VARS) st = emit_vars(x, i);
        if (x->kind[i] == K_PLAIN) st = emit_section(x, i);
        if (x->kind[i] == K_FOR) {
            st = expand_loop(x, i);
            i = x->match[i];
        }
    }
    return st;
}

dlcl_status cfg_expand(const cfg *raw, cfg *out)
{
    memset(out, 0, sizeof *out);
    if (raw == NULL || raw->path == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "cfg_expand: no raw config");
    xp x = {.raw = raw, .out = out};
    size_t n = raw->count + 1;
    dlcl_status st = DLCL_OK;
    x.kind = calloc(n, 1);
    x.match = calloc(n, sizeof *x.match);
    x.checked = calloc(n, sizeof *x.checked);
    x.cond = calloc(n, sizeof *x.cond);
    out->path = strdup(raw->path);
    if (x.kind == NULL || x.match == NULL || x.checked == NULL || x.cond == NULL || out->path == NULL) st = oom();
    if (st == DLCL_OK) st = classify(&x);
    if (st == DLCL_OK) st = eval_vars(&x);
    if (st == DLCL_OK) st = expand_range(&x, 0, raw->count);
    for (size_t i = 0; i < x.n_vars; i++) {
        expr_var_free(&x.vars[i]);
        free((char *)x.vars[i].text);
    }
    free(x.vars);
    free(x.sorted);
    free(x.kind);
    free(x.match);
    free(x.checked);
    free(x.cond);
    free(x.names.slot);
    free(x.buf.p);
    if (st != DLCL_OK) cfg_free(out);
    return st;
}
