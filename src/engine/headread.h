/*
 * headread.h — the first bytes of many cache files at once (io_uring).
 *
 * A check reads 17 bytes of every cache file: open, read, close — three
 * syscalls per file where `find -printf %s` makes one stat. headread hands
 * the kernel a directory's worth of those triples in one io_uring_enter:
 * the files are opened as io_uring "direct" descriptors (never in the fd
 * table), read, and closed by the kernel, and only the bytes come back.
 *
 * It is an accelerator, never a source of truth: any file it could not
 * read in full (an error, a short file, data not in the page cache) is
 * reported per file, and the caller then reads that file the ordinary way,
 * so every verdict and every error message is the one the plain path gives.
 * Where io_uring is missing (old kernel, a seccomp filter, PYCACHE_IO_URING=0)
 * headread_new() fails and the caller reads every file itself.
 */
#ifndef PYCACHE_HEADREAD_H
#define PYCACHE_HEADREAD_H

#include <stddef.h>

#include "pycache.h"

/* Files per batch: one directory's worth for most __pycache__ folders. */
#define HEADREAD_BATCH 64
/* Bytes read of each file: the longest header and one body byte (an empty
 * body is corrupt), what pyc_verdict_judge_head wants. */
#define HEADREAD_LEN (PYC_HEADER_MAX + 1)

typedef struct headread headread;

/* A reader for the calling thread (it alone may use it). NULL with errno
 * when io_uring cannot do the job here: ENOTSUP for PYCACHE_IO_URING=0, or
 * the kernel's refusal (ENOSYS, EPERM, EINVAL...). */
headread *headread_new(void);
void headread_free(headread *h);

/* Reads the first HEADREAD_LEN bytes of each of the N (<= HEADREAD_BATCH)
 * files NAMES[i] in directory DIRFD into HEADS[i]. RES[i]: the number of
 * bytes read, or -errno (-EAGAIN: not in the page cache, or not a regular
 * file after all). Files are opened without following symlinks and without
 * blocking (O_NONBLOCK, RWF_NOWAIT): a FIFO swapped in never hangs the walk;
 * and without updating their access times where they are the caller's
 * (O_NOATIME; -EPERM for a file that is not, which the caller reads again).
 * Returns 0, or -1 when the ring itself failed; the reader is then unusable
 * (headread_run fails at once), RES is to be ignored, and HEADS must stay
 * allocated, unused, until headread_free (a read may still be in flight). */
int headread_run(headread *h, int dirfd, const char *const *names, size_t n,
                 unsigned char (*heads)[HEADREAD_LEN], int *res);

#endif
