/* SPDX-License-Identifier: MIT */
/* breaker.h: a circuit breaker (closed, open, half-open) for one output. */
#ifndef LC_BREAKER_H
#define LC_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Closed: requests flow; `threshold` consecutive failures open it. Open: no
 * request is sent until `cooldown` passed; then it is half-open and lets
 * exactly one probe through. The probe's success closes it, its failure opens
 * it again for another cooldown. Any success closes it (a request sent before
 * it opened may still succeed). What counts as a failure is the caller's
 * choice (for Loki: 429, 5xx, timeouts, connection errors; a 4xx answer is a
 * living server, a success here). threshold 0 disables the breaker.
 * Plain struct in caller storage, no resources; one thread.
 */
enum lc_breaker_state { LC_BREAKER_CLOSED = 0, LC_BREAKER_OPEN = 1, LC_BREAKER_HALF_OPEN = 2 };

struct lc_breaker {
    enum lc_breaker_state state;
    uint32_t threshold;
    uint32_t failures; /* consecutive, while closed */
    int64_t cooldown_ns;
    int64_t opened_ns;
    bool probing;   /* half-open: the probe is in flight */
    uint64_t opens; /* how many times it opened */
};

void lc_breaker_init(struct lc_breaker *b, uint32_t threshold, int64_t cooldown_ms);
/*
 * May a request be sent at now_ns? Moves open to half-open once the cooldown
 * passed. A caller that then sends must call lc_breaker_on_send().
 */
bool lc_breaker_can_send(struct lc_breaker *b, int64_t now_ns);
/* A request is leaving (half-open: it is the probe). */
void lc_breaker_on_send(struct lc_breaker *b);
void lc_breaker_success(struct lc_breaker *b);
void lc_breaker_failure(struct lc_breaker *b, int64_t now_ns);
/*
 * A failure that every request would meet (bad credentials): opens at once,
 * whatever the count, unless the breaker is disabled or already open.
 */
void lc_breaker_trip(struct lc_breaker *b, int64_t now_ns);
/* When an open breaker turns half-open; 0 unless open. */
int64_t lc_breaker_reopen_ns(const struct lc_breaker *b);
/* "closed", "open", "half-open". */
const char *lc_breaker_state_name(enum lc_breaker_state s);

#endif
