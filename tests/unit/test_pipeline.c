/* SPDX-License-Identifier: MIT */
/* test_pipeline.c: batching by size and age, backpressure at max_pending_bytes, acks. */
#include "core/agent.h"
#include "core/batch.h"
#include "core/labels.h"
#include "core/source.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

/* An output that holds what it is sent until the test lets it go. */
static struct lc_batch *held[64];
static int nheld;
static int npause, nresume;

static void hold_send(struct lc_output *out, struct lc_batch *b)
{
    (void)out;
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

struct fixture {
    uv_loop_t loop;
    struct lc_config cfg;
    struct lc_output_conf ocf;
    struct lc_input_conf icf;
    struct lc_agent a;
    struct lc_output out;
    struct lc_output *outs[1];
    struct lc_input in;
    struct lc_labels *labels;
    struct lc_source *src;
};

static struct fixture *setup(int64_t batch_bytes, int64_t max_pending, int64_t wait_ms)
{
    static struct fixture f;
    struct lc_kv kv = {"job", "t"};

    memset(&f, 0, sizeof(f));
    nheld = npause = nresume = 0;
    uv_loop_init(&f.loop);
    f.cfg.batch_bytes = batch_bytes;
    f.cfg.batch_wait_ms = wait_ms;
    f.cfg.max_pending_bytes = max_pending;
    f.ocf.name = "o";
    f.icf.name = "i";
    f.a.loop = &f.loop;
    f.a.cfg = &f.cfg;
    f.a.outputs = &f.out;
    f.a.noutputs = 1;
    f.a.inputs = &f.in;
    f.a.ninputs = 1;
    uv_timer_init(&f.loop, &f.a.defer_timer);
    f.a.defer_timer.data = &f.a;
    f.out.plugin = &holding;
    f.out.conf = &f.ocf;
    f.out.agent = &f.a;
    f.out.ctx = &f.out;
    uv_timer_init(&f.loop, &f.out.flush_timer);
    f.out.flush_timer.data = &f.out;
    f.outs[0] = &f.out;
    f.in.plugin = &test_in;
    f.in.conf = &f.icf;
    f.in.agent = &f.a;
    f.in.ctx = &f.in;
    f.in.outs = f.outs;
    f.in.nouts = 1;
    assert_int_equal(lc_labels_intern(&kv, 1, &f.labels), 0);
    f.src = lc_source_new(&f.in, "k", "/p", f.labels, NULL, 1024);
    return &f;
}

static void teardown(struct fixture *f)
{
    for (int i = 0; i < nheld; i++)
        lc_output_done(&f->out, held[i], LC_FATE_DELIVERED);
    nheld = 0;
    if (f->out.open) {
        lc_batch_release_marks(f->out.open, true);
        lc_batch_free(f->out.open);
        f->out.open = NULL;
    }
    lc_source_free(f->src);
    lc_labels_release(f->labels);
    uv_close((uv_handle_t *)&f->a.defer_timer, NULL);
    uv_close((uv_handle_t *)&f->out.flush_timer, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(lc_labels_live(), 0);
}

static void emit_n(struct fixture *f, int n, size_t len, int64_t end_off)
{
    char line[4096];
    memset(line, 'x', sizeof(line));
    for (int i = 0; i < n; i++)
        assert_int_equal(lc_pipeline_emit(&f->in, f->src, i, line, len), 0);
    struct lc_pos p = {.offset = end_off};
    lc_source_checkpoint(f->src, &p);
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
    assert_true(f->out.pending_bytes > 0);
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
    /* Each 4 KiB batch costs its arena plus record slots: about 7 KiB. */
    struct fixture *f = setup(4096, 16384, 60000);
    int64_t off = 0;

    for (int i = 0; i < 4 && !lc_pipeline_paused(&f->a); i++)
        emit_n(f, 4, 1000, off += 4000);
    assert_true(lc_pipeline_paused(&f->a));
    assert_int_equal(npause, 1);
    assert_true(f->out.pending_bytes >= 16384);
    /* Acks bring it below half the limit: inputs resume, on the next loop turn. */
    for (int i = 0; i < nheld; i++)
        lc_output_done(&f->out, held[i], LC_FATE_DELIVERED);
    nheld = 0;
    assert_false(lc_pipeline_paused(&f->a));
    assert_int_equal(nresume, 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(nresume, 1);
    teardown(f);
}

static void test_ack_commits_position(void **state)
{
    (void)state;
    struct fixture *f = setup(4096, 1 << 20, 60000);

    emit_n(f, 2, 100, 202);
    lc_pipeline_flush(&f->a);
    assert_int_equal(nheld, 1);
    assert_int_equal(f->src->ck.pos.offset, 0);
    lc_output_done(&f->out, held[0], LC_FATE_DELIVERED);
    nheld = 0;
    assert_int_equal(f->src->ck.pos.offset, 202);
    assert_true(lc_pipeline_idle(&f->a));
    teardown(f);
}

static void test_failed_batch_not_committed(void **state)
{
    (void)state;
    struct fixture *f = setup(4096, 1 << 20, 60000);

    emit_n(f, 2, 100, 202);
    lc_pipeline_flush(&f->a);
    lc_output_done(&f->out, held[0], LC_FATE_FAILED);
    nheld = 0;
    assert_int_equal(f->src->ck.pos.offset, 0);
    teardown(f);
}

static void test_done_inside_send_is_deferred(void **state)
{
    (void)state;
    struct fixture *f = setup(4096, 1 << 20, 60000);
    struct lc_output_plugin acking = holding;

    acking.send = ack_send;
    f->out.plugin = &acking;
    emit_n(f, 2, 100, 202);
    lc_pipeline_flush(&f->a);
    assert_int_equal(f->src->ck.pos.offset, 0); /* not yet: deferred */
    assert_false(lc_pipeline_idle(&f->a));
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->src->ck.pos.offset, 202);
    assert_true(lc_pipeline_idle(&f->a));
    f->out.plugin = &holding;
    teardown(f);
}

static void test_line_longer_than_batch_is_cut(void **state)
{
    (void)state;
    struct fixture *f = setup(4096, 1 << 20, 60000);

    emit_n(f, 1, 4096 + 0, 4097);
    lc_pipeline_flush(&f->a);
    assert_int_equal(nheld, 1);
    assert_int_equal(held[0]->recs[0].line_len, 4096);
    teardown(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_sealed_at_size),
        cmocka_unit_test(test_batch_sealed_at_age),
        cmocka_unit_test(test_backpressure_at_limit),
        cmocka_unit_test(test_ack_commits_position),
        cmocka_unit_test(test_failed_batch_not_committed),
        cmocka_unit_test(test_done_inside_send_is_deferred),
        cmocka_unit_test(test_line_longer_than_batch_is_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
