/* SPDX-License-Identifier: MIT */
/* dlq_cli.c: `log_capturer dlq list|replay`: read a Loki output's dead-letter queue, re-send it. */
#include "core/agent.h"
#include "core/config.h"
#include "core/labels.h"
#include "core/meta.h"
#include "core/rand.h"
#include "core/redact.h"
#include "output/dlq.h"
#include "output/loki.h"
#include "output/retry.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * Replay reads each DLQ line in place: strings are unescaped inside the line
 * buffer (an escape is never shorter than what it stands for), so the lines
 * of a batch become the arena of a struct lc_batch and the label pairs point
 * into the same buffer. The batch then goes through the output's own
 * timestamp policy and encoder and is POSTed with one blocking easy handle
 * (keep-alive across lines). 2xx removes the line; a 4xx keeps it (still
 * rejected: look at it); 429, 5xx and transport errors are retried a few
 * times with backoff, then the replay stops and keeps the rest.
 */

#define REPLAY_TRIES     5
#define REPLAY_MAX_PAIRS 64
#define REPLAY_SHOW_ERRS 5
#define REPLAY_MAX_DEPTH 32

struct replay {
    const struct lc_loki_conf *conf;
    const char *name;
    struct lc_loki_enc *enc;
    struct lc_loki_http http;
    CURL *easy;
    struct lc_buf body;
    struct lc_loki_ts_policy tsp;
    struct lc_retry_conf rconf;
    struct lc_record *recs;
    uint32_t *gids;
    uint32_t nrecs, recs_cap;
    struct lc_labels *sets;
    uint32_t *set_pairs; /* first pair of each set in pairs[] */
    uint32_t nsets, sets_cap;
    struct lc_kv *pairs;
    uint32_t npairs, pairs_cap;
    char resp[512];
    size_t resp_len;
    char errbuf[CURL_ERROR_SIZE];
    bool tty;
    struct lc_loki_replay_result *res;
};

/* ---- a JSON reader for our own DLQ lines -------------------------------- */

struct jp {
    char *p;
    char *end;
    int depth;
};

static void jws(struct jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n'))
        j->p++;
}

static bool jlit(struct jp *j, char c)
{
    jws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return true;
    }
    return false;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool hex4(const char *p, const char *end, uint32_t *out)
{
    uint32_t v = 0;

    if (end - p < 4)
        return false;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return false;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return true;
}

static char *put_utf8(char *w, uint32_t cp)
{
    if (cp < 0x80) {
        *w++ = (char)cp;
    } else if (cp < 0x800) {
        *w++ = (char)(0xc0 | cp >> 6);
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *w++ = (char)(0xe0 | cp >> 12);
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *w++ = (char)(0xf0 | cp >> 18);
        *w++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    }
    return w;
}

/* A string, unescaped in place and NUL-terminated; the result is in *s and *n. */
static bool jstr(struct jp *j, char **s, size_t *n)
{
    char *w;

    jws(j);
    if (j->p >= j->end || *j->p != '"')
        return false;
    w = *s = ++j->p;
    while (j->p < j->end) {
        char c = *j->p++;
        if (c == '"') {
            *w = '\0'; /* w <= the closing quote, already read */
            *n = (size_t)(w - *s);
            return true;
        }
        if (c != '\\') {
            *w++ = c;
            continue;
        }
        if (j->p >= j->end)
            return false;
        c = *j->p++;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            *w++ = c;
            break;
        case 'b':
            *w++ = '\b';
            break;
        case 'f':
            *w++ = '\f';
            break;
        case 'n':
            *w++ = '\n';
            break;
        case 'r':
            *w++ = '\r';
            break;
        case 't':
            *w++ = '\t';
            break;
        case 'u': {
            uint32_t cp, lo;
            if (!hex4(j->p, j->end, &cp))
                return false;
            j->p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' &&
                j->p[1] == 'u' && hex4(j->p + 2, j->end, &lo) && lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                j->p += 6;
            } else if (cp >= 0xd800 && cp < 0xe000) {
                cp = 0xfffd;
            }
            w = put_utf8(w, cp);
            break;
        }
        default:
            return false;
        }
    }
    return false;
}

static bool jskip(struct jp *j);

static bool jskip_container(struct jp *j, char close)
{
    if (++j->depth > REPLAY_MAX_DEPTH)
        return false;
    if (jlit(j, close)) {
        j->depth--;
        return true;
    }
    do {
        if (close == '}') {
            char *k;
            size_t kn;
            if (!jstr(j, &k, &kn) || !jlit(j, ':'))
                return false;
        }
        if (!jskip(j))
            return false;
    } while (jlit(j, ','));
    j->depth--;
    return jlit(j, close);
}

/* Skips any value. */
static bool jskip(struct jp *j)
{
    char *s;
    size_t n;

    jws(j);
    if (j->p >= j->end)
        return false;
    switch (*j->p) {
    case '"':
        return jstr(j, &s, &n);
    case '{':
        j->p++;
        return jskip_container(j, '}');
    case '[':
        j->p++;
        return jskip_container(j, ']');
    default:
        /* numbers, true, false, null */
        while (j->p < j->end && *j->p != ',' && *j->p != '}' && *j->p != ']' && *j->p != ' ')
            j->p++;
        return true;
    }
}

/* ---- a DLQ line to a batch ------------------------------------------------ */

static int grow_recs(struct replay *r)
{
    uint32_t cap = r->recs_cap ? r->recs_cap * 2 : 1024;
    struct lc_record *nr = realloc(r->recs, cap * sizeof(*nr));
    if (!nr)
        return -ENOMEM;
    r->recs = nr;
    uint32_t *ng = realloc(r->gids, cap * sizeof(*ng));
    if (!ng)
        return -ENOMEM;
    r->gids = ng;
    r->recs_cap = cap;
    return 0;
}

static int new_set(struct replay *r)
{
    if (r->nsets == r->sets_cap) {
        uint32_t cap = r->sets_cap ? r->sets_cap * 2 : 16;
        struct lc_labels *ns = realloc(r->sets, cap * sizeof(*ns));
        if (!ns)
            return -ENOMEM;
        r->sets = ns;
        uint32_t *np = realloc(r->set_pairs, cap * sizeof(*np));
        if (!np)
            return -ENOMEM;
        r->set_pairs = np;
        r->sets_cap = cap;
    }
    memset(&r->sets[r->nsets], 0, sizeof(r->sets[0]));
    r->set_pairs[r->nsets] = r->npairs;
    return (int)r->nsets++;
}

static bool parse_labels(struct replay *r, struct jp *j, uint32_t set)
{
    if (!jlit(j, '{'))
        return false;
    if (r->sets[set].n) /* labels given twice */
        return false;
    r->set_pairs[set] = r->npairs;
    if (jlit(j, '}'))
        return true;
    do {
        char *k, *v;
        size_t kn, vn;
        if (r->sets[set].n == REPLAY_MAX_PAIRS)
            return false;
        if (r->npairs == r->pairs_cap) {
            uint32_t cap = r->pairs_cap ? r->pairs_cap * 2 : 64;
            struct lc_kv *np = realloc(r->pairs, cap * sizeof(*np));
            if (!np)
                return false;
            r->pairs = np;
            r->pairs_cap = cap;
        }
        if (!jstr(j, &k, &kn) || !jlit(j, ':') || !jstr(j, &v, &vn))
            return false;
        r->pairs[r->npairs].key = k;
        r->pairs[r->npairs].value = v;
        r->npairs++;
        r->sets[set].n++;
    } while (jlit(j, ','));
    return jlit(j, '}');
}

/*
 * An entry's structured metadata object {"name":"value",..}, turned in place
 * into a metadata block (core/meta.h) that starts where the object did: a
 * pair's block form (4 bytes + name + value) is never longer than its JSON
 * (at least 6 bytes + name + value), so the writes stay behind the reads.
 */
static bool parse_meta(struct jp *j, const char *base, struct lc_record *rec)
{
    char *w, *start;

    jws(j);
    start = w = j->p;
    if (!jlit(j, '{'))
        return false;
    if (!jlit(j, '}')) {
        do {
            char *k, *v;
            size_t kn, vn;
            if (!jstr(j, &k, &kn) || !jlit(j, ':') || !jstr(j, &v, &vn) || kn > 0xffff ||
                vn > 0xffff)
                return false;
            memmove(w + LC_META_HDR, k, kn); /* k is at w + 2 or later, v after it */
            w += lc_meta_put(w, w + LC_META_HDR, kn, v, vn);
        } while (jlit(j, ','));
        if (!jlit(j, '}'))
            return false;
    }
    rec->meta_off = (uint32_t)(start - base);
    rec->meta_len = (uint32_t)(w - start);
    return true;
}

static bool parse_entries(struct replay *r, struct jp *j, uint32_t set, const char *base)
{
    if (!jlit(j, '['))
        return false;
    if (jlit(j, ']'))
        return true;
    do {
        char *ts, *line, *e;
        size_t tn, ln;
        struct lc_record meta = {0};
        if (!jlit(j, '[') || !jstr(j, &ts, &tn) || !jlit(j, ',') || !jstr(j, &line, &ln))
            return false;
        if (jlit(j, ',') && !parse_meta(j, base, &meta))
            return false;
        if (!jlit(j, ']'))
            return false;
        errno = 0;
        long long ns = strtoll(ts, &e, 10);
        if (errno || e == ts || *e)
            return false;
        if (r->nrecs == r->recs_cap && grow_recs(r) < 0)
            return false;
        struct lc_record *rec = &r->recs[r->nrecs];
        rec->ts_ns = ns;
        rec->labels = NULL;
        rec->line_off = (uint32_t)(line - base);
        rec->line_len = (uint32_t)ln;
        rec->meta_off = meta.meta_off;
        rec->meta_len = meta.meta_len;
        r->gids[r->nrecs++] = set;
    } while (jlit(j, ','));
    return jlit(j, ']');
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const struct lc_kv *)a)->key, ((const struct lc_kv *)b)->key);
}

/* Parses a DLQ line into r's records and label sets. */
static bool parse_line(struct replay *r, char *line, size_t len)
{
    struct jp j = {.p = line, .end = line + len};
    bool streams = false;

    r->nrecs = r->nsets = r->npairs = 0;
    if (!jlit(&j, '{'))
        return false;
    do {
        char *key;
        size_t kn;
        if (!jstr(&j, &key, &kn) || !jlit(&j, ':'))
            return false;
        if (strcmp(key, "streams") != 0) {
            if (!jskip(&j))
                return false;
            continue;
        }
        streams = true;
        if (!jlit(&j, '['))
            return false;
        if (jlit(&j, ']'))
            continue;
        do {
            int set = new_set(r);
            if (set < 0 || !jlit(&j, '{'))
                return false;
            do {
                char *sk;
                size_t skn;
                if (!jstr(&j, &sk, &skn) || !jlit(&j, ':'))
                    return false;
                bool ok = strcmp(sk, "labels") == 0    ? parse_labels(r, &j, (uint32_t)set)
                          : strcmp(sk, "entries") == 0 ? parse_entries(r, &j, (uint32_t)set, line)
                                                       : jskip(&j);
                if (!ok)
                    return false;
            } while (jlit(&j, ','));
            if (!jlit(&j, '}'))
                return false;
        } while (jlit(&j, ','));
        if (!jlit(&j, ']'))
            return false;
    } while (jlit(&j, ','));
    if (!jlit(&j, '}') || !streams)
        return false;
    for (uint32_t s = 0; s < r->nsets; s++) {
        struct lc_labels *l = &r->sets[s];
        if (l->n == 0)
            return false; /* Loki needs at least one label */
        l->pairs = &r->pairs[r->set_pairs[s]];
        qsort(l->pairs, l->n, sizeof(*l->pairs), cmp_kv);
        l->refs = 1;
    }
    for (uint32_t i = 0; i < r->nrecs; i++)
        r->recs[i].labels = &r->sets[r->gids[i]];
    return true;
}

/* ---- sending ---------------------------------------------------------------- */

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    struct replay *r = arg;
    size_t len = sz * n;
    size_t room = sizeof(r->resp) - 1 - r->resp_len;
    size_t k = len < room ? len : room;

    memcpy(r->resp + r->resp_len, p, k);
    r->resp_len += k;
    r->resp[r->resp_len] = '\0';
    return len;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void clear_progress(struct replay *r)
{
    if (r->tty)
        fputs("\r\033[K", stderr);
}

static enum lc_dlq_verdict replay_line(const char *cline, size_t len, void *arg)
{
    struct replay *r = arg;
    struct lc_loki_replay_result *res = r->res;
    char *line = (char *)cline; /* lc_dlq_replay hands us a modifiable copy */
    struct lc_loki_ts_counts tc = {0};
    struct lc_batch b = {0};

    if (!parse_line(r, line, len)) {
        res->bad++;
        return LC_DLQ_KEEP;
    }
    b.arena = line;
    b.used = b.arena_cap = (uint32_t)len;
    b.recs = r->recs;
    b.n = r->nrecs;
    b.recs_cap = r->recs_cap;
    lc_loki_validate(&r->tsp, &b, lc_now_ns(), &tc);
    res->dropped_old += tc.old_dropped;
    if (b.n == 0) {
        res->dropped_batches++;
        return LC_DLQ_REMOVE;
    }
    int rc = lc_loki_encode(r->enc, &b, &r->body, NULL);
    if (rc < 0) {
        res->bad++;
        return LC_DLQ_KEEP;
    }
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body.data);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
    for (uint32_t attempt = 1;; attempt++) {
        long status = 0;
        r->resp_len = 0;
        r->errbuf[0] = '\0';
        r->resp[0] = '\0';
        CURLcode cr = curl_easy_perform(r->easy);
        if (cr == CURLE_OK)
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        enum lc_send_result sr = lc_loki_push_result(cr, status);
        if (sr == LC_SEND_OK) {
            res->sent++;
            res->entries += b.n;
            return LC_DLQ_REMOVE;
        }
        char shown[CURL_ERROR_SIZE * 2];
        lc_redact_text(r->resp, r->resp_len < 200 ? r->resp_len : 200, shown, sizeof(shown));
        if (sr == LC_SEND_AUTH) {
            /* bad credentials fail every batch alike: keep them all, stop now */
            clear_progress(r);
            fprintf(stderr, "dlq replay %s: stopping: authentication failed (%ld): %s\n", r->name,
                    status, shown);
            res->stopped = true;
            return LC_DLQ_STOP;
        }
        if (sr == LC_SEND_REJECT) {
            res->rejected++;
            if (res->rejected <= REPLAY_SHOW_ERRS) {
                clear_progress(r);
                fprintf(stderr, "dlq replay %s: kept a batch Loki rejects again (%ld): %s\n",
                        r->name, status, shown);
            }
            return LC_DLQ_KEEP;
        }
        if (attempt == REPLAY_TRIES) {
            clear_progress(r);
            if (cr != CURLE_OK) {
                char msg[CURL_ERROR_SIZE * 2];
                lc_redact_url(r->errbuf[0] ? r->errbuf : curl_easy_strerror(cr), msg, sizeof(msg));
                fprintf(stderr, "dlq replay %s: stopping: %s%s\n", r->name, msg,
                        lc_loki_tls_hint(cr, r->conf));
            } else {
                fprintf(stderr, "dlq replay %s: stopping: Loki answers %ld: %s\n", r->name, status,
                        shown);
            }
            res->stopped = true;
            return LC_DLQ_STOP;
        }
        sleep_ms(lc_retry_backoff_ms(&r->rconf, attempt, lc_rand_u64()));
    }
}

static void progress(const struct lc_dlq_replay_stats *st, void *arg)
{
    struct replay *r = arg;

    if (!r->tty)
        return;
    fprintf(stderr,
            "\r\033[Kdlq replay %s: segment %u/%u, %" PRIu64 " batches sent, %" PRIu64 " kept",
            r->name, st->segments_done + 1, st->segments, r->res->sent, st->kept);
    fflush(stderr);
}

int lc_loki_replay_dir(const struct lc_loki_conf *c, const struct lc_kvlist *labels,
                       const char *name, const char *dir, struct lc_loki_replay_result *res)
{
    struct replay r = {.conf = c, .name = name, .res = res};
    struct lc_dlq_replay_stats st;
    char err[512];
    int rc;

    memset(res, 0, sizeof(*res));
    r.tty = isatty(STDERR_FILENO) == 1;
    r.tsp = lc_loki_ts_policy_of(c);
    r.rconf = (struct lc_retry_conf){.initial_ms = c->retry.initial_ms,
                                     .max_ms = c->retry.max_ms < 10000 ? c->retry.max_ms : 10000};
    if (r.rconf.initial_ms > r.rconf.max_ms)
        r.rconf.initial_ms = r.rconf.max_ms;
    lc_buf_init(&r.body, (size_t)1 << 30);
    rc = lc_loki_enc_from_conf(&r.enc, c, labels, (size_t)1 << 30);
    if (rc < 0)
        goto out;
    rc = lc_loki_http_init(&r.http, c, r.enc, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "dlq replay %s: %s\n", name, err);
        goto out;
    }
    r.easy = curl_easy_init();
    if (!r.easy) {
        rc = -ENOMEM;
        goto out;
    }
    rc = lc_loki_easy_setup(r.easy, &r.http, c);
    curl_easy_setopt(r.easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(r.easy, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(r.easy, CURLOPT_ERRORBUFFER, r.errbuf);
    lc_loki_http_forget_secrets(&r.http);
    lc_loki_warn_insecure(c, name);
    if (rc < 0)
        goto out;
    rc = lc_dlq_replay(dir, replay_line, &r, progress, &st);
    clear_progress(&r);
    res->kept = st.kept + st.bad;
    res->segments = st.segments;

out:
    if (r.easy)
        curl_easy_cleanup(r.easy);
    lc_loki_http_free(&r.http);
    lc_loki_enc_free(r.enc);
    lc_buf_free(&r.body);
    free(r.recs);
    free(r.gids);
    free(r.sets);
    free(r.set_pairs);
    free(r.pairs);
    return rc;
}

/* ---- the command ------------------------------------------------------------ */

static void usage(FILE *f)
{
    fputs("usage: log_capturer dlq list [-c FILE] [--output NAME]\n"
          "       log_capturer dlq replay [-c FILE] [--output NAME]\n"
          "list shows each Loki output's dead-letter segments; replay re-sends them and\n"
          "removes what Loki accepted.\n",
          f);
}

int lc_dlq_cli(int argc, char **argv)
{
    const char *cfile = NULL, *only = NULL, *cmd = NULL;
    struct lc_config *cfg = NULL;
    char err[1024], dir[4096];
    int found = 0, status = 0, rc;

    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            cfile = argv[++i];
        } else if (strcmp(argv[i], "--output") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (!cmd && (strcmp(argv[i], "list") == 0 || strcmp(argv[i], "replay") == 0)) {
            cmd = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!cmd) {
        usage(stderr);
        return 2;
    }
    if (cfile)
        rc = lc_config_load_file(cfile, &cfg, err, sizeof(err));
    else
        rc = lc_config_load_string(lc_config_embedded, "<embedded>", &cfg, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (size_t i = 0; i < cfg->noutputs; i++) {
        const struct lc_output_conf *oc = &cfg->outputs[i];
        if (oc->plugin != &lc_output_loki || (only && strcmp(only, oc->name) != 0))
            continue;
        found++;
        lc_loki_dlq_dir(oc->conf, cfg->state_dir, oc->name, dir, sizeof(dir));
        if (strcmp(cmd, "list") == 0) {
            printf("output %s: %s\n", oc->name, dir);
            rc = lc_dlq_list(dir, stdout);
            if (rc == -ENOENT) {
                printf("  (empty)\n");
            } else if (rc < 0) {
                fprintf(stderr, "dlq list %s: %s\n", oc->name, strerror(-rc));
                status = 1;
            }
            continue;
        }
        struct lc_loki_replay_result res;
        rc = lc_loki_replay_dir(oc->conf, &oc->labels, oc->name, dir, &res);
        if (rc == -ENOENT) {
            printf("output %s: nothing to replay\n", oc->name);
            continue;
        }
        if (rc < 0) {
            fprintf(stderr, "dlq replay %s: %s\n", oc->name, strerror(-rc));
            status = 1;
            continue;
        }
        printf("output %s: %" PRIu64 " batches (%" PRIu64 " entries) delivered, %" PRIu64
               " dropped as too old, %" PRIu64 " kept (%" PRIu64 " rejected again, %" PRIu64
               " unreadable)%s\n",
               oc->name, res.sent, res.entries, res.dropped_batches, res.kept, res.rejected,
               res.bad, res.stopped ? "; stopped: Loki unavailable" : "");
        if (res.kept || res.stopped)
            status = 1;
    }
    if (!found) {
        fprintf(stderr, "no loki output%s%s in %s\n", only ? " named " : "", only ? only : "",
                cfg->source);
        status = 2;
    }
    curl_global_cleanup();
    lc_config_free(cfg);
    return status;
}
