/* SPDX-License-Identifier: MIT */
/* journal.h: the `journal` input (systemd journal through sd-journal): options and pure helpers. */
#ifndef LC_INPUT_JOURNAL_H
#define LC_INPUT_JOURNAL_H

#include "core/options.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Ownership: the helpers below borrow their arguments; the label-set cache
 * owns one reference on every label set it holds until lc_journal_cache_clear
 * or lc_journal_cache_free. Event loop thread only.
 */

enum lc_journal_start { LC_JOURNAL_START_END = 0, LC_JOURNAL_START_BEGINNING };

struct lc_journal_conf {
    char *path; /* a directory of journal files; NULL: the local journal */
    struct lc_strlist units;
    struct lc_strlist identifiers;
    int priority; /* 0 (emerg) .. 7 (debug): entries at this level or more severe */
    int start_at;
    int64_t max_age_ms;
    struct lc_kvlist fields; /* label name -> journal field */
    int64_t max_label_sets;
    int64_t max_line_bytes;
    int64_t read_entries; /* per turn of the loop */
    int64_t max_unacked;
    int64_t poll_ms;
};

/* Longest label value taken from a field; longer values are cut (counted). */
#define LC_JOURNAL_LABEL_VALUE_MAX 1024
/* Longest journal field name (systemd's own limit is 64). */
#define LC_JOURNAL_FIELD_MAX 64

/* The syslog level names of PRIORITY 0..7, as the `level` label carries them. */
extern const char *const lc_journal_levels[];

/* True for a valid journal field name: [A-Z0-9_], not starting with a digit, 1..64 bytes. */
bool lc_journal_field_name_ok(const char *s);
/*
 * The level name of a PRIORITY value ("0".."7"), or NULL for anything else
 * (then the raw value is the label's value).
 */
const char *lc_journal_level_name(const char *v, size_t n);

/*
 * Copies n bytes of `in` to `out` (at most cap bytes), replacing each byte
 * that does not start a valid UTF-8 sequence with U+FFFD; stops at cap on a
 * character boundary. Returns the bytes written; *bad counts the
 * replacements, *cut is set when input was left over.
 */
size_t lc_journal_utf8_fix(const char *in, size_t n, char *out, size_t cap, size_t *bad, bool *cut);
/* True when the n bytes are valid UTF-8 (the fast path: no copy needed). */
bool lc_journal_utf8_ok(const char *in, size_t n);

/*
 * Fields to labels. get(field, &val, &len, arg) returns 0 with the field's
 * value (without "FIELD=") or <0 when the entry has none. For each mapped
 * field present, appends (label, value) to kv (PRIORITY as its level name,
 * values fixed to UTF-8 and cut at LC_JOURNAL_LABEL_VALUE_MAX into `vals`,
 * fields.n slots of LC_JOURNAL_LABEL_VALUE_MAX + 1 bytes) and the same to
 * `key` (the cache key: every field's presence and value, so equal keys mean
 * equal label sets). Returns the number of pairs added; *cut counts cut values, *bad
 * bytes replaced by U+FFFD.
 */
struct lc_kv;
struct lc_buf;
typedef int (*lc_journal_get_fn)(const char *field, const char **val, size_t *len, void *arg);
size_t lc_journal_map_fields(const struct lc_kvlist *fields, lc_journal_get_fn get, void *arg,
                             struct lc_kv *kv, char *vals, char *key, size_t keycap, size_t *keylen,
                             size_t *cut, size_t *bad);

/*
 * Distinct label sets an input hands to its records, at most `max`. A set
 * stays alive as long as the cache holds it (records in flight point at it),
 * so it is only emptied when nothing is in flight (lc_journal_cache_clear).
 */
struct lc_labels;
struct lc_journal_cache_slot;
struct lc_journal_cache {
    struct lc_journal_cache_slot *slots;
    size_t cap; /* power of two, >= 2 * max */
    size_t n;
    size_t max;
};

/* 0 or -ENOMEM. */
int lc_journal_cache_init(struct lc_journal_cache *c, size_t max);
/* The set cached under key, or NULL. */
struct lc_labels *lc_journal_cache_get(const struct lc_journal_cache *c, const char *key,
                                       size_t keylen);
/*
 * Caches `labels` (takes a new reference) under key. 0, -ENOSPC at max
 * (nothing cached), -ENOMEM.
 */
int lc_journal_cache_put(struct lc_journal_cache *c, const char *key, size_t keylen,
                         struct lc_labels *labels);
/* Drops every set (their references); the caller knows no record points at them. */
void lc_journal_cache_clear(struct lc_journal_cache *c);
void lc_journal_cache_free(struct lc_journal_cache *c);

/* The option table's check for `fields`: NULL when (label, field) is valid, else why not. */
const char *lc_journal_check_field(const char *label, const char *field);
/* The check for `units` and `identifiers` items: NULL when usable as a match value. */
const char *lc_journal_check_match(const char *key, const char *value);

#endif
