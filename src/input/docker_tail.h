/* SPDX-License-Identifier: MIT */
/* docker_tail.h: reads a json-file log from a held descriptor, one bounded chunk per call. */
#ifndef LC_DOCKER_TAIL_H
#define LC_DOCKER_TAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Api mode holds a container's json-file log open from its `die` while its
 * stream is behind (docker_api.c): the daemon unlinks the file when the
 * container is destroyed, the held descriptor keeps its data, and what the
 * stream had not sent is read from it here, with the same decoder and
 * partial joiner as mode file (parse/docker_json.h).
 *
 * Ownership: lc_docker_tail_new() takes the descriptor (closed by
 * lc_docker_tail_free(), also when new fails) and allocates everything a
 * reader uses: its read window and the two joiners' buffers (2 *
 * max_line_bytes). Messages handed to the callback are borrowed for the
 * call. Event loop only; every call does at most a few bounded preads.
 */
struct lc_docker_tail;

/* One message: a record, or the records Docker split a long line into, joined. */
struct lc_docker_tail_msg {
    const char *line; /* without its '\n'; not NUL-terminated */
    size_t len;
    int stream;     /* LC_STREAM_STDOUT or LC_STREAM_STDERR */
    int64_t ts_ns;  /* its first record's time */
    bool truncated; /* cut at max_line_bytes */
};

/*
 * Returns 0 when the message was taken (emitted, or skipped as already
 * emitted), negative to stop the read: the message was not taken and comes
 * again at the next lc_docker_tail_read(), possibly after messages that
 * came before it and were taken already (a stop goes back to where no split
 * line was half joined); the caller recognises those (lc_docker_replay).
 */
typedef int (*lc_docker_tail_fn)(void *arg, const struct lc_docker_tail_msg *m);

/* A reader of the log open at fd, from its start. NULL on ENOMEM (fd is closed then). */
struct lc_docker_tail *lc_docker_tail_new(int fd, size_t max_line_bytes);

/* Closes its descriptor and frees it; NULL is a no-op. */
void lc_docker_tail_free(struct lc_docker_tail *t);

/* The time of the log's first record; 0 when it cannot be read (empty, malformed). */
int64_t lc_docker_tail_first_ts(struct lc_docker_tail *t);

/*
 * Moves the reader to a record older than cutoff_ns, so a long log is not read
 * from its start: json-file records are in time order (but for stdout and
 * stderr interleaving, which the caller's cutoff leaves a margin for), so a
 * bisection of a few preads finds one. Before the first read only.
 */
void lc_docker_tail_seek(struct lc_docker_tail *t, int64_t cutoff_ns);

/*
 * Reads one chunk (64 KiB; a record longer than that, up to 256 KiB) from
 * where it stopped and hands each complete message to fn, in file order.
 * At the end of the file a split line whose last record is missing is handed
 * over as it is. Returns 1 when everything was handed over and taken; 0 when
 * there is more, or fn stopped (call again later, e.g. once the pipeline takes
 * lines); -errno when the file cannot be read. Records that do not decode are
 * skipped and counted (lc_docker_tail_malformed).
 */
int lc_docker_tail_read(struct lc_docker_tail *t, lc_docker_tail_fn fn, void *arg);

/* Records skipped because they did not decode (or were longer than 256 KiB). */
uint64_t lc_docker_tail_malformed(const struct lc_docker_tail *t);

#endif
