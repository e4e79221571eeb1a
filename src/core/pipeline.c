/* SPDX-License-Identifier: MIT */
/* pipeline.c: records from inputs into per-output batches; backpressure; acks back to sources. */
#include "core/pipeline.h"

#include "core/anomaly.h"
#include "core/batch.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/source.h"
#include "process/stage.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * A record costs a few bytes besides its line in a batch; budget record slots
 * for short lines (48 bytes average) so the arena, not the slot array, is
 * what normally fills a batch.
 */
static uint32_t recs_for(int64_t bytes)
{
    return (uint32_t)(bytes / 48 + 64);
}

int64_t lc_pipeline_batch_bytes(const struct lc_output *out)
{
    return out->conf->batch_bytes ? out->conf->batch_bytes : out->pipeline->cfg->batch_bytes;
}

static int64_t batch_wait_ms(const struct lc_output *out)
{
    return out->conf->batch_wait_ms ? out->conf->batch_wait_ms : out->pipeline->cfg->batch_wait_ms;
}

static void schedule_deferred(struct lc_pipeline *p);
static void on_flush_timer(uv_timer_t *t);
static void on_defer_timer(uv_timer_t *t);

void lc_pipeline_init(struct lc_pipeline *p, uv_loop_t *loop, const struct lc_config *cfg)
{
    memset(p, 0, sizeof(*p));
    p->cfg = cfg;
    p->m_paused = lc_metric_simple(LC_GAUGE, "log_capturer_pipeline_paused",
                                   "1 while inputs are paused because an output is full.");
    uv_timer_init(loop, &p->defer_timer);
    p->defer_timer.data = p;
}

void lc_pipeline_attach(struct lc_pipeline *p, struct lc_input *inputs, size_t ninputs,
                        struct lc_output *outputs, size_t noutputs, struct lc_anomaly *anomaly)
{
    p->inputs = inputs;
    p->ninputs = ninputs;
    p->outputs = outputs;
    p->noutputs = noutputs;
    p->anomaly = anomaly;
}

void lc_pipeline_stopping(struct lc_pipeline *p)
{
    p->stopping = true;
}

void lc_pipeline_close(struct lc_pipeline *p)
{
    if (!uv_is_closing((uv_handle_t *)&p->defer_timer))
        uv_close((uv_handle_t *)&p->defer_timer, NULL);
}

bool lc_pipeline_paused(const struct lc_pipeline *p)
{
    return p->paused;
}

/*
 * An output's max_pending_bytes: as set, or by default (0) room for 3 of its
 * batches (one filling, one encoding, one on the wire), at least 8 MiB (5
 * batches at the defaults: a Loki output's 4 requests busy and one filling);
 * a fixed 8 MiB would hold one 4 MiB batch at a time.
 */
int64_t lc_pipeline_pending_limit(const struct lc_output *out)
{
    int64_t set = out->pipeline->cfg->max_pending_bytes;
    int64_t bytes = lc_pipeline_batch_bytes(out);
    int64_t three = 3 * (bytes + (int64_t)recs_for(bytes) * (int64_t)sizeof(struct lc_record));

    if (set)
        return set;
    return three > ((int64_t)8 << 20) ? three : (int64_t)8 << 20;
}

/* True if some output holds its limit (half of it: the resume threshold). */
static bool over_limit(const struct lc_pipeline *p, bool half)
{
    for (size_t i = 0; i < p->noutputs; i++) {
        int64_t limit = lc_pipeline_pending_limit(&p->outputs[i]);
        if (p->outputs[i].pending_bytes >= (half ? limit / 2 : limit))
            return true;
    }
    return false;
}

/*
 * Pauses inputs when an output holds max_pending_bytes, resumes them when all
 * are below half of it, so a full output does not make inputs flap.
 */
static void update_pause(struct lc_pipeline *p)
{
    if (!p->paused && over_limit(p, false)) {
        p->paused = true;
        lc_gauge_set(p->m_paused, 1);
        lc_log(LC_LOG_DEBUG, "pipeline", "outputs full: inputs paused");
        for (size_t i = 0; i < p->ninputs; i++)
            if (p->inputs[i].plugin->pause && p->inputs[i].ctx)
                p->inputs[i].plugin->pause(&p->inputs[i]);
    } else if (p->paused && !over_limit(p, true)) {
        p->paused = false;
        lc_gauge_set(p->m_paused, 0);
        lc_log(LC_LOG_DEBUG, "pipeline", "outputs drained: inputs resumed");
        /* never from inside an ack: the input may be in the middle of emitting */
        p->resume_due = true;
        schedule_deferred(p);
    }
}

static void schedule_deferred(struct lc_pipeline *p)
{
    uv_timer_start(&p->defer_timer, on_defer_timer, 0, 0);
}

static void resume_inputs(struct lc_pipeline *p)
{
    for (size_t i = 0; i < p->ninputs; i++)
        if (p->inputs[i].plugin->resume && p->inputs[i].ctx && !p->stopping)
            p->inputs[i].plugin->resume(&p->inputs[i]);
}

/* A share below this many batches would leave an output idle between acks (the default
 * max_inflight is 4): throughput, not only fairness. */
#define LC_SHARE_MIN_BATCHES 4

int64_t lc_pipeline_source_share(const struct lc_pipeline *p)
{
    int64_t share = 0, floor = 0;

    if (!p->cfg || p->busy_sources < 2)
        return INT64_MAX; /* alone: the whole budget (outputs full pause every input) */
    for (size_t i = 0; i < p->noutputs; i++) {
        share += lc_pipeline_pending_limit(&p->outputs[i]);
        floor += LC_SHARE_MIN_BATCHES * lc_pipeline_batch_bytes(&p->outputs[i]);
    }
    if (!p->noutputs) {
        share = p->cfg->max_pending_bytes;
        floor = LC_SHARE_MIN_BATCHES * p->cfg->batch_bytes;
    }
    share /= (int64_t)p->busy_sources;
    if (share < floor) /* each output's own batch size (batch_bytes may be set per output) */
        share = floor;
    return share;
}

void lc_pipeline_source_busy(struct lc_pipeline *p, bool busy)
{
    if (busy)
        p->busy_sources++;
    else
        p->busy_sources--;
}

/*
 * A done batch with its whole capacity goes to the output's spare list (at
 * most LC_BATCH_SPARES), so a busy output does not allocate a batch per batch;
 * a trimmed one is freed.
 */
static void recycle(struct lc_output *out, struct lc_batch *b)
{
    int64_t bytes = lc_pipeline_batch_bytes(out);

    if (out->nspare >= LC_BATCH_SPARES || !lc_batch_whole(b, (uint32_t)bytes, recs_for(bytes))) {
        lc_batch_free(b);
        return;
    }
    lc_batch_reset(b);
    b->next = out->spare;
    out->spare = b;
    out->nspare++;
    lc_gauge_set(out->m_spare, out->nspare);
}

void lc_pipeline_free_spares(struct lc_output *out)
{
    while (out->spare) {
        struct lc_batch *b = out->spare;
        out->spare = b->next;
        lc_batch_free(b);
    }
    out->nspare = 0;
    lc_gauge_set(out->m_spare, 0);
}

static uint32_t max_open(const struct lc_output *out)
{
    return out->conf->max_tenant_batches ? (uint32_t)out->conf->max_tenant_batches
                                         : LC_TENANT_BATCHES_DEFAULT;
}

/* Takes b off the output's open list. */
static void unlink_open(struct lc_output *out, struct lc_batch *b)
{
    struct lc_batch **pp = &out->open;

    while (*pp && *pp != b)
        pp = &(*pp)->next;
    if (!*pp)
        return;
    *pp = b->next;
    b->next = NULL;
    out->nopen--;
    lc_gauge_set(out->m_open, out->nopen);
}

/* The flush timer runs for the oldest open batch (the list's head): its batch_wait. */
static void arm_flush(struct lc_output *out)
{
    int64_t left;

    if (out->flush_timer_on) {
        uv_timer_stop(&out->flush_timer);
        out->flush_timer_on = false;
    }
    if (!out->open)
        return;
    left = out->open->created_ns + batch_wait_ms(out) * LC_NS_PER_MSEC - lc_mono_ns();
    left = left > 0 ? (left + LC_NS_PER_MSEC - 1) / LC_NS_PER_MSEC : 0;
    uv_timer_start(&out->flush_timer, on_flush_timer, (uint64_t)left, 0);
    out->flush_timer_on = true;
}

/* Seals open batch b and hands it to the plugin (an empty one is recycled). */
static void seal(struct lc_output *out, struct lc_batch *b)
{
    unlink_open(out, b);
    if (b->n == 0) {
        lc_batch_release_marks(b, true);
        recycle(out, b);
        return;
    }
    lc_batch_trim(b); /* a batch sealed by age holds what it carries, not a whole arena */
    out->pending_bytes += lc_batch_cost(b);
    out->pending_batches++;
    lc_gauge_set(out->m_pending, out->pending_bytes);
    lc_counter_inc(out->m_batches);
    lc_counter_add(out->m_records, b->n);
    out->pipeline->in_send = true;
    out->plugin->send(out, b);
    out->pipeline->in_send = false;
    update_pause(out->pipeline);
}

/* Seals every open batch. */
static void send_open(struct lc_output *out)
{
    while (out->open)
        seal(out, out->open);
    arm_flush(out);
}

void lc_pipeline_drop_open(struct lc_output *out)
{
    if (out->flush_timer_on) {
        uv_timer_stop(&out->flush_timer);
        out->flush_timer_on = false;
    }
    while (out->open) {
        struct lc_batch *b = out->open;
        unlink_open(out, b);
        lc_batch_release_marks(b, false);
        lc_batch_free(b);
    }
}

static void on_flush_timer(uv_timer_t *t)
{
    struct lc_output *out = t->data;
    /* within a millisecond of its age: the timer's resolution */
    int64_t due = lc_mono_ns() + LC_NS_PER_MSEC - batch_wait_ms(out) * LC_NS_PER_MSEC;

    out->flush_timer_on = false;
    while (out->open && out->open->created_ns <= due)
        seal(out, out->open);
    arm_flush(out);
}

/* The open batch of tenant (len bytes, 0: the output's own), or NULL. */
static struct lc_batch *find_open(const struct lc_output *out, const char *tenant, size_t len)
{
    for (struct lc_batch *b = out->open; b; b = b->next)
        if (lc_batch_is_tenant(b, tenant, len))
            return b;
    return NULL;
}

/*
 * The open batch of tenant, or a new one (appended: the list stays oldest
 * first). With max_tenant_batches open already, the oldest is sealed first,
 * so one output never fills more than that many batches at once.
 */
static struct lc_batch *open_batch(struct lc_output *out, const char *tenant, size_t tlen)
{
    int64_t bytes = lc_pipeline_batch_bytes(out);
    struct lc_batch *b = find_open(out, tenant, tlen), **pp;

    if (b)
        return b;
    if (out->nopen >= max_open(out)) {
        if (out->open->n) {
            lc_counter_inc(out->m_tenant_sealed);
            lc_logf(LC_LOG_INFO, "pipeline", NULL,
                    "output %s: %u tenants' batches open (max_tenant_batches): the oldest is "
                    "sent early",
                    out->conf->name, out->nopen);
        }
        seal(out, out->open);
    }
    if (out->spare) {
        b = out->spare;
        out->spare = b->next;
        b->next = NULL;
        out->nspare--;
        lc_gauge_set(out->m_spare, out->nspare);
    } else {
        b = lc_batch_new((uint32_t)bytes, recs_for(bytes));
        if (!b)
            return NULL;
    }
    b->out = out;
    b->id = ++out->pipeline->next_batch_id;
    b->created_ns = lc_mono_ns();
    lc_batch_set_tenant(b, tenant, tlen);
    for (pp = &out->open; *pp; pp = &(*pp)->next)
        ;
    *pp = b;
    out->nopen++;
    lc_gauge_set(out->m_open, out->nopen);
    if (!out->flush_timer_on)
        arm_flush(out);
    return b;
}

int lc_pipeline_emit(struct lc_input *in, struct lc_source *src, int64_t ts_ns, const char *line,
                     size_t len)
{
    return lc_pipeline_emit_labels(in, src, lc_source_labels(src), ts_ns, line, len);
}

static int reserve_all(struct lc_input *in, const struct lc_source *src, size_t len,
                       const char *tenant, size_t tlen);
static int commit_all(struct lc_input *in, struct lc_source *src, const struct lc_labels *labels,
                      int64_t ts_ns, const char *line, size_t len, const char *meta, size_t mlen,
                      const char *tenant, size_t tlen);

/* Counts and logs a line the pipeline could not queue; returns rc for the input. */
static int emit_failed(struct lc_input *in, int rc)
{
    lc_counter_inc(in->m_emit_failed);
    lc_logf(LC_LOG_WARN, "pipeline", NULL,
            "input %s: a line could not be queued (%s): it is read again later", in->conf->name,
            strerror(-rc));
    return rc;
}

int lc_pipeline_emit_labels(struct lc_input *in, struct lc_source *src,
                            const struct lc_labels *labels, int64_t ts_ns, const char *line,
                            size_t len)
{
    bool staged = false;
    const char *meta = NULL, *tenant = "";
    size_t mlen = 0, tlen = 0;
    int rc;

    if (in->chain) {
        /*
         * Room first, for the line as read: a line the stages took in (a
         * multiline stage holds it) must not be refused after, or reading it
         * again would feed it twice. The record they give back may be longer
         * (a merged one): its own reservation below can then fail only for
         * memory, and that loss is counted and logged. The tenant is not
         * known yet: any open batch will do (one is opened only when none is).
         */
        rc = reserve_all(in, src, len, NULL, 0);
        if (rc)
            return emit_failed(in, rc);
        /* a record the stages drop or hold is done here (its mark commits without it) */
        struct lc_prec *r = lc_chain_run(in->chain, src, labels, ts_ns, line, len);
        if (!r)
            return 0;
        labels = r->labels;
        ts_ns = r->ts_ns;
        line = r->line;
        len = r->len;
        src = r->src;
        meta = r->meta;
        mlen = r->meta_len;
        tenant = r->tenant;
        tlen = r->tenant_len;
        staged = true;
    }
    rc = reserve_all(in, src, len + mlen, tenant, tlen);
    if (rc == 0)
        rc = commit_all(in, src, labels, ts_ns, line, len, meta, mlen, tenant, tlen);
    /* after the commit: a line read again after a failure is counted once */
    if (rc == 0)
        lc_anomaly_record(in->pipeline->anomaly, in, (struct lc_labels *)labels, line, len);
    if (rc && staged) {
        /* the stages consumed the line: reading it again would feed it twice */
        lc_counter_inc(in->m_emit_failed);
        lc_logf(LC_LOG_ERROR, "pipeline", NULL,
                "input %s: a processed record was lost (%s): out of memory after its stages",
                in->conf->name, strerror(-rc));
        return 0;
    }
    return rc ? emit_failed(in, rc) : 0;
}

/* The config keeps max_line_bytes below batch_bytes; this only guards it. */
static size_t fitting_len(const struct lc_output *out, size_t len)
{
    size_t cap = (size_t)lc_pipeline_batch_bytes(out);

    return len > cap ? cap : len;
}

/*
 * What opening a batch for src needs, ahead: a free mark slot (or its open
 * mark) and a spare batch. 0, -ENOBUFS or -ENOMEM.
 */
static int spare_ready(struct lc_output *out, const struct lc_source *src)
{
    int64_t bytes = lc_pipeline_batch_bytes(out);
    struct lc_batch *b;

    if (!lc_source_writable(src))
        return -ENOBUFS;
    if (out->spare)
        return 0;
    b = lc_batch_new((uint32_t)bytes, recs_for(bytes));
    if (!b)
        return -ENOMEM;
    b->next = out->spare;
    out->spare = b;
    out->nspare++;
    lc_gauge_set(out->m_spare, out->nspare);
    return 0;
}

/*
 * Room for one record of src in out's open batch of tenant (tlen bytes, 0:
 * the output's own; NULL: the newest open batch, whichever tenant), or in a
 * fresh one (the full batch is sent: that adds no record). Nothing else
 * changes.
 */
static int reserve_one(struct lc_output *out, const struct lc_source *src, size_t len,
                       const char *tenant, size_t tlen)
{
    char t[LC_TENANT_MAX + 1];
    struct lc_batch *b = NULL;
    int rc;

    if (!tenant) {
        for (b = out->open; b && b->next; b = b->next)
            ;
        if (!b) /* none open: the one the record opens after its stages must not need memory */
            return spare_ready(out, src);
    }
    if (!b)
        b = open_batch(out, tenant ? tenant : "", tenant ? tlen : 0);
    if (!b)
        return -ENOMEM;
    len = fitting_len(out, len);
    rc = lc_batch_reserve(b, src, len);
    if (rc != -ENOSPC)
        return rc;
    tlen = strlen(b->tenant); /* b is recycled when sealed */
    memcpy(t, b->tenant, tlen + 1);
    seal(out, b);
    arm_flush(out);
    b = open_batch(out, t, tlen);
    if (!b)
        return -ENOMEM;
    return lc_batch_reserve(b, src, len);
}

/* Every output first, so that a failure leaves no output holding the line. */
static int reserve_all(struct lc_input *in, const struct lc_source *src, size_t len,
                       const char *tenant, size_t tlen)
{
    for (size_t i = 0; i < in->nouts; i++) {
        int rc = reserve_one(in->outs[i], src, len, tenant, tlen);
        if (rc)
            return rc;
    }
    return 0;
}

/*
 * After reserve_all nothing here allocates or can fail. A record's metadata
 * block (mlen bytes) travels whole or not at all: it takes its room first
 * (it is bounded far below batch_bytes), unless it is more than half of it.
 */
static int commit_all(struct lc_input *in, struct lc_source *src, const struct lc_labels *labels,
                      int64_t ts_ns, const char *line, size_t len, const char *meta, size_t mlen,
                      const char *tenant, size_t tlen)
{
    for (size_t i = 0; i < in->nouts; i++) {
        struct lc_output *out = in->outs[i];
        struct lc_batch *b = find_open(out, tenant, tlen);
        size_t m = mlen > fitting_len(out, SIZE_MAX) / 2 ? 0 : mlen;
        size_t n = fitting_len(out, len + m) - m;
        int rc;

        if (n < len || m < mlen) {
            lc_counter_inc(out->m_cut);
            lc_logf(LC_LOG_WARN, "pipeline", NULL,
                    "output %s: a line of %zu bytes (%zu of structured metadata) cut at "
                    "batch_bytes (%zu)",
                    out->conf->name, len, mlen, n);
        }
        rc = b ? lc_batch_add_meta(b, src, ts_ns, labels, line, n, m ? meta : NULL, m) : -ENOENT;
        if (rc) {
            /* a broken reservation: outputs before this one hold the line (read again: a
             * duplicate there, never a loss) */
            lc_logf(LC_LOG_ERROR, "pipeline", NULL, "output %s: a reserved record was refused",
                    out->conf->name);
            return rc;
        }
    }
    return 0;
}

void lc_pipeline_flush(struct lc_pipeline *p)
{
    for (size_t i = 0; i < p->noutputs; i++) {
        struct lc_output *out = &p->outputs[i];
        send_open(out);
        if (out->plugin->flush && out->ctx)
            out->plugin->flush(out);
    }
}

bool lc_pipeline_idle(const struct lc_pipeline *p)
{
    if (p->deferred)
        return false;
    for (size_t i = 0; i < p->noutputs; i++) {
        if (p->outputs[i].pending_batches)
            return false;
        for (const struct lc_batch *b = p->outputs[i].open; b; b = b->next)
            if (b->n)
                return false;
    }
    return true;
}

static void batch_done(struct lc_output *out, struct lc_batch *b, enum lc_batch_fate fate);

static void on_defer_timer(uv_timer_t *t)
{
    struct lc_pipeline *p = t->data;
    struct lc_batch *list = p->deferred;

    p->deferred = NULL;
    while (list) {
        struct lc_batch *b = list;
        list = b->next;
        batch_done(b->out, b, b->fate);
    }
    if (p->resume_due && !p->paused) {
        p->resume_due = false;
        resume_inputs(p);
    }
}

void lc_output_done(struct lc_output *out, struct lc_batch *b, enum lc_batch_fate fate)
{
    struct lc_pipeline *p = out->pipeline;

    if (p->in_send) {
        b->fate = fate;
        b->out = out;
        b->next = p->deferred;
        p->deferred = b;
        schedule_deferred(p);
        return;
    }
    batch_done(out, b, fate);
}

static void batch_done(struct lc_output *out, struct lc_batch *b, enum lc_batch_fate fate)
{
    lc_counter_inc(out->m_fate[fate]);
    out->pending_bytes -= lc_batch_cost(b);
    out->pending_batches--;
    lc_gauge_set(out->m_pending, out->pending_bytes);
    if (fate == LC_FATE_FAILED)
        lc_logf(LC_LOG_WARN, "pipeline", NULL,
                "output %s could not deliver batch %llu (%u records): it will be read again "
                "after a restart",
                out->conf->name, (unsigned long long)b->id, b->n);
    lc_batch_release_marks(b, fate != LC_FATE_FAILED);
    recycle(out, b);
    update_pause(out->pipeline);
}
