/*
 * treeopts.c — parsing the options every tree command shares
 * (cli/treeopts.h) into the engine's scan_options.
 */
#include <stdint.h>
#include <string.h>

#include "cli/treeopts.h"

/* --ignore names, for the life of the process (one command per run). */
static const char *ignore_names[SCAN_MAX_IGNORES + 1];
static size_t n_ignores;

int scan_next_option(cli_parser *p, scan_options *opt, int *exit_status)
{
    for (;;) {
        int id = cli_next_option(p);
        if (id == 0)
            return 0;
        if (id < 0 || id == 'h') {
            *exit_status = id < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
            return -1;
        }
        int r = scan_parse_option(p, id, opt);
        if (r < 0) {
            *exit_status = CLI_EXIT_USAGE;
            return -1;
        }
        if (r == 0)
            return id;
    }
}

int scan_parse_option(cli_parser *p, int id, scan_options *opt)
{
    switch (id) {
    case SCAN_OPT_IGNORE:
        if (!*p->optarg || strchr(p->optarg, '/')) {
            cli_usage_error(p->command,
                                   "--ignore takes a directory name, not a path: '%s'",
                                   p->optarg);
            return -1;
        }
        if (n_ignores == SCAN_MAX_IGNORES) {
            cli_usage_error(p->command, "too many --ignore options");
            return -1;
        }
        ignore_names[n_ignores++] = p->optarg;
        ignore_names[n_ignores] = NULL;
        opt->walk.ignore_names = ignore_names;
        return 1;
    case SCAN_OPT_NO_DEFAULT_IGNORES:
        opt->walk.skip_vcs = false;
        opt->walk.skip_node_modules = false;
        return 1;
    case SCAN_OPT_INCLUDE_VENVS:
        opt->walk.skip_venvs = false;
        return 1;
    case SCAN_OPT_ONE_FILE_SYSTEM:
        opt->walk.one_file_system = true;
        return 1;
    case SCAN_OPT_CHECK_HASH:
        if (strcmp(p->optarg, "default") == 0)
            opt->verdict.check_hash = PYC_CHECK_HASH_DEFAULT;
        else if (strcmp(p->optarg, "always") == 0)
            opt->verdict.check_hash = PYC_CHECK_HASH_ALWAYS;
        else if (strcmp(p->optarg, "never") == 0)
            opt->verdict.check_hash = PYC_CHECK_HASH_NEVER;
        else {
            cli_usage_error(p->command,
                                   "--check-hash-based-pycs takes default, always or "
                                   "never, not '%s'",
                                   p->optarg);
            return -1;
        }
        return 1;
    case SCAN_OPT_PREFIX:
        if (!*p->optarg) {
            cli_usage_error(p->command, "--prefix needs a directory");
            return -1;
        }
        opt->prefix = p->optarg;
        return 1;
    case SCAN_OPT_ZIPIMPORT:
    case SCAN_OPT_EXTRACTED:
    case SCAN_OPT_EXTRACT_MTIME: {
        /* Only offered by commands that point opt->archives at their own
         * (writable) archive_options. */
        archive_options *a = opt->archives;
        if (!a)
            return 0;
        if (id == SCAN_OPT_ZIPIMPORT) {
            a->use = ARCHIVE_USE_ZIPIMPORT;
        } else if (id == SCAN_OPT_EXTRACTED) {
            a->use = ARCHIVE_USE_EXTRACTED;
        } else if (archive_parse_mtime(p->optarg, a) != 0) {
            cli_usage_error(p->command,
                            "--extract-mtime takes archive, now or seconds since the "
                            "epoch, not '%s'",
                            p->optarg);
            return -1;
        }
        return 1;
    }
    default:
        return 0;
    }
}

