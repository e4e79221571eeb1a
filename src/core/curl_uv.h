/* SPDX-License-Identifier: MIT */
/* curl_uv.h: libcurl's multi interface driven by the libuv loop (as curl's
 * docs/examples/multi-uv.c). */
#ifndef LC_CURL_UV_H
#define LC_CURL_UV_H

#include <curl/curl.h>
#include <stdbool.h>
#include <uv.h>

/*
 * One lc_curl wraps one CURLM. Its connection cache is the pool: easy handles
 * added to the same lc_curl reuse keep-alive connections. No thread is
 * created: sockets are watched with uv_poll, curl's timeout with one uv_timer.
 *
 * Ownership: the caller owns each CURL easy handle; lc_curl_add borrows it
 * until the done callback runs (or lc_curl_remove). The done callback runs on
 * the loop, after the easy handle was removed from the multi, so it may
 * re-add or clean up the easy handle.
 */
struct lc_curl;

typedef void (*lc_curl_done_fn)(CURL *easy, CURLcode result, void *arg);

/*
 * max_total / max_host: CURLMOPT_MAX_TOTAL_CONNECTIONS and
 * CURLMOPT_MAX_HOST_CONNECTIONS (0: unlimited). NULL on failure.
 */
struct lc_curl *lc_curl_new(uv_loop_t *loop, long max_total, long max_host);
/*
 * Aborts transfers still running (no callbacks), closes the uv handles and
 * frees the multi once they closed; `closed` (may be NULL) runs then.
 */
void lc_curl_free(struct lc_curl *c, void (*closed)(void *arg), void *arg);
/* Starts a transfer. 0 or -ENOMEM/-EINVAL. */
int lc_curl_add(struct lc_curl *c, CURL *easy, lc_curl_done_fn done, void *arg);
/* Aborts one transfer; its callback does not run. */
void lc_curl_remove(struct lc_curl *c, CURL *easy);
/* Transfers in progress. */
unsigned lc_curl_running(const struct lc_curl *c);
/*
 * Connection use for metrics: after a transfer, new connections it opened
 * (CURLINFO_NUM_CONNECTS) are counted as new, else as reused.
 */
void lc_curl_conn_stats(const struct lc_curl *c, unsigned long *opened, unsigned long *reused);
/*
 * Socket actions run back to back on one writable event (the drain that lets
 * a large body go out in one loop iteration); for tests.
 */
unsigned long lc_curl_drained(const struct lc_curl *c);

#endif
