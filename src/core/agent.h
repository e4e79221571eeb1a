/* SPDX-License-Identifier: MIT */
/* agent.h: the running agent: loop, inputs, pipeline, outputs, checkpoints, shutdown. */
#ifndef LC_AGENT_H
#define LC_AGENT_H

#include "core/clock.h"
#include "core/pipeline.h"
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
    struct lc_pipeline pipe;   /* core/pipeline.h; inputs and outputs point to it */
    bool once;
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
    uv_timer_t sd_watchdog_timer; /* systemd's WATCHDOG=1, every half of WATCHDOG_USEC */
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

/* For plugins: stop() finished. */
void lc_output_stopped(struct lc_output *out);
void lc_input_stopped(struct lc_input *in);

/* Sources register with the agent so their commits reach the checkpoint store. */
void lc_agent_add_source(struct lc_agent *a, struct lc_source *s);

#endif
