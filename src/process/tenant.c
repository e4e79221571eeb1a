/* SPDX-License-Identifier: MIT */
/* tenant.c: the `tenant` stage: a record's Loki tenant (X-Scope-OrgID), fixed or from a field. */
#include "core/labels.h"
#include "core/log.h"
#include "core/tenant.h"
#include "process/stage.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Promtail's `tenant` stage: exactly one of `value` (a fixed tenant), `source`
 * (an extracted field) or `label` (a label of the record). The record's tenant
 * becomes that value when it is set and not empty; otherwise the record keeps
 * the tenant it had (an earlier tenant stage's, else the output's `tenant`).
 * A value that is not a valid Loki tenant ID (core/tenant.h) is not used:
 * counted (log_capturer_process_tenant_invalid_total) and logged, the record
 * keeps its tenant. The Loki output sends each tenant's records in their own
 * requests (outputs' max_tenant_batches bounds the open batches).
 */
struct lc_tenant_conf {
    char *value;
    char *source;
    char *label;
};

#define TC(f) offsetof(struct lc_tenant_conf, f)

static const struct lc_option tenant_options[] = {
    {.type = LC_OPT_STR,
     .key = "value",
     .offset = TC(value),
     .help = "A fixed tenant ID for every record of the stage (e.g. inside a `match`)."},
    {.type = LC_OPT_STR,
     .key = "source",
     .offset = TC(source),
     .help = "Field whose value is the tenant ID; a record without it (or with \"\") keeps its "
             "tenant."},
    {.type = LC_OPT_STR,
     .key = "label",
     .offset = TC(label),
     .help = "Label whose value is the tenant ID; a record without it keeps its tenant."},
    LC_OPT_END,
};

static bool set(const char *s)
{
    return s && *s;
}

static int tenant_prepare(void *conf, const char **bad_key, char *err, size_t errlen)
{
    const struct lc_tenant_conf *c = conf;
    int n = set(c->value) + set(c->source) + set(c->label);

    *bad_key = set(c->value) ? "value" : set(c->source) ? "source" : "label";
    if (n != 1) {
        snprintf(err, errlen, "give exactly one of value, source or label");
        return -EINVAL;
    }
    if (set(c->value) && !lc_tenant_valid(c->value, strlen(c->value))) {
        snprintf(err, errlen,
                 "not a valid Loki tenant ID: 1 to %d of letters, digits and !-_.*'() "
                 "(not . or ..)",
                 LC_TENANT_MAX);
        return -EINVAL;
    }
    return 0;
}

/* ctx: the stage's series of log_capturer_process_tenant_invalid_total (owned by the registry) */
static int tenant_init(struct lc_stage *st)
{
    st->ctx = lc_stage_counter(st, "log_capturer_process_tenant_invalid_total",
                               "Tenant IDs a `tenant` stage did not use: not a valid Loki tenant "
                               "ID (the record kept its tenant).");
    return 0;
}

static const char *label_value(const struct lc_labels *l, const char *name)
{
    for (size_t i = 0; l && i < l->n; i++)
        if (strcmp(l->pairs[i].key, name) == 0)
            return l->pairs[i].value;
    return NULL;
}

static enum lc_stage_result tenant_run(struct lc_stage *st, struct lc_prec *r)
{
    const struct lc_tenant_conf *c = st->conf;
    const char *v;
    size_t len = 0;

    if (set(c->source)) {
        v = lc_prec_field(r, c->source, strlen(c->source), &len);
    } else if (set(c->label)) {
        v = label_value(r->labels, c->label);
        len = v ? strlen(v) : 0;
    } else {
        v = c->value;
        len = strlen(v);
    }
    if (!v || len == 0)
        return LC_STAGE_PASS;
    if (!lc_tenant_valid(v, len)) {
        lc_counter_inc(st->ctx);
        lc_logf(LC_LOG_WARN, "process", NULL,
                "input %s, stage %s: a tenant ID of %zu bytes is not valid for Loki (1 to %d of "
                "letters, digits and !-_.*'()): the record keeps its tenant",
                st->chain->input_name, st->id, len, LC_TENANT_MAX);
        return LC_STAGE_FAIL;
    }
    memcpy(r->tenant, v, len);
    r->tenant[len] = '\0';
    r->tenant_len = (uint32_t)len;
    return LC_STAGE_PASS;
}

const struct lc_stage_plugin lc_stage_tenant = {
    .name = "tenant",
    .description = "sets the record's Loki tenant (X-Scope-OrgID) from a field, a label or a value",
    .options = tenant_options,
    .conf_size = sizeof(struct lc_tenant_conf),
    .prepare = tenant_prepare,
    .init = tenant_init,
    .run = tenant_run,
};
