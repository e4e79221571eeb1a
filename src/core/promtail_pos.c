/* SPDX-License-Identifier: MIT */
/*
 * promtail_pos.c: Promtail's positions file imported into the checkpoint store.
 *
 * Promtail keeps `positions: {"/path": "offset", "journal-<job>": "cursor"}`.
 * An offset is how far Promtail had read (not delivered), so continuing there
 * repeats nothing it delivered and loses at most its in-flight batch. Rows
 * are written as the file input keys them ("file:<input>:<dev>:<ino>", no
 * fingerprint: the first reads set it), never over a row that exists, once
 * per store (meta "promtail:positions:imported").
 */
#include "core/ckpt.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/plugin.h"
#include "core/promtail.h"
#include "input/file.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define META_KEY "promtail:positions:imported"

/* The file input that would tail path (a glob matches, no exclude does), or NULL. */
static const struct lc_input_conf *file_input_for(const struct lc_config *cfg, const char *path)
{
    const char *base = strrchr(path, '/');

    base = base ? base + 1 : path;
    for (size_t i = 0; i < cfg->ninputs; i++) {
        const struct lc_input_conf *ic = &cfg->inputs[i];
        const struct lc_file_conf *c = ic->conf;
        bool hit = false;
        if (strcmp(ic->type, "file") != 0 || !c)
            continue;
        for (size_t k = 0; k < c->paths.n && !hit; k++)
            hit = fnmatch(c->paths.v[k], path, FNM_PATHNAME) == 0;
        for (size_t k = 0; k < c->exclude.n && hit; k++)
            if (fnmatch(c->exclude.v[k], path, FNM_PATHNAME) == 0 ||
                fnmatch(c->exclude.v[k], base, 0) == 0)
                hit = false;
        if (hit)
            return ic;
    }
    return NULL;
}

static const struct lc_input_conf *journal_input(const struct lc_config *cfg, const char *job)
{
    for (size_t i = 0; i < cfg->ninputs; i++)
        if (strcmp(cfg->inputs[i].type, "journal") == 0 && strcmp(cfg->inputs[i].name, job) == 0)
            return &cfg->inputs[i];
    return NULL;
}

struct imp {
    struct lc_ckpt *ck;
    const struct lc_config *cfg;
    size_t imported, reset, skipped;
    struct lc_metric_series *m_imported, *m_reset, *m_skipped;
};

static void skip(struct imp *I, const char *what, const char *why)
{
    I->skipped++;
    lc_counter_inc(I->m_skipped);
    lc_log(LC_LOG_WARN, "promtail", "positions: %s not imported: %s", what, why);
}

static void one(struct imp *I, const char *key, const char *val)
{
    struct lc_ckpt_entry e = {0}, have;
    char ck[LC_CKPT_KEY_MAX + 1];

    if (strncmp(key, "journal-", 8) == 0) {
        const struct lc_input_conf *ic = journal_input(I->cfg, key + 8);
        if (!ic) {
            skip(I, key, "no journal scrape config of that job");
            return;
        }
        snprintf(ck, sizeof(ck), "journal:%s", ic->name);
        if (lc_ckpt_get(I->ck, ck, &have) == 0) {
            skip(I, key, "the journal input has a position already");
            return;
        }
        e.key = ck;
        e.path = "(journal)";
        e.cursor = val;
        if (lc_ckpt_put(I->ck, &e) < 0) {
            skip(I, key, "the cursor is too long");
            return;
        }
        I->imported++;
        lc_counter_inc(I->m_imported);
        lc_log(LC_LOG_INFO, "promtail",
               "positions: journal input %s continues at Promtail's cursor", ic->name);
        return;
    }
    {
        const struct lc_input_conf *ic = file_input_for(I->cfg, key);
        struct stat st;
        char *end;
        long long off = strtoll(val, &end, 10);

        if (!*val || *end || off < 0) {
            skip(I, key, "the offset is not a number");
            return;
        }
        if (!ic) {
            skip(I, key, "no static_config __path__ matches it");
            return;
        }
        if (stat(key, &st) < 0 || !S_ISREG(st.st_mode)) {
            skip(I, key, "the file is gone");
            return;
        }
        snprintf(ck, sizeof(ck), "file:%s:%" PRIu64 ":%" PRIu64, ic->name, (uint64_t)st.st_dev,
                 (uint64_t)st.st_ino);
        if (lc_ckpt_get(I->ck, ck, &have) == 0) {
            skip(I, key, "the file has a position already");
            return;
        }
        if (st.st_size < off) {
            lc_log(LC_LOG_WARN, "promtail",
                   "positions: %s is shorter (%lld bytes) than Promtail's offset %lld "
                   "(truncated or replaced): read from its start",
                   key, (long long)st.st_size, off);
            off = 0;
            I->reset++;
            lc_counter_inc(I->m_reset);
        }
        e.key = ck;
        e.path = key;
        e.dev = (uint64_t)st.st_dev;
        e.ino = (uint64_t)st.st_ino;
        e.pos.offset = off;
        if (lc_ckpt_put(I->ck, &e) < 0) {
            skip(I, key, "the path is too long");
            return;
        }
        I->imported++;
        lc_counter_inc(I->m_imported);
        lc_log(LC_LOG_INFO, "promtail", "positions: %s continues at byte %lld (input %s)", key, off,
               ic->name);
    }
}

int lc_promtail_import_positions(struct lc_ckpt *ck, const struct lc_config *cfg, const char *path,
                                 size_t *imported, size_t *reset, size_t *skipped, char *err,
                                 size_t errlen)
{
    static const char *const lbl[] = {"result", NULL};
    struct lc_metric_family *f = lc_metric_family(
        LC_COUNTER, "log_capturer_promtail_positions_total",
        "Entries of Promtail's positions file at the first start: imported, reset (file shorter "
        "than the offset: read from 0) or skipped (no input, gone, or a position exists).",
        lbl);
    struct imp I = {.ck = ck, .cfg = cfg};
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root, *pos = NULL;
    char val[8];
    FILE *fp;
    int rc = 0;

    *imported = *reset = *skipped = 0;
    I.m_imported = lc_metric_series(f, "imported");
    I.m_reset = lc_metric_series(f, "reset");
    I.m_skipped = lc_metric_series(f, "skipped");
    if (lc_ckpt_meta_get(ck, META_KEY, val, sizeof(val)) == 0)
        return 0;
    fp = fopen(path, "rb");
    if (!fp) {
        if (errno == ENOENT) {
            lc_log(LC_LOG_INFO, "promtail", "positions: no %s, nothing to import", path);
            return lc_ckpt_meta_put(ck, META_KEY, "1");
        }
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        return -ENOMEM;
    }
    yaml_parser_set_input_file(&parser, fp);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s:%zu: %s", path, parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "invalid YAML");
        yaml_parser_delete(&parser);
        fclose(fp);
        return -EINVAL;
    }
    yaml_parser_delete(&parser);
    fclose(fp);
    root = yaml_document_get_root_node(&doc);
    if (root && root->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(&doc, p->key);
            if (k->type == YAML_SCALAR_NODE &&
                strcmp((char *)k->data.scalar.value, "positions") == 0)
                pos = yaml_document_get_node(&doc, p->value);
        }
    }
    if (root && !pos) {
        snprintf(err, errlen, "%s: no 'positions:' mapping (not a Promtail positions file)", path);
        rc = -EINVAL;
    } else if (pos && pos->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = pos->data.mapping.pairs.start; p < pos->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(&doc, p->key);
            yaml_node_t *v = yaml_document_get_node(&doc, p->value);
            if (k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE) {
                skip(&I, "an entry", "not a scalar");
                continue;
            }
            one(&I, (char *)k->data.scalar.value, (char *)v->data.scalar.value);
        }
    }
    yaml_document_delete(&doc);
    if (rc == 0) {
        rc = lc_ckpt_meta_put(ck, META_KEY, "1");
        lc_log(LC_LOG_INFO, "promtail",
               "positions: imported %zu entries of %s (%zu read from 0: shorter than the offset; "
               "%zu skipped); Promtail's offsets are read positions, so at most its in-flight "
               "batch repeats",
               I.imported, path, I.reset, I.skipped);
    }
    *imported = I.imported;
    *reset = I.reset;
    *skipped = I.skipped;
    return rc;
}
