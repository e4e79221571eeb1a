/* SPDX-License-Identifier: MIT */
/* docker_engine_json.c: Docker Engine API answers (version, list, inspect, events) decoded from
 * bytes.
 */
#include "parse/docker_engine_json.h"

#include "parse/timestamp.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Seconds that still fit in int64 nanoseconds; a "time" beyond is ignored (time_ns 0). */
#define LC_ENGINE_JSON_MAX_S (INT64_MAX / 1000000000LL)

/* A string member, "" when absent or not a string (obj may be NULL). */
static const char *lc_engine_json_str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/*
 * Collects the string members of a JSON object as labels into a malloc'd
 * array (*out NULL when empty), at most LC_ENGINE_JSON_MAXLABEL. Non-string
 * values are skipped. 0 or -ENOMEM.
 */
static int lc_engine_json_labels(json_t *obj, struct lc_docker_label **out, size_t *n)
{
    const char *key;
    json_t *v;
    size_t cap = json_is_object(obj) ? json_object_size(obj) : 0;

    *out = NULL;
    *n = 0;
    if (cap == 0)
        return 0;
    if (cap > LC_ENGINE_JSON_MAXLABEL)
        cap = LC_ENGINE_JSON_MAXLABEL;
    *out = calloc(cap, sizeof(**out));
    if (!*out)
        return -ENOMEM;
    json_object_foreach(obj, key, v)
    {
        if (*n >= cap)
            break;
        if (!json_is_string(v))
            continue;
        (*out)[*n].key = key;
        (*out)[*n].value = json_string_value(v);
        (*n)++;
    }
    return 0;
}

/* RFC 3339 time of a Docker state field; 0 for Go's zero time or garbage. */
static int64_t lc_engine_json_time(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    int64_t ns = 0;

    if (!s || lc_ts_parse_rfc3339(s, strlen(s), &ns, NULL) != 0 || ns < 0)
        return 0;
    return ns;
}

void lc_engine_json_release(struct lc_engine_json_doc *doc)
{
    if (!doc)
        return;
    for (size_t i = 0; i < doc->nsum; i++)
        free((void *)doc->sum[i].labels);
    free(doc->sum);
    free(doc->labels);
    json_decref(doc->root);
    memset(doc, 0, sizeof(*doc));
}

/* Releases doc (a failed decode holds nothing) and returns rc. */
static int lc_engine_json_fail(struct lc_engine_json_doc *doc, int rc)
{
    lc_engine_json_release(doc);
    return rc;
}

/* Parses the bytes into doc->root (released first). */
static json_t *lc_engine_json_load(const char *body, size_t len, struct lc_engine_json_doc *doc)
{
    lc_engine_json_release(doc);
    doc->root = body ? json_loadb(body, len, 0, NULL) : NULL;
    return doc->root;
}

int lc_engine_json_version(const char *body, size_t len, struct lc_docker_version *v,
                           struct lc_engine_json_doc *doc)
{
    json_t *j = lc_engine_json_load(body, len, doc);

    v->api_version = v->min_api_version = v->engine_version = v->negotiated = "";
    if (!json_is_object(j))
        return lc_engine_json_fail(doc, -EPROTO);
    v->api_version = lc_engine_json_str(j, "ApiVersion");
    v->min_api_version = lc_engine_json_str(j, "MinAPIVersion");
    v->engine_version = lc_engine_json_str(j, "Version");
    return 0;
}

int lc_engine_json_list(const char *body, size_t len, const struct lc_docker_summary **out,
                        size_t *n, struct lc_engine_json_doc *doc)
{
    json_t *j = lc_engine_json_load(body, len, doc);
    size_t count = json_array_size(j); /* 0 when j is not an array */
    struct lc_docker_summary *sum;

    *out = NULL;
    *n = 0;
    if (!json_is_array(j))
        return lc_engine_json_fail(doc, -EPROTO);
    if (count == 0)
        return 0;
    sum = calloc(count, sizeof(*sum));
    if (!sum)
        return lc_engine_json_fail(doc, -ENOMEM);
    doc->sum = sum;
    for (size_t i = 0; i < count; i++) {
        json_t *c = json_array_get(j, i);
        const char *id = lc_engine_json_str(c, "Id");
        const char *name = json_string_value(json_array_get(json_object_get(c, "Names"), 0));
        struct lc_docker_summary *s = &sum[doc->nsum];
        struct lc_docker_label *labels = NULL;

        if (!*id)
            continue;
        if (!name)
            name = "";
        s->id = id;
        s->name = name[0] == '/' ? name + 1 : name;
        s->image = lc_engine_json_str(c, "Image");
        s->state = lc_engine_json_str(c, "State");
        if (lc_engine_json_labels(json_object_get(c, "Labels"), &labels, &s->nlabels) < 0)
            return lc_engine_json_fail(doc, -ENOMEM);
        s->labels = labels;
        doc->nsum++;
    }
    *out = doc->nsum ? sum : NULL;
    *n = doc->nsum;
    return 0;
}

int lc_engine_json_inspect(const char *body, size_t len, struct lc_docker_inspect *c,
                           struct lc_engine_json_doc *doc)
{
    json_t *j = lc_engine_json_load(body, len, doc);
    json_t *config = json_object_get(j, "Config");
    json_t *state = json_object_get(j, "State");

    memset(c, 0, sizeof(*c));
    if (!json_is_object(j) || !*lc_engine_json_str(j, "Id"))
        return lc_engine_json_fail(doc, -EPROTO);
    if (lc_engine_json_labels(json_object_get(config, "Labels"), &doc->labels, &c->nlabels) < 0) {
        c->nlabels = 0;
        return lc_engine_json_fail(doc, -ENOMEM);
    }
    c->labels = doc->labels;
    c->id = lc_engine_json_str(j, "Id");
    c->name = lc_engine_json_str(j, "Name");
    if (c->name[0] == '/')
        c->name++;
    c->image = lc_engine_json_str(config, "Image");
    c->image_id = lc_engine_json_str(j, "Image");
    c->log_path = lc_engine_json_str(j, "LogPath");
    c->log_driver =
        lc_engine_json_str(json_object_get(json_object_get(j, "HostConfig"), "LogConfig"), "Type");
    c->state = lc_engine_json_str(state, "Status");
    c->running = json_is_true(json_object_get(state, "Running"));
    c->tty = json_is_true(json_object_get(config, "Tty"));
    c->started_ns = lc_engine_json_time(state, "StartedAt");
    c->finished_ns = lc_engine_json_time(state, "FinishedAt");
    return 0;
}

int lc_engine_json_event(const char *line, size_t len, struct lc_docker_event *ev,
                         struct lc_engine_json_doc *doc)
{
    json_t *j = lc_engine_json_load(line, len, doc);
    json_t *actor = json_object_get(j, "Actor");
    json_t *attrs = json_object_get(actor, "Attributes");
    json_t *tn = json_object_get(j, "timeNano");
    json_t *t = json_object_get(j, "time");

    memset(ev, 0, sizeof(*ev));
    if (!json_is_object(j))
        goto out_proto;
    ev->action = lc_engine_json_str(j, "Action");
    if (!*ev->action)
        ev->action = lc_engine_json_str(j, "status");
    ev->id = lc_engine_json_str(actor, "ID");
    if (!*ev->id)
        ev->id = lc_engine_json_str(j, "id");
    if (!*ev->action || !*ev->id)
        goto out_proto;
    ev->name = lc_engine_json_str(attrs, "name");
    ev->image = lc_engine_json_str(attrs, "image");
    ev->old_name = lc_engine_json_str(attrs, "oldName");
    if (json_is_integer(tn))
        ev->time_ns = (int64_t)json_integer_value(tn);
    else if (json_is_integer(t) && json_integer_value(t) >= -LC_ENGINE_JSON_MAX_S &&
             json_integer_value(t) <= LC_ENGINE_JSON_MAX_S)
        ev->time_ns = (int64_t)json_integer_value(t) * 1000000000LL;
    if (lc_engine_json_labels(attrs, &doc->labels, &ev->nattributes) < 0) {
        memset(ev, 0, sizeof(*ev));
        return lc_engine_json_fail(doc, -ENOMEM);
    }
    ev->attributes = doc->labels;
    return 0;

out_proto:
    memset(ev, 0, sizeof(*ev));
    return lc_engine_json_fail(doc, -EPROTO);
}

void lc_engine_json_message(const char *body, size_t len, char *msg, size_t msglen)
{
    json_t *j;

    msg[0] = '\0';
    if (!body || len == 0)
        return;
    j = json_loadb(body, len, 0, NULL);
    if (j && json_is_string(json_object_get(j, "message"))) {
        snprintf(msg, msglen, "%s", json_string_value(json_object_get(j, "message")));
    } else {
        size_t n = len < msglen - 1 ? len : msglen - 1;
        memcpy(msg, body, n);
        msg[n] = '\0';
        while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
            msg[--n] = '\0';
    }
    json_decref(j);
}
