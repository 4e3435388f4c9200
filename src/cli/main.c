/*
 * main.c — the entry point of pycache(1), which keeps Python bytecode
 * caches honest. A map of the command line:
 *
 * - main(): global options (--help, --version), then one subcommand
 *     - main.c          (this file)
 *     - commands.c      (the table of subcommands)
 *
 * - shared services, declared in cli.h:
 *     - cli.c           (exit statuses, error messages, option tables that
 *                        parse argv and render --help, "did you mean")
 *     - output.c        (JSON Lines with surrogateescape'd names, escaped
 *                        paths for humans, colour, sizes and dates, the
 *                        final write check on stdout)
 *
 * - the subcommands, one file each (cmd_NAME.c):
 *     - cmd_inspect.c   (one cache file: header fields and verdict)
 *     - cmd_versions.c  (the magic-number table)
 *     - cmd_where.c     (where each interpreter would put a source's cache)
 *
 * Everything that knows CPython lives in libpycache (include/pycache.h,
 * src/lib/); the command line only asks it and prints the answers.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

/* Makes sure fds 0-2 are open, so a file we open never becomes "stdout" by
 * accident (as bfs's open_std_streams). */
static int open_std_streams(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int nfd = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (nfd < 0)
            return -1;
        if (nfd != fd) {
            dup2(nfd, fd);
            close(nfd);
        }
    }
    return 0;
}

static void print_usage(FILE *f)
{
    fputs("usage: pycache [--version] [--help] COMMAND [ARGS]...\n", f);
}

static void print_help(void)
{
    print_usage(stdout);
    fputs("\nKeeps Python bytecode caches (.pyc) honest: finds stale, orphaned and\n"
          "sourceless ones by CPython's own import rules, for every version from\n"
          "2.7 to the newest.\n\ncommands:\n",
          stdout);
    int width = 0;
    for (const cli_command *c = cli_commands; c->name; c++) {
        int w = (int)strlen(c->name);
        if (w > width)
            width = w;
    }
    for (const cli_command *c = cli_commands; c->name; c++)
        printf("  %-*s  %s\n", width, c->name, c->summary);
    fputs("\noptions:\n"
          "  -h, --help     show this help and exit\n"
          "      --version  show the version and exit\n"
          "\n'pycache help COMMAND' or 'pycache COMMAND --help' describes a command.\n\n",
          stdout);
    fputs(cli_exit_help, stdout);
}

static int unknown_command(const char *name)
{
    const char *names[64];
    size_t n = 0;
    for (const cli_command *c = cli_commands; c->name && n < 63; c++)
        names[n++] = c->name;
    names[n] = NULL;
    const char *hint = cli_suggest(name, names);
    fflush(stdout);
    fputs("pycache: unknown command '", stderr);
    cli_print_path(stderr, name);
    if (hint)
        fprintf(stderr, "' (did you mean '%s'?)\n", hint);
    else
        fputs("'\n", stderr);
    fputs("try 'pycache --help'\n", stderr);
    return CLI_EXIT_USAGE;
}

static int run(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        fputs("try 'pycache --help'\n", stderr);
        return CLI_EXIT_USAGE;
    }
    const char *arg = argv[1];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
        print_help();
        return CLI_EXIT_OK;
    }
    if (strcmp(arg, "--version") == 0) {
        printf("pycache %s\n", pyc_version_string());
        return CLI_EXIT_OK;
    }
    if (arg[0] == '-') {
        static const char *const globals[] = {"--help", "--version", NULL};
        const char *hint = cli_suggest(arg, globals);
        fflush(stdout);
        fputs("pycache: unknown option '", stderr);
        cli_print_path(stderr, arg);
        if (hint)
            fprintf(stderr, "' (did you mean '%s'?)\n", hint);
        else
            fputs("'\n", stderr);
        fputs("try 'pycache --help'\n", stderr);
        return CLI_EXIT_USAGE;
    }
    /* `pycache help [COMMAND]`, as `git help`: the command's --help. */
    if (strcmp(arg, "help") == 0) {
        if (argc < 3) {
            print_help();
            return CLI_EXIT_OK;
        }
        if (argc > 3) {
            fputs("pycache help: one command at most\n", stderr);
            fputs("try 'pycache --help'\n", stderr);
            return CLI_EXIT_USAGE;
        }
        for (const cli_command *c = cli_commands; c->name; c++) {
            if (strcmp(c->name, argv[2]) == 0) {
                char help[] = "--help";
                char *hargv[] = {argv[2], help, NULL};
                cli_set_command(c->name);
                return c->run(2, hargv);
            }
        }
        return unknown_command(argv[2]);
    }
    for (const cli_command *c = cli_commands; c->name; c++) {
        if (strcmp(c->name, arg) == 0) {
            /* Every message from here on names the command. */
            cli_set_command(c->name);
            return c->run(argc - 1, argv + 1);
        }
    }
    return unknown_command(arg);
}

int main(int argc, char **argv)
{
    if (open_std_streams() != 0)
        return CLI_EXIT_IO;

    /* `pycache ... | head`: die quietly of SIGPIPE as cat and find do, even
     * when started with SIGPIPE ignored (then a write would get EPIPE). */
    signal(SIGPIPE, SIG_DFL);

    /* A terminal gets lines as they come (glibc's default); a pipe or a file
     * gets large blocks. */
    if (!isatty(STDOUT_FILENO))
        setvbuf(stdout, NULL, _IOFBF, 1 << 16);

    int status = run(argc, argv);
    return cli_exit_merge(status, cli_finish_stdout());
}
