/* SPDX-License-Identifier: MIT */
/* relabel.c: Prometheus/Promtail relabel_configs on discovery labels (once per source). */
#include "core/relabel.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RCFG(f) offsetof(struct lc_relabel_rule, f)

static const char *const action_choices[] = {"replace",   "keep",      "drop", "labelmap",
                                             "labeldrop", "labelkeep", NULL};

const struct lc_option lc_relabel_options[] = {
    {LC_OPT_ENUM, "action", "replace", RCFG(action), .choices = action_choices,
     .help = "replace, keep, drop, labelmap, labeldrop or labelkeep (Prometheus semantics)."},
    {LC_OPT_STRLIST, "source_labels", NULL, RCFG(source_labels),
     .help = "Labels whose values, joined by separator, the regex matches."},
    {LC_OPT_STR, "separator", ";", RCFG(separator), .flags = LC_OPT_VERBATIM,
     .help = "Joins the source_labels' values."},
    {LC_OPT_STR, "regex", "(.*)", RCFG(regex), .flags = LC_OPT_VERBATIM,
     .help = "PCRE2, anchored at both ends."},
    {LC_OPT_STR, "target_label", NULL, RCFG(target_label), .help = "The label replace sets."},
    {LC_OPT_STR, "replacement", "$1", RCFG(replacement), .flags = LC_OPT_VERBATIM,
     .help = "With $1, $name, ${1}, ${name} from the regex's groups (${..} is written $${..}: "
             "${..} alone is the environment)."},
    LC_OPT_END,
};

int lc_relabel_prepare(struct lc_relabel_rule *r, char *err, size_t errlen)
{
    const char *re = r->regex ? r->regex : "(.*)";
    size_t len = strlen(re) + 16;
    char *pat;
    int rc;

    if (r->action == LC_RELABEL_REPLACE && (!r->target_label || !*r->target_label)) {
        snprintf(err, errlen, "relabel action replace needs a target_label");
        return -EINVAL;
    }
    if ((r->action == LC_RELABEL_REPLACE || r->action == LC_RELABEL_KEEP ||
         r->action == LC_RELABEL_DROP) &&
        r->source_labels.n == 0) {
        snprintf(err, errlen, "relabel action %s needs source_labels", action_choices[r->action]);
        return -EINVAL;
    }
    pat = malloc(len);
    if (!pat) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    snprintf(pat, len, "^(?:%s)\\z", re);
    rc = lc_rx_compile(&r->rx, pat, err, errlen);
    free(pat);
    return rc;
}

void lc_relabel_rule_free(struct lc_relabel_rule *r)
{
    lc_rx_free(&r->rx);
    lc_options_free(lc_relabel_options, r);
}

/* The set ------------------------------------------------------------------ */

static struct lc_kv *find(struct lc_relabel_set *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].key, key) == 0)
            return &s->v[i];
    return NULL;
}

int lc_relabel_set_put(struct lc_relabel_set *s, const char *key, const char *value)
{
    struct lc_kv *kv = find(s, key);
    char *v = strdup(value);

    if (!v)
        return -ENOMEM;
    if (kv) {
        free(kv->value);
        kv->value = v;
        return 0;
    }
    if (s->n >= LC_RELABEL_MAX_LABELS) {
        free(v);
        return -E2BIG;
    }
    s->v[s->n].key = strdup(key);
    if (!s->v[s->n].key) {
        free(v);
        return -ENOMEM;
    }
    s->v[s->n].value = v;
    s->v[s->n++].secret = false;
    return 0;
}

const char *lc_relabel_set_get(const struct lc_relabel_set *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].key, key) == 0)
            return s->v[i].value;
    return NULL;
}

static void del_at(struct lc_relabel_set *s, size_t i)
{
    free(s->v[i].key);
    free(s->v[i].value);
    s->v[i] = s->v[--s->n];
}

void lc_relabel_set_del(struct lc_relabel_set *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].key, key) == 0) {
            del_at(s, i);
            return;
        }
}

void lc_relabel_set_free(struct lc_relabel_set *s)
{
    while (s->n)
        del_at(s, s->n - 1);
}

/* Rules -------------------------------------------------------------------- */

#define VAL_MAX 4096 /* a joined value or an expansion; longer ones are cut */

static void append(char *out, size_t *o, const char *s, size_t len)
{
    if (*o + len >= VAL_MAX)
        len = VAL_MAX - 1 - *o;
    memcpy(out + *o, s, len);
    *o += len;
    out[*o] = '\0';
}

/* The value of group `name` (a number or a group name) of the last match of rx in subj. */
static void group(const struct lc_rx *rx, const char *subj, const char *name, size_t nlen,
                  char *out, size_t *o)
{
    char nm[64];
    long idx = -1;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(rx->md);
    uint32_t count = pcre2_get_ovector_count(rx->md);
    bool digits = nlen > 0;

    if (nlen == 0 || nlen >= sizeof(nm))
        return;
    memcpy(nm, name, nlen);
    nm[nlen] = '\0';
    for (size_t i = 0; i < nlen; i++)
        digits = digits && nm[i] >= '0' && nm[i] <= '9';
    if (digits)
        idx = strtol(nm, NULL, 10);
    else
        idx = pcre2_substring_number_from_name(rx->code, (PCRE2_SPTR)nm);
    if (idx < 0 || (uint32_t)idx >= count || ov[2 * idx] == PCRE2_UNSET)
        return; /* Go's Expand: an unknown group is empty */
    append(out, o, subj + ov[2 * idx], ov[2 * idx + 1] - ov[2 * idx]);
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Go regexp.Expand: $1, ${1}, $name, ${name}, $$; a lone '$' is kept as is. */
static void expand(const struct lc_rx *rx, const char *subj, const char *tmpl, char *out)
{
    size_t o = 0;

    out[0] = '\0';
    for (const char *p = tmpl; *p;) {
        if (*p != '$') {
            append(out, &o, p++, 1);
            continue;
        }
        if (p[1] == '$') {
            append(out, &o, "$", 1);
            p += 2;
        } else if (p[1] == '{') {
            const char *end = strchr(p + 2, '}');
            if (!end) {
                append(out, &o, p++, 1);
                continue;
            }
            group(rx, subj, p + 2, (size_t)(end - p - 2), out, &o);
            p = end + 1;
        } else {
            size_t k = 1;
            while (name_char(p[k]))
                k++;
            if (k == 1) {
                append(out, &o, p++, 1);
                continue;
            }
            group(rx, subj, p + 1, k - 1, out, &o);
            p += k;
        }
    }
}

static bool valid_name(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!name_char(*s))
            return false;
    return true;
}

static int do_replace(struct lc_relabel_rule *r, struct lc_relabel_set *s, const char *val)
{
    char target[VAL_MAX], res[VAL_MAX];

    if (!lc_rx_match(&r->rx, val, strlen(val)))
        return 0;
    expand(&r->rx, val, r->target_label, target);
    expand(&r->rx, val, r->replacement ? r->replacement : "$1", res);
    if (!valid_name(target))
        return 0; /* as Prometheus: an invalid target label name skips the rule */
    if (!*res) {
        lc_relabel_set_del(s, target);
        return 0;
    }
    return lc_relabel_set_put(s, target, res);
}

static int do_labelmap(struct lc_relabel_rule *r, struct lc_relabel_set *s)
{
    size_t n = s->n; /* the labels it adds are not mapped again */
    char name[VAL_MAX];

    for (size_t i = 0; i < n; i++) {
        const char *k = s->v[i].key;
        if (!lc_rx_match(&r->rx, k, strlen(k)))
            continue;
        expand(&r->rx, k, r->replacement ? r->replacement : "$1", name);
        if (valid_name(name)) {
            char *v = strdup(s->v[i].value);
            int rc = v ? lc_relabel_set_put(s, name, v) : -ENOMEM;
            free(v);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int lc_relabel_apply(struct lc_relabel_rule *rules, size_t n, struct lc_relabel_set *s)
{
    char val[VAL_MAX];
    int rc = 0;

    for (size_t k = 0; k < n && rc >= 0; k++) {
        struct lc_relabel_rule *r = &rules[k];
        size_t o = 0;

        val[0] = '\0';
        for (size_t i = 0; i < r->source_labels.n; i++) {
            const char *v = lc_relabel_set_get(s, r->source_labels.v[i]);
            const char *sep = r->separator ? r->separator : ";";
            if (i)
                append(val, &o, sep, strlen(sep));
            if (v)
                append(val, &o, v, strlen(v));
        }
        switch (r->action) {
        case LC_RELABEL_KEEP:
            if (!lc_rx_match(&r->rx, val, o))
                return 0;
            break;
        case LC_RELABEL_DROP:
            if (lc_rx_match(&r->rx, val, o))
                return 0;
            break;
        case LC_RELABEL_LABELMAP:
            rc = do_labelmap(r, s);
            break;
        case LC_RELABEL_LABELDROP:
        case LC_RELABEL_LABELKEEP:
            for (size_t i = s->n; i-- > 0;) {
                bool m = lc_rx_match(&r->rx, s->v[i].key, strlen(s->v[i].key));
                if (m == (r->action == LC_RELABEL_LABELDROP))
                    del_at(s, i);
            }
            break;
        default:
            rc = do_replace(r, s, val);
            break;
        }
    }
    if (rc < 0)
        return rc;
    for (size_t i = s->n; i-- > 0;)
        if (strncmp(s->v[i].key, "__", 2) == 0)
            del_at(s, i);
    return 1;
}

int lc_relabel_item_prepare(void *item, char *err, size_t errlen)
{
    return lc_relabel_prepare(item, err, errlen);
}

void lc_relabel_item_free(void *item)
{
    lc_relabel_rule_free(item);
}

int lc_relabel_begin(struct lc_relabel_set *s, const struct lc_kvlist *stat)
{
    int rc = 0;

    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < stat->n && rc == 0; i++)
        rc = lc_relabel_set_put(s, stat->v[i].key, stat->v[i].value);
    return rc;
}

int lc_relabel_end(struct lc_relabel_rule *rules, size_t n, struct lc_relabel_set *s, int rc,
                   bool *cut)
{
    if (rc == -E2BIG) {
        rc = 0; /* the set holds LC_RELABEL_MAX_LABELS; a source with more is cut */
        *cut = true;
    }
    if (rc == 0)
        rc = lc_relabel_apply(rules, n, s);
    if (rc == 1 && s->n == 0)
        rc = 0; /* as Promtail: a target without labels is dropped */
    if (rc <= 0)
        lc_relabel_set_free(s);
    return rc;
}
