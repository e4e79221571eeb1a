/* SPDX-License-Identifier: MIT */
/* cri.c: CRI container log line decoder (see cri.h). */
#include "parse/cri.h"

#include "parse/timestamp.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

/*
 * Hand-written because it is the kubernetes input's hot path: every byte a
 * pod writes passes here. A line costs one timestamp parse (cached per
 * minute by the timestamp module) and a few compares; the content is
 * returned in place.
 */
int lc_cri_decode(const char *line, size_t len, struct lc_docker_line *dl)
{
    const char *p = line, *end = line + len, *sp;

    sp = memchr(p, ' ', len);
    if (!sp || lc_ts_parse_rfc3339(p, (size_t)(sp - p), &dl->ts_ns, NULL) < 0)
        return -EINVAL;
    p = sp + 1;
    if (end - p < 7 || memcmp(p, "std", 3) != 0 || p[6] != ' ')
        return -EINVAL;
    if (memcmp(p + 3, "out", 3) == 0)
        dl->stream = LC_STREAM_STDOUT;
    else if (memcmp(p + 3, "err", 3) == 0)
        dl->stream = LC_STREAM_STDERR;
    else
        return -EINVAL;
    p += 7;
    sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || sp - p < 1 || (sp - p > 1 && p[1] != ':'))
        return -EINVAL; /* the first tag is one letter, then ':' and more tags, or the end */
    if (p[0] == 'P')
        dl->partial = true;
    else if (p[0] == 'F')
        dl->partial = false;
    else
        return -EINVAL;
    p = sp + 1;
    dl->log = (char *)(uintptr_t)p; /* read-only in practice: the joiner only copies from it */
    dl->log_len = (size_t)(end - p);
    return 0;
}
