/*
 * /init of the layer-1 matrix initramfs: a real foreign kernel enforces rootemu's filter.
 *
 * Built statically with the TARGET's cross toolchain (-DMATRIX_ABI="name"): every
 * syscall number below comes from that toolchain's kernel headers (__NR_*), an
 * independent source of truth, not rootemu's tables.
 *
 * pid 1 mounts devtmpfs, proc and a tmpfs, opens /dev/console, forks a child and
 * powers the machine off when the child is done. The child drops to 1000:1000, runs
 * control checks (unfiltered: chown/setuid/mknod-of-a-device fail with EPERM), sets
 * PR_SET_NO_NEW_PRIVS, installs /filter.bpf (raw struct sock_filter array in the
 * target's byte order) and checks that
 *   - chown/setuid/setgroups/capset/mknod-of-a-device return 0 and change nothing;
 *   - everything else reaches the kernel: getuid is still 1000, mknod of a FIFO, a
 *     socket, a regular file creates it, mknod of the char 0:0 whiteout is decided
 *     by the kernel (6.1 creates it for an unprivileged caller; older ones: EPERM).
 * Output, one line each: `CHECK <name> ok|FAIL <detail>`, then `RESULT <abi> <p>/<t>`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include "init_console.h"

#ifndef MATRIX_ABI
#error "build with -DMATRIX_ABI=\"<abi>\""
#endif

#define UID 1000
#define GID 1000
#define W "/tmp/w"

static int passed, total;

static void out(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n >= (int)sizeof buf) n = sizeof buf - 1;
    (void)!write(1, buf, n);
}

/* Record one check: ok != 0 passes; detail explains a failure. */
static void check(const char *name, int ok, const char *fmt, ...)
{
    char detail[256] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    total++;
    if (ok) {
        passed++;
        out("CHECK %s ok\n", name);
    } else {
        out("CHECK %s FAIL %s\n", name, detail);
    }
}

/* The value of a raw syscall (r, errno) as text. */
static const char *rv(long r, int e)
{
    static char b[64];
    if (r == -1) snprintf(b, sizeof b, "ret=-1 errno=%d (%s)", e, strerror(e));
    else snprintf(b, sizeof b, "ret=%ld", r);
    return b;
}

static int owner_is(const char *path, int follow, unsigned uid, unsigned gid)
{
    struct stat st;
    int r = follow ? stat(path, &st) : lstat(path, &st);
    return r == 0 && st.st_uid == uid && st.st_gid == gid;
}

/* A faked chown-like call: returns 0 and the owner stays UID:GID. */
static void faked_chown(const char *name, long r, int e, const char *path, int follow)
{
    int same = owner_is(path, follow, UID, GID);
    check(name, r == 0 && same, "%s owner-unchanged=%d", rv(r, e), same);
}

/* Reads "Uid:"/"Gid:"/"Groups:" of /proc/self/status into buf. */
static int status_line(const char *key, char *buf, size_t len)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int found = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, strlen(key)) == 0) {
            snprintf(buf, len, "%s", line + strlen(key));
            found = 1;
            break;
        }
    }
    fclose(f);
    return found;
}

/* real, effective, saved and fs ids are all still 1000; no supplementary groups. */
static int creds_unchanged(char *why, size_t len)
{
    char u[128] = "", g[128] = "", gr[128] = "";
    unsigned a, b, c, d;
    status_line("Uid:", u, sizeof u);
    status_line("Gid:", g, sizeof g);
    status_line("Groups:", gr, sizeof gr);
    int ok = sscanf(u, "%u %u %u %u", &a, &b, &c, &d) == 4 && a == UID && b == UID && c == UID && d == UID;
    ok = ok && sscanf(g, "%u %u %u %u", &a, &b, &c, &d) == 4 && a == GID && b == GID && c == GID && d == GID;
    ok = ok && strspn(gr, " \t\n") == strlen(gr);
    if (!ok) snprintf(why, len, "Uid:%.30s Gid:%.30s Groups:%.30s", u, g, gr);
    for (char *p = why; *p; p++) if (*p == '\n' || *p == '\t') *p = ' ';
    return ok;
}

/* A faked set*id-like call: returns 0 and no credential changed. */
static void faked_cred(const char *name, long r, int e)
{
    char why[256] = "";
    int same = creds_unchanged(why, sizeof why);
    check(name, r == 0 && same, "%s creds-unchanged=%d %s", rv(r, e), same, why);
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* A faked mknod of a device: returns 0 and creates nothing. */
static void faked_mknod(const char *name, long r, int e, const char *path)
{
    int ex = exists(path);
    check(name, r == 0 && !ex, "%s created=%d", rv(r, e), ex);
    unlink(path);
}

/* A real mknod: returns 0 and the node has the requested type. */
static void real_mknod(const char *name, long r, int e, const char *path, mode_t type)
{
    struct stat st;
    int ok = lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == type;
    check(name, r == 0 && ok, "%s node-ok=%d", rv(r, e), ok);
    unlink(path);
}

/* The whiteout (char 0:0) goes to the kernel: 6.1 lets an unprivileged caller create
 * it (vfs_mknod's is_whiteout), older kernels say EPERM; faked would create nothing. */
static void whiteout(const char *name, long r, int e, const char *path)
{
    struct stat st;
    int node = lstat(path, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == 0;
    int ok = (r == 0 && node) || (r == -1 && e == EPERM && !exists(path));
    check(name, ok, "%s whiteout-node=%d", rv(r, e), node);
    if (ok) out("NOTE %s: the kernel %s\n", name, r == 0 ? "created the char 0:0 whiteout" : "said EPERM");
    unlink(path);
}

#define SYS(...) do { errno = 0; r = syscall(__VA_ARGS__); e = errno; } while (0)

static const unsigned DEV_NULL = 0x103;  /* 1:3, the kernel's new_encode_dev */
static const unsigned DEV_SDA = 0x800;   /* 8:0 */

static void faked_checks(void)
{
    long r;
    int e;
    const char *f = W "/file", *l = W "/link";
    int fd = open(f, O_RDONLY);

    /* --- chown family: faked (0, nothing changes) --- */
#ifdef __NR_chown
    SYS(__NR_chown, f, 0, 0);                 faked_chown("chown_root", r, e, f, 1);
    SYS(__NR_chown, f, 4242, 4242);           faked_chown("chown_unmapped", r, e, f, 1);
#endif
#ifdef __NR_lchown
    SYS(__NR_lchown, l, 0, 0);                faked_chown("lchown_root", r, e, l, 0);
#endif
#ifdef __NR_fchown
    SYS(__NR_fchown, fd, 0, 0);               faked_chown("fchown_root", r, e, f, 1);
    SYS(__NR_fchown, fd, 4242, 4242);         faked_chown("fchown_unmapped", r, e, f, 1);
#endif
    SYS(__NR_fchownat, AT_FDCWD, f, 0, 0, 0); faked_chown("fchownat_root", r, e, f, 1);
    SYS(__NR_fchownat, AT_FDCWD, l, 4242, 4242, AT_SYMLINK_NOFOLLOW);
    faked_chown("fchownat_nofollow_unmapped", r, e, l, 0);
#ifdef __NR_chown32
    SYS(__NR_chown32, f, 0, 0);               faked_chown("chown32_root", r, e, f, 1);
    SYS(__NR_chown32, f, 100000, 100000);     faked_chown("chown32_unmapped", r, e, f, 1);
#endif
#ifdef __NR_lchown32
    SYS(__NR_lchown32, l, 0, 0);              faked_chown("lchown32_root", r, e, l, 0);
#endif
#ifdef __NR_fchown32
    SYS(__NR_fchown32, fd, 0, 0);             faked_chown("fchown32_root", r, e, f, 1);
#endif
    close(fd);

    /* --- credentials: faked --- */
    SYS(__NR_setuid, 0);            faked_cred("setuid", r, e);
    SYS(__NR_setgid, 0);            faked_cred("setgid", r, e);
    SYS(__NR_setreuid, 0, 0);       faked_cred("setreuid", r, e);
    SYS(__NR_setregid, 0, 0);       faked_cred("setregid", r, e);
    SYS(__NR_setresuid, 0, 0, 0);   faked_cred("setresuid", r, e);
    SYS(__NR_setresgid, 0, 0, 0);   faked_cred("setresgid", r, e);
    /* setfs[ug]id never fail: unfaked they return the previous id (1000). */
    SYS(__NR_setfsuid, 0);          faked_cred("setfsuid", r, e);
    SYS(__NR_setfsgid, 0);          faked_cred("setfsgid", r, e);
    {
        gid_t g[2] = {0, 0};
        SYS(__NR_setgroups, 1, g);  faked_cred("setgroups", r, e);
    }
#ifdef __NR_setuid32
    SYS(__NR_setuid32, 0);          faked_cred("setuid32", r, e);
    SYS(__NR_setgid32, 0);          faked_cred("setgid32", r, e);
    SYS(__NR_setreuid32, 0, 0);     faked_cred("setreuid32", r, e);
    SYS(__NR_setregid32, 0, 0);     faked_cred("setregid32", r, e);
    SYS(__NR_setresuid32, 0, 0, 0); faked_cred("setresuid32", r, e);
    SYS(__NR_setresgid32, 0, 0, 0); faked_cred("setresgid32", r, e);
    SYS(__NR_setfsuid32, 0);        faked_cred("setfsuid32", r, e);
    SYS(__NR_setfsgid32, 0);        faked_cred("setfsgid32", r, e);
    {
        gid_t g[1] = {0};
        SYS(__NR_setgroups32, 1, g); faked_cred("setgroups32", r, e);
    }
#endif
    {
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2];
        memset(d, 0xff, sizeof d);
        SYS(__NR_capset, &h, d);
        long r2;
        struct __user_cap_data_struct now[2];
        memset(now, 0, sizeof now);
        h.version = _LINUX_CAPABILITY_VERSION_3;
        h.pid = 0;
        r2 = syscall(__NR_capget, &h, now);
        int none = r2 == 0 && now[0].effective == 0 && now[0].permitted == 0;
        check("capset", r == 0 && none, "%s caps-still-empty=%d", rv(r, e), none);
    }

    /* --- mknod of devices: faked (0, nothing created) --- */
    const char *n = W "/node";
#ifdef __NR_mknod
    SYS(__NR_mknod, n, S_IFCHR | 0600, DEV_NULL); faked_mknod("mknod_chr_1_3", r, e, n);
    SYS(__NR_mknod, n, S_IFBLK | 0600, DEV_SDA);  faked_mknod("mknod_blk_8_0", r, e, n);
#endif
    SYS(__NR_mknodat, AT_FDCWD, n, S_IFCHR | 0600, DEV_NULL); faked_mknod("mknodat_chr_1_3", r, e, n);
    SYS(__NR_mknodat, AT_FDCWD, n, S_IFBLK | 0600, DEV_SDA);  faked_mknod("mknodat_blk_8_0", r, e, n);
}

static void real_checks(void)
{
    long r;
    int e;
    const char *n = W "/node";

    /* --- not faked: these reach the kernel --- */
    r = getuid();
    check("getuid_1000", r == UID, "getuid=%ld", r);
    r = getgid();
    check("getgid_1000", r == GID, "getgid=%ld", r);
#ifdef __NR_mknod
    SYS(__NR_mknod, n, S_IFIFO | 0600, 0);  real_mknod("mknod_fifo", r, e, n, S_IFIFO);
    SYS(__NR_mknod, n, S_IFSOCK | 0600, 0); real_mknod("mknod_sock", r, e, n, S_IFSOCK);
    SYS(__NR_mknod, n, S_IFREG | 0600, 0);  real_mknod("mknod_reg", r, e, n, S_IFREG);
    SYS(__NR_mknod, n, 0600, 0);            real_mknod("mknod_type0_reg", r, e, n, S_IFREG);
    SYS(__NR_mknod, n, S_IFCHR | 0600, 0);  whiteout("mknod_whiteout_0_0", r, e, n);
#endif
    SYS(__NR_mknodat, AT_FDCWD, n, S_IFIFO | 0600, 0);  real_mknod("mknodat_fifo", r, e, n, S_IFIFO);
    SYS(__NR_mknodat, AT_FDCWD, n, S_IFSOCK | 0600, 0); real_mknod("mknodat_sock", r, e, n, S_IFSOCK);
    SYS(__NR_mknodat, AT_FDCWD, n, S_IFREG | 0600, 0);  real_mknod("mknodat_reg", r, e, n, S_IFREG);
    SYS(__NR_mknodat, AT_FDCWD, n, S_IFCHR | 0600, 0);  whiteout("mknodat_whiteout_0_0", r, e, n);
    /* A real chown that needs no privilege still goes through: to our own ids. */
    SYS(__NR_fchownat, AT_FDCWD, W "/file", UID, GID, 0);
    check("fchownat_self_real", r == 0, "%s", rv(r, e));
}

/* Without the filter the privileged calls fail: the checks above mean something. */
static void control_checks(void)
{
    long r;
    int e;
    SYS(__NR_fchownat, AT_FDCWD, W "/file", 0, 0, 0);
    check("control_fchownat_eperm", r == -1 && e == EPERM, "%s", rv(r, e));
    SYS(__NR_setresuid, 0, 0, 0);
    check("control_setresuid_eperm", r == -1 && e == EPERM, "%s", rv(r, e));
    SYS(__NR_mknodat, AT_FDCWD, W "/node", S_IFCHR | 0600, DEV_NULL);
    check("control_mknodat_chr_eperm", r == -1 && e == EPERM, "%s", rv(r, e));
    unlink(W "/node");
}

static int install_filter(void)
{
    static struct sock_filter prog[4096];
    int fd = open("/filter.bpf", O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, prog, sizeof prog);
    if (fd >= 0) close(fd);
    if (n <= 0 || n % 8 != 0) {
        check("filter_read", 0, "read /filter.bpf: %zd bytes errno=%d", n, errno);
        return -1;
    }
    check("filter_read", 1, "");
    struct sock_fprog fp = {.len = (unsigned short)(n / 8), .filter = prog};
    long r = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    check("no_new_privs", r == 0, "errno=%d", errno);
    r = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp);
    int e = errno;
    if (r != 0 && e == ENOSYS)
        r = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp), e = errno;
    check("filter_install", r == 0, "%d instructions: %s", fp.len, rv(r, e));
    return r == 0 ? 0 : -1;
}

static int child(void)
{
    /* Work as 1000:1000 in a directory of our own. */
    mkdir(W, 0755);
    if (chown(W, UID, GID) != 0) out("chown " W ": %s\n", strerror(errno));
    long r = syscall(__NR_setgroups, 0, NULL);
    check("drop_setgroups", r == 0, "errno=%d", errno);
    r = setresgid(GID, GID, GID);
    r = r || setresuid(UID, UID, UID);
    check("drop_to_1000", r == 0 && getuid() == UID && geteuid() == UID, "errno=%d", errno);

    int fd = open(W "/file", O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) close(fd);
    if (symlink("file", W "/link") != 0) out("symlink: %s\n", strerror(errno));

    control_checks();
    install_filter();  /* the checks run anyway: without the filter they FAIL */
    faked_checks();
    real_checks();
    out("RESULT %s %d/%d\n", MATRIX_ABI, passed, total);
    return 0;
}

int main(void)
{
    init_console();
    out("MATRIX loader %s start\n", MATRIX_ABI);
    pid_t p = fork();
    if (p == 0) _exit(child());
    int st = 0;
    if (p < 0) out("MATRIX fork: %s\n", strerror(errno));
    else waitpid(p, &st, 0);
    if (WIFSIGNALED(st)) out("MATRIX child killed by signal %d\n", WTERMSIG(st));
    out("MATRIX loader done status=0x%x\n", st);
    sync();
    reboot(RB_POWER_OFF);
    out("MATRIX reboot: %s\n", strerror(errno));
    return 1;  /* pid 1 exits: panic=-1 reboots, -no-reboot ends qemu */
}
