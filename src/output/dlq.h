/* SPDX-License-Identifier: MIT */
/* dlq.h: the dead-letter queue: append-only NDJSON segment files, capped, fsynced, replayable. */
#ifndef LC_DLQ_H
#define LC_DLQ_H

#include "core/buf.h"
#include "core/metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * A DLQ is one directory (mode 0700) of segment files (mode 0600) named
 * segment-<20-digit sequence>.ndjson, oldest first. Each line is one batch an
 * output could not deliver:
 *
 *   {"time":"<RFC3339Nano>","output":"loki","reason":"rejected","status":400,
 *    "body":"<answer, truncated>","tenant":"<X-Scope-OrgID, if the batch has its own>",
 *    "streams":[{"labels":{..},"entries":[["<ns>","<line>"],..]}]}
 *
 * lc_dlq_append() returns only once the line is on disk (fdatasync): the
 * batch's source positions may be committed after that, not before. The
 * newest segment is appended to until it reaches segment_bytes; when the
 * total would exceed max_bytes the oldest segments are deleted first, and the
 * batches they held are counted as dropped.
 *
 * A writer (the agent) and `log_capturer dlq replay` (another process) may
 * work on one directory at once: both lock a segment with flock(LOCK_EX) while
 * they change it. The writer never waits: when replay holds its segment, or
 * replay has replaced or removed it, the writer starts a new segment.
 *
 * Ownership: struct lc_dlq is an opaque handle (lc_dlq_open / lc_dlq_free).
 * Strings passed in are borrowed. One thread at a time per handle; blocking
 * file I/O, which the agent runs on its disk worker (lc_dlq_append_async).
 */
struct lc_dlq;

/* Series the DLQ keeps up to date; any may be NULL. */
struct lc_dlq_metrics {
    struct lc_metric_series *bytes;   /* gauge: bytes in all segments */
    struct lc_metric_series *max;     /* gauge: the cap (max_bytes), set at open */
    struct lc_metric_series *batches; /* counter: batches written */
    struct lc_metric_series *dropped; /* counter: batches deleted by the size cap */
    struct lc_metric_series *errors;  /* counter: failed writes */
};

/*
 * Registers the DLQ's own series (log_capturer_dlq_*, labelled output=`output`)
 * and fills *m with them, for lc_dlq_open. Called once by the DLQ's owner at
 * its init, on the loop thread; a series left NULL (allocation failure) is
 * not updated. The owner may read the series (e.g. for /health) but only the
 * DLQ updates them.
 */
void lc_dlq_metrics_register(struct lc_dlq_metrics *m, const char *output);

#define LC_DLQ_SEGMENT_BYTES (16 << 20)

/*
 * Opens the DLQ in dir, creating it and its parents (0700) if needed. Existing
 * segments are kept; writing starts in a new segment. `m` is copied (NULL: no
 * metrics; see lc_dlq_metrics_register). 0 and *out, or negative errno with a
 * message in err.
 */
int lc_dlq_open(struct lc_dlq **out, const char *dir, int64_t max_bytes, int64_t segment_bytes,
                const struct lc_dlq_metrics *m, char *err, size_t errlen);
/* Closes the segment and frees. NULL is a no-op. */
void lc_dlq_free(struct lc_dlq *d);

/*
 * Appends one line (len bytes, ending in '\n', no other '\n') and syncs it.
 * 0, -E2BIG (the line alone is above max_bytes), or the -errno of the failed
 * open/write/sync (the segment is cut back to its previous size).
 */
int lc_dlq_append(struct lc_dlq *d, const char *line, size_t len);
struct lc_worker;

/* rc: 0 once the line is on disk, else lc_dlq_append's error or -ECANCELED. */
typedef void (*lc_dlq_done_fn)(int rc, void *arg);

/*
 * lc_dlq_append() on the disk worker thread (core/worker.h), so the event
 * loop never waits for the directory scan, the cap's deletions or the sync.
 * The line is copied. done(rc, arg) runs later on the loop thread, in append
 * order: only then may the batch's positions be committed. Lines submitted
 * while a job runs go together in the next job (one worker job per DLQ at a
 * time). 0 (done will run), or -ENOMEM / -EINVAL (another worker) and done
 * will not run. After this, the handle belongs to the worker while
 * lc_dlq_busy(): no lc_dlq_append/lc_dlq_bytes on the loop meanwhile, and
 * lc_dlq_free only once it is not busy (lines still waiting are dropped).
 */
int lc_dlq_append_async(struct lc_dlq *d, struct lc_worker *w, const char *line, size_t len,
                        lc_dlq_done_fn done, void *arg);
/* True while appends started by lc_dlq_append_async have not all completed. */
bool lc_dlq_busy(const struct lc_dlq *d);

/* Bytes in every segment at the last append (or open). */
int64_t lc_dlq_bytes(const struct lc_dlq *d);

/*
 * Builds a DLQ line in `out` (reset first) up to where the streams go:
 * {"time":..,"output":..,"reason":..,"status":..,"body":..,["tenant":..,]"streams":
 * The caller appends the streams array, then calls lc_dlq_line_end().
 * status 0 means none (written as 0). body may be NULL; at most 4 KiB of it
 * is kept, with credentials masked (core/redact.h). tenant: the batch's
 * (core/tenant.h), which `dlq replay` pushes it with; NULL or "": none (the
 * output's own). 0 or -E2BIG/-ENOMEM.
 */
int lc_dlq_line_begin(struct lc_buf *out, int64_t now_ns, const char *output, const char *reason,
                      long status, const char *body, size_t body_len, const char *tenant);
/* Closes the object and adds the newline. 0 or -E2BIG/-ENOMEM. */
int lc_dlq_line_end(struct lc_buf *out);

/* ---- reading back (the `dlq` command) ---------------------------------- */

struct lc_dlq_replay_stats {
    uint32_t segments;      /* segments found */
    uint32_t segments_done; /* segments processed */
    uint64_t lines;         /* lines offered to the callback */
    uint64_t removed;       /* lines the callback accepted (removed from disk) */
    uint64_t kept;          /* lines left in place */
    uint64_t torn;          /* torn last lines (a crash mid-append): removed */
};

/*
 * What the replay callback answers for one line: remove it (delivered, or
 * dropped on purpose), keep it, or stop (keep this line and every line after).
 */
enum lc_dlq_verdict { LC_DLQ_KEEP = 0, LC_DLQ_REMOVE, LC_DLQ_STOP };

typedef enum lc_dlq_verdict (*lc_dlq_replay_fn)(const char *line, size_t len, void *arg);

/*
 * Offers every line of every segment of dir, oldest first, to fn (the line
 * without its newline, NUL-terminated in a buffer the callback may modify).
 * A segment's torn last line (no newline: the agent was killed mid-append,
 * so that batch was never acknowledged and is read again) is never offered
 * and is removed, counted in st->torn.
 * A segment whose lines were all removed is deleted; one with some removed
 * is rewritten (temporary file, fsync, rename, fsync of the directory), so a
 * crash leaves either the old or the new segment, never a mix. `progress`
 * (may be NULL) runs after every line. 0 (stats in *st), or negative errno.
 */
int lc_dlq_replay(const char *dir, lc_dlq_replay_fn fn, void *arg,
                  void (*progress)(const struct lc_dlq_replay_stats *st, void *arg),
                  struct lc_dlq_replay_stats *st);

/* Prints one line per segment (name, bytes, batches) and a total. 0 or negative errno. */
int lc_dlq_list(const char *dir, FILE *f);

#endif
