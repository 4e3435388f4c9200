/*
 * platform/stattime.h — a file's modification time, to the nanosecond, however
 * this system spells it (src/platform/README.md).
 *
 * POSIX.1-2008 says st_mtim (Linux, FreeBSD, musl); macOS says st_mtimespec
 * (st_mtime + st_mtimensec under a strict _POSIX_C_SOURCE). The probes
 * st_mtim, st_mtimespec and st_mtimensec, which run in every build, pick the
 * spelling. CPython reads the same fields in the same order of preference:
 * Modules/posixmodule.c, _pystat_fromstructstat (HAVE_STAT_TV_NSEC: st_mtim,
 * HAVE_STAT_TV_NSEC2: st_mtimespec), which gives os.stat's st_mtime and
 * st_mtime_ns, from which importlib's _path_stat / path_stats take the
 * mtime a pyc stores. A system with none of them has whole seconds only, as
 * CPython there.
 */
#ifndef PYCACHE_PLATFORM_STATTIME_H
#define PYCACHE_PLATFORM_STATTIME_H

#include <sys/stat.h>
#include <time.h>

#include "config.h"

static inline struct timespec psys_mtim(const struct stat *st)
{
#if PYC_HAVE_ST_MTIM
    return st->st_mtim;
#elif PYC_HAVE_ST_MTIMESPEC
    return st->st_mtimespec;
#elif PYC_HAVE_ST_MTIMENSEC
    struct timespec ts = {st->st_mtime, (long)st->st_mtimensec};
    return ts;
#else
    struct timespec ts = {st->st_mtime, 0};
    return ts;
#endif
}

#endif /* PYCACHE_PLATFORM_STATTIME_H */
