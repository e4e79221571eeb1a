/* SPDX-License-Identifier: MIT */
/* fuzz_logfmt.c: libFuzzer target for the logfmt decoder: pairs stay inside their buffers. */
#include "parse/logfmt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool inside(const char *p, size_t n, const char *base, size_t cap)
{
    return p >= base && p + n <= base + cap;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1), *scratch = malloc(size ? size : 1);
    struct lc_logfmt_pair kv;
    size_t pos = 0, used = 0, pairs = 0;
    unsigned bad = 0;

    if (!s || !scratch)
        abort();
    memcpy(s, data, size);
    while (lc_logfmt_next(s, size, &pos, &kv, scratch, &used, &bad)) {
        if (kv.key_len == 0 || !inside(kv.key, kv.key_len, s, size))
            abort();
        if (!inside(kv.val, kv.val_len, s, size) && !inside(kv.val, kv.val_len, scratch, used))
            abort();
        if (used > size || pos > size || ++pairs > size)
            abort();
    }
    if (pos != size)
        abort();
    free(scratch);
    free(s);
    return 0;
}
