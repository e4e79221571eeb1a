/* SPDX-License-Identifier: MIT */
/* test_process.c: processing stages: config errors, each stage, multiline and its acks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/agent.h"
#include "core/batch.h"
#include "core/config.h"
#include "core/labels.h"
#include "core/meta.h"
#include "core/metrics.h"
#include "core/source.h"
#include "process/rx.h"
#include "process/stage.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static struct lc_config *load_ok(const char *process)
{
    char yaml[4096], err[512];
    struct lc_config *cfg = NULL;

    snprintf(yaml, sizeof(yaml),
             "inputs:\n"
             "  - type: file\n"
             "    name: i\n"
             "    paths: [/x]\n"
             "    process:\n%s"
             "outputs: [{type: null, name: o}]\n",
             process);
    if (lc_config_load_string(yaml, "t.yaml", &cfg, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    return cfg;
}

static void expect_error(const char *yaml, const char *want)
{
    char err[512];
    struct lc_config *cfg = NULL;

    assert_true(lc_config_load_string(yaml, "t.yaml", &cfg, err, sizeof(err)) < 0);
    assert_null(cfg);
    if (!strstr(err, want))
        fail_msg("error '%s' does not contain '%s'", err, want);
}

static void test_config_errors(void **state)
{
    (void)state;
#define IN  "inputs:\n  - type: file\n    name: i\n    paths: [/x]\n"
#define OUT "outputs: [{type: null, name: o}]\n"
    expect_error(IN "    process: [{regex: {expression: 'a(b'}}]\n" OUT,
                 "t.yaml:5:36: invalid regex at offset 3");
    expect_error(IN "    process: [{regx: {}}]\n" OUT, "t.yaml:5:16: unknown stage type 'regx'");
    expect_error(IN "    process: [{regex: {expresion: x}}]\n" OUT,
                 "t.yaml:5:24: unknown key 'process[0].regex.expresion'");
    expect_error(IN "    process: nope\n" OUT, "t.yaml:5:14: unknown process list 'nope'");
    expect_error(IN "    process:\n      - multiline: {firstline: x, preset: java}\n" OUT,
                 "t.yaml:6:");
    expect_error(IN "    process: [{drop: {}}]\n" OUT, "no condition");
    expect_error(IN "    process: [{labels: {fields: {}}}]\n" OUT, "give 1 to 15 labels");
    expect_error("processes:\n  p: [{replace: {expression: '['}}]\n" IN OUT,
                 "t.yaml:2:30: invalid regex");
#undef IN
#undef OUT
}

static void test_named_process(void **state)
{
    char err[512];
    struct lc_config *cfg = NULL;

    (void)state;
    assert_int_equal(
        lc_config_load_string("processes:\n"
                              "  common: [{decolorize: }]\n"
                              "inputs:\n"
                              "  - {type: file, name: a, paths: [/x], process: common}\n"
                              "  - {type: file, name: b, paths: [/y], process: common}\n"
                              "outputs: [{type: null, name: o}]\n",
                              "t.yaml", &cfg, err, sizeof(err)),
        0);
    assert_ptr_equal(cfg->inputs[0].process, &cfg->processes[0]);
    assert_ptr_equal(cfg->inputs[1].process, &cfg->processes[0]);
    assert_int_equal(cfg->processes[0].n, 1);
    lc_config_free(cfg);
}

/* A chain without an input, as test-process runs it. */
struct tchain {
    struct lc_config *cfg;
    struct lc_chain *c;
};

static struct tchain chain_of(const char *process)
{
    struct tchain t = {.cfg = load_ok(process)};

    assert_int_equal(lc_chain_new(t.cfg->inputs[0].process, NULL, "i", &t.c), 0);
    assert_non_null(t.c);
    return t;
}

static void chain_done(struct tchain *t)
{
    lc_chain_free(t->c);
    lc_config_free(t->cfg);
}

static struct lc_prec *run(struct tchain *t, const char *line)
{
    return lc_chain_run(t->c, NULL, NULL, 1, line, strlen(line));
}

static void assert_line(const struct lc_prec *r, const char *want)
{
    assert_non_null(r);
    if (r->len != strlen(want) || memcmp(r->line, want, r->len) != 0)
        fail_msg("line '%.*s', want '%s'", (int)r->len, r->line, want);
}

static void assert_field(const struct lc_prec *r, const char *name, const char *want)
{
    size_t len = 0;
    const char *v = lc_prec_field(r, name, strlen(name), &len);

    assert_non_null(v);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(v, want, len);
}

static void test_regex_fields_and_failure(void **state)
{
    struct tchain t = chain_of("      - regex: {expression: '^(?P<level>\\w+) (?P<msg>.*)$'}\n"
                               "      - regex: {source: msg, expression: 'user=(?P<user>\\w+)'}\n");
    struct lc_prec *r;
    uint64_t fail0 = t.c->stages[0].m_fail->u, fail1 = t.c->stages[1].m_fail->u;

    (void)state;
    r = run(&t, "warn hello user=bob");
    assert_line(r, "warn hello user=bob");
    assert_field(r, "level", "warn");
    assert_field(r, "msg", "hello user=bob");
    assert_field(r, "user", "bob");
    /* no match: passed on unchanged, counted as failed by both stages */
    r = run(&t, "");
    assert_line(r, "");
    assert_int_equal(r->nfields, 0);
    assert_int_equal(t.c->stages[0].m_fail->u - fail0, 1);
    assert_int_equal(t.c->stages[1].m_fail->u - fail1, 0); /* no `msg` field: nothing to do */
    chain_done(&t);
}

static void test_replace_presets(void **state)
{
    struct tchain t =
        chain_of("      - replace: {expression: '(?i)password=\\S+', replace: 'password=***'}\n"
                 "      - replace: {preset: bearer_token}\n"
                 "      - replace: {preset: aws_key}\n"
                 "      - replace: {preset: email}\n");

    (void)state;
    assert_line(run(&t, "login PASSWORD=hunter2 ok"), "login password=*** ok");
    assert_line(run(&t, "Authorization: Bearer eyJhbGciOi.x-y_z"), "Authorization: Bearer ***");
    assert_line(run(&t, "key AKIAIOSFODNN7EXAMPLE used"), "key *** used");
    assert_line(run(&t, "mail to jane.doe+x@mail.example.com now"), "mail to ***@*** now");
    assert_line(run(&t, "nothing secret"), "nothing secret");
    chain_done(&t);
}

static void test_drop_keep(void **state)
{
    struct tchain t = chain_of("      - drop: {expression: 'GET /healthz', reason: health}\n"
                               "      - drop: {longer_than: 20}\n"
                               "      - regex: {expression: 'level=(?P<level>\\w+)'}\n"
                               "      - keep: {source: level, value: error}\n");
    struct lc_prec *r;
    uint64_t dropped0 = t.c->m_dropped->u, in0 = t.c->m_in->u, out0 = t.c->m_out->u;

    (void)state;
    assert_null(run(&t, "GET /healthz 200"));
    assert_string_equal(t.c->rec.drop_reason, "health");
    assert_null(run(&t, "level=error but far too long"));
    assert_string_equal(t.c->rec.drop_reason, "drop_stage");
    assert_null(run(&t, "level=info x"));
    assert_string_equal(t.c->rec.drop_reason, "not_kept");
    r = run(&t, "level=error x");
    assert_line(r, "level=error x");
    /* counters are per input name, shared by every chain of this test binary */
    assert_int_equal(t.c->m_dropped->u - dropped0, 3);
    assert_int_equal(t.c->m_in->u - in0, 4);
    assert_int_equal(t.c->m_out->u - out0, 1);
    chain_done(&t);
}

/* match: a selector on the record's current labels (and line), nested stages, drop counted. */
static void test_match(void **state)
{
    struct tchain t = chain_of("      - regex: {expression: '^(?P<level>\\w+) (?P<app>\\w+)'}\n"
                               "      - labels: {fields: {level: '', app: ''}}\n"
                               "      - match:\n"
                               "          selector: '{app=\"x\", level=~\"err.*\"}'\n"
                               "          stages:\n"
                               "            - regex: {expression: 'code=(?P<code>\\d+)'}\n"
                               "            - labels: {fields: {code: ''}}\n"
                               "      - match: {selector: '{app=\"x\"} |= \"noise\"', action: "
                               "drop, drop_counter_reason: noisy}\n"
                               "      - match: {selector: '{app=~\"y\", level!=\"debug\"} !~ "
                               "\"ke\\\\w+\"', action: drop}\n");
    struct lc_stage *noisy = &t.c->stages[3], *other = &t.c->stages[4];
    uint64_t n0 = noisy->m_drop->u, o0 = other->m_drop->u;
    struct lc_prec *r;

    (void)state;
    r = run(&t, "error x code=5");
    assert_non_null(r);
    assert_string_equal(r->labels->json, "{\"app\":\"x\",\"code\":\"5\",\"level\":\"error\"}");
    assert_string_equal(t.c->stages[2].id, "3:match");
    /* label regexes are anchored: "err.*" is not true for "xerr" */
    r = run(&t, "xerr x code=5");
    assert_string_equal(r->labels->json, "{\"app\":\"x\",\"level\":\"xerr\"}");
    /* action drop, counted by drop_counter_reason; a line filter on the line */
    assert_null(run(&t, "info x noise"));
    assert_string_equal(t.c->rec.drop_reason, "noisy");
    assert_int_equal(noisy->m_drop->u - n0, 1);
    assert_non_null(run(&t, "info y kept"));
    assert_non_null(run(&t, "debug y other"));
    assert_null(run(&t, "info y other"));
    assert_string_equal(t.c->rec.drop_reason, "match_stage");
    assert_int_equal(other->m_drop->u - o0, 1);
    assert_int_equal(noisy->m_drop->u - n0, 1);
    chain_done(&t);
}

static void test_match_errors(void **state)
{
    char yaml[2048], inner[1024] = "[{drop: {expression: x}}]";

    (void)state;
#define IN  "inputs:\n  - type: file\n    name: i\n    paths: [/x]\n"
#define OUT "outputs: [{type: null, name: o}]\n"
    /* 4 levels of nesting load; a 5th is an error */
    for (int d = 0; d < 5; d++) {
        char tmp[1024];
        snprintf(tmp, sizeof(tmp), "[{match: {selector: '{a=\"b\"}', stages: %s}}]", inner);
        snprintf(inner, sizeof(inner), "%s", tmp);
        snprintf(yaml, sizeof(yaml), IN "    process: %s\n" OUT, inner);
        if (d < 4) {
            struct lc_config *cfg = NULL;
            char err[512];
            if (lc_config_load_string(yaml, "t.yaml", &cfg, err, sizeof(err)) != 0)
                fail_msg("depth %d: %s", d + 1, err);
            lc_config_free(cfg);
        } else {
            expect_error(yaml, "stages nested more than 4 deep");
        }
    }
    expect_error(IN "    process: [{match: {selector: '{a=\"b\"}', stages: [{multiline: "
                    "{preset: java}}]}}]\n" OUT,
                 "stage 'multiline' holds records and can not be nested in 'match'");
    expect_error(IN "    process: [{match: {selector: 'a=\"b\"', action: drop}}]\n" OUT,
                 "bad selector");
    expect_error(IN "    process: [{match: {selector: '{a=~\"(\"}', action: drop}}]\n" OUT,
                 "regex");
    expect_error(IN "    process: [{match: {selector: '{a=\"b\"}'}}]\n" OUT,
                 "action keep needs nested 'stages:'");
#undef IN
#undef OUT
}

static void test_decolorize(void **state)
{
    struct tchain t = chain_of("      - decolorize:\n");

    (void)state;
    assert_line(run(&t, "\x1b[1;31mERROR\x1b[0m done \x1b(B"), "ERROR done ");
    chain_done(&t);
}

static void test_labels_cardinality_guard(void **state)
{
    struct tchain t = chain_of("      - regex: {expression: 'u=(?P<user>\\S+) l=(?P<lvl>\\S+)'}\n"
                               "      - labels: {fields: {user: '', level-name: lvl}, "
                               "max_values: 2}\n");
    const struct lc_labels *a, *b, *ovf;
    char line[64];

    (void)state;
    a = run(&t, "u=ann l=info")->labels;
    assert_string_equal(a->json, "{\"level_name\":\"info\",\"user\":\"ann\"}");
    b = run(&t, "u=bob l=info")->labels;
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(run(&t, "u=ann l=info")->labels, a); /* interned once */
    /* at the limit: a third user becomes the overflow value, counted */
    for (int i = 0; i < 5; i++) {
        snprintf(line, sizeof(line), "u=user%d l=info", i);
        ovf = run(&t, line)->labels;
        assert_string_equal(ovf->json, "{\"level_name\":\"info\",\"user\":\"__overflow__\"}");
    }
    assert_ptr_equal(run(&t, "u=bob l=info")->labels, b); /* known values still pass */
    /* no field: the record keeps its labels */
    assert_null(run(&t, "nothing")->labels);
    chain_done(&t);
}

/* The record's metadata block as "name=value;..". */
static const char *meta_str(const char *meta, size_t mlen)
{
    static char out[1024];
    struct lc_meta_it it = {meta, meta + mlen};
    const char *n, *v;
    size_t nl, vl, o = 0;

    out[0] = '\0';
    while (lc_meta_next(&it, &n, &nl, &v, &vl))
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%.*s=%.*s;", (int)nl, n, (int)vl, v);
    assert_true(it.p == meta + mlen); /* the whole block is pairs */
    return out;
}

/*
 * structured_metadata: fields by name (empty or null: the same name), names
 * sanitised, absent fields skipped, a later stage replaces a name; past
 * max_pairs or max_bytes a pair is cut and counted, the record still passes.
 */
static void test_structured_metadata(void **state)
{
    struct tchain t =
        chain_of("      - logfmt: {}\n"
                 "      - structured_metadata:\n"
                 "          values: {trace_id: '', user-name: user, pod: ~, gone: ''}\n"
                 "      - structured_metadata: {values: {pod: user}, max_pairs: 3}\n");
    struct lc_prec *r;
    int64_t cut0 = lc_metric_family_total("log_capturer_process_metadata_cut_total");

    (void)state;
    r = run(&t, "trace_id=abc user=ann pod=p1 msg=hi");
    assert_line(r, "trace_id=abc user=ann pod=p1 msg=hi"); /* the line is unchanged */
    assert_int_equal(r->nmeta, 3);
    assert_string_equal(meta_str(r->meta, r->meta_len), "trace_id=abc;user_name=ann;pod=ann;");
    r = run(&t, "msg=none");
    assert_int_equal(r->meta_len, 0); /* nothing left from the record before */
    assert_int_equal(lc_metric_family_total("log_capturer_process_metadata_cut_total"), cut0);
    chain_done(&t);

    /* at the limits */
    t = chain_of("      - logfmt: {}\n"
                 "      - structured_metadata: {values: {a: '', b: '', c: ''}, max_pairs: 2}\n");
    r = run(&t, "a=1 b=2 c=3");
    assert_non_null(r);
    assert_string_equal(meta_str(r->meta, r->meta_len), "a=1;b=2;");
    assert_int_equal(lc_metric_family_total("log_capturer_process_metadata_cut_total"), cut0 + 1);
    chain_done(&t);
    t = chain_of("      - logfmt: {}\n"
                 "      - structured_metadata: {values: {a: '', b: ''}, max_bytes: 64}\n");
    char line[128];
    snprintf(line, sizeof(line), "a=%059d b=x", 0); /* a: 4 + 1 + 59 = 64 bytes: fits exactly */
    r = run(&t, line);
    assert_int_equal(r->nmeta, 1);
    assert_int_equal(r->meta_len, 64);
    assert_int_equal(lc_metric_family_total("log_capturer_process_metadata_cut_total"), cut0 + 2);
    chain_done(&t);
}

/* tenant: from a field, a label or a value; empty keeps it; an invalid one is counted, not used. */
static void test_tenant(void **state)
{
    struct tchain t = chain_of("      - logfmt: {}\n"
                               "      - tenant: {value: base}\n"
                               "      - tenant: {source: org}\n");
    int64_t bad0 = lc_metric_family_total("log_capturer_process_tenant_invalid_total");
    struct lc_kv kv[2] = {{"job", "j"}, {"team", "team-1"}};
    struct lc_labels *l;
    struct lc_prec *r;
    char line[256];

    (void)state;
    r = run(&t, "org=acme msg=a");
    assert_string_equal(r->tenant, "acme");
    assert_int_equal(r->tenant_len, 4);
    r = run(&t, "msg=no-org");
    assert_string_equal(r->tenant, "base"); /* absent: the earlier stage's */
    r = run(&t, "org= msg=empty");
    assert_string_equal(r->tenant, "base"); /* empty: the same */
    r = run(&t, "org=a|b msg=bad");
    assert_string_equal(r->tenant, "base"); /* '|' is not valid in a tenant ID: counted */
    assert_int_equal(lc_metric_family_total("log_capturer_process_tenant_invalid_total"), bad0 + 1);
    snprintf(line, sizeof(line), "org=%0*d", LC_TENANT_MAX, 7); /* at the limit: valid */
    r = run(&t, line);
    assert_int_equal(r->tenant_len, LC_TENANT_MAX);
    snprintf(line, sizeof(line), "org=%0*d", LC_TENANT_MAX + 1, 7); /* past it */
    r = run(&t, line);
    assert_string_equal(r->tenant, "base");
    assert_int_equal(lc_metric_family_total("log_capturer_process_tenant_invalid_total"), bad0 + 2);
    chain_done(&t);

    t = chain_of("      - tenant: {label: team}\n");
    r = run(&t, "x");
    assert_int_equal(r->tenant_len, 0); /* no labels: the output's tenant */
    assert_int_equal(lc_labels_intern(kv, 2, &l), 0);
    r = lc_chain_run(t.c, NULL, l, 1, "x", 1);
    assert_string_equal(r->tenant, "team-1");
    r = run(&t, "y");
    assert_string_equal(r->tenant, ""); /* not carried over to the next record */
    lc_labels_release(l);
    chain_done(&t);

    /* Loki's rule itself */
    assert_true(lc_tenant_valid("a-b_c.d!*'()", 12));
    assert_false(lc_tenant_valid(".", 1));
    assert_false(lc_tenant_valid("..", 2));
    assert_true(lc_tenant_valid("...", 3));
    assert_false(lc_tenant_valid("a b", 3));
    assert_false(lc_tenant_valid("a/b", 3));
    assert_false(lc_tenant_valid("", 0));

#define IN  "inputs:\n  - type: file\n    name: i\n    paths: [/x]\n"
#define OUT "outputs: [{type: null, name: o}]\n"
    expect_error(IN "    process: [{tenant: {}}]\n" OUT, "exactly one of value, source or label");
    expect_error(IN "    process: [{tenant: {value: a, source: b}}]\n" OUT, "exactly one of");
    expect_error(IN "    process: [{tenant: {value: 'a b'}}]\n" OUT,
                 "t.yaml:5:32: not a valid Loki tenant ID");
#undef IN
#undef OUT
}

/*
 * The prefilters of lc_rx_match give the answers PCRE2 gives: an anchored
 * pattern's first-byte table (empty subject, alternatives, caseless, a class),
 * the required byte (both cases of a letter).
 */
static void test_rx_prefilters(void **state)
{
    static const struct {
        const char *rx, *subject;
        bool want;
    } cases[] = {
        {"^(?:$|\\t|goroutine \\d+ \\[)", "", true},
        {"^(?:$|\\t|goroutine \\d+ \\[)", "\tat x", true},
        {"^(?:$|\\t|goroutine \\d+ \\[)", "goroutine 1 [running]:", true},
        {"^(?:$|\\t|goroutine \\d+ \\[)", "x goroutine 1 [", false},
        {"^(?:[ \\t]+\\S|Caused by: )", "Caused by: x", true},
        {"^(?:[ \\t]+\\S|Caused by: )", "{\"level\":1}", false},
        {"^(?:[ \\t]+\\S|Caused by: )", "", false},
        {"(?i)^caused", "CAUSED by", true},
        {"^\\d", "7", true},
        {"^\\d", "x7", false},
        {"(?i)token=\\w+", "TOKEN=abc", true},
        {"(?i)token=\\w+", "nothing here", false},
        {"[a-z]+@[a-z]+\\.com", "mail bob@example.com now", true},
        {"[a-z]+@[a-z]+\\.com", "no at sign.com", false},
        {"x*", "", true},
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lc_rx rx = {0};
        assert_int_equal(lc_rx_compile(&rx, cases[i].rx, err, sizeof(err)), 0);
        bool got = lc_rx_match(&rx, cases[i].subject, strlen(cases[i].subject));
        bool pcre = pcre2_match(rx.code, (PCRE2_SPTR)cases[i].subject, strlen(cases[i].subject), 0,
                                0, rx.md, NULL) > 0;
        if (got != cases[i].want || pcre != cases[i].want)
            fail_msg("'%s' on '%s': %d (pcre2 %d), want %d", cases[i].rx, cases[i].subject, got,
                     pcre, cases[i].want);
        lc_rx_free(&rx);
    }
    /* the tables are really there for the presets' shapes */
    struct lc_rx rx = {0};
    assert_int_equal(lc_rx_compile(&rx, "^(?:[ \\t]+\\S|Caused by: )", err, sizeof(err)), 0);
    assert_true(rx.anchored);
    assert_true(rx.first[' '] && rx.first['\t'] && rx.first['C']);
    assert_false(rx.first['{'] || rx.first['c'] || rx.first['2']);
    lc_rx_free(&rx);
    assert_int_equal(lc_rx_compile(&rx, "[a-z]+@[a-z]+", err, sizeof(err)), 0);
    assert_false(rx.anchored);
    assert_int_equal(rx.req[0], '@');
    lc_rx_free(&rx);
}

static void test_multiline_presets(void **state)
{
    struct tchain t = chain_of("      - multiline: {preset: java, max_lines: 4}\n");
    struct lc_prec *r;

    (void)state;
    assert_null(run(&t, "Exception in thread \"main\" java.lang.RuntimeException: x"));
    assert_null(t.c->rec.drop_reason); /* held, not dropped */
    assert_null(run(&t, "\tat a.B.c(B.java:1)"));
    assert_null(run(&t, "Caused by: java.io.IOException"));
    r = run(&t, "\t... 3 more"); /* the 4th line: max_lines */
    assert_line(r, "Exception in thread \"main\" java.lang.RuntimeException: x\n"
                   "\tat a.B.c(B.java:1)\nCaused by: java.io.IOException\n\t... 3 more");
    assert_null(run(&t, "INFO next"));
    r = run(&t, "INFO after");
    assert_line(r, "INFO next");
    chain_done(&t);

    t = chain_of("      - multiline: {preset: python}\n");
    assert_null(run(&t, "Traceback (most recent call last):"));
    assert_null(run(&t, "  File \"a.py\", line 1, in <module>"));
    assert_null(run(&t, "ValueError: bad"));
    assert_line(run(&t, "INFO ok"),
                "Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\n"
                "ValueError: bad");
    chain_done(&t);

    t = chain_of("      - multiline: {preset: go}\n");
    assert_null(run(&t, "panic: boom"));
    assert_null(run(&t, ""));
    assert_null(run(&t, "goroutine 1 [running]:"));
    assert_null(run(&t, "main.main()"));
    assert_null(run(&t, "\t/app/main.go:5 +0x1d"));
    assert_null(run(&t, "exit status 2"));
    assert_line(run(&t, "next"), "panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n"
                                 "\t/app/main.go:5 +0x1d\nexit status 2");
    chain_done(&t);

    /* firstline mode and max_bytes */
    t = chain_of("      - multiline: {firstline: '^\\d', max_bytes: 256}\n");
    assert_null(run(&t, "1 a"));
    assert_null(run(&t, " b"));
    assert_line(run(&t, "2 c"), "1 a\n b");
    {
        char big[200];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_null(run(&t, big));
        r = run(&t, big); /* would pass 256 bytes: what is held goes first */
        assert_non_null(r);
        assert_int_equal(r->len, 4 + sizeof(big) - 1);
        assert_memory_equal(r->line, "2 c\nxxx", 7);
    }
    chain_done(&t);
}

static void test_json_logfmt(void **state)
{
    struct tchain t =
        chain_of("      - json: {expressions: {level: '', user: ctx.user, ctx: ''}}\n");
    struct lc_prec *r;
    uint64_t fail0 = t.c->stages[0].m_fail->u;

    (void)state;
    r = run(&t, "{\"level\":\"warn\",\"ctx\":{\"user\":\"bob\",\"n\":2}}");
    assert_field(r, "level", "warn");
    assert_field(r, "user", "bob");
    assert_field(r, "ctx", "{\"user\":\"bob\",\"n\":2}");
    /* bad JSON: passed on unchanged, counted */
    r = run(&t, "{\"level\":");
    assert_line(r, "{\"level\":");
    assert_int_equal(r->nfields, 0);
    assert_int_equal(t.c->stages[0].m_fail->u - fail0, 1);

    r = run(&t,
            "{\"level\":\"a\\\"b\\u00e9\", \"ctx\": {\"x\": [1, {\"y\": 2}], \"user\": \"z\"}}");
    assert_field(r, "level", "a\"b\xc3\xa9");
    assert_field(r, "user", "z");
    assert_field(r, "ctx", "{\"x\": [1, {\"y\": 2}], \"user\": \"z\"}");
    for (size_t k = 0; k < 4; k++) {
        static const char *const bad[] = {"{\"a\":1,}", "{\"a\" 1}", "{\"a\":[1}", "[1]"};
        r = run(&t, bad[k]);
        assert_line(r, bad[k]);
        assert_int_equal(r->nfields, 0);
    }
    chain_done(&t);

    t = chain_of("      - json: {}\n");
    r = run(&t, "{\"a\":1.5,\"b\":true,\"c\":null,\"d\":[1]}");
    assert_field(r, "a", "1.5");
    assert_field(r, "b", "true");
    assert_field(r, "c", "null");
    assert_field(r, "d", "[1]");
    chain_done(&t);

    t = chain_of("      - logfmt: {}\n");
    r = run(&t, "ts=1 level=info msg=\"hello \\\"you\\\"\" flag  empty=");
    assert_field(r, "level", "info");
    assert_field(r, "msg", "hello \"you\"");
    assert_field(r, "flag", "");
    assert_field(r, "empty", "");
    chain_done(&t);

    t = chain_of("      - logfmt: {mapping: {lvl: level}}\n");
    r = run(&t, "level=debug other=x");
    assert_field(r, "lvl", "debug");
    assert_int_equal(r->nfields, 1);
    chain_done(&t);
}

static void test_timestamp_output_template_limit(void **state)
{
    struct tchain t =
        chain_of("      - logfmt: {}\n"
                 "      - timestamp: {source: ts, format: UnixMs, fallback_formats: [RFC3339, "
                 "'%Y-%m-%d %H:%M:%S', Unix]}\n"
                 "      - template: {template: '{{ .level }} {{msg}}|{{ .absent }}|', source: t}\n"
                 "      - output: {source: t}\n");
    struct lc_prec *r;

    (void)state;
    r = run(&t, "ts=1700000000123 level=info msg=hi");
    assert_int_equal(r->ts_ns, 1700000000123000000LL);
    assert_line(r, "info hi||");
    r = run(&t, "ts=2023-11-14T22:13:20.5Z level=a msg=b");
    assert_int_equal(r->ts_ns, 1700000000500000000LL);
    r = run(&t, "ts=\"2023-11-14 22:13:20\" level=a msg=b");
    assert_int_equal(r->ts_ns, 1700000000000000000LL);
    r = run(&t, "ts=1700000000.25 level=a msg=b");
    assert_int_equal(r->ts_ns, 1700000000250000000LL);
    r = run(&t, "ts=garbage level=a msg=b"); /* unparsable: time kept, counted */
    assert_int_equal(r->ts_ns, 1);
    chain_done(&t);

    /* fractions of a second: %3f exactly 3 digits, %f optional and any digits (Go's .000, .999) */
    t = chain_of("      - logfmt: {}\n"
                 "      - timestamp: {source: ts, format: '%Y-%m-%d %H:%M:%S%3f', "
                 "fallback_formats: ['%Y-%m-%dT%H:%M:%S%f%z']}\n");
    r = run(&t, "ts=\"2023-11-14 22:13:20.123\"");
    assert_int_equal(r->ts_ns, 1700000000123000000LL);
    r = run(&t, "ts=\"2023-11-14 22:13:20,007\""); /* Go takes a comma too */
    assert_int_equal(r->ts_ns, 1700000000007000000LL);
    r = run(&t, "ts=\"2023-11-14 22:13:20.12\""); /* 2 digits: not %3f, nor the fallbacks */
    assert_int_equal(r->ts_ns, 1);
    r = run(&t, "ts=2023-11-14T22:13:20.123456789+0000");
    assert_int_equal(r->ts_ns, 1700000000123456789LL);
    r = run(&t, "ts=2023-11-14T23:13:20.1234567891+0100"); /* the first 9 digits count */
    assert_int_equal(r->ts_ns, 1700000000123456789LL);
    r = run(&t, "ts=2023-11-14T22:13:20.000001+0000");
    assert_int_equal(r->ts_ns, 1700000000000001000LL);
    r = run(&t, "ts=2023-11-14T22:13:20+0000"); /* %f is optional */
    assert_int_equal(r->ts_ns, 1700000000000000000LL);
    r = run(&t, "ts=2023-11-14T22:13:20.+0000"); /* a separator without a digit */
    assert_int_equal(r->ts_ns, 1);
    chain_done(&t);

    t = chain_of("      - limit: {rate: 1, burst: 3}\n");
    for (int i = 0; i < 3; i++)
        assert_non_null(run(&t, "x"));
    assert_null(run(&t, "x"));
    assert_string_equal(t.c->rec.drop_reason, "rate_limit");
    chain_done(&t);
}

/* Multiline with the pipeline: acks ------------------------------------------ */

static struct lc_batch *held[64];
static int nheld;

static void hold_send(struct lc_output *out, struct lc_batch *b)
{
    (void)out;
    held[nheld++] = b;
}

static int noop_init(struct lc_output *out)
{
    out->ctx = out;
    return 0;
}

static struct lc_output_plugin holding = {.name = "hold", .init = noop_init, .send = hold_send};
static const struct lc_input_plugin test_in = {.name = "t"};

struct fixture {
    uv_loop_t loop;
    struct lc_config cfg;
    struct lc_config *pcfg;
    struct lc_output_conf ocf;
    struct lc_input_conf icf;
    struct lc_agent a; /* the multiline stage's loop */
    struct lc_pipeline pipe;
    struct lc_output out;
    struct lc_output *outs[1];
    struct lc_input in;
    struct lc_labels *labels;
    struct lc_source *src;
};

static struct fixture *setup(const char *process)
{
    static struct fixture f;
    struct lc_kv kv = {"job", "t"};

    memset(&f, 0, sizeof(f));
    nheld = 0;
    uv_loop_init(&f.loop);
    f.cfg.batch_bytes = 1 << 20;
    f.cfg.batch_wait_ms = 60000;
    f.cfg.max_pending_bytes = 64 << 20;
    f.ocf.name = "o";
    f.icf.name = "i";
    f.a.loop = &f.loop;
    lc_pipeline_init(&f.pipe, &f.loop, &f.cfg);
    lc_pipeline_attach(&f.pipe, &f.in, 1, &f.out, 1, NULL);
    f.out.plugin = &holding;
    f.out.conf = &f.ocf;
    f.out.pipeline = &f.pipe;
    f.out.ctx = &f.out;
    uv_timer_init(&f.loop, &f.out.flush_timer);
    f.out.flush_timer.data = &f.out;
    f.outs[0] = &f.out;
    f.in.plugin = &test_in;
    f.in.conf = &f.icf;
    f.in.agent = &f.a;
    f.in.pipeline = &f.pipe;
    f.in.ctx = &f.in;
    f.in.outs = f.outs;
    f.in.nouts = 1;
    f.pcfg = load_ok(process);
    assert_int_equal(lc_chain_new(f.pcfg->inputs[0].process, &f.in, "i", &f.in.chain), 0);
    assert_int_equal(lc_labels_intern(&kv, 1, &f.labels), 0);
    f.src = lc_source_new(&f.in, "k", "/p", f.labels, NULL, 4);
    return &f;
}

static void deliver_all(struct fixture *f)
{
    for (int i = 0; i < nheld; i++)
        lc_output_done(&f->out, held[i], LC_FATE_DELIVERED);
    nheld = 0;
}

static void teardown(struct fixture *f)
{
    lc_pipeline_flush(&f->pipe);
    deliver_all(f);
    lc_chain_stop(f->in.chain, false);
    lc_source_free(f->src);
    lc_labels_release(f->labels);
    lc_pipeline_close(&f->pipe);
    uv_close((uv_handle_t *)&f->out.flush_timer, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    lc_chain_free(f->in.chain);
    lc_config_free(f->pcfg);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(lc_labels_live(), 0);
}

/* One read block: lines emitted, then the checkpoint at `end`. */
static void read_block(struct fixture *f, const char *const *lines, int64_t end)
{
    struct lc_pos p = {.offset = end};

    for (; *lines; lines++) {
        assert_true(lc_source_writable(f->src));
        assert_int_equal(lc_pipeline_emit(&f->in, f->src, 1, *lines, strlen(*lines)), 0);
    }
    lc_source_checkpoint(f->src, &p);
}

static void test_multiline_acks_next_record(void **state)
{
    struct fixture *f = setup("      - multiline: {preset: java}\n");
    static const char *const b1[] = {"INFO a", "Exception: x", NULL};
    static const char *const b2[] = {"\tat a.B(B.java:1)", NULL};
    static const char *const b3[] = {"INFO b", NULL};

    (void)state;
    read_block(f, b1, 20); /* "INFO a" held, then sent when "Exception" starts */
    read_block(f, b2, 40);
    lc_pipeline_flush(&f->pipe);
    deliver_all(f);
    /* the trace is held: nothing past its first block commits */
    assert_int_equal(lc_source_committed(f->src)->offset, 0);
    read_block(f, b3, 50); /* the trace goes out, "INFO b" is held */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    lc_pipeline_flush(&f->pipe);
    assert_int_equal(nheld, 1);
    assert_int_equal(held[0]->n, 1);
    assert_int_equal(held[0]->recs[0].line_len, strlen("Exception: x\n\tat a.B(B.java:1)"));
    assert_memory_equal(lc_batch_line(held[0], &held[0]->recs[0]),
                        "Exception: x\n\tat a.B(B.java:1)", held[0]->recs[0].line_len);
    deliver_all(f);
    /* up to the block of the held "INFO b", not past it */
    assert_int_equal(lc_source_committed(f->src)->offset, 40);
    teardown(f);
}

/* A record's metadata goes into the batch with it, next to its line. */
static void test_metadata_into_batch(void **state)
{
    struct fixture *f =
        setup("      - logfmt: {}\n      - structured_metadata: {values: {trace: ''}}\n");
    static const char *const b1[] = {"trace=t1 msg=a", "msg=b", NULL};

    (void)state;
    read_block(f, b1, 30);
    lc_pipeline_flush(&f->pipe);
    assert_int_equal(nheld, 1);
    assert_int_equal(held[0]->n, 2);
    const struct lc_record *r = &held[0]->recs[0];
    assert_memory_equal(lc_batch_line(held[0], r), "trace=t1 msg=a", r->line_len);
    assert_string_equal(meta_str(lc_batch_meta(held[0], r), r->meta_len), "trace=t1;");
    assert_int_equal(held[0]->recs[1].meta_len, 0);
    deliver_all(f);
    teardown(f);
}

static void test_multiline_flush_after_commits(void **state)
{
    struct fixture *f = setup("      - multiline: {preset: java, flush_after: 20ms}\n");
    static const char *const b1[] = {"Exception: x", "\tat a.B(B.java:1)", NULL};
    static const char *const b2[] = {"\tat a.C(C.java:2)", NULL};

    (void)state;
    read_block(f, b1, 30);
    read_block(f, b2, 48);
    assert_int_equal(lc_source_committed(f->src)->offset, 0);
    /* the input is idle: the timer sends the trace; its mark must get sealed */
    for (int i = 0; i < 200 && (!f->out.open || f->out.open->n == 0); i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_non_null(f->out.open);
    assert_int_equal(f->out.open->n, 1);
    lc_pipeline_flush(&f->pipe);
    deliver_all(f);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(lc_source_committed(f->src)->offset, 48);
    assert_true(lc_source_drained(f->src));
    teardown(f);
}

static void test_multiline_ring_full_flush(void **state)
{
    /* the ring holds 4 marks: the held trace's blocks fill it; the timer flush still lands */
    struct fixture *f = setup("      - multiline: {preset: java, flush_after: 20ms}\n");
    static const char *const b1[] = {"Exception: x", NULL};
    static const char *const bn[] = {"\tat a.B(B.java:1)", NULL};

    (void)state;
    read_block(f, b1, 13);
    for (int k = 1; k < 4; k++)
        read_block(f, bn, 13 + 18 * k);
    assert_false(lc_source_writable(f->src));
    for (int i = 0; i < 200 && (!f->out.open || f->out.open->n == 0); i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_non_null(f->out.open);
    lc_pipeline_flush(&f->pipe);
    deliver_all(f);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(lc_source_committed(f->src)->offset, 13 + 18 * 3);
    assert_true(lc_source_writable(f->src));
    teardown(f);
}

static void test_multiline_stop_rereads(void **state)
{
    struct fixture *f = setup("      - multiline: {preset: java}\n");
    static const char *const b1[] = {"INFO a", NULL};
    static const char *const b2[] = {"Exception: x", "\tat a.B(B.java:1)", NULL};

    (void)state;
    read_block(f, b1, 7);
    read_block(f, b2, 40); /* INFO a goes out; the trace is held */
    lc_pipeline_flush(&f->pipe);
    deliver_all(f);
    assert_int_equal(lc_source_committed(f->src)->offset, 7);
    /* a restart (reload, shutdown) gives the held trace up: never committed, read again */
    lc_chain_stop(f->in.chain, false);
    assert_true(lc_source_stuck(f->src));
    assert_int_equal(lc_source_committed(f->src)->offset, 7);
    teardown(f);
}

/* The tenant of each batch (held in order), "" for the output's own. */
static void assert_batches(const char *const *tenants, const uint32_t *counts)
{
    int n = 0;
    for (; tenants[n]; n++) {
        assert_true(n < nheld);
        assert_string_equal(held[n]->tenant, tenants[n]);
        assert_int_equal(held[n]->n, counts[n]);
    }
    assert_int_equal(nheld, n);
}

/* One batch per tenant; at max_tenant_batches open the oldest is sealed early and counted. */
static void test_tenant_batches(void **state)
{
    struct fixture *f = setup("      - logfmt: {}\n      - tenant: {source: org}\n");
    static const char *const b1[] = {"org=a m=1", "org=b m=2", "m=3", "org=a m=4", NULL};
    static const char *const b2[] = {"org=c m=5", NULL};
    struct lc_metric_family *fam =
        lc_metric_family(LC_COUNTER, "test_tenant_sealed_total", "t", (const char *const[]){NULL});

    (void)state;
    f->out.m_tenant_sealed = lc_metric_series(fam);
    int64_t sealed0 = lc_metric_family_total("test_tenant_sealed_total");
    f->ocf.max_tenant_batches = 3;
    read_block(f, b1, 40);
    assert_int_equal(f->out.nopen, 3);
    assert_int_equal(nheld, 0);
    read_block(f, b2, 50); /* a fourth tenant: the oldest (a) goes out first */
    assert_int_equal(f->out.nopen, 3);
    assert_batches((const char *const[]){"a", NULL}, (const uint32_t[]){2});
    assert_int_equal(lc_metric_family_total("test_tenant_sealed_total"), sealed0 + 1);
    lc_pipeline_flush(&f->pipe);
    assert_int_equal(f->out.nopen, 0);
    assert_batches((const char *const[]){"a", "b", "", "c", NULL}, (const uint32_t[]){2, 1, 1, 1});
    assert_memory_equal(lc_batch_line(held[2], &held[2]->recs[0]), "m=3", 3);
    /* every batch refs the source's marks: positions commit once all are done */
    for (int i = 0; i < 3; i++)
        lc_output_done(&f->out, held[i], LC_FATE_DELIVERED);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(lc_source_committed(f->src)->offset, 40);
    held[0] = held[3];
    nheld = 1;
    deliver_all(f);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(lc_source_committed(f->src)->offset, 50);

    /* a limit of one: every change of tenant seals the batch before */
    f->ocf.max_tenant_batches = 1;
    read_block(f, b1, 90);
    lc_pipeline_flush(&f->pipe);
    assert_batches((const char *const[]){"a", "b", "", "a", NULL}, (const uint32_t[]){1, 1, 1, 1});
    deliver_all(f);
    teardown(f);
}

/* The age of the oldest open batch is what the flush timer waits for; each goes at its age. */
static void test_tenant_batches_age(void **state)
{
    struct fixture *f = setup("      - logfmt: {}\n      - tenant: {source: org}\n");
    static const char *const b1[] = {"org=a m=1", NULL};
    static const char *const b2[] = {"org=b m=2", NULL};

    (void)state;
    f->cfg.batch_wait_ms = 300; /* wide margins: a sanitizer build is slow */
    read_block(f, b1, 10);
    uv_sleep(150);
    uv_update_time(&f->loop);
    read_block(f, b2, 20);
    for (int i = 0; i < 200 && nheld == 0; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_batches((const char *const[]){"a", NULL}, (const uint32_t[]){1});
    assert_int_equal(f->out.nopen, 1); /* b is younger: still open */
    for (int i = 0; i < 200 && nheld == 1; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_batches((const char *const[]){"a", "b", NULL}, (const uint32_t[]){1, 1});
    deliver_all(f);
    teardown(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_named_process),
        cmocka_unit_test(test_regex_fields_and_failure),
        cmocka_unit_test(test_replace_presets),
        cmocka_unit_test(test_drop_keep),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_match_errors),
        cmocka_unit_test(test_decolorize),
        cmocka_unit_test(test_labels_cardinality_guard),
        cmocka_unit_test(test_structured_metadata),
        cmocka_unit_test(test_tenant),
        cmocka_unit_test(test_rx_prefilters),
        cmocka_unit_test(test_multiline_presets),
        cmocka_unit_test(test_json_logfmt),
        cmocka_unit_test(test_timestamp_output_template_limit),
        cmocka_unit_test(test_multiline_acks_next_record),
        cmocka_unit_test(test_metadata_into_batch),
        cmocka_unit_test(test_multiline_flush_after_commits),
        cmocka_unit_test(test_multiline_ring_full_flush),
        cmocka_unit_test(test_multiline_stop_rereads),
        cmocka_unit_test(test_tenant_batches),
        cmocka_unit_test(test_tenant_batches_age),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
