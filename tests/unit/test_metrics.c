/* SPDX-License-Identifier: MIT */
/* test_metrics.c: registry rules, Prometheus text rendering, process metrics and concurrency. */
#include "core/metrics.h"

#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#define PROMTOOL "/usr/bin/promtool"

static int teardown(void **state)
{
    (void)state;
    lc_metrics_shutdown();
    return 0;
}

/* Renders the registry; the caller frees the buffer. */
static void render(struct lc_buf *b)
{
    lc_buf_init(b, 1 << 20);
    assert_int_equal(lc_metrics_render(b), 0);
    assert_non_null(b->data);
}

/* The sample value of the line that starts with `prefix` + ' ', or NAN. */
static double sample(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return NAN;
}

/* ---- exposition format checker (what promtool and Prometheus' parser insist on) ---- */

static bool metric_name_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && (i == 0 || c < '0' || c > '9'))
            return false;
    }
    return n > 0;
}

/* Checks {name="value",...}; returns the position after '}' or NULL. */
static const char *labels_ok(const char *p)
{
    p++;
    while (*p != '}') {
        const char *eq = strchr(p, '=');
        if (!eq || !metric_name_ok(p, (size_t)(eq - p)) || eq[1] != '"')
            return NULL;
        for (p = eq + 2; *p != '"'; p++) {
            if (*p == '\n' || !*p)
                return NULL;
            if (*p == '\\' && !strchr("\\\"n", *++p))
                return NULL;
        }
        p++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            return NULL;
    }
    return p + 1;
}

/*
 * Every line is HELP, TYPE or a sample; each family has one TYPE, given
 * before its samples, whose samples are contiguous and use the right suffixes.
 */
static void check_exposition(const char *text)
{
    char family[128] = "", type[32] = "";
    char seen[256][128];
    int nseen = 0;
    assert_int_equal(text[strlen(text) - 1], '\n');
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        char line[4096];
        assert_true((size_t)(nl - p) < sizeof(line));
        memcpy(line, p, (size_t)(nl - p));
        line[nl - p] = '\0';
        p = nl + 1;
        char name[128], t[32];
        if (sscanf(line, "# TYPE %127s %31s", name, t) == 2) {
            for (int i = 0; i < nseen; i++)
                if (strcmp(seen[i], name) == 0)
                    fail_msg("family %s typed twice", name);
            assert_true(nseen < 256);
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", name);
            snprintf(family, sizeof(family), "%s", name);
            snprintf(type, sizeof(type), "%s", t);
            assert_true(strcmp(t, "counter") == 0 || strcmp(t, "gauge") == 0 ||
                        strcmp(t, "histogram") == 0);
            continue;
        }
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        size_t nlen = strcspn(line, "{ ");
        assert_true(metric_name_ok(line, nlen));
        size_t flen = strlen(family);
        if (nlen < flen || strncmp(line, family, flen) != 0)
            fail_msg("sample outside its family %s: %s", family, line);
        const char *suffix = line + flen;
        if (strcmp(type, "histogram") == 0)
            assert_true(strncmp(suffix, "_bucket{", 8) == 0 || strncmp(suffix, "_sum", 4) == 0 ||
                        strncmp(suffix, "_count", 6) == 0);
        else
            assert_int_equal(nlen, flen);
        if (strcmp(type, "counter") == 0)
            assert_true(flen > 6 && strcmp(family + flen - 6, "_total") == 0);
        const char *v = line + nlen;
        if (*v == '{')
            v = labels_ok(v);
        assert_non_null(v);
        assert_int_equal(*v, ' ');
        char *end;
        strtod(v + 1, &end);
        if (strcmp(v + 1, "+Inf") != 0)
            assert_true(end != v + 1 && *end == '\0');
    }
}

/* Runs promtool check metrics on text: 0 clean, 1 problems, -1 no promtool. */
static int promtool_check(const char *text)
{
    if (access(PROMTOOL, X_OK) != 0)
        return -1;
    char path[] = "/tmp/lc_metrics_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    lseek(fd, 0, SEEK_SET);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd, STDIN_FILENO);
        execl(PROMTOOL, "promtool", "check", "metrics", (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(fd);
    unlink(path);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

/* ---- tests ---- */

static void test_counter_and_gauge_render(void **state)
{
    (void)state;
    static const char *const labels[] = {"input", "path", NULL};
    struct lc_metric_family *f = lc_metric_family(LC_COUNTER, "log_capturer_test_lines_total",
                                                  "Lines read.\nPer input \\ path.", labels);
    assert_non_null(f);
    struct lc_metric_series *a = lc_metric_series(f, "file", "/var/log/a");
    struct lc_metric_series *b = lc_metric_series(f, "file", "C:\\x \"y\"\nz");
    assert_ptr_equal(lc_metric_series(f, "file", "/var/log/a"), a);
    lc_counter_add(a, 3);
    lc_counter_inc(b);
    lc_counter_inc(NULL); /* a failed registration must not crash updates */
    struct lc_metric_series *g =
        lc_metric_simple(LC_GAUGE, "log_capturer_test_pending_bytes", "Bytes waiting.");
    lc_gauge_set(g, 10);
    lc_gauge_add(g, -25);
    struct lc_buf out;
    render(&out);
    assert_non_null(strstr(out.data, "# HELP log_capturer_test_lines_total Lines read.\\nPer "
                                     "input \\\\ path.\n"
                                     "# TYPE log_capturer_test_lines_total counter\n"
                                     "log_capturer_test_lines_total{input=\"file\",path=\"/var/"
                                     "log/a\"} 3\n"
                                     "log_capturer_test_lines_total{input=\"file\",path=\"C:\\\\x "
                                     "\\\"y\\\"\\nz\"} 1\n"
                                     "# HELP log_capturer_test_pending_bytes Bytes waiting.\n"
                                     "# TYPE log_capturer_test_pending_bytes gauge\n"
                                     "log_capturer_test_pending_bytes -15\n"));
    check_exposition(out.data);
    lc_buf_free(&out);
}

/* A module's table: one series per row, and per value of a row's second label. */
struct table_obj {
    struct lc_metric_series *lines;
    struct lc_metric_series *ends[3];
    struct lc_metric_series *after; /* the field after the array: left alone */
};

static void test_register_rows(void **state)
{
    (void)state;
    static const char *const reasons[] = {"ended", "error", "died", NULL};
    static const struct lc_metric_row rows[] = {
        {LC_COUNTER, "log_capturer_test_rows_lines_total", "Lines.",
         offsetof(struct table_obj, lines)},
        {LC_COUNTER, "log_capturer_test_rows_ends_total", "Ends, by reason.",
         offsetof(struct table_obj, ends), "reason", reasons},
    };
    struct table_obj o = {0}, o2 = {0};
    lc_metric_register_rows(&o, rows, LC_METRIC_ROWS(rows), "input", "a");
    lc_metric_register_rows(&o2, rows, LC_METRIC_ROWS(rows), "input", "b");
    assert_non_null(o.lines);
    for (int i = 0; i < 3; i++) {
        assert_non_null(o.ends[i]);
        assert_ptr_not_equal(o.ends[i], o2.ends[i]);
        for (int k = 0; k < i; k++)
            assert_ptr_not_equal(o.ends[i], o.ends[k]);
    }
    assert_null(o.after);
    lc_counter_add(o.lines, 5);
    lc_counter_add(o.ends[2], 7);
    lc_counter_inc(o2.ends[0]);
    struct lc_buf out;
    render(&out);
    assert_true(sample(out.data, "log_capturer_test_rows_lines_total{input=\"a\"}") == 5);
    assert_true(
        sample(out.data, "log_capturer_test_rows_ends_total{input=\"a\",reason=\"died\"}") == 7);
    assert_true(
        sample(out.data, "log_capturer_test_rows_ends_total{input=\"a\",reason=\"ended\"}") == 0);
    assert_true(
        sample(out.data, "log_capturer_test_rows_ends_total{input=\"b\",reason=\"ended\"}") == 1);
    check_exposition(out.data);
    lc_buf_free(&out);
}

static void test_histogram_render(void **state)
{
    (void)state;
    static const double bounds[] = {0.1, 1, 10};
    static const char *const labels[] = {"output", NULL};
    struct lc_metric_family *f =
        lc_metric_histogram("log_capturer_test_push_seconds", "Push latency.", labels, bounds, 3);
    struct lc_metric_series *s = lc_metric_series(f, "loki");
    assert_non_null(s);
    static const double obs[] = {0.05, 0.1, 0.5, 5, 50, NAN, -1};
    for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
        lc_histogram_observe(s, obs[i]);
    lc_histogram_observe(NULL, 1);
    struct lc_buf out;
    render(&out);
    assert_non_null(strstr(out.data,
                           "# TYPE log_capturer_test_push_seconds histogram\n"
                           "log_capturer_test_push_seconds_bucket{output=\"loki\",le=\"0.1\"} 3\n"
                           "log_capturer_test_push_seconds_bucket{output=\"loki\",le=\"1\"} 4\n"
                           "log_capturer_test_push_seconds_bucket{output=\"loki\",le=\"10\"} 5\n"
                           "log_capturer_test_push_seconds_bucket{output=\"loki\",le=\"+Inf\"} 7\n"
                           "log_capturer_test_push_seconds_sum{output=\"loki\"} 55.650000\n"
                           "log_capturer_test_push_seconds_count{output=\"loki\"} 7\n"));
    assert_int_equal(atomic_load(&s->hcount), 7);
    check_exposition(out.data);
    lc_buf_free(&out);

    /* The default buckets and a histogram without labels. */
    struct lc_metric_series *d =
        lc_metric_simple(LC_HISTOGRAM, "log_capturer_test_default_seconds", "Default buckets.");
    lc_histogram_observe(d, 0.003);
    render(&out);
    assert_non_null(strstr(out.data, "log_capturer_test_default_seconds_bucket{le=\"0.005\"} 1\n"));
    assert_non_null(strstr(out.data, "log_capturer_test_default_seconds_bucket{le=\"2.5\"} 1\n"));
    assert_non_null(strstr(out.data, "log_capturer_test_default_seconds_count 1\n"));
    check_exposition(out.data);
    lc_buf_free(&out);
}

static void test_registration_rules(void **state)
{
    (void)state;
    static const char *const ok_labels[] = {"output", NULL};
    static const char *const other_labels[] = {"input", NULL};
    static const char *const bad_label[] = {"a-b", NULL};
    static const char *const dunder[] = {"__name", NULL};
    static const char *const le[] = {"le", NULL};
    static const char *const digit[] = {"1x", NULL};
    static const double up[] = {1, 2}, down[] = {2, 1}, same[] = {1, 1}, nan[] = {1, NAN};
    static const struct {
        enum lc_metric_type type;
        const char *name;
        const char *const *labels;
        const double *buckets;
        int nbuckets; /* -2: use lc_metric_family */
        bool ok;
    } cases[] = {
        {LC_COUNTER, "log_capturer_x_total", ok_labels, NULL, -2, true},
        {LC_COUNTER, "log_capturer_x_total", ok_labels, NULL, -2, true}, /* found again */
        {LC_GAUGE, "log_capturer_x_total", ok_labels, NULL, -2, false},  /* other type */
        {LC_COUNTER, "log_capturer_x_total", other_labels, NULL, -2, false},
        {LC_COUNTER, "log_capturer_x_total", NULL, NULL, -2, false},
        {LC_COUNTER, "log_capturer_x", NULL, NULL, -2, false}, /* no _total */
        {LC_GAUGE, "log_capturer_x", NULL, NULL, -2, true},
        {LC_GAUGE, "", NULL, NULL, -2, false},
        {LC_GAUGE, NULL, NULL, NULL, -2, false},
        {LC_GAUGE, "1abc", NULL, NULL, -2, false},
        {LC_GAUGE, "a-b", NULL, NULL, -2, false},
        {LC_GAUGE, "ns:sub_metric", NULL, NULL, -2, true},
        {LC_GAUGE, "process_open_fds", NULL, NULL, -2, false}, /* reserved */
        {LC_GAUGE, "log_capturer_threads", NULL, NULL, -2, false},
        {LC_GAUGE, "log_capturer_y", bad_label, NULL, -2, false},
        {LC_GAUGE, "log_capturer_y", dunder, NULL, -2, false},
        {LC_GAUGE, "log_capturer_y", digit, NULL, -2, false},
        {LC_GAUGE, "log_capturer_y", le, NULL, -2, true}, /* le is fine outside histograms */
        {LC_HISTOGRAM, "log_capturer_h", le, up, 2, false},
        {LC_HISTOGRAM, "log_capturer_h", NULL, down, 2, false},
        {LC_HISTOGRAM, "log_capturer_h", NULL, same, 2, false},
        {LC_HISTOGRAM, "log_capturer_h", NULL, nan, 2, false},
        {LC_HISTOGRAM, "log_capturer_h", NULL, up, -1, false},
        {LC_HISTOGRAM, "log_capturer_h", NULL, up, 2, true},
        {LC_HISTOGRAM, "log_capturer_h", NULL, up, 2, true},
        {LC_HISTOGRAM, "log_capturer_h", NULL, up, 1, false},   /* other buckets */
        {LC_HISTOGRAM, "log_capturer_h0", NULL, NULL, 0, true}, /* only +Inf */
    };
    int devnull = open("/dev/null", O_WRONLY);
    lc_log_set_fd(devnull); /* the refusals are logged */
    struct lc_metric_family *prev = NULL;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lc_metric_family *f;
        if (cases[i].nbuckets == -2)
            f = lc_metric_family(cases[i].type, cases[i].name, "h", cases[i].labels);
        else
            f = lc_metric_histogram(cases[i].name, "h", cases[i].labels, cases[i].buckets,
                                    cases[i].nbuckets);
        if ((f != NULL) != cases[i].ok)
            fail_msg("case %zu (%s): got %p", i, cases[i].name ? cases[i].name : "NULL", (void *)f);
        if (i == 1 || i == 24)
            assert_ptr_equal(f, prev); /* same shape: the same family */
        prev = f;
    }
    lc_log_set_fd(STDERR_FILENO);
    close(devnull);
    assert_null(lc_metric_series(NULL, "x"));
    struct lc_buf out;
    render(&out);
    check_exposition(out.data);
    assert_int_equal(promtool_check(out.data) == 1, 0);
    lc_buf_free(&out);
}

static void test_series_remove(void **state)
{
    (void)state;
    static const char *const labels[] = {"container", NULL};
    struct lc_metric_family *f =
        lc_metric_family(LC_GAUGE, "log_capturer_test_container_lines", "Per container.", labels);
    struct lc_metric_series *s[4];
    static const char *const names[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        s[i] = lc_metric_series(f, names[i]);
        lc_gauge_set(s[i], i + 1);
    }
    lc_metric_series_remove(s[3]); /* the tail */
    lc_metric_series_remove(s[0]); /* the head */
    lc_metric_series_remove(NULL);
    struct lc_metric_series *e = lc_metric_series(f, "e"); /* appended after the new tail */
    lc_gauge_set(e, 5);
    struct lc_metric_series *again = lc_metric_series(f, "a"); /* back, from 0 */
    struct lc_buf out;
    render(&out);
    assert_non_null(strstr(out.data, "log_capturer_test_container_lines{container=\"b\"} 2\n"
                                     "log_capturer_test_container_lines{container=\"c\"} 3\n"
                                     "log_capturer_test_container_lines{container=\"e\"} 5\n"
                                     "log_capturer_test_container_lines{container=\"a\"} 0\n"));
    assert_null(strstr(out.data, "container=\"d\""));
    lc_buf_free(&out);
    lc_metric_series_remove(s[1]);
    lc_metric_series_remove(s[2]);
    lc_metric_series_remove(e);
    lc_metric_series_remove(again);
    render(&out);
    /* A family without series keeps its HELP and TYPE, which is valid. */
    assert_non_null(strstr(out.data, "# TYPE log_capturer_test_container_lines gauge\n# HELP"));
    check_exposition(out.data);
    lc_buf_free(&out);
}

static void test_process_metrics(void **state)
{
    (void)state;
    struct lc_buf out;
    render(&out);
    static const char *const names[] = {
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_start_time_seconds",
        "log_capturer_threads",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char type[96];
        snprintf(type, sizeof(type), "# TYPE %s ", names[i]);
        if (!strstr(out.data, type))
            fail_msg("missing %s", names[i]);
    }
    double fds = sample(out.data, "process_open_fds");
    int open_fds = 0;
    for (int fd = 0; fd < 4096; fd++)
        open_fds += fcntl(fd, F_GETFD) != -1;
    assert_true(fds == open_fds); /* the directory's own fd is not counted */
    assert_true(sample(out.data, "process_max_fds") >= fds);
    assert_true(sample(out.data, "process_resident_memory_bytes") > 1 << 16);
    assert_true(sample(out.data, "process_virtual_memory_bytes") >=
                sample(out.data, "process_resident_memory_bytes"));
    double start = sample(out.data, "process_start_time_seconds");
    double now = (double)time(NULL);
    assert_true(start <= now + 1 && start > now - 86400 * 365);
    assert_true(sample(out.data, "process_cpu_seconds_total") >= 0);
    assert_true(sample(out.data, "log_capturer_threads") == 1);
    check_exposition(out.data);
    assert_int_not_equal(promtool_check(out.data), 1);
    lc_buf_free(&out);
}

static void test_render_cap(void **state)
{
    (void)state;
    struct lc_buf out;
    lc_buf_init(&out, 100);
    lc_metric_simple(LC_GAUGE, "log_capturer_test_a", "A.");
    assert_int_equal(lc_metrics_render(&out), -E2BIG);
    lc_buf_free(&out);
}

static void test_promtool_full_page(void **state)
{
    (void)state;
    static const char *const labels[] = {"output", "reason", NULL};
    static const double bounds[] = {0.001, 0.5, 1e6};
    lc_counter_add(lc_metric_series(lc_metric_family(LC_COUNTER, "log_capturer_dropped_total",
                                                     "Dropped lines.", labels),
                                    "loki", "too \"old\"\\\n"),
                   2);
    lc_metric_simple(LC_COUNTER, "log_capturer_lines_total", "Lines.");
    lc_histogram_observe(
        lc_metric_series(lc_metric_histogram("log_capturer_batch_bytes", "Batch size in bytes.",
                                             labels, bounds, 3),
                         "loki", "x"),
        4096);
    lc_gauge_set(lc_metric_simple(LC_GAUGE, "log_capturer_queue_bytes", "Queued bytes."), 7);
    struct lc_buf out;
    render(&out);
    assert_non_null(strstr(out.data, "le=\"1e+06\""));
    check_exposition(out.data);
    int rc = promtool_check(out.data);
    if (rc < 0) {
        lc_buf_free(&out);
        skip(); /* no promtool: check_exposition() above is the check */
    }
    if (rc != 0)
        fail_msg("promtool check metrics failed on:\n%s", out.data);
    lc_buf_free(&out);
}

#define THREADS 4
#define INCS    100000

static struct lc_metric_series *shared_counter;
static struct lc_metric_series *shared_hist;

static void *update_thread(void *p)
{
    (void)p;
    for (int i = 0; i < INCS; i++) {
        lc_counter_inc(shared_counter);
        lc_histogram_observe(shared_hist, (double)(i % 3));
    }
    return NULL;
}

/* Creates and removes series while rendering, to give the sanitizers something to see. */
static void *churn_thread(void *p)
{
    struct lc_metric_family *f = p;
    char name[16];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof(name), "c%d", i % 50);
        struct lc_metric_series *s = lc_metric_series(f, name);
        lc_gauge_set(s, i);
        if (i % 3 == 0)
            lc_metric_series_remove(s);
    }
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    (void)state;
    static const char *const labels[] = {"container", NULL};
    static const double bounds[] = {0.5, 1.5};
    shared_counter = lc_metric_simple(LC_COUNTER, "log_capturer_test_hits_total", "Hits.");
    shared_hist = lc_metric_series(
        lc_metric_histogram("log_capturer_test_values", "Values.", NULL, bounds, 2));
    struct lc_metric_family *churn =
        lc_metric_family(LC_GAUGE, "log_capturer_test_churn", "Churn.", labels);
    pthread_t th[THREADS + 1];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, update_thread, NULL), 0);
    assert_int_equal(pthread_create(&th[THREADS], NULL, churn_thread, churn), 0);
    for (int i = 0; i < 20; i++) {
        struct lc_buf out;
        render(&out);
        check_exposition(out.data);
        lc_buf_free(&out);
    }
    for (int i = 0; i <= THREADS; i++)
        pthread_join(th[i], NULL);
    struct lc_buf out;
    render(&out);
    assert_true(sample(out.data, "log_capturer_test_hits_total") == THREADS * INCS);
    assert_true(sample(out.data, "log_capturer_test_values_count") == THREADS * INCS);
    long zeros = 0, sum = 0;
    for (int i = 0; i < INCS; i++) {
        zeros += i % 3 == 0;
        sum += i % 3;
    }
    assert_true(sample(out.data, "log_capturer_test_values_bucket{le=\"0.5\"}") == THREADS * zeros);
    assert_true(sample(out.data, "log_capturer_test_values_sum") == THREADS * sum);
    lc_buf_free(&out);
}

static void test_shutdown_then_register(void **state)
{
    (void)state;
    lc_counter_inc(lc_metric_simple(LC_COUNTER, "log_capturer_test_once_total", "Once."));
    lc_metrics_shutdown();
    lc_metrics_shutdown(); /* twice: harmless */
    struct lc_metric_series *s =
        lc_metric_simple(LC_COUNTER, "log_capturer_test_once_total", "Once.");
    assert_non_null(s);
    struct lc_buf out;
    render(&out);
    assert_true(sample(out.data, "log_capturer_test_once_total") == 0);
    lc_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_counter_and_gauge_render, teardown),
        cmocka_unit_test_teardown(test_register_rows, teardown),
        cmocka_unit_test_teardown(test_histogram_render, teardown),
        cmocka_unit_test_teardown(test_registration_rules, teardown),
        cmocka_unit_test_teardown(test_series_remove, teardown),
        cmocka_unit_test_teardown(test_process_metrics, teardown),
        cmocka_unit_test_teardown(test_render_cap, teardown),
        cmocka_unit_test_teardown(test_promtool_full_page, teardown),
        cmocka_unit_test_teardown(test_concurrent_updates, teardown),
        cmocka_unit_test_teardown(test_shutdown_then_register, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
