/* SPDX-License-Identifier: MIT */
/* split_join.h: a container's split lines (Docker json-file, CRI), joined across rotations. */
#ifndef LC_INPUT_SPLIT_JOIN_H
#define LC_INPUT_SPLIT_JOIN_H

#include "input/file.h"
#include "parse/docker_json.h"

#include <stdbool.h>
#include <stdint.h>

struct lc_labels;

/*
 * Container runtimes split long lines into parts (Docker's json-file at
 * 16 KiB, CRI runtimes at max_container_log_line_size, 16 KiB by default).
 * A split line may straddle a rotation: its first parts end the rotated file,
 * the rest starts the new one. So the joiners belong to the container, shared
 * (reference counted) by its current file and the rotated one it replaced
 * (the file tailer reads that one to its end before the new one: t->after).
 * One joiner per stream; its buffer (max_line_bytes) is allocated on the
 * first split line. Event loop only.
 */
struct lc_split_join {
    unsigned refs;
    size_t max_line_bytes;
    struct lc_docker_joiner join[2]; /* stdout, stderr */
    char *buf[2];
    int64_t fed_ns; /* when a part was last joined */
};

/* A new joiner pair with one reference; NULL on ENOMEM. */
struct lc_split_join *lc_split_join_new(size_t max_line_bytes);
void lc_split_join_unref(struct lc_split_join *j);
/* True while a split line is half joined (no position may be committed). */
bool lc_split_join_pending(const struct lc_split_join *j);
/*
 * One decoded line of t: emitted (labels[0] stdout, labels[1] stderr) when it
 * completes a line, a line cut at max_line_bytes counted in t's cut counter.
 * Returns true when no split line is half joined after it.
 */
bool lc_split_join_feed(struct lc_split_join *j, struct lc_tail *t,
                        struct lc_labels *const labels[2], const struct lc_docker_line *dl,
                        int64_t now);
/*
 * For the tail ops' idle(): t, the container's current log, was read to its
 * end; a split line pending for `wait_ns` is the end of the container's output
 * (it exited without a newline), so it is sent and the position moves past it
 * (else a restart would repeat every line of the other stream written after it).
 */
void lc_split_join_idle(struct lc_split_join *j, struct lc_tail *t,
                        struct lc_labels *const labels[2], int64_t wait_ns);
/*
 * For the tail ops' rewind(): the tailer goes back to a position with nothing
 * half joined (a line could not be queued), so what the joiners hold is read
 * again: forget it. j may be NULL.
 */
void lc_split_join_rewind(struct lc_split_join *j);

/*
 * Attaches t (lc_tail_attach) with `out` as its source's labels (stdout) and
 * `err` as its extra labels (stderr); labels[] gets both, borrowed from the
 * source. Takes over both references, also on failure. 0 or -errno.
 */
int lc_split_join_attach(struct lc_tail *t, struct lc_labels *out, struct lc_labels *err,
                         struct lc_labels *labels[2]);

#endif
