/* SPDX-License-Identifier: MIT */
/* retry.c: a bounded retry queue with due times, a drop policy, backoff and Retry-After parsing. */
#include "output/retry.h"

#include "core/rand.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct lc_retry_item {
    void *item;
    int64_t bytes;
    int64_t due_ns;
};

/*
 * Items in push order (oldest first) in a plain array: the queue is small
 * (tens of batches), so a linear scan for the earliest due time and a memmove
 * on removal cost less than keeping a heap and a list in step.
 */
struct lc_retry {
    struct lc_retry_conf conf;
    struct lc_retry_item *v;
    uint32_t n;
    uint32_t cap;
    int64_t bytes;
    uint64_t rng;
};

int lc_retry_new(struct lc_retry **out, const struct lc_retry_conf *conf)
{
    struct lc_retry *q;

    *out = NULL;
    if (conf->max_items == 0 || conf->initial_ms <= 0 || conf->initial_ms > conf->max_ms ||
        conf->max_bytes <= 0)
        return -EINVAL;
    q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    q->conf = *conf;
    q->cap = conf->max_items + 1;
    q->v = calloc(q->cap, sizeof(*q->v));
    if (!q->v) {
        free(q);
        return -ENOMEM;
    }
    q->rng = conf->seed ? conf->seed : lc_rand_seed();
    *out = q;
    return 0;
}

void lc_retry_free(struct lc_retry *q)
{
    if (!q)
        return;
    free(q->v);
    free(q);
}

uint64_t lc_retry_rand(struct lc_retry *q)
{
    return lc_rand_next(&q->rng);
}

int lc_retry_push(struct lc_retry *q, void *item, int64_t bytes, int64_t due_ns)
{
    /* cap is max_items + 1 and the owner evicts after every push */
    if (q->n == q->cap)
        return -ENOSPC;
    q->v[q->n].item = item;
    q->v[q->n].bytes = bytes;
    q->v[q->n].due_ns = due_ns;
    q->n++;
    q->bytes += bytes;
    return 0;
}

static void *remove_at(struct lc_retry *q, uint32_t i, int64_t *bytes)
{
    void *item = q->v[i].item;

    if (bytes)
        *bytes = q->v[i].bytes;
    q->bytes -= q->v[i].bytes;
    memmove(&q->v[i], &q->v[i + 1], (size_t)(q->n - i - 1) * sizeof(*q->v));
    q->n--;
    return item;
}

static bool over(const struct lc_retry *q)
{
    return q->n > q->conf.max_items || (q->bytes > q->conf.max_bytes && q->n > 0);
}

void *lc_retry_evict(struct lc_retry *q, int64_t *bytes)
{
    uint32_t i;

    if (!over(q))
        return NULL;
    switch (q->conf.drop_policy) {
    case LC_RETRY_DROP_NEWEST:
        i = q->n - 1;
        break;
    case LC_RETRY_DROP_RANDOM:
        i = (uint32_t)(lc_retry_rand(q) % q->n);
        break;
    default:
        i = 0;
        break;
    }
    return remove_at(q, i, bytes);
}

bool lc_retry_full(const struct lc_retry *q)
{
    return q->n >= q->conf.max_items || q->bytes >= q->conf.max_bytes;
}

int64_t lc_retry_next_due(const struct lc_retry *q)
{
    int64_t due = INT64_MAX;

    for (uint32_t i = 0; i < q->n; i++)
        if (q->v[i].due_ns < due)
            due = q->v[i].due_ns;
    return due;
}

void *lc_retry_pop_due(struct lc_retry *q, int64_t now_ns, int64_t *bytes)
{
    uint32_t best = UINT32_MAX;

    for (uint32_t i = 0; i < q->n; i++)
        if (q->v[i].due_ns <= now_ns && (best == UINT32_MAX || q->v[i].due_ns < q->v[best].due_ns))
            best = i;
    return best == UINT32_MAX ? NULL : remove_at(q, best, bytes);
}

void *lc_retry_pop(struct lc_retry *q, int64_t *bytes)
{
    return q->n ? remove_at(q, 0, bytes) : NULL;
}

void lc_retry_expedite(struct lc_retry *q, int64_t latest_ns)
{
    for (uint32_t i = 0; i < q->n; i++)
        if (q->v[i].due_ns > latest_ns)
            q->v[i].due_ns = latest_ns;
}

uint32_t lc_retry_count(const struct lc_retry *q)
{
    return q->n;
}

int64_t lc_retry_bytes(const struct lc_retry *q)
{
    return q->bytes;
}

int64_t lc_retry_backoff_ms(const struct lc_retry_conf *c, uint32_t attempt, uint64_t rnd)
{
    int64_t base = c->initial_ms;

    for (uint32_t i = 1; i < attempt && base < c->max_ms; i++)
        base *= 2;
    if (base > c->max_ms)
        base = c->max_ms;
    int64_t half = base / 2;
    return (base - half) + (int64_t)(rnd % (uint64_t)(half + 1));
}

int64_t lc_retry_delay_ms(struct lc_retry *q, uint32_t attempt, int64_t retry_after_ms)
{
    int64_t d = lc_retry_backoff_ms(&q->conf, attempt, lc_retry_rand(q));

    if (retry_after_ms >= 0) {
        int64_t ra = retry_after_ms < q->conf.max_ms ? retry_after_ms : q->conf.max_ms;
        if (ra > d)
            d = ra;
    }
    return d;
}

int64_t lc_retry_after_parse(const char *value, int64_t now_s)
{
    const char *p = value;
    const char *end;

    if (!p)
        return -1;
    while (*p == ' ' || *p == '\t')
        p++;
    end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    if (end == p)
        return -1;
    if (isdigit((unsigned char)*p)) {
        int64_t s = 0;
        for (const char *q = p; q < end; q++) {
            if (!isdigit((unsigned char)*q))
                return -1;
            if (s > (INT64_MAX / 1000 - 9) / 10)
                return INT64_MAX / 1000 * 1000; /* absurdly far: capped by the caller */
            s = s * 10 + (*q - '0');
        }
        return s * 1000;
    }
    char buf[64];
    size_t n = (size_t)(end - p);
    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    /* curl_getdate reads the three HTTP date formats (RFC 9110 5.6.7) */
    time_t t = curl_getdate(buf, NULL);
    if (t == (time_t)-1)
        return -1;
    return (int64_t)t <= now_s ? 0 : ((int64_t)t - now_s) * 1000;
}
