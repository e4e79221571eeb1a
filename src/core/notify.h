/* SPDX-License-Identifier: MIT */
/* notify.h: systemd's service notifications (sd_notify): readiness, reload, stop, watchdog. */
#ifndef LC_NOTIFY_H
#define LC_NOTIFY_H

#include <stdint.h>
#include <uv.h>

/*
 * Under systemd (Type=notify) the unit's NOTIFY_SOCKET is set: the agent says
 * READY=1 once every input and output started (when /ready turns 200),
 * RELOADING=1 when a SIGHUP's valid configuration starts draining (READY=1
 * again once the new one started), and STOPPING=1 when a shutdown begins.
 * Without NOTIFY_SOCKET every call is a no-op. A notification is one datagram
 * on a local socket: nothing on the event loop waits on it.
 *
 * The watchdog: with WatchdogSec= systemd sets WATCHDOG_USEC; a timer on the
 * event loop sends WATCHDOG=1 every half of it, so a loop that hangs stops
 * sending and systemd kills and restarts the agent.
 */
void lc_notify_ready(const char *status);
void lc_notify_reloading(void);
void lc_notify_stopping(void);

/* The watchdog interval (half of WATCHDOG_USEC) in ms, or 0 when systemd wants none. */
uint64_t lc_notify_watchdog_ms(void);
/* A uv_timer_t callback: sends WATCHDOG=1. */
void lc_notify_watchdog_tick(uv_timer_t *t);

#endif
