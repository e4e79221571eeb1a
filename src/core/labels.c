/* SPDX-License-Identifier: MIT */
/* labels.c: interned label sets (a chained hash table keyed by the sorted pairs). */
#include "core/labels.h"

#include "core/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LC_LABELS_BUCKETS 1024 /* a power of two; chains stay short for thousands of sets */

static struct lc_labels *table[LC_LABELS_BUCKETS];
static size_t live;

void lc_labels_sanitize_name(const char *name, char *buf, size_t buflen)
{
    size_t i = 0;

    if (buflen == 0)
        return;
    for (; name[i] && i + 1 < buflen; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            c = '_';
        buf[i] = c;
    }
    buf[i] = '\0';
    if (i == 0 && buflen > 1) {
        buf[0] = '_';
        buf[1] = '\0';
    }
}

static uint32_t fnv1a(uint32_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return (h ^ 0xffu) * 16777619u; /* separator, so ("ab","c") != ("a","bc") */
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const struct lc_kv *)a)->key, ((const struct lc_kv *)b)->key);
}

static void free_pairs(struct lc_kv *pairs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(pairs[i].key);
        free(pairs[i].value);
    }
    free(pairs);
}

/* Copies, sanitises and sorts the pairs; a repeated name keeps its last value. */
static int normalize(const struct lc_kv *in, size_t n, struct lc_kv **out, size_t *outn)
{
    struct lc_kv *p = calloc(n, sizeof(*p));
    size_t m = 0;
    char name[128];

    if (!p)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        lc_labels_sanitize_name(in[i].key, name, sizeof(name));
        p[i].key = strdup(name);
        p[i].value = strdup(in[i].value ? in[i].value : "");
        if (!p[i].key || !p[i].value) {
            free_pairs(p, n);
            return -ENOMEM;
        }
    }
    /* stable for equal keys: mergesort-like behaviour via index tiebreak is not
     * available in qsort, so dedupe by scanning originals from the end instead */
    for (size_t i = 0; i < n; i++) {
        bool later = false;
        for (size_t j = i + 1; j < n; j++)
            later |= strcmp(p[i].key, p[j].key) == 0;
        if (later) {
            free(p[i].key);
            free(p[i].value);
            continue;
        }
        p[m++] = p[i];
    }
    qsort(p, m, sizeof(*p), cmp_kv);
    *out = p;
    *outn = m;
    return 0;
}

/* Loki's label value syntax is a Go string literal: escape \ " and newlines. */
static int render(struct lc_labels *l)
{
    struct lc_buf j, k;
    int rc = 0;

    lc_buf_init(&j, 1 << 20);
    lc_buf_init(&k, 1 << 20);
    rc |= lc_buf_putc(&j, '{');
    rc |= lc_buf_putc(&k, '{');
    for (size_t i = 0; i < l->n; i++) {
        const char *v = l->pairs[i].value;
        if (i) {
            rc |= lc_buf_putc(&j, ',');
            rc |= lc_buf_append(&k, ", ", 2);
        }
        rc |= lc_buf_putc(&j, '"');
        rc |= lc_buf_json_str(&j, l->pairs[i].key, strlen(l->pairs[i].key));
        rc |= lc_buf_append(&j, "\":\"", 3);
        rc |= lc_buf_json_str(&j, v, strlen(v));
        rc |= lc_buf_putc(&j, '"');
        rc |= lc_buf_printf(&k, "%s=\"", l->pairs[i].key);
        rc |= lc_buf_json_str(&k, v, strlen(v)); /* JSON escapes are valid Go escapes */
        rc |= lc_buf_putc(&k, '"');
    }
    rc |= lc_buf_putc(&j, '}');
    rc |= lc_buf_putc(&k, '}');
    if (rc) {
        lc_buf_free(&j);
        lc_buf_free(&k);
        return -ENOMEM;
    }
    l->json = j.data;
    l->json_len = j.len;
    l->loki = k.data;
    l->loki_len = k.len;
    return 0;
}

static bool same(const struct lc_labels *l, const struct lc_kv *p, size_t n)
{
    if (l->n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(l->pairs[i].key, p[i].key) != 0 || strcmp(l->pairs[i].value, p[i].value) != 0)
            return false;
    return true;
}

int lc_labels_intern(const struct lc_kv *pairs, size_t n, struct lc_labels **out)
{
    struct lc_kv *p = NULL;
    struct lc_labels *l;
    uint32_t h = 2166136261u;
    size_t m = 0;
    int rc;

    *out = NULL;
    if (n == 0)
        return -EINVAL;
    rc = normalize(pairs, n, &p, &m);
    if (rc)
        return rc;
    if (m > LC_LABELS_MAX) {
        free_pairs(p, m);
        return -EINVAL;
    }
    for (size_t i = 0; i < m; i++)
        h = fnv1a(fnv1a(h, p[i].key), p[i].value);
    for (l = table[h & (LC_LABELS_BUCKETS - 1)]; l; l = l->next_in_bucket) {
        if (l->hash == h && same(l, p, m)) {
            free_pairs(p, m);
            l->refs++;
            *out = l;
            return 0;
        }
    }
    l = calloc(1, sizeof(*l));
    if (!l) {
        free_pairs(p, m);
        return -ENOMEM;
    }
    l->refs = 1;
    l->hash = h;
    l->pairs = p;
    l->n = m;
    if (render(l)) {
        free_pairs(p, m);
        free(l);
        return -ENOMEM;
    }
    l->next_in_bucket = table[h & (LC_LABELS_BUCKETS - 1)];
    table[h & (LC_LABELS_BUCKETS - 1)] = l;
    live++;
    *out = l;
    return 0;
}

struct lc_labels *lc_labels_ref(struct lc_labels *l)
{
    if (l)
        l->refs++;
    return l;
}

void lc_labels_release(struct lc_labels *l)
{
    struct lc_labels **pp;

    if (!l || --l->refs > 0)
        return;
    for (pp = &table[l->hash & (LC_LABELS_BUCKETS - 1)]; *pp; pp = &(*pp)->next_in_bucket) {
        if (*pp == l) {
            *pp = l->next_in_bucket;
            break;
        }
    }
    free_pairs(l->pairs, l->n);
    free(l->json);
    free(l->loki);
    free(l);
    live--;
}

size_t lc_labels_live(void)
{
    return live;
}
