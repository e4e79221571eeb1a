/* SPDX-License-Identifier: MIT */
/* buf.c: a growable byte buffer with a hard cap, and JSON string escaping into it. */
#include "core/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LC_BUF_MIN_ALLOC 64

/* Initializes an empty buffer that will never hold more than cap bytes (plus a NUL). */
void lc_buf_init(struct lc_buf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap;
}

/* Releases the bytes; the buffer is empty afterwards and can be reused with the same cap. */
void lc_buf_free(struct lc_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
}

/* Empties the buffer, keeping its allocation. */
void lc_buf_reset(struct lc_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/*
 * Makes room for n more bytes (plus the NUL) without changing len. Grows by
 * doubling, never past cap + 1. 0, -E2BIG when len + n would exceed cap, -ENOMEM.
 */
int lc_buf_reserve(struct lc_buf *b, size_t n)
{
    if (n > b->cap || b->len > b->cap - n)
        return -E2BIG;
    size_t need = b->len + n + 1;
    if (need <= b->alloc)
        return 0;
    size_t a = b->alloc ? b->alloc : LC_BUF_MIN_ALLOC;
    while (a < need)
        a = a > SIZE_MAX / 2 ? need : a * 2;
    if (a > b->cap + 1)
        a = b->cap + 1;
    char *p = realloc(b->data, a);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->alloc = a;
    return 0;
}

/* Appends n bytes; 0, -E2BIG at the cap, -ENOMEM. Content unchanged on error. */
int lc_buf_append(struct lc_buf *b, const void *p, size_t n)
{
    int rc = lc_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* Appends one byte; as lc_buf_append(). */
int lc_buf_putc(struct lc_buf *b, char c)
{
    return lc_buf_append(b, &c, 1);
}

/* Restores the terminating NUL that a failed vsnprintf() may have overwritten. */
static void buf_terminate(struct lc_buf *b)
{
    if (b->data)
        b->data[b->len] = '\0';
}

/*
 * Appends printf output; as lc_buf_append(), -EINVAL on a format error.
 * Content unchanged on error. Formats in place when it fits, else twice.
 */
int lc_buf_vprintf(struct lc_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    size_t room = b->alloc > b->len ? b->alloc - b->len : 0;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        buf_terminate(b);
        return -EINVAL;
    }
    if ((size_t)n < room) {
        b->len += (size_t)n;
        return 0;
    }
    int rc = lc_buf_reserve(b, (size_t)n);
    if (rc < 0) {
        buf_terminate(b);
        return rc;
    }
    va_copy(ap2, ap);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
    return 0;
}

/* Appends printf output; as lc_buf_vprintf(). */
int lc_buf_printf(struct lc_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = lc_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

/*
 * For each byte, what replaces it inside a JSON string: 0 = copied as is,
 * 'u' = \u00XX, any other char c = backslash + c.
 */
static const char json_esc[256] = {
    ['\b'] = 'b',  ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't', ['"'] = '"',
    ['\\'] = '\\', [0x00] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u',
    [0x05] = 'u',  [0x06] = 'u', [0x07] = 'u', [0x0b] = 'u', [0x0e] = 'u', [0x0f] = 'u',
    [0x10] = 'u',  [0x11] = 'u', [0x12] = 'u', [0x13] = 'u', [0x14] = 'u', [0x15] = 'u',
    [0x16] = 'u',  [0x17] = 'u', [0x18] = 'u', [0x19] = 'u', [0x1a] = 'u', [0x1b] = 'u',
    [0x1c] = 'u',  [0x1d] = 'u', [0x1e] = 'u', [0x1f] = 'u',
};

static int json_put_escape(struct lc_buf *b, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char e = json_esc[c];
    if (e != 'u') {
        char two[2] = {'\\', e};
        return lc_buf_append(b, two, 2);
    }
    char six[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
    return lc_buf_append(b, six, 6);
}

/*
 * Appends s[0..n) as the inside of a JSON string (no quotes): " \ and the
 * control characters escaped as RFC 8259 says, every other byte (UTF-8
 * included) copied as is. 0, -E2BIG, -ENOMEM; content unchanged on error.
 */
int lc_buf_json_str(struct lc_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start_len = b->len;
    size_t run = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (!json_esc[p[i]])
            continue;
        rc = lc_buf_append(b, p + run, i - run);
        if (rc == 0)
            rc = json_put_escape(b, p[i]);
        if (rc < 0)
            goto out_rollback;
        run = i + 1;
    }
    rc = lc_buf_append(b, p + run, n - run);
    if (rc == 0)
        return 0;
out_rollback:
    b->len = start_len;
    buf_terminate(b);
    return rc;
}

/* Removes the first n bytes (all of them when n >= len). */
void lc_buf_consume(struct lc_buf *b, size_t n)
{
    if (n >= b->len) {
        lc_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}
