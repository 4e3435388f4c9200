/*
 * cmd_verify.c — `pycache verify [PATH]...`: was each cache file's code
 * built from its source?
 *
 * A timestamp pyc is trusted on 8 header bytes (the source's mtime and
 * size), a hash-based one on the source's hash: neither says anything about
 * the body. A body swapped for another module's under a kept header (a
 * poisoned __pycache__), or a same-second, same-size edit after the cache
 * was written (a racy cache, cpython#75953), passes every header check. The
 * only answer is the interpreter's: verify recompiles each cache's source
 * with that cache's own interpreter, at the cache's optimization level, in
 * memory (no file is written), and compares the two code objects with the
 * marshal object model (pyc_marshal_compare): refs followed, FLAG_REF,
 * interning and set order ignored, since they depend on the compiling
 * process and not on the source (Python/marshal.c w_ref).
 *
 * co_filename is not compared unless --check-filename: the import system
 * replaces it with the source's path whenever it loads a cache that has a
 * source (importlib._bootstrap_external._compile_bytecode calls
 * _imp._fix_co_filename, 3.x; Python/import.c load_source_module calls
 * update_compiled_module, 2.7), so compileall -d, -s/-p and the prefix a
 * tree was compiled under change no code that runs.
 *
 * A cache names its interpreter by magic number only, and two patch
 * releases of one version can compile differently (Debian's 3.11.2 and
 * 3.11.7 write other co_linetable column tables): a mismatch is tried again,
 * in another round of jobs, with each other installed interpreter of that
 * magic, and is verified when one of them reproduces the cache.
 *
 * The walk rides on scan_run; each cache file is read and its body checked
 * with pyc_marshal_validate first (a body marshal.loads rejects is corrupt,
 * and needs no interpreter). The rest go to the interpreter worker pools of
 * `compile` (workers.c; the V request of worker_py.h), one pool per
 * interpreter (2.7: per level, as -O/-OO decide there), and each answer is
 * compared as it arrives. The header's freshness is reported beside the
 * result but does not decide it: a stale cache can hold the right code (a
 * touched source), a fresh one the wrong code (the cases above).
 *
 * An ARCHIVE operand is read by archive_read_caches (cache members and
 * their source members whole, nothing extracted); its sources go to the
 * workers as the B request (compile from bytes, as `compile ARCHIVE`),
 * whose answer is a whole pyc: its body is compared with the member's.
 *
 * Results: verified, mismatch (with the first differing field, e.g.
 * co_consts[3].co_code), corrupt (the header or body cannot be loaded),
 * unverifiable (no source, no interpreter of that magic here, the source
 * does not compile now, a marshal format not modelled). Exit 1 on mismatch
 * or corrupt, 3 when a file could not be read.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/treeopts.h"
#include "engine/archive.h"
#include "engine/convert.h"
#include "engine/pythons.h"
#include "engine/report.h"
#include "engine/scan.h"
#include "engine/workers.h"

enum {
    OPT_PYTHON = 256,
    OPT_CHECK_FILENAME,
};

static const cli_option options[] = {
    {OPT_CHECK_FILENAME, "check-filename", NULL,
     "also compare co_filename, against the source's path as given (what compileall "
     "and py_compile record without -d); by default it is ignored, as import "
     "replaces it"},
    {OPT_PYTHON, "python", "PATH|X.Y",
     "verify the caches of this interpreter's version with it alone, rather than with the "
     "ones installed (repeatable; X.Y: the first installed one of that version)"},
    {'j', "jobs", "N", "worker processes per interpreter (default and 0: the number of cores)"},
    TREE_OUTPUT_OPTIONS,
    TREE_FROM_FILE_OPTION,
    TREE_CHECK_HASH_OPTION,
    TREE_PREFIX_OPTION,
    TREE_WALK_OPTIONS,
    {0, NULL, NULL, NULL},
};

typedef enum outcome {
    OUT_PENDING = 0,
    OUT_VERIFIED,
    OUT_MISMATCH,
    OUT_CORRUPT,
    OUT_UNVERIFIABLE,
} outcome;

static const char *const outcome_names[] = {
    [OUT_PENDING] = "unverifiable", [OUT_VERIFIED] = "verified",
    [OUT_MISMATCH] = "mismatch",    [OUT_CORRUPT] = "corrupt",
    [OUT_UNVERIFIABLE] = "unverifiable",
};

#define MAX_PYTHONS 32
#define MAX_TRIES 2 /* a .pyo: -O, then -OO (its name does not say which) */

struct interp {
    uint32_t word;          /* the magic it writes */
    const char *path;
    char label[32];         /* "3.11" */
    bool major2;            /* 2.x: the level is the process's -O/-OO */
    bool given;             /* named with --python */
    worker_pool *pool[3];   /* 3.x: [0] for every level; 2.x: one per level */
};

struct try {
    int level;
    outcome result;
    char *code_path;        /* a mismatch's first differing field (malloc'd) */
    char *detail;           /* malloc'd, or NULL */
};

struct entry {
    char *path;             /* display path of the cache file */
    char *source;           /* display path of its source, or NULL */
    char *cache_name;       /* the verdict's cache_name points here */
    pyc_verdict v;
    size_t interp;
    size_t ntries;
    struct try tries[MAX_TRIES];
    outcome result;
    char *detail;           /* malloc'd, or NULL */
    char *code_path;        /* a mismatch's first differing field (malloc'd) */
    const pyc_magic *magic;
    bool submitted;         /* its tries are with the workers */
    unsigned ntried;        /* interpreters of its magic tried so far */
    char *first_path;       /* the first interpreter's mismatch, kept while */
    const char *first_by;   /* others of the same magic are tried */
    /* An archive's member (archive_read_caches): nothing is read again from
     * disk, the source is compiled from its bytes (the B job of worker_py.h,
     * as `compile ARCHIVE` does). */
    char *archive, *member;
    unsigned char *cache_bytes, *source_bytes;
    size_t cache_len, source_len;
    int source_error;
};

struct verify_cmd {
    unsigned compare_flags;
    bool verbose, color;
    int quiet;
    cli_format format;
    unsigned nworkers;
    struct interp py[MAX_PYTHONS];
    size_t npy;
    struct entry *v;
    size_t n, cap;
    int status;
    bool oom;
    const char *archive_path; /* the archive being read (on_archive_cache) */
    uint64_t count[OUT_UNVERIFIABLE + 1];
};

/* ---- interpreters ------------------------------------------------------------------ */

/* The Nth interpreter (0-based) that writes magic M: those given with
 * --python alone when one of them does, else the installed ones in
 * discovery order (engine/pythons.h). Interpreters are told apart by magic
 * only, and two patch releases of one version can compile differently
 * (Debian's 3.11.2 and 3.11.7 write other co_linetable column tables): a
 * mismatch is tried again with the next one. Adds it to C->py on first use.
 * -1 when there is none (WHY says so, for N == 0). */
static long interp_nth(struct verify_cmd *c, const pyc_magic *m, unsigned nth, char *why,
                       size_t cap)
{
    for (size_t i = 0; i < c->npy; i++)
        if (c->py[i].given && c->py[i].word == m->word)
            return nth == 0 ? (long)i : -1;
    if (nth == 0) {
        /* The first one of a magic is added to C->py before any other. */
        for (size_t i = 0; i < c->npy; i++)
            if (c->py[i].word == m->word)
                return (long)i;
    }
    const cli_python *list;
    size_t n = cli_python_list(&list);
    const cli_python *found = NULL, *same_version = NULL;
    unsigned seen = 0;
    struct stat files[MAX_PYTHONS];
    for (size_t i = 0; i < n && !found; i++) {
        if (!list[i].magic)
            continue;
        if (list[i].magic->word == m->word) {
            /* One file under two names (pyenv's python3.6 and python3.6m
             * are hard links) is one interpreter. */
            struct stat st;
            bool again = false;
            if (stat(list[i].path, &st) == 0) {
                for (unsigned k = 0; k < seen && k < MAX_PYTHONS; k++)
                    again |= files[k].st_dev == st.st_dev && files[k].st_ino == st.st_ino;
                if (!again && seen < MAX_PYTHONS)
                    files[seen] = st;
            }
            if (!again && seen++ == nth)
                found = &list[i];
        } else if (list[i].magic->implementation == m->implementation &&
                   list[i].magic->major == m->major && list[i].magic->minor == m->minor) {
            same_version = &list[i];
        }
    }
    char label[32];
    report_python_label(m, label, sizeof label);
    if (!found) {
        if (seen)
            snprintf(why, cap, "no other Python %s here", label);
        else if (same_version)
            snprintf(why, cap,
                     "magic %u is not what the Python %s here writes (%u): written by %s",
                     m->number, label, same_version->magic->number, m->release);
        else
            snprintf(why, cap, "no Python %s here (pycache versions --installed)", label);
        return -1;
    }
    for (size_t i = 0; i < c->npy; i++)
        if (!c->py[i].given && strcmp(c->py[i].path, found->path) == 0)
            return (long)i;
    if (c->npy == MAX_PYTHONS) {
        snprintf(why, cap, "too many interpreters in one run");
        return -1;
    }
    struct interp *ip = &c->py[c->npy];
    memset(ip, 0, sizeof *ip);
    ip->word = m->word;
    ip->path = found->path;
    ip->major2 = m->major < 3;
    snprintf(ip->label, sizeof ip->label, "%s", label);
    return (long)c->npy++;
}

/* --python PATH: asks the interpreter its magic (one worker, kept for the
 * run as its pool's first). 0, or a CLI_EXIT_* after saying why. */
static int add_given_python(struct verify_cmd *c, const char *path)
{
    /* X.Y: the installed interpreter of that version that comes first in
     * discovery order (as compile --python X.Y). */
    int major, minor, end = 0;
    if (sscanf(path, "%d.%d%n", &major, &minor, &end) == 2 && path[end] == '\0') {
        const cli_python *list;
        size_t n = cli_python_list(&list);
        const char *found = NULL;
        for (size_t i = 0; i < n && !found; i++)
            if (list[i].magic && list[i].magic->implementation == PYC_IMPL_CPYTHON &&
                list[i].magic->major == major && list[i].magic->minor == minor)
                found = list[i].path;
        if (!found)
            return cli_usage_error("verify", "--python %s: no Python %s installed here "
                                   "(pycache versions --installed)", path, path);
        path = found;
    }
    if (c->npy == MAX_PYTHONS)
        return cli_usage_error("verify", "--python: at most %d interpreters", MAX_PYTHONS);
    worker_pool *pool = worker_pool_new(path, NULL, c->nworkers, path, 0);
    if (!pool) {
        cli_error("out of memory");
        return CLI_EXIT_IO;
    }
    worker_hello h;
    if (worker_pool_probe(pool, &h) != 0) {
        worker_pool_free(pool);
        return CLI_EXIT_USAGE;
    }
    const pyc_magic *m = pyc_magic_lookup(h.magic_word);
    if (!m) {
        worker_pool_free(pool);
        cli_error("'%s' writes magic word 0x%08x, unknown to pycache", path,
                  (unsigned)h.magic_word);
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < c->npy; i++) {
        if (c->py[i].word == m->word) {
            worker_pool_free(pool);
            return CLI_EXIT_OK; /* the first one given wins */
        }
    }
    struct interp *ip = &c->py[c->npy++];
    memset(ip, 0, sizeof *ip);
    ip->word = m->word;
    ip->path = path;
    ip->major2 = m->major < 3;
    report_python_label(m, ip->label, sizeof ip->label);
    ip->pool[0] = pool;
    ip->given = true;
    return CLI_EXIT_OK;
}

/* ---- the walk: what can be verified ----------------------------------------------------- */

static char *dup_or_oom(struct verify_cmd *c, const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        c->oom = true;
    return d;
}

static void set_detail(struct verify_cmd *c, char **slot, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_detail(struct verify_cmd *c, char **slot, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(*slot);
    *slot = dup_or_oom(c, buf);
}

static struct entry *new_entry(struct verify_cmd *c, const scan_item *it)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        struct entry *v = realloc(c->v, cap * sizeof *v);
        if (!v) {
            c->oom = true;
            return NULL;
        }
        c->v = v;
        c->cap = cap;
    }
    struct entry *e = &c->v[c->n];
    memset(e, 0, sizeof *e);
    e->path = dup_or_oom(c, it->path);
    e->source = dup_or_oom(c, it->source_path);
    e->cache_name = dup_or_oom(c, it->verdict->cache_name ? it->verdict->cache_name : it->name);
    if (c->oom) {
        free(e->path);
        free(e->source);
        free(e->cache_name);
        return NULL;
    }
    e->v = *it->verdict;
    e->v.cache_name = e->cache_name;
    e->interp = (size_t)-1;
    c->n++;
    return e;
}

/* Settles E without an interpreter when its file says enough (corrupt,
 * no source, ...), else chooses the interpreter and the levels to try. */
static void plan(struct verify_cmd *c, struct entry *e, const unsigned char *buf, size_t len)
{
    pyc_header h;
    pyc_header_status hs = pyc_header_parse(buf, len, &h);
    if (hs == PYC_HEADER_UNKNOWN_MAGIC) {
        e->result = OUT_UNVERIFIABLE;
        set_detail(c, &e->detail, "magic %u: no interpreter pycache knows writes it",
                   (unsigned)(h.magic_word & 0xFFFF));
        return;
    }
    if (hs != PYC_HEADER_OK) {
        e->result = OUT_CORRUPT;
        set_detail(c, &e->detail, "%s", pyc_header_status_message(hs));
        return;
    }
    size_t offset = 0;
    pyc_marshal_status ms = pyc_marshal_validate(h.magic, buf + h.length, len - h.length,
                                                 &offset);
    if (ms == PYC_MARSHAL_UNCHECKED) {
        e->result = OUT_UNVERIFIABLE;
        char label[32];
        report_python_label(h.magic, label, sizeof label);
        set_detail(c, &e->detail, "the marshal format of %s is not modelled", label);
        return;
    }
    if (ms != PYC_MARSHAL_OK) {
        e->result = OUT_CORRUPT;
        set_detail(c, &e->detail, "%s (body offset %zu)", pyc_marshal_status_message(ms),
                   offset);
        return;
    }
    if (!e->source || !e->v.source_exists) {
        e->result = OUT_UNVERIFIABLE;
        set_detail(c, &e->detail, "no source");
        return;
    }
    if (e->archive && !e->source_bytes) {
        e->result = OUT_UNVERIFIABLE;
        set_detail(c, &e->detail, "the source member cannot be read: %s",
                   strerror(e->source_error ? e->source_error : EIO));
        return;
    }
    /* The interpreter opens the source blocking: a FIFO or a device planted
     * as NAME.py must not hang its worker (the verdict stat'ed it through
     * symlinks, as the finder does, but keeps no file type). */
    struct stat st;
    if (!e->archive && (stat(e->source, &st) != 0 || !S_ISREG(st.st_mode))) {
        e->result = OUT_UNVERIFIABLE;
        set_detail(c, &e->detail, "the source is not a regular file");
        return;
    }
    /* The level: the name's opt-N (PEP 488), or for a .pyo -O or -OO, which
     * its name does not tell apart: both are tried. */
    int opt = e->v.name.opt;
    if (opt == -1) {
        e->ntries = 2;
        e->tries[0].level = 1;
        e->tries[1].level = 2;
    } else if (opt >= 0 && opt <= 2) {
        e->ntries = 1;
        e->tries[0].level = opt;
    } else {
        /* compile() accepts optimize -1..2 only (builtin_compile_impl). */
        e->result = OUT_UNVERIFIABLE;
        set_detail(c, &e->detail, "no interpreter compiles at this optimization level");
        return;
    }
    char why[256];
    long ip = interp_nth(c, h.magic, 0, why, sizeof why);
    if (ip < 0) {
        e->result = OUT_UNVERIFIABLE;
        set_detail(c, &e->detail, "%s", why);
        return;
    }
    e->interp = (size_t)ip;
    e->magic = h.magic;
}

static int on_item(const scan_item *it, void *ctx)
{
    struct verify_cmd *c = ctx;
    if (it->event == SCAN_ERROR) {
        report_error_detail(it->error_op ? it->error_op : "read", it->path, it->error,
                            it->error_detail);
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
        return cli_stdout_failed() ? 1 : 0;
    }
    if (it->event != SCAN_CACHE || it->verdict->name.kind == PYC_KIND_TEMP)
        return 0;
    unsigned char *buf = NULL;
    size_t len = 0;
    struct stat st;
    const char *op = NULL;
    if (read_whole_file(it->dirfd, it->name, false, &buf, &len, &st, &op) != 0) {
        report_error(op ? op : "read", it->path, errno);
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
        return cli_stdout_failed() ? 1 : 0;
    }
    struct entry *e = new_entry(c, it);
    if (e)
        plan(c, e, buf, len);
    free(buf);
    return c->oom || cli_stdout_failed() ? 1 : 0;
}

/* An archive's cache member: an entry holding its bytes and its source's. */
static int on_archive_cache(const archive_cache *ac, void *ctx)
{
    struct verify_cmd *c = ctx;
    if (!ac->verdict)
        return 0;
    scan_item it = {.event = SCAN_CACHE, .path = ac->shown, .path_len = strlen(ac->shown),
                    .name = ac->member, .source_path = ac->source_shown,
                    .verdict = ac->verdict};
    struct entry *e = new_entry(c, &it);
    if (!e)
        return 1;
    e->archive = dup_or_oom(c, c->archive_path);
    e->member = dup_or_oom(c, ac->member);
    e->cache_bytes = malloc(ac->len ? ac->len : 1);
    if (!e->cache_bytes)
        c->oom = true;
    else
        memcpy(e->cache_bytes, ac->data, ac->len);
    e->cache_len = ac->len;
    if (ac->source) {
        e->source_bytes = malloc(ac->source_len ? ac->source_len : 1);
        if (!e->source_bytes)
            c->oom = true;
        else
            memcpy(e->source_bytes, ac->source, ac->source_len);
        e->source_len = ac->source_len;
    }
    e->source_error = ac->source_error;
    if (c->oom)
        return 1;
    plan(c, e, ac->data, ac->len);
    return c->oom || cli_stdout_failed() ? 1 : 0;
}

static int on_archive_error(const archive_item *it, void *ctx)
{
    struct verify_cmd *c = ctx;
    if (it->event == ARCHIVE_ERROR) {
        report_error_detail(it->error_op, it->path, it->error, it->error_detail);
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
    }
    return 0;
}

/* ---- the interpreters' answers ---------------------------------------------------------- */

static bool field_is(const worker_field *f, const char *s)
{
    return f->len == strlen(s) && memcmp(f->data, s, f->len) == 0;
}

/* Compares the cache file of E (read again: the walk kept nothing) with
 * the interpreter's marshal.dumps DATA, into T. */
static void compare(struct verify_cmd *c, struct entry *e, struct try *t,
                    const unsigned char *data, size_t len)
{
    unsigned char *buf = NULL;
    size_t blen = 0;
    struct stat st;
    const char *op = NULL;
    pyc_marshal_tree *cache = NULL, *fresh = NULL;
    if (e->archive) {
        /* The member's bytes as read; the answer is a whole pyc (the B job
         * writes py_compile's header): its body is what is compared. */
        pyc_header fh;
        if (pyc_header_parse(data, len, &fh) != PYC_HEADER_OK) {
            t->result = OUT_UNVERIFIABLE;
            set_detail(c, &t->detail, "cannot read the interpreter's answer");
            return;
        }
        data += fh.length;
        len -= fh.length;
        buf = malloc(e->cache_len ? e->cache_len : 1);
        if (!buf) {
            c->oom = true;
            return;
        }
        memcpy(buf, e->cache_bytes, e->cache_len);
        blen = e->cache_len;
    } else if (read_whole_file(AT_FDCWD, e->path, false, &buf, &blen, &st, &op) != 0) {
        int err = errno;
        cli_error_path(op ? op : "read", e->path, err);
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
        t->result = OUT_UNVERIFIABLE;
        set_detail(c, &t->detail, "cannot read it again: %s", strerror(err));
        return;
    }
    pyc_header h;
    pyc_marshal_status ms = PYC_MARSHAL_OK;
    size_t offset = 0;
    if (pyc_header_parse(buf, blen, &h) != PYC_HEADER_OK || !h.magic ||
        h.magic->word != c->py[e->interp].word) {
        t->result = OUT_CORRUPT;
        set_detail(c, &t->detail, "the header changed during the run");
        goto out;
    }
    cache = pyc_marshal_parse(h.magic, buf + h.length, blen - h.length, &ms, &offset);
    if (!cache) {
        if (errno == ENOMEM) {
            c->oom = true;
            goto out;
        }
        t->result = OUT_CORRUPT;
        set_detail(c, &t->detail, "%s (body offset %zu)", pyc_marshal_status_message(ms),
                   offset);
        goto out;
    }
    fresh = pyc_marshal_parse(h.magic, data, len, &ms, &offset);
    if (!fresh) {
        /* The interpreter's own marshal.dumps, which the model reads for
         * every stdlib module of every version: only memory can fail. */
        if (errno == ENOMEM)
            c->oom = true;
        t->result = OUT_UNVERIFIABLE;
        set_detail(c, &t->detail, "cannot read the interpreter's answer: %s",
                   pyc_marshal_status_message(ms));
        goto out;
    }
    char where[512];
    int r = pyc_marshal_compare(cache, fresh, c->compare_flags, where, sizeof where);
    if (r < 0) {
        if (errno == ENOMEM)
            c->oom = true;
        t->result = OUT_UNVERIFIABLE;
        set_detail(c, &t->detail, "cannot compare: %s", strerror(errno));
    } else {
        t->result = r == 0 ? OUT_VERIFIED : OUT_MISMATCH;
        if (r == 1)
            t->code_path = dup_or_oom(c, where);
    }
out:
    pyc_marshal_tree_free(cache);
    pyc_marshal_tree_free(fresh);
    free(buf);
}

static void on_done(void *ctx, size_t id, const worker_field *f, size_t n)
{
    struct verify_cmd *c = ctx;
    struct entry *e = &c->v[id / MAX_TRIES];
    struct try *t = &e->tries[id % MAX_TRIES];
    if (n < 5) {
        t->result = OUT_UNVERIFIABLE;
        set_detail(c, &t->detail, "the interpreter's answer is malformed");
        return;
    }
    if (field_is(&f[0], "ok")) {
        compare(c, e, t, (const unsigned char *)f[4].data, f[4].len);
        return;
    }
    /* The source cannot be read or compiled now: nothing to compare. */
    bool oserror = field_is(&f[0], "oserror");
    t->result = OUT_UNVERIFIABLE;
    if (f[3].len)
        set_detail(c, &t->detail, "the source does not compile now: %.*s: %.*s (line %.*s)",
                   (int)f[1].len, f[1].data, (int)f[2].len, f[2].data, (int)f[3].len,
                   f[3].data);
    else
        set_detail(c, &t->detail, "%s: %.*s: %.*s",
                   oserror ? "cannot read the source" : "the source does not compile now",
                   (int)f[1].len, f[1].data, (int)f[2].len, f[2].data);
    if (oserror) {
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
        if (c->quiet < 2) {
            cli_message_prefix();
            fputs("cannot read '", stderr);
            cli_print_path(stderr, e->source);
            fprintf(stderr, "': %.*s\n", (int)f[2].len, f[2].data);
        }
    }
}

static void on_lost(void *ctx, size_t id, const char *why)
{
    struct verify_cmd *c = ctx;
    struct entry *e = &c->v[id / MAX_TRIES];
    struct try *t = &e->tries[id % MAX_TRIES];
    t->result = OUT_UNVERIFIABLE;
    set_detail(c, &t->detail, "%s", why);
}

static unsigned default_jobs(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* Sends every planned entry to its interpreter and waits for the answers. */
static int run_jobs(struct verify_cmd *c)
{
    worker_pool *pools[MAX_PYTHONS * 3];
    size_t npools = 0;
    for (size_t i = 0; i < c->n; i++) {
        struct entry *e = &c->v[i];
        if (e->result != OUT_PENDING || e->submitted)
            continue;
        e->submitted = true;
        struct interp *ip = &c->py[e->interp];
        for (size_t k = 0; k < e->ntries; k++) {
            int level = e->tries[k].level;
            size_t pi = ip->major2 ? (size_t)level : 0;
            if (!ip->pool[pi]) {
                const char *flags[2] = {NULL, NULL};
                if (ip->major2 && level > 0)
                    flags[0] = level == 1 ? "-O" : "-OO";
                ip->pool[pi] = worker_pool_new(ip->path, flags, c->nworkers, ip->label,
                                               ip->word);
                if (!ip->pool[pi])
                    return -1;
            }
            worker_msg m;
            worker_msg_init(&m);
            if (e->archive) {
                /* B id source dfile mode mtime size zipimport level: the
                 * source member compiled from its bytes; the header's
                 * fields do not matter (the body is compared). */
                worker_msg_add_str(&m, "B");
                worker_msg_add_int(&m, (long)(i * MAX_TRIES + k));
                worker_msg_add(&m, e->source_bytes, e->source_len);
                worker_msg_add_str(&m, e->source);
                worker_msg_add_str(&m, "");
                worker_msg_add_int(&m, 0);
                worker_msg_add_int(&m, 0);
                worker_msg_add_str(&m, "0");
                worker_msg_add_int(&m, level);
                if (worker_pool_submit(ip->pool[pi], i * MAX_TRIES + k, e->source, &m) != 0)
                    return -1;
                continue;
            }
            worker_msg_add_str(&m, "V");
            worker_msg_add_int(&m, (long)(i * MAX_TRIES + k));
            worker_msg_add_str(&m, e->source);
            /* The name recorded in co_filename: the source's path as given,
             * as py_compile and compileall record it without -d. */
            worker_msg_add_str(&m, e->source);
            worker_msg_add_int(&m, level);
            if (worker_pool_submit(ip->pool[pi], i * MAX_TRIES + k, e->source, &m) != 0)
                return -1;
        }
    }
    for (size_t i = 0; i < c->npy; i++)
        for (size_t pi = 0; pi < 3; pi++)
            if (c->py[i].pool[pi])
                pools[npools++] = c->py[i].pool[pi];
    if (!npools)
        return 0;
    worker_callbacks cb = {.done = on_done, .lost = on_lost, .ctx = c};
    if (workers_run(pools, npools, &cb) != 0) {
        cli_error("cannot wait for the workers: %s", strerror(errno));
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
    }
    return 0;
}

/* The tries of E, into its result: verified if one level gives its code
 * (a .pyo: -O or -OO), else the first try's finding. */
static void settle_tries(struct verify_cmd *c, struct entry *e)
{
    struct try *pick = &e->tries[0];
    for (size_t k = e->ntries; k-- > 0;)
        if (e->tries[k].result == OUT_VERIFIED)
            pick = &e->tries[k]; /* the first level that verifies */
    e->result = pick->result == OUT_PENDING ? OUT_UNVERIFIABLE : pick->result;
    free(e->code_path);
    e->code_path = pick->code_path;
    pick->code_path = NULL;
    free(e->detail);
    e->detail = NULL;
    if (pick->detail) {
        e->detail = pick->detail;
        pick->detail = NULL;
    } else if (pick->result == OUT_PENDING) {
        set_detail(c, &e->detail, "no answer from the interpreter");
    } else if (e->ntries > 1 && pick->result == OUT_VERIFIED) {
        set_detail(c, &e->detail, "compiled with -%s", pick->level == 1 ? "O" : "OO");
    } else if (e->ntries > 1 && pick->result == OUT_MISMATCH) {
        set_detail(c, &e->detail, "with -O (with -OO: at %s)",
                   e->tries[1].code_path && *e->tries[1].code_path ? e->tries[1].code_path
                                                                   : "the top object");
    }
    for (size_t k = 0; k < e->ntries; k++) {
        free(e->tries[k].detail);
        free(e->tries[k].code_path);
        e->tries[k].detail = e->tries[k].code_path = NULL;
        e->tries[k].result = OUT_PENDING;
    }
}

/* Settles E after a round of answers. A mismatch is tried again with the
 * next installed interpreter of the same magic (another patch release, see
 * interp_nth): returns true when E was queued again. */
static bool settle(struct verify_cmd *c, struct entry *e)
{
    settle_tries(c, e);
    e->ntried++;
    e->submitted = false;
    if (e->result == OUT_VERIFIED && e->first_path) {
        char *first = e->first_path;
        e->first_path = NULL;
        set_detail(c, &e->detail, "as %s compiles it (%s differs at %s)",
                   c->py[e->interp].path, e->first_by, *first ? first : "the top object");
        free(first);
        return false;
    }
    if (e->first_path && e->result != OUT_MISMATCH) {
        /* The other interpreter could not say: the first one's finding. */
        e->result = OUT_MISMATCH;
        free(e->detail);
        e->detail = NULL;
    }
    if (e->result != OUT_MISMATCH)
        return false;
    char why[256];
    long ip = interp_nth(c, e->magic, e->ntried, why, sizeof why);
    if (ip >= 0) {
        if (!e->first_path) {
            e->first_path = e->code_path ? e->code_path : dup_or_oom(c, "");
            e->first_by = c->py[e->interp].path;
            e->code_path = NULL;
        }
        e->interp = (size_t)ip;
        e->result = OUT_PENDING;
        return !c->oom;
    }
    if (e->first_path) {
        free(e->code_path);
        e->code_path = e->first_path;
        e->first_path = NULL;
        set_detail(c, &e->detail, "as %s compiles it; %u other interpreter%s of magic %u "
                   "here: no match either", e->first_by, e->ntried - 1,
                   e->ntried == 2 ? "" : "s", (unsigned)e->magic->number);
    }
    return false;
}

/* ---- output ----------------------------------------------------------------------------- */

static bool listed(const struct verify_cmd *c, outcome r)
{
    return c->verbose || r != OUT_VERIFIED;
}

/* "; header: stale (mtime)" when the header would not be trusted. */
static void header_note(const pyc_verdict *v, char *buf, size_t cap)
{
    buf[0] = 0;
    if (v->status == PYC_FRESH)
        return;
    const char *reason = pyc_reason_name(v->reason);
    if (*reason)
        snprintf(buf, cap, "header: %s (%s)", pyc_status_name(v->status), reason);
    else
        snprintf(buf, cap, "header: %s", pyc_status_name(v->status));
}

static void report(struct verify_cmd *c, const struct entry *e)
{
    if (c->quiet || !listed(c, e->result))
        return;
    const char *word = outcome_names[e->result];
    bool has_path = e->result == OUT_MISMATCH && e->code_path;
    const char *code_path = has_path ? (*e->code_path ? e->code_path : "the top object") : NULL;
    FILE *f = cli_listing();
    switch (c->format) {
    case CLI_FORMAT_JSON: {
        cli_json j;
        report_json_verdict_begin(&j, e->path, e->source, &e->v, NULL);
        cli_json_str(&j, "verify", word);
        cli_json_str(&j, "code_path", has_path ? e->code_path : NULL);
        cli_json_str(&j, "detail", e->detail);
        if (e->archive) {
            cli_json_str(&j, "archive", e->archive);
            cli_json_str(&j, "member", e->member);
        }
        report_json_verdict_end(&j, e->path);
        break;
    }
    case CLI_FORMAT_NUL:
        /* The files to act on (xargs -0 rm): those whose body is wrong. */
        if (e->result != OUT_MISMATCH && e->result != OUT_CORRUPT)
            break;
        fputs(e->path, f);
        fputc('\0', f);
        cli_listing_end(e->path, strlen(e->path));
        break;
    case CLI_FORMAT_GITHUB: {
        if (e->result == OUT_VERIFIED)
            break;
        char msg[768];
        snprintf(msg, sizeof msg, "%s%s%s", code_path ? "first difference at " : "",
                 code_path ? code_path : "", e->detail ? e->detail : "");
        if (code_path && e->detail)
            snprintf(msg, sizeof msg, "first difference at %s; %s", code_path, e->detail);
        bool bad = e->result == OUT_MISMATCH || e->result == OUT_CORRUPT;
        report_github(e->path, bad,
                      e->result == OUT_MISMATCH  ? "pycache: bytecode does not match its source"
                      : e->result == OUT_CORRUPT ? "pycache: bytecode cannot be loaded"
                                                 : "pycache: bytecode not verified",
                      msg);
        break;
    }
    case CLI_FORMAT_HUMAN: {
        const char *sgr = e->result == OUT_VERIFIED     ? cli_status_sgr(PYC_FRESH)
                          : e->result == OUT_UNVERIFIABLE ? CLI_SGR_DIM
                                                          : cli_status_sgr(PYC_CORRUPT);
        fprintf(f, "%s%-12s%s ", c->color && sgr ? sgr : "", word,
                c->color && sgr ? CLI_SGR_RESET : "");
        cli_print_path(f, e->path);
        const char *sep = "  ";
        if (code_path) {
            fprintf(f, "%sat %s", sep, code_path);
            sep = "; ";
        }
        if (e->detail) {
            fprintf(f, "%s%s", sep, e->detail);
            sep = "; ";
        }
        char note[96];
        header_note(&e->v, note, sizeof note);
        if (*note)
            fprintf(f, "%s%s", sep, note);
        fputc('\n', f);
        cli_listing_end(e->path, strlen(e->path));
        break;
    }
    }
}

static void free_entries(struct verify_cmd *c)
{
    for (size_t i = 0; i < c->n; i++) {
        struct entry *e = &c->v[i];
        free(e->path);
        free(e->source);
        free(e->cache_name);
        free(e->detail);
        free(e->code_path);
        free(e->first_path);
        free(e->archive);
        free(e->member);
        free(e->cache_bytes);
        free(e->source_bytes);
        for (size_t k = 0; k < MAX_TRIES; k++) {
            free(e->tries[k].detail);
            free(e->tries[k].code_path);
        }
    }
    free(c->v);
}

int cmd_verify(int argc, char **argv)
{
    cli_parser p = {
        .command = "verify",
        .usage = "[OPTION]... [PATH|ARCHIVE]...",
        .description =
            "Recompile the source of every cache file under each PATH (default: the "
            "current directory) with that cache's own interpreter, at its optimization "
            "level, in memory (nothing is written), and compare the code objects with "
            "the cache's: was this bytecode built from this source? A header can be "
            "fresh over a body that is not (a body swapped for another module's, a "
            "same-second same-size edit: a racy cache), or stale over the right one; "
            "verify judges the body, and reports the header beside it. Differences in "
            "the marshal encoding alone (ref flags, interning, set order) and in "
            "co_filename (import replaces it; --check-filename compares it) do not "
            "count. Results: verified, mismatch (with the first differing field, "
            "co_consts[3].co_code), corrupt (the header or body cannot be loaded), "
            "unverifiable (no source, no interpreter of that magic here, a source that "
            "does not compile now, a marshal format not modelled). An ARCHIVE (zip, "
            "wheel, zipapp, tar in any compression) is read member by member, nothing "
            "extracted: each cache member's source member is compiled from its bytes.",
        .options = options,
        .epilog = "Exit 0 when nothing mismatched, 1 when some cache file holds other code than\n"
                  "its source compiles to or cannot be loaded, 3 when some file could not be\n"
                  "read. Unverifiable files are listed but do not change the exit status.\n"
                  "--json fields: the verdict's (status is the header's verdict), then\n"
                  "verify (verified, mismatch, corrupt, unverifiable), code_path, detail.\n" CLI_PYTHONS_RULE_HELP
                  "Examples:\n"
                  "  pycache verify .                    recompile and compare every cache\n"
                  "  pycache verify app.whl              the bytecode a wheel ships\n"
                  "  pycache verify --json site-packages | jq 'select(.verify == \"mismatch\")'\n",
    };
    tree_options t;
    tree_options_init(&t);
    struct verify_cmd c;
    memset(&c, 0, sizeof c);
    const char *given[MAX_PYTHONS];
    size_t ngiven = 0;
    long jobs = 0;
    bool check_filename = false;
    int rc = CLI_EXIT_OK;

    cli_parser_init(&p, argc, argv);
    int id, exit_status;
    while ((id = tree_next_option(&p, &t, &exit_status)) > 0) {
        switch (id) {
        case OPT_CHECK_FILENAME:
            check_filename = true;
            break;
        case OPT_PYTHON:
            if (ngiven == MAX_PYTHONS) {
                tree_options_free(&t);
                return cli_usage_error(p.command, "--python: at most %d interpreters",
                                       MAX_PYTHONS);
            }
            given[ngiven++] = p.optarg;
            break;
        case 'j':
            if (cli_parse_int(&p, p.optarg, 0, 1024, &jobs) != 0) {
                tree_options_free(&t);
                return CLI_EXIT_USAGE;
            }
            break;
        }
    }
    if (id < 0) {
        tree_options_free(&t);
        return exit_status;
    }
    if (!check_filename)
        c.compare_flags |= PYC_COMPARE_IGNORE_FILENAME;
    if ((exit_status = tree_operands(&p, &t)) != 0) {
        tree_options_free(&t);
        return exit_status;
    }
    c.nworkers = jobs > 0 ? (unsigned)jobs : default_jobs();
    c.format = t.out.format;
    c.verbose = t.out.verbose;
    c.quiet = t.out.quiet;
    c.color = tree_color(&t);
    for (size_t i = 0; i < ngiven; i++) {
        if ((rc = add_given_python(&c, given[i])) != CLI_EXIT_OK)
            goto out;
    }

    scan_options sopt = t.scan;
    sopt.progress = !c.quiet && isatty(STDERR_FILENO);
    /* Archives (by content) are read member by member; the other PATHs are
     * walked. */
    char **trees = t.npaths ? calloc(t.npaths, sizeof *trees) : NULL;
    size_t ntrees = 0;
    if (t.npaths && !trees) {
        cli_error("out of memory");
        rc = CLI_EXIT_IO;
        goto out;
    }
    for (size_t i = 0; i < t.npaths && !c.oom; i++) {
        struct stat ast;
        if (stat(t.paths[i], &ast) == 0 && (S_ISREG(ast.st_mode) || S_ISDIR(ast.st_mode)) &&
            archive_sniff(t.paths[i]) == 1) { /* an archive, image or layout directory */
            c.archive_path = t.paths[i];
            if (archive_read_caches(t.paths[i], &t.archive, &sopt.verdict, true,
                                    on_archive_cache, on_archive_error, &c) < 0)
                c.status = cli_exit_merge(c.status, CLI_EXIT_IO);
        } else {
            trees[ntrees++] = t.paths[i];
        }
    }
    /* No PATH at all: scan_run's default (the current directory). */
    int scanned = c.oom                          ? -1
                  : !t.npaths                    ? scan_run(t.paths, 0, &sopt, on_item, &c)
                  : ntrees                       ? scan_run(trees, ntrees, &sopt, on_item, &c)
                                                 : 0;
    free(trees);
    if (scanned < 0 || c.oom) {
        cli_error("cannot scan: %s", strerror(c.oom ? ENOMEM : errno));
        rc = CLI_EXIT_IO;
        goto out;
    }
    for (;;) {
        if (run_jobs(&c) != 0 || c.oom) {
            cli_error("out of memory");
            rc = CLI_EXIT_IO;
            goto out;
        }
        bool again = false;
        for (size_t i = 0; i < c.n; i++) {
            struct entry *e = &c.v[i];
            if (e->result == OUT_PENDING && e->submitted)
                again |= settle(&c, e);
        }
        if (!again)
            break;
    }
    for (size_t i = 0; i < c.n; i++) {
        struct entry *e = &c.v[i];
        c.count[e->result]++;
        if (e->result == OUT_MISMATCH || e->result == OUT_CORRUPT)
            c.status = cli_exit_merge(c.status, CLI_EXIT_FINDINGS);
        report(&c, e);
        if (cli_stdout_failed())
            break;
    }
    c.status = cli_exit_merge(c.status, cli_listing_finish());
    if (c.format == CLI_FORMAT_HUMAN && !c.quiet) {
        printf("%llu verified, %llu mismatch, %llu corrupt, %llu unverifiable\n",
               (unsigned long long)c.count[OUT_VERIFIED],
               (unsigned long long)c.count[OUT_MISMATCH],
               (unsigned long long)c.count[OUT_CORRUPT],
               (unsigned long long)c.count[OUT_UNVERIFIABLE]);
    }
    rc = c.status;
out:
    for (size_t i = 0; i < c.npy; i++)
        for (size_t pi = 0; pi < 3; pi++)
            worker_pool_free(c.py[i].pool[pi]);
    free_entries(&c);
    tree_options_free(&t);
    return rc;
}
