/* SPDX-License-Identifier: MIT */
/* tenant.h: a record's Loki tenant (X-Scope-OrgID): its bound and Loki's rule (header only). */
#ifndef LC_TENANT_H
#define LC_TENANT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A tenant ID rides with a record (struct lc_prec) and with the batch that
 * carries it (struct lc_batch): at most LC_TENANT_MAX bytes, Loki's own limit
 * (dskit's tenant.ValidTenantID). "" means none: the output's `tenant`.
 */
#define LC_TENANT_MAX 150

/*
 * Loki's rule: 1 to LC_TENANT_MAX bytes of ASCII letters, digits and
 * ! - _ . * ' ( ), and neither "." nor "..". '|' (a query's tenant separator)
 * and everything else are refused, so a valid ID is also a safe header value.
 */
static inline bool lc_tenant_valid(const char *s, size_t len)
{
    if (len == 0 || len > LC_TENANT_MAX)
        return false;
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            continue;
        if (c != '!' && c != '-' && c != '_' && c != '.' && c != '*' && c != '\'' && c != '(' &&
            c != ')')
            return false;
    }
    return true;
}

#endif
