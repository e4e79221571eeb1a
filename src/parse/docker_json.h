/* SPDX-License-Identifier: MIT */
/* docker_json.h: decoder of Docker json-file log lines and joiner of its 16 KiB partials. */
#ifndef LC_DOCKER_JSON_H
#define LC_DOCKER_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Ownership: nothing here allocates. lc_docker_json_decode() writes the
 * unescaped log text into the caller's `out` buffer and points dl->log at it;
 * the joiner works in a buffer the caller gives it at init and returns
 * pointers that are borrowed (valid until the next call on that joiner, and,
 * for a line that was not split, as long as the caller keeps `out` intact).
 * Only libc is used, so the module can be fuzzed alone.
 */

/* Docker's stream numbers (the multiplexed API uses the same values). */
#define LC_STREAM_STDIN     0
#define LC_STREAM_STDOUT    1
#define LC_STREAM_STDERR    2
#define LC_STREAM_SYSTEMERR 3 /* API only: an error message from the daemon */

/* Docker's json-file driver splits lines longer than this into partial entries. */
#define LC_DOCKER_PARTIAL_BYTES 16384

/* One decoded json-file line. */
struct lc_docker_line {
    char *log;      /* unescaped text, in the caller's out buffer; not NUL-terminated */
    size_t log_len; /* without the trailing '\n' (a '\r' before it is kept) */
    int stream;     /* LC_STREAM_STDOUT or LC_STREAM_STDERR */
    int64_t ts_ns;  /* "time", ns since the epoch */
    bool partial;   /* "log" did not end with '\n': Docker split a long line here */
};

/*
 * Decodes one json-file line
 *   {"log":"...","stream":"stdout"|"stderr","time":"<RFC3339Nano>"}
 * with an optional "attrs" object, keys in any order, any JSON whitespace and
 * any further keys (skipped). `line` is one line without or with its '\n'
 * (trailing whitespace is allowed); it is never modified and never read past
 * line[len - 1].
 * All three of log (a string), stream (the string "stdout" or "stderr") and
 * time (an RFC 3339 string) are required; a duplicated key counts its last
 * value. Escapes are decoded as RFC 8259, \uXXXX surrogate pairs to one UTF-8
 * sequence, lone surrogates to U+FFFD (as Go does). Raw bytes in strings,
 * including control bytes and invalid UTF-8, are copied through unchanged.
 * out/out_cap: where the log text goes (out may be NULL when out_cap is 0).
 * Returns:
 *   0        dl is filled;
 *   -EINVAL  malformed line, wrong type or missing field (dl contents
 *            unspecified): the caller counts it and skips the line;
 *   -E2BIG   the log text (without its final '\n') is longer than out_cap:
 *            dl is filled with the first bytes that fit, cut on a UTF-8
 *            character boundary; the caller counts the truncation.
 */
int lc_docker_json_decode(const char *line, size_t len, char *out, size_t out_cap,
                          struct lc_docker_line *dl);

/*
 * Rebuilds the lines Docker split into 16 KiB partial entries. Caller storage,
 * one per stream (stdout, stderr) per container. Callers may read `pending`
 * and `dropped`; the other fields are private.
 */
struct lc_docker_joiner {
    char *buf;      /* caller's storage, max_line_bytes long */
    size_t cap;     /* max_line_bytes */
    size_t len;     /* bytes of the pending split line in buf */
    int64_t ts_ns;  /* timestamp of its first part */
    bool pending;   /* parts of a split line are buffered, its last part not seen yet */
    size_t dropped; /* out: bytes cut from the line last returned (0: whole) */
};

/*
 * Prepares j. buf must hold max_line_bytes bytes and outlive j; it is used
 * only for lines that arrive in several parts (max_line_bytes may be 0 when
 * buf is NULL: every line is then cut to nothing, which is of no use).
 */
void lc_docker_joiner_init(struct lc_docker_joiner *j, char *buf, size_t max_line_bytes);

/*
 * Feeds one decoded line of this joiner's stream.
 * Returns 1 when a complete line is ready: *line, *len and *ts are set (ts of the
 * line's first part). A line that was not split is returned in place
 * (*line = dl->log, no copy); a rebuilt one from the joiner's buffer. The
 * pointer is valid until the next call on j (and, in place, while dl->log is).
 * Returns 0 when dl was a partial and has been buffered (nothing to emit).
 * Lines longer than max_line_bytes are cut at it: the returned line has
 * j->dropped > 0, the number of bytes dropped (the rest of the split line).
 * j->dropped is 0 for lines returned whole. Never fails.
 */
int lc_docker_join(struct lc_docker_joiner *j, const struct lc_docker_line *dl, const char **line,
                   size_t *len, int64_t *ts);

/*
 * Returns 1 and the pending split line (as lc_docker_join) if there is one,
 * e.g. when the file ends, rotates or the container stops before the last
 * part arrived; 0 when nothing is pending. The joiner is then empty.
 */
int lc_docker_joiner_flush(struct lc_docker_joiner *j, const char **line, size_t *len, int64_t *ts);

/* Forgets any pending split line (e.g. after a copytruncate). */
void lc_docker_joiner_reset(struct lc_docker_joiner *j);

/*
 * A generic walk over one JSON object's members, for the json stage (the same
 * scanner as above: validates what it skips, no allocation, no recursion).
 * lc_json_object_open: p at the object (leading whitespace allowed); returns
 * the position after '{', or NULL when it is not an object.
 * lc_json_object_next: 1 with *m set and *pp after the member (and its ','),
 * 0 at the closing '}', -EINVAL when malformed. m->val spans the value as
 * written (a string with its quotes).
 * lc_json_string_decode: unescapes the string value [val, val + len) (with its
 * quotes) into out (cap bytes); the decoded length, or -EINVAL / -E2BIG.
 */
struct lc_json_member {
    const char *key; /* inside the quotes, as written (escapes not decoded) */
    size_t key_len;
    const char *val;
    size_t val_len;
};
const char *lc_json_object_open(const char *p, const char *end);
int lc_json_object_next(const char **pp, const char *end, struct lc_json_member *m);
long lc_json_string_decode(const char *val, size_t len, char *out, size_t cap);

#endif
