/* SPDX-License-Identifier: MIT */
/* syslog.c: RFC 5424 / RFC 3164 parsers and RFC 6587 framing (see syslog.h). */
#include "parse/syslog.h"

#include "parse/timestamp.h"

#include <errno.h>
#include <string.h>

/* Hand-written: the syslog input's hot path, on untrusted network input. */

static const char *const facilities[24] = {
    "kern",   "user",   "mail",     "daemon", "auth",   "syslog",   "lpr",     "news",
    "uucp",   "cron",   "authpriv", "ftp",    "ntp",    "security", "console", "solaris-cron",
    "local0", "local1", "local2",   "local3", "local4", "local5",   "local6",  "local7",
};
static const char *const severities[8] = {"emerg",   "alert",  "crit", "err",
                                          "warning", "notice", "info", "debug"};

const char *lc_syslog_facility_name(int facility)
{
    return facility >= 0 && facility < 24 ? facilities[facility] : "?";
}

const char *lc_syslog_severity_name(int severity)
{
    return severity >= 0 && severity < 8 ? severities[severity] : "?";
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* "<PRI>": 1 to 3 digits, 0..191, no leading zero but "0" itself. Returns bytes used, or 0. */
static size_t parse_pri(const char *s, size_t len, struct lc_syslog_msg *m)
{
    size_t i = 1;
    int v = 0;

    if (len < 3 || s[0] != '<')
        return 0;
    while (i < len && i <= 4 && is_digit(s[i]))
        v = v * 10 + (s[i++] - '0');
    if (i == 1 || i > 4 || i >= len || s[i] != '>' || v > 191 || (s[1] == '0' && i > 2))
        return 0;
    memset(m, 0, sizeof(*m));
    m->facility = v / 8;
    m->severity = v % 8;
    return i + 1;
}

/* A field of printable US-ASCII up to SP or the end; "-" is empty. 0 if longer than max. */
static bool field(const char **pp, const char *end, size_t max, struct lc_syslog_field *f)
{
    const char *p = *pp, *start = p;

    while (p < end && *p != ' ') {
        if ((unsigned char)*p < 33 || (unsigned char)*p > 126)
            return false;
        p++;
    }
    if (p == start || (size_t)(p - start) > max)
        return false;
    f->p = start;
    f->len = (p - start == 1 && *start == '-') ? 0 : (size_t)(p - start);
    *pp = p;
    return true;
}

static bool space(const char **pp, const char *end)
{
    if (*pp >= end || **pp != ' ')
        return false;
    (*pp)++;
    return true;
}

/* SD-ELEMENTs: '[' SD-ID *(SP name="value") ']', values with \" \\ \] escapes. */
static bool structured_data(const char **pp, const char *end, struct lc_syslog_field *f)
{
    const char *p = *pp, *start = p;

    if (p < end && *p == '-') {
        f->p = p;
        f->len = 0;
        *pp = p + 1;
        return true;
    }
    if (p >= end || *p != '[')
        return false;
    while (p < end && *p == '[') {
        bool quoted = false;
        p++;
        if (p >= end || *p == ' ' || *p == ']' || *p == '=' || *p == '"')
            return false; /* an SD-ID first */
        for (;;) {
            if (p >= end)
                return false;
            if (quoted) {
                if (*p == '\\' && p + 1 < end)
                    p += 2;
                else if (*p++ == '"')
                    quoted = false;
                continue;
            }
            if (*p == '"') {
                if (p[-1] != '=')
                    return false;
                quoted = true;
            } else if (*p == ']') {
                p++;
                break;
            }
            p++;
        }
    }
    f->p = start;
    f->len = (size_t)(p - start);
    *pp = p;
    return true;
}

static void set_msg(struct lc_syslog_msg *m, const char *p, const char *end)
{
    if (end - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    m->msg.p = p;
    m->msg.len = (size_t)(end - p);
}

int lc_syslog_parse_5424(const char *s, size_t len, struct lc_syslog_msg *m)
{
    const char *p, *end = s + len;
    size_t n = parse_pri(s, len, m), used;
    int v = 0;

    if (!n)
        return -EINVAL;
    p = s + n;
    if (p >= end || *p < '1' || *p > '9')
        return -EINVAL;
    while (p < end && is_digit(*p) && v < 1000)
        v = v * 10 + (*p++ - '0');
    if (v >= 1000 || !space(&p, end))
        return -EINVAL;
    m->version = v;
    if (p < end && *p == '-') {
        p++;
    } else {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        if (!sp || lc_ts_parse_rfc3339(p, (size_t)(sp - p), &m->ts_ns, &used) < 0 ||
            used != (size_t)(sp - p))
            return -EINVAL;
        p = sp;
    }
    if (!space(&p, end) || !field(&p, end, 255, &m->hostname) || !space(&p, end) ||
        !field(&p, end, 48, &m->app_name) || !space(&p, end) || !field(&p, end, 128, &m->procid) ||
        !space(&p, end) || !field(&p, end, 32, &m->msgid) || !space(&p, end) ||
        !structured_data(&p, end, &m->sd))
        return -EINVAL;
    if (p < end && !space(&p, end))
        return -EINVAL;
    set_msg(m, p, end);
    return 0;
}

/* TAG[PID]: the tag is up to 48 characters other than SP, '[' and ':'. */
static void tag_and_msg(struct lc_syslog_msg *m, const char *p, const char *end)
{
    const char *t = p;

    while (t < end && *t != ' ' && *t != '[' && *t != ':' && (unsigned char)*t > 32 && t - p < 48)
        t++;
    if (t == p || t >= end || (*t != '[' && *t != ':')) {
        set_msg(m, p, end); /* no tag: all of it is the message */
        return;
    }
    m->app_name.p = p;
    m->app_name.len = (size_t)(t - p);
    if (*t == '[') {
        const char *c = memchr(t, ']', (size_t)(end - t));
        if (!c || c - t - 1 > 128) {
            memset(&m->app_name, 0, sizeof(m->app_name));
            set_msg(m, p, end);
            return;
        }
        m->procid.p = t + 1;
        m->procid.len = (size_t)(c - t - 1);
        t = c + 1;
    }
    if (t < end && *t == ':')
        t++;
    if (t < end && *t == ' ')
        t++;
    set_msg(m, t, end);
}

int lc_syslog_parse_3164(const char *s, size_t len, int64_t now_ns, long utc_offset_sec,
                         struct lc_syslog_msg *m)
{
    const char *p, *end = s + len;
    size_t n = parse_pri(s, len, m), used;

    if (!n)
        return -EINVAL;
    p = s + n;
    if (lc_ts_parse_syslog(p, (size_t)(end - p), now_ns, utc_offset_sec, &m->ts_ns, &used) == 0 ||
        lc_ts_parse_rfc3339(p, (size_t)(end - p), &m->ts_ns, &used) == 0) {
        p += used;
        if (p < end && *p == ' ')
            p++;
        /* HOSTNAME SP, unless the next word is already the tag ("tag:" or "tag[pid]") */
        const char *w = p;
        while (w < end && *w != ' ' && *w != ':' && *w != '[')
            w++;
        if (w < end && *w == ' ' && w > p && w - p <= 255) {
            m->hostname.p = p;
            m->hostname.len = (size_t)(w - p);
            p = w + 1;
        }
        tag_and_msg(m, p, end);
    } else {
        m->ts_ns = 0;
        set_msg(m, p, end); /* RFC 3164 4.3.3: no time, no host: the rest is the content */
    }
    return 0;
}

int lc_syslog_parse(const char *s, size_t len, int64_t now_ns, long utc_offset_sec,
                    struct lc_syslog_msg *m)
{
    struct lc_syslog_msg tmp;
    size_t n = parse_pri(s, len, &tmp);

    if (!n)
        return -EINVAL;
    if (n < len && s[n] >= '1' && s[n] <= '9') {
        size_t i = n;
        while (i < len && is_digit(s[i]))
            i++;
        if (i < len && s[i] == ' ' && i - n <= 3)
            return lc_syslog_parse_5424(s, len, m);
    }
    return lc_syslog_parse_3164(s, len, now_ns, utc_offset_sec, m);
}

enum lc_syslog_frame lc_syslog_frame(const char *p, size_t n, size_t max, size_t *start,
                                     size_t *mlen, size_t *used)
{
    if (n > 0 && p[0] >= '1' && p[0] <= '9') {
        size_t i = 0, count = 0;
        while (i < n && i < 10 && is_digit(p[i]))
            count = count * 10 + (size_t)(p[i++] - '0');
        if (i == n && i < 10)
            return LC_SYSLOG_FRAME_MORE; /* the count is still arriving */
        if (i < 10 && p[i] == ' ') {
            size_t have = n - (i + 1);
            *start = i + 1;
            *used = i + 1 + count;
            if (count <= max) {
                if (have < count)
                    return LC_SYSLOG_FRAME_MORE;
                *mlen = count;
                return LC_SYSLOG_FRAME_OK;
            }
            if (have < max)
                return LC_SYSLOG_FRAME_MORE;
            *mlen = max;
            return LC_SYSLOG_FRAME_BIG;
        }
        /* not a count: a line that starts with digits */
    }
    const char *nl = memchr(p, '\n', n < max + 1 ? n : max + 1);
    if (nl) {
        size_t l = (size_t)(nl - p);
        *start = 0;
        *used = l + 1;
        *mlen = l > 0 && p[l - 1] == '\r' ? l - 1 : l;
        return LC_SYSLOG_FRAME_OK;
    }
    if (n <= max)
        return LC_SYSLOG_FRAME_MORE;
    *start = 0;
    *mlen = max;
    *used = 0;
    return LC_SYSLOG_FRAME_BIG;
}
