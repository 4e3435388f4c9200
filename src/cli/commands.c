/*
 * commands.c — the table of subcommands, in the order `pycache --help`
 * lists them. A command is one file, cmd_NAME.c, exporting
 * int cmd_NAME(int argc, char **argv) (declared in cli.h); adding one is a
 * line here.
 */
#include <stddef.h>

#include "cli/cli.h"

const cli_command cli_commands[] = {
    {"check", cmd_check, "report every cache file under PATH with CPython's verdict on it"},
    {"clean", cmd_clean, "remove all bytecode under PATH (and, on request, tool caches)"},
    {"compile", cmd_compile, "byte-compile what is not fresh, with the real interpreters (parallel workers)"},
    {"prune", cmd_prune, "remove the bytecode CPython cannot or should not use; keep fresh caches"},
    {"doctor", cmd_doctor, "audit a project's bytecode habits and fix them (--fix)"},
    {"convert", cmd_convert, "rewrite fresh 3.7+ pycs into another invalidation mode, without recompiling"},
    {"normalize", cmd_normalize, "rewrite pycs into a canonical marshal form: equal code, equal bytes"},
    {"verify", cmd_verify, "recompile each cache's source with its own interpreter and compare the code"},
    {"diff", cmd_diff, "compare the code of two pycs or trees: header, ref-flag or real code differences"},
    {"inspect", cmd_inspect, "show what one cache file's header says, and its verdict"},
    {"where", cmd_where, "print where a source's cache goes, or a cache file's source"},
    {"stats", cmd_stats, "count cache files and bytes by interpreter, level, mode and status"},
    {"versions", cmd_versions, "list the magic numbers of every Python, and their cache tags"},
    {"watch", cmd_watch, "follow trees with inotify: remove a source's bytecode the moment it goes"},
    {NULL, NULL, NULL},
};
