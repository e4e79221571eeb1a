/* SPDX-License-Identifier: MIT */
/* options.c: option tables: size and duration parsing, defaults, free and reference docs. */
#include "core/options.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Fraction digits beyond this are ignored, so that fraction * unit never overflows. */
#define LC_OPT_FRAC_DIGITS 6
/* A default list or map ("[a, b]", "{k: v}") holds at most this many items. */
#define LC_OPT_DEFAULT_ITEMS 64

struct lc_unit {
    const char *name;
    int64_t mult;
};

#define KIB 1024LL
#define MIB (1024LL * KIB)
#define GIB (1024LL * MIB)
#define TIB (1024LL * GIB)

static const struct lc_unit lc_size_units[] = {
    {"", 1},      {"B", 1},       {"KiB", KIB},      {"MiB", MIB},         {"GiB", GIB},
    {"TiB", TIB}, {"KB", 1000LL}, {"MB", 1000000LL}, {"GB", 1000000000LL}, {"TB", 1000000000000LL},
    {NULL, 0},
};

static const struct lc_unit lc_duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {NULL, 0},
};

/*
 * Reads "DIGITS[.DIGITS]" at *sp: integer part in *ip, fraction as fnum/fden.
 * -EINVAL without a digit before and after a '.', -ERANGE past INT64_MAX.
 */
static int parse_decimal(const char **sp, int64_t *ip, int64_t *fnum, int64_t *fden)
{
    const char *s = *sp;
    int64_t v = 0;

    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    for (; isdigit((unsigned char)*s); s++) {
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *ip = v;
    *fnum = 0;
    *fden = 1;
    if (*s == '.') {
        int ndig = 0;
        s++;
        if (!isdigit((unsigned char)*s))
            return -EINVAL;
        for (; isdigit((unsigned char)*s); s++) {
            if (ndig++ >= LC_OPT_FRAC_DIGITS)
                continue;
            *fnum = *fnum * 10 + (*s - '0');
            *fden *= 10;
        }
    }
    *sp = s;
    return 0;
}

/* i * mult + fnum * mult / fden, truncated; -ERANGE past INT64_MAX. */
static int scale(int64_t i, int64_t fnum, int64_t fden, int64_t mult, int64_t *out)
{
    int64_t frac = fnum * mult / fden; /* fnum < 10^6, mult <= 10^12: no overflow */

    if (i > (INT64_MAX - frac) / mult)
        return -ERANGE;
    *out = i * mult + frac;
    return 0;
}

/* The unit named by [s, e), matched case-insensitively. */
static const struct lc_unit *find_unit(const struct lc_unit *units, const char *s, size_t n)
{
    for (const struct lc_unit *u = units; u->name; u++)
        if (strlen(u->name) == n && strncasecmp(u->name, s, n) == 0)
            return u;
    return NULL;
}

int lc_parse_size(const char *s, int64_t *out)
{
    int64_t i, fnum, fden, v;
    const struct lc_unit *u;
    const char *p = s;
    int rc;

    if (!s)
        return -EINVAL;
    rc = parse_decimal(&p, &i, &fnum, &fden);
    if (rc < 0)
        return rc;
    while (*p == ' ')
        p++;
    u = find_unit(lc_size_units, p, strlen(p));
    if (!u)
        return -EINVAL;
    rc = scale(i, fnum, fden, u->mult, &v);
    if (rc < 0)
        return rc;
    *out = v;
    return 0;
}

int lc_parse_duration_ms(const char *s, int64_t *out)
{
    const char *p = s;
    int64_t total = 0;
    int parts = 0;

    if (!s || !*s)
        return -EINVAL;
    while (*p) {
        int64_t i, fnum, fden, v;
        const struct lc_unit *u;
        const char *ue;
        int rc = parse_decimal(&p, &i, &fnum, &fden);

        if (rc < 0)
            return rc;
        for (ue = p; isalpha((unsigned char)*ue); ue++)
            ;
        if (ue == p) {
            /* A bare number means seconds, but only as the whole value ("1h30" is a typo). */
            if (*p || parts > 0)
                return -EINVAL;
            u = &lc_duration_units[1];
        } else {
            u = find_unit(lc_duration_units, p, (size_t)(ue - p));
            if (!u)
                return -EINVAL;
        }
        rc = scale(i, fnum, fden, u->mult, &v);
        if (rc < 0)
            return rc;
        if (total > INT64_MAX - v)
            return -ERANGE;
        total += v;
        parts++;
        p = ue;
    }
    *out = total;
    return 0;
}

int lc_format_size(int64_t bytes, char *buf, size_t len)
{
    static const struct lc_unit units[] = {{"TiB", TIB}, {"GiB", GIB}, {"MiB", MIB}, {"KiB", KIB}};

    if (bytes > 0)
        for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++)
            if (bytes % units[k].mult == 0)
                return snprintf(buf, len, "%" PRId64 "%s", bytes / units[k].mult, units[k].name);
    return snprintf(buf, len, "%" PRId64, bytes);
}

int lc_format_duration_ms(int64_t ms, char *buf, size_t len)
{
    if (ms == 0)
        return snprintf(buf, len, "0s");
    for (int k = 4; k >= 1; k--) {
        const struct lc_unit *u = &lc_duration_units[k];
        if (ms > 0 && ms % u->mult == 0)
            return snprintf(buf, len, "%" PRId64 "%s", ms / u->mult, u->name);
    }
    return snprintf(buf, len, "%" PRId64 "ms", ms);
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};

    for (size_t k = 0; k < 3; k++) {
        if (strcasecmp(s, yes[k]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[k]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

static int parse_int(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (!*s || isspace((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end)
        return -EINVAL;
    if (errno == ERANGE)
        return -ERANGE;
    *out = v;
    return 0;
}

/* min/max apply unless both are 0; a max of 0 means no upper bound. */
static bool in_range(const struct lc_option *o, int64_t v)
{
    if ((o->min == 0 && o->max == 0) || (v == 0 && (o->flags & LC_OPT_ZERO)))
        return true;
    if (v < o->min)
        return false;
    return o->max == 0 || v <= o->max;
}

int lc_option_set(const struct lc_option *opt, void *conf, const char *value)
{
    char *at = (char *)conf + opt->offset;
    int64_t v = 0;
    int rc;

    if (!value)
        return -EINVAL;
    switch (opt->type) {
    case LC_OPT_STR: {
        char *copy = strdup(value);
        if (!copy)
            return -ENOMEM;
        free(*(char **)at);
        *(char **)at = copy;
        return 0;
    }
    case LC_OPT_BOOL: {
        bool b;
        rc = parse_bool(value, &b);
        if (rc < 0)
            return rc;
        *(bool *)at = b;
        return 0;
    }
    case LC_OPT_ENUM:
        for (int k = 0; opt->choices && opt->choices[k]; k++) {
            if (strcmp(opt->choices[k], value) == 0) {
                *(int *)at = k;
                return 0;
            }
        }
        return -EINVAL;
    case LC_OPT_INT:
        rc = parse_int(value, &v);
        break;
    case LC_OPT_SIZE:
        rc = lc_parse_size(value, &v);
        break;
    case LC_OPT_DURATION:
        rc = lc_parse_duration_ms(value, &v);
        break;
    default:
        return -ENOTSUP;
    }
    if (rc < 0)
        return rc;
    if (!in_range(opt, v))
        return -ERANGE;
    *(int64_t *)at = v;
    return 0;
}

/* Copies [s, s+n) trimmed of blanks and of one pair of matching quotes. */
static char *dup_item(const char *s, size_t n)
{
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
        s++;
        n -= 2;
    }
    return strndup(s, n);
}

/*
 * Splits a default written in YAML flow style ("[a, b]", "{k: v}") into at
 * most LC_OPT_DEFAULT_ITEMS comma-separated items; items hold no commas.
 * Returns the item count and their bounds, -EINVAL when not in brackets, -E2BIG.
 */
static int split_flow(const char *def, char open, char close, const char **starts, size_t *lens)
{
    size_t n = strlen(def);
    const char *p, *end;
    int count = 0;

    while (n > 0 && isspace((unsigned char)*def)) {
        def++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)def[n - 1]))
        n--;
    if (n < 2 || def[0] != open || def[n - 1] != close)
        return -EINVAL;
    p = def + 1;
    end = def + n - 1;
    while (p < end && isspace((unsigned char)*p))
        p++;
    if (p == end)
        return 0;
    while (p <= end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        if (!c)
            c = end;
        if (count == LC_OPT_DEFAULT_ITEMS)
            return -E2BIG;
        starts[count] = p;
        lens[count] = (size_t)(c - p);
        count++;
        p = c + 1;
    }
    return count;
}

static int default_strlist(const char *def, struct lc_strlist *l)
{
    const char *starts[LC_OPT_DEFAULT_ITEMS];
    size_t lens[LC_OPT_DEFAULT_ITEMS];
    int n = split_flow(def, '[', ']', starts, lens);

    if (n == -EINVAL) { /* one scalar is a list of one */
        starts[0] = def;
        lens[0] = strlen(def);
        n = 1;
    }
    l->v = NULL;
    l->n = 0;
    if (n == 0)
        return 0;
    l->v = calloc((size_t)n, sizeof(*l->v));
    if (!l->v)
        return -ENOMEM;
    for (int k = 0; k < n; k++) {
        l->v[k] = dup_item(starts[k], lens[k]);
        if (!l->v[k])
            return -ENOMEM; /* the caller frees what is there */
        l->n++;
    }
    return 0;
}

static int default_map(const char *def, struct lc_kvlist *l)
{
    const char *starts[LC_OPT_DEFAULT_ITEMS];
    size_t lens[LC_OPT_DEFAULT_ITEMS];
    int n = split_flow(def, '{', '}', starts, lens);

    l->v = NULL;
    l->n = 0;
    if (n <= 0)
        return n;
    l->v = calloc((size_t)n, sizeof(*l->v));
    if (!l->v)
        return -ENOMEM;
    for (int k = 0; k < n; k++) {
        const char *colon = memchr(starts[k], ':', lens[k]);
        if (!colon)
            return -EINVAL;
        l->v[k].key = dup_item(starts[k], (size_t)(colon - starts[k]));
        l->v[k].value = dup_item(colon + 1, lens[k] - (size_t)(colon + 1 - starts[k]));
        l->n++;
        if (!l->v[k].key || !l->v[k].value)
            return -ENOMEM;
        if (!*l->v[k].key)
            return -EINVAL;
    }
    return 0;
}

int lc_options_defaults(const struct lc_option *table, void *conf)
{
    if (!table)
        return 0;
    for (const struct lc_option *o = table; o->key; o++) {
        char *at = (char *)conf + o->offset;
        int rc = 0;

        switch (o->type) {
        case LC_OPT_STR:
            *(char **)at = NULL;
            break;
        case LC_OPT_INT:
        case LC_OPT_SIZE:
        case LC_OPT_DURATION:
            *(int64_t *)at = 0;
            break;
        case LC_OPT_BOOL:
            *(bool *)at = false;
            break;
        case LC_OPT_ENUM:
            *(int *)at = 0;
            break;
        case LC_OPT_STRLIST:
            *(struct lc_strlist *)at = (struct lc_strlist){0};
            rc = o->def ? default_strlist(o->def, (struct lc_strlist *)at) : 0;
            break;
        case LC_OPT_MAP:
            *(struct lc_kvlist *)at = (struct lc_kvlist){0};
            rc = o->def ? default_map(o->def, (struct lc_kvlist *)at) : 0;
            break;
        case LC_OPT_SECTION:
            rc = lc_options_defaults(o->sub, at);
            break;
        case LC_OPT_SECLIST:
            *(struct lc_seclist *)at = (struct lc_seclist){0};
            break;
        }
        if (rc == 0 && o->def && o->type != LC_OPT_STRLIST && o->type != LC_OPT_MAP &&
            o->type != LC_OPT_SECTION && o->type != LC_OPT_SECLIST)
            rc = lc_option_set(o, conf, o->def);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void lc_strlist_free(struct lc_strlist *l)
{
    if (!l)
        return;
    for (size_t k = 0; k < l->n; k++)
        free(l->v[k]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void lc_kvlist_free(struct lc_kvlist *l)
{
    if (!l)
        return;
    for (size_t k = 0; k < l->n; k++) {
        free(l->v[k].key);
        if (l->v[k].secret && l->v[k].value)
            explicit_bzero(l->v[k].value, strlen(l->v[k].value));
        free(l->v[k].value);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

const char *lc_kvlist_get(const struct lc_kvlist *l, const char *key)
{
    if (!l)
        return NULL;
    for (size_t k = l->n; k > 0; k--) /* the later of repeated keys wins */
        if (strcmp(l->v[k - 1].key, key) == 0)
            return l->v[k - 1].value;
    return NULL;
}

void lc_seclist_free(const struct lc_option *o, struct lc_seclist *l)
{
    for (size_t k = 0; k < l->n; k++) {
        void *item = (char *)l->v + k * o->size;
        if (o->free_item)
            o->free_item(item);
        else
            lc_options_free(o->sub, item);
    }
    free(l->v);
    *l = (struct lc_seclist){0};
}

void lc_options_free(const struct lc_option *table, void *conf)
{
    if (!table || !conf)
        return;
    for (const struct lc_option *o = table; o->key; o++) {
        char *at = (char *)conf + o->offset;

        switch (o->type) {
        case LC_OPT_STR:
            free(*(char **)at);
            *(char **)at = NULL;
            break;
        case LC_OPT_STRLIST:
            lc_strlist_free((struct lc_strlist *)at);
            break;
        case LC_OPT_MAP:
            lc_kvlist_free((struct lc_kvlist *)at);
            break;
        case LC_OPT_SECTION:
            lc_options_free(o->sub, at);
            break;
        case LC_OPT_SECLIST:
            lc_seclist_free(o, (struct lc_seclist *)at);
            break;
        default:
            break;
        }
    }
}

static const char *type_name(enum lc_opt_type t)
{
    switch (t) {
    case LC_OPT_STR:
        return "string";
    case LC_OPT_INT:
        return "int";
    case LC_OPT_BOOL:
        return "bool";
    case LC_OPT_SIZE:
        return "size";
    case LC_OPT_DURATION:
        return "duration";
    case LC_OPT_ENUM:
        return "enum";
    case LC_OPT_STRLIST:
        return "list";
    case LC_OPT_MAP:
        return "map";
    case LC_OPT_SECTION:
        return "section";
    case LC_OPT_SECLIST:
        return "list of mappings";
    }
    return "?";
}

void lc_option_format_bound(const struct lc_option *o, int64_t v, char *buf, size_t len)
{
    if (o->type == LC_OPT_SIZE)
        lc_format_size(v, buf, len);
    else if (o->type == LC_OPT_DURATION)
        lc_format_duration_ms(v, buf, len);
    else
        snprintf(buf, len, "%" PRId64, v);
}

/* "1MiB..64MiB", ">= 1ms", or "" when unbounded. */
static void format_range(const struct lc_option *o, char *buf, size_t len)
{
    char lo[32], hi[32];

    buf[0] = '\0';
    if (o->type != LC_OPT_INT && o->type != LC_OPT_SIZE && o->type != LC_OPT_DURATION)
        return;
    if (o->min == 0 && o->max == 0)
        return;
    lc_option_format_bound(o, o->min, lo, sizeof(lo));
    lc_option_format_bound(o, o->max, hi, sizeof(hi));
    if (o->max == 0)
        snprintf(buf, len, "%s>= %s", (o->flags & LC_OPT_ZERO) ? "0 or " : "", lo);
    else
        snprintf(buf, len, "%s%s..%s", (o->flags & LC_OPT_ZERO) ? "0 or " : "", lo, hi);
}

/* Writes s, escaping '|' when it goes into a markdown table cell. */
static void put_cell(const char *s, FILE *f, bool markdown)
{
    for (; *s; s++) {
        if (markdown && *s == '|')
            fputc('\\', f);
        fputc(*s, f);
    }
}

static void print_rows(const struct lc_option *table, const char *prefix, FILE *f, bool markdown)
{
    for (const struct lc_option *o = table; o && o->key; o++) {
        char key[256], type[256], range[80];
        const char *def = o->def ? o->def : "";

        if (prefix && *prefix)
            snprintf(key, sizeof(key), "%s.%s", prefix, o->key);
        else
            snprintf(key, sizeof(key), "%s", o->key);
        if (o->type == LC_OPT_SECTION) {
            print_rows(o->sub, key, f, markdown);
            continue;
        }
        if (o->type == LC_OPT_SECLIST) {
            char item[260];
            snprintf(item, sizeof(item), "%s[]", key);
            if (markdown) {
                fprintf(f, "| `%s` | %s | | at most %" PRId64 " | ", key, type_name(o->type),
                        o->max);
                put_cell(o->help ? o->help : "", f, true);
                fputs(" |\n", f);
            } else {
                fprintf(f, "%-32s %-22s %-20s at most %-6" PRId64 " %s\n", key, type_name(o->type),
                        "-", o->max, o->help ? o->help : "");
            }
            print_rows(o->sub, item, f, markdown);
            continue;
        }
        if (o->type == LC_OPT_ENUM && o->choices) {
            size_t used = 0;
            type[0] = '\0';
            for (int k = 0; o->choices[k] && used < sizeof(type); k++)
                used += (size_t)snprintf(type + used, sizeof(type) - used, "%s%s", k ? "|" : "",
                                         o->choices[k]);
        } else {
            snprintf(type, sizeof(type), "%s", type_name(o->type));
        }
        if ((o->flags & LC_OPT_SECRET) && o->def)
            def = "****";
        format_range(o, range, sizeof(range));
        if (markdown) {
            fprintf(f, "| `%s` | ", key);
            put_cell(type, f, true);
            fputs(" | ", f);
            if (*def) {
                fputc('`', f);
                put_cell(def, f, true);
                fputc('`', f);
            }
            fprintf(f, " | %s | %s", range, (o->flags & LC_OPT_REQUIRED) ? "required. " : "");
            put_cell(o->help ? o->help : "", f, true);
            fputs(" |\n", f);
        } else {
            fprintf(f, "%-32s %-22s %-20s %-14s %s%s\n", key, type, *def ? def : "-",
                    *range ? range : "-", (o->flags & LC_OPT_REQUIRED) ? "(required) " : "",
                    o->help ? o->help : "");
        }
    }
}

void lc_options_print(const struct lc_option *table, const char *prefix, FILE *f, bool markdown)
{
    if (markdown)
        fputs("| key | type | default | range | description |\n|---|---|---|---|---|\n", f);
    print_rows(table, prefix, f, markdown);
}
