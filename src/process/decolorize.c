/* SPDX-License-Identifier: MIT */
/* decolorize.c: the `decolorize` stage: strips ANSI escape sequences (colours) from the line. */
#include "process/stage.h"

#include <string.h>

/* ESC [ params final (CSI, e.g. "\x1b[1;31m") and ESC intermediates final; the rest is kept. */
static enum lc_stage_result decolorize_run(struct lc_stage *st, struct lc_prec *r)
{
    const char *s = r->line;
    size_t n = r->len, o = 0;
    char *out;

    (void)st;
    if (!memchr(s, 0x1b, n))
        return LC_STAGE_PASS;
    if (n > LC_PREC_LINE_MAX)
        return LC_STAGE_FAIL;
    out = lc_prec_spare(r);
    for (size_t i = 0; i < n;) {
        if (s[i] != 0x1b) {
            out[o++] = s[i++];
            continue;
        }
        i++;
        if (i < n && s[i] == '[') {
            i++;
            while (i < n && (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] <= 0x3f)
                i++;
            if (i < n)
                i++; /* the final byte */
        } else {
            /* ESC, intermediate bytes (e.g. '(' of "ESC ( B"), one final byte */
            while (i < n && (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] <= 0x2f)
                i++;
            if (i < n)
                i++;
        }
    }
    lc_prec_set_line(r, o);
    return LC_STAGE_PASS;
}

const struct lc_stage_plugin lc_stage_decolorize = {
    .name = "decolorize",
    .description = "strips ANSI colour and cursor escape sequences from the line",
    .run = decolorize_run,
};
