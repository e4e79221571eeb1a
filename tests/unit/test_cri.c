/* SPDX-License-Identifier: MIT */
/* test_cri.c: the CRI log line decoder, and joining its P lines with the Docker joiner's bounds. */
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

#include "parse/cri.h"

#define TS_STR "2025-11-07T15:48:05.123456789Z"
#define TS_NS  1762530485123456789LL

/* Decodes from an exact-size heap copy, so ASan catches any read past the line. */
static int decode(const char *s, struct lc_docker_line *dl, char **copy)
{
    size_t n = strlen(s);
    *copy = malloc(n ? n : 1);
    assert_non_null(*copy);
    memcpy(*copy, s, n);
    return lc_cri_decode(*copy, n, dl);
}

struct ok_case {
    const char *line;
    int stream;
    bool partial;
    const char *log;
    int64_t ts;
};

static void test_valid(void **state)
{
    static const struct ok_case cases[] = {
        {TS_STR " stdout F hello world", 1, false, "hello world", TS_NS},
        {TS_STR " stderr F err", 2, false, "err", TS_NS},
        {TS_STR " stdout P first part ", 1, true, "first part ", TS_NS},
        {TS_STR " stdout F ", 1, false, "", TS_NS},                           /* an empty line */
        {TS_STR " stdout F  two  spaces ", 1, false, " two  spaces ", TS_NS}, /* kept as is */
        {TS_STR " stdout F:x:y tagged", 1, false, "tagged", TS_NS}, /* later tags ignored */
        {TS_STR " stdout P:more p", 1, true, "p", TS_NS},
        {TS_STR " stdout F cr\r", 1, false, "cr\r", TS_NS}, /* content is raw */
        {"2025-11-07T15:48:05Z stdout F s", 1, false, "s", 1762530485000000000LL},
        {"2025-11-07T16:48:05.5+01:00 stdout F z", 1, false, "z", 1762530485500000000LL},
        {TS_STR " stdout F {\"json\": \"as is\\n\"}", 1, false, "{\"json\": \"as is\\n\"}", TS_NS},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lc_docker_line dl;
        char *copy;
        int rc = decode(cases[i].line, &dl, &copy);
        if (rc != 0)
            fail_msg("case %zu (%s): rc %d", i, cases[i].line, rc);
        assert_int_equal(dl.stream, cases[i].stream);
        assert_int_equal(dl.partial, cases[i].partial);
        assert_int_equal(dl.ts_ns, cases[i].ts);
        assert_int_equal(dl.log_len, strlen(cases[i].log));
        assert_memory_equal(dl.log, cases[i].log, dl.log_len);
        assert_true(dl.log >= copy && dl.log + dl.log_len <= copy + strlen(cases[i].line));
        free(copy);
    }
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "hello",
        TS_STR,
        TS_STR " ",
        TS_STR " stdout",
        TS_STR " stdout ",
        TS_STR " stdout F",  /* no space after the tag: the kubelet says "log tag is not found" */
        TS_STR " stdin F x", /* stdin is not a log stream */
        TS_STR " stdoutx F x",
        TS_STR " STDOUT F x",
        TS_STR " stdout X x", /* tags other than P or F */
        TS_STR " stdout PF x",
        TS_STR " stdout  F x", /* an empty tag */
        "2025-13-07T15:48:05Z stdout F x",
        "2025-11-07 stdout F x",
        "not-a-time stdout F x",
        " " TS_STR " stdout F x",
        "{\"log\":\"json\\n\",\"stream\":\"stdout\",\"time\":\"" TS_STR "\"}",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct lc_docker_line dl;
        char *copy;
        if (decode(bad[i], &dl, &copy) != -EINVAL)
            fail_msg("case %zu accepted: \"%s\"", i, bad[i]);
        free(copy);
    }
}

/* NUL bytes in the content are data, not an end. */
static void test_binary_content(void **state)
{
    static const char line[] = TS_STR " stdout F a\0b";
    struct lc_docker_line dl;

    (void)state;
    assert_int_equal(lc_cri_decode(line, sizeof(line) - 1, &dl), 0);
    assert_int_equal(dl.log_len, 3);
    assert_memory_equal(dl.log, "a\0b", 3);
}

/*
 * The runtime's 16 KiB parts joined into one line, with the same bound and
 * cut counting as Docker's: a join longer than max_line_bytes is cut, and the
 * bytes dropped are told.
 */
static void test_join_parts(void **state)
{
    static char part[16384 + 64], jbuf[65536];
    struct lc_docker_joiner j;
    struct lc_docker_line dl;
    const char *out;
    size_t len;
    int64_t ts;

    (void)state;
    lc_docker_joiner_init(&j, jbuf, sizeof(jbuf));
    for (int i = 0; i < 3; i++) {
        int n = snprintf(part, sizeof(part), TS_STR " stdout %c ", i < 2 ? 'P' : 'F');
        memset(part + n, 'a' + i, 16384);
        assert_int_equal(lc_cri_decode(part, (size_t)n + 16384, &dl), 0);
        assert_int_equal(lc_docker_join(&j, &dl, &out, &len, &ts), i < 2 ? 0 : 1);
    }
    assert_int_equal(len, 3 * 16384);
    assert_int_equal(j.dropped, 0);
    assert_int_equal(out[0], 'a');
    assert_int_equal(out[16384], 'b');
    assert_int_equal(out[2 * 16384], 'c');
    assert_int_equal(ts, TS_NS);

    /* at max_line_bytes: cut, and said */
    lc_docker_joiner_init(&j, jbuf, 20000);
    for (int i = 0; i < 3; i++) {
        int n = snprintf(part, sizeof(part), TS_STR " stdout %c ", i < 2 ? 'P' : 'F');
        memset(part + n, 'x', 16384);
        assert_int_equal(lc_cri_decode(part, (size_t)n + 16384, &dl), 0);
        lc_docker_join(&j, &dl, &out, &len, &ts);
    }
    assert_int_equal(len, 20000);
    assert_int_equal(j.dropped, 3 * 16384 - 20000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_binary_content),
        cmocka_unit_test(test_join_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
