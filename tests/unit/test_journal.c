/* SPDX-License-Identifier: MIT */
/* test_journal.c: the journal input's pure parts: fields to labels, UTF-8 rule, cache, options. */
#include "core/config.h"
#include "core/labels.h"
#include "input/journal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void test_field_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        bool ok;
    } cases[] = {
        {"_SYSTEMD_UNIT", true},
        {"PRIORITY", true},
        {"SYSLOG_IDENTIFIER", true},
        {"__CURSOR", true},
        {"A1", true},
        {"1A", false},
        {"", false},
        {"_systemd_unit", false},
        {"UNIT-NAME", false},
        {"UNIT NAME", false},
        {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", true}, /* 64 */
        {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (lc_journal_field_name_ok(cases[i].name) != cases[i].ok)
            fail_msg("%s: expected %s", cases[i].name, cases[i].ok ? "valid" : "invalid");
    }
    assert_false(lc_journal_field_name_ok(NULL));
}

static void test_levels(void **state)
{
    (void)state;
    assert_string_equal(lc_journal_level_name("0", 1), "emerg");
    assert_string_equal(lc_journal_level_name("3", 1), "err");
    assert_string_equal(lc_journal_level_name("4", 1), "warning");
    assert_string_equal(lc_journal_level_name("7", 1), "debug");
    assert_null(lc_journal_level_name("8", 1));
    assert_null(lc_journal_level_name("12", 2));
    assert_null(lc_journal_level_name("", 0));
    assert_null(lc_journal_level_name("x", 1));
}

static void test_utf8_rule(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t n;
        const char *out;
        size_t bad;
    } cases[] = {
        {"plain", 5, "plain", 0},
        {"caf\xc3\xa9", 5, "caf\xc3\xa9", 0},
        {"a\xff"
         "b",
         3,
         "a\xef\xbf\xbd"
         "b",
         1},
        {"\xc3", 1, "\xef\xbf\xbd", 1},                                 /* truncated sequence */
        {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd", 2},                 /* overlong */
        {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 3}, /* surrogate */
        {"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80", 0},                 /* emoji */
        {"nul\0in", 6, "nul\0in", 0},                                   /* NUL is kept */
    };
    char out[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t bad = 0;
        bool cut = true;
        size_t n = lc_journal_utf8_fix(cases[i].in, cases[i].n, out, sizeof(out), &bad, &cut);
        size_t want = strlen(cases[i].out) + (i == 7 ? 3 : 0);
        assert_int_equal(n, want);
        assert_memory_equal(out, cases[i].out, want);
        assert_int_equal(bad, cases[i].bad);
        assert_false(cut);
        assert_int_equal(lc_journal_utf8_ok(cases[i].in, cases[i].n), cases[i].bad == 0);
    }
    /* cut on a character boundary, never inside a sequence */
    size_t bad = 0;
    bool cut = false;
    size_t n = lc_journal_utf8_fix("ab\xc3\xa9z", 5, out, 3, &bad, &cut);
    assert_int_equal(n, 2);
    assert_true(cut);
}

struct fake_entry {
    const char *const *fields; /* "NAME=value" */
};

static int fake_get(const char *field, const char **val, size_t *len, void *arg)
{
    const struct fake_entry *e = arg;
    size_t fl = strlen(field);

    for (size_t i = 0; e->fields[i]; i++) {
        if (strncmp(e->fields[i], field, fl) == 0 && e->fields[i][fl] == '=') {
            *val = e->fields[i] + fl + 1;
            *len = strlen(*val);
            return 0;
        }
    }
    return -ENOENT;
}

static void test_map_fields(void **state)
{
    (void)state;
    struct lc_kv map[] = {
        {.key = "unit", .value = "_SYSTEMD_UNIT"},
        {.key = "level", .value = "PRIORITY"},
        {.key = "hostname", .value = "_HOSTNAME"},
    };
    struct lc_kvlist fields = {.v = map, .n = 3};
    static const char *const e1[] = {"_SYSTEMD_UNIT=ssh.service", "PRIORITY=3", "_HOSTNAME=h1",
                                     "MESSAGE=x", NULL};
    static const char *const e2[] = {"_SYSTEMD_UNIT=ssh.service", "PRIORITY=9", NULL};
    static const char *const e3[] = {"_SYSTEMD_UNIT=ssh.service", "PRIORITY=9", "_HOSTNAME=", NULL};
    struct fake_entry f1 = {e1}, f2 = {e2}, f3 = {e3};
    char vals[3 * (LC_JOURNAL_LABEL_VALUE_MAX + 1)], key[3 * (LC_JOURNAL_LABEL_VALUE_MAX + 2)];
    char key2[sizeof(key)];
    struct lc_kv kv[3];
    size_t keylen, keylen2, keylen3, cut = 0, bad = 0;

    size_t n = lc_journal_map_fields(&fields, fake_get, &f1, kv, vals, key, sizeof(key), &keylen,
                                     &cut, &bad);
    assert_int_equal(n, 3);
    assert_string_equal(kv[0].key, "unit");
    assert_string_equal(kv[0].value, "ssh.service");
    assert_string_equal(kv[1].key, "level");
    assert_string_equal(kv[1].value, "err"); /* PRIORITY as its level name */
    assert_string_equal(kv[2].value, "h1");

    /* a missing field: no label; an unknown priority: its raw value */
    n = lc_journal_map_fields(&fields, fake_get, &f2, kv, vals, key2, sizeof(key2), &keylen2, &cut,
                              &bad);
    assert_int_equal(n, 2);
    assert_string_equal(kv[1].value, "9");
    assert_false(keylen == keylen2 && memcmp(key, key2, keylen) == 0);
    /* present-but-empty differs from absent in the cache key */
    memcpy(key, key2, keylen2);
    n = lc_journal_map_fields(&fields, fake_get, &f3, kv, vals, key2, sizeof(key2), &keylen3, &cut,
                              &bad);
    assert_int_equal(n, 3);
    assert_false(keylen3 == keylen2 && memcmp(key, key2, keylen2) == 0);
    assert_int_equal(cut, 0);
    assert_int_equal(bad, 0);

    /* a long value is cut (counted) */
    char *long_field = malloc(LC_JOURNAL_LABEL_VALUE_MAX + 100);
    assert_non_null(long_field);
    memset(long_field, 'v', LC_JOURNAL_LABEL_VALUE_MAX + 99);
    memcpy(long_field, "_HOSTNAME=", 10);
    long_field[LC_JOURNAL_LABEL_VALUE_MAX + 99] = '\0';
    const char *e4[] = {long_field, NULL};
    struct fake_entry f4 = {e4};
    n = lc_journal_map_fields(&fields, fake_get, &f4, kv, vals, key2, sizeof(key2), &keylen3, &cut,
                              &bad);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(kv[0].value), LC_JOURNAL_LABEL_VALUE_MAX);
    assert_int_equal(cut, 1);
    free(long_field);

    /* a value that is not UTF-8: fixed, counted */
    static const char *const e5[] = {"_HOSTNAME=h\xff", NULL};
    struct fake_entry f5 = {e5};
    n = lc_journal_map_fields(&fields, fake_get, &f5, kv, vals, key2, sizeof(key2), &keylen3, &cut,
                              &bad);
    assert_int_equal(n, 1);
    assert_string_equal(kv[0].value, "h\xef\xbf\xbd");
    assert_int_equal(bad, 1);
}

static void test_cache_at_limit(void **state)
{
    (void)state;
    struct lc_journal_cache c;
    struct lc_labels *l[4];
    char key[8];

    assert_int_equal(lc_journal_cache_init(&c, 3), 0);
    for (int i = 0; i < 4; i++) {
        char v[8];
        snprintf(v, sizeof(v), "u%d", i);
        struct lc_kv kv = {.key = "unit", .value = v};
        assert_int_equal(lc_labels_intern(&kv, 1, &l[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(lc_journal_cache_put(&c, key, strlen(key), l[i]), 0);
    }
    assert_int_equal(lc_journal_cache_put(&c, "k3", 2, l[3]), -ENOSPC); /* at max_label_sets */
    assert_int_equal(lc_journal_cache_put(&c, "k1", 2, l[1]), 0);       /* already there */
    assert_ptr_equal(lc_journal_cache_get(&c, "k2", 2), l[2]);
    assert_null(lc_journal_cache_get(&c, "k3", 2));
    assert_null(lc_journal_cache_get(&c, "k", 1));
    for (int i = 0; i < 4; i++)
        lc_labels_release(l[i]);
    assert_int_equal(lc_labels_live(), 3); /* the cache keeps its sets alive */
    lc_journal_cache_clear(&c);
    assert_int_equal(lc_labels_live(), 0);
    assert_int_equal(c.n, 0);
    assert_null(lc_journal_cache_get(&c, "k2", 2));
    lc_journal_cache_free(&c);
    lc_journal_cache_free(&c); /* twice is harmless */
}

/* Options: errors name the file, line and column of the offending item. */
static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *err; /* prefix of the message, NULL: valid */
    } cases[] = {
        {"inputs:\n  - {type: journal, name: j}\noutputs:\n  - {type: stdout, name: o}\n", NULL},
        {"inputs:\n  - type: journal\n    name: j\n    fields: {unit: _SYSTEMD_UNIT, pid: _PID}\n"
         "    units: [a.service, b.service]\n    priority: warning\n"
         "outputs:\n  - {type: stdout, name: o}\n",
         NULL},
        {"inputs:\n  - type: journal\n    name: j\n    fields:\n      unit: _SYSTEMD_UNIT\n"
         "      level: priority\noutputs:\n  - {type: stdout, name: o}\n",
         "t.yaml:6:7: 'level: priority': invalid journal field name"},
        {"inputs:\n  - type: journal\n    name: j\n    fields: {unit-name: _SYSTEMD_UNIT}\n"
         "outputs:\n  - {type: stdout, name: o}\n",
         "t.yaml:4:14: 'unit-name: _SYSTEMD_UNIT': invalid label name"},
        {"inputs:\n  - type: journal\n    name: j\n    units: [a.service, \"\"]\n"
         "outputs:\n  - {type: stdout, name: o}\n",
         "t.yaml:4:24: '': empty value"},
        {"inputs:\n  - type: journal\n    name: j\n    priority: loud\n"
         "outputs:\n  - {type: stdout, name: o}\n",
         "t.yaml:4:15: invalid value 'loud': expected one of emerg, alert"},
        {"inputs:\n  - type: journal\n    name: j\n    start_at: middle\n"
         "outputs:\n  - {type: stdout, name: o}\n",
         "t.yaml:4:15: invalid value 'middle'"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct lc_config *cfg = NULL;
        char err[512] = "";
        int rc = lc_config_load_string(cases[k].yaml, "t.yaml", &cfg, err, sizeof(err));
        if (!cases[k].err) {
            if (rc != 0)
                fail_msg("case %zu: %s", k, err);
            lc_config_free(cfg);
            continue;
        }
        if (rc == 0)
            fail_msg("case %zu: accepted", k);
        if (strncmp(err, cases[k].err, strlen(cases[k].err)) != 0)
            fail_msg("case %zu: got '%s', want '%s...'", k, err, cases[k].err);
    }
    /* the defaults: three labels from fields, every priority */
    struct lc_config *cfg = NULL;
    char err[512];
    assert_int_equal(lc_config_load_string(cases[0].yaml, "t.yaml", &cfg, err, sizeof(err)), 0);
    const struct lc_journal_conf *jc = cfg->inputs[0].conf;
    assert_int_equal(jc->fields.n, 3);
    assert_string_equal(lc_kvlist_get(&jc->fields, "unit"), "_SYSTEMD_UNIT");
    assert_string_equal(lc_kvlist_get(&jc->fields, "level"), "PRIORITY");
    assert_int_equal(jc->priority, 7);
    assert_int_equal(jc->start_at, LC_JOURNAL_START_END);
    assert_null(jc->path);
    lc_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_names),    cmocka_unit_test(test_levels),
        cmocka_unit_test(test_utf8_rule),      cmocka_unit_test(test_map_fields),
        cmocka_unit_test(test_cache_at_limit), cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
