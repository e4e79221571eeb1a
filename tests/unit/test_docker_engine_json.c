/* SPDX-License-Identifier: MIT */
/* test_docker_engine_json.c: the Engine API answer decoders, on real answers and malformed ones. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lc_alloc_fail.h"
#include "parse/docker_engine_json.h"

/*
 * The real answers are the fuzz target's seeds (captured from dockerd
 * 20.10.24, API 1.41, with tests/integration/docker_harness.py): one copy of
 * each, read from the source tree (LC_SOURCE_DIR, set by ctest).
 */
#define CORPUS "tests/fuzz/corpus/fuzz_docker_engine_json/"

#define ID_A "84544235c8176f62a0e889dad439f23bae8a5d40b7af06a0c5c311a4da9b5ba4"
#define ID_B "7d9b26a82ed40834ef6fe524bfe987c6bd06ba1c439ef053c3f02297663f6bcf"

/* A seed file into an exact-size heap copy (ASan catches reads past it). */
static char *load(const char *name, size_t *len)
{
    const char *root = getenv("LC_SOURCE_DIR");
    char path[1024];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/" CORPUS "%s", root ? root : ".", name);
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* An exact-size heap copy of a string, without its NUL. */
static char *dup_bytes(const char *s, size_t *len)
{
    *len = strlen(s);
    char *p = malloc(*len ? *len : 1);
    assert_non_null(p);
    memcpy(p, s, *len);
    return p;
}

static const char *label(const struct lc_docker_label *l, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].key, key) == 0)
            return l[i].value;
    return NULL;
}

static void test_version(void **state)
{
    struct lc_engine_json_doc doc = {0};
    struct lc_docker_version v;
    size_t len;
    char *b = load("version.json", &len);

    (void)state;
    assert_int_equal(lc_engine_json_version(b, len, &v, &doc), 0);
    free(b); /* the struct points into doc, not into the input */
    assert_string_equal(v.api_version, "1.41");
    assert_string_equal(v.min_api_version, "1.12");
    assert_string_equal(v.engine_version, "20.10.24+dfsg1");
    assert_string_equal(v.negotiated, "");
    lc_engine_json_release(&doc);
    assert_null(doc.root);

    b = dup_bytes("{}", &len);
    assert_int_equal(lc_engine_json_version(b, len, &v, &doc), 0);
    assert_string_equal(v.api_version, "");
    lc_engine_json_release(&doc);
    free(b);
    b = dup_bytes("[\"1.41\"]", &len);
    assert_int_equal(lc_engine_json_version(b, len, &v, &doc), -EPROTO);
    assert_null(doc.root);
    free(b);
    assert_int_equal(lc_engine_json_version(NULL, 0, &v, &doc), -EPROTO);
}

static void test_list(void **state)
{
    struct lc_engine_json_doc doc = {0};
    const struct lc_docker_summary *s;
    size_t len, n;
    char *b = load("list.json", &len);

    (void)state;
    assert_int_equal(lc_engine_json_list(b, len, &s, &n, &doc), 0);
    free(b);
    assert_int_equal(n, 1);
    assert_string_equal(s[0].id, ID_A);
    assert_string_equal(s[0].name, "lc-sample-renamed"); /* the leading '/' is gone */
    assert_string_equal(s[0].image, "busybox:lc");
    assert_string_equal(s[0].state, "running");
    assert_int_equal(s[0].nlabels, 2);
    assert_string_equal(label(s[0].labels, s[0].nlabels, "app"), "web");
    assert_string_equal(label(s[0].labels, s[0].nlabels, "team"), "x y");
    lc_engine_json_release(&doc);

    b = load("list_empty.json", &len);
    assert_int_equal(lc_engine_json_list(b, len, &s, &n, &doc), 0);
    assert_null(s);
    assert_int_equal(n, 0);
    lc_engine_json_release(&doc);
    free(b);
}

struct list_case {
    const char *body;
    int rc;
    size_t n;
    const char *first_name; /* of the first entry kept */
    size_t first_nlabels;
};

static void test_list_shapes(void **state)
{
    static const struct list_case cases[] = {
        {"{\"Id\":\"a\"}", -EPROTO, 0, NULL, 0},
        {"[{\"Id\":\"a\"", -EPROTO, 0, NULL, 0},
        {"", -EPROTO, 0, NULL, 0},
        /* entries without an Id (or a non-string one) are left out */
        {"[{\"Names\":[\"/x\"]},{\"Id\":7},{\"Id\":\"b\",\"Names\":[\"/y\"]}]", 0, 1, "y", 0},
        /* no Names, Names not strings: "" */
        {"[{\"Id\":\"a\"},{\"Id\":\"b\",\"Names\":[1]}]", 0, 2, "", 0},
        {"[{\"Id\":\"a\",\"Names\":\"/x\"}]", 0, 1, "", 0},
        /* a name without its slash stays whole */
        {"[{\"Id\":\"a\",\"Names\":[\"x\",\"/z\"]}]", 0, 1, "x", 0},
        /* non-string label values are skipped; Labels not an object gives none */
        {"[{\"Id\":\"a\",\"Labels\":{\"k\":\"v\",\"n\":1,\"o\":{},\"z\":null}}]", 0, 1, "", 1},
        {"[{\"Id\":\"a\",\"Labels\":[\"k\"]}]", 0, 1, "", 0},
        {"[1,\"x\",null,[]]", 0, 0, NULL, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lc_engine_json_doc doc = {0};
        const struct lc_docker_summary *s = (const void *)&doc;
        size_t len, n = 99;
        char *b = dup_bytes(cases[i].body, &len);
        int rc = lc_engine_json_list(b, len, &s, &n, &doc);

        print_message("case %zu: %s\n", i, cases[i].body);
        assert_int_equal(rc, cases[i].rc);
        assert_int_equal(n, cases[i].n);
        if (cases[i].first_name) {
            assert_string_equal(s[0].name, cases[i].first_name);
            assert_int_equal(s[0].nlabels, cases[i].first_nlabels);
        } else {
            assert_null(s);
        }
        lc_engine_json_release(&doc);
        free(b);
    }
}

/* Decodes a seed that must decode; the input is freed before the result is read. */
static void seed_inspect(const char *name, struct lc_docker_inspect *c,
                         struct lc_engine_json_doc *doc)
{
    size_t len;
    char *b = load(name, &len);

    assert_int_equal(lc_engine_json_inspect(b, len, c, doc), 0);
    free(b);
}

static void test_inspect(void **state)
{
    struct lc_engine_json_doc doc = {0};
    struct lc_docker_inspect c;

    (void)state;
    seed_inspect("inspect_running.json", &c, &doc);
    assert_string_equal(c.id, ID_A);
    assert_string_equal(c.name, "lc-sample-renamed");
    assert_string_equal(c.image, "busybox:lc");
    assert_string_equal(c.image_id,
                        "sha256:919a2f6d1efe23d6c91e214bd2238c5f0cb4f7b92df397a1b9bf54d1ce9fc6dc");
    assert_string_equal(c.log_path, "/tmp/lcd-evbve7qy/d/containers/" ID_A "/" ID_A "-json.log");
    assert_string_equal(c.log_driver, "json-file");
    assert_string_equal(c.state, "running");
    assert_true(c.running);
    assert_false(c.tty);
    assert_int_equal(c.started_ns, 1796093342699673010LL);
    assert_int_equal(c.finished_ns, 0); /* Go's zero time */
    assert_int_equal(c.nlabels, 2);
    assert_string_equal(label(c.labels, c.nlabels, "team"), "x y");
    lc_engine_json_release(&doc);

    seed_inspect("inspect_exited_tty.json", &c, &doc);
    assert_string_equal(c.id, ID_B);
    assert_string_equal(c.name, "lc-sample-b");
    assert_string_equal(c.state, "exited");
    assert_false(c.running);
    assert_true(c.tty);
    assert_int_equal(c.started_ns, 1796093343853319135LL);
    assert_int_equal(c.finished_ns, 1796093343863054882LL);
    assert_int_equal(c.nlabels, 0);
    assert_null(c.labels);
    lc_engine_json_release(&doc);
}

static void test_inspect_shapes(void **state)
{
    static const char *const proto[] = {
        "", "[]", "{\"Name\":\"/x\"}", "{\"Id\":\"\"}", "{\"Id\":5}", "{\"Id\":\"a\"",
    };
    struct lc_engine_json_doc doc = {0};
    struct lc_docker_inspect c;
    size_t len;
    char *b;

    (void)state;
    for (size_t i = 0; i < sizeof(proto) / sizeof(proto[0]); i++) {
        b = dup_bytes(proto[i], &len);
        assert_int_equal(lc_engine_json_inspect(b, len, &c, &doc), -EPROTO);
        assert_null(doc.root);
        assert_null(c.id);
        free(b);
    }
    /* only Id: every string "", times 0, wrong types ignored */
    b = dup_bytes("{\"Id\":\"a\",\"Name\":1,\"State\":{\"Running\":\"yes\",\"StartedAt\":"
                  "\"garbage\"},\"Config\":{\"Tty\":1,\"Labels\":{\"k\":\"v\"}},"
                  "\"HostConfig\":{\"LogConfig\":[]}}",
                  &len);
    assert_int_equal(lc_engine_json_inspect(b, len, &c, &doc), 0);
    assert_string_equal(c.id, "a");
    assert_string_equal(c.name, "");
    assert_string_equal(c.image, "");
    assert_string_equal(c.log_path, "");
    assert_string_equal(c.log_driver, "");
    assert_false(c.running);
    assert_false(c.tty);
    assert_int_equal(c.started_ns, 0);
    assert_int_equal(c.nlabels, 1);
    lc_engine_json_release(&doc);
    free(b);
}

struct event_case {
    const char *file; /* a seed, or NULL: `line` */
    const char *line;
    int rc;
    const char *action, *id, *name, *old_name;
    int64_t time_ns;
    size_t nattributes;
};

static void test_events(void **state)
{
    static const struct event_case cases[] = {
        {"event_create.json", NULL, 0, "create", ID_A, "lc-sample-a", "", 0, 4},
        {"event_rename.json", NULL, 0, "rename", ID_A, "lc-sample-renamed", "/lc-sample-a",
         1796093345978356003LL, 5},
        {"event_die.json", NULL, 0, "die", ID_B, "lc-sample-b", "", 0, 3},
        {"event_die_killed.json", NULL, 0, "die", ID_A, "lc-sample-renamed", "", 0, 5},
        {"event_destroy.json", NULL, 0, "destroy", ID_A, "lc-sample-renamed", "", 0, 4},
        /* API < 1.22 (and "status" when Action is empty): status, id, time in seconds */
        {"event_legacy.json", NULL, 0, "start", "0123abcd", "", "", 1700000000000000000LL, 0},
        {NULL, "{\"Action\":\"\",\"status\":\"die\",\"Actor\":{\"ID\":\"x\"},\"timeNano\":5}", 0,
         "die", "x", "", "", 5, 0},
        /* timeNano wins over time; a time that overflows nanoseconds is ignored */
        {NULL, "{\"Action\":\"a\",\"id\":\"x\",\"time\":9,\"timeNano\":7}", 0, "a", "x", "", "", 7,
         0},
        {NULL, "{\"Action\":\"a\",\"id\":\"x\",\"time\":9223372036854775807}", 0, "a", "x", "", "",
         0, 0},
        {NULL, "{\"Action\":\"a\",\"id\":\"x\",\"time\":-9223372036854775807}", 0, "a", "x", "", "",
         0, 0},
        /* non-string attributes are skipped */
        {NULL, "{\"Action\":\"a\",\"Actor\":{\"ID\":\"x\",\"Attributes\":{\"n\":1,\"k\":\"v\"}}}",
         0, "a", "x", "", "", 0, 1},
        {NULL, "{\"Action\":\"a\"}", -EPROTO, NULL, NULL, NULL, NULL, 0, 0},
        {NULL, "{\"Actor\":{\"ID\":\"x\"}}", -EPROTO, NULL, NULL, NULL, NULL, 0, 0},
        {NULL, "not json", -EPROTO, NULL, NULL, NULL, NULL, 0, 0},
        {NULL, "[\"Action\"]", -EPROTO, NULL, NULL, NULL, NULL, 0, 0},
        {NULL, "", -EPROTO, NULL, NULL, NULL, NULL, 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct event_case *t = &cases[i];
        struct lc_engine_json_doc doc = {0};
        struct lc_docker_event ev;
        size_t len;
        char *b = t->file ? load(t->file, &len) : dup_bytes(t->line, &len);
        int rc = lc_engine_json_event(b, len, &ev, &doc);

        print_message("case %zu: %s\n", i, t->file ? t->file : t->line);
        free(b);
        assert_int_equal(rc, t->rc);
        if (rc == 0) {
            assert_string_equal(ev.action, t->action);
            assert_string_equal(ev.id, t->id);
            assert_string_equal(ev.name, t->name);
            assert_string_equal(ev.old_name, t->old_name);
            if (t->time_ns)
                assert_int_equal(ev.time_ns, t->time_ns);
            assert_int_equal(ev.nattributes, t->nattributes);
        } else {
            assert_null(ev.action);
            assert_null(doc.root);
        }
        lc_engine_json_release(&doc);
    }
}

static void test_event_attributes(void **state)
{
    struct lc_engine_json_doc doc = {0};
    struct lc_docker_event ev;
    size_t len;
    char *b = load("event_die_killed.json", &len);

    (void)state;
    assert_int_equal(lc_engine_json_event(b, len, &ev, &doc), 0);
    memset(b, 'x', len); /* nothing of the result points into the input */
    free(b);
    assert_string_equal(label(ev.attributes, ev.nattributes, "exitCode"), "137");
    assert_string_equal(label(ev.attributes, ev.nattributes, "app"), "web");
    assert_string_equal(ev.image, "busybox:lc");
    lc_engine_json_release(&doc);
    lc_engine_json_release(&doc); /* twice: harmless */
    lc_engine_json_release(NULL);
}

/* More labels than LC_ENGINE_JSON_MAXLABEL: the first ones are kept. */
static void test_label_cap(void **state)
{
    size_t cap = (LC_ENGINE_JSON_MAXLABEL + 10) * 16 + 64, len;
    char *b = malloc(cap);
    struct lc_engine_json_doc doc = {0};
    struct lc_docker_inspect c;

    (void)state;
    assert_non_null(b);
    len = (size_t)snprintf(b, cap, "{\"Id\":\"a\",\"Config\":{\"Labels\":{");
    for (int i = 0; i < LC_ENGINE_JSON_MAXLABEL + 10; i++)
        len += (size_t)snprintf(b + len, cap - len, "%s\"k%d\":\"v\"", i ? "," : "", i);
    len += (size_t)snprintf(b + len, cap - len, "}}}");
    assert_true(len < cap);
    assert_int_equal(lc_engine_json_inspect(b, len, &c, &doc), 0);
    assert_int_equal(c.nlabels, LC_ENGINE_JSON_MAXLABEL);
    lc_engine_json_release(&doc);
    free(b);
}

struct msg_case {
    const char *body;
    size_t msglen;
    const char *want;
};

static void test_message(void **state)
{
    static const struct msg_case cases[] = {
        {"{\"message\":\"No such container: nosuch\"}\n", 256, "No such container: nosuch"},
        {"{\"message\":\"No such container: nosuch\"}", 9, "No such "},
        {"page not found\r\n\n", 256, "page not found"},
        {"page not found", 5, "page"},
        {"{\"message\":5}", 256, "{\"message\":5}"},
        {"", 256, ""},
        {"\n", 256, ""},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char msg[256];
        size_t len;
        char *b = dup_bytes(cases[i].body, &len);

        memset(msg, 'x', sizeof(msg));
        lc_engine_json_message(b, len, msg, cases[i].msglen);
        assert_string_equal(msg, cases[i].want);
        free(b);
    }
    char msg[8] = "x";
    lc_engine_json_message(NULL, 0, msg, sizeof(msg));
    assert_string_equal(msg, "");
}

/*
 * Every allocation of each decode failed in turn: -ENOMEM, a released doc,
 * nothing leaked. Only our own allocations count: jansson's lexer ignores a
 * failed buffer growth (lex_save) and then writes past the buffer, so failing
 * its allocations would test jansson, not us; it allocates through libc.
 */
static void test_alloc_failures(void **state)
{
    static const char *const files[] = {"version.json", "list.json", "inspect_running.json",
                                        "event_rename.json"};
    (void)state;
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        size_t len;
        char *b = load(files[f], &len);
        long n;

        for (n = 1; n < 100000; n++) {
            struct lc_engine_json_doc doc = {0};
            union {
                struct lc_docker_version v;
                struct lc_docker_inspect c;
                struct lc_docker_event ev;
            } u;
            const struct lc_docker_summary *s;
            size_t ns;
            long live = lc_alloc_live();
            int rc;

            lc_alloc_fail_at(n);
            switch (f) {
            case 0:
                rc = lc_engine_json_version(b, len, &u.v, &doc);
                break;
            case 1:
                rc = lc_engine_json_list(b, len, &s, &ns, &doc);
                break;
            case 2:
                rc = lc_engine_json_inspect(b, len, &u.c, &doc);
                break;
            default:
                rc = lc_engine_json_event(b, len, &u.ev, &doc);
                break;
            }
            bool failed = lc_alloc_failed();
            lc_alloc_fail_at(0);
            if (!failed) {
                assert_int_equal(rc, 0);
                lc_engine_json_release(&doc);
                break;
            }
            assert_int_equal(rc, -ENOMEM);
            assert_null(doc.root);
            lc_engine_json_release(&doc);
            assert_int_equal(lc_alloc_live(), live);
        }
        print_message("%s: %ld allocations failed in turn\n", files[f], n - 1);
        assert_true(f == 0 ? n == 1 : n > 1); /* /version needs none of ours */
        free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),          cmocka_unit_test(test_list),
        cmocka_unit_test(test_list_shapes),      cmocka_unit_test(test_inspect),
        cmocka_unit_test(test_inspect_shapes),   cmocka_unit_test(test_events),
        cmocka_unit_test(test_event_attributes), cmocka_unit_test(test_label_cap),
        cmocka_unit_test(test_message),          cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
