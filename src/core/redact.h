/* SPDX-License-Identifier: MIT */
/* redact.h: the one rule that masks credentials wherever a URL, option or message is shown. */
#ifndef LC_REDACT_H
#define LC_REDACT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Every place that shows a configuration value, a URL or a text that may
 * quote one (agent logs, `check-config --print`, /health, metric labels,
 * libcurl and server error messages, DLQ metadata, `dlq` output) passes it
 * through this module first. The rule:
 *   - URL userinfo (user:pass before the host) becomes "***";
 *   - the value of a query parameter whose name looks like a credential
 *     (lc_redact_name_is_secret: token, key, secret, password, auth, sig...)
 *     becomes "***";
 *   - in free text, the credential after "Bearer " or "Basic ", and the value
 *     after a credential header name ("Authorization: ...") become "***";
 *   - options flagged LC_OPT_SECRET, headers that carry credentials
 *     (lc_redact_header_is_secret) and headers configured `secret: true` are
 *     shown as LC_REDACTED as a whole (by their printers).
 * Masking too much is accepted; showing a secret is not. No allocation, no
 * state: callers give the output buffer, which is always NUL-terminated.
 */
#define LC_REDACTED "***"

/*
 * Copies in[0..len) into out (outlen > 0) with the rule above applied; a text
 * longer than out is cut (never in the middle of a mask). Returns the length
 * written (excluding the NUL). in may hold NULs; they end the text.
 */
size_t lc_redact_text(const char *in, size_t len, char *out, size_t outlen);
/* lc_redact_text on a NUL-terminated URL (or any string); returns out. NULL in gives "". */
const char *lc_redact_url(const char *url, char *out, size_t outlen);
/*
 * True when a name (query parameter, option key) of len bytes looks like it
 * holds a credential: contains token, secret, passw, key, auth, credential,
 * session, cookie or signature, or is exactly sig, pwd or pass (ASCII case
 * insensitive).
 */
bool lc_redact_name_is_secret(const char *name, size_t len);
/*
 * True when an HTTP header of that name carries credentials: Authorization,
 * Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key, and any name
 * lc_redact_name_is_secret accepts. X-Scope-OrgID (the Loki tenant) is not.
 */
bool lc_redact_header_is_secret(const char *name);

#endif
