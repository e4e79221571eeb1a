/* SPDX-License-Identifier: MIT */
/* stage.h: processing stages (`process:`): the stage plugin interface, records in flight, chains.
 */
#ifndef LC_STAGE_H
#define LC_STAGE_H

#include "core/metrics.h"
#include "core/options.h"
#include "core/tenant.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lc_input;
struct lc_labels;
struct lc_source;
struct lc_stage;

#define LC_PREC_MAX_FIELDS 32            /* extracted fields a record carries */
#define LC_PREC_ARENA      (64 * 1024)   /* bytes of field names and values of one record */
#define LC_PREC_LINE_MAX   (1024 * 1024) /* a line a stage rewrites (replace, template) */

/* One extracted field: name and value live in the record's arena (not NUL-terminated). */
struct lc_field {
    uint32_t name_off, name_len;
    uint32_t val_off, val_len;
};

/*
 * A record going through a chain. Ownership: the chain owns it and reuses it
 * for every record (no allocation per record); `line` points into the input's
 * buffer or into one of the chain's two line buffers, fields into `arena`.
 * Everything is valid until the chain's next record.
 */
struct lc_prec {
    struct lc_source *src;
    const struct lc_labels *labels; /* the source's, or one a stage owns */
    int64_t ts_ns;
    const char *line;
    size_t len;
    struct lc_field fields[LC_PREC_MAX_FIELDS];
    uint32_t nfields;
    char *arena; /* LC_PREC_ARENA bytes */
    uint32_t used;
    char *linebuf[2]; /* LC_PREC_LINE_MAX bytes each: a stage writes the new line into the other */
    int cur;          /* which linebuf `line` points into, -1: neither */
    const char *drop_reason; /* set by a stage that drops */
    char *meta;              /* structured metadata block (core/meta.h), LC_META_MAX_BYTES */
    uint32_t meta_len;       /* bytes used; sent with the record */
    uint32_t nmeta;          /* pairs in it */
    /* the record's Loki tenant (the `tenant` stage; core/tenant.h), "" for the output's */
    char tenant[LC_TENANT_MAX + 1];
    uint32_t tenant_len;
};

/* What a stage did with a record. */
enum lc_stage_result {
    LC_STAGE_PASS = 0, /* go on to the next stage (possibly changed) */
    LC_STAGE_FAIL,     /* could not process it (e.g. bad JSON): passed on unchanged, counted */
    LC_STAGE_DROP,     /* dropped; drop_reason says why; counted; done for acks */
    LC_STAGE_HOLD,     /* kept by the stage (multiline) to be emitted later, merged */
};

/*
 * Contract for every stage plugin:
 * - prepare (config load, optional): compile what the options describe
 *   (regexes, with PCRE2 JIT) into fields of conf after the table's ones.
 *   0, or -EINVAL with a message in err and *bad_key the option at fault (the
 *   loader reports it as FILE:LINE:COLUMN). Never called on the hot path.
 * - conf_free (optional): frees what prepare made (the table's fields are
 *   freed by the loader).
 * - init (runtime, optional): allocate st->ctx, register metrics. 0 or -errno.
 * - run: process one record in place. No allocation per record: use the
 *   record's arena and line buffers, and state bounded by the stage's options.
 * - free (optional): release st->ctx; label sets a stage made live until then,
 *   which is after every batch that could point at them is done.
 */
struct lc_stage_plugin {
    const char *name;
    const char *description;
    const struct lc_option *options;
    size_t conf_size;
    int (*prepare)(void *conf, const char **bad_key, char *err, size_t errlen);
    void (*conf_free)(void *conf);
    int (*init)(struct lc_stage *st);
    enum lc_stage_result (*run)(struct lc_stage *st, struct lc_prec *r);
    void (*free)(struct lc_stage *st);
    /*
     * stop (optional, stages that hold records): the input stops. With
     * `deliver` (--once, test-process) emit everything held now with
     * lc_chain_emit_held(); otherwise give it up so that its lines are read
     * again after the restart (their marks are released as failed).
     */
    void (*stop)(struct lc_stage *st, bool deliver);
    /*
     * A stage with nested stages (`match`): its conf starts with a struct
     * lc_process_conf the loader fills from the stage's `stages:` list (at
     * most LC_STAGE_MAX_DEPTH deep; no stage that holds records in it).
     */
    bool nested;
};

#define LC_STAGE_MAX_DEPTH 4 /* stages nested in stages (match in match) */

/* A stage instance in a chain. */
struct lc_stage {
    const struct lc_stage_plugin *plugin;
    const void *conf;
    struct lc_chain *chain;
    void *ctx;
    char id[48];                     /* "2:regex": position and type, the metrics' `stage` */
    struct lc_metric_series *m_fail; /* log_capturer_process_failed_total{input,stage} */
    struct lc_metric_family *f_drop; /* log_capturer_process_dropped_total{input,stage,reason} */
    struct lc_metric_series *m_drop; /* its series for the stage's own reason (init sets it) */
};

/* Registry (process/registry.c). NULL if unknown. */
const struct lc_stage_plugin *lc_stage_plugin_find(const char *name);
extern const struct lc_stage_plugin *const lc_stage_plugins[];

/* Fields ------------------------------------------------------------------ */

/* The value of field `name`, or NULL (and *len untouched). */
const char *lc_prec_field(const struct lc_prec *r, const char *name, size_t name_len, size_t *len);
/*
 * Sets field name=value (replacing an earlier value of that name). -ENOSPC when
 * the record holds LC_PREC_MAX_FIELDS fields or its arena is full: the field
 * is not set and the caller counts it (the chain's `fields_cut` counter).
 */
int lc_prec_set_field(struct lc_prec *r, const char *name, size_t name_len, const char *val,
                      size_t val_len);
static inline const char *lc_prec_fname(const struct lc_prec *r, const struct lc_field *f)
{
    return r->arena + f->name_off;
}
static inline const char *lc_prec_fval(const struct lc_prec *r, const struct lc_field *f)
{
    return r->arena + f->val_off;
}
/*
 * What a stage with a `source` option works on: the field of that name, or the
 * line when source is NULL or "". NULL when the field is absent.
 */
const char *lc_prec_subject(const struct lc_prec *r, const char *source, size_t *len);
/*
 * Sets structured metadata name=value (replacing an earlier value of that
 * name; the pair moves to the end). -ENOSPC when it would make the record's
 * block more than max_pairs pairs or max_bytes bytes (at most
 * LC_META_MAX_PAIRS / LC_META_MAX_BYTES): nothing changes, the caller counts
 * the cut.
 */
int lc_prec_set_meta(struct lc_prec *r, const char *name, size_t name_len, const char *val,
                     size_t val_len, uint32_t max_pairs, uint32_t max_bytes);
/* The line buffer a stage writes a new line into (the one `line` is not in). */
char *lc_prec_spare(struct lc_prec *r);
/* Makes the spare buffer (len bytes written) the record's line. */
void lc_prec_set_line(struct lc_prec *r, size_t len);
/*
 * Counts a drop by this stage with `reason` and sets r->drop_reason. Returns
 * LC_STAGE_DROP. A stage that always drops for one reason registers its
 * series in init (lc_stage_drop_series), so the count costs no lookup.
 */
void lc_stage_drop_series(struct lc_stage *st, const char *reason);
/* A stage's own counter: the series {input, stage} of this stage in family `name`. */
struct lc_metric_series *lc_stage_counter(struct lc_stage *st, const char *name, const char *help);
enum lc_stage_result lc_prec_drop(struct lc_stage *st, struct lc_prec *r, const char *reason);

/* Chains ------------------------------------------------------------------- */

struct lc_process_conf;

/*
 * An input's chain: its stages in order and one reusable record. Built at
 * agent start from the input's `process:` (NULL chain when it has none);
 * freed after every output stopped. Event loop thread only.
 */
struct lc_chain {
    struct lc_input *in;
    const char *input_name;
    struct lc_stage *stages;
    size_t n;
    struct lc_prec rec;
    struct lc_metric_series *m_in;         /* log_capturer_process_records_total{input,result=in} */
    struct lc_metric_series *m_out;        /* ...{result=out} */
    struct lc_metric_series *m_dropped;    /* ...{result=dropped} */
    struct lc_metric_series *m_fields_cut; /* log_capturer_process_fields_cut_total{input} */
    size_t skip; /* lc_chain_emit_held: stages before this one already ran */
    /* Where lc_chain_emit_held sends a record: the pipeline (default), or test-process's printer.
     */
    int (*emit_fn)(struct lc_chain *c, struct lc_source *src, const struct lc_labels *labels,
                   int64_t ts_ns, const char *line, size_t len);
    void *emit_arg;
};

/* 0 and *out (NULL when pc is NULL or empty), or -errno. `in` may be NULL (test-process). */
int lc_chain_new(const struct lc_process_conf *pc, struct lc_input *in, const char *input_name,
                 struct lc_chain **out);
void lc_chain_free(struct lc_chain *c);
/*
 * For a stage that holds records (stage `st` of c): runs a record it held
 * through the stages after it and emits it, outside any input read (the
 * source's mark is handled with lc_source_late_begin/end). 0 or -errno
 * (nothing emitted).
 */
int lc_chain_emit_held(struct lc_stage *st, struct lc_source *src, const struct lc_labels *labels,
                       int64_t ts_ns, const char *line, size_t len);
/*
 * Nested stages (of c, for the stage `parent`): the n stages of pc into
 * stages[] (calloc'd by the caller), inited, ids "PARENT/K:TYPE". 0 or -errno
 * (*n those to free with lc_stages_free).
 */
int lc_stages_init(struct lc_chain *c, const struct lc_process_conf *pc, const char *parent,
                   struct lc_stage *stages, size_t *n);
void lc_stages_free(struct lc_stage *stages, size_t n);
/* Runs r through stages (FAIL counted and passed on): PASS, or the first DROP or HOLD. */
enum lc_stage_result lc_stages_run(struct lc_stage *stages, size_t n, struct lc_prec *r);
/* The input stops: every stage's stop(deliver). NULL is a no-op. */
void lc_chain_stop(struct lc_chain *c, bool deliver);
/*
 * Runs one record through the chain. Returns the record to emit (valid until
 * the next call), or NULL when it was dropped (rec.drop_reason says why) or
 * held (drop_reason NULL).
 */
struct lc_prec *lc_chain_run(struct lc_chain *c, struct lc_source *src,
                             const struct lc_labels *labels, int64_t ts_ns, const char *line,
                             size_t len);

#endif
