/* SPDX-License-Identifier: MIT */
/* config.c: loads the agent's YAML configuration (libyaml document API) through option tables. */
#include "core/config.h"
#include "core/log.h"
#include "core/plugin.h"
#include "core/redact.h"
#include "process/stage.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define LC_CONFIG_MAX_BYTES   (4 * 1024 * 1024) /* a configuration file */
#define LC_CONFIG_MAX_SCALAR  (64 * 1024)       /* one value after ${} substitution */
#define LC_CONFIG_MAX_ENTRIES 1024              /* inputs, outputs, entries of a map */
#define LC_CONFIG_MAX_LIST    4096              /* items of a list */
#define LC_CONFIG_MAX_STAGES  64                /* stages of one process list */
#define LC_CONFIG_MAX_NAME    128               /* an input/output name, a variable name */
/*
 * All values of one load, each counted as its length + 32: aliases make a
 * small file name a value many times over ("billion laughs"); this bounds it.
 */
#define LC_CONFIG_MAX_EXPANDED (16 * 1024 * 1024)

const struct lc_input_plugin *(*lc_config_input_lookup)(const char *name) = lc_input_plugin_find;
const struct lc_output_plugin *(*lc_config_output_lookup)(const char *name) = lc_output_plugin_find;

static const char *const lc_log_level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const lc_corrupt_names[] = {"fail", "reset", NULL};

#define CFG(field) offsetof(struct lc_config, field)
#define WD(field)  offsetof(struct lc_watchdog_conf, field)

#define AN(field) offsetof(struct lc_anomaly_conf, field)

static const struct lc_option anomaly_options[] = {
    {.type = LC_OPT_BOOL,
     .key = "enabled",
     .def = "false",
     .offset = AN(enabled),
     .help = "Watch every stream's line and byte rates and error share for spikes, silences and "
             "error bursts (costs a hash lookup and a pattern match per line)."},
    {.type = LC_OPT_DURATION,
     .key = "interval",
     .def = "10s",
     .offset = AN(interval_ms),
     .min = 10,
     .max = 3600000,
     .help = "How often rates are computed and judged."},
    {.type = LC_OPT_DURATION,
     .key = "warmup",
     .def = "5m",
     .offset = AN(warmup_ms),
     .min = 0,
     .help = "A stream is not judged before it is this old (its baselines are learnt)."},
    {.type = LC_OPT_DURATION,
     .key = "expire",
     .def = "1h",
     .offset = AN(expire_ms),
     .min = 10,
     .help = "A stream without a line for this long is forgotten."},
    {.type = LC_OPT_INT,
     .key = "max_streams",
     .def = "1000",
     .offset = AN(max_streams),
     .min = 1,
     .max = 1000000,
     .help = "Streams tracked at most (fixed memory, ~150 bytes each); a new one evicts the "
             "least recently active."},
    {.type = LC_OPT_INT,
     .key = "spike_factor",
     .def = "10",
     .offset = AN(spike_factor),
     .min = 2,
     .max = 1000000,
     .help = "A spike is a lines/s or bytes/s rate above this many times its baseline."},
    {.type = LC_OPT_INT,
     .key = "spike_min_lines",
     .def = "100",
     .offset = AN(spike_min_lines),
     .min = 1,
     .help = "Lines an interval needs at least to count towards a spike."},
    {.type = LC_OPT_INT,
     .key = "spike_intervals",
     .def = "2",
     .offset = AN(spike_intervals),
     .min = 1,
     .max = 1000,
     .help = "Intervals in a row over the spike rate before a spike is raised."},
    {.type = LC_OPT_INT,
     .key = "silence_factor",
     .def = "10",
     .offset = AN(silence_factor),
     .min = 2,
     .max = 1000000,
     .help = "A steady stream is silent once quiet for this many times its usual gap between "
             "lines (and two intervals at least)."},
    {.type = LC_OPT_INT,
     .key = "error_factor",
     .def = "5",
     .offset = AN(error_factor),
     .min = 2,
     .max = 1000000,
     .help = "An error burst is a share of matching lines above this many times its baseline "
             "(and above 10 %)."},
    {.type = LC_OPT_INT,
     .key = "error_min_lines",
     .def = "10",
     .offset = AN(error_min_lines),
     .min = 1,
     .help = "Matching lines an interval needs at least for an error burst."},
    {.type = LC_OPT_STR,
     .key = "error_pattern",
     .def = "error|fatal|panic|exception",
     .offset = AN(error_pattern),
     .help = "PCRE2 pattern, case-insensitive, searched in each line's first KiB; \"\" turns "
             "error bursts off."},
    LC_OPT_END,
};

static const struct lc_option watchdog_options[] = {
    {.type = LC_OPT_BOOL,
     .key = "enabled",
     .def = "true",
     .offset = WD(enabled),
     .help = "Sample the agent's own threads, FDs, RSS and bounded structures and warn on growth."},
    {.type = LC_OPT_DURATION,
     .key = "interval",
     .def = "60s",
     .offset = WD(interval_ms),
     .min = 10,
     .max = 3600000,
     .help = "How often the watchdog takes a sample (it keeps the last 60)."},
    {.type = LC_OPT_DURATION,
     .key = "window",
     .def = "30m",
     .offset = WD(window_ms),
     .min = 100,
     .max = 86400000,
     .help = "The slope is fitted over the samples of this last stretch of time (at most 60, "
             "at least 10)."},
    {.type = LC_OPT_INT,
     .key = "max_threads_per_min",
     .def = "0",
     .offset = WD(max_threads_per_min),
     .min = 0,
     .max = 1000000,
     .help = "Thread count growth per minute above which threads are flagged as leaking."},
    {.type = LC_OPT_INT,
     .key = "max_fds_per_min",
     .def = "2",
     .offset = WD(max_fds_per_min),
     .min = 0,
     .max = 1000000,
     .help = "Growth per minute of FDs of one kind (files, sockets, other) that the configuration "
             "does not explain, above which they are flagged as leaking."},
    {.type = LC_OPT_SIZE,
     .key = "max_rss_per_min",
     .def = "1MiB",
     .offset = WD(max_rss_per_min),
     .min = 0,
     .help = "Resident memory growth per minute above which memory is flagged as leaking."},
    LC_OPT_END,
};

const struct lc_option lc_config_options[] = {
    {.type = LC_OPT_STR,
     .key = "state_dir",
     .def = "/var/lib/log_capturer",
     .offset = CFG(state_dir),
     .help = "Directory for checkpoints (SQLite) and dead-letter segments."},
    {.type = LC_OPT_STR,
     .key = "listen",
     .def = "127.0.0.1:9431",
     .offset = CFG(listen),
     .help = "HOST:PORT of /metrics, /health and /ready; \"off\" or \"\" disables it."},
    {.type = LC_OPT_ENUM,
     .key = "log_level",
     .def = "info",
     .offset = CFG(log_level),
     .choices = lc_log_level_names,
     .help = "Least severe level of the agent's own log (JSON lines on stderr)."},
    {.type = LC_OPT_DURATION,
     .key = "shutdown_timeout",
     .def = "10s",
     .offset = CFG(shutdown_timeout_ms),
     .min = 0,
     .max = 3600000,
     .help = "How long a clean shutdown waits for outputs to deliver what they hold."},
    {.type = LC_OPT_DURATION,
     .key = "checkpoint_interval",
     .def = "1s",
     .offset = CFG(checkpoint_interval_ms),
     .min = 10,
     .max = 3600000,
     .help = "How often acknowledged positions are written to the checkpoint store."},
    {.type = LC_OPT_SIZE,
     .key = "max_pending_bytes",
     .def = "16MiB",
     .offset = CFG(max_pending_bytes),
     .min = 1024 * 1024,
     .help = "Per output: bytes handed to it and not yet done; inputs pause above it (the logs "
             "themselves are the buffer)."},
    {.type = LC_OPT_INT,
     .key = "disk_queue_jobs",
     .def = "64",
     .offset = CFG(disk_queue_jobs),
     .min = 1,
     .max = 65536,
     .help = "Disk jobs (checkpoint flushes, DLQ appends, fsyncs) queued for the disk worker "
             "thread at once; more wait in order, their batches still counting in "
             "max_pending_bytes."},
    {.type = LC_OPT_ENUM,
     .key = "on_corrupt_state",
     .def = "fail",
     .offset = CFG(on_corrupt_state),
     .choices = lc_corrupt_names,
     .help = "A corrupt or truncated checkpoints.db at start: fail (exit with the error; the "
             "file stays) or reset (move it aside as checkpoints.db.corrupt-<time>, never "
             "deleted, and start afresh: every input per its start_at)."},
    {.type = LC_OPT_SIZE,
     .key = "batch_bytes",
     .def = "1MiB",
     .offset = CFG(batch_bytes),
     .min = 4 * 1024,
     .max = 64 * 1024 * 1024,
     .help = "Default size at which an output's open batch is sealed and sent."},
    {.type = LC_OPT_DURATION,
     .key = "batch_wait",
     .def = "1s",
     .offset = CFG(batch_wait_ms),
     .min = 1,
     .help = "Default age at which an output's open batch is sent even if not full."},
    {.type = LC_OPT_SECTION,
     .key = "watchdog",
     .offset = CFG(watchdog),
     .sub = watchdog_options,
     .help = "The leak watchdog (docs/internals/watchdog.md)."},
    {.type = LC_OPT_SECTION,
     .key = "anomaly",
     .offset = CFG(anomaly),
     .sub = anomaly_options,
     .help = "Anomaly detection on log rates (docs/internals/anomaly.md)."},
    LC_OPT_END,
};

/* Keys of an entry that the core handles before the plugin's table sees the rest. */
static const char *const lc_input_common[] = {"type", "name", "outputs", "labels", "process", NULL};
static const char *const lc_output_common[] = {"type", "name", "labels", NULL};
static const char *const lc_root_special[] = {"inputs", "outputs", "processes", NULL};

const char lc_config_embedded[] = "# The configuration used when log_capturer runs without -c.\n"
                                  "state_dir: ${LC_STATE_DIR:-/var/lib/log_capturer}\n"
                                  "listen: 127.0.0.1:9431\n"
                                  "log_level: info\n"
                                  "inputs:\n"
                                  "  - type: file\n"
                                  "    name: system\n"
                                  "    paths: [\"/var/log/syslog\", \"/var/log/*.log\"]\n"
                                  "    start_at: beginning # first run: show the last hour\n"
                                  "    max_age: 1h\n"
                                  "    labels: {job: system}\n"
                                  "outputs:\n"
                                  "  - type: stdout\n"
                                  "    name: stdout\n";

/* State of one load: the document, where errors go, and who is being parsed. */
struct lc_cfg_load {
    const char *file;
    const char *text;
    size_t len;
    yaml_document_t doc;
    bool have_doc;
    struct lc_config *cfg;
    char *err;
    size_t errlen;
    char owner[LC_CONFIG_MAX_NAME + 64]; /* "input 'system' (type file)", "" at top level */
    char whose[LC_CONFIG_MAX_NAME + 32]; /* "input 'system'", "" at top level */
    int *in_name_node;                   /* per input: node of its name */
    int *in_outputs_node;                /* per input: node of its outputs list, 0 if none */
    int *out_name_node;
    size_t expanded; /* see LC_CONFIG_MAX_EXPANDED */
};

static int fail_mark(struct lc_cfg_load *L, yaml_mark_t m, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct lc_cfg_load *L, const yaml_node_t *n, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void vfail(struct lc_cfg_load *L, yaml_mark_t m, const char *fmt, va_list ap)
{
    int used;

    if (!L->err || L->errlen == 0)
        return;
    used = snprintf(L->err, L->errlen, "%s:%zu:%zu: ", L->file, m.line + 1, m.column + 1);
    if (used >= 0 && (size_t)used < L->errlen)
        vsnprintf(L->err + used, L->errlen - (size_t)used, fmt, ap);
}

static int fail_mark(struct lc_cfg_load *L, yaml_mark_t m, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(L, m, fmt, ap);
    va_end(ap);
    return rc;
}

static int fail(struct lc_cfg_load *L, const yaml_node_t *n, int rc, const char *fmt, ...)
{
    yaml_mark_t m = n ? n->start_mark : (yaml_mark_t){0};
    va_list ap;

    va_start(ap, fmt);
    vfail(L, m, fmt, ap);
    va_end(ap);
    return rc;
}

static yaml_node_t *node_at(struct lc_cfg_load *L, int idx)
{
    return yaml_document_get_node(&L->doc, idx);
}

/* The document's index of a node (what mapping pairs and sequence items hold). */
static int p_index(struct lc_cfg_load *L, const yaml_node_t *n)
{
    return (int)(n - L->doc.nodes.start) + 1;
}

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* A plain empty, "~" or "null" scalar: YAML's null, which no option accepts. */
static bool is_null(const yaml_node_t *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (size_t k = 0; k < sizeof(nulls) / sizeof(nulls[0]); k++)
        if (strcmp(scalar(n), nulls[k]) == 0)
            return true;
    return false;
}

static const char *kind(const yaml_node_t *n)
{
    if (is_null(n))
        return "nothing";
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    default:
        return "a scalar";
    }
}

/* " in input 'system'" for messages about a value, "" at top level. */
static const char *in_whose(struct lc_cfg_load *L, char *buf, size_t len)
{
    if (L->whose[0])
        snprintf(buf, len, " in %s", L->whose);
    else
        buf[0] = '\0';
    return buf;
}

/* Fails with "<what> (key 'path' in input 'x')". */
static int fail_key(struct lc_cfg_load *L, const yaml_node_t *n, int rc, const char *path,
                    const char *what)
{
    char w[sizeof(L->whose) + 8];

    /* rc, not fail()'s result: clang-analyzer does not follow variadic calls */
    fail(L, n, rc, "%s (key '%s'%s)", what, path, in_whose(L, w, sizeof(w)));
    return rc;
}

/* A growable string capped at LC_CONFIG_MAX_SCALAR. */
struct lc_sbuf {
    char *p;
    size_t n;
    size_t cap;
};

static int sbuf_put(struct lc_sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > LC_CONFIG_MAX_SCALAR)
        return -E2BIG;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *p;
        while (cap < b->n + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

static bool is_var_char(char c, bool first)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (!first && c >= '0' && c <= '9');
}

/*
 * The value of scalar n with ${NAME} and ${NAME:-default} replaced from the
 * environment ("$${" is a literal "${"). *out is owned by the caller.
 */
static int subst(struct lc_cfg_load *L, const yaml_node_t *n, const char *path, char **out)
{
    const char *v = scalar(n);
    size_t len = n->data.scalar.length;
    struct lc_sbuf b = {0};
    char msg[LC_CONFIG_MAX_NAME + 96];
    int rc = 0;

    *out = NULL;
    if (memchr(v, '\0', len))
        return fail_key(L, n, -EINVAL, path, "value contains a NUL character");
    for (size_t i = 0; i < len && rc == 0;) {
        const char *close;
        char name[LC_CONFIG_MAX_NAME + 1];
        const char *env, *def = NULL;
        size_t nlen = 0, deflen = 0;

        if (v[i] == '$' && i + 2 < len && v[i + 1] == '$' && v[i + 2] == '{') {
            rc = sbuf_put(&b, "${", 2);
            i += 3;
            continue;
        }
        if (v[i] != '$' || i + 1 >= len || v[i + 1] != '{') {
            rc = sbuf_put(&b, v + i, 1);
            i++;
            continue;
        }
        close = memchr(v + i + 2, '}', len - i - 2);
        if (!close) {
            rc = fail_key(L, n, -EINVAL, path, "unterminated '${' in value");
            break;
        }
        while (v + i + 2 + nlen < close && is_var_char(v[i + 2 + nlen], nlen == 0))
            nlen++;
        if (v + i + 2 + nlen < close) {
            const char *rest = v + i + 2 + nlen;
            if (close - rest >= 2 && rest[0] == ':' && rest[1] == '-') {
                def = rest + 2;
                deflen = (size_t)(close - def);
            } else {
                nlen = 0; /* not NAME or NAME:-default */
            }
        }
        if (nlen == 0 || nlen > LC_CONFIG_MAX_NAME) {
            snprintf(msg, sizeof(msg), "invalid variable reference '%.*s'",
                     (int)(close - (v + i) + 1 > 64 ? 64 : close - (v + i) + 1), v + i);
            rc = fail_key(L, n, -EINVAL, path, msg);
            break;
        }
        memcpy(name, v + i + 2, nlen);
        name[nlen] = '\0';
        env = getenv(name);
        if (def && (!env || !*env)) {
            rc = sbuf_put(&b, def, deflen);
        } else if (env) {
            rc = sbuf_put(&b, env, strlen(env));
        } else {
            snprintf(msg, sizeof(msg), "environment variable '%s' is not set", name);
            rc = fail_key(L, n, -EINVAL, path, msg);
            break;
        }
        i = (size_t)(close - v) + 1;
    }
    if (rc == -E2BIG)
        rc = fail_key(L, n, -E2BIG, path, "value too long after substitution");
    else if (rc == -ENOMEM)
        rc = fail_key(L, n, -ENOMEM, path, "out of memory");
    if (rc == 0) {
        L->expanded += b.n + 32;
        if (L->expanded > LC_CONFIG_MAX_EXPANDED)
            rc = fail_key(L, n, -E2BIG, path,
                          "the configuration expands to too many values (aliases?)");
    }
    if (rc == 0 && !b.p)
        b.p = strdup("");
    if (rc == 0 && !b.p)
        rc = fail_key(L, n, -ENOMEM, path, "out of memory");
    if (rc < 0) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    return 0;
}

/* A non-null scalar, substituted. */
static int scalar_value(struct lc_cfg_load *L, const yaml_node_t *n, const char *path,
                        const char *expect, char **out)
{
    char msg[96];

    if (n->type != YAML_SCALAR_NODE || is_null(n)) {
        snprintf(msg, sizeof(msg), "expected %s, got %s", expect, kind(n));
        return fail_key(L, n, -EINVAL, path, msg);
    }
    return subst(L, n, path, out);
}

static void format_limit(const struct lc_option *o, int64_t v, char *buf, size_t len)
{
    if (o->type == LC_OPT_SIZE)
        lc_format_size(v, buf, len);
    else if (o->type == LC_OPT_DURATION)
        lc_format_duration_ms(v, buf, len);
    else
        snprintf(buf, len, "%" PRId64, v);
}

static const char *type_expect(enum lc_opt_type t)
{
    switch (t) {
    case LC_OPT_INT:
        return "an integer";
    case LC_OPT_BOOL:
        return "a boolean";
    case LC_OPT_SIZE:
        return "a size";
    case LC_OPT_DURATION:
        return "a duration";
    case LC_OPT_ENUM:
        return "one of its values";
    case LC_OPT_STRLIST:
        return "a sequence of strings";
    case LC_OPT_MAP:
    case LC_OPT_SECTION:
        return "a mapping";
    case LC_OPT_SECLIST:
        return "a sequence of mappings";
    default:
        return "a string";
    }
}

/* The message for lc_option_set's answer to `value`. */
static void set_error(const struct lc_option *o, const char *value, int rc, char *msg, size_t len)
{
    char lo[32], hi[32];

    if (rc == -ERANGE && (o->min != 0 || o->max != 0)) {
        format_limit(o, o->min, lo, sizeof(lo));
        format_limit(o, o->max, hi, sizeof(hi));
        if (o->max == 0)
            snprintf(msg, len, "value '%.64s' out of range: must be at least %s", value, lo);
        else
            snprintf(msg, len, "value '%.64s' out of range: must be between %s and %s", value, lo,
                     hi);
        return;
    }
    if (rc == -ERANGE) {
        snprintf(msg, len, "value '%.64s' is too large", value);
        return;
    }
    switch (o->type) {
    case LC_OPT_INT:
        snprintf(msg, len, "invalid integer '%.64s'", value);
        break;
    case LC_OPT_BOOL:
        snprintf(msg, len, "invalid boolean '%.64s': expected true/false, yes/no or on/off", value);
        break;
    case LC_OPT_SIZE:
        snprintf(msg, len,
                 "invalid size '%.64s': expected a number and a unit B, KiB, MiB, GiB, TiB, KB, "
                 "MB, GB or TB",
                 value);
        break;
    case LC_OPT_DURATION:
        snprintf(msg, len,
                 "invalid duration '%.64s': expected a number and a unit ms, s, m, h or d "
                 "(e.g. 250ms, 1h30m)",
                 value);
        break;
    case LC_OPT_ENUM: {
        size_t used = (size_t)snprintf(msg, len, "invalid value '%.64s': expected one of ", value);
        for (int k = 0; o->choices && o->choices[k] && used < len; k++)
            used += (size_t)snprintf(msg + used, len - used, "%s%s", k ? ", " : "", o->choices[k]);
        break;
    }
    default:
        snprintf(msg, len, "%s", rc == -ENOMEM ? "out of memory" : "invalid value");
        break;
    }
}

static bool is_label_name(const char *s)
{
    if (!is_var_char(*s, true))
        return false;
    for (s++; *s; s++)
        if (!is_var_char(*s, false))
            return false;
    return true;
}

/* A sequence of scalars, or one scalar, into *out (replacing what it held). */
static int parse_strlist(struct lc_cfg_load *L, yaml_node_t *val, const char *path,
                         struct lc_strlist *out)
{
    struct lc_strlist l = {0};
    char msg[96];
    size_t n;
    int rc = 0;

    if (val->type == YAML_SCALAR_NODE && !is_null(val)) {
        l.v = calloc(1, sizeof(*l.v));
        if (!l.v)
            return fail_key(L, val, -ENOMEM, path, "out of memory");
        rc = subst(L, val, path, &l.v[0]);
        if (rc < 0)
            goto out_free_list;
        l.n = 1;
        goto out_swap;
    }
    if (val->type != YAML_SEQUENCE_NODE) {
        snprintf(msg, sizeof(msg), "expected a string or a sequence of strings, got %s", kind(val));
        return fail_key(L, val, -EINVAL, path, msg);
    }
    n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
    if (n > LC_CONFIG_MAX_LIST)
        return fail_key(L, val, -E2BIG, path, "too many items");
    if (n > 0) {
        l.v = calloc(n, sizeof(*l.v));
        if (!l.v)
            return fail_key(L, val, -ENOMEM, path, "out of memory");
    }
    for (size_t k = 0; k < n; k++) {
        yaml_node_t *item = node_at(L, val->data.sequence.items.start[k]);
        rc = scalar_value(L, item, path, "a string", &l.v[k]);
        if (rc < 0)
            goto out_free_list;
        l.n++;
    }
out_swap:
    lc_strlist_free(out);
    *out = l;
    return 0;
out_free_list:
    lc_strlist_free(&l);
    return rc;
}

static int apply_mapping(struct lc_cfg_load *L, const struct lc_option *table, void *conf,
                         yaml_node_t *map, const char *prefix, const char *const *skip);

/* A header written as a mapping: {value: "...", secret: true}. */
static const struct lc_option header_entry_options[] = {
    {LC_OPT_STR, "value", NULL, offsetof(struct lc_kv, value), .flags = LC_OPT_REQUIRED},
    {LC_OPT_BOOL, "secret", "false", offsetof(struct lc_kv, secret)},
    LC_OPT_END,
};

/*
 * A mapping of scalars to scalars into *out (replacing it); keys are taken as
 * written. With `headers`, a value may also be a header_entry_options mapping.
 */
static int parse_map(struct lc_cfg_load *L, yaml_node_t *val, const char *path, bool labels,
                     bool headers, struct lc_kvlist *out)
{
    struct lc_kvlist l = {0};
    char msg[LC_CONFIG_MAX_NAME + 96];
    size_t n;
    int rc = 0;

    if (val->type != YAML_MAPPING_NODE) {
        snprintf(msg, sizeof(msg), "expected a mapping, got %s", kind(val));
        return fail_key(L, val, -EINVAL, path, msg);
    }
    n = (size_t)(val->data.mapping.pairs.top - val->data.mapping.pairs.start);
    if (n > LC_CONFIG_MAX_ENTRIES)
        return fail_key(L, val, -E2BIG, path, "too many entries");
    if (n > 0) {
        l.v = calloc(n, sizeof(*l.v));
        if (!l.v)
            return fail_key(L, val, -ENOMEM, path, "out of memory");
    }
    for (size_t k = 0; k < n; k++) {
        yaml_node_pair_t *p = &val->data.mapping.pairs.start[k];
        yaml_node_t *kn = node_at(L, p->key), *vn = node_at(L, p->value);

        if (kn->type != YAML_SCALAR_NODE || is_null(kn) ||
            memchr(scalar(kn), '\0', kn->data.scalar.length)) {
            rc = fail_key(L, kn, -EINVAL, path, "keys must be non-empty strings");
            goto out_free_map;
        }
        for (size_t j = 0; j < l.n; j++) {
            if (strcmp(l.v[j].key, scalar(kn)) == 0) {
                snprintf(msg, sizeof(msg), "duplicate key '%.64s'", scalar(kn));
                rc = fail_key(L, kn, -EINVAL, path, msg);
                goto out_free_map;
            }
        }
        if (labels && !is_label_name(scalar(kn))) {
            snprintf(msg, sizeof(msg), "invalid label name '%.64s': use [a-zA-Z_][a-zA-Z0-9_]*",
                     scalar(kn));
            rc = fail_key(L, kn, -EINVAL, path, msg);
            goto out_free_map;
        }
        l.v[k].key = strdup(scalar(kn));
        if (!l.v[k].key) {
            rc = fail_key(L, kn, -ENOMEM, path, "out of memory");
            goto out_free_map;
        }
        l.n++;
        if (headers && vn->type == YAML_MAPPING_NODE) {
            char sub[LC_CONFIG_MAX_NAME + 64];
            snprintf(sub, sizeof(sub), "%s.%.64s", path, scalar(kn));
            rc = apply_mapping(L, header_entry_options, &l.v[k], vn, sub, NULL);
        } else {
            rc = scalar_value(L, vn, path, "a string", &l.v[k].value);
        }
        if (rc < 0)
            goto out_free_map;
    }
    lc_kvlist_free(out);
    *out = l;
    return 0;
out_free_map:
    lc_kvlist_free(&l);
    return rc;
}

/* Runs o->check on each item just parsed from val; an error points at the item. */
static int check_items(struct lc_cfg_load *L, const struct lc_option *o, void *conf,
                       yaml_node_t *val, const char *path)
{
    char msg[256];

    if (o->type == LC_OPT_MAP) {
        const struct lc_kvlist *l = (const struct lc_kvlist *)((char *)conf + o->offset);
        for (size_t k = 0; k < l->n; k++) {
            const char *why = o->check(l->v[k].key, l->v[k].value);
            if (why) {
                yaml_node_pair_t *p = &val->data.mapping.pairs.start[k];
                snprintf(msg, sizeof(msg), "'%.64s: %.64s': %s", l->v[k].key,
                         l->v[k].value ? l->v[k].value : "", why);
                return fail_key(L, node_at(L, p->key), -EINVAL, path, msg);
            }
        }
        return 0;
    }
    const struct lc_strlist *l = (const struct lc_strlist *)((char *)conf + o->offset);
    for (size_t k = 0; k < l->n; k++) {
        const char *why = o->check(NULL, l->v[k]);
        if (why) {
            yaml_node_t *item = val->type == YAML_SEQUENCE_NODE
                                    ? node_at(L, val->data.sequence.items.start[k])
                                    : val;
            snprintf(msg, sizeof(msg), "'%.64s': %s", l->v[k], why);
            return fail_key(L, item, -EINVAL, path, msg);
        }
    }
    return 0;
}

/* A sequence of mappings, each an item of o->size bytes filled from o->sub, then prepared. */
static int apply_seclist(struct lc_cfg_load *L, const struct lc_option *o, struct lc_seclist *l,
                         yaml_node_t *val, const char *path)
{
    char msg[320], ipath[300], err[256];
    size_t n;

    if (val->type != YAML_SEQUENCE_NODE) {
        snprintf(msg, sizeof(msg), "expected a sequence of mappings, got %s", kind(val));
        return fail_key(L, val, -EINVAL, path, msg);
    }
    n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
    if (o->max > 0 && n > (size_t)o->max) {
        snprintf(msg, sizeof(msg), "at most %" PRId64 " items, got %zu", o->max, n);
        return fail_key(L, val, -ERANGE, path, msg);
    }
    lc_seclist_free(o, l); /* a repeated key replaces */
    l->v = n ? calloc(n, o->size) : NULL;
    if (n && !l->v)
        return fail_key(L, val, -ENOMEM, path, "out of memory");
    for (size_t k = 0; k < n; k++) {
        yaml_node_t *item = node_at(L, val->data.sequence.items.start[k]);
        void *at = (char *)l->v + k * o->size;
        int rc = lc_options_defaults(o->sub, at);

        l->n = k + 1; /* freed with the rest on error */
        snprintf(ipath, sizeof(ipath), "%s[%zu]", path, k);
        if (rc < 0)
            return fail_key(L, item, rc, ipath, "out of memory");
        if (item->type != YAML_MAPPING_NODE) {
            snprintf(msg, sizeof(msg), "expected a mapping, got %s", kind(item));
            return fail_key(L, item, -EINVAL, ipath, msg);
        }
        if ((rc = apply_mapping(L, o->sub, at, item, ipath, NULL)) < 0)
            return rc;
        if (o->prepare && (rc = o->prepare(at, err, sizeof(err))) < 0)
            return fail_key(L, item, rc, ipath, err);
    }
    return 0;
}

static int apply_option(struct lc_cfg_load *L, const struct lc_option *o, void *conf,
                        yaml_node_t *val, const char *path)
{
    char *text = NULL;
    char msg[256];
    int rc;

    switch (o->type) {
    case LC_OPT_STRLIST:
        rc = parse_strlist(L, val, path, (struct lc_strlist *)((char *)conf + o->offset));
        return rc < 0 || !o->check ? rc : check_items(L, o, conf, val, path);
    case LC_OPT_MAP:
        rc = parse_map(L, val, path, false, (o->flags & LC_OPT_HEADERS) != 0,
                       (struct lc_kvlist *)((char *)conf + o->offset));
        return rc < 0 || !o->check ? rc : check_items(L, o, conf, val, path);
    case LC_OPT_SECTION:
        if (val->type != YAML_MAPPING_NODE) {
            snprintf(msg, sizeof(msg), "expected a mapping, got %s", kind(val));
            return fail_key(L, val, -EINVAL, path, msg);
        }
        return apply_mapping(L, o->sub, (char *)conf + o->offset, val, path, NULL);
    case LC_OPT_SECLIST:
        return apply_seclist(L, o, (struct lc_seclist *)((char *)conf + o->offset), val, path);
    default:
        break;
    }
    rc = scalar_value(L, val, path, type_expect(o->type), &text);
    if (rc < 0)
        return rc;
    rc = lc_option_set(o, conf, text);
    if (rc < 0) {
        set_error(o, text, rc, msg, sizeof(msg));
        rc = fail_key(L, val, rc, path, msg);
    } else if (o->check && o->check(NULL, text)) {
        snprintf(msg, sizeof(msg), "invalid value '%.64s': %s", text, o->check(NULL, text));
        rc = fail_key(L, val, -EINVAL, path, msg);
    }
    free(text);
    return rc;
}

static bool in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

/* A mapping key must be a plain string; non-scalar keys are errors. */
static int check_key(struct lc_cfg_load *L, yaml_node_t *kn)
{
    if (kn->type != YAML_SCALAR_NODE || is_null(kn))
        return fail(L, kn, -EINVAL, "expected a key, got %s", kind(kn));
    return 0;
}

/*
 * Applies every pair of `map` to `conf` through `table`, except keys in `skip`
 * (which the caller handles). Unknown and repeated keys are errors; then every
 * LC_OPT_REQUIRED row must have been seen.
 */
static int apply_mapping(struct lc_cfg_load *L, const struct lc_option *table, void *conf,
                         yaml_node_t *map, const char *prefix, const char *const *skip)
{
    size_t nrows = 0;
    bool *seen;
    int rc = 0;

    for (const struct lc_option *o = table; o && o->key; o++)
        nrows++;
    seen = calloc(nrows + 1, sizeof(*seen));
    if (!seen)
        return fail(L, map, -ENOMEM, "out of memory");
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = node_at(L, p->key), *vn = node_at(L, p->value);
        const char *key;
        char path[256];
        size_t row = 0;

        rc = check_key(L, kn);
        if (rc < 0)
            goto out_free_seen;
        key = scalar(kn);
        if (in_list(skip, key))
            continue;
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", key);
        while (row < nrows && strcmp(table[row].key, key) != 0)
            row++;
        if (row == nrows) {
            rc = fail(L, kn, -EINVAL, "unknown key '%.64s'%s%s", path, L->owner[0] ? " in " : "",
                      L->owner);
            goto out_free_seen;
        }
        if (seen[row]) {
            rc = fail(L, kn, -EINVAL, "duplicate key '%s'%s%s", path, L->owner[0] ? " in " : "",
                      L->owner);
            goto out_free_seen;
        }
        seen[row] = true;
        rc = apply_option(L, &table[row], conf, vn, path);
        if (rc < 0)
            goto out_free_seen;
    }
    for (size_t row = 0; row < nrows; row++) {
        if (!seen[row] && (table[row].flags & LC_OPT_REQUIRED)) {
            rc = fail(L, map, -EINVAL, "missing required key '%s%s%s'%s%s", prefix,
                      *prefix ? "." : "", table[row].key, L->owner[0] ? " in " : "", L->owner);
            goto out_free_seen;
        }
    }
out_free_seen:
    free(seen);
    return rc;
}

/* The value nodes of `keys` in `map` (0 when absent); a repeated key is an error. */
static int find_keys(struct lc_cfg_load *L, yaml_node_t *map, const char *const *keys,
                     yaml_node_t **vals)
{
    for (size_t k = 0; keys[k]; k++)
        vals[k] = NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = node_at(L, p->key);
        int rc = check_key(L, kn);

        if (rc < 0)
            return rc;
        for (size_t k = 0; keys[k]; k++) {
            if (strcmp(scalar(kn), keys[k]) != 0)
                continue;
            if (vals[k])
                return fail(L, kn, -EINVAL, "duplicate key '%s'%s%s", keys[k],
                            L->owner[0] ? " in " : "", L->owner);
            vals[k] = node_at(L, p->value);
        }
    }
    return 0;
}

/* type and name of an entry; on success *type and *name are owned by the caller. */
static int entry_type_name(struct lc_cfg_load *L, yaml_node_t *entry, const char *what, size_t idx,
                           yaml_node_t *type_v, yaml_node_t *name_v, char **type, char **name)
{
    char msg[LC_CONFIG_MAX_NAME + 96];
    int rc;

    snprintf(L->owner, sizeof(L->owner), "%s #%zu", what, idx + 1);
    snprintf(L->whose, sizeof(L->whose), "%s #%zu", what, idx + 1);
    if (!type_v)
        return fail(L, entry, -EINVAL, "missing required key 'type' in %s", L->owner);
    /* `type: null` means the null output, not YAML's null: nobody writes the quotes. */
    if (type_v->type == YAML_SCALAR_NODE && strcmp(scalar(type_v), "null") == 0)
        rc = (*type = strdup("null")) ? 0 : -ENOMEM;
    else
        rc = scalar_value(L, type_v, "type", "a string", type);
    if (rc < 0)
        return rc;
    snprintf(L->owner, sizeof(L->owner), "%s #%zu (type %.64s)", what, idx + 1, *type);
    if (!name_v)
        return fail(L, entry, -EINVAL, "missing required key 'name' in %s", L->owner);
    rc = scalar_value(L, name_v, "name", "a string", name);
    if (rc < 0)
        return rc;
    if (strlen(*name) > LC_CONFIG_MAX_NAME ||
        (*name)[strspn(*name, "abcdefghijklmnopqrstuvwxyz"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "0123456789_.-")] != '\0' ||
        !**name) {
        snprintf(msg, sizeof(msg),
                 "invalid name '%.64s': use 1 to %d letters, digits, '_', '.' or '-'", *name,
                 LC_CONFIG_MAX_NAME);
        return fail_key(L, name_v, -EINVAL, "name", msg);
    }
    return 0;
}

/* What lc_options_defaults' failure means: a bug in a table, or memory. */
static const char *default_error(int rc)
{
    return rc == -ENOMEM ? "out of memory applying the defaults"
                         : "invalid default in the option table";
}

static void set_owner(struct lc_cfg_load *L, const char *what, const char *name, const char *type)
{
    snprintf(L->owner, sizeof(L->owner), "%s '%s' (type %.64s)", what, name, type);
    snprintf(L->whose, sizeof(L->whose), "%s '%s'", what, name);
}

/* The value node of `key` in mapping `map`, or map itself when absent. */
static yaml_node_t *value_of(struct lc_cfg_load *L, yaml_node_t *map, const char *key)
{
    if (!key || map->type != YAML_MAPPING_NODE)
        return map;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = node_at(L, p->key);
        if (kn->type == YAML_SCALAR_NODE && strcmp(scalar(kn), key) == 0)
            return node_at(L, p->value);
    }
    return map;
}

/* One stage: a mapping of one key, the stage's type, to its options (a mapping, or nothing). */
static int load_stage(struct lc_cfg_load *L, yaml_node_t *item, size_t k, const char *whose,
                      struct lc_stage_conf *sc)
{
    yaml_node_t empty = {.type = YAML_MAPPING_NODE};
    yaml_node_t *kn, *vn;
    const char *bad_key = NULL;
    char path[LC_CONFIG_MAX_NAME + 64], err[256];
    int rc;

    if (item->type != YAML_MAPPING_NODE ||
        item->data.mapping.pairs.top - item->data.mapping.pairs.start != 1)
        return fail(L, item, -EINVAL,
                    "expected a stage, a mapping of one key (the stage type) to its options, "
                    "got %s (stage #%zu of %s)",
                    kind(item), k + 1, whose);
    kn = node_at(L, item->data.mapping.pairs.start[0].key);
    vn = node_at(L, item->data.mapping.pairs.start[0].value);
    rc = check_key(L, kn);
    if (rc < 0)
        return rc;
    sc->type = strdup(scalar(kn));
    if (!sc->type)
        return fail(L, kn, -ENOMEM, "out of memory");
    sc->plugin = lc_stage_plugin_find(sc->type);
    if (!sc->plugin)
        return fail(L, kn, -EINVAL, "unknown stage type '%.64s' (stage #%zu of %s)", sc->type,
                    k + 1, whose);
    empty.start_mark = kn->start_mark;
    if (is_null(vn))
        vn = &empty;
    else if (vn->type != YAML_MAPPING_NODE)
        return fail(L, vn, -EINVAL, "expected the options of stage '%s' as a mapping, got %s",
                    sc->type, kind(vn));
    snprintf(L->owner, sizeof(L->owner), "stage #%zu (%.32s) of %.*s", k + 1, sc->type,
             LC_CONFIG_MAX_NAME + 16, whose);
    snprintf(path, sizeof(path), "process[%zu].%s", k, sc->type);
    if (sc->plugin->conf_size) {
        sc->conf = calloc(1, sc->plugin->conf_size);
        if (!sc->conf)
            return fail(L, kn, -ENOMEM, "out of memory");
        rc = lc_options_defaults(sc->plugin->options, sc->conf);
        if (rc < 0)
            return fail(L, kn, rc, "%s of stage '%s'", default_error(rc), sc->type);
    }
    rc = apply_mapping(L, sc->plugin->options, sc->conf, vn, path, NULL);
    if (rc < 0)
        return rc;
    if (!sc->plugin->prepare)
        return 0;
    err[0] = '\0';
    rc = sc->plugin->prepare(sc->conf, &bad_key, err, sizeof(err));
    if (rc < 0) {
        yaml_node_t *at = value_of(L, vn, bad_key);
        if (at == &empty)
            at = kn;
        return fail(L, at, rc, "%s (key '%s%s%s' in %s)", err, path, bad_key ? "." : "",
                    bad_key ? bad_key : "", L->owner);
    }
    return 0;
}

/* A sequence of stages into pc. */
static int load_process(struct lc_cfg_load *L, yaml_node_t *seq, const char *whose,
                        struct lc_process_conf *pc)
{
    size_t n;

    if (seq->type != YAML_SEQUENCE_NODE)
        return fail(L, seq, -EINVAL, "expected a sequence of stages, got %s (key 'process' of %s)",
                    kind(seq), whose);
    n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n > LC_CONFIG_MAX_STAGES)
        return fail(L, seq, -E2BIG, "more than %d stages in %s", LC_CONFIG_MAX_STAGES, whose);
    if (n == 0)
        return 0;
    pc->stages = calloc(n, sizeof(*pc->stages));
    if (!pc->stages)
        return fail(L, seq, -ENOMEM, "out of memory");
    for (size_t k = 0; k < n; k++) {
        int rc;
        pc->n++;
        rc = load_stage(L, node_at(L, seq->data.sequence.items.start[k]), k, whose, &pc->stages[k]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Top-level `processes:`: a mapping of names to lists of stages. */
static int load_processes(struct lc_cfg_load *L, yaml_node_t *map)
{
    size_t n;

    L->owner[0] = '\0';
    L->whose[0] = '\0';
    if (!map)
        return 0;
    if (map->type != YAML_MAPPING_NODE)
        return fail(L, map, -EINVAL,
                    "expected a mapping of names to lists of stages, got %s "
                    "(key 'processes')",
                    kind(map));
    n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    if (n > LC_CONFIG_MAX_ENTRIES)
        return fail(L, map, -E2BIG, "too many entries (key 'processes')");
    if (n == 0)
        return 0;
    L->cfg->processes = calloc(n, sizeof(*L->cfg->processes));
    if (!L->cfg->processes)
        return fail(L, map, -ENOMEM, "out of memory");
    for (size_t k = 0; k < n; k++) {
        yaml_node_pair_t *p = &map->data.mapping.pairs.start[k];
        yaml_node_t *kn = node_at(L, p->key);
        struct lc_process_conf *pc = &L->cfg->processes[k];
        char whose[LC_CONFIG_MAX_NAME + 32];
        int rc = check_key(L, kn);

        if (rc < 0)
            return rc;
        for (size_t j = 0; j < k; j++)
            if (strcmp(L->cfg->processes[j].name, scalar(kn)) == 0)
                return fail(L, kn, -EINVAL, "duplicate key '%.64s' (key 'processes')", scalar(kn));
        L->cfg->nprocesses++;
        pc->name = strdup(scalar(kn));
        if (!pc->name)
            return fail(L, kn, -ENOMEM, "out of memory");
        snprintf(whose, sizeof(whose), "processes.%.*s", LC_CONFIG_MAX_NAME, pc->name);
        rc = load_process(L, node_at(L, p->value), whose, pc);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* An input's `process:`: a list of stages, or the name of one under `processes:`. */
static int input_process(struct lc_cfg_load *L, struct lc_input_conf *ic, yaml_node_t *v)
{
    char whose[LC_CONFIG_MAX_NAME + 32];

    if (v->type == YAML_SCALAR_NODE && !is_null(v)) {
        for (size_t k = 0; k < L->cfg->nprocesses; k++) {
            if (strcmp(L->cfg->processes[k].name, scalar(v)) == 0) {
                ic->process = &L->cfg->processes[k];
                return 0;
            }
        }
        return fail(L, v, -EINVAL,
                    "unknown process list '%.64s' (key 'process' in input '%s'; define it "
                    "under the top-level 'processes:')",
                    scalar(v), ic->name);
    }
    snprintf(whose, sizeof(whose), "input '%.*s'", LC_CONFIG_MAX_NAME, ic->name);
    ic->process = &ic->own_process;
    return load_process(L, v, whose, &ic->own_process);
}

static int load_input(struct lc_cfg_load *L, yaml_node_t *entry, size_t idx)
{
    struct lc_input_conf *ic = &L->cfg->inputs[idx];
    yaml_node_t *v[6];
    int rc;

    snprintf(L->owner, sizeof(L->owner), "input #%zu", idx + 1);
    L->whose[0] = '\0';
    if (entry->type != YAML_MAPPING_NODE)
        return fail(L, entry, -EINVAL, "expected a mapping for input #%zu, got %s", idx + 1,
                    kind(entry));
    rc = find_keys(L, entry, lc_input_common, v);
    if (rc < 0)
        return rc;
    rc = entry_type_name(L, entry, "input", idx, v[0], v[1], &ic->type, &ic->name);
    if (rc < 0)
        return rc;
    ic->plugin = lc_config_input_lookup(ic->type);
    if (!ic->plugin)
        return fail(L, v[0], -EINVAL, "unknown input type '%.64s' (key 'type' in input #%zu)",
                    ic->type, idx + 1);
    L->in_name_node[idx] = p_index(L, v[1]);
    for (size_t k = 0; k < idx; k++) {
        if (strcmp(L->cfg->inputs[k].name, ic->name) == 0) {
            yaml_node_t *first = node_at(L, L->in_name_node[k]);
            return fail(L, v[1], -EINVAL,
                        "duplicate input name '%s', first used at line %zu (key 'name')", ic->name,
                        first->start_mark.line + 1);
        }
    }
    set_owner(L, "input", ic->name, ic->type);
    if (v[2]) {
        rc = parse_strlist(L, v[2], "outputs", &ic->outputs);
        if (rc < 0)
            return rc;
        L->in_outputs_node[idx] = p_index(L, v[2]);
    }
    if (v[3]) {
        rc = parse_map(L, v[3], "labels", true, false, &ic->labels);
        if (rc < 0)
            return rc;
    }
    if (v[4]) {
        rc = input_process(L, ic, v[4]);
        if (rc < 0)
            return rc;
        set_owner(L, "input", ic->name, ic->type);
    }
    if (ic->plugin->options && ic->plugin->options[0].key && ic->plugin->conf_size == 0)
        return fail(L, entry, -EINVAL, "input type '%s' has options but no conf_size", ic->type);
    if (ic->plugin->conf_size > 0) {
        ic->conf = calloc(1, ic->plugin->conf_size);
        if (!ic->conf)
            return fail(L, entry, -ENOMEM, "out of memory");
        rc = lc_options_defaults(ic->plugin->options, ic->conf);
        if (rc < 0)
            return fail(L, entry, rc, "%s of input type '%s'", default_error(rc), ic->type);
    }
    return apply_mapping(L, ic->plugin->options, ic->conf, entry, "", lc_input_common);
}

static int load_output(struct lc_cfg_load *L, yaml_node_t *entry, size_t idx)
{
    struct lc_output_conf *oc = &L->cfg->outputs[idx];
    yaml_node_t *v[4];
    int rc;

    snprintf(L->owner, sizeof(L->owner), "output #%zu", idx + 1);
    L->whose[0] = '\0';
    if (entry->type != YAML_MAPPING_NODE)
        return fail(L, entry, -EINVAL, "expected a mapping for output #%zu, got %s", idx + 1,
                    kind(entry));
    rc = find_keys(L, entry, lc_output_common, v);
    if (rc < 0)
        return rc;
    rc = entry_type_name(L, entry, "output", idx, v[0], v[1], &oc->type, &oc->name);
    if (rc < 0)
        return rc;
    oc->plugin = lc_config_output_lookup(oc->type);
    if (!oc->plugin)
        return fail(L, v[0], -EINVAL, "unknown output type '%.64s' (key 'type' in output #%zu)",
                    oc->type, idx + 1);
    L->out_name_node[idx] = p_index(L, v[1]);
    for (size_t k = 0; k < idx; k++) {
        if (strcmp(L->cfg->outputs[k].name, oc->name) == 0) {
            yaml_node_t *first = node_at(L, L->out_name_node[k]);
            return fail(L, v[1], -EINVAL,
                        "duplicate output name '%s', first used at line %zu (key 'name')", oc->name,
                        first->start_mark.line + 1);
        }
    }
    set_owner(L, "output", oc->name, oc->type);
    if (v[2]) {
        rc = parse_map(L, v[2], "labels", true, false, &oc->labels);
        if (rc < 0)
            return rc;
    }
    if (oc->plugin->options && oc->plugin->options[0].key && oc->plugin->conf_size == 0)
        return fail(L, entry, -EINVAL, "output type '%s' has options but no conf_size", oc->type);
    if (oc->plugin->conf_size > 0) {
        oc->conf = calloc(1, oc->plugin->conf_size);
        if (!oc->conf)
            return fail(L, entry, -ENOMEM, "out of memory");
        rc = lc_options_defaults(oc->plugin->options, oc->conf);
        if (rc < 0)
            return fail(L, entry, rc, "%s of output type '%s'", default_error(rc), oc->type);
    }
    return apply_mapping(L, oc->plugin->options, oc->conf, entry, "", lc_output_common);
}

/* `inputs:` or `outputs:`: a non-empty sequence of entries. */
static int load_entries(struct lc_cfg_load *L, yaml_node_t *root, yaml_node_t *seq, bool inputs)
{
    const char *key = inputs ? "inputs" : "outputs";
    size_t n = 0;
    int rc;

    L->owner[0] = '\0';
    L->whose[0] = '\0';
    if (!seq)
        return fail(L, root, -EINVAL, "no %s configured (key '%s')", key, key);
    if (seq->type == YAML_SEQUENCE_NODE)
        n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    else if (!is_null(seq))
        return fail(L, seq, -EINVAL, "expected a sequence, got %s (key '%s')", kind(seq), key);
    if (n == 0)
        return fail(L, seq, -EINVAL, "no %s configured (key '%s')", key, key);
    if (n > LC_CONFIG_MAX_ENTRIES)
        return fail(L, seq, -E2BIG, "more than %d %s (key '%s')", LC_CONFIG_MAX_ENTRIES, key, key);
    if (inputs) {
        L->cfg->inputs = calloc(n, sizeof(*L->cfg->inputs));
        L->in_name_node = calloc(n, sizeof(int));
        L->in_outputs_node = calloc(n, sizeof(int));
        if (!L->cfg->inputs || !L->in_name_node || !L->in_outputs_node)
            return fail(L, seq, -ENOMEM, "out of memory");
        L->cfg->ninputs = n;
    } else {
        L->cfg->outputs = calloc(n, sizeof(*L->cfg->outputs));
        L->out_name_node = calloc(n, sizeof(int));
        if (!L->cfg->outputs || !L->out_name_node)
            return fail(L, seq, -ENOMEM, "out of memory");
        L->cfg->noutputs = n;
    }
    for (size_t k = 0; k < n; k++) {
        yaml_node_t *entry = node_at(L, seq->data.sequence.items.start[k]);
        rc = inputs ? load_input(L, entry, k) : load_output(L, entry, k);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Every name in an input's `outputs:` list must be an output, once. */
static int check_routes(struct lc_cfg_load *L)
{
    for (size_t i = 0; i < L->cfg->ninputs; i++) {
        const struct lc_input_conf *ic = &L->cfg->inputs[i];
        yaml_node_t *list;

        if (!L->in_outputs_node[i])
            continue;
        list = node_at(L, L->in_outputs_node[i]);
        set_owner(L, "input", ic->name, ic->type);
        for (size_t k = 0; k < ic->outputs.n; k++) {
            yaml_node_t *item = list->type == YAML_SEQUENCE_NODE
                                    ? node_at(L, list->data.sequence.items.start[k])
                                    : list;
            char msg[LC_CONFIG_MAX_NAME + 64];
            size_t o = 0;

            while (o < L->cfg->noutputs && strcmp(L->cfg->outputs[o].name, ic->outputs.v[k]) != 0)
                o++;
            if (o == L->cfg->noutputs) {
                snprintf(msg, sizeof(msg), "unknown output '%.64s'", ic->outputs.v[k]);
                return fail_key(L, item, -EINVAL, "outputs", msg);
            }
            for (size_t j = 0; j < k; j++) {
                if (strcmp(ic->outputs.v[j], ic->outputs.v[k]) == 0) {
                    snprintf(msg, sizeof(msg), "output '%.64s' listed twice", ic->outputs.v[k]);
                    return fail_key(L, item, -EINVAL, "outputs", msg);
                }
            }
        }
    }
    return 0;
}

/* Checks of top-level values that a table row cannot express. */
static int check_top(struct lc_cfg_load *L, yaml_node_t *root)
{
    static const char *const keys[] = {"state_dir", "listen", NULL};
    const struct lc_config *cfg = L->cfg;
    yaml_node_t *v[2];
    int rc;

    L->owner[0] = '\0';
    L->whose[0] = '\0';
    rc = find_keys(L, root, keys, v);
    if (rc < 0)
        return rc;
    if (!cfg->state_dir[0])
        return fail_key(L, v[0] ? v[0] : root, -EINVAL, "state_dir", "must not be empty");
    if (cfg->listen[0] && strcmp(cfg->listen, "off") != 0) {
        const char *colon = strrchr(cfg->listen, ':');
        char *end = NULL;
        long port = colon ? strtol(colon + 1, &end, 10) : 0;

        if (!colon || colon == cfg->listen || !colon[1] || *end || port < 1 || port > 65535)
            return fail_key(L, v[1] ? v[1] : root, -EINVAL, "listen",
                            "expected HOST:PORT (port 1-65535), \"off\" or \"\"");
    }
    return 0;
}

/* Where the reader (not the scanner) failed: libyaml gives only a byte offset. */
static yaml_mark_t mark_of_offset(const struct lc_cfg_load *L, size_t off)
{
    yaml_mark_t m = {0};

    for (size_t k = 0; k < off && k < L->len; k++) {
        if (L->text[k] == '\n') {
            m.line++;
            m.column = 0;
        } else {
            m.column++;
        }
    }
    return m;
}

static int syntax_error(struct lc_cfg_load *L, yaml_parser_t *parser)
{
    yaml_mark_t m = parser->problem_mark;

    /* libyaml's loader fails some allocations without setting an error */
    if (parser->error == YAML_MEMORY_ERROR || parser->error == YAML_NO_ERROR)
        return fail_mark(L, m, -ENOMEM, "out of memory");
    if (parser->error == YAML_READER_ERROR)
        m = mark_of_offset(L, parser->problem_offset);
    return fail_mark(L, m, -EINVAL, "YAML syntax error: %s%s%s",
                     parser->problem ? parser->problem : "unknown", parser->context ? " " : "",
                     parser->context ? parser->context : "");
}

/* Parses L->text into L->doc: exactly one document. */
static int parse_document(struct lc_cfg_load *L)
{
    yaml_parser_t parser;
    yaml_document_t extra;
    int rc = 0;

    if (!yaml_parser_initialize(&parser))
        return fail_mark(L, (yaml_mark_t){0}, -ENOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)L->text, L->len);
    if (!yaml_parser_load(&parser, &L->doc)) {
        rc = syntax_error(L, &parser);
        goto out_delete_parser;
    }
    L->have_doc = true;
    if (!yaml_parser_load(&parser, &extra)) {
        rc = syntax_error(L, &parser);
        goto out_delete_parser;
    }
    if (yaml_document_get_root_node(&extra)) {
        rc = fail_mark(L, yaml_document_get_root_node(&extra)->start_mark, -EINVAL,
                       "only one YAML document is allowed");
    }
    yaml_document_delete(&extra);
out_delete_parser:
    yaml_parser_delete(&parser);
    return rc;
}

static int load(struct lc_cfg_load *L)
{
    static const yaml_mark_t start = {0};
    yaml_node_t *root, *lists[3];
    int rc;

    rc = parse_document(L);
    if (rc < 0)
        return rc;
    root = yaml_document_get_root_node(&L->doc);
    if (!root || is_null(root))
        return fail_mark(L, start, -EINVAL, "the configuration is empty");
    if (root->type != YAML_MAPPING_NODE)
        return fail(L, root, -EINVAL, "expected a mapping at the top level, got %s", kind(root));
    rc = lc_options_defaults(lc_config_options, L->cfg);
    if (rc < 0)
        return fail_mark(L, start, rc, "%s of the top level", default_error(rc));
    rc = find_keys(L, root, lc_root_special, lists);
    if (rc < 0)
        return rc;
    rc = apply_mapping(L, lc_config_options, L->cfg, root, "", lc_root_special);
    if (rc < 0)
        return rc;
    rc = check_top(L, root);
    if (rc < 0)
        return rc;
    rc = load_processes(L, lists[2]); /* before the inputs, which name them */
    if (rc < 0)
        return rc;
    /* in file order, so that the first error reported is the first in the file */
    if (lists[0] && lists[1] && lists[1]->start_mark.index < lists[0]->start_mark.index) {
        rc = load_entries(L, root, lists[1], false);
        if (rc == 0)
            rc = load_entries(L, root, lists[0], true);
    } else {
        rc = load_entries(L, root, lists[0], true);
        if (rc == 0)
            rc = load_entries(L, root, lists[1], false);
    }
    if (rc < 0)
        return rc;
    return check_routes(L);
}

int lc_config_load_string(const char *yaml, const char *name, struct lc_config **out, char *err,
                          size_t errlen)
{
    struct lc_cfg_load L = {
        .file = name ? name : "<string>",
        .text = yaml,
        .len = yaml ? strlen(yaml) : 0,
        .err = err,
        .errlen = errlen,
    };
    int rc;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    L.cfg = calloc(1, sizeof(*L.cfg));
    if (!L.cfg)
        return fail_mark(&L, (yaml_mark_t){0}, -ENOMEM, "out of memory");
    L.cfg->source = strdup(L.file);
    if (!L.cfg->source) {
        rc = fail_mark(&L, (yaml_mark_t){0}, -ENOMEM, "out of memory");
        goto out_free;
    }
    if (L.len > LC_CONFIG_MAX_BYTES) {
        rc = fail_mark(&L, (yaml_mark_t){0}, -EFBIG, "larger than %d bytes", LC_CONFIG_MAX_BYTES);
        goto out_free;
    }
    rc = load(&L);
out_free:
    if (L.have_doc)
        yaml_document_delete(&L.doc);
    free(L.in_name_node);
    free(L.in_outputs_node);
    free(L.out_name_node);
    if (rc < 0) {
        lc_config_free(L.cfg);
        return rc;
    }
    *out = L.cfg;
    return 0;
}

int lc_config_load_file(const char *path, struct lc_config **out, char *err, size_t errlen)
{
    FILE *f;
    char *text;
    size_t n;
    int rc;

    *out = NULL;
    f = fopen(path, "rb");
    if (!f) {
        rc = -errno;
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    text = malloc(LC_CONFIG_MAX_BYTES + 1);
    if (!text) {
        rc = -ENOMEM;
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", path);
        goto out_close;
    }
    n = fread(text, 1, LC_CONFIG_MAX_BYTES + 1, f);
    if (ferror(f)) {
        rc = -EIO;
        if (err && errlen)
            snprintf(err, errlen, "%s: read error", path);
        goto out_free_text;
    }
    if (n > LC_CONFIG_MAX_BYTES) {
        rc = -EFBIG;
        if (err && errlen)
            snprintf(err, errlen, "%s: larger than %d bytes", path, LC_CONFIG_MAX_BYTES);
        goto out_free_text;
    }
    if (memchr(text, '\0', n)) {
        rc = -EINVAL;
        if (err && errlen)
            snprintf(err, errlen, "%s: contains a NUL byte (not a text file)", path);
        goto out_free_text;
    }
    text[n] = '\0';
    rc = lc_config_load_string(text, path, out, err, errlen);
out_free_text:
    free(text);
out_close:
    fclose(f);
    return rc;
}

void lc_process_conf_free(struct lc_process_conf *pc)
{
    for (size_t k = 0; k < pc->n; k++) {
        struct lc_stage_conf *sc = &pc->stages[k];
        if (sc->plugin && sc->conf) {
            if (sc->plugin->conf_free)
                sc->plugin->conf_free(sc->conf);
            lc_options_free(sc->plugin->options, sc->conf);
        }
        free(sc->conf);
        free(sc->type);
    }
    free(pc->stages);
    free(pc->name);
    pc->stages = NULL;
    pc->name = NULL;
    pc->n = 0;
}

void lc_config_free(struct lc_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->promtail_positions);
    for (size_t k = 0; k < cfg->ninputs; k++) {
        struct lc_input_conf *ic = &cfg->inputs[k];
        if (ic->plugin)
            lc_options_free(ic->plugin->options, ic->conf);
        free(ic->conf);
        free(ic->type);
        free(ic->name);
        lc_strlist_free(&ic->outputs);
        lc_kvlist_free(&ic->labels);
        lc_process_conf_free(&ic->own_process);
    }
    free(cfg->inputs);
    for (size_t k = 0; k < cfg->nprocesses; k++)
        lc_process_conf_free(&cfg->processes[k]);
    free(cfg->processes);
    for (size_t k = 0; k < cfg->noutputs; k++) {
        struct lc_output_conf *oc = &cfg->outputs[k];
        if (oc->plugin)
            lc_options_free(oc->plugin->options, oc->conf);
        free(oc->conf);
        free(oc->type);
        free(oc->name);
        lc_kvlist_free(&oc->labels);
    }
    free(cfg->outputs);
    lc_options_free(lc_config_options, cfg);
    free(cfg->source);
    free(cfg);
}

/*
 * Writes s as a YAML double-quoted scalar that loads back to s: escapes, and
 * "${" written as "$${" so that reloading does not substitute it.
 */
static void print_quoted(const char *s, FILE *f)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else if (c == '$' && s[1] == '{')
            fputs("$$", f);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* print_quoted after the redaction rule (core/redact.h): URL userinfo, tokens in text. */
static void print_redacted(const char *s, FILE *f)
{
    size_t len = strlen(s);
    size_t cap = len * 3 + 1; /* a mask of 3 bytes replaces at least 1 */
    char *r = malloc(cap);

    if (!r) {
        print_quoted(LC_REDACTED, f);
        return;
    }
    lc_redact_text(s, len, r, cap);
    print_quoted(r, f);
    free(r);
}

static void print_strlist(const struct lc_strlist *l, FILE *f)
{
    fputc('[', f);
    for (size_t k = 0; k < l->n; k++) {
        if (k)
            fputs(", ", f);
        print_redacted(l->v[k], f);
    }
    fputc(']', f);
}

/* headers: the map's keys are header names (LC_OPT_HEADERS); credentials are masked whole. */
static void print_map(const struct lc_kvlist *l, bool headers, FILE *f)
{
    fputc('{', f);
    for (size_t k = 0; k < l->n; k++) {
        const struct lc_kv *kv = &l->v[k];
        if (k)
            fputs(", ", f);
        print_quoted(kv->key, f);
        fputs(": ", f);
        if (kv->secret || (headers && lc_redact_header_is_secret(kv->key)))
            print_quoted(LC_REDACTED, f);
        else
            print_redacted(kv->value, f);
    }
    fputc('}', f);
}

/* One "key: value" line per option of `table`, sections as nested mappings. */
static void print_values(const struct lc_option *table, const void *conf, int indent, FILE *f)
{
    for (const struct lc_option *o = table; o && o->key; o++) {
        const char *at = (const char *)conf + o->offset;
        bool secret = (o->flags & LC_OPT_SECRET) != 0;
        char buf[64];

        if (o->type == LC_OPT_STR && !*(char *const *)at)
            continue; /* unset, and no default */
        if (o->type == LC_OPT_SECLIST && ((const struct lc_seclist *)at)->n == 0)
            continue;
        fprintf(f, "%*s%s:", indent, "", o->key);
        if (o->type == LC_OPT_SECTION) {
            fputc('\n', f);
            print_values(o->sub, at, indent + 2, f);
            continue;
        }
        if (o->type == LC_OPT_SECLIST) {
            const struct lc_seclist *l = (const struct lc_seclist *)at;
            fputc('\n', f);
            for (size_t k = 0; k < l->n; k++) {
                fprintf(f, "%*s-\n", indent + 2, "");
                print_values(o->sub, (const char *)l->v + k * o->size, indent + 4, f);
            }
            continue;
        }
        fputc(' ', f);
        if (secret) {
            print_quoted(LC_REDACTED, f);
            fputc('\n', f);
            continue;
        }
        switch (o->type) {
        case LC_OPT_STR:
            if (o->flags & LC_OPT_VERBATIM)
                print_quoted(*(char *const *)at, f);
            else
                print_redacted(*(char *const *)at, f);
            break;
        case LC_OPT_INT:
            fprintf(f, "%" PRId64, *(const int64_t *)at);
            break;
        case LC_OPT_BOOL:
            fputs(*(const bool *)at ? "true" : "false", f);
            break;
        case LC_OPT_SIZE:
            lc_format_size(*(const int64_t *)at, buf, sizeof(buf));
            fputs(buf, f);
            break;
        case LC_OPT_DURATION:
            lc_format_duration_ms(*(const int64_t *)at, buf, sizeof(buf));
            fputs(buf, f);
            break;
        case LC_OPT_ENUM: {
            int idx = *(const int *)at;
            fputs(o->choices && idx >= 0 ? o->choices[idx] : "?", f);
            break;
        }
        case LC_OPT_STRLIST:
            print_strlist((const struct lc_strlist *)at, f);
            break;
        case LC_OPT_MAP:
            print_map((const struct lc_kvlist *)at, (o->flags & LC_OPT_HEADERS) != 0, f);
            break;
        default:
            break;
        }
        fputc('\n', f);
    }
}

/* A list of stages, each `- TYPE:` and its options, at `indent`. */
static void print_process(const struct lc_process_conf *pc, int indent, FILE *f)
{
    for (size_t k = 0; k < pc->n; k++) {
        const struct lc_stage_conf *sc = &pc->stages[k];
        fprintf(f, "%*s- %s:", indent, "", sc->type);
        if (!sc->plugin->options || !sc->plugin->options[0].key) {
            fputs(" {}\n", f);
            continue;
        }
        fputc('\n', f);
        print_values(sc->plugin->options, sc->conf, indent + 4, f);
    }
}

void lc_config_print(const struct lc_config *cfg, FILE *f)
{
    fputs("# effective configuration of ", f);
    fputs(cfg->source ? cfg->source : "?", f);
    fputc('\n', f);
    print_values(lc_config_options, cfg, 0, f);
    if (cfg->nprocesses)
        fputs("processes:\n", f);
    for (size_t k = 0; k < cfg->nprocesses; k++) {
        fputs("  ", f);
        print_quoted(cfg->processes[k].name, f);
        fputs(":\n", f);
        print_process(&cfg->processes[k], 4, f);
    }
    fputs("inputs:\n", f);
    for (size_t k = 0; k < cfg->ninputs; k++) {
        const struct lc_input_conf *ic = &cfg->inputs[k];
        fprintf(f, "  - type: ");
        print_quoted(ic->type, f);
        fputs("\n    name: ", f);
        print_quoted(ic->name, f);
        fputc('\n', f);
        if (ic->outputs.n) {
            fputs("    outputs: ", f);
            print_strlist(&ic->outputs, f);
            fputc('\n', f);
        }
        if (ic->labels.n) {
            fputs("    labels: ", f);
            print_map(&ic->labels, false, f);
            fputc('\n', f);
        }
        if (ic->plugin)
            print_values(ic->plugin->options, ic->conf, 4, f);
        if (ic->process && ic->process->name) {
            fputs("    process: ", f);
            print_quoted(ic->process->name, f);
            fputc('\n', f);
        } else if (ic->process && ic->process->n) {
            fputs("    process:\n", f);
            print_process(ic->process, 6, f);
        }
    }
    fputs("outputs:\n", f);
    for (size_t k = 0; k < cfg->noutputs; k++) {
        const struct lc_output_conf *oc = &cfg->outputs[k];
        fprintf(f, "  - type: ");
        print_quoted(oc->type, f);
        fputs("\n    name: ", f);
        print_quoted(oc->name, f);
        fputc('\n', f);
        if (oc->labels.n) {
            fputs("    labels: ", f);
            print_map(&oc->labels, false, f);
            fputc('\n', f);
        }
        if (oc->plugin)
            print_values(oc->plugin->options, oc->conf, 4, f);
    }
}
