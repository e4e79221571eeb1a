/* SPDX-License-Identifier: MIT */
/* syslog.h: RFC 5424 and RFC 3164 (BSD) syslog message parsers, and RFC 6587 TCP framing. */
#ifndef LC_SYSLOG_H
#define LC_SYSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Pure functions: nothing here allocates, writes to its input or keeps
 * state; every field points into the message given. Reads strictly inside
 * [s, s + len). Only libc (and the timestamp module) is used, so the module
 * can be fuzzed alone. A field absent or written as the NILVALUE "-" has
 * length 0.
 */
struct lc_syslog_field {
    const char *p;
    size_t len;
};

struct lc_syslog_msg {
    int facility;  /* 0..23 */
    int severity;  /* 0..7 */
    int version;   /* 1 for RFC 5424, 0 for RFC 3164 */
    int64_t ts_ns; /* the message's time, or 0 when it has none (the caller uses its clock) */
    struct lc_syslog_field hostname;
    struct lc_syslog_field app_name; /* 3164: the TAG */
    struct lc_syslog_field procid;   /* 3164: the [pid] after the tag */
    struct lc_syslog_field msgid;    /* 5424 only */
    struct lc_syslog_field sd;       /* 5424: the STRUCTURED-DATA elements, brackets included */
    struct lc_syslog_field msg;      /* the free-form message (a UTF-8 BOM dropped) */
};

/*
 * RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP
 * MSGID SP STRUCTURED-DATA [SP MSG], with the RFC's field lengths (HOSTNAME
 * 255, APP-NAME 48, PROCID 128, MSGID 32, printable US-ASCII) and SD-ELEMENTs
 * checked for their brackets, quotes and escapes. 0, or -EINVAL.
 */
int lc_syslog_parse_5424(const char *s, size_t len, struct lc_syslog_msg *m);

/*
 * RFC 3164 as senders write it: <PRI>[TIMESTAMP SP [HOSTNAME SP]]TAG[[PID]]:
 * MSG. TIMESTAMP is "Mmm dd hh:mm:ss" (local time at utc_offset_sec east of
 * UTC, the year inferred from now_ns: lc_ts_parse_syslog) or RFC 3339; a
 * message without one has no hostname either (RFC 3164 4.3.3) and its content
 * is the MSG. Only the PRI is required: -EINVAL without a valid one, else 0.
 */
int lc_syslog_parse_3164(const char *s, size_t len, int64_t now_ns, long utc_offset_sec,
                         struct lc_syslog_msg *m);

/* Either: RFC 5424 when a version number follows the PRI, else RFC 3164. 0 or -EINVAL. */
int lc_syslog_parse(const char *s, size_t len, int64_t now_ns, long utc_offset_sec,
                    struct lc_syslog_msg *m);

/* "kern", "user", ... "local7"; "?" outside 0..23. */
const char *lc_syslog_facility_name(int facility);
/* "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"; "?" outside 0..7. */
const char *lc_syslog_severity_name(int severity);

/*
 * RFC 6587 framing of a TCP stream: octet counting ("<length> SP <message>")
 * when a frame starts with a digit 1-9, else non-transparent framing (the
 * message ends at LF; a CR before it is dropped). Looks at the bytes p[0..n)
 * buffered so far and returns:
 *   LC_SYSLOG_FRAME_MORE  no complete frame yet (wait for more bytes);
 *   LC_SYSLOG_FRAME_OK    a frame: the message is p[*start, *start + *mlen),
 *                         the frame takes *used bytes of p;
 *   LC_SYSLOG_FRAME_BIG   the message is longer than max: *start and *mlen
 *                         give its first bytes held (at most max, possibly
 *                         fewer when octet-counted and not all here yet), the
 *                         frame's total length is *used (octet counting; it
 *                         may exceed n: the caller skips the rest as it
 *                         arrives) or 0 (newline framing: skip up to the next
 *                         LF).
 * An octet count that is not a number of at most 9 digits before a SP is
 * taken as newline framing.
 */
enum lc_syslog_frame { LC_SYSLOG_FRAME_MORE = 0, LC_SYSLOG_FRAME_OK, LC_SYSLOG_FRAME_BIG };
enum lc_syslog_frame lc_syslog_frame(const char *p, size_t n, size_t max, size_t *start,
                                     size_t *mlen, size_t *used);

#endif
