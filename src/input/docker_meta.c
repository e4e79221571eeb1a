/* SPDX-License-Identifier: MIT */
/* docker_meta.c: container metadata cache (id -> name, image, compose, labels), one inspect per
 * container. */
#include "input/docker_meta.h"

#include "core/metrics.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * A fixed-size chained hash table (sized at creation for max_entries cached
 * plus max_entries pending) of nodes. A node is either cached (on the age
 * list, oldest first: expiry and eviction both pop from its head, because
 * every entry lives the same ttl) or pending (an inspect in flight, with the
 * list of waiters to call). A node's strings and label array live in one
 * allocation, `mem`.
 */

#define LC_META_COMPOSE_PROJECT "com.docker.compose.project"
#define LC_META_COMPOSE_SERVICE "com.docker.compose.service"

struct lc_meta_waiter {
    lc_docker_meta_fn cb;
    void *arg;
    struct lc_meta_waiter *next;
};

struct lc_meta_node {
    struct lc_docker_meta_entry pub;
    char *key; /* the id looked up: in mem, or its own allocation (key_owned) */
    void *mem;
    uint32_t hash;
    bool key_owned;
    bool pending;
    bool delivering;  /* its waiters are being called: removal only unlinks it */
    bool invalidated; /* do not keep (pending), or unlinked while delivering */
    struct lc_meta_waiter *waiters;
    struct lc_docker_meta *m;
    struct lc_meta_node *hnext;
    struct lc_meta_node *older, *newer; /* age list, cached nodes only */
};

struct lc_docker_meta {
    lc_docker_meta_inspect_fn inspect;
    lc_docker_meta_cancel_fn cancel;
    void *inspect_ctx;
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;
    int64_t ttl_ms;
    size_t max_entries;
    size_t max_labels;
    char **allow;
    size_t nallow;
    struct lc_meta_node **buckets;
    size_t nbuckets; /* power of two */
    struct lc_meta_node *oldest, *newest;
    struct lc_docker_meta_stats st;
    int depth;    /* inside waiter callbacks */
    bool freeing; /* lc_docker_meta_free was called inside a callback */
    struct lc_metric_series *m_hits;
    struct lc_metric_series *m_misses;
    struct lc_metric_series *m_size;
    struct lc_metric_series *m_removed[3]; /* by reason: REMOVED_SIZE, _TTL, _INVALIDATED */
};

enum { REMOVED_SIZE, REMOVED_TTL, REMOVED_INVALIDATED };

static int lc_meta_api_inspect(void *ctx, const char *id, lc_docker_client_inspect_fn done,
                               void *arg)
{
    return lc_docker_client_inspect(ctx, id, done, arg);
}

static unsigned lc_meta_api_cancel(void *ctx, const void *arg)
{
    return lc_docker_client_cancel(ctx, arg);
}

static int64_t lc_meta_mono_ms(void *ctx)
{
    struct timespec ts;

    (void)ctx;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t lc_meta_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static struct lc_meta_node *lc_meta_find(struct lc_docker_meta *m, const char *id, uint32_t h)
{
    struct lc_meta_node *n;

    for (n = m->buckets[h & (m->nbuckets - 1)]; n; n = n->hnext)
        if (n->hash == h && strcmp(n->key, id) == 0)
            return n;
    return NULL;
}

static void lc_meta_hash_insert(struct lc_docker_meta *m, struct lc_meta_node *n)
{
    struct lc_meta_node **b = &m->buckets[n->hash & (m->nbuckets - 1)];

    n->hnext = *b;
    *b = n;
}

static void lc_meta_hash_remove(struct lc_docker_meta *m, struct lc_meta_node *n)
{
    struct lc_meta_node **pp = &m->buckets[n->hash & (m->nbuckets - 1)];

    for (; *pp; pp = &(*pp)->hnext) {
        if (*pp == n) {
            *pp = n->hnext;
            n->hnext = NULL;
            return;
        }
    }
}

static void lc_meta_age_append(struct lc_docker_meta *m, struct lc_meta_node *n)
{
    n->newer = NULL;
    n->older = m->newest;
    if (m->newest)
        m->newest->newer = n;
    else
        m->oldest = n;
    m->newest = n;
}

static void lc_meta_age_unlink(struct lc_docker_meta *m, struct lc_meta_node *n)
{
    if (n->older)
        n->older->newer = n->newer;
    else
        m->oldest = n->newer;
    if (n->newer)
        n->newer->older = n->older;
    else
        m->newest = n->older;
    n->older = n->newer = NULL;
}

static void lc_meta_node_free(struct lc_meta_node *n)
{
    struct lc_meta_waiter *w;

    while ((w = n->waiters) != NULL) {
        n->waiters = w->next;
        free(w);
    }
    if (n->key_owned)
        free(n->key);
    free(n->mem);
    free(n);
}

/* Removes a cached node; reason counts it. */
static void lc_meta_drop(struct lc_docker_meta *m, struct lc_meta_node *n,
                         struct lc_metric_series *reason, uint64_t *counter)
{
    lc_meta_hash_remove(m, n);
    lc_meta_age_unlink(m, n);
    m->st.size--;
    lc_gauge_set(m->m_size, (int64_t)m->st.size);
    if (counter)
        (*counter)++;
    lc_counter_inc(reason);
    if (n->delivering)
        n->invalidated = true; /* lc_meta_inspect_done frees it after its waiters */
    else
        lc_meta_node_free(n);
}

static bool lc_meta_fresh(struct lc_docker_meta *m, const struct lc_meta_node *n, int64_t now)
{
    return now - n->pub.fetched_ms < m->ttl_ms;
}

static void lc_meta_expire(struct lc_docker_meta *m, int64_t now)
{
    while (m->oldest && !lc_meta_fresh(m, m->oldest, now))
        lc_meta_drop(m, m->oldest, m->m_removed[REMOVED_TTL], &m->st.expirations);
}

static bool lc_meta_allowed(const struct lc_docker_meta *m, const char *key)
{
    for (size_t i = 0; i < m->nallow; i++)
        if (fnmatch(m->allow[i], key, 0) == 0)
            return true;
    return false;
}

static int lc_meta_kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct lc_kv *)a)->key, ((const struct lc_kv *)b)->key);
}

static char *lc_meta_put_str(char **p, const char *s)
{
    size_t n = strlen(s ? s : "") + 1;
    char *out = *p;

    memcpy(out, s ? s : "", n);
    *p += n;
    return out;
}

/*
 * Fills n->pub (and n->mem, n->key) from an inspect: one allocation holding
 * the allowlisted label array, the array of all labels and every string.
 * 0 or -ENOMEM.
 */
static int lc_meta_fill(struct lc_docker_meta *m, struct lc_meta_node *n, const char *id,
                        const struct lc_docker_inspect *c, int64_t now)
{
    const char *project = "", *service = "";
    size_t nl = 0, size = 0;
    char *p;
    struct lc_kv *kv, *all;

    for (size_t i = 0; i < c->nlabels; i++) {
        const char *k = c->labels[i].key, *v = c->labels[i].value;
        if (strcmp(k, LC_META_COMPOSE_PROJECT) == 0)
            project = v;
        else if (strcmp(k, LC_META_COMPOSE_SERVICE) == 0)
            service = v;
        if (nl < m->max_labels && lc_meta_allowed(m, k))
            nl++;
        /* every label is kept, for include/exclude (bounded by the inspect body) */
        size += strlen(k) + strlen(v) + 2;
    }
    size += (nl + c->nlabels) * sizeof(struct lc_kv);
    size += strlen(id) + strlen(c->name ? c->name : "") + strlen(c->image ? c->image : "") +
            strlen(project) + strlen(service) + strlen(c->log_path ? c->log_path : "") +
            strlen(c->log_driver ? c->log_driver : "") + 7;
    n->mem = malloc(size);
    if (!n->mem)
        return -ENOMEM;
    kv = n->mem;
    all = kv + nl; /* both arrays first (aligned), then the strings */
    p = (char *)(all + c->nlabels);
    nl = 0;
    for (size_t i = 0; i < c->nlabels; i++) {
        all[i].key = lc_meta_put_str(&p, c->labels[i].key);
        all[i].value = lc_meta_put_str(&p, c->labels[i].value);
        if (nl < m->max_labels && lc_meta_allowed(m, all[i].key))
            kv[nl++] = all[i]; /* the allowlisted ones share the strings */
    }
    qsort(kv, nl, sizeof(*kv), lc_meta_kv_cmp);
    char *key = lc_meta_put_str(&p, id); /* id may be n->key itself: copy, then free */
    if (n->key_owned)
        free(n->key);
    n->key = key;
    n->key_owned = false;
    n->pub.id = n->key;
    n->pub.name = lc_meta_put_str(&p, c->name);
    n->pub.image = lc_meta_put_str(&p, c->image);
    n->pub.compose_project = lc_meta_put_str(&p, project);
    n->pub.compose_service = lc_meta_put_str(&p, service);
    n->pub.log_path = lc_meta_put_str(&p, c->log_path);
    n->pub.log_driver = lc_meta_put_str(&p, c->log_driver);
    n->pub.labels = kv;
    n->pub.nlabels = nl;
    n->pub.all_labels = all;
    n->pub.nall_labels = c->nlabels;
    n->pub.tty = c->tty;
    n->pub.fetched_ms = now;
    return 0;
}

/* Makes room for one more cached entry. */
static void lc_meta_make_room(struct lc_docker_meta *m, int64_t now)
{
    lc_meta_expire(m, now);
    while (m->st.size >= m->max_entries && m->oldest)
        lc_meta_drop(m, m->oldest, m->m_removed[REMOVED_SIZE], &m->st.evictions);
}

static void lc_meta_cache(struct lc_docker_meta *m, struct lc_meta_node *n, int64_t now)
{
    lc_meta_make_room(m, now);
    lc_meta_age_append(m, n);
    m->st.size++;
    lc_gauge_set(m->m_size, (int64_t)m->st.size);
}

static void lc_meta_really_free(struct lc_docker_meta *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct lc_meta_node *n = m->buckets[i];
        while (n) {
            struct lc_meta_node *next = n->hnext;
            if (n->pending)
                m->cancel(m->inspect_ctx, n);
            lc_meta_node_free(n);
            n = next;
        }
    }
    lc_gauge_set(m->m_size, 0);
    for (size_t i = 0; i < m->nallow; i++)
        free(m->allow[i]);
    free(m->allow);
    free(m->buckets);
    free(m);
}

static void lc_meta_inspect_done(void *arg, const struct lc_docker_client_result *r,
                                 const struct lc_docker_inspect *c)
{
    struct lc_meta_node *n = arg;
    struct lc_docker_meta *m = n->m;
    struct lc_meta_waiter *w;
    int64_t now = m->now_ms(m->now_ctx);
    int err = r->err;

    n->pending = false;
    m->st.pending--;
    lc_meta_hash_remove(m, n);
    if (err == 0 && !c)
        err = -EPROTO;
    if (err < 0)
        m->st.inspect_errors++;
    else
        err = lc_meta_fill(m, n, n->key, c, now);
    if (err == 0 && !n->invalidated) {
        /* A put() may have cached this id meanwhile: the newer answer wins. */
        struct lc_meta_node *old = lc_meta_find(m, n->key, n->hash);
        if (old && !old->pending)
            lc_meta_drop(m, old, NULL, NULL);
        lc_meta_cache(m, n, now);
        lc_meta_hash_insert(m, n);
    }
    n->delivering = true;
    m->depth++;
    while ((w = n->waiters) != NULL && !m->freeing) {
        n->waiters = w->next;
        w->cb(w->arg, err, err == 0 ? &n->pub : NULL);
        free(w);
    }
    m->depth--;
    n->delivering = false;
    if (err != 0 || n->invalidated)
        lc_meta_node_free(n);
    if (m->freeing && m->depth == 0)
        lc_meta_really_free(m);
}

static const char *const removed_reasons[] = {"size", "ttl", "invalidated", NULL}; /* REMOVED_* */

/* The cache's series, labelled input=<name>. */
static const struct lc_metric_row meta_series[] = {
    {LC_COUNTER, "log_capturer_docker_meta_hits_total", "Container metadata cache hits.",
     offsetof(struct lc_docker_meta, m_hits)},
    {LC_COUNTER, "log_capturer_docker_meta_misses_total",
     "Container metadata cache misses (an inspect was needed).",
     offsetof(struct lc_docker_meta, m_misses)},
    {LC_GAUGE, "log_capturer_docker_meta_entries", "Containers in the metadata cache.",
     offsetof(struct lc_docker_meta, m_size)},
    {LC_COUNTER, "log_capturer_docker_meta_removed_total",
     "Metadata cache entries removed, by reason.", offsetof(struct lc_docker_meta, m_removed),
     "reason", removed_reasons},
};
LC_METRIC_VALUES_FIT(struct lc_docker_meta, m_removed, removed_reasons);

struct lc_docker_meta *lc_docker_meta_new(struct lc_docker_client *client,
                                          const struct lc_docker_meta_opts *o)
{
    struct lc_docker_meta_opts d = {0};
    struct lc_docker_meta *m;
    const char *name;

    if (!o)
        o = &d;
    if ((!client && !o->inspect) || (o->nallow > 0 && !o->labels_allowlist))
        return NULL;
    m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->inspect = o->inspect ? o->inspect : lc_meta_api_inspect;
    m->cancel = o->inspect ? o->cancel : lc_meta_api_cancel;
    m->inspect_ctx = o->inspect ? o->inspect_ctx : client;
    m->now_ms = o->now_ms ? o->now_ms : lc_meta_mono_ms;
    m->now_ctx = o->now_ctx;
    m->ttl_ms = o->ttl_ms > 0 ? o->ttl_ms : 60000;
    m->max_entries = o->max_entries ? o->max_entries : 1024;
    m->max_labels = o->max_labels ? o->max_labels : 32;
    if (!m->cancel)
        goto out_free;
    m->nbuckets = 16;
    while (m->nbuckets < m->max_entries * 2)
        m->nbuckets <<= 1;
    m->buckets = calloc(m->nbuckets, sizeof(struct lc_meta_node *));
    if (!m->buckets)
        goto out_free;
    if (o->nallow) {
        m->allow = calloc(o->nallow, sizeof(*m->allow));
        if (!m->allow)
            goto out_free;
        for (; m->nallow < o->nallow; m->nallow++) {
            m->allow[m->nallow] = strdup(o->labels_allowlist[m->nallow]);
            if (!m->allow[m->nallow])
                goto out_free;
        }
    }
    name = o->name ? o->name : "docker";
    lc_metric_register_rows(m, meta_series, LC_METRIC_ROWS(meta_series), "input", name);
    return m;

out_free:
    for (size_t i = 0; i < m->nallow; i++)
        free(m->allow[i]);
    free(m->allow);
    free(m->buckets);
    free(m);
    return NULL;
}

void lc_docker_meta_free(struct lc_docker_meta *m)
{
    if (!m || m->freeing)
        return;
    m->freeing = true;
    if (m->depth == 0)
        lc_meta_really_free(m);
}

static int lc_meta_add_waiter(struct lc_meta_node *n, lc_docker_meta_fn cb, void *arg)
{
    struct lc_meta_waiter *w = malloc(sizeof(*w)), **pp;

    if (!w)
        return -ENOMEM;
    w->cb = cb;
    w->arg = arg;
    w->next = NULL;
    for (pp = &n->waiters; *pp; pp = &(*pp)->next)
        ;
    *pp = w; /* in order of arrival */
    return 0;
}

int lc_docker_meta_get(struct lc_docker_meta *m, const char *id, lc_docker_meta_fn cb, void *arg,
                       const struct lc_docker_meta_entry **out)
{
    struct lc_meta_node *n;
    uint32_t h;
    int64_t now;
    int rc;

    if (!m || !cb || !out || m->freeing || !lc_docker_client_id_valid(id))
        return -EINVAL;
    *out = NULL;
    h = lc_meta_hash(id);
    now = m->now_ms(m->now_ctx);
    n = lc_meta_find(m, id, h);
    if (n && !n->pending) {
        if (lc_meta_fresh(m, n, now)) {
            m->st.hits++;
            lc_counter_inc(m->m_hits);
            *out = &n->pub;
            return 0;
        }
        lc_meta_drop(m, n, m->m_removed[REMOVED_TTL], &m->st.expirations);
        n = NULL;
    }
    m->st.misses++;
    lc_counter_inc(m->m_misses);
    if (n) /* an inspect is under way: join it */
        return lc_meta_add_waiter(n, cb, arg) == 0 ? LC_DOCKER_META_PENDING : -ENOMEM;
    if (m->st.pending >= m->max_entries)
        return -EBUSY;
    n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->m = m;
    n->hash = h;
    n->pending = true;
    n->key = strdup(id);
    n->key_owned = true;
    if (!n->key || lc_meta_add_waiter(n, cb, arg) < 0) {
        rc = -ENOMEM;
        goto out_node;
    }
    lc_meta_hash_insert(m, n);
    m->st.pending++;
    m->st.inspects++;
    rc = m->inspect(m->inspect_ctx, id, lc_meta_inspect_done, n);
    if (rc < 0) {
        lc_meta_hash_remove(m, n);
        m->st.pending--;
        m->st.inspect_errors++;
        goto out_node;
    }
    return LC_DOCKER_META_PENDING;

out_node:
    lc_meta_node_free(n);
    return rc;
}

const struct lc_docker_meta_entry *lc_docker_meta_peek(struct lc_docker_meta *m, const char *id)
{
    struct lc_meta_node *n;

    if (!m || !lc_docker_client_id_valid(id))
        return NULL;
    n = lc_meta_find(m, id, lc_meta_hash(id));
    if (!n || n->pending || !lc_meta_fresh(m, n, m->now_ms(m->now_ctx)))
        return NULL;
    return &n->pub;
}

int lc_docker_meta_put(struct lc_docker_meta *m, const char *id, const struct lc_docker_inspect *c)
{
    struct lc_meta_node *n, *old;
    uint32_t h;
    int64_t now;

    if (!m || !c || !lc_docker_client_id_valid(id))
        return -EINVAL;
    h = lc_meta_hash(id);
    now = m->now_ms(m->now_ctx);
    n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->m = m;
    n->hash = h;
    if (lc_meta_fill(m, n, id, c, now) < 0) {
        free(n);
        return -ENOMEM;
    }
    old = lc_meta_find(m, id, h);
    if (old && !old->pending)
        lc_meta_drop(m, old, NULL, NULL);
    /* A pending node for this id stays; its answer will replace this one. */
    lc_meta_cache(m, n, now);
    lc_meta_hash_insert(m, n);
    return 0;
}

unsigned lc_docker_meta_cancel(struct lc_docker_meta *m, const void *arg)
{
    unsigned count = 0;

    if (!m)
        return 0;
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (struct lc_meta_node *n = m->buckets[i]; n; n = n->hnext) {
            struct lc_meta_waiter **pp = &n->waiters;
            while (*pp) {
                if ((*pp)->arg == arg) {
                    struct lc_meta_waiter *w = *pp;
                    *pp = w->next;
                    free(w);
                    count++;
                } else {
                    pp = &(*pp)->next;
                }
            }
        }
    }
    return count;
}

void lc_docker_meta_invalidate(struct lc_docker_meta *m, const char *id)
{
    struct lc_meta_node *n, *next;
    uint32_t h;

    if (!m || !lc_docker_client_id_valid(id))
        return;
    h = lc_meta_hash(id);
    /* Both a cached entry (from put) and a pending inspect may exist for one id. */
    for (n = m->buckets[h & (m->nbuckets - 1)]; n; n = next) {
        next = n->hnext;
        if (n->hash != h || strcmp(n->key, id) != 0)
            continue;
        if (n->pending) {
            if (!n->invalidated) {
                n->invalidated = true;
                m->st.invalidations++;
                lc_counter_inc(m->m_removed[REMOVED_INVALIDATED]);
            }
            continue;
        }
        m->st.invalidations++;
        lc_meta_drop(m, n, m->m_removed[REMOVED_INVALIDATED], NULL);
    }
}

void lc_docker_meta_on_event(struct lc_docker_meta *m, const struct lc_docker_event *ev)
{
    if (!m || !ev || !ev->action)
        return;
    if (strcmp(ev->action, "destroy") == 0 || strcmp(ev->action, "rename") == 0)
        lc_docker_meta_invalidate(m, ev->id);
}

void lc_docker_meta_get_stats(const struct lc_docker_meta *m, struct lc_docker_meta_stats *st)
{
    if (m && st)
        *st = m->st;
}
