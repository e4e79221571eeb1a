/* SPDX-License-Identifier: MIT */
/* docker_client.h: Docker Engine API client (GET only) over the unix socket, on the event loop. */
#ifndef LC_DOCKER_CLIENT_H
#define LC_DOCKER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "parse/docker_engine_json.h" /* the version, summary, inspect and event structs */

/*
 * One struct lc_docker_client talks to one daemon socket, on the loop thread only.
 * Two libcurl multis (core/curl_uv.h) carry its requests:
 * - short requests (ping, version, list, inspect) share a small pool of
 *   keep-alive connections (max_pool_conns); their easy handles are recycled;
 * - each followed stream (events, logs) is one easy handle on a second multi
 *   and holds one connection for its whole life; the connection is closed when
 *   the stream ends or is closed (never returned to a cache), so open FDs go
 *   back to their baseline as containers come and go.
 * Only GET requests are ever sent: there is one place that builds requests and
 * it sets CURLOPT_HTTPGET (and asserts it is the only method).
 *
 * Ownership and callbacks:
 * - Every string passed in is copied (or used only during the call).
 * - Every result handed to a callback (struct lc_docker_client_result, version,
 *   summaries, inspect, event, stream data) is borrowed for the duration of
 *   the callback: copy what you keep.
 * - A call that returns an error never calls its callback. A call that returns
 *   0 calls its callback exactly once (short requests), or for streams calls
 *   on_end exactly once, unless it was cancelled first (lc_docker_client_cancel,
 *   lc_docker_client_stream_close, lc_docker_client_free): after those, no callback runs.
 * - Callbacks may call any function of this API, including starting requests,
 *   closing streams and lc_docker_client_free. Work that libcurl forbids inside
 *   its own callbacks (adding or removing transfers) is deferred to the next
 *   loop iteration; the no-callback-after-cancel rule still holds at once.
 */

#define LC_DOCKER_CLIENT_ID_MAX 128 /* longest container reference we put in a URL */

/* True for 1..LC_DOCKER_CLIENT_ID_MAX characters of [A-Za-z0-9_.-]: safe to put in a URL path. */
bool lc_docker_client_id_valid(const char *id);
#define LC_DOCKER_CLIENT_API_MIN "1.41"
#define LC_DOCKER_CLIENT_API_MAX                                                                   \
    "1.43" /* we speak at most this version even if the daemon is newer */
#define LC_DOCKER_CLIENT_SOCKET "/var/run/docker.sock"

struct lc_docker_client;
struct lc_docker_client_stream;

struct lc_docker_client_opts {
    const char *socket_path; /* NULL: LC_DOCKER_CLIENT_SOCKET */
    const char *name;        /* instance name for metrics and logs; NULL: "docker" */
    long request_timeout_ms; /* short requests, whole transfer; 0: 10000 */
    long connect_timeout_ms; /* every request; 0: 5000 */
    size_t max_body_bytes;   /* short responses; larger ones fail -E2BIG; 0: 16 MiB */
    size_t max_event_bytes;  /* one /events line; longer ones are skipped; 0: 64 KiB */
    long max_pool_conns;     /* connections for short requests; 0: 4 */
    unsigned max_pending;    /* short requests in flight or queued; 0: 1024 */
    unsigned max_streams;    /* open streams (events + logs); 0: 1024 */
};

/* Every callback's outcome. */
struct lc_docker_client_result {
    int err;             /* 0, or -ECONNREFUSED (no daemon), -ENOENT (404), -ETIMEDOUT,
                            -E2BIG (body over max_body_bytes), -EPROTO (unexpected answer),
                            -ENOTSUP (API too old, or 501), -ECONNRESET (stream cut), -EIO */
    long status;         /* HTTP status; 0 when there was no response */
    const char *message; /* the daemon's {"message":..} or libcurl's error; never NULL */
};

typedef void (*lc_docker_client_ping_fn)(void *arg, const struct lc_docker_client_result *r);
typedef void (*lc_docker_client_version_fn)(void *arg, const struct lc_docker_client_result *r,
                                            const struct lc_docker_version *v);
typedef void (*lc_docker_client_list_fn)(void *arg, const struct lc_docker_client_result *r,
                                         const struct lc_docker_summary *c, size_t n);
typedef void (*lc_docker_client_inspect_fn)(void *arg, const struct lc_docker_client_result *r,
                                            const struct lc_docker_inspect *c);
typedef void (*lc_docker_client_event_fn)(void *arg, const struct lc_docker_event *ev);
/*
 * Stream data as it arrives (the body, chunked encoding removed). Return 0
 * when consumed, LC_DOCKER_CLIENT_PAUSE to pause without consuming anything (the same
 * bytes are delivered again after lc_docker_client_stream_resume), or a negative
 * errno to end the stream (on_end then gets that error).
 */
typedef int (*lc_docker_client_data_fn)(void *arg, const char *data, size_t len);
/* The stream is over; it is freed when this returns (do not close it). */
typedef void (*lc_docker_client_end_fn)(void *arg, const struct lc_docker_client_result *r);

#define LC_DOCKER_CLIENT_PAUSE 1

/*
 * Creates a client; no connection is made yet. opts may be NULL (defaults).
 * NULL on allocation failure or invalid options (socket path too long for
 * AF_UNIX).
 */
struct lc_docker_client *lc_docker_client_new(uv_loop_t *loop,
                                              const struct lc_docker_client_opts *opts);

/*
 * Cancels every request and stream (no callback runs after this call), then
 * releases the curl multis; `closed` (may be NULL) runs once everything is
 * released, after which the loop holds nothing of the client. NULL is a no-op.
 */
void lc_docker_client_free(struct lc_docker_client *client, void (*closed)(void *arg), void *arg);

/* GET /_ping: 0 when the daemon answers 200 "OK". 0 or -ENOMEM/-EBUSY. */
int lc_docker_client_ping(struct lc_docker_client *client, lc_docker_client_ping_fn cb, void *arg);

/*
 * GET /_ping then GET /version; on success the client uses
 * /v<min(daemon, LC_DOCKER_CLIENT_API_MAX)>/ as the prefix of every later request.
 * A daemon older than LC_DOCKER_CLIENT_API_MIN fails with -ENOTSUP. Call it at start
 * and again after the daemon came back (it may have been upgraded). The
 * requests below fail with -ENOTCONN until a negotiation succeeded.
 * 0 or -ENOMEM/-EBUSY.
 */
int lc_docker_client_negotiate(struct lc_docker_client *client, lc_docker_client_version_fn cb,
                               void *arg);
/* The negotiated version ("1.41"), or NULL before negotiation. */
const char *lc_docker_client_version(const struct lc_docker_client *client);

/* GET /containers/json (running containers). 0 or -ENOTCONN/-ENOMEM/-EBUSY. */
int lc_docker_client_list(struct lc_docker_client *client, lc_docker_client_list_fn cb, void *arg);

/*
 * GET /containers/{id}/json. `id` must be 1..LC_DOCKER_CLIENT_ID_MAX characters of
 * [A-Za-z0-9_.-] (else -EINVAL). 0 or -EINVAL/-ENOTCONN/-ENOMEM/-EBUSY.
 */
int lc_docker_client_inspect(struct lc_docker_client *client, const char *id,
                             lc_docker_client_inspect_fn cb, void *arg);

/*
 * Cancels every short request started with this `arg`: their callbacks will
 * not run. Returns how many were cancelled. Streams are closed one by one.
 */
unsigned lc_docker_client_cancel(struct lc_docker_client *client, const void *arg);

/*
 * GET /events?filters={"type":["container"]} (and since=<since_ns>, if > 0),
 * followed. on_event runs once per event line; lines over max_event_bytes or
 * not parseable are skipped and counted. on_end runs when the response ends
 * (the daemon went away). *out receives the stream. 0 or
 * -ENOTCONN/-ENOMEM/-EBUSY (max_streams).
 */
int lc_docker_client_events(struct lc_docker_client *client, int64_t since_ns,
                            lc_docker_client_event_fn on_event, lc_docker_client_end_fn on_end,
                            void *arg, struct lc_docker_client_stream **out);

struct lc_docker_client_logs_opts {
    int64_t since_ns; /* since=<s>.<9 digits>, inclusive; <= 0: from the start */
    bool follow;      /* follow=1: the response lasts as long as the container runs */
};

/*
 * GET /containers/{id}/logs?stdout=1&stderr=1&timestamps=1[&follow=1][&since=S.N].
 * The body (multiplexed frames, or raw for TTY containers) goes to on_data
 * unchanged; decoding is parse/docker_mux.h's job. An HTTP error status ends
 * the stream without data (404 -ENOENT, 501 -ENOTSUP, others -EPROTO). A
 * followed response that ends normally (the container stopped) ends with 0.
 * 0 or -EINVAL/-ENOTCONN/-ENOMEM/-EBUSY (max_streams).
 */
int lc_docker_client_logs(struct lc_docker_client *client, const char *id,
                          const struct lc_docker_client_logs_opts *o,
                          lc_docker_client_data_fn on_data, lc_docker_client_end_fn on_end,
                          void *arg, struct lc_docker_client_stream **out);

/*
 * Backpressure: stops reading the stream's socket (the daemon's buffer and
 * its log file hold the data meanwhile) / reads again. Resuming may deliver
 * buffered data through on_data before it returns. Idempotent.
 */
void lc_docker_client_stream_pause(struct lc_docker_client_stream *s);
void lc_docker_client_stream_resume(struct lc_docker_client_stream *s);
bool lc_docker_client_stream_paused(const struct lc_docker_client_stream *s);

/*
 * Ends a stream from our side: no callback runs after this call; the
 * connection is closed and the memory released (at once, or on the next loop
 * iteration when called from inside a callback of this client). NULL is a no-op.
 */
void lc_docker_client_stream_close(struct lc_docker_client_stream *s);

/* Counters since lc_docker_client_new, for tests and the input's health. */
struct lc_docker_client_stats {
    uint64_t requests; /* short requests completed (any outcome) */
    uint64_t request_errors;
    uint64_t conns_new;    /* connections opened, short requests and streams */
    uint64_t conns_reused; /* short requests served on a pooled connection */
    uint64_t streams_started;
    uint64_t streams_ended; /* on_end ran or the stream was closed */
    unsigned streams_open;
    unsigned pending;        /* short requests in flight */
    uint64_t events;         /* event lines parsed and delivered */
    uint64_t events_skipped; /* oversized or unparseable event lines */
    uint64_t stream_bytes;   /* body bytes delivered by log streams */
};
void lc_docker_client_get_stats(const struct lc_docker_client *client,
                                struct lc_docker_client_stats *st);

#endif
