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
    SCAN_OPT_ZIPIMPORT,
    SCAN_OPT_EXTRACTED,
    SCAN_OPT_EXTRACT_MTIME,
};

/* For the commands that read archives (check, stats): how the archive is
 * used, hence judged (engine/archive.h). They apply to scan_options.archives,
 * which the command points at its own archive_options first. */
#define SCAN_ARCHIVE_OPTIONS                                                       \
    {SCAN_OPT_ZIPIMPORT, "zipimport", NULL,                                        \
     "judge a zip archive as zipimport does with it on sys.path (default for "      \
     "a zipapp: a .pyz name or a \"#!\" line)"},                                    \
    {SCAN_OPT_EXTRACTED, "extracted", NULL,                                        \
     "judge an archive as its extracted files (default but for zipapps)"},         \
    {SCAN_OPT_EXTRACT_MTIME, "extract-mtime", "WHEN",                              \
     "the mtimes extraction gives the sources: archive (as recorded; zip DOS "     \
     "times in local time, TZ), now (an extractor that sets none) or EPOCH "       \
     "(clamped to EPOCH seconds)"}

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
     "a PYTHONPYCACHEPREFIX tree: visit its entries for the sources under "        \
     "PATH (no PATH: all of it)"}

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
