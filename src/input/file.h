/* SPDX-License-Identifier: MIT */
/* file.h: the file input's internal types, shared by file.c (discovery) and file_tail.c (reading).
 */
#ifndef LC_INPUT_FILE_H
#define LC_INPUT_FILE_H

#include "core/agent.h"
#include "core/buf.h"
#include "core/source.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

enum lc_file_start { LC_START_END = 0, LC_START_BEGINNING };
enum lc_file_ts { LC_TS_READ = 0, LC_TS_PARSE };

struct lc_file_conf {
    struct lc_strlist paths;
    /* The last this many of paths are for lc_file_in_start() only (its first scan and
     * watches: e.g. rotated logs left from before); later scans and events use the others. */
    size_t start_only_paths;
    struct lc_strlist exclude;
    int start_at;
    int64_t max_age_ms;
    int64_t max_line_bytes;
    int64_t read_bytes;
    int64_t rescan_ms;
    int64_t poll_ms;
    int64_t flush_ms;
    int64_t rotate_wait_ms;
    int64_t max_files;
    int64_t max_rotated; /* rotated files held open per path, waiting to be read */
    int64_t max_unacked;
    int timestamp;
};

#define LC_FP_BYTES 1024 /* fingerprint: a hash of up to the first 1 KiB */
/*
 * In a file's checkpoint row, ts_seq with this bit: the file was rotated and
 * read to its end, so a restart that finds it deleted has lost nothing.
 */
#define LC_POS_DONE 0x80000000u

struct lc_tail;
struct lc_file_in;
struct lc_dir_watch;

/*
 * How a family of files is read. The plain file input has none; the docker
 * input's file mode (docker_file.c) decodes json-file lines and labels records
 * from container metadata, and reuses everything else here: discovery,
 * rotation, identity, offsets, backpressure.
 */
struct lc_tail_ops {
    /*
     * A file was opened. Return 0 when its labels are known (the ops called
     * lc_tail_attach), LC_TAIL_WAIT when they will be (metadata on its way:
     * the ops calls lc_tail_attach later), or -errno to skip the file.
     */
    int (*open)(struct lc_tail *t);
    /*
     * One complete raw line at file offset `at`. Returns true when, after it,
     * no record is half assembled, so the position after it may be committed.
     */
    bool (*line)(struct lc_tail *t, const char *line, size_t len, int64_t now);
    /* The tail is being closed (its source may live on until acked). */
    void (*close)(struct lc_tail *t);
    /*
     * First sight with max_age: move t->offset to the first line not older
     * than `cutoff_ns` (optional; without it lines are skipped one by one).
     */
    void (*seek_time)(struct lc_tail *t, int64_t cutoff_ns, int64_t size);
    /*
     * Optional: the time of the first complete line at or after byte `off`
     * of t, or -1 (for gap detection and a gap's time range).
     */
    int64_t (*line_time)(struct lc_tail *t, int64_t off);
    /*
     * Optional: the poll found t read to its end (e.g. to send what a decoder
     * holds once the file has been quiet long enough; t->idle_since).
     */
    void (*idle)(struct lc_tail *t);
    /*
     * Optional: a line could not be queued and the tail goes back to a
     * position after which no record was half assembled (t->safe_offset or
     * a line end): forget what the decoder holds, it is read again.
     */
    void (*rewind)(struct lc_tail *t);
    /*
     * Optional: whether a path the globs found is read at all (e.g. the
     * kubernetes input's namespace/pod/container filters); asked before it is
     * opened, at every scan, so a file left out costs no descriptor.
     */
    bool (*wanted)(struct lc_file_in *fi, const char *path);
};
#define LC_TAIL_WAIT 1

/* One open file. */
struct lc_tail {
    struct lc_file_in *fi;
    char *path;
    int fd;
    dev_t dev;
    ino_t ino;
    int64_t offset;      /* next byte to read */
    int64_t line_start;  /* file offset where the held partial line starts */
    int64_t safe_offset; /* the last offset where no line or split line was half read */
    int64_t once_target; /* --once: the size it had when first seen */
    uint64_t fp_hash;
    uint32_t fp_len;
    struct lc_source *src;
    struct lc_buf partial; /* a line without its newline yet, at most max_line_bytes */
    bool discarding;       /* dropping the rest of an over-long line */
    bool skip_old;         /* first sight with max_age: skip lines older than it */
    bool hot;              /* may have unread data */
    bool rotated;          /* its path now names another file: finish, then close */
    bool deleted;
    bool done;      /* rotated, read to its end, and a position saying so sealed (LC_POS_DONE) */
    bool check_gap; /* the chain back to `after` may be broken: judged by line times */
    int64_t pred_last_ts; /* `after`'s last line time, kept when it closes first */
    dev_t deferred_dev;   /* the successor not opened at max_rotated (ino 0: none) */
    ino_t deferred_ino;
    int64_t idle_since;    /* monotonic ns of the last data, for flush and rotate_wait */
    int64_t retry_ns;      /* a line could not be queued: not read before (monotonic); 0: none */
    int64_t retry_ms;      /* the wait before that retry, doubled per failure, reset by a success */
    bool emit_failed;      /* lc_tail_emit failed since the tail last went back (lc_tail_retry) */
    uint64_t uncounted;    /* lines emitted, not yet in the input's lines counter (lc_tail_count) */
    int64_t last_ts;       /* time of the last record emitted, saved with the position */
    uint32_t last_ts_seq;  /* records emitted at exactly last_ts */
    bool waiting;          /* labels not known yet: not read */
    bool first_sight;      /* no checkpoint: the first-sight rule chose the start */
    void *priv;            /* the ops' per-file state */
    struct lc_tail *after; /* the rotated file this one replaced: read that to its end first */
    struct lc_tail *next;
};

enum { LC_ROT_RENAME, LC_ROT_TRUNCATE }; /* the kinds of rotation counted */

/* The input instance. */
struct lc_file_in {
    struct lc_input *in;
    const struct lc_file_conf *c;
    const struct lc_tail_ops *ops; /* NULL: plain text lines */
    void *owner;                   /* the ops' instance state */
    struct lc_tail *tails;
    size_t ntails;
    char *readbuf;
    uv_idle_t work;    /* runs while some file is hot */
    uv_timer_t rescan; /* globs */
    uv_timer_t poll;   /* stat open files: the fallback when inotify misses something */
    uv_fs_event_t *watches;
    size_t nwatches;
    struct lc_dir_watch *dwatches; /* directories a glob matched (e.g. one per container) */
    size_t ndwatches;
    char *glob_parent;  /* the directory above them, watched for new ones; NULL: none */
    size_t closing;     /* handles whose close callback is pending */
    size_t npaths;      /* the patterns of c->paths in use (see start_only_paths) */
    bool first_start;   /* the state store has never seen this input */
    int64_t started_ns; /* CLOCK_REALTIME at start: rows committed before are an earlier run's */
    bool scanned;
    bool paused;
    bool stopping;
    void (*stopped)(void *arg);
    void *stopped_arg;
    struct lc_metric_series *m_open;
    struct lc_metric_series *m_rot[2]; /* rotations by kind: LC_ROT_RENAME, LC_ROT_TRUNCATE */
    struct lc_metric_series *m_cut;
    struct lc_metric_series *m_skip_old;
    struct lc_metric_series *m_partial_flush;
    struct lc_metric_series *m_errors;
    struct lc_metric_series *m_too_many;
    struct lc_metric_series *m_rows_swept;
    struct lc_metric_series *m_gaps;     /* rotated data gone before it was read */
    struct lc_metric_series *m_rotated;  /* rotated files held open, gauge */
    struct lc_metric_series *m_deferred; /* successors not opened at max_rotated */
    struct lc_metric_series *m_watched;  /* directories watched, gauge */
    size_t nrotated;
    uint64_t rescans; /* every LC_SWEEP_EVERY rescans, dead checkpoint rows are swept */
};

/* file.c: the machinery, for the docker input's file mode too. */
/* Allocates and initialises (metrics, buffers) a file reader for `in`. 0 or -errno. */
int lc_file_in_init(struct lc_input *in, const struct lc_file_conf *c,
                    const struct lc_tail_ops *ops, void *owner, struct lc_file_in **out);
/*
 * Starts the handles on the agent's loop (watches, rescan and poll timers) and
 * runs the first scan. 0 or -errno; after a failure only lc_file_in_free().
 */
int lc_file_in_start(struct lc_file_in *fi);
/* The pipeline is full: no file is read until lc_file_in_resume() (a block in progress ends). */
void lc_file_in_pause(struct lc_file_in *fi);
/* Room again: every file is read on (those waiting to retry a line keep their backoff). */
void lc_file_in_resume(struct lc_file_in *fi);
/* For --once: true when the first scan ran and every file was read to the size it had then. */
bool lc_file_in_caught_up(struct lc_file_in *fi);
/* Closes every file and handle; stopped(arg) runs once the last handle closed. */
void lc_file_in_stop(struct lc_file_in *fi, void (*stopped)(void *arg), void *arg);
/* Frees fi (after stopped ran, or after a failed init or start). NULL is a no-op. */
void lc_file_in_free(struct lc_file_in *fi);
/* Looks for new and rotated files now (e.g. a container started). */
void lc_file_in_rescan(struct lc_file_in *fi);
/* Every file below dir is gone (a removed container): read to its end through the held
 * descriptor, then closed (after rotate_wait of quiet). */
void lc_file_in_close_under(struct lc_file_in *fi, const char *dir);
/*
 * For ops->open of a file that replaced `after` at `path`: when several
 * rotations happened between two scans, path.1, path.2, ... up to the first
 * file already known (open or checkpointed) were never seen. Opens them,
 * oldest first, each read after the one before it, the first after `after`.
 * Returns the newest one opened, or `after` if none: what the new file must
 * be read after (t->after). When the walk ends before a known file, the
 * oldest one opened is checked for a gap once `after` is read, or, if none
 * was opened, *check is set: the caller sets t->check_gap on the new file.
 */
struct lc_tail *lc_file_in_open_missed(struct lc_file_in *fi, const char *path,
                                       struct lc_tail *after, bool *check);
/*
 * The same for other rotated names: name(arg, path, i, buf, len) writes the
 * i-th newest rotated file of path (i >= 1) into buf, or returns false when
 * there is none.
 */
typedef bool (*lc_rotated_name_fn)(void *arg, const char *path, int i, char *buf, size_t len);
struct lc_tail *lc_file_in_open_missed_names(struct lc_file_in *fi, const char *path,
                                             struct lc_tail *after, bool *check,
                                             lc_rotated_name_fn name, void *arg);
/*
 * Counts and logs data lost to rotation: `what` (e.g. "one or more
 * generations") of `path`, read up to byte `offset` and line time `last_ts`
 * (0: unknown), before `next` (NULL: unknown), whose first line time the ops
 * may tell. The counter is fi->m_gaps (the docker input sets its own).
 */
void lc_file_in_gap(struct lc_file_in *fi, const char *path, const char *what, int64_t offset,
                    int64_t last_ts, struct lc_tail *next);
/*
 * For ops->open: the file's labels are known; its source is created and
 * reading starts. `labels` is borrowed. 0 or -ENOMEM.
 */
int lc_tail_attach(struct lc_tail *t, struct lc_labels *labels);
/*
 * Emits one record of t with explicit labels (they must live as long as t's
 * source). 0, or lc_pipeline_emit's negative errno: then t->emit_failed is set,
 * the line is not queued, and the caller MUST not seal a position past it;
 * the block reader goes back before it (lc_tail_retry). Ops calling it
 * outside a block (ops->idle) call lc_tail_retry themselves.
 */
int lc_tail_emit(struct lc_tail *t, struct lc_labels *labels, int64_t ts, const char *line,
                 size_t len);
/*
 * Adds the lines t emitted since the last call to the input's lines counter.
 * lc_tail_emit only counts them in t: the counter is shared with the metrics
 * thread, and one atomic add per line was a visible share of the hot path.
 * lc_tail_read, lc_tail_flush_partial and the file input's idle tick call it.
 */
void lc_tail_count(struct lc_tail *t);
/*
 * A line could not be queued: t goes back to `t->safe_offset` (the last
 * position sealed with nothing half assembled), drops its held partial line
 * and what the ops' decoder holds (ops->rewind), and is not read again before
 * a backoff (LC_TAIL_RETRY_MIN_MS doubling up to LC_TAIL_RETRY_MAX_MS) passed;
 * the poll timer reads it then. What was after safe_offset is read again.
 */
void lc_tail_retry(struct lc_tail *t);
#define LC_TAIL_RETRY_MIN_MS 100
#define LC_TAIL_RETRY_MAX_MS 5000

/* file_tail.c */
/*
 * Reads t from t->offset in read_bytes blocks until `budget` bytes, its end,
 * a pipeline pause or its source's share, or a line that could not be queued
 * (t then went back: lc_tail_retry). Returns the bytes consumed (0 while a
 * retry's backoff runs), or -errno on a read error (counted, logged; t is no
 * longer hot). t->hot stays true only when more may be waiting. A file now
 * shorter than t->offset, or whose first bytes no longer match its
 * fingerprint (rewritten in place), is handled as truncated first.
 */
int64_t lc_tail_read(struct lc_tail *t, int64_t budget);
/*
 * Emits the held partial line of a plain file once it waited flush_ms
 * (`now_mono` against t->idle_since), counts it and checkpoints past it. A
 * no-op with ops (a decoder's partial line is a torn write), when the source
 * is not writable, or while a retry waits; if the emit fails, lc_tail_retry.
 */
void lc_tail_flush_partial(struct lc_tail *t, int64_t now_mono);
/*
 * t's file shrank (copytruncate) or was rewritten in place: counted and logged, read
 * again from byte 0, its fingerprint and checkpoint reset, the held partial
 * line dropped.
 */
void lc_tail_truncated(struct lc_tail *t);
/*
 * The file fingerprint's hash (64-bit FNV-1a): h extended with n bytes of p.
 * Start from LC_FP_SEED; pure, so the same bytes always give the same hash.
 */
uint64_t lc_fp_update(uint64_t h, const char *p, size_t n);
#define LC_FP_SEED 14695981039346656037ULL

#endif
