/* Fuzz target: the INI reader (lib/io/config.c) and its typed getters, as dlcl_net_create
 * uses them on every key of every section. */
#include "fuzz.h"

#include "io/config.h"

static const char *const names[] = {"relu", "conv", "dense", "sgd", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cfg c;
    if (cfg_load(fuzz_file("net.ini", data, size), &c) != DLCL_OK) return 0;
    for (size_t i = 0; i < c.count; i++) {
        cfg_section *s = &c.sections[i];
        for (size_t j = 0; j < s->count; j++) {
            const char *k = s->entries[j].key, *str;
            long l, list[4];
            double d;
            int b, e, n;
            (void)cfg_get_int(&c, s, k, 0, 0, -1000, 1000, &l);
            (void)cfg_get_float(&c, s, k, 0, 0.0, -1e9, 1e9, &d);
            (void)cfg_get_bool(&c, s, k, 0, 0, &b);
            (void)cfg_get_str(&c, s, k, 0, "", &str);
            (void)cfg_get_enum(&c, s, k, 0, 0, names, &e);
            (void)cfg_get_int_list(&c, s, k, 0, 0, 1 << 16, list, 4, &n);
        }
        (void)cfg_check_unused(&c, s, names);
        (void)cfg_override(&c, "net.batch=3");
    }
    cfg_free(&c);
    return 0;
}
