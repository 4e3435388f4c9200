// SOCK_CLOEXEC (Linux, FreeBSD; not macOS): a socket pair close-on-exec
// from birth (src/platform/fd.c).
#include <sys/socket.h>

int main(void)
{
    int sv[2];
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
}
