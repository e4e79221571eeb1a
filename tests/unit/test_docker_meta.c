/* SPDX-License-Identifier: MIT */
/* test_docker_meta.c: the container metadata cache: hits, one inspect per id, TTL, bound,
 * invalidation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "input/docker_meta.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ fakes */

#define MAX_CALLS 64

struct fake {
    int64_t now;
    int start_rc; /* what the next inspect start returns */
    int ncalls;
    struct {
        char id[LC_DOCKER_CLIENT_ID_MAX + 1];
        lc_docker_client_inspect_fn done;
        void *arg;
        bool finished;
        bool cancelled;
    } calls[MAX_CALLS];
    int ncancel;
};

static int fake_inspect(void *ctx, const char *id, lc_docker_client_inspect_fn done, void *arg)
{
    struct fake *f = ctx;

    if (f->start_rc)
        return f->start_rc;
    assert_true(f->ncalls < MAX_CALLS);
    snprintf(f->calls[f->ncalls].id, sizeof(f->calls[0].id), "%s", id);
    f->calls[f->ncalls].done = done;
    f->calls[f->ncalls].arg = arg;
    f->ncalls++;
    return 0;
}

static unsigned fake_cancel(void *ctx, const void *arg)
{
    struct fake *f = ctx;
    unsigned n = 0;

    for (int i = 0; i < f->ncalls; i++) {
        if (f->calls[i].arg == arg && !f->calls[i].finished && !f->calls[i].cancelled) {
            f->calls[i].cancelled = true;
            n++;
        }
    }
    f->ncancel += (int)n;
    return n;
}

static int64_t fake_now(void *ctx)
{
    return ((struct fake *)ctx)->now;
}

static const struct lc_docker_label std_labels[] = {
    {"com.docker.compose.project", "shop"},
    {"com.docker.compose.service", "web"},
    {"team", "core"},
    {"app.tier", "front"},
    {"secret.token", "x"},
};

/* Completes call i with a container named name_<id> (or an error). */
static void fake_finish(struct fake *f, int i, int err)
{
    struct lc_docker_client_result r = {err, err ? 404 : 200, err ? "No such container" : ""};
    struct lc_docker_inspect c;
    char name[160];

    assert_true(i < f->ncalls);
    assert_false(f->calls[i].finished);
    assert_false(f->calls[i].cancelled);
    f->calls[i].finished = true;
    snprintf(name, sizeof(name), "name_%s", f->calls[i].id);
    memset(&c, 0, sizeof(c));
    c.id = f->calls[i].id;
    c.name = name;
    c.image = "busybox:lc";
    c.log_path = "/var/lib/docker/containers/x/x-json.log";
    c.log_driver = "json-file";
    c.tty = true;
    c.labels = std_labels;
    c.nlabels = sizeof(std_labels) / sizeof(std_labels[0]);
    f->calls[i].done(f->calls[i].arg, &r, err ? NULL : &c);
}

static const char *const allow_default[] = {"com.docker.compose.*", "team", "app.*"};

static struct lc_docker_meta *new_meta(struct fake *f, size_t max_entries, int64_t ttl)
{
    struct lc_docker_meta_opts o = {
        .ttl_ms = ttl,
        .max_entries = max_entries,
        .labels_allowlist = allow_default,
        .nallow = 3,
        .name = "test",
        .inspect = fake_inspect,
        .cancel = fake_cancel,
        .inspect_ctx = f,
        .now_ms = fake_now,
        .now_ctx = f,
    };
    struct lc_docker_meta *m = lc_docker_meta_new(NULL, &o);
    assert_non_null(m);
    return m;
}

/* What waiters saw. */
struct seen {
    int calls;
    int err;
    char name[160];
    char project[64];
    char service[64];
    size_t nlabels;
    char order[8]; /* which waiter ran, in order */
};

static void waiter(void *arg, int err, const struct lc_docker_meta_entry *e)
{
    struct seen *s = arg;

    s->calls++;
    s->err = err;
    if (e) {
        snprintf(s->name, sizeof(s->name), "%s", e->name);
        snprintf(s->project, sizeof(s->project), "%s", e->compose_project);
        snprintf(s->service, sizeof(s->service), "%s", e->compose_service);
        s->nlabels = e->nlabels;
    }
}

static int get(struct lc_docker_meta *m, const char *id, struct seen *s,
               const struct lc_docker_meta_entry **e)
{
    const struct lc_docker_meta_entry *dummy;
    return lc_docker_meta_get(m, id, waiter, s, e ? e : &dummy);
}

/* ------------------------------------------------------------------ tests */

static void test_miss_then_hit(void **state)
{
    struct fake f = {.now = 1000};
    struct lc_docker_meta *m = new_meta(&f, 8, 60000);
    struct seen s = {0};
    const struct lc_docker_meta_entry *e = NULL;
    struct lc_docker_meta_stats st;

    (void)state;
    assert_int_equal(get(m, "abc", &s, &e), LC_DOCKER_META_PENDING);
    assert_null(e);
    assert_int_equal(f.ncalls, 1);
    assert_string_equal(f.calls[0].id, "abc");
    assert_null(lc_docker_meta_peek(m, "abc"));
    fake_finish(&f, 0, 0);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.err, 0);
    assert_string_equal(s.name, "name_abc");
    assert_string_equal(s.project, "shop");
    assert_string_equal(s.service, "web");

    assert_int_equal(get(m, "abc", &s, &e), 0);
    assert_non_null(e);
    assert_int_equal(s.calls, 1); /* a hit calls nothing */
    assert_string_equal(e->id, "abc");
    assert_string_equal(e->image, "busybox:lc");
    assert_string_equal(e->log_driver, "json-file");
    assert_string_equal(e->log_path, "/var/lib/docker/containers/x/x-json.log");
    assert_true(e->tty);
    assert_int_equal(e->fetched_ms, 1000);
    /* allowlisted, sorted by key; secret.token is not allowlisted */
    assert_int_equal(e->nlabels, 4);
    assert_string_equal(e->labels[0].key, "app.tier");
    assert_string_equal(e->labels[1].key, "com.docker.compose.project");
    assert_string_equal(e->labels[2].key, "com.docker.compose.service");
    assert_string_equal(e->labels[3].key, "team");
    assert_string_equal(e->labels[3].value, "core");
    assert_ptr_equal(lc_docker_meta_peek(m, "abc"), e);
    assert_int_equal(f.ncalls, 1);

    lc_docker_meta_get_stats(m, &st);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.inspects, 1);
    assert_int_equal(st.size, 1);
    assert_int_equal(st.pending, 0);
    lc_docker_meta_free(m);
}

static void test_one_inspect_per_container(void **state)
{
    struct fake f = {.now = 0};
    struct lc_docker_meta *m = new_meta(&f, 8, 60000);
    struct seen s[3] = {{0}};
    struct lc_docker_meta_stats st;

    (void)state;
    for (int i = 0; i < 3; i++)
        assert_int_equal(get(m, "c1", &s[i], NULL), LC_DOCKER_META_PENDING);
    assert_int_equal(get(m, "c2", &s[0], NULL), LC_DOCKER_META_PENDING);
    assert_int_equal(f.ncalls, 2); /* c1 once, c2 once */
    lc_docker_meta_get_stats(m, &st);
    assert_int_equal(st.pending, 2);
    fake_finish(&f, 0, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s[i].calls, 1);
        assert_string_equal(s[i].name, "name_c1");
    }
    fake_finish(&f, 1, 0);
    assert_int_equal(s[0].calls, 2);
    assert_string_equal(s[0].name, "name_c2");
    /* 1000 lookups of cached containers: still two inspects */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(get(m, i % 2 ? "c1" : "c2", &s[1], NULL), 0);
    assert_int_equal(f.ncalls, 2);
    lc_docker_meta_get_stats(m, &st);
    assert_int_equal(st.hits, 1000);
    assert_int_equal(st.misses, 4);
    lc_docker_meta_free(m);
}

static void test_ttl(void **state)
{
    static const struct {
        int64_t age;
        bool hit;
    } rows[] = {{0, true}, {1, true}, {4999, true}, {5000, false}, {100000, false}};
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct fake f = {.now = 777};
        struct lc_docker_meta *m = new_meta(&f, 8, 5000);
        struct seen s = {0};
        struct lc_docker_meta_stats st;

        assert_int_equal(get(m, "t", &s, NULL), LC_DOCKER_META_PENDING);
        fake_finish(&f, 0, 0);
        f.now += rows[i].age;
        assert_int_equal(lc_docker_meta_peek(m, "t") != NULL, rows[i].hit);
        assert_int_equal(get(m, "t", &s, NULL), rows[i].hit ? 0 : LC_DOCKER_META_PENDING);
        assert_int_equal(f.ncalls, rows[i].hit ? 1 : 2);
        lc_docker_meta_get_stats(m, &st);
        assert_int_equal(st.expirations, rows[i].hit ? 0 : 1);
        lc_docker_meta_free(m);
    }
}

static void test_expired_entries_leave_on_insert(void **state)
{
    struct fake f = {.now = 0};
    struct lc_docker_meta *m = new_meta(&f, 8, 100);
    struct seen s = {0};
    struct lc_docker_meta_stats st;
    char id[16];

    (void)state;
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "e%d", i);
        get(m, id, &s, NULL);
        fake_finish(&f, i, 0);
        f.now += 40; /* e0 at 0, e1 at 40, e2 at 80, e3 at 120 */
    }
    /* at 160: e0 (160 old) and e1 (120 old) expired; inserting e4 sweeps them */
    get(m, "e4", &s, NULL);
    fake_finish(&f, 4, 0);
    lc_docker_meta_get_stats(m, &st);
    assert_int_equal(st.size, 3);
    assert_int_equal(st.expirations, 2);
    lc_docker_meta_free(m);
}

static void test_bound_evicts_oldest(void **state)
{
    struct fake f = {.now = 0};
    struct lc_docker_meta *m = new_meta(&f, 3, 60000);
    struct seen s = {0};
    struct lc_docker_meta_stats st;
    char id[16];

    (void)state;
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "b%d", i);
        assert_int_equal(get(m, id, &s, NULL), LC_DOCKER_META_PENDING);
        fake_finish(&f, i, 0);
        f.now++;
        lc_docker_meta_get_stats(m, &st);
        assert_true(st.size <= 3);
    }
    lc_docker_meta_get_stats(m, &st);
    assert_int_equal(st.size, 3);
    assert_int_equal(st.evictions, 2);
    assert_null(lc_docker_meta_peek(m, "b0"));
    assert_null(lc_docker_meta_peek(m, "b1"));
    assert_non_null(lc_docker_meta_peek(m, "b2"));
    assert_non_null(lc_docker_meta_peek(m, "b4"));
    lc_docker_meta_free(m);
}

static void test_pending_bound(void **state)
{
    struct fake f = {.now = 0};
    struct lc_docker_meta *m = new_meta(&f, 2, 60000);
    struct seen s = {0};

    (void)state;
    assert_int_equal(get(m, "p1", &s, NULL), LC_DOCKER_META_PENDING);
    assert_int_equal(get(m, "p2", &s, NULL), LC_DOCKER_META_PENDING);
    assert_int_equal(get(m, "p3", &s, NULL), -EBUSY);
    assert_int_equal(get(m, "p1", &s, NULL), LC_DOCKER_META_PENDING); /* joining is fine */
    assert_int_equal(f.ncalls, 2);
    fake_finish(&f, 0, 0);
    assert_int_equal(get(m, "p3", &s, NULL), LC_DOCKER_META_PENDING);
    lc_docker_meta_free(m); /* p2, p3 pending: cancelled, no callback */
    assert_int_equal(f.ncancel, 2);
    assert_int_equal(s.calls, 2);
}

static void test_invalidation_by_events(void **state)
{
    static const struct {
        const char *action;
        bool invalidates;
    } rows[] = {{"destroy", true}, {"rename", true}, {"die", false},
                {"start", false},  {"stop", false},  {"exec_start: sh", false}};
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct fake f = {.now = 0};
        struct lc_docker_meta *m = new_meta(&f, 8, 60000);
        struct seen s = {0};
        struct lc_docker_event ev = {.action = rows[i].action, .id = "cid"};
        struct lc_docker_meta_stats st;

        get(m, "cid", &s, NULL);
        get(m, "other", &s, NULL);
        fake_finish(&f, 0, 0);
        fake_finish(&f, 1, 0);
        lc_docker_meta_on_event(m, &ev);
        assert_int_equal(lc_docker_meta_peek(m, "cid") == NULL, rows[i].invalidates);
        assert_non_null(lc_docker_meta_peek(m, "other"));
        lc_docker_meta_get_stats(m, &st);
        assert_int_equal(st.invalidations, rows[i].invalidates ? 1 : 0);
        assert_int_equal(st.size, rows[i].invalidates ? 1 : 2);
        lc_docker_meta_free(m);
    }
}

static void test_invalidate_while_pending(void **state)
{
    struct fake f = {.now = 0};
    struct lc_docker_meta *m = new_meta(&f, 8, 60000);
    struct seen s = {0};

    (void)state;
    get(m, "x", &s, NULL);
    lc_docker_meta_invalidate(m, "x");
    fake_finish(&f, 0, 0);
    assert_int_equal(s.calls, 1); /* the waiter still gets its answer */
    assert_int_equal(s.err, 0);
    assert_null(lc_docker_meta_peek(m, "x")); /* but it is not kept */
    assert_int_equal(get(m, "x", &s, NULL), LC_DOCKER_META_PENDING);
    assert_int_equal(f.ncalls, 2);
    fake_finish(&f, 1, 0);
    assert_non_null(lc_docker_meta_peek(m, "x"));
    lc_docker_meta_invalidate(m, "unknown"); /* no-op */
    lc_docker_meta_free(m);
}

static void test_errors(void **state)
{
    struct fake f = {.now = 0};
    struct lc_docker_meta *m = new_meta(&f, 8, 60000);
    struct seen s = {0};
    struct lc_docker_meta_stats st;
    static const char *const bad[] = {"",
                                      "a/b",
                                      "../x",
                                      "a b",
                                      "x?y",
                                      "0123456789012345678901234567890123456789012345678901234567"
                                      "890123456789012345678901234567890123456789012345678901234"
                                      "5678901234567890"};

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(get(m, bad[i], &s, NULL), -EINVAL);
    assert_int_equal(get(m, NULL, &s, NULL), -EINVAL);

    /* inspect answers 404: waiter gets the error, nothing cached */
    assert_int_equal(get(m, "gone", &s, NULL), LC_DOCKER_META_PENDING);
    fake_finish(&f, 0, -ENOENT);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.err, -ENOENT);
    assert_null(lc_docker_meta_peek(m, "gone"));

    /* inspect cannot start: error returned, no callback */
    f.start_rc = -ENOTCONN;
    assert_int_equal(get(m, "y", &s, NULL), -ENOTCONN);
    assert_int_equal(s.calls, 1);
    lc_docker_meta_get_stats(m, &st);
    assert_int_equal(st.inspect_errors, 2);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.size, 0);
    f.start_rc = 0;
    lc_docker_meta_free(m);
}

static void test_cancel_waiter(void **state)
{
    struct fake f = {.now = 0};
    struct lc_docker_meta *m = new_meta(&f, 8, 60000);
    struct seen a = {0}, b = {0};

    (void)state;
    get(m, "w", &a, NULL);
    get(m, "w", &b, NULL);
    assert_int_equal(lc_docker_meta_cancel(m, &a), 1);
    assert_int_equal(lc_docker_meta_cancel(m, &a), 0);
    fake_finish(&f, 0, 0);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 1);
    lc_docker_meta_free(m);
}

/* Waiters that act on the cache from inside their callback. */
struct reentry {
    struct lc_docker_meta *m;
    int mode; /* 0 invalidate own id, 1 free the cache, 2 get own id */
    int calls;
    int get_rc;
};

static void reentrant_waiter(void *arg, int err, const struct lc_docker_meta_entry *e)
{
    struct reentry *r = arg;
    const struct lc_docker_meta_entry *out;

    (void)err;
    r->calls++;
    if (r->mode == 0)
        lc_docker_meta_invalidate(r->m, e->id);
    else if (r->mode == 1)
        lc_docker_meta_free(r->m);
    else
        r->get_rc = lc_docker_meta_get(r->m, e->id, reentrant_waiter, r, &out);
}

static void test_reentrant_callbacks(void **state)
{
    (void)state;
    for (int mode = 0; mode < 3; mode++) {
        struct fake f = {.now = 0};
        struct lc_docker_meta *m = new_meta(&f, 8, 60000);
        struct reentry r1 = {m, mode, 0, -1}, r2 = {m, mode, 0, -1};
        const struct lc_docker_meta_entry *out;

        assert_int_equal(lc_docker_meta_get(m, "r", reentrant_waiter, &r1, &out),
                         LC_DOCKER_META_PENDING);
        assert_int_equal(lc_docker_meta_get(m, "r", reentrant_waiter, &r2, &out),
                         LC_DOCKER_META_PENDING);
        get(m, "other", &(struct seen){0}, NULL);
        fake_finish(&f, 0, 0);
        if (mode == 1) {
            /* freed inside the first callback: the second waiter is not called, and
             * the pending inspect of "other" was cancelled */
            assert_int_equal(r1.calls, 1);
            assert_int_equal(r2.calls, 0);
            assert_true(f.calls[1].cancelled);
            continue;
        }
        assert_int_equal(r1.calls, 1);
        assert_int_equal(r2.calls, 1);
        if (mode == 0) {
            assert_null(lc_docker_meta_peek(m, "r"));
        } else {
            assert_int_equal(r1.get_rc, 0); /* a hit from inside the callback */
            assert_non_null(lc_docker_meta_peek(m, "r"));
        }
        fake_finish(&f, 1, 0);
        lc_docker_meta_free(m);
    }
}

static void test_put_and_label_cap(void **state)
{
    struct fake f = {.now = 5};
    static const char *const all[] = {"*"};
    struct lc_docker_meta_opts o = {.max_labels = 2,
                                    .labels_allowlist = all,
                                    .nallow = 1,
                                    .inspect = fake_inspect,
                                    .cancel = fake_cancel,
                                    .inspect_ctx = &f,
                                    .now_ms = fake_now,
                                    .now_ctx = &f};
    struct lc_docker_meta *m = lc_docker_meta_new(NULL, &o);
    struct lc_docker_inspect c = {
        .id = "full", .name = "n", .image = "i", .labels = std_labels, .nlabels = 5};
    const struct lc_docker_meta_entry *e;
    struct seen s = {0};

    (void)state;
    assert_non_null(m);
    assert_int_equal(lc_docker_meta_put(m, "p", &c), 0);
    assert_int_equal(lc_docker_meta_put(m, "p", &c), 0); /* replaces */
    assert_int_equal(get(m, "p", &s, &e), 0);
    assert_int_equal(f.ncalls, 0);
    assert_int_equal(e->nlabels, 2);
    assert_int_equal(e->nall_labels, 5); /* filters see every label, beyond the cap */
    assert_string_equal(e->all_labels[4].key, "secret.token");
    assert_string_equal(e->all_labels[4].value, "x");
    assert_string_equal(e->compose_project, "shop"); /* found even beyond the cap */
    assert_string_equal(e->log_path, "");
    assert_int_equal(lc_docker_meta_put(m, "bad/id", &c), -EINVAL);
    lc_docker_meta_free(m);

    /* no allowlist: no labels, compose fields all the same */
    struct lc_docker_meta_opts o2 = {.inspect = fake_inspect,
                                     .cancel = fake_cancel,
                                     .inspect_ctx = &f,
                                     .now_ms = fake_now,
                                     .now_ctx = &f};
    m = lc_docker_meta_new(NULL, &o2);
    assert_int_equal(lc_docker_meta_put(m, "p", &c), 0);
    e = lc_docker_meta_peek(m, "p");
    assert_int_equal(e->nlabels, 0);
    assert_int_equal(e->nall_labels, 5); /* issue 15: filters need them without an allowlist */
    assert_string_equal(e->all_labels[2].key, "team");
    assert_string_equal(e->all_labels[2].value, "core");
    assert_string_equal(e->compose_service, "web");
    lc_docker_meta_free(m);
    lc_docker_meta_free(NULL);
    /* invalid options */
    struct lc_docker_meta_opts bad = {.nallow = 1};
    assert_null(lc_docker_meta_new(NULL, &bad));
    assert_null(lc_docker_meta_new(NULL, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_miss_then_hit),
        cmocka_unit_test(test_one_inspect_per_container),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_expired_entries_leave_on_insert),
        cmocka_unit_test(test_bound_evicts_oldest),
        cmocka_unit_test(test_pending_bound),
        cmocka_unit_test(test_invalidation_by_events),
        cmocka_unit_test(test_invalidate_while_pending),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_cancel_waiter),
        cmocka_unit_test(test_reentrant_callbacks),
        cmocka_unit_test(test_put_and_label_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
