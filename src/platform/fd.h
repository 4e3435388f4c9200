/*
 * platform/fd.h — pipes and socket pairs that are close-on-exec from birth
 * (src/platform/README.md).
 */
#ifndef PYCACHE_PLATFORM_FD_H
#define PYCACHE_PLATFORM_FD_H

/* pipe(FDS), both ends close-on-exec. pipe2 where the probe found it
 * (Linux, FreeBSD); otherwise pipe then fcntl(FD_CLOEXEC), POSIX.1-2008:
 * a posix_spawn in another thread between the two could inherit the ends,
 * which the command line never does (it spawns from one thread). Returns 0,
 * or -1 with errno. */
int psys_pipe_cloexec(int fds[2]);

/* socketpair(AF_UNIX, SOCK_STREAM) with both ends close-on-exec, the same
 * way (SOCK_CLOEXEC: Linux, FreeBSD; not macOS), and SO_NOSIGPIPE where
 * there is no MSG_NOSIGNAL (macOS). */
int psys_socketpair_cloexec(int sv[2]);

/* The send flag that turns a write to a closed peer into EPIPE instead of
 * SIGPIPE: MSG_NOSIGNAL (POSIX.1-2008; Linux, FreeBSD). macOS has none:
 * there psys_socketpair_cloexec sets SO_NOSIGPIPE on both ends instead. */
#include <sys/socket.h>
#ifdef MSG_NOSIGNAL
#define PSYS_MSG_NOSIGNAL MSG_NOSIGNAL
#else
#define PSYS_MSG_NOSIGNAL 0
#endif

#endif /* PYCACHE_PLATFORM_FD_H */
