/* SPDX-License-Identifier: MIT */
/* timestamp.c: RFC3339 / syslog timestamps <-> int64 ns, with civil-date arithmetic only. */
#include "parse/timestamp.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define NS_PER_SEC  1000000000LL
#define SEC_PER_DAY 86400LL
/* "a month ahead of now" for syslog year inference */
#define SYSLOG_AHEAD_SEC (31LL * SEC_PER_DAY)

static const int64_t pow10_tab[10] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
};

static inline bool is_digit(unsigned char c)
{
    return (unsigned)(c - '0') < 10u;
}

/* Two ASCII digits as a number, or -1. */
static inline int dig2(const char *p)
{
    unsigned a = (unsigned)((unsigned char)p[0] - '0');
    unsigned b = (unsigned)((unsigned char)p[1] - '0');
    if (a > 9 || b > 9)
        return -1;
    return (int)(a * 10 + b);
}

static inline bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/*
 * Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). Valid for every year we can meet; no table, no libc.
 */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* sec * 1e9 + frac (0 <= frac < 1e9) with overflow detection. */
static int sec_to_ns(int64_t sec, int64_t frac, int64_t *ns)
{
    int64_t r;
    /* near INT64_MIN the product alone overflows although the sum fits */
    if (sec < 0 && frac > 0) {
        sec += 1;
        frac -= NS_PER_SEC;
    }
    if (__builtin_mul_overflow(sec, NS_PER_SEC, &r) || __builtin_add_overflow(r, frac, &r))
        return -EINVAL;
    *ns = r;
    return 0;
}

/* Floor division of ns into seconds and a non-negative nanosecond remainder. */
static void split_ns(int64_t ns, int64_t *sec, int64_t *frac)
{
    int64_t s = ns / NS_PER_SEC;
    int64_t f = ns % NS_PER_SEC;
    if (f < 0) {
        s -= 1;
        f += NS_PER_SEC;
    }
    *sec = s;
    *frac = f;
}

/*
 * Parses '.' (or ',' when comma_ok) and digits at s[*i]; leaves *frac 0 and
 * *i unchanged when there is no separator. More than 9 digits are truncated.
 */
static int parse_fraction(const char *s, size_t len, size_t *i, bool comma_ok, int64_t *frac)
{
    size_t p = *i;
    *frac = 0;
    if (p >= len || !(s[p] == '.' || (comma_ok && s[p] == ',')))
        return 0;
    p++;
    size_t start = p;
    int64_t f = 0;
    while (p < len && is_digit((unsigned char)s[p])) {
        if (p - start < 9)
            f = f * 10 + (s[p] - '0');
        p++;
    }
    size_t n = p - start;
    if (n == 0)
        return -EINVAL;
    if (n < 9)
        f *= pow10_tab[9 - n];
    *frac = f;
    *i = p;
    return 0;
}

/*
 * Per-thread cache of the last valid "YYYY-MM-DDThh:mm" parsed: log timestamps
 * come in order, so most lines share it and skip the date validation and
 * arithmetic. Starts as a string no valid timestamp begins with.
 */
static _Thread_local char parse_cached_minute[16] = "xxxxxxxxxxxxxxxx";
static _Thread_local int64_t parse_cached_minute_sec;

/*
 * The RFC 3339 parser proper. relaxed: ',' fraction separator allowed, the
 * zone may be absent (then utc_offset_sec applies) or written "+hhmm".
 */
static int parse_iso(const char *s, size_t len, bool relaxed, long utc_offset_sec, int64_t *ns,
                     size_t *consumed)
{
    if (len < 19)
        return -EINVAL;
    int ss = dig2(s + 17);
    if (s[16] != ':' || ss < 0 || ss > 60)
        return -EINVAL;
    int64_t minute; /* seconds since the epoch of YYYY-MM-DDThh:mm, before the zone */
    if (memcmp(s, parse_cached_minute, 16) == 0) {
        minute = parse_cached_minute_sec;
    } else {
        int y_hi = dig2(s), y_lo = dig2(s + 2);
        int mo = dig2(s + 5), d = dig2(s + 8);
        int hh = dig2(s + 11), mi = dig2(s + 14);
        if (y_hi < 0 || y_lo < 0 || s[4] != '-' || mo < 1 || mo > 12 || s[7] != '-' || d < 1 ||
            !(s[10] == 'T' || s[10] == 't' || s[10] == ' ') || hh < 0 || hh > 23 || s[13] != ':' ||
            mi < 0 || mi > 59)
            return -EINVAL;
        int64_t y = y_hi * 100 + y_lo;
        if (d > days_in_month(y, mo))
            return -EINVAL;
        minute = days_from_civil(y, mo, d) * SEC_PER_DAY + hh * 3600 + mi * 60;
        memcpy(parse_cached_minute, s, 16);
        parse_cached_minute_sec = minute;
    }

    size_t i = 19;
    int64_t frac;
    if (parse_fraction(s, len, &i, relaxed, &frac) < 0 && !relaxed)
        return -EINVAL; /* relaxed: "15:48:05. Next sentence" has no fraction */

    int64_t off;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        off = 0;
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int oh = -1, om = -1;
        size_t zl = 0;
        if (i + 6 <= len && s[i + 3] == ':') {
            oh = dig2(s + i + 1);
            om = dig2(s + i + 4);
            zl = 6;
        } else if (relaxed && i + 5 <= len) {
            oh = dig2(s + i + 1);
            om = dig2(s + i + 3);
            zl = 5;
        }
        if (oh >= 0 && oh <= 23 && om >= 0 && om <= 59) {
            off = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
            i += zl;
        } else if (relaxed) {
            off = utc_offset_sec;
        } else {
            return -EINVAL;
        }
    } else if (relaxed) {
        off = utc_offset_sec;
    } else {
        return -EINVAL;
    }
    if (!consumed && i != len)
        return -EINVAL;

    int64_t sec = minute + ss - off;
    int64_t out;
    if (sec_to_ns(sec, frac, &out) < 0)
        return -EINVAL;
    *ns = out;
    if (consumed)
        *consumed = i;
    return 0;
}

int lc_ts_parse_rfc3339(const char *s, size_t len, int64_t *ns, size_t *consumed)
{
    return parse_iso(s, len, false, 0, ns, consumed);
}

/* 1..12 for a three-letter English month abbreviation (any case), else 0. */
static int month_from_abbr(const char *p)
{
    static const char names[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    char a = (char)(p[0] | 0x20), b = (char)(p[1] | 0x20), c = (char)(p[2] | 0x20);
    for (int m = 0; m < 12; m++)
        if (names[3 * m] == a && names[3 * m + 1] == b && names[3 * m + 2] == c)
            return m + 1;
    return 0;
}

int lc_ts_parse_syslog(const char *s, size_t len, int64_t now_ns, long utc_offset_sec, int64_t *ns,
                       size_t *consumed)
{
    /* shortest form: "Nov 3 10:31:03" */
    if (len < 14 || s[3] != ' ')
        return -EINVAL;
    int mo = month_from_abbr(s);
    if (mo == 0)
        return -EINVAL;

    int d;
    size_t p;
    if (s[4] == ' ' && is_digit((unsigned char)s[5])) {
        d = s[5] - '0';
        p = 6;
    } else if (is_digit((unsigned char)s[4]) && is_digit((unsigned char)s[5])) {
        d = dig2(s + 4);
        p = 6;
    } else if (is_digit((unsigned char)s[4]) && s[5] == ' ') {
        d = s[4] - '0';
        p = 5;
    } else {
        return -EINVAL;
    }
    if (d < 1 || d > 31 || p + 9 > len || s[p] != ' ')
        return -EINVAL;
    const char *t = s + p + 1;
    int hh = dig2(t), mi = dig2(t + 3), ss = dig2(t + 6);
    if (hh < 0 || hh > 23 || t[2] != ':' || mi < 0 || mi > 59 || t[5] != ':' || ss < 0 || ss > 60)
        return -EINVAL;
    size_t i = p + 9;
    int64_t frac;
    if (parse_fraction(s, len, &i, false, &frac) < 0)
        return -EINVAL;
    if (i < len && (consumed == NULL || is_digit((unsigned char)s[i])))
        return -EINVAL;

    /* the year of "now" in the local time the line was written in */
    int64_t now_sec, now_frac, now_y;
    int now_m, now_d;
    split_ns(now_ns, &now_sec, &now_frac);
    civil_from_days((now_sec + utc_offset_sec) >= 0
                        ? (now_sec + utc_offset_sec) / SEC_PER_DAY
                        : ((now_sec + utc_offset_sec) - (SEC_PER_DAY - 1)) / SEC_PER_DAY,
                    &now_y, &now_m, &now_d);

    for (int64_t y = now_y + 1; y >= now_y - 1; y--) {
        if (d > days_in_month(y, mo))
            continue;
        int64_t sec = days_from_civil(y, mo, d) * SEC_PER_DAY + hh * 3600 + mi * 60 + ss -
                      (int64_t)utc_offset_sec;
        if (sec > now_sec + SYSLOG_AHEAD_SEC)
            continue;
        int64_t out;
        if (sec_to_ns(sec, frac, &out) < 0)
            return -EINVAL;
        *ns = out;
        if (consumed)
            *consumed = i;
        return 0;
    }
    return -EINVAL;
}

int lc_ts_parse_prefix(const char *s, size_t len, int64_t now_ns, long utc_offset_sec, int64_t *ns,
                       size_t *consumed)
{
    size_t dummy;
    size_t *c = consumed ? consumed : &dummy;
    if (parse_iso(s, len, true, utc_offset_sec, ns, c) == 0)
        return 0;
    return lc_ts_parse_syslog(s, len, now_ns, utc_offset_sec, ns, c);
}

static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

static inline void put2(char *p, int v)
{
    memcpy(p, digit_pairs + 2 * v, 2);
}

/* Per-thread cache of the "YYYY-MM-DDThh:mm:ss" text of the last second formatted. */
static _Thread_local int64_t fmt_cached_sec = INT64_MIN; /* never a floor(ns / 1e9) */
static _Thread_local char fmt_cached_date[20];

size_t lc_ts_format_rfc3339nano(int64_t ns, char out[LC_TS_RFC3339NANO_MAX])
{
    int64_t sec, frac;
    split_ns(ns, &sec, &frac);
    if (sec != fmt_cached_sec) {
        int64_t days = sec >= 0 ? sec / SEC_PER_DAY : (sec - (SEC_PER_DAY - 1)) / SEC_PER_DAY;
        int64_t sod = sec - days * SEC_PER_DAY;
        int64_t y;
        int m, d;
        civil_from_days(days, &y, &m, &d);
        char *p = fmt_cached_date;
        put2(p, (int)(y / 100)); /* int64 ns years are 1677..2262 */
        put2(p + 2, (int)(y % 100));
        p[4] = '-';
        put2(p + 5, m);
        p[7] = '-';
        put2(p + 8, d);
        p[10] = 'T';
        put2(p + 11, (int)(sod / 3600));
        p[13] = ':';
        put2(p + 14, (int)(sod / 60 % 60));
        p[16] = ':';
        put2(p + 17, (int)(sod % 60));
        fmt_cached_sec = sec;
    }
    memcpy(out, fmt_cached_date, 19);
    size_t n = 19;
    if (frac != 0) {
        int digits = 9;
        uint32_t f = (uint32_t)frac;
        while (f % 10 == 0) {
            f /= 10;
            digits--;
        }
        out[n] = '.';
        for (int k = digits; k > 0; k--) {
            out[n + (size_t)k] = (char)('0' + f % 10);
            f /= 10;
        }
        n += 1 + (size_t)digits;
    }
    out[n++] = 'Z';
    out[n] = '\0';
    return n;
}
