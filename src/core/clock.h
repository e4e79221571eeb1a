/* SPDX-License-Identifier: MIT */
/* clock.h: the two clocks, in nanoseconds: wall (timestamps) and monotonic (ages, deadlines). */
#ifndef LC_CLOCK_H
#define LC_CLOCK_H

#include <stdint.h>

/* Wall clock (CLOCK_REALTIME), ns since the epoch: for timestamps a record or a file carries. */
int64_t lc_now_ns(void);
/* Monotonic clock (CLOCK_MONOTONIC), ns: for ages, delays and deadlines (never jumps back). */
int64_t lc_mono_ns(void);

#endif
