/* SPDX-License-Identifier: MIT */
/* labeldrop.c: the `labeldrop` and `labelallow` stages: labels taken off a record's label set. */
#include "core/labels.h"
#include "process/stage.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * labeldrop removes the labels named in `names` from a record's label set,
 * labelallow keeps only those (Promtail's stages of the same names). The
 * result depends only on the record's label set, so it is made once per set
 * and remembered: a table of at most `max_sets` sets, each holding a
 * reference on the set it was made from (so that address cannot be reused
 * by another set while remembered). Past max_sets, or when nothing would be
 * left (Loki needs one label), a record keeps its labels and counts as failed.
 */
struct lc_labeldrop_conf {
    struct lc_strlist names;
    int64_t max_sets;
};

#define LD(f) offsetof(struct lc_labeldrop_conf, f)

static const struct lc_option labeldrop_options[] = {
    {.type = LC_OPT_STRLIST,
     .key = "names",
     .offset = LD(names),
     .flags = LC_OPT_REQUIRED,
     .help = "Label names."},
    {.type = LC_OPT_INT,
     .key = "max_sets",
     .def = "10000",
     .offset = LD(max_sets),
     .min = 1,
     .max = 1000000,
     .help = "Label sets remembered (each with its result); past it records keep their labels "
             "(counted as failed)."},
    LC_OPT_END,
};

struct ld_entry {
    struct lc_labels *from; /* a reference */
    struct lc_labels *to;   /* a reference */
};

struct ld_ctx {
    bool allow;
    struct ld_entry *v;
    size_t cap, n, max;
};

static size_t slot(const struct ld_ctx *x, const struct lc_labels *l)
{
    uintptr_t p = (uintptr_t)l;
    return (size_t)((p >> 4) * 2654435761u) & (x->cap - 1);
}

static void ld_free(struct lc_stage *st)
{
    struct ld_ctx *x = st->ctx;

    if (!x)
        return;
    for (size_t i = 0; x->v && i < x->cap; i++) {
        lc_labels_release(x->v[i].from);
        lc_labels_release(x->v[i].to);
    }
    free(x->v);
    free(x);
    st->ctx = NULL;
}

static int ld_init_mode(struct lc_stage *st, bool allow)
{
    const struct lc_labeldrop_conf *c = st->conf;
    struct ld_ctx *x = calloc(1, sizeof(*x));

    if (!x)
        return -ENOMEM;
    st->ctx = x;
    x->allow = allow;
    x->max = (size_t)c->max_sets;
    x->cap = 16;
    while (x->cap < x->max * 2)
        x->cap *= 2;
    x->v = calloc(x->cap, sizeof(*x->v));
    return x->v ? 0 : -ENOMEM;
}

static int ld_init_drop(struct lc_stage *st)
{
    return ld_init_mode(st, false);
}

static int ld_init_allow(struct lc_stage *st)
{
    return ld_init_mode(st, true);
}

static bool named(const struct lc_labeldrop_conf *c, const char *key)
{
    for (size_t i = 0; i < c->names.n; i++)
        if (strcmp(c->names.v[i], key) == 0)
            return true;
    return false;
}

static enum lc_stage_result ld_run(struct lc_stage *st, struct lc_prec *r)
{
    const struct lc_labeldrop_conf *c = st->conf;
    struct ld_ctx *x = st->ctx;
    struct lc_labels *from = (struct lc_labels *)r->labels;
    struct lc_kv pairs[LC_LABELS_MAX];
    struct lc_labels *to;
    size_t i, n = 0;

    if (!from)
        return LC_STAGE_PASS;
    for (i = slot(x, from); x->v[i].from; i = (i + 1) & (x->cap - 1))
        if (x->v[i].from == from) {
            r->labels = x->v[i].to;
            return LC_STAGE_PASS;
        }
    for (size_t k = 0; k < from->n && n < LC_LABELS_MAX; k++)
        if (named(c, from->pairs[k].key) == x->allow)
            pairs[n++] = from->pairs[k];
    if (n == from->n) {
        to = lc_labels_ref(from);
    } else if (n == 0 || x->n >= x->max || lc_labels_intern(pairs, n, &to) < 0) {
        return LC_STAGE_FAIL; /* nothing left, the table is full, or no memory */
    }
    if (x->n >= x->max) {
        lc_labels_release(to);
        return LC_STAGE_FAIL;
    }
    x->v[i].from = lc_labels_ref(from);
    x->v[i].to = to;
    x->n++;
    r->labels = to;
    return LC_STAGE_PASS;
}

const struct lc_stage_plugin lc_stage_labeldrop = {
    .name = "labeldrop",
    .description = "removes the named labels from a record's label set",
    .options = labeldrop_options,
    .conf_size = sizeof(struct lc_labeldrop_conf),
    .init = ld_init_drop,
    .run = ld_run,
    .free = ld_free,
};

const struct lc_stage_plugin lc_stage_labelallow = {
    .name = "labelallow",
    .description = "keeps only the named labels of a record's label set",
    .options = labeldrop_options,
    .conf_size = sizeof(struct lc_labeldrop_conf),
    .init = ld_init_allow,
    .run = ld_run,
    .free = ld_free,
};
