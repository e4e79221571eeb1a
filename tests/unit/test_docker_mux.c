/* SPDX-License-Identifier: MIT */
/* test_docker_mux.c: Docker API stream decoder: frames split anywhere, joins, TTY, bad headers. */
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

#include "parse/docker_mux.h"

#define TS1    "2025-11-07T15:48:05.123456789Z"
#define TS1_NS 1762530485123456789LL
#define TS2    "2025-11-07T15:48:06.000000000Z"
#define TS2_NS 1762530486000000000LL

/* Everything the callback saw, as one comparable text. */
struct collect {
    char *text;
    size_t len, cap;
    int lines;
    int stop_after; /* return -ECANCELED after this many lines (0: never) */
};

static int on_line(void *arg, const struct lc_docker_mux_line *l)
{
    struct collect *c = arg;
    char head[96];
    int n = snprintf(head, sizeof(head), "[%d %lld %d %d %zu]", l->stream, (long long)l->ts_ns,
                     l->has_ts, l->truncated, l->len);
    assert_true(c->len + (size_t)n + l->len + 1 <= c->cap);
    memcpy(c->text + c->len, head, (size_t)n);
    c->len += (size_t)n;
    memcpy(c->text + c->len, l->line, l->len);
    c->len += l->len;
    c->text[c->len++] = '|';
    c->lines++;
    if (c->stop_after && c->lines >= c->stop_after)
        return -ECANCELED;
    return 0;
}

static void collect_init(struct collect *c)
{
    memset(c, 0, sizeof(*c));
    c->cap = 1 << 20;
    c->text = malloc(c->cap);
    assert_non_null(c->text);
}

/* Appends a frame (header + payload) to out. */
static size_t frame(char *out, int type, const char *payload, size_t n)
{
    out[0] = (char)type;
    out[1] = out[2] = out[3] = 0;
    out[4] = (char)(n >> 24);
    out[5] = (char)(n >> 16);
    out[6] = (char)(n >> 8);
    out[7] = (char)n;
    memcpy(out + 8, payload, n);
    return 8 + n;
}

#define F(out, type, s) frame((out), (type), (s), sizeof(s) - 1)

/* Feeds data in pieces cut at the given positions (sorted), each from an exact-size copy. */
static int feed_pieces(struct lc_docker_mux *m, const char *data, size_t n, const size_t *cuts,
                       size_t ncuts)
{
    size_t prev = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        size_t k = end - prev;
        char *piece = malloc(k ? k : 1);
        memcpy(piece, data + prev, k);
        int rc = lc_docker_mux_feed(m, piece, k);
        free(piece);
        if (rc < 0)
            return rc;
        prev = end;
    }
    return 0;
}

static struct lc_docker_mux *mux(struct collect *c, size_t max, bool tty)
{
    struct lc_docker_mux_opts o = {.max_line_bytes = max, .tty = tty, .on_line = on_line, .arg = c};
    struct lc_docker_mux *m = lc_docker_mux_new(&o);
    assert_non_null(m);
    return m;
}

/* Decodes data in one piece, in two pieces at every position, and byte by byte: same lines. */
static void check_all_splits(const char *data, size_t n, size_t max, bool tty, const char *want,
                             int want_finish)
{
    struct collect ref;
    collect_init(&ref);
    struct lc_docker_mux *m = mux(&ref, max, tty);
    assert_int_equal(feed_pieces(m, data, n, NULL, 0), 0);
    assert_int_equal(lc_docker_mux_finish(m), want_finish);
    lc_docker_mux_free(m);
    if (ref.len != strlen(want) || memcmp(ref.text, want, ref.len) != 0)
        fail_msg("got  %.*s\nwant %s", (int)ref.len, ref.text, want);

    for (size_t cut = 0; cut <= n; cut++) {
        struct collect c;
        collect_init(&c);
        m = mux(&c, max, tty);
        assert_int_equal(feed_pieces(m, data, n, &cut, 1), 0);
        assert_int_equal(lc_docker_mux_finish(m), want_finish);
        lc_docker_mux_free(m);
        if (c.len != ref.len || memcmp(c.text, ref.text, c.len) != 0)
            fail_msg("cut at %zu:\n got %.*s\nwant %s", cut, (int)c.len, c.text, want);
        free(c.text);
    }

    size_t *cuts = malloc(n * sizeof(*cuts) + 1);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i;
    struct collect c;
    collect_init(&c);
    m = mux(&c, max, tty);
    assert_int_equal(feed_pieces(m, data, n, cuts, n), 0);
    assert_int_equal(lc_docker_mux_finish(m), want_finish);
    lc_docker_mux_free(m);
    if (c.len != ref.len || memcmp(c.text, ref.text, c.len) != 0)
        fail_msg("byte by byte:\n got %.*s\nwant %s", (int)c.len, c.text, want);
    free(c.text);
    free(cuts);
    free(ref.text);
}

#define H1(len) "[1 1762530485123456789 1 0 " #len "]"
#define H2(len) "[2 1762530485123456789 1 0 " #len "]"

static void test_frames(void **state)
{
    (void)state;
    char buf[4096];
    size_t n = 0;
    n += F(buf + n, 1, TS1 " hello\n");
    n += F(buf + n, 2, TS1 " oops\n");
    n += F(buf + n, 1, TS1 " \n");                         /* empty line */
    n += F(buf + n, 0, TS1 " from stdin\n");               /* stdin counts as stdout */
    n += F(buf + n, 1, "");                                /* empty frame */
    n += F(buf + n, 1, TS1 " two\n" TS2 " lines\n");       /* several lines in one frame */
    n += F(buf + n, 1, TS1 " caf\xc3\xa9 \xe2\x82\xac\n"); /* UTF-8 */
    n += F(buf + n, 3, "Error grabbing logs: boom\n");     /* daemon error */
    n += F(buf + n, 1, TS1 " tab\tand\rcr\n");             /* bytes kept as they are */
    n += F(buf + n, 1, TS1 "  leading space\n");           /* only one space is the prefix's */
    check_all_splits(
        buf, n, 1024, false,
        H1(5) "hello|" H2(4) "oops|" H1(0) "|" H1(10) "from stdin|" H1(
            3) "two|[1 1762530486000000000 1 0 5]lines|" H1(9) "caf\xc3\xa9 "
                                                               "\xe2\x82\xac|[3 0 0 0 25]Error "
                                                               "grabbing logs: boom|" H1(
                                                                   10) "tab\tand\rcr|" H1(14) " lea"
                                                                                              "ding"
                                                                                              " spa"
                                                                                              "ce|",
        0);
}

static void test_long_line_across_frames(void **state)
{
    (void)state;
    char buf[4096];
    size_t n = 0;
    /* Docker sends a long line as several messages, each with its own timestamp */
    n += F(buf + n, 1, TS1 " first part ");
    n += F(buf + n, 2, TS1 " err in between\n");
    n += F(buf + n, 1, TS2 " second part ");
    n += F(buf + n, 2, TS1 " err part ");
    n += F(buf + n, 1, TS2 " end\n");
    n += F(buf + n, 2, TS2 " err end\n");
    check_all_splits(
        buf, n, 1024, false,
        H2(14) "err in between|" H1(26) "first part second part end|" H2(16) "err part err end|",
        0);
}

static void test_truncation(void **state)
{
    (void)state;
    char buf[4096];
    size_t n = 0;
    n += F(buf + n, 1, TS1 " 0123456789abcdef\n"); /* over the cap in one frame */
    n += F(buf + n, 1, TS1 " 01234567");           /* exactly the cap, in two frames */
    n += F(buf + n, 1, TS2 " \n");
    n += F(buf + n, 1, TS1 " 0123"); /* over the cap across frames */
    n += F(buf + n, 1, TS2 " 456789");
    n += F(buf + n, 1, TS2 " abc\n");
    n += F(buf + n, 1, TS1 " 012345\xe2\x82\xac\n"); /* cut before a whole character */
    n += F(buf + n, 1, TS1 " ok\n");
    check_all_splits(buf, n, 8, false,
                     "[1 1762530485123456789 1 1 8]01234567|" H1(
                         8) "01234567|"
                            "[1 1762530485123456789 1 1 8]01234567|"
                            "[1 1762530485123456789 1 1 6]012345|" H1(2) "ok|",
                     0);
}

static void test_no_timestamp(void **state)
{
    (void)state;
    char buf[4096];
    size_t n = 0;
    n += F(buf + n, 1, "no timestamp here\n");
    n += F(buf + n, 1, "\n");
    n += F(buf + n, 1, "2025-13-07T15:48:05Z bad month\n");
    n += F(buf + n, 1, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa long word\n");
    n += F(buf + n, 1, TS1 " partial ");
    n += F(buf + n, 1, "continuation without prefix\n");
    check_all_splits(
        buf, n, 1024, false,
        "[1 0 0 0 17]no timestamp here|[1 0 0 0 0]|"
        "[1 0 0 0 30]2025-13-07T15:48:05Z bad month|"
        "[1 0 0 0 63]aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa long word|" H1(
            35) "partial continuation without prefix|",
        0);
}

static void test_finish(void **state)
{
    (void)state;
    char buf[4096];
    size_t n = 0;
    /* the response ends before the last '\n': finish hands out what is pending */
    n += F(buf + n, 1, TS1 " out pending");
    n += F(buf + n, 2, TS1 " err pending");
    check_all_splits(buf, n, 1024, false, H1(11) "out pending|" H2(11) "err pending|", 0);

    /* the response ends inside a frame: lines still emitted, -EPROTO reported */
    n = F(buf, 1, TS1 " cut short\n");
    check_all_splits(buf, n - 3, 1024, false, H1(7) "cut sho|", -EPROTO);
    /* ... or inside a header */
    n = F(buf, 1, TS1 " whole\n");
    n += F(buf + n, 1, "x");
    check_all_splits(buf, n - 5, 1024, false, H1(5) "whole|", -EPROTO);
    /* ... or inside a timestamp prefix */
    n = F(buf, 1, TS1 " whole");
    check_all_splits(buf, 8 + 10, 1024, false, "[1 0 0 0 10]2025-11-07|", -EPROTO);
}

static void test_tty(void **state)
{
    (void)state;
    static const char s[] =
        TS1 " first\r\n" TS2 " second\r\n" TS1 " lf only\n" TS1 " \r\n" TS1 " cr\rinside\r\n"
            "no ts\r\n" TS1 " dbl\r\r\n" TS1 " tail";
    check_all_splits(s, sizeof(s) - 1, 1024, true,
                     H1(5) "first|[1 1762530486000000000 1 0 6]second|" H1(7) "lf only|" H1(
                         0) "|" H1(9) "cr\rinside|[1 0 0 0 5]no ts|" H1(4) "dbl\r|" H1(4) "tail|",
                     0);
    /* the cap applies to the text without "\r\n" */
    static const char t[] = TS1 " 01234567\r\n" TS1 " 012345678\r\n";
    check_all_splits(t, sizeof(t) - 1, 8, true,
                     H1(8) "01234567|[1 1762530485123456789 1 1 8]01234567|", 0);
}

static void test_no_timestamps_option(void **state)
{
    (void)state;
    char buf[256];
    size_t n = F(buf, 1, "plain line\n");
    n += F(buf + n, 1, TS1 " kept as text\n");
    struct collect c;
    collect_init(&c);
    struct lc_docker_mux_opts o = {
        .max_line_bytes = 64, .no_timestamps = true, .on_line = on_line, .arg = &c};
    struct lc_docker_mux *m = lc_docker_mux_new(&o);
    assert_int_equal(lc_docker_mux_feed(m, buf, n), 0);
    assert_int_equal(lc_docker_mux_finish(m), 0);
    static const char want[] = "[1 0 0 0 10]plain line|[1 0 0 0 43]" TS1 " kept as text|";
    assert_int_equal(c.len, sizeof(want) - 1);
    assert_memory_equal(c.text, want, c.len);
    struct lc_docker_mux_stats st;
    lc_docker_mux_get_stats(m, &st);
    assert_int_equal(st.no_ts, 0);
    lc_docker_mux_free(m);
    free(c.text);
}

static void test_bad_headers(void **state)
{
    (void)state;
    static const unsigned char bad[][8] = {
        {4, 0, 0, 0, 0, 0, 0, 1},         /* unknown stream type */
        {0xff, 0, 0, 0, 0, 0, 0, 1},      /* ... */
        {1, 1, 0, 0, 0, 0, 0, 1},         /* nonzero padding */
        {1, 0, 0, 1, 0, 0, 0, 1},         /* ... */
        {'{', '"', 'm', 'e', 0, 0, 0, 0}, /* a JSON error body instead of frames */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char buf[256];
        size_t n = F(buf, 1, TS1 " before\n");
        memcpy(buf + n, bad[i], 8);
        n += 8;
        n += F(buf + n, 1, TS1 " after\n");
        struct collect c;
        collect_init(&c);
        struct lc_docker_mux *m = mux(&c, 64, false);
        assert_int_equal(lc_docker_mux_feed(m, buf, n), -EPROTO);
        assert_int_equal(c.lines, 1); /* what came before is delivered */
        assert_int_equal(lc_docker_mux_feed(m, buf, 8), -EPROTO); /* sticky */
        struct lc_docker_mux_stats st;
        lc_docker_mux_get_stats(m, &st);
        assert_int_equal(st.bad_headers, 1);
        assert_int_equal(lc_docker_mux_finish(m), -EPROTO);
        /* after a reset (the caller reconnected) it decodes again */
        lc_docker_mux_reset(m);
        size_t k = F(buf, 2, TS1 " again\n");
        assert_int_equal(lc_docker_mux_feed(m, buf, k), 0);
        assert_int_equal(c.lines, 2);
        assert_int_equal(lc_docker_mux_finish(m), 0);
        lc_docker_mux_free(m);
        free(c.text);
    }
}

static void test_callback_error_and_stats(void **state)
{
    (void)state;
    char buf[512];
    size_t n = 0;
    for (int i = 0; i < 5; i++)
        n += F(buf + n, 1, TS1 " line\n");
    struct collect c;
    collect_init(&c);
    c.stop_after = 2;
    struct lc_docker_mux *m = mux(&c, 64, false);
    assert_int_equal(lc_docker_mux_feed(m, buf, n), -ECANCELED);
    assert_int_equal(c.lines, 2);
    lc_docker_mux_reset(m);
    c.stop_after = 0;
    c.lines = 0;
    assert_int_equal(lc_docker_mux_feed(m, buf, n), 0);
    assert_int_equal(c.lines, 5);
    struct lc_docker_mux_stats st;
    lc_docker_mux_get_stats(m, &st);
    assert_int_equal(st.lines, 7);
    assert_int_equal(st.frames, 2 + 5); /* the first feed stopped after frame 2 */
    assert_int_equal(st.bytes, 2 * n);
    assert_int_equal(st.bad_headers, 0);
    lc_docker_mux_free(m);
    free(c.text);

    /* invalid options */
    struct lc_docker_mux_opts o = {.max_line_bytes = 0, .on_line = on_line};
    assert_null(lc_docker_mux_new(&o));
    o.max_line_bytes = 16;
    o.on_line = NULL;
    assert_null(lc_docker_mux_new(&o));
    lc_docker_mux_free(NULL);
}

/* A big frame (several MiB) streamed through in small reads, lines in place or joined. */
static void test_big_frames(void **state)
{
    (void)state;
    enum { LINES = 2000, LLEN = 3000, CHUNK = 4093 };
    size_t payload_len = LINES * (sizeof(TS1) + LLEN + 1);
    char *payload = malloc(payload_len);
    size_t p = 0;
    for (int i = 0; i < LINES; i++) {
        memcpy(payload + p, TS1 " ", sizeof(TS1));
        p += sizeof(TS1);
        memset(payload + p, 'a' + i % 26, LLEN);
        p += LLEN;
        payload[p++] = '\n';
    }
    char *data = malloc(payload_len + 8);
    size_t n = frame(data, 1, payload, p);
    struct collect c;
    collect_init(&c);
    c.cap = (size_t)LINES * (LLEN + 64);
    c.text = realloc(c.text, c.cap);
    struct lc_docker_mux *m = mux(&c, LLEN, false);
    for (size_t off = 0; off < n; off += CHUNK)
        assert_int_equal(lc_docker_mux_feed(m, data + off, n - off < CHUNK ? n - off : CHUNK), 0);
    assert_int_equal(lc_docker_mux_finish(m), 0);
    assert_int_equal(c.lines, LINES);
    struct lc_docker_mux_stats st;
    lc_docker_mux_get_stats(m, &st);
    assert_int_equal(st.truncated, 0);
    assert_int_equal(st.no_ts, 0);
    lc_docker_mux_free(m);
    free(c.text);
    free(data);
    free(payload);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_long_line_across_frames),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_no_timestamp),
        cmocka_unit_test(test_finish),
        cmocka_unit_test(test_tty),
        cmocka_unit_test(test_no_timestamps_option),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_callback_error_and_stats),
        cmocka_unit_test(test_big_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
