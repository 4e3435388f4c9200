/*
 * cmd_versions.c — `pycache versions`: the magic-number table.
 *
 * Prints what libpycache knows of each interpreter's bytecode caches: the
 * magic number its files start with, the Python version, the release that
 * introduced it, the cache tag in file names, the header size and whether
 * final releases write it. By default one row per version (its final value,
 * or the newest for a version still in alpha); --all lists every entry,
 * alphas, betas, 2.x -U variants and other implementations included.
 * The table itself is the library's (src/lib/magic.c). --installed lists
 * instead the interpreters found on this machine (engine/pythons.h's
 * discovery rule), each with where it was found: what clean --uninstalled
 * and stats count as installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/pythons.h"

enum { OPT_JSON = 256, OPT_ALL, OPT_INSTALLED };

static const cli_option options[] = {
    {OPT_JSON, "json", NULL, "JSON Lines: one object per magic number (or interpreter)"},
    {OPT_ALL, "all", NULL, "every magic number, not only each version's final one"},
    {OPT_INSTALLED, "installed", NULL,
     "the interpreters found installed here, and where each was found"},
    {0, NULL, NULL, NULL},
};

static void format_version(const pyc_magic *m, char *buf, size_t cap);

/* --installed: every interpreter file found, in discovery order. */
static int write_installed(bool json)
{
    const cli_python *list;
    size_t n = cli_python_list(&list);
    char version[32];
    if (json) {
        for (size_t i = 0; i < n; i++) {
            const pyc_magic *m = list[i].magic;
            char python[16];
            cli_json j;
            snprintf(python, sizeof python, "%d.%d", m->major, m->minor);
            cli_json_begin(&j, stdout);
            cli_json_str(&j, "python", python);
            cli_json_str(&j, "implementation", pyc_implementation_name(m->implementation));
            cli_json_str(&j, "tag", m->tag);
            cli_json_int(&j, "magic", m->number);
            cli_json_str(&j, "path", list[i].path);
            cli_json_str(&j, "found_in", list[i].found_in);
            cli_json_end(&j);
        }
        return CLI_EXIT_OK;
    }
    size_t w_version = strlen("PYTHON"), w_tag = strlen("TAG"), w_found = strlen("FOUND");
    for (size_t i = 0; i < n; i++) {
        format_version(list[i].magic, version, sizeof version);
        if (strlen(version) > w_version)
            w_version = strlen(version);
        if (list[i].magic->tag && strlen(list[i].magic->tag) > w_tag)
            w_tag = strlen(list[i].magic->tag);
        if (strlen(list[i].found_in) > w_found)
            w_found = strlen(list[i].found_in);
    }
    bool color = cli_color_enabled(CLI_COLOR_AUTO, stdout);
    printf("%s%-*s  %-*s  %-*s  %s%s\n", color ? CLI_SGR_BOLD : "", (int)w_version, "PYTHON",
           (int)w_tag, "TAG", (int)w_found, "FOUND", "PATH", color ? CLI_SGR_RESET : "");
    for (size_t i = 0; i < n; i++) {
        const pyc_magic *m = list[i].magic;
        format_version(m, version, sizeof version);
        printf("%-*s  %-*s  %-*s  ", (int)w_version, version, (int)w_tag,
               m->tag ? m->tag : "-", (int)w_found, list[i].found_in);
        cli_print_path(stdout, list[i].path);
        putchar('\n');
    }
    /* Where the search looked, so that an empty or short list says why. */
    char *root = cli_pyenv_root();
    printf("searched: $PYCACHE_PYTHONS (%s), PATH ", getenv("PYCACHE_PYTHONS") ? "set" : "unset");
    cli_print_path(stdout, cli_search_path());
    printf("%s, pyenv root ", getenv("PATH") ? "" : " (default: $PATH unset)");
    if (root)
        cli_print_path(stdout, root);
    else
        fputs("(none: no home directory)", stdout);
    putchar('\n');
    free(root);
    return CLI_EXIT_OK;
}

/* Whether the default listing shows M: the final (else newest) value of its
 * version. */
static bool is_version_row(const pyc_magic *m)
{
    return pyc_magic_final(m->implementation, m->major, m->minor) == m;
}

/* "3.11" for CPython, "pypy 3.10" for the others. */
static void format_version(const pyc_magic *m, char *buf, size_t cap)
{
    if (m->implementation == PYC_IMPL_CPYTHON)
        snprintf(buf, cap, "%d.%d", m->major, m->minor);
    else
        snprintf(buf, cap, "%s %d.%d", pyc_implementation_name(m->implementation),
                 m->major, m->minor);
}

static void write_json(const pyc_magic *m)
{
    unsigned char bytes[4];
    char python[16];
    cli_json j;

    /* The 4 bytes as they stand in the file: the word is little-endian. */
    bytes[0] = (unsigned char)m->word;
    bytes[1] = (unsigned char)(m->word >> 8);
    bytes[2] = (unsigned char)(m->word >> 16);
    bytes[3] = (unsigned char)(m->word >> 24);
    snprintf(python, sizeof python, "%d.%d", m->major, m->minor);

    cli_json_begin(&j, stdout);
    cli_json_int(&j, "magic", m->number);
    cli_json_hex(&j, "magic_hex", bytes, sizeof bytes);
    cli_json_str(&j, "implementation", pyc_implementation_name(m->implementation));
    cli_json_str(&j, "python", python);
    cli_json_str(&j, "release", m->release);
    cli_json_str(&j, "tag", m->tag); /* NULL -> null */
    cli_json_int(&j, "header_size", (int64_t)m->layout);
    cli_json_bool(&j, "final", m->final);
    cli_json_str(&j, "note", m->note);
    cli_json_end(&j);
}

static void write_human(bool all)
{
    static const char *const heads[] = {"MAGIC", "PYTHON", "RELEASE", "TAG",
                                        "HEADER", "FINAL"};
    size_t w_magic = strlen(heads[0]), w_version = strlen(heads[1]);
    size_t w_release = strlen(heads[2]), w_tag = strlen(heads[3]);
    size_t i, n = pyc_magic_count();
    bool color = cli_color_enabled(CLI_COLOR_AUTO, stdout);
    char version[32], number[8];

    /* Column widths from the rows shown. */
    for (i = 0; i < n; i++) {
        const pyc_magic *m = pyc_magic_at(i);
        size_t len;
        if (!all && !is_version_row(m))
            continue;
        format_version(m, version, sizeof version);
        len = (size_t)snprintf(number, sizeof number, "%u", m->number);
        if (len > w_magic)
            w_magic = len;
        if (strlen(version) > w_version)
            w_version = strlen(version);
        if (strlen(m->release) > w_release)
            w_release = strlen(m->release);
        if (m->tag && strlen(m->tag) > w_tag)
            w_tag = strlen(m->tag);
    }

    printf("%s%*s  %-*s  %-*s  %-*s  %s  %s%s\n", color ? CLI_SGR_BOLD : "",
           (int)w_magic, heads[0], (int)w_version, heads[1], (int)w_release,
           heads[2], (int)w_tag, heads[3], heads[4], heads[5],
           color ? CLI_SGR_RESET : "");
    for (i = 0; i < n; i++) {
        const pyc_magic *m = pyc_magic_at(i);
        if (!all && !is_version_row(m))
            continue;
        format_version(m, version, sizeof version);
        printf("%*u  %-*s  %-*s  %-*s  %*d  %s\n", (int)w_magic, m->number,
               (int)w_version, version, (int)w_release, m->release, (int)w_tag,
               m->tag ? m->tag : "-", (int)strlen(heads[4]), (int)m->layout,
               m->final ? "yes" : "no");
    }
}

int cmd_versions(int argc, char **argv)
{
    cli_parser p = {
        .command = "versions",
        .usage = "[--json] [--all | --installed]",
        .description =
            "Lists the magic numbers pycache knows: the first bytes of a cache\n"
            "file, which say which interpreter wrote it. By default one row per\n"
            "Python version, with the value its final releases write (the newest\n"
            "value for a version still in development); --all lists every value:\n"
            "alphas and betas, Python 2 -U variants, PyPy and GraalPy.\n"
            "HEADER is the header size in bytes: 8 (magic, mtime), 12 (magic,\n"
            "mtime, source size), 16 (magic, flags, then mtime and size or the\n"
            "source hash: PEP 552).\n"
            "With --installed, lists instead the interpreters found on this machine:\n"
            "what clean --uninstalled keeps and stats marks installed.\n",
        .options = options,
        .epilog = CLI_PYTHONS_RULE_HELP
                  "\n"
                  "Examples:\n"
                  "  pycache versions\n"
                  "  pycache versions --all --json | jq 'select(.python == \"3.11\")'\n"
                  "  pycache versions --installed\n",
    };
    bool json = false, all = false, installed = false;
    size_t i, n;
    int opt;

    cli_parser_init(&p, argc, argv);
    while ((opt = cli_next_option(&p)) != 0) {
        switch (opt) {
        case 'h':
            return CLI_EXIT_OK;
        case OPT_JSON:
            json = true;
            break;
        case OPT_ALL:
            all = true;
            break;
        case OPT_INSTALLED:
            installed = true;
            break;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (CLI_NOPERANDS(&p) > 0)
        return cli_usage_error("versions", "unexpected argument '%s'",
                               CLI_OPERANDS(&p)[0]);
    if (installed && all)
        return cli_usage_error("versions", "--installed and --all cannot be combined");
    if (installed)
        return write_installed(json);

    if (!json) {
        write_human(all);
        return CLI_EXIT_OK;
    }
    n = pyc_magic_count();
    for (i = 0; i < n; i++) {
        const pyc_magic *m = pyc_magic_at(i);
        if (all || is_version_row(m))
            write_json(m);
    }
    return CLI_EXIT_OK;
}
