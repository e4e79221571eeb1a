/* SPDX-License-Identifier: MIT */
/* timestamp.c: the `timestamp` stage: the record's time from a field. */
#include "core/record-t.h"
#include "parse/timestamp.h"
#include "process/stage.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * `format` (then each of `fallback_formats`, in order) is RFC3339,
 * RFC3339Nano (the same parser: fractions of 0..9 digits), Unix, UnixMs,
 * UnixUs, UnixNs (an integer; Unix also takes a fraction "1700000000.25"), or
 * a strftime-like layout for strptime(3) ("%Y-%m-%d %H:%M:%S", UTC unless it
 * has %z). A layout may hold one fraction of a second, which strptime has
 * not: `%f` is an optional one (a '.' or ',' and any number of digits, the
 * first 9 counted; nothing when the value has no '.'/',' and digit there),
 * `%3f` (1..9) a required one of exactly that many digits — Go's `.999...`
 * and `.000`. The layout is cut there: strptime reads the part before it,
 * then the fraction, then strptime the rest into the same struct tm. A value
 * no format parses leaves the record's time as it was, and counts as failed
 * (log_capturer_process_failed_total).
 */
struct lc_timestamp_conf {
    char *source;
    char *format;
    struct lc_strlist fallback;
};

#define TC(f) offsetof(struct lc_timestamp_conf, f)

/* The first %f or %Nf (N 1..9) of a layout: its offset and length (0 when none), N in *digits. */
static size_t frac_at(const char *fmt, size_t *flen, int *digits)
{
    for (size_t i = 0; fmt[i]; i++) {
        if (fmt[i] != '%')
            continue;
        if (fmt[i + 1] == 'f') {
            *flen = 2;
            *digits = 0;
            return i;
        }
        if (fmt[i + 1] >= '1' && fmt[i + 1] <= '9' && fmt[i + 2] == 'f') {
            *flen = 3;
            *digits = fmt[i + 1] - '0';
            return i;
        }
        if (fmt[i + 1])
            i++; /* %%, %Y, ... */
    }
    *flen = 0;
    return 0;
}

static const char *check_format(const char *key, const char *v)
{
    size_t flen, at;
    int digits;

    (void)key;
    at = frac_at(v, &flen, &digits);
    if (flen && (frac_at(v + at + flen, &flen, &digits), flen))
        return "at most one %f (fraction of a second) in a layout";
    return NULL;
}

static const struct lc_option timestamp_options[] = {
    {.type = LC_OPT_STR,
     .key = "source",
     .offset = TC(source),
     .flags = LC_OPT_REQUIRED,
     .help = "Field holding the time."},
    {.type = LC_OPT_STR,
     .key = "format",
     .def = "RFC3339",
     .offset = TC(format),
     .check = check_format,
     .help = "RFC3339, RFC3339Nano, Unix, UnixMs, UnixUs, UnixNs, or a strptime layout "
             "(\"%Y-%m-%d %H:%M:%S\"; UTC unless %z) with at most one fraction of a second: "
             "`%f` optional ('.' or ',' and any digits), `%3f` (1..9) exactly that many digits "
             "(\"%Y-%m-%d %H:%M:%S%3f\" reads 2024-05-01 10:00:00.123)."},
    {.type = LC_OPT_STRLIST,
     .key = "fallback_formats",
     .check = check_format,
     .offset = TC(fallback),
     .help = "Formats tried in order when `format` does not parse the value."},
    LC_OPT_END,
};

static int parse_int(const char *s, size_t len, int64_t *v)
{
    int64_t x = 0;

    if (len == 0 || len > 19)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 0;
}

/*
 * A fraction of a second at *p: '.' or ',' then digits (exactly `digits` of
 * them, or with digits 0 any number, and none at all is 0 ns). Moves *p past
 * it. 0 or -EINVAL.
 */
static int parse_frac(const char **p, int digits, int64_t *frac)
{
    const char *q = *p;
    int n = 0;

    *frac = 0;
    if ((q[0] != '.' && q[0] != ',') || q[1] < '0' || q[1] > '9')
        return digits ? -EINVAL : 0;
    for (q++; *q >= '0' && *q <= '9' && (!digits || n < digits); q++, n++)
        if (n < 9)
            *frac = *frac * 10 + (*q - '0');
    if (digits && n != digits)
        return -EINVAL;
    for (; n < 9; n++)
        *frac *= 10;
    *p = q;
    return 0;
}

/* A strptime layout, with at most one %f / %Nf (see the top). 0 or -EINVAL. */
static int parse_layout(const char *fmt, const char *s, size_t len, int64_t *ns)
{
    char buf[128], head[128];
    struct tm tm = {0};
    const char *end;
    size_t flen;
    int digits = 0;
    size_t at = frac_at(fmt, &flen, &digits);
    int64_t frac = 0;
    long off;
    time_t t;

    if (len >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (!flen) {
        end = strptime(buf, fmt, &tm);
    } else {
        if (at >= sizeof(head))
            return -EINVAL;
        memcpy(head, fmt, at);
        head[at] = '\0';
        end = strptime(buf, head, &tm);
        if (end && parse_frac(&end, digits, &frac) < 0)
            return -EINVAL;
        if (end && fmt[at + flen])
            end = strptime(end, fmt + at + flen, &tm);
    }
    if (!end || *end)
        return -EINVAL;
    off = tm.tm_gmtoff; /* before timegm, which sets it to 0 */
    t = timegm(&tm) - off;
    if (t < 0)
        return -EINVAL;
    *ns = (int64_t)t * LC_NS_PER_SEC + frac;
    return 0;
}

/* Parses value by one format into *ns. 0 or -EINVAL. */
static int parse_as(const char *fmt, const char *s, size_t len, int64_t *ns)
{
    int64_t v, frac = 0;

    if (strcmp(fmt, "RFC3339") == 0 || strcmp(fmt, "RFC3339Nano") == 0)
        return lc_ts_parse_rfc3339(s, len, ns, NULL);
    if (strcmp(fmt, "Unix") == 0) {
        const char *dot = memchr(s, '.', len);
        size_t ilen = dot ? (size_t)(dot - s) : len;
        if (parse_int(s, ilen, &v) < 0 || v > INT64_MAX / LC_NS_PER_SEC)
            return -EINVAL;
        if (dot) {
            size_t fl = len - ilen - 1;
            int64_t scale = LC_NS_PER_SEC;
            if (fl == 0 || fl > 9 || parse_int(dot + 1, fl, &frac) < 0)
                return -EINVAL;
            for (size_t i = 0; i < fl; i++)
                scale /= 10;
            frac *= scale;
        }
        *ns = v * LC_NS_PER_SEC + frac;
        return 0;
    }
    if (strcmp(fmt, "UnixMs") == 0 || strcmp(fmt, "UnixUs") == 0 || strcmp(fmt, "UnixNs") == 0) {
        int64_t mul = fmt[4] == 'M' ? 1000000 : fmt[4] == 'U' ? 1000 : 1;
        if (parse_int(s, len, &v) < 0 || v > INT64_MAX / mul)
            return -EINVAL;
        *ns = v * mul;
        return 0;
    }
    return parse_layout(fmt, s, len, ns);
}

static enum lc_stage_result timestamp_run(struct lc_stage *st, struct lc_prec *r)
{
    const struct lc_timestamp_conf *c = st->conf;
    size_t len;
    const char *v = lc_prec_field(r, c->source, strlen(c->source), &len);
    int64_t ns;

    if (!v)
        return LC_STAGE_PASS;
    if (parse_as(c->format, v, len, &ns) == 0) {
        r->ts_ns = ns;
        return LC_STAGE_PASS;
    }
    for (size_t k = 0; k < c->fallback.n; k++) {
        if (parse_as(c->fallback.v[k], v, len, &ns) == 0) {
            r->ts_ns = ns;
            return LC_STAGE_PASS;
        }
    }
    return LC_STAGE_FAIL;
}

const struct lc_stage_plugin lc_stage_timestamp = {
    .name = "timestamp",
    .description = "sets the record's time from a field (RFC 3339, Unix, strptime layouts)",
    .options = timestamp_options,
    .conf_size = sizeof(struct lc_timestamp_conf),
    .run = timestamp_run,
};
