/* SPDX-License-Identifier: MIT */
/* test_ckpt.c: the checkpoint store: buffering, durability, failures, modes, corruption. */
#include "core/ckpt.h"
#include "core/metrics.h"
#include "core/worker.h"
#include "lc_alloc_fail.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

struct fx {
    char root[1024]; /* unique per test, removed at teardown */
    char dir[1100];  /* the store's directory, created by lc_ckpt_open */
    char db[1200];
    char err[512];
};

static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    const char *base = getenv("LC_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    assert_int_equal(mkdir_p(base), 0);
    snprintf(f->root, sizeof(f->root), "%s/ckpt-XXXXXX", base);
    assert_non_null(mkdtemp(f->root));
    snprintf(f->dir, sizeof(f->dir), "%s/state/sub", f->root);
    snprintf(f->db, sizeof(f->db), "%s/checkpoints.db", f->dir);
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static struct lc_ckpt *open_ok_at(struct fx *f, const char *dir)
{
    struct lc_ckpt *c = NULL;
    int rc = lc_ckpt_open(&c, dir, f->err, sizeof(f->err));
    if (rc != 0)
        fail_msg("open %s: %d %s", dir, rc, f->err);
    assert_non_null(c);
    return c;
}

static struct lc_ckpt *open_ok(struct fx *f)
{
    struct lc_ckpt *c = NULL;
    int rc = lc_ckpt_open(&c, f->dir, f->err, sizeof(f->err));
    if (rc != 0)
        fail_msg("open: %d %s", rc, f->err);
    assert_non_null(c);
    return c;
}

/* A second, independent connection, as another process would have. */
static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 0);
    return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static int64_t raw_count(const char *path)
{
    return raw_int(path, "SELECT count(*) FROM sources");
}

static struct lc_ckpt_entry mk(const char *key, const char *path, int64_t offset)
{
    struct lc_ckpt_entry e = {.key = key,
                              .path = path,
                              .dev = 2049,
                              .ino = 131074,
                              .fp_hash = 0x1234abcd,
                              .fp_len = 1024,
                              .updated_ns = 42};
    e.pos.offset = offset;
    return e;
}

static void assert_entry_eq(const struct lc_ckpt_entry *a, const struct lc_ckpt_entry *b)
{
    assert_string_equal(a->key, b->key);
    assert_string_equal(a->path ? a->path : "", b->path ? b->path : "");
    assert_true(a->dev == b->dev);
    assert_true(a->ino == b->ino);
    assert_true(a->fp_hash == b->fp_hash);
    assert_true(a->fp_len == b->fp_len);
    assert_true(a->pos.offset == b->pos.offset);
    assert_true(a->pos.ts_ns == b->pos.ts_ns);
    assert_true(a->pos.ts_seq == b->pos.ts_seq);
    assert_true(a->updated_ns == b->updated_ns);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        fail_msg("stat %s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

/* Modes --------------------------------------------------------------------- */

/* A second agent on the same state directory is refused while the first holds it. */
static void test_one_agent_per_dir(void **state)
{
    struct fx *f = *state;
    struct lc_ckpt *c = open_ok(f), *c2 = NULL;
    char err[256];

    assert_int_equal(lc_ckpt_open(&c2, f->dir, err, sizeof(err)), -EBUSY);
    assert_null(c2);
    assert_non_null(strstr(err, "in use by another log_capturer"));
    lc_ckpt_free(c);
    assert_int_equal(lc_ckpt_open(&c2, f->dir, err, sizeof(err)), 0); /* released at free */
    lc_ckpt_free(c2);
}

static void test_modes(void **state)
{
    struct fx *f = *state;
    mode_t old = umask(0); /* the modes must not depend on a permissive umask */
    struct lc_ckpt *c = open_ok(f);
    assert_int_equal(mode_of(f->dir), 0700);
    assert_int_equal(mode_of(f->db), 0600);
    struct lc_ckpt_entry e = mk("k", "/p", 1);
    assert_int_equal(lc_ckpt_put(c, &e), 0);
    assert_int_equal(lc_ckpt_flush(c), 0);
    char side[PATH_MAX + 8];
    snprintf(side, sizeof(side), "%s-wal", f->db);
    assert_int_equal(mode_of(side), 0600);
    snprintf(side, sizeof(side), "%s-shm", f->db);
    assert_int_equal(mode_of(side), 0600);
    lc_ckpt_free(c);

    /* An existing, too open file is tightened on open. */
    assert_int_equal(chmod(f->db, 0644), 0);
    c = open_ok(f);
    assert_int_equal(mode_of(f->db), 0600);
    lc_ckpt_free(c);
    umask(old);
}

/* Round trip ---------------------------------------------------------------- */

/* Phases of a round trip: 0 buffered, 1 after a flush, 2 after close and reopen. */
static struct lc_ckpt *next_phase(struct fx *f, struct lc_ckpt *c, int phase)
{
    if (phase == 1)
        assert_int_equal(lc_ckpt_flush(c), 0);
    if (phase == 2) {
        lc_ckpt_free(c);
        c = open_ok(f);
    }
    return c;
}

static void test_roundtrip(void **state)
{
    struct fx *f = *state;
    static const struct lc_ckpt_entry rows[] = {
        {.key = "file:system:2049:131074",
         .path = "/var/log/syslog",
         .dev = 2049,
         .ino = 131074,
         .fp_hash = 7,
         .fp_len = 1024,
         .pos = {.offset = 123456},
         .updated_ns = 1},
        /* every unsigned field at its top bit or maximum: stored through int64 casts */
        {.key = "max",
         .path = "/x",
         .dev = UINT64_MAX,
         .ino = 1ULL << 63,
         .fp_hash = 0xfedcba9876543210ULL,
         .fp_len = UINT32_MAX,
         .pos = {.offset = INT64_MAX, .ts_ns = INT64_MIN, .ts_seq = UINT32_MAX},
         .updated_ns = INT64_MAX},
        {.key = "docker:containers:0123456789abcdef",
         .path = NULL,
         .pos = {.ts_ns = 1700000000123456789LL, .ts_seq = 3},
         .updated_ns = 5},
        {.key = "utf8:é", .path = "/données/ünïcode", .dev = 1, .updated_ns = 9},
    };
    size_t n = sizeof(rows) / sizeof(rows[0]);

    struct lc_ckpt *c = open_ok(f);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(lc_ckpt_put(c, &rows[i]), 0);
    for (int phase = 0; phase < 3; phase++) {
        c = next_phase(f, c, phase);
        for (size_t i = 0; i < n; i++) {
            struct lc_ckpt_entry got;
            assert_int_equal(lc_ckpt_get(c, rows[i].key, &got), 0);
            assert_entry_eq(&got, &rows[i]);
            assert_non_null(got.path);
        }
        struct lc_ckpt_entry got;
        assert_int_equal(lc_ckpt_get(c, "absent", &got), -ENOENT);
    }
    lc_ckpt_free(c);
}

/* A database written by a build before cursors (schema 1) opens, keeps its rows, gains cursors. */
static void test_cursor_and_v1_migration(void **state)
{
    struct fx *f = *state;
    char cursor[LC_CKPT_CURSOR_MAX + 2];

    assert_int_equal(mkdir_p(f->dir), 0);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    raw_exec(db, "CREATE TABLE sources(key TEXT PRIMARY KEY, path TEXT NOT NULL DEFAULT '',"
                 " dev INTEGER NOT NULL DEFAULT 0, ino INTEGER NOT NULL DEFAULT 0,"
                 " fp_hash INTEGER NOT NULL DEFAULT 0, fp_len INTEGER NOT NULL DEFAULT 0,"
                 " offset INTEGER NOT NULL DEFAULT 0, ts_ns INTEGER NOT NULL DEFAULT 0,"
                 " ts_seq INTEGER NOT NULL DEFAULT 0, updated_ns INTEGER NOT NULL DEFAULT 0)"
                 " WITHOUT ROWID;"
                 "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
                 "INSERT INTO sources(key, path, dev, ino, offset) VALUES"
                 " ('file:old:1:2', '/var/log/old.log', 1, 2, 777);"
                 "PRAGMA user_version = 1; PRAGMA application_id = 1279478608;");
    sqlite3_close(db);

    struct lc_ckpt *c = open_ok(f);
    assert_int_equal(raw_int(f->db, "PRAGMA user_version"), 2);
    struct lc_ckpt_entry got;
    assert_int_equal(lc_ckpt_get(c, "file:old:1:2", &got), 0);
    assert_int_equal(got.pos.offset, 777);
    assert_string_equal(got.path, "/var/log/old.log");
    assert_non_null(got.cursor);
    assert_string_equal(got.cursor, "");

    static const char cur[] = "s=db0a9c201d824b009dd093047d54b400;i=3;b=0123456789abcdef0123456789"
                              "abcdef;m=3ea;t=60a24181e4002;x=507b1ec041e45ff0";
    struct lc_ckpt_entry e = {.key = "journal:sys", .path = "/var/log/journal", .cursor = cur};
    assert_int_equal(lc_ckpt_put(c, &e), 0);
    memset(cursor, 'a', sizeof(cursor) - 1);
    cursor[sizeof(cursor) - 1] = '\0'; /* one byte over the cap */
    struct lc_ckpt_entry big = {.key = "journal:big", .cursor = cursor};
    assert_int_equal(lc_ckpt_put(c, &big), -EINVAL);
    for (int phase = 0; phase < 3; phase++) {
        c = next_phase(f, c, phase);
        assert_int_equal(lc_ckpt_get(c, "journal:sys", &got), 0);
        assert_string_equal(got.cursor, cur);
        assert_int_equal(lc_ckpt_get(c, "file:old:1:2", &got), 0);
        assert_string_equal(got.cursor, "");
    }
    /* an update replaces the cursor */
    e.cursor = "s=1;i=4";
    assert_int_equal(lc_ckpt_put(c, &e), 0);
    c = next_phase(f, next_phase(f, c, 1), 2);
    assert_int_equal(lc_ckpt_get(c, "journal:sys", &got), 0);
    assert_string_equal(got.cursor, "s=1;i=4");
    lc_ckpt_free(c);
}

static void test_updated_ns_stamped(void **state)
{
    struct fx *f = *state;
    struct lc_ckpt *c = open_ok(f);
    struct lc_ckpt_entry e = mk("k", "/p", 1), got;
    e.updated_ns = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t before = (int64_t)ts.tv_sec * LC_NS_PER_SEC + ts.tv_nsec;
    assert_int_equal(lc_ckpt_put(c, &e), 0);
    assert_int_equal(lc_ckpt_get(c, "k", &got), 0);
    assert_true(got.updated_ns >= before);
    lc_ckpt_free(c);
}

/* Buffering ----------------------------------------------------------------- */

static void test_buffered(void **state)
{
    struct fx *f = *state;
    struct lc_ckpt *c = open_ok(f);
    struct lc_ckpt_entry e = mk("a", "/a", 0), got;

    /* 100 puts of one key are one buffered change and no SQL */
    for (int i = 1; i <= 100; i++) {
        e.pos.offset = i;
        assert_int_equal(lc_ckpt_put(c, &e), 0);
        assert_int_equal(lc_ckpt_dirty(c), 1);
    }
    assert_int_equal(raw_count(f->db), 0);
    assert_int_equal(lc_ckpt_get(c, "a", &got), 0);
    assert_int_equal(got.pos.offset, 100);

    /* a changed path replaces the stored one */
    e.path = "/a.1";
    assert_int_equal(lc_ckpt_put(c, &e), 0);
    assert_int_equal(lc_ckpt_get(c, "a", &got), 0);
    assert_string_equal(got.path, "/a.1");

    assert_int_equal(lc_ckpt_flush(c), 0);
    assert_int_equal(lc_ckpt_dirty(c), 0);
    assert_int_equal(raw_count(f->db), 1);
    assert_int_equal(raw_int(f->db, "SELECT offset FROM sources WHERE key = 'a'"), 100);
    assert_int_equal(lc_ckpt_flush(c), 0); /* nothing to do */

    /* a buffered delete hides the stored row until it is flushed */
    assert_int_equal(lc_ckpt_del(c, "a"), 0);
    assert_int_equal(lc_ckpt_dirty(c), 1);
    assert_int_equal(lc_ckpt_get(c, "a", &got), -ENOENT);
    assert_int_equal(raw_count(f->db), 1);
    assert_int_equal(lc_ckpt_flush(c), 0);
    assert_int_equal(raw_count(f->db), 0);

    /* delete then put of one key: the put wins; put then delete: the delete wins */
    e = mk("b", "/b", 7);
    assert_int_equal(lc_ckpt_del(c, "b"), 0);
    assert_int_equal(lc_ckpt_put(c, &e), 0);
    e = mk("c", "/c", 8);
    assert_int_equal(lc_ckpt_put(c, &e), 0);
    assert_int_equal(lc_ckpt_del(c, "c"), 0);
    assert_int_equal(lc_ckpt_dirty(c), 2);
    assert_int_equal(lc_ckpt_flush(c), 0);
    assert_int_equal(lc_ckpt_get(c, "b", &got), 0);
    assert_int_equal(got.pos.offset, 7);
    assert_int_equal(lc_ckpt_get(c, "c", &got), -ENOENT);
    assert_int_equal(raw_count(f->db), 1);

    /* deleting an unknown key is harmless */
    assert_int_equal(lc_ckpt_del(c, "never"), 0);
    assert_int_equal(lc_ckpt_flush(c), 0);
    lc_ckpt_free(c);
}

static void test_durable_reopen(void **state)
{
    struct fx *f = *state;
    struct lc_ckpt *c = open_ok(f);
    char key[32];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        struct lc_ckpt_entry e = mk(key, "/p", i);
        assert_int_equal(lc_ckpt_put(c, &e), 0);
    }
    assert_int_equal(lc_ckpt_flush(c), 0);
    assert_int_equal(lc_ckpt_del(c, "k0"), 0);
    assert_int_equal(lc_ckpt_meta_put(c, "input:system:seen", "1"), 0);
    lc_ckpt_free(c); /* no explicit flush: free flushes */

    c = open_ok(f);
    assert_int_equal(lc_ckpt_dirty(c), 0);
    struct lc_ckpt_entry got;
    assert_int_equal(lc_ckpt_get(c, "k0", &got), -ENOENT);
    for (int i = 1; i < 50; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(lc_ckpt_get(c, key, &got), 0);
        assert_int_equal(got.pos.offset, i);
    }
    char val[8];
    assert_int_equal(lc_ckpt_meta_get(c, "input:system:seen", val, sizeof(val)), 0);
    assert_string_equal(val, "1");
    lc_ckpt_free(c);
}

/* Flush failures ------------------------------------------------------------ */

static void test_flush_busy_keeps_buffer(void **state)
{
    struct fx *f = *state;
    struct lc_ckpt *c = open_ok(f);
    struct lc_ckpt_entry e = mk("a", "/a", 1), got;
    assert_int_equal(lc_ckpt_put(c, &e), 0);
    assert_int_equal(lc_ckpt_flush(c), 0);

    /* another process holds the write lock: root or not, BEGIN IMMEDIATE must wait, then fail */
    sqlite3 *other = raw_open(f->db);
    raw_exec(other, "BEGIN IMMEDIATE");
    e.pos.offset = 2;
    assert_int_equal(lc_ckpt_put(c, &e), 0);
    assert_int_equal(lc_ckpt_meta_put(c, "m", "v"), 0);
    assert_int_equal(lc_ckpt_flush(c), -EBUSY);
    assert_int_equal(lc_ckpt_dirty(c), 2);
    assert_int_equal(lc_ckpt_get(c, "a", &got), 0);
    assert_int_equal(got.pos.offset, 2);

    /* more changes merge into the kept buffer */
    e.pos.offset = 3;
    assert_int_equal(lc_ckpt_put(c, &e), 0);
    assert_int_equal(lc_ckpt_dirty(c), 2);
    raw_exec(other, "ROLLBACK");
    sqlite3_close(other);

    assert_int_equal(lc_ckpt_flush(c), 0);
    assert_int_equal(lc_ckpt_dirty(c), 0);
    assert_int_equal(raw_int(f->db, "SELECT offset FROM sources WHERE key = 'a'"), 3);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM meta WHERE value = 'v'"), 1);
    lc_ckpt_free(c);
}

/* Flushes on the disk worker ------------------------------------------------- */

struct async_fx {
    int calls;
    int rc;
    bool on_loop_thread;
    uv_thread_t loop_thread;
};

static void on_flushed(int rc, void *arg)
{
    struct async_fx *a = arg;
    uv_thread_t self = uv_thread_self();
    a->calls++;
    a->rc = rc;
    a->on_loop_thread = uv_thread_equal(&self, &a->loop_thread);
}

static void run_until_calls(uv_loop_t *loop, struct async_fx *a, int n)
{
    for (int i = 0; i < 10000 && a->calls < n; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    assert_int_equal(a->calls, n);
}

/*
 * The transaction runs on the worker while the loop keeps buffering and
 * reading: reads see buffered, in-flight and stored changes; a failed flush
 * (the database locked by another process) puts its changes back under newer
 * ones, and the next flush writes them.
 */
static void test_flush_on_worker(void **state)
{
    struct fx *f = *state;
    struct lc_ckpt *c = open_ok(f);
    uv_loop_t loop;
    struct lc_worker *w;
    struct async_fx a = {.loop_thread = uv_thread_self()};
    struct lc_ckpt_entry e = mk("a", "/a", 1), got;
    char val[16];

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(lc_worker_new(&w, &loop, 4, NULL), 0);
    assert_int_equal(lc_ckpt_flush_start(c, w, on_flushed, &a), -ENODATA);

    assert_int_equal(lc_ckpt_put(c, &e), 0);
    assert_int_equal(lc_ckpt_meta_put(c, "m", "1"), 0);
    assert_int_equal(lc_ckpt_flush_start(c, w, on_flushed, &a), 0);
    assert_true(lc_ckpt_flushing(c));
    assert_int_equal(lc_ckpt_dirty(c), 0);
    /* while it flies: reads see it, new changes buffer, a second flush waits its turn */
    assert_int_equal(lc_ckpt_get(c, "a", &got), 0);
    assert_int_equal(got.pos.offset, 1);
    assert_int_equal(lc_ckpt_meta_get(c, "m", val, sizeof(val)), 0);
    assert_string_equal(val, "1");
    struct lc_ckpt_entry b = mk("b", "/b", 7);
    assert_int_equal(lc_ckpt_put(c, &b), 0);
    assert_int_equal(lc_ckpt_flush_start(c, w, on_flushed, &a), -EBUSY);
    assert_int_equal(lc_ckpt_flush(c), -EBUSY);
    run_until_calls(&loop, &a, 1);
    assert_int_equal(a.rc, 0);
    assert_true(a.on_loop_thread);
    assert_false(lc_ckpt_flushing(c));
    assert_int_equal(raw_int(f->db, "SELECT offset FROM sources WHERE key = 'a'"), 1);
    assert_int_equal(lc_ckpt_dirty(c), 1); /* b */

    /* a failed flush merges back: b and a (a newer buffered value wins) */
    sqlite3 *other = raw_open(f->db);
    raw_exec(other, "BEGIN IMMEDIATE");
    e.pos.offset = 2;
    assert_int_equal(lc_ckpt_put(c, &e), 0);
    assert_int_equal(lc_ckpt_flush_start(c, w, on_flushed, &a), 0);
    e.pos.offset = 3; /* newer than what flies */
    assert_int_equal(lc_ckpt_put(c, &e), 0);
    run_until_calls(&loop, &a, 2);
    assert_int_equal(a.rc, -EBUSY);
    assert_int_equal(lc_ckpt_dirty(c), 2);
    assert_int_equal(lc_ckpt_get(c, "a", &got), 0);
    assert_int_equal(got.pos.offset, 3);
    raw_exec(other, "ROLLBACK");
    sqlite3_close(other);
    assert_int_equal(lc_ckpt_flush_start(c, w, on_flushed, &a), 0);
    run_until_calls(&loop, &a, 3);
    assert_int_equal(a.rc, 0);
    assert_int_equal(raw_int(f->db, "SELECT offset FROM sources WHERE key = 'a'"), 3);
    assert_int_equal(raw_int(f->db, "SELECT offset FROM sources WHERE key = 'b'"), 7);

    lc_worker_close(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    lc_worker_free(w);
    assert_int_equal(uv_loop_close(&loop), 0);
    lc_ckpt_free(c);
}

/* The sweep: the check runs on the worker, deletes back on the loop; rows in use stay. */
static bool sw_keep(const struct lc_ckpt_entry *e, void *arg)
{
    (void)arg;
    return strcmp(e->key, "in-use") == 0;
}

static _Atomic int sw_checked;
static uv_thread_t sw_loop_thread;

static bool sw_gone(const struct lc_ckpt_entry *e)
{
    uv_thread_t self = uv_thread_self();
    assert_false(uv_thread_equal(&self, &sw_loop_thread)); /* never on the loop */
    atomic_fetch_add(&sw_checked, 1);
    return strcmp(e->path, "/still-there") != 0;
}

static void sw_deleted(const struct lc_ckpt_entry *e, void *arg)
{
    (void)e;
    (*(int *)arg)++;
}

static void test_sweep_on_worker(void **state)
{
    struct fx *f = *state;
    struct lc_ckpt *c = open_ok(f);
    uv_loop_t loop;
    struct lc_worker *w;
    struct lc_ckpt_entry e = mk("gone", "/gone", 1), got;
    int deleted = 0;
    const struct lc_ckpt_sweep_ops ops = {sw_keep, sw_gone, sw_deleted};

    sw_loop_thread = uv_thread_self();
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(lc_worker_new(&w, &loop, 4, NULL), 0);
    assert_int_equal(lc_ckpt_put(c, &e), 0);
    e = mk("in-use", "/gone-too", 2);
    assert_int_equal(lc_ckpt_put(c, &e), 0);
    e = mk("kept", "/still-there", 3);
    assert_int_equal(lc_ckpt_put(c, &e), 0);
    assert_int_equal(lc_ckpt_flush(c), 0);

    assert_int_equal(lc_ckpt_sweep_start(c, w, "", &ops, &deleted), 0);
    for (int i = 0; i < 10000 && deleted == 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    assert_int_equal(deleted, 1);
    assert_int_equal(atomic_load(&sw_checked), 2); /* "in-use" was never a candidate */
    assert_int_equal(lc_ckpt_get(c, "gone", &got), -ENOENT);
    assert_int_equal(lc_ckpt_get(c, "in-use", &got), 0);
    assert_int_equal(lc_ckpt_get(c, "kept", &got), 0);
    assert_int_equal(lc_ckpt_sweep_start(c, w, "nothing:", &ops, &deleted), -ENODATA);

    lc_worker_close(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    lc_worker_free(w);
    assert_int_equal(uv_loop_close(&loop), 0);
    lc_ckpt_free(c);
}

/*
 * A failure in the middle of the transaction (injected with a trigger from
 * another connection, no hook in the code): nothing of the batch may reach the
 * database, and everything stays buffered for the next flush.
 */
static void test_flush_midway_rolls_back(void **state)
{
    static const struct {
        const char *trigger;
        bool del; /* the failing change is a delete */
    } cases[] = {
        {"CREATE TRIGGER boom BEFORE INSERT ON sources WHEN NEW.key = 'k37'"
         " BEGIN SELECT RAISE(ABORT, 'injected'); END",
         false},
        {"CREATE TRIGGER boom BEFORE DELETE ON sources WHEN OLD.key = 'old'"
         " BEGIN SELECT RAISE(ABORT, 'injected'); END",
         true},
    };
    struct fx *f = *state;
    for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
        struct lc_ckpt *c = open_ok(f);
        struct lc_ckpt_entry e = mk("old", "/old", 1), got;
        assert_int_equal(lc_ckpt_put(c, &e), 0);
        assert_int_equal(lc_ckpt_flush(c), 0);

        sqlite3 *other = raw_open(f->db);
        raw_exec(other, cases[ci].trigger);

        char key[16];
        for (int i = 0; i < 64; i++) {
            snprintf(key, sizeof(key), "k%d", i);
            struct lc_ckpt_entry k = mk(key, "/k", i);
            assert_int_equal(lc_ckpt_put(c, &k), 0);
        }
        if (cases[ci].del) {
            assert_int_equal(lc_ckpt_del(c, "old"), 0);
        } else {
            e.pos.offset = 2;
            assert_int_equal(lc_ckpt_put(c, &e), 0);
        }
        size_t dirty = lc_ckpt_dirty(c);
        assert_int_equal(dirty, 65);
        assert_int_equal(lc_ckpt_flush(c), -EIO);
        assert_int_equal(lc_ckpt_dirty(c), dirty);
        assert_int_equal(raw_count(f->db), 1); /* only "old", unchanged */
        assert_int_equal(raw_int(f->db, "SELECT offset FROM sources WHERE key = 'old'"), 1);
        /* reads still see the buffer */
        assert_int_equal(lc_ckpt_get(c, "k37", &got), 0);
        assert_int_equal(lc_ckpt_get(c, "old", &got), cases[ci].del ? -ENOENT : 0);

        raw_exec(other, "DROP TRIGGER boom");
        sqlite3_close(other);
        assert_int_equal(lc_ckpt_flush(c), 0);
        assert_int_equal(lc_ckpt_dirty(c), 0);
        assert_int_equal(raw_count(f->db), cases[ci].del ? 64 : 65);
        lc_ckpt_free(c);
        assert_int_equal(unlink(f->db), 0);
    }
}

/* Corrupt or foreign files -------------------------------------------------- */

enum corrupt_kind { GARBAGE_SHORT, GARBAGE_8K, BAD_PAGES, IS_DIR, FOREIGN, NEWER, FOREIGN_APPID };

static void write_file(const char *path, const void *p, size_t n, off_t at, bool trunc)
{
    int fd = open(path, O_WRONLY | O_CREAT | (trunc ? O_TRUNC : 0), 0600);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, p, n, at), (ssize_t)n);
    close(fd);
}

static void make_corrupt(struct fx *f, enum corrupt_kind kind)
{
    assert_int_equal(mkdir_p(f->dir), 0);
    char junk[8192];
    memset(junk, 0x5a, sizeof(junk));
    switch (kind) {
    case GARBAGE_SHORT:
        write_file(f->db, "hello", 5, 0, true);
        break;
    case GARBAGE_8K:
        write_file(f->db, junk, sizeof(junk), 0, true);
        break;
    case BAD_PAGES: {
        /* a valid header and schema page, then trashed table pages */
        struct lc_ckpt *c = open_ok(f);
        char key[32];
        for (int i = 0; i < 2000; i++) {
            snprintf(key, sizeof(key), "file:system:%d", i);
            struct lc_ckpt_entry e = mk(key, "/var/log/some/long/path/name.log", i);
            assert_int_equal(lc_ckpt_put(c, &e), 0);
        }
        lc_ckpt_free(c); /* last close checkpoints the WAL into the file */
        int64_t psz = raw_int(f->db, "PRAGMA page_size");
        write_file(f->db, junk, sizeof(junk), (off_t)psz * 2, false);
        break;
    }
    case IS_DIR:
        assert_int_equal(mkdir(f->db, 0700), 0);
        break;
    case FOREIGN: {
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        raw_exec(db, "CREATE TABLE foo(x)");
        sqlite3_close(db);
        break;
    }
    case NEWER: {
        lc_ckpt_free(open_ok(f));
        sqlite3 *db = raw_open(f->db);
        raw_exec(db, "PRAGMA user_version = 99");
        sqlite3_close(db);
        break;
    }
    case FOREIGN_APPID: {
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        raw_exec(db, "PRAGMA application_id = 1234");
        sqlite3_close(db);
        break;
    }
    }
}

static void test_corrupt(void **state)
{
    static const struct {
        enum corrupt_kind kind;
        const char *hint; /* must appear in the message, besides the path */
    } cases[] = {
        {GARBAGE_SHORT, "not a database"},
        {GARBAGE_8K, "not a database"},
        {BAD_PAGES, "corrupt"},
        {IS_DIR, "directory"},
        {FOREIGN, "no log_capturer schema"},
        {NEWER, "newer"},
        {FOREIGN_APPID, "not a log_capturer database"},
    };
    struct fx *f = *state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        make_corrupt(f, cases[i].kind);
        struct lc_ckpt *c = (struct lc_ckpt *)1;
        f->err[0] = '\0';
        int rc = lc_ckpt_open(&c, f->dir, f->err, sizeof(f->err));
        if (rc >= 0 || c != NULL || !strstr(f->err, f->db) || !strstr(f->err, cases[i].hint))
            fail_msg("case %zu: rc %d, err \"%s\"", i, rc, f->err);
        /* damaged SQLite is -EUCLEAN (on_corrupt_state applies); a foreign file is not */
        bool damaged = cases[i].kind <= BAD_PAGES;
        if ((rc == -EUCLEAN) != damaged)
            fail_msg("case %zu: rc %d", i, rc);
        if (damaged) { /* moved aside, never deleted; a fresh store opens */
            char moved[PATH_MAX + 64];
            struct stat st;
            assert_int_equal(lc_ckpt_move_aside(f->dir, moved, sizeof(moved)), 0);
            assert_int_equal(stat(moved, &st), 0);
            assert_true(st.st_size > 0);
            assert_int_equal(lc_ckpt_open(&c, f->dir, f->err, sizeof(f->err)), 0);
            lc_ckpt_free(c);
            assert_int_equal(stat(moved, &st), 0);
        }
        nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}

static void test_open_errors(void **state)
{
    struct fx *f = *state;
    struct lc_ckpt *c = NULL;
    char err[256];
    assert_int_equal(lc_ckpt_open(&c, NULL, err, sizeof(err)), -EINVAL);
    assert_int_equal(lc_ckpt_open(&c, "", err, sizeof(err)), -EINVAL);
    assert_null(c);

    /* the directory is a regular file */
    char file[PATH_MAX + 8];
    snprintf(file, sizeof(file), "%s/plain", f->root);
    write_file(file, "x", 1, 0, true);
    assert_int_equal(lc_ckpt_open(&c, file, err, sizeof(err)), -ENOTDIR);
    assert_non_null(strstr(err, file));
    assert_null(c);

    lc_ckpt_free(NULL);
}

static void test_invalid_args(void **state)
{
    struct fx *f = *state;
    struct lc_ckpt *c = open_ok(f);
    char big[LC_CKPT_PATH_MAX + 2];
    struct lc_ckpt_entry e = mk(NULL, "/p", 1), got;
    assert_int_equal(lc_ckpt_put(c, &e), -EINVAL);

    static const struct {
        size_t keylen, pathlen;
        int want;
    } cases[] = {
        {LC_CKPT_KEY_MAX, 1, 0},
        {LC_CKPT_KEY_MAX + 1, 1, -EINVAL},
        {1, LC_CKPT_PATH_MAX, 0},
        {2, LC_CKPT_PATH_MAX + 1, -EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char key[LC_CKPT_KEY_MAX + 2];
        memset(key, 'k', cases[i].keylen);
        key[cases[i].keylen] = '\0';
        memset(big, 'p', cases[i].pathlen);
        big[cases[i].pathlen] = '\0';
        e = mk(key, big, 5);
        assert_int_equal(lc_ckpt_put(c, &e), cases[i].want);
        if (cases[i].want == 0) {
            assert_int_equal(lc_ckpt_flush(c), 0);
            assert_int_equal(lc_ckpt_get(c, key, &got), 0);
            assert_int_equal(strlen(got.key), cases[i].keylen);
            assert_int_equal(strlen(got.path), cases[i].pathlen);
        }
    }
    memset(big, 'k', LC_CKPT_KEY_MAX + 1);
    big[LC_CKPT_KEY_MAX + 1] = '\0';
    assert_int_equal(lc_ckpt_get(c, big, &got), -EINVAL);
    assert_int_equal(lc_ckpt_del(c, big), -EINVAL);
    assert_int_equal(lc_ckpt_del(c, NULL), -EINVAL);
    assert_int_equal(lc_ckpt_get(c, NULL, &got), -EINVAL);
    assert_int_equal(lc_ckpt_meta_put(c, big, "v"), -EINVAL);
    assert_int_equal(lc_ckpt_meta_put(c, "k", NULL), -EINVAL);
    lc_ckpt_free(c);
}

/* Iteration ----------------------------------------------------------------- */

struct collect {
    char keys[64][64];
    int64_t offsets[64];
    size_t n;
};

static void collect_fn(const struct lc_ckpt_entry *e, void *arg)
{
    struct collect *col = arg;
    assert_true(col->n < 64);
    snprintf(col->keys[col->n], sizeof(col->keys[0]), "%s", e->key);
    col->offsets[col->n] = e->pos.offset;
    col->n++;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The matched keys, sorted and joined with ',', e.g. "a,b". */
static void each_keys(struct lc_ckpt *c, const char *prefix, char *out, size_t outlen)
{
    struct collect col = {0};
    assert_int_equal(lc_ckpt_each(c, prefix, collect_fn, &col), 0);
    qsort(col.keys, col.n, sizeof(col.keys[0]), cmp_key);
    out[0] = '\0';
    for (size_t i = 0; i < col.n; i++) {
        strncat(out, col.keys[i], outlen - strlen(out) - 1);
        if (i + 1 < col.n)
            strncat(out, ",", outlen - strlen(out) - 1);
    }
}

static void test_prefix(void **state)
{
    struct fx *f = *state;
    struct lc_ckpt *c = open_ok(f);
    static const char *const stored[] = {"file:a:1", "file:a:2",  "file:ab:1", "docker:x:1",
                                         "p\xff",    "p\xff\xff", "q"};
    for (size_t i = 0; i < sizeof(stored) / sizeof(stored[0]); i++) {
        struct lc_ckpt_entry e = mk(stored[i], "/s", 1);
        assert_int_equal(lc_ckpt_put(c, &e), 0);
    }
    assert_int_equal(lc_ckpt_flush(c), 0);
    /* buffered on top: a new key, an update, a delete, another new key */
    struct lc_ckpt_entry e = mk("file:a:3", "/s", 3);
    assert_int_equal(lc_ckpt_put(c, &e), 0);
    e = mk("file:a:1", "/s", 99);
    assert_int_equal(lc_ckpt_put(c, &e), 0);
    assert_int_equal(lc_ckpt_del(c, "file:a:2"), 0);
    e = mk("file:b:1", "/s", 1);
    assert_int_equal(lc_ckpt_put(c, &e), 0);

    static const struct {
        const char *prefix;
        const char *want;
    } cases[] = {
        {"file:a:", "file:a:1,file:a:3"},
        {"file:a", "file:a:1,file:a:3,file:ab:1"},
        {"file:", "file:a:1,file:a:3,file:ab:1,file:b:1"},
        {"", "docker:x:1,file:a:1,file:a:3,file:ab:1,file:b:1,p\xff,p\xff\xff,q"},
        {NULL, "docker:x:1,file:a:1,file:a:3,file:ab:1,file:b:1,p\xff,p\xff\xff,q"},
        {"zzz", ""},
        {"p\xff", "p\xff,p\xff\xff"},
        {"p", "p\xff,p\xff\xff"},
        {"\xff", ""},
        {"file:a:1", "file:a:1"},
    };
    char got[512];
    for (int round = 0; round < 2; round++) {
        /* round 0 merges buffer and database, round 1 reads the flushed database */
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            each_keys(c, cases[i].prefix, got, sizeof(got));
            if (strcmp(got, cases[i].want) != 0)
                fail_msg("round %d prefix \"%s\": got \"%s\" want \"%s\"", round,
                         cases[i].prefix ? cases[i].prefix : "(null)", got, cases[i].want);
        }
        struct collect col = {0};
        assert_int_equal(lc_ckpt_each(c, "file:a:1", collect_fn, &col), 0);
        assert_int_equal(col.n, 1);
        assert_int_equal(col.offsets[0], 99); /* the buffered version, not the stored one */
        assert_int_equal(lc_ckpt_flush(c), 0);
    }
    lc_ckpt_free(c);
}

/* fn may change the store while each() runs: each() works on a snapshot. */
static void reentrant_fn(const struct lc_ckpt_entry *e, void *arg)
{
    struct lc_ckpt *c = arg;
    char key[64];
    snprintf(key, sizeof(key), "new:%s", e->key);
    struct lc_ckpt_entry n = *e;
    n.key = key;
    assert_int_equal(lc_ckpt_put(c, &n), 0);
    assert_int_equal(lc_ckpt_del(c, e->key), 0);
    if (e->pos.offset % 17 == 0)
        assert_int_equal(lc_ckpt_flush(c), 0);
}

static void count_fn(const struct lc_ckpt_entry *e, void *arg)
{
    (void)e;
    (*(size_t *)arg)++;
}

static void test_each_reentrant(void **state)
{
    struct fx *f = *state;
    struct lc_ckpt *c = open_ok(f);
    char key[32];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "old:%d", i);
        struct lc_ckpt_entry e = mk(key, "/p", i);
        assert_int_equal(lc_ckpt_put(c, &e), 0);
        if (i == 199)
            assert_int_equal(lc_ckpt_flush(c), 0); /* 200 stored, 100 buffered */
    }
    assert_int_equal(lc_ckpt_each(c, "old:", reentrant_fn, c), 0);
    size_t n_old = 0, n_new = 0;
    assert_int_equal(lc_ckpt_each(c, "old:", count_fn, &n_old), 0);
    assert_int_equal(lc_ckpt_each(c, "new:", count_fn, &n_new), 0);
    assert_int_equal(n_old, 0);
    assert_int_equal(n_new, 300);
    lc_ckpt_free(c);
    assert_int_equal(raw_count(f->db), 300);
}

/* Meta ---------------------------------------------------------------------- */

static void test_meta(void **state)
{
    struct fx *f = *state;
    struct lc_ckpt *c = open_ok(f);
    char val[16];
    assert_int_equal(lc_ckpt_meta_get(c, "a", val, sizeof(val)), -ENOENT);
    assert_int_equal(lc_ckpt_meta_put(c, "a", "1"), 0);
    assert_int_equal(lc_ckpt_meta_put(c, "empty", ""), 0);
    assert_int_equal(lc_ckpt_meta_put(c, "long", "0123456789abcdef"), 0);
    assert_int_equal(lc_ckpt_dirty(c), 3);

    for (int phase = 0; phase < 3; phase++) {
        /* 0: buffered, 1: flushed, 2: reopened */
        if (phase == 1)
            assert_int_equal(lc_ckpt_flush(c), 0);
        if (phase == 2) {
            lc_ckpt_free(c);
            c = open_ok(f);
        }
        assert_int_equal(lc_ckpt_meta_get(c, "a", val, sizeof(val)), 0);
        assert_string_equal(val, "1");
        assert_int_equal(lc_ckpt_meta_get(c, "empty", val, sizeof(val)), 0);
        assert_string_equal(val, "");
        /* 16 chars need 17 bytes */
        assert_int_equal(lc_ckpt_meta_get(c, "long", val, sizeof(val)), -ERANGE);
        assert_int_equal(lc_ckpt_meta_get(c, "a", val, 1), -ERANGE);
        assert_int_equal(lc_ckpt_meta_get(c, "a", val, 0), -EINVAL);
    }
    assert_int_equal(lc_ckpt_meta_put(c, "a", "2"), 0);
    assert_int_equal(lc_ckpt_meta_get(c, "a", val, sizeof(val)), 0);
    assert_string_equal(val, "2");
    /* meta never shows up as a source entry */
    size_t n = 0;
    assert_int_equal(lc_ckpt_each(c, "", count_fn, &n), 0);
    assert_int_equal(n, 0);

    char big[LC_CKPT_VAL_MAX + 2];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(lc_ckpt_meta_put(c, "big", big), -EINVAL);
    big[LC_CKPT_VAL_MAX] = '\0';
    assert_int_equal(lc_ckpt_meta_put(c, "big", big), 0);
    lc_ckpt_free(c);
}

/* Scale --------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_10k(void **state)
{
    enum { N = 10000 };
    struct fx *f = *state;
    struct lc_ckpt *c = open_ok(f);
    char key[64], path[64];
    for (int round = 0; round < 2; round++) {
        /* round 1 updates every row, each twice */
        for (int rep = 0; rep <= round; rep++) {
            for (int i = 0; i < N; i++) {
                snprintf(key, sizeof(key), "file:system:2049:%d", i);
                snprintf(path, sizeof(path), "/var/log/app/%d.log", i);
                struct lc_ckpt_entry e = mk(key, path, (int64_t)i * 1000 + round);
                e.ino = (uint64_t)i;
                assert_int_equal(lc_ckpt_put(c, &e), 0);
            }
        }
        assert_int_equal(lc_ckpt_dirty(c), N);
        double t0 = now_s();
        assert_int_equal(lc_ckpt_flush(c), 0);
        /* reported, never asserted */
        fprintf(stderr, "# flush of %d entries (%s): %.1f ms\n", N, round ? "update" : "insert",
                (now_s() - t0) * 1e3);
        assert_int_equal(lc_ckpt_dirty(c), 0);
    }
    lc_ckpt_free(c);
    assert_int_equal(raw_count(f->db), N);

    c = open_ok(f);
    size_t n = 0;
    assert_int_equal(lc_ckpt_each(c, "file:system:", count_fn, &n), 0);
    assert_int_equal(n, N);
    for (int i = 0; i < N; i += 997) {
        struct lc_ckpt_entry got;
        snprintf(key, sizeof(key), "file:system:2049:%d", i);
        snprintf(path, sizeof(path), "/var/log/app/%d.log", i);
        assert_int_equal(lc_ckpt_get(c, key, &got), 0);
        assert_int_equal(got.pos.offset, (int64_t)i * 1000 + 1);
        assert_true(got.ino == (uint64_t)i);
        assert_string_equal(got.path, path);
    }
    lc_ckpt_free(c);
}

/* Metrics ------------------------------------------------------------------- */

static void test_metrics(void **state)
{
    struct fx *f = *state;
    static const char *const result[] = {"result", NULL};
    struct lc_ckpt *c = open_ok(f);
    /* registering again finds the families the store registered */
    struct lc_metric_family *fam =
        lc_metric_family(LC_COUNTER, "log_capturer_checkpoint_flushes_total", "x", result);
    assert_non_null(fam);
    struct lc_metric_series *ok = lc_metric_series(fam, "ok");
    struct lc_metric_series *er = lc_metric_series(fam, "error");
    struct lc_metric_series *entries =
        lc_metric_simple(LC_GAUGE, "log_capturer_checkpoint_entries", "x");
    assert_non_null(ok);
    assert_non_null(er);
    assert_non_null(entries);
    uint64_t ok0 = atomic_load(&ok->u), er0 = atomic_load(&er->u);

    for (int i = 0; i < 5; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        struct lc_ckpt_entry e = mk(key, "/p", i);
        assert_int_equal(lc_ckpt_put(c, &e), 0);
    }
    assert_int_equal(lc_ckpt_flush(c), 0);
    assert_int_equal(atomic_load(&ok->u), ok0 + 1);
    assert_int_equal(atomic_load(&entries->i), 5);

    sqlite3 *other = raw_open(f->db);
    raw_exec(other, "BEGIN IMMEDIATE");
    assert_int_equal(lc_ckpt_del(c, "k0"), 0);
    assert_int_equal(lc_ckpt_flush(c), -EBUSY);
    assert_int_equal(atomic_load(&er->u), er0 + 1);
    assert_int_equal(atomic_load(&entries->i), 5);
    raw_exec(other, "ROLLBACK");
    sqlite3_close(other);
    assert_int_equal(lc_ckpt_flush(c), 0);
    assert_int_equal(atomic_load(&entries->i), 4);
    assert_int_equal(atomic_load(&ok->u), ok0 + 2);
    lc_ckpt_free(c);
}

/*
 * Allocation failure injection (lc_alloc_fail.h, SQLite's allocator
 * included): open a new store, commit 100, flush, commit 200, close. For
 * every N the N-th allocation fails: no crash, an error where it failed, and
 * the store reopened holds no position but one that was put (100 at least
 * once its flush reported success), never one past it.
 */
static void test_alloc_failures(void **state)
{
    struct fx *f = *state;
    char shm_root[64] = "/dev/shm/lc-ckpt-XXXXXX";
    /* hundreds of stores created: on tmpfs when there is one (no fsync waits) */
    const char *shm = mkdtemp(shm_root);
    long n;

    for (n = 1; n < 100000; n++) {
        char dir[1200];
        struct lc_ckpt *c = NULL;
        struct lc_ckpt_entry e = {.key = "file:x:1:2", .path = "/var/log/x"};
        struct lc_ckpt_entry got;
        int put1 = -1, flush1 = -1, rc;
        bool failed;

        snprintf(dir, sizeof(dir), "%s/n%ld", shm ? shm : f->root, n);
        lc_alloc_fail_at(n);
        rc = lc_ckpt_open(&c, dir, f->err, sizeof(f->err));
        if (rc == 0) {
            e.pos.offset = 100;
            put1 = lc_ckpt_put(c, &e);
            if (put1 == 0)
                flush1 = lc_ckpt_flush(c);
            e.pos.offset = 200;
            (void)lc_ckpt_put(c, &e); /* either outcome is fine: checked below */
            lc_ckpt_free(c);
        } else {
            assert_null(c);
        }
        lc_alloc_fail_at(0);
        failed = lc_alloc_failed();
        c = open_ok_at(f, dir);
        rc = lc_ckpt_get(c, e.key, &got);
        if (put1 == 0 && flush1 == 0)
            assert_int_equal(rc, 0);
        if (rc == 0)
            assert_true(got.pos.offset == 100 || got.pos.offset == 200);
        else
            assert_int_equal(rc, -ENOENT);
        lc_ckpt_free(c);
        if (!failed)
            break;
    }
    print_message("# %ld allocations failed in turn\n", n - 1);
    if (shm)
        nftw(shm, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    assert_true(n > 50); /* it reached SQLite's allocations, not only ours */
}

int main(void)
{
    assert_int_equal(lc_alloc_fail_sqlite(), 0); /* before any SQLite use */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_agent_per_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_and_v1_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_updated_ns_stamped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_busy_keeps_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_on_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_on_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_midway_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_reentrant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_10k, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
