/*
 * platform/fd.c — close-on-exec pipes and socket pairs (platform/fd.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "platform/fd.h"
#include "config.h"

#if !PYC_HAVE_PIPE2 || !PYC_HAVE_SOCK_CLOEXEC
/* Marks both FDS close-on-exec; on failure closes them (errno kept). */
static int cloexec_pair(int fds[2])
{
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(fds[i], F_GETFD);
        if (fl < 0 || fcntl(fds[i], F_SETFD, fl | FD_CLOEXEC) < 0) {
            int saved = errno;
            close(fds[0]);
            close(fds[1]);
            errno = saved;
            return -1;
        }
    }
    return 0;
}
#endif

int psys_pipe_cloexec(int fds[2])
{
#if PYC_HAVE_PIPE2
    return pipe2(fds, O_CLOEXEC);
#else
    if (pipe(fds) != 0)
        return -1;
    return cloexec_pair(fds);
#endif
}

int psys_socketpair_cloexec(int sv[2])
{
#if PYC_HAVE_SOCK_CLOEXEC
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
#else
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || cloexec_pair(sv) != 0)
        return -1;
#endif
#if !defined(MSG_NOSIGNAL) && defined(SO_NOSIGPIPE)
    int one = 1;
    for (int i = 0; i < 2; i++) {
        if (setsockopt(sv[i], SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) != 0) {
            int saved = errno;
            close(sv[0]);
            close(sv[1]);
            errno = saved;
            return -1;
        }
    }
#endif
    return 0;
}
