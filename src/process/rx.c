/* SPDX-License-Identifier: MIT */
/* rx.c: PCRE2 regexes with JIT, compiled once. */
#include "process/rx.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The prefilter of struct lc_rx (-1, -1: none). */
static void find_required(struct lc_rx *rx)
{
    uint32_t type = 0, unit = 0;

    rx->req[0] = rx->req[1] = -1;
    if (pcre2_pattern_info(rx->code, PCRE2_INFO_LASTCODETYPE, &type) != 0 || type != 1 ||
        pcre2_pattern_info(rx->code, PCRE2_INFO_LASTCODEUNIT, &unit) != 0 || unit > 0xff)
        return;
    /* caselessness is not reported: a letter is looked for in both cases */
    rx->req[0] = (int)unit;
    rx->req[1] = isalpha((int)unit) ? (islower((int)unit) ? toupper((int)unit) : tolower((int)unit))
                                    : (int)unit;
}

/* The first-byte table of struct lc_rx, for anchored patterns. */
static void find_first_bytes(struct lc_rx *rx)
{
    uint32_t opts = 0;
    char one;

    rx->anchored = false;
    if (pcre2_pattern_info(rx->code, PCRE2_INFO_ALLOPTIONS, &opts) != 0 || !(opts & PCRE2_ANCHORED))
        return;
    rx->empty_ok = pcre2_match(rx->code, (PCRE2_SPTR) "", 0, 0, 0, rx->md, NULL) >= 0;
    for (int b = 0; b < 256; b++) {
        one = (char)b;
        /* partial: could a subject starting with b match? (any error: assume so) */
        int rc = pcre2_match(rx->code, (PCRE2_SPTR)&one, 1, 0, PCRE2_PARTIAL_SOFT, rx->md, NULL);
        rx->first[b] = rc != PCRE2_ERROR_NOMATCH;
    }
    rx->anchored = true;
}

int lc_rx_compile(struct lc_rx *rx, const char *pattern, char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE off;
    PCRE2_UCHAR msg[160];

    rx->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
    if (!rx->code) {
        pcre2_get_error_message(code, msg, sizeof(msg));
        snprintf(err, errlen, "invalid regex at offset %zu: %s", (size_t)off, (char *)msg);
        return -EINVAL;
    }
    /* JIT is an optimisation: without it (an exotic CPU) matching still works */
    (void)pcre2_jit_compile(rx->code, PCRE2_JIT_COMPLETE);
    find_required(rx);
    rx->md = pcre2_match_data_create_from_pattern(rx->code, NULL);
    if (!rx->md) {
        lc_rx_free(rx);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    find_first_bytes(rx);
    return 0;
}

void lc_rx_free(struct lc_rx *rx)
{
    pcre2_match_data_free(rx->md);
    pcre2_code_free(rx->code);
    rx->md = NULL;
    rx->code = NULL;
}

bool lc_rx_match(struct lc_rx *rx, const char *s, size_t len)
{
    /* Byte mode (no PCRE2_UTF unless the pattern starts with (*UTF)): log lines are
     * not validated UTF-8, and a byte match never fails on a bad sequence. */
    if (rx->anchored && (len ? !rx->first[(unsigned char)s[0]] : !rx->empty_ok))
        return false;
    if (rx->req[0] >= 0 && !memchr(s, rx->req[0], len) &&
        (rx->req[1] == rx->req[0] || !memchr(s, rx->req[1], len)))
        return false;
    return pcre2_match(rx->code, (PCRE2_SPTR)s, len, 0, 0, rx->md, NULL) > 0;
}
