/* SPDX-License-Identifier: MIT */
/* log.h: the agent's own log: JSON lines on stderr, rate-limited per message. */
#ifndef LC_LOG_H
#define LC_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

enum lc_log_level { LC_LOG_DEBUG = 0, LC_LOG_INFO, LC_LOG_WARN, LC_LOG_ERROR };

extern int lc_log_threshold; /* messages below it are not even formatted */

/* Parses "debug|info|warn|error"; -EINVAL otherwise. */
int lc_log_level_parse(const char *s, enum lc_log_level *out);
void lc_log_set_level(enum lc_log_level level);
/* Where the log goes (default stderr). For tests. */
void lc_log_set_fd(int fd);

/*
 * Writes {"time":..,"level":..,"component":..,"msg":..} on stderr. `fmt` is the
 * message; its format string (pointer) identifies the message for rate limiting:
 * at most LC_LOG_BURST lines per message in LC_LOG_WINDOW seconds, then one line
 * saying how many were suppressed. Thread-safe.
 */
#define lc_log(level, component, ...)                                                              \
    do {                                                                                           \
        if ((int)(level) >= lc_log_threshold)                                                      \
            lc_log_write((level), (component), NULL, __VA_ARGS__);                                 \
    } while (0)

/*
 * The same with structured fields: `fields` is a JSON object body without braces,
 * e.g. "\"path\":\"/var/log/x\",\"errno\":2", or NULL.
 */
#define lc_logf(level, component, fields, ...)                                                     \
    do {                                                                                           \
        if ((int)(level) >= lc_log_threshold)                                                      \
            lc_log_write((level), (component), (fields), __VA_ARGS__);                             \
    } while (0)

void lc_log_write(enum lc_log_level level, const char *component, const char *fields,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* lc_log_write with a va_list (not filtered by lc_log_threshold: the caller checks). */
void lc_log_vwrite(enum lc_log_level level, const char *component, const char *fields,
                   const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

/*
 * Emits the "suppressed":N line of every message whose window has ended.
 * lc_log_write() does this itself at most once a second; call it from a
 * periodic timer (and at exit) so a storm that stops is still reported.
 */
void lc_log_flush(void);
/* For tests: the monotonic clock (whole seconds) behind rate limiting; NULL restores it. */
void lc_log_set_clock(int64_t (*now_fn)(void));

#define LC_LOG_BURST  5
#define LC_LOG_WINDOW 10

#endif
