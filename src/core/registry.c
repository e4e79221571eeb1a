/* SPDX-License-Identifier: MIT */
/* registry.c: every input and output plugin, listed once. */
#include "core/plugin.h"

#include <string.h>

extern const struct lc_input_plugin lc_input_file;
extern const struct lc_input_plugin lc_input_docker;
extern const struct lc_output_plugin lc_output_stdout;
extern const struct lc_output_plugin lc_output_file;
extern const struct lc_output_plugin lc_output_null;
extern const struct lc_output_plugin lc_output_loki;

const struct lc_input_plugin *const lc_input_plugins[] = {
    &lc_input_file,
    &lc_input_docker,
    NULL,
};

const struct lc_output_plugin *const lc_output_plugins[] = {
    &lc_output_stdout,
    &lc_output_file,
    &lc_output_null,
    &lc_output_loki,
    NULL,
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
