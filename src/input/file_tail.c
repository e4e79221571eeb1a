/* SPDX-License-Identifier: MIT */
/* file_tail.c: reading one file: blocks in, lines out, positions checkpointed per block. */
#include "input/file.h"

#include "core/log.h"
#include "parse/timestamp.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Hot path. A block is read with one pread() into the input's buffer, lines
 * are found with memchr and handed to the pipeline straight from that buffer
 * (the pipeline copies each line once, into the batch). Only a line that
 * spans two blocks is assembled in t->partial. The position after the last
 * complete line of a block is the block's checkpoint.
 */

uint64_t lc_fp_update(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

static int64_t line_time(struct lc_tail *t, const char *line, size_t len, int64_t now, bool *known)
{
    int64_t ts;

    *known = false;
    if (lc_ts_parse_prefix(line, len, now, 0, &ts, NULL) == 0) {
        *known = true;
        return ts;
    }
    (void)t;
    return now;
}

int lc_tail_emit(struct lc_tail *t, struct lc_labels *labels, int64_t ts, const char *line,
                 size_t len)
{
    int rc = lc_pipeline_emit_labels(t->fi->in, t->src, labels, ts, line, len);

    if (rc) {
        t->emit_failed = true; /* counted and logged by the pipeline */
        return rc;
    }
    t->retry_ms = 0;
    if (ts == t->last_ts) {
        t->last_ts_seq++;
    } else {
        t->last_ts = ts;
        t->last_ts_seq = 1;
    }
    t->uncounted++;
    return 0;
}

void lc_tail_count(struct lc_tail *t)
{
    if (t->uncounted) {
        lc_counter_add(t->fi->in->m_lines, t->uncounted);
        t->uncounted = 0;
    }
}

void lc_tail_retry(struct lc_tail *t)
{
    int64_t wait = t->retry_ms ? t->retry_ms * 2 : LC_TAIL_RETRY_MIN_MS;

    t->retry_ms = wait > LC_TAIL_RETRY_MAX_MS ? LC_TAIL_RETRY_MAX_MS : wait;
    t->retry_ns = lc_mono_ns() + t->retry_ms * LC_NS_PER_MSEC;
    t->offset = t->safe_offset;
    t->line_start = t->safe_offset;
    t->discarding = false;
    lc_buf_reset(&t->partial);
    if (t->fi->ops && t->fi->ops->rewind)
        t->fi->ops->rewind(t);
    t->emit_failed = false;
    t->hot = false; /* the poll reads it again once retry_ns passed */
}

static void emit(struct lc_tail *t, const char *line, size_t len, int64_t now)
{
    struct lc_file_in *fi = t->fi;
    const struct lc_file_conf *c = fi->c;
    int64_t ts = now;
    bool from_clock = true;

    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (t->skip_old || c->timestamp == LC_TS_PARSE) {
        bool known;
        int64_t lt = line_time(t, line, len, now, &known);
        if (t->skip_old && known) {
            if (lt < now - c->max_age_ms * LC_NS_PER_MSEC) {
                lc_counter_inc(fi->m_skip_old);
                return;
            }
            t->skip_old = false; /* lines after a recent one are recent too */
        }
        if (c->timestamp == LC_TS_PARSE && known) {
            ts = lt;
            from_clock = false;
        }
    }
    if (len > (size_t)c->max_line_bytes) {
        len = (size_t)c->max_line_bytes;
        lc_counter_inc(fi->m_cut);
    }
    /*
     * Lines of one read share a clock reading; give each its own nanosecond
     * so the file's order survives concurrent pushes (Loki orders a stream by
     * time). A read-time stamp drifts at most a few microseconds ahead.
     */
    if (from_clock && ts <= t->last_ts)
        ts = t->last_ts + 1;
    lc_tail_emit(t, lc_source_labels(t->src), ts, line, len); /* a failure sets t->emit_failed */
}

/* Keeps the unfinished end of a block; an over-long line is cut at max_line_bytes. */
static void hold(struct lc_tail *t, const char *p, size_t n, int64_t at, int64_t now)
{
    const struct lc_file_conf *c = t->fi->c;
    size_t room;

    if (t->discarding)
        return;
    if (t->partial.len == 0)
        t->line_start = at;
    room = (size_t)c->max_line_bytes - t->partial.len;
    if (lc_buf_append(&t->partial, p, n <= room ? n : room) != 0) {
        /* the buffer is capped at max_line_bytes: only ENOMEM gets here */
        lc_counter_inc(t->fi->m_errors);
        lc_logf(LC_LOG_ERROR, t->fi->in->conf->name, NULL,
                "%s: no memory to hold a line: it is read again later", t->path);
        t->emit_failed = true; /* goes back before the line, as a failed emit */
        return;
    }
    if (n <= room)
        return;
    if (!t->fi->ops) /* a decoder cannot use half a line: it is counted and dropped */
        emit(t, t->partial.data, t->partial.len, now);
    if (t->emit_failed)
        return;
    lc_counter_inc(t->fi->m_cut);
    lc_buf_reset(&t->partial);
    t->discarding = true;
}

/* A complete line: the ops' decoder, or a plain text line. True if a position may follow it. */
static bool line_done(struct lc_tail *t, const char *line, size_t len, int64_t now)
{
    if (t->fi->ops)
        return t->fi->ops->line(t, line, len, now);
    emit(t, line, len, now);
    return true;
}

/*
 * Lines of one block. Returns false when a line could not be queued: the
 * position is sealed before it and t went back there (lc_tail_retry).
 */
static bool process(struct lc_tail *t, const char *buf, size_t n, int64_t base)
{
    const char *p = buf, *end = buf + n;
    int64_t now = lc_now_ns(); /* one clock read per block, not per line */
    int64_t last = -1;

    while (p < end && !t->emit_failed) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            hold(t, p, (size_t)(end - p), base + (p - buf), now);
            break;
        }
        bool safe = true;
        if (t->discarding) {
            t->discarding = false; /* the newline ends the cut line */
        } else if (t->partial.len > 0) {
            hold(t, p, (size_t)(nl - p), base + (p - buf), now);
            if (t->emit_failed)
                break;
            if (t->discarding)
                t->discarding = false;
            else
                safe = line_done(t, t->partial.data, t->partial.len, now);
            if (t->emit_failed)
                break;
            lc_buf_reset(&t->partial);
        } else {
            safe = line_done(t, p, (size_t)(nl - p), now);
            if (t->emit_failed)
                break;
        }
        p = nl + 1;
        if (safe)
            last = base + (p - buf);
    }
    if (last >= 0) {
        struct lc_pos pos = {.offset = last, .ts_ns = t->last_ts, .ts_seq = t->last_ts_seq};
        lc_source_checkpoint(t->src, &pos);
        t->safe_offset = last;
    }
    if (t->emit_failed) {
        lc_tail_retry(t);
        return false;
    }
    return true;
}

static void extend_fingerprint(struct lc_tail *t, const char *buf, size_t n)
{
    if (t->fp_len >= LC_FP_BYTES || t->offset != (int64_t)t->fp_len)
        return;
    size_t take = LC_FP_BYTES - t->fp_len;
    if (take > n)
        take = n;
    t->fp_hash = lc_fp_update(t->fp_hash, buf, take);
    t->fp_len += (uint32_t)take;
    lc_source_set_fingerprint(t->src, t->fp_hash, t->fp_len);
}

/*
 * Copytruncate may empty a file and the writer refill it past our offset
 * before any poll saw it shrink; reading on would start mid-line in new
 * content. The first bytes we hashed tell: if they changed (or the file is
 * shorter than what we read), it is a new generation. One small pread per
 * read call, not per block.
 */
static bool replaced(struct lc_tail *t)
{
    char buf[LC_FP_BYTES];
    struct stat st;

    if (fstat(t->fd, &st) == 0 && st.st_size < t->offset)
        return true;
    if (t->fp_len == 0)
        return false;
    if (pread(t->fd, buf, t->fp_len, 0) != (ssize_t)t->fp_len)
        return true;
    return lc_fp_update(LC_FP_SEED, buf, t->fp_len) != t->fp_hash;
}

int64_t lc_tail_read(struct lc_tail *t, int64_t budget)
{
    struct lc_file_in *fi = t->fi;
    size_t size = (size_t)fi->c->read_bytes;
    int64_t total = 0;

    if (replaced(t))
        lc_tail_truncated(t);

    if (t->retry_ns) {
        if (lc_mono_ns() < t->retry_ns) {
            t->hot = false; /* the poll comes back */
            return 0;
        }
        t->retry_ns = 0;
    }
    while (total < budget) {
        ssize_t n;

        if (lc_pipeline_paused(fi->in->pipeline) || lc_source_over_share(t->src))
            break;                     /* stays hot: resumed when there is room */
        lc_source_fold_newest(t->src); /* every mark in flight: this block joins the newest */
        n = pread(t->fd, fi->readbuf, size, t->offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            lc_counter_inc(fi->m_errors);
            lc_logf(LC_LOG_ERROR, fi->in->conf->name, NULL, "read %s: %s", t->path, strerror(e));
            t->hot = false;
            lc_tail_count(t);
            return -e;
        }
        if (n == 0) {
            t->hot = false;
            break;
        }
        extend_fingerprint(t, fi->readbuf, (size_t)n);
        t->done = false;
        if (!process(t, fi->readbuf, (size_t)n, t->offset))
            break; /* t went back before a line that could not be queued */
        t->offset += n;
        total += n;
        t->idle_since = lc_mono_ns();
        lc_counter_add(fi->in->m_bytes, (uint64_t)n);
        if ((size_t)n < size) {
            t->hot = false;
            break;
        }
    }
    lc_tail_count(t);
    return total;
}

void lc_tail_flush_partial(struct lc_tail *t, int64_t now_mono)
{
    struct lc_pos pos;

    if (t->partial.len == 0 || now_mono - t->idle_since < t->fi->c->flush_ms * LC_NS_PER_MSEC)
        return;
    if (!t->src || !lc_source_writable(t->src) || t->fi->ops || t->retry_ns)
        return; /* a decoder's partial line is a torn write: it waits for its end */
    emit(t, t->partial.data, t->partial.len, lc_now_ns());
    lc_tail_count(t);
    if (t->emit_failed) {
        lc_tail_retry(t);
        return;
    }
    lc_counter_inc(t->fi->m_partial_flush);
    lc_buf_reset(&t->partial);
    pos.offset = t->offset;
    pos.ts_ns = t->last_ts;
    pos.ts_seq = t->last_ts_seq;
    lc_source_checkpoint(t->src, &pos);
    t->safe_offset = t->offset;
}

void lc_tail_truncated(struct lc_tail *t)
{
    struct lc_pos pos = {.offset = 0};

    lc_counter_inc(t->fi->m_rot[LC_ROT_TRUNCATE]);
    lc_logf(LC_LOG_INFO, t->fi->in->conf->name, NULL, "%s was truncated: reading from the start",
            t->path);
    t->offset = 0;
    t->safe_offset = 0;
    t->line_start = 0;
    t->discarding = false;
    lc_buf_reset(&t->partial);
    t->fp_hash = LC_FP_SEED;
    t->fp_len = 0;
    if (t->src) {
        lc_source_set_fingerprint(t->src, t->fp_hash, 0);
        lc_source_checkpoint(t->src, &pos);
    }
    t->hot = true;
}
