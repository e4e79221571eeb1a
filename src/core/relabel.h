/* SPDX-License-Identifier: MIT */
/* relabel.h: Prometheus/Promtail relabel_configs on a source's discovery labels, applied once. */
#ifndef LC_RELABEL_H
#define LC_RELABEL_H

#include "core/options.h"
#include "process/rx.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * Relabelling as Prometheus and Promtail do it, on the label set a source
 * (e.g. a container) is discovered with: `__meta_*` discovery labels and the
 * input's static labels. Run once when the source is created, never per line.
 * After the rules, labels whose name starts with "__" are removed.
 *
 * Actions (Prometheus semantics):
 *   replace   join source_labels' values with `separator`; if the (fully
 *             anchored) regex matches, target_label := replacement with $1,
 *             ${1}, $name, ${name} expanded ($$ is a '$'); an empty result
 *             removes target_label. target_label is expanded too.
 *   keep/drop the source is dropped when the joined value does not / does match.
 *   labelmap  every label whose name matches gets a copy named `replacement`
 *             (expanded).
 *   labeldrop/labelkeep remove labels whose names match / do not match.
 */
enum lc_relabel_action {
    LC_RELABEL_REPLACE = 0,
    LC_RELABEL_KEEP,
    LC_RELABEL_DROP,
    LC_RELABEL_LABELMAP,
    LC_RELABEL_LABELDROP,
    LC_RELABEL_LABELKEEP,
};

/* One rule; the option fields are filled from lc_relabel_options. */
struct lc_relabel_rule {
    struct lc_strlist source_labels;
    char *separator; /* ";" */
    char *regex;     /* "(.*)" */
    char *target_label;
    char *replacement; /* "$1" */
    int action;        /* enum lc_relabel_action */
    struct lc_rx rx;   /* the anchored regex, made by lc_relabel_prepare */
};

/* The option table of one rule (a `relabel:` list item). */
extern const struct lc_option lc_relabel_options[];

/* lc_relabel_prepare and lc_relabel_rule_free as a SECLIST's item hooks. */
int lc_relabel_item_prepare(void *item, char *err, size_t errlen);
void lc_relabel_item_free(void *item);

/*
 * An input's `relabel:` option row: at most 64 rules into the struct
 * lc_seclist at conf offset `off`; `what` names the source ("container").
 */
#define LC_RELABEL_OPTION(off, what)                                                               \
    {                                                                                              \
        LC_OPT_SECLIST, "relabel", NULL, (off), 0, 64,                                             \
            .sub = lc_relabel_options, .size = sizeof(struct lc_relabel_rule),                     \
            .prepare = lc_relabel_item_prepare, .free_item = lc_relabel_item_free,                 \
            .help = "Prometheus relabel_configs on the discovery labels, once per " what "; the "  \
                    "result is the " what "'s label set (docs/promtail.md)."                       \
    }

/*
 * Checks the rule (replace needs target_label; labelmap/labeldrop/labelkeep
 * take no source_labels) and compiles `^(?:regex)\z`. 0, or -EINVAL with why
 * in err. Loop thread only afterwards (the match data is shared).
 */
int lc_relabel_prepare(struct lc_relabel_rule *r, char *err, size_t errlen);
/* Frees the compiled regex and the rule's options; not r itself. */
void lc_relabel_rule_free(struct lc_relabel_rule *r);

/* A label set being relabelled: owned copies, at most LC_RELABEL_MAX_LABELS. */
#define LC_RELABEL_MAX_LABELS 128
struct lc_relabel_set {
    struct lc_kv v[LC_RELABEL_MAX_LABELS];
    size_t n;
};

/* Sets (adds or replaces) key=value. 0, -E2BIG (the set is full), -ENOMEM. */
int lc_relabel_set_put(struct lc_relabel_set *s, const char *key, const char *value);
/* The value of key, or NULL. */
const char *lc_relabel_set_get(const struct lc_relabel_set *s, const char *key);
/* Removes key (no-op when absent). */
void lc_relabel_set_del(struct lc_relabel_set *s, const char *key);
void lc_relabel_set_free(struct lc_relabel_set *s);

/*
 * Applies the rules in order, then removes the labels starting with "__".
 * 1: keep the source with the labels left in s; 0: a keep/drop rule dropped
 * it (s is then unspecified); -ENOMEM/-E2BIG.
 */
int lc_relabel_apply(struct lc_relabel_rule *rules, size_t n, struct lc_relabel_set *s);

/*
 * A source's relabelling in two steps: begin empties s and puts the input's
 * static labels; the caller puts the discovery labels, carrying the first
 * error in rc; end applies the rules. An -E2BIG rc (more labels than a set
 * holds) is not an error: *cut is set and the labels put so far are used.
 * end returns 1 (kept, the labels in s), 0 (dropped by a rule, or no label
 * left: Promtail drops a target without labels) or a negative errno; s is
 * freed unless 1.
 */
int lc_relabel_begin(struct lc_relabel_set *s, const struct lc_kvlist *stat);
int lc_relabel_end(struct lc_relabel_rule *rules, size_t n, struct lc_relabel_set *s, int rc,
                   bool *cut);

#endif
