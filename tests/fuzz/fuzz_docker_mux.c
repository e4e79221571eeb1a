/* SPDX-License-Identifier: MIT */
/* fuzz_docker_mux.c: libFuzzer target for the Docker API stream decoder. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse/docker_mux.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A digest of every line emitted, to compare two decodings of the same bytes. */
struct digest {
    uint64_t h;
    uint64_t lines;
    size_t max;
};

static void mix(struct digest *d, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        d->h = (d->h ^ b[i]) * 0x100000001b3ULL;
}

static int on_line(void *arg, const struct lc_docker_mux_line *l)
{
    struct digest *d = arg;
    if (l->len > d->max)
        abort();
    mix(d, &l->stream, sizeof(l->stream));
    mix(d, &l->ts_ns, sizeof(l->ts_ns));
    mix(d, &l->has_ts, sizeof(l->has_ts));
    mix(d, &l->truncated, sizeof(l->truncated));
    mix(d, &l->len, sizeof(l->len));
    mix(d, l->line, l->len);
    d->lines++;
    return 0;
}

/* Feeds data in pieces whose sizes come from a PRNG seeded by `seed` (0: one piece). */
static void run(const char *data, size_t size, bool tty, size_t max, uint32_t seed,
                struct digest *d, int *rc_feed, int *rc_finish)
{
    struct lc_docker_mux_opts o = {.max_line_bytes = max, .tty = tty, .on_line = on_line, .arg = d};
    struct lc_docker_mux *m = lc_docker_mux_new(&o);
    if (!m)
        abort();
    d->h = 0xcbf29ce484222325ULL;
    d->lines = 0;
    d->max = max;
    *rc_feed = 0;
    size_t off = 0;
    while (off < size) {
        size_t k = size - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 16) % 37;
            if (k > size - off)
                k = size - off;
        }
        char *piece = malloc(k); /* exact size: over-reads are caught */
        if (!piece)
            abort();
        memcpy(piece, data + off, k);
        int rc = lc_docker_mux_feed(m, piece, k);
        free(piece);
        off += k;
        if (rc < 0) {
            if (rc != -EPROTO)
                abort();
            *rc_feed = rc;
            break;
        }
    }
    *rc_finish = lc_docker_mux_finish(m);
    lc_docker_mux_free(m);
}

/*
 * Byte 0: flags (TTY, cap), byte 1: chunking seed; the rest is the stream.
 * Decoding it whole and in random pieces must give the same lines and errors.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool tty = data[0] & 1;
    size_t max = (data[0] & 2) ? 4096 : 1 + (data[0] >> 2) % 48;
    uint32_t seed = data[1] | 1u;
    const char *stream = (const char *)data + 2;
    size_t n = size - 2;

    struct digest a, b;
    int fa, fb, ea, eb;
    run(stream, n, tty, max, 0, &a, &fa, &ea);
    run(stream, n, tty, max, seed, &b, &fb, &eb);
    if (a.h != b.h || a.lines != b.lines || fa != fb || ea != eb)
        abort();
    return 0;
}
