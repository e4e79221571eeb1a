/* SPDX-License-Identifier: MIT */
/*
 * promtail.c: a Promtail 2.x/3.x configuration converted to the native YAML.
 *
 * The Promtail file is read with libyaml's document API (every node keeps its
 * line and column) and written out as native YAML text, with a comment
 * `# approximated: ...` wherever the behaviour differs in a way worth knowing.
 * Nothing is interpreted here beyond the mapping: the native loader validates
 * the result, so `convert` and `run --promtail-config` load the same thing.
 * A key or value without an equivalent is an error naming its line, or with
 * LC_PT_LENIENT a warning and the key ignored. docs/promtail.md has the table.
 */
#include "core/promtail.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/options.h"
#include "process/rx.h"
#include "process/selector.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define PT_DEFAULT_POSITIONS "/var/log/positions.yaml" /* Promtail's default */
#define PT_MAX_LABELS        64
#define PT_TEXT_MAX          (64u << 20) /* the converted text, at most */

/* Text being written: an lc_buf; a failed append (no memory, past the cap) sticks in oom. */
struct pt_buf {
    struct lc_buf b;
    bool oom;
};

struct pt_kv {
    const char *k, *v;
};

struct pt {
    yaml_document_t doc;
    const char *name;
    unsigned flags;
    FILE *warn;
    size_t warnings;
    char *err;
    size_t errlen;
    struct pt_buf top, outs, ins;
    char *positions;
    size_t ninputs;
    bool have_listen;
};

/* One scrape config's pipeline, converted once and written under each of its inputs. */
struct pt_pipe {
    struct pt_buf stages;
    struct pt_kv statics[PT_MAX_LABELS]; /* static_labels, merged into the input's labels */
    size_t nstatics;
    bool in_kubernetes; /* the input decodes CRI itself: `cri` is a no-op */
    /* For `match`: the labels every record of the input has (values known), ... */
    struct pt_kv known[2 * PT_MAX_LABELS];
    size_t nknown;
    /* ... and those a record may get per line (from the input or a stage): unknown values */
    const char *dyn[2 * PT_MAX_LABELS];
    size_t ndyn;
};

/* Text output ----------------------------------------------------------------------------- */

static void put(struct pt_buf *b, const char *s, size_t n)
{
    if (b->b.cap == 0)
        lc_buf_init(&b->b, PT_TEXT_MAX);
    if (!b->oom && lc_buf_append(&b->b, s, n) < 0)
        b->oom = true;
}

static void putstr(struct pt_buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void putf(struct pt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct pt_buf *b, const char *fmt, ...)
{
    va_list ap;

    if (b->b.cap == 0)
        lc_buf_init(&b->b, PT_TEXT_MAX);
    va_start(ap, fmt);
    if (!b->oom && lc_buf_vprintf(&b->b, fmt, ap) < 0)
        b->oom = true;
    va_end(ap);
}

/*
 * A double-quoted YAML scalar. Without LC_PT_EXPAND_ENV, "${" is written
 * "$${" so that the native loader keeps it literally, as Promtail does.
 */
static void putq_env(struct pt_buf *b, const char *s, bool expand);
static void putq(struct pt *P, struct pt_buf *b, const char *s)
{
    putq_env(b, s, P->flags & LC_PT_EXPAND_ENV);
}

/* A scalar the loader must keep literally (a regex replacement's ${1}). */
static void putq_lit(struct pt_buf *b, const char *s)
{
    putq_env(b, s, false);
}

static void putq_env(struct pt_buf *b, const char *s, bool expand)
{
    putstr(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(b, e, 2);
        } else if (c == '\n') {
            putstr(b, "\\n");
        } else if (c == '\t') {
            putstr(b, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            putf(b, "\\x%02x", c);
        } else if (c == '$' && s[1] == '{' && !expand) {
            putstr(b, "$$");
        } else {
            put(b, s, 1);
        }
    }
    putstr(b, "\"");
}

/* Errors --------------------------------------------------------------------------------- */

/*
 * A key or value without an equivalent: -EINVAL with "NAME:LINE:COL: msg",
 * or (lenient) a warning and 0, the caller then ignores the key.
 */
static int unsupported(struct pt *P, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int unsupported(struct pt *P, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (P->flags & LC_PT_LENIENT) {
        P->warnings++;
        if (P->warn)
            fprintf(P->warn, "%s:%zu:%zu: warning: %s (ignored: --promtail-lenient)\n", P->name,
                    n->start_mark.line + 1, n->start_mark.column + 1, msg);
        return 0;
    }
    snprintf(P->err, P->errlen, "%s:%zu:%zu: %s", P->name, n->start_mark.line + 1,
             n->start_mark.column + 1, msg);
    return -EINVAL;
}

/* An invalid value: always an error. */
static int invalid(struct pt *P, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int invalid(struct pt *P, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(P->err, P->errlen, "%s:%zu:%zu: %s", P->name, n->start_mark.line + 1,
             n->start_mark.column + 1, msg);
    return -EINVAL;
}

/* Nodes ---------------------------------------------------------------------------------- */

static yaml_node_t *node(struct pt *P, int idx)
{
    return yaml_document_get_node(&P->doc, idx);
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool is_null(const yaml_node_t *n)
{
    const char *s = scalar(n);
    return !n || (s && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                  (!*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0));
}

/* pr, it: the loop variable's name (a declarator: it cannot be parenthesised) */
// NOLINTBEGIN(bugprone-macro-parentheses)
#define FOR_PAIRS(map, pr)                                                                         \
    for (yaml_node_pair_t *pr = (map)->data.mapping.pairs.start;                                   \
         pr < (map)->data.mapping.pairs.top; pr++)
#define FOR_ITEMS(seq, it)                                                                         \
    for (yaml_node_item_t *it = (seq)->data.sequence.items.start;                                  \
         it < (seq)->data.sequence.items.top; it++)
// NOLINTEND(bugprone-macro-parentheses)

static int want_map(struct pt *P, const yaml_node_t *n, const char *what)
{
    if (n->type != YAML_MAPPING_NODE)
        return invalid(P, n, "'%s' must be a mapping", what);
    return 0;
}

static int want_seq(struct pt *P, const yaml_node_t *n, const char *what)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return invalid(P, n, "'%s' must be a list", what);
    return 0;
}

static int want_str(struct pt *P, const yaml_node_t *n, const char *what, const char **out)
{
    if (n->type != YAML_SCALAR_NODE)
        return invalid(P, n, "'%s' must be a scalar", what);
    *out = scalar(n);
    return 0;
}

/* "true"/"false" (YAML 1.1 forms too). */
static int want_bool(struct pt *P, const yaml_node_t *n, const char *what, bool *out)
{
    const char *s = scalar(n);
    if (s && (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "yes") == 0)) {
        *out = true;
        return 0;
    }
    if (s && (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "no") == 0)) {
        *out = false;
        return 0;
    }
    return invalid(P, n, "'%s' must be true or false", what);
}

/* A Go duration ("1m30s", "500ms") as milliseconds. */
static int want_dur(struct pt *P, const yaml_node_t *n, const char *what, int64_t *ms)
{
    const char *s = scalar(n);
    if (!s || lc_parse_duration_ms(s, ms) < 0)
        return invalid(P, n, "'%s' must be a duration like 500ms, 10s or 5m", what);
    return 0;
}

/* Is key k one of the NULL-terminated list? */
static bool one_of(const char *k, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(k, *list) == 0)
            return true;
    return false;
}

/* A mapping of string to string, e.g. labels. */
static int str_map(struct pt *P, const yaml_node_t *n, const char *what, struct pt_kv *kv,
                   size_t *nkv, size_t max)
{
    int rc = want_map(P, n, what);
    if (rc)
        return rc;
    FOR_PAIRS(n, pr)
    {
        yaml_node_t *k = node(P, pr->key), *v = node(P, pr->value);
        if (!scalar(k) || !scalar(v))
            return invalid(P, v, "'%s' must map names to strings", what);
        if (*nkv >= max)
            return invalid(P, k, "'%s': more than %zu entries", what, max);
        kv[*nkv].k = scalar(k);
        kv[*nkv].v = is_null(v) ? "" : scalar(v);
        (*nkv)++;
    }
    return 0;
}

static void put_kv_flow(struct pt *P, struct pt_buf *b, const struct pt_kv *kv, size_t n)
{
    putstr(b, "{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            putstr(b, ", ");
        putq(P, b, kv[i].k);
        putstr(b, ": ");
        putq(P, b, kv[i].v);
    }
    putstr(b, "}");
}

/* server, positions ------------------------------------------------------------------------ */

static int conv_server(struct pt *P, const yaml_node_t *n)
{
    static const char *const ignored[] = {"grpc_listen_port",
                                          "grpc_listen_address",
                                          "register_instrumentation",
                                          "http_server_read_timeout",
                                          "http_server_write_timeout",
                                          "http_server_idle_timeout",
                                          "log_format",
                                          "profiling_enabled",
                                          "health_check_target",
                                          "grpc_server_max_recv_msg_size",
                                          "grpc_server_max_send_msg_size",
                                          "graceful_shutdown_timeout",
                                          NULL};
    const char *addr = NULL, *port = "9080", *level = NULL;
    bool disable = false;
    int rc = want_map(P, n, "server");

    if (rc)
        return rc;
    FOR_PAIRS(n, pr)
    {
        yaml_node_t *k = node(P, pr->key), *v = node(P, pr->value);
        const char *key = scalar(k) ? scalar(k) : "";
        if (strcmp(key, "http_listen_address") == 0)
            rc = want_str(P, v, key, &addr);
        else if (strcmp(key, "http_listen_port") == 0)
            rc = want_str(P, v, key, &port);
        else if (strcmp(key, "log_level") == 0)
            rc = want_str(P, v, key, &level);
        else if (strcmp(key, "disable") == 0)
            rc = want_bool(P, v, key, &disable);
        else if (one_of(key, ignored))
            putf(&P->top,
                 "# approximated: server.%s has no equivalent (no gRPC server; the HTTP "
                 "endpoint has fixed timeouts): left out\n",
                 key);
        else
            rc = unsupported(P, k, "server.%s is not supported", key);
        if (rc)
            return rc;
    }
    P->have_listen = true;
    if (disable || strcmp(port, "0") == 0) {
        putstr(&P->top, "listen: \"off\"\n");
    } else {
        if (!addr || !*addr) {
            putstr(&P->top,
                   "# approximated: Promtail listens on every interface by default; this agent on "
                   "loopback only\n#   (set server.http_listen_address: 0.0.0.0 to listen beyond "
                   "the host)\n");
            addr = "127.0.0.1";
        }
        putstr(&P->top, "listen: ");
        {
            char hp[300];
            snprintf(hp, sizeof(hp), strchr(addr, ':') ? "[%s]:%s" : "%s:%s", addr, port);
            putq(P, &P->top, hp);
        }
        putstr(&P->top, "\n");
    }
    if (level) {
        static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
        if (!one_of(level, levels))
            return invalid(P, n, "server.log_level must be debug, info, warn or error");
        putf(&P->top, "log_level: %s\n", level);
    }
    return 0;
}

static int conv_positions(struct pt *P, const yaml_node_t *n)
{
    int rc = want_map(P, n, "positions");
    if (rc)
        return rc;
    FOR_PAIRS(n, pr)
    {
        yaml_node_t *k = node(P, pr->key), *v = node(P, pr->value);
        const char *key = scalar(k) ? scalar(k) : "", *s = NULL;
        int64_t ms;
        if (strcmp(key, "filename") == 0) {
            rc = want_str(P, v, key, &s);
            if (rc == 0) {
                free(P->positions);
                P->positions = strdup(s);
                if (!P->positions)
                    return -ENOMEM;
            }
        } else if (strcmp(key, "sync_period") == 0) {
            rc = want_dur(P, v, "positions.sync_period", &ms);
            if (rc == 0)
                putf(&P->top, "checkpoint_interval: %" PRId64 "ms   # positions.sync_period\n", ms);
        } else if (strcmp(key, "ignore_invalid_yaml") == 0) {
            putstr(&P->top, "# approximated: positions.ignore_invalid_yaml: the positions file is "
                            "read once, at the first start; an invalid one stops it\n");
        } else {
            rc = unsupported(P, k, "positions.%s is not supported", key);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* clients ------------------------------------------------------------------------------------ */

/*
 * A client's sub-mapping whose keys keep their names: `what` (Promtail's) as
 * `native` (ours), string keys strs, boolean keys bools (may be NULL).
 */
static int conv_section(struct pt *P, struct pt_buf *o, const yaml_node_t *n, const char *what,
                        const char *native, const char *const *strs, const char *const *bools)
{
    int rc = want_map(P, n, what);
    if (rc)
        return rc;
    putf(o, "    %s:\n", native);
    FOR_PAIRS(n, pr)
    {
        yaml_node_t *k = node(P, pr->key), *v = node(P, pr->value);
        const char *key = scalar(k) ? scalar(k) : "", *s = NULL;
        bool b = false;
        if (one_of(key, strs)) {
            rc = want_str(P, v, key, &s);
            if (rc == 0) {
                putf(o, "      %s: ", key);
                putq(P, o, s);
                putstr(o, "\n");
            }
        } else if (bools && one_of(key, bools)) {
            rc = want_bool(P, v, key, &b);
            if (rc == 0)
                putf(o, "      %s: %s\n", key, b ? "true" : "false");
        } else {
            rc = unsupported(P, k, "%s.%s is not supported", what, key);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int conv_backoff(struct pt *P, struct pt_buf *o, const yaml_node_t *n, int64_t *min_ms,
                        int64_t *max_ms, int64_t *retries)
{
    int rc = want_map(P, n, "backoff_config");
    if (rc)
        return rc;
    (void)o;
    FOR_PAIRS(n, pr)
    {
        yaml_node_t *k = node(P, pr->key), *v = node(P, pr->value);
        const char *key = scalar(k) ? scalar(k) : "";
        if (strcmp(key, "min_period") == 0) {
            rc = want_dur(P, v, "backoff_config.min_period", min_ms);
        } else if (strcmp(key, "max_period") == 0) {
            rc = want_dur(P, v, "backoff_config.max_period", max_ms);
        } else if (strcmp(key, "max_retries") == 0) {
            char *end;
            const char *s = scalar(v);
            *retries = s ? strtoll(s, &end, 10) : -1;
            if (!s || *end || *retries < 0)
                rc = invalid(P, v, "'backoff_config.max_retries' must be an integer >= 0");
        } else {
            rc = unsupported(P, k, "backoff_config.%s is not supported", key);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int conv_client(struct pt *P, const yaml_node_t *n, size_t idx)
{
    static const char *const ignored[] = {"drop_rate_limited_batches", NULL};
    struct pt_buf *o = &P->outs;
    struct pt_kv ext[PT_MAX_LABELS];
    size_t next = 0;
    int64_t batchwait = 1000, batchsize = 1048576, min_ms = 500, max_ms = 300000, retries = 10,
            timeout = 10000;
    const char *url = NULL;
    int rc = want_map(P, n, "clients");

    if (rc)
        return rc;
    putstr(o, "  - type: loki\n");
    if (idx == 0)
        putstr(o, "    name: loki\n");
    else
        putf(o, "    name: loki-%zu\n", idx + 1);
    FOR_PAIRS(n, pr)
    {
        yaml_node_t *k = node(P, pr->key), *v = node(P, pr->value);
        const char *key = scalar(k) ? scalar(k) : "", *s = NULL;
        if (strcmp(key, "url") == 0) {
            rc = want_str(P, v, key, &url);
        } else if (strcmp(key, "tenant_id") == 0 || strcmp(key, "bearer_token") == 0 ||
                   strcmp(key, "bearer_token_file") == 0) {
            rc = want_str(P, v, key, &s);
            if (rc == 0) {
                putf(o, "    %s: ", strcmp(key, "tenant_id") == 0 ? "tenant" : key);
                putq(P, o, s);
                putstr(o, "\n");
            }
        } else if (strcmp(key, "basic_auth") == 0) {
            static const char *const keys[] = {"username", "password", "password_file", NULL};
            rc = conv_section(P, o, v, "basic_auth", "basic_auth", keys, NULL);
        } else if (strcmp(key, "tls_config") == 0) {
            static const char *const keys[] = {"ca_file", "cert_file", "key_file", NULL};
            static const char *const bools[] = {"insecure_skip_verify", NULL};
            rc = conv_section(P, o, v, "tls_config", "tls", keys, bools);
        } else if (strcmp(key, "external_labels") == 0) {
            rc = str_map(P, v, key, ext, &next, PT_MAX_LABELS);
        } else if (strcmp(key, "batchwait") == 0) {
            rc = want_dur(P, v, key, &batchwait);
        } else if (strcmp(key, "batchsize") == 0) {
            const char *sv = scalar(v);
            if (!sv || lc_parse_size(sv, &batchsize) < 0)
                rc = invalid(P, v, "'batchsize' must be a number of bytes");
        } else if (strcmp(key, "backoff_config") == 0) {
            rc = conv_backoff(P, o, v, &min_ms, &max_ms, &retries);
        } else if (strcmp(key, "timeout") == 0) {
            rc = want_dur(P, v, key, &timeout);
        } else if (one_of(key, ignored)) {
            putf(o,
                 "    # approximated: clients.%s: a rate-limited (429) batch is retried, "
                 "then dead-lettered, never dropped\n",
                 key);
        } else {
            rc = unsupported(P, k, "clients.%s is not supported", key);
        }
        if (rc)
            return rc;
    }
    if (!url)
        return invalid(P, n, "a client needs a 'url'");
    {
        /* Promtail's url is the push endpoint; ours is the base the push path is appended to. */
        static const char push[] = "/loki/api/v1/push";
        size_t ul = strlen(url), pl = strlen(push);
        const char *q = strchr(url, '?');
        char *base;
        size_t bl = q ? (size_t)(q - url) : ul;
        base = malloc(ul + 1);
        if (!base)
            return -ENOMEM;
        if (bl >= pl && memcmp(url + bl - pl, push, pl) == 0) {
            memcpy(base, url, bl - pl);
            memcpy(base + bl - pl, url + bl, ul - bl + 1); /* the query string and the NUL */
        } else {
            memcpy(base, url, ul + 1);
            putstr(o, "    # approximated: the url did not end in /loki/api/v1/push; that path is "
                      "appended to it\n");
        }
        putstr(o, "    url: ");
        putq(P, o, base);
        putstr(o, "\n");
        free(base);
    }
    if (next) {
        putstr(o, "    labels: ");
        put_kv_flow(P, o, ext, next);
        putstr(o, "   # external_labels\n");
    }
    if (batchsize < 262144 || batchsize > 64 * 1048576)
        return unsupported(P, n, "'batchsize' %" PRId64 " is outside 256KiB..64MiB", batchsize);
    putf(o, "    batch_wait: %" PRId64 "ms   # batchwait\n", batchwait);
    putf(o, "    batch_bytes: %" PRId64 "   # batchsize\n", batchsize);
    putf(o, "    timeout: %" PRId64 "ms\n", timeout);
    putf(o, "    retry: {initial: %" PRId64 "ms, max: %" PRId64 "ms}   # backoff_config\n", min_ms,
         max_ms);
    putf(o,
         "    # approximated: backoff_config.max_retries (%" PRId64
         "): Promtail drops a batch after it; this agent\n"
         "    #   retries while its retry queue has room, then moves the oldest batch to the "
         "dead-letter queue\n",
         retries);
    return 0;
}

/* Pipeline stages ------------------------------------------------------------------------- */

static int stage_list(struct pt *P, struct pt_pipe *pp, const yaml_node_t *seq, const char *where);

/* Checks that a stage's keys are among `known`; each other key is unsupported. */
static int stage_keys(struct pt *P, const yaml_node_t *cfg, const char *stage,
                      const char *const *known)
{
    int rc;
    if (is_null(cfg))
        return 0;
    rc = want_map(P, cfg, stage);
    if (rc)
        return rc;
    FOR_PAIRS(cfg, pr)
    {
        yaml_node_t *k = node(P, pr->key);
        const char *key = scalar(k) ? scalar(k) : "";
        if (!one_of(key, known)) {
            rc = unsupported(P, k, "%s.%s is not supported", stage, key);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* The value of key in a stage's mapping, or NULL. */
static yaml_node_t *get(struct pt *P, const yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    FOR_PAIRS(map, pr)
    {
        const char *k = scalar(node(P, pr->key));
        if (k && strcmp(k, key) == 0)
            return node(P, pr->value);
    }
    return NULL;
}

static int get_str(struct pt *P, const yaml_node_t *map, const char *key, const char **out)
{
    yaml_node_t *v = get(P, map, key);
    *out = NULL;
    if (!v || is_null(v))
        return 0;
    return want_str(P, v, key, out);
}

/* `, source: "x"` when set. */
static void put_source(struct pt *P, struct pt_buf *b, const char *src)
{
    if (src && *src) {
        putstr(b, ", source: ");
        putq(P, b, src);
    }
}

/*
 * A JMESPath expression of the simple forms `a`, `a.b`, `"a-b".c` as our
 * dotted path: 0, 1 (unsupported, ignored: lenient) or -EINVAL.
 */
static int jmes_path(struct pt *P, const yaml_node_t *v, const char *expr, char *out, size_t len)
{
    size_t o = 0;
    const char *p = expr;

    while (*p) {
        if (*p == '"') {
            const char *e = strchr(p + 1, '"');
            if (!e || e == p + 1)
                goto bad;
            for (const char *c = p + 1; c < e; c++)
                if (*c == '.' || *c == '\\')
                    goto bad;
            if (o + (size_t)(e - p - 1) + 2 > len)
                goto bad;
            memcpy(out + o, p + 1, (size_t)(e - p - 1));
            o += (size_t)(e - p - 1);
            p = e + 1;
        } else {
            const char *s = p;
            while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                   (p > s && *p >= '0' && *p <= '9'))
                p++;
            if (p == s || o + (size_t)(p - s) + 2 > len)
                goto bad;
            memcpy(out + o, s, (size_t)(p - s));
            o += (size_t)(p - s);
        }
        if (*p == '.') {
            out[o++] = '.';
            p++;
            if (!*p)
                goto bad;
        } else if (*p) {
            goto bad;
        }
    }
    out[o] = '\0';
    return 0;
bad:
    o = (size_t)unsupported(P, v,
                            "json expression '%s' is not supported: only the JMESPath forms "
                            "`key`, `a.b.c` and `\"quoted-key\"` (no indexes, wildcards, "
                            "filters, functions or pipes)",
                            expr);
    return o ? -EINVAL : 1; /* 1: ignored (lenient) */
}

static int st_json(struct pt *P, struct pt_buf *b, const yaml_node_t *c)
{
    static const char *const known[] = {"expressions", "source", "drop_malformed", NULL};
    yaml_node_t *ex = get(P, c, "expressions"), *dm = get(P, c, "drop_malformed");
    const char *src;
    int rc = stage_keys(P, c, "json", known);
    bool first = true;

    if (rc || (rc = get_str(P, c, "source", &src)))
        return rc;
    if (!ex || is_null(ex))
        return invalid(P, c, "json needs 'expressions'");
    if ((rc = want_map(P, ex, "expressions")))
        return rc;
    if (dm) {
        bool d = false;
        if ((rc = want_bool(P, dm, "drop_malformed", &d)))
            return rc;
        if (d && (rc = unsupported(P, dm,
                                   "json.drop_malformed: true is not supported (a line "
                                   "that is not JSON is passed on, counted)")))
            return rc;
    }
    putstr(b, "      - json: {expressions: {");
    FOR_PAIRS(ex, pr)
    {
        yaml_node_t *k = node(P, pr->key), *v = node(P, pr->value);
        char path[256];
        if (!scalar(k) || !scalar(v))
            return invalid(P, ex, "json expressions must map names to strings");
        if (is_null(v) || !*scalar(v)) {
            path[0] = '\0';
        } else if ((rc = jmes_path(P, v, scalar(v), path, sizeof(path)))) {
            if (rc < 0)
                return rc;
            continue;
        }
        if (!first)
            putstr(b, ", ");
        first = false;
        putq(P, b, scalar(k));
        putstr(b, ": ");
        putq(P, b, strcmp(path, scalar(k)) == 0 ? "" : path);
    }
    putstr(b, "}");
    put_source(P, b, src);
    putstr(b, "}\n");
    return 0;
}

static int st_regex(struct pt *P, struct pt_buf *b, const yaml_node_t *c)
{
    static const char *const known[] = {"expression", "source", NULL};
    const char *ex, *src;
    int rc = stage_keys(P, c, "regex", known);

    if (rc || (rc = get_str(P, c, "expression", &ex)) || (rc = get_str(P, c, "source", &src)))
        return rc;
    if (!ex)
        return invalid(P, c, "regex needs an 'expression'");
    putstr(b, "      - regex: {expression: ");
    putq(P, b, ex);
    put_source(P, b, src);
    putstr(b, "}\n");
    return 0;
}

static int st_logfmt(struct pt *P, struct pt_buf *b, const yaml_node_t *c)
{
    static const char *const known[] = {"mapping", "source", NULL};
    yaml_node_t *m = get(P, c, "mapping");
    struct pt_kv kv[PT_MAX_LABELS];
    size_t n = 0;
    const char *src;
    int rc = stage_keys(P, c, "logfmt", known);

    if (rc || (rc = get_str(P, c, "source", &src)))
        return rc;
    if (m && !is_null(m) && (rc = str_map(P, m, "mapping", kv, &n, PT_MAX_LABELS)))
        return rc;
    if (n == 0)
        return invalid(P, c, "logfmt needs a 'mapping' (Promtail extracts nothing without one)");
    putstr(b, "      - logfmt: {mapping: ");
    put_kv_flow(P, b, kv, n);
    put_source(P, b, src);
    putstr(b, "}\n");
    return 0;
}

/* Label names a record may get per line: their values are unknown when converting. */
static void pipe_dyn(struct pt_pipe *pp, const char *name)
{
    for (size_t i = 0; i < pp->nknown; i++)
        if (strcmp(pp->known[i].k, name) == 0)
            pp->known[i].k = ""; /* no longer a known value */
    if (pp->ndyn < sizeof(pp->dyn) / sizeof(pp->dyn[0]))
        pp->dyn[pp->ndyn++] = name;
}

/* Text for a `#` comment: no line breaks. */
static void put_comment(struct pt_buf *b, const char *s)
{
    for (; *s; s++)
        put(b, *s == '\n' || *s == '\r' ? " " : s, 1);
}

static void pipe_known(struct pt_pipe *pp, const struct pt_kv *kv, size_t n)
{
    for (size_t i = 0; i < n && pp->nknown < sizeof(pp->known) / sizeof(pp->known[0]); i++)
        pp->known[pp->nknown++] = kv[i];
}

static int st_labels(struct pt *P, struct pt_pipe *pp, const yaml_node_t *c, const char *stage)
{
    struct pt_buf *b = &pp->stages;
    struct pt_kv kv[PT_MAX_LABELS];
    size_t n = 0;
    int rc;

    if (is_null(c))
        return invalid(P, c, "%s needs a mapping of label names", stage);
    if ((rc = str_map(P, c, stage, kv, &n, PT_MAX_LABELS)))
        return rc;
    for (size_t i = 0; i < n; i++)
        pipe_dyn(pp, kv[i].k);
    putstr(b, "      - labels: {fields: ");
    put_kv_flow(P, b, kv, n);
    putstr(b, ", max_values: 100000}   # approximated: Promtail has no per-label value cap\n");
    return 0;
}

static int st_structured_metadata(struct pt *P, struct pt_buf *b, const yaml_node_t *c)
{
    struct pt_kv kv[PT_MAX_LABELS];
    size_t n = 0;
    int rc;

    if (is_null(c))
        return invalid(P, c, "structured_metadata needs a mapping of names");
    if ((rc = str_map(P, c, "structured_metadata", kv, &n, PT_MAX_LABELS)))
        return rc;
    putstr(b, "      - structured_metadata: {values: ");
    put_kv_flow(P, b, kv, n);
    putstr(b, "}\n");
    return 0;
}

static int st_static_labels(struct pt *P, struct pt_pipe *pp, const yaml_node_t *c)
{
    size_t n = pp->nstatics;
    int rc;

    if (is_null(c))
        return 0;
    if ((rc = str_map(P, c, "static_labels", pp->statics, &pp->nstatics, PT_MAX_LABELS)))
        return rc;
    for (size_t i = n; i < pp->nstatics; i++)
        if (!*pp->statics[i].v)
            return unsupported(P, c, "static_labels.%s: an empty value is not supported",
                               pp->statics[i].k);
    pipe_known(pp, pp->statics + n, pp->nstatics - n);
    return 0;
}

/*
 * Go's fractional seconds at p (`.000`, `,999`: a run of one digit not
 * followed by another digit): its length with the separator, 0 when none;
 * *nines when of 9s.
 */
static size_t go_frac(const char *p, bool *nines)
{
    size_t n = 1;

    if ((p[0] != '.' && p[0] != ',') || (p[1] != '0' && p[1] != '9'))
        return 0;
    while (p[n] == p[1])
        n++;
    if (p[n] >= '0' && p[n] <= '9')
        return 0;
    *nines = p[1] == '9';
    return n;
}

/*
 * Go reference-time layout -> our strptime layout (process/timestamp.c);
 * -EINVAL when it has no such form. Go's fractional seconds: `.000` (exactly
 * that many digits) -> %3f, `.999` (any, optional) -> %f; seconds not
 * followed by either take an optional fraction too, as Go's parser does: %S%f.
 */
static int go_layout(const char *go, char *out, size_t len, const char **why)
{
    static const struct {
        const char *go, *c;
    } tok[] = {
        {"January", "%B"}, {"Monday", "%A"}, {"Jan", "%b"},   {"Mon", "%a"},   {"2006", "%Y"},
        {"Z07:00", "%z"},  {"-07:00", "%z"}, {"-0700", "%z"}, {"Z0700", "%z"}, {"01", "%m"},
        {"02", "%d"},      {"_2", "%e"},     {"15", "%H"},    {"03", "%I"},    {"04", "%M"},
        {"05", "%S"},      {"06", "%y"},     {"PM", "%p"},    {"pm", "%p"},    {"1", "%m"},
        {"2", "%d"},       {"3", "%I"},      {"4", "%M"},     {"5", "%S"},
    };
    size_t o = 0;

    *why = NULL;
    for (const char *p = go; *p;) {
        bool hit = false, nines = false;
        size_t fl = go_frac(p, &nines);
        if (fl) {
            if (fl - 1 > 9) {
                *why = "more than 9 fractional digits";
                return -EINVAL;
            }
            if (o + 4 > len)
                return -EINVAL;
            o += (size_t)snprintf(out + o, len - o, nines ? "%%f" : "%%%zuf", fl - 1);
            p += fl;
            continue;
        }
        if (strncmp(p, "MST", 3) == 0 || strncmp(p, "-07", 3) == 0) {
            if (strncmp(p, "-07:00", 6) != 0 && strncmp(p, "-0700", 5) != 0) {
                *why = "a zone name or hour-only offset";
                return -EINVAL;
            }
        }
        for (size_t i = 0; i < sizeof(tok) / sizeof(tok[0]); i++) {
            size_t tl = strlen(tok[i].go);
            if (strncmp(p, tok[i].go, tl) == 0) {
                if (o + 3 > len)
                    return -EINVAL;
                memcpy(out + o, tok[i].c, 2);
                o += 2;
                p += tl;
                hit = true;
                if (strcmp(tok[i].c, "%S") == 0 && !go_frac(p, &nines)) {
                    if (o + 3 > len)
                        return -EINVAL;
                    memcpy(out + o, "%f", 2);
                    o += 2;
                }
                break;
            }
        }
        if (hit)
            continue;
        if (o + 3 > len)
            return -EINVAL;
        if (*p == '%')
            out[o++] = '%';
        out[o++] = *p++;
    }
    out[o] = '\0';
    return 0;
}

/* A Promtail timestamp format as ours: the names we share, Go's named layouts, custom ones. */
static int ts_format(struct pt *P, const yaml_node_t *v, const char *f, char *out, size_t len)
{
    static const char *const same[] = {"RFC3339", "RFC3339Nano", "Unix", "UnixMs",
                                       "UnixUs",  "UnixNs",      NULL};
    static const struct {
        const char *name, *layout;
    } named[] = {
        {"ANSIC", "Mon Jan _2 15:04:05 2006"},
        {"UnixDate", "Mon Jan _2 15:04:05 MST 2006"},
        {"RubyDate", "Mon Jan 02 15:04:05 -0700 2006"},
        {"RFC822", "02 Jan 06 15:04 MST"},
        {"RFC822Z", "02 Jan 06 15:04 -0700"},
        {"RFC850", "Monday, 02-Jan-06 15:04:05 MST"},
        {"RFC1123", "Mon, 02 Jan 2006 15:04:05 MST"},
        {"RFC1123Z", "Mon, 02 Jan 2006 15:04:05 -0700"},
        {"Kitchen", "3:04PM"},
        {"Stamp", "Jan _2 15:04:05"},
        {"StampMilli", "Jan _2 15:04:05.000"},
        {"StampMicro", "Jan _2 15:04:05.000000"},
        {"StampNano", "Jan _2 15:04:05.000000000"},
    };
    const char *layout = f, *why;

    if (one_of(f, same)) {
        snprintf(out, len, "%s", f);
        return 0;
    }
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
        if (strcmp(f, named[i].name) == 0)
            layout = named[i].layout;
    if (strcmp(f, "Kitchen") == 0 || strncmp(f, "Stamp", 5) == 0 ||
        go_layout(layout, out, len, &why) < 0 || !strchr(out, '%'))
        return unsupported(P, v,
                           "timestamp format '%s' is not supported: %s (supported: RFC3339, "
                           "RFC3339Nano, Unix, UnixMs, UnixUs, UnixNs, ANSIC, RubyDate, RFC822Z, "
                           "RFC1123Z and Go layouts with numeric zones)",
                           f,
                           strncmp(f, "Stamp", 5) == 0 || strcmp(f, "Kitchen") == 0
                               ? "it has no year or date"
                           : why ? why
                                 : "not a layout");
    return 0;
}

static int st_timestamp(struct pt *P, struct pt_buf *b, const yaml_node_t *c)
{
    static const char *const known[] = {
        "source", "format", "fallback_formats", "action_on_failure", "location", NULL};
    yaml_node_t *fmtn = get(P, c, "format"), *fb = get(P, c, "fallback_formats"),
                *loc = get(P, c, "location"), *aof = get(P, c, "action_on_failure");
    const char *src, *fmt;
    char f[256];
    int rc = stage_keys(P, c, "timestamp", known);

    if (rc || (rc = get_str(P, c, "source", &src)) || (rc = get_str(P, c, "format", &fmt)))
        return rc;
    if (!src || !fmt)
        return invalid(P, c, "timestamp needs 'source' and 'format'");
    if (loc && !is_null(loc) && strcmp(scalar(loc) ? scalar(loc) : "", "UTC") != 0 &&
        (rc = unsupported(P, loc,
                          "timestamp.location is not supported (times without a zone "
                          "are read as UTC)")))
        return rc;
    if ((rc = ts_format(P, fmtn, fmt, f, sizeof(f))))
        return rc;
    putstr(b, "      - timestamp: {source: ");
    putq(P, b, src);
    putstr(b, ", format: ");
    putq(P, b, f);
    if (fb && !is_null(fb)) {
        bool first = true;
        if ((rc = want_seq(P, fb, "fallback_formats")))
            return rc;
        putstr(b, ", fallback_formats: [");
        FOR_ITEMS(fb, it)
        {
            yaml_node_t *v = node(P, *it);
            if (!scalar(v))
                return invalid(P, v, "fallback_formats must be a list of strings");
            if ((rc = ts_format(P, v, scalar(v), f, sizeof(f))))
                return rc;
            if (!first)
                putstr(b, ", ");
            first = false;
            putq(P, b, f);
        }
        putstr(b, "]");
    }
    putstr(b, "}");
    if (!aof || strcmp(scalar(aof) ? scalar(aof) : "", "skip") != 0)
        putstr(b, "   # approximated: action_on_failure fudge: an unparsable time keeps the read "
                  "time");
    putstr(b, "\n");
    return 0;
}

static int st_output(struct pt *P, struct pt_buf *b, const yaml_node_t *c)
{
    static const char *const known[] = {"source", NULL};
    const char *src;
    int rc = stage_keys(P, c, "output", known);

    if (rc || (rc = get_str(P, c, "source", &src)))
        return rc;
    if (!src)
        return invalid(P, c, "output needs a 'source'");
    putstr(b, "      - output: {source: ");
    putq(P, b, src);
    putstr(b, "}\n");
    return 0;
}

/*
 * tenant: exactly one of source (an extracted field), label or value -> the
 * native stage of the same keys and meaning (an empty or absent value keeps
 * the record's tenant; the output's tenant otherwise).
 */
static int st_tenant(struct pt *P, struct pt_buf *b, const yaml_node_t *c)
{
    static const char *const known[] = {"source", "label", "value", NULL};
    const char *v[3];
    int rc = stage_keys(P, c, "tenant", known), n = 0, k = 0;

    for (int i = 0; rc == 0 && i < 3; i++) {
        rc = get_str(P, c, known[i], &v[i]);
        if (v[i] && *v[i]) {
            n++;
            k = i;
        }
    }
    if (rc)
        return rc;
    if (n != 1)
        return invalid(P, c, "tenant needs exactly one of 'source', 'label' or 'value'");
    putf(b, "      - tenant: {%s: ", known[k]);
    putq(P, b, v[k]);
    putstr(b, "}\n");
    return 0;
}

/*
 * Promtail's replace replaces each capture group, not the whole match. The
 * expression is rewritten so that the text between top-level groups becomes
 * groups too, kept by the replacement: `a(b)c` with X -> `(a)(b)(c)` with
 * `${1}X${3}`. Without groups, the whole match is replaced. Forms this cannot
 * express (top-level `|`, a quantified or nested group) are unsupported.
 */
static int replace_rewrite(struct pt *P, const yaml_node_t *v, const char *ex, const char *rep,
                           struct pt_buf *rx, struct pt_buf *out)
{
    size_t seg = 0, ngroups = 0, start = 0, n = strlen(ex);
    int depth = 0, cap_depth = -1;
    bool in_class = false;
    char tmp[32];

    for (size_t i = 0; i < n; i++) {
        char ch = ex[i];
        if (ch == '\\') {
            i++;
            continue;
        }
        if (in_class) {
            if (ch == ']')
                in_class = false;
            continue;
        }
        if (ch == '[') {
            in_class = true;
            if (ex[i + 1] == ']' || (ex[i + 1] == '^' && ex[i + 2] == ']'))
                i += ex[i + 1] == '^' ? 2 : 1;
            continue;
        }
        if (ch == '|' && depth == 0)
            goto bad;
        if (ch == '(') {
            bool capturing =
                ex[i + 1] != '?' || strncmp(ex + i + 1, "?P<", 3) == 0 ||
                (strncmp(ex + i + 1, "?<", 2) == 0 && ex[i + 3] != '=' && ex[i + 3] != '!');
            if (capturing && cap_depth >= 0)
                goto bad; /* nested capture group */
            if (capturing && depth > 0)
                goto bad; /* a capture group inside a non-capturing one */
            if (capturing) {
                /* the text before it */
                putstr(rx, "(");
                put(rx, ex + start, i - start);
                putstr(rx, ")");
                seg++;
                snprintf(tmp, sizeof(tmp), "${%zu}", seg);
                put(out, tmp, strlen(tmp));
                cap_depth = depth;
                start = i;
            }
            depth++;
            continue;
        }
        if (ch == ')') {
            depth--;
            if (depth == cap_depth) {
                const char *q = ex + i + 1;
                if (*q == '*' || *q == '+' || *q == '?' || *q == '{')
                    goto bad;
                /* the group itself, made unnamed-safe: keep the text as written */
                put(rx, ex + start, i + 1 - start);
                seg++;
                ngroups++;
                put(out, rep, strlen(rep));
                cap_depth = -1;
                start = i + 1;
            }
        }
    }
    if (ngroups == 0)
        return 1; /* no group: the whole match */
    putstr(rx, "(");
    put(rx, ex + start, n - start);
    putstr(rx, ")");
    seg++;
    snprintf(tmp, sizeof(tmp), "${%zu}", seg);
    put(out, tmp, strlen(tmp));
    return 0;
bad:
    if (unsupported(P, v,
                    "replace expression '%s' is not supported: Promtail replaces each capture "
                    "group; the conversion handles top-level, unquantified, non-nested groups "
                    "without a top-level '|'",
                    ex))
        return -EINVAL;
    return 2; /* ignored (lenient) */
}

static int st_replace(struct pt *P, struct pt_buf *b, const yaml_node_t *c)
{
    static const char *const known[] = {"expression", "source", "replace", NULL};
    struct pt_buf rx = {0}, rep = {0};
    const char *ex, *src, *r;
    int rc = stage_keys(P, c, "replace", known);

    if (rc || (rc = get_str(P, c, "expression", &ex)) || (rc = get_str(P, c, "source", &src)) ||
        (rc = get_str(P, c, "replace", &r)))
        return rc;
    if (!ex)
        return invalid(P, c, "replace needs an 'expression'");
    if (!r)
        r = "";
    if (strstr(r, "{{"))
        return unsupported(P, get(P, c, "replace"),
                           "replace: a Go template in 'replace' is not supported");
    if (strchr(r, '$')) /* PCRE2 substitution syntax: a literal $ is $$ */
        return unsupported(P, get(P, c, "replace"), "replace: '$' in 'replace' is not supported");
    rc = replace_rewrite(P, get(P, c, "expression"), ex, r, &rx, &rep);
    if (rc < 0 || rc == 2) {
        lc_buf_free(&rx.b);
        lc_buf_free(&rep.b);
        return rc < 0 ? rc : 0;
    }
    putstr(b, "      - replace: {expression: ");
    putq(P, b, rc == 1 ? ex : rx.b.data);
    putstr(b, ", replace: ");
    putq_lit(b, rc == 1 ? r : rep.b.data);
    put_source(P, b, src);
    putstr(b, "}");
    if (rc == 1)
        putstr(b, "   # approximated: no capture group: the whole match is replaced");
    putstr(b, "\n");
    lc_buf_free(&rx.b);
    lc_buf_free(&rep.b);
    return 0;
}

static int st_drop(struct pt *P, struct pt_buf *b, const yaml_node_t *c)
{
    static const char *const known[] = {"source",      "expression",          "value", "older_than",
                                        "longer_than", "drop_counter_reason", NULL};
    const char *src = NULL, *ex, *val, *reason;
    yaml_node_t *sn = get(P, c, "source"), *ot = get(P, c, "older_than"),
                *lt = get(P, c, "longer_than");
    int rc = stage_keys(P, c, "drop", known);

    if (rc || (rc = get_str(P, c, "expression", &ex)) || (rc = get_str(P, c, "value", &val)) ||
        (rc = get_str(P, c, "drop_counter_reason", &reason)))
        return rc;
    if (sn && !is_null(sn)) {
        if (sn->type != YAML_SCALAR_NODE)
            return unsupported(P, sn, "drop.source as a list is not supported (one field only)");
        src = scalar(sn);
    }
    if (val && !src)
        return invalid(P, c, "drop.value needs a source");
    if (src && !ex && !val)
        return unsupported(P, c,
                           "drop with only a source (drop when the field exists) is not "
                           "supported");
    putstr(b, "      - drop: {reason: ");
    putq(P, b, reason ? reason : "drop_stage");
    put_source(P, b, src);
    if (ex) {
        putstr(b, ", expression: ");
        putq(P, b, ex);
    }
    if (val) {
        putstr(b, ", value: ");
        putq(P, b, val);
    }
    if (ot && !is_null(ot)) {
        int64_t ms = 0;
        if ((rc = want_dur(P, ot, "older_than", &ms)))
            return rc;
        putf(b, ", older_than: %" PRId64 "ms", ms);
    }
    if (lt && !is_null(lt)) {
        int64_t sz;
        if (!scalar(lt) || lc_parse_size(scalar(lt), &sz) < 0)
            return invalid(P, lt, "'longer_than' must be a size");
        putf(b, ", longer_than: %" PRId64, sz);
    }
    putstr(b, "}\n");
    return 0;
}

static int st_limit(struct pt *P, struct pt_buf *b, const yaml_node_t *c)
{
    static const char *const known[] = {
        "rate", "burst", "drop", "by_label_name", "max_distinct_labels", NULL};
    const char *rate, *burst, *by;
    yaml_node_t *dn = get(P, c, "drop");
    bool drop = false;
    int rc = stage_keys(P, c, "limit", known);

    if (rc || (rc = get_str(P, c, "rate", &rate)) || (rc = get_str(P, c, "burst", &burst)) ||
        (rc = get_str(P, c, "by_label_name", &by)))
        return rc;
    if (dn && (rc = want_bool(P, dn, "drop", &drop)))
        return rc;
    if (!rate)
        return invalid(P, c, "limit needs a 'rate'");
    if (strchr(rate, '.'))
        return unsupported(P, get(P, c, "rate"),
                           "limit.rate must be a whole number of lines a "
                           "second");
    putf(b, "      - limit: {rate: %s", rate);
    if (burst)
        putf(b, ", burst: %s", burst);
    putstr(b, "}");
    if (!drop)
        putstr(b, "   # approximated: Promtail (drop: false) waits; this agent drops the excess, "
                  "counted");
    if (by)
        putstr(b, "   # approximated: by_label_name: the limit is per stream (label set)");
    putstr(b, "\n");
    return 0;
}

static int st_multiline(struct pt *P, struct pt_buf *b, const yaml_node_t *c)
{
    static const char *const known[] = {"firstline", "max_wait_time", "max_lines", NULL};
    const char *fl, *ml;
    yaml_node_t *mw = get(P, c, "max_wait_time");
    int64_t wait = 3000;
    int rc = stage_keys(P, c, "multiline", known);

    if (rc || (rc = get_str(P, c, "firstline", &fl)) || (rc = get_str(P, c, "max_lines", &ml)))
        return rc;
    if (!fl)
        return invalid(P, c, "multiline needs 'firstline'");
    if (mw && (rc = want_dur(P, mw, "max_wait_time", &wait)))
        return rc;
    putstr(b, "      - multiline: {firstline: ");
    putq(P, b, fl);
    putf(b, ", flush_after: %" PRId64 "ms, max_lines: %s, max_bytes: 1MiB}\n", wait,
         ml ? ml : "128");
    return 0;
}

static int st_template(struct pt *P, struct pt_buf *b, const yaml_node_t *c)
{
    static const char *const known[] = {"source", "template", NULL};
    struct pt_buf t = {0};
    const char *src, *tpl;
    yaml_node_t *tn = get(P, c, "template");
    int rc = stage_keys(P, c, "template", known);

    if (rc || (rc = get_str(P, c, "source", &src)) || (rc = get_str(P, c, "template", &tpl)))
        return rc;
    if (!src || !tpl)
        return invalid(P, c, "template needs 'source' and 'template'");
    /* only {{ .name }}, {{ .Value }} (the source's value) and {{ .Entry }} (the line) */
    for (const char *p = tpl; *p;) {
        const char *o = strstr(p, "{{"), *e, *s;
        size_t nl;
        if (!o) {
            put(&t, p, strlen(p));
            break;
        }
        put(&t, p, (size_t)(o - p));
        e = strstr(o, "}}");
        if (!e)
            goto bad;
        s = o + 2;
        while (*s == ' ' || *s == '-')
            s++;
        if (*s != '.')
            goto bad;
        s++;
        nl = 0;
        while ((s[nl] >= 'a' && s[nl] <= 'z') || (s[nl] >= 'A' && s[nl] <= 'Z') ||
               (s[nl] >= '0' && s[nl] <= '9') || s[nl] == '_')
            nl++;
        if (nl == 0)
            goto bad;
        for (const char *q = s + nl; q < e; q++)
            if (*q != ' ' && *q != '-')
                goto bad;
        putstr(&t, "{{ .");
        if (nl == 5 && strncmp(s, "Value", 5) == 0)
            put(&t, src, strlen(src));
        else if (nl == 5 && strncmp(s, "Entry", 5) == 0)
            putstr(&t, "Line");
        else
            put(&t, s, nl);
        putstr(&t, " }}");
        p = e + 2;
    }
    putstr(b, "      - template: {source: ");
    putq(P, b, src);
    putstr(b, ", template: ");
    putq(P, b, t.b.data ? t.b.data : "");
    putstr(b, "}\n");
    lc_buf_free(&t.b);
    return 0;
bad:
    lc_buf_free(&t.b);
    return unsupported(P, tn,
                       "template '%s' is not supported: only {{ .name }}, {{ .Value }} and "
                       "{{ .Entry }} (no functions, pipelines or conditions)",
                       tpl);
}

/* labeldrop / labelallow: a list of names -> the native stages of the same names. */
static int st_labellist(struct pt *P, struct pt_pipe *pp, const yaml_node_t *c, const char *type)
{
    bool first = true;
    int rc = 0;

    if (is_null(c) || (rc = want_seq(P, c, type)))
        return is_null(c) ? invalid(P, c, "%s needs a list of label names", type) : rc;
    putf(&pp->stages, "      - %s: {names: [", type);
    FOR_ITEMS(c, it)
    {
        yaml_node_t *v = node(P, *it);
        if (!scalar(v))
            return invalid(P, v, "%s must be a list of label names", type);
        if (!first)
            putstr(&pp->stages, ", ");
        first = false;
        putq(P, &pp->stages, scalar(v));
        if (strcmp(type, "labeldrop") == 0) /* gone: a match on it is decided as "" */
            for (size_t i = 0; i < pp->nknown; i++)
                if (strcmp(pp->known[i].k, scalar(v)) == 0)
                    pp->known[i].v = "";
    }
    putstr(&pp->stages, "]}\n");
    if (strcmp(type, "labelallow") == 0) /* the others are gone */
        for (size_t i = 0; i < pp->nknown; i++) {
            bool kept = false;
            FOR_ITEMS(c, it)
            {
                kept = kept || strcmp(scalar(node(P, *it)), pp->known[i].k) == 0;
            }
            if (!kept)
                pp->known[i].v = "";
        }
    return 0;
}

/* docker: Promtail's own definition (json, labels stream, timestamp, output), written out. */
static int st_docker(struct pt *P, struct pt_pipe *pp, const yaml_node_t *c)
{
    int rc = stage_keys(P, c, "docker", (const char *const[]){NULL});
    if (rc)
        return rc;
    pipe_dyn(pp, "stream");
    putstr(&pp->stages, "      # docker: {} (Promtail's definition)\n"
                        "      - json: {expressions: {output: log, stream: stream, time: time}}\n"
                        "      - labels: {fields: {stream: \"\"}}\n"
                        "      - timestamp: {source: time, format: RFC3339Nano}\n"
                        "      - output: {source: output}\n");
    return 0;
}

/* cri: Promtail's regex, labels stream, timestamp, output (partial P lines are not joined). */
static int st_cri(struct pt *P, struct pt_pipe *pp, const yaml_node_t *c)
{
    static const char *const known[] = {"max_partial_lines", "max_partial_line_size",
                                        "max_partial_line_size_truncate", NULL};
    int rc = stage_keys(P, c, "cri", known);
    if (rc)
        return rc;
    pipe_dyn(pp, "stream");
    if (pp->in_kubernetes) {
        putstr(
            &pp->stages,
            "      # cri: {} left out: the kubernetes input decodes CRI lines and joins P parts\n");
        return 0;
    }
    putstr(&pp->stages,
           "      # cri: {} (Promtail's definition)   # approximated: partial (P) lines are not "
           "joined; use type: kubernetes for that\n"
           "      - regex: {expression: '^(?s)(?P<time>\\S+?) (?P<stream>stdout|stderr) "
           "(?P<flags>\\S+?) (?P<content>.*)$'}\n"
           "      - labels: {fields: {stream: \"\"}}\n"
           "      - timestamp: {source: time, format: RFC3339Nano}\n"
           "      - output: {source: content}\n");
    return 0;
}

/* Does the label's value `have` match the matcher (op val)? -EINVAL: a bad regex. */
static int matcher_eval(const char *op, const char *val, const char *have)
{
    struct lc_rx rx = {0};
    char err[128], pat[1100];
    bool hit;

    if (op[1] != '~')
        return (strcmp(have, val) == 0) == (op[0] == '=');
    snprintf(pat, sizeof(pat), "^(?:%s)$", val);
    if (lc_rx_compile(&rx, pat, err, sizeof(err)) < 0)
        return -EINVAL;
    hit = lc_rx_match(&rx, have, strlen(have));
    lc_rx_free(&rx);
    return hit == (op[0] == '=');
}

/*
 * A match whose selector can not be decided when converting (a label set per
 * line, a line filter): the native `match` stage, evaluated per record. Its
 * nested stages are converted as the input's are, then indented under it;
 * labels they set are set per line only for the records it matches.
 */
static int match_native(struct pt *P, struct pt_pipe *pp, const yaml_node_t *c, const char *sel,
                        bool drop, const char *reason)
{
    yaml_node_t *stn = get(P, c, "stages");
    struct pt_buf outer = pp->stages, inner = {0};
    size_t nknown = pp->nknown, nstatics = pp->nstatics;
    int rc = 0;

    putstr(&outer, "      - match:\n          selector: ");
    putq(P, &outer, sel);
    if (drop) {
        putstr(&outer, "\n          action: drop\n          drop_counter_reason: ");
        putq(P, &outer, reason ? reason : "match_stage");
        putstr(&outer, "\n");
        pp->stages = outer;
        return 0;
    }
    if (!stn || is_null(stn)) {
        pp->stages = outer;
        return invalid(P, c, "match needs 'stages' (or action: drop)");
    }
    putstr(&outer, "\n          stages:\n");
    pp->stages = inner;
    rc = stage_list(P, pp, stn, "match.stages");
    inner = pp->stages;
    pp->stages = outer;
    if (rc == 0 && pp->nstatics != nstatics)
        rc = unsupported(P, stn,
                         "match selector '%s': static_labels in a match decided per line are "
                         "not supported",
                         sel);
    for (size_t i = 0; i < inner.b.len; i++) {
        if (i == 0 || inner.b.data[i - 1] == '\n')
            putstr(&pp->stages, "    ");
        put(&pp->stages, &inner.b.data[i], 1);
    }
    if (inner.oom)
        pp->stages.oom = true;
    lc_buf_free(&inner.b);
    /* a label with a known value a nested stage set: known only where the selector matched */
    for (size_t i = nknown; i < pp->nknown; i++)
        pipe_dyn(pp, pp->known[i].k);
    return rc;
}

/*
 * match: the selector is decided for the input when converting, from the labels
 * every record of it has (its static labels): nested stages of a matching
 * selector are written in place; a selector that never matches leaves them
 * out. A selector on a label a record gets per line (filename, a `labels`
 * stage, the journal's fields) or with a line filter becomes the native
 * `match` stage, decided per record.
 */
static int st_match(struct pt *P, struct pt_pipe *pp, const yaml_node_t *c)
{
    static const char *const known[] = {"selector",      "stages", "action", "drop_counter_reason",
                                        "pipeline_name", NULL};
    yaml_node_t *sn = get(P, c, "selector"), *stn = get(P, c, "stages");
    const char *sel, *action, *reason, *p;
    bool all = true, dynamic = false;
    struct lc_selector check = {0};
    char err[256];
    int rc = stage_keys(P, c, "match", known);

    if (rc || (rc = get_str(P, c, "selector", &sel)) || (rc = get_str(P, c, "action", &action)) ||
        (rc = get_str(P, c, "drop_counter_reason", &reason)))
        return rc;
    if (!sel)
        return invalid(P, c, "match needs a 'selector'");
    if (action && strcmp(action, "keep") != 0 && strcmp(action, "drop") != 0)
        return invalid(P, c, "match.action must be keep or drop");
    rc = lc_selector_compile(&check, sel, err, sizeof(err));
    lc_selector_free(&check);
    if (rc < 0)
        return invalid(P, sn, "match selector '%s': %s", sel, err);
    p = sel;
    while (*p == ' ')
        p++;
    p++;
    while (*p == ' ')
        p++;
    while (*p != '}') {
        char name[128], op[3], val[1024];
        const char *have = "";
        bool found = false;
        if (lc_selector_next(&p, name, sizeof(name), op, val, sizeof(val)) < 0)
            return invalid(P, sn, "match selector '%s' is not valid", sel);
        for (size_t i = 0; i < pp->ndyn; i++)
            if (strcmp(pp->dyn[i], name) == 0)
                dynamic = true;
        for (size_t i = 0; i < pp->nknown && !found; i++)
            if (strcmp(pp->known[i].k, name) == 0) {
                have = pp->known[i].v;
                found = true;
            }
        rc = matcher_eval(op, val, have);
        if (rc < 0)
            return invalid(P, sn, "match selector '%s': bad regex '%s'", sel, val);
        all = all && rc;
        if (*p == ',')
            p++;
    }
    for (p++; *p == ' '; p++)
        ;
    if (*p) /* a line filter */
        dynamic = true;
    if (dynamic)
        return match_native(P, pp, c, sel, action && strcmp(action, "drop") == 0, reason);
    if (action && strcmp(action, "drop") == 0) {
        if (all) {
            putstr(&pp->stages, "      # match ");
            put_comment(&pp->stages, sel);
            putstr(&pp->stages, " (action: drop): every line of this input\n      - drop: "
                                "{expression: \"\", reason: ");
            putq(P, &pp->stages, reason ? reason : "match_stage");
            putstr(&pp->stages, "}\n");
        }
        return 0;
    }
    if (!stn || is_null(stn))
        return invalid(P, c, "match needs 'stages' (or action: drop)");
    if (!all) {
        putstr(&pp->stages, "      # match ");
        put_comment(&pp->stages, sel);
        putstr(&pp->stages, ": never true for this input: its stages left out\n");
        return 0;
    }
    putstr(&pp->stages, "      # match ");
    put_comment(&pp->stages, sel);
    putstr(&pp->stages, ": true for every line of this input\n");
    return stage_list(P, pp, stn, "match.stages");
}

static int one_stage(struct pt *P, struct pt_pipe *pp, const yaml_node_t *item)
{
    yaml_node_t *k, *c;
    const char *type;
    struct pt_buf *b = &pp->stages;

    if (item->type != YAML_MAPPING_NODE ||
        item->data.mapping.pairs.top - item->data.mapping.pairs.start != 1)
        return invalid(P, item, "a pipeline stage must be a mapping with one key, its type");
    k = node(P, item->data.mapping.pairs.start->key);
    c = node(P, item->data.mapping.pairs.start->value);
    type = scalar(k) ? scalar(k) : "";
    if (strcmp(type, "json") == 0)
        return st_json(P, b, c);
    if (strcmp(type, "regex") == 0)
        return st_regex(P, b, c);
    if (strcmp(type, "logfmt") == 0)
        return st_logfmt(P, b, c);
    if (strcmp(type, "labels") == 0)
        return st_labels(P, pp, c, "labels");
    if (strcmp(type, "structured_metadata") == 0)
        return st_structured_metadata(P, b, c);
    if (strcmp(type, "static_labels") == 0)
        return st_static_labels(P, pp, c);
    if (strcmp(type, "timestamp") == 0)
        return st_timestamp(P, b, c);
    if (strcmp(type, "output") == 0)
        return st_output(P, b, c);
    if (strcmp(type, "replace") == 0)
        return st_replace(P, b, c);
    if (strcmp(type, "drop") == 0)
        return st_drop(P, b, c);
    if (strcmp(type, "limit") == 0)
        return st_limit(P, b, c);
    if (strcmp(type, "multiline") == 0)
        return st_multiline(P, b, c);
    if (strcmp(type, "template") == 0)
        return st_template(P, b, c);
    if (strcmp(type, "docker") == 0)
        return st_docker(P, pp, c);
    if (strcmp(type, "cri") == 0)
        return st_cri(P, pp, c);
    if (strcmp(type, "match") == 0)
        return st_match(P, pp, c);
    if (strcmp(type, "labeldrop") == 0 || strcmp(type, "labelallow") == 0)
        return st_labellist(P, pp, c, type);
    if (strcmp(type, "decolorize") == 0) {
        putstr(b, "      - decolorize: {}\n");
        return 0;
    }
    if (strcmp(type, "tenant") == 0)
        return st_tenant(P, b, c);
    return unsupported(P, k,
                       "pipeline stage '%s' is not supported (supported: docker, cri, multiline, "
                       "regex, json, logfmt, labels, structured_metadata, static_labels, "
                       "timestamp, output, replace, drop, limit, template, decolorize, match, "
                       "labeldrop, labelallow, tenant)",
                       type);
}

static int stage_list(struct pt *P, struct pt_pipe *pp, const yaml_node_t *seq, const char *where)
{
    int rc = want_seq(P, seq, where);
    if (rc)
        return rc;
    FOR_ITEMS(seq, it)
    {
        if ((rc = one_stage(P, pp, node(P, *it))))
            return rc;
    }
    return 0;
}

/* scrape_configs ------------------------------------------------------------------------------ */

/*
 * Converts pipeline_stages (ps, may be NULL) for one input whose records all
 * have the labels lab and may get the labels dyn per line.
 */
static int pipe_build(struct pt *P, struct pt_pipe *pp, const yaml_node_t *ps,
                      const struct pt_kv *lab, size_t nlab, const char *const *dyn, size_t ndyn)
{
    int rc = 0;

    pipe_known(pp, lab, nlab);
    for (size_t i = 0; i < ndyn; i++)
        pipe_dyn(pp, dyn[i]);
    if (ps && !is_null(ps))
        rc = stage_list(P, pp, ps, "pipeline_stages");
    if (rc == 0 && pp->stages.oom)
        rc = -ENOMEM;
    return rc;
}

/* Writes one input's head: type, name, labels (own + static_labels). */
static void input_head(struct pt *P, const char *type, const char *job, const struct pt_kv *lab,
                       size_t nlab, const struct pt_pipe *pp)
{
    struct pt_buf *o = &P->ins;
    struct pt_kv all[2 * PT_MAX_LABELS];
    size_t n = 0;
    char name[300];

    P->ninputs++;
    snprintf(name, sizeof(name), "%s", job);
    for (size_t i = 0; i < nlab; i++)
        all[n++] = lab[i];
    for (size_t i = 0; pp && i < pp->nstatics; i++)
        all[n++] = pp->statics[i];
    putf(o, "  - type: %s\n    name: ", type);
    putq(P, o, name);
    putstr(o, "\n");
    if (n) {
        putstr(o, "    labels: ");
        put_kv_flow(P, o, all, n);
        putstr(o, "\n");
    }
}

static void input_tail(struct pt *P, const struct pt_pipe *pp)
{
    const char *st = pp->stages.b.data;

    if (!pp->stages.b.len)
        return;
    /* only comments (a stage left out, e.g. cri in the kubernetes input): no process key */
    if (strncmp(st, "      - ", 8) == 0 || strstr(st, "\n      - "))
        putstr(&P->ins, "    process:\n");
    put(&P->ins, st, pp->stages.b.len);
}

/* Is there a glob the file input's glob(3) cannot expand the way Go's doublestar does? */
static int check_glob(struct pt *P, const yaml_node_t *v, const char *g)
{
    if (strstr(g, "**"))
        return unsupported(P, v,
                           "__path__ '%s': '**' (any depth) is not supported by the file "
                           "input's globs; list the levels (e.g. /var/log/*/*.log)",
                           g);
    if (strchr(g, '{'))
        return unsupported(P, v,
                           "__path__ '%s': '{a,b}' alternatives are not supported; use a "
                           "static_config per alternative",
                           g);
    return 0;
}

static int conv_static(struct pt *P, const char *job, const yaml_node_t *sc, const yaml_node_t *ps,
                       size_t idx)
{
    static const char *const dyn[] = {"filename"};
    struct pt_pipe pipe = {0}, *pp = &pipe;
    static const char *const known[] = {"targets", "labels", NULL};
    yaml_node_t *ln = get(P, sc, "labels");
    struct pt_kv lab[PT_MAX_LABELS], keep[PT_MAX_LABELS];
    const char *path = NULL, *excl = NULL;
    yaml_node_t *pathn = NULL, *excln = NULL;
    size_t n = 0, nk = 0;
    char name[300];
    int rc = stage_keys(P, sc, "static_configs", known);

    if (rc)
        return rc;
    if (ln && (rc = str_map(P, ln, "labels", lab, &n, PT_MAX_LABELS)))
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(lab[i].k, "__path__") == 0) {
            path = lab[i].v;
            pathn = get(P, ln, "__path__");
        } else if (strcmp(lab[i].k, "__path_exclude__") == 0) {
            excl = lab[i].v;
            excln = get(P, ln, "__path_exclude__");
        } else if (strncmp(lab[i].k, "__", 2) != 0) {
            keep[nk++] = lab[i];
        }
    }
    if (!path)
        return invalid(P, sc, "a static_config of job '%s' needs labels.__path__", job);
    if ((rc = check_glob(P, pathn, path)) || (excl && (rc = check_glob(P, excln, excl))))
        return rc;
    if ((rc = pipe_build(P, pp, ps, keep, nk, dyn, 1))) {
        lc_buf_free(&pipe.stages.b);
        return rc;
    }
    if (idx == 0)
        snprintf(name, sizeof(name), "%s", job);
    else
        snprintf(name, sizeof(name), "%s-%zu", job, idx + 1);
    input_head(P, "file", name, keep, nk, pp);
    putstr(&P->ins, "    paths: [");
    putq(P, &P->ins, path);
    putstr(&P->ins, "]\n");
    if (excl) {
        putstr(&P->ins, "    exclude: [");
        putq(P, &P->ins, excl);
        putstr(&P->ins, "]\n");
    }
    putstr(&P->ins, "    start_at: beginning   # Promtail reads a file without a position from its "
                    "start\n");
    input_tail(P, pp);
    lc_buf_free(&pipe.stages.b);
    return 0;
}

/* journal: { json, max_age, labels, path, matches }. */
static int conv_journal(struct pt *P, const char *job, const yaml_node_t *j, const yaml_node_t *ps,
                        const struct pt_kv *fields, size_t nfields)
{
    struct pt_pipe pipe = {0}, *pp = &pipe;
    const char *dyn[PT_MAX_LABELS];
    static const char *const known[] = {"json", "max_age", "labels", "path", "matches", NULL};
    yaml_node_t *ln = get(P, j, "labels"), *jn = get(P, j, "json"), *ma = get(P, j, "max_age");
    struct pt_kv lab[PT_MAX_LABELS];
    const char *path, *matches;
    size_t n = 0;
    int64_t age = 7 * 3600 * 1000;
    int rc = stage_keys(P, j, "journal", known);

    if (rc || (rc = get_str(P, j, "path", &path)) || (rc = get_str(P, j, "matches", &matches)))
        return rc;
    if (ln && (rc = str_map(P, ln, "labels", lab, &n, PT_MAX_LABELS)))
        return rc;
    if (ma && (rc = want_dur(P, ma, "max_age", &age)))
        return rc;
    if (jn) {
        bool js = false;
        if ((rc = want_bool(P, jn, "json", &js)))
            return rc;
        if (js && (rc = unsupported(P, jn,
                                    "journal.json: true (the entry as JSON) is not "
                                    "supported; the line is MESSAGE")))
            return rc;
    }
    for (size_t i = 0; i < nfields; i++)
        dyn[i] = fields[i].k;
    if ((rc = pipe_build(P, pp, ps, lab, n, dyn, nfields))) {
        lc_buf_free(&pipe.stages.b);
        return rc;
    }
    input_head(P, "journal", job, lab, n, pp);
    if (path) {
        putstr(&P->ins, "    path: ");
        putq(P, &P->ins, path);
        putstr(&P->ins, "\n");
    }
    if (matches) {
        /* "_SYSTEMD_UNIT=a.service _SYSTEMD_UNIT=b.service": only unit and identifier matches */
        char buf[1024], *save = NULL;
        struct pt_buf units = {0}, ids = {0};
        snprintf(buf, sizeof(buf), "%s", matches);
        for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
            struct pt_buf *to = NULL;
            if (strncmp(t, "_SYSTEMD_UNIT=", 14) == 0)
                to = &units;
            else if (strncmp(t, "SYSLOG_IDENTIFIER=", 18) == 0)
                to = &ids;
            if (!to || strchr(t, '+')) {
                lc_buf_free(&units.b);
                lc_buf_free(&ids.b);
                lc_buf_free(&pipe.stages.b);
                return unsupported(P, get(P, j, "matches"),
                                   "journal.matches '%s': only _SYSTEMD_UNIT= and "
                                   "SYSLOG_IDENTIFIER= matches are supported",
                                   t);
            }
            if (to->b.len)
                putstr(to, ", ");
            putq(P, to, strchr(t, '=') + 1);
        }
        if (units.b.len)
            putf(&P->ins, "    units: [%s]\n", units.b.data);
        if (ids.b.len)
            putf(&P->ins, "    identifiers: [%s]\n", ids.b.data);
        lc_buf_free(&units.b);
        lc_buf_free(&ids.b);
    }
    putstr(&P->ins, "    fields: ");
    put_kv_flow(P, &P->ins, fields, nfields);
    putstr(&P->ins, "   # from relabel_configs on __journal_* labels\n");
    putf(&P->ins,
         "    start_at: beginning\n    max_age: %" PRId64 "ms   # max_age (Promtail's "
         "default 7h)\n",
         age);
    input_tail(P, pp);
    lc_buf_free(&pipe.stages.b);
    return 0;
}

/* syslog: { listen_address, idle_timeout, label_structured_data, labels, use_incoming_timestamp }
 */
static int conv_syslog(struct pt *P, const char *job, const yaml_node_t *s, const yaml_node_t *ps,
                       const struct pt_kv *fields, size_t nfields)
{
    const char *dyn[PT_MAX_LABELS + 1];
    struct pt_pipe pipe = {0}, *pp = &pipe;
    bool level = false;
    static const char *const known[] = {"listen_address",         "idle_timeout",    "labels",
                                        "use_incoming_timestamp", "listen_protocol", NULL};
    yaml_node_t *ln = get(P, s, "labels"), *it = get(P, s, "idle_timeout"),
                *ut = get(P, s, "use_incoming_timestamp");
    struct pt_kv lab[PT_MAX_LABELS];
    const char *addr, *proto;
    size_t n = 0;
    int64_t idle = 120000;
    bool use_ts = false;
    int rc = stage_keys(P, s, "syslog", known);

    if (rc || (rc = get_str(P, s, "listen_address", &addr)) ||
        (rc = get_str(P, s, "listen_protocol", &proto)))
        return rc;
    if (!addr)
        return invalid(P, s, "syslog needs 'listen_address'");
    if (ln && (rc = str_map(P, ln, "labels", lab, &n, PT_MAX_LABELS)))
        return rc;
    if (it && (rc = want_dur(P, it, "idle_timeout", &idle)))
        return rc;
    if (ut && (rc = want_bool(P, ut, "use_incoming_timestamp", &use_ts)))
        return rc;
    for (size_t i = 0; i < nfields; i++) {
        dyn[i] = fields[i].k;
        level |= strcmp(fields[i].v, "facility") == 0 || strcmp(fields[i].v, "severity") == 0;
    }
    dyn[nfields] = "malformed";
    if ((rc = pipe_build(P, pp, ps, lab, n, dyn, nfields + 1))) {
        lc_buf_free(&pipe.stages.b);
        return rc;
    }
    input_head(P, "syslog", job, lab, n, pp);
    putstr(&P->ins, proto && strcmp(proto, "udp") == 0 ? "    listen_tcp: \"\"\n    listen_udp: "
                                                       : "    listen_udp: \"\"\n    listen_tcp: ");
    putq(P, &P->ins, addr);
    putstr(&P->ins, "\n");
    putf(&P->ins, "    idle_timeout: %" PRId64 "ms\n", idle);
    putstr(&P->ins, "    fields: ");
    put_kv_flow(P, &P->ins, fields, nfields);
    putstr(&P->ins, "   # from relabel_configs on __syslog_* labels\n");
    if (level)
        putstr(&P->ins, "    # approximated: facility and severity values are syslog keywords "
                        "(local3, err, info; Promtail: go-syslog's names, e.g. error, "
                        "informational)\n");
    putstr(&P->ins, "    # approximated: a message without a <PRI> is passed on labelled "
                    "malformed=\"true\" (Promtail does not forward it)\n");
    if (!use_ts)
        putstr(&P->ins, "    # approximated: use_incoming_timestamp false: the message's time is "
                        "used when it has one\n");
    input_tail(P, pp);
    lc_buf_free(&pipe.stages.b);
    return 0;
}

/* Promtail's syslog discovery labels and the syslog input's fields they are. */
static const char *const syslog_meta[][2] = {
    {"__syslog_message_hostname", "hostname"},       {"__syslog_message_app_name", "app_name"},
    {"__syslog_message_severity", "severity"},       {"__syslog_message_facility", "facility"},
    {"__syslog_message_proc_id", "proc_id"},         {"__syslog_message_msg_id", "msg_id"},
    {"__syslog_connection_ip_address", "ip_address"}};

/* The syslog input's field of a __syslog_* label, or NULL. */
static const char *syslog_field(const char *label)
{
    for (size_t i = 0; i < sizeof(syslog_meta) / sizeof(syslog_meta[0]); i++)
        if (strcmp(syslog_meta[i][0], label) == 0)
            return syslog_meta[i][1];
    return NULL;
}

/* A journal source label's field (upper case, priority_keyword: PRIORITY) into out[128]. */
static void journal_field(const char *f, char *out)
{
    size_t i = 0;

    if (strcmp(f, "priority_keyword") == 0)
        f = "priority";
    for (; f[i] && i < 127; i++)
        out[i] = (char)(f[i] >= 'a' && f[i] <= 'z' ? f[i] - 'a' + 'A' : f[i]);
    out[i] = '\0';
}

enum pt_rl { RL_NONE, RL_JOURNAL, RL_SYSLOG };

/*
 * relabel_configs: only what maps onto the journal or syslog input's fields —
 * `replace` from one __journal_<field> (__syslog_message_<field>,
 * __syslog_connection_ip_address) source label to a target label (default
 * regex, replacement). Anything else is unsupported.
 */
static int conv_relabel(struct pt *P, const yaml_node_t *rl, enum pt_rl kind, struct pt_kv *fields,
                        char store[][128], size_t *nfields)
{
    int rc = want_seq(P, rl, "relabel_configs");
    if (rc)
        return rc;
    FOR_ITEMS(rl, itp)
    {
        static const char *const known[] = {"source_labels", "target_label", "action",
                                            "regex",         "replacement",  NULL};
        yaml_node_t *r = node(P, *itp), *sl = get(P, r, "source_labels");
        const char *target, *action, *regex, *repl, *src;
        if ((rc = want_map(P, r, "relabel_configs")) ||
            (rc = stage_keys(P, r, "relabel_configs", known)) ||
            (rc = get_str(P, r, "target_label", &target)) ||
            (rc = get_str(P, r, "action", &action)) || (rc = get_str(P, r, "regex", &regex)) ||
            (rc = get_str(P, r, "replacement", &repl)))
            return rc;
        if (kind == RL_NONE || (action && strcmp(action, "replace") != 0) || !target || !sl ||
            sl->type != YAML_SEQUENCE_NODE ||
            sl->data.sequence.items.top - sl->data.sequence.items.start != 1 ||
            (regex && strcmp(regex, "(.*)") != 0 && strcmp(regex, ".*") != 0) ||
            (repl && strcmp(repl, "$1") != 0 && strcmp(repl, "${1}") != 0)) {
            rc = unsupported(P, r,
                             "this relabel_configs rule is not supported (supported: action "
                             "replace of one __journal_<field> or __syslog_* source label to a "
                             "target_label, default regex and replacement, in journal and "
                             "syslog scrape configs)");
            if (rc)
                return rc;
            continue;
        }
        src = scalar(node(P, *sl->data.sequence.items.start));
        if (kind == RL_JOURNAL ? !src || strncmp(src, "__journal_", 10) != 0 || !src[10]
                               : !src || !syslog_field(src)) {
            if ((rc = unsupported(P, r,
                                  kind == RL_JOURNAL
                                      ? "relabel_configs: source label '%s' is not a "
                                        "__journal_<field> label"
                                      : "relabel_configs: source label '%s' is not supported "
                                        "(supported: __syslog_message_hostname, _app_name, "
                                        "_severity, _facility, _proc_id, _msg_id, "
                                        "__syslog_connection_ip_address)",
                                  src ? src : "")))
                return rc;
            continue;
        }
        if (*nfields >= PT_MAX_LABELS)
            return invalid(P, r, "too many relabel_configs rules");
        if (kind == RL_JOURNAL)
            journal_field(src + 10, store[*nfields]);
        else
            snprintf(store[*nfields], 128, "%s", syslog_field(src));
        fields[*nfields].k = target;
        fields[*nfields].v = store[*nfields];
        (*nfields)++;
    }
    return 0;
}

/* The kubernetes input's discovery labels (from the pod log path and the node name). */
static const char *const k8s_meta[] = {
    "__meta_kubernetes_namespace",     "__meta_kubernetes_pod_name",
    "__meta_kubernetes_pod_uid",       "__meta_kubernetes_pod_container_name",
    "__meta_kubernetes_pod_node_name", NULL};

/* A source label the input of a docker (k8s false) or kubernetes discovery does not provide. */
static bool sd_label_missing(bool k8s, const char *v)
{
    if (k8s)
        return strncmp(v, "__meta_kubernetes_", 18) == 0 && !one_of(v, k8s_meta);
    return strncmp(v, "__meta_docker_network_", 22) == 0 ||
           strncmp(v, "__meta_docker_port_", 19) == 0;
}

/*
 * Promtail's Helm chart's `__path__` rule: a replace into __path__ from the
 * pod uid and container name. The kubernetes input finds the files itself.
 */
static bool k8s_path_rule(struct pt *P, const yaml_node_t *sl, const char *action,
                          const char *target)
{
    if (!target || strcmp(target, "__path__") != 0 || (action && strcmp(action, "replace") != 0))
        return false;
    if (sl)
        FOR_ITEMS(sl, sp)
        {
            const char *v = scalar(node(P, *sp));
            if (!v || (strcmp(v, "__meta_kubernetes_pod_uid") != 0 &&
                       strcmp(v, "__meta_kubernetes_pod_container_name") != 0))
                return false;
        }
    return true;
}

/*
 * relabel_configs of a docker_sd_configs (k8s false) or kubernetes_sd_configs
 * scrape: written out as the input's `relabel:` list (same semantics, run
 * once per container or pod log). Docker's discovery labels are
 * __meta_docker_container_{id,name,label_*,log_stream}; rules naming
 * __meta_docker_network_* or __meta_docker_port_* (not provided) are
 * unsupported. Kubernetes': k8s_meta; any other __meta_kubernetes_* (pod
 * labels and annotations need the API server) is unsupported, and the Helm
 * chart's __path__ rule is left out. Actions other than replace, keep, drop,
 * labelmap, labeldrop, labelkeep are unsupported.
 */
static int conv_relabel_sd(struct pt *P, const yaml_node_t *rl, bool k8s, struct pt_buf *o,
                           const char **dyn, size_t *ndyn)
{
    static const char *const actions[] = {"replace",   "keep",      "drop", "labelmap",
                                          "labeldrop", "labelkeep", NULL};
    static const char *const known[] = {"source_labels", "separator", "regex", "target_label",
                                        "replacement",   "action",    NULL};
    int rc = want_seq(P, rl, "relabel_configs");
    bool any = false;

    if (rc)
        return rc;
    FOR_ITEMS(rl, itp)
    {
        yaml_node_t *r = node(P, *itp), *sl = get(P, r, "source_labels");
        const char *action, *sep, *regex, *target, *repl;
        bool bad = false;

        if ((rc = want_map(P, r, "relabel_configs")) ||
            (rc = stage_keys(P, r, "relabel_configs", known)) ||
            (rc = get_str(P, r, "action", &action)) || (rc = get_str(P, r, "separator", &sep)) ||
            (rc = get_str(P, r, "regex", &regex)) ||
            (rc = get_str(P, r, "target_label", &target)) ||
            (rc = get_str(P, r, "replacement", &repl)))
            return rc;
        if (action && !one_of(action, actions)) {
            if ((rc = unsupported(P, r,
                                  "relabel_configs action '%s' is not supported (supported: "
                                  "replace, keep, drop, labelmap, labeldrop, labelkeep)",
                                  action)))
                return rc;
            continue;
        }
        if (sl && (rc = want_seq(P, sl, "source_labels")))
            return rc;
        if (sl)
            FOR_ITEMS(sl, sp)
            {
                const char *v = scalar(node(P, *sp));
                if (v && sd_label_missing(k8s, v)) {
                    if ((rc = unsupported(
                             P, r,
                             k8s ? "relabel_configs: source label '%s' is not provided (pod "
                                   "labels and annotations need the API server; supported: "
                                   "__meta_kubernetes_namespace, _pod_name, _pod_uid, "
                                   "_pod_container_name, _pod_node_name)"
                                 : "relabel_configs: source label '%s' is not provided "
                                   "(supported: __meta_docker_container_id, _name, "
                                   "_label_<name>, _log_stream)",
                             v)))
                        return rc;
                    bad = true;
                }
            }
        if (bad)
            continue;
        if (k8s && k8s_path_rule(P, sl, action, target)) {
            putstr(o, "    # approximated: the __path__ rule is left out (the input finds "
                      "the pod logs itself)\n");
            continue;
        }
        if (!any)
            putf(o, "    relabel:   # relabel_configs, applied once per %s\n",
                 k8s ? "pod log" : "container");
        any = true;
        putf(o, "      - action: %s\n", action ? action : "replace");
        if (sl) {
            bool first = true;
            putstr(o, "        source_labels: [");
            FOR_ITEMS(sl, sp)
            {
                const char *v = scalar(node(P, *sp));
                if (!first)
                    putstr(o, ", ");
                first = false;
                putq_lit(o, v ? v : "");
            }
            putstr(o, "]\n");
        }
        if (sep) {
            putstr(o, "        separator: ");
            putq_lit(o, sep);
            putstr(o, "\n");
        }
        if (regex) {
            putstr(o, "        regex: ");
            putq_lit(o, regex);
            putstr(o, "\n");
        }
        if (target) {
            putstr(o, "        target_label: ");
            putq_lit(o, target);
            putstr(o, "\n");
            if (*ndyn < PT_MAX_LABELS)
                dyn[(*ndyn)++] = target;
        }
        if (repl) {
            putstr(o, "        replacement: ");
            putq_lit(o, repl);
            putstr(o, "\n");
        }
    }
    return 0;
}

/*
 * The head of a discovery input (docker or kubernetes): its relabel_configs
 * into rel, its pipeline into pp, `- type:` and its name (<job>, <job>-2, ...).
 */
static int sd_head(struct pt *P, const char *type, const char *job, size_t idx,
                   const yaml_node_t *ps, const yaml_node_t *rl, struct pt_pipe *pp,
                   struct pt_buf *rel)
{
    const char *dyn[PT_MAX_LABELS];
    size_t ndyn = 0;
    char name[300];
    int rc;

    if (rl && (rc = conv_relabel_sd(P, rl, strcmp(type, "kubernetes") == 0, rel, dyn, &ndyn)))
        return rc;
    if ((rc = pipe_build(P, pp, ps, NULL, 0, dyn, ndyn)))
        return rc;
    if (idx == 0)
        snprintf(name, sizeof(name), "%s", job);
    else
        snprintf(name, sizeof(name), "%s-%zu", job, idx + 1);
    input_head(P, type, name, NULL, 0, pp);
    return 0;
}

/* The end of a discovery input: start_at, the relabel: list, the stages. */
static void sd_tail(struct pt *P, const struct pt_pipe *pp, const struct pt_buf *rel,
                    const char *what)
{
    putf(&P->ins,
         "    start_at: beginning   # Promtail reads a %s without a position from its "
         "start\n",
         what);
    if (rel->b.len)
        put(&P->ins, rel->b.data, rel->b.len);
    input_tail(P, pp);
}

/*
 * docker_sd_configs: { host, refresh_interval, filters }: the docker input in
 * api mode (it follows the daemon's events; no polling), one per entry.
 */
static int conv_docker_sd(struct pt *P, const char *job, const yaml_node_t *dc, size_t idx,
                          const yaml_node_t *ps, const yaml_node_t *rl)
{
    static const char *const known[] = {"host", "refresh_interval", "filters", "port", NULL};
    struct pt_pipe pipe = {0}, *pp = &pipe;
    struct pt_buf rel = {0}, names = {0}, labels = {0}, images = {0};
    const char *host, *refresh;
    yaml_node_t *fl = get(P, dc, "filters");
    int rc = stage_keys(P, dc, "docker_sd_configs", known);

    if (rc || (rc = get_str(P, dc, "host", &host)) ||
        (rc = get_str(P, dc, "refresh_interval", &refresh)))
        return rc;
    if (!host || strncmp(host, "unix://", 7) != 0 || !host[7])
        return unsupported(P, dc,
                           "docker_sd_configs.host '%s': only a unix:// socket is supported "
                           "(e.g. unix:///var/run/docker.sock)",
                           host ? host : "");
    if (fl && !is_null(fl)) {
        if ((rc = want_seq(P, fl, "filters")))
            return rc;
        FOR_ITEMS(fl, fp)
        {
            yaml_node_t *f = node(P, *fp), *vs = get(P, f, "values");
            const char *fname;
            struct pt_buf *to = NULL;
            if ((rc = want_map(P, f, "filters")) ||
                (rc = stage_keys(P, f, "filters", (const char *const[]){"name", "values", NULL})) ||
                (rc = get_str(P, f, "name", &fname)))
                goto out;
            if (fname && strcmp(fname, "name") == 0)
                to = &names;
            else if (fname && strcmp(fname, "label") == 0)
                to = &labels;
            else if (fname && strcmp(fname, "ancestor") == 0)
                to = &images;
            if (!to || !vs || vs->type != YAML_SEQUENCE_NODE) {
                rc = unsupported(P, f,
                                 "docker_sd_configs.filters '%s' is not supported (supported: "
                                 "name, label, ancestor, each with a list of values)",
                                 fname ? fname : "");
                if (rc)
                    goto out;
                continue;
            }
            FOR_ITEMS(vs, vp)
            {
                const char *v = scalar(node(P, *vp));
                char glob[600];
                if (!v)
                    continue;
                /* Docker matches a name filter anywhere in the name; a glob does so with stars */
                snprintf(glob, sizeof(glob), to == &names ? "*%s*" : "%s", v);
                if (to->b.len)
                    putstr(to, ", ");
                putq(P, to, glob);
            }
        }
    }
    if ((rc = sd_head(P, "docker", job, idx, ps, rl, pp, &rel)))
        goto out;
    putstr(&P->ins, "    mode: api\n    socket: ");
    putq(P, &P->ins, host + 7);
    putstr(&P->ins, "\n");
    if (refresh)
        putstr(&P->ins, "    # refresh_interval: not needed, the input follows the daemon's "
                        "events\n");
    if (names.b.len || labels.b.len || images.b.len) {
        putstr(&P->ins, "    include:   # from filters\n");
        if (names.b.len)
            putf(&P->ins, "      names: [%s]   # approximated: Docker matches a substring\n",
                 names.b.data);
        if (labels.b.len)
            putf(&P->ins, "      labels: [%s]\n", labels.b.data);
        if (images.b.len)
            putf(&P->ins,
                 "      images: [%s]   # approximated: ancestor also matches parent "
                 "images\n",
                 images.b.data);
    }
    sd_tail(P, pp, &rel, "container");
out:
    lc_buf_free(&pipe.stages.b);
    lc_buf_free(&rel.b);
    lc_buf_free(&names.b);
    lc_buf_free(&labels.b);
    lc_buf_free(&images.b);
    return rc;
}

/*
 * kubernetes_sd_configs: { role: pod, namespaces: {names} }: the kubernetes
 * input, one per entry; it finds the pod logs on this node under
 * /var/log/pods itself (no API server), so selectors and other roles are
 * unsupported.
 */
static int conv_k8s_sd(struct pt *P, const char *job, const yaml_node_t *kc, size_t idx,
                       const yaml_node_t *ps, const yaml_node_t *rl)
{
    static const char *const known[] = {"role", "namespaces", "selectors", NULL};
    struct pt_pipe pipe = {.in_kubernetes = true}, *pp = &pipe;
    struct pt_buf rel = {0}, nsb = {0};
    const char *role;
    yaml_node_t *ns = get(P, kc, "namespaces"), *sel = get(P, kc, "selectors");
    int rc = stage_keys(P, kc, "kubernetes_sd_configs", known);

    if (rc || (rc = get_str(P, kc, "role", &role)))
        return rc;
    if (!role || strcmp(role, "pod") != 0)
        return unsupported(P, kc,
                           "kubernetes_sd_configs.role '%s': only role: pod is supported (the "
                           "kubernetes input reads this node's pod logs)",
                           role ? role : "");
    if (sel && !is_null(sel) &&
        (rc = unsupported(P, sel,
                          "kubernetes_sd_configs.selectors: label and field selectors need the "
                          "API server (use the input's include/exclude on namespaces, pods, "
                          "containers)")))
        return rc;
    if (ns && !is_null(ns)) {
        yaml_node_t *names;
        if ((rc = want_map(P, ns, "namespaces")) ||
            (rc = stage_keys(P, ns, "namespaces", (const char *const[]){"names", NULL})))
            return rc;
        names = get(P, ns, "names");
        if (names && !is_null(names)) {
            if ((rc = want_seq(P, names, "names")))
                return rc;
            FOR_ITEMS(names, np)
            {
                const char *v = scalar(node(P, *np));
                if (!v)
                    continue;
                if (nsb.b.len)
                    putstr(&nsb, ", ");
                putq(P, &nsb, v);
            }
        }
    }
    if ((rc = sd_head(P, "kubernetes", job, idx, ps, rl, pp, &rel)))
        goto out;
    putstr(&P->ins, "    # root: /var/log/pods (the kubelet's pod logs on this node)\n");
    if (nsb.b.len)
        putf(&P->ins, "    include: {namespaces: [%s]}   # from namespaces.names\n", nsb.b.data);
    sd_tail(P, pp, &rel, "log");
out:
    lc_buf_free(&pipe.stages.b);
    lc_buf_free(&rel.b);
    lc_buf_free(&nsb.b);
    return rc;
}

typedef int (*pt_sd_fn)(struct pt *P, const char *job, const yaml_node_t *entry, size_t idx,
                        const yaml_node_t *ps, const yaml_node_t *rl);

/* A *_sd_configs list: an input per entry (conv), at least one. */
static int conv_sd_list(struct pt *P, const char *job, const yaml_node_t *list, const char *what,
                        pt_sd_fn conv, const yaml_node_t *ps, const yaml_node_t *rl)
{
    size_t i = 0;
    int rc = want_seq(P, list, what);

    if (rc)
        return rc;
    FOR_ITEMS(list, it)
    {
        if ((rc = conv(P, job, node(P, *it), i++, ps, rl)))
            return rc;
    }
    if (i == 0)
        return invalid(P, list, "job '%s': %s is empty", job, what);
    return 0;
}

static int conv_scrape(struct pt *P, const yaml_node_t *sc)
{
    static const char *const known[] = {
        "job_name",        "static_configs",    "pipeline_stages",       "journal", "syslog",
        "relabel_configs", "docker_sd_configs", "kubernetes_sd_configs", NULL};
    yaml_node_t *stn = get(P, sc, "static_configs"), *ps = get(P, sc, "pipeline_stages"),
                *dsd = get(P, sc, "docker_sd_configs"), *ksd = get(P, sc, "kubernetes_sd_configs"),
                *jn = get(P, sc, "journal"), *sy = get(P, sc, "syslog"),
                *rl = get(P, sc, "relabel_configs");
    struct pt_kv fields[PT_MAX_LABELS];
    char store[PT_MAX_LABELS][128];
    size_t nfields = 0, kinds;
    const char *job;
    int rc;

    if ((rc = want_map(P, sc, "scrape_configs")))
        return rc;
    FOR_PAIRS(sc, pr)
    {
        yaml_node_t *k = node(P, pr->key);
        const char *key = scalar(k) ? scalar(k) : "";
        if (!one_of(key, known) &&
            (rc = unsupported(P, k,
                              "scrape_configs.%s is not supported (supported: job_name, "
                              "static_configs, docker_sd_configs, kubernetes_sd_configs, "
                              "journal, syslog, pipeline_stages, and relabel_configs for "
                              "journal and syslog fields and docker/kubernetes discovery labels)",
                              key)))
            return rc;
    }
    if ((rc = get_str(P, sc, "job_name", &job)))
        return rc;
    if (!job || !*job)
        return invalid(P, sc, "a scrape config needs a 'job_name'");
    kinds = (stn != NULL) + (jn != NULL) + (sy != NULL) + (dsd != NULL) + (ksd != NULL);
    if (kinds > 1)
        return unsupported(P, sc,
                           "job '%s': more than one of static_configs, docker_sd_configs, "
                           "kubernetes_sd_configs, journal, syslog",
                           job);
    if (ksd)
        return conv_sd_list(P, job, ksd, "kubernetes_sd_configs", conv_k8s_sd, ps, rl);
    if (dsd)
        return conv_sd_list(P, job, dsd, "docker_sd_configs", conv_docker_sd, ps, rl);
    if (rl && (rc = conv_relabel(P, rl,
                                 jn   ? RL_JOURNAL
                                 : sy ? RL_SYSLOG
                                      : RL_NONE,
                                 fields, store, &nfields)))
        return rc;
    if (ps && !is_null(ps) && (rc = want_seq(P, ps, "pipeline_stages")))
        return rc;
    if (stn) {
        size_t i = 0;
        if ((rc = want_seq(P, stn, "static_configs")))
            return rc;
        FOR_ITEMS(stn, it)
        {
            if ((rc = conv_static(P, job, node(P, *it), ps, i++)))
                return rc;
        }
        if (i == 0)
            return invalid(P, stn, "job '%s': static_configs is empty", job);
        return 0;
    }
    if (jn)
        return conv_journal(P, job, jn, ps, fields, nfields);
    if (sy)
        return conv_syslog(P, job, sy, ps, fields, nfields);
    return unsupported(P, sc,
                       "job '%s' has no static_configs, docker_sd_configs, kubernetes_sd_configs, "
                       "journal or syslog",
                       job);
}

/* The document ----------------------------------------------------------------------------- */

static int conv_root(struct pt *P, const yaml_node_t *root)
{
    int rc;
    size_t nclient = 0;

    if (!root || root->type != YAML_MAPPING_NODE)
        return invalid(P, root ? root : &(yaml_node_t){0},
                       "expected a mapping at the top level (a Promtail configuration)");
    FOR_PAIRS(root, pr)
    {
        yaml_node_t *k = node(P, pr->key), *v = node(P, pr->value);
        const char *key = scalar(k) ? scalar(k) : "";
        if (strcmp(key, "server") == 0) {
            rc = conv_server(P, v);
        } else if (strcmp(key, "positions") == 0) {
            rc = conv_positions(P, v);
        } else if (strcmp(key, "clients") == 0) {
            rc = want_seq(P, v, "clients");
            FOR_ITEMS(v, it)
            {
                if (rc == 0)
                    rc = conv_client(P, node(P, *it), nclient++);
            }
        } else if (strcmp(key, "client") == 0) {
            rc = conv_client(P, v, nclient++);
        } else if (strcmp(key, "scrape_configs") == 0) {
            rc = want_seq(P, v, "scrape_configs");
            FOR_ITEMS(v, it)
            {
                if (rc == 0)
                    rc = conv_scrape(P, node(P, *it));
            }
        } else if (strcmp(key, "target_config") == 0) {
            putstr(&P->top, "# approximated: target_config.sync_period: files are looked for every "
                            "second (rescan_interval)\n");
            rc = 0;
        } else {
            rc = unsupported(P, k,
                             "top-level key '%s' is not supported (supported: server, positions, "
                             "clients, scrape_configs, target_config)",
                             key);
        }
        if (rc)
            return rc;
    }
    if (nclient == 0)
        return invalid(P, root, "no clients: a Promtail configuration needs at least one");
    if (P->ninputs == 0)
        return invalid(P, root, "no scrape_configs with a supported target");
    return 0;
}

int lc_promtail_convert(const char *text, size_t len, const char *name, unsigned flags, FILE *warn,
                        struct lc_promtail_result *res, char *err, size_t errlen)
{
    struct pt P = {.name = name, .flags = flags, .warn = warn, .err = err, .errlen = errlen};
    yaml_parser_t parser;
    struct pt_buf all = {0};
    int rc;

    err[0] = '\0';
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &P.doc)) {
        snprintf(err, errlen, "%s:%zu:%zu: %s", name, parser.problem_mark.line + 1,
                 parser.problem_mark.column + 1, parser.problem ? parser.problem : "invalid YAML");
        yaml_parser_delete(&parser);
        return -EINVAL;
    }
    yaml_parser_delete(&parser);
    if (!yaml_document_get_root_node(&P.doc)) {
        snprintf(err, errlen, "%s:1:1: the configuration is empty", name);
        yaml_document_delete(&P.doc);
        return -EINVAL;
    }
    rc = conv_root(&P, yaml_document_get_root_node(&P.doc));
    if (rc == 0) {
        putf(&all, "# Converted from the Promtail configuration %s by log_capturer.\n", name);
        putstr(&all, "state_dir: \"${LC_STATE_DIR:-/var/lib/log_capturer}\"\n");
        if (P.top.b.len)
            put(&all, P.top.b.data, P.top.b.len);
        if (!P.have_listen)
            putstr(&all, "listen: \"127.0.0.1:9080\"   # Promtail's port; loopback\n");
        putstr(&all, "outputs:\n");
        put(&all, P.outs.b.data, P.outs.b.len);
        putstr(&all, "inputs:\n");
        put(&all, P.ins.b.data, P.ins.b.len);
        if (all.oom || P.top.oom || P.outs.oom || P.ins.oom)
            rc = -ENOMEM;
    }
    if (rc == 0 && !P.positions && !(P.positions = strdup(PT_DEFAULT_POSITIONS)))
        rc = -ENOMEM;
    if (rc == 0) {
        res->yaml = all.b.data;
        res->positions = P.positions;
        res->warnings = P.warnings;
        all.b.data = NULL;
        P.positions = NULL;
    } else if (rc == -ENOMEM && !err[0]) {
        snprintf(err, errlen, "%s: out of memory", name);
    }
    lc_buf_free(&all.b);
    lc_buf_free(&P.top.b);
    lc_buf_free(&P.outs.b);
    lc_buf_free(&P.ins.b);
    free(P.positions);
    yaml_document_delete(&P.doc);
    return rc;
}

int lc_promtail_convert_file(const char *path, unsigned flags, FILE *warn,
                             struct lc_promtail_result *res, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    struct pt_buf b = {0};
    char chunk[8192];
    size_t n;
    int rc;

    if (!f) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        put(&b, chunk, n);
    fclose(f);
    if (b.oom) {
        lc_buf_free(&b.b);
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    rc =
        lc_promtail_convert(b.b.data ? b.b.data : "", b.b.len, path, flags, warn, res, err, errlen);
    lc_buf_free(&b.b);
    return rc;
}

void lc_promtail_result_free(struct lc_promtail_result *res)
{
    if (!res)
        return;
    free(res->yaml);
    free(res->positions);
    res->yaml = res->positions = NULL;
}

int lc_promtail_load(const char *path, unsigned flags, struct lc_config **out, char **positions,
                     char *err, size_t errlen)
{
    struct lc_promtail_result r = {0};
    char name[512], *wtext = NULL;
    size_t wlen = 0;
    FILE *warn = open_memstream(&wtext, &wlen); /* warnings go to the agent's log */
    int rc = lc_promtail_convert_file(path, flags, warn, &r, err, errlen);

    if (warn) {
        fclose(warn);
        for (char *save = NULL, *line = wtext ? strtok_r(wtext, "\n", &save) : NULL; line;
             line = strtok_r(NULL, "\n", &save))
            lc_log(LC_LOG_WARN, "promtail", "%s", line);
        free(wtext);
    }
    if (rc)
        return rc;
    snprintf(name, sizeof(name), "%s (converted; see `log_capturer convert`)", path);
    rc = lc_config_load_string(r.yaml, name, out, err, errlen);
    if (rc == 0) {
        char *src = strdup(path);
        if (!src) {
            lc_config_free(*out);
            *out = NULL;
            lc_promtail_result_free(&r);
            return -ENOMEM;
        }
        free((*out)->source);
        (*out)->source = src;
        (*out)->promtail_flags = flags | LC_PT_LOADED;
        (*out)->promtail_positions = r.positions;
        r.positions = NULL;
        if (positions &&
            (!(*out)->promtail_positions || !(*positions = strdup((*out)->promtail_positions)))) {
            lc_config_free(*out);
            *out = NULL;
            lc_promtail_result_free(&r);
            return -ENOMEM;
        }
    }
    lc_promtail_result_free(&r);
    return rc;
}
