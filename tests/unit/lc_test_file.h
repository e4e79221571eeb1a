/* SPDX-License-Identifier: MIT */
/* lc_test_file.h: an unlinked temporary file holding given bytes, for unit tests. */
#ifndef LC_TEST_FILE_H
#define LC_TEST_FILE_H

/*
 * Header-only (a static function) so each test binary gets its own copy;
 * include it after <cmocka.h>: a failure fails the test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * A descriptor of a file under $LC_TEST_TMP (or /tmp) holding text[0..len),
 * already unlinked: what the agent holds once the daemon removed a
 * container's log. The caller closes it.
 */
static int lc_test_held_file(const char *text, size_t len)
{
    const char *base = getenv("LC_TEST_TMP");
    char path[512];
    int fd;

    if (!base || !*base)
        base = "/tmp";
    snprintf(path, sizeof(path), "%s/held-XXXXXX", base);
    mkdir(base, 0700);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    return fd;
}

#endif
