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
 * the allocator's own policy stands. */
static inline void psys_tune_malloc(void)
{
#if PYC_HAVE_MALLOPT
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
}

#endif /* PYCACHE_PLATFORM_MALLOC_H */
