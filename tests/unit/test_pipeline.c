/* SPDX-License-Identifier: MIT */
/* test_pipeline.c: batching by size and age, backpressure at max_pending_bytes, acks. */
#include "core/batch.h"
#include "core/labels.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "core/source.h"
#include "input/file.h"
#include "lc_alloc_fail.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <stdatomic.h>

/* Outputs that hold what they are sent until the test lets it go. */
static struct lc_batch *held[128];
static int nheld;
static int npause, nresume;

static void hold_send(struct lc_output *out, struct lc_batch *b)
{
    (void)out;
    assert_true(nheld < 128);
    held[nheld++] = b;
}

static void ack_send(struct lc_output *out, struct lc_batch *b)
{
    lc_output_done(out, b, LC_FATE_DELIVERED); /* from inside send: must be deferred */
}

static int noop_init(struct lc_output *out)
{
    out->ctx = out;
    return 0;
}

static struct lc_output_plugin holding = {.name = "hold", .init = noop_init, .send = hold_send};

static void in_pause(struct lc_input *in)
{
    (void)in;
    npause++;
}

static void in_resume(struct lc_input *in)
{
    (void)in;
    nresume++;
}

static const struct lc_input_plugin test_in = {.name = "t", .pause = in_pause, .resume = in_resume};

/* One input feeding two outputs ("o0", "o1"; the tests use one or both), two sources. */
struct fixture {
    uv_loop_t loop;
    struct lc_config cfg;
    struct lc_output_conf ocf[2];
    struct lc_input_conf icf;
    struct lc_pipeline pipe;
    struct lc_output out[2];
    struct lc_output *outs[2];
    struct lc_input in;
    struct lc_labels *labels[2];
    struct lc_source *src[2];
    struct lc_metric_series *m_failed, *m_cut[2], *m_spare[2];
};

static struct fixture *setup_n(int64_t batch_bytes, int64_t max_pending, int64_t wait_ms,
                               size_t nouts)
{
    static const char *const l_in[] = {"input", NULL};
    static const char *const l_out[] = {"output", NULL};
    static struct fixture f;
    static char o0[] = "o0", o1[] = "o1";
    char *onames[2] = {o0, o1};
    struct lc_kv kv[2] = {{"job", "a"}, {"job", "b"}};

    memset(&f, 0, sizeof(f));
    nheld = npause = nresume = 0;
    uv_loop_init(&f.loop);
    f.cfg.batch_bytes = batch_bytes;
    f.cfg.batch_wait_ms = wait_ms;
    f.cfg.max_pending_bytes = max_pending;
    f.icf.name = "i";
    lc_pipeline_init(&f.pipe, &f.loop, &f.cfg);
    lc_pipeline_attach(&f.pipe, &f.in, 1, f.out, nouts, NULL);
    for (size_t i = 0; i < nouts; i++) {
        struct lc_metric_family *fam;
        f.ocf[i].name = onames[i];
        f.out[i].plugin = &holding;
        f.out[i].conf = &f.ocf[i];
        f.out[i].pipeline = &f.pipe;
        f.out[i].ctx = &f.out[i];
        uv_timer_init(&f.loop, &f.out[i].flush_timer);
        f.out[i].flush_timer.data = &f.out[i];
        fam = lc_metric_family(LC_COUNTER, "test_cut_lines_total", "x", l_out);
        f.out[i].m_cut = f.m_cut[i] = lc_metric_series(fam, onames[i]);
        atomic_store(&f.m_cut[i]->u, 0);
        fam = lc_metric_family(LC_GAUGE, "test_spare_batches", "x", l_out);
        f.out[i].m_spare = f.m_spare[i] = lc_metric_series(fam, onames[i]);
        f.outs[i] = &f.out[i];
    }
    f.in.plugin = &test_in;
    f.in.conf = &f.icf;
    f.in.pipeline = &f.pipe;
    f.in.ctx = &f.in;
    f.in.outs = f.outs;
    f.in.nouts = nouts;
    f.in.m_emit_failed = f.m_failed =
        lc_metric_series(lc_metric_family(LC_COUNTER, "test_emit_failures_total", "x", l_in), "i");
    atomic_store(&f.m_failed->u, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(lc_labels_intern(&kv[i], 1, &f.labels[i]), 0);
        f.src[i] = lc_source_new(&f.in, i ? "kb" : "ka", "/p", f.labels[i], NULL, 1024);
        assert_non_null(f.src[i]);
    }
    return &f;
}

static struct fixture *setup(int64_t batch_bytes, int64_t max_pending, int64_t wait_ms)
{
    return setup_n(batch_bytes, max_pending, wait_ms, 1);
}

static void ack_all(enum lc_batch_fate fate)
{
    for (int i = 0; i < nheld; i++)
        lc_output_done(held[i]->out, held[i], fate);
    nheld = 0;
}

static void teardown(struct fixture *f)
{
    ack_all(LC_FATE_DELIVERED);
    for (size_t i = 0; i < f->pipe.noutputs; i++) {
        if (f->out[i].open) {
            lc_batch_release_marks(f->out[i].open, true);
            lc_batch_free(f->out[i].open);
            f->out[i].open = NULL;
        }
        lc_pipeline_free_spares(&f->out[i]);
        uv_close((uv_handle_t *)&f->out[i].flush_timer, NULL);
    }
    for (int i = 0; i < 2; i++) {
        lc_source_free(f->src[i]);
        lc_labels_release(f->labels[i]);
    }
    lc_pipeline_close(&f->pipe);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(lc_labels_live(), 0);
}

static void emit_n(struct fixture *f, int n, size_t len, int64_t end_off)
{
    char line[8192];
    memset(line, 'x', sizeof(line));
    for (int i = 0; i < n; i++)
        assert_int_equal(lc_pipeline_emit(&f->in, f->src[0], i, line, len), 0);
    struct lc_pos p = {.offset = end_off};
    lc_source_checkpoint(f->src[0], &p);
}

/* The i-th record an output got across the batches it was sent, in order; NULL past the end. */
static const struct lc_record *nth(const struct lc_output *out, int i, const struct lc_batch **bp)
{
    for (int k = 0; k < nheld; k++) {
        if (held[k]->out != out)
            continue;
        if (i < (int)held[k]->n) {
            *bp = held[k];
            return &held[k]->recs[i];
        }
        i -= (int)held[k]->n;
    }
    return NULL;
}

static void test_batch_sealed_at_size(void **state)
{
    (void)state;
    struct fixture *f = setup(4096, 1 << 20, 60000);

    emit_n(f, 4, 1000, 4004); /* 4000 bytes: fits one batch */
    assert_int_equal(nheld, 0);
    emit_n(f, 1, 1000, 5005); /* does not fit: the first batch goes */
    assert_int_equal(nheld, 1);
    assert_int_equal(held[0]->n, 4);
    assert_true(f->out[0].pending_bytes > 0);
    teardown(f);
}

static void test_batch_sealed_at_age(void **state)
{
    (void)state;
    struct fixture *f = setup(1 << 20, 64 << 20, 20);

    emit_n(f, 3, 10, 33);
    assert_int_equal(nheld, 0);
    uv_run(&f->loop, UV_RUN_ONCE); /* the batch_wait timer */
    while (nheld == 0)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(nheld, 1);
    assert_int_equal(held[0]->n, 3);
    teardown(f);
}

static void test_backpressure_at_limit(void **state)
{
    (void)state;
    /* Each full 4 KiB batch costs its arena plus the 4 record slots it uses. */
    struct fixture *f = setup(4096, 16384, 60000);
    int64_t off = 0;

    for (int i = 0; i < 8 && !lc_pipeline_paused(&f->pipe); i++)
        emit_n(f, 4, 1000, off += 4000);
    assert_true(lc_pipeline_paused(&f->pipe));
    assert_int_equal(npause, 1);
    assert_true(f->out[0].pending_bytes >= 16384);
    /* Acks bring it below half the limit: inputs resume, on the next loop turn. */
    ack_all(LC_FATE_DELIVERED);
    assert_false(lc_pipeline_paused(&f->pipe));
    assert_int_equal(nresume, 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(nresume, 1);
    teardown(f);
}

/* max_pending_bytes 0 (the default): room for 3 of the output's batches, at least 8 MiB. */
static void test_backpressure_auto_limit(void **state)
{
    static const int64_t big = 4 << 20;
    const struct {
        int64_t batch, limit;
    } cases[] = {
        {256 * 1024, 8 << 20},
        {big, 3 * (big + (big / 48 + 64) * (int64_t)sizeof(struct lc_record))},
    };

    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct fixture *f = setup(cases[k].batch, 0, 60000);
        int64_t off = 0, before = 0;

        for (int i = 0; i < 1000 && !lc_pipeline_paused(&f->pipe); i++) {
            before = f->out[0].pending_bytes;
            emit_n(f, 16, 8000, off += 16 * 8000);
        }
        assert_true(lc_pipeline_paused(&f->pipe));
        assert_int_equal(npause, 1);
        assert_true(before < cases[k].limit);
        assert_true(f->out[0].pending_bytes >= cases[k].limit);
        ack_all(LC_FATE_DELIVERED);
        teardown(f);
    }
}

static int nwritable;

static void count_writable(struct lc_source *s, void *arg)
{
    (void)s;
    (void)arg;
    nwritable++;
}

/*
 * Fairness (issue 13): alone, a source has the whole budget; with another
 * source busy, one holding more than half of max_pending_bytes (at least four
 * batches) is over its share, the quiet one not; acks bring it back under and
 * call on_writable once.
 */
static void test_flooding_source_over_its_share(void **state)
{
    (void)state;
    struct fixture *f = setup(4096, 65536, 60000);
    char line[1000];
    struct lc_pos p = {.offset = 1};
    int64_t off = 0;

    memset(line, 'x', sizeof(line));
    nwritable = 0;
    lc_source_on_writable(f->src[0], count_writable, NULL);
    /* alone: never over its share */
    while (lc_source_pending_bytes(f->src[0]) < 40000)
        emit_n(f, 4, 1000, off += 4000);
    assert_int_equal(f->pipe.busy_sources, 1);
    assert_false(lc_source_over_share(f->src[0]));
    /* a quiet neighbour: the flooder holds more than half of 64 KiB, the quiet one not */
    assert_int_equal(lc_pipeline_emit(&f->in, f->src[1], 0, line, 100), 0);
    lc_source_checkpoint(f->src[1], &p);
    assert_int_equal(f->pipe.busy_sources, 2);
    assert_true(lc_source_over_share(f->src[0]));
    assert_false(lc_source_over_share(f->src[1]));
    /* the floor is four of each output's own batches: 16 KiB batches make it 64 KiB */
    f->ocf[0].batch_bytes = 16384;
    assert_false(lc_source_over_share(f->src[0]));
    f->ocf[0].batch_bytes = 0;
    assert_int_equal(nwritable, 0);
    lc_pipeline_flush(&f->pipe);
    ack_all(LC_FATE_DELIVERED);
    assert_int_equal(lc_source_pending_bytes(f->src[0]), 0);
    assert_int_equal(lc_source_pending_bytes(f->src[1]), 0);
    assert_int_equal(f->pipe.busy_sources, 0);
    assert_false(lc_source_over_share(f->src[0]));
    assert_int_equal(nwritable, 1);
    teardown(f);
}

static void test_ack_commits_position(void **state)
{
    (void)state;
    struct fixture *f = setup(4096, 1 << 20, 60000);

    emit_n(f, 2, 100, 202);
    lc_pipeline_flush(&f->pipe);
    assert_int_equal(nheld, 1);
    assert_int_equal(lc_source_committed(f->src[0])->offset, 0);
    lc_output_done(&f->out[0], held[0], LC_FATE_DELIVERED);
    nheld = 0;
    assert_int_equal(lc_source_committed(f->src[0])->offset, 202);
    assert_true(lc_pipeline_idle(&f->pipe));
    teardown(f);
}

static void test_failed_batch_not_committed(void **state)
{
    (void)state;
    struct fixture *f = setup(4096, 1 << 20, 60000);

    emit_n(f, 2, 100, 202);
    lc_pipeline_flush(&f->pipe);
    lc_output_done(&f->out[0], held[0], LC_FATE_FAILED);
    nheld = 0;
    assert_int_equal(lc_source_committed(f->src[0])->offset, 0);
    teardown(f);
}

static void test_done_inside_send_is_deferred(void **state)
{
    (void)state;
    struct fixture *f = setup(4096, 1 << 20, 60000);
    struct lc_output_plugin acking = holding;

    acking.send = ack_send;
    f->out[0].plugin = &acking;
    emit_n(f, 2, 100, 202);
    lc_pipeline_flush(&f->pipe);
    assert_int_equal(lc_source_committed(f->src[0])->offset, 0); /* not yet: deferred */
    assert_false(lc_pipeline_idle(&f->pipe));
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(lc_source_committed(f->src[0])->offset, 202);
    assert_true(lc_pipeline_idle(&f->pipe));
    f->out[0].plugin = &holding;
    teardown(f);
}

/*
 * The pipeline's guard (config keeps max_line_bytes below batch_bytes): a line
 * longer than a batch is cut at batch_bytes, counted, and its first bytes kept.
 * Without the guard the line never fits and the emit fails.
 */
static void test_line_longer_than_batch_is_cut(void **state)
{
    (void)state;
    struct fixture *f = setup(4096, 1 << 20, 60000);
    char line[5000];
    const struct lc_batch *b;
    const struct lc_record *r;

    for (size_t i = 0; i < sizeof(line); i++)
        line[i] = (char)('a' + i % 26);
    assert_int_equal(lc_pipeline_emit(&f->in, f->src[0], 1, line, sizeof(line)), 0);
    lc_pipeline_flush(&f->pipe);
    assert_int_equal(nheld, 1);
    r = nth(&f->out[0], 0, &b);
    assert_non_null(r);
    assert_int_equal(r->line_len, 4096);
    assert_memory_equal(lc_batch_line(b, r), line, 4096);
    assert_int_equal(atomic_load(&f->m_cut[0]->u), 1);
    assert_int_equal(atomic_load(&f->m_failed->u), 0);
    teardown(f);
}

/*
 * Two sources into two outputs: each output gets every line, byte for byte,
 * in order, with its source's labels; a source commits only once both
 * outputs delivered its lines, and each source commits its own position.
 */
static void test_two_sources_two_outputs(void **state)
{
    (void)state;
    struct fixture *f = setup_n(256, 1 << 20, 60000, 2);
    char line[64];
    int held_o0 = 0;

    for (int i = 0; i < 20; i++) {
        int s = i % 2;
        int len = snprintf(line, sizeof(line), "source %d line %d", s, i);
        assert_int_equal(lc_pipeline_emit(&f->in, f->src[s], 1000 + i, line, (size_t)len), 0);
        if (i % 4 >= 2) { /* a checkpoint per source every other line pair */
            struct lc_pos p = {.offset = (i + 1) * 100 + s};
            lc_source_checkpoint(f->src[s], &p);
        }
    }
    lc_pipeline_flush(&f->pipe);
    assert_true(nheld >= 4); /* 256-byte batches: several per output */
    for (int o = 0; o < 2; o++) {
        for (int i = 0; i < 20; i++) {
            const struct lc_batch *b;
            const struct lc_record *r = nth(&f->out[o], i, &b);
            int len = snprintf(line, sizeof(line), "source %d line %d", i % 2, i);
            assert_non_null(r);
            assert_int_equal(r->line_len, len);
            assert_memory_equal(lc_batch_line(b, r), line, (size_t)len);
            assert_ptr_equal(r->labels, f->labels[i % 2]);
            assert_int_equal(r->ts_ns, 1000 + i);
        }
        assert_null(nth(&f->out[o], 20, &(const struct lc_batch *){NULL}));
    }
    /* output o0 delivers: nothing commits while o1 holds the same lines */
    for (int k = 0; k < nheld; k++) {
        if (held[k]->out == &f->out[0]) {
            lc_output_done(&f->out[0], held[k], LC_FATE_DELIVERED);
            held[k] = held[--nheld];
            k--;
            held_o0++;
        }
    }
    assert_true(held_o0 >= 2);
    assert_int_equal(lc_source_committed(f->src[0])->offset, 0);
    assert_int_equal(lc_source_committed(f->src[1])->offset, 0);
    ack_all(LC_FATE_DELIVERED);
    /* line 18, source 0's last checkpoint */
    assert_int_equal(lc_source_committed(f->src[0])->offset, 1900);
    assert_int_equal(lc_source_committed(f->src[1])->offset, 2001); /* line 19, source 1's */
    teardown(f);
}

/*
 * All or nothing: a source whose mark ring is full is refused by every output
 * (-ENOBUFS), nothing is added anywhere, and the failure is counted.
 */
static void test_emit_refused_adds_nothing(void **state)
{
    (void)state;
    struct fixture *f = setup_n(4096, 1 << 20, 60000, 2);
    struct lc_source *s = lc_source_new(&f->in, "kc", "/c", f->labels[0], NULL, 1);

    assert_int_equal(lc_pipeline_emit(&f->in, s, 1, "a", 1), 0);
    struct lc_pos p = {.offset = 2};
    lc_source_checkpoint(s, &p); /* the only slot is sealed and waiting */
    assert_int_equal(lc_pipeline_emit(&f->in, s, 2, "b", 1), -ENOBUFS);
    assert_int_equal(f->out[0].open->n, 1);
    assert_int_equal(f->out[1].open->n, 1);
    assert_int_equal(atomic_load(&f->m_failed->u), 1);
    lc_pipeline_flush(&f->pipe);
    ack_all(LC_FATE_DELIVERED);
    assert_int_equal(lc_source_committed(s)->offset, 2);
    lc_source_free(s);
    teardown(f);
}

/*
 * Batches sealed by age are trimmed: they cost what they carry, so small
 * batches do not pause inputs early; done batches are reused, at most
 * LC_BATCH_SPARES kept per output.
 */
static void test_small_batches_cost_little_and_are_reused(void **state)
{
    (void)state;
    struct fixture *f = setup(1 << 20, 1 << 20, 60000);
    struct lc_batch *first;

    for (int i = 0; i < 8; i++) {
        emit_n(f, 3, 10, (i + 1) * 33);
        lc_pipeline_flush(&f->pipe); /* as the batch_wait timer does */
    }
    assert_int_equal(nheld, 8);
    /* 8 batches of 3 short lines hold 30 bytes and 3 records each, not 8 MiB */
    assert_int_equal(f->out[0].pending_bytes, 8 * (30 + 3 * (int64_t)sizeof(struct lc_record)));
    assert_false(lc_pipeline_paused(&f->pipe));
    ack_all(LC_FATE_DELIVERED);
    assert_int_equal(f->out[0].pending_bytes, 0);
    assert_int_equal(f->out[0].nspare, 0); /* trimmed batches are freed, not kept */
    /* full batches are kept for reuse, at most LC_BATCH_SPARES */
    struct fixture *g = f;
    g->cfg.batch_bytes = 4096;
    for (int i = 0; i < 4; i++)
        emit_n(g, 4, 1000, 4000 * (i + 1));
    lc_pipeline_flush(&g->pipe);
    ack_all(LC_FATE_DELIVERED);
    assert_int_equal(g->out[0].nspare, LC_BATCH_SPARES);
    assert_int_equal(atomic_load(&g->m_spare[0]->i), LC_BATCH_SPARES);
    first = g->out[0].spare;
    emit_n(g, 1, 1000, 20000);
    assert_ptr_equal(g->out[0].open, first); /* reused, not allocated */
    assert_int_equal(g->out[0].nspare, LC_BATCH_SPARES - 1);
    teardown(g);
}

/* ---- allocation failure injection (lc_alloc_fail.h) ------------------------------- */

/* What each output was given, record by record ("<labels> <line>\n"), as acks see it. */
static char got[2][16384];

static void transcribe_and_ack(struct fixture *f)
{
    lc_pipeline_flush(&f->pipe);
    for (int k = 0; k < nheld; k++) {
        struct lc_batch *b = held[k];
        int o = b->out == &f->out[0] ? 0 : 1;
        for (uint32_t i = 0; i < b->n; i++) {
            size_t used = strlen(got[o]);
            snprintf(got[o] + used, sizeof(got[o]) - used, "%s %.*s\n",
                     b->recs[i].labels == f->labels[0] ? "a" : "b", (int)b->recs[i].line_len,
                     lc_batch_line(b, &b->recs[i]));
        }
    }
    ack_all(LC_FATE_DELIVERED);
}

#define TORTURE_LINES 12 /* per source */

/*
 * One input's work, as an input does it: per source, emit its next line and
 * checkpoint after it; a failed emit stops that source before the line (no
 * checkpoint past it) until the next round. Returns true when every line went.
 */
static bool emit_round(struct fixture *f, int next[2])
{
    char line[64];

    for (int i = 0; i < 2 * TORTURE_LINES; i++) {
        int s = i % 2;
        if (next[s] < 0 || next[s] >= TORTURE_LINES)
            continue;
        int len = snprintf(line, sizeof(line), "line %d of %c%.*s", next[s], "ab"[s],
                           next[s] * 7 % 40, "........................................");
        if (lc_pipeline_emit(&f->in, f->src[s], next[s], line, (size_t)len) != 0) {
            next[s] = -1 - next[s]; /* stopped before it: retried next round */
            continue;
        }
        next[s]++;
        struct lc_pos p = {.offset = next[s] * 100};
        lc_source_checkpoint(f->src[s], &p);
    }
    return next[0] >= TORTURE_LINES && next[1] >= TORTURE_LINES;
}

static void expected(char *out, size_t outlen)
{
    size_t used = 0;

    out[0] = '\0';
    for (int k = 0; k < TORTURE_LINES; k++)
        for (int s = 0; s < 2; s++)
            used +=
                (size_t)snprintf(out + used, outlen - used, "%c line %d of %c%.*s\n", "ab"[s], k,
                                 "ab"[s], k * 7 % 40, "........................................");
}

/* got[o], its lines sorted by source (the order within a source is kept), equals want. */
static void assert_same_per_source(const char *have, const char *want)
{
    for (int s = 0; s < 2; s++) {
        char a[8192] = "", b[8192] = "";
        size_t na = 0, nb = 0;
        for (const char *p = have; *p; p = strchr(p, '\n') + 1)
            if (*p == "ab"[s])
                na += (size_t)snprintf(a + na, sizeof(a) - na, "%.*s\n", (int)(strchr(p, '\n') - p),
                                       p);
        for (const char *p = want; *p; p = strchr(p, '\n') + 1)
            if (*p == "ab"[s])
                nb += (size_t)snprintf(b + nb, sizeof(b) - nb, "%.*s\n", (int)(strchr(p, '\n') - p),
                                       p);
        assert_string_equal(a, b);
    }
}

/*
 * Two sources into two outputs; the N-th allocation fails, for every N the
 * scenario reaches (batches, spares, marks). Whatever fails: no output holds a
 * line the others lack, no position is committed past a line not delivered,
 * and after the retry every line arrived exactly once, in order, byte for
 * byte; no memory is left behind.
 */
static void test_alloc_failures_pipeline(void **state)
{
    (void)state;
    char want[8192];
    long n;

    expected(want, sizeof(want));
    for (n = 1; n < 10000; n++) {
        long live0 = lc_alloc_live();
        struct fixture *f = setup_n(256, 1 << 20, 60000, 2);
        int next[2] = {0, 0};

        memset(got, 0, sizeof(got));
        lc_alloc_fail_at(n);
        bool all = emit_round(f, next);
        lc_alloc_fail_at(0);
        bool failed = lc_alloc_failed();
        assert_true(all || failed);
        /* deliver what was queued: positions stop before the line that failed */
        transcribe_and_ack(f);
        for (int s = 0; s < 2; s++) {
            int done = next[s] < 0 ? -1 - next[s] : next[s];
            assert_int_equal(lc_source_committed(f->src[s])->offset, done * 100);
            next[s] = done;
        }
        assert_string_equal(got[0], got[1]); /* all or nothing: the outputs agree */
        /* the retry, later: the rest goes, the failed line once */
        assert_true(emit_round(f, next));
        transcribe_and_ack(f);
        assert_same_per_source(got[0], want);
        assert_same_per_source(got[1], want);
        assert_int_equal(lc_source_committed(f->src[0])->offset, TORTURE_LINES * 100);
        teardown(f);
        assert_int_equal(lc_alloc_live(), live0);
        if (!failed)
            break;
    }
    print_message("# %ld allocations failed in turn\n", n - 1);
    assert_true(n > 3); /* it did reach allocations: batches of both outputs */
}

/*
 * The file tailer under the same injection: a file of lines read in small
 * blocks (lines span blocks: the partial-line hold). A failed emit must leave
 * the tail before the line (offset, sealed position); the retry after the
 * backoff reads it again; in the end every line arrived once, in order.
 */
static void test_alloc_failures_file_tail(void **state)
{
    (void)state;
    const char *base = getenv("LC_TEST_TMP");
    char path[4096], want[8192];
    size_t wlen = 0;
    long n;
    int fd;

    snprintf(path, sizeof(path), "%s/tail-XXXXXX", base ? base : "/tmp");
    if (base)
        mkdir(base, 0700);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    for (int k = 0; k < 16; k++)
        wlen += (size_t)snprintf(
            want + wlen, sizeof(want) - wlen, "l%02d %.*s\n", k, k * 9 % 70,
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    assert_int_equal(write(fd, want, wlen), (ssize_t)wlen);
    for (n = 1; n < 10000; n++) {
        long live0 = lc_alloc_live();
        struct fixture *f = setup_n(512, 1 << 20, 60000, 2);
        struct lc_file_conf conf = {.max_line_bytes = 1000, .read_bytes = 48, .flush_ms = 1000};
        struct lc_file_in fi = {.in = &f->in, .c = &conf};
        struct lc_tail t = {
            .fi = &fi, .fd = fd, .src = f->src[0], .hot = true, .fp_hash = LC_FP_SEED};
        char have[8192] = "";
        bool failed = false;

        fi.readbuf = malloc((size_t)conf.read_bytes);
        lc_buf_init(&t.partial, (size_t)conf.max_line_bytes);
        memset(got, 0, sizeof(got));
        for (int round = 0; round < 4 && t.offset < (int64_t)wlen; round++) {
            lc_alloc_fail_at(round == 0 ? n : 0);
            lc_tail_read(&t, 1 << 20);
            lc_alloc_fail_at(0);
            if (round == 0)
                failed = lc_alloc_failed();
            if (t.retry_ns) {
                /* stopped before a line: nothing past it sealed, the read waits */
                assert_false(t.hot);
                assert_int_equal(t.offset, t.safe_offset);
                assert_true(t.offset == 0 || want[t.offset - 1] == '\n');
                assert_int_equal(t.partial.len, 0);
                transcribe_and_ack(f);
                assert_int_equal(lc_source_committed(f->src[0])->offset, t.offset);
                t.retry_ns = 1; /* the backoff passed */
            }
        }
        transcribe_and_ack(f);
        assert_int_equal(t.offset, (int64_t)wlen);
        assert_int_equal(lc_source_committed(f->src[0])->offset, (int64_t)wlen);
        for (const char *p = got[0]; *p; p = strchr(p, '\n') + 1) /* drop "a " */
            snprintf(have + strlen(have), sizeof(have) - strlen(have), "%.*s\n",
                     (int)(strchr(p, '\n') - p - 2), p + 2);
        assert_string_equal(have, want);
        assert_string_equal(got[0], got[1]);
        lc_buf_free(&t.partial);
        free(fi.readbuf);
        teardown(f);
        assert_int_equal(lc_alloc_live(), live0);
        if (!failed)
            break;
    }
    close(fd);
    unlink(path);
    print_message("# %ld allocations failed in turn\n", n - 1);
    assert_true(n > 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_sealed_at_size),
        cmocka_unit_test(test_batch_sealed_at_age),
        cmocka_unit_test(test_backpressure_at_limit),
        cmocka_unit_test(test_backpressure_auto_limit),
        cmocka_unit_test(test_ack_commits_position),
        cmocka_unit_test(test_failed_batch_not_committed),
        cmocka_unit_test(test_done_inside_send_is_deferred),
        cmocka_unit_test(test_line_longer_than_batch_is_cut),
        cmocka_unit_test(test_two_sources_two_outputs),
        cmocka_unit_test(test_emit_refused_adds_nothing),
        cmocka_unit_test(test_small_batches_cost_little_and_are_reused),
        cmocka_unit_test(test_alloc_failures_pipeline),
        cmocka_unit_test(test_alloc_failures_file_tail),
        cmocka_unit_test(test_flooding_source_over_its_share),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
