/* SPDX-License-Identifier: MIT */
/*
 * loki_conf.h: the Loki output's configuration and HTTP set-up, shared by the
 * output (loki.c: the runtime) and `dlq replay` (dlq_cli.c). Nothing here
 * keeps state between calls or touches the event loop.
 */
#ifndef LC_LOKI_CONF_H
#define LC_LOKI_CONF_H

#include "core/options.h"
#include "core/plugin.h"
#include "core/tenant.h"
#include "output/loki_encode.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

/* The `outputs: - type: loki` options (lc_loki_conf_options describes every field). */
struct lc_loki_conf {
    char *url;
    int encoding;    /* enum lc_loki_encoding */
    int compression; /* 0 gzip, 1 none (JSON only) */
    char *tenant;
    struct {
        char *username;
        char *password;
        char *password_file;
    } basic_auth;
    char *bearer_token;
    char *bearer_token_file;
    struct {
        char *ca_file;
        char *cert_file;
        char *key_file;
        bool insecure_skip_verify;
    } tls;
    struct lc_kvlist headers;
    int64_t timeout_ms;
    int64_t max_inflight;
    struct {
        int64_t max_age_ms;
        int too_old; /* enum lc_loki_too_old */
        int64_t max_future_ms;
    } timestamps;
    struct {
        int64_t initial_ms;
        int64_t max_ms;
        int64_t max_batches;
        int64_t max_bytes;
        int drop_policy; /* enum lc_retry_drop */
    } retry;
    struct {
        int64_t failures;
        int64_t cooldown_ms;
    } breaker;
    struct {
        int64_t max_bytes;
        char *dir;
    } dlq;
};

extern const struct lc_option lc_loki_conf_options[];

/*
 * What every push request carries, built once per output: the push URL, the
 * header list (content type, tenant, bearer token, extra headers) and the
 * basic-auth secret. Secrets are read from their files here and are never
 * logged. Owned by the struct; lc_loki_conf_http_free releases (NULL members ok).
 */
struct lc_loki_http {
    char *push_url;
    char *username;
    char *password;
    struct curl_slist *headers; /* without X-Scope-OrgID: lc_loki_conf_headers_for adds it */
    char *tenant_header;        /* "X-Scope-OrgID: <the output's tenant>", or NULL */
    struct curl_slist own;      /* tenant_header in front of headers */
    struct curl_slist *all;     /* the list for the output's own tenant: &own or headers */
};

/* Room for one request's X-Scope-OrgID header (a request slot's, or replay's). */
struct lc_loki_tenant_header {
    struct curl_slist node;
    char line[sizeof("X-Scope-OrgID: ") + LC_TENANT_MAX];
};

/*
 * The header list of one push of `tenant` (a batch's, core/tenant.h; "" or
 * NULL: the output's `tenant`, if any): X-Scope-OrgID in t's storage, in
 * front of h's shared list, without allocating. Valid while t and h are;
 * set it with CURLOPT_HTTPHEADER before each request.
 */
struct curl_slist *lc_loki_conf_headers_for(const struct lc_loki_http *h,
                                            struct lc_loki_tenant_header *t, const char *tenant);

/*
 * Fills h from c for an encoder's content type. 0, or negative errno with a
 * message in err (unreadable secret file, a header with CR/LF, bad URL).
 */
int lc_loki_conf_http_init(struct lc_loki_http *h, const struct lc_loki_conf *c,
                           const struct lc_loki_enc *enc, char *err, size_t errlen);
void lc_loki_conf_http_free(struct lc_loki_http *h);
/*
 * Wipes and frees h->password once every easy handle got it (libcurl copies
 * string options): the secret then lives only where libcurl needs it.
 */
void lc_loki_conf_forget_secrets(struct lc_loki_http *h);
/*
 * What a push's outcome means, decided here once for the output and `dlq
 * replay`: 2xx LC_SEND_OK; a transport error (result != CURLE_OK), 429 and
 * 5xx LC_SEND_RETRY; 401 and 403 LC_SEND_AUTH; every other answer
 * LC_SEND_REJECT (a 400: Loki kept what it could, re-sending cannot help).
 */
enum lc_send_result lc_loki_conf_push_result(CURLcode result, long status);
/* A hint to append to a TLS failure's message ("" for other results), for the output c. */
const char *lc_loki_conf_tls_hint(CURLcode result, const struct lc_loki_conf *c);
/* Logs a warning when c turns TLS verification off. */
void lc_loki_conf_warn_insecure(const struct lc_loki_conf *c, const char *name);
/* Sets URL, POST, headers, auth, TLS, timeouts and keep-alive on an easy handle. 0 or -EINVAL. */
int lc_loki_conf_easy_setup(CURL *easy, const struct lc_loki_http *h, const struct lc_loki_conf *c);
/* The timestamp policy of c. */
struct lc_loki_ts_policy lc_loki_conf_ts_policy(const struct lc_loki_conf *c);
/* The DLQ directory of an output: dlq.dir, or <state_dir>/dlq/<name>. Writes into buf. */
const char *lc_loki_conf_dlq_dir(const struct lc_loki_conf *c, const char *state_dir,
                                 const char *name, char *buf, size_t len);
/* Creates the encoder c asks for, with the output's static labels. */
int lc_loki_conf_encoder(struct lc_loki_enc **out, const struct lc_loki_conf *c,
                         const struct lc_kvlist *labels, size_t max_body);
/* The start of a push answer's body: Loki says there why it refused a batch. */
#define LC_LOKI_ANSWER_MAX 4096
struct lc_loki_answer {
    size_t len;
    char text[LC_LOKI_ANSWER_MAX]; /* NUL-terminated; the rest of a longer body is dropped */
};
/*
 * A CURLOPT_WRITEFUNCTION that keeps the start of the body in the struct
 * lc_loki_answer given as CURLOPT_WRITEDATA (len set to 0 before each request).
 */
size_t lc_loki_answer_write(char *p, size_t sz, size_t n, void *answer);
/* The name of c's encoding ("protobuf", "json"), for messages. */
const char *lc_loki_conf_encoding_name(const struct lc_loki_conf *c);

#endif
