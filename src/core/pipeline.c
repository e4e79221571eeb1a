/* SPDX-License-Identifier: MIT */
/* pipeline.c: records from inputs into per-output batches; backpressure; acks back to sources. */
#include "core/agent.h"
#include "core/batch.h"
#include "core/log.h"
#include "core/source.h"
#include "process/stage.h"

#include <errno.h>
#include <stdlib.h>

/*
 * A record costs a few bytes besides its line in a batch; budget record slots
 * for short lines (48 bytes average) so the arena, not the slot array, is
 * what normally fills a batch.
 */
static uint32_t recs_for(int64_t bytes)
{
    return (uint32_t)(bytes / 48 + 64);
}

static int64_t batch_bytes(const struct lc_output *out)
{
    return out->conf->batch_bytes ? out->conf->batch_bytes : out->agent->cfg->batch_bytes;
}

static int64_t batch_wait_ms(const struct lc_output *out)
{
    return out->conf->batch_wait_ms ? out->conf->batch_wait_ms : out->agent->cfg->batch_wait_ms;
}

static int64_t batch_cost(const struct lc_batch *b)
{
    return (int64_t)b->arena_cap + (int64_t)b->recs_cap * (int64_t)sizeof(struct lc_record);
}

static void schedule_deferred(struct lc_agent *a);

bool lc_pipeline_paused(const struct lc_agent *a)
{
    return a->paused;
}

static bool over_limit(const struct lc_agent *a, int64_t limit)
{
    for (size_t i = 0; i < a->noutputs; i++)
        if (a->outputs[i].pending_bytes >= limit)
            return true;
    return false;
}

/*
 * Pauses inputs when an output holds max_pending_bytes, resumes them when all
 * are below half of it, so a full output does not make inputs flap.
 */
static void update_pause(struct lc_agent *a)
{
    int64_t limit = a->cfg->max_pending_bytes;

    if (!a->paused && over_limit(a, limit)) {
        a->paused = true;
        lc_gauge_set(a->m_paused, 1);
        lc_log(LC_LOG_DEBUG, "pipeline", "outputs full: inputs paused");
        for (size_t i = 0; i < a->ninputs; i++)
            if (a->inputs[i].plugin->pause && a->inputs[i].ctx)
                a->inputs[i].plugin->pause(&a->inputs[i]);
    } else if (a->paused && !over_limit(a, limit / 2)) {
        a->paused = false;
        lc_gauge_set(a->m_paused, 0);
        lc_log(LC_LOG_DEBUG, "pipeline", "outputs drained: inputs resumed");
        /* never from inside an ack: the input may be in the middle of emitting */
        a->resume_due = true;
        schedule_deferred(a);
    }
}

static void on_defer_timer(uv_timer_t *t);

static void schedule_deferred(struct lc_agent *a)
{
    uv_timer_start(&a->defer_timer, on_defer_timer, 0, 0);
}

static void resume_inputs(struct lc_agent *a)
{
    for (size_t i = 0; i < a->ninputs; i++)
        if (a->inputs[i].plugin->resume && a->inputs[i].ctx && !a->stopping)
            a->inputs[i].plugin->resume(&a->inputs[i]);
}

static void send_open(struct lc_output *out)
{
    struct lc_batch *b = out->open;

    out->open = NULL;
    if (out->flush_timer_on) {
        uv_timer_stop(&out->flush_timer);
        out->flush_timer_on = false;
    }
    if (!b)
        return;
    if (b->n == 0) {
        lc_batch_release_marks(b, true);
        lc_batch_free(b);
        return;
    }
    out->pending_bytes += batch_cost(b);
    out->pending_batches++;
    lc_gauge_set(out->m_pending, out->pending_bytes);
    lc_counter_inc(out->m_batches);
    lc_counter_add(out->m_records, b->n);
    out->agent->in_send = true;
    out->plugin->send(out, b);
    out->agent->in_send = false;
    update_pause(out->agent);
}

static void on_flush_timer(uv_timer_t *t)
{
    struct lc_output *out = t->data;

    out->flush_timer_on = false;
    send_open(out);
}

static struct lc_batch *open_batch(struct lc_output *out)
{
    struct lc_agent *a = out->agent;
    int64_t bytes = batch_bytes(out);

    if (out->open)
        return out->open;
    out->open = lc_batch_new((uint32_t)bytes, recs_for(bytes));
    if (!out->open)
        return NULL;
    out->open->out = out;
    out->open->id = ++a->next_batch_id;
    out->open->created_ns = lc_mono_ns();
    uv_timer_start(&out->flush_timer, on_flush_timer, (uint64_t)batch_wait_ms(out), 0);
    out->flush_timer_on = true;
    return out->open;
}

int lc_pipeline_emit(struct lc_input *in, struct lc_source *src, int64_t ts_ns, const char *line,
                     size_t len)
{
    return lc_pipeline_emit_labels(in, src, src->labels, ts_ns, line, len);
}

int lc_pipeline_emit_labels(struct lc_input *in, struct lc_source *src,
                            const struct lc_labels *labels, int64_t ts_ns, const char *line,
                            size_t len)
{
    if (in->chain) {
        /* the input's stages; a record they drop is done (its mark commits without it) */
        struct lc_prec *r = lc_chain_run(in->chain, src, labels, ts_ns, line, len);
        if (!r)
            return 0;
        labels = r->labels;
        ts_ns = r->ts_ns;
        line = r->line;
        len = r->len;
    }
    for (size_t i = 0; i < in->nouts; i++) {
        struct lc_output *out = in->outs[i];
        struct lc_batch *b = open_batch(out);
        int rc;

        if (!b)
            return -ENOMEM;
        if (!lc_batch_fits(b, len)) {
            send_open(out);
            b = open_batch(out);
            if (!b)
                return -ENOMEM;
        }
        /* The config keeps max_line_bytes below batch_bytes; this only guards it. */
        if (len > b->arena_cap)
            len = b->arena_cap;
        rc = lc_batch_add(b, src, ts_ns, labels, line, len);
        if (rc)
            return rc;
    }
    return 0;
}

void lc_pipeline_flush(struct lc_agent *a)
{
    for (size_t i = 0; i < a->noutputs; i++) {
        struct lc_output *out = &a->outputs[i];
        send_open(out);
        if (out->plugin->flush && out->ctx)
            out->plugin->flush(out);
    }
}

bool lc_pipeline_idle(const struct lc_agent *a)
{
    if (a->deferred)
        return false;
    for (size_t i = 0; i < a->noutputs; i++)
        if (a->outputs[i].pending_batches || (a->outputs[i].open && a->outputs[i].open->n))
            return false;
    return true;
}

static void batch_done(struct lc_output *out, struct lc_batch *b, enum lc_batch_fate fate);

static void on_defer_timer(uv_timer_t *t)
{
    struct lc_agent *a = t->data;
    struct lc_batch *list = a->deferred;

    a->deferred = NULL;
    while (list) {
        struct lc_batch *b = list;
        list = b->next;
        batch_done(b->out, b, (enum lc_batch_fate)b->attempts);
    }
    if (a->resume_due && !a->paused) {
        a->resume_due = false;
        resume_inputs(a);
    }
}

void lc_output_done(struct lc_output *out, struct lc_batch *b, enum lc_batch_fate fate)
{
    struct lc_agent *a = out->agent;

    if (a->in_send) {
        /* `attempts` is the plugin's no longer: it carries the fate across. */
        b->attempts = (uint32_t)fate;
        b->out = out;
        b->next = a->deferred;
        a->deferred = b;
        schedule_deferred(a);
        return;
    }
    batch_done(out, b, fate);
}

static void batch_done(struct lc_output *out, struct lc_batch *b, enum lc_batch_fate fate)
{
    struct lc_agent *a = out->agent;

    lc_counter_inc(out->m_fate[fate]);
    out->pending_bytes -= batch_cost(b);
    out->pending_batches--;
    lc_gauge_set(out->m_pending, out->pending_bytes);
    if (fate == LC_FATE_FAILED)
        lc_logf(LC_LOG_WARN, "pipeline", NULL,
                "output %s could not deliver batch %llu (%u records): it will be read again "
                "after a restart",
                out->conf->name, (unsigned long long)b->id, b->n);
    lc_batch_release_marks(b, fate != LC_FATE_FAILED);
    lc_batch_free(b);
    update_pause(a);
}
