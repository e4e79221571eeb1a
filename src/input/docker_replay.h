/* SPDX-License-Identifier: MIT */
/* docker_replay.h: recognises records a followed Docker log stream sends a second time. */
#ifndef LC_DOCKER_REPLAY_H
#define LC_DOCKER_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The daemon's follow stream re-emits entries when a json-file log rotates
 * (issue 18). Within one stream of one container (stdout, or stderr) Docker's
 * timestamps never go back, so a record is a replay when its timestamp is
 * older than the newest one emitted on that stream, or equal to it and its
 * content equals one of the records already emitted at that timestamp (two
 * different lines written in the same nanosecond both pass). Content is
 * compared by a 64-bit hash of the first LC_DOCKER_REPLAY_SAME_TS records at
 * one timestamp; more records than that at one nanosecond are not expected.
 * Fixed size, no allocation.
 */

#define LC_DOCKER_REPLAY_SAME_TS 8

struct lc_docker_replay {
    int64_t ts; /* newest timestamp emitted; 0: none yet */
    uint32_t n; /* records emitted at exactly ts */
    uint64_t hash[LC_DOCKER_REPLAY_SAME_TS];
};

/* True when a record at ts with this content was (or is older than what was) emitted. */
bool lc_docker_replay_seen(const struct lc_docker_replay *r, int64_t ts, const char *line,
                           size_t len);

/* Records that a record at ts with this content was emitted. */
void lc_docker_replay_note(struct lc_docker_replay *r, int64_t ts, const char *line, size_t len);

#endif
