/*
 * cmd_inspect.c — `pycache inspect FILE...`: everything one cache file's
 * header says (magic, interpreter, layout, invalidation mode, flags,
 * recorded mtime and size or source hash) and the verdict CPython's import
 * system would reach on it (pyc_verdict_judge_path).
 *
 * A damaged file is not an error: it is a verdict (corrupt, stale...). Only
 * a file that cannot be read at all is an error (one line, then the next
 * file, exit 3 at the end).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/treeopts.h"
#include "engine/codedump.h"
#include "engine/convert.h"
#include "engine/archive.h"

enum {
    OPT_JSON = 'j',
    OPT_DEEP = 256,
    OPT_CHECK_HASH,
    OPT_PREFIX,
    OPT_COLOR,
    OPT_CODE,
};

static const cli_option options[] = {
    {OPT_JSON, "json", NULL, "write one JSON object per file (JSON Lines)"},
    {OPT_DEEP, "deep", NULL, "also check the marshalled code (what marshal.loads rejects)"},
    {OPT_CHECK_HASH, "check-hash-based-pycs", "WHEN",
     "as CPython's option: default, always or never"},
    {OPT_PREFIX, "prefix", "DIR",
     "the cache prefix tree FILEs lie in ($PYTHONPYCACHEPREFIX)"},
    TREE_NO_PREFIX_OPTION,
    {OPT_CODE, "code", NULL,
     "also show the code-object tree: names, filename, flags, counts, constants, "
     "line table and bytecode (hex); no interpreter needed"},
    {OPT_COLOR, "color", "WHEN", "colour the status: auto, always or never"},
    TREE_ARCHIVE_OPTIONS,
    {0, NULL, NULL, NULL},
};

/* Statuses the user should act on: exit 1. */
static bool actionable(pyc_status s)
{
    return s == PYC_STALE_USED || s == PYC_SOURCELESS || s == PYC_ORPHAN ||
           s == PYC_CORRUPT;
}

/* What could be learnt of one file. Header fields are known only as far as
 * the file's bytes go; every "have" flag says whether to print it. */
struct facts {
    const char *path;
    pyc_verdict v;
    bool judged;      /* the verdict's status/reason are meaningful */
    size_t nbytes;    /* header bytes available: min(file size, 16) */
    bool have_magic;  /* 4 bytes read */
    const pyc_magic *m;
    bool have_flags, have_mode, have_mtime, have_size, have_hash;
    char *source;     /* malloc'd, or NULL */
    char *code;       /* --code: the dump (text or JSON), malloc'd */
    const char *code_error; /* --code: why there is no dump */
    const char *archive, *member; /* a member of an archive */
    const char *layer;            /* a container image's: its layer */
};

/* "DIR/" part of PATH (up to and including the last slash), as a length. */
static size_t dir_len(const char *path, size_t len)
{
    while (len > 0 && path[len - 1] != '/')
        len--;
    return len;
}

static char *concat(const char *a, size_t alen, const char *b, size_t blen,
                    const char *c)
{
    size_t clen = strlen(c);
    char *s = malloc(alen + blen + clen + 1);
    if (!s)
        return NULL;
    memcpy(s, a, alen);
    memcpy(s + alen, b, blen);
    memcpy(s + alen + blen, c, clen + 1);
    return s;
}

/* PATH made absolute against the cwd (no symlink resolution: the prefix
 * comparison is textual, as source_from_cache's). */
static char *absolute(const char *path)
{
    if (path[0] == '/')
        return strdup(path);
    char *cwd = getcwd(NULL, 0);
    if (!cwd)
        return NULL;
    char *s = concat(cwd, strlen(cwd), "/", 1, path);
    free(cwd);
    return s;
}

/* Where the source of the cache file would be. __pycache__/NAME.TAG.pyc ->
 * ../NAME.py and legacy NAME.pyc -> NAME.py are plain path surgery on the
 * name the library classified; a prefix tree entry is source_from_cache's
 * business (pyc_source_from_cache). */
static char *source_path(const struct facts *f, const char *abs_path,
                         const char *abs_prefix)
{
    const char *path = f->path;
    const pyc_cache_name *n = &f->v.name;
    size_t len = strlen(path);
    size_t d = dir_len(path, len);
    const char *base = path + d;

    switch (n->kind) {
    case PYC_KIND_LEGACY:
        return concat(path, d, base, n->stem_len, ".py");
    case PYC_KIND_PYCACHE: {
        /* DIR/__pycache__/ -> DIR/ */
        size_t pd = d;
        if (pd > 0)
            pd--; /* the slash before the base name */
        while (pd > 0 && path[pd - 1] == '/')
            pd--;
        pd = dir_len(path, pd);
        return concat(path, pd, base, n->stem_len, ".py");
    }
    case PYC_KIND_PREFIX: {
        const pyc_magic *m = f->v.judge ? f->v.judge : f->m;
        if (!m || !abs_path || !abs_prefix)
            return NULL;
        return pyc_source_from_cache(m, abs_path, abs_prefix, NULL);
    }
    default:
        return NULL;
    }
}

/* Decides which header fields the bytes actually held. pyc_header_parse
 * fills them "as far as the bytes allow"; the offsets are the layouts of
 * pycache.h section 3. */
static void known_fields(struct facts *f)
{
    const pyc_header *h = &f->v.header;
    size_t n = f->nbytes;
    f->have_magic = f->v.header_read && n >= 4;
    f->m = f->have_magic ? h->magic : NULL;
    if (!f->m)
        return;
    size_t stamp_at = 4;
    if (f->m->layout == PYC_LAYOUT_FLAGS) {
        f->have_flags = n >= 8;
        f->have_mode = f->have_flags && f->v.header_status != PYC_HEADER_BAD_FLAGS;
        stamp_at = 8;
    } else {
        f->have_mode = true; /* before 3.7 every pyc is timestamp-based */
    }
    if (!f->have_mode)
        return;
    if (h->mode == PYC_MODE_TIMESTAMP) {
        f->have_mtime = n >= stamp_at + 4;
        f->have_size = f->m->layout != PYC_LAYOUT_MTIME && n >= stamp_at + 8;
    } else {
        f->have_hash = n >= 16;
    }
}

static char python_version[16];

static const char *python_of(const pyc_magic *m)
{
    snprintf(python_version, sizeof python_version, "%u.%u", m->major, m->minor);
    return python_version;
}

static int opt_of(const struct facts *f, bool *known)
{
    const pyc_cache_name *n = &f->v.name;
    *known = n->kind != PYC_KIND_NONE && n->opt >= 0;
    return n->opt;
}

static void write_json(const struct facts *f)
{
    const pyc_verdict *v = &f->v;
    const pyc_header *h = &v->header;
    const pyc_magic *m = f->m;
    cli_json j;
    cli_json_begin(&j, stdout);
    cli_json_str(&j, "path", f->path);
    cli_json_str(&j, "status", f->judged ? pyc_status_name(v->status) : NULL);
    cli_json_str(&j, "reason",
                 f->judged && v->reason != PYC_REASON_NONE ? pyc_reason_name(v->reason)
                                                          : NULL);
    cli_json_str(&j, "source", f->source);
    if (f->judged && f->source)
        cli_json_bool(&j, "source_exists", v->source_exists);
    else
        cli_json_null(&j, "source_exists");
    cli_json_str(&j, "kind", v->name.kind != PYC_KIND_NONE
                                 ? pyc_cache_kind_name(v->name.kind)
                                 : NULL);
    cli_json_str(&j, "implementation", m ? pyc_implementation_name(m->implementation) : NULL);
    cli_json_str(&j, "python", m ? python_of(m) : NULL);
    cli_json_str(&j, "tag", m ? m->tag : NULL);
    bool opt_known;
    int opt = opt_of(f, &opt_known);
    if (opt_known)
        cli_json_int(&j, "opt", opt);
    else
        cli_json_null(&j, "opt");
    if (f->have_magic) {
        uint8_t word[4] = {(uint8_t)h->magic_word, (uint8_t)(h->magic_word >> 8),
                           (uint8_t)(h->magic_word >> 16), (uint8_t)(h->magic_word >> 24)};
        cli_json_int(&j, "magic", h->magic_word & 0xFFFF);
        cli_json_hex(&j, "magic_hex", word, 4);
    } else {
        cli_json_null(&j, "magic");
        cli_json_null(&j, "magic_hex");
    }
    cli_json_str(&j, "release", m ? m->release : NULL);
    if (m)
        cli_json_int(&j, "header_size", (int64_t)m->layout);
    else
        cli_json_null(&j, "header_size");
    cli_json_str(&j, "mode", f->have_mode ? pyc_mode_name(h->mode) : NULL);
    if (f->have_flags)
        cli_json_int(&j, "flags", h->flags);
    else
        cli_json_null(&j, "flags");
    if (f->have_mtime) {
        char when[64];
        cli_format_time_utc(when, sizeof when, h->mtime);
        cli_json_int(&j, "mtime", h->mtime);
        cli_json_str(&j, "mtime_utc", when);
    } else {
        cli_json_null(&j, "mtime");
        cli_json_null(&j, "mtime_utc");
    }
    if (f->have_size)
        cli_json_int(&j, "source_size", h->source_size);
    else
        cli_json_null(&j, "source_size");
    cli_json_hex(&j, "hash", f->have_hash ? h->source_hash : NULL, 8);
    if (v->file_size >= 0)
        cli_json_int(&j, "size", v->file_size);
    else
        cli_json_null(&j, "size");
    if (f->code || f->code_error) {
        if (f->code)
            cli_json_raw(&j, "code", f->code);
        else
            cli_json_null(&j, "code");
        cli_json_str(&j, "code_error", f->code_error);
    }
    if (f->archive) {
        cli_json_str(&j, "archive", f->archive);
        cli_json_str(&j, "member", f->member);
    }
    if (f->layer)
        cli_json_str(&j, "layer", f->layer);
    cli_json_end(&j);
}

static void label(const char *name)
{
    printf("  %-12s ", name);
}

static void write_human(const struct facts *f, bool color, bool first)
{
    const pyc_verdict *v = &f->v;
    const pyc_header *h = &v->header;
    const pyc_magic *m = f->m;
    char buf[64];

    if (!first)
        putchar('\n');
    if (color)
        fputs(CLI_SGR_BOLD, stdout);
    cli_print_path(stdout, f->path);
    if (color)
        fputs(CLI_SGR_RESET, stdout);
    putchar('\n');

    if (f->judged) {
        label("status");
        if (color)
            fputs(cli_status_sgr(v->status), stdout);
        fputs(pyc_status_name(v->status), stdout);
        if (color)
            fputs(CLI_SGR_RESET, stdout);
        if (v->reason != PYC_REASON_NONE)
            printf(" (%s)", pyc_reason_name(v->reason));
        putchar('\n');
    }

    label("kind");
    if (v->name.kind == PYC_KIND_NONE) {
        fputs("not a cache file name", stdout);
    } else {
        bool opt_known;
        int opt = opt_of(f, &opt_known);
        fputs(pyc_cache_kind_name(v->name.kind), stdout);
        if (v->name.pyo)
            fputs(", .pyo", stdout);
        if (opt_known)
            printf(", opt %d", opt);
    }
    putchar('\n');

    if (f->source) {
        label("source");
        cli_print_path(stdout, f->source);
        if (f->judged && !v->source_exists)
            fputs(" (missing)", stdout);
        putchar('\n');
    }
    if (f->layer) {
        label("layer");
        fputs(f->layer, stdout);
        putchar('\n');
    }

    label("magic");
    if (f->have_magic) {
        printf("%u (%02x%02x%02x%02x)", (unsigned)(h->magic_word & 0xFFFF),
               (unsigned)(h->magic_word & 0xFF), (unsigned)(h->magic_word >> 8 & 0xFF),
               (unsigned)(h->magic_word >> 16 & 0xFF), (unsigned)(h->magic_word >> 24));
        if (!m)
            fputs(", unknown", stdout);
    } else {
        fputs("none (file shorter than 4 bytes)", stdout);
    }
    putchar('\n');

    if (m) {
        label("python");
        printf("%s %s", pyc_implementation_name(m->implementation), python_of(m));
        if (m->tag)
            printf(", tag %s", m->tag);
        if (m->release && *m->release)
            printf(", magic of %s%s", m->release, m->final ? " (final)" : "");
        putchar('\n');

        label("header");
        printf("%d bytes", (int)m->layout);
        if (f->have_mode)
            printf(", %s", pyc_mode_name(h->mode));
        if (f->have_flags)
            printf(", flags 0x%x", (unsigned)h->flags);
        if (f->nbytes < (size_t)m->layout)
            printf(" (only %zu present)", f->nbytes);
        putchar('\n');
    }
    if (f->have_mtime) {
        cli_format_time_utc(buf, sizeof buf, h->mtime);
        label("mtime");
        printf("%u (%s)\n", (unsigned)h->mtime, buf);
    }
    if (f->have_size) {
        label("source size");
        printf("%u\n", (unsigned)h->source_size);
    }
    if (f->have_hash) {
        label("source hash");
        for (int i = 0; i < 8; i++)
            printf("%02x", h->source_hash[i]);
        putchar('\n');
    }
    if (v->file_size >= 0) {
        cli_format_bytes(buf, sizeof buf, (uint64_t)v->file_size);
        label("size");
        if (v->file_size >= 1024)
            printf("%s (%lld bytes)\n", buf, (long long)v->file_size);
        else
            printf("%s\n", buf);
    }
    if (f->code_error) {
        label("code");
        printf("not shown: %s\n", f->code_error);
    } else if (f->code) {
        putchar('\n');
        fputs(f->code, stdout);
    }
}

struct settings {
    bool json, code;
    cli_color_mode color;
    pyc_verdict_options vopt;
    const char *prefix;
    char *abs_prefix;
    archive_options aopt;
};

/* inspect ARCHIVE MEMBER: what archive_scan says of the one member. */
struct member_probe {
    const struct settings *s;
    bool color, *first;
    int status;
    bool found;
};

static int on_member(const archive_item *it, void *ctx)
{
    struct member_probe *mp = ctx;
    if (it->event == ARCHIVE_ERROR) {
        cli_error_detail(it->error_op, it->path, it->error, it->error_detail);
        mp->status = cli_exit_merge(mp->status, CLI_EXIT_IO);
        mp->found = mp->found || it->member != NULL;
        return 0;
    }
    if (it->event != ARCHIVE_CACHE && it->event != ARCHIVE_FOREIGN)
        return 0;
    struct facts f;
    memset(&f, 0, sizeof f);
    f.path = it->path;
    f.archive = it->archive;
    f.member = it->member;
    f.layer = it->layer;
    mp->found = true;
    if (it->verdict) {
        f.v = *it->verdict;
        f.judged = true;
    } else {
        f.v.status = PYC_FOREIGN;
        f.v.reason = PYC_REASON_NOT_BYTECODE;
        f.v.file_size = it->size;
        f.judged = true;
    }
    f.nbytes = f.v.file_size >= 0 && f.v.file_size < PYC_HEADER_MAX ? (size_t)f.v.file_size
                                                                     : PYC_HEADER_MAX;
    known_fields(&f);
    f.source = it->source_path ? strdup(it->source_path) : NULL;
    if (mp->s->json)
        write_json(&f);
    else
        write_human(&f, mp->color, *mp->first);
    *mp->first = false;
    if (actionable(f.v.status))
        mp->status = cli_exit_merge(mp->status, CLI_EXIT_FINDINGS);
    free(f.source);
    return 0;
}

static int inspect_members(const struct settings *s, char **operands, int n, bool color,
                           bool *first)
{
    const char *archive = operands[0];
    if (n < 2)
        return cli_usage_error("inspect", "no MEMBER of '%s' given", archive);
    int status = CLI_EXIT_OK;
    for (int i = 1; i < n; i++) {
        const char *member = operands[i];
        while (member[0] == '.' && member[1] == '/')
            member += 2;
        struct member_probe mp = {s, color, first, CLI_EXIT_OK, false};
        int rc = archive_scan(archive, &s->aopt, &s->vopt, NULL, NULL, 0, member, on_member,
                              &mp);
        status = cli_exit_merge(status, mp.status);
        if (rc < 0) {
            status = cli_exit_merge(status, CLI_EXIT_IO);
            break;
        }
        if (!mp.found) {
            cli_error("no cache member '%s' in '%s'", operands[i], archive);
            status = cli_exit_merge(status, CLI_EXIT_IO);
        }
    }
    return status;
}

/* --code: the code-object tree of PATH as text or JSON into F->code, or
 * why not into F->code_error. Returns 0, -1 on an I/O error (reported). */
static int load_code(struct facts *f, const char *path, bool json)
{
    unsigned char *buf;
    size_t len;
    struct stat st;
    const char *op = NULL;
    if (read_whole_file(AT_FDCWD, path, false, &buf, &len, &st, &op) != 0) {
        cli_error_path(op ? op : "read", path, errno);
        return -1;
    }
    pyc_header h;
    if (pyc_header_parse(buf, len, &h) != PYC_HEADER_OK || !h.magic) {
        f->code_error = "not a cache file of a known interpreter";
        free(buf);
        return 0;
    }
    pyc_marshal_status ms;
    pyc_marshal_tree *t = pyc_marshal_parse(h.magic, buf + h.length, len - h.length, &ms, NULL);
    free(buf);
    if (!t) {
        if (errno == ENOMEM) {
            cli_error_path("parse", path, errno);
            return -1;
        }
        f->code_error = errno == ENOTSUP ? "marshal format of this interpreter not modelled"
                                         : pyc_marshal_status_message(ms);
        return 0;
    }
    size_t size;
    FILE *mem = open_memstream(&f->code, &size);
    if (!mem) {
        pyc_marshal_tree_free(t);
        cli_error_path("dump", path, errno);
        return -1;
    }
    if (json)
        codedump_json(mem, t, pyc_marshal_root(t));
    else
        codedump_text(mem, t, pyc_marshal_root(t));
    pyc_marshal_tree_free(t);
    if (fclose(mem) != 0) {
        free(f->code);
        f->code = NULL;
        cli_error_path("dump", path, ENOMEM);
        return -1;
    }
    return 0;
}

/* Inspects one file; returns its exit status. */
static int inspect_one(const struct settings *s, const char *path, bool color, bool *first)
{
    struct facts f;
    memset(&f, 0, sizeof f);
    f.path = path;

    char *abs_path = NULL;
    if (s->abs_prefix) {
        abs_path = absolute(path);
        if (!abs_path) {
            cli_error_path("inspect", path, errno);
            return CLI_EXIT_IO;
        }
    }
    if (pyc_verdict_judge_path(abs_path ? abs_path : path, s->abs_prefix, &s->vopt,
                               &f.v) != 0) {
        cli_error_path("inspect", path, errno);
        free(abs_path);
        return CLI_EXIT_IO;
    }
    if (!f.v.header_read) {
        /* The cache file itself could not be read: nothing to show. */
        cli_error_path(f.v.error_op ? f.v.error_op : "read", path, f.v.error);
        free(abs_path);
        return CLI_EXIT_IO;
    }
    f.judged = true;
    f.nbytes = f.v.file_size >= 0 && f.v.file_size < PYC_HEADER_MAX
                   ? (size_t)f.v.file_size
                   : PYC_HEADER_MAX;
    known_fields(&f);
    f.source = source_path(&f, abs_path, s->abs_prefix);

    int status = CLI_EXIT_OK;
    if (s->code && load_code(&f, path, s->json) != 0)
        status = CLI_EXIT_IO;
    if (f.v.error) {
        /* Read the cache file, but not its source: the verdict stands on what
         * could be learnt; say why it is incomplete. */
        const char *what = f.source ? f.source : path;
        cli_error_path(f.v.error_op ? f.v.error_op : "read", what, f.v.error);
        status = CLI_EXIT_IO;
    }
    if (s->json)
        write_json(&f);
    else
        write_human(&f, color, *first);
    *first = false;
    if (actionable(f.v.status))
        status = cli_exit_merge(status, CLI_EXIT_FINDINGS);
    free(f.source);
    free(f.code);
    free(abs_path);
    return status;
}

int cmd_inspect(int argc, char **argv)
{
    struct settings s;
    memset(&s, 0, sizeof s);
    s.vopt.check_hash = PYC_CHECK_HASH_DEFAULT;

    cli_parser p = {
        .command = "inspect",
        .usage = "[OPTION]... FILE...\n   or: pycache inspect [OPTION]... ARCHIVE MEMBER...",
        .description =
            "Shows what each cache FILE's header says -- magic number, the Python\n"
            "that wrote it, header layout, invalidation mode, flags, the recorded\n"
            "source mtime and size or source hash -- and the verdict CPython's\n"
            "import system would reach on it (fresh, stale, orphan, corrupt...),\n"
            "judged by the interpreter the file belongs to. When the first operand\n"
            "is an archive (zip, wheel, zipapp, tar, container image...), the others\n"
            "are names of its members, judged in place against the other members\n"
            "(an image's: paths of the file system its layers make).\n",
        .options = options,
        .epilog = "A damaged file is a verdict (corrupt, stale), not an error. Exit 1\n"
                  "when a file is stale-used, sourceless, orphan or corrupt.\n"
                  "--json fields: path status reason source source_exists kind\n"
                  "implementation python tag opt magic magic_hex release header_size\n"
                  "mode flags mtime mtime_utc source_size hash size (null if unknown);\n"
                  "with --code also code (the code-object tree) and code_error.\n",
    };
    bool no_prefix = false;
    cli_parser_init(&p, argc, argv);
    for (int c; (c = cli_next_option(&p)) != 0;) {
        switch (c) {
        case -1:
            return CLI_EXIT_USAGE;
        case 'h':
            return CLI_EXIT_OK;
        case OPT_JSON:
            s.json = true;
            break;
        case OPT_CODE:
            s.code = true;
            break;
        case OPT_DEEP:
            s.vopt.deep = true;
            break;
        case OPT_CHECK_HASH:
            if (cli_parse_check_hash(&p, p.optarg, &s.vopt.check_hash) != 0)
                return CLI_EXIT_USAGE;
            break;
        case OPT_PREFIX:
            s.prefix = p.optarg;
            no_prefix = false;
            break;
        case TREE_OPT_NO_PREFIX:
            s.prefix = NULL;
            no_prefix = true;
            break;
        case OPT_COLOR:
            if (cli_parse_color(&p, p.optarg, &s.color) != 0)
                return CLI_EXIT_USAGE;
            break;
        case TREE_OPT_ZIPIMPORT:
            s.aopt.use = ARCHIVE_USE_ZIPIMPORT;
            break;
        case TREE_OPT_EXTRACTED:
            s.aopt.use = ARCHIVE_USE_EXTRACTED;
            break;
        case TREE_OPT_EXTRACT_MTIME:
            if (archive_parse_mtime(p.optarg, &s.aopt) != 0)
                return cli_usage_error(p.command,
                                       "--extract-mtime takes archive, now or seconds "
                                       "since the epoch, not '%s'",
                                       p.optarg);
            break;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (CLI_NOPERANDS(&p) == 0)
        return cli_usage_error(p.command, "no FILE given");

    if (!s.prefix && !no_prefix)
        s.prefix = tree_env_prefix(); /* sys.pycache_prefix (treeopts.c) */
    if (s.prefix) {
        if (!*s.prefix)
            return cli_usage_error(p.command, "--prefix needs a directory");
        s.abs_prefix = absolute(s.prefix);
        if (!s.abs_prefix) {
            cli_error_path("resolve", s.prefix, errno);
            return CLI_EXIT_IO;
        }
    }

    bool color = !s.json && cli_color_enabled(s.color, stdout);
    int status = CLI_EXIT_OK;
    char **files = CLI_OPERANDS(&p);
    bool first = true;
    if (archive_sniff(files[0]) == 1) {
        /* The first FILE is an archive: the others are its members. */
        status = inspect_members(&s, files, CLI_NOPERANDS(&p), color, &first);
        free(s.abs_prefix);
        return status;
    }
    for (int i = 0; i < CLI_NOPERANDS(&p); i++) {
        int st = inspect_one(&s, files[i], color, &first);
        status = cli_exit_merge(status, st);
        if (cli_stdout_failed())
            break;
    }
    free(s.abs_prefix);
    return status;
}
