/* SPDX-License-Identifier: MIT */
/* main.c: the command line. */
#include "core/agent.h"
#include "core/config.h"
#include "core/http.h"
#include "core/meta.h"
#include "core/labels.h"
#include "core/log.h"
#include "core/losses.h"
#include "core/metrics.h"
#include "core/promtail.h"
#include "output/dlq_cli.h"
#include "process/stage.h"

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <protobuf-c/protobuf-c.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <yaml.h>
#include <zlib.h>

#define EXIT_CONFIG 2 /* bad configuration or usage */

static const char usage[] =
    "usage: log_capturer [run] [-c FILE] [--once]\n"
    "       log_capturer [run] --promtail-config FILE [--promtail-lenient] "
    "[--promtail-expand-env]\n"
    "       log_capturer convert [--promtail-lenient] [--promtail-expand-env] PROMTAIL_FILE\n"
    "       log_capturer check-config [--print] FILE\n"
    "       log_capturer dlq list|replay [-c FILE] [--output NAME]\n"
    "       log_capturer test-process -c FILE --input NAME [--profile]   (lines on stdin)\n"
    "       log_capturer options          (reference of every option, as Markdown)\n"
    "       log_capturer version | --version | --help\n"
    "\n"
    "run           collect and ship logs until SIGINT/SIGTERM (the default command)\n"
    "  -c FILE     configuration (YAML); without it the embedded default: tail\n"
    "              /var/log/syslog and /var/log/*.log, print JSON lines on stdout\n"
    "  --once      read every input to its current end, deliver, save positions, exit\n"
    "  --promtail-config FILE  run on a Promtail configuration (converted as by `convert`);\n"
    "              its positions file is imported at the first start (docs/promtail.md)\n"
    "  --promtail-lenient      keys without an equivalent: a warning, ignored (else an error)\n"
    "  --promtail-expand-env   expand ${VAR} (Promtail's -config.expand-env=true)\n"
    "convert       print the native configuration equivalent to a Promtail one\n"
    "check-config  validate FILE; exit 0 if valid, 2 with FILE:LINE:COLUMN: message if not\n"
    "dlq           list or re-send the dead-letter queue of the Loki outputs\n"
    "test-process  run the lines of stdin through the input's `process:` stages and print\n"
    "              each result (line, labels, fields) or why it was dropped; --profile\n"
    "              prints the CPU time per record of each stage instead\n";

/*
 * The embedded configuration keeps its state in ${LC_STATE_DIR}; when that is
 * unset, root uses /var/lib/log_capturer and anyone else a directory of their
 * own, so the default run works without privileges.
 */
static void default_state_dir(void)
{
    char dir[4096];
    const char *base = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");

    if (getenv("LC_STATE_DIR") || geteuid() == 0)
        return;
    if (base && *base)
        snprintf(dir, sizeof(dir), "%s/log_capturer", base);
    else if (home && *home)
        snprintf(dir, sizeof(dir), "%s/.local/state/log_capturer", home);
    else
        snprintf(dir, sizeof(dir), "/tmp/log_capturer-%u", (unsigned)geteuid());
    setenv("LC_STATE_DIR", dir, 0);
}

static int load(const char *path, struct lc_config **cfg)
{
    char err[1024];
    int rc;

    if (!path)
        default_state_dir();
    if (path)
        rc = lc_config_load_file(path, cfg, err, sizeof(err));
    else
        rc = lc_config_load_string(lc_config_embedded, "<embedded>", cfg, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "log_capturer: %s\n", err);
        return EXIT_CONFIG;
    }
    return 0;
}

/* --promtail-lenient, --promtail-expand-env: true (and *flags set) if argv[i] is one. */
static bool promtail_flag(const char *arg, unsigned *flags)
{
    if (strcmp(arg, "--promtail-lenient") == 0)
        *flags |= LC_PT_LENIENT;
    else if (strcmp(arg, "--promtail-expand-env") == 0)
        *flags |= LC_PT_EXPAND_ENV;
    else
        return false;
    return true;
}

static int cmd_convert(int argc, char **argv)
{
    struct lc_promtail_result res = {0};
    const char *path = NULL;
    unsigned flags = 0;
    char err[1024];
    int rc;

    for (int i = 0; i < argc; i++) {
        if (promtail_flag(argv[i], &flags))
            continue;
        if (path || argv[i][0] == '-') {
            fprintf(stderr, "log_capturer: unknown argument '%s'\n%s", argv[i], usage);
            return EXIT_CONFIG;
        }
        path = argv[i];
    }
    if (!path) {
        fputs(usage, stderr);
        return EXIT_CONFIG;
    }
    rc = lc_promtail_convert_file(path, flags, stderr, &res, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "log_capturer: %s\n", err);
        return EXIT_CONFIG;
    }
    fputs(res.yaml, stdout);
    lc_promtail_result_free(&res);
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    const char *path = NULL, *promtail = NULL;
    struct lc_config *cfg = NULL;
    unsigned flags = 0;
    bool once = false;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--promtail-config") == 0 && i + 1 < argc) {
            promtail = argv[++i];
        } else if (promtail_flag(argv[i], &flags)) {
            continue;
        } else if (strcmp(argv[i], "--once") == 0) {
            once = true;
        } else {
            fprintf(stderr, "log_capturer: unknown argument '%s'\n%s", argv[i], usage);
            return EXIT_CONFIG;
        }
    }
    if (promtail && path) {
        fprintf(stderr, "log_capturer: -c and --promtail-config exclude each other\n");
        return EXIT_CONFIG;
    }
    if (promtail) {
        char err[1024];
        if (lc_promtail_load(promtail, flags, &cfg, NULL, err, sizeof(err))) {
            fprintf(stderr, "log_capturer: %s\n", err);
            return EXIT_CONFIG;
        }
        return lc_agent_run(cfg, once);
    }
    rc = load(path, &cfg);
    if (rc)
        return rc;
    return lc_agent_run(cfg, once);
}

static int cmd_check(int argc, char **argv)
{
    struct lc_config *cfg = NULL;
    bool print = false;
    const char *path = NULL;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--print") == 0)
            print = true;
        else
            path = argv[i];
    }
    if (!path) {
        fputs(usage, stderr);
        return EXIT_CONFIG;
    }
    rc = load(path, &cfg);
    if (rc)
        return rc;
    if (print)
        lc_config_print(cfg, stdout);
    else
        printf("ok\n");
    lc_config_free(cfg);
    return 0;
}

/* The version, and those of the libraries it runs with (which may differ from the build's). */
static void print_version(void)
{
    const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);

    printf("log_capturer %s\n", LC_VERSION);
    printf("libcurl %s (%s)\n", curl->version, curl->ssl_version ? curl->ssl_version : "no TLS");
    printf("libuv %s\n", uv_version_string());
    printf("SQLite %s\n", sqlite3_libversion());
    printf("libyaml %s\n", yaml_get_version_string());
    printf("jansson %s\n", jansson_version_str());
    printf("zlib %s\n", zlibVersion());
    printf("libmicrohttpd %s\n", MHD_get_version());
    printf("protobuf-c %s\n", protobuf_c_version());
    /* snappy's C API has no version function: its build-time version is not worth guessing. */
    printf("snappy (no version API)\n");
}

static void print_options(void)
{
    printf("## Top level\n\n");
    lc_options_print(lc_config_options, "", stdout, true);
    for (size_t i = 0; lc_input_plugins[i]; i++) {
        printf("\n## Input `%s`: %s\n\n", lc_input_plugins[i]->name,
               lc_input_plugins[i]->description);
        lc_options_print(lc_input_plugins[i]->options, "", stdout, true);
    }
    for (size_t i = 0; lc_output_plugins[i]; i++) {
        printf("\n## Output `%s`: %s\n\n", lc_output_plugins[i]->name,
               lc_output_plugins[i]->description);
        lc_options_print(lc_output_plugins[i]->options, "", stdout, true);
    }
    for (size_t i = 0; lc_stage_plugins[i]; i++) {
        printf("\n## Stage `%s`: %s\n\n", lc_stage_plugins[i]->name,
               lc_stage_plugins[i]->description);
        if (lc_stage_plugins[i]->options && lc_stage_plugins[i]->options[0].key)
            lc_options_print(lc_stage_plugins[i]->options, "", stdout, true);
        else
            printf("No options.\n");
    }
}

/* Writes s as a JSON string. */
static void print_json_str(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_prec(const struct lc_prec *r)
{
    fputs("{\"line\":", stdout);
    print_json_str(r->line, r->len);
    printf(",\"ts_ns\":%lld,\"labels\":%s,\"fields\":{", (long long)r->ts_ns,
           r->labels ? r->labels->json : "{}");
    for (uint32_t k = 0; k < r->nfields; k++) {
        if (k)
            putchar(',');
        print_json_str(lc_prec_fname(r, &r->fields[k]), r->fields[k].name_len);
        putchar(':');
        print_json_str(lc_prec_fval(r, &r->fields[k]), r->fields[k].val_len);
    }
    putchar('}');
    if (r->meta_len) {
        struct lc_meta_it it = {r->meta, r->meta + r->meta_len};
        const char *n, *v;
        size_t nl, vl;
        fputs(",\"metadata\":{", stdout);
        for (bool first = true; lc_meta_next(&it, &n, &nl, &v, &vl); first = false) {
            if (!first)
                putchar(',');
            print_json_str(n, nl);
            putchar(':');
            print_json_str(v, vl);
        }
        putchar('}');
    }
    if (r->tenant_len) {
        fputs(",\"tenant\":", stdout);
        print_json_str(r->tenant, r->tenant_len);
    }
    fputs("}\n", stdout);
}

/* test-process's emit_fn: a record a stage held (multiline) goes on and is printed. */
static int print_held(struct lc_chain *c, struct lc_source *src, const struct lc_labels *labels,
                      int64_t ts_ns, const char *line, size_t len)
{
    struct lc_prec *r = lc_chain_run(c, src, labels, ts_ns, line, len);

    if (r)
        print_prec(r);
    else if (c->rec.drop_reason)
        printf("{\"dropped\":\"%s\"}\n", c->rec.drop_reason);
    return 0;
}

/* --profile: a held record the stages give back is only counted. */
static int count_held(struct lc_chain *c, struct lc_source *src, const struct lc_labels *labels,
                      int64_t ts_ns, const char *line, size_t len)
{
    (void)lc_chain_run(c, src, labels, ts_ns, line, len);
    return 0;
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#define PROFILE_MAX_BYTES (256 << 20) /* stdin kept in memory for --profile */
#define PROFILE_ROUNDS    5

/*
 * test-process --profile: the lines of stdin (at most 256 MiB) go through the
 * first k stages of the chain, for k = 0..n, 5 times each; the thread CPU time
 * of the fastest round over the lines gives ns per record up to stage k, and
 * the difference with k - 1 the stage's own cost. Outside the agent's hot
 * path: the chain runs as always, only cut short (c->n) between rounds.
 */
static int profile_chain(struct lc_chain *chain, const struct lc_labels *labels)
{
    size_t cap = 1 << 20, used = 0, nlines = 0, nstages = chain->n;
    char *buf = malloc(cap);
    int64_t prev = 0;
    ssize_t n;

    if (!buf)
        return 1;
    while ((n = read(STDIN_FILENO, buf + used, cap - used)) > 0) {
        used += (size_t)n;
        if (used == cap && cap < PROFILE_MAX_BYTES) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        } else if (used == cap) {
            fprintf(stderr, "log_capturer: --profile keeps the first 256 MiB of stdin\n");
            break;
        }
    }
    for (size_t i = 0; i < used; i++)
        nlines += buf[i] == '\n';
    if (nlines == 0) {
        free(buf);
        fprintf(stderr, "log_capturer: --profile: no lines on stdin\n");
        return 1;
    }
    chain->emit_fn = count_held;
    printf("%zu records; thread CPU ns per record, fastest of %d rounds\n", nlines, PROFILE_ROUNDS);
    printf("| stage | up to it | its own |\n|---|---|---|\n");
    for (size_t k = 0; k <= nstages; k++) {
        int64_t best = INT64_MAX;
        chain->n = k;
        for (int round = 0; round < PROFILE_ROUNDS; round++) {
            int64_t t0 = thread_cpu_ns();
            for (const char *p = buf, *end = buf + used; p < end;) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                if (!nl)
                    break;
                (void)lc_chain_run(chain, NULL, labels, 1, p, (size_t)(nl - p));
                p = nl + 1;
            }
            int64_t t = thread_cpu_ns() - t0;
            best = t < best ? t : best;
        }
        double per = (double)best / (double)nlines;
        printf("| %s | %.0f | %.0f |\n", k ? chain->stages[k - 1].id : "(chain only)", per,
               k ? per - (double)prev / (double)nlines : per);
        prev = best;
    }
    chain->n = nstages;
    free(buf);
    return 0;
}

/*
 * test-process: each line of stdin through the stages of one input, as its
 * records would go; prints one JSON object per record out, or the drop.
 */
static int cmd_test_process(int argc, char **argv)
{
    const char *path = NULL, *name = NULL;
    bool profile = false;
    struct lc_config *cfg = NULL;
    const struct lc_input_conf *ic = NULL;
    struct lc_labels *labels = NULL;
    struct lc_chain *chain = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--input") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strcmp(argv[i], "--profile") == 0)
            profile = true;
        else {
            fprintf(stderr, "log_capturer: unknown argument '%s'\n%s", argv[i], usage);
            return EXIT_CONFIG;
        }
    }
    if (!path || !name) {
        fputs(usage, stderr);
        return EXIT_CONFIG;
    }
    rc = load(path, &cfg);
    if (rc)
        return rc;
    for (size_t k = 0; k < cfg->ninputs && !ic; k++)
        if (strcmp(cfg->inputs[k].name, name) == 0)
            ic = &cfg->inputs[k];
    if (!ic) {
        fprintf(stderr, "log_capturer: %s: no input named '%s'\n", path, name);
        lc_config_free(cfg);
        return EXIT_CONFIG;
    }
    if (ic->labels.n)
        lc_labels_intern(ic->labels.v, ic->labels.n, &labels);
    rc = lc_chain_new(ic->process, NULL, ic->name, &chain);
    if (rc < 0) {
        fprintf(stderr, "log_capturer: %s\n", strerror(-rc));
        lc_config_free(cfg);
        return 1;
    }
    if (profile && chain) {
        rc = profile_chain(chain, labels);
        lc_chain_stop(chain, true);
        lc_chain_free(chain);
        lc_labels_release(labels);
        lc_config_free(cfg);
        return rc;
    }
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        struct lc_prec *r, pass = {0};
        size_t len = (size_t)n;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (chain) {
            r = lc_chain_run(chain, NULL, labels, lc_now_ns(), line, len);
        } else {
            pass =
                (struct lc_prec){.labels = labels, .ts_ns = lc_now_ns(), .line = line, .len = len};
            r = &pass;
        }
        if (r)
            print_prec(r);
        else if (chain->rec.drop_reason)
            printf("{\"dropped\":\"%s\"}\n", chain->rec.drop_reason);
        fflush(stdout);
    }
    if (chain) {
        chain->emit_fn = print_held;
        lc_chain_stop(chain, true); /* end of input: what multiline holds */
    }
    free(line);
    lc_chain_free(chain);
    lc_labels_release(labels);
    lc_config_free(cfg);
    return 0;
}

int main(int argc, char **argv)
{
    int rc;

    /*
     * libuv's thread pool runs only the Loki outputs' encoders (one body at a
     * time per output, README "Threads"): one thread, started on first use,
     * unless UV_THREADPOOL_SIZE says otherwise.
     */
    setenv("UV_THREADPOOL_SIZE", "1", 0);

    if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0 ||
                     strcmp(argv[1], "version") == 0)) {
        print_version();
        return 0;
    }
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (argc > 1 && strcmp(argv[1], "check-config") == 0)
        rc = cmd_check(argc - 2, argv + 2);
    else if (argc > 1 && strcmp(argv[1], "convert") == 0)
        rc = cmd_convert(argc - 2, argv + 2);
    else if (argc > 1 && strcmp(argv[1], "test-process") == 0)
        rc = cmd_test_process(argc - 2, argv + 2);
    else if (argc > 1 && strcmp(argv[1], "dlq") == 0)
        rc = lc_dlq_cli(argc - 1, argv + 1);
    else if (argc > 1 && strcmp(argv[1], "options") == 0) {
        print_options();
        rc = 0;
    } else if (argc > 1 && strcmp(argv[1], "run") == 0)
        rc = cmd_run(argc - 2, argv + 2);
    else
        rc = cmd_run(argc - 1, argv + 1);
    lc_log_flush();
    lc_health_shutdown();
    lc_losses_shutdown();
    lc_metrics_shutdown();
    curl_global_cleanup();
    return rc;
}
