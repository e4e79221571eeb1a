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
};

/* 0, or -EINVAL with "regex error at offset N: message" in err, -ENOMEM. */
int lc_rx_compile(struct lc_rx *rx, const char *pattern, char *err, size_t errlen);
void lc_rx_free(struct lc_rx *rx);
/* True when s matches (anywhere, unless the pattern anchors); ovector in rx->md. */
bool lc_rx_match(struct lc_rx *rx, const char *s, size_t len);

#endif
