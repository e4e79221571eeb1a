/* SPDX-License-Identifier: MIT */
/* test_rand.c: the shared PRNG: known sequences, seeds that are never 0, per-thread state. */
#include "core/rand.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* xorshift64* (12, 25, 27; 0x2545f4914f6cdd1d), values computed independently. */
static void test_next_known_sequence(void **state)
{
    (void)state;
    static const struct {
        uint64_t seed;
        uint64_t out[3];
        uint64_t state_after;
    } rows[] = {
        {42,
         {0x56ce4ab7719ba3a0ULL, 0xc841eb53ebbb2ddaULL, 0xca466be0c9980276ULL},
         0x1fa08005045006eULL},
        {1,
         {0x47e4ce4b896cdd1dULL, 0xabcfa6a8e079651dULL, 0xb9d10d8feb731f57ULL},
         0xd004003202803ULL},
        {UINT64_MAX,
         {0xf92cc9e5c6000000ULL, 0x8ff484d8fd1eaee3ULL, 0x346c95f3326fabc6ULL},
         0x4feb00c60ee01dfeULL},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        uint64_t s = rows[i].seed;
        for (size_t k = 0; k < 3; k++)
            assert_int_equal(lc_rand_next(&s), rows[i].out[k]);
        assert_int_equal(s, rows[i].state_after);
    }
}

/* A nonzero state never reaches 0, so the generator never gets stuck. */
static void test_next_never_sticks(void **state)
{
    (void)state;
    uint64_t s = 1;
    for (int i = 0; i < 100000; i++) {
        lc_rand_next(&s);
        assert_int_not_equal(s, 0);
    }
}

static void test_seed_nonzero_and_varied(void **state)
{
    (void)state;
    uint64_t first = lc_rand_seed();
    bool differs = false;

    assert_int_not_equal(first, 0);
    for (int i = 0; i < 16; i++) {
        uint64_t s = lc_rand_seed();
        assert_int_not_equal(s, 0);
        differs |= s != first;
    }
    assert_true(differs);
}

/* Jitter use: every residue of a small modulus shows up, in a bounded number of draws. */
static void test_u64_covers_small_range(void **state)
{
    (void)state;
    bool seen[7] = {false};
    size_t nseen = 0;

    for (int i = 0; i < 10000 && nseen < 7; i++) {
        uint64_t r = lc_rand_u64() % 7;
        if (!seen[r]) {
            seen[r] = true;
            nseen++;
        }
    }
    assert_int_equal(nseen, 7);
}

static void *draw_two(void *arg)
{
    uint64_t *out = arg;
    out[0] = lc_rand_u64();
    out[1] = lc_rand_u64();
    return NULL;
}

/* Each thread has its own generator (seeded on first use): two threads do not replay each other. */
static void test_u64_per_thread(void **state)
{
    (void)state;
    uint64_t a[2], b[2];
    pthread_t ta, tb;

    assert_int_equal(pthread_create(&ta, NULL, draw_two, a), 0);
    assert_int_equal(pthread_join(ta, NULL), 0);
    assert_int_equal(pthread_create(&tb, NULL, draw_two, b), 0);
    assert_int_equal(pthread_join(tb, NULL), 0);
    assert_true(a[0] != b[0] || a[1] != b[1]);
    assert_true(a[0] != a[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_known_sequence),
        cmocka_unit_test(test_next_never_sticks),
        cmocka_unit_test(test_seed_nonzero_and_varied),
        cmocka_unit_test(test_u64_covers_small_range),
        cmocka_unit_test(test_u64_per_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
