/* SPDX-License-Identifier: MIT */
/* docker_api.c: the docker input's api mode: one followed Engine API log stream per container. */
#include "input/docker_api.h"
#include "input/docker.h"
#include "input/docker_replay.h"
#include "input/docker_tail.h"

#include "core/labels.h"
#include "core/log.h"
#include "core/losses.h"
#include "core/rand.h"
#include "core/source.h"
#include "parse/docker_json.h"
#include "parse/docker_mux.h"
#include "parse/timestamp.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Per running, selected container one struct dcont: its source (checkpoint
 * key "docker:<input>:<id>", labels stdout / extra labels stderr), one
 * followed GET /containers/{id}/logs stream and its decoder. Discovery comes
 * from docker.c: a (re)connection calls us with ev == NULL (we list the running
 * containers), then each container event.
 *
 * Positions. Docker's `since` is inclusive and has no cursor, so a position
 * is the timestamp of the newest record emitted plus how many records were
 * emitted at exactly that timestamp; a stream opened at that position skips
 * that many records at that timestamp. A stream that breaks is reopened from
 * the position *emitted* (what is in the pipeline is not read again), after a
 * restart from the position *committed* (what was acked).
 *
 * Lifetimes. A followed stream that ends normally (the container stopped) is
 * read once more unfollowed from the position emitted (the final pass: the
 * daemon can end a follow before the file's last lines), then releases its
 * connection and decoder; the container's entry keeps its source (so a
 * restart resumes exactly) until the container is destroyed (the checkpoint
 * row is deleted then) or until too many stopped entries are kept (the row
 * stays). A `die` is followed by the stream's own end; if the stream stays
 * quiet DIE_GRACE_MS after a die, we close it ourselves, so no stream
 * outlives its container. Open streams == entries in DC_STREAM ==
 * log_capturer_docker_streams.
 *
 * First sight (no checkpoint of ours): mode file's rows of this container
 * ("file:<input>:*" whose path holds "/<id>/") if any, so switching modes
 * neither loses nor repeats more than a batch; else start_at: beginning reads
 * from now - max_age (everything if 0); end reads from now for the containers
 * running at start-up, and from one second before their start event (or the
 * last moment every start was known: `horizon`) for containers that start
 * later, whose first lines would otherwise be lost.
 *
 * Short-lived containers (issue 15). A container is inspected at its
 * `create` event (parked, DC_STOPPED, with its source) so that its stream
 * opens the moment it starts, without an inspect in between; one removed
 * before its log could be read (404, or the daemon's "no such file" error
 * frame, before any line) is counted as missed and logged. After start-up's
 * list, containers with a checkpoint of ours that are not running are read
 * from it to their end (the daemon does not follow a stopped container); the
 * removed ones are counted as missed.
 *
 * Removed while behind (issue 13). A container stopped and removed while its
 * stream is behind (paused) would lose what the daemon's follower had not
 * sent: it ends with the file, and a removed container cannot be read again.
 * So at `die` the time of its json-file log's last message is noted and,
 * while the stream is behind it, the file is held open (note_end(); at most
 * max_held_logs at once, released when the stream reaches that message). Once
 * the container is gone and its stream over, the rest is read from the held
 * descriptor (the daemon unlinked the file), records the stream emitted
 * skipped, a few 64 KiB reads per tick while the pipeline takes lines, one
 * container at a time (recover(), DC_TAIL, input/docker_tail.h: a reader's
 * buffers are allocated for its turn); then the entry and its row go.
 * Still only counted as missed and logged with the time range (check_tail(),
 * lost_range()): lines rotated into files the destroy deleted (only the
 * current file is held), and the tail of a container whose log could not be
 * held (max_held_logs reached: skipped_total{reason="max_held_logs"}), and
 * what a container printed when its log went before its stream read it and
 * before its `die` was seen (log_gone: the daemon said "no such file", or
 * the file was missing or created again after the death; the daemon answers
 * a stream on a missing log with nothing). Not known at all when the log is
 * not visible from here (not json-file, or another mount namespace).
 *
 * Replays (issue 18). The daemon's follow re-sends entries at json-file
 * rotations; per container and stream a record older than the newest emitted,
 * or equal to it with the same content, is skipped and counted
 * (input/docker_replay.h). A reopened stream starts at the newest record of
 * the stream that is behind, at most REORDER_NS before the position
 * (resync_since(): Docker can write a stderr line after a stdout line stamped
 * later); what it sends again up to the position is skipped quietly. A
 * stream quiet for stream_stall_timeout while the container's log file
 * changed is reopened from the position (check_stall).
 *
 * Refusals (issue 19). A container whose driver is "none" is never requested;
 * a 501 ("does not support reading") or other 4xx answer is permanent: said
 * once, not retried. Connection errors and 5xx are retried with backoff.
 *
 * Acks. After each chunk the open mark is sealed at the emitted position
 * when a mark slot is left; otherwise the mark stays open and takes the next
 * chunks too, so the source stays writable (a stream is paused only by the
 * pipeline, or by a rename, see rename_labels). The tick (TICK_MS) seals
 * marks left open by a quiet stream and reopens broken streams when due.
 *
 * On the event loop, like file mode's reads (input/file_tail.c): the reads
 * of a log file the daemon has just written (page cache): at `die` one open,
 * one pread of at most 64 KiB and a stat per rotated file (at most GEN_MAX,
 * bounded by the container's max-file); a recovery's TAIL_READS preads of
 * 64 KiB per tick. Nothing here syncs, scans a directory or waits on a lock.
 */

#define TICK_MS          100
#define DIE_GRACE_MS     2000
#define LIST_RETRY_MS    1000
#define FIRST_MARGIN_NS  LC_NS_PER_SEC /* a container's first lines may precede its start event */
#define RECONNECT_JITTER 2
#define STALL_BASE_MS    1000  /* a stream quiet this long: note its log file's size */
#define PAUSE_REOPEN_MS  1000  /* a stream paused this long, its file rotated: reopened */
#define JUMP_MIN_NS      50000 /* a jump between records at least this long, and ... */
#define JUMP_FACTOR      8     /* ... this many times the usual: was a generation skipped? */
#define MTIME_SLACK_NS   (10 * LC_NS_PER_MSEC) /* file times are the kernel's coarse clock */
#define GEN_MAX          32                    /* rotated generations looked at (max-file) */
#define TAIL_READS       4                     /* a recovery's reads per tick (64 KiB each) */
#define REORDER_NS       LC_NS_PER_SEC /* stdout and stderr records out of file order, at most */
/* The daemon could not open a container's log file (removed, or a rotation's rename). */
#define NO_FILE "no such file or directory"

enum dc_state {
    DC_INSPECT, /* waiting for metadata */
    DC_STREAM,  /* a log stream is open */
    DC_RETRY,   /* the stream broke; reopened at retry_ms */
    DC_STOPPED, /* the container stopped: no stream, the source is kept */
    DC_TAIL,    /* removed while behind: the rest is read from its held log (recover()) */
};

struct dapi;

struct dcont {
    struct dapi *a;
    struct dcont *prev, *next;
    char id[LC_DOCKER_CLIENT_ID_MAX + 1];
    enum dc_state state;
    struct lc_source *src;
    struct lc_docker_client_stream *stream;
    struct lc_docker_mux *mux;
    bool tty;
    int64_t hint_ns;   /* first sight after start-up: read from here (start_at end) */
    struct lc_pos pos; /* emitted: newest record's ts and how many at exactly that ts */
    int64_t skip_ts;   /* the open stream skips the first skip_left records at skip_ts */
    uint32_t skip_left;
    int64_t backoff_ms;
    int64_t retry_ms;
    int64_t data_ms;                     /* last data (or stream start), monotonic */
    int64_t die_ms;                      /* a die event arrived while streaming; 0: none */
    bool destroyed;                      /* forget the checkpoint once the stream is done */
    bool restart;                        /* started again while the old stream was still open */
    bool renamed;                        /* renamed while its metadata was on its way */
    struct lc_labels *renamed_labels[2]; /* owned: to replace the source's once it drained */
    bool got_data;
    bool ever_line;   /* a line of this container was emitted */
    bool sys_err;     /* the open stream carried a daemon error (e.g. its file was removed) */
    bool await_start; /* met at `create`: the stream opens at `start` */
    bool streamed;    /* a stream was opened for it */
    bool drain;       /* not running at start-up, but has our checkpoint: read what is left */
    bool final_pass; /* the open stream is the last, unfollowed read after the followed one ended */
    bool exact;      /* pos is a record read (ours, or our checkpoint): it must come back */
    bool gap_check;  /* the open stream's first record is compared with pos (gap()) */
    struct lc_docker_replay replay[2]; /* stdout, stderr: what was emitted (issue 18) */
    char *log_path;                    /* the engine's log file (inspect's LogPath), or NULL */
    int64_t end_ts;    /* its log's last record at its last `die` (note_end()); 0: unknown */
    bool tail_checked; /* a loss was counted, or its tail was checked, since the last open */
    bool died;         /* a `die` arrived since its last `start` (die_ms is per stream) */
    int64_t die_ns;    /* the daemon's time of that `die` (0: unknown) */
    bool log_gone;     /* its log file was seen missing before its end was known (check_tail) */
    int tail_fd;       /* its log, held from `die` while the stream is behind; -1: none */
    bool tail_unheld;  /* behind at `die`, but max_held_logs logs were held already */
    struct lc_docker_tail *tail; /* DC_TAIL at its turn: the held log's reader (owns the fd) */
    uint64_t tail_lines;         /* lines the recovery emitted */
    int64_t stall_base_ms;       /* when its size was noted in this quiet spell; 0: not */
    uint64_t stall_ino;
    int64_t stall_size;
    int64_t pause_ms;     /* when its stream was first seen paused; 0: not paused */
    uint64_t pause_ino;   /* its log file's inode then (0: not visible from here) */
    bool line_since_open; /* the open stream emitted a line */
    bool from_start;      /* pos is before the container's first line (start_pos) */
    bool skipped;         /* the stream skipped a generation: end it, reopen at pos */
    int64_t skip_from;    /* where the last such reopen started (its guard) */
    int64_t resync_ts;    /* the open stream began before pos (resync_since()): up to here, again */
    int64_t jump_avg;     /* the usual time between its records (ns, moving average) */
    uint64_t gen_ino;     /* the log file's inode when the rotated files were read; 0: not */
    unsigned ndisk, nseen;
    int64_t disk_end[GEN_MAX];  /* mtimes (ns) of the rotated files there now: rotation times */
    int64_t seen_end[GEN_MAX];  /* every rotation time seen (newest GEN_MAX), newest first */
    uint64_t seen_ino[GEN_MAX]; /* the inode of the file each was seen on (same order) */
};

enum {
    END_ENDED,
    END_ERROR,
    END_NOT_FOUND,
    END_DIED,
    END_DESTROYED,
    END_SHUTDOWN,
    END_STALLED,
    END_ROTATED,
    END_SKIPPED,
    END_N
};
static const char *const end_names[END_N + 1] = {"ended",   "error",     "not_found",
                                                 "died",    "destroyed", "shutdown",
                                                 "stalled", "rotated",   "skipped"};
enum { START_NEW, START_RESUME, START_RESTART, START_FINAL, START_N };
static const char *const start_names[START_N + 1] = {"new", "resume", "restart", "final"};

struct dapi {
    struct lc_docker_in *d;
    struct dcont *head;
    size_t ncont;          /* entries */
    size_t nfollow;        /* entries not DC_STOPPED */
    size_t nstreams;       /* entries in DC_STREAM */
    size_t nheld;          /* logs held: tail_fd, or tail (at most max_held_logs) */
    struct dcont *reading; /* the one recovery whose reader runs (start_reader()) */
    uv_timer_t tick;
    bool tick_init;
    bool listing;
    bool listed; /* the first list after start-up answered */
    int64_t list_retry_ms;
    int64_t horizon_ns; /* until then every container start was seen (events or a list) */
    struct lc_metric_series *m_streams;
    struct lc_metric_series *m_starts[START_N];
    struct lc_metric_series *m_ends[END_N];
    struct lc_metric_series *m_lines[2];
    struct lc_metric_series *m_bytes[2];
    struct lc_metric_series *m_cut;
    struct lc_metric_series *m_too_many;
    struct lc_metric_series *m_replayed;
    struct lc_metric_series *m_missed;
    struct lc_metric_series *m_gaps;
    struct lc_metric_series *m_gap_ms;
    struct lc_metric_series *m_recovered;
    struct lc_metric_series *m_held;
};

static int64_t mono_ms(void)
{
    return lc_mono_ns() / LC_NS_PER_MSEC;
}

static const char *iname(const struct dapi *a)
{
    return a->d->in->conf->name;
}

static bool once_mode(const struct dapi *a)
{
    return a->d->in->agent->once;
}

static struct dcont *find(struct dapi *a, const char *id)
{
    for (struct dcont *c = a->head; c; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

static void set_state(struct dcont *c, enum dc_state st)
{
    struct dapi *a = c->a;

    if ((c->state == DC_STOPPED) != (st == DC_STOPPED))
        a->nfollow += st == DC_STOPPED ? (size_t)-1 : 1;
    if ((c->state == DC_STREAM) != (st == DC_STREAM)) {
        a->nstreams += st == DC_STREAM ? 1 : (size_t)-1;
        lc_gauge_set(a->m_streams, (int64_t)a->nstreams);
    }
    c->state = st;
}

/*
 * Seals the open mark at the emitted position, if another mark slot is left:
 * so there is always an open mark or a free slot, and a record can always be
 * emitted (lc_source_writable) without pausing in the middle of a chunk.
 */
static void seal(struct dcont *c)
{
    if (c->src)
        lc_source_try_seal(c->src, &c->pos);
}

/* Releases the source (its row stays, or goes when forget). */
static void drop_source(struct dcont *c, bool forget)
{
    if (!c->src)
        return;
    lc_source_seal(c->src, &c->pos); /* no record follows: seal even the last slot */
    lc_source_set_forget(c->src, forget);
    lc_source_release(c->src);
    c->src = NULL;
}

/* One log more (or less) held for a removed container's unread tail: counted and shown. */
static void held_add(struct dapi *a, bool more)
{
    a->nheld = more ? a->nheld + 1 : a->nheld - 1;
    lc_gauge_set(a->m_held, (int64_t)a->nheld);
}

/* Lets go of the log held since `die` (the stream reached its end, or a new `die` looks again). */
static void release_log(struct dcont *c)
{
    if (c->tail_fd < 0)
        return;
    close(c->tail_fd);
    c->tail_fd = -1;
    held_add(c->a, false);
}

/* Closes the held log, or the reader it became. */
static void drop_held(struct dcont *c)
{
    if (c->tail) {
        if (c->a->reading == c)
            c->a->reading = NULL;
        lc_docker_tail_free(c->tail);
        c->tail = NULL;
        held_add(c->a, false);
    }
    release_log(c);
}

/* Closes the stream from our side (no callback follows). */
static void close_stream(struct dcont *c, int reason)
{
    if (!c->stream)
        return;
    lc_docker_client_stream_close(c->stream);
    c->stream = NULL;
    lc_counter_inc(c->a->m_ends[reason]);
}

/* Deletes the container's checkpoint row (it was destroyed). */
static void forget_row(struct lc_docker_in *d, const char *id)
{
    char key[LC_DOCKER_CLIENT_ID_MAX + 256];

    lc_docker_key(d, id, key, sizeof(key));
    if (d->in->agent->ckpt)
        lc_ckpt_del(d->in->agent->ckpt, key);
}

/*
 * The container was removed before its log could be read (issue 15): what it
 * printed is lost. Counted and logged. When some of its lines were read, only
 * what it printed after the last of them is lost, if it printed more: the
 * daemon's follower may have sent everything before it failed to reopen the
 * removed file, and nothing tells the two apart, so the count may hold false
 * alarms, never a silent loss.
 */
static void missed(struct dcont *c, const char *why)
{
    struct dapi *a = c->a;

    c->tail_checked = true; /* counted once: check_tail() does not count it again */
    lc_counter_inc(a->m_missed);
    lc_loss(iname(a), "container %.12s: %s; %s", c->id, why,
            c->ever_line ? "what it printed after the last line read, if anything, is lost"
                         : "its lines are lost");
}

/* At most this much of a log's end is read to find its last record. */
#define TAIL_READ_BYTES 65536

/* The start of the line that ends right before buf[end] ('\n' at end - 1). */
static size_t line_start(const char *buf, size_t end)
{
    size_t start = end > 0 ? end - 1 : 0;

    while (start > 0 && buf[start - 1] != '\n')
        start--;
    return start;
}

/*
 * The timestamp of the last message in buf, a json-file log's last got bytes
 * from offset off: its last complete record, or the first of the 16 KiB
 * partial records Docker split it into (the stream's decoder keeps that
 * one's time). 0 when it cannot be told: a record cut at the window's start
 * or one that does not decode (better no count than a false alarm).
 */
static int64_t last_message_ts(const char *buf, size_t got, off_t off)
{
    struct lc_docker_line dl;
    size_t end = got, start;
    int64_t ts = 0;
    int stream = 0;

    while (end > 0 && buf[end - 1] != '\n')
        end--; /* a record still being written (none should be) is not complete */
    if (end == 0)
        return 0;
    start = line_start(buf, end);
    for (bool first = true;; first = false) {
        int rc = lc_docker_json_decode(buf + start, end - start, NULL, 0, &dl);

        if ((start == 0 && off > 0) || (rc != 0 && rc != -E2BIG))
            return 0;
        if (!first && (!dl.partial || dl.stream != stream))
            return ts; /* the record before the message ends another one */
        ts = dl.ts_ns;
        stream = dl.stream;
        if (start == 0)
            return ts; /* the file's first record */
        end = start;
        start = line_start(buf, end);
    }
}

/*
 * Whether the engine's container directories (<root>/containers, two levels
 * above a json-file LogPath) are visible from here: a log missing there was
 * removed, not hidden by another mount namespace.
 */
static bool log_dir_visible(const char *log_path)
{
    char dir[PATH_MAX];
    struct stat st;
    char *slash;

    if (snprintf(dir, sizeof(dir), "%s", log_path) >= (int)sizeof(dir))
        return false;
    for (int up = 0; up < 2; up++) {
        slash = strrchr(dir, '/');
        if (!slash || slash == dir)
            return false;
        *slash = '\0';
    }
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * Whether the log file at fd was created after the container died: empty,
 * its inode changed after die_ns. The daemon removed the container's log
 * (its removal under way) and opened it again to answer a log request (for a
 * stopped container it starts a logger, which creates the file): what the
 * container printed went with the first one. The container's own file, even
 * an empty one, was created at its start and not changed after its death.
 */
static bool log_recreated(int fd, int64_t die_ns)
{
    struct stat st;

    return die_ns > 0 && fstat(fd, &st) == 0 && st.st_size == 0 &&
           (int64_t)st.st_ctim.tv_sec * LC_NS_PER_SEC + st.st_ctim.tv_nsec > die_ns;
}

/*
 * The timestamp of a json-file log's last message, 0 if it cannot be told:
 * one read of at most its last TAIL_READ_BYTES.
 */
static int64_t log_end_ts(int fd)
{
    char *buf;
    struct stat st;
    ssize_t got;
    off_t off;
    int64_t ts;

    buf = fstat(fd, &st) == 0 && st.st_size > 0 ? malloc(TAIL_READ_BYTES) : NULL;
    off = buf && st.st_size > TAIL_READ_BYTES ? st.st_size - TAIL_READ_BYTES : 0;
    got = buf ? pread(fd, buf, (size_t)(st.st_size - off), off) : -1;
    ts = got > 0 ? last_message_ts(buf, (size_t)got, off) : 0;
    free(buf);
    return ts;
}

/*
 * Counts the container as missed (once) and says which of its lines are
 * lost: those after the last one emitted, up to the record at to_ts (`what`
 * names it; the soak's checker reads this message).
 */
static void lost_range(struct dcont *c, int64_t to_ts, const char *what, const char *upto)
{
    char from[LC_TS_RFC3339NANO_MAX] = "its start", to[LC_TS_RFC3339NANO_MAX];

    if (c->tail_checked)
        return;
    if (c->pos.ts_ns > 0)
        lc_ts_format_rfc3339nano(c->pos.ts_ns, from);
    lc_ts_format_rfc3339nano(to_ts, to);
    c->tail_checked = true;
    lc_counter_inc(c->a->m_missed);
    lc_loss(iname(c->a),
            "container %.12s: removed before its log stream reached %s (%s): its lines after %s, "
            "%s that one, are lost",
            c->id, what, to, from, upto);
}

/*
 * The container is gone and its stream is over (or its final pass could not
 * run): the daemon's follower ends when the file is removed, so what it had
 * not sent while the agent was behind (paused at its share of the pending
 * budget, outputs full) is not in the stream. It is read from the log held
 * since `die` (recover()); when no log was held (not visible from here, or
 * max_held_logs held already) or it could not be read to its end, the last
 * record emitted is compared with the file's last record noted at `die`:
 * lines after it are counted (missed) and the time range logged; none when
 * the stream reached it. Known gap: when that record is unknown (the log is
 * not visible from here, or not json-file), nothing is counted.
 */
static void check_tail(struct dcont *c)
{
    if (!c->end_ts && c->log_gone && !c->tail_checked) {
        /*
         * Its log file went (the daemon removing it) before the stream read it
         * and before its last record was known: a stream opened on a missing
         * file answers nothing (200, empty), as for a container that printed
         * nothing, so what it printed after the position is counted as lost.
         * A false alarm only if it printed nothing more.
         */
        missed(c, "its log file was removed before its stream read it to its end");
        return;
    }
    if (!c->end_ts || c->pos.ts_ns >= c->end_ts)
        return;
    lost_range(c, c->end_ts, "the last line of its log", "up to");
}

/*
 * A stream opened at an exact position (a record read before: our checkpoint
 * after a restart, or the last line emitted when a broken stream is reopened)
 * starts with that record, `since` being inclusive, unless the json-file
 * rotation deleted it meanwhile: then what followed it, up to the first record
 * the daemon still has, may be gone too, and the Engine API cannot return it.
 * Counted (gaps and their span) and logged with the time range; at most a
 * false alarm when the rotation fell right after that record.
 */
static void gap(struct dcont *c, int64_t last_ts, int64_t first_ts)
{
    struct dapi *a = c->a;
    char from[LC_TS_RFC3339NANO_MAX] = "its start", to[LC_TS_RFC3339NANO_MAX];

    if (last_ts > 0) /* 0: met from its first line, none read yet */
        lc_ts_format_rfc3339nano(last_ts, from);
    lc_ts_format_rfc3339nano(first_ts, to);
    lc_counter_inc(a->m_gaps);
    lc_counter_add(a->m_gap_ms, (uint64_t)((first_ts - last_ts) / LC_NS_PER_MSEC));
    lc_loss(iname(a),
            "container %.12s: lost in rotation: its log no longer holds the last line read "
            "(%s); lines after it and before %s may be lost (the Engine API cannot return "
            "rotated-away lines; mode file reads rotated logs)",
            c->id, from, to);
}

static void free_cont(struct dcont *c, bool forget, int reason)
{
    struct dapi *a = c->a;

    lc_docker_meta_cancel(a->d->meta, c);
    close_stream(c, reason);
    set_state(c, DC_STOPPED);
    if (forget && !c->src)
        forget_row(a->d, c->id);
    drop_source(c, forget);
    lc_labels_release(c->renamed_labels[0]);
    lc_labels_release(c->renamed_labels[1]);
    lc_docker_mux_free(c->mux);
    drop_held(c);
    free(c->log_path);
    if (c->prev)
        c->prev->next = c->next;
    else
        a->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    a->ncont--;
    free(c);
}

static void free_all(struct dapi *a)
{
    struct dcont *c, *next;

    for (c = a->head; c; c = next) {
        next = c->next;
        free_cont(c, false, END_SHUTDOWN);
    }
}

/* Stopped entries only hold a source; keep at most max_containers of them. */
static void evict_stopped(struct dapi *a)
{
    size_t cap = (size_t)a->d->c->max_containers * 2;
    struct dcont *last = NULL;

    if (a->ncont < cap)
        return;
    for (struct dcont *c = a->head; c; c = c->next)
        if (c->state == DC_STOPPED)
            last = c; /* the list is newest first: the last stopped is the oldest */
    if (last)
        free_cont(last, false, END_SHUTDOWN);
}

/* Decoding and emitting ------------------------------------------------------ */

/* A file's mtime in ns and its inode; 0 when it is not there. */
static int64_t mtime_ns(const char *path, uint64_t *ino)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return 0;
    *ino = (uint64_t)st.st_ino;
    return (int64_t)st.st_mtim.tv_sec * LC_NS_PER_SEC + st.st_mtim.tv_nsec;
}

/* Its log file's inode, 0 when it is not visible from here. */
static uint64_t log_ino(const struct dcont *c)
{
    struct stat st;

    return c->log_path && stat(c->log_path, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/*
 * Adds a rotation time to those seen (kept newest first, the oldest dropped).
 * A file seen again (renamed .1 to .2 keeps its inode and mtime) is one
 * rotation; two files with the same mtime are two: file times are the
 * kernel's coarse clock, and a container logging fast fills a 64 KiB
 * generation within one tick (two rotations merged into one let a skipped
 * generation pass unseen, one run in four of the fast-rotation test).
 */
static void note_rotation(struct dcont *c, int64_t t, uint64_t ino)
{
    unsigned k = 0;

    while (k < c->nseen && c->seen_end[k] > t)
        k++;
    for (unsigned j = k; j < c->nseen && c->seen_end[j] == t; j++)
        if (c->seen_ino[j] == ino)
            return;
    if (k >= GEN_MAX)
        return;
    if (c->nseen < GEN_MAX)
        c->nseen++;
    memmove(&c->seen_end[k + 1], &c->seen_end[k], (c->nseen - 1 - k) * sizeof(c->seen_end[0]));
    memmove(&c->seen_ino[k + 1], &c->seen_ino[k], (c->nseen - 1 - k) * sizeof(c->seen_ino[0]));
    c->seen_end[k] = t;
    c->seen_ino[k] = ino;
}

/*
 * Reads the rotation times of the container's log: the mtimes of its rotated
 * files (<log>.1, .2, ... or .N.gz), newest first, and remembers them (a
 * generation deleted later still counts as one between two records). Read
 * again only when the log file's inode changed (it rotated since): one stat
 * per call, a few more per rotation.
 */
static void read_generations(struct dcont *c)
{
    uint64_t ino = log_ino(c);
    char path[PATH_MAX];

    if (!ino || ino == c->gen_ino)
        return;
    c->gen_ino = ino;
    c->ndisk = 0;
    for (unsigned k = 1, misses = 0; k <= GEN_MAX && misses < 2; k++) {
        uint64_t gino = 0;
        int64_t t;

        snprintf(path, sizeof(path), "%s.%u", c->log_path, k);
        t = mtime_ns(path, &gino);
        if (!t) {
            snprintf(path, sizeof(path), "%s.%u.gz", c->log_path, k);
            t = mtime_ns(path, &gino);
        }
        if (!t) {
            misses++; /* the end, or a name between two renames of a rotation under way */
            continue;
        }
        misses = 0;
        c->disk_end[c->ndisk++] = t;
        note_rotation(c, t, gino);
    }
}

/* Rotation times in (from - slack, to): file times lag the records' stamps by a tick at most. */
static unsigned rotations_between(const int64_t *end, unsigned n, int64_t from, int64_t to)
{
    unsigned r = 0;

    for (unsigned k = 0; k < n; k++)
        if (end[k] > from - MTIME_SLACK_NS && end[k] < to)
            r++;
    return r;
}

/*
 * Did the stream jump from `from` (the last record emitted, or where the
 * stream started) to `to` over a whole rotated generation? The daemon (seen
 * with 20.10) can leave out whole json-file generations without a word: a
 * follower that reaches the end of the file it follows after the log rotated
 * twice or more opens the newest file (the chaos run lost one 1 MiB
 * generation of a container that way). A generation ends at its file's mtime
 * and holds at least one record, so two rotation times between two
 * consecutive records (one, when the stream reads the container from its
 * first line) mean the records of a generation between them were not sent.
 * If that generation's file is still there, the stream is reopened at `from`
 * (SKIP_REOPEN): the daemon reads the rotated files it keeps. If it is gone,
 * or the reopened stream leaves the same span out again with the file gone
 * meanwhile, the span is a gap: counted and logged (gap(), SKIP_COUNTED). The
 * same span left out again while its file is still there means nothing was
 * there (SKIP_NONE).
 * Only logs whose files are visible from here (inspect's LogPath, json-file)
 * can be checked; the check runs on jumps between records several times the
 * usual spacing, a stat each, a few more per rotation.
 */
enum { SKIP_NONE, SKIP_REOPEN, SKIP_COUNTED };

static int generation_skipped(struct dcont *c, int64_t from, int64_t to, unsigned need)
{
    bool there;

    read_generations(c);
    if (rotations_between(c->seen_end, c->nseen, from, to) < need)
        return SKIP_NONE;
    there = rotations_between(c->disk_end, c->ndisk, from, to) >= need;
    if (there && c->skip_from != from) {
        c->skip_from = from;
        return SKIP_REOPEN;
    }
    if (there)
        return SKIP_NONE;
    gap(c, from, to);
    return SKIP_COUNTED;
}

/*
 * Whether ts jumps far past the last record (several times the usual
 * spacing, a moving average into which a jump counts at most at that cap, so
 * a slow stream's spacing is learned in a few records and a skip does not
 * raise it much). A stream's first record is always looked at.
 */
static bool jumped(struct dcont *c, int64_t ts)
{
    int64_t d = ts - c->pos.ts_ns;
    int64_t cap = c->jump_avg ? JUMP_FACTOR * c->jump_avg : JUMP_MIN_NS;

    if (!c->line_since_open || c->pos.ts_ns == 0)
        return true;
    if (d <= 0)
        return false; /* stdout and stderr interleave */
    c->jump_avg += ((d < cap ? d : cap) - c->jump_avg) / 8;
    return d >= JUMP_MIN_NS && d > cap;
}

/*
 * The checkpoint carries the per-stream part in pos.offset, which api mode
 * does not use otherwise: the newest record of the stream that is behind,
 * + for stdout, - for stderr; 0 while one stream emitted nothing. The other
 * stream's newest is the position itself.
 */
static void note_streams(struct dcont *c)
{
    int64_t o = c->replay[0].ts, e = c->replay[1].ts;

    c->pos.offset = !o || !e ? 0 : o <= e ? o : -e;
}

/* A checkpoint's per-stream part (note_streams()) back into c->replay: contents unknown. */
static void load_streams(struct dcont *c, const struct lc_pos *pos)
{
    int behind = pos->offset > 0 ? 0 : 1;

    memset(c->replay, 0, sizeof(c->replay));
    if (!pos->offset || pos->ts_ns <= 0)
        return;
    c->replay[behind].ts = pos->offset > 0 ? pos->offset : -pos->offset;
    c->replay[!behind].ts = pos->ts_ns;
}

/*
 * Emits one line of the container (s: 0 stdout, 1 stderr) at ts and, when
 * that is the line's own time (has_ts), moves the position past it.
 * Returns 0, or the pipeline's error with nothing emitted: the caller stops
 * before this line and reads it again later.
 */
static int emit_line(struct dcont *c, int s, int64_t ts, bool has_ts, const char *line, size_t len,
                     bool truncated)
{
    struct dapi *a = c->a;
    struct lc_input *in = a->d->in;
    int rc;

    rc = lc_pipeline_emit_labels(
        in, c->src, s ? lc_source_extra_labels(c->src) : lc_source_labels(c->src), ts, line, len);
    if (rc)
        return rc == -ENOENT ? -ENOMEM : rc; /* -ENOENT would read as "container gone" */
    if (has_ts) {
        lc_docker_replay_note(&c->replay[s], ts, line, len);
        if (ts > c->pos.ts_ns) {
            c->pos.ts_ns = ts;
            c->pos.ts_seq = 1;
        } else if (ts == c->pos.ts_ns) {
            c->pos.ts_seq++;
        } /* older (stdout and stderr interleave): the newest stays the position */
        note_streams(c);
    }
    c->ever_line = true;
    c->line_since_open = true;
    c->log_gone = false; /* its log is there (a rotation's rename was what the daemon missed) */
    c->exact = c->exact || has_ts;
    if (truncated)
        lc_counter_inc(a->m_cut);
    lc_counter_inc(in->m_lines);
    lc_counter_add(in->m_bytes, len);
    lc_counter_inc(a->m_lines[s]);
    lc_counter_add(a->m_bytes[s], len);
    if (c->tail_fd >= 0 && c->pos.ts_ns >= c->end_ts)
        release_log(c); /* the stream reached its log's end: nothing to recover */
    return 0;
}

static int on_line(void *arg, const struct lc_docker_mux_line *l)
{
    struct dcont *c = arg;
    struct dapi *a = c->a;
    int64_t ts = l->ts_ns;
    int s = l->stream == LC_STREAM_STDERR ? 1 : 0;
    bool checked = false; /* compared with the rotation times already (the gap check) */

    if (l->stream == LC_STREAM_SYSTEMERR) {
        lc_counter_inc(a->d->m_skip[LC_DOCKER_SKIP_MALFORMED]);
        lc_logf(LC_LOG_WARN, iname(a), NULL, "container %.12s: daemon error in log stream: %.*s",
                c->id, (int)(l->len > 512 ? 512 : l->len), l->line);
        c->sys_err = true;
        if (memmem(l->line, l->len, NO_FILE, strlen(NO_FILE)))
            c->log_gone = true; /* "open <LogPath>: no such file ...": check_tail() */
        return 0;
    }
    if (l->has_ts && c->gap_check) {
        c->gap_check = false;
        if (ts > c->skip_ts) {
            int k = c->log_path ? generation_skipped(c, c->skip_ts, ts, 2) : SKIP_NONE;

            if (k == SKIP_REOPEN) {
                c->skipped = true; /* a generation after the line read last is there: again */
                return -ESTALE;
            }
            if (k == SKIP_NONE)
                gap(c, c->skip_ts, ts);
        }
        checked = true;
    }
    if (!l->has_ts) {
        /* no usable prefix: keep the line, at the stream's time; the position stays */
        lc_counter_inc(a->d->m_skip[LC_DOCKER_SKIP_MALFORMED]);
        ts = c->pos.ts_ns > 0 ? c->pos.ts_ns : lc_now_ns();
    } else if (c->skip_left > 0 && ts == c->skip_ts) {
        c->skip_left--; /* emitted before the stream was reopened at this timestamp */
        return 0;
    } else if (lc_docker_replay_seen(&c->replay[s], ts, l->line, l->len)) {
        if (ts <= c->resync_ts)
            return 0; /* asked for again: the stream was reopened before the position */
        /* the daemon sent it again (it does at json-file rotations): skip, count, say so */
        lc_counter_inc(a->m_replayed);
        lc_logf(LC_LOG_WARN, iname(a), NULL,
                "container %.12s: the daemon sent a %s line again (at %lld.%09lld, newest "
                "%lld.%09lld): "
                "skipped",
                c->id, s ? "stderr" : "stdout", (long long)(ts / LC_NS_PER_SEC),
                (long long)(ts % LC_NS_PER_SEC), (long long)(c->replay[s].ts / LC_NS_PER_SEC),
                (long long)(c->replay[s].ts % LC_NS_PER_SEC));
        return 0;
    } else if (!checked && c->log_path && !c->final_pass && jumped(c, ts) &&
               generation_skipped(c, c->pos.ts_ns, ts,
                                  c->from_start && !c->line_since_open ? 1 : 2) == SKIP_REOPEN) {
        /* not emitted: the stream ends (on_end) and is reopened at pos, the last line */
        c->skipped = true;
        return -ESTALE;
    }
    /*
     * Not emitted (no memory, or no mark slot: -ENOBUFS, which seal() keeps
     * from happening; counted and logged by the pipeline): the stream ends
     * here (on_end) and is reopened after a backoff from c->pos, the last line
     * emitted, so this line is read again; nothing past it is sealed.
     */
    return emit_line(c, s, ts, l->has_ts, l->line, l->len, l->truncated);
}

/* Its stream may deliver: mark slot, fair share of the pending budget, no rename waiting. */
static bool can_read(const struct dcont *c)
{
    return lc_source_writable(c->src) && !lc_source_over_share(c->src) && !c->renamed_labels[0];
}

static int on_data(void *arg, const char *data, size_t len)
{
    struct dcont *c = arg;
    int rc;

    if (lc_pipeline_paused(c->a->d->in->pipeline) || !can_read(c))
        return LC_DOCKER_CLIENT_PAUSE; /* the same bytes come again after resume */
    c->data_ms = mono_ms();
    c->stall_base_ms = 0;
    c->got_data = true;
    rc = lc_docker_mux_feed(c->mux, data, len);
    if (rc < 0)
        return rc; /* malformed frame: the stream ends with it and is reopened */
    seal(c);       /* or, with no slot left, the mark stays open and takes the next records too */
    return 0;
}

/* Removed while behind: the rest read from its held log ---------------------- */

/*
 * At `die`: the time of its json-file log's last message (end_ts; 0 when the
 * file is not visible from here or it cannot be told), compared with the
 * last line emitted once the container is gone (check_tail()). The daemon
 * closes the log driver before it emits `die`, so the file is complete then.
 * While the stream is behind that message the file stays open (tail_fd): the
 * daemon unlinks it at destroy, and the descriptor keeps what the stream has
 * not sent (recover()). Released once the stream reaches end_ts (emit_line).
 */
static void note_end(struct dcont *c)
{
    struct dapi *a = c->a;
    int fd;

    if (c->state == DC_TAIL)
        return;     /* gone already: its log is being read */
    release_log(c); /* held at an earlier `die`: looked at again */
    c->tail_unheld = false;
    fd = c->log_path ? open(c->log_path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0 ? errno == ENOENT && c->log_path && log_dir_visible(c->log_path)
               : log_recreated(fd, c->die_ns))
        c->log_gone = true; /* removed before we looked (check_tail()) */
    c->end_ts = fd >= 0 ? log_end_ts(fd) : 0;
    if (fd >= 0 && c->src && c->end_ts > c->pos.ts_ns) {
        if (a->nheld < (size_t)a->d->c->max_held_logs) {
            c->tail_fd = fd;
            held_add(a, true);
            read_generations(c); /* while its rotated files are there (count_rotated_away) */
            return;
        }
        c->tail_unheld = true;
    }
    if (fd >= 0)
        close(fd);
}

/*
 * Whether a message of the held log was emitted already. Older than the
 * position by more than stdout and stderr interleave: yes (a stream reopened
 * there would not send it either). Else per stream, the replay rule (what its
 * stream emitted, input/docker_replay.h); a stream that emitted nothing in
 * this run goes by the position, as a stream opened there does.
 */
static bool tail_seen(const struct dcont *c, int s, int64_t ts, const char *line, size_t len)
{
    if (ts < c->pos.ts_ns - REORDER_NS)
        return true;
    if (c->replay[s].ts && !c->replay[s].n)
        return ts <= c->replay[s].ts; /* from a checkpoint (load_streams()): up to it, emitted */
    if (c->replay[s].ts)
        return lc_docker_replay_seen(&c->replay[s], ts, line, len);
    return ts < c->pos.ts_ns || (ts == c->pos.ts_ns && c->pos.ts_seq > 0);
}

/* The pipeline takes its lines now (as can_read, for a stream, and not paused). */
static bool can_emit(const struct dcont *c)
{
    return !lc_pipeline_paused(c->a->d->in->pipeline) && can_read(c);
}

static int on_tail_msg(void *arg, const struct lc_docker_tail_msg *m)
{
    struct dcont *c = arg;
    int s = m->stream == LC_STREAM_STDERR ? 1 : 0;
    size_t len = m->len;
    int rc;

    if (c->tty && len > 0 && m->line[len - 1] == '\r')
        len--; /* the stream's raw (tty) decoder drops it too: the same line, the same hash */
    if (tail_seen(c, s, m->ts_ns, m->line, len))
        return 0;
    if (!can_emit(c))
        return -EAGAIN; /* backpressure: read again at a later tick */
    rc = emit_line(c, s, m->ts_ns, true, m->line, len, m->truncated);
    if (rc == 0) {
        c->tail_lines++;
        lc_counter_inc(c->a->m_recovered);
    }
    return rc;
}

/*
 * Only the current json-file is held: when the position is before its first
 * record and a generation rotated away after the position (or the position is
 * a record read, so it was in a rotated file), the lines in between were in
 * files the destroy deleted. Counted and logged as check_tail() does; at most
 * a false alarm when the rotation fell right after the position's record.
 */
static void count_rotated_away(struct dcont *c, int64_t first_ts)
{
    if (!first_ts || c->pos.ts_ns >= first_ts)
        return;
    if (!c->exact &&
        !rotations_between(c->seen_end, c->nseen, c->pos.ts_ns, first_ts + MTIME_SLACK_NS))
        return; /* a start time before the container's first line, no rotation: none lost */
    lost_range(c, first_ts, "the first line its log still held", "before");
}

/*
 * The container is gone (destroyed, or its log can no longer be read through
 * the daemon) and its stream is over. When its log was held since `die` and
 * the stream had not reached its end, the rest is read from it, a few chunks
 * per tick (tail_turn()): true, c is DC_TAIL and the caller leaves it alone.
 * False when there is nothing to read (the caller counts what is lost).
 */
static bool recover(struct dcont *c)
{
    struct dapi *a = c->a;

    if (c->tail_fd < 0 || !c->src || c->pos.ts_ns >= c->end_ts) {
        if (c->tail_unheld && c->pos.ts_ns < c->end_ts && c->end_ts)
            lc_counter_inc(a->d->m_skip[LC_DOCKER_SKIP_MAX_HELD]); /* max_held_logs were held */
        c->tail_unheld = false;
        release_log(c);
        return false;
    }
    c->tail_lines = 0;
    set_state(c, DC_TAIL); /* its reader starts at its turn (tail_turn()) */
    lc_docker_mux_free(c->mux);
    c->mux = NULL;
    return true;
}

/*
 * The reader of c's held log, taking the descriptor. One recovery at a time:
 * a reader's buffers are about 2 * max_line_bytes + 320 KiB, and recoveries
 * share the pipeline anyway. False on ENOMEM (the descriptor is closed).
 */
static bool start_reader(struct dcont *c)
{
    struct dapi *a = c->a;

    c->tail = lc_docker_tail_new(c->tail_fd, (size_t)a->d->c->max_line_bytes);
    c->tail_fd = -1; /* the reader owns it (and closed it when it failed) */
    if (!c->tail) {
        held_add(a, false);
        return false;
    }
    a->reading = c;
    count_rotated_away(c, lc_docker_tail_first_ts(c->tail));
    lc_docker_tail_seek(c->tail, c->pos.ts_ns - REORDER_NS); /* tail_seen()'s first */
    return true;
}

/* The recovery is over: said (one line), and what it could not read is counted. */
static void tail_done(struct dcont *c, int rc)
{
    struct dapi *a = c->a;

    if (c->tail)
        lc_counter_add(a->d->m_skip[LC_DOCKER_SKIP_MALFORMED], lc_docker_tail_malformed(c->tail));
    drop_held(c);
    if (rc < 0)
        lc_logf(LC_LOG_WARN, iname(a), NULL, "container %.12s: cannot read the rest of its log: %s",
                c->id, strerror(-rc));
    else
        lc_logf(LC_LOG_INFO, iname(a), NULL,
                "container %.12s: removed while its log stream was behind: %llu lines read from "
                "its log file",
                c->id, (unsigned long long)c->tail_lines);
    check_tail(c);
    if (c->destroyed)
        free_cont(c, true, END_DESTROYED); /* its row goes once those lines are acked */
    else
        set_state(c, DC_STOPPED); /* its destroy event lets it go */
}

/*
 * One tick of a recovery: a few bounded reads while the pipeline takes its
 * lines; backpressure stops it until a later tick. May free c.
 */
static void tail_turn(struct dcont *c)
{
    int rc = 0;

    if (!c->tail && c->a->reading)
        return; /* another container's recovery is running: this one waits its turn */
    if (!c->tail && !start_reader(c)) {
        tail_done(c, -ENOMEM);
        return;
    }

    for (int k = 0; k < TAIL_READS && rc == 0 && can_emit(c); k++)
        rc = lc_docker_tail_read(c->tail, on_tail_msg, c);
    seal(c);
    if (rc != 0)
        tail_done(c, rc);
}

/* Streams -------------------------------------------------------------------- */

static void on_end(void *arg, const struct lc_docker_client_result *r);
static void open_stream(struct dcont *c, int reason);

static void schedule_retry(struct dcont *c)
{
    const struct lc_docker_conf *cf = c->a->d->c;
    int64_t wait = c->backoff_ms ? c->backoff_ms : cf->reconnect_min_ms;

    c->backoff_ms = wait * 2 > cf->reconnect_max_ms ? cf->reconnect_max_ms : wait * 2;
    wait = wait / RECONNECT_JITTER +
           (int64_t)(lc_rand_u64() % (uint64_t)(wait / RECONNECT_JITTER + 1)); /* [wait/2, wait] */
    c->retry_ms = mono_ms() + wait;
    set_state(c, DC_RETRY);
}

/*
 * Where a stream is reopened: before the position when what its two streams
 * emitted is known (c->replay, or the checkpoint's, start_pos()). Docker
 * stamps a line when it reads it from the container and writes it after, so
 * in the file a stderr line can follow a stdout line stamped later than it
 * (and the other way round), by well under REORDER_NS: opened at the
 * position, the newest of both, the daemon's `since` would drop it. Opened
 * at the newest record of the stream that is behind (at most REORDER_NS
 * back; REORDER_NS back when it emitted nothing), what comes again is known
 * per stream and skipped quietly (on_line). 0: at the position.
 */
static int64_t resync_since(const struct dcont *c)
{
    const struct lc_docker_replay *r = &c->replay[c->replay[0].ts < c->replay[1].ts ? 0 : 1];
    int64_t floor = c->pos.ts_ns - REORDER_NS;
    int64_t lo = r->ts;

    if (c->tty || (!c->replay[0].ts && !c->replay[1].ts) || c->pos.ts_ns <= REORDER_NS)
        return 0; /* one stream, or nothing of this container is known per stream */
    if (lo && !r->n)
        lo++; /* from a checkpoint, contents unknown: its own records at lo were emitted */
    lo = lo > floor ? lo : floor;
    return lo < c->pos.ts_ns ? lo : 0;
}

static void open_stream(struct dcont *c, int reason)
{
    struct dapi *a = c->a;
    int64_t back = resync_since(c);
    struct lc_docker_client_logs_opts o = {.since_ns = back ? back : c->pos.ts_ns,
                                           .follow = !once_mode(a) && reason != START_FINAL};
    int rc;

    if (!c->mux) {
        struct lc_docker_mux_opts mo = {.max_line_bytes = (size_t)a->d->c->max_line_bytes,
                                        .tty = c->tty,
                                        .on_line = on_line,
                                        .arg = c};
        c->mux = lc_docker_mux_new(&mo);
        if (!c->mux) {
            schedule_retry(c);
            return;
        }
    } else {
        lc_docker_mux_reset(c->mux);
    }
    c->skip_ts = c->pos.ts_ns;
    c->skip_left = c->pos.ts_seq;
    c->resync_ts = back ? c->pos.ts_ns : 0;
    c->gap_check = c->exact && c->pos.ts_seq > 0;
    c->die_ms = 0;
    c->pause_ms = 0;
    c->restart = false;
    c->final_pass = reason == START_FINAL;
    c->tail_checked = false;
    c->got_data = false;
    c->sys_err = false;
    c->line_since_open = false;
    c->skipped = false;
    rc = lc_docker_client_logs(a->d->client, c->id, &o, on_data, on_end, c, &c->stream);
    if (rc < 0) {
        c->stream = NULL;
        lc_logf(LC_LOG_WARN, iname(a), NULL, "container %.12s: cannot open its log stream: %s",
                c->id, strerror(-rc));
        schedule_retry(c);
        return;
    }
    c->data_ms = mono_ms();
    c->stall_base_ms = 0;
    c->streamed = true;
    set_state(c, DC_STREAM);
    lc_counter_inc(a->m_starts[reason]);
}

/*
 * A followed stream that ended normally is read once more, unfollowed, from
 * the position emitted. The daemon (seen with 20.10) may end a follow when
 * the container stops before it sent the last lines of the file (the tail
 * written in the container's last second or two); an unfollowed read of a
 * stopped container returns everything after `since` and ends. Records
 * already emitted are skipped as for any reopened stream.
 */
static bool needs_final_pass(const struct dcont *c)
{
    return !c->final_pass && !c->destroyed && !once_mode(c->a) && !c->a->d->stopping;
}

/* The stream is over (normally, or not): what it held is emitted or dropped. */
static void stream_done(struct dcont *c, bool normal)
{
    if (normal)
        lc_docker_mux_finish(c->mux); /* a last line without its newline */
    else
        lc_docker_mux_reset(c->mux); /* a half line comes again with the reopened stream */
    seal(c);
}

/* Destroyed, its stream over: the rest is read from its held log, or what is lost counted. */
static void gone(struct dcont *c)
{
    if (recover(c))
        return;
    check_tail(c);
    free_cont(c, true, END_DESTROYED);
}

/* The container stopped: keep the source, drop the decoder. */
static void to_stopped(struct dcont *c)
{
    set_state(c, DC_STOPPED);
    lc_docker_mux_free(c->mux);
    c->mux = NULL;
    c->backoff_ms = 0;
    if (c->destroyed)
        gone(c);
}

/*
 * The daemon refused the stream for good: 501 (the logging driver does not
 * support reading), or another 4xx (e.g. 400, 409 while it is removed).
 * Connection errors, 5xx and malformed data (status 200) are transient.
 */
static bool permanent(const struct lc_docker_client_result *r)
{
    return r->err != 0 && (r->status == 501 || (r->status >= 400 && r->status < 500));
}

/* Not retried: the driver is said once (and remembered), any other refusal logged. */
static void refused(struct dcont *c, const struct lc_docker_client_result *r)
{
    struct dapi *a = c->a;
    const struct lc_docker_meta_entry *e = lc_docker_meta_peek(a->d->meta, c->id);

    if (r->status == 501 || strstr(r->message, "does not support reading"))
        lc_docker_set_unreadable(a->d, c->id, e ? e->name : NULL, e ? e->log_driver : NULL,
                                 "enable dual logging (the daemon's cache) for it, or use the "
                                 "json-file or local driver",
                                 r->message);
    else
        lc_logf(LC_LOG_WARN, iname(a), NULL,
                "container %.12s: the daemon refused its log stream (%ld %s); not retried until "
                "it starts again",
                c->id, r->status, r->message);
}

static void on_end(void *arg, const struct lc_docker_client_result *r)
{
    struct dcont *c = arg;
    struct dapi *a = c->a;
    int reason = r->err == 0 ? END_ENDED : r->err == -ENOENT ? END_NOT_FOUND : END_ERROR;
    bool held;

    c->stream = NULL;
    if (c->skipped && !c->destroyed && !a->d->stopping) {
        lc_counter_inc(a->m_ends[END_SKIPPED]);
        stream_done(c, false);
        lc_logf(LC_LOG_WARN, iname(a), NULL,
                "container %.12s: its log stream left out a rotated generation that is still on "
                "disk (the daemon's follower behind its log by two rotations or more); "
                "reopening it from the last line read",
                c->id);
        open_stream(c, START_RESUME);
        return;
    }
    lc_counter_inc(a->m_ends[reason]);
    stream_done(c, reason != END_ERROR);
    if (reason == END_ERROR && strstr(r->message, NO_FILE))
        c->log_gone = true; /* the daemon could not open its log (being removed): check_tail() */
    held = c->tail_fd >= 0; /* the rest is in its held log: read at destroy (gone()), not missed */
    if (c->final_pass && (reason == END_NOT_FOUND || permanent(r) || c->sys_err || c->destroyed)) {
        /*
         * Removed after its followed stream ended normally: what the followed
         * stream did not send is read from its held log (recover(); its
         * destroy event finds it reading), else counted when the log's last
         * record is known (check_tail(); else a known gap).
         */
        if (!c->destroyed && !recover(c))
            check_tail(c);
        if (c->state != DC_TAIL)
            to_stopped(c); /* destroyed: gone() */
        return;
    }
    if (reason == END_ERROR && permanent(r)) {
        refused(c, r);
        if (!c->ever_line && !lc_docker_is_unreadable(a->d, c->id) && !held)
            missed(c, "its log stream was refused (e.g. being removed) before any line was read");
        if (lc_docker_is_unreadable(a->d, c->id))
            free_cont(c, true, END_SHUTDOWN); /* nothing to resume: no row either */
        else
            to_stopped(c);
        return;
    }
    if (!held && !c->ever_line && (reason == END_NOT_FOUND || c->sys_err))
        missed(c, "removed before its log could be read");
    else if (!held && reason == END_ERROR && c->destroyed && !permanent(r))
        missed(c, "removed while its log stream was broken (the rest of its lines)");
    if (reason == END_ERROR && !c->destroyed) {
        lc_logf(LC_LOG_WARN, iname(a), NULL,
                "container %.12s: log stream broke (%s); reopening from the last line read", c->id,
                r->message);
        if (c->got_data)
            c->backoff_ms = 0;
        schedule_retry(c);
        return;
    }
    if (reason == END_ENDED && c->restart && !c->destroyed) {
        open_stream(c, START_RESTART);
        return;
    }
    if (reason == END_ENDED && c->sys_err && !c->die_ms && needs_final_pass(c)) {
        /*
         * The daemon's follower failed ("Error grabbing logs: ... no such file
         * or directory" when it looked for a file rotation had just renamed),
         * not the container: followed again from the last line read, at once
         * if this stream delivered something, else after a backoff.
         */
        lc_logf(LC_LOG_WARN, iname(a), NULL,
                "container %.12s: its log stream ended on a daemon error while it runs; "
                "reopening it from the last line read",
                c->id);
        if (c->got_data)
            open_stream(c, START_RESUME);
        else
            schedule_retry(c);
        return;
    }
    if (reason == END_ENDED && needs_final_pass(c)) {
        open_stream(c, START_FINAL);
        return;
    }
    to_stopped(c);
}

/* Following a container ------------------------------------------------------ */

struct file_search {
    char needle[LC_DOCKER_CLIENT_ID_MAX + 3];
    struct lc_pos best;
};

static void file_row(const struct lc_ckpt_entry *e, void *arg)
{
    struct file_search *fs = arg;

    if (e->path && strstr(e->path, fs->needle) && e->pos.ts_ns > fs->best.ts_ns) {
        fs->best.ts_ns = e->pos.ts_ns;
        fs->best.ts_seq = e->pos.ts_seq;
    }
}

/*
 * Where a container's stream starts: its checkpoint row (NULL: none), file
 * mode's, or the first-sight rule.
 */
static void start_pos(struct dcont *c, const struct lc_ckpt_entry *row, struct lc_pos *pos,
                      bool *exact)
{
    struct dapi *a = c->a;
    const struct lc_docker_conf *cf = a->d->c;
    struct lc_ckpt *ck = a->d->in->agent->ckpt;
    struct file_search fs = {.best = {0}};
    char prefix[256];
    int64_t now = lc_now_ns();

    memset(pos, 0, sizeof(*pos));
    *exact = false;
    c->from_start = false;
    if (row) {
        *pos = row->pos; /* with its per-stream part (note_streams()) */
        load_streams(c, pos);
        *exact = true;
        return;
    }
    /* Mode file read this container before: go on where it stopped. */
    snprintf(fs.needle, sizeof(fs.needle), "/%s/", c->id);
    snprintf(prefix, sizeof(prefix), "file:%s:", iname(a));
    if (ck && lc_ckpt_each(ck, prefix, file_row, &fs) == 0 && fs.best.ts_ns > 0) {
        *pos = fs.best;
        return;
    }
    if (cf->start_at == LC_DOCKER_START_BEGINNING) {
        pos->ts_ns = cf->max_age_ms ? now - cf->max_age_ms * LC_NS_PER_MSEC : 0;
        c->from_start = pos->ts_ns == 0;
    } else if (c->hint_ns > 0) {
        pos->ts_ns = c->hint_ns - FIRST_MARGIN_NS; /* started after we started: from its start */
        c->from_start = true;
    } else
        pos->ts_ns = now;
}

static void rename_lookup(struct dcont *c);

/*
 * Creates the container's source and decides where its stream starts
 * (start_pos, from the source's checkpoint row): *pos, and c->exact.
 */
static int make_source(struct dcont *c, const struct lc_docker_meta_entry *e, struct lc_pos *pos,
                       struct lc_source **out)
{
    struct dapi *a = c->a;
    struct lc_labels *lo = NULL, *le = NULL;
    struct lc_source *s = NULL;
    struct lc_ckpt_entry row;
    bool found = false;
    char key[LC_DOCKER_CLIENT_ID_MAX + 256];
    int rc;

    lc_docker_key(a->d, c->id, key, sizeof(key));
    rc = lc_docker_labels(a->d, e, "stdout", &lo);
    if (rc == 0)
        rc = lc_docker_labels(a->d, e, "stderr", &le);
    if (rc == 0) {
        s = lc_source_new_row(a->d->in, key, e->name, lo, (uint32_t)a->d->c->max_unacked, &row,
                              &found);
        rc = s ? 0 : -ENOMEM;
    }
    if (rc == 0) {
        start_pos(c, found ? &row : NULL, pos, &c->exact);
        lc_source_set_extra_labels(s, le); /* the source owns it from here */
        le = NULL;
        lc_source_start(s, pos); /* the start position is a position: persist it */
        lc_agent_add_source(a->d->in->agent, s);
        *out = s;
    }
    lc_labels_release(lo);
    lc_labels_release(le);
    return rc;
}

static void attach(struct dcont *c, const struct lc_docker_meta_entry *e)
{
    struct dapi *a = c->a;
    struct lc_pos pos;
    int rc;

    const char *remedy = NULL;

    if (!lc_docker_selected(a->d->c, e) || !lc_docker_relabel_kept(a->d, e)) {
        if (!c->await_start) /* counted once, at its start */
            lc_counter_inc(a->d->m_skip[LC_DOCKER_SKIP_EXCLUDED]);
        free_cont(c, false, END_SHUTDOWN);
        return;
    }
    if (!lc_docker_driver_readable(LC_DOCKER_MODE_API, e->log_driver, &remedy)) {
        lc_docker_set_unreadable(a->d, c->id, e->name, e->log_driver, remedy, NULL);
        free_cont(c, false, END_SHUTDOWN); /* no request for its logs is ever made */
        return;
    }
    c->tty = e->tty;
    free(c->log_path);
    c->log_path = e->log_path && *e->log_path ? strdup(e->log_path) : NULL;
    rc = make_source(c, e, &pos, &c->src);
    if (rc) {
        lc_logf(LC_LOG_ERROR, iname(a), NULL, "container %.12s: %s", c->id, strerror(-rc));
        free_cont(c, false, END_SHUTDOWN);
        return;
    }
    c->pos = pos;
    lc_logf(LC_LOG_INFO, iname(a), NULL, "following container %s (%.12s)%s", e->name, c->id,
            e->tty ? ", tty" : "");
    if (c->await_start) {
        set_state(c, DC_STOPPED); /* created, not started: the stream opens at its start */
        return;
    }
    open_stream(c, START_NEW);
    if (c->renamed) {
        /* the name we got may predate the rename: look again */
        c->renamed = false;
        rename_lookup(c);
    }
}

static void on_meta(void *arg, int err, const struct lc_docker_meta_entry *e)
{
    struct dcont *c = arg;

    if (err) {
        /* gone already (404), or the daemon went away: a relist finds it again */
        if (err != -ENOENT)
            lc_logf(LC_LOG_WARN, iname(c->a), NULL, "container %.12s: no metadata: %s", c->id,
                    strerror(-err));
        else if (c->drain)
            missed(c, "removed while the agent was down (lines after its checkpoint, if any)");
        else if (!c->await_start)
            missed(c, "removed before it could be inspected");
        free_cont(c, c->drain && err == -ENOENT, END_SHUTDOWN); /* gone: so is its row */
        return;
    }
    attach(c, e);
}

static void on_log_path(void *arg, int err, const struct lc_docker_meta_entry *e)
{
    struct dcont *c = arg;

    if (!err && e && e->log_path && *e->log_path && !c->log_path)
        c->log_path = strdup(e->log_path); /* NULL on ENOMEM: the checks that need it skip */
    if (!c->end_ts && c->died && c->state != DC_INSPECT)
        note_end(c); /* it died before its LogPath was known */
}

/*
 * A json-file container met at `create` has no LogPath yet (the daemon sets
 * it at start): inspected again now, in the background, for the checks that look
 * at its log file (generation_skipped, check_stall, resume_stream). Its
 * stream does not wait for it.
 */
static void learn_log_path(struct dcont *c)
{
    const struct lc_docker_meta_entry *e = lc_docker_meta_peek(c->a->d->meta, c->id);

    if (c->log_path || (e && e->log_driver && strcmp(e->log_driver, "json-file") != 0))
        return; /* only json-file's files are looked at */
    e = NULL;
    lc_docker_meta_invalidate(c->a->d->meta, c->id);
    if (lc_docker_meta_get(c->a->d->meta, c->id, on_log_path, c, &e) == 0)
        on_log_path(c, 0, e);
}

/*
 * A running container: follow it unless we do already. hint_ns: see dcont.
 * created: met at its `create` event; it is inspected now and its stream
 * opens at its `start`, with no inspect in between (a short-lived container
 * may be gone a moment after it started).
 */
static void follow(struct dapi *a, const char *id, int64_t hint_ns, bool created)
{
    const struct lc_docker_meta_entry *e = NULL;
    struct dcont *c = find(a, id);
    int rc;

    if ((c && created) || lc_docker_is_unreadable(a->d, id))
        return;
    if (c && c->await_start) {
        c->await_start = false;
        if (c->state == DC_INSPECT)
            return; /* attach opens the stream */
        if (a->nfollow >= (size_t)a->d->c->max_containers) {
            lc_counter_inc(a->m_too_many);
            return;
        }
        open_stream(c, START_NEW);
        if (c->state == DC_STREAM)
            learn_log_path(c);
        return;
    }
    if (c) {
        if (c->state == DC_STREAM) {
            c->restart = c->die_ms != 0 || c->final_pass; /* the old stream is about to end */
        } else if (c->state == DC_RETRY) {
            c->backoff_ms = 0;
            open_stream(c, START_RESUME);
        } else if (c->state == DC_STOPPED) {
            if (a->nfollow >= (size_t)a->d->c->max_containers) {
                lc_counter_inc(a->m_too_many);
                return;
            }
            open_stream(c, START_RESTART);
        } /* DC_TAIL: its container is gone, its held log being read */
        return;
    }
    if (a->nfollow >= (size_t)a->d->c->max_containers) {
        lc_counter_inc(a->m_too_many);
        lc_logf(LC_LOG_WARN, iname(a), NULL,
                "container %.12s not followed: max_containers (%lld) reached", id,
                (long long)a->d->c->max_containers);
        return;
    }
    if (strlen(id) > LC_DOCKER_CLIENT_ID_MAX)
        return;
    evict_stopped(a);
    c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->a = a;
    c->tail_fd = -1;
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->hint_ns = hint_ns;
    c->await_start = created;
    c->state = DC_INSPECT;
    c->next = a->head;
    if (a->head)
        a->head->prev = c;
    a->head = c;
    a->ncont++;
    a->nfollow++;
    rc = lc_docker_meta_get(a->d->meta, id, on_meta, c, &e);
    if (rc == 0)
        attach(c, e);
    else if (rc < 0)
        on_meta(c, rc, NULL);
}

struct drain_rows {
    struct dapi *a;
    size_t prefix_len;
    size_t skipped; /* max_containers reached */
};

static void drain_row(const struct lc_ckpt_entry *e, void *arg)
{
    struct drain_rows *dr = arg;
    const char *id = e->key + dr->prefix_len;
    struct dcont *c;

    if (!lc_docker_client_id_valid(id) || find(dr->a, id))
        return;
    if (dr->a->nfollow >= (size_t)dr->a->d->c->max_containers) {
        dr->skipped++;
        lc_counter_inc(dr->a->m_too_many);
        return;
    }
    follow(dr->a, id, 0, false);
    c = find(dr->a, id);
    if (c)
        c->drain = true;
}

/*
 * After start-up's list: containers with a checkpoint of ours that are not
 * running stopped (or were removed) while the agent was down. Their stream,
 * opened from the checkpoint, delivers what the daemon still has and ends
 * (the daemon does not follow a stopped container); one that is gone is
 * counted as missed and its row deleted.
 */
static void drain_stopped(struct dapi *a)
{
    struct lc_ckpt *ck = a->d->in->agent->ckpt;
    char prefix[256];
    struct drain_rows dr = {.a = a};

    if (!ck)
        return;
    snprintf(prefix, sizeof(prefix), "docker:%s:", iname(a));
    dr.prefix_len = strlen(prefix);
    lc_ckpt_each(ck, prefix, drain_row, &dr);
    if (dr.skipped)
        lc_loss(iname(a),
                "%zu stopped containers with a checkpoint not read to their end: "
                "max_containers (%lld) reached",
                dr.skipped, (long long)a->d->c->max_containers);
}

static void on_list(void *arg, const struct lc_docker_client_result *r,
                    const struct lc_docker_summary *s, size_t n)
{
    struct dapi *a = arg;
    bool initial = !a->listed;
    int64_t hint = initial ? 0 : a->horizon_ns;

    a->listing = false;
    if (r->err) {
        lc_logf(LC_LOG_WARN, iname(a), NULL, "cannot list containers: %s", r->message);
        a->list_retry_ms = mono_ms() + LIST_RETRY_MS;
        return;
    }
    a->horizon_ns = lc_now_ns();
    a->listed = true;
    a->list_retry_ms = 0;
    for (size_t i = 0; i < n; i++)
        follow(a, s[i].id, hint, false);
    if (initial)
        drain_stopped(a);
}

static void list_now(struct dapi *a)
{
    int rc;

    if (a->listing || a->d->stopping)
        return;
    rc = lc_docker_client_list(a->d->client, on_list, a);
    if (rc < 0) {
        a->list_retry_ms = mono_ms() + LIST_RETRY_MS;
        return;
    }
    a->listing = true;
}

/*
 * Rename: the labels change. Records in flight point at the old label sets,
 * which their source keeps alive; so the new sets wait in c->renamed_labels,
 * the stream pauses, and once everything emitted with the old sets was acked
 * (the source drained) the tick swaps them and resumes. Same source, same
 * position, same connection: nothing is read twice.
 */
static void rename_labels(struct dcont *c, const struct lc_docker_meta_entry *e)
{
    struct dapi *a = c->a;
    struct lc_labels *lo = NULL, *le = NULL;

    if (!c->src)
        return;
    if (lc_docker_labels(a->d, e, "stdout", &lo) != 0 ||
        lc_docker_labels(a->d, e, "stderr", &le) != 0) {
        lc_labels_release(lo);
        return; /* the old labels stay */
    }
    lc_labels_release(c->renamed_labels[0]);
    lc_labels_release(c->renamed_labels[1]);
    c->renamed_labels[0] = lo;
    c->renamed_labels[1] = le;
    seal(c);
    if (c->stream)
        lc_docker_client_stream_pause(c->stream);
    lc_logf(LC_LOG_INFO, iname(a), NULL, "container %.12s renamed to %s", c->id, e->name);
}

/* The source drained: no record points at its old labels any more. */
static void apply_rename(struct dcont *c)
{
    lc_source_set_labels(c->src, c->renamed_labels[0]);
    lc_source_set_extra_labels(c->src, c->renamed_labels[1]);
    c->renamed_labels[0] = c->renamed_labels[1] = NULL;
}

static void on_rename_meta(void *arg, int err, const struct lc_docker_meta_entry *e)
{
    struct dcont *c = arg;

    if (err == 0)
        rename_labels(c, e);
}

static void rename_lookup(struct dcont *c)
{
    const struct lc_docker_meta_entry *e = NULL;

    if (lc_docker_meta_get(c->a->d->meta, c->id, on_rename_meta, c, &e) == 0)
        rename_labels(c, e);
}

/* The mode's entry points ---------------------------------------------------- */

/* The daemon reads back every driver but "none" (a remote driver with dual
 * logging disabled is found out by its answer). */
static bool api_readable(const char *driver, const char **remedy)
{
    if (strcmp(driver, "none") == 0) {
        *remedy = "give the container a logging driver that can be read back (json-file, local, "
                  "journald, or a remote driver with dual logging enabled)";
        return false;
    }
    return true;
}

static const char *const stream_names[] = {"stdout", "stderr", NULL};
static const char *const too_many_names[] = {"max_containers", NULL};

/* The mode's series, labelled input=<name> (a row with a second label, one per value). */
static const struct lc_metric_row dapi_series[] = {
    {LC_GAUGE, "log_capturer_docker_streams",
     "Container log streams open (one per followed running container).",
     offsetof(struct dapi, m_streams)},
    {LC_COUNTER, "log_capturer_docker_stream_starts_total",
     "Container log streams opened, by reason (new, resume, restart, final: the "
     "unfollowed read after a followed stream ended).",
     offsetof(struct dapi, m_starts), "reason", start_names},
    {LC_COUNTER, "log_capturer_docker_stream_ends_total",
     "Container log streams closed, by reason.", offsetof(struct dapi, m_ends), "reason",
     end_names},
    {LC_COUNTER, "log_capturer_docker_lines_total",
     "Container lines read, by stream (stdout, stderr).", offsetof(struct dapi, m_lines), "stream",
     stream_names},
    {LC_COUNTER, "log_capturer_docker_bytes_total",
     "Container line bytes read, by stream (stdout, stderr).", offsetof(struct dapi, m_bytes),
     "stream", stream_names},
    {LC_COUNTER, "log_capturer_input_truncated_lines_total", "Lines cut at max_line_bytes.",
     offsetof(struct dapi, m_cut)},
    {LC_COUNTER, "log_capturer_docker_skipped_total",
     "Container lines or containers skipped, by reason.", offsetof(struct dapi, m_too_many),
     "reason", too_many_names},
    {LC_COUNTER, "log_capturer_docker_replayed_lines_skipped_total",
     "Lines a container's log stream sent again (json-file rotation), skipped.",
     offsetof(struct dapi, m_replayed)},
    {LC_COUNTER, "log_capturer_docker_missed_containers_total",
     "Containers removed before their log could be read to its end (lines lost).",
     offsetof(struct dapi, m_missed)},
    {LC_COUNTER, "log_capturer_docker_api_gaps_total",
     "Api mode: a container's log stream reopened (restart, broken stream) after json-file "
     "rotation deleted the last line read: the lines between it and the first line the daemon "
     "still has may be lost.",
     offsetof(struct dapi, m_gaps)},
    {LC_COUNTER, "log_capturer_docker_api_gap_milliseconds_total",
     "Api mode: the time spans of those gaps (last line read to the first line the daemon still "
     "had), summed.",
     offsetof(struct dapi, m_gap_ms)},
    {LC_COUNTER, "log_capturer_docker_api_tail_recovered_lines_total",
     "Api mode: lines of containers removed while their log stream was behind, read from their "
     "json-file log (held open since the container died) after the stream ended.",
     offsetof(struct dapi, m_recovered)},
    {LC_GAUGE, "log_capturer_docker_api_held_logs",
     "Api mode: json-file logs held open since their container died while its stream was "
     "behind (at most max_held_logs), or being read after it was removed.",
     offsetof(struct dapi, m_held)},
};
LC_METRIC_VALUES_FIT(struct dapi, m_starts, start_names);
LC_METRIC_VALUES_FIT(struct dapi, m_ends, end_names);
LC_METRIC_VALUES_FIT(struct dapi, m_lines, stream_names);
LC_METRIC_VALUES_FIT(struct dapi, m_bytes, stream_names);

static int api_init(struct lc_docker_in *d)
{
    struct dapi *a = calloc(1, sizeof(*a));

    if (!a)
        return -ENOMEM;
    a->d = d;
    d->mode = a;
    lc_metric_register_rows(a, dapi_series, LC_METRIC_ROWS(dapi_series), "input",
                            d->in->conf->name);
    lc_gauge_set(a->m_streams, 0);
    return 0;
}

/*
 * Resumes a paused stream. A follow held paused while json-file rotated
 * (backpressure, e.g. a Loki outage) is not resumed: the daemon's follower
 * goes on with the current file and would skip the generations rotated in
 * between, silently. Reopened from the last line emitted instead, the daemon
 * reads every generation it still keeps, and what rotation deleted is
 * counted (gap()). Unknown rotation (LogPath not visible from here): reopened
 * after any pause that long.
 */
static void resume_stream(struct dcont *c, int64_t now)
{
    if (c->pause_ms && now - c->pause_ms >= PAUSE_REOPEN_MS &&
        (!c->pause_ino || log_ino(c) != c->pause_ino)) {
        close_stream(c, END_ROTATED);
        stream_done(c, false);
        open_stream(c, START_RESUME);
        return;
    }
    c->pause_ms = 0;
    lc_docker_client_stream_resume(c->stream); /* may deliver data now */
}

/* Notes when a stream was first seen paused, and its log file then. */
static void note_pause(struct dcont *c, int64_t now)
{
    if (c->pause_ms || !c->stream || !lc_docker_client_stream_paused(c->stream))
        return;
    c->pause_ms = now;
    c->pause_ino = log_ino(c);
}

/*
 * The daemon's follow has hung on rotations before (moby#37646, #39235): a
 * stream that stays quiet for stream_stall_timeout while the container's log
 * file (inspect's LogPath, when the agent can stat it) changed is reopened
 * from the last line emitted, counted (stream_ends_total{reason="stalled"})
 * and logged. The file is looked at once a quiet spell began (STALL_BASE_MS)
 * and then once per timeout, never per line.
 */
static void check_stall(struct dcont *c, int64_t now)
{
    int64_t timeout = c->a->d->c->stall_ms, quiet = now - c->data_ms;
    struct stat st;

    if (timeout <= 0 || !c->log_path || quiet < STALL_BASE_MS ||
        lc_docker_client_stream_paused(c->stream) ||
        (c->stall_base_ms && now - c->stall_base_ms < timeout))
        return;
    if (stat(c->log_path, &st) != 0)
        return; /* not visible from here: nothing to compare */
    if (c->stall_base_ms && quiet >= timeout &&
        ((uint64_t)st.st_ino != c->stall_ino || (int64_t)st.st_size != c->stall_size)) {
        lc_logf(LC_LOG_WARN, iname(c->a), NULL,
                "container %.12s: its log stream sent nothing for %lld ms while its log file "
                "grew; reopening it from the last line read",
                c->id, (long long)quiet);
        close_stream(c, END_STALLED);
        stream_done(c, false);
        open_stream(c, START_RESUME);
        return;
    }
    c->stall_base_ms = now;
    c->stall_ino = (uint64_t)st.st_ino;
    c->stall_size = (int64_t)st.st_size;
}

static void tick_cont(struct dapi *a, struct dcont *c, int64_t now)
{
    bool paused = lc_pipeline_paused(a->d->in->pipeline);

    seal(c); /* a quiet stream's last records become committable */
    if (c->state == DC_TAIL) {
        tail_turn(c);
        return;
    }
    if (c->renamed_labels[0] && c->src && lc_source_drained(c->src))
        apply_rename(c);
    if (c->state == DC_RETRY && now >= c->retry_ms && a->d->daemon_up) {
        /* while the daemon is away, its reconnection (a relist) comes first */
        open_stream(c, START_RESUME);
        return;
    }
    if (c->state != DC_STREAM)
        return;
    if (!c->final_pass)
        read_generations(c); /* rotation times, also of generations deleted before a jump */
    note_pause(c, now);
    if (lc_docker_client_stream_paused(c->stream) && !paused && can_read(c)) {
        resume_stream(c, now);
        if (c->state != DC_STREAM)
            return;
    }
    if (c->die_ms && !lc_docker_client_stream_paused(c->stream) &&
        now - c->die_ms >= DIE_GRACE_MS && now - c->data_ms >= DIE_GRACE_MS) {
        /* the container died and its stream stays open and quiet: close it */
        close_stream(c, END_DIED);
        stream_done(c, true);
        if (c->restart && !c->destroyed)
            open_stream(c, START_RESTART);
        else if (needs_final_pass(c))
            open_stream(c, START_FINAL);
        else
            to_stopped(c);
        return;
    }
    check_stall(c, now);
}

static void on_tick(uv_timer_t *t)
{
    struct dapi *a = t->data;
    int64_t now = mono_ms();
    struct dcont *c, *next;

    if (a->d->stopping)
        return;
    if (a->list_retry_ms && now >= a->list_retry_ms && a->d->daemon_up) {
        a->list_retry_ms = 0;
        list_now(a);
    }
    for (c = a->head; c; c = next) {
        next = c->next;
        tick_cont(a, c, now); /* may free c, never another entry */
    }
}

static int api_start(struct lc_docker_in *d)
{
    struct dapi *a = d->mode;
    int rc = uv_timer_init(d->in->agent->loop, &a->tick);

    if (rc)
        return rc;
    a->tick_init = true;
    a->tick.data = a;
    uv_timer_start(&a->tick, on_tick, TICK_MS, TICK_MS);
    return 0;
}

static void api_pause(struct lc_docker_in *d)
{
    struct dapi *a = d->mode;

    int64_t now = mono_ms();

    for (struct dcont *c = a->head; c; c = c->next)
        if (c->stream) {
            lc_docker_client_stream_pause(c->stream);
            note_pause(c, now);
        }
}

static void api_resume(struct lc_docker_in *d)
{
    struct dapi *a = d->mode;
    struct dcont *c, *next;

    for (c = a->head; c; c = next) {
        next = c->next;
        if (c->stream && can_read(c))
            resume_stream(c, mono_ms());
    }
}

static bool api_caught_up(struct lc_docker_in *d)
{
    struct dapi *a = d->mode;

    /* --once: follow=0 streams end once they delivered what existed */
    return a->listed && a->nfollow == 0;
}

static void on_tick_closed(uv_handle_t *h)
{
    struct dapi *a = h->data;

    lc_docker_closed(a->d);
}

static void api_stop(struct lc_docker_in *d)
{
    struct dapi *a = d->mode;

    if (!a)
        return;
    lc_docker_client_cancel(d->client, a); /* a list under way */
    a->listing = false;
    free_all(a);
    lc_gauge_set(a->m_streams, 0);
    if (a->tick_init) {
        a->tick_init = false;
        lc_docker_closing(d);
        uv_close((uv_handle_t *)&a->tick, on_tick_closed);
    }
}

static void api_free(struct lc_docker_in *d)
{
    struct dapi *a = d->mode;

    if (!a)
        return;
    /* after a failed start nothing ran; after stop the entries are gone */
    free_all(a);
    free(a);
    d->mode = NULL;
}

static void api_event(struct lc_docker_in *d, const struct lc_docker_event *ev)
{
    struct dapi *a = d->mode;
    struct dcont *c;

    if (d->stopping)
        return;
    if (!ev) {
        /* (re)connected: whatever started meanwhile is found by a fresh look */
        if (!once_mode(a) || !a->listed)
            list_now(a);
        return;
    }
    if (ev->time_ns > a->horizon_ns && a->listed)
        a->horizon_ns = ev->time_ns;
    c = find(a, ev->id);
    if (strcmp(ev->action, "start") == 0 || strcmp(ev->action, "create") == 0) {
        if (c && ev->action[0] == 's')
            c->died = false;
        if (!once_mode(a))
            follow(a, ev->id, ev->time_ns > 0 ? ev->time_ns : lc_now_ns(), ev->action[0] == 'c');
    } else if (strcmp(ev->action, "die") == 0) {
        if (c && c->state == DC_STREAM)
            c->die_ms = mono_ms();
        if (c) {
            c->died = true;
            c->die_ns = ev->time_ns;
            note_end(c);
        } /* its log's end, and the log held while the stream is behind */
    } else if (strcmp(ev->action, "destroy") == 0) {
        if (!c)
            forget_row(d, ev->id); /* a stopped container we no longer hold */
        else if (c->state == DC_STREAM) {
            c->destroyed = true; /* its stream delivers what is left, then ends */
            if (!c->die_ms)
                c->die_ms = mono_ms();
        } else {
            c->destroyed = true;
            if (c->state == DC_TAIL || recover(c))
                return; /* its held log is (now) being read: let go after that */
            if (c->state == DC_RETRY || (c->state == DC_INSPECT && !c->await_start))
                missed(c, "removed before its log could be read to its end");
            else
                check_tail(c); /* stopped: its stream may have ended before the last line */
            free_cont(c, true, END_DESTROYED);
        }
    } else if (strcmp(ev->action, "rename") == 0 && c) {
        if (c->state == DC_INSPECT)
            c->renamed = true;
        else
            rename_lookup(c);
    }
}

/* (Re)connected: the event NULL lists the running containers again. */
static void api_connected(struct lc_docker_in *d)
{
    api_event(d, NULL);
}

const struct lc_docker_mode_ops lc_docker_mode_api = {
    .name = "api",
    .readable = api_readable,
    .init = api_init,
    .start = api_start,
    .connected = api_connected,
    .event = api_event,
    .pause = api_pause,
    .resume = api_resume,
    .caught_up = api_caught_up,
    .stop = api_stop,
    .free = api_free,
};
