/*
 * fuzz_options.c — libFuzzer target for the command line's parsers and
 * writers (src/cli/ and src/engine/, linked without main.c):
 *
 *   mode 0  cli_parser_init / cli_next_option on a random argv against a
 *           sample option table (short, short with argument, long-only,
 *           long names that prefix each other), each argument also through
 *           cli_parse_int, cli_parse_python, cli_parse_check_hash,
 *           cli_parse_color and cli_suggest;
 *   mode 1  a real command of cli_commands[] with a random argv followed by
 *           "--help --help": each command's own option loop and argument
 *           parsers run (--tag, --debris, --expect, --fail-on, --opt...),
 *           and the command returns at --help (0) or at a usage error (2)
 *           before doing anything. "--" is dropped from the random words
 *           so the final --help is always an option (one --help may be
 *           taken as an option's argument, hence two). As a safety net the
 *           link wraps scan_run and every libc call that changes files or
 *           runs programs (Makefile: FUZZ_WRAP): reaching one from a
 *           command aborts the run; regcomp is wrapped too (see there);
 *   mode 2  cli_json_write_string on random bytes: the output must be valid
 *           UTF-8, a well-formed JSON string, and decode (with
 *           surrogateescape, \udcXX -> byte 0xXX, as os.fsencode) back to
 *           the input; cli_utf8_sequence is compared with an independent
 *           decoder (code-point ranges, as RFC 3629 / CPython's utf8_decode);
 *   mode 3  cli_print_path: the output is valid UTF-8 without control
 *           characters (C0, DEL, C1) and unescapes back to the input.
 *
 * stdout goes to /dev/null; stderr (the FILE *, not fd 2, which libFuzzer
 * and the sanitizers keep) is captured per call and checked: a usage error
 * is "pycache CMD: ..." then "try 'pycache CMD --help'".
 *
 *   make fuzz    (tests/fuzz/README.md)
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/scan.h"

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            restore_stderr();                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- stderr capture --------------------------------------------------------- */

static FILE *real_stderr;
static char *err_buf;
static size_t err_len;

static void capture_stderr(void)
{
    FILE *f = open_memstream(&err_buf, &err_len);
    if (!f)
        abort();
    stderr = f;
}

static void restore_stderr(void)
{
    if (stderr != real_stderr) {
        fclose(stderr);
        stderr = real_stderr;
    }
}

/* ---- safety net: nothing past option parsing may run -------------------------- */

static int in_cli; /* set while a command runs */

#define FORBIDDEN(what)                                                        \
    do {                                                                       \
        if (in_cli) {                                                          \
            restore_stderr();                                                  \
            fprintf(stderr, "fuzz_options: a command reached %s\n", what);     \
            abort();                                                           \
        }                                                                      \
    } while (0)

int __wrap_scan_run(char *const *paths, size_t npaths, const scan_options *opt, scan_fn *fn,
                    void *ctx);
int __wrap_scan_run(char *const *paths, size_t npaths, const scan_options *opt, scan_fn *fn,
                    void *ctx)
{
    in_cli = 1;
    FORBIDDEN("scan_run");
    abort();
}

int __real_unlink(const char *path);
int __wrap_unlink(const char *path);
int __wrap_unlink(const char *path)
{
    FORBIDDEN("unlink");
    return __real_unlink(path);
}
int __real_unlinkat(int fd, const char *path, int flags);
int __wrap_unlinkat(int fd, const char *path, int flags);
int __wrap_unlinkat(int fd, const char *path, int flags)
{
    FORBIDDEN("unlinkat");
    return __real_unlinkat(fd, path, flags);
}
int __real_rmdir(const char *path);
int __wrap_rmdir(const char *path);
int __wrap_rmdir(const char *path)
{
    FORBIDDEN("rmdir");
    return __real_rmdir(path);
}
int __real_rename(const char *a, const char *b);
int __wrap_rename(const char *a, const char *b);
int __wrap_rename(const char *a, const char *b)
{
    FORBIDDEN("rename");
    return __real_rename(a, b);
}
int __real_renameat(int fa, const char *a, int fb, const char *b);
int __wrap_renameat(int fa, const char *a, int fb, const char *b);
int __wrap_renameat(int fa, const char *a, int fb, const char *b)
{
    FORBIDDEN("renameat");
    return __real_renameat(fa, a, fb, b);
}
int __wrap_posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                       const posix_spawnattr_t *attr, char *const argv[], char *const envp[]);
int __wrap_posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                       const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    in_cli = 1;
    FORBIDDEN("posix_spawn");
    abort();
}
int __wrap_posix_spawnp(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[]);
int __wrap_posix_spawnp(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    in_cli = 1;
    FORBIDDEN("posix_spawnp");
    abort();
}
pid_t __wrap_fork(void);
pid_t __wrap_fork(void)
{
    in_cli = 1;
    FORBIDDEN("fork");
    abort();
}
int __wrap_execve(const char *path, char *const argv[], char *const envp[]);
int __wrap_execve(const char *path, char *const argv[], char *const envp[])
{
    in_cli = 1;
    FORBIDDEN("execve");
    abort();
}
int __wrap_execvp(const char *path, char *const argv[]);
int __wrap_execvp(const char *path, char *const argv[])
{
    in_cli = 1;
    FORBIDDEN("execvp");
    abort();
}

/* A known finding (tests/unit/test_fuzz_regressions.c,
 * test_compile_x_stacked_quantifiers): glibc's regcomp needs memory
 * exponential in stacked quantifiers ('j+++...'), so `compile -x` runs out
 * of memory. Until the command bounds its patterns, patterns with many
 * quantifiers fail here as if memory ran out (REG_ESPACE, a path the
 * command handles), so the run can go on. */
int __real_regcomp(regex_t *rx, const char *pattern, int flags);
int __wrap_regcomp(regex_t *rx, const char *pattern, int flags);
int __wrap_regcomp(regex_t *rx, const char *pattern, int flags)
{
    size_t quantifiers = 0;
    for (const char *c = pattern; *c; c++)
        quantifiers += *c == '+' || *c == '*' || *c == '?' || *c == '{';
    if (quantifiers > 8)
        return REG_ESPACE;
    return __real_regcomp(rx, pattern, flags);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    real_stderr = stderr;
    fflush(stdout);
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
        abort();
    close(fd);
    /* GNU getopt stops at the first operand under POSIXLY_CORRECT; the
     * "--help" appended in mode 1 must always be reached. */
    unsetenv("POSIXLY_CORRECT");
    /* A command must never find a terminal to colour or show progress on. */
    setenv("NO_COLOR", "1", 1);
    return 0;
}

/* ---- argv from the input --------------------------------------------------------- */

enum { MAX_WORDS = 40 };

/* Splits DATA at NUL bytes into at most MAX_WORDS words after ARGV[0], each
 * an exact-size heap copy. Returns argc; *STORE receives what to free. */
static int split_words(const uint8_t *data, size_t size, char *argv0, char **argv,
                       char **store, bool drop_dashdash)
{
    char *buf = malloc(size + 1);
    if (!buf)
        abort();
    memcpy(buf, data, size);
    buf[size] = '\0';
    *store = buf;
    int argc = 0;
    argv[argc++] = argv0;
    size_t i = 0;
    while (i <= size && argc < MAX_WORDS + 1) {
        char *w = buf + i;
        size_t n = strlen(w);
        i += n + 1;
        if (i > size + 1)
            break;
        if (drop_dashdash && strcmp(w, "--") == 0)
            continue;
        argv[argc++] = w;
        if (i == size + 1)
            break;
    }
    argv[argc] = NULL;
    return argc;
}

/* A usage error's stderr: "pycache CMD: ...\n" ... "try 'pycache CMD --help'\n". */
static void check_usage_error(const char *cmd)
{
    char head[64], hint[96];
    snprintf(head, sizeof head, "pycache %s: ", cmd);
    snprintf(hint, sizeof hint, "try 'pycache %s --help'\n", cmd);
    fflush(stderr);
    CHECK(err_len > strlen(head) + strlen(hint));
    CHECK(memcmp(err_buf, head, strlen(head)) == 0);
    CHECK(strcmp(err_buf + err_len - strlen(hint), hint) == 0);
}

/* ---- mode 0: a sample table ---------------------------------------------------------- */

enum { OPT_PREFIX = 256, OPT_PRE, OPT_CHECK_HASH, OPT_COLOR, OPT_COLOUR, OPT_PYTHON, OPT_LEVEL };

static const cli_option sample[] = {
    {'j', "json", NULL, "JSON Lines"},
    {'o', "output", "FILE", "write to FILE"},
    {'n', NULL, NULL, "short only"},
    {'x', NULL, "N", "short only, with an argument"},
    {'0', "null", NULL, "NUL-separated"},
    {OPT_PREFIX, "prefix", "DIR", "a long-only option"},
    {OPT_PRE, "pre", NULL, "a prefix of --prefix: exact match wins"},
    {OPT_CHECK_HASH, "check-hash-based-pycs", "WHEN", "default, always, never"},
    {OPT_COLOR, "color", "WHEN", "auto, always, never"},
    {OPT_COLOUR, "colour", "WHEN", "ambiguous with --color for --col"},
    {OPT_PYTHON, "python", "VERSION", "a Python version"},
    {OPT_LEVEL, "opt", "N", "0 to 2"},
    {0, NULL, NULL, NULL},
};

static const cli_option *sample_option(int id)
{
    for (const cli_option *o = sample; o->id; o++)
        if (o->id == id)
            return o;
    return NULL;
}

static void fuzz_sample(const uint8_t *data, size_t size)
{
    char *argv[MAX_WORDS + 2], *orig[MAX_WORDS + 2], *store;
    static char argv0[] = "fuzz";
    int argc = split_words(data, size, argv0, argv, &store, false);
    memcpy(orig, argv, sizeof argv);
    cli_parser p = {.command = "fuzz", .usage = "[OPTION]... [PATH]...",
                    .description = "a sample table", .options = sample};
    capture_stderr();
    cli_parser_init(&p, argc, argv);
    /* Each call consumes at least one character of a cluster or a word. */
    size_t limit = (size_t)argc;
    for (int i = 0; i < argc; i++)
        limit += strlen(argv[i]);
    int id;
    size_t rounds = 0;
    while ((id = cli_next_option(&p)) != 0) {
        CHECK(++rounds <= limit);
        if (id < 0) {
            check_usage_error("fuzz");
            break;
        }
        fflush(stderr);
        CHECK(err_len == 0);
        if (id == 'h')
            break;
        const cli_option *o = sample_option(id);
        CHECK(o != NULL);
        CHECK((o->arg != NULL) == (p.optarg != NULL));
        if (!p.optarg)
            continue;
        long l;
        const pyc_magic *m;
        pyc_check_hash ch;
        cli_color_mode cm;
        int r;
        switch (id) {
        case 'x':
        case OPT_LEVEL:
            r = cli_parse_int(&p, p.optarg, id == 'x' ? -5 : 0, id == 'x' ? 5 : 2, &l);
            break;
        case OPT_PYTHON:
            r = cli_parse_python(&p, p.optarg, &m);
            if (r == 0)
                CHECK(m != NULL);
            break;
        case OPT_CHECK_HASH:
            r = cli_parse_check_hash(&p, p.optarg, &ch);
            break;
        case OPT_COLOR:
        case OPT_COLOUR:
            r = cli_parse_color(&p, p.optarg, &cm);
            break;
        default: {
            static const char *const words[] = {"json", "output", "prefix", "python",
                                                "check-hash-based-pycs", "", NULL};
            const char *s = cli_suggest(p.optarg, words);
            CHECK(s == NULL || strlen(s) < 32);
            r = 0;
        }
        }
        if (r != 0) {
            check_usage_error("fuzz");
            break;
        }
        fflush(stderr);
        CHECK(err_len == 0);
    }
    if (id == 0) {
        CHECK(p.index >= 1 && p.index <= argc);
        fflush(stderr);
        CHECK(err_len == 0);
    }
    restore_stderr();
    /* getopt permutes argv: the same words, each once. */
    for (int i = 0; i < argc; i++) {
        int found = 0;
        for (int k = 0; k < argc; k++)
            found += argv[k] == orig[i];
        CHECK(found == 1);
    }
    free(err_buf);
    err_buf = NULL;
    free(store);
}

/* ---- mode 1: the real commands -------------------------------------------------------- */

static void fuzz_command(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    size_t ncommands = 0;
    while (cli_commands[ncommands].name)
        ncommands++;
    if (!ncommands)
        return;
    const cli_command *c = &cli_commands[data[0] % ncommands];
    char *argv[MAX_WORDS + 4], *store, argv0[32];
    static char help1[] = "--help", help2[] = "--help";
    snprintf(argv0, sizeof argv0, "%s", c->name);
    int argc = split_words(data + 1, size - 1, argv0, argv, &store, true);
    argv[argc++] = help1;
    argv[argc++] = help2;
    argv[argc] = NULL;
    capture_stderr();
    in_cli = 1;
    int rc = c->run(argc, argv);
    in_cli = 0;
    fflush(stderr);
    if (rc != 0 && rc != CLI_EXIT_USAGE) {
        restore_stderr();
        fprintf(stderr, "fuzz_options: '%s' returned %d\n", c->name, rc);
        abort();
    }
    if (rc == CLI_EXIT_USAGE)
        check_usage_error(c->name);
    else
        CHECK(err_len == 0);
    restore_stderr();
    free(err_buf);
    err_buf = NULL;
    free(store);
}

/* ---- modes 2, 3: the writers ----------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at S, by code point: RFC 3629
 * (no overlongs, no surrogates, nothing above U+10FFFF), which is what
 * CPython's strict decoder accepts. 0 when invalid. */
static size_t ref_sequence(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static bool valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = ref_sequence(s + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static void fuzz_json(const uint8_t *data, size_t size)
{
    const unsigned char *in = data;
    for (size_t i = 0; i < size; i++)
        CHECK(cli_utf8_sequence(in + i, size - i) == ref_sequence(in + i, size - i));

    char *out;
    size_t olen;
    FILE *f = open_memstream(&out, &olen);
    if (!f)
        abort();
    cli_json_write_string(f, (const char *)data, size);
    fclose(f);
    const unsigned char *o = (const unsigned char *)out;
    CHECK(valid_utf8(o, olen));
    CHECK(olen >= 2 && o[0] == '"' && o[olen - 1] == '"');

    /* Decode the JSON string, surrogateescape'd escapes back to bytes. */
    size_t pos = 0; /* position in the input */
    for (size_t i = 1; i < olen - 1;) {
        unsigned char c = o[i];
        CHECK(c >= 0x20 && c != 0x7F && c != '"');
        if (c != '\\') {
            size_t k = ref_sequence(o + i, olen - 1 - i);
            CHECK(k > 0 && pos + k <= size && memcmp(o + i, in + pos, k) == 0);
            /* The writer kept a sequence the decoder would keep. */
            CHECK(ref_sequence(in + pos, size - pos) == k);
            i += k;
            pos += k;
            continue;
        }
        CHECK(i + 1 < olen - 1);
        unsigned char e = o[i + 1], b;
        switch (e) {
        case '"': b = '"'; break;
        case '\\': b = '\\'; break;
        case 'n': b = '\n'; break;
        case 'r': b = '\r'; break;
        case 't': b = '\t'; break;
        case 'b': b = '\b'; break;
        case 'f': b = '\f'; break;
        case 'u': {
            CHECK(i + 6 <= olen - 1);
            int h[4];
            for (int k = 0; k < 4; k++) {
                h[k] = hexval(o[i + 2 + k]);
                CHECK(h[k] >= 0);
            }
            unsigned v = (unsigned)(h[0] << 12 | h[1] << 8 | h[2] << 4 | h[3]);
            if (v >= 0xDC80 && v <= 0xDCFF) {
                /* surrogateescape: a byte no valid sequence starts with */
                b = (unsigned char)(v & 0xFF);
                CHECK(pos < size && in[pos] == b && ref_sequence(in + pos, size - pos) == 0);
            } else {
                CHECK(v < 0x20 || v == 0x7F);
                b = (unsigned char)v;
            }
            CHECK(pos < size && in[pos] == b);
            i += 6;
            pos++;
            continue;
        }
        default:
            CHECK(!"unknown escape");
        }
        CHECK(pos < size && in[pos] == b);
        i += 2;
        pos++;
    }
    CHECK(pos == size);
    free(out);
}

static void fuzz_print_path(const uint8_t *data, size_t size)
{
    char *path = malloc(size + 1);
    if (!path)
        abort();
    memcpy(path, data, size);
    path[size] = '\0';
    size_t n = strlen(path);

    char *out;
    size_t olen;
    FILE *f = open_memstream(&out, &olen);
    if (!f)
        abort();
    cli_print_path(f, path);
    fclose(f);
    const unsigned char *o = (const unsigned char *)out;
    CHECK(valid_utf8(o, olen));
    size_t pos = 0;
    for (size_t i = 0; i < olen;) {
        unsigned char c = o[i];
        CHECK(c >= 0x20 && c != 0x7F);
        CHECK(!(c == 0xC2 && i + 1 < olen && o[i + 1] < 0xA0)); /* C1 controls */
        if (c != '\\') {
            size_t k = ref_sequence(o + i, olen - i);
            CHECK(pos + k <= n && memcmp(o + i, path + pos, k) == 0);
            i += k;
            pos += k;
            continue;
        }
        CHECK(i + 1 < olen);
        unsigned char e = o[i + 1], b;
        if (e == 'x') {
            CHECK(i + 3 < olen);
            int hi = hexval(o[i + 2]), lo = hexval(o[i + 3]);
            CHECK(hi >= 0 && lo >= 0);
            b = (unsigned char)(hi << 4 | lo);
            i += 4;
        } else {
            b = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == '\\' ? '\\' : 0;
            CHECK(b != 0);
            i += 2;
        }
        CHECK(pos < n && (unsigned char)path[pos] == b);
        pos++;
    }
    CHECK(pos == n);
    free(out);
    free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 4) {
    case 0: fuzz_sample(data + 1, size - 1); break;
    case 1: fuzz_command(data + 1, size - 1); break;
    case 2: fuzz_json(data + 1, size - 1); break;
    case 3: fuzz_print_path(data + 1, size - 1); break;
    }
    return 0;
}
