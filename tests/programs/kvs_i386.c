/* The kernel's side of tests/kernel_vs_sim_i386.rs. Built with i686-linux-gnu-gcc -static,
 * so its syscalls reach the kernel as AUDIT_ARCH_I386 (int 0x80 / the vDSO).
 * Usage: kvs_i386 FILTER.raw < CASES
 * FILTER.raw: struct sock_filter[] (as `rootemu filter export --format raw` writes it).
 * CASES: one call per line, "NR A0 A1 A2 A3 A4 A5" in decimal; an argument `P` stands
 * for a pointer to a path whose directory does not exist (every real call on it fails).
 * Drops root (when run as root), installs the filter, issues every call, and prints
 * "KVS NR A0..A5 RET ERRNO" per call (P as the pointer value passed; RET as the kernel
 * returned it, ERRNO when RET < 0). */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_INSNS 4096
#define MAX_CASES 4096

static const char missing[] = "/nonexistent-rootemu-kvs/node";

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILTER.raw < CASES\n", argv[0]);
        return 2;
    }
    static struct sock_filter insns[MAX_INSNS];
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    size_t n = fread(insns, sizeof insns[0], MAX_INSNS, f);
    fclose(f);
    if (n == 0) {
        fprintf(stderr, "%s: no instructions\n", argv[1]);
        return 2;
    }

    /* Read every case before the filter is in place. */
    static unsigned long cases[MAX_CASES][7];
    int count = 0;
    char line[512];
    while (count < MAX_CASES && fgets(line, sizeof line, stdin)) {
        char *p = line;
        int k;
        for (k = 0; k < 7; k++) {
            while (*p == ' ') p++;
            if (*p == 'P') {
                cases[count][k] = (unsigned long)missing;
                p++;
            } else {
                char *end;
                cases[count][k] = strtoul(p, &end, 10);
                if (end == p) break;
                p = end;
            }
        }
        if (k == 7) count++;
    }

    /* Unprivileged, so that setuid & co. fail unless faked. */
    if (geteuid() == 0) {
        if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) {
            perror("dropping root");
            return 2;
        }
    }
    struct sock_fprog prog = {.len = (unsigned short)n, .filter = insns};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
        perror("prctl(PR_SET_NO_NEW_PRIVS)");
        return 2;
    }
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) {
        perror("seccomp(SECCOMP_SET_MODE_FILTER)");
        return 2;
    }
    for (int i = 0; i < count; i++) {
        unsigned long *c = cases[i];
        errno = 0;
        long ret = syscall((long)c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
        int e = ret < 0 ? errno : 0;
        printf("KVS %lu", c[0]);
        for (int k = 1; k < 7; k++) printf(" %lu", c[k]); /* P as the pointer the kernel saw */
        printf(" %ld %d\n", ret, e);
        fflush(stdout);
    }
    return 0;
}
