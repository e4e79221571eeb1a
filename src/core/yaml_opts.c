/* SPDX-License-Identifier: MIT */
/* yaml_opts.c: YAML nodes (libyaml) applied to option tables: values, errors with positions,
 * printing. */
#include "core/yaml_opts.h"

#include "core/redact.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void vfail(struct lc_yaml_opts *L, yaml_mark_t m, const char *fmt, va_list ap)
{
    int used;

    if (!L->err || L->errlen == 0)
        return;
    used = snprintf(L->err, L->errlen, "%s:%zu:%zu: ", L->file, m.line + 1, m.column + 1);
    if (used >= 0 && (size_t)used < L->errlen)
        vsnprintf(L->err + used, L->errlen - (size_t)used, fmt, ap);
}

int lc_yaml_fail_mark(struct lc_yaml_opts *L, yaml_mark_t m, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(L, m, fmt, ap);
    va_end(ap);
    return rc;
}

int lc_yaml_fail(struct lc_yaml_opts *L, const yaml_node_t *n, int rc, const char *fmt, ...)
{
    yaml_mark_t m = n ? n->start_mark : (yaml_mark_t){0};
    va_list ap;

    va_start(ap, fmt);
    vfail(L, m, fmt, ap);
    va_end(ap);
    return rc;
}

yaml_node_t *lc_yaml_node(struct lc_yaml_opts *L, int idx)
{
    return yaml_document_get_node(&L->doc, idx);
}

/* The document's index of a node (what mapping pairs and sequence items hold). */
int lc_yaml_index(struct lc_yaml_opts *L, const yaml_node_t *n)
{
    return (int)(n - L->doc.nodes.start) + 1;
}

const char *lc_yaml_scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* A plain empty, "~" or "null" scalar: YAML's null, which no option accepts. */
bool lc_yaml_is_null(const yaml_node_t *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (size_t k = 0; k < sizeof(nulls) / sizeof(nulls[0]); k++)
        if (strcmp(lc_yaml_scalar(n), nulls[k]) == 0)
            return true;
    return false;
}

const char *lc_yaml_kind(const yaml_node_t *n)
{
    if (lc_yaml_is_null(n))
        return "nothing";
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    default:
        return "a scalar";
    }
}

/* " in input 'system'" for messages about a value, "" at top level. */
static const char *in_whose(struct lc_yaml_opts *L, char *buf, size_t len)
{
    if (L->whose[0])
        snprintf(buf, len, " in %s", L->whose);
    else
        buf[0] = '\0';
    return buf;
}

/* Fails with "<what> (key 'path' in input 'x')". */
int lc_yaml_fail_key(struct lc_yaml_opts *L, const yaml_node_t *n, int rc, const char *path,
                     const char *what)
{
    char w[sizeof(L->whose) + 8];

    /* rc, not lc_yaml_fail()'s result: clang-analyzer does not follow variadic calls */
    lc_yaml_fail(L, n, rc, "%s (key '%s'%s)", what, path, in_whose(L, w, sizeof(w)));
    return rc;
}

/* A growable string capped at LC_YAML_MAX_SCALAR. */
struct lc_sbuf {
    char *p;
    size_t n;
    size_t cap;
};

static int sbuf_put(struct lc_sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > LC_YAML_MAX_SCALAR)
        return -E2BIG;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *p;
        while (cap < b->n + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

static bool is_var_char(char c, bool first)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (!first && c >= '0' && c <= '9');
}

/*
 * The value of scalar n with ${NAME} and ${NAME:-default} replaced from the
 * environment ("$${" is a literal "${"). *out is owned by the caller.
 */
static int subst(struct lc_yaml_opts *L, const yaml_node_t *n, const char *path, char **out)
{
    const char *v = lc_yaml_scalar(n);
    size_t len = n->data.scalar.length;
    struct lc_sbuf b = {0};
    char msg[LC_YAML_MAX_NAME + 96];
    int rc = 0;

    *out = NULL;
    if (memchr(v, '\0', len))
        return lc_yaml_fail_key(L, n, -EINVAL, path, "value contains a NUL character");
    for (size_t i = 0; i < len && rc == 0;) {
        const char *close;
        char name[LC_YAML_MAX_NAME + 1];
        const char *env, *def = NULL;
        size_t nlen = 0, deflen = 0;

        if (v[i] == '$' && i + 2 < len && v[i + 1] == '$' && v[i + 2] == '{') {
            rc = sbuf_put(&b, "${", 2);
            i += 3;
            continue;
        }
        if (v[i] != '$' || i + 1 >= len || v[i + 1] != '{') {
            rc = sbuf_put(&b, v + i, 1);
            i++;
            continue;
        }
        close = memchr(v + i + 2, '}', len - i - 2);
        if (!close) {
            rc = lc_yaml_fail_key(L, n, -EINVAL, path, "unterminated '${' in value");
            break;
        }
        while (v + i + 2 + nlen < close && is_var_char(v[i + 2 + nlen], nlen == 0))
            nlen++;
        if (v + i + 2 + nlen < close) {
            const char *rest = v + i + 2 + nlen;
            if (close - rest >= 2 && rest[0] == ':' && rest[1] == '-') {
                def = rest + 2;
                deflen = (size_t)(close - def);
            } else {
                nlen = 0; /* not NAME or NAME:-default */
            }
        }
        if (nlen == 0 || nlen > LC_YAML_MAX_NAME) {
            snprintf(msg, sizeof(msg), "invalid variable reference '%.*s'",
                     (int)(close - (v + i) + 1 > 64 ? 64 : close - (v + i) + 1), v + i);
            rc = lc_yaml_fail_key(L, n, -EINVAL, path, msg);
            break;
        }
        memcpy(name, v + i + 2, nlen);
        name[nlen] = '\0';
        env = getenv(name);
        if (def && (!env || !*env)) {
            rc = sbuf_put(&b, def, deflen);
        } else if (env) {
            rc = sbuf_put(&b, env, strlen(env));
        } else {
            snprintf(msg, sizeof(msg), "environment variable '%s' is not set", name);
            rc = lc_yaml_fail_key(L, n, -EINVAL, path, msg);
            break;
        }
        i = (size_t)(close - v) + 1;
    }
    if (rc == -E2BIG)
        rc = lc_yaml_fail_key(L, n, -E2BIG, path, "value too long after substitution");
    else if (rc == -ENOMEM)
        rc = lc_yaml_fail_key(L, n, -ENOMEM, path, "out of memory");
    if (rc == 0) {
        L->expanded += b.n + 32;
        if (L->expanded > LC_YAML_MAX_EXPANDED)
            rc = lc_yaml_fail_key(L, n, -E2BIG, path,
                                  "the configuration expands to too many values (aliases?)");
    }
    if (rc == 0 && !b.p)
        b.p = strdup("");
    if (rc == 0 && !b.p)
        rc = lc_yaml_fail_key(L, n, -ENOMEM, path, "out of memory");
    if (rc < 0) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    return 0;
}

/* A non-null scalar, substituted. */
int lc_yaml_scalar_value(struct lc_yaml_opts *L, const yaml_node_t *n, const char *path,
                         const char *expect, char **out)
{
    char msg[96];

    if (n->type != YAML_SCALAR_NODE || lc_yaml_is_null(n)) {
        snprintf(msg, sizeof(msg), "expected %s, got %s", expect, lc_yaml_kind(n));
        return lc_yaml_fail_key(L, n, -EINVAL, path, msg);
    }
    return subst(L, n, path, out);
}

static const char *type_expect(enum lc_opt_type t)
{
    switch (t) {
    case LC_OPT_INT:
        return "an integer";
    case LC_OPT_BOOL:
        return "a boolean";
    case LC_OPT_SIZE:
        return "a size";
    case LC_OPT_DURATION:
        return "a duration";
    case LC_OPT_ENUM:
        return "one of its values";
    case LC_OPT_STRLIST:
        return "a sequence of strings";
    case LC_OPT_MAP:
    case LC_OPT_SECTION:
        return "a mapping";
    case LC_OPT_SECLIST:
        return "a sequence of mappings";
    default:
        return "a string";
    }
}

/* The message for lc_option_set's answer to `value`. */
static void set_error(const struct lc_option *o, const char *value, int rc, char *msg, size_t len)
{
    char lo[32], hi[32];

    if (rc == -ERANGE && (o->min != 0 || o->max != 0)) {
        lc_option_format_bound(o, o->min, lo, sizeof(lo));
        lc_option_format_bound(o, o->max, hi, sizeof(hi));
        const char *zero = (o->flags & LC_OPT_ZERO) ? "0 or " : "";
        if (o->max == 0)
            snprintf(msg, len, "value '%.64s' out of range: must be %sat least %s", value, zero,
                     lo);
        else
            snprintf(msg, len, "value '%.64s' out of range: must be %sbetween %s and %s", value,
                     zero, lo, hi);
        return;
    }
    if (rc == -ERANGE) {
        snprintf(msg, len, "value '%.64s' is too large", value);
        return;
    }
    switch (o->type) {
    case LC_OPT_INT:
        snprintf(msg, len, "invalid integer '%.64s'", value);
        break;
    case LC_OPT_BOOL:
        snprintf(msg, len, "invalid boolean '%.64s': expected true/false, yes/no or on/off", value);
        break;
    case LC_OPT_SIZE:
        snprintf(msg, len,
                 "invalid size '%.64s': expected a number and a unit B, KiB, MiB, GiB, TiB, KB, "
                 "MB, GB or TB",
                 value);
        break;
    case LC_OPT_DURATION:
        snprintf(msg, len,
                 "invalid duration '%.64s': expected a number and a unit ms, s, m, h or d "
                 "(e.g. 250ms, 1h30m)",
                 value);
        break;
    case LC_OPT_ENUM: {
        size_t used = (size_t)snprintf(msg, len, "invalid value '%.64s': expected one of ", value);
        for (int k = 0; o->choices && o->choices[k] && used < len; k++)
            used += (size_t)snprintf(msg + used, len - used, "%s%s", k ? ", " : "", o->choices[k]);
        break;
    }
    default:
        snprintf(msg, len, "%s", rc == -ENOMEM ? "out of memory" : "invalid value");
        break;
    }
}

static bool is_label_name(const char *s)
{
    if (!is_var_char(*s, true))
        return false;
    for (s++; *s; s++)
        if (!is_var_char(*s, false))
            return false;
    return true;
}

/* A sequence of scalars, or one scalar, into *out (replacing what it held). */
int lc_yaml_strlist(struct lc_yaml_opts *L, yaml_node_t *val, const char *path,
                    struct lc_strlist *out)
{
    struct lc_strlist l = {0};
    char msg[96];
    size_t n;
    int rc = 0;

    if (val->type == YAML_SCALAR_NODE && !lc_yaml_is_null(val)) {
        l.v = calloc(1, sizeof(*l.v));
        if (!l.v)
            return lc_yaml_fail_key(L, val, -ENOMEM, path, "out of memory");
        rc = subst(L, val, path, &l.v[0]);
        if (rc < 0)
            goto out_free_list;
        l.n = 1;
        goto out_swap;
    }
    if (val->type != YAML_SEQUENCE_NODE) {
        snprintf(msg, sizeof(msg), "expected a string or a sequence of strings, got %s",
                 lc_yaml_kind(val));
        return lc_yaml_fail_key(L, val, -EINVAL, path, msg);
    }
    n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
    if (n > LC_YAML_MAX_LIST)
        return lc_yaml_fail_key(L, val, -E2BIG, path, "too many items");
    if (n > 0) {
        l.v = calloc(n, sizeof(*l.v));
        if (!l.v)
            return lc_yaml_fail_key(L, val, -ENOMEM, path, "out of memory");
    }
    for (size_t k = 0; k < n; k++) {
        yaml_node_t *item = lc_yaml_node(L, val->data.sequence.items.start[k]);
        rc = lc_yaml_scalar_value(L, item, path, "a string", &l.v[k]);
        if (rc < 0)
            goto out_free_list;
        l.n++;
    }
out_swap:
    lc_strlist_free(out);
    *out = l;
    return 0;
out_free_list:
    lc_strlist_free(&l);
    return rc;
}

/* A header written as a mapping: {value: "...", secret: true}. */
static const struct lc_option header_entry_options[] = {
    {LC_OPT_STR, "value", NULL, offsetof(struct lc_kv, value), .flags = LC_OPT_REQUIRED},
    {LC_OPT_BOOL, "secret", "false", offsetof(struct lc_kv, secret)},
    LC_OPT_END,
};

/*
 * A mapping of scalars to scalars into *out (replacing it); keys are taken as
 * written. flags: LC_OPT_HEADERS, a value may also be a header_entry_options
 * mapping; LC_OPT_NULL_EMPTY, a null value is the empty string.
 */
int lc_yaml_map(struct lc_yaml_opts *L, yaml_node_t *val, const char *path, bool labels,
                unsigned flags, struct lc_kvlist *out)
{
    struct lc_kvlist l = {0};
    char msg[LC_YAML_MAX_NAME + 96];
    size_t n;
    int rc = 0;

    if (val->type != YAML_MAPPING_NODE) {
        snprintf(msg, sizeof(msg), "expected a mapping, got %s", lc_yaml_kind(val));
        return lc_yaml_fail_key(L, val, -EINVAL, path, msg);
    }
    n = (size_t)(val->data.mapping.pairs.top - val->data.mapping.pairs.start);
    if (n > LC_YAML_MAX_ENTRIES)
        return lc_yaml_fail_key(L, val, -E2BIG, path, "too many entries");
    if (n > 0) {
        l.v = calloc(n, sizeof(*l.v));
        if (!l.v)
            return lc_yaml_fail_key(L, val, -ENOMEM, path, "out of memory");
    }
    for (size_t k = 0; k < n; k++) {
        yaml_node_pair_t *p = &val->data.mapping.pairs.start[k];
        yaml_node_t *kn = lc_yaml_node(L, p->key), *vn = lc_yaml_node(L, p->value);

        if (kn->type != YAML_SCALAR_NODE || lc_yaml_is_null(kn) ||
            memchr(lc_yaml_scalar(kn), '\0', kn->data.scalar.length)) {
            rc = lc_yaml_fail_key(L, kn, -EINVAL, path, "keys must be non-empty strings");
            goto out_free_map;
        }
        for (size_t j = 0; j < l.n; j++) {
            if (strcmp(l.v[j].key, lc_yaml_scalar(kn)) == 0) {
                snprintf(msg, sizeof(msg), "duplicate key '%.64s'", lc_yaml_scalar(kn));
                rc = lc_yaml_fail_key(L, kn, -EINVAL, path, msg);
                goto out_free_map;
            }
        }
        if (labels && !is_label_name(lc_yaml_scalar(kn))) {
            snprintf(msg, sizeof(msg), "invalid label name '%.64s': use [a-zA-Z_][a-zA-Z0-9_]*",
                     lc_yaml_scalar(kn));
            rc = lc_yaml_fail_key(L, kn, -EINVAL, path, msg);
            goto out_free_map;
        }
        l.v[k].key = strdup(lc_yaml_scalar(kn));
        if (!l.v[k].key) {
            rc = lc_yaml_fail_key(L, kn, -ENOMEM, path, "out of memory");
            goto out_free_map;
        }
        l.n++;
        if ((flags & LC_OPT_HEADERS) && vn->type == YAML_MAPPING_NODE) {
            char sub[LC_YAML_MAX_NAME + 64];
            snprintf(sub, sizeof(sub), "%s.%.64s", path, lc_yaml_scalar(kn));
            rc = lc_yaml_apply(L, header_entry_options, &l.v[k], vn, sub, NULL);
        } else if ((flags & LC_OPT_NULL_EMPTY) && lc_yaml_is_null(vn)) {
            l.v[k].value = strdup("");
            rc = l.v[k].value ? 0 : lc_yaml_fail_key(L, vn, -ENOMEM, path, "out of memory");
        } else {
            rc = lc_yaml_scalar_value(L, vn, path, "a string", &l.v[k].value);
        }
        if (rc < 0)
            goto out_free_map;
    }
    lc_kvlist_free(out);
    *out = l;
    return 0;
out_free_map:
    lc_kvlist_free(&l);
    return rc;
}

/* Runs o->check on each item just parsed from val; an error points at the item. */
static int check_items(struct lc_yaml_opts *L, const struct lc_option *o, void *conf,
                       yaml_node_t *val, const char *path)
{
    char msg[256];

    if (o->type == LC_OPT_MAP) {
        const struct lc_kvlist *l = (const struct lc_kvlist *)((char *)conf + o->offset);
        for (size_t k = 0; k < l->n; k++) {
            const char *why = o->check(l->v[k].key, l->v[k].value);
            if (why) {
                yaml_node_pair_t *p = &val->data.mapping.pairs.start[k];
                snprintf(msg, sizeof(msg), "'%.64s: %.64s': %s", l->v[k].key,
                         l->v[k].value ? l->v[k].value : "", why);
                return lc_yaml_fail_key(L, lc_yaml_node(L, p->key), -EINVAL, path, msg);
            }
        }
        return 0;
    }
    const struct lc_strlist *l = (const struct lc_strlist *)((char *)conf + o->offset);
    for (size_t k = 0; k < l->n; k++) {
        const char *why = o->check(NULL, l->v[k]);
        if (why) {
            yaml_node_t *item = val->type == YAML_SEQUENCE_NODE
                                    ? lc_yaml_node(L, val->data.sequence.items.start[k])
                                    : val;
            snprintf(msg, sizeof(msg), "'%.64s': %s", l->v[k], why);
            return lc_yaml_fail_key(L, item, -EINVAL, path, msg);
        }
    }
    return 0;
}

/* A sequence of mappings, each an item of o->size bytes filled from o->sub, then prepared. */
static int apply_seclist(struct lc_yaml_opts *L, const struct lc_option *o, struct lc_seclist *l,
                         yaml_node_t *val, const char *path)
{
    char msg[320], ipath[300], err[256];
    size_t n;

    if (val->type != YAML_SEQUENCE_NODE) {
        snprintf(msg, sizeof(msg), "expected a sequence of mappings, got %s", lc_yaml_kind(val));
        return lc_yaml_fail_key(L, val, -EINVAL, path, msg);
    }
    n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
    if (o->max > 0 && n > (size_t)o->max) {
        snprintf(msg, sizeof(msg), "at most %" PRId64 " items, got %zu", o->max, n);
        return lc_yaml_fail_key(L, val, -ERANGE, path, msg);
    }
    lc_seclist_free(o, l); /* a repeated key replaces */
    l->v = n ? calloc(n, o->size) : NULL;
    if (n && !l->v)
        return lc_yaml_fail_key(L, val, -ENOMEM, path, "out of memory");
    for (size_t k = 0; k < n; k++) {
        yaml_node_t *item = lc_yaml_node(L, val->data.sequence.items.start[k]);
        void *at = (char *)l->v + k * o->size;
        int rc = lc_options_defaults(o->sub, at);

        l->n = k + 1; /* freed with the rest on error */
        snprintf(ipath, sizeof(ipath), "%s[%zu]", path, k);
        if (rc < 0)
            return lc_yaml_fail_key(L, item, rc, ipath, "out of memory");
        if (item->type != YAML_MAPPING_NODE) {
            snprintf(msg, sizeof(msg), "expected a mapping, got %s", lc_yaml_kind(item));
            return lc_yaml_fail_key(L, item, -EINVAL, ipath, msg);
        }
        if ((rc = lc_yaml_apply(L, o->sub, at, item, ipath, NULL)) < 0)
            return rc;
        if (o->prepare && (rc = o->prepare(at, err, sizeof(err))) < 0)
            return lc_yaml_fail_key(L, item, rc, ipath, err);
    }
    return 0;
}

int lc_yaml_apply_option(struct lc_yaml_opts *L, const struct lc_option *o, void *conf,
                         yaml_node_t *val, const char *path)
{
    char *text = NULL;
    char msg[256];
    int rc;

    switch (o->type) {
    case LC_OPT_STRLIST:
        rc = lc_yaml_strlist(L, val, path, (struct lc_strlist *)((char *)conf + o->offset));
        return rc < 0 || !o->check ? rc : check_items(L, o, conf, val, path);
    case LC_OPT_MAP:
        rc = lc_yaml_map(L, val, path, false, o->flags,
                         (struct lc_kvlist *)((char *)conf + o->offset));
        return rc < 0 || !o->check ? rc : check_items(L, o, conf, val, path);
    case LC_OPT_SECTION:
        if (val->type != YAML_MAPPING_NODE) {
            snprintf(msg, sizeof(msg), "expected a mapping, got %s", lc_yaml_kind(val));
            return lc_yaml_fail_key(L, val, -EINVAL, path, msg);
        }
        return lc_yaml_apply(L, o->sub, (char *)conf + o->offset, val, path, NULL);
    case LC_OPT_SECLIST:
        return apply_seclist(L, o, (struct lc_seclist *)((char *)conf + o->offset), val, path);
    default:
        break;
    }
    rc = lc_yaml_scalar_value(L, val, path, type_expect(o->type), &text);
    if (rc < 0)
        return rc;
    rc = lc_option_set(o, conf, text);
    if (rc < 0) {
        set_error(o, text, rc, msg, sizeof(msg));
        rc = lc_yaml_fail_key(L, val, rc, path, msg);
    } else if (o->check && o->check(NULL, text)) {
        snprintf(msg, sizeof(msg), "invalid value '%.64s': %s", text, o->check(NULL, text));
        rc = lc_yaml_fail_key(L, val, -EINVAL, path, msg);
    }
    free(text);
    return rc;
}

static bool in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

/* A mapping key must be a plain string; non-scalar keys are errors. */
int lc_yaml_check_key(struct lc_yaml_opts *L, yaml_node_t *kn)
{
    if (kn->type != YAML_SCALAR_NODE || lc_yaml_is_null(kn))
        return lc_yaml_fail(L, kn, -EINVAL, "expected a key, got %s", lc_yaml_kind(kn));
    return 0;
}

/*
 * Applies every pair of `map` to `conf` through `table`, except keys in `skip`
 * (which the caller handles). Unknown and repeated keys are errors; then every
 * LC_OPT_REQUIRED row must have been seen.
 */
int lc_yaml_apply(struct lc_yaml_opts *L, const struct lc_option *table, void *conf,
                  yaml_node_t *map, const char *prefix, const char *const *skip)
{
    size_t nrows = 0;
    bool *seen;
    int rc = 0;

    for (const struct lc_option *o = table; o && o->key; o++)
        nrows++;
    seen = calloc(nrows + 1, sizeof(*seen));
    if (!seen)
        return lc_yaml_fail(L, map, -ENOMEM, "out of memory");
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = lc_yaml_node(L, p->key), *vn = lc_yaml_node(L, p->value);
        const char *key;
        char path[256];
        size_t row = 0;

        rc = lc_yaml_check_key(L, kn);
        if (rc < 0)
            goto out_free_seen;
        key = lc_yaml_scalar(kn);
        if (in_list(skip, key))
            continue;
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", key);
        while (row < nrows && strcmp(table[row].key, key) != 0)
            row++;
        if (row == nrows) {
            rc = lc_yaml_fail(L, kn, -EINVAL, "unknown key '%.64s'%s%s", path,
                              L->owner[0] ? " in " : "", L->owner);
            goto out_free_seen;
        }
        if (seen[row]) {
            rc = lc_yaml_fail(L, kn, -EINVAL, "duplicate key '%s'%s%s", path,
                              L->owner[0] ? " in " : "", L->owner);
            goto out_free_seen;
        }
        seen[row] = true;
        rc = lc_yaml_apply_option(L, &table[row], conf, vn, path);
        if (rc < 0)
            goto out_free_seen;
    }
    for (size_t row = 0; row < nrows; row++) {
        if (!seen[row] && (table[row].flags & LC_OPT_REQUIRED)) {
            rc = lc_yaml_fail(L, map, -EINVAL, "missing required key '%s%s%s'%s%s", prefix,
                              *prefix ? "." : "", table[row].key, L->owner[0] ? " in " : "",
                              L->owner);
            goto out_free_seen;
        }
    }
out_free_seen:
    free(seen);
    return rc;
}

/* The value nodes of `keys` in `map` (0 when absent); a repeated key is an error. */
int lc_yaml_find_keys(struct lc_yaml_opts *L, yaml_node_t *map, const char *const *keys,
                      yaml_node_t **vals)
{
    for (size_t k = 0; keys[k]; k++)
        vals[k] = NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = lc_yaml_node(L, p->key);
        int rc = lc_yaml_check_key(L, kn);

        if (rc < 0)
            return rc;
        for (size_t k = 0; keys[k]; k++) {
            if (strcmp(lc_yaml_scalar(kn), keys[k]) != 0)
                continue;
            if (vals[k])
                return lc_yaml_fail(L, kn, -EINVAL, "duplicate key '%s'%s%s", keys[k],
                                    L->owner[0] ? " in " : "", L->owner);
            vals[k] = lc_yaml_node(L, p->value);
        }
    }
    return 0;
}

/* Where the reader (not the scanner) failed: libyaml gives only a byte offset. */
static yaml_mark_t mark_of_offset(const struct lc_yaml_opts *L, size_t off)
{
    yaml_mark_t m = {0};

    for (size_t k = 0; k < off && k < L->len; k++) {
        if (L->text[k] == '\n') {
            m.line++;
            m.column = 0;
        } else {
            m.column++;
        }
    }
    return m;
}

static int syntax_error(struct lc_yaml_opts *L, yaml_parser_t *parser)
{
    yaml_mark_t m = parser->problem_mark;

    /* libyaml's loader fails some allocations without setting an error */
    if (parser->error == YAML_MEMORY_ERROR || parser->error == YAML_NO_ERROR)
        return lc_yaml_fail_mark(L, m, -ENOMEM, "out of memory");
    if (parser->error == YAML_READER_ERROR)
        m = mark_of_offset(L, parser->problem_offset);
    return lc_yaml_fail_mark(L, m, -EINVAL, "YAML syntax error: %s%s%s",
                             parser->problem ? parser->problem : "unknown",
                             parser->context ? " " : "", parser->context ? parser->context : "");
}

/* Parses L->text into L->doc: exactly one document. */
int lc_yaml_parse(struct lc_yaml_opts *L)
{
    yaml_parser_t parser;
    yaml_document_t extra;
    int rc = 0;

    if (!yaml_parser_initialize(&parser))
        return lc_yaml_fail_mark(L, (yaml_mark_t){0}, -ENOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)L->text, L->len);
    if (!yaml_parser_load(&parser, &L->doc)) {
        rc = syntax_error(L, &parser);
        goto out_delete_parser;
    }
    L->have_doc = true;
    if (!yaml_parser_load(&parser, &extra)) {
        rc = syntax_error(L, &parser);
        goto out_delete_parser;
    }
    if (yaml_document_get_root_node(&extra)) {
        rc = lc_yaml_fail_mark(L, yaml_document_get_root_node(&extra)->start_mark, -EINVAL,
                               "only one YAML document is allowed");
    }
    yaml_document_delete(&extra);
out_delete_parser:
    yaml_parser_delete(&parser);
    return rc;
}

/*
 * Writes s as a YAML double-quoted scalar that loads back to s: escapes, and
 * "${" written as "$${" so that reloading does not substitute it.
 */
void lc_yaml_print_quoted(const char *s, FILE *f)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else if (c == '$' && s[1] == '{')
            fputs("$$", f);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* print_quoted after the redaction rule (core/redact.h): URL userinfo, tokens in text. */
static void print_redacted(const char *s, FILE *f)
{
    size_t len = strlen(s);
    size_t cap = len * 3 + 1; /* a mask of 3 bytes replaces at least 1 */
    char *r = malloc(cap);

    if (!r) {
        lc_yaml_print_quoted(LC_REDACTED, f);
        return;
    }
    lc_redact_text(s, len, r, cap);
    lc_yaml_print_quoted(r, f);
    free(r);
}

void lc_yaml_print_strlist(const struct lc_strlist *l, FILE *f)
{
    fputc('[', f);
    for (size_t k = 0; k < l->n; k++) {
        if (k)
            fputs(", ", f);
        print_redacted(l->v[k], f);
    }
    fputc(']', f);
}

/* headers: the map's keys are header names (LC_OPT_HEADERS); credentials are masked whole. */
void lc_yaml_print_map(const struct lc_kvlist *l, bool headers, FILE *f)
{
    fputc('{', f);
    for (size_t k = 0; k < l->n; k++) {
        const struct lc_kv *kv = &l->v[k];
        if (k)
            fputs(", ", f);
        lc_yaml_print_quoted(kv->key, f);
        fputs(": ", f);
        if (kv->secret || (headers && lc_redact_header_is_secret(kv->key)))
            lc_yaml_print_quoted(LC_REDACTED, f);
        else
            print_redacted(kv->value, f);
    }
    fputc('}', f);
}

/* One "key: value" line per option of `table`, sections as nested mappings. */
void lc_yaml_print_values(const struct lc_option *table, const void *conf, int indent, FILE *f)
{
    for (const struct lc_option *o = table; o && o->key; o++) {
        const char *at = (const char *)conf + o->offset;
        bool secret = (o->flags & LC_OPT_SECRET) != 0;
        char buf[64];

        if (o->type == LC_OPT_STR && !*(char *const *)at)
            continue; /* unset, and no default */
        if (o->type == LC_OPT_SECLIST && ((const struct lc_seclist *)at)->n == 0)
            continue;
        fprintf(f, "%*s%s:", indent, "", o->key);
        if (o->type == LC_OPT_SECTION) {
            fputc('\n', f);
            lc_yaml_print_values(o->sub, at, indent + 2, f);
            continue;
        }
        if (o->type == LC_OPT_SECLIST) {
            const struct lc_seclist *l = (const struct lc_seclist *)at;
            fputc('\n', f);
            for (size_t k = 0; k < l->n; k++) {
                fprintf(f, "%*s-\n", indent + 2, "");
                lc_yaml_print_values(o->sub, (const char *)l->v + k * o->size, indent + 4, f);
            }
            continue;
        }
        fputc(' ', f);
        if (secret) {
            lc_yaml_print_quoted(LC_REDACTED, f);
            fputc('\n', f);
            continue;
        }
        switch (o->type) {
        case LC_OPT_STR:
            if (o->flags & LC_OPT_VERBATIM)
                lc_yaml_print_quoted(*(char *const *)at, f);
            else
                print_redacted(*(char *const *)at, f);
            break;
        case LC_OPT_INT:
            fprintf(f, "%" PRId64, *(const int64_t *)at);
            break;
        case LC_OPT_BOOL:
            fputs(*(const bool *)at ? "true" : "false", f);
            break;
        case LC_OPT_SIZE:
            lc_format_size(*(const int64_t *)at, buf, sizeof(buf));
            fputs(buf, f);
            break;
        case LC_OPT_DURATION:
            lc_format_duration_ms(*(const int64_t *)at, buf, sizeof(buf));
            fputs(buf, f);
            break;
        case LC_OPT_ENUM: {
            int idx = *(const int *)at;
            fputs(o->choices && idx >= 0 ? o->choices[idx] : "?", f);
            break;
        }
        case LC_OPT_STRLIST:
            lc_yaml_print_strlist((const struct lc_strlist *)at, f);
            break;
        case LC_OPT_MAP:
            lc_yaml_print_map((const struct lc_kvlist *)at, (o->flags & LC_OPT_HEADERS) != 0, f);
            break;
        default:
            break;
        }
        fputc('\n', f);
    }
}
