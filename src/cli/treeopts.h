/*
 * treeopts.h — the options every tree command shares, declared once.
 *
 * A tree command (check, prune, clean, stats, compile, convert, watch) puts
 * these entries in its option table and lets scan_next_option apply them,
 * so their spelling, help text and meaning are the same everywhere, and the
 * next command gets them for free.
 */
#ifndef PYCACHE_CLI_TREEOPTS_H
#define PYCACHE_CLI_TREEOPTS_H

#include "cli/cli.h"
#include "engine/scan.h"

/* Options shared by every tree command, declared once so their spelling and
 * help text are the same everywhere: a command puts SCAN_WALK_OPTIONS in its
 * option table and passes every option id to scan_parse_option. */
enum {
    SCAN_OPT_IGNORE = 1000,
    SCAN_OPT_NO_DEFAULT_IGNORES,
    SCAN_OPT_INCLUDE_VENVS,
    SCAN_OPT_ONE_FILE_SYSTEM,
    SCAN_OPT_CHECK_HASH,
    SCAN_OPT_PREFIX,
    SCAN_OPT_NO_PREFIX,
};

#define SCAN_WALK_OPTIONS                                                          \
    {SCAN_OPT_IGNORE, "ignore", "NAME",                                            \
     "do not enter directories named NAME (repeatable)"},                          \
    {SCAN_OPT_NO_DEFAULT_IGNORES, "no-default-ignores", NULL,                      \
     "also enter .git .hg .svn .bzr _darcs and node_modules"},                     \
    {SCAN_OPT_INCLUDE_VENVS, "include-venvs", NULL,                                \
     "also enter virtual environments (directories holding a pyvenv.cfg)"},        \
    {SCAN_OPT_ONE_FILE_SYSTEM, "one-file-system", NULL,                            \
     "do not cross mount points"},                                                 \
    {SCAN_OPT_CHECK_HASH, "check-hash-based-pycs", "WHEN",                         \
     "judge hash-based pycs as python --check-hash-based-pycs WHEN would: "        \
     "default, always or never"}

#define SCAN_PREFIX_OPTION                                                         \
    {SCAN_OPT_PREFIX, "prefix", "DIR",                                             \
     "the cache prefix 3.8+ reads (default: $PYTHONPYCACHEPREFIX): judge "         \
     "3.8+ caches there (no PATH: the whole prefix tree)"},                        \
    SCAN_NO_PREFIX_OPTION

#define SCAN_NO_PREFIX_OPTION                                                      \
    {SCAN_OPT_NO_PREFIX, "no-prefix", NULL,                                        \
     "ignore $PYTHONPYCACHEPREFIX: every cache in __pycache__, as without it"}

/* Where the cache prefix in force came from (scan_prefix_origin). */
typedef enum scan_prefix_origin {
    SCAN_PREFIX_NONE = 0,  /* no prefix: $PYTHONPYCACHEPREFIX unset or empty */
    SCAN_PREFIX_ENV,       /* $PYTHONPYCACHEPREFIX */
    SCAN_PREFIX_GIVEN,     /* --prefix DIR */
    SCAN_PREFIX_DISABLED,  /* --no-prefix (with $PYTHONPYCACHEPREFIX set or not) */
} scan_prefix_origin;

/* The cache prefix a 3.8+ interpreter started from this environment would
 * use (sys.pycache_prefix), before any option: $PYTHONPYCACHEPREFIX when
 * it is set and not empty, else NULL. See treeopts.c for CPython's rule. */
const char *scan_env_prefix(void);

/* Resolves the prefix in force into OPT->prefix (and OPT->prefix_only)
 * once the options are parsed: --no-prefix, else --prefix DIR, else
 * scan_env_prefix(). NPATHS is the number of PATH operands: --prefix DIR
 * with none visits the whole prefix tree only. scan_next_option calls it
 * at the end of the options; a command that parses its options another
 * way calls it itself. */
void scan_resolve_prefix(scan_options *opt, size_t npaths);

/* Where OPT->prefix came from (after scan_resolve_prefix). */
scan_prefix_origin scan_prefix_origin_of(void);

/* The one human line that says which prefix is in force, on stderr
 * ("pycache check: cache prefix '/p' (from $PYTHONPYCACHEPREFIX): ..."),
 * or that $PYTHONPYCACHEPREFIX is ignored (--no-prefix); nothing when no
 * prefix is set at all. Commands call it in human output only (never with
 * --json, -0 or -q), before their report. */
void scan_prefix_note(const char *command, const scan_options *opt);

/* The option loop of every tree command: the next option that is the
 * command's own, after applying the shared ones (SCAN_WALK_OPTIONS,
 * SCAN_PREFIX_OPTION) to OPT. Returns the option's id; 0 at the end of the
 * options (P->index is then the first operand); -1 when the command must
 * return *EXIT_STATUS at once (CLI_EXIT_OK after --help was printed,
 * CLI_EXIT_USAGE after a usage error).
 *
 *   int id, status;
 *   while ((id = scan_next_option(&p, &sopt, &status)) > 0)
 *       switch (id) { ... }
 *   if (id < 0)
 *       return status;
 */
int scan_next_option(cli_parser *p, scan_options *opt, int *exit_status);

/* Applies option ID (with P->optarg) if it is one of the shared ones.
 * Returns 1 when it was (consumed), 0 when it was not, -1 after a usage
 * error (the command returns CLI_EXIT_USAGE). */
int scan_parse_option(cli_parser *p, int id, scan_options *opt);

#endif /* PYCACHE_CLI_TREEOPTS_H */
