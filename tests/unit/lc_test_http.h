/* SPDX-License-Identifier: MIT */
/* lc_test_http.h: a tiny keep-alive HTTP/1.1 server on 127.0.0.1 in a thread, for unit tests. */
#ifndef LC_TEST_HTTP_H
#define LC_TEST_HTTP_H

/*
 * Header-only (static functions) so each test binary gets its own copy.
 * One thread polls the listening socket and up to LC_TH_MAX_CONN clients with
 * a 20 ms timeout, so stopping is always prompt. Every request is recorded
 * (method line, headers, body); answers come from a script of statuses
 * (`script`, cycled from script_pos) or `status` when the script is empty.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define LC_TH_MAX_CONN 32
#define LC_TH_MAX_REQ  4096
#define LC_TH_SCRIPT   64

struct lc_th_req {
    char *head; /* request line and headers, NUL-terminated */
    char *body;
    size_t body_len;
    int conn; /* which accepted connection (0-based) carried it */
};

struct lc_th_conn {
    int fd;
    int id;
    char *buf;
    size_t len, cap;
    bool continued;
};

struct lc_test_http {
    int lfd;
    int port;
    pthread_t thr;
    atomic_bool stop;
    pthread_mutex_t mu;
    /* answers */
    int status;                /* default 204 */
    const char *extra_headers; /* e.g. "Retry-After: 1\r\n", or NULL */
    const char *body;          /* answer body, or NULL */
    int script[LC_TH_SCRIPT];  /* statuses answered in order, then `status` */
    int nscript;
    int script_pos;
    bool close_after; /* answer with Connection: close */
    /* records */
    atomic_int accepted;
    atomic_int nreq;
    struct lc_th_req reqs[LC_TH_MAX_REQ];
    struct lc_th_conn conns[LC_TH_MAX_CONN];
    int nconns;
};

static __attribute__((unused)) const char *lc_th_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

static __attribute__((unused)) char *lc_th_find_header(const char *head, const char *name)
{
    size_t nl = strlen(name);
    const char *p = strstr(head, "\r\n");

    while (p && p[2] != '\r' && p[2] != '\0') {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t n = e ? (size_t)(e - v) : strlen(v);
            char *r = malloc(n + 1);
            memcpy(r, v, n);
            r[n] = '\0';
            return r;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

/* Handles every complete request in c->buf. Returns false to close the connection. */
static __attribute__((unused)) bool lc_th_serve(struct lc_test_http *s, struct lc_th_conn *c)
{
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end)
            return true;
        size_t hlen = (size_t)(end - c->buf) + 4;
        char *head = malloc(hlen + 1);
        memcpy(head, c->buf, hlen);
        head[hlen] = '\0';
        char *cl = lc_th_find_header(head, "Content-Length");
        size_t blen = cl ? strtoul(cl, NULL, 10) : 0;
        free(cl);
        char *expect = lc_th_find_header(head, "Expect");
        if (c->len < hlen + blen) {
            if (expect && !c->continued) {
                c->continued = true;
                const char *cont = "HTTP/1.1 100 Continue\r\n\r\n";
                ssize_t w = write(c->fd, cont, strlen(cont));
                (void)w;
            }
            free(expect);
            free(head);
            return true;
        }
        free(expect);
        c->continued = false;
        pthread_mutex_lock(&s->mu);
        int n = atomic_load(&s->nreq);
        int status = s->status ? s->status : 204;
        if (s->script_pos < s->nscript)
            status = s->script[s->script_pos++];
        if (n < LC_TH_MAX_REQ) {
            s->reqs[n].head = head;
            s->reqs[n].body = malloc(blen + 1);
            memcpy(s->reqs[n].body, c->buf + hlen, blen);
            s->reqs[n].body[blen] = '\0';
            s->reqs[n].body_len = blen;
            s->reqs[n].conn = c->id;
            head = NULL;
        }
        atomic_store(&s->nreq, n + 1);
        const char *extra = s->extra_headers ? s->extra_headers : "";
        const char *body = s->body ? s->body : "";
        bool close_after = s->close_after;
        pthread_mutex_unlock(&s->mu);
        free(head);
        char resp[1024];
        int rl = snprintf(resp, sizeof(resp), "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s\r\n%s",
                          status, lc_th_reason(status), strlen(body), extra,
                          close_after ? "Connection: close\r\n" : "", body);
        if (write(c->fd, resp, (size_t)rl) != rl)
            return false;
        memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
        c->len -= hlen + blen;
        if (close_after)
            return false;
    }
}

static __attribute__((unused)) void *lc_th_main(void *arg)
{
    struct lc_test_http *s = arg;

    while (!atomic_load(&s->stop)) {
        struct pollfd pf[LC_TH_MAX_CONN + 1];
        int n = 0;
        pf[n].fd = s->lfd;
        pf[n++].events = POLLIN;
        for (int i = 0; i < s->nconns; i++) {
            pf[n].fd = s->conns[i].fd;
            pf[n++].events = POLLIN;
        }
        if (poll(pf, (nfds_t)n, 20) <= 0)
            continue;
        if ((pf[0].revents & POLLIN) && s->nconns < LC_TH_MAX_CONN) {
            int fd = accept(s->lfd, NULL, NULL);
            if (fd >= 0) {
                struct lc_th_conn *c = &s->conns[s->nconns++];
                memset(c, 0, sizeof(*c));
                c->fd = fd;
                c->id = atomic_fetch_add(&s->accepted, 1);
            }
        }
        for (int i = 1; i < n; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            struct lc_th_conn *c = NULL;
            for (int j = 0; j < s->nconns; j++)
                if (s->conns[j].fd == pf[i].fd)
                    c = &s->conns[j];
            if (!c)
                continue;
            if (c->cap - c->len < 65536) {
                c->cap = c->cap ? c->cap * 2 : 131072;
                c->buf = realloc(c->buf, c->cap);
            }
            ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
            bool keep = r > 0;
            if (keep) {
                c->len += (size_t)r;
                keep = lc_th_serve(s, c);
            }
            if (!keep) {
                close(c->fd);
                free(c->buf);
                *c = s->conns[--s->nconns];
            }
        }
    }
    for (int i = 0; i < s->nconns; i++) {
        close(s->conns[i].fd);
        free(s->conns[i].buf);
    }
    s->nconns = 0;
    return NULL;
}

/* Starts the server; 0 or -1. */
static __attribute__((unused)) int lc_test_http_start(struct lc_test_http *s)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    int one = 1;

    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0)
        return -1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(s->lfd, 64) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&sa, &sl) != 0) {
        close(s->lfd);
        return -1;
    }
    s->port = ntohs(sa.sin_port);
    if (pthread_create(&s->thr, NULL, lc_th_main, s) != 0) {
        close(s->lfd);
        return -1;
    }
    return 0;
}

/* Sets the statuses answered next, in order. */
static __attribute__((unused)) void lc_test_http_script(struct lc_test_http *s, const int *st,
                                                        int n)
{
    pthread_mutex_lock(&s->mu);
    s->nscript = n < LC_TH_SCRIPT ? n : LC_TH_SCRIPT;
    memcpy(s->script, st, sizeof(int) * (size_t)s->nscript);
    s->script_pos = 0;
    pthread_mutex_unlock(&s->mu);
}

static __attribute__((unused)) void lc_test_http_stop(struct lc_test_http *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thr, NULL);
    close(s->lfd);
    int n = atomic_load(&s->nreq);
    for (int i = 0; i < n && i < LC_TH_MAX_REQ; i++) {
        free(s->reqs[i].head);
        free(s->reqs[i].body);
    }
    pthread_mutex_destroy(&s->mu);
}

#endif
