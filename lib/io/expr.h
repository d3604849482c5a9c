/* The expression language of ${...} in configs (lib/io/expand.c): numbers in double
 * precision, names (loop variables, then [vars]), name[i], len(name), unary - + !,
 * * / // % + -, comparisons, && ||, c ? a : b and parentheses, with C's precedence.
 * A value is a number or text (a var that is not a number, or a list item that is not):
 * text only passes through (a bare ${name}, a ternary's branch); arithmetic on it is an
 * error. Pure: errors are written to the caller's buffer, not to dlcl's error state. */
#ifndef DLCL_EXPR_H
#define DLCL_EXPR_H

#include <stdbool.h>
#include <stddef.h>

#define EXPR_MAX_DEPTH 64 /* nesting of parentheses, unary operators, ternaries, indices */

typedef struct expr_val {
    bool is_num;
    double num;
    const char *s; /* text (when !is_num), not NUL-terminated */
    size_t len;
} expr_val;

typedef struct expr_var {
    const char *name;
    const char *text; /* the var's value as written (after its own ${} substitution) */
    expr_val v;       /* a number if text is one, else the text */
    expr_val *items;  /* its comma-separated items (NULL: v is the only item) */
    size_t n_items;
} expr_var;

/* Where names are looked up: loops[n_loops - 1] first (innermost), then vars through
 * sorted (indices of vars in strcmp order of their names). */
typedef struct expr_env {
    const expr_var *loops;
    size_t n_loops;
    const expr_var *vars;
    const size_t *sorted;
    size_t n_vars;
} expr_env;

/* Evaluates s[0..len). On error returns false with a message in msg: a malformed
 * expression names the position (1-based) and what follows it; an unknown name suggests
 * the nearest known one. */
bool expr_eval(const char *s, size_t len, const expr_env *env, expr_val *out, char *msg, size_t cap);

/* A [vars] entry: v and the items of text (owned by *v, released by expr_var_free; text
 * must outlive it). A number or text without commas is one item, blank text none. False
 * when out of memory. */
bool expr_var_init(expr_var *v, const char *name, const char *text);
void expr_var_free(expr_var *v);
/* A loop variable: the number x, one item. */
expr_var expr_var_number(const char *name, double x);

/* Writes x as an integer when it is integral and |x| < 2^53, else in the shortest of
 * %.15g, %.16g, %.17g that reads back as x. */
void expr_format(double x, char *buf, size_t cap);

#endif
