/* SPDX-License-Identifier: MIT */
/* labels.h: interned, refcounted label sets, rendered once for every encoding. */
#ifndef LC_LABELS_H
#define LC_LABELS_H

#include "core/options.h"

#include <stddef.h>
#include <stdint.h>

/*
 * A label set is interned: equal sets share one object, so records of one
 * stream carry one pointer and outputs group by pointer, never by string.
 * Names are sanitised to Loki's rules ([a-zA-Z_][a-zA-Z0-9_]*, invalid
 * characters become '_') and sorted; for a repeated name the later value wins.
 * Sources hold references (lc_labels_intern returns one); a record's label set
 * lives as long as its source. Event loop thread only.
 */
struct lc_labels {
    uint32_t refs;
    uint32_t hash;
    size_t n;
    struct lc_kv *pairs; /* sorted by key */
    char *json;          /* {"job":"system","filename":"/var/log/syslog"} */
    size_t json_len;
    char *loki; /* {filename="/var/log/syslog", job="system"} */
    size_t loki_len;
    struct lc_labels *next_in_bucket;
};

/* 0 and *out (a new reference), or -ENOMEM / -EINVAL (no pairs, or Loki's limit of 15 names). */
int lc_labels_intern(const struct lc_kv *pairs, size_t n, struct lc_labels **out);
struct lc_labels *lc_labels_ref(struct lc_labels *l);
/* Drops a reference; the set is freed with the last one. NULL is a no-op. */
void lc_labels_release(struct lc_labels *l);
/* Writes a sanitised copy of name into buf (NUL-terminated, truncated to buflen). */
void lc_labels_sanitize_name(const char *name, char *buf, size_t buflen);
/* How many label sets are alive (a metric, and for leak tests). */
size_t lc_labels_live(void);

#define LC_LABELS_MAX 15 /* Loki's default max_label_names_per_series */

#endif
