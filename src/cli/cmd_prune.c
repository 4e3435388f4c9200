/*
 * cmd_prune.c — `pycache prune`: remove only the bytecode CPython can never
 * use or should not use, keep the fresh caches.
 *
 * Rides on scan_run with full judgement (each header read, each source
 * stat'ed once): a file is removed when its verdict is orphan, stale,
 * stale-used, corrupt, shadowed or temp; fresh files are kept; sourceless
 * legacy pycs are imported in place of their missing source, and some
 * deployments ship them on purpose, so they are reported and kept (exit
 * status 1) unless --sourceless. A file that could not be read is not
 * judged and is kept (exit status 3). Then each __pycache__ left empty is
 * removed (in a prefix tree: each directory left empty, never the prefix
 * root). Removal goes through remove.c (unlinkat on the walk's fds).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/remove.h"
#include "cli/treeopts.h"
#include "engine/scan.h"
#include "platform/stattime.h"

enum {
    OPT_DEEP = 256,
    OPT_SOURCELESS,
    OPT_RACY,
};

static const cli_option options[] = {
    {'n', "dry-run", NULL, "list what would be removed, remove nothing"},
    {OPT_SOURCELESS, "sourceless", NULL,
     "also remove sourceless pycs (legacy NAME.pyc imported without a NAME.py)"},
    {OPT_RACY, "racy", NULL,
     "also remove racy fresh caches: written in the second their source's recorded "
     "mtime names, so a same-size edit in that second would go unseen"},
    {OPT_DEEP, "deep", NULL,
     "also read each fresh pyc's body as marshal.loads would (damaged: corrupt)"},
    TREE_ARCHIVE_OUTPUT_OPTIONS,
    TREE_ARCHIVE_OPTIONS,
    TREE_OUTPUT_OPTIONS,
    TREE_FROM_FILE_OPTION,
    TREE_CHECK_HASH_OPTION,
    TREE_PREFIX_OPTION,
    TREE_WALK_OPTIONS,
    {0, NULL, NULL, NULL},
};

struct prune {
    remove_run *run;
    bool sourceless;
    bool racy;                /* --racy */
    bool prefix;
};

/* --racy: a fresh timestamp cache pyc_verdict_racy calls racy (one
 * fstatat of the cache file). */
static bool racy(const scan_item *it)
{
    const pyc_verdict *v = it->verdict;
    struct stat st;
    if (v->status != PYC_FRESH || v->header.mode != PYC_MODE_TIMESTAMP ||
        fstatat(it->dirfd, it->name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return false;
    struct timespec mtime = psys_mtim(&st);
    return pyc_verdict_racy(v, &mtime);
}

/* The scan's prepare hook, in the walking thread and outside the scan's
 * lock: the removal itself, so the walks' unlinkats overlap (remove.c,
 * "Where the time goes"). remove_prunable only reads the verdict. */
static void act(scan_item *it, void **state, void *ctx)
{
    const struct prune *pr = ctx;
    if (it->event == SCAN_CACHE &&
        (remove_prunable(it->verdict, pr->sourceless) || (pr->racy && racy(it))))
        remove_run_unlink(pr->run, it);
}

/* prune ARCHIVE -o OUT: what prune removes from a tree leaves the archive;
 * a member has no file time of its own, so none is racy. */
static remove_choice choose(const scan_item *it, const char **why, void *ctx)
{
    const struct prune *pr = ctx;
    if (remove_prunable(it->verdict, pr->sourceless))
        return REMOVE_DROP;
    if (it->verdict->status == PYC_SOURCELESS) {
        *why = "--sourceless removes it";
        return REMOVE_KEEP_FINDING;
    }
    return REMOVE_KEEP;
}

static int on_item(const scan_item *it, void *ctx)
{
    struct prune *pr = ctx;
    switch (it->event) {
    case SCAN_CACHE: {
        const pyc_verdict *v = it->verdict;
        if (remove_prunable(v, pr->sourceless) || (pr->racy && it->removal.attempted)) {
            remove_run_cache(pr->run, it); /* reports what act did */
        } else if (v->error && v->reason == PYC_REASON_UNREADABLE) {
            remove_run_keep(pr->run, it, false, false, NULL);
            remove_run_error(pr->run, v->error_op ? v->error_op : "read", it->path,
                             v->error);
        } else if (v->status == PYC_SOURCELESS) {
            remove_run_keep(pr->run, it, true, true, "--sourceless removes it");
        } else {
            remove_run_keep(pr->run, it, false, false, NULL);
        }
        break;
    }
    case SCAN_FOREIGN:
        remove_run_keep(pr->run, it, true, false, "foreign: not bytecode");
        break;
    case SCAN_PYCACHE_POST:
        remove_run_pycache_post(pr->run, it);
        break;
    case SCAN_ERROR:
        if (pr->prefix && it->depth == 0 && it->error == ENOENT)
            break; /* no prefix subtree for that PATH: no caches */
        remove_run_scan_error(pr->run, it);
        break;
    case SCAN_SOURCE:
    case SCAN_MISSING:
        break;
    }
    return cli_stdout_failed() ? 1 : 0;
}

int cmd_prune(int argc, char **argv)
{
    cli_parser p = {
        .command = "prune",
        .usage = "[OPTION]... [PATH]...\n"
                 "   or: pycache prune [OPTION]... ARCHIVE (-o OUT | --in-place)",
        .description =
            "Remove the bytecode under each PATH (default: the current directory) that "
            "CPython can never use or should not use: orphan (no source), stale "
            "(rejected at import), stale-used (an unchecked-hash pyc whose source "
            "changed: loaded anyway), corrupt, shadowed (a legacy file its interpreter "
            "ignores) and temp files; then each __pycache__ left empty. Fresh caches "
            "are kept, so it is cheap to run before every test run. Sourceless pycs "
            "are reported and kept unless --sourceless. Each file is judged by the "
            "interpreter it belongs to, as `pycache check` does. An ARCHIVE (zip, "
            "wheel, tar in any compression, container image) is never changed in place: "
            "a copy without "
            "what prune removes from a tree, judged as the archive's user sees it "
            "(--zipimport, --extract-mtime), is written to -o OUT (or over it: "
            "--in-place), a wheel's RECORD rewritten.",
        .options = options,
        .epilog =
            "Examples:\n"
            "  pycache prune                     before a test run\n"
            "  pycache prune -n --json src       what would go, as JSON Lines\n"
            "  pycache prune --deep --check-hash-based-pycs always .\n"
            "  pycache prune function.zip -o pruned.zip\n"
            "\n"
            "Exit status 1 when sourceless pycs were kept, or a dry run (-n) found\n"
            "something to remove; 3 when a file could not be read or removed (one line\n"
            "per file on stderr; after 10 with the same error, the rest are counted).\n",
    };
    tree_options t;
    tree_options_init(&t);
    remove_run_options ropt = {.command = "prune", .report_status = true};
    struct prune pr;
    memset(&pr, 0, sizeof pr);

    cli_parser_init(&p, argc, argv);
    int id, exit_status;
    while ((id = tree_next_option(&p, &t, &exit_status)) > 0) {
        switch (id) {
        case 'n':
            ropt.dry_run = true;
            break;
        case OPT_RACY:
            pr.racy = true;
            break;
        case OPT_SOURCELESS:
            pr.sourceless = true;
            break;
        case OPT_DEEP:
            t.scan.verdict.deep = true;
            break;
        }
    }
    if (id < 0 || (exit_status = tree_operands(&p, &t)) != 0)
        return exit_status;
    const char *archive, *output;
    int fixing = tree_archive_output(&p, &t, &archive, &output, &exit_status);
    if (fixing < 0) {
        tree_options_free(&t);
        return exit_status;
    }
    char *const *paths = t.paths;
    size_t npaths = t.npaths;
    scan_options sopt = t.scan;
    ropt.format = t.out.format;
    ropt.verbose = t.out.verbose;
    ropt.quiet = t.out.quiet;
    ropt.color = tree_color(&t);
    /* The whole prefix tree (--prefix DIR alone) that does not exist
     * holds nothing; a mapped subtree that does not is skipped by the scan. */
    pr.prefix = sopt.prefix_only;
    sopt.prepare = act;
    sopt.waits_on_device = true;
    /* Sizes come from the fstatat before each unlinkat (bytes freed); only
     * JSON reports the size of a file kept. Without them, the scan reads
     * headers in io_uring batches (scan.c). */
    sopt.no_sizes = ropt.format != CLI_FORMAT_JSON;
    sopt.progress = !ropt.quiet && ropt.format == CLI_FORMAT_HUMAN && isatty(STDERR_FILENO);

    pr.run = remove_run_new(&ropt);
    if (!pr.run) {
        cli_error("out of memory");
        return CLI_EXIT_IO;
    }
    int rc, status;
    if (fixing)
        status = remove_run_archive(pr.run, archive, output, &t.archive, &t.scan.verdict,
                                    choose, &pr);
    else
        status = remove_run_scan(pr.run, paths, npaths, &sopt, on_item, &pr, &rc);
    status = cli_exit_merge(status, remove_run_finish(pr.run));
    remove_run_free(pr.run);
    tree_options_free(&t);
    return status;
}
