/*
 * pythons.h — the Python interpreters installed on this machine.
 *
 * The discovery rule (the same for clean --uninstalled, stats, compile
 * --python X.Y and versions --installed, and said in their --help and the
 * man page), in this order:
 *   1. each path listed in $PYCACHE_PYTHONS (colon-separated): the way to
 *      make the answer independent of PATH and HOME (cron, sudo, env -i);
 *   2. python2.7, python3.N and pypy3.N in each absolute $PATH directory
 *      ($PATH unset: the system's default path, confstr _CS_PATH, as execvp
 *      searches);
 *   3. each $(pyenv root)/versions/<VERSION>/bin/ (pyenv root: $PYENV_ROOT,
 *      else ~/.pyenv, ~ being $HOME or, unset, the user's home directory in
 *      the password database).
 * Found without running them wherever the file name says which version an
 * interpreter is. A name that says nothing (python3, a pyenv shim) is
 * resolved through its symlinks, then by a pyenv versions/<VERSION>/
 * directory in its path; only when all that fails is the interpreter run,
 * once, to ask. Pyenv shims themselves are skipped (the versions they pick
 * are found in step 3); one file reached twice counts once. Results are
 * computed on first use and kept for the life of the process.
 */
#ifndef PYCACHE_CLI_PYTHONS_H
#define PYCACHE_CLI_PYTHONS_H

#include <stdbool.h>
#include <stddef.h>

#include "pycache.h"

/* The discovery rule above, as the --help of clean, stats, compile and
 * versions prints it (an epilog paragraph). */
#define CLI_PYTHONS_RULE_HELP                                                        \
    "Installed interpreters (clean --uninstalled, stats, versions --installed,\n"   \
    "compile --python X.Y) are found, in this order, without running them:\n"       \
    "  1. the paths listed in $PYCACHE_PYTHONS (colon-separated);\n"                \
    "  2. python2.7, python3.N, pypy3.N in each $PATH directory ($PATH unset:\n"    \
    "     the system's default path, as execvp);\n"                                 \
    "  3. $PYENV_ROOT/versions/*/bin/ (default ~/.pyenv; ~ is $HOME, else the\n"    \
    "     user's home directory).\n"                                                \
    "So PATH and HOME change the answer: under cron, sudo or env -i, list the\n"    \
    "interpreters in PYCACHE_PYTHONS; `pycache versions --installed` shows what\n"  \
    "counts, and where each was found.\n"

/* One interpreter file found on this machine. */
typedef struct cli_python {
    const char *path;       /* as found (not resolved) */
    const pyc_magic *magic; /* the final magic of its version */
    const char *found_in;   /* "PYCACHE_PYTHONS", "PATH" or "pyenv" */
} cli_python;

/* The directories searched in step 2: $PATH, or the system's default path
 * when it is unset. */
const char *cli_search_path(void);

/* The pyenv root of step 3 (malloc'd), or NULL when there is no home. */
char *cli_pyenv_root(void);

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
