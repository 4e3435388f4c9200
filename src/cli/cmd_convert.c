/*
 * cmd_convert.c — `pycache convert --to MODE`: rewrite the header of every
 * fresh 3.7+ pyc under PATH into another invalidation mode (PEP 552),
 * without recompiling: the body is the same in every mode (convert.c).
 *
 * Rides on scan_run: each cache file comes with its verdict; a fresh CPython
 * 3.7+ pyc in another mode is handed to convert_pyc, which re-checks
 * everything against the file and its source before the atomic rename.
 * Everything else is left alone and said why: not fresh (stale, corrupt,
 * orphan...: `pycache compile` it first), not convertible (before 3.7 there
 * is no flags field; PyPy/GraalPy are not supported), or a symlink (never
 * rewritten through). Exit 0 when every fresh pyc is in the requested mode,
 * 1 when some pycs were left alone, 3 when some could not be read or
 * written (one line each on stderr; the walk goes on).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/archive.h"
#include "engine/convert.h"
#include "engine/report.h"
#include "cli/treeopts.h"
#include "engine/scan.h"
#include "platform/sync.h"

enum {
    OPT_TO = 256,
    OPT_SYNC,
    OPT_IGNORE_MTIME,
};

static const cli_option options[] = {
    {OPT_TO, "to", "MODE",
     "the invalidation mode to write: checked-hash, unchecked-hash or timestamp (required)"},
    {'n', "dry-run", NULL,
     "say what would be converted and change nothing; exit status 1 when there is work"},
    {OPT_SYNC, "sync", NULL,
     "make the rewritten files durable before exiting (one syncfs per tree; "
     "an fsync per file where there is no syncfs)"},
    TREE_ARCHIVE_OUTPUT_OPTIONS,
    {OPT_IGNORE_MTIME, "ignore-mtime", NULL,
     "for an ARCHIVE whose packager normalised the mtimes (AWS SAM's 1980 dates): "
     "also convert a pyc stale by its mtime alone whose recorded source size "
     "matches"},
    TREE_ARCHIVE_OPTIONS,
    TREE_OUTPUT_OPTIONS,
    TREE_FROM_FILE_OPTION,
    TREE_CHECK_HASH_OPTION,
    TREE_PREFIX_OPTION,
    TREE_WALK_OPTIONS,
    {0, NULL, NULL, NULL},
};

/* (dev, ino) of the files this run wrote: a directory being read while we
 * rename into it may list a converted file a second time. */
struct inode_set {
    struct inode_key {
        dev_t dev;
        ino_t ino;
        bool used;
    } *v;
    size_t n, cap; /* cap: a power of two, or 0 */
};

static size_t inode_hash(dev_t dev, ino_t ino)
{
    uint64_t x = (uint64_t)ino * 0x9E3779B97F4A7C15ULL ^ (uint64_t)dev;
    return (size_t)(x ^ (x >> 29));
}

static bool inode_set_has(const struct inode_set *s, dev_t dev, ino_t ino)
{
    if (!s->cap)
        return false;
    for (size_t i = inode_hash(dev, ino) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->v[i].used)
            return false;
        if (s->v[i].dev == dev && s->v[i].ino == ino)
            return true;
    }
}

static int inode_set_add(struct inode_set *s, dev_t dev, ino_t ino)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        struct inode_key *nv = calloc(cap, sizeof *nv);
        if (!nv)
            return -1;
        for (size_t k = 0; k < s->cap; k++) {
            if (!s->v[k].used)
                continue;
            size_t i = inode_hash(s->v[k].dev, s->v[k].ino) & (cap - 1);
            while (nv[i].used)
                i = (i + 1) & (cap - 1);
            nv[i] = s->v[k];
        }
        free(s->v);
        s->v = nv;
        s->cap = cap;
    }
    size_t i = inode_hash(dev, ino) & (s->cap - 1);
    while (s->v[i].used) {
        if (s->v[i].dev == dev && s->v[i].ino == ino)
            return 0;
        i = (i + 1) & (s->cap - 1);
    }
    s->v[i].dev = dev;
    s->v[i].ino = ino;
    s->v[i].used = true;
    s->n++;
    return 0;
}

struct convert_cmd {
    pyc_mode to;
    bool dry_run, verbose, quiet, color;
    bool fsync_each; /* --sync without syncfs (platform/sync.h) */
    cli_format format;
    int status;
    uint64_t converted, already, not_fresh, not_convertible, symlinks, errors;
    unsigned from_modes; /* bit per pyc_mode converted from */
    struct inode_set written;
};

/* The word in front of each human line, with its colour. */
static void human_line(const struct convert_cmd *c, const char *action, const char *sgr,
                       const char *path, const char *detail)
{
    FILE *f = cli_listing();
    fprintf(f, "%s%-15s%s ", c->color && sgr ? sgr : "", action,
            c->color && sgr ? CLI_SGR_RESET : "");
    cli_print_path(f, path);
    if (detail && *detail)
        fprintf(f, "  %s", detail);
    fputc('\n', f);
    cli_listing_end(path, strlen(path));
}

/* Reports one pyc. ACTION is the JSON word; LISTED says whether human output
 * shows it without -v. */
static void report(struct convert_cmd *c, const scan_item *it, const char *action,
                   const char *human, const char *sgr, const char *detail, bool listed)
{
    if (c->quiet)
        return;
    switch (c->format) {
    case CLI_FORMAT_JSON:
        report_json_verdict(it->path, it->source_path, it->verdict, NULL, "action", action);
        break;
    case CLI_FORMAT_NUL:
        if (strcmp(action, "converted") == 0 || strcmp(action, "would-convert") == 0) {
            fputs(it->path, cli_listing());
            fputc('\0', cli_listing());
            cli_listing_end(it->path, it->path_len);
        }
        break;
    case CLI_FORMAT_GITHUB:
        if (strcmp(action, "would-convert") == 0)
            report_github(it->path, false, "pycache: would convert", detail ? detail : "");
        else if (strcmp(action, "error") == 0)
            report_github(it->path, true, "pycache: error", detail ? detail : "");
        break;
    case CLI_FORMAT_HUMAN:
        if (listed || c->verbose)
            human_line(c, human, sgr, it->path, detail);
        break;
    }
}

/* "cannot OP 'PATH': ..." where OP may name the source ("open source"):
 * then the source's path is the one quoted. */
static void convert_error(struct convert_cmd *c, const scan_item *it, const char *op,
                          int err)
{
    size_t n = strlen(op);
    if (n > 7 && strcmp(op + n - 7, " source") == 0 && it->source_path) {
        char word[32];
        snprintf(word, sizeof word, "%.*s", (int)(n - 7), op);
        cli_error_path(word, it->source_path, err);
    } else {
        cli_error_detail(op, it->path, err, it->event == SCAN_ERROR ? it->error_detail : NULL);
    }
    c->errors++;
    c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
}

/* The directory and name to open the source of IT by. The scan judged the
 * file against the source in the directory it walked: for a __pycache__
 * that is not itself a root, its parent (".." of the walked, never
 * followed-through, __pycache__ fd); for a legacy file below a root, the
 * file's own directory; otherwise (roots, prefix trees) the source's
 * display path, which is a real path relative to the working directory.
 * *OWNED is set when the returned fd must be closed. */
static int source_location(const scan_item *it, const char **name, bool *owned)
{
    const char *slash = strrchr(it->source_path, '/');
    const char *base = slash ? slash + 1 : it->source_path;
    *owned = false;
    if (it->verdict->name.kind == PYC_KIND_PYCACHE && it->depth >= 2) {
        int fd = openat(it->dirfd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return -1;
        *owned = true;
        *name = base;
        return fd;
    }
    if (it->verdict->name.kind == PYC_KIND_LEGACY && it->depth >= 1) {
        *name = base;
        return it->dirfd;
    }
    *name = it->source_path;
    return AT_FDCWD;
}

static const char *action_sgr(pyc_status st)
{
    return cli_status_sgr(st);
}

static int on_item(const scan_item *it, void *ctx)
{
    struct convert_cmd *c = ctx;
    if (it->event == SCAN_ERROR) {
        convert_error(c, it, it->error_op ? it->error_op : "read", it->error);
        /* No file to describe: the error is the record (--json). */
        report_error_record(it->error_op ? it->error_op : "read", it->path, it->error);
        return cli_stdout_failed() ? 1 : 0;
    }
    if (it->event != SCAN_CACHE)
        return 0;
    const pyc_verdict *v = it->verdict;
    if (v->name.kind == PYC_KIND_TEMP)
        return 0; /* CPython's leftover temp file: not a cache to convert */
    if (v->error && v->reason == PYC_REASON_UNREADABLE) {
        convert_error(c, it, v->error_op ? v->error_op : "read", v->error);
        report(c, it, "error", "error", NULL, "could not be read", false);
        return cli_stdout_failed() ? 1 : 0;
    }

    char detail[128], python[32];
    const pyc_magic *m = report_python_of(v);
    report_python_label(m, python, sizeof python);

    /* Not convertible: no flags field before 3.7 (PEP 552); only CPython. */
    if (m && (m->layout != PYC_LAYOUT_FLAGS || m->implementation != PYC_IMPL_CPYTHON)) {
        if (m->layout != PYC_LAYOUT_FLAGS)
            snprintf(detail, sizeof detail,
                     "Python %s: no flags field (hash-based pycs are 3.7+)", python);
        else
            snprintf(detail, sizeof detail, "%s: only CPython's pycs are converted", python);
        c->not_convertible++;
        c->status = cli_exit_merge(c->status, CLI_EXIT_FINDINGS);
        report(c, it, "not-convertible", "not convertible", CLI_SGR_DIM, detail, true);
        return cli_stdout_failed() ? 1 : 0;
    }
    if (v->status != PYC_FRESH) {
        const char *reason = pyc_reason_name(v->reason);
        snprintf(detail, sizeof detail, "%s%s%s, %s", pyc_status_name(v->status),
                 *reason ? " " : "", reason, python);
        c->not_fresh++;
        c->status = cli_exit_merge(c->status, CLI_EXIT_FINDINGS);
        report(c, it, "not-fresh", "not fresh", action_sgr(v->status), detail, true);
        return cli_stdout_failed() ? 1 : 0;
    }
    if (v->header.mode == c->to) {
        if (c->written.n) {
            /* Listed again after we renamed it into place? */
            struct stat st;
            if (fstatat(it->dirfd, it->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                inode_set_has(&c->written, st.st_dev, st.st_ino))
                return 0;
        }
        c->already++;
        report(c, it, "already", "already", NULL, pyc_mode_name(v->header.mode), false);
        return cli_stdout_failed() ? 1 : 0;
    }
    if (it->type == DT_LNK) {
        c->symlinks++;
        c->status = cli_exit_merge(c->status, CLI_EXIT_FINDINGS);
        report(c, it, "symlink", "symlink", CLI_SGR_DIM,
               "a symlink: left alone (never rewritten through)", true);
        return cli_stdout_failed() ? 1 : 0;
    }

    const char *source_name;
    bool owned;
    int source_fd = source_location(it, &source_name, &owned);
    if (source_fd < 0 && source_fd != AT_FDCWD) {
        convert_error(c, it, "open the source directory of", errno);
        report(c, it, "error", "error", NULL, NULL, false);
        return cli_stdout_failed() ? 1 : 0;
    }
    int err = 0;
    const char *op = NULL;
    pyc_mode from = v->header.mode;
    convert_result r = convert_pyc(it->dirfd, it->name, v, source_fd, source_name, c->to,
                                   c->dry_run, c->fsync_each, &err, &op);
    if (owned)
        close(source_fd);
    switch (r) {
    case CONVERT_DONE:
        c->converted++;
        c->from_modes |= 1u << from;
        if (!c->dry_run) {
            struct stat st;
            if (fstatat(it->dirfd, it->name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                (void)inode_set_add(&c->written, st.st_dev, st.st_ino);
        }
        snprintf(detail, sizeof detail, "%s -> %s", pyc_mode_name(from),
                 pyc_mode_name(c->to));
        report(c, it, c->dry_run ? "would-convert" : "converted",
               c->dry_run ? "would convert" : "converted", cli_status_sgr(PYC_FRESH), detail,
               false);
        break;
    case CONVERT_ALREADY:
        c->already++;
        report(c, it, "already", "already", NULL, pyc_mode_name(v->header.mode), false);
        break;
    case CONVERT_NOT_FRESH:
        c->not_fresh++;
        c->status = cli_exit_merge(c->status, CLI_EXIT_FINDINGS);
        report(c, it, "not-fresh", "not fresh", cli_status_sgr(PYC_STALE),
               "it or its source changed during the run", true);
        break;
    case CONVERT_FAILED:
        if (err == ELOOP && op && strcmp(op, "open") == 0) {
            /* Became a symlink since the scan. */
            c->symlinks++;
            c->status = cli_exit_merge(c->status, CLI_EXIT_FINDINGS);
            report(c, it, "symlink", "symlink", CLI_SGR_DIM,
                   "a symlink: left alone (never rewritten through)", true);
            break;
        }
        convert_error(c, it, op ? op : "convert", err);
        report(c, it, "error", "error", NULL, NULL, false);
        break;
    }
    return cli_stdout_failed() ? 1 : 0;
}

static void print_summary(const struct convert_cmd *c)
{
    printf("%s %llu file%s", c->dry_run ? "would convert" : "converted",
           (unsigned long long)c->converted, c->converted == 1 ? "" : "s");
    if (c->from_modes) {
        const char *sep = " (";
        for (int mode = 0; mode <= PYC_MODE_UNCHECKED_HASH; mode++) {
            if (c->from_modes & (1u << mode)) {
                printf("%s%s", sep, pyc_mode_name((pyc_mode)mode));
                sep = ", ";
            }
        }
        printf(" -> %s)", pyc_mode_name(c->to));
    } else {
        printf(" to %s", pyc_mode_name(c->to));
    }
    printf(", %llu already in that mode", (unsigned long long)c->already);
    printf(", %llu not fresh (left alone: run `pycache compile`)",
           (unsigned long long)c->not_fresh);
    if (c->not_convertible)
        printf(", %llu not convertible (before 3.7 or not CPython)",
               (unsigned long long)c->not_convertible);
    if (c->symlinks)
        printf(", %llu symlink%s (left alone)", (unsigned long long)c->symlinks,
               c->symlinks == 1 ? "" : "s");
    if (c->errors)
        printf(", %llu error%s", (unsigned long long)c->errors, c->errors == 1 ? "" : "s");
    putchar('\n');
}

/* --sync: makes the run's renames durable with one syncfs per tree, instead
 * of an fsync per file (convert.c says why neither is the default). Where
 * there is no syncfs (platform/sync.h) each file was fsync'ed as it was
 * written instead, and this is not called. A
 * failed syncfs (Linux 5.8+ reports write-back errors there: EIO, ENOSPC)
 * means the durability asked for is not there: reported, exit status 3. */
static int sync_trees(const tree_options *t, const scan_options *sopt)
{
    int status = CLI_EXIT_OK;
    size_t n = t->npaths;
    char **paths = t->paths;
    if (sopt->no_roots)
        return status;
    /* The trees walked: the paths (the prefix tree alone with --prefix DIR
     * and no PATH), and the prefix too when one is in force: it may be on
     * another file system. */
    size_t ntrees = n ? n : 1;
    bool also_prefix = sopt->prefix && !sopt->prefix_only;
    for (size_t i = 0; i < ntrees + also_prefix; i++) {
        const char *path = i == ntrees       ? sopt->prefix
                           : n               ? paths[i]
                           : sopt->prefix_only ? sopt->prefix
                                               : ".";
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
            continue;
        if (psys_syncfs(fd) != 0) {
            cli_error_path("sync", path, errno);
            status = CLI_EXIT_IO;
        }
        close(fd);
    }
    return status;
}

/* convert --to MODE ARCHIVE -o OUT: what archive_fix did, member by
 * member. */
struct archive_convert_report {
    cli_format format;
    bool verbose, quiet, dry_run;
    const char *output;
    uint64_t converted, already, other;
    int status;
};

static int on_archive_member(const archive_item *it, void *ctx)
{
    struct archive_convert_report *c = ctx;
    if (it->event == ARCHIVE_ERROR) {
        report_error_detail(it->error_op, it->path, it->error, it->error_detail);
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
        return 0;
    }
    if (it->event != ARCHIVE_CACHE)
        return 0;
    const char *action = it->action;
    bool converted = strcmp(action, "converted") == 0;
    if (converted) {
        c->converted++;
        if (c->dry_run)
            action = "would-convert";
    } else if (strcmp(action, "already") == 0) {
        c->already++;
    } else {
        c->other++;
    }
    if (c->quiet || (!converted && !c->verbose))
        return 0;
    if (c->format == CLI_FORMAT_JSON) {
        report_json_verdict_member(it->path, it->source_path, it->verdict, NULL, "action",
                                   action, it->archive, it->member);
    } else if (c->format == CLI_FORMAT_HUMAN) {
        fprintf(cli_listing(), "%-16s ", action);
        cli_print_path(cli_listing(), it->path);
        fputc('\n', cli_listing());
        cli_listing_end(it->path, strlen(it->path));
    } else if (c->format == CLI_FORMAT_NUL) {
        fputs(it->path, cli_listing());
        fputc('\0', cli_listing());
        cli_listing_end(it->path, strlen(it->path));
    }
    return 0;
}

static int convert_archive(const char *path, const char *output, pyc_mode to,
                           const tree_options *t, bool ignore_mtime, bool dry_run)
{
    struct archive_convert_report c = {
        .format = t->out.format, .verbose = t->out.verbose, .quiet = t->out.quiet,
        .dry_run = dry_run, .output = output,
    };
    archive_fix_options fix = {
        .kind = ARCHIVE_FIX_CONVERT, .dry_run = dry_run, .to = to, .ignore_mtime = ignore_mtime,
    };
    int rc = archive_fix(path, output, &fix, &t->archive, &t->scan.verdict, on_archive_member,
                         &c);
    if (rc < 0)
        c.status = cli_exit_merge(c.status, CLI_EXIT_IO);
    c.status = cli_exit_merge(c.status, cli_listing_finish());
    if (rc == 0 && c.format == CLI_FORMAT_HUMAN && !c.quiet) {
        printf("%llu %s, %llu already %s, %llu left alone (not fresh or before 3.7)",
               (unsigned long long)c.converted, dry_run ? "to convert" : "converted",
               (unsigned long long)c.already, pyc_mode_name(to),
               (unsigned long long)c.other);
        if (!dry_run) {
            fputs(" -> ", stdout);
            cli_print_path(stdout, output);
        }
        putchar('\n');
    }
    /* A dry run that found work: work left undone on purpose. */
    if (rc == 0 && dry_run && c.converted)
        c.status = cli_exit_merge(c.status, CLI_EXIT_FINDINGS);
    return c.status;
}

int cmd_convert(int argc, char **argv)
{
    cli_parser p = {
        .command = "convert",
        .usage = "--to MODE [OPTION]... [PATH]...\n"
                 "   or: pycache convert --to MODE [OPTION]... ARCHIVE (-o OUT | --in-place)",
        .description =
            "Rewrite the header of every fresh pyc of Python 3.7+ under each PATH "
            "(default: the current directory) into invalidation mode MODE without "
            "recompiling: the marshalled code is the same in every mode (PEP 552), only "
            "the 16-byte header changes, and the result is byte for byte what py_compile "
            "writes in that mode. checked-hash and unchecked-hash store the source's "
            "hash (a tree that no longer depends on file times: reproducible builds); "
            "unchecked-hash pycs are loaded without reading the source (start-up speed, "
            "but an edited source is ignored until the pyc is rebuilt); timestamp stores "
            "the source's mtime and size. Before writing, the pyc and its source are "
            "checked again to still match. Each file is written to a temporary file "
            "beside it, with the same permissions, then renamed over it. A pyc that is "
            "not fresh is left alone (`pycache compile` it first); so are pycs of Python "
            "before 3.7 (no flags field), of other implementations, and symlinks. An "
            "ARCHIVE (zip, wheel, tar in any compression, container image) is never "
            "changed in place: its "
            "fresh pycs are converted into a new archive, -o OUT (or --in-place: a "
            "temporary file renamed over it), every other member kept as it was and a "
            "wheel's RECORD rewritten; an image's pycs are converted in the layers that "
            "provide them, only those layers written anew and the digests that name "
            "them rewritten.",
        .options = options,
        .epilog = "Examples:\n"
                  "  pycache convert --to checked-hash .        reproducible pycs\n"
                  "  pycache convert --to unchecked-hash -n /app   what would change\n"
                  "  pycache convert --to timestamp --json src | jq .action\n"
                  "  pycache convert --to unchecked-hash function.zip -o fixed.zip\n"
                  "  pycache convert --to unchecked-hash image.tar -o fixed.tar\n",
    };
    tree_options t;
    tree_options_init(&t);
    struct convert_cmd c;
    memset(&c, 0, sizeof c);
    bool have_to = false, sync = false, ignore_mtime = false;

    cli_parser_init(&p, argc, argv);
    int id, exit_status;
    while ((id = tree_next_option(&p, &t, &exit_status)) > 0) {
        switch (id) {
        case OPT_TO:
            if (pyc_mode_parse(p.optarg, &c.to) != 0)
                return cli_usage_error(p.command,
                                       "--to takes checked-hash, unchecked-hash or "
                                       "timestamp, not '%s'",
                                       p.optarg);
            have_to = true;
            break;
        case 'n':
            c.dry_run = true;
            break;
        case OPT_SYNC:
            sync = true;
            break;
        case OPT_IGNORE_MTIME:
            ignore_mtime = true;
            break;
        }
    }
    if (id < 0)
        return exit_status;
    if (!have_to)
        return cli_usage_error(p.command,
                               "--to is required: checked-hash, unchecked-hash or timestamp");
    if (ignore_mtime && !t.archive_output && !t.in_place)
        return cli_usage_error(p.command, "--ignore-mtime is for an ARCHIVE (-o or --in-place)");
    if ((exit_status = tree_operands(&p, &t)) != 0)
        return exit_status;
    const char *archive, *output;
    int fixing = tree_archive_output(&p, &t, &archive, &output, &exit_status);
    if (fixing != 0) {
        if (fixing > 0)
            exit_status = convert_archive(archive, output, c.to, &t, ignore_mtime, c.dry_run);
        tree_options_free(&t);
        return exit_status;
    }
    scan_options sopt = t.scan;
    c.format = t.out.format;
    c.verbose = t.out.verbose;
    c.quiet = t.out.quiet;
    c.color = tree_color(&t);
    sopt.progress = !c.quiet && isatty(STDERR_FILENO);
    c.fsync_each = sync && !PSYS_HAVE_SYNCFS;

    int rc = scan_run(t.paths, t.npaths, &sopt, on_item, &c);
    free(c.written.v);
    c.status = cli_exit_merge(c.status, cli_listing_finish());
    if (sync && !c.dry_run && PSYS_HAVE_SYNCFS)
        c.status = cli_exit_merge(c.status, sync_trees(&t, &sopt));
    tree_options_free(&t);
    if (rc < 0) {
        cli_error("cannot scan: %s", strerror(errno));
        return CLI_EXIT_IO;
    }
    if (c.format == CLI_FORMAT_HUMAN && !c.quiet)
        print_summary(&c);
    /* Every dry run says by its exit status whether there is work (clean
     * -n, prune -n, compile -n): 1 when a file would be converted. */
    if (c.dry_run && c.converted)
        c.status = cli_exit_merge(c.status, CLI_EXIT_FINDINGS);
    return c.status;
}
