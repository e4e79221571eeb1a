/* SPDX-License-Identifier: MIT */
/* docker_client.c: Docker Engine API client (GET only) over the unix socket, on the event loop. */
#include "input/docker_client.h"

#include "core/buf.h"
#include "core/curl_uv.h"
#include "core/log.h"
#include "core/metrics.h"
#include "parse/docker_engine_json.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/*
 * State:
 * - struct lc_docker_client_req: one short request. Its easy handle is kept with it
 *   and both are recycled through client->spare (at most LC_DOCKER_CLIENT_SPARE), so a
 *   steady flow of inspects allocates only the JSON parse.
 * - struct lc_docker_client_stream: one followed response (events or logs), its own
 *   easy handle, freed when it ends or is closed.
 * Both sit on a list of the client from creation to release, so lc_docker_client_free
 * finds everything.
 *
 * libcurl refuses to add or remove transfers from inside its callbacks (the
 * write callbacks, where stream data and events are delivered). The client
 * counts how deep it is inside such callbacks (in_curl); whatever a user
 * callback asks for there that would add, remove or unpause a transfer is
 * marked on the object and done by the `reaper`, a zero-delay uv timer, on
 * the next loop iteration. Cancellation itself is immediate: a flag that every
 * path checks before calling back.
 */

#define LC_DOCKER_CLIENT_SPARE   16
#define LC_DOCKER_CLIENT_URL_MAX 512
#define LC_DOCKER_CLIENT_MSG_MAX 256
#define LC_DOCKER_CLIENT_ERRBODY 4096 /* error body of a stream whose status is not 200 */

/* URL-encoded {"type":["container"]} */
#define LC_DOCKER_CLIENT_EVENTS_FILTER "filters=%7B%22type%22%3A%5B%22container%22%5D%7D"

enum lc_docker_client_ep { EP_PING, EP_VERSION, EP_LIST, EP_INSPECT, EP_EVENTS, EP_LOGS, EP_COUNT };

static const char *const lc_docker_client_ep_names[EP_COUNT] = {"ping",    "version", "containers",
                                                                "inspect", "events",  "logs"};

struct lc_docker_client_req {
    struct lc_docker_client *client;
    CURL *easy;
    enum lc_docker_client_ep ep;
    void (*cb)(void);
    void *arg;
    bool added;      /* in the short multi */
    bool cancelled;  /* no callback any more */
    bool delivering; /* its callback runs now: the last thing it does */
    bool negotiate;  /* EP_PING step of a negotiation: go on with /version */
    struct lc_buf body;
    char url[LC_DOCKER_CLIENT_URL_MAX];
    char errbuf[CURL_ERROR_SIZE];
    struct lc_docker_client_req *prev, *next; /* client->reqs, or client->spare (next only) */
};

struct lc_docker_client_stream {
    struct lc_docker_client *client;
    CURL *easy;
    enum lc_docker_client_ep ep;
    lc_docker_client_event_fn on_event;
    lc_docker_client_data_fn on_data;
    lc_docker_client_end_fn on_end;
    void *arg;
    bool added;       /* in the stream multi */
    bool closed;      /* no callback any more; release pending */
    bool paused;      /* by the user (or by on_data returning LC_DOCKER_CLIENT_PAUSE) */
    bool want_resume; /* resume asked inside a curl callback: the reaper does it */
    bool skipping;    /* events: inside an oversized line */
    bool body_cut;    /* the error body did not fit (counted once) */
    bool conn_counted;
    long status; /* HTTP status once known */
    int user_err;
    struct lc_buf line; /* events: partial line; streams with status != 200: error body */
    char url[LC_DOCKER_CLIENT_URL_MAX];
    char errbuf[CURL_ERROR_SIZE];
    struct lc_docker_client_stream *prev, *next; /* client->streams */
};

struct lc_docker_client {
    uv_loop_t *loop;
    struct lc_curl *short_curl;
    struct lc_curl *stream_curl;
    uv_timer_t reaper;
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char name[64];
    long request_timeout_ms;
    long connect_timeout_ms;
    size_t max_body_bytes;
    size_t max_event_bytes;
    unsigned max_pending;
    unsigned max_streams;
    char version[16]; /* negotiated, "" before */
    char prefix[24];  /* "/v1.41" */
    struct lc_docker_client_req *reqs;
    struct lc_docker_client_req *spare;
    unsigned nspare;
    struct lc_docker_client_stream *streams;
    struct lc_docker_client_stats st;
    int in_curl; /* depth inside libcurl write callbacks */
    int in_user; /* depth inside user callbacks */
    bool reaper_armed;
    bool freeing;
    bool torn_down;
    unsigned closing; /* uv/curl objects whose close has not completed */
    void (*closed)(void *arg);
    void *closed_arg;
    /* metrics */
    struct lc_metric_family *m_requests;
    struct lc_metric_series *m_conn[2]; /* requests by connection: new, reused */
    struct lc_metric_series *m_events;
    struct lc_metric_series *m_events_skipped;
    struct lc_metric_series *m_bodies_cut;
    struct lc_metric_series *m_streams_open;
};

static void lc_docker_client_reaper_arm(struct lc_docker_client *client);
static void lc_docker_client_teardown(struct lc_docker_client *client);
static bool lc_docker_client_stream_status(struct lc_docker_client_stream *s);

/* ------------------------------------------------------------------ helpers */

bool lc_docker_client_id_valid(const char *id)
{
    size_t n = 0;

    if (!id)
        return false;
    for (; id[n]; n++) {
        char c = id[n];
        if (n >= LC_DOCKER_CLIENT_ID_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return n > 0;
}

/* "1.41" -> 1041; -1 when malformed. */
static int lc_docker_client_version_num(const char *v)
{
    char *end;
    long major, minor;

    if (!v || !*v)
        return -1;
    major = strtol(v, &end, 10);
    if (*end != '.' || major < 0 || major > 99)
        return -1;
    minor = strtol(end + 1, &end, 10);
    if (*end != '\0' || minor < 0 || minor > 999)
        return -1;
    return (int)(major * 1000 + minor);
}

static int lc_docker_client_status_err(long status)
{
    if (status == 200)
        return 0;
    if (status == 404)
        return -ENOENT;
    if (status == 501)
        return -ENOTSUP;
    if (status >= 500)
        return -EIO;
    return -EPROTO;
}

static int lc_docker_client_curl_err(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return 0;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
        return -ECONNRESET;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
        return -EPROTO;
    default:
        return -EIO;
    }
}

static void lc_docker_client_count_request(struct lc_docker_client *client,
                                           enum lc_docker_client_ep ep, long status, CURL *easy)
{
    char code[24];
    long nconn = 0;

    if (status > 0)
        snprintf(code, sizeof(code), "%ld", status);
    else
        snprintf(code, sizeof(code), "error");
    lc_counter_inc(
        lc_metric_series(client->m_requests, client->name, lc_docker_client_ep_names[ep], code));
    if (easy && curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &nconn) == CURLE_OK && nconn > 0) {
        client->st.conns_new += (uint64_t)nconn;
        lc_counter_add(client->m_conn[0], (uint64_t)nconn);
    } else if (ep != EP_EVENTS && ep != EP_LOGS && status > 0) {
        client->st.conns_reused++;
        lc_counter_inc(client->m_conn[1]);
    }
}

/* Debug builds check what was sent: this client never sends anything but GET. */
static void lc_docker_client_assert_get(CURL *easy)
{
#ifndef NDEBUG
    char *method = NULL;
    if (curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_METHOD, &method) == CURLE_OK && method)
        assert(strcmp(method, "GET") == 0);
#else
    (void)easy;
#endif
}

/*
 * The only place a request is configured. Every transfer is a GET on the
 * daemon's unix socket: no method, body or upload option is ever set.
 */
static int lc_docker_client_easy_setup(struct lc_docker_client *client, CURL *easy, const char *url,
                                       bool stream, curl_write_callback write_cb, void *write_data,
                                       char *errbuf)
{
    CURLcode rc = CURLE_OK;

    curl_easy_reset(easy);
    rc |= curl_easy_setopt(easy, CURLOPT_URL, url);
    rc |= curl_easy_setopt(easy, CURLOPT_UNIX_SOCKET_PATH, client->socket_path);
    rc |= curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    rc |= curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http");
    rc |= curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(easy, CURLOPT_USERAGENT, "log_capturer/" LC_VERSION);
    rc |= curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, client->connect_timeout_ms);
    rc |= curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
    rc |= curl_easy_setopt(easy, CURLOPT_WRITEDATA, write_data);
    rc |= curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
    if (stream) {
        /* A stream's connection lives and dies with it; never cached afterwards. */
        rc |= curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
    } else {
        rc |= curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, client->request_timeout_ms);
    }
    errbuf[0] = '\0';
    return rc == CURLE_OK ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------------ short requests */

static void lc_docker_client_req_unlink(struct lc_docker_client *client,
                                        struct lc_docker_client_req *r)
{
    /* the head is found by identity, which needs no invariant on prev (nor does the analyzer) */
    if (client->reqs == r)
        client->reqs = r->next;
    else
        r->prev->next = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    client->st.pending--;
}

/* Returns a finished or cancelled request to the spare list, or frees it. */
static void lc_docker_client_req_release(struct lc_docker_client *client,
                                         struct lc_docker_client_req *r)
{
    lc_docker_client_req_unlink(client, r);
    r->cb = NULL;
    r->arg = NULL;
    r->added = false;
    r->cancelled = false;
    r->delivering = false;
    r->negotiate = false;
    if (!client->freeing && client->nspare < LC_DOCKER_CLIENT_SPARE &&
        r->body.alloc <= 256 * 1024) {
        lc_buf_reset(&r->body);
        r->next = client->spare;
        client->spare = r;
        client->nspare++;
        return;
    }
    if (r->easy)
        curl_easy_cleanup(r->easy);
    lc_buf_free(&r->body);
    free(r);
}

static size_t lc_docker_client_req_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct lc_docker_client_req *r = userdata;

    (void)size;
    if (r->cancelled || lc_buf_append(&r->body, ptr, nmemb) != 0)
        return 0; /* CURLE_WRITE_ERROR: -E2BIG, or nobody wants the answer */
    return nmemb;
}

static void lc_docker_client_req_done(CURL *easy, CURLcode result, void *arg);

static int lc_docker_client_req_add(struct lc_docker_client *client, struct lc_docker_client_req *r)
{
    int rc = lc_curl_add(client->short_curl, r->easy, lc_docker_client_req_done, r);
    if (rc == 0)
        r->added = true;
    return rc;
}

static int lc_docker_client_req_start(struct lc_docker_client *client, enum lc_docker_client_ep ep,
                                      const char *path, void (*cb)(void), void *arg, bool negotiate)
{
    struct lc_docker_client_req *r;
    int rc;

    if (client->freeing)
        return -EINVAL;
    if (client->st.pending >= client->max_pending)
        return -EBUSY;
    r = client->spare;
    if (r) {
        client->spare = r->next;
        client->nspare--;
        r->next = NULL;
    } else {
        r = calloc(1, sizeof(*r));
        if (!r)
            return -ENOMEM;
        r->easy = curl_easy_init();
        lc_buf_init(&r->body, client->max_body_bytes);
        if (!r->easy) {
            free(r);
            return -ENOMEM;
        }
    }
    r->client = client;
    r->ep = ep;
    r->cb = cb;
    r->arg = arg;
    r->negotiate = negotiate;
    r->body.cap = client->max_body_bytes;
    lc_buf_reset(&r->body);
    if ((size_t)snprintf(r->url, sizeof(r->url), "http://localhost%s", path) >= sizeof(r->url)) {
        rc = -EINVAL;
        goto out_release;
    }
    rc = lc_docker_client_easy_setup(client, r->easy, r->url, false, lc_docker_client_req_write, r,
                                     r->errbuf);
    if (rc < 0)
        goto out_release;
    /*
     * On the list before adding, so that release can unlink it. Short requests
     * are never deferred: they live on their own multi, and the only libcurl
     * callbacks that call out to the consumer are the stream multi's.
     */
    r->next = client->reqs;
    if (client->reqs)
        client->reqs->prev = r;
    client->reqs = r;
    client->st.pending++;
    rc = lc_docker_client_req_add(client, r);
    if (rc < 0) {
        lc_docker_client_req_release(client, r);
        return rc;
    }
    return 0;

out_release:
    r->next = client->spare;
    client->spare = r;
    client->nspare++;
    return rc;
}

/* Fills res for a finished short request. */
static void lc_docker_client_req_result(struct lc_docker_client_req *r, CURLcode result,
                                        struct lc_docker_client_result *res, char *msg,
                                        size_t msglen)
{
    long status = 0;

    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    res->status = status;
    res->message = msg;
    msg[0] = '\0';
    if (result == CURLE_WRITE_ERROR) {
        res->err = -E2BIG;
        snprintf(msg, msglen, "response larger than %zu bytes", r->body.cap);
    } else if (result != CURLE_OK) {
        res->err = lc_docker_client_curl_err(result);
        snprintf(msg, msglen, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(result));
    } else if ((res->err = lc_docker_client_status_err(status)) != 0) {
        lc_engine_json_message(r->body.data, r->body.len, msg, msglen);
    }
}

static void lc_docker_client_res_set(struct lc_docker_client_result *res, int err, char *msg,
                                     size_t msglen, const char *text)
{
    res->err = err;
    snprintf(msg, msglen, "%s", text);
    res->message = msg;
}

static void lc_docker_client_deliver_ping(struct lc_docker_client_req *r,
                                          struct lc_docker_client_result *res, char *msg,
                                          size_t msglen)
{
    if (res->err == 0 && !(r->body.len == 2 && memcmp(r->body.data, "OK", 2) == 0))
        lc_docker_client_res_set(res, -EPROTO, msg, msglen, "/_ping did not answer OK");
    ((lc_docker_client_ping_fn)r->cb)(r->arg, res);
}

static void lc_docker_client_deliver_version(struct lc_docker_client *client,
                                             struct lc_docker_client_req *r,
                                             struct lc_docker_client_result *res, char *msg,
                                             size_t msglen)
{
    struct lc_docker_version v = {"", "", "", ""};
    struct lc_engine_json_doc doc = {0};
    char negotiated[16] = "";

    if (res->err == 0) {
        int rc = lc_engine_json_version(r->body.data, r->body.len, &v, &doc);
        int have = rc == 0 ? lc_docker_client_version_num(v.api_version) : -1;
        int dmin = lc_docker_client_version_num(v.min_api_version);
        int ours_max = lc_docker_client_version_num(LC_DOCKER_CLIENT_API_MAX);
        int ours_min = lc_docker_client_version_num(LC_DOCKER_CLIENT_API_MIN);
        if (have < 0) {
            lc_docker_client_res_set(res, -EPROTO, msg, msglen, "/version: no ApiVersion");
        } else {
            int use = have < ours_max ? have : ours_max;
            if (use < ours_min || (dmin > 0 && use < dmin)) {
                snprintf(msg, msglen, "daemon API %s (min %s) outside the supported %s..%s",
                         v.api_version, v.min_api_version, LC_DOCKER_CLIENT_API_MIN,
                         LC_DOCKER_CLIENT_API_MAX);
                res->err = -ENOTSUP;
            } else {
                snprintf(negotiated, sizeof(negotiated), "%d.%d", use / 1000, use % 1000);
                snprintf(client->version, sizeof(client->version), "%s", negotiated);
                snprintf(client->prefix, sizeof(client->prefix), "/v%s", negotiated);
                v.negotiated = client->version;
            }
        }
    }
    ((lc_docker_client_version_fn)r->cb)(r->arg, res, res->err == 0 ? &v : NULL);
    lc_engine_json_release(&doc);
}

/* The decoder's error as the callback's result: -EPROTO with what was wrong, or -ENOMEM. */
static void lc_docker_client_decode_err(struct lc_docker_client_result *res, int rc, char *msg,
                                        size_t msglen, const char *proto)
{
    if (rc == -EPROTO)
        lc_docker_client_res_set(res, -EPROTO, msg, msglen, proto);
    else if (rc < 0)
        lc_docker_client_res_set(res, rc, msg, msglen, "out of memory");
}

static void lc_docker_client_deliver_list(struct lc_docker_client_req *r,
                                          struct lc_docker_client_result *res, char *msg,
                                          size_t msglen)
{
    struct lc_engine_json_doc doc = {0};
    const struct lc_docker_summary *sum = NULL;
    size_t n = 0;

    if (res->err == 0)
        lc_docker_client_decode_err(res,
                                    lc_engine_json_list(r->body.data, r->body.len, &sum, &n, &doc),
                                    msg, msglen, "/containers/json: not an array");
    ((lc_docker_client_list_fn)r->cb)(r->arg, res, res->err == 0 ? sum : NULL,
                                      res->err == 0 ? n : 0);
    lc_engine_json_release(&doc);
}

static void lc_docker_client_deliver_inspect(struct lc_docker_client_req *r,
                                             struct lc_docker_client_result *res, char *msg,
                                             size_t msglen)
{
    struct lc_engine_json_doc doc = {0};
    struct lc_docker_inspect c;

    memset(&c, 0, sizeof(c));
    if (res->err == 0)
        lc_docker_client_decode_err(res,
                                    lc_engine_json_inspect(r->body.data, r->body.len, &c, &doc),
                                    msg, msglen, "/containers/{id}/json: no Id");
    ((lc_docker_client_inspect_fn)r->cb)(r->arg, res, res->err == 0 ? &c : NULL);
    lc_engine_json_release(&doc);
}

static void lc_docker_client_req_done(CURL *easy, CURLcode result, void *arg)
{
    struct lc_docker_client_req *r = arg;
    struct lc_docker_client *client = r->client;
    struct lc_docker_client_result res;
    char msg[LC_DOCKER_CLIENT_MSG_MAX];

    (void)easy;
    r->added = false;
    lc_docker_client_assert_get(r->easy);
    lc_docker_client_req_result(r, result, &res, msg, sizeof(msg));
    client->st.requests++;
    if (res.err)
        client->st.request_errors++;
    lc_docker_client_count_request(client, r->ep, res.status, r->easy);
    if (r->cancelled || client->freeing) {
        lc_docker_client_req_release(client, r);
        return;
    }
    if (r->negotiate && res.err == 0 && r->ep == EP_PING && r->body.len == 2 &&
        memcmp(r->body.data, "OK", 2) == 0) {
        /* Step two of a negotiation: same request object, now /version. */
        r->ep = EP_VERSION;
        r->negotiate = false;
        lc_buf_reset(&r->body);
        snprintf(r->url, sizeof(r->url), "http://localhost/version");
        if (lc_docker_client_easy_setup(client, r->easy, r->url, false, lc_docker_client_req_write,
                                        r, r->errbuf) == 0 &&
            lc_docker_client_req_add(client, r) == 0)
            return;
        lc_docker_client_res_set(&res, -ENOMEM, msg, sizeof(msg), "cannot start /version");
    }
    r->delivering = true;
    client->in_user++;
    switch (r->ep) {
    case EP_PING:
        if (r->negotiate) {
            if (res.err == 0)
                lc_docker_client_res_set(&res, -EPROTO, msg, sizeof(msg),
                                         "/_ping did not answer OK");
            ((lc_docker_client_version_fn)r->cb)(r->arg, &res, NULL);
        } else {
            lc_docker_client_deliver_ping(r, &res, msg, sizeof(msg));
        }
        break;
    case EP_VERSION:
        lc_docker_client_deliver_version(client, r, &res, msg, sizeof(msg));
        break;
    case EP_LIST:
        lc_docker_client_deliver_list(r, &res, msg, sizeof(msg));
        break;
    case EP_INSPECT:
        lc_docker_client_deliver_inspect(r, &res, msg, sizeof(msg));
        break;
    default:
        break;
    }
    client->in_user--;
    lc_docker_client_req_release(client, r);
    if (client->freeing)
        lc_docker_client_reaper_arm(client);
}

/* ------------------------------------------------------------------ streams */

/* Unlinks and frees a stream of `client` (= s->client, passed so the analyzer sees the list). */
static void lc_docker_client_stream_free(struct lc_docker_client *client,
                                         struct lc_docker_client_stream *s)
{
    assert(s->client == client);
    if (client->streams == s)
        client->streams = s->next;
    else
        s->prev->next = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (s->easy) {
        if (s->added)
            lc_curl_remove(client->stream_curl, s->easy);
        if (!s->conn_counted) {
            s->conn_counted = true;
            lc_docker_client_stream_status(s);
            lc_docker_client_count_request(client, s->ep, s->status, s->easy);
        }
        curl_easy_cleanup(s->easy);
    }
    client->st.streams_open--;
    client->st.streams_ended++;
    lc_gauge_add(client->m_streams_open, -1);
    lc_buf_free(&s->line);
    free(s);
}

/* A status other than 200: keep the error body for the message, pass nothing on. */
static bool lc_docker_client_stream_status(struct lc_docker_client_stream *s)
{
    if (s->status == 0)
        curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &s->status);
    return s->status == 200;
}

static void lc_docker_client_event_parse(struct lc_docker_client_stream *s, const char *line,
                                         size_t len)
{
    struct lc_docker_client *client = s->client;
    struct lc_engine_json_doc doc = {0};
    struct lc_docker_event ev;

    if (lc_engine_json_event(line, len, &ev, &doc) < 0) {
        client->st.events_skipped++;
        lc_counter_inc(client->m_events_skipped);
        lc_log(LC_LOG_DEBUG, "docker_api", "skipped an /events line of %zu bytes", len);
        return;
    }
    client->st.events++;
    lc_counter_inc(client->m_events);
    client->in_user++;
    s->on_event(s->arg, &ev);
    client->in_user--;
    lc_engine_json_release(&doc);
}

/* Splits event bytes into lines; a line over max_event_bytes is skipped whole. */
static void lc_docker_client_events_feed(struct lc_docker_client_stream *s, const char *p, size_t n)
{
    struct lc_docker_client *client = s->client;

    while (n > 0 && !s->closed && !client->freeing) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;

        if (s->skipping) {
            if (nl)
                s->skipping = false;
        } else if (lc_buf_append(&s->line, p, take) != 0) {
            lc_buf_reset(&s->line);
            client->st.events_skipped++;
            lc_counter_inc(client->m_events_skipped);
            s->skipping = nl == NULL;
        } else if (nl) {
            size_t len = s->line.len;
            while (len > 0 && s->line.data[len - 1] == '\r')
                len--;
            if (len > 0)
                lc_docker_client_event_parse(s, s->line.data, len);
            lc_buf_reset(&s->line);
        }
        if (!nl)
            break;
        p = nl + 1;
        n -= take + 1;
    }
}

static size_t lc_docker_client_stream_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct lc_docker_client_stream *s = userdata;
    struct lc_docker_client *client = s->client;
    size_t ret = nmemb;

    (void)size;
    if (s->closed || client->freeing)
        return 0; /* abort: nobody listens any more */
    if (s->paused)
        return CURL_WRITEFUNC_PAUSE; /* data that came before the pause took hold */
    if (!lc_docker_client_stream_status(s)) {
        /* error body: keep the start for the message, drop the rest */
        size_t room = s->line.cap > s->line.len ? s->line.cap - s->line.len : 0;
        if (nmemb > room || lc_buf_append(&s->line, ptr, nmemb < room ? nmemb : room) != 0) {
            if (!s->body_cut) /* once per answer */
                lc_counter_inc(client->m_bodies_cut);
            s->body_cut = true;
        }
        return nmemb;
    }
    client->in_curl++;
    if (s->ep == EP_EVENTS) {
        lc_docker_client_events_feed(s, ptr, nmemb);
    } else {
        client->in_user++;
        int rc = s->on_data(s->arg, ptr, nmemb);
        client->in_user--;
        if (rc == LC_DOCKER_CLIENT_PAUSE) {
            s->paused = true;
            ret = CURL_WRITEFUNC_PAUSE;
        } else if (rc < 0) {
            s->user_err = rc;
            ret = 0;
        } else {
            client->st.stream_bytes += nmemb;
        }
    }
    client->in_curl--;
    if (s->closed || client->freeing)
        return 0;
    return ret;
}

static void lc_docker_client_stream_done(CURL *easy, CURLcode result, void *arg)
{
    struct lc_docker_client_stream *s = arg;
    struct lc_docker_client *client = s->client;
    struct lc_docker_client_result res;
    char msg[LC_DOCKER_CLIENT_MSG_MAX];

    (void)easy;
    s->added = false;
    lc_docker_client_assert_get(s->easy);
    lc_docker_client_stream_status(s);
    lc_docker_client_count_request(client, s->ep, s->status, s->easy);
    s->conn_counted = true;
    if (s->closed || client->freeing) {
        lc_docker_client_stream_free(client, s);
        return;
    }
    msg[0] = '\0';
    res.status = s->status;
    res.message = msg;
    if (s->user_err && result == CURLE_WRITE_ERROR) {
        lc_docker_client_res_set(&res, s->user_err, msg, sizeof(msg), "stopped by the consumer");
    } else if (result != CURLE_OK) {
        res.err = lc_docker_client_curl_err(result);
        snprintf(msg, sizeof(msg), "%s", s->errbuf[0] ? s->errbuf : curl_easy_strerror(result));
    } else if ((res.err = lc_docker_client_status_err(s->status)) != 0) {
        lc_engine_json_message(s->line.data, s->line.len, msg, sizeof(msg));
    } else {
        res.err = 0;
    }
    /* The stream is no longer followed from here on: count it before the callback. */
    s->closed = true;
    client->in_user++;
    s->on_end(s->arg, &res);
    client->in_user--;
    lc_docker_client_stream_free(client, s);
    if (client->freeing)
        lc_docker_client_reaper_arm(client);
}

static int lc_docker_client_stream_add(struct lc_docker_client *client,
                                       struct lc_docker_client_stream *s)
{
    int rc = lc_curl_add(client->stream_curl, s->easy, lc_docker_client_stream_done, s);
    if (rc == 0)
        s->added = true;
    return rc;
}

static int lc_docker_client_stream_start(struct lc_docker_client *client,
                                         enum lc_docker_client_ep ep, const char *path, void *arg,
                                         struct lc_docker_client_stream **out)
{
    struct lc_docker_client_stream *s;
    int rc;

    if (client->freeing)
        return -EINVAL;
    if (client->st.streams_open >= client->max_streams)
        return -EBUSY;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->client = client;
    s->ep = ep;
    s->arg = arg;
    lc_buf_init(&s->line, ep == EP_EVENTS ? client->max_event_bytes : LC_DOCKER_CLIENT_ERRBODY);
    if ((size_t)snprintf(s->url, sizeof(s->url), "http://localhost%s", path) >= sizeof(s->url)) {
        rc = -EINVAL;
        goto out_free;
    }
    s->easy = curl_easy_init();
    if (!s->easy) {
        rc = -ENOMEM;
        goto out_free;
    }
    rc = lc_docker_client_easy_setup(client, s->easy, s->url, true, lc_docker_client_stream_write,
                                     s, s->errbuf);
    if (rc < 0)
        goto out_easy;
    if (client->in_curl == 0) {
        rc = lc_docker_client_stream_add(client, s);
        if (rc < 0)
            goto out_easy;
    } else {
        lc_docker_client_reaper_arm(client);
    }
    s->next = client->streams;
    if (client->streams)
        client->streams->prev = s;
    client->streams = s;
    client->st.streams_open++;
    client->st.streams_started++;
    lc_gauge_add(client->m_streams_open, 1);
    *out = s;
    return 0;

out_easy:
    curl_easy_cleanup(s->easy);
out_free:
    lc_buf_free(&s->line);
    free(s);
    return rc;
}

int lc_docker_client_events(struct lc_docker_client *client, int64_t since_ns,
                            lc_docker_client_event_fn on_event, lc_docker_client_end_fn on_end,
                            void *arg, struct lc_docker_client_stream **out)
{
    char path[LC_DOCKER_CLIENT_URL_MAX];
    struct lc_docker_client_stream *s = NULL;
    int rc;

    if (!client || !on_event || !on_end || !out)
        return -EINVAL;
    if (!client->version[0])
        return -ENOTCONN;
    if (since_ns > 0)
        snprintf(path, sizeof(path), "%s/events?%s&since=%" PRId64 ".%09" PRId64, client->prefix,
                 LC_DOCKER_CLIENT_EVENTS_FILTER, since_ns / (int64_t)1000000000,
                 since_ns % (int64_t)1000000000);
    else
        snprintf(path, sizeof(path), "%s/events?%s", client->prefix,
                 LC_DOCKER_CLIENT_EVENTS_FILTER);
    rc = lc_docker_client_stream_start(client, EP_EVENTS, path, arg, &s);
    if (rc < 0)
        return rc;
    s->on_event = on_event;
    s->on_end = on_end;
    *out = s;
    return 0;
}

int lc_docker_client_logs(struct lc_docker_client *client, const char *id,
                          const struct lc_docker_client_logs_opts *o,
                          lc_docker_client_data_fn on_data, lc_docker_client_end_fn on_end,
                          void *arg, struct lc_docker_client_stream **out)
{
    char path[LC_DOCKER_CLIENT_URL_MAX];
    struct lc_docker_client_stream *s = NULL;
    int64_t since = o ? o->since_ns : 0;
    int n, rc;

    if (!client || !on_data || !on_end || !out || !lc_docker_client_id_valid(id))
        return -EINVAL;
    if (!client->version[0])
        return -ENOTCONN;
    n = snprintf(path, sizeof(path), "%s/containers/%s/logs?stdout=1&stderr=1&timestamps=1%s",
                 client->prefix, id, o && o->follow ? "&follow=1" : "");
    if (since > 0)
        snprintf(path + n, sizeof(path) - (size_t)n, "&since=%" PRId64 ".%09" PRId64,
                 since / (int64_t)1000000000, since % (int64_t)1000000000);
    rc = lc_docker_client_stream_start(client, EP_LOGS, path, arg, &s);
    if (rc < 0)
        return rc;
    s->on_data = on_data;
    s->on_end = on_end;
    *out = s;
    return 0;
}

void lc_docker_client_stream_pause(struct lc_docker_client_stream *s)
{
    if (!s || s->closed || s->paused)
        return;
    s->paused = true;
    s->want_resume = false;
    if (s->added)
        curl_easy_pause(s->easy, CURLPAUSE_RECV);
}

void lc_docker_client_stream_resume(struct lc_docker_client_stream *s)
{
    if (!s || s->closed || !s->paused)
        return;
    s->paused = false;
    if (s->client->in_curl > 0 || s->client->in_user > 0) {
        /*
         * Unpausing delivers buffered data at once, which must not happen
         * inside a callback (libcurl's, or the consumer's own on_data).
         */
        s->want_resume = true;
        lc_docker_client_reaper_arm(s->client);
        return;
    }
    if (s->added)
        curl_easy_pause(s->easy, CURLPAUSE_CONT);
}

bool lc_docker_client_stream_paused(const struct lc_docker_client_stream *s)
{
    return s && s->paused;
}

void lc_docker_client_stream_close(struct lc_docker_client_stream *s)
{
    struct lc_docker_client *client;

    if (!s || s->closed)
        return;
    client = s->client;
    s->closed = true;
    if (client->in_curl > 0) {
        lc_docker_client_reaper_arm(client);
        return;
    }
    lc_docker_client_stream_free(client, s);
}

/* ------------------------------------------------------------------ reaper and free */

static void lc_docker_client_reaper_cb(uv_timer_t *t)
{
    struct lc_docker_client *client = t->data;
    struct lc_docker_client_stream *s, *snext;

    client->reaper_armed = false;
    if (client->freeing) {
        lc_docker_client_teardown(client);
        return;
    }
    for (s = client->streams; s; s = snext) {
        snext = s->next;
        if (s->closed) {
            lc_docker_client_stream_free(client, s);
        } else if (!s->added) {
            int rc = lc_docker_client_stream_add(client, s);
            if (rc < 0) {
                struct lc_docker_client_result res = {rc, 0, "cannot start the stream"};
                s->closed = true;
                client->in_user++;
                s->on_end(s->arg, &res);
                client->in_user--;
                lc_docker_client_stream_free(client, s);
                if (client->freeing) {
                    lc_docker_client_teardown(client);
                    return;
                }
                snext = client->streams; /* the callback may have changed the list */
            }
        } else if (s->want_resume && !s->paused) {
            s->want_resume = false;
            curl_easy_pause(s->easy, CURLPAUSE_CONT);
            if (client->freeing) {
                lc_docker_client_teardown(client);
                return;
            }
            snext = client->streams;
        }
    }
}

static void lc_docker_client_reaper_arm(struct lc_docker_client *client)
{
    if (client->reaper_armed || client->torn_down)
        return;
    client->reaper_armed = true;
    uv_timer_start(&client->reaper, lc_docker_client_reaper_cb, 0, 0);
}

static void lc_docker_client_finish(struct lc_docker_client *client)
{
    void (*closed)(void *) = client->closed;
    void *arg = client->closed_arg;
    struct lc_docker_client_req *r;

    while ((r = client->spare) != NULL) {
        client->spare = r->next;
        curl_easy_cleanup(r->easy);
        lc_buf_free(&r->body);
        free(r);
    }
    free(client);
    if (closed)
        closed(arg);
}

static void lc_docker_client_part_closed(void *arg)
{
    struct lc_docker_client *client = arg;

    if (--client->closing == 0)
        lc_docker_client_finish(client);
}

static void lc_docker_client_reaper_closed(uv_handle_t *h)
{
    lc_docker_client_part_closed(h->data);
}

/* Releases everything; only outside libcurl's and the consumer's callbacks. */
static void lc_docker_client_teardown(struct lc_docker_client *client)
{
    if (client->torn_down)
        return;
    client->torn_down = true;
    while (client->streams) {
        client->streams->closed = true;
        lc_docker_client_stream_free(client, client->streams);
    }
    while (client->reqs) {
        struct lc_docker_client_req *r = client->reqs;
        if (r->added)
            lc_curl_remove(client->short_curl, r->easy);
        r->added = false;
        lc_docker_client_req_release(client, r); /* freeing: frees, no spare */
    }
    client->closing = 3;
    uv_timer_stop(&client->reaper);
    uv_close((uv_handle_t *)&client->reaper, lc_docker_client_reaper_closed);
    lc_curl_free(client->short_curl, lc_docker_client_part_closed, client);
    lc_curl_free(client->stream_curl, lc_docker_client_part_closed, client);
}

void lc_docker_client_free(struct lc_docker_client *client, void (*closed)(void *arg), void *arg)
{
    if (!client || client->freeing)
        return;
    client->freeing = true;
    client->closed = closed;
    client->closed_arg = arg;
    if (client->in_curl > 0 || client->in_user > 0)
        lc_docker_client_reaper_arm(client); /* inside a callback: finish on the next iteration */
    else
        lc_docker_client_teardown(client);
}

static const char *const conn_kinds[] = {"new", "reused", NULL}; /* m_conn */

/* The client's series, labelled input=<name> (requests by endpoint and status: on demand). */
static const struct lc_metric_row client_series[] = {
    {LC_COUNTER, "log_capturer_docker_api_connections_total",
     "Docker API requests by connection: newly opened or reused.",
     offsetof(struct lc_docker_client, m_conn), "kind", conn_kinds},
    {LC_COUNTER, "log_capturer_docker_events_total", "Docker container events received.",
     offsetof(struct lc_docker_client, m_events)},
    {LC_COUNTER, "log_capturer_docker_events_skipped_total",
     "Docker event lines skipped: oversized or unparseable.",
     offsetof(struct lc_docker_client, m_events_skipped)},
    {LC_COUNTER, "log_capturer_docker_api_error_bodies_cut_total",
     "Docker API error answers whose body was cut (at its cap, or out of memory): the message "
     "logged is its start.",
     offsetof(struct lc_docker_client, m_bodies_cut)},
    {LC_GAUGE, "log_capturer_docker_api_streams_open",
     "Docker API streams (events and logs) open now.",
     offsetof(struct lc_docker_client, m_streams_open)},
};
LC_METRIC_VALUES_FIT(struct lc_docker_client, m_conn, conn_kinds);

/* ------------------------------------------------------------------ public requests */

struct lc_docker_client *lc_docker_client_new(uv_loop_t *loop,
                                              const struct lc_docker_client_opts *o)
{
    static const char *const req_labels[] = {"input", "endpoint", "status", NULL};
    struct lc_docker_client_opts d = {0};
    struct lc_docker_client *client;
    const char *path;

    if (!loop)
        return NULL;
    if (!o)
        o = &d;
    path = o->socket_path ? o->socket_path : LC_DOCKER_CLIENT_SOCKET;
    client = calloc(1, sizeof(*client));
    if (!client)
        return NULL;
    if (!*path || strlen(path) >= sizeof(client->socket_path))
        goto out_free;
    snprintf(client->socket_path, sizeof(client->socket_path), "%s", path);
    snprintf(client->name, sizeof(client->name), "%s", o->name ? o->name : "docker");
    client->loop = loop;
    client->request_timeout_ms = o->request_timeout_ms > 0 ? o->request_timeout_ms : 10000;
    client->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 5000;
    client->max_body_bytes = o->max_body_bytes ? o->max_body_bytes : 16u << 20;
    client->max_event_bytes = o->max_event_bytes ? o->max_event_bytes : 64u << 10;
    client->max_pending = o->max_pending ? o->max_pending : 1024;
    client->max_streams = o->max_streams ? o->max_streams : 1024;
    client->short_curl = lc_curl_new(loop, o->max_pool_conns > 0 ? o->max_pool_conns : 4, 0);
    if (!client->short_curl)
        goto out_free;
    /* Streams are bounded by max_streams ourselves; curl must never queue one. */
    client->stream_curl = lc_curl_new(loop, 0, 0);
    if (!client->stream_curl)
        goto out_short;
    if (uv_timer_init(loop, &client->reaper) != 0)
        goto out_stream;
    client->reaper.data = client;
    client->m_requests =
        lc_metric_family(LC_COUNTER, "log_capturer_docker_api_requests_total",
                         "Docker Engine API requests by endpoint and HTTP status.", req_labels);
    lc_metric_register_rows(client, client_series, LC_METRIC_ROWS(client_series), "input",
                            client->name);
    return client;

out_stream:
    lc_curl_free(client->stream_curl, NULL, NULL);
out_short:
    lc_curl_free(client->short_curl, NULL, NULL);
out_free:
    free(client);
    return NULL;
}

int lc_docker_client_ping(struct lc_docker_client *client, lc_docker_client_ping_fn cb, void *arg)
{
    if (!client || !cb)
        return -EINVAL;
    return lc_docker_client_req_start(client, EP_PING, "/_ping", (void (*)(void))cb, arg, false);
}

int lc_docker_client_negotiate(struct lc_docker_client *client, lc_docker_client_version_fn cb,
                               void *arg)
{
    if (!client || !cb)
        return -EINVAL;
    return lc_docker_client_req_start(client, EP_PING, "/_ping", (void (*)(void))cb, arg, true);
}

const char *lc_docker_client_version(const struct lc_docker_client *client)
{
    return client && client->version[0] ? client->version : NULL;
}

int lc_docker_client_list(struct lc_docker_client *client, lc_docker_client_list_fn cb, void *arg)
{
    char path[64];

    if (!client || !cb)
        return -EINVAL;
    if (!client->version[0])
        return -ENOTCONN;
    snprintf(path, sizeof(path), "%s/containers/json", client->prefix);
    return lc_docker_client_req_start(client, EP_LIST, path, (void (*)(void))cb, arg, false);
}

int lc_docker_client_inspect(struct lc_docker_client *client, const char *id,
                             lc_docker_client_inspect_fn cb, void *arg)
{
    char path[LC_DOCKER_CLIENT_ID_MAX + 64];

    if (!client || !cb || !lc_docker_client_id_valid(id))
        return -EINVAL;
    if (!client->version[0])
        return -ENOTCONN;
    snprintf(path, sizeof(path), "%s/containers/%s/json", client->prefix, id);
    return lc_docker_client_req_start(client, EP_INSPECT, path, (void (*)(void))cb, arg, false);
}

unsigned lc_docker_client_cancel(struct lc_docker_client *client, const void *arg)
{
    struct lc_docker_client_req *r, *next;
    unsigned n = 0;

    if (!client)
        return 0;
    for (r = client->reqs; r; r = next) {
        next = r->next;
        if (r->arg != arg || r->cancelled || r->delivering)
            continue;
        r->cancelled = true;
        n++;
        if (r->added)
            lc_curl_remove(client->short_curl, r->easy);
        r->added = false;
        lc_docker_client_req_release(client, r);
    }
    return n;
}

void lc_docker_client_get_stats(const struct lc_docker_client *client,
                                struct lc_docker_client_stats *st)
{
    if (!client || !st)
        return;
    *st = client->st;
}
