/* SPDX-License-Identifier: MIT */
/* logfmt.c: the logfmt decoder. */
#include "parse/logfmt.h"

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_key_char(char c)
{
    return (unsigned char)c > ' ' && c != '=' && c != '"' && c != 0x7f;
}

/* A quoted value starting after the opening '"'; unescaped into scratch when needed. */
static void quoted(const char *s, size_t len, size_t *pos, struct lc_logfmt_pair *kv, char *scratch,
                   size_t *used, unsigned *bad)
{
    size_t i = *pos, start = i;
    bool esc = false;

    while (i < len && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < len) {
            esc = true;
            i++;
        }
        i++;
    }
    if (i >= len)
        (*bad)++; /* unterminated: the value runs to the end */
    if (!esc) {
        kv->val = s + start;
        kv->val_len = (i < len ? i : len) - start;
    } else {
        char *o = scratch + *used;
        size_t n = 0, end = i < len ? i : len;
        for (size_t k = start; k < end; k++) {
            char c = s[k];
            if (c == '\\' && k + 1 < end) {
                c = s[++k];
                if (c == 'n')
                    c = '\n';
                else if (c == 't')
                    c = '\t';
                else if (c == 'r')
                    c = '\r';
            }
            o[n++] = c;
        }
        kv->val = o;
        kv->val_len = n;
        *used += n;
    }
    *pos = i < len ? i + 1 : len;
}

bool lc_logfmt_next(const char *s, size_t len, size_t *pos, struct lc_logfmt_pair *kv,
                    char *scratch, size_t *scratch_used, unsigned *bad)
{
    size_t i = *pos;

    for (;;) {
        size_t k;
        while (i < len && is_space(s[i]))
            i++;
        if (i >= len) {
            *pos = len;
            return false;
        }
        k = i;
        while (i < len && is_key_char(s[i]))
            i++;
        if (i == k) {
            (*bad)++; /* '=' or '"' where a key should be: skip it */
            i++;
            continue;
        }
        kv->key = s + k;
        kv->key_len = i - k;
        kv->val = s + i;
        kv->val_len = 0;
        if (i < len && s[i] == '=') {
            i++;
            if (i < len && s[i] == '"') {
                *pos = i + 1;
                quoted(s, len, pos, kv, scratch, scratch_used, bad);
                return true;
            }
            k = i;
            while (i < len && !is_space(s[i]))
                i++;
            kv->val = s + k;
            kv->val_len = i - k;
        }
        *pos = i;
        return true;
    }
}
