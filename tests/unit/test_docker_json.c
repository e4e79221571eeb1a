/* SPDX-License-Identifier: MIT */
/* test_docker_json.c: json-file line decoder and partial-line joiner, table-driven. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parse/docker_json.h"

#define TS_STR "2025-11-07T15:48:05.123456789Z"
#define TS_NS  1762530485123456789LL
#define TAIL   ",\"stream\":\"stdout\",\"time\":\"" TS_STR "\"}"
#define TAILE  ",\"stream\":\"stderr\",\"time\":\"" TS_STR "\"}"

/* A string literal with its length, so expected logs may hold NUL bytes. */
#define B(s) s, sizeof(s) - 1

struct dj_case {
    const char *line;
    int rc;
    const char *log;
    size_t log_len;
    int stream;
    int64_t ts;
    bool partial;
};

/*
 * Decodes `line` from an exact-size heap copy into an exact-size heap buffer,
 * so that AddressSanitizer catches a read past the line or a write past out.
 */
static int decode_exact(const char *line, size_t len, size_t out_cap, char *copy_out,
                        struct lc_docker_line *dl)
{
    char *in = malloc(len ? len : 1);
    char *out = out_cap ? malloc(out_cap) : NULL;
    assert_non_null(in);
    if (len)
        memcpy(in, line, len);
    int rc = lc_docker_json_decode(in, len, out, out_cap, dl);
    if (rc == 0 || rc == -E2BIG) {
        assert_true(dl->log_len <= out_cap);
        if (dl->log_len)
            memcpy(copy_out, dl->log, dl->log_len);
        dl->log = copy_out;
    }
    free(out);
    free(in);
    return rc;
}

static void run_table(const struct dj_case *t, size_t n)
{
    static char got[1 << 16];
    for (size_t i = 0; i < n; i++) {
        struct lc_docker_line dl;
        memset(&dl, 0, sizeof(dl));
        int rc = decode_exact(t[i].line, strlen(t[i].line), 4096, got, &dl);
        if (rc != t[i].rc)
            fail_msg("case %zu %s: rc %d want %d", i, t[i].line, rc, t[i].rc);
        if (rc != 0)
            continue;
        if (dl.log_len != t[i].log_len || memcmp(dl.log, t[i].log, t[i].log_len) != 0)
            fail_msg("case %zu %s: log (%zu) \"%.*s\" want (%zu) \"%.*s\"", i, t[i].line,
                     dl.log_len, (int)dl.log_len, dl.log, t[i].log_len, (int)t[i].log_len,
                     t[i].log);
        if (dl.stream != t[i].stream || dl.ts_ns != t[i].ts || dl.partial != t[i].partial)
            fail_msg("case %zu %s: stream %d ts %lld partial %d", i, t[i].line, dl.stream,
                     (long long)dl.ts_ns, dl.partial);
    }
}

static void test_basic_and_escapes(void **state)
{
    (void)state;
    static const struct dj_case t[] = {
        {"{\"log\":\"hello\\n\"" TAIL, 0, B("hello"), 1, TS_NS, false},
        {"{\"log\":\"hello\\n\"" TAILE, 0, B("hello"), 2, TS_NS, false},
        {"{\"log\":\"no newline\"" TAIL, 0, B("no newline"), 1, TS_NS, true},
        {"{\"log\":\"\"" TAIL, 0, B(""), 1, TS_NS, true},
        {"{\"log\":\"\\n\"" TAIL, 0, B(""), 1, TS_NS, false},
        {"{\"log\":\"two\\n\\n\"" TAIL, 0, B("two\n"), 1, TS_NS, false},
        {"{\"log\":\"crlf\\r\\n\"" TAIL, 0, B("crlf\r"), 1, TS_NS, false},
        /* every short escape */
        {"{\"log\":\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\\n\"" TAIL, 0,
         B("a\"b\\c/d\be\ff\ng\rh\ti"), 1, TS_NS, false},
        /* \u escapes: 1, 2, 3 byte UTF-8, hex case, NUL and control characters */
        {"{\"log\":\"\\u0041\\u00e9\\u00E9\\u20ac\\uFFFF\"" TAIL, 0,
         B("A\xc3\xa9\xc3\xa9\xe2\x82\xac\xef\xbf\xbf"), 1, TS_NS, true},
        {"{\"log\":\"nul\\u0000ctl\\u001f\\u0007\\u007f\"" TAIL, 0, B("nul\0ctl\x1f\x07\x7f"), 1,
         TS_NS, true},
        {"{\"log\":\"\\u003cb\\u003e \\u0026\"" TAIL, 0, B("<b> &"), 1, TS_NS, true},
        {"{\"log\":\"x\\u000a\"" TAIL, 0, B("x"), 1, TS_NS, false}, /* \u000a ends the line */
        /* surrogate pairs, any hex case */
        {"{\"log\":\"\\ud83d\\ude00\\uD83D\\uDE00\"" TAIL, 0, B("\xf0\x9f\x98\x80\xf0\x9f\x98\x80"),
         1, TS_NS, true},
        {"{\"log\":\"\\udbff\\udfff\\ud800\\udc00\"" TAIL, 0, B("\xf4\x8f\xbf\xbf\xf0\x90\x80\x80"),
         1, TS_NS, true},
        /* lone surrogates become U+FFFD, what follows is decoded on its own */
        {"{\"log\":\"a\\ud83db\"" TAIL, 0,
         B("a\xef\xbf\xbd"
           "b"),
         1, TS_NS, true},
        {"{\"log\":\"\\ud83d\"" TAIL, 0, B("\xef\xbf\xbd"), 1, TS_NS, true},
        {"{\"log\":\"\\ude00x\"" TAIL, 0, B("\xef\xbf\xbdx"), 1, TS_NS, true},
        {"{\"log\":\"\\ud83d\\ud83d\\ude00\"" TAIL, 0, B("\xef\xbf\xbd\xf0\x9f\x98\x80"), 1, TS_NS,
         true},
        {"{\"log\":\"\\ud83d\\u0041\"" TAIL, 0,
         B("\xef\xbf\xbd"
           "A"),
         1, TS_NS, true},
        {"{\"log\":\"\\ud83d\\n\"" TAIL, 0, B("\xef\xbf\xbd"), 1, TS_NS, false},
        {"{\"log\":\"\\ude00\\ud83d\"" TAIL, 0, B("\xef\xbf\xbd\xef\xbf\xbd"), 1, TS_NS, true},
        /* raw bytes pass through: UTF-8, a raw TAB, invalid UTF-8 */
        {"{\"log\":\"caf\xc3\xa9 \xe2\x82\xac\\n\"" TAIL, 0, B("caf\xc3\xa9 \xe2\x82\xac"), 1,
         TS_NS, false},
        {"{\"log\":\"\tat x\\n\"" TAIL, 0, B("\tat x"), 1, TS_NS, false},
        {"{\"log\":\"\xff\xfe\\n\"" TAIL, 0, B("\xff\xfe"), 1, TS_NS, false},
        /* long runs cross the 16-byte blocks with escapes at every offset */
        {"{\"log\":\"0123456789abcde\\\"0123456789abcdef\\\\0123456789abcdefg\\n\"" TAIL, 0,
         B("0123456789abcde\"0123456789abcdef\\0123456789abcdefg"), 1, TS_NS, false},
    };
    run_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_time_fractions(void **state)
{
    (void)state;
    static const int64_t sec = 1762530485000000000LL;
#define L(frac) "{\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"2025-11-07T15:48:05" frac "\"}"
    static const struct dj_case t[] = {
        {L("Z"), 0, B("x"), 1, sec, false},
        {L(".1Z"), 0, B("x"), 1, sec + 100000000, false},
        {L(".12Z"), 0, B("x"), 1, sec + 120000000, false},
        {L(".123Z"), 0, B("x"), 1, sec + 123000000, false},
        {L(".1234Z"), 0, B("x"), 1, sec + 123400000, false},
        {L(".12345Z"), 0, B("x"), 1, sec + 123450000, false},
        {L(".123456Z"), 0, B("x"), 1, sec + 123456000, false},
        {L(".1234567Z"), 0, B("x"), 1, sec + 123456700, false},
        {L(".12345678Z"), 0, B("x"), 1, sec + 123456780, false},
        {L(".123456789Z"), 0, B("x"), 1, sec + 123456789, false},
        {L(".000000001Z"), 0, B("x"), 1, sec + 1, false},
        {L("+01:00"), 0, B("x"), 1, sec - 3600000000000LL, false},
        {L(".Z"), -EINVAL, B(""), 0, 0, false},
        {L(""), -EINVAL, B(""), 0, 0, false},
        {L("Z "), -EINVAL, B(""), 0, 0, false},
    };
#undef L
    run_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_layouts(void **state)
{
    (void)state;
    static const struct dj_case t[] = {
        /* key orders */
        {"{\"time\":\"" TS_STR "\",\"stream\":\"stderr\",\"log\":\"x\\n\"}", 0, B("x"), 2, TS_NS,
         false},
        {"{\"stream\":\"stdout\",\"log\":\"x\",\"time\":\"" TS_STR "\"}", 0, B("x"), 1, TS_NS,
         true},
        {"{\"log\":\"x\\n\",\"time\":\"" TS_STR "\",\"stream\":\"stdout\"}", 0, B("x"), 1, TS_NS,
         false},
        /* whitespace everywhere, and the line's own newline */
        {" { \"log\" : \"x\\n\" ,\n\t\"stream\" : \"stdout\" , \"time\" : \"" TS_STR "\" } \r\n", 0,
         B("x"), 1, TS_NS, false},
        {"{\"log\":\"x\\n\"" TAIL "\n", 0, B("x"), 1, TS_NS, false},
        /* attrs, where dockerd writes it (fast path) and elsewhere */
        {"{\"log\":\"x\\n\",\"stream\":\"stdout\",\"attrs\":{\"tag\":\"web\",\"com.docker.compose."
         "service\":\"api\"},\"time\":\"" TS_STR "\"}",
         0, B("x"), 1, TS_NS, false},
        {"{\"log\":\"x\\n\",\"stream\":\"stdout\",\"attrs\":{},\"time\":\"" TS_STR "\"}", 0, B("x"),
         1, TS_NS, false},
        {"{\"attrs\":{\"a\":\"b\\\"}\"},\"log\":\"x\\n\"" TAIL, 0, B("x"), 1, TS_NS, false},
        /* unknown keys with any value */
        {"{\"log\":\"x\\n\",\"extra\":[1,-2.5e+3,0,{\"a\":[true,false,null,{}]},\"s\\\"q\",[]"
         "]" TAIL,
         0, B("x"), 1, TS_NS, false},
        {"{\"n\":-0.0E-1,\"log\":\"x\\n\",\"t\":true,\"f\":false,\"z\":null" TAIL, 0, B("x"), 1,
         TS_NS, false},
        /* escaped keys, duplicate keys (the last one counts) */
        {"{\"\\u006cog\":\"x\\n\",\"str\\u0065am\":\"stdout\",\"time\":\"" TS_STR "\"}", 0, B("x"),
         1, TS_NS, false},
        {"{\"log\":\"first\\n\",\"log\":\"second\"" TAIL, 0, B("second"), 1, TS_NS, true},
        {"{\"log\":\"x\",\"stream\":\"stdout\",\"stream\":\"stderr\",\"time\":\"" TS_STR "\"}", 0,
         B("x"), 2, TS_NS, true},
        /* escapes inside the values of stream and time */
        {"{\"log\":\"x\",\"stream\":\"std\\u006fut\",\"time\":\"2025-11-07T15:48:05."
         "123456789\\u005a"
         "\"}",
         0, B("x"), 1, TS_NS, true},
        /* a long key that only starts like ours */
        {"{\"logger_name_is_long\":\"y\",\"log\":\"x\"" TAIL, 0, B("x"), 1, TS_NS, true},
    };
    run_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_malformed(void **state)
{
    (void)state;
    static const struct dj_case t[] = {
        {"", -EINVAL, B(""), 0, 0, false},
        {"   \n", -EINVAL, B(""), 0, 0, false},
        {"{}", -EINVAL, B(""), 0, 0, false},
        {"[]", -EINVAL, B(""), 0, 0, false},
        {"null", -EINVAL, B(""), 0, 0, false},
        {"not json at all", -EINVAL, B(""), 0, 0, false},
        /* missing fields */
        {"{\"stream\":\"stdout\",\"time\":\"" TS_STR "\"}", -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\",\"time\":\"" TS_STR "\"}", -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\",\"stream\":\"stdout\"}", -EINVAL, B(""), 0, 0, false},
        /* wrong types and values */
        {"{\"log\":12" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":null" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":[\"x\"]" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\",\"stream\":\"stdin\",\"time\":\"" TS_STR "\"}", -EINVAL, B(""), 0, 0,
         false},
        {"{\"log\":\"x\",\"stream\":\"stdoutx\",\"time\":\"" TS_STR "\"}", -EINVAL, B(""), 0, 0,
         false},
        {"{\"log\":\"x\",\"stream\":1,\"time\":\"" TS_STR "\"}", -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\",\"stream\":\"stdout\",\"time\":1762530485}", -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\",\"stream\":\"stdout\",\"time\":\"yesterday\"}", -EINVAL, B(""), 0, 0,
         false},
        {"{\"log\":\"x\",\"stream\":\"stdout\",\"time\":\"" TS_STR
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxx\"}",
         -EINVAL, B(""), 0, 0, false},
        /* bad escapes */
        {"{\"log\":\"\\x\"" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"\\u12\"" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"\\uZZZZ\"" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"\\ud83d\\uZZZZ\"" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"\\", -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"\\u", -EINVAL, B(""), 0, 0, false},
        /* syntax */
        {"{\"log\":\"x\"" TAIL "garbage", -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\"" TAIL "}", -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\",}", -EINVAL, B(""), 0, 0, false},
        {"{\"log\" \"x\"" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\""
         ",\"stream\":\"stdout\",\"time\":\"" TS_STR "\"",
         -EINVAL, B(""), 0, 0, false},
        {"{log:\"x\"" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\",\"e\":01" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\",\"e\":1." TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\",\"e\":-" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\",\"e\":1e" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\",\"e\":tru" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\",\"e\":[1,]" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\",\"e\":[1}" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\",\"e\":{\"a\"}" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\",\"e\":{1:2}" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\",\"e\":\"\\q\"" TAIL, -EINVAL, B(""), 0, 0, false},
        {"{\"log\":\"x\",\"stream\":\"stdout\",\"attrs\":{\"a\":},\"time\":\"" TS_STR "\"}",
         -EINVAL, B(""), 0, 0, false},
    };
    run_table(t, sizeof(t) / sizeof(t[0]));
}

/* Every prefix of valid lines is rejected (or, for whitespace cuts, accepted) without a crash. */
static void test_truncated_lines(void **state)
{
    (void)state;
    static const char *lines[] = {
        "{\"log\":\"a\\\"b\\u00e9\\ud83d\\ude00\\n\"" TAIL,
        "{\"log\":\"x\\n\",\"stream\":\"stdout\",\"attrs\":{\"tag\":[1,{\"b\":null}]},\"time\":"
        "\"" TS_STR "\"}",
        " { \"time\" : \"" TS_STR "\" , \"stream\" : \"stderr\" , \"log\" : \"y\" } ",
    };
    static char got[4096];
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        size_t n = strlen(lines[i]);
        struct lc_docker_line dl;
        for (size_t k = 0; k < n; k++) {
            int rc = decode_exact(lines[i], k, 64, got, &dl);
            /* only the last case ends in whitespace: cutting it off keeps the line valid */
            bool valid = i == 2 && k == n - 1;
            if (rc != (valid ? 0 : -EINVAL))
                fail_msg("line %zu cut at %zu: rc %d", i, k, rc);
        }
        assert_int_equal(decode_exact(lines[i], n, 64, got, &dl), 0);
    }
}

static void test_depth(void **state)
{
    (void)state;
    char line[1024];
    static char got[64];
    struct lc_docker_line dl;
    /* {"k":[{"k":[ ... 1 ... ]}]} nested `depth` containers deep in an unknown key */
    for (int depth = 1; depth <= 70; depth++) {
        size_t n = (size_t)snprintf(line, sizeof(line), "{\"log\":\"x\",\"e\":");
        for (int i = 0; i < depth; i++)
            n += (size_t)snprintf(line + n, sizeof(line) - n, (i & 1) ? "[" : "{\"k\":");
        n += (size_t)snprintf(line + n, sizeof(line) - n, "1");
        for (int i = depth - 1; i >= 0; i--)
            n += (size_t)snprintf(line + n, sizeof(line) - n, (i & 1) ? "]" : "}");
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%s", TAIL);
        assert_true(n < sizeof(line));
        int rc = decode_exact(line, n, sizeof(got), got, &dl);
        int want = depth > 64 ? -EINVAL : 0;
        if (rc != want)
            fail_msg("depth %d: rc %d want %d: %s", depth, rc, want, line);
    }
    /* arrays only: [[[...]]] */
    for (int depth = 60; depth <= 70; depth++) {
        size_t n = (size_t)snprintf(line, sizeof(line), "{\"log\":\"x\",\"e\":");
        memset(line + n, '[', (size_t)depth);
        n += (size_t)depth;
        memset(line + n, ']', (size_t)depth);
        n += (size_t)depth;
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%s", TAIL);
        int rc = decode_exact(line, n, sizeof(got), got, &dl);
        assert_int_equal(rc, depth > 64 ? -EINVAL : 0);
    }
}

/* Output caps: exact fits, one byte short, UTF-8 boundaries, zero capacity. */
static void test_e2big(void **state)
{
    (void)state;
    static const struct {
        const char *log_json;
        size_t cap;
        int rc;
        const char *want;
        size_t want_len;
        bool partial;
    } t[] = {
        {"hello\\n", 5, 0, B("hello"), false}, /* fits once the '\n' is removed */
        {"hello\\n", 6, 0, B("hello"), false},
        {"hello\\n", 4, -E2BIG, B("hell"), false},
        {"hello", 5, 0, B("hello"), true},
        {"hello", 4, -E2BIG, B("hell"), true},
        {"h\xc3\xa9llo", 2, -E2BIG, B("h"), true},        /* raw é not cut in half */
        {"h\\u00e9llo", 2, -E2BIG, B("h"), true},         /* escaped é not written in half */
        {"h\\u00e9llo", 3, -E2BIG, B("h\xc3\xa9"), true}, /* ...and fits exactly */
        {"\\ud83d\\ude00\\ud83d\\ude00", 7, -E2BIG, B("\xf0\x9f\x98\x80"), true},
        {"ab\\u20acc", 4, -E2BIG, B("ab"), true}, /* nothing written after a gap */
        {"x\\n", 0, -E2BIG, B(""), false},
        {"\\n", 0, 0, B(""), false},
        {"", 0, 0, B(""), true},
    };
    static char got[64];
    char line[256];
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int n = snprintf(line, sizeof(line), "{\"log\":\"%s\"%s", t[i].log_json, TAIL);
        struct lc_docker_line dl;
        memset(&dl, 0, sizeof(dl));
        int rc = decode_exact(line, (size_t)n, t[i].cap, got, &dl);
        if (rc != t[i].rc || dl.log_len != t[i].want_len ||
            memcmp(got, t[i].want, t[i].want_len) != 0 || dl.partial != t[i].partial ||
            dl.stream != 1 || dl.ts_ns != TS_NS)
            fail_msg("case %zu %s cap %zu: rc %d len %zu partial %d", i, t[i].log_json, t[i].cap,
                     rc, dl.log_len, dl.partial);
    }
}

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t put_utf8(char *p, uint32_t cp)
{
    if (cp < 0x80) {
        p[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        p[0] = (char)(0xC0 | (cp >> 6));
        p[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        p[0] = (char)(0xE0 | (cp >> 12));
        p[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        p[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    p[0] = (char)(0xF0 | (cp >> 18));
    p[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    p[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    p[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * Builds a random log of about `target` decoded bytes: its JSON form in enc
 * and the bytes a correct decoder yields in want, plus the character
 * boundaries of want (for checking cuts).
 */
static void random_log(size_t target, char *enc, size_t *enc_len, char *want, size_t *want_len,
                       unsigned char *boundary)
{
    size_t e = 0, w = 0;
    while (w < target) {
        boundary[w] = 1;
        unsigned kind = (unsigned)(rng() % 10);
        if (kind < 4) { /* a run of plain ASCII */
            size_t run = 1 + rng() % 40;
            for (size_t i = 0; i < run; i++) {
                char c = (char)(' ' + rng() % 95);
                if (c == '"' || c == '\\')
                    c = '_';
                enc[e++] = c;
                want[w++] = c;
                boundary[w] = 1;
            }
            continue;
        }
        if (kind == 4) { /* a short escape */
            static const char esc[] = "\"\\/bfnrt";
            static const char val[] = "\"\\/\b\f\n\r\t";
            size_t j = rng() % 8;
            enc[e++] = '\\';
            enc[e++] = esc[j];
            want[w++] = val[j];
        } else if (kind == 5) { /* raw UTF-8, 2..4 bytes */
            static const uint32_t cps[] = {0xe9, 0x20ac, 0x1f600, 0x7ff, 0xffff, 0x10ffff};
            size_t n = put_utf8(want + w, cps[rng() % 6]);
            memcpy(enc + e, want + w, n);
            e += n;
            w += n;
        } else if (kind == 6) { /* \uXXXX of a BMP non-surrogate */
            uint32_t cp;
            do
                cp = (uint32_t)(rng() % 0x10000);
            while (cp >= 0xD800 && cp <= 0xDFFF);
            e += (size_t)sprintf(enc + e, (rng() & 1) ? "\\u%04x" : "\\u%04X", cp);
            w += put_utf8(want + w, cp);
        } else if (kind == 7) { /* a surrogate pair */
            uint32_t cp = 0x10000 + (uint32_t)(rng() % 0x100000);
            uint32_t v = cp - 0x10000;
            e += (size_t)sprintf(enc + e, "\\u%04x\\u%04x", 0xD800 + (v >> 10),
                                 0xDC00 + (v & 0x3FF));
            w += put_utf8(want + w, cp);
        } else if (kind == 8) { /* a lone surrogate, then a plain letter */
            uint32_t s = 0xD800 + (uint32_t)(rng() % 0x800);
            e += (size_t)sprintf(enc + e, "\\u%04x", s);
            w += put_utf8(want + w, 0xFFFD);
            boundary[w] = 1;
            enc[e++] = 'z';
            want[w++] = 'z';
        } else { /* a control character as \u00XX */
            uint32_t c = (uint32_t)(rng() % 0x20);
            e += (size_t)sprintf(enc + e, "\\u%04x", c);
            want[w++] = (char)c;
        }
    }
    if (w > 0 && want[w - 1] == '\n') { /* the caller decides whether the log ends in '\n' */
        boundary[w] = 1;
        enc[e++] = 'z';
        want[w++] = 'z';
    }
    boundary[w] = 1;
    *enc_len = e;
    *want_len = w;
}

/* Random logs through the fast and the general path, with random output caps. */
static void test_random_roundtrip(void **state)
{
    (void)state;
    enum { MAXLOG = 70000 };
    char *enc = malloc(MAXLOG * 7 + 64); /* \u00XX: 6 bytes per decoded byte */
    char *want = malloc(MAXLOG + 64);
    unsigned char *boundary = malloc(MAXLOG + 64);
    char *line = malloc(MAXLOG * 7 + 256);
    char *got = malloc(MAXLOG + 64);
    assert_non_null(enc && want && boundary && line && got);

    for (int iter = 0; iter < 600; iter++) {
        size_t target = iter < 500 ? rng() % 400 : rng() % MAXLOG;
        size_t enc_len, want_len;
        memset(boundary, 0, MAXLOG + 64);
        random_log(target, enc, &enc_len, want, &want_len, boundary);
        bool nl = rng() & 1;
        size_t n = 0;
        if (iter & 1) { /* dockerd's layout: fast path */
            n += (size_t)sprintf(line + n, "{\"log\":\"");
            memcpy(line + n, enc, enc_len);
            n += enc_len;
            n += (size_t)sprintf(line + n, "%s\"%s", nl ? "\\n" : "", TAIL);
        } else { /* other order: general path */
            n += (size_t)sprintf(line + n, "{\"time\":\"%s\", \"stream\":\"stdout\", \"log\":\"",
                                 TS_STR);
            memcpy(line + n, enc, enc_len);
            n += enc_len;
            n += (size_t)sprintf(line + n, "%s\"}", nl ? "\\n" : "");
        }
        size_t cap = (iter % 3 == 0) ? rng() % (want_len + 2) : want_len + 16;
        struct lc_docker_line dl;
        int rc = decode_exact(line, n, cap, got, &dl);
        size_t expect_len = want_len;
        if (want_len > cap) {
            expect_len = cap;
            while (!boundary[expect_len])
                expect_len--;
        }
        if (rc != (want_len > cap ? -E2BIG : 0) || dl.log_len != expect_len ||
            memcmp(got, want, expect_len) != 0 || dl.partial == nl || dl.ts_ns != TS_NS)
            fail_msg("iter %d: rc %d len %zu want %zu (of %zu, cap %zu)", iter, rc, dl.log_len,
                     expect_len, want_len, cap);
    }
    free(got);
    free(line);
    free(boundary);
    free(want);
    free(enc);
}

/* ---- joiner ---- */

static struct lc_docker_line mk(const char *s, bool partial, int64_t ts)
{
    struct lc_docker_line dl = {(char *)s, strlen(s), LC_STREAM_STDOUT, ts, partial};
    return dl;
}

static void test_join_whole_line_no_copy(void **state)
{
    (void)state;
    char buf[16];
    struct lc_docker_joiner j;
    lc_docker_joiner_init(&j, buf, sizeof(buf));
    struct lc_docker_line dl = mk("hello", false, 7);
    const char *line;
    size_t len;
    int64_t ts;
    assert_int_equal(lc_docker_join(&j, &dl, &line, &len, &ts), 1);
    assert_ptr_equal(line, dl.log); /* in place */
    assert_int_equal(len, 5);
    assert_int_equal(ts, 7);
    assert_int_equal(j.dropped, 0);
    assert_int_equal(lc_docker_joiner_flush(&j, &line, &len, &ts), 0);
}

static void test_join_parts(void **state)
{
    (void)state;
    static const struct {
        size_t cap;
        const char *parts[4]; /* all but the last are partial */
        const char *want;
        size_t dropped;
    } t[] = {
        {64, {"aaa", "bbb", "ccc", NULL}, "aaabbbccc", 0},
        {64, {"aaa", "", NULL}, "aaa", 0},
        {64, {"", "", "x", NULL}, "x", 0},
        {9, {"aaa", "bbb", "ccc", NULL}, "aaabbbccc", 0}, /* exactly the cap */
        {10, {"aaaaaa", "bbbbbb", "cc", NULL}, "aaaaaabbbb", 4},
        {4, {"aaaaaa", "bbbbbb", "cc", NULL}, "aaaa", 10},
        {4, {"abc\xc3\xa9", "x", NULL}, "abc", 3}, /* cut on a character boundary */
        {5, {"abcdefgh", NULL}, "abcde", 3},       /* a whole line over the cap */
        {4, {"ab\xe2\x82\xac", NULL}, "ab", 3},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char *buf = malloc(t[i].cap);
        struct lc_docker_joiner j;
        lc_docker_joiner_init(&j, buf, t[i].cap);
        const char *line = NULL;
        size_t len = 0;
        int64_t ts = 0;
        int rc = 0;
        for (size_t k = 0; t[i].parts[k]; k++) {
            struct lc_docker_line dl = mk(t[i].parts[k], t[i].parts[k + 1] != NULL, 100 + (int)k);
            rc = lc_docker_join(&j, &dl, &line, &len, &ts);
            if (t[i].parts[k + 1])
                assert_int_equal(rc, 0);
        }
        assert_int_equal(rc, 1);
        assert_false(j.pending); /* the returned line is complete */
        if (len != strlen(t[i].want) || memcmp(line, t[i].want, len) != 0 || ts != 100 ||
            j.dropped != t[i].dropped)
            fail_msg("case %zu: \"%.*s\" dropped %zu", i, (int)len, line, j.dropped);
        /* the joiner starts afresh */
        struct lc_docker_line dl = mk("next", false, 5);
        assert_int_equal(lc_docker_join(&j, &dl, &line, &len, &ts), 1);
        assert_int_equal(len, t[i].cap < 4 ? t[i].cap : 4);
        assert_int_equal(ts, 5);
        assert_int_equal(j.dropped, 0);
        free(buf);
    }
}

static void test_join_docker_split(void **state)
{
    (void)state;
    enum { LINE = 40000, CAP = 65536 };
    char *orig = malloc(LINE);
    char *buf = malloc(CAP);
    for (size_t i = 0; i < LINE; i++)
        orig[i] = (char)('a' + i % 26);
    struct lc_docker_joiner j;
    lc_docker_joiner_init(&j, buf, CAP);
    const char *line;
    size_t len;
    int64_t ts;
    size_t off = 0;
    int parts = 0;
    while (off < LINE) {
        size_t n = LINE - off < LC_DOCKER_PARTIAL_BYTES ? LINE - off : LC_DOCKER_PARTIAL_BYTES;
        struct lc_docker_line dl = {orig + off, n, 1, 1000 + parts, off + n < LINE};
        int rc = lc_docker_join(&j, &dl, &line, &len, &ts);
        assert_int_equal(rc, off + n < LINE ? 0 : 1);
        off += n;
        parts++;
    }
    assert_int_equal(parts, 3);
    assert_int_equal(len, LINE);
    assert_memory_equal(line, orig, LINE);
    assert_int_equal(ts, 1000);
    free(buf);
    free(orig);
}

static void test_join_flush_reset(void **state)
{
    (void)state;
    char buf[32];
    struct lc_docker_joiner j;
    lc_docker_joiner_init(&j, buf, sizeof(buf));
    const char *line;
    size_t len;
    int64_t ts;
    struct lc_docker_line a = mk("part", true, 9);
    assert_int_equal(lc_docker_join(&j, &a, &line, &len, &ts), 0);
    assert_true(j.pending);
    assert_int_equal(lc_docker_joiner_flush(&j, &line, &len, &ts), 1);
    assert_false(j.pending);
    assert_int_equal(len, 4);
    assert_memory_equal(line, "part", 4);
    assert_int_equal(ts, 9);
    assert_int_equal(lc_docker_joiner_flush(&j, &line, &len, &ts), 0);

    assert_int_equal(lc_docker_join(&j, &a, &line, &len, &ts), 0);
    lc_docker_joiner_reset(&j);
    struct lc_docker_line b = mk("whole", false, 10);
    assert_int_equal(lc_docker_join(&j, &b, &line, &len, &ts), 1);
    assert_ptr_equal(line, b.log);
    assert_int_equal(ts, 10);

    /* no buffer at all: every line is cut to nothing, and said so */
    lc_docker_joiner_init(&j, NULL, 0);
    assert_int_equal(lc_docker_join(&j, &b, &line, &len, &ts), 1);
    assert_int_equal(len, 0);
    assert_int_equal(j.dropped, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_and_escapes),
        cmocka_unit_test(test_time_fractions),
        cmocka_unit_test(test_layouts),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_truncated_lines),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_e2big),
        cmocka_unit_test(test_random_roundtrip),
        cmocka_unit_test(test_join_whole_line_no_copy),
        cmocka_unit_test(test_join_parts),
        cmocka_unit_test(test_join_docker_split),
        cmocka_unit_test(test_join_flush_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
