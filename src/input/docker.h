/* SPDX-License-Identifier: MIT */
/* docker.h: the `docker` input's shared parts: options, filters, labels; its two modes. */
#ifndef LC_INPUT_DOCKER_H
#define LC_INPUT_DOCKER_H

#include "core/agent.h"
#include "core/relabel.h"
#include "input/docker_client.h"
#include "input/docker_meta.h"

struct lc_docker_unreadable;
struct lc_docker_mode_ops;

enum lc_docker_mode { LC_DOCKER_MODE_API = 0, LC_DOCKER_MODE_FILE };
/* start_at: like the file input's (enum lc_file_start, file.h) */
enum lc_docker_start { LC_DOCKER_START_END = 0, LC_DOCKER_START_BEGINNING };

struct lc_docker_filter {
    struct lc_strlist names;  /* globs on the container name */
    struct lc_strlist labels; /* "key" or "key=value", globs on both */
    struct lc_strlist images; /* globs on Config.Image */
};

struct lc_docker_conf {
    int mode;
    char *socket;
    char *root;
    struct lc_docker_filter include;
    struct lc_docker_filter exclude;
    struct lc_strlist labels_allowlist;
    struct lc_seclist relabel; /* struct lc_relabel_rule items, prepared at load */
    int64_t metadata_ttl_ms;
    int64_t metadata_max;
    int64_t max_containers;
    int start_at;
    int64_t max_age_ms;
    int64_t max_line_bytes;
    int64_t reconnect_min_ms;
    int64_t reconnect_max_ms;
    int64_t stall_ms;
    int64_t max_held_logs;
    /* file mode */
    int64_t read_bytes;
    int64_t rescan_ms;
    int64_t poll_ms;
    int64_t rotate_wait_ms;
    int64_t max_rotated;
    int64_t max_unacked;
};

/* Why a container line or a container was skipped (docker_skipped_total{reason}). */
enum {
    LC_DOCKER_SKIP_MALFORMED,  /* a line not in the log format */
    LC_DOCKER_SKIP_EXCLUDED,   /* a container the filters leave out */
    LC_DOCKER_SKIP_TOO_OLD,    /* older than max_age */
    LC_DOCKER_SKIP_LOG_DRIVER, /* a container whose logging driver the mode cannot read */
    LC_DOCKER_SKIP_MAX_HELD,   /* api mode: a removed container's tail not held (max_held_logs) */
    LC_DOCKER_SKIP_N
};

struct lc_docker_in {
    struct lc_input *in;
    const struct lc_docker_conf *c;
    struct lc_docker_client *client;
    struct lc_docker_meta *meta;
    struct lc_docker_client_stream *events;
    uv_timer_t reconnect;
    int64_t backoff_ms;
    bool daemon_up;
    char health_key[160]; /* "docker/NAME": the Docker connection's /health component */
    bool stopping;
    size_t closing;
    const struct lc_docker_mode_ops *ops; /* the mode's, picked at init from c->mode */
    void *mode;                           /* the mode's own state (ops->init allocates it) */
    /* skipped lines and containers by reason (LC_DOCKER_SKIP_*), counted by both modes */
    struct lc_metric_series *m_skip[LC_DOCKER_SKIP_N];
    /* containers whose logging driver the mode cannot read (issue 19), newest first */
    struct lc_docker_unreadable *unreadable;
    size_t nunreadable;
    struct lc_metric_series *m_unreadable;
};

/* docker.c */
/*
 * Logging drivers. Whether `mode` can read a container whose driver is
 * `driver` (as inspected; unknown: true), by the mode's table (`readable`):
 * file mode reads json-file; api mode reads what the daemon can read back
 * (every driver but "none"; a remote driver with dual logging disabled is
 * found out by the daemon's answer). If not, *remedy says what to do.
 * `mode` is an enum lc_docker_mode.
 */
bool lc_docker_driver_readable(int mode, const char *driver, const char **remedy);
/*
 * A container this mode cannot read: the first time (per container) warns
 * naming the driver and the remedy, counts docker_skipped_total{reason=
 * "log_driver"}, and notes it in /health. Remembers at most 2 x
 * max_containers containers (the oldest forgotten first).
 */
void lc_docker_set_unreadable(struct lc_docker_in *d, const char *id, const char *name,
                              const char *driver, const char *remedy, const char *why);
/* True when lc_docker_set_unreadable() noted the container (and still remembers it). */
bool lc_docker_is_unreadable(const struct lc_docker_in *d, const char *id);
/*
 * Refreshes the input's /health entry while the daemon is connected: ok
 * ("connected"), or degraded with the count of unreadable containers. While
 * disconnected it changes nothing (the connection's own state is shown).
 */
void lc_docker_health(struct lc_docker_in *d);
/*
 * True when the container passes the filters: every non-empty include list
 * (names, images, labels) has a match, and no exclude list does. Pure.
 */
bool lc_docker_selected(const struct lc_docker_conf *c, const struct lc_docker_meta_entry *e);
/*
 * The label set of a container's stream ("stdout"/"stderr"): the input's
 * labels, container_name, compose_project, compose_service (when set), stream,
 * and the allowlisted container labels. With `relabel:` rules instead: what
 * the rules leave of the input's labels and the discovery labels
 * (__meta_docker_container_id, _name with Docker's leading '/', _label_<name>
 * sanitised, _log_stream); a stream the rules drop gets the other stream's
 * labels. 0 and a new reference, or -errno.
 */
int lc_docker_labels(struct lc_docker_in *d, const struct lc_docker_meta_entry *e,
                     const char *stream, struct lc_labels **out);
/*
 * With `relabel:` rules: whether they keep the container (either stream kept,
 * with at least one label left); a drop is logged at info. True without rules.
 */
bool lc_docker_relabel_kept(struct lc_docker_in *d, const struct lc_docker_meta_entry *e);
/*
 * Writes the checkpoint key of a container, "docker:<input name>:<id>", into
 * key (len bytes, truncated if short). Mode api keys its sources by it; mode
 * file looks for it when it first meets a container (so switching modes
 * neither loses nor repeats more than a batch).
 */
void lc_docker_key(const struct lc_docker_in *d, const char *id, char *key, size_t len);

/*
 * A mode (api: docker_api.c, file: docker_file.c), chosen once at init by the
 * `mode` option; docker.c calls it only through this table, on the event loop.
 * Every entry is set.
 */
struct lc_docker_mode_ops {
    const char *name; /* as in the `mode` option */
    /* Whether the mode can read a container whose logging driver is `driver`
     * (never NULL or empty); if not, sets *remedy to what the user can do. */
    bool (*readable)(const char *driver, const char **remedy);
    /* At the input's init: allocates d->mode. 0 or -errno; free follows either way. */
    int (*init)(struct lc_docker_in *d);
    /* At the input's start: the mode's handles on the loop. 0 or -errno. */
    int (*start)(struct lc_docker_in *d);
    /* The events stream is up (first connection or a reconnection): whatever
     * started while no events were followed is looked for again. */
    void (*connected)(struct lc_docker_in *d);
    /* A container event (never NULL), after the metadata cache saw it. */
    void (*event)(struct lc_docker_in *d, const struct lc_docker_event *ev);
    /* plugin.h's pause, resume and caught_up, for the mode's own readers */
    void (*pause)(struct lc_docker_in *d);
    void (*resume)(struct lc_docker_in *d);
    bool (*caught_up)(struct lc_docker_in *d);
    /* Closes the mode's readers and handles: lc_docker_closing(d) for each
     * asynchronous close, lc_docker_closed(d) when it completes. */
    void (*stop)(struct lc_docker_in *d);
    /* Frees d->mode (after stop completed, or after a failed init or start;
     * d->mode may then be NULL). */
    void (*free)(struct lc_docker_in *d);
};

/* For the modes, during stop: one more asynchronous close is pending (call before closing). */
void lc_docker_closing(struct lc_docker_in *d);
/*
 * One pending close is done (from its close callback). The last one calls
 * lc_input_stopped(d->in); docker.c holds one itself until everything was
 * asked to close, so a close that completes at once cannot end the stop early.
 */
void lc_docker_closed(struct lc_docker_in *d);

#endif
