/* SPDX-License-Identifier: MIT */
/* notify.c: systemd's service notifications through libsystemd's sd_notify. */
#include "core/notify.h"

#include "core/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

/* sd_notify returns < 0 on error, 0 when NOTIFY_SOCKET is unset, > 0 when sent. */
static void send_state(const char *state)
{
    int rc = sd_notify(0, state);

    if (rc < 0)
        lc_logf(LC_LOG_WARN, "notify", NULL, "sd_notify(%.20s): %s", state, strerror(-rc));
}

void lc_notify_ready(const char *status)
{
    char msg[512];

    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status ? status : "running");
    send_state(msg);
}

void lc_notify_reloading(void)
{
    struct timespec ts;
    char msg[128];

    /* MONOTONIC_USEC: what systemd >= 253 wants with RELOADING=1 (older ones ignore it). */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof(msg),
             "RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=%" PRIu64,
             (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
    send_state(msg);
}

void lc_notify_stopping(void)
{
    send_state("STOPPING=1\nSTATUS=stopping: delivering what is in flight");
}

uint64_t lc_notify_watchdog_ms(void)
{
    uint64_t usec = 0;

    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return 0;
    return usec / 2000u > 0 ? usec / 2000u : 1;
}

void lc_notify_watchdog_tick(uv_timer_t *t)
{
    (void)t;
    send_state("WATCHDOG=1");
}
