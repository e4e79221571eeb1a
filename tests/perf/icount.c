/* SPDX-License-Identifier: MIT */
/*
 * icount.c: the hot path on a fixed sample, for instruction counting
 * (tests/perf/icount.sh runs it under callgrind and compares with a committed
 * baseline). Docker json-file lines, generated here from a fixed seed, are
 * decoded and joined, added to 1 MiB batches with their source's marks (as the
 * docker file input does) and encoded as a Loki push (protobuf+snappy, or JSON
 * + gzip with --json). Only icount_run() is counted; generating the sample is
 * not.
 */
#include "core/batch.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/labels.h"
#include "core/source.h"
#include "output/loki_encode.h"
#include "parse/docker_json.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLE_LINES 20000
#define BATCH_BYTES  (1u << 20)
#define MAX_LINE     (256u << 10)

static uint32_t seed = 14;

static uint32_t rnd(void)
{
    seed = seed * 1103515245u + 12345u;
    return seed >> 8;
}

static const char *const words[] = {
    "request",    "handled",
    "method=GET", "path=/api/v1/orders",
    "status=200", "latency_ms=12",
    "user=8c60",  "\\\"quoted\\\"",
    "caf\\u00e9", "\\tat com.example.Service.run(Service.java:42)",
    "region=eu",  "trace_id=3637a1",
    "ok",         "retry",
    "db",         "SELECT * FROM t",
};

/* One json-file line as dockerd writes it: 50..300 bytes of text, escapes included. */
static size_t gen_line(char *p, uint64_t i)
{
    size_t n = 0, target = 50 + rnd() % 250;

    n += (size_t)sprintf(p + n, "{\"log\":\"");
    while (n < target)
        n += (size_t)sprintf(p + n, "%s ", words[rnd() % (sizeof(words) / sizeof(words[0]))]);
    n += (size_t)sprintf(p + n,
                         "\\n\",\"stream\":\"%s\",\"time\":\"2025-11-07T15:%02u:%02u.%09uZ\"}\n",
                         rnd() % 10 ? "stdout" : "stderr", (unsigned)(i / 60000) % 60,
                         (unsigned)(i / 1000) % 60, (unsigned)(i % 1000) * 1000000u);
    return n;
}

struct run {
    struct lc_loki_enc *enc;
    struct lc_source *src;
    struct lc_labels *labels[2];
    struct lc_buf body;
    char *out, *jbuf;
    struct lc_docker_joiner join[2];
    uint64_t lines, bytes_wire, batches;
};

static int flush(struct run *r, struct lc_batch *b)
{
    size_t raw = 0;
    int rc = 0;

    if (b->n > 0) {
        rc = lc_loki_encode(r->enc, b, &r->body, &raw);
        r->bytes_wire += r->body.len;
        r->batches++;
    }
    lc_batch_release_marks(b, true);
    lc_batch_free(b);
    return rc;
}

/* The counted part: decode, join, batch, encode. */
__attribute__((noinline)) int icount_run(struct run *r, const char *data, size_t len);
__attribute__((noinline)) int icount_run(struct run *r, const char *data, size_t len)
{
    struct lc_batch *b = lc_batch_new(BATCH_BYTES, 8192);
    const char *p = data, *end = data + len, *nl;
    struct lc_pos pos = {0};
    uint64_t chunk = 0;
    int rc = 0;

    while (rc == 0 && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        struct lc_docker_line dl;
        const char *line;
        size_t n;
        int64_t ts;
        if (lc_docker_json_decode(p, (size_t)(nl - p), r->out, MAX_LINE, &dl) == 0) {
            int s = dl.stream == LC_STREAM_STDERR;
            if (lc_docker_join(&r->join[s], &dl, &line, &n, &ts) == 1) {
                if (!lc_batch_fits(b, n)) {
                    rc = flush(r, b);
                    b = lc_batch_new(BATCH_BYTES, 8192);
                }
                if (rc == 0)
                    rc = lc_batch_add(b, r->src, ts, r->labels[s], line, n);
                r->lines++;
            }
        }
        pos.offset = nl + 1 - data;
        p = nl + 1;
        if (++chunk % 1000 == 0) /* one mark per read, as the input's 256 KiB reads */
            lc_source_checkpoint(r->src, &pos);
    }
    lc_source_checkpoint(r->src, &pos);
    if (rc == 0)
        rc = flush(r, b);
    else
        flush(r, b);
    return rc;
}

int main(int argc, char **argv)
{
    bool json = argc > 1 && strcmp(argv[1], "--json") == 0;
    struct lc_kv out_kv = {"job", "icount"};
    struct lc_kv kv[2][2] = {{{"container", "bench"}, {"stream", "stdout"}},
                             {{"container", "bench"}, {"stream", "stderr"}}};
    struct run r = {0};
    size_t cap = (size_t)SAMPLE_LINES * 1024, len = 0;
    char *data = malloc(cap);
    int rc;

    if (!data)
        return 2;
    for (uint64_t i = 0; i < SAMPLE_LINES; i++)
        len += gen_line(data + len, i);
    r.out = malloc(MAX_LINE);
    r.jbuf = malloc(2 * MAX_LINE);
    if (!r.out || !r.jbuf)
        return 2;
    lc_docker_joiner_init(&r.join[0], r.jbuf, MAX_LINE);
    lc_docker_joiner_init(&r.join[1], r.jbuf + MAX_LINE, MAX_LINE);
    if (lc_labels_intern(kv[0], 2, &r.labels[0]) < 0 ||
        lc_labels_intern(kv[1], 2, &r.labels[1]) < 0)
        return 2;
    r.src = lc_source_new(NULL, "icount", "/icount", r.labels[0], NULL, 1u << 20);
    rc = lc_loki_enc_new(&r.enc, json ? LC_LOKI_JSON : LC_LOKI_PROTOBUF, json, &out_kv, 1,
                         (size_t)BATCH_BYTES * 8 + (1u << 20));
    if (!r.src || rc < 0)
        return 2;
    lc_buf_init(&r.body, (size_t)BATCH_BYTES * 10);
    rc = icount_run(&r, data, len);
    if (rc < 0) {
        fprintf(stderr, "icount: %s\n", strerror(-rc));
        return 1;
    }
    printf("lines %llu bytes %zu batches %llu wire_bytes %llu\n", (unsigned long long)r.lines, len,
           (unsigned long long)r.batches, (unsigned long long)r.bytes_wire);
    lc_buf_free(&r.body);
    lc_loki_enc_free(r.enc);
    lc_source_free(r.src);
    lc_labels_release(r.labels[0]);
    lc_labels_release(r.labels[1]);
    free(r.out);
    free(r.jbuf);
    free(data);
    return 0;
}
