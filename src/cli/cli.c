/*
 * cli.c — the services every subcommand shares: exit-status merging, error
 * messages, "did you mean" suggestions, and the declarative option tables
 * that both parse argv (getopt_long underneath) and render --help.
 *
 * Conventions (git's and jq's): errors are one line on stderr, lowercase,
 * paths quoted and escaped; usage errors add a "try 'pycache CMD --help'"
 * line and exit 2; --help goes to stdout and exits 0.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

const char cli_exit_help[] =
    "exit status:\n"
    "  0  nothing to report\n"
    "  1  findings you should act on, or work left undone on purpose\n"
    "  2  usage error\n"
    "  3  some paths could not be read or changed (wins over 1)\n";

static void usage_hint(const char *cmd)
{
    if (cmd)
        fprintf(stderr, "try 'pycache %s --help'\n", cmd);
    else
        fputs("try 'pycache --help'\n", stderr);
}

__attribute__((format(printf, 2, 0)))
static void vusage_error(const char *cmd, const char *fmt, va_list ap)
{
    fflush(stdout);
    if (cmd)
        fprintf(stderr, "pycache %s: ", cmd);
    else
        fputs("pycache: ", stderr);
    cli_vprint_message(stderr, fmt, ap);
    fputc('\n', stderr);
    usage_hint(cmd);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vusage_error(cmd, fmt, ap);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

/* ---- suggestions ------------------------------------------------------------------- */

/* Optimal string alignment distance (Levenshtein plus adjacent
 * transpositions), for words of command-line length. */
static size_t edit_distance(const char *a, const char *b)
{
    enum { MAX = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (la >= MAX || lb >= MAX)
        return SIZE_MAX;
    static size_t d[MAX + 1][MAX + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

const char *cli_suggest(const char *word, const char *const *candidates)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    size_t len = strlen(word);
    /* Close enough: at most 2 edits, and fewer than half the word. */
    size_t limit = len < 4 ? 1 : 2;
    for (size_t i = 0; candidates[i]; i++) {
        size_t d = edit_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    return best_d <= limit ? best : NULL;
}

/* ---- options ----------------------------------------------------------------------- */

/* The implicit -h/--help. */
static const cli_option help_option = {'h', "help", NULL, "show this help and exit"};

/* getopt_long's tables, built from the command's table. One parser runs at a
 * time (each command parses its own argv once), so they are static: nothing
 * to free whichever way the command returns. */
enum { MAX_OPTIONS = 64 };
static struct option long_options[MAX_OPTIONS + 2];
static char short_options[3 * MAX_OPTIONS + 4];

static bool is_short(int id)
{
    return id > 0 && id < 256 && id != ':' && id != '?' && id != '-';
}

static size_t option_count(const cli_parser *p)
{
    size_t n = 0;
    while (p->options && p->options[n].id)
        n++;
    return n;
}

void cli_parser_init(cli_parser *p, int argc, char **argv)
{
    p->argc = argc;
    p->argv = argv;
    p->index = 1;
    p->optarg = NULL;
    p->state = NULL;

    size_t n = option_count(p), nl = 0, ns = 0;
    if (n > MAX_OPTIONS)
        n = MAX_OPTIONS; /* a programming error; the help shows them all */
    /* ':' first: a missing argument returns ':' rather than '?', so the two
     * mistakes get their own messages. Options are permuted (GNU): they may
     * come after operands, and "--" ends them. */
    short_options[ns++] = ':';
    for (size_t i = 0; i <= n; i++) {
        const cli_option *o = i < n ? &p->options[i] : &help_option;
        if (o->long_name) {
            long_options[nl].name = o->long_name;
            long_options[nl].has_arg = o->arg ? required_argument : no_argument;
            long_options[nl].flag = NULL;
            long_options[nl].val = o->id;
            nl++;
        }
        if (is_short(o->id)) {
            short_options[ns++] = (char)o->id;
            if (o->arg)
                short_options[ns++] = ':';
        }
    }
    short_options[ns] = '\0';
    memset(&long_options[nl], 0, sizeof long_options[nl]);
    optind = 0; /* glibc: 0 reinitialises getopt completely */
    opterr = 0; /* our messages, not getopt's */
}

static const cli_option *find_option(const cli_parser *p, int id)
{
    if (id == 'h')
        return &help_option;
    for (size_t i = 0; p->options && p->options[i].id; i++) {
        if (p->options[i].id == id)
            return &p->options[i];
    }
    return NULL;
}

/* The long names that start with PREFIX (for "ambiguous" messages). */
static size_t long_matches(const cli_parser *p, const char *prefix, size_t len,
                           const char **first, const char **second)
{
    size_t n = 0, count = option_count(p);
    for (size_t i = 0; i <= count; i++) {
        const cli_option *o = i < count ? &p->options[i] : &help_option;
        if (o->long_name && strncmp(o->long_name, prefix, len) == 0) {
            if (strlen(o->long_name) == len)
                return 1; /* exact match: never ambiguous */
            if (n == 0)
                *first = o->long_name;
            else if (n == 1)
                *second = o->long_name;
            n++;
        }
    }
    return n;
}

static int option_error(cli_parser *p, int ret)
{
    const char *cmd = p->command;
    /* The element getopt was looking at: for long options and the last
     * option of a cluster, argv[optind - 1]. */
    const char *text = optind > 0 && optind <= p->argc ? p->argv[optind - 1] : "";
    bool long_form = strncmp(text, "--", 2) == 0;

    if (ret == ':') {
        const cli_option *o = find_option(p, optopt);
        if (long_form && o && o->long_name)
            cli_usage_error(cmd, "option '--%s' needs an argument (%s)", o->long_name,
                            o->arg);
        else
            cli_usage_error(cmd, "option '-%c' needs an argument (%s)", optopt,
                            o ? o->arg : "ARG");
        return -1;
    }

    if (optopt != 0 && long_form && find_option(p, optopt)) {
        /* --flag=value for a flag that takes none. */
        size_t len = strcspn(text + 2, "=");
        cli_usage_error(cmd, "option '--%.*s' takes no argument", (int)len, text + 2);
        return -1;
    }
    if (optopt != 0) {
        cli_usage_error(cmd, "unknown option '-%c'", optopt);
        return -1;
    }

    /* An unknown or ambiguous long option. */
    char name[128];
    size_t len = strcspn(text + (long_form ? 2 : 0), "=");
    if (len >= sizeof name)
        len = sizeof name - 1;
    memcpy(name, text + (long_form ? 2 : 0), len);
    name[len] = '\0';

    const char *first = NULL, *second = NULL;
    if (long_matches(p, name, len, &first, &second) > 1) {
        cli_usage_error(cmd, "ambiguous option '--%s' (--%s, --%s%s)", name, first,
                        second, long_matches(p, name, len, &first, &second) > 2 ? ", ..." : "");
        return -1;
    }

    const char *names[MAX_OPTIONS + 2];
    size_t nn = 0, count = option_count(p);
    for (size_t i = 0; i < count && nn < MAX_OPTIONS; i++) {
        if (p->options[i].long_name)
            names[nn++] = p->options[i].long_name;
    }
    names[nn++] = help_option.long_name;
    names[nn] = NULL;
    const char *hint = cli_suggest(name, names);
    if (hint)
        cli_usage_error(cmd, "unknown option '--%s' (did you mean '--%s'?)", name, hint);
    else
        cli_usage_error(cmd, "unknown option '--%s'", name);
    return -1;
}

int cli_next_option(cli_parser *p)
{
    int ret = getopt_long(p->argc, p->argv, short_options, long_options, NULL);
    p->optarg = optarg;
    if (ret == -1) {
        p->index = optind;
        return 0;
    }
    if (ret == '?' || ret == ':')
        return option_error(p, ret);
    if (ret == 'h') {
        cli_print_help(p, stdout);
        return 'h';
    }
    return ret;
}

/* "-j, --json", "    --prefix=DIR", "-o N". */
static int option_label(const cli_option *o, char *buf, size_t cap)
{
    bool s = is_short(o->id);
    const char *arg = o->arg;
    if (s && o->long_name)
        return snprintf(buf, cap, "-%c, --%s%s%s", o->id, o->long_name, arg ? "=" : "",
                        arg ? arg : "");
    if (o->long_name)
        return snprintf(buf, cap, "    --%s%s%s", o->long_name, arg ? "=" : "",
                        arg ? arg : "");
    return snprintf(buf, cap, "-%c%s%s", o->id, arg ? " " : "", arg ? arg : "");
}

/* Writes TEXT wrapped at WIDTH columns: words are moved whole, each new
 * line indented by INDENT spaces; the first line continues at column START.
 * Explicit newlines are kept (each one restarts at INDENT). */
static void print_wrapped(FILE *f, const char *text, int start, int indent, int width)
{
    int col = start;
    bool words = false; /* a word is on the current line already */
    for (const char *s = text; *s;) {
        if (*s == '\n') {
            fputc('\n', f);
            s++;
            col = 0;
            words = false;
            if (*s)
                col = fprintf(f, "%*s", indent, "");
            continue;
        }
        if (*s == ' ') {
            s++;
            continue;
        }
        size_t n = strcspn(s, " \n");
        if (words && col + 1 + (int)n > width) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
            words = false;
        }
        if (words) {
            fputc(' ', f);
            col++;
        }
        fwrite(s, 1, n, f);
        col += (int)n;
        s += n;
        words = true;
    }
}

void cli_print_help(const cli_parser *p, FILE *f)
{
    enum { MAX_COLUMN = 28 };
    char label[160];
    size_t count = option_count(p);

    fprintf(f, "usage: pycache %s %s\n", p->command, p->usage ? p->usage : "");
    if (p->description && *p->description) {
        fputc('\n', f);
        print_wrapped(f, p->description, 0, 0, 79);
        fputc('\n', f);
    }

    /* Help text starts in one column: after the longest label that fits. */
    int column = 0;
    for (size_t i = 0; i <= count; i++) {
        const cli_option *o = i < count ? &p->options[i] : &help_option;
        int w = option_label(o, label, sizeof label);
        if (w > column && w <= MAX_COLUMN)
            column = w;
    }

    fputs("\noptions:\n", f);
    for (size_t i = 0; i <= count; i++) {
        const cli_option *o = i < count ? &p->options[i] : &help_option;
        int w = option_label(o, label, sizeof label);
        if (w <= column)
            fprintf(f, "  %-*s  ", column, label);
        else
            fprintf(f, "  %s\n  %-*s  ", label, column, "");
        print_wrapped(f, o->help ? o->help : "", column + 4, column + 4, 79);
        fputc('\n', f);
    }

    if (p->epilog && *p->epilog) {
        fputc('\n', f);
        fputs(p->epilog, f);
        if (p->epilog[strlen(p->epilog) - 1] != '\n')
            fputc('\n', f);
    }
    fputc('\n', f);
    fputs(cli_exit_help, f);
}

/* ---- option arguments -------------------------------------------------------------- */

int cli_parse_int(const cli_parser *p, const char *text, long min, long max,
                  long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno == ERANGE || v < min || v > max) {
        cli_usage_error(p->command, "invalid number '%s' (expected %ld to %ld)", text,
                        min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_python(const cli_parser *p, const char *text, const pyc_magic **out)
{
    const pyc_magic *m = pyc_magic_parse_version(text);
    if (!m) {
        if (errno == ENOENT)
            cli_usage_error(p->command,
                            "unknown Python version '%s' (see 'pycache versions')", text);
        else
            cli_usage_error(p->command,
                            "invalid Python version '%s' (expected 3.11, 311, cpython-311, "
                            "pypy3.10...)",
                            text);
        return -1;
    }
    *out = m;
    return 0;
}

/* One word out of a fixed list, with a suggestion when it is close. */
static int parse_word(const cli_parser *p, const char *what, const char *text,
                      const char *const *words, int *index)
{
    for (int i = 0; words[i]; i++) {
        if (strcmp(text, words[i]) == 0) {
            *index = i;
            return 0;
        }
    }
    const char *hint = cli_suggest(text, words);
    if (hint) {
        cli_usage_error(p->command, "invalid %s '%s' (did you mean '%s'?)", what, text,
                        hint);
    } else {
        char list[256] = "";
        size_t used = 0;
        for (int i = 0; words[i] && used < sizeof list; i++) {
            int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                             words[i]);
            if (w < 0)
                break;
            used += (size_t)w;
        }
        cli_usage_error(p->command, "invalid %s '%s' (expected %s)", what, text, list);
    }
    return -1;
}

int cli_parse_check_hash(const cli_parser *p, const char *text, pyc_check_hash *out)
{
    static const char *const words[] = {"default", "always", "never", NULL};
    static const pyc_check_hash values[] = {PYC_CHECK_HASH_DEFAULT, PYC_CHECK_HASH_ALWAYS,
                                            PYC_CHECK_HASH_NEVER};
    int i;
    if (parse_word(p, "--check-hash-based-pycs value", text, words, &i) != 0)
        return -1;
    *out = values[i];
    return 0;
}

int cli_parse_color(const cli_parser *p, const char *text, cli_color_mode *out)
{
    static const char *const words[] = {"auto", "always", "never", NULL};
    static const cli_color_mode values[] = {CLI_COLOR_AUTO, CLI_COLOR_ALWAYS,
                                            CLI_COLOR_NEVER};
    int i;
    if (parse_word(p, "--color value", text, words, &i) != 0)
        return -1;
    *out = values[i];
    return 0;
}
