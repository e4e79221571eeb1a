/* SPDX-License-Identifier: MIT */
/* watchdog.c: the leak watchdog: a ring of samples of the agent's own resources, slopes, verdicts.
 */
#include "core/watchdog.h"

#include "core/http.h"
#include "core/log.h"
#include "core/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const res_names[LC_WD_NRES + 1] = {
    "threads", "fds_files", "fds_sockets",    "fds_other",           "rss_bytes", "sources",
    "marks",   "streams",   "metadata_cache", "retry_queue_batches", "dlq_bytes", NULL,
};
/* The judged ones: the first LC_WD_JUDGED of res_names. */
static const char *const judged_names[LC_WD_JUDGED + 1] = {
    "threads", "fds_files", "fds_sockets", "fds_other", "rss_bytes", NULL,
};

#define LC_WD_FD_CACHE 16384 /* FD numbers whose kind is cached: 48 KiB */
#define LC_WD_RECHECK  128   /* cached kinds checked again per sample */

enum { WD_KIND_NONE = 0, WD_KIND_FILE, WD_KIND_SOCKET, WD_KIND_OTHER, WD_NKINDS };

struct wd_fd {
    uint16_t gen; /* the sample that last saw this number open */
    uint8_t kind;
};

struct lc_watchdog {
    struct lc_watchdog_conf conf;
    struct wd_fd fds[LC_WD_FD_CACHE];
    uint16_t gen;
    long recheck_from; /* cached numbers from here on are checked again */
    int64_t t_ms[LC_WD_RING];
    struct lc_wd_sample s[LC_WD_RING];
    unsigned n;    /* samples held, at most LC_WD_RING */
    unsigned next; /* where the next sample goes */
    unsigned growing;
    struct lc_metric_series *m_growth[LC_WD_JUDGED];
    struct lc_metric_series *m_value[LC_WD_NRES];
    struct lc_metric_series *m_samples;
};

const char *lc_watchdog_res_name(enum lc_wd_res r)
{
    return (unsigned)r < LC_WD_NRES ? res_names[r] : "?";
}

/* ---- probe ---- */

static int64_t count_tasks(void)
{
    DIR *d = opendir("/proc/self/task");
    int64_t n = 0;
    if (!d)
        return -errno;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The kind of an FD we own: fstat() on the number (a readlink of /proc/self/fd/N costs more). */
static uint8_t fd_kind(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return WD_KIND_NONE; /* closed since readdir */
    if (S_ISSOCK(st.st_mode))
        return WD_KIND_SOCKET;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
        return WD_KIND_FILE;
    return WD_KIND_OTHER;
}

/*
 * FDs by kind: regular files and directories, sockets, and anything else
 * (pipes, eventfds, epoll, inotify, devices). A syscall per FD is what a
 * sample would cost with thousands of FDs, so the kind of each FD number is
 * cached: only numbers that were not open at the last sample are fstat()ed,
 * plus LC_WD_RECHECK cached ones per sample in rotation, so a number closed
 * and reused for another kind between two samples is corrected within
 * (open FDs / LC_WD_RECHECK) samples. Numbers past the cache are fstat()ed.
 */
static int count_fds(struct lc_watchdog *w, int64_t *n)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -errno;
    int own = dirfd(d);
    unsigned rechecked = 0;
    long last = 0;
    w->gen++;
    for (struct dirent *e; (e = readdir(d));) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (e->d_name[0] == '.' || *end || fd == own || fd < 0)
            continue;
        uint8_t kind;
        if (fd >= LC_WD_FD_CACHE) {
            kind = fd_kind((int)fd);
        } else {
            struct wd_fd *c = &w->fds[fd];
            bool known = c->gen == (uint16_t)(w->gen - 1) && c->kind != WD_KIND_NONE;
            if (!known || (fd >= w->recheck_from && rechecked < LC_WD_RECHECK)) {
                c->kind = fd_kind((int)fd);
                if (known)
                    rechecked++, last = fd;
            }
            c->gen = w->gen;
            kind = c->kind;
        }
        n[kind]++;
    }
    closedir(d);
    /* readdir lists numbers in order: the next sample goes on after the last one checked */
    w->recheck_from = rechecked == LC_WD_RECHECK ? last + 1 : 0;
    return 0;
}

static int64_t rss_bytes(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    unsigned long long size = 0, resident = 0;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2) // NOLINT(cert-err34-c): checked count
        return -EINVAL;
    return (int64_t)resident * sysconf(_SC_PAGESIZE);
}

static int64_t gauge(const char *name)
{
    return lc_metric_family_total(name);
}

static int64_t at_least_zero(int64_t v)
{
    return v < 0 ? 0 : v;
}

int lc_watchdog_probe(struct lc_watchdog *w, struct lc_wd_sample *s)
{
    int64_t n[WD_NKINDS] = {0};
    memset(s, 0, sizeof(*s));
    lc_watchdog_test_leak();
    int rc = count_fds(w, n);
    if (rc < 0)
        return rc;
    int64_t files = n[WD_KIND_FILE], sockets = n[WD_KIND_SOCKET], other = n[WD_KIND_OTHER];
    s->v[LC_WD_THREADS] = count_tasks();
    s->v[LC_WD_RSS] = rss_bytes();
    if (s->v[LC_WD_THREADS] < 0 || s->v[LC_WD_RSS] < 0)
        return (int)(s->v[LC_WD_THREADS] < 0 ? s->v[LC_WD_THREADS] : s->v[LC_WD_RSS]);
    /* what the configuration explains: one FD per tailed file, one socket per stream/request */
    files -= gauge("log_capturer_file_open_files") + gauge("log_capturer_file_rotated_open_files");
    sockets -= gauge("log_capturer_docker_api_streams_open") +
               gauge("log_capturer_loki_inflight_requests");
    s->v[LC_WD_FDS_FILES] = at_least_zero(files);
    s->v[LC_WD_FDS_SOCKETS] = at_least_zero(sockets);
    s->v[LC_WD_FDS_OTHER] = other;
    s->v[LC_WD_STREAMS] = gauge("log_capturer_docker_streams");
    s->v[LC_WD_META] = gauge("log_capturer_docker_meta_entries");
    s->v[LC_WD_RETRY] = gauge("log_capturer_loki_retry_queue_batches");
    s->v[LC_WD_DLQ] = gauge("log_capturer_dlq_bytes");
    return 0;
}

/* ---- the model ---- */

LC_METRIC_VALUES_FIT(struct lc_watchdog, m_growth, judged_names);
LC_METRIC_VALUES_FIT(struct lc_watchdog, m_value, res_names);

/* One watchdog per agent: no instance label. */
static const struct lc_metric_row watchdog_series[] = {
    {LC_GAUGE, "log_capturer_watchdog_growth",
     "1 while the watchdog sees the resource grow steadily (a leak), else 0.",
     offsetof(struct lc_watchdog, m_growth), "resource", judged_names},
    {LC_GAUGE, "log_capturer_watchdog_value",
     "The watchdog's last sample of the resource (FDs: those the configuration does not "
     "explain).",
     offsetof(struct lc_watchdog, m_value), "resource", res_names},
    {LC_COUNTER, "log_capturer_watchdog_samples_total", "Samples the leak watchdog took.",
     offsetof(struct lc_watchdog, m_samples)},
};

struct lc_watchdog *lc_watchdog_new(const struct lc_watchdog_conf *conf)
{
    struct lc_watchdog *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->conf = *conf;
    lc_metric_register_rows(w, watchdog_series, LC_METRIC_ROWS(watchdog_series), NULL, NULL);
    for (int r = 0; r < LC_WD_JUDGED; r++)
        lc_gauge_set(w->m_growth[r], 0);
    lc_health_set("watchdog", LC_HEALTH_OK, "no growth");
    return w;
}

void lc_watchdog_free(struct lc_watchdog *w)
{
    if (w)
        lc_health_remove("watchdog"); /* a reload may turn it off */
    free(w);
}

/* The ring index of the i-th oldest sample. */
static unsigned idx(const struct lc_watchdog *w, unsigned i)
{
    return (w->next + LC_WD_RING - w->n + i) % LC_WD_RING;
}

/* The first (oldest) sample inside the window ending at the newest one. */
static unsigned window_start(const struct lc_watchdog *w)
{
    if (w->n == 0)
        return 0;
    int64_t newest = w->t_ms[idx(w, w->n - 1)];
    unsigned i = 0;
    while (i + 1 < w->n && newest - w->t_ms[idx(w, i)] > w->conf.window_ms)
        i++;
    return i;
}

/* Least squares over the samples [from, n): slope in units per minute. */
static double fit(const struct lc_watchdog *w, enum lc_wd_res r, unsigned from)
{
    unsigned k = w->n - from;
    if (k < 2)
        return 0;
    double t0 = (double)w->t_ms[idx(w, from)];
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (unsigned i = from; i < w->n; i++) {
        double x = ((double)w->t_ms[idx(w, i)] - t0) / 60000.0;
        double y = (double)w->s[idx(w, i)].v[r];
        sx += x, sy += y, sxx += x * x, sxy += x * y;
    }
    double den = k * sxx - sx * sx;
    return den > 0 ? (k * sxy - sx * sy) / den : 0;
}

double lc_watchdog_slope(const struct lc_watchdog *w, enum lc_wd_res r)
{
    return fit(w, r, window_start(w));
}

static int64_t threshold(const struct lc_watchdog *w, enum lc_wd_res r)
{
    switch (r) {
    case LC_WD_THREADS:
        return w->conf.max_threads_per_min;
    case LC_WD_RSS:
        return w->conf.max_rss_per_min;
    default:
        return w->conf.max_fds_per_min;
    }
}

/* The verdict described in watchdog.h; *slope is the fitted slope. */
static bool growing(const struct lc_watchdog *w, enum lc_wd_res r, double *slope)
{
    unsigned from = window_start(w), k = w->n - from;
    *slope = fit(w, r, from);
    if (k < LC_WD_MIN_SAMPLES || *slope <= (double)threshold(w, r))
        return false;
    unsigned q = k / 4, rises = 0;
    int64_t first_max = INT64_MIN, last_min = INT64_MAX;
    for (unsigned i = 0; i < k; i++) {
        int64_t v = w->s[idx(w, from + i)].v[r];
        if (i < q && v > first_max)
            first_max = v;
        if (i >= k - q && v < last_min)
            last_min = v;
        if (i > 0 && v > w->s[idx(w, from + i - 1)].v[r])
            rises++;
    }
    return last_min > first_max && rises >= LC_WD_MIN_RISES;
}

unsigned lc_watchdog_add(struct lc_watchdog *w, int64_t t_ms, const struct lc_wd_sample *s)
{
    char detail[256];
    size_t dl = 0;
    unsigned now_growing = 0;

    w->t_ms[w->next] = t_ms;
    w->s[w->next] = *s;
    w->next = (w->next + 1) % LC_WD_RING;
    if (w->n < LC_WD_RING)
        w->n++;
    lc_counter_inc(w->m_samples);
    for (int r = 0; r < LC_WD_NRES; r++)
        lc_gauge_set(w->m_value[r], s->v[r]);
    detail[0] = '\0';
    for (int r = 0; r < LC_WD_JUDGED; r++) {
        double slope;
        bool g = growing(w, (enum lc_wd_res)r, &slope);
        lc_gauge_set(w->m_growth[r], g);
        if (!g)
            continue;
        now_growing |= 1u << r;
        /* one message per resource, so the log's rate limit applies to each */
        lc_logf(LC_LOG_WARN, "watchdog", NULL,
                "%s grows %.2f/min over the last %u samples (threshold %lld/min): a leak?",
                res_names[r], slope, w->n - window_start(w), (long long)threshold(w, r));
        if (dl < sizeof(detail))
            dl += (size_t)snprintf(detail + dl, sizeof(detail) - dl, "%s%s grows %.2f/min",
                                   dl ? "; " : "", res_names[r], slope);
    }
    if (now_growing)
        lc_health_set("watchdog", LC_HEALTH_DEGRADED, detail);
    else if (w->growing)
        lc_health_set("watchdog", LC_HEALTH_OK, "no growth");
    w->growing = now_growing;
    return now_growing;
}

/* ---- test knob ---- */

#ifdef LC_TEST_KNOBS
static void *leaked_thread(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

void lc_watchdog_test_leak(void)
{
    const char *k = getenv("LC_TEST_WATCHDOG_LEAK");
    if (!k)
        return;
    if (strcmp(k, "fd") == 0) {
        if (open("/proc/self/exe", O_RDONLY | O_CLOEXEC) < 0) // NOLINT: the leak is the point
            lc_log(LC_LOG_ERROR, "watchdog", "test leak: cannot open /proc/self/exe");
    } else if (strcmp(k, "thread") == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, leaked_thread, NULL) == 0)
            pthread_detach(t);
    }
}
#else
void lc_watchdog_test_leak(void)
{
}
#endif
