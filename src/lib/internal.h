/*
 * internal.h — helpers shared by the library's modules, not part of the
 * public API. Names start with lib_ so the shared library's version script
 * (libpycache.map) keeps them local.
 */
#ifndef PYCACHE_INTERNAL_H
#define PYCACHE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"

/* Little-endian 32-bit load/store: pyc headers are little-endian on every
 * platform (importlib._bootstrap_external._unpack_uint32). */
static inline uint32_t lib_load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline void lib_store_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline uint64_t lib_load_le64(const unsigned char *p)
{
    return (uint64_t)lib_load_le32(p) | (uint64_t)lib_load_le32(p + 4) << 32;
}

static inline void lib_store_le64(unsigned char *p, uint64_t v)
{
    lib_store_le32(p, (uint32_t)v);
    lib_store_le32(p + 4, (uint32_t)(v >> 32));
}

/* memrchr, which POSIX lacks (a GNU and BSD extension; not macOS): the last
 * byte C in the N bytes at S, or NULL. The libc's where the probe found it
 * (vectorised: every cache name is parsed from its end), else a loop. */
static inline const char *lib_memrchr(const char *s, int c, size_t n)
{
#if PYC_HAVE_MEMRCHR
    return memrchr(s, c, n);
#else
    while (n--)
        if ((unsigned char)s[n] == (unsigned char)c)
            return s + n;
    return NULL;
#endif
}

/* Writes V in decimal at P (no NUL); returns the digit count (at most 10). */
static inline size_t lib_put_uint(char *p, unsigned v)
{
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

#endif /* PYCACHE_INTERNAL_H */
