/* SPDX-License-Identifier: MIT */
/* docker_api.h: the docker input's api mode (docker_api.c): the Engine API's log streams. */
#ifndef LC_INPUT_DOCKER_API_H
#define LC_INPUT_DOCKER_API_H

#include "input/docker.h"

/* Follows /containers/{id}/logs per running, selected container. */
extern const struct lc_docker_mode_ops lc_docker_mode_api;

#endif
