/* SPDX-License-Identifier: MIT */
/* limit.c: the `limit` stage: a token bucket per stream; records past it are dropped, counted. */
#include "core/clock.h"
#include "process/stage.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * A stream (a source and label set) may pass `rate` records a second on
 * average and `burst` at once; the rest are dropped with reason `rate_limit`
 * (and count as done for acks). Buckets live in a table of `max_streams`
 * slots by hash: streams sharing a slot share a bucket (stricter, never
 * looser), so memory is fixed.
 */
struct lc_limit_conf {
    int64_t rate;
    int64_t burst;
    int64_t max_streams;
};

#define LM(f) offsetof(struct lc_limit_conf, f)

static const struct lc_option limit_options[] = {
    {.type = LC_OPT_INT,
     .key = "rate",
     .offset = LM(rate),
     .min = 1,
     .max = 100000000,
     .flags = LC_OPT_REQUIRED,
     .help = "Records per second a stream may send on average."},
    {.type = LC_OPT_INT,
     .key = "burst",
     .def = "0",
     .offset = LM(burst),
     .min = 0,
     .max = 100000000,
     .help = "Records a stream may send at once (0: rate)."},
    {.type = LC_OPT_INT,
     .key = "max_streams",
     .def = "1024",
     .offset = LM(max_streams),
     .min = 1,
     .max = 1048576,
     .help = "Buckets (streams hash into them; a shared bucket is stricter)."},
    LC_OPT_END,
};

struct bucket {
    double tokens;
    int64_t last_ns;
};

struct limit_ctx {
    struct bucket *b;
    size_t n;
};

static int limit_init(struct lc_stage *st)
{
    const struct lc_limit_conf *c = st->conf;
    struct limit_ctx *x = calloc(1, sizeof(*x));

    if (!x)
        return -ENOMEM;
    st->ctx = x;
    lc_stage_drop_series(st, "rate_limit");
    x->n = (size_t)c->max_streams;
    x->b = calloc(x->n, sizeof(*x->b));
    return x->b ? 0 : -ENOMEM;
}

static void limit_free(struct lc_stage *st)
{
    struct limit_ctx *x = st->ctx;

    if (!x)
        return;
    free(x->b);
    free(x);
    st->ctx = NULL;
}

static enum lc_stage_result limit_run(struct lc_stage *st, struct lc_prec *r)
{
    const struct lc_limit_conf *c = st->conf;
    struct limit_ctx *x = st->ctx;
    uintptr_t h = (uintptr_t)r->src * 31u + (uintptr_t)r->labels;
    struct bucket *b = &x->b[((h >> 4) ^ (h >> 16)) % x->n];
    double burst = (double)(c->burst ? c->burst : c->rate);
    int64_t now = lc_mono_ns();

    if (b->last_ns == 0) {
        b->tokens = burst;
    } else {
        b->tokens += (double)(now - b->last_ns) * (double)c->rate / 1e9;
        if (b->tokens > burst)
            b->tokens = burst;
    }
    b->last_ns = now;
    if (b->tokens < 1.0)
        return lc_prec_drop(st, r, "rate_limit");
    b->tokens -= 1.0;
    return LC_STAGE_PASS;
}

const struct lc_stage_plugin lc_stage_limit = {
    .name = "limit",
    .description = "drops a stream's records past a rate (per second) and burst, counted",
    .options = limit_options,
    .conf_size = sizeof(struct lc_limit_conf),
    .init = limit_init,
    .run = limit_run,
    .free = limit_free,
};
