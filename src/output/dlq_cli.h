/* SPDX-License-Identifier: MIT */
/* dlq_cli.h: `log_capturer dlq list|replay` (dlq_cli.c), over a Loki output's dead-letter queue. */
#ifndef LC_DLQ_CLI_H
#define LC_DLQ_CLI_H

#include "output/loki_conf.h"

#include <stdbool.h>
#include <stdint.h>

/* What `dlq replay` did for one output. */
struct lc_dlq_cli_result {
    uint32_t segments;
    uint64_t sent;            /* batches delivered (removed) */
    uint64_t entries;         /* entries in them */
    uint64_t dropped_batches; /* batches whose every entry is now too old (removed, policy drop) */
    uint64_t dropped_old;     /* entries dropped as too old */
    uint64_t rejected;        /* batches Loki rejected again (kept) */
    uint64_t bad;             /* lines that could not be read (kept) */
    uint64_t kept;            /* every line left in place */
    uint64_t torn;            /* torn last lines (a crash mid-append): removed */
    bool stopped;             /* Loki kept failing: the rest was left in place */
};

/*
 * Re-sends the DLQ in dir with the output's settings (c, static labels,
 * name) and removes what Loki accepted; see dlq_cli.c. Prints a progress line
 * on stderr when it is a terminal. 0 (details in *res), -ENOENT (no DLQ
 * directory), or another negative errno.
 */
int lc_dlq_cli_replay(const struct lc_loki_conf *c, const struct lc_kvlist *labels,
                      const char *name, const char *dir, struct lc_dlq_cli_result *res);

/*
 * The `log_capturer dlq` command: `dlq list [-c FILE]`, `dlq replay [-c FILE]
 * [--output NAME]`. argv[0] is "dlq". Returns the process exit code.
 */
int lc_dlq_cli(int argc, char **argv);

#endif
