// The raw getdents64 syscall (Linux): directory entries in 64 KiB batches,
// straight into the walker's buffer (src/platform/dir.c).
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    char buf[1024];
    return (int)syscall(SYS_getdents64, 0, buf, sizeof buf) > 0;
}
