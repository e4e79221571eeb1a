/* SPDX-License-Identifier: MIT */
/* split_join.c: a container's split lines, joined per stream across rotations (split_join.h). */
#include "input/split_join.h"

#include "core/labels.h"

#include <stdlib.h>

struct lc_split_join *lc_split_join_new(size_t max_line_bytes)
{
    struct lc_split_join *j = calloc(1, sizeof(*j));

    if (!j)
        return NULL;
    j->refs = 1;
    j->max_line_bytes = max_line_bytes;
    return j;
}

void lc_split_join_unref(struct lc_split_join *j)
{
    if (!j || --j->refs > 0)
        return;
    free(j->buf[0]);
    free(j->buf[1]);
    free(j);
}

bool lc_split_join_pending(const struct lc_split_join *j)
{
    return j->join[0].pending || j->join[1].pending;
}

bool lc_split_join_feed(struct lc_split_join *j, struct lc_tail *t,
                        struct lc_labels *const labels[2], const struct lc_docker_line *dl,
                        int64_t now)
{
    int s = dl->stream == LC_STREAM_STDERR ? 1 : 0;
    const char *out;
    size_t olen;
    int64_t ts;

    if (!j->buf[s] && dl->partial) {
        j->buf[s] = malloc(j->max_line_bytes);
        if (!j->buf[s])
            return !lc_split_join_pending(j);
        lc_docker_joiner_init(&j->join[s], j->buf[s], j->max_line_bytes);
    }
    if (j->buf[s]) {
        j->fed_ns = now;
        if (lc_docker_join(&j->join[s], dl, &out, &olen, &ts) != 1)
            return false; /* a split line is being joined: no position yet */
        if (j->join[s].dropped)
            lc_counter_inc(t->fi->m_cut);
    } else {
        out = dl->log;
        olen = dl->log_len;
        ts = dl->ts_ns;
        if (olen > j->max_line_bytes) {
            olen = j->max_line_bytes;
            lc_counter_inc(t->fi->m_cut);
        }
    }
    if (lc_tail_emit(t, labels[s], ts, out, olen) != 0)
        return false; /* t->emit_failed: the tailer goes back before this line */
    return !lc_split_join_pending(j);
}

void lc_split_join_idle(struct lc_split_join *j, struct lc_tail *t,
                        struct lc_labels *const labels[2], int64_t wait_ns)
{
    struct lc_pos pos;
    const char *line;
    size_t len;
    int64_t ts;

    if (!j || t->rotated || !lc_split_join_pending(j) || t->partial.len > 0 ||
        lc_now_ns() - j->fed_ns < wait_ns || !lc_source_writable(t->src))
        return;
    for (int s = 0; s < 2; s++) {
        if (lc_docker_joiner_flush(&j->join[s], &line, &len, &ts) != 1)
            continue;
        if (j->join[s].dropped)
            lc_counter_inc(t->fi->m_cut);
        if (lc_tail_emit(t, labels[s], ts, line, len) != 0) {
            lc_tail_retry(t); /* the joined line is read again, from its first part */
            return;
        }
    }
    pos.offset = t->offset;
    pos.ts_ns = t->last_ts;
    pos.ts_seq = t->last_ts_seq;
    lc_source_checkpoint(t->src, &pos);
}

void lc_split_join_rewind(struct lc_split_join *j)
{
    if (!j)
        return;
    lc_docker_joiner_reset(&j->join[0]);
    lc_docker_joiner_reset(&j->join[1]);
}

int lc_split_join_attach(struct lc_tail *t, struct lc_labels *out, struct lc_labels *err,
                         struct lc_labels *labels[2])
{
    int rc = lc_tail_attach(t, out);

    if (rc == 0) {
        lc_source_set_extra_labels(t->src, err); /* the source owns it from here */
        err = NULL;
        labels[0] = out;
        labels[1] = lc_source_extra_labels(t->src);
    }
    lc_labels_release(out);
    lc_labels_release(err);
    return rc;
}
