/* SPDX-License-Identifier: MIT */
/* losses.c: a ring of the newest loss reports for /health, next to the rate-limited log line. */
#include "core/losses.h"

#include "core/log.h"
#include "core/metrics.h"
#include "core/redact.h"
#include "parse/utf8.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOSS_COMP_MAX 64
#define LOSS_MSG_MAX  512 /* longer reports are cut (the log line has the whole) */

struct loss {
    int64_t time_ns; /* CLOCK_REALTIME */
    char component[LOSS_COMP_MAX];
    char msg[LOSS_MSG_MAX];
};

static pthread_mutex_t losses_mu = PTHREAD_MUTEX_INITIALIZER;
static struct loss *ring; /* cap entries; the newest at (next - 1) % cap */
static uint32_t cap;
static uint32_t next;     /* where the next report goes */
static uint32_t held;     /* entries in use, <= cap */
static uint64_t reported; /* every report since start, kept or not */
static struct lc_metric_series *m_reports;

/* The i-th oldest entry held; caller holds losses_mu. */
static struct loss *held_at(uint32_t i)
{
    return &ring[(next + cap - held + i) % cap];
}

int lc_losses_keep(uint32_t n)
{
    struct loss *r = NULL;
    uint32_t keep;

    if (n > LC_LOSSES_MAX)
        n = LC_LOSSES_MAX;
    if (n && !(r = calloc(n, sizeof(*r))))
        return -ENOMEM;
    pthread_mutex_lock(&losses_mu);
    m_reports = lc_metric_simple(LC_COUNTER, "log_capturer_loss_reports_total",
                                 "Losses reported (each also counted by its own input's "
                                 "series); /health lists the newest health_recent_losses.");
    keep = held < n ? held : n;
    for (uint32_t i = 0; i < keep; i++)
        r[i] = *held_at(held - keep + i);
    free(ring);
    ring = r;
    cap = n;
    held = keep;
    next = n ? keep % n : 0;
    pthread_mutex_unlock(&losses_mu);
    return 0;
}

void lc_loss(const char *component, const char *fmt, ...)
{
    char raw[LOSS_MSG_MAX * 2], msg[LOSS_MSG_MAX];
    struct timespec ts;
    va_list ap;
    int n;
    size_t len;

    if (!component)
        component = "";
    if (LC_LOG_WARN >= lc_log_threshold) {
        va_start(ap, fmt);
        lc_log_vwrite(LC_LOG_WARN, component, NULL, fmt, ap); /* rate-limited per fmt */
        va_end(ap);
    }
    va_start(ap, fmt);
    n = vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    len = n < 0 ? 0 : (size_t)n < sizeof(raw) ? (size_t)n : sizeof(raw) - 1;
    len = lc_redact_text(raw, len, msg, sizeof(msg)); /* NUL-terminated, cut to fit */
    if (len + 1 == sizeof(msg))                       /* cut: maybe inside a UTF-8 character */
        msg[len = lc_utf8_trim_cut(msg, len)] = '\0';
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&losses_mu);
    reported++;
    lc_counter_inc(m_reports);
    if (cap) {
        struct loss *l = &ring[next];
        l->time_ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
        snprintf(l->component, sizeof(l->component), "%s", component);
        memcpy(l->msg, msg, len + 1); /* len < sizeof(msg) == sizeof(l->msg) */
        next = (next + 1) % cap;
        if (held < cap)
            held++;
    }
    pthread_mutex_unlock(&losses_mu);
}

/* {"time":"2026-12-01T23:00:00.123Z","component":..,"msg":..} */
static int render_one(struct lc_buf *out, const struct loss *l, bool first)
{
    time_t sec = (time_t)(l->time_ns / 1000000000LL);
    struct tm tm;
    char t[40];
    int rc;

    gmtime_r(&sec, &tm);
    strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
    rc = lc_buf_printf(out, "%s{\"time\":\"%s.%03dZ\",\"component\":\"", first ? "" : ",", t,
                       (int)(l->time_ns % 1000000000LL / 1000000));
    if (rc == 0)
        rc = lc_buf_json_str(out, l->component, strlen(l->component));
    if (rc == 0)
        rc = lc_buf_append(out, "\",\"msg\":\"", 9);
    if (rc == 0)
        rc = lc_buf_json_str(out, l->msg, strlen(l->msg));
    return rc ? rc : lc_buf_append(out, "\"}", 2);
}

int lc_losses_render(struct lc_buf *out)
{
    int rc;

    pthread_mutex_lock(&losses_mu);
    rc = lc_buf_printf(out, "\"losses\":{\"reported\":%llu,\"kept\":%u,\"recent\":[",
                       (unsigned long long)reported, held);
    for (uint32_t i = 0; i < held && rc == 0; i++)
        rc = render_one(out, held_at(i), i == 0);
    pthread_mutex_unlock(&losses_mu);
    return rc ? rc : lc_buf_append(out, "]}", 2);
}

void lc_losses_shutdown(void)
{
    pthread_mutex_lock(&losses_mu);
    free(ring);
    ring = NULL;
    cap = next = held = 0;
    reported = 0;
    pthread_mutex_unlock(&losses_mu);
}
