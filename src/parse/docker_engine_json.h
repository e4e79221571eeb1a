/* SPDX-License-Identifier: MIT */
/* docker_engine_json.h: Docker Engine API answers (version, list, inspect, events) decoded from
 * bytes.
 */
#ifndef LC_DOCKER_ENGINE_JSON_H
#define LC_DOCKER_ENGINE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Pure decoders: bytes of one Engine API answer in, a struct out; no I/O, no
 * global state, no logging, no metrics (the caller counts what it skips).
 * input/docker_client.c hands the structs to its callbacks.
 *
 * Ownership: every string and array of a decoded struct points into a
 * struct lc_engine_json_doc that the caller provides (zeroed before its first
 * use) and releases with lc_engine_json_release() once it no longer reads the
 * struct. The input bytes are not referenced after the call. A decoder that
 * fails leaves the doc released; releasing it again is harmless, so a caller
 * may release it unconditionally.
 */

#define LC_ENGINE_JSON_MAXLABEL 4096 /* labels taken from one object; the rest are ignored */

struct lc_docker_label {
    const char *key;
    const char *value;
};

/* GET /version. Strings are "" when absent. */
struct lc_docker_version {
    const char *api_version;     /* daemon's ApiVersion, e.g. "1.41" */
    const char *min_api_version; /* daemon's MinAPIVersion */
    const char *engine_version;  /* Version, e.g. "20.10.24+dfsg1" */
    const char
        *negotiated; /* what we use: min(daemon, LC_DOCKER_CLIENT_API_MAX); set by the client */
};

/* One entry of GET /containers/json (running containers). */
struct lc_docker_summary {
    const char *id;
    const char *name;  /* first of Names, without the leading '/'; "" if none */
    const char *image; /* Image */
    const char *state; /* State: "running", ... */
    const struct lc_docker_label *labels;
    size_t nlabels;
};

/* GET /containers/{id}/json, the fields we use. Strings are "" when absent. */
struct lc_docker_inspect {
    const char *id;
    const char *name;                     /* without the leading '/' */
    const char *image;                    /* Config.Image, as the user named it */
    const char *image_id;                 /* Image, "sha256:..." */
    const char *log_path;                 /* LogPath; "" when the log driver keeps no file */
    const char *log_driver;               /* HostConfig.LogConfig.Type, e.g. "json-file" */
    const char *state;                    /* State.Status */
    bool running;                         /* State.Running */
    bool tty;                             /* Config.Tty: the log stream is raw, not multiplexed */
    int64_t started_ns;                   /* State.StartedAt; 0 when never started */
    int64_t finished_ns;                  /* State.FinishedAt; 0 when not finished */
    const struct lc_docker_label *labels; /* Config.Labels */
    size_t nlabels;
};

/* One line of GET /events (container events only). */
struct lc_docker_event {
    const char *action;   /* "start", "die", "destroy", "rename", "exec_start: sh", ... */
    const char *id;       /* Actor.ID */
    const char *name;     /* Actor.Attributes.name, "" if absent (after rename: the new name) */
    const char *image;    /* Actor.Attributes.image, "" if absent */
    const char *old_name; /* rename: Actor.Attributes.oldName, e.g. "/old"; "" otherwise */
    int64_t time_ns;      /* timeNano */
    const struct lc_docker_label *attributes; /* all of Actor.Attributes (labels among them) */
    size_t nattributes;
};

/*
 * What decoded structs point into. The fields belong to this module: zero the
 * struct before its first use and touch it through nothing but these functions.
 */
struct lc_engine_json_doc {
    void *root;                     /* the parsed document (json_t) */
    struct lc_docker_label *labels; /* inspect, event */
    struct lc_docker_summary *sum;  /* list */
    size_t nsum;
};

/* Frees what `doc` holds and zeroes it. NULL or an empty doc is a no-op. */
void lc_engine_json_release(struct lc_engine_json_doc *doc);

/*
 * GET /version: the three version strings (v->negotiated is set to ""). 0, or
 * -EPROTO when the body is not a JSON object. Whether ApiVersion is usable is
 * the caller's decision.
 */
int lc_engine_json_version(const char *body, size_t len, struct lc_docker_version *v,
                           struct lc_engine_json_doc *doc);

/*
 * GET /containers/json: *out gets the entries that have an Id (*n of them;
 * *out is NULL when there are none), in the answer's order. Non-string label
 * values are skipped. 0, -EPROTO (not a JSON array) or -ENOMEM.
 */
int lc_engine_json_list(const char *body, size_t len, const struct lc_docker_summary **out,
                        size_t *n, struct lc_engine_json_doc *doc);

/*
 * GET /containers/{id}/json into *c (zeroed first). 0, -EPROTO (not a JSON
 * object, or no Id) or -ENOMEM.
 */
int lc_engine_json_inspect(const char *body, size_t len, struct lc_docker_inspect *c,
                           struct lc_engine_json_doc *doc);

/*
 * One /events line (without its newline) into *ev (zeroed first). Falls back
 * to the pre-1.22 fields "status", "id" and "time" when the newer ones are
 * absent. 0, -EPROTO (not a JSON object, or no action or id) or -ENOMEM.
 */
int lc_engine_json_event(const char *line, size_t len, struct lc_docker_event *ev,
                         struct lc_engine_json_doc *doc);

/*
 * The daemon's {"message": "..."} of an error body into msg (NUL-terminated,
 * cut to msglen - 1 bytes); a body that has none gives its own start, without
 * trailing newlines. An empty body gives "". msglen must be > 0.
 */
void lc_engine_json_message(const char *body, size_t len, char *msg, size_t msglen);

#endif
