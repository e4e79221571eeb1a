/* SPDX-License-Identifier: MIT */
/* record-t.h: the types every module shares (records, positions). Types only. */
#ifndef LC_RECORD_T_H
#define LC_RECORD_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LC_NS_PER_SEC  1000000000LL
#define LC_NS_PER_MSEC 1000000LL

/*
 * Where a source is. Each input uses the fields that fit it:
 * file: offset is the first byte not yet consumed;
 * docker api: ts_ns is the Docker timestamp of the last record consumed and
 * ts_seq how many records were consumed at exactly that timestamp (Docker's
 * `since` is inclusive, so resuming needs to skip that many).
 */
struct lc_pos {
    int64_t offset;
    int64_t ts_ns;
    uint32_t ts_seq;
};

struct lc_labels; /* interned label set, labels.h */
struct lc_source; /* a readable stream with acks, source.h */

/*
 * One log line inside a batch. The line bytes live in the batch arena at
 * [line_off, line_off + line_len); they are not NUL-terminated. Its structured
 * metadata (core/meta.h), if any, is the block at [meta_off, meta_off +
 * meta_len) of the same arena; meta_len 0: none.
 */
struct lc_record {
    int64_t ts_ns;
    const struct lc_labels *labels; /* kept alive by the record's source */
    uint32_t line_off;
    uint32_t line_len;
    uint32_t meta_off;
    uint32_t meta_len;
};

#endif
