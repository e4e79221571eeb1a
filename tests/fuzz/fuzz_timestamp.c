/* SPDX-License-Identifier: MIT */
/* fuzz_timestamp.c: libFuzzer target for the RFC3339 / syslog parsers and the formatter. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse/timestamp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whatever parses must format back to a string that parses to the same instant. */
static void roundtrip(int64_t ns)
{
    char out[LC_TS_RFC3339NANO_MAX];
    int64_t back;
    size_t n = lc_ts_format_rfc3339nano(ns, out);
    if (n < 20 || n > 30 || out[n] != '\0')
        abort();
    if (lc_ts_parse_rfc3339(out, n, &back, NULL) != 0 || back != ns)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1); /* exact size: over-reads are caught */
    if (!s)
        abort();
    memcpy(s, data, size);

    int64_t ns, ns2;
    size_t used = 0;
    if (lc_ts_parse_rfc3339(s, size, &ns, NULL) == 0) {
        roundtrip(ns);
        if (lc_ts_parse_rfc3339(s, size, &ns2, &used) != 0 || used != size || ns2 != ns)
            abort();
    }
    if (lc_ts_parse_rfc3339(s, size, &ns, &used) == 0) {
        if (used > size || used < 20)
            abort();
        roundtrip(ns);
    }

    /* now and the zone offset come from the input too, when there is enough of it */
    int64_t now = 1763893863000000000LL;
    long off = 0;
    if (size >= 12) {
        memcpy(&now, data + size - 12, 8);
        int32_t o;
        memcpy(&o, data + size - 4, 4);
        off = (long)(o % (18 * 3600));
    }
    if (lc_ts_parse_syslog(s, size, now, off, &ns, &used) == 0) {
        if (used > size)
            abort();
        roundtrip(ns);
    }
    if (lc_ts_parse_prefix(s, size, now, off, &ns, &used) == 0) {
        if (used > size)
            abort();
        roundtrip(ns);
    }
    if (size >= 8) {
        memcpy(&ns, data, 8);
        roundtrip(ns);
    }
    free(s);
    return 0;
}
