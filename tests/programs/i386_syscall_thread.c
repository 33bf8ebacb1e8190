/* One thread makes an i386 syscall (int $0x80: AUDIT_ARCH_I386) from this x86_64 process;
   the main thread then reports whether it is still alive. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static void *i386_getpid(void *arg) {
    long ret;
    (void)arg;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");  /* i386 getpid */
    printf("i386 getpid returned %ld\n", ret);
    fflush(stdout);
    return NULL;
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, i386_getpid, NULL);
    sleep(1);
    printf("main thread alive\n");
    fflush(stdout);
    _exit(0);
}
