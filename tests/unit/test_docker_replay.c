/* SPDX-License-Identifier: MIT */
/* test_docker_replay.c: the replay rule of a followed Docker log stream (issue 18). */
#include "input/docker_replay.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static bool seen(struct lc_docker_replay *r, int64_t ts, const char *s)
{
    return lc_docker_replay_seen(r, ts, s, strlen(s));
}

/* What the stream's reader does: skip a replay, else emit and note it. Returns emitted. */
static bool feed(struct lc_docker_replay *r, int64_t ts, const char *s)
{
    if (seen(r, ts, s))
        return false;
    lc_docker_replay_note(r, ts, s, strlen(s));
    return true;
}

static void test_newer_pass_older_replayed(void **state)
{
    struct lc_docker_replay r = {0};

    (void)state;
    assert_true(feed(&r, 100, "a"));
    assert_true(feed(&r, 200, "b"));
    assert_true(feed(&r, 300, "c"));
    /* the rotation replays the last entries: all skipped */
    assert_false(feed(&r, 200, "b"));
    assert_false(feed(&r, 300, "c"));
    assert_false(feed(&r, 100, "anything older"));
    assert_true(feed(&r, 301, "d"));
    assert_int_equal(r.ts, 301);
    assert_int_equal(r.n, 1);
}

static void test_equal_timestamps_are_exact(void **state)
{
    struct lc_docker_replay r = {0};

    (void)state;
    /* two different lines in the same nanosecond: both emitted */
    assert_true(feed(&r, 500, "first"));
    assert_true(feed(&r, 500, "second"));
    assert_int_equal(r.n, 2);
    /* either one sent again: skipped, the other content still passes */
    assert_false(feed(&r, 500, "second"));
    assert_false(feed(&r, 500, "first"));
    assert_true(feed(&r, 500, "third"));
    assert_int_equal(r.n, 3);
    /* a newer timestamp starts a new set: the same content is a new line there */
    assert_true(feed(&r, 501, "first"));
    assert_false(feed(&r, 500, "third"));
    assert_false(feed(&r, 501, "first"));
}

static void test_empty_and_bounded(void **state)
{
    struct lc_docker_replay r = {0};
    char line[16];

    (void)state;
    assert_false(seen(&r, 1, "x")); /* nothing emitted yet */
    assert_true(feed(&r, 7, ""));   /* empty lines hash too */
    assert_false(feed(&r, 7, ""));
    /* more lines at one timestamp than hashes kept: the first ones are still recognised, the
     * counter keeps counting, nothing is written beyond the array */
    for (int i = 0; i < LC_DOCKER_REPLAY_SAME_TS * 2; i++) {
        snprintf(line, sizeof(line), "l%d", i);
        assert_true(feed(&r, 9, line));
    }
    assert_int_equal(r.n, LC_DOCKER_REPLAY_SAME_TS * 2);
    assert_false(feed(&r, 9, "l0"));
    assert_false(feed(&r, 9, "l7"));
    /* notes of older records (stdout/stderr interleave upstream) never move it back */
    lc_docker_replay_note(&r, 3, "old", 3);
    assert_int_equal(r.ts, 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_newer_pass_older_replayed),
        cmocka_unit_test(test_equal_timestamps_are_exact),
        cmocka_unit_test(test_empty_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
