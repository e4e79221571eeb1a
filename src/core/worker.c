/* SPDX-License-Identifier: MIT */
/* worker.c: the disk worker: one thread that runs slow disk jobs in order, off the event loop. */
#include "core/worker.h"

#include "core/fifo.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

/* A FIFO of jobs linked through job->next. */
struct wk_list {
    struct lc_worker_job *head, *tail;
};

struct lc_worker {
    uv_loop_t *loop;
    uv_async_t async; /* the thread's "some jobs are done" signal */
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cond;
    bool thread_started;
    /* under mu: shared with the thread */
    struct wk_list queue; /* admitted, not started */
    struct wk_list done;  /* work ran (or was cancelled), done callback not yet run */
    bool quit;
    bool cancel;
    /* loop thread only */
    struct wk_list waiting; /* beyond max_jobs, in order */
    uint32_t max_jobs;
    uint32_t admitted; /* queued + running + in `done` */
    size_t nwaiting;
    bool closing;
    bool closed;
    struct lc_metric_series *m_depth;
};

static void wk_push(struct wk_list *l, struct lc_worker_job *j)
{
    LC_FIFO_PUSH(l->head, l->tail, j, next);
}

static struct lc_worker_job *wk_pop(struct wk_list *l)
{
    struct lc_worker_job *j = NULL;

    if (l->head)
        LC_FIFO_POP(l->head, l->tail, j, next);
    return j;
}

/*
 * The gauge, and the async handle's reference: it keeps the loop alive exactly
 * while jobs are pending, so an idle worker does not hold up uv_run, and a
 * loop never ends before a pending completion ran.
 */
static void wk_update(struct lc_worker *w)
{
    size_t depth = w->admitted + w->nwaiting;
    lc_gauge_set(w->m_depth, (int64_t)depth);
    if (w->closed)
        return;
    if (depth > 0)
        uv_ref((uv_handle_t *)&w->async);
    else
        uv_unref((uv_handle_t *)&w->async);
}

static void wk_thread(void *arg)
{
    struct lc_worker *w = arg;

    pthread_setname_np(pthread_self(), "lc-disk"); /* for ps, top and /proc: a name, no more */
    uv_mutex_lock(&w->mu);
    for (;;) {
        while (!w->queue.head && !w->quit)
            uv_cond_wait(&w->cond, &w->mu);
        struct lc_worker_job *j = wk_pop(&w->queue);
        if (!j)
            break; /* quit, and nothing left */
        if (w->cancel) {
            j->cancelled = true;
        } else {
            uv_mutex_unlock(&w->mu);
            j->work(j);
            uv_mutex_lock(&w->mu);
        }
        wk_push(&w->done, j);
        uv_async_send(&w->async);
    }
    uv_mutex_unlock(&w->mu);
}

/* Moves waiting jobs into the queue while there is room. Loop thread. */
static void wk_admit(struct lc_worker *w)
{
    bool any = false;

    uv_mutex_lock(&w->mu);
    while (w->waiting.head && w->admitted < w->max_jobs) {
        struct lc_worker_job *j = wk_pop(&w->waiting);
        w->nwaiting--;
        w->admitted++;
        if (w->cancel)
            j->cancelled = true;
        wk_push(&w->queue, j);
        any = true;
    }
    if (any)
        uv_cond_signal(&w->cond);
    uv_mutex_unlock(&w->mu);
}

static void wk_on_async(uv_async_t *h)
{
    struct lc_worker *w = h->data;

    uv_mutex_lock(&w->mu);
    struct wk_list done = w->done;
    w->done.head = w->done.tail = NULL;
    uv_mutex_unlock(&w->mu);

    struct lc_worker_job *j;
    while ((j = wk_pop(&done)) != NULL) {
        w->admitted--;
        j->busy = false;
        wk_admit(w); /* a freed slot goes to the oldest waiting job first */
        wk_update(w);
        if (j->done)
            j->done(j); /* may submit again */
    }
    wk_update(w);
    if (w->closing && !w->closed && w->admitted == 0 && w->nwaiting == 0) {
        w->closed = true;
        uv_close((uv_handle_t *)&w->async, NULL);
    }
}

int lc_worker_new(struct lc_worker **out, uv_loop_t *loop, uint32_t max_jobs,
                  struct lc_metric_series *depth)
{
    *out = NULL;
    if (max_jobs == 0)
        return -EINVAL;
    struct lc_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->loop = loop;
    w->max_jobs = max_jobs;
    w->m_depth = depth;
    int rc = uv_mutex_init(&w->mu);
    if (rc)
        goto out_free;
    rc = uv_cond_init(&w->cond);
    if (rc)
        goto out_mutex;
    /* the thread touches the async handle only once a job exists */
    rc = uv_thread_create(&w->thread, wk_thread, w);
    if (rc)
        goto out_cond;
    w->thread_started = true;
    rc = uv_async_init(loop, &w->async, wk_on_async);
    if (rc) {
        lc_worker_free(w);
        return rc;
    }
    w->async.data = w;
    wk_update(w);
    *out = w;
    return 0;

out_cond:
    uv_cond_destroy(&w->cond);
out_mutex:
    uv_mutex_destroy(&w->mu);
out_free:
    free(w);
    return rc;
}

int lc_worker_submit(struct lc_worker *w, struct lc_worker_job *j)
{
    if (j->busy)
        return -EBUSY;
    if (w->closing || !w->thread_started)
        return -ESHUTDOWN;
    j->busy = true;
    j->cancelled = false;
    wk_push(&w->waiting, j);
    w->nwaiting++;
    wk_admit(w);
    wk_update(w);
    return 0;
}

size_t lc_worker_depth(const struct lc_worker *w)
{
    return w->admitted + w->nwaiting;
}

bool lc_worker_full(const struct lc_worker *w)
{
    return w->nwaiting > 0;
}

void lc_worker_cancel(struct lc_worker *w)
{
    uv_mutex_lock(&w->mu);
    w->cancel = true;
    uv_mutex_unlock(&w->mu);
    for (struct lc_worker_job *j = w->waiting.head; j; j = j->next)
        j->cancelled = true;
}

void lc_worker_close(struct lc_worker *w)
{
    if (w->closing)
        return;
    w->closing = true;
    if (!w->closed && w->admitted == 0 && w->nwaiting == 0) {
        w->closed = true;
        uv_close((uv_handle_t *)&w->async, NULL);
    }
}

void lc_worker_free(struct lc_worker *w)
{
    if (!w)
        return;
    if (w->thread_started) {
        uv_mutex_lock(&w->mu);
        w->quit = true;
        uv_cond_signal(&w->cond);
        uv_mutex_unlock(&w->mu);
        uv_thread_join(&w->thread);
    }
    uv_cond_destroy(&w->cond);
    uv_mutex_destroy(&w->mu);
    free(w);
}
