/*
 * platform/dir.c — directory reading: getdents64 or readdir (platform/dir.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "platform/dir.h"

#if PYC_HAVE_GETDENTS64
#include <sys/syscall.h>
#endif

#if PYC_HAVE_GETDENTS64

int psys_dir_begin(psys_dir *d, int fd, char *buf)
{
    d->fd = fd;
    d->buf = buf;
    d->len = d->pos = 0;
    d->at_end = 0;
    return 0;
}

/* The room one more entry may need: struct linux_dirent64 with a name of
 * NAME_MAX bytes and its NUL, 8-byte aligned (getdents64 fails with EINVAL
 * when the next entry does not fit, and keeps its position). */
#define DIRENT_MAX ((offsetof(struct psys_dirent64, d_name) + NAME_MAX + 1 + 7) & ~(size_t)7)

int psys_dir_read_ahead(psys_dir *d)
{
    for (;;) {
        long room = PSYS_DIR_BUFSIZE - d->len;
        if (room < (long)DIRENT_MAX)
            return 0;
        long n = syscall(SYS_getdents64, d->fd, d->buf + d->len, (size_t)room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return 0;
        if (n == 0) {
            d->at_end = 1;
            return 1;
        }
        d->len += n;
    }
}

int psys_dir_ahead_any(const psys_dir *d, int (*match)(const char *name))
{
    for (long pos = d->pos; pos < d->len;) {
        const struct psys_dirent64 *e =
            (const struct psys_dirent64 *)(const void *)(d->buf + pos);
        if (match(e->d_name))
            return 1;
        pos += e->d_reclen;
    }
    return 0;
}

int psys_dir_fill(psys_dir *d)
{
    for (;;) {
        long n = syscall(SYS_getdents64, d->fd, d->buf, PSYS_DIR_BUFSIZE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        d->len = n;
        d->pos = 0;
        return n > 0;
    }
}

void psys_dir_end(psys_dir *d)
{
    d->len = d->pos = 0;
    d->at_end = 0;
}

#else /* readdir: POSIX.1-2008 */

static int dot_or_dotdot(const char *n)
{
    return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

int psys_dir_begin(psys_dir *d, int fd, char *buf)
{
    (void)buf;
    d->dir = NULL;
    /* A duplicate, not a reopen of ".": that would need search permission,
     * which a readable directory may lack (r--). */
    int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0)
        return -1;
    d->fd = own;
    d->dir = fdopendir(own);
    if (!d->dir) {
        int saved = errno;
        close(own);
        errno = saved;
        return -1;
    }
    /* The duplicate shares the caller's offset: from the start. */
    rewinddir(d->dir);
    return 0;
}

int psys_dir_next(psys_dir *d, const char **name, unsigned char *type, ino_t *ino)
{
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d->dir);
        if (!e) {
            if (errno == EINTR)
                continue;
            return errno ? -1 : 0;
        }
        if (dot_or_dotdot(e->d_name))
            continue;
        *name = e->d_name;
        *type = PSYS_DIRENT_TYPE(e);
        *ino = e->d_ino;
        return 1;
    }
}

int psys_dir_read_ahead(psys_dir *d)
{
    (void)d;
    return 0;
}

int psys_dir_ahead_any(const psys_dir *d, int (*match)(const char *name))
{
    (void)d, (void)match;
    return 0;
}

void psys_dir_end(psys_dir *d)
{
    if (d->dir)
        closedir(d->dir);
    d->dir = NULL;
}

#endif
