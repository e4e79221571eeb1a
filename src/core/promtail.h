/* SPDX-License-Identifier: MIT */
/* promtail.h: a Promtail configuration converted to the native one; Promtail's positions imported.
 */
#ifndef LC_PROMTAIL_H
#define LC_PROMTAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct lc_ckpt;
struct lc_config;

/* lc_promtail_convert flags. */
#define LC_PT_LENIENT 1u /* a key without an equivalent is a warning and ignored, not an error */
#define LC_PT_EXPAND_ENV                                                                           \
    2u                  /* ${VAR} in values is expanded (Promtail's -config.expand-env=true)       \
                         */
#define LC_PT_LOADED 4u /* lc_config.promtail_flags: the config came from lc_promtail_load */

/* What a conversion produced. Owned by the caller (lc_promtail_result_free). */
struct lc_promtail_result {
    char *yaml;      /* the native configuration, with `# approximated:` comments */
    char *positions; /* positions.filename (Promtail's default when unset) */
    size_t warnings; /* keys ignored (lenient only) */
};

/*
 * Converts the Promtail configuration text (name: for messages). A key or
 * value without a native equivalent is an error "NAME:LINE:COLUMN: message"
 * in err (-EINVAL), or with LC_PT_LENIENT a warning of the same form written to
 * warn (when not NULL) and the key ignored. 0 and *res filled, or negative
 * errno (res untouched).
 */
int lc_promtail_convert(const char *text, size_t len, const char *name, unsigned flags, FILE *warn,
                        struct lc_promtail_result *res, char *err, size_t errlen);
/* The same for a file. */
int lc_promtail_convert_file(const char *path, unsigned flags, FILE *warn,
                             struct lc_promtail_result *res, char *err, size_t errlen);
void lc_promtail_result_free(struct lc_promtail_result *res);

/*
 * Converts the file and loads the result with lc_config_load_string, so that
 * `run --promtail-config` and `convert` + `run -c` can never differ. The
 * config reloads the same way on SIGHUP. *positions (may be NULL) receives
 * the positions file name (malloc'd).
 */
int lc_promtail_load(const char *path, unsigned flags, struct lc_config **out, char **positions,
                     char *err, size_t errlen);

/*
 * Imports Promtail's positions file into the checkpoint store: for every
 * `file` input, each path of the file it would tail (its globs, minus its
 * excludes) continues at Promtail's offset (0 when the file is now shorter:
 * truncated or replaced, counted in *reset); `journal-<job>` cursors become
 * the cursor of journal input <job>. A row that already exists is never
 * overwritten. Runs once per store (a meta fact). 0 (counts in *imported,
 * *reset, *skipped), or negative errno with a message in err. A missing
 * positions file is not an error (nothing to import).
 */
int lc_promtail_import_positions(struct lc_ckpt *ck, const struct lc_config *cfg, const char *path,
                                 size_t *imported, size_t *reset, size_t *skipped, char *err,
                                 size_t errlen);

#endif
