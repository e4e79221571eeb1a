/* SPDX-License-Identifier: MIT */
/* plugins.c: every input and output plugin the program is built with, listed once. */
/*
 * The one place that knows every plugin: adding an input or an output adds
 * its extern and its row here (and its files under src/input or src/output),
 * and touches no core file. The core reaches plugins only through
 * lc_input_plugin_find / lc_output_plugin_find (core/plugin.h), which this
 * file defines.
 */
#include "core/plugin.h"

#include <string.h>

extern const struct lc_input_plugin lc_input_file;
extern const struct lc_input_plugin lc_input_docker;
extern const struct lc_input_plugin lc_input_journal;
extern const struct lc_input_plugin lc_input_kubernetes;
extern const struct lc_input_plugin lc_input_syslog;
extern const struct lc_output_plugin lc_output_stdout;
extern const struct lc_output_plugin lc_output_file;
extern const struct lc_output_plugin lc_output_null;
extern const struct lc_output_plugin lc_output_loki;

const struct lc_input_plugin *const lc_input_plugins[] = {
    &lc_input_file,       /* tails files by glob */
    &lc_input_docker,     /* container logs: Engine API or json-file */
    &lc_input_journal,    /* the systemd journal (sd-journal) */
    &lc_input_kubernetes, /* pod logs under /var/log/pods (CRI) */
    &lc_input_syslog,     /* syslog receiver: TCP and UDP */
    NULL,                 /* end of list */
};

const struct lc_output_plugin *const lc_output_plugins[] = {
    &lc_output_stdout, /* JSON lines on standard output */
    &lc_output_file,   /* JSON lines appended to a file */
    &lc_output_null,   /* discards and counts (benchmarks) */
    &lc_output_loki,   /* Grafana Loki push API */
    NULL,              /* end of list */
};

const struct lc_input_plugin *lc_input_plugin_find(const char *name)
{
    for (size_t i = 0; lc_input_plugins[i]; i++)
        if (strcmp(lc_input_plugins[i]->name, name) == 0)
            return lc_input_plugins[i];
    return NULL;
}

const struct lc_output_plugin *lc_output_plugin_find(const char *name)
{
    for (size_t i = 0; lc_output_plugins[i]; i++)
        if (strcmp(lc_output_plugins[i]->name, name) == 0)
            return lc_output_plugins[i];
    return NULL;
}
