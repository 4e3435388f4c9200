/*
 * platform/noatime.h — opening a file to read it without touching its access
 * time (O_NOATIME: Linux only; src/platform/README.md).
 */
#ifndef PYCACHE_PLATFORM_NOATIME_H
#define PYCACHE_PLATFORM_NOATIME_H

#include <fcntl.h>

#include "config.h"

/* The flag where the kernel has it, else 0 (an open that changes nothing). */
#if PYC_HAVE_O_NOATIME
#define PSYS_O_NOATIME O_NOATIME
#else
#define PSYS_O_NOATIME 0
#endif

/* openat(DIRFD, NAME, FLAGS) for reading, with O_NOATIME where the kernel
 * grants it: reading a file leaves its access time alone. Portable build:
 * plain openat (macOS and FreeBSD have no such flag; their noatime is a
 * mount option). */
int psys_openat_read(int dirfd, const char *name, int flags);

#endif /* PYCACHE_PLATFORM_NOATIME_H */
