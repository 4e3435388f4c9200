/*
 * treeopts.c — parsing the options every tree command shares
 * (cli/treeopts.h) into the engine's scan_options.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/treeopts.h"

/* --ignore names, for the life of the process (one command per run). */
static const char *ignore_names[SCAN_MAX_IGNORES + 1];
static size_t n_ignores;

/* --prefix DIR / --no-prefix as given (the last one wins), and what
 * scan_resolve_prefix made of them. */
static const char *given_prefix;
static bool no_prefix;
static scan_prefix_origin prefix_origin;

/* sys.pycache_prefix as a 3.8+ interpreter started here would set it.
 * CPython reads it once at start-up, in Python/initconfig.c
 * (config_init_pycache_prefix, 3.8+): `-X pycache_prefix=PATH` wins over
 * the environment (and a bare `-X pycache_prefix` or an empty value sets
 * no prefix, the variable ignored); otherwise config_get_env_dup reads
 * $PYTHONPYCACHEPREFIX, which gives no prefix when it is unset or empty,
 * and is not read at all under -E or -I (use_environment = 0). A pycache
 * run cannot see an interpreter's -X, -E or -I flags: it follows the
 * environment, the case every shell, tox run and CI job shares, and
 * --prefix / --no-prefix say the rest. A relative value is kept relative,
 * as sys.pycache_prefix is: importlib joins it to the absolute source
 * directory (cache_from_source), so it is relative to the working
 * directory, ours as the interpreter's. 2.7-3.7 have no prefix at all
 * (sys.pycache_prefix is new in 3.8): the scan applies it to 3.8+ caches
 * only (scan.h). */
const char *scan_env_prefix(void)
{
    const char *env = getenv("PYTHONPYCACHEPREFIX");
    return env && *env ? env : NULL;
}

void scan_resolve_prefix(scan_options *opt, size_t npaths)
{
    opt->prefix = NULL;
    opt->prefix_only = false;
    if (no_prefix) {
        prefix_origin = SCAN_PREFIX_DISABLED;
    } else if (given_prefix) {
        opt->prefix = given_prefix;
        opt->prefix_only = npaths == 0;
        prefix_origin = SCAN_PREFIX_GIVEN;
    } else if ((opt->prefix = scan_env_prefix()) != NULL) {
        prefix_origin = SCAN_PREFIX_ENV;
    } else {
        prefix_origin = SCAN_PREFIX_NONE;
    }
}

scan_prefix_origin scan_prefix_origin_of(void)
{
    return prefix_origin;
}

void scan_prefix_note(const char *command, const scan_options *opt)
{
    switch (prefix_origin) {
    case SCAN_PREFIX_ENV:
    case SCAN_PREFIX_GIVEN:
        fprintf(stderr, "pycache %s: cache prefix '", command);
        cli_print_path(stderr, opt->prefix);
        fprintf(stderr, "' (%s): 3.8+ caches there, 2.7-3.7 in __pycache__%s\n",
                prefix_origin == SCAN_PREFIX_ENV ? "$PYTHONPYCACHEPREFIX" : "--prefix",
                opt->prefix_only ? "; only the prefix tree visited" : "");
        break;
    case SCAN_PREFIX_DISABLED:
        if (scan_env_prefix()) {
            fprintf(stderr, "pycache %s: $PYTHONPYCACHEPREFIX '", command);
            cli_print_path(stderr, scan_env_prefix());
            fputs("' ignored (--no-prefix): every cache judged in __pycache__\n", stderr);
        }
        break;
    case SCAN_PREFIX_NONE:
        break;
    }
}

int scan_next_option(cli_parser *p, scan_options *opt, int *exit_status)
{
    for (;;) {
        int id = cli_next_option(p);
        if (id == 0) {
            scan_resolve_prefix(opt, (size_t)(p->argc - p->index));
            return 0;
        }
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
        given_prefix = p->optarg;
        no_prefix = false;
        return 1;
    case SCAN_OPT_NO_PREFIX:
        given_prefix = NULL;
        no_prefix = true;
        return 1;
    default:
        return 0;
    }
}

