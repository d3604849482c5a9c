/* INI parsing on top of inih, with every section and key's line number kept; --set
 * overrides; typed getters. cfg_load_with strings it together with the expansion of
 * [vars] and [for] (expand.c): load raw, set vars, expand, set the rest.
 *
 * Debian's inih is built without line numbers in its handler, so the file is fed through
 * our own reader (ini_parse_stream): it counts lines, records section headers (empty
 * sections included), strips leading whitespace (so indented keys are keys, not inih's
 * multi-line continuations) and inline comments, and rejects lines longer than inih's
 * buffer instead of letting them split silently. */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "onnx.h"

typedef struct parse_state {
    FILE *f;
    cfg *c;
    int line;
    dlcl_status st; /* first error seen by the reader or the handler */
} parse_state;

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need) n *= 2;
    void *np = realloc(*p, n * elem);
    if (np == NULL) return false;
    *p = np;
    *cap = n;
    return true;
}

const char *cfg_where(const cfg *c, int line, char *buf, size_t cap)
{
    if (line <= 0)
        snprintf(buf, cap, "--set");
    else
        snprintf(buf, cap, "%s:%d", c->path, line);
    return buf;
}

cfg_section *cfg_find_section(const cfg *c, const char *name)
{
    for (size_t i = 0; i < c->count; i++)
        if (strcmp(c->sections[i].name, name) == 0) return &c->sections[i];
    return NULL;
}

cfg_entry *cfg_find(const cfg_section *s, const char *key)
{
    if (s == NULL) return NULL;
    for (size_t i = 0; i < s->count; i++)
        if (strcmp(s->entries[i].key, key) == 0) return &s->entries[i];
    return NULL;
}

dlcl_status cfg_push_section(cfg *c, const char *name, size_t len, int line)
{
    if (!grow((void **)&c->sections, &c->cap, c->count + 1, sizeof *c->sections))
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    cfg_section *s = &c->sections[c->count];
    memset(s, 0, sizeof *s);
    if ((s->name = strndup(name, len)) == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    s->line = line;
    c->count++;
    return DLCL_OK;
}

dlcl_status cfg_push_entry(cfg_section *s, const char *key, const char *value, int line)
{
    if (!grow((void **)&s->entries, &s->cap, s->count + 1, sizeof *s->entries))
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    cfg_entry *e = &s->entries[s->count];
    memset(e, 0, sizeof *e);
    e->key = strdup(key);
    e->value = strdup(value);
    e->line = line;
    if (e->key == NULL || e->value == NULL) {
        free(e->key);
        free(e->value);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    s->count++;
    return DLCL_OK;
}

/* The ']' that closes a section header: the first one outside ${...}, so that
 * [for b in 0..${blocks[s]} - 1] is one header. */
static char *header_end(char *str)
{
    bool in_expr = false;
    for (char *p = str + 1; *p; p++) {
        if (!in_expr && p[0] == '$' && p[1] == '{')
            in_expr = true, p++;
        else if (in_expr && *p == '}')
            in_expr = false;
        else if (!in_expr && *p == ']')
            return p;
    }
    return NULL;
}

static char *reader(char *str, int num, void *stream)
{
    parse_state *ps = stream;
    if (ps->st != DLCL_OK || fgets(str, num, ps->f) == NULL) return NULL;
    ps->line++;
    size_t n = strlen(str);
    char where[64];
    if (n == (size_t)num - 1 && str[n - 1] != '\n' && !feof(ps->f)) {
        ps->st = dlcl__err(DLCL_ERR_CONFIG, "%s: line longer than %d characters", cfg_where(ps->c, ps->line, where,
                           sizeof where), num - 2);
        return NULL;
    }
    size_t lead = 0;
    while (str[lead] == ' ' || str[lead] == '\t') lead++;
    memmove(str, str + lead, n - lead + 1);
    for (char *p = str + 1; *p; p++) /* inline comments: ';' or '#' after whitespace */
        if ((*p == ';' || *p == '#') && (p[-1] == ' ' || p[-1] == '\t')) {
            p[0] = '\n';
            p[1] = '\0';
            break;
        }
    if (str[0] == '[') {
        char *end = header_end(str);
        if (end == NULL) {
            ps->st = dlcl__err(DLCL_ERR_CONFIG, "%s: section header without ']'",
                               cfg_where(ps->c, ps->line, where, sizeof where));
            return NULL;
        }
        {
            char *name = str + 1;
            while (name < end && isspace((unsigned char)*name)) name++;
            char *e = end;
            while (e > name && isspace((unsigned char)e[-1])) e--;
            if (e == name) {
                ps->st = dlcl__err(DLCL_ERR_CONFIG, "%s: empty section name", cfg_where(ps->c, ps->line, where, sizeof where));
                return NULL;
            }
            ps->st = cfg_push_section(ps->c, name, (size_t)(e - name), ps->line);
            if (ps->st != DLCL_OK) return NULL;
        }
    }
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    parse_state *ps = user;
    cfg *c = ps->c;
    char where[64];
    if (ps->st != DLCL_OK) return 0;
    if (c->count == 0 || section[0] == '\0') {
        ps->st = dlcl__err(DLCL_ERR_CONFIG, "%s: key '%s' before any [section]", cfg_where(c, ps->line, where, sizeof where),
                           name);
        return 0;
    }
    ps->st = cfg_push_entry(&c->sections[c->count - 1], name, value, ps->line);
    return ps->st == DLCL_OK;
}

dlcl_status cfg_load_raw(const char *path, cfg *out)
{
    memset(out, 0, sizeof *out);
    if (path == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "cfg_load_raw: path is NULL");
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return dlcl__err(errno == ENOENT ? DLCL_ERR_NOT_FOUND : DLCL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if ((out->path = strdup(path)) == NULL) {
        fclose(f);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    parse_state ps = {f, out, 0, DLCL_OK};
    int r = ini_parse_stream(reader, &ps, handler, &ps);
    int read_error = ferror(f);
    fclose(f);
    char where[64];
    dlcl_status st = ps.st;
    if (st == DLCL_OK && read_error) st = dlcl__err(DLCL_ERR_IO, "%s: read error", path);
    if (st == DLCL_OK && r > 0)
        st = dlcl__err(DLCL_ERR_CONFIG, "%s: syntax error (expected [section], key = value, or a comment)",
                       cfg_where(out, r, where, sizeof where));
    if (st == DLCL_OK && r < 0) st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "%s: parser out of memory", path);
    if (st != DLCL_OK) cfg_free(out);
    return st;
}

void cfg_free(cfg *c)
{
    if (c == NULL) return;
    for (size_t i = 0; i < c->count; i++) {
        cfg_section *s = &c->sections[i];
        for (size_t j = 0; j < s->count; j++) {
            free(s->entries[j].key);
            free(s->entries[j].value);
        }
        free(s->entries);
        free(s->name);
    }
    free(c->sections);
    free(c->path);
    onnx_weights_free(c->model);
    memset(c, 0, sizeof *c);
}

/* Splits "section.key=value" at the last '.' before '='; false if it has no such shape. */
static bool split_assignment(const char *a, size_t *section_len, const char **key, size_t *key_len,
                             const char **value)
{
    const char *eq = strchr(a, '='), *dot = NULL;
    if (eq == NULL) return false;
    for (const char *p = a; p < eq; p++)
        if (*p == '.') dot = p;
    if (dot == NULL || dot == a || eq == dot + 1) return false;
    *section_len = (size_t)(dot - a);
    *key = dot + 1;
    *key_len = (size_t)(eq - dot - 1);
    *value = eq + 1;
    return true;
}

static cfg_section *find_section_n(const cfg *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->count; i++)
        if (strncmp(c->sections[i].name, name, len) == 0 && c->sections[i].name[len] == '\0') return &c->sections[i];
    return NULL;
}

static dlcl_status no_section(const cfg *c, const char *a, const char *section)
{
    const char **names = malloc((c->count + 1) * sizeof *names), *sug = NULL;
    if (names != NULL) {
        for (size_t i = 0; i < c->count; i++) names[i] = c->sections[i].name;
        names[c->count] = NULL;
        sug = cfg_suggest(section, names);
    }
    dlcl_status st = dlcl__err(DLCL_ERR_CONFIG, "--set %s: no section [%s] in %s%s%s%s", a, section, c->path,
                               sug ? " (did you mean [" : "", sug ? sug : "", sug ? "]?)" : "");
    free(names);
    return st;
}

/* Sets key (key_len bytes) of s to value: replaced in place, or added when add is set. */
static dlcl_status set_key(cfg_section *s, const char *key, size_t key_len, const char *value, bool add,
                           cfg_entry **found)
{
    char *k = strndup(key, key_len), *v = strdup(value);
    dlcl_status st = DLCL_OK;
    if (k == NULL || v == NULL) {
        st = dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    cfg_entry *e = *found = cfg_find(s, k);
    if (e == NULL) {
        if (add) st = cfg_push_entry(s, k, v, 0);
        goto done;
    }
    free(e->value);
    e->value = v;
    e->line = 0;
    v = NULL;
done:
    free(k);
    free(v);
    return st;
}

/* "vars.NAME=VALUE" (and not "vars.x.key=value" for a section named vars.x). */
static bool is_var_assignment(const char *a)
{
    size_t slen, klen;
    const char *key, *value;
    return strncmp(a, "vars.", 5) == 0 && split_assignment(a, &slen, &key, &klen, &value) && slen == 4;
}

dlcl_status cfg_override(cfg *c, const char *a)
{
    if (c == NULL || a == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "cfg_override: NULL argument");
    size_t slen, klen;
    const char *key, *value;
    if (!split_assignment(a, &slen, &key, &klen, &value))
        return dlcl__err(DLCL_ERR_CONFIG, "--set %s: expected section.key=value", a);
    if (is_var_assignment(a))
        return dlcl__err(DLCL_ERR_CONFIG, "--set %s: variables are set before the expansion (cfg_load_with)", a);
    cfg_section *s = find_section_n(c, a, slen);
    if (s == NULL) {
        char *section = strndup(a, slen);
        if (section == NULL) return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
        dlcl_status st = no_section(c, a, section);
        free(section);
        return st;
    }
    cfg_entry *e;
    return set_key(s, key, klen, value, true, &e);
}

/* "vars.NAME=VALUE" on the raw config: NAME must be a var of [vars]. */
static dlcl_status set_var(cfg *raw, const char *a)
{
    size_t slen, klen;
    const char *key, *value;
    if (!split_assignment(a, &slen, &key, &klen, &value))
        return dlcl__err(DLCL_ERR_CONFIG, "--set %s: expected vars.NAME=value", a);
    cfg_section *s = cfg_find_section(raw, "vars");
    if (s == NULL) return no_section(raw, a, "vars");
    cfg_entry *e;
    dlcl_status st = set_key(s, key, klen, value, false, &e);
    if (st != DLCL_OK || e != NULL) return st;
    const char **names = malloc((s->count + 1) * sizeof *names), *sug = NULL;
    char *name = strndup(key, klen);
    if (names != NULL && name != NULL) {
        for (size_t i = 0; i < s->count; i++) names[i] = s->entries[i].key;
        names[s->count] = NULL;
        sug = cfg_suggest(name, names);
    }
    st = dlcl__err(DLCL_ERR_CONFIG, "--set %s: no variable '%.*s' in [vars]%s%s%s", a, (int)klen, key,
                   sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
    free(names);
    free(name);
    return st;
}

dlcl_status cfg_load_with(const char *path, const char *const *overrides, size_t n, cfg *out)
{
    memset(out, 0, sizeof *out);
    if (n > 0 && overrides == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "cfg_load_with: overrides is NULL");
    for (size_t i = 0; i < n; i++)
        if (overrides[i] == NULL) return dlcl__err(DLCL_ERR_INVALID_ARG, "cfg_load_with: overrides[%zu] is NULL", i);
    cfg raw;
    size_t len = path ? strlen(path) : 0;
    dlcl_status st;
    if (len > 5 && strcmp(path + len - 5, ".onnx") == 0) {
        for (size_t i = 0; i < n; i++) /* ignoring it would run another net than the one asked for */
            if (is_var_assignment(overrides[i]))
                return dlcl__err(DLCL_ERR_CONFIG, "--set %s: %s is an ONNX model, which has no [vars] (variables "
                                 "belong to an INI config)", overrides[i], path);
        st = onnx_bare_config(path, out);
    } else {
        if ((st = cfg_load_raw(path, &raw)) != DLCL_OK) return st;
        for (size_t i = 0; st == DLCL_OK && i < n; i++)
            if (is_var_assignment(overrides[i])) st = set_var(&raw, overrides[i]);
        if (st == DLCL_OK) st = cfg_expand(&raw, out);
        cfg_free(&raw);
    }
    for (size_t i = 0; st == DLCL_OK && i < n; i++)
        if (!is_var_assignment(overrides[i])) st = cfg_override(out, overrides[i]);
    if (st == DLCL_OK) st = onnx_import_config(out);
    if (st != DLCL_OK) cfg_free(out);
    return st;
}

dlcl_status cfg_load(const char *path, cfg *out) { return cfg_load_with(path, NULL, 0, out); }

/* Looks key up and marks it used; NULL with *st set if it is absent and required. */
static cfg_entry *lookup(const cfg *c, const cfg_section *s, const char *key, int required, dlcl_status *st)
{
    *st = DLCL_OK;
    cfg_entry *e = cfg_find(s, key);
    if (e != NULL) {
        e->used = 1;
        return e;
    }
    if (required) {
        char where[64];
        *st = dlcl__err(DLCL_ERR_CONFIG, "%s: [%s]: missing key '%s'", cfg_where(c, s->line, where, sizeof where),
                        s->name, key);
    }
    return NULL;
}

static dlcl_status bad_value(const cfg *c, const cfg_section *s, const cfg_entry *e, const char *fmt, ...)
    DLCL__PRINTF(4, 5);

static dlcl_status bad_value(const cfg *c, const cfg_section *s, const cfg_entry *e, const char *fmt, ...)
{
    char what[512], where[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return dlcl__err(DLCL_ERR_CONFIG, "%s: [%s] %s = '%s': %s", cfg_where(c, e->line, where, sizeof where), s->name,
                     e->key, e->value, what);
}

static bool parse_long(const char *v, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    while (isspace((unsigned char)*end)) end++;
    if (errno != 0 || end == v || *end != '\0') return false;
    *out = x;
    return true;
}

dlcl_status cfg_get_int(const cfg *c, const cfg_section *s, const char *key, int required, long def, long min,
                        long max, long *out)
{
    dlcl_status st;
    cfg_entry *e = lookup(c, s, key, required, &st);
    *out = def;
    if (e == NULL) return st;
    if (!parse_long(e->value, out) || *out < min || *out > max)
        return bad_value(c, s, e, "expected an integer in [%ld, %ld]", min, max);
    return DLCL_OK;
}

dlcl_status cfg_get_float(const cfg *c, const cfg_section *s, const char *key, int required, double def,
                          double min, double max, double *out)
{
    dlcl_status st;
    cfg_entry *e = lookup(c, s, key, required, &st);
    *out = def;
    if (e == NULL) return st;
    char *end;
    errno = 0;
    double x = strtod(e->value, &end);
    while (isspace((unsigned char)*end)) end++;
    if (errno != 0 || end == e->value || *end != '\0' || !isfinite(x) || x < min || x > max)
        return bad_value(c, s, e, "expected a number in [%g, %g]", min, max);
    *out = x;
    return DLCL_OK;
}

dlcl_status cfg_get_bool(const cfg *c, const cfg_section *s, const char *key, int required, int def, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};
    dlcl_status st;
    cfg_entry *e = lookup(c, s, key, required, &st);
    *out = def;
    if (e == NULL) return st;
    for (size_t i = 0; i < DLCL__ARRAY_LEN(yes); i++) {
        if (strcasecmp(e->value, yes[i]) == 0) return (*out = 1, DLCL_OK);
        if (strcasecmp(e->value, no[i]) == 0) return (*out = 0, DLCL_OK);
    }
    return bad_value(c, s, e, "expected 1/0, true/false, yes/no or on/off");
}

dlcl_status cfg_get_str(const cfg *c, const cfg_section *s, const char *key, int required, const char *def,
                        const char **out)
{
    dlcl_status st;
    cfg_entry *e = lookup(c, s, key, required, &st);
    *out = e ? e->value : def;
    return st;
}

static void join(const char *const *items, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (size_t i = 0, n = 0; items[i] && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", items[i]);
}

dlcl_status cfg_get_enum(const cfg *c, const cfg_section *s, const char *key, int required, int def,
                         const char *const *choices, int *out)
{
    dlcl_status st;
    cfg_entry *e = lookup(c, s, key, required, &st);
    *out = def;
    if (e == NULL) return st;
    for (int i = 0; choices[i]; i++)
        if (strcmp(e->value, choices[i]) == 0) return (*out = i, DLCL_OK);
    char list[512];
    join(choices, list, sizeof list);
    const char *sug = cfg_suggest(e->value, choices);
    if (sug) return bad_value(c, s, e, "unknown value (did you mean '%s'? one of: %s)", sug, list);
    return bad_value(c, s, e, "unknown value (one of: %s)", list);
}

dlcl_status cfg_get_int_list(const cfg *c, const cfg_section *s, const char *key, int required, long min,
                             long max, long *out, int max_n, int *n)
{
    dlcl_status st;
    cfg_entry *e = lookup(c, s, key, required, &st);
    *n = 0;
    if (e == NULL) return st;
    const char *p = e->value;
    char item[64];
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (*n >= max_n) return bad_value(c, s, e, "expected at most %d comma-separated integers", max_n);
        snprintf(item, sizeof item, "%.*s", (int)(len < sizeof item ? len : sizeof item - 1), p);
        if (!parse_long(item, &out[*n]) || out[*n] < min || out[*n] > max)
            return bad_value(c, s, e, "expected comma-separated integers in [%ld, %ld]", min, max);
        (*n)++;
        if (comma == NULL) break;
        p = comma + 1;
    }
    return DLCL_OK;
}

dlcl_status cfg_get_float_list(const cfg *c, const cfg_section *s, const char *key, int required, double min,
                               double max, double *out, int max_n, int *n)
{
    dlcl_status st;
    cfg_entry *e = lookup(c, s, key, required, &st);
    *n = 0;
    if (e == NULL) return st;
    const char *p = e->value;
    while (*p) {
        if (*n >= max_n) return bad_value(c, s, e, "expected at most %d comma-separated numbers", max_n);
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        while (isspace((unsigned char)*end)) end++;
        if (errno != 0 || end == p || (*end != ',' && *end != '\0') || !isfinite(x) || x < min || x > max)
            return bad_value(c, s, e, "expected comma-separated numbers in [%g, %g]", min, max);
        out[(*n)++] = x;
        if (*end == '\0') break;
        p = end + 1;
    }
    if (*n == 0) return bad_value(c, s, e, "expected comma-separated numbers in [%g, %g]", min, max);
    return DLCL_OK;
}

dlcl_status cfg_check_unused(const cfg *c, const cfg_section *s, const char *const *known)
{
    for (size_t i = 0; i < s->count; i++) {
        const cfg_entry *e = &s->entries[i];
        bool listed = false;
        for (int k = 0; known[k] && !listed; k++) listed = strcmp(known[k], e->key) == 0;
        if (e->used || listed) continue;
        char where[64], list[512];
        const char *sug = cfg_suggest(e->key, known);
        join(known, list, sizeof list);
        if (sug)
            return dlcl__err(DLCL_ERR_CONFIG, "%s: [%s]: unknown key '%s' (did you mean '%s'?)",
                             cfg_where(c, e->line, where, sizeof where), s->name, e->key, sug);
        return dlcl__err(DLCL_ERR_CONFIG, "%s: [%s]: unknown key '%s' (valid keys: %s)",
                         cfg_where(c, e->line, where, sizeof where), s->name, e->key, list);
    }
    return DLCL_OK;
}

/* Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63) return SIZE_MAX;
    size_t d[64][64];
    for (size_t i = 0; i <= n; i++) d[i][0] = i;
    for (size_t j = 0; j <= m; j++) d[0][j] = j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

const char *cfg_suggest(const char *word, const char *const *candidates)
{
    if (word == NULL || candidates == NULL) return NULL;
    size_t len = strlen(word), limit = len / 3 > 1 ? len / 3 : 1, best_d = SIZE_MAX;
    const char *best = NULL;
    for (int i = 0; candidates[i]; i++) {
        size_t d = edit_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    return best_d <= limit ? best : NULL;
}

/* Appends to a growing string; false when out of memory. */
static bool append(char **buf, size_t *len, size_t *cap, const char *fmt, ...) DLCL__PRINTF(4, 5);

static bool append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !grow((void **)buf, cap, *len + (size_t)n + 1, 1)) return false;
    va_start(ap, fmt);
    vsnprintf(*buf + *len, *cap - *len, fmt, ap);
    va_end(ap);
    *len += (size_t)n;
    return true;
}

dlcl_status cfg_to_text(const cfg *c, char **out)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    bool ok = append(&buf, &len, &cap, "; %s, expanded\n", c->path);
    for (size_t i = 0; ok && i < c->count; i++) {
        const cfg_section *s = &c->sections[i];
        ok = append(&buf, &len, &cap, "\n[%s]%*s; line %d\n", s->name, (int)(strlen(s->name) < 30 ? 30 - strlen(s->name) : 1),
                    "", s->line);
        for (size_t j = 0; ok && j < s->count; j++)
            ok = append(&buf, &len, &cap, "%s = %s\n", s->entries[j].key, s->entries[j].value);
    }
    if (!ok) {
        free(buf);
        return dlcl__err(DLCL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    *out = buf;
    return DLCL_OK;
}
