/* SPDX-License-Identifier: MIT */
/* test_source.c: ack marks and the committed position of a source. */
#include "core/batch.h"
#include "core/labels.h"
#include "core/source.h"

#include <errno.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static struct lc_labels *labels(void)
{
    struct lc_kv kv = {"job", "t"};
    struct lc_labels *l = NULL;
    assert_int_equal(lc_labels_intern(&kv, 1, &l), 0);
    return l;
}

static struct lc_pos at(int64_t off)
{
    struct lc_pos p = {.offset = off};
    return p;
}

/* Records emitted into batch b, then checkpointed at off. */
static void chunk(struct lc_source *s, struct lc_batch *b, int lines, int64_t off)
{
    for (int i = 0; i < lines; i++)
        assert_int_equal(lc_batch_add(b, s, i, s->labels, "x", 1), 0);
    struct lc_pos p = at(off);
    lc_source_checkpoint(s, &p);
}

static void test_commit_in_order(void **state)
{
    (void)state;
    struct lc_labels *l = labels();
    struct lc_pos start = at(10);
    struct lc_source *s = lc_source_new(NULL, "k", "/p", l, &start, 8);
    struct lc_batch *b1 = lc_batch_new(1024, 64), *b2 = lc_batch_new(1024, 64);

    chunk(s, b1, 3, 100);
    chunk(s, b2, 2, 200);
    assert_int_equal(s->ck.pos.offset, 10); /* nothing acked yet */
    lc_batch_release_marks(b2, true);
    assert_int_equal(s->ck.pos.offset, 10); /* b1 still in flight: no gap may be committed */
    lc_batch_release_marks(b1, true);
    assert_int_equal(s->ck.pos.offset, 200);
    assert_true(lc_source_drained(s));
    lc_batch_free(b1);
    lc_batch_free(b2);
    lc_source_free(s);
    lc_labels_release(l);
    assert_int_equal(lc_labels_live(), 0);
}

static void test_one_mark_in_two_batches(void **state)
{
    (void)state;
    struct lc_labels *l = labels();
    struct lc_source *s = lc_source_new(NULL, "k", "/p", l, NULL, 8);
    struct lc_batch *b1 = lc_batch_new(1024, 64), *b2 = lc_batch_new(1024, 64);

    /* A chunk whose lines land in two batches (the first one filled up). */
    assert_int_equal(lc_batch_add(b1, s, 1, l, "a", 1), 0);
    assert_int_equal(lc_batch_add(b2, s, 2, l, "b", 1), 0);
    struct lc_pos p = at(50);
    lc_source_checkpoint(s, &p);
    lc_batch_release_marks(b1, true);
    assert_int_equal(s->ck.pos.offset, 0);
    lc_batch_release_marks(b2, true);
    assert_int_equal(s->ck.pos.offset, 50);
    lc_batch_free(b1);
    lc_batch_free(b2);
    lc_source_free(s);
    lc_labels_release(l);
}

static void test_failed_mark_stops_commits(void **state)
{
    (void)state;
    struct lc_labels *l = labels();
    struct lc_source *s = lc_source_new(NULL, "k", "/p", l, NULL, 8);
    struct lc_batch *b1 = lc_batch_new(1024, 64), *b2 = lc_batch_new(1024, 64);

    chunk(s, b1, 1, 100);
    chunk(s, b2, 1, 200);
    lc_batch_release_marks(b1, false);
    lc_batch_release_marks(b2, true);
    assert_int_equal(s->ck.pos.offset, 0); /* never past a batch that was not handled */
    assert_true(s->stuck);
    lc_batch_free(b1);
    lc_batch_free(b2);
    lc_source_free(s);
    lc_labels_release(l);
}

static void test_skip_without_records_commits_at_once(void **state)
{
    (void)state;
    struct lc_labels *l = labels();
    struct lc_source *s = lc_source_new(NULL, "k", "/p", l, NULL, 8);
    struct lc_pos p = at(4096);

    lc_source_checkpoint(s, &p); /* e.g. old lines skipped: nothing to wait for */
    assert_int_equal(s->ck.pos.offset, 4096);
    assert_true(s->dirty);
    lc_source_free(s);
    lc_labels_release(l);
}

static void count_writable(struct lc_source *s, void *arg)
{
    (void)s;
    (*(int *)arg)++;
}

static void test_ring_limit(void **state)
{
    (void)state;
    struct lc_labels *l = labels();
    struct lc_source *s = lc_source_new(NULL, "k", "/p", l, NULL, 4);
    struct lc_batch *b[4];
    int woken = 0;

    s->on_writable = count_writable;
    s->on_writable_arg = &woken;

    for (int i = 0; i < 4; i++) {
        assert_true(lc_source_writable(s));
        b[i] = lc_batch_new(1024, 64);
        chunk(s, b[i], 1, (i + 1) * 10);
    }
    assert_false(lc_source_writable(s)); /* the input must pause this source */
    /* a checkpoint with no records folds into the newest waiting mark */
    struct lc_pos p = at(45);
    lc_source_checkpoint(s, &p);
    assert_int_equal(woken, 0);
    for (int i = 0; i < 4; i++) {
        lc_batch_release_marks(b[i], true);
        lc_batch_free(b[i]);
        /* the first ack that frees a slot wakes the input once (issue 14: it
         * waited for its next poll, idling the agent between requests) */
        assert_int_equal(woken, 1);
    }
    assert_true(lc_source_writable(s));
    assert_int_equal(s->ck.pos.offset, 45);
    lc_source_free(s);
    lc_labels_release(l);
}

/* Positions with a cursor: the text commits with its mark, never ahead of the acks. */
static void test_cursor_commits_with_acks(void **state)
{
    (void)state;
    struct lc_labels *l = labels();
    struct lc_source *s = lc_source_new(NULL, "k", "/p", l, NULL, 2);
    struct lc_batch *b1 = lc_batch_new(1024, 64), *b2 = lc_batch_new(1024, 64);
    struct lc_pos p = at(0);

    assert_int_equal(lc_source_use_cursors(s, "c0"), 0);
    assert_string_equal(s->ck.cursor, "c0");
    assert_int_equal(lc_batch_add(b1, s, 1, l, "a", 1), 0);
    lc_source_checkpoint_cursor(s, &p, "c1");
    assert_int_equal(lc_batch_add(b2, s, 2, l, "b", 1), 0);
    lc_source_checkpoint_cursor(s, &p, "c2");
    assert_false(lc_source_writable(s));
    lc_source_checkpoint_cursor(s, &p, "c3"); /* skipped entries: folds into c2's mark */
    assert_string_equal(s->ck.cursor, "c0");  /* nothing acked */
    lc_batch_release_marks(b1, true);
    assert_string_equal(s->ck.cursor, "c1");
    lc_batch_release_marks(b2, true);
    assert_string_equal(s->ck.cursor, "c3");
    lc_source_checkpoint_cursor(s, &p, "c4"); /* nothing in flight: at once */
    assert_string_equal(s->ck.cursor, "c4");
    lc_batch_free(b1);
    lc_batch_free(b2);
    lc_source_free(s);
    lc_labels_release(l);
}

static void test_release_frees_when_drained(void **state)
{
    (void)state;
    struct lc_labels *l = labels();
    struct lc_source *s = lc_source_new(NULL, "k", "/p", l, NULL, 8);
    struct lc_batch *b = lc_batch_new(1024, 64);

    chunk(s, b, 2, 30);
    lc_source_release(s); /* still referenced by b: stays alive */
    assert_int_equal(lc_labels_live(), 1);
    lc_labels_release(l);
    assert_int_equal(lc_labels_live(), 1); /* the source's reference */
    lc_batch_release_marks(b, true);       /* frees the source, then its labels */
    assert_int_equal(lc_labels_live(), 0);
    lc_batch_free(b);
}

static void test_batch_limits(void **state)
{
    (void)state;
    struct lc_labels *l = labels();
    struct lc_source *s = lc_source_new(NULL, "k", "/p", l, NULL, 8);
    struct lc_batch *b = lc_batch_new(10, 2);

    assert_int_equal(lc_batch_add(b, s, 1, l, "12345", 5), 0);
    assert_int_equal(lc_batch_add(b, s, 2, l, "123456", 6), -ENOSPC); /* arena */
    assert_int_equal(lc_batch_add(b, s, 3, l, "12345", 5), 0);
    assert_int_equal(lc_batch_add(b, s, 4, l, "", 0), -ENOSPC); /* record slots */
    assert_int_equal(b->nmarks, 1);                             /* one mark, referenced once */
    assert_memory_equal(lc_batch_line(b, &b->recs[1]), "12345", 5);
    lc_batch_release_marks(b, true);
    lc_batch_free(b);
    lc_source_free(s);
    lc_labels_release(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_in_order),
        cmocka_unit_test(test_one_mark_in_two_batches),
        cmocka_unit_test(test_failed_mark_stops_commits),
        cmocka_unit_test(test_skip_without_records_commits_at_once),
        cmocka_unit_test(test_ring_limit),
        cmocka_unit_test(test_cursor_commits_with_acks),
        cmocka_unit_test(test_release_frees_when_drained),
        cmocka_unit_test(test_batch_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
