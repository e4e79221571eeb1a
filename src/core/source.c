/* SPDX-License-Identifier: MIT */
/* source.c: a source's ring of ack marks and its committed position. */
#include "core/source.h"

#include "core/agent.h"
#include "core/labels.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct lc_mark {
    struct lc_pos pos; /* position after the mark's last record, valid once sealed */
    uint32_t refs;
    bool sealed;
    bool failed;
};

struct lc_source {
    struct lc_input *input;
    struct lc_labels *labels;       /* owned reference */
    struct lc_labels *extra_labels; /* owned: the other label set its records carry (stderr) */
    struct lc_ckpt_entry ck;        /* key, path (owned), identity, committed position */
    struct lc_mark *marks;
    /*
     * NULL, or (lc_source_use_cursors) max_marks + 1 slots of LC_CKPT_CURSOR_MAX + 1
     * bytes: each mark's position as text, then the committed one (ck.cursor).
     */
    char *cursors;
    uint32_t max_marks;
    uint64_t head; /* oldest live mark */
    uint64_t tail; /* one past the newest mark */
    bool open;     /* marks[tail - 1] takes records */
    bool released;
    bool stuck; /* a failed mark: commit nothing more this run */
    bool dirty; /* committed moved since the last lc_ckpt_put */
    /* Called when acks free a slot of a full ring (the input may read on); never once released. */
    void (*on_writable)(struct lc_source *s, void *arg);
    void *on_writable_arg;
    /* bytes (line + record) of its records in batches not yet done, all outputs */
    int64_t pending_bytes;
    bool forget;          /* on free, delete the checkpoint row instead of writing it */
    struct lc_ckpt *ckpt; /* where commits go (set by lc_agent_add_source) */
    struct lc_source *prev, *next, **list; /* the agent's list of live sources */
};

struct lc_source *lc_source_new(struct lc_input *in, const char *key, const char *path,
                                struct lc_labels *labels, const struct lc_pos *start,
                                uint32_t max_marks)
{
    struct lc_source *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->max_marks = max_marks ? max_marks : 64;
    s->marks = calloc(s->max_marks, sizeof(*s->marks));
    s->ck.key = strdup(key);
    s->ck.path = strdup(path ? path : "");
    if (!s->marks || !s->ck.key || !s->ck.path) {
        lc_source_free(s);
        return NULL;
    }
    s->input = in;
    s->labels = lc_labels_ref(labels);
    if (start)
        s->ck.pos = *start;
    return s;
}

int lc_source_lookup(struct lc_input *in, const char *key, struct lc_ckpt_entry *row)
{
    if (!in || !in->agent || !in->agent->ckpt)
        return -ENOENT;
    return lc_ckpt_get(in->agent->ckpt, key, row) == 0 ? 0 : -ENOENT;
}

struct lc_source *lc_source_new_row(struct lc_input *in, const char *key, const char *path,
                                    struct lc_labels *labels, uint32_t max_marks,
                                    struct lc_ckpt_entry *row, bool *found)
{
    *found = lc_source_lookup(in, key, row) == 0;
    return lc_source_new(in, key, path, labels, NULL, max_marks);
}

void lc_source_start(struct lc_source *s, const struct lc_pos *pos)
{
    s->ck.pos = *pos;
    s->dirty = true;
}

void lc_source_set_identity(struct lc_source *s, uint64_t dev, uint64_t ino, uint64_t fp_hash,
                            uint32_t fp_len)
{
    s->ck.dev = dev;
    s->ck.ino = ino;
    lc_source_set_fingerprint(s, fp_hash, fp_len);
}

void lc_source_set_fingerprint(struct lc_source *s, uint64_t fp_hash, uint32_t fp_len)
{
    s->ck.fp_hash = fp_hash;
    s->ck.fp_len = fp_len;
}

void lc_source_set_forget(struct lc_source *s, bool forget)
{
    s->forget = forget;
}

void lc_source_on_writable(struct lc_source *s, void (*fn)(struct lc_source *s, void *arg),
                           void *arg)
{
    s->on_writable = fn;
    s->on_writable_arg = arg;
}

struct lc_labels *lc_source_labels(const struct lc_source *s)
{
    return s->labels;
}

struct lc_labels *lc_source_extra_labels(const struct lc_source *s)
{
    return s->extra_labels;
}

void lc_source_set_labels(struct lc_source *s, struct lc_labels *labels)
{
    lc_labels_release(s->labels);
    s->labels = labels;
}

void lc_source_set_extra_labels(struct lc_source *s, struct lc_labels *labels)
{
    lc_labels_release(s->extra_labels);
    s->extra_labels = labels;
}

const struct lc_pos *lc_source_committed(const struct lc_source *s)
{
    return &s->ck.pos;
}

const char *lc_source_committed_cursor(const struct lc_source *s)
{
    return s->ck.cursor;
}

bool lc_source_stuck(const struct lc_source *s)
{
    return s->stuck;
}

bool lc_source_unsaved(const struct lc_source *s)
{
    return s->dirty;
}

uint32_t lc_source_marks(const struct lc_source *s)
{
    return (uint32_t)(s->tail - s->head);
}

int64_t lc_source_pending_bytes(const struct lc_source *s)
{
    return s->pending_bytes;
}

struct lc_input *lc_source_input(const struct lc_source *s)
{
    return s->input;
}

void lc_source_link(struct lc_source *s, struct lc_source **list, struct lc_ckpt *ckpt)
{
    s->ckpt = ckpt;
    s->list = list;
    s->prev = NULL;
    s->next = *list;
    if (*list)
        (*list)->prev = s;
    *list = s;
}

struct lc_source *lc_source_next(const struct lc_source *s)
{
    return s->next;
}

void lc_source_persist(struct lc_source *s)
{
    if (!s->ckpt || !s->dirty)
        return;
    s->ck.updated_ns = 0;
    if (lc_ckpt_put(s->ckpt, &s->ck) == 0)
        s->dirty = false;
}

void lc_source_free(struct lc_source *s)
{
    if (!s)
        return;
    /* shutdown: its batches are not coming back */
    if (s->pending_bytes > 0 && s->input && s->input->pipeline)
        lc_pipeline_source_busy(s->input->pipeline, false);
    if (s->ckpt && s->forget)
        lc_ckpt_del(s->ckpt, s->ck.key);
    else
        lc_source_persist(s);
    if (s->list) {
        if (s->prev)
            s->prev->next = s->next;
        else
            *s->list = s->next;
        if (s->next)
            s->next->prev = s->prev;
    }
    lc_labels_release(s->labels);
    lc_labels_release(s->extra_labels);
    free((char *)s->ck.key);
    free((char *)s->ck.path);
    free(s->marks);
    free(s->cursors);
    free(s);
}

static struct lc_mark *mark_at(struct lc_source *s, uint64_t seq)
{
    return &s->marks[seq % s->max_marks];
}

#define CURSOR_SLOT (LC_CKPT_CURSOR_MAX + 1)

/* Mark seq's text slot, or the committed one (seq UINT64_MAX); NULL without cursors. */
static char *cursor_at(struct lc_source *s, uint64_t seq)
{
    if (!s->cursors)
        return NULL;
    return s->cursors + (seq == UINT64_MAX ? s->max_marks : seq % s->max_marks) * CURSOR_SLOT;
}

/* Copies text (cut at LC_CKPT_CURSOR_MAX) into a slot; the two never overlap. */
static void cursor_set(char *slot, const char *text)
{
    if (!slot)
        return;
    size_t n = text ? strnlen(text, LC_CKPT_CURSOR_MAX) : 0;
    memmove(slot, text ? text : "", n);
    slot[n] = '\0';
}

int lc_source_use_cursors(struct lc_source *s, const char *start)
{
    s->cursors = calloc((size_t)s->max_marks + 1, CURSOR_SLOT);
    if (!s->cursors)
        return -ENOMEM;
    cursor_set(cursor_at(s, UINT64_MAX), start);
    s->ck.cursor = cursor_at(s, UINT64_MAX);
    return 0;
}

bool lc_source_writable(const struct lc_source *s)
{
    return s->open || s->tail - s->head < s->max_marks;
}

bool lc_source_over_share(const struct lc_source *s)
{
    const struct lc_pipeline *p = s->input ? s->input->pipeline : NULL;

    if (!p || s->pending_bytes <= 0)
        return false;
    return s->pending_bytes >= lc_pipeline_source_share(p);
}

void lc_source_pending(struct lc_source *s, int64_t n)
{
    struct lc_pipeline *p = s->input ? s->input->pipeline : NULL;
    bool was_over = n < 0 && lc_source_over_share(s);

    if (p && s->pending_bytes <= 0 && s->pending_bytes + n > 0)
        lc_pipeline_source_busy(p, true);
    else if (p && s->pending_bytes > 0 && s->pending_bytes + n <= 0)
        lc_pipeline_source_busy(p, false);
    s->pending_bytes += n;
    if (was_over && !s->released && s->on_writable && !lc_source_over_share(s) &&
        lc_source_writable(s))
        s->on_writable(s, s->on_writable_arg);
}

bool lc_source_drained(const struct lc_source *s)
{
    return s->head == s->tail;
}

/* Moves the committed position over every leading mark that is sealed and unreferenced. */
static void advance(struct lc_source *s)
{
    while (s->head < s->tail) {
        struct lc_mark *m = mark_at(s, s->head);
        if (!m->sealed || m->refs > 0)
            break;
        if (m->failed)
            s->stuck = true;
        if (!s->stuck) {
            s->ck.pos = m->pos;
            cursor_set(cursor_at(s, UINT64_MAX), cursor_at(s, s->head));
            s->dirty = true;
        }
        s->head++;
    }
}

static uint64_t open_mark(struct lc_source *s)
{
    if (!s->open) {
        struct lc_mark *m = mark_at(s, s->tail);
        memset(m, 0, sizeof(*m));
        s->tail++;
        s->open = true;
    }
    return s->tail - 1;
}

void lc_source_checkpoint(struct lc_source *s, const struct lc_pos *pos)
{
    lc_source_checkpoint_cursor(s, pos, NULL);
}

void lc_source_checkpoint_cursor(struct lc_source *s, const struct lc_pos *pos, const char *cursor)
{
    if (!s->open) {
        if (s->tail - s->head >= s->max_marks) {
            /* No slot: fold the position into the newest sealed mark, which
             * is still waiting, so it is committed together with it. */
            mark_at(s, s->tail - 1)->pos = *pos;
            cursor_set(cursor_at(s, s->tail - 1), cursor);
            return;
        }
        if (s->head == s->tail) {
            /* Nothing in flight: the position is committed at once. */
            s->ck.pos = *pos;
            cursor_set(cursor_at(s, UINT64_MAX), cursor);
            s->dirty = true;
            return;
        }
        open_mark(s);
    }
    struct lc_mark *m = mark_at(s, s->tail - 1);
    m->pos = *pos;
    cursor_set(cursor_at(s, s->tail - 1), cursor);
    m->sealed = true;
    s->open = false;
    advance(s);
}

bool lc_source_try_seal(struct lc_source *s, const struct lc_pos *pos)
{
    if (!s->open || s->tail - s->head >= s->max_marks)
        return false;
    lc_source_checkpoint(s, pos);
    return true;
}

void lc_source_seal(struct lc_source *s, const struct lc_pos *pos)
{
    if (s->open)
        lc_source_checkpoint(s, pos);
}

void lc_source_fold_newest(struct lc_source *s)
{
    if (lc_source_writable(s))
        return;
    /* full: tail > head, and the newest mark is sealed (s->open is false) */
    mark_at(s, s->tail - 1)->sealed = false;
    s->open = true;
}

int lc_source_mark_ref(struct lc_source *s, uint64_t *seq)
{
    if (!lc_source_writable(s))
        return -ENOBUFS;
    *seq = open_mark(s);
    mark_at(s, *seq)->refs++;
    return 0;
}

void lc_source_mark_unref(struct lc_source *s, uint64_t seq, bool ok)
{
    struct lc_mark *m = mark_at(s, seq);
    bool was_full = !lc_source_writable(s);

    if (!ok)
        m->failed = true;
    m->refs--;
    advance(s);
    if (was_full && !s->released && s->on_writable && lc_source_writable(s))
        s->on_writable(s, s->on_writable_arg);
    if (s->released && s->head == s->tail)
        lc_source_free(s);
}

bool lc_source_mark_is_open(const struct lc_source *s, uint64_t seq)
{
    return s->open && seq == s->tail - 1;
}

void lc_source_release(struct lc_source *s)
{
    if (!s)
        return;
    /* An open mark has no more records coming: seal it where it stands. */
    if (s->open) {
        struct lc_mark *m = mark_at(s, s->tail - 1);
        bool prev = s->tail - 1 > s->head;
        m->pos = prev ? mark_at(s, s->tail - 2)->pos : s->ck.pos;
        cursor_set(cursor_at(s, s->tail - 1), cursor_at(s, prev ? s->tail - 2 : UINT64_MAX));
        m->sealed = true;
        m->failed = true; /* its records' end position is unknown: never commit past them */
        s->open = false;
        advance(s);
    }
    s->released = true;
    if (s->head == s->tail)
        lc_source_free(s);
}

/* token: 0 nothing to do (the input's mark is open), 1 a mark may open, 2 the newest reopened. */
int lc_source_late_begin(struct lc_source *s)
{
    if (s->open)
        return 0;
    if (s->tail - s->head < s->max_marks || s->head == s->tail)
        return 1;
    s->open = true; /* the newest mark, sealed at its position, takes the records too */
    return 2;
}

void lc_source_late_end(struct lc_source *s, int token)
{
    struct lc_mark *m;

    if (token == 0 || !s->open)
        return;
    m = mark_at(s, s->tail - 1);
    if (token == 1) {
        m->pos = s->tail - 1 > s->head ? mark_at(s, s->tail - 2)->pos : s->ck.pos;
        m->sealed = true;
    }
    s->open = false;
    advance(s);
}
