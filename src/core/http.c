/* SPDX-License-Identifier: MIT */
/* http.c: /metrics, /health and /ready on libmicrohttpd's internal thread, and the health registry.
 */
#include "core/http.h"

#include "core/log.h"
#include "core/losses.h"
#include "core/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define LC_HTTP_BODY_MAX     (32u << 20) /* a /metrics page larger than this is a bug */
#define LC_HTTP_CONN_MAX     32
#define LC_HTTP_TIMEOUT_S    10
#define LC_HEALTH_MAX        256
#define LC_HEALTH_NAME_MAX   64
#define LC_HEALTH_DETAIL_MAX 256
#define LC_HEALTH_KEY_MAX    32

struct lc_http {
    struct MHD_Daemon *daemon;
    int port;
};

struct health_field {
    char key[LC_HEALTH_KEY_MAX];
    const struct lc_metric_series *s;
};

struct health_entry {
    struct health_entry *next;
    enum lc_health state;
    char name[LC_HEALTH_NAME_MAX];
    char detail[LC_HEALTH_DETAIL_MAX];
    struct health_field fields[LC_HEALTH_FIELDS];
    int nfields;
};

static pthread_mutex_t health_mu = PTHREAD_MUTEX_INITIALIZER;
static struct health_entry *health_head;
static int health_count;
static atomic_bool health_ready;

static const char *const health_names[] = {"ok", "degraded", "down"};

/* ---- responses ---- */

/* Queues a response whose body is `body`; takes ownership of it when free_body is set. */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *ctype,
                             char *body, size_t len, bool free_body)
{
    struct MHD_Response *r;
    if (free_body)
        r = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    else
        r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_PERSISTENT);
    if (!r) {
        if (free_body)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned int status, const char *s)
{
    return reply(c, status, "text/plain; charset=utf-8", (char *)s, strlen(s), false);
}

/* Hands a rendered buffer to MHD, which frees it once sent. */
static enum MHD_Result reply_buf(struct MHD_Connection *c, unsigned int status, const char *ctype,
                                 struct lc_buf *b)
{
    if (!b->data)
        return reply(c, status, ctype, (char *)"", 0, false);
    char *data = b->data;
    size_t len = b->len;
    b->data = NULL; /* now owned by the response */
    lc_buf_free(b);
    return reply(c, status, ctype, data, len, true);
}

static enum MHD_Result serve_metrics(struct MHD_Connection *c)
{
    struct lc_buf b;
    lc_buf_init(&b, LC_HTTP_BODY_MAX);
    int rc = lc_metrics_render(&b);
    if (rc < 0) {
        lc_buf_free(&b);
        lc_log(LC_LOG_ERROR, "http", "cannot render metrics: %s", strerror(-rc));
        return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render metrics\n");
    }
    return reply_buf(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", &b);
}

static enum MHD_Result serve_health(struct MHD_Connection *c)
{
    struct lc_buf b;
    bool healthy = false;
    lc_buf_init(&b, LC_HTTP_BODY_MAX);
    if (lc_health_render(&b, &healthy) < 0) {
        lc_buf_free(&b);
        return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render health\n");
    }
    return reply_buf(c, healthy ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "application/json",
                     &b);
}

static enum MHD_Result serve_ready(struct MHD_Connection *c)
{
    if (atomic_load(&health_ready))
        return reply_text(c, MHD_HTTP_OK, "ready\n");
    return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready\n");
}

/* Every request is answered on its first call: none of our endpoints reads a body. */
static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
       const char *version, const char *upload_data,
       // NOLINTNEXTLINE(readability-non-const-parameter): MHD's callback type
       size_t *upload_data_size, void **req_cls)
{
    (void)cls, (void)version, (void)upload_data, (void)upload_data_size, (void)req_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(c);
    if (strcmp(url, "/health") == 0)
        return serve_health(c);
    if (strcmp(url, "/ready") == 0)
        return serve_ready(c);
    return reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    lc_log(LC_LOG_WARN, "http", "%s", msg);
}

/* ---- server ---- */

static int parse_port(const char *s, in_port_t *port)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < 0 || v > 65535)
        return -EINVAL;
    *port = htons((in_port_t)v);
    return 0;
}

/*
 * "host:port", "[v6]:port" or ":port" (127.0.0.1) into *ss; the host is a
 * numeric address or "localhost". 0 or -EINVAL.
 */
static int parse_listen(const char *listen, struct sockaddr_storage *ss)
{
    char host[64];
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon || (size_t)(colon - listen) >= sizeof(host))
        return -EINVAL;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    memset(ss, 0, sizeof(*ss));
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        host[hl - 1] = '\0';
        s6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            return -EINVAL;
        return parse_port(colon + 1, &s6->sin6_port);
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    if (!*host || strcmp(host, "localhost") == 0)
        memcpy(host, "127.0.0.1", sizeof("127.0.0.1"));
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return -EINVAL;
    return parse_port(colon + 1, &s4->sin_port);
}

/* The port the daemon's socket is bound to, or -1. */
static int bound_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
    /* zeroed first: the analyzer does not see getsockname write through glibc's __SOCKADDR_ARG */
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        struct sockaddr_storage ss;
    } u;
    memset(&u, 0, sizeof(u));
    socklen_t sl = sizeof(u);
    if (!info || getsockname(info->listen_fd, &u.sa, &sl) != 0)
        return -1;
    if (u.sa.sa_family == AF_INET6)
        return ntohs(u.in6.sin6_port);
    return ntohs(u.in4.sin_port);
}

/*
 * Starts the server thread on `listen`. On success *out owns it (free with
 * lc_http_stop()); on failure *out is NULL, err says why, and the return is
 * -EINVAL (bad address), -ENOMEM, or the errno of the failed bind.
 */
int lc_http_start(struct lc_http **out, const char *listen, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    *out = NULL;
    if (parse_listen(listen, &ss) < 0) {
        snprintf(err, errlen, "invalid listen address '%s' (want host:port)", listen ? listen : "");
        return -EINVAL;
    }
    struct lc_http *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_AUTO;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    errno = 0;
    /* The logger goes first, or MHD logs the options before it on its own. */
    h->daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned int)LC_HTTP_CONN_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned int)LC_HTTP_TIMEOUT_S, MHD_OPTION_END);
    if (!h->daemon) {
        int e = errno ? errno : EADDRNOTAVAIL;
        snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(e));
        free(h);
        return -e;
    }
    h->port = bound_port(h->daemon);
    *out = h;
    return 0;
}

/* Stops the server thread (waiting for it) and frees h. NULL is a no-op. */
void lc_http_stop(struct lc_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}

/* The bound port (the real one when started with port 0), -1 if unknown. */
int lc_http_port(const struct lc_http *h)
{
    return h ? h->port : -1;
}

/* ---- health registry ---- */

/* Copies at most cap - 1 bytes of s (NULL as ""). */
static void copy_cut(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s ? s : "");
}

/* The entry for name, created when absent and there is room; caller holds health_mu. */
static struct health_entry *health_get(const char *name, bool create)
{
    struct health_entry **pp = &health_head;
    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->name, name) == 0)
            return *pp;
    if (!create || health_count >= LC_HEALTH_MAX)
        return NULL;
    struct health_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    copy_cut(e->name, sizeof(e->name), name);
    *pp = e;
    health_count++;
    return e;
}

/* Sets (creating on first use) a component's state; name and detail are copied, cut if long. */
void lc_health_set(const char *component, enum lc_health state, const char *detail)
{
    char name[LC_HEALTH_NAME_MAX];
    copy_cut(name, sizeof(name), component);
    if ((int)state < LC_HEALTH_OK || state > LC_HEALTH_DOWN)
        state = LC_HEALTH_DOWN;
    pthread_mutex_lock(&health_mu);
    struct health_entry *e = health_get(name, true);
    if (e) {
        e->state = state;
        copy_cut(e->detail, sizeof(e->detail), detail);
    }
    pthread_mutex_unlock(&health_mu);
    if (!e)
        lc_log(LC_LOG_ERROR, "http", "health: cannot track component %s", name);
}

void lc_health_field(const char *component, const char *key, struct lc_metric_series *s)
{
    char name[LC_HEALTH_NAME_MAX];
    copy_cut(name, sizeof(name), component);
    if (!s)
        return; /* a refused registration, already logged */
    pthread_mutex_lock(&health_mu);
    struct health_entry *e = health_get(name, true);
    int i = 0;
    while (e && i < e->nfields && strcmp(e->fields[i].key, key) != 0)
        i++;
    bool room = e && i < LC_HEALTH_FIELDS;
    if (room) {
        copy_cut(e->fields[i].key, sizeof(e->fields[i].key), key);
        e->fields[i].s = s;
        if (i == e->nfields)
            e->nfields++;
    }
    pthread_mutex_unlock(&health_mu);
    if (!room)
        lc_log(LC_LOG_ERROR, "http", "health: cannot show %s of component %s", key, name);
}

/* Forgets a component; unknown names are ignored. */
void lc_health_remove(const char *component)
{
    char name[LC_HEALTH_NAME_MAX];
    copy_cut(name, sizeof(name), component);
    pthread_mutex_lock(&health_mu);
    for (struct health_entry **pp = &health_head; *pp; pp = &(*pp)->next) {
        struct health_entry *e = *pp;
        if (strcmp(e->name, name) == 0) {
            *pp = e->next;
            free(e);
            health_count--;
            break;
        }
    }
    pthread_mutex_unlock(&health_mu);
}

static int health_entry_render(struct lc_buf *out, const struct health_entry *e, bool first)
{
    int rc = lc_buf_append(out, first ? "\"" : ",\"", first ? 1 : 2);
    if (rc == 0)
        rc = lc_buf_json_str(out, e->name, strlen(e->name));
    if (rc == 0)
        rc = lc_buf_printf(out, "\":{\"status\":\"%s\"", health_names[e->state]);
    if (rc == 0 && e->detail[0]) {
        rc = lc_buf_append(out, ",\"detail\":\"", 11);
        if (rc == 0)
            rc = lc_buf_json_str(out, e->detail, strlen(e->detail));
        if (rc == 0)
            rc = lc_buf_putc(out, '"');
    }
    for (int i = 0; i < e->nfields && rc == 0; i++)
        rc = lc_buf_printf(out, ",\"%s\":%lld", e->fields[i].key,
                           (long long)lc_metric_series_value(e->fields[i].s));
    return rc ? rc : lc_buf_putc(out, '}');
}

/* "component: detail" of every component not ok, worst first; caller holds health_mu. */
static int health_reasons_render(struct lc_buf *out)
{
    bool first = true;
    int rc = lc_buf_append(out, ",\"reasons\":[", 12);
    for (int st = LC_HEALTH_DOWN; st > LC_HEALTH_OK && rc == 0; st--) {
        for (const struct health_entry *e = health_head; e && rc == 0; e = e->next) {
            if ((int)e->state != st)
                continue;
            rc = lc_buf_append(out, first ? "\"" : ",\"", first ? 1 : 2);
            first = false;
            if (rc == 0)
                rc = lc_buf_json_str(out, e->name, strlen(e->name));
            if (rc == 0)
                rc = lc_buf_printf(out, " %s: ", health_names[e->state]);
            if (rc == 0)
                rc = lc_buf_json_str(out, e->detail, strlen(e->detail));
            if (rc == 0)
                rc = lc_buf_putc(out, '"');
        }
    }
    return rc ? rc : lc_buf_putc(out, ']');
}

/*
 * Appends {"status":..,"ready":..,"reasons":[..],"components":{name:{"status":..,
 * "detail":.., field:value..}},"losses":{..}} (core/losses.h) to out. The overall status is the
 * worst component's; *healthy is false when any component is down. 0 or -ENOMEM/-E2BIG.
 */
int lc_health_render(struct lc_buf *out, bool *healthy)
{
    enum lc_health worst = LC_HEALTH_OK;
    int rc;
    pthread_mutex_lock(&health_mu);
    for (const struct health_entry *e = health_head; e; e = e->next)
        if (e->state > worst)
            worst = e->state;
    rc = lc_buf_printf(out, "{\"status\":\"%s\",\"ready\":%s", health_names[worst],
                       atomic_load(&health_ready) ? "true" : "false");
    if (rc == 0)
        rc = health_reasons_render(out);
    if (rc == 0)
        rc = lc_buf_append(out, ",\"components\":{", 15);
    for (const struct health_entry *e = health_head; e && rc == 0; e = e->next)
        rc = health_entry_render(out, e, e == health_head);
    if (rc == 0)
        rc = lc_buf_append(out, "},", 2);
    pthread_mutex_unlock(&health_mu);
    if (rc == 0)
        rc = lc_losses_render(out);
    if (rc == 0)
        rc = lc_buf_append(out, "}\n", 2);
    *healthy = worst != LC_HEALTH_DOWN;
    return rc;
}

/* Sets what /ready answers. */
void lc_health_set_ready(bool ready)
{
    atomic_store(&health_ready, ready);
}

/* Frees every component entry (exit only, after lc_http_stop()). */
void lc_health_shutdown(void)
{
    pthread_mutex_lock(&health_mu);
    while (health_head) {
        struct health_entry *e = health_head;
        health_head = e->next;
        free(e);
    }
    health_count = 0;
    pthread_mutex_unlock(&health_mu);
}
