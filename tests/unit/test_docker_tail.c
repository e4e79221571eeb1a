/* SPDX-License-Identifier: MIT */
/* test_docker_tail.c: a json-file log read back from a held (unlinked) descriptor. */
#include "input/docker_tail.h"
#include "parse/docker_json.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lc_test_file.h"

#define BASE_NS 1700000000000000000LL
#define MAX_MSG 4096

/* What the callback was handed, and when it refuses. */
struct got {
    int n;
    char *line[MAX_MSG];
    int stream[MAX_MSG];
    int64_t ts[MAX_MSG];
    bool truncated[MAX_MSG];
    int refuse_every; /* refuse each k-th call (0: never): a stop, as backpressure does */
    int calls;
    bool dedup; /* skip a message already taken (the caller's replay check) */
};

static bool taken(const struct got *g, const struct lc_docker_tail_msg *m)
{
    for (int i = 0; i < g->n; i++)
        if (g->ts[i] == m->ts_ns && g->stream[i] == m->stream && strlen(g->line[i]) == m->len &&
            memcmp(g->line[i], m->line, m->len) == 0)
            return true;
    return false;
}

static int take(void *arg, const struct lc_docker_tail_msg *m)
{
    struct got *g = arg;

    if (g->dedup && taken(g, m))
        return 0;
    if (g->refuse_every && ++g->calls % g->refuse_every == 0)
        return -EAGAIN;
    assert_true(g->n < MAX_MSG);
    g->line[g->n] = strndup(m->line, m->len);
    g->stream[g->n] = m->stream;
    g->ts[g->n] = m->ts_ns;
    g->truncated[g->n] = m->truncated;
    g->n++;
    return 0;
}

static void got_free(struct got *g)
{
    for (int i = 0; i < g->n; i++)
        free(g->line[i]);
}

/* A growing text buffer of json-file records. */
struct log {
    char *p;
    size_t len, cap;
};

static void add_raw(struct log *l, const char *s)
{
    size_t n = strlen(s);

    if (l->len + n + 1 > l->cap) {
        l->cap = (l->len + n + 1) * 2;
        l->p = realloc(l->p, l->cap);
        assert_non_null(l->p);
    }
    memcpy(l->p + l->len, s, n + 1);
    l->len += n;
}

/* One record at BASE_NS + i ms: text (with "\n" appended unless partial). */
static void add(struct log *l, int i, bool err, const char *text, bool partial)
{
    char rec[20000];
    int64_t ts = BASE_NS + (int64_t)i * 1000000;

    snprintf(rec, sizeof(rec),
             "{\"log\":\"%s%s\",\"stream\":\"%s\",\"time\":\"2023-11-14T22:13:%02lld.%09lldZ\"}\n",
             text, partial ? "" : "\\n", err ? "stderr" : "stdout",
             (long long)(20 + (ts - BASE_NS) / 1000000000), (long long)(ts % 1000000000));
    add_raw(l, rec);
}

/* Reads to the end (at most `calls` calls): 1 when it got there. */
static int read_all(struct lc_docker_tail *t, struct got *g, int calls)
{
    int rc = 0;

    for (int k = 0; k < calls && rc == 0; k++)
        rc = lc_docker_tail_read(t, take, g);
    return rc;
}

static void test_records_joined_in_order(void **state)
{
    struct log l = {0};
    struct got g = {0};
    struct lc_docker_tail *t;
    char part[16385];

    (void)state;
    memset(part, 'x', 16384);
    part[16384] = '\0';
    add(&l, 0, false, "first", false);
    add(&l, 1, true, "err one", false);
    add(&l, 2, false, part, true); /* a 16 KiB partial: joined with the next stdout record */
    add(&l, 3, true, "err two", false);
    add(&l, 4, false, "end of long", false);
    add_raw(&l, "not json\n");
    add(&l, 5, false, "caf\\u00e9 \\\"q\\\"", false);
    t = lc_docker_tail_new(lc_test_held_file(l.p, l.len), 65536);
    assert_non_null(t);
    assert_int_equal(lc_docker_tail_first_ts(t), BASE_NS);
    assert_int_equal(read_all(t, &g, 10), 1);
    assert_int_equal(g.n, 5);
    assert_string_equal(g.line[0], "first");
    assert_string_equal(g.line[1], "err one");
    assert_int_equal(g.stream[1], LC_STREAM_STDERR);
    assert_string_equal(g.line[2], "err two"); /* complete before the long line's last part */
    assert_int_equal(strlen(g.line[3]), 16384 + strlen("end of long"));
    assert_int_equal(g.ts[3], BASE_NS + 2000000); /* its first part's time */
    assert_int_equal(g.stream[3], LC_STREAM_STDOUT);
    assert_string_equal(g.line[4], "caf\xc3\xa9 \"q\"");
    assert_int_equal(lc_docker_tail_malformed(t), 1);
    assert_int_equal(lc_docker_tail_read(t, take, &g), 1); /* the end stays the end */
    assert_int_equal(g.n, 5);
    lc_docker_tail_free(t);
    got_free(&g);
    free(l.p);
}

/* Many records over many reads, stopped again and again: every message once, in order. */
static void test_stops_lose_nothing(void **state)
{
    struct log l = {0};
    struct got g = {.refuse_every = 7, .dedup = true};
    struct lc_docker_tail *t;
    char text[3000], want[3000];
    int n = 600;

    (void)state;
    for (int i = 0; i < n; i++) {
        snprintf(text, sizeof(text), "line %04d %0*d", i, 200 + (i * 37) % 900, i);
        /* every 50th stdout line split into two records, the stderr line between its parts */
        if (i % 50 == 10) {
            add(&l, i, false, text, true);
            add(&l, i, true, "between", false);
            add(&l, i, false, "-rest", false);
        } else {
            add(&l, i, i % 3 == 0, text, false);
        }
    }
    t = lc_docker_tail_new(lc_test_held_file(l.p, l.len), 65536);
    assert_non_null(t);
    assert_int_equal(read_all(t, &g, 10000), 1);
    for (int i = 0, k = 0; i < n; i++, k++) {
        snprintf(want, sizeof(want), "line %04d %0*d%s", i, 200 + (i * 37) % 900, i,
                 i % 50 == 10 ? "-rest" : "");
        if (i % 50 == 10) {
            assert_string_equal(g.line[k], "between");
            k++;
        }
        assert_true(k < g.n);
        assert_string_equal(g.line[k], want);
        assert_int_equal(g.ts[k], BASE_NS + (int64_t)i * 1000000);
    }
    assert_int_equal(g.n, n + n / 50);
    lc_docker_tail_free(t);
    got_free(&g);
    free(l.p);
}

/* Reads the whole log l (freed) into g, lines cut at max_line. */
static void read_log(struct log *l, size_t max_line, struct got *g)
{
    struct lc_docker_tail *t = lc_docker_tail_new(lc_test_held_file(l->p, l->len), max_line);

    assert_non_null(t);
    assert_int_equal(read_all(t, g, 5), 1);
    lc_docker_tail_free(t);
    free(l->p);
}

/* A split line whose last part never came (the container ended) is handed over at the end. */
static void test_last_partial_flushed(void **state)
{
    struct log l = {0};
    struct got g = {0};

    (void)state;
    add(&l, 0, false, "whole", false);
    add(&l, 1, true, "no newline at the end", true);
    read_log(&l, 1024, &g);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.line[1], "no newline at the end");
    assert_int_equal(g.stream[1], LC_STREAM_STDERR);
    got_free(&g);
}

/* A line over max_line_bytes is cut and says so. */
static void test_cut_at_max_line(void **state)
{
    struct log l = {0};
    struct got g = {0};

    (void)state;
    add(&l, 0, false, "0123456789abcdef", false);
    read_log(&l, 8, &g);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.line[0], "01234567");
    assert_true(g.truncated[0]);
    got_free(&g);
}

/* A long log: the seek starts at a record older than the cutoff, not at the start. */
static void test_seek_skips_the_old(void **state)
{
    struct log l = {0};
    struct got g = {0};
    struct lc_docker_tail *t;
    char text[600];
    int n = 4000, cut = 3000;

    (void)state;
    for (int i = 0; i < n; i++) {
        snprintf(text, sizeof(text), "rec %05d %0400d", i, i);
        add(&l, i, false, text, false);
    }
    t = lc_docker_tail_new(lc_test_held_file(l.p, l.len), 65536);
    assert_non_null(t);
    lc_docker_tail_seek(t, BASE_NS + (int64_t)cut * 1000000);
    assert_int_equal(read_all(t, &g, 1000), 1);
    assert_true(g.n > n - cut);     /* everything from the cutoff on ... */
    assert_true(g.n < n - cut / 2); /* ... and not much before it */
    assert_true(g.ts[0] < BASE_NS + (int64_t)cut * 1000000);
    assert_int_equal(g.ts[g.n - 1], BASE_NS + (int64_t)(n - 1) * 1000000);
    for (int i = 1; i < g.n; i++)
        assert_int_equal(g.ts[i] - g.ts[i - 1], 1000000);
    lc_docker_tail_free(t);
    got_free(&g);
    free(l.p);
}

/* Empty and garbage logs: nothing handed over, nothing read past, no first time. */
static void test_empty_and_garbage(void **state)
{
    static const char *const cases[] = {"", "garbage without newline", "{\n}\n\n"};
    struct got g = {0};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lc_docker_tail *t =
            lc_docker_tail_new(lc_test_held_file(cases[i], strlen(cases[i])), 64);

        assert_non_null(t);
        assert_int_equal(lc_docker_tail_first_ts(t), 0);
        lc_docker_tail_seek(t, BASE_NS);
        assert_int_equal(read_all(t, &g, 10), 1);
        assert_int_equal(g.n, 0);
        lc_docker_tail_free(t);
    }
    lc_docker_tail_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_joined_in_order), cmocka_unit_test(test_stops_lose_nothing),
        cmocka_unit_test(test_last_partial_flushed),    cmocka_unit_test(test_cut_at_max_line),
        cmocka_unit_test(test_seek_skips_the_old),      cmocka_unit_test(test_empty_and_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
