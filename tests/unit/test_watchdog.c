/* SPDX-License-Identifier: MIT */
/* test_watchdog.c: the leak watchdog: the slope model, explained FDs, the probe, the test knob. */
#include "core/buf.h"
#include "core/http.h"
#include "core/metrics.h"
#include "core/watchdog.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define MIN_MS 60000

static const struct lc_watchdog_conf defaults = {
    .enabled = true,
    .interval_ms = MIN_MS,
    .window_ms = 30 * MIN_MS,
    .max_threads_per_min = 0,
    .max_fds_per_min = 2,
    .max_rss_per_min = 1 << 20,
};

static struct lc_wd_sample base(void)
{
    struct lc_wd_sample s;
    memset(&s, 0, sizeof(s));
    s.v[LC_WD_THREADS] = 6;
    s.v[LC_WD_FDS_FILES] = 10;
    s.v[LC_WD_FDS_SOCKETS] = 3;
    s.v[LC_WD_FDS_OTHER] = 8;
    s.v[LC_WD_RSS] = 20 << 20;
    return s;
}

static bool health_says(const char *needle)
{
    struct lc_buf b;
    bool healthy;
    lc_buf_init(&b, 1 << 20);
    assert_int_equal(lc_health_render(&b, &healthy), 0);
    assert_int_equal(lc_buf_putc(&b, '\0'), 0);
    bool found = strstr(b.data, needle) != NULL;
    lc_buf_free(&b);
    return found;
}

/* A steady agent with noise (blips, RSS jitter) over an hour of samples: nothing is flagged. */
static void test_steady_with_noise_not_flagged(void **state)
{
    (void)state;
    struct lc_watchdog *w = lc_watchdog_new(&defaults);
    assert_non_null(w);
    unsigned seed = 7;
    for (int i = 0; i < 60; i++) {
        struct lc_wd_sample s = base();
        s.v[LC_WD_THREADS] += (i % 7 == 3);            /* a resolver thread caught in flight */
        s.v[LC_WD_FDS_SOCKETS] += rand_r(&seed) % 3;   /* connections come and go */
        s.v[LC_WD_RSS] += (rand_r(&seed) % 512) << 10; /* allocator jitter under 512 KiB */
        assert_int_equal(lc_watchdog_add(w, (int64_t)i * MIN_MS, &s), 0);
    }
    assert_true(health_says("\"watchdog\":{\"status\":\"ok\""));
    lc_watchdog_free(w);
}

/* A thread pool starting (one step of 4 threads) is not a leak; a thread per 5 minutes is. */
static void test_step_is_not_a_leak_but_a_ramp_is(void **state)
{
    (void)state;
    struct lc_watchdog *w = lc_watchdog_new(&defaults);
    for (int i = 0; i < 40; i++) {
        struct lc_wd_sample s = base();
        s.v[LC_WD_THREADS] += i >= 20 ? 4 : 0;
        assert_int_equal(lc_watchdog_add(w, (int64_t)i * MIN_MS, &s), 0);
    }
    lc_watchdog_free(w);

    w = lc_watchdog_new(&defaults);
    unsigned flagged = 0;
    int first = -1;
    for (int i = 0; i < 40; i++) {
        struct lc_wd_sample s = base();
        s.v[LC_WD_THREADS] += i / 5;
        flagged = lc_watchdog_add(w, (int64_t)i * MIN_MS, &s);
        if (flagged && first < 0)
            first = i;
    }
    assert_int_equal(flagged, 1u << LC_WD_THREADS);
    assert_true(first >= 0 && first < 30); /* within the 30-minute window */
    double slope = lc_watchdog_slope(w, LC_WD_THREADS);
    assert_true(slope > 0.15 && slope < 0.25); /* 0.2/min */
    assert_true(health_says("threads grows 0.20/min"));
    lc_watchdog_free(w);
}

/* An FD leak of 3/min is flagged; 1/min (under max_fds_per_min) is not; it clears once it stops. */
static void test_fd_rate_threshold_and_recovery(void **state)
{
    (void)state;
    struct lc_watchdog *w = lc_watchdog_new(&defaults);
    for (int i = 0; i < 40; i++) {
        struct lc_wd_sample s = base();
        s.v[LC_WD_FDS_OTHER] += i;
        assert_int_equal(lc_watchdog_add(w, (int64_t)i * MIN_MS, &s), 0);
    }
    lc_watchdog_free(w);

    w = lc_watchdog_new(&defaults);
    unsigned flagged = 0;
    int i = 0;
    for (; i < 30; i++) {
        struct lc_wd_sample s = base();
        s.v[LC_WD_FDS_SOCKETS] += 3 * i;
        flagged = lc_watchdog_add(w, (int64_t)i * MIN_MS, &s);
    }
    assert_int_equal(flagged, 1u << LC_WD_FDS_SOCKETS);
    assert_true(
        health_says("\"watchdog\":{\"status\":\"degraded\",\"detail\":\"fds_sockets grows"));
    for (; i < 80; i++) { /* the leak stopped (at its last level); the window moves past it */
        struct lc_wd_sample s = base();
        s.v[LC_WD_FDS_SOCKETS] += 3 * 29;
        flagged = lc_watchdog_add(w, (int64_t)i * MIN_MS, &s);
    }
    assert_int_equal(flagged, 0);
    assert_true(health_says("\"watchdog\":{\"status\":\"ok\""));
    lc_watchdog_free(w);
}

/* RSS: 2 MiB/min is flagged, 512 KiB/min is not (threshold 1 MiB/min). */
static void test_rss_threshold(void **state)
{
    (void)state;
    int64_t rates[] = {2 << 20, 512 << 10};
    for (int k = 0; k < 2; k++) {
        struct lc_watchdog *w = lc_watchdog_new(&defaults);
        unsigned flagged = 0;
        for (int i = 0; i < 30; i++) {
            struct lc_wd_sample s = base();
            s.v[LC_WD_RSS] += rates[k] * i;
            flagged = lc_watchdog_add(w, (int64_t)i * MIN_MS, &s);
        }
        assert_int_equal(flagged, k == 0 ? 1u << LC_WD_RSS : 0u);
        lc_watchdog_free(w);
    }
}

/* The ring holds 60 samples: a short interval with a long window uses the last 60. */
static void test_ring_is_bounded(void **state)
{
    (void)state;
    struct lc_watchdog *w = lc_watchdog_new(&defaults);
    for (int i = 0; i < 500; i++) {
        struct lc_wd_sample s = base();
        s.v[LC_WD_FDS_FILES] += i < 400 ? i : 400; /* a leak that stopped 100 samples ago */
        lc_watchdog_add(w, (int64_t)i * 100, &s);
    }
    assert_true(lc_watchdog_slope(w, LC_WD_FDS_FILES) == 0);
    lc_watchdog_free(w);
}

static int open_null(void)
{
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

/*
 * 200 containers start (one tailed file each), log, and go, twice, while the
 * real probe reads /proc/self/fd: the files the input reports open explain the
 * FDs, so nothing is flagged. The same FDs without the input's gauge are.
 */
static void test_container_churn_explained(void **state)
{
    (void)state;
    static const char *const l_in[] = {"input", NULL};
    struct lc_metric_series *open_files = lc_metric_series(
        lc_metric_family(LC_GAUGE, "log_capturer_file_open_files", "Files open.", l_in),
        "containers");
    assert_non_null(open_files);
    static int fds[256];
    for (int explained = 1; explained >= 0; explained--) {
        struct lc_watchdog *w = lc_watchdog_new(&defaults);
        unsigned flagged = 0;
        int n = 0;
        for (int i = 0; i < 30; i++) {
            int want = explained ? (i < 15 ? i * 14 : (29 - i) * 14) : i * 7;
            while (n < want)
                fds[n++] = open_null();
            while (n > want)
                close(fds[--n]);
            lc_gauge_set(open_files, explained ? n : 0);
            struct lc_wd_sample s;
            assert_int_equal(lc_watchdog_probe(w, &s), 0);
            flagged = lc_watchdog_add(w, (int64_t)i * MIN_MS, &s);
            if (explained)
                assert_int_equal(flagged & (1u << LC_WD_FDS_FILES), 0);
        }
        if (!explained)
            assert_true(flagged & (1u << LC_WD_FDS_FILES));
        while (n > 0)
            close(fds[--n]);
        lc_watchdog_free(w);
    }
    lc_gauge_set(open_files, 0);
}

/* The probe with 1000 more open FDs: every one counted by kind (the time is printed, not judged).
 */
static void test_probe_counts_1000_fds(void **state)
{
    (void)state;
    static int fds[1000];
    struct lc_wd_sample before, after;
    struct lc_watchdog *w = lc_watchdog_new(&defaults);
    assert_int_equal(lc_watchdog_probe(w, &before), 0);
    for (int i = 0; i < 1000; i++)
        fds[i] = open_null();
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    assert_int_equal(lc_watchdog_probe(w, &after), 0); /* the first sample sees 1004 new FDs */
    struct timespec t0, t1; /* the thread's CPU time: other processes' load does not count */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    for (int k = 0; k < 20; k++)
        assert_int_equal(lc_watchdog_probe(w, &after), 0);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    assert_int_equal(after.v[LC_WD_FDS_FILES] - before.v[LC_WD_FDS_FILES], 1000);
    assert_int_equal(after.v[LC_WD_FDS_SOCKETS] - before.v[LC_WD_FDS_SOCKETS], 2);
    assert_int_equal(after.v[LC_WD_FDS_OTHER] - before.v[LC_WD_FDS_OTHER], 2);
    assert_true(after.v[LC_WD_THREADS] >= 1);
    assert_true(after.v[LC_WD_RSS] > 0);
    double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 20e3;
    print_message("watchdog probe with %lld open FDs: %.0f us CPU per sample\n",
                  (long long)(after.v[LC_WD_FDS_FILES] + after.v[LC_WD_FDS_SOCKETS] +
                              after.v[LC_WD_FDS_OTHER]),
                  us);
    for (int i = 0; i < 1000; i++)
        close(fds[i]);
    close(sv[0]), close(sv[1]), close(pfd[0]), close(pfd[1]);
    /* a number reused for another kind is corrected by the rotation within 1010/128 samples */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0); /* takes closed numbers */
    for (int k = 0; k < 10; k++)
        assert_int_equal(lc_watchdog_probe(w, &after), 0);
    assert_int_equal(after.v[LC_WD_FDS_SOCKETS] - before.v[LC_WD_FDS_SOCKETS], 2);
    assert_int_equal(after.v[LC_WD_FDS_FILES], before.v[LC_WD_FDS_FILES]);
    close(sv[0]), close(sv[1]);
    lc_watchdog_free(w);
}

/* The test knob: LC_TEST_WATCHDOG_LEAK=thread leaks a thread per probe, and that is flagged. */
static void test_knob_thread_leak_flagged(void **state)
{
    (void)state;
    struct lc_watchdog_conf c = defaults;
    c.interval_ms = 100;
    struct lc_watchdog *w = lc_watchdog_new(&c);
    setenv("LC_TEST_WATCHDOG_LEAK", "thread", 1);
    unsigned flagged = 0;
    int i = 0;
    for (; i < 30 && !(flagged & (1u << LC_WD_THREADS)); i++) {
        struct lc_wd_sample s;
        assert_int_equal(lc_watchdog_probe(w, &s), 0);
        flagged = lc_watchdog_add(w, (int64_t)i * 100, &s);
    }
    unsetenv("LC_TEST_WATCHDOG_LEAK");
    assert_true(flagged & (1u << LC_WD_THREADS));
    assert_true(i <= LC_WD_MIN_SAMPLES + 1);
    lc_watchdog_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steady_with_noise_not_flagged),
        cmocka_unit_test(test_step_is_not_a_leak_but_a_ramp_is),
        cmocka_unit_test(test_fd_rate_threshold_and_recovery),
        cmocka_unit_test(test_rss_threshold),
        cmocka_unit_test(test_ring_is_bounded),
        cmocka_unit_test(test_container_churn_explained),
        cmocka_unit_test(test_probe_counts_1000_fds),
        cmocka_unit_test(test_knob_thread_leak_flagged),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    lc_health_shutdown();
    lc_metrics_shutdown();
    return rc;
}
