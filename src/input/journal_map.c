/* SPDX-License-Identifier: MIT */
/* journal_map.c: the journal input's pure parts: fields to labels, UTF-8 rule, label-set cache. */
#include "input/journal.h"

#include "core/labels.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *const lc_journal_levels[] = {"emerg",  "alert", "crit",  "err", "warning",
                                         "notice", "info",  "debug", NULL};

bool lc_journal_field_name_ok(const char *s)
{
    size_t n = 0;

    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; s[n]; n++) {
        char ch = s[n];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_'))
            return false;
    }
    return n <= LC_JOURNAL_FIELD_MAX;
}

const char *lc_journal_level_name(const char *v, size_t n)
{
    if (n != 1 || v[0] < '0' || v[0] > '7')
        return NULL;
    return lc_journal_levels[v[0] - '0'];
}

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    /* overlong forms, surrogates, beyond U+10FFFF */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool lc_journal_utf8_ok(const char *in, size_t n)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0;

    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t len = utf8_seq(p + i, n - i);
        if (len == 0)
            return false;
        i += len;
    }
    return true;
}

size_t lc_journal_utf8_fix(const char *in, size_t n, char *out, size_t cap, size_t *bad, bool *cut)
{
    static const char repl[] = "\xef\xbf\xbd"; /* U+FFFD */
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0, o = 0;

    *cut = false;
    while (i < n) {
        size_t len = utf8_seq(p + i, n - i);
        const char *src = len ? in + i : repl;
        size_t w = len ? len : 3;
        if (o + w > cap) {
            *cut = true;
            break;
        }
        memcpy(out + o, src, w);
        o += w;
        i += len ? len : 1;
        if (!len)
            (*bad)++;
    }
    return o;
}

size_t lc_journal_map_fields(const struct lc_kvlist *fields, lc_journal_get_fn get, void *arg,
                             struct lc_kv *kv, char *vals, char *key, size_t keycap, size_t *keylen,
                             size_t *cut, size_t *bad)
{
    size_t np = 0, k = 0;

    for (size_t i = 0; i < fields->n; i++) {
        const char *v;
        size_t n;
        char *slot = vals + i * (LC_JOURNAL_LABEL_VALUE_MAX + 1);

        if (get(fields->v[i].value, &v, &n, arg) < 0) {
            if (k < keycap)
                key[k++] = '\0'; /* absent: differs from present-and-empty */
            continue;
        }
        const char *level =
            strcmp(fields->v[i].value, "PRIORITY") == 0 ? lc_journal_level_name(v, n) : NULL;
        size_t len;
        if (level) {
            len = strlen(level);
            memcpy(slot, level, len);
        } else {
            bool was_cut;
            len = lc_journal_utf8_fix(v, n, slot, LC_JOURNAL_LABEL_VALUE_MAX, bad, &was_cut);
            if (was_cut)
                (*cut)++;
        }
        slot[len] = '\0';
        kv[np].key = fields->v[i].key;
        kv[np].value = slot;
        kv[np].secret = false;
        np++;
        if (k < keycap)
            key[k++] = '\1';
        size_t room = k < keycap ? keycap - k : 0;
        size_t w = len + 1 < room ? len + 1 : room;
        memcpy(key + k, slot, w); /* with its NUL: "a" "b" differs from "ab" "" */
        k += w;
    }
    *keylen = k;
    return np;
}

/* The label-set cache ------------------------------------------------------- */

struct lc_journal_cache_slot {
    uint64_t hash;
    char *key; /* owned; NULL: free */
    size_t keylen;
    struct lc_labels *labels; /* one reference */
};

static uint64_t key_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

int lc_journal_cache_init(struct lc_journal_cache *c, size_t max)
{
    size_t cap = 16;

    memset(c, 0, sizeof(*c));
    while (cap < 2 * max)
        cap *= 2;
    c->slots = calloc(cap, sizeof(*c->slots));
    if (!c->slots)
        return -ENOMEM;
    c->cap = cap;
    c->max = max;
    return 0;
}

/* The slot holding key, or the free one where it would go (the table is never full). */
static struct lc_journal_cache_slot *find(const struct lc_journal_cache *c, const char *key,
                                          size_t keylen, uint64_t h)
{
    for (size_t i = (size_t)h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        struct lc_journal_cache_slot *s = &c->slots[i];
        if (!s->key || (s->hash == h && s->keylen == keylen && memcmp(s->key, key, keylen) == 0))
            return s;
    }
}

struct lc_labels *lc_journal_cache_get(const struct lc_journal_cache *c, const char *key,
                                       size_t keylen)
{
    if (!c->slots)
        return NULL;
    return find(c, key, keylen, key_hash(key, keylen))->labels;
}

int lc_journal_cache_put(struct lc_journal_cache *c, const char *key, size_t keylen,
                         struct lc_labels *labels)
{
    uint64_t h = key_hash(key, keylen);
    struct lc_journal_cache_slot *s;

    if (!c->slots)
        return -ENOMEM;
    s = find(c, key, keylen, h);
    if (s->key)
        return 0;
    if (c->n >= c->max)
        return -ENOSPC;
    s->key = malloc(keylen ? keylen : 1);
    if (!s->key)
        return -ENOMEM;
    memcpy(s->key, key, keylen);
    s->keylen = keylen;
    s->hash = h;
    s->labels = lc_labels_ref(labels);
    c->n++;
    return 0;
}

void lc_journal_cache_clear(struct lc_journal_cache *c)
{
    for (size_t i = 0; i < c->cap && c->n > 0; i++) {
        struct lc_journal_cache_slot *s = &c->slots[i];
        if (!s->key)
            continue;
        lc_labels_release(s->labels);
        free(s->key);
        memset(s, 0, sizeof(*s));
        c->n--;
    }
}

void lc_journal_cache_free(struct lc_journal_cache *c)
{
    if (!c->slots)
        return;
    lc_journal_cache_clear(c);
    free(c->slots);
    c->slots = NULL;
    c->cap = 0;
}

/* Option checks ------------------------------------------------------------- */

const char *lc_journal_check_field(const char *label, const char *field)
{
    char clean[128];

    if (!label || !field)
        return "expected a label name and a journal field name";
    lc_labels_sanitize_name(label, clean, sizeof(clean));
    if (strcmp(clean, label) != 0)
        return "invalid label name: use [a-zA-Z_][a-zA-Z0-9_]*";
    if (!lc_journal_field_name_ok(field))
        return "invalid journal field name: use A-Z, 0-9 and '_' (not first a digit), at "
               "most 64 characters, e.g. _SYSTEMD_UNIT";
    return NULL;
}

const char *lc_journal_check_match(const char *key, const char *value)
{
    (void)key;
    if (!value || !*value)
        return "empty value";
    if (strlen(value) > 256)
        return "longer than 256 characters";
    return NULL;
}
