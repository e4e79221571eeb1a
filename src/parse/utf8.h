/* SPDX-License-Identifier: MIT */
/* utf8.h: where a cut may fall in UTF-8 text. */
#ifndef LC_UTF8_H
#define LC_UTF8_H

#include <stddef.h>

/*
 * The length of p[0..n) without a UTF-8 sequence cut short at its end: a
 * line cut at a byte limit keeps whole characters only (up to three bytes
 * less). Invalid bytes are left as they are (the Loki encoder repairs them).
 */
static inline size_t lc_utf8_trim_cut(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    size_t i = n - 1;
    while (i > 0 && n - i < 4 && ((unsigned char)p[i] & 0xC0) == 0x80)
        i--;
    unsigned char lead = (unsigned char)p[i];
    size_t need = lead < 0x80             ? 1
                  : (lead & 0xE0) == 0xC0 ? 2
                  : (lead & 0xF0) == 0xE0 ? 3
                  : (lead & 0xF8) == 0xF0 ? 4
                                          : 1;
    return i + need > n ? i : n;
}

#endif
