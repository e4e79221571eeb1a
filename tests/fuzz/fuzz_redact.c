/* SPDX-License-Identifier: MIT */
/* fuzz_redact.c: libFuzzer target for the redaction rule (URLs from config, server messages). */
#include "core/redact.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Whatever the text: the output fits its buffer and is NUL-terminated; with
 * room enough it is stable (redacting it again changes nothing), and a short
 * buffer gives a prefix of the full answer.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1); /* exact size: over-reads are caught */
    size_t cap = size * 3 + 1;
    char *full = malloc(cap), *again = malloc(cap), *cut = malloc(cap);

    if (!in || !full || !again || !cut)
        abort();
    memcpy(in, data, size);
    size_t n = lc_redact_text(in, size, full, cap);
    if (n >= cap || full[n] != '\0' || strlen(full) != n)
        abort();
    size_t m = lc_redact_text(full, n, again, cap);
    if (m != n || memcmp(full, again, n) != 0)
        abort();
    size_t small = size % 17 + 1;
    size_t k = lc_redact_text(in, size, cut, small);
    if (k >= small || cut[k] != '\0' || memcmp(cut, full, k) != 0)
        abort();
    free(cut);
    free(again);
    free(full);
    free(in);
    return 0;
}
