/* Calls that only succeed under rootemu's root emulation (run by tests/run_unprivileged.rs).
 * Built twice: natively (x86_64) and with i686-linux-gnu-gcc -static (i386, whose glibc
 * uses chown32/setuid32/setgroups32; the 16-bit chown (182) and setuid (23) are issued
 * directly). Ids 50 are unmapped in the namespace, so without emulation each call fails.
 * Usage: fakeroot_calls FILE. Prints one line per call; exits 0 only when every
 * call returned 0, else 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static int failures;

static void check(const char *what, long rc) {
    if (rc == 0) {
        printf("ok %s\n", what);
    } else {
        printf("FAIL %s: %s\n", what, strerror(errno));
        failures++;
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    const char *file = argv[1];
    gid_t groups[2] = {0, 50};
    check("chown(FILE, 0, 50)", chown(file, 0, 50));
    check("setgroups({0, 50})", setgroups(2, groups));
    check("setgid(50)", setgid(50));
    check("setuid(50)", setuid(50));
#if defined(__i386__)
    printf("abi i386\n");
    check("syscall 182 chown16(FILE, 0, 50)", syscall(182, file, 0, 50));
    check("syscall 23 setuid16(50)", syscall(23, 50));
    check("syscall 212 chown32(FILE, 0, 50)", syscall(212, file, 0, 50));
#else
    printf("abi x86_64\n");
    check("syscall SYS_chown(FILE, 0, 50)", syscall(SYS_chown, file, 0, 50));
#endif
    return failures ? 1 : 0;
}
