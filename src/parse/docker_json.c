/* SPDX-License-Identifier: MIT */
/* docker_json.c: Docker json-file line decoder (fast path + general scanner) and partial joiner. */
#include "parse/docker_json.h"

#include <errno.h>
#include <string.h>

#include "parse/timestamp.h"
#include "parse/utf8.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/*
 * Why a hand-written decoder: this is the agent's hot path. Every byte a
 * container writes to stdout goes through here, and DESIGN.md budgets
 * >= 350 MiB/s and <= 3.5 CPU s/GiB for the whole pipeline. A general JSON
 * library builds a DOM (allocations per line, per key) and then we would copy
 * the string again; instead the fast path matches the exact byte layout dockerd
 * writes ({"log":"...","stream":"...",["attrs":{...},]"time":"..."}), unescapes
 * "log" straight into the caller's buffer 16 bytes at a time (copy a block,
 * then look for '"' or '\\' in it) and parses "time" with civil-date
 * arithmetic. Anything that deviates from that layout (key order, whitespace,
 * escapes in keys, unknown keys, nested values) falls back to a small general
 * scanner below that validates and skips values without allocating. Both paths
 * read strictly inside [line, line + len) and write strictly inside
 * [out, out + out_cap).
 */

#define MAX_SKIP_DEPTH 64 /* nesting allowed in skipped values (a bit per level) */

/* Where an unescaped string goes. Bytes that do not fit are counted, not written. */
struct sink {
    char *out;
    size_t cap;     /* shrinks to len when a multi-byte character does not fit */
    size_t len;     /* bytes written */
    size_t dropped; /* bytes of the decoded string not written */
};

static inline bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline const char *skip_ws(const char *p, const char *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

#if defined(__SSE2__)
/* Index of the first '"' or '\\' in the 16 bytes at p, or 16. */
static inline unsigned find16(const char *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i m =
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
    unsigned mask = (unsigned)_mm_movemask_epi8(m);
    return mask ? (unsigned)__builtin_ctz(mask) : 16u;
}

/* Copies the 16 bytes at p to d (all of them) and returns find16(p). */
static inline unsigned copy16_find(const char *p, char *d)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    _mm_storeu_si128((__m128i *)(void *)d, v);
    __m128i m =
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
    unsigned mask = (unsigned)_mm_movemask_epi8(m);
    return mask ? (unsigned)__builtin_ctz(mask) : 16u;
}
#else
/* Portable version: the compiler turns the fixed-size loop into word compares. */
static inline unsigned find16(const char *p)
{
    for (unsigned i = 0; i < 16; i++)
        if (p[i] == '"' || p[i] == '\\')
            return i;
    return 16u;
}

static inline unsigned copy16_find(const char *p, char *d)
{
    memcpy(d, p, 16);
    return find16(p);
}
#endif

static inline void put1(struct sink *k, char c)
{
    if (k->len < k->cap)
        k->out[k->len++] = c;
    else
        k->dropped++;
}

static void put_utf8(struct sink *k, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        put1(k, (char)cp);
        return;
    }
    if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (k->cap - k->len >= n) {
        memcpy(k->out + k->len, b, n);
        k->len += n;
    } else {
        /* never write half a character, nor anything after a gap */
        k->dropped += n;
        k->cap = k->len;
    }
}

/* Four hex digits at p as a number, or -1. */
static inline int32_t hex4(const char *p)
{
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int32_t d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/*
 * Decodes the JSON string whose opening quote precedes p into k. Returns the
 * position after the closing quote, or NULL if the string is malformed or
 * unterminated. *ends_nl tells whether its last decoded character is '\n'.
 */
static const char *decode_string(const char *p, const char *end, struct sink *sk, bool *ends_nl)
{
    /*
     * Work on a local copy: stores through the char pointer out may alias
     * *sk, which would make the compiler reload len and cap after every block.
     */
    struct sink ks = *sk, *k = &ks;
    const char *nl_end = NULL; /* position right after the last decoded '\n' */
    for (;;) {
        if (end - p >= 16) {
            size_t room = k->cap - k->len;
            if (room >= 16) {
                unsigned i = copy16_find(p, k->out + k->len);
                p += i;
                k->len += i;
                if (i == 16)
                    continue;
            } else if (room == 0) {
                unsigned i = find16(p);
                p += i;
                k->dropped += i;
                if (i == 16)
                    continue;
            }
        }
        if (p >= end)
            return NULL;
        char c = *p;
        if (c == '"') {
            *ends_nl = p == nl_end;
            *sk = ks;
            return p + 1;
        }
        if (c != '\\') {
            put1(k, c);
            p++;
            continue;
        }
        if (end - p < 2)
            return NULL;
        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
            put1(k, p[1]);
            break;
        case 'b':
            put1(k, '\b');
            break;
        case 'f':
            put1(k, '\f');
            break;
        case 'n':
            put1(k, '\n');
            nl_end = p + 2;
            break;
        case 'r':
            put1(k, '\r');
            break;
        case 't':
            put1(k, '\t');
            break;
        case 'u': {
            if (end - p < 6)
                return NULL;
            int32_t cp = hex4(p + 2);
            if (cp < 0)
                return NULL;
            p += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int32_t lo = -1;
                if (end - p >= 6 && p[0] == '\\' && p[1] == 'u')
                    lo = hex4(p + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                } else {
                    cp = 0xFFFD; /* lone high surrogate; what follows is decoded on its own */
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD; /* lone low surrogate */
            }
            put_utf8(k, (uint32_t)cp);
            if (cp == '\n')
                nl_end = p;
            continue;
        }
        default:
            return NULL;
        }
        p += 2;
    }
}

/* Skips the rest of a JSON string (p after the opening quote), validating escapes. */
static const char *skip_string(const char *p, const char *end)
{
    for (;;) {
        while (end - p >= 16) {
            unsigned i = find16(p);
            p += i;
            if (i < 16)
                break;
        }
        while (p < end && *p != '"' && *p != '\\')
            p++;
        if (p >= end)
            return NULL;
        if (*p == '"')
            return p + 1;
        if (end - p < 2)
            return NULL;
        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            p += 2;
            break;
        case 'u':
            if (end - p < 6 || hex4(p + 2) < 0)
                return NULL;
            p += 6;
            break;
        default:
            return NULL;
        }
    }
}

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Skips a JSON number as RFC 8259 spells it. */
static const char *skip_number(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (p >= end || !is_digit(*p))
        return NULL;
    if (*p == '0')
        p++;
    else
        while (p < end && is_digit(*p))
            p++;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
    }
    return p;
}

static const char *skip_literal(const char *p, const char *end, const char *lit, size_t n)
{
    if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0)
        return NULL;
    return p + n;
}

/* Skips `"key" ws ':'` (p at the opening quote) and returns the position after ':'. */
static const char *skip_key(const char *p, const char *end)
{
    if (p >= end || *p != '"')
        return NULL;
    p = skip_string(p + 1, end);
    if (!p)
        return NULL;
    p = skip_ws(p, end);
    if (p >= end || *p != ':')
        return NULL;
    return p + 1;
}

/*
 * Skips one JSON value starting at p (leading whitespace allowed), validating
 * its syntax, without recursion: open containers are a bit stack (1 = object).
 * Returns the position after the value, or NULL.
 */
static const char *skip_value(const char *p, const char *end)
{
    uint64_t stack = 0;
    int depth = 0;

value:
    p = skip_ws(p, end);
    if (p >= end)
        return NULL;
    switch (*p) {
    case '"':
        p = skip_string(p + 1, end);
        break;
    case '{':
    case '[': {
        bool obj = *p == '{';
        if (depth == MAX_SKIP_DEPTH)
            return NULL;
        stack = (stack << 1) | (obj ? 1u : 0u);
        depth++;
        p = skip_ws(p + 1, end);
        if (p < end && *p == (obj ? '}' : ']')) {
            stack >>= 1;
            depth--;
            p++;
            break;
        }
        if (obj) {
            p = skip_key(p, end);
            if (!p)
                return NULL;
        }
        goto value;
    }
    case 't':
        p = skip_literal(p, end, "true", 4);
        break;
    case 'f':
        p = skip_literal(p, end, "false", 5);
        break;
    case 'n':
        p = skip_literal(p, end, "null", 4);
        break;
    default:
        p = skip_number(p, end);
        break;
    }

    /* after a value: close containers or go on to the next element */
    for (;;) {
        if (!p)
            return NULL;
        if (depth == 0)
            return p;
        bool obj = stack & 1;
        p = skip_ws(p, end);
        if (p >= end)
            return NULL;
        if (*p == ',') {
            p = skip_ws(p + 1, end);
            if (obj) {
                p = skip_key(p, end);
                if (!p)
                    return NULL;
            }
            goto value;
        }
        if (*p != (obj ? '}' : ']'))
            return NULL;
        stack >>= 1;
        depth--;
        p++;
    }
}

/* Fills dl from a decoded "log" and says whether it was cut. */
static int finish_log(struct lc_docker_line *dl, char *out, const struct sink *k, bool ends_nl)
{
    /* all bytes are dropped once one is, so "dropped == 1" is the final '\n' */
    bool cut = k->dropped > (ends_nl ? 1u : 0u);
    size_t n = k->len;
    if (cut)
        n = lc_utf8_trim_cut(out, n);
    else if (ends_nl && k->dropped == 0)
        n--;
    dl->log = out;
    dl->log_len = n;
    dl->partial = !ends_nl;
    return cut ? -E2BIG : 0;
}

#define FALLBACK 1

#define LIT_LEN(s) (sizeof(s) - 1)

/*
 * The layout dockerd writes, starting after `{"log":"`. Returns 0, -E2BIG,
 * -EINVAL for a broken "log" string, or FALLBACK when the rest of the line
 * is not in the expected layout.
 */
static int decode_fast(const char *p, const char *end, char *out, size_t out_cap,
                       struct lc_docker_line *dl)
{
    static const char k_stream[] = ",\"stream\":\"std";
    static const char k_attrs[] = ",\"attrs\":";
    static const char k_time[] = ",\"time\":\"";
    struct sink k = {out, out_cap, 0, 0};
    bool ends_nl = false;

    p = decode_string(p, end, &k, &ends_nl);
    if (!p)
        return -EINVAL;
    if ((size_t)(end - p) < LIT_LEN(k_stream) + 4 || memcmp(p, k_stream, LIT_LEN(k_stream)) != 0)
        return FALLBACK;
    p += LIT_LEN(k_stream);
    if (memcmp(p, "out\"", 4) == 0)
        dl->stream = LC_STREAM_STDOUT;
    else if (memcmp(p, "err\"", 4) == 0)
        dl->stream = LC_STREAM_STDERR;
    else
        return FALLBACK;
    p += 4;
    if ((size_t)(end - p) > LIT_LEN(k_attrs) && memcmp(p, k_attrs, LIT_LEN(k_attrs)) == 0) {
        p = skip_value(p + LIT_LEN(k_attrs), end);
        if (!p)
            return FALLBACK;
    }
    if ((size_t)(end - p) < LIT_LEN(k_time) || memcmp(p, k_time, LIT_LEN(k_time)) != 0)
        return FALLBACK;
    p += LIT_LEN(k_time);
    size_t used;
    if (lc_ts_parse_rfc3339(p, (size_t)(end - p), &dl->ts_ns, &used) < 0)
        return FALLBACK;
    p += used;
    if (end - p != 2 || p[0] != '"' || p[1] != '}')
        return FALLBACK;
    return finish_log(dl, out, &k, ends_nl);
}

/* Any JSON object; only log, stream and time are looked at. */
static int decode_general(const char *p, const char *end, char *out, size_t out_cap,
                          struct lc_docker_line *dl)
{
    struct sink log = {out, out_cap, 0, 0};
    bool have_log = false, have_stream = false, have_time = false, ends_nl = false;

    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return -EINVAL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return -EINVAL; /* {} has none of the fields */
    for (;;) {
        char key[8];
        struct sink ks = {key, sizeof(key), 0, 0};
        bool nl;
        if (p >= end || *p != '"')
            return -EINVAL;
        p = decode_string(p + 1, end, &ks, &nl);
        if (!p)
            return -EINVAL;
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return -EINVAL;
        p = skip_ws(p + 1, end);
        size_t kl = ks.dropped ? 0 : ks.len; /* a longer key is none of ours */

        if (kl == 3 && memcmp(key, "log", 3) == 0) {
            if (p >= end || *p != '"')
                return -EINVAL;
            log = (struct sink){out, out_cap, 0, 0};
            p = decode_string(p + 1, end, &log, &ends_nl);
            have_log = true;
        } else if (kl == 6 && memcmp(key, "stream", 6) == 0) {
            char v[8];
            struct sink vs = {v, sizeof(v), 0, 0};
            if (p >= end || *p != '"')
                return -EINVAL;
            p = decode_string(p + 1, end, &vs, &nl);
            if (!p || vs.dropped || vs.len != 6)
                return -EINVAL;
            if (memcmp(v, "stdout", 6) == 0)
                dl->stream = LC_STREAM_STDOUT;
            else if (memcmp(v, "stderr", 6) == 0)
                dl->stream = LC_STREAM_STDERR;
            else
                return -EINVAL;
            have_stream = true;
        } else if (kl == 4 && memcmp(key, "time", 4) == 0) {
            char v[64];
            struct sink vs = {v, sizeof(v), 0, 0};
            if (p >= end || *p != '"')
                return -EINVAL;
            p = decode_string(p + 1, end, &vs, &nl);
            if (!p || vs.dropped || lc_ts_parse_rfc3339(v, vs.len, &dl->ts_ns, NULL) < 0)
                return -EINVAL;
            have_time = true;
        } else {
            p = skip_value(p, end);
        }
        if (!p)
            return -EINVAL;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}')
            break;
        return -EINVAL;
    }
    if (skip_ws(p + 1, end) != end || !have_log || !have_stream || !have_time)
        return -EINVAL;
    return finish_log(dl, out, &log, ends_nl);
}

int lc_docker_json_decode(const char *line, size_t len, char *out, size_t out_cap,
                          struct lc_docker_line *dl)
{
    static const char k_head[] = "{\"log\":\"";
    const char *end = line + len;

    while (end > line && is_ws(end[-1]))
        end--;
    if ((size_t)(end - line) > LIT_LEN(k_head) && memcmp(line, k_head, LIT_LEN(k_head)) == 0) {
        int r = decode_fast(line + LIT_LEN(k_head), end, out, out_cap, dl);
        if (r != FALLBACK)
            return r;
    }
    return decode_general(line, end, out, out_cap, dl);
}

void lc_docker_joiner_init(struct lc_docker_joiner *j, char *buf, size_t max_line_bytes)
{
    memset(j, 0, sizeof(*j));
    j->buf = buf;
    j->cap = buf ? max_line_bytes : 0;
}

void lc_docker_joiner_reset(struct lc_docker_joiner *j)
{
    j->len = 0;
    j->ts_ns = 0;
    j->pending = false;
    j->dropped = 0;
}

static int joiner_emit(struct lc_docker_joiner *j, const char **line, size_t *len, int64_t *ts)
{
    size_t n = j->len;
    if (j->dropped)
        n = lc_utf8_trim_cut(j->buf, n);
    j->dropped += j->len - n;
    *line = j->buf;
    *len = n;
    *ts = j->ts_ns;
    j->pending = false; /* buf stays untouched until the next call */
    return 1;
}

int lc_docker_join(struct lc_docker_joiner *j, const struct lc_docker_line *dl, const char **line,
                   size_t *len, int64_t *ts)
{
    if (!j->pending && !dl->partial) {
        /* the common case: a whole line, returned in place */
        size_t n = dl->log_len;
        if (n > j->cap)
            n = lc_utf8_trim_cut(dl->log, j->cap);
        j->dropped = dl->log_len - n;
        *line = dl->log;
        *len = n;
        *ts = dl->ts_ns;
        return 1;
    }
    if (!j->pending) {
        j->pending = true;
        j->ts_ns = dl->ts_ns;
        j->len = 0;
        j->dropped = 0;
    }
    size_t take = dl->log_len;
    if (j->dropped || take > j->cap - j->len)
        take = j->dropped ? 0 : j->cap - j->len;
    if (take)
        memcpy(j->buf + j->len, dl->log, take);
    j->len += take;
    j->dropped += dl->log_len - take;
    if (dl->partial)
        return 0;
    return joiner_emit(j, line, len, ts);
}

int lc_docker_joiner_flush(struct lc_docker_joiner *j, const char **line, size_t *len, int64_t *ts)
{
    if (!j->pending)
        return 0;
    return joiner_emit(j, line, len, ts);
}

const char *lc_json_object_open(const char *p, const char *end)
{
    p = skip_ws(p, end);
    return p < end && *p == '{' ? p + 1 : NULL;
}

int lc_json_object_next(const char **pp, const char *end, struct lc_json_member *m)
{
    const char *p = skip_ws(*pp, end), *k, *v;

    if (p < end && *p == '}') {
        *pp = p + 1;
        return 0;
    }
    if (p >= end || *p != '"')
        return -EINVAL;
    k = p + 1;
    p = skip_string(k, end);
    if (!p)
        return -EINVAL;
    m->key = k;
    m->key_len = (size_t)(p - 1 - k);
    p = skip_ws(p, end);
    if (p >= end || *p != ':')
        return -EINVAL;
    v = skip_ws(p + 1, end);
    p = skip_value(v, end);
    if (!p)
        return -EINVAL;
    m->val = v;
    m->val_len = (size_t)(p - v);
    p = skip_ws(p, end);
    if (p < end && *p == ',') {
        p = skip_ws(p + 1, end);
        if (p >= end || *p != '"')
            return -EINVAL; /* a ',' before '}' */
    } else if (p >= end || *p != '}') {
        return -EINVAL;
    }
    *pp = p;
    return 1;
}

// NOLINTNEXTLINE(readability-non-const-parameter): written through the sink
long lc_json_string_decode(const char *val, size_t len, char *out, size_t cap)
{
    struct sink k = {.out = out, .cap = cap};
    bool nl;

    if (len < 2 || val[0] != '"' || !decode_string(val + 1, val + len, &k, &nl))
        return -EINVAL;
    return k.dropped ? -E2BIG : (long)k.len;
}
