/* SPDX-License-Identifier: MIT */
/* kubernetes.h: the kubernetes input's discovery labels, for its `relabel:` option. */
#ifndef LC_INPUT_KUBERNETES_H
#define LC_INPUT_KUBERNETES_H

#include "core/relabel.h"

/*
 * Relabels the pod log at `path` (<root>/<namespace>_<pod>_<uid>/<container>/
 * <n>.log): the input's static labels and the discovery labels
 * __meta_kubernetes_namespace, _pod_name, _pod_uid, _pod_container_name and,
 * when node is not NULL, _pod_node_name, through the rules, once per log.
 * 1: kept, the labels in s (lc_relabel_set_free them); 0: dropped (by a
 * keep/drop rule or no label left); -EINVAL: not a pod log path; -ENOMEM.
 */
int lc_k8s_relabel(struct lc_relabel_rule *rules, size_t n, const struct lc_kvlist *stat,
                   const char *root, const char *node, const char *path, struct lc_relabel_set *s);

#endif
