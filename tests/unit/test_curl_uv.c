/* SPDX-License-Identifier: MIT */
/* test_curl_uv.c: libcurl multi on libuv: keep-alive reuse, limits, aborts, clean close. */
#include "core/curl_uv.h"

#include "lc_test_http.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

struct ctx {
    uv_loop_t loop;
    uv_timer_t guard;
    struct lc_curl *curl;
    struct lc_test_http srv;
    char url[128];
    int todo; /* requests still to start sequentially */
    int done; /* callbacks run */
    int ok2xx;
    int errors;
    CURLcode last;
    bool free_in_cb;
    int closed;
    bool timed_out;
};

static size_t discard(char *p, size_t sz, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return sz * n;
}

static CURL *mk_easy(const char *url)
{
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "hello");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    return e;
}

static void on_closed(void *arg)
{
    struct ctx *c = arg;
    c->closed++;
}

static void on_guard(uv_timer_t *t)
{
    struct ctx *c = t->data;
    c->timed_out = true;
    uv_stop(t->loop);
}

static void on_done(CURL *easy, CURLcode res, void *arg)
{
    struct ctx *c = arg;
    long code = 0;

    c->done++;
    c->last = res;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    if (res == CURLE_OK && code / 100 == 2)
        c->ok2xx++;
    else
        c->errors++;
    if (c->free_in_cb) {
        curl_easy_cleanup(easy);
        lc_curl_free(c->curl, on_closed, c);
        c->curl = NULL;
        return;
    }
    if (c->todo > 0) {
        c->todo--;
        assert_int_equal(lc_curl_add(c->curl, easy, on_done, c), 0);
        return;
    }
    curl_easy_cleanup(easy);
    if (lc_curl_running(c->curl) == 0)
        uv_stop(&c->loop);
}

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    assert_int_equal(uv_loop_init(&c->loop), 0);
    assert_int_equal(uv_timer_init(&c->loop, &c->guard), 0);
    c->guard.data = c;
    uv_timer_start(&c->guard, on_guard, 10000, 0); /* safety bound, not a pass criterion */
    uv_unref((uv_handle_t *)&c->guard);
    assert_int_equal(lc_test_http_start(&c->srv), 0);
    snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%d/loki/api/v1/push", c->srv.port);
    *state = c;
    return 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    uv_timer_stop(&c->guard);
    uv_close((uv_handle_t *)&c->guard, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&c->loop) != 0) {
        uv_walk(&c->loop, close_walk, NULL);
        uv_run(&c->loop, UV_RUN_DEFAULT);
        uv_loop_close(&c->loop);
        fail_msg("uv handles left open");
    }
    lc_test_http_stop(&c->srv);
    free(c);
    return 0;
}

/* Frees the lc_curl and checks every uv handle it made is closed. */
static void free_and_check(struct ctx *c)
{
    lc_curl_free(c->curl, on_closed, c);
    c->curl = NULL;
    uv_timer_stop(&c->guard);
    uv_close((uv_handle_t *)&c->guard, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(c->closed, 1);
    assert_int_equal(uv_loop_close(&c->loop), 0);
    /* teardown must not close the guard again */
    assert_int_equal(uv_loop_init(&c->loop), 0);
    assert_int_equal(uv_timer_init(&c->loop, &c->guard), 0);
}

static void test_sequential_reuse(void **state)
{
    struct ctx *c = *state;
    const int n = 25;

    c->curl = lc_curl_new(&c->loop, 4, 0);
    assert_non_null(c->curl);
    c->todo = n - 1;
    assert_int_equal(lc_curl_add(c->curl, mk_easy(c->url), on_done, c), 0);
    assert_int_equal(lc_curl_running(c->curl), 1);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_false(c->timed_out);
    assert_int_equal(c->done, n);
    assert_int_equal(c->ok2xx, n);
    assert_int_equal(atomic_load(&c->srv.accepted), 1);
    assert_int_equal(atomic_load(&c->srv.nreq), n);
    unsigned long opened, reused;
    lc_curl_conn_stats(c->curl, &opened, &reused);
    assert_int_equal(opened, 1);
    assert_int_equal(reused, n - 1);
    free_and_check(c);
}

static void test_max_total_connections(void **state)
{
    struct ctx *c = *state;
    const int n = 12;

    c->curl = lc_curl_new(&c->loop, 2, 0);
    assert_non_null(c->curl);
    for (int i = 0; i < n; i++)
        assert_int_equal(lc_curl_add(c->curl, mk_easy(c->url), on_done, c), 0);
    assert_int_equal(lc_curl_running(c->curl), n);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_false(c->timed_out);
    assert_int_equal(c->ok2xx, n);
    assert_true(atomic_load(&c->srv.accepted) <= 2);
    unsigned long opened, reused;
    lc_curl_conn_stats(c->curl, &opened, &reused);
    assert_true(opened <= 2);
    assert_int_equal(opened + reused, n);
    free_and_check(c);
}

static void test_connection_refused(void **state)
{
    struct ctx *c = *state;
    /* a port that was just bound and closed: nothing listens there */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(sa.sin_port));

    c->curl = lc_curl_new(&c->loop, 0, 0);
    assert_int_equal(lc_curl_add(c->curl, mk_easy(url), on_done, c), 0);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(c->done, 1);
    assert_int_equal(c->errors, 1);
    assert_int_equal(c->last, CURLE_COULDNT_CONNECT);
    free_and_check(c);
}

static void on_done_never(CURL *easy, CURLcode res, void *arg)
{
    (void)easy;
    (void)res;
    (void)arg;
    fail_msg("callback of an aborted transfer ran");
}

static void stop_loop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* A server that accepts (backlog) but never answers: transfers stay in flight. */
static void test_free_with_transfers_in_flight(void **state)
{
    struct ctx *c = *state;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 16), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(sa.sin_port));

    c->curl = lc_curl_new(&c->loop, 0, 0);
    CURL *e[3];
    for (int i = 0; i < 3; i++) {
        e[i] = mk_easy(url);
        assert_int_equal(lc_curl_add(c->curl, e[i], on_done_never, c), 0);
    }
    /* let the transfers connect and send, so poll handles exist */
    uv_timer_t t;
    uv_timer_init(&c->loop, &t);
    uv_timer_start(&t, stop_loop, 100, 0);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    assert_int_equal(lc_curl_running(c->curl), 3);
    lc_curl_remove(c->curl, e[0]);
    assert_int_equal(lc_curl_running(c->curl), 2);
    free_and_check(c);
    for (int i = 0; i < 3; i++)
        curl_easy_cleanup(e[i]);
    close(lfd);
}

static void test_free_inside_callback(void **state)
{
    struct ctx *c = *state;

    c->curl = lc_curl_new(&c->loop, 0, 0);
    c->free_in_cb = true;
    assert_int_equal(lc_curl_add(c->curl, mk_easy(c->url), on_done, c), 0);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_false(c->timed_out);
    uv_timer_stop(&c->guard);
    uv_close((uv_handle_t *)&c->guard, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(c->done, 1);
    assert_int_equal(c->closed, 1);
    assert_int_equal(uv_loop_close(&c->loop), 0);
    assert_int_equal(uv_loop_init(&c->loop), 0);
    assert_int_equal(uv_timer_init(&c->loop, &c->guard), 0);
}

struct busy {
    struct ctx *c;
    int iterations; /* loop iterations while the transfer ran */
};

/* Every loop iteration does 2 ms of other work, as the agent's inputs do under load. */
static void on_busy(uv_prepare_t *p)
{
    struct busy *b = p->data;
    struct timespec ts = {0, 2000000};

    if (lc_curl_running(b->c->curl) == 0)
        return;
    b->iterations++;
    nanosleep(&ts, NULL);
}

/*
 * Issue 14: libcurl sends one upload buffer (64 KiB) per socket action. With
 * one action per writable event, a 2 MiB body needs at least 32 loop
 * iterations, each as long as the rest of the loop's work: ~500 ms per push
 * on a busy agent. The drain sends what the kernel takes in one event.
 */
static void test_large_body_drained_per_event(void **state)
{
    struct ctx *c = *state;
    const size_t len = 2u << 20;
    char *body = malloc(len);
    static struct busy b;
    static uv_prepare_t prep; /* outlives a failed assertion: teardown completes its close */
    struct curl_slist *hdr = curl_slist_append(NULL, "Expect:");

    for (size_t i = 0; i < len; i++)
        body[i] = (char)('a' + i % 23);
    b = (struct busy){.c = c};
    c->curl = lc_curl_new(&c->loop, 1, 0);
    CURL *e = mk_easy(c->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    uv_prepare_init(&c->loop, &prep);
    prep.data = &b;
    uv_prepare_start(&prep, on_busy);
    assert_int_equal(lc_curl_add(c->curl, e, on_done, c), 0);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&prep, NULL);
    assert_false(c->timed_out);
    assert_int_equal(c->ok2xx, 1);
    assert_int_equal(atomic_load(&c->srv.nreq), 1);
    assert_int_equal(c->srv.reqs[0].body_len, len);
    /* 32 buffers of 64 KiB: without the drain, at least 32 iterations */
    assert_true(lc_curl_drained(c->curl) > 0);
    assert_true(b.iterations < 16);
    curl_slist_free_all(hdr);
    free(body);
    free_and_check(c);
}

static void test_bad_args(void **state)
{
    struct ctx *c = *state;

    c->curl = lc_curl_new(&c->loop, 0, 0);
    assert_int_equal(lc_curl_add(c->curl, NULL, on_done, c), -EINVAL);
    CURL *e = mk_easy(c->url);
    assert_int_equal(lc_curl_add(c->curl, e, NULL, c), -EINVAL);
    assert_int_equal(lc_curl_running(NULL), 0);
    lc_curl_remove(c->curl, e); /* not added: no-op */
    lc_curl_free(NULL, NULL, NULL);
    curl_easy_cleanup(e);
    free_and_check(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sequential_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_total_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_transfers_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_inside_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_body_drained_per_event, setup, teardown),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return r;
}
