/*
 * cmd_diff.c — `pycache diff A B`: do two cache files, or the cache files of
 * two trees (paired by their path relative to A and B), hold the same code?
 *
 * For each pair it says which of three kinds of difference there is, the
 * question a reproducible-build check asks and a byte diff cannot answer:
 *   header     only the header differs (recorded mtime, source size, flags,
 *              source hash): the code is the same;
 *   ref-flags  the bodies differ, but only in how marshal encoded equal
 *              objects (FLAG_REF, reference numbering, interning, set
 *              order: pyc_marshal_compare ignores them) — what
 *              `pycache normalize` removes;
 *   code       the code objects differ: the first differing field is named,
 *              e.g. co_consts[3].co_code.
 * The bodies are parsed with libpycache's marshal object model, by the
 * interpreter each file's magic names, so no Python is needed. Exit 0 when
 * every pair holds the same code (header and ref-flag differences allowed),
 * 1 when some code differs or a cache file is on one side only, 3 when a
 * file could not be read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/treeopts.h"
#include "engine/archive.h"
#include "engine/convert.h"
#include "engine/report.h"
#include "engine/scan.h"

enum {
    OPT_IGNORE_FILENAME = 256,
};

static const cli_option options[] = {
    {OPT_IGNORE_FILENAME, "ignore-filename", NULL,
     "do not count co_filename differences (trees compiled in different directories)"},
    TREE_JSON_OPTION,
    {'v', "verbose", NULL, "also list the pairs that are byte for byte the same"},
    TREE_QUIET_OPTION,
    TREE_WALK_OPTIONS,
    {0, NULL, NULL, NULL},
};

struct entry {
    char *rel;   /* path relative to the root (an archive's: the member name) */
    char *path;  /* display path (an archive's: ARCHIVE/member) */
    unsigned char *data; /* an archive member's bytes; NULL: read the file */
    size_t len;
};

struct list {
    struct entry *v;
    size_t n, cap;
    const char *root;
    size_t root_len;
    int status;
};

struct diff_cmd {
    bool json, verbose, quiet;
    unsigned flags;
    int status;
    uint64_t same, header, refs, code, only, errors;
};

/* Makes room for one more entry in L: 0, or -1 when out of memory. */
static int room_for_one(struct list *l)
{
    if (l->n < l->cap)
        return 0;
    size_t cap = l->cap ? l->cap * 2 : 256;
    struct entry *v = realloc(l->v, cap * sizeof *v);
    if (!v)
        return -1;
    l->v = v;
    l->cap = cap;
    return 0;
}

static int collect(const scan_item *it, void *ctx)
{
    struct list *l = ctx;
    if (it->event == SCAN_ERROR) {
        cli_error_path(it->error_op ? it->error_op : "read", it->path, it->error);
        l->status = CLI_EXIT_IO;
        return 0;
    }
    if (it->event != SCAN_CACHE || it->verdict->name.kind == PYC_KIND_TEMP)
        return 0;
    if (room_for_one(l) != 0)
        return 1;
    const char *rel = it->path;
    if (strncmp(rel, l->root, l->root_len) == 0) {
        rel += l->root_len;
        while (*rel == '/')
            rel++;
    }
    struct entry *e = &l->v[l->n];
    e->rel = strdup(rel);
    e->path = strdup(it->path);
    e->data = NULL;
    e->len = 0;
    if (!e->rel || !e->path) {
        free(e->rel);
        free(e->path);
        return 1;
    }
    l->n++;
    return 0;
}

/* An archive's cache member (archive_read_caches): its name is its
 * relative path, as a tree's caches are paired by theirs. */
static int collect_member(const archive_cache *ac, void *ctx)
{
    struct list *l = ctx;
    const char *member = ac->member, *shown = ac->shown;
    const unsigned char *data = ac->data;
    size_t len = ac->len;
    if (room_for_one(l) != 0)
        return 1;
    struct entry *e = &l->v[l->n];
    e->rel = strdup(member);
    e->path = strdup(shown);
    e->data = malloc(len ? len : 1);
    if (!e->rel || !e->path || !e->data) {
        free(e->rel);
        free(e->path);
        free(e->data);
        return 1;
    }
    memcpy(e->data, data, len);
    e->len = len;
    l->n++;
    return 0;
}

static int archive_problem(const archive_item *it, void *ctx)
{
    struct list *l = ctx;
    if (it->event == ARCHIVE_ERROR) {
        report_error_detail(it->error_op, it->path, it->error, it->error_detail);
        l->status = CLI_EXIT_IO;
    }
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->rel, ((const struct entry *)b)->rel);
}

static void free_list(struct list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].rel);
        free(l->v[i].path);
        free(l->v[i].data);
    }
    free(l->v);
}

/* The header fields that differ, as "mtime, size" into BUF. */
static void header_fields(const pyc_header *a, const pyc_header *b, char *buf, size_t cap)
{
    buf[0] = 0;
    const char *sep = "";
    size_t n = 0;
#define ADD(name)                                                                  \
    do {                                                                           \
        int k = snprintf(buf + n, cap - n, "%s%s", sep, name);                     \
        if (k > 0 && (size_t)k < cap - n)                                          \
            n += (size_t)k;                                                        \
        sep = ", ";                                                                \
    } while (0)
    if (a->magic_word != b->magic_word)
        ADD("magic");
    if (a->flags != b->flags)
        ADD("flags");
    if (a->mtime != b->mtime)
        ADD("mtime");
    if (a->source_size != b->source_size)
        ADD("size");
    if (memcmp(a->source_hash, b->source_hash, 8) != 0)
        ADD("hash");
#undef ADD
}

static void emit(struct diff_cmd *c, const char *rel, const char *pa, const char *pb,
                 const char *result, const char *headers, const char *code_path,
                 const char *detail, bool listed)
{
    if (c->quiet)
        return;
    if (c->json) {
        cli_json j;
        cli_json_begin(&j, stdout);
        cli_json_str(&j, "path", rel);
        cli_json_str(&j, "a", pa);
        cli_json_str(&j, "b", pb);
        cli_json_str(&j, "result", result);
        cli_json_str(&j, "header_fields", headers && *headers ? headers : NULL);
        cli_json_str(&j, "code_path", code_path);
        cli_json_str(&j, "detail", detail);
        cli_json_end(&j);
        return;
    }
    if (!listed && !c->verbose)
        return;
    printf("%-10s ", result);
    cli_print_path(stdout, rel);
    const char *sep = "  ";
    if (code_path) {
        printf("%sat %s", sep, *code_path ? code_path : "the top object");
        sep = "; ";
    }
    if (headers && *headers) {
        printf("%sheader: %s", sep, headers);
        sep = "; ";
    }
    if (detail)
        printf("%s%s", sep, detail);
    putchar('\n');
}

struct loaded {
    unsigned char *buf;
    bool borrowed;           /* buf is an archive member's (the list's) */
    size_t len;
    pyc_header h;
    pyc_marshal_tree *tree;
    const char *why;
};

/* Reads (a file) and parses E. 0, 1 when it is not a parsable pyc (WHY),
 * -1 on an I/O error (reported). */
static int load(const struct entry *e, struct loaded *l)
{
    struct stat st;
    const char *op = NULL;
    const char *path = e->path;
    memset(l, 0, sizeof *l);
    if (e->data) {
        l->buf = e->data;
        l->len = e->len;
        l->borrowed = true;
    } else if (read_whole_file(AT_FDCWD, path, false, &l->buf, &l->len, &st, &op) != 0) {
        cli_error_path(op ? op : "read", path, errno);
        return -1;
    }
    if (pyc_header_parse(l->buf, l->len, &l->h) != PYC_HEADER_OK || !l->h.magic) {
        l->why = "not a cache file of a known interpreter";
        return 1;
    }
    pyc_marshal_status st2;
    l->tree = pyc_marshal_parse(l->h.magic, l->buf + l->h.length, l->len - l->h.length,
                                &st2, NULL);
    if (!l->tree) {
        if (errno == ENOMEM) {
            cli_error_path("parse", path, errno);
            return -1;
        }
        l->why = errno == ENOTSUP ? "marshal format of this interpreter not modelled"
                                  : pyc_marshal_status_message(st2);
        return 1;
    }
    return 0;
}

static void unload(struct loaded *l)
{
    if (!l->borrowed)
        free(l->buf);
    pyc_marshal_tree_free(l->tree);
}

static void diff_pair(struct diff_cmd *c, const char *rel, const struct entry *ea,
                      const struct entry *eb)
{
    const char *pa = ea->path, *pb = eb->path;
    struct loaded a, b;
    int ra = load(ea, &a), rb = ra < 0 ? -1 : load(eb, &b);
    if (ra < 0 || rb < 0) {
        c->errors++;
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
        unload(&a);
        if (ra >= 0)
            unload(&b);
        return;
    }
    char headers[64];
    bool same_bytes = a.len == b.len && memcmp(a.buf, b.buf, a.len) == 0;
    if (same_bytes) {
        c->same++;
        emit(c, rel, pa, pb, "same", NULL, NULL, NULL, false);
        goto out;
    }
    if (ra > 0 || rb > 0) {
        /* Different bytes, and one side cannot be read as code. */
        c->code++;
        c->status = cli_exit_merge(c->status, CLI_EXIT_FINDINGS);
        emit(c, rel, pa, pb, "code", NULL, NULL, ra > 0 ? a.why : b.why, true);
        goto out;
    }
    header_fields(&a.h, &b.h, headers, sizeof headers);
    size_t ba = a.len - a.h.length, bb = b.len - b.h.length;
    bool same_body = a.h.length == b.h.length && ba == bb &&
                     memcmp(a.buf + a.h.length, b.buf + b.h.length, ba) == 0;
    if (same_body) {
        c->header++;
        emit(c, rel, pa, pb, "header", headers, NULL, NULL, true);
        goto out;
    }
    char path[512];
    int r = a.h.magic == b.h.magic
                ? pyc_marshal_compare(a.tree, b.tree, c->flags, path, sizeof path)
                : 1;
    if (a.h.magic != b.h.magic)
        path[0] = 0;
    if (r < 0) {
        cli_error_path("compare", pa, errno);
        c->errors++;
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
    } else if (r == 0) {
        c->refs++;
        emit(c, rel, pa, pb, "ref-flags", headers, NULL, NULL, true);
    } else {
        c->code++;
        c->status = cli_exit_merge(c->status, CLI_EXIT_FINDINGS);
        emit(c, rel, pa, pb, "code", headers, path,
             a.h.magic != b.h.magic ? "different interpreters" : NULL, true);
    }
out:
    unload(&a);
    unload(&b);
}

/* The caches of ROOT, a tree or (ARCHIVE) an archive, sorted by relative
 * path. */
static int scan_tree(const char *root, bool archive, const tree_options *t,
                     const scan_options *sopt, struct list *l)
{
    char *paths[1] = {(char *)(uintptr_t)root};
    memset(l, 0, sizeof *l);
    if (archive) {
        int rc = archive_read_caches(root, &t->archive, &sopt->verdict, false, collect_member,
                                     archive_problem, l);
        if (rc == 1) {
            cli_error("cannot read '%s': %s", root, strerror(ENOMEM));
            return -1;
        }
        if (rc < 0)
            l->status = CLI_EXIT_IO;
        if (l->n) /* qsort of NULL: undefined even for 0 items */
            qsort(l->v, l->n, sizeof *l->v, entry_cmp);
        return 0;
    }
    l->root = root;
    l->root_len = strlen(root);
    while (l->root_len > 1 && root[l->root_len - 1] == '/')
        l->root_len--;
    if (scan_run(paths, 1, sopt, collect, l) != 0) {
        cli_error("cannot scan '%s': %s", root, strerror(errno ? errno : ENOMEM));
        return -1;
    }
    if (l->n) /* qsort of NULL: undefined even for 0 items */
        qsort(l->v, l->n, sizeof *l->v, entry_cmp);
    return 0;
}

int cmd_diff(int argc, char **argv)
{
    cli_parser p = {
        .command = "diff",
        .usage = "[OPTION]... A B",
        .description =
            "Compare two cache files, or the cache files of two trees or archives (zip, "
            "wheel, zipapp, tar in any compression; or an archive and a tree) paired by "
            "their path relative to A and B (an archive's: the member name, read without "
            "extracting anything), and say for each pair whether only the header "
            "differs (recorded mtime, source size, flags, hash), only the marshal "
            "encoding (ref flags, reference numbering, interning, set order: what "
            "`pycache normalize` removes), or the code itself, naming the first "
            "differing field (co_consts[3].co_code). No interpreter is needed.",
        .options = options,
        .epilog = "Exit 0 when every pair holds the same code, 1 when some code differs or a\n"
                  "cache file is on one side only, 3 when a file could not be read.\n"
                  "--json fields: path a b result (same, header, ref-flags, code, only-a,\n"
                  "only-b) header_fields code_path detail.\n"
                  "Examples:\n"
                  "  pycache diff build-1/ build-2/\n"
                  "  pycache diff --ignore-filename app-1.whl app-2.whl\n",
    };
    tree_options t;
    tree_options_init(&t);
    struct diff_cmd c;
    memset(&c, 0, sizeof c);

    cli_parser_init(&p, argc, argv);
    int id, exit_status;
    while ((id = tree_next_option(&p, &t, &exit_status)) > 0) {
        switch (id) {
        case OPT_IGNORE_FILENAME:
            c.flags |= PYC_COMPARE_IGNORE_FILENAME;
            break;
        }
    }
    if (id < 0)
        return exit_status;
    /* The pairs are written in path order by diff itself (two sorted lists
     * merged), so no listing is started: the output options only. */
    tree_resolve_output(&t);
    c.json = t.out.format == CLI_FORMAT_JSON;
    c.verbose = t.out.verbose;
    c.quiet = t.out.quiet != 0;
    scan_options sopt = t.scan;
    sopt.judge = SCAN_JUDGE_NAME;
    int early = CLI_EXIT_OK;
    const char *A = NULL, *B = NULL;
    struct stat sa, sb;
    bool arch_a = false, arch_b = false;
    if (CLI_NOPERANDS(&p) != 2) {
        early = cli_usage_error(p.command, "needs two operands, A and B");
    } else {
        A = CLI_OPERANDS(&p)[0];
        B = CLI_OPERANDS(&p)[1];
        if (stat(A, &sa) != 0) {
            cli_error_path("stat", A, errno);
            early = CLI_EXIT_IO;
        } else if (stat(B, &sb) != 0) {
            cli_error_path("stat", B, errno);
            early = CLI_EXIT_IO;
        } else if ((arch_a = archive_sniff(A) == 1), /* a layout directory too */
                   (arch_b = archive_sniff(B) == 1),
                   (S_ISDIR(sa.st_mode) || arch_a) != (S_ISDIR(sb.st_mode) || arch_b)) {
            early = cli_usage_error(p.command, "A and B must be two files, or two directories "
                                               "or archives");
        }
    }
    if (early != CLI_EXIT_OK) {
        tree_options_free(&t);
        return early;
    }

    if (!S_ISDIR(sa.st_mode) && !arch_a) {
        struct entry ea = {.path = (char *)(uintptr_t)A}, eb = {.path = (char *)(uintptr_t)B};
        diff_pair(&c, B, &ea, &eb);
        tree_options_free(&t);
        return c.status;
    }

    struct list la, lb;
    if (scan_tree(A, arch_a, &t, &sopt, &la) != 0) {
        tree_options_free(&t);
        return CLI_EXIT_IO;
    }
    if (scan_tree(B, arch_b, &t, &sopt, &lb) != 0) {
        free_list(&la);
        tree_options_free(&t);
        return CLI_EXIT_IO;
    }
    c.status = cli_exit_merge(la.status, lb.status);
    size_t i = 0, j = 0;
    while ((i < la.n || j < lb.n) && !cli_stdout_failed()) {
        int k = i == la.n ? 1 : j == lb.n ? -1 : strcmp(la.v[i].rel, lb.v[j].rel);
        if (k == 0) {
            diff_pair(&c, la.v[i].rel, &la.v[i], &lb.v[j]);
            i++;
            j++;
        } else {
            const struct entry *e = k < 0 ? &la.v[i++] : &lb.v[j++];
            c.only++;
            c.status = cli_exit_merge(c.status, CLI_EXIT_FINDINGS);
            emit(&c, e->rel, k < 0 ? e->path : NULL, k < 0 ? NULL : e->path,
                 k < 0 ? "only-a" : "only-b", NULL, NULL, NULL, true);
        }
    }
    if (!c.json && !c.quiet)
        printf("%llu same, %llu header only, %llu ref-flags only, %llu code, %llu on one side"
               " only%s\n",
               (unsigned long long)c.same, (unsigned long long)c.header,
               (unsigned long long)c.refs, (unsigned long long)c.code,
               (unsigned long long)c.only, c.errors ? ", errors" : "");
    free_list(&la);
    free_list(&lb);
    tree_options_free(&t);
    return c.status;
}
