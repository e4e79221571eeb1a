/* SPDX-License-Identifier: MIT */
/* file.c: the `file` input: globs, inotify and polling, rotation, first-sight rules. */
#include "input/file.h"

#include "core/ckpt.h"
#include "core/labels.h"
#include "core/log.h"
#include "core/losses.h"
#include "parse/timestamp.h"

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
 * closed; the new file is read from its first byte, after the old one. At
 * most max_rotated per path are held. Copytruncate: the file is shorter than
 * what we read, so we read it again from 0.
 *
 * A file renamed while the agent was down is found at start by identity in
 * its directory and finished first; one deleted with data unread is a gap,
 * counted and logged (docs/internals/checkpoints.md, "Rotation and restarts").
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
    OPT(LC_OPT_INT, "max_rotated_files", "8", max_rotated, 1, 1024,
        "Most rotated files of one path held open until read; a newer one waits (counted)."),
    OPT(LC_OPT_INT, "max_unacked_reads", "64", max_unacked, 2, 65536,
        "Reads per file waiting for delivery, each committed on its own; when all are in "
        "flight, further reads join the newest (committed with it)."),
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

    if (lc_source_lookup(fi->in, key, &e) == 0) {
        bool same = e.fp_len == 0 || (fingerprint(t->fd, e.fp_len, &h) && h == e.fp_hash);
        if (same)
            return e.pos.offset <= size ? e.pos.offset : 0;
        lc_logf(LC_LOG_INFO, fi->in->conf->name, NULL,
                "%s: inode reused by a different file: reading it from the start", t->path);
        /*
         * A row of an earlier run: the file it was for was deleted while the
         * agent was down (recover_row looks only for missing inodes). Not a
         * row of this run: a file deleted while it ran was read to its end
         * (its descriptor held), and docker file mode counts the generations
         * it never saw itself; the row only waits for its removal.
         */
        if (!(e.pos.ts_seq & LC_POS_DONE) && e.updated_ns < fi->started_ns)
            lc_file_in_gap(fi, e.path && e.path[0] ? e.path : t->path,
                           "rotated and deleted while the agent was down (its inode holds a "
                           "new file now)",
                           e.pos.offset, e.pos.ts_ns, NULL);
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

/* Acks freed a slot of a source whose reads had stopped: read on now, not at the next poll. */
static void on_src_writable(struct lc_source *s, void *arg)
{
    (void)s;
    kick(arg);
}

int lc_tail_attach(struct lc_tail *t, struct lc_labels *labels)
{
    struct lc_file_in *fi = t->fi;
    struct lc_pos pos = {.offset = t->offset, .ts_ns = t->last_ts, .ts_seq = t->last_ts_seq};
    char key[256];

    make_key(fi, t->dev, t->ino, key, sizeof(key));
    t->src = lc_source_new(fi->in, key, t->path, labels, NULL, (uint32_t)fi->c->max_unacked);
    if (!t->src)
        return -ENOMEM;
    lc_source_set_identity(t->src, (uint64_t)t->dev, (uint64_t)t->ino, t->fp_hash, t->fp_len);
    lc_source_start(t->src, &pos); /* the start position is a decision: persist it now */
    lc_source_on_writable(t->src, on_src_writable, fi);
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
        if (x->after == t) {
            x->after = NULL;
            x->pred_last_ts = t->last_ts; /* for its gap check */
        }
}

static void dw_add_for(struct lc_file_in *fi, const char *path);
static void dw_prune(struct lc_file_in *fi, const char *under);

/*
 * Opens `file`, read under the name `path` (they differ for a file found
 * renamed at start: it is read as the path it had, its successor's).
 */
static int open_tail(struct lc_file_in *fi, const char *file, const char *path, bool at_start,
                     struct lc_tail *after)
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
    t->fd = open(file, O_RDONLY | O_CLOEXEC);
    t->path = strdup(path);
    if (t->fd < 0 || !t->path || fstat(t->fd, &st) != 0) {
        int e = t->fd < 0 ? errno : ENOMEM;
        lc_counter_inc(fi->m_errors);
        lc_logf(LC_LOG_WARN, fi->in->conf->name, NULL, "cannot open %s: %s", file, strerror(e));
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
    t->safe_offset = t->offset;
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
    dw_add_for(fi, file);
    return 0;
}

static void close_tail(struct lc_file_in *fi, struct lc_tail *t)
{
    unlink_tail(fi, t);
    if (fi->ops && fi->ops->close)
        fi->ops->close(t);
    if (t->src) {
        lc_source_set_forget(t->src, t->deleted);
        lc_source_release(t->src);
        t->src = NULL;
    }
    free_tail(t);
}

static void mark_done(struct lc_tail *t);

/* Nothing left to read in t now (or it is never read: excluded, no labels). */
static bool read_to_end(struct lc_tail *t)
{
    struct stat st;

    if (t->waiting)
        return false;
    if (!t->src)
        return true;
    return t->partial.len == 0 && fstat(t->fd, &st) == 0 && st.st_size == t->offset;
}

/* Rotated files that must be read before a successor of `t`, t included. */
static int64_t chain_len(const struct lc_tail *t)
{
    int64_t n = 0;

    for (; t; t = t->after)
        n++;
    return n;
}

/* One path found by a glob. */
static void consider(struct lc_file_in *fi, const char *path)
{
    struct stat st;
    struct lc_tail *t, *after = NULL;

    if (excluded(fi->c, path) || (fi->ops && fi->ops->wanted && !fi->ops->wanted(fi, path)) ||
        stat(path, &st) != 0 || !S_ISREG(st.st_mode))
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
    if (after && after->deferred_ino &&
        (after->deferred_ino != st.st_ino || after->deferred_dev != st.st_dev)) {
        /* the one we did not open was rotated away in turn: its name is unknown */
        lc_file_in_gap(fi, path, "a file not opened at max_rotated_files was rotated away", 0,
                       after->last_ts, NULL);
    }
    if (after)
        after->deferred_ino = 0;
    while (after && fi->scanned && chain_len(after) >= fi->c->max_rotated) {
        struct lc_tail *oldest = after;
        while (oldest->after)
            oldest = oldest->after;
        if (read_to_end(oldest)) {
            /* only lingering for rotate_wait: closed now to make room */
            mark_done(oldest);
            if (oldest == after)
                after = NULL;
            close_tail(fi, oldest);
            continue;
        }
        /* opened once one of them is read and closed */
        after->deferred_dev = st.st_dev;
        after->deferred_ino = st.st_ino;
        lc_counter_inc(fi->m_deferred);
        lc_logf(LC_LOG_WARN, fi->in->conf->name, NULL,
                "%s: %lld rotated files wait to be read (max_rotated_files): not opened yet", path,
                (long long)fi->c->max_rotated);
        return;
    }
    if (after)
        lc_counter_inc(fi->m_rot[LC_ROT_RENAME]);
    open_tail(fi, path, path, !fi->scanned, after);
}

/* The row's file is at its path (not moved, not gone). */
static bool at_path(const struct lc_ckpt_entry *e)
{
    struct stat st;

    return stat(e->path, &st) == 0 && (uint64_t)st.st_dev == e->dev &&
           (uint64_t)st.st_ino == e->ino;
}

/*
 * Rows of files that are at their path but not open (excluded or no longer
 * matched since): nothing will ever resume them. Rows of files found renamed
 * stay (the recovery kept them: read to their end, still on disk).
 */
static void forget_stale(const struct lc_ckpt_entry *e, void *arg)
{
    struct lc_file_in *fi = arg;

    if (!find_inode(fi, (dev_t)e->dev, (ino_t)e->ino) && (!e->path[0] || at_path(e)))
        lc_ckpt_del(fi->in->agent->ckpt, e->key);
}

static int find_in_dir(const char *path, uint64_t dev, uint64_t ino, char *found, size_t len);

/* A file rotated while the agent was down, found by its identity; opened oldest first. */
struct lc_moved {
    char *file; /* where it is now */
    char *path; /* where it was read: its successor's path */
    int64_t mtime;
};

struct lc_recovery {
    struct lc_file_in *fi;
    struct lc_moved *v;
    size_t n;
};

static bool same_file(const char *file, const struct lc_ckpt_entry *e, int64_t *size,
                      int64_t *mtime)
{
    struct stat st;
    uint64_t h;
    bool same;
    int fd = open(file, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return false;
    same = fstat(fd, &st) == 0 &&
           (e->fp_len == 0 || (fingerprint(fd, e->fp_len, &h) && h == e->fp_hash));
    *size = st.st_size;
    *mtime = (int64_t)st.st_mtim.tv_sec * LC_NS_PER_SEC + st.st_mtim.tv_nsec;
    close(fd);
    return same;
}

/*
 * At start, a row whose identity is no longer at its path: its file was
 * renamed (rotated) while the agent was down. It is looked for among its
 * directory's entries (same device, inode and fingerprint): not read to its
 * end, it is opened (below) and read before whatever has its path now; read
 * to its end, its row stays so the file is known; gone, what it still had
 * unread is lost, which is counted and logged unless the row says it was
 * read to its end (LC_POS_DONE).
 */
static void recover_row(const struct lc_ckpt_entry *e, void *arg)
{
    struct lc_recovery *r = arg;
    struct lc_file_in *fi = r->fi;
    char file[4096];
    int64_t size = 0, mtime = 0;
    int rc;

    if (!e->path[0] || find_inode(fi, (dev_t)e->dev, (ino_t)e->ino) || at_path(e))
        return; /* the glob resumes it */
    rc = find_in_dir(e->path, e->dev, e->ino, file, sizeof(file));
    if (rc < 0)
        return; /* an unreadable directory: keep the row */
    if (rc == 1 && same_file(file, e, &size, &mtime)) {
        if (size <= e->pos.offset || r->n >= (size_t)fi->c->max_files)
            return;
        struct lc_moved *v = realloc(r->v, (r->n + 1) * sizeof(*v));
        if (!v)
            return;
        r->v = v;
        v[r->n].file = strdup(file);
        v[r->n].path = strdup(e->path);
        v[r->n].mtime = mtime;
        if (v[r->n].file && v[r->n].path)
            r->n++;
        else {
            free(v[r->n].file);
            free(v[r->n].path);
        }
        return;
    }
    if (!(e->pos.ts_seq & LC_POS_DONE))
        lc_file_in_gap(fi, e->path, "rotated and deleted while the agent was down", e->pos.offset,
                       e->pos.ts_ns, NULL);
    lc_ckpt_del(fi->in->agent->ckpt, e->key);
}

static int by_mtime(const void *a, const void *b)
{
    const struct lc_moved *x = a, *y = b;

    return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

static void recover_moved(struct lc_file_in *fi)
{
    struct lc_recovery r = {.fi = fi};
    char prefix[160];

    snprintf(prefix, sizeof(prefix), "file:%s:", fi->in->conf->name);
    lc_ckpt_each(fi->in->agent->ckpt, prefix, recover_row, &r);
    if (r.n > 1)
        qsort(r.v, r.n, sizeof(*r.v), by_mtime);
    for (size_t i = 0; i < r.n; i++) {
        struct lc_tail *after = NULL;
        for (struct lc_tail *t = fi->tails; t && !after; t = t->next)
            if (strcmp(t->path, r.v[i].path) == 0)
                after = t; /* an older one of the same path, opened just before */
        if (!fi->stopping && open_tail(fi, r.v[i].file, r.v[i].path, false, after) == 0) {
            fi->tails->rotated = true; /* final: read it to its end, then close it */
            lc_counter_inc(fi->m_rot[LC_ROT_RENAME]);
            lc_logf(LC_LOG_INFO, fi->in->conf->name, NULL,
                    "%s (was %s) rotated while the agent was down: reading it to its end from "
                    "byte %lld",
                    r.v[i].file, r.v[i].path, (long long)fi->tails->offset);
        }
        free(r.v[i].file);
        free(r.v[i].path);
    }
    free(r.v);
}

static void rescan(struct lc_file_in *fi)
{
    if (!fi->scanned && !fi->first_start)
        recover_moved(fi);
    for (size_t i = 0; i < fi->npaths; i++) {
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
/*
 * Looks for the file with this device and inode in path's directory: 1 and
 * its path in found (if not NULL), 0 if there is none (or no directory), -1
 * if the directory cannot be read.
 */
static int find_in_dir(const char *path, uint64_t dev, uint64_t ino, char *found, size_t len)
{
    char copy[4096];
    const char *dir;
    struct dirent *de;
    DIR *d;
    int rc = 0;

    snprintf(copy, sizeof(copy), "%s", path);
    dir = dirname(copy);
    d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_ino != (ino_t)ino || fstatat(dirfd(d), de->d_name, &st, 0) != 0)
            continue;
        if ((uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino)
            rc = 1;
        if (rc == 1 && found)
            snprintf(found, len, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    return rc;
}

static bool inode_in_dir(const char *path, uint64_t dev, uint64_t ino)
{
    return find_in_dir(path, dev, ino, NULL, 0) != 0; /* unreadable: keep it */
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
    dw_prune(fi, NULL);
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
    lc_tail_count(t);
}

/*
 * A rotated file read to its end: its row says so once committed, so a
 * restart that finds it deleted knows nothing was left in it. Again after
 * more was read (a writer that went on writing to the renamed file).
 */
static void mark_done(struct lc_tail *t)
{
    struct lc_pos pos = {
        .offset = t->offset, .ts_ns = t->last_ts, .ts_seq = t->last_ts_seq | LC_POS_DONE};

    if (!t->src || t->done || t->waiting || t->safe_offset != t->offset)
        return;
    lc_source_checkpoint(t->src, &pos);
    t->done = true;
}

static void on_poll(uv_timer_t *h)
{
    struct lc_file_in *fi = h->data;
    int64_t now = lc_mono_ns();
    struct lc_tail *t = fi->tails, *next;
    int64_t rotated = 0;
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
            if (!t->deleted)
                mark_done(t);
            close_tail(fi, t);
            continue;
        }
        if (t->rotated && !t->hot && t->partial.len == 0)
            mark_done(t);
        rotated += t->rotated;
        hot |= t->hot;
    }
    lc_gauge_set(fi->m_rotated, rotated);
    if (hot)
        kick(fi);
}

/*
 * t's predecessor is read to its end, and t may not be its direct successor
 * (the one between deleted before it was seen). A whole file written between
 * the two shows as a pause between the predecessor's last line and t's first
 * longer than half the time t itself took: then the break is counted. A
 * writer idle for that long just at the rotation is the false positive.
 */
static void check_gap(struct lc_tail *t)
{
    struct lc_file_in *fi = t->fi;
    int64_t prev = t->after ? t->after->last_ts : t->pred_last_ts;
    int64_t first, last;

    t->check_gap = false;
    if (!fi->ops || !fi->ops->line_time || prev <= 0)
        return;
    first = fi->ops->line_time(t, 0);
    last = fi->ops->line_time(t, t->once_target / 4 * 3); /* a line in its last quarter */
    if (first <= 0 || first - prev <= LC_NS_PER_MSEC || first - prev <= (last - first) / 2)
        return;
    lc_file_in_gap(fi, t->path, "one or more rotated files deleted before they were seen", 0, prev,
                   t);
}

/*
 * Reads hot files round-robin, a budget each, so one busy file cannot starve
 * the loop; one over its share of the pending budget (lc_source_over_share)
 * waits, so it cannot starve the other files either: its acks kick us again
 * (on_src_writable).
 */
static void on_work(uv_idle_t *h)
{
    struct lc_file_in *fi = h->data;
    bool hot = false;

    if (lc_pipeline_paused(fi->in->pipeline)) {
        uv_idle_stop(h);
        return;
    }
    for (struct lc_tail *t = fi->tails; t; t = t->next) {
        if (!t->src)
            continue;
        if (t->after && (t->after->waiting || (t->after->src && t->after->hot)))
            continue; /* lines in order across a rotation (and split lines joined) */
        if (t->check_gap)
            check_gap(t);
        if (t->hot && lc_source_over_share(t->src))
            continue; /* stays hot; not spun on */
        /* a full mark ring does not stop it: the read joins the newest mark */
        if (t->hot)
            lc_tail_read(t, 4 * fi->c->read_bytes);
        hot |= t->hot;
    }
    if (!hot)
        uv_idle_stop(h);
}

static bool has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* The directory part of pattern i, in buf. */
static const char *pattern_dir(const struct lc_file_in *fi, size_t i, char *buf, size_t len)
{
    snprintf(buf, len, "%s", fi->c->paths.v[i]);
    return dirname(buf);
}

/* dir matches the directory part of a pattern that has a glob (e.g. containers/<id>). */
static bool globbed_dir(const struct lc_file_in *fi, const char *dir)
{
    char buf[4096];

    for (size_t i = 0; i < fi->npaths; i++) {
        const char *pd = pattern_dir(fi, i, buf, sizeof(buf));
        if (has_glob(pd) && fnmatch(pd, dir, FNM_PATHNAME) == 0)
            return true;
    }
    return false;
}

/*
 * Directories a glob matched (e.g. one per container) are watched while
 * they exist, so a file created in one is opened at once (and held: a
 * rotation cannot delete what we have not read), not at the next rescan;
 * their parent (e.g. containers/), when it has no glob, is watched for new
 * ones. At most max_files of them; without a watch the rescan still finds
 * files, only later. Each is freed in its close callback.
 */
struct lc_dir_watch {
    uv_fs_event_t h;
    struct lc_file_in *fi;
    struct lc_dir_watch *next;
    char dir[];
};

static void on_dir_event(struct lc_file_in *fi, const char *dir, const char *name, int events);

static void on_dw_event(uv_fs_event_t *h, const char *name, int events, int status)
{
    struct lc_dir_watch *w = (struct lc_dir_watch *)h;

    if (status == 0 && name)
        on_dir_event(w->fi, w->dir, name, events);
}

static void on_dw_closed(uv_handle_t *h)
{
    struct lc_dir_watch *w = (struct lc_dir_watch *)h;
    struct lc_file_in *fi = w->fi;

    free(w);
    if (--fi->closing == 0 && fi->stopped)
        fi->stopped(fi->stopped_arg);
}

static void dw_close(struct lc_file_in *fi, struct lc_dir_watch *w)
{
    struct lc_dir_watch **pp = &fi->dwatches;

    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = w->next;
        fi->ndwatches--;
    }
    lc_gauge_set(fi->m_watched, (int64_t)fi->ndwatches);
    fi->closing++;
    uv_close((uv_handle_t *)&w->h, on_dw_closed);
}

static void dw_add(struct lc_file_in *fi, const char *dir)
{
    size_t n = strlen(dir);
    struct lc_dir_watch *w;

    for (w = fi->dwatches; w; w = w->next)
        if (strcmp(w->dir, dir) == 0)
            return;
    if (fi->stopping || fi->ndwatches >= (size_t)fi->c->max_files)
        return;
    w = calloc(1, sizeof(*w) + n + 1);
    if (!w)
        return;
    w->fi = fi;
    memcpy(w->dir, dir, n + 1);
    uv_fs_event_init(fi->in->agent->loop, &w->h);
    w->next = fi->dwatches;
    fi->dwatches = w;
    fi->ndwatches++;
    lc_gauge_set(fi->m_watched, (int64_t)fi->ndwatches);
    if (uv_fs_event_start(&w->h, on_dw_event, dir, 0) != 0)
        dw_close(fi, w); /* gone already: the rescan has the last word */
}

/* After a file was opened: watch its directory if a glob found it there. */
static void dw_add_for(struct lc_file_in *fi, const char *path)
{
    char copy[4096];
    const char *dir;

    if (!fi->glob_parent)
        return;
    snprintf(copy, sizeof(copy), "%s", path);
    dir = dirname(copy);
    if (globbed_dir(fi, dir))
        dw_add(fi, dir);
}

/* Watches of directories that are gone (a removed container), at each rescan. */
static void dw_prune(struct lc_file_in *fi, const char *under)
{
    struct lc_dir_watch *w = fi->dwatches, *next;
    struct stat st;

    for (; w; w = next) {
        next = w->next;
        if (under ? strcmp(w->dir, under) == 0 : stat(w->dir, &st) != 0)
            dw_close(fi, w);
    }
}

/* A new directory in the watched parent: watch it first, then open what it holds. */
static void new_dir(struct lc_file_in *fi, const char *dir)
{
    char buf[4096], pat[4096 + 256];
    struct stat st;

    if (!globbed_dir(fi, dir) || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return;
    dw_add(fi, dir);
    for (size_t i = 0; i < fi->npaths; i++) {
        const char *pd = pattern_dir(fi, i, buf, sizeof(buf));
        glob_t g;
        if (!has_glob(pd) || fnmatch(pd, dir, FNM_PATHNAME) != 0)
            continue;
        int len = snprintf(pat, sizeof(pat), "%s/%s", dir, strrchr(fi->c->paths.v[i], '/') + 1);
        if (len <= 0 || (size_t)len >= sizeof(pat))
            continue;
        if (glob(pat, GLOB_NOSORT, NULL, &g) == 0)
            for (size_t j = 0; j < g.gl_pathc; j++)
                consider(fi, g.gl_pathv[j]);
        globfree(&g);
    }
}

static bool matches(const struct lc_file_in *fi, const char *path)
{
    for (size_t i = 0; i < fi->npaths; i++)
        if (fnmatch(fi->c->paths.v[i], path, FNM_PATHNAME) == 0)
            return true;
    return false;
}

/*
 * Something happened to dir/name: a write makes its file hot; a new or
 * renamed name is looked at alone (no glob, no directory scan), so a
 * rotation's successor is open within one turn of the loop.
 */
static void on_dir_event(struct lc_file_in *fi, const char *dir, const char *name, int events)
{
    char path[4096 + 256];

    if (fi->stopping)
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
    if (fi->glob_parent && strcmp(dir, fi->glob_parent) == 0)
        new_dir(fi, path);
    else if (matches(fi, path))
        consider(fi, path);
    kick(fi);
}

static void on_fs_event(uv_fs_event_t *h, const char *name, int events, int status)
{
    struct lc_file_in *fi = h->data;
    char dir[4096];
    size_t dlen = sizeof(dir);

    if (status < 0 || !name || uv_fs_event_getpath(h, dir, &dlen) != 0)
        return;
    on_dir_event(fi, dir, name, events);
}

static void watch_dirs(struct lc_file_in *fi)
{
    fi->watches = calloc(fi->npaths, sizeof(*fi->watches));
    if (!fi->watches)
        return;
    for (size_t i = 0; i < fi->npaths; i++) {
        char copy[4096];
        const char *dir;
        bool dup = false;

        snprintf(copy, sizeof(copy), "%s", fi->c->paths.v[i]);
        dir = dirname(copy);
        if (has_glob(dir)) {
            /* a directory per container, say: watch their parent for new ones */
            if (has_glob(strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir) && !fi->glob_parent) {
                dir = dirname(copy);
                if (has_glob(dir) || !(fi->glob_parent = strdup(dir)))
                    continue;
            } else {
                continue; /* the rescan covers it */
            }
        }
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

#define FM(t, n, h, f)                                                                             \
    {                                                                                              \
        (t), (n), (h), offsetof(struct lc_file_in, f)                                              \
    }

static const char *const rot_kinds[] = {"rename", "truncate", NULL}; /* LC_ROT_* */
static const char *const skip_too_old[] = {"too_old", NULL};

/* The input's series, labelled input=<name> (file and docker file mode). */
static const struct lc_metric_row file_series[] = {
    {LC_COUNTER, "log_capturer_file_rotations_total", "Rotations seen, by kind (rename, truncate).",
     offsetof(struct lc_file_in, m_rot), "kind", rot_kinds},
    FM(LC_GAUGE, "log_capturer_file_open_files", "Files the input has open.", m_open),
    FM(LC_COUNTER, "log_capturer_input_truncated_lines_total", "Lines cut at max_line_bytes.",
       m_cut),
    FM(LC_COUNTER, "log_capturer_input_partial_flushes_total",
       "Last lines sent without their newline after line_flush_timeout.", m_partial_flush),
    FM(LC_COUNTER, "log_capturer_input_errors_total", "Open and read errors.", m_errors),
    FM(LC_COUNTER, "log_capturer_file_checkpoints_swept_total",
       "Checkpoint rows deleted because their file is gone from disk.", m_rows_swept),
    FM(LC_COUNTER, "log_capturer_file_skipped_files_total",
       "Files not opened because max_files was reached.", m_too_many),
    FM(LC_GAUGE, "log_capturer_file_rotated_open_files",
       "Rotated files held open until read to their end.", m_rotated),
    FM(LC_COUNTER, "log_capturer_file_rotated_deferred_total",
       "Successors not opened yet because max_rotated_files were held.", m_deferred),
    FM(LC_GAUGE, "log_capturer_file_watched_dirs",
       "Directories matched by a glob, watched for new files.", m_watched),
    {LC_COUNTER, "log_capturer_input_skipped_lines_total", "Lines skipped, by reason.",
     offsetof(struct lc_file_in, m_skip_old), "reason", skip_too_old},
};
LC_METRIC_VALUES_FIT(struct lc_file_in, m_rot, rot_kinds);

/* The file input's alone: docker file mode counts its own (lost generations). */
static const struct lc_metric_row plain_series[] = {
    {LC_COUNTER, "log_capturer_file_rotation_gaps_total",
     "Rotated data deleted before it was read (counted, logged).",
     offsetof(struct lc_file_in, m_gaps)},
};

int lc_file_in_init(struct lc_input *in, const struct lc_file_conf *c,
                    const struct lc_tail_ops *ops, void *owner, struct lc_file_in **out)
{
    struct lc_file_in *fi;
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
    fi->npaths = c->paths.n;
    fi->ops = ops;
    fi->owner = owner;
    fi->readbuf = malloc((size_t)c->read_bytes);
    if (!fi->readbuf) {
        free(fi);
        return -ENOMEM;
    }
    lc_metric_register_rows(fi, file_series, LC_METRIC_ROWS(file_series), "input", name);
    if (!ops)
        lc_metric_register_rows(fi, plain_series, LC_METRIC_ROWS(plain_series), "input", name);
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
    fi->started_ns = lc_now_ns();
    uv_idle_init(loop, &fi->work);
    uv_timer_init(loop, &fi->rescan);
    uv_timer_init(loop, &fi->poll);
    fi->work.data = fi->rescan.data = fi->poll.data = fi;
    watch_dirs(fi);
    rescan(fi);
    uv_timer_start(&fi->rescan, on_rescan, (uint64_t)fi->c->rescan_ms, (uint64_t)fi->c->rescan_ms);
    uv_timer_start(&fi->poll, on_poll, (uint64_t)fi->c->poll_ms, (uint64_t)fi->c->poll_ms);
    kick(fi);
    fi->npaths = fi->c->paths.n - fi->c->start_only_paths;
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
    if (lc_source_lookup(fi->in, key, &e) != 0)
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

/* Docker's and logrotate's names: path.1 is the newest rotated file, path.2 the one before. */
static bool numbered_name(void *arg, const char *path, int i, char *buf, size_t len)
{
    (void)arg;
    snprintf(buf, len, "%s.%d", path, i);
    return true;
}

struct lc_tail *lc_file_in_open_missed(struct lc_file_in *fi, const char *path,
                                       struct lc_tail *after, bool *check)
{
    return lc_file_in_open_missed_names(fi, path, after, check, numbered_name, NULL);
}

struct lc_tail *lc_file_in_open_missed_names(struct lc_file_in *fi, const char *path,
                                             struct lc_tail *after, bool *check,
                                             lc_rotated_name_fn name, void *arg)
{
    struct lc_tail *pred = after, *oldest = NULL;
    char p[4096 + 16];
    struct stat st;
    /* at start, all that is on disk: bounded by what the rotation keeps */
    int64_t room = fi->scanned ? fi->c->max_rotated - chain_len(after) : LC_MISSED_MAX;
    int n = 0, skip = 0;
    bool end = false; /* no file before the last one: the chain back to `after` is broken */

    while (n < LC_MISSED_MAX) {
        if (!name(arg, path, n + 1, p, sizeof(p)) || stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
            end = true;
            break;
        }
        if (known(fi, p, &st))
            break;
        n++;
    }
    if (n > room) {
        skip = n - (int)(room > 0 ? room : 0); /* the oldest ones */
        name(arg, path, n, p, sizeof(p));
        lc_file_in_gap(fi, p, "older rotated files not opened (max_rotated_files)", 0, 0, NULL);
        n -= skip;
    }
    for (int i = n; i >= 1 && !fi->stopping; i--) {
        name(arg, path, i, p, sizeof(p));
        if (open_tail(fi, p, p, false, after) != 0)
            continue;
        after = fi->tails;     /* open_tail puts the new one first */
        after->rotated = true; /* final: read it to its end, then close it */
        lc_counter_inc(fi->m_rot[LC_ROT_RENAME]);
        lc_logf(LC_LOG_INFO, fi->in->conf->name, NULL, "%s: rotated before it was seen", p);
        if (i == n)
            oldest = after;
    }
    /*
     * No file before the oldest one, and it is not the one read last: that
     * one was deleted (its descriptor is held: it is still read), and its
     * direct successor may have been too. Judged once `after` is read.
     */
    if (end && pred && !skip) {
        if (oldest)
            oldest->check_gap = true;
        else
            *check = true; /* the new file itself follows `after` */
    }
    return after;
}

void lc_file_in_gap(struct lc_file_in *fi, const char *path, const char *what, int64_t offset,
                    int64_t last_ts, struct lc_tail *next)
{
    char from[LC_TS_RFC3339NANO_MAX] = "?", to[LC_TS_RFC3339NANO_MAX] = "?";
    int64_t first = next && fi->ops && fi->ops->line_time ? fi->ops->line_time(next, 0) : -1;

    if (last_ts > 0)
        lc_ts_format_rfc3339nano(last_ts, from);
    if (first > 0)
        lc_ts_format_rfc3339nano(first, to);
    lc_counter_inc(fi->m_gaps);
    if (offset > 0)
        lc_loss(fi->in->conf->name,
                "%s: lost in rotation: %s (from byte %lld to its end; lines after %s)", path, what,
                (long long)offset, from);
    else
        lc_loss(fi->in->conf->name, "%s: lost in rotation: %s (lines after %s%s%s)", path, what,
                from, first > 0 ? " and before " : "", first > 0 ? to : "");
}

void lc_file_in_close_under(struct lc_file_in *fi, const char *dir)
{
    size_t n = strlen(dir);
    struct lc_tail *t = fi->tails, *next;
    struct stat st;

    for (; t; t = next) {
        next = t->next;
        if (strncmp(t->path, dir, n) != 0 || t->path[n] != '/')
            continue;
        t->deleted = true; /* its checkpoint goes with it once acked */
        if (!t->src || fstat(t->fd, &st) != 0 || st.st_size <= t->offset) {
            close_tail(fi, t); /* read to its end */
            continue;
        }
        /* unread data: the held descriptor still reads it; on_poll closes it at its end */
        t->rotated = true;
        t->hot = true;
    }
    dw_prune(fi, dir);
    kick(fi);
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
    while (fi->dwatches)
        dw_close(fi, fi->dwatches);
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
    free(fi->glob_parent);
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
