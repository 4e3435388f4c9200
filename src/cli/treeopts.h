/*
 * treeopts.h — the options every tree command shares, declared once.
 *
 * A tree command (check, prune, clean, stats, compile, convert, watch) puts
 * the TREE_* entries it takes in its option table and reads its options
 * with tree_next_option, which applies the shared ones itself, so their
 * spelling, help text and meaning are the same everywhere and the next
 * command gets them for free. tree_operands then gathers what to visit: the
 * PATH operands and the names listed by -i FILE.
 *
 *   tree_options t;
 *   tree_options_init(&t);
 *   int id, status;
 *   while ((id = tree_next_option(&p, &t, &status)) > 0)
 *       switch (id) { ... the command's own options ... }
 *   if (id < 0 || (status = tree_operands(&p, &t)) != 0)
 *       return status;
 *   ... scan_run(t.paths, t.npaths, &t.scan, ...) ...
 *   tree_options_free(&t);
 */
#ifndef PYCACHE_CLI_TREEOPTS_H
#define PYCACHE_CLI_TREEOPTS_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/cli.h"
#include "engine/archive.h"
#include "engine/scan.h"

/* The output options (TREE_OUTPUT_OPTIONS), applied. */
typedef struct tree_output {
    cli_format format;        /* --format, --json, -0 */
    int quiet;                /* -q (repeatable: compile -qq) */
    bool verbose;             /* -v */
    cli_color_mode color;     /* --color */
} tree_output;

#define TREE_MAX_FROM 16

typedef struct tree_options {
    scan_options scan;        /* the walk, the verdict, the prefix */
    tree_output out;
    bool nul;                 /* -0: NUL-separated lists (and output) */
    bool format_given;        /* --json or --format: wins over -0's output */
    const char *from[TREE_MAX_FROM]; /* -i FILE|- (repeatable) */
    size_t nfrom;
    /* Filled by tree_operands: the PATH operands, then the names read from
     * each -i list, in order; "." when there are none (and no -i). */
    char **paths;
    size_t npaths;
    char *from_buf;           /* the -i lists' bytes (paths point into it) */
    bool never_whole_prefix;  /* set by a command that visits "." when given
                                 no PATH even with --prefix DIR (compile,
                                 watch): never the whole prefix tree alone */
    archive_options archive;  /* TREE_ARCHIVE_OPTIONS; a command that reads
                                 archives points scan.archives here */
    const char *archive_output; /* TREE_ARCHIVE_OUTPUT_OPTIONS: -o FILE */
    bool in_place;            /* --in-place */
} tree_options;

enum {
    TREE_OPT_IGNORE = 1000,
    TREE_OPT_NO_DEFAULT_IGNORES,
    TREE_OPT_INCLUDE_VENVS,
    TREE_OPT_ONE_FILE_SYSTEM,
    TREE_OPT_CHECK_HASH,
    TREE_OPT_PREFIX,
    TREE_OPT_NO_PREFIX,
    TREE_OPT_JSON,
    TREE_OPT_FORMAT,
    TREE_OPT_COLOR,
    TREE_OPT_ZIPIMPORT,
    TREE_OPT_EXTRACTED,
    TREE_OPT_EXTRACT_MTIME,
    TREE_OPT_IN_PLACE,
    TREE_OPT_OUTPUT,
};

/* For the commands that read archives (check, stats, inspect): how the
 * archive is used, hence judged (engine/archive.h), into T->archive. */
#define TREE_ARCHIVE_OPTIONS                                                       \
    {TREE_OPT_ZIPIMPORT, "zipimport", NULL,                                        \
     "judge a zip archive as zipimport does with it on sys.path (default for "      \
     "a zipapp: a .pyz name or a \"#!\" line)"},                                    \
    {TREE_OPT_EXTRACTED, "extracted", NULL,                                        \
     "judge an archive as its extracted files (default but for zipapps)"},         \
    {TREE_OPT_EXTRACT_MTIME, "extract-mtime", "WHEN",                              \
     "the mtimes extraction gives the sources: archive (as recorded; zip DOS "     \
     "times in local time, TZ), now (an extractor that sets none) or EPOCH "       \
     "(clamped to EPOCH seconds)"}

/* For the commands that fix an archive into a new one (convert, clean,
 * prune): -o FILE and --in-place, checked by tree_archive_output. */
#define TREE_ARCHIVE_OUTPUT_OPTIONS                                                \
    {'o', "output", "FILE",                                                        \
     "for an ARCHIVE: write the fixed archive to FILE (the original is left as "   \
     "it is)"},                                                                    \
    {TREE_OPT_IN_PLACE, "in-place", NULL,                                          \
     "for an ARCHIVE: replace it (a temporary file beside it, renamed over it)"}

/* The same for compile, whose -o is --optimize (compileall's -o): the
 * output is --output FILE only. */
#define TREE_ARCHIVE_OUTPUT_LONG_OPTIONS                                           \
    {TREE_OPT_OUTPUT, "output", "FILE",                                            \
     "for an ARCHIVE: write the compiled archive to FILE (the original is left "   \
     "as it is)"},                                                                 \
    {TREE_OPT_IN_PLACE, "in-place", NULL,                                          \
     "for an ARCHIVE: replace it (a temporary file beside it, renamed over it)"}

/* --json, -0, --format, -v, -q, --color: what every listing command
 * prints, and how (TREE_OUTPUT_OPTIONS: all six). A command that lists no
 * files (stats) takes the ones that apply, and says why not the others. */
#define TREE_JSON_OPTION                                                           \
    {TREE_OPT_JSON, "json", NULL,                                                  \
     "JSON Lines: one object per file listed (the same files as the human "        \
     "listing; -v: every file), errors included"}
#define TREE_NULL_OPTION                                                           \
    {'0', "null", NULL,                                                            \
     "print only the paths of the files listed, each ended by NUL (xargs -0), "    \
     "and read -i lists NUL-separated (with --json: only that)"}
#define TREE_FORMAT_OPTION                                                         \
    {TREE_OPT_FORMAT, "format", "FORMAT",                                          \
     "human (default), json (--json), null (-0) or github (workflow "              \
     "annotations: ::error for dangerous files, ::warning for clutter)"}
#define TREE_VERBOSE_OPTION {'v', "verbose", NULL, "list every file, fine ones too"}
#define TREE_QUIET_OPTION                                                          \
    {'q', "quiet", NULL, "print nothing but errors: the exit status tells"}
#define TREE_COLOR_OPTION                                                          \
    {TREE_OPT_COLOR, "color", "WHEN", "colour the status words: auto, always or never"}
#define TREE_OUTPUT_OPTIONS                                                        \
    TREE_JSON_OPTION, TREE_NULL_OPTION, TREE_FORMAT_OPTION, TREE_VERBOSE_OPTION,  \
        TREE_QUIET_OPTION, TREE_COLOR_OPTION

/* --ignore, --no-default-ignores, --include-venvs, --one-file-system: which
 * directories the walk enters. */
#define TREE_WALK_OPTIONS                                                          \
    {TREE_OPT_IGNORE, "ignore", "PATTERN",                                         \
     "do not enter directories whose name matches PATTERN, a name or a shell "     \
     "glob such as 'build*' (repeatable)"},                                        \
    {TREE_OPT_NO_DEFAULT_IGNORES, "no-default-ignores", NULL,                      \
     "also enter .git .hg .svn .bzr _darcs and node_modules"},                     \
    {TREE_OPT_INCLUDE_VENVS, "include-venvs", NULL,                                \
     "also enter virtual environments (a pyvenv.cfg) and conda environments "      \
     "(a conda-meta/ directory)"},                                                 \
    {TREE_OPT_ONE_FILE_SYSTEM, "one-file-system", NULL,                            \
     "do not cross mount points"}

/* -i FILE|-: more paths, one per line (NUL-separated with -0), as
 * compileall -i and py3clean -p's file lists take them. */
#define TREE_FROM_FILE_OPTION                                                      \
    {'i', "from-file", "FILE",                                                     \
     "also visit the paths listed in FILE ('-': standard input), one per line, "   \
     "or NUL-separated with -0 (repeatable)"}

/* --check-hash-based-pycs: for the commands that judge caches. */
#define TREE_CHECK_HASH_OPTION                                                     \
    {TREE_OPT_CHECK_HASH, "check-hash-based-pycs", "WHEN",                         \
     "judge hash-based pycs as python --check-hash-based-pycs WHEN would: "        \
     "default, always or never"}

/* --prefix DIR and --no-prefix: the cache prefix in force, which every
 * command follows by default as CPython does (tree_resolve_prefix). */
#define TREE_PREFIX_OPTION                                                         \
    {TREE_OPT_PREFIX, "prefix", "DIR",                                             \
     "the cache prefix 3.8+ reads (default: $PYTHONPYCACHEPREFIX): judge 3.8+ "    \
     "caches there too (no PATH: the whole prefix tree only)"},                    \
    TREE_NO_PREFIX_OPTION
#define TREE_NO_PREFIX_OPTION                                                      \
    {TREE_OPT_NO_PREFIX, "no-prefix", NULL,                                        \
     "ignore $PYTHONPYCACHEPREFIX: every cache in __pycache__, as without it"}

/* Where the cache prefix in force came from (tree_prefix_origin). */
typedef enum tree_prefix_source {
    TREE_PREFIX_NONE = 0, /* none: $PYTHONPYCACHEPREFIX unset or empty */
    TREE_PREFIX_ENV,      /* $PYTHONPYCACHEPREFIX */
    TREE_PREFIX_GIVEN,    /* --prefix DIR */
    TREE_PREFIX_DISABLED, /* --no-prefix */
} tree_prefix_source;

/* The cache prefix a 3.8+ interpreter started in this environment uses
 * (sys.pycache_prefix): $PYTHONPYCACHEPREFIX when set and not empty, else
 * NULL. treeopts.c cites CPython's rule. */
const char *tree_env_prefix(void);

/* Resolves the prefix in force into OPT->prefix and OPT->prefix_only:
 * --no-prefix, else --prefix DIR, else tree_env_prefix(). NPATHS: how many
 * paths the command visits (--prefix DIR with none visits the whole prefix
 * tree only). tree_operands calls it; a command that gathers its operands
 * another way (doctor) calls it itself. */
void tree_resolve_prefix(scan_options *opt, size_t npaths);

/* Where the resolved prefix came from. */
tree_prefix_source tree_prefix_origin(void);

/* The one line a human report starts with, on stderr, when a prefix is in
 * force ("pycache check: cache prefix '/p' ($PYTHONPYCACHEPREFIX): ...") or
 * the variable is ignored (--no-prefix); nothing otherwise. tree_operands
 * prints it for human output without -q. */
void tree_prefix_note(const char *command, const scan_options *opt);

/* Defaults: scan_default_options, human output, colour on a terminal. */
void tree_options_init(tree_options *t);

/* The option loop of every tree command: the next option that is the
 * command's own, after applying the shared ones to T. Returns the option's
 * id; 0 at the end of the options (P->index is then the first operand); -1
 * when the command must return *EXIT_STATUS at once (CLI_EXIT_OK after
 * --help was printed, CLI_EXIT_USAGE after a usage error). */
int tree_next_option(cli_parser *p, tree_options *t, int *exit_status);

/* Applies option ID (with P->optarg) if it is one of the shared ones.
 * Returns 1 when it was (consumed), 0 when it was not, -1 after a usage
 * error (the command returns CLI_EXIT_USAGE). For commands that read their
 * options with cli_next_option themselves (inspect, where). */
int tree_parse_option(cli_parser *p, int id, tree_options *t);

/* After the options: fills T->paths from the operands and the -i lists
 * (a directory named in a list is not walked: scan_options.listed),
 * resolves the cache prefix in force (tree_resolve_prefix; the human note
 * on stderr), and starts the listing in T's format (cli_listing_start: the
 * per-file lines come out sorted by path when the command calls
 * cli_listing_finish).
 * Returns 0, CLI_EXIT_USAGE (a list named twice as '-', ...) or
 * CLI_EXIT_IO (a list could not be read; the message is printed). */
int tree_operands(cli_parser *p, tree_options *t);

/* After tree_operands, for a command with TREE_ARCHIVE_OUTPUT_OPTIONS:
 * 0 when neither -o nor --in-place was given (the PATHs are trees); 1 when
 * one was, and the one operand is an archive: *ARCHIVE and *OUTPUT (the
 * archive itself for --in-place) are set. -1 after a message, *STATUS the
 * exit status: both given, not exactly one ARCHIVE operand, an operand that
 * is no archive (usage), one that cannot be opened (I/O), or -o naming the
 * archive itself (usage: --in-place says that on purpose). */
int tree_archive_output(const cli_parser *p, const tree_options *t, const char **archive,
                        const char **output, int *status);

/* Settles T->out.format from -0, --json and --format (tree_operands does
 * it; a command that gathers its operands itself calls it). */
void tree_resolve_output(tree_options *t);

/* Whether stdout gets colour: human output on a terminal, unless NO_COLOR
 * or --color=never (always: --color=always). */
bool tree_color(const tree_options *t);

void tree_options_free(tree_options *t);

#endif /* PYCACHE_CLI_TREEOPTS_H */
