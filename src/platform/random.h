/*
 * platform/random.h — random bytes for temporary-file names (src/platform/README.md).
 */
#ifndef PYCACHE_PLATFORM_RANDOM_H
#define PYCACHE_PLATFORM_RANDOM_H

#include <stddef.h>

/* Fills BUF with N random bytes without blocking: getrandom(GRND_NONBLOCK)
 * where the probe found it (Linux, FreeBSD 12+), else a read of
 * /dev/urandom (macOS, the BSDs, any Linux). Returns 0, or -1 when no
 * randomness is to be had (early boot, no /dev): the caller falls back. */
int psys_random(void *buf, size_t n);

#endif /* PYCACHE_PLATFORM_RANDOM_H */
