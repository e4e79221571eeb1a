/* SPDX-License-Identifier: MIT */
/* config.c: loads the agent's YAML configuration (libyaml document API) through option tables. */
#include "core/config.h"
#include "core/log.h"
#include "core/losses.h"
#include "core/plugin.h"
#include "core/yaml_opts.h"
#include "process/stage.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LC_CONFIG_MAX_BYTES   (4 * 1024 * 1024)   /* a configuration file */
#define LC_CONFIG_MAX_ENTRIES LC_YAML_MAX_ENTRIES /* inputs, outputs, named processes */
#define LC_CONFIG_MAX_STAGES  64                  /* stages of one process list */
#define LC_CONFIG_MAX_NAME    LC_YAML_MAX_NAME    /* an input/output/process name */

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
     .def = "0",
     .offset = CFG(max_pending_bytes),
     .min = 1024 * 1024,
     .flags = LC_OPT_ZERO,
     .help = "Per output: bytes handed to it and not yet done; inputs pause above it (the logs "
             "themselves are the buffer). A batch counts its whole allocation (batch_bytes plus "
             "record slots: 1.5 MiB at the defaults). 0: room for 3 of the output's batches, at "
             "least 8 MiB (8 MiB at the defaults: a Loki output's 4 requests busy and one batch "
             "being filled)."},
    {.type = LC_OPT_INT,
     .key = "disk_queue_jobs",
     .def = "64",
     .offset = CFG(disk_queue_jobs),
     .min = 1,
     .max = 65536,
     .help = "Disk jobs (checkpoint flushes, DLQ appends, fsyncs) queued for the disk worker "
             "thread at once; more wait in order, their batches still counting in "
             "max_pending_bytes."},
    {.type = LC_OPT_INT,
     .key = "health_recent_losses",
     .def = "32",
     .offset = CFG(health_recent_losses),
     .min = 0,
     .max = LC_LOSSES_MAX,
     .help = "Loss reports (a container removed before its log was read, a file rotated away "
             "unread, ...) /health lists, newest last, whatever the log's rate limit left out; "
             "log_capturer_loss_reports_total counts them all. 0: none listed."},
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
static const char *const lc_output_common[] = {
    "type", "name", "labels", "batch_bytes", "batch_wait", "max_tenant_batches", NULL};

/* An output's own batch size and age (lc_output_common; 0: the top-level ones). */
#define OCF(f) offsetof(struct lc_output_conf, f)
static const struct lc_option output_batch_options[] = {
    {.type = LC_OPT_SIZE,
     .key = "batch_bytes",
     .offset = OCF(batch_bytes),
     .min = 4096,
     .max = 64 * 1024 * 1024},
    {.type = LC_OPT_DURATION, .key = "batch_wait", .offset = OCF(batch_wait_ms), .min = 1},
    {.type = LC_OPT_INT,
     .key = "max_tenant_batches",
     .offset = OCF(max_tenant_batches),
     .min = 1,
     .max = 256},
};
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

/* State of one load: the engine's (the document, errors, owner) and the schema's. */
struct lc_cfg_load {
    struct lc_yaml_opts y;
    struct lc_config *cfg;
    int *in_name_node;    /* per input: node of its name */
    int *in_outputs_node; /* per input: node of its outputs list, 0 if none */
    int *out_name_node;
    int depth; /* stages nested in a stage being loaded */
};

/* type and name of an entry; on success *type and *name are owned by the caller. */
static int entry_type_name(struct lc_cfg_load *L, yaml_node_t *entry, const char *what, size_t idx,
                           yaml_node_t *type_v, yaml_node_t *name_v, char **type, char **name)
{
    char msg[LC_CONFIG_MAX_NAME + 96];
    int rc;

    snprintf(L->y.owner, sizeof(L->y.owner), "%s #%zu", what, idx + 1);
    snprintf(L->y.whose, sizeof(L->y.whose), "%s #%zu", what, idx + 1);
    if (!type_v)
        return lc_yaml_fail(&L->y, entry, -EINVAL, "missing required key 'type' in %s", L->y.owner);
    /* `type: null` means the null output, not YAML's null: nobody writes the quotes. */
    if (type_v->type == YAML_SCALAR_NODE && strcmp(lc_yaml_scalar(type_v), "null") == 0)
        rc = (*type = strdup("null")) ? 0 : -ENOMEM;
    else
        rc = lc_yaml_scalar_value(&L->y, type_v, "type", "a string", type);
    if (rc < 0)
        return rc;
    snprintf(L->y.owner, sizeof(L->y.owner), "%s #%zu (type %.64s)", what, idx + 1, *type);
    if (!name_v)
        return lc_yaml_fail(&L->y, entry, -EINVAL, "missing required key 'name' in %s", L->y.owner);
    rc = lc_yaml_scalar_value(&L->y, name_v, "name", "a string", name);
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
        return lc_yaml_fail_key(&L->y, name_v, -EINVAL, "name", msg);
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
    snprintf(L->y.owner, sizeof(L->y.owner), "%s '%s' (type %.64s)", what, name, type);
    snprintf(L->y.whose, sizeof(L->y.whose), "%s '%s'", what, name);
}

/* The value node of `key` in mapping `map`, or map itself when absent. */
static yaml_node_t *value_of(struct lc_cfg_load *L, yaml_node_t *map, const char *key)
{
    if (!key || map->type != YAML_MAPPING_NODE)
        return map;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = lc_yaml_node(&L->y, p->key);
        if (kn->type == YAML_SCALAR_NODE && strcmp(lc_yaml_scalar(kn), key) == 0)
            return lc_yaml_node(&L->y, p->value);
    }
    return map;
}

static int load_process(struct lc_cfg_load *L, yaml_node_t *seq, const char *whose,
                        struct lc_process_conf *pc);

/* A nested stage's `stages:` (its conf starts with a struct lc_process_conf). */
static int load_nested(struct lc_cfg_load *L, struct lc_stage_conf *sc, yaml_node_t *kn,
                       yaml_node_t *vn, const char *path)
{
    static const char *const keys[] = {"stages", NULL};
    struct lc_process_conf *pc = sc->conf;
    yaml_node_t *seq = NULL;
    char owner[sizeof(L->y.owner)], whose[sizeof(L->y.owner) + 16];
    int rc = lc_yaml_find_keys(&L->y, vn, keys, &seq);

    if (rc < 0 || !seq)
        return rc;
    if (L->depth >= LC_STAGE_MAX_DEPTH)
        return lc_yaml_fail(&L->y, kn, -EINVAL, "stages nested more than %d deep (%s)",
                            LC_STAGE_MAX_DEPTH, path);
    memcpy(owner, L->y.owner, sizeof(owner));
    snprintf(whose, sizeof(whose), "%s.stages", path);
    L->depth++;
    rc = load_process(L, seq, whose, pc);
    L->depth--;
    memcpy(L->y.owner, owner, sizeof(owner));
    for (size_t k = 0; rc == 0 && k < pc->n; k++)
        if (pc->stages[k].plugin->stop) /* holds records: its acks need the chain's end */
            rc =
                lc_yaml_fail(&L->y, lc_yaml_node(&L->y, seq->data.sequence.items.start[k]), -EINVAL,
                             "stage '%s' holds records and can not be nested in '%s' (%s)",
                             pc->stages[k].type, sc->type, whose);
    return rc;
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
        return lc_yaml_fail(
            &L->y, item, -EINVAL,
            "expected a stage, a mapping of one key (the stage type) to its options, "
            "got %s (stage #%zu of %s)",
            lc_yaml_kind(item), k + 1, whose);
    kn = lc_yaml_node(&L->y, item->data.mapping.pairs.start[0].key);
    vn = lc_yaml_node(&L->y, item->data.mapping.pairs.start[0].value);
    rc = lc_yaml_check_key(&L->y, kn);
    if (rc < 0)
        return rc;
    sc->type = strdup(lc_yaml_scalar(kn));
    if (!sc->type)
        return lc_yaml_fail(&L->y, kn, -ENOMEM, "out of memory");
    sc->plugin = lc_stage_plugin_find(sc->type);
    if (!sc->plugin)
        return lc_yaml_fail(&L->y, kn, -EINVAL, "unknown stage type '%.64s' (stage #%zu of %s)",
                            sc->type, k + 1, whose);
    empty.start_mark = kn->start_mark;
    if (lc_yaml_is_null(vn))
        vn = &empty;
    else if (vn->type != YAML_MAPPING_NODE)
        return lc_yaml_fail(&L->y, vn, -EINVAL,
                            "expected the options of stage '%s' as a mapping, got %s", sc->type,
                            lc_yaml_kind(vn));
    snprintf(L->y.owner, sizeof(L->y.owner), "stage #%zu (%.32s) of %.*s", k + 1, sc->type,
             LC_CONFIG_MAX_NAME + 16, whose);
    snprintf(path, sizeof(path), "process[%zu].%s", k, sc->type);
    if (sc->plugin->conf_size) {
        sc->conf = calloc(1, sc->plugin->conf_size);
        if (!sc->conf)
            return lc_yaml_fail(&L->y, kn, -ENOMEM, "out of memory");
        rc = lc_options_defaults(sc->plugin->options, sc->conf);
        if (rc < 0)
            return lc_yaml_fail(&L->y, kn, rc, "%s of stage '%s'", default_error(rc), sc->type);
    }
    static const char *const nested_keys[] = {"stages", NULL};
    rc = lc_yaml_apply(&L->y, sc->plugin->options, sc->conf, vn, path,
                       sc->plugin->nested ? nested_keys : NULL);
    if (rc == 0 && sc->plugin->nested)
        rc = load_nested(L, sc, kn, vn, path);
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
        return lc_yaml_fail(&L->y, at, rc, "%s (key '%s%s%s' in %s)", err, path, bad_key ? "." : "",
                            bad_key ? bad_key : "", L->y.owner);
    }
    return 0;
}

/* A sequence of stages into pc. */
static int load_process(struct lc_cfg_load *L, yaml_node_t *seq, const char *whose,
                        struct lc_process_conf *pc)
{
    size_t n;

    if (seq->type != YAML_SEQUENCE_NODE)
        return lc_yaml_fail(&L->y, seq, -EINVAL,
                            "expected a sequence of stages, got %s (key 'process' of %s)",
                            lc_yaml_kind(seq), whose);
    n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n > LC_CONFIG_MAX_STAGES)
        return lc_yaml_fail(&L->y, seq, -E2BIG, "more than %d stages in %s", LC_CONFIG_MAX_STAGES,
                            whose);
    if (n == 0)
        return 0;
    pc->stages = calloc(n, sizeof(*pc->stages));
    if (!pc->stages)
        return lc_yaml_fail(&L->y, seq, -ENOMEM, "out of memory");
    for (size_t k = 0; k < n; k++) {
        int rc;
        pc->n++;
        rc = load_stage(L, lc_yaml_node(&L->y, seq->data.sequence.items.start[k]), k, whose,
                        &pc->stages[k]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Top-level `processes:`: a mapping of names to lists of stages. */
static int load_processes(struct lc_cfg_load *L, yaml_node_t *map)
{
    size_t n;

    L->y.owner[0] = '\0';
    L->y.whose[0] = '\0';
    if (!map)
        return 0;
    if (map->type != YAML_MAPPING_NODE)
        return lc_yaml_fail(&L->y, map, -EINVAL,
                            "expected a mapping of names to lists of stages, got %s "
                            "(key 'processes')",
                            lc_yaml_kind(map));
    n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    if (n > LC_CONFIG_MAX_ENTRIES)
        return lc_yaml_fail(&L->y, map, -E2BIG, "too many entries (key 'processes')");
    if (n == 0)
        return 0;
    L->cfg->processes = calloc(n, sizeof(*L->cfg->processes));
    if (!L->cfg->processes)
        return lc_yaml_fail(&L->y, map, -ENOMEM, "out of memory");
    for (size_t k = 0; k < n; k++) {
        yaml_node_pair_t *p = &map->data.mapping.pairs.start[k];
        yaml_node_t *kn = lc_yaml_node(&L->y, p->key);
        struct lc_process_conf *pc = &L->cfg->processes[k];
        char whose[LC_CONFIG_MAX_NAME + 32];
        int rc = lc_yaml_check_key(&L->y, kn);

        if (rc < 0)
            return rc;
        for (size_t j = 0; j < k; j++)
            if (strcmp(L->cfg->processes[j].name, lc_yaml_scalar(kn)) == 0)
                return lc_yaml_fail(&L->y, kn, -EINVAL, "duplicate key '%.64s' (key 'processes')",
                                    lc_yaml_scalar(kn));
        L->cfg->nprocesses++;
        pc->name = strdup(lc_yaml_scalar(kn));
        if (!pc->name)
            return lc_yaml_fail(&L->y, kn, -ENOMEM, "out of memory");
        snprintf(whose, sizeof(whose), "processes.%.*s", LC_CONFIG_MAX_NAME, pc->name);
        rc = load_process(L, lc_yaml_node(&L->y, p->value), whose, pc);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* An input's `process:`: a list of stages, or the name of one under `processes:`. */
static int input_process(struct lc_cfg_load *L, struct lc_input_conf *ic, yaml_node_t *v)
{
    char whose[LC_CONFIG_MAX_NAME + 32];

    if (v->type == YAML_SCALAR_NODE && !lc_yaml_is_null(v)) {
        for (size_t k = 0; k < L->cfg->nprocesses; k++) {
            if (strcmp(L->cfg->processes[k].name, lc_yaml_scalar(v)) == 0) {
                ic->process = &L->cfg->processes[k];
                return 0;
            }
        }
        return lc_yaml_fail(&L->y, v, -EINVAL,
                            "unknown process list '%.64s' (key 'process' in input '%s'; define it "
                            "under the top-level 'processes:')",
                            lc_yaml_scalar(v), ic->name);
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

    snprintf(L->y.owner, sizeof(L->y.owner), "input #%zu", idx + 1);
    L->y.whose[0] = '\0';
    if (entry->type != YAML_MAPPING_NODE)
        return lc_yaml_fail(&L->y, entry, -EINVAL, "expected a mapping for input #%zu, got %s",
                            idx + 1, lc_yaml_kind(entry));
    rc = lc_yaml_find_keys(&L->y, entry, lc_input_common, v);
    if (rc < 0)
        return rc;
    rc = entry_type_name(L, entry, "input", idx, v[0], v[1], &ic->type, &ic->name);
    if (rc < 0)
        return rc;
    ic->plugin = lc_config_input_lookup(ic->type);
    if (!ic->plugin)
        return lc_yaml_fail(&L->y, v[0], -EINVAL,
                            "unknown input type '%.64s' (key 'type' in input #%zu)", ic->type,
                            idx + 1);
    L->in_name_node[idx] = lc_yaml_index(&L->y, v[1]);
    for (size_t k = 0; k < idx; k++) {
        if (strcmp(L->cfg->inputs[k].name, ic->name) == 0) {
            yaml_node_t *first = lc_yaml_node(&L->y, L->in_name_node[k]);
            return lc_yaml_fail(&L->y, v[1], -EINVAL,
                                "duplicate input name '%s', first used at line %zu (key 'name')",
                                ic->name, first->start_mark.line + 1);
        }
    }
    set_owner(L, "input", ic->name, ic->type);
    if (v[2]) {
        rc = lc_yaml_strlist(&L->y, v[2], "outputs", &ic->outputs);
        if (rc < 0)
            return rc;
        L->in_outputs_node[idx] = lc_yaml_index(&L->y, v[2]);
    }
    if (v[3]) {
        rc = lc_yaml_map(&L->y, v[3], "labels", true, 0, &ic->labels);
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
        return lc_yaml_fail(&L->y, entry, -EINVAL, "input type '%s' has options but no conf_size",
                            ic->type);
    if (ic->plugin->conf_size > 0) {
        ic->conf = calloc(1, ic->plugin->conf_size);
        if (!ic->conf)
            return lc_yaml_fail(&L->y, entry, -ENOMEM, "out of memory");
        rc = lc_options_defaults(ic->plugin->options, ic->conf);
        if (rc < 0)
            return lc_yaml_fail(&L->y, entry, rc, "%s of input type '%s'", default_error(rc),
                                ic->type);
    }
    return lc_yaml_apply(&L->y, ic->plugin->options, ic->conf, entry, "", lc_input_common);
}

static int load_output(struct lc_cfg_load *L, yaml_node_t *entry, size_t idx)
{
    struct lc_output_conf *oc = &L->cfg->outputs[idx];
    yaml_node_t *v[7];
    int rc;

    snprintf(L->y.owner, sizeof(L->y.owner), "output #%zu", idx + 1);
    L->y.whose[0] = '\0';
    if (entry->type != YAML_MAPPING_NODE)
        return lc_yaml_fail(&L->y, entry, -EINVAL, "expected a mapping for output #%zu, got %s",
                            idx + 1, lc_yaml_kind(entry));
    rc = lc_yaml_find_keys(&L->y, entry, lc_output_common, v);
    if (rc < 0)
        return rc;
    rc = entry_type_name(L, entry, "output", idx, v[0], v[1], &oc->type, &oc->name);
    if (rc < 0)
        return rc;
    oc->plugin = lc_config_output_lookup(oc->type);
    if (!oc->plugin)
        return lc_yaml_fail(&L->y, v[0], -EINVAL,
                            "unknown output type '%.64s' (key 'type' in output #%zu)", oc->type,
                            idx + 1);
    L->out_name_node[idx] = lc_yaml_index(&L->y, v[1]);
    for (size_t k = 0; k < idx; k++) {
        if (strcmp(L->cfg->outputs[k].name, oc->name) == 0) {
            yaml_node_t *first = lc_yaml_node(&L->y, L->out_name_node[k]);
            return lc_yaml_fail(&L->y, v[1], -EINVAL,
                                "duplicate output name '%s', first used at line %zu (key 'name')",
                                oc->name, first->start_mark.line + 1);
        }
    }
    set_owner(L, "output", oc->name, oc->type);
    if (v[2]) {
        rc = lc_yaml_map(&L->y, v[2], "labels", true, 0, &oc->labels);
        if (rc < 0)
            return rc;
    }
    for (size_t k = 0; k < 3; k++) {
        const struct lc_option *o = &output_batch_options[k];
        rc = v[3 + k] ? lc_yaml_apply_option(&L->y, o, oc, v[3 + k], o->key) : 0;
        if (rc < 0)
            return rc;
    }
    if (oc->plugin->options && oc->plugin->options[0].key && oc->plugin->conf_size == 0)
        return lc_yaml_fail(&L->y, entry, -EINVAL, "output type '%s' has options but no conf_size",
                            oc->type);
    if (oc->plugin->conf_size > 0) {
        oc->conf = calloc(1, oc->plugin->conf_size);
        if (!oc->conf)
            return lc_yaml_fail(&L->y, entry, -ENOMEM, "out of memory");
        rc = lc_options_defaults(oc->plugin->options, oc->conf);
        if (rc < 0)
            return lc_yaml_fail(&L->y, entry, rc, "%s of output type '%s'", default_error(rc),
                                oc->type);
    }
    return lc_yaml_apply(&L->y, oc->plugin->options, oc->conf, entry, "", lc_output_common);
}

/* `inputs:` or `outputs:`: a non-empty sequence of entries. */
static int load_entries(struct lc_cfg_load *L, yaml_node_t *root, yaml_node_t *seq, bool inputs)
{
    const char *key = inputs ? "inputs" : "outputs";
    size_t n = 0;
    int rc;

    L->y.owner[0] = '\0';
    L->y.whose[0] = '\0';
    if (!seq)
        return lc_yaml_fail(&L->y, root, -EINVAL, "no %s configured (key '%s')", key, key);
    if (seq->type == YAML_SEQUENCE_NODE)
        n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    else if (!lc_yaml_is_null(seq))
        return lc_yaml_fail(&L->y, seq, -EINVAL, "expected a sequence, got %s (key '%s')",
                            lc_yaml_kind(seq), key);
    if (n == 0)
        return lc_yaml_fail(&L->y, seq, -EINVAL, "no %s configured (key '%s')", key, key);
    if (n > LC_CONFIG_MAX_ENTRIES)
        return lc_yaml_fail(&L->y, seq, -E2BIG, "more than %d %s (key '%s')", LC_CONFIG_MAX_ENTRIES,
                            key, key);
    if (inputs) {
        L->cfg->inputs = calloc(n, sizeof(*L->cfg->inputs));
        L->in_name_node = calloc(n, sizeof(int));
        L->in_outputs_node = calloc(n, sizeof(int));
        if (!L->cfg->inputs || !L->in_name_node || !L->in_outputs_node)
            return lc_yaml_fail(&L->y, seq, -ENOMEM, "out of memory");
        L->cfg->ninputs = n;
    } else {
        L->cfg->outputs = calloc(n, sizeof(*L->cfg->outputs));
        L->out_name_node = calloc(n, sizeof(int));
        if (!L->cfg->outputs || !L->out_name_node)
            return lc_yaml_fail(&L->y, seq, -ENOMEM, "out of memory");
        L->cfg->noutputs = n;
    }
    for (size_t k = 0; k < n; k++) {
        yaml_node_t *entry = lc_yaml_node(&L->y, seq->data.sequence.items.start[k]);
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
        list = lc_yaml_node(&L->y, L->in_outputs_node[i]);
        set_owner(L, "input", ic->name, ic->type);
        for (size_t k = 0; k < ic->outputs.n; k++) {
            yaml_node_t *item = list->type == YAML_SEQUENCE_NODE
                                    ? lc_yaml_node(&L->y, list->data.sequence.items.start[k])
                                    : list;
            char msg[LC_CONFIG_MAX_NAME + 64];
            size_t o = 0;

            while (o < L->cfg->noutputs && strcmp(L->cfg->outputs[o].name, ic->outputs.v[k]) != 0)
                o++;
            if (o == L->cfg->noutputs) {
                snprintf(msg, sizeof(msg), "unknown output '%.64s'", ic->outputs.v[k]);
                return lc_yaml_fail_key(&L->y, item, -EINVAL, "outputs", msg);
            }
            for (size_t j = 0; j < k; j++) {
                if (strcmp(ic->outputs.v[j], ic->outputs.v[k]) == 0) {
                    snprintf(msg, sizeof(msg), "output '%.64s' listed twice", ic->outputs.v[k]);
                    return lc_yaml_fail_key(&L->y, item, -EINVAL, "outputs", msg);
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

    L->y.owner[0] = '\0';
    L->y.whose[0] = '\0';
    rc = lc_yaml_find_keys(&L->y, root, keys, v);
    if (rc < 0)
        return rc;
    if (!cfg->state_dir[0])
        return lc_yaml_fail_key(&L->y, v[0] ? v[0] : root, -EINVAL, "state_dir",
                                "must not be empty");
    if (cfg->listen[0] && strcmp(cfg->listen, "off") != 0) {
        const char *colon = strrchr(cfg->listen, ':');
        char *end = NULL;
        long port = colon ? strtol(colon + 1, &end, 10) : 0;

        if (!colon || colon == cfg->listen || !colon[1] || *end || port < 1 || port > 65535)
            return lc_yaml_fail_key(&L->y, v[1] ? v[1] : root, -EINVAL, "listen",
                                    "expected HOST:PORT (port 1-65535), \"off\" or \"\"");
    }
    return 0;
}

static int load(struct lc_cfg_load *L)
{
    static const yaml_mark_t start = {0};
    yaml_node_t *root, *lists[3];
    int rc;

    rc = lc_yaml_parse(&L->y);
    if (rc < 0)
        return rc;
    root = yaml_document_get_root_node(&L->y.doc);
    if (!root || lc_yaml_is_null(root))
        return lc_yaml_fail_mark(&L->y, start, -EINVAL, "the configuration is empty");
    if (root->type != YAML_MAPPING_NODE)
        return lc_yaml_fail(&L->y, root, -EINVAL, "expected a mapping at the top level, got %s",
                            lc_yaml_kind(root));
    rc = lc_options_defaults(lc_config_options, L->cfg);
    if (rc < 0)
        return lc_yaml_fail_mark(&L->y, start, rc, "%s of the top level", default_error(rc));
    rc = lc_yaml_find_keys(&L->y, root, lc_root_special, lists);
    if (rc < 0)
        return rc;
    rc = lc_yaml_apply(&L->y, lc_config_options, L->cfg, root, "", lc_root_special);
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
        .y =
            {
                .file = name ? name : "<string>",
                .text = yaml,
                .len = yaml ? strlen(yaml) : 0,
                .err = err,
                .errlen = errlen,
            },
    };
    int rc;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    L.cfg = calloc(1, sizeof(*L.cfg));
    if (!L.cfg)
        return lc_yaml_fail_mark(&L.y, (yaml_mark_t){0}, -ENOMEM, "out of memory");
    L.cfg->source = strdup(L.y.file);
    if (!L.cfg->source) {
        rc = lc_yaml_fail_mark(&L.y, (yaml_mark_t){0}, -ENOMEM, "out of memory");
        goto out_free;
    }
    if (L.y.len > LC_CONFIG_MAX_BYTES) {
        rc = lc_yaml_fail_mark(&L.y, (yaml_mark_t){0}, -EFBIG, "larger than %d bytes",
                               LC_CONFIG_MAX_BYTES);
        goto out_free;
    }
    rc = load(&L);
out_free:
    if (L.y.have_doc)
        yaml_document_delete(&L.y.doc);
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
        lc_yaml_print_values(sc->plugin->options, sc->conf, indent + 4, f);
        if (sc->plugin->nested && ((const struct lc_process_conf *)sc->conf)->n) {
            fprintf(f, "%*sstages:\n", indent + 4, "");
            print_process(sc->conf, indent + 4, f);
        }
    }
}

void lc_config_print(const struct lc_config *cfg, FILE *f)
{
    fputs("# effective configuration of ", f);
    fputs(cfg->source ? cfg->source : "?", f);
    fputc('\n', f);
    lc_yaml_print_values(lc_config_options, cfg, 0, f);
    if (cfg->nprocesses)
        fputs("processes:\n", f);
    for (size_t k = 0; k < cfg->nprocesses; k++) {
        fputs("  ", f);
        lc_yaml_print_quoted(cfg->processes[k].name, f);
        fputs(":\n", f);
        print_process(&cfg->processes[k], 4, f);
    }
    fputs("inputs:\n", f);
    for (size_t k = 0; k < cfg->ninputs; k++) {
        const struct lc_input_conf *ic = &cfg->inputs[k];
        fprintf(f, "  - type: ");
        lc_yaml_print_quoted(ic->type, f);
        fputs("\n    name: ", f);
        lc_yaml_print_quoted(ic->name, f);
        fputc('\n', f);
        if (ic->outputs.n) {
            fputs("    outputs: ", f);
            lc_yaml_print_strlist(&ic->outputs, f);
            fputc('\n', f);
        }
        if (ic->labels.n) {
            fputs("    labels: ", f);
            lc_yaml_print_map(&ic->labels, false, f);
            fputc('\n', f);
        }
        if (ic->plugin)
            lc_yaml_print_values(ic->plugin->options, ic->conf, 4, f);
        if (ic->process && ic->process->name) {
            fputs("    process: ", f);
            lc_yaml_print_quoted(ic->process->name, f);
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
        lc_yaml_print_quoted(oc->type, f);
        fputs("\n    name: ", f);
        lc_yaml_print_quoted(oc->name, f);
        fputc('\n', f);
        if (oc->labels.n) {
            fputs("    labels: ", f);
            lc_yaml_print_map(&oc->labels, false, f);
            fputc('\n', f);
        }
        if (oc->batch_bytes)
            fprintf(f, "    batch_bytes: %" PRId64 "\n", oc->batch_bytes);
        if (oc->batch_wait_ms)
            fprintf(f, "    batch_wait: %" PRId64 "ms\n", oc->batch_wait_ms);
        if (oc->max_tenant_batches)
            fprintf(f, "    max_tenant_batches: %" PRId64 "\n", oc->max_tenant_batches);
        if (oc->plugin)
            lc_yaml_print_values(oc->plugin->options, oc->conf, 4, f);
    }
}
