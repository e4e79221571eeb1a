/* SPDX-License-Identifier: MIT */
/* fuzz_config.c: libFuzzer target for the YAML configuration loader. */
#include "core/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lc_config *cfg = NULL;
    char err[512];
    char *yaml = malloc(size + 1);

    if (!yaml)
        return 0;
    memcpy(yaml, data, size);
    yaml[size] = '\0';
    if (lc_config_load_string(yaml, "<fuzz>", &cfg, err, sizeof(err)) == 0)
        lc_config_free(cfg);
    free(yaml);
    return 0;
}
