/* SPDX-License-Identifier: MIT */
/* test_options.c: sizes, durations, option setting, defaults, free and docs of option tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct num_case {
    const char *in;
    int rc;
    int64_t want;
};

static const struct num_case size_cases[] = {
    {"0", 0, 0},
    {"512", 0, 512},
    {"512B", 0, 512},
    {"1KiB", 0, 1024},
    {"64KiB", 0, 65536},
    {"64 KiB", 0, 65536},
    {"1MiB", 0, 1048576},
    {"1mib", 0, 1048576},
    {"2GiB", 0, 2147483648LL},
    {"1TiB", 0, 1099511627776LL},
    {"1KB", 0, 1000},
    {"1MB", 0, 1000000},
    {"1GB", 0, 1000000000},
    {"1TB", 0, 1000000000000LL},
    {"1.5KiB", 0, 1536},
    {"0.5MiB", 0, 524288},
    {"9223372036854775807", 0, INT64_MAX},
    {"8589934591GiB", 0, 8589934591LL * 1073741824LL},
    {"9223372036854775808", -ERANGE, 0},
    {"8589934592GiB", -ERANGE, 0},
    {"99999999999999999999999", -ERANGE, 0},
    {"", -EINVAL, 0},
    {"-1", -EINVAL, 0},
    {"-1KiB", -EINVAL, 0},
    {"+1", -EINVAL, 0},
    {"KiB", -EINVAL, 0},
    {"1XiB", -EINVAL, 0},
    {"1KiBx", -EINVAL, 0},
    {"1.", -EINVAL, 0},
    {".5KiB", -EINVAL, 0},
    {"1e3", -EINVAL, 0},
    {"0x10", -EINVAL, 0},
    {" 1", -EINVAL, 0},
    {"1s", -EINVAL, 0},
};

static const struct num_case duration_cases[] = {
    {"0", 0, 0},
    {"5", 0, 5000}, /* a bare number is seconds */
    {"1.5", 0, 1500},
    {"250ms", 0, 250},
    {"1s", 0, 1000},
    {"1.5s", 0, 1500},
    {"10m", 0, 600000},
    {"168h", 0, 604800000},
    {"1d", 0, 86400000},
    {"1h30m", 0, 5400000},
    {"1m30s500ms", 0, 90500},
    {"1S", 0, 1000},
    {"9223372036854775807ms", 0, INT64_MAX},
    {"9223372036854775808ms", -ERANGE, 0},
    {"9223372036854776s", -ERANGE, 0},
    {"2562047788015216h", -ERANGE, 0},
    {"9223372036854775807ms1ms", -ERANGE, 0},
    {"", -EINVAL, 0},
    {"-1s", -EINVAL, 0},
    {"s", -EINVAL, 0},
    {"ms", -EINVAL, 0},
    {"1h30", -EINVAL, 0}, /* a missing unit is only allowed for a lone number */
    {"10x", -EINVAL, 0},
    {"10 s", -EINVAL, 0},
    {"1.s", -EINVAL, 0},
    {"1us", -EINVAL, 0},
    {"1w", -EINVAL, 0},
};

static void test_parse_size(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(size_cases) / sizeof(size_cases[0]); k++) {
        int64_t v = -7;
        int rc = lc_parse_size(size_cases[k].in, &v);
        if (rc != size_cases[k].rc || (rc == 0 && v != size_cases[k].want))
            fail_msg("size '%s': rc %d value %lld, want rc %d value %lld", size_cases[k].in, rc,
                     (long long)v, size_cases[k].rc, (long long)size_cases[k].want);
        if (rc < 0)
            assert_int_equal(v, -7); /* untouched on error */
    }
    assert_int_equal(lc_parse_size(NULL, &(int64_t){0}), -EINVAL);
}

static void test_parse_duration(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(duration_cases) / sizeof(duration_cases[0]); k++) {
        int64_t v = -7;
        int rc = lc_parse_duration_ms(duration_cases[k].in, &v);
        if (rc != duration_cases[k].rc || (rc == 0 && v != duration_cases[k].want))
            fail_msg("duration '%s': rc %d value %lld, want rc %d value %lld", duration_cases[k].in,
                     rc, (long long)v, duration_cases[k].rc, (long long)duration_cases[k].want);
        if (rc < 0)
            assert_int_equal(v, -7);
    }
}

static void test_format_roundtrip(void **state)
{
    static const struct {
        int64_t v;
        const char *size, *dur;
    } cases[] = {
        {0, "0", "0s"},
        {1, "1", "1ms"},
        {999, "999", "999ms"},
        {1000, "1000", "1s"},
        {1024, "1KiB", "1024ms"},
        {1536, "1536", "1536ms"},
        {60000, "60000", "1m"},
        {3600000, "3600000", "1h"},
        {86400000, "84375KiB", "1d"},
        {5400000, "5400000", "90m"},
        {67108864, "64MiB", "67108864ms"},
        {1073741824, "1GiB", "1073741824ms"},
        {INT64_MAX, "9223372036854775807", "9223372036854775807ms"},
    };
    char buf[64];

    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        int64_t back;
        lc_format_size(cases[k].v, buf, sizeof(buf));
        assert_string_equal(buf, cases[k].size);
        assert_int_equal(lc_parse_size(buf, &back), 0);
        assert_int_equal(back, cases[k].v);
        lc_format_duration_ms(cases[k].v, buf, sizeof(buf));
        assert_string_equal(buf, cases[k].dur);
        assert_int_equal(lc_parse_duration_ms(buf, &back), 0);
        assert_int_equal(back, cases[k].v);
    }
    /* truncation follows snprintf */
    assert_int_equal(lc_format_size(67108864, buf, 3), 5);
    assert_string_equal(buf, "64");
}

struct conf_all {
    char *str;
    int64_t i;
    bool b;
    int64_t size;
    int64_t dur;
    int e;
    struct lc_strlist list;
    struct lc_kvlist map;
    struct {
        char *name;
        int64_t n;
        struct lc_strlist l;
    } sec;
};

static const char *const colors[] = {"red", "green", "blue", NULL};

#define C(f) offsetof(struct conf_all, f)
static const struct lc_option sec_table[] = {
    {LC_OPT_STR, "name", "inner", offsetof(struct conf_all, sec.name) - C(sec), .help = "n"},
    {LC_OPT_INT, "n", "3", offsetof(struct conf_all, sec.n) - C(sec), 1, 9, .help = "count"},
    {LC_OPT_STRLIST, "l", "only", offsetof(struct conf_all, sec.l) - C(sec)},
    LC_OPT_END,
};

static const struct lc_option all_table[] = {
    {LC_OPT_STR, "str", "hello", C(str), .help = "a string"},
    {LC_OPT_INT, "i", "-5", C(i), -10, 10, .help = "an int"},
    {LC_OPT_BOOL, "b", "yes", C(b)},
    {LC_OPT_SIZE, "size", "64KiB", C(size), 4096, 1 << 20, .help = "a size"},
    {LC_OPT_DURATION, "dur", "1m", C(dur), 1, 0, .help = "a duration"},
    {LC_OPT_ENUM, "e", "green", C(e), .choices = colors, .help = "a | color"},
    {LC_OPT_STRLIST, "list", "[a, 'b c', \"d\"]", C(list)},
    {LC_OPT_MAP, "map", "{job: system, 'k': \"v w\"}", C(map), .flags = LC_OPT_SECRET},
    {LC_OPT_SECTION, "sec", NULL, C(sec), .sub = sec_table},
    LC_OPT_END,
};

static void test_defaults_and_free(void **state)
{
    struct conf_all c;

    (void)state;
    memset(&c, 0, sizeof(c));
    assert_int_equal(lc_options_defaults(all_table, &c), 0);
    assert_string_equal(c.str, "hello");
    assert_int_equal(c.i, -5);
    assert_true(c.b);
    assert_int_equal(c.size, 65536);
    assert_int_equal(c.dur, 60000);
    assert_int_equal(c.e, 1);
    assert_int_equal(c.list.n, 3);
    assert_string_equal(c.list.v[0], "a");
    assert_string_equal(c.list.v[1], "b c");
    assert_string_equal(c.list.v[2], "d");
    assert_int_equal(c.map.n, 2);
    assert_string_equal(lc_kvlist_get(&c.map, "job"), "system");
    assert_string_equal(lc_kvlist_get(&c.map, "k"), "v w");
    assert_null(lc_kvlist_get(&c.map, "nope"));
    assert_string_equal(c.sec.name, "inner");
    assert_int_equal(c.sec.n, 3);
    assert_int_equal(c.sec.l.n, 1);
    assert_string_equal(c.sec.l.v[0], "only");

    lc_options_free(all_table, &c);
    assert_null(c.str);
    assert_null(c.list.v);
    assert_int_equal(c.list.n, 0);
    assert_null(c.map.v);
    assert_null(c.sec.name);
    assert_null(c.sec.l.v);
    lc_options_free(all_table, &c); /* twice is harmless */
    lc_options_free(NULL, &c);
    assert_int_equal(lc_options_defaults(NULL, &c), 0);
}

static void test_defaults_empty_lists(void **state)
{
    struct conf_all c;
    static const struct lc_option t[] = {
        {LC_OPT_STRLIST, "list", "[]", C(list)},
        {LC_OPT_MAP, "map", "{ }", C(map)},
        {LC_OPT_STR, "str", NULL, C(str)},
        LC_OPT_END,
    };

    (void)state;
    memset(&c, 0x5a, sizeof(c)); /* defaults overwrite, they do not read */
    assert_int_equal(lc_options_defaults(t, &c), 0);
    assert_int_equal(c.list.n, 0);
    assert_null(c.list.v);
    assert_int_equal(c.map.n, 0);
    assert_null(c.str);
    lc_options_free(t, &c);
}

static void test_bad_defaults(void **state)
{
    static const struct lc_option bad[][2] = {
        {{LC_OPT_INT, "i", "x", C(i)}, LC_OPT_END},
        {{LC_OPT_INT, "i", "11", C(i), -10, 10}, LC_OPT_END},
        {{LC_OPT_SIZE, "size", "1KiB", C(size), 4096, 0}, LC_OPT_END},
        {{LC_OPT_DURATION, "dur", "soon", C(dur)}, LC_OPT_END},
        {{LC_OPT_BOOL, "b", "maybe", C(b)}, LC_OPT_END},
        {{LC_OPT_ENUM, "e", "pink", C(e), .choices = colors}, LC_OPT_END},
        {{LC_OPT_MAP, "map", "{novalue}", C(map)}, LC_OPT_END},
        {{LC_OPT_MAP, "map", "{: v}", C(map)}, LC_OPT_END},
    };
    static const int want[] = {-EINVAL, -ERANGE, -ERANGE, -EINVAL,
                               -EINVAL, -EINVAL, -EINVAL, -EINVAL};

    (void)state;
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        struct conf_all c;
        memset(&c, 0, sizeof(c));
        if (lc_options_defaults(bad[k], &c) != want[k])
            fail_msg("bad default #%zu ('%s') not rejected with %d", k, bad[k][0].def, want[k]);
        lc_options_free(bad[k], &c); /* a half-applied table frees cleanly */
    }
}

static void test_option_set(void **state)
{
    static const struct {
        size_t row;
        const char *text;
        int rc;
        int64_t want; /* for INT, SIZE, DURATION, BOOL, ENUM */
    } cases[] = {
        {1, "10", 0, 10},
        {1, "-10", 0, -10},
        {1, "11", -ERANGE, 0},
        {1, "-11", -ERANGE, 0},
        {1, "abc", -EINVAL, 0},
        {1, "1.5", -EINVAL, 0},
        {1, "", -EINVAL, 0},
        {1, " 1", -EINVAL, 0},
        {1, "1 ", -EINVAL, 0},
        {1, "99999999999999999999", -ERANGE, 0},
        {2, "on", 0, 1},
        {2, "OFF", 0, 0},
        {2, "True", 0, 1},
        {2, "no", 0, 0},
        {2, "1", -EINVAL, 0},
        {2, "y", -EINVAL, 0},
        {3, "4KiB", 0, 4096},
        {3, "1MiB", 0, 1048576},
        {3, "4095", -ERANGE, 0},
        {3, "1.5MiB", -ERANGE, 0},
        {4, "1ms", 0, 1},
        {4, "0s", -ERANGE, 0},
        {4, "100000h", 0, 360000000000LL},
        {5, "blue", 0, 2},
        {5, "Blue", -EINVAL, 0},
        {5, "", -EINVAL, 0},
    };
    struct conf_all c;

    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const struct lc_option *o = &all_table[cases[k].row];
        int64_t got;
        int rc;

        memset(&c, 0, sizeof(c));
        c.i = c.size = c.dur = 77;
        c.e = 77;
        rc = lc_option_set(o, &c, cases[k].text);
        if (rc != cases[k].rc)
            fail_msg("set %s='%s': rc %d, want %d", o->key, cases[k].text, rc, cases[k].rc);
        switch (o->type) {
        case LC_OPT_BOOL:
            got = c.b;
            break;
        case LC_OPT_ENUM:
            got = c.e;
            break;
        default:
            got = *(int64_t *)((char *)&c + o->offset);
            break;
        }
        if (rc == 0 && got != cases[k].want)
            fail_msg("set %s='%s': got %lld, want %lld", o->key, cases[k].text, (long long)got,
                     (long long)cases[k].want);
        if (rc < 0 && o->type != LC_OPT_BOOL)
            assert_int_equal(got, 77); /* unchanged on error */
    }

    /* STR replaces and frees the old value */
    memset(&c, 0, sizeof(c));
    assert_int_equal(lc_option_set(&all_table[0], &c, "one"), 0);
    assert_int_equal(lc_option_set(&all_table[0], &c, "two"), 0);
    assert_string_equal(c.str, "two");
    assert_int_equal(lc_option_set(&all_table[0], &c, NULL), -EINVAL);
    assert_int_equal(lc_option_set(&all_table[6], &c, "x"), -ENOTSUP);
    lc_options_free(all_table, &c);
}

static void test_lists(void **state)
{
    struct lc_kvlist kv = {0};
    struct lc_strlist sl = {0};

    (void)state;
    lc_strlist_free(NULL);
    lc_kvlist_free(NULL);
    lc_strlist_free(&sl);
    lc_kvlist_free(&kv);
    assert_null(lc_kvlist_get(NULL, "a"));
    assert_null(lc_kvlist_get(&kv, "a"));
    kv.v = calloc(2, sizeof(*kv.v));
    assert_non_null(kv.v);
    kv.v[0] = (struct lc_kv){strdup("a"), strdup("1")};
    kv.v[1] = (struct lc_kv){strdup("a"), strdup("2")};
    kv.n = 2;
    assert_string_equal(lc_kvlist_get(&kv, "a"), "2"); /* the later wins */
    lc_kvlist_free(&kv);
    assert_null(kv.v);
    assert_int_equal(kv.n, 0);
}

static char *print_to_string(const struct lc_option *t, const char *prefix, bool md)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    lc_options_print(t, prefix, f, md);
    fclose(f);
    return buf;
}

static void test_print(void **state)
{
    char *txt, *md;

    (void)state;
    txt = print_to_string(all_table, "", false);
    assert_non_null(strstr(txt, "size "));
    assert_non_null(strstr(txt, "4KiB..1MiB"));
    assert_non_null(strstr(txt, ">= 1ms"));
    assert_non_null(strstr(txt, "-10..10"));
    assert_non_null(strstr(txt, "red|green|blue"));
    assert_non_null(strstr(txt, "sec.name"));
    assert_non_null(strstr(txt, "sec.n "));
    assert_non_null(strstr(txt, "****")); /* the secret map's default */
    assert_null(strstr(txt, "job: system"));
    assert_int_equal(txt[strlen(txt) - 1], '\n');
    free(txt);

    md = print_to_string(all_table, "inputs.x", true);
    assert_true(strncmp(md, "| key | type | default | range | description |\n|---", 50) == 0);
    assert_non_null(strstr(md, "| `inputs.x.sec.n` | int | `3` | 1..9 | count |"));
    assert_non_null(strstr(md, "red\\|green\\|blue"));
    assert_non_null(strstr(md, "a \\| color")); /* pipes in help are escaped too */
    free(md);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_defaults_and_free),
        cmocka_unit_test(test_defaults_empty_lists),
        cmocka_unit_test(test_bad_defaults),
        cmocka_unit_test(test_option_set),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_print),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
