/*
 * cli.h — what every subcommand of the pycache command line shares.
 *
 * The command line is a table of subcommands (commands.c), one file each
 * (cmd_NAME.c), on top of a few shared services declared here:
 *   - exit statuses, one table for every command (DESIGN.md);
 *   - error reporting: one line on stderr, git style;
 *   - declarative option tables that parse argv and render --help;
 *   - output writers: human, JSON Lines, NUL-separated paths;
 *   - name encoding: bytes as Python's os.fsdecode would show them.
 * Nothing here re-derives a CPython rule: that is the library's job.
 */
#ifndef PYCACHE_CLI_H
#define PYCACHE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pycache.h"

/* ---- exit statuses ---------------------------------------------------------
 * 0 nothing to report; 1 findings the user should act on, or work left undone
 * on purpose; 2 usage error; 3 some paths could not be read or changed (takes
 * precedence over 1). */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FINDINGS = 1,
    CLI_EXIT_USAGE = 2,
    CLI_EXIT_IO = 3,
};

/* Combines two statuses by precedence: IO > FINDINGS > OK (USAGE aborts
 * before any work, so it never needs combining). */
int cli_exit_merge(int a, int b);

/* ---- subcommands -------------------------------------------------------------- */

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    const char *summary;               /* one line for `pycache --help` */
} cli_command;

extern const cli_command cli_commands[]; /* terminated by {NULL} */

/* ---- errors ---------------------------------------------------------------------
 * Lowercase, no trailing full stop, say what failed, quote paths:
 *   pycache: cannot open 'x/y.pyc': Permission denied
 * Paths are printed with unprintable bytes escaped (\n, \t, \xNN) so one error
 * is always one line. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "pycache: cannot OP 'PATH': strerror(ERR)" */
void cli_error_path(const char *op, const char *path, int err);
/* Usage error: "pycache CMD: MESSAGE" and "try 'pycache CMD --help'"; returns
 * CLI_EXIT_USAGE so callers can `return cli_usage_error(...)`. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes PATH to F with control bytes and invalid UTF-8 escaped, for human
 * output and messages. */
void cli_print_path(FILE *f, const char *path);

/* ---- options ---------------------------------------------------------------------
 * A command declares its options once; the table both parses (getopt_long)
 * and renders `--help`. */
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

/* Parsers for option arguments; they print the usage error themselves and
 * return -1. */
int cli_parse_int(const cli_parser *p, const char *text, long min, long max,
                  long *out);
int cli_parse_python(const cli_parser *p, const char *text,
                     const pyc_magic **out);

/* ---- output ------------------------------------------------------------------------ */

typedef enum cli_format {
    CLI_FORMAT_HUMAN = 0,
    CLI_FORMAT_JSON, /* JSON Lines: one object per line */
    CLI_FORMAT_NUL,  /* paths only, each followed by a NUL byte (xargs -0) */
} cli_format;

/* Colour on stdout: on a terminal, unless NO_COLOR is set or --color=never. */
typedef enum cli_color_mode { CLI_COLOR_AUTO = 0, CLI_COLOR_ALWAYS, CLI_COLOR_NEVER } cli_color_mode;
bool cli_color_enabled(cli_color_mode mode, FILE *f);

/* JSON Lines writer. Strings that are file names are written the way Python's
 * os.fsdecode would decode them (UTF-8 with surrogateescape: each undecodable
 * byte 0xXY becomes \udcXY), so json.loads + os.fsencode gives the bytes back.
 *
 *   cli_json j; cli_json_begin(&j, stdout);
 *   cli_json_str(&j, "path", path);
 *   cli_json_int(&j, "size", 123);
 *   cli_json_null(&j, "hash");
 *   cli_json_end(&j);        -> {"path": "...", "size": 123, "hash": null}\n
 */
typedef struct cli_json {
    FILE *f;
    int fields;
} cli_json;

void cli_json_begin(cli_json *j, FILE *f);
void cli_json_str(cli_json *j, const char *key, const char *value); /* NULL -> null */
void cli_json_strn(cli_json *j, const char *key, const char *value, size_t len);
void cli_json_int(cli_json *j, const char *key, int64_t value);
void cli_json_bool(cli_json *j, const char *key, bool value);
void cli_json_null(cli_json *j, const char *key);
void cli_json_raw(cli_json *j, const char *key, const char *json); /* pre-encoded */
void cli_json_end(cli_json *j);
/* Writes S as a JSON string literal (with quotes), surrogateescape'd. */
void cli_json_write_string(FILE *f, const char *s, size_t len);

/* Writes a human-readable byte count: "1.2 MiB", "532 B". */
void cli_format_bytes(char *buf, size_t cap, uint64_t bytes);

#endif /* PYCACHE_CLI_H */
