/* SPDX-License-Identifier: MIT */
/* loki_encode.c: a batch to a Loki push body, written straight into the request buffer. */
#include "output/loki_encode.h"

#include "core/labels.h"
#include "core/meta.h"

#include <errno.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* One stream of the batch being encoded: a label set and its run of records. */
struct lc_loki_group {
    const struct lc_labels *labels;
    uint32_t count;
    uint32_t start;
    size_t lab_off; /* rendered label string in e->lab, when merged */
    size_t lab_len;
    size_t size; /* protobuf: encoded StreamAdapter size */
};

struct lc_loki_slot {
    const struct lc_labels *key;
    uint32_t gid;
};

struct lc_loki_enc {
    enum lc_loki_encoding encoding;
    bool gzip;
    struct lc_kv *statics; /* sanitised, sorted by key */
    size_t nstatic;
    /* scratch, grown to the largest batch, reused */
    struct lc_loki_group *groups;
    uint32_t groups_cap;
    uint32_t ngroups;
    struct lc_loki_slot *table; /* label set pointer -> group, open addressing */
    uint32_t table_cap;         /* power of 2 */
    uint32_t *gids;             /* group of each record */
    struct lc_record *tmp;
    uint32_t recs_cap;
    struct lc_buf lab; /* merged label strings */
    struct lc_buf raw; /* the body before compression */
    z_stream zs;
    bool zs_inited;
    uint32_t utf8_repaired; /* records of the last encode with invalid UTF-8 replaced */
};

/* ---- small helpers ---------------------------------------------------- */

/*
 * Loki takes UTF-8 only (a validating server answers 400 to the whole batch):
 * every byte of p[0..n) that is not part of a well-formed sequence (RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF, none cut short)
 * becomes '?', in place, so lengths computed before stay right. Returns how
 * many bytes were replaced.
 */
static size_t utf8_repair(char *p, size_t n)
{
    unsigned char *s = (unsigned char *)p;
    size_t i = 0, bad = 0;

    while (i < n) {
        uint64_t w, x[4];
        if (i + 32 <= n) { /* 32 bytes of ASCII at once */
            memcpy(x, s + i, 32);
            if (((x[0] | x[1] | x[2] | x[3]) & 0x8080808080808080ULL) == 0) {
                i += 32;
                continue;
            }
        }
        if (i + 8 <= n) { /* ASCII, 8 bytes at a time: the common case */
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080ULL) == 0) {
                i += 8;
                continue;
            }
        }
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                     : c >= 0xe0 && c <= 0xef ? 3
                     : c >= 0xf0 && c <= 0xf4 ? 4
                                              : 0;
        unsigned lo = 0x80, hi = 0xbf; /* the second byte's range */
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
        else if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
        bool ok = len && i + len <= n && s[i + 1] >= lo && s[i + 1] <= hi;
        for (size_t k = 2; ok && k < len; k++)
            ok = s[i + k] >= 0x80 && s[i + k] <= 0xbf;
        if (ok) {
            i += len;
        } else {
            s[i++] = '?';
            bad++;
        }
    }
    return bad;
}

uint32_t lc_loki_enc_utf8_repaired(const struct lc_loki_enc *e)
{
    return e->utf8_repaired;
}

size_t lc_loki_utf8_repair(char *p, size_t n)
{
    return utf8_repair(p, n);
}

static inline size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline char *put_varint(char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (char)((v & 0x7f) | 0x80);
        v >>= 7;
    }
    *p++ = (char)v;
    return p;
}

size_t lc_loki_i64toa(int64_t v, char *p)
{
    char tmp[20];
    size_t n = 0, len = 0;
    uint64_t u;

    if (v < 0) {
        p[len++] = '-';
        u = (uint64_t)0 - (uint64_t)v;
    } else {
        u = (uint64_t)v;
    }
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n)
        p[len++] = tmp[--n];
    return len;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const struct lc_kv *)a)->key, ((const struct lc_kv *)b)->key);
}

/* ---- lifecycle --------------------------------------------------------- */

int lc_loki_enc_new(struct lc_loki_enc **out, enum lc_loki_encoding encoding, bool gzip,
                    const struct lc_kv *labels, size_t n, size_t max_body)
{
    struct lc_loki_enc *e;
    char name[128];

    *out = NULL;
    if (n > LC_LABELS_MAX)
        return -EINVAL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->encoding = encoding;
    e->gzip = encoding == LC_LOKI_JSON && gzip;
    /*
     * The buffers are set up after the statics: passing &e->lab out earlier hides nstatic from
     * clang-analyzer. Until then calloc's zeroes are safe for lc_loki_enc_free.
     */
    if (n) {
        e->statics = calloc(n, sizeof(*e->statics));
        if (!e->statics)
            goto out_free;
        for (size_t i = 0; i < n; i++) {
            lc_labels_sanitize_name(labels[i].key, name, sizeof(name));
            /* a repeated name: the later value wins, as in lc_labels_intern */
            size_t j;
            for (j = 0; j < e->nstatic; j++)
                if (strcmp(e->statics[j].key, name) == 0)
                    break;
            char *v = strdup(labels[i].value ? labels[i].value : "");
            if (!v)
                goto out_free;
            if (j < e->nstatic) {
                free(e->statics[j].value);
                e->statics[j].value = v;
                continue;
            }
            e->statics[j].key = strdup(name);
            e->statics[j].value = v;
            e->nstatic++;
            if (!e->statics[j].key)
                goto out_free;
        }
        qsort(e->statics, e->nstatic, sizeof(*e->statics), cmp_kv);
    }
    lc_buf_init(&e->lab, 1 << 24);
    lc_buf_init(&e->raw, max_body);
    if (e->gzip) {
        /* level 1: logs compress well even so, and the CPU budget is tight */
        if (deflateInit2(&e->zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            goto out_free;
        e->zs_inited = true;
    }
    *out = e;
    return 0;

out_free:
    lc_loki_enc_free(e);
    return -ENOMEM;
}

void lc_loki_enc_free(struct lc_loki_enc *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nstatic; i++) {
        free(e->statics[i].key);
        free(e->statics[i].value);
    }
    free(e->statics);
    free(e->groups);
    free(e->table);
    free(e->gids);
    free(e->tmp);
    lc_buf_free(&e->lab);
    lc_buf_free(&e->raw);
    if (e->zs_inited)
        deflateEnd(&e->zs);
    free(e);
}

const char *lc_loki_enc_content_type(const struct lc_loki_enc *e)
{
    return e->encoding == LC_LOKI_PROTOBUF ? "application/x-protobuf" : "application/json";
}

const char *lc_loki_enc_content_encoding(const struct lc_loki_enc *e)
{
    return e->gzip ? "gzip" : NULL;
}

/* ---- timestamp validation ----------------------------------------------- */

uint32_t lc_loki_validate(const struct lc_loki_ts_policy *p, struct lc_batch *b, int64_t now_ns,
                          struct lc_loki_ts_counts *counts)
{
    int64_t oldest = p->max_age_ns > 0 ? now_ns - p->max_age_ns : INT64_MIN;
    int64_t newest = p->max_future_ns > 0 ? now_ns + p->max_future_ns : INT64_MAX;
    int64_t margin = p->max_age_ns >= 120 * LC_NS_PER_SEC ? 60 * LC_NS_PER_SEC : p->max_age_ns / 2;
    uint32_t w = 0;

    for (uint32_t i = 0; i < b->n; i++) {
        struct lc_record r = b->recs[i];
        if (r.ts_ns < oldest) {
            if (p->too_old == LC_LOKI_TOO_OLD_DROP) {
                counts->old_dropped++;
                continue;
            }
            if (p->too_old == LC_LOKI_TOO_OLD_CLAMP) {
                r.ts_ns = oldest + margin;
                counts->old_clamped++;
            } else {
                counts->old_sent++;
            }
        } else if (r.ts_ns > newest) {
            r.ts_ns = now_ns;
            counts->future_clamped++;
        }
        b->recs[w++] = r;
    }
    b->n = w;
    return w;
}

/* ---- grouping and sorting ---------------------------------------------- */

static int grow_recs(struct lc_loki_enc *e, uint32_t n)
{
    if (n <= e->recs_cap)
        return 0;
    uint32_t *g = realloc(e->gids, (size_t)n * sizeof(*g));
    if (!g)
        return -ENOMEM;
    e->gids = g;
    struct lc_record *t = realloc(e->tmp, (size_t)n * sizeof(*t));
    if (!t)
        return -ENOMEM;
    e->tmp = t;
    e->recs_cap = n;
    return 0;
}

static inline uint32_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (uint32_t)x;
}

static int table_grow(struct lc_loki_enc *e)
{
    uint32_t cap = e->table_cap ? e->table_cap * 2 : 64;
    struct lc_loki_slot *t = calloc(cap, sizeof(*t));
    if (!t)
        return -ENOMEM;
    for (uint32_t i = 0; i < e->ngroups; i++) {
        uint32_t h = ptr_hash(e->groups[i].labels) & (cap - 1);
        while (t[h].key)
            h = (h + 1) & (cap - 1);
        t[h].key = e->groups[i].labels;
        t[h].gid = i;
    }
    free(e->table);
    e->table = t;
    e->table_cap = cap;
    return 0;
}

/* The group of a label set, created on first sight. -ENOMEM or the id. */
static int64_t group_of(struct lc_loki_enc *e, const struct lc_labels *l)
{
    /* !e->table implies table_cap == 0; said outright so that the analyzer knows it too */
    if ((!e->table || (e->ngroups + 1) * 2 > e->table_cap) && table_grow(e) < 0)
        return -ENOMEM;
    uint32_t h = ptr_hash(l) & (e->table_cap - 1);
    while (e->table[h].key) {
        if (e->table[h].key == l)
            return e->table[h].gid;
        h = (h + 1) & (e->table_cap - 1);
    }
    if (e->ngroups == e->groups_cap) {
        uint32_t cap = e->groups_cap ? e->groups_cap * 2 : 16;
        struct lc_loki_group *g = realloc(e->groups, cap * sizeof(*g));
        if (!g)
            return -ENOMEM;
        e->groups = g;
        e->groups_cap = cap;
    }
    struct lc_loki_group *g = &e->groups[e->ngroups];
    memset(g, 0, sizeof(*g));
    g->labels = l;
    e->table[h].key = l;
    e->table[h].gid = e->ngroups;
    return e->ngroups++;
}

/* Stable merge sort by timestamp; aux holds at least n / 2 + 1 records. */
static void msort(struct lc_record *a, struct lc_record *aux, uint32_t n)
{
    if (n <= 16) {
        for (uint32_t i = 1; i < n; i++) {
            struct lc_record r = a[i];
            uint32_t j = i;
            while (j > 0 && a[j - 1].ts_ns > r.ts_ns) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = r;
        }
        return;
    }
    uint32_t h = n / 2;
    msort(a, aux, h);
    msort(a + h, aux, n - h);
    if (a[h - 1].ts_ns <= a[h].ts_ns)
        return;
    memcpy(aux, a, h * sizeof(*a));
    uint32_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        a[k++] = a[j].ts_ns < aux[i].ts_ns ? a[j++] : aux[i++];
    while (i < h)
        a[k++] = aux[i++];
}

int lc_loki_sort(struct lc_loki_enc *e, struct lc_batch *b)
{
    uint32_t n = b->n;
    const struct lc_labels *last = NULL;
    int64_t gid = -1;
    bool sorted = true;

    /* the table is rebuilt per batch: label sets die between batches */
    e->ngroups = 0;
    if (e->table)
        memset(e->table, 0, e->table_cap * sizeof(*e->table));
    if (n == 0)
        return 0;
    if (grow_recs(e, n) < 0)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        const struct lc_record *r = &b->recs[i];
        if (r->labels != last) {
            int64_t g = group_of(e, r->labels);
            if (g < 0)
                return -ENOMEM;
            /* a set seen before, not right after its own run: regroup */
            if (g != (int64_t)e->ngroups - 1 || e->groups[g].count)
                sorted = false;
            gid = g;
            last = r->labels;
        } else if (r->ts_ns < b->recs[i - 1].ts_ns) {
            sorted = false;
        }
        e->gids[i] = (uint32_t)gid;
        e->groups[gid].count++;
    }
    uint32_t start = 0;
    for (uint32_t g = 0; g < e->ngroups; g++) {
        e->groups[g].start = start;
        start += e->groups[g].count;
    }
    if (sorted)
        return 0;
    /* counting sort by group into tmp (stable), then sort each run by time */
    uint32_t *pos = e->gids; /* reused below as the write cursor per record */
    for (uint32_t g = 0; g < e->ngroups; g++)
        e->groups[g].size = e->groups[g].start; /* cursor */
    for (uint32_t i = 0; i < n; i++) {
        struct lc_loki_group *g = &e->groups[pos[i]];
        e->tmp[g->size++] = b->recs[i];
    }
    for (uint32_t g = 0; g < e->ngroups; g++) {
        struct lc_loki_group *gr = &e->groups[g];
        gr->size = 0;
        /* b->recs is free scratch now: it is overwritten by the copy below */
        msort(e->tmp + gr->start, b->recs, gr->count);
    }
    memcpy(b->recs, e->tmp, (size_t)n * sizeof(*b->recs));
    return 0;
}

/* ---- labels ------------------------------------------------------------- */

/*
 * Renders one stream's label set merged with the static labels, in Loki's
 * form ({a="x", b="y"}) or as a JSON object, into e->lab. The record's own
 * value wins on a shared name.
 */
static int render_merged(struct lc_loki_enc *e, const struct lc_labels *l, bool json)
{
    size_t i = 0, j = 0;
    bool first = true;
    int rc = 0;

    rc |= lc_buf_putc(&e->lab, '{');
    while (i < l->n || j < e->nstatic) {
        const struct lc_kv *kv;
        int c = i == l->n ? 1 : j == e->nstatic ? -1 : strcmp(l->pairs[i].key, e->statics[j].key);
        if (c <= 0) {
            kv = &l->pairs[i++];
            if (c == 0)
                j++;
        } else {
            kv = &e->statics[j++];
        }
        if (!first)
            rc |= json ? lc_buf_putc(&e->lab, ',') : lc_buf_append(&e->lab, ", ", 2);
        first = false;
        if (json) {
            rc |= lc_buf_putc(&e->lab, '"');
            rc |= lc_buf_json_str(&e->lab, kv->key, strlen(kv->key));
            rc |= lc_buf_append(&e->lab, "\":\"", 3);
        } else {
            rc |= lc_buf_append(&e->lab, kv->key, strlen(kv->key));
            rc |= lc_buf_append(&e->lab, "=\"", 2);
        }
        /* JSON escapes are valid Go string escapes, which Loki's label parser reads */
        rc |= lc_buf_json_str(&e->lab, kv->value, strlen(kv->value));
        rc |= lc_buf_putc(&e->lab, '"');
    }
    rc |= lc_buf_putc(&e->lab, '}');
    return rc ? -ENOMEM : 0;
}

/* Fills lab_off/lab_len of every group; labels then are at label_str(). */
static int render_labels(struct lc_loki_enc *e, bool json)
{
    lc_buf_reset(&e->lab);
    for (uint32_t g = 0; g < e->ngroups; g++) {
        struct lc_loki_group *gr = &e->groups[g];
        const struct lc_labels *l = gr->labels;
        const char *pre = json ? l->json : l->loki;
        if (e->nstatic == 0 && pre) {
            gr->lab_off = SIZE_MAX; /* use the set's own rendering */
            gr->lab_len = json ? l->json_len : l->loki_len;
            continue;
        }
        gr->lab_off = e->lab.len;
        int rc = render_merged(e, l, json);
        if (rc < 0)
            return rc;
        gr->lab_len = e->lab.len - gr->lab_off;
    }
    return 0;
}

static inline const char *label_str(const struct lc_loki_enc *e, const struct lc_loki_group *g,
                                    bool json)
{
    if (g->lab_off == SIZE_MAX)
        return json ? g->labels->json : g->labels->loki;
    return e->lab.data + g->lab_off;
}

/* ---- protobuf ----------------------------------------------------------- */

static inline void split_ts(int64_t ts, int64_t *sec, int32_t *nsec)
{
    int64_t s = ts / LC_NS_PER_SEC;
    int64_t r = ts % LC_NS_PER_SEC;
    if (r < 0) {
        r += LC_NS_PER_SEC;
        s--;
    }
    *sec = s;
    *nsec = (int32_t)r;
}

static inline size_t ts_msg_len(int64_t sec, int32_t nsec)
{
    return (sec ? 1 + varint_len((uint64_t)sec) : 0) + (nsec ? 1 + varint_len((uint32_t)nsec) : 0);
}

/* One LabelPairAdapter{name=1, value=2} without its tag and length. */
static inline size_t pair_msg_len(size_t nl, size_t vl)
{
    return 1 + varint_len(nl) + nl + 1 + varint_len(vl) + vl;
}

/* The bytes of EntryAdapter.structuredMetadata (field 3, each pair one LabelPairAdapter). */
static size_t meta_pb_len(const struct lc_batch *b, const struct lc_record *r)
{
    const char *meta = lc_batch_meta(b, r);
    struct lc_meta_it it = {meta, meta + r->meta_len};
    const char *n, *v;
    size_t nl, vl, s = 0;

    while (lc_meta_next(&it, &n, &nl, &v, &vl)) {
        size_t pl = pair_msg_len(nl, vl);
        s += 1 + varint_len(pl) + pl;
    }
    return s;
}

static char *put_meta_pb(char *p, const struct lc_batch *b, const struct lc_record *r,
                         uint32_t *repaired)
{
    const char *meta = lc_batch_meta(b, r);
    struct lc_meta_it it = {meta, meta + r->meta_len};
    const char *n, *v;
    size_t nl, vl;
    bool bad = false;

    while (lc_meta_next(&it, &n, &nl, &v, &vl)) {
        *p++ = 0x1a; /* EntryAdapter.structuredMetadata */
        p = put_varint(p, pair_msg_len(nl, vl));
        *p++ = 0x0a; /* LabelPairAdapter.name */
        p = put_varint(p, nl);
        memcpy(p, n, nl);
        p += nl;
        *p++ = 0x12; /* LabelPairAdapter.value */
        p = put_varint(p, vl);
        memcpy(p, v, vl);
        bad |= utf8_repair(p, vl) > 0;
        p += vl;
    }
    *repaired += bad;
    return p;
}

static inline size_t entry_len(const struct lc_batch *b, const struct lc_record *r)
{
    int64_t sec;
    int32_t nsec;
    split_ts(r->ts_ns, &sec, &nsec);
    size_t t = ts_msg_len(sec, nsec);
    return 2 + t + 1 + varint_len(r->line_len) + r->line_len +
           (r->meta_len ? meta_pb_len(b, r) : 0);
}

/*
 * Snappy compresses in independent 64 KiB fragments (its kBlockSize): a body
 * is varint(raw length) and then each fragment's elements. So the protobuf is
 * written into a window of a little more than one fragment (e->raw) and each
 * full fragment is compressed straight into the body: the raw body never
 * exists whole (1 MiB less per encoder) and what snappy reads is still in the
 * cache. Compressing a fragment alone writes its own length first; it is
 * written over the bytes before it, which are put back afterwards.
 */
#define LC_SNAPPY_FRAGMENT 65536

static int snappy_fragment(const char *in, size_t len, struct lc_buf *out)
{
    size_t hl = varint_len(len);
    size_t olen = snappy_max_compressed_length(len);
    char save[10];

    if (out->len < hl) /* the body's own length comes first and is never shorter */
        return -EIO;
    int rc = lc_buf_reserve(out, olen);
    if (rc < 0)
        return rc;
    char *at = out->data + out->len - hl;
    memcpy(save, at, hl);
    if (snappy_compress(in, len, at, &olen) != SNAPPY_OK || olen < hl)
        return -EIO;
    memcpy(at, save, hl);
    out->len += olen - hl;
    return 0;
}

/* Compresses the window's whole fragments (all of it when last) and keeps the rest. */
static int snappy_window(struct lc_loki_enc *e, struct lc_buf *out, bool last)
{
    size_t off = 0;
    int rc = 0;

    while (rc == 0 && (e->raw.len - off >= LC_SNAPPY_FRAGMENT || (last && off < e->raw.len))) {
        size_t n = e->raw.len - off < LC_SNAPPY_FRAGMENT ? e->raw.len - off : LC_SNAPPY_FRAGMENT;
        rc = snappy_fragment(e->raw.data + off, n, out);
        off += n;
    }
    memmove(e->raw.data, e->raw.data + off, e->raw.len - off);
    e->raw.len -= off;
    return rc;
}

/* Room for n more bytes in the window, compressing its whole fragments first. */
static inline char *window_room(struct lc_loki_enc *e, struct lc_buf *out, size_t n)
{
    if (e->raw.len >= LC_SNAPPY_FRAGMENT && snappy_window(e, out, false) < 0)
        return NULL;
    if (e->raw.alloc - e->raw.len <= n && lc_buf_reserve(&e->raw, n) < 0)
        return NULL;
    return e->raw.data + e->raw.len;
}

/*
 * Copies a line and replaces invalid UTF-8 in the copy (utf8_repair), in one
 * pass while the line is ASCII. True if something was replaced.
 */
static bool copy_line(char *dst, const char *src, size_t n)
{
    size_t i = 0;

#if defined(__SSE2__)
    for (; i + 32 <= n; i += 32) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(src + i + 16));
        _mm_storeu_si128((__m128i *)(void *)(dst + i), a);
        _mm_storeu_si128((__m128i *)(void *)(dst + i + 16), c);
        if (_mm_movemask_epi8(_mm_or_si128(a, c)))
            break;
    }
    if (i + 32 > n && n >= 32) { /* the last 32 bytes, over some copied already */
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(src + n - 32));
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(src + n - 16));
        _mm_storeu_si128((__m128i *)(void *)(dst + n - 32), a);
        _mm_storeu_si128((__m128i *)(void *)(dst + n - 16), c);
        if (!_mm_movemask_epi8(_mm_or_si128(a, c)))
            return false;
    }
#else
    for (; i + 32 <= n; i += 32) {
        uint64_t x[4];
        memcpy(x, src + i, 32);
        memcpy(dst + i, x, 32);
        if ((x[0] | x[1] | x[2] | x[3]) & 0x8080808080808080ULL)
            break;
    }
#endif
    memcpy(dst + i, src + i, n - i);
    return utf8_repair(dst + i, n - i) > 0; /* no sequence starts before i: all ASCII */
}

/* The protobuf body, snappy-compressed into out; *raw_len: its size before. */
static int encode_protobuf(struct lc_loki_enc *e, const struct lc_batch *b, struct lc_buf *out,
                           size_t *raw_len)
{
    size_t total = 0;
    char *p;
    int rc;

    rc = render_labels(e, false);
    if (rc < 0)
        return rc;
    for (uint32_t g = 0; g < e->ngroups; g++) {
        struct lc_loki_group *gr = &e->groups[g];
        size_t s = 1 + varint_len(gr->lab_len) + gr->lab_len;
        for (uint32_t i = gr->start; i < gr->start + gr->count; i++) {
            size_t el = entry_len(b, &b->recs[i]);
            s += 1 + varint_len(el) + el;
        }
        gr->size = s;
        total += 1 + varint_len(s) + s;
    }
    *raw_len = total;
    if (total > e->raw.cap)
        return -E2BIG;
    lc_buf_reset(out);
    rc = lc_buf_reserve(out, varint_len(total));
    if (rc < 0)
        return rc;
    out->len = (size_t)(put_varint(out->data, total) - out->data);
    lc_buf_reset(&e->raw);
    for (uint32_t g = 0; g < e->ngroups; g++) {
        const struct lc_loki_group *gr = &e->groups[g];
        p = window_room(e, out, 22 + gr->lab_len);
        if (!p)
            return -ENOMEM;
        *p++ = 0x0a; /* PushRequest.streams */
        p = put_varint(p, gr->size);
        *p++ = 0x0a; /* StreamAdapter.labels */
        p = put_varint(p, gr->lab_len);
        memcpy(p, label_str(e, gr, false), gr->lab_len);
        e->raw.len = (size_t)(p + gr->lab_len - e->raw.data);
        for (uint32_t i = gr->start; i < gr->start + gr->count; i++) {
            const struct lc_record *r = &b->recs[i];
            int64_t sec;
            int32_t nsec;
            split_ts(r->ts_ns, &sec, &nsec);
            size_t tl = ts_msg_len(sec, nsec);
            size_t ml = r->meta_len ? meta_pb_len(b, r) : 0;
            size_t el = 2 + tl + 1 + varint_len(r->line_len) + r->line_len + ml;
            p = window_room(e, out, 11 + el);
            if (!p)
                return -ENOMEM;
            *p++ = 0x12; /* StreamAdapter.entries */
            p = put_varint(p, el);
            *p++ = 0x0a; /* EntryAdapter.timestamp */
            *p++ = (char)tl;
            if (sec) {
                *p++ = 0x08; /* Timestamp.seconds */
                p = put_varint(p, (uint64_t)sec);
            }
            if (nsec) {
                *p++ = 0x10; /* Timestamp.nanos */
                p = put_varint(p, (uint32_t)nsec);
            }
            *p++ = 0x12; /* EntryAdapter.line */
            p = put_varint(p, r->line_len);
            e->utf8_repaired += copy_line(p, lc_batch_line(b, r), r->line_len);
            p += r->line_len;
            if (ml)
                p = put_meta_pb(p, b, r, &e->utf8_repaired);
            e->raw.len = (size_t)(p - e->raw.data);
        }
    }
    rc = snappy_window(e, out, true);
    if (rc < 0)
        return rc;
    out->data[out->len] = '\0';
    return 0;
}

/* ---- JSON --------------------------------------------------------------- */

int lc_loki_meta_json(struct lc_buf *out, const char *meta, size_t mlen)
{
    struct lc_meta_it it = {meta, meta + mlen};
    const char *n, *v;
    size_t nl, vl;
    int rc = lc_buf_putc(out, '{');

    for (bool first = true; lc_meta_next(&it, &n, &nl, &v, &vl); first = false) {
        rc |= lc_buf_append(out, first ? "\"" : ",\"", first ? 1 : 2);
        rc |= lc_buf_json_str(out, n, nl);
        rc |= lc_buf_append(out, "\":\"", 3);
        rc |= lc_buf_json_str(out, v, vl);
        rc |= lc_buf_putc(out, '"');
    }
    rc |= lc_buf_putc(out, '}');
    return rc ? -ENOMEM : 0;
}

/* Keeps the first error of a run of appends. */
static inline int first_err(int acc, int r)
{
    return acc ? acc : r;
}

/* Appends [{"<kl>":{labels},"<kv>":[["ns","line"],..]},..] for the sorted batch. */
static int json_streams(struct lc_loki_enc *e, const struct lc_batch *b, struct lc_buf *out,
                        const char *kl, const char *kv)
{
    char num[32];
    int rc;

    rc = render_labels(e, true);
    if (rc < 0)
        return rc;
    rc = lc_buf_putc(out, '[');
    for (uint32_t g = 0; g < e->ngroups && rc == 0; g++) {
        const struct lc_loki_group *gr = &e->groups[g];
        rc = first_err(rc, lc_buf_printf(out, "%s{\"%s\":", g ? "," : "", kl));
        rc = first_err(rc, lc_buf_append(out, label_str(e, gr, true), gr->lab_len));
        rc = first_err(rc, lc_buf_printf(out, ",\"%s\":[", kv));
        for (uint32_t i = gr->start; i < gr->start + gr->count && rc == 0; i++) {
            const struct lc_record *r = &b->recs[i];
            size_t nl = 0;
            if (i != gr->start)
                num[nl++] = ',';
            num[nl++] = '[';
            num[nl++] = '"';
            nl += lc_loki_i64toa(r->ts_ns, num + nl);
            num[nl++] = '"';
            num[nl++] = ',';
            num[nl++] = '"';
            rc = lc_buf_append(out, num, nl);
            size_t at = out->len;
            rc = first_err(rc, lc_buf_json_str(out, lc_batch_line(b, r), r->line_len));
            if (rc == 0) /* escapes are ASCII: only the line's own bytes can be invalid */
                e->utf8_repaired += utf8_repair(out->data + at, out->len - at) > 0;
            rc = first_err(rc, lc_buf_putc(out, '"'));
            if (r->meta_len && rc == 0) {
                at = out->len;
                rc = lc_buf_putc(out, ',');
                rc = first_err(rc, lc_loki_meta_json(out, lc_batch_meta(b, r), r->meta_len));
                if (rc == 0)
                    e->utf8_repaired += utf8_repair(out->data + at, out->len - at) > 0;
            }
            rc = first_err(rc, lc_buf_putc(out, ']'));
        }
        rc = first_err(rc, lc_buf_append(out, "]}", 2));
    }
    return first_err(rc, lc_buf_putc(out, ']'));
}

static int compress_gzip(struct lc_loki_enc *e, const struct lc_buf *in, struct lc_buf *out)
{
    size_t max = deflateBound(&e->zs, in->len);
    int rc;

    lc_buf_reset(out);
    rc = lc_buf_reserve(out, max);
    if (rc < 0)
        return rc;
    e->zs.next_in = (Bytef *)in->data;
    e->zs.avail_in = (uInt)in->len;
    e->zs.next_out = (Bytef *)out->data;
    e->zs.avail_out = (uInt)max;
    int zr = deflate(&e->zs, Z_FINISH);
    size_t olen = max - e->zs.avail_out;
    deflateReset(&e->zs);
    if (zr != Z_STREAM_END)
        return -EIO;
    out->len = olen;
    out->data[olen] = '\0';
    return 0;
}

/* ---- entry points ------------------------------------------------------- */

int lc_loki_encode(struct lc_loki_enc *e, struct lc_batch *b, struct lc_buf *out, size_t *raw_len)
{
    int rc;

    if (b->n == 0)
        return -EINVAL;
    e->utf8_repaired = 0;
    rc = lc_loki_sort(e, b);
    if (rc < 0)
        return rc;
    if (e->encoding == LC_LOKI_PROTOBUF) {
        size_t raw = 0;
        rc = encode_protobuf(e, b, out, &raw);
        if (raw_len)
            *raw_len = raw;
        return rc;
    }
    struct lc_buf *dst = e->gzip ? &e->raw : out;
    lc_buf_reset(dst);
    rc = lc_buf_append(dst, "{\"streams\":", 11);
    if (rc == 0)
        rc = json_streams(e, b, dst, "stream", "values");
    if (rc == 0)
        rc = lc_buf_putc(dst, '}');
    if (raw_len)
        *raw_len = dst->len;
    if (rc == 0 && e->gzip)
        rc = compress_gzip(e, &e->raw, out);
    return rc;
}

int lc_loki_streams_json(struct lc_loki_enc *e, struct lc_batch *b, struct lc_buf *out)
{
    int rc = lc_loki_sort(e, b);
    if (rc < 0)
        return rc;
    e->utf8_repaired = 0;
    return json_streams(e, b, out, "labels", "entries");
}
