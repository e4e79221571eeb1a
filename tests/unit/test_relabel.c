/* SPDX-License-Identifier: MIT */
/* test_relabel.c: relabel_configs semantics (replace, keep, drop, labelmap, labeldrop, labelkeep).
 */
#include "core/config.h"
#include "core/plugin.h"
#include "core/relabel.h"
#include "input/docker.h"
#include "input/kubernetes.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define MAXR 8

struct rules {
    struct lc_relabel_rule r[MAXR];
    size_t n;
};

/* Adds a rule: sources "a,b" (comma-separated, or NULL); NULL fields keep their defaults. */
static void add(struct rules *R, const char *action, const char *sources, const char *regex,
                const char *target, const char *repl)
{
    struct lc_relabel_rule *r = &R->r[R->n++];
    char err[256];

    memset(r, 0, sizeof(*r));
    assert_int_equal(lc_options_defaults(lc_relabel_options, r), 0);
    if (action)
        assert_int_equal(lc_option_set(&lc_relabel_options[0], r, action), 0);
    if (sources) {
        char buf[256], *save = NULL;
        snprintf(buf, sizeof(buf), "%s", sources);
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            r->source_labels.v =
                realloc(r->source_labels.v, (r->source_labels.n + 1) * sizeof(char *));
            r->source_labels.v[r->source_labels.n++] = strdup(t);
        }
    }
    if (regex)
        assert_int_equal(lc_option_set(&lc_relabel_options[3], r, regex), 0);
    if (target)
        assert_int_equal(lc_option_set(&lc_relabel_options[4], r, target), 0);
    if (repl)
        assert_int_equal(lc_option_set(&lc_relabel_options[5], r, repl), 0);
    assert_int_equal(lc_relabel_prepare(r, err, sizeof(err)), 0);
}

static void rules_free(struct rules *R)
{
    for (size_t i = 0; i < R->n; i++)
        lc_relabel_rule_free(&R->r[i]);
    R->n = 0;
}

static void docker_set(struct lc_relabel_set *s, const char *name)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(lc_relabel_set_put(s, "__meta_docker_container_name", name), 0);
    assert_int_equal(lc_relabel_set_put(s, "__meta_docker_container_id", "abc123"), 0);
    assert_int_equal(
        lc_relabel_set_put(s, "__meta_docker_container_label_com_docker_compose_service", "web"),
        0);
    assert_int_equal(lc_relabel_set_put(s, "__meta_docker_container_log_stream", "stdout"), 0);
    assert_int_equal(lc_relabel_set_put(s, "job", "docker"), 0);
}

/* Promtail's documented docker_sd example: /(.*) -> container; __ labels removed. */
static void test_replace_container_name(void **state)
{
    (void)state;
    struct rules R = {0};
    struct lc_relabel_set s;

    add(&R, NULL, "__meta_docker_container_name", "/(.*)", "container", NULL);
    add(&R, "replace", "__meta_docker_container_log_stream", NULL, "logstream", NULL);
    docker_set(&s, "/web-1");
    assert_int_equal(lc_relabel_apply(R.r, R.n, &s), 1);
    assert_string_equal(lc_relabel_set_get(&s, "container"), "web-1");
    assert_string_equal(lc_relabel_set_get(&s, "logstream"), "stdout");
    assert_string_equal(lc_relabel_set_get(&s, "job"), "docker");
    assert_null(lc_relabel_set_get(&s, "__meta_docker_container_name"));
    assert_int_equal(s.n, 3);
    lc_relabel_set_free(&s);
    rules_free(&R);
}

/* Anchoring: "web" does not match "/web-1" (Prometheus anchors both ends); no match: no change. */
static void test_replace_anchored_and_groups(void **state)
{
    (void)state;
    struct rules R = {0};
    struct lc_relabel_set s;

    add(&R, NULL, "__meta_docker_container_name", "web", "partial", NULL);
    add(&R, NULL, "__meta_docker_container_name,job", "/(?P<svc>[a-z]+)-([0-9]+);(.*)", "${2}_x",
        "$svc-${3}-$$-$9-$2x");
    add(&R, NULL, "job", NULL, "fixed", "static");
    add(&R, NULL, "__meta_docker_container_id", "abc(.*)", "job", "${1}"); /* job := "123" */
    add(&R, NULL, "__meta_docker_container_id", "(.*)", "empty", "");      /* empty: not set */
    docker_set(&s, "/web-1");
    assert_int_equal(lc_relabel_apply(R.r, R.n, &s), 1);
    assert_null(lc_relabel_set_get(&s, "partial"));
    assert_null(lc_relabel_set_get(&s, "1_x")); /* "1_x" starts with a digit: invalid, skipped */
    assert_string_equal(lc_relabel_set_get(&s, "fixed"), "static");
    assert_string_equal(lc_relabel_set_get(&s, "job"), "123");
    assert_null(lc_relabel_set_get(&s, "empty"));
    lc_relabel_set_free(&s);
    rules_free(&R);

    add(&R, NULL, "__meta_docker_container_name,job", "/(?P<svc>[a-z]+)-([0-9]+);(.*)", "t_${2}",
        "$svc-${3}-$$-$9-$2x");
    docker_set(&s, "/web-1");
    assert_int_equal(lc_relabel_apply(R.r, R.n, &s), 1);
    /* $9 (no such group) and $2x (group "2x") are empty, as Go's Expand */
    assert_string_equal(lc_relabel_set_get(&s, "t_1"), "web-docker-$--");
    lc_relabel_set_free(&s);
    rules_free(&R);
}

static void test_replace_empty_removes(void **state)
{
    (void)state;
    struct rules R = {0};
    struct lc_relabel_set s;

    add(&R, NULL, "__meta_nope", NULL, "job", NULL); /* missing source: "" matches (.*) -> "" */
    docker_set(&s, "/a");
    assert_int_equal(lc_relabel_apply(R.r, R.n, &s), 1);
    assert_null(lc_relabel_set_get(&s, "job"));
    assert_int_equal(s.n, 0);
    lc_relabel_set_free(&s);
    rules_free(&R);
}

static void test_keep_drop(void **state)
{
    (void)state;
    struct rules R = {0};
    struct lc_relabel_set s;

    add(&R, "keep", "__meta_docker_container_label_com_docker_compose_service", "web|api", NULL,
        NULL);
    docker_set(&s, "/a");
    assert_int_equal(lc_relabel_apply(R.r, R.n, &s), 1);
    lc_relabel_set_free(&s);
    rules_free(&R);

    add(&R, "keep", "__meta_docker_container_label_com_docker_compose_service", "we", NULL, NULL);
    docker_set(&s, "/a");
    assert_int_equal(lc_relabel_apply(R.r, R.n, &s), 0);
    lc_relabel_set_free(&s);
    rules_free(&R);

    add(&R, "drop", "__meta_docker_container_name", "/a", NULL, NULL);
    docker_set(&s, "/a");
    assert_int_equal(lc_relabel_apply(R.r, R.n, &s), 0);
    lc_relabel_set_free(&s);
    docker_set(&s, "/ab");
    assert_int_equal(lc_relabel_apply(R.r, R.n, &s), 1);
    lc_relabel_set_free(&s);
    rules_free(&R);
}

static void test_labelmap_labeldrop_labelkeep(void **state)
{
    (void)state;
    struct rules R = {0};
    struct lc_relabel_set s;

    add(&R, "labelmap", NULL, "__meta_docker_container_label_(.+)", NULL, NULL);
    add(&R, "labeldrop", NULL, "log_.*", NULL, NULL);
    docker_set(&s, "/a");
    assert_int_equal(lc_relabel_set_put(&s, "__meta_docker_container_label_log_level", "x"), 0);
    assert_int_equal(lc_relabel_apply(R.r, R.n, &s), 1);
    assert_string_equal(lc_relabel_set_get(&s, "com_docker_compose_service"), "web");
    assert_null(lc_relabel_set_get(&s, "log_level"));
    assert_string_equal(lc_relabel_set_get(&s, "job"), "docker");
    assert_int_equal(s.n, 2);
    lc_relabel_set_free(&s);
    rules_free(&R);

    add(&R, "labelmap", NULL, "__meta_docker_(container)_(id|name)", NULL, "${1}_$2");
    add(&R, "labelkeep", NULL, "container_.*|__.*", NULL, NULL);
    docker_set(&s, "/a");
    assert_int_equal(lc_relabel_apply(R.r, R.n, &s), 1);
    assert_string_equal(lc_relabel_set_get(&s, "container_name"), "/a");
    assert_string_equal(lc_relabel_set_get(&s, "container_id"), "abc123");
    assert_int_equal(s.n, 2);
    lc_relabel_set_free(&s);
    rules_free(&R);
}

static void test_prepare_errors_and_limit(void **state)
{
    (void)state;
    struct lc_relabel_rule r;
    struct lc_relabel_set s = {0};
    char err[256], k[32];

    memset(&r, 0, sizeof(r));
    assert_int_equal(lc_options_defaults(lc_relabel_options, &r), 0);
    assert_int_equal(lc_relabel_prepare(&r, err, sizeof(err)), -EINVAL); /* no target_label */
    assert_non_null(strstr(err, "target_label"));
    assert_int_equal(lc_option_set(&lc_relabel_options[4], &r, "t"), 0);
    assert_int_equal(lc_relabel_prepare(&r, err, sizeof(err)), -EINVAL); /* no source_labels */
    assert_int_equal(lc_option_set(&lc_relabel_options[0], &r, "labeldrop"), 0);
    assert_int_equal(lc_option_set(&lc_relabel_options[3], &r, "(unclosed"), 0);
    assert_int_equal(lc_relabel_prepare(&r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "regex"));
    lc_relabel_rule_free(&r);

    for (int i = 0; i < LC_RELABEL_MAX_LABELS; i++) {
        snprintf(k, sizeof(k), "l%d", i);
        assert_int_equal(lc_relabel_set_put(&s, k, "v"), 0);
    }
    assert_int_equal(lc_relabel_set_put(&s, "one_more", "v"), -E2BIG);
    assert_int_equal(lc_relabel_set_put(&s, "l0", "w"), 0); /* replacing still works */
    assert_string_equal(lc_relabel_set_get(&s, "l0"), "w");
    lc_relabel_set_free(&s);
}

/* The docker input's `relabel:` list (LC_OPT_SECLIST): parsed, prepared, errors at the item. */
static void test_docker_relabel_option(void **state)
{
    (void)state;
    static const char head[] = "outputs: [{type: stdout, name: out}]\n"
                               "inputs:\n  - type: docker\n    name: d\n    relabel:\n"
                               "      - {source_labels: [__meta_docker_container_name], "
                               "regex: '/(.*)', target_label: container}\n";
    struct lc_config *cfg = NULL;
    const struct lc_docker_conf *c;
    const struct lc_relabel_rule *r;
    char yaml[4096], err[512];
    struct lc_relabel_set s = {0};

    lc_config_input_lookup = lc_input_plugin_find;
    lc_config_output_lookup = lc_output_plugin_find;
    snprintf(yaml, sizeof(yaml),
             "%s      - {action: keep, source_labels: [a, b], separator: '-', "
             "regex: 'x-.*'}\n",
             head);
    assert_int_equal(lc_config_load_string(yaml, "t.yaml", &cfg, err, sizeof(err)), 0);
    c = cfg->inputs[0].conf;
    assert_int_equal(c->relabel.n, 2);
    r = c->relabel.v;
    assert_int_equal(r[0].action, LC_RELABEL_REPLACE);
    assert_string_equal(r[0].replacement, "$1");
    assert_string_equal(r[1].separator, "-");
    assert_int_equal(r[1].action, LC_RELABEL_KEEP);
    assert_int_equal(lc_relabel_set_put(&s, "__meta_docker_container_name", "/web"), 0);
    assert_int_equal(lc_relabel_set_put(&s, "a", "x"), 0);
    assert_int_equal(lc_relabel_set_put(&s, "b", "y"), 0);
    assert_int_equal(lc_relabel_apply(c->relabel.v, c->relabel.n, &s), 1); /* prepared at load */
    assert_string_equal(lc_relabel_set_get(&s, "container"), "web");
    lc_relabel_set_free(&s);
    lc_config_free(cfg);

    /* a bad regex: the item's line, and its path */
    snprintf(yaml, sizeof(yaml), "%s      - {action: drop, source_labels: [a], regex: '(x'}\n",
             head);
    assert_int_not_equal(lc_config_load_string(yaml, "t.yaml", &cfg, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "t.yaml:7:"));
    assert_non_null(strstr(err, "relabel[1]"));
    assert_non_null(strstr(err, "regex"));
    /* an unknown key, a missing target_label, not a list */
    snprintf(yaml, sizeof(yaml), "%s      - {action: replace, source_labels: [a], modulus: 3}\n",
             head);
    assert_int_not_equal(lc_config_load_string(yaml, "t.yaml", &cfg, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "modulus"));
    snprintf(yaml, sizeof(yaml), "%s      - {source_labels: [a]}\n", head);
    assert_int_not_equal(lc_config_load_string(yaml, "t.yaml", &cfg, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "target_label"));
    assert_int_not_equal(lc_config_load_string("outputs: [{type: stdout, name: out}]\n"
                                               "inputs: [{type: docker, name: d, relabel: x}]\n",
                                               "t.yaml", &cfg, err, sizeof(err)),
                         0);
    assert_non_null(strstr(err, "sequence of mappings"));
    /* at the limit of 64 rules, and one over */
    {
        size_t o = (size_t)snprintf(yaml, sizeof(yaml),
                                    "outputs: [{type: stdout, name: out}]\n"
                                    "inputs:\n  - type: docker\n    name: "
                                    "d\n    relabel:\n");
        for (int i = 0; i < 64; i++)
            o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, "      - {action: labeldrop}\n");
        assert_int_equal(lc_config_load_string(yaml, "t.yaml", &cfg, err, sizeof(err)), 0);
        lc_config_free(cfg);
        snprintf(yaml + o, sizeof(yaml) - o, "      - {action: labeldrop}\n");
        assert_int_not_equal(lc_config_load_string(yaml, "t.yaml", &cfg, err, sizeof(err)), 0);
        assert_non_null(strstr(err, "at most 64"));
    }
}

/* The kubernetes input's discovery labels from a pod log path, relabelled once per log. */
static void test_kubernetes_discovery(void **state)
{
    (void)state;
    struct rules R = {0};
    struct lc_relabel_set s;
    struct lc_kv kv = {.key = "cluster", .value = "c1"};
    struct lc_kvlist stat = {.v = &kv, .n = 1};
    static const char path[] = "/r/pods/shop_web-7f9c_0a1b-2c3d/app/0.log";

    add(&R, "drop", "__meta_kubernetes_namespace", "kube-.*", NULL, NULL);
    add(&R, NULL, "__meta_kubernetes_namespace", NULL, "namespace", NULL);
    add(&R, NULL, "__meta_kubernetes_pod_name", NULL, "pod", NULL);
    add(&R, NULL, "__meta_kubernetes_pod_uid", NULL, "uid", NULL);
    add(&R, NULL, "__meta_kubernetes_pod_container_name", NULL, "container", NULL);
    add(&R, NULL, "__meta_kubernetes_pod_node_name", NULL, "node_name", NULL);
    assert_int_equal(lc_k8s_relabel(R.r, R.n, &stat, "/r/pods/", "node-a", path, &s), 1);
    assert_int_equal(s.n, 6);
    assert_string_equal(lc_relabel_set_get(&s, "cluster"), "c1");
    assert_string_equal(lc_relabel_set_get(&s, "namespace"), "shop");
    assert_string_equal(lc_relabel_set_get(&s, "pod"), "web-7f9c");
    assert_string_equal(lc_relabel_set_get(&s, "uid"), "0a1b-2c3d");
    assert_string_equal(lc_relabel_set_get(&s, "container"), "app");
    assert_string_equal(lc_relabel_set_get(&s, "node_name"), "node-a");
    lc_relabel_set_free(&s);
    /* no node name known: no __meta_kubernetes_pod_node_name, so no node_name */
    assert_int_equal(lc_k8s_relabel(R.r, R.n, &stat, "/r/pods", NULL, path, &s), 1);
    assert_null(lc_relabel_set_get(&s, "node_name"));
    assert_int_equal(s.n, 5);
    lc_relabel_set_free(&s);
    /* the drop rule on the namespace; a path that is not a pod log's */
    assert_int_equal(lc_k8s_relabel(R.r, R.n, &stat, "/r/pods", "n",
                                    "/r/pods/kube-system_dns_u1/coredns/0.log", &s),
                     0);
    assert_int_equal(lc_k8s_relabel(R.r, R.n, &stat, "/r/pods", "n", "/r/pods/x/app/0.log", &s),
                     -EINVAL);
    rules_free(&R);
    /* a keep on the container name; no rule and no static label: nothing left, dropped */
    add(&R, "keep", "__meta_kubernetes_pod_container_name", "side.*", NULL, NULL);
    assert_int_equal(lc_k8s_relabel(R.r, R.n, &stat, "/r/pods", NULL, path, &s), 0);
    stat.n = 0;
    assert_int_equal(lc_k8s_relabel(R.r, 0, &stat, "/r/pods", NULL, path, &s), 0);
    rules_free(&R);
}

/* The kubernetes input takes the same relabel: option as the docker input. */
static void test_kubernetes_relabel_option(void **state)
{
    (void)state;
    struct lc_config *cfg = NULL;
    char err[512];

    lc_config_input_lookup = lc_input_plugin_find;
    lc_config_output_lookup = lc_output_plugin_find;
    assert_int_equal(lc_config_load_string("outputs: [{type: stdout, name: out}]\n"
                                           "inputs:\n  - type: kubernetes\n    name: k\n"
                                           "    relabel:\n      - {action: keep, source_labels: "
                                           "[__meta_kubernetes_namespace], regex: 'a|b'}\n",
                                           "t.yaml", &cfg, err, sizeof(err)),
                     0);
    lc_config_free(cfg);
    assert_int_not_equal(
        lc_config_load_string("outputs: [{type: stdout, name: out}]\n"
                              "inputs:\n  - type: kubernetes\n    name: k\n"
                              "    relabel:\n      - {action: keep, source_labels: [a], "
                              "regex: '(x'}\n",
                              "t.yaml", &cfg, err, sizeof(err)),
        0);
    if (!strstr(err, "regex"))
        fail_msg("%s", err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replace_container_name),
        cmocka_unit_test(test_replace_anchored_and_groups),
        cmocka_unit_test(test_replace_empty_removes),
        cmocka_unit_test(test_keep_drop),
        cmocka_unit_test(test_labelmap_labeldrop_labelkeep),
        cmocka_unit_test(test_prepare_errors_and_limit),
        cmocka_unit_test(test_docker_relabel_option),
        cmocka_unit_test(test_kubernetes_discovery),
        cmocka_unit_test(test_kubernetes_relabel_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
