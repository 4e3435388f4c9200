/*
 * commands.c — the table of subcommands, in the order `pycache --help`
 * lists them. A command is one file, cmd_NAME.c, exporting
 * int cmd_NAME(int argc, char **argv) (declared in cli.h); adding one is a
 * line here.
 */
#include <stddef.h>

#include "cli/cli.h"

const cli_command cli_commands[] = {
    {"inspect", cmd_inspect, "show what one cache file's header says, and its verdict"},
    {"versions", cmd_versions, "list the magic numbers of every Python, and their cache tags"},
    {NULL, NULL, NULL},
};
