/* SPDX-License-Identifier: MIT */
/* output.c: the `output` stage (the line from one field) and `template` (from several). */
#include "process/stage.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

struct lc_output_stage_conf {
    char *source;
    char *template;
};

#define OC(f) offsetof(struct lc_output_stage_conf, f)

static const struct lc_option output_options[] = {
    {.type = LC_OPT_STR,
     .key = "source",
     .offset = OC(source),
     .flags = LC_OPT_REQUIRED,
     .help = "Field whose value becomes the line (a record without it is unchanged)."},
    LC_OPT_END,
};

static const struct lc_option template_options[] = {
    {.type = LC_OPT_STR,
     .key = "template",
     .offset = OC(template),
     .flags = LC_OPT_REQUIRED | LC_OPT_VERBATIM,
     .help = "Text with `{{ .name }}` (or `{{name}}`) replaced by field values (\"\" when "
             "absent) and `{{ .Line }}` by the line."},
    {.type = LC_OPT_STR,
     .key = "source",
     .offset = OC(source),
     .help = "Field to set instead of the line."},
    LC_OPT_END,
};

static enum lc_stage_result output_run(struct lc_stage *st, struct lc_prec *r)
{
    const struct lc_output_stage_conf *c = st->conf;
    size_t len;
    const char *v = lc_prec_field(r, c->source, strlen(c->source), &len);

    (void)st;
    if (!v)
        return LC_STAGE_FAIL;
    if (len > LC_PREC_LINE_MAX)
        return LC_STAGE_FAIL;
    memcpy(lc_prec_spare(r), v, len);
    lc_prec_set_line(r, len);
    return LC_STAGE_PASS;
}

/* Finds the next "{{ name }}" at or after t; sets the name span; NULL if none. */
static const char *next_ref(const char *t, const char **name, size_t *name_len, const char **end)
{
    for (const char *p = strstr(t, "{{"); p; p = strstr(p + 2, "{{")) {
        const char *q = strstr(p + 2, "}}"), *a = p + 2, *b;
        if (!q)
            return NULL;
        while (a < q && *a == ' ')
            a++;
        if (a < q && *a == '.')
            a++;
        b = q;
        while (b > a && b[-1] == ' ')
            b--;
        if (b > a) {
            *name = a;
            *name_len = (size_t)(b - a);
            *end = q + 2;
            return p;
        }
    }
    return NULL;
}

static int template_prepare(void *conf, const char **bad_key, char *err, size_t errlen)
{
    const struct lc_output_stage_conf *c = conf;
    const char *name, *end;
    size_t n;

    *bad_key = "template";
    if (strstr(c->template, "{{") && !next_ref(c->template, &name, &n, &end)) {
        snprintf(err, errlen, "'{{' without a field name and '}}'");
        return -EINVAL;
    }
    return 0;
}

static enum lc_stage_result template_run(struct lc_stage *st, struct lc_prec *r)
{
    const struct lc_output_stage_conf *c = st->conf;
    const char *t = c->template, *name, *end, *p;
    char *out = lc_prec_spare(r);
    size_t o = 0, n;

#define PUT(src, len)                                                                              \
    do {                                                                                           \
        if (o + (len) > LC_PREC_LINE_MAX)                                                          \
            return LC_STAGE_FAIL;                                                                  \
        memcpy(out + o, (src), (len));                                                             \
        o += (len);                                                                                \
    } while (0)
    while ((p = next_ref(t, &name, &n, &end))) {
        size_t vlen = 0;
        const char *v;
        PUT(t, (size_t)(p - t));
        if (n == 4 && memcmp(name, "Line", 4) == 0) {
            v = r->line;
            vlen = r->len;
        } else {
            v = lc_prec_field(r, name, n, &vlen);
        }
        if (v)
            PUT(v, vlen);
        t = end;
    }
    PUT(t, strlen(t));
#undef PUT
    if (c->source && *c->source) {
        if (lc_prec_set_field(r, c->source, strlen(c->source), out, o) < 0) {
            lc_counter_inc(st->chain->m_fields_cut);
            return LC_STAGE_FAIL;
        }
        return LC_STAGE_PASS;
    }
    lc_prec_set_line(r, o);
    return LC_STAGE_PASS;
}

const struct lc_stage_plugin lc_stage_output = {
    .name = "output",
    .description = "sets the line to a field's value (e.g. send only `msg`)",
    .options = output_options,
    .conf_size = sizeof(struct lc_output_stage_conf),
    .run = output_run,
};

const struct lc_stage_plugin lc_stage_template = {
    .name = "template",
    .description = "sets the line (or a field) from a template of fields",
    .options = template_options,
    .conf_size = sizeof(struct lc_output_stage_conf),
    .prepare = template_prepare,
    .run = template_run,
};
