/* SPDX-License-Identifier: MIT */
/* http.h: the /metrics, /health and /ready endpoint (libmicrohttpd, one internal thread). */
#ifndef LC_HTTP_H
#define LC_HTTP_H

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>

struct lc_http;

/*
 * Starts serving on `listen` ("127.0.0.1:9431", "[::1]:9431", ":9431" means
 * 127.0.0.1). The server thread only reads atomics and the registries' snapshots.
 * 0, or negative errno with a message in err.
 */
int lc_http_start(struct lc_http **out, const char *listen, char *err, size_t errlen);
/* Stops the thread and frees. NULL is a no-op. */
void lc_http_stop(struct lc_http *h);
/* The port actually bound (useful with port 0 in tests). */
int lc_http_port(const struct lc_http *h);

/*
 * Health: each component (e.g. "input/system", "output/loki") sets its state;
 * /health answers 200 with {"status":"ok","components":{...}} when none is
 * down, 503 otherwise; "reasons" lists "component: detail" of every component
 * not ok, and "losses" the newest loss reports (core/losses.h). Thread-safe;
 * strings are copied. docs/internals/health.md lists the
 * components and what moves each.
 */
enum lc_health { LC_HEALTH_OK = 0, LC_HEALTH_DEGRADED, LC_HEALTH_DOWN };
void lc_health_set(const char *component, enum lc_health state, const char *detail);
void lc_health_remove(const char *component);
/*
 * Shows a metric series' live value as the field `key` of the component's
 * object in /health (e.g. "retry_queue_batches"), creating the component (ok)
 * when absent; the same key again replaces the series. At most
 * LC_HEALTH_FIELDS per component. The series must outlive the component
 * (per-instance series do: they live until lc_metrics_shutdown()).
 */
#define LC_HEALTH_FIELDS 8
struct lc_metric_series;
void lc_health_field(const char *component, const char *key, struct lc_metric_series *s);
/* Renders the /health body; *healthy false when any component is down. */
int lc_health_render(struct lc_buf *out, bool *healthy);
/* /ready: true once the agent has started every input and output. */
void lc_health_set_ready(bool ready);
/* Frees every component entry (exit only). */
void lc_health_shutdown(void);

#endif
