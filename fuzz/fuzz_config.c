/* Fuzz target: the INI reader (lib/io/config.c), the template expansion ([vars], [for],
 * `if`, ${...}: lib/io/expand.c, expr.c) and the typed getters, as dlcl_net_create uses
 * them on every key of every section. */
#include "fuzz.h"

#include "io/config.h"

static const char *const names[] = {"relu", "conv", "dense", "sgd", NULL};

/* Getters on the keys of s, at most *budget of them (an expansion may hold a million). */
static void read_section(cfg *c, cfg_section *s, size_t *budget)
{
    for (size_t j = 0; j < s->count && *budget > 0; j++, (*budget)--) {
        const char *k = s->entries[j].key, *str;
        long l, list[4];
        double d;
        int b, e, n;
        (void)cfg_get_int(c, s, k, 0, 0, -1000, 1000, &l);
        (void)cfg_get_float(c, s, k, 0, 0.0, -1e9, 1e9, &d);
        (void)cfg_get_bool(c, s, k, 0, 0, &b);
        (void)cfg_get_str(c, s, k, 0, "", &str);
        (void)cfg_get_enum(c, s, k, 0, 0, names, &e);
        (void)cfg_get_int_list(c, s, k, 0, 0, 1 << 16, list, 4, &n);
    }
    if (s->count <= 64) (void)cfg_check_unused(c, s, names);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("net.ini", data, size);
    cfg raw, c;
    /* --set on the first var, as a command line reshaping the net would */
    char set[96] = "";
    if (cfg_load_raw(path, &raw) != DLCL_OK) return 0;
    cfg_section *vars = cfg_find_section(&raw, "vars");
    if (vars != NULL && vars->count > 0 && strlen(vars->entries[0].key) < 64)
        snprintf(set, sizeof set, "vars.%s=2", vars->entries[0].key);
    cfg_free(&raw);
    const char *sets[] = {set};
    if (cfg_load_with(path, sets, set[0] ? 1 : 0, &c) != DLCL_OK) return 0;
    size_t budget = 4096;
    for (size_t i = 0; i < c.count && budget > 0; i++) read_section(&c, &c.sections[i], &budget);
    (void)cfg_override(&c, "net.batch=3");
    (void)cfg_override(&c, "a.b.c=1");
    cfg_free(&c);
    return 0;
}
