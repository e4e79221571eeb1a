/* SPDX-License-Identifier: MIT */
/* test_worker.c: the disk worker: order, the bound, cancel, shutdown drain, completions on the
 * loop. */
#include "core/metrics.h"
#include "core/worker.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define NJOBS 32

struct tjob {
    struct lc_worker_job job; /* first: the callbacks cast back */
    struct fx *f;
    int id;
    bool ran_on_loop_thread; /* work: must stay false */
    bool done_on_loop_thread;
};

struct fx {
    uv_loop_t loop;
    uv_thread_t loop_thread;
    struct lc_worker *w;
    struct tjob jobs[NJOBS];
    int work_order[NJOBS];
    _Atomic int nwork;
    int done_order[NJOBS];
    int ndone;
    int ncancelled;
    /* the first job's work waits here until released */
    uv_mutex_t gate_mu;
    uv_cond_t gate_cond;
    bool gate_open;
    _Atomic bool first_running;
    bool resubmit_once;
};

static void t_work(struct lc_worker_job *j)
{
    struct tjob *t = (struct tjob *)j;
    struct fx *f = t->f;
    uv_thread_t self = uv_thread_self();
    t->ran_on_loop_thread = uv_thread_equal(&self, &f->loop_thread);
    if (t->id == 0) {
        atomic_store(&f->first_running, true);
        uv_mutex_lock(&f->gate_mu);
        while (!f->gate_open)
            uv_cond_wait(&f->gate_cond, &f->gate_mu);
        uv_mutex_unlock(&f->gate_mu);
    }
    f->work_order[atomic_fetch_add(&f->nwork, 1)] = t->id;
}

static void t_done(struct lc_worker_job *j)
{
    struct tjob *t = (struct tjob *)j;
    struct fx *f = t->f;
    uv_thread_t self = uv_thread_self();
    t->done_on_loop_thread = uv_thread_equal(&self, &f->loop_thread);
    if (j->cancelled)
        f->ncancelled++;
    f->done_order[f->ndone++] = t->id;
    if (f->resubmit_once && t->id == 1) {
        f->resubmit_once = false;
        assert_int_equal(lc_worker_submit(f->w, j), 0); /* again, from its own done */
    }
}

static void open_gate(struct fx *f)
{
    uv_mutex_lock(&f->gate_mu);
    f->gate_open = true;
    uv_cond_signal(&f->gate_cond);
    uv_mutex_unlock(&f->gate_mu);
}

static struct lc_metric_series *depth_gauge(void)
{
    return lc_metric_simple(LC_GAUGE, "test_worker_depth", "test");
}

static int setup_n(void **state, uint32_t max_jobs)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->loop_thread = uv_thread_self();
    uv_mutex_init(&f->gate_mu);
    uv_cond_init(&f->gate_cond);
    f->gate_open = true;
    for (int i = 0; i < NJOBS; i++) {
        f->jobs[i].f = f;
        f->jobs[i].id = i;
        f->jobs[i].job.work = t_work;
        f->jobs[i].job.done = t_done;
    }
    assert_int_equal(lc_worker_new(&f->w, &f->loop, max_jobs, depth_gauge()), 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_n(state, 64);
}

static int setup_bound2(void **state)
{
    return setup_n(state, 2);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    open_gate(f);
    lc_worker_close(f->w);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    lc_worker_free(f->w);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* the worker left no handle open */
    uv_cond_destroy(&f->gate_cond);
    uv_mutex_destroy(&f->gate_mu);
    free(f);
    return 0;
}

/* Runs the loop until n completions ran (bounded: 10 s). */
static void run_until_done(struct fx *f, int n)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (f->ndone < n) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        clock_gettime(CLOCK_MONOTONIC, &now);
        assert_true(now.tv_sec - t0.tv_sec < 10);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
}

static void wait_first_running(struct fx *f)
{
    for (int i = 0; i < 10000 && !atomic_load(&f->first_running); i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    assert_true(atomic_load(&f->first_running));
}

static void test_order_and_threads(void **state)
{
    struct fx *f = *state;

    for (int i = 0; i < NJOBS; i++)
        assert_int_equal(lc_worker_submit(f->w, &f->jobs[i].job), 0);
    run_until_done(f, NJOBS);
    assert_int_equal(atomic_load(&f->nwork), NJOBS);
    for (int i = 0; i < NJOBS; i++) {
        assert_int_equal(f->work_order[i], i); /* run in submission order */
        assert_int_equal(f->done_order[i], i); /* completed in submission order */
        assert_false(f->jobs[i].ran_on_loop_thread);
        assert_true(f->jobs[i].done_on_loop_thread);
    }
    assert_int_equal(f->ncancelled, 0);
    assert_int_equal(lc_worker_depth(f->w), 0);
    assert_int_equal(atomic_load(&depth_gauge()->i), 0);
}

static void test_busy_and_resubmit(void **state)
{
    struct fx *f = *state;

    f->gate_open = false;
    assert_int_equal(lc_worker_submit(f->w, &f->jobs[0].job), 0);
    assert_int_equal(lc_worker_submit(f->w, &f->jobs[0].job), -EBUSY); /* not done yet */
    f->resubmit_once = true;
    assert_int_equal(lc_worker_submit(f->w, &f->jobs[1].job), 0);
    open_gate(f);
    run_until_done(f, 3);
    int want[] = {0, 1, 1};
    assert_memory_equal(f->done_order, want, sizeof(want));
}

static void test_bound_waits_in_order(void **state)
{
    struct fx *f = *state; /* max_jobs = 2 */

    f->gate_open = false;
    for (int i = 0; i < 6; i++)
        assert_int_equal(lc_worker_submit(f->w, &f->jobs[i].job), 0);
    wait_first_running(f);
    /* two admitted, four waiting: nothing dropped, the caller is told to hold back */
    assert_int_equal(lc_worker_depth(f->w), 6);
    assert_true(lc_worker_full(f->w));
    assert_int_equal(atomic_load(&depth_gauge()->i), 6);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->ndone, 0);
    open_gate(f);
    run_until_done(f, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(f->work_order[i], i);
        assert_int_equal(f->done_order[i], i);
    }
    assert_false(lc_worker_full(f->w));
    assert_int_equal(lc_worker_depth(f->w), 0);
}

static void test_cancel_skips_jobs_not_started(void **state)
{
    struct fx *f = *state;

    f->gate_open = false;
    for (int i = 0; i < 4; i++)
        assert_int_equal(lc_worker_submit(f->w, &f->jobs[i].job), 0);
    wait_first_running(f);
    lc_worker_cancel(f->w);
    open_gate(f);
    run_until_done(f, 4);
    assert_int_equal(atomic_load(&f->nwork), 1); /* only the one running */
    assert_false(f->jobs[0].job.cancelled);
    assert_int_equal(f->ncancelled, 3);
    for (int i = 0; i < 4; i++)
        assert_int_equal(f->done_order[i], i);
}

/* Close drains: the loop ends only once every queued job ran and completed. */
static void test_close_drains_queue(void **state)
{
    struct fx *f = *state;

    f->gate_open = false;
    for (int i = 0; i < 8; i++)
        assert_int_equal(lc_worker_submit(f->w, &f->jobs[i].job), 0);
    lc_worker_close(f->w);
    assert_int_equal(lc_worker_submit(f->w, &f->jobs[8].job), -ESHUTDOWN);
    wait_first_running(f);
    open_gate(f);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* returns when the async handle closed */
    assert_int_equal(f->ndone, 8);
    assert_int_equal(atomic_load(&f->nwork), 8);
    assert_int_equal(f->ncancelled, 0);
}

/* An idle worker does not keep the loop alive; a pending job does, until its completion ran. */
static void test_loop_alive_only_while_pending(void **state)
{
    struct fx *f = *state;

    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0); /* returns at once: idle */
    assert_int_equal(lc_worker_submit(f->w, &f->jobs[0].job), 0);
    assert_int_equal(lc_worker_submit(f->w, &f->jobs[1].job), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->ndone, 2);
}

static void test_new_rejects_zero(void **state)
{
    (void)state;
    struct lc_worker *w = (struct lc_worker *)1;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(lc_worker_new(&w, &loop, 0, NULL), -EINVAL);
    assert_null(w);
    lc_worker_free(NULL);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_and_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_and_resubmit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_waits_in_order, setup_bound2, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_skips_jobs_not_started, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_drains_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_alive_only_while_pending, setup, teardown),
        cmocka_unit_test(test_new_rejects_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
