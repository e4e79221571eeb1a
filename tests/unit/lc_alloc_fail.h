/* SPDX-License-Identifier: MIT */
/* lc_alloc_fail.h: allocation failure injection for unit tests (after curl's torture tests). */
#ifndef LC_ALLOC_FAIL_H
#define LC_ALLOC_FAIL_H

#include <stdbool.h>

/*
 * A test linked with lc_alloc_fail.c and
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup,--wrap=free
 * routes every allocation the project's code makes (and, through
 * lc_alloc_fail_sqlite(), SQLite's) through a counter. The classic loop:
 *
 *     for (long n = 1;; n++) {
 *         lc_alloc_fail_at(n);     // the n-th allocation from now fails
 *         scenario();              // must cope: an error, no crash, no leak
 *         lc_alloc_fail_at(0);
 *         if (!lc_alloc_failed())  // the scenario made fewer than n allocations:
 *             break;               // every one of them has been failed once
 *     }
 *
 * Thread-safe (atomics): the disk worker's allocations count too.
 */
/* The n-th allocation from now fails (1-based), once; 0 disarms. */
void lc_alloc_fail_at(long n);
/* True when the allocation armed by the last lc_alloc_fail_at(n > 0) was reached and failed. */
bool lc_alloc_failed(void);
/* Allocations attempted since the last lc_alloc_fail_at(n > 0). */
long lc_alloc_count(void);
/*
 * Live blocks: successful allocations minus frees of non-NULL pointers made by
 * code linked with the wrap (a leak check without ASan; memory a library
 * allocated and the project frees, or the reverse, skews it, so compare it
 * only around code that does neither).
 */
long lc_alloc_live(void);
/* Routes SQLite's allocations through the same counter; call before any SQLite use. 0 or -1. */
int lc_alloc_fail_sqlite(void);

#endif
