/* SPDX-License-Identifier: MIT */
/* test_http.c: the /metrics, /health and /ready server on 127.0.0.1, fetched with libcurl. */
#include "core/http.h"

#include "core/log.h"
#include "core/metrics.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

struct fetch {
    long status;
    char ctype[128];
    char allow[64];
    struct lc_buf body;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct fetch *f = arg;
    return lc_buf_append(&f->body, p, size * n) == 0 ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct fetch *f = arg;
    size_t len = size * n;
    if (len > 6 && strncasecmp(p, "Allow:", 6) == 0)
        snprintf(f->allow, sizeof(f->allow), "%.*s", (int)strcspn(p + 7, "\r\n"), p + 7);
    return len;
}

/* One request to the server on 127.0.0.1:port; the caller frees f->body. */
static void fetch(int port, const char *method, const char *path, struct fetch *f)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    memset(f, 0, sizeof(*f));
    lc_buf_init(&f->body, 4 << 20);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, f);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        fail_msg("%s %s: %s", method, url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(f->ctype, sizeof(f->ctype), "%s", ct ? ct : "");
    curl_easy_cleanup(c);
    if (!f->body.data)
        lc_buf_append(&f->body, "", 0);
}

static int setup(void **state)
{
    char err[256] = "";
    struct lc_http *h = NULL;
    assert_int_equal(lc_http_start(&h, "127.0.0.1:0", err, sizeof(err)), 0);
    assert_non_null(h);
    assert_true(lc_http_port(h) > 0);
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    lc_http_stop(*state);
    lc_health_shutdown();
    lc_health_set_ready(false);
    lc_metrics_shutdown();
    return 0;
}

static void test_listen_parse_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "9431",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:65536",
        "127.0.0.1:-1",
        "127.0.0.1:9x",
        "example.com:80",
        "::1:9431",
        "[::1]:",
        "[::1:9431",
        "[nope]:80",
        "1.2.3:80",
        "[127.0.0.1]:80",
        NULL,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[128] = "";
        struct lc_http *h = (struct lc_http *)&err; /* must be reset to NULL */
        assert_int_equal(lc_http_start(&h, bad[i], err, sizeof(err)), -EINVAL);
        assert_null(h);
        assert_true(strlen(err) > 0);
    }
    lc_http_stop(NULL);
    assert_int_equal(lc_http_port(NULL), -1);
}

static void test_listen_forms(void **state)
{
    (void)state;
    static const char *const good[] = {":0", "localhost:0", "127.0.0.1:0"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char err[128] = "";
        struct lc_http *h = NULL;
        int rc = lc_http_start(&h, good[i], err, sizeof(err));
        if (rc != 0)
            fail_msg("%s: %d %s", good[i], rc, err);
        struct fetch f;
        fetch(lc_http_port(h), "GET", "/ready", &f);
        assert_int_equal(f.status, 503);
        lc_buf_free(&f.body);
        lc_http_stop(h);
    }
}

static void test_port_in_use(void **state)
{
    struct lc_http *h = *state;
    char listen[64], err[256] = "";
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", lc_http_port(h));
    struct lc_http *h2 = NULL;
    int devnull = open("/dev/null", O_WRONLY);
    lc_log_set_fd(devnull); /* libmicrohttpd's own complaint */
    int rc = lc_http_start(&h2, listen, err, sizeof(err));
    lc_log_set_fd(STDERR_FILENO);
    close(devnull);
    assert_true(rc < 0);
    assert_null(h2);
    assert_non_null(strstr(err, listen));
}

static void test_metrics_endpoint(void **state)
{
    struct lc_http *h = *state;
    struct lc_metric_series *s =
        lc_metric_simple(LC_COUNTER, "log_capturer_test_requests_total", "Requests.");
    struct fetch f;
    fetch(lc_http_port(h), "GET", "/metrics", &f);
    assert_int_equal(f.status, 200);
    assert_string_equal(f.ctype, "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(f.body.data, "\nlog_capturer_test_requests_total 0\n"));
    assert_non_null(strstr(f.body.data, "\nprocess_open_fds "));
    assert_non_null(strstr(f.body.data, "\nlog_capturer_threads "));
    lc_buf_free(&f.body);

    lc_counter_add(s, 41);
    lc_counter_inc(s);
    fetch(lc_http_port(h), "GET", "/metrics?x=1", &f); /* query strings are ignored */
    assert_int_equal(f.status, 200);
    assert_non_null(strstr(f.body.data, "\nlog_capturer_test_requests_total 42\n"));
    /* The server runs its own thread: at least 2 threads now. */
    const char *t = strstr(f.body.data, "\nlog_capturer_threads ");
    assert_true(t && strtol(t + 22, NULL, 10) >= 2);
    lc_buf_free(&f.body);

    fetch(lc_http_port(h), "HEAD", "/metrics", &f);
    assert_int_equal(f.status, 200);
    assert_int_equal(f.body.len, 0);
    lc_buf_free(&f.body);
}

static void test_health_endpoint(void **state)
{
    struct lc_http *h = *state;
    static const struct {
        const char *component;
        int state; /* -1: remove */
        const char *detail;
        long status;
        const char *expect;
    } steps[] = {
        {NULL, 0, NULL, 200,
         "{\"status\":\"ok\",\"ready\":false,\"reasons\":[],\"components\":{},\"losses\":{"
         "\"reported\":0,\"kept\":0,\"recent\":[]}}\n"},
        {"output/loki", LC_HEALTH_OK, NULL, 200,
         "{\"status\":\"ok\",\"ready\":false,\"reasons\":[],\"components\":{\"output/"
         "loki\":{\"status\":\"ok\"}},\"losses\":{\"reported\":0,\"kept\":0,\"recent\":[]}}\n"},
        {"output/loki", LC_HEALTH_DEGRADED, "429 \"rate\"", 200,
         "{\"status\":\"degraded\",\"ready\":false,\"reasons\":[\"output/loki degraded: 429 "
         "\\\"rate\\\"\"],\"components\":{\"output/loki\":"
         "{\"status\":\"degraded\",\"detail\":\"429 "
         "\\\"rate\\\"\"}},\"losses\":{\"reported\":0,\"kept\":0,\"recent\":[]}}\n"},
        {"input/file", LC_HEALTH_DOWN, "open:\nEACCES", 503,
         "{\"status\":\"down\",\"ready\":false,\"reasons\":[\"input/file down: "
         "open:\\nEACCES\",\"output/loki degraded: 429 \\\"rate\\\"\"],\"components\":{"
         "\"output/loki\":"
         "{\"status\":\"degraded\",\"detail\":\"429 \\\"rate\\\"\"},\"input/file\":"
         "{\"status\":\"down\",\"detail\":\"open:\\nEACCES\"}},\"losses\":{\"reported\":0,\"kept\":"
         "0,\"recent\":[]}}\n"},
        {"input/file", -1, NULL, 200,
         "{\"status\":\"degraded\",\"ready\":false,\"reasons\":[\"output/loki degraded: 429 "
         "\\\"rate\\\"\"],\"components\":{\"output/loki\":"
         "{\"status\":\"degraded\",\"detail\":\"429 "
         "\\\"rate\\\"\"}},\"losses\":{\"reported\":0,\"kept\":0,\"recent\":[]}}\n"},
        {"output/loki", LC_HEALTH_OK, "", 200,
         "{\"status\":\"ok\",\"ready\":false,\"reasons\":[],\"components\":{\"output/"
         "loki\":{\"status\":\"ok\"}},\"losses\":{\"reported\":0,\"kept\":0,\"recent\":[]}}\n"},
        {"nope", -1, NULL, 200, NULL}, /* removing an unknown component: ignored */
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (steps[i].component && steps[i].state < 0)
            lc_health_remove(steps[i].component);
        else if (steps[i].component)
            lc_health_set(steps[i].component, steps[i].state, steps[i].detail);
        struct fetch f;
        fetch(lc_http_port(h), "GET", "/health", &f);
        assert_int_equal(f.status, steps[i].status);
        assert_string_equal(f.ctype, "application/json");
        if (steps[i].expect)
            assert_string_equal(f.body.data, steps[i].expect);
        lc_buf_free(&f.body);
    }
}

/* A field shows its series' live value; the same key again replaces it; the cap is kept. */
static void test_health_fields(void **state)
{
    (void)state;
    struct lc_metric_series *g = lc_metric_simple(LC_GAUGE, "t_health_field", "A gauge.");
    struct lc_metric_series *c = lc_metric_simple(LC_COUNTER, "t_health_field_total", "Count.");
    assert_non_null(g);
    assert_non_null(c);
    lc_gauge_set(g, 41);
    lc_counter_add(c, 7);
    lc_health_field("f", "n", g);
    lc_health_field("f", "count", c);
    lc_gauge_set(g, 42);
    struct lc_buf b;
    bool healthy = false;
    lc_buf_init(&b, 1 << 16);
    assert_int_equal(lc_health_render(&b, &healthy), 0);
    assert_true(healthy);
    assert_int_equal(lc_buf_putc(&b, '\0'), 0);
    assert_non_null(strstr(b.data, "\"f\":{\"status\":\"ok\",\"n\":42,\"count\":7}"));
    lc_buf_free(&b);
    lc_health_field("f", "n", c); /* replaced, not added */
    int devnull = open("/dev/null", O_WRONLY);
    lc_log_set_fd(devnull);
    char key[16];
    for (int i = 0; i < 20; i++) { /* past LC_HEALTH_FIELDS: refused with a log line */
        snprintf(key, sizeof(key), "k%d", i);
        lc_health_field("f", key, g);
    }
    lc_log_set_fd(2);
    close(devnull);
    lc_buf_init(&b, 1 << 16);
    assert_int_equal(lc_health_render(&b, &healthy), 0);
    assert_int_equal(lc_buf_putc(&b, '\0'), 0);
    assert_non_null(strstr(b.data, "\"n\":7,\"count\":7,\"k0\":42"));
    assert_null(strstr(b.data, "\"k6\""));
    lc_buf_free(&b);
    lc_health_remove("f");
}

static void test_health_limits(void **state)
{
    (void)state;
    char name[200], detail[1000];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    memset(detail, 'd', sizeof(detail) - 1);
    detail[sizeof(detail) - 1] = '\0';
    lc_health_set(name, LC_HEALTH_DEGRADED, detail); /* both cut, not refused */
    lc_health_set(name, 99, NULL);                   /* unknown states count as down */
    struct lc_buf b;
    bool healthy = true;
    lc_buf_init(&b, 1 << 16);
    assert_int_equal(lc_health_render(&b, &healthy), 0);
    assert_false(healthy);
    assert_true(b.len < 300);
    assert_non_null(strstr(b.data, "\"status\":\"down\""));
    lc_buf_free(&b);

    int devnull = open("/dev/null", O_WRONLY);
    lc_log_set_fd(devnull);
    for (int i = 0; i < 300; i++) { /* more than the table holds: the rest are refused */
        snprintf(name, sizeof(name), "c%d", i);
        lc_health_set(name, LC_HEALTH_OK, NULL);
    }
    lc_log_set_fd(STDERR_FILENO);
    close(devnull);
    lc_buf_init(&b, 1 << 16);
    assert_int_equal(lc_health_render(&b, &healthy), 0);
    assert_non_null(strstr(b.data, "\"c254\""));
    assert_null(strstr(b.data, "\"c255\""));
    lc_buf_free(&b);
    lc_buf_init(&b, 10);
    assert_int_equal(lc_health_render(&b, &healthy), -E2BIG);
    lc_buf_free(&b);
}

static void test_ready_endpoint(void **state)
{
    struct lc_http *h = *state;
    struct fetch f;
    fetch(lc_http_port(h), "GET", "/ready", &f);
    assert_int_equal(f.status, 503);
    lc_buf_free(&f.body);
    lc_health_set_ready(true);
    fetch(lc_http_port(h), "GET", "/ready", &f);
    assert_int_equal(f.status, 200);
    assert_string_equal(f.body.data, "ready\n");
    lc_buf_free(&f.body);
    fetch(lc_http_port(h), "GET", "/health", &f);
    assert_non_null(strstr(f.body.data, "\"ready\":true"));
    lc_buf_free(&f.body);
}

static void test_not_found_and_not_allowed(void **state)
{
    struct lc_http *h = *state;
    static const struct {
        const char *method, *path;
        long status;
    } cases[] = {
        {"GET", "/", 404},         {"GET", "/nope", 404},     {"GET", "/metrics/", 404},
        {"GET", "/Metrics", 404},  {"POST", "/metrics", 405}, {"PUT", "/health", 405},
        {"DELETE", "/ready", 405}, {"POST", "/nope", 405},    {"OPTIONS", "/metrics", 405},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fetch f;
        fetch(lc_http_port(h), cases[i].method, cases[i].path, &f);
        if (f.status != cases[i].status)
            fail_msg("%s %s: %ld", cases[i].method, cases[i].path, f.status);
        if (cases[i].status == 405)
            assert_string_equal(f.allow, "GET, HEAD");
        lc_buf_free(&f.body);
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_fields),
        cmocka_unit_test(test_listen_parse_errors),
        cmocka_unit_test(test_listen_forms),
        cmocka_unit_test_setup_teardown(test_port_in_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ready_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_and_not_allowed, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
