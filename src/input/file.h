/* SPDX-License-Identifier: MIT */
/* file.h: the file input's internal types, shared by file.c (discovery) and file_tail.c (reading). */
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
    int64_t max_unacked;
    int timestamp;
};

#define LC_FP_BYTES 1024 /* fingerprint: a hash of up to the first 1 KiB */

/* One open file. */
struct lc_tail {
    struct lc_file_in *fi;
    char *path;
    int fd;
    dev_t dev;
    ino_t ino;
    int64_t offset;      /* next byte to read */
    int64_t line_start;  /* file offset where the held partial line starts */
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
    int64_t idle_since;    /* monotonic ns of the last data, for flush and rotate_wait */
    struct lc_tail *next;
};

/* The input instance. */
struct lc_file_in {
    struct lc_input *in;
    const struct lc_file_conf *c;
    struct lc_tail *tails;
    size_t ntails;
    char *readbuf;
    uv_idle_t work;      /* runs while some file is hot */
    uv_timer_t rescan;   /* globs */
    uv_timer_t poll;     /* stat open files: the fallback when inotify misses something */
    uv_fs_event_t *watches;
    size_t nwatches;
    size_t closing;      /* handles whose close callback is pending */
    bool first_start;    /* the state store has never seen this input */
    bool scanned;
    bool paused;
    bool stopping;
    struct lc_metric_series *m_open;
    struct lc_metric_series *m_rot_rename;
    struct lc_metric_series *m_rot_truncate;
    struct lc_metric_series *m_cut;
    struct lc_metric_series *m_skip_old;
    struct lc_metric_series *m_partial_flush;
    struct lc_metric_series *m_errors;
    struct lc_metric_series *m_too_many;
};

/* file_tail.c */
/* Reads what t has, up to a budget of bytes; returns bytes read, or -errno. */
int64_t lc_tail_read(struct lc_tail *t, int64_t budget);
/* Emits a held partial line that waited longer than flush timeout. */
void lc_tail_flush_partial(struct lc_tail *t, int64_t now_mono);
/* Handles a shrunk file (copytruncate): back to 0. */
void lc_tail_truncated(struct lc_tail *t);
uint64_t lc_fp_update(uint64_t h, const char *p, size_t n);
#define LC_FP_SEED 14695981039346656037ULL

#endif
