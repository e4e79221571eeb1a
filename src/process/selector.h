/* SPDX-License-Identifier: MIT */
/* selector.h: Loki stream selectors with line filters, `{app="x", level=~"e.*"} |= "foo"`. */
#ifndef LC_SELECTOR_H
#define LC_SELECTOR_H

#include "process/rx.h"

#include <stdbool.h>
#include <stddef.h>

struct lc_labels;

#define LC_SELECTOR_MAX 16 /* matchers, and line filters, of one selector */

/* One label matcher (op "=", "!=", "=~", "!~"; a regex is anchored at both ends) or line filter
 * (op "|=", "!=", "|~", "!~"; a regex matches anywhere). */
struct lc_sel_term {
    char *name; /* NULL for a line filter */
    char op[3];
    char *val;
    struct lc_rx rx;
};

struct lc_selector {
    struct lc_sel_term t[2 * LC_SELECTOR_MAX];
    size_t n;
};

/*
 * One matcher `name op "value"` at *pp (values are Go strings: "..." with
 * backslash escapes, or `...`): 0 and *pp past it and the blanks after, or
 * -EINVAL.
 */
int lc_selector_next(const char **pp, char *name, size_t nl, char *op, char *val, size_t vl);
/* 0, or -EINVAL with a message in err (s->n terms to free either way). */
int lc_selector_compile(struct lc_selector *s, const char *text, char *err, size_t errlen);
void lc_selector_free(struct lc_selector *s);
/* Every matcher true for labels (an absent label is "") and every line filter for the line. */
bool lc_selector_match(struct lc_selector *s, const struct lc_labels *labels, const char *line,
                       size_t len);

#endif
