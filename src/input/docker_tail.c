/* SPDX-License-Identifier: MIT */
/* docker_tail.c: reads a json-file log from a held descriptor, one bounded chunk per call. */
#include "input/docker_tail.h"

#include "parse/docker_json.h"
#include "parse/docker_seek.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_BYTES   (64 * 1024)  /* one read per call, normally */
#define WINDOW_BYTES (256 * 1024) /* a json-file record at most: 16 KiB of text, escaped, attrs */
#define TEXT_BYTES   (64 * 1024)  /* a record's text: Docker splits lines at 16 KiB */

struct lc_docker_tail {
    int fd;
    off_t off;     /* the next record's start */
    off_t clean;   /* a record's start where neither joiner held parts: where a stop resumes */
    off_t read_to; /* how far records were looked at: one read again is not counted again */
    bool resync;   /* off is inside a record longer than the window: skip to its end */
    uint64_t malformed;
    struct lc_docker_joiner j[2]; /* stdout, stderr */
    char *win;                    /* WINDOW_BYTES */
    char *text;                   /* TEXT_BYTES */
    char *join;                   /* 2 * max_line_bytes: the joiners' storage */
};

struct lc_docker_tail *lc_docker_tail_new(int fd, size_t max_line_bytes)
{
    struct lc_docker_tail *t = calloc(1, sizeof(*t));

    if (!t) {
        close(fd);
        return NULL;
    }
    t->fd = fd;
    t->win = malloc(WINDOW_BYTES);
    t->text = malloc(TEXT_BYTES);
    t->join = malloc(2 * max_line_bytes);
    if (!t->win || !t->text || !t->join) {
        lc_docker_tail_free(t);
        return NULL;
    }
    lc_docker_joiner_init(&t->j[0], t->join, max_line_bytes);
    lc_docker_joiner_init(&t->j[1], t->join + max_line_bytes, max_line_bytes);
    return t;
}

void lc_docker_tail_free(struct lc_docker_tail *t)
{
    if (!t)
        return;
    close(t->fd);
    free(t->win);
    free(t->text);
    free(t->join);
    free(t);
}

uint64_t lc_docker_tail_malformed(const struct lc_docker_tail *t)
{
    return t->malformed;
}

int64_t lc_docker_tail_first_ts(struct lc_docker_tail *t)
{
    struct stat st;
    off_t start;
    int64_t ts;

    if (fstat(t->fd, &st) != 0 ||
        !lc_docker_seek_time_at(t->fd, 0, st.st_size, t->win, READ_BYTES, &start, &ts))
        return 0;
    return ts;
}

void lc_docker_tail_seek(struct lc_docker_tail *t, int64_t cutoff_ns)
{
    struct stat st;

    if (fstat(t->fd, &st) != 0)
        return;
    /* a record start: nothing is half joined there but its own line */
    t->off = t->clean = lc_docker_seek_time(t->fd, 0, st.st_size, cutoff_ns, t->win, READ_BYTES);
}

/* A stop: back to where no split line was half joined, so the message comes again whole. */
static void stop(struct lc_docker_tail *t)
{
    t->off = t->clean;
    lc_docker_joiner_reset(&t->j[0]);
    lc_docker_joiner_reset(&t->j[1]);
}

/* One record at t->off: decoded, joined, and a complete message handed to fn. */
static int one_record(struct lc_docker_tail *t, const char *rec, size_t len, lc_docker_tail_fn fn,
                      void *arg)
{
    struct lc_docker_line dl;
    struct lc_docker_tail_msg m;
    int rc = lc_docker_json_decode(rec, len, t->text, TEXT_BYTES, &dl);
    int s;

    if (rc == -EINVAL) {
        if (t->off >= t->read_to)
            t->malformed++;
        t->read_to = t->off + (off_t)len;
        return 0;
    }
    if (t->off + (off_t)len > t->read_to)
        t->read_to = t->off + (off_t)len;
    if (!t->j[0].pending && !t->j[1].pending)
        t->clean = t->off;
    s = dl.stream == LC_STREAM_STDERR ? 1 : 0;
    if (!lc_docker_join(&t->j[s], &dl, &m.line, &m.len, &m.ts_ns))
        return 0; /* a part of a split line: held until its last part */
    m.stream = dl.stream;
    m.truncated = rc == -E2BIG || t->j[s].dropped > 0;
    return fn(arg, &m);
}

/* The end of the file: a split line whose last part never came is handed over as it is. */
static int flush(struct lc_docker_tail *t, lc_docker_tail_fn fn, void *arg)
{
    for (int s = 0; s < 2; s++) {
        struct lc_docker_tail_msg m = {.stream = s ? LC_STREAM_STDERR : LC_STREAM_STDOUT};

        if (!lc_docker_joiner_flush(&t->j[s], &m.line, &m.len, &m.ts_ns))
            continue;
        m.truncated = t->j[s].dropped > 0;
        if (fn(arg, &m) < 0) {
            stop(t);
            return 0;
        }
    }
    return 1;
}

/*
 * A record longer than the whole window is no json-file record (Docker's are
 * 16 KiB of text at most): counted, and skipped up to its end.
 */
static int skip_long(struct lc_docker_tail *t, size_t n)
{
    char *nl = memchr(t->win, '\n', n);

    if (!t->resync) {
        t->malformed++;
        t->resync = true;
    }
    if (nl) {
        t->resync = false;
        n = (size_t)(nl - t->win) + 1;
    }
    t->off += (off_t)n;
    if (!t->j[0].pending && !t->j[1].pending)
        t->clean = t->off; /* the joiners never saw it */
    return 0;
}

int lc_docker_tail_read(struct lc_docker_tail *t, lc_docker_tail_fn fn, void *arg)
{
    size_t want = READ_BYTES;
    ssize_t n = pread(t->fd, t->win, want, t->off);
    char *p, *end, *nl;

    if (n < 0)
        return -errno;
    if (n == 0)
        return flush(t, fn, arg);
    if (!t->resync && (size_t)n == want && !memchr(t->win, '\n', (size_t)n)) {
        want = WINDOW_BYTES; /* a record longer than a read: the whole window */
        n = pread(t->fd, t->win, want, t->off);
        if (n <= 0)
            return n < 0 ? -errno : 0;
        if ((size_t)n == want && !memchr(t->win, '\n', (size_t)n))
            return skip_long(t, (size_t)n);
    }
    if (t->resync)
        return skip_long(t, (size_t)n);
    for (p = t->win, end = t->win + n; p < end;) {
        size_t len;

        nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl && (size_t)n == want)
            break; /* cut by the read: it comes whole with the next one */
        len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p); /* no '\n': the file's last record */
        if (one_record(t, p, len, fn, arg) < 0) {
            stop(t);
            return 0;
        }
        p += len;
        t->off += (off_t)len;
    }
    return 0;
}
