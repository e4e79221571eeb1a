/* SPDX-License-Identifier: MIT */
/* docker_mux.c: Docker API log stream decoder: frame headers, timestamp prefixes, line joining. */
#include "parse/docker_mux.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "parse/timestamp.h"
#include "parse/utf8.h"

#define HDR_LEN     8
#define TS_MAX      40   /* longest "<RFC3339>" prefix we look for before the space */
#define SYSERR_MAX  1024 /* a daemon error message is short */
#define NSTREAMS    2    /* stdout, stderr */
#define MAX_LINE_OK ((size_t)1 << 30)

/* The line being assembled on one stream. */
struct mux_stream {
    char *buf;  /* max_line_bytes */
    size_t len; /* text bytes in buf */
    bool open;  /* something of the current line was consumed (prefix or text) */
    bool at_ts; /* the next bytes are a "<timestamp> " prefix */
    bool cont;  /* ... of a continuation frame: strip it, keep the first timestamp */
    bool has_ts;
    bool truncated;
    bool cr; /* TTY: a '\r' ended the last feed, held back until we see if '\n' follows */
    int64_t ts_ns;
    size_t tslen; /* bytes of a prefix split across feeds */
    char ts[TS_MAX];
};

struct lc_docker_mux {
    struct lc_docker_mux_opts o;
    struct lc_docker_mux_stats st;
    unsigned char hdr[HDR_LEN];
    size_t hdrlen;
    uint32_t left; /* payload bytes left in the current frame */
    bool in_frame;
    int cur; /* stream of the current frame: LC_STREAM_STDOUT, _STDERR, _SYSTEMERR */
    bool failed;
    struct mux_stream s[NSTREAMS];
    size_t errlen;
    bool errtrunc;
    char err[SYSERR_MAX];
};

static void stream_line_start(const struct lc_docker_mux *m, struct mux_stream *s)
{
    s->len = 0;
    s->open = false;
    s->at_ts = !m->o.no_timestamps;
    s->cont = false;
    s->has_ts = false;
    s->truncated = false;
    s->cr = false;
    s->ts_ns = 0;
    s->tslen = 0;
}

static void stream_append(const struct lc_docker_mux *m, struct mux_stream *s, const char *p,
                          size_t n)
{
    size_t room = m->o.max_line_bytes - s->len;
    if (s->truncated || n > room) {
        n = s->truncated ? 0 : room;
        s->truncated = true;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->open = true;
}

/*
 * Appends text not (yet) followed by '\n'. In TTY mode a trailing '\r' is held
 * back until we know whether it is the '\r' of "\r\n", so that where a feed
 * ends never changes what counts against the cap.
 */
static void stream_append_open(const struct lc_docker_mux *m, struct mux_stream *s, const char *p,
                               size_t n)
{
    if (n == 0)
        return;
    if (s->cr) {
        s->cr = false;
        stream_append(m, s, "\r", 1);
    }
    bool cr = m->o.tty && p[n - 1] == '\r';
    stream_append(m, s, p, n - cr);
    s->cr = cr;
}

static int emit(struct lc_docker_mux *m, int stream, const char *p, size_t n, int64_t ts,
                bool has_ts, bool truncated)
{
    if (n > m->o.max_line_bytes) {
        n = m->o.max_line_bytes;
        truncated = true;
    }
    if (truncated)
        n = lc_utf8_trim_cut(p, n);
    struct lc_docker_mux_line l = {
        .line = p,
        .len = n,
        .stream = stream,
        .ts_ns = ts,
        .has_ts = has_ts,
        .truncated = truncated,
    };
    m->st.lines++;
    m->st.truncated += truncated;
    return m->o.on_line(m->o.arg, &l);
}

/* The pending line of s (which lies in s->buf) is complete. */
static int stream_emit(struct lc_docker_mux *m, struct mux_stream *s, int stream)
{
    int r = emit(m, stream, s->buf, s->len, s->ts_ns, s->has_ts, s->truncated);
    stream_line_start(m, s);
    return r;
}

/* A prefix candidate p[0..n) (without the space) is decided: returns true if valid. */
static bool take_ts(struct lc_docker_mux *m, struct mux_stream *s, const char *p, size_t n)
{
    int64_t ts;
    s->at_ts = false;
    if (lc_ts_parse_rfc3339(p, n, &ts, NULL) < 0) {
        m->st.no_ts++;
        return false;
    }
    if (!s->cont) {
        s->ts_ns = ts;
        s->has_ts = true;
    }
    s->open = true;
    return true;
}

/*
 * Consumes the "<timestamp> " prefix at p. Returns how many bytes of p were
 * consumed; s->at_ts stays true only when all n were stashed waiting for more.
 */
static size_t stream_prefix(struct lc_docker_mux *m, struct mux_stream *s, const char *p, size_t n)
{
    size_t avail = TS_MAX - s->tslen;
    if (avail > n)
        avail = n;
    size_t i = 0;
    while (i < avail && p[i] != ' ' && p[i] != '\n')
        i++;
    bool space = i < avail && p[i] == ' ';
    bool decided = i < avail || s->tslen + i == TS_MAX;

    if (s->tslen == 0 && decided) {
        /* whole prefix in this feed: parse in place; if invalid it is text */
        if (space && take_ts(m, s, p, i))
            return i + 1;
        if (!space)
            take_ts(m, s, p, 0); /* counts it as missing */
        return 0;
    }
    memcpy(s->ts + s->tslen, p, i);
    s->tslen += i;
    if (!decided)
        return i; /* == n: wait for the rest */
    size_t tslen = s->tslen;
    s->tslen = 0;
    if (space && take_ts(m, s, s->ts, tslen))
        return i + 1;
    if (!space)
        take_ts(m, s, s->ts, 0);
    stream_append_open(m, s, s->ts, tslen); /* not a timestamp: it was text */
    return i;
}

/* Text (and prefixes) of one stream: the payload of frames, or the whole TTY stream. */
static int stream_feed(struct lc_docker_mux *m, int stream, const char *p, size_t n)
{
    struct mux_stream *s = &m->s[stream == LC_STREAM_STDERR ? 1 : 0];
    while (n > 0) {
        if (s->at_ts) {
            size_t used = stream_prefix(m, s, p, n);
            p += used;
            n -= used;
            continue;
        }
        if (s->cr) {
            s->cr = false;
            if (*p != '\n')
                stream_append(m, s, "\r", 1);
        }
        const char *nl = memchr(p, '\n', n);
        if (!nl) {
            stream_append_open(m, s, p, n);
            return 0;
        }
        size_t k = (size_t)(nl - p);
        int r;
        if (s->len == 0 && !s->truncated) {
            /* the whole text is in this chunk: hand it out in place */
            size_t len = m->o.tty && k > 0 && p[k - 1] == '\r' ? k - 1 : k;
            r = emit(m, stream, p, len, s->ts_ns, s->has_ts, false);
            stream_line_start(m, s);
        } else {
            /* drop the '\r' of "\r\n" before it can count against the cap */
            stream_append(m, s, p, m->o.tty && k > 0 && p[k - 1] == '\r' ? k - 1 : k);
            r = stream_emit(m, s, stream);
        }
        if (r < 0)
            return r;
        p += k + 1;
        n -= k + 1;
    }
    return 0;
}

/* A prefix still being collected when its frame or the stream ends is text. */
static void stream_settle_prefix(struct lc_docker_mux *m, struct mux_stream *s)
{
    if (s->tslen == 0)
        return;
    size_t tslen = s->tslen;
    s->tslen = 0;
    take_ts(m, s, s->ts, 0);
    stream_append_open(m, s, s->ts, tslen);
}

static void frame_start(struct lc_docker_mux *m)
{
    if (m->cur == LC_STREAM_SYSTEMERR) {
        m->errlen = 0;
        m->errtrunc = false;
        return;
    }
    struct mux_stream *s = &m->s[m->cur == LC_STREAM_STDERR ? 1 : 0];
    stream_settle_prefix(m, s);
    if (!m->o.no_timestamps) {
        /* every Docker message has its own prefix, continuation or not */
        s->at_ts = true;
        s->cont = s->open;
    }
}

static int frame_end(struct lc_docker_mux *m)
{
    m->in_frame = false;
    if (m->cur != LC_STREAM_SYSTEMERR)
        return 0;
    size_t n = m->errlen;
    if (!m->errtrunc && n > 0 && m->err[n - 1] == '\n')
        n--;
    return emit(m, LC_STREAM_SYSTEMERR, m->err, n, 0, false, m->errtrunc);
}

static int feed_frames(struct lc_docker_mux *m, const char *p, size_t n)
{
    while (n > 0) {
        if (!m->in_frame) {
            size_t k = HDR_LEN - m->hdrlen;
            if (k > n)
                k = n;
            memcpy(m->hdr + m->hdrlen, p, k);
            m->hdrlen += k;
            p += k;
            n -= k;
            if (m->hdrlen < HDR_LEN)
                return 0;
            m->hdrlen = 0;
            if (m->hdr[0] > LC_STREAM_SYSTEMERR || m->hdr[1] || m->hdr[2] || m->hdr[3]) {
                m->st.bad_headers++;
                m->failed = true;
                return -EPROTO;
            }
            m->st.frames++;
            m->cur = m->hdr[0] == LC_STREAM_STDIN ? LC_STREAM_STDOUT : m->hdr[0];
            m->left = (uint32_t)m->hdr[4] << 24 | (uint32_t)m->hdr[5] << 16 |
                      (uint32_t)m->hdr[6] << 8 | (uint32_t)m->hdr[7];
            m->in_frame = true;
            frame_start(m);
            if (m->left == 0) {
                int r = frame_end(m);
                if (r < 0)
                    return r;
                continue;
            }
        }
        size_t k = m->left < n ? m->left : n;
        int r = 0;
        if (m->cur == LC_STREAM_SYSTEMERR) {
            size_t room = SYSERR_MAX - m->errlen;
            size_t c = k < room ? k : room;
            memcpy(m->err + m->errlen, p, c);
            m->errlen += c;
            m->errtrunc |= c < k;
        } else {
            r = stream_feed(m, m->cur, p, k);
        }
        if (r < 0)
            return r;
        p += k;
        n -= k;
        m->left -= (uint32_t)k;
        if (m->left == 0) {
            r = frame_end(m);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

int lc_docker_mux_feed(struct lc_docker_mux *m, const char *data, size_t len)
{
    if (m->failed)
        return -EPROTO;
    m->st.bytes += len;
    if (m->o.tty)
        return stream_feed(m, LC_STREAM_STDOUT, data, len);
    return feed_frames(m, data, len);
}

int lc_docker_mux_finish(struct lc_docker_mux *m)
{
    static const int streams[NSTREAMS] = {LC_STREAM_STDOUT, LC_STREAM_STDERR};
    bool cut = m->hdrlen > 0 || m->in_frame;
    for (int i = 0; i < NSTREAMS; i++) {
        struct mux_stream *s = &m->s[i];
        stream_settle_prefix(m, s);
        if (!s->open)
            continue;
        int r = stream_emit(m, s, streams[i]);
        if (r < 0)
            return r;
    }
    m->hdrlen = 0;
    m->in_frame = false;
    m->left = 0;
    return cut || m->failed ? -EPROTO : 0;
}

void lc_docker_mux_reset(struct lc_docker_mux *m)
{
    m->hdrlen = 0;
    m->left = 0;
    m->in_frame = false;
    m->cur = LC_STREAM_STDOUT;
    m->failed = false;
    m->errlen = 0;
    m->errtrunc = false;
    for (int i = 0; i < NSTREAMS; i++)
        stream_line_start(m, &m->s[i]);
}

struct lc_docker_mux *lc_docker_mux_new(const struct lc_docker_mux_opts *opts)
{
    if (!opts || !opts->on_line || opts->max_line_bytes == 0 ||
        opts->max_line_bytes > MAX_LINE_OK) {
        errno = EINVAL;
        return NULL;
    }
    struct lc_docker_mux *m = calloc(1, sizeof(*m) + NSTREAMS * opts->max_line_bytes);
    if (!m)
        return NULL;
    m->o = *opts;
    char *bufs = (char *)(m + 1);
    for (int i = 0; i < NSTREAMS; i++)
        m->s[i].buf = bufs + (size_t)i * opts->max_line_bytes;
    lc_docker_mux_reset(m);
    return m;
}

void lc_docker_mux_free(struct lc_docker_mux *m)
{
    free(m);
}

void lc_docker_mux_get_stats(const struct lc_docker_mux *m, struct lc_docker_mux_stats *st)
{
    *st = m->st;
}
