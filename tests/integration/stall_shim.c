/* SPDX-License-Identifier: MIT */
/*
 * stall_shim.c: an LD_PRELOAD library for test_disk_stall.py: a stalled disk on demand.
 * While the file named by LC_STALL_FILE exists, every fsync() and fdatasync()
 * sleeps LC_STALL_MS milliseconds (default 2000) before doing its work.
 * Built by the test with the system compiler; never linked into the agent.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void stall(void)
{
    const char *f = getenv("LC_STALL_FILE");
    if (!f || access(f, F_OK) != 0)
        return;
    const char *v = getenv("LC_STALL_MS");
    long ms = v ? atol(v) : 2000;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int fsync(int fd)
{
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    stall();
    return real(fd);
}

int fdatasync(int fd)
{
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    stall();
    return real(fd);
}
