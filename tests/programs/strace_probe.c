/* Issues raw syscall numbers for tests/oracle_qemu.rs and scripts/matrix (layer 3), run as
 * `qemu-<arch> -strace strace_probe CELL...`: qemu prints the name it knows for each
 * number, the caller compares it with the table's name. Targets and build flags:
 * tests/matrix/qemu-user.tsv.
 *
 * A CELL is `NR` (all six arguments -1: an invalid fd, pointer, pid, signal or flag set,
 * so nearly every call fails at once with EBADF/EFAULT/EINVAL/ESRCH) or `NR:A,...` with
 * explicit arguments, each an integer (base 0), `buf` (a zeroed scratch buffer) or `tp`
 * (the current thread pointer, for calls that set it). Missing ones are -1.
 *
 * Before cell I it writes "@@strace-probe I NR\n" to stderr, where qemu's strace lines go
 * too (unbuffered, in order), and "@@strace-probe end\n" after the last cell: the parser
 * finds each cell's line between two markers, after the startup syscalls. Between a
 * marker and the next one the probe makes no syscall but the cell's (arguments are
 * prepared before the marker, the thread pointer once at start), so a cell's output holds
 * at most one strace line, its own.
 *
 * Built with glibc (`-static`), or with -DPROBE_NOLIBC -nostdlib -ffreestanding for the
 * ABIs whose glibc does not start under qemu 7.2 (sh4) or which Debian ships no libc for
 * (riscv32, sparc32, openrisc): then it has its own _start and syscall instruction. */
#if __has_include(<asm/unistd.h>)
#include <asm/unistd.h>
#else
/* or1k-elf (bare metal) ships no Linux headers: asm-generic's numbers. */
#define __NR_setsid 157
#define __NR_exit 93
#define __NR_write 64
#define __NR_prlimit64 261
#endif

static long sys6(long nr, const long a[6]);

#ifdef PROBE_NOLIBC

/* Called by argument() and emitted by GCC (e.g. for a local array's initializer). */
void *memset(void *d, int c, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n);

void *memset(void *d, int c, unsigned long n) {
    unsigned char *p = d;
    while (n--) {
        *p++ = (unsigned char)c;
    }
    return d;
}

void *memcpy(void *d, const void *s, unsigned long n) {
    unsigned char *p = d;
    const unsigned char *q = s;
    while (n--) {
        *p++ = *q++;
    }
    return d;
}


int main(int argc, char **argv);
void start(long *sp);

/* Called by _start with the initial stack pointer: argc, then argv. */
void start(long *sp) {
    const long a[6] = {main((int)sp[0], (char **)(sp + 1)), 0, 0, 0, 0, 0};
    sys6(__NR_exit, a);
}

#if defined(__sh__)
__asm__(".text\n.global _start\n_start:\n mov r15, r4\n mov.l 1f, r1\n jsr @r1\n nop\n .align 2\n1: .long start\n");
#elif defined(__riscv)
__asm__(".text\n.global _start\n_start:\n .option push\n .option norelax\n la gp, __global_pointer$\n .option pop\n"
        " mv a0, sp\n call start\n");
#elif defined(__sparc__)
__asm__(".text\n.global _start\n_start:\n add %sp, 64, %o0\n call start\n nop\n");
#elif defined(__or1k__)
__asm__(".text\n.global _start\n_start:\n l.ori r3, r1, 0\n l.jal start\n l.nop\n");
#endif

#else

#include <string.h>
#include <unistd.h>

#endif

/* The syscall instruction itself: without a libc, and on m68k, whose glibc syscall() reads
 * the thread pointer (for errno) with a get_thread_area syscall after every failing call,
 * a strace line between a cell and the next marker. */
#if defined(PROBE_NOLIBC) || defined(__m68k__)
static long sys6(long nr, const long a[6]) {
#if defined(__sh__)
    register long r3 __asm__("r3") = nr;
    register long r4 __asm__("r4") = a[0];
    register long r5 __asm__("r5") = a[1];
    register long r6 __asm__("r6") = a[2];
    register long r7 __asm__("r7") = a[3];
    register long r0 __asm__("r0") = a[4];
    register long r1 __asm__("r1") = a[5];
    __asm__ volatile("trapa #0x16" : "+z"(r0) : "r"(r3), "r"(r4), "r"(r5), "r"(r6), "r"(r7), "r"(r1) : "memory");
    return r0;
#elif defined(__riscv)
    register long a7 __asm__("a7") = nr;
    register long a0 __asm__("a0") = a[0];
    register long a1 __asm__("a1") = a[1];
    register long a2 __asm__("a2") = a[2];
    register long a3 __asm__("a3") = a[3];
    register long a4 __asm__("a4") = a[4];
    register long a5 __asm__("a5") = a[5];
    __asm__ volatile("ecall" : "+r"(a0) : "r"(a7), "r"(a1), "r"(a2), "r"(a3), "r"(a4), "r"(a5) : "memory");
    return a0;
#elif defined(__sparc__)
    register long g1 __asm__("g1") = nr;
    register long o0 __asm__("o0") = a[0];
    register long o1 __asm__("o1") = a[1];
    register long o2 __asm__("o2") = a[2];
    register long o3 __asm__("o3") = a[3];
    register long o4 __asm__("o4") = a[4];
    register long o5 __asm__("o5") = a[5];
    __asm__ volatile("ta 0x10" : "+r"(o0) : "r"(g1), "r"(o1), "r"(o2), "r"(o3), "r"(o4), "r"(o5) : "memory", "cc");
    return o0;
#elif defined(__or1k__)
    register long r11 __asm__("r11") = nr;
    register long r3 __asm__("r3") = a[0];
    register long r4 __asm__("r4") = a[1];
    register long r5 __asm__("r5") = a[2];
    register long r6 __asm__("r6") = a[3];
    register long r7 __asm__("r7") = a[4];
    register long r8 __asm__("r8") = a[5];
    __asm__ volatile("l.sys 1"
                     : "+r"(r11)
                     : "r"(r3), "r"(r4), "r"(r5), "r"(r6), "r"(r7), "r"(r8)
                     : "memory", "r12", "r13", "r15", "r17", "r19", "r21", "r23", "r25", "r27", "r29", "r31");
    return r11;
#elif defined(__m68k__)
    register long d0 __asm__("d0") = nr;
    register long d1 __asm__("d1") = a[0];
    register long d2 __asm__("d2") = a[1];
    register long d3 __asm__("d3") = a[2];
    register long d4 __asm__("d4") = a[3];
    register long d5 __asm__("d5") = a[4];
    register long a0 __asm__("a0") = a[5];
    __asm__ volatile("trap #0" : "+r"(d0) : "r"(d1), "r"(d2), "r"(d3), "r"(d4), "r"(d5), "r"(a0) : "memory");
    return d0;
#else
#error "PROBE_NOLIBC: no syscall instruction for this architecture"
#endif
}
#else
static long sys6(long nr, const long a[6]) {
    return syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
#endif

static long scratch[512];

/* Whether the argument at `s` (ended by ',' or NUL) is `word`. */
static int is(const char *s, const char *word) {
    while (*word != '\0' && *s == *word) {
        s++;
        word++;
    }
    return *word == '\0' && (*s == '\0' || *s == ',');
}

/* The thread pointer as the TLS-setting calls (arm set_tls, mips/m68k set_thread_area)
 * take it: passing it back keeps errno (a TLS variable) working. */
static long thread_pointer(void) {
#if defined(__arm__) || defined(__mips__)
    return (long)__builtin_thread_pointer();
#elif defined(__m68k__)
    static const long none[6];
    return sys6(__NR_get_thread_area, none);
#else
    return -1; /* no cell of these ABIs asks for `tp` */
#endif
}

/* An integer in strtol's base-0 syntax (decimal, 0x hex, 0 octal, optional '-'). */
static long number(const char *s) {
    int negative = *s == '-';
    s += negative;
    unsigned long base = 10, v = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    } else if (s[0] == '0') {
        base = 8;
    }
    for (;; s++) {
        unsigned long d;
        if (*s >= '0' && *s <= '9') {
            d = (unsigned long)(*s - '0');
        } else if (*s >= 'a' && *s <= 'f') {
            d = (unsigned long)(*s - 'a' + 10);
        } else if (*s >= 'A' && *s <= 'F') {
            d = (unsigned long)(*s - 'A' + 10);
        } else {
            break;
        }
        if (d >= base) {
            break;
        }
        v = v * base + d;
    }
    return negative ? -(long)v : (long)v;
}

/* Read once before the first cell: on m68k reading it is a syscall, whose strace line
 * would otherwise land between a cell's line and the next marker. */
static long tp;

static long argument(const char *s) {
    if (is(s, "buf")) {
        memset(scratch, 0, sizeof scratch);
        return (long)scratch;
    }
    if (is(s, "tp")) {
        return tp;
    }
    return number(s);
}

/* Appends the decimal `v` (>= 0) at `p`; returns the new end. */
static char *decimal(char *p, long v) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n > 0) {
        *p++ = digits[--n];
    }
    return p;
}

/* One write(2) per marker: qemu's own lines never split it. */
static void marker(const char *text, long len) {
    const long a[6] = {2, (long)text, len, 0, 0, 0};
    sys6(__NR_write, a);
}

int main(int argc, char **argv) {
    /* No controlling terminal (vhangup) and no core file (a cell that kills the probe). */
    static const long none[6];
    sys6(__NR_setsid, none);
    static const unsigned long long no_core[2];
    const long limit[6] = {0, 4 /* RLIMIT_CORE on every Linux ABI */, (long)no_core, 0, 0, 0};
    sys6(__NR_prlimit64, limit);
    tp = thread_pointer();
    for (int i = 1; i < argc; i++) {
        long a[6] = {-1, -1, -1, -1, -1, -1};
        const char *s = argv[i];
        while (*s != '\0' && *s != ':') {
            s++;
        }
        for (int k = 0; k < 6 && *s != '\0'; k++) {
            a[k] = argument(++s);
            while (*s != '\0' && *s != ',') {
                s++;
            }
        }
        long nr = number(argv[i]);
        char text[64] = "@@strace-probe ";
        char *p = decimal(text + 15, i - 1);
        *p++ = ' ';
        if (nr < 0) {
            *p++ = '-';
        }
        p = decimal(p, nr < 0 ? -nr : nr);
        *p++ = '\n';
        marker(text, p - text);
        sys6(nr, a);
    }
    static const char end[] = "@@strace-probe end\n";
    marker(end, sizeof end - 1);
    return 0;
}
