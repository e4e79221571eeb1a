/* SPDX-License-Identifier: MIT */
/* docker_seek.c: finds a time in a Docker json-file log by bisecting it with a few preads. */
#include "parse/docker_seek.h"

#include "parse/docker_json.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

bool lc_docker_seek_time_at(int fd, off_t off, off_t size, char *buf, size_t buflen, off_t *start,
                            int64_t *ts)
{
    ssize_t n = pread(fd, buf, buflen, off);
    struct lc_docker_line dl;
    char *a, *b;

    if (n <= 0)
        return false;
    a = off == 0 ? buf : memchr(buf, '\n', (size_t)n);
    if (!a)
        return false;
    if (off > 0)
        a++; /* off may be inside a record: the next one is the first complete */
    b = memchr(a, '\n', (size_t)(buf + n - a));
    if (!b || off + (a - buf) >= size)
        return false; /* cut by the window, or written after the caller's size */
    /* its time is enough: no text buffer, so a record with text is -E2BIG */
    if (lc_docker_json_decode(a, (size_t)(b - a), NULL, 0, &dl) == -EINVAL)
        return false;
    *start = off + (a - buf);
    *ts = dl.ts_ns;
    return true;
}

off_t lc_docker_seek_time(int fd, off_t from, off_t size, int64_t cutoff_ns, char *buf,
                          size_t buflen)
{
    off_t lo = from, hi = size, start;
    int64_t ts;

    /* lo: a record older than the cutoff (or from); the first not older is after it */
    while (hi - lo > (off_t)buflen) {
        off_t mid = lo + (hi - lo) / 2;

        if (!lc_docker_seek_time_at(fd, mid, size, buf, buflen, &start, &ts))
            break; /* no record to tell by: lo is early, never late */
        if (ts < cutoff_ns)
            lo = start;
        else
            hi = mid;
    }
    return lo;
}
