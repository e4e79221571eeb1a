/* SPDX-License-Identifier: MIT */
/* filter.c: the `drop` and `keep` stages (Promtail's `drop`, and its inverse). */
#include "core/clock.h"
#include "core/record-t.h"
#include "process/rx.h"
#include "process/stage.h"

#include <errno.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * A record matches when every condition given matches (at least one must be
 * given): `expression` on the source (line or field), `value` equal to the
 * field, `longer_than` (line bytes), `older_than` (its timestamp). With a
 * `source` field the record does not have, it does not match. `drop` drops the
 * records that match, `keep` those that do not; both count by `reason`.
 */
struct lc_filter_conf {
    char *source;
    char *expression;
    char *value;
    int64_t longer_than;
    int64_t older_than_ms;
    char *reason;
    struct lc_rx rx;
};

#define FC(f) offsetof(struct lc_filter_conf, f)

/* clang-format off */
#define FILTER_OPTIONS(def_reason)                                                                 \
    {.type = LC_OPT_STR, .key = "source", .offset = FC(source),                                    \
     .help = "Field the conditions look at instead of the line."},                                 \
    {.type = LC_OPT_STR, .key = "expression", .offset = FC(expression),                            \
     .flags = LC_OPT_VERBATIM,                                                                     \
     .help = "PCRE2 regex the line (or source field) must match."},                                \
    {.type = LC_OPT_STR, .key = "value", .offset = FC(value),                                      \
     .help = "Exact value the source field must have (needs source)."},                            \
    {.type = LC_OPT_SIZE, .key = "longer_than", .def = "0", .offset = FC(longer_than),             \
     .help = "Matches lines longer than this many bytes (0: not a condition)."},                   \
    {.type = LC_OPT_DURATION, .key = "older_than", .def = "0", .offset = FC(older_than_ms),        \
     .help = "Matches records whose timestamp is older than this (0: not a condition)."},         \
    {.type = LC_OPT_STR, .key = "reason", .def = (def_reason), .offset = FC(reason),                 \
     .help = "The `reason` label of log_capturer_process_dropped_total."},                         \
    LC_OPT_END
/* clang-format on */

static const struct lc_option drop_options[] = {FILTER_OPTIONS("drop_stage")};
static const struct lc_option keep_options[] = {FILTER_OPTIONS("not_kept")};

static int filter_prepare(void *conf, const char **bad_key, char *err, size_t errlen)
{
    struct lc_filter_conf *c = conf;

    if (c->value && !c->source) {
        *bad_key = "value";
        snprintf(err, errlen, "'value' compares a field: set 'source' too");
        return -EINVAL;
    }
    if (!c->expression && !c->value && !c->longer_than && !c->older_than_ms) {
        *bad_key = NULL;
        snprintf(err, errlen, "no condition: give expression, value, longer_than or older_than");
        return -EINVAL;
    }
    *bad_key = "expression";
    return c->expression ? lc_rx_compile(&c->rx, c->expression, err, errlen) : 0;
}

static void filter_conf_free(void *conf)
{
    lc_rx_free(&((struct lc_filter_conf *)conf)->rx);
}

static bool filter_matches(const struct lc_filter_conf *c, struct lc_prec *r)
{
    const char *s;
    size_t len;

    if (c->longer_than && r->len <= (size_t)c->longer_than)
        return false;
    if (c->older_than_ms && r->ts_ns >= lc_now_ns() - c->older_than_ms * LC_NS_PER_MSEC)
        return false;
    if (!c->expression && !c->value)
        return true;
    s = lc_prec_subject(r, c->source, &len);
    if (!s)
        return false;
    if (c->value && (strlen(c->value) != len || memcmp(c->value, s, len) != 0))
        return false;
    return !c->expression || lc_rx_match((struct lc_rx *)&c->rx, s, len);
}

static enum lc_stage_result drop_run(struct lc_stage *st, struct lc_prec *r)
{
    const struct lc_filter_conf *c = st->conf;

    return filter_matches(c, r) ? lc_prec_drop(st, r, c->reason) : LC_STAGE_PASS;
}

static enum lc_stage_result keep_run(struct lc_stage *st, struct lc_prec *r)
{
    const struct lc_filter_conf *c = st->conf;

    return filter_matches(c, r) ? LC_STAGE_PASS : lc_prec_drop(st, r, c->reason);
}

static int filter_init(struct lc_stage *st)
{
    lc_stage_drop_series(st, ((const struct lc_filter_conf *)st->conf)->reason);
    return 0;
}

const struct lc_stage_plugin lc_stage_drop = {
    .name = "drop",
    .description = "drops the records that match every condition given",
    .options = drop_options,
    .conf_size = sizeof(struct lc_filter_conf),
    .prepare = filter_prepare,
    .conf_free = filter_conf_free,
    .init = filter_init,
    .run = drop_run,
};

const struct lc_stage_plugin lc_stage_keep = {
    .name = "keep",
    .description = "keeps only the records that match every condition given",
    .options = keep_options,
    .conf_size = sizeof(struct lc_filter_conf),
    .prepare = filter_prepare,
    .conf_free = filter_conf_free,
    .init = filter_init,
    .run = keep_run,
};
