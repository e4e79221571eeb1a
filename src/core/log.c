/* SPDX-License-Identifier: MIT */
/* log.c: the agent's own log: one JSON object per line, rate-limited per format string. */
#include "core/log.h"

#include "core/redact.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LC_LOG_SLOTS     64   /* messages tracked at once; a power of two */
#define LC_LOG_PROBE     4    /* slots looked at per message before evicting */
#define LC_LOG_LINE_MAX  4096 /* one line, newline included */
#define LC_LOG_TAIL_MAX  80   /* kept free for the suppressed/truncated fields and "}\n" */
#define LC_LOG_MSG_MAX   2048 /* the formatted message before escaping */
#define LC_LOG_COMP_MAX  64   /* longer component names are cut */
#define LC_LOG_SAVED_MAX 160  /* the message a "suppressed" line repeats */

int lc_log_threshold = LC_LOG_INFO;

/* One message (format string) being rate-limited. count == 0: no window open. */
struct log_slot {
    const char *fmt;
    int64_t window_start;
    unsigned count;
    uint64_t suppressed;
    enum lc_log_level level;
    char component[LC_LOG_COMP_MAX];
    char msg[LC_LOG_SAVED_MAX];
};

/* A line being built on the stack; writes stop at `limit`, the tail uses the rest. */
struct log_line {
    char buf[LC_LOG_LINE_MAX];
    size_t len;
    size_t limit;
    bool truncated;
};

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = STDERR_FILENO;
static int64_t (*log_now_fn)(void);
static int64_t log_last_sweep = -1;
static struct log_slot log_slots[LC_LOG_SLOTS];

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* Parses "debug|info|warn|error" (any case) into *out; 0 or -EINVAL. */
int lc_log_level_parse(const char *s, enum lc_log_level *out)
{
    for (int i = LC_LOG_DEBUG; s && i <= LC_LOG_ERROR; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum lc_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* Messages below `level` are dropped before formatting. */
void lc_log_set_level(enum lc_log_level level)
{
    lc_log_threshold = (int)level;
}

/* Sends the log to fd (borrowed: the caller keeps it open while logging). */
void lc_log_set_fd(int fd)
{
    pthread_mutex_lock(&log_mu);
    log_fd = fd;
    pthread_mutex_unlock(&log_mu);
}

/* Replaces the rate limiter's clock (tests); NULL restores CLOCK_MONOTONIC. */
void lc_log_set_clock(int64_t (*now_fn)(void))
{
    pthread_mutex_lock(&log_mu);
    log_now_fn = now_fn;
    log_last_sweep = -1;
    pthread_mutex_unlock(&log_mu);
}

static int64_t log_now(void)
{
    if (log_now_fn)
        return log_now_fn();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

/* Drops an incomplete UTF-8 sequence at the end of s[0..len) so a cut never splits a character. */
static size_t utf8_trim(const char *s, size_t len)
{
    size_t i = len;
    size_t back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0)
        return len;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (want == 1)
        return len;
    return back + 1 < want ? i - 1 : len;
}

/* Appends raw bytes if they all fit under the limit; else marks the line truncated. */
static bool line_put(struct log_line *l, const char *s, size_t n)
{
    if (l->len + n > l->limit) {
        l->truncated = true;
        return false;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    return true;
}

static bool line_puts(struct log_line *l, const char *s)
{
    return line_put(l, s, strlen(s));
}

/* Writes the JSON string form of byte c into out; returns its length (1, 2 or 6). */
static size_t json_escape_byte(unsigned char c, char out[6])
{
    static const char hex[] = "0123456789abcdef";
    static const char named[] = {['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f',
                                 ['\r'] = 'r', ['"'] = '"',  ['\\'] = '\\'};
    if (c < sizeof(named) && named[c]) {
        out[0] = '\\';
        out[1] = named[c];
        return 2;
    }
    if (c < 0x20) {
        out[0] = '\\';
        out[1] = 'u';
        out[2] = '0';
        out[3] = '0';
        out[4] = hex[c >> 4];
        out[5] = hex[c & 0xf];
        return 6;
    }
    out[0] = (char)c;
    return 1;
}

/* Appends s as JSON string content; stops at the limit on a character boundary. */
static void line_json(struct log_line *l, const char *s, size_t n)
{
    size_t start = l->len;
    for (size_t i = 0; i < n; i++) {
        char esc[6];
        if (!line_put(l, esc, json_escape_byte((unsigned char)s[i], esc))) {
            l->len = start + utf8_trim(l->buf + start, l->len - start);
            return;
        }
    }
}

/* "time":"2024-05-01T12:00:00.123Z" in UTC. */
static void line_time(struct log_line *l)
{
    struct timespec ts;
    struct tm tm;
    char t[64];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(t, sizeof(t), "{\"time\":\"%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(t + n, sizeof(t) - n, ".%03ldZ\"", ts.tv_nsec / 1000000);
    line_put(l, t, n);
}

/* The fields every line starts with, up to and including the message. */
static void line_head(struct log_line *l, enum lc_log_level level, const char *component,
                      const char *msg, size_t msglen)
{
    l->len = 0;
    l->limit = sizeof(l->buf) - LC_LOG_TAIL_MAX;
    l->truncated = false;
    line_time(l);
    line_puts(l, ",\"level\":\"");
    line_puts(l, level_names[level]);
    line_puts(l, "\",\"component\":\"");
    line_json(l, component, strlen(component));
    line_puts(l, "\",\"msg\":\"");
    line_json(l, msg, msglen);
    l->limit = sizeof(l->buf); /* the closing quote may use the reserve: the message filled it */
    line_puts(l, "\"");
    l->limit = sizeof(l->buf) - LC_LOG_TAIL_MAX;
}

/* Closes the line (suppressed count, truncation mark) and writes it with one write(). */
static void line_finish(struct log_line *l, uint64_t suppressed)
{
    char tail[LC_LOG_TAIL_MAX];
    int n = 0;
    if (suppressed)
        n += snprintf(tail + n, sizeof(tail) - (size_t)n, ",\"suppressed\":%llu",
                      (unsigned long long)suppressed);
    if (l->truncated)
        n += snprintf(tail + n, sizeof(tail) - (size_t)n, ",\"truncated\":true");
    n += snprintf(tail + n, sizeof(tail) - (size_t)n, "}\n");
    l->limit = sizeof(l->buf);
    line_put(l, tail, (size_t)n);
    for (size_t off = 0; off < l->len;) {
        ssize_t w = write(log_fd, l->buf + off, l->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere to report a failing log */
        off += (size_t)w;
    }
}

/* Copies at most cap - 1 bytes of s into dst, never splitting a UTF-8 character. */
static void copy_trimmed(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = utf8_trim(s, cap - 1);
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* The line that ends a window in which repeats were dropped. Caller holds log_mu. */
static void slot_summary(struct log_slot *s)
{
    struct log_line l;
    if (s->suppressed) {
        line_head(&l, s->level, s->component, s->msg, strlen(s->msg));
        line_finish(&l, s->suppressed);
    }
    s->count = 0;
    s->suppressed = 0;
}

/* Ends every window that is over, reporting its suppressed count. Caller holds log_mu. */
static void sweep(int64_t now)
{
    log_last_sweep = now;
    for (size_t i = 0; i < LC_LOG_SLOTS; i++) {
        struct log_slot *s = &log_slots[i];
        if (s->count && now - s->window_start >= LC_LOG_WINDOW)
            slot_summary(s);
    }
}

static size_t slot_hash(const char *fmt)
{
    uint64_t h = (uint64_t)(uintptr_t)fmt * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 58); /* top 6 bits: 64 slots */
}

/*
 * The slot of `fmt`: its own, a free one, or (all LC_LOG_PROBE taken) the
 * one whose window opened first, after reporting what it suppressed.
 */
static struct log_slot *slot_get(const char *fmt)
{
    size_t h = slot_hash(fmt);
    struct log_slot *victim = NULL;
    for (size_t i = 0; i < LC_LOG_PROBE; i++) {
        struct log_slot *s = &log_slots[(h + i) & (LC_LOG_SLOTS - 1)];
        if (s->fmt == fmt)
            return s;
    }
    for (size_t i = 0; i < LC_LOG_PROBE; i++) {
        struct log_slot *s = &log_slots[(h + i) & (LC_LOG_SLOTS - 1)];
        if (!s->count) {
            victim = s;
            break;
        }
        if (!victim || s->window_start < victim->window_start)
            victim = s;
    }
    slot_summary(victim);
    victim->fmt = fmt;
    return victim;
}

/* Decides whether this occurrence of fmt is written; caller holds log_mu. */
static struct log_slot *rate_limit(const char *fmt, int64_t now)
{
    if (now != log_last_sweep)
        sweep(now);
    struct log_slot *s = slot_get(fmt);
    if (s->count && now - s->window_start >= LC_LOG_WINDOW)
        slot_summary(s);
    if (!s->count)
        s->window_start = now;
    if (s->count >= LC_LOG_BURST) {
        s->suppressed++;
        return NULL;
    }
    s->count++;
    return s;
}

/*
 * Formats and writes one line unless rate-limited. `fields` is a JSON object
 * body appended verbatim, left out whole when it does not fit (then
 * "truncated":true). A message longer than the line is cut, also marked.
 */
void lc_log_write(enum lc_log_level level, const char *component, const char *fields,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lc_log_vwrite(level, component, fields, fmt, ap);
    va_end(ap);
}

void lc_log_vwrite(enum lc_log_level level, const char *component, const char *fields,
                   const char *fmt, va_list ap)
{
    char msg[LC_LOG_MSG_MAX];
    struct log_line line;
    if ((int)level < LC_LOG_DEBUG || level > LC_LOG_ERROR)
        level = LC_LOG_ERROR;
    pthread_mutex_lock(&log_mu);
    struct log_slot *s = rate_limit(fmt, log_now());
    if (!s)
        goto out_unlock;
    char raw[LC_LOG_MSG_MAX];
    int n = vsnprintf(raw, sizeof(raw), fmt, ap);
    bool cut = n < 0 || (size_t)n >= sizeof(raw);
    size_t rawlen = n < 0 ? 0 : cut ? sizeof(raw) - 1 : (size_t)n;
    /* The last line of defence for secrets: whatever a caller formatted (a URL with its
     * userinfo, a server answer quoting a token), the credential never reaches the log,
     * which is often shipped to Loki itself. Callers still redact what they know. */
    size_t len = lc_redact_text(raw, rawlen, msg, sizeof(msg));
    cut |= len + 1 >= sizeof(msg); /* a mask longer than its secret can fill the line */
    if (cut)
        len = utf8_trim(msg, len);
    if (!component)
        component = "";
    s->level = level;
    copy_trimmed(s->component, sizeof(s->component), component, strlen(component));
    copy_trimmed(s->msg, sizeof(s->msg), msg, len);
    line_head(&line, level, s->component, msg, len);
    line.truncated |= cut;
    if (fields && *fields) {
        size_t mark = line.len;
        if (!line_puts(&line, ",") || !line_puts(&line, fields))
            line.len = mark;
    }
    line_finish(&line, 0);
out_unlock:
    pthread_mutex_unlock(&log_mu);
}

/* Reports every ended window now (timer, exit). */
void lc_log_flush(void)
{
    pthread_mutex_lock(&log_mu);
    sweep(log_now());
    pthread_mutex_unlock(&log_mu);
}
