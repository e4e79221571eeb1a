/* SPDX-License-Identifier: MIT */
/* fuzz_syslog.c: libFuzzer target for both syslog parsers (RFC 5424, RFC 3164) and RFC 6587
 * framing. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse/syslog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const struct lc_syslog_field *f, const char *s, size_t len)
{
    if (f->len && (f->p < s || f->p + f->len > s + len))
        abort();
}

static void check(const struct lc_syslog_msg *m, const char *s, size_t len)
{
    if (m->facility < 0 || m->facility > 23 || m->severity < 0 || m->severity > 7)
        abort();
    inside(&m->hostname, s, len);
    inside(&m->app_name, s, len);
    inside(&m->procid, s, len);
    inside(&m->msgid, s, len);
    inside(&m->sd, s, len);
    inside(&m->msg, s, len);
}

/*
 * The whole input, from an exact-size copy, through each parser (every
 * field must lie inside it, the verdict be 0 or -EINVAL, and a message
 * 5424 accepts must be 5424 for the auto-detecting parser too); then the
 * input as a TCP stream through the framer with a small max, as the syslog
 * input drives it.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const int64_t now = 1762530485000000000LL;
    char *s = malloc(size ? size : 1);
    struct lc_syslog_msg m;
    int r5, r3, ra;

    if (!s)
        abort();
    memcpy(s, data, size);
    r5 = lc_syslog_parse_5424(s, size, &m);
    if (r5 != 0 && r5 != -EINVAL)
        abort();
    if (r5 == 0)
        check(&m, s, size);
    r3 = lc_syslog_parse_3164(s, size, now, 3600, &m);
    if (r3 != 0 && r3 != -EINVAL)
        abort();
    if (r3 == 0)
        check(&m, s, size);
    ra = lc_syslog_parse(s, size, now, -7200, &m);
    if (ra != 0 && ra != -EINVAL)
        abort();
    if (ra == 0)
        check(&m, s, size);
    if (r5 == 0 && (ra != 0 || m.version == 0))
        abort();

    size_t max = size ? (size_t)(data[0] % 64) + 1 : 8, off = 0, skip = 0;
    while (off < size) {
        size_t start = 0, mlen = 0, used = 0;
        if (skip) {
            size_t take = skip < size - off ? skip : size - off;
            skip -= take;
            off += take;
            continue;
        }
        enum lc_syslog_frame r = lc_syslog_frame(s + off, size - off, max, &start, &mlen, &used);
        if (r == LC_SYSLOG_FRAME_MORE)
            break;
        if (mlen > max || start + mlen > size - off)
            abort();
        if (r == LC_SYSLOG_FRAME_OK) {
            if (used == 0 || used > size - off)
                abort();
            off += used;
        } else if (used) {
            size_t have = size - off < used ? size - off : used;
            skip = used - have;
            off += have;
        } else {
            if (mlen == 0)
                abort();
            off += start + mlen; /* the input then skips to the next LF */
            const char *nl = memchr(s + off, '\n', size - off);
            off = nl ? (size_t)(nl - s) + 1 : size;
        }
    }
    free(s);
    return 0;
}
