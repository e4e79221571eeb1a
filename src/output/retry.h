/* SPDX-License-Identifier: MIT */
/* retry.h: a bounded retry queue with due times, a drop policy, backoff and Retry-After parsing. */
#ifndef LC_RETRY_H
#define LC_RETRY_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The queue holds opaque items (an output's batches) with their size and the
 * time they are due again. Its storage is one array allocated at creation
 * with room for max_items + 1: pushing never allocates. It never waits by
 * itself either: the owner arms one timer at lc_retry_next_due(), so however
 * many items wait, they hold no thread, timer or connection each.
 *
 * Limits: after a push the queue may be over max_items or max_bytes by that
 * one item; the owner then calls lc_retry_evict() until it returns NULL and
 * gives each victim to the dead-letter queue. Ownership: items are borrowed
 * pointers; the queue never frees them (drain with lc_retry_pop before
 * lc_retry_free). One thread.
 */
enum lc_retry_drop { LC_RETRY_DROP_OLDEST = 0, LC_RETRY_DROP_NEWEST, LC_RETRY_DROP_RANDOM };

struct lc_retry_conf {
    int64_t initial_ms; /* first backoff (before jitter) */
    int64_t max_ms;     /* backoff ceiling, and the most a Retry-After can delay */
    uint32_t max_items;
    int64_t max_bytes;
    int drop_policy; /* enum lc_retry_drop */
    uint64_t seed;   /* jitter and random drops; 0 picks a random one */
};

struct lc_retry;

/* 0 and *out, -EINVAL (max_items 0, initial > max, initial <= 0), -ENOMEM. */
int lc_retry_new(struct lc_retry **out, const struct lc_retry_conf *conf);
/* Frees the queue (not its items). NULL is a no-op. */
void lc_retry_free(struct lc_retry *q);

/*
 * Adds an item due at due_ns. 0, or -ENOSPC only if the owner did not evict
 * after the previous push (the item is then not queued).
 */
int lc_retry_push(struct lc_retry *q, void *item, int64_t bytes, int64_t due_ns);
/*
 * While the queue is over a limit, removes the victim the drop policy picks
 * (oldest pushed, newest pushed, or random) and returns it with its size in
 * *bytes; NULL when within limits.
 */
void *lc_retry_evict(struct lc_retry *q, int64_t *bytes);
/* True when the next push would put the queue at or over a limit. */
bool lc_retry_full(const struct lc_retry *q);
/* The earliest due time, or INT64_MAX when empty. */
int64_t lc_retry_next_due(const struct lc_retry *q);
/* Removes and returns the item due earliest if it is due at now_ns (ties: oldest). */
void *lc_retry_pop_due(struct lc_retry *q, int64_t now_ns, int64_t *bytes);
/* Removes and returns the oldest item whatever its due time; NULL when empty. */
void *lc_retry_pop(struct lc_retry *q, int64_t *bytes);
/* Brings every due time later than latest_ns forward to latest_ns (flush). */
void lc_retry_expedite(struct lc_retry *q, int64_t latest_ns);
uint32_t lc_retry_count(const struct lc_retry *q);
int64_t lc_retry_bytes(const struct lc_retry *q);

/*
 * The wait before retry number `attempt` (1 = first retry): base =
 * min(max, initial * 2^(attempt-1)), then "equal jitter": base/2 + a random
 * part in [0, base/2], so it is in [base/2, base] and never above max.
 * `rnd` is the random input (pure function, for tests).
 */
int64_t lc_retry_backoff_ms(const struct lc_retry_conf *c, uint32_t attempt, uint64_t rnd);
/*
 * The wait before retry number `attempt` with the queue's random source; a
 * Retry-After of retry_after_ms (>= 0; -1 when the answer had none) is
 * honoured up to max_ms: the wait is the larger of the two.
 */
int64_t lc_retry_delay_ms(struct lc_retry *q, uint32_t attempt, int64_t retry_after_ms);
/*
 * Parses a Retry-After header value: delay-seconds ("120") or an HTTP date
 * (IMF-fixdate, RFC 850 or asctime). Returns milliseconds from now_s (wall
 * clock, seconds), 0 for a date in the past, -1 when empty or invalid.
 */
int64_t lc_retry_after_parse(const char *value, int64_t now_s);
/* The queue's next pseudo-random number (lc_rand_next on its own state). */
uint64_t lc_retry_rand(struct lc_retry *q);

#endif
