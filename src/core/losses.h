/* SPDX-License-Identifier: MIT */
/* losses.h: the losses the agent reported lately, for /health: a bounded list rate limiting never
 * thins. */
#ifndef LC_LOSSES_H
#define LC_LOSSES_H

#include "core/buf.h"

#include <stdint.h>

/*
 * Every place that loses lines (a container removed before its log was read,
 * a file rotated away unread, a vacuumed journal) counts them in its own
 * labelled counter and reports them with lc_loss(): a warning in the agent's
 * log, rate-limited per message like every other line, and an entry in a list
 * that /health shows whole ("losses"), so a name the log's rate limit
 * suppressed during a storm can still be found. The list keeps the newest
 * `health_recent_losses` reports (0: none);
 * log_capturer_loss_reports_total counts every report, kept or not. The
 * message is redacted (core/redact.h) before it is kept or written. All
 * functions are thread-safe; the list outlives reloads.
 */
#define LC_LOSSES_MAX 1024 /* the most health_recent_losses may keep */

/*
 * Sets how many reports are kept (at most LC_LOSSES_MAX), keeping the newest
 * ones already there. 0, or -ENOMEM (the old list stays).
 */
int lc_losses_keep(uint32_t n);
void lc_loss(const char *component, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Appends "losses":{"reported":N,"kept":K,"recent":[{"time":..,"component":..,
 * "msg":..},..]} (oldest first) to out. 0 or -ENOMEM/-E2BIG.
 */
int lc_losses_render(struct lc_buf *out);
/* Frees the list (exit only). */
void lc_losses_shutdown(void);

#endif
