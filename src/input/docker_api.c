/* SPDX-License-Identifier: MIT */
/* docker_api.c: the docker input's api mode (being written; refuses to start until then). */
#include "input/docker.h"

#include "core/log.h"

#include <errno.h>

int lc_docker_api_mode_init(struct lc_docker_in *d)
{
    lc_log(LC_LOG_ERROR, d->in->conf->name, "docker mode api is not available in this build yet");
    return -ENOTSUP;
}

int lc_docker_api_mode_start(struct lc_docker_in *d)
{
    (void)d;
    return -ENOTSUP;
}

void lc_docker_api_mode_pause(struct lc_docker_in *d)
{
    (void)d;
}

void lc_docker_api_mode_resume(struct lc_docker_in *d)
{
    (void)d;
}

bool lc_docker_api_mode_caught_up(struct lc_docker_in *d)
{
    (void)d;
    return true;
}

void lc_docker_api_mode_stop(struct lc_docker_in *d)
{
    (void)d;
}

void lc_docker_api_mode_free(struct lc_docker_in *d)
{
    (void)d;
}

void lc_docker_api_mode_event(struct lc_docker_in *d, const struct lc_docker_event *ev)
{
    (void)d;
    (void)ev;
}
