/*
 * platform/dir.h — reading a directory's entries (src/platform/README.md).
 *
 * Fast path (probe getdents64, Linux): the raw getdents64 syscall into the
 * caller's buffer, 64 KiB of entries a call, with d_type (a stat spared per
 * entry). Portable path (POSIX.1-2008: fdopendir, readdir, closedir): a
 * duplicate of the caller's fd is read from its start (the caller's fd
 * stays the caller's to close; its offset, shared, ends at the end). The
 * entry's type comes from d_type where struct dirent has it (probe d_type,
 * run in every build: glibc, musl, macOS and FreeBSD all have it, though
 * POSIX.1-2008 does not say it), else DT_UNKNOWN, and the callers fstatat
 * the entry, as on file systems that leave d_type unset (XFS without
 * ftype, some FUSE and network ones).
 */
#ifndef PYCACHE_PLATFORM_DIR_H
#define PYCACHE_PLATFORM_DIR_H

#include <dirent.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

/* The DT_ values where <dirent.h> does not name them (strict POSIX): the
 * values Linux, macOS and the BSDs all give them. pyc_walk_entry.type is
 * one of these in every build. */
#ifndef DT_UNKNOWN
#define DT_UNKNOWN 0
#define DT_FIFO 1
#define DT_CHR 2
#define DT_DIR 4
#define DT_BLK 6
#define DT_REG 8
#define DT_LNK 10
#define DT_SOCK 12
#endif
#ifndef IFTODT
#define IFTODT(mode) (((mode) & 0170000) >> 12)
#endif

/* The type readdir's entry D reports: d_type where struct dirent has it,
 * else DT_UNKNOWN (see above). */
#if PYC_HAVE_D_TYPE
#define PSYS_DIRENT_TYPE(d) ((d)->d_type)
#else
#define PSYS_DIRENT_TYPE(d) ((void)(d), (unsigned char)DT_UNKNOWN)
#endif

/* The buffer psys_dir_begin wants (unused by the portable reader). */
#define PSYS_DIR_BUFSIZE (64 * 1024)

typedef struct psys_dir {
    int fd;
#if PYC_HAVE_GETDENTS64
    char *buf;
    long len, pos;
    int at_end;   /* psys_dir_read_ahead saw the end: no getdents64 more */
#else
    DIR *dir;
#endif
} psys_dir;

/* Starts reading the directory open on FD (FD stays the caller's, open
 * until psys_dir_end at least). BUF: PSYS_DIR_BUFSIZE bytes of scratch.
 * Returns 0, or -1 with errno (portable: no fd or memory left). */
int psys_dir_begin(psys_dir *d, int fd, char *buf);

/* The next entry other than "." and "..": returns 1 with *NAME (valid until
 * the next call), *TYPE (a DT_ value, DT_UNKNOWN when not known) and *INO;
 * 0 at the end; -1 with errno on a read error (ENOENT: the directory was
 * removed since it was opened). EINTR is retried. */
#if PYC_HAVE_GETDENTS64
#include <stdint.h>

/* The kernel's struct linux_dirent64 (getdents64(2)); declared here so no
 * glibc wrapper (2.30+) is needed. */
struct psys_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Refills the batch: 1, 0 at the end, -1 with errno (dir.c). */
int psys_dir_fill(psys_dir *d);

/* Inline: the walk calls it once per entry of every directory, and the
 * getdents64 walk must cost what it did before it moved here. */
static inline int psys_dir_next(psys_dir *d, const char **name, unsigned char *type,
                                ino_t *ino)
{
    for (;;) {
        while (d->pos < d->len) {
            const struct psys_dirent64 *e =
                (const struct psys_dirent64 *)(const void *)(d->buf + d->pos);
            d->pos += e->d_reclen;
            const char *n = e->d_name;
            if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0')))
                continue;
            *name = n;
            *type = e->d_type;
            *ino = (ino_t)e->d_ino;
            return 1;
        }
        if (d->at_end)
            return 0;
        int r = psys_dir_fill(d);
        if (r <= 0)
            return r;
    }
}
#else
int psys_dir_next(psys_dir *d, const char **name, unsigned char *type, ino_t *ino);
#endif

/* Reads ahead, right after psys_dir_begin, as many entries as fit in the
 * buffer, so that the caller can look at every name (psys_dir_ahead_any)
 * before psys_dir_next hands out the first. Returns 1 when the buffer now
 * holds every entry of the directory (getdents64 said the end, which
 * psys_dir_next then does not ask again), 0 when more may follow: the
 * buffer is full, a read failed (psys_dir_next reads again and reports
 * it), or the portable reader, which reads one entry at a time. */
int psys_dir_read_ahead(psys_dir *d);

/* Whether MATCH is true of the name of an entry read ahead and not yet
 * handed out ("." and ".." included). */
int psys_dir_ahead_any(const psys_dir *d, int (*match)(const char *name));

/* Ends the reading (the portable reader closes its own fd). */
void psys_dir_end(psys_dir *d);

#endif /* PYCACHE_PLATFORM_DIR_H */
