/* SPDX-License-Identifier: MIT */
/* docker_seek.h: finds a time in a Docker json-file log by bisecting it with a few preads. */
#ifndef LC_DOCKER_SEEK_H
#define LC_DOCKER_SEEK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * json-file records are written in time order (but for stdout and stderr
 * interleaving, which a caller's cutoff leaves a margin for), so a long log
 * is positioned by time with a few reads instead of one pass: file mode at
 * first sight with max_age (docker_file.c), api mode on a removed container's
 * held log (docker_tail.c).
 *
 * Ownership: nothing here allocates or keeps anything. The caller owns the
 * descriptor (read with pread only: its file position is not moved) and
 * lends `buf`, `buflen` bytes, for the call. buflen is the window of one
 * probe: a record longer than it is not found by a probe (Docker's hold
 * 16 KiB of text at most, more once escaped; callers pass 64 KiB). The
 * answers below hold for a log in time order. Each call does blocking
 * reads of a regular file, a bounded number of them (about log2(size /
 * buflen) for a seek).
 *
 * Not here, on purpose, because the two callers differ: whether the log
 * grows (size is the caller's fstat, nothing at or past it is looked at),
 * and joining the parts of a split line (a position found may be a later
 * part of a line Docker split at 16 KiB; each part has its own time, and
 * both callers skip what is older than their cutoff anyway).
 */

/*
 * The time of the first complete record at or after byte `off` of the log:
 * at off 0 the record at 0; past 0 the record after the first '\n' at or
 * after off (off may be inside a record; a record that starts exactly at
 * off is passed over, since the byte before it is not read). One pread of
 * buflen bytes at off. Returns true with *start (that record's offset,
 * before `size`) and *ts; false when there is none in the window: nothing
 * read (size 0, off at the end, a read error), no '\n' before the window
 * ends (a record cut by the window, or the log's last record still without
 * its '\n'), the record starts at or past `size`, or it does not decode
 * (lc_docker_json_decode's -EINVAL; a record whose text is long is fine).
 */
bool lc_docker_seek_time_at(int fd, off_t off, off_t size, char *buf, size_t buflen, off_t *start,
                            int64_t *ts);

/*
 * Bisects [from, size) of the log for the first record whose time is not
 * older than cutoff_ns (a record at the cutoff's time exactly is not older),
 * and returns where to start reading so that none of those is missed: a
 * record start older than the cutoff, or `from` itself (where the caller
 * would start otherwise: 0 or a record start). So:
 *  - an empty log, or every record at or after the cutoff: `from`;
 *  - otherwise a record start less than two windows before the first record
 *    at or after the cutoff (within one window of `size` when every record
 *    is older); several records at the cutoff's time all come after it;
 *  - a probe that finds no record (it does not decode, or is longer than
 *    the window) stops the bisection where it is: the answer is then further
 *    back, never past the first record at or after the cutoff.
 */
off_t lc_docker_seek_time(int fd, off_t from, off_t size, int64_t cutoff_ns, char *buf,
                          size_t buflen);

#endif
