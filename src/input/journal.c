/* SPDX-License-Identifier: MIT */
/* journal.c: the `journal` input: the systemd journal through sd-journal, positioned by cursor. */
#include "input/journal.h"

#include "core/agent.h"
#include "core/ckpt.h"
#include "core/labels.h"
#include "core/log.h"
#include "core/losses.h"
#include "core/source.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>
#include <uv.h>

/*
 * One sd_journal handle per input: the local journal (system and runtime
 * files), or every journal file of `path`. One source, keyed
 * "journal:<input>", whose position is the journal cursor of the last entry
 * whose delivery is acknowledged (docs/internals/checkpoints.md, "Cursors").
 *
 * Reading never blocks the loop: a uv_idle reads at most read_entries entries
 * per turn, seals them as one mark with the cursor of the last one, and
 * yields; it stops at the end of the journal, when the pipeline pauses, or
 * when the source's mark ring is full. New entries, rotation and vacuuming
 * are seen through sd_journal_get_fd() (inotify) on a uv_poll, whose callback
 * runs sd_journal_process(); a timer does the same every poll_interval for
 * file systems without inotify.
 *
 * Labels: the input's `labels`, plus `fields` (label <- journal field) of
 * each entry. Distinct sets are interned once and cached (max_label_sets);
 * records point at them, so the cache is only emptied when nothing is in
 * flight. The input's context outlives every batch (plugins are freed after
 * the loop ended), so cached sets outlive the records that use them.
 */

static const char *const start_choices[] = {"end", "beginning", NULL};

#define OPT(t, k, d, f, lo, hi, h)                                                                 \
    {                                                                                              \
        (t), (k), (d), offsetof(struct lc_journal_conf, f), (lo), (hi), .help = (h)                \
    }

static const struct lc_option journal_options[] = {
    OPT(LC_OPT_STR, "path", NULL, path, 0, 0,
        "A directory of journal files (e.g. from systemd-journal-remote); unset: the local "
        "journal (/var/log/journal, /run/log/journal). A missing directory fails the start."),
    {LC_OPT_STRLIST, "units", NULL, offsetof(struct lc_journal_conf, units),
     .check = lc_journal_check_match,
     .help = "Only entries of these systemd units (_SYSTEMD_UNIT, e.g. ssh.service); empty: all."},
    {LC_OPT_STRLIST, "identifiers", NULL, offsetof(struct lc_journal_conf, identifiers),
     .check = lc_journal_check_match,
     .help = "Only entries with these SYSLOG_IDENTIFIER values; empty: all. Combined with "
             "units and priority by AND."},
    {LC_OPT_ENUM, "priority", "debug", offsetof(struct lc_journal_conf, priority),
     .choices = lc_journal_levels,
     .help = "Only entries at this level or more severe (PRIORITY); debug: all (also "
             "entries without a PRIORITY)."},
    {LC_OPT_ENUM, "start_at", "end", offsetof(struct lc_journal_conf, start_at),
     .choices = start_choices,
     .help = "Where the input starts the very first time (no cursor stored yet)."},
    OPT(LC_OPT_DURATION, "max_age", "0", max_age_ms, 0, 0,
        "With start_at: beginning, the first start begins at the first entry this recent "
        "(older ones are not read; logged); 0 reads all."),
    {LC_OPT_MAP, "fields", "{unit: _SYSTEMD_UNIT, level: PRIORITY, hostname: _HOSTNAME}",
     offsetof(struct lc_journal_conf, fields), .check = lc_journal_check_field,
     .help = "Labels from journal fields (label: FIELD); PRIORITY becomes its level name. "
             "Setting it replaces the default. Every distinct value makes a Loki stream: "
             "never map per-entry fields (_PID, MESSAGE_ID, ...)."},
    OPT(LC_OPT_INT, "max_label_sets", "1024", max_label_sets, 1, 1000000,
        "Distinct label sets held at once; entries beyond get the input's labels only "
        "(counted)."),
    OPT(LC_OPT_SIZE, "max_line_bytes", "256KiB", max_line_bytes, 256, 16 << 20,
        "Longer MESSAGE values are cut to this size (counted)."),
    OPT(LC_OPT_INT, "read_entries", "1024", read_entries, 1, 1000000,
        "Entries read per turn of the event loop (one acknowledgement mark)."),
    OPT(LC_OPT_INT, "max_unacked_reads", "64", max_unacked, 2, 65536,
        "Turns of entries waiting for delivery before reading pauses."),
    OPT(LC_OPT_DURATION, "poll_interval", "1s", poll_ms, 10, 60000,
        "How often the journal is checked without an inotify event."),
    LC_OPT_END,
};

enum { SKIP_TOO_OLD, SKIP_NO_MESSAGE }; /* why an entry was skipped */

struct lc_journal {
    struct lc_input *in;
    const struct lc_journal_conf *c;
    sd_journal *j;
    uv_poll_t poll;
    uv_idle_t work;
    uv_timer_t timer;
    bool have_poll;
    bool handles; /* work and timer initialised */
    size_t closing;
    bool paused;
    bool stopping;
    bool at_end;   /* the last sd_journal_next found nothing */
    bool pending;  /* the journal stands on an entry not read yet (a vacuumed cursor) */
    bool skip_old; /* first start with max_age */
    struct lc_source *src;
    struct lc_labels *base; /* the input's own labels */
    struct lc_journal_cache cache;
    char *line; /* a MESSAGE fixed to UTF-8 */
    char *vals; /* label values, fields.n slots */
    char *key;  /* the label-set cache key */
    size_t keycap;
    struct lc_kv *kv;
    size_t nbase; /* pairs of the input's labels at the front of kv */
    int64_t seq;  /* entries consumed, the position's offset */
    struct lc_metric_series *m_resets, *m_cut, *m_bad_utf8, *m_errors, *m_label_sets,
        *m_label_overflow, *m_label_cut;
    struct lc_metric_series *m_skip[2]; /* lines skipped: SKIP_TOO_OLD, SKIP_NO_MESSAGE */
};

static void on_work(uv_idle_t *h);

static void kick(struct lc_journal *jr)
{
    if (!jr->stopping && !jr->paused && jr->handles)
        uv_idle_start(&jr->work, on_work);
}

static int get_field(const char *field, const char **val, size_t *len, void *arg)
{
    struct lc_journal *jr = arg;
    const void *d;
    size_t n, fl = strlen(field);
    int rc = sd_journal_get_data(jr->j, field, &d, &n);

    if (rc < 0)
        return rc;
    if (n < fl + 1) /* "FIELD=" */
        return -EBADMSG;
    *val = (const char *)d + fl + 1;
    *len = n - fl - 1;
    return 0;
}

/* The label set of the current entry (cached), or the input's own at max_label_sets. */
static struct lc_labels *entry_labels(struct lc_journal *jr)
{
    const struct lc_journal_conf *c = jr->c;
    struct lc_labels *l;
    size_t keylen, cut = 0, bad = 0, np;

    if (c->fields.n == 0)
        return jr->base;
    np = lc_journal_map_fields(&c->fields, get_field, jr, jr->kv + jr->nbase, jr->vals, jr->key,
                               jr->keycap, &keylen, &cut, &bad);
    if (cut)
        lc_counter_add(jr->m_label_cut, (int64_t)cut);
    if (bad)
        lc_counter_add(jr->m_bad_utf8, (int64_t)bad);
    l = lc_journal_cache_get(&jr->cache, jr->key, keylen);
    if (l)
        return l;
    if (jr->cache.n >= jr->cache.max && lc_source_drained(jr->src)) {
        /* nothing in flight points at any of them: start over */
        lc_journal_cache_clear(&jr->cache);
    }
    if (jr->cache.n >= jr->cache.max) {
        lc_counter_inc(jr->m_label_overflow);
        lc_log(LC_LOG_WARN, jr->in->conf->name,
               "max_label_sets reached: entries of a new label set carry the input's labels only "
               "(map fewer or less varied fields)");
        return jr->base;
    }
    if (np + jr->nbase == 0 || lc_labels_intern(jr->kv, np + jr->nbase, &l) < 0)
        return jr->base;
    if (lc_journal_cache_put(&jr->cache, jr->key, keylen, l) < 0) {
        lc_labels_release(l);
        return jr->base;
    }
    lc_labels_release(l); /* the cache holds it */
    lc_gauge_set(jr->m_label_sets, (int64_t)jr->cache.n);
    return l;
}

/*
 * Reads the entry the journal stands on: 0 when it was queued or skipped,
 * -errno when the pipeline could not queue it (read again later).
 */
static int read_entry(struct lc_journal *jr, int64_t cutoff_ns)
{
    const struct lc_journal_conf *c = jr->c;
    uint64_t usec = 0;
    const char *msg;
    size_t len;
    int64_t ts;

    jr->seq++;
    if (sd_journal_get_realtime_usec(jr->j, &usec) < 0)
        usec = (uint64_t)(lc_now_ns() / 1000);
    ts = (int64_t)usec * 1000;
    if (jr->skip_old) {
        if (ts < cutoff_ns) {
            lc_counter_inc(jr->m_skip[SKIP_TOO_OLD]);
            return 0;
        }
        jr->skip_old = false; /* the journal is in time order: the rest is recent */
    }
    if (get_field("MESSAGE", &msg, &len, jr) < 0) {
        lc_counter_inc(jr->m_skip[SKIP_NO_MESSAGE]);
        lc_log(LC_LOG_WARN, jr->in->conf->name, "an entry without MESSAGE was skipped (counted)");
        return 0;
    }
    while (len > 0 && msg[len - 1] == '\n')
        len--;
    if (len > (size_t)c->max_line_bytes || !lc_journal_utf8_ok(msg, len)) {
        size_t bad = 0;
        bool cut = false;
        size_t n = lc_journal_utf8_fix(msg, len, jr->line, (size_t)c->max_line_bytes, &bad, &cut);
        if (cut)
            lc_counter_inc(jr->m_cut);
        if (bad)
            lc_counter_add(jr->m_bad_utf8, (int64_t)bad);
        lc_counter_add(jr->in->m_bytes, (int64_t)len);
        msg = jr->line;
        len = n;
    } else {
        lc_counter_add(jr->in->m_bytes, (int64_t)len);
    }
    int rc = lc_pipeline_emit_labels(jr->in, jr->src, entry_labels(jr), ts, msg, len);
    if (rc < 0) {
        jr->seq--; /* the pipeline counted and logged it; the entry is read again */
        return rc;
    }
    lc_counter_inc(jr->in->m_lines);
    return 0;
}

/* Seals what this turn read as one mark, positioned at the current entry's cursor. */
static void checkpoint(struct lc_journal *jr)
{
    char *cur = NULL;
    struct lc_pos pos = {.offset = jr->seq};

    if (sd_journal_get_cursor(jr->j, &cur) < 0 || strlen(cur) > LC_CKPT_CURSOR_MAX) {
        lc_counter_inc(jr->m_errors);
        lc_log(LC_LOG_ERROR, jr->in->conf->name, "no cursor for the entry just read");
        free(cur);
        return; /* the next turn's checkpoint covers these entries */
    }
    lc_source_checkpoint_cursor(jr->src, &pos, cur);
    free(cur);
}

static void on_work(uv_idle_t *h)
{
    struct lc_journal *jr = h->data;
    int64_t cutoff = jr->skip_old ? lc_now_ns() - jr->c->max_age_ms * LC_NS_PER_MSEC : 0;
    int64_t n = 0;

    if (jr->stopping || lc_pipeline_paused(jr->in->pipeline)) {
        uv_idle_stop(h);
        return;
    }
    while (n < jr->c->read_entries && lc_source_writable(jr->src)) {
        int rc = jr->pending ? 1 : sd_journal_next(jr->j);
        if (rc < 0) {
            lc_counter_inc(jr->m_errors);
            lc_log(LC_LOG_ERROR, jr->in->conf->name, "reading the journal: %s", strerror(-rc));
            jr->at_end = true; /* the timer retries */
            break;
        }
        if (rc == 0) {
            jr->at_end = true;
            break;
        }
        jr->pending = false;
        jr->at_end = false;
        if (read_entry(jr, cutoff) < 0) {
            /*
             * Not queued (out of memory, marks all in flight): stand on the entry
             * before it, so the checkpoint stays short of it and the next turn
             * reads it again; the timer retries.
             */
            if (sd_journal_previous(jr->j) <= 0)
                jr->pending = true; /* it is the first entry: read it again as is */
            jr->at_end = true;
            break;
        }
        n++;
    }
    if (n > 0)
        checkpoint(jr);
    if (jr->at_end || !lc_source_writable(jr->src))
        uv_idle_stop(h); /* the poll, the timer or an ack (on_writable) starts it again */
}

/* inotify says the journal changed: let sd-journal see new files, vacuumed ones, appends. */
static void on_poll(uv_poll_t *h, int status, int events)
{
    struct lc_journal *jr = h->data;

    (void)events;
    if (status < 0)
        return;
    int rc = sd_journal_process(jr->j);
    if (rc < 0) {
        lc_counter_inc(jr->m_errors);
        lc_log(LC_LOG_WARN, jr->in->conf->name, "sd_journal_process: %s", strerror(-rc));
    }
    kick(jr);
}

static void on_timer(uv_timer_t *t)
{
    struct lc_journal *jr = t->data;

    if (jr->at_end) {
        sd_journal_process(jr->j);
        kick(jr);
    }
}

static void on_src_writable(struct lc_source *s, void *arg)
{
    (void)s;
    kick(arg);
}

static int add_matches(struct lc_journal *jr)
{
    const struct lc_journal_conf *c = jr->c;
    char m[300];
    int rc = 0;

    /* one field's values are ORed by sd-journal, different fields ANDed */
    for (size_t i = 0; i < c->units.n && rc >= 0; i++) {
        snprintf(m, sizeof(m), "_SYSTEMD_UNIT=%s", c->units.v[i]);
        rc = sd_journal_add_match(jr->j, m, 0);
    }
    for (size_t i = 0; i < c->identifiers.n && rc >= 0; i++) {
        snprintf(m, sizeof(m), "SYSLOG_IDENTIFIER=%s", c->identifiers.v[i]);
        rc = sd_journal_add_match(jr->j, m, 0);
    }
    for (int p = 0; c->priority < 7 && p <= c->priority && rc >= 0; p++) {
        snprintf(m, sizeof(m), "PRIORITY=%d", p);
        rc = sd_journal_add_match(jr->j, m, 0);
    }
    return rc < 0 ? rc : 0;
}

/*
 * With matches, a stored cursor's entry may exist and simply not match (the
 * filters changed): looked up without them. Leaves the journal where it was
 * (re-seeked to the cursor with the matches back). False without matches.
 */
static bool cursor_unfiltered(struct lc_journal *jr, const char *stored)
{
    const struct lc_journal_conf *c = jr->c;
    bool there;

    if (c->units.n == 0 && c->identifiers.n == 0 && c->priority >= 7)
        return false;
    sd_journal_flush_matches(jr->j);
    there = sd_journal_seek_cursor(jr->j, stored) >= 0 && sd_journal_next(jr->j) > 0 &&
            sd_journal_test_cursor(jr->j, stored) > 0;
    if (add_matches(jr) < 0 || sd_journal_seek_cursor(jr->j, stored) < 0)
        return there;
    jr->pending = sd_journal_next(jr->j) > 0;
    return there;
}

/*
 * Puts the journal just before the first entry to read, and returns the
 * cursor that stands for "everything before it was delivered" (NULL: none).
 */
static char *position(struct lc_journal *jr, const char *stored, bool seen)
{
    const struct lc_journal_conf *c = jr->c;
    const char *name = jr->in->conf->name;
    char *cur = NULL;

    if (stored && *stored) {
        int rc = sd_journal_seek_cursor(jr->j, stored);
        if (rc >= 0)
            rc = sd_journal_next(jr->j);
        if (rc > 0 && sd_journal_test_cursor(jr->j, stored) > 0) {
            lc_logf(LC_LOG_INFO, name, NULL, "resuming after the stored cursor");
            return strdup(stored);
        }
        jr->pending = rc > 0;
        if (cursor_unfiltered(jr, stored)) {
            /* there, but outside the matches (they changed): the next matching entry is next */
            lc_logf(LC_LOG_INFO, name, NULL, "resuming after the stored cursor (matches changed)");
            return strdup(stored);
        }
        /* gone (vacuumed or rotated away): the oldest entry after it is next */
        lc_counter_inc(jr->m_resets);
        lc_loss(name,
                "the stored cursor is no longer in the journal (vacuumed?): resuming at the "
                "oldest entry after it%s; entries in between are lost (counted)",
                rc > 0 ? "" : " (none yet)");
        return strdup(stored);
    }
    if (seen || c->start_at == LC_JOURNAL_START_BEGINNING) {
        sd_journal_seek_head(jr->j);
        if (!seen && c->max_age_ms > 0) {
            int64_t from = lc_now_ns() - c->max_age_ms * LC_NS_PER_MSEC;
            jr->skip_old = true;
            if (from > 0)
                sd_journal_seek_realtime_usec(jr->j, (uint64_t)(from / 1000));
        }
        lc_logf(LC_LOG_INFO, name, NULL, "reading the journal from its %s",
                seen ? "beginning (no cursor was stored)"
                     : (c->max_age_ms > 0 ? "entries of the last max_age" : "beginning"));
        return NULL;
    }
    /* start_at end: stand on the last entry; it counts as read */
    sd_journal_seek_tail(jr->j);
    if (sd_journal_previous(jr->j) > 0 && sd_journal_get_cursor(jr->j, &cur) >= 0) {
        lc_logf(LC_LOG_INFO, name, NULL, "reading new journal entries (start_at: end)");
        return cur;
    }
    lc_logf(LC_LOG_INFO, name, NULL, "the journal is empty: reading from its first entry");
    sd_journal_seek_head(jr->j);
    return NULL;
}

#define JM(t, n, h, f)                                                                             \
    {                                                                                              \
        (t), (n), (h), offsetof(struct lc_journal, f)                                              \
    }

static const char *const skip_reasons[] = {"too_old", "no_message", NULL}; /* SKIP_* */

/* The input's series, labelled input=<name>. */
static const struct lc_metric_row journal_series[] = {
    JM(LC_COUNTER, "log_capturer_journal_cursor_resets_total",
       "Stored cursors no longer in the journal (vacuumed): resumed at the oldest entry after "
       "them.",
       m_resets),
    JM(LC_COUNTER, "log_capturer_input_truncated_lines_total", "Lines cut at max_line_bytes.",
       m_cut),
    JM(LC_COUNTER, "log_capturer_input_errors_total", "Open and read errors.", m_errors),
    JM(LC_COUNTER, "log_capturer_journal_invalid_utf8_total",
       "Bytes of MESSAGE (or of a label value) that are not UTF-8, each replaced by U+FFFD.",
       m_bad_utf8),
    JM(LC_GAUGE, "log_capturer_journal_label_sets",
       "Distinct label sets the journal input holds (max_label_sets).", m_label_sets),
    JM(LC_COUNTER, "log_capturer_journal_label_overflow_total",
       "Entries sent with the input's labels only because max_label_sets was reached.",
       m_label_overflow),
    JM(LC_COUNTER, "log_capturer_journal_label_values_cut_total", "Label values cut at 1024 bytes.",
       m_label_cut),
    {LC_COUNTER, "log_capturer_input_skipped_lines_total", "Lines skipped, by reason.",
     offsetof(struct lc_journal, m_skip), "reason", skip_reasons},
};
LC_METRIC_VALUES_FIT(struct lc_journal, m_skip, skip_reasons);

static int journal_init(struct lc_input *in)
{
    const struct lc_journal_conf *c = in->conf->conf;
    const char *name = in->conf->name;
    struct lc_journal *jr;
    size_t nl = in->conf->labels.n;

    if (c->max_line_bytes > in->agent->cfg->batch_bytes) {
        lc_log(LC_LOG_ERROR, name, "max_line_bytes must not exceed batch_bytes");
        return -EINVAL;
    }
    if (nl + c->fields.n > LC_LABELS_MAX) {
        lc_log(LC_LOG_ERROR, name, "labels and fields make more than 15 labels (Loki's limit)");
        return -EINVAL;
    }
    jr = calloc(1, sizeof(*jr));
    if (!jr)
        return -ENOMEM;
    in->ctx = jr;
    jr->in = in;
    jr->c = c;
    jr->keycap = c->fields.n * (LC_JOURNAL_LABEL_VALUE_MAX + 2) + 1;
    jr->line = malloc((size_t)c->max_line_bytes);
    jr->vals = malloc(c->fields.n * (LC_JOURNAL_LABEL_VALUE_MAX + 1) + 1);
    jr->key = malloc(jr->keycap);
    jr->kv = calloc(nl + c->fields.n + 1, sizeof(*jr->kv));
    if (!jr->line || !jr->vals || !jr->key || !jr->kv ||
        lc_journal_cache_init(&jr->cache, (size_t)c->max_label_sets) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < nl; i++)
        jr->kv[i] = in->conf->labels.v[i];
    jr->nbase = nl;
    if (nl == 0) {
        /* Loki needs one label: the input's name as job */
        struct lc_kv job = {.key = "job", .value = (char *)name};
        if (lc_labels_intern(&job, 1, &jr->base) < 0)
            return -ENOMEM;
    } else if (lc_labels_intern(jr->kv, nl, &jr->base) < 0) {
        return -ENOMEM;
    }

    lc_metric_register_rows(jr, journal_series, LC_METRIC_ROWS(journal_series), "input", name);
    return 0;
}

static int journal_start(struct lc_input *in)
{
    struct lc_journal *jr = in->ctx;
    const struct lc_journal_conf *c = jr->c;
    const char *name = in->conf->name;
    uv_loop_t *loop = in->agent->loop;
    struct lc_ckpt_entry e;
    char key[200], meta[200], val[8];
    int rc;

    rc = c->path ? sd_journal_open_directory(&jr->j, c->path, 0)
                 : sd_journal_open(&jr->j, SD_JOURNAL_LOCAL_ONLY);
    if (rc < 0) {
        lc_logf(LC_LOG_ERROR, name, NULL, "cannot open the journal %s: %s",
                c->path ? c->path : "(local)", strerror(-rc));
        return rc;
    }
    /* MESSAGE beyond max_line_bytes is cut anyway: do not decompress more */
    sd_journal_set_data_threshold(jr->j, (size_t)c->max_line_bytes + 64);
    int fd = sd_journal_get_fd(jr->j); /* before reading: sets up the inotify watches */
    rc = add_matches(jr);
    if (rc < 0) {
        lc_logf(LC_LOG_ERROR, name, NULL, "journal matches: %s", strerror(-rc));
        return rc;
    }

    snprintf(key, sizeof(key), "journal:%s", name);
    snprintf(meta, sizeof(meta), "input:%s:seen", name);
    bool seen = lc_ckpt_meta_get(in->agent->ckpt, meta, val, sizeof(val)) == 0;
    bool have;
    struct lc_pos pos = {0};

    jr->src = lc_source_new_row(in, key, c->path ? c->path : "(local journal)", jr->base,
                                (uint32_t)c->max_unacked, &e, &have);
    if (!jr->src)
        return -ENOMEM;
    char *start = position(jr, have ? e.cursor : NULL, seen);
    if (lc_source_use_cursors(jr->src, start) < 0) {
        free(start);
        return -ENOMEM;
    }
    free(start);
    lc_source_start(jr->src, &pos); /* the start position is a decision: persist it now */
    lc_source_on_writable(jr->src, on_src_writable, jr);
    lc_agent_add_source(in->agent, jr->src);
    lc_ckpt_meta_put(in->agent->ckpt, meta, "1");

    uv_idle_init(loop, &jr->work);
    uv_timer_init(loop, &jr->timer);
    jr->work.data = jr->timer.data = jr;
    jr->handles = true;
    if (fd >= 0 && uv_poll_init(loop, &jr->poll, fd) == 0) {
        jr->poll.data = jr;
        jr->have_poll = true;
        uv_poll_start(&jr->poll, UV_READABLE, on_poll);
    } else {
        lc_logf(LC_LOG_WARN, name, NULL, "no inotify for the journal (%s): polling every %lldms",
                fd < 0 ? strerror(-fd) : "uv_poll", (long long)c->poll_ms);
    }
    uv_timer_start(&jr->timer, on_timer, (uint64_t)c->poll_ms, (uint64_t)c->poll_ms);
    kick(jr);
    return 0;
}

static void journal_pause(struct lc_input *in)
{
    struct lc_journal *jr = in->ctx;

    jr->paused = true;
    if (jr->handles)
        uv_idle_stop(&jr->work);
}

static void journal_resume(struct lc_input *in)
{
    struct lc_journal *jr = in->ctx;

    jr->paused = false;
    kick(jr);
}

static bool journal_caught_up(struct lc_input *in)
{
    struct lc_journal *jr = in->ctx;

    return jr->at_end && !jr->pending;
}

static void on_closed(uv_handle_t *h)
{
    struct lc_journal *jr = h->data;

    if (--jr->closing == 0)
        lc_input_stopped(jr->in);
}

static void journal_stop(struct lc_input *in)
{
    struct lc_journal *jr = in->ctx;

    jr->stopping = true;
    if (jr->src) {
        lc_source_release(jr->src);
        jr->src = NULL;
    }
    if (!jr->handles) {
        lc_input_stopped(in);
        return;
    }
    jr->closing = jr->have_poll ? 3 : 2;
    uv_close((uv_handle_t *)&jr->work, on_closed);
    uv_close((uv_handle_t *)&jr->timer, on_closed);
    if (jr->have_poll)
        uv_close((uv_handle_t *)&jr->poll, on_closed);
}

static void journal_free(struct lc_input *in)
{
    struct lc_journal *jr = in->ctx;

    if (!jr)
        return;
    if (jr->src) /* only after a failed start */
        lc_source_free(jr->src);
    sd_journal_close(jr->j); /* NULL is a no-op */
    lc_journal_cache_free(&jr->cache);
    lc_labels_release(jr->base);
    free(jr->line);
    free(jr->vals);
    free(jr->key);
    free(jr->kv);
    free(jr);
    in->ctx = NULL;
}

const struct lc_input_plugin lc_input_journal = {
    .name = "journal",
    .description = "the systemd journal (sd-journal), positioned by cursor",
    .options = journal_options,
    .conf_size = sizeof(struct lc_journal_conf),
    .init = journal_init,
    .start = journal_start,
    .pause = journal_pause,
    .resume = journal_resume,
    .caught_up = journal_caught_up,
    .stop = journal_stop,
    .free = journal_free,
};
