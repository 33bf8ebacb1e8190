/*
 * /init of the layer-2 matrix initramfs: the cross-built `rootemu` checks itself on a
 * real foreign kernel (`rootemu selfcheck --install`, see cli/src/selfcheck.rs).
 *
 * Built statically with the target's cross gcc. pid 1 mounts devtmpfs, proc and a
 * tmpfs /tmp, opens /dev/console, forks a child that drops to 1000:1000 and execs
 * `/rootemu selfcheck --install` (with `--consistent` when the initramfs has a file
 * /consistent), then powers the machine off. The child's output
 * (`CHECK ...`, `RESULT <abi> <p>/<t>`) goes to the console; pid 1 adds
 * `MATRIX child exit N` or `MATRIX child killed by signal N`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "init_console.h"

#define UID 1000
#define GID 1000

int main(void)
{
    init_console();
    printf("MATRIX selfcheck-init start\n");
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        if (setgroups(0, NULL) != 0 || setresgid(GID, GID, GID) != 0 || setresuid(UID, UID, UID) != 0) {
            printf("MATRIX drop to %d:%d failed: %s\n", UID, GID, strerror(errno));
            _exit(111);
        }
        char *argv[] = {"/rootemu", "selfcheck", "--install", NULL, NULL};
        if (access("/consistent", F_OK) == 0) argv[3] = "--consistent";
        char *envp[] = {"PATH=/", "TMPDIR=/tmp", NULL};
        execve(argv[0], argv, envp);
        printf("MATRIX exec /rootemu failed: %s\n", strerror(errno));
        _exit(112);
    }
    int st = 0;
    if (p < 0) printf("MATRIX fork: %s\n", strerror(errno));
    else waitpid(p, &st, 0);
    if (WIFSIGNALED(st)) printf("MATRIX child killed by signal %d\n", WTERMSIG(st));
    else printf("MATRIX child exit %d\n", WEXITSTATUS(st));
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
    printf("MATRIX reboot: %s\n", strerror(errno));
    return 1; /* pid 1 exits: panic=-1 reboots, -no-reboot ends qemu */
}
