/* SPDX-License-Identifier: MIT */
/* cri.h: decoder of CRI container log lines (the kubelet's /var/log/pods format). */
#ifndef LC_CRI_H
#define LC_CRI_H

#include "parse/docker_json.h"

#include <stddef.h>

/*
 * The CRI log format, as the runtimes (containerd, CRI-O) write it and the
 * kubelet reads it (pkg/kubelet/kuberuntime/logs/logs.go, parseCRILog):
 *
 *   <RFC3339Nano time> ' ' <stdout|stderr> ' ' <tags> ' ' <content>
 *
 * e.g. "2016-10-06T00:17:09.669794202Z stdout F log content". <tags> is a
 * ':'-separated list whose first tag is "P" (partial: the runtime split a
 * line longer than its max_container_log_line_size, 16 KiB by default, and
 * more parts follow) or "F" (full: the line, or its last part, ends here);
 * later tags are ignored, for forward compatibility, as the kubelet does.
 * The content may be empty ("... stdout F ").
 *
 * Decodes one line (without its '\n'; a final '\r' belongs to the content)
 * into dl, the same record as the json-file decoder's so the Docker joiner
 * (lc_docker_join) rebuilds split lines with the same bounds. dl->log points
 * into `line` (no copy; nothing here allocates or writes). Reads strictly
 * inside [line, line + len). Only libc is used, so the module can be fuzzed
 * alone.
 * Returns 0, or -EINVAL for a malformed line (no or a bad timestamp, a stream
 * other than stdout/stderr, a first tag other than P or F, a missing field);
 * the caller counts it and skips it.
 */
int lc_cri_decode(const char *line, size_t len, struct lc_docker_line *dl);

#endif
