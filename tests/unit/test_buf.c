/* SPDX-License-Identifier: MIT */
/* test_buf.c: caps, growth, printf, JSON escaping and consume of the capped byte buffer. */
#include "core/buf.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

/* The buffer holds exactly `s` and stays NUL-terminated. */
static void assert_content(const struct lc_buf *b, const char *s, size_t n)
{
    assert_int_equal(b->len, n);
    assert_true(b->alloc > b->len);
    assert_memory_equal(b->data, s, n);
    assert_int_equal(b->data[n], '\0');
}

static void test_append_up_to_cap(void **state)
{
    (void)state;
    static const struct {
        size_t cap;
        size_t first, second; /* two appends of 'a's */
        int rc2;
        size_t len;
    } cases[] = {
        {10, 10, 0, 0, 10},        {10, 9, 1, 0, 10},  {10, 10, 1, -E2BIG, 10},
        {10, 5, 6, -E2BIG, 5},     {0, 0, 0, 0, 0},    {0, 0, 1, -E2BIG, 0},
        {1000, 500, 500, 0, 1000}, {64, 63, 1, 0, 64}, {65, 64, 1, 0, 65},
    };
    char src[1000];
    memset(src, 'a', sizeof(src));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lc_buf b;
        lc_buf_init(&b, cases[i].cap);
        assert_int_equal(lc_buf_append(&b, src, cases[i].first), 0);
        assert_int_equal(lc_buf_append(&b, src, cases[i].second), cases[i].rc2);
        assert_content(&b, src, cases[i].len);
        assert_true(b.alloc <= cases[i].cap + 1);
        lc_buf_free(&b);
        assert_null(b.data);
        assert_int_equal(b.len, 0);
    }
}

static void test_putc_and_reset(void **state)
{
    (void)state;
    struct lc_buf b;
    lc_buf_init(&b, 3);
    assert_int_equal(lc_buf_putc(&b, 'x'), 0);
    assert_int_equal(lc_buf_putc(&b, 'y'), 0);
    assert_int_equal(lc_buf_putc(&b, 'z'), 0);
    assert_int_equal(lc_buf_putc(&b, 'w'), -E2BIG);
    assert_content(&b, "xyz", 3);
    size_t alloc = b.alloc;
    char *data = b.data;
    lc_buf_reset(&b);
    assert_content(&b, "", 0);
    assert_int_equal(b.alloc, alloc); /* reset keeps the allocation */
    assert_ptr_equal(b.data, data);
    lc_buf_reset(&b);
    lc_buf_free(&b);
    lc_buf_reset(&b);                                /* on a freed buffer: no crash */
    assert_int_equal(lc_buf_append(&b, "ab", 2), 0); /* freed buffers are reusable */
    assert_content(&b, "ab", 2);
    lc_buf_free(&b);
}

static void test_reserve(void **state)
{
    (void)state;
    struct lc_buf b;
    lc_buf_init(&b, 100);
    assert_int_equal(lc_buf_reserve(&b, 100), 0);
    assert_int_equal(b.len, 0);
    assert_true(b.alloc >= 101);
    assert_int_equal(lc_buf_reserve(&b, 101), -E2BIG);
    assert_int_equal(lc_buf_reserve(&b, SIZE_MAX), -E2BIG);
    assert_int_equal(lc_buf_append(&b, "abc", 3), 0);
    assert_int_equal(lc_buf_reserve(&b, 98), -E2BIG);
    assert_int_equal(lc_buf_reserve(&b, 97), 0);
    assert_int_equal(lc_buf_append(&b, "", 0), 0);
    assert_content(&b, "abc", 3);
    lc_buf_free(&b);
}

static void test_printf(void **state)
{
    (void)state;
    struct lc_buf b;
    lc_buf_init(&b, 16);
    assert_int_equal(lc_buf_printf(&b, "%d-%s", 42, "ab"), 0);
    assert_content(&b, "42-ab", 5);
    /* 5 + 12 > 16: refused whole, content intact (even though part of it fit). */
    assert_int_equal(lc_buf_printf(&b, "%s", "0123456789AB"), -E2BIG);
    assert_content(&b, "42-ab", 5);
    assert_int_equal(lc_buf_printf(&b, "%s", "0123456789A"), 0); /* exactly the cap */
    assert_content(&b, "42-ab0123456789A", 16);
    assert_int_equal(lc_buf_printf(&b, "%s", ""), 0);
    assert_int_equal(lc_buf_printf(&b, "x"), -E2BIG);
    assert_content(&b, "42-ab0123456789A", 16);
    lc_buf_free(&b);

    /* Growth from nothing through several doublings in one call. */
    char big[5001];
    memset(big, 'q', 5000);
    big[5000] = '\0';
    lc_buf_init(&b, 1 << 20);
    assert_int_equal(lc_buf_printf(&b, "<%s>", big), 0);
    assert_int_equal(b.len, 5002);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[5001], '>');
    assert_int_equal(b.data[5002], '\0');
    lc_buf_free(&b);
}

static void test_json_str_table(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t n;
        const char *out;
    } cases[] = {
        {"", 0, ""},
        {"plain text / slash", 18, "plain text / slash"},
        {"\"", 1, "\\\""},
        {"\\", 1, "\\\\"},
        {"a\nb\rc\td", 7, "a\\nb\\rc\\td"},
        {"\b\f", 2, "\\b\\f"},
        {"\x01", 1, "\\u0001"},
        {"\x1f\x0b", 2, "\\u001f\\u000b"},
        {"nul\0x", 5, "nul\\u0000x"},
        {"\x7f", 1, "\x7f"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
         "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        {"\xff\xfe", 2, "\xff\xfe"}, /* invalid UTF-8 is copied, not judged */
        {"end\\", 4, "end\\\\"},
        {"\"\"", 2, "\\\"\\\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lc_buf b;
        lc_buf_init(&b, 256);
        assert_int_equal(lc_buf_append(&b, "[", 1), 0);
        assert_int_equal(lc_buf_json_str(&b, cases[i].in, cases[i].n), 0);
        size_t want = strlen(cases[i].out);
        assert_int_equal(b.len, want + 1);
        assert_memory_equal(b.data + 1, cases[i].out, want);
        lc_buf_free(&b);
    }
}

static void test_json_str_rolls_back_at_cap(void **state)
{
    (void)state;
    static const struct {
        size_t cap;
        const char *in;
        int rc;
    } cases[] = {
        {6, "ab\n", 0},                             /* "x" + "ab\n" = 5 bytes */
        {4, "ab\n", -E2BIG},                        /* escape is what overflows */
        {5, "abc\x01", -E2BIG},                     /* \u0001 overflows */
        {10, "abc\x01", 0},     {3, "abc", -E2BIG}, /* the final run overflows */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lc_buf b;
        lc_buf_init(&b, cases[i].cap);
        assert_int_equal(lc_buf_putc(&b, 'x'), 0);
        assert_int_equal(lc_buf_json_str(&b, cases[i].in, strlen(cases[i].in)), cases[i].rc);
        if (cases[i].rc < 0)
            assert_content(&b, "x", 1);
        lc_buf_free(&b);
    }
}

static void test_consume(void **state)
{
    (void)state;
    struct lc_buf b;
    lc_buf_init(&b, 64);
    assert_int_equal(lc_buf_append(&b, "hello world", 11), 0);
    lc_buf_consume(&b, 0);
    assert_content(&b, "hello world", 11);
    lc_buf_consume(&b, 6);
    assert_content(&b, "world", 5);
    lc_buf_consume(&b, 5);
    assert_content(&b, "", 0);
    assert_int_equal(lc_buf_append(&b, "abc", 3), 0);
    lc_buf_consume(&b, 100);
    assert_content(&b, "", 0);
    lc_buf_free(&b);
    lc_buf_consume(&b, 1); /* empty, never allocated */
    assert_int_equal(b.len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_up_to_cap), cmocka_unit_test(test_putc_and_reset),
        cmocka_unit_test(test_reserve),          cmocka_unit_test(test_printf),
        cmocka_unit_test(test_json_str_table),   cmocka_unit_test(test_json_str_rolls_back_at_cap),
        cmocka_unit_test(test_consume),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
