/* SPDX-License-Identifier: MIT */
/* structured_metadata.c: the `structured_metadata` stage: fields become Loki structured metadata.
 */
#include "core/labels.h"
#include "core/log.h"
#include "core/meta.h"
#include "process/stage.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * `values` maps metadata names to field names (empty or null: the field of
 * that name), as Promtail's `structured_metadata` stage. Names follow Loki's
 * label name rules (invalid characters become '_'). A record's block holds at
 * most `max_pairs` pairs and `max_bytes` bytes (all stages together); a pair
 * past either is not sent, and counted
 * (log_capturer_process_metadata_cut_total) and logged. An absent field sets
 * nothing. Loki takes it from 3.0 with `allow_structured_metadata` (the
 * default in 3.x); older Loki rejects such pushes.
 */
struct lc_smeta_conf {
    struct lc_kvlist values;
    int64_t max_pairs;
    int64_t max_bytes;
};

#define SC(f) offsetof(struct lc_smeta_conf, f)

static const struct lc_option smeta_options[] = {
    {.type = LC_OPT_MAP,
     .key = "values",
     .offset = SC(values),
     .flags = LC_OPT_REQUIRED | LC_OPT_NULL_EMPTY,
     .help = "Metadata name: field name (empty or null for the field of the same name)."},
    {.type = LC_OPT_INT,
     .key = "max_pairs",
     .def = "16",
     .offset = SC(max_pairs),
     .min = 1,
     .max = LC_META_MAX_PAIRS,
     .help = "Pairs of structured metadata a record may carry; later ones are cut and counted."},
    {.type = LC_OPT_SIZE,
     .key = "max_bytes",
     .def = "4KiB",
     .offset = SC(max_bytes),
     .min = 64,
     .max = LC_META_MAX_BYTES,
     .help = "Bytes of structured metadata (names and values, 4 bytes more per pair) a record "
             "may carry; a pair past it is cut and counted."},
    LC_OPT_END,
};

struct smeta {
    char name[128];
    size_t name_len;
    const char *field;
    size_t field_len;
};

struct smeta_ctx {
    struct smeta *v;
    size_t n;
    struct lc_metric_series *m_cut;
};

static int smeta_prepare(void *conf, const char **bad_key, char *err, size_t errlen)
{
    const struct lc_smeta_conf *c = conf;

    *bad_key = "values";
    if (c->values.n == 0 || c->values.n > LC_META_MAX_PAIRS) {
        snprintf(err, errlen, "give 1 to %d names", LC_META_MAX_PAIRS);
        return -EINVAL;
    }
    return 0;
}

static void smeta_free(struct lc_stage *st)
{
    struct smeta_ctx *x = st->ctx;

    if (!x)
        return;
    free(x->v);
    free(x);
    st->ctx = NULL;
}

static int smeta_init(struct lc_stage *st)
{
    const struct lc_smeta_conf *c = st->conf;
    struct smeta_ctx *x = calloc(1, sizeof(*x));

    if (!x)
        return -ENOMEM;
    st->ctx = x;
    x->v = calloc(c->values.n, sizeof(*x->v));
    if (!x->v)
        return -ENOMEM;
    for (size_t k = 0; k < c->values.n; k++) {
        const struct lc_kv *kv = &c->values.v[k];
        struct smeta *m = &x->v[k];
        lc_labels_sanitize_name(kv->key, m->name, sizeof(m->name));
        m->name_len = strlen(m->name);
        m->field = kv->value && *kv->value ? kv->value : kv->key;
        m->field_len = strlen(m->field);
        x->n++;
    }
    x->m_cut = lc_stage_counter(st, "log_capturer_process_metadata_cut_total",
                                "Structured metadata pairs not sent: past the stage's max_pairs "
                                "or max_bytes for one record.");
    return 0;
}

static enum lc_stage_result smeta_run(struct lc_stage *st, struct lc_prec *r)
{
    const struct lc_smeta_conf *c = st->conf;
    struct smeta_ctx *x = st->ctx;

    for (size_t k = 0; k < x->n; k++) {
        const struct smeta *m = &x->v[k];
        size_t len;
        const char *v = lc_prec_field(r, m->field, m->field_len, &len);
        if (!v)
            continue;
        if (lc_prec_set_meta(r, m->name, m->name_len, v, len, (uint32_t)c->max_pairs,
                             (uint32_t)c->max_bytes) < 0) {
            lc_counter_inc(x->m_cut);
            lc_logf(LC_LOG_WARN, "process", NULL,
                    "input %s, stage %s: structured metadata %s cut (a record holds %lld pairs, "
                    "%lld bytes)",
                    st->chain->input_name, st->id, m->name, (long long)c->max_pairs,
                    (long long)c->max_bytes);
        }
    }
    return LC_STAGE_PASS;
}

const struct lc_stage_plugin lc_stage_structured_metadata = {
    .name = "structured_metadata",
    .description = "attaches fields to the record as Loki structured metadata (Loki >= 3.0)",
    .options = smeta_options,
    .conf_size = sizeof(struct lc_smeta_conf),
    .prepare = smeta_prepare,
    .init = smeta_init,
    .run = smeta_run,
    .free = smeta_free,
};
