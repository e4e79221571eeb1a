/* SPDX-License-Identifier: MIT */
/* buf.h: a growable byte buffer with a hard cap (after curl's dynbuf). */
#ifndef LC_BUF_H
#define LC_BUF_H

#include <stdarg.h>
#include <stddef.h>

/*
 * Ownership: the struct is caller storage; lc_buf_free() releases the bytes.
 * Appending past `cap` fails with -E2BIG and leaves the content unchanged:
 * a buffer never grows beyond the limit it was created with.
 */
struct lc_buf {
    char *data;
    size_t len;
    size_t alloc;
    size_t cap;
};

void lc_buf_init(struct lc_buf *b, size_t cap);
void lc_buf_free(struct lc_buf *b);
/* Empties the buffer, keeping its allocation. */
void lc_buf_reset(struct lc_buf *b);
/* 0, -E2BIG at the cap, -ENOMEM. The content stays NUL-terminated. */
int lc_buf_append(struct lc_buf *b, const void *p, size_t n);
int lc_buf_putc(struct lc_buf *b, char c);
int lc_buf_printf(struct lc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int lc_buf_vprintf(struct lc_buf *b, const char *fmt, va_list ap);
/* Makes room for n more bytes without changing len; 0 or -E2BIG/-ENOMEM. */
int lc_buf_reserve(struct lc_buf *b, size_t n);
/* Appends s as the inside of a JSON string (no quotes), escaping as RFC 8259. */
int lc_buf_json_str(struct lc_buf *b, const char *s, size_t n);
/* Removes the first n bytes. */
void lc_buf_consume(struct lc_buf *b, size_t n);

#endif
