/* Templated configs (lib/io/expand.c, lib/io/expr.c): [vars], [for] ... [end], `if` and
 * ${...}, expanded into plain sections before anything reads them; --set before and after
 * the expansion; and malformed templates, each with its status and message. No OpenCL. */
#include <stdlib.h>
#include <string.h>

#include "../lib/io/config.h"
#include "test.h"

static const char *write_ini(const char *text)
{
    static char path[700];
    const char *dir = t_tmpdir(0);
    if (dir == NULL) return NULL;
    snprintf(path, sizeof path, "%s/net.ini", dir);
    return t_write_file(path, text, strlen(text)) ? path : NULL;
}

/* The value of section.key, or "<none>". */
static const char *val(const cfg *c, const char *section, const char *key)
{
    cfg_entry *e = cfg_find(cfg_find_section(c, section), key);
    return e ? e->value : "<none>";
}

/* The section names of c joined by spaces, into buf. */
static const char *names(const cfg *c, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < c->count && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? " " : "", c->sections[i].name);
    return buf;
}

/* The lead's ResNet sketch, two stages of 2 and 1 blocks. Line numbers matter below. */
static const char *resnet_ini =
    "[vars]\n"                                       /* 1 */
    "blocks = 2, 1          ; a list\n"              /* 2 */
    "width  = 64, 128\n"                             /* 3 */
    "expansion = 4\n"                                /* 4 */
    "base = ${width[0]}\n"                           /* 5 */
    "[stem]\n"                                       /* 6 */
    "filters = ${base}\n"                            /* 7 */
    "[for s in 1..len(blocks)]\n"                    /* 8 */
    "[for b in 0..${blocks[s-1]} - 1]\n"             /* 9 */
    "[layer${s}.${b}.conv1]\n"                       /* 10 */
    "type = conv\n"                                  /* 11 */
    "filters = ${width[s-1]}\n"                      /* 12 */
    "stride = ${b == 0 && s > 1 ? 2 : 1}\n"          /* 13 */
    "[layer${s}.${b}.downsample.0]\n"                /* 14 */
    "if = ${b == 0}\n"                               /* 15 */
    "type = conv\n"                                  /* 16 */
    "filters = ${width[s-1] * expansion}\n"          /* 17 */
    "[end]\n"                                        /* 18 */
    "[end]\n"                                        /* 19 */
    "[for e in 1..0]\n"                              /* 20: empty */
    "[never]\n"                                      /* 21 */
    "[end]\n"                                        /* 22 */
    "[fc]\n"                                         /* 23 */
    "units = ${width[len(width) - 1] * expansion}\n"; /* 24 */

static void template_nested_loops_expand_in_file_order(void)
{
    cfg c;
    T_OK(cfg_load(write_ini(resnet_ini), &c));
    char buf[1024];
    const char *want = "vars stem layer1.0.conv1 layer1.0.downsample.0 layer1.1.conv1 layer2.0.conv1 "
                       "layer2.0.downsample.0 fc";
    bool order = strcmp(names(&c, buf, sizeof buf), want) == 0;
    cfg_section *ds = cfg_find_section(&c, "layer2.0.downsample.0"), *conv = cfg_find_section(&c, "layer1.1.conv1");
    bool lines = ds && ds->line == 14 && ds->count == 2 && ds->entries[0].line == 16 && conv && conv->line == 10 &&
                 conv->entries[2].line == 13;
    bool values = !strcmp(val(&c, "stem", "filters"), "64") && !strcmp(val(&c, "layer1.0.conv1", "stride"), "1") &&
                  !strcmp(val(&c, "layer2.0.conv1", "stride"), "2") && !strcmp(val(&c, "layer2.0.conv1", "filters"), "128") &&
                  !strcmp(val(&c, "layer1.0.downsample.0", "filters"), "256") && !strcmp(val(&c, "fc", "units"), "512") &&
                  !strcmp(val(&c, "vars", "base"), "64") && !strcmp(val(&c, "vars", "blocks"), "2, 1");
    bool no_if = cfg_find(ds, "if") == NULL;
    cfg_free(&c);
    T_CHECK(order, "sections: %s", buf);
    T_CHECK(lines, "expanded sections lost their template lines");
    T_CHECK(values, "a substituted value is wrong");
    T_CHECK(no_if, "'if' reached the expanded section");
}

static void template_expressions_vars_and_lists(void)
{
    static const char *ini = "[vars]\n"
                             "width = 64, 128, 256\n"
                             "root = /data/set\n"
                             "dev = cuda:0\n"
                             "names = stem, head\n"
                             "lr = 1e-3\n"
                             "twice = ${width[1] * 2}\n"
                             "[x]\n"
                             "path = ${root}/train\n"
                             "device = ${dev}\n"
                             "raw = ${width}\n"
                             "item = ${names[1]}\n"
                             "lr = ${lr}\n"
                             "div = ${7 / 2} ${7 // 2} ${-7 // 2} ${7 % 3} ${-7 % 3} ${7 % -3}\n"
                             "frac = ${1 / 3} ${0.1 + 0.2}\n"
                             "logic = ${!0} ${1 && 0} ${0 || 2} ${3 >= 3} ${3 != 3} ${-(2 + 3) * 2}\n"
                             "lazy = ${len(width) > 5 ? width[5] : 0 && width[9]}\n"
                             "twice = ${twice} ${len(width)} ${1e3}\n";
    cfg c;
    T_OK(cfg_load(write_ini(ini), &c));
    bool ok = !strcmp(val(&c, "x", "path"), "/data/set/train") && !strcmp(val(&c, "x", "device"), "cuda:0") &&
              !strcmp(val(&c, "x", "raw"), "64, 128, 256") && !strcmp(val(&c, "x", "item"), "head") &&
              !strcmp(val(&c, "x", "lr"), "0.001");
    const char *div = val(&c, "x", "div"), *frac = val(&c, "x", "frac"), *logic = val(&c, "x", "logic"),
               *lazy = val(&c, "x", "lazy"), *twice = val(&c, "x", "twice");
    bool arith = !strcmp(div, "3.5 3 -4 1 2 -2") && !strcmp(frac, "0.3333333333333333 0.30000000000000004") &&
                 !strcmp(logic, "1 0 1 1 0 -10") && !strcmp(lazy, "0") && !strcmp(twice, "256 3 1000");
    char got[512];
    snprintf(got, sizeof got, "div '%s' frac '%s' logic '%s' lazy '%s' twice '%s'", div, frac, logic, lazy, twice);
    cfg_free(&c);
    T_CHECK(ok, "raw text of a var or list item substituted wrongly");
    T_CHECK(arith, "%s", got);
}

/* ... and loop variables shadow [vars] inside their loop only. */
static void template_if_keeps_one_of_two_sections_of_a_name(void)
{
    static const char *ini = "[vars]\n"
                             "i = 100\n"
                             "[for i in 0..3]\n"
                             "[b${i}]\n"
                             "if = ${i % 2}\n"
                             "kind = odd\n"
                             "[b${i}]\n"
                             "if = ${i % 2 == 0}\n"
                             "kind = even\n"
                             "[end]\n"
                             "[gone]\n"
                             "if = 0\n"
                             "[kept]\n"
                             "if = 2 > 1\n"
                             "i = ${i}\n";
    cfg c;
    T_OK(cfg_load(write_ini(ini), &c));
    char buf[256];
    bool ok = !strcmp(names(&c, buf, sizeof buf), "vars b0 b1 b2 b3 kept") && !strcmp(val(&c, "b0", "kind"), "even") &&
              !strcmp(val(&c, "b3", "kind"), "odd") && cfg_find_section(&c, "b1")->line == 4 &&
              cfg_find_section(&c, "b2")->line == 7 && !strcmp(val(&c, "kept", "i"), "100") &&
              cfg_find_section(&c, "kept")->count == 1;
    cfg_free(&c);
    T_CHECK(ok, "sections %s", buf);
}

static void template_set_vars_reshapes_and_set_splits_at_last_dot(void)
{
    const char *p = write_ini(resnet_ini);
    const char *sets[] = {"layer1.0.conv1.filters=32", "vars.blocks=1, 1, 2", "vars.width=8,16,24",
                          "layer3.1.conv1.stride=7"};
    cfg c;
    T_OK(cfg_load_with(p, sets, T_COUNT(sets), &c));
    char buf[1024];
    const char *want = "vars stem layer1.0.conv1 layer1.0.downsample.0 layer2.0.conv1 layer2.0.downsample.0 "
                       "layer3.0.conv1 layer3.0.downsample.0 layer3.1.conv1 fc";
    bool shape = strcmp(names(&c, buf, sizeof buf), want) == 0;
    cfg_entry *f = cfg_find(cfg_find_section(&c, "layer1.0.conv1"), "filters");
    bool set = f && !strcmp(f->value, "32") && f->line == 0 && !strcmp(val(&c, "layer3.1.conv1", "stride"), "7") &&
               !strcmp(val(&c, "stem", "filters"), "8") && !strcmp(val(&c, "fc", "units"), "96") &&
               cfg_find(cfg_find_section(&c, "vars"), "width")->line == 0;
    dlcl_status after = cfg_override(&c, "vars.width=1");
    char m_after[512];
    snprintf(m_after, sizeof m_after, "%s", dlcl_last_error());
    cfg_free(&c);
    T_CHECK(shape, "sections: %s", buf);
    T_CHECK(set, "an override did not land");
    T_CHECK(after == DLCL_ERR_CONFIG && strstr(m_after, "before the expansion"), "%s", m_after);
    const char *typo[] = {"vars.widht=3"};
    T_ERR(cfg_load_with(p, typo, 1, &c), DLCL_ERR_CONFIG, "--set vars.widht=3: no variable 'widht' in [vars] (did you mean 'width'?)");
    const char *missing[] = {"layer9.0.conv1.filters=3"};
    T_ERR(cfg_load_with(p, missing, 1, &c), DLCL_ERR_CONFIG, "no section [layer9.0.conv1]");
    const char *reshaped[] = {"vars.blocks=1", "layer1.1.conv1.filters=3"}; /* that section is gone */
    T_ERR(cfg_load_with(p, reshaped, 2, &c), DLCL_ERR_CONFIG, "(did you mean [layer1.0.conv1]?)");
    const char *bad_index[] = {"vars.blocks=1,1,1,1,1"}; /* width has 2 items */
    T_ERR(cfg_load_with(p, bad_index, 1, &c), DLCL_ERR_CONFIG, "index 2 is out of range for 'width' (length 2)");
    const char *dotted[] = {"vars.x.k=2", "vars.w=3"}; /* a section named vars.x is not [vars] */
    T_OK(cfg_load_with(write_ini("[vars.x]\nk=1\n[vars]\nw=1\n"), dotted, 2, &c));
    bool both = !strcmp(val(&c, "vars.x", "k"), "2") && !strcmp(val(&c, "vars", "w"), "3");
    cfg_free(&c);
    T_CHECK(both, "vars.x.k or vars.w not set");
    const char *novars[] = {"vars.x=1"};
    T_ERR(cfg_load_with(write_ini("[a]\nk=1\n"), novars, 1, &c), DLCL_ERR_CONFIG, "no section [vars]");
}

typedef struct bad_template {
    const char *name, *text;
    const char *msg1, *msg2; /* substrings the message must contain */
} bad_template;

#define LONG_EXPR "${i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i+i}"

static const bad_template bad_templates[] = {
    {"unknown_var_suggests", "[vars]\nwidth = 4\n[a]\nk = ${widht * 2}\n", "net.ini:4: [a] k = '${widht * 2}'",
     "unknown variable 'widht' (did you mean 'width'?)"},
    {"unknown_var_in_name", "[for i in 0..1]\n[a${j}]\n[end]\n", "net.ini:2: [a${j}]", "unknown variable 'j'"},
    {"index_out_of_range", "[vars]\nblocks = 3, 4, 6, 3\n[a]\nk = ${blocks[4]}\n", "net.ini:4:",
     "index 4 is out of range for 'blocks' (length 4)"},
    {"negative_index", "[vars]\nw = 1, 2\n[a]\nk = ${w[-1]}\n", "net.ini:4:", "index -1 is out of range for 'w' (length 2)"},
    {"end_without_for", "[a]\nk=1\n[end]\n", "net.ini:3: [end] without a [for]", NULL},
    {"for_without_end", "[for i in 0..1]\n[for j in 0..1]\n[a${i}${j}]\n[end]\n", "net.ini:1: [for i in 0..1] without its [end]", NULL},
    {"malformed_for", "[for i = 0..3]\n[a]\n[end]\n", "net.ini:1: [for i = 0..3] malformed loop header", "[for NAME in FIRST..LAST]"},
    {"for_without_range", "[for i in 3]\n[end]\n", "net.ini:1:", "malformed loop header"},
    {"loop_var_reused", "[for i in 0..1]\n[for i in 0..1]\n[end]\n[end]\n", "net.ini:2:",
     "'i' is already the variable of the [for] at line 1"},
    {"bound_not_integer", "[for i in 0..7/2]\n[end]\n", "net.ini:1:", "loop bound 3.5 is not an integer"},
    {"bad_expression_position", "[a]\nk = ${2 * (3 + )}\n", "net.ini:2: [a] k = '${2 * (3 + )}'",
     "bad expression '2 * (3 + )' at position 10 (near ')'): expected a number, a name or '('"},
    {"expression_trailing_text", "[a]\nk = ${2 3}\n", "net.ini:2:", "at position 3 (near '3'): expected an operator"},
    {"unclosed_substitution", "[a]\nk = ${2\n", "net.ini:2:", "'${' without its '}'"},
    {"empty_expression", "[a]\nk = ${ }\n", "net.ini:2:", "empty expression"},
    {"division_by_zero_in_loop", "[for i in 0..2]\n[l${i}]\nk = ${10 / (i - 1)}\n[end]\n",
     "net.ini:3: [l1] k = '${10 / (i - 1)}': division by zero", "(in [for i] at line 1, i = 1)"},
    {"error_in_nested_loop_names_both", "[for s in 1..2]\n[for b in 0..1]\n[x${s}.${b}]\nk = ${s == 2 && b == 1 ? q : 0}\n[end]\n[end]\n",
     "net.ini:4: [x2.1] k = ", "(in [for s] at line 1, s = 2; [for b] at line 2, b = 1)"},
    {"text_in_arithmetic", "[vars]\nw = 64, 128\n[a]\nk = ${w + 1}\n", "net.ini:4:", "'64, 128' is not a number"},
    {"percent_on_fraction", "[a]\nk = ${2.5 % 2}\n", "net.ini:2:", "'%' takes integers"},
    {"duplicate_section_after_expansion", "[for i in 0..2]\n[b${i % 2}]\n[end]\n",
     "net.ini:2: duplicate section [b0] (first at net.ini:2)", "i = 2"},
    {"duplicate_section_two_templates", "[a1]\n[for i in 0..1]\n[a${i}]\n[end]\n",
     "net.ini:3: duplicate section [a1] (first at net.ini:1)", NULL},
    {"duplicate_key_in_expanded_section", "[for i in 0..1]\n[c${i}]\nk = 1\nj = 2\nk = 3\n[end]\n",
     "net.ini:5: [c0] duplicate key 'k' (first at net.ini:3)", NULL},
    {"duplicate_if", "[a]\nif = 1\nif = 0\n", "net.ini:3: [a] duplicate key 'if' (first at net.ini:2)", NULL},
    {"if_not_a_number", "[vars]\non = yes\n[a]\nif = ${on}\n", "net.ini:4: [a] if = '${on}'", "unknown variable 'yes'"},
    {"reserved_name_from_var", "[vars]\nn = end\n[${n}]\n", "net.ini:3: [${n}]", "the section name [end] is reserved"},
    {"empty_name_after_substitution", "[vars]\nn =\n[${n}]\n", "net.ini:3:", "empty after substitution"},
    {"keys_after_end", "[for i in 0..1]\n[a${i}]\n[end]\nk = 1\n", "net.ini:4: key 'k' after [end] belongs to no section", NULL},
    {"vars_inside_for", "[for i in 0..1]\n[vars]\n[end]\n", "net.ini:2: [vars] inside the [for] at line 1", NULL},
    {"two_vars_sections", "[vars]\na = 1\n[vars]\nb = 2\n", "net.ini:3: duplicate section [vars] (first at net.ini:1)", NULL},
    {"var_refers_to_later_var", "[vars]\na = ${b}\nb = 1\n", "net.ini:2: [vars] a = '${b}'", "unknown variable 'b'"},
    {"var_name_not_identifier", "[vars]\nmy-width = 3\n", "net.ini:2:", "'my-width' is not a variable name"},
    {"duplicate_var", "[vars]\na = 1\nb = 2\na = 3\n", "net.ini:4: [vars] a = '3': duplicate key 'a' (first at net.ini:2)", NULL},
    {"too_many_sections", "[for i in 0..100000]\n[s${i}]\n[end]\n", "net.ini:2:", "expands to more than 100000 sections"},
    {"too_many_steps", "[for i in 1..1000000000]\n[end]\n", "net.ini:1:", "expansion too large"},
    {"too_much_evaluation", "[for i in 0..1000000]\n[s${i}]\na=" LONG_EXPR "\nb=" LONG_EXPR "\nc=" LONG_EXPR "\nd=" LONG_EXPR
     "\ne=" LONG_EXPR "\nf=" LONG_EXPR "\n[end]\n", "net.ini:", "more than 4 MiB of ${...} evaluated"},
    {"value_too_long", "[vars]\na = 0123456789012345678901234567890123456789\nb = ${a}${a}${a}${a}${a}${a}${a}${a}\n"
                       "c = ${b}${b}${b}${b}${b}${b}${b}${b}\nd = ${c}${c}${c}${c}${c}${c}${c}${c}\n"
                       "e = ${d}${d}${d}${d}${d}${d}${d}${d}\n",
     "net.ini:6: [vars] e =", "longer than 65536 characters"},
    {"deep_nesting", "[a]\nk = ${((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))}\n",
     "net.ini:2:", "nested deeper than 64 levels"},
    {"for_nested_too_deep",
     "[for a in 0..0]\n[for b in 0..0]\n[for c in 0..0]\n[for d in 0..0]\n[for e in 0..0]\n[for f in 0..0]\n[for g in 0..0]\n"
     "[for h in 0..0]\n[for i in 0..0]\n[for j in 0..0]\n[for k in 0..0]\n[for l in 0..0]\n[for m in 0..0]\n[for n in 0..0]\n"
     "[for o in 0..0]\n[for p in 0..0]\n[for q in 0..0]\n[for r in 0..0]\n[for s in 0..0]\n[for t in 0..0]\n[for u in 0..0]\n"
     "[for v in 0..0]\n[for w in 0..0]\n[for x in 0..0]\n[for y in 0..0]\n[for z in 0..0]\n[for A in 0..0]\n[for B in 0..0]\n"
     "[for C in 0..0]\n[for D in 0..0]\n[for E in 0..0]\n[for F in 0..0]\n[for G in 0..0]\n",
     "net.ini:33:", "[for] nested deeper than 32"},
};

/* msg with every "dir/" removed, so that "(first at net.ini:2)" can be expected. */
static const char *without_dir(const char *msg, const char *path, char *buf, size_t cap)
{
    size_t dir = strrchr(path, '/') - path + 1, n = 0;
    for (const char *p = msg; *p && n + 1 < cap;)
        if (strncmp(p, path, dir) == 0)
            p += dir;
        else
            buf[n++] = *p++;
    buf[n] = '\0';
    return buf;
}

static void template_errors_name_line_section_and_loop(void)
{
    for (size_t i = 0; i < T_COUNT(bad_templates); i++) {
        const bad_template *b = &bad_templates[i];
        const char *path = write_ini(b->text);
        cfg c;
        char buf[2048];
        dlcl_status s = cfg_load(path, &c);
        const char *msg = without_dir(dlcl_last_error(), path, buf, sizeof buf);
        bool ok = s == DLCL_ERR_CONFIG && strstr(msg, b->msg1) && (b->msg2 == NULL || strstr(msg, b->msg2));
        if (s == DLCL_OK) cfg_free(&c);
        T_CHECK(ok, "case %s: want DLCL_ERR_CONFIG with '%s' and '%s', got %s: %s", b->name, b->msg1,
                b->msg2 ? b->msg2 : "", dlcl_status_str(s), msg);
    }
}

/* A header's ']' inside ${...} does not end it; plain configs load as before. */
static void template_brackets_in_headers_and_plain_configs(void)
{
    cfg c;
    T_OK(cfg_load(write_ini("[vars]\nw = 1, 2\n[a${w[1]}]   ; comment\nk = [x]\n[plain]\n"), &c));
    bool ok = c.count == 3 && !strcmp(c.sections[1].name, "a2") && !strcmp(val(&c, "a2", "k"), "[x]") &&
              !strcmp(c.sections[2].name, "plain") && c.sections[2].line == 5;
    cfg_free(&c);
    T_CHECK(ok, "bracket inside ${} ended the header");
    T_OK(cfg_load_raw(write_ini("[for i in 0..1]\n[a${i}]\n[end]\n[a1]\n"), &c));
    ok = c.count == 4 && !strcmp(c.sections[1].name, "a${i}") && !strcmp(c.sections[2].name, "end");
    cfg_free(&c);
    T_CHECK(ok, "cfg_load_raw changed the sections");
}

/* A bare model path has no [vars]: --set vars.* is an error naming it, not ignored; the other
 * overrides still apply (here they get as far as reading the model). */
static void set_vars_on_a_bare_onnx_model_is_an_error(void)
{
    cfg c;
    const char *sets[] = {"net.batch=3", "vars.width=8"};
    T_ERR(cfg_load_with("/nonexistent/m.onnx", sets, 2, &c), DLCL_ERR_CONFIG,
          "--set vars.width=8: /nonexistent/m.onnx is an ONNX model, which has no [vars]");
    const char *net[] = {"net.batch=3", "data.scale=0.5"};
    T_ERR(cfg_load_with("/nonexistent/m.onnx", net, 2, &c), DLCL_ERR_NOT_FOUND,
          "/nonexistent/m.onnx: cannot open the ONNX model");
}

static const t_case cases[] = {
    T_CASE(template_nested_loops_expand_in_file_order),
    T_CASE(template_expressions_vars_and_lists),
    T_CASE(template_if_keeps_one_of_two_sections_of_a_name),
    T_CASE(template_set_vars_reshapes_and_set_splits_at_last_dot),
    T_CASE(template_errors_name_line_section_and_loop),
    T_CASE(template_brackets_in_headers_and_plain_configs),
    T_CASE(set_vars_on_a_bare_onnx_model_is_an_error),
};

int main(int argc, char **argv) { return t_main(cases, T_COUNT(cases), argc, argv); }
