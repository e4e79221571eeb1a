/* SPDX-License-Identifier: MIT */
/* regex.c: the `regex` stage: a regex's named groups become fields (Promtail's `regex`). */
#include "process/rx.h"
#include "process/stage.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct lc_regex_conf {
    char *expression;
    char *source;
    struct lc_rx rx;
};

#define RC(f) offsetof(struct lc_regex_conf, f)

static const struct lc_option regex_options[] = {
    {.type = LC_OPT_STR,
     .key = "expression",
     .offset = RC(expression),
     .flags = LC_OPT_REQUIRED | LC_OPT_VERBATIM,
     .help = "PCRE2 regex; each named group `(?P<name>...)` that matched becomes a field."},
    {.type = LC_OPT_STR,
     .key = "source",
     .offset = RC(source),
     .help = "Field to match instead of the line."},
    LC_OPT_END,
};

static int regex_prepare(void *conf, const char **bad_key, char *err, size_t errlen)
{
    struct lc_regex_conf *c = conf;

    *bad_key = "expression";
    return lc_rx_compile(&c->rx, c->expression, err, errlen);
}

static void regex_conf_free(void *conf)
{
    lc_rx_free(&((struct lc_regex_conf *)conf)->rx);
}

static enum lc_stage_result regex_run(struct lc_stage *st, struct lc_prec *r)
{
    struct lc_regex_conf *c = (struct lc_regex_conf *)st->conf;
    uint32_t count, esize;
    PCRE2_SPTR table;
    PCRE2_SIZE *ov;
    const char *s;
    size_t len;

    s = lc_prec_subject(r, c->source, &len);
    if (!s)
        return LC_STAGE_PASS;
    if (!lc_rx_match(&c->rx, s, len))
        return LC_STAGE_FAIL; /* Promtail counts a line the regex does not match as a failure */
    ov = pcre2_get_ovector_pointer(c->rx.md);
    pcre2_pattern_info(c->rx.code, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(c->rx.code, PCRE2_INFO_NAMEENTRYSIZE, &esize);
    pcre2_pattern_info(c->rx.code, PCRE2_INFO_NAMETABLE, &table);
    for (uint32_t i = 0; i < count; i++, table += esize) {
        uint32_t g = ((uint32_t)table[0] << 8) | table[1];
        const char *name = (const char *)table + 2;
        if (ov[2 * g] == PCRE2_UNSET)
            continue;
        if (lc_prec_set_field(r, name, strlen(name), s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]) < 0)
            lc_counter_inc(st->chain->m_fields_cut);
    }
    return LC_STAGE_PASS;
}

const struct lc_stage_plugin lc_stage_regex = {
    .name = "regex",
    .description = "extracts the named groups of a regex into fields",
    .options = regex_options,
    .conf_size = sizeof(struct lc_regex_conf),
    .prepare = regex_prepare,
    .conf_free = regex_conf_free,
    .run = regex_run,
};
