/* SPDX-License-Identifier: MIT */
/* loki_encode.h: a batch to a Loki push body (protobuf+snappy or JSON[+gzip]), and timestamp
 * checks. */
#ifndef LC_LOKI_ENCODE_H
#define LC_LOKI_ENCODE_H

#include "core/batch.h"
#include "core/buf.h"
#include "core/options.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Ownership: the encoder is an opaque handle (lc_loki_enc_new / _free) that
 * owns its scratch memory (group table, a record array as large as the
 * largest batch seen, the uncompressed body, the zlib stream) and reuses it
 * from batch to batch: encoding allocates nothing once the scratch has grown
 * to the batch size. Output buffers are the caller's (lc_buf with a cap).
 * The batch is borrowed; sorting reorders b->recs in place, validation
 * rewrites and compacts b->recs in place (never the arena). One thread.
 *
 * The static labels of the output are merged into every stream's label set;
 * a label the record's own set also has keeps the record's value (as
 * Promtail's external labels).
 */
struct lc_loki_enc;

enum lc_loki_encoding { LC_LOKI_PROTOBUF = 0, LC_LOKI_JSON };
enum lc_loki_too_old { LC_LOKI_TOO_OLD_DROP = 0, LC_LOKI_TOO_OLD_CLAMP, LC_LOKI_TOO_OLD_SEND };

struct lc_loki_ts_policy {
    int64_t max_age_ns;    /* 0: no check */
    int too_old;           /* enum lc_loki_too_old */
    int64_t max_future_ns; /* 0: no check */
};

/* What validation did, per reason and action (added to, not reset). */
struct lc_loki_ts_counts {
    uint64_t old_dropped;
    uint64_t old_clamped;
    uint64_t old_sent;
    uint64_t future_clamped;
};

/*
 * Creates an encoder. `labels` (n pairs, may be 0) are the output's static
 * labels; names are sanitised and the pairs copied. gzip applies to JSON only
 * (protobuf is always snappy-compressed, as Loki requires). `max_body` caps
 * the uncompressed body. 0 and *out, or -ENOMEM/-EINVAL (more than 15 labels).
 */
int lc_loki_enc_new(struct lc_loki_enc **out, enum lc_loki_encoding encoding, bool gzip,
                    const struct lc_kv *labels, size_t n, size_t max_body);
/* NULL is a no-op. */
void lc_loki_enc_free(struct lc_loki_enc *e);

/* "application/x-protobuf" or "application/json". */
const char *lc_loki_enc_content_type(const struct lc_loki_enc *e);
/* "gzip", or NULL (snappy is implied by protobuf, Loki wants no Content-Encoding for it). */
const char *lc_loki_enc_content_encoding(const struct lc_loki_enc *e);

/*
 * Timestamp validation before sending, in place. A record older than
 * now - max_age is dropped, clamped to now - max_age + margin (margin = 1 min,
 * or max_age / 2 when max_age < 2 min, so it is still inside Loki's window
 * when it arrives) or sent unchanged, per policy; a record newer than
 * now + max_future is clamped to now. Dropped records are removed from
 * b->recs (their arena bytes stay). Returns how many records remain.
 */
uint32_t lc_loki_validate(const struct lc_loki_ts_policy *p, struct lc_batch *b, int64_t now_ns,
                          struct lc_loki_ts_counts *counts);

/*
 * Reorders b->recs so that the records of one label set are together (sets in
 * order of first appearance) and sorted by timestamp, stable for equal
 * timestamps. Allocation-free when already sorted (a retried batch).
 * 0 or -ENOMEM.
 */
int lc_loki_sort(struct lc_loki_enc *e, struct lc_batch *b);

/*
 * Sorts b and writes the whole push body into `out` (reset first): protobuf
 * logproto.PushRequest compressed with snappy, or JSON
 * {"streams":[{"stream":{..},"values":[["<ns>","<line>"(,{metadata})],..]}]}
 * (gzip if configured). Structured metadata is EntryAdapter field 3 in
 * protobuf, the entry's third element in JSON. *raw_len (may be NULL) gets the size before
 * compression. 0, -E2BIG (a cap), -ENOMEM, -EIO (compressor failure). b must have n > 0.
 */
int lc_loki_encode(struct lc_loki_enc *e, struct lc_batch *b, struct lc_buf *out, size_t *raw_len);

/*
 * Records of the last lc_loki_encode/lc_loki_streams_json whose line was not
 * valid UTF-8: each byte outside a well-formed sequence was sent as '?'.
 */
uint32_t lc_loki_enc_utf8_repaired(const struct lc_loki_enc *e);

/*
 * The encoder's UTF-8 rule on p[0..n), in place: each byte outside a
 * well-formed sequence becomes '?' (lengths do not change). Returns how many
 * bytes were replaced.
 */
size_t lc_loki_utf8_repair(char *p, size_t n);

/*
 * Sorts b and appends its streams as one JSON array (the DLQ's form):
 * [{"labels":{..},"entries":[["<ns>","<line>"(,{metadata})],..]},..].
 * 0 or -E2BIG/-ENOMEM.
 */
int lc_loki_streams_json(struct lc_loki_enc *e, struct lc_batch *b, struct lc_buf *out);

/*
 * Appends a structured metadata block (core/meta.h) as a JSON object
 * {"name":"value",..}: the third element of a Loki JSON entry, the
 * "metadata" of the file and stdout outputs. 0 or -ENOMEM.
 */
int lc_loki_meta_json(struct lc_buf *out, const char *meta, size_t mlen);

/* Writes v in decimal at p (room for 20 chars); returns the length. */
size_t lc_loki_i64toa(int64_t v, char *p);

#endif
