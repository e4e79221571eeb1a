/* SPDX-License-Identifier: MIT */
/* test_log.c: JSON line format, levels, truncation and per-message rate limiting of lc_log. */
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#define LINE_MAX_BYTES 4096

/* ---- a strict little JSON checker: one object per line, valid UTF-8 strings ---- */

static const char *js_value(const char *p);

static const char *js_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Length of the valid UTF-8 sequence at p (non-ASCII), 0 if invalid. */
static int utf8_len(const unsigned char *p)
{
    int n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

static const char *js_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    while (*p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
                        return NULL;
                p += 5;
            } else if (*p && strchr("\"\\/bfnrt", *p)) {
                p++;
            } else {
                return NULL;
            }
        } else if (c >= 0x80) {
            int n = utf8_len((const unsigned char *)p);
            if (!n)
                return NULL;
            p += n;
        } else {
            p++;
        }
    }
    return p + 1;
}

static const char *js_object(const char *p)
{
    p = js_ws(p + 1);
    if (*p == '}')
        return p + 1;
    for (;;) {
        p = js_string(js_ws(p));
        if (!p || *(p = js_ws(p)) != ':')
            return NULL;
        p = js_value(js_ws(p + 1));
        if (!p)
            return NULL;
        p = js_ws(p);
        if (*p == '}')
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

static const char *js_value(const char *p)
{
    if (*p == '{')
        return js_object(p);
    if (*p == '"')
        return js_string(p);
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
        return p + 4;
    if (strncmp(p, "false", 5) == 0)
        return p + 5;
    char *end;
    strtod(p, &end);
    return end == p ? NULL : end;
}

/* True when line (without its newline) is exactly one JSON object. */
static bool json_line_ok(const char *line)
{
    const char *end = *line == '{' ? js_object(line) : NULL;
    return end && *end == '\0';
}

/* ---- capture: the log goes to a memfd that the tests read back ---- */

static int cap_fd = -1;
static int64_t fake_now;

static int64_t fake_clock(void)
{
    return fake_now;
}

static int setup(void **state)
{
    (void)state;
    cap_fd = memfd_create("lclog", 0);
    assert_true(cap_fd >= 0);
    lc_log_set_fd(cap_fd);
    lc_log_set_level(LC_LOG_DEBUG);
    lc_log_set_clock(fake_clock);
    return 0;
}

/* Ends every window, so the next test starts clean; the reports go to this test's capture. */
static int teardown(void **state)
{
    (void)state;
    fake_now += 1000;
    lc_log_flush();
    lc_log_set_fd(STDERR_FILENO);
    lc_log_set_clock(NULL);
    close(cap_fd);
    return 0;
}

/* Everything written since the last call; the caller frees. */
static char *take(void)
{
    off_t n = lseek(cap_fd, 0, SEEK_END);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(pread(cap_fd, s, (size_t)n, 0), n);
    s[n] = '\0';
    assert_int_equal(ftruncate(cap_fd, 0), 0);
    lseek(cap_fd, 0, SEEK_SET);
    return s;
}

/* Splits the capture into lines, checking each is complete JSON and fits the limit. */
static int split_lines(char *s, char **lines, int max)
{
    int n = 0;
    for (char *nl; (nl = strchr(s, '\n')); s = nl + 1) {
        *nl = '\0';
        assert_true(strlen(s) + 1 <= LINE_MAX_BYTES);
        if (!json_line_ok(s))
            fail_msg("not one JSON object: %s", s);
        assert_true(n < max);
        lines[n++] = s;
    }
    assert_int_equal(*s, '\0'); /* nothing after the last newline */
    return n;
}

/* Sum of every "suppressed":N in the lines. */
static unsigned long long suppressed_sum(char **lines, int n)
{
    unsigned long long sum = 0;
    for (int i = 0; i < n; i++) {
        const char *p = strstr(lines[i], "\"suppressed\":");
        if (p)
            sum += strtoull(p + 13, NULL, 10);
    }
    return sum;
}

/* ---- tests ---- */

static void test_level_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int rc;
        enum lc_log_level level;
    } cases[] = {
        {"debug", 0, LC_LOG_DEBUG}, {"info", 0, LC_LOG_INFO},   {"warn", 0, LC_LOG_WARN},
        {"error", 0, LC_LOG_ERROR}, {"ERROR", 0, LC_LOG_ERROR}, {"warning", -EINVAL, 0},
        {"", -EINVAL, 0},           {"infox", -EINVAL, 0},      {NULL, -EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum lc_log_level l = LC_LOG_WARN;
        assert_int_equal(lc_log_level_parse(cases[i].s, &l), cases[i].rc);
        assert_int_equal(l, cases[i].rc ? LC_LOG_WARN : cases[i].level);
    }
}

static void test_line_format(void **state)
{
    (void)state;
    char *lines[4];
    lc_logf(LC_LOG_WARN, "input/file", "\"path\":\"/var/log/x\",\"errno\":2", "cannot open %s: %d",
            "x", 2);
    char *s = take();
    assert_int_equal(split_lines(s, lines, 4), 1);
    const char *l = lines[0];
    /* {"time":"2024-05-01T12:00:00.123Z", ... */
    assert_memory_equal(l, "{\"time\":\"", 9);
    const char *t = l + 9;
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ\"";
    for (size_t i = 0; shape[i]; i++) {
        if (shape[i] == 'd')
            assert_true(t[i] >= '0' && t[i] <= '9');
        else
            assert_int_equal(t[i], shape[i]);
    }
    assert_string_equal(t + strlen(shape),
                        ",\"level\":\"warn\",\"component\":\"input/file\","
                        "\"msg\":\"cannot open x: 2\",\"path\":\"/var/log/x\",\"errno\":2}");
    free(s);
}

static int side_effects;
static int side(void)
{
    return ++side_effects;
}

static void test_threshold_skips_formatting(void **state)
{
    (void)state;
    char *lines[4];
    lc_log_set_level(LC_LOG_WARN);
    side_effects = 0;
    lc_log(LC_LOG_DEBUG, "t", "dbg %d", side());
    lc_log(LC_LOG_INFO, "t", "info %d", side());
    assert_int_equal(side_effects, 0); /* arguments not even evaluated */
    lc_log(LC_LOG_ERROR, "t", "err %d", side());
    assert_int_equal(side_effects, 1);
    char *s = take();
    assert_int_equal(split_lines(s, lines, 4), 1);
    assert_non_null(strstr(lines[0], "\"level\":\"error\""));
    assert_non_null(strstr(lines[0], "\"msg\":\"err 1\""));
    free(s);
}

static void test_escaping(void **state)
{
    (void)state;
    char *lines[4];
    lc_log(LC_LOG_INFO, "we\"ird\\", "q\"b\\n\nr\rt\tc\x01 caf\xc3\xa9 %s", "\x1f");
    lc_log(LC_LOG_INFO, NULL, "no component");
    char *s = take();
    assert_int_equal(split_lines(s, lines, 4), 2);
    assert_non_null(strstr(lines[0], "\"component\":\"we\\\"ird\\\\\""));
    assert_non_null(
        strstr(lines[0], "\"msg\":\"q\\\"b\\\\n\\nr\\rt\\tc\\u0001 caf\xc3\xa9 \\u001f\""));
    assert_non_null(strstr(lines[1], "\"component\":\"\""));
    free(s);
}

/* Whatever a caller formats, credentials never reach the log (remove the redaction in
 * lc_log_write and this fails). */
static void test_secrets_masked(void **state)
{
    (void)state;
    char *lines[4];
    lc_log(LC_LOG_WARN, "output/loki", "pushing to %s failed: %s",
           "https://user:s3cr3tPW@loki.example:3100/loki/api/v1/push?api_key=k3yV4l",
           "server said: Authorization: Bearer t0k3nXYZ");
    char *s = take();
    assert_int_equal(split_lines(s, lines, 4), 1);
    assert_null(strstr(lines[0], "s3cr3tPW"));
    assert_null(strstr(lines[0], "k3yV4l"));
    assert_null(strstr(lines[0], "t0k3nXYZ"));
    assert_non_null(strstr(lines[0], "https://***@loki.example:3100/loki/api/v1/push"));
    free(s);
}

static void test_long_message_truncated(void **state)
{
    (void)state;
    static const struct {
        char fill[5]; /* repeated to make the argument */
        size_t reps;
        bool truncated;
    } cases[] = {
        {"x", 100, false},
        {"x", 10000, true},
        {"\"", 1000, false},
        {"\"", 3000, true},
        {"\x01", 1000, true},
        {"\xe2\x82\xac", 1000, true},
        {"\xe2\x82\xac", 2000, true},
        {"\xf0\x9f\x98\x80", 3000, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t k = strlen(cases[i].fill);
        char *arg = malloc(k * cases[i].reps + 1);
        assert_non_null(arg);
        for (size_t r = 0; r < cases[i].reps; r++)
            memcpy(arg + r * k, cases[i].fill, k);
        arg[k * cases[i].reps] = '\0';
        lc_log(LC_LOG_INFO, "t", "%s", arg);
        free(arg);
        fake_now += LC_LOG_WINDOW; /* same format string each time: keep it under the burst */
        char *lines[4];
        char *s = take();
        assert_int_equal(split_lines(s, lines, 4), 1); /* checks size, JSON and UTF-8 */
        assert_int_equal(strstr(lines[0], "\"truncated\":true") != NULL, cases[i].truncated);
        free(s);
    }
}

static void test_fields_that_do_not_fit(void **state)
{
    (void)state;
    char fields[6000];
    memcpy(fields, "\"big\":\"", 7);
    memset(fields + 7, 'a', 5000);
    memcpy(fields + 5007, "\"", 2);
    lc_logf(LC_LOG_INFO, "t", fields, "with big fields");
    lc_logf(LC_LOG_INFO, "t", "", "with empty fields");
    char *lines[4];
    char *s = take();
    assert_int_equal(split_lines(s, lines, 4), 2);
    assert_null(strstr(lines[0], "\"big\""));
    assert_non_null(strstr(lines[0], "\"msg\":\"with big fields\",\"truncated\":true}"));
    assert_non_null(strstr(lines[1], "\"msg\":\"with empty fields\"}"));
    free(s);
}

static void storm(int times)
{
    for (int i = 0; i < times; i++)
        lc_log(LC_LOG_ERROR, "output/loki", "push failed: attempt %d", i);
}

static void other_storm(int times)
{
    for (int i = 0; i < times; i++)
        lc_log(LC_LOG_WARN, "input/file", "another message %d", i);
}

static void test_rate_limit_window(void **state)
{
    (void)state;
    char *lines[64];
    storm(20);
    other_storm(3);
    char *s = take();
    assert_int_equal(split_lines(s, lines, 64), LC_LOG_BURST + 3);
    assert_non_null(strstr(lines[4], "attempt 4"));
    assert_int_equal(suppressed_sum(lines, LC_LOG_BURST + 3), 0);
    free(s);

    fake_now += LC_LOG_WINDOW - 1; /* window not over yet */
    storm(1);
    lc_log_flush();
    s = take();
    assert_int_equal(split_lines(s, lines, 64), 0);
    free(s);

    fake_now += 1; /* over: next occurrence reports the 16 dropped, then is written */
    storm(1);
    s = take();
    assert_int_equal(split_lines(s, lines, 64), 2);
    assert_non_null(strstr(lines[0], "\"suppressed\":16"));
    assert_non_null(strstr(lines[0], "\"level\":\"error\",\"component\":\"output/loki\""));
    assert_non_null(strstr(lines[0], "\"msg\":\"push failed: attempt 4\""));
    assert_non_null(strstr(lines[1], "attempt 0"));
    assert_null(strstr(lines[1], "suppressed"));
    free(s);
}

static void test_flush_reports_ended_storm(void **state)
{
    (void)state;
    char *lines[64];
    storm(12);
    fake_now += LC_LOG_WINDOW;
    lc_log_flush();
    lc_log_flush(); /* reported once */
    char *s = take();
    assert_int_equal(split_lines(s, lines, 64), LC_LOG_BURST + 1);
    assert_non_null(strstr(lines[LC_LOG_BURST], "\"suppressed\":7"));
    free(s);

    /* Any other message also ends the windows that are over. */
    storm(9);
    fake_now += LC_LOG_WINDOW;
    other_storm(1);
    s = take();
    assert_int_equal(split_lines(s, lines, 64), LC_LOG_BURST + 2);
    assert_non_null(strstr(lines[LC_LOG_BURST], "\"suppressed\":4"));
    assert_non_null(strstr(lines[LC_LOG_BURST + 1], "another message 0"));
    free(s);
}

#define NFMT 300

static void test_many_messages_lose_no_count(void **state)
{
    (void)state;
    static char fmts[NFMT][24]; /* distinct pointers: distinct messages */
    static char *lines[NFMT * 8];
    for (int i = 0; i < NFMT; i++)
        snprintf(fmts[i], sizeof(fmts[i]), "message %d %%d", i);
    for (int i = 0; i < NFMT; i++)
        for (int r = 0; r < LC_LOG_BURST + 2; r++)
            lc_log_write(LC_LOG_INFO, "t", NULL, fmts[i], r);
    fake_now += LC_LOG_WINDOW;
    lc_log_flush();
    char *s = take();
    int n = split_lines(s, lines, NFMT * 8);
    /* Each message: its burst, and its 2 drops reported once (on eviction or at flush). */
    assert_int_equal(suppressed_sum(lines, n), NFMT * 2);
    assert_true(n >= NFMT * LC_LOG_BURST);
    free(s);
}

struct thread_arg {
    char fmts[50][32];
};

static void *log_thread(void *p)
{
    struct thread_arg *a = p;
    for (int i = 0; i < 50; i++)
        for (int r = 0; r < LC_LOG_BURST; r++)
            lc_log_write(LC_LOG_INFO, "thread", "\"r\":1", a->fmts[i], r);
    return NULL;
}

static void test_threads_write_whole_lines(void **state)
{
    (void)state;
    static struct thread_arg args[4];
    static char *lines[4 * 50 * LC_LOG_BURST + 1];
    pthread_t th[4];
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < 50; i++)
            snprintf(args[t].fmts[i], sizeof(args[t].fmts[i]), "thread %d msg %d rep %%d", t, i);
        assert_int_equal(pthread_create(&th[t], NULL, log_thread, &args[t]), 0);
    }
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    char *s = take();
    /* Never over the burst, so nothing is dropped, whatever gets evicted. */
    assert_int_equal(split_lines(s, lines, 4 * 50 * LC_LOG_BURST + 1), 4 * 50 * LC_LOG_BURST);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test_setup_teardown(test_line_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threshold_skips_formatting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_masked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_message_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fields_that_do_not_fit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_reports_ended_storm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_messages_lose_no_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_write_whole_lines, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
