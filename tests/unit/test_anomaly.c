/* SPDX-License-Identifier: MIT */
/* test_anomaly.c: anomaly detection on a test clock: spike, silence, error burst, jitter, bounds.
 */
#include "core/anomaly.h"
#include "core/config.h"
#include "core/http.h"
#include "core/labels.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define TICK_MS 10000

static struct lc_anomaly_conf conf = {
    .enabled = true,
    .interval_ms = TICK_MS,
    .warmup_ms = 5 * 60000,
    .expire_ms = 3600000,
    .max_streams = 1000,
    .spike_factor = 10,
    .spike_min_lines = 100,
    .spike_intervals = 2,
    .silence_factor = 10,
    .error_factor = 5,
    .error_min_lines = 10,
    .error_pattern = "error|fatal|panic|exception",
};
static struct lc_input_conf in_conf = {.name = "app"};
static struct lc_input in = {.conf = &in_conf};

struct fx {
    struct lc_anomaly *a;
    int64_t now;
    struct lc_labels *l;
};

static struct lc_labels *labels_n(int n)
{
    char v[32];
    snprintf(v, sizeof(v), "c%d", n);
    struct lc_kv kv[2] = {{.key = "job", .value = "test"}, {.key = "container", .value = v}};
    struct lc_labels *l = NULL;
    assert_int_equal(lc_labels_intern(kv, 2, &l), 0);
    return l;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[128];
    f->now = 1000000;
    assert_int_equal(lc_anomaly_new(&f->a, &conf, f->now, err, sizeof(err)), 0);
    f->l = labels_n(0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    lc_anomaly_free(f->a);
    lc_labels_release(f->l);
    free(f);
    return 0;
}

/* n lines on f->l, `errors` of them matching, then one tick. Returns active anomalies. */
static int interval(struct fx *f, struct lc_labels *l, int n, int errors)
{
    for (int i = 0; i < n; i++) {
        const char *line = i < errors ? "2026-01-01 Fatal: connection lost" : "GET /x 200 12ms";
        lc_anomaly_record(f->a, &in, l, line, strlen(line));
    }
    f->now += TICK_MS;
    return lc_anomaly_tick(f->a, f->now);
}

static void test_steady_then_burst_x20_is_a_spike(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 60; i++) /* 10 minutes at 20 lines/s */
        assert_int_equal(interval(f, f->l, 200, 0), 0);
    assert_int_equal(interval(f, f->l, 4000, 0), 0); /* one interval over: not yet sustained */
    assert_false(lc_anomaly_active(f->a, &in, f->l, LC_ANOMALY_SPIKE));
    assert_int_equal(interval(f, f->l, 4000, 0), 1);
    assert_true(lc_anomaly_active(f->a, &in, f->l, LC_ANOMALY_SPIKE));
    assert_int_equal(lc_metric_family_total("log_capturer_anomaly_active"), 1);
    assert_int_equal(lc_metric_family_total("log_capturer_anomalies_active"), 1);
    assert_true(lc_metric_family_total("log_capturer_anomalies_total") >= 1);
    assert_int_equal(interval(f, f->l, 200, 0), 0); /* back to normal: it ends */
    assert_int_equal(lc_metric_family_total("log_capturer_anomaly_active"), 0);
}

static void test_steady_then_stop_is_silence(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 60; i++) /* 2 lines/s: a gap of 0.5 s; silent after max(5 s, 20 s) */
        assert_int_equal(interval(f, f->l, 20, 0), 0);
    assert_int_equal(interval(f, f->l, 0, 0), 0); /* quiet 10 s */
    assert_int_equal(interval(f, f->l, 0, 0), 0); /* quiet 20 s */
    assert_int_equal(interval(f, f->l, 0, 0), 1); /* quiet 30 s */
    assert_true(lc_anomaly_active(f->a, &in, f->l, LC_ANOMALY_SILENCE));
    assert_int_equal(interval(f, f->l, 20, 0), 0); /* it speaks again */
    assert_false(lc_anomaly_active(f->a, &in, f->l, LC_ANOMALY_SILENCE));
}

static void test_error_burst(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 60; i++) /* 1 % of lines say "Fatal" */
        assert_int_equal(interval(f, f->l, 200, 2), 0);
    assert_int_equal(interval(f, f->l, 200, 8), 0);  /* 4 %: under 10 % */
    assert_int_equal(interval(f, f->l, 200, 60), 1); /* 30 % */
    assert_true(lc_anomaly_active(f->a, &in, f->l, LC_ANOMALY_ERRORS));
    assert_false(lc_anomaly_active(f->a, &in, f->l, LC_ANOMALY_SPIKE));
}

/* Nothing before warm-up: a stream bursting in its first minutes is learning. */
static void test_nothing_during_warmup(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 20; i++)
        assert_int_equal(interval(f, f->l, i % 2 ? 5000 : 10, i % 2 ? 3000 : 0), 0);
}

/* 20 streams with jitter (rates 0.5..1.5 x, 0..3 % errors, sparse ones with empty intervals)
 * over 5 minutes of warm-up and 10 minutes judged: nothing is raised. */
static void test_ten_minutes_of_jitter_raise_nothing(void **state)
{
    struct fx *f = *state;
    struct lc_labels *ls[20];
    unsigned seed = 42;
    for (int s = 0; s < 20; s++)
        ls[s] = labels_n(100 + s);
    for (int t = 0; t < 90; t++) {
        for (int s = 0; s < 20; s++) {
            int base = s < 10 ? 50 * (s + 1) : 2; /* 10 busy streams, 10 sparse ones */
            int n = base / 2 + (int)(rand_r(&seed) % (unsigned)(base + 1));
            if (s >= 10 && rand_r(&seed) % 4 == 0)
                n = 0;
            int errors = (int)(rand_r(&seed) % (unsigned)(n * 3 / 100 + 1));
            for (int i = 0; i < n; i++) {
                const char *line = i < errors ? "an exception here" : "all fine";
                lc_anomaly_record(f->a, &in, ls[s], line, strlen(line));
            }
        }
        f->now += TICK_MS;
        assert_int_equal(lc_anomaly_tick(f->a, f->now), 0);
    }
    assert_int_equal(lc_metric_family_total("log_capturer_anomalies_active"), 0);
    for (int s = 0; s < 20; s++)
        lc_labels_release(ls[s]);
}

/* 10,000 streams with max_streams 1000: the table never grows, the rest are evicted (LRU) and
 * counted, and every label set reference is given back. */
static void test_ten_thousand_streams_bounded(void **state)
{
    (void)state;
    struct lc_anomaly *a;
    char err[128];
    size_t live0 = lc_labels_live();
    int64_t evicted0 = lc_metric_family_total("log_capturer_anomaly_evicted_streams_total");
    assert_int_equal(lc_anomaly_new(&a, &conf, 0, err, sizeof(err)), 0);
    size_t mem = lc_anomaly_memory(a);
    int devnull = open("/dev/null", O_WRONLY);
    lc_log_set_fd(devnull); /* the eviction notice is rate-limited, but not silent */
    for (int s = 0; s < 10000; s++) {
        struct lc_labels *l = labels_n(1000 + s);
        lc_anomaly_record(a, &in, l, "x", 1);
        lc_labels_release(l);
        if (s % 1000 == 999)
            lc_anomaly_tick(a, (int64_t)(s + 1) * 10);
    }
    lc_log_set_fd(2);
    close(devnull);
    assert_int_equal(lc_anomaly_streams(a), 1000);
    assert_int_equal(lc_anomaly_memory(a), mem);
    assert_int_equal(
        lc_metric_family_total("log_capturer_anomaly_evicted_streams_total") - evicted0, 9000);
    assert_int_equal(lc_labels_live(), live0 + 1000);
    print_message("anomaly: %zu bytes per stream, %zu bytes for max_streams 1000\n",
                  lc_anomaly_stream_bytes(), mem);
    lc_anomaly_free(a);
    assert_int_equal(lc_labels_live(), live0);
}

/* A stream idle for `expire` is forgotten. */
static void test_idle_streams_expire(void **state)
{
    struct fx *f = *state;
    interval(f, f->l, 10, 0);
    assert_int_equal(lc_anomaly_streams(f->a), 1);
    for (int i = 0; i < 361; i++) /* one burst of lines is not a steady stream: never silent */
        assert_int_equal(interval(f, f->l, 0, 0), 0);
    assert_int_equal(lc_anomaly_streams(f->a), 0);
}

static void test_bad_pattern_refused(void **state)
{
    (void)state;
    struct lc_anomaly_conf c = conf;
    struct lc_anomaly *a = NULL;
    char err[128];
    c.error_pattern = "error(";
    assert_int_equal(lc_anomaly_new(&a, &c, 0, err, sizeof(err)), -EINVAL);
    assert_null(a);
    assert_non_null(strstr(err, "anomaly.error_pattern"));
}

/* The hot path's cost per record with 1000 streams, printed (judged by no wall clock). */
static void test_cost_printed(void **state)
{
    (void)state;
    struct lc_anomaly *a;
    char err[128];
    struct lc_labels *ls[1000];
    assert_int_equal(lc_anomaly_new(&a, &conf, 0, err, sizeof(err)), 0);
    for (int s = 0; s < 1000; s++)
        ls[s] = labels_n(20000 + s);
    const char *line =
        "2026-01-01T00:00:00Z level=info msg=\"request handled\" path=/api/v1/orders "
        "status=200 latency_ms=12";
    struct timespec t0, t1; /* the thread's CPU time: other processes' load does not count */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    for (int i = 0; i < 1000000; i++)
        lc_anomaly_record(a, &in, ls[i % 1000], line, strlen(line));
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    print_message("anomaly: %.0f ns per record (1000 streams, 100-byte lines)\n",
                  ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
                      1e6);
    lc_anomaly_free(a);
    for (int s = 0; s < 1000; s++)
        lc_labels_release(ls[s]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_steady_then_burst_x20_is_a_spike, setup, teardown),
        cmocka_unit_test_setup_teardown(test_steady_then_stop_is_silence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_during_warmup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ten_minutes_of_jitter_raise_nothing, setup, teardown),
        cmocka_unit_test(test_ten_thousand_streams_bounded),
        cmocka_unit_test_setup_teardown(test_idle_streams_expire, setup, teardown),
        cmocka_unit_test(test_bad_pattern_refused),
        cmocka_unit_test(test_cost_printed),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    lc_health_shutdown();
    lc_metrics_shutdown();
    return rc;
}
