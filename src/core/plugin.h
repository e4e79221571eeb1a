/* SPDX-License-Identifier: MIT */
/* plugin.h: the input and output plugin interfaces and their instances. */
#ifndef LC_PLUGIN_H
#define LC_PLUGIN_H

#include "core/batch.h"
#include "core/config.h"
#include "core/metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct lc_agent;
struct lc_batch;
struct lc_chain;
struct lc_output;
struct lc_pipeline;

/*
 * An input instance. The core fills everything but `ctx`, which the plugin
 * owns from init() to free(). Inputs run on the event loop thread.
 */
struct lc_input {
    const struct lc_input_plugin *plugin;
    const struct lc_input_conf *conf; /* conf->conf is the plugin's options struct */
    struct lc_agent *agent;
    struct lc_pipeline *pipeline; /* where its records go in (core/pipeline.h) */
    void *ctx;
    struct lc_output **outs; /* where its records go */
    size_t nouts;
    struct lc_metric_series *m_lines;       /* log_capturer_input_lines_total{input} */
    struct lc_metric_series *m_bytes;       /* log_capturer_input_bytes_total{input} */
    struct lc_metric_series *m_emit_failed; /* log_capturer_input_emit_failures_total{input} */
    /* log_capturer_input_sources{input}: the agent counts them every checkpoint tick */
    struct lc_metric_series *m_sources;
    int64_t nsources;
    struct lc_chain *chain; /* its `process:` stages (process/stage.h), or NULL */
};

/*
 * Contract for every input plugin:
 * - init: parse-time state is in in->conf->conf; allocate ctx, register metrics. 0 or -errno.
 * - start: begin reading (handles on agent->loop). 0 or -errno.
 * - pause: the pipeline is full; stop reading soon (a chunk in progress may finish).
 * - resume: room again; continue (re-check sources, the pipeline does not replay events).
 * - caught_up: for --once, true when every source was read to the end it had at start.
 * - stop: close every handle; call lc_input_stopped(in) once all close callbacks ran.
 * - free: release ctx (after stop completed, or after a failed init/start).
 */
struct lc_input_plugin {
    const char *name;
    const char *description;
    const struct lc_option *options;
    size_t conf_size;
    int (*init)(struct lc_input *in);
    int (*start)(struct lc_input *in);
    void (*pause)(struct lc_input *in);
    void (*resume)(struct lc_input *in);
    bool (*caught_up)(struct lc_input *in);
    void (*stop)(struct lc_input *in);
    void (*free)(struct lc_input *in);
};

/*
 * What an output's destination answered to one request, and so what becomes
 * of the batch. The core never reads it: an output that sends requests maps
 * every answer to it in ONE function that all its senders use (the Loki
 * output and `dlq replay`: lc_loki_conf_push_result, output/loki_conf.h).
 */
enum lc_send_result {
    LC_SEND_OK = 0, /* accepted: delivered */
    LC_SEND_RETRY,  /* not now (transport error, overload, server error): send again later */
    LC_SEND_REJECT, /* refused for good (e.g. bad data): never sent again as is (DLQ) */
    LC_SEND_AUTH,   /* the credentials are refused: every batch would be, keep them all */
};

struct lc_output {
    const struct lc_output_plugin *plugin;
    const struct lc_output_conf *conf;
    struct lc_agent *agent;
    struct lc_pipeline *pipeline; /* what gives it batches (core/pipeline.h) */
    void *ctx;
    /* owned by the pipeline: */
    /*
     * Being filled: one batch per tenant (core/tenant.h), oldest first, linked
     * by ->next; at most the output's max_tenant_batches (nopen).
     */
    struct lc_batch *open;
    uint32_t nopen;
    int64_t pending_bytes; /* lc_batch_cost of batches given to the plugin, not yet done */
    uint32_t pending_batches;
    struct lc_batch *spare; /* done batches kept for reuse, at most LC_BATCH_SPARES */
    uint32_t nspare;
    uv_timer_t flush_timer;
    bool flush_timer_on;
    struct lc_metric_series *m_records; /* log_capturer_output_records_total{output} */
    struct lc_metric_series *m_batches; /* log_capturer_output_batches_total{output} */
    struct lc_metric_series *m_fate[4]; /* log_capturer_output_batch_fate_total{output,fate} */
    struct lc_metric_series *m_pending; /* log_capturer_output_pending_bytes{output} */
    struct lc_metric_series *m_spare;   /* log_capturer_output_spare_batches{output} */
    struct lc_metric_series *m_cut;     /* log_capturer_output_cut_lines_total{output} */
    struct lc_metric_series *m_open;    /* log_capturer_output_open_batches{output} */
    struct lc_metric_series *m_tenant_sealed; /* ..._tenant_batches_sealed_total{output} */
};

/*
 * Contract for every output plugin:
 * - init: allocate ctx from out->conf->conf, register metrics. 0 or -errno.
 * - send: takes ownership of a sealed batch and MUST give it back with
 *   lc_output_done(out, b, fate) exactly once, on the event loop thread; b is
 *   not touched after that call. It may call it from inside send() itself:
 *   the pipeline then only queues the fate, and a zero-delay timer applies it
 *   on the next loop iteration (marks released, pending_bytes lowered), so an
 *   ack never re-enters the input that is emitting. Or later, from its own
 *   callbacks (a request's end, a worker's after_work), where it applies at once.
 * - flush (optional): --once or shutdown wants everything out soon (skip waits).
 * - stop: give every held batch back (delivered, dead-lettered or FAILED),
 *   close handles, then call lc_output_stopped(out).
 * - healthy (optional): for /health; fill a short state word.
 * - free: release ctx.
 */
struct lc_output_plugin {
    const char *name;
    const char *description;
    const struct lc_option *options;
    size_t conf_size;
    int (*init)(struct lc_output *out);
    void (*send)(struct lc_output *out, struct lc_batch *b);
    void (*flush)(struct lc_output *out);
    void (*stop)(struct lc_output *out);
    bool (*healthy)(struct lc_output *out, const char **state);
    void (*free)(struct lc_output *out);
};

/*
 * The static plugin registry, defined outside the core by the program
 * (src/plugins.c): the NULL-terminated lists of every plugin built in, and
 * lookups by name (NULL if unknown).
 */
const struct lc_input_plugin *lc_input_plugin_find(const char *name);
const struct lc_output_plugin *lc_output_plugin_find(const char *name);
extern const struct lc_input_plugin *const lc_input_plugins[];
extern const struct lc_output_plugin *const lc_output_plugins[];

#endif
