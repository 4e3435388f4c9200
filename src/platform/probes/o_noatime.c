// O_NOATIME (Linux): reading a cache leaves its access time alone
// (src/platform/noatime.c).
#include <fcntl.h>

int main(void)
{
    return openat(AT_FDCWD, "/", O_RDONLY | O_NOATIME);
}
