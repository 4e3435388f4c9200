/*
 * platform/malloc.h — tuning the allocator (src/platform/README.md).
 */
#ifndef PYCACHE_PLATFORM_MALLOC_H
#define PYCACHE_PLATFORM_MALLOC_H

#include "config.h"

#if PYC_HAVE_MALLOPT
#include <malloc.h>
#endif

/* Blocks of 1 MiB and more come from mmap and go back to the kernel when
 * freed, always. glibc's default threshold rises to the size of the
 * largest mmap'd block freed (up to 32 MiB), so after the listing's first
 * spill (listing.c frees its 8 MiB buffer and starts another) its growing
 * buffers were realloc'd by copy in the brk heap, whose freed holes stay
 * resident: `clean -n` of a 1,000,000-file tree peaked at 46 MB RSS, 18 MB
 * with the threshold fixed. Elsewhere (musl, macOS, FreeBSD, PORTABLE=1)
 * the allocator's own policy stands.
 *
 * Fixing the mmap threshold also fixes the trim threshold at its 128 KiB
 * default (glibc adjusts both together, or neither): `check --deep` reads
 * every cache file into a buffer of the file's size, freed after the
 * verdict, and each free of a buffer at the top of the heap gave the pages
 * back to the kernel, so the next read faulted them in again: 53,000 page
 * faults for the bench corpus. Keeping up to 2 MiB free at the top (the
 * largest brk block is under the 1 MiB mmap threshold) leaves 2,400, and
 * the task clock fell 5% (1.60 -> 1.52 s, `perf stat`); peak RSS of
 * `clean -n` of the corpus rose 18.8 -> 19.7 MB. */
static inline void psys_tune_malloc(void)
{
#if PYC_HAVE_MALLOPT
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_TRIM_THRESHOLD, 2 << 20);
#endif
}

#endif /* PYCACHE_PLATFORM_MALLOC_H */
