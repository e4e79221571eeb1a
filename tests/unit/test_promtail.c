/* SPDX-License-Identifier: MIT */
/* test_promtail.c: the Promtail converter (mapping, error paths, lenient mode) and positions
 * import. */
#include "core/ckpt.h"
#include "core/config.h"
#include "core/labels.h"
#include "core/promtail.h"
#include "process/stage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define HEAD                                                                                       \
    "server:\n"                                                                                    \
    "  http_listen_port: 9080\n"                                                                   \
    "clients:\n"                                                                                   \
    "  - url: http://127.0.0.1:3100/loki/api/v1/push\n"                                            \
    "scrape_configs:\n"                                                                            \
    "  - job_name: app\n"                                                                          \
    "    static_configs:\n"                                                                        \
    "      - labels: {job: app, __path__: /var/log/app/*.log}\n"

#define assert_has(hay, needle)                                                                    \
    do {                                                                                           \
        if (!strstr((hay), (needle)))                                                              \
            fail_msg("'%s' not in:\n%s", (needle), (hay));                                         \
    } while (0)
#define assert_lacks(hay, needle)                                                                  \
    do {                                                                                           \
        if (strstr((hay), (needle)))                                                               \
            fail_msg("'%s' in:\n%s", (needle), (hay));                                             \
    } while (0)

/* Converts text; returns rc, the YAML in *yaml (caller frees), the message in err. */
static int conv(const char *text, unsigned flags, char **yaml, char *err, size_t errlen,
                size_t *warnings)
{
    struct lc_promtail_result r = {0};
    FILE *warn = tmpfile();
    int rc = lc_promtail_convert(text, strlen(text), "p.yaml", flags, warn, &r, err, errlen);

    *yaml = r.yaml;
    if (warnings)
        *warnings = r.warnings;
    if (rc == 0 && (flags & LC_PT_LENIENT)) {
        /* the warning names the line too */
        char w[1024] = "";
        rewind(warn);
        assert_non_null(fgets(w, sizeof(w), warn));
        snprintf(err, errlen, "%s", w);
    }
    fclose(warn);
    free(r.positions);
    return rc;
}

/* The converted text loads through the native loader. */
static void assert_loads(const char *yaml)
{
    struct lc_config *cfg = NULL;
    char err[1024];
    int rc = lc_config_load_string(yaml, "converted", &cfg, err, sizeof(err));
    if (rc)
        fail_msg("%s\n---\n%s", err, yaml);
    lc_config_free(cfg);
}

static void test_minimal(void **state)
{
    char *y, err[1024];
    (void)state;
    assert_int_equal(conv(HEAD, 0, &y, err, sizeof(err), NULL), 0);
    assert_has(y, "url: \"http://127.0.0.1:3100\""); /* push path stripped */
    assert_has(y, "listen: \"127.0.0.1:9080\"");     /* loopback */
    assert_has(y, "batch_wait: 1000ms");             /* Promtail's defaults */
    assert_has(y, "batch_bytes: 1048576");
    assert_has(y, "retry: {initial: 500ms, max: 300000ms}");
    assert_has(y, "paths: [\"/var/log/app/*.log\"]");
    assert_has(y, "labels: {\"job\": \"app\"}");
    assert_has(y, "start_at: beginning");
    assert_loads(y);
    free(y);
}

/* An unknown key is an error naming it and its line; lenient: a warning, the key ignored. */
static void test_unknown_key(void **state)
{
    static const char text[] = HEAD "limits_config:\n  readline_rate: 10\n";
    char *y = NULL, err[1024];
    size_t w = 0;
    (void)state;
    assert_int_equal(conv(text, 0, &y, err, sizeof(err), NULL), -EINVAL);
    assert_null(y);
    assert_has(err, "p.yaml:9:1: top-level key 'limits_config' is not supported");
    assert_int_equal(conv(text, LC_PT_LENIENT, &y, err, sizeof(err), &w), 0);
    assert_int_equal(w, 1);
    assert_has(err, "p.yaml:9:1: warning: top-level key 'limits_config'");
    assert_lacks(y, "readline_rate");
    assert_loads(y);
    free(y);
}

static void test_unknown_stage(void **state)
{
    static const char text[] = HEAD "    pipeline_stages:\n"
                                    "      - json: {expressions: {level: \"\"}}\n"
                                    "      - geoip: {source: ip}\n";
    char *y = NULL, err[1024];
    (void)state;
    assert_int_equal(conv(text, 0, &y, err, sizeof(err), NULL), -EINVAL);
    assert_has(err, "p.yaml:11:9: pipeline stage 'geoip' is not supported");
    assert_int_equal(conv(text, LC_PT_LENIENT, &y, err, sizeof(err), NULL), 0);
    assert_has(y, "- json:");
    assert_lacks(y, "geoip");
    assert_loads(y);
    free(y);
}

static void test_json_expressions(void **state)
{
    char *y = NULL, err[1024];
    (void)state;
    assert_int_equal(conv(HEAD "    pipeline_stages:\n"
                               "      - json: {expressions: {lvl: level, u: ctx.user, "
                               "k: '\"x-y\".z', level: level, m: ''}}\n",
                          0, &y, err, sizeof(err), NULL),
                     0);
    assert_has(y,
               "- json: {expressions: {\"lvl\": \"level\", \"u\": \"ctx.user\", \"k\": \"x-y.z\", "
               "\"level\": \"\", \"m\": \"\"}}");
    assert_loads(y);
    free(y);
    y = NULL;
    assert_int_equal(conv(HEAD "    pipeline_stages:\n"
                               "      - json: {expressions: {first: 'items[0]'}}\n",
                          0, &y, err, sizeof(err), NULL),
                     -EINVAL);
    assert_has(err, "p.yaml:10:37: json expression 'items[0]' is not supported");
}

static void test_timestamp_layouts(void **state)
{
    char *y = NULL, err[1024];
    (void)state;
    assert_int_equal(conv(HEAD "    pipeline_stages:\n"
                               "      - timestamp: {source: t, format: '2006-01-02 15:04:05', "
                               "fallback_formats: [RFC1123Z, UnixMs, '02/Jan/2006:15:04:05 "
                               "-0700']}\n",
                          0, &y, err, sizeof(err), NULL),
                     0);
    /* Go's seconds take an optional fraction too: %S%f */
    assert_has(y, "format: \"%Y-%m-%d %H:%M:%S%f\", fallback_formats: [\"%a, %d %b %Y "
                  "%H:%M:%S%f %z\", \"UnixMs\", \"%d/%b/%Y:%H:%M:%S%f %z\"]");
    assert_loads(y);
    free(y);
    y = NULL;
    /* fractional seconds: .000 exactly that many digits (%3f), .999 any (%f) */
    assert_int_equal(conv(HEAD "    pipeline_stages:\n"
                               "      - timestamp: {source: t, format: '2006-01-02 15:04:05.000', "
                               "fallback_formats: ['2006-01-02 15:04:05.999999999', "
                               "'2006-01-02T15:04:05.000000-0700', '02.01.2006 15:04:05,000']}\n",
                          0, &y, err, sizeof(err), NULL),
                     0);
    assert_has(y, "format: \"%Y-%m-%d %H:%M:%S%3f\", fallback_formats: [\"%Y-%m-%d "
                  "%H:%M:%S%f\", \"%Y-%m-%dT%H:%M:%S%6f%z\", \"%d.%m.%Y %H:%M:%S%3f\"]");
    assert_loads(y);
    free(y);
    y = NULL;
    assert_int_equal(conv(HEAD "    pipeline_stages:\n"
                               "      - timestamp: {source: t, format: '05.0000000000 2006'}\n",
                          0, &y, err, sizeof(err), NULL),
                     -EINVAL);
    assert_has(err, "p.yaml:10:40: timestamp format");
    assert_has(err, "more than 9 fractional digits");
    /* the native stage takes one fraction per layout */
    {
        struct lc_config *cfg = NULL;
        static const char two[] = "inputs:\n  - type: syslog\n    name: s\n    process:\n"
                                  "      - timestamp: {source: t, format: '%H:%M:%S%3f %Y%f'}\n"
                                  "outputs:\n  - type: ndjson\n    path: /dev/null\n";
        assert_int_not_equal(lc_config_load_string(two, "n.yaml", &cfg, err, sizeof(err)), 0);
        assert_has(err, "at most one %f");
    }
    assert_int_equal(conv(HEAD "    pipeline_stages:\n"
                               "      - timestamp: {source: t, format: RFC1123}\n",
                          0, &y, err, sizeof(err), NULL),
                     -EINVAL);
    assert_has(err, "zone name");
}

/* Promtail replaces each capture group: rewritten so the text around the groups is kept. */
static void test_replace_groups(void **state)
{
    char *y = NULL, err[1024];
    (void)state;
    assert_int_equal(conv(HEAD "    pipeline_stages:\n"
                               "      - replace: {expression: 'pw=(\\S+) id=(?P<id>\\d+)', "
                               "replace: '***'}\n",
                          LC_PT_EXPAND_ENV, &y, err, sizeof(err), NULL),
                     0);
    /* ${n} stays literal for the loader even with ${VAR} expansion on */
    assert_has(y, "- replace: {expression: \"(pw=)(\\\\S+)( id=)(?P<id>\\\\d+)()\", "
                  "replace: \"$${1}***$${3}***$${5}\"}");
    assert_loads(y);
    free(y);
    y = NULL;
    assert_int_equal(conv(HEAD "    pipeline_stages:\n"
                               "      - replace: {expression: '(a|b)+', replace: x}\n",
                          0, &y, err, sizeof(err), NULL),
                     -EINVAL);
    assert_has(err, "p.yaml:10:31: replace expression '(a|b)+' is not supported");
}

static void test_template_and_clients(void **state)
{
    static const char text[] =
        "clients:\n"
        "  - url: https://l.example/loki/api/v1/push\n"
        "    tenant_id: t1\n"
        "    basic_auth: {username: u, password_file: /etc/pw}\n"
        "    tls_config: {ca_file: /etc/ca.pem, insecure_skip_verify: true}\n"
        "    external_labels: {cluster: c1}\n"
        "    backoff_config: {min_period: 1s, max_period: 1m, max_retries: 3}\n"
        "    batchwait: 2s\n"
        "    batchsize: 524288\n"
        "scrape_configs:\n"
        "  - job_name: app\n"
        "    static_configs:\n"
        "      - labels: {__path__: /var/log/a.log}\n"
        "    pipeline_stages:\n"
        "      - template: {source: lvl, template: '{{ .Value }}-{{ .app }}'}\n"
        "      - template: {source: x, template: '{{ ToUpper .Value }}'}\n";
    char *y = NULL, err[1024];
    (void)state;
    assert_int_equal(conv(text, 0, &y, err, sizeof(err), NULL), -EINVAL);
    assert_has(err, "p.yaml:16:41: template '{{ ToUpper .Value }}' is not supported");
    assert_int_equal(conv(text, LC_PT_LENIENT, &y, err, sizeof(err), NULL), 0);
    assert_has(y, "- template: {source: \"lvl\", template: \"{{ .lvl }}-{{ .app }}\"}");
    assert_has(y, "tenant: \"t1\"");
    assert_has(y, "    basic_auth:\n      username: \"u\"\n      password_file: "
                  "\"/etc/pw\"\n");
    assert_has(y, "      insecure_skip_verify: true\n");
    assert_has(y, "labels: {\"cluster\": \"c1\"}");
    assert_has(y, "retry: {initial: 1000ms, max: 60000ms}");
    assert_has(y, "batch_wait: 2000ms");
    assert_has(y, "batch_bytes: 524288");
    assert_loads(y);
    free(y);
}

static void test_bad_documents(void **state)
{
    char *y = NULL, err[1024];
    (void)state;
    assert_int_equal(conv("clients: [\n", 0, &y, err, sizeof(err), NULL), -EINVAL);
    assert_has(err, "p.yaml:2:1:");
    assert_int_equal(conv("", 0, &y, err, sizeof(err), NULL), -EINVAL);
    assert_int_equal(conv("scrape_configs: []\n", 0, &y, err, sizeof(err), NULL), -EINVAL);
    assert_has(err, "no clients");
    assert_int_equal(
        conv(HEAD "    kubernetes_sd_configs: [{role: pod}]\n", 0, &y, err, sizeof(err), NULL),
        -EINVAL);
    assert_has(err, "more than one of static_configs, docker_sd_configs, kubernetes_sd_configs");
    assert_int_equal(conv("clients: [{url: http://x}]\nscrape_configs:\n  - job_name: a\n"
                          "    static_configs: [{labels: {__path__: '/var/log/**/*.log'}}]\n",
                          0, &y, err, sizeof(err), NULL),
                     -EINVAL);
    assert_has(err, "'**' (any depth) is not supported");
    assert_int_equal(conv(HEAD "    pipeline_stages:\n      - timestamp: {source: t}\n", 0, &y, err,
                          sizeof(err), NULL),
                     -EINVAL);
    assert_has(err, "p.yaml:10:20: timestamp needs 'source' and 'format'");
}

/* docker_sd_configs -> the docker input in api mode, relabel_configs -> its relabel: list. */
static void test_docker_sd(void **state)
{
#define DSD                                                                                        \
    "clients: [{url: http://127.0.0.1:3100/loki/api/v1/push}]\n"                                   \
    "scrape_configs:\n"                                                                            \
    "  - job_name: flog\n"                                                                         \
    "    docker_sd_configs:\n"
    static const char ok[] = DSD "      - host: unix:///run/d.sock\n"
                                 "        refresh_interval: 5s\n"
                                 "        filters: [{name: name, values: [web]}, "
                                 "{name: label, values: ['a=b']}]\n"
                                 "    relabel_configs:\n"
                                 "      - source_labels: ['__meta_docker_container_name']\n"
                                 "        regex: '/(.*)'\n"
                                 "        target_label: 'container'\n"
                                 "      - {action: drop, source_labels: [__meta_docker_container_"
                                 "label_x, b], separator: '-', regex: 'y-.*'}\n"
                                 "      - {action: labelmap, regex: 'l_(.+)', replacement: "
                                 "'${1}_x'}\n";
    char *y = NULL, err[1024];
    (void)state;
    assert_int_equal(conv(ok, 0, &y, err, sizeof(err), NULL), 0);
    assert_has(y,
               "  - type: docker\n    name: \"flog\"\n    mode: api\n    socket: \"/run/d.sock\"");
    assert_has(y, "# refresh_interval");
    assert_has(y, "names: [\"*web*\"]");
    assert_has(y, "labels: [\"a=b\"]");
    assert_has(y, "relabel:");
    assert_has(y, "- action: replace\n        source_labels: [\"__meta_docker_container_name\"]\n"
                  "        regex: \"/(.*)\"\n        target_label: \"container\"\n");
    assert_has(y, "- action: drop\n");
    assert_has(y, "separator: \"-\"");
    assert_has(y, "replacement: \"$${1}_x\""); /* kept literally by the native loader */
    assert_loads(y);
    free(y);
    y = NULL;
    assert_int_equal(
        conv(DSD "      - host: tcp://127.0.0.1:2375\n", 0, &y, err, sizeof(err), NULL), -EINVAL);
    assert_has(err, "p.yaml:5:9: docker_sd_configs.host 'tcp://127.0.0.1:2375'");
    assert_int_equal(conv(DSD "      - host: unix:///d.sock\n"
                              "        filters: [{name: status, values: [running]}]\n",
                          0, &y, err, sizeof(err), NULL),
                     -EINVAL);
    assert_has(err, "filters 'status' is not supported");
    assert_int_equal(conv(DSD
                          "      - host: unix:///d.sock\n"
                          "    relabel_configs:\n"
                          "      - {source_labels: [__meta_docker_network_ip], target_label: ip}\n",
                          0, &y, err, sizeof(err), NULL),
                     -EINVAL);
    assert_has(err, "p.yaml:7:9: relabel_configs: source label '__meta_docker_network_ip'");
    assert_int_equal(conv(DSD "      - host: unix:///d.sock\n"
                              "    relabel_configs:\n"
                              "      - {action: hashmod, source_labels: [a], modulus: 2, "
                              "target_label: h}\n",
                          0, &y, err, sizeof(err), NULL),
                     -EINVAL);
    assert_has(err, "modulus");
#undef DSD
}

/* kubernetes_sd_configs (role: pod) -> the kubernetes input, relabel_configs -> its relabel:. */
static void test_kubernetes_sd(void **state)
{
#define KSD                                                                                        \
    "clients: [{url: http://127.0.0.1:3100/loki/api/v1/push}]\n"                                   \
    "scrape_configs:\n"                                                                            \
    "  - job_name: pods\n"                                                                         \
    "    pipeline_stages: [{cri: {}}]\n"                                                           \
    "    kubernetes_sd_configs:\n"
    static const char ok[] =
        KSD "      - role: pod\n"
            "        namespaces: {names: [shop, 'kube-*']}\n"
            "    relabel_configs:\n"
            "      - {source_labels: [__meta_kubernetes_namespace], target_label: namespace}\n"
            "      - {action: drop, source_labels: [__meta_kubernetes_pod_container_name], "
            "regex: 'istio-.*'}\n"
            "      - {source_labels: [__meta_kubernetes_pod_uid, "
            "__meta_kubernetes_pod_container_name], separator: /, replacement: "
            "'/var/log/pods/*$1/*.log', target_label: __path__}\n"
            "      - {source_labels: [__meta_kubernetes_pod_node_name], target_label: node}\n";
    char *y = NULL, err[1024];
    (void)state;
    assert_int_equal(conv(ok, 0, &y, err, sizeof(err), NULL), 0);
    assert_has(y, "  - type: kubernetes\n    name: \"pods\"\n");
    assert_has(y, "include: {namespaces: [\"shop\", \"kube-*\"]}");
    assert_has(y, "relabel:   # relabel_configs, applied once per pod log\n"
                  "      - action: replace\n"
                  "        source_labels: [\"__meta_kubernetes_namespace\"]\n");
    assert_has(y, "- action: drop\n");
    assert_has(y, "# approximated: the __path__ rule is left out");
    assert_lacks(y, "__path__\"");
    assert_has(y, "target_label: \"node\"");
    assert_has(y, "# cri: {} left out");
    assert_lacks(y, "process:");
    assert_loads(y);
    free(y);
    y = NULL;
    assert_int_equal(conv(KSD "      - role: service\n", 0, &y, err, sizeof(err), NULL), -EINVAL);
    assert_has(err, "p.yaml:6:9: kubernetes_sd_configs.role 'service': only role: pod");
    assert_int_equal(conv(KSD "      - role: pod\n        selectors: [{role: pod, label: a=b}]\n",
                          0, &y, err, sizeof(err), NULL),
                     -EINVAL);
    assert_has(err, "selectors");
    assert_int_equal(conv(KSD "      - role: pod\n        api_server: https://k8s\n", 0, &y, err,
                          sizeof(err), NULL),
                     -EINVAL);
    assert_has(err, "api_server");
    /* pod labels need the API server: an error naming the label, a warning when lenient */
    static const char plabel[] =
        KSD "      - role: pod\n"
            "    relabel_configs:\n"
            "      - {source_labels: [__meta_kubernetes_pod_label_app], target_label: app}\n"
            "      - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}\n";
    assert_int_equal(conv(plabel, 0, &y, err, sizeof(err), NULL), -EINVAL);
    assert_has(err, "p.yaml:8:9: relabel_configs: source label '__meta_kubernetes_pod_label_app' "
                    "is not provided (pod labels and annotations need the API server");
    assert_int_equal(conv(plabel, LC_PT_LENIENT, &y, err, sizeof(err), NULL), 0);
    assert_has(err, "__meta_kubernetes_pod_label_app");
    assert_lacks(y, "__meta_kubernetes_pod_label_app");
    assert_has(y, "target_label: \"pod\"");
    assert_loads(y);
    free(y);
#undef KSD
}

/* match: decided per input from its static labels; per-line labels are unsupported. */
/* syslog relabel_configs on __syslog_* labels: the syslog input's fields; the rest errors. */
static void test_syslog_relabel(void **state)
{
#define SYSLOG_HEAD                                                                                \
    "clients:\n"                                                                                   \
    "  - url: http://127.0.0.1:3100\n"                                                             \
    "scrape_configs:\n"                                                                            \
    "  - job_name: syslog\n"                                                                       \
    "    syslog: {listen_address: 127.0.0.1:1514, labels: {job: syslog}}\n"                        \
    "    relabel_configs:\n"
    static const char ok[] =
        SYSLOG_HEAD "      - source_labels: ['__syslog_message_hostname']\n"
                    "        target_label: 'host'\n"
                    "      - {source_labels: [__syslog_connection_ip_address], target_label: ip, "
                    "action: replace, regex: '(.*)', replacement: '$1'}\n"
                    "      - {source_labels: [__syslog_message_proc_id], target_label: pid}\n";
    static const char none[] = SYSLOG_HEAD "      []\n";
    static const char conn_host[] =
        SYSLOG_HEAD "      - {source_labels: [__syslog_message_app_name], target_label: app}\n"
                    "      - {source_labels: [__syslog_connection_hostname], target_label: h}\n";
    static const char drop[] = SYSLOG_HEAD
        "      - {source_labels: [__syslog_message_severity], regex: debug, action: drop}\n";
    static const char regex[] =
        SYSLOG_HEAD "      - {source_labels: [__syslog_message_hostname], regex: '([^.]*)\\..*', "
                    "target_label: host}\n";
    static const char bad_field[] = "inputs:\n  - type: syslog\n    name: s\n"
                                    "    fields: {host: hostnam}\n"
                                    "outputs:\n  - type: ndjson\n    path: /dev/null\n";
    struct lc_config *cfg = NULL;
    char *y = NULL, err[1024];
    (void)state;
    assert_int_equal(conv(ok, 0, &y, err, sizeof(err), NULL), 0);
    assert_has(y, "fields: {\"host\": \"hostname\", \"ip\": \"ip_address\", \"pid\": \"proc_id\"}");
    assert_has(y, "labels: {\"job\": \"syslog\"}");
    assert_lacks(y, "approximated: facility and severity"); /* neither is mapped */
    assert_loads(y);
    free(y);
    /* no rules: Promtail's labels are the static ones only */
    assert_int_equal(conv(none, 0, &y, err, sizeof(err), NULL), 0);
    assert_has(y, "fields: {}");
    assert_loads(y);
    free(y);
    assert_int_equal(conv(conn_host, 0, &y, err, sizeof(err), NULL), -EINVAL);
    assert_has(err, "p.yaml:8:9: relabel_configs: source label '__syslog_connection_hostname' "
                    "is not supported");
    assert_int_equal(conv(drop, 0, &y, err, sizeof(err), NULL), -EINVAL);
    assert_has(err, "p.yaml:7:9: this relabel_configs rule is not supported");
    assert_int_equal(conv(regex, 0, &y, err, sizeof(err), NULL), -EINVAL);
    assert_has(err, "p.yaml:7:9: this relabel_configs rule is not supported");
    /* lenient: the rule left out, said */
    assert_int_equal(conv(drop, LC_PT_LENIENT, &y, err, sizeof(err), NULL), 0);
    assert_has(err, "p.yaml:7:9: warning: this relabel_configs rule");
    assert_has(y, "fields: {}");
    free(y);
    /* the native option checks its fields */
    assert_int_not_equal(lc_config_load_string(bad_field, "n.yaml", &cfg, err, sizeof(err)), 0);
    assert_has(err, "unknown field");
#undef SYSLOG_HEAD
}

static void test_match_static(void **state)
{
    static const char text[] =
        "clients: [{url: http://127.0.0.1:3100/loki/api/v1/push}]\n"
        "scrape_configs:\n"
        "  - job_name: a\n"
        "    static_configs:\n"
        "      - labels: {app: loki, __path__: /l/*.log}\n"
        "      - labels: {app: pokey, __path__: /p/*.log}\n"
        "    pipeline_stages:\n"
        "      - match: {selector: '{app=\"loki\"}', stages: [{output: {source: msg}}]}\n"
        "      - match: {selector: '{app=~\"pok.*\", x!~\".+\"}', action: drop}\n"
        "      - labeldrop: [app]\n"
        "      - match: {selector: '{app=\"loki\"}', stages: [{output: {source: never}}]}\n";
    char *y = NULL, err[1024];
    const char *second;
    (void)state;
    assert_int_equal(conv(text, 0, &y, err, sizeof(err), NULL), 0);
    second = strstr(y, "name: \"a-2\"");
    assert_non_null(second);
    /* input a (app=loki): the first match's stages, no drop; input a-2: the drop only */
    assert_has(y, "- output: {source: \"msg\"}");
    assert_true(strstr(y, "- output: {source: \"msg\"}") < second);
    assert_lacks(second, "- output: {source: \"msg\"}");
    assert_has(second, "- drop: {expression: \"\", reason: \"match_stage\"}");
    assert_true(strstr(y, "- drop:") > second);
    assert_has(y, "- labeldrop: {names: [\"app\"]}");
    assert_lacks(y, "source: \"never\""); /* app was dropped: {app="loki"} is false for both */
    assert_loads(y);
    free(y);
    y = NULL;
    /* a label a stage sets per line, a line filter: the native match stage, per record */
    assert_int_equal(conv(HEAD "    pipeline_stages:\n"
                               "      - labels: {level: ''}\n"
                               "      - match: {selector: '{level=\"error\"}', action: drop}\n"
                               "      - match: {selector: '{level=~\"w.*\"}', stages: [{labels: "
                               "{lvl: ''}}, {match: {selector: '{lvl=\"x\"}', stages: "
                               "[{output: {source: m}}]}}]}\n"
                               "      - match: {selector: '{job=\"app\"} |= \"x\"', action: "
                               "drop}\n",
                          0, &y, err, sizeof(err), NULL),
                     0);
    assert_has(y, "      - match:\n          selector: \"{level=\\\"error\\\"}\"\n"
                  "          action: drop\n          drop_counter_reason: \"match_stage\"\n");
    assert_has(y, "          stages:\n          - labels: {fields: {\"lvl\": \"\"}");
    assert_has(y, "          - match:\n              selector: \"{lvl=\\\"x\\\"}\"\n"
                  "              stages:\n              - output: {source: \"m\"}");
    /* job is a static label: the stream selector is decided, the line filter per record */
    assert_has(y, "selector: \"{job=\\\"app\\\"} |= \\\"x\\\"\"");
    assert_loads(y);
    free(y);
    y = NULL;
    assert_int_equal(conv(HEAD "    pipeline_stages:\n"
                               "      - match: {selector: 'job=\"app\"', action: drop}\n",
                          0, &y, err, sizeof(err), NULL),
                     -EINVAL);
    assert_has(err, "match selector 'job=\"app\"': bad selector");
    assert_int_equal(conv(HEAD "    pipeline_stages:\n"
                               "      - labels: {level: ''}\n"
                               "      - match: {selector: '{level=\"e\"}', stages: "
                               "[{static_labels: {a: b}}]}\n",
                          0, &y, err, sizeof(err), NULL),
                     -EINVAL);
    assert_has(err, "static_labels in a match decided per line are not supported");
}

/* labeldrop: one label set made per input set, at most max_sets; beyond, labels unchanged. */
static void test_labeldrop_stage(void **state)
{
    static const char yaml[] = "inputs:\n"
                               "  - type: file\n"
                               "    name: f\n"
                               "    paths: [/nonexistent]\n"
                               "    process:\n"
                               "      - labeldrop: {names: [filename, pod], max_sets: 2}\n"
                               "      - labelallow: {names: [job, pod]}\n"
                               "outputs: [{type: null, name: n}]\n";
    struct lc_config *cfg = NULL;
    struct lc_chain *ch = NULL;
    struct lc_labels *sets[3] = {0};
    struct lc_prec *r;
    char err[512];
    (void)state;
    assert_int_equal(lc_config_load_string(yaml, "t", &cfg, err, sizeof(err)), 0);
    assert_int_equal(lc_chain_new(cfg->inputs[0].process, NULL, "f", &ch), 0);
    for (int i = 0; i < 3; i++) {
        char pod[16];
        struct lc_kv kv[3] = {{.key = "job", .value = "j"},
                              {.key = "filename", .value = "/x"},
                              {.key = "pod", .value = pod}};
        snprintf(pod, sizeof(pod), "p%d", i);
        assert_int_equal(lc_labels_intern(kv, 3, &sets[i]), 0);
    }
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 3; i++) {
            r = lc_chain_run(ch, NULL, sets[i], 1, "x", 1);
            assert_non_null(r);
            if (i < 2) {
                assert_string_equal(r->labels->json, "{\"job\":\"j\"}");
            } else { /* past max_sets: labeldrop fails (counted) and keeps them */
                assert_string_equal(r->labels->json, "{\"job\":\"j\",\"pod\":\"p2\"}");
            }
        }
    lc_chain_free(ch);
    for (int i = 0; i < 3; i++)
        lc_labels_release(sets[i]);
    lc_config_free(cfg);
}

/* tenant: source, label or value -> the native stage; the record gets the tenant. */
static void test_tenant_stage(void **state)
{
    static const char text[] = HEAD "    pipeline_stages:\n"
                                    "      - logfmt: {mapping: {org: \"\"}}\n"
                                    "      - tenant: {value: fallback}\n"
                                    "      - tenant:\n"
                                    "          source: org\n"
                                    "      - tenant: {label: team}\n";
    static const char two[] = HEAD "    pipeline_stages:\n"
                                   "      - tenant: {source: org, value: x}\n";
    static const char extra[] = HEAD "    pipeline_stages:\n"
                                     "      - tenant: {source: org, other: x}\n";
    struct lc_config *cfg = NULL;
    struct lc_chain *ch = NULL;
    struct lc_prec *r;
    char *y = NULL, err[1024];
    (void)state;
    assert_int_equal(conv(text, 0, &y, err, sizeof(err), NULL), 0);
    assert_has(y, "- tenant: {value: \"fallback\"}");
    assert_has(y, "- tenant: {source: \"org\"}");
    assert_has(y, "- tenant: {label: \"team\"}");
    assert_int_equal(lc_config_load_string(y, "converted", &cfg, err, sizeof(err)), 0);
    assert_int_equal(lc_chain_new(cfg->inputs[0].process, NULL, "f", &ch), 0);
    r = lc_chain_run(ch, NULL, NULL, 1, "org=acme msg=x", 14);
    assert_string_equal(r->tenant, "acme");
    r = lc_chain_run(ch, NULL, NULL, 1, "msg=x", 5);
    assert_string_equal(r->tenant, "fallback"); /* Promtail: no source value, no change */
    lc_chain_free(ch);
    lc_config_free(cfg);
    free(y);
    y = NULL;
    assert_int_equal(conv(two, 0, &y, err, sizeof(err), NULL), -EINVAL);
    assert_has(err, "p.yaml:10:17: tenant needs exactly one of 'source', 'label' or 'value'");
    assert_int_equal(conv(extra, 0, &y, err, sizeof(err), NULL), -EINVAL);
    assert_has(err, "tenant.other is not supported");
}

/* Positions import ------------------------------------------------------------------------- */

static char root[512];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_positions_import(void **state)
{
    const char *base = getenv("LC_TEST_TMP");
    char a[600], b[600], gone[600], pos[600], pt[2400], cfgtext[2048], err[512], key[700];
    struct lc_promtail_result r = {0};
    struct lc_config *cfg = NULL;
    struct lc_ckpt *ck = NULL;
    struct lc_ckpt_entry e;
    struct stat st;
    size_t imp, reset, skipped;
    (void)state;

    snprintf(root, sizeof(root), "%s/test_promtail.XXXXXX", base ? base : "/tmp");
    if (base)
        mkdir(base, 0700);
    assert_non_null(mkdtemp(root));
    snprintf(a, sizeof(a), "%s/a.log", root);
    snprintf(b, sizeof(b), "%s/b.log", root);
    snprintf(gone, sizeof(gone), "%s/gone.log", root);
    snprintf(pos, sizeof(pos), "%s/positions.yaml", root);
    write_file(a, "0123456789\n0123456789\n"); /* 22 bytes */
    write_file(b, "short\n");                  /* 6 bytes, Promtail was at 100 */
    snprintf(pt, sizeof(pt),
             "positions:\n  \"%s\": \"11\"\n  \"%s\": \"100\"\n  \"%s\": \"5\"\n"
             "  /elsewhere/x.log: \"7\"\n  journal-journal: \"s=abc;i=1\"\n",
             a, b, gone);
    write_file(pos, pt);
    snprintf(cfgtext, sizeof(cfgtext),
             "positions: {filename: %s}\n"
             "clients: [{url: http://127.0.0.1:3100/loki/api/v1/push}]\n"
             "scrape_configs:\n"
             "  - job_name: app\n"
             "    static_configs: [{labels: {__path__: '%s/*.log'}}]\n"
             "  - job_name: journal\n"
             "    journal: {labels: {job: j}}\n",
             pos, root);
    assert_int_equal(
        lc_promtail_convert(cfgtext, strlen(cfgtext), "p.yaml", 0, NULL, &r, err, sizeof(err)), 0);
    assert_string_equal(r.positions, pos);
    assert_int_equal(lc_config_load_string(r.yaml, "converted", &cfg, err, sizeof(err)), 0);
    assert_int_equal(lc_ckpt_open(&ck, root, err, sizeof(err)), 0);

    /* a row that exists is never overwritten */
    assert_int_equal(stat(b, &st), 0);
    snprintf(key, sizeof(key), "file:app:%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    e = (struct lc_ckpt_entry){.key = key, .path = b, .pos = {.offset = 3}};
    assert_int_equal(lc_ckpt_put(ck, &e), 0);
    assert_int_equal(
        lc_promtail_import_positions(ck, cfg, pos, &imp, &reset, &skipped, err, sizeof(err)), 0);
    /* a.log and the journal cursor; b has a row; gone.log and /elsewhere are skipped */
    assert_int_equal(imp, 2);
    assert_int_equal(reset, 0);
    assert_int_equal(skipped, 3);
    assert_int_equal(lc_ckpt_get(ck, key, &e), 0);
    assert_int_equal(e.pos.offset, 3);
    assert_int_equal(stat(a, &st), 0);
    snprintf(key, sizeof(key), "file:app:%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    assert_int_equal(lc_ckpt_get(ck, key, &e), 0);
    assert_int_equal(e.pos.offset, 11);
    assert_int_equal(e.fp_len, 0);
    assert_int_equal(lc_ckpt_get(ck, "journal:journal", &e), 0);
    assert_string_equal(e.cursor, "s=abc;i=1");

    /* once per store: a second import does nothing */
    assert_int_equal(
        lc_promtail_import_positions(ck, cfg, pos, &imp, &reset, &skipped, err, sizeof(err)), 0);
    assert_int_equal(imp + reset + skipped, 0);
    lc_ckpt_free(ck);
    ck = NULL;

    /* a fresh store: the shorter file starts from 0 (counted) */
    snprintf(pt, sizeof(pt), "%s/fresh", root);
    assert_int_equal(lc_ckpt_open(&ck, pt, err, sizeof(err)), 0);
    assert_int_equal(
        lc_promtail_import_positions(ck, cfg, pos, &imp, &reset, &skipped, err, sizeof(err)), 0);
    assert_int_equal(imp, 3);
    assert_int_equal(reset, 1);
    assert_int_equal(stat(b, &st), 0);
    snprintf(key, sizeof(key), "file:app:%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    assert_int_equal(lc_ckpt_get(ck, key, &e), 0);
    assert_int_equal(e.pos.offset, 0);
    lc_ckpt_free(ck);
    ck = NULL;

    /* not a positions file: an error naming it; a missing one: nothing to import */
    write_file(pos, "- a\n- b\n");
    snprintf(pt, sizeof(pt), "%s/third", root);
    assert_int_equal(lc_ckpt_open(&ck, pt, err, sizeof(err)), 0);
    assert_int_equal(
        lc_promtail_import_positions(ck, cfg, pos, &imp, &reset, &skipped, err, sizeof(err)),
        -EINVAL);
    assert_has(err, "not a Promtail positions file");
    unlink(pos);
    assert_int_equal(
        lc_promtail_import_positions(ck, cfg, pos, &imp, &reset, &skipped, err, sizeof(err)), 0);
    assert_int_equal(imp, 0);
    lc_ckpt_free(ck);
    lc_config_free(cfg);
    lc_promtail_result_free(&r);
    {
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        assert_int_equal(system(cmd), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_unknown_stage),
        cmocka_unit_test(test_json_expressions),
        cmocka_unit_test(test_timestamp_layouts),
        cmocka_unit_test(test_replace_groups),
        cmocka_unit_test(test_template_and_clients),
        cmocka_unit_test(test_bad_documents),
        cmocka_unit_test(test_docker_sd),
        cmocka_unit_test(test_kubernetes_sd),
        cmocka_unit_test(test_syslog_relabel),
        cmocka_unit_test(test_match_static),
        cmocka_unit_test(test_labeldrop_stage),
        cmocka_unit_test(test_tenant_stage),
        cmocka_unit_test(test_positions_import),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
