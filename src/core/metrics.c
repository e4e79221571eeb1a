/* SPDX-License-Identifier: MIT */
/* metrics.c: the metrics registry and its Prometheus text (0.0.4) rendering. */
#include "core/metrics.h"

#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define LC_METRIC_MAX_LABELS  16
#define LC_METRIC_MAX_BUCKETS 64

struct lc_metric_family {
    enum lc_metric_type type;
    char *name;
    char *help;
    char **labels; /* nlabels names */
    int nlabels;
    double *bounds; /* histogram upper bounds, nbuckets of them */
    int nbuckets;
    struct metric_node *series;
    struct metric_node **series_tail;
    struct lc_metric_family *next;
};

/* A series and its label values, in one allocation; pub first so a pointer converts back. */
struct metric_node {
    struct lc_metric_series pub;
    struct metric_node *next;
    char *values[];
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lc_metric_family *reg_head;
static struct lc_metric_family **reg_tail = &reg_head;

static const double default_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

/* ---- validation ---- */

static bool name_char_ok(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (colon && c == ':')
        return true;
    return !first && c >= '0' && c <= '9';
}

static bool ident_ok(const char *s, bool colon)
{
    if (!s || !*s)
        return false;
    for (size_t i = 0; s[i]; i++)
        if (!name_char_ok(s[i], i == 0, colon))
            return false;
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The rules a family must follow; a message for the log, or NULL when valid. */
static const char *family_invalid(enum lc_metric_type type, const char *name,
                                  const char *const *labels, const double *buckets, int nbuckets)
{
    if (!ident_ok(name, true))
        return "invalid metric name";
    if (strncmp(name, "process_", 8) == 0 || strcmp(name, "log_capturer_threads") == 0)
        return "reserved metric name";
    if (type == LC_COUNTER && !ends_with(name, "_total"))
        return "counter name must end in _total";
    int n = 0;
    for (; labels && labels[n]; n++) {
        if (n >= LC_METRIC_MAX_LABELS || !ident_ok(labels[n], false) ||
            strncmp(labels[n], "__", 2) == 0)
            return "invalid label name";
        if (type == LC_HISTOGRAM && strcmp(labels[n], "le") == 0)
            return "label le is reserved in histograms";
    }
    if (nbuckets < 0 || nbuckets > LC_METRIC_MAX_BUCKETS)
        return "bad bucket count";
    for (int i = 0; i < nbuckets; i++)
        if (!isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1]))
            return "buckets must be finite and ascending";
    return NULL;
}

static int label_count(const char *const *labels)
{
    int n = 0;
    while (labels && labels[n])
        n++;
    return n;
}

/* True when an existing family was registered with this very shape. */
static bool family_same(const struct lc_metric_family *f, enum lc_metric_type type,
                        const char *const *labels, const double *buckets, int nbuckets)
{
    if (f->type != type || f->nlabels != label_count(labels))
        return false;
    for (int i = 0; i < f->nlabels; i++)
        if (strcmp(f->labels[i], labels[i]) != 0)
            return false;
    if (type != LC_HISTOGRAM)
        return true;
    return f->nbuckets == nbuckets &&
           (nbuckets == 0 || memcmp(f->bounds, buckets, sizeof(double) * (size_t)nbuckets) == 0);
}

/* ---- families and series ---- */

static void family_free(struct lc_metric_family *f)
{
    if (!f)
        return;
    for (int i = 0; f->labels && i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->labels);
    free(f->bounds);
    free(f->help);
    free(f->name);
    free(f);
}

static struct lc_metric_family *family_new(enum lc_metric_type type, const char *name,
                                           const char *help, const char *const *labels,
                                           const double *buckets, int nbuckets)
{
    struct lc_metric_family *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->type = type;
    f->series_tail = &f->series;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->nlabels = label_count(labels);
    f->labels = calloc((size_t)f->nlabels + 1, sizeof(char *));
    f->nbuckets = nbuckets;
    f->bounds = calloc((size_t)nbuckets + 1, sizeof(double));
    if (!f->name || !f->help || !f->labels || !f->bounds)
        goto out_free_family;
    for (int i = 0; i < f->nlabels; i++)
        if (!(f->labels[i] = strdup(labels[i])))
            goto out_free_family;
    if (nbuckets)
        memcpy(f->bounds, buckets, sizeof(double) * (size_t)nbuckets);
    return f;
out_free_family:
    family_free(f);
    return NULL;
}

static struct lc_metric_family *family_register(enum lc_metric_type type, const char *name,
                                                const char *help, const char *const *labels,
                                                const double *buckets, int nbuckets)
{
    const char *why = family_invalid(type, name, labels, buckets, nbuckets);
    if (why) {
        lc_log(LC_LOG_ERROR, "metrics", "cannot register %s: %s", name ? name : "(null)", why);
        return NULL;
    }
    pthread_mutex_lock(&reg_mu);
    struct lc_metric_family *f = reg_head;
    while (f && strcmp(f->name, name) != 0)
        f = f->next;
    if (f && !family_same(f, type, labels, buckets, nbuckets)) {
        lc_log(LC_LOG_ERROR, "metrics", "cannot register %s: registered with another shape", name);
        f = NULL;
    } else if (!f && (f = family_new(type, name, help, labels, buckets, nbuckets))) {
        *reg_tail = f;
        reg_tail = &f->next;
    }
    pthread_mutex_unlock(&reg_mu);
    return f;
}

/* Registers or finds a family; see metrics.h for the NULL cases. */
struct lc_metric_family *lc_metric_family(enum lc_metric_type type, const char *name,
                                          const char *help, const char *const *labels)
{
    if (type == LC_HISTOGRAM)
        return lc_metric_histogram(name, help, labels, default_buckets,
                                   (int)(sizeof(default_buckets) / sizeof(default_buckets[0])));
    return family_register(type, name, help, labels, NULL, 0);
}

/* Registers or finds a histogram family with these upper bounds (copied). */
struct lc_metric_family *lc_metric_histogram(const char *name, const char *help,
                                             const char *const *labels, const double *buckets,
                                             int nbuckets)
{
    return family_register(LC_HISTOGRAM, name, help, labels, buckets, nbuckets);
}

static void node_free(struct metric_node *n)
{
    if (!n)
        return;
    free(n->pub.bucket_counts);
    free(n);
}

/* One allocation: node, value pointers, then the value strings. */
static struct metric_node *node_new(struct lc_metric_family *f, const char *const *values)
{
    size_t strbytes = 0;
    for (int i = 0; i < f->nlabels; i++)
        strbytes += strlen(values[i]) + 1;
    size_t ptrbytes = sizeof(char *) * (size_t)f->nlabels;
    struct metric_node *n = calloc(1, sizeof(*n) + ptrbytes + strbytes);
    if (!n)
        return NULL;
    char *p = (char *)n->values + ptrbytes;
    for (int i = 0; i < f->nlabels; i++) {
        size_t len = strlen(values[i]) + 1;
        n->values[i] = memcpy(p, values[i], len);
        p += len;
    }
    n->pub.family = f;
    if (f->type != LC_HISTOGRAM)
        return n;
    n->pub.bucket_counts = calloc((size_t)f->nbuckets + 1, sizeof(*n->pub.bucket_counts));
    if (n->pub.bucket_counts)
        return n;
    node_free(n);
    return NULL;
}

static struct metric_node *node_find(struct lc_metric_family *f, const char *const *values)
{
    for (struct metric_node *n = f->series; n; n = n->next) {
        int i = 0;
        while (i < f->nlabels && strcmp(n->values[i], values[i]) == 0)
            i++;
        if (i == f->nlabels)
            return n;
    }
    return NULL;
}

/*
 * The series of f for the label values passed after f (one const char * per
 * label name; NULL counts as ""), created at 0 on first use. NULL only on
 * allocation failure or f == NULL.
 */
void lc_metric_register_rows(void *obj, const struct lc_metric_row *rows, size_t n,
                             const char *label, const char *value)
{
    for (size_t i = 0; i < n; i++) {
        const struct lc_metric_row *r = &rows[i];
        const char *const labels[] = {label ? label : r->by, label ? r->by : NULL, NULL};
        struct lc_metric_series **at = (struct lc_metric_series **)((char *)obj + r->off);
        struct lc_metric_family *f =
            r->type == LC_HISTOGRAM && r->buckets
                ? lc_metric_histogram(r->name, r->help, labels, r->buckets, r->nbuckets)
                : lc_metric_family(r->type, r->name, r->help, labels);

        if (!r->by) {
            *at = label ? lc_metric_series(f, value) : lc_metric_series(f);
            continue;
        }
        for (size_t k = 0; r->values[k]; k++)
            at[k] = label ? lc_metric_series(f, value, r->values[k])
                          : lc_metric_series(f, r->values[k]);
    }
}

struct lc_metric_series *lc_metric_series(struct lc_metric_family *f, ...)
{
    const char *values[LC_METRIC_MAX_LABELS];
    if (!f)
        return NULL;
    va_list ap;
    va_start(ap, f);
    for (int i = 0; i < f->nlabels; i++) {
        values[i] = va_arg(ap, const char *);
        if (!values[i])
            values[i] = "";
    }
    va_end(ap);
    pthread_mutex_lock(&reg_mu);
    struct metric_node *n = node_find(f, values);
    if (!n && (n = node_new(f, values))) {
        *f->series_tail = n;
        f->series_tail = &n->next;
    }
    pthread_mutex_unlock(&reg_mu);
    return n ? &n->pub : NULL;
}

/* Unlinks and frees s; a no-op for NULL or a series already removed. */
void lc_metric_series_remove(struct lc_metric_series *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&reg_mu);
    struct lc_metric_family *f = (struct lc_metric_family *)s->family;
    struct metric_node **pp = &f->series;
    while (*pp && &(*pp)->pub != s)
        pp = &(*pp)->next;
    struct metric_node *n = *pp;
    if (n) {
        *pp = n->next;
        if (f->series_tail == &n->next)
            f->series_tail = pp;
        node_free(n);
    }
    pthread_mutex_unlock(&reg_mu);
}

/* Registers a family without labels and returns its only series. */
struct lc_metric_series *lc_metric_simple(enum lc_metric_type type, const char *name,
                                          const char *help)
{
    return lc_metric_series(lc_metric_family(type, name, help, NULL));
}

/* First bucket whose upper bound is >= v; nbuckets (+Inf) if none or v is NaN. */
static int bucket_index(const double *bounds, int nbuckets, double v)
{
    int lo = 0, hi = nbuckets;
    if (isnan(v))
        return nbuckets;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (v <= bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/*
 * Counts v in its bucket; the sum keeps microunits, so negative and NaN
 * observations add nothing to _sum (they are still counted).
 */
void lc_histogram_observe(struct lc_metric_series *s, double v)
{
    if (!s || !s->bucket_counts)
        return;
    const struct lc_metric_family *f = s->family;
    int i = bucket_index(f->bounds, f->nbuckets, v);
    atomic_fetch_add_explicit(&s->bucket_counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->hcount, 1, memory_order_relaxed);
    if (v > 0) {
        double micro = v * 1e6;
        uint64_t add = micro >= 1.8e19 ? UINT64_MAX / 2 : (uint64_t)llround(micro);
        atomic_fetch_add_explicit(&s->hsum_micro, add, memory_order_relaxed);
    }
}

/* Frees every family and series; the registry is empty and usable afterwards. */
void lc_metrics_shutdown(void)
{
    pthread_mutex_lock(&reg_mu);
    struct lc_metric_family *f = reg_head;
    while (f) {
        struct lc_metric_family *next_f = f->next;
        struct metric_node *n = f->series;
        while (n) {
            struct metric_node *next_n = n->next;
            node_free(n);
            n = next_n;
        }
        family_free(f);
        f = next_f;
    }
    reg_head = NULL;
    reg_tail = &reg_head;
    pthread_mutex_unlock(&reg_mu);
}

/* ---- rendering ---- */

/* An output buffer whose first error sticks, so render code need not check each append. */
struct render {
    struct lc_buf *b;
    int rc;
};

static void r_put(struct render *r, const char *s)
{
    if (r->rc == 0)
        r->rc = lc_buf_append(r->b, s, strlen(s));
}

static void r_printf(struct render *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void r_printf(struct render *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (r->rc == 0)
        r->rc = lc_buf_vprintf(r->b, fmt, ap);
    va_end(ap);
}

/* Escapes \ and newline (HELP text), and " too when quoted (label values). */
static void r_escaped(struct render *r, const char *s, bool quoted)
{
    for (; *s && r->rc == 0; s++) {
        if (*s == '\\')
            r->rc = lc_buf_append(r->b, "\\\\", 2);
        else if (*s == '\n')
            r->rc = lc_buf_append(r->b, "\\n", 2);
        else if (*s == '"' && quoted)
            r->rc = lc_buf_append(r->b, "\\\"", 2);
        else
            r->rc = lc_buf_putc(r->b, *s);
    }
}

static void r_header(struct render *r, const char *name, const char *help, const char *type)
{
    r_printf(r, "# HELP %s ", name);
    r_escaped(r, help, false);
    r_printf(r, "\n# TYPE %s %s\n", name, type);
}

/*
 * Shortest %g form, at least 6 digits wide before switching to exponents,
 * that reads back as the same double: 0.005, 10, 1e+06 (as Go's 'g', -1).
 */
static void format_double(char *out, size_t cap, double v)
{
    if (isinf(v)) {
        snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* {a="x",b="y"[,le="..."]}, or nothing for a series without labels. */
static void r_labels(struct render *r, const struct lc_metric_family *f,
                     const struct metric_node *n, const char *le)
{
    if (f->nlabels == 0 && !le)
        return;
    r_put(r, "{");
    for (int i = 0; i < f->nlabels; i++) {
        r_printf(r, "%s%s=\"", i ? "," : "", f->labels[i]);
        r_escaped(r, n->values[i], true);
        r_put(r, "\"");
    }
    if (le)
        r_printf(r, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    r_put(r, "}");
}

/* _bucket lines (cumulative), then _sum and _count; _count is the +Inf bucket. */
static void r_histogram(struct render *r, const struct lc_metric_family *f,
                        const struct metric_node *n)
{
    uint64_t cum = 0;
    char le[32];
    for (int i = 0; i <= f->nbuckets; i++) {
        cum += atomic_load_explicit(&n->pub.bucket_counts[i], memory_order_relaxed);
        format_double(le, sizeof(le), i < f->nbuckets ? f->bounds[i] : INFINITY);
        r_printf(r, "%s_bucket", f->name);
        r_labels(r, f, n, le);
        r_printf(r, " %llu\n", (unsigned long long)cum);
    }
    uint64_t sum = atomic_load_explicit(&n->pub.hsum_micro, memory_order_relaxed);
    r_printf(r, "%s_sum", f->name);
    r_labels(r, f, n, NULL);
    r_printf(r, " %llu.%06llu\n", (unsigned long long)(sum / 1000000),
             (unsigned long long)(sum % 1000000));
    r_printf(r, "%s_count", f->name);
    r_labels(r, f, n, NULL);
    r_printf(r, " %llu\n", (unsigned long long)cum);
}

static void r_family(struct render *r, const struct lc_metric_family *f)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    r_header(r, f->name, f->help, type_names[f->type]);
    for (const struct metric_node *n = f->series; n && r->rc == 0; n = n->next) {
        if (f->type == LC_HISTOGRAM) {
            r_histogram(r, f, n);
            continue;
        }
        r_put(r, f->name);
        r_labels(r, f, n, NULL);
        if (f->type == LC_COUNTER)
            r_printf(r, " %llu\n",
                     (unsigned long long)atomic_load_explicit(&n->pub.u, memory_order_relaxed));
        else
            r_printf(r, " %lld\n",
                     (long long)atomic_load_explicit(&n->pub.i, memory_order_relaxed));
    }
}

/* ---- process metrics from /proc/self ---- */

/* What /proc/self/stat tells: fields 14, 15 (cpu ticks), 22 (start ticks), 23, 24. */
struct proc_stat {
    unsigned long long utime, stime, starttime, vsize, rss_pages;
};

static int read_small_file(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "re");
    if (!fp)
        return -errno;
    size_t n = fread(buf, 1, cap - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return n ? 0 : -EIO;
}

static int proc_stat_read(struct proc_stat *ps)
{
    char buf[1024];
    unsigned long long field[25];
    int rc = read_small_file("/proc/self/stat", buf, sizeof(buf));
    if (rc < 0)
        return rc;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (!p || p[1] != ' ' || !p[2])
        return -EINVAL;
    p += 3; /* past ") S": the state letter is field 3 */
    for (int i = 4; i <= 24; i++) {
        char *end;
        field[i] = strtoull(p, &end, 10);
        if (end == p)
            return -EINVAL;
        p = end;
    }
    ps->utime = field[14];
    ps->stime = field[15];
    ps->starttime = field[22];
    ps->vsize = field[23];
    ps->rss_pages = field[24];
    return 0;
}

/* Boot time from /proc/stat; read once, the caller holds reg_mu. */
static long long boot_time(void)
{
    static long long btime = -1;
    if (btime >= 0)
        return btime;
    FILE *fp = fopen("/proc/stat", "re");
    char line[256];
    while (fp && fgets(line, sizeof(line), fp)) {
        if (strncmp(line, "btime", 5) != 0)
            continue;
        char *end;
        errno = 0;
        long long v = strtoll(line + 5, &end, 10); /* skips the blanks, as sscanf's " " did */
        if (end != line + 5 && errno == 0) {
            btime = v;
            break;
        }
    }
    if (fp)
        fclose(fp);
    return btime;
}

/* Entries of a /proc directory but . and .., and (skip_own) the directory's own fd. */
static long count_dir(const char *path, bool skip_own)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    long n = 0;
    char own[16];
    snprintf(own, sizeof(own), "%d", skip_own ? dirfd(d) : -1);
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.' && strcmp(e->d_name, own) != 0;
    closedir(d);
    return n;
}

static void r_gauge_ll(struct render *r, const char *name, const char *help, long long v)
{
    r_header(r, name, help, "gauge");
    r_printf(r, "%s %lld\n", name, v);
}

static void r_process(struct render *r)
{
    struct proc_stat ps;
    long tck = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (proc_stat_read(&ps) == 0 && tck > 0) {
        r_header(r, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                 "counter");
        r_printf(r, "process_cpu_seconds_total %.2f\n", (double)(ps.utime + ps.stime) / tck);
        r_gauge_ll(r, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                   (long long)ps.vsize);
        r_gauge_ll(r, "process_resident_memory_bytes", "Resident memory size in bytes.",
                   (long long)ps.rss_pages * page);
        long long bt = boot_time();
        if (bt >= 0) {
            r_header(r, "process_start_time_seconds",
                     "Start time of the process since unix epoch in seconds.", "gauge");
            r_printf(r, "process_start_time_seconds %.2f\n",
                     (double)bt + (double)ps.starttime / tck);
        }
    }
    long fds = count_dir("/proc/self/fd", true);
    if (fds >= 0)
        r_gauge_ll(r, "process_open_fds", "Number of open file descriptors.", fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        r_header(r, "process_max_fds", "Maximum number of open file descriptors.", "gauge");
        r_printf(r, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
    long threads = count_dir("/proc/self/task", false);
    if (threads >= 0)
        r_gauge_ll(r, "log_capturer_threads", "Number of OS threads in the process.", threads);
}

int64_t lc_metric_series_value(const struct lc_metric_series *s)
{
    switch (s->family->type) {
    case LC_GAUGE:
        return atomic_load_explicit(&s->i, memory_order_relaxed);
    case LC_COUNTER:
        return (int64_t)atomic_load_explicit(&s->u, memory_order_relaxed);
    default:
        return (int64_t)atomic_load_explicit(&s->hcount, memory_order_relaxed);
    }
}

int64_t lc_metric_family_total(const char *name)
{
    int64_t sum = 0;
    pthread_mutex_lock(&reg_mu);
    for (const struct lc_metric_family *f = reg_head; f; f = f->next) {
        if (strcmp(f->name, name) != 0)
            continue;
        for (const struct metric_node *n = f->series; n; n = n->next)
            sum += lc_metric_series_value(&n->pub);
        break;
    }
    pthread_mutex_unlock(&reg_mu);
    return sum;
}

/*
 * Appends every family, then the process_* metrics, to out. 0, or the first
 * -ENOMEM/-E2BIG (out then holds a partial page the caller must not serve).
 */
int lc_metrics_render(struct lc_buf *out)
{
    struct render r = {.b = out, .rc = 0};
    pthread_mutex_lock(&reg_mu);
    for (const struct lc_metric_family *f = reg_head; f && r.rc == 0; f = f->next)
        r_family(&r, f);
    r_process(&r);
    pthread_mutex_unlock(&reg_mu);
    return r.rc;
}
