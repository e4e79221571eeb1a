/* SPDX-License-Identifier: MIT */
/* docker_mux.h: incremental decoder of Docker Engine API log streams (multiplexed or TTY raw). */
#ifndef LC_DOCKER_MUX_H
#define LC_DOCKER_MUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parse/docker_json.h" /* LC_STREAM_* */

/*
 * Ownership: lc_docker_mux_new() allocates everything the decoder will ever
 * use (two line buffers of max_line_bytes); feeding never allocates. Bytes
 * passed to lc_docker_mux_feed() are borrowed for the duration of the call.
 * Lines handed to the callback are borrowed for the duration of the callback:
 * they point into the fed chunk when a line lies entirely in it (no copy),
 * otherwise into the decoder's buffer.
 *
 * The stream is what GET /containers/{id}/logs?timestamps=1 returns:
 * - multiplexed (non-TTY containers): frames of an 8-byte header (stream type
 *   0 stdin, 1 stdout, 2 stderr, 3 daemon error; three zero bytes; big-endian
 *   uint32 payload length) and a payload. Each frame carries one log message,
 *   "<RFC3339Nano> <text>\n". Docker sends a line longer than 16 KiB as
 *   several messages (frames); all but the last lack the '\n' and each has its
 *   own timestamp prefix: the decoder joins them per stream, keeping the first
 *   timestamp. Frames may be split anywhere across feeds and a feed may hold
 *   many frames. A payload holding several '\n'-terminated lines is split into
 *   lines, each with its own timestamp prefix.
 * - raw (TTY containers): no headers, lines end in "\r\n" (a '\r' right before
 *   '\n' is removed), each line starts with the timestamp prefix. A long line
 *   Docker split is not recognisable here: its later parts stay in the text,
 *   timestamps included, up to max_line_bytes.
 */

/* One complete line. */
struct lc_docker_mux_line {
    const char *line; /* not NUL-terminated; without the timestamp prefix and '\n' */
    size_t len;
    int stream;     /* LC_STREAM_STDOUT, _STDERR (stdin frames count as stdout), _SYSTEMERR */
    int64_t ts_ns;  /* parsed prefix; 0 when the line had none (see has_ts) */
    bool has_ts;    /* the line started with a valid "<RFC3339> " prefix */
    bool truncated; /* the line was longer than max_line_bytes and was cut */
};

/*
 * Called once per complete line, in stream order. Return 0 to go on, or a
 * negative errno to stop: lc_docker_mux_feed() then returns that value at
 * once and the decoder must be reset or freed.
 */
typedef int (*lc_docker_mux_line_fn)(void *arg, const struct lc_docker_mux_line *l);

struct lc_docker_mux_opts {
    size_t max_line_bytes; /* longer lines are cut and flagged; > 0 */
    bool tty;              /* raw stream, no frame headers */
    bool no_timestamps;    /* the request had timestamps=0: lines carry no prefix */
    lc_docker_mux_line_fn on_line;
    void *arg;
};

/* What the decoder saw since it was created (reset does not clear it). */
struct lc_docker_mux_stats {
    uint64_t frames;      /* headers decoded */
    uint64_t lines;       /* lines emitted */
    uint64_t bytes;       /* bytes fed */
    uint64_t truncated;   /* lines cut at max_line_bytes */
    uint64_t no_ts;       /* lines (or continuation frames) without a valid timestamp */
    uint64_t bad_headers; /* malformed frame headers (each one ended the stream) */
};

struct lc_docker_mux;

/*
 * Creates a decoder. opts is copied; opts->on_line must be set and
 * opts->max_line_bytes > 0. Memory used: about 2 * max_line_bytes + 1 KiB.
 * Returns NULL on allocation failure or invalid options (errno set).
 */
struct lc_docker_mux *lc_docker_mux_new(const struct lc_docker_mux_opts *opts);

/* Frees m; NULL is a no-op. Pending partial lines are discarded (flush first). */
void lc_docker_mux_free(struct lc_docker_mux *m);

/*
 * Decodes len bytes and calls on_line for each line completed by them.
 * Returns 0; -EPROTO when a frame header is malformed (stream type > 3 or
 * nonzero padding): the stream cannot be resynchronised, every later feed
 * returns -EPROTO too, and the caller should reconnect (then reset); or the
 * negative value on_line returned.
 */
int lc_docker_mux_feed(struct lc_docker_mux *m, const char *data, size_t len);

/*
 * At the end of a response: emits the lines still waiting for their '\n'
 * (stdout first, then stderr). Returns 0, or -EPROTO when the response ended
 * inside a frame (the lines are emitted all the same), or on_line's error.
 */
int lc_docker_mux_finish(struct lc_docker_mux *m);

/* Returns m to its initial state, dropping partial lines and the error state. */
void lc_docker_mux_reset(struct lc_docker_mux *m);

/* Copies the counters into *st. */
void lc_docker_mux_get_stats(const struct lc_docker_mux *m, struct lc_docker_mux_stats *st);

#endif
