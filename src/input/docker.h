/* SPDX-License-Identifier: MIT */
/* docker.h: the `docker` input's shared parts: options, filters, labels; its two modes. */
#ifndef LC_INPUT_DOCKER_H
#define LC_INPUT_DOCKER_H

#include "core/agent.h"
#include "core/relabel.h"
#include "input/docker_api_client.h"
#include "input/docker_meta.h"
#include "input/file.h"

struct lc_docker_unreadable;

enum lc_docker_mode { LC_DOCKER_MODE_API = 0, LC_DOCKER_MODE_FILE };

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
    /* file mode */
    int64_t read_bytes;
    int64_t rescan_ms;
    int64_t poll_ms;
    int64_t rotate_wait_ms;
    int64_t max_rotated;
    int64_t max_unacked;
};

struct lc_docker_in {
    struct lc_input *in;
    const struct lc_docker_conf *c;
    struct lc_docker_api *api;
    struct lc_docker_meta *meta;
    struct lc_docker_stream *events;
    uv_timer_t reconnect;
    int64_t backoff_ms;
    bool api_up;
    char health_key[160]; /* "docker/NAME": the Docker connection's /health component */
    bool stopping;
    size_t closing;
    /* file mode */
    struct lc_file_in *files;
    struct lc_file_conf fconf;
    char *glob;
    /* api mode: docker_api.c */
    void *streams;
    struct lc_metric_series *m_malformed;
    struct lc_metric_series *m_excluded;
    struct lc_metric_series *m_skipped_old;
    /* containers whose logging driver the mode cannot read (issue 19), newest first */
    struct lc_docker_unreadable *unreadable;
    size_t nunreadable;
    struct lc_metric_series *m_log_driver;
    struct lc_metric_series *m_unreadable;
};

/* docker.c */
/*
 * Logging drivers. Whether `mode` can read a container whose driver is
 * `driver` (as inspected): file mode reads json-file; api mode reads what the
 * daemon can read back (every driver but "none"; a remote driver with dual
 * logging disabled is found out by the daemon's answer). If not, *remedy says
 * what to do.
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
 * docker_file.c: mode file. The modes share one contract, called by docker.c
 * on the event loop: init (at the input's init: 0 or -errno, then free
 * follows whatever happened), start (handles on the loop: 0 or -errno),
 * event (a container event; mode api also gets ev NULL when the daemon
 * (re)connected: every running container is looked at again), and pause,
 * resume, caught_up, stop and free (plugin.h) for the mode's own state.
 */
/* Sets up the file reader over <root>/containers/ (the shared decode buffer too). 0 or -errno. */
int lc_docker_file_init(struct lc_docker_in *d);
/* Starts reading (lc_file_in_start). 0 or -errno. */
int lc_docker_file_start(struct lc_docker_in *d);
/* A container event (never NULL here): a start rescans for its log, a destroy closes its files. */
void lc_docker_file_event(struct lc_docker_in *d, const struct lc_docker_event *ev);
/* Drops this instance's use of the shared decode buffer (at free). */
void lc_docker_file_release(void);

/* docker_api.c: mode api (the same contract as mode file, above) */
/* Allocates the mode's state (d->streams). 0 or -ENOMEM. */
int lc_docker_api_mode_init(struct lc_docker_in *d);
/* Starts the tick timer (seals quiet streams' marks, reopens broken streams). 0 or -errno. */
int lc_docker_api_mode_start(struct lc_docker_in *d);
/* Pauses every log stream (the connection stays open: the daemon's buffer holds). */
void lc_docker_api_mode_pause(struct lc_docker_in *d);
/* Resumes every stream whose source may take records (it may deliver data at once). */
void lc_docker_api_mode_resume(struct lc_docker_in *d);
/* For --once: true when the first list answered and every stream ended. */
bool lc_docker_api_mode_caught_up(struct lc_docker_in *d);
/* Closes every stream; calls lc_docker_closed(d) for each handle it closes asynchronously. */
void lc_docker_api_mode_stop(struct lc_docker_in *d);
/* Frees the mode's state (after stop completed, or after a failed init/start). */
void lc_docker_api_mode_free(struct lc_docker_in *d);
/* A container event, or ev NULL: (re)connected, list the running containers. */
void lc_docker_api_mode_event(struct lc_docker_in *d, const struct lc_docker_event *ev);

/* For the modes, during stop: one more asynchronous close is pending (call before closing). */
void lc_docker_closing(struct lc_docker_in *d);
/*
 * One pending close is done (from its close callback). The last one calls
 * lc_input_stopped(d->in); docker.c holds one itself until everything was
 * asked to close, so a close that completes at once cannot end the stop early.
 */
void lc_docker_closed(struct lc_docker_in *d);

#endif
