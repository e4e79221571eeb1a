/* SPDX-License-Identifier: MIT */
/* meta.h: a record's structured metadata block: encoded name/value pairs (header only). */
#ifndef LC_META_H
#define LC_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * A record's structured metadata (Loki's per-entry key/values) travels as one
 * block of bytes next to its line: pairs of [name length: 2 bytes LE][value
 * length: 2 bytes LE][name][value], no padding, names unique. The block of a
 * record is at most LC_META_MAX_BYTES with at most LC_META_MAX_PAIRS pairs
 * (the `structured_metadata` stage's max_pairs/max_bytes are bounded by
 * these); what does not fit is cut and counted by the stage.
 */
#define LC_META_MAX_PAIRS 64
#define LC_META_MAX_BYTES (16 * 1024)
#define LC_META_HDR       4

static inline size_t lc_meta_pair_size(size_t name_len, size_t val_len)
{
    return LC_META_HDR + name_len + val_len;
}

/* Writes one pair at p (lc_meta_pair_size bytes); returns the bytes written. */
static inline size_t lc_meta_put(char *p, const char *name, size_t nl, const char *val, size_t vl)
{
    p[0] = (char)(nl & 0xff);
    p[1] = (char)(nl >> 8);
    p[2] = (char)(vl & 0xff);
    p[3] = (char)(vl >> 8);
    memmove(p + LC_META_HDR, name, nl);
    memmove(p + LC_META_HDR + nl, val, vl);
    return LC_META_HDR + nl + vl;
}

/* A cursor over a block. */
struct lc_meta_it {
    const char *p, *end;
};

/* The next pair of the block, false at its end (or on a truncated block). */
static inline bool lc_meta_next(struct lc_meta_it *it, const char **name, size_t *nl,
                                const char **val, size_t *vl)
{
    const unsigned char *h = (const unsigned char *)it->p;

    if (it->end - it->p < LC_META_HDR)
        return false;
    *nl = (size_t)h[0] | (size_t)h[1] << 8;
    *vl = (size_t)h[2] | (size_t)h[3] << 8;
    if ((size_t)(it->end - it->p) < LC_META_HDR + *nl + *vl)
        return false;
    *name = it->p + LC_META_HDR;
    *val = *name + *nl;
    it->p = *val + *vl;
    return true;
}

#endif
