/* SPDX-License-Identifier: MIT */
/* ckpt.h: the checkpoint store: per source its identity and committed position, in SQLite. */
#ifndef LC_CKPT_H
#define LC_CKPT_H

#include "core/record-t.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Opaque handle, owned by the agent. Writes are buffered in memory and made
 * durable in one transaction by lc_ckpt_flush_start() on the disk worker
 * thread (the agent calls it on a timer and at shutdown), so neither the hot
 * path nor the event loop waits for the disk. Every function here is called
 * from the event loop thread only; the flush job alone runs on the worker.
 * The database is <dir>/checkpoints.db, mode 0600, WAL.
 *
 * A key names one source uniquely, e.g. "file:system:2049:131074" or
 * "docker:containers:<id>". Strings in entries are borrowed by lc_ckpt_put and
 * copied; entries returned by get/each are owned by the store and valid until
 * the next call on it.
 */
struct lc_ckpt;

/* Longest key, path and meta value accepted (bytes, without the NUL); longer is -EINVAL. */
#define LC_CKPT_KEY_MAX  1024
#define LC_CKPT_PATH_MAX 4096
#define LC_CKPT_VAL_MAX  4096
/* Longest cursor (an opaque position text, e.g. a journal cursor), without the NUL. */
#define LC_CKPT_CURSOR_MAX 512

struct lc_ckpt_entry {
    const char *key;
    const char *path; /* where the source was last seen, informative */
    uint64_t dev;
    uint64_t ino;
    uint64_t fp_hash; /* fingerprint of the first fp_len bytes */
    uint32_t fp_len;
    struct lc_pos pos;  /* committed position */
    const char *cursor; /* committed position as text (journal cursor); NULL or "": none */
    int64_t updated_ns;
};

/*
 * 0, or negative errno with a message in err. Creates dir (0700) if needed.
 * -EUCLEAN: the database is corrupt or not SQLite (see lc_ckpt_move_aside).
 */
int lc_ckpt_open(struct lc_ckpt **out, const char *dir, char *err, size_t errlen);
/*
 * Renames dir/checkpoints.db (and its -wal, -shm) to checkpoints.db.corrupt-<unix time>
 * (never deletes it); that name goes to moved. 0 or negative errno.
 */
int lc_ckpt_move_aside(const char *dir, char *moved, size_t len);
/* Flushes, then closes. NULL is a no-op. */
void lc_ckpt_free(struct lc_ckpt *c);

/* 0 and *e filled (e->path and e->cursor never NULL), or -ENOENT. Sees buffered writes. */
int lc_ckpt_get(struct lc_ckpt *c, const char *key, struct lc_ckpt_entry *e);
/*
 * Buffers an insert-or-replace; updated_ns 0 is stamped with the wall clock.
 * 0 or -ENOMEM (-EINVAL: no key, or over a cap above).
 */
int lc_ckpt_put(struct lc_ckpt *c, const struct lc_ckpt_entry *e);
/* Buffers a delete. 0, -EINVAL or -ENOMEM. */
int lc_ckpt_del(struct lc_ckpt *c, const char *key);
/*
 * Calls fn for every entry whose key starts with prefix (NULL or "" for all;
 * buffered writes included), in no particular order. fn runs on a snapshot
 * taken first, so it may call any lc_ckpt function. 0 or negative errno.
 */
int lc_ckpt_each(struct lc_ckpt *c, const char *prefix,
                 void (*fn)(const struct lc_ckpt_entry *e, void *arg), void *arg);

/*
 * Small key/value facts, e.g. "input:system:seen" = "1". Buffered like entries.
 * get: 0, -ENOENT, or -ERANGE when val (vallen bytes) cannot hold the value.
 */
int lc_ckpt_meta_get(struct lc_ckpt *c, const char *key, char *val, size_t vallen);
int lc_ckpt_meta_put(struct lc_ckpt *c, const char *key, const char *val);

struct lc_worker;

/*
 * Writes all buffered changes in one transaction on the calling thread (at
 * close, in tests). 0, -EBUSY while a flush started below is in flight, or
 * negative errno (logged; the changes stay buffered for the next flush).
 */
int lc_ckpt_flush(struct lc_ckpt *c);
/*
 * Starts a flush of all buffered changes on the disk worker w. New changes
 * keep buffering meanwhile, and get/each/meta_get see them and the ones in
 * flight. done(rc, arg) (may be NULL) runs on the loop thread afterwards with
 * lc_ckpt_flush's result; a failed or cancelled flush puts its changes back.
 * 0 (started), -ENODATA (nothing to write), -EBUSY (one is in flight; done
 * will run for it), or lc_worker_submit's error (nothing started).
 */
int lc_ckpt_flush_start(struct lc_ckpt *c, struct lc_worker *w, void (*done)(int rc, void *arg),
                        void *arg);
/* True while a flush started by lc_ckpt_flush_start has not completed. */
bool lc_ckpt_flushing(const struct lc_ckpt *c);

/*
 * Deleting rows whose file is gone, without a directory scan on the loop.
 * keep() runs on the loop thread (rows in use: never deleted), gone() on the
 * disk worker (may block on the disk; gets a copy of the row), deleted() (may
 * be NULL) on the loop after each delete.
 */
struct lc_ckpt_sweep_ops {
    bool (*keep)(const struct lc_ckpt_entry *e, void *arg);
    bool (*gone)(const struct lc_ckpt_entry *e);
    void (*deleted)(const struct lc_ckpt_entry *e, void *arg);
};

/*
 * Copies the rows under prefix that keep() does not claim, asks gone() about
 * each on the worker w, then, back on the loop, deletes (buffered, like
 * lc_ckpt_del) those found gone and still not kept. arg must stay valid until
 * the worker drained. 0 (started), -ENODATA (no candidate), or negative errno.
 */
int lc_ckpt_sweep_start(struct lc_ckpt *c, struct lc_worker *w, const char *prefix,
                        const struct lc_ckpt_sweep_ops *ops, void *arg);
/* How many buffered changes wait for a flush (not counting one in flight). */
size_t lc_ckpt_dirty(const struct lc_ckpt *c);

#endif
