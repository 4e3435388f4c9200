/*
 * output.h — what the user sees, the same from every command: the exit
 * statuses, error messages on stderr, and the writers of stdout (human
 * lines with escaped paths, colour, JSON Lines, NUL-separated paths).
 *
 * The bottom of the engine room: it knows the library's vocabulary
 * (pyc_status) and libc, nothing of argv or of any command. The names keep
 * the cli_ prefix they had when this lived in src/cli/: they are the
 * command line's voice, whoever calls them.
 */
#ifndef PYCACHE_ENGINE_OUTPUT_H
#define PYCACHE_ENGINE_OUTPUT_H

#include <stdarg.h>
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

/* ---- errors ---------------------------------------------------------------------
 * Lowercase, no trailing full stop, say what failed, quote paths, and name
 * the command that failed (set once by main with cli_set_command):
 *   pycache check: cannot open 'x/y.pyc': Permission denied
 * Paths are printed with unprintable bytes escaped (\n, \t, \xNN) so one error
 * is always one line. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "pycache: cannot OP 'PATH': strerror(ERR)"; ERR 0 leaves out the
 * strerror part. */
void cli_error_path(const char *op, const char *path, int err);
/* The same with DETAIL (when not NULL) in place of strerror(ERR):
 * "pycache check: cannot judge member 'a.zip/../x': unsafe name ...". */
void cli_error_detail(const char *op, const char *path, int err, const char *detail);

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

/* The command every message names ("check"), or NULL for "pycache: ...". */
void cli_set_command(const char *name);
const char *cli_command_name(void);
/* Writes "pycache: " or "pycache CMD: " to stderr, the start of every
 * message, for the few that write the rest themselves. */
void cli_message_prefix(void);
/* The message part of cli_error: FMT formatted, escaped to one line. */
void cli_vprint_message(FILE *f, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* ---- output ------------------------------------------------------------------------ */

typedef enum cli_format {
    CLI_FORMAT_HUMAN = 0,
    CLI_FORMAT_JSON, /* JSON Lines: one object per line */
    CLI_FORMAT_NUL,  /* paths only, each followed by a NUL byte (xargs -0) */
    CLI_FORMAT_GITHUB, /* GitHub Actions workflow commands: one
                          "::error file=PATH,title=...::MESSAGE" line per
                          finding (dangerous: error; clutter: warning) */
} cli_format;

/* Colour on stdout: on a terminal, unless NO_COLOR is set or --color=never. */
typedef enum cli_color_mode { CLI_COLOR_AUTO = 0, CLI_COLOR_ALWAYS, CLI_COLOR_NEVER } cli_color_mode;
bool cli_color_enabled(cli_color_mode mode, FILE *f);
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

/* ---- the listing ------------------------------------------------------------------
 * The per-file lines of a tree command (human, JSON Lines, NUL paths,
 * GitHub annotations) are written in path order, the same bytes on every
 * run whatever the thread count (engine/listing.h). A command starts the
 * listing once it knows its format; each writer then writes one record to
 * cli_listing() and ends it with cli_listing_end(PATH); the command's
 * summary comes after cli_listing_finish(). With no listing started,
 * cli_listing() is stdout and cli_listing_end does nothing (live output:
 * watch). */
int cli_listing_start(cli_format format); /* 0, or -1 out of memory */
FILE *cli_listing(void);
void cli_listing_end(const char *key, size_t key_len);
/* Writes the records, sorted. Returns CLI_EXIT_OK, or CLI_EXIT_IO after
 * printing why (a spilled run could not be written or read back). */
int cli_listing_finish(void);
/* The format the listing was started with (CLI_FORMAT_HUMAN when none). */
cli_format cli_listing_format(void);

/* Display columns PATH takes as cli_print_path writes it: escapes count
 * their length, wide East Asian characters and emoji two, combining marks
 * none. For aligning columns. */
size_t cli_path_width(const char *path);

#endif /* PYCACHE_ENGINE_OUTPUT_H */
