/* SPDX-License-Identifier: MIT */
/* anomaly.c: per-stream EWMA baselines of log rates and error share; spikes, silences, bursts. */
#include "core/anomaly.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/http.h"
#include "core/labels.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/plugin.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LC_ANOMALY_SCAN_MAX     1024 /* only a line's first KiB is searched for the error pattern */
#define NONE                    0u   /* the "null" index: slots are numbered from 1 */
#define LC_ANOMALY_STEADY_TICKS 10   /* a stream seen fewer intervals than this is not steady */

static const char *const kind_names[LC_ANOMALY_N] = {"spike", "silence", "errors"};

struct an_stream {
    struct lc_labels *labels; /* a reference held; NULL: the slot is free */
    const struct lc_input *in;
    uint32_t next;               /* hash chain */
    uint32_t lru_prev, lru_next; /* most recently active first */
    uint32_t lines, errors;      /* since the last tick */
    uint64_t bytes;
    uint32_t ticks;
    uint16_t spike_run;
    bool steady;
    int64_t first_ms, last_active_ms;
    double base_rate, base_brate, base_share, gap_s, activity;
    struct lc_metric_series *active[LC_ANOMALY_N];
};

struct lc_anomaly {
    const struct lc_anomaly_conf *conf;
    struct an_stream *s; /* max_streams slots; s[i - 1] is slot i */
    uint32_t *buckets;   /* nbuckets heads of hash chains */
    uint32_t nbuckets;   /* a power of two */
    uint32_t max, used;
    uint32_t free_head; /* free slots chained through next */
    uint32_t lru_head, lru_tail;
    int64_t last_tick_ms;
    int nactive;
    pcre2_code *re;
    pcre2_match_data *md;
    struct lc_metric_family *f_active, *f_total;
    struct lc_metric_series *m_streams, *m_evicted, *m_active_n;
};

static struct an_stream *at(const struct lc_anomaly *a, uint32_t i)
{
    return &a->s[i - 1];
}

static uint32_t bucket_of(const struct lc_anomaly *a, const struct lc_input *in,
                          const struct lc_labels *l)
{
    uint64_t h = l->hash ^ ((uintptr_t)in >> 4) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h ^ (h >> 29)) & (a->nbuckets - 1);
}

/* ---- LRU ---- */

static void lru_unlink(struct lc_anomaly *a, uint32_t i)
{
    struct an_stream *s = at(a, i);
    if (s->lru_prev)
        at(a, s->lru_prev)->lru_next = s->lru_next;
    else
        a->lru_head = s->lru_next;
    if (s->lru_next)
        at(a, s->lru_next)->lru_prev = s->lru_prev;
    else
        a->lru_tail = s->lru_prev;
    s->lru_prev = s->lru_next = NONE;
}

static void lru_push_front(struct lc_anomaly *a, uint32_t i)
{
    struct an_stream *s = at(a, i);
    s->lru_prev = NONE;
    s->lru_next = a->lru_head;
    if (a->lru_head)
        at(a, a->lru_head)->lru_prev = i;
    a->lru_head = i;
    if (!a->lru_tail)
        a->lru_tail = i;
}

/* ---- active anomalies ---- */

static void set_active(struct lc_anomaly *a, struct an_stream *s, enum lc_anomaly_kind k, bool on,
                       double value, double baseline)
{
    if (on == (s->active[k] != NULL))
        return;
    const char *input = s->in->conf->name;
    char hash[16];
    snprintf(hash, sizeof(hash), "%08x", s->labels->hash);
    if (!on) {
        lc_metric_series_remove(s->active[k]);
        s->active[k] = NULL;
        a->nactive--;
        lc_gauge_set(a->m_active_n, a->nactive);
        lc_logf(LC_LOG_INFO, "anomaly", NULL, "%s ended on input %s stream %s", kind_names[k],
                input, hash);
        return;
    }
    s->active[k] = lc_metric_series(a->f_active, kind_names[k], input, hash);
    lc_gauge_set(s->active[k], 1);
    if (!s->active[k])
        return; /* no memory for the series: tried again next tick */
    a->nactive++;
    lc_gauge_set(a->m_active_n, a->nactive);
    lc_counter_inc(lc_metric_series(a->f_total, kind_names[k], input));

    struct lc_buf f;
    lc_buf_init(&f, 4096);
    int rc = lc_buf_printf(&f, "\"kind\":\"%s\",\"input\":\"", kind_names[k]);
    if (rc == 0)
        rc = lc_buf_json_str(&f, input, strlen(input));
    if (rc == 0)
        rc = lc_buf_printf(&f, "\",\"stream\":\"%s\",\"value\":%.3f,\"baseline\":%.3f,\"labels\":",
                           hash, value, baseline);
    if (rc == 0)
        rc = lc_buf_append(&f, s->labels->json, s->labels->json_len);
    if (rc == 0)
        rc = lc_buf_putc(&f, '\0');
    static const char *const what[LC_ANOMALY_N] = {
        "lines/s %.1f over a baseline of %.1f",
        "silent for %.0f s where it usually logs every %.1f s",
        "error share %.2f over a baseline of %.2f",
    };
    char msg[160];
    snprintf(msg, sizeof(msg), what[k], value, baseline);
    /* one format per kind: the log's rate limit applies to each kind */
    lc_logf(LC_LOG_WARN, "anomaly", rc == 0 ? f.data : NULL, "%s on input %s stream %s: %s",
            kind_names[k], input, hash, msg);
    lc_buf_free(&f);
}

/* ---- the table ---- */

static void stream_drop(struct lc_anomaly *a, uint32_t i)
{
    struct an_stream *s = at(a, i);
    for (int k = 0; k < LC_ANOMALY_N; k++)
        if (s->active[k]) {
            lc_metric_series_remove(s->active[k]);
            a->nactive--;
        }
    lc_gauge_set(a->m_active_n, a->nactive);
    uint32_t *pp = &a->buckets[bucket_of(a, s->in, s->labels)];
    while (*pp != i)
        pp = &at(a, *pp)->next;
    *pp = s->next;
    lru_unlink(a, i);
    lc_labels_release(s->labels);
    memset(s, 0, sizeof(*s));
    s->next = a->free_head;
    a->free_head = i;
    a->used--;
    lc_gauge_set(a->m_streams, a->used);
}

static struct an_stream *stream_get(struct lc_anomaly *a, const struct lc_input *in,
                                    struct lc_labels *l)
{
    uint32_t b = bucket_of(a, in, l);
    for (uint32_t i = a->buckets[b]; i; i = at(a, i)->next) {
        struct an_stream *s = at(a, i);
        if (s->labels == l && s->in == in)
            return s;
    }
    if (!a->free_head) {
        if (!a->lru_tail)
            return NULL; /* max_streams 0 */
        stream_drop(a, a->lru_tail);
        lc_counter_inc(a->m_evicted);
        lc_log(LC_LOG_INFO, "anomaly",
               "anomaly.max_streams reached: the least recently active stream is forgotten");
        b = bucket_of(a, in, l);
    }
    uint32_t i = a->free_head;
    struct an_stream *s = at(a, i);
    a->free_head = s->next;
    s->labels = lc_labels_ref(l);
    s->in = in;
    s->first_ms = s->last_active_ms = a->last_tick_ms;
    s->next = a->buckets[b];
    a->buckets[b] = i;
    lru_push_front(a, i);
    a->used++;
    lc_gauge_set(a->m_streams, a->used);
    return s;
}

void lc_anomaly_count(struct lc_anomaly *a, const struct lc_input *in, struct lc_labels *labels,
                      const char *line, size_t len)
{
    struct an_stream *s = labels ? stream_get(a, in, labels) : NULL;
    if (!s)
        return; /* no label set (none reach Loki either), or max_streams 0 */
    s->lines++;
    s->bytes += len;
    if (a->re && pcre2_jit_match(a->re, (PCRE2_SPTR)line,
                                 len < LC_ANOMALY_SCAN_MAX ? len : LC_ANOMALY_SCAN_MAX, 0, 0, a->md,
                                 NULL) >= 0)
        s->errors++;
}

/* ---- the model ---- */

static double ewma(double base, double v, double alpha)
{
    return base + alpha * (v - base);
}

static void judge(struct lc_anomaly *a, struct an_stream *s, int64_t now, double dt)
{
    const struct lc_anomaly_conf *c = a->conf;
    double rate = s->lines / dt, brate = (double)s->bytes / dt;
    double share = s->lines ? (double)s->errors / s->lines : 0;
    bool warm = now - s->first_ms >= c->warmup_ms;

    s->ticks++;
    double alpha = 1.0 / s->ticks > LC_ANOMALY_ALPHA ? 1.0 / s->ticks : LC_ANOMALY_ALPHA;
    s->activity = ewma(s->activity, s->lines > 0, alpha);

    /* spike: a rate far above its baseline for spike_intervals ticks */
    bool over = warm && s->lines >= (uint64_t)c->spike_min_lines &&
                (rate > (double)c->spike_factor * s->base_rate ||
                 brate > (double)c->spike_factor * s->base_brate);
    s->spike_run = over ? (uint16_t)(s->spike_run + (s->spike_run < UINT16_MAX)) : 0;
    set_active(a, s, LC_ANOMALY_SPIKE, s->spike_run >= c->spike_intervals, rate, s->base_rate);

    /* silence: a steady stream quiet for far longer than its usual gap */
    double quiet_s = (double)(now - s->last_active_ms) / 1000.0;
    double limit = (double)c->silence_factor * s->gap_s;
    if (limit < 2 * dt)
        limit = 2 * dt;
    bool silent = warm && s->steady && s->lines == 0 && quiet_s > limit;
    set_active(a, s, LC_ANOMALY_SILENCE, silent, quiet_s, s->gap_s);

    /* error burst: the share of matching lines far above its baseline */
    double share_limit = (double)c->error_factor * s->base_share;
    bool burst = warm && s->errors >= (uint64_t)c->error_min_lines &&
                 share > (share_limit > 0.1 ? share_limit : 0.1);
    set_active(a, s, LC_ANOMALY_ERRORS, burst, share, s->base_share);

    /* learn, but not (or barely) from what is anomalous */
    if (s->lines > 0) {
        if (!over)
            s->gap_s = ewma(s->gap_s, dt / s->lines, alpha);
        s->last_active_ms = now;
        s->steady = s->activity >= 0.9 && s->ticks >= LC_ANOMALY_STEADY_TICKS;
        if (!burst)
            s->base_share = ewma(s->base_share, share, alpha);
    }
    if (!silent) {
        double al = over ? alpha / 10 : alpha;
        s->base_rate = ewma(s->base_rate, rate, al);
        s->base_brate = ewma(s->base_brate, brate, al);
    }
    s->lines = s->errors = 0;
    s->bytes = 0;
}

int lc_anomaly_tick(struct lc_anomaly *a, int64_t now_ms)
{
    double dt = (double)(now_ms - a->last_tick_ms) / 1000.0;
    if (dt <= 0)
        return a->nactive;
    a->last_tick_ms = now_ms;
    /* walk least recently active first; the active ones move to the front */
    uint32_t i = a->lru_tail;
    uint32_t n = a->used;
    while (i && n--) {
        struct an_stream *s = at(a, i);
        uint32_t prev = s->lru_prev;
        bool had_lines = s->lines > 0;
        judge(a, s, now_ms, dt);
        if (now_ms - s->last_active_ms > a->conf->expire_ms) {
            stream_drop(a, i);
        } else if (had_lines && a->lru_head != i) {
            lru_unlink(a, i);
            lru_push_front(a, i);
        }
        i = prev;
    }
    return a->nactive;
}

/* ---- life cycle and queries ---- */

int lc_anomaly_new(struct lc_anomaly **out, const struct lc_anomaly_conf *conf, int64_t now_ms,
                   char *err, size_t errlen)
{
    static const char *const l_active[] = {"kind", "input", "stream", NULL};
    static const char *const l_total[] = {"kind", "input", NULL};
    struct lc_anomaly *a = calloc(1, sizeof(*a));
    int rc = -ENOMEM;

    *out = NULL;
    if (!a)
        goto out_err;
    a->conf = conf;
    a->last_tick_ms = now_ms;
    a->max = (uint32_t)conf->max_streams;
    a->nbuckets = 16;
    while (a->nbuckets < a->max * 2u)
        a->nbuckets <<= 1;
    a->s = calloc(a->max ? a->max : 1, sizeof(*a->s));
    a->buckets = calloc(a->nbuckets, sizeof(*a->buckets));
    if (!a->s || !a->buckets)
        goto out_free;
    for (uint32_t i = a->max; i >= 1; i--) {
        at(a, i)->next = a->free_head;
        a->free_head = i;
    }
    if (conf->error_pattern && *conf->error_pattern) {
        int ec;
        PCRE2_SIZE off;
        a->re =
            pcre2_compile((PCRE2_SPTR)conf->error_pattern, PCRE2_ZERO_TERMINATED,
                          PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &off, NULL);
        if (!a->re) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(ec, msg, sizeof(msg));
            snprintf(err, errlen, "anomaly.error_pattern at offset %zu: %s", (size_t)off,
                     (const char *)msg);
            rc = -EINVAL;
            goto out_free;
        }
        pcre2_jit_compile(a->re, PCRE2_JIT_COMPLETE); /* without JIT it still matches */
        a->md = pcre2_match_data_create_from_pattern(a->re, NULL);
        if (!a->md)
            goto out_free;
    }
    a->f_active = lc_metric_family(LC_GAUGE, "log_capturer_anomaly_active",
                                   "1 while an anomaly (kind, input, stream: a hash of the "
                                   "labels, which the log event lists) is active.",
                                   l_active);
    a->f_total = lc_metric_family(LC_COUNTER, "log_capturer_anomalies_total",
                                  "Anomalies detected on log rates (labels kind, input).", l_total);
    a->m_streams = lc_metric_simple(LC_GAUGE, "log_capturer_anomaly_streams",
                                    "Streams the anomaly detector tracks (at most "
                                    "anomaly.max_streams).");
    a->m_evicted = lc_metric_simple(LC_COUNTER, "log_capturer_anomaly_evicted_streams_total",
                                    "Streams forgotten because anomaly.max_streams were tracked.");
    a->m_active_n = lc_metric_simple(LC_GAUGE, "log_capturer_anomalies_active",
                                     "Anomalies active now, all kinds and streams.");
    lc_gauge_set(a->m_streams, 0);
    lc_gauge_set(a->m_active_n, 0);
    lc_health_set("anomalies", LC_HEALTH_OK, "watching log rates");
    lc_health_field("anomalies", "streams", a->m_streams);
    lc_health_field("anomalies", "active", a->m_active_n);
    *out = a;
    return 0;

out_free:
    lc_anomaly_free(a);
out_err:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    return rc;
}

void lc_anomaly_free(struct lc_anomaly *a)
{
    if (!a)
        return;
    lc_health_remove("anomalies"); /* a reload may turn it off */
    while (a->s && a->lru_head)
        stream_drop(a, a->lru_head);
    pcre2_match_data_free(a->md);
    pcre2_code_free(a->re);
    free(a->buckets);
    free(a->s);
    free(a);
}

static const struct an_stream *find(const struct lc_anomaly *a, const struct lc_input *in,
                                    const struct lc_labels *l)
{
    for (uint32_t i = a->buckets[bucket_of(a, in, l)]; i; i = at(a, i)->next)
        if (at(a, i)->labels == l && at(a, i)->in == in)
            return at(a, i);
    return NULL;
}

bool lc_anomaly_active(const struct lc_anomaly *a, const struct lc_input *in,
                       const struct lc_labels *labels, enum lc_anomaly_kind kind)
{
    const struct an_stream *s = find(a, in, labels);
    return s && s->active[kind];
}

size_t lc_anomaly_streams(const struct lc_anomaly *a)
{
    return a->used;
}

size_t lc_anomaly_stream_bytes(void)
{
    return sizeof(struct an_stream) + 2 * sizeof(uint32_t);
}

size_t lc_anomaly_memory(const struct lc_anomaly *a)
{
    return sizeof(*a) + (size_t)a->max * sizeof(struct an_stream) +
           (size_t)a->nbuckets * sizeof(uint32_t);
}
