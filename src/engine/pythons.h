/*
 * pythons.h — the Python interpreters installed on this machine.
 *
 * Found without running them wherever the file name says which version an
 * interpreter is: python2.7, python3.N and pypy3.N in each $PATH directory
 * and in each $(pyenv root)/versions/<VERSION>/bin/ (pyenv root: $PYENV_ROOT,
 * else ~/.pyenv), plus the paths listed in $PYCACHE_PYTHONS (colon-
 * separated). A name that says nothing (python3, a pyenv shim) is resolved
 * through its symlinks, then by a pyenv versions/<VERSION>/ directory in its
 * path; only when all that fails is the interpreter run, once, to ask.
 * Results are computed on first use and kept for the life of the process.
 */
#ifndef PYCACHE_CLI_PYTHONS_H
#define PYCACHE_CLI_PYTHONS_H

#include <stdbool.h>
#include <stddef.h>

#include "pycache.h"

/* One interpreter file found on this machine. */
typedef struct cli_python {
    const char *path;       /* as found (not resolved) */
    const pyc_magic *magic; /* the final magic of its version */
} cli_python;

/* Every interpreter file found, in discovery order ($PYCACHE_PYTHONS, PATH,
 * pyenv), duplicates by real path dropped. Returns the count; *OUT (if not
 * NULL) receives the array, valid until exit. */
size_t cli_python_list(const cli_python **out);

/* The distinct versions installed (one entry per magic), oldest first. */
size_t cli_installed_pythons(const pyc_magic ***out);

/* True when some installed interpreter writes magic M's cache files: the
 * same implementation and language version (the magic's final release). */
bool cli_python_installed(const pyc_magic *m);

/* The interpreter `python3` on $PATH resolves to (for a pyenv shim: the one
 * it runs, asked once), or NULL when there is none. */
const pyc_magic *cli_default_python(void);

/* The version an interpreter's file NAME (a basename) says: "python3.11",
 * "python2.7", "pypy3.10" (an optional trailing "m"/"d"/"t" ABI letter is
 * allowed, as in python3.6m, python3.13t). NULL when it says none. */
const pyc_magic *cli_python_from_name(const char *name);

/* The version a path names through a pyenv-style ".../versions/<VERSION>/"
 * directory ("3.11.7", "pypy3.10-7.3.12", "2.7.18"). NULL if none. */
const pyc_magic *cli_python_from_path(const char *path);

#endif /* PYCACHE_CLI_PYTHONS_H */
