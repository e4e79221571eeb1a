/* SPDX-License-Identifier: MIT */
/* syslog.c: the `syslog` input: a TCP (RFC 6587) and UDP receiver of RFC 5424 / 3164 messages. */
#include "core/agent.h"
#include "core/labels.h"
#include "core/log.h"
#include "core/source.h"
#include "parse/syslog.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

/*
 * Everything runs on the event loop: one listening TCP socket and one UDP
 * socket (either may be off), at most max_connections connections, each with
 * one buffer of max_message_bytes (+ the octet count). A message's label set
 * (the values of its `fields`: by default facility, severity, hostname,
 * app_name; ip_address is the sender's) is one source: at most max_streams
 * are held, the least recently used let go first. Sources here have no
 * position: a network input has nothing to resume from (see README,
 * "Syslog"). A source's one mark stays open (never sealed: no position to
 * commit, and a mark per read would cost the batches a reference each); it
 * only keeps the source alive while batches hold its records, and is sealed
 * (as failed: nothing to commit) when the stream is let go.
 *
 * Backpressure: when the pipeline pauses, every connection stops reading
 * (uv_read_stop), so TCP senders block in their kernel send buffers instead
 * of us dropping; UDP cannot be pushed back on, so datagrams received while
 * paused are dropped and counted (not reading them would have the kernel
 * drop them uncounted).
 */

#define SCFG(f)      offsetof(struct sl_conf, f)
#define UDP_BUF      (20 * 65536) /* recvmmsg: up to 20 datagrams of up to 64 KiB per call */
#define COUNT_DIGITS 16           /* room for an octet count and its SP before a message */
#define STREAM_MARKS 2            /* one open mark for ever: nothing to commit */
#define VALUE_MAX    255          /* a label value from a field is cut to this many bytes */
#define IP_MAX       46           /* INET6_ADDRSTRLEN */

/* What a `fields` entry takes its label's value from. */
enum sl_field { F_FACILITY, F_SEVERITY, F_HOSTNAME, F_APP_NAME, F_PROC_ID, F_MSG_ID, F_IP, F_N };
static const char *const field_names[F_N + 1] = {"facility", "severity", "hostname",   "app_name",
                                                 "proc_id",  "msg_id",   "ip_address", NULL};

struct sl_conf {
    char *listen_tcp;
    char *listen_udp;
    int64_t max_connections;
    int64_t max_message_bytes;
    int64_t idle_ms;
    int64_t max_streams;
    struct lc_kvlist fields;
};

struct sl_in;

/* A label set and the source whose records carry it. */
struct sl_stream {
    struct sl_stream *hnext;       /* hash chain */
    struct sl_stream *prev, *next; /* LRU list, most recent first */
    struct lc_source *src;
    uint64_t hash;
    bool malformed;
    size_t klen;
    char key[]; /* the fields' values, each as a length byte and its bytes */
};

struct sl_conn {
    uv_tcp_t h;
    struct sl_in *s;
    struct sl_conn *prev, *next;
    char *buf;
    size_t len;
    size_t skip;       /* an oversized octet-counted frame's bytes still to skip */
    bool discard_line; /* an oversized newline-framed message: skip up to its LF */
    bool reading;
    bool closing;
    int64_t last_ns; /* monotonic, last data */
    char ip[IP_MAX]; /* the peer's address */
};

struct sl_in {
    struct lc_input *in;
    const struct sl_conf *c;
    uv_tcp_t tcp;
    uv_udp_t udp;
    uv_timer_t idle;
    bool tcp_on, udp_on, paused, stopping, started;
    size_t closing;
    struct sl_conn *conns;
    size_t nconns;
    size_t cap; /* connection buffer size */
    char *udp_buf;
    long utc_offset;
    struct sl_stream **buckets;
    size_t nbuckets;
    struct sl_stream *lru_head, *lru_tail;
    size_t nstreams;
    uint64_t stream_seq;
    enum sl_field field[LC_LABELS_MAX]; /* of each c->fields entry */
    bool need_ip;                       /* a field is ip_address */
    char *key;                          /* a message's key: fields.n * (1 + VALUE_MAX) bytes */
    struct lc_metric_series *m_fmt[3];  /* rfc5424, rfc3164, malformed */
    struct lc_metric_series *m_cut;
    struct lc_metric_series *m_drop_paused;
    struct lc_metric_series *m_conns;
    struct lc_metric_series *m_closed[4]; /* peer, idle, error, rejected */
    struct lc_metric_series *m_streams;
    struct lc_metric_series *m_evicted;
};

enum { CLOSE_PEER, CLOSE_IDLE, CLOSE_ERROR, CLOSE_REJECTED };

/* Addresses ------------------------------------------------------------------ */

/* "HOST:PORT" (IPv4) or "[HOST]:PORT" (IPv6), numeric; "" is off. 0 or -EINVAL. */
static int parse_addr(const char *s, struct sockaddr_storage *ss)
{
    char host[64];
    const char *colon, *hs = s, *he;
    char *end = NULL;
    long port;

    if (s[0] == '[') {
        he = strchr(s, ']');
        if (!he || he[1] != ':')
            return -EINVAL;
        hs = s + 1;
        colon = he + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -EINVAL;
        he = colon;
    }
    if (he - hs <= 0 || (size_t)(he - hs) >= sizeof(host) || !colon[1])
        return -EINVAL;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        return -EINVAL;
    if (s[0] == '[')
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0 ? 0 : -EINVAL;
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 ? 0 : -EINVAL;
}

static const char *check_addr(const char *key, const char *v)
{
    struct sockaddr_storage ss;

    (void)key;
    if (!v[0] || parse_addr(v, &ss) == 0)
        return NULL;
    return "expected a numeric IPv4 HOST:PORT, [IPv6]:PORT (port 1-65535), or \"\" for off";
}

static int field_index(const char *name)
{
    for (int i = 0; i < F_N; i++)
        if (strcmp(field_names[i], name) == 0)
            return i;
    return -1;
}

static const char *check_field(const char *label, const char *field)
{
    char clean[128];

    if (!label || !field)
        return "expected a label name and a message field";
    lc_labels_sanitize_name(label, clean, sizeof(clean));
    if (strcmp(clean, label) != 0)
        return "invalid label name: use [a-zA-Z_][a-zA-Z0-9_]*";
    if (field_index(field) < 0)
        return "unknown field: use facility, severity, hostname, app_name, proc_id, msg_id or "
               "ip_address";
    return NULL;
}

static const struct lc_option syslog_options[] = {
    {LC_OPT_STR, "listen_tcp", "127.0.0.1:5514", SCFG(listen_tcp), .check = check_addr,
     .help = "TCP address (RFC 6587: octet counting or newline framing); \"\" turns TCP off. "
             "Loopback by default."},
    {LC_OPT_STR, "listen_udp", "127.0.0.1:5514", SCFG(listen_udp), .check = check_addr,
     .help = "UDP address, one message per datagram; \"\" turns UDP off."},
    {LC_OPT_INT, "max_connections", "256", SCFG(max_connections), 1, 65536,
     .help = "Most TCP connections at once; more are closed at once (counted)."},
    {LC_OPT_SIZE, "max_message_bytes", "64KiB", SCFG(max_message_bytes), 480, 16 << 20,
     .help = "Longer messages are cut to this size (counted); each connection holds one buffer "
             "of it."},
    {LC_OPT_DURATION, "idle_timeout", "5m", SCFG(idle_ms), 0, 86400000,
     .help = "A TCP connection silent this long is closed (counted; 0: never). Connections we "
             "stopped reading (backpressure) do not time out."},
    {LC_OPT_INT, "max_streams", "512", SCFG(max_streams), 1, 100000,
     .help = "Label sets (the values of `fields`) held at once; the least recently used is let "
             "go beyond it (counted)."},
    {LC_OPT_MAP, "fields",
     "{facility: facility, severity: severity, hostname: hostname, "
     "app_name: app_name}",
     SCFG(fields), .check = check_field,
     .help = "Labels from the message (label: field): facility, severity (keywords: local3, "
             "warning), hostname, app_name, proc_id, msg_id, and ip_address (the sender's "
             "address); an empty value is no label, values are cut to 255 bytes. `{}`: the "
             "input's `labels` only. Each distinct set of values is a stream (max_streams)."},
    LC_OPT_END,
};

/* Streams ------------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

static void lru_unlink(struct sl_in *s, struct sl_stream *st)
{
    if (s->lru_head == st)
        s->lru_head = st->next;
    else if (st->prev)
        st->prev->next = st->next;
    if (s->lru_tail == st)
        s->lru_tail = st->prev;
    else if (st->next)
        st->next->prev = st->prev;
    st->prev = st->next = NULL;
}

static void lru_front(struct sl_in *s, struct sl_stream *st)
{
    st->next = s->lru_head;
    if (s->lru_head)
        s->lru_head->prev = st;
    s->lru_head = st;
    if (!s->lru_tail)
        s->lru_tail = st;
}

static void stream_free(struct sl_in *s, struct sl_stream *st)
{
    struct sl_stream **pp = &s->buckets[st->hash & (s->nbuckets - 1)];

    while (*pp && *pp != st)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = st->hnext;
    lru_unlink(s, st);
    lc_source_release(st->src); /* freed once its batches are done */
    free(st);
    s->nstreams--;
    lc_gauge_set(s->m_streams, (int64_t)s->nstreams);
}

static struct lc_source *new_source(struct sl_in *s, struct lc_labels *labels)
{
    static const struct lc_pos none = {0};
    char key[160];

    snprintf(key, sizeof(key), "syslog:%s:%llu", s->in->conf->name,
             (unsigned long long)++s->stream_seq);
    return lc_source_new(s->in, key, "", labels, &none, STREAM_MARKS);
}

/* The labels of a stream: the input's, then each field's value (key: its values, see sl_stream). */
static int stream_labels(struct sl_in *s, bool malformed, const char *key,
                         struct lc_labels **labels)
{
    const struct lc_kvlist *stat = &s->in->conf->labels, *f = &s->c->fields;
    struct lc_kv kv[LC_LABELS_MAX + 1];
    char vals[LC_LABELS_MAX][VALUE_MAX + 1];
    size_t n = 0;

    for (size_t i = 0; i < stat->n && n < LC_LABELS_MAX; i++)
        kv[n++] = stat->v[i];
    if (malformed) {
        kv[n].key = "malformed";
        kv[n++].value = "true";
    }
    for (size_t i = 0; !malformed && i < f->n; i++) {
        size_t len = (unsigned char)*key++;
        if (len && n < LC_LABELS_MAX) {
            memcpy(vals[i], key, len);
            vals[i][len] = '\0';
            kv[n].key = f->v[i].key;
            kv[n++].value = vals[i];
        }
        key += len;
    }
    return lc_labels_intern(kv, n, labels);
}

static struct sl_stream *stream_new(struct sl_in *s, bool malformed, const char *key, size_t klen,
                                    uint64_t hash)
{
    struct lc_labels *labels = NULL;
    struct sl_stream *st;

    while (s->nstreams >= (size_t)s->c->max_streams && s->lru_tail) {
        stream_free(s, s->lru_tail);
        lc_counter_inc(s->m_evicted);
    }
    st = calloc(1, sizeof(*st) + klen + 1);
    if (!st || stream_labels(s, malformed, key, &labels) != 0) {
        free(st);
        return NULL;
    }
    st->src = new_source(s, labels);
    lc_labels_release(labels);
    if (!st->src) {
        free(st);
        return NULL;
    }
    st->hash = hash;
    st->malformed = malformed;
    st->klen = klen;
    memcpy(st->key, key, klen);
    st->hnext = s->buckets[hash & (s->nbuckets - 1)];
    s->buckets[hash & (s->nbuckets - 1)] = st;
    lru_front(s, st);
    s->nstreams++;
    lc_gauge_set(s->m_streams, (int64_t)s->nstreams);
    return st;
}

/* Appends one value (cut to VALUE_MAX bytes) to a key at *k. */
static void key_put(char **k, const char *p, size_t len)
{
    if (len > VALUE_MAX)
        len = VALUE_MAX;
    *(*k)++ = (char)(unsigned char)len;
    if (len)
        memcpy(*k, p, len);
    *k += len;
}

/* The stream of a message (m NULL: malformed) from ip; made when new. */
static struct sl_stream *stream_get(struct sl_in *s, const struct lc_syslog_msg *m, const char *ip)
{
    char *k = s->key;
    uint64_t h;
    size_t klen;
    struct sl_stream *st;

    for (size_t i = 0; m && i < s->c->fields.n; i++) {
        const struct lc_syslog_field *f = NULL;
        const char *v = NULL;
        switch (s->field[i]) {
        case F_FACILITY:
            v = lc_syslog_facility_name(m->facility);
            break;
        case F_SEVERITY:
            v = lc_syslog_severity_name(m->severity);
            break;
        case F_HOSTNAME:
            f = &m->hostname;
            break;
        case F_APP_NAME:
            f = &m->app_name;
            break;
        case F_PROC_ID:
            f = &m->procid;
            break;
        case F_MSG_ID:
            f = &m->msgid;
            break;
        case F_IP:
        case F_N:
            v = ip;
            break;
        }
        if (f) /* an absent field has no pointer: never hand NULL to memcpy, even for 0 bytes */
            key_put(&k, f->len ? f->p : "", f->len);
        else
            key_put(&k, v ? v : "", v ? strlen(v) : 0);
    }
    klen = (size_t)(k - s->key);
    h = fnv(14695981039346656037ULL ^ (m ? 0 : 1), s->key, klen);
    for (st = s->buckets[h & (s->nbuckets - 1)]; st; st = st->hnext) {
        if (st->hash == h && st->malformed == !m && st->klen == klen &&
            memcmp(st->key, s->key, klen) == 0)
            break;
    }
    if (!st)
        return stream_new(s, !m, s->key, klen, h);
    if (s->lru_head != st) {
        lru_unlink(s, st);
        lru_front(s, st);
    }
    return st;
}

/* Messages ------------------------------------------------------------------ */

static void handle(struct sl_in *s, const char *p, size_t n, bool cut, const char *ip)
{
    struct lc_syslog_msg m;
    struct sl_stream *st;
    int64_t now = lc_now_ns(), ts = now;
    const char *line = p;
    size_t len = n;

    if (cut)
        lc_counter_inc(s->m_cut);
    if (lc_syslog_parse(p, n, now, s->utc_offset, &m) == 0) {
        lc_counter_inc(s->m_fmt[m.version ? 0 : 1]);
        st = stream_get(s, &m, ip);
        if (m.ts_ns)
            ts = m.ts_ns;
        if (m.sd.len) { /* the structured data and the message, as sent */
            line = m.sd.p;
            len = (size_t)(p + n - line);
        } else {
            line = m.msg.p;
            len = m.msg.len;
        }
    } else {
        lc_counter_inc(s->m_fmt[2]);
        lc_logf(LC_LOG_WARN, s->in->conf->name, NULL,
                "a message that is neither RFC 5424 nor RFC 3164 (no <PRI>): passed on as a raw "
                "line (labelled malformed=\"true\")");
        st = stream_get(s, NULL, ip);
    }
    if (!st) {
        lc_log(LC_LOG_ERROR, s->in->conf->name, "out of memory: a message dropped");
        return;
    }
    if (!lc_source_writable(st->src)) {
        /* its marks are all in flight: a fresh source carries on, the old one lives until acked */
        struct lc_source *fresh = new_source(s, lc_source_labels(st->src));
        if (!fresh) {
            lc_log(LC_LOG_ERROR, s->in->conf->name, "out of memory: a message dropped");
            return;
        }
        lc_source_release(st->src);
        st->src = fresh;
    }
    if (lc_pipeline_emit(s->in, st->src, ts, line, len) != 0) {
        /* counted by the pipeline (input_emit_failures_total): nothing to read it again from */
        lc_log(LC_LOG_ERROR, s->in->conf->name, "cannot queue a message: dropped");
        return;
    }
    lc_counter_inc(s->in->m_lines);
}

/* TCP ------------------------------------------------------------------------ */

/* The numeric address of a peer, into buf ("" when unknown). */
static const char *ip_name(const struct sockaddr *sa, char *buf, size_t len)
{
    buf[0] = '\0';
    if (sa->sa_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)sa, buf, len);
    else if (sa->sa_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)sa, buf, len);
    return buf;
}

static void on_conn_closed(uv_handle_t *h);
static void closed_one(struct sl_in *s);

static void conn_close(struct sl_conn *c, int why)
{
    struct sl_in *s = c->s;

    if (c->closing)
        return;
    c->closing = true;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    lc_gauge_set(s->m_conns, (int64_t)s->nconns);
    lc_counter_inc(s->m_closed[why]);
    s->closing++;
    uv_close((uv_handle_t *)&c->h, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct sl_conn *c = h->data;

    (void)suggested;
    buf->base = c->buf + c->len;
    buf->len = c->s->cap - c->len;
}

/* Takes every complete frame out of c->buf. */
static void frames(struct sl_conn *c)
{
    struct sl_in *s = c->s;
    size_t max = (size_t)s->c->max_message_bytes, off = 0;

    while (off < c->len) {
        const char *p = c->buf + off;
        size_t n = c->len - off, start, mlen, used;

        if (c->skip) {
            size_t take = c->skip < n ? c->skip : n;
            c->skip -= take;
            off += take;
            continue;
        }
        if (c->discard_line) {
            const char *nl = memchr(p, '\n', n);
            off = nl ? (size_t)(nl - c->buf) + 1 : c->len;
            c->discard_line = !nl;
            continue;
        }
        enum lc_syslog_frame r = lc_syslog_frame(p, n, max, &start, &mlen, &used);
        if (r == LC_SYSLOG_FRAME_MORE)
            break;
        handle(s, p + start, mlen, r == LC_SYSLOG_FRAME_BIG, c->ip);
        if (r == LC_SYSLOG_FRAME_OK) {
            off += used;
        } else if (used) { /* an octet-counted frame over max: skip its rest */
            size_t have = n < used ? n : used;
            c->skip = used - have;
            off += have;
        } else { /* a line over max: skip up to its LF */
            off += start + mlen;
            c->discard_line = true;
        }
    }
    if (off > 0) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct sl_conn *c = h->data;
    struct sl_in *s = c->s;

    (void)buf;
    if (nread == 0)
        return;
    if (nread < 0) {
        /* a last message without its LF ends with the connection */
        if (nread == UV_EOF && c->len > 0 && !c->skip && !c->discard_line) {
            size_t n = c->len;
            if (c->buf[n - 1] == '\r')
                n--;
            handle(s, c->buf, n, false, c->ip);
        }
        conn_close(c, nread == UV_EOF ? CLOSE_PEER : CLOSE_ERROR);
        return;
    }
    c->len += (size_t)nread;
    c->last_ns = lc_mono_ns();
    lc_counter_add(s->in->m_bytes, (uint64_t)nread);
    frames(c);
}

static void conn_read(struct sl_conn *c, bool on)
{
    if (c->closing || c->reading == on)
        return;
    if (on) {
        if (uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read) == 0)
            c->reading = true;
    } else {
        uv_read_stop((uv_stream_t *)&c->h);
        c->reading = false;
    }
    c->last_ns = lc_mono_ns(); /* time spent paused is not idleness */
}

static void on_rejected_closed(uv_handle_t *h)
{
    struct sl_in *s = h->data;

    free(h);
    closed_one(s);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct sl_in *s = server->data;
    struct sl_conn *c;

    if (status < 0 || s->stopping)
        return;
    if (s->nconns >= (size_t)s->c->max_connections) {
        uv_tcp_t *t = malloc(sizeof(*t));
        if (!t)
            return;
        uv_tcp_init(s->in->agent->loop, t);
        t->data = s;
        uv_accept(server, (uv_stream_t *)t);
        s->closing++;
        uv_close((uv_handle_t *)t, on_rejected_closed);
        lc_counter_inc(s->m_closed[CLOSE_REJECTED]);
        lc_logf(LC_LOG_WARN, s->in->conf->name, NULL,
                "max_connections (%lld) reached: a new connection closed",
                (long long)s->c->max_connections);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c)
        c->buf = malloc(s->cap);
    if (!c || !c->buf) {
        free(c);
        return;
    }
    c->s = s;
    uv_tcp_init(s->in->agent->loop, &c->h);
    c->h.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->h) != 0) {
        s->closing++;
        c->closing = true;
        uv_close((uv_handle_t *)&c->h, on_conn_closed);
        return;
    }
    if (s->need_ip) {
        struct sockaddr_storage ss;
        int sl = sizeof(ss);
        if (uv_tcp_getpeername(&c->h, (struct sockaddr *)&ss, &sl) == 0)
            ip_name((const struct sockaddr *)&ss, c->ip, sizeof(c->ip));
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    lc_gauge_set(s->m_conns, (int64_t)s->nconns);
    conn_read(c, !s->paused && !lc_pipeline_paused(s->in->pipeline));
}

static void on_idle_sweep(uv_timer_t *t)
{
    struct sl_in *s = t->data;
    int64_t now = lc_mono_ns();

    for (struct sl_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->reading && now - c->last_ns >= s->c->idle_ms * LC_NS_PER_MSEC) {
            lc_logf(LC_LOG_INFO, s->in->conf->name, NULL,
                    "a connection idle for idle_timeout closed");
            conn_close(c, CLOSE_IDLE);
        }
    }
}

/* UDP ------------------------------------------------------------------------ */

static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct sl_in *s = h->data;

    (void)suggested;
    buf->base = s->udp_buf;
    buf->len = UDP_BUF;
}

static void on_udp(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                   unsigned flags)
{
    struct sl_in *s = h->data;
    size_t n, max = (size_t)s->c->max_message_bytes;
    bool cut = (flags & UV_UDP_PARTIAL) != 0;
    char ip[IP_MAX];

    if (nread <= 0 || !addr)
        return; /* nothing, or (UV_UDP_MMSG_FREE) the end of a batch: the buffer is ours for good */
    lc_counter_add(s->in->m_bytes, (uint64_t)nread);
    if (s->paused || lc_pipeline_paused(s->in->pipeline)) {
        lc_counter_inc(s->m_drop_paused);
        lc_logf(LC_LOG_WARN, s->in->conf->name, NULL,
                "outputs are full: UDP messages dropped (TCP senders are made to wait instead)");
        return;
    }
    n = (size_t)nread;
    while (n > 0 && (buf->base[n - 1] == '\n' || buf->base[n - 1] == '\r' || !buf->base[n - 1]))
        n--;
    if (n > max) {
        n = max;
        cut = true;
    }
    handle(s, buf->base, n, cut, s->need_ip ? ip_name(addr, ip, sizeof(ip)) : "");
}

/* Plugin ---------------------------------------------------------------------- */

static const char *const fmt_names[] = {"rfc5424", "rfc3164", "malformed", NULL}; /* m_fmt */
static const char *const closed_names[] = {"peer", "idle", "error", "rejected", NULL};
static const char *const paused_name[] = {"paused", NULL};

/* The input's series, labelled input=<name>. */
static const struct lc_metric_row syslog_series[] = {
    {LC_COUNTER, "log_capturer_syslog_messages_total",
     "Syslog messages received, by format (rfc5424, rfc3164; malformed: passed on as raw lines).",
     offsetof(struct sl_in, m_fmt), "format", fmt_names},
    {LC_COUNTER, "log_capturer_input_truncated_lines_total", "Lines cut at max_line_bytes.",
     offsetof(struct sl_in, m_cut)},
    {LC_COUNTER, "log_capturer_syslog_dropped_total",
     "Syslog messages dropped, by reason (paused: UDP while the outputs are full).",
     offsetof(struct sl_in, m_drop_paused), "reason", paused_name},
    {LC_GAUGE, "log_capturer_syslog_connections", "Open TCP connections.",
     offsetof(struct sl_in, m_conns)},
    {LC_COUNTER, "log_capturer_syslog_connections_closed_total",
     "TCP connections closed, by reason (peer, idle, error; rejected: over max_connections).",
     offsetof(struct sl_in, m_closed), "reason", closed_names},
    {LC_GAUGE, "log_capturer_syslog_streams", "Label sets held (at most max_streams).",
     offsetof(struct sl_in, m_streams)},
    {LC_COUNTER, "log_capturer_syslog_streams_evicted_total",
     "Label sets let go at max_streams (the least recently used).",
     offsetof(struct sl_in, m_evicted)},
};
LC_METRIC_VALUES_FIT(struct sl_in, m_fmt, fmt_names);
LC_METRIC_VALUES_FIT(struct sl_in, m_closed, closed_names);

static int sl_init(struct lc_input *in)
{
    const struct sl_conf *c = in->conf->conf;
    const char *name = in->conf->name;
    struct sl_in *s = calloc(1, sizeof(*s));
    struct tm tm;
    time_t now = time(NULL);

    if (!s)
        return -ENOMEM;
    in->ctx = s;
    s->in = in;
    s->c = c;
    s->cap = (size_t)c->max_message_bytes + COUNT_DIGITS;
    s->nbuckets = 16;
    while (s->nbuckets < (size_t)c->max_streams * 2)
        s->nbuckets *= 2;
    if (in->conf->labels.n + c->fields.n > LC_LABELS_MAX) {
        lc_log(LC_LOG_ERROR, name, "labels and fields make more than 15 labels (Loki's limit)");
        return -EINVAL;
    }
    for (size_t i = 0; i < c->fields.n; i++) {
        int fi = field_index(c->fields.v[i].value);
        s->field[i] = fi < 0 ? F_IP : (enum sl_field)fi; /* checked when parsed */
        s->need_ip |= s->field[i] == F_IP;
    }
    s->buckets = calloc(s->nbuckets, sizeof(struct sl_stream *));
    s->udp_buf = malloc(UDP_BUF);
    s->key = malloc(c->fields.n * (1 + VALUE_MAX) + 1);
    if (!s->buckets || !s->udp_buf || !s->key)
        return -ENOMEM;
    if (localtime_r(&now, &tm))
        s->utc_offset = tm.tm_gmtoff; /* RFC 3164 times are the sender's local time: ours */
    lc_metric_register_rows(s, syslog_series, LC_METRIC_ROWS(syslog_series), "input", name);
    return 0;
}

static void closed_one(struct sl_in *s)
{
    if (--s->closing == 0 && s->stopping)
        lc_input_stopped(s->in);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct sl_conn *c = h->data;
    struct sl_in *s = c->s;

    free(c->buf);
    free(c);
    closed_one(s);
}

static void on_own_closed(uv_handle_t *h)
{
    closed_one(h->data);
}

static void close_own(struct sl_in *s, uv_handle_t *h)
{
    s->closing++;
    uv_close(h, on_own_closed);
}

/* Closes the listeners and the timer (a failed start: the loop runs their callbacks before free).
 */
static void close_listeners(struct sl_in *s)
{
    if (s->tcp_on)
        close_own(s, (uv_handle_t *)&s->tcp);
    if (s->udp_on)
        close_own(s, (uv_handle_t *)&s->udp);
    close_own(s, (uv_handle_t *)&s->idle);
    s->tcp_on = s->udp_on = false;
}

/* Binds and starts one listener (tcp or udp) on addr; "" or NULL: off. 0 or a libuv error. */
static int listen_on(struct sl_in *s, const char *addr, bool tcp)
{
    uv_loop_t *loop = s->in->agent->loop;
    struct sockaddr_storage ss;
    int rc;

    if (!addr || !addr[0])
        return 0;
    if (parse_addr(addr, &ss) != 0)
        return UV_EINVAL;
    if (tcp) {
        uv_tcp_init(loop, &s->tcp);
        s->tcp.data = s;
        s->tcp_on = true;
        rc = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&ss, 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&s->tcp, 128, on_connection);
    } else {
        uv_udp_init_ex(loop, &s->udp, UV_UDP_RECVMMSG); /* one syscall for many datagrams */
        s->udp.data = s;
        s->udp_on = true;
        rc = uv_udp_bind(&s->udp, (const struct sockaddr *)&ss, 0);
        if (rc == 0)
            rc = uv_udp_recv_start(&s->udp, on_udp_alloc, on_udp);
    }
    lc_logf(rc ? LC_LOG_ERROR : LC_LOG_INFO, s->in->conf->name, NULL, "%s on %s %s%s%s",
            rc ? "cannot listen" : "listening", tcp ? "tcp" : "udp", addr, rc ? ": " : "",
            rc ? uv_strerror(rc) : "");
    return rc;
}

static int sl_start(struct lc_input *in)
{
    struct sl_in *s = in->ctx;
    int rc;

    uv_timer_init(in->agent->loop, &s->idle);
    s->idle.data = s;
    s->started = true;
    if (s->c->idle_ms > 0) {
        uint64_t every = (uint64_t)(s->c->idle_ms / 4 > 1000 ? 1000 : s->c->idle_ms / 4 + 1);
        uv_timer_start(&s->idle, on_idle_sweep, every, every);
    }
    rc = listen_on(s, s->c->listen_tcp, true);
    if (rc == 0)
        rc = listen_on(s, s->c->listen_udp, false);
    if (rc)
        close_listeners(s); /* their close callbacks run before free */
    return rc;
}

static void sl_pause(struct lc_input *in)
{
    struct sl_in *s = in->ctx;

    s->paused = true;
    for (struct sl_conn *c = s->conns; c; c = c->next)
        conn_read(c, false);
}

static void sl_resume(struct lc_input *in)
{
    struct sl_in *s = in->ctx;

    s->paused = false;
    for (struct sl_conn *c = s->conns; c; c = c->next)
        conn_read(c, true);
}

static bool sl_caught_up(struct lc_input *in)
{
    (void)in;
    return true; /* a network input has no end to reach */
}

static void sl_stop(struct lc_input *in)
{
    struct sl_in *s = in->ctx;

    s->stopping = true;
    s->closing++; /* held until every close below is queued */
    while (s->conns)
        conn_close(s->conns, CLOSE_PEER);
    if (s->started)
        close_listeners(s);
    while (s->lru_head)
        stream_free(s, s->lru_head);
    if (--s->closing == 0)
        lc_input_stopped(in);
}

static void sl_free(struct lc_input *in)
{
    struct sl_in *s = in->ctx;

    if (!s)
        return;
    while (s->lru_head) /* only after a failed start */
        stream_free(s, s->lru_head);
    free(s->buckets);
    free(s->udp_buf);
    free(s->key);
    free(s);
    in->ctx = NULL;
}

const struct lc_input_plugin lc_input_syslog = {
    .name = "syslog",
    .description = "syslog receiver: TCP (RFC 6587) and UDP, RFC 5424 and RFC 3164",
    .options = syslog_options,
    .conf_size = sizeof(struct sl_conf),
    .init = sl_init,
    .start = sl_start,
    .pause = sl_pause,
    .resume = sl_resume,
    .caught_up = sl_caught_up,
    .stop = sl_stop,
    .free = sl_free,
};
