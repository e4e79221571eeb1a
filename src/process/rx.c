/* SPDX-License-Identifier: MIT */
/* rx.c: PCRE2 regexes with JIT, compiled once. */
#include "process/rx.h"

#include <errno.h>
#include <stdio.h>

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
    rx->md = pcre2_match_data_create_from_pattern(rx->code, NULL);
    if (!rx->md) {
        lc_rx_free(rx);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
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
    return pcre2_match(rx->code, (PCRE2_SPTR)s, len, 0, 0, rx->md, NULL) > 0;
}
