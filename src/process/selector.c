/* SPDX-License-Identifier: MIT */
/* selector.c: Loki stream selectors with line filters (the `match` stage, the Promtail converter).
 */
#include "process/selector.h"

#include "core/labels.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A Go string at p ("..." or `...`) into val: the position after it, or NULL. */
static const char *go_string(const char *p, char *val, size_t vl)
{
    size_t n = 0;

    if (*p == '`') {
        for (p++; *p && *p != '`'; p++)
            if (n + 1 < vl)
                val[n++] = *p;
            else
                return NULL;
    } else if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            if (n + 1 < vl)
                val[n++] = *p;
            else
                return NULL;
        }
    } else {
        return NULL;
    }
    if (!*p)
        return NULL;
    val[n] = '\0';
    for (p++; *p == ' ' || *p == '\t'; p++)
        ;
    return p;
}

int lc_selector_next(const char **pp, char *name, size_t nl, char *op, char *val, size_t vl)
{
    const char *p = *pp;
    size_t n = 0;

    while (*p == ' ' || *p == '\t')
        p++;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
           (n && *p >= '0' && *p <= '9'))
        if (n + 1 < nl)
            name[n++] = *p++;
        else
            return -EINVAL;
    name[n] = '\0';
    while (*p == ' ')
        p++;
    if (!n || !(p[0] == '=' || (p[0] == '!' && (p[1] == '=' || p[1] == '~'))))
        return -EINVAL;
    op[0] = p[0];
    op[1] = '\0';
    if (p[0] == '!' || p[1] == '~')
        op[1] = p[1];
    op[2] = '\0';
    p += op[1] ? 2 : 1;
    while (*p == ' ')
        p++;
    p = go_string(p, val, vl);
    if (!p)
        return -EINVAL;
    *pp = p;
    return 0;
}

static int add_term(struct lc_selector *s, const char *name, const char *op, const char *val,
                    char *err, size_t errlen)
{
    struct lc_sel_term *t = &s->t[s->n];
    char pat[1100];

    if (s->n == sizeof(s->t) / sizeof(s->t[0])) {
        snprintf(err, errlen, "more than %d matchers or line filters", LC_SELECTOR_MAX);
        return -EINVAL;
    }
    s->n++;
    memcpy(t->op, op, 3);
    t->name = name ? strdup(name) : NULL;
    t->val = strdup(val);
    if ((name && !t->name) || !t->val) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (op[1] != '~')
        return 0;
    /* label regexes are fully anchored, as in Loki; line filter regexes match anywhere */
    snprintf(pat, sizeof(pat), name ? "^(?:%s)$" : "%s", val);
    return lc_rx_compile(&t->rx, pat, err, errlen);
}

int lc_selector_compile(struct lc_selector *s, const char *text, char *err, size_t errlen)
{
    const char *p = text;
    char name[128], op[3], val[1024];
    int rc;

    while (*p == ' ')
        p++;
    if (*p++ != '{')
        goto bad;
    while (*p == ' ')
        p++;
    while (*p != '}') {
        if (lc_selector_next(&p, name, sizeof(name), op, val, sizeof(val)) < 0)
            goto bad;
        if ((rc = add_term(s, name, op, val, err, errlen)) < 0)
            return rc;
        if (*p == ',')
            p++;
        else if (*p != '}')
            goto bad;
    }
    for (p++; *p == ' '; p++)
        ;
    while (*p) { /* line filters: |= "s", != "s", |~ "re", !~ "re" */
        if (!((p[0] == '|' || p[0] == '!') && (p[1] == '=' || p[1] == '~')))
            goto bad;
        op[0] = p[0];
        op[1] = p[1];
        op[2] = '\0';
        for (p += 2; *p == ' '; p++)
            ;
        p = go_string(p, val, sizeof(val));
        if (!p)
            goto bad;
        if ((rc = add_term(s, NULL, op, val, err, errlen)) < 0)
            return rc;
    }
    return 0;
bad:
    snprintf(err, errlen,
             "bad selector at '%.32s': expected {name=\"v\", name!=\"v\", name=~\"re\", "
             "name!~\"re\"} and line filters |= \"s\", != \"s\", |~ \"re\", !~ \"re\"",
             p);
    return -EINVAL;
}

void lc_selector_free(struct lc_selector *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->t[i].name);
        free(s->t[i].val);
        lc_rx_free(&s->t[i].rx);
    }
    s->n = 0;
}

static const char *label_value(const struct lc_labels *l, const char *name)
{
    for (size_t i = 0; l && i < l->n; i++)
        if (strcmp(l->pairs[i].key, name) == 0)
            return l->pairs[i].value;
    return "";
}

bool lc_selector_match(struct lc_selector *s, const struct lc_labels *labels, const char *line,
                       size_t len)
{
    for (size_t i = 0; i < s->n; i++) {
        struct lc_sel_term *t = &s->t[i];
        bool hit;
        if (t->name) {
            const char *have = label_value(labels, t->name);
            hit = t->op[1] == '~' ? lc_rx_match(&t->rx, have, strlen(have))
                                  : strcmp(have, t->val) == 0;
        } else {
            hit = t->op[1] == '~' ? lc_rx_match(&t->rx, line, len)
                                  : memmem(line, len, t->val, strlen(t->val)) != NULL;
        }
        if (hit != (t->op[0] != '!'))
            return false;
    }
    return true;
}
