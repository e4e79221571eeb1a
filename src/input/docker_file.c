/* SPDX-License-Identifier: MIT */
/* docker_file.c: the docker input's file mode: Docker's json-file logs through the file tailer. */
#include "input/docker_file.h"
#include "input/docker.h"
#include "input/file.h"
#include "input/split_join.h"

#include "core/labels.h"
#include "core/log.h"
#include "core/losses.h"
#include "parse/docker_json.h"
#include "parse/docker_seek.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The predecessor's file mode failed in five ways; here is where each is met:
 * 1. history replayed: first sight starts at the end, or at max_age found by
 *    bisecting the file by time (seek_time), then persistent offsets;
 * 2./3. retry storms on old timestamps: old lines never leave this file; the
 *    Loki output validates timestamps before sending;
 * 4. FD leaks: a file is closed once read to its end after its container is destroyed
 *    (event; the held descriptor still reads) or its inode is gone (poll), and
 *    every fd has one owner (the tail);
 * 5. metadata per line: one lookup per file open, from the shared cache.
 *
 * Docker splits lines over 16 KiB into entries whose "log" does not end in a
 * newline; they are joined per stream, and a position is committed only where
 * no split line is half joined, so a restart never loses the first parts.
 */

#define RAW_LINE_MAX (256 * 1024) /* one json-file entry: 16 KiB of text, escaped, with attrs */
#define SEEK_WINDOW  (64 * 1024)  /* one probe of the bisection by time */

/*
 * Docker writes the parts of a split line back to back, and a line without
 * its newline otherwise only when the container's output ends: a part held
 * this long with the log read to its end is that last line.
 */
#define FRAGMENT_WAIT_NS (5 * LC_NS_PER_SEC)

struct dfile {
    struct lc_docker_in *d;
    char id[LC_DOCKER_CLIENT_ID_MAX + 1];
    struct lc_split_join *j;     /* shared with the file this one replaced, if any */
    struct lc_labels *labels[2]; /* borrowed from the source once attached */
    int64_t since_ns;            /* resuming from an api-mode checkpoint: skip up to here */
    uint32_t since_seq;
    bool excluded;
};

/* The mode's state (d->mode). */
struct dfmode {
    struct lc_file_in *files;
    struct lc_file_conf fconf;
    char *glob;       /* one block: the two patterns of fconf.paths */
    char *decode_buf; /* RAW_LINE_MAX: a decoded line, or seek_time's window */
};

/* The instance's file reader. */
static struct lc_file_in *files(const struct lc_docker_in *d)
{
    return ((const struct dfmode *)d->mode)->files;
}

/* The instance's decode buffer: decoding is synchronous, on the loop. */
static char *decode_buf(const struct lc_tail *t)
{
    const struct lc_docker_in *d = t->fi->owner;

    return ((const struct dfmode *)d->mode)->decode_buf;
}

/* <root>/containers/<id>/<id>-json.log -> id */
static bool container_id(const char *path, char *id, size_t len)
{
    const char *end = strrchr(path, '/');
    const char *start = end;

    if (!end)
        return false;
    while (start > path && start[-1] != '/')
        start--;
    if (end == start || (size_t)(end - start) >= len)
        return false;
    memcpy(id, start, (size_t)(end - start));
    id[end - start] = '\0';
    return true;
}

/* True for <id>-json.log, false for a rotated <id>-json.log.N. */
static bool current_log(const char *path, const char *id)
{
    const char *base = strrchr(path, '/');
    size_t n = strlen(id);

    base = base ? base + 1 : path;
    return strncmp(base, id, n) == 0 && strcmp(base + n, "-json.log") == 0;
}

/* Without the socket: the container's own config.v2.json holds the same metadata. */
static int meta_from_disk(struct lc_docker_in *d, const char *id)
{
    char path[4096];
    struct lc_docker_label labels[64];
    struct lc_docker_inspect c = {0};
    json_error_t jerr;
    json_t *root, *cfg, *jl;
    const char *k;
    json_t *v;
    size_t n = 0;
    int rc;

    snprintf(path, sizeof(path), "%s/containers/%s/config.v2.json", d->c->root, id);
    root = json_load_file(path, 0, &jerr);
    if (!root)
        return -ENOENT;
    cfg = json_object_get(root, "Config");
    jl = json_object_get(cfg, "Labels");
    json_object_foreach(jl, k, v)
    {
        if (n < 64 && json_is_string(v)) {
            labels[n].key = k;
            labels[n++].value = json_string_value(v);
        }
    }
    c.id = id;
    c.name = json_string_value(json_object_get(root, "Name"));
    if (c.name && c.name[0] == '/')
        c.name++;
    c.image = json_string_value(json_object_get(cfg, "Image"));
    c.log_path = json_string_value(json_object_get(root, "LogPath"));
    c.tty = json_is_true(json_object_get(cfg, "Tty"));
    c.labels = labels;
    c.nlabels = n;
    if (!c.name)
        c.name = id;
    if (!c.image)
        c.image = "";
    if (!c.log_path)
        c.log_path = "";
    c.log_driver = "json-file";
    c.state = "";
    c.image_id = "";
    rc = lc_docker_meta_put(d->meta, id, &c);
    json_decref(root);
    return rc;
}

/* An api-mode checkpoint of this container: resume after it instead of the first-sight rule. */
static void mode_switch_resume(struct lc_tail *t, struct dfile *p)
{
    struct lc_ckpt_entry e;
    char key[256];

    lc_docker_key(p->d, p->id, key, sizeof(key));
    if (!t->first_sight || lc_source_lookup(p->d->in, key, &e) != 0 || e.pos.ts_ns <= 0)
        return;
    p->since_ns = e.pos.ts_ns;
    p->since_seq = e.pos.ts_seq;
    t->offset = 0;
    t->discarding = false;
    t->skip_old = false;
}

static int attach(struct lc_tail *t, struct dfile *p, const struct lc_docker_meta_entry *e)
{
    struct lc_labels *out = NULL, *err = NULL;
    int rc;

    if (!lc_docker_selected(p->d->c, e) || !lc_docker_relabel_kept(p->d, e)) {
        p->excluded = true;
        t->waiting = false;
        t->once_target = 0;
        lc_counter_inc(p->d->m_skip[LC_DOCKER_SKIP_EXCLUDED]);
        return 0; /* kept open but never read, so the rescan does not reopen it */
    }
    rc = lc_docker_labels(p->d, e, "stdout", &out);
    if (rc == 0)
        rc = lc_docker_labels(p->d, e, "stderr", &err);
    mode_switch_resume(t, p);
    if (rc) {
        lc_labels_release(out);
        return rc;
    }
    return lc_split_join_attach(t, out, err, p->labels);
}

static void on_meta(void *arg, int err, const struct lc_docker_meta_entry *e)
{
    struct lc_tail *t = arg;
    struct dfile *p = t->priv;

    if (err == 0 || (meta_from_disk(p->d, p->id) == 0 &&
                     (e = lc_docker_meta_peek(p->d->meta, p->id)) != NULL)) {
        attach(t, p, e);
        return;
    }
    lc_loss(p->d->in->conf->name, "no metadata for container %s: its log is not read", p->id);
    /* as an excluded one: kept open, unread, so rescans do not retry it; closed when rotated */
    t->waiting = false;
    t->once_target = 0;
    p->excluded = true;
}

static int df_open(struct lc_tail *t)
{
    struct lc_file_in *fi = t->fi;
    struct lc_docker_in *d = fi->owner;
    const struct lc_docker_meta_entry *e = NULL;
    struct dfile *p = calloc(1, sizeof(*p));
    int rc;

    if (!p)
        return -ENOMEM;
    t->priv = p;
    p->d = d;
    if (!container_id(t->path, p->id, sizeof(p->id)))
        return -EINVAL;
    if (!current_log(t->path, p->id))
        t->rotated = true; /* found by the first scan: read what is left, then close */
    else if (t->after || fi->scanned || !fi->first_start)
        /* rotated since we last looked (a burst, or while the agent was down); on the very
         * first scan, the rotated logs are history, under the first-sight rule */
        t->after = lc_file_in_open_missed(fi, t->path, t->after, &t->check_gap);
    if (t->after && t->after->priv && strcmp(((struct dfile *)t->after->priv)->id, p->id) == 0) {
        p->j = ((struct dfile *)t->after->priv)->j;
        p->j->refs++;
    } else {
        p->j = lc_split_join_new((size_t)d->c->max_line_bytes);
    }
    if (!p->j)
        return -ENOMEM;
    rc = d->daemon_up ? lc_docker_meta_get(d->meta, p->id, on_meta, t, &e) : -ENOTCONN;
    if (rc == LC_DOCKER_META_PENDING)
        return LC_TAIL_WAIT;
    if (rc < 0 && (meta_from_disk(d, p->id) != 0 || !(e = lc_docker_meta_peek(d->meta, p->id))))
        return -ENOENT;
    return attach(t, p, e);
}

static bool pending(const struct dfile *p)
{
    return lc_split_join_pending(p->j);
}

static bool df_line(struct lc_tail *t, const char *line, size_t len, int64_t now)
{
    struct dfile *p = t->priv;
    struct lc_docker_in *d = p->d;
    struct lc_docker_line dl;
    int rc;

    rc = lc_docker_json_decode(line, len, decode_buf(t), RAW_LINE_MAX, &dl);
    if (rc == -EINVAL) {
        lc_counter_inc(d->m_skip[LC_DOCKER_SKIP_MALFORMED]);
        return !pending(p);
    }
    if (t->skip_old) {
        if (dl.ts_ns < now - d->c->max_age_ms * LC_NS_PER_MSEC) {
            lc_counter_inc(d->m_skip[LC_DOCKER_SKIP_TOO_OLD]);
            return !pending(p);
        }
        t->skip_old = false;
    }
    if (p->since_ns) {
        if (dl.ts_ns < p->since_ns || (dl.ts_ns == p->since_ns && p->since_seq > 0)) {
            if (dl.ts_ns == p->since_ns)
                p->since_seq--;
            return !pending(p);
        }
        p->since_ns = 0;
    }
    return lc_split_join_feed(p->j, t, p->labels, &dl, now);
}

/* The tailer goes back to a position with nothing half joined: forget what is. */
static void df_rewind(struct lc_tail *t)
{
    struct dfile *p = t->priv;

    if (p)
        lc_split_join_rewind(p->j);
}

/*
 * json-file lines are in time order: bisect to a line shortly before the first
 * one not older than the cutoff (parse/docker_seek.h; df_line skips the few
 * old ones left), then count the lines skipped (newlines only, no decoding),
 * so a history of millions of lines costs a few reads and one sequential scan.
 */
static void df_seek_time(struct lc_tail *t, int64_t cutoff, int64_t size)
{
    int64_t lo = lc_docker_seek_time(t->fd, t->offset, size, cutoff, decode_buf(t), SEEK_WINDOW);
    int64_t skipped = 0;

    for (int64_t off = t->offset; off < lo;) {
        char *buf = decode_buf(t);
        size_t want = (size_t)(lo - off) < RAW_LINE_MAX ? (size_t)(lo - off) : RAW_LINE_MAX;
        ssize_t n = pread(t->fd, buf, want, off);
        if (n <= 0)
            break;
        for (char *q = buf; (q = memchr(q, '\n', (size_t)(buf + n - q))) != NULL; q++)
            skipped++;
        off += n;
    }
    if (lo > t->offset) {
        struct lc_docker_in *d = t->fi->owner;
        lc_counter_add(d->m_skip[LC_DOCKER_SKIP_TOO_OLD], (uint64_t)skipped);
        lc_logf(LC_LOG_INFO, d->in->conf->name, NULL,
                "%s: skipped %lld lines older than max_age (%lld bytes)", t->path,
                (long long)skipped, (long long)(lo - t->offset));
        t->offset = lo;
    }
}

/*
 * The container's current log, read to its end: a split line pending for
 * FRAGMENT_WAIT_NS is the end of its output (it exited without a newline), so
 * it is sent, and the position may move past it (else a restart would repeat
 * every line of the other stream written after it).
 */
static void df_idle(struct lc_tail *t)
{
    struct dfile *p = t->priv;

    if (p)
        lc_split_join_idle(p->j, t, p->labels, FRAGMENT_WAIT_NS);
}

static int64_t df_line_time(struct lc_tail *t, int64_t off)
{
    struct stat st;
    off_t start;
    int64_t ts;

    if (fstat(t->fd, &st) != 0 ||
        !lc_docker_seek_time_at(t->fd, off, st.st_size, decode_buf(t), SEEK_WINDOW, &start, &ts))
        return -1;
    return ts;
}

static void df_close(struct lc_tail *t)
{
    struct dfile *p = t->priv;

    if (!p)
        return;
    lc_docker_meta_cancel(p->d->meta, t);
    lc_split_join_unref(p->j);
    free(p);
    t->priv = NULL;
}

static const struct lc_tail_ops docker_file_ops = {
    .open = df_open,
    .line = df_line,
    .close = df_close,
    .seek_time = df_seek_time,
    .line_time = df_line_time,
    .idle = df_idle,
    .rewind = df_rewind,
};

/* The mode's entry points ---------------------------------------------------- */

static bool file_readable(const char *driver, const char **remedy)
{
    if (strcmp(driver, "json-file") == 0)
        return true;
    *remedy = strcmp(driver, "none") == 0
                  ? "give the container a logging driver (json-file, or local with mode: api)"
                  : "use mode: api (the daemon reads it back), or the json-file driver";
    return false;
}

static int file_init(struct lc_docker_in *d)
{
    static char gz[] = "*.gz";
    static char *compressed[] = {gz}; /* compress=true: the rotated logs are not text */
    const struct lc_docker_conf *c = d->c;
    struct dfmode *m = calloc(1, sizeof(*m));
    struct lc_file_conf *f;
    size_t len = strlen(c->root) + 64;
    char **v;

    if (!m)
        return -ENOMEM;
    d->mode = m;
    f = &m->fconf;
    /* one block, freed as m->glob: the array of the two patterns, then the patterns */
    v = malloc(2 * sizeof(char *) + 2 * len);
    if (!v)
        return -ENOMEM;
    m->glob = (char *)v;
    v[0] = (char *)(v + 2);
    v[1] = v[0] + len;
    snprintf(v[0], len, "%s/containers/*/*-json.log", c->root);
    snprintf(v[1], len, "%s/containers/*/*-json.log.*", c->root); /* first scan only */
    f->paths.v = v;
    f->paths.n = 2;
    f->start_only_paths = 1; /* the rotated logs: the first scan's */
    f->exclude.v = compressed;
    f->exclude.n = 1;
    _Static_assert((int)LC_DOCKER_START_BEGINNING == (int)LC_START_BEGINNING &&
                       (int)LC_DOCKER_START_END == (int)LC_START_END,
                   "start_at passes through");
    f->start_at = c->start_at;
    f->max_age_ms = c->max_age_ms;
    f->max_line_bytes = RAW_LINE_MAX;
    f->read_bytes = c->read_bytes;
    f->rescan_ms = c->rescan_ms;
    f->poll_ms = c->poll_ms;
    f->flush_ms = 3600000; /* a torn json-file line waits for its end */
    f->rotate_wait_ms = c->rotate_wait_ms;
    f->max_rotated = c->max_rotated;
    /* the current log and the rotated ones being finished */
    f->max_files = c->max_containers * (1 + c->max_rotated);
    f->max_unacked = c->max_unacked;
    m->decode_buf = malloc(RAW_LINE_MAX);
    if (!m->decode_buf)
        return -ENOMEM;
    int rc = lc_file_in_init(d->in, f, &docker_file_ops, d, &m->files);
    if (rc == 0) {
        static const char *const l_in[] = {"input", NULL};
        struct lc_metric_family *fam = lc_metric_family(
            LC_COUNTER, "log_capturer_docker_lost_generations_total",
            "Breaks in a container's chain of json-file generations: rotated logs (or what was "
            "left of one) deleted before they were read.",
            l_in);
        m->files->m_gaps = lc_metric_series(fam, d->in->conf->name);
    }
    return rc;
}

/*
 * The first scan also opens the rotated logs (<id>-json.log.N) that have a
 * checkpoint or, at the very first start, as history under start_at. After
 * a restart, the log we were reading may have been rotated meanwhile: the
 * file input finds it by identity and reads it to its end first; the ones
 * rotated after it are opened in order by lc_file_in_open_missed, from the
 * current log. Later scans look for the current logs only.
 */
static int file_start(struct lc_docker_in *d)
{
    return lc_file_in_start(files(d));
}

/*
 * File mode tails json-file logs only: the containers started with another
 * driver are found here (from the list at connection and `start` events) and
 * said once each.
 */
static void file_driver_meta(void *arg, int err, const struct lc_docker_meta_entry *e)
{
    struct lc_docker_in *d = arg;
    const char *remedy = NULL;

    if (err == 0 && !lc_docker_driver_readable(LC_DOCKER_MODE_FILE, e->log_driver, &remedy) &&
        lc_docker_selected(d->c, e))
        lc_docker_set_unreadable(d, e->id, e->name, e->log_driver, remedy, NULL);
}

static void file_driver_check(struct lc_docker_in *d, const char *id)
{
    const struct lc_docker_meta_entry *e = NULL;

    if (lc_docker_is_unreadable(d, id))
        return;
    if (lc_docker_meta_get(d->meta, id, file_driver_meta, d, &e) == 0)
        file_driver_meta(d, 0, e);
}

static void file_driver_list(void *arg, const struct lc_docker_client_result *r,
                             const struct lc_docker_summary *s, size_t n)
{
    struct lc_docker_in *d = arg;

    if (r->err)
        return; /* the next connection lists again */
    for (size_t i = 0; i < n; i++)
        file_driver_check(d, s[i].id);
}

static void file_connected(struct lc_docker_in *d)
{
    lc_file_in_rescan(files(d));
    lc_docker_client_list(d->client, file_driver_list, d);
}

/* A start rescans for its log, a destroy closes its files. */
static void file_event(struct lc_docker_in *d, const struct lc_docker_event *ev)
{
    char dir[4096];

    if (strcmp(ev->action, "start") == 0) {
        file_driver_check(d, ev->id);
        lc_file_in_rescan(files(d));
    } else if (strcmp(ev->action, "destroy") == 0) {
        /* its files are gone: read what is left through the held descriptors, then close */
        snprintf(dir, sizeof(dir), "%s/containers/%s", d->c->root, ev->id);
        lc_file_in_close_under(files(d), dir);
    }
}

static void file_pause(struct lc_docker_in *d)
{
    lc_file_in_pause(files(d));
}

static void file_resume(struct lc_docker_in *d)
{
    lc_file_in_resume(files(d));
}

static bool file_caught_up(struct lc_docker_in *d)
{
    return lc_file_in_caught_up(files(d));
}

static void files_stopped(void *arg)
{
    lc_docker_closed(arg);
}

static void file_stop(struct lc_docker_in *d)
{
    lc_docker_closing(d);
    lc_file_in_stop(files(d), files_stopped, d);
}

static void file_free(struct lc_docker_in *d)
{
    struct dfmode *m = d->mode;

    if (!m)
        return;
    lc_file_in_free(m->files);
    free(m->decode_buf);
    free(m->glob);
    free(m);
    d->mode = NULL;
}

const struct lc_docker_mode_ops lc_docker_mode_file = {
    .name = "file",
    .readable = file_readable,
    .init = file_init,
    .start = file_start,
    .connected = file_connected,
    .event = file_event,
    .pause = file_pause,
    .resume = file_resume,
    .caught_up = file_caught_up,
    .stop = file_stop,
    .free = file_free,
};
