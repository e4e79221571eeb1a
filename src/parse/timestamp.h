/* SPDX-License-Identifier: MIT */
/* timestamp.h: RFC3339 and BSD-syslog timestamp parsing, RFC3339Nano formatting (libc only). */
#ifndef LC_TIMESTAMP_H
#define LC_TIMESTAMP_H

#include <stddef.h>
#include <stdint.h>

/*
 * Ownership: nothing here allocates or keeps pointers. All times are int64
 * nanoseconds since the Unix epoch (UTC), so the representable range is
 * 1677-09-21T00:12:43.145224192Z .. 2262-04-11T23:47:16.854775807Z; inputs
 * outside it are rejected with -EINVAL. No function reads the locale, the TZ
 * environment or calls mktime/timegm: dates are converted with civil-calendar
 * arithmetic, so they are cheap enough for every log line and thread-safe.
 */

/* Longest output of lc_ts_format_rfc3339nano() plus a NUL: 30 bytes used. */
#define LC_TS_RFC3339NANO_MAX 36

/*
 * Parses an RFC 3339 timestamp at the start of s[0..len):
 *   YYYY-MM-DD ('T'|'t'|' ') hh:mm:ss [ '.' 1*digit ] ( 'Z' | 'z' | ('+'|'-') hh:mm )
 * The fraction may have 1..9 digits (Docker and Go trim trailing zeros); more
 * digits are accepted and truncated to nanoseconds, as Go does. Second 60 (a
 * leap second) is accepted and lands on the next second.
 * consumed: when non-NULL, receives the length of the timestamp and bytes may
 * follow it; when NULL, the timestamp must span all of s[0..len).
 * Returns 0 and sets *ns, or -EINVAL (malformed, invalid date, out of range);
 * *ns and *consumed are untouched on error. The last "YYYY-MM-DDThh:mm"
 * parsed is cached per thread: lines in time order skip the date arithmetic.
 */
int lc_ts_parse_rfc3339(const char *s, size_t len, int64_t *ns, size_t *consumed);

/*
 * Writes ns as UTC in Go's RFC3339Nano layout ("2006-01-02T15:04:05.999999999Z07:00"):
 * trailing zeros of the fraction trimmed, no '.' at all when the fraction is 0,
 * always 'Z'. Writes a NUL after the text and returns the text length (20..30).
 * The "YYYY-MM-DDThh:mm:ss" part is cached per thread for the last second
 * formatted, so a stream of nearby timestamps costs only the fraction digits.
 */
size_t lc_ts_format_rfc3339nano(int64_t ns, char out[LC_TS_RFC3339NANO_MAX]);

/*
 * Parses a BSD syslog (RFC 3164) timestamp at the start of s[0..len):
 *   Mmm ' ' (dd | ' 'd | d) ' ' hh:mm:ss [ '.' 1*digit ]
 * e.g. "Nov 23 10:31:03" or "Nov  3 10:31:03.123". Month names are matched
 * case-insensitively. The text is local time at utc_offset_sec east of UTC
 * (0 for UTC). The year is not written, so it is inferred from now_ns: the
 * latest of next/this/last year (in that local time) that puts the timestamp
 * no more than 31 days after now, e.g. "Dec 31" read on Jan 2 is last year,
 * "Jan 1" read on Dec 31 is next year. The timestamp must be followed by the
 * end of s or a non-digit.
 * consumed: as for lc_ts_parse_rfc3339 (NULL: must span all of s[0..len)).
 * Returns 0 and sets *ns, or -EINVAL.
 */
int lc_ts_parse_syslog(const char *s, size_t len, int64_t now_ns, long utc_offset_sec, int64_t *ns,
                       size_t *consumed);

/*
 * Finds the timestamp a log line starts with, for "skip lines older than
 * max_age". Tries, in order:
 *   1. RFC 3339 as lc_ts_parse_rfc3339, and its common relaxed form: ',' as
 *      fraction separator ("2025-11-07 15:48:05,123", Python logging) and no
 *      zone at all, in which case the time is local at utc_offset_sec;
 *   2. BSD syslog as lc_ts_parse_syslog.
 * consumed: when non-NULL, receives the length of the timestamp; a prefix
 * parse never requires the whole line to be the timestamp.
 * Returns 0 and sets *ns, or -EINVAL when the line starts with neither.
 */
int lc_ts_parse_prefix(const char *s, size_t len, int64_t now_ns, long utc_offset_sec, int64_t *ns,
                       size_t *consumed);

#endif
