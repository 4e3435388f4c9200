/*
 * archive_lib.h — libarchive, loaded when the first archive is met.
 *
 * libarchive brings a long chain of shared libraries with it (libxml2, ICU,
 * libstdc++, the compressors): loading them at every start cost a cold
 * `pycache --version` ~38 ms of its ~48 ms (find: 10 ms), and 1.2 ms a
 * start warm, for the few runs that ever read an archive (bench/README.md,
 * issue 15). Where the feature probe found libarchive's soname
 * (scripts/probe, "// on-demand:"), the program does not link it:
 * archive_lib.c defines each libarchive function the archive front end
 * calls as a stub that loads the library with dlopen on first use, and
 * forwards. Elsewhere (no soname found: not an ELF platform) the program
 * links libarchive as usual and archive_lib_load has nothing to do.
 */
#ifndef PYCACHE_ENGINE_ARCHIVE_LIB_H
#define PYCACHE_ENGINE_ARCHIVE_LIB_H

#include <stddef.h>

/* Loads libarchive if it is not yet loaded (thread-safe, once). Returns 0,
 * or -1 with what went wrong in MSG (CAP bytes: the dynamic loader's
 * message), e.g. when libarchive is not installed where this program runs. */
int archive_lib_load(char *msg, size_t cap);

#endif
