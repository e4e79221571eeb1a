/* SPDX-License-Identifier: MIT */
/* dlq_cli.c: `log_capturer dlq list|replay`: read a Loki output's dead-letter queue, re-send it. */
#include "core/clock.h"
#include "core/config.h"
#include "core/labels.h"
#include "core/meta.h"
#include "core/rand.h"
#include "core/redact.h"
#include "output/dlq.h"
#include "output/dlq_cli.h"
#include "output/loki_conf.h"
#include "output/loki_encode.h"
#include "output/retry.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * Replay parses each DLQ line with jansson and copies the entries' lines back
 * into the line's own buffer (a decoded string is never longer than its JSON
 * form), so they become the arena of a struct lc_batch; the label pairs point
 * into the parsed document. The batch then goes through the output's own
 * timestamp policy and encoder and is POSTed with one blocking easy handle
 * (keep-alive across lines). 2xx removes the line; a 4xx keeps it (still
 * rejected: look at it); 429, 5xx and transport errors are retried a few
 * times with backoff, then the replay stops and keeps the rest.
 */

#define REPLAY_TRIES     5
#define REPLAY_MAX_PAIRS 64
#define REPLAY_SHOW_ERRS 5

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
    struct lc_loki_answer resp;
    char errbuf[CURL_ERROR_SIZE];
    bool tty;
    struct lc_dlq_cli_result *res;
    json_t *doc;                         /* the DLQ line being replayed: its labels point into it */
    struct lc_loki_tenant_header tenant; /* the line's X-Scope-OrgID */
};

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

static bool parse_labels(struct replay *r, json_t *obj, uint32_t set)
{
    const char *key;
    json_t *v;

    if (!json_is_object(obj) || json_object_size(obj) > REPLAY_MAX_PAIRS)
        return false;
    r->set_pairs[set] = r->npairs;
    json_object_foreach(obj, key, v)
    {
        if (!json_is_string(v))
            return false;
        if (r->npairs == r->pairs_cap) {
            uint32_t cap = r->pairs_cap ? r->pairs_cap * 2 : 64;
            struct lc_kv *np = realloc(r->pairs, cap * sizeof(*np));
            if (!np)
                return false;
            r->pairs = np;
            r->pairs_cap = cap;
        }
        /* lc_kv's strings are not const, but the batch only reads them */
        r->pairs[r->npairs].key = (char *)key;
        r->pairs[r->npairs].value = (char *)json_string_value(v);
        r->npairs++;
        r->sets[set].n++;
    }
    return true;
}

/*
 * An entry's structured metadata object {"name":"value",..}, written as a
 * metadata block (core/meta.h) to arena + *used: a pair's block form (4 bytes
 * + name + value) is never longer than its JSON (at least 6 bytes + name +
 * value), so the block fits where the text was too.
 */
static bool parse_meta(json_t *obj, struct lc_record *rec, char *arena, size_t *used)
{
    const char *k;
    json_t *v;
    size_t start = *used;

    if (!json_is_object(obj))
        return false;
    json_object_foreach(obj, k, v)
    {
        size_t kn = strlen(k), vn = json_string_length(v);
        if (!json_is_string(v) || kn > 0xffff || vn > 0xffff)
            return false;
        *used += lc_meta_put(arena + *used, k, kn, json_string_value(v), vn);
    }
    rec->meta_off = (uint32_t)start;
    rec->meta_len = (uint32_t)(*used - start);
    return true;
}

/*
 * The entries [["<ns>","<line>"(,{metadata})],..] of one stream: each line is
 * copied to arena + *used (the DLQ line's own buffer: a decoded string is
 * never longer than its JSON form, so the lines fit where the text was).
 */
static bool parse_entries(struct replay *r, json_t *arr, uint32_t set, char *arena, size_t *used)
{
    size_t i;
    json_t *e;

    if (!json_is_array(arr))
        return false;
    json_array_foreach(arr, i, e)
    {
        json_t *jts = json_array_get(e, 0), *jline = json_array_get(e, 1);
        const char *ts = json_string_value(jts);
        size_t ln = json_string_length(jline);
        size_t ne = json_array_size(e);
        char *end;

        if ((ne != 2 && ne != 3) || !ts || !json_is_string(jline))
            return false;
        errno = 0;
        long long ns = strtoll(ts, &end, 10);
        if (errno || end == ts || *end)
            return false;
        if (r->nrecs == r->recs_cap && grow_recs(r) < 0)
            return false;
        struct lc_record *rec = &r->recs[r->nrecs];
        rec->ts_ns = ns;
        rec->labels = NULL;
        rec->line_off = (uint32_t)*used;
        rec->line_len = (uint32_t)ln;
        rec->meta_off = 0;
        rec->meta_len = 0;
        memcpy(arena + *used, json_string_value(jline), ln);
        *used += ln;
        if (ne == 3 && !parse_meta(json_array_get(e, 2), rec, arena, used))
            return false;
        r->gids[r->nrecs++] = set;
    }
    return true;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const struct lc_kv *)a)->key, ((const struct lc_kv *)b)->key);
}

/*
 * Parses a DLQ line (jansson) into r's records and label sets: the lines are
 * copied to the start of `line` (the batch's arena; *arena_len gets their
 * total), the labels point into r->doc, which lives until the next line.
 * Invalid UTF-8 (a Loki answer cut in a character, in "body") becomes '?'
 * first, as the encoder would send it: jansson takes UTF-8 only.
 */
static bool parse_line(struct replay *r, char *line, size_t len, size_t *arena_len)
{
    json_t *streams, *st;
    size_t i;

    r->nrecs = r->nsets = r->npairs = 0;
    *arena_len = 0;
    json_decref(r->doc);
    lc_loki_utf8_repair(line, len);
    r->doc = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
    streams = json_object_get(r->doc, "streams");
    if (!json_is_array(streams))
        return false;
    json_array_foreach(streams, i, st)
    {
        int set = new_set(r);
        if (set < 0 || !json_is_object(st))
            return false;
        if (!parse_labels(r, json_object_get(st, "labels"), (uint32_t)set))
            return false;
        json_t *entries = json_object_get(st, "entries");
        if (entries && !parse_entries(r, entries, (uint32_t)set, line, arena_len))
            return false;
    }
    for (uint32_t s = 0; s < r->nsets; s++) {
        struct lc_labels *l = &r->sets[s];
        if (l->n == 0)
            return false; /* Loki needs at least one label */
        l->pairs = &r->pairs[r->set_pairs[s]];
        qsort(l->pairs, l->n, sizeof(*l->pairs), cmp_kv);
        l->refs = 1;
    }
    for (uint32_t k = 0; k < r->nrecs; k++)
        r->recs[k].labels = &r->sets[r->gids[k]];
    return true;
}

/* ---- sending ---------------------------------------------------------------- */

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
    struct lc_dlq_cli_result *res = r->res;
    char *line = (char *)cline; /* lc_dlq_replay hands us a modifiable copy */
    struct lc_loki_ts_counts tc = {0};
    struct lc_batch b = {0};
    size_t used;

    if (!parse_line(r, line, len, &used)) {
        res->bad++;
        return LC_DLQ_KEEP;
    }
    /* the batch's tenant, as the agent would have pushed it (absent: the output's) */
    json_t *jt = json_object_get(r->doc, "tenant");
    const char *tenant = json_string_value(jt);
    if (jt && (!tenant || !lc_tenant_valid(tenant, strlen(tenant)))) {
        res->bad++;
        return LC_DLQ_KEEP;
    }
    b.arena = line;
    b.used = (uint32_t)used;
    b.arena_cap = (uint32_t)len;
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
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER,
                     lc_loki_conf_headers_for(&r->http, &r->tenant, tenant));
    for (uint32_t attempt = 1;; attempt++) {
        long status = 0;
        r->resp.len = 0;
        r->errbuf[0] = '\0';
        r->resp.text[0] = '\0';
        CURLcode cr = curl_easy_perform(r->easy);
        if (cr == CURLE_OK)
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        enum lc_send_result sr = lc_loki_conf_push_result(cr, status);
        if (sr == LC_SEND_OK) {
            res->sent++;
            res->entries += b.n;
            return LC_DLQ_REMOVE;
        }
        char shown[CURL_ERROR_SIZE * 2];
        lc_redact_text(r->resp.text, r->resp.len < 200 ? r->resp.len : 200, shown, sizeof(shown));
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
                        lc_loki_conf_tls_hint(cr, r->conf));
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

int lc_dlq_cli_replay(const struct lc_loki_conf *c, const struct lc_kvlist *labels,
                      const char *name, const char *dir, struct lc_dlq_cli_result *res)
{
    struct replay r = {.conf = c, .name = name, .res = res};
    struct lc_dlq_replay_stats st;
    char err[512];
    int rc;

    memset(res, 0, sizeof(*res));
    r.tty = isatty(STDERR_FILENO) == 1;
    r.tsp = lc_loki_conf_ts_policy(c);
    r.rconf = (struct lc_retry_conf){.initial_ms = c->retry.initial_ms,
                                     .max_ms = c->retry.max_ms < 10000 ? c->retry.max_ms : 10000};
    if (r.rconf.initial_ms > r.rconf.max_ms)
        r.rconf.initial_ms = r.rconf.max_ms;
    lc_buf_init(&r.body, (size_t)1 << 30);
    rc = lc_loki_conf_encoder(&r.enc, c, labels, (size_t)1 << 30);
    if (rc < 0)
        goto out;
    rc = lc_loki_conf_http_init(&r.http, c, r.enc, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "dlq replay %s: %s\n", name, err);
        goto out;
    }
    r.easy = curl_easy_init();
    if (!r.easy) {
        rc = -ENOMEM;
        goto out;
    }
    rc = lc_loki_conf_easy_setup(r.easy, &r.http, c);
    curl_easy_setopt(r.easy, CURLOPT_WRITEFUNCTION, lc_loki_answer_write);
    curl_easy_setopt(r.easy, CURLOPT_WRITEDATA, &r.resp);
    curl_easy_setopt(r.easy, CURLOPT_ERRORBUFFER, r.errbuf);
    lc_loki_conf_forget_secrets(&r.http);
    lc_loki_conf_warn_insecure(c, name);
    if (rc < 0)
        goto out;
    rc = lc_dlq_replay(dir, replay_line, &r, progress, &st);
    clear_progress(&r);
    res->kept = st.kept;
    res->torn = st.torn;
    res->segments = st.segments;

out:
    if (r.easy)
        curl_easy_cleanup(r.easy);
    lc_loki_conf_http_free(&r.http);
    lc_loki_enc_free(r.enc);
    lc_buf_free(&r.body);
    free(r.recs);
    free(r.gids);
    free(r.sets);
    free(r.set_pairs);
    free(r.pairs);
    json_decref(r.doc);
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
        /* a Loki output: its options struct is a struct lc_loki_conf */
        if (oc->plugin->options != lc_loki_conf_options || (only && strcmp(only, oc->name) != 0))
            continue;
        found++;
        lc_loki_conf_dlq_dir(oc->conf, cfg->state_dir, oc->name, dir, sizeof(dir));
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
        struct lc_dlq_cli_result res;
        rc = lc_dlq_cli_replay(oc->conf, &oc->labels, oc->name, dir, &res);
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
        if (res.torn)
            printf("output %s: removed %" PRIu64 " torn line(s) a crash left mid-write (never "
                   "acknowledged: the agent read those batches again)\n",
                   oc->name, res.torn);
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
