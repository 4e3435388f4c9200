/*
 * unit.h — what every C unit test includes: cmocka (Debian's libcmocka-dev)
 * and helpers to read the verified reference data in tests/reference/.
 */
#ifndef PYCACHE_UNIT_H
#define PYCACHE_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pycache.h"

/* Opens tests/reference/NAME (the Makefile passes the directory in
 * $PYCACHE_REFERENCE; running from the repository root works without it). */
static inline FILE *unit_open_reference(const char *name)
{
    const char *dir = getenv("PYCACHE_REFERENCE");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/reference", name);
    return fopen(path, "r");
}

/* Decodes hex text into OUT (at most CAP bytes); returns the byte count or
 * -1 on a malformed string. */
static inline long unit_unhex(const char *hex, unsigned char *out, size_t cap)
{
    size_t n = strlen(hex), i;
    if (n % 2 || n / 2 > cap)
        return -1;
    for (i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return (long)(n / 2);
}

#endif /* PYCACHE_UNIT_H */
