/* SPDX-License-Identifier: MIT */
/* docker_file.h: the docker input's file mode (docker_file.c): Docker's json-file logs. */
#ifndef LC_INPUT_DOCKER_FILE_H
#define LC_INPUT_DOCKER_FILE_H

#include "input/docker.h"

/* Tails <root>/containers/<id>/<id>-json.log through the file input; works without the socket. */
extern const struct lc_docker_mode_ops lc_docker_mode_file;

#endif
