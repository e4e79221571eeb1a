/* SPDX-License-Identifier: MIT */
/* docker_meta.h: container metadata cache (id -> name, image, compose, labels), one inspect per
 * container. */
#ifndef LC_DOCKER_META_H
#define LC_DOCKER_META_H

#include "core/options.h" /* struct lc_kv */
#include "input/docker_client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * What a docker input needs to label a container's records, fetched with one
 * GET /containers/{id}/json and kept for `ttl_ms`. Concurrent lookups of one
 * id share one inspect. The cache is bounded: at most max_entries entries
 * (the oldest fetched is evicted first) and at most max_entries inspects in
 * flight. `destroy` and `rename` events invalidate an entry.
 *
 * Ownership: the cache copies everything it keeps (one allocation per entry).
 * An entry pointer (from lc_docker_meta_get or a callback) is borrowed: it is
 * valid until control returns to the event loop or the next call that changes
 * the cache (get, put, invalidate, on_event); copy what you keep. Loop thread
 * only.
 */

struct lc_docker_meta;

struct lc_docker_meta_entry {
    const char *id;              /* the id it was looked up with */
    const char *name;            /* without the leading '/' */
    const char *image;           /* Config.Image */
    const char *compose_project; /* label com.docker.compose.project, "" if none */
    const char *compose_service; /* label com.docker.compose.service, "" if none */
    const struct lc_kv *labels;  /* labels matching labels_allowlist, sorted by key */
    size_t nlabels;
    const struct lc_kv *all_labels; /* every label (what include/exclude match), as inspected */
    size_t nall_labels;
    const char *log_path;   /* "" when the log driver keeps no file */
    const char *log_driver; /* e.g. "json-file" */
    bool tty;               /* the API log stream is raw, not multiplexed */
    int64_t fetched_ms;     /* when the inspect answered (the cache's clock) */
};

/* How an inspect is made; the default calls lc_docker_client_inspect / _cancel. */
typedef int (*lc_docker_meta_inspect_fn)(void *ctx, const char *id,
                                         lc_docker_client_inspect_fn done, void *done_arg);
typedef unsigned (*lc_docker_meta_cancel_fn)(void *ctx, const void *done_arg);

struct lc_docker_meta_opts {
    int64_t ttl_ms;                      /* 0: 60000 */
    size_t max_entries;                  /* 0: 1024 */
    size_t max_labels;                   /* allowlisted labels kept per entry; 0: 32 */
    const char *const *labels_allowlist; /* fnmatch(3) globs on label keys; copied */
    size_t nallow;
    const char *name; /* input instance, for metrics; NULL: "docker" */
    /* Replacements for tests (NULL: the api and CLOCK_MONOTONIC). */
    lc_docker_meta_inspect_fn inspect;
    lc_docker_meta_cancel_fn cancel;
    void *inspect_ctx;
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;
};

/* e: the entry, or NULL with err < 0 (the inspect's error, e.g. -ENOENT). */
typedef void (*lc_docker_meta_fn)(void *arg, int err, const struct lc_docker_meta_entry *e);

#define LC_DOCKER_META_PENDING 1

/*
 * Creates a cache that inspects through `api` (which must outlive it; it may
 * be NULL when opts->inspect is set). NULL on allocation failure or bad
 * options (a pattern list with nallow > 0 and no patterns).
 */
struct lc_docker_meta *lc_docker_meta_new(struct lc_docker_client *client,
                                          const struct lc_docker_meta_opts *opts);

/*
 * Cancels the inspects in flight (their waiters are not called) and frees the
 * cache. May be called from inside a callback of the cache. NULL is a no-op.
 */
void lc_docker_meta_free(struct lc_docker_meta *m);

/*
 * Looks `id` up. Returns 0 with *out set on a fresh hit (cb is not called);
 * LC_DOCKER_META_PENDING when an inspect was started or is already under way
 * for this id: cb(arg, ...) runs once it answered; or a negative errno and no
 * callback: -EINVAL (bad id), -EBUSY (max_entries inspects in flight),
 * -ENOMEM, or the error of starting the inspect.
 */
int lc_docker_meta_get(struct lc_docker_meta *m, const char *id, lc_docker_meta_fn cb, void *arg,
                       const struct lc_docker_meta_entry **out);

/* The entry if cached and fresh, else NULL; never fetches, not counted as hit or miss. */
const struct lc_docker_meta_entry *lc_docker_meta_peek(struct lc_docker_meta *m, const char *id);

/*
 * Stores what an inspect made elsewhere returned (e.g. discovery already
 * inspected the container), under `id`. 0 or -EINVAL/-ENOMEM.
 */
int lc_docker_meta_put(struct lc_docker_meta *m, const char *id, const struct lc_docker_inspect *c);

/* Removes waiters registered with `arg`; they will not be called. Returns how many. */
unsigned lc_docker_meta_cancel(struct lc_docker_meta *m, const void *arg);

/*
 * Forgets `id`. An inspect in flight for it still answers its waiters, but
 * its result is not kept.
 */
void lc_docker_meta_invalidate(struct lc_docker_meta *m, const char *id);

/* Applies a container event: destroy and rename invalidate the entry. */
void lc_docker_meta_on_event(struct lc_docker_meta *m, const struct lc_docker_event *ev);

struct lc_docker_meta_stats {
    uint64_t hits;
    uint64_t misses;   /* lookups that needed an inspect (including joining one under way) */
    uint64_t inspects; /* inspects started */
    uint64_t inspect_errors;
    uint64_t evictions;   /* removed to stay under max_entries */
    uint64_t expirations; /* removed because older than ttl_ms */
    uint64_t invalidations;
    size_t size;    /* entries cached now */
    size_t pending; /* inspects in flight */
};
void lc_docker_meta_get_stats(const struct lc_docker_meta *m, struct lc_docker_meta_stats *st);

#endif
