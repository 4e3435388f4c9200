/*
 * cli.h — what every subcommand of the pycache command line shares.
 *
 * The command line is a table of subcommands (commands.c), one file each
 * (cmd_NAME.c), on top of the declarative option tables declared here,
 * which both parse argv and render --help, and of the shared tree options
 * (cli/treeopts.h). What the user sees — exit statuses, error lines,
 * JSON Lines, colour — is the engine's output layer (engine/output.h),
 * which this header includes. Nothing here re-derives a CPython rule: that
 * is the library's job.
 */
#ifndef PYCACHE_CLI_H
#define PYCACHE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/output.h"

/* ---- subcommands -------------------------------------------------------------- */

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    const char *summary;               /* one line for `pycache --help` */
} cli_command;

extern const cli_command cli_commands[]; /* terminated by {NULL} */

/* The commands, one file each (cmd_NAME.c). Each returns an exit status. */
int cmd_check(int argc, char **argv);    /* cmd_check.c */
int cmd_clean(int argc, char **argv);    /* cmd_clean.c */
int cmd_doctor(int argc, char **argv);   /* cmd_doctor.c */
int cmd_prune(int argc, char **argv);    /* cmd_prune.c */
int cmd_convert(int argc, char **argv);  /* cmd_convert.c */
int cmd_compile(int argc, char **argv);  /* cmd_compile.c */
int cmd_inspect(int argc, char **argv);  /* cmd_inspect.c */
int cmd_normalize(int argc, char **argv); /* cmd_normalize.c */
int cmd_diff(int argc, char **argv);     /* cmd_diff.c */
int cmd_verify(int argc, char **argv);   /* cmd_verify.c */
int cmd_stats(int argc, char **argv);    /* cmd_stats.c */
int cmd_versions(int argc, char **argv); /* cmd_versions.c */
int cmd_where(int argc, char **argv);    /* cmd_where.c */
int cmd_watch(int argc, char **argv);    /* cmd_watch.c */

/* ---- errors ---------------------------------------------------------------------- */

/* "did you mean" for a mistyped word: the candidate closest to WORD (edit
 * distance, with transpositions), or NULL when none is close enough.
 * CANDIDATES is NULL-terminated. */
const char *cli_suggest(const char *word, const char *const *candidates);

/* Usage error: "pycache CMD: MESSAGE" and "try 'pycache CMD --help'"; returns
 * CLI_EXIT_USAGE so callers can `return cli_usage_error(...)`. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- options ---------------------------------------------------------------------
 * A command declares its options once; the table both parses (getopt_long)
 * and renders `--help`. GNU conventions: options may come anywhere among the
 * operands (they are moved in front), `--` ends the options, long options
 * may be abbreviated to any unambiguous prefix, an argument is given as
 * `--opt=ARG` or `--opt ARG` (`-o ARG`, `-oARG` for short ones), short
 * options cluster (`-jd`). -h/--help is added to every table: do not
 * declare 'h'. Mistakes are usage errors ("pycache inspect: unknown option
 * '--jsn' (did you mean '--json'?)", then "try 'pycache inspect --help'",
 * exit 2). */
typedef struct cli_option {
    int id;                /* returned by cli_next_option; a short option's
                              character, or a value >= 256 for long-only */
    const char *long_name; /* without dashes, or NULL */
    const char *arg;       /* argument placeholder ("DIR"), NULL if none */
    const char *help;      /* one line */
} cli_option;

typedef struct cli_parser {
    const char *command;           /* "check" */
    const char *usage;             /* "[OPTION]... [PATH]..." */
    const char *description;       /* paragraph printed by --help */
    const cli_option *options;     /* terminated by {0} */
    const char *epilog;            /* printed after the options (examples,
                                      exit statuses), or NULL */
    /* internal state */
    int argc;
    char **argv;
    int index;
    char *optarg;
    void *state;
} cli_parser;

/* Starts parsing; every table gets -h/--help added implicitly. */
void cli_parser_init(cli_parser *p, int argc, char **argv);
/* Returns the next option's id, 0 at the end of the options (p->index is then
 * the first operand), or -1 after printing a usage error (return
 * CLI_EXIT_USAGE). --help prints the help to stdout and returns 'h'; the
 * command then returns CLI_EXIT_OK. The argument, if any, is in p->optarg. */
int cli_next_option(cli_parser *p);
void cli_print_help(const cli_parser *p, FILE *f);
/* The exit-status paragraph every --help ends with. */
extern const char cli_exit_help[];
/* The operands left after the options: p->argv + p->index, count. */
#define CLI_OPERANDS(p) ((p)->argv + (p)->index)
#define CLI_NOPERANDS(p) ((p)->argc - (p)->index)

/* Parsers for option arguments; they print the usage error themselves and
 * return -1. */
int cli_parse_int(const cli_parser *p, const char *text, long min, long max,
                  long *out);
int cli_parse_python(const cli_parser *p, const char *text,
                     const pyc_magic **out);
/* "default", "always", "never" (--check-hash-based-pycs). */
int cli_parse_check_hash(const cli_parser *p, const char *text,
                         pyc_check_hash *out);
/* "auto", "always", "never" (--color=WHEN). */
int cli_parse_color(const cli_parser *p, const char *text, cli_color_mode *out);

#endif /* PYCACHE_CLI_H */
