/* SPDX-License-Identifier: MIT */
/* lc_alloc_fail.c: the counting allocator behind lc_alloc_fail.h (link-time --wrap). */
#include "lc_alloc_fail.h"

#include <sqlite3.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
void __wrap_free(void *p);

static atomic_long fail_at; /* 0: never */
static atomic_long count;
static atomic_bool failed;
static atomic_long live;

void lc_alloc_fail_at(long n)
{
    atomic_store(&fail_at, 0);
    if (n == 0)
        return; /* disarmed: count and failed stay readable */
    atomic_store(&count, 0);
    atomic_store(&failed, false);
    atomic_store(&fail_at, n);
}

bool lc_alloc_failed(void)
{
    return atomic_load(&failed);
}

long lc_alloc_count(void)
{
    return atomic_load(&count);
}

long lc_alloc_live(void)
{
    return atomic_load(&live);
}

/* True when this allocation is the one to fail. */
static bool fail_now(void)
{
    long at = atomic_load(&fail_at);
    long c = atomic_fetch_add(&count, 1) + 1;

    if (at > 0 && c == at) {
        atomic_store(&failed, true);
        return true;
    }
    return false;
}

static void *counted(void *p)
{
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : counted(__real_malloc(n));
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : counted(__real_calloc(n, size));
}

void *__wrap_realloc(void *p, size_t n)
{
    void *q;

    if (fail_now())
        return NULL;
    q = __real_realloc(p, n);
    if (!p)
        return counted(q);
    return q;
}

char *__wrap_strdup(const char *s)
{
    return fail_now() ? NULL : counted(__real_strdup(s));
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fail_now() ? NULL : counted(__real_strndup(s, n));
}

void __wrap_free(void *p)
{
    if (p)
        atomic_fetch_sub(&live, 1);
    __real_free(p);
}

/* SQLite: its default allocator, with the same failure point. */
static sqlite3_mem_methods sq_real;

static void *sq_malloc(int n)
{
    return fail_now() ? NULL : sq_real.xMalloc(n);
}

static void *sq_realloc(void *p, int n)
{
    return fail_now() ? NULL : sq_real.xRealloc(p, n);
}

int lc_alloc_fail_sqlite(void)
{
    static sqlite3_mem_methods m;

    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sq_real) != SQLITE_OK)
        return -1;
    m = sq_real;
    m.xMalloc = sq_malloc;
    m.xRealloc = sq_realloc;
    return sqlite3_config(SQLITE_CONFIG_MALLOC, &m) == SQLITE_OK ? 0 : -1;
}
