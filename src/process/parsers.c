/* SPDX-License-Identifier: MIT */
/* parsers.c: the `json` and `logfmt` stages: a line's (or field's) keys become fields. */
#include "parse/docker_json.h"
#include "parse/logfmt.h"
#include "process/stage.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Both take `expressions` (json) / `mapping` (logfmt): field name -> key ("" or
 * absent: the key of that name; json takes dotted paths `a.b.c` into nested
 * objects). With none given, every top-level key becomes a field. A json
 * string is the field's text (unescaped); a number, true, false, null, an
 * object or an array its JSON text as written. A line that is not JSON (or, for logfmt,
 * has no pair) passes on unchanged and counts as failed.
 */
struct lc_parser_conf {
    struct lc_kvlist keys;
    char *source;
};

#define PC(f) offsetof(struct lc_parser_conf, f)

static const struct lc_option json_options[] = {
    {.type = LC_OPT_MAP,
     .key = "expressions",
     .offset = PC(keys),
     .help = "Field name: dotted path into the JSON object (\"\": the key of that name); "
             "none: every top-level key."},
    {.type = LC_OPT_STR,
     .key = "source",
     .offset = PC(source),
     .help = "Field to parse instead of the line."},
    LC_OPT_END,
};

static const struct lc_option logfmt_options[] = {
    {.type = LC_OPT_MAP,
     .key = "mapping",
     .offset = PC(keys),
     .help = "Field name: logfmt key (\"\": the key of that name); none: every key."},
    {.type = LC_OPT_STR,
     .key = "source",
     .offset = PC(source),
     .help = "Field to parse instead of the line."},
    LC_OPT_END,
};

static void cut(struct lc_stage *st)
{
    lc_counter_inc(st->chain->m_fields_cut);
}

/*
 * Sets field `name` from a JSON value as written: a string unescaped (into the
 * spare line buffer, then the arena), anything else as its JSON text.
 */
static void set_json(struct lc_stage *st, struct lc_prec *r, const char *name, size_t name_len,
                     const char *val, size_t val_len)
{
    if (val_len && val[0] == '"') {
        char *tmp = lc_prec_spare(r);
        long n = lc_json_string_decode(val, val_len, tmp, LC_PREC_LINE_MAX);
        if (n < 0) {
            cut(st);
            return;
        }
        val = tmp;
        val_len = (size_t)n;
    }
    if (lc_prec_set_field(r, name, name_len, val, val_len) < 0)
        cut(st);
}

/* The value at a dotted path ("a.b.c") in the object [p, end); false if absent or malformed. */
static bool at_path(const char *p, const char *end, const char *path, const char **val,
                    size_t *val_len)
{
    struct lc_json_member m;

    for (;;) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        bool found = false;

        p = lc_json_object_open(p, end);
        if (!p)
            return false;
        while (lc_json_object_next(&p, end, &m) == 1) {
            if (m.key_len == n && memcmp(m.key, path, n) == 0) {
                found = true;
                break;
            }
        }
        if (!found)
            return false;
        if (!dot) {
            *val = m.val;
            *val_len = m.val_len;
            return true;
        }
        p = m.val;
        end = m.val + m.val_len;
        path = dot + 1;
    }
}

/*
 * A hand-written walk (parse/docker_json.c's scanner), not jansson: measured on
 * the stages benchmark, jansson's tree and its allocations were a third of the
 * agent's CPU.
 */
static enum lc_stage_result json_run(struct lc_stage *st, struct lc_prec *r)
{
    const struct lc_parser_conf *c = st->conf;
    struct lc_json_member m;
    const char *s, *p, *end;
    const char *top[LC_PREC_MAX_FIELDS]; /* the first top-level member each expression names */
    const char *path[LC_PREC_MAX_FIELDS];
    size_t top_len[LC_PREC_MAX_FIELDS], seg[LC_PREC_MAX_FIELDS];
    size_t len, nk = c->keys.n < LC_PREC_MAX_FIELDS ? c->keys.n : LC_PREC_MAX_FIELDS;
    int rc;

    s = lc_prec_subject(r, c->source, &len);
    if (!s)
        return LC_STAGE_PASS;
    end = s + len;
    p = lc_json_object_open(s, end);
    if (!p)
        return LC_STAGE_FAIL;
    for (size_t i = 0; i < nk; i++) {
        const char *dot;
        path[i] = c->keys.v[i].value && *c->keys.v[i].value ? c->keys.v[i].value : c->keys.v[i].key;
        dot = strchr(path[i], '.');
        seg[i] = dot ? (size_t)(dot - path[i]) : strlen(path[i]);
        top[i] = NULL;
    }
    /*
     * One walk validates the whole object (a line that is not JSON sets no
     * field) and notes the first member each expression's first segment names.
     */
    while ((rc = lc_json_object_next(&p, end, &m)) == 1) {
        for (size_t i = 0; i < nk; i++) {
            if (!top[i] && m.key_len == seg[i] && memcmp(m.key, path[i], seg[i]) == 0) {
                top[i] = m.val;
                top_len[i] = m.val_len;
            }
        }
    }
    if (rc < 0)
        return LC_STAGE_FAIL;
    for (p = lc_json_object_open(s, end);
         c->keys.n == 0 && lc_json_object_next(&p, end, &m) == 1;) {
        /* keys with escapes are taken as written */
        set_json(st, r, m.key, m.key_len, m.val, m.val_len);
    }
    for (size_t i = 0; i < c->keys.n; i++) {
        const struct lc_kv *kv = &c->keys.v[i];
        const char *v = NULL;
        size_t vlen = 0;
        if (i >= nk) {
            if (!at_path(s, end, kv->value && *kv->value ? kv->value : kv->key, &v, &vlen))
                v = NULL;
        } else if (top[i] && path[i][seg[i]] == '.') {
            if (!at_path(top[i], top[i] + top_len[i], path[i] + seg[i] + 1, &v, &vlen))
                v = NULL;
        } else if (top[i]) {
            v = top[i];
            vlen = top_len[i];
        }
        if (v)
            set_json(st, r, kv->key, strlen(kv->key), v, vlen);
    }
    return LC_STAGE_PASS;
}

static enum lc_stage_result logfmt_run(struct lc_stage *st, struct lc_prec *r)
{
    const struct lc_parser_conf *c = st->conf;
    struct lc_logfmt_pair kv;
    size_t len, pos = 0, used = 0;
    unsigned bad = 0, pairs = 0;
    const char *s = lc_prec_subject(r, c->source, &len);
    char *scratch;

    if (!s)
        return LC_STAGE_PASS;
    if (len > LC_PREC_LINE_MAX)
        return LC_STAGE_FAIL;
    scratch = lc_prec_spare(r); /* not the line's buffer; unused until the next stage */
    /* a first pass decides: a line that is not logfmt (JSON, prose) sets no field */
    while (lc_logfmt_next(s, len, &pos, &kv, scratch, &used, &bad))
        pairs++;
    if (!pairs || bad)
        return LC_STAGE_FAIL;
    pos = used = 0;
    while (lc_logfmt_next(s, len, &pos, &kv, scratch, &used, &bad)) {
        if (c->keys.n == 0) {
            if (lc_prec_set_field(r, kv.key, kv.key_len, kv.val, kv.val_len) < 0)
                cut(st);
            continue;
        }
        for (size_t i = 0; i < c->keys.n; i++) {
            const struct lc_kv *m = &c->keys.v[i];
            const char *want = m->value && *m->value ? m->value : m->key;
            if (strlen(want) == kv.key_len && memcmp(want, kv.key, kv.key_len) == 0 &&
                lc_prec_set_field(r, m->key, strlen(m->key), kv.val, kv.val_len) < 0)
                cut(st);
        }
    }
    return LC_STAGE_PASS;
}

const struct lc_stage_plugin lc_stage_json = {
    .name = "json",
    .description = "extracts keys (or dotted paths) of a JSON object into fields",
    .options = json_options,
    .conf_size = sizeof(struct lc_parser_conf),
    .run = json_run,
};

const struct lc_stage_plugin lc_stage_logfmt = {
    .name = "logfmt",
    .description = "extracts the pairs of a logfmt line (key=value key2=\"v 2\") into fields",
    .options = logfmt_options,
    .conf_size = sizeof(struct lc_parser_conf),
    .run = logfmt_run,
};
