// pipe2 with O_CLOEXEC (Linux, FreeBSD; POSIX.1-2024 but not 2008, and not
// macOS): a pipe that is close-on-exec from birth (src/platform/fd.c).
#include <fcntl.h>
#include <unistd.h>

int main(void)
{
    int fds[2];
    return pipe2(fds, O_CLOEXEC);
}
