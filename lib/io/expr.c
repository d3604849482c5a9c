/* ${...} expressions: a recursive-descent parser that evaluates as it parses. The operand
 * of a branch not taken (the right of && / || once the left decides, the other arm of ?:)
 * is parsed "dead": syntax is checked, but names, indices and divisions are not, so
 * ${s > 1 ? width[s - 2] : 64} is fine when s is 1. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "expr.h"

#define EXACT_INT 9007199254740992.0 /* 2^53: beyond it doubles skip integers */

typedef struct ex {
    const char *s;
    size_t len, pos;
    const expr_env *env;
    int depth;
    char *msg;
    size_t cap;
} ex;

enum { OP_OR, OP_AND, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_IDIV, OP_MOD };

typedef struct op_info {
    const char *text;
    size_t len;
    int op, prec;
} op_info;

/* Two-character operators first, so that "<=" is not read as "<". */
static const op_info ops[] = {
    {"||", 2, OP_OR, 1}, {"&&", 2, OP_AND, 2}, {"==", 2, OP_EQ, 3}, {"!=", 2, OP_NE, 3}, {"<=", 2, OP_LE, 4},
    {">=", 2, OP_GE, 4}, {"//", 2, OP_IDIV, 6}, {"<", 1, OP_LT, 4}, {">", 1, OP_GT, 4}, {"+", 1, OP_ADD, 5},
    {"-", 1, OP_SUB, 5}, {"*", 1, OP_MUL, 6}, {"/", 1, OP_DIV, 6}, {"%", 1, OP_MOD, 6},
};

static bool ternary(ex *e, bool live, expr_val *v);

static bool fail(ex *e, const char *fmt, ...) DLCL__PRINTF(2, 3);

static bool fail(ex *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, e->cap, fmt, ap);
    va_end(ap);
    return false;
}

/* A malformed expression: the expression, the 1-based position and what follows it. */
static bool fail_syntax(ex *e, const char *what)
{
    size_t rest = e->len - e->pos;
    if (rest == 0)
        return fail(e, "bad expression '%.*s' at position %zu (at its end): %s", (int)e->len, e->s, e->pos + 1, what);
    return fail(e, "bad expression '%.*s' at position %zu (near '%.*s'): %s", (int)e->len, e->s, e->pos + 1,
                (int)(rest < 20 ? rest : 20), e->s + e->pos, what);
}

static void skip_ws(ex *e)
{
    while (e->pos < e->len && isspace((unsigned char)e->s[e->pos])) e->pos++;
}

static bool at(ex *e, char c)
{
    skip_ws(e);
    return e->pos < e->len && e->s[e->pos] == c;
}

static bool is_ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static bool is_ident(char c) { return isalnum((unsigned char)c) || c == '_'; }
static bool integral(double x) { return x == floor(x) && fabs(x) < EXACT_INT; }

/* Length of the decimal number at s (digits, '.', exponent), 0 if there is none. */
static size_t scan_number(const char *s, size_t len)
{
    size_t i = 0, digits = 0;
    while (i < len && isdigit((unsigned char)s[i])) i++, digits++;
    if (i < len && s[i] == '.')
        for (i++; i < len && isdigit((unsigned char)s[i]); i++) digits++;
    if (digits == 0) return 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < len && (s[j] == '+' || s[j] == '-')) j++;
        if (j < len && isdigit((unsigned char)s[j])) {
            while (j < len && isdigit((unsigned char)s[j])) j++;
            i = j;
        }
    }
    return i;
}

/* s[0..n) as a double; false if it is too long to be a sensible number or overflows. */
static bool to_double(const char *s, size_t n, double *out)
{
    if (n <= 15) { /* the common case, exact without strtod: a small integer */
        double x = 0;
        size_t i = 0;
        while (i < n && isdigit((unsigned char)s[i])) x = 10 * x + (s[i++] - '0');
        if (i == n) return (*out = x, true);
    }
    char buf[64];
    if (n >= sizeof buf) return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = strtod(buf, NULL);
    return isfinite(*out);
}

/* The value of text s[0..len): a number if it is one entirely (an optional sign and a
 * decimal number, surrounding spaces ignored), else the text itself. */
static expr_val text_value(const char *s, size_t len)
{
    expr_val v = {false, 0, s, len};
    size_t a = 0, b = len;
    while (a < b && isspace((unsigned char)s[a])) a++;
    while (b > a && isspace((unsigned char)s[b - 1])) b--;
    size_t sign = a < b && (s[a] == '-' || s[a] == '+');
    size_t n = scan_number(s + a + sign, b - a - sign);
    double x;
    if (n > 0 && a + sign + n == b && to_double(s + a, b - a, &x)) {
        v.is_num = true;
        v.num = x;
    }
    return v;
}

bool expr_var_init(expr_var *v, const char *name, const char *text)
{
    size_t len = strlen(text), n = 1, a = 0;
    *v = (expr_var){name, text, text_value(text, len), NULL, 1};
    if (v->v.is_num) return true;
    while (a < len && isspace((unsigned char)text[a])) a++;
    if (a == len) return (v->n_items = 0, true);
    for (size_t i = 0; i < len; i++) n += text[i] == ',';
    if (n == 1) return true;
    if ((v->items = malloc(n * sizeof *v->items)) == NULL) return false;
    v->n_items = 0;
    for (const char *p = text;; p++) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p), *q = p;
        while (q < end && isspace((unsigned char)*q)) q++;
        while (end > q && isspace((unsigned char)end[-1])) end--;
        v->items[v->n_items++] = text_value(q, (size_t)(end - q));
        if (comma == NULL) break;
        p = comma;
    }
    return true;
}

void expr_var_free(expr_var *v)
{
    free(v->items);
    v->items = NULL;
}

expr_var expr_var_number(const char *name, double x) { return (expr_var){name, NULL, {true, x, NULL, 0}, NULL, 1}; }


void expr_format(double x, char *buf, size_t cap)
{
    if (x == 0) x = 0; /* no "-0" */
    if (integral(x)) {
        char tmp[24];
        size_t n = 0;
        unsigned long long u = (unsigned long long)fabs(x);
        do tmp[n++] = (char)('0' + u % 10);
        while ((u /= 10) != 0);
        if (x < 0) tmp[n++] = '-';
        for (size_t i = 0; i < n && i + 1 < cap; i++) buf[i] = tmp[n - 1 - i];
        buf[n < cap ? n : cap - 1] = '\0';
        return;
    }
    for (int p = 15; p <= 17; p++) {
        snprintf(buf, cap, "%.*g", p, x);
        if (strtod(buf, NULL) == x) return;
    }
}

/* Compares the name s[0..n) with a NUL-terminated name, in strcmp's order. */
static int name_cmp(const char *s, size_t n, const char *name)
{
    int r = strncmp(s, name, n);
    if (r != 0) return r;
    return name[n] == '\0' ? 0 : -1;
}

static const expr_var *lookup(const expr_env *env, const char *s, size_t n)
{
    for (size_t i = env->n_loops; i-- > 0;)
        if (name_cmp(s, n, env->loops[i].name) == 0) return &env->loops[i];
    size_t lo = 0, hi = env->n_vars;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const expr_var *v = &env->vars[env->sorted[mid]];
        int r = name_cmp(s, n, v->name);
        if (r == 0) return v;
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static bool unknown_name(ex *e, const char *s, size_t n)
{
    const expr_env *env = e->env;
    const char **names = malloc((env->n_loops + env->n_vars + 1) * sizeof *names);
    const char *sug = NULL;
    char word[64];
    if (names != NULL && n < sizeof word) {
        size_t k = 0;
        for (size_t i = 0; i < env->n_loops; i++) names[k++] = env->loops[i].name;
        for (size_t i = 0; i < env->n_vars; i++) names[k++] = env->vars[i].name;
        names[k] = NULL;
        memcpy(word, s, n);
        word[n] = '\0';
        sug = cfg_suggest(word, names);
    }
    if (sug != NULL)
        fail(e, "unknown variable '%.*s' (did you mean '%s'?)", (int)n, s, sug);
    else
        fail(e, "unknown variable '%.*s'", (int)n, s);
    free(names);
    return false;
}

static bool need_num(ex *e, bool live, const expr_val *v)
{
    if (!live || v->is_num) return true;
    return fail(e, "'%.*s' is not a number", (int)(v->len < 40 ? v->len : 40), v->s);
}

/* Item i of var (i < var->n_items). */
static expr_val list_item(const expr_var *var, size_t i) { return var->items ? var->items[i] : var->v; }

/* len(name) */
static bool call_len(ex *e, bool live, expr_val *out)
{
    e->pos++; /* '(' */
    skip_ws(e);
    size_t start = e->pos;
    while (e->pos < e->len && is_ident(e->s[e->pos])) e->pos++;
    if (start == e->pos || !is_ident_start(e->s[start])) return fail_syntax(e, "len() takes a variable name");
    size_t n = e->pos - start;
    if (!at(e, ')')) return fail_syntax(e, "expected ')'");
    e->pos++;
    *out = (expr_val){true, 0, NULL, 0};
    if (!live) return true;
    const expr_var *var = lookup(e->env, e->s + start, n);
    if (var == NULL) return unknown_name(e, e->s + start, n);
    out->num = (double)var->n_items;
    return true;
}

/* name[index] */
static bool index_list(ex *e, bool live, const char *name, size_t n, expr_val *out)
{
    e->pos++; /* '[' */
    expr_val idx;
    if (!ternary(e, live, &idx)) return false;
    if (!at(e, ']')) return fail_syntax(e, "expected ']'");
    e->pos++;
    *out = (expr_val){true, 0, NULL, 0};
    if (!live) return true;
    const expr_var *var = lookup(e->env, name, n);
    if (var == NULL) return unknown_name(e, name, n);
    if (!need_num(e, live, &idx)) return false;
    char ib[32];
    expr_format(idx.num, ib, sizeof ib);
    if (!integral(idx.num)) return fail(e, "index %s of '%.*s' is not an integer", ib, (int)n, name);
    if (idx.num < 0 || idx.num >= (double)var->n_items)
        return fail(e, "index %s is out of range for '%.*s' (length %zu)", ib, (int)n, name, var->n_items);
    *out = list_item(var, (size_t)idx.num);
    return true;
}

static bool name_or_call(ex *e, bool live, expr_val *out)
{
    size_t start = e->pos;
    while (e->pos < e->len && is_ident(e->s[e->pos])) e->pos++;
    const char *name = e->s + start;
    size_t n = e->pos - start;
    if (n == 3 && memcmp(name, "len", 3) == 0 && at(e, '(')) return call_len(e, live, out);
    if (at(e, '[')) return index_list(e, live, name, n, out);
    *out = (expr_val){true, 0, NULL, 0};
    if (!live) return true;
    const expr_var *var = lookup(e->env, name, n);
    if (var == NULL) return unknown_name(e, name, n);
    *out = var->v;
    return true;
}

static bool primary(ex *e, bool live, expr_val *out)
{
    skip_ws(e);
    if (e->pos == e->len) return fail_syntax(e, "expected a number, a name or '('");
    char c = e->s[e->pos];
    if (c == '(') {
        e->pos++;
        if (!ternary(e, live, out)) return false;
        if (!at(e, ')')) return fail_syntax(e, "expected ')'");
        e->pos++;
        return true;
    }
    if (is_ident_start(c)) return name_or_call(e, live, out);
    size_t n = scan_number(e->s + e->pos, e->len - e->pos);
    if (n == 0) return fail_syntax(e, "expected a number, a name or '('");
    *out = (expr_val){true, 0, NULL, 0};
    if (!to_double(e->s + e->pos, n, &out->num)) return fail_syntax(e, "number out of range");
    e->pos += n;
    return true;
}

static bool enter(ex *e)
{
    if (++e->depth <= EXPR_MAX_DEPTH) return true;
    char what[48];
    snprintf(what, sizeof what, "nested deeper than %d levels", EXPR_MAX_DEPTH);
    return fail_syntax(e, what);
}

static bool unary(ex *e, bool live, expr_val *v)
{
    skip_ws(e);
    char c = e->pos < e->len ? e->s[e->pos] : '\0';
    if (c != '-' && c != '+' && c != '!') return primary(e, live, v);
    if (!enter(e)) return false;
    e->pos++;
    bool ok = unary(e, live, v) && need_num(e, live, v);
    if (ok && live) v->num = c == '-' ? -v->num : c == '!' ? (v->num == 0) : v->num;
    e->depth--;
    return ok;
}

static const op_info *peek_op(ex *e)
{
    skip_ws(e);
    if (e->pos == e->len) return NULL;
    char c = e->s[e->pos], d = e->pos + 1 < e->len ? e->s[e->pos + 1] : '\0';
    for (size_t i = 0; i < DLCL__ARRAY_LEN(ops); i++)
        if (ops[i].text[0] == c && (ops[i].len == 1 || ops[i].text[1] == d)) return &ops[i];
    return NULL;
}

static bool divide(ex *e, int op, double a, double b, double *r)
{
    if (b == 0) return fail(e, "division by zero in '%.*s'", (int)e->len, e->s);
    if (op == OP_DIV) {
        *r = a / b;
    } else if (op == OP_IDIV) {
        *r = floor(a / b);
    } else {
        if (!integral(a) || !integral(b)) return fail(e, "'%%' takes integers in '%.*s'", (int)e->len, e->s);
        *r = fmod(a, b);
        if (*r != 0 && (*r < 0) != (b < 0)) *r += b; /* the sign of the divisor, as // floors */
    }
    return true;
}

static bool apply(ex *e, int op, double a, double b, double *r)
{
    switch (op) {
    case OP_OR: *r = a != 0 || b != 0; break;
    case OP_AND: *r = a != 0 && b != 0; break;
    case OP_EQ: *r = a == b; break;
    case OP_NE: *r = a != b; break;
    case OP_LT: *r = a < b; break;
    case OP_LE: *r = a <= b; break;
    case OP_GT: *r = a > b; break;
    case OP_GE: *r = a >= b; break;
    case OP_ADD: *r = a + b; break;
    case OP_SUB: *r = a - b; break;
    case OP_MUL: *r = a * b; break;
    default:
        if (!divide(e, op, a, b, r)) return false;
    }
    if (!isfinite(*r)) return fail(e, "overflow in '%.*s'", (int)e->len, e->s);
    return true;
}

/* Precedence climbing over ops[]; && and || evaluate their right side only when needed. */
static bool binary(ex *e, int min_prec, bool live, expr_val *lhs)
{
    if (!unary(e, live, lhs)) return false;
    for (;;) {
        const op_info *o = peek_op(e);
        if (o == NULL || o->prec < min_prec) return true;
        e->pos += o->len;
        if (!need_num(e, live, lhs)) return false;
        bool rlive = live;
        if (o->op == OP_AND) rlive = live && lhs->num != 0;
        if (o->op == OP_OR) rlive = live && lhs->num == 0;
        expr_val rhs;
        if (!binary(e, o->prec + 1, rlive, &rhs) || !need_num(e, rlive, &rhs)) return false;
        if (live && !apply(e, o->op, lhs->num, rhs.num, &lhs->num)) return false;
        *lhs = (expr_val){true, live ? lhs->num : 0, NULL, 0};
    }
}

static bool ternary(ex *e, bool live, expr_val *v)
{
    if (!enter(e)) return false;
    bool ok = binary(e, 1, live, v);
    if (ok && at(e, '?')) {
        e->pos++;
        ok = need_num(e, live, v);
        bool c = ok && live && v->num != 0;
        expr_val a, b;
        ok = ok && ternary(e, live && c, &a);
        if (ok && !at(e, ':')) ok = fail_syntax(e, "expected ':' of '?'");
        if (ok) e->pos++;
        ok = ok && ternary(e, live && !c, &b);
        if (ok) *v = c ? a : b;
    }
    e->depth--;
    return ok;
}

bool expr_eval(const char *s, size_t len, const expr_env *env, expr_val *out, char *msg, size_t cap)
{
    ex e = {s, len, 0, env, 0, msg, cap};
    skip_ws(&e);
    if (e.pos == len) return fail(&e, "empty expression");
    if (!ternary(&e, true, out)) return false;
    skip_ws(&e);
    if (e.pos != len) return fail_syntax(&e, "expected an operator or the end");
    return true;
}
