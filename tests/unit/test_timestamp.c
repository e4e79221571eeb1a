/* SPDX-License-Identifier: MIT */
/* test_timestamp.c: RFC3339 / syslog parsing and RFC3339Nano formatting, table-driven. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "parse/timestamp.h"

#define T_2025_11_07_154805 1762530485000000000LL
#define T_2025_11_23_103103 1763893863000000000LL

struct ts_case {
    const char *s;
    int rc;
    int64_t ns;
};

static void check_rfc3339_table(const struct ts_case *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t ns = 42;
        int rc = lc_ts_parse_rfc3339(t[i].s, strlen(t[i].s), &ns, NULL);
        if (rc != t[i].rc || (rc == 0 && ns != t[i].ns))
            fail_msg("case %zu \"%s\": rc %d ns %lld, want rc %d ns %lld", i, t[i].s, rc,
                     (long long)ns, t[i].rc, (long long)t[i].ns);
        if (rc != 0)
            assert_int_equal(ns, 42); /* untouched on error */
    }
}

static void test_rfc3339_valid(void **state)
{
    (void)state;
    static const struct ts_case t[] = {
        {"1970-01-01T00:00:00Z", 0, 0},
        {"1969-12-31T23:59:59.999999999Z", 0, -1},
        {"2025-11-07T15:48:05Z", 0, T_2025_11_07_154805},
        /* fractions of 1..9 digits, as Docker trims trailing zeros */
        {"2025-11-07T15:48:05.1Z", 0, T_2025_11_07_154805 + 100000000},
        {"2025-11-07T15:48:05.12Z", 0, T_2025_11_07_154805 + 120000000},
        {"2025-11-07T15:48:05.123Z", 0, T_2025_11_07_154805 + 123000000},
        {"2025-11-07T15:48:05.1234Z", 0, T_2025_11_07_154805 + 123400000},
        {"2025-11-07T15:48:05.12345Z", 0, T_2025_11_07_154805 + 123450000},
        {"2025-11-07T15:48:05.123456Z", 0, T_2025_11_07_154805 + 123456000},
        {"2025-11-07T15:48:05.1234567Z", 0, T_2025_11_07_154805 + 123456700},
        {"2025-11-07T15:48:05.12345678Z", 0, T_2025_11_07_154805 + 123456780},
        {"2025-11-07T15:48:05.123456789Z", 0, T_2025_11_07_154805 + 123456789},
        {"2025-11-07T15:48:05.000000001Z", 0, T_2025_11_07_154805 + 1},
        {"2025-11-07T15:48:05.0Z", 0, T_2025_11_07_154805},
        /* more than 9 digits: truncated, as Go */
        {"2025-11-07T15:48:05.1234567891Z", 0, T_2025_11_07_154805 + 123456789},
        {"2025-11-07T15:48:05.999999999999Z", 0, T_2025_11_07_154805 + 999999999},
        /* zones and separators */
        {"2025-11-07T15:48:05+01:00", 0, 1762526885000000000LL},
        {"2025-11-07T15:48:05-05:30", 0, 1762550285000000000LL},
        {"2025-11-07T15:48:05+23:59", 0, 1762444145000000000LL},
        {"2025-11-07T15:48:05+00:00", 0, T_2025_11_07_154805},
        {"2025-11-07T15:48:05-00:00", 0, T_2025_11_07_154805},
        {"2025-11-07t15:48:05z", 0, T_2025_11_07_154805},
        {"2025-11-07 15:48:05Z", 0, T_2025_11_07_154805},
        /* calendar */
        {"2024-02-29T12:00:00Z", 0, 1709208000000000000LL},
        {"2000-02-29T00:00:00Z", 0, 951782400000000000LL},
        {"1999-12-31T23:59:59Z", 0, 946684799000000000LL},
        {"2016-12-31T23:59:60Z", 0, 1483228800000000000LL}, /* leap second */
        /* the ends of int64 ns */
        {"1677-09-21T00:12:43.145224192Z", 0, INT64_MIN},
        {"2262-04-11T23:47:16.854775807Z", 0, INT64_MAX},
    };
    check_rfc3339_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_rfc3339_invalid(void **state)
{
    (void)state;
    static const struct ts_case t[] = {
        {"", -EINVAL, 0},
        {"2025-11-07T15:48:05", -EINVAL, 0},      /* no zone */
        {"2025-11-07T15:48:05.Z", -EINVAL, 0},    /* '.' without digits */
        {"2025-11-07T15:48:05,123Z", -EINVAL, 0}, /* ',' only in the relaxed prefix form */
        {"2025-13-07T15:48:05Z", -EINVAL, 0},
        {"2025-00-07T15:48:05Z", -EINVAL, 0},
        {"2025-11-00T15:48:05Z", -EINVAL, 0},
        {"2025-11-31T15:48:05Z", -EINVAL, 0},
        {"2025-02-29T15:48:05Z", -EINVAL, 0},
        {"2100-02-29T15:48:05Z", -EINVAL, 0},
        {"2025-11-07T24:00:00Z", -EINVAL, 0},
        {"2025-11-07T15:60:05Z", -EINVAL, 0},
        {"2025-11-07T15:48:61Z", -EINVAL, 0},
        {"2025-11-07X15:48:05Z", -EINVAL, 0},
        {"2025/11/07T15:48:05Z", -EINVAL, 0},
        {"2025-11-07T15-48-05Z", -EINVAL, 0},
        {"20x5-11-07T15:48:05Z", -EINVAL, 0},
        {"2025-11-07T15:48:05+1:00", -EINVAL, 0},
        {"2025-11-07T15:48:05+01:0", -EINVAL, 0},
        {"2025-11-07T15:48:05+0100", -EINVAL, 0},
        {"2025-11-07T15:48:05+24:00", -EINVAL, 0},
        {"2025-11-07T15:48:05+01:60", -EINVAL, 0},
        {"2025-11-07T15:48:05Zjunk", -EINVAL, 0}, /* whole string required without consumed */
        {"2025-11-07T15:48:05.12a3Z", -EINVAL, 0},
        {" 2025-11-07T15:48:05Z", -EINVAL, 0},
        {"-025-11-07T15:48:05Z", -EINVAL, 0},
        /* outside int64 ns */
        {"1677-09-21T00:12:43.145224191Z", -EINVAL, 0},
        {"2262-04-11T23:47:16.854775808Z", -EINVAL, 0},
        {"0000-01-01T00:00:00Z", -EINVAL, 0},
        {"9999-12-31T23:59:59Z", -EINVAL, 0},
    };
    check_rfc3339_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_rfc3339_consumed_and_prefixes(void **state)
{
    (void)state;
    static const char full[] = "2025-11-07T15:48:05.123456789Z";
    const size_t n = sizeof(full) - 1;
    int64_t ns;
    size_t used = 0;

    /* followed by other bytes */
    static const char with_rest[] = "2025-11-07T15:48:05.123456789Z rest of line";
    assert_int_equal(lc_ts_parse_rfc3339(with_rest, sizeof(with_rest) - 1, &ns, &used), 0);
    assert_int_equal(used, n);
    assert_int_equal(ns, T_2025_11_07_154805 + 123456789);
    static const char offs[] = "2025-11-07T15:48:05+01:00\"}";
    assert_int_equal(lc_ts_parse_rfc3339(offs, sizeof(offs) - 1, &ns, &used), 0);
    assert_int_equal(used, 25);

    /* every truncation of a valid timestamp is rejected, with or without consumed */
    for (size_t k = 0; k < n; k++) {
        char *exact = malloc(k ? k : 1); /* exact size: ASan sees any over-read */
        assert_non_null(exact);
        memcpy(exact, full, k);
        assert_int_equal(lc_ts_parse_rfc3339(exact, k, &ns, NULL), -EINVAL);
        assert_int_equal(lc_ts_parse_rfc3339(exact, k, &ns, &used), -EINVAL);
        /* the relaxed prefix form needs no zone: valid from the seconds on */
        assert_int_equal(lc_ts_parse_prefix(exact, k, 0, 0, &ns, &used), k < 19 ? -EINVAL : 0);
        free(exact);
    }
    assert_int_equal(lc_ts_parse_rfc3339(full, n, &ns, NULL), 0);
}

/* Reference formatter built on libc, for comparing. */
static void ref_format(int64_t ns, char *out, size_t cap)
{
    int64_t sec = ns / 1000000000LL, frac = ns % 1000000000LL;
    if (frac < 0) {
        sec--;
        frac += 1000000000LL;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    char date[32];
    char f[16] = "";
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac) {
        snprintf(f, sizeof(f), ".%09lld", (long long)frac);
        size_t fl = strlen(f);
        while (fl > 1 && f[fl - 1] == '0')
            f[--fl] = '\0';
    }
    snprintf(out, cap, "%s%sZ", date, f);
}

static void test_format_table(void **state)
{
    (void)state;
    static const struct {
        int64_t ns;
        const char *want;
    } t[] = {
        {0, "1970-01-01T00:00:00Z"},
        {1, "1970-01-01T00:00:00.000000001Z"},
        {-1, "1969-12-31T23:59:59.999999999Z"},
        {T_2025_11_07_154805 + 123456789, "2025-11-07T15:48:05.123456789Z"},
        {T_2025_11_07_154805 + 123456780, "2025-11-07T15:48:05.12345678Z"},
        {T_2025_11_07_154805 + 100000000, "2025-11-07T15:48:05.1Z"},
        {T_2025_11_07_154805 + 10, "2025-11-07T15:48:05.00000001Z"},
        {T_2025_11_07_154805, "2025-11-07T15:48:05Z"},
        {1709208000000000000LL, "2024-02-29T12:00:00Z"},
        {INT64_MIN, "1677-09-21T00:12:43.145224192Z"},
        {INT64_MAX, "2262-04-11T23:47:16.854775807Z"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char out[LC_TS_RFC3339NANO_MAX];
        memset(out, 'x', sizeof(out));
        size_t n = lc_ts_format_rfc3339nano(t[i].ns, out);
        assert_string_equal(out, t[i].want);
        assert_int_equal(n, strlen(t[i].want));
    }
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_format_roundtrip(void **state)
{
    (void)state;
    char out[LC_TS_RFC3339NANO_MAX], ref[64];
    int64_t base = T_2025_11_07_154805;
    for (int i = 0; i < 200000; i++) {
        int64_t ns;
        switch (i % 4) {
        case 0: /* anywhere in range */
            ns = (int64_t)rng();
            break;
        case 1: /* nearby: exercises the per-second cache */
            base += (int64_t)(rng() % 3000000);
            ns = base;
            break;
        case 2: /* whole seconds and few fraction digits */
            ns = (int64_t)(rng() % 4000000000ULL) * 1000000000LL +
                 (int64_t)(rng() % 10) * 100000000LL;
            break;
        default: /* back and forth across a second boundary */
            ns = base + ((i & 8) ? 1000000000LL : 0);
            break;
        }
        size_t n = lc_ts_format_rfc3339nano(ns, out);
        ref_format(ns, ref, sizeof(ref));
        if (strcmp(out, ref) != 0)
            fail_msg("ns %lld: got %s want %s", (long long)ns, out, ref);
        assert_int_equal(n, strlen(ref));
        int64_t back;
        assert_int_equal(lc_ts_parse_rfc3339(out, n, &back, NULL), 0);
        assert_int_equal(back, ns);
    }
}

struct syslog_case {
    const char *s;
    int64_t now;
    long off;
    int rc;
    int64_t ns;
    size_t used;
};

static void test_syslog(void **state)
{
    (void)state;
    const int64_t now = T_2025_11_23_103103;
    static const int64_t jan2 = 1735776000000000000LL;  /* 2025-01-02T00:00:00Z */
    static const int64_t dec31 = 1767182400000000000LL; /* 2025-12-31T12:00:00Z */
    static const int64_t mar10 = 1741564800000000000LL; /* 2025-03-10T00:00:00Z */
    const struct syslog_case t[] = {
        {"Nov 23 10:31:03", now, 0, 0, T_2025_11_23_103103, 15},
        {"Nov 23 10:31:03 host sshd[1]: hi", now, 0, 0, T_2025_11_23_103103, 15},
        {"nov 23 10:31:03", now, 0, 0, T_2025_11_23_103103, 15},
        {"Nov 23 10:31:03.5 x", now, 0, 0, T_2025_11_23_103103 + 500000000, 17},
        {"Nov 23 11:31:03", now, 3600, 0, T_2025_11_23_103103, 15}, /* local UTC+1 */
        {"Nov 23 05:01:03", now, -(5 * 3600 + 30 * 60), 0, T_2025_11_23_103103, 15},
        {"Nov  3 10:31:03", now, 0, 0, 1762165863000000000LL, 15},
        {"Nov 03 10:31:03", now, 0, 0, 1762165863000000000LL, 15},
        {"Nov 3 10:31:03", now, 0, 0, 1762165863000000000LL, 14},
        /* year inference */
        {"Dec 31 23:59:59", jan2, 0, 0, 1735689599000000000LL, 15},  /* last year */
        {"Jan  1 00:00:00", dec31, 0, 0, 1767225600000000000LL, 15}, /* next year */
        {"Dec 24 00:00:00", now, 0, 0, 1766534400000000000LL, 15},   /* < a month ahead */
        {"Dec 25 12:00:00", now, 0, 0, 1735128000000000000LL, 15},   /* > a month: last year */
        {"Feb 29 12:00:00", mar10, 0, 0, 1709208000000000000LL, 15}, /* only 2024 has it */
        /* malformed */
        {"Foo 23 10:31:03", now, 0, -EINVAL, 0, 0},
        {"Nov 32 10:31:03", now, 0, -EINVAL, 0, 0},
        {"Nov 00 10:31:03", now, 0, -EINVAL, 0, 0},
        {"Nov 23 24:31:03", now, 0, -EINVAL, 0, 0},
        {"Nov 23 10:61:03", now, 0, -EINVAL, 0, 0},
        {"Nov 23 10:31:034", now, 0, -EINVAL, 0, 0},
        {"Nov 23 10:31", now, 0, -EINVAL, 0, 0},
        {"Nov23 10:31:03", now, 0, -EINVAL, 0, 0},
        {"Nov  23 10:31:03", now, 0, -EINVAL, 0, 0},
        {"Nov 23 10:31:03.", now, 0, -EINVAL, 0, 0},
        {"Nov 31 10:31:03", now, 0, -EINVAL, 0, 0}, /* no year has it */
        {"", now, 0, -EINVAL, 0, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int64_t ns = 42;
        size_t used = 0;
        int rc = lc_ts_parse_syslog(t[i].s, strlen(t[i].s), t[i].now, t[i].off, &ns, &used);
        if (rc != t[i].rc || (rc == 0 && (ns != t[i].ns || used != t[i].used)))
            fail_msg("case %zu \"%s\": rc %d ns %lld used %zu", i, t[i].s, rc, (long long)ns, used);
    }
    /* without consumed the timestamp must be all of the string */
    int64_t ns;
    assert_int_equal(lc_ts_parse_syslog("Nov 23 10:31:03", 15, now, 0, &ns, NULL), 0);
    assert_int_equal(lc_ts_parse_syslog("Nov 23 10:31:03 x", 17, now, 0, &ns, NULL), -EINVAL);
    /* truncations are rejected unless they are a shorter valid timestamp */
    static const char full[] = "Nov 23 10:31:03.123";
    for (size_t k = 0; k < sizeof(full) - 1; k++) {
        char *exact = malloc(k ? k : 1);
        assert_non_null(exact);
        memcpy(exact, full, k);
        int rc = lc_ts_parse_syslog(exact, k, now, 0, &ns, NULL);
        free(exact);
        if (k == 15 || k >= 17)
            assert_int_equal(rc, 0);
        else
            assert_int_equal(rc, -EINVAL);
    }
}

static void test_prefix(void **state)
{
    (void)state;
    const int64_t now = T_2025_11_23_103103;
    const struct syslog_case t[] = {
        {"2025-11-07T15:48:05Z INFO hi", now, 0, 0, T_2025_11_07_154805, 20},
        {"2025-11-07T15:48:05.123456789Z", now, 0, 0, T_2025_11_07_154805 + 123456789, 30},
        /* relaxed: no zone = local time, ',' fraction, +hhmm */
        {"2025-11-07 15:48:05,123 INFO x", now, 0, 0, T_2025_11_07_154805 + 123000000, 23},
        {"2025-11-07 16:48:05 INFO x", now, 3600, 0, T_2025_11_07_154805, 19},
        {"2025-11-07T16:48:05+0100 x", now, 0, 0, T_2025_11_07_154805, 24},
        {"2025-11-07T16:48:05+01:00 x", now, -7200, 0, T_2025_11_07_154805, 25},
        {"2025-11-07T15:48:05+9 x", now, 0, 0, T_2025_11_07_154805, 19}, /* bad zone: local */
        {"Nov 23 10:31:03 host x", now, 0, 0, T_2025_11_23_103103, 15},
        {"hello world", now, 0, -EINVAL, 0, 0},
        {"[2025-11-07T15:48:05Z]", now, 0, -EINVAL, 0, 0},
        {"2025-11-07", now, 0, -EINVAL, 0, 0},
        {"2025-11-07 15:48:05. Next", now, 0, 0, T_2025_11_07_154805, 19},
        {"", now, 0, -EINVAL, 0, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int64_t ns = 42;
        size_t used = 0;
        int rc = lc_ts_parse_prefix(t[i].s, strlen(t[i].s), t[i].now, t[i].off, &ns, &used);
        if (rc != t[i].rc || (rc == 0 && (ns != t[i].ns || used != t[i].used)))
            fail_msg("case %zu \"%s\": rc %d ns %lld used %zu", i, t[i].s, rc, (long long)ns, used);
    }
    int64_t ns;
    assert_int_equal(lc_ts_parse_prefix("Nov 23 10:31:03 x", 17, now, 0, &ns, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339_valid),
        cmocka_unit_test(test_rfc3339_invalid),
        cmocka_unit_test(test_rfc3339_consumed_and_prefixes),
        cmocka_unit_test(test_format_table),
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_syslog),
        cmocka_unit_test(test_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
