/* SPDX-License-Identifier: MIT */
/* watchdog.h: the leak watchdog: samples threads, FDs, RSS and bounded structures; fits slopes. */
#ifndef LC_WATCHDOG_H
#define LC_WATCHDOG_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Every `watchdog.interval` the agent takes one sample of its own resources
 * and adds it to a ring of the last LC_WD_RING samples. For the resources that
 * must not grow with time (threads, FDs by kind, RSS) a least-squares slope is
 * fitted over the samples of the last `watchdog.window`; a resource is flagged
 * as growing when
 *   - at least LC_WD_MIN_SAMPLES samples are in the window,
 *   - the slope (per minute) is above its threshold,
 *   - the lowest value of the window's last quarter is above the highest of its
 *     first quarter (the floor moved: a one-off spike is not a leak), and
 *   - the series rose between consecutive samples at least LC_WD_MIN_RISES
 *     times (a single step, e.g. a thread pool starting, is not a leak).
 * FD counts are what /proc/self/fd holds minus what the configuration explains
 * (open tailed files, followed container streams, Docker API streams, Loki
 * requests in flight), so more containers is not a leak.
 *
 * The other series (sources, marks in flight, streams, metadata cache, retry
 * queue, DLQ bytes) are sampled and exposed but not judged: each has its own
 * configured cap and metric.
 *
 * The watchdog itself holds a fixed ring; it never allocates after _new().
 * Event loop only.
 */

enum lc_wd_res {
    LC_WD_THREADS = 0,
    LC_WD_FDS_FILES,
    LC_WD_FDS_SOCKETS,
    LC_WD_FDS_OTHER,
    LC_WD_RSS,
    LC_WD_SOURCES,
    LC_WD_MARKS,
    LC_WD_STREAMS,
    LC_WD_META,
    LC_WD_RETRY,
    LC_WD_DLQ,
    LC_WD_NRES,
};
#define LC_WD_JUDGED 5 /* the first five are judged */

#define LC_WD_RING        60
#define LC_WD_MIN_SAMPLES 10
#define LC_WD_MIN_RISES   3

/* The `watchdog:` section of the configuration. */
struct lc_watchdog_conf {
    bool enabled;
    int64_t interval_ms;
    int64_t window_ms;
    int64_t max_threads_per_min;
    int64_t max_fds_per_min;
    int64_t max_rss_per_min; /* bytes */
};

struct lc_wd_sample {
    int64_t v[LC_WD_NRES];
};

struct lc_watchdog;

/* The resource's name as in metrics and warnings ("threads", "fds_files", ...). */
const char *lc_watchdog_res_name(enum lc_wd_res r);

/*
 * Reads /proc/self (threads, FDs by kind, RSS) and the registry's gauges
 * (streams, metadata cache, retry queue, DLQ bytes, and what explains FDs) into
 * *s; sources and marks are the caller's (left 0). One readdir of
 * /proc/self/fd; fstat() only for FD numbers new since w's last probe and a
 * few cached ones in rotation (see watchdog.c). 0 or negative errno.
 */
int lc_watchdog_probe(struct lc_watchdog *w, struct lc_wd_sample *s);

/* A watchdog with its metrics registered; the conf is copied. NULL on ENOMEM. */
struct lc_watchdog *lc_watchdog_new(const struct lc_watchdog_conf *conf);
void lc_watchdog_free(struct lc_watchdog *w);

/*
 * Adds a sample taken at monotonic time t_ms and judges every resource: sets
 * the gauges, logs one (rate-limited) warning per resource that starts or
 * stays growing, and sets the "watchdog" /health component (degraded with the
 * reason while anything grows). Returns the bit mask (1 << res) of growing
 * resources.
 */
unsigned lc_watchdog_add(struct lc_watchdog *w, int64_t t_ms, const struct lc_wd_sample *s);

/* The fitted slope per minute of resource r over the window (0 with too few samples). */
double lc_watchdog_slope(const struct lc_watchdog *w, enum lc_wd_res r);

/*
 * Test builds only (LC_TEST_KNOBS): LC_TEST_WATCHDOG_LEAK=fd|thread in the
 * environment makes every probe leak one FD (a regular file) or one thread. A no-op otherwise.
 */
void lc_watchdog_test_leak(void);

#endif
