/* SPDX-License-Identifier: MIT */
/* ndjson.c: the local outputs: `stdout` and `file` (JSON lines) and `null` (discards, counts). */
#include "core/agent.h"
#include "core/batch.h"
#include "core/buf.h"
#include "core/fifo.h"
#include "core/labels.h"
#include "core/log.h"
#include "core/worker.h"
#include "output/loki_encode.h"
#include "parse/timestamp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * One object per record: {"time":"<RFC3339Nano>","labels":{...},"line":"..."}.
 * A batch is formatted into one buffer and written with as few write() calls
 * as the kernel allows; the batch is acknowledged once the bytes were written
 * (and, with fsync: true, synced). A write error keeps the batch for a retry
 * after a pause, so a full disk delays delivery but never loses a line.
 *
 * fsync runs on the disk worker thread (core/worker.h), never on the loop:
 * written batches wait on `unsynced`; one sync job at a time takes all of
 * them (`syncing`) and acknowledges them in order when it returns. A failed
 * sync rewrites its batches (duplicates, never loss): after a failed fsync
 * the kernel may have dropped the dirty pages.
 */
struct lc_ndjson_conf {
    char *path;
    bool fsync;
    int64_t retry_ms;
};

struct lc_ndjson {
    int fd;
    bool own_fd;
    struct lc_buf out;
    struct lc_batch *retry; /* FIFO of batches whose write failed */
    struct lc_batch *retry_tail;
    uv_timer_t retry_timer;
    struct lc_batch *unsynced, *unsynced_tail; /* written, waiting for a sync */
    struct lc_batch *syncing;                  /* written, covered by the sync in flight */
    struct lc_worker_job sync_job;
    int sync_rc;
    struct lc_output *owner;
    bool stopping;
    struct lc_metric_series *m_bytes;
    struct lc_metric_series *m_errors;
};

static const struct lc_option file_options[] = {
    {LC_OPT_STR, "path", NULL, offsetof(struct lc_ndjson_conf, path), .flags = LC_OPT_REQUIRED,
     .help = "File to append JSON lines to (created 0640)."},
    {LC_OPT_BOOL, "fsync", "false", offsetof(struct lc_ndjson_conf, fsync),
     .help = "fsync after each batch before acknowledging it."},
    {LC_OPT_DURATION, "retry_interval", "1s", offsetof(struct lc_ndjson_conf, retry_ms), 10,
     3600000, .help = "Pause before writing again after a write error."},
    LC_OPT_END,
};

static const struct lc_option stdout_options[] = {
    {LC_OPT_DURATION, "retry_interval", "1s", offsetof(struct lc_ndjson_conf, retry_ms), 10,
     3600000, .help = "Pause before writing again after a write error."},
    LC_OPT_END,
};

static const struct lc_option null_options[] = {LC_OPT_END};

/* Appends labels, then the output's static labels not already set by the record. */
static int put_labels(struct lc_buf *o, const struct lc_labels *l, const struct lc_kvlist *extra)
{
    int rc = 0;
    bool first = true;

    rc |= lc_buf_putc(o, '{');
    if (l && l->json_len > 2) {
        rc |= lc_buf_append(o, l->json + 1, l->json_len - 2);
        first = false;
    }
    for (size_t i = 0; i < extra->n; i++) {
        bool dup = false;
        for (size_t j = 0; l && j < l->n && !dup; j++)
            dup = strcmp(l->pairs[j].key, extra->v[i].key) == 0;
        if (dup)
            continue;
        rc |= lc_buf_append(o, first ? "\"" : ",\"", first ? 1 : 2);
        rc |= lc_buf_json_str(o, extra->v[i].key, strlen(extra->v[i].key));
        rc |= lc_buf_append(o, "\":\"", 3);
        rc |= lc_buf_json_str(o, extra->v[i].value, strlen(extra->v[i].value));
        rc |= lc_buf_putc(o, '"');
        first = false;
    }
    return rc | lc_buf_putc(o, '}');
}

static int format_batch(struct lc_output *out, struct lc_buf *o, const struct lc_batch *b)
{
    char ts[LC_TS_RFC3339NANO_MAX];
    int rc = 0;

    lc_buf_reset(o);
    for (uint32_t i = 0; i < b->n && rc == 0; i++) {
        const struct lc_record *r = &b->recs[i];
        size_t n = lc_ts_format_rfc3339nano(r->ts_ns, ts);
        rc |= lc_buf_append(o, "{\"time\":\"", 9);
        rc |= lc_buf_append(o, ts, n);
        rc |= lc_buf_append(o, "\",\"labels\":", 11);
        rc |= put_labels(o, r->labels, &out->conf->labels);
        rc |= lc_buf_append(o, ",\"line\":\"", 9);
        rc |= lc_buf_json_str(o, lc_batch_line(b, r), r->line_len);
        rc |= lc_buf_putc(o, '"');
        if (r->meta_len) {
            rc |= lc_buf_append(o, ",\"metadata\":", 12);
            rc |= lc_loki_meta_json(o, lc_batch_meta(b, r), r->meta_len);
        }
        if (b->tenant[0]) { /* the `tenant` stage's: a Loki output's X-Scope-OrgID */
            rc |= lc_buf_append(o, ",\"tenant\":\"", 11);
            rc |= lc_buf_json_str(o, b->tenant, strlen(b->tenant));
            rc |= lc_buf_putc(o, '"');
        }
        rc |= lc_buf_append(o, "}\n", 2);
    }
    return rc;
}

/* Writes everything, waiting on a non-blocking descriptor. 0 or -errno. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            poll(&pfd, 1, 1000);
            continue;
        }
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_batch(struct lc_output *out, struct lc_batch *b)
{
    struct lc_ndjson *nj = out->ctx;
    int rc = format_batch(out, &nj->out, b);

    if (rc)
        return -ENOMEM;
    rc = write_all(nj->fd, nj->out.data, nj->out.len);
    if (rc == 0)
        lc_counter_add(nj->m_bytes, nj->out.len);
    return rc;
}

static void on_retry(uv_timer_t *t);

static bool needs_sync(const struct lc_output *out)
{
    const struct lc_ndjson_conf *c = out->conf->conf;
    const struct lc_ndjson *nj = out->ctx;
    return c->fsync && nj->own_fd;
}

static void sync_work(struct lc_worker_job *j)
{
    struct lc_ndjson *nj = LC_WORKER_OWNER(j, struct lc_ndjson, sync_job);
    nj->sync_rc = fsync(nj->fd) == 0 ? 0 : -errno;
}

static void kick_sync(struct lc_output *out);
static void maybe_stopped(struct lc_output *out);

/* Loop thread: the sync returned; its batches are acknowledged, or written again. */
static void sync_done(struct lc_worker_job *j)
{
    struct lc_ndjson *nj = LC_WORKER_OWNER(j, struct lc_ndjson, sync_job);
    struct lc_output *out = nj->owner;
    const struct lc_ndjson_conf *c = out->conf->conf;
    struct lc_batch *list = nj->syncing;
    int rc = j->cancelled ? -ECANCELED : nj->sync_rc;

    nj->syncing = NULL;
    if (rc == 0 || nj->stopping) {
        if (rc < 0)
            lc_counter_inc(nj->m_errors);
        while (list) {
            struct lc_batch *b = list;
            list = b->next;
            lc_output_done(out, b, rc == 0 ? LC_FATE_DELIVERED : LC_FATE_FAILED);
        }
    } else {
        /* in front of whatever waits for a retry: they are older */
        struct lc_batch *last = list;
        while (last->next)
            last = last->next;
        last->next = nj->retry;
        if (!nj->retry)
            nj->retry_tail = last;
        nj->retry = list;
        lc_counter_inc(nj->m_errors);
        lc_logf(LC_LOG_ERROR, out->conf->name, NULL, "fsync failed: %s; rewriting in %lld ms",
                strerror(-rc), (long long)c->retry_ms);
        uv_timer_start(&nj->retry_timer, on_retry, (uint64_t)c->retry_ms, 0);
    }
    kick_sync(out);
    maybe_stopped(out);
}

/* Starts a sync of every written batch, unless one is in flight. */
static void kick_sync(struct lc_output *out)
{
    struct lc_ndjson *nj = out->ctx;

    if (nj->syncing || !nj->unsynced)
        return;
    nj->syncing = nj->unsynced;
    nj->unsynced = nj->unsynced_tail = NULL;
    nj->sync_job.work = sync_work;
    nj->sync_job.done = sync_done;
    if (lc_worker_submit(out->agent->worker, &nj->sync_job) < 0) {
        /* only after the worker closed, at the very end: fail them, never block */
        nj->sync_job.cancelled = true;
        sync_done(&nj->sync_job);
    }
}

/* A batch is written: acknowledge it now, or after the next sync. */
static void written(struct lc_output *out, struct lc_batch *b)
{
    struct lc_ndjson *nj = out->ctx;

    if (!needs_sync(out)) {
        lc_output_done(out, b, LC_FATE_DELIVERED);
        return;
    }
    LC_FIFO_PUSH(nj->unsynced, nj->unsynced_tail, b, next);
    kick_sync(out);
}

static void on_retry(uv_timer_t *t)
{
    struct lc_output *out = t->data;
    struct lc_ndjson *nj = out->ctx;
    const struct lc_ndjson_conf *c = out->conf->conf;

    while (nj->retry) {
        struct lc_batch *b = nj->retry;
        if (write_batch(out, b) != 0) {
            uv_timer_start(&nj->retry_timer, on_retry, (uint64_t)c->retry_ms, 0);
            return;
        }
        LC_FIFO_POP(nj->retry, nj->retry_tail, b, next);
        written(out, b);
    }
}

static void ndjson_send(struct lc_output *out, struct lc_batch *b)
{
    struct lc_ndjson *nj = out->ctx;
    const struct lc_ndjson_conf *c = out->conf->conf;
    int rc;

    /* Keep order: once something waits for a retry, everything queues behind it. */
    if (!nj->retry) {
        rc = write_batch(out, b);
        if (rc == 0) {
            written(out, b);
            return;
        }
        lc_counter_inc(nj->m_errors);
        lc_logf(LC_LOG_ERROR, out->conf->name, NULL, "write failed: %s; retrying in %lld ms",
                strerror(-rc), (long long)c->retry_ms);
        uv_timer_start(&nj->retry_timer, on_retry, (uint64_t)c->retry_ms, 0);
    }
    LC_FIFO_PUSH(nj->retry, nj->retry_tail, b, next);
}

static void on_closed(uv_handle_t *h)
{
    lc_output_stopped(h->data);
}

/* Stopping, and no sync in flight or waiting: close. */
static void maybe_stopped(struct lc_output *out)
{
    struct lc_ndjson *nj = out->ctx;

    if (!nj->stopping || nj->syncing || nj->unsynced ||
        uv_is_closing((uv_handle_t *)&nj->retry_timer))
        return;
    nj->retry_timer.data = out;
    uv_close((uv_handle_t *)&nj->retry_timer, on_closed);
}

static void ndjson_stop(struct lc_output *out)
{
    struct lc_ndjson *nj = out->ctx;

    nj->stopping = true;
    uv_timer_stop(&nj->retry_timer);
    while (nj->retry) {
        struct lc_batch *b = nj->retry;
        nj->retry = b->next;
        lc_output_done(out, b, LC_FATE_FAILED);
    }
    nj->retry_tail = NULL;
    /* written batches still get their sync (the agent waited for them already) */
    kick_sync(out);
    maybe_stopped(out);
}

static void ndjson_free(struct lc_output *out)
{
    struct lc_ndjson *nj = out->ctx;

    if (nj->own_fd && nj->fd >= 0)
        close(nj->fd);
    lc_buf_free(&nj->out);
    free(nj);
    out->ctx = NULL;
}

static const struct lc_metric_row ndjson_series[] = {
    {LC_COUNTER, "log_capturer_output_written_bytes_total", "Bytes written by a local output.",
     offsetof(struct lc_ndjson, m_bytes)},
    {LC_COUNTER, "log_capturer_output_write_errors_total",
     "Failed writes of a local output (retried).", offsetof(struct lc_ndjson, m_errors)},
};

static int ndjson_init_common(struct lc_output *out, int fd, bool own)
{
    struct lc_ndjson *nj = calloc(1, sizeof(*nj));

    if (!nj) {
        if (own)
            close(fd);
        return -ENOMEM;
    }
    nj->fd = fd;
    nj->own_fd = own;
    nj->owner = out;
    /* A batch's lines grow by their JSON envelope and escapes: at most 6x for \u00XX. */
    lc_buf_init(&nj->out, (size_t)out->agent->cfg->batch_bytes * 8 + (1u << 20));
    uv_timer_init(out->agent->loop, &nj->retry_timer);
    nj->retry_timer.data = out;
    lc_metric_register_rows(nj, ndjson_series, LC_METRIC_ROWS(ndjson_series), "output",
                            out->conf->name);
    out->ctx = nj;
    return 0;
}

static int stdout_init(struct lc_output *out)
{
    return ndjson_init_common(out, STDOUT_FILENO, false);
}

static int file_init(struct lc_output *out)
{
    const struct lc_ndjson_conf *c = out->conf->conf;
    int fd = open(c->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    if (fd < 0) {
        int e = errno;
        lc_logf(LC_LOG_ERROR, out->conf->name, NULL, "cannot open %s: %s", c->path, strerror(e));
        return -e;
    }
    return ndjson_init_common(out, fd, true);
}

static void null_send(struct lc_output *out, struct lc_batch *b)
{
    lc_output_done(out, b, LC_FATE_DELIVERED);
}

static int null_init(struct lc_output *out)
{
    out->ctx = out; /* nothing to hold, but non-NULL marks it initialised */
    return 0;
}

static void null_stop(struct lc_output *out)
{
    lc_output_stopped(out);
}

static void null_free(struct lc_output *out)
{
    out->ctx = NULL;
}

const struct lc_output_plugin lc_output_stdout = {
    .name = "stdout",
    .description = "JSON lines on standard output",
    .options = stdout_options,
    .conf_size = sizeof(struct lc_ndjson_conf),
    .init = stdout_init,
    .send = ndjson_send,
    .stop = ndjson_stop,
    .free = ndjson_free,
};

const struct lc_output_plugin lc_output_file = {
    .name = "file",
    .description = "JSON lines appended to a file",
    .options = file_options,
    .conf_size = sizeof(struct lc_ndjson_conf),
    .init = file_init,
    .send = ndjson_send,
    .stop = ndjson_stop,
    .free = ndjson_free,
};

const struct lc_output_plugin lc_output_null = {
    .name = "null",
    .description = "discards records and counts them (benchmarks)",
    .options = null_options,
    .conf_size = 0,
    .init = null_init,
    .send = null_send,
    .stop = null_stop,
    .free = null_free,
};
