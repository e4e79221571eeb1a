/* SPDX-License-Identifier: MIT */
/* test_loki_encode.c: Loki bodies decoded back (protobuf-c + snappy, a JSON parser, zlib). */
#include "core/batch.h"
#include "core/labels.h"
#include "core/meta.h"
#include "loki_push.pb-c.h"
#include "output/loki_encode.h"
#include "lc_alloc_fail.h"

#include <errno.h>
#include <setjmp.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#define NS 1000000000LL

/* ---- helpers ---------------------------------------------------------------- */

static struct lc_labels *mk_labels(const char *k1, const char *v1, const char *k2, const char *v2)
{
    struct lc_kv kv[2] = {{(char *)k1, (char *)v1}, {(char *)k2, (char *)v2}};
    struct lc_labels *l = NULL;
    assert_int_equal(lc_labels_intern(kv, k2 ? 2 : 1, &l), 0);
    return l;
}

static void add(struct lc_batch *b, const struct lc_labels *l, int64_t ts, const char *line)
{
    size_t n = strlen(line);
    struct lc_record *r = &b->recs[b->n++];
    assert_true(b->n <= b->recs_cap && b->used + n <= b->arena_cap);
    r->ts_ns = ts;
    r->labels = l;
    r->line_off = b->used;
    r->line_len = (uint32_t)n;
    memcpy(b->arena + b->used, line, n);
    b->used += (uint32_t)n;
}

static Logproto__PushRequest *decode_pb(const struct lc_buf *body, size_t raw_len)
{
    size_t ulen = 0;
    assert_int_equal(snappy_uncompressed_length(body->data, body->len, &ulen), SNAPPY_OK);
    assert_int_equal(ulen, raw_len);
    char *raw = malloc(ulen + 1);
    assert_int_equal(snappy_uncompress(body->data, body->len, raw, &ulen), SNAPPY_OK);
    Logproto__PushRequest *req = logproto__push_request__unpack(NULL, ulen, (const uint8_t *)raw);
    free(raw);
    assert_non_null(req);
    return req;
}

static int64_t pb_ts(const Logproto__EntryAdapter *e)
{
    if (!e->timestamp)
        return 0;
    return (int64_t)((__int128)e->timestamp->seconds * NS + e->timestamp->nanos);
}

/* ---- a small JSON DOM, enough to check what we produce ---------------------- */

enum jt { J_NULL, J_STR, J_NUM, J_OBJ, J_ARR, J_BOOL };
struct jv {
    enum jt t;
    char *s;
    size_t slen;
    double num;
    struct jv *kids;
    char **keys;
    size_t n;
};

struct jr {
    const char *p, *end;
};

static void jws(struct jr *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\t' || *r->p == '\r'))
        r->p++;
}

static bool jparse(struct jr *r, struct jv *v);

static bool jstring(struct jr *r, char **out, size_t *len)
{
    size_t cap = 16, n = 0;
    char *s = malloc(cap);
    if (r->p >= r->end || *r->p != '"')
        goto bad;
    r->p++;
    while (r->p < r->end && *r->p != '"') {
        unsigned char c = (unsigned char)*r->p++;
        if (c < 0x20)
            goto bad; /* raw control characters are invalid JSON */
        if (n + 8 > cap)
            s = realloc(s, cap *= 2);
        if (c != '\\') {
            s[n++] = (char)c;
            continue;
        }
        if (r->p >= r->end)
            goto bad;
        c = (unsigned char)*r->p++;
        const char *m = strchr("\"\\/bfnrt", c);
        if (m && c) {
            static const char rep[] = "\"\\/\b\f\n\r\t";
            s[n++] = rep[m - "\"\\/bfnrt"];
        } else if (c == 'u' && r->end - r->p >= 4) {
            unsigned cp;
            if (sscanf(r->p, "%4x", &cp) != 1)
                goto bad;
            r->p += 4;
            if (cp >= 0x80)
                goto bad; /* the encoder only escapes control characters */
            s[n++] = (char)cp;
        } else {
            goto bad;
        }
    }
    if (r->p >= r->end)
        goto bad;
    r->p++;
    s[n] = '\0';
    *out = s;
    *len = n;
    return true;
bad:
    free(s);
    return false;
}

static bool jparse(struct jr *r, struct jv *v)
{
    memset(v, 0, sizeof(*v));
    jws(r);
    if (r->p >= r->end)
        return false;
    if (*r->p == '"') {
        v->t = J_STR;
        return jstring(r, &v->s, &v->slen);
    }
    if (*r->p == '{' || *r->p == '[') {
        bool obj = *r->p == '{';
        char close = obj ? '}' : ']';
        v->t = obj ? J_OBJ : J_ARR;
        r->p++;
        jws(r);
        if (r->p < r->end && *r->p == close) {
            r->p++;
            return true;
        }
        for (;;) {
            v->kids = realloc(v->kids, (v->n + 1) * sizeof(*v->kids));
            v->keys = realloc(v->keys, (v->n + 1) * sizeof(*v->keys));
            v->keys[v->n] = NULL;
            if (obj) {
                size_t kl;
                jws(r);
                if (!jstring(r, &v->keys[v->n], &kl))
                    return false;
                jws(r);
                if (r->p >= r->end || *r->p++ != ':')
                    return false;
            }
            if (!jparse(r, &v->kids[v->n]))
                return false;
            v->n++;
            jws(r);
            if (r->p < r->end && *r->p == ',') {
                r->p++;
                continue;
            }
            if (r->p < r->end && *r->p == close) {
                r->p++;
                return true;
            }
            return false;
        }
    }
    char *e;
    v->num = strtod(r->p, &e);
    if (e == r->p)
        return false;
    v->t = J_NUM;
    r->p = e;
    return true;
}

static void jfree(struct jv *v)
{
    for (size_t i = 0; i < v->n; i++) {
        jfree(&v->kids[i]);
        free(v->keys[i]);
    }
    free(v->kids);
    free(v->keys);
    free(v->s);
}

static struct jv *jget(struct jv *o, const char *k)
{
    assert_int_equal(o->t, J_OBJ);
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->keys[i], k) == 0)
            return &o->kids[i];
    fail_msg("no key %s", k);
    return NULL;
}

static void json_doc(const char *p, size_t n, struct jv *out)
{
    struct jr r = {p, p + n};
    if (!jparse(&r, out))
        fail_msg("invalid JSON near offset %td: %.40s", r.p - p, r.p);
    jws(&r);
    assert_true(r.p == r.end);
}

/* ---- fixtures ------------------------------------------------------------------ */

struct fx {
    struct lc_labels *a, *b, *c;
    struct lc_batch *batch;
};

/*
 * Three streams interleaved; within stream a the times are out of order and
 * two records share a timestamp (stability: "a2" before "a3").
 */
static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->a = mk_labels("job", "app", "filename", "/var/log/a.log");
    f->b = mk_labels("job", "db", NULL, NULL);
    f->c = mk_labels("job", "q\"uo\\te\nnl", NULL, NULL);
    f->batch = lc_batch_new(1 << 16, 64);
    add(f->batch, f->a, 1700000000 * NS + 5, "a1");
    add(f->batch, f->b, 1700000000 * NS + 1, "b1");
    add(f->batch, f->a, 1700000000 * NS + 3, "a2");
    add(f->batch, f->c, 1700000001 * NS, "c1 \"quoted\" \\ \x01 tab\t");
    add(f->batch, f->a, 1700000000 * NS + 3, "a3");
    add(f->batch, f->b, 1700000000 * NS + 2, "b2");
    add(f->batch, f->a, 1699999999 * NS, "a0");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    lc_batch_free(f->batch);
    lc_labels_release(f->a);
    lc_labels_release(f->b);
    lc_labels_release(f->c);
    free(f);
    return 0;
}

static const struct {
    const char *line;
    int64_t ts;
} want_a[] = {{"a0", 1699999999 * NS},
              {"a2", 1700000000 * NS + 3},
              {"a3", 1700000000 * NS + 3},
              {"a1", 1700000000 * NS + 5}},
  want_b[] = {{"b1", 1700000000 * NS + 1}, {"b2", 1700000000 * NS + 2}};

/* ---- tests --------------------------------------------------------------------- */

static void test_protobuf_roundtrip(void **state)
{
    struct fx *f = *state;
    struct lc_loki_enc *e;
    struct lc_buf out;
    size_t raw = 0;

    assert_int_equal(lc_loki_enc_new(&e, LC_LOKI_PROTOBUF, false, NULL, 0, 1 << 20), 0);
    assert_string_equal(lc_loki_enc_content_type(e), "application/x-protobuf");
    assert_null(lc_loki_enc_content_encoding(e));
    lc_buf_init(&out, 1 << 20);
    assert_int_equal(lc_loki_encode(e, f->batch, &out, &raw), 0);
    Logproto__PushRequest *req = decode_pb(&out, raw);
    assert_int_equal(req->n_streams, 3);
    /* streams in order of first appearance, labels as Loki reads them */
    assert_string_equal(req->streams[0]->labels, f->a->loki);
    assert_string_equal(req->streams[0]->labels, "{filename=\"/var/log/a.log\", job=\"app\"}");
    assert_string_equal(req->streams[1]->labels, "{job=\"db\"}");
    assert_string_equal(req->streams[2]->labels, "{job=\"q\\\"uo\\\\te\\nnl\"}");
    assert_int_equal(req->streams[0]->n_entries, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(req->streams[0]->entries[i]->line, want_a[i].line);
        assert_int_equal(pb_ts(req->streams[0]->entries[i]), want_a[i].ts);
        assert_int_equal(req->streams[0]->entries[i]->n_structuredmetadata, 0);
    }
    assert_int_equal(req->streams[1]->n_entries, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(req->streams[1]->entries[i]->line, want_b[i].line);
        assert_int_equal(pb_ts(req->streams[1]->entries[i]), want_b[i].ts);
    }
    assert_string_equal(req->streams[2]->entries[0]->line, "c1 \"quoted\" \\ \x01 tab\t");
    assert_int_equal(req->streams[2]->entries[0]->timestamp->nanos, 0);
    logproto__push_request__free_unpacked(req, NULL);
    /* encoding again (a retry) gives the same bytes */
    struct lc_buf again;
    lc_buf_init(&again, 1 << 20);
    assert_int_equal(lc_loki_encode(e, f->batch, &again, NULL), 0);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.data, out.data, out.len);
    lc_buf_free(&again);
    lc_buf_free(&out);
    lc_loki_enc_free(e);
}

/*
 * A body of many snappy fragments (64 KiB each, compressed one by one into
 * the body): lines across fragment ends, one line longer than a fragment,
 * invalid UTF-8 before and after a line's first 32 bytes.
 */
static void test_protobuf_fragments(void **state)
{
    struct lc_labels *l = mk_labels("job", "frag", NULL, NULL);
    struct lc_batch *b = lc_batch_new(1 << 20, 4096);
    struct lc_loki_enc *e;
    struct lc_buf out;
    static char line[100001];
    size_t raw = 0;
    uint32_t n = 0;

    (void)state;
    assert_non_null(b);
    for (; b->used < 600000; n++) {
        size_t len = n == 7 ? 100000 : 50 + n * 37 % 400;
        for (size_t i = 0; i < len; i++)
            line[i] = (char)('a' + (n + i) % 26);
        line[len] = '\0';
        if (n % 5 == 1)
            line[len / 2] = (char)0xff; /* invalid: becomes '?' */
        if (n % 5 == 2)
            memcpy(line + len - 3, "\xc3\xa9", 2); /* valid: kept */
        add(b, l, 1700000000 * NS + n, line);
    }
    assert_int_equal(lc_loki_enc_new(&e, LC_LOKI_PROTOBUF, false, NULL, 0, 1 << 22), 0);
    lc_buf_init(&out, 1 << 22);
    assert_int_equal(lc_loki_encode(e, b, &out, &raw), 0);
    assert_true(raw > 600000);
    assert_int_equal(lc_loki_enc_utf8_repaired(e), (n + 3) / 5);
    Logproto__PushRequest *req = decode_pb(&out, raw);
    assert_int_equal(req->n_streams, 1);
    assert_int_equal(req->streams[0]->n_entries, n);
    for (uint32_t k = 0; k < n; k++) {
        const struct lc_record *r = &b->recs[k];
        const char *got = req->streams[0]->entries[k]->line;
        assert_int_equal(strlen(got), r->line_len);
        for (uint32_t i = 0; i < r->line_len; i++) {
            char want = lc_batch_line(b, r)[i];
            assert_int_equal(got[i], want == (char)0xff ? '?' : want);
        }
        assert_int_equal(pb_ts(req->streams[0]->entries[k]), 1700000000 * NS + k);
    }
    logproto__push_request__free_unpacked(req, NULL);
    lc_buf_free(&out);
    lc_loki_enc_free(e);
    lc_batch_free(b);
    lc_labels_release(l);
}

static void test_protobuf_timestamps(void **state)
{
    struct lc_labels *l = mk_labels("job", "t", NULL, NULL);
    struct lc_batch *b = lc_batch_new(4096, 16);
    static const int64_t ts[] = {
        0,         1,
        999999999, NS,
        -1,        -NS,
        -NS - 1,   1700000000LL * NS + 123456789,
        INT64_MAX, INT64_MIN + 1,
    };
    struct lc_loki_enc *e;
    struct lc_buf out;
    size_t raw;

    (void)state;
    for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++)
        add(b, l, ts[i], "x");
    assert_int_equal(lc_loki_enc_new(&e, LC_LOKI_PROTOBUF, false, NULL, 0, 1 << 20), 0);
    lc_buf_init(&out, 1 << 20);
    assert_int_equal(lc_loki_encode(e, b, &out, &raw), 0);
    Logproto__PushRequest *req = decode_pb(&out, raw);
    assert_int_equal(req->n_streams, 1);
    assert_int_equal(req->streams[0]->n_entries, sizeof(ts) / sizeof(ts[0]));
    int64_t prev = INT64_MIN;
    for (size_t i = 0; i < req->streams[0]->n_entries; i++) {
        const Logproto__EntryAdapter *en = req->streams[0]->entries[i];
        /* Timestamp form: nanos always in [0, 1e9) */
        assert_non_null(en->timestamp);
        assert_true(en->timestamp->nanos >= 0 && en->timestamp->nanos < NS);
        __int128 v = (__int128)en->timestamp->seconds * NS + en->timestamp->nanos;
        assert_true(v >= prev);
        prev = (int64_t)v;
    }
    /* every input time is there once */
    for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
        int hits = 0;
        for (size_t k = 0; k < req->streams[0]->n_entries; k++)
            hits += pb_ts(req->streams[0]->entries[k]) == ts[i];
        assert_int_equal(hits, 1);
    }
    logproto__push_request__free_unpacked(req, NULL);
    lc_buf_free(&out);
    lc_loki_enc_free(e);
    lc_batch_free(b);
    lc_labels_release(l);
}

static void test_static_labels(void **state)
{
    struct fx *f = *state;
    struct lc_kv st[] = {{"host", "h1"}, {"job", "static"}, {"my-label", "v\"q"}, {"host", "h2"}};
    struct lc_loki_enc *e;
    struct lc_buf out;
    size_t raw;

    assert_int_equal(lc_loki_enc_new(&e, LC_LOKI_PROTOBUF, false, st, 4, 1 << 20), 0);
    lc_buf_init(&out, 1 << 20);
    assert_int_equal(lc_loki_encode(e, f->batch, &out, &raw), 0);
    Logproto__PushRequest *req = decode_pb(&out, raw);
    /* the record's job wins; names sanitised; the later "host" wins; sorted */
    assert_string_equal(req->streams[0]->labels,
                        "{filename=\"/var/log/a.log\", host=\"h2\", job=\"app\", "
                        "my_label=\"v\\\"q\"}");
    assert_string_equal(req->streams[1]->labels, "{host=\"h2\", job=\"db\", my_label=\"v\\\"q\"}");
    logproto__push_request__free_unpacked(req, NULL);

    /* and in JSON */
    lc_loki_enc_free(e);
    assert_int_equal(lc_loki_enc_new(&e, LC_LOKI_JSON, false, st, 4, 1 << 20), 0);
    assert_int_equal(lc_loki_encode(e, f->batch, &out, &raw), 0);
    struct jv doc;
    json_doc(out.data, out.len, &doc);
    struct jv *s0 = jget(&jget(&doc, "streams")->kids[0], "stream");
    assert_int_equal(s0->n, 4);
    assert_string_equal(jget(s0, "job")->s, "app");
    assert_string_equal(jget(s0, "host")->s, "h2");
    assert_string_equal(jget(s0, "my_label")->s, "v\"q");
    jfree(&doc);
    lc_buf_free(&out);
    lc_loki_enc_free(e);

    /* more than Loki's 15 static labels is refused */
    struct lc_kv many[16];
    char names[16][8];
    for (int i = 0; i < 16; i++) {
        snprintf(names[i], sizeof(names[i]), "l%d", i);
        many[i].key = names[i];
        many[i].value = "v";
    }
    assert_int_equal(lc_loki_enc_new(&e, LC_LOKI_JSON, false, many, 16, 1 << 20), -EINVAL);
    assert_null(e);
}

static void check_json_body(struct fx *f, const char *p, size_t n)
{
    struct jv doc;
    json_doc(p, n, &doc);
    struct jv *streams = jget(&doc, "streams");
    assert_int_equal(streams->t, J_ARR);
    assert_int_equal(streams->n, 3);
    struct jv *sa = &streams->kids[0], *sb = &streams->kids[1], *sc = &streams->kids[2];
    assert_string_equal(jget(jget(sa, "stream"), "job")->s, "app");
    assert_string_equal(jget(jget(sa, "stream"), "filename")->s, "/var/log/a.log");
    assert_string_equal(jget(jget(sc, "stream"), "job")->s, "q\"uo\\te\nnl");
    struct jv *va = jget(sa, "values");
    assert_int_equal(va->n, 4);
    for (size_t i = 0; i < 4; i++) {
        char ts[32];
        snprintf(ts, sizeof(ts), "%lld", (long long)want_a[i].ts);
        assert_int_equal(va->kids[i].n, 2);
        assert_int_equal(va->kids[i].kids[0].t, J_STR); /* Loki wants ns as a string */
        assert_string_equal(va->kids[i].kids[0].s, ts);
        assert_string_equal(va->kids[i].kids[1].s, want_a[i].line);
    }
    assert_int_equal(jget(sb, "values")->n, 2);
    struct jv *c1 = &jget(sc, "values")->kids[0].kids[1];
    assert_int_equal(c1->slen, strlen("c1 \"quoted\" \\ \x01 tab\t"));
    assert_string_equal(c1->s, "c1 \"quoted\" \\ \x01 tab\t");
    (void)f;
    jfree(&doc);
}

static void test_json(void **state)
{
    struct fx *f = *state;
    struct lc_loki_enc *e;
    struct lc_buf out;
    size_t raw = 0;

    assert_int_equal(lc_loki_enc_new(&e, LC_LOKI_JSON, false, NULL, 0, 1 << 20), 0);
    assert_string_equal(lc_loki_enc_content_type(e), "application/json");
    assert_null(lc_loki_enc_content_encoding(e));
    lc_buf_init(&out, 1 << 20);
    assert_int_equal(lc_loki_encode(e, f->batch, &out, &raw), 0);
    assert_int_equal(raw, out.len);
    check_json_body(f, out.data, out.len);
    lc_buf_free(&out);
    lc_loki_enc_free(e);
}

static void test_json_gzip(void **state)
{
    struct fx *f = *state;
    struct lc_loki_enc *e, *plain;
    struct lc_buf out, ref;
    size_t raw = 0;

    assert_int_equal(lc_loki_enc_new(&e, LC_LOKI_JSON, true, NULL, 0, 1 << 20), 0);
    assert_int_equal(lc_loki_enc_new(&plain, LC_LOKI_JSON, false, NULL, 0, 1 << 20), 0);
    assert_string_equal(lc_loki_enc_content_encoding(e), "gzip");
    lc_buf_init(&out, 1 << 20);
    lc_buf_init(&ref, 1 << 20);
    assert_int_equal(lc_loki_encode(plain, f->batch, &ref, NULL), 0);
    /* twice: the deflate stream is reset between bodies */
    for (int round = 0; round < 2; round++) {
        assert_int_equal(lc_loki_encode(e, f->batch, &out, &raw), 0);
        assert_int_equal(raw, ref.len);
        assert_true((unsigned char)out.data[0] == 0x1f && (unsigned char)out.data[1] == 0x8b);
        z_stream zs = {0};
        char *dec = malloc(raw + 16);
        assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
        zs.next_in = (Bytef *)out.data;
        zs.avail_in = (uInt)out.len;
        zs.next_out = (Bytef *)dec;
        zs.avail_out = (uInt)raw + 16;
        assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
        assert_int_equal(zs.total_out, ref.len);
        assert_memory_equal(dec, ref.data, ref.len);
        inflateEnd(&zs);
        check_json_body(f, dec, zs.total_out);
        free(dec);
    }
    /* protobuf ignores gzip: snappy only */
    struct lc_loki_enc *pb;
    assert_int_equal(lc_loki_enc_new(&pb, LC_LOKI_PROTOBUF, true, NULL, 0, 1 << 20), 0);
    assert_null(lc_loki_enc_content_encoding(pb));
    lc_loki_enc_free(pb);
    lc_buf_free(&out);
    lc_buf_free(&ref);
    lc_loki_enc_free(e);
    lc_loki_enc_free(plain);
}

static void test_streams_json_for_dlq(void **state)
{
    struct fx *f = *state;
    struct lc_loki_enc *e;
    struct lc_buf out;

    assert_int_equal(lc_loki_enc_new(&e, LC_LOKI_PROTOBUF, false, NULL, 0, 1 << 20), 0);
    lc_buf_init(&out, 1 << 20);
    assert_int_equal(lc_buf_append(&out, "{\"streams\":", 11), 0);
    assert_int_equal(lc_loki_streams_json(e, f->batch, &out), 0);
    assert_int_equal(lc_buf_putc(&out, '}'), 0);
    struct jv doc;
    json_doc(out.data, out.len, &doc);
    struct jv *s = jget(&doc, "streams");
    assert_int_equal(s->n, 3);
    assert_string_equal(jget(jget(&s->kids[1], "labels"), "job")->s, "db");
    assert_int_equal(jget(&s->kids[0], "entries")->n, 4);
    jfree(&doc);
    lc_buf_free(&out);
    lc_loki_enc_free(e);
}

/* Adds a record with metadata pairs name0, value0, name1, value1, .. (NULL-terminated). */
static void add_meta(struct lc_batch *b, const struct lc_labels *l, int64_t ts, const char *line,
                     ...)
{
    va_list ap;
    add(b, l, ts, line);
    struct lc_record *r = &b->recs[b->n - 1];
    r->meta_off = b->used;
    va_start(ap, line);
    for (const char *n = va_arg(ap, const char *); n; n = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        b->used += (uint32_t)lc_meta_put(b->arena + b->used, n, strlen(n), v, strlen(v));
    }
    va_end(ap);
    r->meta_len = b->used - r->meta_off;
    assert_true(b->used <= b->arena_cap);
}

/*
 * Structured metadata: EntryAdapter field 3 in protobuf, the entry's third
 * element in JSON (and in the DLQ form); records without it have none; the
 * pairs follow their record through the sort; invalid UTF-8 in a value is
 * repaired like a line's.
 */
static void test_structured_metadata(void **state)
{
    struct lc_labels *a = mk_labels("job", "app", NULL, NULL);
    struct lc_batch *b = lc_batch_new(1 << 16, 64);
    struct lc_loki_enc *e;
    struct lc_buf out;
    size_t raw = 0;

    (void)state;
    add_meta(b, a, 3 * NS, "third", "trace_id", "abc", "user", "q\"uo\\te\n", NULL);
    add(b, a, 2 * NS, "second");
    add_meta(b, a, 1 * NS, "first", "bad", "x\xffy", NULL);
    lc_buf_init(&out, 1 << 20);

    assert_int_equal(lc_loki_enc_new(&e, LC_LOKI_PROTOBUF, false, NULL, 0, 1 << 20), 0);
    assert_int_equal(lc_loki_encode(e, b, &out, &raw), 0);
    assert_int_equal(lc_loki_enc_utf8_repaired(e), 1);
    Logproto__PushRequest *req = decode_pb(&out, raw);
    assert_int_equal(req->n_streams, 1);
    Logproto__EntryAdapter **en = req->streams[0]->entries;
    assert_int_equal(req->streams[0]->n_entries, 3);
    assert_string_equal(en[0]->line, "first");
    assert_int_equal(en[0]->n_structuredmetadata, 1);
    assert_string_equal(en[0]->structuredmetadata[0]->name, "bad");
    assert_string_equal(en[0]->structuredmetadata[0]->value, "x?y");
    assert_string_equal(en[1]->line, "second");
    assert_int_equal(en[1]->n_structuredmetadata, 0);
    assert_string_equal(en[2]->line, "third");
    assert_int_equal(pb_ts(en[2]), 3 * NS);
    assert_int_equal(en[2]->n_structuredmetadata, 2);
    assert_string_equal(en[2]->structuredmetadata[0]->name, "trace_id");
    assert_string_equal(en[2]->structuredmetadata[0]->value, "abc");
    assert_string_equal(en[2]->structuredmetadata[1]->name, "user");
    assert_string_equal(en[2]->structuredmetadata[1]->value, "q\"uo\\te\n");
    logproto__push_request__free_unpacked(req, NULL);
    lc_loki_enc_free(e);

    for (int dlq = 0; dlq < 2; dlq++) {
        struct jv doc;
        assert_int_equal(lc_loki_enc_new(&e, LC_LOKI_JSON, false, NULL, 0, 1 << 20), 0);
        if (dlq) {
            lc_buf_reset(&out);
            assert_int_equal(lc_buf_append(&out, "{\"streams\":", 11), 0);
            assert_int_equal(lc_loki_streams_json(e, b, &out), 0);
            assert_int_equal(lc_buf_putc(&out, '}'), 0);
        } else {
            assert_int_equal(lc_loki_encode(e, b, &out, &raw), 0);
        }
        json_doc(out.data, out.len, &doc);
        struct jv *v = jget(&jget(&doc, "streams")->kids[0], dlq ? "entries" : "values");
        assert_int_equal(v->n, 3);
        assert_int_equal(v->kids[0].n, 3);
        assert_string_equal(jget(&v->kids[0].kids[2], "bad")->s, "x?y");
        assert_int_equal(v->kids[1].n, 2); /* no metadata: no third element */
        assert_int_equal(v->kids[2].n, 3);
        assert_int_equal(v->kids[2].kids[2].n, 2);
        assert_string_equal(jget(&v->kids[2].kids[2], "trace_id")->s, "abc");
        assert_string_equal(jget(&v->kids[2].kids[2], "user")->s, "q\"uo\\te\n");
        jfree(&doc);
        lc_loki_enc_free(e);
    }
    lc_buf_free(&out);
    lc_batch_free(b);
    lc_labels_release(a);
}

static void test_caps_and_errors(void **state)
{
    struct fx *f = *state;
    struct lc_loki_enc *e;
    struct lc_buf small;
    struct lc_batch *empty = lc_batch_new(16, 4);

    for (int enc = 0; enc < 2; enc++) {
        assert_int_equal(lc_loki_enc_new(&e, (enum lc_loki_encoding)enc, false, NULL, 0, 1 << 20),
                         0);
        lc_buf_init(&small, 32);
        assert_int_equal(lc_loki_encode(e, f->batch, &small, NULL), -E2BIG);
        assert_int_equal(lc_loki_encode(e, empty, &small, NULL), -EINVAL);
        lc_buf_free(&small);
        lc_loki_enc_free(e);
        /* the encoder's own cap on the uncompressed body */
        assert_int_equal(lc_loki_enc_new(&e, (enum lc_loki_encoding)enc, true, NULL, 0, 40), 0);
        lc_buf_init(&small, 1 << 20);
        assert_int_equal(lc_loki_encode(e, f->batch, &small, NULL), -E2BIG);
        lc_buf_free(&small);
        lc_loki_enc_free(e);
    }
    lc_loki_enc_free(NULL);
    lc_batch_free(empty);
}

static void test_validate(void **state)
{
    const int64_t now = 1700000000LL * NS;
    const int64_t H = 3600 * NS;
    static const struct {
        int policy;
        int64_t max_age, max_future;
        uint32_t left;
        uint64_t dropped, clamped, sent, future;
    } rows[] = {
        {LC_LOKI_TOO_OLD_DROP, 168 * 3600 * NS, 600 * NS, 3, 2, 0, 0, 1},
        {LC_LOKI_TOO_OLD_CLAMP, 168 * 3600 * NS, 600 * NS, 5, 0, 2, 0, 1},
        {LC_LOKI_TOO_OLD_SEND, 168 * 3600 * NS, 600 * NS, 5, 0, 0, 2, 1},
        {LC_LOKI_TOO_OLD_DROP, 0, 0, 5, 0, 0, 0, 0}, /* both checks off */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct lc_labels *l = mk_labels("job", "v", NULL, NULL);
        struct lc_batch *b = lc_batch_new(4096, 16);
        add(b, l, now - 240 * H, "ten days old");
        add(b, l, now - H, "an hour old");
        add(b, l, now - 169 * H, "just too old");
        add(b, l, now + 3600 * NS, "an hour ahead");
        add(b, l, now + 60 * NS, "a minute ahead");
        struct lc_loki_ts_policy p = {rows[i].max_age, rows[i].policy, rows[i].max_future};
        struct lc_loki_ts_counts c = {0};
        assert_int_equal(lc_loki_validate(&p, b, now, &c), rows[i].left);
        assert_int_equal(b->n, rows[i].left);
        assert_int_equal(c.old_dropped, rows[i].dropped);
        assert_int_equal(c.old_clamped, rows[i].clamped);
        assert_int_equal(c.old_sent, rows[i].sent);
        assert_int_equal(c.future_clamped, rows[i].future);
        for (uint32_t k = 0; k < b->n; k++) {
            const struct lc_record *r = &b->recs[k];
            const char *line = lc_batch_line(b, r);
            if (rows[i].max_age && rows[i].policy != LC_LOKI_TOO_OLD_SEND)
                assert_true(r->ts_ns > now - rows[i].max_age); /* inside Loki's window */
            if (rows[i].max_future)
                assert_true(r->ts_ns <= now + rows[i].max_future);
            if (strncmp(line, "an hour old", r->line_len) == 0)
                assert_int_equal(r->ts_ns, now - H); /* untouched */
            if (rows[i].policy == LC_LOKI_TOO_OLD_CLAMP && rows[i].max_age &&
                strncmp(line, "ten days old", r->line_len) == 0)
                assert_int_equal(r->ts_ns, now - rows[i].max_age + 60 * NS);
        }
        /* order of the survivors is kept */
        if (rows[i].policy == LC_LOKI_TOO_OLD_DROP && rows[i].max_age) {
            assert_memory_equal(lc_batch_line(b, &b->recs[0]), "an hour old", 11);
            assert_memory_equal(lc_batch_line(b, &b->recs[1]), "an hour ahead", 13);
        }
        lc_batch_free(b);
        lc_labels_release(l);
    }
    /* a tiny max_age clamps to half of it */
    struct lc_labels *l = mk_labels("job", "v", NULL, NULL);
    struct lc_batch *b = lc_batch_new(64, 4);
    add(b, l, now - 100 * NS, "x");
    struct lc_loki_ts_policy p = {60 * NS, LC_LOKI_TOO_OLD_CLAMP, 0};
    struct lc_loki_ts_counts c = {0};
    assert_int_equal(lc_loki_validate(&p, b, now, &c), 1);
    assert_int_equal(b->recs[0].ts_ns, now - 30 * NS);
    lc_batch_free(b);
    lc_labels_release(l);
}

/* The original index a test line carries (6 digits, not NUL-terminated in the arena). */
static int idx_of(const struct lc_batch *b, const struct lc_record *r)
{
    char d[8];
    assert_int_equal(r->line_len, 6);
    memcpy(d, lc_batch_line(b, r), 6);
    d[6] = '\0';
    return (int)strtol(d, NULL, 10);
}

static void test_sort_large(void **state)
{
    enum { N = 20000, SETS = 7 };
    struct lc_labels *ls[SETS];
    struct lc_batch *b = lc_batch_new(N * 8, N);
    struct lc_loki_enc *e;
    uint64_t x = 12345;
    char buf[16];

    (void)state;
    for (int i = 0; i < SETS; i++) {
        snprintf(buf, sizeof(buf), "s%d", i);
        ls[i] = mk_labels("job", buf, NULL, NULL);
    }
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        snprintf(buf, sizeof(buf), "%06d", i); /* the line is its original index */
        add(b, ls[x % SETS], (int64_t)((x >> 8) % 500), buf);
    }
    assert_int_equal(lc_loki_enc_new(&e, LC_LOKI_PROTOBUF, false, NULL, 0, 1 << 24), 0);
    for (int round = 0; round < 2; round++) { /* the second round: already sorted */
        assert_int_equal(lc_loki_sort(e, b), 0);
        assert_int_equal(b->n, N);
        int seen[N] = {0};
        int groups = 1;
        for (uint32_t i = 0; i < b->n; i++) {
            const struct lc_record *r = &b->recs[i];
            int idx = idx_of(b, r);
            seen[idx]++;
            if (i == 0)
                continue;
            const struct lc_record *p = &b->recs[i - 1];
            if (p->labels != r->labels) {
                groups++;
                continue;
            }
            assert_true(p->ts_ns <= r->ts_ns);
            if (p->ts_ns == r->ts_ns) /* stable */
                assert_true(idx_of(b, p) < idx);
        }
        assert_int_equal(groups, SETS); /* each set in one run */
        for (int i = 0; i < N; i++)
            assert_int_equal(seen[i], 1);
    }
    lc_loki_enc_free(e);
    lc_batch_free(b);
    for (int i = 0; i < SETS; i++)
        lc_labels_release(ls[i]);
}

static void test_i64toa(void **state)
{
    static const struct {
        int64_t v;
        const char *s;
    } rows[] = {
        {0, "0"},
        {7, "7"},
        {-1, "-1"},
        {1700000000123456789LL, "1700000000123456789"},
        {INT64_MAX, "9223372036854775807"},
        {INT64_MIN, "-9223372036854775808"},
    };
    char buf[24];
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        size_t n = lc_loki_i64toa(rows[i].v, buf);
        buf[n] = '\0';
        assert_string_equal(buf, rows[i].s);
    }
}

/* ---- allocation failure injection (lc_alloc_fail.h) ------------------------------- */

static const struct lc_kv torture_labels[] = {{"host", "h1"}, {"job", "static"}};

/* One encoder of each kind over f->batch: the push body, then the DLQ's streams, into out[k]. */
static int encode_kinds(struct fx *f, struct lc_buf out[3])
{
    static const struct {
        enum lc_loki_encoding enc;
        bool gzip;
    } kinds[3] = {{LC_LOKI_PROTOBUF, false}, {LC_LOKI_JSON, false}, {LC_LOKI_JSON, true}};
    int first_err = 0;

    for (int k = 0; k < 3; k++) {
        struct lc_loki_enc *e = NULL;
        size_t raw;
        int rc = lc_loki_enc_new(&e, kinds[k].enc, kinds[k].gzip, torture_labels, 2, 1 << 20);
        if (rc == 0)
            rc = lc_loki_encode(e, f->batch, &out[k], &raw);
        if (rc == 0) {
            struct lc_buf streams;
            lc_buf_init(&streams, 1 << 20);
            rc = lc_loki_streams_json(e, f->batch, &streams);
            if (rc == 0)
                rc = lc_buf_append(&out[k], streams.data, streams.len);
            lc_buf_free(&streams);
        }
        if (rc) {
            assert_true(rc == -ENOMEM || rc == -EIO); /* no other error from a failed allocation */
            lc_buf_reset(&out[k]);
            first_err = first_err ? first_err : rc;
        }
        lc_loki_enc_free(e);
    }
    return first_err;
}

/*
 * For every N the N-th allocation of creating the encoders and encoding a
 * fresh batch (sort included) fails: an error, never a crash or a leak, and
 * whatever succeeded is byte for byte what an undisturbed run produced.
 */
static void test_alloc_failures(void **state)
{
    struct lc_buf want[3], got[3];
    void *st = NULL;
    long n;

    (void)state;
    for (int k = 0; k < 3; k++) {
        lc_buf_init(&want[k], 1 << 20);
        lc_buf_init(&got[k], 1 << 20);
    }
    setup(&st);
    assert_int_equal(encode_kinds(st, want), 0);
    teardown(&st);
    for (int k = 0; k < 3; k++) /* allocated before the live count is taken */
        assert_int_equal(lc_buf_reserve(&got[k], want[k].len * 2), 0);
    for (n = 1; n < 100000; n++) {
        long live0;
        bool failed;

        setup(&st);
        for (int k = 0; k < 3; k++)
            lc_buf_reset(&got[k]);
        live0 = lc_alloc_live();
        lc_alloc_fail_at(n);
        int rc = encode_kinds(st, got);
        lc_alloc_fail_at(0);
        failed = lc_alloc_failed();
        assert_int_equal(lc_alloc_live(), live0);
        assert_true(rc == 0 || failed);
        for (int k = 0; k < 3; k++) {
            if (got[k].len == 0)
                continue; /* that kind failed */
            assert_int_equal(got[k].len, want[k].len);
            assert_memory_equal(got[k].data, want[k].data, want[k].len);
        }
        teardown(&st);
        if (!failed)
            break;
    }
    for (int k = 0; k < 3; k++) {
        lc_buf_free(&want[k]);
        lc_buf_free(&got[k]);
    }
    print_message("# %ld allocations failed in turn\n", n - 1);
    assert_true(n > 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_protobuf_roundtrip, setup, teardown),
        cmocka_unit_test(test_protobuf_timestamps),
        cmocka_unit_test(test_protobuf_fragments),
        cmocka_unit_test_setup_teardown(test_static_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streams_json_for_dlq, setup, teardown),
        cmocka_unit_test(test_structured_metadata),
        cmocka_unit_test_setup_teardown(test_caps_and_errors, setup, teardown),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_sort_large),
        cmocka_unit_test(test_i64toa),
        cmocka_unit_test(test_alloc_failures),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    assert_int_equal(lc_labels_live(), 0);
    return rc;
}
