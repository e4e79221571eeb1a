/* SPDX-License-Identifier: MIT */
/* test_loki_retry.c: retry queue (limits, drop policies, due order), backoff, Retry-After, breaker.
 */
#include "output/breaker.h"
#include "output/retry.h"

#include <curl/curl.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#define MS 1000000LL

static const struct lc_retry_conf def_conf = {
    .initial_ms = 1000,
    .max_ms = 60000,
    .max_items = 3,
    .max_bytes = 1000,
    .drop_policy = LC_RETRY_DROP_OLDEST,
    .seed = 42,
};

static void test_backoff_schedule(void **state)
{
    static const struct {
        uint32_t attempt;
        int64_t base;
    } rows[] = {
        {1, 1000},  {2, 2000},  {3, 4000},  {4, 8000},    {5, 16000},
        {6, 32000}, {7, 60000}, {8, 60000}, {100, 60000}, {UINT32_MAX, 60000},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int64_t base = rows[i].base, half = base / 2;
        /* the extremes of the random part */
        assert_int_equal(lc_retry_backoff_ms(&def_conf, rows[i].attempt, 0), base - half);
        assert_int_equal(lc_retry_backoff_ms(&def_conf, rows[i].attempt, (uint64_t)half), base);
        /* and many values in between: always within [base/2, base] */
        uint64_t x = 88172645463325252ULL;
        for (int k = 0; k < 1000; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            int64_t d = lc_retry_backoff_ms(&def_conf, rows[i].attempt, x);
            assert_true(d >= base - half);
            assert_true(d <= base);
            assert_true(d <= def_conf.max_ms);
        }
    }
    /* attempt 0 is treated as the first */
    assert_int_equal(lc_retry_backoff_ms(&def_conf, 0, 0), 500);
    /* initial == max: flat */
    struct lc_retry_conf flat = def_conf;
    flat.initial_ms = flat.max_ms = 5000;
    assert_int_equal(lc_retry_backoff_ms(&flat, 1, 2500), 5000);
    assert_int_equal(lc_retry_backoff_ms(&flat, 9, 0), 2500);
}

static void test_jitter_spreads(void **state)
{
    struct lc_retry *q;
    int64_t lo = INT64_MAX, hi = 0;

    (void)state;
    assert_int_equal(lc_retry_new(&q, &def_conf), 0);
    for (int i = 0; i < 2000; i++) {
        int64_t d = lc_retry_delay_ms(q, 4, -1);
        assert_true(d >= 4000 && d <= 8000);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    /* not a constant: the jitter really spreads retries of many batches */
    assert_true(hi - lo > 2000);
    lc_retry_free(q);
}

static void test_delay_with_retry_after(void **state)
{
    struct lc_retry *q;

    (void)state;
    assert_int_equal(lc_retry_new(&q, &def_conf), 0);
    /* Retry-After longer than the backoff wins */
    assert_int_equal(lc_retry_delay_ms(q, 1, 5000), 5000);
    /* but never beyond retry.max */
    assert_int_equal(lc_retry_delay_ms(q, 1, 3600000), 60000);
    /* shorter than the backoff: the backoff stands */
    int64_t d = lc_retry_delay_ms(q, 3, 10);
    assert_true(d >= 2000 && d <= 4000);
    d = lc_retry_delay_ms(q, 1, 0);
    assert_true(d >= 500 && d <= 1000);
    d = lc_retry_delay_ms(q, 2, -1);
    assert_true(d >= 1000 && d <= 2000);
    lc_retry_free(q);
}

static void test_retry_after_parse(void **state)
{
    /* Wed, 21 Oct 2015 07:28:00 GMT */
    const int64_t t = 1445412480;
    static const struct {
        const char *in;
        int64_t now;
        int64_t want;
    } rows[] = {
        {"120", t, 120000},
        {"0", t, 0},
        {" 5 ", t, 5000},
        {"5\r\n", t, 5000},
        {"", t, -1},
        {"   ", t, -1},
        {"abc", t, -1},
        {"-5", t, -1},
        {"1.5", t, -1},
        {"12abc", t, -1},
        {"Wed, 21 Oct 2015 07:28:00 GMT", t - 30, 30000},
        {"Wed, 21 Oct 2015 07:28:00 GMT", t, 0},
        {"Wed, 21 Oct 2015 07:28:00 GMT", t + 100, 0},
        {"Wednesday, 21-Oct-15 07:28:00 GMT", t - 2, 2000},
        {"Wed Oct 21 07:28:00 2015", t - 7, 7000},
        {"not a date at all, really", t, -1},
        {"Wed, 21 Oct 2015 07:28:00 GMT and a lot of trailing text beyond sixty-four", t, -1},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int64_t got = lc_retry_after_parse(rows[i].in, rows[i].now);
        if (got != rows[i].want)
            fail_msg("row %zu \"%s\": got %lld want %lld", i, rows[i].in, (long long)got,
                     (long long)rows[i].want);
    }
    assert_int_equal(lc_retry_after_parse(NULL, t), -1);
    /* absurd numbers do not overflow */
    assert_true(lc_retry_after_parse("99999999999999999999999", t) > 0);
}

static void test_new_invalid(void **state)
{
    struct lc_retry *q = (struct lc_retry *)1;
    struct lc_retry_conf c;

    (void)state;
    c = def_conf;
    c.max_items = 0;
    assert_int_equal(lc_retry_new(&q, &c), -EINVAL);
    assert_null(q);
    c = def_conf;
    c.initial_ms = 0;
    assert_int_equal(lc_retry_new(&q, &c), -EINVAL);
    c = def_conf;
    c.initial_ms = 70000;
    assert_int_equal(lc_retry_new(&q, &c), -EINVAL);
    c = def_conf;
    c.max_bytes = 0;
    assert_int_equal(lc_retry_new(&q, &c), -EINVAL);
    lc_retry_free(NULL);
}

/* Pushes items 1..n (as pointers) of `bytes` each, evicting after each push. */
static int push_n(struct lc_retry *q, int n, int64_t bytes, intptr_t *victims, int *nv)
{
    for (intptr_t i = 1; i <= n; i++) {
        void *v;
        int64_t vb;
        if (lc_retry_push(q, (void *)i, bytes, i * MS) != 0)
            return -1;
        while ((v = lc_retry_evict(q, &vb)) != NULL) {
            assert_int_equal(vb, bytes);
            victims[(*nv)++] = (intptr_t)v;
        }
    }
    return 0;
}

static void test_drop_policies(void **state)
{
    static const struct {
        int policy;
        intptr_t victims[2]; /* after pushing 1..5 into a queue of 3 */
        intptr_t left[3];    /* then popped oldest first */
    } rows[] = {
        {LC_RETRY_DROP_OLDEST, {1, 2}, {3, 4, 5}},
        {LC_RETRY_DROP_NEWEST, {4, 5}, {1, 2, 3}},
    };
    (void)state;
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        struct lc_retry_conf c = def_conf;
        struct lc_retry *q;
        intptr_t v[8];
        int nv = 0;
        int64_t b;
        c.drop_policy = rows[r].policy;
        assert_int_equal(lc_retry_new(&q, &c), 0);
        assert_int_equal(push_n(q, 5, 10, v, &nv), 0);
        assert_int_equal(nv, 2);
        assert_int_equal(v[0], rows[r].victims[0]);
        assert_int_equal(v[1], rows[r].victims[1]);
        assert_int_equal(lc_retry_count(q), 3);
        assert_int_equal(lc_retry_bytes(q), 30);
        assert_true(lc_retry_full(q));
        for (int i = 0; i < 3; i++)
            assert_int_equal((intptr_t)lc_retry_pop(q, &b), rows[r].left[i]);
        assert_null(lc_retry_pop(q, &b));
        assert_false(lc_retry_full(q));
        assert_int_equal(lc_retry_bytes(q), 0);
        lc_retry_free(q);
    }
}

static void test_drop_random(void **state)
{
    struct lc_retry_conf c = def_conf;
    int seen[11] = {0};

    (void)state;
    c.drop_policy = LC_RETRY_DROP_RANDOM;
    /* across seeds, every position can be the victim; the queue stays at its cap */
    for (uint64_t seed = 1; seed <= 200; seed++) {
        struct lc_retry *q;
        intptr_t v[16];
        int nv = 0;
        c.seed = seed;
        assert_int_equal(lc_retry_new(&q, &c), 0);
        assert_int_equal(push_n(q, 10, 1, v, &nv), 0);
        assert_int_equal(nv, 7);
        assert_int_equal(lc_retry_count(q), 3);
        for (int i = 0; i < nv; i++)
            seen[v[i]]++;
        /* no item is both a victim and still queued */
        int64_t b;
        void *it;
        while ((it = lc_retry_pop(q, &b)) != NULL)
            for (int i = 0; i < nv; i++)
                assert_int_not_equal(v[i], (intptr_t)it);
        lc_retry_free(q);
    }
    for (int i = 1; i <= 10; i++)
        assert_true(seen[i] > 0);
}

static void test_byte_limit(void **state)
{
    struct lc_retry *q;
    intptr_t v[8];
    int nv = 0;
    int64_t b;

    (void)state;
    assert_int_equal(lc_retry_new(&q, &def_conf), 0);
    /* 400 + 400 fit; the third (1200 total) evicts the oldest */
    assert_int_equal(push_n(q, 3, 400, v, &nv), 0);
    assert_int_equal(nv, 1);
    assert_int_equal(v[0], 1);
    assert_int_equal(lc_retry_bytes(q), 800);
    assert_false(lc_retry_full(q));
    /* one item above max_bytes on its own: it does not stay */
    assert_int_equal(lc_retry_push(q, (void *)99, 5000, 0), 0);
    void *x;
    nv = 0;
    while ((x = lc_retry_evict(q, &b)) != NULL)
        v[nv++] = (intptr_t)x;
    assert_int_equal(nv, 3); /* oldest first: 2, 3, then 99 itself */
    assert_int_equal(v[2], 99);
    assert_int_equal(lc_retry_count(q), 0);
    assert_int_equal(lc_retry_bytes(q), 0);
    lc_retry_free(q);
}

static void test_push_without_evict(void **state)
{
    struct lc_retry *q;

    (void)state;
    assert_int_equal(lc_retry_new(&q, &def_conf), 0);
    for (intptr_t i = 1; i <= 4; i++) /* cap is max_items + 1 */
        assert_int_equal(lc_retry_push(q, (void *)i, 1, 0), 0);
    assert_int_equal(lc_retry_push(q, (void *)5, 1, 0), -ENOSPC);
    assert_int_equal(lc_retry_count(q), 4);
    lc_retry_free(q);
}

static void test_due_order(void **state)
{
    struct lc_retry_conf c = def_conf;
    struct lc_retry *q;
    int64_t b;

    (void)state;
    c.max_items = 10;
    assert_int_equal(lc_retry_new(&q, &c), 0);
    assert_int_equal(lc_retry_next_due(q), INT64_MAX);
    assert_null(lc_retry_pop_due(q, INT64_MAX, &b));
    lc_retry_push(q, (void *)1, 1, 300 * MS);
    lc_retry_push(q, (void *)2, 1, 100 * MS);
    lc_retry_push(q, (void *)3, 1, 200 * MS);
    lc_retry_push(q, (void *)4, 1, 100 * MS); /* same due as 2, pushed later */
    assert_int_equal(lc_retry_next_due(q), 100 * MS);
    assert_null(lc_retry_pop_due(q, 99 * MS, &b));
    assert_int_equal((intptr_t)lc_retry_pop_due(q, 150 * MS, &b), 2);
    assert_int_equal((intptr_t)lc_retry_pop_due(q, 150 * MS, &b), 4);
    assert_null(lc_retry_pop_due(q, 150 * MS, &b));
    assert_int_equal(lc_retry_next_due(q), 200 * MS);
    /* flush: nothing waits longer than 250 ms from now */
    lc_retry_expedite(q, 250 * MS);
    assert_int_equal((intptr_t)lc_retry_pop_due(q, 250 * MS, &b), 3);
    assert_int_equal((intptr_t)lc_retry_pop_due(q, 250 * MS, &b), 1);
    assert_int_equal(lc_retry_count(q), 0);
    lc_retry_free(q);
}

/* ---- breaker --------------------------------------------------------------- */

enum op { FAIL, OK, CAN, SEND };

static void test_breaker_transitions(void **state)
{
    static const struct {
        enum op op;
        int64_t t_ms;
        int can; /* CAN: expected answer */
        enum lc_breaker_state after;
    } steps[] = {
        {CAN, 0, 1, LC_BREAKER_CLOSED},
        {FAIL, 0, 0, LC_BREAKER_CLOSED},
        {FAIL, 1, 0, LC_BREAKER_CLOSED},
        {OK, 2, 0, LC_BREAKER_CLOSED}, /* success resets the count */
        {FAIL, 3, 0, LC_BREAKER_CLOSED},
        {FAIL, 4, 0, LC_BREAKER_CLOSED},
        {FAIL, 10, 0, LC_BREAKER_OPEN}, /* third consecutive: opens at 10 */
        {CAN, 500, 0, LC_BREAKER_OPEN},
        {FAIL, 600, 0, LC_BREAKER_OPEN}, /* a late failure does not extend the cooldown */
        {CAN, 1009, 0, LC_BREAKER_OPEN},
        {CAN, 1010, 1, LC_BREAKER_HALF_OPEN}, /* cooldown over: one probe */
        {SEND, 1010, 0, LC_BREAKER_HALF_OPEN},
        {CAN, 1011, 0, LC_BREAKER_HALF_OPEN}, /* only one */
        {FAIL, 1100, 0, LC_BREAKER_OPEN},     /* probe failed: open again from 1100 */
        {CAN, 2099, 0, LC_BREAKER_OPEN},
        {CAN, 2100, 1, LC_BREAKER_HALF_OPEN},
        {SEND, 2100, 0, LC_BREAKER_HALF_OPEN},
        {OK, 2200, 0, LC_BREAKER_CLOSED}, /* probe succeeded */
        {CAN, 2200, 1, LC_BREAKER_CLOSED},
        {FAIL, 2300, 0, LC_BREAKER_CLOSED}, /* counting starts over */
        {FAIL, 2301, 0, LC_BREAKER_CLOSED},
        {FAIL, 2302, 0, LC_BREAKER_OPEN},
        {OK, 2303, 0, LC_BREAKER_CLOSED}, /* a request sent before it opened succeeded */
    };
    struct lc_breaker b;

    (void)state;
    lc_breaker_init(&b, 3, 1000);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int64_t t = steps[i].t_ms * MS;
        switch (steps[i].op) {
        case FAIL:
            lc_breaker_failure(&b, t);
            break;
        case OK:
            lc_breaker_success(&b);
            break;
        case SEND:
            lc_breaker_on_send(&b);
            break;
        case CAN:
            if (lc_breaker_can_send(&b, t) != (steps[i].can != 0))
                fail_msg("step %zu: can_send != %d", i, steps[i].can);
            break;
        }
        if (b.state != steps[i].after)
            fail_msg("step %zu: state %s, want %s", i, lc_breaker_state_name(b.state),
                     lc_breaker_state_name(steps[i].after));
        if (i == 6)
            assert_int_equal(lc_breaker_reopen_ns(&b), 1010 * MS);
    }
    assert_int_equal(b.opens, 3);
    assert_int_equal(lc_breaker_reopen_ns(&b), 0);
}

static void test_breaker_disabled(void **state)
{
    struct lc_breaker b;

    (void)state;
    lc_breaker_init(&b, 0, 1000);
    for (int i = 0; i < 100; i++)
        lc_breaker_failure(&b, i);
    assert_int_equal(b.state, LC_BREAKER_CLOSED);
    assert_true(lc_breaker_can_send(&b, 0));
    assert_string_equal(lc_breaker_state_name(LC_BREAKER_OPEN), "open");
    assert_string_equal(lc_breaker_state_name(LC_BREAKER_HALF_OPEN), "half-open");
    assert_string_equal(lc_breaker_state_name(LC_BREAKER_CLOSED), "closed");
    lc_breaker_trip(&b, 0); /* disabled stays disabled */
    assert_int_equal(b.state, LC_BREAKER_CLOSED);
}

/* A credential failure opens at once; an open breaker keeps its cooldown; a probe re-trips. */
static void test_breaker_trip(void **state)
{
    struct lc_breaker b;

    (void)state;
    lc_breaker_init(&b, 5, 1000);
    lc_breaker_trip(&b, 10 * MS);
    assert_int_equal(b.state, LC_BREAKER_OPEN);
    assert_int_equal(b.opens, 1);
    lc_breaker_trip(&b, 500 * MS);
    assert_int_equal(lc_breaker_reopen_ns(&b), 1010 * MS);
    assert_int_equal(b.opens, 1);
    assert_true(lc_breaker_can_send(&b, 1010 * MS));
    lc_breaker_on_send(&b);
    lc_breaker_trip(&b, 1020 * MS);
    assert_int_equal(b.state, LC_BREAKER_OPEN);
    assert_int_equal(b.opens, 2);
    assert_int_equal(lc_breaker_reopen_ns(&b), 2020 * MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_schedule),
        cmocka_unit_test(test_jitter_spreads),
        cmocka_unit_test(test_delay_with_retry_after),
        cmocka_unit_test(test_retry_after_parse),
        cmocka_unit_test(test_new_invalid),
        cmocka_unit_test(test_drop_policies),
        cmocka_unit_test(test_drop_random),
        cmocka_unit_test(test_byte_limit),
        cmocka_unit_test(test_push_without_evict),
        cmocka_unit_test(test_due_order),
        cmocka_unit_test(test_breaker_transitions),
        cmocka_unit_test(test_breaker_disabled),
        cmocka_unit_test(test_breaker_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
