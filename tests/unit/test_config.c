/* SPDX-License-Identifier: MIT */
/* test_config.c: YAML configuration loading: good configs, every error with its line:col, env. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/plugin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Allocation failure injection (curl's torture): the test binary interposes
 * malloc and friends, which glibc and libyaml also call, and fails the Nth
 * allocation once. Not under AddressSanitizer, which owns the allocator.
 */
#if defined(__SANITIZE_ADDRESS__)
#define LC_TORTURE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LC_TORTURE 0
#endif
#endif
#ifndef LC_TORTURE
#define LC_TORTURE 1
#endif

#if LC_TORTURE
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static bool torture_on;
static long torture_seq, torture_fail_at, torture_live;

static bool torture_fails(void)
{
    if (!torture_on)
        return false;
    return ++torture_seq == torture_fail_at;
}

void *malloc(size_t n)
{
    void *p = torture_fails() ? NULL : __libc_malloc(n);
    torture_live += torture_on && p;
    return p;
}

void *calloc(size_t n, size_t size)
{
    void *p = torture_fails() ? NULL : __libc_calloc(n, size);
    torture_live += torture_on && p;
    return p;
}

void *realloc(void *old, size_t n)
{
    void *p = torture_fails() ? NULL : __libc_realloc(old, n);
    torture_live += torture_on && p && !old;
    return p;
}

void free(void *p)
{
    torture_live -= torture_on && p;
    __libc_free(p);
}
#endif

/* Test-local plugins, so that these tests do not depend on the real plugins' tables. */
struct fake_in_conf {
    struct lc_strlist paths;
    struct lc_strlist exclude;
    int start_at;
    int64_t max_age_ms;
    int64_t max_line_bytes;
    bool follow;
    int64_t retries;
    char *password;
    struct {
        char *pattern;
        int64_t max_lines;
    } multiline;
};

static const char *const fake_start_at[] = {"end", "beginning", NULL};

#define FI(f) offsetof(struct fake_in_conf, f)
static const struct lc_option fake_multiline[] = {
    {LC_OPT_STR, "pattern", NULL, offsetof(struct fake_in_conf, multiline.pattern) - FI(multiline)},
    {LC_OPT_INT, "max_lines", "100",
     offsetof(struct fake_in_conf, multiline.max_lines) - FI(multiline), 1, 1000},
    LC_OPT_END,
};

static const struct lc_option fake_in_options[] = {
    {LC_OPT_STRLIST, "paths", NULL, FI(paths), .flags = LC_OPT_REQUIRED, .help = "files"},
    {LC_OPT_STRLIST, "exclude", "[\"*.gz\"]", FI(exclude)},
    {LC_OPT_ENUM, "start_at", "end", FI(start_at), .choices = fake_start_at},
    {LC_OPT_DURATION, "max_age", "0", FI(max_age_ms)},
    {LC_OPT_SIZE, "max_line_bytes", "256KiB", FI(max_line_bytes), 1024, 16 << 20},
    {LC_OPT_BOOL, "follow", "true", FI(follow)},
    {LC_OPT_INT, "retries", "3", FI(retries), 0, 10},
    {LC_OPT_STR, "password", NULL, FI(password), .flags = LC_OPT_SECRET},
    {LC_OPT_SECTION, "multiline", NULL, FI(multiline), .sub = fake_multiline},
    LC_OPT_END,
};

static const struct lc_input_plugin fake_file = {
    .name = "file",
    .options = fake_in_options,
    .conf_size = sizeof(struct fake_in_conf),
};

struct fake_loki_conf {
    char *url;
    char *token;
    int64_t max_body;
    struct lc_kvlist headers;
    struct {
        int64_t initial_ms;
        int64_t max_ms;
        int drop_policy;
    } retry;
    struct {
        int64_t failures;
        int64_t cooldown_ms;
    } breaker;
};

static const char *const fake_drop[] = {"oldest", "newest", "random", NULL};

#define FL(f) offsetof(struct fake_loki_conf, f)
static const struct lc_option fake_retry[] = {
    {LC_OPT_DURATION, "initial", "1s", FL(retry.initial_ms) - FL(retry), 1, 0},
    {LC_OPT_DURATION, "max", "60s", FL(retry.max_ms) - FL(retry), 1, 0},
    {LC_OPT_ENUM, "drop_policy", "oldest", FL(retry.drop_policy) - FL(retry), .choices = fake_drop},
    LC_OPT_END,
};
static const struct lc_option fake_breaker[] = {
    {LC_OPT_INT, "failures", NULL, FL(breaker.failures) - FL(breaker), 1, 100,
     .flags = LC_OPT_REQUIRED},
    {LC_OPT_DURATION, "cooldown", "30s", FL(breaker.cooldown_ms) - FL(breaker)},
    LC_OPT_END,
};
static const struct lc_option fake_loki_options[] = {
    {LC_OPT_STR, "url", NULL, FL(url), .flags = LC_OPT_REQUIRED},
    {LC_OPT_STR, "token", NULL, FL(token), .flags = LC_OPT_SECRET},
    {LC_OPT_SIZE, "max_body", "1MiB", FL(max_body), 4096, 64 << 20},
    {LC_OPT_MAP, "headers", NULL, FL(headers), .flags = LC_OPT_HEADERS},
    {LC_OPT_SECTION, "retry", NULL, FL(retry), .sub = fake_retry},
    {LC_OPT_SECTION, "breaker", NULL, FL(breaker), .sub = fake_breaker},
    LC_OPT_END,
};

static const struct lc_output_plugin fake_loki = {
    .name = "loki",
    .options = fake_loki_options,
    .conf_size = sizeof(struct fake_loki_conf),
};
static const struct lc_output_plugin fake_stdout = {.name = "stdout"}; /* no options at all */

static const struct lc_input_plugin *fake_input_find(const char *name)
{
    return strcmp(name, "file") == 0 ? &fake_file : NULL;
}

static const struct lc_output_plugin *fake_output_find(const char *name)
{
    if (strcmp(name, "loki") == 0)
        return &fake_loki;
    return strcmp(name, "stdout") == 0 ? &fake_stdout : NULL;
}

static int use_fakes(void **state)
{
    (void)state;
    lc_config_input_lookup = fake_input_find;
    lc_config_output_lookup = fake_output_find;
    setenv("LC_TEST_DIR", "/srv/lc", 1);
    setenv("LC_TEST_EMPTY", "", 1);
    setenv("LC_TEST_SIZE", "2MiB", 1);
    unsetenv("LC_TEST_UNSET");
    unsetenv("LC_STATE_DIR");
    return 0;
}

static int use_registry(void **state)
{
    (void)state;
    lc_config_input_lookup = lc_input_plugin_find;
    lc_config_output_lookup = lc_output_plugin_find;
    return 0;
}

#define OUT_STDOUT "outputs: [{type: stdout, name: out}]\n"
#define IN_SYSTEM  "inputs:\n  - type: file\n    name: system\n    paths: [/var/log/syslog]\n"

static struct lc_config *load_ok(const char *yaml)
{
    struct lc_config *cfg = NULL;
    char err[512];
    int rc = lc_config_load_string(yaml, "t.yaml", &cfg, err, sizeof(err));

    if (rc != 0)
        fail_msg("unexpected error %d: %s\n--- yaml:\n%s", rc, err, yaml);
    assert_non_null(cfg);
    return cfg;
}

struct err_case {
    const char *yaml;
    const char *err; /* the whole message */
};

static const struct err_case err_cases[] = {
    /* unknown keys, at the key */
    {"inputs:\n  - type: file\n    name: system\n    pathz: [/x]\n" OUT_STDOUT,
     "t.yaml:4:5: unknown key 'pathz' in input 'system' (type file)"},
    {"foo: 1\n" IN_SYSTEM OUT_STDOUT, "t.yaml:1:1: unknown key 'foo'"},
    {IN_SYSTEM "outputs:\n  - type: loki\n    name: l\n    url: http://x\n"
               "    retry: {initial: 1s, maxx: 2s}\n",
     "t.yaml:9:26: unknown key 'retry.maxx' in output 'l' (type loki)"},
    {IN_SYSTEM "outputs:\n  - type: stdout\n    name: out\n    url: x\n",
     "t.yaml:8:5: unknown key 'url' in output 'out' (type stdout)"},
    /* wrong types, at the value */
    {IN_SYSTEM "    max_age: {a: 1}\n" OUT_STDOUT,
     "t.yaml:5:14: expected a duration, got a mapping (key 'max_age' in input 'system')"},
    {IN_SYSTEM "    retries: [1]\n" OUT_STDOUT,
     "t.yaml:5:14: expected an integer, got a sequence (key 'retries' in input 'system')"},
    {IN_SYSTEM "    retries: abc\n" OUT_STDOUT,
     "t.yaml:5:14: invalid integer 'abc' (key 'retries' in input 'system')"},
    {IN_SYSTEM "    retries:\n" OUT_STDOUT,
     "t.yaml:5:13: expected an integer, got nothing (key 'retries' in input 'system')"},
    {IN_SYSTEM "    follow: maybe\n" OUT_STDOUT,
     "t.yaml:5:13: invalid boolean 'maybe': expected true/false, yes/no or on/off (key 'follow' "
     "in input 'system')"},
    {IN_SYSTEM "    exclude: [[a]]\n" OUT_STDOUT,
     "t.yaml:5:15: expected a string, got a sequence (key 'exclude' in input 'system')"},
    {"inputs:\n  - type: file\n    name: system\n    paths: {a: b}\n" OUT_STDOUT,
     "t.yaml:4:12: expected a string or a sequence of strings, got a mapping (key 'paths' in "
     "input 'system')"},
    {IN_SYSTEM "    labels: [a]\n" OUT_STDOUT,
     "t.yaml:5:13: expected a mapping, got a sequence (key 'labels' in input 'system')"},
    {IN_SYSTEM "    labels: {job: [a]}\n" OUT_STDOUT,
     "t.yaml:5:19: expected a string, got a sequence (key 'labels' in input 'system')"},
    {IN_SYSTEM "    labels: {job-name: x}\n" OUT_STDOUT,
     "t.yaml:5:14: invalid label name 'job-name': use [a-zA-Z_][a-zA-Z0-9_]* (key 'labels' in "
     "input 'system')"},
    {IN_SYSTEM "    labels: {a: x, a: y}\n" OUT_STDOUT,
     "t.yaml:5:20: duplicate key 'a' (key 'labels' in input 'system')"},
    {IN_SYSTEM "outputs:\n  - type: loki\n    name: l\n    url: x\n    retry: 5\n",
     "t.yaml:9:12: expected a mapping, got a scalar (key 'retry' in output 'l')"},
    {"inputs: [x]\n" OUT_STDOUT, "t.yaml:1:10: expected a mapping for input #1, got a scalar"},
    {"inputs: {a: b}\n" OUT_STDOUT,
     "t.yaml:1:9: expected a sequence, got a mapping (key 'inputs')"},
    {"- a\n", "t.yaml:1:1: expected a mapping at the top level, got a sequence"},
    {"? [a]\n: b\n", "t.yaml:1:3: expected a key, got a sequence"},
    /* out of range, bad enum values */
    {IN_SYSTEM "    retries: 11\n" OUT_STDOUT,
     "t.yaml:5:14: value '11' out of range: must be between 0 and 10 (key 'retries' in input "
     "'system')"},
    {IN_SYSTEM "    retries: -1\n" OUT_STDOUT,
     "t.yaml:5:14: value '-1' out of range: must be between 0 and 10 (key 'retries' in input "
     "'system')"},
    {IN_SYSTEM "    retries: 99999999999999999999\n" OUT_STDOUT,
     "t.yaml:5:14: value '99999999999999999999' out of range: must be between 0 and 10 (key "
     "'retries' in input 'system')"},
    {IN_SYSTEM "    start_at: middle\n" OUT_STDOUT,
     "t.yaml:5:15: invalid value 'middle': expected one of end, beginning (key 'start_at' in "
     "input 'system')"},
    {IN_SYSTEM "    max_line_bytes: 100\n" OUT_STDOUT,
     "t.yaml:5:21: value '100' out of range: must be between 1KiB and 16MiB (key "
     "'max_line_bytes' in input 'system')"},
    {IN_SYSTEM "    multiline: {max_lines: 0}\n" OUT_STDOUT,
     "t.yaml:5:28: value '0' out of range: must be between 1 and 1000 (key 'multiline.max_lines' "
     "in input 'system')"},
    {"max_pending_bytes: 1KiB\n" IN_SYSTEM OUT_STDOUT,
     "t.yaml:1:20: value '1KiB' out of range: must be 0 or at least 1MiB (key "
     "'max_pending_bytes')"},
    {"batch_bytes: 128MiB\n" IN_SYSTEM OUT_STDOUT,
     "t.yaml:1:14: value '128MiB' out of range: must be between 4KiB and 64MiB (key "
     "'batch_bytes')"},
    {"batch_bytes: 4095\n" IN_SYSTEM OUT_STDOUT,
     "t.yaml:1:14: value '4095' out of range: must be between 4KiB and 64MiB (key "
     "'batch_bytes')"},
    {"batch_bytes: -1\n" IN_SYSTEM OUT_STDOUT,
     "t.yaml:1:14: invalid size '-1': expected a number and a unit B, KiB, MiB, GiB, TiB, KB, "
     "MB, GB or TB (key 'batch_bytes')"},
    {"batch_wait: 0ms\n" IN_SYSTEM OUT_STDOUT,
     "t.yaml:1:13: value '0ms' out of range: must be at least 1ms (key 'batch_wait')"},
    {"shutdown_timeout: 1h30\n" IN_SYSTEM OUT_STDOUT,
     "t.yaml:1:19: invalid duration '1h30': expected a number and a unit ms, s, m, h or d (e.g. "
     "250ms, 1h30m) (key 'shutdown_timeout')"},
    {"log_level: verbose\n" IN_SYSTEM OUT_STDOUT,
     "t.yaml:1:12: invalid value 'verbose': expected one of debug, info, warn, error (key "
     "'log_level')"},
    {"listen: localhost\n" IN_SYSTEM OUT_STDOUT,
     "t.yaml:1:9: expected HOST:PORT (port 1-65535), \"off\" or \"\" (key 'listen')"},
    {"listen: 127.0.0.1:0\n" IN_SYSTEM OUT_STDOUT,
     "t.yaml:1:9: expected HOST:PORT (port 1-65535), \"off\" or \"\" (key 'listen')"},
    {"state_dir: ''\n" IN_SYSTEM OUT_STDOUT, "t.yaml:1:12: must not be empty (key 'state_dir')"},
    /* duplicates */
    {"log_level: info\nlog_level: warn\n" IN_SYSTEM OUT_STDOUT,
     "t.yaml:2:1: duplicate key 'log_level'"},
    {IN_SYSTEM "    paths: [/b]\n" OUT_STDOUT,
     "t.yaml:5:5: duplicate key 'paths' in input 'system' (type file)"},
    {IN_SYSTEM "    name: other\n" OUT_STDOUT, "t.yaml:5:5: duplicate key 'name' in input #1"},
    {IN_SYSTEM "  - type: file\n    name: system\n    paths: x\n" OUT_STDOUT,
     "t.yaml:6:11: duplicate input name 'system', first used at line 3 (key 'name')"},
    {IN_SYSTEM "outputs:\n  - {type: stdout, name: o}\n  - {type: stdout, name: o}\n",
     "t.yaml:7:26: duplicate output name 'o', first used at line 6 (key 'name')"},
    {"outputs: []\noutputs: []\n", "t.yaml:2:1: duplicate key 'outputs'"},
    /* names and references */
    {"inputs:\n  - type: file\n    name: a b\n    paths: x\n" OUT_STDOUT,
     "t.yaml:3:11: invalid name 'a b': use 1 to 128 letters, digits, '_', '.' or '-' (key "
     "'name' in input #1)"},
    {"inputs:\n  - type: file\n    name: ''\n    paths: x\n" OUT_STDOUT,
     "t.yaml:3:11: invalid name '': use 1 to 128 letters, digits, '_', '.' or '-' (key 'name' "
     "in input #1)"},
    {"inputs:\n  - type: file\n    name: a\n    paths: x\n    outputs: [out, nope]\n" OUT_STDOUT,
     "t.yaml:5:20: unknown output 'nope' (key 'outputs' in input 'a')"},
    {"inputs:\n  - type: file\n    name: a\n    paths: x\n    outputs: nope\n" OUT_STDOUT,
     "t.yaml:5:14: unknown output 'nope' (key 'outputs' in input 'a')"},
    {"inputs:\n  - type: file\n    name: a\n    paths: x\n    outputs: [out, out]\n" OUT_STDOUT,
     "t.yaml:5:20: output 'out' listed twice (key 'outputs' in input 'a')"},
    {"inputs:\n  - type: filez\n    name: a\n" OUT_STDOUT,
     "t.yaml:2:11: unknown input type 'filez' (key 'type' in input #1)"},
    {IN_SYSTEM "outputs:\n  - type: kafka\n    name: k\n",
     "t.yaml:6:11: unknown output type 'kafka' (key 'type' in output #1)"},
    /* missing required keys, at the entry */
    {"inputs:\n  - name: a\n    paths: x\n" OUT_STDOUT,
     "t.yaml:2:5: missing required key 'type' in input #1"},
    {"inputs:\n  - type: file\n    paths: x\n" OUT_STDOUT,
     "t.yaml:2:5: missing required key 'name' in input #1 (type file)"},
    {"inputs:\n  - type: file\n    name: a\n" OUT_STDOUT,
     "t.yaml:2:5: missing required key 'paths' in input 'a' (type file)"},
    {IN_SYSTEM "outputs:\n  - type: loki\n    name: l\n",
     "t.yaml:6:5: missing required key 'url' in output 'l' (type loki)"},
    {IN_SYSTEM "outputs:\n  - type: loki\n    name: l\n    url: x\n    breaker: {cooldown: 1s}\n",
     "t.yaml:9:14: missing required key 'breaker.failures' in output 'l' (type loki)"},
    {IN_SYSTEM "outputs:\n  - type: stdout\n", "t.yaml:6:5: missing required key 'name' in "
                                               "output #1 (type stdout)"},
    /* no inputs, no outputs, nothing */
    {OUT_STDOUT, "t.yaml:1:1: no inputs configured (key 'inputs')"},
    {"inputs: []\n" OUT_STDOUT, "t.yaml:1:9: no inputs configured (key 'inputs')"},
    {"inputs:\n" OUT_STDOUT, "t.yaml:1:8: no inputs configured (key 'inputs')"},
    {IN_SYSTEM, "t.yaml:1:1: no outputs configured (key 'outputs')"},
    {"", "t.yaml:1:1: the configuration is empty"},
    {"# only a comment\n\n", "t.yaml:1:1: the configuration is empty"},
    {"---\n...\n", "t.yaml:1:1: the configuration is empty"},
    {"a: 1\n---\nb: 2\n", "t.yaml:3:1: only one YAML document is allowed"},
    /* environment substitution */
    {"state_dir: ${LC_TEST_UNSET}\n" IN_SYSTEM OUT_STDOUT,
     "t.yaml:1:12: environment variable 'LC_TEST_UNSET' is not set (key 'state_dir')"},
    {"inputs:\n  - type: file\n    name: system\n    paths: [\"/a\", "
     "\"${LC_TEST_UNSET}/x\"]\n" OUT_STDOUT,
     "t.yaml:4:19: environment variable 'LC_TEST_UNSET' is not set (key 'paths' in input "
     "'system')"},
    {"state_dir: ${1BAD}\n" IN_SYSTEM OUT_STDOUT,
     "t.yaml:1:12: invalid variable reference '${1BAD}' (key 'state_dir')"},
    {"state_dir: ${A-b}\n" IN_SYSTEM OUT_STDOUT,
     "t.yaml:1:12: invalid variable reference '${A-b}' (key 'state_dir')"},
    {"state_dir: ${}\n" IN_SYSTEM OUT_STDOUT,
     "t.yaml:1:12: invalid variable reference '${}' (key 'state_dir')"},
    {"state_dir: /a/${LC_TEST_DIR\n" IN_SYSTEM OUT_STDOUT,
     "t.yaml:1:12: unterminated '${' in value (key 'state_dir')"},
    {"batch_bytes: ${LC_TEST_DIR}\n" IN_SYSTEM OUT_STDOUT,
     "t.yaml:1:14: invalid size '/srv/lc': expected a number and a unit B, KiB, MiB, GiB, TiB, "
     "KB, MB, GB or TB (key 'batch_bytes')"},
    {"state_dir: \"a\\0b\"\n" IN_SYSTEM OUT_STDOUT,
     "t.yaml:1:12: value contains a NUL character (key 'state_dir')"},
};

static void test_errors(void **state)
{
    int failed = 0;

    (void)state;
    for (size_t k = 0; k < sizeof(err_cases) / sizeof(err_cases[0]); k++) {
        struct lc_config *cfg = (struct lc_config *)0x1;
        char err[512] = "";
        int rc = lc_config_load_string(err_cases[k].yaml, "t.yaml", &cfg, err, sizeof(err));

        if (rc >= 0 || cfg != NULL || strcmp(err, err_cases[k].err) != 0) {
            print_error("case %zu: rc %d\n got: %s\nwant: %s\n--- yaml:\n%s", k, rc, err,
                        err_cases[k].err, err_cases[k].yaml);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

/* YAML syntax errors: position and libyaml's words. */
static void test_syntax_errors(void **state)
{
    static const struct err_case cases[] = {
        {"inputs: [\n", "t.yaml:2:1: YAML syntax error: did not find expected node content "
                        "while parsing a flow node"},
        {"a: b: c\n", "t.yaml:1:5: YAML syntax error: mapping values are not allowed in this "
                      "context"},
        {"a: 1\n\tb: 2\n", "t.yaml:2:1: YAML syntax error: found a tab character that violates "
                           "indentation while scanning a plain scalar"},
        {"a: *nope\n", "t.yaml:1:4: YAML syntax error: found undefined alias"},
        {"a: 1\nb: \"x\xff\"\n", "t.yaml:2:6: YAML syntax error: invalid leading UTF-8 octet"},
        {"a: 1\n---\n[\n", "t.yaml:4:1: YAML syntax error: did not find expected node content "
                           "while parsing a flow node"},
    };

    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct lc_config *cfg = NULL;
        char err[512] = "";
        int rc = lc_config_load_string(cases[k].yaml, "t.yaml", &cfg, err, sizeof(err));

        if (rc != -EINVAL || cfg != NULL || strcmp(err, cases[k].err) != 0)
            fail_msg("syntax case %zu: rc %d\n got: %s\nwant: %s", k, rc, err, cases[k].err);
    }
}

static void test_full_config(void **state)
{
    static const char yaml[] = "# a comment\n"
                               "state_dir: /tmp/state\n"
                               "listen: off\n"
                               "log_level: debug\n"
                               "shutdown_timeout: 2m\n"
                               "checkpoint_interval: 250ms\n"
                               "max_pending_bytes: 8MiB\n"
                               "batch_bytes: 64KiB\n"
                               "batch_wait: 1.5s\n"
                               "outputs:\n" /* before inputs: references resolve anyway */
                               "  - type: loki\n"
                               "    name: loki.main\n"
                               "    url: http://127.0.0.1:3100\n"
                               "    token: s3cret\n"
                               "    labels: {host: h1}\n"
                               "    headers: {X-A: '1', X-B: two}\n"
                               "    retry: {max: 2m, drop_policy: random}\n"
                               "    breaker:\n"
                               "      failures: 7\n"
                               "  - {type: stdout, name: out}\n"
                               "inputs:\n"
                               "  - type: file\n"
                               "    name: sys-1\n"
                               "    paths: /var/log/syslog\n" /* one scalar is a list of one */
                               "    exclude: []\n"
                               "    start_at: beginning\n"
                               "    max_age: 1h\n"
                               "    max_line_bytes: 1MiB\n"
                               "    follow: off\n"
                               "    retries: 0\n"
                               "    outputs: [loki.main]\n"
                               "    labels:\n"
                               "      job: system\n"
                               "      env: \"prod\"\n"
                               "    multiline: {pattern: '^\\S', max_lines: 50}\n"
                               "  - type: file\n"
                               "    name: second\n"
                               "    paths: [a, 'b', \"c\"]\n";
    struct lc_config *cfg = load_ok(yaml);
    const struct fake_in_conf *fi;
    const struct fake_loki_conf *fl;

    (void)state;
    assert_string_equal(cfg->source, "t.yaml");
    assert_string_equal(cfg->state_dir, "/tmp/state");
    assert_string_equal(cfg->listen, "off");
    assert_int_equal(cfg->log_level, 0);
    assert_int_equal(cfg->shutdown_timeout_ms, 120000);
    assert_int_equal(cfg->checkpoint_interval_ms, 250);
    assert_int_equal(cfg->max_pending_bytes, 8 << 20);
    assert_int_equal(cfg->batch_bytes, 65536);
    assert_int_equal(cfg->batch_wait_ms, 1500);

    assert_int_equal(cfg->noutputs, 2);
    assert_string_equal(cfg->outputs[0].type, "loki");
    assert_string_equal(cfg->outputs[0].name, "loki.main");
    assert_ptr_equal(cfg->outputs[0].plugin, &fake_loki);
    assert_string_equal(lc_kvlist_get(&cfg->outputs[0].labels, "host"), "h1");
    fl = cfg->outputs[0].conf;
    assert_string_equal(fl->url, "http://127.0.0.1:3100");
    assert_string_equal(fl->token, "s3cret");
    assert_int_equal(fl->max_body, 1 << 20);
    assert_int_equal(fl->headers.n, 2);
    assert_string_equal(lc_kvlist_get(&fl->headers, "X-A"), "1");
    assert_string_equal(lc_kvlist_get(&fl->headers, "X-B"), "two");
    assert_int_equal(fl->retry.initial_ms, 1000); /* section default kept */
    assert_int_equal(fl->retry.max_ms, 120000);
    assert_int_equal(fl->retry.drop_policy, 2);
    assert_int_equal(fl->breaker.failures, 7);
    assert_int_equal(fl->breaker.cooldown_ms, 30000);
    assert_ptr_equal(cfg->outputs[1].plugin, &fake_stdout);
    assert_null(cfg->outputs[1].conf);

    assert_int_equal(cfg->ninputs, 2);
    assert_string_equal(cfg->inputs[0].name, "sys-1");
    assert_int_equal(cfg->inputs[0].outputs.n, 1);
    assert_string_equal(cfg->inputs[0].outputs.v[0], "loki.main");
    assert_int_equal(cfg->inputs[0].labels.n, 2);
    assert_string_equal(lc_kvlist_get(&cfg->inputs[0].labels, "env"), "prod");
    fi = cfg->inputs[0].conf;
    assert_int_equal(fi->paths.n, 1);
    assert_string_equal(fi->paths.v[0], "/var/log/syslog");
    assert_int_equal(fi->exclude.n, 0); /* [] replaces the default */
    assert_int_equal(fi->start_at, 1);
    assert_int_equal(fi->max_age_ms, 3600000);
    assert_int_equal(fi->max_line_bytes, 1 << 20);
    assert_false(fi->follow);
    assert_int_equal(fi->retries, 0);
    assert_string_equal(fi->multiline.pattern, "^\\S");
    assert_int_equal(fi->multiline.max_lines, 50);

    assert_int_equal(cfg->inputs[1].outputs.n, 0); /* every output */
    assert_int_equal(cfg->inputs[1].labels.n, 0);
    fi = cfg->inputs[1].conf;
    assert_int_equal(fi->paths.n, 3);
    assert_string_equal(fi->paths.v[2], "c");
    lc_config_free(cfg);
}

static void test_defaults(void **state)
{
    struct lc_config *cfg = load_ok(IN_SYSTEM OUT_STDOUT);
    const struct fake_in_conf *fi = cfg->inputs[0].conf;

    (void)state;
    assert_string_equal(cfg->state_dir, "/var/lib/log_capturer");
    assert_string_equal(cfg->listen, "127.0.0.1:9431");
    assert_int_equal(cfg->log_level, 1); /* info */
    assert_int_equal(cfg->shutdown_timeout_ms, 10000);
    assert_int_equal(cfg->checkpoint_interval_ms, 1000);
    assert_int_equal(cfg->max_pending_bytes, 0);
    assert_int_equal(cfg->batch_bytes, 1 << 20);
    assert_int_equal(cfg->batch_wait_ms, 1000);
    assert_int_equal(fi->exclude.n, 1);
    assert_string_equal(fi->exclude.v[0], "*.gz");
    assert_int_equal(fi->start_at, 0);
    assert_int_equal(fi->max_age_ms, 0);
    assert_int_equal(fi->max_line_bytes, 256 << 10);
    assert_true(fi->follow);
    assert_int_equal(fi->retries, 3);
    assert_null(fi->password);
    assert_null(fi->multiline.pattern);
    assert_int_equal(fi->multiline.max_lines, 100);
    lc_config_free(cfg);
}

static void test_booleans(void **state)
{
    static const struct {
        const char *word;
        bool want;
    } cases[] = {{"true", true}, {"false", false}, {"yes", true}, {"no", false}, {"on", true},
                 {"off", false}, {"True", true},   {"NO", false}, {"'on'", true}};
    char yaml[256];

    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct lc_config *cfg;
        snprintf(yaml, sizeof(yaml), IN_SYSTEM "    follow: %s\n" OUT_STDOUT, cases[k].word);
        cfg = load_ok(yaml);
        if (((struct fake_in_conf *)cfg->inputs[0].conf)->follow != cases[k].want)
            fail_msg("follow: %s", cases[k].word);
        lc_config_free(cfg);
    }
}

static void test_env(void **state)
{
    static const struct {
        const char *value;
        const char *want;
    } cases[] = {
        {"${LC_TEST_DIR}", "/srv/lc"},
        {"${LC_TEST_DIR}/sub", "/srv/lc/sub"},
        {"x${LC_TEST_DIR}y${LC_TEST_DIR}", "x/srv/lcy/srv/lc"},
        {"'${LC_TEST_UNSET:-/default}'", "/default"},
        {"${LC_TEST_UNSET:-}", ""},
        {"${LC_TEST_UNSET:-a b:c-d}", "a b:c-d"},
        {"${LC_TEST_EMPTY:-fallback}", "fallback"}, /* empty counts as unset with :- */
        {"\"${LC_TEST_EMPTY}\"", ""},
        {"${LC_TEST_DIR:-unused}", "/srv/lc"},
        {"$${LC_TEST_DIR}", "${LC_TEST_DIR}"},
        {"cost $5 and $", "cost $5 and $"},
        {"$$", "$$"},
        {"'{x}$'", "{x}$"},
    };
    char yaml[512];

    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct lc_config *cfg;
        /* a free-form string option: the plugin's password */
        snprintf(yaml, sizeof(yaml), IN_SYSTEM "    password: %s\n" OUT_STDOUT, cases[k].value);
        cfg = load_ok(yaml);
        if (strcmp(((struct fake_in_conf *)cfg->inputs[0].conf)->password, cases[k].want) != 0)
            fail_msg("'%s' gave '%s', want '%s'", cases[k].value,
                     ((struct fake_in_conf *)cfg->inputs[0].conf)->password, cases[k].want);
        lc_config_free(cfg);
    }

    /* substitution feeds every type: sizes, lists, maps, names */
    {
        struct lc_config *cfg = load_ok("batch_bytes: ${LC_TEST_SIZE}\n"
                                        "inputs:\n"
                                        "  - type: file\n"
                                        "    name: n${LC_TEST_EMPTY}1\n"
                                        "    paths: [\"${LC_TEST_DIR}/*.log\"]\n"
                                        "    labels: {dir: \"${LC_TEST_DIR}\"}\n" OUT_STDOUT);
        assert_int_equal(cfg->batch_bytes, 2 << 20);
        assert_string_equal(cfg->inputs[0].name, "n1");
        assert_string_equal(((struct fake_in_conf *)cfg->inputs[0].conf)->paths.v[0],
                            "/srv/lc/*.log");
        assert_string_equal(lc_kvlist_get(&cfg->inputs[0].labels, "dir"), "/srv/lc");
        lc_config_free(cfg);
    }
}

static char *print_config(const struct lc_config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    lc_config_print(cfg, f);
    fclose(f);
    return buf;
}

static void test_print_masks_secrets(void **state)
{
    struct lc_config *cfg = load_ok(IN_SYSTEM "    password: hunter2\n"
                                              "outputs:\n"
                                              "  - {type: loki, name: l, url: 'http://u',"
                                              " token: tok-xyz, breaker: {failures: 2}}\n");
    char *out = print_config(cfg);

    (void)state;
    assert_null(strstr(out, "hunter2"));
    assert_null(strstr(out, "tok-xyz"));
    assert_non_null(strstr(out, "    password: \"***\"\n"));
    assert_non_null(strstr(out, "    token: \"***\"\n"));
    assert_non_null(strstr(out, "    url: \"http://u\"\n"));
    assert_non_null(strstr(out, "    breaker:\n      failures: 2\n      cooldown: 30s\n"));
    assert_non_null(strstr(out, "max_pending_bytes: 0\n"));
    assert_non_null(strstr(out, "log_level: info\n"));
    free(out);
    lc_config_free(cfg);
}

/*
 * URL userinfo and credential query parameters, credential headers and headers
 * marked `secret: true` are masked; the tenant header and the rest are shown.
 */
static void test_print_masks_urls_and_headers(void **state)
{
    struct lc_config *cfg =
        load_ok(IN_SYSTEM "outputs:\n"
                          "  - type: loki\n"
                          "    name: l\n"
                          "    url: 'http://user:urlpw@h:3100/p?api_token=qtok&x=1'\n"
                          "    headers:\n"
                          "      X-Api-Key: hdrkey\n"
                          "      Authorization: Bearer hdrbearer\n"
                          "      X-Custom: {value: custom-secret, secret: true}\n"
                          "      X-Plain: {value: shown}\n"
                          "      X-Scope-OrgID: tenant-a\n");
    char *out = print_config(cfg);
    const struct fake_loki_conf *fl = cfg->outputs[0].conf;

    (void)state;
    for (const char *const *s = (const char *const[]){"urlpw", "user:", "qtok", "hdrkey",
                                                      "hdrbearer", "custom-secret", NULL};
         *s; s++)
        assert_null(strstr(out, *s));
    assert_non_null(strstr(out, "    url: \"http://***@h:3100/p?api_token=***&x=1\"\n"));
    assert_non_null(strstr(out, "\"X-Api-Key\": \"***\""));
    assert_non_null(strstr(out, "\"X-Custom\": \"***\""));
    assert_non_null(strstr(out, "\"X-Plain\": \"shown\""));
    assert_non_null(strstr(out, "\"X-Scope-OrgID\": \"tenant-a\""));
    /* the values themselves are loaded intact */
    assert_string_equal(lc_kvlist_get(&fl->headers, "X-Custom"), "custom-secret");
    assert_true(fl->headers.v[2].secret);
    assert_false(fl->headers.v[3].secret);
    free(out);
    lc_config_free(cfg);
}

/* What check-config --print writes loads back to the same configuration. */
static void test_print_roundtrip(void **state)
{
    struct lc_config *a, *b;
    char *pa, *pb;

    (void)state;
    a = load_ok("state_dir: \"/tmp/with \\\"quotes\\\" and $${NOT_A_VAR} and \\ttab\"\n"
                "batch_wait: 1500ms\n"
                "max_pending_bytes: 3000000\n"
                "inputs:\n"
                "  - type: file\n"
                "    name: a\n"
                "    paths: [\"/x\", '/y z']\n"
                "    labels: {job: j, env: \"e\\n2\"}\n"
                "    outputs: [l]\n"
                "    multiline: {pattern: 'x'}\n"
                "outputs:\n"
                "  - type: loki\n"
                "    name: l\n"
                "    url: http://x\n"
                "    headers: {\"a b\": c}\n"
                "    breaker: {failures: 3}\n"
                "    batch_bytes: 256KiB\n"
                "    batch_wait: 250ms\n"
                "  - type: stdout\n"
                "    name: s\n");
    pa = print_config(a);
    b = load_ok(pa);
    pb = print_config(b);
    assert_string_equal(a->state_dir, "/tmp/with \"quotes\" and ${NOT_A_VAR} and \ttab");
    assert_string_equal(b->state_dir, a->state_dir);
    assert_string_equal(pa, pb);
    /* an output's own batch size and age (docs/configuration.md), printed back */
    assert_int_equal(b->outputs[0].batch_bytes, 256 * 1024);
    assert_int_equal(b->outputs[0].batch_wait_ms, 250);
    assert_int_equal(b->outputs[1].batch_bytes, 0);
    assert_int_equal(b->outputs[1].batch_wait_ms, 0);
    free(pa);
    free(pb);
    lc_config_free(a);
    lc_config_free(b);
}

static void test_embedded_with_fakes(void **state)
{
    struct lc_config *cfg = NULL;
    char err[256];

    (void)state;
    assert_int_equal(
        lc_config_load_string(lc_config_embedded, "<embedded>", &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg->source, "<embedded>");
    assert_string_equal(cfg->state_dir, "/var/lib/log_capturer");
    assert_int_equal(cfg->ninputs, 1);
    assert_string_equal(cfg->inputs[0].type, "file");
    assert_string_equal(cfg->inputs[0].name, "system");
    assert_string_equal(lc_kvlist_get(&cfg->inputs[0].labels, "job"), "system");
    {
        const struct fake_in_conf *fi = cfg->inputs[0].conf;
        assert_int_equal(fi->paths.n, 2);
        assert_string_equal(fi->paths.v[0], "/var/log/syslog");
        assert_string_equal(fi->paths.v[1], "/var/log/*.log");
    }
    assert_int_equal(cfg->noutputs, 1);
    assert_string_equal(cfg->outputs[0].type, "stdout");
    assert_string_equal(cfg->outputs[0].name, "stdout");
    lc_config_free(cfg);

    setenv("LC_STATE_DIR", "/run/lc-test", 1);
    assert_int_equal(lc_config_load_string(lc_config_embedded, NULL, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg->state_dir, "/run/lc-test");
    assert_string_equal(cfg->source, "<string>");
    lc_config_free(cfg);
    unsetenv("LC_STATE_DIR");
}

/* The embedded configuration loads with the real plugins, and their tables are sound. */
static void test_embedded_with_registry(void **state)
{
    static const char *const common[] = {"type", "name", "outputs", "labels", NULL};
    struct lc_config *cfg = NULL;
    char err[256] = "";
    FILE *devnull = fopen("/dev/null", "w");
    int rc;

    (void)state;
    assert_non_null(devnull);
    rc = lc_config_load_string(lc_config_embedded, "<embedded>", &cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("embedded config: %s", err);
    assert_ptr_equal(cfg->inputs[0].plugin, lc_input_plugin_find("file"));
    assert_ptr_equal(cfg->outputs[0].plugin, lc_output_plugin_find("stdout"));
    {
        char *printed = print_config(cfg), *again;
        struct lc_config *back = load_ok(printed);
        again = print_config(back);
        assert_string_equal(strchr(printed, '\n'), strchr(again, '\n')); /* past the source */
        free(printed);
        free(again);
        lc_config_free(back);
    }
    lc_config_free(cfg);

    for (size_t k = 0; lc_input_plugins[k]; k++) {
        const struct lc_input_plugin *p = lc_input_plugins[k];
        void *conf = calloc(1, p->conf_size ? p->conf_size : 1);
        assert_non_null(conf);
        if (lc_options_defaults(p->options, conf) != 0)
            fail_msg("input plugin %s: a default does not parse", p->name);
        for (const struct lc_option *o = p->options; o && o->key; o++)
            for (size_t c = 0; common[c]; c++)
                if (strcmp(o->key, common[c]) == 0)
                    fail_msg("input plugin %s: option '%s' is a common key", p->name, o->key);
        lc_options_free(p->options, conf);
        free(conf);
        lc_options_print(p->options, p->name, devnull, true);
    }
    for (size_t k = 0; lc_output_plugins[k]; k++) {
        const struct lc_output_plugin *p = lc_output_plugins[k];
        void *conf = calloc(1, p->conf_size ? p->conf_size : 1);
        assert_non_null(conf);
        if (lc_options_defaults(p->options, conf) != 0)
            fail_msg("output plugin %s: a default does not parse", p->name);
        for (const struct lc_option *o = p->options; o && o->key; o++)
            for (size_t c = 0; common[c]; c++)
                if (c != 2 && strcmp(o->key, common[c]) == 0)
                    fail_msg("output plugin %s: option '%s' is a common key", p->name, o->key);
        lc_options_free(p->options, conf);
        free(conf);
        lc_options_print(p->options, p->name, devnull, false);
    }
    lc_options_print(lc_config_options, "", devnull, true);
    fclose(devnull);
}

static void test_load_file(void **state)
{
    const char *tmp = getenv("LC_TEST_TMP");
    char dir[256], path[320];
    struct lc_config *cfg = (struct lc_config *)0x1;
    char err[512];
    FILE *f;

    (void)state;
    snprintf(dir, sizeof(dir), "%s", tmp && *tmp ? tmp : "/tmp");
    snprintf(path, sizeof(path), "%s/test_config_%d.yaml", dir, (int)getpid());

    /* a missing file */
    assert_int_equal(lc_config_load_file("/nonexistent/lc.yaml", &cfg, err, sizeof(err)), -ENOENT);
    assert_null(cfg);
    assert_string_equal(err, "/nonexistent/lc.yaml: No such file or directory");

    f = fopen(path, "w");
    if (!f) { /* LC_TEST_TMP may not exist yet */
        snprintf(path, sizeof(path), "/tmp/test_config_%d.yaml", (int)getpid());
        f = fopen(path, "w");
    }
    assert_non_null(f);
    fclose(f);
    assert_int_equal(lc_config_load_file(path, &cfg, err, sizeof(err)), -EINVAL);
    {
        char want[400];
        snprintf(want, sizeof(want), "%s:1:1: the configuration is empty", path);
        assert_string_equal(err, want);
    }

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("log_level: warn\n" IN_SYSTEM "    pathz: x\n" OUT_STDOUT, f);
    fclose(f);
    assert_int_equal(lc_config_load_file(path, &cfg, err, sizeof(err)), -EINVAL);
    {
        char want[400];
        snprintf(want, sizeof(want), "%s:6:5: unknown key 'pathz' in input 'system' (type file)",
                 path);
        assert_string_equal(err, want);
    }

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("log_level: warn\n" IN_SYSTEM OUT_STDOUT, f);
    fclose(f);
    assert_int_equal(lc_config_load_file(path, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg->source, path);
    assert_int_equal(cfg->log_level, 2);
    lc_config_free(cfg);

    f = fopen(path, "w");
    assert_non_null(f);
    fwrite("a: 1\n\0b: 2\n", 1, 11, f);
    fclose(f);
    assert_int_equal(lc_config_load_file(path, &cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "NUL byte"));
    unlink(path);
}

static void test_err_buffer(void **state)
{
    struct lc_config *cfg = NULL;
    char err[8];

    (void)state;
    memset(err, 'x', sizeof(err));
    assert_int_equal(lc_config_load_string("", "t.yaml", &cfg, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "t.yaml:");
    assert_int_equal(lc_config_load_string("foo: 1\n", "t.yaml", &cfg, NULL, 0), -EINVAL);
    assert_null(cfg);
    lc_config_free(NULL);
}

/* Caps: a huge configuration, a value that substitution blows up. */
static void test_limits(void **state)
{
    struct lc_config *cfg = NULL;
    char err[256];
    size_t big = 4 * 1024 * 1024 + 1;
    char *yaml = malloc(big + 1);

    (void)state;
    assert_non_null(yaml);
    memset(yaml, '#', big);
    yaml[big] = '\0';
    assert_int_equal(lc_config_load_string(yaml, "t.yaml", &cfg, err, sizeof(err)), -EFBIG);
    free(yaml);

    {
        char *val = malloc(70000);
        assert_non_null(val);
        memset(val, 'v', 69999);
        val[69999] = '\0';
        setenv("LC_TEST_BIG", val, 1);
        free(val);
    }
    assert_int_equal(lc_config_load_string("state_dir: ${LC_TEST_BIG}\n" IN_SYSTEM OUT_STDOUT,
                                           "t.yaml", &cfg, err, sizeof(err)),
                     -E2BIG);
    assert_string_equal(err, "t.yaml:1:12: value too long after substitution (key 'state_dir')");
    unsetenv("LC_TEST_BIG");

    /* billion laughs: a small file whose aliases name 4000 values of 4000 bytes, 1000 times */
    {
        size_t cap = 200000, used = 0;
        char *y = malloc(cap);
        assert_non_null(y);
        used += (size_t)snprintf(y + used, cap - used,
                                 "inputs:\n  - type: file\n    name: i0\n    paths: &l [&v \"");
        memset(y + used, 'a', 4000);
        used += 4000;
        used += (size_t)snprintf(y + used, cap - used, "\"");
        for (int k = 0; k < 4000; k++)
            used += (size_t)snprintf(y + used, cap - used, ", *v");
        used += (size_t)snprintf(y + used, cap - used, "]\n");
        for (int k = 1; k < 1000; k++)
            used += (size_t)snprintf(y + used, cap - used,
                                     "  - {type: file, name: i%d, paths: *l}\n", k);
        snprintf(y + used, cap - used, OUT_STDOUT);
        assert_int_equal(lc_config_load_string(y, "t.yaml", &cfg, err, sizeof(err)), -E2BIG);
        assert_null(cfg);
        assert_non_null(strstr(err, "expands to too many values"));
        free(y);
    }
}

/* Every allocation of a load, made to fail once: -ENOMEM, an error message, nothing leaked. */
static void test_alloc_failures(void **state)
{
#if LC_TORTURE
    static const char yaml[] = "state_dir: ${LC_TEST_DIR}/x\n"
                               "batch_bytes: 64KiB\n"
                               "inputs:\n"
                               "  - type: file\n"
                               "    name: a\n"
                               "    paths: [\"/x\", '/y']\n"
                               "    labels: {job: j, env: e}\n"
                               "    outputs: [l]\n"
                               "    multiline: {pattern: 'x'}\n"
                               "outputs:\n"
                               "  - type: loki\n"
                               "    name: l\n"
                               "    url: http://x\n"
                               "    headers: {a: b}\n"
                               "    breaker: {failures: 3}\n"
                               "  - {type: stdout, name: s}\n";
    long n;

    (void)state;
    for (n = 1; n < 100000; n++) {
        struct lc_config *cfg = NULL;
        char err[256] = "";
        int rc;

        torture_seq = 0;
        torture_fail_at = n;
        torture_live = 0;
        torture_on = true;
        rc = lc_config_load_string(yaml, "t.yaml", &cfg, err, sizeof(err));
        lc_config_free(cfg);
        torture_on = false;
        if (torture_live != 0)
            fail_msg("allocation %ld failed: %ld allocations leaked (rc %d)", n, torture_live, rc);
        if (torture_seq < n) { /* no allocation failed: every one has been tried */
            assert_int_equal(rc, 0);
            break;
        }
        if (rc != -ENOMEM || !strstr(err, "out of memory"))
            fail_msg("allocation %ld failed: rc %d, err '%s'", n, rc, err);
        assert_null(cfg);
    }
    assert_true(n > 20);
    print_message("%ld allocations, each failed once\n", n - 1);
#else
    (void)state;
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_errors, use_fakes),
        cmocka_unit_test_setup(test_syntax_errors, use_fakes),
        cmocka_unit_test_setup(test_full_config, use_fakes),
        cmocka_unit_test_setup(test_defaults, use_fakes),
        cmocka_unit_test_setup(test_booleans, use_fakes),
        cmocka_unit_test_setup(test_env, use_fakes),
        cmocka_unit_test_setup(test_print_masks_secrets, use_fakes),
        cmocka_unit_test_setup(test_print_masks_urls_and_headers, use_fakes),
        cmocka_unit_test_setup(test_print_roundtrip, use_fakes),
        cmocka_unit_test_setup(test_embedded_with_fakes, use_fakes),
        cmocka_unit_test_setup(test_load_file, use_fakes),
        cmocka_unit_test_setup(test_err_buffer, use_fakes),
        cmocka_unit_test_setup(test_limits, use_fakes),
        cmocka_unit_test_setup(test_alloc_failures, use_fakes),
        cmocka_unit_test_setup(test_embedded_with_registry, use_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
