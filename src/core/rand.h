/* SPDX-License-Identifier: MIT */
/* rand.h: the one pseudo-random source (xorshift64*), for jitter and sampling, never secrets. */
#ifndef LC_RAND_H
#define LC_RAND_H

#include <stdint.h>

/*
 * Nothing here allocates or returns owned memory. A state is a caller's uint64_t
 * that must never be 0 (lc_rand_seed() never returns 0); lc_rand_u64() keeps one
 * per thread on its own.
 */

/*
 * 64 bits from getrandom() (non-blocking), or, when the kernel cannot give
 * them, from the clocks, the pid and an address. Never 0: a valid state.
 */
uint64_t lc_rand_seed(void);

/*
 * Advances *state (xorshift64*) and returns the next number. *state must not
 * be 0. Deterministic: the same seed gives the same sequence (for tests).
 */
uint64_t lc_rand_next(uint64_t *state);

/* The next number of this thread's generator, seeded by lc_rand_seed() on first use. */
uint64_t lc_rand_u64(void);

#endif
