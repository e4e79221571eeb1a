/* SPDX-License-Identifier: MIT */
/* rx.h: PCRE2 regexes for stages, compiled once (with JIT) at config load. */
#ifndef LC_RX_H
#define LC_RX_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * A compiled regex and its match data, made at config load and used on the
 * event loop thread only (the match data is shared by every use). A zeroed
 * lc_rx is "no regex"; lc_rx_free on it is a no-op.
 */
struct lc_rx {
    pcre2_code *code;
    pcre2_match_data *md;
    /*
     * A code unit every match contains (PCRE2's "last code unit"), both cases
     * of it for a letter, or -1: a subject without it can not match, so
     * lc_rx_match answers with one memchr instead of a JIT scan from every
     * start position (the email preset on lines without '@').
     */
    int req[2];
    /*
     * For an anchored pattern (PCRE2_ANCHORED, also as PCRE2 detects it: `^`
     * starting every branch): first[b] is false when no subject starting with
     * byte b can match, and empty_ok whether "" matches. Found once at compile
     * time with partial matching; lc_rx_match then skips PCRE2 for most lines
     * (a multiline preset's continuation test on ordinary lines).
     */
    bool anchored;
    bool empty_ok;
    bool first[256];
};

/* 0, or -EINVAL with "regex error at offset N: message" in err, -ENOMEM. */
int lc_rx_compile(struct lc_rx *rx, const char *pattern, char *err, size_t errlen);
void lc_rx_free(struct lc_rx *rx);
/* True when s matches (anywhere, unless the pattern anchors); ovector in rx->md. */
bool lc_rx_match(struct lc_rx *rx, const char *s, size_t len);

#endif
