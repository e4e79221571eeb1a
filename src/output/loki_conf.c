/* SPDX-License-Identifier: MIT */
/*
 * loki_conf.c: the Loki output's options and its HTTP set-up (push URL,
 * headers, secrets, TLS, timeouts, the answer's meaning), shared by the
 * output (loki.c) and `dlq replay` (dlq_cli.c).
 */
#include "output/loki_conf.h"

#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const encoding_names[] = {"protobuf", "json", NULL};
static const char *const compression_names[] = {"gzip", "none", NULL};
static const char *const too_old_names[] = {"drop", "clamp", "send", NULL};
static const char *const drop_names[] = {"oldest", "newest", "random", NULL};

#define C(f)    offsetof(struct lc_loki_conf, f)
#define S(s, f) offsetof(__typeof__(((struct lc_loki_conf *)0)->s), f)

static const struct lc_option basic_auth_options[] = {
    {LC_OPT_STR, "username", NULL, S(basic_auth, username), .help = "Basic auth user."},
    {LC_OPT_STR, "password", NULL, S(basic_auth, password), .flags = LC_OPT_SECRET,
     .help = "Basic auth password (use ${ENV} or password_file rather than plain text)."},
    {LC_OPT_STR, "password_file", NULL, S(basic_auth, password_file),
     .help = "File holding the basic auth password (trailing newline ignored); read again on "
             "SIGHUP."},
    LC_OPT_END,
};

static const struct lc_option tls_options[] = {
    {LC_OPT_STR, "ca_file", NULL, S(tls, ca_file), .help = "CA bundle to verify the server."},
    {LC_OPT_STR, "cert_file", NULL, S(tls, cert_file), .help = "Client certificate (PEM)."},
    {LC_OPT_STR, "key_file", NULL, S(tls, key_file), .help = "Client private key (PEM)."},
    {LC_OPT_BOOL, "insecure_skip_verify", "false", S(tls, insecure_skip_verify),
     .help = "Do not verify the server's certificate and name (testing only; logs a warning at "
             "start)."},
    LC_OPT_END,
};

static const struct lc_option timestamps_options[] = {
    {LC_OPT_DURATION, "max_age", "168h", S(timestamps, max_age_ms), 0, 0,
     .help = "Records older than this are handled per too_old (Loki's "
             "reject_old_samples_max_age); 0 disables."},
    {LC_OPT_ENUM, "too_old", "drop", S(timestamps, too_old), .choices = too_old_names,
     .help = "drop: count and drop; clamp: move inside the window; send: send unchanged."},
    {LC_OPT_DURATION, "max_future", "10m", S(timestamps, max_future_ms), 0, 0,
     .help = "Records further in the future are clamped to now (Loki's "
             "creation_grace_period); 0 disables."},
    LC_OPT_END,
};

static const struct lc_option retry_options[] = {
    {LC_OPT_DURATION, "initial", "1s", S(retry, initial_ms), 10, 3600000,
     .help = "First backoff; doubles per attempt, with jitter."},
    {LC_OPT_DURATION, "max", "60s", S(retry, max_ms), 10, 86400000,
     .help = "Longest backoff, and the most a Retry-After header is honoured."},
    {LC_OPT_INT, "max_batches", "50", S(retry, max_batches), 1, 100000,
     .help = "Batches the retry queue holds at most."},
    {LC_OPT_SIZE, "max_bytes", "64MiB", S(retry, max_bytes), 1, 0,
     .help = "Bytes the retry queue holds at most."},
    {LC_OPT_ENUM, "drop_policy", "oldest", S(retry, drop_policy), .choices = drop_names,
     .help = "Which batch goes to the dead-letter queue when the retry queue is full."},
    LC_OPT_END,
};

static const struct lc_option breaker_options[] = {
    {LC_OPT_INT, "failures", "5", S(breaker, failures), 0, 1000000,
     .help = "Consecutive failed requests that open the circuit breaker; 0 disables it."},
    {LC_OPT_DURATION, "cooldown", "30s", S(breaker, cooldown_ms), 10, 86400000,
     .help = "How long the breaker stays open before one probe request."},
    LC_OPT_END,
};

static const struct lc_option dlq_options[] = {
    {LC_OPT_SIZE, "max_bytes", "256MiB", S(dlq, max_bytes), 4096, 0,
     .help = "Size cap of the dead-letter queue; the oldest segments are deleted first."},
    {LC_OPT_STR, "dir", NULL, S(dlq, dir),
     .help = "Directory of the dead-letter queue (default <state_dir>/dlq/<output name>)."},
    LC_OPT_END,
};

const struct lc_option lc_loki_conf_options[] = {
    {LC_OPT_STR, "url", NULL, C(url), .flags = LC_OPT_REQUIRED,
     .help = "Loki base URL (http://host:3100); /loki/api/v1/push is appended (before a query "
             "string). Userinfo and credential query parameters are never shown."},
    {LC_OPT_ENUM, "encoding", "protobuf", C(encoding), .choices = encoding_names,
     .help = "protobuf (snappy-compressed) or json."},
    {LC_OPT_ENUM, "compression", "gzip", C(compression), .choices = compression_names,
     .help = "JSON only: gzip or none."},
    {LC_OPT_STR, "tenant", NULL, C(tenant), .help = "X-Scope-OrgID header (multi-tenant Loki)."},
    {LC_OPT_SECTION, "basic_auth", NULL, C(basic_auth), .sub = basic_auth_options,
     .help = "HTTP basic authentication."},
    {LC_OPT_STR, "bearer_token", NULL, C(bearer_token), .flags = LC_OPT_SECRET,
     .help = "Authorization: Bearer token (use ${ENV} or bearer_token_file)."},
    {LC_OPT_STR, "bearer_token_file", NULL, C(bearer_token_file),
     .help = "File holding the bearer token; read again on SIGHUP."},
    {LC_OPT_SECTION, "tls", NULL, C(tls), .sub = tls_options, .help = "TLS settings."},
    {LC_OPT_MAP, "headers", NULL, C(headers), .flags = LC_OPT_HEADERS,
     .help = "Extra HTTP headers for every push; a value may be {value: v, secret: true}. "
             "Credential headers (Authorization, Cookie, X-Api-Key...) and secret ones are "
             "never shown."},
    {LC_OPT_DURATION, "timeout", "10s", C(timeout_ms), 100, 3600000,
     .help = "Whole-request timeout (connect included)."},
    {LC_OPT_INT, "max_inflight", "4", C(max_inflight), 1, 64,
     .help = "Push requests in flight at most; also the connection pool's size."},
    {LC_OPT_SECTION, "timestamps", NULL, C(timestamps), .sub = timestamps_options,
     .help = "Timestamp validation before sending."},
    {LC_OPT_SECTION, "retry", NULL, C(retry), .sub = retry_options,
     .help = "Retries of 429, 5xx and transport errors."},
    {LC_OPT_SECTION, "breaker", NULL, C(breaker), .sub = breaker_options,
     .help = "Circuit breaker."},
    {LC_OPT_SECTION, "dlq", NULL, C(dlq), .sub = dlq_options, .help = "Dead-letter queue."},
    LC_OPT_END,
};

#undef C
#undef S

/* Reads a secret file: at most 64 KiB, trailing whitespace dropped. */
static int read_secret(const char *path, char **out, char *err, size_t errlen)
{
    char buf[65536];
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
        return -e;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == sizeof(buf) - 1)
            break;
    }
    close(fd);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    *out = strdup(buf);
    explicit_bzero(buf, sizeof(buf));
    return *out ? 0 : -ENOMEM;
}

static bool has_crlf(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

static int add_header(struct curl_slist **l, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *h = malloc(n);
    struct curl_slist *nl;

    if (!h)
        return -ENOMEM;
    snprintf(h, n, "%s: %s", name, value);
    nl = curl_slist_append(*l, h);
    explicit_bzero(h, n);
    free(h);
    if (!nl)
        return -ENOMEM;
    *l = nl;
    return 0;
}

int lc_loki_conf_http_init(struct lc_loki_http *h, const struct lc_loki_conf *c,
                           const struct lc_loki_enc *enc, char *err, size_t errlen)
{
    static const char push_path[] = "/loki/api/v1/push";
    char *token = NULL;
    int rc = 0;

    memset(h, 0, sizeof(*h));
    if (!c->url || (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0)) {
        snprintf(err, errlen, "url must start with http:// or https://");
        return -EINVAL;
    }
    /* the push path goes before a query string (?api_key=...) or fragment */
    size_t ul = strcspn(c->url, "?#");
    const char *rest = c->url + ul;
    while (ul > 0 && c->url[ul - 1] == '/')
        ul--;
    size_t pl = strlen(push_path);
    bool has_path = ul >= pl && strncmp(c->url + ul - pl, push_path, pl) == 0;
    size_t rl = strcspn(rest, "#"); /* a fragment is never sent */
    h->push_url = malloc(ul + pl + rl + 1);
    if (!h->push_url)
        return -ENOMEM;
    memcpy(h->push_url, c->url, ul);
    if (!has_path)
        memcpy(h->push_url + ul, push_path, pl);
    memcpy(h->push_url + ul + (has_path ? 0 : pl), rest, rl);
    h->push_url[ul + (has_path ? 0 : pl) + rl] = '\0';

    rc = add_header(&h->headers, "Content-Type", lc_loki_enc_content_type(enc));
    if (rc == 0 && lc_loki_enc_content_encoding(enc))
        rc = add_header(&h->headers, "Content-Encoding", lc_loki_enc_content_encoding(enc));
    if (rc == 0) {
        /* no 100-continue round trip: Loki reads the body anyway */
        struct curl_slist *nl = curl_slist_append(h->headers, "Expect:");
        rc = nl ? 0 : -ENOMEM;
        if (nl)
            h->headers = nl;
    }
    if (rc == 0 && c->tenant && *c->tenant) {
        if (has_crlf(c->tenant)) {
            snprintf(err, errlen, "tenant contains a line break");
            rc = -EINVAL;
            goto out_err;
        }
        size_t n = strlen(c->tenant) + sizeof("X-Scope-OrgID: ");
        h->tenant_header = malloc(n);
        rc = h->tenant_header ? 0 : -ENOMEM;
        if (h->tenant_header)
            snprintf(h->tenant_header, n, "X-Scope-OrgID: %s", c->tenant);
    }
    for (size_t i = 0; rc == 0 && i < c->headers.n; i++) {
        const struct lc_kv *kv = &c->headers.v[i];
        if (has_crlf(kv->key) || has_crlf(kv->value) || strchr(kv->key, ':') || !*kv->key) {
            snprintf(err, errlen, "headers: invalid header name or value for '%s'", kv->key);
            rc = -EINVAL;
            goto out_err;
        }
        rc = add_header(&h->headers, kv->key, kv->value ? kv->value : "");
    }
    if (rc < 0)
        goto out_err;
    if (c->bearer_token_file) {
        rc = read_secret(c->bearer_token_file, &token, err, errlen);
    } else if (c->bearer_token && *c->bearer_token) {
        token = strdup(c->bearer_token);
        rc = token ? 0 : -ENOMEM;
    }
    if (rc == 0 && token) {
        if (has_crlf(token)) {
            snprintf(err, errlen, "bearer token contains a line break");
            rc = -EINVAL;
        } else {
            size_t n = strlen(token) + 8;
            char *v = malloc(n);
            rc = v ? 0 : -ENOMEM;
            if (v) {
                snprintf(v, n, "Bearer %s", token);
                rc = add_header(&h->headers, "Authorization", v);
                explicit_bzero(v, n);
                free(v);
            }
        }
    }
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    if (rc < 0)
        goto out_err;
    if (c->basic_auth.username && *c->basic_auth.username) {
        h->username = strdup(c->basic_auth.username);
        if (c->basic_auth.password_file)
            rc = read_secret(c->basic_auth.password_file, &h->password, err, errlen);
        else
            h->password = strdup(c->basic_auth.password ? c->basic_auth.password : "");
        if (rc == 0 && (!h->username || !h->password))
            rc = -ENOMEM;
        if (rc < 0)
            goto out_err;
    }
    h->all = h->headers;
    if (h->tenant_header) {
        h->own.data = h->tenant_header;
        h->own.next = h->headers;
        h->all = &h->own;
    }
    return 0;

out_err:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    lc_loki_conf_http_free(h);
    return rc;
}

void lc_loki_conf_forget_secrets(struct lc_loki_http *h)
{
    if (h->password) {
        explicit_bzero(h->password, strlen(h->password));
        free(h->password);
        h->password = NULL;
    }
}

enum lc_send_result lc_loki_conf_push_result(CURLcode result, long status)
{
    if (result != CURLE_OK || status == 429 || status >= 500)
        return LC_SEND_RETRY;
    if (status >= 200 && status < 300)
        return LC_SEND_OK;
    if (status == 401 || status == 403)
        return LC_SEND_AUTH;
    return LC_SEND_REJECT;
}

const char *lc_loki_conf_tls_hint(CURLcode result, const struct lc_loki_conf *c)
{
    bool https = c->url && strncmp(c->url, "https://", 8) == 0;

    switch (result) {
    case CURLE_PEER_FAILED_VERIFICATION:
#if defined(CURLE_SSL_CACERT) && CURLE_SSL_CACERT != CURLE_PEER_FAILED_VERIFICATION
    case CURLE_SSL_CACERT:
#endif
        return " (the server's certificate is not trusted for this host: check the URL's host "
               "name, and set tls.ca_file to the CA that signed the certificate)";
    case CURLE_SSL_CERTPROBLEM:
        return " (tls.cert_file or tls.key_file cannot be used)";
    case CURLE_SSL_CACERT_BADFILE:
        return " (tls.ca_file cannot be read)";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        if (https && !c->tls.cert_file)
            return " (the TLS connection was closed: if the server requires a client "
                   "certificate, set tls.cert_file and tls.key_file)";
        return "";
    default:
        return "";
    }
}

void lc_loki_conf_warn_insecure(const struct lc_loki_conf *c, const char *name)
{
    if (c->tls.insecure_skip_verify)
        lc_logf(LC_LOG_WARN, name, NULL,
                "tls.insecure_skip_verify is on: the server's certificate and name are NOT "
                "verified; anyone on the path can read the logs and the credentials");
}

struct curl_slist *lc_loki_conf_headers_for(const struct lc_loki_http *h,
                                            struct lc_loki_tenant_header *t, const char *tenant)
{
    if (!tenant || !*tenant)
        return h->all;
    snprintf(t->line, sizeof(t->line), "X-Scope-OrgID: %s", tenant);
    t->node.data = t->line;
    t->node.next = h->headers;
    return &t->node;
}

void lc_loki_conf_http_free(struct lc_loki_http *h)
{
    free(h->push_url);
    free(h->tenant_header);
    free(h->username);
    lc_loki_conf_forget_secrets(h);
    /* the header list holds the bearer token and secret headers */
    for (struct curl_slist *l = h->headers; l; l = l->next)
        explicit_bzero(l->data, strlen(l->data));
    curl_slist_free_all(h->headers);
    memset(h, 0, sizeof(*h));
}

int lc_loki_conf_easy_setup(CURL *easy, const struct lc_loki_http *h, const struct lc_loki_conf *c)
{
    CURLcode r = CURLE_OK;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (r == CURLE_OK)                                                                         \
            r = curl_easy_setopt(easy, opt, val);                                                  \
    } while (0)
    SET(CURLOPT_URL, h->push_url);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_HTTPHEADER, h->all);
    SET(CURLOPT_USERAGENT, "log_capturer/" LC_VERSION);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_TCP_NODELAY, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
    if (h->username) {
        SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SET(CURLOPT_USERNAME, h->username);
        SET(CURLOPT_PASSWORD, h->password);
    }
    if (c->tls.ca_file)
        SET(CURLOPT_CAINFO, c->tls.ca_file);
    if (c->tls.cert_file)
        SET(CURLOPT_SSLCERT, c->tls.cert_file);
    if (c->tls.key_file)
        SET(CURLOPT_SSLKEY, c->tls.key_file);
    SET(CURLOPT_SSL_VERIFYPEER, c->tls.insecure_skip_verify ? 0L : 1L);
    SET(CURLOPT_SSL_VERIFYHOST, c->tls.insecure_skip_verify ? 0L : 2L);
#undef SET
    return r == CURLE_OK ? 0 : -EINVAL;
}

struct lc_loki_ts_policy lc_loki_conf_ts_policy(const struct lc_loki_conf *c)
{
    return (struct lc_loki_ts_policy){
        .max_age_ns = c->timestamps.max_age_ms * LC_NS_PER_MSEC,
        .too_old = c->timestamps.too_old,
        .max_future_ns = c->timestamps.max_future_ms * LC_NS_PER_MSEC,
    };
}

const char *lc_loki_conf_dlq_dir(const struct lc_loki_conf *c, const char *state_dir,
                                 const char *name, char *buf, size_t len)
{
    if (c->dlq.dir && *c->dlq.dir)
        snprintf(buf, len, "%s", c->dlq.dir);
    else
        snprintf(buf, len, "%s/dlq/%s", state_dir ? state_dir : ".", name);
    return buf;
}

int lc_loki_conf_encoder(struct lc_loki_enc **out, const struct lc_loki_conf *c,
                         const struct lc_kvlist *labels, size_t max_body)
{
    return lc_loki_enc_new(out, (enum lc_loki_encoding)c->encoding, c->compression == 0,
                           labels ? labels->v : NULL, labels ? labels->n : 0, max_body);
}

const char *lc_loki_conf_encoding_name(const struct lc_loki_conf *c)
{
    return encoding_names[c->encoding];
}

size_t lc_loki_answer_write(char *p, size_t sz, size_t n, void *answer)
{
    struct lc_loki_answer *a = answer;
    size_t len = sz * n;
    size_t room = sizeof(a->text) - 1 - a->len;
    size_t k = len < room ? len : room;

    memcpy(a->text + a->len, p, k);
    a->len += k;
    a->text[a->len] = '\0';
    return len;
}
