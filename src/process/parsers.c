/* SPDX-License-Identifier: MIT */
/* parsers.c: the `json` and `logfmt` stages: a line's (or field's) keys become fields. */
#include "parse/logfmt.h"
#include "process/stage.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Both take `expressions` (json) / `mapping` (logfmt): field name -> key ("" or
 * absent: the key of that name; json takes dotted paths `a.b.c` into nested
 * objects). With none given, every top-level key becomes a field. A json
 * string is the field's text; a number, true, false or null its JSON text; an
 * object or array its compact JSON. A line that is not JSON (or, for logfmt,
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

/* Sets field `name` from a JSON value. */
static void set_json(struct lc_stage *st, struct lc_prec *r, const char *name, size_t name_len,
                     json_t *v)
{
    char num[64];
    const char *text = num;
    size_t len;
    char *dump = NULL;

    switch (json_typeof(v)) {
    case JSON_STRING:
        text = json_string_value(v);
        len = json_string_length(v);
        break;
    case JSON_INTEGER:
        len = (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        len = (size_t)snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        break;
    case JSON_TRUE:
        text = "true";
        len = 4;
        break;
    case JSON_FALSE:
        text = "false";
        len = 5;
        break;
    case JSON_NULL:
        text = "null";
        len = 4;
        break;
    default:
        dump = json_dumps(v, JSON_COMPACT);
        if (!dump) {
            cut(st);
            return;
        }
        text = dump;
        len = strlen(dump);
        break;
    }
    if (lc_prec_set_field(r, name, name_len, text, len) < 0)
        cut(st);
    free(dump);
}

/* The value at a dotted path ("a.b.c") in obj, or NULL. */
static json_t *at_path(json_t *obj, const char *path)
{
    char key[256];

    while (obj && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (!json_is_object(obj) || n >= sizeof(key))
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        obj = json_object_get(obj, key);
        path += n + (dot ? 1 : 0);
    }
    return obj;
}

static enum lc_stage_result json_run(struct lc_stage *st, struct lc_prec *r)
{
    const struct lc_parser_conf *c = st->conf;
    const char *s;
    size_t len;
    json_t *root;

    s = lc_prec_subject(r, c->source, &len);
    if (!s)
        return LC_STAGE_PASS;
    /* cheap reject before the decoder: a JSON object starts with '{' */
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    if (!len || *s != '{')
        return LC_STAGE_FAIL;
    root = json_loadb(s, len, JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL, NULL);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return LC_STAGE_FAIL;
    }
    if (c->keys.n == 0) {
        const char *k;
        json_t *v;
        json_object_foreach(root, k, v) set_json(st, r, k, strlen(k), v);
    }
    for (size_t i = 0; i < c->keys.n; i++) {
        const struct lc_kv *kv = &c->keys.v[i];
        json_t *v = at_path(root, kv->value && *kv->value ? kv->value : kv->key);
        if (v)
            set_json(st, r, kv->key, strlen(kv->key), v);
    }
    json_decref(root);
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
