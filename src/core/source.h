/* SPDX-License-Identifier: MIT */
/* source.h: a stream an input reads (a file, a container), and its acknowledgements. */
#ifndef LC_SOURCE_H
#define LC_SOURCE_H

#include "core/ckpt.h"
#include "core/record-t.h"

#include <stdbool.h>
#include <stdint.h>

struct lc_input;
struct lc_labels;

/*
 * Acks. An input emits records of a source and, after each read chunk, calls
 * lc_source_checkpoint() with the position just after the last complete record
 * it emitted. Everything emitted since the previous checkpoint forms one
 * "mark". Every batch that holds records of a mark holds a reference on it.
 * When a batch is delivered, dead-lettered or dropped by policy, its
 * references go; a mark whose references are gone and that is sealed is done,
 * and the source's committed position advances over the longest prefix of done
 * marks. Only committed positions reach the checkpoint store: a crash repeats
 * at most what was in flight, never loses a line.
 *
 * A batch that could not be handled durably (shutdown before delivery, DLQ
 * write failure) releases its references as failed: the source's committed
 * position then never advances past that mark in this run, so a restart
 * re-reads it.
 *
 * The marks live in a ring of `max_marks`; when it is full the input must stop
 * reading this source (lc_source_writable) until acks free a slot.
 *
 * Ownership: the input creates a source and gives it up with
 * lc_source_release(); the source is freed when it is both released and has
 * no marks in flight, so batches never point at freed sources. Event loop only.
 */
struct lc_mark {
    struct lc_pos pos; /* position after the mark's last record, valid once sealed */
    uint32_t refs;
    bool sealed;
    bool failed;
};

struct lc_source {
    struct lc_input *input;
    struct lc_labels *labels;          /* owned reference */
    struct lc_labels *extra_labels[2]; /* owned: other label sets its records carry (stderr) */
    struct lc_ckpt_entry ck;           /* key, path (owned), identity, committed position */
    struct lc_mark *marks;
    /*
     * NULL, or (lc_source_use_cursors) max_marks + 1 slots of LC_CKPT_CURSOR_MAX + 1
     * bytes: each mark's position as text, then the committed one (ck.cursor).
     */
    char *cursors;
    uint32_t max_marks;
    uint64_t head; /* oldest live mark */
    uint64_t tail; /* one past the newest mark */
    bool open;     /* marks[tail - 1] takes records */
    bool released;
    bool stuck; /* a failed mark: commit nothing more this run */
    bool dirty; /* committed moved since the last lc_ckpt_put */
    /* Called when everything emitted is committed (e.g. a rotated file is done). */
    void (*on_drained)(struct lc_source *s, void *arg);
    void *on_drained_arg;
    /* Called when acks free a slot of a full ring (the input may read on); never once released. */
    void (*on_writable)(struct lc_source *s, void *arg);
    void *on_writable_arg;
    /* bytes (line + record) of its records in batches not yet done, all outputs */
    int64_t pending_bytes;
    bool forget;          /* on free, delete the checkpoint row instead of writing it */
    struct lc_ckpt *ckpt; /* where commits go (set by lc_agent_add_source) */
    struct lc_source *prev, *next, **list; /* the agent's list of live sources */
};

/*
 * Creates a source; `key` and `path` are copied, `labels` gets a new
 * reference. The committed position starts at `start`. NULL on ENOMEM.
 */
struct lc_source *lc_source_new(struct lc_input *in, const char *key, const char *path,
                                struct lc_labels *labels, const struct lc_pos *start,
                                uint32_t max_marks);
/*
 * Gives s positions with a text part (a journal cursor): allocates one slot per
 * mark, and the committed text starts as `start` (NULL: none). 0 or -ENOMEM.
 * Call once, before the first record.
 */
int lc_source_use_cursors(struct lc_source *s, const char *start);
/* lc_source_checkpoint with the position's text too (at most LC_CKPT_CURSOR_MAX bytes). */
void lc_source_checkpoint_cursor(struct lc_source *s, const struct lc_pos *pos, const char *cursor);
/* True when a record may be emitted now (a mark slot is free or open). */
bool lc_source_writable(const struct lc_source *s);
/* Seals the open mark at pos; with no open mark, records a mark with no records. */
void lc_source_checkpoint(struct lc_source *s, const struct lc_pos *pos);
/* The input is done with s; freed once its marks are done. */
void lc_source_release(struct lc_source *s);
/* True when nothing emitted is waiting for an ack. */
bool lc_source_drained(const struct lc_source *s);

/*
 * Seals the open mark at pos only if a mark slot stays free after it, so a
 * record can always be emitted without pausing in the middle of a chunk; a
 * full ring keeps the mark open and it takes the next records too. True if it
 * sealed.
 */
bool lc_source_try_seal(struct lc_source *s, const struct lc_pos *pos);
/*
 * For an input about to read while every mark slot is in flight: reopens the
 * newest mark, so the read's records join it and its next checkpoint moves
 * that mark's position on (committed once all of its batches are done). The
 * input keeps reading instead of waiting for an ack, which would hold its
 * lines for up to a batch_wait; what is in flight stays bounded by the
 * outputs' max_pending_bytes. Afterwards s is writable.
 */
void lc_source_fold_newest(struct lc_source *s);

/*
 * For the pipeline: takes a reference on the open mark (opening one when a
 * slot is free) and stores its sequence in *seq. 0, or -ENOBUFS when no mark
 * is open and the ring is full: nothing changed, the record must not be
 * emitted (the ring never overwrites a live mark).
 */
int lc_source_mark_ref(struct lc_source *s, uint64_t *seq);
/* For the pipeline: drops one reference; ok=false marks it failed. May free s. */
void lc_source_mark_unref(struct lc_source *s, uint64_t seq, bool ok);
/*
 * For records emitted outside an input's read (a held multiline record sent
 * by a timer): lc_source_late_begin() before the emit makes sure it can land
 * in a mark even when the ring is full (the newest mark, already sealed, takes
 * it); lc_source_late_end(s, token) afterwards seals a mark the emit opened at
 * the newest position read, so it commits without the input reading again.
 * When the input has a mark open, both do nothing (the input seals it).
 */
int lc_source_late_begin(struct lc_source *s);
void lc_source_late_end(struct lc_source *s, int token);
/*
 * Fairness (issue 13). Each source's records in batches not yet done are
 * counted (lc_source_pending, by the batches); a source holding more than its
 * share of the outputs' max_pending_bytes (divided among the sources that
 * have some, when there are two or more; at least four batches' worth) is
 * over its share: its input reads other sources first, so one flooding source pauses
 * before the outputs fill (which would pause every input) and the quiet ones
 * keep moving. on_writable is called when acks bring it back under.
 */
bool lc_source_over_share(const struct lc_source *s);
/* For batches: n bytes of s's records added (n > 0) or done (n < 0). May call on_writable. */
void lc_source_pending(struct lc_source *s, int64_t n);

/* Writes the committed position to the checkpoint store if it moved. */
void lc_source_persist(struct lc_source *s);
/* Frees s at once whatever its marks (shutdown only); persists first. */
void lc_source_free(struct lc_source *s);

#endif
