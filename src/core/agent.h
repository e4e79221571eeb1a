/* SPDX-License-Identifier: MIT */
/* agent.h: the running agent: loop, inputs, pipeline, outputs, checkpoints, shutdown. */
#ifndef LC_AGENT_H
#define LC_AGENT_H

#include "core/clock.h"
#include "core/plugin.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct lc_ckpt;
struct lc_worker;
struct lc_labels;
struct lc_http;
struct lc_watchdog;
struct lc_anomaly;

struct lc_agent {
    uv_loop_t *loop;
    struct lc_config *cfg;
    struct lc_ckpt *ckpt;
    struct lc_worker *worker; /* the disk worker thread: checkpoint flushes, DLQ, fsyncs */
    struct lc_http *http;
    struct lc_input *inputs;
    size_t ninputs;
    struct lc_output *outputs;
    size_t noutputs;
    struct lc_source *sources; /* every live source, for checkpoint flushes */
    bool once;
    bool paused; /* backpressure: inputs were told to pause */
    /* sources with records in batches not yet done (lc_source_over_share) */
    uint32_t busy_sources;
    bool stopping;
    bool disk_cancelled;        /* shutdown deadline: disk jobs not started were cancelled */
    struct lc_config *next_cfg; /* SIGHUP: validated, runs once this one drained */
    int exit_code;
    int64_t stop_deadline_ns;
    size_t inputs_running;
    size_t outputs_running;
    uv_signal_t sig_int, sig_term, sig_hup;
    uv_timer_t ckpt_timer;        /* debounced checkpoint flush */
    uv_timer_t once_timer;        /* --once: polls for caught up and drained */
    uv_timer_t stop_timer;        /* shutdown deadline */
    uv_timer_t defer_timer;       /* runs deferred batch fates and input resumes */
    uv_timer_t sd_watchdog_timer; /* systemd's WATCHDOG=1, every half of WATCHDOG_USEC */
    struct lc_batch *deferred;
    bool in_send; /* inside a plugin's send(): fates are deferred */
    bool resume_due;
    uint64_t next_batch_id;
    struct lc_metric_series *m_paused;
    struct lc_watchdog *watchdog; /* NULL when watchdog.enabled is false */
    uv_timer_t watchdog_timer;    /* the leak watchdog's samples */
    struct lc_anomaly *anomaly;   /* NULL unless anomaly.enabled */
    uv_timer_t anomaly_timer;
    /* periodic checkpoint flushes failed in a row, and the last one's error (0: none) */
    uint64_t ckpt_failures;
    int ckpt_fail_rc;
};

/*
 * Runs the agent until SIGINT/SIGTERM (or, with once, until every input is
 * caught up and every batch is done). Takes ownership of cfg. Returns the
 * process exit code: 0 clean, 1 runtime failure.
 *
 * SIGHUP reloads: the configuration file is loaded again; if it is invalid the
 * error is logged and the agent runs on unchanged. If it is valid, the agent
 * drains exactly as for a shutdown (every delivered position committed) and
 * starts again with the new configuration in the same process; the HTTP
 * server stays up when `listen` did not change.
 */
int lc_agent_run(struct lc_config *cfg, bool once);

/* Pipeline (core/pipeline.c) ------------------------------------------------ */

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
bool lc_pipeline_paused(const struct lc_agent *a);
/* Bytes an output may hold before inputs pause: max_pending_bytes, or with 0
 * room for 3 of its batches, at least 8 MiB. */
int64_t lc_pipeline_pending_limit(const struct lc_output *out);
/* An output's batch size: its own batch_bytes, else the top-level one. */
int64_t lc_pipeline_batch_bytes(const struct lc_output *out);
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
void lc_pipeline_flush(struct lc_agent *a);
/* True when no output holds a batch. */
bool lc_pipeline_idle(const struct lc_agent *a);

/*
 * For outputs: the batch's fate is known; releases its marks and frees it.
 * Safe to call from inside send(): the pipeline then defers it to the next
 * loop iteration, so acks never re-enter an input that is emitting.
 */
void lc_output_done(struct lc_output *out, struct lc_batch *b, enum lc_batch_fate fate);
/* For plugins: stop() finished. */
void lc_output_stopped(struct lc_output *out);
void lc_input_stopped(struct lc_input *in);

/* Sources register with the agent so their commits reach the checkpoint store. */
void lc_agent_add_source(struct lc_agent *a, struct lc_source *s);

#endif
