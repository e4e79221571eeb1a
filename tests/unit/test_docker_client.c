/* SPDX-License-Identifier: MIT */
/* test_docker_client.c: the Docker API client against a fake daemon on a unix socket (and a
 * real one if given). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "input/docker_client.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/*
 * The fake daemon: one thread polling a listening unix socket and its
 * connections every 2 ms. It answers HTTP/1.1 keep-alive requests from
 * canned JSON, and serves /events and /containers/{id}/logs as chunked
 * streams from a script (chunks paced one per poll round), ending them
 * cleanly, by cutting the connection mid-chunk, or never. Every request line
 * and the connection that carried it are recorded.
 */

#define FD_MAX_CONN 64
#define FD_MAX_REQ  4096
#define FD_REQ_LEN  512

enum fd_end { FD_END_CLEAN, FD_END_CUT, FD_END_OPEN };

struct fd_conn {
    int fd;
    int id;
    char in[8192];
    size_t inlen;
    char *out;
    size_t outlen, outoff, outcap;
    bool streaming;
    const char *sdata; /* stream body to send */
    size_t slen, soff, schunk;
    enum fd_end send;
};

struct fake_docker {
    char path[108];
    int lfd;
    pthread_t thr;
    atomic_bool stop;
    pthread_mutex_t mu;
    struct fd_conn conns[FD_MAX_CONN];
    /* configuration (set before use) */
    const char *api_version;
    const char *list_body;
    const char *inspect_body; /* for every id except "missing" */
    const char *events_data;
    size_t events_chunk;
    enum fd_end events_end;
    const char *logs_data;
    size_t logs_len, logs_chunk;
    enum fd_end logs_end;
    /* records */
    atomic_int accepted;
    atomic_int closed;
    atomic_int nreq;
    char reqs[FD_MAX_REQ][FD_REQ_LEN];
    int req_conn[FD_MAX_REQ];
};

static void fd_out(struct fd_conn *c, const char *p, size_t n)
{
    if (c->outlen + n > c->outcap) {
        size_t cap = c->outcap ? c->outcap : 4096;
        while (cap < c->outlen + n)
            cap *= 2;
        c->out = realloc(c->out, cap);
        assert_non_null(c->out);
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
}

static void fd_outf(struct fd_conn *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fd_out(c, buf, (size_t)n);
}

static void fd_reply(struct fd_conn *c, int status, const char *body, const char *extra)
{
    const char *reason = status == 200 ? "OK" : status == 404 ? "Not Found" : "Error";
    fd_outf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n",
            status, reason, extra ? extra : "", strlen(body));
    fd_out(c, body, strlen(body));
}

static void fd_start_stream(struct fd_conn *c, const char *data, size_t len, size_t chunk,
                            enum fd_end end)
{
    fd_outf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    c->streaming = true;
    c->sdata = data;
    c->slen = len;
    c->soff = 0;
    c->schunk = chunk ? chunk : 4096;
    c->send = end;
}

static void fd_close(struct fake_docker *s, struct fd_conn *c)
{
    close(c->fd);
    c->fd = -1;
    free(c->out);
    c->out = NULL;
    c->outlen = c->outoff = c->outcap = 0;
    c->inlen = 0;
    c->streaming = false;
    atomic_fetch_add(&s->closed, 1);
}

static void fd_route(struct fake_docker *s, struct fd_conn *c, const char *method,
                     const char *target)
{
    char id[200];
    const char *vp = "/v1.";

    if (strcmp(method, "GET") != 0) {
        fd_reply(c, 405, "{\"message\":\"only GET\"}", NULL);
        return;
    }
    if (strcmp(target, "/_ping") == 0) {
        char hdr[64];
        snprintf(hdr, sizeof(hdr), "Api-Version: %s\r\n", s->api_version);
        fd_outf(c, "HTTP/1.1 200 OK\r\n%sContent-Length: 2\r\n\r\nOK", hdr);
        return;
    }
    if (strcmp(target, "/version") == 0) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"Version\":\"20.10.24+dfsg1\",\"ApiVersion\":\"%s\",\"MinAPIVersion\":\"1.12\","
                 "\"Os\":\"linux\"}",
                 s->api_version);
        fd_reply(c, 200, body, NULL);
        return;
    }
    if (strncmp(target, vp, strlen(vp)) != 0) {
        fd_reply(c, 404, "{\"message\":\"page not found\"}", NULL);
        return;
    }
    const char *p = strchr(target + 1, '/'); /* after /v1.xx */
    if (strcmp(p, "/containers/json") == 0) {
        fd_reply(c, 200, s->list_body ? s->list_body : "[]", NULL);
    } else if (strncmp(p, "/events?", 8) == 0) {
        fd_start_stream(c, s->events_data ? s->events_data : "",
                        s->events_data ? strlen(s->events_data) : 0, s->events_chunk,
                        s->events_end);
    } else if (sscanf(p, "/containers/%199[^/]/json", id) == 1 &&
               strlen(p) == strlen("/containers//json") + strlen(id)) {
        if (strcmp(id, "missing") == 0)
            fd_reply(c, 404, "{\"message\":\"No such container: missing\"}", NULL);
        else
            fd_reply(c, 200, s->inspect_body ? s->inspect_body : "{}", NULL);
    } else if (sscanf(p, "/containers/%199[^/]/logs", id) == 1) {
        if (strcmp(id, "missing") == 0)
            fd_reply(c, 404, "{\"message\":\"No such container: missing\"}", NULL);
        else if (strcmp(id, "nolog") == 0)
            fd_reply(c, 501, "{\"message\":\"configured logging driver does not support reading\"}",
                     NULL);
        else
            fd_start_stream(c, s->logs_data ? s->logs_data : "", s->logs_len, s->logs_chunk,
                            s->logs_end);
    } else {
        fd_reply(c, 404, "{\"message\":\"page not found\"}", NULL);
    }
}

/* Parses complete requests in c->in (GET: no body). */
static void fd_parse(struct fake_docker *s, struct fd_conn *c)
{
    char *end;

    while (!c->streaming && (end = memmem(c->in, c->inlen, "\r\n\r\n", 4)) != NULL) {
        char method[16] = "", target[FD_REQ_LEN - 24] = "";
        size_t used = (size_t)(end - c->in) + 4;
        *end = '\0';
        sscanf(c->in, "%15s %479s", method, target);
        int n = atomic_load(&s->nreq);
        if (n < FD_MAX_REQ) {
            snprintf(s->reqs[n], FD_REQ_LEN, "%s %s", method, target);
            s->req_conn[n] = c->id;
            atomic_store(&s->nreq, n + 1);
        }
        fd_route(s, c, method, target);
        memmove(c->in, c->in + used, c->inlen - used);
        c->inlen -= used;
    }
}

/* Queues the next chunk of a stream, or its end. Returns false when the conn was closed. */
static bool fd_stream_step(struct fake_docker *s, struct fd_conn *c)
{
    if (c->outlen - c->outoff > 256 * 1024)
        return true; /* the client is not reading (paused): wait */
    if (c->soff < c->slen) {
        size_t n = c->slen - c->soff < c->schunk ? c->slen - c->soff : c->schunk;
        fd_outf(c, "%zx\r\n", n);
        fd_out(c, c->sdata + c->soff, n);
        fd_out(c, "\r\n", 2);
        c->soff += n;
        return true;
    }
    if (c->send == FD_END_CLEAN) {
        fd_out(c, "0\r\n\r\n", 5);
        c->streaming = false;
        c->sdata = NULL;
    } else if (c->send == FD_END_CUT && c->outoff == c->outlen) {
        /* a chunk that promises 100 bytes and delivers 3, then the connection dies */
        if (write(c->fd, "64\r\nabc", 7) < 0) {
        }
        fd_close(s, c);
        return false;
    }
    return true;
}

static void *fd_main(void *arg)
{
    struct fake_docker *s = arg;

    while (!atomic_load(&s->stop)) {
        struct pollfd pfd[FD_MAX_CONN + 1];
        int map[FD_MAX_CONN + 1];
        int n = 0;

        pfd[n].fd = s->lfd;
        pfd[n].events = POLLIN;
        map[n++] = -1;
        for (int i = 0; i < FD_MAX_CONN; i++) {
            struct fd_conn *c = &s->conns[i];
            if (c->fd < 0)
                continue;
            pfd[n].fd = c->fd;
            pfd[n].events = POLLIN | (c->outoff < c->outlen ? POLLOUT : 0);
            map[n++] = i;
        }
        if (poll(pfd, (nfds_t)n, 2) < 0)
            continue;
        if (pfd[0].revents & POLLIN) {
            int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                int slot = -1;
                for (int i = 0; i < FD_MAX_CONN && slot < 0; i++)
                    if (s->conns[i].fd < 0)
                        slot = i;
                if (slot < 0) {
                    close(fd);
                } else {
                    memset(&s->conns[slot], 0, sizeof(s->conns[slot]));
                    s->conns[slot].fd = fd;
                    s->conns[slot].id = atomic_fetch_add(&s->accepted, 1);
                }
            }
        }
        for (int k = 1; k < n; k++) {
            struct fd_conn *c = &s->conns[map[k]];
            if (c->fd < 0)
                continue;
            if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t r = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen - 1);
                if (r == 0 || (r < 0 && errno != EAGAIN)) {
                    fd_close(s, c);
                    continue;
                }
                if (r > 0) {
                    c->inlen += (size_t)r;
                    pthread_mutex_lock(&s->mu);
                    fd_parse(s, c);
                    pthread_mutex_unlock(&s->mu);
                }
            }
            if (c->streaming && !fd_stream_step(s, c))
                continue;
            if (c->outoff < c->outlen) {
                ssize_t w = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
                if (w > 0)
                    c->outoff += (size_t)w;
                else if (w < 0 && errno != EAGAIN) {
                    fd_close(s, c);
                    continue;
                }
                if (c->outoff == c->outlen)
                    c->outoff = c->outlen = 0;
            }
        }
    }
    for (int i = 0; i < FD_MAX_CONN; i++)
        if (s->conns[i].fd >= 0)
            fd_close(s, &s->conns[i]);
    return NULL;
}

static struct fake_docker *fd_start(void)
{
    struct fake_docker *s = calloc(1, sizeof(*s));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    assert_non_null(s);
    snprintf(s->path, sizeof(s->path), "/tmp/lc-fd-%d-%ld.sock", (int)getpid(), random());
    unlink(s->path);
    s->api_version = "1.41";
    for (int i = 0; i < FD_MAX_CONN; i++)
        s->conns[i].fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->path);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->lfd, 64), 0);
    assert_int_equal(pthread_create(&s->thr, NULL, fd_main, s), 0);
    return s;
}

static void fd_stop(struct fake_docker *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thr, NULL);
    close(s->lfd);
    unlink(s->path);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static bool fd_req_seen(struct fake_docker *s, const char *prefix)
{
    bool found = false;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < atomic_load(&s->nreq) && !found; i++)
        found = strncmp(s->reqs[i], prefix, strlen(prefix)) == 0;
    pthread_mutex_unlock(&s->mu);
    return found;
}

static bool fd_req_exact(struct fake_docker *s, const char *req)
{
    bool found = false;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < atomic_load(&s->nreq) && !found; i++)
        found = strcmp(s->reqs[i], req) == 0;
    pthread_mutex_unlock(&s->mu);
    return found;
}

static void fd_all_get(struct fake_docker *s)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < atomic_load(&s->nreq); i++)
        assert_memory_equal(s->reqs[i], "GET ", 4);
    pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------------ loop helpers */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag becomes true (or for `ms` when flag is NULL); bounded. */
static bool run_until(uv_loop_t *loop, const bool *flag, int64_t ms)
{
    uv_timer_t tick;
    int64_t deadline = mono_ms() + ms;

    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, tick_cb, 5, 5);
    while ((!flag || !*flag) && mono_ms() < deadline)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return flag ? *flag : true;
}

struct env {
    uv_loop_t loop;
    struct fake_docker *fd;
    struct lc_docker_client *client;
    bool closed;
};

static void api_closed(void *arg)
{
    *(bool *)arg = true;
}

struct vres {
    bool done;
    int err;
    long status;
    char negotiated[16];
    char engine[64];
    char msg[256];
};

static void on_version(void *arg, const struct lc_docker_client_result *r,
                       const struct lc_docker_version *v)
{
    struct vres *x = arg;
    x->done = true;
    x->err = r->err;
    x->status = r->status;
    snprintf(x->msg, sizeof(x->msg), "%s", r->message);
    if (v) {
        snprintf(x->negotiated, sizeof(x->negotiated), "%s", v->negotiated);
        snprintf(x->engine, sizeof(x->engine), "%s", v->engine_version);
    }
}

static void env_open(struct env *e, const struct lc_docker_client_opts *o, bool negotiate)
{
    struct lc_docker_client_opts d = {0};

    memset(e, 0, sizeof(*e));
    assert_int_equal(uv_loop_init(&e->loop), 0);
    e->fd = fd_start();
    d = o ? *o : d;
    d.socket_path = e->fd->path;
    e->client = lc_docker_client_new(&e->loop, &d);
    assert_non_null(e->client);
    if (negotiate) {
        struct vres v = {0};
        assert_int_equal(lc_docker_client_negotiate(e->client, on_version, &v), 0);
        assert_true(run_until(&e->loop, &v.done, 5000));
        assert_int_equal(v.err, 0);
    }
}

/* Frees the client, checks the loop is left empty and the daemon saw only GETs. */
static void env_close(struct env *e)
{
    if (e->client)
        lc_docker_client_free(e->client, api_closed, &e->closed);
    assert_true(run_until(&e->loop, &e->closed, 5000));
    assert_int_equal(uv_run(&e->loop, UV_RUN_NOWAIT), 0); /* nothing of ours is left */
    fd_all_get(e->fd);
    /* every connection the client opened is closed again */
    int64_t deadline = mono_ms() + 2000;
    while (atomic_load(&e->fd->closed) < atomic_load(&e->fd->accepted) && mono_ms() < deadline)
        usleep(2000);
    assert_int_equal(atomic_load(&e->fd->closed), atomic_load(&e->fd->accepted));
    fd_stop(e->fd);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

/* ------------------------------------------------------------------ negotiation */

static void test_negotiate_versions(void **state)
{
    static const struct {
        const char *daemon;
        int err;
        const char *use;
    } rows[] = {
        {"1.41", 0, "1.41"},      {"1.43", 0, "1.43"},    {"1.45", 0, "1.43"},
        {"2.0", 0, "1.43"},       {"1.40", -ENOTSUP, ""}, {"1.24", -ENOTSUP, ""},
        {"garbage", -EPROTO, ""}, {"", -EPROTO, ""},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct env e;
        struct vres v = {0};

        env_open(&e, NULL, false);
        e.fd->api_version = rows[i].daemon;
        assert_null(lc_docker_client_version(e.client));
        assert_int_equal(lc_docker_client_negotiate(e.client, on_version, &v), 0);
        assert_true(run_until(&e.loop, &v.done, 5000));
        assert_int_equal(v.err, rows[i].err);
        if (rows[i].err == 0) {
            assert_string_equal(v.negotiated, rows[i].use);
            assert_string_equal(lc_docker_client_version(e.client), rows[i].use);
            assert_string_equal(v.engine, "20.10.24+dfsg1");
        } else {
            assert_null(lc_docker_client_version(e.client));
            assert_true(strlen(v.msg) > 0);
        }
        assert_true(fd_req_seen(e.fd, "GET /_ping"));
        env_close(&e);
    }
}

static void on_ping(void *arg, const struct lc_docker_client_result *r)
{
    struct vres *x = arg;
    x->done = true;
    x->err = r->err;
    snprintf(x->msg, sizeof(x->msg), "%s", r->message);
}

static void on_list(void *arg, const struct lc_docker_client_result *r,
                    const struct lc_docker_summary *c, size_t n);
static void on_inspect(void *arg, const struct lc_docker_client_result *r,
                       const struct lc_docker_inspect *c);
static void on_event(void *arg, const struct lc_docker_event *ev);
static void on_ev_end(void *arg, const struct lc_docker_client_result *r);

static void test_no_daemon(void **state)
{
    uv_loop_t loop;
    struct lc_docker_client_opts o = {.socket_path = "/tmp/lc-no-such-docker.sock"};
    struct lc_docker_client *client;
    struct vres v = {0}, p = {0};
    bool closed = false;
    struct lc_docker_client_stream *s = NULL;

    (void)state;
    uv_loop_init(&loop);
    client = lc_docker_client_new(&loop, &o);
    assert_non_null(client);
    /* nothing but ping/negotiate works before a negotiation */
    assert_int_equal(lc_docker_client_list(client, on_list, &v), -ENOTCONN);
    assert_int_equal(lc_docker_client_inspect(client, "abc", on_inspect, &v), -ENOTCONN);
    assert_int_equal(lc_docker_client_events(client, 0, on_event, on_ev_end, &v, &s), -ENOTCONN);
    assert_int_equal(lc_docker_client_negotiate(client, on_version, &v), 0);
    assert_int_equal(lc_docker_client_ping(client, on_ping, &p), 0);
    assert_true(run_until(&loop, &v.done, 5000));
    assert_true(run_until(&loop, &p.done, 5000));
    assert_int_equal(v.err, -ECONNREFUSED);
    assert_int_equal(p.err, -ECONNREFUSED);
    lc_docker_client_free(client, api_closed, &closed);
    assert_true(run_until(&loop, &closed, 5000));
    assert_int_equal(uv_loop_close(&loop), 0);

    /* a socket path that does not fit sun_path */
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    o.socket_path = longpath;
    uv_loop_init(&loop);
    assert_null(lc_docker_client_new(&loop, &o));
    assert_null(lc_docker_client_new(NULL, NULL));
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ------------------------------------------------------------------ list and inspect */

struct lres {
    bool done;
    int err;
    long status;
    size_t n;
    char ids[8][80];
    char names[8][80];
    size_t nlabels[8];
    char label0[80];
    char msg[256];
};

static void on_list(void *arg, const struct lc_docker_client_result *r,
                    const struct lc_docker_summary *c, size_t n)
{
    struct lres *x = arg;
    x->done = true;
    x->err = r->err;
    x->status = r->status;
    x->n = n;
    snprintf(x->msg, sizeof(x->msg), "%s", r->message);
    for (size_t i = 0; i < n && i < 8; i++) {
        snprintf(x->ids[i], 80, "%s", c[i].id);
        snprintf(x->names[i], 80, "%s", c[i].name);
        x->nlabels[i] = c[i].nlabels;
        if (i == 0 && c[i].nlabels)
            snprintf(x->label0, 80, "%s=%s", c[i].labels[0].key, c[i].labels[0].value);
    }
}

static void test_list(void **state)
{
    static const struct {
        const char *body;
        int err;
        size_t n;
    } rows[] = {
        {"[]", 0, 0},
        {"[{\"Id\":\"aaa\",\"Names\":[\"/one\"],\"Image\":\"busybox:lc\",\"State\":\"running\","
         "\"Labels\":{\"com.docker.compose.project\":\"p\"}},"
         "{\"Id\":\"bbb\",\"Names\":[\"/two\"],\"Labels\":{}},"
         "{\"Id\":\"ccc\"},"
         "{\"Names\":[\"/no-id-skipped\"]}]",
         0, 3},
        {"{\"message\":\"not a list\"}", -EPROTO, 0},
        {"[{\"Id\":", -EPROTO, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct env e;
        struct lres l = {0};

        env_open(&e, NULL, true);
        e.fd->list_body = rows[i].body;
        assert_int_equal(lc_docker_client_list(e.client, on_list, &l), 0);
        assert_true(run_until(&e.loop, &l.done, 5000));
        assert_int_equal(l.err, rows[i].err);
        assert_int_equal(l.n, rows[i].n);
        if (rows[i].n == 3) {
            assert_string_equal(l.ids[0], "aaa");
            assert_string_equal(l.names[0], "one");
            assert_string_equal(l.label0, "com.docker.compose.project=p");
            assert_string_equal(l.names[1], "two");
            assert_int_equal(l.nlabels[1], 0);
            assert_string_equal(l.names[2], "");
        }
        assert_true(fd_req_seen(e.fd, "GET /v1.41/containers/json"));
        env_close(&e);
    }
}

static void test_list_body_cap(void **state)
{
    struct env e;
    struct lc_docker_client_opts o = {.max_body_bytes = 160}; /* /version fits, the list not */
    struct lres l = {0};

    (void)state;
    env_open(&e, &o, true);
    e.fd->list_body =
        "[{\"Id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"},"
        "{\"Id\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"},"
        "{\"Id\":\"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\"}]";
    assert_int_equal(lc_docker_client_list(e.client, on_list, &l), 0);
    assert_true(run_until(&e.loop, &l.done, 5000));
    assert_int_equal(l.err, -E2BIG);
    env_close(&e);
}

struct ires {
    bool done;
    int calls;
    int err;
    long status;
    char msg[256];
    char id[80], name[80], image[80], log_path[120], driver[40], state[40];
    bool tty, running;
    int64_t started, finished;
    size_t nlabels;
};

static void on_inspect(void *arg, const struct lc_docker_client_result *r,
                       const struct lc_docker_inspect *c)
{
    struct ires *x = arg;
    x->done = true;
    x->calls++;
    x->err = r->err;
    x->status = r->status;
    snprintf(x->msg, sizeof(x->msg), "%s", r->message);
    if (c) {
        snprintf(x->id, 80, "%s", c->id);
        snprintf(x->name, 80, "%s", c->name);
        snprintf(x->image, 80, "%s", c->image);
        snprintf(x->log_path, 120, "%s", c->log_path);
        snprintf(x->driver, 40, "%s", c->log_driver);
        snprintf(x->state, 40, "%s", c->state);
        x->tty = c->tty;
        x->running = c->running;
        x->started = c->started_ns;
        x->finished = c->finished_ns;
        x->nlabels = c->nlabels;
    }
}

static const char inspect_json[] =
    "{\"Id\":\"0123abcd\",\"Name\":\"/web-1\",\"Image\":\"sha256:feed\","
    "\"LogPath\":\"/var/lib/docker/containers/0123abcd/0123abcd-json.log\","
    "\"State\":{\"Status\":\"running\",\"Running\":true,"
    "\"StartedAt\":\"2024-05-01T10:00:00.123456789Z\",\"FinishedAt\":\"0001-01-01T00:00:00Z\"},"
    "\"Config\":{\"Image\":\"busybox:lc\",\"Tty\":true,\"Labels\":{\"a\":\"1\",\"b\":\"2\","
    "\"n\":3}},"
    "\"HostConfig\":{\"LogConfig\":{\"Type\":\"json-file\",\"Config\":{}}}}";

static void test_inspect(void **state)
{
    struct env e;
    struct ires r = {0}, m = {0}, bad = {0};

    (void)state;
    env_open(&e, NULL, true);
    e.fd->inspect_body = inspect_json;
    assert_int_equal(lc_docker_client_inspect(e.client, "0123abcd", on_inspect, &r), 0);
    assert_int_equal(lc_docker_client_inspect(e.client, "missing", on_inspect, &m), 0);
    assert_true(run_until(&e.loop, &r.done, 5000));
    assert_true(run_until(&e.loop, &m.done, 5000));
    assert_int_equal(r.err, 0);
    assert_string_equal(r.id, "0123abcd");
    assert_string_equal(r.name, "web-1");
    assert_string_equal(r.image, "busybox:lc");
    assert_string_equal(r.driver, "json-file");
    assert_string_equal(r.state, "running");
    assert_string_equal(r.log_path, "/var/lib/docker/containers/0123abcd/0123abcd-json.log");
    assert_true(r.tty);
    assert_true(r.running);
    assert_int_equal(r.started, 1714557600123456789LL);
    assert_int_equal(r.finished, 0);
    assert_int_equal(r.nlabels, 2); /* the non-string label value is skipped */
    assert_int_equal(m.err, -ENOENT);
    assert_int_equal(m.status, 404);
    assert_string_equal(m.msg, "No such container: missing");

    /* ids that must never reach a URL */
    static const char *const bad_ids[] = {"", "a/b", "../../x", "a?b", "a b", "%2e", "a#b"};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++)
        assert_int_equal(lc_docker_client_inspect(e.client, bad_ids[i], on_inspect, &bad), -EINVAL);
    assert_int_equal(lc_docker_client_inspect(e.client, NULL, on_inspect, &bad), -EINVAL);
    run_until(&e.loop, NULL, 20);
    assert_int_equal(bad.calls, 0);

    /* malformed bodies */
    e.fd->inspect_body = "{\"Name\":\"/no-id\"}";
    struct ires p = {0};
    assert_int_equal(lc_docker_client_inspect(e.client, "x", on_inspect, &p), 0);
    assert_true(run_until(&e.loop, &p.done, 5000));
    assert_int_equal(p.err, -EPROTO);
    env_close(&e);
}

/* Chains `left` inspects one after another from each callback. */
struct chain {
    struct lc_docker_client *client;
    const char *id;
    int left;
    int errors;
    bool done;
};

static void on_chain(void *arg, const struct lc_docker_client_result *r,
                     const struct lc_docker_inspect *c)
{
    struct chain *ch = arg;
    (void)c;
    if (r->err && ch->errors++ == 0)
        printf("inspect failed: %d %ld %s\n", r->err, r->status, r->message);
    if (--ch->left == 0 || lc_docker_client_inspect(ch->client, ch->id, on_chain, ch) != 0)
        ch->done = true;
}

static void test_keepalive_pool(void **state)
{
    struct env e;
    struct chain ch;
    struct lc_docker_client_stats st;
    struct lc_docker_client_opts o = {.max_pool_conns = 2};

    (void)state;
    env_open(&e, &o, true); /* negotiation: ping + version on one connection */
    e.fd->inspect_body = inspect_json;
    ch = (struct chain){e.client, "0123abcd", 1000, 0, false};
    assert_int_equal(lc_docker_client_inspect(e.client, "0123abcd", on_chain, &ch), 0);
    assert_true(run_until(&e.loop, &ch.done, 30000));
    assert_int_equal(ch.left, 0);
    assert_int_equal(ch.errors, 0);
    assert_int_equal(atomic_load(&e.fd->accepted), 1); /* 1002 requests, one connection */
    lc_docker_client_get_stats(e.client, &st);
    assert_int_equal(st.requests, 1002);
    assert_int_equal(st.conns_new, 1);
    assert_int_equal(st.conns_reused, 1001);
    assert_int_equal(st.pending, 0);

    /* 50 at once: never more than max_pool_conns connections */
    struct ires r[50];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 50; i++)
        assert_int_equal(lc_docker_client_inspect(e.client, "0123abcd", on_inspect, &r[i]), 0);
    assert_true(run_until(&e.loop, &r[49].done, 10000));
    for (int i = 0; i < 50; i++)
        assert_true(run_until(&e.loop, &r[i].done, 5000));
    assert_true(atomic_load(&e.fd->accepted) <= 2);
    env_close(&e);
}

static void test_cancel_and_bounds(void **state)
{
    struct env e;
    struct lc_docker_client_opts o = {.max_pending = 3};
    struct ires a = {0}, b = {0}, c = {0}, d = {0};

    (void)state;
    env_open(&e, &o, true);
    e.fd->inspect_body = inspect_json;
    assert_int_equal(lc_docker_client_inspect(e.client, "x1", on_inspect, &a), 0);
    assert_int_equal(lc_docker_client_inspect(e.client, "x2", on_inspect, &b), 0);
    assert_int_equal(lc_docker_client_inspect(e.client, "x3", on_inspect, &a), 0);
    assert_int_equal(lc_docker_client_inspect(e.client, "x4", on_inspect, &c), -EBUSY);
    assert_int_equal(lc_docker_client_cancel(e.client, &a), 2);
    assert_int_equal(lc_docker_client_cancel(e.client, &a), 0);
    assert_int_equal(lc_docker_client_inspect(e.client, "x4", on_inspect, &c), 0);
    assert_true(run_until(&e.loop, &b.done, 5000));
    assert_true(run_until(&e.loop, &c.done, 5000));
    run_until(&e.loop, NULL, 50);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 1);
    assert_int_equal(c.calls, 1);

    /* freed with requests in flight: no callback ever */
    assert_int_equal(lc_docker_client_inspect(e.client, "x5", on_inspect, &d), 0);
    lc_docker_client_free(e.client, api_closed, &e.closed);
    e.client = NULL;
    env_close(&e);
    assert_int_equal(d.calls, 0);
}

/* ------------------------------------------------------------------ events */

struct evres {
    int n;
    char actions[16][40];
    char ids[16][80];
    char names[16][40];
    char old_names[16][40];
    int64_t times[16];
    size_t nattrs[16];
    bool ended;
    int end_err;
    struct lc_docker_client_stream *close_on_first; /* closes this stream inside on_event */
    struct lc_docker_client *free_on_first;
};

static void on_event(void *arg, const struct lc_docker_event *ev)
{
    struct evres *x = arg;
    if (x->n < 16) {
        snprintf(x->actions[x->n], 40, "%s", ev->action);
        snprintf(x->ids[x->n], 80, "%s", ev->id);
        snprintf(x->names[x->n], 40, "%s", ev->name);
        snprintf(x->old_names[x->n], 40, "%s", ev->old_name);
        x->times[x->n] = ev->time_ns;
        x->nattrs[x->n] = ev->nattributes;
    }
    x->n++;
    if (x->close_on_first) {
        lc_docker_client_stream_close(x->close_on_first);
        x->close_on_first = NULL;
    }
    if (x->free_on_first) {
        lc_docker_client_free(x->free_on_first, NULL, NULL);
        x->free_on_first = NULL;
    }
}

static void on_ev_end(void *arg, const struct lc_docker_client_result *r)
{
    struct evres *x = arg;
    x->ended = true;
    x->end_err = r->err;
}

static char big_event[600];
static char events_script[4096];

static void build_events(void)
{
    memset(big_event, 'x', sizeof(big_event) - 2);
    big_event[sizeof(big_event) - 2] = '\n';
    big_event[sizeof(big_event) - 1] = '\0';
    snprintf(
        events_script, sizeof(events_script), "%s%s%s%s%s%s",
        "{\"status\":\"start\",\"id\":\"c1\",\"Type\":\"container\",\"Action\":\"start\","
        "\"Actor\":{\"ID\":\"c1\",\"Attributes\":{\"image\":\"busybox:lc\",\"name\":\"one\","
        "\"com.docker.compose.service\":\"web\"}},\"scope\":\"local\",\"time\":1700000000,"
        "\"timeNano\":1700000000123456789}\n",
        "not json at all\n", big_event,
        "{\"Type\":\"container\",\"Action\":\"rename\",\"Actor\":{\"ID\":\"c1\","
        "\"Attributes\":{\"name\":\"uno\",\"oldName\":\"/one\"}},\"timeNano\":1700000001000000000}"
        "\r\n",
        "{\"status\":\"die\",\"id\":\"c2\",\"time\":1700000002}\n",
        "{\"Type\":\"container\",\"Action\":\"destroy\",\"Actor\":{\"ID\":\"c1\"},"
        "\"timeNano\":1700000003000000000}\n");
}

static void test_events_stream(void **state)
{
    static const size_t chunks[] = {1, 7, 64, 4096};
    (void)state;
    build_events();
    for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
        struct env e;
        struct lc_docker_client_opts o = {.max_event_bytes = 512};
        struct evres x = {0};
        struct lc_docker_client_stream *s = NULL;
        struct lc_docker_client_stats st;

        env_open(&e, &o, true);
        e.fd->events_data = events_script;
        e.fd->events_chunk = chunks[k];
        e.fd->events_end = FD_END_CLEAN;
        assert_int_equal(
            lc_docker_client_events(e.client, 1700000000000000001LL, on_event, on_ev_end, &x, &s),
            0);
        assert_true(run_until(&e.loop, &x.ended, 10000));
        assert_int_equal(x.end_err, 0);
        assert_int_equal(x.n, 4);
        assert_string_equal(x.actions[0], "start");
        assert_string_equal(x.ids[0], "c1");
        assert_string_equal(x.names[0], "one");
        assert_int_equal(x.times[0], 1700000000123456789LL);
        assert_int_equal(x.nattrs[0], 3);
        assert_string_equal(x.actions[1], "rename");
        assert_string_equal(x.names[1], "uno");
        assert_string_equal(x.old_names[1], "/one");
        assert_string_equal(x.actions[2], "die"); /* old-style fields only */
        assert_string_equal(x.ids[2], "c2");
        assert_int_equal(x.times[2], 1700000002000000000LL);
        assert_string_equal(x.actions[3], "destroy");
        lc_docker_client_get_stats(e.client, &st);
        assert_int_equal(st.events, 4);
        assert_int_equal(st.events_skipped, 2); /* the garbage line and the oversized one */
        assert_int_equal(st.streams_open, 0);
        assert_true(fd_req_exact(e.fd, "GET /v1.41/events?filters=%7B%22type%22%3A%5B%22container"
                                       "%22%5D%7D&since=1700000000.000000001"));
        env_close(&e);
    }
}

static void test_events_cut_and_close(void **state)
{
    struct env e;
    struct evres x = {0}, y = {0};
    struct lc_docker_client_stream *s = NULL, *s2 = NULL;
    struct lc_docker_client_stats st;

    (void)state;
    build_events();
    env_open(&e, NULL, true);
    /* the daemon dies mid-stream */
    e.fd->events_data = events_script;
    e.fd->events_chunk = 4096;
    e.fd->events_end = FD_END_CUT;
    assert_int_equal(lc_docker_client_events(e.client, 0, on_event, on_ev_end, &x, &s), 0);
    assert_true(run_until(&e.loop, &x.ended, 5000));
    assert_int_equal(x.end_err, -ECONNRESET);
    assert_int_equal(x.n, 4);
    assert_true(fd_req_exact(e.fd, "GET /v1.41/events?filters=%7B%22type%22%3A%5B%22container"
                                   "%22%5D%7D"));

    /* a stream that stays open, closed from inside its own callback: no on_end */
    e.fd->events_end = FD_END_OPEN;
    assert_int_equal(lc_docker_client_events(e.client, 0, on_event, on_ev_end, &y, &s2), 0);
    y.close_on_first = s2;
    run_until(&e.loop, NULL, 200);
    assert_int_equal(y.n, 1); /* closed after the first event: the rest are not delivered */
    assert_false(y.ended);
    lc_docker_client_get_stats(e.client, &st);
    assert_int_equal(st.streams_open, 0);
    assert_int_equal(st.streams_started, 2);
    env_close(&e);
}

static void test_free_inside_event_callback(void **state)
{
    struct env e;
    struct evres x = {0};
    struct lc_docker_client_stream *s = NULL;
    struct ires pending = {0};

    (void)state;
    build_events();
    env_open(&e, NULL, true);
    e.fd->events_data = events_script;
    e.fd->events_end = FD_END_OPEN;
    e.fd->inspect_body = inspect_json;
    assert_int_equal(lc_docker_client_events(e.client, 0, on_event, on_ev_end, &x, &s), 0);
    x.free_on_first = e.client;
    assert_int_equal(lc_docker_client_inspect(e.client, "zz", on_inspect, &pending), 0);
    /* the free happens inside on_event; the loop must drain to nothing */
    int64_t deadline = mono_ms() + 5000;
    while (uv_run(&e.loop, UV_RUN_NOWAIT) != 0 && mono_ms() < deadline)
        usleep(1000);
    assert_int_equal(x.n, 1);
    assert_false(x.ended);
    e.client = NULL;
    e.closed = true;
    env_close(&e);
}

/* ------------------------------------------------------------------ logs */

struct lgres {
    struct lc_docker_client *client;
    struct lc_docker_client_stream *s;
    unsigned char *got;
    size_t len, cap;
    int calls;
    bool ended;
    int end_err;
    long status;
    char msg[256];
    size_t pause_at; /* return LC_DOCKER_CLIENT_PAUSE once len reaches this (0: never) */
    bool paused_now;
    size_t stop_at;  /* return -ECANCELED once len reaches this (0: never) */
    bool close_self; /* close the stream from inside on_data, once */
};

static int on_logs(void *arg, const char *data, size_t len)
{
    struct lgres *x = arg;
    x->calls++;
    if (x->close_self) {
        x->close_self = false;
        lc_docker_client_stream_close(x->s);
        return 0;
    }
    if (x->pause_at && x->len >= x->pause_at && !x->paused_now) {
        x->paused_now = true;
        return LC_DOCKER_CLIENT_PAUSE; /* nothing consumed */
    }
    if (x->stop_at && x->len >= x->stop_at)
        return -ECANCELED;
    if (x->len + len > x->cap) {
        x->cap = (x->len + len) * 2;
        x->got = realloc(x->got, x->cap);
        assert_non_null(x->got);
    }
    memcpy(x->got + x->len, data, len);
    x->len += len;
    return 0;
}

static void on_logs_end(void *arg, const struct lc_docker_client_result *r)
{
    struct lgres *x = arg;
    x->ended = true;
    x->end_err = r->err;
    x->status = r->status;
    snprintf(x->msg, sizeof(x->msg), "%s", r->message);
}

static unsigned char *pattern(size_t n)
{
    unsigned char *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)((i * 31u + i / 7u) & 0xffu);
    return p;
}

static void test_logs_stream(void **state)
{
    static const struct {
        size_t len, chunk;
        enum fd_end end;
        int err;
    } rows[] = {
        {0, 0, FD_END_CLEAN, 0},
        {1, 1, FD_END_CLEAN, 0},
        {100000, 1000, FD_END_CLEAN, 0},
        {300000, 65536, FD_END_CLEAN, 0},
        {5000, 999, FD_END_CUT, -ECONNRESET},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct env e;
        struct lgres x = {0};
        struct lc_docker_client_logs_opts lo = {.since_ns = 1700000000000000001LL, .follow = true};
        unsigned char *data = pattern(rows[i].len + 1);

        env_open(&e, NULL, true);
        e.fd->logs_data = (const char *)data;
        e.fd->logs_len = rows[i].len;
        e.fd->logs_chunk = rows[i].chunk;
        e.fd->logs_end = rows[i].end;
        assert_int_equal(
            lc_docker_client_logs(e.client, "abc123", &lo, on_logs, on_logs_end, &x, &x.s), 0);
        assert_true(run_until(&e.loop, &x.ended, 20000));
        assert_int_equal(x.end_err, rows[i].err);
        if (rows[i].end == FD_END_CUT)
            assert_int_equal(x.len, rows[i].len + 3); /* the 3 bytes of the cut chunk too */
        else
            assert_int_equal(x.len, rows[i].len);
        if (rows[i].len)
            assert_memory_equal(x.got, data, rows[i].len);
        assert_true(fd_req_exact(e.fd, "GET /v1.41/containers/abc123/logs?stdout=1&stderr=1&"
                                       "timestamps=1&follow=1&since=1700000000.000000001"));
        env_close(&e);
        free(x.got);
        free(data);
    }
}

static void test_logs_errors(void **state)
{
    struct env e;
    struct lgres m = {0}, n = {0}, u = {0}, bad = {0};
    struct lc_docker_client_stream *s;
    struct lc_docker_client_logs_opts lo = {.since_ns = 0, .follow = false};
    unsigned char *data = pattern(50000);

    (void)state;
    env_open(&e, NULL, true);
    assert_int_equal(lc_docker_client_logs(e.client, "missing", &lo, on_logs, on_logs_end, &m, &s),
                     0);
    assert_int_equal(lc_docker_client_logs(e.client, "nolog", NULL, on_logs, on_logs_end, &n, &s),
                     0);
    assert_true(run_until(&e.loop, &m.ended, 5000));
    assert_true(run_until(&e.loop, &n.ended, 5000));
    assert_int_equal(m.end_err, -ENOENT);
    assert_int_equal(m.status, 404);
    assert_string_equal(m.msg, "No such container: missing");
    assert_int_equal(m.calls, 0); /* an error body is not log data */
    assert_int_equal(n.end_err, -ENOTSUP);
    assert_true(fd_req_exact(e.fd, "GET /v1.41/containers/missing/logs?stdout=1&stderr=1&"
                                   "timestamps=1"));
    assert_int_equal(
        lc_docker_client_logs(e.client, "../etc", NULL, on_logs, on_logs_end, &bad, &s), -EINVAL);

    /* the consumer stops the stream with an error */
    e.fd->logs_data = (const char *)data;
    e.fd->logs_len = 50000;
    e.fd->logs_chunk = 1000;
    e.fd->logs_end = FD_END_OPEN;
    u.stop_at = 3000;
    assert_int_equal(lc_docker_client_logs(e.client, "abc", NULL, on_logs, on_logs_end, &u, &u.s),
                     0);
    assert_true(run_until(&e.loop, &u.ended, 5000));
    assert_int_equal(u.end_err, -ECANCELED);
    assert_true(u.len >= 3000 && u.len < 50000);
    env_close(&e);
    free(u.got);
    free(data);
}

static void test_logs_backpressure(void **state)
{
    struct env e;
    struct lgres x = {0};
    struct lc_docker_client_logs_opts lo = {.follow = true};
    const size_t total = 4u << 20;
    unsigned char *data = pattern(total);
    struct lc_docker_client_stats st;

    (void)state;
    env_open(&e, NULL, true);
    e.fd->logs_data = (const char *)data;
    e.fd->logs_len = total;
    e.fd->logs_chunk = 16384;
    e.fd->logs_end = FD_END_CLEAN;
    x.pause_at = 100000; /* on_data pauses once it got 100 kB */
    assert_int_equal(lc_docker_client_logs(e.client, "abc", &lo, on_logs, on_logs_end, &x, &x.s),
                     0);
    assert_true(run_until(&e.loop, &x.paused_now, 10000));
    assert_true(lc_docker_client_stream_paused(x.s));
    size_t at_pause = x.len;
    int calls_at_pause = x.calls;
    run_until(&e.loop, NULL, 200);
    assert_int_equal(x.len, at_pause); /* paused: nothing delivered */
    assert_int_equal(x.calls, calls_at_pause);
    assert_false(x.ended);

    /* resume, then pause again from outside a callback, then resume for good */
    lc_docker_client_stream_resume(x.s);
    assert_false(lc_docker_client_stream_paused(x.s));
    int64_t deadline = mono_ms() + 5000;
    while (x.len < at_pause + 200000 && mono_ms() < deadline)
        uv_run(&e.loop, UV_RUN_ONCE);
    lc_docker_client_stream_pause(x.s);
    lc_docker_client_stream_pause(x.s); /* idempotent */
    size_t at_pause2 = x.len;
    run_until(&e.loop, NULL, 200);
    assert_true(x.len - at_pause2 <= 64 * 1024); /* at most what curl had already read */
    size_t held = x.len;
    run_until(&e.loop, NULL, 100);
    assert_int_equal(x.len, held);
    lc_docker_client_stream_resume(x.s);
    assert_true(run_until(&e.loop, &x.ended, 20000));
    assert_int_equal(x.end_err, 0);
    assert_int_equal(x.len, total);
    assert_memory_equal(x.got, data, total);
    lc_docker_client_get_stats(e.client, &st);
    assert_int_equal(st.stream_bytes, total);
    env_close(&e);
    free(x.got);
    free(data);
}

static void test_streams_bound_close_and_free(void **state)
{
    struct env e;
    struct lc_docker_client_opts o = {.max_streams = 3};
    struct lgres x[4];
    struct lc_docker_client_stats st;
    unsigned char *data = pattern(10000);

    (void)state;
    memset(x, 0, sizeof(x));
    env_open(&e, &o, true);
    e.fd->logs_data = (const char *)data;
    e.fd->logs_len = 10000;
    e.fd->logs_chunk = 100;
    e.fd->logs_end = FD_END_OPEN;
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            lc_docker_client_logs(e.client, "abc", NULL, on_logs, on_logs_end, &x[i], &x[i].s), 0);
    assert_int_equal(
        lc_docker_client_logs(e.client, "abc", NULL, on_logs, on_logs_end, &x[3], &x[3].s), -EBUSY);
    x[1].close_self = true;
    int64_t deadline = mono_ms() + 5000;
    while ((x[0].len < 10000 || x[2].len < 10000) && mono_ms() < deadline)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(x[0].len, 10000);
    assert_int_equal(x[2].len, 10000);
    assert_int_equal(x[1].len, 0);
    assert_int_equal(x[1].calls, 1);
    run_until(&e.loop, NULL, 20);
    lc_docker_client_get_stats(e.client, &st);
    assert_int_equal(st.streams_open, 2);
    assert_int_equal(
        lc_docker_client_logs(e.client, "abc", NULL, on_logs, on_logs_end, &x[3], &x[3].s), 0);
    lc_docker_client_stream_close(x[0].s); /* from outside any callback: released at once */
    lc_docker_client_stream_close(NULL);
    lc_docker_client_get_stats(e.client, &st);
    assert_int_equal(st.streams_open, 2);
    /* free with two open streams: no on_end, every connection closed (env_close checks) */
    env_close(&e);
    for (int i = 0; i < 4; i++)
        assert_false(x[i].ended);
    free(data);
    for (int i = 0; i < 4; i++)
        free(x[i].got);
}

/* ------------------------------------------------------------------ a real daemon (optional) */

/*
 * With LC_TEST_DOCKER_SOCK set (tests/integration/test_docker_harness.py does
 * it with its private engine, and a running container LC_TEST_DOCKER_CID that
 * printed lines), the same client talks to the real dockerd.
 */
static void test_real_daemon(void **state)
{
    const char *sock = getenv("LC_TEST_DOCKER_SOCK");
    const char *cid = getenv("LC_TEST_DOCKER_CID");
    uv_loop_t loop;
    struct lc_docker_client_opts o = {0};
    struct lc_docker_client *client;
    struct vres v = {0};
    struct lres l = {0};
    struct ires r = {0};
    struct lgres x = {0};
    bool closed = false;
    struct lc_docker_client_stats st;

    (void)state;
    if (!sock || !cid) {
        skip();
        return;
    }
    uv_loop_init(&loop);
    o.socket_path = sock;
    client = lc_docker_client_new(&loop, &o);
    assert_non_null(client);
    assert_int_equal(lc_docker_client_negotiate(client, on_version, &v), 0);
    assert_true(run_until(&loop, &v.done, 10000));
    assert_int_equal(v.err, 0);
    assert_string_equal(v.negotiated, "1.41");
    assert_int_equal(lc_docker_client_list(client, on_list, &l), 0);
    assert_true(run_until(&loop, &l.done, 10000));
    assert_int_equal(l.err, 0);
    assert_true(l.n >= 1);
    assert_int_equal(lc_docker_client_inspect(client, cid, on_inspect, &r), 0);
    assert_true(run_until(&loop, &r.done, 10000));
    assert_int_equal(r.err, 0);
    assert_string_equal(r.driver, "json-file");
    struct lc_docker_client_logs_opts lo = {.follow = false};
    assert_int_equal(lc_docker_client_logs(client, cid, &lo, on_logs, on_logs_end, &x, &x.s), 0);
    assert_true(run_until(&loop, &x.ended, 10000));
    assert_int_equal(x.end_err, 0);
    assert_true(x.len > 8);
    assert_true(x.got[0] == 1 || x.got[0] == 2); /* a multiplexed frame header */
    /* 1000 inspects, one after another: connections opened */
    struct chain ch = {client, cid, 1000, 0, false};
    lc_docker_client_get_stats(client, &st);
    uint64_t before = st.conns_new;
    assert_int_equal(lc_docker_client_inspect(client, cid, on_chain, &ch), 0);
    assert_true(run_until(&loop, &ch.done, 60000));
    assert_int_equal(ch.errors, 0);
    lc_docker_client_get_stats(client, &st);
    printf("real daemon: 1000 inspects opened %" PRIu64 " connection(s), reused %" PRIu64 "\n",
           st.conns_new - before, st.conns_reused);
    assert_true(st.conns_new - before <= 1);

    /* A container that logs for a while and exits: its followed stream ends with 0,
     * and /events reports its die (LC_TEST_DOCKER_SHORT_CID, about 2 s to live). */
    const char *short_cid = getenv("LC_TEST_DOCKER_SHORT_CID");
    if (short_cid) {
        struct lgres f = {0};
        struct evres ev = {0};
        struct lc_docker_client_stream *es = NULL;
        struct lc_docker_client_logs_opts fo = {.follow = true};
        assert_int_equal(lc_docker_client_events(client, 0, on_event, on_ev_end, &ev, &es), 0);
        assert_int_equal(
            lc_docker_client_logs(client, short_cid, &fo, on_logs, on_logs_end, &f, &f.s), 0);
        assert_true(run_until(&loop, &f.ended, 30000));
        assert_int_equal(f.end_err, 0);
        assert_true(f.len > 8);
        int64_t deadline = mono_ms() + 10000;
        bool died = false;
        while (!died && mono_ms() < deadline) {
            uv_run(&loop, UV_RUN_ONCE);
            for (int i = 0; i < ev.n && i < 16; i++)
                died |= strcmp(ev.actions[i], "die") == 0 && strcmp(ev.ids[i], short_cid) == 0;
        }
        assert_true(died);
        assert_false(ev.ended);
        lc_docker_client_stream_close(es);
        free(f.got);
    }
    lc_docker_client_get_stats(client, &st);
    assert_int_equal(st.streams_open, 0);
    lc_docker_client_free(client, api_closed, &closed);
    assert_true(run_until(&loop, &closed, 5000));
    assert_int_equal(uv_loop_close(&loop), 0);
    free(x.got);
}

int main(void)
{
    /* The fake daemon writes to connections the client may have closed (a cut stream,
     * a shutdown): EPIPE is handled there, the signal would end the test run. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiate_versions),
        cmocka_unit_test(test_no_daemon),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_list_body_cap),
        cmocka_unit_test(test_inspect),
        cmocka_unit_test(test_keepalive_pool),
        cmocka_unit_test(test_cancel_and_bounds),
        cmocka_unit_test(test_events_stream),
        cmocka_unit_test(test_events_cut_and_close),
        cmocka_unit_test(test_free_inside_event_callback),
        cmocka_unit_test(test_logs_stream),
        cmocka_unit_test(test_logs_errors),
        cmocka_unit_test(test_logs_backpressure),
        cmocka_unit_test(test_streams_bound_close_and_free),
        cmocka_unit_test(test_real_daemon),
    };
    srandom((unsigned)getpid());
    if (getenv("LC_TEST_FILTER")) /* e.g. test_real_daemon */
        cmocka_set_test_filter(getenv("LC_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
