/* SPDX-License-Identifier: MIT */
/* file.c: the `file` input: globs, inotify and polling, rotation, first-sight rules. */
#include "input/file.h"

#include "core/ckpt.h"
#include "core/labels.h"
#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <inttypes.h>
#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * A file is known by device and inode, plus a fingerprint (a hash of its
 * first bytes, up to 1 KiB) that tells a reused inode from the file we had.
 * inotify (through libuv, one watch per directory) makes us read at once; a
 * poll of the open files and a rescan of the globs catch whatever inotify
 * cannot see (network filesystems, a directory created later, overflow).
 *
 * Rotation by rename: the path now names a new inode. The old file stays open
 * until it was read to its end and has been quiet for rotate_wait, then it is
 * closed; the new file is read from its first byte. Copytruncate: the file is
 * shorter than what we read, so we read it again from 0.
 */

static const char *const start_choices[] = {"end", "beginning", NULL};
static const char *const ts_choices[] = {"read", "parse", NULL};

#define OPT(t, k, d, f, lo, hi, h)                                                                 \
    {                                                                                              \
        (t), (k), (d), offsetof(struct lc_file_conf, f), (lo), (hi), .help = (h)                   \
    }

static const struct lc_option file_options[] = {
    {LC_OPT_STRLIST, "paths", NULL, offsetof(struct lc_file_conf, paths), .flags = LC_OPT_REQUIRED,
     .help = "Files to tail: paths or glob patterns."},
    {LC_OPT_STRLIST, "exclude", NULL, offsetof(struct lc_file_conf, exclude),
     .help = "Glob patterns (full path or file name) to leave out, e.g. \"*.gz\"."},
    {LC_OPT_ENUM, "start_at", "end", offsetof(struct lc_file_conf, start_at),
     .choices = start_choices,
     .help = "Where to start in a file that exists at the agent's very first start. Files "
             "that appear later are read from their first byte."},
    OPT(LC_OPT_DURATION, "max_age", "0", max_age_ms, 0, 0,
        "With start_at: beginning, skip lines older than this whose time is known (an "
        "RFC 3339 or syslog prefix); 0 keeps all."),
    OPT(LC_OPT_SIZE, "max_line_bytes", "256KiB", max_line_bytes, 256, 16 << 20,
        "Longer lines are cut to this size (counted)."),
    OPT(LC_OPT_SIZE, "read_bytes", "256KiB", read_bytes, 4096, 16 << 20, "Size of one read."),
    OPT(LC_OPT_DURATION, "rescan_interval", "1s", rescan_ms, 10, 3600000,
        "How often the globs are expanded again."),
    OPT(LC_OPT_DURATION, "poll_interval", "250ms", poll_ms, 10, 60000,
        "How often open files are checked for growth, truncation and rotation."),
    OPT(LC_OPT_DURATION, "line_flush_timeout", "5s", flush_ms, 10, 3600000,
        "A last line without its newline is sent after this long without new data."),
    OPT(LC_OPT_DURATION, "rotate_wait", "5s", rotate_wait_ms, 0, 3600000,
        "A rotated-away file is closed once read to its end and quiet this long."),
    OPT(LC_OPT_INT, "max_files", "1024", max_files, 1, 1000000,
        "Most files open at once; more are skipped and counted."),
    OPT(LC_OPT_INT, "max_unacked_reads", "64", max_unacked, 2, 65536,
        "Reads per file waiting for delivery before reading that file pauses."),
    {LC_OPT_ENUM, "timestamp", "read", offsetof(struct lc_file_conf, timestamp),
     .choices = ts_choices,
     .help = "A record's time: when it was read, or parsed from an RFC 3339 or syslog prefix "
             "of the line (read time where there is none)."},
    LC_OPT_END,
};

static void on_work(uv_idle_t *h);

static void kick(struct lc_file_in *fi)
{
    if (!fi->stopping && !fi->paused)
        uv_idle_start(&fi->work, on_work);
}

static struct lc_tail *find_inode(struct lc_file_in *fi, dev_t dev, ino_t ino)
{
    for (struct lc_tail *t = fi->tails; t; t = t->next)
        if (t->dev == dev && t->ino == ino)
            return t;
    return NULL;
}

static bool excluded(const struct lc_file_conf *c, const char *path)
{
    const char *base = strrchr(path, '/');

    base = base ? base + 1 : path;
    for (size_t i = 0; i < c->exclude.n; i++)
        if (fnmatch(c->exclude.v[i], path, FNM_PATHNAME) == 0 ||
            fnmatch(c->exclude.v[i], base, 0) == 0)
            return true;
    return false;
}

static void make_key(const struct lc_file_in *fi, dev_t dev, ino_t ino, char *key, size_t len)
{
    snprintf(key, len, "file:%s:%" PRIu64 ":%" PRIu64, fi->in->conf->name, (uint64_t)dev,
             (uint64_t)ino);
}

/* Hashes the first n bytes of fd; false if it has fewer. */
static bool fingerprint(int fd, uint32_t n, uint64_t *hash)
{
    char buf[LC_FP_BYTES];
    ssize_t got;

    if (n > LC_FP_BYTES)
        n = LC_FP_BYTES;
    got = pread(fd, buf, n, 0);
    if (got < 0 || (uint32_t)got != n)
        return false;
    *hash = lc_fp_update(LC_FP_SEED, buf, n);
    return true;
}

static struct lc_labels *file_labels(struct lc_file_in *fi, const char *path)
{
    const struct lc_kvlist *l = &fi->in->conf->labels;
    struct lc_kv kv[LC_LABELS_MAX + 1];
    struct lc_labels *out = NULL;
    size_t n = 0;

    for (size_t i = 0; i < l->n && n < LC_LABELS_MAX; i++)
        kv[n++] = l->v[i];
    kv[n].key = "filename";
    kv[n].value = (char *)path;
    n++;
    lc_labels_intern(kv, n, &out);
    return out;
}

/*
 * Where to start reading a file we just opened: its checkpoint when the
 * identity matches, else the first-sight rule.
 */
static int64_t start_offset(struct lc_file_in *fi, struct lc_tail *t, const char *key, int64_t size,
                            bool at_start)
{
    struct lc_ckpt_entry e;
    uint64_t h;

    if (lc_ckpt_get(fi->in->agent->ckpt, key, &e) == 0) {
        bool same = e.fp_len == 0 || (fingerprint(t->fd, e.fp_len, &h) && h == e.fp_hash);
        if (same)
            return e.pos.offset <= size ? e.pos.offset : 0;
        lc_logf(LC_LOG_INFO, fi->in->conf->name, NULL,
                "%s: inode reused by a different file: reading it from the start", t->path);
    }
    t->first_sight = true;
    if (!(fi->first_start && at_start))
        return 0;
    if (fi->c->start_at == LC_START_END)
        return size;
    t->skip_old = fi->c->max_age_ms > 0;
    return 0;
}

static void free_tail(struct lc_tail *t)
{
    if (t->fd >= 0)
        close(t->fd);
    lc_buf_free(&t->partial);
    free(t->path);
    free(t);
}

int lc_tail_attach(struct lc_tail *t, struct lc_labels *labels)
{
    struct lc_file_in *fi = t->fi;
    struct lc_pos pos = {.offset = t->offset, .ts_ns = t->last_ts, .ts_seq = t->last_ts_seq};
    char key[256];

    make_key(fi, t->dev, t->ino, key, sizeof(key));
    t->src = lc_source_new(fi->in, key, t->path, labels, &pos, (uint32_t)fi->c->max_unacked);
    if (!t->src)
        return -ENOMEM;
    t->src->ck.dev = (uint64_t)t->dev;
    t->src->ck.ino = (uint64_t)t->ino;
    t->src->ck.fp_hash = t->fp_hash;
    t->src->ck.fp_len = t->fp_len;
    t->src->dirty = true; /* the start position is a decision: persist it now */
    lc_agent_add_source(fi->in->agent, t->src);
    t->waiting = false;
    t->hot = true;
    lc_logf(LC_LOG_INFO, fi->in->conf->name, NULL, "tailing %s from offset %lld", t->path,
            (long long)t->offset);
    kick(fi);
    return 0;
}

static int attach_plain(struct lc_tail *t)
{
    struct lc_labels *labels = file_labels(t->fi, t->path);
    int rc = labels ? lc_tail_attach(t, labels) : -ENOMEM;

    lc_labels_release(labels);
    return rc;
}

static void unlink_tail(struct lc_file_in *fi, struct lc_tail *t)
{
    struct lc_tail **pp;

    for (pp = &fi->tails; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    fi->ntails--;
    lc_gauge_set(fi->m_open, (int64_t)fi->ntails);
    for (struct lc_tail *x = fi->tails; x; x = x->next)
        if (x->after == t)
            x->after = NULL;
}

static int open_tail(struct lc_file_in *fi, const char *path, bool at_start, struct lc_tail *after)
{
    struct lc_tail *t;
    struct stat st;
    char key[256];
    char last;
    int rc;

    if (fi->ntails >= (size_t)fi->c->max_files) {
        lc_counter_inc(fi->m_too_many);
        lc_log(LC_LOG_WARN, fi->in->conf->name, "max_files reached: not reading %s", path);
        return -EMFILE;
    }
    t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->fi = fi;
    t->fd = open(path, O_RDONLY | O_CLOEXEC);
    t->path = strdup(path);
    if (t->fd < 0 || !t->path || fstat(t->fd, &st) != 0) {
        int e = t->fd < 0 ? errno : ENOMEM;
        lc_counter_inc(fi->m_errors);
        lc_logf(LC_LOG_WARN, fi->in->conf->name, NULL, "cannot open %s: %s", path, strerror(e));
        free_tail(t);
        return -e;
    }
    t->dev = st.st_dev;
    t->ino = st.st_ino;
    lc_buf_init(&t->partial, (size_t)fi->c->max_line_bytes);
    make_key(fi, t->dev, t->ino, key, sizeof(key));
    t->offset = start_offset(fi, t, key, st.st_size, at_start);
    if (t->skip_old && fi->ops && fi->ops->seek_time)
        fi->ops->seek_time(t, lc_now_ns() - fi->c->max_age_ms * LC_NS_PER_MSEC, st.st_size);
    /* Starting inside a line (at the end of an unfinished one): drop its rest. */
    if (t->offset > 0 && pread(t->fd, &last, 1, t->offset - 1) == 1 && last != '\n')
        t->discarding = true;
    t->fp_hash = LC_FP_SEED;
    t->fp_len = 0;
    uint32_t have = st.st_size < LC_FP_BYTES ? (uint32_t)st.st_size : LC_FP_BYTES;
    if (have > 0 && fingerprint(t->fd, have, &t->fp_hash))
        t->fp_len = have;
    t->once_target = st.st_size;
    t->idle_since = lc_mono_ns();
    t->waiting = true;
    t->after = after;
    t->next = fi->tails;
    fi->tails = t;
    fi->ntails++;
    lc_gauge_set(fi->m_open, (int64_t)fi->ntails);
    rc = fi->ops ? fi->ops->open(t) : attach_plain(t);
    if (rc < 0) {
        unlink_tail(fi, t);
        if (fi->ops && fi->ops->close)
            fi->ops->close(t);
        if (t->src) {
            lc_source_release(t->src);
            t->src = NULL;
        }
        free_tail(t);
        return rc;
    }
    return 0;
}

static void close_tail(struct lc_file_in *fi, struct lc_tail *t)
{
    unlink_tail(fi, t);
    if (fi->ops && fi->ops->close)
        fi->ops->close(t);
    if (t->src) {
        t->src->forget = t->deleted;
        lc_source_release(t->src);
        t->src = NULL;
    }
    free_tail(t);
}

/* One path found by a glob. */
static void consider(struct lc_file_in *fi, const char *path)
{
    struct stat st;
    struct lc_tail *t, *after = NULL;

    if (excluded(fi->c, path) || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    t = find_inode(fi, st.st_dev, st.st_ino);
    if (t) {
        if (strcmp(t->path, path) != 0 && t->rotated) {
            /* renamed to a name we also follow: it is an ordinary file again */
            char *p = strdup(path);
            if (p) {
                free(t->path);
                t->path = p;
                t->rotated = false;
            }
        }
        return;
    }
    for (t = fi->tails; t; t = t->next) {
        if (strcmp(t->path, path) == 0) {
            t->rotated = true; /* the path names a new file now (the poll may have seen it) */
            t->hot = true;     /* final now: read it to its end before the new one */
            if (!after)
                after = t; /* the newest, the list is newest first */
        }
    }
    if (after)
        lc_counter_inc(fi->m_rot_rename);
    open_tail(fi, path, !fi->scanned, after);
}

static void forget_stale(const struct lc_ckpt_entry *e, void *arg)
{
    struct lc_file_in *fi = arg;

    if (!find_inode(fi, (dev_t)e->dev, (ino_t)e->ino))
        lc_ckpt_del(fi->in->agent->ckpt, e->key);
}

static void rescan(struct lc_file_in *fi)
{
    for (size_t i = 0; i < fi->c->paths.n; i++) {
        glob_t g;
        int rc = glob(fi->c->paths.v[i], GLOB_NOSORT, NULL, &g);
        if (rc == 0)
            for (size_t j = 0; j < g.gl_pathc; j++)
                consider(fi, g.gl_pathv[j]);
        globfree(&g);
    }
    if (!fi->scanned) {
        char prefix[160], meta[200];
        snprintf(prefix, sizeof(prefix), "file:%s:", fi->in->conf->name);
        /* Rows of files that are gone: nothing will ever resume them. */
        lc_ckpt_each(fi->in->agent->ckpt, prefix, forget_stale, fi);
        snprintf(meta, sizeof(meta), "input:%s:seen", fi->in->conf->name);
        lc_ckpt_meta_put(fi->in->agent->ckpt, meta, "1");
        fi->scanned = true;
    }
}

/*
 * Rows of files we closed (read to their end after a rotation) stay while the
 * file exists: a restart resumes it from there instead of reading it again.
 * Once the file itself is gone (deleted by the rotation), its row is dead
 * weight: a row goes when no file in its directory has its device and inode
 * (a rename within the directory keeps it). So the table holds one row per
 * file on disk, however long the agent runs.
 */
static bool inode_in_dir(const char *path, uint64_t dev, uint64_t ino)
{
    char dir[4096];
    struct dirent *de;
    DIR *d;
    bool found = false;

    snprintf(dir, sizeof(dir), "%s", path);
    d = opendir(dirname(dir));
    if (!d)
        return errno != ENOENT; /* unreadable: keep it; a missing directory: gone */
    while (!found && (de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_ino != (ino_t)ino || fstatat(dirfd(d), de->d_name, &st, 0) != 0)
            continue;
        found = (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
    }
    closedir(d);
    return found;
}

static bool sweep_keep(const struct lc_ckpt_entry *e, void *arg)
{
    return find_inode(arg, (dev_t)e->dev, (ino_t)e->ino);
}

static bool sweep_gone(const struct lc_ckpt_entry *e) /* on the disk worker thread */
{
    return !inode_in_dir(e->path, e->dev, e->ino);
}

static void sweep_deleted(const struct lc_ckpt_entry *e, void *arg)
{
    (void)e;
    lc_counter_inc(((struct lc_file_in *)arg)->m_rows_swept);
}

static const struct lc_ckpt_sweep_ops sweep_ops = {sweep_keep, sweep_gone, sweep_deleted};

#define LC_SWEEP_EVERY 60 /* rescans (a minute with the default rescan_interval) */

static void on_rescan(uv_timer_t *h)
{
    struct lc_file_in *fi = h->data;

    rescan(fi);
    if (++fi->rescans % LC_SWEEP_EVERY == 0) {
        char prefix[160];
        snprintf(prefix, sizeof(prefix), "file:%s:", fi->in->conf->name);
        /* the directory checks run on the disk worker, the deletes back here */
        lc_ckpt_sweep_start(fi->in->agent->ckpt, fi->in->agent->worker, prefix, &sweep_ops, fi);
    }
}

static void check_tail(struct lc_tail *t, int64_t now)
{
    struct stat st, pst;

    if (t->waiting)
        return;                             /* its labels are on their way */
    if (t->src && fstat(t->fd, &st) == 0) { /* without a source it is never read */
        if (st.st_size < t->offset)
            lc_tail_truncated(t);
        else if (st.st_size > t->offset)
            t->hot = true;
        if (st.st_nlink == 0)
            t->deleted = true;
    }
    if (!t->rotated && (stat(t->path, &pst) != 0 || pst.st_ino != t->ino || pst.st_dev != t->dev))
        t->rotated = true; /* moved or removed: the rescan opens a successor, if any */
    if (!t->hot)
        lc_tail_flush_partial(t, now);
    if (!t->hot && t->src && t->fi->ops && t->fi->ops->idle)
        t->fi->ops->idle(t);
}

static void on_poll(uv_timer_t *h)
{
    struct lc_file_in *fi = h->data;
    int64_t now = lc_mono_ns();
    struct lc_tail *t = fi->tails, *next;
    bool hot = false;

    for (; t; t = next) {
        next = t->next;
        check_tail(t, now);
        /* one never read (excluded, no labels) goes at once: no fd leak per rotation */
        if ((t->rotated || t->deleted) && !t->waiting &&
            (!t->src || (!t->hot && t->partial.len == 0 &&
                         now - t->idle_since >= fi->c->rotate_wait_ms * LC_NS_PER_MSEC))) {
            lc_logf(LC_LOG_INFO, fi->in->conf->name, NULL, "closing %s: %s and read to its end",
                    t->path, t->deleted ? "deleted" : "rotated");
            close_tail(fi, t);
            continue;
        }
        hot |= t->hot;
    }
    if (hot)
        kick(fi);
}

/* Reads hot files round-robin, a budget each, so one busy file cannot starve the loop. */
static void on_work(uv_idle_t *h)
{
    struct lc_file_in *fi = h->data;
    bool hot = false;

    if (lc_pipeline_paused(fi->in->agent)) {
        uv_idle_stop(h);
        return;
    }
    for (struct lc_tail *t = fi->tails; t; t = t->next) {
        if (!t->src)
            continue;
        if (t->after && (t->after->waiting || (t->after->src && t->after->hot)))
            continue; /* lines in order across a rotation (and split lines joined) */
        if (t->hot && lc_source_writable(t->src))
            lc_tail_read(t, 4 * fi->c->read_bytes);
        hot |= t->hot && lc_source_writable(t->src);
    }
    if (!hot)
        uv_idle_stop(h);
}

static void on_fs_event(uv_fs_event_t *h, const char *name, int events, int status)
{
    struct lc_file_in *fi = h->data;
    char dir[4096], path[4096 + 256];
    size_t dlen = sizeof(dir);

    if (status < 0 || !name || uv_fs_event_getpath(h, dir, &dlen) != 0)
        return;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    for (struct lc_tail *t = fi->tails; t; t = t->next) {
        if (strcmp(t->path, path) == 0) {
            t->hot = true;
            if (!(events & UV_RENAME)) {
                kick(fi);
                return;
            }
        }
    }
    rescan(fi); /* a new or renamed file */
    kick(fi);
}

static bool has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

static void watch_dirs(struct lc_file_in *fi)
{
    fi->watches = calloc(fi->c->paths.n, sizeof(*fi->watches));
    if (!fi->watches)
        return;
    for (size_t i = 0; i < fi->c->paths.n; i++) {
        char copy[4096];
        const char *dir;
        bool dup = false;

        snprintf(copy, sizeof(copy), "%s", fi->c->paths.v[i]);
        dir = dirname(copy);
        if (has_glob(dir))
            continue; /* the rescan covers it */
        for (size_t j = 0; j < fi->nwatches && !dup; j++) {
            char p[4096];
            size_t len = sizeof(p);
            dup = uv_fs_event_getpath(&fi->watches[j], p, &len) == 0 && strcmp(p, dir) == 0;
        }
        if (dup)
            continue;
        uv_fs_event_t *w = &fi->watches[fi->nwatches];
        uv_fs_event_init(fi->in->agent->loop, w);
        w->data = fi;
        if (uv_fs_event_start(w, on_fs_event, dir, 0) != 0) {
            /* a missing directory: the rescan picks its files up once it exists */
            uv_close((uv_handle_t *)w, NULL);
            memset(w, 0, sizeof(*w));
            continue;
        }
        fi->nwatches++;
    }
}

int lc_file_in_init(struct lc_input *in, const struct lc_file_conf *c,
                    const struct lc_tail_ops *ops, void *owner, struct lc_file_in **out)
{
    static const char *const l_in[] = {"input", NULL};
    static const char *const l_kind[] = {"input", "kind", NULL};
    static const char *const l_reason[] = {"input", "reason", NULL};
    struct lc_file_in *fi;
    struct lc_metric_family *f;
    const char *name = in->conf->name;

    *out = NULL;
    if (!ops && c->max_line_bytes > in->agent->cfg->batch_bytes) {
        lc_log(LC_LOG_ERROR, name, "max_line_bytes must not exceed batch_bytes");
        return -EINVAL;
    }
    fi = calloc(1, sizeof(*fi));
    if (!fi)
        return -ENOMEM;
    fi->in = in;
    fi->c = c;
    fi->ops = ops;
    fi->owner = owner;
    fi->readbuf = malloc((size_t)c->read_bytes);
    if (!fi->readbuf) {
        free(fi);
        return -ENOMEM;
    }
    f = lc_metric_family(LC_GAUGE, "log_capturer_file_open_files", "Files the input has open.",
                         l_in);
    fi->m_open = lc_metric_series(f, name);
    f = lc_metric_family(LC_COUNTER, "log_capturer_file_rotations_total",
                         "Rotations seen, by kind (rename, truncate).", l_kind);
    fi->m_rot_rename = lc_metric_series(f, name, "rename");
    fi->m_rot_truncate = lc_metric_series(f, name, "truncate");
    f = lc_metric_family(LC_COUNTER, "log_capturer_input_truncated_lines_total",
                         "Lines cut at max_line_bytes.", l_in);
    fi->m_cut = lc_metric_series(f, name);
    f = lc_metric_family(LC_COUNTER, "log_capturer_input_skipped_lines_total",
                         "Lines skipped, by reason.", l_reason);
    fi->m_skip_old = lc_metric_series(f, name, "too_old");
    f = lc_metric_family(LC_COUNTER, "log_capturer_input_partial_flushes_total",
                         "Last lines sent without their newline after line_flush_timeout.", l_in);
    fi->m_partial_flush = lc_metric_series(f, name);
    f = lc_metric_family(LC_COUNTER, "log_capturer_input_errors_total", "Open and read errors.",
                         l_in);
    fi->m_errors = lc_metric_series(f, name);
    f = lc_metric_family(LC_COUNTER, "log_capturer_file_checkpoints_swept_total",
                         "Checkpoint rows deleted because their file is gone from disk.", l_in);
    fi->m_rows_swept = lc_metric_series(f, name);
    f = lc_metric_family(LC_COUNTER, "log_capturer_file_skipped_files_total",
                         "Files not opened because max_files was reached.", l_in);
    fi->m_too_many = lc_metric_series(f, name);
    *out = fi;
    return 0;
}

int lc_file_in_start(struct lc_file_in *fi)
{
    struct lc_input *in = fi->in;
    uv_loop_t *loop = in->agent->loop;
    char meta[200], val[8];

    snprintf(meta, sizeof(meta), "input:%s:seen", in->conf->name);
    fi->first_start = lc_ckpt_meta_get(in->agent->ckpt, meta, val, sizeof(val)) != 0;
    uv_idle_init(loop, &fi->work);
    uv_timer_init(loop, &fi->rescan);
    uv_timer_init(loop, &fi->poll);
    fi->work.data = fi->rescan.data = fi->poll.data = fi;
    watch_dirs(fi);
    rescan(fi);
    uv_timer_start(&fi->rescan, on_rescan, (uint64_t)fi->c->rescan_ms, (uint64_t)fi->c->rescan_ms);
    uv_timer_start(&fi->poll, on_poll, (uint64_t)fi->c->poll_ms, (uint64_t)fi->c->poll_ms);
    kick(fi);
    return 0;
}

void lc_file_in_rescan(struct lc_file_in *fi)
{
    if (!fi->stopping)
        rescan(fi);
}

/* Open now, or read before and checkpointed (the same file, not a reused inode). */
static bool known(struct lc_file_in *fi, const char *path, const struct stat *st)
{
    struct lc_ckpt_entry e;
    char key[256];
    uint64_t h;
    bool same;
    int fd;

    if (find_inode(fi, st->st_dev, st->st_ino))
        return true;
    make_key(fi, st->st_dev, st->st_ino, key, sizeof(key));
    if (lc_ckpt_get(fi->in->agent->ckpt, key, &e) != 0)
        return false;
    if (e.fp_len == 0)
        return true;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    same = fd >= 0 && fingerprint(fd, e.fp_len, &h) && h == e.fp_hash;
    if (fd >= 0)
        close(fd);
    return same;
}

#define LC_MISSED_MAX 64 /* rotated generations looked at */

struct lc_tail *lc_file_in_open_missed(struct lc_file_in *fi, const char *path,
                                       struct lc_tail *after)
{
    char p[4096 + 16];
    struct stat st;
    int n = 0;

    while (n < LC_MISSED_MAX) {
        snprintf(p, sizeof(p), "%s.%d", path, n + 1);
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode) || known(fi, p, &st))
            break;
        n++;
    }
    for (int i = n; i >= 1 && !fi->stopping; i--) {
        snprintf(p, sizeof(p), "%s.%d", path, i);
        if (open_tail(fi, p, false, after) != 0)
            continue;
        after = fi->tails;     /* open_tail puts the new one first */
        after->rotated = true; /* final: read it to its end, then close it */
        lc_counter_inc(fi->m_rot_rename);
        lc_logf(LC_LOG_INFO, fi->in->conf->name, NULL, "%s: rotated before it was seen", p);
    }
    return after;
}

void lc_file_in_close_under(struct lc_file_in *fi, const char *dir)
{
    size_t n = strlen(dir);
    struct lc_tail *t = fi->tails, *next;

    for (; t; t = next) {
        next = t->next;
        if (strncmp(t->path, dir, n) == 0 && t->path[n] == '/') {
            t->deleted = true; /* its checkpoint goes with it once acked */
            close_tail(fi, t);
        }
    }
}

void lc_file_in_pause(struct lc_file_in *fi)
{
    fi->paused = true;
    uv_idle_stop(&fi->work);
}

void lc_file_in_resume(struct lc_file_in *fi)
{
    fi->paused = false;
    for (struct lc_tail *t = fi->tails; t; t = t->next)
        t->hot = true;
    kick(fi);
}

bool lc_file_in_caught_up(struct lc_file_in *fi)
{
    if (!fi->scanned)
        return false;
    for (struct lc_tail *t = fi->tails; t; t = t->next)
        if (t->waiting || t->offset < t->once_target)
            return false;
    return true;
}

static void on_closed(uv_handle_t *h)
{
    struct lc_file_in *fi = h->data;

    if (--fi->closing == 0 && fi->stopped)
        fi->stopped(fi->stopped_arg);
}

static void close_h(struct lc_file_in *fi, uv_handle_t *h)
{
    h->data = fi;
    fi->closing++;
    uv_close(h, on_closed);
}

void lc_file_in_stop(struct lc_file_in *fi, void (*stopped)(void *arg), void *arg)
{
    fi->stopping = true;
    fi->stopped = stopped;
    fi->stopped_arg = arg;
    while (fi->tails)
        close_tail(fi, fi->tails);
    close_h(fi, (uv_handle_t *)&fi->work);
    close_h(fi, (uv_handle_t *)&fi->rescan);
    close_h(fi, (uv_handle_t *)&fi->poll);
    for (size_t i = 0; i < fi->nwatches; i++)
        close_h(fi, (uv_handle_t *)&fi->watches[i]);
}

void lc_file_in_free(struct lc_file_in *fi)
{
    if (!fi)
        return;
    while (fi->tails) { /* only after a failed start */
        struct lc_tail *t = fi->tails;
        fi->tails = t->next;
        if (fi->ops && fi->ops->close)
            fi->ops->close(t);
        lc_source_free(t->src);
        t->src = NULL;
        free_tail(t);
    }
    free(fi->watches);
    free(fi->readbuf);
    free(fi);
}

/* The plain `file` input: the machinery above with no ops. */

static int file_init(struct lc_input *in)
{
    struct lc_file_in *fi;
    int rc = lc_file_in_init(in, in->conf->conf, NULL, NULL, &fi);

    in->ctx = fi;
    return rc;
}

static int file_start(struct lc_input *in)
{
    return lc_file_in_start(in->ctx);
}

static void file_pause(struct lc_input *in)
{
    lc_file_in_pause(in->ctx);
}

static void file_resume(struct lc_input *in)
{
    lc_file_in_resume(in->ctx);
}

static bool file_caught_up(struct lc_input *in)
{
    return lc_file_in_caught_up(in->ctx);
}

static void file_stopped(void *arg)
{
    lc_input_stopped(arg);
}

static void file_stop(struct lc_input *in)
{
    lc_file_in_stop(in->ctx, file_stopped, in);
}

static void file_free(struct lc_input *in)
{
    lc_file_in_free(in->ctx);
    in->ctx = NULL;
}

const struct lc_input_plugin lc_input_file = {
    .name = "file",
    .description = "tails files (globs), following rotation and truncation",
    .options = file_options,
    .conf_size = sizeof(struct lc_file_conf),
    .init = file_init,
    .start = file_start,
    .pause = file_pause,
    .resume = file_resume,
    .caught_up = file_caught_up,
    .stop = file_stop,
    .free = file_free,
};
