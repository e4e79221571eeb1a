/* SPDX-License-Identifier: MIT */
/* worker.h: the disk worker: one thread that runs slow disk jobs in order, off the event loop. */
#ifndef LC_WORKER_H
#define LC_WORKER_H

#include "core/metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/*
 * Everything that can wait on the disk for milliseconds or more (checkpoint
 * transactions, DLQ appends, fsync of the file output, directory checks) runs
 * here instead of on the event loop thread, so a slow or full disk delays
 * positions and acknowledgements, never inputs or Loki requests.
 *
 * One thread per agent run, created by lc_worker_new and joined by
 * lc_worker_free: the thread count never changes with traffic.
 *
 * Jobs run one at a time, in submission order, so two jobs never touch the
 * disk concurrently (checkpoint flushes keep their order). When a job's work
 * has run, its done callback runs on the event loop thread, also in submission
 * order (one uv_async_t carries every completion).
 *
 * Bound: at most max_jobs jobs are admitted (queued, running or waiting for
 * their completion). A job submitted beyond that waits, in order, on an
 * intrusive list until a slot frees; nothing is dropped and the loop never
 * blocks. Jobs are caller storage (struct lc_worker_job embedded in the
 * caller's object, no allocation here), and every caller keeps at most one
 * job submitted at once (the checkpoint store, each DLQ, each synced file
 * output), so the waiting list is bounded by the callers. Back-pressure comes
 * from what the jobs hold: a batch waiting for a DLQ append or a sync stays
 * counted in its output's pending bytes until its done callback ran, so the
 * pipeline pauses inputs at max_pending_bytes; nothing is dropped.
 *
 * Ownership: the job belongs to the caller; it must stay valid from
 * lc_worker_submit until its done callback returned. A job may be submitted
 * again from its own done callback. Everything here but the work callback is
 * called on the event loop thread only.
 */
struct lc_worker;

struct lc_worker_job {
    void (*work)(struct lc_worker_job *j); /* on the worker thread */
    void (*done)(struct lc_worker_job *j); /* on the loop thread; may be NULL */
    bool cancelled; /* set when work never ran (lc_worker_cancel); read in done */
    /* private */
    struct lc_worker_job *next;
    bool busy;
};

/* The object a job is embedded in: LC_WORKER_OWNER(j, struct lc_ckpt, job). */
#define LC_WORKER_OWNER(j, type, member) ((type *)(void *)((char *)(j)-offsetof(type, member)))

/*
 * Starts the thread. max_jobs >= 1. `depth` (may be NULL): gauge of admitted
 * plus waiting jobs. 0 and *out, or negative errno.
 */
int lc_worker_new(struct lc_worker **out, uv_loop_t *loop, uint32_t max_jobs,
                  struct lc_metric_series *depth);
/*
 * Queues j (work and done set by the caller). 0, or -EBUSY when j is already
 * submitted and not yet done, or -ESHUTDOWN after lc_worker_close.
 */
int lc_worker_submit(struct lc_worker *w, struct lc_worker_job *j);
/* Jobs submitted whose done callback has not run yet (admitted and waiting). */
size_t lc_worker_depth(const struct lc_worker *w);
/* True while a job waits for a slot (the bound is reached). */
bool lc_worker_full(const struct lc_worker *w);
/*
 * Jobs not started yet are completed without running: their done callback
 * runs with j->cancelled set. New submissions are cancelled too. For a
 * shutdown past its deadline; the job running now finishes normally.
 */
void lc_worker_cancel(struct lc_worker *w);
/* Refuses new jobs and closes the async handle once every job is done. */
void lc_worker_close(struct lc_worker *w);
/*
 * Joins the thread and frees. Call after the loop has run the close (or
 * without a loop run, for a worker never used). NULL is a no-op.
 */
void lc_worker_free(struct lc_worker *w);

#endif
