/* SPDX-License-Identifier: MIT */
/* docker.c: the `docker` input: options, filters, labels, the events connection; two modes. */
#include "input/docker.h"
#include "input/docker_api.h"
#include "input/docker_file.h"

#include "core/http.h"
#include "core/labels.h"
#include "core/log.h"
#include "core/losses.h"
#include "core/rand.h"

#include <errno.h>
#include <fnmatch.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Both modes share one Docker Engine API client (docker_client.c, when the
 * socket answers): short requests (version, list, inspect) on its pooled
 * keep-alive connections, one followed /events stream that drives discovery,
 * and the metadata cache. Mode api follows /containers/{id}/logs per container
 * (docker_api.c); mode file tails Docker's json-file logs (docker_file.c),
 * and works without the socket too (metadata from config.v2.json, discovery by
 * rescans). If the events stream ends (daemon restarted), we reconnect with
 * exponential backoff and the mode re-lists, so no container is missed.
 *
 * This file holds what both modes share and calls the mode only through its
 * table (struct lc_docker_mode_ops, docker.h), picked once at init; each mode
 * file defines its table and keeps its own state behind d->mode. Adding a mode
 * is a new file, a table, and a line in modes[] and mode_choices.
 */

#define DCFG(f) offsetof(struct lc_docker_conf, f)
#define FCFG(f) offsetof(struct lc_docker_filter, f)

static const char *const mode_choices[] = {"api", "file", NULL};
/* indexed like mode_choices (enum lc_docker_mode) */
static const struct lc_docker_mode_ops *const modes[] = {
    [LC_DOCKER_MODE_API] = &lc_docker_mode_api,
    [LC_DOCKER_MODE_FILE] = &lc_docker_mode_file,
};
static const char *const start_choices[] = {"end", "beginning", NULL};

static const struct lc_option filter_options[] = {
    {LC_OPT_STRLIST, "names", NULL, FCFG(names), .help = "Globs on container names."},
    {LC_OPT_STRLIST, "labels", NULL, FCFG(labels),
     .help = "\"key\" or \"key=value\" globs on container labels."},
    {LC_OPT_STRLIST, "images", NULL, FCFG(images), .help = "Globs on the image name."},
    LC_OPT_END,
};

static const struct lc_option docker_options[] = {
    {LC_OPT_ENUM, "mode", "api", DCFG(mode), .choices = mode_choices,
     .help = "api: follow the Engine API's log streams; file: tail the json-file logs."},
    {LC_OPT_STR, "socket", "/var/run/docker.sock", DCFG(socket),
     .help = "The Docker Engine API socket (only GET requests are ever sent)."},
    {LC_OPT_STR, "root", "/var/lib/docker", DCFG(root),
     .help = "Docker's data root (file mode): containers/<id>/<id>-json.log."},
    {LC_OPT_SECTION, "include", NULL, DCFG(include), .sub = filter_options,
     .help = "Only containers matching every non-empty list (empty: all)."},
    {LC_OPT_SECTION, "exclude", NULL, DCFG(exclude), .sub = filter_options,
     .help = "Leave out containers matching any entry."},
    {LC_OPT_STRLIST, "labels_allowlist", NULL, DCFG(labels_allowlist),
     .help = "Container labels (globs on keys) to attach as Loki labels, names sanitised."},
    LC_RELABEL_OPTION(DCFG(relabel), "container"),
    {LC_OPT_DURATION, "metadata_ttl", "60s", DCFG(metadata_ttl_ms), 1000, 86400000,
     .help = "How long container metadata is cached."},
    {LC_OPT_INT, "metadata_max", "1024", DCFG(metadata_max), 16, 1000000,
     .help = "Most containers in the metadata cache (oldest evicted)."},
    {LC_OPT_INT, "max_containers", "500", DCFG(max_containers), 1, 100000,
     .help = "Most containers followed at once; more are skipped and counted."},
    {LC_OPT_ENUM, "start_at", "end", DCFG(start_at), .choices = start_choices,
     .help = "A container met for the first time: from now, or from its first line "
             "(limited by max_age)."},
    {LC_OPT_DURATION, "max_age", "1h", DCFG(max_age_ms), 0, 0,
     .help = "With start_at: beginning, skip lines older than this (0: keep all)."},
    {LC_OPT_SIZE, "max_line_bytes", "256KiB", DCFG(max_line_bytes), 1024, 16 << 20,
     .help = "Lines joined from Docker's 16 KiB parts are cut at this size (counted)."},
    {LC_OPT_DURATION, "reconnect_min", "500ms", DCFG(reconnect_min_ms), 10, 3600000,
     .help = "First wait before reconnecting to the daemon (doubles, with jitter)."},
    {LC_OPT_DURATION, "reconnect_max", "30s", DCFG(reconnect_max_ms), 10, 3600000,
     .help = "Longest wait before reconnecting to the daemon."},
    {LC_OPT_DURATION, "stream_stall_timeout", "30s", DCFG(stall_ms), 0, 86400000,
     .help = "Api mode: a stream quiet this long while the container's log file grew is "
             "reopened from its last line (0: never)."},
    {LC_OPT_INT, "max_held_logs", "16", DCFG(max_held_logs), 0, 1024,
     .help = "Api mode: most json-file logs held open (one descriptor each) for containers that "
             "died while their stream was behind, to read what it had not sent once they are "
             "removed; past it a removed container's unread lines are counted as lost."},
    {LC_OPT_SIZE, "read_bytes", "256KiB", DCFG(read_bytes), 4096, 16 << 20,
     .help = "File mode: size of one read."},
    {LC_OPT_DURATION, "rescan_interval", "1s", DCFG(rescan_ms), 10, 3600000,
     .help = "File mode: how often containers/ is scanned for log files."},
    {LC_OPT_DURATION, "poll_interval", "250ms", DCFG(poll_ms), 10, 60000,
     .help = "File mode: how often open logs are checked for growth and rotation."},
    {LC_OPT_DURATION, "rotate_wait", "2s", DCFG(rotate_wait_ms), 0, 3600000,
     .help = "File mode: a rotated log is closed once read to its end and quiet this long."},
    {LC_OPT_INT, "max_rotated_files", "8", DCFG(max_rotated), 1, 1024,
     .help = "File mode: most rotated logs of one container held open until read; a newer "
             "one waits (counted)."},
    {LC_OPT_INT, "max_unacked_reads", "64", DCFG(max_unacked), 2, 65536,
     .help = "Reads per container waiting for delivery: in api mode its stream then pauses; in "
             "file mode further reads join the newest (committed with it)."},
    LC_OPT_END,
};

/* Filters ------------------------------------------------------------------ */

static bool any_glob(const struct lc_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (fnmatch(l->v[i], s ? s : "", 0) == 0)
            return true;
    return false;
}

/* "key" or "key=value" (globs) against all of the entry's labels (not only the allowlisted). */
static bool label_match(const struct lc_strlist *l, const struct lc_docker_meta_entry *e)
{
    for (size_t i = 0; i < l->n; i++) {
        char pat[512];
        snprintf(pat, sizeof(pat), "%s", l->v[i]);
        char *eq = strchr(pat, '=');
        if (eq)
            *eq++ = '\0';
        for (size_t j = 0; j < e->nall_labels; j++)
            if (fnmatch(pat, e->all_labels[j].key, 0) == 0 &&
                (!eq || fnmatch(eq, e->all_labels[j].value, 0) == 0))
                return true;
    }
    return false;
}

bool lc_docker_selected(const struct lc_docker_conf *c, const struct lc_docker_meta_entry *e)
{
    const struct lc_docker_filter *in = &c->include, *ex = &c->exclude;

    if (in->names.n && !any_glob(&in->names, e->name))
        return false;
    if (in->images.n && !any_glob(&in->images, e->image))
        return false;
    if (in->labels.n && !label_match(&in->labels, e))
        return false;
    return !any_glob(&ex->names, e->name) && !any_glob(&ex->images, e->image) &&
           !label_match(&ex->labels, e);
}

/* Logging drivers ---------------------------------------------------------- */

struct lc_docker_unreadable {
    struct lc_docker_unreadable *next;
    char id[LC_DOCKER_CLIENT_ID_MAX + 1];
};

bool lc_docker_driver_readable(int mode, const char *driver, const char **remedy)
{
    if (!driver || !*driver)
        return true; /* unknown (no inspect): try */
    return modes[mode]->readable(driver, remedy);
}

bool lc_docker_is_unreadable(const struct lc_docker_in *d, const char *id)
{
    for (const struct lc_docker_unreadable *u = d->unreadable; u; u = u->next)
        if (strcmp(u->id, id) == 0)
            return true;
    return false;
}

void lc_docker_health(struct lc_docker_in *d)
{
    char detail[160];

    if (!d->daemon_up)
        return; /* the daemon's state is the news */
    if (d->nunreadable == 0) {
        lc_health_set(d->health_key, LC_HEALTH_OK, "connected");
        return;
    }
    snprintf(detail, sizeof(detail),
             "connected; %zu container(s) unreadable in mode %s (logging driver; see the log)",
             d->nunreadable, d->ops->name);
    lc_health_set(d->health_key, LC_HEALTH_DEGRADED, detail);
}

void lc_docker_set_unreadable(struct lc_docker_in *d, const char *id, const char *name,
                              const char *driver, const char *remedy, const char *why)
{
    size_t cap = (size_t)d->c->max_containers * 2;
    struct lc_docker_unreadable *u, **pp;

    if (!lc_docker_client_id_valid(id) || lc_docker_is_unreadable(d, id))
        return;
    lc_counter_inc(d->m_skip[LC_DOCKER_SKIP_LOG_DRIVER]);
    lc_loss(d->in->conf->name,
            "container %s (%.12s): its logging driver \"%s\" cannot be read in mode %s%s%s; "
            "its lines are not shipped: %s",
            name && *name ? name : id, id, driver && *driver ? driver : "?", d->ops->name,
            why ? ": " : "", why ? why : "", remedy);
    u = calloc(1, sizeof(*u));
    if (!u)
        return;
    snprintf(u->id, sizeof(u->id), "%s", id);
    u->next = d->unreadable;
    d->unreadable = u;
    if (++d->nunreadable > cap) { /* forget the oldest */
        for (pp = &d->unreadable; (*pp)->next; pp = &(*pp)->next)
            ;
        free(*pp);
        *pp = NULL;
        d->nunreadable--;
    }
    lc_gauge_set(d->m_unreadable, (int64_t)d->nunreadable);
    lc_docker_health(d);
}

/* The container is gone: so is its note. */
static void unreadable_forget(struct lc_docker_in *d, const char *id)
{
    for (struct lc_docker_unreadable **pp = &d->unreadable; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, id) == 0) {
            struct lc_docker_unreadable *u = *pp;
            *pp = u->next;
            free(u);
            d->nunreadable--;
            lc_gauge_set(d->m_unreadable, (int64_t)d->nunreadable);
            lc_docker_health(d);
            return;
        }
    }
}

static void unreadable_free(struct lc_docker_in *d)
{
    while (d->unreadable) {
        struct lc_docker_unreadable *u = d->unreadable;
        d->unreadable = u->next;
        free(u);
    }
    d->nunreadable = 0;
}

/* Labels ------------------------------------------------------------------- */

/*
 * The input's labels and the discovery labels of e's `stream`, relabelled: 1
 * kept, 0 dropped. *cut is set when the container had more labels than a set holds.
 */
static int relabel(struct lc_docker_in *d, const struct lc_docker_meta_entry *e, const char *stream,
                   struct lc_relabel_set *s, bool *cut)
{
    char k[340], name[300];
    int rc = lc_relabel_begin(s, &d->in->conf->labels);

    snprintf(name, sizeof(name), "/%s", e->name ? e->name : "");
    if (rc == 0)
        rc = lc_relabel_set_put(s, "__meta_docker_container_id", e->id ? e->id : "");
    if (rc == 0)
        rc = lc_relabel_set_put(s, "__meta_docker_container_name", name);
    if (rc == 0)
        rc = lc_relabel_set_put(s, "__meta_docker_container_log_stream", stream);
    for (size_t i = 0; i < e->nall_labels && rc == 0; i++) {
        lc_labels_sanitize_name(e->all_labels[i].key, name, sizeof(name));
        snprintf(k, sizeof(k), "__meta_docker_container_label_%s", name);
        rc = lc_relabel_set_put(s, k, e->all_labels[i].value);
    }
    return lc_relabel_end(d->c->relabel.v, d->c->relabel.n, s, rc, cut);
}

bool lc_docker_relabel_kept(struct lc_docker_in *d, const struct lc_docker_meta_entry *e)
{
    struct lc_relabel_set s;
    bool kept = false, cut = false;

    if (d->c->relabel.n == 0)
        return true;
    for (int k = 0; k < 2 && !kept; k++) {
        kept = relabel(d, e, k ? "stderr" : "stdout", &s, &cut) == 1;
        if (kept)
            lc_relabel_set_free(&s);
    }
    if (cut) /* once per container: this runs when it is attached */
        lc_logf(LC_LOG_WARN, d->in->conf->name, NULL,
                "container %.12s (%s): more than %d discovery labels, the rest are not "
                "relabelled",
                e->id, e->name, LC_RELABEL_MAX_LABELS);
    if (!kept)
        lc_logf(LC_LOG_INFO, d->in->conf->name, NULL,
                "container %.12s (%s): dropped by the relabel rules, not read", e->id, e->name);
    return kept;
}

int lc_docker_labels(struct lc_docker_in *d, const struct lc_docker_meta_entry *e,
                     const char *stream, struct lc_labels **out)
{
    const struct lc_kvlist *stat = &d->in->conf->labels;
    struct lc_kv kv[LC_LABELS_MAX + 8];
    char names[LC_LABELS_MAX][128];
    size_t n = 0;

    if (d->c->relabel.n) {
        struct lc_relabel_set s;
        bool cut = false; /* said by lc_docker_relabel_kept */
        int rc = relabel(d, e, stream, &s, &cut);
        if (rc == 0) /* this stream dropped, the container kept: the other's labels */
            rc = relabel(d, e, strcmp(stream, "stdout") == 0 ? "stderr" : "stdout", &s, &cut);
        if (rc != 1)
            return rc < 0 ? rc : -ENOENT; /* s is freed */
        rc = lc_labels_intern(s.v, s.n, out);
        lc_relabel_set_free(&s);
        return rc;
    }
    for (size_t i = 0; i < stat->n && n < LC_LABELS_MAX; i++)
        kv[n++] = stat->v[i];
    /* allowlisted container labels come before ours, so ours win on a clash */
    for (size_t i = 0; i < e->nlabels && n < LC_LABELS_MAX - 4; i++) {
        lc_labels_sanitize_name(e->labels[i].key, names[i], sizeof(names[i]));
        kv[n].key = names[i];
        kv[n++].value = e->labels[i].value;
    }
    kv[n].key = "container_name";
    kv[n++].value = (char *)e->name;
    if (e->compose_project && *e->compose_project) {
        kv[n].key = "compose_project";
        kv[n++].value = (char *)e->compose_project;
    }
    if (e->compose_service && *e->compose_service) {
        kv[n].key = "compose_service";
        kv[n++].value = (char *)e->compose_service;
    }
    kv[n].key = "stream";
    kv[n++].value = (char *)stream;
    return lc_labels_intern(kv, n, out);
}

void lc_docker_key(const struct lc_docker_in *d, const char *id, char *key, size_t len)
{
    snprintf(key, len, "docker:%s:%s", d->in->conf->name, id);
}

/* The events connection ---------------------------------------------------- */

static void connect_daemon(struct lc_docker_in *d);

static void on_reconnect(uv_timer_t *t)
{
    connect_daemon(t->data);
}

static void schedule_reconnect(struct lc_docker_in *d)
{
    int64_t wait = d->backoff_ms ? d->backoff_ms : d->c->reconnect_min_ms;

    if (d->stopping)
        return;
    d->backoff_ms = wait * 2 > d->c->reconnect_max_ms ? d->c->reconnect_max_ms : wait * 2;
    wait = wait / 2 + (int64_t)(lc_rand_u64() % (uint64_t)(wait / 2 + 1)); /* [wait/2, wait] */
    uv_timer_start(&d->reconnect, on_reconnect, (uint64_t)wait, 0);
}

static void on_event(void *arg, const struct lc_docker_event *ev)
{
    struct lc_docker_in *d = arg;

    lc_docker_meta_on_event(d->meta, ev); /* the client counts events */
    if (strcmp(ev->action, "destroy") == 0)
        unreadable_forget(d, ev->id);
    d->ops->event(d, ev);
}

static void on_events_end(void *arg, const struct lc_docker_client_result *r)
{
    struct lc_docker_in *d = arg;

    d->events = NULL;
    d->daemon_up = false;
    lc_health_set(d->health_key, LC_HEALTH_DEGRADED, "docker events stream ended");
    lc_logf(LC_LOG_WARN, d->in->conf->name, NULL, "docker events stream ended: %s; reconnecting",
            r->message);
    schedule_reconnect(d);
}

static void on_negotiated(void *arg, const struct lc_docker_client_result *r,
                          const struct lc_docker_version *v)
{
    struct lc_docker_in *d = arg;
    int rc;

    if (r->err) {
        lc_health_set(d->health_key, LC_HEALTH_DEGRADED, "docker daemon unreachable");
        lc_logf(LC_LOG_WARN, d->in->conf->name, NULL, "docker daemon at %s: %s", d->c->socket,
                r->message);
        schedule_reconnect(d);
        return;
    }
    rc = lc_docker_client_events(d->client, lc_now_ns(), on_event, on_events_end, d, &d->events);
    if (rc) {
        schedule_reconnect(d);
        return;
    }
    d->daemon_up = true;
    d->backoff_ms = 0;
    lc_docker_health(d);
    lc_logf(LC_LOG_INFO, d->in->conf->name, NULL, "docker engine %s, API %s", v->engine_version,
            v->negotiated);
    /* whatever started while we were away is found by a fresh look */
    d->ops->connected(d);
}

static void connect_daemon(struct lc_docker_in *d)
{
    if (d->stopping || lc_docker_client_negotiate(d->client, on_negotiated, d) != 0)
        schedule_reconnect(d);
}

/* Plugin ------------------------------------------------------------------- */

static const char *const skip_names[] = {"malformed",  "excluded",      "too_old",
                                         "log_driver", "max_held_logs", NULL};
LC_METRIC_VALUES_FIT(struct lc_docker_in, m_skip, skip_names);

/* The series both modes share (each mode registers its own beside them). */
static const struct lc_metric_row docker_series[] = {
    {LC_COUNTER, "log_capturer_docker_skipped_total",
     "Container lines or containers skipped, by reason.", offsetof(struct lc_docker_in, m_skip),
     "reason", skip_names},
    {LC_GAUGE, "log_capturer_docker_unreadable_containers",
     "Containers whose logging driver the mode cannot read (not shipped).",
     offsetof(struct lc_docker_in, m_unreadable)},
};

static int docker_init(struct lc_input *in)
{
    const struct lc_docker_conf *c = in->conf->conf;
    struct lc_docker_client_opts ao = {.socket_path = c->socket,
                                       .name = in->conf->name,
                                       .max_streams = (unsigned)c->max_containers + 1};
    struct lc_docker_meta_opts mo = {.ttl_ms = c->metadata_ttl_ms,
                                     .max_entries = (size_t)c->metadata_max,
                                     .labels_allowlist = (const char *const *)c->labels_allowlist.v,
                                     .nallow = c->labels_allowlist.n,
                                     .name = in->conf->name};
    struct lc_docker_in *d = calloc(1, sizeof(*d));

    if (!d)
        return -ENOMEM;
    in->ctx = d;
    d->in = in;
    snprintf(d->health_key, sizeof(d->health_key), "docker/%s", in->conf->name);
    d->c = c;
    d->ops = modes[c->mode];
    if (c->max_line_bytes > in->agent->cfg->batch_bytes) {
        lc_log(LC_LOG_ERROR, in->conf->name, "max_line_bytes must not exceed batch_bytes");
        return -EINVAL;
    }
    d->client = lc_docker_client_new(in->agent->loop, &ao);
    d->meta = d->client ? lc_docker_meta_new(d->client, &mo) : NULL;
    if (!d->client || !d->meta)
        return -ENOMEM;
    uv_timer_init(in->agent->loop, &d->reconnect);
    d->reconnect.data = d;
    lc_metric_register_rows(d, docker_series, LC_METRIC_ROWS(docker_series), "input",
                            in->conf->name);
    lc_gauge_set(d->m_unreadable, 0);
    return d->ops->init(d);
}

static int docker_start(struct lc_input *in)
{
    struct lc_docker_in *d = in->ctx;
    int rc = d->ops->start(d);

    if (rc == 0)
        connect_daemon(d);
    return rc;
}

static void docker_pause(struct lc_input *in)
{
    struct lc_docker_in *d = in->ctx;

    d->ops->pause(d);
}

static void docker_resume(struct lc_input *in)
{
    struct lc_docker_in *d = in->ctx;

    d->ops->resume(d);
}

static bool docker_caught_up(struct lc_input *in)
{
    struct lc_docker_in *d = in->ctx;

    return d->ops->caught_up(d);
}

void lc_docker_closing(struct lc_docker_in *d)
{
    d->closing++;
}

void lc_docker_closed(struct lc_docker_in *d)
{
    if (--d->closing == 0)
        lc_input_stopped(d->in);
}

static void closed_cb(void *arg)
{
    lc_docker_closed(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    lc_docker_closed(h->data);
}

static void docker_stop(struct lc_input *in)
{
    struct lc_docker_in *d = in->ctx;

    d->stopping = true;
    lc_docker_closing(d); /* held until every part below was asked to close */
    lc_docker_client_stream_close(d->events);
    d->events = NULL;
    d->ops->stop(d);
    lc_docker_closing(d);
    uv_close((uv_handle_t *)&d->reconnect, on_timer_closed);
    lc_docker_meta_free(d->meta);
    d->meta = NULL;
    lc_docker_closing(d);
    lc_docker_client_free(d->client, closed_cb, d);
    d->client = NULL;
    lc_docker_closed(d);
}

static void docker_free(struct lc_input *in)
{
    struct lc_docker_in *d = in->ctx;

    if (!d)
        return;
    d->ops->free(d);
    lc_docker_meta_free(d->meta);
    unreadable_free(d);
    free(d);
    in->ctx = NULL;
}

const struct lc_input_plugin lc_input_docker = {
    .name = "docker",
    .description = "Docker container logs, through the Engine API (api) or json-file logs (file)",
    .options = docker_options,
    .conf_size = sizeof(struct lc_docker_conf),
    .init = docker_init,
    .start = docker_start,
    .pause = docker_pause,
    .resume = docker_resume,
    .caught_up = docker_caught_up,
    .stop = docker_stop,
    .free = docker_free,
};
