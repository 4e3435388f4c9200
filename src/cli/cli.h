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

/* The commands, one file each (cmd_NAME.c). Each returns an exit status. */
int cmd_check(int argc, char **argv);    /* cmd_check.c */
int cmd_clean(int argc, char **argv);    /* cmd_clean.c */
int cmd_doctor(int argc, char **argv);   /* cmd_doctor.c */
int cmd_prune(int argc, char **argv);    /* cmd_prune.c */
int cmd_convert(int argc, char **argv);  /* cmd_convert.c */
int cmd_compile(int argc, char **argv);  /* cmd_compile.c */
int cmd_inspect(int argc, char **argv);  /* cmd_inspect.c */
int cmd_stats(int argc, char **argv);    /* cmd_stats.c */
int cmd_versions(int argc, char **argv); /* cmd_versions.c */
int cmd_where(int argc, char **argv);    /* cmd_where.c */
int cmd_watch(int argc, char **argv);    /* cmd_watch.c */

/* "did you mean" for a mistyped word: the candidate closest to WORD (edit
 * distance, with transpositions), or NULL when none is close enough.
 * CANDIDATES is NULL-terminated. */
const char *cli_suggest(const char *word, const char *const *candidates);

/* ---- errors ---------------------------------------------------------------------
 * Lowercase, no trailing full stop, say what failed, quote paths:
 *   pycache: cannot open 'x/y.pyc': Permission denied
 * Paths are printed with unprintable bytes escaped (\n, \t, \xNN) so one error
 * is always one line. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "pycache: cannot OP 'PATH': strerror(ERR)"; ERR 0 leaves out the
 * strerror part. */
void cli_error_path(const char *op, const char *path, int err);
/* Usage error: "pycache CMD: MESSAGE" and "try 'pycache CMD --help'"; returns
 * CLI_EXIT_USAGE so callers can `return cli_usage_error(...)`. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes PATH to F with control bytes and invalid UTF-8 escaped, for human
 * output and messages: \n \t \r \\ and \xNN for other control bytes
 * (C0, DEL, C1), and for each byte of an invalid UTF-8 sequence; valid
 * printable UTF-8 is written as is. */
void cli_print_path(FILE *f, const char *path);

/* End of the program: flushes stdout and reports a write error on it
 * ("pycache: cannot write to standard output: No space left on device").
 * Returns CLI_EXIT_IO after a write error, else CLI_EXIT_OK. A closed pipe
 * (EPIPE) is not reported: `pycache ... | head` ends quietly. main() calls
 * it; long-running commands may call cli_stdout_failed() to stop early. */
int cli_finish_stdout(void);
/* True once a write to stdout has failed (the output is lost anyway). */
bool cli_stdout_failed(void);

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

/* ---- output ------------------------------------------------------------------------ */

typedef enum cli_format {
    CLI_FORMAT_HUMAN = 0,
    CLI_FORMAT_JSON, /* JSON Lines: one object per line */
    CLI_FORMAT_NUL,  /* paths only, each followed by a NUL byte (xargs -0) */
} cli_format;

/* Colour on stdout: on a terminal, unless NO_COLOR is set or --color=never. */
typedef enum cli_color_mode { CLI_COLOR_AUTO = 0, CLI_COLOR_ALWAYS, CLI_COLOR_NEVER } cli_color_mode;
bool cli_color_enabled(cli_color_mode mode, FILE *f);
/* "auto", "always", "never" (--color=WHEN). */
int cli_parse_color(const cli_parser *p, const char *text, cli_color_mode *out);
/* SGR sequences; print CLI_SGR_RESET after any of them. */
#define CLI_SGR_RESET "\033[0m"
#define CLI_SGR_BOLD "\033[1m"
#define CLI_SGR_DIM "\033[2m"
/* The colour of a status word: green fresh, yellow stale, red corrupt and
 * stale-used, magenta orphan/sourceless, dim for the rest. */
const char *cli_status_sgr(pyc_status status);

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
/* BYTES as lowercase hex in file order ("a70d0d0a"); NULL -> null. */
void cli_json_hex(cli_json *j, const char *key, const void *bytes, size_t len);
/* Writes S as a JSON string literal (with quotes), surrogateescape'd:
 * '"' '\\' escaped, control characters (and DEL) as \n \t ... \u00XX,
 * valid UTF-8 as is, each byte of an invalid sequence as \udcXX with the
 * sequences CPython's UTF-8 decoder rejects (overlongs, encoded surrogates,
 * > U+10FFFF, truncated). The output is always valid UTF-8. */
void cli_json_write_string(FILE *f, const char *s, size_t len);

/* Length of the valid UTF-8 sequence at S (at most N bytes available), or 0
 * when CPython's decoder (Objects/stringlib/codecs.h utf8_decode) would
 * reject the byte at S. */
size_t cli_utf8_sequence(const unsigned char *s, size_t n);

/* Writes a human-readable byte count: "1.2 MiB", "532 B". */
void cli_format_bytes(char *buf, size_t cap, uint64_t bytes);
/* Writes SECONDS since the epoch as ISO-8601 UTC: "2023-11-14T22:13:20Z". */
void cli_format_time_utc(char *buf, size_t cap, int64_t seconds);

#endif /* PYCACHE_CLI_H */
