/* SPDX-License-Identifier: MIT */
/*
 * http_sink.c: the benchmark peer. A single-threaded epoll HTTP/1.1 server on
 * 127.0.0.1 that reads every request body, throws it away and answers
 * 204 No Content on the same keep-alive connection. It costs a few percent of
 * one core at 1 GB/s, so the agent, not the peer, is what a benchmark measures.
 *
 *   http_sink PORT [STATS_FILE]
 *
 * On SIGTERM/SIGINT it writes "requests N\nbody_bytes N\nexpect_100 N\n" to
 * STATS_FILE (or stdout) and exits 0. It answers "100 Continue" when asked,
 * and counts those requests (expect_100), so a client that waits for it shows.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX  16384
#define MAX_CONNS 256

struct conn {
    int fd;
    char head[HEAD_MAX];
    size_t head_len;
    uint64_t body_left; /* > 0: inside a body */
    int in_body;
};

static volatile sig_atomic_t stop;
static uint64_t n_requests, n_body_bytes, n_expect;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the client went away; the read side sees it */
        p += w;
        n -= (size_t)w;
    }
}

static const char *find_header(const char *head, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, nl) == 0)
            return p + 2 + nl;
    return NULL;
}

static void answer(struct conn *c)
{
    static const char resp[] = "HTTP/1.1 204 No Content\r\nServer: lc-http-sink\r\n\r\n";
    send_all(c->fd, resp, sizeof(resp) - 1);
    n_requests++;
}

/* Consumes buffered bytes: headers, then the body; answers each request. 0 or -1. */
static int feed(struct conn *c, const char *p, size_t n)
{
    while (n > 0) {
        if (c->in_body) {
            size_t k = n < c->body_left ? n : (size_t)c->body_left;
            c->body_left -= k;
            n_body_bytes += k;
            p += k;
            n -= k;
            if (c->body_left == 0) {
                c->in_body = 0;
                answer(c);
            }
            continue;
        }
        size_t room = HEAD_MAX - 1 - c->head_len;
        size_t k = n < room ? n : room;
        memcpy(c->head + c->head_len, p, k);
        c->head_len += k;
        c->head[c->head_len] = '\0';
        char *end = strstr(c->head, "\r\n\r\n");
        if (!end) {
            if (c->head_len == HEAD_MAX - 1)
                return -1;
            p += k;
            n -= k;
            continue;
        }
        size_t used = (size_t)(end + 4 - c->head) - (c->head_len - k);
        end[2] = '\0';
        const char *cl = find_header(c->head, "content-length:");
        const char *ex = find_header(c->head, "expect:");
        c->body_left = cl ? strtoull(cl, NULL, 10) : 0;
        if (ex) {
            while (*ex == ' ')
                ex++;
            if (strncasecmp(ex, "100-continue", 12) == 0) {
                n_expect++;
                send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
            }
        }
        c->head_len = 0;
        p += used;
        n -= used;
        if (c->body_left > 0)
            c->in_body = 1;
        else
            answer(c);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static char buf[1 << 18];
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct epoll_event ev, evs[64];
    int one = 1, lfd, ep;

    if (argc < 2) {
        fprintf(stderr, "usage: http_sink PORT [STATS_FILE]\n");
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    sa.sin_port = htons((uint16_t)atoi(argv[1]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 128) < 0) {
        perror("http_sink: bind/listen");
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    while (!stop) {
        int n = epoll_wait(ep, evs, 64, 200);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                    continue;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                c = calloc(1, sizeof(*c));
                if (!c) {
                    close(fd);
                    continue;
                }
                c->fd = fd;
                ev.events = EPOLLIN;
                ev.data.ptr = c;
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                continue;
            }
            ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
            if (r < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (r <= 0 || feed(c, buf, (size_t)r) < 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                free(c);
            }
        }
    }
    FILE *f = argc > 2 ? fopen(argv[2], "w") : stdout;
    if (f) {
        fprintf(f, "requests %llu\nbody_bytes %llu\nexpect_100 %llu\n",
                (unsigned long long)n_requests, (unsigned long long)n_body_bytes,
                (unsigned long long)n_expect);
        if (f != stdout)
            fclose(f);
    }
    return 0;
}
