/* SPDX-License-Identifier: MIT */
/* anomaly.h: anomaly detection on log rates: spikes, silences and error bursts per stream. */
#ifndef LC_ANOMALY_H
#define LC_ANOMALY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A stream is a label set (the interned struct lc_labels of the records) of
 * one input. For each the hot path counts lines, bytes and lines matching
 * `error_pattern` (PCRE2, JIT); every `interval` a tick turns the counts into
 * rates and judges them against the stream's baselines (EWMA, alpha
 * LC_ANOMALY_ALPHA; a plain mean while fewer than 1/alpha intervals were seen):
 *
 *   spike    lines/s or bytes/s above spike_factor x its baseline, with at
 *            least spike_min_lines lines, for spike_intervals ticks in a row;
 *   silence  a steady stream (lines in at least 90 % of intervals, EWMA, and
 *            seen for 10 intervals at least) that
 *            has had no line for longer than silence_factor x its usual gap
 *            between lines (and at least two intervals);
 *   errors   the share of matching lines above error_factor x its baseline
 *            share (and above 10 %), with at least error_min_lines matches in
 *            the interval.
 *
 * Nothing is judged before a stream is `warmup` old; baselines do not learn
 * from intervals in which an anomaly is active. The table holds at most
 * max_streams streams (fixed memory, allocated at start); a new stream
 * evicts the least recently active one, and streams idle for `expire` go.
 * Event loop only.
 */

#define LC_ANOMALY_ALPHA 0.05

enum lc_anomaly_kind { LC_ANOMALY_SPIKE = 0, LC_ANOMALY_SILENCE, LC_ANOMALY_ERRORS, LC_ANOMALY_N };

/* The `anomaly:` section of the configuration. */
struct lc_anomaly_conf {
    bool enabled;
    int64_t interval_ms;
    int64_t warmup_ms;
    int64_t expire_ms;
    int64_t max_streams;
    int64_t spike_factor;
    int64_t spike_min_lines;
    int64_t spike_intervals;
    int64_t silence_factor;
    int64_t error_factor;
    int64_t error_min_lines;
    char *error_pattern;
};

struct lc_anomaly;
struct lc_input;
struct lc_labels;

/*
 * A detector with its metrics registered and its table allocated; the conf is
 * borrowed (it must outlive the detector); now_ms starts its clock. 0 and *out, or -EINVAL (the
 * pattern does not compile: err says why) / -ENOMEM.
 */
int lc_anomaly_new(struct lc_anomaly **out, const struct lc_anomaly_conf *conf, int64_t now_ms,
                   char *err, size_t errlen);
/* Frees, releasing every label set held and removing the active gauges. NULL is a no-op. */
void lc_anomaly_free(struct lc_anomaly *a);

/* The hot path: counts one record of `in` with `labels`. NULL detector: nothing. */
void lc_anomaly_count(struct lc_anomaly *a, const struct lc_input *in, struct lc_labels *labels,
                      const char *line, size_t len);
static inline void lc_anomaly_record(struct lc_anomaly *a, const struct lc_input *in,
                                     struct lc_labels *labels, const char *line, size_t len)
{
    if (a)
        lc_anomaly_count(a, in, labels, line, len);
}

/*
 * Judges every stream with the counts since the last tick, taken at monotonic
 * time now_ms (tests pass their own clock). Returns how many anomalies are
 * active after it.
 */
int lc_anomaly_tick(struct lc_anomaly *a, int64_t now_ms);

/* Whether `kind` is active for the stream of (in, labels); for tests. */
bool lc_anomaly_active(const struct lc_anomaly *a, const struct lc_input *in,
                       const struct lc_labels *labels, enum lc_anomaly_kind kind);
/* Streams tracked now, and the bytes the detector holds (table included). */
size_t lc_anomaly_streams(const struct lc_anomaly *a);
size_t lc_anomaly_memory(const struct lc_anomaly *a);
/* Bytes per tracked stream (entry and hash slot). */
size_t lc_anomaly_stream_bytes(void);

#endif
