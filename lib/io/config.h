/* INI configuration files with line numbers, typed getters and "did you mean" errors.
 * The generic layer under lib/net: it knows nothing of layers. Every getter marks its entry
 * used, so that cfg_check_unused can flag keys nobody read (as darknet warns). */
#ifndef DLCL_CONFIG_H
#define DLCL_CONFIG_H

#include "../internal.h"

typedef struct cfg_entry {
    char *key;
    char *value;
    int line; /* 0: from --set */
    int used;
} cfg_entry;

typedef struct cfg_section {
    char *name;
    int line;
    cfg_entry *entries;
    size_t count, cap;
} cfg_section;

typedef struct cfg {
    char *path;
    cfg_section *sections; /* file order */
    size_t count, cap;
    struct onnx_weights *model; /* [net] model = x.onnx: its initializers, until the net is allocated (onnx.h) */
} cfg;

/* Limits of the expansion, so that a hostile config cannot hang or exhaust the parser. */
#define CFG_MAX_SECTIONS 100000 /* sections after expansion */
#define CFG_MAX_STEPS 1000000   /* loop iterations + sections visited + keys written + ${} evaluated */
#define CFG_MAX_BYTES (64 << 20) /* names and values written by the expansion */
#define CFG_MAX_EXPR_CHARS (4 << 20) /* characters of expressions evaluated */
#define CFG_MAX_VALUE 65536     /* one name or value after ${} substitution */
#define CFG_MAX_LOOPS 32        /* nesting of [for] */

/* Parses path into sections as written: no [vars], [for] or ${} processing and no
 * duplicate checks. DLCL_ERR_NOT_FOUND if it cannot be opened; DLCL_ERR_CONFIG for a
 * syntax error, a key before any section, or a line longer than the parser takes.
 * Leading whitespace is ignored; comments start with ';' or '#' at the start of a line
 * or after whitespace. A section header ends at the first ']' outside ${...}. */
dlcl_status cfg_load_raw(const char *path, cfg *out);
/* Expands a raw config (lib/io/expand.c): [vars] are evaluated in order, [for NAME in
 * A..B] ... [end] blocks repeated, ${EXPR} replaced in section names, values and loop
 * bounds, sections whose `if` is 0 dropped (the `if` key itself never reaches out).
 * out holds plain sections in file order, each key with its template's line; [vars]
 * stays, with its values substituted. Duplicate sections and keys are errors here,
 * naming both lines; so is an expanded name that is reserved ("vars", "end", "for ..."). */
dlcl_status cfg_expand(const cfg *raw, cfg *out);
/* Everything in order: loads path, applies the "vars.NAME=VALUE" overrides to the raw
 * [vars] (so they reshape the expansion; NAME must exist), expands, then applies the
 * other overrides to the expanded sections. overrides may be NULL when n is 0. */
dlcl_status cfg_load_with(const char *path, const char *const *overrides, size_t n, cfg *out);
/* A path ending in ".onnx" is a model without a config (onnx_bare_config); a config with
 * [net] model = FILE gets the model's layers after the overrides (onnx_import_config). */
/* cfg_load_with(path, NULL, 0, out). */
dlcl_status cfg_load(const char *path, cfg *out);
/* Applies "section.key=value" (from --set) to an expanded config: replaces or adds the key
 * (line 0). The section is what precedes the last '.' before '=' (section names may hold
 * dots, keys may not). "vars.*" is refused: variables act before expansion (cfg_load_with). */
dlcl_status cfg_override(cfg *c, const char *assignment);
/* Appends a section / an entry, copying name, key and value; no duplicate check. */
dlcl_status cfg_push_section(cfg *c, const char *name, size_t len, int line);
/* The sections of c as INI text (malloc'ed, NUL-terminated), each with its source line as a
 * comment: what a templated config expands to. */
dlcl_status cfg_to_text(const cfg *c, char **out);
dlcl_status cfg_push_entry(cfg_section *s, const char *key, const char *value, int line);
void cfg_free(cfg *c);
cfg_section *cfg_find_section(const cfg *c, const char *name);
cfg_entry *cfg_find(const cfg_section *s, const char *key); /* does not mark used */

/* Typed getters: mark the entry used; absent + !required gives def. Errors read
 * "<file>:<line>: [<section>] key = 'value': expected ..." */
dlcl_status cfg_get_int(const cfg *c, const cfg_section *s, const char *key, int required, long def, long min,
                        long max, long *out);
dlcl_status cfg_get_float(const cfg *c, const cfg_section *s, const char *key, int required, double def,
                          double min, double max, double *out);
/* 1/0, true/false, yes/no, on/off */
dlcl_status cfg_get_bool(const cfg *c, const cfg_section *s, const char *key, int required, int def, int *out);
/* *out points into c (or is def). */
dlcl_status cfg_get_str(const cfg *c, const cfg_section *s, const char *key, int required, const char *def,
                        const char **out);
/* Index of the value in choices (NULL-terminated); errors suggest the nearest. */
dlcl_status cfg_get_enum(const cfg *c, const cfg_section *s, const char *key, int required, int def,
                         const char *const *choices, int *out);
/* Comma-separated integers, at most max_n, each in [min, max]; count in *n. */
dlcl_status cfg_get_int_list(const cfg *c, const cfg_section *s, const char *key, int required, long min,
                             long max, long *out, int max_n, int *n);
/* Comma-separated numbers, at least one and at most max_n, each in [min, max]; count in *n. */
dlcl_status cfg_get_float_list(const cfg *c, const cfg_section *s, const char *key, int required, double min,
                               double max, double *out, int max_n, int *n);
/* Any entry of s not marked used is an error with a suggestion from known (NULL-terminated). */
dlcl_status cfg_check_unused(const cfg *c, const cfg_section *s, const char *const *known);
/* Nearest candidate by edit distance if it is close enough (<= max(1, len/3)), else NULL. */
const char *cfg_suggest(const char *word, const char *const *candidates);
/* "<file>:<line>", or "--set" for line 0, written into buf. */
const char *cfg_where(const cfg *c, int line, char *buf, size_t cap);

#endif
