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
 * has %z). A value no format parses leaves the record's time as it was, and
 * counts as failed (log_capturer_process_failed_total).
 */
struct lc_timestamp_conf {
    char *source;
    char *format;
    struct lc_strlist fallback;
};

#define TC(f) offsetof(struct lc_timestamp_conf, f)

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
     .help = "RFC3339, RFC3339Nano, Unix, UnixMs, UnixUs, UnixNs, or a strptime layout "
             "(\"%Y-%m-%d %H:%M:%S\"; UTC unless %z)."},
    {.type = LC_OPT_STRLIST,
     .key = "fallback_formats",
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
    {
        char buf[128];
        struct tm tm = {0};
        const char *end;
        time_t t;

        if (len >= sizeof(buf))
            return -EINVAL;
        memcpy(buf, s, len);
        buf[len] = '\0';
        end = strptime(buf, fmt, &tm);
        if (!end || *end)
            return -EINVAL;
        t = timegm(&tm) - tm.tm_gmtoff;
        if (t < 0)
            return -EINVAL;
        *ns = (int64_t)t * LC_NS_PER_SEC;
        return 0;
    }
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
