/* SPDX-License-Identifier: MIT */
/* fuzz_multiline.c: libFuzzer target for the multiline joiner: every line out once, in order. */
#include "core/config.h"
#include "process/stage.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *out;
static size_t out_len, out_cap, out_n;

static void put(const char *line, size_t len)
{
    if (out_len + len + 1 > out_cap)
        abort();
    if (out_n++)
        out[out_len++] = '\n';
    memcpy(out + out_len, line, len);
    out_len += len;
}

static int emit_held(struct lc_chain *c, struct lc_source *src, const struct lc_labels *labels,
                     int64_t ts_ns, const char *line, size_t len)
{
    struct lc_prec *r = lc_chain_run(c, src, labels, ts_ns, line, len);

    if (r)
        put(r->line, r->len);
    return 0;
}

/*
 * The first byte picks the mode and max_lines (its low 5 bits: 32 chains at
 * most, each with 2 MiB of line buffers, so the cache stays far below
 * libFuzzer's RSS limit under ASan); the rest is lines.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const modes[] = {"preset: java", "preset: python", "preset: go",
                                        "firstline: '^\\\\S'"};
    /* one chain per mode and limit, kept: a stop with delivery leaves it empty */
    static struct lc_config *cfgs[32];
    static struct lc_chain *chains[32];
    struct lc_config *cfg = NULL;
    struct lc_chain *c = NULL;
    char yaml[512], err[512];
    size_t start;

    unsigned key;

    if (size < 1)
        return 0;
    key = data[0] & 31u;
    c = chains[key];
    if (c)
        goto run;
    snprintf(yaml, sizeof(yaml),
             "inputs:\n  - type: file\n    name: i\n    paths: [/x]\n    process:\n"
             "      - multiline: {%s, max_lines: %d, max_bytes: 1MiB}\n"
             "outputs: [{type: null, name: o}]\n",
             modes[key & 3], 1 + (int)(key >> 2));
    if (lc_config_load_string(yaml, "fuzz", &cfg, err, sizeof(err)) != 0)
        abort();
    if (lc_chain_new(cfg->inputs[0].process, NULL, "i", &c) != 0)
        abort();
    c->emit_fn = emit_held;
    cfgs[key] = cfg;
    chains[key] = c;
run:
    out_cap = size * 2 + 16;
    out = malloc(out_cap);
    out_len = 0;
    out_n = 0;
    data++;
    size--;
    start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n')
            continue;
        struct lc_prec *r = lc_chain_run(c, NULL, NULL, 1, (const char *)data + start, i - start);
        if (r)
            put(r->line, r->len);
        start = i + 1;
    }
    lc_chain_stop(c, true);
    /* joined again, the records are exactly the input's lines */
    if (out_len != size || memcmp(out, data, size) != 0)
        abort();
    free(out);
    return 0;
}
