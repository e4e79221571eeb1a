/* SPDX-License-Identifier: MIT */
/* redact.c: masks URL userinfo, credential query parameters, auth schemes and credential headers.
 */
#include "core/redact.h"

#include <string.h>
#include <strings.h>

/* Headers whose value is a credential, longest first where one ends another. */
static const char *const secret_headers[] = {
    "proxy-authorization", "authorization", "set-cookie", "cookie", "x-api-key", NULL,
};

/* Substrings of a name that make it a credential. */
static const char *const secret_parts[] = {
    "token", "secret", "passw", "key", "auth", "credential", "session", "cookie", "signature", NULL,
};
/* Whole names too short to match as substrings. */
static const char *const secret_names[] = {"sig", "pwd", "pass", NULL};

struct out {
    char *p;
    size_t cap; /* room for text, the NUL excluded */
    size_t n;
    bool full;
};

static void put_any(struct out *o, const char *s, size_t len, bool is_mask)
{
    if (o->full)
        return;
    if (len > o->cap - o->n) {
        /* plain text may be cut anywhere; a mask is whole or absent */
        if (!is_mask) {
            memcpy(o->p + o->n, s, o->cap - o->n);
            o->n = o->cap;
        }
        o->full = true;
        return;
    }
    memcpy(o->p + o->n, s, len);
    o->n += len;
}

static void put(struct out *o, const char *s, size_t len)
{
    put_any(o, s, len, false);
}

static void mask(struct out *o)
{
    put_any(o, LC_REDACTED, sizeof(LC_REDACTED) - 1, true);
}

/* ASCII only, whatever the locale; compared with lower-case literals. */
static int lower(char c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Ends a URL component or a token in free text. */
static bool is_stop(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '"' || c == '\'' || c == '<' ||
           c == '>' || c == '`' || c == '\0';
}

/* Does name[0..len) contain part (lower case)? */
static bool contains(const char *name, size_t len, const char *part)
{
    size_t pl = strlen(part);

    for (size_t i = 0; i + pl <= len; i++) {
        size_t k = 0;
        while (k < pl && lower(name[i + k]) == part[k])
            k++;
        if (k == pl)
            return true;
    }
    return false;
}

bool lc_redact_name_is_secret(const char *name, size_t len)
{
    for (const char *const *p = secret_parts; *p; p++)
        if (contains(name, len, *p))
            return true;
    for (const char *const *p = secret_names; *p; p++)
        if (strlen(*p) == len && contains(name, len, *p))
            return true;
    return false;
}

bool lc_redact_header_is_secret(const char *name)
{
    if (!name)
        return false;
    for (const char *const *p = secret_headers; *p; p++)
        if (strcasecmp(name, *p) == 0)
            return true;
    return lc_redact_name_is_secret(name, strlen(name));
}

/* Length of the prefix of s[0..len) equal to word (case-insensitive), or 0. */
static size_t match_word(const char *s, size_t len, const char *word)
{
    size_t wl = strlen(word);

    if (len < wl)
        return 0;
    for (size_t k = 0; k < wl; k++)
        if (lower(s[k]) != word[k])
            return 0;
    return wl;
}

/* Where the text's token starting at i ends (for masking a credential). */
static size_t token_end(const char *in, size_t len, size_t i, bool to_eol)
{
    while (i < len && !is_stop(in[i]) && (to_eol || (in[i] != ',' && in[i] != ';' && in[i] != '&')))
        i++;
    if (to_eol) /* a header value runs to the end of the line or of the quoted string */
        while (i < len && in[i] != '\r' && in[i] != '\n' && in[i] != '"' && in[i] != '\0')
            i++;
    return i;
}

/* At "://": the authority up to the first '/', '?', '#' or stop; returns the last '@' or 0. */
static size_t userinfo_end(const char *in, size_t len, size_t i)
{
    size_t at = 0;

    for (; i < len && !is_stop(in[i]) && in[i] != '/' && in[i] != '?' && in[i] != '#'; i++)
        if (in[i] == '@')
            at = i;
    return at;
}

/*
 * At a credential header name (word boundary before it): the offset where its
 * value starts (after ':' or '=', spaces and an opening quote), or 0.
 */
static size_t header_value_at(const char *in, size_t len, size_t i)
{
    for (const char *const *h = secret_headers; *h; h++) {
        size_t j = i + match_word(in + i, len - i, *h);
        if (j == i)
            continue;
        if (j < len && (is_alnum(in[j]) || in[j] == '-' || in[j] == '_'))
            continue;
        if (j < len && in[j] == '"')
            j++;
        while (j < len && in[j] == ' ')
            j++;
        if (j >= len || (in[j] != ':' && in[j] != '='))
            continue;
        j++;
        while (j < len && in[j] == ' ')
            j++;
        if (j < len && in[j] == '"')
            j++;
        return j;
    }
    return 0;
}

/* At "://": where the authority (userinfo, host, port) ends: '/', '?', '#' or a stop. */
static size_t authority_end(const char *in, size_t len, size_t i)
{
    while (i < len && !is_stop(in[i]) && in[i] != '/' && in[i] != '?' && in[i] != '#')
        i++;
    return i;
}

/* The rule over in[0..len) into o (len bounds every mask too). */
static void redact_span(struct out *o, const char *in, size_t len)
{
    size_t i = 0;

    while (i < len && in[i] != '\0' && !o->full) {
        char c = in[i];
        bool boundary = i == 0 || !(is_alnum(in[i - 1]) || in[i - 1] == '-' || in[i - 1] == '_');
        size_t j;

        if (c == ':' && i + 2 < len && in[i + 1] == '/' && in[i + 2] == '/') {
            size_t end = authority_end(in, len, i + 3);
            put(o, "://", 3);
            i += 3;
            j = userinfo_end(in, len, i);
            if (j) {
                mask(o);
                i = j; /* the '@' is copied next */
            }
            /* The rest of the authority on its own: a mask inside it must not swallow the
             * '/' that ends it, or a second pass would see a different authority (found by
             * fuzz_redact: the result must be stable under redaction). */
            redact_span(o, in + i, end - i);
            i = end;
            continue;
        }
        if ((c == '?' || c == '&' || c == ';') && i + 1 < len) {
            size_t n = i + 1;
            /* A parameter name holds no URL delimiter: a scan that ran on through '/', ':'
             * or '@' could reach into a masked part and end differently on a second pass. */
            while (n < len && !is_stop(in[n]) && !strchr("=&#/:@?;", in[n]))
                n++;
            if (n < len && in[n] == '=' && lc_redact_name_is_secret(in + i + 1, n - i - 1)) {
                put(o, in + i, n + 1 - i);
                mask(o);
                i = n + 1;
                while (i < len && !is_stop(in[i]) && in[i] != '&' && in[i] != '#' && in[i] != ';')
                    i++;
                continue;
            }
        }
        if (boundary && (j = header_value_at(in, len, i)) != 0) {
            size_t end = token_end(in, len, j, true);
            put(o, in + i, j - i);
            if (end > j) /* whatever is skipped is masked */
                mask(o);
            i = end;
            continue;
        }
        if (boundary && ((j = match_word(in + i, len - i, "bearer ")) != 0 ||
                         (j = match_word(in + i, len - i, "basic ")) != 0)) {
            j += i;
            put(o, in + i, j - i);
            i = j;
            while (i < len && in[i] == ' ') {
                put(o, " ", 1);
                i++;
            }
            j = token_end(in, len, i, false);
            if (j > i)
                mask(o);
            i = j;
            continue;
        }
        put(o, &c, 1);
        i++;
    }
}

size_t lc_redact_text(const char *in, size_t len, char *out, size_t outlen)
{
    struct out o = {.p = out, .cap = outlen ? outlen - 1 : 0};

    if (!outlen)
        return 0;
    if (!in)
        len = 0;
    redact_span(&o, in, len);
    out[o.n] = '\0';
    return o.n;
}

const char *lc_redact_url(const char *url, char *out, size_t outlen)
{
    lc_redact_text(url, url ? strlen(url) : 0, out, outlen);
    return out;
}
