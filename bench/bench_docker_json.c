/* SPDX-License-Identifier: MIT */
/* bench_docker_json.c: throughput of the json-file decoder (+ partial joiner) over a log file. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "parse/docker_json.h"

/*
 * Usage: bench_docker_json FILE [--mmap] [--buf-kib N] [--max-line N]
 * Reads FILE in big read()s (default 1 MiB, as the agent does) or mmap()s it,
 * splits it into lines, decodes each one into a reusable buffer and runs it
 * through the stdout/stderr joiners; prints MiB/s, lines/s, CPU s/GiB and peak
 * RSS. Nothing is allocated per line.
 */

struct bench {
    char *out;
    size_t out_cap;
    struct lc_docker_joiner join[2];
    uint64_t lines, bad, cut, joined_cut, parts, emitted;
    uint64_t sum; /* keeps the work observable */
};

static void bench_line(struct bench *b, const char *p, size_t n)
{
    struct lc_docker_line dl;
    int rc = lc_docker_json_decode(p, n, b->out, b->out_cap, &dl);
    b->lines++;
    if (rc == -EINVAL) {
        b->bad++;
        return;
    }
    if (rc == -E2BIG)
        b->cut++;
    const char *line;
    size_t len;
    int64_t ts;
    struct lc_docker_joiner *j = &b->join[dl.stream == LC_STREAM_STDERR];
    if (lc_docker_join(j, &dl, &line, &len, &ts) == 1) {
        b->emitted++;
        b->joined_cut += j->dropped > 0;
        b->sum += len + (uint64_t)ts + (len ? (unsigned char)line[len - 1] : 0);
    } else {
        b->parts++;
    }
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_read(struct bench *b, int fd, size_t cap, uint64_t *bytes, uint64_t *toolong)
{
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    size_t have = 0;
    bool skipping = false; /* inside a line longer than the buffer */
    for (;;) {
        ssize_t r = read(fd, buf + have, cap - have);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            return -errno;
        }
        if (r == 0) {
            if (have && !skipping)
                bench_line(b, buf, have);
            break;
        }
        *bytes += (uint64_t)r;
        have += (size_t)r;
        char *p = buf, *end = buf + have, *nl;
        while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            if (!skipping)
                bench_line(b, p, (size_t)(nl - p));
            skipping = false;
            p = nl + 1;
        }
        size_t rest = (size_t)(end - p);
        if (rest == cap) {
            (*toolong)++;
            skipping = true;
            rest = 0;
        }
        memmove(buf, p, rest);
        have = rest;
    }
    free(buf);
    return 0;
}

static int run_mmap(struct bench *b, int fd, uint64_t *bytes)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (st.st_size == 0)
        return 0;
    size_t n = (size_t)st.st_size;
    char *map = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        return -errno;
    madvise(map, n, MADV_SEQUENTIAL);
    const char *p = map, *end = map + n, *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        bench_line(b, p, (size_t)(nl - p));
        p = nl + 1;
    }
    if (p < end)
        bench_line(b, p, (size_t)(end - p));
    *bytes = n;
    munmap(map, n);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool use_mmap = false;
    size_t buf_kib = 1024, max_line = 256 * 1024;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mmap") == 0)
            use_mmap = true;
        else if (strcmp(argv[i], "--buf-kib") == 0 && i + 1 < argc)
            buf_kib = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--max-line") == 0 && i + 1 < argc)
            max_line = strtoul(argv[++i], NULL, 10);
        else if (!path && argv[i][0] != '-')
            path = argv[i];
        else
            path = NULL, i = argc;
    }
    if (!path || buf_kib == 0 || max_line == 0) {
        fprintf(stderr, "usage: %s FILE [--mmap] [--buf-kib N] [--max-line BYTES]\n", argv[0]);
        return 2;
    }

    struct bench b = {0};
    b.out_cap = max_line;
    b.out = malloc(max_line);
    char *jbuf = malloc(2 * max_line);
    if (!b.out || !jbuf) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    lc_docker_joiner_init(&b.join[0], jbuf, max_line);
    lc_docker_joiner_init(&b.join[1], jbuf + max_line, max_line);

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

    uint64_t bytes = 0, toolong = 0;
    double t0 = now_sec();
    int rc =
        use_mmap ? run_mmap(&b, fd, &bytes) : run_read(&b, fd, buf_kib * 1024, &bytes, &toolong);
    double wall = now_sec() - t0;
    close(fd);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(-rc));
        return 1;
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    double sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    double cpu = user + sys;
    double mib = (double)bytes / (1024.0 * 1024.0);
    printf("file        %s (%s)\n", path, use_mmap ? "mmap" : "read");
    printf("bytes       %llu (%.1f MiB)\n", (unsigned long long)bytes, mib);
    printf("lines       %llu (malformed %llu, cut %llu, partial parts %llu, too long %llu)\n",
           (unsigned long long)b.lines, (unsigned long long)b.bad, (unsigned long long)b.cut,
           (unsigned long long)b.parts, (unsigned long long)toolong);
    printf("wall        %.3f s\n", wall);
    printf("throughput  %.1f MiB/s, %.2f M lines/s\n", mib / wall, (double)b.lines / wall / 1e6);
    printf("cpu         %.3f s (user %.3f, sys %.3f): %.3f CPU s/GiB, %.1f MiB per CPU s\n", cpu,
           user, sys, cpu / (mib / 1024.0), mib / cpu);
    printf("peak rss    %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
    printf("checksum    %llx\n", (unsigned long long)b.sum);
    free(jbuf);
    free(b.out);
    return b.bad ? 1 : 0;
}
