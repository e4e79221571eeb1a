/* SPDX-License-Identifier: MIT */
/* test_losses.c: the newest loss reports kept for /health, at and beyond the limit. */
#include "core/losses.h"

#include "core/log.h"
#include "core/metrics.h"
#include "lc_alloc_fail.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static int log_fd = -1;

static int setup(void **state)
{
    (void)state;
    log_fd = open("/dev/null", O_WRONLY);
    lc_log_set_fd(log_fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lc_losses_shutdown();
    lc_log_set_fd(STDERR_FILENO);
    close(log_fd);
    return 0;
}

/* The rendered list, NUL-terminated, in a static buffer. */
static const char *render(void)
{
    static struct lc_buf b;
    lc_buf_free(&b);
    lc_buf_init(&b, 1 << 20);
    assert_int_equal(lc_losses_render(&b), 0);
    assert_int_equal(lc_buf_putc(&b, '\0'), 0);
    return b.data;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* At the limit: the newest `keep` reports, oldest first; all of them counted. */
static void test_keeps_the_newest(void **state)
{
    (void)state;
    int64_t before = lc_metric_family_total("log_capturer_loss_reports_total");

    assert_int_equal(lc_losses_keep(3), 0);
    for (int i = 1; i <= 5; i++)
        lc_loss("docker", "container c%d: its lines are lost", i);
    const char *s = render();
    assert_non_null(strstr(s, "\"losses\":{\"reported\":5,\"kept\":3,\"recent\":[{\"time\":\""));
    assert_int_equal(count(s, "\"component\":\"docker\""), 3);
    assert_null(strstr(s, "c2:"));
    const char *c3 = strstr(s, "container c3: its lines are lost");
    const char *c5 = strstr(s, "container c5: its lines are lost");
    assert_non_null(c3);
    assert_non_null(c5);
    assert_true(c3 < c5); /* oldest first */
    assert_int_equal(lc_metric_family_total("log_capturer_loss_reports_total") - before, 5);
}

/* A smaller limit keeps the newest of what is held; a larger one keeps them all; 0 none. */
static void test_resize(void **state)
{
    (void)state;
    assert_int_equal(lc_losses_keep(4), 0);
    for (int i = 1; i <= 4; i++)
        lc_loss("f", "file %d lost in rotation", i);
    assert_int_equal(lc_losses_keep(2), 0);
    const char *s = render();
    assert_non_null(strstr(s, "\"kept\":2,"));
    assert_null(strstr(s, "file 2 "));
    assert_non_null(strstr(s, "file 3 "));
    assert_int_equal(lc_losses_keep(8), 0);
    lc_loss("f", "file 5 lost in rotation");
    s = render();
    assert_non_null(strstr(s, "\"kept\":3,"));
    assert_true(strstr(s, "file 4 ") < strstr(s, "file 5 "));
    assert_int_equal(lc_losses_keep(0), 0);
    lc_loss("f", "file 6 lost in rotation");
    s = render();
    assert_non_null(strstr(s, "\"reported\":6,\"kept\":0,\"recent\":[]}"));
    assert_int_equal(lc_losses_keep(LC_LOSSES_MAX + 1), 0); /* clamped */
}

/* Escaped for JSON, a credential masked, a long report cut whole characters. */
static void test_text(void **state)
{
    (void)state;
    char longmsg[2000];
    assert_int_equal(lc_losses_keep(4), 0);
    lc_loss("in\"put", "path \"/a\"\n from http://user:hunter2@host/x");
    memset(longmsg, 'a', sizeof(longmsg));
    memcpy(longmsg + 509, "\xc3\xa9\xc3\xa9", 4); /* é straddling the cut at 511 bytes */
    longmsg[sizeof(longmsg) - 1] = '\0';
    lc_loss("x", "%s", longmsg);
    const char *s = render();
    assert_non_null(strstr(s, "\"component\":\"in\\\"put\""));
    assert_non_null(strstr(s, "path \\\"/a\\\"\\n from http://"));
    assert_null(strstr(s, "hunter2"));
    assert_non_null(strstr(s, "aaa\xc3\xa9\"}"));
    assert_null(strstr(s, "\xc3\"}"));
}

/* Out of memory while resizing: -ENOMEM, and the list held stays whole and usable. */
static void test_keep_alloc_failure(void **state)
{
    (void)state;
    assert_int_equal(lc_losses_keep(2), 0);
    lc_loss("f", "file 1 lost in rotation");
    lc_alloc_fail_at(1);
    int rc = lc_losses_keep(16);
    lc_alloc_fail_at(0);
    assert_true(lc_alloc_failed());
    assert_int_equal(rc, -ENOMEM);
    lc_loss("f", "file 2 lost in rotation");
    lc_loss("f", "file 3 lost in rotation");
    const char *s = render();
    assert_non_null(strstr(s, "\"reported\":3,\"kept\":2,"));
    assert_non_null(strstr(s, "file 3 "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keeps_the_newest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alloc_failure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
