/*
 * platform/noatime.c — opening a file to read it without touching its access time.
 *
 * A check reads the first bytes of every cache file, and a hash-based pyc's
 * source. On a relatime mount (the default) a read updates a file's atime
 * whenever that is not newer than its mtime or ctime, which holds for every
 * file after a cp -a, a tar x, a chmod or a docker COPY: each inode a check
 * looked at would be dirtied and written back, work for a command that only
 * looks, and every cache would look used, the one thing its atime can tell
 * (find -atime). CPython's imports update it; pycache's reads do not.
 *
 * The kernel grants O_NOATIME to the file's owner (and to CAP_FOWNER) only:
 * opening another user's file with it fails with EPERM. Such a file is then
 * opened without the flag, and the flag is not tried again in this process:
 * a tree that is not the caller's is seldom theirs in parts, and trying it
 * on each file would double the opens there.
 *
 * The portable build (no O_NOATIME: macOS, FreeBSD, PORTABLE=1) opens
 * plainly; those systems offer noatime as a mount option only.
 */
#include <errno.h>
#include <fcntl.h>

#include "platform/noatime.h"

#if PYC_HAVE_O_NOATIME
static int noatime_refused; /* read and written with relaxed atomics */

int psys_openat_read(int dirfd, const char *name, int flags)
{
    if (!__atomic_load_n(&noatime_refused, __ATOMIC_RELAXED)) {
        int fd = openat(dirfd, name, flags | O_NOATIME);
        if (fd >= 0 || errno != EPERM)
            return fd;
        __atomic_store_n(&noatime_refused, 1, __ATOMIC_RELAXED);
    }
    return openat(dirfd, name, flags);
}
#else
int psys_openat_read(int dirfd, const char *name, int flags)
{
    return openat(dirfd, name, flags);
}
#endif
