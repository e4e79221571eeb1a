/* SPDX-License-Identifier: MIT */
/* test_labels.c: interning, sanitising, rendering and limits of label sets. */
#include "core/labels.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void test_interned_once(void **state)
{
    (void)state;
    struct lc_kv a[] = {{"job", "x"}, {"filename", "/var/log/a"}};
    struct lc_kv b[] = {{"filename", "/var/log/a"}, {"job", "x"}};
    struct lc_labels *l1, *l2;

    assert_int_equal(lc_labels_intern(a, 2, &l1), 0);
    assert_int_equal(lc_labels_intern(b, 2, &l2), 0);
    assert_ptr_equal(l1, l2); /* same set in another order: one object */
    assert_int_equal(l1->refs, 2);
    assert_string_equal(l1->json, "{\"filename\":\"/var/log/a\",\"job\":\"x\"}");
    assert_string_equal(l1->loki, "{filename=\"/var/log/a\", job=\"x\"}");
    lc_labels_release(l1);
    lc_labels_release(l2);
    assert_int_equal(lc_labels_live(), 0);
}

static void test_sanitise_and_escape(void **state)
{
    (void)state;
    struct lc_kv a[] = {{"com.docker.compose.project", "we\"b\\"}, {"9lives", "v\n"}};
    struct lc_labels *l;

    assert_int_equal(lc_labels_intern(a, 2, &l), 0);
    assert_string_equal(l->loki, "{_lives=\"v\\n\", com_docker_compose_project=\"we\\\"b\\\\\"}");
    lc_labels_release(l);
}

static void test_last_value_wins(void **state)
{
    (void)state;
    struct lc_kv a[] = {{"job", "a"}, {"job", "b"}};
    struct lc_labels *l;

    assert_int_equal(lc_labels_intern(a, 2, &l), 0);
    assert_int_equal(l->n, 1);
    assert_string_equal(l->pairs[0].value, "b");
    lc_labels_release(l);
}

static void test_limits(void **state)
{
    (void)state;
    struct lc_kv a[LC_LABELS_MAX + 1] = {0};
    char names[LC_LABELS_MAX + 1][8];
    struct lc_labels *l = (void *)1;

    assert_int_equal(lc_labels_intern(a, 0, &l), -EINVAL);
    assert_null(l);
    for (int i = 0; i <= LC_LABELS_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "l%d", i);
        a[i].key = names[i];
        a[i].value = "v";
    }
    assert_int_equal(lc_labels_intern(a, LC_LABELS_MAX, &l), 0);
    lc_labels_release(l);
    assert_int_equal(lc_labels_intern(a, LC_LABELS_MAX + 1, &l), -EINVAL); /* Loki's limit */
    assert_int_equal(lc_labels_live(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interned_once),
        cmocka_unit_test(test_sanitise_and_escape),
        cmocka_unit_test(test_last_value_wins),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
