/* SPDX-License-Identifier: MIT */
/* metrics.h: a Prometheus metrics registry; modules register, the core renders. */
#ifndef LC_METRICS_H
#define LC_METRICS_H

#include "core/buf.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One process-wide registry. A module registers its families once at init and
 * keeps the series pointers it gets back; updating a series is one relaxed
 * atomic operation and safe from any thread. Series live until
 * lc_metrics_shutdown() (or until lc_metric_series_remove() for per-container
 * series), so pointers stay valid while the module that took them runs.
 *
 * Families and series are created on the event loop thread or at start-up;
 * rendering happens on the HTTP thread under the registry's mutex.
 */
enum lc_metric_type { LC_COUNTER, LC_GAUGE, LC_HISTOGRAM };

struct lc_metric_family; /* opaque */

struct lc_metric_series {
    _Atomic uint64_t u; /* counter value */
    _Atomic int64_t i;  /* gauge value */
    /* histogram: */
    _Atomic uint64_t *bucket_counts; /* non-cumulative, nbuckets + 1 (+Inf) */
    _Atomic uint64_t hcount;
    _Atomic uint64_t hsum_micro; /* sum * 1e6, to stay atomic */
    const struct lc_metric_family *family;
};

/*
 * Registers (or finds, if the name exists with the same type) a family.
 * `labels` is a NULL-terminated list of label names, or NULL. For histograms
 * `buckets` are the upper bounds (ascending), `nbuckets` of them. Returns NULL
 * only on allocation failure. `name` and `help` must be string literals.
 * (Also NULL, with a log line, for a programming error: an invalid metric or
 * label name, a counter not named *_total, a reserved process_* name, or a name
 * already registered with another type, labels or buckets. lc_metric_family()
 * with LC_HISTOGRAM uses the Prometheus default buckets.)
 */
struct lc_metric_family *lc_metric_family(enum lc_metric_type type, const char *name,
                                          const char *help, const char *const *labels);
struct lc_metric_family *lc_metric_histogram(const char *name, const char *help,
                                             const char *const *labels, const double *buckets,
                                             int nbuckets);

/*
 * Returns the series for these label values (as many as the family has label
 * names), creating it at 0. The values are copied. NULL only on allocation failure.
 */
struct lc_metric_series *lc_metric_series(struct lc_metric_family *f, ...);
/*
 * A module's series declared as a table: each row's family gets one label
 * name, and the series for one value of it is stored at `off` in the module's
 * struct (a struct lc_metric_series * field). A row with `by` has a second
 * label: one series per entry of `values` (NULL-terminated), stored in an
 * array of series pointers at `off`, in the order of `values`. A histogram
 * row has its upper bounds in `buckets` (NULL: the Prometheus defaults).
 */
struct lc_metric_row {
    enum lc_metric_type type;
    const char *name;
    const char *help;
    size_t off;
    const char *by;            /* the second label's name, or NULL */
    const char *const *values; /* its values, NULL-terminated (with `by`) */
    const double *buckets;     /* LC_HISTOGRAM: upper bounds, or NULL */
    int nbuckets;
};

#define LC_METRIC_ROWS(rows) (sizeof(rows) / sizeof((rows)[0]))

/*
 * A row's `values` (NULL-terminated) and the series array at its `off`: as
 * many, checked at compile time. (A one-value row filling a single pointer
 * needs no check.)
 */
#define LC_METRIC_VALUES_FIT(type, field, values)                                                  \
    _Static_assert(sizeof(values) / sizeof((values)[0]) - 1 ==                                     \
                       sizeof(((type *)0)->field) / sizeof(struct lc_metric_series *),             \
                   #values " does not match " #type "." #field)

/*
 * Registers rows[0..n) labelled `label`=`value`, storing each series in obj.
 * With `label` NULL the families have no instance label (a module with one
 * instance per process): `by` is then their only label, if any.
 */
void lc_metric_register_rows(void *obj, const struct lc_metric_row *rows, size_t n,
                             const char *label, const char *value);

/* Forgets a series (e.g. a destroyed container's); its pointer dies with it. */
void lc_metric_series_remove(struct lc_metric_series *s);

static inline void lc_counter_add(struct lc_metric_series *s, uint64_t n)
{
    if (s)
        atomic_fetch_add_explicit(&s->u, n, memory_order_relaxed);
}
static inline void lc_counter_inc(struct lc_metric_series *s)
{
    lc_counter_add(s, 1);
}
static inline void lc_gauge_set(struct lc_metric_series *s, int64_t v)
{
    if (s)
        atomic_store_explicit(&s->i, v, memory_order_relaxed);
}
static inline void lc_gauge_add(struct lc_metric_series *s, int64_t v)
{
    if (s)
        atomic_fetch_add_explicit(&s->i, v, memory_order_relaxed);
}
void lc_histogram_observe(struct lc_metric_series *s, double v);

/* Shortcut: registers a family without labels and returns its only series. */
struct lc_metric_series *lc_metric_simple(enum lc_metric_type type, const char *name,
                                          const char *help);

/* A counter's count or a gauge's value (a histogram's count), for readers such as /health. */
int64_t lc_metric_series_value(const struct lc_metric_series *s);

/*
 * The sum of every series of the family `name` (gauges: values; counters: counts),
 * 0 when no such family exists. Takes the registry mutex: not for the hot path
 * (the watchdog reads other modules' gauges with it once per interval).
 */
int64_t lc_metric_family_total(const char *name);

/*
 * Renders every family in the Prometheus text format 0.0.4, then the standard
 * process_* metrics and log_capturer_threads read from /proc/self.
 * 0 or -ENOMEM/-E2BIG.
 */
int lc_metrics_render(struct lc_buf *out);
/* Frees every family and series. Only at exit, after the HTTP thread stopped. */
void lc_metrics_shutdown(void);

#endif
