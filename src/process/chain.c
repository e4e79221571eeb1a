/* SPDX-License-Identifier: MIT */
/* chain.c: an input's list of stages run on each record; fields; the stage registry. */
#include "core/agent.h"
#include "core/config.h"
#include "core/source.h"
#include "core/log.h"
#include "core/meta.h"
#include "core/plugin.h"
#include "process/stage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const struct lc_stage_plugin lc_stage_decolorize;
extern const struct lc_stage_plugin lc_stage_drop;
extern const struct lc_stage_plugin lc_stage_json;
extern const struct lc_stage_plugin lc_stage_keep;
extern const struct lc_stage_plugin lc_stage_labelallow;
extern const struct lc_stage_plugin lc_stage_labeldrop;
extern const struct lc_stage_plugin lc_stage_labels;
extern const struct lc_stage_plugin lc_stage_limit;
extern const struct lc_stage_plugin lc_stage_logfmt;
extern const struct lc_stage_plugin lc_stage_match;
extern const struct lc_stage_plugin lc_stage_multiline;
extern const struct lc_stage_plugin lc_stage_output;
extern const struct lc_stage_plugin lc_stage_regex;
extern const struct lc_stage_plugin lc_stage_replace;
extern const struct lc_stage_plugin lc_stage_structured_metadata;
extern const struct lc_stage_plugin lc_stage_template;
extern const struct lc_stage_plugin lc_stage_tenant;
extern const struct lc_stage_plugin lc_stage_timestamp;

const struct lc_stage_plugin *const lc_stage_plugins[] = {
    &lc_stage_multiline,           /* merges the lines of a stack trace into one record */
    &lc_stage_json,                /* keys and dotted paths of a JSON object into fields */
    &lc_stage_logfmt,              /* logfmt pairs into fields */
    &lc_stage_regex,               /* named groups of a regex into fields */
    &lc_stage_timestamp,           /* the record's time from a field */
    &lc_stage_labels,              /* fields into Loki labels, with a cardinality guard */
    &lc_stage_structured_metadata, /* fields into Loki structured metadata */
    &lc_stage_tenant,              /* the record's Loki tenant, from a field or fixed */
    &lc_stage_labeldrop,           /* labels taken off the label set */
    &lc_stage_labelallow,          /* only the named labels kept */
    &lc_stage_replace,             /* regex replace on the line or a field; secret presets */
    &lc_stage_drop,                /* drop records that match */
    &lc_stage_keep,                /* keep only records that match */
    &lc_stage_match,               /* nested stages (or a drop) for records a selector matches */
    &lc_stage_limit,               /* per-stream rate limit */
    &lc_stage_output,              /* the line from a field */
    &lc_stage_template,            /* the line (or a field) from a template */
    &lc_stage_decolorize,          /* strip ANSI colour sequences */
    NULL,                          /* end of list */
};

const struct lc_stage_plugin *lc_stage_plugin_find(const char *name)
{
    for (size_t i = 0; lc_stage_plugins[i]; i++)
        if (strcmp(lc_stage_plugins[i]->name, name) == 0)
            return lc_stage_plugins[i];
    return NULL;
}

const char *lc_prec_field(const struct lc_prec *r, const char *name, size_t name_len, size_t *len)
{
    for (uint32_t i = 0; i < r->nfields; i++) {
        const struct lc_field *f = &r->fields[i];
        if (f->name_len == name_len && memcmp(r->arena + f->name_off, name, name_len) == 0) {
            *len = f->val_len;
            return r->arena + f->val_off;
        }
    }
    return NULL;
}

int lc_prec_set_field(struct lc_prec *r, const char *name, size_t name_len, const char *val,
                      size_t val_len)
{
    struct lc_field *f = NULL;

    for (uint32_t i = 0; i < r->nfields && !f; i++)
        if (r->fields[i].name_len == name_len &&
            memcmp(r->arena + r->fields[i].name_off, name, name_len) == 0)
            f = &r->fields[i];
    if (!f && r->nfields == LC_PREC_MAX_FIELDS)
        return -ENOSPC;
    if ((size_t)r->used + name_len + val_len > LC_PREC_ARENA)
        return -ENOSPC;
    if (!f) {
        f = &r->fields[r->nfields++];
        f->name_off = r->used;
        f->name_len = (uint32_t)name_len;
        memcpy(r->arena + r->used, name, name_len);
        r->used += (uint32_t)name_len;
    }
    /* val may point into the arena (a field copied to another): memmove */
    memmove(r->arena + r->used, val, val_len);
    f->val_off = r->used;
    f->val_len = (uint32_t)val_len;
    r->used += (uint32_t)val_len;
    return 0;
}

int lc_prec_set_meta(struct lc_prec *r, const char *name, size_t name_len, const char *val,
                     size_t val_len, uint32_t max_pairs, uint32_t max_bytes)
{
    struct lc_meta_it it = {r->meta, r->meta + r->meta_len};
    const char *n, *v, *at = NULL;
    size_t nl, vl, old = 0;

    if (max_pairs > LC_META_MAX_PAIRS)
        max_pairs = LC_META_MAX_PAIRS;
    if (max_bytes > LC_META_MAX_BYTES)
        max_bytes = LC_META_MAX_BYTES;
    while (!at && lc_meta_next(&it, &n, &nl, &v, &vl))
        if (nl == name_len && memcmp(n, name, nl) == 0) {
            at = n - LC_META_HDR;
            old = lc_meta_pair_size(nl, vl);
        }
    if ((!at && r->nmeta >= max_pairs) ||
        (size_t)r->meta_len - old + lc_meta_pair_size(name_len, val_len) > max_bytes)
        return -ENOSPC;
    if (at) { /* the old pair goes; the new one is appended */
        size_t off = (size_t)(at - r->meta);
        memmove(r->meta + off, r->meta + off + old, r->meta_len - off - old);
        r->meta_len -= (uint32_t)old;
        r->nmeta--;
    }
    r->meta_len += (uint32_t)lc_meta_put(r->meta + r->meta_len, name, name_len, val, val_len);
    r->nmeta++;
    return 0;
}

const char *lc_prec_subject(const struct lc_prec *r, const char *source, size_t *len)
{
    if (!source || !*source) {
        *len = r->len;
        return r->line;
    }
    return lc_prec_field(r, source, strlen(source), len);
}

char *lc_prec_spare(struct lc_prec *r)
{
    return r->linebuf[r->cur == 0 ? 1 : 0];
}

void lc_prec_set_line(struct lc_prec *r, size_t len)
{
    r->cur = r->cur == 0 ? 1 : 0;
    r->line = r->linebuf[r->cur];
    r->len = len;
}

enum lc_stage_result lc_prec_drop(struct lc_stage *st, struct lc_prec *r, const char *reason)
{
    struct lc_chain *c = st->chain;

    r->drop_reason = reason;
    if (st->m_drop)
        lc_counter_inc(st->m_drop);
    else
        lc_counter_inc(lc_metric_series(st->f_drop, c->input_name, st->id, reason));
    return LC_STAGE_DROP;
}

void lc_stage_drop_series(struct lc_stage *st, const char *reason)
{
    st->m_drop = lc_metric_series(st->f_drop, st->chain->input_name, st->id, reason);
}

struct lc_metric_series *lc_stage_counter(struct lc_stage *st, const char *name, const char *help)
{
    static const char *const l_st[] = {"input", "stage", NULL};
    struct lc_metric_family *f = lc_metric_family(LC_COUNTER, name, help, l_st);

    return lc_metric_series(f, st->chain->input_name, st->id);
}

void lc_stages_free(struct lc_stage *stages, size_t n)
{
    for (size_t k = 0; stages && k < n; k++)
        if (stages[k].plugin && stages[k].plugin->free)
            stages[k].plugin->free(&stages[k]);
    free(stages);
}

int lc_stages_init(struct lc_chain *c, const struct lc_process_conf *pc, const char *parent,
                   struct lc_stage *stages, size_t *n)
{
    static const char *const l_stage[] = {"input", "stage", NULL};
    static const char *const l_drop[] = {"input", "stage", "reason", NULL};
    struct lc_metric_family *f_fail, *f_drop;

    f_fail = lc_metric_family(LC_COUNTER, "log_capturer_process_failed_total",
                              "Records a stage could not process (e.g. bad JSON), passed on "
                              "unchanged.",
                              l_stage);
    f_drop = lc_metric_family(LC_COUNTER, "log_capturer_process_dropped_total",
                              "Records dropped by a stage, by reason.", l_drop);
    *n = 0;
    for (size_t k = 0; k < pc->n; k++) {
        struct lc_stage *st = &stages[k];
        (*n)++;
        st->plugin = pc->stages[k].plugin;
        st->conf = pc->stages[k].conf;
        st->chain = c;
        snprintf(st->id, sizeof(st->id), "%s%s%zu:%s", parent ? parent : "", parent ? "/" : "",
                 k + 1, st->plugin->name);
        st->m_fail = lc_metric_series(f_fail, c->input_name, st->id);
        st->f_drop = f_drop;
        if (st->plugin->init) {
            int rc = st->plugin->init(st);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

enum lc_stage_result lc_stages_run(struct lc_stage *stages, size_t n, struct lc_prec *r)
{
    for (size_t k = 0; k < n; k++) {
        struct lc_stage *st = &stages[k];
        switch (st->plugin->run(st, r)) {
        case LC_STAGE_PASS:
            break;
        case LC_STAGE_FAIL:
            lc_counter_inc(st->m_fail);
            break;
        case LC_STAGE_DROP:
            return LC_STAGE_DROP;
        case LC_STAGE_HOLD:
            return LC_STAGE_HOLD;
        }
    }
    return LC_STAGE_PASS;
}

void lc_chain_free(struct lc_chain *c)
{
    if (!c)
        return;
    lc_stages_free(c->stages, c->n);
    free(c->rec.arena);
    free(c->rec.linebuf[0]);
    free(c->rec.linebuf[1]);
    free(c->rec.meta);
    free(c);
}

/* The default emit_fn: into the outputs' batches, with the source's marks kept right. */
static int emit_pipeline(struct lc_chain *c, struct lc_source *src, const struct lc_labels *labels,
                         int64_t ts_ns, const char *line, size_t len)
{
    int token = lc_source_late_begin(src);
    int rc = lc_pipeline_emit_labels(c->in, src, labels, ts_ns, line, len);

    lc_source_late_end(src, token);
    return rc;
}

int lc_chain_emit_held(struct lc_stage *st, struct lc_source *src, const struct lc_labels *labels,
                       int64_t ts_ns, const char *line, size_t len)
{
    struct lc_chain *c = st->chain;
    int rc;

    c->skip = (size_t)(st - c->stages) + 1;
    rc = c->emit_fn(c, src, labels, ts_ns, line, len);
    c->skip = 0;
    return rc;
}

void lc_chain_stop(struct lc_chain *c, bool deliver)
{
    if (!c)
        return;
    for (size_t k = 0; k < c->n; k++)
        if (c->stages[k].plugin->stop)
            c->stages[k].plugin->stop(&c->stages[k], deliver);
}

int lc_chain_new(const struct lc_process_conf *pc, struct lc_input *in, const char *input_name,
                 struct lc_chain **out)
{
    static const char *const l_res[] = {"input", "result", NULL};
    static const char *const l_in[] = {"input", NULL};
    struct lc_metric_family *f;
    struct lc_chain *c;
    int rc = 0;

    *out = NULL;
    if (!pc || pc->n == 0)
        return 0;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->in = in;
    c->input_name = input_name;
    c->emit_fn = emit_pipeline;
    c->stages = calloc(pc->n, sizeof(*c->stages));
    c->rec.arena = malloc(LC_PREC_ARENA);
    c->rec.linebuf[0] = malloc(LC_PREC_LINE_MAX);
    c->rec.linebuf[1] = malloc(LC_PREC_LINE_MAX);
    c->rec.meta = malloc(LC_META_MAX_BYTES);
    if (!c->stages || !c->rec.arena || !c->rec.linebuf[0] || !c->rec.linebuf[1] || !c->rec.meta) {
        rc = -ENOMEM;
        goto out_free;
    }
    f = lc_metric_family(LC_COUNTER, "log_capturer_process_records_total",
                         "Records into an input's stages (in), out of them (out), dropped by one.",
                         l_res);
    c->m_in = lc_metric_series(f, input_name, "in");
    c->m_out = lc_metric_series(f, input_name, "out");
    c->m_dropped = lc_metric_series(f, input_name, "dropped");
    f = lc_metric_family(LC_COUNTER, "log_capturer_process_fields_cut_total",
                         "Fields not extracted: a record holds 32 fields and 64 KiB of them.",
                         l_in);
    c->m_fields_cut = lc_metric_series(f, input_name);
    rc = lc_stages_init(c, pc, NULL, c->stages, &c->n);
    if (rc < 0)
        goto out_free;
    *out = c;
    return 0;
out_free:
    lc_chain_free(c);
    return rc;
}

struct lc_prec *lc_chain_run(struct lc_chain *c, struct lc_source *src,
                             const struct lc_labels *labels, int64_t ts_ns, const char *line,
                             size_t len)
{
    struct lc_prec *r = &c->rec;

    r->src = src;
    r->labels = labels;
    r->ts_ns = ts_ns;
    r->line = line;
    r->len = len;
    r->nfields = 0;
    r->used = 0;
    r->cur = -1;
    r->drop_reason = NULL;
    r->meta_len = 0;
    r->nmeta = 0;
    r->tenant_len = 0;
    r->tenant[0] = '\0';
    lc_counter_inc(c->m_in);
    switch (lc_stages_run(c->stages + c->skip, c->n - c->skip, r)) {
    case LC_STAGE_PASS:
    case LC_STAGE_FAIL:
        break;
    case LC_STAGE_DROP:
        lc_counter_inc(c->m_dropped);
        return NULL;
    case LC_STAGE_HOLD:
        return NULL;
    }
    lc_counter_inc(c->m_out);
    return r;
}
