/* SPDX-License-Identifier: MIT */
/* config.h: the agent's configuration, loaded from YAML (libyaml) through option tables. */
#ifndef LC_CONFIG_H
#define LC_CONFIG_H

#include "core/anomaly.h"
#include "core/options.h"
#include "core/watchdog.h"

struct lc_input_plugin;
struct lc_output_plugin;
struct lc_stage_plugin;

/* One stage of a `process:` list: `- TYPE: {options}`; conf is the stage's struct. */
struct lc_stage_conf {
    char *type;
    const struct lc_stage_plugin *plugin;
    void *conf;
};

/* A list of stages: an input's own `process:`, or a named one under top-level `processes:`. */
struct lc_process_conf {
    char *name; /* NULL for an input's own list */
    struct lc_stage_conf *stages;
    size_t n;
};

/* One `inputs:` entry. `conf` is the plugin's own struct, filled from plugin->options. */
struct lc_input_conf {
    char *type;
    char *name;
    struct lc_strlist outputs; /* empty: every output */
    struct lc_kvlist labels;
    const struct lc_input_plugin *plugin;
    void *conf;
    struct lc_process_conf own_process;    /* `process:` written as a list */
    const struct lc_process_conf *process; /* what runs: &own_process, a named list, or NULL */
};

/* One `outputs:` entry. */
#define LC_TENANT_BATCHES_DEFAULT 8

struct lc_output_conf {
    char *type;
    char *name;
    struct lc_kvlist labels;
    int64_t batch_bytes;        /* 0: the top-level batch_bytes */
    int64_t batch_wait_ms;      /* 0: the top-level batch_wait */
    int64_t max_tenant_batches; /* open batches at once, one per tenant (0: the default) */
    const struct lc_output_plugin *plugin;
    void *conf;
};

enum { LC_CORRUPT_FAIL = 0, LC_CORRUPT_RESET = 1 };

struct lc_config {
    char *source;             /* file path, or "<embedded>" */
    unsigned promtail_flags;  /* LC_PT_* (core/promtail.h): source is a Promtail configuration */
    char *promtail_positions; /* its positions file, imported at the first start */
    char *state_dir;
    char *listen; /* "127.0.0.1:9431"; "" or "off" disables the HTTP server */
    int log_level;
    int64_t shutdown_timeout_ms;
    int64_t checkpoint_interval_ms;
    int64_t max_pending_bytes; /* per output: inputs pause above it */
    int64_t batch_bytes;       /* default batch size for every output */
    int64_t batch_wait_ms;
    int64_t disk_queue_jobs;      /* disk worker: jobs admitted at once (core/worker.h) */
    int64_t health_recent_losses; /* loss reports /health lists (core/losses.h) */
    struct lc_watchdog_conf watchdog;
    struct lc_anomaly_conf anomaly;
    int on_corrupt_state; /* LC_CORRUPT_FAIL | LC_CORRUPT_RESET: a corrupt checkpoints.db */
    struct lc_input_conf *inputs;
    size_t ninputs;
    struct lc_output_conf *outputs;
    size_t noutputs;
    struct lc_process_conf *processes; /* top-level `processes:`, by name */
    size_t nprocesses;
};

/* The configuration used when no -c is given. */
extern const char lc_config_embedded[];

/* The table of the top-level keys (state_dir, listen, ...), for docs. */
extern const struct lc_option lc_config_options[];

/*
 * Loads and validates a configuration. `${NAME}` and `${NAME:-default}` in
 * scalars are replaced from the environment (an unset variable without a
 * default is an error). On error returns a negative errno-style code, writes
 * "FILE:LINE:COLUMN: message" into err, and *out is NULL. On success *out is
 * owned by the caller (lc_config_free).
 */
int lc_config_load_file(const char *path, struct lc_config **out, char *err, size_t errlen);
int lc_config_load_string(const char *yaml, const char *name, struct lc_config **out, char *err,
                          size_t errlen);
void lc_config_free(struct lc_config *cfg);

/*
 * The plugin lookups the loader uses; they default to lc_input_plugin_find and
 * lc_output_plugin_find. Unit tests may point them at test-local plugin tables.
 */
extern const struct lc_input_plugin *(*lc_config_input_lookup)(const char *name);
extern const struct lc_output_plugin *(*lc_config_output_lookup)(const char *name);

/* Frees a list of stages (their confs, and what their prepare() made); not pc itself. */
void lc_process_conf_free(struct lc_process_conf *pc);

/* check-config --print: the effective configuration, secrets masked. */
void lc_config_print(const struct lc_config *cfg, FILE *f);

#endif
