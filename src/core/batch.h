/* SPDX-License-Identifier: MIT */
/* batch.h: a batch of records for one output: one arena for the lines, one array of records. */
#ifndef LC_BATCH_H
#define LC_BATCH_H

#include "core/record-t.h"
#include "core/tenant.h"

#include <stdbool.h>
#include <stdint.h>

struct lc_output;

/* What became of a batch an output was given (lc_output_done, core/pipeline.h). */
enum lc_batch_fate {
    LC_FATE_DELIVERED = 0, /* the destination accepted it */
    LC_FATE_DEAD_LETTER,   /* durably in the dead-letter queue */
    LC_FATE_DROPPED,       /* dropped by a configured policy, and counted */
    LC_FATE_FAILED,        /* not handled durably (shutdown, DLQ failure): replay after restart */
};

struct lc_batch_mark {
    struct lc_source *src;
    uint64_t seq;
    int64_t bytes; /* of src's records under this entry (lc_source_pending) */
};

/*
 * A line is copied once, from the input's read buffer into the arena; from
 * there outputs encode it straight into their request body. A batch belongs
 * to one output: the pipeline fills it, hands it over with the plugin's send(),
 * and the plugin gives it back with lc_output_done(), which releases its marks
 * and frees it. `priv` is the plugin's (e.g. its encoded body); the plugin
 * frees it before lc_output_done.
 */
struct lc_batch {
    struct lc_batch *next; /* free for the owner of the moment (queues) */
    struct lc_output *out;
    uint64_t id;
    int64_t created_ns;
    char *arena;
    uint32_t used;
    uint32_t arena_cap;
    struct lc_record *recs;
    uint32_t n;
    uint32_t recs_cap;
    struct lc_batch_mark *marks;
    uint32_t nmarks;
    uint32_t marks_cap;
    /* the last mark added, so the per-record check is two compares */
    struct lc_source *last_src;
    uint64_t last_seq;
    uint32_t attempts; /* the plugin's alone: e.g. its retries; never a fate */
    /*
     * The pipeline's alone: the fate an output gave from inside send(),
     * carried while the batch waits on the pipeline's deferred list for the
     * next loop iteration (lc_output_done). Meaningless at any other time.
     */
    enum lc_batch_fate fate;
    void *priv;
    /* every record's Loki tenant (core/tenant.h): "" for the output's own; set while empty */
    char tenant[LC_TENANT_MAX + 1];
};

/* NULL on ENOMEM. */
struct lc_batch *lc_batch_new(uint32_t arena_cap, uint32_t recs_cap);
/* Frees memory only; marks must have been released (lc_output_done does both). NULL: no-op. */
void lc_batch_free(struct lc_batch *b);
/*
 * Empties a batch whose marks were released, for reuse (the pipeline's spare
 * list): no records, no plugin state; its arena and arrays are kept.
 */
void lc_batch_reset(struct lc_batch *b);
/*
 * Gives an empty batch its tenant (len bytes, at most LC_TENANT_MAX; cut
 * there). A batch carries one tenant: the pipeline opens one per tenant.
 */
void lc_batch_set_tenant(struct lc_batch *b, const char *tenant, size_t len);
/* True if b is the batch of tenant (len bytes; 0: the output's own). */
bool lc_batch_is_tenant(const struct lc_batch *b, const char *tenant, size_t len);
/* True if a line of len bytes fits. */
bool lc_batch_fits(const struct lc_batch *b, size_t len);
/*
 * Makes sure lc_batch_add(b, src, .., len) will succeed without allocating:
 * 0, or -ENOSPC when the line does not fit, -ENOBUFS when it needs a new mark
 * of src and src's mark ring is full, -ENOMEM. Changes nothing but capacity.
 */
int lc_batch_reserve(struct lc_batch *b, const struct lc_source *src, size_t len);
/*
 * Appends a record (copying the line) and makes sure the batch references the
 * source's open mark. 0, or lc_batch_reserve's errors (nothing added then).
 */
int lc_batch_add(struct lc_batch *b, struct lc_source *src, int64_t ts_ns,
                 const struct lc_labels *labels, const char *line, size_t len);
/*
 * lc_batch_add with a structured metadata block (core/meta.h, mlen bytes,
 * copied after the line): reserve len + mlen for it.
 */
int lc_batch_add_meta(struct lc_batch *b, struct lc_source *src, int64_t ts_ns,
                      const struct lc_labels *labels, const char *line, size_t len,
                      const char *meta, size_t mlen);
/*
 * Sealing: a batch sealed early (by age, by a flush: less than half of its
 * arena and of its record slots used) gives back what it does not use, so what
 * it holds is what it carries; a fuller one stays whole, to be reused. A failed
 * shrink keeps the batch as it is. The batch takes no record after this.
 */
void lc_batch_trim(struct lc_batch *b);
/* True when the batch still has its full capacity (not trimmed): worth reusing. */
bool lc_batch_whole(const struct lc_batch *b, uint32_t arena_cap, uint32_t recs_cap);
/*
 * The memory a sealed batch holds: its arena and record slots. The one
 * measure of pending_bytes (pipeline) and of retry queue bytes (outputs); it
 * does not change between sealing and lc_output_done.
 */
int64_t lc_batch_cost(const struct lc_batch *b);
static inline const char *lc_batch_line(const struct lc_batch *b, const struct lc_record *r)
{
    return b->arena + r->line_off;
}
static inline const char *lc_batch_meta(const struct lc_batch *b, const struct lc_record *r)
{
    return b->arena + r->meta_off;
}
/* Releases the batch's mark references (ok: delivered, dead-lettered or dropped by policy). */
void lc_batch_release_marks(struct lc_batch *b, bool ok);

#endif
