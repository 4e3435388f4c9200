/*
 * cmd_stats.c — `pycache stats`: what the bytecode in a tree weighs.
 *
 * Files and bytes (apparent size and space on disk) grouped four ways — by
 * interpreter (cache tag), optimization level, invalidation mode and status —
 * with totals. Interpreters not installed on this machine are marked: their
 * caches are the usual leftovers after a Python upgrade (`pycache clean
 * --uninstalled`). Rides on scan_run with full verdicts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/pythons.h"
#include "engine/report.h"
#include "cli/treeopts.h"
#include "engine/scan.h"

/* stats counts, it lists no files: -0, -v and --format=github (file
 * listings) do not apply. */
static const cli_option options[] = {
    {TREE_OPT_JSON, "json", NULL,
     "JSON Lines: one object per row (group, key, files, bytes...), errors included"},
    TREE_QUIET_OPTION,
    {TREE_OPT_COLOR, "color", "WHEN", "bold headings: auto, always or never"},
    TREE_FROM_FILE_OPTION,
    TREE_CHECK_HASH_OPTION,
    TREE_PREFIX_OPTION,
    TREE_ARCHIVE_OPTIONS,
    TREE_WALK_OPTIONS,
    {0, NULL, NULL, NULL},
};

enum group { G_INTERPRETER, G_OPT, G_MODE, G_STATUS, G_COUNT };

static const char *const group_names[G_COUNT] = {"interpreter", "opt", "mode", "status"};
static const char *const group_titles[G_COUNT] = {
    "by interpreter", "by optimization level", "by invalidation mode", "by status"};

struct row {
    char *key;
    const pyc_magic *python; /* G_INTERPRETER: for the version and "installed" */
    uint64_t files, bytes, disk;
};

struct table {
    struct row *rows;
    size_t n, cap;
};

struct stats {
    struct table groups[G_COUNT];
    uint64_t files, bytes, disk;
    int status;
    bool oom;
};

static struct row *row_for(struct stats *s, enum group g, const char *key)
{
    struct table *t = &s->groups[g];
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->rows[i].key, key) == 0)
            return &t->rows[i];
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct row *nr = realloc(t->rows, cap * sizeof *nr);
        if (!nr)
            return NULL;
        t->rows = nr;
        t->cap = cap;
    }
    struct row *r = &t->rows[t->n];
    memset(r, 0, sizeof *r);
    r->key = strdup(key);
    if (!r->key)
        return NULL;
    t->n++;
    return r;
}

static void add(struct stats *s, enum group g, const char *key, const pyc_magic *m,
                const pyc_verdict *v)
{
    struct row *r = row_for(s, g, key);
    if (!r) {
        s->oom = true;
        return;
    }
    if (m && !r->python)
        r->python = m;
    r->files++;
    if (v->file_size > 0)
        r->bytes += (uint64_t)v->file_size;
    if (v->file_blocks > 0)
        r->disk += (uint64_t)v->file_blocks;
}

static int on_item(const scan_item *it, void *ctx)
{
    struct stats *s = ctx;
    if (it->event == SCAN_ERROR) {
        report_error_detail(it->error_op, it->path, it->error, it->error_detail);
        s->status = cli_exit_merge(s->status, CLI_EXIT_IO);
        return 0;
    }
    if (it->event != SCAN_CACHE)
        return 0;
    const pyc_verdict *v = it->verdict;
    const pyc_magic *m = report_python_of(v);
    char key[128];
    if (v->error && v->reason == PYC_REASON_UNREADABLE) {
        /* Counted (as "unreadable"), but its size and mode are unknown: the
         * totals are short, which the user must hear of, as check says. */
        cli_error_path(v->error_op ? v->error_op : "read", it->path, v->error);
        s->status = cli_exit_merge(s->status, CLI_EXIT_IO);
    }

    /* Interpreter: the tag in the file name, else (legacy files) the tag of
     * the interpreter its magic belongs to, else its version. */
    if (v->name.tag_len)
        snprintf(key, sizeof key, "%.*s", (int)v->name.tag_len,
                 v->cache_name + v->name.tag_off);
    else if (m && m->tag)
        snprintf(key, sizeof key, "%s", m->tag);
    else if (m)
        snprintf(key, sizeof key, "%s-%d%d", pyc_implementation_name(m->implementation),
                 m->major, m->minor);
    else
        snprintf(key, sizeof key, "unknown");
    add(s, G_INTERPRETER, key, m, v);

    if (v->name.kind == PYC_KIND_TEMP)
        snprintf(key, sizeof key, "temp");
    else if (v->name.opt == -1)
        snprintf(key, sizeof key, "pyo");
    else if (v->name.opt == PYC_OPT_UNREAD)
        snprintf(key, sizeof key, "other");
    else
        snprintf(key, sizeof key, "%d", v->name.opt);
    add(s, G_OPT, key, NULL, v);

    bool header_ok = v->header_read && v->header_status != PYC_HEADER_TRUNCATED &&
                     v->header_status != PYC_HEADER_UNKNOWN_MAGIC;
    add(s, G_MODE, header_ok ? pyc_mode_name(v->header.mode) : "unreadable", NULL, v);
    add(s, G_STATUS, pyc_status_name(v->status), NULL, v);

    s->files++;
    if (v->file_size > 0)
        s->bytes += (uint64_t)v->file_size;
    if (v->file_blocks > 0)
        s->disk += (uint64_t)v->file_blocks;
    return cli_stdout_failed() ? 1 : 0;
}

static int by_bytes_desc(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    return strcmp(x->key, y->key);
}

static void print_json(const struct stats *s)
{
    for (int g = 0; g < G_COUNT; g++) {
        const struct table *t = &s->groups[g];
        for (size_t i = 0; i < t->n; i++) {
            const struct row *r = &t->rows[i];
            cli_json j;
            cli_json_begin(&j, stdout);
            cli_json_str(&j, "group", group_names[g]);
            cli_json_str(&j, "key", r->key);
            if (g == G_INTERPRETER) {
                char python[16];
                if (r->python) {
                    snprintf(python, sizeof python, "%d.%d", r->python->major,
                             r->python->minor);
                    cli_json_str(&j, "implementation",
                                 pyc_implementation_name(r->python->implementation));
                    cli_json_str(&j, "python", python);
                    cli_json_bool(&j, "installed", cli_python_installed(r->python));
                } else {
                    cli_json_null(&j, "implementation");
                    cli_json_null(&j, "python");
                    cli_json_null(&j, "installed");
                }
            }
            cli_json_int(&j, "files", (int64_t)r->files);
            cli_json_int(&j, "bytes", (int64_t)r->bytes);
            cli_json_int(&j, "disk_bytes", (int64_t)r->disk);
            cli_json_end(&j);
        }
    }
    cli_json j;
    cli_json_begin(&j, stdout);
    cli_json_str(&j, "group", "total");
    cli_json_null(&j, "key");
    cli_json_int(&j, "files", (int64_t)s->files);
    cli_json_int(&j, "bytes", (int64_t)s->bytes);
    cli_json_int(&j, "disk_bytes", (int64_t)s->disk);
    cli_json_end(&j);
}

static void print_human(const struct stats *s, bool color)
{
    char b1[32], b2[32], version[32];
    bool any_missing = false;
    for (int g = 0; g < G_COUNT; g++) {
        const struct table *t = &s->groups[g];
        if (!t->n)
            continue;
        size_t w = 5;
        for (size_t i = 0; i < t->n; i++)
            if (strlen(t->rows[i].key) > w)
                w = strlen(t->rows[i].key);
        printf("%s%s%s\n", color ? CLI_SGR_BOLD : "", group_titles[g],
               color ? CLI_SGR_RESET : "");
        for (size_t i = 0; i < t->n; i++) {
            const struct row *r = &t->rows[i];
            cli_format_bytes(b1, sizeof b1, r->bytes);
            cli_format_bytes(b2, sizeof b2, r->disk);
            printf("  %-*s  %8llu %-5s  %10s  %10s on disk", (int)w, r->key,
                   (unsigned long long)r->files, r->files == 1 ? "file" : "files", b1, b2);
            if (g == G_INTERPRETER) {
                report_python_label(r->python, version, sizeof version);
                bool installed = r->python && cli_python_installed(r->python);
                printf("  %s%s", version, installed ? "" : " (not installed)");
                any_missing |= !installed;
            }
            putchar('\n');
        }
    }
    cli_format_bytes(b1, sizeof b1, s->bytes);
    cli_format_bytes(b2, sizeof b2, s->disk);
    printf("total: %llu cache file%s, %s (%s on disk)\n", (unsigned long long)s->files,
           s->files == 1 ? "" : "s", b1, b2);
    if (any_missing)
        printf("caches of interpreters not installed here: pycache clean --uninstalled\n");
}

int cmd_stats(int argc, char **argv)
{
    cli_parser p = {
        .command = "stats",
        .usage = "[OPTION]... [PATH]...",
        .description =
            "Count the bytecode cache files under each PATH (default: the current "
            "directory) and what they weigh, apparent size and space on disk, by "
            "interpreter (cache tag), optimization level, invalidation mode and status. "
            "Interpreters not installed on this machine are marked: their caches are "
            "usually leftovers of an upgrade.",
        .options = options,
        .epilog = CLI_PYTHONS_RULE_HELP
                  "\n"
                  "Examples:\n"
                  "  pycache stats /usr/lib/python3/dist-packages\n"
                  "  pycache stats --json . | jq 'select(.group == \"interpreter\")'\n",
    };
    tree_options t;
    tree_options_init(&t);
    t.scan.archives = &t.archive;
    cli_parser_init(&p, argc, argv);
    int id, exit_status;
    while ((id = tree_next_option(&p, &t, &exit_status)) > 0)
        ;
    if (id < 0 || (exit_status = tree_operands(&p, &t)) != 0)
        return exit_status;
    bool json = t.out.format == CLI_FORMAT_JSON;
    scan_options sopt = t.scan;
    sopt.progress = !t.out.quiet && isatty(STDERR_FILENO);

    struct stats s;
    memset(&s, 0, sizeof s);
    int rc = scan_run(t.paths, t.npaths, &sopt, on_item, &s);
    s.status = cli_exit_merge(s.status, cli_listing_finish());
    if (rc < 0) {
        cli_error("cannot scan: %s", strerror(errno));
        s.status = CLI_EXIT_IO;
    } else {
        for (int g = 0; g < G_COUNT; g++)
            if (s.groups[g].n > 1) /* rows is NULL when empty: qsort's is nonnull */
                qsort(s.groups[g].rows, s.groups[g].n, sizeof *s.groups[g].rows,
                      by_bytes_desc);
        if (s.oom) {
            cli_error("out of memory while counting");
            s.status = cli_exit_merge(s.status, CLI_EXIT_IO);
        }
        if (json)
            print_json(&s);
        else if (!t.out.quiet)
            print_human(&s, tree_color(&t));
    }
    for (int g = 0; g < G_COUNT; g++) {
        for (size_t i = 0; i < s.groups[g].n; i++)
            free(s.groups[g].rows[i].key);
        free(s.groups[g].rows);
    }
    tree_options_free(&t);
    return s.status;
}
