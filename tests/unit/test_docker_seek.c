/* SPDX-License-Identifier: MIT */
/* test_docker_seek.c: a json-file log bisected by time, table-driven on small windows. */
#include "parse/docker_seek.h"

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

#define BASE_NS 1700000000000000000LL /* 2023-11-14T22:13:20Z */
#define MS      1000000LL
#define MAX_REC 512

/* One line of a test log. */
enum kind {
    REC,     /* a record, its text "m<k>\n" */
    PARTIAL, /* a part of a line Docker split: no '\n' at the end of its text */
    LONG,    /* a record with 300 bytes of text: longer than the small windows */
    GARBAGE, /* a line that does not decode */
    CUT,     /* a record without its final '\n' (still being written) */
};

struct line {
    enum kind kind;
    int k; /* its time: BASE_NS + k ms */
};

/* A log built from lines, with where each line starts. */
struct log {
    char *p;
    size_t len;
    int n;
    off_t start[MAX_REC];
    int64_t ts[MAX_REC];
    bool decodes[MAX_REC];
};

static void build(struct log *l, const struct line *v, int n)
{
    char rec[1024], pad[301];

    memset(pad, 'x', 300);
    pad[300] = '\0';
    assert_true(n <= MAX_REC);
    l->p = calloc(1, (size_t)n * sizeof(rec) + 1);
    assert_non_null(l->p);
    l->len = 0;
    l->n = n;
    for (int i = 0; i < n; i++) {
        int64_t ts = BASE_NS + v[i].k * MS;
        int len;

        if (v[i].kind == GARBAGE)
            len = snprintf(rec, sizeof(rec), "not json %d\n", v[i].k);
        else
            len = snprintf(rec, sizeof(rec),
                           "{\"log\":\"m%d%s%s\",\"stream\":\"stdout\","
                           "\"time\":\"2023-11-14T22:%02lld:%02lld.%09lldZ\"}%s",
                           v[i].k, v[i].kind == LONG ? pad : "", v[i].kind == PARTIAL ? "" : "\\n",
                           (long long)(13 + (20 + (ts - BASE_NS) / 1000000000) / 60),
                           (long long)((20 + (ts - BASE_NS) / 1000000000) % 60),
                           (long long)(ts % 1000000000), v[i].kind == CUT ? "" : "\n");
        assert_true(len > 0 && (size_t)len < sizeof(rec));
        l->start[i] = (off_t)l->len;
        l->ts[i] = ts;
        l->decodes[i] = v[i].kind != GARBAGE;
        memcpy(l->p + l->len, rec, (size_t)len);
        l->len += (size_t)len;
    }
}

/* n records, record i at time v(i) */
static int ramp(struct line *v, int n, int every)
{
    for (int i = 0; i < n; i++)
        v[i] = (struct line){REC, i / every};
    return n;
}

/* time_at ------------------------------------------------------------------------------- */

struct at_case {
    const char *name;
    struct line lines[4];
    int n;
    int at_line;   /* probe at this line's start ... */
    int plus;      /* ... plus this many bytes */
    int size_less; /* the caller's size: the file's, less this */
    size_t window;
    int found; /* the line found, -1 for none */
};

static const struct at_case at_cases[] = {
    {"empty file", {{REC, 0}}, 0, 0, 0, 0, 256, -1},
    {"one record at 0", {{REC, 5}}, 1, 0, 0, 0, 256, 0},
    {"one record, inside it", {{REC, 5}}, 1, 0, 1, 0, 256, -1},
    {"off 0 is the first record", {{REC, 1}, {REC, 2}}, 2, 0, 0, 0, 256, 0},
    {"inside a record: the next", {{REC, 1}, {REC, 2}, {REC, 3}}, 3, 0, 5, 0, 256, 1},
    {"at a record's start: the one after", {{REC, 1}, {REC, 2}, {REC, 3}}, 3, 1, 0, 0, 256, 2},
    {"on its '\\n': the next", {{REC, 1}, {REC, 2}, {REC, 3}}, 3, 1, -1, 0, 256, 1},
    {"the last record without '\\n'", {{REC, 1}, {CUT, 2}}, 2, 0, 5, 0, 256, -1},
    {"cut by the window's end", {{REC, 1}, {LONG, 2}}, 2, 0, 5, 0, 256, -1},
    {"a wider window reads it", {{REC, 1}, {LONG, 2}}, 2, 0, 5, 0, 1024, 1},
    {"cut at 0 by the window", {{LONG, 1}, {REC, 2}}, 2, 0, 0, 0, 256, -1},
    {"a record that does not decode", {{REC, 1}, {GARBAGE, 2}, {REC, 3}}, 3, 0, 5, 0, 256, -1},
    {"the decoding one after it", {{REC, 1}, {GARBAGE, 2}, {REC, 3}}, 3, 1, 2, 0, 256, 2},
    {"a part of a split line", {{REC, 1}, {PARTIAL, 2}, {REC, 3}}, 3, 0, 5, 0, 256, 1},
    {"past the caller's size", {{REC, 1}, {REC, 2}}, 2, 0, 5, 100, 256, -1},
    {"at the end", {{REC, 1}}, 1, 1, 0, 0, 256, -1},
};

static void test_time_at(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(at_cases) / sizeof(at_cases[0]); c++) {
        const struct at_case *tc = &at_cases[c];
        struct log l;
        char *buf = malloc(tc->window);
        off_t off, start = -1;
        int64_t ts = -1;
        bool ok;
        int fd;

        assert_non_null(buf);
        build(&l, tc->lines, tc->n);
        fd = lc_test_held_file(l.p, l.len);
        off = (tc->at_line < l.n ? l.start[tc->at_line] : (off_t)l.len) + tc->plus;
        ok = lc_docker_seek_time_at(fd, off, (off_t)l.len - tc->size_less, buf, tc->window, &start,
                                    &ts);
        if (ok != (tc->found >= 0))
            fail_msg("%s: %s", tc->name, ok ? "found one" : "found none");
        if (tc->found >= 0) {
            assert_int_equal(start, l.start[tc->found]);
            assert_int_equal(ts, l.ts[tc->found]);
        }
        close(fd);
        free(l.p);
        free(buf);
    }
}

/* seek ---------------------------------------------------------------------------------- */

/*
 * What every answer must be: from, or a record start older than the cutoff;
 * no record at or after the cutoff before it; and, when every record decodes
 * and fits the window, less than two windows before the first of those (one
 * window from the end when there is none).
 */
static void check_seek(const struct log *l, off_t from, off_t got, int64_t cutoff, size_t window,
                       bool near)
{
    int first = -1, at = -1;

    for (int i = 0; i < l->n; i++) {
        if (l->start[i] == got)
            at = i;
        if (first < 0 && l->start[i] >= from && l->decodes[i] && l->ts[i] >= cutoff)
            first = i;
    }
    assert_true(got >= from);
    if (got != from) {
        assert_true(at >= 0);
        assert_true(l->decodes[at] && l->ts[at] < cutoff);
    }
    if (first >= 0)
        assert_true(got <= l->start[first]);
    if (!near)
        return;
    if (first >= 0)
        assert_true(l->start[first] - got < 2 * (off_t)window);
    else
        assert_true((off_t)l->len - got <= (off_t)window);
}

struct seek_case {
    const char *name;
    int n;         /* records, record i at time i / every ms; 0: the empty file */
    int every;     /* records per time */
    enum kind odd; /* other than REC: these records are of this kind ... */
    int odd_first; /* ... from this one ... */
    int odd_every; /* ... every so many (0: that one only) */
    int from_line; /* where the caller starts (0: at 0) */
    int cutoff;    /* ms */
    size_t window;
    int expect; /* the answer: -1 any that check_seek takes; else this line's start (n: 0) */
};

static const struct seek_case seek_cases[] = {
    {"empty file", 0, 1, REC, 0, 0, 0, 5, 256, 0},
    {"one record, cutoff after it", 1, 1, REC, 0, 0, 0, 5, 256, 0},
    {"one record, cutoff before it", 1, 1, REC, 0, 0, 0, -5, 256, 0},
    {"one record, cutoff at it", 1, 1, REC, 0, 0, 0, 0, 256, 0},
    {"smaller than the window: no probe", 3, 1, REC, 0, 0, 0, 2, 4096, 0},
    {"cutoff before the first", 400, 1, REC, 0, 0, 0, -1, 256, 0},
    {"cutoff at the first", 400, 1, REC, 0, 0, 0, 0, 256, 0},
    {"cutoff after the last", 400, 1, REC, 0, 0, 0, 1000, 256, -1},
    {"cutoff in the middle", 400, 1, REC, 0, 0, 0, 250, 256, -1},
    {"many at the cutoff's time", 400, 10, REC, 0, 0, 0, 25, 256, -1},
    {"many at the first time", 400, 50, REC, 0, 0, 0, 0, 256, 0},
    {"many at the last time", 400, 50, REC, 0, 0, 0, 7, 256, -1},
    {"from a record start, all newer", 400, 1, REC, 0, 0, 100, 50, 256, 100},
    {"from a record start, cutoff after it", 400, 1, REC, 0, 0, 100, 300, 256, -1},
    {"split lines", 400, 1, PARTIAL, 0, 3, 0, 250, 256, -1},
    /* a probe that finds no record stops the bisection where it is */
    {"records cut by the window", 400, 1, LONG, 0, 1, 0, 250, 256, 0},
    {"undecodable at the first probe", 400, 1, GARBAGE, 201, 0, 0, 300, 256, 0},
    {"undecodable later on", 400, 1, GARBAGE, 301, 0, 0, 350, 256, -1},
};

static void test_seek(void **state)
{
    static struct line v[MAX_REC];

    (void)state;
    for (size_t c = 0; c < sizeof(seek_cases) / sizeof(seek_cases[0]); c++) {
        const struct seek_case *tc = &seek_cases[c];
        char *buf = malloc(tc->window);
        int64_t cutoff = BASE_NS + tc->cutoff * MS;
        bool near = tc->odd == REC || tc->odd == PARTIAL;
        struct log l;
        off_t from, got;
        int fd;

        assert_non_null(buf);
        ramp(v, tc->n, tc->every);
        for (int i = tc->odd_first; tc->odd != REC && i < tc->n; i += tc->odd_every) {
            v[i].kind = tc->odd;
            if (!tc->odd_every)
                break;
        }
        build(&l, v, tc->n);
        fd = lc_test_held_file(l.p, l.len);
        from = tc->from_line ? l.start[tc->from_line] : 0;
        got = lc_docker_seek_time(fd, from, (off_t)l.len, cutoff, buf, tc->window);
        check_seek(&l, from, got, cutoff, tc->window, near);
        if (tc->expect >= 0 && got != (tc->expect < l.n ? l.start[tc->expect] : 0))
            fail_msg("%s: got %lld", tc->name, (long long)got);
        close(fd);
        free(l.p);
        free(buf);
    }
}

/* The probe that meets the undecodable line: the one right after the middle. */
static void test_undecodable_is_where_the_first_probe_lands(void **state)
{
    static struct line v[MAX_REC];
    char buf[256];
    struct log l;
    off_t start;
    int64_t ts;
    int fd;

    (void)state;
    ramp(v, 400, 1);
    v[201].kind = GARBAGE;
    build(&l, v, 400);
    fd = lc_test_held_file(l.p, l.len);
    assert_true(l.start[200] < (off_t)l.len / 2 && (off_t)l.len / 2 < l.start[201]);
    assert_false(
        lc_docker_seek_time_at(fd, (off_t)l.len / 2, (off_t)l.len, buf, sizeof(buf), &start, &ts));
    close(fd);
    free(l.p);
}

/* Every cutoff, several windows, with and without an undecodable line and split lines. */
static void test_seek_every_cutoff(void **state)
{
    static struct line v[MAX_REC];
    static const size_t windows[] = {200, 300, 1000, 5000, 65536};

    (void)state;
    for (int variant = 0; variant < 3; variant++) {
        struct log l;
        int fd;

        ramp(v, MAX_REC, 3);
        if (variant == 1)
            v[MAX_REC / 3].kind = GARBAGE;
        for (int i = 1; variant == 2 && i < MAX_REC; i += 7)
            v[i].kind = PARTIAL;
        build(&l, v, MAX_REC);
        fd = lc_test_held_file(l.p, l.len);
        for (size_t w = 0; w < sizeof(windows) / sizeof(windows[0]); w++) {
            char *buf = malloc(windows[w]);

            assert_non_null(buf);
            for (int k = -2; k <= MAX_REC / 3 + 2; k++) {
                int64_t cutoff = BASE_NS + k * MS;
                off_t got = lc_docker_seek_time(fd, 0, (off_t)l.len, cutoff, buf, windows[w]);

                check_seek(&l, 0, got, cutoff, windows[w], variant != 1);
            }
            free(buf);
        }
        close(fd);
        free(l.p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_at),
        cmocka_unit_test(test_seek),
        cmocka_unit_test(test_undecodable_is_where_the_first_probe_lands),
        cmocka_unit_test(test_seek_every_cutoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
