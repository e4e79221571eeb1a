/* SPDX-License-Identifier: MIT */
/* test_source.c: ack marks and the committed position of a source. */
#include "core/agent.h"
#include "core/batch.h"
#include "core/ckpt.h"
#include "core/labels.h"
#include "core/source.h"
#include "lc_alloc_fail.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
        assert_int_equal(lc_batch_add(b, s, i, lc_source_labels(s), "x", 1), 0);
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
    assert_int_equal(lc_source_committed(s)->offset, 10); /* nothing acked yet */
    lc_batch_release_marks(b2, true);
    /* b1 still in flight: no gap may be committed */
    assert_int_equal(lc_source_committed(s)->offset, 10);
    lc_batch_release_marks(b1, true);
    assert_int_equal(lc_source_committed(s)->offset, 200);
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
    assert_int_equal(lc_source_committed(s)->offset, 0);
    lc_batch_release_marks(b2, true);
    assert_int_equal(lc_source_committed(s)->offset, 50);
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
    /* never past a batch that was not handled */
    assert_int_equal(lc_source_committed(s)->offset, 0);
    assert_true(lc_source_stuck(s));
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
    assert_int_equal(lc_source_committed(s)->offset, 4096);
    assert_true(lc_source_unsaved(s));
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

    lc_source_on_writable(s, count_writable, &woken);

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
    assert_int_equal(lc_source_committed(s)->offset, 45);
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
    assert_string_equal(lc_source_committed_cursor(s), "c0");
    assert_int_equal(lc_batch_add(b1, s, 1, l, "a", 1), 0);
    lc_source_checkpoint_cursor(s, &p, "c1");
    assert_int_equal(lc_batch_add(b2, s, 2, l, "b", 1), 0);
    lc_source_checkpoint_cursor(s, &p, "c2");
    assert_false(lc_source_writable(s));
    lc_source_checkpoint_cursor(s, &p, "c3"); /* skipped entries: folds into c2's mark */
    assert_string_equal(lc_source_committed_cursor(s), "c0"); /* nothing acked */
    lc_batch_release_marks(b1, true);
    assert_string_equal(lc_source_committed_cursor(s), "c1");
    lc_batch_release_marks(b2, true);
    assert_string_equal(lc_source_committed_cursor(s), "c3");
    lc_source_checkpoint_cursor(s, &p, "c4"); /* nothing in flight: at once */
    assert_string_equal(lc_source_committed_cursor(s), "c4");
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

/* The ring guards itself: a full ring refuses a new mark instead of overwriting a live one. */
static void test_full_ring_refuses_a_mark(void **state)
{
    (void)state;
    struct lc_labels *l = labels();
    struct lc_source *s = lc_source_new(NULL, "k", "/p", l, NULL, 2);
    struct lc_batch *b[2] = {lc_batch_new(1024, 64), lc_batch_new(1024, 64)};
    struct lc_batch *extra = lc_batch_new(1024, 64);
    uint64_t seq = 77;

    chunk(s, b[0], 1, 10);
    chunk(s, b[1], 1, 20);
    assert_false(lc_source_writable(s));
    /* a caller that skips lc_source_writable() is refused, and nothing changes */
    assert_int_equal(lc_source_mark_ref(s, &seq), -ENOBUFS);
    assert_int_equal(seq, 77);
    assert_int_equal(lc_batch_reserve(extra, s, 1), -ENOBUFS);
    assert_int_equal(lc_batch_add(extra, s, 3, l, "y", 1), -ENOBUFS);
    assert_int_equal(extra->n, 0);
    assert_int_equal(lc_source_marks(s), 2);
    /* the oldest mark is still live: acking the newest commits nothing */
    lc_batch_release_marks(b[1], true);
    assert_int_equal(lc_source_committed(s)->offset, 0);
    lc_batch_release_marks(b[0], true);
    assert_int_equal(lc_source_committed(s)->offset, 20);
    assert_int_equal(lc_source_mark_ref(s, &seq), 0); /* a slot again */
    lc_source_mark_unref(s, seq, true);
    for (int i = 0; i < 2; i++)
        lc_batch_free(b[i]);
    lc_batch_free(extra);
    lc_source_free(s);
    lc_labels_release(l);
}

/*
 * A tailed file keeps reading with every mark in flight: the read joins the
 * newest mark, whose position then commits only once every batch holding it
 * (the old records and the new) is done.
 */
static void test_fold_newest_when_full(void **state)
{
    (void)state;
    struct lc_labels *l = labels();
    struct lc_source *s = lc_source_new(NULL, "k", "/p", l, NULL, 2);
    struct lc_batch *b[3] = {lc_batch_new(1024, 64), lc_batch_new(1024, 64),
                             lc_batch_new(1024, 64)};

    chunk(s, b[0], 1, 10);
    chunk(s, b[1], 1, 20);
    assert_false(lc_source_writable(s));
    lc_source_fold_newest(s);
    assert_true(lc_source_writable(s));
    chunk(s, b[2], 2, 30); /* into the second mark: no third slot was taken */
    assert_int_equal(lc_source_marks(s), 2);
    lc_batch_release_marks(b[0], true);
    assert_int_equal(lc_source_committed(s)->offset, 10);
    lc_batch_release_marks(b[1], true);
    /* the folded records are still in flight */
    assert_int_equal(lc_source_committed(s)->offset, 10);
    lc_batch_release_marks(b[2], true);
    assert_int_equal(lc_source_committed(s)->offset, 30);
    assert_true(lc_source_drained(s));
    lc_source_fold_newest(s); /* a free slot: nothing to fold */
    assert_true(lc_source_drained(s));
    for (int i = 0; i < 3; i++)
        lc_batch_free(b[i]);
    lc_source_free(s);
    lc_labels_release(l);
}

/* try_seal seals only while a slot stays free after it, so a record can always follow. */
static void test_try_seal_keeps_a_slot(void **state)
{
    (void)state;
    struct lc_labels *l = labels();
    struct lc_source *s = lc_source_new(NULL, "k", "/p", l, NULL, 2);
    struct lc_batch *b = lc_batch_new(1024, 64);
    struct lc_pos p = at(10);

    assert_false(lc_source_try_seal(s, &p));               /* no open mark */
    chunk(s, b, 1, 10);                                    /* mark 1 sealed */
    assert_int_equal(lc_batch_add(b, s, 2, l, "x", 1), 0); /* mark 2 open: the last slot */
    p = at(20);
    assert_false(lc_source_try_seal(s, &p));
    assert_true(lc_source_writable(s)); /* the open mark takes more */
    lc_batch_release_marks(b, true);
    assert_int_equal(lc_source_committed(s)->offset, 10);
    assert_true(lc_source_try_seal(s, &p));
    assert_int_equal(lc_source_committed(s)->offset, 20);
    lc_batch_free(b);
    lc_source_free(s);
    lc_labels_release(l);
}

/* lc_source_seal seals an open mark, even in the last slot, and does nothing without one. */
static void test_seal_only_an_open_mark(void **state)
{
    (void)state;
    struct lc_labels *l = labels();
    struct lc_source *s = lc_source_new(NULL, "k", "/p", l, NULL, 2);
    struct lc_batch *b = lc_batch_new(1024, 64);
    struct lc_pos p = at(10);

    lc_source_seal(s, &p); /* no open mark: not even an empty one (checkpoint would commit) */
    assert_int_equal(lc_source_committed(s)->offset, 0);
    assert_int_equal(lc_source_marks(s), 0);
    chunk(s, b, 1, 10);                                    /* mark 1 sealed */
    assert_int_equal(lc_batch_add(b, s, 2, l, "x", 1), 0); /* mark 2 open: the last slot */
    p = at(20);
    assert_false(lc_source_try_seal(s, &p));
    lc_source_seal(s, &p);
    assert_false(lc_source_writable(s)); /* sealed in the last slot: the ring is full */
    assert_int_equal(lc_source_marks(s), 2);
    lc_batch_release_marks(b, true);
    assert_int_equal(lc_source_committed(s)->offset, 20);
    lc_batch_free(b);
    lc_source_free(s);
    lc_labels_release(l);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/*
 * lc_source_new_row finds the row an input resumes from (the input never asks
 * the store), the start position and identity reach the store, and a
 * forgotten source deletes its row when freed.
 */
static void test_row_lookup_start_and_forget(void **state)
{
    (void)state;
    const char *base = getenv("LC_TEST_TMP");
    char root[1024], dir[1100], err[256];
    struct lc_ckpt *c = NULL;
    struct lc_agent a = {0};
    struct lc_input in = {.agent = &a};
    struct lc_ckpt_entry row = {
        .key = "file:t:1", .path = "/p", .dev = 3, .ino = 4, .pos = {.offset = 77}};
    struct lc_labels *l = labels();
    struct lc_source *s, *s2;
    bool found = true;

    if (!base || !*base || (mkdir(base, 0700) != 0 && errno != EEXIST))
        base = "/tmp";
    snprintf(root, sizeof(root), "%s/source-XXXXXX", base);
    assert_non_null(mkdtemp(root));
    snprintf(dir, sizeof(dir), "%s/state", root);
    assert_int_equal(lc_ckpt_open(&c, dir, err, sizeof(err)), 0);
    assert_int_equal(lc_ckpt_put(c, &row), 0);
    a.ckpt = c;

    assert_int_equal(lc_source_lookup(NULL, "file:t:1", &row), -ENOENT);
    assert_int_equal(lc_source_lookup(&in, "file:t:2", &row), -ENOENT);
    memset(&row, 0, sizeof(row));
    s = lc_source_new_row(&in, "file:t:1", "/p", l, 4, &row, &found);
    assert_non_null(s);
    assert_true(found);
    assert_int_equal(row.pos.offset, 77);
    assert_int_equal(row.ino, 4);
    assert_int_equal(lc_source_committed(s)->offset, 0); /* the input decides where to start */
    assert_false(lc_source_unsaved(s));
    struct lc_pos p = at(70);
    lc_source_start(s, &p);
    assert_true(lc_source_unsaved(s)); /* a start is written even if nothing is read */
    lc_source_set_identity(s, 5, 6, 99, 16);
    lc_agent_add_source(&a, s);
    assert_ptr_equal(a.sources, s);
    lc_source_persist(s);
    assert_false(lc_source_unsaved(s));
    assert_int_equal(lc_ckpt_get(c, "file:t:1", &row), 0);
    assert_int_equal(row.pos.offset, 70);
    assert_int_equal(row.dev, 5);
    assert_int_equal(row.ino, 6);
    assert_int_equal(row.fp_hash, 99);
    assert_int_equal(row.fp_len, 16);

    s2 = lc_source_new_row(&in, "file:t:2", "/q", l, 4, &row, &found);
    assert_non_null(s2);
    assert_false(found);
    lc_agent_add_source(&a, s2);
    assert_ptr_equal(lc_source_next(s2), s);
    lc_source_release(s2); /* nothing moved: no row written */
    assert_int_equal(lc_ckpt_get(c, "file:t:2", &row), -ENOENT);
    lc_source_set_forget(s, true);
    lc_source_release(s); /* drained: freed now, and its row goes */
    assert_int_equal(lc_ckpt_get(c, "file:t:1", &row), -ENOENT);
    assert_null(a.sources);

    lc_ckpt_free(c);
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    lc_labels_release(l);
}

/* The label setters take over the caller's reference and release the one held. */
static void test_label_setters(void **state)
{
    (void)state;
    struct lc_labels *l = labels(), *l2 = NULL, *l3 = NULL;
    struct lc_kv kv2 = {"job", "u"}, kv3 = {"job", "v"};
    size_t live;

    assert_int_equal(lc_labels_intern(&kv2, 1, &l2), 0);
    assert_int_equal(lc_labels_intern(&kv3, 1, &l3), 0);
    live = lc_labels_live();
    struct lc_source *s = lc_source_new(NULL, "k", "/p", l, NULL, 2);
    assert_ptr_equal(lc_source_labels(s), l);
    assert_null(lc_source_extra_labels(s));
    lc_source_set_extra_labels(s, l2); /* s owns l2's only reference now */
    assert_ptr_equal(lc_source_extra_labels(s), l2);
    lc_source_set_labels(s, l3);
    lc_source_set_extra_labels(s, NULL); /* l2 released: gone */
    assert_int_equal(lc_labels_live(), live - 1);
    assert_ptr_equal(lc_source_labels(s), l3);
    lc_source_free(s); /* l3 goes with it; l keeps the test's reference */
    assert_int_equal(lc_labels_live(), live - 2);
    lc_labels_release(l);
}

/* A batch sealed early holds (and costs) what it carries; a full one keeps its capacity. */
static void test_batch_trim_and_cost(void **state)
{
    (void)state;
    struct lc_labels *l = labels();
    struct lc_source *s = lc_source_new(NULL, "k", "/p", l, NULL, 8);
    struct lc_batch *small = lc_batch_new(1 << 20, 4096), *full = lc_batch_new(64, 4);

    assert_int_equal(lc_batch_cost(small), (1 << 20) + 4096 * (int64_t)sizeof(struct lc_record));
    chunk(s, small, 3, 3);
    lc_batch_trim(small);
    assert_int_equal(lc_batch_cost(small), 3 + 3 * (int64_t)sizeof(struct lc_record));
    assert_false(lc_batch_whole(small, 1 << 20, 4096));
    assert_memory_equal(lc_batch_line(small, &small->recs[2]), "x", 1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(lc_batch_add(full, s, i, l, "0123456789abcdef", 16), 0);
    lc_batch_trim(full);
    assert_true(lc_batch_whole(full, 64, 4));
    assert_int_equal(lc_batch_cost(full), 64 + 4 * (int64_t)sizeof(struct lc_record));
    lc_batch_release_marks(small, true);
    lc_batch_release_marks(full, true);
    lc_batch_free(small);
    lc_batch_free(full);
    lc_source_free(s);
    lc_labels_release(l);
}

/*
 * Allocation failure injection (lc_alloc_fail.h): ten sources feed one batch
 * (its mark array grows), which is trimmed and acked. For every N, the N-th
 * allocation fails: a source that cannot be created is NULL, a record that
 * cannot be added is refused with nothing half added, and only what was
 * added is committed; nothing leaks.
 */
static void test_alloc_failures_source_and_batch(void **state)
{
    (void)state;
    struct lc_labels *l = labels();
    long n;

    for (n = 1; n < 10000; n++) {
        long live0 = lc_alloc_live();
        struct lc_source *src[10];
        int added[10] = {0};
        uint32_t nadded = 0;
        struct lc_batch *b;
        bool failed;

        lc_alloc_fail_at(n);
        b = lc_batch_new(256, 16);
        for (int i = 0; i < 10; i++) {
            char key[16];
            snprintf(key, sizeof(key), "k%d", i);
            src[i] = lc_source_new(NULL, key, "/p", l, NULL, 4);
            if (!src[i] || !b)
                continue;
            int rc = lc_batch_add(b, src[i], i, l, key, strlen(key));
            if (rc) {
                assert_int_equal(rc, -ENOMEM);
                continue; /* stopped before the line: no checkpoint past it */
            }
            added[i] = 1;
            nadded++;
            struct lc_pos p = at((i + 1) * 10);
            lc_source_checkpoint(src[i], &p);
        }
        if (b)
            lc_batch_trim(b);
        lc_alloc_fail_at(0);
        failed = lc_alloc_failed();
        if (b) {
            assert_int_equal(b->n, nadded);
            assert_int_equal(b->nmarks, nadded);
            for (uint32_t r = 0, i = 0; r < b->n; r++, i++) {
                while (!added[i])
                    i++;
                assert_int_equal(b->recs[r].ts_ns, i);
                assert_memory_equal(lc_batch_line(b, &b->recs[r]), "k", 1);
            }
            lc_batch_release_marks(b, true);
        }
        for (int i = 0; i < 10; i++) {
            if (!src[i])
                continue;
            assert_int_equal(lc_source_committed(src[i])->offset, added[i] ? (i + 1) * 10 : 0);
            assert_true(lc_source_drained(src[i]));
            lc_source_free(src[i]);
        }
        lc_batch_free(b);
        assert_int_equal(lc_alloc_live(), live0);
        if (!failed)
            break;
    }
    print_message("# %ld allocations failed in turn\n", n - 1);
    assert_true(n > 20); /* sources, the batch, and its marks growing */
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
        cmocka_unit_test(test_full_ring_refuses_a_mark),
        cmocka_unit_test(test_fold_newest_when_full),
        cmocka_unit_test(test_try_seal_keeps_a_slot),
        cmocka_unit_test(test_seal_only_an_open_mark),
        cmocka_unit_test(test_row_lookup_start_and_forget),
        cmocka_unit_test(test_label_setters),
        cmocka_unit_test(test_batch_trim_and_cost),
        cmocka_unit_test(test_alloc_failures_source_and_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
