/* SPDX-License-Identifier: MIT */
/* multiline.c: the `multiline` stage: merges the lines of one record (a stack trace) per stream. */
#include "core/agent.h"
#include "core/log.h"
#include "core/source.h"
#include "process/rx.h"
#include "process/stage.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A stream is a source and a label set (a file; a container's stdout or
 * stderr). A line "starts" a record when it matches `firstline` (or does not
 * match `continuation`); other lines are appended to the stream's held record,
 * joined by '\n'. A held record is emitted when the next record starts, when it
 * has `max_lines` lines, when the next line would pass `max_bytes`, or when no
 * line came for `flush_after`: every one counted by event in
 * log_capturer_process_multiline_total. Presets (`preset:`) are continuation
 * regexes:
 *   java    lines starting with whitespace then text (`\tat ...`, `\t... 5 more`),
 *           `Caused by: ` and `Suppressed: `
 *   python  indented lines (`  File "x", line 1`) and the final exception line
 *           (`ValueError: ...`, a dotted name ending in Error, Exception, Exit,
 *           Interrupt or Warning, then `:` or the end)
 *   go      a `panic:`'s trace: blank lines, `goroutine N [...]:`, tab-indented
 *           lines, `created by ...`, `[signal ...`, `exit status N` and call
 *           lines `pkg.func(...)`
 *
 * Acks: the first line held takes a reference on its source's mark
 * (lc_source_mark_ref), so the committed position stays before it while the
 * record is held; the reference goes once the merged record is in the
 * outputs' batches (from then on, their marks hold the position). A record
 * flushed by the timer lands in a mark sealed at once (lc_source_late_end).
 * When the input stops (reload, shutdown) held records are given up and their
 * marks released as failed, so the restart reads them again whole: kill -9 or
 * a restart in the middle of a trace never splits it (with --once they are
 * sent). Memory: at most `max_streams` streams hold a record, each with a
 * buffer of `max_bytes`; a line of a new stream past that passes unmerged,
 * counted (event streams_full).
 */
struct lc_multiline_conf {
    char *firstline;
    char *continuation;
    int preset;
    int64_t max_lines;
    int64_t max_bytes;
    int64_t flush_after_ms;
    int64_t max_streams;
    struct lc_rx rx;
    bool rx_is_first; /* rx is firstline (a match starts a record), else continuation */
};

static const char *const preset_names[] = {"none", "java", "python", "go", NULL};
static const char *const preset_rx[] = {
    NULL,
    "^(?:[ \\t]+\\S|Caused by: |Suppressed: )",
    "^(?:[ \\t]+\\S|[A-Za-z_][\\w.]*(?:Error|Exception|Exit|Interrupt|Warning)(?::|$))",
    "^(?:$|\\t|goroutine \\d+ \\[|created by |\\[signal |exit status \\d|[\\w./*()-]+\\(.*\\)$)",
};

#define MC(f) offsetof(struct lc_multiline_conf, f)

static const struct lc_option multiline_options[] = {
    {.type = LC_OPT_STR,
     .key = "firstline",
     .flags = LC_OPT_VERBATIM,
     .offset = MC(firstline),
     .help = "PCRE2 regex: a line that matches starts a record, others continue it."},
    {.type = LC_OPT_STR,
     .key = "continuation",
     .flags = LC_OPT_VERBATIM,
     .offset = MC(continuation),
     .help = "PCRE2 regex: a line that matches continues the record, others start one."},
    {.type = LC_OPT_ENUM,
     .key = "preset",
     .def = "none",
     .offset = MC(preset),
     .choices = preset_names,
     .help = "A built-in continuation regex: java (indented `at`/`...` lines, `Caused by:`, "
             "`Suppressed:`), python (indented lines and the final `XxxError: ...` line of a "
             "traceback), go (a panic's goroutine trace)."},
    {.type = LC_OPT_INT,
     .key = "max_lines",
     .def = "128",
     .offset = MC(max_lines),
     .min = 1,
     .max = 100000,
     .help = "A record with this many lines is sent at once (counted: max_lines)."},
    {.type = LC_OPT_SIZE,
     .key = "max_bytes",
     .def = "64KiB",
     .offset = MC(max_bytes),
     .min = 256,
     .max = 1024 * 1024,
     .help = "A line that would make the record longer sends it first (counted: max_bytes); "
             "a longer line is cut."},
    {.type = LC_OPT_DURATION,
     .key = "flush_after",
     .def = "3s",
     .offset = MC(flush_after_ms),
     .min = 10,
     .max = 3600000,
     .help = "A held record is sent when no line came on its stream for this long."},
    {.type = LC_OPT_INT,
     .key = "max_streams",
     .def = "256",
     .offset = MC(max_streams),
     .min = 1,
     .max = 65536,
     .help = "Streams holding a record at once (memory: max_streams x max_bytes)."},
    LC_OPT_END,
};

static int multiline_prepare(void *conf, const char **bad_key, char *err, size_t errlen)
{
    struct lc_multiline_conf *c = conf;
    int given = (c->firstline != NULL) + (c->continuation != NULL) + (c->preset != 0);

    *bad_key = c->firstline ? "firstline" : c->continuation ? "continuation" : "preset";
    if (given != 1) {
        snprintf(err, errlen, "give exactly one of firstline, continuation or preset");
        return -EINVAL;
    }
    c->rx_is_first = c->firstline != NULL;
    return lc_rx_compile(&c->rx,
                         c->firstline      ? c->firstline
                         : c->continuation ? c->continuation
                                           : preset_rx[c->preset],
                         err, errlen);
}

static void multiline_conf_free(void *conf)
{
    lc_rx_free(&((struct lc_multiline_conf *)conf)->rx);
}

enum ml_event {
    EV_FLUSH_AFTER,
    EV_MAX_LINES,
    EV_MAX_BYTES,
    EV_CUT,
    EV_STREAMS_FULL,
    EV_RESTART,
    EV_N
};
static const char *const ev_names[] = {"flush_after", "max_lines",    "max_bytes",
                                       "line_cut",    "streams_full", "given_up_for_restart"};

struct ml_stream {
    struct lc_source *src; /* NULL: the slot is free */
    const struct lc_labels *labels;
    uint64_t seq; /* the mark referenced for the held lines */
    int64_t ts_ns;
    int64_t last_mono_ns;
    char *buf; /* max_bytes, allocated on first use, kept for the slot */
    size_t len;
    uint32_t lines;
    int next; /* bucket chain */
};

#define ML_BUCKETS 256

struct ml_ctx {
    struct ml_stream *streams;
    size_t nstreams, held;
    int buckets[ML_BUCKETS];
    int free_head; /* chain of free slots through `next` */
    /* the mark of a record emitted from run(): released on the next call (once copied) */
    struct lc_source *pending_src;
    uint64_t pending_seq;
    uv_timer_t timer;
    bool timer_on, timer_init;
    bool tick_soon; /* a 0 ms tick is due (take()): one timer restart per loop turn, not per line */
    struct lc_metric_series *m_ev[EV_N];
    struct lc_metric_series *m_merged;
};

/*
 * A reference on the mark of the line being held. The pipeline reserved room
 * for the line before the stages ran, so the ring has room; should it not,
 * the newest mark (where this read's position folds) takes the reference.
 */
static uint64_t ref_mark(struct lc_source *src)
{
    uint64_t seq = 0;

    if (lc_source_mark_ref(src, &seq) == 0)
        return seq;
    int token = lc_source_late_begin(src);
    if (lc_source_mark_ref(src, &seq) != 0)
        lc_log(LC_LOG_ERROR, "multiline", "no mark for a held line: its position may commit early");
    lc_source_late_end(src, token);
    return seq;
}

static unsigned bucket_of(const struct lc_source *src, const struct lc_labels *labels)
{
    uintptr_t h = (uintptr_t)src * 31u + (uintptr_t)labels;
    return (unsigned)((h >> 4) ^ (h >> 12)) % ML_BUCKETS;
}

static struct ml_stream *find(struct ml_ctx *x, const struct lc_source *src,
                              const struct lc_labels *labels)
{
    for (int i = x->buckets[bucket_of(src, labels)]; i >= 0; i = x->streams[i].next)
        if (x->streams[i].src == src && x->streams[i].labels == labels)
            return &x->streams[i];
    return NULL;
}

static void unlink_stream(struct ml_ctx *x, struct ml_stream *s)
{
    int idx = (int)(s - x->streams);
    int *p = &x->buckets[bucket_of(s->src, s->labels)];

    while (*p >= 0 && *p != idx)
        p = &x->streams[*p].next;
    if (*p == idx)
        *p = s->next;
    s->src = NULL;
    s->labels = NULL;
    s->len = 0;
    s->lines = 0;
    s->next = x->free_head;
    x->free_head = idx;
    x->held--;
}

static void release_pending(struct ml_ctx *x)
{
    if (!x->pending_src)
        return;
    lc_source_mark_unref(x->pending_src, x->pending_seq, true);
    x->pending_src = NULL;
}

static void on_tick(uv_timer_t *t);

/* Ticks every flush_after/4 (at most 1 s), the first in `first` ms (-1: one period). */
static void arm_timer_in(struct lc_stage *st, int64_t first)
{
    struct ml_ctx *x = st->ctx;
    const struct lc_multiline_conf *c = st->conf;
    uint64_t every = (uint64_t)(c->flush_after_ms / 4 > 0 ? c->flush_after_ms / 4 : 1);

    if (x->timer_on || !x->timer_init)
        return;
    if (every > 1000)
        every = 1000;
    uv_timer_start(&x->timer, on_tick, first < 0 ? every : (uint64_t)first, every);
    x->timer_on = true;
}

static void arm_timer(struct lc_stage *st)
{
    arm_timer_in(st, -1);
}

/* Appends a line to the stream's held record (cut at max_bytes, counted). */
static void append(struct lc_stage *st, struct ml_stream *s, const char *line, size_t len)
{
    const struct lc_multiline_conf *c = st->conf;
    struct ml_ctx *x = st->ctx;
    size_t room = (size_t)c->max_bytes - s->len - (s->lines ? 1 : 0);

    if (s->lines)
        s->buf[s->len++] = '\n';
    if (len > room) {
        len = room;
        lc_counter_inc(x->m_ev[EV_CUT]);
    }
    memcpy(s->buf + s->len, line, len);
    s->len += len;
    s->lines++;
    s->last_mono_ns = lc_mono_ns();
}

/* Starts holding `line` as a new record of (src, labels). NULL when no slot is free. */
static struct ml_stream *hold(struct lc_stage *st, struct lc_prec *r)
{
    const struct lc_multiline_conf *c = st->conf;
    struct ml_ctx *x = st->ctx;
    struct ml_stream *s = find(x, r->src, r->labels);
    unsigned b;

    if (!s) {
        if (x->free_head < 0)
            return NULL;
        s = &x->streams[x->free_head];
        if (!s->buf) {
            s->buf = malloc((size_t)c->max_bytes);
            if (!s->buf)
                return NULL;
        }
        x->free_head = s->next;
        s->src = r->src;
        s->labels = r->labels;
        b = bucket_of(r->src, r->labels);
        s->next = x->buckets[b];
        x->buckets[b] = (int)(s - x->streams);
        x->held++;
    }
    s->len = 0;
    s->lines = 0;
    s->ts_ns = r->ts_ns;
    if (r->src)
        s->seq = ref_mark(r->src);
    append(st, s, r->line, r->len);
    arm_timer(st);
    return s;
}

/* Makes r the stream's merged record (in r's spare line buffer); the mark goes on the next call. */
static void take(struct lc_stage *st, struct ml_stream *s, struct lc_prec *r)
{
    struct ml_ctx *x = st->ctx;
    char *out = lc_prec_spare(r);

    memcpy(out, s->buf, s->len);
    lc_prec_set_line(r, s->len);
    r->ts_ns = s->ts_ns;
    r->labels = s->labels;
    r->src = s->src;
    lc_counter_inc(x->m_merged);
    if (s->src) {
        x->pending_src = s->src;
        x->pending_seq = s->seq;
        /* released on the next loop turn (or the next line), once the copy is done */
        if (x->timer_init && !x->tick_soon) {
            x->timer_on = false;
            arm_timer_in(st, 0);
            x->tick_soon = true;
        }
    }
}

/* Emits the stream's record now (timer, --once stop), then frees the stream. */
static void emit_now(struct lc_stage *st, struct ml_stream *s)
{
    struct ml_ctx *x = st->ctx;
    int rc;

    lc_counter_inc(x->m_merged);
    rc = lc_chain_emit_held(st, s->src, s->labels, s->ts_ns, s->buf, s->len);
    if (s->src)
        lc_source_mark_unref(s->src, s->seq, rc == 0); /* failed: read again after a restart */
    unlink_stream(x, s);
}

static bool continues(struct lc_multiline_conf *c, const struct lc_prec *r)
{
    bool m = lc_rx_match(&c->rx, r->line, r->len);
    return c->rx_is_first ? !m : m;
}

/* r becomes the stream's held record; the stream starts again, holding r's line. */
static enum lc_stage_result restart_with(struct lc_stage *st, struct ml_stream *s,
                                         struct lc_prec *r)
{
    struct lc_prec line = *r;

    take(st, s, r);
    s->seq = line.src ? ref_mark(line.src) : 0;
    s->len = 0;
    s->lines = 0;
    s->ts_ns = line.ts_ns;
    append(st, s, line.line, line.len);
    return LC_STAGE_PASS;
}

static enum lc_stage_result multiline_run(struct lc_stage *st, struct lc_prec *r)
{
    struct lc_multiline_conf *c = (struct lc_multiline_conf *)st->conf;
    struct ml_ctx *x = st->ctx;
    struct ml_stream *s;

    release_pending(x); /* the previous call's merged record is in the batches now */
    s = find(x, r->src, r->labels);
    if (s && continues(c, r)) {
        if (s->len + 1 + r->len > (size_t)c->max_bytes && s->lines) {
            /* send what is held, start again with this line */
            lc_counter_inc(x->m_ev[EV_MAX_BYTES]);
            return restart_with(st, s, r);
        }
        append(st, s, r->line, r->len);
        if (s->lines >= (uint32_t)c->max_lines) {
            lc_counter_inc(x->m_ev[EV_MAX_LINES]);
            take(st, s, r);
            unlink_stream(x, s);
            return LC_STAGE_PASS;
        }
        return LC_STAGE_HOLD;
    }
    if (s) {
        /* a new record starts: send the held one, hold this line */
        return restart_with(st, s, r);
    }
    if (!hold(st, r)) {
        lc_counter_inc(x->m_ev[EV_STREAMS_FULL]);
        return LC_STAGE_PASS;
    }
    return LC_STAGE_HOLD;
}

static void on_tick(uv_timer_t *t)
{
    struct lc_stage *st = t->data;
    const struct lc_multiline_conf *c = st->conf;
    struct ml_ctx *x = st->ctx;
    int64_t now = lc_mono_ns();

    x->tick_soon = false;
    release_pending(x);
    for (size_t i = 0; i < x->nstreams && x->held; i++) {
        struct ml_stream *s = &x->streams[i];
        if (!s->lines || now - s->last_mono_ns < c->flush_after_ms * LC_NS_PER_MSEC)
            continue;
        lc_counter_inc(x->m_ev[EV_FLUSH_AFTER]);
        emit_now(st, s);
    }
    if (!x->held && !x->pending_src) {
        uv_timer_stop(&x->timer);
        x->timer_on = false;
    }
}

static void multiline_stop(struct lc_stage *st, bool deliver)
{
    struct ml_ctx *x = st->ctx;
    size_t given_up = 0;

    release_pending(x);
    for (size_t i = 0; i < x->nstreams && x->held; i++) {
        struct ml_stream *s = &x->streams[i];
        if (!s->lines)
            continue;
        if (deliver) {
            emit_now(st, s);
            continue;
        }
        if (s->src)
            lc_source_mark_unref(s->src, s->seq, false);
        lc_counter_inc(x->m_ev[EV_RESTART]);
        unlink_stream(x, s);
        given_up++;
    }
    if (given_up)
        lc_logf(LC_LOG_INFO, "process", NULL,
                "input %s: %zu unfinished multiline records will be read again after the "
                "restart",
                st->chain->input_name, given_up);
    if (x->timer_init) {
        uv_close((uv_handle_t *)&x->timer, NULL); /* ctx outlives the loop run */
        x->timer_init = false;
        x->timer_on = false;
        x->tick_soon = false;
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void multiline_free(struct lc_stage *st)
{
    struct ml_ctx *x = st->ctx;

    if (!x)
        return;
    for (size_t i = 0; i < x->nstreams; i++)
        free(x->streams[i].buf);
    free(x->streams);
    st->ctx = NULL;
    if (x->timer_init) {
        /* the loop is closing (free runs after uv_run); the handle memory goes in its callback */
        x->timer.data = x;
        uv_close((uv_handle_t *)&x->timer, on_timer_closed);
        uv_run(x->timer.loop, UV_RUN_NOWAIT);
        return;
    }
    free(x);
}

static int multiline_init(struct lc_stage *st)
{
    static const char *const l_ev[] = {"input", "stage", "event", NULL};
    const struct lc_multiline_conf *c = st->conf;
    struct lc_metric_family *f;
    struct ml_ctx *x = calloc(1, sizeof(*x));

    if (!x)
        return -ENOMEM;
    st->ctx = x;
    x->nstreams = (size_t)c->max_streams;
    x->streams = calloc(x->nstreams, sizeof(*x->streams));
    if (!x->streams)
        return -ENOMEM;
    for (size_t b = 0; b < ML_BUCKETS; b++)
        x->buckets[b] = -1;
    for (size_t i = 0; i < x->nstreams; i++)
        x->streams[i].next = i + 1 < x->nstreams ? (int)(i + 1) : -1;
    x->free_head = 0;
    f = lc_metric_family(LC_COUNTER, "log_capturer_process_multiline_total",
                         "Multiline records sent because of a limit or timer, lines cut, lines "
                         "unmerged (streams_full), records given up for a restart, by event.",
                         l_ev);
    for (int e = 0; e < EV_N; e++)
        x->m_ev[e] = lc_metric_series(f, st->chain->input_name, st->id, ev_names[e]);
    x->m_merged = lc_stage_counter(st, "log_capturer_process_multiline_records_total",
                                   "Merged records the multiline stage sent.");
    if (st->chain->in && st->chain->in->agent && st->chain->in->agent->loop) {
        uv_timer_init(st->chain->in->agent->loop, &x->timer);
        x->timer.data = st;
        x->timer_init = true;
    }
    return 0;
}

const struct lc_stage_plugin lc_stage_multiline = {
    .name = "multiline",
    .description = "merges the lines of one record (a stack trace) into one, per stream",
    .options = multiline_options,
    .conf_size = sizeof(struct lc_multiline_conf),
    .prepare = multiline_prepare,
    .conf_free = multiline_conf_free,
    .init = multiline_init,
    .run = multiline_run,
    .free = multiline_free,
    .stop = multiline_stop,
};
