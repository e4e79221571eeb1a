/* SPDX-License-Identifier: MIT */
/* test_docker_select.c: include/exclude on every container label, and which logging drivers
 * each mode reads (issues 15 and 19). */
#include "input/docker.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static const struct lc_kv all[] = {{"bars", "9"}, {"logging", "off"}, {"app.tier", "front"}};
static const struct lc_kv allowed[] = {{"app.tier", "front"}};

/* The entry as the cache gives it with labels_allowlist ["app.*"]. */
static const struct lc_docker_meta_entry entry = {.id = "abc",
                                                  .name = "web",
                                                  .image = "img",
                                                  .labels = allowed,
                                                  .nlabels = 1,
                                                  .all_labels = all,
                                                  .nall_labels = 3,
                                                  .log_driver = "json-file"};

static bool sel(char **inc, size_t ninc, char **exc, size_t nexc)
{
    struct lc_docker_conf c = {0};

    c.include.labels.v = inc;
    c.include.labels.n = ninc;
    c.exclude.labels.v = exc;
    c.exclude.labels.n = nexc;
    return lc_docker_selected(&c, &entry);
}

static void test_labels_beyond_the_allowlist(void **state)
{
    char *k[] = {"bars"}, *kv[] = {"bars=9"}, *other[] = {"bars=8"}, *glob[] = {"ba?s=[0-9]"},
         *allow_glob[] = {"app.*=fr*"}, *log[] = {"logging=off"}, *logglob[] = {"log*=of?"},
         *none[] = {"nope"};

    (void)state;
    assert_true(sel(k, 1, NULL, 0)); /* not allowlisted, still matched */
    assert_true(sel(kv, 1, NULL, 0));
    assert_false(sel(other, 1, NULL, 0));
    assert_true(sel(glob, 1, NULL, 0));
    assert_true(sel(allow_glob, 1, NULL, 0));
    assert_false(sel(none, 1, NULL, 0));
    assert_false(sel(NULL, 0, log, 1)); /* logging=off excludes */
    assert_false(sel(NULL, 0, logglob, 1));
    assert_true(sel(NULL, 0, none, 1));
    assert_false(sel(k, 1, log, 1)); /* included, then excluded */
}

static void test_drivers_per_mode(void **state)
{
    const char *remedy = NULL;

    (void)state;
    assert_true(lc_docker_driver_readable(LC_DOCKER_MODE_FILE, "json-file", &remedy));
    assert_false(lc_docker_driver_readable(LC_DOCKER_MODE_FILE, "local", &remedy));
    assert_non_null(strstr(remedy, "mode: api"));
    remedy = NULL;
    assert_false(lc_docker_driver_readable(LC_DOCKER_MODE_FILE, "none", &remedy));
    assert_non_null(remedy);
    assert_true(lc_docker_driver_readable(LC_DOCKER_MODE_API, "json-file", &remedy));
    assert_true(lc_docker_driver_readable(LC_DOCKER_MODE_API, "local", &remedy));
    assert_true(lc_docker_driver_readable(LC_DOCKER_MODE_API, "syslog", &remedy)); /* asks */
    assert_true(lc_docker_driver_readable(LC_DOCKER_MODE_API, "", &remedy));       /* unknown */
    remedy = NULL;
    assert_false(lc_docker_driver_readable(LC_DOCKER_MODE_API, "none", &remedy));
    assert_non_null(remedy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels_beyond_the_allowlist),
        cmocka_unit_test(test_drivers_per_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
