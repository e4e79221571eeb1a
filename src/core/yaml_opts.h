/* SPDX-License-Identifier: MIT */
/* yaml_opts.h: YAML nodes (libyaml) applied to option tables: values, errors with positions,
 * printing. */
#ifndef LC_YAML_OPTS_H
#define LC_YAML_OPTS_H

#include "core/options.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <yaml.h>

/*
 * The engine under the configuration loader (core/config.c), which knows
 * nothing of the agent's schema: it parses one YAML document, and applies a
 * mapping to a struct through an option table (core/options.h): each key to
 * its row, values with ${NAME} and ${NAME:-default} substituted from the
 * environment ("$${" is a literal "${"), unknown, repeated and missing
 * required keys refused. A schema (the agent's: inputs, outputs, processes)
 * walks the document itself and calls these for the parts that are tables.
 *
 * Errors: every function that fails writes one message into the load's err
 * buffer, "FILE:LINE:COLUMN: what (key 'path' in WHOSE)", and returns the
 * negative errno it was given or met (-EINVAL bad input, -E2BIG a limit,
 * -ENOMEM). The first failure is the one to report: callers return at once.
 *
 * Ownership: the struct lc_yaml_opts is the caller's (zero it, then fill
 * file/text/len/err/errlen); the document it parses is deleted by the caller
 * (yaml_document_delete when have_doc). Strings stored into a conf are
 * malloc'd and owned by the conf (lc_options_free). Nodes and scalars are
 * borrowed from the document.
 */

#define LC_YAML_MAX_SCALAR  (64 * 1024) /* one value after ${} substitution */
#define LC_YAML_MAX_ENTRIES 1024        /* entries of a map */
#define LC_YAML_MAX_LIST    4096        /* items of a list */
#define LC_YAML_MAX_NAME    128         /* a variable name; an owner's name in messages */
/*
 * All values of one load, each counted as its length + 32: aliases make a
 * small file name a value many times over ("billion laughs"); this bounds it.
 */
#define LC_YAML_MAX_EXPANDED (16 * 1024 * 1024)

/* One load: the text, its document, where errors go, and who is being parsed. */
struct lc_yaml_opts {
    const char *file; /* for messages */
    const char *text;
    size_t len;
    yaml_document_t doc;
    bool have_doc;
    char *err; /* may be NULL */
    size_t errlen;
    /* set by the schema, for messages: "input 'system' (type file)" and "input 'system'" */
    char owner[LC_YAML_MAX_NAME + 64];
    char whose[LC_YAML_MAX_NAME + 32];
    size_t expanded; /* see LC_YAML_MAX_EXPANDED */
};

/* Parses text into doc: exactly one document. 0, -EINVAL (syntax), -ENOMEM. */
int lc_yaml_parse(struct lc_yaml_opts *L);

/* Writes "FILE:LINE:COLUMN: <fmt>" at mark m (or node n's start; NULL: 1:1). Returns rc. */
int lc_yaml_fail_mark(struct lc_yaml_opts *L, yaml_mark_t m, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int lc_yaml_fail(struct lc_yaml_opts *L, const yaml_node_t *n, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Writes "<what> (key 'path' in <whose>)" at node n. Returns rc. */
int lc_yaml_fail_key(struct lc_yaml_opts *L, const yaml_node_t *n, int rc, const char *path,
                     const char *what);

/* The node at a document index (what mapping pairs and sequence items hold), and back. */
yaml_node_t *lc_yaml_node(struct lc_yaml_opts *L, int idx);
int lc_yaml_index(struct lc_yaml_opts *L, const yaml_node_t *n);
/* A scalar node's text (NUL-terminated by libyaml; may hold NULs before its length). */
const char *lc_yaml_scalar(const yaml_node_t *n);
/* A plain empty, "~" or "null" scalar: YAML's null, which no option accepts. */
bool lc_yaml_is_null(const yaml_node_t *n);
/* "nothing", "a mapping", "a sequence" or "a scalar", for messages. */
const char *lc_yaml_kind(const yaml_node_t *n);

/*
 * A non-null scalar, substituted, into *out (malloc'd, the caller's); else an
 * error "expected <expect>, got <kind>". 0 or a negative errno.
 */
int lc_yaml_scalar_value(struct lc_yaml_opts *L, const yaml_node_t *n, const char *path,
                         const char *expect, char **out);
/* A sequence of scalars, or one scalar, into *out (freeing what it held on success). */
int lc_yaml_strlist(struct lc_yaml_opts *L, yaml_node_t *val, const char *path,
                    struct lc_strlist *out);
/*
 * A mapping of scalars to scalars into *out (freeing what it held on
 * success); keys as written, no duplicates. `labels`: keys must be label
 * names. flags: LC_OPT_HEADERS, a value may also be {value: "...", secret:
 * true}; LC_OPT_NULL_EMPTY, a null value is the empty string.
 */
int lc_yaml_map(struct lc_yaml_opts *L, yaml_node_t *val, const char *path, bool labels,
                unsigned flags, struct lc_kvlist *out);
/* A mapping key must be a non-null scalar. 0 or -EINVAL. */
int lc_yaml_check_key(struct lc_yaml_opts *L, yaml_node_t *kn);
/*
 * Applies every pair of mapping `map` to `conf` through `table` (sections
 * recursively; `prefix` names them in messages), except keys in the
 * NULL-terminated `skip` (may be NULL), which the caller handles. Unknown and
 * repeated keys are errors; then every LC_OPT_REQUIRED row must have been
 * seen. Defaults are the caller's (lc_options_defaults before).
 */
int lc_yaml_apply(struct lc_yaml_opts *L, const struct lc_option *table, void *conf,
                  yaml_node_t *map, const char *prefix, const char *const *skip);
/* The value nodes of the NULL-terminated `keys` in `map` (NULL when absent); repeats fail. */
/* One option row from its value node (path names it in messages). */
int lc_yaml_apply_option(struct lc_yaml_opts *L, const struct lc_option *o, void *conf,
                         yaml_node_t *val, const char *path);
int lc_yaml_find_keys(struct lc_yaml_opts *L, yaml_node_t *map, const char *const *keys,
                      yaml_node_t **vals);

/*
 * Printing a conf back as YAML that loads to the same values: s as a
 * double-quoted scalar ("${" written "$${"); a list and a map with the
 * redaction rule (core/redact.h; `headers`: credentials masked whole); one
 * "key: value" line per row of `table` at `indent`, sections nested, secrets
 * masked.
 */
void lc_yaml_print_quoted(const char *s, FILE *f);
void lc_yaml_print_strlist(const struct lc_strlist *l, FILE *f);
void lc_yaml_print_map(const struct lc_kvlist *l, bool headers, FILE *f);
void lc_yaml_print_values(const struct lc_option *table, const void *conf, int indent, FILE *f);

#endif
