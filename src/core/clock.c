/* SPDX-License-Identifier: MIT */
/* clock.c: the wall and monotonic clocks in ns. */
#include "core/clock.h"

#include "core/record-t.h"

#include <time.h>

int64_t lc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * LC_NS_PER_SEC + ts.tv_nsec;
}

int64_t lc_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * LC_NS_PER_SEC + ts.tv_nsec;
}
