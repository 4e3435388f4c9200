/*
 * prefetch.c — readahead hints for the headers of a batch on a cold page
 * cache (see prefetch.h).
 *
 * Why these calls:
 *   - openat with O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, as headread opens: a
 *     name swapped for a symlink is not followed (the hint would read
 *     outside the tree), and a FIFO or device swapped in is opened without
 *     blocking and never read. On a cold cache the open waits for the
 *     inode's block; ext4 reads inode-table blocks ahead
 *     (inode_readahead_blks), so the files of one directory mostly share
 *     that wait, and headread's open then finds the inode cached.
 *   - posix_fadvise(POSIX_FADV_WILLNEED) queues the page-cache readahead of
 *     the range and returns without waiting for it (mm/fadvise.c,
 *     force_page_cache_readahead); on a FIFO it fails with ESPIPE, which is
 *     ignored. It reads nothing into this process and does not update the
 *     access time (only a read does, file_accessed in filemap_read), so no
 *     O_NOATIME is needed and other users' files are hinted alike.
 *   - close at once: the fd table holds one extra fd at most.
 */
#include <fcntl.h>
#include <unistd.h>

#include "engine/prefetch.h"

size_t prefetch_heads(int dirfd, const char *const *names, size_t n, size_t len)
{
    size_t started = 0;
    for (size_t i = 0; i < n; i++) {
        int fd = openat(dirfd, names[i],
                        O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (posix_fadvise(fd, 0, (off_t)len, POSIX_FADV_WILLNEED) == 0)
            started++;
        close(fd);
    }
    return started;
}
