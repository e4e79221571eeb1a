/* SPDX-License-Identifier: MIT */
/* match.c: the `match` stage (Promtail's): nested stages, or a drop, for records a selector
 * matches.
 */
#include "core/config.h"
#include "process/selector.h"
#include "process/stage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The selector is evaluated on each record's current labels (the source's,
 * or those earlier stages set) and line. action keep runs the nested stages
 * on a record it matches; action drop drops it, counted by
 * drop_counter_reason. Records it does not match go on unchanged.
 */
struct lc_match_conf {
    struct lc_process_conf stages; /* first: filled by the loader (plugin->nested) */
    char *selector;
    char *action;
    char *reason;
    bool drop;
    struct lc_selector sel;
};

struct match_ctx {
    struct lc_stage *stages;
    size_t n;
};

#define MC(f) offsetof(struct lc_match_conf, f)

/* clang-format off */
static const struct lc_option match_options[] = {
    {.type = LC_OPT_STR, .key = "selector", .offset = MC(selector), .flags = LC_OPT_VERBATIM,
     .help = "Loki stream selector on the record's current labels, e.g. `{app=\"x\", "
             "level=~\"err.*\"}` (regexes anchored), with optional line filters `|= \"s\"`, "
             "`!= \"s\"`, `|~ \"re\"`, `!~ \"re\"`."},
    {.type = LC_OPT_STR, .key = "action", .def = "keep", .offset = MC(action),
     .help = "keep: run the nested `stages:` on matching records; drop: drop them."},
    {.type = LC_OPT_STR, .key = "drop_counter_reason", .def = "match_stage", .offset = MC(reason),
     .help = "The `reason` label of log_capturer_process_dropped_total (action drop)."},
    LC_OPT_END
};
/* clang-format on */

static int match_prepare(void *conf, const char **bad_key, char *err, size_t errlen)
{
    struct lc_match_conf *c = conf;

    *bad_key = "action";
    if (strcmp(c->action, "keep") != 0 && strcmp(c->action, "drop") != 0) {
        snprintf(err, errlen, "action must be keep or drop");
        return -EINVAL;
    }
    c->drop = strcmp(c->action, "drop") == 0;
    if (!c->drop && c->stages.n == 0) {
        *bad_key = NULL;
        snprintf(err, errlen, "action keep needs nested 'stages:'");
        return -EINVAL;
    }
    *bad_key = "selector";
    if (!c->selector) {
        snprintf(err, errlen, "a 'selector' is needed");
        return -EINVAL;
    }
    return lc_selector_compile(&c->sel, c->selector, err, errlen);
}

static void match_conf_free(void *conf)
{
    struct lc_match_conf *c = conf;

    lc_selector_free(&c->sel);
    lc_process_conf_free(&c->stages);
}

static int match_init(struct lc_stage *st)
{
    const struct lc_match_conf *c = st->conf;
    struct match_ctx *m = calloc(1, sizeof(*m));

    if (!m)
        return -ENOMEM;
    st->ctx = m;
    if (c->drop) {
        lc_stage_drop_series(st, c->reason);
        return 0;
    }
    m->stages = calloc(c->stages.n, sizeof(*m->stages));
    if (!m->stages)
        return -ENOMEM;
    return lc_stages_init(st->chain, &c->stages, st->id, m->stages, &m->n);
}

static enum lc_stage_result match_run(struct lc_stage *st, struct lc_prec *r)
{
    struct lc_match_conf *c = (struct lc_match_conf *)st->conf;
    struct match_ctx *m = st->ctx;

    if (!lc_selector_match(&c->sel, r->labels, r->line, r->len))
        return LC_STAGE_PASS;
    if (c->drop)
        return lc_prec_drop(st, r, c->reason);
    return lc_stages_run(m->stages, m->n, r);
}

static void match_free(struct lc_stage *st)
{
    struct match_ctx *m = st->ctx;

    if (!m)
        return;
    lc_stages_free(m->stages, m->n);
    free(m);
    st->ctx = NULL;
}

const struct lc_stage_plugin lc_stage_match = {
    .name = "match",
    .description = "runs nested `stages:` on (or drops) the records a Loki selector matches",
    .options = match_options,
    .conf_size = sizeof(struct lc_match_conf),
    .prepare = match_prepare,
    .conf_free = match_conf_free,
    .init = match_init,
    .run = match_run,
    .free = match_free,
    .nested = true,
};
