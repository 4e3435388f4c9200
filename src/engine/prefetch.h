/*
 * prefetch.h — start the disk reads of many cache-file headers at once.
 *
 * On a cold page cache a check waits on one data block per cache file.
 * headread (io_uring, RWF_NOWAIT) never waits: a header that is not in the
 * page cache comes back -EAGAIN, and the scan then reads that file the
 * ordinary way. The NOWAIT read does start the page cache's readahead
 * before it gives up, but with the window of a first sequential read (four
 * pages, 16 KiB, for a 17-byte read: get_init_ra_size in mm/readahead.c),
 * so a cold check moved about 2.5 times the bytes it needed (measured with
 * /proc/diskstats: 880k sectors for 44k reads of a 32k-pyc tree).
 * prefetch_heads asks for exactly the first page of each file instead
 * (posix_fadvise WILLNEED on LEN bytes: force_page_cache_ra reads that
 * range and marks no readahead), for a whole batch before any of it is
 * read, so the reads that follow find their pages arriving or arrived; the
 * same tree then moved 430-480k sectors.
 *
 * The scan calls it only where the previous batch of the same walk was
 * mostly cold (prefetch_cold): on a warm cache it would cost three
 * syscalls a file for nothing.
 *
 * A hint only: it reads nothing into the caller's memory and changes no
 * verdict. Any error (the name swapped, not a regular file, out of fds) just
 * leaves that file to the ordinary read.
 */
#ifndef PYCACHE_ENGINE_PREFETCH_H
#define PYCACHE_ENGINE_PREFETCH_H

#include <stddef.h>

/* Starts reading the first LEN bytes of each of the N files NAMES[i] in
 * directory DIRFD into the page cache. Returns how many reads it started. */
size_t prefetch_heads(int dirfd, const char *const *names, size_t n, size_t len);

/* Whether a batch of N headers of which NEED_WAIT came back -EAGAIN says the
 * headers of the next directories are on the device too (most of them
 * were: the page cache is cold here). */
static inline int prefetch_cold(size_t n, size_t need_wait)
{
    return n > 0 && need_wait * 2 > n;
}

#endif /* PYCACHE_ENGINE_PREFETCH_H */
