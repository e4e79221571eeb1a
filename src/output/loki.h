/* SPDX-License-Identifier: MIT */
/*
 * loki.h: the Loki output plugin (loki.c: batches, requests in flight, retry,
 * breaker, dead-letter hand-off). Its options and HTTP set-up are in
 * output/loki_conf.h.
 */
#ifndef LC_LOKI_H
#define LC_LOKI_H

#include "core/plugin.h"
#include "output/loki_conf.h"

extern const struct lc_output_plugin lc_output_loki;

#endif
