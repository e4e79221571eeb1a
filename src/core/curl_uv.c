/* SPDX-License-Identifier: MIT */
/* curl_uv.c: libcurl's multi interface driven by the libuv loop (after curl's multi-uv.c). */
#include "core/curl_uv.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * Socket actions one writable event may run for a socket. libcurl sends at
 * most one upload buffer (64 KiB by default) per action; left to one action
 * per loop iteration, a 2 MB body waits ~30 iterations, each as long as the
 * input's read and decode work in it (~26 ms per 486 KB push, ~500 ms per
 * 1.9 MB, issue 14). So while curl still wants to write and the kernel still
 * takes bytes, the same callback goes on: up to this many actions (16 MiB
 * with 64 KiB buffers), then the loop gets its turn.
 */
#define LC_CURL_DRAIN_MAX 256

/*
 * Three kinds of state:
 * - one struct lc_curl per multi, with the one uv_timer curl's timeout needs;
 * - one struct lc_curl_sock per socket curl asks us to watch (one per
 *   connection, not per request), holding its uv_poll_t; freed in the poll's
 *   close callback, never before;
 * - one struct lc_curl_xfer per running transfer (done callback and argument).
 *   They are recycled through a free list, so a steady flow of requests
 *   allocates nothing after the first ones.
 *
 * The easy handle's CURLOPT_PRIVATE points to its xfer while it is added; the
 * caller must not use CURLOPT_PRIVATE on handles it gives to lc_curl_add.
 */
struct lc_curl_sock {
    uv_poll_t poll;
    struct lc_curl *c;
    curl_socket_t fd;
    int events;                       /* UV_READABLE/UV_WRITABLE curl asked for */
    bool closing;                     /* CURL_POLL_REMOVE seen (the poll is closing) */
    struct lc_curl_sock *prev, *next; /* c->socks: every poll handle not yet closing */
};

struct lc_curl_xfer {
    CURL *easy;
    lc_curl_done_fn done;
    void *arg;
    struct lc_curl_xfer *prev, *next; /* c->active, or c->spare (next only) */
};

struct lc_curl {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct lc_curl_sock *socks;
    struct lc_curl_xfer *active;
    struct lc_curl_xfer *spare;
    unsigned running;
    unsigned long opened;
    unsigned long reused;
    unsigned long drained; /* socket actions run by the drain loop (tests) */
    unsigned closing;      /* uv handles whose close callback has not run yet */
    int dispatching;       /* inside check_multi_info: defer lc_curl_free */
    bool freeing;          /* lc_curl_free was called */
    bool timer_inited;
    void (*closed)(void *arg);
    void *closed_arg;
};

static void lc_curl_finish_free(struct lc_curl *c);

static void lc_curl_handle_closed(struct lc_curl *c)
{
    c->closing--;
    if (c->freeing && c->closing == 0 && c->dispatching == 0)
        lc_curl_finish_free(c);
}

static void lc_curl_sock_closed(uv_handle_t *h)
{
    struct lc_curl_sock *s = h->data;
    struct lc_curl *c = s->c;

    free(s);
    lc_curl_handle_closed(c);
}

static void lc_curl_timer_closed(uv_handle_t *h)
{
    lc_curl_handle_closed(h->data);
}

static void lc_curl_sock_close(struct lc_curl *c, struct lc_curl_sock *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->closing = true;
    s->events = 0;
    uv_poll_stop(&s->poll);
    c->closing++;
    uv_close((uv_handle_t *)&s->poll, lc_curl_sock_closed);
}

static void lc_curl_xfer_unlink(struct lc_curl *c, struct lc_curl_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        c->active = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = NULL;
    x->next = c->spare;
    c->spare = x;
    x->easy = NULL;
    x->done = NULL;
    x->arg = NULL;
    c->running--;
}

/* Calls the done callback of every finished transfer. */
static void lc_curl_check_multi_info(struct lc_curl *c)
{
    CURLMsg *msg;
    int pending;

    c->dispatching++;
    while (!c->freeing && (msg = curl_multi_info_read(c->multi, &pending)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        struct lc_curl_xfer *x = NULL;
        long nconn = 0;

        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        if (curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &nconn) == CURLE_OK && nconn > 0)
            c->opened += (unsigned long)nconn;
        else if (result == CURLE_OK)
            c->reused++;
        curl_multi_remove_handle(c->multi, easy);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        if (!x)
            continue;
        lc_curl_done_fn done = x->done;
        void *arg = x->arg;
        lc_curl_xfer_unlink(c, x);
        /* msg points into the multi; it is not used after this call. */
        done(easy, result, arg);
    }
    c->dispatching--;
    if (c->freeing && c->dispatching == 0 && c->closing == 0)
        lc_curl_finish_free(c);
}

/* CURL_CSELECT_IN/OUT for what the socket can do now, without waiting. */
static int lc_curl_ready_now(curl_socket_t fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
    int flags = 0;

    if (poll(&p, 1, 0) <= 0)
        return 0;
    if (p.revents & POLLIN)
        flags |= CURL_CSELECT_IN;
    if (p.revents & POLLOUT)
        flags |= CURL_CSELECT_OUT;
    /* errors and hang-ups: curl's own send/recv reports them */
    return flags;
}

static void lc_curl_on_poll(uv_poll_t *h, int status, int events)
{
    struct lc_curl_sock *s = h->data;
    struct lc_curl *c = s->c;
    int flags = 0;
    int running;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    /* s stays allocated until its close callback, which runs on a later iteration */
    for (int i = 0; i < LC_CURL_DRAIN_MAX && (flags & CURL_CSELECT_OUT); i++) {
        if (c->freeing || s->closing || !(s->events & UV_WRITABLE))
            break;
        flags = lc_curl_ready_now(s->fd);
        if (!(flags & CURL_CSELECT_OUT))
            break;
        curl_multi_socket_action(c->multi, s->fd, flags, &running);
        c->drained++;
    }
    lc_curl_check_multi_info(c);
}

static void lc_curl_on_timer(uv_timer_t *t)
{
    struct lc_curl *c = t->data;
    int running;

    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    lc_curl_check_multi_info(c);
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer, otherwise (re)arms it. */
static int lc_curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct lc_curl *c = userp;

    (void)multi;
    if (c->freeing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, lc_curl_on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* CURLMOPT_SOCKETFUNCTION: one uv_poll per socket, created on first sight. */
static int lc_curl_socket_cb(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp)
{
    struct lc_curl *c = userp;
    struct lc_curl_sock *s = socketp;
    int events = 0;

    (void)easy;
    if (action == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(c->multi, fd, NULL);
            lc_curl_sock_close(c, s);
        }
        return 0;
    }
    if (c->freeing)
        return 0;
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1; /* curl fails the transfer */
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->c = c;
        s->fd = fd;
        s->poll.data = s;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        curl_multi_assign(c->multi, fd, s);
    }
    if (action == CURL_POLL_IN || action == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (action == CURL_POLL_OUT || action == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    s->events = events;
    uv_poll_start(&s->poll, events, lc_curl_on_poll);
    return 0;
}

struct lc_curl *lc_curl_new(uv_loop_t *loop, long max_total, long max_host)
{
    struct lc_curl *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->loop = loop;
    c->multi = curl_multi_init();
    if (!c->multi)
        goto out_free;
    if (uv_timer_init(loop, &c->timer) != 0)
        goto out_multi;
    c->timer.data = c;
    c->timer_inited = true;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, lc_curl_socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, lc_curl_timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    if (max_total > 0) {
        curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_total);
        /* keep as many idle connections as may be open, so none is closed early */
        curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, max_total);
    }
    if (max_host > 0)
        curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host);
    return c;

out_multi:
    curl_multi_cleanup(c->multi);
out_free:
    free(c);
    return NULL;
}

static void lc_curl_finish_free(struct lc_curl *c)
{
    struct lc_curl_xfer *x;
    void (*closed)(void *) = c->closed;
    void *arg = c->closed_arg;

    while ((x = c->spare) != NULL) {
        c->spare = x->next;
        free(x);
    }
    free(c);
    if (closed)
        closed(arg);
}

void lc_curl_free(struct lc_curl *c, void (*closed)(void *arg), void *arg)
{
    if (!c)
        return;
    if (c->freeing)
        return;
    c->freeing = true;
    c->closed = closed;
    c->closed_arg = arg;
    while (c->active) {
        struct lc_curl_xfer *x = c->active;
        curl_multi_remove_handle(c->multi, x->easy);
        curl_easy_setopt(x->easy, CURLOPT_PRIVATE, NULL);
        lc_curl_xfer_unlink(c, x);
    }
    /* Closes the cached connections; curl may still report CURL_POLL_REMOVE. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->socks)
        lc_curl_sock_close(c, c->socks);
    if (c->timer_inited) {
        uv_timer_stop(&c->timer);
        c->closing++;
        uv_close((uv_handle_t *)&c->timer, lc_curl_timer_closed);
    }
    if (c->closing == 0 && c->dispatching == 0)
        lc_curl_finish_free(c);
}

int lc_curl_add(struct lc_curl *c, CURL *easy, lc_curl_done_fn done, void *arg)
{
    struct lc_curl_xfer *x;

    if (!c || !easy || !done || c->freeing)
        return -EINVAL;
    x = c->spare;
    if (x) {
        c->spare = x->next;
    } else {
        x = calloc(1, sizeof(*x));
        if (!x)
            return -ENOMEM;
    }
    x->easy = easy;
    x->done = done;
    x->arg = arg;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)x);
    CURLMcode mc = curl_multi_add_handle(c->multi, easy);
    if (mc != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        x->easy = NULL;
        x->next = c->spare;
        c->spare = x;
        return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
    }
    x->prev = NULL;
    x->next = c->active;
    if (c->active)
        c->active->prev = x;
    c->active = x;
    c->running++;
    return 0;
}

void lc_curl_remove(struct lc_curl *c, CURL *easy)
{
    struct lc_curl_xfer *x = NULL;

    if (!c || !easy || c->freeing)
        return;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    if (!x || x->easy != easy)
        return;
    curl_multi_remove_handle(c->multi, easy);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    lc_curl_xfer_unlink(c, x);
}

unsigned lc_curl_running(const struct lc_curl *c)
{
    return c ? c->running : 0;
}

void lc_curl_conn_stats(const struct lc_curl *c, unsigned long *opened, unsigned long *reused)
{
    if (opened)
        *opened = c ? c->opened : 0;
    if (reused)
        *reused = c ? c->reused : 0;
}

unsigned long lc_curl_drained(const struct lc_curl *c)
{
    return c ? c->drained : 0;
}
