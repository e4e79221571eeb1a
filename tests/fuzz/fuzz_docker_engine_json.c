/* SPDX-License-Identifier: MIT */
/* fuzz_docker_engine_json.c: libFuzzer target for the Engine API answer decoders. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse/docker_engine_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every label a non-NULL key and value, at most the cap. */
static void check_labels(const struct lc_docker_label *l, size_t n)
{
    if (n > LC_ENGINE_JSON_MAXLABEL || (n > 0 && !l))
        abort();
    for (size_t i = 0; i < n; i++)
        if (!l[i].key || !l[i].value)
            abort();
}

/* Reads every byte of a decoded string, so ASan sees a dangling or unterminated one. */
static size_t touch(const char *s)
{
    if (!s)
        abort();
    return strlen(s);
}

/*
 * The same bytes go through every decoder (the seeds are real answers of each
 * kind, so each decoder sees both its own answers and the others'). Checks the
 * contracts: 0 or the documented errors, every string of a success set and
 * readable after the input is freed, a failure leaves the doc released, and
 * the error message is terminated within its buffer.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lc_engine_json_doc doc = {0};
    struct lc_docker_version v;
    struct lc_docker_inspect c;
    struct lc_docker_event ev;
    const struct lc_docker_summary *s;
    size_t n, sum = 0;
    char msg[64];
    int rc;

    /* an exact-size copy, freed before the results are read */
    char *in = malloc(size ? size : 1);
    if (!in)
        abort();
    memcpy(in, data, size);

    rc = lc_engine_json_version(in, size, &v, &doc);
    if (rc != 0 && rc != -EPROTO)
        abort();
    if (rc == 0)
        sum += touch(v.api_version) + touch(v.min_api_version) + touch(v.engine_version);
    else if (doc.root)
        abort();
    lc_engine_json_release(&doc);

    rc = lc_engine_json_list(in, size, &s, &n, &doc);
    if (rc != 0 && rc != -EPROTO && rc != -ENOMEM)
        abort();
    if (rc == 0) {
        if ((n == 0) != (s == NULL))
            abort();
        for (size_t i = 0; i < n; i++) {
            if (touch(s[i].id) == 0)
                abort();
            sum += touch(s[i].name) + touch(s[i].image) + touch(s[i].state);
            check_labels(s[i].labels, s[i].nlabels);
        }
    } else if (doc.root || n != 0 || s) {
        abort();
    }
    lc_engine_json_release(&doc);

    rc = lc_engine_json_inspect(in, size, &c, &doc);
    if (rc != 0 && rc != -EPROTO && rc != -ENOMEM)
        abort();
    if (rc == 0) {
        if (touch(c.id) == 0 || c.started_ns < 0 || c.finished_ns < 0)
            abort();
        sum += touch(c.name) + touch(c.image) + touch(c.image_id) + touch(c.log_path) +
               touch(c.log_driver) + touch(c.state);
        check_labels(c.labels, c.nlabels);
    } else if (doc.root || c.id) {
        abort();
    }
    lc_engine_json_release(&doc);

    rc = lc_engine_json_event(in, size, &ev, &doc);
    if (rc != 0 && rc != -EPROTO && rc != -ENOMEM)
        abort();
    if (rc == 0) {
        if (touch(ev.action) == 0 || touch(ev.id) == 0)
            abort();
        sum += touch(ev.name) + touch(ev.image) + touch(ev.old_name);
        check_labels(ev.attributes, ev.nattributes);
    } else if (doc.root || ev.action) {
        abort();
    }
    free(in);
    if (rc == 0) /* the event still reads after its input is gone */
        sum += touch(ev.action) + touch(ev.id);
    lc_engine_json_release(&doc);

    in = malloc(size ? size : 1);
    if (!in)
        abort();
    memcpy(in, data, size);
    memset(msg, 'x', sizeof(msg));
    lc_engine_json_message(in, size, msg, sizeof(msg));
    if (!memchr(msg, '\0', sizeof(msg)))
        abort();
    free(in);
    (void)sum;
    return 0;
}
