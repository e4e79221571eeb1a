/* SPDX-License-Identifier: MIT */
/* test_dlq.c: DLQ segments (modes, rotation, cap, locking) and replay through a local Loki stub. */
#include "core/agent.h"
#include "core/batch.h"
#include "core/labels.h"
#include "core/meta.h"
#include "core/worker.h"
#include "loki_push.pb-c.h"
#include "output/dlq.h"
#include "output/dlq_cli.h"
#include "output/loki.h"

#include "lc_test_http.h"

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cmocka.h>

#define NS 1000000000LL

struct fx {
    char root[512];
    char dir[600];
    struct lc_metric_series bytes, max, batches, dropped, errors;
    struct lc_dlq_metrics m;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("LC_TEST_TMP");
    char base[400];

    snprintf(base, sizeof(base), "%s", tmp && *tmp ? tmp : "/tmp");
    mkdir(base, 0700);
    snprintf(f->root, sizeof(f->root), "%s/dlqtest.XXXXXX", base);
    assert_non_null(mkdtemp(f->root));
    snprintf(f->dir, sizeof(f->dir), "%s/state/dlq/loki", f->root);
    f->m = (struct lc_dlq_metrics){.bytes = &f->bytes,
                                   .max = &f->max,
                                   .batches = &f->batches,
                                   .dropped = &f->dropped,
                                   .errors = &f->errors};
    *state = f;
    return 0;
}

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    char p[1024];

    if (!d) {
        unlink(path);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
        rm_rf(p);
    }
    closedir(d);
    rmdir(path);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    rm_rf(f->root);
    free(f);
    return 0;
}

/* Segment names in dir, sorted; returns how many. */
static int segments(const char *dir, char names[][64], int max)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL && n < max)
        if (strncmp(de->d_name, "segment-", 8) == 0 && strlen(de->d_name) < 64)
            memcpy(names[n++], de->d_name, strlen(de->d_name) + 1);
    closedir(d);
    qsort(names, (size_t)n, 64, (int (*)(const void *, const void *))strcmp);
    return n;
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
    char p[1024];
    int n = snprintf(p, sizeof(p), "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < sizeof(p));
    FILE *fp = fopen(p, "rb");
    assert_non_null(fp);
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, fp);
    buf[*len] = '\0';
    fclose(fp);
    return buf;
}

static void line_of(char *buf, size_t len, int i)
{
    /* 39 bytes + newline = 40 */
    snprintf(buf, len, "{\"n\":%06d,\"pad\":\"xxxxxxxxxxxxxxxxxx\"}\n", i);
    assert_int_equal(strlen(buf), 40);
}

static void test_append_modes_and_content(void **state)
{
    struct fx *f = *state;
    struct lc_dlq *d;
    char err[256], line[64], names[8][64];
    struct stat st;

    assert_int_equal(lc_dlq_open(&d, f->dir, 1 << 20, 1 << 20, &f->m, err, sizeof(err)), 0);
    assert_int_equal(atomic_load(&f->max.i), 1 << 20); /* the cap, set at open */
    assert_int_equal(stat(f->dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    for (int i = 0; i < 3; i++) {
        line_of(line, sizeof(line), i);
        assert_int_equal(lc_dlq_append(d, line, 40), 0);
    }
    assert_int_equal(lc_dlq_bytes(d), 120);
    assert_int_equal(atomic_load(&f->batches.u), 3);
    assert_int_equal(atomic_load(&f->bytes.i), 120);
    assert_int_equal(segments(f->dir, names, 8), 1);
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", f->dir, names[0]);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    size_t len;
    char *data = slurp(f->dir, names[0], &len);
    assert_int_equal(len, 120);
    assert_memory_equal(data + 80, "{\"n\":000002", 11);
    free(data);
    lc_dlq_free(d);

    /* reopening keeps the old segments and writes a new one */
    assert_int_equal(lc_dlq_open(&d, f->dir, 1 << 20, 1 << 20, &f->m, err, sizeof(err)), 0);
    assert_int_equal(lc_dlq_bytes(d), 120);
    line_of(line, sizeof(line), 3);
    assert_int_equal(lc_dlq_append(d, line, 40), 0);
    assert_int_equal(segments(f->dir, names, 8), 2);
    assert_true(strcmp(names[0], names[1]) < 0);
    lc_dlq_free(d);
    lc_dlq_free(NULL);
}

/* What lc_dlq_append_async's callbacks saw: order, result, and the line already on disk. */
struct async_seen {
    struct fx *f;
    int n;
    int order[8];
    int rc[8];
    size_t on_disk[8]; /* bytes in the segment when the callback ran */
    bool loop_thread[8];
    uv_thread_t main;
};

struct async_arg {
    struct async_seen *seen;
    int id;
};

static size_t dir_bytes(const char *dir)
{
    char names[8][64];
    size_t total = 0;
    int n = segments(dir, names, 8);
    for (int i = 0; i < n; i++) {
        size_t len;
        char *data = slurp(dir, names[i], &len);
        free(data);
        total += len;
    }
    return total;
}

static void on_appended(int rc, void *arg)
{
    struct async_arg *a = arg;
    struct async_seen *s = a->seen;
    uv_thread_t self = uv_thread_self();
    s->order[s->n] = a->id;
    s->rc[s->n] = rc;
    s->on_disk[s->n] = dir_bytes(s->f->dir);
    s->loop_thread[s->n] = uv_thread_equal(&self, &s->main);
    s->n++;
}

/* Appends on the disk worker: acknowledged in order, on the loop, only once on disk. */
static void test_append_async(void **state)
{
    struct fx *f = *state;
    struct lc_dlq *d;
    struct lc_worker *w;
    uv_loop_t loop;
    char err[256], line[64];
    struct async_seen seen = {.f = f, .main = uv_thread_self()};
    struct async_arg args[4];

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(lc_worker_new(&w, &loop, 4, NULL), 0);
    assert_int_equal(lc_dlq_open(&d, f->dir, 200, 200, &f->m, err, sizeof(err)), 0);
    for (int i = 0; i < 3; i++) {
        args[i] = (struct async_arg){&seen, i};
        line_of(line, sizeof(line), i);
        assert_int_equal(lc_dlq_append_async(d, w, line, 40, on_appended, &args[i]), 0);
    }
    args[3] = (struct async_arg){&seen, 3};
    char big[300];
    memset(big, 'x', sizeof(big));
    /* too big for the cap: its callback reports the error, in its turn */
    assert_int_equal(lc_dlq_append_async(d, w, big, sizeof(big), on_appended, &args[3]), 0);
    assert_true(lc_dlq_busy(d));
    for (int i = 0; i < 10000 && seen.n < 4; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    assert_int_equal(seen.n, 4);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(seen.order[i], i);
        assert_int_equal(seen.rc[i], 0);
        assert_true(seen.on_disk[i] >= (size_t)(i + 1) * 40);
        assert_true(seen.loop_thread[i]);
    }
    assert_int_equal(seen.order[3], 3);
    assert_int_equal(seen.rc[3], -E2BIG);
    assert_false(lc_dlq_busy(d));
    assert_int_equal(atomic_load(&f->batches.u), 3);
    lc_worker_close(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    lc_worker_free(w);
    assert_int_equal(uv_loop_close(&loop), 0);
    lc_dlq_free(d);
}

static void test_rotation_and_cap(void **state)
{
    struct fx *f = *state;
    struct lc_dlq *d;
    char err[256], line[64], names[32][64];

    /* segments of ~100 bytes (3 lines: rotation once at or above), total cap 250 */
    assert_int_equal(lc_dlq_open(&d, f->dir, 250, 100, &f->m, err, sizeof(err)), 0);
    for (int i = 0; i < 20; i++) {
        line_of(line, sizeof(line), i);
        assert_int_equal(lc_dlq_append(d, line, 40), 0);
        assert_true(lc_dlq_bytes(d) <= 250);
    }
    int n = segments(f->dir, names, 32);
    assert_true(n >= 2);
    /* what is left is the newest lines, contiguous up to 19 */
    int64_t total = 0;
    int first = -1, last = -1, count = 0;
    for (int s = 0; s < n; s++) {
        size_t len;
        char *data = slurp(f->dir, names[s], &len);
        total += (int64_t)len;
        assert_true(len <= 120);
        for (size_t off = 0; off + 40 <= len; off += 40) {
            int v = (int)strtol(data + off + 5, NULL, 10);
            if (first < 0)
                first = v;
            else
                assert_int_equal(v, last + 1);
            last = v;
            count++;
        }
        free(data);
    }
    assert_int_equal(last, 19);
    assert_true(total <= 250);
    assert_int_equal(total, lc_dlq_bytes(d));
    /* every line deleted by the cap is counted */
    assert_int_equal(atomic_load(&f->dropped.u), (uint64_t)(20 - count));
    assert_int_equal(first, 20 - count);
    assert_int_equal(atomic_load(&f->batches.u), 20);

    /* a line larger than the whole cap is refused, counted */
    char big[400];
    memset(big, 'x', sizeof(big));
    big[399] = '\n';
    assert_int_equal(lc_dlq_append(d, big, sizeof(big)), -E2BIG);
    assert_int_equal(atomic_load(&f->errors.u), 1);
    lc_dlq_free(d);
}

static void test_writer_yields_to_replay(void **state)
{
    struct fx *f = *state;
    struct lc_dlq *d;
    char err[256], line[64], names[8][64], p[1024];

    assert_int_equal(lc_dlq_open(&d, f->dir, 1 << 20, 1 << 20, &f->m, err, sizeof(err)), 0);
    line_of(line, sizeof(line), 0);
    assert_int_equal(lc_dlq_append(d, line, 40), 0);
    assert_int_equal(segments(f->dir, names, 8), 1);
    /* a replay holds the segment: the writer does not wait, it starts another */
    snprintf(p, sizeof(p), "%s/%s", f->dir, names[0]);
    int fd = open(p, O_RDWR);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    line_of(line, sizeof(line), 1);
    assert_int_equal(lc_dlq_append(d, line, 40), 0);
    assert_int_equal(segments(f->dir, names, 8), 2);
    close(fd);
    /* a replay replaced the writer's segment (rename over it): the writer notices */
    snprintf(p, sizeof(p), "%s/%s", f->dir, names[1]);
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s/.tmp", f->dir);
    FILE *fp = fopen(tmp, "w");
    fclose(fp);
    assert_int_equal(rename(tmp, p), 0);
    line_of(line, sizeof(line), 2);
    assert_int_equal(lc_dlq_append(d, line, 40), 0);
    assert_int_equal(segments(f->dir, names, 8), 3);
    size_t len;
    char *data = slurp(f->dir, names[2], &len);
    assert_int_equal(len, 40);
    assert_memory_equal(data, "{\"n\":000002", 11);
    free(data);
    lc_dlq_free(d);
}

struct verdicts {
    int calls;
    int stop_at; /* 1-based call that answers STOP, 0 never */
};

/* Removes lines whose number is even; keeps odd ones. */
static enum lc_dlq_verdict keep_odd(const char *line, size_t len, void *arg)
{
    struct verdicts *v = arg;
    assert_int_equal(len, 39); /* without the newline */
    assert_int_equal(line[len], '\0');
    v->calls++;
    if (v->stop_at && v->calls == v->stop_at)
        return LC_DLQ_STOP;
    return strtol(line + 5, NULL, 10) % 2 == 0 ? LC_DLQ_REMOVE : LC_DLQ_KEEP;
}

static void test_replay_generic(void **state)
{
    struct fx *f = *state;
    struct lc_dlq *d;
    char err[256], line[64], names[8][64];
    struct lc_dlq_replay_stats st;
    struct verdicts v = {0};

    assert_int_equal(lc_dlq_open(&d, f->dir, 1 << 20, 120, &f->m, err, sizeof(err)), 0);
    for (int i = 0; i < 6; i++) { /* two segments of three lines */
        line_of(line, sizeof(line), i);
        assert_int_equal(lc_dlq_append(d, line, 40), 0);
    }
    lc_dlq_free(d);
    assert_int_equal(segments(f->dir, names, 8), 2);
    /* a torn line at the end of the last segment (a crash mid-append) */
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", f->dir, names[1]);
    FILE *fp = fopen(p, "a");
    fputs("{\"n\":000099,\"pa", fp);
    fclose(fp);

    /* stop at the 5th line: lines 0..3 handled, 4 and 5 kept untouched */
    v.stop_at = 5;
    assert_int_equal(lc_dlq_replay(f->dir, keep_odd, &v, NULL, &st), 0);
    assert_int_equal(st.segments, 2);
    assert_int_equal(st.lines, 5);
    assert_int_equal(st.removed, 2); /* 0 and 2 */
    assert_int_equal(st.kept, 4);    /* 1, 3, 4 (stop), 5 */
    assert_int_equal(st.torn, 1);
    size_t len;
    char *data = slurp(f->dir, names[0], &len);
    assert_int_equal(len, 40); /* rewritten: only line 1 left */
    assert_memory_equal(data, "{\"n\":000001", 11);
    free(data);
    /* 3 (kept), 4, 5; the torn line is gone: its batch was never acknowledged */
    data = slurp(f->dir, names[1], &len);
    assert_int_equal(len, 120);
    assert_int_equal(data[len - 1], '\n');
    free(data);

    /* again without stopping: the even lines go, a segment that empties is deleted */
    v = (struct verdicts){0};
    assert_int_equal(lc_dlq_replay(f->dir, keep_odd, &v, NULL, &st), 0);
    assert_int_equal(st.removed, 1); /* line 4 */
    assert_int_equal(st.kept, 3);    /* 1, 3, 5 */
    assert_int_equal(st.torn, 0);    /* removed by the first replay */
    v = (struct verdicts){0};
    /* mode survives the rewrite */
    struct stat sb;
    snprintf(p, sizeof(p), "%s/%s", f->dir, names[0]);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* and no temporary file stays behind */
    DIR *dd = opendir(f->dir);
    struct dirent *de;
    while ((de = readdir(dd)) != NULL)
        assert_true(strncmp(de->d_name, ".tmp", 4) != 0);
    closedir(dd);

    /* list prints every segment and a total */
    char out[4096] = {0};
    FILE *mf = fmemopen(out, sizeof(out) - 1, "w");
    assert_int_equal(lc_dlq_list(f->dir, mf), 0);
    fclose(mf);
    assert_non_null(strstr(out, "total: 2 segments"));
    assert_int_equal(lc_dlq_list("/nonexistent/dlq", stdout), -ENOENT);
    assert_int_equal(lc_dlq_replay("/nonexistent/dlq", keep_odd, &v, NULL, &st), -ENOENT);
}

/* ---- Loki replay against the local server ------------------------------------- */

static void make_loki_conf(struct lc_loki_conf *c, int port)
{
    char url[64];
    assert_int_equal(lc_options_defaults(lc_loki_conf_options, c), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    c->url = strdup(url);
    c->retry.initial_ms = 10; /* keep the failure path fast */
    c->retry.max_ms = 20;
    c->timeout_ms = 5000;
}

/* Writes one DLQ line the way the output does, for a batch of `n` entries (of tenant, or ""). */
static void write_batch(struct lc_dlq *d, struct lc_loki_enc *e, const struct lc_labels *l,
                        int64_t ts0, int n, const char *tag, const char *tenant)
{
    struct lc_batch *b = lc_batch_new(4096, 64);
    struct lc_buf line;
    char text[64];

    lc_batch_set_tenant(b, tenant, strlen(tenant));
    for (int i = 0; i < n; i++) {
        struct lc_record *r = &b->recs[b->n++];
        int k = snprintf(text, sizeof(text), "%s line %d \"q\" \\ \t", tag, i);
        r->ts_ns = ts0 + i;
        r->labels = l;
        r->line_off = b->used;
        r->line_len = (uint32_t)k;
        memcpy(b->arena + b->used, text, (size_t)k);
        b->used += (uint32_t)k;
        if (i == 1) { /* structured metadata, with escapes, survives the DLQ */
            r->meta_off = b->used;
            b->used += (uint32_t)lc_meta_put(b->arena + b->used, "trace_id", 8, "t\"1\\", 5);
            b->used += (uint32_t)lc_meta_put(b->arena + b->used, "user", 4, "", 0);
            r->meta_len = b->used - r->meta_off;
        }
    }
    lc_buf_init(&line, 1 << 20);
    assert_int_equal(lc_dlq_line_begin(&line, lc_now_ns(), "loki", "rejected", 400,
                                       "entry too far behind \"x\"", 24, b->tenant),
                     0);
    assert_int_equal(lc_loki_streams_json(e, b, &line), 0);
    assert_int_equal(lc_dlq_line_end(&line), 0);
    assert_int_equal(lc_dlq_append(d, line.data, line.len), 0);
    lc_buf_free(&line);
    lc_batch_free(b);
}

static Logproto__PushRequest *decode_req(const struct lc_th_req *rq)
{
    size_t ulen;
    assert_int_equal(snappy_uncompressed_length(rq->body, rq->body_len, &ulen), SNAPPY_OK);
    char *raw = malloc(ulen + 1);
    assert_int_equal(snappy_uncompress(rq->body, rq->body_len, raw, &ulen), SNAPPY_OK);
    Logproto__PushRequest *p = logproto__push_request__unpack(NULL, ulen, (uint8_t *)raw);
    free(raw);
    assert_non_null(p);
    return p;
}

static void test_loki_replay(void **state)
{
    struct fx *f = *state;
    struct lc_test_http srv;
    struct lc_loki_conf c;
    struct lc_loki_enc *e;
    struct lc_dlq *d;
    struct lc_dlq_cli_result res;
    char err[256], names[8][64];
    struct lc_kv kv[2] = {{"job", "replay"}, {"host", "h1"}};
    struct lc_labels *l;
    int64_t now = lc_now_ns();

    assert_int_equal(lc_test_http_start(&srv), 0);
    make_loki_conf(&c, srv.port);
    c.tenant = strdup("base"); /* the output's; a batch with its own goes with that */
    assert_int_equal(lc_labels_intern(kv, 2, &l), 0);
    assert_int_equal(lc_loki_enc_new(&e, LC_LOKI_PROTOBUF, false, NULL, 0, 1 << 20), 0);
    assert_int_equal(lc_dlq_open(&d, f->dir, 1 << 20, 1 << 20, NULL, err, sizeof(err)), 0);
    write_batch(d, e, l, now - 10 * NS, 3, "first", "");
    write_batch(d, e, l, now - 9 * NS, 2, "second", "");
    write_batch(d, e, l, now - 240 * 3600 * NS, 2, "ancient", ""); /* 10 days: policy drop */
    write_batch(d, e, l, now - 8 * NS, 1, "third", "team-3");
    lc_dlq_free(d);

    /* Loki accepts the first, rejects the second again, accepts the third */
    const int script[] = {204, 400, 204};
    lc_test_http_script(&srv, script, 3);
    assert_int_equal(lc_dlq_cli_replay(&c, NULL, "loki", f->dir, &res), 0);
    assert_int_equal(res.sent, 2);
    assert_int_equal(res.entries, 4);
    assert_int_equal(res.rejected, 1);
    assert_int_equal(res.dropped_batches, 1);
    assert_int_equal(res.dropped_old, 2);
    assert_int_equal(res.kept, 1);
    assert_false(res.stopped);
    assert_int_equal(atomic_load(&srv.nreq), 3);
    assert_int_equal(atomic_load(&srv.accepted), 1); /* one keep-alive connection */

    /* what Loki got: the same labels and lines, in order */
    Logproto__PushRequest *p = decode_req(&srv.reqs[0]);
    assert_int_equal(p->n_streams, 1);
    assert_string_equal(p->streams[0]->labels, "{host=\"h1\", job=\"replay\"}");
    assert_int_equal(p->streams[0]->n_entries, 3);
    assert_string_equal(p->streams[0]->entries[2]->line, "first line 2 \"q\" \\ \t");
    assert_int_equal(p->streams[0]->entries[0]->n_structuredmetadata, 0);
    assert_int_equal(p->streams[0]->entries[2]->n_structuredmetadata, 0);
    assert_int_equal(p->streams[0]->entries[1]->n_structuredmetadata, 2);
    assert_string_equal(p->streams[0]->entries[1]->structuredmetadata[0]->name, "trace_id");
    assert_string_equal(p->streams[0]->entries[1]->structuredmetadata[0]->value, "t\"1\\");
    assert_string_equal(p->streams[0]->entries[1]->structuredmetadata[1]->name, "user");
    assert_string_equal(p->streams[0]->entries[1]->structuredmetadata[1]->value, "");
    assert_int_equal(p->streams[0]->entries[2]->timestamp->seconds * NS +
                         p->streams[0]->entries[2]->timestamp->nanos,
                     now - 10 * NS + 2);
    logproto__push_request__free_unpacked(p, NULL);
    assert_non_null(strstr(srv.reqs[0].head, "POST /loki/api/v1/push HTTP/1.1"));
    assert_non_null(strstr(srv.reqs[0].head, "Content-Type: application/x-protobuf"));
    /* each batch with its tenant: the output's, or the one the batch was dead-lettered with */
    assert_non_null(strstr(srv.reqs[0].head, "X-Scope-OrgID: base\r\n"));
    assert_non_null(strstr(srv.reqs[2].head, "X-Scope-OrgID: team-3\r\n"));
    assert_null(strstr(srv.reqs[2].head, "X-Scope-OrgID: base"));

    /* only the rejected batch is left */
    assert_int_equal(segments(f->dir, names, 8), 1);
    size_t len;
    char *data = slurp(f->dir, names[0], &len);
    assert_non_null(strstr(data, "second line 0"));
    assert_null(strstr(data, "first line"));
    assert_null(strstr(data, "ancient"));
    free(data);

    /* Loki down (500): a few tries with backoff, then stop and keep everything */
    const int fail[] = {500, 500, 500, 500, 500, 500, 500, 500};
    lc_test_http_script(&srv, fail, 8);
    assert_int_equal(lc_dlq_cli_replay(&c, NULL, "loki", f->dir, &res), 0);
    assert_true(res.stopped);
    assert_int_equal(res.sent, 0);
    assert_int_equal(res.kept, 1);
    assert_int_equal(atomic_load(&srv.nreq), 3 + 5);

    /* later Loki takes it: the DLQ is empty */
    lc_test_http_script(&srv, script, 1);
    assert_int_equal(lc_dlq_cli_replay(&c, NULL, "loki", f->dir, &res), 0);
    assert_int_equal(res.sent, 1);
    assert_int_equal(res.kept, 0);
    assert_int_equal(segments(f->dir, names, 8), 0);

    /* an unreadable line is kept, never sent */
    assert_int_equal(lc_dlq_open(&d, f->dir, 1 << 20, 1 << 20, NULL, err, sizeof(err)), 0);
    assert_int_equal(lc_dlq_append(d, "{\"streams\":[{\"labels\":{}}]}\n", 28), 0);
    assert_int_equal(lc_dlq_append(d, "not json\n", 9), 0);
    /* a tenant the agent would not have written (not a valid Loki tenant ID): kept */
    static const char badt[] = "{\"tenant\":\"a b\",\"streams\":[{\"labels\":{\"j\":\"x\"},"
                               "\"entries\":[[\"1\",\"l\"]]}]}\n";
    assert_int_equal(lc_dlq_append(d, badt, sizeof(badt) - 1), 0);
    lc_dlq_free(d);
    int before = atomic_load(&srv.nreq);
    assert_int_equal(lc_dlq_cli_replay(&c, NULL, "loki", f->dir, &res), 0);
    assert_int_equal(res.bad, 3);
    assert_int_equal(res.kept, 3);
    assert_int_equal(atomic_load(&srv.nreq), before);

    lc_loki_enc_free(e);
    lc_labels_release(l);
    lc_options_free(lc_loki_conf_options, &c);
    lc_test_http_stop(&srv);
}

/*
 * The replay reader on lines the encoder writes: a NUL, control characters,
 * escapes and UTF-8 in lines and labels come back byte for byte, and a Loki
 * answer cut inside a UTF-8 character (the DLQ's "body") does not make the
 * line unreadable. Hand-written lines that break the form are kept.
 */
static void test_loki_replay_bytes(void **state)
{
    static const char weird[] =
        "nul\0after \x01\x1f \"q\" \\ / caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    struct fx *f = *state;
    struct {
        struct lc_test_http srv;
        struct lc_loki_conf c;
        struct lc_loki_enc *e;
        struct lc_dlq *d;
        struct lc_labels *l;
    } x;
    struct lc_dlq_cli_result res;
    char err[256], body[40];
    struct lc_kv kv[2] = {{"job", "caf\xc3\xa9 \"x\""}, {"host", "h\\1"}};
    struct lc_batch *b = lc_batch_new(4096, 64);
    struct lc_buf line;

    assert_int_equal(lc_test_http_start(&x.srv), 0);
    make_loki_conf(&x.c, x.srv.port);
    assert_int_equal(lc_labels_intern(kv, 2, &x.l), 0);
    assert_int_equal(lc_loki_enc_new(&x.e, LC_LOKI_PROTOBUF, false, NULL, 0, 1 << 20), 0);
    assert_int_equal(lc_dlq_open(&x.d, f->dir, 1 << 20, 1 << 20, NULL, err, sizeof(err)), 0);
    for (int i = 0; i < 2; i++) {
        struct lc_record *r = &b->recs[b->n++];
        r->ts_ns = lc_now_ns() - 5 * NS + i;
        r->labels = x.l;
        r->line_off = b->used;
        r->line_len = sizeof(weird) - 1 - (uint32_t)i; /* the second without the emoji's end */
        memcpy(b->arena + b->used, weird, r->line_len);
        b->used += r->line_len;
    }
    /* Loki's answer, cut in the middle of a character */
    snprintf(body, sizeof(body), "line too long: caf\xc3");
    lc_buf_init(&line, 1 << 20);
    assert_int_equal(
        lc_dlq_line_begin(&line, lc_now_ns(), "loki", "rejected", 400, body, strlen(body), NULL),
        0);
    assert_int_equal(lc_loki_streams_json(x.e, b, &line), 0);
    assert_int_equal(lc_dlq_line_end(&line), 0);
    assert_int_equal(lc_dlq_append(x.d, line.data, line.len), 0);
    /* well-formed JSON, but not a batch: kept */
    static const char *const bad[] = {
        "{\"streams\":[{\"labels\":{\"a\":1},\"entries\":[]}]}\n",
        "{\"streams\":[{\"labels\":{\"a\":\"b\"},\"entries\":[[\"x1\",\"l\"]]}]}\n",
        "{\"streams\":[{\"labels\":{\"a\":\"b\"},\"entries\":[[\"1\",\"l\",\"m\"]]}]}\n",
        "{\"streams\":{}}\n",
        "{\"labels\":{\"a\":\"b\"}}\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(lc_dlq_append(x.d, bad[i], strlen(bad[i])), 0);
    lc_dlq_free(x.d);

    const int ok[] = {204};
    lc_test_http_script(&x.srv, ok, 1);
    assert_int_equal(lc_dlq_cli_replay(&x.c, NULL, "loki", f->dir, &res), 0);
    assert_int_equal(res.sent, 1);
    assert_int_equal(res.entries, 2);
    assert_int_equal(res.bad, 5);
    assert_int_equal(res.kept, 5);
    assert_int_equal(atomic_load(&x.srv.nreq), 1);

    Logproto__PushRequest *p = decode_req(&x.srv.reqs[0]);
    assert_int_equal(p->n_streams, 1);
    assert_string_equal(p->streams[0]->labels, "{host=\"h\\\\1\", job=\"caf\xc3\xa9 \\\"x\\\"\"}");
    assert_int_equal(p->streams[0]->n_entries, 2);
    /* protobuf-c gives a C string: compare up to the NUL, then check the bytes */
    assert_string_equal(p->streams[0]->entries[0]->line, "nul");
    logproto__push_request__free_unpacked(p, NULL);
    /* the lines' bytes after the NUL, from the raw protobuf body */
    size_t ulen;
    const struct lc_th_req *rq = &x.srv.reqs[0];
    assert_int_equal(snappy_uncompressed_length(rq->body, rq->body_len, &ulen), SNAPPY_OK);
    char *raw = malloc(ulen);
    assert_int_equal(snappy_uncompress(rq->body, rq->body_len, raw, &ulen), SNAPPY_OK);
    assert_non_null(memmem(raw, ulen, weird, sizeof(weird) - 1));
    /* the cut emoji went out repaired, as the encoder sends any invalid UTF-8 */
    assert_non_null(memmem(raw, ulen, "\xe2\x82\xac ???", 7));
    free(raw);

    lc_buf_free(&line);
    lc_batch_free(b);
    lc_loki_enc_free(x.e);
    lc_labels_release(x.l);
    lc_options_free(lc_loki_conf_options, &x.c);
    lc_test_http_stop(&x.srv);
}

/* The DLQ registers its own series (names, labels and help are docs/metrics.md's). */
static void test_metrics_register(void **state)
{
    struct fx *f = *state;
    struct lc_dlq_metrics m;
    struct lc_dlq *d;
    char err[256], line[64];

    lc_dlq_metrics_register(&m, "dlq_out");
    assert_non_null(m.bytes);
    assert_non_null(m.max);
    assert_non_null(m.batches);
    assert_non_null(m.dropped);
    assert_non_null(m.errors);
    assert_int_equal(lc_dlq_open(&d, f->dir, 4096, 1 << 20, &m, err, sizeof(err)), 0);
    line_of(line, sizeof(line), 0);
    assert_int_equal(lc_dlq_append(d, line, 40), 0);
    assert_int_equal(lc_metric_family_total("log_capturer_dlq_max_bytes"), 4096);
    assert_int_equal(lc_metric_family_total("log_capturer_dlq_bytes"), 40);
    assert_int_equal(lc_metric_family_total("log_capturer_dlq_batches_total"), 1);
    lc_dlq_free(d);

    struct lc_buf out;
    lc_buf_init(&out, 1 << 20);
    assert_int_equal(lc_metrics_render(&out), 0);
    assert_int_equal(lc_buf_append(&out, "", 1), 0);
    static const char *const want[] = {
        "# HELP log_capturer_dlq_bytes Bytes in the dead-letter queue's segments.\n"
        "# TYPE log_capturer_dlq_bytes gauge\n"
        "log_capturer_dlq_bytes{output=\"dlq_out\"} 40\n",
        "# TYPE log_capturer_dlq_max_bytes gauge\n",
        "log_capturer_dlq_batches_total{output=\"dlq_out\"} 1\n",
        "# HELP log_capturer_dlq_dropped_batches_total Batches deleted from the dead-letter queue "
        "by its size cap.\n",
        "# HELP log_capturer_dlq_write_errors_total Failed dead-letter queue writes (the batch is "
        "read again after a restart).\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_non_null(strstr(out.data, want[i]));
    lc_buf_free(&out);
    lc_metrics_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_modes_and_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_async, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_and_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_yields_to_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_generic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loki_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loki_replay_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_register, setup, teardown),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
