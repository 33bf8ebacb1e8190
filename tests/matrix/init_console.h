/* Shared by the two initramfs /init programs (loader.c, selfcheck-init.c): mounts /dev,
 * /proc and /tmp and points stdin, stdout and stderr at the console. */
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static void init_console(void)
{
    mkdir("/dev", 0755);
    mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
    mkdir("/proc", 0755);
    mount("proc", "/proc", "proc", 0, NULL);
    mkdir("/tmp", 01777);
    mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777");
    int c = open("/dev/console", O_RDWR | O_NOCTTY);
    if (c >= 0) {
        dup2(c, 0);
        dup2(c, 1);
        dup2(c, 2);
        if (c > 2) close(c);
    }
}
