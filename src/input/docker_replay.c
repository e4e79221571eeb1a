/* SPDX-License-Identifier: MIT */
/* docker_replay.c: recognises records a followed Docker log stream sends a second time. */
#include "input/docker_replay.h"

static uint64_t replay_hash(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a 64 */

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

bool lc_docker_replay_seen(const struct lc_docker_replay *r, int64_t ts, const char *line,
                           size_t len)
{
    uint64_t h;
    uint32_t n;

    if (r->ts == 0 || ts > r->ts)
        return false;
    if (ts < r->ts)
        return true;
    h = replay_hash(line, len);
    n = r->n < LC_DOCKER_REPLAY_SAME_TS ? r->n : LC_DOCKER_REPLAY_SAME_TS;
    for (uint32_t i = 0; i < n; i++)
        if (r->hash[i] == h)
            return true;
    return false;
}

void lc_docker_replay_note(struct lc_docker_replay *r, int64_t ts, const char *line, size_t len)
{
    if (ts > r->ts) {
        r->ts = ts;
        r->n = 0;
    } else if (ts < r->ts) {
        return;
    }
    if (r->n < LC_DOCKER_REPLAY_SAME_TS)
        r->hash[r->n] = replay_hash(line, len);
    if (r->n < UINT32_MAX)
        r->n++;
}
