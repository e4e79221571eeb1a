/* SPDX-License-Identifier: MIT */
/* loki.c: the Loki output: validate, encode, push over pooled connections, retry, dead-letter. */
#include "output/loki.h"

#include "core/agent.h"
#include "core/batch.h"
#include "core/buf.h"
#include "core/curl_uv.h"
#include "core/fifo.h"
#include "core/http.h"
#include "core/labels.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/redact.h"
#include "output/breaker.h"
#include "output/dlq.h"
#include "output/retry.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/*
 * The life of a batch (docs/internals/loki.md has the long version):
 *
 *   send() -> FIFO -> [breaker allows, a request slot is free] -> validate
 *   timestamps -> encode into the slot's body (one pool thread, one body at a
 *   time: encode_work) -> POST (lc_curl, pooled) ->
 *     2xx                      -> DELIVERED
 *     429, 5xx, transport err  -> retry queue (backoff, Retry-After) -> again
 *     401, 403                 -> held: the breaker opens at once, the batch waits
 *                                 (retry queue, or the FIFO's head when it is full)
 *                                 until the credentials work again; never the DLQ
 *     other answers (4xx)      -> DLQ (status and body) -> DEAD_LETTER
 *   retry queue over its limits -> the drop policy's victim -> DLQ
 *   every record dropped by the timestamp policy -> DROPPED
 *
 * Requests in flight never exceed max_inflight (one easy handle per slot,
 * reused; one multi per output whose connection cache is the pool). Batches
 * waiting for a retry hold memory only: one uv_timer serves the whole queue
 * and the breaker's cooldown. While the retry queue is full, new batches are
 * held in the FIFO: they count in out->pending_bytes, so the pipeline pauses
 * the inputs instead of reading more (backpressure, no new victims).
 */

#define LOKI_FLUSH_WAIT 1000 /* ms: the longest wait for a retry once flush() asked */

struct lc_loki;

/* One request slot: an easy handle reused for every push it makes. */
struct lc_loki_req {
    struct lc_loki *lk;
    CURL *easy;
    struct lc_loki_tenant_header tenant; /* this request's X-Scope-OrgID */
    struct lc_batch *b;                  /* in flight, or NULL when the slot is free */
    struct lc_buf body;
    struct lc_loki_answer resp;
    char retry_after[64];
    char errbuf[CURL_ERROR_SIZE]; /* libcurl's detailed message; redacted before use */
    int64_t started_ns;
    /* encoding on the worker: the result, and the queue of slots waiting for it */
    int enc_rc;
    size_t raw_len;
    uint32_t utf8_repaired; /* records of this encode with invalid UTF-8 replaced */
    struct lc_loki_req *enc_next;
};

enum { ST_2XX, ST_4XX, ST_429, ST_5XX, ST_ERROR, ST_OTHER, ST_N };
static const char *const status_names[ST_N + 1] = {"2xx",   "4xx",   "429", "5xx",
                                                   "error", "other", NULL};

enum { BYTES_RAW, BYTES_WIRE };
enum { CONN_NEW, CONN_REUSED };

struct lc_loki_metrics {
    struct lc_metric_series *requests[ST_N];
    struct lc_metric_series *bytes[2]; /* raw, wire (BYTES_*) */
    struct lc_metric_series *entries;  /* histogram */
    struct lc_metric_series *latency;  /* histogram */
    struct lc_metric_series *phase[3]; /* histograms: wait, upload, total (curl's timers) */
    struct lc_metric_series *retries;
    struct lc_metric_series *retry_batches;
    struct lc_metric_series *retry_bytes;
    struct lc_metric_series *ts_old_dropped, *ts_old_clamped, *ts_old_sent, *ts_future_clamped;
    struct lc_metric_series *utf8_repaired;
    struct lc_metric_series *breaker_state;
    struct lc_metric_series *breaker_opens;
    struct lc_metric_series *conn[2]; /* new, reused (CONN_*) */
    struct lc_metric_series *inflight;
    struct lc_metric_series *waiting;
    struct lc_metric_series *dead_lettered;
    struct lc_metric_series *auth_failures;
    struct lc_dlq_metrics dlq; /* the DLQ's own series (lc_dlq_metrics_register) */
};

struct lc_loki {
    struct lc_output *out;
    const struct lc_loki_conf *conf;
    const char *name;
    char health_key[160];
    struct lc_loki_http http;
    struct lc_loki_enc *enc;  /* the loop's: dead-letter lines */
    struct lc_loki_enc *wenc; /* the encoder worker's: push bodies */
    struct lc_loki_ts_policy tsp;
    struct lc_loki_req *reqs;
    uint32_t nreqs;
    uint32_t inflight;
    struct lc_batch *fifo, *fifo_tail; /* sent by the pipeline, not yet pushed */
    uint32_t fifo_n;
    struct lc_retry *retry;
    struct lc_breaker br;
    struct lc_dlq *dlq;
    struct lc_buf dlq_line;
    size_t max_body;
    /* event-loop handles, created on the first send() (see ensure_handles) */
    struct lc_curl *curl;
    uv_timer_t timer;
    /*
     * One push body is encoded at a time, on libuv's thread pool, while the
     * loop reads and decodes: slots wait in enc_q for `work`.
     */
    uv_work_t work;
    struct lc_loki_req *encoding; /* the slot on the worker, or NULL */
    struct lc_loki_req *enc_q, *enc_q_tail;
    bool handles;
    unsigned closing;
    bool stopping;
    bool flushing;
    bool in_pump;
    enum lc_health health;
    int health_breaker;
    long auth_failed; /* the last answer was 401/403 (its status); 0 once a push succeeds */
    unsigned long conn_opened, conn_reused;
    uint64_t opens_seen;
    struct lc_loki_metrics m;
};

static void pump(struct lc_loki *lk);
static void kick_encoder(struct lc_loki *lk);
static void on_closed(struct lc_loki *lk);

static void update_gauges(struct lc_loki *lk)
{
    lc_gauge_set(lk->m.retry_batches, lc_retry_count(lk->retry));
    lc_gauge_set(lk->m.retry_bytes, lc_retry_bytes(lk->retry));
    lc_gauge_set(lk->m.inflight, lk->inflight);
    lc_gauge_set(lk->m.waiting, lk->fifo_n);
    lc_gauge_set(lk->m.breaker_state, lk->br.state);
}

/* The DLQ holds over 90 % of its cap (read from its gauge: the disk worker may be writing). */
static bool dlq_nearly_full(const struct lc_loki *lk)
{
    int64_t cap = lk->conf->dlq.max_bytes;
    return cap > 0 && lk->m.dlq.bytes && lc_metric_series_value(lk->m.dlq.bytes) > cap / 10 * 9;
}

static void update_health(struct lc_loki *lk)
{
    enum lc_health h = LC_HEALTH_OK;
    char detail[96];

    if (lk->auth_failed) {
        h = LC_HEALTH_DOWN;
        snprintf(detail, sizeof(detail), "authentication failed (%ld), %u batches held",
                 lk->auth_failed, lc_retry_count(lk->retry) + lk->fifo_n);
    } else if (lk->br.state == LC_BREAKER_OPEN) {
        h = LC_HEALTH_DOWN;
        snprintf(detail, sizeof(detail), "circuit breaker open, %u batches waiting",
                 lc_retry_count(lk->retry) + lk->fifo_n);
    } else if (lk->br.state == LC_BREAKER_HALF_OPEN || lc_retry_count(lk->retry) > 0) {
        h = LC_HEALTH_DEGRADED;
        snprintf(detail, sizeof(detail), "retrying, %u batches in the retry queue",
                 lc_retry_count(lk->retry));
    } else if (dlq_nearly_full(lk)) {
        h = LC_HEALTH_DEGRADED;
        snprintf(detail, sizeof(detail),
                 "dead-letter queue over 90%% full: replay it (dlq replay)");
    } else {
        snprintf(detail, sizeof(detail), "ok");
    }
    int key = (int)lk->br.state | (lk->auth_failed ? 0x100 : 0) | (dlq_nearly_full(lk) ? 0x200 : 0);
    if (h != lk->health || key != lk->health_breaker) {
        lk->health = h;
        lk->health_breaker = key;
        lc_health_set(lk->health_key, h, detail);
    }
}

/* The batch's fate is known: count it and give it back to the pipeline. */
static void finish(struct lc_loki *lk, struct lc_batch *b, enum lc_batch_fate fate)
{
    b->next = NULL;
    lc_output_done(lk->out, b, fate);
}

/* The DLQ append ran on the disk worker: only now may the batch's positions advance. */
static void dead_lettered(int rc, void *arg)
{
    struct lc_batch *b = arg;
    struct lc_loki *lk = b->out->ctx;

    if (rc < 0) {
        lc_logf(LC_LOG_ERROR, lk->name, NULL,
                "batch of %u records could not be written to the dead-letter queue: %s", b->n,
                strerror(-rc));
        finish(lk, b, LC_FATE_FAILED);
        return;
    }
    lc_counter_inc(lk->m.dead_lettered);
    finish(lk, b, LC_FATE_DEAD_LETTER);
}

static void dead_letter(struct lc_loki *lk, struct lc_batch *b, const char *reason, long status,
                        const char *body, size_t body_len)
{
    int rc;

    rc = lc_dlq_line_begin(&lk->dlq_line, lc_now_ns(), lk->name, reason, status, body, body_len,
                           b->tenant);
    if (rc == 0)
        rc = lc_loki_streams_json(lk->enc, b, &lk->dlq_line);
    if (rc == 0)
        rc = lc_dlq_line_end(&lk->dlq_line);
    b->out = lk->out;
    if (rc == 0)
        rc = lc_dlq_append_async(lk->dlq, lk->out->agent->worker, lk->dlq_line.data,
                                 lk->dlq_line.len, dead_lettered, b);
    lc_buf_reset(&lk->dlq_line);
    if (rc < 0)
        dead_lettered(rc, b);
}

/*
 * A retryable failure: the batch waits in the retry queue. Victims of the
 * queue's limits go to the DLQ.
 */
static void requeue(struct lc_loki *lk, struct lc_batch *b, int64_t retry_after_ms)
{
    int64_t now = lc_mono_ns();
    int64_t bytes;
    struct lc_batch *v;

    b->attempts++;
    int64_t delay = lc_retry_delay_ms(lk->retry, b->attempts, retry_after_ms);
    if (lk->flushing && delay > LOKI_FLUSH_WAIT)
        delay = LOKI_FLUSH_WAIT;
    if (lc_retry_push(lk->retry, b, lc_batch_cost(b), now + delay * LC_NS_PER_MSEC) < 0) {
        dead_letter(lk, b, "retry_queue_full", 0, NULL, 0);
        return;
    }
    lc_counter_inc(lk->m.retries);
    while ((v = lc_retry_evict(lk->retry, &bytes)) != NULL) {
        lc_logf(LC_LOG_WARN, lk->name, NULL,
                "retry queue full: batch of %u records goes to the dead-letter queue", v->n);
        dead_letter(lk, v, "retry_queue_full", 0, NULL, 0);
    }
}

/*
 * A 401/403: the credentials are wrong for every batch, so none is
 * dead-lettered. The batch waits in the retry queue, or, when that is full,
 * back at the head of the FIFO (it is older than what waits there), where it
 * keeps counting in the pending bytes so that the inputs pause.
 */
static void hold(struct lc_loki *lk, struct lc_batch *b)
{
    int64_t now = lc_mono_ns();

    if (lc_retry_full(lk->retry)) {
        b->next = lk->fifo;
        lk->fifo = b;
        if (!lk->fifo_tail)
            lk->fifo_tail = b;
        lk->fifo_n++;
        return;
    }
    b->attempts++;
    int64_t delay = lc_retry_delay_ms(lk->retry, b->attempts, -1);
    if (lk->flushing && delay > LOKI_FLUSH_WAIT)
        delay = LOKI_FLUSH_WAIT;
    /* cannot fail: the queue was not full, so nothing needs evicting either */
    (void)lc_retry_push(lk->retry, b, lc_batch_cost(b), now + delay * LC_NS_PER_MSEC);
    lc_counter_inc(lk->m.retries);
}

/* The answer's body for a log line or the DLQ: at most max bytes, credentials masked. */
static const char *shown_body(const struct lc_loki_req *rq, size_t max, char *out, size_t outlen)
{
    if (!rq->resp.len)
        return "(no body)";
    lc_redact_text(rq->resp.text, rq->resp.len < max ? rq->resp.len : max, out, outlen);
    return out;
}

/*
 * The requests_total{status} label of an answer. Only the metric's buckets:
 * what the answer means is lc_loki_conf_push_result's to say.
 */
static int status_class(CURLcode result, long status)
{
    if (result != CURLE_OK)
        return ST_ERROR;
    if (status >= 200 && status < 300)
        return ST_2XX;
    if (status == 429)
        return ST_429;
    if (status >= 500)
        return ST_5XX;
    if (status >= 400)
        return ST_4XX;
    return ST_OTHER;
}

/*
 * curl's own timers of one request (microseconds from its start): wait =
 * until the request could be sent (queue, connect), upload = from then to the
 * end of the answer (the body on the wire, the server's turn, the answer;
 * libcurl 7.88 has no timer for the body's last byte), total = both.
 */
static void observe_phases(struct lc_loki *lk, CURL *easy)
{
    curl_off_t pre = 0, total = 0;

    curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &pre);
    curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &total);
    lc_histogram_observe(lk->m.phase[0], (double)pre / 1e6);
    lc_histogram_observe(lk->m.phase[1], (double)(total > pre ? total - pre : 0) / 1e6);
    lc_histogram_observe(lk->m.phase[2], (double)total / 1e6);
}

/* A transport error, 429 or 5xx: the batch goes to the retry queue (Retry-After honoured). */
static void retry_later(struct lc_loki *lk, const struct lc_loki_req *rq, struct lc_batch *b,
                        CURLcode result, long status, int64_t now)
{
    int64_t ra = -1;

    if (result != CURLE_OK) {
        char msg[CURL_ERROR_SIZE * 2];
        lc_redact_url(rq->errbuf[0] ? rq->errbuf : curl_easy_strerror(result), msg, sizeof(msg));
        lc_logf(LC_LOG_WARN, lk->name, NULL, "push failed: %s%s; retrying", msg,
                lc_loki_conf_tls_hint(result, lk->conf));
    } else {
        char body[256];
        if (rq->retry_after[0])
            ra = lc_retry_after_parse(rq->retry_after, (int64_t)time(NULL));
        lc_logf(LC_LOG_WARN, lk->name, NULL, "push answered %ld: %s; retrying", status,
                shown_body(rq, 200, body, sizeof(body)));
    }
    lc_breaker_failure(&lk->br, now);
    requeue(lk, b, ra);
}

static void on_request_done(CURL *easy, CURLcode result, void *arg)
{
    struct lc_loki_req *rq = arg;
    struct lc_loki *lk = rq->lk;
    struct lc_batch *b = rq->b;
    int64_t now = lc_mono_ns();
    long status = 0;
    unsigned long opened, reused;

    rq->b = NULL;
    lk->inflight--;
    lc_histogram_observe(lk->m.latency, (double)(now - rq->started_ns) / 1e9);
    observe_phases(lk, easy);
    lc_curl_conn_stats(lk->curl, &opened, &reused);
    lc_counter_add(lk->m.conn[CONN_NEW], opened - lk->conn_opened);
    lc_counter_add(lk->m.conn[CONN_REUSED], reused - lk->conn_reused);
    lk->conn_opened = opened;
    lk->conn_reused = reused;
    if (result == CURLE_OK)
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);

    lc_counter_inc(lk->m.requests[status_class(result, status)]);
    switch (lc_loki_conf_push_result(result, status)) {
    case LC_SEND_RETRY:
        retry_later(lk, rq, b, result, status, now);
        break;
    case LC_SEND_OK:
        lc_breaker_success(&lk->br);
        if (lk->auth_failed)
            lc_logf(LC_LOG_INFO, lk->name, NULL, "authentication works again: resuming pushes");
        lk->auth_failed = 0;
        finish(lk, b, LC_FATE_DELIVERED);
        break;
    case LC_SEND_AUTH: {
        char body[256];
        lc_counter_inc(lk->m.auth_failures);
        lc_logf(LC_LOG_ERROR, lk->name, NULL,
                "push answered %ld (authentication failed): %s; check the credentials "
                "(basic_auth, bearer_token, headers); batches are held, not dead-lettered",
                status, shown_body(rq, 200, body, sizeof(body)));
        lk->auth_failed = status;
        /* every batch would fail the same way: stop sending until the cooldown */
        lc_breaker_trip(&lk->br, now);
        hold(lk, b);
        break;
    }
    case LC_SEND_REJECT: {
        /* 400 and every other answer: Loki kept what it could; never re-send */
        char body[384];
        lc_logf(LC_LOG_WARN, lk->name, NULL,
                "push rejected with %ld: %s; the batch goes to the dead-letter queue", status,
                shown_body(rq, 300, body, sizeof(body)));
        lc_breaker_success(&lk->br); /* the server is alive and answering */
        dead_letter(lk, b, "rejected", status, rq->resp.text, rq->resp.len);
        break;
    }
    }
    if (lk->br.opens != lk->opens_seen) {
        lc_counter_add(lk->m.breaker_opens, lk->br.opens - lk->opens_seen);
        lk->opens_seen = lk->br.opens;
        lc_logf(LC_LOG_WARN, lk->name, NULL, "circuit breaker open: no pushes for %lld ms",
                (long long)lk->conf->breaker.cooldown_ms);
    }
    pump(lk);
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    struct lc_loki_req *rq = arg;
    size_t len = sz * n;
    static const char name[] = "retry-after:";

    if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        size_t v = sizeof(name) - 1;
        size_t k = len - v < sizeof(rq->retry_after) - 1 ? len - v : sizeof(rq->retry_after) - 1;
        memcpy(rq->retry_after, p + v, k);
        rq->retry_after[k] = '\0';
    }
    return len;
}

static struct lc_loki_req *free_slot(struct lc_loki *lk)
{
    for (uint32_t i = 0; i < lk->nreqs; i++)
        if (!lk->reqs[i].b)
            return &lk->reqs[i];
    return NULL;
}

/* Validates a batch and queues its slot for the encoder worker. It always ends somewhere. */
static void start(struct lc_loki *lk, struct lc_batch *b)
{
    struct lc_loki_ts_counts tc = {0};
    struct lc_loki_req *rq = free_slot(lk);

    lc_loki_validate(&lk->tsp, b, lc_now_ns(), &tc);
    lc_counter_add(lk->m.ts_old_dropped, tc.old_dropped);
    lc_counter_add(lk->m.ts_old_clamped, tc.old_clamped);
    lc_counter_add(lk->m.ts_old_sent, tc.old_sent);
    lc_counter_add(lk->m.ts_future_clamped, tc.future_clamped);
    if (tc.old_dropped)
        lc_logf(LC_LOG_INFO, lk->name, NULL, "dropped %llu records older than timestamps.max_age",
                (unsigned long long)tc.old_dropped);
    if (b->n == 0) {
        finish(lk, b, LC_FATE_DROPPED);
        return;
    }
    /* the slot is taken from here on: it counts in flight while it encodes */
    rq->b = b;
    lk->inflight++;
    lc_breaker_on_send(&lk->br);
    LC_FIFO_PUSH(lk->enc_q, lk->enc_q_tail, rq, enc_next);
    kick_encoder(lk);
}

/* The slot's batch did not become a request: the slot is free again. */
static struct lc_batch *unsend(struct lc_loki *lk, struct lc_loki_req *rq)
{
    struct lc_batch *b = rq->b;

    rq->b = NULL;
    lk->inflight--;
    if (lk->br.state == LC_BREAKER_HALF_OPEN)
        lk->br.probing = false; /* no probe went out */
    return b;
}

/* The body is encoded (rq->enc_rc): POST it. The batch always ends somewhere. */
static void send_encoded(struct lc_loki *lk, struct lc_loki_req *rq)
{
    struct lc_batch *b = rq->b;
    int rc = rq->enc_rc;

    if (rq->utf8_repaired && b->attempts == 0) { /* once per batch, not per retry */
        lc_counter_add(lk->m.utf8_repaired, rq->utf8_repaired);
        lc_logf(LC_LOG_WARN, lk->name, NULL,
                "%u records with invalid UTF-8: each invalid byte is sent as '?'",
                rq->utf8_repaired);
    }
    if (rc == -E2BIG) {
        unsend(lk, rq);
        lc_logf(LC_LOG_ERROR, lk->name, NULL, "batch of %u records does not fit a request body",
                b->n);
        dead_letter(lk, b, "too_big", 0, NULL, 0);
        return;
    }
    if (rc < 0) {
        unsend(lk, rq);
        lc_logf(LC_LOG_ERROR, lk->name, NULL, "encoding failed: %s; retrying later", strerror(-rc));
        requeue(lk, b, -1);
        return;
    }
    curl_easy_setopt(rq->easy, CURLOPT_POSTFIELDS, rq->body.data);
    curl_easy_setopt(rq->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body.len);
    curl_easy_setopt(rq->easy, CURLOPT_HTTPHEADER,
                     lc_loki_conf_headers_for(&lk->http, &rq->tenant, b->tenant));
    rq->resp.len = 0;
    rq->resp.text[0] = '\0';
    rq->retry_after[0] = '\0';
    rq->errbuf[0] = '\0';
    rq->started_ns = lc_mono_ns();
    rc = lc_curl_add(lk->curl, rq->easy, on_request_done, rq);
    if (rc < 0) {
        requeue(lk, unsend(lk, rq), -1);
        return;
    }
    lc_histogram_observe(lk->m.entries, b->n);
    lc_counter_add(lk->m.bytes[BYTES_RAW], rq->raw_len);
    lc_counter_add(lk->m.bytes[BYTES_WIRE], rq->body.len);
}

/* On the pool thread: only the worker's encoder, this slot's body and its batch are touched. */
static void encode_work(uv_work_t *w)
{
    struct lc_loki *lk = w->data;
    struct lc_loki_req *rq = lk->encoding;

    rq->raw_len = 0;
    rq->enc_rc = lc_loki_encode(lk->wenc, rq->b, &rq->body, &rq->raw_len);
    rq->utf8_repaired = lc_loki_enc_utf8_repaired(lk->wenc);
}

static void encode_done(uv_work_t *w, int status)
{
    struct lc_loki *lk = w->data;
    struct lc_loki_req *rq = lk->encoding;

    lk->encoding = NULL;
    if (lk->stopping) {
        /* stop() left this batch to us: the worker was still reading it */
        finish(lk, unsend(lk, rq), LC_FATE_FAILED);
        on_closed(lk);
        return;
    }
    if (status < 0)
        rq->enc_rc = status;
    send_encoded(lk, rq);
    kick_encoder(lk);
    pump(lk);
}

/* Hands the next waiting slot to the worker; encodes on the loop if the pool refuses. */
static void kick_encoder(struct lc_loki *lk)
{
    while (!lk->encoding && lk->enc_q) {
        struct lc_loki_req *rq;
        LC_FIFO_POP(lk->enc_q, lk->enc_q_tail, rq, enc_next);
        lk->encoding = rq;
        lk->work.data = lk;
        if (uv_queue_work(lk->out->agent->loop, &lk->work, encode_work, encode_done) == 0)
            return;
        encode_work(&lk->work);
        lk->encoding = NULL;
        send_encoded(lk, rq);
    }
}

static struct lc_batch *fifo_pop(struct lc_loki *lk)
{
    struct lc_batch *b;

    if (!lk->fifo)
        return NULL;
    LC_FIFO_POP(lk->fifo, lk->fifo_tail, b, next);
    lk->fifo_n--;
    return b;
}

static void on_timer(uv_timer_t *t)
{
    pump(t->data);
}

/* One timer for the retry queue and the breaker's cooldown. */
static void arm_timer(struct lc_loki *lk, int64_t now)
{
    int64_t at = INT64_MAX;

    if (lk->stopping && !lk->handles)
        return;
    if (lk->inflight < lk->nreqs) {
        if (lk->br.state == LC_BREAKER_OPEN)
            at = lc_breaker_reopen_ns(&lk->br);
        else if (!(lk->br.state == LC_BREAKER_HALF_OPEN && lk->br.probing))
            at = lc_retry_next_due(lk->retry);
    }
    if (at == INT64_MAX) {
        uv_timer_stop(&lk->timer);
        return;
    }
    int64_t ms = at > now ? (at - now + LC_NS_PER_MSEC - 1) / LC_NS_PER_MSEC : 0;
    uv_timer_start(&lk->timer, on_timer, (uint64_t)ms, 0);
}

/*
 * Starts as many pushes as slots and the breaker allow: retries that are due
 * first (older data), then new batches, unless the retry queue is full.
 */
static void pump(struct lc_loki *lk)
{
    int64_t now = lc_mono_ns();

    if (!lk->handles || lk->in_pump)
        return;
    lk->in_pump = true;
    while (lk->inflight < lk->nreqs && !(lk->stopping && lk->closing)) {
        struct lc_batch *b;
        int64_t bytes;
        if (!lc_breaker_can_send(&lk->br, now))
            break;
        b = lc_retry_pop_due(lk->retry, now, &bytes);
        if (!b && !lc_retry_full(lk->retry))
            b = fifo_pop(lk);
        if (!b)
            break;
        start(lk, b);
    }
    lk->in_pump = false;
    arm_timer(lk, now);
    update_gauges(lk);
    update_health(lk);
}

/* The loop handles are made on first use, so a failed start-up leaves none open. */
static int ensure_handles(struct lc_loki *lk)
{
    if (lk->handles)
        return 0;
    lk->curl = lc_curl_new(lk->out->agent->loop, (long)lk->nreqs, 0);
    if (!lk->curl)
        return -ENOMEM;
    uv_timer_init(lk->out->agent->loop, &lk->timer);
    lk->timer.data = lk;
    lk->handles = true;
    return 0;
}

static void loki_send(struct lc_output *out, struct lc_batch *b)
{
    struct lc_loki *lk = out->ctx;

    if (lk->stopping || ensure_handles(lk) < 0) {
        finish(lk, b, LC_FATE_FAILED);
        return;
    }
    LC_FIFO_PUSH(lk->fifo, lk->fifo_tail, b, next);
    lk->fifo_n++;
    pump(lk);
}

static void loki_flush(struct lc_output *out)
{
    struct lc_loki *lk = out->ctx;

    if (!lk->handles)
        return;
    if (!lk->flushing) {
        lk->flushing = true;
        lc_retry_expedite(lk->retry, lc_mono_ns() + LOKI_FLUSH_WAIT * LC_NS_PER_MSEC);
    }
    pump(lk);
}

static void on_closed(struct lc_loki *lk)
{
    if (--lk->closing == 0)
        lc_output_stopped(lk->out);
}

static void on_timer_closed(uv_handle_t *h)
{
    on_closed(h->data);
}

static void on_curl_closed(void *arg)
{
    on_closed(arg);
}

static void loki_stop(struct lc_output *out)
{
    struct lc_loki *lk = out->ctx;
    struct lc_batch *b;
    int64_t bytes;
    uint32_t failed = 0;

    lk->stopping = true;
    /* the agent waited for the shutdown deadline already: whatever is held goes back */
    for (uint32_t i = 0; i < lk->nreqs; i++) {
        struct lc_loki_req *rq = &lk->reqs[i];
        if (!rq->b)
            continue;
        failed++;
        if (rq == lk->encoding)
            continue;                       /* the worker reads it: encode_done finishes it */
        lc_curl_remove(lk->curl, rq->easy); /* a no-op for a slot waiting to encode */
        b = rq->b;
        rq->b = NULL;
        lk->inflight--;
        finish(lk, b, LC_FATE_FAILED);
    }
    lk->enc_q = lk->enc_q_tail = NULL;
    while ((b = fifo_pop(lk)) != NULL) {
        finish(lk, b, LC_FATE_FAILED);
        failed++;
    }
    while ((b = lc_retry_pop(lk->retry, &bytes)) != NULL) {
        finish(lk, b, LC_FATE_FAILED);
        failed++;
    }
    if (failed)
        lc_logf(LC_LOG_WARN, lk->name, NULL,
                "stopping with %u batches undelivered: they will be read again after a restart",
                failed);
    update_gauges(lk);
    if (!lk->handles) {
        lc_output_stopped(out);
        return;
    }
    lk->closing = 2;
    if (lk->encoding) {
        lk->closing++;
        uv_cancel((uv_req_t *)&lk->work); /* if it has not started; encode_done runs either way */
    }
    uv_timer_stop(&lk->timer);
    uv_close((uv_handle_t *)&lk->timer, on_timer_closed);
    lc_curl_free(lk->curl, on_curl_closed, lk);
    lk->curl = NULL;
}

static bool loki_healthy(struct lc_output *out, const char **state)
{
    struct lc_loki *lk = out->ctx;

    if (lk->auth_failed) {
        *state = "authentication failed";
        return false;
    }
    if (lk->br.state == LC_BREAKER_OPEN) {
        *state = "breaker open";
        return false;
    }
    if (lk->br.state == LC_BREAKER_HALF_OPEN) {
        *state = "breaker half-open";
        return true;
    }
    *state = lc_retry_count(lk->retry) ? "retrying" : "ok";
    return true;
}

static const char *const bytes_names[] = {"raw", "wire", NULL};
static const char *const conn_names[] = {"new", "reused", NULL};
static const char *const phase_names[] = {"wait", "upload", "total", NULL};
static const double ph_b[] = {0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05,
                              0.1,   0.25,   0.5,   1,    2.5,   10};
static const double lat_b[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const double ent_b[] = {1, 10, 50, 100, 500, 1000, 5000, 10000, 50000};
#define M(field)   offsetof(struct lc_loki_metrics, field)
#define BUCKETS(b) b, (int)(sizeof(b) / sizeof((b)[0]))

LC_METRIC_VALUES_FIT(struct lc_loki_metrics, requests, status_names);
LC_METRIC_VALUES_FIT(struct lc_loki_metrics, bytes, bytes_names);
LC_METRIC_VALUES_FIT(struct lc_loki_metrics, conn, conn_names);
LC_METRIC_VALUES_FIT(struct lc_loki_metrics, phase, phase_names);

/* The output's series (labelled output=NAME), in the order /metrics lists them. */
static const struct lc_metric_row loki_series[] = {
    {LC_COUNTER, "log_capturer_loki_requests_total",
     "Push requests by answer: 2xx, 4xx, 429, 5xx, error (transport), other.", M(requests),
     "status", status_names},
    {LC_COUNTER, "log_capturer_loki_sent_bytes_total",
     "Push body bytes before (raw) and after (wire) compression.", M(bytes), "stage", bytes_names},
    {LC_HISTOGRAM, "log_capturer_loki_batch_entries", "Entries per push request.", M(entries), NULL,
     NULL, BUCKETS(ent_b)},
    {LC_HISTOGRAM, "log_capturer_loki_request_duration_seconds",
     "Push request latency, connect included.", M(latency), NULL, NULL, BUCKETS(lat_b)},
    {LC_HISTOGRAM, "log_capturer_loki_request_phase_seconds",
     "Push request phases by libcurl's timers: wait (queued, connect), upload (body sent and "
     "answer read), total.",
     M(phase), "phase", phase_names, BUCKETS(ph_b)},
    {LC_COUNTER, "log_capturer_loki_retries_total",
     "Batches put in the retry queue after a retryable failure.", M(retries)},
    {LC_GAUGE, "log_capturer_loki_retry_queue_batches", "Batches waiting for a retry.",
     M(retry_batches)},
    {LC_GAUGE, "log_capturer_loki_retry_queue_bytes", "Bytes of the batches waiting for a retry.",
     M(retry_bytes)},
    {LC_GAUGE, "log_capturer_loki_inflight_requests", "Push requests in flight.", M(inflight)},
    {LC_GAUGE, "log_capturer_loki_waiting_batches",
     "Batches waiting for a request slot (or for the breaker).", M(waiting)},
    {LC_COUNTER, "log_capturer_loki_utf8_repaired_records_total",
     "Records whose line was not valid UTF-8 (Loki takes UTF-8 only): each invalid byte was "
     "sent as '?'.",
     M(utf8_repaired)},
    {LC_GAUGE, "log_capturer_loki_breaker_state", "Circuit breaker: 0 closed, 1 open, 2 half-open.",
     M(breaker_state)},
    {LC_COUNTER, "log_capturer_loki_breaker_opens_total", "Times the circuit breaker opened.",
     M(breaker_opens)},
    {LC_COUNTER, "log_capturer_loki_connections_total",
     "Push requests by connection: new (opened for it) or reused.", M(conn), "kind", conn_names},
    {LC_COUNTER, "log_capturer_loki_dead_lettered_batches_total",
     "Batches written to the dead-letter queue.", M(dead_lettered)},
    {LC_COUNTER, "log_capturer_loki_auth_failures_total",
     "Push requests answered 401 or 403: their batches are held (never dead-lettered) until the "
     "credentials work again.",
     M(auth_failures)},
};

#undef M
#undef BUCKETS

/*
 * The table, then the one family with two labels besides the output's (a
 * row has at most one), then the DLQ's own series.
 */
static void register_metrics(struct lc_loki *lk)
{
    static const char *const l_ts[] = {"output", "reason", "action", NULL};
    struct lc_loki_metrics *m = &lk->m;
    struct lc_metric_family *f;
    const char *n = lk->name;

    lc_metric_register_rows(m, loki_series, LC_METRIC_ROWS(loki_series), "output", n);
    f = lc_metric_family(LC_COUNTER, "log_capturer_loki_timestamp_records_total",
                         "Records outside Loki's timestamp window, by reason and action.", l_ts);
    m->ts_old_dropped = lc_metric_series(f, n, "too_old", "dropped");
    m->ts_old_clamped = lc_metric_series(f, n, "too_old", "clamped");
    m->ts_old_sent = lc_metric_series(f, n, "too_old", "sent");
    m->ts_future_clamped = lc_metric_series(f, n, "too_new", "clamped");
    lc_dlq_metrics_register(&m->dlq, n);
}

static void loki_free(struct lc_output *out)
{
    struct lc_loki *lk = out->ctx;

    if (!lk)
        return;
    /* handles exist only after a send(), and then the agent always calls stop() first */
    for (uint32_t i = 0; lk->reqs && i < lk->nreqs; i++) {
        if (lk->reqs[i].easy)
            curl_easy_cleanup(lk->reqs[i].easy);
        lc_buf_free(&lk->reqs[i].body);
    }
    free(lk->reqs);
    lc_retry_free(lk->retry);
    lc_dlq_free(lk->dlq);
    lc_buf_free(&lk->dlq_line);
    lc_loki_enc_free(lk->enc);
    lc_loki_enc_free(lk->wenc);
    lc_loki_conf_http_free(&lk->http);
    if (lk->health_key[0])
        lc_health_remove(lk->health_key);
    free(lk);
    out->ctx = NULL;
    curl_global_cleanup();
}

static int loki_init(struct lc_output *out)
{
    const struct lc_loki_conf *c = out->conf->conf;
    struct lc_agent *a = out->agent;
    struct lc_loki *lk;
    char err[512], dir[4096];
    int rc;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -ENOMEM;
    lk = calloc(1, sizeof(*lk));
    if (!lk) {
        curl_global_cleanup();
        return -ENOMEM;
    }
    out->ctx = lk;
    lk->out = out;
    lk->conf = c;
    lk->name = out->conf->name;
    lk->tsp = lc_loki_conf_ts_policy(c);
    lk->health = LC_HEALTH_OK;
    lk->health_breaker = -1;
    snprintf(lk->health_key, sizeof(lk->health_key), "output/%s", lk->name);
    register_metrics(lk);

    if (out->conf->labels.n > LC_LABELS_MAX) {
        lc_logf(LC_LOG_ERROR, lk->name, NULL, "%zu static labels: Loki accepts at most %d",
                out->conf->labels.n, LC_LABELS_MAX);
        rc = -EINVAL;
        goto out_free;
    }
    int64_t batch = out->conf->batch_bytes ? out->conf->batch_bytes : a->cfg->batch_bytes;
    if (batch <= 0)
        batch = 1 << 20;
    /* JSON escaping can grow a line six-fold; keep room for the worst case */
    lk->max_body = (size_t)batch * 8 + (1 << 20);
    rc = lc_loki_conf_encoder(&lk->enc, c, &out->conf->labels, lk->max_body);
    if (rc == 0)
        rc = lc_loki_conf_encoder(&lk->wenc, c, &out->conf->labels, lk->max_body);
    if (rc < 0)
        goto out_free;
    rc = lc_loki_conf_http_init(&lk->http, c, lk->enc, err, sizeof(err));
    if (rc < 0) {
        lc_logf(LC_LOG_ERROR, lk->name, NULL, "%s", err);
        goto out_free;
    }
    struct lc_retry_conf rcf = {
        .initial_ms = c->retry.initial_ms,
        .max_ms = c->retry.max_ms,
        .max_items = (uint32_t)c->retry.max_batches,
        .max_bytes = c->retry.max_bytes,
        .drop_policy = c->retry.drop_policy,
    };
    if (rcf.initial_ms > rcf.max_ms)
        rcf.initial_ms = rcf.max_ms;
    rc = lc_retry_new(&lk->retry, &rcf);
    if (rc < 0)
        goto out_free;
    lc_breaker_init(&lk->br, (uint32_t)c->breaker.failures, c->breaker.cooldown_ms);
    lc_loki_conf_dlq_dir(c, a->cfg->state_dir, lk->name, dir, sizeof(dir));
    rc = lc_dlq_open(&lk->dlq, dir, c->dlq.max_bytes, LC_DLQ_SEGMENT_BYTES, &lk->m.dlq, err,
                     sizeof(err));
    if (rc < 0) {
        lc_logf(LC_LOG_ERROR, lk->name, NULL, "%s", err);
        goto out_free;
    }
    lc_buf_init(&lk->dlq_line, lk->max_body + (1 << 20));
    lk->nreqs = (uint32_t)c->max_inflight;
    lk->reqs = calloc(lk->nreqs, sizeof(*lk->reqs));
    if (!lk->reqs) {
        rc = -ENOMEM;
        goto out_free;
    }
    for (uint32_t i = 0; i < lk->nreqs; i++) {
        struct lc_loki_req *rq = &lk->reqs[i];
        rq->lk = lk;
        /* snappy's worst case is a little above the raw size */
        lc_buf_init(&rq->body, lk->max_body + lk->max_body / 6 + 64);
        rq->easy = curl_easy_init();
        if (!rq->easy) {
            rc = -ENOMEM;
            goto out_free;
        }
        rc = lc_loki_conf_easy_setup(rq->easy, &lk->http, c);
        curl_easy_setopt(rq->easy, CURLOPT_WRITEFUNCTION, lc_loki_answer_write);
        curl_easy_setopt(rq->easy, CURLOPT_WRITEDATA, &rq->resp);
        curl_easy_setopt(rq->easy, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(rq->easy, CURLOPT_HEADERDATA, rq);
        curl_easy_setopt(rq->easy, CURLOPT_ERRORBUFFER, rq->errbuf);
        if (rc < 0) {
            lc_logf(LC_LOG_ERROR, lk->name, NULL, "libcurl rejected the HTTP options");
            goto out_free;
        }
    }
    /* libcurl keeps its own copies of the user name and password */
    lc_loki_conf_forget_secrets(&lk->http);
    update_gauges(lk);
    lc_health_set(lk->health_key, LC_HEALTH_OK, "ok");
    lc_health_field(lk->health_key, "breaker_state", lk->m.breaker_state);
    lc_health_field(lk->health_key, "retry_queue_batches", lk->m.retry_batches);
    lc_health_field(lk->health_key, "retry_queue_bytes", lk->m.retry_bytes);
    lc_health_field(lk->health_key, "dlq_bytes", lk->m.dlq.bytes);
    lc_health_field(lk->health_key, "dlq_max_bytes", lk->m.dlq.max);
    lk->health_breaker = LC_BREAKER_CLOSED;
    update_health(lk); /* a DLQ left nearly full by an earlier run */
    lc_logf(LC_LOG_INFO, lk->name, NULL, "pushing to %s (%s), up to %u requests in flight",
            lc_redact_url(lk->http.push_url, err, sizeof(err)), lc_loki_conf_encoding_name(c),
            lk->nreqs);
    lc_loki_conf_warn_insecure(c, lk->name);
    return 0;

out_free:
    loki_free(out);
    return rc;
}

const struct lc_output_plugin lc_output_loki = {
    .name = "loki",
    .description = "Grafana Loki push API (protobuf+snappy or JSON), with retries, a circuit "
                   "breaker and a dead-letter queue.",
    .options = lc_loki_conf_options,
    .conf_size = sizeof(struct lc_loki_conf),
    .init = loki_init,
    .send = loki_send,
    .flush = loki_flush,
    .stop = loki_stop,
    .healthy = loki_healthy,
    .free = loki_free,
};
