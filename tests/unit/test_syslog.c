/* SPDX-License-Identifier: MIT */
/* test_syslog.c: RFC 5424 and RFC 3164 parsers and RFC 6587 framing, table-driven. */
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

#include "parse/syslog.h"

/* 2025-11-07T15:48:05Z */
#define NOW_NS 1762530485000000000LL

static char *dup_exact(const char *s, size_t n)
{
    char *c = malloc(n ? n : 1);
    assert_non_null(c);
    memcpy(c, s, n);
    return c;
}

static void field_is(const struct lc_syslog_field *f, const char *want)
{
    if (f->len != strlen(want) || (f->len && memcmp(f->p, want, f->len) != 0))
        fail_msg("field \"%.*s\" != \"%s\"", (int)f->len, f->p ? f->p : "", want);
}

struct case5424 {
    const char *in;
    int fac, sev;
    int64_t ts;
    const char *host, *app, *procid, *msgid, *sd, *msg;
};

static void test_5424_valid(void **state)
{
    static const struct case5424 cases[] = {
        /* RFC 5424 6.5, examples 1 to 4 */
        {"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF"
         "'su root' "
         "failed for lonvick on /dev/pts/8",
         4, 2, 1065910455003000000LL, "mymachine.example.com", "su", "", "ID47", "",
         "'su root' failed for lonvick on /dev/pts/8"},
        {"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to "
         "make the do-nuts.",
         20, 5, 1061727255000003000LL, "192.0.2.1", "myproc", "8710", "", "",
         "%% It's time to make the do-nuts."},
        {"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 "
         "iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \xEF\xBB\xBF"
         "An application "
         "event log entry...",
         20, 5, 1065910455003000000LL, "mymachine.example.com", "evntslog", "", "ID47",
         "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]",
         "An application event log entry..."},
        {"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 "
         "iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 "
         "class=\"high\"]",
         20, 5, 1065910455003000000LL, "mymachine.example.com", "evntslog", "", "ID47",
         "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" "
         "eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
         ""},
        /* nil everything, no MSG */
        {"<0>1 - - - - - -", 0, 0, 0, "", "", "", "", "", ""},
        /* escapes inside a param value, ']' included */
        {"<13>1 2025-11-07T15:48:05Z h a 1 m [x@1 k=\"a\\\"b\\]c\\\\\"] m", 1, 5, NOW_NS, "h", "a",
         "1", "m", "[x@1 k=\"a\\\"b\\]c\\\\\"]", "m"},
        /* what util-linux logger --rfc5424 sends */
        {"<158>1 2025-11-07T15:48:05.123456+00:00 vm myapp 42 - [timeQuality tzKnown=\"1\" "
         "isSynced=\"0\"] hello",
         19, 6, NOW_NS + 123456000, "vm", "myapp", "42", "",
         "[timeQuality tzKnown=\"1\" isSynced=\"0\"]", "hello"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct case5424 *c = &cases[i];
        struct lc_syslog_msg m;
        char *in = dup_exact(c->in, strlen(c->in));
        int rc = lc_syslog_parse_5424(in, strlen(c->in), &m);
        if (rc != 0)
            fail_msg("case %zu rejected: %s", i, c->in);
        assert_int_equal(m.facility, c->fac);
        assert_int_equal(m.severity, c->sev);
        assert_int_equal(m.version, 1);
        assert_int_equal(m.ts_ns, c->ts);
        field_is(&m.hostname, c->host);
        field_is(&m.app_name, c->app);
        field_is(&m.procid, c->procid);
        field_is(&m.msgid, c->msgid);
        field_is(&m.sd, c->sd);
        field_is(&m.msg, c->msg);
        /* the auto-detecting parser agrees */
        assert_int_equal(lc_syslog_parse(in, strlen(c->in), NOW_NS, 0, &m), 0);
        assert_int_equal(m.version, 1);
        free(in);
    }
}

static void test_5424_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "<34>",
        "<34>1",
        "<34>1 ",
        "<192>1 - - - - - -",               /* PRI over 191 */
        "<034>1 - - - - - -",               /* leading zero */
        "<34>0 - - - - - -",                /* version 0 */
        "<34>1 - - - - -",                  /* no SD */
        "<34>1 2003-10-11 h a p m - x",     /* a date alone */
        "<34>1 - h a p m [x@1 k=\"v] msg",  /* an unterminated value */
        "<34>1 - h a p m [x@1 k=\"v\" msg", /* an unterminated element */
        "<34>1 - h a p m [] msg",           /* no SD-ID */
        "<34>1 - h a p m x msg",            /* SD neither - nor [ */
        "<34>1 - h\x01 a p m - msg",        /* a control byte in HOSTNAME */
        "<34>1 - h aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa p m - x", /* APP-NAME 49 */
        "<34>1 - h a p m -msg", /* no SP before MSG */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct lc_syslog_msg m;
        char *in = dup_exact(bad[i], strlen(bad[i]));
        if (lc_syslog_parse_5424(in, strlen(bad[i]), &m) != -EINVAL)
            fail_msg("case %zu accepted: %s", i, bad[i]);
        free(in);
    }
}

struct case3164 {
    const char *in;
    int fac, sev;
    int64_t ts;
    const char *host, *app, *procid, *msg;
};

static void test_3164(void **state)
{
    static const struct case3164 cases[] = {
        /* RFC 3164 5.4 examples */
        {"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8", 4, 2,
         1760220855000000000LL, "mymachine", "su", "",
         "'su root' failed for lonvick on /dev/pts/8"},
        {"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", 1, 5, 1738776738000000000LL, "10.0.0.99", "",
         "", "Use the BFG!"},
        /* no timestamp: no host either, all of it is the content (4.3.3) */
        {"<165>Use the quantum!", 20, 5, 0, "", "", "", "Use the quantum!"},
        /* what util-linux logger --rfc3164 sends */
        {"<27>Nov  7 15:48:05 vm app2[1234]: hello 3164", 3, 3, NOW_NS, "vm", "app2", "1234",
         "hello 3164"},
        /* no hostname, a tag with a pid */
        {"<30>Nov  7 15:48:05 sshd[99]: Accepted", 3, 6, NOW_NS, "", "sshd", "99", "Accepted"},
        /* an RFC 3339 time instead of the BSD one */
        {"<14>2025-11-07T15:48:05Z host tag: text", 1, 6, NOW_NS, "host", "tag", "", "text"},
        /* an empty message */
        {"<14>Nov  7 15:48:05 host tag:", 1, 6, NOW_NS, "host", "tag", "", ""},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct case3164 *c = &cases[i];
        struct lc_syslog_msg m;
        char *in = dup_exact(c->in, strlen(c->in));
        if (lc_syslog_parse(in, strlen(c->in), NOW_NS, 0, &m) != 0)
            fail_msg("case %zu rejected: %s", i, c->in);
        assert_int_equal(m.version, 0);
        assert_int_equal(m.facility, c->fac);
        assert_int_equal(m.severity, c->sev);
        if (c->ts)
            assert_int_equal(m.ts_ns, c->ts);
        else
            assert_int_equal(m.ts_ns, 0);
        field_is(&m.hostname, c->host);
        field_is(&m.app_name, c->app);
        field_is(&m.procid, c->procid);
        field_is(&m.msg, c->msg);
        free(in);
    }
    /* local time: an hour east of UTC is an hour earlier in UTC */
    {
        struct lc_syslog_msg m;
        const char *s = "<27>Nov  7 16:48:05 vm app: x";
        assert_int_equal(lc_syslog_parse_3164(s, strlen(s), NOW_NS, 3600, &m), 0);
        assert_int_equal(m.ts_ns, NOW_NS);
    }
    /* only the PRI is required */
    static const char *const bad[] = {"", "no pri", "<>x", "<1000>x", "<12x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct lc_syslog_msg m;
        if (lc_syslog_parse(bad[i], strlen(bad[i]), NOW_NS, 0, &m) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(lc_syslog_facility_name(0), "kern");
    assert_string_equal(lc_syslog_facility_name(3), "daemon");
    assert_string_equal(lc_syslog_facility_name(23), "local7");
    assert_string_equal(lc_syslog_facility_name(24), "?");
    assert_string_equal(lc_syslog_severity_name(3), "err");
    assert_string_equal(lc_syslog_severity_name(7), "debug");
    assert_string_equal(lc_syslog_severity_name(-1), "?");
}

static void test_framing(void **state)
{
    size_t start, mlen, used;
    (void)state;

    /* octet counting */
    assert_int_equal(lc_syslog_frame("5 hello6 world!", 15, 100, &start, &mlen, &used),
                     LC_SYSLOG_FRAME_OK);
    assert_int_equal(start, 2);
    assert_int_equal(mlen, 5);
    assert_int_equal(used, 7);
    assert_int_equal(lc_syslog_frame("12", 2, 100, &start, &mlen, &used), LC_SYSLOG_FRAME_MORE);
    assert_int_equal(lc_syslog_frame("12 short", 8, 100, &start, &mlen, &used),
                     LC_SYSLOG_FRAME_MORE);
    /* newline framing, CR dropped */
    assert_int_equal(lc_syslog_frame("<13>hi\r\nnext", 12, 100, &start, &mlen, &used),
                     LC_SYSLOG_FRAME_OK);
    assert_int_equal(start, 0);
    assert_int_equal(mlen, 6);
    assert_int_equal(used, 8);
    assert_int_equal(lc_syslog_frame("<13>no end", 10, 100, &start, &mlen, &used),
                     LC_SYSLOG_FRAME_MORE);
    /* digits without SP: a line */
    assert_int_equal(lc_syslog_frame("123abc\n", 7, 100, &start, &mlen, &used), LC_SYSLOG_FRAME_OK);
    assert_int_equal(mlen, 6);
    /* over max: octet counted, the first max bytes and the frame's length */
    assert_int_equal(lc_syslog_frame("20 aaaaaaaaaa", 13, 8, &start, &mlen, &used),
                     LC_SYSLOG_FRAME_BIG);
    assert_int_equal(start, 3);
    assert_int_equal(mlen, 8);
    assert_int_equal(used, 23);
    assert_int_equal(lc_syslog_frame("20 aaaa", 7, 8, &start, &mlen, &used), LC_SYSLOG_FRAME_MORE);
    /* over max: a line */
    assert_int_equal(lc_syslog_frame("aaaaaaaaaaaa", 12, 8, &start, &mlen, &used),
                     LC_SYSLOG_FRAME_BIG);
    assert_int_equal(mlen, 8);
    assert_int_equal(used, 0);
    /* exactly max, with its LF */
    assert_int_equal(lc_syslog_frame("aaaaaaaa\n", 9, 8, &start, &mlen, &used), LC_SYSLOG_FRAME_OK);
    assert_int_equal(mlen, 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_5424_valid), cmocka_unit_test(test_5424_malformed),
        cmocka_unit_test(test_3164),       cmocka_unit_test(test_names),
        cmocka_unit_test(test_framing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
