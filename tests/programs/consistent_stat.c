/* Consistent mode, seen through raw syscalls of one ABI (tests/consistent.rs).
 *
 * usage: consistent_stat setup        chown/lchown/mknod with this ABI's own calls
 *        consistent_stat dump FILE    every stat-family struct of FILE (without following
 *                                     a symlink), one line per call: the fields as the C
 *                                     compiler reads them, then the whole struct in hex
 *
 * Built for x86_64 (gcc) and i386 (i686-linux-gnu-gcc -static). The structs are the
 * kernel's uapi ones (<asm/stat.h>), filled by raw syscalls, so what is printed is exactly
 * what the kernel (or rootemu's supervisor) wrote.
 */
#define _GNU_SOURCE
#include <asm/stat.h> /* the kernel's structs (glibc's <fcntl.h> would define its own) */
#include <errno.h>
#include <linux/fcntl.h>
#include <linux/stat.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int open(const char *path, int flags, ...);

/* new_encode_dev's inverse (the same as old_encode_dev's for numbers below 256). */
static unsigned maj(unsigned long long d) { return (d & 0xfff00) >> 8; }
static unsigned min(unsigned long long d) { return (d & 0xff) | ((d >> 12) & 0xfff00); }

/* `name uid gid mode(octal) major minor size hex`, or `name error ERRNO`. */
static void show(const char *name, long rc, unsigned long long uid, unsigned long long gid, unsigned long long mode,
                 unsigned long long rdev_major, unsigned long long rdev_minor, long long size, const void *p, size_t n)
{
    const unsigned char *b = p;
    if (rc != 0) {
        printf("%s error %d\n", name, errno);
        return;
    }
    printf("%s %llu %llu %llo %llu %llu %lld ", name, uid, gid, mode, rdev_major, rdev_minor, size);
    for (size_t i = 0; i < n; i++)
        printf("%02x", b[i]);
    printf("\n");
}

/* A stat-family call into a struct filled with 0xaa first: the whole struct is shown. */
#define STAT(name, buf, ...)                                                                   \
    do {                                                                                       \
        memset(&buf, 0xaa, sizeof buf);                                                        \
        long rc = syscall(__VA_ARGS__);                                                        \
        show(name, rc, buf.st_uid, buf.st_gid, buf.st_mode, maj(buf.st_rdev), min(buf.st_rdev), \
             (long long)buf.st_size, &buf, sizeof buf);                                       \
    } while (0)

static int dump(const char *f)
{
    struct statx sx;
#if defined(__i386__)
    struct stat st;
    struct stat64 st64;
    struct __old_kernel_stat old;
    int fd = open(f, O_PATH | O_NOFOLLOW);
    STAT("lstat", st, SYS_lstat, f, &st);
    STAT("lstat64", st64, SYS_lstat64, f, &st64);
    STAT("fstatat64", st64, SYS_fstatat64, AT_FDCWD, f, &st64, AT_SYMLINK_NOFOLLOW);
    STAT("fstatat64-empty", st64, SYS_fstatat64, fd, "", &st64, AT_EMPTY_PATH);
    STAT("oldlstat", old, SYS_oldlstat, f, &old);
#else
    struct stat st;
    int fd = open(f, O_PATH | O_NOFOLLOW);
    STAT("lstat", st, SYS_lstat, f, &st);
    STAT("newfstatat", st, SYS_newfstatat, AT_FDCWD, f, &st, AT_SYMLINK_NOFOLLOW);
    STAT("newfstatat-empty", st, SYS_newfstatat, fd, "", &st, AT_EMPTY_PATH);
#endif
    memset(&sx, 0xaa, sizeof sx);
    long rc = syscall(SYS_statx, AT_FDCWD, f, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx);
    show("statx", rc, sx.stx_uid, sx.stx_gid, sx.stx_mode, sx.stx_rdev_major, sx.stx_rdev_minor, (long long)sx.stx_size, &sx,
         sizeof sx);
    close(fd);
    return 0;
}

static int setup(void)
{
    /* This ABI's own calls, with 16-bit ids where the ABI has them (i386 lchown, chown). */
    if (close(open("f", O_CREAT | O_WRONLY, 0644)) != 0 || symlink("f", "l") != 0)
        return perror("create"), 1;
#if defined(__i386__)
    if (syscall(SYS_chown32, "f", 0, 50) != 0) return perror("chown32"), 1;
    if (syscall(SYS_lchown, "l", 7, 8) != 0) return perror("lchown (16-bit)"), 1;
    if (syscall(SYS_chown, "f", 0xffff, 51) != 0) return perror("chown (16-bit, uid unchanged)"), 1;
#else
    if (syscall(SYS_chown, "f", 0, 50) != 0) return perror("chown"), 1;
    if (syscall(SYS_lchown, "l", 7, 8) != 0) return perror("lchown"), 1;
    if (syscall(SYS_chown, "f", -1, 51) != 0) return perror("chown (uid unchanged)"), 1;
#endif
    if (syscall(SYS_mknodat, AT_FDCWD, "n", 0020000 /* S_IFCHR */ | 0600, (1 << 8) | 3) != 0) return perror("mknodat"), 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "setup") == 0)
        return setup();
    if (argc == 3 && strcmp(argv[1], "dump") == 0)
        return dump(argv[2]);
    fprintf(stderr, "usage: %s setup | dump FILE\n", argv[0]);
    return 2;
}
