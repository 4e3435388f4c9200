/*
 * cmd_where.c — `pycache where`: where a source's cache goes, and back.
 *
 * For each PATH: a source gives the cache file the chosen interpreter would
 * write for it (importlib.util.cache_from_source at the chosen optimization
 * level, under PYTHONPYCACHEPREFIX when one applies); a cache file gives its
 * source (importlib.util.source_from_cache). A path is taken for a cache
 * file by its name: a .pyc/.pyo, an entry of a __pycache__ directory, or a
 * path under the prefix. The mapping is the library's (src/lib/cachepath.c),
 * exactly each version's, including the paths on which CPython raises: those
 * are reported on stderr and make the exit status 1, after the others.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/treeopts.h"
#include "engine/pythons.h"

enum { OPT_JSON = 256, OPT_PYTHON, OPT_OPT, OPT_PREFIX };

static const cli_option options[] = {
    {OPT_PYTHON, "python", "X.Y",
     "whose rules apply (default: python3 on PATH, or a cache file's tag)"},
    {OPT_OPT, "opt", "N", "optimization level 0, 1 or 2 (-O, -OO) for sources"},
    {OPT_PREFIX, "prefix", "DIR",
     "PYTHONPYCACHEPREFIX (3.8+; default: $PYTHONPYCACHEPREFIX)"},
    TREE_NO_PREFIX_OPTION,
    {'0', "null", NULL, "end each path with a NUL byte, not a newline"},
    {OPT_JSON, "json", NULL, "JSON Lines: {path, python, opt, cache|source}"},
    {0, NULL, NULL, NULL},
};

typedef struct where_options {
    const pyc_magic *python; /* --python, or NULL */
    int opt;
    const char *prefix;      /* --prefix, or NULL */
    bool prefix_given;
    const char *env_prefix;  /* $PYTHONPYCACHEPREFIX, or NULL */
    cli_format format;
} where_options;

static bool is_3_8_or_newer(const pyc_magic *m)
{
    return m->major > 3 || (m->major == 3 && m->minor >= 8);
}

/* sys.pycache_prefix for M: --prefix, else $PYTHONPYCACHEPREFIX (3.8+ read
 * it; an empty value leaves sys.pycache_prefix None, as -X
 * pycache_prefix= does). */
static const char *prefix_for(const where_options *o, const pyc_magic *m)
{
    const char *p = o->prefix_given ? o->prefix : o->env_prefix;
    if (p == NULL || p[0] == '\0' || !is_3_8_or_newer(m))
        return NULL;
    return p;
}

/* Whether PATH names a cache file rather than a source; fills NAME with how
 * its last component parses. */
static bool is_cache_path(const char *path, const char *prefix,
                          pyc_cache_name *name)
{
    const char *base = strrchr(path, '/');
    size_t len = strlen(path);
    bool in_pycache = false, in_prefix = false;

    base = base ? base + 1 : path;
    if (base > path) {
        /* the component before the last: "__pycache__"? */
        const char *end = base - 1, *start = end;
        while (start > path && start[-1] != '/')
            start--;
        in_pycache = end - start == 11 && memcmp(start, "__pycache__", 11) == 0;
    }
    if (prefix != NULL) {
        /* source_from_cache: head.startswith(prefix.rstrip('/') + '/') */
        size_t n = strlen(prefix);
        while (n > 0 && prefix[n - 1] == '/')
            n--;
        in_prefix = (size_t)(base - path) > n + 1 && memcmp(path, prefix, n) == 0 &&
                    path[n] == '/';
    }
    pyc_cache_name_parse(base, in_pycache, in_prefix, name);
    return in_pycache || in_prefix ||
           (len >= 4 && (strcmp(path + len - 4, ".pyc") == 0 ||
                         strcmp(path + len - 4, ".pyo") == 0));
}

static void python_label(const pyc_magic *m, char *buf, size_t cap)
{
    snprintf(buf, cap, "%d.%d", m->major, m->minor);
}

static void report_failure(const char *path, const pyc_magic *m,
                           const char *why, int err)
{
    char version[16];
    python_label(m, version, sizeof version);
    fflush(stdout);
    cli_message_prefix();
    fputs("cannot map '", stderr);
    cli_print_path(stderr, path);
    fprintf(stderr, "' for %s %s: %s\n",
            m->implementation == PYC_IMPL_CPYTHON
                ? "Python"
                : pyc_implementation_name(m->implementation),
            version, why ? why : strerror(err));
}

static void write_result(const where_options *o, const char *path,
                         const pyc_magic *m, bool to_source, int opt,
                         const char *result)
{
    if (o->format == CLI_FORMAT_JSON) {
        char version[16];
        cli_json j;
        python_label(m, version, sizeof version);
        cli_json_begin(&j, stdout);
        cli_json_str(&j, "path", path);
        cli_json_str(&j, "implementation",
                     pyc_implementation_name(m->implementation));
        cli_json_str(&j, "python", version);
        if (opt >= 0)
            cli_json_int(&j, "opt", opt);
        else
            cli_json_null(&j, "opt");
        cli_json_str(&j, to_source ? "source" : "cache", result);
        cli_json_end(&j);
    } else if (o->format == CLI_FORMAT_NUL) {
        fputs(result, stdout);
        putchar('\0');
    } else {
        cli_print_path(stdout, result);
        putchar('\n');
    }
}

/* Maps one PATH; returns its exit status. */
static int where_one(const where_options *o, const char *path)
{
    pyc_cache_name name;
    const pyc_magic *m = o->python;
    const char *why = NULL, *prefix;
    char *result;
    bool to_source;
    int opt;

    /* Whether the path is a cache file depends on the prefix, which applies
     * to 3.8+ only: decide with the version given, else the default one
     * (with no default, with the prefix as given). */
    if (m == NULL)
        m = cli_default_python();
    if (m != NULL) {
        prefix = prefix_for(o, m);
    } else {
        prefix = o->prefix_given ? o->prefix : o->env_prefix;
        if (prefix != NULL && prefix[0] == '\0')
            prefix = NULL;
    }
    to_source = is_cache_path(path, prefix, &name);
    if (to_source && o->python == NULL && name.tag_len > 0 &&
        (name.kind == PYC_KIND_PYCACHE || name.kind == PYC_KIND_PREFIX)) {
        /* no --python: the interpreter the file's tag names, if known */
        const char *base = strrchr(path, '/');
        const pyc_magic *tagged;
        base = base ? base + 1 : path;
        tagged = pyc_magic_for_tag(base + name.tag_off, name.tag_len);
        if (tagged != NULL)
            m = tagged;
    }
    if (m == NULL) {
        cli_error("no python3 on PATH: give --python X.Y");
        return CLI_EXIT_USAGE;
    }
    prefix = prefix_for(o, m);

    if (to_source) {
        result = pyc_source_from_cache(m, path, prefix, &why);
        opt = name.kind == PYC_KIND_NONE ? -1 : name.opt;
        if (opt < 0)
            opt = -1;
    } else {
        result = pyc_cache_from_source_why(m, path, o->opt, prefix, NULL, &why);
        opt = o->opt;
    }
    if (result == NULL) {
        int err = errno;
        report_failure(path, m, why, err);
        return err == EINVAL ? CLI_EXIT_FINDINGS : CLI_EXIT_IO;
    }
    write_result(o, path, m, to_source, opt, result);
    free(result);
    return CLI_EXIT_OK;
}

int cmd_where(int argc, char **argv)
{
    cli_parser p = {
        .command = "where",
        .usage = "[--python X.Y] [--opt 0|1|2] [--prefix DIR] [-0|--json] PATH...",
        .description =
            "Maps each PATH as the chosen interpreter's importlib does: a source\n"
            "to the cache file it would write (cache_from_source), a cache file\n"
            "(a .pyc or .pyo, an entry of __pycache__, a path under the prefix)\n"
            "to its source (source_from_cache). Python 2 keeps NAME.pyc (NAME.pyo\n"
            "under -O) beside NAME.py; 3.2-3.4 write __pycache__/NAME.TAG.pyc (.pyo\n"
            "under -O); 3.5+ __pycache__/NAME.TAG[.opt-N].pyc; 3.8+ under\n"
            "PYTHONPYCACHEPREFIX, PREFIX/<absolute source dir>/NAME.TAG.pyc.\n"
            "Relative paths are resolved against the current directory only when\n"
            "a prefix applies, as CPython does. A path CPython refuses (ValueError,\n"
            "IndexError) is reported on stderr and makes the exit status 1.\n",
        .options = options,
        .epilog = "Examples:\n"
                  "  pycache where pkg/mod.py\n"
                  "  pycache where --python 3.9 --opt 2 pkg/mod.py\n"
                  "  pycache where pkg/__pycache__/mod.cpython-311.pyc\n"
                  "  pycache where --prefix /tmp/pyc --json src/app.py\n",
    };
    where_options o = {0};
    int status = CLI_EXIT_OK, opt, i;
    long level;

    o.env_prefix = tree_env_prefix(); /* treeopts.c: CPython's rule */
    cli_parser_init(&p, argc, argv);
    while ((opt = cli_next_option(&p)) != 0) {
        switch (opt) {
        case 'h':
            return CLI_EXIT_OK;
        case OPT_PYTHON:
            if (cli_parse_python(&p, p.optarg, &o.python) != 0)
                return CLI_EXIT_USAGE;
            break;
        case OPT_OPT:
            if (cli_parse_int(&p, p.optarg, 0, 2, &level) != 0)
                return CLI_EXIT_USAGE;
            o.opt = (int)level;
            break;
        case OPT_PREFIX:
            o.prefix = p.optarg;
            o.prefix_given = true;
            break;
        case TREE_OPT_NO_PREFIX:
            o.prefix = ""; /* no prefix, as -X pycache_prefix= */
            o.prefix_given = true;
            break;
        case '0':
            o.format = CLI_FORMAT_NUL;
            break;
        case OPT_JSON:
            o.format = CLI_FORMAT_JSON;
            break;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (CLI_NOPERANDS(&p) == 0)
        return cli_usage_error("where", "no PATH given");
    if (o.prefix_given && o.prefix[0] != '\0' && o.python != NULL &&
        !is_3_8_or_newer(o.python))
        return cli_usage_error("where", "--prefix needs Python 3.8 or newer "
                                        "(PYTHONPYCACHEPREFIX)");

    for (i = 0; i < CLI_NOPERANDS(&p); i++) {
        int s = where_one(&o, CLI_OPERANDS(&p)[i]);
        if (s == CLI_EXIT_USAGE)
            return s;
        status = cli_exit_merge(status, s);
    }
    return status;
}
