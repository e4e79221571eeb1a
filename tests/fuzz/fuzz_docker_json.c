/* SPDX-License-Identifier: MIT */
/* fuzz_docker_json.c: libFuzzer target for the json-file line decoder and the joiner. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse/docker_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The first byte picks a small output capacity; the rest is the line. Checks
 * that a cut decode is a prefix of the uncut one with the same verdict, and
 * feeds the result through a joiner with a small cap.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t small_cap = data[0] % 64;
    const char *line = (const char *)data + 1;
    size_t len = size - 1;

    /* exact-size copies so that any over-read or over-write is caught */
    char *in = malloc(len ? len : 1);
    char *big = malloc(len + 1);
    char *small = small_cap ? malloc(small_cap) : NULL;
    if (!in || !big || (small_cap && !small))
        abort();
    memcpy(in, line, len);

    struct lc_docker_line a, b;
    int ra = lc_docker_json_decode(in, len, big, len + 1, &a);
    int rb = lc_docker_json_decode(in, len, small, small_cap, &b);
    if (ra != 0 && ra != -EINVAL)
        abort(); /* the decoded log is never longer than its JSON form */
    if (rb != 0 && rb != -EINVAL && rb != -E2BIG)
        abort();
    if ((ra == -EINVAL) != (rb == -EINVAL))
        abort();
    if (ra == 0) {
        if (a.log != big || a.log_len > len || (a.stream != 1 && a.stream != 2))
            abort();
        if (b.log_len > small_cap || b.log_len > a.log_len ||
            (b.log_len && memcmp(b.log, a.log, b.log_len) != 0) || b.stream != a.stream ||
            b.ts_ns != a.ts_ns || b.partial != a.partial)
            abort();
        if ((rb == -E2BIG) != (a.log_len > small_cap))
            abort();
        if (rb == 0 && b.log_len != a.log_len)
            abort();

        char jbuf[24];
        struct lc_docker_joiner j;
        lc_docker_joiner_init(&j, jbuf, sizeof(jbuf));
        const char *out;
        size_t olen;
        int64_t ts;
        for (int i = 0; i < 3; i++) {
            int r = lc_docker_join(&j, &a, &out, &olen, &ts);
            if (r != (a.partial ? 0 : 1))
                abort();
            if (r == 1 && (olen > sizeof(jbuf) || olen + j.dropped != a.log_len ||
                           memcmp(out, a.log, olen) != 0))
                abort();
        }
        if (lc_docker_joiner_flush(&j, &out, &olen, &ts) == 1 && olen > sizeof(jbuf))
            abort();
    }
    free(small);
    free(big);
    free(in);
    return 0;
}
