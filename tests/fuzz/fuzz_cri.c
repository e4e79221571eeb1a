/* SPDX-License-Identifier: MIT */
/* fuzz_cri.c: libFuzzer target for the CRI log line decoder and the joiner of its P lines. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse/cri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The input is lines (split at '\n'), each decoded from an exact-size copy;
 * the decoded ones go through one joiner per stream with a small cap, as the
 * kubernetes input feeds them. Checks the decoder's promises: the content is
 * inside the line, the verdict is 0 or -EINVAL, and a join never exceeds its
 * cap and accounts for every byte.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char jbuf[2][32];
    struct lc_docker_joiner j[2];
    size_t fed[2] = {0, 0};
    const char *p = (const char *)data, *end = p + size;

    lc_docker_joiner_init(&j[0], jbuf[0], sizeof(jbuf[0]));
    lc_docker_joiner_init(&j[1], jbuf[1], sizeof(jbuf[1]));
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char *in = malloc(len ? len : 1);
        struct lc_docker_line dl;
        const char *out;
        size_t olen;
        int64_t ts;

        if (!in)
            abort();
        memcpy(in, p, len);
        int rc = lc_cri_decode(in, len, &dl);
        if (rc != 0 && rc != -EINVAL)
            abort();
        if (rc == 0) {
            if (dl.log < in || dl.log + dl.log_len != in + len ||
                (dl.stream != LC_STREAM_STDOUT && dl.stream != LC_STREAM_STDERR))
                abort();
            int s = dl.stream == LC_STREAM_STDERR;
            fed[s] += dl.log_len;
            int r = lc_docker_join(&j[s], &dl, &out, &olen, &ts);
            if (r != (dl.partial ? 0 : 1))
                abort();
            if (r == 1) {
                if (olen > sizeof(jbuf[s]) || olen + j[s].dropped != fed[s])
                    abort();
                fed[s] = 0;
            }
        }
        free(in);
        p += len + (nl ? 1 : 0);
    }
    for (int s = 0; s < 2; s++) {
        const char *out;
        size_t olen;
        int64_t ts;
        if (lc_docker_joiner_flush(&j[s], &out, &olen, &ts) == 1 && olen > sizeof(jbuf[s]))
            abort();
    }
    return 0;
}
