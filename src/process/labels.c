/* SPDX-License-Identifier: MIT */
/* labels.c: the `labels` stage: fields become Loki labels, with a cardinality guard per label. */
#include "core/labels.h"
#include "core/log.h"
#include "process/stage.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * `fields` maps label names to field names ("" or the same: the field of that
 * name). Names follow Loki's rules (invalid characters become '_'). A label
 * takes at most `max_values` distinct values over the agent's run; a new
 * value beyond it is sent as `overflow_value` and counted
 * (log_capturer_process_label_overflow_total), because an unbounded label is
 * how agents take Loki down. The label sets made are interned once and kept
 * until the chain is freed (after every batch is done), at most `max_sets`:
 * beyond that, a record keeps its input's labels and is counted as failed.
 */
struct lc_labels_conf {
    struct lc_kvlist fields;
    int64_t max_values;
    char *overflow_value;
    int64_t max_sets;
};

#define LC(f) offsetof(struct lc_labels_conf, f)

static const struct lc_option labels_options[] = {
    {.type = LC_OPT_MAP,
     .key = "fields",
     .offset = LC(fields),
     .flags = LC_OPT_REQUIRED | LC_OPT_NULL_EMPTY,
     .help = "Label name: field name (\"\" for the field of the same name)."},
    {.type = LC_OPT_INT,
     .key = "max_values",
     .def = "100",
     .offset = LC(max_values),
     .min = 1,
     .max = 100000,
     .help = "Distinct values one label may take; later new values become overflow_value."},
    {.type = LC_OPT_STR,
     .key = "overflow_value",
     .def = "__overflow__",
     .offset = LC(overflow_value),
     .help = "The value sent for a label past max_values."},
    {.type = LC_OPT_INT,
     .key = "max_sets",
     .def = "10000",
     .offset = LC(max_sets),
     .min = 1,
     .max = 1000000,
     .help = "Label sets this stage may create; past it records keep their input's labels "
             "(counted as failed)."},
    LC_OPT_END,
};

#define KEY_MAX 8192 /* the values of one record's labels, joined */

/* An open-addressing set of strings, capacity fixed at init. */
struct strset {
    char **v;
    size_t cap, n, max;
};

struct label {
    char name[128];
    const char *field;
    size_t field_len;
    struct strset seen;
    struct lc_metric_series *m_overflow;
};

struct set_entry {
    const struct lc_labels *base;
    char *key;
    size_t key_len;
    uint32_t hash;
    struct lc_labels *set;
};

struct labels_ctx {
    struct label *labels;
    size_t n;
    struct set_entry *sets;
    size_t sets_cap, nsets, max_sets;
    char key[KEY_MAX];
    const char *vals[LC_LABELS_MAX];
    size_t lens[LC_LABELS_MAX];
};

static uint32_t hash_bytes(uint32_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static size_t pow2_above(size_t n)
{
    size_t c = 16;
    while (c < n * 2)
        c *= 2;
    return c;
}

/* True when s is in the set or was added; false when the set is full. */
static bool strset_admit(struct strset *set, const char *s, size_t len, bool *oom)
{
    size_t i = hash_bytes(2166136261u, s, len) & (set->cap - 1);

    for (; set->v[i]; i = (i + 1) & (set->cap - 1))
        if (strlen(set->v[i]) == len && memcmp(set->v[i], s, len) == 0)
            return true;
    if (set->n >= set->max)
        return false;
    set->v[i] = strndup(s, len);
    if (!set->v[i]) {
        *oom = true;
        return false;
    }
    set->n++;
    return true;
}

static void labels_free(struct lc_stage *st)
{
    struct labels_ctx *x = st->ctx;

    if (!x)
        return;
    for (size_t k = 0; k < x->n; k++) {
        for (size_t i = 0; x->labels[k].seen.v && i < x->labels[k].seen.cap; i++)
            free(x->labels[k].seen.v[i]);
        free(x->labels[k].seen.v);
    }
    for (size_t i = 0; x->sets && i < x->sets_cap; i++) {
        free(x->sets[i].key);
        lc_labels_release(x->sets[i].set);
    }
    free(x->sets);
    free(x->labels);
    free(x);
    st->ctx = NULL;
}

static int labels_init(struct lc_stage *st)
{
    static const char *const l_ovf[] = {"input", "stage", "label", NULL};
    const struct lc_labels_conf *c = st->conf;
    struct lc_metric_family *f;
    struct labels_ctx *x = calloc(1, sizeof(*x));

    if (!x)
        return -ENOMEM;
    st->ctx = x;
    x->labels = calloc(c->fields.n, sizeof(*x->labels));
    x->max_sets = (size_t)c->max_sets;
    x->sets_cap = pow2_above(x->max_sets);
    x->sets = calloc(x->sets_cap, sizeof(*x->sets));
    if (!x->labels || !x->sets)
        return -ENOMEM;
    f = lc_metric_family(LC_COUNTER, "log_capturer_process_label_overflow_total",
                         "Records whose label value was past the label's max_values (sent as "
                         "overflow_value).",
                         l_ovf);
    for (size_t k = 0; k < c->fields.n; k++) {
        struct label *l = &x->labels[k];
        const struct lc_kv *kv = &c->fields.v[k];
        x->n++;
        lc_labels_sanitize_name(kv->key, l->name, sizeof(l->name));
        l->field = kv->value && *kv->value ? kv->value : kv->key;
        l->field_len = strlen(l->field);
        l->seen.max = (size_t)c->max_values;
        l->seen.cap = pow2_above(l->seen.max);
        l->seen.v = calloc(l->seen.cap, sizeof(char *));
        if (!l->seen.v)
            return -ENOMEM;
        l->m_overflow = lc_metric_series(f, st->chain->input_name, st->id, l->name);
    }
    return 0;
}

static int labels_prepare(void *conf, const char **bad_key, char *err, size_t errlen)
{
    const struct lc_labels_conf *c = conf;

    *bad_key = "fields";
    if (c->fields.n == 0 || c->fields.n > LC_LABELS_MAX) {
        snprintf(err, errlen, "give 1 to %d labels", LC_LABELS_MAX);
        return -EINVAL;
    }
    return 0;
}

/* The interned set of base + the record's values, made on first sight. NULL: max_sets, ENOMEM. */
static struct lc_labels *set_for(struct labels_ctx *x, const struct lc_labels *base, size_t klen)
{
    uintptr_t b = (uintptr_t)base; /* the set is identified by its address */
    uint32_t h = hash_bytes(hash_bytes(2166136261u, (const char *)&b, sizeof(b)), x->key, klen);
    size_t i = h & (x->sets_cap - 1);
    struct lc_kv pairs[LC_LABELS_MAX * 2];
    char vbuf[KEY_MAX + LC_LABELS_MAX];
    size_t np = 0, vo = 0;
    struct lc_labels *set;

    for (; x->sets[i].key; i = (i + 1) & (x->sets_cap - 1))
        if (x->sets[i].hash == h && x->sets[i].base == base && x->sets[i].key_len == klen &&
            memcmp(x->sets[i].key, x->key, klen) == 0)
            return x->sets[i].set;
    if (x->nsets >= x->max_sets)
        return NULL;
    for (size_t k = 0; base && k < base->n && np < LC_LABELS_MAX * 2; k++)
        pairs[np++] = base->pairs[k];
    for (size_t k = 0; k < x->n; k++) {
        if (!x->vals[k])
            continue;
        memcpy(vbuf + vo, x->vals[k], x->lens[k]);
        vbuf[vo + x->lens[k]] = '\0';
        pairs[np].key = x->labels[k].name;
        pairs[np].value = vbuf + vo;
        pairs[np].secret = false;
        np++;
        vo += x->lens[k] + 1;
    }
    if (lc_labels_intern(pairs, np, &set) < 0)
        return NULL;
    x->sets[i].key = malloc(klen ? klen : 1);
    if (!x->sets[i].key) {
        lc_labels_release(set);
        return NULL;
    }
    memcpy(x->sets[i].key, x->key, klen);
    x->sets[i].key_len = klen;
    x->sets[i].hash = h;
    x->sets[i].base = base;
    x->sets[i].set = set;
    x->nsets++;
    return set;
}

static enum lc_stage_result labels_run(struct lc_stage *st, struct lc_prec *r)
{
    const struct lc_labels_conf *c = st->conf;
    struct labels_ctx *x = st->ctx;
    size_t klen = 0;
    bool any = false, oom = false;
    struct lc_labels *set;

    for (size_t k = 0; k < x->n; k++) {
        struct label *l = &x->labels[k];
        size_t len;
        const char *v = lc_prec_field(r, l->field, l->field_len, &len);

        x->vals[k] = v;
        x->lens[k] = 0;
        if (klen + 2 > sizeof(x->key))
            return LC_STAGE_FAIL;
        x->key[klen++] = v ? 'v' : '-'; /* an absent label differs from an empty one */
        if (!v)
            continue;
        if (!strset_admit(&l->seen, v, len, &oom)) {
            if (oom)
                return LC_STAGE_FAIL;
            lc_counter_inc(l->m_overflow);
            v = c->overflow_value;
            len = strlen(v);
            x->vals[k] = v;
        }
        if (klen + len + 1 >= sizeof(x->key))
            return LC_STAGE_FAIL;
        x->lens[k] = len;
        memcpy(x->key + klen, v, len);
        x->key[klen + len] = '\0';
        klen += len + 1;
        any = true;
    }
    if (!any)
        return LC_STAGE_PASS;
    set = set_for(x, r->labels, klen);
    if (!set)
        return LC_STAGE_FAIL;
    r->labels = set;
    return LC_STAGE_PASS;
}

const struct lc_stage_plugin lc_stage_labels = {
    .name = "labels",
    .description = "promotes fields to Loki labels, with a cardinality guard per label",
    .options = labels_options,
    .conf_size = sizeof(struct lc_labels_conf),
    .prepare = labels_prepare,
    .init = labels_init,
    .run = labels_run,
    .free = labels_free,
};
