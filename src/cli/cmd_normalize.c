/*
 * cmd_normalize.c — `pycache normalize [PATH]...`: rewrite every cache file
 * under PATH into the canonical marshal form (pyc_marshal_normalize), so that
 * equal code gives equal bytes whichever process, worker or tool compiled it.
 *
 * marshal sets FLAG_REF on every object whose reference count was above one
 * when it was written (Python/marshal.c w_ref), which depends on what else
 * the compiling process held; before 3.11 it also writes set items in hash
 * order. Neither changes what marshal.loads returns. The canonical form keeps
 * FLAG_REF only on objects a back-reference uses, numbers the references in
 * stream order and (before 3.11) sorts set items; the header is untouched.
 *
 * Rides on scan_run: each cache file is handed to normalize_pyc (convert.c),
 * which reads it through O_NOFOLLOW, rewrites it to a temporary file beside
 * it and renames that over it if the file did not change meanwhile. A file
 * whose body its interpreter would not load, of an unknown interpreter or of
 * a format not modelled (before 2.7, 3.0-3.3, PyPy, GraalPy) is left alone
 * and said why (exit 1); symlinks are never rewritten through. Exit 3 when
 * some file could not be read or written.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/treeopts.h"
#include "engine/convert.h"
#include "engine/report.h"
#include "engine/scan.h"

static const cli_option options[] = {
    {'n', "dry-run", NULL, "say what would be rewritten; change nothing"},
    TREE_ARCHIVE_OUTPUT_OPTIONS,
    TREE_OUTPUT_OPTIONS,
    TREE_FROM_FILE_OPTION,
    TREE_CHECK_HASH_OPTION,
    TREE_PREFIX_OPTION,
    TREE_WALK_OPTIONS,
    {0, NULL, NULL, NULL},
};

struct normalize_cmd {
    bool dry_run, verbose, color;
    int quiet;
    cli_format format;
    int status;
    uint64_t normalized, already, skipped, errors;
};

/* Reports one cache file (PATH, its SOURCE and verdict V; ARCHIVE and
 * MEMBER when it is an archive's member). ACTION is the JSON word; LISTED
 * says whether human output shows it without -v. The lines go to the
 * sorted listing. */
static void report(struct normalize_cmd *c, const char *path, const char *source,
                   const pyc_verdict *v, const char *archive, const char *member,
                   const char *action, const char *sgr, const char *detail, bool listed)
{
    if (c->quiet)
        return;
    FILE *f = cli_listing();
    size_t path_len = strlen(path);
    switch (c->format) {
    case CLI_FORMAT_JSON:
        if (archive)
            report_json_verdict_member(path, source, v, NULL, "action", action, archive,
                                       member);
        else
            report_json_verdict(path, source, v, NULL, "action", action);
        break;
    case CLI_FORMAT_NUL:
        if (strcmp(action, "normalized") == 0 || strcmp(action, "would-normalize") == 0) {
            fputs(path, f);
            fputc('\0', f);
            cli_listing_end(path, path_len);
        }
        break;
    case CLI_FORMAT_GITHUB:
        if (strcmp(action, "would-normalize") == 0 || strcmp(action, "skipped") == 0)
            report_github(path, false, "pycache: not in canonical form",
                          detail ? detail : action);
        else if (strcmp(action, "error") == 0)
            report_github(path, true, "pycache: error", detail ? detail : "");
        break;
    case CLI_FORMAT_HUMAN:
        if (!listed && !c->verbose)
            break;
        fprintf(f, "%s%-15s%s ", c->color && sgr ? sgr : "", action,
                c->color && sgr ? CLI_SGR_RESET : "");
        cli_print_path(f, path);
        if (detail && *detail)
            fprintf(f, "  %s", detail);
        fputc('\n', f);
        cli_listing_end(path, path_len);
        break;
    }
}

#define REPORT_ITEM(c, it, ...) \
    report((c), (it)->path, (it)->source_path, (it)->verdict, NULL, NULL, __VA_ARGS__)

static int on_item(const scan_item *it, void *ctx)
{
    struct normalize_cmd *c = ctx;
    if (it->event == SCAN_ERROR) {
        cli_error_detail(it->error_op ? it->error_op : "read", it->path, it->error,
                         it->error_detail);
        c->errors++;
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
        return cli_stdout_failed() ? 1 : 0;
    }
    if (it->event != SCAN_CACHE || it->verdict->name.kind == PYC_KIND_TEMP)
        return 0;
    if (it->type == DT_LNK) {
        c->skipped++;
        c->status = cli_exit_merge(c->status, CLI_EXIT_FINDINGS);
        REPORT_ITEM(c, it, "symlink", CLI_SGR_DIM, "a symlink: left alone (never rewritten through)",
               true);
        return cli_stdout_failed() ? 1 : 0;
    }
    const char *why = NULL, *op = NULL;
    int err = 0;
    normalize_result r = normalize_pyc(it->dirfd, it->name, c->dry_run, &why, &err, &op);
    switch (r) {
    case NORMALIZE_DONE:
        c->normalized++;
        REPORT_ITEM(c, it, c->dry_run ? "would-normalize" : "normalized", cli_status_sgr(PYC_FRESH),
               NULL, true);
        break;
    case NORMALIZE_ALREADY:
        c->already++;
        REPORT_ITEM(c, it, "canonical", NULL, NULL, false);
        break;
    case NORMALIZE_SKIPPED:
        c->skipped++;
        c->status = cli_exit_merge(c->status, CLI_EXIT_FINDINGS);
        REPORT_ITEM(c, it, "skipped", cli_status_sgr(PYC_CORRUPT), why, true);
        break;
    case NORMALIZE_FAILED:
        if (err == ELOOP && op && strcmp(op, "open") == 0) {
            c->skipped++;
            c->status = cli_exit_merge(c->status, CLI_EXIT_FINDINGS);
            REPORT_ITEM(c, it, "symlink", CLI_SGR_DIM,
                   "a symlink: left alone (never rewritten through)", true);
            break;
        }
        cli_error_path(op ? op : "normalize", it->path, err);
        c->errors++;
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
        REPORT_ITEM(c, it, "error", NULL, strerror(err), false);
        break;
    }
    return cli_stdout_failed() ? 1 : 0;
}

/* normalize ARCHIVE -o OUT | --in-place: archive_fix's NORMALIZE plan
 * (engine/archive.c) gives each cache member's body its canonical form,
 * header untouched, and writes the new archive through the one rewrite of
 * every fixing command (unchanged zip members copied byte for byte, a
 * wheel's RECORD given the new digests). The lines, words and exit
 * statuses are those of a tree. */
static int on_archive_member(const archive_item *it, void *ctx)
{
    struct normalize_cmd *c = ctx;
    if (it->event == ARCHIVE_ERROR) {
        report_error_detail(it->error_op, it->path, it->error, it->error_detail);
        c->errors++;
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
        return cli_stdout_failed() ? 1 : 0;
    }
    if (it->event != ARCHIVE_CACHE || !it->action)
        return 0;
    if (strcmp(it->action, "normalized") == 0) {
        c->normalized++;
        report(c, it->path, it->source_path, it->verdict, it->archive, it->member,
               c->dry_run ? "would-normalize" : "normalized", cli_status_sgr(PYC_FRESH), NULL,
               true);
    } else if (strcmp(it->action, "canonical") == 0) {
        c->already++;
        report(c, it->path, it->source_path, it->verdict, it->archive, it->member, "canonical",
               NULL, NULL, false);
    } else {
        c->skipped++;
        c->status = cli_exit_merge(c->status, CLI_EXIT_FINDINGS);
        report(c, it->path, it->source_path, it->verdict, it->archive, it->member, "skipped",
               cli_status_sgr(PYC_CORRUPT), it->error_detail, true);
    }
    return cli_stdout_failed() ? 1 : 0;
}

static int normalize_archive(struct normalize_cmd *c, const char *path, const char *output,
                             const tree_options *t)
{
    archive_fix_options fix = {.kind = ARCHIVE_FIX_NORMALIZE, .dry_run = c->dry_run};
    int rc = archive_fix(path, output, &fix, &t->archive, &t->scan.verdict, on_archive_member,
                         c);
    if (rc < 0)
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
    return rc;
}

int cmd_normalize(int argc, char **argv)
{
    cli_parser p = {
        .command = "normalize",
        .usage = "[OPTION]... [PATH]...\n"
                 "   or: pycache normalize [OPTION]... ARCHIVE (-o OUT | --in-place)",
        .description =
            "Rewrite every cache file under each PATH (default: the current directory) "
            "into the canonical marshal form, so that equal code gives equal bytes "
            "whatever process, worker or tool compiled it: FLAG_REF kept only on objects "
            "a back-reference uses, references numbered in stream order, and (before "
            "Python 3.11) set items in a fixed order. marshal.loads returns the same "
            "objects as before; the header is untouched. Each file is written to a "
            "temporary file beside it, with the same permissions, then renamed over it. "
            "Files whose body their interpreter would not load, of a format not modelled "
            "(before 2.7, 3.0-3.3, PyPy, GraalPy) and symlinks are left alone. An "
            "ARCHIVE (zip, wheel, zipapp, tar in any compression, container image) is "
            "never changed in "
            "place: its cache members are normalized into a new archive, -o OUT (or "
            "--in-place: a temporary file renamed over it), every other member kept as "
            "it was and a wheel's RECORD rewritten.",
        .options = options,
        .epilog = "Exit 0 when every cache file is in canonical form, 1 when some were left\n"
                  "alone, 3 when some could not be read or written.\n"
                  "Examples:\n"
                  "  pycache normalize .                 canonical bytes for the whole tree\n"
                  "  pycache normalize -n --json build | jq .action\n"
                  "  pycache normalize app.whl -o fixed/app.whl\n",
    };
    tree_options t;
    tree_options_init(&t);
    struct normalize_cmd c;
    memset(&c, 0, sizeof c);

    cli_parser_init(&p, argc, argv);
    int id, exit_status;
    while ((id = tree_next_option(&p, &t, &exit_status)) > 0) {
        switch (id) {
        case 'n':
            c.dry_run = true;
            break;
        }
    }
    if (id < 0)
        return exit_status;
    if ((exit_status = tree_operands(&p, &t)) != 0)
        return exit_status;
    c.format = t.out.format;
    c.verbose = t.out.verbose;
    c.quiet = t.out.quiet;
    c.color = tree_color(&t);
    const char *archive = NULL, *output = NULL;
    int fixing = tree_archive_output(&p, &t, &archive, &output, &exit_status);
    if (fixing < 0) {
        tree_options_free(&t);
        return exit_status;
    }
    scan_options sopt = t.scan;
    sopt.no_sizes = true;
    sopt.progress = !c.quiet && isatty(STDERR_FILENO);

    int rc = fixing > 0 ? normalize_archive(&c, archive, output, &t)
                        : scan_run(t.paths, t.npaths, &sopt, on_item, &c);
    if (fixing > 0 && rc != 0) {
        /* The archive was refused (said already) or the listing stopped:
         * no summary of a rewrite that did not happen. */
        c.status = cli_exit_merge(c.status, cli_listing_finish());
        tree_options_free(&t);
        return rc < 0 ? cli_exit_merge(c.status, CLI_EXIT_IO) : c.status;
    }
    c.status = cli_exit_merge(c.status, cli_listing_finish());
    if (rc < 0) {
        cli_error("cannot scan: %s", strerror(errno));
        tree_options_free(&t);
        return CLI_EXIT_IO;
    }
    if (c.format == CLI_FORMAT_HUMAN && !c.quiet) {
        printf("%s %llu file%s, %llu already canonical", c.dry_run ? "would normalize" : "normalized",
               (unsigned long long)c.normalized, c.normalized == 1 ? "" : "s",
               (unsigned long long)c.already);
        if (c.skipped)
            printf(", %llu left alone", (unsigned long long)c.skipped);
        if (c.errors)
            printf(", %llu error%s", (unsigned long long)c.errors, c.errors == 1 ? "" : "s");
        if (fixing > 0 && !c.dry_run) {
            fputs(" -> ", stdout);
            cli_print_path(stdout, output);
        }
        putchar('\n');
    }
    tree_options_free(&t);
    return c.status;
}
