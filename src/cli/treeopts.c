/*
 * treeopts.c — the options every tree command shares (cli/treeopts.h):
 * parsed once here into the engine's scan_options and the output settings,
 * and the operands gathered from argv and -i lists.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cli/treeopts.h"

/* --ignore patterns, for the life of the process (one command per run). */
static const char *ignore_names[SCAN_MAX_IGNORES + 1];
static size_t n_ignores;

/* --prefix DIR / --no-prefix as given (the last one wins), and where the
 * prefix tree_resolve_prefix settled on came from. */
static const char *given_prefix;
static bool no_prefix;
static tree_prefix_source prefix_origin;

void tree_options_init(tree_options *t)
{
    memset(t, 0, sizeof *t);
    scan_default_options(&t->scan);
    n_ignores = 0;
    ignore_names[0] = NULL;
    given_prefix = NULL;
    no_prefix = false;
    prefix_origin = TREE_PREFIX_NONE;
}

/* ---- the cache prefix ------------------------------------------------------------------
 *
 * sys.pycache_prefix as a 3.8+ interpreter started here sets it. CPython
 * reads it once at start-up, in Python/initconfig.c
 * (config_init_pycache_prefix, 3.8+): `-X pycache_prefix=PATH` wins over the
 * environment (a bare `-X pycache_prefix`, or an empty PATH, sets no prefix
 * and the variable is then ignored); otherwise config_get_env_dup reads
 * $PYTHONPYCACHEPREFIX, which gives no prefix when it is unset or empty, and
 * is not read at all under -E or -I (use_environment = 0). A pycache run
 * cannot see an interpreter's -X, -E or -I flags: it follows the environment
 * (what every shell, tox run and CI job shares), and --prefix / --no-prefix
 * say the rest. A relative value stays relative, as sys.pycache_prefix does
 * (importlib's cache_from_source joins it with the absolute source
 * directory: relative to the working directory, ours as the
 * interpreter's). 2.7-3.7 have no sys.pycache_prefix: the scan applies the
 * prefix to 3.8+ caches only (scan.h), and compile per interpreter. */
const char *tree_env_prefix(void)
{
    const char *env = getenv("PYTHONPYCACHEPREFIX");
    return env && *env ? env : NULL;
}

void tree_resolve_prefix(scan_options *opt, size_t npaths)
{
    opt->prefix = NULL;
    opt->prefix_only = false;
    if (no_prefix) {
        prefix_origin = TREE_PREFIX_DISABLED;
    } else if (given_prefix) {
        opt->prefix = given_prefix;
        opt->prefix_only = npaths == 0;
        prefix_origin = TREE_PREFIX_GIVEN;
    } else if ((opt->prefix = tree_env_prefix()) != NULL) {
        prefix_origin = TREE_PREFIX_ENV;
    } else {
        prefix_origin = TREE_PREFIX_NONE;
    }
}

tree_prefix_source tree_prefix_origin(void)
{
    return prefix_origin;
}

void tree_prefix_note(const char *command, const scan_options *opt)
{
    switch (prefix_origin) {
    case TREE_PREFIX_ENV:
    case TREE_PREFIX_GIVEN:
        fprintf(stderr, "pycache %s: cache prefix '", command);
        cli_print_path(stderr, opt->prefix);
        fprintf(stderr, "' (%s): 3.8+ caches there, 2.7-3.7 in __pycache__%s\n",
                prefix_origin == TREE_PREFIX_ENV ? "$PYTHONPYCACHEPREFIX" : "--prefix",
                opt->prefix_only ? "; only the prefix tree visited" : "");
        break;
    case TREE_PREFIX_DISABLED:
        if (tree_env_prefix()) {
            fprintf(stderr, "pycache %s: $PYTHONPYCACHEPREFIX '", command);
            cli_print_path(stderr, tree_env_prefix());
            fputs("' ignored (--no-prefix): every cache judged in __pycache__\n", stderr);
        }
        break;
    case TREE_PREFIX_NONE:
        break;
    }
}

static int parse_format(cli_parser *p, const char *text, cli_format *out)
{
    static const struct {
        const char *name;
        cli_format format;
    } formats[] = {
        {"human", CLI_FORMAT_HUMAN},
        {"json", CLI_FORMAT_JSON},
        {"null", CLI_FORMAT_NUL},
        {"github", CLI_FORMAT_GITHUB},
    };
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++) {
        if (strcmp(text, formats[i].name) == 0) {
            *out = formats[i].format;
            return 0;
        }
    }
    static const char *const names[] = {"human", "json", "null", "github", NULL};
    const char *hint = cli_suggest(text, names);
    if (hint)
        cli_usage_error(p->command, "unknown --format '%s' (did you mean '%s'?)", text,
                        hint);
    else
        cli_usage_error(p->command, "--format takes human, json, null or github, not '%s'",
                        text);
    return -1;
}

int tree_parse_option(cli_parser *p, int id, tree_options *t)
{
    scan_options *opt = &t->scan;
    switch (id) {
    case TREE_OPT_JSON:
        t->out.format = CLI_FORMAT_JSON;
        t->format_given = true;
        return 1;
    case '0':
        /* NUL-separated -i lists, and NUL-separated paths out unless a
         * format is asked for too (find -print0 | pycache ... -0 --json). */
        t->nul = true;
        return 1;
    case TREE_OPT_FORMAT:
        t->format_given = true;
        return parse_format(p, p->optarg, &t->out.format) == 0 ? 1 : -1;
    case 'v':
        t->out.verbose = true;
        return 1;
    case 'q':
        t->out.quiet++;
        return 1;
    case TREE_OPT_COLOR:
        return cli_parse_color(p, p->optarg, &t->out.color) == 0 ? 1 : -1;
    case 'i':
        if (t->nfrom == TREE_MAX_FROM) {
            cli_usage_error(p->command, "too many -i options");
            return -1;
        }
        t->from[t->nfrom++] = p->optarg;
        return 1;
    case TREE_OPT_IGNORE:
        if (!*p->optarg || strchr(p->optarg, '/')) {
            cli_usage_error(p->command,
                            "--ignore takes a directory name or a pattern, not a path: '%s'",
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
    case TREE_OPT_NO_DEFAULT_IGNORES:
        opt->walk.skip_vcs = false;
        opt->walk.skip_node_modules = false;
        return 1;
    case TREE_OPT_INCLUDE_VENVS:
        opt->walk.skip_venvs = false;
        return 1;
    case TREE_OPT_ONE_FILE_SYSTEM:
        opt->walk.one_file_system = true;
        return 1;
    case TREE_OPT_CHECK_HASH:
        return cli_parse_check_hash(p, p->optarg, &opt->verdict.check_hash) == 0 ? 1 : -1;
    case TREE_OPT_PREFIX:
        if (!*p->optarg) {
            cli_usage_error(p->command, "--prefix needs a directory");
            return -1;
        }
        given_prefix = p->optarg;
        no_prefix = false;
        return 1;
    case TREE_OPT_NO_PREFIX:
        given_prefix = NULL;
        no_prefix = true;
        return 1;
    case TREE_OPT_ZIPIMPORT:
        t->archive.use = ARCHIVE_USE_ZIPIMPORT;
        return 1;
    case TREE_OPT_EXTRACTED:
        t->archive.use = ARCHIVE_USE_EXTRACTED;
        return 1;
    case 'o':
        /* TREE_ARCHIVE_OUTPUT_OPTIONS' -o FILE; compile's -o is its own
         * (--optimize). */
        for (const cli_option *o = p->options; o->id || o->long_name; o++) {
            if (o->id == 'o' && o->long_name && strcmp(o->long_name, "output") == 0) {
                t->archive_output = p->optarg;
                return 1;
            }
        }
        return 0;
    case TREE_OPT_IN_PLACE:
        t->in_place = true;
        return 1;
    case TREE_OPT_OUTPUT:
        t->archive_output = p->optarg;
        return 1;
    case TREE_OPT_EXTRACT_MTIME:
        if (archive_parse_mtime(p->optarg, &t->archive) != 0) {
            cli_usage_error(p->command,
                            "--extract-mtime takes archive, now or seconds since the "
                            "epoch, not '%s'",
                            p->optarg);
            return -1;
        }
        return 1;
    default:
        return 0;
    }
}

int tree_next_option(cli_parser *p, tree_options *t, int *exit_status)
{
    for (;;) {
        int id = cli_next_option(p);
        if (id == 0)
            return 0;
        if (id < 0 || id == 'h') {
            *exit_status = id < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
            return -1;
        }
        int r = tree_parse_option(p, id, t);
        if (r < 0) {
            *exit_status = CLI_EXIT_USAGE;
            return -1;
        }
        if (r == 0)
            return id;
    }
}

/* ---- operands ---------------------------------------------------------------------- */

static int add_path(tree_options *t, char *path, size_t *cap)
{
    if (t->npaths == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        char **v = realloc(t->paths, ncap * sizeof *v);
        if (!v)
            return -1;
        t->paths = v;
        *cap = ncap;
    }
    t->paths[t->npaths++] = path;
    return 0;
}

/* Reads all of FILE ('-': standard input) into memory. */
static char *slurp(const char *file, size_t *len)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "re");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                errno = ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int err = errno;
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    if (f != stdin)
        fclose(f);
    else
        clearerr(stdin);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    errno = err;
    return buf;
}

void tree_resolve_output(tree_options *t)
{
    if (t->nul && !t->format_given)
        t->out.format = CLI_FORMAT_NUL;
}

int tree_archive_output(const cli_parser *p, const tree_options *t, const char **archive,
                        const char **output, int *status)
{
    *status = CLI_EXIT_USAGE;
    if (!t->archive_output && !t->in_place)
        return 0;
    if (t->archive_output && t->in_place) {
        cli_usage_error(p->command, "--output and --in-place cannot be combined");
        return -1;
    }
    if (CLI_NOPERANDS(p) != 1 || t->nfrom) {
        cli_usage_error(p->command, "--output and --in-place take exactly one ARCHIVE");
        return -1;
    }
    const char *path = t->paths[0];
    int kind = archive_sniff(path);
    if (kind < 0) {
        cli_error_path("open", path, errno);
        *status = CLI_EXIT_IO;
        return -1;
    }
    if (kind == 0) {
        cli_usage_error(p->command, "'%s' is not an archive: --output and --in-place are for "
                        "archives", path);
        return -1;
    }
    /* -o naming the archive (itself, or through a link): the original
     * would be replaced, which only --in-place asks for. */
    struct stat a, o;
    if (t->archive_output && stat(path, &a) == 0 && stat(t->archive_output, &o) == 0 &&
        a.st_dev == o.st_dev && a.st_ino == o.st_ino) {
        cli_usage_error(p->command, "-o '%s' is the ARCHIVE itself: --in-place replaces it",
                        t->archive_output);
        return -1;
    }
    *archive = path;
    *output = t->in_place ? path : t->archive_output;
    *status = CLI_EXIT_OK;
    return 1;
}

int tree_operands(cli_parser *p, tree_options *t)
{
    size_t cap = 0;
    tree_resolve_output(t);
    int stdin_lists = 0;
    for (size_t i = 0; i < t->nfrom; i++)
        stdin_lists += strcmp(t->from[i], "-") == 0;
    if (stdin_lists > 1)
        return cli_usage_error(p->command, "-i - names standard input twice");
    for (int i = p->index; i < p->argc; i++)
        if (add_path(t, p->argv[i], &cap) != 0)
            goto oom;
    /* Each list: one name per line (the newline removed, as py_compile -
     * and compileall -i do; nothing else stripped: names may hold any byte
     * but the separator), or NUL-separated with -0; empty entries skipped.
     * The lists' bytes are kept in one buffer the paths point into. */
    size_t total = 0;
    char *bufs[TREE_MAX_FROM] = {NULL};
    size_t lens[TREE_MAX_FROM] = {0};
    for (size_t i = 0; i < t->nfrom; i++) {
        bufs[i] = slurp(t->from[i], &lens[i]);
        if (!bufs[i]) {
            cli_error_path("read", t->from[i], errno);
            for (size_t k = 0; k < i; k++)
                free(bufs[k]);
            return CLI_EXIT_IO;
        }
        total += lens[i] + 1;
    }
    if (t->nfrom) {
        t->from_buf = malloc(total ? total : 1);
        if (!t->from_buf) {
            for (size_t k = 0; k < t->nfrom; k++)
                free(bufs[k]);
            goto oom;
        }
        char sep = t->nul ? '\0' : '\n';
        char *w = t->from_buf;
        for (size_t i = 0; i < t->nfrom; i++) {
            memcpy(w, bufs[i], lens[i]);
            w[lens[i]] = sep;
            free(bufs[i]);
            bufs[i] = NULL;
            char *end = w + lens[i] + 1;
            for (char *s = w; s < end;) {
                char *e = memchr(s, sep, (size_t)(end - s));
                *e = '\0';
                if (e > s && add_path(t, s, &cap) != 0)
                    goto oom;
                s = e + 1;
            }
            w = end;
        }
    }
    /* Lists were given but named nothing: nothing to visit (not "."). */
    t->scan.no_roots = t->nfrom && t->npaths == 0;
    t->scan.listed = t->npaths - (size_t)(p->argc - p->index);
    /* -i lists count as paths: --prefix DIR alone is the whole prefix tree. */
    tree_resolve_prefix(&t->scan, t->never_whole_prefix ? 1 : t->npaths + t->nfrom);
    if (t->out.format == CLI_FORMAT_HUMAN && !t->out.quiet)
        tree_prefix_note(p->command, &t->scan);
    if (cli_listing_start(t->out.format) != 0)
        goto oom;
    return 0;
oom:
    cli_error("out of memory");
    return CLI_EXIT_IO;
}

bool tree_color(const tree_options *t)
{
    return t->out.format == CLI_FORMAT_HUMAN && cli_color_enabled(t->out.color, stdout);
}

void tree_options_free(tree_options *t)
{
    free(t->paths);
    free(t->from_buf);
    t->paths = NULL;
    t->from_buf = NULL;
    t->npaths = 0;
}
