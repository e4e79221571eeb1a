/* SPDX-License-Identifier: MIT */
/* logfmt.h: a logfmt decoder (key=value key2="quoted \"value\"" flag), hand-written for the hot
 * path. */
#ifndef LC_LOGFMT_H
#define LC_LOGFMT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * One pair. key points into the input; value into the input, or into
 * `scratch` when it was quoted with escapes (\" \\ \n \t \r). A bare key has
 * an empty value.
 */
struct lc_logfmt_pair {
    const char *key;
    size_t key_len;
    const char *val;
    size_t val_len;
};

/*
 * Decodes the next pair of s[*pos..len) and advances *pos. Returns true with
 * *kv set, false at the end. Garbage (a '=' with no key, an unterminated quote)
 * never stops it: a quoted value runs to the end of the line, and a stray '='
 * or '"' is skipped; *bad counts such repairs (a caller may call the line not
 * logfmt). scratch must hold at least len bytes; it is reused by every call.
 */
bool lc_logfmt_next(const char *s, size_t len, size_t *pos, struct lc_logfmt_pair *kv,
                    char *scratch, size_t *scratch_used, unsigned *bad);

#endif
