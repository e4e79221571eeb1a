/* SPDX-License-Identifier: MIT */
/* agent.c: start-up, the event loop, checkpoint flushes, signals and an orderly shutdown. */
#include "core/agent.h"

#include "core/anomaly.h"
#include "core/batch.h"
#include "core/ckpt.h"
#include "core/http.h"
#include "core/labels.h"
#include "core/log.h"
#include "core/losses.h"
#include "core/notify.h"
#include "core/promtail.h"
#include "core/source.h"
#include "core/watchdog.h"
#include "core/worker.h"
#include "process/stage.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Shutdown, in order (each step waits for the previous one):
 *  1. inputs stop: handles closed, sources released (what they emitted stays
 *     referenced by batches);
 *  2. open batches are sealed and outputs asked to flush; we wait until every
 *     batch has its fate, or until shutdown_timeout;
 *  3. outputs stop: what they still hold comes back as FAILED (not committed,
 *     so read again after a restart);
 *  4. every source's committed position is written, the store flushed, and
 *     the remaining handles closed so uv_run returns.
 */

void lc_agent_add_source(struct lc_agent *a, struct lc_source *s)
{
    lc_source_link(s, &a->sources, a->ckpt);
}

/*
 * A periodic flush ended: the checkpoint store's /health component says how. The store logs
 * each failure (rate-limited per message); here the transitions are logged, so a new cause
 * (disk full, then read-only) and the recovery show even inside a suppressed storm.
 */
static void on_ckpt_flushed(int rc, void *arg)
{
    struct lc_agent *a = arg;
    char detail[128];

    if (rc == 0) {
        if (a->ckpt_failures)
            lc_log(LC_LOG_WARN, "agent",
                   "checkpoint store ok again: a flush succeeded after %" PRIu64 " failed ones",
                   a->ckpt_failures);
        a->ckpt_failures = 0;
        a->ckpt_fail_rc = 0;
        lc_health_set("checkpoints", LC_HEALTH_OK, "ok");
        return;
    }
    snprintf(detail, sizeof(detail), "last flush failed: %s (positions are kept in memory)",
             strerror(-rc));
    a->ckpt_failures++;
    if (rc != a->ckpt_fail_rc)
        lc_log(LC_LOG_WARN, "agent",
               "checkpoint store degraded: %s; lines keep shipping, positions wait in memory "
               "for the next flush",
               detail);
    a->ckpt_fail_rc = rc;
    lc_health_set("checkpoints", LC_HEALTH_DEGRADED, detail);
}

static void flush_checkpoints(struct lc_agent *a)
{
    if (!a->ckpt)
        return; /* start-up failed before the store opened */
    for (size_t i = 0; i < a->ninputs; i++)
        a->inputs[i].nsources = 0;
    for (struct lc_source *s = a->sources; s; s = lc_source_next(s)) {
        struct lc_input *in = lc_source_input(s);
        lc_source_persist(s);
        if (in)
            in->nsources++;
    }
    for (size_t i = 0; i < a->ninputs; i++)
        lc_gauge_set(a->inputs[i].m_sources, a->inputs[i].nsources);
    /* on the disk worker; one in flight at a time, the next tick takes what it missed */
    if (lc_ckpt_dirty(a->ckpt) && !lc_ckpt_flushing(a->ckpt))
        lc_ckpt_flush_start(a->ckpt, a->worker, on_ckpt_flushed, a);
}

/* "input/NAME", "output/NAME": the /health component of an instance. */
static void component_name(char *buf, size_t len, const char *kind, const char *name)
{
    snprintf(buf, len, "%s/%s", kind, name);
}

static void on_ckpt_timer(uv_timer_t *t)
{
    flush_checkpoints(t->data);
    lc_log_flush(); /* a storm that stopped still reports what it suppressed */
}

/* One watchdog sample: /proc/self and the registry, plus the agent's own sources and marks. */
static void on_watchdog_timer(uv_timer_t *t)
{
    struct lc_agent *a = t->data;
    struct lc_wd_sample s;

    if (lc_watchdog_probe(a->watchdog, &s) < 0)
        return;
    for (const struct lc_source *src = a->sources; src; src = lc_source_next(src)) {
        s.v[LC_WD_SOURCES]++;
        s.v[LC_WD_MARKS] += (int64_t)lc_source_marks(src);
    }
    lc_watchdog_add(a->watchdog, lc_mono_ns() / LC_NS_PER_MSEC, &s);
}

static void on_anomaly_timer(uv_timer_t *t)
{
    struct lc_agent *a = t->data;

    lc_anomaly_tick(a->anomaly, lc_mono_ns() / LC_NS_PER_MSEC);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Step 5: the last checkpoint flush is done (or was not possible): close everything. */
static void on_final_flush(int rc, void *arg)
{
    struct lc_agent *a = arg;

    (void)rc; /* logged by the store; what stays buffered is flushed at close */
    lc_worker_close(a->worker);
}

/* Step 4: nothing is in flight any more. */
static void finish(struct lc_agent *a)
{
    /* Sources whose input never released them (a failed start) go now. */
    while (a->sources)
        lc_source_free(a->sources);
    if (!a->ckpt || a->disk_cancelled || lc_ckpt_flushing(a->ckpt) ||
        lc_ckpt_flush_start(a->ckpt, a->worker, on_final_flush, a) != 0)
        lc_worker_close(a->worker); /* closes once the queue is empty; the store flushes at close */
    close_handle((uv_handle_t *)&a->ckpt_timer);
    close_handle((uv_handle_t *)&a->once_timer);
    close_handle((uv_handle_t *)&a->stop_timer);
    lc_pipeline_close(&a->pipe);
    close_handle((uv_handle_t *)&a->watchdog_timer);
    close_handle((uv_handle_t *)&a->sd_watchdog_timer);
    close_handle((uv_handle_t *)&a->anomaly_timer);
    close_handle((uv_handle_t *)&a->sig_int);
    close_handle((uv_handle_t *)&a->sig_term);
    close_handle((uv_handle_t *)&a->sig_hup);
    for (size_t i = 0; i < a->noutputs; i++)
        close_handle((uv_handle_t *)&a->outputs[i].flush_timer);
}

void lc_output_stopped(struct lc_output *out)
{
    struct lc_agent *a = out->agent;

    if (--a->outputs_running == 0)
        finish(a);
}

/* Step 3. */
static void stop_outputs(struct lc_agent *a)
{
    if (a->outputs_running == 0) {
        finish(a);
        return;
    }
    uv_timer_stop(&a->stop_timer);
    uv_timer_stop(&a->once_timer);
    for (size_t i = 0; i < a->noutputs; i++) {
        struct lc_output *out = &a->outputs[i];
        lc_pipeline_drop_open(out); /* nothing new may be sent now */
        out->plugin->stop(out);
    }
}

/* Step 2 polls here until the outputs are idle or the deadline passed. */
static void on_drain_tick(uv_timer_t *t)
{
    struct lc_agent *a = t->data;

    if (lc_pipeline_idle(&a->pipe) || lc_mono_ns() >= a->stop_deadline_ns) {
        if (!lc_pipeline_idle(&a->pipe) && !a->disk_cancelled)
            lc_log(LC_LOG_WARN, "agent",
                   "shutdown deadline reached with batches in flight: they will be read again");
        if (!lc_pipeline_idle(&a->pipe) && lc_worker_depth(a->worker) > 0) {
            /*
             * Disk jobs not started complete as cancelled (their batches
             * fail: read again after a restart); the one running finishes.
             * Their completions must run before the outputs stop.
             */
            a->disk_cancelled = true;
            lc_worker_cancel(a->worker);
            return;
        }
        stop_outputs(a);
        return;
    }
    lc_pipeline_flush(&a->pipe);
}

void lc_input_stopped(struct lc_input *in)
{
    struct lc_agent *a = in->agent;

    /* held multiline records: sent with --once, else read again after the restart */
    lc_chain_stop(in->chain, a->once);
    if (--a->inputs_running > 0)
        return;
    lc_pipeline_flush(&a->pipe);
    uv_timer_start(&a->stop_timer, on_drain_tick, 0, 20);
}

static void begin_stop(struct lc_agent *a, const char *why)
{
    if (a->stopping)
        return;
    a->stopping = true;
    lc_pipeline_stopping(&a->pipe);
    a->stop_deadline_ns = lc_mono_ns() + a->cfg->shutdown_timeout_ms * LC_NS_PER_MSEC;
    lc_health_set_ready(false);
    if (a->next_cfg)
        lc_notify_reloading();
    else
        lc_notify_stopping();
    lc_log(LC_LOG_INFO, "agent", "stopping (%s)", why);
    uv_timer_stop(&a->once_timer);
    if (a->inputs_running == 0) {
        lc_pipeline_flush(&a->pipe);
        uv_timer_start(&a->stop_timer, on_drain_tick, 0, 20);
        return;
    }
    size_t n = a->inputs_running;
    for (size_t i = 0; i < n; i++)
        a->inputs[i].plugin->stop(&a->inputs[i]);
}

static void reload(struct lc_agent *a)
{
    struct lc_config *next = NULL;
    char err[1024];
    int rc;

    if (a->stopping)
        return;
    if (a->cfg->promtail_flags)
        rc = lc_promtail_load(a->cfg->source, a->cfg->promtail_flags & ~LC_PT_LOADED, &next, NULL,
                              err, sizeof(err));
    else if (strcmp(a->cfg->source, "<embedded>") == 0)
        rc = lc_config_load_string(lc_config_embedded, "<embedded>", &next, err, sizeof(err));
    else
        rc = lc_config_load_file(a->cfg->source, &next, err, sizeof(err));
    if (rc) {
        lc_logf(LC_LOG_ERROR, "agent", NULL, "SIGHUP: configuration not reloaded: %s", err);
        return;
    }
    a->next_cfg = next;
    begin_stop(a, "SIGHUP: reloading the configuration");
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct lc_agent *a = s->data;

    if (signum == SIGHUP) {
        reload(a);
        return;
    }
    if (a->stopping) {
        /* A second signal: stop waiting for outputs. */
        a->stop_deadline_ns = 0;
        return;
    }
    begin_stop(a, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* --once: stop when every input read what it had at start and nothing is in flight. */
static void on_once_tick(uv_timer_t *t)
{
    struct lc_agent *a = t->data;

    for (size_t i = 0; i < a->ninputs; i++) {
        struct lc_input *in = &a->inputs[i];
        if (in->plugin->caught_up && !in->plugin->caught_up(in))
            return;
    }
    begin_stop(a, "--once: inputs read to their end");
}

static const char *const fate_names[] = {"delivered", "dead_letter", "dropped", "failed"};

/* The pipeline series of an input or output, labelled by its name alone. */
static const struct lc_metric_row output_series[] = {
    {LC_COUNTER, "log_capturer_output_records_total", "Records handed to the output.",
     offsetof(struct lc_output, m_records)},
    {LC_COUNTER, "log_capturer_output_batches_total", "Batches handed to the output.",
     offsetof(struct lc_output, m_batches)},
    {LC_GAUGE, "log_capturer_output_pending_bytes",
     "Bytes of batches the output holds (inputs pause at max_pending_bytes).",
     offsetof(struct lc_output, m_pending)},
    {LC_GAUGE, "log_capturer_output_spare_batches",
     "Done batches kept for reuse (at most 2 per output).", offsetof(struct lc_output, m_spare)},
    {LC_COUNTER, "log_capturer_output_cut_lines_total",
     "Lines cut at the output's batch_bytes (counted, logged).", offsetof(struct lc_output, m_cut)},
    {LC_GAUGE, "log_capturer_output_open_batches",
     "Batches being filled: one per tenant (at most the output's max_tenant_batches).",
     offsetof(struct lc_output, m_open)},
    {LC_COUNTER, "log_capturer_output_tenant_batches_sealed_total",
     "Batches sent before they were full or old because max_tenant_batches were open (the "
     "oldest is sealed for a new tenant's).",
     offsetof(struct lc_output, m_tenant_sealed)},
};

static const struct lc_metric_row input_series[] = {
    {LC_COUNTER, "log_capturer_input_lines_total", "Lines read by the input.",
     offsetof(struct lc_input, m_lines)},
    {LC_COUNTER, "log_capturer_input_bytes_total", "Bytes read by the input.",
     offsetof(struct lc_input, m_bytes)},
    {LC_COUNTER, "log_capturer_input_emit_failures_total",
     "Lines the pipeline could not queue (out of memory, mark ring full): read again later "
     "(a syslog message, which cannot be read again, is dropped and logged).",
     offsetof(struct lc_input, m_emit_failed)},
    {LC_GAUGE, "log_capturer_input_sources",
     "Sources (files, container streams) the input reads, counted every checkpoint_interval.",
     offsetof(struct lc_input, m_sources)},
};

/* Registers rows for the instance obj named name, with the one label `label`. */
static int init_output(struct lc_agent *a, struct lc_output *out, const struct lc_output_conf *c)
{
    static const char *const l_fate[] = {"output", "fate", NULL};
    struct lc_metric_family *f;

    out->plugin = c->plugin;
    out->conf = c;
    out->agent = a;
    out->pipeline = &a->pipe;
    uv_timer_init(a->loop, &out->flush_timer);
    out->flush_timer.data = out;
    lc_metric_register_rows(out, output_series, LC_METRIC_ROWS(output_series), "output", c->name);
    f = lc_metric_family(LC_COUNTER, "log_capturer_output_batch_fate_total",
                         "Batches by what became of them.", l_fate);
    for (int i = 0; i < 4; i++)
        out->m_fate[i] = lc_metric_series(f, c->name, fate_names[i]);
    /* the plugin may set its own state and fields on the same component */
    char comp[160];
    component_name(comp, sizeof(comp), "output", c->name);
    lc_health_set(comp, LC_HEALTH_OK, "ok");
    lc_health_field(comp, "records", out->m_records);
    lc_health_field(comp, "pending_bytes", out->m_pending);
    return out->plugin->init(out);
}

static int init_input(struct lc_agent *a, struct lc_input *in, const struct lc_input_conf *c)
{
    int rc;

    in->plugin = c->plugin;
    in->conf = c;
    in->agent = a;
    in->pipeline = &a->pipe;
    in->outs = calloc(a->noutputs, sizeof(struct lc_output *));
    if (!in->outs)
        return -ENOMEM;
    for (size_t j = 0; j < a->noutputs; j++) {
        bool all = c->outputs.n == 0;
        for (size_t k = 0; k < c->outputs.n && !all; k++)
            all = strcmp(c->outputs.v[k], a->outputs[j].conf->name) == 0;
        if (all)
            in->outs[in->nouts++] = &a->outputs[j];
    }
    lc_metric_register_rows(in, input_series, LC_METRIC_ROWS(input_series), "input", c->name);
    lc_gauge_set(in->m_sources, 0);
    char comp[160];
    component_name(comp, sizeof(comp), "input", c->name);
    lc_health_set(comp, LC_HEALTH_OK, "started");
    lc_health_field(comp, "sources", in->m_sources);
    lc_health_field(comp, "lines", in->m_lines);
    rc = lc_chain_new(c->process, in, c->name, &in->chain);
    if (rc < 0)
        return rc;
    return in->plugin->init(in);
}

static void free_plugins(struct lc_agent *a)
{
    char comp[160];

    for (size_t i = 0; i < a->ninputs; i++) {
        component_name(comp, sizeof(comp), "input", a->cfg->inputs[i].name);
        lc_health_remove(comp);
    }
    for (size_t i = 0; i < a->noutputs; i++) {
        component_name(comp, sizeof(comp), "output", a->cfg->outputs[i].name);
        lc_health_remove(comp);
    }
    for (size_t i = 0; i < a->ninputs; i++) {
        if (a->inputs[i].ctx && a->inputs[i].plugin->free)
            a->inputs[i].plugin->free(&a->inputs[i]);
        free(a->inputs[i].outs);
        lc_chain_free(a->inputs[i].chain); /* label sets it made: every batch is done */
    }
    for (size_t i = 0; i < a->noutputs; i++) {
        if (a->outputs[i].ctx && a->outputs[i].plugin->free)
            a->outputs[i].plugin->free(&a->outputs[i]);
        lc_pipeline_free_spares(&a->outputs[i]);
    }
    free(a->inputs);
    free(a->outputs);
}

/* Anomaly detection, when enabled; its pattern was checked with the configuration. */
static int setup_anomaly(struct lc_agent *a)
{
    const struct lc_anomaly_conf *c = &a->cfg->anomaly;
    char err[256];

    if (!c->enabled)
        return 0;
    int rc = lc_anomaly_new(&a->anomaly, c, lc_mono_ns() / LC_NS_PER_MSEC, err, sizeof(err));
    if (rc) {
        lc_log(LC_LOG_ERROR, "agent", "anomaly detection: %s", err);
        return rc;
    }
    uv_timer_start(&a->anomaly_timer, on_anomaly_timer, (uint64_t)c->interval_ms,
                   (uint64_t)c->interval_ms);
    return 0;
}

static int setup(struct lc_agent *a)
{
    char err[512];
    int rc;

    rc = lc_ckpt_open(&a->ckpt, a->cfg->state_dir, err, sizeof(err));
    if (rc == -EUCLEAN && a->cfg->on_corrupt_state == LC_CORRUPT_RESET) {
        char moved[4200];
        rc = lc_ckpt_move_aside(a->cfg->state_dir, moved, sizeof(moved));
        if (rc == 0) {
            lc_log(LC_LOG_ERROR, "agent",
                   "checkpoint store: %s; moved to %s, starting afresh (on_corrupt_state: "
                   "reset): every input starts per its start_at",
                   err, moved);
            rc = lc_ckpt_open(&a->ckpt, a->cfg->state_dir, err, sizeof(err));
        } else {
            lc_log(LC_LOG_ERROR, "agent", "checkpoint store: %s; moving it aside failed: %s", err,
                   strerror(-rc));
        }
    }
    if (rc) {
        lc_log(LC_LOG_ERROR, "agent", "checkpoint store: %s", err);
        return rc;
    }
    if (a->cfg->promtail_positions) {
        size_t imp, reset, skipped;
        rc = lc_promtail_import_positions(a->ckpt, a->cfg, a->cfg->promtail_positions, &imp, &reset,
                                          &skipped, err, sizeof(err));
        if (rc) {
            lc_log(LC_LOG_ERROR, "agent", "Promtail positions: %s", err);
            return rc;
        }
    }
    lc_health_set("checkpoints", LC_HEALTH_OK, "ok");
    lc_health_field("checkpoints", "entries",
                    lc_metric_simple(LC_GAUGE, "log_capturer_checkpoint_entries",
                                     "Sources with a checkpoint in the database."));
    if (!a->http && a->cfg->listen && *a->cfg->listen && strcmp(a->cfg->listen, "off") != 0) {
        rc = lc_http_start(&a->http, a->cfg->listen, err, sizeof(err));
        if (rc) {
            lc_log(LC_LOG_ERROR, "agent", "http server: %s", err);
            return rc;
        }
        lc_logf(LC_LOG_INFO, "agent", NULL, "serving /metrics and /health on %s (port %d)",
                a->cfg->listen, lc_http_port(a->http));
    }
    rc = setup_anomaly(a);
    if (rc)
        return rc;
    a->outputs = calloc(a->cfg->noutputs, sizeof(*a->outputs));
    a->inputs = calloc(a->cfg->ninputs, sizeof(*a->inputs));
    if (!a->outputs || !a->inputs)
        return -ENOMEM;
    for (size_t i = 0; i < a->cfg->noutputs; i++) {
        a->noutputs++;
        rc = init_output(a, &a->outputs[i], &a->cfg->outputs[i]);
        if (rc) {
            lc_log(LC_LOG_ERROR, "agent", "output %s: %s", a->cfg->outputs[i].name, strerror(-rc));
            return rc;
        }
    }
    for (size_t i = 0; i < a->cfg->ninputs; i++) {
        a->ninputs++;
        rc = init_input(a, &a->inputs[i], &a->cfg->inputs[i]);
        if (rc) {
            lc_log(LC_LOG_ERROR, "agent", "input %s: %s", a->cfg->inputs[i].name, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

static void setup_handles(struct lc_agent *a)
{
    uv_signal_init(a->loop, &a->sig_int);
    uv_signal_init(a->loop, &a->sig_term);
    uv_signal_init(a->loop, &a->sig_hup);
    a->sig_int.data = a->sig_term.data = a->sig_hup.data = a;
    uv_signal_start(&a->sig_int, on_signal, SIGINT);
    uv_signal_start(&a->sig_term, on_signal, SIGTERM);
    uv_signal_start(&a->sig_hup, on_signal, SIGHUP);
    uv_timer_init(a->loop, &a->ckpt_timer);
    uv_timer_init(a->loop, &a->once_timer);
    uv_timer_init(a->loop, &a->stop_timer);
    uv_timer_init(a->loop, &a->sd_watchdog_timer);
    a->ckpt_timer.data = a->once_timer.data = a->stop_timer.data = a;
    /* systemd's watchdog (WatchdogSec=): the loop itself proves it is alive, until finish(). */
    uint64_t wd_ms = lc_notify_watchdog_ms();
    if (wd_ms > 0)
        uv_timer_start(&a->sd_watchdog_timer, lc_notify_watchdog_tick, 0, wd_ms);
    uv_timer_start(&a->ckpt_timer, on_ckpt_timer, (uint64_t)a->cfg->checkpoint_interval_ms,
                   (uint64_t)a->cfg->checkpoint_interval_ms);
    if (a->once)
        uv_timer_start(&a->once_timer, on_once_tick, 20, 20);
    uv_timer_init(a->loop, &a->watchdog_timer);
    a->watchdog_timer.data = a;
    if (a->cfg->watchdog.enabled) {
        a->watchdog = lc_watchdog_new(&a->cfg->watchdog);
        if (a->watchdog)
            uv_timer_start(&a->watchdog_timer, on_watchdog_timer,
                           (uint64_t)a->cfg->watchdog.interval_ms,
                           (uint64_t)a->cfg->watchdog.interval_ms);
    }
    uv_timer_init(a->loop, &a->anomaly_timer);
    a->anomaly_timer.data = a;
}

static int start_all(struct lc_agent *a)
{
    for (size_t i = 0; i < a->noutputs; i++)
        a->outputs_running++;
    for (size_t i = 0; i < a->ninputs; i++) {
        int rc = a->inputs[i].plugin->start(&a->inputs[i]);
        if (rc) {
            lc_log(LC_LOG_ERROR, "agent", "input %s failed to start: %s", a->inputs[i].conf->name,
                   strerror(-rc));
            return rc;
        }
        a->inputs_running++;
    }
    lc_health_set_ready(true);
    return 0;
}

static bool same_str(const char *x, const char *y)
{
    return strcmp(x ? x : "", y ? y : "") == 0;
}

/* One configuration, from start to drained. Returns the exit code; *next is a reload's config. */
static int run_config(struct lc_config *cfg, bool once, struct lc_http **http,
                      struct lc_config **next)
{
    struct lc_agent a = {.cfg = cfg, .once = once, .http = *http};
    uv_loop_t loop;
    int rc;

    lc_log_set_level(cfg->log_level);
    if (lc_losses_keep((uint32_t)cfg->health_recent_losses) < 0)
        lc_log(LC_LOG_WARN, "agent", "health_recent_losses: out of memory; the list is unchanged");
    if (uv_loop_init(&loop) != 0)
        return 1;
    a.loop = &loop;
    lc_pipeline_init(&a.pipe, &loop, cfg);
    rc = lc_worker_new(&a.worker, &loop, (uint32_t)cfg->disk_queue_jobs,
                       lc_metric_simple(LC_GAUGE, "log_capturer_disk_queue_jobs",
                                        "Jobs queued for or running on the disk worker thread "
                                        "(checkpoint flushes, DLQ appends, fsyncs)."));
    if (rc) {
        lc_logf(LC_LOG_ERROR, "agent", NULL, "disk worker thread: %s", strerror(-rc));
        lc_pipeline_close(&a.pipe);
        uv_run(&loop, UV_RUN_DEFAULT); /* its close callback */
        uv_loop_close(&loop);
        return 1;
    }
    setup_handles(&a);
    rc = setup(&a);
    /* what was initialized, also after a failure: shutdown flushes those */
    lc_pipeline_attach(&a.pipe, a.inputs, a.ninputs, a.outputs, a.noutputs, a.anomaly);
    if (rc == 0)
        rc = start_all(&a);
    if (rc) {
        a.exit_code = 1;
        begin_stop(&a, "start-up failed");
    } else {
        char status[128];
        snprintf(status, sizeof(status), "started: %zu inputs, %zu outputs%s", a.ninputs,
                 a.noutputs, once ? ", --once" : "");
        lc_logf(LC_LOG_INFO, "agent", NULL, "%s", status);
        lc_notify_ready(status); /* systemd: inputs and outputs started, /ready answers 200 */
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    lc_worker_free(a.worker); /* idle: its queue drained before the loop ended */
    lc_watchdog_free(a.watchdog);
    lc_anomaly_free(a.anomaly); /* after the inputs: it holds references on their label sets */
    free_plugins(&a);
    lc_ckpt_free(a.ckpt);
    if (uv_loop_close(&loop) != 0)
        lc_log(LC_LOG_WARN, "agent", "event loop closed with handles still open");
    *http = a.http;
    *next = a.next_cfg;
    lc_config_free(cfg);
    return a.exit_code;
}

int lc_agent_run(struct lc_config *cfg, bool once)
{
    struct lc_http *http = NULL;
    int rc;

    for (;;) {
        struct lc_config *next = NULL;
        char *listen = strdup(cfg->listen ? cfg->listen : "");

        rc = run_config(cfg, once, &http, &next);
        if (!next || rc != 0) {
            lc_config_free(next);
            free(listen);
            break;
        }
        if (!same_str(listen, next->listen)) {
            lc_http_stop(http);
            http = NULL;
        }
        free(listen);
        lc_log(LC_LOG_INFO, "agent", "configuration reloaded");
        cfg = next;
    }
    lc_http_stop(http);
    lc_log(LC_LOG_INFO, "agent", "stopped");
    return rc;
}
