/* SPDX-License-Identifier: MIT */
/* replace.c: the `replace` stage: regex replace on the line or a field; presets for secrets. */
#include "process/rx.h"
#include "process/stage.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/*
 * Every match of `expression` in the line (or the `source` field) is replaced
 * by `replace`, where $1, ${name} refer to groups (PCRE2 substitution syntax).
 * A preset supplies both for a common secret:
 *   bearer_token  `Bearer <token>` (any case)  -> `Bearer ***`
 *   aws_key       an AWS access key id (AKIA..., ASIA..., 20 characters) -> `***`
 *   email         an e-mail address (local@domain.tld) -> `***@***`
 * A result longer than 1 MiB leaves the record unchanged (counted as failed).
 */
struct lc_replace_conf {
    char *expression;
    char *source;
    char *replace;
    int preset;
    struct lc_rx rx;
};

enum { PRESET_NONE, PRESET_BEARER, PRESET_AWS, PRESET_EMAIL };
static const char *const preset_names[] = {"none", "bearer_token", "aws_key", "email", NULL};
static const char *const preset_rx[] = {
    NULL,
    "(?i)\\b(bearer)\\s+[A-Za-z0-9._~+/=-]+",
    "\\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{16}\\b",
    "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}",
};
static const char *const preset_repl[] = {NULL, "$1 ***", "***", "***@***"};

#define PC(f) offsetof(struct lc_replace_conf, f)

static const struct lc_option replace_options[] = {
    {.type = LC_OPT_STR,
     .key = "expression",
     .flags = LC_OPT_VERBATIM,
     .offset = PC(expression),
     .help = "PCRE2 regex; every match is replaced (required unless preset)."},
    {.type = LC_OPT_STR,
     .key = "source",
     .offset = PC(source),
     .help = "Field to rewrite instead of the line."},
    {.type = LC_OPT_STR,
     .key = "replace",
     .flags = LC_OPT_VERBATIM,
     .offset = PC(replace),
     .help = "Replacement; $1 or ${name} insert a group (default \"\", or the preset's)."},
    {.type = LC_OPT_ENUM,
     .key = "preset",
     .def = "none",
     .offset = PC(preset),
     .choices = preset_names,
     .help = "A built-in expression and replacement: bearer_token (`Bearer xyz` -> `Bearer "
             "***`), aws_key (AKIA/ASIA... key ids -> `***`), email (-> `***@***`)."},
    LC_OPT_END,
};

static int replace_prepare(void *conf, const char **bad_key, char *err, size_t errlen)
{
    struct lc_replace_conf *c = conf;

    *bad_key = "expression";
    if (c->preset && c->expression) {
        snprintf(err, errlen, "give either expression or preset, not both");
        return -EINVAL;
    }
    if (!c->preset && !c->expression) {
        *bad_key = NULL;
        snprintf(err, errlen, "missing 'expression' (or a 'preset')");
        return -EINVAL;
    }
    if (c->preset && !c->replace) {
        c->replace = strdup(preset_repl[c->preset]);
        if (!c->replace)
            return -ENOMEM;
    }
    int rc = lc_rx_compile(&c->rx, c->preset ? preset_rx[c->preset] : c->expression, err, errlen);
    /*
     * PCRE2 knows only the last literal an e-mail match needs ('.'), which most
     * lines have; every match has an '@', which few lines have: test for it first.
     */
    if (rc == 0 && c->preset == PRESET_EMAIL)
        c->rx.req[0] = c->rx.req[1] = '@';
    return rc;
}

static void replace_conf_free(void *conf)
{
    lc_rx_free(&((struct lc_replace_conf *)conf)->rx);
}

static enum lc_stage_result replace_run(struct lc_stage *st, struct lc_prec *r)
{
    struct lc_replace_conf *c = (struct lc_replace_conf *)st->conf;
    const char *repl = c->replace ? c->replace : "";
    PCRE2_SIZE outlen = LC_PREC_LINE_MAX;
    const char *s;
    size_t len;
    char *out;
    int rc;

    s = lc_prec_subject(r, c->source, &len);
    if (!s)
        return LC_STAGE_PASS;
    /* most records hold no secret: one match decides, without copying */
    if (!lc_rx_match(&c->rx, s, len))
        return LC_STAGE_PASS;
    out = lc_prec_spare(r);
    rc =
        pcre2_substitute(c->rx.code, (PCRE2_SPTR)s, len, 0, PCRE2_SUBSTITUTE_GLOBAL, c->rx.md, NULL,
                         (PCRE2_SPTR)repl, PCRE2_ZERO_TERMINATED, (PCRE2_UCHAR *)out, &outlen);
    if (rc < 0)
        return LC_STAGE_FAIL;
    if (c->source && *c->source) {
        if (lc_prec_set_field(r, c->source, strlen(c->source), out, outlen) < 0) {
            lc_counter_inc(st->chain->m_fields_cut);
            return LC_STAGE_FAIL;
        }
        return LC_STAGE_PASS;
    }
    lc_prec_set_line(r, outlen);
    return LC_STAGE_PASS;
}

const struct lc_stage_plugin lc_stage_replace = {
    .name = "replace",
    .description = "replaces what a regex matches in the line or a field (masking secrets)",
    .options = replace_options,
    .conf_size = sizeof(struct lc_replace_conf),
    .prepare = replace_prepare,
    .conf_free = replace_conf_free,
    .run = replace_run,
};
