/* SPDX-License-Identifier: MIT */
/* breaker.c: a circuit breaker (closed, open, half-open) for one output. */
#include "output/breaker.h"

#include "core/record-t.h"

void lc_breaker_init(struct lc_breaker *b, uint32_t threshold, int64_t cooldown_ms)
{
    *b = (struct lc_breaker){
        .state = LC_BREAKER_CLOSED,
        .threshold = threshold,
        .cooldown_ns = cooldown_ms * LC_NS_PER_MSEC,
    };
}

bool lc_breaker_can_send(struct lc_breaker *b, int64_t now_ns)
{
    switch (b->state) {
    case LC_BREAKER_CLOSED:
        return true;
    case LC_BREAKER_OPEN:
        if (now_ns < b->opened_ns + b->cooldown_ns)
            return false;
        b->state = LC_BREAKER_HALF_OPEN;
        b->probing = false;
        return true;
    case LC_BREAKER_HALF_OPEN:
        return !b->probing;
    }
    return false;
}

void lc_breaker_on_send(struct lc_breaker *b)
{
    if (b->state == LC_BREAKER_HALF_OPEN)
        b->probing = true;
}

void lc_breaker_success(struct lc_breaker *b)
{
    b->state = LC_BREAKER_CLOSED;
    b->failures = 0;
    b->probing = false;
}

static void open_at(struct lc_breaker *b, int64_t now_ns)
{
    b->state = LC_BREAKER_OPEN;
    b->opened_ns = now_ns;
    b->probing = false;
    b->failures = 0;
    b->opens++;
}

void lc_breaker_failure(struct lc_breaker *b, int64_t now_ns)
{
    switch (b->state) {
    case LC_BREAKER_CLOSED:
        if (b->threshold == 0)
            return;
        if (++b->failures >= b->threshold)
            open_at(b, now_ns);
        return;
    case LC_BREAKER_HALF_OPEN:
        open_at(b, now_ns);
        return;
    case LC_BREAKER_OPEN:
        return; /* a request sent before it opened: the cooldown stands */
    }
}

void lc_breaker_trip(struct lc_breaker *b, int64_t now_ns)
{
    if (b->threshold == 0 || b->state == LC_BREAKER_OPEN)
        return;
    open_at(b, now_ns);
}

int64_t lc_breaker_reopen_ns(const struct lc_breaker *b)
{
    return b->state == LC_BREAKER_OPEN ? b->opened_ns + b->cooldown_ns : 0;
}

const char *lc_breaker_state_name(enum lc_breaker_state s)
{
    switch (s) {
    case LC_BREAKER_OPEN:
        return "open";
    case LC_BREAKER_HALF_OPEN:
        return "half-open";
    default:
        return "closed";
    }
}
