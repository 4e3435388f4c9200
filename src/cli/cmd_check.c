/*
 * cmd_check.c — `pycache check`: the state of every bytecode file in a tree.
 *
 * Rides on scan_run: each cache file comes with the verdict CPython's import
 * system would reach. Human output lists the problems grouped by status
 * (most dangerous first) with counts and bytes, then a one-line summary;
 * --json streams one JSON Lines object per file; -0 streams the paths.
 * Exit 1 when a status in the --fail-on set was found, 3 when some path
 * could not be read (precedence), else 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/report.h"
#include "cli/treeopts.h"
#include "engine/scan.h"
#include "platform/stattime.h"

enum {
    OPT_DEEP = 256,
    OPT_EXPECT,
    OPT_FAIL_ON,
    OPT_SOURCELESS_OK,
};

static const cli_option options[] = {
    TREE_OUTPUT_OPTIONS,
    {OPT_DEEP, "deep", NULL,
     "also read each fresh pyc's body as marshal.loads would (damage makes import fail)"},
    {OPT_EXPECT, "expect", "X.Y[:OPT,...]",
     "every source needs a fresh cache for Python X.Y (levels OPT, default 0; 2.x: "
     "the legacy NAME.pyc, or NAME.pyo for 1 and 2): report the others as missing "
     "(repeatable)"},
    {OPT_FAIL_ON, "fail-on", "LIST",
     "statuses that make the exit status 1 (comma-separated; default the dangerous "
     "ones, stale-used,sourceless,corrupt, and missing; 'all' for every problem, "
     "'none' for never)"},
    {OPT_SOURCELESS_OK, "sourceless-ok", NULL,
     "a sourceless deployment (compile -b, sources left out): sourceless files are "
     "meant to be imported, not findings (a bad header is still corrupt)"},
    TREE_FROM_FILE_OPTION,
    TREE_CHECK_HASH_OPTION,
    TREE_PREFIX_OPTION,
    TREE_ARCHIVE_OPTIONS,
    TREE_WALK_OPTIONS,
    {0, NULL, NULL, NULL},
};

/* Display order: the most dangerous first. */
static const pyc_status display_order[] = {
    PYC_STALE_USED, PYC_CORRUPT, PYC_SOURCELESS, PYC_MISSING, PYC_ORPHAN,
    PYC_STALE,      PYC_SHADOWED, PYC_TEMP,      PYC_FOREIGN, PYC_FRESH,
};

/* The statuses of a severity (pyc_status_severity) as a --fail-on mask. */
static unsigned severity_mask(pyc_severity least)
{
    unsigned mask = 0;
    for (int st = 0; st < PYC_STATUS_COUNT; st++)
        if (pyc_status_severity((pyc_status)st) >= least)
            mask |= 1u << st;
    return mask;
}

/* Default: the dangerous statuses, and missing (asked for with --expect). */
#define DEFAULT_FAIL_ON severity_mask(PYC_SEVERITY_EXPECTED)

struct line {
    char *path;
    char *detail; /* reason + python, preformatted */
};

struct line_list {
    struct line *v;
    size_t n, cap;
};

struct check {
    cli_format format;
    bool verbose, quiet, color, sourceless_ok;
    int missing_opt; /* the level of the SCAN_MISSING being reported */
    unsigned fail_on;
    int status;
    uint64_t count[PYC_STATUS_COUNT];
    uint64_t bytes[PYC_STATUS_COUNT];
    uint64_t files, total_bytes;
    struct line_list lines[PYC_STATUS_COUNT];
    uint64_t racy;           /* fresh caches pyc_verdict_racy calls racy */
    char **racy_paths;       /* human output: their paths */
    size_t nracy_paths, cap_racy;
    bool out_of_memory;
};

/* A status that is no problem here: fresh, foreign, and sourceless in a
 * sourceless deployment (--sourceless-ok). */
static bool fine(const struct check *c, pyc_status st)
{
    return pyc_status_severity(st) == PYC_SEVERITY_FINE ||
           (c->sourceless_ok && st == PYC_SOURCELESS);
}

/* Listed without -v: every status but fresh (foreign files too: they are
 * worth knowing about), and sourceless unless --sourceless-ok. */
static bool listed(const struct check *c, pyc_status st)
{
    return c->verbose ||
           (st != PYC_FRESH && !(c->sourceless_ok && st == PYC_SOURCELESS));
}

static void remember(struct check *c, pyc_status st, const char *path,
                     const char *detail)
{
    struct line_list *l = &c->lines[st];
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct line *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv) {
            c->out_of_memory = true;
            return;
        }
        l->v = nv;
        l->cap = cap;
    }
    char *p = strdup(path), *d = strdup(detail);
    if (!p || !d) {
        free(p);
        free(d);
        c->out_of_memory = true;
        return;
    }
    l->v[l->n].path = p;
    l->v[l->n].detail = d;
    l->n++;
}

/* Racy fresh caches, for the human note after the listing. */
static void remember_racy(struct check *c, const char *path)
{
    if (c->nracy_paths == c->cap_racy) {
        size_t cap = c->cap_racy ? c->cap_racy * 2 : 16;
        char **nv = realloc(c->racy_paths, cap * sizeof *nv);
        if (!nv) {
            c->out_of_memory = true;
            return;
        }
        c->racy_paths = nv;
        c->cap_racy = cap;
    }
    char *p = strdup(path);
    if (!p) {
        c->out_of_memory = true;
        return;
    }
    c->racy_paths[c->nracy_paths++] = p;
}

/* pyc_verdict_racy for a fresh timestamp cache: one fstatat of the cache
 * file (the scan's batched header reads make none). */
static bool racy_cache(const scan_item *it)
{
    const pyc_verdict *v = it->verdict;
    /* An archive member has no file time of its own here. */
    if (it->archive || v->status != PYC_FRESH || v->header.mode != PYC_MODE_TIMESTAMP)
        return false;
    struct stat st;
    if (fstatat(it->dirfd, it->name, &st, 0) != 0)
        return false;
    struct timespec mtime = psys_mtim(&st);
    return pyc_verdict_racy(v, &mtime);
}

/* The racy test's fstatat runs in the walking thread, outside the lock
 * that serialises on_item (scan_options.prepare): under the lock, one
 * stat per fresh cache made the walks queue for it (futex calls 7.5k ->
 * 96k on the bench corpus). The answer travels in IT->prepared. */
static bool racy_yes = true; /* only its address is used */

static void prepare_racy(scan_item *it, void **state, void *ctx)
{
    if (it->event == SCAN_CACHE && it->verdict && racy_cache(it))
        it->prepared = &racy_yes;
}

static void count(struct check *c, pyc_status st, int64_t size)
{
    c->files++;
    c->count[st]++;
    if (size > 0) {
        c->bytes[st] += (uint64_t)size;
        c->total_bytes += (uint64_t)size;
    }
    if ((c->fail_on & (1u << st)) && !(c->sourceless_ok && st == PYC_SOURCELESS))
        c->status = cli_exit_merge(c->status, CLI_EXIT_FINDINGS);
}

static void output(struct check *c, pyc_status st, const scan_item *it,
                   const char *path, const char *source, const pyc_verdict *v,
                   const pyc_magic *expect, int64_t size, bool racy)
{
    count(c, st, size);
    if (racy) {
        /* Racy caches are fresh: listed (human: under the racy note; JSON:
         * with "racy": true) only with -v, so the listing of a healthy tree
         * stays empty; without -v the note gives their number. */
        c->racy++;
        if (!c->quiet && c->verbose && c->format == CLI_FORMAT_HUMAN)
            remember_racy(c, path);
    }
    if (c->quiet || !listed(c, st))
        return;
    switch (c->format) {
    case CLI_FORMAT_JSON: {
        /* The scan spared the fstat of fresh files (no_sizes): a listed
         * file's size is SIZE (size_of). */
        pyc_verdict sized;
        if (v && v->file_size < 0 && size >= 0) {
            sized = *v;
            sized.file_size = size;
            v = &sized;
        }
        if (v && racy) {
            report_json_verdict_racy(path, source, v, pyc_status_name(st));
        } else if (v && it->layer) {
            report_json_verdict_image(path, source, v, pyc_status_name(st), it->archive,
                                      it->member, it->layer);
        } else if (v) {
            report_json_verdict_member(path, source, v, pyc_status_name(st), NULL, NULL,
                                       it->archive, it->member);
        } else {
            /* A missing cache: no file to describe, only where it should be. */
            cli_json j;
            char python[16];
            snprintf(python, sizeof python, "%d.%d", expect->major, expect->minor);
            cli_json_begin(&j, cli_listing());
            cli_json_str(&j, "path", path);
            cli_json_str(&j, "status", "missing");
            cli_json_str(&j, "reason", "no-cache");
            cli_json_str(&j, "source", source);
            /* 2.x keeps legacy NAME.pyc / NAME.pyo beside the source. */
            bool legacy = !strstr(path, "__pycache__/");
            cli_json_str(&j, "kind", legacy ? "legacy" : "pycache");
            cli_json_str(&j, "implementation",
                         pyc_implementation_name(expect->implementation));
            cli_json_str(&j, "python", python);
            cli_json_str(&j, "tag", expect->tag);
            cli_json_int(&j, "opt", c->missing_opt);
            cli_json_null(&j, "magic");
            cli_json_null(&j, "mode");
            cli_json_null(&j, "mtime");
            cli_json_null(&j, "source_size");
            cli_json_null(&j, "hash");
            cli_json_null(&j, "size");
            if (it->archive) {
                cli_json_str(&j, "archive", it->archive);
                cli_json_str(&j, "member", it->member);
            }
            cli_json_end(&j);
            cli_listing_end(path, strlen(path));
        }
        break;
    }
    case CLI_FORMAT_NUL:
        fputs(path, cli_listing());
        fputc('\0', cli_listing());
        cli_listing_end(path, strlen(path));
        break;
    case CLI_FORMAT_GITHUB:
        if (!fine(c, st))
            report_github_verdict(path, st, v, expect);
        break;
    case CLI_FORMAT_HUMAN: {
        /* "REASON<padded to 13> PYTHON", built by hand: printf's format
         * machinery cost more than judging the file (callgrind). */
        char detail[96], python[32];
        const char *reason = v ? pyc_reason_name(v->reason) : "no-cache";
        if (!*reason)
            reason = "-";
        report_python_label(v ? report_python_of(v) : expect, python, sizeof python);
        size_t rl = strnlen(reason, 40), pl = strlen(python), k = rl;
        memcpy(detail, reason, rl);
        while (k < 13)
            detail[k++] = ' ';
        detail[k++] = ' ';
        memcpy(detail + k, python, pl + 1);
        remember(c, st, path, detail);
        break;
    }
    }
}

/* The size of a listed file when the scan spared its fstat (no_sizes). */
static int64_t size_of(const scan_item *it)
{
    struct stat st;
    if (it->verdict->file_size >= 0)
        return it->verdict->file_size;
    if (fstatat(it->dirfd, it->name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return -1;
    return (int64_t)st.st_size;
}

static int on_item(const scan_item *it, void *ctx)
{
    struct check *c = ctx;
    switch (it->event) {
    case SCAN_CACHE:
        output(c, it->verdict->status, it, it->path, it->source_path, it->verdict, NULL,
               listed(c, it->verdict->status) ? size_of(it) : it->verdict->file_size,
               it->prepared == &racy_yes);
        if (it->verdict->error && it->verdict->reason == PYC_REASON_UNREADABLE) {
            /* The verdict's record says it (reason "unreadable"). */
            cli_error_path(it->verdict->error_op ? it->verdict->error_op : "read", it->path,
                           it->verdict->error);
            c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
        }
        break;
    case SCAN_FOREIGN: {
        pyc_verdict v;
        memset(&v, 0, sizeof v);
        v.status = PYC_FOREIGN;
        v.reason = PYC_REASON_NOT_BYTECODE;
        v.file_size = -1;
        output(c, PYC_FOREIGN, it, it->path, NULL, &v, NULL, -1, false);
        break;
    }
    case SCAN_MISSING:
        c->missing_opt = it->expect_opt;
        output(c, PYC_MISSING, it, it->path, it->source_path, it->verdict, it->expect, -1,
               false);
        break;
    case SCAN_ERROR:
        report_error_detail(it->error_op, it->path, it->error, it->error_detail);
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
        break;
    case SCAN_SOURCE:
    case SCAN_PYCACHE_POST:
        break;
    }
    return cli_stdout_failed() ? 1 : 0;
}

static void print_racy(struct check *c);

static int by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const struct line *)a)->path, ((const struct line *)b)->path);
}

static void print_human(struct check *c)
{
    char bytes[32];
    for (size_t i = 0; i < sizeof display_order / sizeof *display_order; i++) {
        pyc_status st = display_order[i];
        struct line_list *l = &c->lines[st];
        if (!l->n)
            continue;
        /* Sorted: a parallel scan finds files in no fixed order. */
        qsort(l->v, l->n, sizeof *l->v, by_path);
        /* Columns aligned by display width: escapes and wide characters
         * are counted as the terminal shows them. */
        size_t width = 0;
        for (size_t k = 0; k < l->n; k++) {
            size_t w = cli_path_width(l->v[k].path);
            if (w > width)
                width = w;
        }
        if (width > 72)
            width = 72;
        cli_format_bytes(bytes, sizeof bytes, c->bytes[st]);
        printf("%s%s%s: %llu file%s, %s\n", c->color ? cli_status_sgr(st) : "",
               pyc_status_name(st), c->color ? CLI_SGR_RESET : "",
               (unsigned long long)c->count[st], c->count[st] == 1 ? "" : "s", bytes);
        for (size_t k = 0; k < l->n; k++) {
            fputs("  ", stdout);
            cli_print_path(stdout, l->v[k].path);
            size_t w = cli_path_width(l->v[k].path);
            for (size_t pad = w < width ? width - w : 0; pad > 0; pad--)
                putchar_unlocked(' ');
            fputs("  ", stdout);
            fputs(l->v[k].detail, stdout);
            putchar_unlocked('\n');
        }
    }
    print_racy(c);
    /* The summary line: the cache files and their statuses (the counts add
     * up to the first number), then what is not a cache file: missing
     * caches (--expect) and foreign files. The total size only when every
     * size is known (the default output spares the stat of each fresh
     * file). */
    uint64_t caches = c->files - c->count[PYC_MISSING] - c->count[PYC_FOREIGN];
    printf("%llu cache file%s", (unsigned long long)caches, caches == 1 ? "" : "s");
    if (c->verbose) {
        cli_format_bytes(bytes, sizeof bytes, c->total_bytes);
        printf(", %s", bytes);
    }
    const char *sep = ": ";
    for (int st = 0; st < PYC_STATUS_COUNT; st++) {
        if (!c->count[st] || st == PYC_MISSING || st == PYC_FOREIGN)
            continue;
        printf("%s%llu %s", sep, (unsigned long long)c->count[st],
               pyc_status_name((pyc_status)st));
        sep = ", ";
    }
    if (c->count[PYC_MISSING])
        printf("; %llu missing", (unsigned long long)c->count[PYC_MISSING]);
    if (c->count[PYC_FOREIGN])
        printf("; %llu foreign file%s", (unsigned long long)c->count[PYC_FOREIGN],
               c->count[PYC_FOREIGN] == 1 ? "" : "s");
    putchar('\n');
}

/* The note on racy caches, before the summary line. */
static void print_racy(struct check *c)
{
    if (!c->racy)
        return;
    if (c->nracy_paths)
        qsort(c->racy_paths, c->nracy_paths, sizeof *c->racy_paths, by_string);
    printf("racy: %llu fresh cache%s written in the second %s source's recorded mtime"
           " names: a same-size edit in that second would go unseen (%s`prune --racy`"
           " removes %s)\n",
           (unsigned long long)c->racy, c->racy == 1 ? "" : "s",
           c->racy == 1 ? "its" : "their", c->verbose ? "" : "-v lists them; ",
           c->racy == 1 ? "it" : "them");
    for (size_t k = 0; k < c->nracy_paths; k++) {
        fputs("  ", stdout);
        cli_print_path(stdout, c->racy_paths[k]);
        putchar('\n');
    }
}

static void free_lines(struct check *c)
{
    for (size_t k = 0; k < c->nracy_paths; k++)
        free(c->racy_paths[k]);
    free(c->racy_paths);
    for (int st = 0; st < PYC_STATUS_COUNT; st++) {
        for (size_t k = 0; k < c->lines[st].n; k++) {
            free(c->lines[st].v[k].path);
            free(c->lines[st].v[k].detail);
        }
        free(c->lines[st].v);
    }
}

/* --fail-on LIST: status names, comma-separated, "all" (every status that
 * is a problem: all but fresh and foreign) or "none". */
static int parse_fail_on(const cli_parser *p, const char *text, unsigned *out)
{
    *out = 0;
    if (strcmp(text, "none") == 0)
        return 0;
    if (strcmp(text, "all") == 0) {
        *out = severity_mask(PYC_SEVERITY_CLUTTER);
        return 0;
    }
    char *copy = strdup(text);
    if (!copy)
        return -1;
    char *save = NULL;
    for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        pyc_status st;
        if (pyc_status_parse(w, &st) != 0) {
            cli_usage_error(p->command, "unknown status '%s' in --fail-on", w);
            free(copy);
            return -1;
        }
        *out |= 1u << st;
    }
    free(copy);
    return 0;
}

/* --expect X.Y[:OPT,...] */
static int parse_expect(const cli_parser *p, const char *text, scan_expect *out)
{
    char version[64];
    const char *colon = strchr(text, ':');
    size_t n = colon ? (size_t)(colon - text) : strlen(text);
    if (n >= sizeof version) {
        cli_usage_error(p->command, "--expect: '%s' is not a Python version", text);
        return -1;
    }
    memcpy(version, text, n);
    version[n] = '\0';
    if (cli_parse_python(p, version, &out->python) != 0)
        return -1;
    out->opts = 1;
    if (colon) {
        out->opts = 0;
        for (const char *s = colon + 1; *s; s++) {
            if (*s == ',')
                continue;
            if (*s < '0' || *s > '2' || (s[1] && s[1] != ',')) {
                cli_usage_error(p->command,
                                "--expect: optimization levels are 0, 1 or 2, not '%s'",
                                colon + 1);
                return -1;
            }
            out->opts |= 1u << (*s - '0');
        }
        if (!out->opts) {
            cli_usage_error(p->command, "--expect: no optimization level after ':'");
            return -1;
        }
    }
    return 0;
}

int cmd_check(int argc, char **argv)
{
    cli_parser p = {
        .command = "check",
        .usage = "[OPTION]... [PATH]...",
        .description =
            "Report every bytecode cache file under each PATH (default: the current "
            "directory) with the status CPython's import system would give it: fresh, "
            "stale (rejected and recompiled), stale-used (an unchecked-hash pyc whose "
            "source changed: loaded anyway), orphan (no source: never loaded), "
            "sourceless (a legacy NAME.pyc imported in place of a missing NAME.py), "
            "shadowed (a legacy file its interpreter ignores), corrupt (makes the import "
            "fail), temp (an interrupted write's leftover), foreign (not bytecode, inside "
            "__pycache__). Each file is judged by the interpreter it belongs to (its tag "
            "and magic number). Version-control metadata, node_modules and virtual "
            "environments are skipped unless asked for. A PATH that is an archive (zip, "
            "wheel, zipapp, egg, tar in any compression) is judged member by member "
            "without extracting it, as its extracted files or, with --zipimport (the "
            "default for zipapps), as zipimport sees it on sys.path. A container image "
            "(an OCI layout, as a tar or a directory, or a docker save tar) is judged on the file system its "
            "layers make, whiteouts applied, each layer's digest checked.",
        .options = options,
        .epilog = "Examples:\n"
                  "  pycache check                      problems under the current directory\n"
                  "  pycache check --expect 3.11 app/   every source has a fresh 3.11 cache\n"
                  "  pycache check --json src | jq .    one JSON object per cache file\n"
                  "  pycache check -0 --fail-on none . | xargs -0 ls -l\n"
                  "  TZ=UTC pycache check --expect 3.12 function.zip   after Lambda extracts it\n"
                  "  docker save app:1 -o img.tar; pycache check --expect 3.12 img.tar\n",
    };
    tree_options t;
    tree_options_init(&t);
    t.scan.archives = &t.archive;
    struct check c;
    memset(&c, 0, sizeof c);
    c.fail_on = DEFAULT_FAIL_ON;
    scan_expect expect[16];
    size_t nexpect = 0;

    cli_parser_init(&p, argc, argv);
    int id, exit_status;
    while ((id = tree_next_option(&p, &t, &exit_status)) > 0) {
        switch (id) {
        case OPT_DEEP:
            t.scan.verdict.deep = true;
            break;
        case OPT_EXPECT:
            if (nexpect == sizeof expect / sizeof *expect)
                return cli_usage_error(p.command, "too many --expect options");
            if (parse_expect(&p, p.optarg, &expect[nexpect]) != 0)
                return CLI_EXIT_USAGE;
            nexpect++;
            break;
        case OPT_FAIL_ON:
            if (parse_fail_on(&p, p.optarg, &c.fail_on) != 0)
                return CLI_EXIT_USAGE;
            break;
        case OPT_SOURCELESS_OK:
            c.sourceless_ok = true;
            break;
        }
    }
    if (id < 0)
        return exit_status;
    if ((exit_status = tree_operands(&p, &t)) != 0)
        return exit_status;
    /* --expect judges each PATH's sources: the whole prefix tree alone
     * (--prefix DIR, no PATH) has none. With a prefix in force, a 3.8+
     * cache is looked for in the prefix (scan.c). */
    if (nexpect && t.scan.prefix_only)
        return cli_usage_error(p.command,
                               "--expect with --prefix needs the PATH whose sources to check");
    scan_options sopt = t.scan;
    sopt.expect = expect;
    sopt.nexpect = nexpect;
    c.format = t.out.format;
    c.verbose = t.out.verbose;
    c.quiet = t.out.quiet;
    c.color = tree_color(&t);
    sopt.progress = !c.quiet && isatty(STDERR_FILENO);
    /* The racy test costs one fstatat per fresh timestamp cache; only the
     * human note and the JSON records of fresh caches (-v) show its answer.
     * -q, -0 and --format=github print nothing that depends on it (racy
     * caches are fresh: no status, no exit code), so they skip it. */
    if (!c.quiet && (c.format == CLI_FORMAT_HUMAN ||
                     (c.format == CLI_FORMAT_JSON && c.verbose)))
        sopt.prepare = prepare_racy;
    /* Sizes are shown for listed files only (size_of), in every format:
     * without -v, fresh ones need no fstat, and the scan batches the
     * header reads. */
    sopt.no_sizes = !c.verbose;

    int rc = scan_run(t.paths, t.npaths, &sopt, on_item, &c);
    if (rc < 0) {
        cli_error("cannot scan: %s", strerror(errno));
        free_lines(&c);
        tree_options_free(&t);
        cli_listing_finish();
        return CLI_EXIT_IO;
    }
    c.status = cli_exit_merge(c.status, cli_listing_finish());
    if (c.out_of_memory) {
        cli_error("out of memory while collecting the report");
        c.status = cli_exit_merge(c.status, CLI_EXIT_IO);
    }
    if (c.format == CLI_FORMAT_HUMAN && !c.quiet)
        print_human(&c);
    free_lines(&c);
    tree_options_free(&t);
    return c.status;
}
