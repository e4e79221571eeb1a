/* SPDX-License-Identifier: MIT */
/* rand.c: xorshift64* with a seed from getrandom(); one implementation for every jitter. */
#include "core/rand.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static _Thread_local uint64_t lc_rand_state; /* 0 until the thread's first lc_rand_u64() */

/* splitmix64's finalizer: spreads weak seed material over all 64 bits. */
static uint64_t lc_rand_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t lc_rand_seed(void)
{
    uint64_t s = 0;

    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
        struct timespec rt, mt;
        clock_gettime(CLOCK_REALTIME, &rt);
        clock_gettime(CLOCK_MONOTONIC, &mt);
        s = lc_rand_mix((uint64_t)rt.tv_sec ^ ((uint64_t)rt.tv_nsec << 32) ^ (uint64_t)mt.tv_nsec ^
                        ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)&s);
    }
    return s ? s : 0x9e3779b97f4a7c15ULL;
}

uint64_t lc_rand_next(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

uint64_t lc_rand_u64(void)
{
    if (lc_rand_state == 0)
        lc_rand_state = lc_rand_seed();
    return lc_rand_next(&lc_rand_state);
}
