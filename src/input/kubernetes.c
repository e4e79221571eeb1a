/* SPDX-License-Identifier: MIT */
/* kubernetes.c: the `kubernetes` input: pod logs under /var/log/pods through the file tailer. */
#include "input/kubernetes.h"
#include "input/file.h"
#include "input/split_join.h"

#include "core/labels.h"
#include "core/log.h"
#include "core/relabel.h"
#include "parse/cri.h"

#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * The kubelet has the container runtime write each container's output to
 *   <root>/<namespace>_<pod>_<uid>/<container>/<restart count>.log
 * in the CRI format (parse/cri.h), and rotates it itself
 * (pkg/kubelet/logs/container_log_manager.go): when it is over
 * containerLogMaxSize, the older rotated files are gzipped (<n>.log.<ts>.gz)
 * or deleted beyond containerLogMaxFiles, then <n>.log is renamed to
 * <n>.log.<YYYYMMDD-hhmmss> and the runtime reopens <n>.log. A restarted
 * container writes <n+1>.log next to it; a deleted pod's directory goes.
 *
 * Everything but the decoding is the file input's machinery (file.c): the
 * glob matches the current logs only; a rename is followed by identity (the
 * rotated file, held open, is read to its end before the new one), a file
 * renamed while the agent was down is found by identity in its directory,
 * a deleted one is read to its end and its checkpoint row dropped, and
 * positions are committed only after delivery. The .gz files are never read:
 * the kubelet compresses a rotated file only at the next rotation, by when
 * its descriptor is ours. Labels come from the path alone (no API server).
 */

#define KCFG(f) offsetof(struct lc_k8s_conf, f)
#define FCFG(f) offsetof(struct lc_k8s_filter, f)

/* A CRI line: the runtime's 16 KiB part, a 36-byte header, with room for a larger part size. */
#define RAW_LINE_MIN (256 * 1024)
/* A part held this long with the log read to its end is the container's last (unended) line. */
#define FRAGMENT_WAIT_NS (5 * LC_NS_PER_SEC)

struct lc_k8s_filter {
    struct lc_strlist namespaces;
    struct lc_strlist pods;
    struct lc_strlist containers;
};

struct lc_k8s_conf {
    char *root;
    struct lc_k8s_filter include;
    struct lc_k8s_filter exclude;
    int start_at;
    int64_t max_age_ms;
    int64_t max_line_bytes;
    int64_t read_bytes;
    int64_t rescan_ms;
    int64_t poll_ms;
    int64_t rotate_wait_ms;
    int64_t max_files;
    int64_t max_rotated;
    int64_t max_unacked;
    struct lc_seclist relabel; /* struct lc_relabel_rule items, prepared at load */
};

/* Why a pod log line or file was skipped (kubernetes_skipped_total{reason}). */
enum { SKIP_MALFORMED, SKIP_TOO_OLD, SKIP_PATH, SKIP_EXCLUDED, SKIP_N };

struct lc_k8s_in {
    struct lc_input *in;
    const struct lc_k8s_conf *c;
    struct lc_file_in *files;
    struct lc_file_conf fconf;
    char *glob;
    struct lc_metric_series *m_skip[SKIP_N]; /* by reason (SKIP_*) */
    char
        *node; /* $NODE_NAME, else $HOSTNAME (Promtail's Helm chart sets it to the node), or NULL */
};

/* One open log file. */
struct kfile {
    struct lc_k8s_in *k;
    struct lc_split_join *j;     /* shared with the file this one replaced, if any */
    struct lc_labels *labels[2]; /* borrowed from the source once attached */
};

static const char *const start_choices[] = {"end", "beginning", NULL};

static const struct lc_option filter_options[] = {
    {LC_OPT_STRLIST, "namespaces", NULL, FCFG(namespaces), .help = "Globs on the namespace."},
    {LC_OPT_STRLIST, "pods", NULL, FCFG(pods), .help = "Globs on the pod name."},
    {LC_OPT_STRLIST, "containers", NULL, FCFG(containers), .help = "Globs on the container name."},
    LC_OPT_END,
};

static const struct lc_option k8s_options[] = {
    {LC_OPT_STR, "root", "/var/log/pods", KCFG(root),
     .help = "The kubelet's pod log directory: <namespace>_<pod>_<uid>/<container>/<n>.log."},
    {LC_OPT_SECTION, "include", NULL, KCFG(include), .sub = filter_options,
     .help = "Only containers matching every non-empty list (empty: all)."},
    {LC_OPT_SECTION, "exclude", NULL, KCFG(exclude), .sub = filter_options,
     .help = "Leave out containers matching any entry."},
    LC_RELABEL_OPTION(KCFG(relabel), "container log"),
    {LC_OPT_ENUM, "start_at", "end", KCFG(start_at), .choices = start_choices,
     .help = "Logs that exist at the agent's very first start: from their end, or from their "
             "first line (limited by max_age). Logs that appear later are read from their "
             "first byte."},
    {LC_OPT_DURATION, "max_age", "1h", KCFG(max_age_ms), 0, 0,
     .help = "With start_at: beginning, skip lines older than this (0: keep all)."},
    {LC_OPT_SIZE, "max_line_bytes", "256KiB", KCFG(max_line_bytes), 1024, 16 << 20,
     .help = "Lines joined from the runtime's partial (P) lines are cut at this size (counted)."},
    {LC_OPT_SIZE, "read_bytes", "256KiB", KCFG(read_bytes), 4096, 16 << 20,
     .help = "Size of one read."},
    {LC_OPT_DURATION, "rescan_interval", "1s", KCFG(rescan_ms), 10, 3600000,
     .help = "How often the pod directories are scanned for new logs (new pods, restarts, "
             "rotations)."},
    {LC_OPT_DURATION, "poll_interval", "250ms", KCFG(poll_ms), 10, 60000,
     .help = "How often open logs are checked for growth, rotation and deletion."},
    {LC_OPT_DURATION, "rotate_wait", "2s", KCFG(rotate_wait_ms), 0, 3600000,
     .help = "A rotated or deleted log is closed once read to its end and quiet this long."},
    {LC_OPT_INT, "max_files", "2048", KCFG(max_files), 1, 1000000,
     .help = "Most logs open at once (current and rotated); more are skipped and counted."},
    {LC_OPT_INT, "max_rotated_files", "4", KCFG(max_rotated), 1, 1024,
     .help = "Most rotated logs of one container held open until read; a newer one waits "
             "(counted)."},
    {LC_OPT_INT, "max_unacked_reads", "64", KCFG(max_unacked), 2, 65536,
     .help = "Reads per log waiting for delivery, each committed on its own; when all are in "
             "flight, further reads join the newest (committed with it)."},
    LC_OPT_END,
};

/*
 * The names in a log's path, relative to root: the pod directory
 * "<namespace>_<pod>_<uid>" (namespace and pod names cannot hold '_', DNS
 * names, so the first and last '_' split it), then the container's.
 */
struct kpath {
    char ns[254];
    char pod[254];
    char uid[254];
    char container[254];
};

static bool copy_part(char *dst, size_t cap, const char *s, size_t n)
{
    if (n == 0 || n >= cap)
        return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

static bool parse_path(const struct lc_k8s_in *k, const char *path, struct kpath *kp)
{
    size_t rl = strlen(k->c->root);
    const char *p, *slash, *u1, *u2, *cslash;

    while (rl > 1 && k->c->root[rl - 1] == '/')
        rl--;
    if (strncmp(path, k->c->root, rl) != 0 || path[rl] != '/')
        return false;
    p = path + rl + 1;
    slash = strchr(p, '/');
    if (!slash)
        return false;
    u1 = memchr(p, '_', (size_t)(slash - p));
    u2 = slash;
    while (u2 > p && u2[-1] != '_')
        u2--;
    if (!u1 || u2 <= u1 + 1)
        return false; /* fewer than two '_' */
    cslash = strchr(slash + 1, '/');
    if (!cslash || strchr(cslash + 1, '/'))
        return false;
    return copy_part(kp->ns, sizeof(kp->ns), p, (size_t)(u1 - p)) &&
           copy_part(kp->pod, sizeof(kp->pod), u1 + 1, (size_t)(u2 - 1 - (u1 + 1))) &&
           copy_part(kp->uid, sizeof(kp->uid), u2, (size_t)(slash - u2)) &&
           copy_part(kp->container, sizeof(kp->container), slash + 1,
                     (size_t)(cslash - (slash + 1)));
}

static bool any_glob(const struct lc_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (fnmatch(l->v[i], s, 0) == 0)
            return true;
    return false;
}

static bool selected(const struct lc_k8s_conf *c, const struct kpath *kp)
{
    const struct lc_k8s_filter *in = &c->include, *ex = &c->exclude;

    if ((in->namespaces.n && !any_glob(&in->namespaces, kp->ns)) ||
        (in->pods.n && !any_glob(&in->pods, kp->pod)) ||
        (in->containers.n && !any_glob(&in->containers, kp->container)))
        return false;
    return !any_glob(&ex->namespaces, kp->ns) && !any_glob(&ex->pods, kp->pod) &&
           !any_glob(&ex->containers, kp->container);
}

static bool k_wanted(struct lc_file_in *fi, const char *path)
{
    struct lc_k8s_in *k = fi->owner;
    struct kpath kp;

    return !parse_path(k, path, &kp) || selected(k->c, &kp); /* a bad path: k_open says so */
}

/* The static labels, then namespace, pod, container, stream. */
static int k_labels(struct lc_k8s_in *k, const struct kpath *kp, const char *stream,
                    struct lc_labels **out)
{
    const struct lc_kvlist *stat = &k->in->conf->labels;
    struct lc_kv kv[LC_LABELS_MAX + 4];
    size_t n = 0;

    for (size_t i = 0; i < stat->n && n < LC_LABELS_MAX - 4; i++)
        kv[n++] = stat->v[i];
    kv[n].key = "namespace";
    kv[n++].value = (char *)kp->ns;
    kv[n].key = "pod";
    kv[n++].value = (char *)kp->pod;
    kv[n].key = "container";
    kv[n++].value = (char *)kp->container;
    kv[n].key = "stream";
    kv[n++].value = (char *)stream;
    return lc_labels_intern(kv, n, out);
}

int lc_k8s_relabel(struct lc_relabel_rule *rules, size_t n, const struct lc_kvlist *stat,
                   const char *root, const char *node, const char *path, struct lc_relabel_set *s)
{
    struct lc_k8s_conf c = {.root = (char *)root};
    struct lc_k8s_in k = {.c = &c};
    struct kpath kp;
    bool cut = false;
    int rc;

    if (!parse_path(&k, path, &kp))
        return -EINVAL;
    rc = lc_relabel_begin(s, stat);
    if (rc == 0)
        rc = lc_relabel_set_put(s, "__meta_kubernetes_namespace", kp.ns);
    if (rc == 0)
        rc = lc_relabel_set_put(s, "__meta_kubernetes_pod_name", kp.pod);
    if (rc == 0)
        rc = lc_relabel_set_put(s, "__meta_kubernetes_pod_uid", kp.uid);
    if (rc == 0)
        rc = lc_relabel_set_put(s, "__meta_kubernetes_pod_container_name", kp.container);
    if (rc == 0 && node)
        rc = lc_relabel_set_put(s, "__meta_kubernetes_pod_node_name", node);
    return lc_relabel_end(rules, n, s, rc, &cut); /* cut: only with ~120 static labels */
}

/*
 * With `relabel:` rules: the relabelled set plus stream, for each stream; 1
 * kept, 0 dropped by the rules, or a negative errno.
 */
static int k_relabelled(struct lc_k8s_in *k, const char *path, struct lc_labels **out,
                        struct lc_labels **err)
{
    struct lc_relabel_set s;
    struct lc_kv kv[LC_RELABEL_MAX_LABELS + 1];
    int rc = lc_k8s_relabel(k->c->relabel.v, k->c->relabel.n, &k->in->conf->labels, k->c->root,
                            k->node, path, &s);

    if (rc != 1)
        return rc;
    memcpy(kv, s.v, s.n * sizeof(*kv));
    kv[s.n].key = "stream"; /* as Promtail's cri stage */
    kv[s.n].value = "stdout";
    rc = lc_labels_intern(kv, s.n + 1, out);
    kv[s.n].value = "stderr";
    if (rc == 0)
        rc = lc_labels_intern(kv, s.n + 1, err);
    lc_relabel_set_free(&s);
    return rc ? rc : 1;
}

/* Same container directory (a rotation's predecessor): the split lines continue there. */
static bool same_dir(const char *a, const char *b)
{
    const char *ea = strrchr(a, '/'), *eb = strrchr(b, '/');

    return ea && eb && ea - a == eb - b && strncmp(a, b, (size_t)(ea - a)) == 0;
}

/* The rotated, still uncompressed logs of a path, newest first (the timestamps sort). */
struct rotated {
    glob_t g;
    size_t n;
    char **v; /* into g, newest first */
};

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool rotated_name(void *arg, const char *path, int i, char *buf, size_t len)
{
    struct rotated *r = arg;

    (void)path;
    if (i < 1 || (size_t)i > r->n)
        return false;
    snprintf(buf, len, "%s", r->v[i - 1]);
    return true;
}

/*
 * t is a container's current log (<n>.log at its path): rotated logs of it
 * that we neither hold open nor have a checkpoint row for were never seen
 * (rotated twice between two looks, or rotated after a crash that came
 * before their row was stored): opened oldest first, each read to its end
 * before the next, from their first byte (a repeat, never a loss).
 */
static void open_missed(struct lc_tail *t)
{
    struct lc_file_in *fi = t->fi;
    struct rotated r = {.n = 0};
    char pat[4096 + 4];
    struct stat st;

    if (!ends_with(t->path, ".log") || stat(t->path, &st) != 0 || st.st_ino != t->ino ||
        st.st_dev != t->dev || (!t->after && !fi->scanned && fi->first_start))
        return; /* a rotated one, or the very first start: rotated logs are history then */
    snprintf(pat, sizeof(pat), "%s.*", t->path);
    if (glob(pat, 0, NULL, &r.g) != 0)
        return;
    r.v = calloc(r.g.gl_pathc, sizeof(*r.v));
    for (size_t i = r.g.gl_pathc; r.v && i-- > 0;)
        if (!ends_with(r.g.gl_pathv[i], ".gz") && !ends_with(r.g.gl_pathv[i], ".tmp"))
            r.v[r.n++] = r.g.gl_pathv[i];
    if (r.n)
        t->after =
            lc_file_in_open_missed_names(fi, t->path, t->after, &t->check_gap, rotated_name, &r);
    free(r.v);
    globfree(&r.g);
}

/* A log that is never read: kept open (no source), so rescans neither reopen nor count it again. */
static int k_unread(struct lc_tail *t)
{
    t->waiting = false;
    t->once_target = 0;
    return 0;
}

static int k_open(struct lc_tail *t)
{
    struct lc_k8s_in *k = t->fi->owner;
    struct lc_labels *out = NULL, *err = NULL;
    struct kfile *p = calloc(1, sizeof(*p));
    struct kpath kp;
    int rc;

    if (!p)
        return -ENOMEM;
    t->priv = p;
    p->k = k;
    if (!parse_path(k, t->path, &kp)) {
        lc_counter_inc(k->m_skip[SKIP_PATH]);
        lc_logf(LC_LOG_WARN, k->in->conf->name, NULL,
                "%s: not a kubelet pod log path (<namespace>_<pod>_<uid>/<container>/<n>.log): "
                "not read",
                t->path);
        return k_unread(t);
    }
    if (k->c->relabel.n) {
        rc = k_relabelled(k, t->path, &out, &err);
        if (rc < 0) {
            lc_labels_release(out);
            return rc;
        }
        if (rc == 0) {
            lc_counter_inc(k->m_skip[SKIP_EXCLUDED]);
            lc_logf(LC_LOG_INFO, k->in->conf->name, NULL,
                    "%s: dropped by the relabel rules, not read", t->path);
            return k_unread(t);
        }
    }
    open_missed(t);
    if (t->after && t->after->priv && same_dir(t->after->path, t->path)) {
        p->j = ((struct kfile *)t->after->priv)->j;
        p->j->refs++;
    } else {
        p->j = lc_split_join_new((size_t)k->c->max_line_bytes);
    }
    if (!p->j) {
        lc_labels_release(out);
        lc_labels_release(err);
        return -ENOMEM;
    }
    rc = 0;
    if (!out) {
        rc = k_labels(k, &kp, "stdout", &out);
        if (rc == 0)
            rc = k_labels(k, &kp, "stderr", &err);
    }
    if (rc) {
        lc_labels_release(out);
        return rc;
    }
    return lc_split_join_attach(t, out, err, p->labels);
}

static bool k_line(struct lc_tail *t, const char *line, size_t len, int64_t now)
{
    struct kfile *p = t->priv;
    struct lc_k8s_in *k = p->k;
    struct lc_docker_line dl;

    if (lc_cri_decode(line, len, &dl) != 0) {
        lc_counter_inc(k->m_skip[SKIP_MALFORMED]);
        lc_logf(LC_LOG_WARN, k->in->conf->name, NULL,
                "%s: a line not in the CRI log format skipped", t->path);
        return !lc_split_join_pending(p->j);
    }
    if (t->skip_old) {
        if (dl.ts_ns < now - k->c->max_age_ms * LC_NS_PER_MSEC) {
            lc_counter_inc(k->m_skip[SKIP_TOO_OLD]);
            return !lc_split_join_pending(p->j);
        }
        t->skip_old = false;
    }
    return lc_split_join_feed(p->j, t, p->labels, &dl, now);
}

static void k_idle(struct lc_tail *t)
{
    struct kfile *p = t->priv;

    if (p && p->j)
        lc_split_join_idle(p->j, t, p->labels, FRAGMENT_WAIT_NS);
}

/* The tailer goes back to a position with nothing half joined: forget what is. */
static void k_rewind(struct lc_tail *t)
{
    struct kfile *p = t->priv;

    if (p)
        lc_split_join_rewind(p->j);
}

static void k_close(struct lc_tail *t)
{
    struct kfile *p = t->priv;

    if (!p)
        return;
    lc_split_join_unref(p->j);
    free(p);
    t->priv = NULL;
}

static const struct lc_tail_ops k8s_ops = {
    .open = k_open,
    .line = k_line,
    .close = k_close,
    .idle = k_idle,
    .rewind = k_rewind,
    .wanted = k_wanted,
};

/* Plugin ------------------------------------------------------------------- */

static const char *const skip_names[] = {"malformed", "too_old", "path", "excluded", NULL};
LC_METRIC_VALUES_FIT(struct lc_k8s_in, m_skip, skip_names);

static const struct lc_metric_row k8s_series[] = {
    {LC_COUNTER, "log_capturer_kubernetes_skipped_total",
     "Pod log lines or files skipped, by reason (malformed: not CRI; too_old: max_age; path: not "
     "a kubelet log path; excluded: a log dropped by the relabel rules).",
     offsetof(struct lc_k8s_in, m_skip), "reason", skip_names},
};
static const struct lc_metric_row k8s_file_series[] = {
    {LC_COUNTER, "log_capturer_file_rotation_gaps_total",
     "Rotated data deleted before it was read (counted, logged).",
     offsetof(struct lc_file_in, m_gaps)},
};

static int k8s_init(struct lc_input *in)
{
    const struct lc_k8s_conf *c = in->conf->conf;
    struct lc_k8s_in *k = calloc(1, sizeof(*k));
    struct lc_file_conf *f;
    const char *node;
    size_t len;
    int rc;

    if (!k)
        return -ENOMEM;
    in->ctx = k;
    k->in = in;
    k->c = c;
    node = getenv("NODE_NAME");
    if (!node || !*node)
        node = getenv("HOSTNAME");
    if (node && *node && !(k->node = strdup(node)))
        return -ENOMEM;
    len = strlen(c->root) + 16;
    k->glob = malloc(sizeof(char *) + len);
    if (!k->glob)
        return -ENOMEM;
    f = &k->fconf;
    f->paths.v = (char **)(void *)k->glob;
    f->paths.v[0] = k->glob + sizeof(char *);
    snprintf(f->paths.v[0], len, "%s/*/*/*.log", c->root);
    f->paths.n = 1;
    f->start_at = c->start_at;
    f->max_age_ms = c->max_age_ms;
    /* a raw CRI line holds one part; a longer one is counted as cut and skipped */
    f->max_line_bytes =
        c->max_line_bytes + 64 > RAW_LINE_MIN ? c->max_line_bytes + 64 : RAW_LINE_MIN;
    f->read_bytes = c->read_bytes;
    f->rescan_ms = c->rescan_ms;
    f->poll_ms = c->poll_ms;
    f->flush_ms = 3600000; /* a torn CRI line waits for its end */
    f->rotate_wait_ms = c->rotate_wait_ms;
    f->max_files = c->max_files;
    f->max_rotated = c->max_rotated;
    f->max_unacked = c->max_unacked;
    rc = lc_file_in_init(in, f, &k8s_ops, k, &k->files);
    if (rc)
        return rc;
    lc_metric_register_rows(k, k8s_series, LC_METRIC_ROWS(k8s_series), "input", in->conf->name);
    /* the file tailer counts this input's rotation gaps in its own field */
    lc_metric_register_rows(k->files, k8s_file_series, LC_METRIC_ROWS(k8s_file_series), "input",
                            in->conf->name);
    return 0;
}

static int k8s_start(struct lc_input *in)
{
    struct lc_k8s_in *k = in->ctx;

    return lc_file_in_start(k->files);
}

static void k8s_pause(struct lc_input *in)
{
    lc_file_in_pause(((struct lc_k8s_in *)in->ctx)->files);
}

static void k8s_resume(struct lc_input *in)
{
    lc_file_in_resume(((struct lc_k8s_in *)in->ctx)->files);
}

static bool k8s_caught_up(struct lc_input *in)
{
    return lc_file_in_caught_up(((struct lc_k8s_in *)in->ctx)->files);
}

static void k8s_stopped(void *arg)
{
    lc_input_stopped(arg);
}

static void k8s_stop(struct lc_input *in)
{
    lc_file_in_stop(((struct lc_k8s_in *)in->ctx)->files, k8s_stopped, in);
}

static void k8s_free(struct lc_input *in)
{
    struct lc_k8s_in *k = in->ctx;

    if (!k)
        return;
    lc_file_in_free(k->files);
    free(k->glob);
    free(k->node);
    free(k);
    in->ctx = NULL;
}

const struct lc_input_plugin lc_input_kubernetes = {
    .name = "kubernetes",
    .description = "pod logs under /var/log/pods (CRI format), following the kubelet's rotation",
    .options = k8s_options,
    .conf_size = sizeof(struct lc_k8s_conf),
    .init = k8s_init,
    .start = k8s_start,
    .pause = k8s_pause,
    .resume = k8s_resume,
    .caught_up = k8s_caught_up,
    .stop = k8s_stop,
    .free = k8s_free,
};
