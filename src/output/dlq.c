/* SPDX-License-Identifier: MIT */
/* dlq.c: the dead-letter queue: append-only NDJSON segment files, capped, fsynced, replayable. */
#include "output/dlq.h"

#include "core/fifo.h"
#include "core/redact.h"
#include "core/worker.h"

#include "parse/timestamp.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEG_PREFIX   "segment-"
#define SEG_SUFFIX   ".ndjson"
#define DLQ_BODY_MAX 4096
#define DLQ_MAX_SEGS 4096 /* segments considered per scan */

struct lc_dlq {
    char *dir;
    int dirfd;
    int64_t max_bytes;
    int64_t segment_bytes;
    struct lc_dlq_metrics m;
    int fd;        /* the segment being appended to, or -1 */
    uint64_t seq;  /* its sequence number */
    int64_t size;  /* its size */
    int64_t total; /* all segments, at the last scan */
    /* appends on the disk worker: `waiting` on the loop, `flying` with the job */
    struct lc_worker *worker;
    struct lc_worker_job job;
    struct dlq_pending *waiting, *waiting_tail;
    struct dlq_pending *flying;
};

/* One line waiting to be appended by the disk worker (a copy: the caller's buffer moves on). */
struct dlq_pending {
    struct dlq_pending *next;
    lc_dlq_done_fn done;
    void *arg;
    int rc;
    size_t len;
    char line[];
};

struct lc_dlq_seg {
    uint64_t seq;
    int64_t size;
};

/* ---- naming and scanning ------------------------------------------------- */

static bool seg_parse(const char *name, uint64_t *seq)
{
    size_t pl = strlen(SEG_PREFIX), sl = strlen(SEG_SUFFIX), n = strlen(name);
    uint64_t v = 0;

    if (n != pl + 20 + sl || strncmp(name, SEG_PREFIX, pl) != 0 ||
        strcmp(name + pl + 20, SEG_SUFFIX) != 0)
        return false;
    for (size_t i = pl; i < pl + 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *seq = v;
    return true;
}

static void seg_name(char *buf, size_t len, uint64_t seq)
{
    snprintf(buf, len, SEG_PREFIX "%020" PRIu64 SEG_SUFFIX, seq);
}

static int cmp_seg(const void *a, const void *b)
{
    uint64_t x = ((const struct lc_dlq_seg *)a)->seq, y = ((const struct lc_dlq_seg *)b)->seq;
    return x < y ? -1 : x > y;
}

/* Lists the segments of dirfd, oldest first, at most max. Returns the count or -errno. */
static int scan(int dirfd, struct lc_dlq_seg *segs, int max, int64_t *total)
{
    int n = 0, fd = dup(dirfd);
    DIR *dp;
    struct dirent *de;

    *total = 0;
    if (fd < 0)
        return -errno;
    dp = fdopendir(fd);
    if (!dp) {
        int e = errno;
        close(fd);
        return -e;
    }
    rewinddir(dp);
    while ((de = readdir(dp)) != NULL && n < max) {
        struct stat st;
        uint64_t seq;
        if (!seg_parse(de->d_name, &seq))
            continue;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        segs[n].seq = seq;
        segs[n].size = st.st_size;
        *total += st.st_size;
        n++;
    }
    closedir(dp);
    qsort(segs, (size_t)n, sizeof(*segs), cmp_seg);
    return n;
}

/* Creates dir and its parents with mode 0700. 0 or -errno. */
static int mkdir_p(const char *dir)
{
    char tmp[PATH_MAX];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof(tmp))
        return -ENAMETOOLONG;
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static uint64_t count_lines_at(int dirfd, const char *name)
{
    char buf[65536];
    uint64_t lines = 0;
    ssize_t r;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return 0;
    while ((r = read(fd, buf, sizeof(buf))) > 0)
        for (ssize_t i = 0; i < r; i++)
            lines += buf[i] == '\n';
    close(fd);
    return lines;
}

/* ---- metrics ------------------------------------------------------------- */

/* The DLQ's series, one row each, labelled by the owning output's name. */
static const struct lc_metric_row dlq_series[] = {
    {LC_GAUGE, "log_capturer_dlq_bytes", "Bytes in the dead-letter queue's segments.",
     offsetof(struct lc_dlq_metrics, bytes)},
    {LC_GAUGE, "log_capturer_dlq_max_bytes", "The dead-letter queue's cap (dlq.max_bytes).",
     offsetof(struct lc_dlq_metrics, max)},
    {LC_COUNTER, "log_capturer_dlq_batches_total", "Batches written to the dead-letter queue.",
     offsetof(struct lc_dlq_metrics, batches)},
    {LC_COUNTER, "log_capturer_dlq_dropped_batches_total",
     "Batches deleted from the dead-letter queue by its size cap.",
     offsetof(struct lc_dlq_metrics, dropped)},
    {LC_COUNTER, "log_capturer_dlq_write_errors_total",
     "Failed dead-letter queue writes (the batch is read again after a restart).",
     offsetof(struct lc_dlq_metrics, errors)},
};

void lc_dlq_metrics_register(struct lc_dlq_metrics *m, const char *output)
{
    lc_metric_register_rows(m, dlq_series, LC_METRIC_ROWS(dlq_series), "output", output);
}

/* ---- the writer ---------------------------------------------------------- */

int lc_dlq_open(struct lc_dlq **out, const char *dir, int64_t max_bytes, int64_t segment_bytes,
                const struct lc_dlq_metrics *m, char *err, size_t errlen)
{
    struct lc_dlq *d;
    struct lc_dlq_seg *segs = NULL;
    int rc, n;

    *out = NULL;
    rc = mkdir_p(dir);
    if (rc < 0) {
        snprintf(err, errlen, "dlq: cannot create %s: %s", dir, strerror(-rc));
        return rc;
    }
    d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->fd = -1;
    d->max_bytes = max_bytes > 0 ? max_bytes : INT64_MAX;
    d->segment_bytes = segment_bytes > 0 ? segment_bytes : LC_DLQ_SEGMENT_BYTES;
    if (m)
        d->m = *m;
    d->dir = strdup(dir);
    d->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!d->dir || d->dirfd < 0) {
        rc = d->dir ? -errno : -ENOMEM;
        snprintf(err, errlen, "dlq: cannot open %s: %s", dir, strerror(-rc));
        goto out_free;
    }
    /* a directory we created is 0700; one that existed keeps its mode, but not group/world */
    struct stat st;
    if (fstat(d->dirfd, &st) == 0 && (st.st_mode & 077) && st.st_uid == geteuid())
        fchmod(d->dirfd, st.st_mode & 0700);
    segs = calloc(DLQ_MAX_SEGS, sizeof(*segs));
    if (!segs) {
        rc = -ENOMEM;
        goto out_free;
    }
    n = scan(d->dirfd, segs, DLQ_MAX_SEGS, &d->total);
    if (n < 0) {
        rc = n;
        snprintf(err, errlen, "dlq: cannot read %s: %s", dir, strerror(-rc));
        goto out_free;
    }
    d->seq = n ? segs[n - 1].seq : 0; /* the next segment is seq + 1 */
    free(segs);
    lc_gauge_set(d->m.bytes, d->total);
    lc_gauge_set(d->m.max, max_bytes);
    *out = d;
    return 0;

out_free:
    free(segs);
    lc_dlq_free(d);
    return rc;
}

void lc_dlq_free(struct lc_dlq *d)
{
    if (!d)
        return;
    /* the owner drained the worker first; lines still here were never written */
    while (d->waiting) {
        struct dlq_pending *p = d->waiting;
        d->waiting = p->next;
        free(p);
    }
    if (d->fd >= 0)
        close(d->fd);
    if (d->dirfd >= 0)
        close(d->dirfd);
    free(d->dir);
    free(d);
}

int64_t lc_dlq_bytes(const struct lc_dlq *d)
{
    return d->total;
}

/* Closes the current segment; the next append starts a new one. */
static void seg_close(struct lc_dlq *d)
{
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    d->size = 0;
}

/* Opens a new segment (seq + 1) and locks it. 0 or -errno. */
static int seg_new(struct lc_dlq *d)
{
    char name[64];

    seg_close(d);
    for (int tries = 0; tries < 16; tries++) {
        seg_name(name, sizeof(name), ++d->seq);
        int fd = openat(d->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST)
            continue; /* someone else's: take the next number */
        if (fd < 0)
            return -errno;
        d->fd = fd;
        d->size = 0;
        return 0;
    }
    return -EEXIST;
}

/*
 * Locks the current segment for one append. The segment may have been
 * locked, replaced or removed by a replay: then start a new one. 0 or -errno.
 */
static int seg_lock(struct lc_dlq *d)
{
    for (int tries = 0; tries < 4; tries++) {
        struct stat st;
        int rc;
        if (d->fd < 0 || d->size >= d->segment_bytes) {
            rc = seg_new(d);
            if (rc < 0)
                return rc;
        }
        if (flock(d->fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno != EWOULDBLOCK && errno != EINTR)
                return -errno;
            seg_close(d);
            continue;
        }
        if (fstat(d->fd, &st) != 0) {
            rc = -errno;
            flock(d->fd, LOCK_UN);
            return rc;
        }
        if (st.st_nlink == 0) { /* replaced or removed by a replay */
            flock(d->fd, LOCK_UN);
            seg_close(d);
            continue;
        }
        d->size = st.st_size;
        return 0;
    }
    return -EAGAIN;
}

/*
 * Deletes the oldest segments (never the one being written) until `need` more
 * bytes fit under max_bytes. Counts the batches deleted. Updates d->total.
 */
static void enforce_cap(struct lc_dlq *d, int64_t need)
{
    struct lc_dlq_seg segs[64];
    char name[64];
    int n = scan(d->dirfd, segs, 64, &d->total);

    for (int i = 0; i < n && d->total + need > d->max_bytes; i++) {
        if (segs[i].seq == d->seq && d->fd >= 0)
            continue;
        seg_name(name, sizeof(name), segs[i].seq);
        uint64_t lines = count_lines_at(d->dirfd, name);
        if (unlinkat(d->dirfd, name, 0) != 0)
            continue;
        d->total -= segs[i].size;
        lc_counter_add(d->m.dropped, lines);
    }
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int lc_dlq_append(struct lc_dlq *d, const char *line, size_t len)
{
    int rc;

    if ((int64_t)len > d->max_bytes) {
        lc_counter_inc(d->m.errors);
        return -E2BIG;
    }
    /* a segment that alone keeps the total over the cap is closed, so it can go */
    enforce_cap(d, (int64_t)len);
    if (d->total + (int64_t)len > d->max_bytes && d->fd >= 0) {
        seg_close(d);
        enforce_cap(d, (int64_t)len);
    }
    rc = seg_lock(d);
    if (rc < 0)
        goto out_err;
    rc = write_all(d->fd, line, len);
    if (rc == 0 && fdatasync(d->fd) != 0)
        rc = -errno;
    if (rc < 0) {
        /* never leave half a line: the next append would glue onto it */
        if (ftruncate(d->fd, d->size) != 0)
            seg_close(d);
        else
            flock(d->fd, LOCK_UN);
        goto out_err;
    }
    flock(d->fd, LOCK_UN);
    if (d->size == 0)
        fsync(d->dirfd); /* a new segment: make its name durable too */
    d->size += (int64_t)len;
    d->total += (int64_t)len;
    lc_counter_inc(d->m.batches);
    lc_gauge_set(d->m.bytes, d->total);
    return 0;

out_err:
    lc_counter_inc(d->m.errors);
    return rc;
}

int lc_dlq_line_begin(struct lc_buf *out, int64_t now_ns, const char *output, const char *reason,
                      long status, const char *body, size_t body_len, const char *tenant)
{
    char ts[LC_TS_RFC3339NANO_MAX];
    int rc = 0;

    lc_buf_reset(out);
    lc_ts_format_rfc3339nano(now_ns, ts);
    if (body_len > DLQ_BODY_MAX)
        body_len = DLQ_BODY_MAX;
    rc = lc_buf_printf(out, "{\"time\":\"%s\",\"output\":\"", ts);
    if (rc == 0)
        rc = lc_buf_json_str(out, output, strlen(output));
    if (rc == 0)
        rc = lc_buf_append(out, "\",\"reason\":\"", 12);
    if (rc == 0)
        rc = lc_buf_json_str(out, reason, strlen(reason));
    if (rc == 0)
        rc = lc_buf_printf(out, "\",\"status\":%ld,\"body\":\"", status);
    if (rc == 0 && body) {
        /* the server's answer may quote a credential: the redaction rule applies */
        char shown[DLQ_BODY_MAX * 3 + 1];
        size_t n = lc_redact_text(body, body_len, shown, sizeof(shown));
        rc = lc_buf_json_str(out, shown, n);
    }
    if (rc == 0 && tenant && *tenant) {
        rc = lc_buf_append(out, "\",\"tenant\":\"", 12);
        if (rc == 0)
            rc = lc_buf_json_str(out, tenant, strlen(tenant));
    }
    if (rc == 0)
        rc = lc_buf_append(out, "\",\"streams\":", 12);
    return rc;
}

int lc_dlq_line_end(struct lc_buf *out)
{
    return lc_buf_append(out, "}\n", 2);
}

/* ---- reading back -------------------------------------------------------- */

static int read_file(int fd, char **data, size_t *len)
{
    struct stat st;
    char *p;
    size_t n = 0;

    if (fstat(fd, &st) != 0)
        return -errno;
    p = malloc((size_t)st.st_size + 1);
    if (!p)
        return -ENOMEM;
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, p + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(p);
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    p[n] = '\0';
    *data = p;
    *len = n;
    return 0;
}

/* Writes the kept bytes to a temporary file and renames it over the segment. */
static int rewrite(int dirfd, const char *name, const char *data, size_t len)
{
    char tmp[96];
    int fd, rc;

    snprintf(tmp, sizeof(tmp), ".tmp-%s", name);
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    rc = write_all(fd, data, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && renameat(dirfd, tmp, dirfd, name) != 0)
        rc = -errno;
    if (rc < 0)
        unlinkat(dirfd, tmp, 0);
    return rc;
}

/* Replays one segment (locked). Returns 1 to go on, 0 to stop, or -errno. */
static int replay_segment(int dirfd, const char *name, lc_dlq_replay_fn fn, void *arg,
                          void (*progress)(const struct lc_dlq_replay_stats *, void *),
                          struct lc_dlq_replay_stats *st)
{
    char *data = NULL, *kept = NULL;
    size_t len = 0, klen = 0;
    bool stop = false;
    int fd, rc;

    fd = openat(dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 1 : -errno;
    if (flock(fd, LOCK_EX) != 0) {
        rc = -errno;
        goto out_close;
    }
    rc = read_file(fd, &data, &len);
    if (rc < 0)
        goto out_close;
    kept = malloc(len + 1);
    if (!kept) {
        rc = -ENOMEM;
        goto out_close;
    }
    for (size_t off = 0; off < len;) {
        char *nl = memchr(data + off, '\n', len - off);
        if (!nl) {
            /*
             * A torn last line: the writer was killed mid-append (it holds the
             * lock while it writes, and cuts a failed write back). Its batch
             * was never acknowledged, so its positions were not committed and
             * the agent reads it again: drop the fragment, counted.
             */
            st->torn++;
            break;
        }
        size_t ll = (size_t)(nl - (data + off));
        size_t whole = ll + 1;
        if (ll == 0) { /* blank lines are dropped */
            off++;
            continue;
        }
        /* the callback may modify the line in place: keep an intact copy first */
        memcpy(kept + klen, data + off, whole);
        if (stop) {
            st->kept++;
            klen += whole;
            off += whole;
            continue;
        }
        data[off + ll] = '\0';
        st->lines++;
        enum lc_dlq_verdict v = fn(data + off, ll, arg);
        if (v == LC_DLQ_REMOVE) {
            st->removed++;
        } else {
            stop = v == LC_DLQ_STOP;
            st->kept++;
            klen += whole;
        }
        if (progress)
            progress(st, arg);
        off += whole;
    }
    if (klen == len) /* the segment is unchanged */
        rc = 0;
    else if (klen == 0)
        rc = unlinkat(dirfd, name, 0) != 0 ? -errno : 0;
    else
        rc = rewrite(dirfd, name, kept, klen);
    if (rc == 0 && klen != len)
        fsync(dirfd);
    if (rc == 0)
        rc = stop ? 0 : 1;

out_close:
    free(data);
    free(kept);
    close(fd); /* releases the lock */
    return rc;
}

/*
 * Opens dir and lists its segments, oldest first: the segment count (or a
 * negative errno from the scan), with *dirfd and *segs the caller's to close
 * and free; a negative errno with nothing to release when dir cannot be opened.
 */
static int open_segments(const char *dir, int *dirfd, struct lc_dlq_seg **segs, int64_t *total)
{
    *dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*dirfd < 0)
        return -errno;
    *segs = calloc(DLQ_MAX_SEGS, sizeof(**segs));
    if (!*segs) {
        close(*dirfd);
        *dirfd = -1;
        return -ENOMEM;
    }
    return scan(*dirfd, *segs, DLQ_MAX_SEGS, total);
}

int lc_dlq_replay(const char *dir, lc_dlq_replay_fn fn, void *arg,
                  void (*progress)(const struct lc_dlq_replay_stats *st, void *arg),
                  struct lc_dlq_replay_stats *st)
{
    struct lc_dlq_seg *segs = NULL;
    int64_t total;
    char name[64];
    int dirfd = -1, n, rc = 0;

    memset(st, 0, sizeof(*st));
    n = open_segments(dir, &dirfd, &segs, &total);
    if (dirfd < 0)
        return n;
    if (n < 0)
        rc = n;
    st->segments = n > 0 ? (uint32_t)n : 0;
    for (int i = 0; i < n; i++) {
        seg_name(name, sizeof(name), segs[i].seq);
        rc = replay_segment(dirfd, name, fn, arg, progress, st);
        st->segments_done++;
        if (rc <= 0)
            break;
    }
    if (rc > 0)
        rc = 0;
    free(segs);
    close(dirfd);
    return rc;
}

int lc_dlq_list(const char *dir, FILE *f)
{
    struct lc_dlq_seg *segs = NULL;
    int64_t total;
    uint64_t all = 0;
    char name[64];
    int dirfd = -1, n;

    n = open_segments(dir, &dirfd, &segs, &total);
    if (dirfd < 0)
        return n;
    for (int i = 0; i < n; i++) {
        seg_name(name, sizeof(name), segs[i].seq);
        uint64_t lines = count_lines_at(dirfd, name);
        all += lines;
        fprintf(f, "  %s  %10" PRId64 " bytes  %8" PRIu64 " batches\n", name, segs[i].size, lines);
    }
    if (n >= 0)
        fprintf(f, "  total: %d segments, %" PRId64 " bytes, %" PRIu64 " batches\n", n, total, all);
    free(segs);
    close(dirfd);
    return n < 0 ? n : 0;
}

/* ---- appends on the disk worker ------------------------------------------ */

static void dlq_work(struct lc_worker_job *j)
{
    struct lc_dlq *d = LC_WORKER_OWNER(j, struct lc_dlq, job);
    for (struct dlq_pending *p = d->flying; p; p = p->next)
        p->rc = lc_dlq_append(d, p->line, p->len);
}

static void dlq_kick(struct lc_dlq *d);

/* Loop thread: every line of the job is on disk (or failed): acknowledge them in order. */
static void dlq_job_done(struct lc_worker_job *j)
{
    struct lc_dlq *d = LC_WORKER_OWNER(j, struct lc_dlq, job);
    struct dlq_pending *list = d->flying;

    d->flying = NULL;
    while (list) {
        struct dlq_pending *p = list;
        list = p->next;
        p->done(j->cancelled ? -ECANCELED : p->rc, p->arg);
        free(p);
    }
    dlq_kick(d);
}

/* Hands every waiting line to one worker job, unless one flies already. */
static void dlq_kick(struct lc_dlq *d)
{
    if (d->flying || !d->waiting)
        return;
    d->flying = d->waiting;
    d->waiting = d->waiting_tail = NULL;
    d->job.work = dlq_work;
    d->job.done = dlq_job_done;
    int rc = lc_worker_submit(d->worker, &d->job);
    if (rc < 0) {
        while (d->flying) {
            struct dlq_pending *p = d->flying;
            d->flying = p->next;
            lc_counter_inc(d->m.errors);
            p->done(rc, p->arg);
            free(p);
        }
    }
}

int lc_dlq_append_async(struct lc_dlq *d, struct lc_worker *w, const char *line, size_t len,
                        lc_dlq_done_fn done, void *arg)
{
    if (d->worker && d->worker != w)
        return -EINVAL;
    struct dlq_pending *p = malloc(sizeof(*p) + len);
    if (!p)
        return -ENOMEM;
    d->worker = w;
    p->next = NULL;
    p->done = done;
    p->arg = arg;
    p->rc = 0;
    p->len = len;
    memcpy(p->line, line, len);
    LC_FIFO_PUSH(d->waiting, d->waiting_tail, p, next);
    dlq_kick(d);
    return 0;
}

bool lc_dlq_busy(const struct lc_dlq *d)
{
    return d->flying || d->waiting;
}
