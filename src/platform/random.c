/*
 * platform/random.c — random bytes (platform/random.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "platform/random.h"
#include "config.h"

#if PYC_HAVE_GETRANDOM
#include <sys/random.h>
#endif

int psys_random(void *buf, size_t n)
{
#if PYC_HAVE_GETRANDOM
    return getrandom(buf, n, GRND_NONBLOCK) == (ssize_t)n ? 0 : -1;
#else
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return got == n ? 0 : -1;
#endif
}
