/*
 * platform/sync.h — making written files durable (`convert --sync`;
 * src/platform/README.md).
 */
#ifndef PYCACHE_PLATFORM_SYNC_H
#define PYCACHE_PLATFORM_SYNC_H

#include <stdbool.h>

#include "config.h"

/* Whether psys_syncfs can flush a whole file system in one call (syncfs:
 * Linux). Without it (macOS, FreeBSD, PORTABLE=1) each rewritten file and
 * its directory are fsync'ed as they are written (engine/convert.c): POSIX
 * has nothing between that and sync(), which need not wait. */
#define PSYS_HAVE_SYNCFS PYC_HAVE_SYNCFS

/* syncfs(FD): 0, or -1 with errno (ENOSYS without syncfs). */
int psys_syncfs(int fd);

#endif /* PYCACHE_PLATFORM_SYNC_H */
