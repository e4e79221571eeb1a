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
 * no marks in flight, so batches never point at freed sources. A source holds
 * one reference on each of its label sets. Event loop only.
 *
 * Checkpoint rows: a source an input registers with lc_agent_add_source()
 * writes its committed position to the agent's checkpoint store under its key
 * (lc_source_persist, on the agent's timer); an input reads its row through
 * lc_source_new_row() (or lc_source_lookup()), never from the store itself.
 */
struct lc_source; /* opaque (source.c); every access goes through the functions below */

/*
 * Creates a source; `key` and `path` are copied, `labels` gets a new
 * reference. The committed position starts at `start` (NULL: zero); the ring
 * has max_marks slots (0: 64). No checkpoint row is looked up: for a source
 * with one, lc_source_new_row(). NULL on ENOMEM.
 */
struct lc_source *lc_source_new(struct lc_input *in, const char *key, const char *path,
                                struct lc_labels *labels, const struct lc_pos *start,
                                uint32_t max_marks);
/*
 * The checkpoint row of the source named `key`, in the store of in's agent:
 * 0 and *row filled (its strings belong to the store and stay valid until the
 * next call on it), or -ENOENT (no row, no store, or in NULL). For an input
 * that decides from the row before its source exists (a file's start offset:
 * the row counts only if the file's fingerprint matches it).
 */
int lc_source_lookup(struct lc_input *in, const char *key, struct lc_ckpt_entry *row);
/*
 * lc_source_new for a source with a checkpoint row: looks `key` up first
 * (lc_source_lookup). *found says whether it has a row; if so *row holds it,
 * valid as above (nothing here calls the store after the lookup). The
 * committed position starts at zero: the input decides where to start from
 * the row and says so with lc_source_start(). NULL on ENOMEM (*found and *row
 * are filled all the same).
 */
struct lc_source *lc_source_new_row(struct lc_input *in, const char *key, const char *path,
                                    struct lc_labels *labels, uint32_t max_marks,
                                    struct lc_ckpt_entry *row, bool *found);
/*
 * Before the first record: the committed position becomes pos, and is written
 * at the next checkpoint flush even if nothing is ever read (where to start is
 * a decision, e.g. start_at: end, that a restart must find). The text part
 * (lc_source_use_cursors) is left as it is.
 */
void lc_source_start(struct lc_source *s, const struct lc_pos *pos);
/*
 * The identity written with the committed position: device, inode and the
 * fingerprint (hash of the first fp_len bytes, 0: none yet) of a file. Not a
 * position move: written with the next one (or the start, lc_source_start).
 */
void lc_source_set_identity(struct lc_source *s, uint64_t dev, uint64_t ino, uint64_t fp_hash,
                            uint32_t fp_len);
/* Only the fingerprint part of the identity (it grows as a new file does). */
void lc_source_set_fingerprint(struct lc_source *s, uint64_t fp_hash, uint32_t fp_len);
/*
 * forget: when s is freed, its checkpoint row is deleted instead of written
 * (the stream is gone for good: a deleted file, a destroyed container). Set
 * before lc_source_release(); false by default.
 */
void lc_source_set_forget(struct lc_source *s, bool forget);
/*
 * fn(s, arg) is called when acks make s writable again after its ring was full
 * or it was over its share (lc_source_over_share); never once s is released.
 * fn NULL: no call. arg must outlive s.
 */
void lc_source_on_writable(struct lc_source *s, void (*fn)(struct lc_source *s, void *arg),
                           void *arg);
/* The label set s's records carry by default (owned by s: valid while s lives). */
struct lc_labels *lc_source_labels(const struct lc_source *s);
/* The second label set of s's records (a container's stderr), or NULL; owned by s. */
struct lc_labels *lc_source_extra_labels(const struct lc_source *s);
/*
 * Replace a label set: s takes over the caller's reference (labels may be
 * NULL for the extra one) and releases the one it held. Records already
 * emitted point at the old set: replace only before the first record, or when
 * s is drained (lc_source_drained).
 */
void lc_source_set_labels(struct lc_source *s, struct lc_labels *labels);
void lc_source_set_extra_labels(struct lc_source *s, struct lc_labels *labels);
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
/*
 * Seals the open mark at pos, even when it takes the last free slot (no
 * record follows, e.g. the input lets the stream go); with no open mark,
 * nothing (unlike lc_source_checkpoint, which would record an empty mark or
 * fold pos into the newest one).
 */
void lc_source_seal(struct lc_source *s, const struct lc_pos *pos);
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
 * For batches: true when seq (from lc_source_mark_ref) is the open mark, so a
 * record of s added now joins it without a new reference.
 */
bool lc_source_mark_is_open(const struct lc_source *s, uint64_t seq);
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

/* The committed position (what reaches the checkpoint store). */
const struct lc_pos *lc_source_committed(const struct lc_source *s);
/* Its text part (lc_source_use_cursors), or NULL without one. */
const char *lc_source_committed_cursor(const struct lc_source *s);
/* True once a failed mark stopped commits for this run. */
bool lc_source_stuck(const struct lc_source *s);
/* True when the committed position moved since it was last written (lc_source_persist). */
bool lc_source_unsaved(const struct lc_source *s);
/* Marks in flight (emitted, not yet committed): at most max_marks. */
uint32_t lc_source_marks(const struct lc_source *s);
/* Bytes of its records in batches not yet done (lc_source_pending). */
int64_t lc_source_pending_bytes(const struct lc_source *s);
/* The input that created s (NULL in tests). */
struct lc_input *lc_source_input(const struct lc_source *s);

/*
 * For the agent (lc_agent_add_source): s joins the list *list (s is unlinked
 * when freed) and its commits go to ckpt (NULL: nowhere).
 */
void lc_source_link(struct lc_source *s, struct lc_source **list, struct lc_ckpt *ckpt);
/* The next source of the agent's list, or NULL. */
struct lc_source *lc_source_next(const struct lc_source *s);

/* Writes the committed position to the checkpoint store if it moved. */
void lc_source_persist(struct lc_source *s);
/* Frees s at once whatever its marks (shutdown only); persists first. */
void lc_source_free(struct lc_source *s);

#endif
