/* SPDX-License-Identifier: MIT */
/* ckpt.c: the checkpoint store: buffered per-source positions, flushed to SQLite in one txn. */
#include "core/ckpt.h"

#include "core/log.h"
#include "core/metrics.h"
#include "core/worker.h"

#include <errno.h>
#include <sys/file.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * Durability model.
 *
 * The database runs in WAL mode with synchronous=NORMAL. With WAL, a commit
 * appends to the -wal file; NORMAL skips the fsync at commit and syncs only
 * when the WAL is checkpointed into the main file. That is:
 *  - durable against a crash of this process: a committed transaction is in
 *    the kernel's page cache and survives us;
 *  - after a power loss or kernel crash the database is still consistent
 *    (WAL frames are checksummed), but the last few commits may be gone.
 * Losing a commit only moves a source back to an older committed position.
 * Positions only ever advance after the lines before them were delivered (see
 * source.h), so an older position means re-reading and re-sending lines Loki
 * already has: duplicates, never loss. FULL would buy nothing for that
 * guarantee and would cost an fsync every checkpoint_interval.
 *
 * Buffering. Puts and deletes land in an in-memory map (key -> entry or
 * tombstone); a flush writes them all in one BEGIN IMMEDIATE transaction.
 *
 * Off the loop. lc_ckpt_flush_start() moves the map aside ("in flight") and
 * runs the transaction, the row count and any WAL checkpoint SQLite does at
 * commit on the disk worker thread (core/worker.h), with a second connection
 * that only that job uses. Meanwhile the loop keeps buffering into a fresh map
 * and reads through three layers: the buffer, the in-flight map, then the
 * database (its own connection; WAL readers never wait for the writer). When
 * the job is done, on the loop: success drops the in-flight map, failure
 * merges it back under newer buffered changes, so the next flush retries it.
 * At most one flush is in flight; worker jobs run in order, so commits keep
 * their order. The map holds at most one slot per key, so it is bounded by the
 * number of distinct sources touched between two flushes: the live sources
 * plus the ones forgotten since the last flush. Sources are themselves capped
 * by the inputs (files matched, containers running), so no separate cap here.
 */

#define CK_DB_NAME        "checkpoints.db"
#define CK_SCHEMA_VERSION 2
#define CK_APP_ID         0x4c434b50 /* "LCKP": marks the file as ours */
/*
 * How long a statement waits for another connection's lock. We are the only
 * writer in normal operation; a lock means someone (an operator's sqlite3
 * shell) holds the database. Short, because it holds up the disk worker (and
 * a read on the loop): a busy flush fails and the next one retries with
 * everything still buffered.
 */
#define CK_BUSY_MS   1000
#define CK_MAP_INIT  64
#define CK_COMPONENT "ckpt"
#define CK_HINT      " (corrupt or not SQLite; on_corrupt_state: reset moves it aside and starts over)"

/* One buffered change. key == NULL marks a free slot. */
struct ck_slot {
    char *key; /* owned */
    uint64_t hash;
    bool tomb;              /* a buffered delete */
    char *path;             /* owned, sources only */
    char *cursor;           /* owned, sources only */
    char *val;              /* owned, meta only */
    struct lc_ckpt_entry e; /* e.key/e.path alias key/path */
};

/* Open addressing, linear probing; slots are never removed one by one, only all at once. */
struct ck_map {
    struct ck_slot *slots;
    size_t cap; /* power of two */
    size_t n;
};

enum ck_stmt {
    CK_GET,
    CK_PUT,
    CK_DEL,
    CK_EACH_RANGE,
    CK_EACH_FROM,
    CK_META_GET,
    CK_META_PUT,
    CK_COUNT,
    CK_BEGIN,
    CK_COMMIT,
    CK_ROLLBACK,
    CK_NSTMT
};

#define CK_COLS "path, dev, ino, fp_hash, fp_len, offset, ts_ns, ts_seq, updated_ns, cursor"

static const char *const ck_sql[CK_NSTMT] = {
    [CK_GET] = "SELECT " CK_COLS " FROM sources WHERE key = ?1",
    [CK_PUT] = ("INSERT INTO sources(key, " CK_COLS ")"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                " ON CONFLICT(key) DO UPDATE SET path = excluded.path, dev = excluded.dev,"
                " ino = excluded.ino, fp_hash = excluded.fp_hash, fp_len = excluded.fp_len,"
                " offset = excluded.offset, ts_ns = excluded.ts_ns, ts_seq = excluded.ts_seq,"
                " updated_ns = excluded.updated_ns, cursor = excluded.cursor"),
    [CK_DEL] = "DELETE FROM sources WHERE key = ?1",
    [CK_EACH_RANGE] = "SELECT key, " CK_COLS " FROM sources WHERE key >= ?1 AND key < ?2",
    [CK_EACH_FROM] = "SELECT key, " CK_COLS " FROM sources WHERE key >= ?1",
    [CK_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [CK_META_PUT] = ("INSERT INTO meta(key, value) VALUES (?1, ?2)"
                     " ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
    [CK_COUNT] = "SELECT count(*) FROM sources",
    [CK_BEGIN] = "BEGIN IMMEDIATE",
    [CK_COMMIT] = "COMMIT",
    [CK_ROLLBACK] = "ROLLBACK",
};

/*
 * Schema migrations: ck_migrations[v] takes a database from user_version v to
 * v + 1. Append, never edit a released step.
 */
static const char *const ck_migrations[CK_SCHEMA_VERSION] = {
    ("CREATE TABLE sources(key TEXT PRIMARY KEY, path TEXT NOT NULL DEFAULT '',"
     " dev INTEGER NOT NULL DEFAULT 0, ino INTEGER NOT NULL DEFAULT 0,"
     " fp_hash INTEGER NOT NULL DEFAULT 0, fp_len INTEGER NOT NULL DEFAULT 0,"
     " offset INTEGER NOT NULL DEFAULT 0, ts_ns INTEGER NOT NULL DEFAULT 0,"
     " ts_seq INTEGER NOT NULL DEFAULT 0, updated_ns INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
     "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"),
    /* 2: a position as text (the journal input's cursor); '' for every older row */
    "ALTER TABLE sources ADD COLUMN cursor TEXT NOT NULL DEFAULT '';",
};

struct lc_ckpt {
    sqlite3 *db; /* the loop's connection: reads */
    char *path;  /* <dir>/checkpoints.db */
    sqlite3_stmt *st[CK_NSTMT];
    sqlite3 *wdb; /* the flush's connection: writes, on the worker (or the loop when none flies) */
    sqlite3_stmt *wst[CK_NSTMT];
    struct ck_map src;  /* buffered source entries */
    struct ck_map meta; /* buffered meta values */
    struct ck_map fsrc; /* in flight: being written by a flush */
    struct ck_map fmeta;
    bool flying; /* fsrc/fmeta belong to a flush; read-only on the loop */
    /* the flush job: filled on the worker, read in its done callback */
    struct lc_worker_job job;
    int job_rc; /* SQLite rc */
    int job_errno;
    int64_t job_ns;
    int64_t job_count; /* rows after the commit, -1 unknown */
    char job_err[256];
    void (*job_done)(int rc, void *arg);
    void *job_arg;
    bool ready;  /* fully opened: free() may flush */
    int lock_fd; /* <dir>/lock, flock'ed: one agent per state directory */
    /* lc_ckpt_get() answers from the database point here */
    char gkey[LC_CKPT_KEY_MAX + 1];
    char gpath[LC_CKPT_PATH_MAX + 1];
    char gcursor[LC_CKPT_CURSOR_MAX + 1];
    struct lc_metric_series *m_flushes[2]; /* by result: ok, error (FLUSH_*) */
    struct lc_metric_series *m_seconds, *m_entries;
};

enum { FLUSH_OK, FLUSH_ERROR };

/* Helpers ------------------------------------------------------------------ */

static uint64_t ck_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static int64_t ck_now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * LC_NS_PER_SEC + ts.tv_nsec;
}

/* Maps an SQLite result code to a negative errno. */
static int ck_errno(sqlite3 *db, int rc)
{
    int sys = db ? sqlite3_system_errno(db) : 0;
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_TOOBIG:
        return -E2BIG;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
        return sys > 0 ? -sys : -EIO;
    default: /* CORRUPT, NOTADB, CONSTRAINT, SCHEMA, ... */
        return -EIO;
    }
}

static bool ck_len_ok(const char *s, size_t max)
{
    return strnlen(s, max + 1) <= max;
}

/* Replaces *dst with a copy of src unless it already holds the same string. 0 or -ENOMEM. */
static int ck_set_str(char **dst, const char *src)
{
    if (*dst && strcmp(*dst, src) == 0)
        return 0;
    char *copy = strdup(src);
    if (!copy)
        return -ENOMEM;
    free(*dst);
    *dst = copy;
    return 0;
}

/* The map ------------------------------------------------------------------- */

static void ck_slot_clear(struct ck_slot *s)
{
    free(s->key);
    free(s->path);
    free(s->cursor);
    free(s->val);
    memset(s, 0, sizeof(*s));
}

/* Index of key's slot, or of the free slot where it would go. The map is never full. */
static size_t ck_map_find(const struct ck_map *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const struct ck_slot *s = &m->slots[i];
        if (!s->key || (s->hash == h && strcmp(s->key, key) == 0))
            return i;
    }
}

static struct ck_slot *ck_map_get(const struct ck_map *m, const char *key)
{
    if (m->n == 0)
        return NULL;
    struct ck_slot *s = &m->slots[ck_map_find(m, key, ck_hash(key))];
    return s->key ? s : NULL;
}

/* Makes room for one more slot (load <= 3/4). 0 or -ENOMEM. */
static int ck_map_reserve(struct ck_map *m)
{
    if (m->cap && (m->n + 1) * 4 <= m->cap * 3)
        return 0;
    size_t ncap = m->cap ? m->cap * 2 : CK_MAP_INIT;
    struct ck_slot *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return -ENOMEM;
    struct ck_map nm = {.slots = ns, .cap = ncap, .n = m->n};
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key)
            ns[ck_map_find(&nm, m->slots[i].key, m->slots[i].hash)] = m->slots[i];
    }
    free(m->slots);
    *m = nm;
    return 0;
}

/*
 * The slot for key, created empty-but-keyed if new. NULL on ENOMEM, with the
 * map unchanged. *fresh tells whether it was created.
 */
static struct ck_slot *ck_map_slot(struct ck_map *m, const char *key, bool *fresh)
{
    if (ck_map_reserve(m) < 0)
        return NULL;
    uint64_t h = ck_hash(key);
    struct ck_slot *s = &m->slots[ck_map_find(m, key, h)];
    *fresh = !s->key;
    if (*fresh) {
        s->key = strdup(key);
        if (!s->key)
            return NULL;
        s->hash = h;
        m->n++;
    }
    return s;
}

/* Undoes a fresh ck_map_slot() whose filling failed. Safe: nothing probed past it yet. */
static void ck_map_unslot(struct ck_map *m, struct ck_slot *s)
{
    ck_slot_clear(s);
    m->n--;
}

/* Empties the map, keeping its allocation for the next interval. */
static void ck_map_clear(struct ck_map *m)
{
    if (m->n == 0)
        return;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key)
            ck_slot_clear(&m->slots[i]);
    }
    m->n = 0;
}

static void ck_map_free(struct ck_map *m)
{
    ck_map_clear(m);
    free(m->slots);
    m->slots = NULL;
    m->cap = 0;
}

/* SQL helpers --------------------------------------------------------------- */

/* Binds an entry to CK_PUT. Strings are borrowed until the statement is reset. */
static void ck_bind_entry(sqlite3_stmt *st, const struct lc_ckpt_entry *e)
{
    sqlite3_bind_text(st, 1, e->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->path ? e->path : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)e->dev); /* u64 stored as its bit pattern */
    sqlite3_bind_int64(st, 4, (int64_t)e->ino);
    sqlite3_bind_int64(st, 5, (int64_t)e->fp_hash);
    sqlite3_bind_int64(st, 6, (int64_t)e->fp_len);
    sqlite3_bind_int64(st, 7, e->pos.offset);
    sqlite3_bind_int64(st, 8, e->pos.ts_ns);
    sqlite3_bind_int64(st, 9, (int64_t)e->pos.ts_seq);
    sqlite3_bind_int64(st, 10, e->updated_ns);
    sqlite3_bind_text(st, 11, e->cursor ? e->cursor : "", -1, SQLITE_STATIC);
}

/* Reads columns col.. (the CK_COLS order) into e; strings are left to the caller. */
static void ck_column_entry(sqlite3_stmt *st, int col, struct lc_ckpt_entry *e)
{
    e->dev = (uint64_t)sqlite3_column_int64(st, col + 1);
    e->ino = (uint64_t)sqlite3_column_int64(st, col + 2);
    e->fp_hash = (uint64_t)sqlite3_column_int64(st, col + 3);
    e->fp_len = (uint32_t)sqlite3_column_int64(st, col + 4);
    e->pos.offset = sqlite3_column_int64(st, col + 5);
    e->pos.ts_ns = sqlite3_column_int64(st, col + 6);
    e->pos.ts_seq = (uint32_t)sqlite3_column_int64(st, col + 7);
    e->updated_ns = sqlite3_column_int64(st, col + 8);
}

/* The cursor column of a row read with CK_COLS starting at col. */
static const char *ck_column_cursor(sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col + 9);
    return s ? s : "";
}

static const char *ck_column_str(sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    return s ? s : "";
}

/* Runs a statement that returns no rows (or whose rows we ignore). SQLite rc. */
static int ck_run(sqlite3_stmt *st)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    int rrc = sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : (rrc != SQLITE_OK ? rrc : rc);
}

/* Runs one-row pragma-like SQL and returns column 0 as integer. SQLite rc. */
static int ck_query_int(sqlite3 *db, const char *sql, int64_t *v)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *v = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    int frc = sqlite3_finalize(st);
    return rc == SQLITE_DONE ? frc : rc;
}

/* Rows in the sources table, or -1. */
static int64_t ck_count(sqlite3_stmt *st)
{
    int64_t n = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return n;
}

/* Open ---------------------------------------------------------------------- */

/* mkdir -p with mode 0700 for what it creates. 0 or negative errno. */
static int ck_mkdirs(const char *dir)
{
    char buf[PATH_MAX];
    size_t n = strlen(dir);
    if (n >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
            return -errno;
        buf[i] = saved;
    }
    struct stat st;
    if (stat(dir, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/*
 * Creates the file 0600 before SQLite sees it (SQLite would use 0644 & ~umask)
 * and tightens an existing one. The -wal and -shm files SQLite creates later
 * copy the main file's mode, so they are 0600 too.
 */
static int ck_create_file(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = 0;
    struct stat st;
    if (fstat(fd, &st) < 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode))
        rc = -EINVAL;
    else if ((st.st_mode & 07777) != 0600)
        rc = fchmod(fd, 0600) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* The message and errno for an SQLite failure while opening. */
static int ck_open_fail(struct lc_ckpt *c, int rc, char *err, size_t errlen)
{
    if (!c->db) {
        snprintf(err, errlen, "checkpoint database %s: %s", c->path, sqlite3_errstr(rc));
        return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
    }
    int code = sqlite3_errcode(c->db) & 0xff;
    bool corrupt = code == SQLITE_NOTADB || code == SQLITE_CORRUPT;
    snprintf(err, errlen, "checkpoint database %s: %s%s", c->path, sqlite3_errmsg(c->db),
             corrupt ? CK_HINT : "");
    return corrupt ? -EUCLEAN : ck_errno(c->db, rc);
}

/* The message and errno for an SQLite failure of the writer connection while opening. */
static int ck_open_fail_db(struct lc_ckpt *c, sqlite3 *db, int rc, char *err, size_t errlen)
{
    snprintf(err, errlen, "checkpoint database %s (writer): %s", c->path,
             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    return db ? ck_errno(db, rc) : -EIO;
}

/*
 * The flush's own connection: used by one thread at a time (the worker, or
 * the loop when no flush flies), so NOMUTEX like the reader. SQLite rc.
 */
static int ck_open_writer(struct lc_ckpt *c)
{
    int rc = sqlite3_open_v2(c->path, &c->wdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_busy_timeout(c->wdb, CK_BUSY_MS);
    rc = sqlite3_exec(c->wdb, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    for (int i = 0; i < CK_NSTMT && rc == SQLITE_OK; i++)
        rc = sqlite3_prepare_v3(c->wdb, ck_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->wst[i], NULL);
    return rc;
}

/* Reads version and identity, refuses foreign or newer files, applies migrations. */
static int ck_migrate(struct lc_ckpt *c, char *err, size_t errlen)
{
    int64_t ver = 0, app = 0, ntables = 0;
    int rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = ck_query_int(c->db, "PRAGMA user_version", &ver);
    if (rc == SQLITE_OK)
        rc = ck_query_int(c->db, "PRAGMA application_id", &app);
    if (rc == SQLITE_OK)
        rc = ck_query_int(c->db, "SELECT count(*) FROM sqlite_schema", &ntables);
    if (rc != SQLITE_OK)
        goto out_sqlite;

    if (app != 0 && app != CK_APP_ID) {
        snprintf(err, errlen,
                 "checkpoint database %s: not a log_capturer database (application_id %#llx)",
                 c->path, (unsigned long long)app);
        rc = -EINVAL;
        goto out_rollback;
    }
    if (ver == 0 && ntables > 0) {
        snprintf(err, errlen, "checkpoint database %s: holds tables but no log_capturer schema",
                 c->path);
        rc = -EINVAL;
        goto out_rollback;
    }
    if (ver > CK_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "checkpoint database %s: schema version %lld is newer than this build's %d",
                 c->path, (long long)ver, CK_SCHEMA_VERSION);
        rc = -EINVAL;
        goto out_rollback;
    }
    for (int64_t v = ver < 0 ? 0 : ver; v < CK_SCHEMA_VERSION; v++) {
        char pragma[64];
        rc = sqlite3_exec(c->db, ck_migrations[v], NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            goto out_sqlite;
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %lld", (long long)v + 1);
        rc = sqlite3_exec(c->db, pragma, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            goto out_sqlite;
    }
    if (app == 0) {
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA application_id = %d", CK_APP_ID);
        rc = sqlite3_exec(c->db, pragma, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            goto out_sqlite;
    }
    rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto out_sqlite;
    return 0;

out_sqlite:
    rc = ck_open_fail(c, rc, err, errlen);
out_rollback:
    if (!sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/*
 * PRAGMA quick_check: a damaged page deep in the file would otherwise only
 * surface at some later flush. It reads every page, which for this database
 * (one small row per source) is milliseconds.
 */
static int ck_check(struct lc_ckpt *c, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, "PRAGMA quick_check(4)", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return ck_open_fail(c, rc, err, errlen);
    bool ok = false;
    const char *detail = NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *row = (const char *)sqlite3_column_text(st, 0);
        if (row && strcmp(row, "ok") == 0)
            ok = true;
        else if (row && !detail && strncmp(row, "***", 3) != 0)
            detail = row; /* the first real finding, not the "*** in database main ***" banner */
        if (detail) {
            snprintf(err, errlen, "checkpoint database %s is corrupt: %s" CK_HINT, c->path, detail);
            break;
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = ck_open_fail(c, rc, err, errlen);
    } else if (!ok) {
        if (!detail)
            snprintf(err, errlen, "checkpoint database %s is corrupt" CK_HINT, c->path);
        rc = -EUCLEAN;
    } else {
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

static const char *const flush_results[] = {"ok", "error", NULL};
static const double flush_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                       0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
LC_METRIC_VALUES_FIT(struct lc_ckpt, m_flushes, flush_results);

/* One store per agent: no instance label. */
static const struct lc_metric_row ckpt_series[] = {
    {LC_COUNTER, "log_capturer_checkpoint_flushes_total",
     "Checkpoint flushes to SQLite, by result.", offsetof(struct lc_ckpt, m_flushes), "result",
     flush_results},
    {LC_HISTOGRAM, "log_capturer_checkpoint_flush_seconds",
     "Time to write buffered checkpoints in one transaction.", offsetof(struct lc_ckpt, m_seconds),
     NULL, NULL, flush_buckets, (int)(sizeof(flush_buckets) / sizeof(flush_buckets[0]))},
    {LC_GAUGE, "log_capturer_checkpoint_entries", "Sources with a checkpoint in the database.",
     offsetof(struct lc_ckpt, m_entries)},
};

static void ck_register_metrics(struct lc_ckpt *c)
{
    lc_metric_register_rows(c, ckpt_series, LC_METRIC_ROWS(ckpt_series), NULL, NULL);
}

/*
 * Two agents on one state directory would each ship every line and overwrite
 * each other's positions: the second one is refused at start.
 */
static int ck_lock_dir(struct lc_ckpt *c, const char *dir, char *err, size_t errlen)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/lock", dir);
    c->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (c->lock_fd < 0) {
        int e = errno;
        snprintf(err, errlen, "lock file %s: %s", path, strerror(e));
        return -e;
    }
    if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        snprintf(err, errlen, "state directory %s is in use by another log_capturer (%s)", dir,
                 e == EWOULDBLOCK ? "lock held" : strerror(e));
        return e == EWOULDBLOCK ? -EBUSY : -e;
    }
    return 0;
}

int lc_ckpt_move_aside(const char *dir, char *moved, size_t len)
{
    static const char *const sfx[] = {"", "-wal", "-shm"};
    char from[4096], to[4200];
    long long now = (long long)time(NULL);

    snprintf(moved, len, "%s/" CK_DB_NAME ".corrupt-%lld", dir, now);
    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
        snprintf(from, sizeof(from), "%s/" CK_DB_NAME "%s", dir, sfx[i]);
        snprintf(to, sizeof(to), "%s%s", moved, sfx[i]);
        if (rename(from, to) != 0 && (i == 0 || errno != ENOENT))
            return -errno;
    }
    return 0;
}

int lc_ckpt_open(struct lc_ckpt **out, const char *dir, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    *out = NULL;
    if (!dir || !*dir) {
        snprintf(err, errlen, "checkpoint directory not set");
        return -EINVAL;
    }

    struct lc_ckpt *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "checkpoint store: out of memory");
        return -ENOMEM;
    }
    c->lock_fd = -1;
    int rc;
    size_t n = strlen(dir) + sizeof("/" CK_DB_NAME);
    c->path = malloc(n);
    if (!c->path) {
        snprintf(err, errlen, "checkpoint store: out of memory");
        rc = -ENOMEM;
        goto out_free;
    }
    snprintf(c->path, n, "%s/" CK_DB_NAME, dir);

    rc = ck_mkdirs(dir);
    if (rc < 0) {
        snprintf(err, errlen, "checkpoint directory %s: %s", dir, strerror(-rc));
        goto out_free;
    }
    rc = ck_lock_dir(c, dir, err, errlen);
    if (rc < 0)
        goto out_free;
    rc = ck_create_file(c->path);
    if (rc < 0) {
        snprintf(err, errlen, "checkpoint database %s: %s", c->path,
                 rc == -EINVAL ? "not a regular file" : strerror(-rc));
        goto out_free;
    }

    /* NOMUTEX: the store is used from the event loop thread only. */
    rc = sqlite3_open_v2(c->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        goto out_sqlite;
    sqlite3_busy_timeout(c->db, CK_BUSY_MS);

    /*
     * The first statement reads the header: a file that is not SQLite fails
     * here with "file is not a database". journal_mode answers the mode it got.
     */
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const char *mode = (const char *)sqlite3_column_text(st, 0);
            if (!mode || strcmp(mode, "wal") != 0)
                lc_log(LC_LOG_WARN, CK_COMPONENT, "%s: journal mode is %s, not wal", c->path,
                       mode ? mode : "?");
        }
        /* finalize keeps a step error in the handle for ck_open_fail() */
        int frc = sqlite3_finalize(st);
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? frc : rc;
    }
    if (rc != SQLITE_OK)
        goto out_sqlite;
    rc = sqlite3_exec(c->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL); /* see the top */
    if (rc != SQLITE_OK)
        goto out_sqlite;

    rc = ck_migrate(c, err, errlen);
    if (rc < 0)
        goto out_free;

    rc = ck_check(c, err, errlen);
    if (rc < 0)
        goto out_free;

    for (int i = 0; i < CK_NSTMT; i++) {
        rc = sqlite3_prepare_v3(c->db, ck_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->st[i], NULL);
        if (rc != SQLITE_OK)
            goto out_sqlite;
    }
    rc = ck_open_writer(c);
    if (rc != SQLITE_OK) {
        rc = ck_open_fail_db(c, c->wdb, rc, err, errlen);
        goto out_free;
    }

    ck_register_metrics(c);
    lc_gauge_set(c->m_entries, ck_count(c->st[CK_COUNT]));
    c->ready = true;
    *out = c;
    return 0;

out_sqlite:
    rc = ck_open_fail(c, rc, err, errlen);
out_free:
    lc_ckpt_free(c);
    return rc;
}

static int ck_flush_end(struct lc_ckpt *c);

void lc_ckpt_free(struct lc_ckpt *c)
{
    if (!c)
        return;
    if (c->flying) { /* the worker ended without running it: it comes back to the buffer */
        c->job.cancelled = true;
        ck_flush_end(c);
    }
    if (c->ready && lc_ckpt_dirty(c) > 0 && lc_ckpt_flush(c) < 0)
        lc_log(LC_LOG_ERROR, CK_COMPONENT,
               "%s: closing with %zu unsaved checkpoint changes; those sources will replay",
               c->path, lc_ckpt_dirty(c));
    for (int i = 0; i < CK_NSTMT; i++) {
        sqlite3_finalize(c->st[i]);
        c->st[i] = NULL;
    }
    sqlite3_close_v2(c->db); /* NULL is a no-op */
    c->db = NULL;
    for (int i = 0; i < CK_NSTMT; i++) {
        sqlite3_finalize(c->wst[i]);
        c->wst[i] = NULL;
    }
    sqlite3_close_v2(c->wdb);
    c->wdb = NULL;
    ck_map_free(&c->src);
    ck_map_free(&c->meta);
    ck_map_free(&c->fsrc);
    ck_map_free(&c->fmeta);
    free(c->path);
    c->path = NULL;
    if (c->lock_fd >= 0)
        close(c->lock_fd); /* releases the flock */
    free(c);
}

/* Entries ------------------------------------------------------------------- */

int lc_ckpt_get(struct lc_ckpt *c, const char *key, struct lc_ckpt_entry *e)
{
    if (!key || !ck_len_ok(key, LC_CKPT_KEY_MAX))
        return -EINVAL;
    const struct ck_slot *s = ck_map_get(&c->src, key);
    if (!s)
        s = ck_map_get(&c->fsrc, key); /* empty unless a flush flies */
    if (s) {
        if (s->tomb)
            return -ENOENT;
        *e = s->e;
        return 0;
    }

    sqlite3_stmt *st = c->st[CK_GET];
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *path = ck_column_str(st, 0);
        const char *cursor = ck_column_cursor(st, 0);
        if (!ck_len_ok(path, LC_CKPT_PATH_MAX) || !ck_len_ok(cursor, LC_CKPT_CURSOR_MAX)) {
            rc = -EIO; /* only a hand-edited row can be this long */
            goto out_reset;
        }
        memset(e, 0, sizeof(*e));
        ck_column_entry(st, 0, e);
        /* both lengths were checked against these buffers */
        memcpy(c->gkey, key, strlen(key) + 1);
        memcpy(c->gpath, path, strlen(path) + 1);
        memcpy(c->gcursor, cursor, strlen(cursor) + 1);
        e->key = c->gkey;
        e->path = c->gpath;
        e->cursor = c->gcursor;
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = -ENOENT;
    } else {
        lc_log(LC_LOG_ERROR, CK_COMPONENT, "%s: reading a checkpoint failed: %s", c->path,
               sqlite3_errmsg(c->db));
        rc = ck_errno(c->db, rc);
    }
out_reset:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int lc_ckpt_put(struct lc_ckpt *c, const struct lc_ckpt_entry *e)
{
    const char *path = e->path ? e->path : "";
    const char *cursor = e->cursor ? e->cursor : "";
    if (!e->key || !ck_len_ok(e->key, LC_CKPT_KEY_MAX) || !ck_len_ok(path, LC_CKPT_PATH_MAX) ||
        !ck_len_ok(cursor, LC_CKPT_CURSOR_MAX))
        return -EINVAL;
    bool fresh;
    struct ck_slot *s = ck_map_slot(&c->src, e->key, &fresh);
    if (!s)
        return -ENOMEM;
    if (ck_set_str(&s->path, path) < 0 || ck_set_str(&s->cursor, cursor) < 0) {
        if (fresh)
            ck_map_unslot(&c->src, s);
        return -ENOMEM;
    }
    s->tomb = false;
    s->e = *e;
    s->e.key = s->key;
    s->e.path = s->path;
    s->e.cursor = s->cursor;
    if (s->e.updated_ns == 0)
        s->e.updated_ns = ck_now_ns(CLOCK_REALTIME);
    return 0;
}

int lc_ckpt_del(struct lc_ckpt *c, const char *key)
{
    if (!key || !ck_len_ok(key, LC_CKPT_KEY_MAX))
        return -EINVAL;
    bool fresh;
    struct ck_slot *s = ck_map_slot(&c->src, key, &fresh);
    if (!s)
        return -ENOMEM;
    free(s->path);
    s->path = NULL;
    free(s->cursor);
    s->cursor = NULL;
    memset(&s->e, 0, sizeof(s->e));
    s->tomb = true;
    return 0;
}

/*
 * each() works on a snapshot: matching rows (buffered first, then database
 * rows not shadowed by a buffered change) are copied out before the first
 * callback, so fn may call anything on the store, put/del/flush included.
 * The copy is as large as the matching entries; each() runs at start-up and on
 * rescans, not per line.
 */
struct ck_snap {
    struct lc_ckpt_entry *v;
    size_t n, alloc;
    char *arena;
    size_t used, size;
};

static int ck_snap_add(struct ck_snap *sn, const struct lc_ckpt_entry *e, const char *key,
                       const char *path)
{
    const char *cursor = e->cursor ? e->cursor : "";
    size_t kl = strlen(key) + 1, pl = strlen(path) + 1, cl = strlen(cursor) + 1;
    if (sn->n == sn->alloc) {
        size_t na = sn->alloc ? sn->alloc * 2 : 64;
        struct lc_ckpt_entry *nv = realloc(sn->v, na * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        sn->v = nv;
        sn->alloc = na;
    }
    /* !arena implies size 0: said outright for the analyzer */
    if (!sn->arena || sn->used + kl + pl + cl > sn->size) {
        size_t ns = sn->size ? sn->size : 4096;
        while (ns < sn->used + kl + pl + cl)
            ns *= 2;
        char *na = realloc(sn->arena, ns);
        if (!na)
            return -ENOMEM;
        sn->arena = na;
        sn->size = ns;
    }
    /* Strings are kept as arena offsets until the arena stops moving. */
    struct lc_ckpt_entry *d = &sn->v[sn->n++];
    *d = *e;
    memcpy(sn->arena + sn->used, key, kl);
    d->key = (const char *)(uintptr_t)sn->used;
    sn->used += kl;
    memcpy(sn->arena + sn->used, path, pl);
    d->path = (const char *)(uintptr_t)sn->used;
    sn->used += pl;
    memcpy(sn->arena + sn->used, cursor, cl);
    d->cursor = (const char *)(uintptr_t)sn->used;
    sn->used += cl;
    return 0;
}

/* The arena stopped moving: turn the offsets into pointers. */
static void ck_snap_fix(struct ck_snap *sn)
{
    for (size_t i = 0; i < sn->n; i++) {
        sn->v[i].key = sn->arena + (uintptr_t)sn->v[i].key;
        sn->v[i].path = sn->arena + (uintptr_t)sn->v[i].path;
        sn->v[i].cursor = sn->arena + (uintptr_t)sn->v[i].cursor;
    }
}

/*
 * The smallest string greater than every string starting with prefix: prefix
 * with trailing 0xff bytes dropped and the last byte incremented. False when
 * there is none (empty or all 0xff): then there is no upper bound.
 */
static bool ck_prefix_end(const char *prefix, char *out, size_t outlen)
{
    size_t n = strlen(prefix);
    if (n >= outlen)
        return false;
    memcpy(out, prefix, n);
    while (n > 0 && (unsigned char)out[n - 1] == 0xff)
        n--;
    if (n == 0)
        return false;
    out[n - 1] = (char)((unsigned char)out[n - 1] + 1);
    out[n] = '\0';
    return true;
}

int lc_ckpt_each(struct lc_ckpt *c, const char *prefix,
                 void (*fn)(const struct lc_ckpt_entry *e, void *arg), void *arg)
{
    if (!prefix)
        prefix = "";
    if (!ck_len_ok(prefix, LC_CKPT_KEY_MAX))
        return -EINVAL;
    size_t plen = strlen(prefix);
    struct ck_snap sn = {0};
    int rc = 0;

    for (size_t i = 0; i < c->src.cap; i++) {
        const struct ck_slot *s = &c->src.slots[i];
        if (!s->key || s->tomb || strncmp(s->key, prefix, plen) != 0)
            continue;
        rc = ck_snap_add(&sn, &s->e, s->key, s->path);
        if (rc < 0)
            goto out_free;
    }
    for (size_t i = 0; i < c->fsrc.cap; i++) {
        const struct ck_slot *s = &c->fsrc.slots[i];
        if (!s->key || s->tomb || strncmp(s->key, prefix, plen) != 0 || ck_map_get(&c->src, s->key))
            continue;
        rc = ck_snap_add(&sn, &s->e, s->key, s->path);
        if (rc < 0)
            goto out_free;
    }

    char end[LC_CKPT_KEY_MAX + 1];
    bool bounded = ck_prefix_end(prefix, end, sizeof(end));
    sqlite3_stmt *st = c->st[bounded ? CK_EACH_RANGE : CK_EACH_FROM];
    sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
    if (bounded)
        sqlite3_bind_text(st, 2, end, -1, SQLITE_STATIC);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = ck_column_str(st, 0);
        if (ck_map_get(&c->src, key) || ck_map_get(&c->fsrc, key))
            continue; /* shadowed by a buffered put (added above) or delete */
        struct lc_ckpt_entry e = {0};
        ck_column_entry(st, 1, &e);
        e.cursor = ck_column_cursor(st, 1);
        rc = ck_snap_add(&sn, &e, key, ck_column_str(st, 1));
        if (rc < 0)
            break;
    }
    if (rc == 0 && src != SQLITE_DONE) {
        lc_log(LC_LOG_ERROR, CK_COMPONENT, "%s: reading checkpoints failed: %s", c->path,
               sqlite3_errmsg(c->db));
        rc = ck_errno(c->db, src);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc < 0)
        goto out_free;

    ck_snap_fix(&sn);
    for (size_t i = 0; i < sn.n; i++)
        fn(&sn.v[i], arg);
out_free:
    free(sn.v);
    free(sn.arena);
    return rc;
}

/* Meta ---------------------------------------------------------------------- */

int lc_ckpt_meta_get(struct lc_ckpt *c, const char *key, char *val, size_t vallen)
{
    if (!key || !ck_len_ok(key, LC_CKPT_KEY_MAX) || vallen == 0)
        return -EINVAL;
    const struct ck_slot *s = ck_map_get(&c->meta, key);
    if (!s)
        s = ck_map_get(&c->fmeta, key);
    if (s) {
        size_t n = strlen(s->val);
        if (n >= vallen)
            return -ERANGE;
        memcpy(val, s->val, n + 1);
        return 0;
    }
    sqlite3_stmt *st = c->st[CK_META_GET];
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *v = ck_column_str(st, 0);
        size_t n = strlen(v);
        if (n >= vallen) {
            rc = -ERANGE;
        } else {
            memcpy(val, v, n + 1);
            rc = 0;
        }
    } else if (rc == SQLITE_DONE) {
        rc = -ENOENT;
    } else {
        lc_log(LC_LOG_ERROR, CK_COMPONENT, "%s: reading meta failed: %s", c->path,
               sqlite3_errmsg(c->db));
        rc = ck_errno(c->db, rc);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int lc_ckpt_meta_put(struct lc_ckpt *c, const char *key, const char *val)
{
    if (!key || !val || !ck_len_ok(key, LC_CKPT_KEY_MAX) || !ck_len_ok(val, LC_CKPT_VAL_MAX))
        return -EINVAL;
    bool fresh;
    struct ck_slot *s = ck_map_slot(&c->meta, key, &fresh);
    if (!s)
        return -ENOMEM;
    if (ck_set_str(&s->val, val) < 0) {
        if (fresh)
            ck_map_unslot(&c->meta, s);
        return -ENOMEM;
    }
    return 0;
}

/* Flush --------------------------------------------------------------------- */

/* Writes every change in the in-flight maps; the caller holds the transaction. SQLite rc. */
static int ck_write_all(struct lc_ckpt *c)
{
    int rc = SQLITE_OK;
    for (size_t i = 0; i < c->fsrc.cap && rc == SQLITE_OK; i++) {
        const struct ck_slot *s = &c->fsrc.slots[i];
        if (!s->key)
            continue;
        sqlite3_stmt *st;
        if (s->tomb) {
            st = c->wst[CK_DEL];
            sqlite3_bind_text(st, 1, s->key, -1, SQLITE_STATIC);
        } else {
            st = c->wst[CK_PUT];
            ck_bind_entry(st, &s->e);
        }
        rc = ck_run(st);
        sqlite3_clear_bindings(st);
    }
    for (size_t i = 0; i < c->fmeta.cap && rc == SQLITE_OK; i++) {
        const struct ck_slot *s = &c->fmeta.slots[i];
        if (!s->key)
            continue;
        sqlite3_stmt *st = c->wst[CK_META_PUT];
        sqlite3_bind_text(st, 1, s->key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, s->val, -1, SQLITE_STATIC);
        rc = ck_run(st);
        sqlite3_clear_bindings(st);
    }
    return rc;
}

/*
 * The transaction, on the worker thread (or on the loop when nothing flies):
 * touches only the writer connection and the in-flight maps, and reports in
 * c->job_* for ck_flush_end().
 */
static void ck_flush_work(struct lc_worker_job *j)
{
    struct lc_ckpt *c = LC_WORKER_OWNER(j, struct lc_ckpt, job);
    int64_t t0 = ck_now_ns(CLOCK_MONOTONIC);

    c->job_count = -1;
    c->job_err[0] = '\0';
    int rc = ck_run(c->wst[CK_BEGIN]);
    if (rc == SQLITE_OK)
        rc = ck_write_all(c);
    if (rc == SQLITE_OK)
        rc = ck_run(c->wst[CK_COMMIT]);
    if (rc == SQLITE_OK) {
        c->job_count = ck_count(c->wst[CK_COUNT]);
    } else {
        /* errmsg first: ROLLBACK replaces it */
        snprintf(c->job_err, sizeof(c->job_err), "%s", sqlite3_errmsg(c->wdb));
        c->job_errno = ck_errno(c->wdb, rc);
        if (!sqlite3_get_autocommit(c->wdb))
            ck_run(c->wst[CK_ROLLBACK]);
    }
    c->job_rc = rc;
    c->job_ns = ck_now_ns(CLOCK_MONOTONIC) - t0;
}

/* Moves every in-flight change not shadowed by a newer buffered one back into the buffer. */
static void ck_merge_back(struct ck_map *to, struct ck_map *from, size_t *lost)
{
    for (size_t i = 0; i < from->cap; i++) {
        struct ck_slot *f = &from->slots[i];
        if (!f->key || ck_map_get(to, f->key))
            continue;
        bool fresh;
        struct ck_slot *s = ck_map_slot(to, f->key, &fresh);
        if (!s) {
            (*lost)++;
            continue;
        }
        s->tomb = f->tomb;
        s->path = f->path;
        s->cursor = f->cursor;
        s->val = f->val;
        s->e = f->e;
        s->e.key = s->key;
        s->e.path = s->path;
        s->e.cursor = s->cursor;
        f->path = NULL;
        f->cursor = NULL;
        f->val = NULL;
    }
    ck_map_clear(from);
}

/* The loop's half of a flush: metrics, log, and the in-flight maps dropped or merged back. */
static int ck_flush_end(struct lc_ckpt *c)
{
    size_t n = c->fsrc.n + c->fmeta.n;
    int rc = 0;

    c->flying = false;
    if (c->job.cancelled) {
        c->job_rc = SQLITE_ABORT;
        c->job_errno = -ECANCELED;
        snprintf(c->job_err, sizeof(c->job_err), "cancelled at shutdown");
        c->job_ns = 0;
    }
    if (c->job_rc == SQLITE_OK) {
        ck_map_clear(&c->fsrc);
        ck_map_clear(&c->fmeta);
        if (c->job_count >= 0)
            lc_gauge_set(c->m_entries, c->job_count);
        lc_counter_inc(c->m_flushes[FLUSH_OK]);
    } else {
        size_t lost = 0;
        ck_merge_back(&c->src, &c->fsrc, &lost);
        ck_merge_back(&c->meta, &c->fmeta, &lost);
        lc_log(LC_LOG_ERROR, CK_COMPONENT,
               "%s: checkpoint flush failed: %s; %zu changes kept for the next flush", c->path,
               c->job_err, n - lost);
        if (lost)
            lc_log(LC_LOG_ERROR, CK_COMPONENT,
                   "%s: out of memory: %zu checkpoint changes dropped; those sources will replay",
                   c->path, lost);
        lc_counter_inc(c->m_flushes[FLUSH_ERROR]);
        rc = c->job_errno < 0 ? c->job_errno : -EIO;
    }
    if (c->m_seconds && c->job_ns > 0)
        lc_histogram_observe(c->m_seconds, (double)c->job_ns / 1e9);
    c->job.cancelled = false;
    return rc;
}

static void ck_flush_done(struct lc_worker_job *j)
{
    struct lc_ckpt *c = LC_WORKER_OWNER(j, struct lc_ckpt, job);
    int rc = ck_flush_end(c);
    if (c->job_done)
        c->job_done(rc, c->job_arg);
}

/*
 * Swaps the buffer and the in-flight maps: hands the buffer to a flush (the
 * in-flight maps, empty, become the new buffer), or takes it back unwritten.
 */
static void ck_swap(struct lc_ckpt *c, bool flying)
{
    struct ck_map m = c->fsrc;
    c->fsrc = c->src;
    c->src = m;
    m = c->fmeta;
    c->fmeta = c->meta;
    c->meta = m;
    c->flying = flying;
}

int lc_ckpt_flush(struct lc_ckpt *c)
{
    if (c->flying)
        return -EBUSY;
    if (lc_ckpt_dirty(c) == 0)
        return 0;
    ck_swap(c, true);
    c->job.cancelled = false;
    ck_flush_work(&c->job);
    return ck_flush_end(c);
}

int lc_ckpt_flush_start(struct lc_ckpt *c, struct lc_worker *w, void (*done)(int rc, void *arg),
                        void *arg)
{
    if (c->flying)
        return -EBUSY;
    if (lc_ckpt_dirty(c) == 0)
        return -ENODATA;
    c->job.work = ck_flush_work;
    c->job.done = ck_flush_done;
    c->job_done = done;
    c->job_arg = arg;
    ck_swap(c, true);
    int rc = lc_worker_submit(w, &c->job);
    if (rc < 0) {
        ck_swap(c, false); /* nothing was written: the buffer goes back as it was */
    }
    return rc;
}

bool lc_ckpt_flushing(const struct lc_ckpt *c)
{
    return c->flying;
}

size_t lc_ckpt_dirty(const struct lc_ckpt *c)
{
    return c->src.n + c->meta.n;
}

/* Sweep ---------------------------------------------------------------------- */

struct ck_sweep {
    struct lc_worker_job job;
    struct ck_snap sn; /* candidate rows, copied on the loop */
    bool *gone;        /* per row, filled on the worker */
    struct lc_ckpt *c;
    struct lc_ckpt_sweep_ops ops;
    void *arg;
    int rc; /* of collecting */
};

static void ck_sweep_collect(const struct lc_ckpt_entry *e, void *arg)
{
    struct ck_sweep *sw = arg;
    if (sw->rc == 0 && !sw->ops.keep(e, sw->arg))
        sw->rc = ck_snap_add(&sw->sn, e, e->key, e->path);
}

static void ck_sweep_work(struct lc_worker_job *j)
{
    struct ck_sweep *sw = LC_WORKER_OWNER(j, struct ck_sweep, job);
    for (size_t i = 0; i < sw->sn.n; i++)
        sw->gone[i] = sw->ops.gone(&sw->sn.v[i]);
}

static void ck_sweep_free(struct ck_sweep *sw)
{
    free(sw->sn.v);
    free(sw->sn.arena);
    free(sw->gone);
    free(sw);
}

/* Loop thread: deletes the rows found gone, unless they came back into use meanwhile. */
static void ck_sweep_done(struct lc_worker_job *j)
{
    struct ck_sweep *sw = LC_WORKER_OWNER(j, struct ck_sweep, job);
    for (size_t i = 0; i < sw->sn.n && !j->cancelled; i++) {
        const struct lc_ckpt_entry *e = &sw->sn.v[i];
        if (!sw->gone[i] || sw->ops.keep(e, sw->arg))
            continue;
        if (lc_ckpt_del(sw->c, e->key) == 0 && sw->ops.deleted)
            sw->ops.deleted(e, sw->arg);
    }
    ck_sweep_free(sw);
}

int lc_ckpt_sweep_start(struct lc_ckpt *c, struct lc_worker *w, const char *prefix,
                        const struct lc_ckpt_sweep_ops *ops, void *arg)
{
    struct ck_sweep *sw = calloc(1, sizeof(*sw));
    if (!sw)
        return -ENOMEM;
    sw->c = c;
    sw->ops = *ops;
    sw->arg = arg;
    int rc = lc_ckpt_each(c, prefix, ck_sweep_collect, sw);
    if (rc == 0)
        rc = sw->rc;
    if (rc == 0 && sw->sn.n == 0)
        rc = -ENODATA;
    if (rc == 0) {
        ck_snap_fix(&sw->sn);
        sw->gone = calloc(sw->sn.n, sizeof(*sw->gone));
        rc = sw->gone ? 0 : -ENOMEM;
    }
    if (rc == 0) {
        sw->job.work = ck_sweep_work;
        sw->job.done = ck_sweep_done;
        rc = lc_worker_submit(w, &sw->job);
    }
    if (rc != 0)
        ck_sweep_free(sw); /* on 0 the worker job owns it: ck_sweep_done frees it */
    return rc;
}
