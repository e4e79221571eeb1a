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
    b->recs = malloc((size_t)(recs_cap ? recs_cap : 1) * sizeof(*b->recs));
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

bool lc_batch_fits(const struct lc_batch *b, size_t len)
{
    return b->n < b->recs_cap && len <= (size_t)(b->arena_cap - b->used);
}

/* Marks grow with the number of sources feeding one batch, not with lines. */
static int add_mark(struct lc_batch *b, struct lc_source *src)
{
    if (b->nmarks == b->marks_cap) {
        uint32_t cap = b->marks_cap * 2;
        struct lc_batch_mark *m = realloc(b->marks, cap * sizeof(*m));
        if (!m)
            return -ENOMEM;
        b->marks = m;
        b->marks_cap = cap;
    }
    b->marks[b->nmarks].src = src;
    b->marks[b->nmarks].seq = lc_source_mark_ref(src);
    b->last_src = src;
    b->last_seq = b->marks[b->nmarks].seq;
    b->nmarks++;
    return 0;
}

int lc_batch_add(struct lc_batch *b, struct lc_source *src, int64_t ts_ns,
                 const struct lc_labels *labels, const char *line, size_t len)
{
    struct lc_record *r;

    if (!lc_batch_fits(b, len))
        return -ENOSPC;
    /* The source's open mark is the one its records go to; a batch refs it once. */
    if (b->last_src != src || !src->open || b->last_seq != src->tail - 1) {
        int rc = add_mark(b, src);
        if (rc)
            return rc;
    }
    r = &b->recs[b->n++];
    r->ts_ns = ts_ns;
    r->labels = labels;
    r->line_off = b->used;
    r->line_len = (uint32_t)len;
    memcpy(b->arena + b->used, line, len);
    b->used += (uint32_t)len;
    return 0;
}

void lc_batch_release_marks(struct lc_batch *b, bool ok)
{
    for (uint32_t i = 0; i < b->nmarks; i++)
        lc_source_mark_unref(b->marks[i].src, b->marks[i].seq, ok);
    b->nmarks = 0;
    b->last_src = NULL;
}
