/* SPDX-License-Identifier: MIT */
/* batch.c: batches of records: one line arena, one record array, the marks they reference. */
#include "core/batch.h"

#include "core/source.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct lc_batch *lc_batch_new(uint32_t arena_cap, uint32_t recs_cap)
{
    struct lc_batch *b = calloc(1, sizeof(*b));

    if (!b)
        return NULL;
    b->arena = malloc(arena_cap ? arena_cap : 1);
    /* zeroed: a record filled field by field (tests, replay) has no metadata */
    b->recs = calloc(recs_cap ? recs_cap : 1, sizeof(*b->recs));
    b->marks_cap = 8;
    b->marks = malloc(b->marks_cap * sizeof(*b->marks));
    if (!b->arena || !b->recs || !b->marks) {
        lc_batch_free(b);
        return NULL;
    }
    b->arena_cap = arena_cap;
    b->recs_cap = recs_cap;
    return b;
}

void lc_batch_free(struct lc_batch *b)
{
    if (!b)
        return;
    free(b->arena);
    free(b->recs);
    free(b->marks);
    free(b);
}

void lc_batch_reset(struct lc_batch *b)
{
    b->next = NULL;
    b->out = NULL;
    b->id = 0;
    b->created_ns = 0;
    b->used = 0;
    b->n = 0;
    b->nmarks = 0;
    b->last_src = NULL;
    b->last_seq = 0;
    b->attempts = 0;
    b->fate = LC_FATE_DELIVERED;
    b->priv = NULL;
    b->tenant[0] = '\0';
}

void lc_batch_set_tenant(struct lc_batch *b, const char *tenant, size_t len)
{
    if (len > LC_TENANT_MAX)
        len = LC_TENANT_MAX;
    memcpy(b->tenant, tenant, len);
    b->tenant[len] = '\0';
}

bool lc_batch_is_tenant(const struct lc_batch *b, const char *tenant, size_t len)
{
    return strlen(b->tenant) == len && memcmp(b->tenant, tenant, len) == 0;
}

bool lc_batch_fits(const struct lc_batch *b, size_t len)
{
    return b->n < b->recs_cap && len <= (size_t)(b->arena_cap - b->used);
}

/* The source's open mark is the one its records go to; a batch refs it once. */
static bool needs_mark(const struct lc_batch *b, const struct lc_source *src)
{
    return b->last_src != src || !lc_source_mark_is_open(src, b->last_seq);
}

int lc_batch_reserve(struct lc_batch *b, const struct lc_source *src, size_t len)
{
    if (!lc_batch_fits(b, len))
        return -ENOSPC;
    if (!needs_mark(b, src))
        return 0;
    if (!lc_source_writable(src))
        return -ENOBUFS;
    /* Marks grow with the number of sources feeding one batch, not with lines. */
    if (b->nmarks == b->marks_cap) {
        uint32_t cap = b->marks_cap * 2;
        struct lc_batch_mark *m = realloc(b->marks, cap * sizeof(*m));
        if (!m)
            return -ENOMEM;
        b->marks = m;
        b->marks_cap = cap;
    }
    return 0;
}

int lc_batch_add(struct lc_batch *b, struct lc_source *src, int64_t ts_ns,
                 const struct lc_labels *labels, const char *line, size_t len)
{
    return lc_batch_add_meta(b, src, ts_ns, labels, line, len, NULL, 0);
}

int lc_batch_add_meta(struct lc_batch *b, struct lc_source *src, int64_t ts_ns,
                      const struct lc_labels *labels, const char *line, size_t len,
                      const char *meta, size_t mlen)
{
    struct lc_record *r;
    int rc = lc_batch_reserve(b, src, len + mlen);

    if (rc)
        return rc;
    if (needs_mark(b, src)) {
        struct lc_batch_mark *m = &b->marks[b->nmarks];
        rc = lc_source_mark_ref(src, &m->seq);
        if (rc)
            return rc; /* not after lc_batch_reserve: it checked the ring */
        m->src = src;
        m->bytes = 0;
        b->last_src = src;
        b->last_seq = m->seq;
        b->nmarks++;
    }
    b->marks[b->nmarks - 1].bytes += (int64_t)(len + sizeof(*r));
    lc_source_pending(src, (int64_t)(len + sizeof(*r)));
    r = &b->recs[b->n++];
    r->ts_ns = ts_ns;
    r->labels = labels;
    r->line_off = b->used;
    r->line_len = (uint32_t)len;
    memcpy(b->arena + b->used, line, len);
    b->used += (uint32_t)len;
    r->meta_off = b->used;
    r->meta_len = (uint32_t)mlen;
    if (mlen) {
        memcpy(b->arena + b->used, meta, mlen);
        b->used += (uint32_t)mlen;
    }
    return 0;
}

void lc_batch_trim(struct lc_batch *b)
{
    char *a;
    struct lc_record *r;

    /* A batch filled half way in either measure was sealed full: kept whole, for reuse. */
    if (b->used >= b->arena_cap / 2 || b->n >= b->recs_cap / 2)
        return;
    a = realloc(b->arena, b->used ? b->used : 1);
    if (a) {
        b->arena = a;
        b->arena_cap = b->used;
    }
    r = realloc(b->recs, (size_t)(b->n ? b->n : 1) * sizeof(*r));
    if (r) {
        b->recs = r;
        b->recs_cap = b->n;
    }
}

bool lc_batch_whole(const struct lc_batch *b, uint32_t arena_cap, uint32_t recs_cap)
{
    return b->arena_cap == arena_cap && b->recs_cap == recs_cap;
}

int64_t lc_batch_cost(const struct lc_batch *b)
{
    return (int64_t)b->arena_cap + (int64_t)b->recs_cap * (int64_t)sizeof(struct lc_record);
}

void lc_batch_release_marks(struct lc_batch *b, bool ok)
{
    for (uint32_t i = 0; i < b->nmarks; i++) {
        lc_source_pending(b->marks[i].src, -b->marks[i].bytes); /* before: unref may free it */
        lc_source_mark_unref(b->marks[i].src, b->marks[i].seq, ok);
    }
    b->nmarks = 0;
    b->last_src = NULL;
}
