/* SPDX-License-Identifier: MIT */
/* pipeline.h: records from inputs into per-output batches; backpressure; fates back to sources. */
#ifndef LC_PIPELINE_H
#define LC_PIPELINE_H

/*
 * What the pipeline does (docs/internals/pipeline.md tells it at length):
 *
 * - Emit, all or nothing. An input hands a record of one of its sources to
 *   lc_pipeline_emit(); the line is copied into the open batch of every output
 *   the input feeds (one open batch per tenant and output). Room is reserved
 *   in every output first, so a failure leaves no output holding the line and
 *   the input reads it again later; after its `process:` stages nothing fails.
 * - The pending budget. A sealed batch counts its lc_batch_cost in its
 *   output's pending_bytes until the output gives its fate back. When one
 *   output holds its limit (lc_pipeline_pending_limit) every input is paused;
 *   when all are below half of it they are resumed, on the next loop
 *   iteration, never from inside an ack. Each busy source (one with records
 *   in batches not yet done) gets a share of the budget
 *   (lc_pipeline_source_share): a source over it waits (lc_source_over_share),
 *   so one flooding source pauses before the outputs fill.
 * - Sealing and flushing. A batch is sealed and given to its output's send()
 *   when full, when the oldest open batch is batch_wait old, when an output
 *   has max_tenant_batches open and needs one more, and on lc_pipeline_flush
 *   (--once, shutdown). Done batches are reused (LC_BATCH_SPARES per output).
 * - Fates. lc_output_done() releases the batch's marks (committed or not, by
 *   fate) and lowers pending_bytes; called from inside send() it is deferred
 *   to the next loop iteration, so an ack never re-enters an emitting input.
 *
 * Ownership: the pipeline borrows the configuration, the inputs, the outputs
 * and the anomaly detector (lc_pipeline_attach); it owns the batches it has
 * open and spare, and lends a sealed one to its output from send() until
 * lc_output_done(). The state per output (open and spare batches, pending
 * bytes, flush timer) lives in struct lc_output, under "owned by the
 * pipeline". Everything runs on the event loop thread.
 */

#include "core/plugin.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct lc_anomaly;
struct lc_batch;
struct lc_config;
struct lc_labels;
struct lc_source;

/*
 * The pipeline's state, beside what it keeps per output. The agent embeds
 * one (its `pipe`) and inputs and outputs reach it through their `pipeline`
 * pointer. Only pipeline.c writes these fields; others read them, or call.
 */
struct lc_pipeline {
    const struct lc_config *cfg; /* batch_bytes, batch_wait, max_pending_bytes (borrowed) */
    struct lc_input *inputs;     /* paused and resumed (lc_pipeline_attach) */
    size_t ninputs;
    struct lc_output *outputs; /* filled */
    size_t noutputs;
    struct lc_anomaly *anomaly; /* shown every record queued; NULL: none */
    bool paused;                /* backpressure: inputs were told to pause */
    bool stopping;              /* inputs are stopping: never resumed again */
    bool in_send;               /* inside a plugin's send(): fates are deferred */
    bool resume_due;            /* inputs resume when defer_timer runs */
    /* sources with records in batches not yet done (lc_pipeline_source_share) */
    uint32_t busy_sources;
    struct lc_batch *deferred; /* fates given from inside send(), linked by ->next */
    uv_timer_t defer_timer;    /* runs deferred batch fates and input resumes */
    uint64_t next_batch_id;
    struct lc_metric_series *m_paused; /* log_capturer_pipeline_paused */
};

/*
 * Makes p empty: borrows cfg (it must outlive p), inits its timer on loop and
 * registers log_capturer_pipeline_paused. Cannot fail. p is usable once
 * lc_pipeline_attach gave it its inputs and outputs; lc_pipeline_close ends it.
 */
void lc_pipeline_init(struct lc_pipeline *p, uv_loop_t *loop, const struct lc_config *cfg);
/*
 * The inputs p pauses and resumes, the outputs it fills (arrays borrowed:
 * they must outlive p; the counts are how many were initialized) and the
 * anomaly detector each queued record is shown to (NULL: none).
 */
void lc_pipeline_attach(struct lc_pipeline *p, struct lc_input *inputs, size_t ninputs,
                        struct lc_output *outputs, size_t noutputs, struct lc_anomaly *anomaly);
/* Inputs are stopping: they are never resumed again (shutdown). */
void lc_pipeline_stopping(struct lc_pipeline *p);
/*
 * Closes p's timer (idempotent). The memory of p is the caller's; it must
 * stay valid until the loop ran the close callbacks (uv_run).
 */
void lc_pipeline_close(struct lc_pipeline *p);

/*
 * Emits one record of `src` to every output of `in`: the line is copied into
 * each output's open batch; full batches are sent. All or nothing: room is
 * reserved in every output first, so on failure no output holds the line.
 *
 * Returns 0, or a negative errno with nothing added anywhere: -ENOMEM, or
 * -ENOBUFS when src's mark ring is full (lc_source_writable() was false). The
 * failure is counted (log_capturer_input_emit_failures_total{input}) and
 * logged here; the caller MUST then stop before this line: no checkpoint past
 * it, and read it again later from a timer (not at once, in a loop).
 * A line longer than an output's batch_bytes is cut, counted per output.
 */
int lc_pipeline_emit(struct lc_input *in, struct lc_source *src, int64_t ts_ns, const char *line,
                     size_t len);
/* The same with labels other than the source's own (owned by src: lc_source_labels or
 * lc_source_extra_labels). */
int lc_pipeline_emit_labels(struct lc_input *in, struct lc_source *src,
                            const struct lc_labels *labels, int64_t ts_ns, const char *line,
                            size_t len);
/* True while inputs must not read (some output holds max_pending_bytes). */
bool lc_pipeline_paused(const struct lc_pipeline *p);
/* Bytes an output may hold before inputs pause: max_pending_bytes, or with 0
 * room for 3 of its batches, at least 8 MiB. */
int64_t lc_pipeline_pending_limit(const struct lc_output *out);
/* An output's batch size: its own batch_bytes, else the top-level one. */
int64_t lc_pipeline_batch_bytes(const struct lc_output *out);
/*
 * A source's share of the pending budget: the outputs' limits over the busy
 * sources, at least 4 batches of each output; INT64_MAX while fewer than two
 * sources are busy (alone, a source has the whole budget).
 */
int64_t lc_pipeline_source_share(const struct lc_pipeline *p);
/* A source has records in batches not yet done (busy), or no more (core/source.c's). */
void lc_pipeline_source_busy(struct lc_pipeline *p, bool busy);
/*
 * Done batches each output keeps for reuse (log_capturer_output_spare_batches):
 * a busy output reuses them instead of allocating batch_bytes per batch, an
 * idle one holds at most this many.
 */
#define LC_BATCH_SPARES 2
/* Frees out's spare batches (the agent's end). */
void lc_pipeline_free_spares(struct lc_output *out);
/* Frees out's open batches unsent, their marks released as failed (read again after a restart). */
void lc_pipeline_drop_open(struct lc_output *out);
/* Seals and sends every open batch now (--once, shutdown). */
void lc_pipeline_flush(struct lc_pipeline *p);
/* True when no output holds a batch. */
bool lc_pipeline_idle(const struct lc_pipeline *p);

/*
 * For outputs: the batch's fate is known; releases its marks and frees it.
 * Safe to call from inside send(): the pipeline then defers it to the next
 * loop iteration, so acks never re-enter an input that is emitting.
 */
void lc_output_done(struct lc_output *out, struct lc_batch *b, enum lc_batch_fate fate);

#endif
