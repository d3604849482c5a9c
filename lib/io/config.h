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
} cfg;

/* Parses path. DLCL_ERR_NOT_FOUND if it cannot be opened; DLCL_ERR_CONFIG for a syntax
 * error, a key before any section, a duplicate section or key (naming both lines), or a
 * line longer than the parser takes. Leading whitespace is ignored; comments start with
 * ';' or '#' at the start of a line or after whitespace. */
dlcl_status cfg_load(const char *path, cfg *out);
/* Applies "section.key=value" (from --set): replaces or adds the key (line 0). */
dlcl_status cfg_override(cfg *c, const char *assignment);
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
