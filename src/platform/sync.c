/*
 * platform/sync.c — syncfs where the system has it (platform/sync.h).
 */
#include <errno.h>
#include <unistd.h>

#include "platform/sync.h"

int psys_syncfs(int fd)
{
#if PSYS_HAVE_SYNCFS
    return syncfs(fd);
#else
    (void)fd;
    errno = ENOSYS;
    return -1;
#endif
}
