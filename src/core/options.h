/* SPDX-License-Identifier: MIT */
/* options.h: option tables, one row per option, that drive parsing, validation and docs. */
#ifndef LC_OPTIONS_H
#define LC_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * How each type is stored at `offset` in the plugin's (or core's) conf struct:
 *   LC_OPT_STR       char *           (owned, NULL when unset and no default)
 *   LC_OPT_INT       int64_t
 *   LC_OPT_BOOL      bool
 *   LC_OPT_SIZE      int64_t bytes     ("64KiB", "1MiB", "2GiB", "512"; KB/MB/GB are 1000^n)
 *   LC_OPT_DURATION  int64_t ms        ("250ms", "1s", "10m", "168h"; a bare number is seconds)
 *   LC_OPT_ENUM      int               (index into `choices`)
 *   LC_OPT_STRLIST   struct lc_strlist (a YAML sequence of scalars, or one scalar)
 *   LC_OPT_MAP       struct lc_kvlist  (a YAML mapping of scalar to scalar)
 *   LC_OPT_SECTION   a nested struct described by `sub`, stored inline at offset
 *   LC_OPT_SECLIST   struct lc_seclist (a YAML sequence of mappings, each a struct of
 *                    `size` bytes described by `sub`; at most `max` items)
 * min/max bound INT, SIZE and DURATION (both 0: unbounded).
 */
enum lc_opt_type {
    LC_OPT_STR,
    LC_OPT_INT,
    LC_OPT_BOOL,
    LC_OPT_SIZE,
    LC_OPT_DURATION,
    LC_OPT_ENUM,
    LC_OPT_STRLIST,
    LC_OPT_MAP,
    LC_OPT_SECTION,
    LC_OPT_SECLIST,
};

#define LC_OPT_REQUIRED 0x1u /* must be present */
#define LC_OPT_SECRET   0x2u /* never printed or logged */
#define LC_OPT_ZERO     0x4u /* 0 (automatic) is valid besides min..max */
/*
 * MAP only: the keys are HTTP header names. An entry may be written
 * `Name: {value: v, secret: true}`; credential headers
 * (lc_redact_header_is_secret) and entries marked secret are printed masked.
 */
#define LC_OPT_HEADERS 0x4u
/* STR only: printed as written, not through the redaction rule (regexes, templates). */
#define LC_OPT_VERBATIM 0x8u
/* MAP only: a value left empty (`name:`, `name: ~`) reads as "" (Promtail's stage maps). */
#define LC_OPT_NULL_EMPTY 0x10u

struct lc_option {
    enum lc_opt_type type;
    const char *key;
    const char *def; /* default, written as a user would write it; NULL = none */
    size_t offset;
    int64_t min;
    int64_t max;
    const char *const *choices;  /* ENUM: NULL-terminated */
    const struct lc_option *sub; /* SECTION: its table */
    unsigned flags;
    const char *help;
    /*
     * Optional: checks a value after parsing; NULL when it is valid, else why
     * not, reported at its file:line:column (check-config says it). For STR
     * the value (key NULL); for STRLIST each item (key NULL); for MAP each
     * key and value.
     */
    const char *(*check)(const char *key, const char *value);
    /* SECLIST: the item size; optional prepare (after parsing an item: 0, or <0 and why in
     * err, reported at the item) and free_item (replaces lc_options_free(sub, item)). */
    size_t size;
    int (*prepare)(void *item, char *err, size_t errlen);
    void (*free_item)(void *item);
};
/* A table ends with a row whose key is NULL. */
/* clang-format off */
#define LC_OPT_END {.key = NULL}
/* clang-format on */

struct lc_strlist {
    char **v;
    size_t n;
};

struct lc_kv {
    char *key;
    char *value;
    bool secret; /* never printed or logged (LC_OPT_HEADERS `secret: true`) */
};

struct lc_kvlist {
    struct lc_kv *v;
    size_t n;
};

struct lc_seclist {
    void *v; /* n items of the option's `size` bytes */
    size_t n;
};

/* Parses "64KiB"-style sizes and "10m"-style durations (ms). 0 or -EINVAL/-ERANGE. */
int lc_parse_size(const char *s, int64_t *out);
int lc_parse_duration_ms(const char *s, int64_t *out);
/* Writes the shortest exact form ("64MiB", "1500ms", "2h") into buf; snprintf's return. */
int lc_format_size(int64_t bytes, char *buf, size_t len);
int lc_format_duration_ms(int64_t ms, char *buf, size_t len);

/*
 * Sets one scalar option (STR, INT, BOOL, SIZE, DURATION, ENUM) in `conf` from
 * its text, checking min/max and choices; a STR replaces (frees) the old value.
 * 0, -EINVAL (not a value of that type), -ERANGE (outside min/max), -ENOMEM,
 * -ENOTSUP (not a scalar type). On error `conf` is unchanged.
 */
int lc_option_set(const struct lc_option *opt, void *conf, const char *value);
/* A bound of an option's range as written in a config (sizes, durations, numbers). */
void lc_option_format_bound(const struct lc_option *o, int64_t v, char *buf, size_t len);

/* Sets every option of `table` in `conf` to its default. 0 or negative errno. */
int lc_options_defaults(const struct lc_option *table, void *conf);
/* Frees what the table's options own in `conf` (strings, lists); not conf itself. */
void lc_options_free(const struct lc_option *table, void *conf);
/*
 * Writes the table as reference documentation: one line per option (nested
 * sections dotted), type, default, range and help. `markdown` selects a table.
 */
void lc_options_print(const struct lc_option *table, const char *prefix, FILE *f, bool markdown);

void lc_strlist_free(struct lc_strlist *l);
void lc_kvlist_free(struct lc_kvlist *l);
/* Frees the items of a SECLIST option `o` (free_item, else the sub table's options) and the list.
 */
void lc_seclist_free(const struct lc_option *o, struct lc_seclist *l);
const char *lc_kvlist_get(const struct lc_kvlist *l, const char *key);

#endif
