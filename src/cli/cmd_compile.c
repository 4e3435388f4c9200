/*
 * cmd_compile.c — `pycache compile`: byte-compile what is not fresh, with
 * the real interpreters.
 *
 * The scan engine (scan.c) walks the trees and delivers each source NAME.py;
 * for each interpreter and optimization level asked for, the cache that
 * interpreter would read for it (pyc_cache_from_source: __pycache__, legacy
 * NAME.pyc with --legacy or on 2.x, or a --prefix tree) is judged with
 * pyc_verdict_judge by CPython's own rules — mtime *and* size for a
 * timestamp pyc, the source hash for a hash-based one (always compared:
 * --check-hash-based-pycs always) — and only what is missing or not fresh is
 * sent to that interpreter's worker pool (workers.c), which compiles it with
 * py_compile. A fresh cache in the wrong invalidation mode is rewritten
 * header-only (convert_pyc). So a second run on a compiled tree starts no
 * interpreter at all, and compileall's known misses do not happen here:
 * it ignores the size, recompiles fresh hash-based pycs every run (CPython
 * #121577) and keeps fresh timestamp pycs when asked for checked-hash
 * (#117204).
 *
 * compileall's options are mirrored where a user would miss them (-l, -r,
 * -f, -q/-qq, -b, -d, -s/-p as --strip/--prepend, -x, -i, --hardlink-dupes,
 * --invalidation-mode, -o, -j); the file name recorded in the code objects
 * (dfile) follows compileall.compile_dir/compile_file of 3.9+ exactly.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/archive.h"
#include "engine/convert.h"
#include "engine/headread.h"
#include "engine/prefetch.h"
#include "engine/pythons.h"
#include "engine/report.h"
#include "cli/treeopts.h"
#include "engine/scan.h"
#include "engine/workers.h"

enum {
    OPT_PYTHON = 256,
    OPT_MODE,
    OPT_STRIP,
    OPT_PREPEND,
    OPT_HARDLINK,
    OPT_DETERMINISTIC,
    OPT_DEEP,
};

static const cli_option options[] = {
    {OPT_PYTHON, "python", "PATH|X.Y",
     "compile for this interpreter: a path, a command, or a version installed here "
     "(repeatable; default: python3 on PATH)"},
    {'o', "optimize", "LEVELS",
     "optimization levels, comma-separated or repeated: 0, 1, 2 (default 0; on 2.7 "
     "1 and 2 write NAME.pyo with -O / -OO)"},
    {OPT_MODE, "invalidation-mode", "MODE",
     "timestamp, checked-hash or unchecked-hash (3.7+; default as py_compile: "
     "checked-hash when SOURCE_DATE_EPOCH is set, else timestamp)"},
    {'f', "force", NULL, "compile every source, fresh or not"},
    {'n', "dry-run", NULL,
     "list what would be compiled or rewritten and start nothing; exit status 1 when "
     "there is work"},
    {OPT_DEEP, "deep", NULL,
     "also unmarshal the body of each cache whose header is fresh (as check --deep): "
     "a damaged one is compiled again"},
    {'j', "jobs", "N", "worker processes per interpreter (default and 0: the number of cores)"},
    {'x', "exclude", "REGEX",
     "skip sources whose path matches this POSIX extended regex (searched, as "
     "compileall -x)"},
    {'i', "from-file", "FILE",
     "also compile the files and directories listed in FILE, one per line ('-': "
     "standard input), or NUL-separated with -0; directories are recursed, as "
     "compileall -i does (repeatable)"},
    {'l', "no-recurse", NULL, "do not recurse into subdirectories (compileall -l)"},
    {'r', "maxlevels", "N", "recurse at most N directory levels (compileall -r)"},
    {'d', "ddir", "DIR",
     "record DIR in place of each PATH in the code objects' file names "
     "(tracebacks; compileall -d)"},
    {OPT_STRIP, "strip", "PREFIX",
     "remove PREFIX's components from the recorded file names (compileall -s)"},
    {OPT_PREPEND, "prepend", "PREFIX",
     "prepend PREFIX to the recorded file names, after --strip (compileall -p)"},
    {'b', "legacy", NULL,
     "write NAME.pyc beside each source, for sourceless deployment (compileall -b)"},
    {TREE_OPT_PREFIX, "prefix", "DIR",
     "write 3.8+ caches into the prefix tree at DIR (default: $PYTHONPYCACHEPREFIX)"},
    TREE_NO_PREFIX_OPTION,
    {OPT_HARDLINK, "hardlink-dupes", NULL,
     "hard-link a level's pyc to the previous level's when identical (compileall "
     "--hardlink-dupes)"},
    {OPT_DETERMINISTIC, "deterministic", NULL,
     "write each cache in the canonical marshal form of `pycache normalize`: the same "
     "bytes whatever the order, -j, worker reuse or hash seed"},
    TREE_ARCHIVE_OUTPUT_LONG_OPTIONS,
    TREE_ARCHIVE_OPTIONS,
    TREE_JSON_OPTION,
    TREE_NULL_OPTION,
    TREE_FORMAT_OPTION,
    {'v', "verbose", NULL, "one line per cache file, and how many interpreters were started"},
    {'q', "quiet", NULL, "no summary; -qq: no error messages either (the exit status tells)"},
    TREE_COLOR_OPTION,
    TREE_WALK_OPTIONS,
    {0, NULL, NULL, NULL},
};

/* ---- the run's state -------------------------------------------------------------- */

#define MAX_PYTHONS 16
#define MAX_LEVELS 3

struct interp {
    const char *path;       /* what is run */
    const pyc_magic *magic; /* NULL until probed */
    char label[32];         /* "3.11" */
    bool has_mode;          /* 3.7+: an invalidation mode to ask for */
    const char *prefix;     /* the cache prefix it writes into: the one in
                               force for 3.8+, NULL for 2.7-3.7 and -b */
    pyc_mode mode;
    worker_pool *pool[MAX_LEVELS]; /* 3.x: [0] for every level; 2.x: one per
                                      level (-O/-OO decide what py_compile does) */
};

/* Counters per interpreter and level. */
struct tally {
    unsigned long compiled, linked, fresh, rewritten, errors;
};

struct level_job {
    int level;
    char *cfile;     /* display path of the cache file */
    bool todo;       /* send it; else only there for --hardlink-dupes */
    const char *reason;
};

struct job {
    char *source;    /* display path */
    char *dfile;     /* the name recorded in the code objects, or NULL */
    size_t interp;
    size_t nlevels;
    struct level_job lv[MAX_LEVELS];
};

struct compile {
    /* options */
    struct interp py[MAX_PYTHONS];
    size_t npy;
    int levels[MAX_LEVELS];
    size_t nlevels;
    bool force, dry_run, verbose, legacy, hardlink, deterministic;
    int quiet;
    cli_format format;
    long maxlevels; /* -1: unlimited */
    unsigned nworkers; /* -j: workers per interpreter */
    bool have_rx;
    regex_t rx;
    const char *ddir, *strip, *prepend, *prefix;
    pyc_verdict_options vopt;

    bool pycache_ignored; /* --ignore __pycache__ */

    /* the current root */
    const char *root;

    struct job *jobs;
    size_t njobs, jobs_cap;
    struct tally tally[MAX_PYTHONS][MAX_LEVELS];
    unsigned long mode_changes[3][3]; /* [old][new] pyc_mode: caches written
                                         in another invalidation mode */
    size_t done, total;
    int status;
    bool progress, progress_shown;
    struct timespec last_progress;

    archive_compile_job *archive_jobs; /* compile ARCHIVE --output OUT */
};

static int level_index(const struct compile *c, int level)
{
    for (size_t i = 0; i < c->nlevels; i++)
        if (c->levels[i] == level)
            return (int)i;
    return 0;
}

static struct tally *tally_of(struct compile *c, size_t interp, int level)
{
    return &c->tally[interp][level_index(c, level)];
}

/* ---- output ------------------------------------------------------------------------- */

static void python_label(const struct interp *ip, int level, char *buf, size_t cap)
{
    if (level)
        snprintf(buf, cap, "%s opt %d", ip->label, level);
    else
        snprintf(buf, cap, "%s", ip->label);
}

static void progress_clear(struct compile *c)
{
    if (c->progress_shown) {
        fputs("\r\033[K", stderr);
        c->progress_shown = false;
    }
}

static void progress(struct compile *c)
{
    if (!c->progress)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double dt = (double)(now.tv_sec - c->last_progress.tv_sec) +
                (double)(now.tv_nsec - c->last_progress.tv_nsec) / 1e9;
    if (dt < 0.1 && c->done < c->total)
        return;
    c->last_progress = now;
    fprintf(stderr, "\r\033[Kpycache: compiled %zu/%zu", c->done, c->total);
    c->progress_shown = true;
}

/* One line (-v) or one JSON object per cache file. */
static void report(struct compile *c, const char *action, const char *cfile,
                   const char *source, size_t interp, int level, const char *reason,
                   const char *err_type, const char *err_msg, long line)
{
    const struct interp *ip = &c->py[interp];
    if (c->format == CLI_FORMAT_JSON) {
        char python[16];
        snprintf(python, sizeof python, "%d.%d", ip->magic->major, ip->magic->minor);
        cli_json j;
        cli_json_begin(&j, cli_listing());
        cli_json_str(&j, "path", cfile);
        cli_json_str(&j, "source", source);
        cli_json_str(&j, "action", action);
        cli_json_str(&j, "reason", reason && *reason ? reason : NULL);
        cli_json_str(&j, "implementation", pyc_implementation_name(ip->magic->implementation));
        cli_json_str(&j, "python", python);
        cli_json_str(&j, "tag", ip->magic->tag);
        cli_json_int(&j, "opt", level);
        cli_json_str(&j, "mode", pyc_mode_name(ip->has_mode ? ip->mode : PYC_MODE_TIMESTAMP));
        cli_json_str(&j, "error_type", err_type);
        cli_json_str(&j, "error", err_msg);
        if (line > 0)
            cli_json_int(&j, "line", line);
        else
            cli_json_null(&j, "line");
        cli_json_end(&j);
        cli_listing_end(cfile, strlen(cfile));
        return;
    }
    char label[48];
    python_label(ip, level, label, sizeof label);
    if (c->format == CLI_FORMAT_NUL) {
        if (strcmp(action, "compiled") == 0 || strcmp(action, "would-compile") == 0 ||
            strcmp(action, "rewritten") == 0 || strcmp(action, "would-rewrite") == 0 ||
            strcmp(action, "linked") == 0) {
            fputs(cfile, cli_listing());
            fputc('\0', cli_listing());
            cli_listing_end(cfile, strlen(cfile));
        }
        return;
    }
    if (c->format == CLI_FORMAT_GITHUB) {
        /* A source that does not compile is an error at its line. */
        if (strcmp(action, "error") == 0) {
            char title[96], message[512];
            snprintf(title, sizeof title, "%s (Python %s)", err_type ? err_type : "error",
                     label);
            snprintf(message, sizeof message, "%s", err_msg ? err_msg : "cannot compile");
            report_github_line(source, line, true, title, message);
        }
        return;
    }
    /* A dry run lists its work (would-compile, would-rewrite) without -v. */
    bool work = c->dry_run && strncmp(action, "would-", 6) == 0;
    if ((!c->verbose && !work) || c->quiet)
        return;
    progress_clear(c);
    FILE *f = cli_listing();
    fprintf(f, "%-15s ", action);
    cli_print_path(f, cfile);
    fprintf(f, "  (%s%s%s)\n", label, reason && *reason ? ", " : "", reason ? reason : "");
    cli_listing_end(cfile, strlen(cfile));
}

/* A cache about to be written in another invalidation mode than it had
 * (judge: mode_changes): counted for the warning at the end of the run
 * (mode_change_warning) and, with -v, said at once. */
static void note_mode_change(struct compile *c, const struct interp *ip, pyc_mode old,
                             const char *cfile)
{
    if ((unsigned)old < 3 && (unsigned)ip->mode < 3)
        c->mode_changes[old][ip->mode]++;
    if (!c->verbose || c->quiet >= 2)
        return;
    progress_clear(c);
    fprintf(stderr, "pycache compile: warning: '");
    cli_print_path(stderr, cfile);
    fprintf(stderr, "' %s %s, %s %s\n", c->dry_run ? "is" : "was", pyc_mode_name(old),
            c->dry_run ? "would be written as" : "written as", pyc_mode_name(ip->mode));
}

/* Once per run, on stderr (not with -qq): how many caches changed their
 * invalidation mode, by old and new mode. An unchecked-hash cache written
 * as timestamp is loaded only while it matches its source from then on; a
 * timestamp cache written as unchecked-hash is loaded whatever its source
 * says: either is a change of behaviour the user should hear of. */
static void mode_change_warning(const struct compile *c)
{
    if (c->quiet >= 2)
        return;
    for (int from = 0; from < 3; from++)
        for (int to = 0; to < 3; to++) {
            unsigned long n = c->mode_changes[from][to];
            if (!n)
                continue;
            fprintf(stderr,
                    "pycache compile: warning: %lu cache%s %s from %s to %s "
                    "(--invalidation-mode %s keeps it%s)\n",
                    n, n == 1 ? "" : "s", c->dry_run ? "would change" : "changed",
                    pyc_mode_name((pyc_mode)from), pyc_mode_name((pyc_mode)to),
                    pyc_mode_name((pyc_mode)from), n == 1 ? "" : "s");
        }
}

/* The interpreter's own message, each line indented under ours. */
static void print_error(struct compile *c, const char *source, size_t interp,
                        const char *type, const char *msg)
{
    if (c->quiet >= 2)
        return;
    progress_clear(c);
    cli_message_prefix();
    fputs("cannot compile '", stderr);
    cli_print_path(stderr, source);
    fprintf(stderr, "' for Python %s:", c->py[interp].label);
    if (!strchr(msg, '\n')) {
        fputc(' ', stderr);
        if (type && *type && strncmp(msg, type, strlen(type)) != 0)
            fprintf(stderr, "%s: ", type);
        cli_print_path(stderr, msg);
        fputc('\n', stderr);
        return;
    }
    fputc('\n', stderr);
    char *copy = strdup(msg);
    if (!copy)
        return;
    char *save = NULL;
    for (char *ln = strtok_r(copy, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        fputs("  ", stderr);
        cli_print_path(stderr, ln);
        fputc('\n', stderr);
    }
    free(copy);
}

/* ---- where the recorded file name comes from (dfile) --------------------------------- */

/* posixpath.join(A, B). */
static char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *out = malloc(la + lb + 2);
    if (!out)
        return NULL;
    if (b[0] == '/') {
        memcpy(out, b, lb + 1);
    } else if (la == 0 || a[la - 1] == '/') {
        memcpy(out, a, la);
        memcpy(out + la, b, lb + 1);
    } else {
        memcpy(out, a, la);
        out[la] = '/';
        memcpy(out + la + 1, b, lb + 1);
    }
    return out;
}

struct part {
    const char *s;
    size_t n;
    bool removed;
};

/* str.split('/') into PARTS (malloc'd); returns the count. */
static size_t split_path(const char *s, struct part **parts)
{
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += *p == '/';
    *parts = calloc(n, sizeof **parts);
    if (!*parts)
        return 0;
    size_t k = 0;
    const char *start = s;
    for (const char *p = s;; p++) {
        if (*p == '/' || !*p) {
            (*parts)[k].s = start;
            (*parts)[k].n = (size_t)(p - start);
            k++;
            start = p + 1;
            if (!*p)
                break;
        }
    }
    return k;
}

/* compileall.compile_file's stripdir rule (3.9+), as written: for each
 * position where STRIP's component equals FULLNAME's, the first remaining
 * occurrence of that component is removed; the rest is os.path.join'ed. */
static char *strip_dir(const char *fullname, const char *strip)
{
    struct part *fp = NULL, *sp = NULL;
    size_t nf = split_path(fullname, &fp), ns = split_path(strip, &sp);
    char *out = NULL;
    if (!nf || !ns)
        goto done;
    for (size_t i = 0; i < nf && i < ns; i++) {
        if (sp[i].n != fp[i].n || memcmp(sp[i].s, fp[i].s, fp[i].n) != 0)
            continue;
        for (size_t k = 0; k < nf; k++) {
            if (!fp[k].removed && fp[k].n == sp[i].n &&
                memcmp(fp[k].s, sp[i].s, sp[i].n) == 0) {
                fp[k].removed = true;
                break;
            }
        }
    }
    out = strdup("");
    for (size_t k = 0; out && k < nf; k++) {
        if (fp[k].removed)
            continue;
        char *part = strndup(fp[k].s, fp[k].n);
        char *joined = part ? path_join(out, part) : NULL;
        free(part);
        free(out);
        out = joined;
    }
done:
    free(fp);
    free(sp);
    return out;
}

/* The dfile for FULLNAME, found under the current root (ROOT_IS_DIR: a
 * directory operand; else FULLNAME is the operand itself). compile_dir
 * turns -d DDIR into stripdir=DIR, prependdir=DDIR; compile_file takes
 * ddir as the directory of the file. NULL with *OK true: no dfile. */
static char *dfile_for(const struct compile *c, const char *fullname, bool root_is_dir,
                       bool *ok)
{
    const char *ddir = c->ddir, *strip = c->strip, *prepend = c->prepend;
    char *dfile = NULL;
    *ok = true;
    if (ddir && root_is_dir) {
        strip = c->root;
        prepend = ddir;
        ddir = NULL;
    }
    if (ddir) {
        const char *slash = strrchr(fullname, '/');
        dfile = path_join(ddir, slash ? slash + 1 : fullname);
        if (!dfile)
            goto oom;
    }
    if (strip) {
        free(dfile);
        dfile = strip_dir(fullname, strip);
        if (!dfile)
            goto oom;
    }
    if (prepend) {
        char *d = path_join(prepend, dfile ? dfile : fullname);
        free(dfile);
        dfile = d;
        if (!dfile)
            goto oom;
    }
    return dfile;
oom:
    *ok = false;
    return NULL;
}

/* ---- deciding what to do for one source ----------------------------------------------- *
 *
 * The scan may walk with several threads; its callback (on_item) runs under
 * a lock, one item at a time. So the syscalls that decide what a source
 * needs — its stat, and an open + pread + close of each cache file —
 * are made in the walking thread, outside that lock, by judge_source (the
 * scan's prepare hook), with a state of each thread's own; on_source, under
 * the lock, only counts, reports, rewrites headers and queues the
 * compilations. */

static size_t dir_len(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? (size_t)(slash - path) : 0;
}

static bool keeps_legacy_cache(const pyc_magic *m)
{
    return m->major < 3 || (m->major == 3 && m->minor < 2);
}

/* Whether IP's cache of a source goes into the __pycache__ beside it. */
static bool uses_pycache(const struct compile *c, const struct interp *ip)
{
    return !ip->prefix && !c->legacy && !keeps_legacy_cache(ip->magic);
}

/* The cache file interpreter IP reads for the source at display path
 * SOURCE (entry NAME) at LEVEL: a malloc'd display path. */
static char *cache_path(const struct compile *c, const struct interp *ip,
                        const char *source, const char *name, int level)
{
    if (ip->prefix)
        return pyc_cache_from_source(ip->magic, source, level, ip->prefix, NULL);
    if (c->legacy && !keeps_legacy_cache(ip->magic)) {
        /* compileall -b: fullname + 'c', whatever the level. */
        size_t n = strlen(source);
        char *out = malloc(n + 2);
        if (out) {
            memcpy(out, source, n);
            memcpy(out + n, "c", 2);
        }
        return out;
    }
    /* NAME is the entry's name in its directory, or the whole path for
     * a file given as an operand: only its last component counts. */
    const char *slash = strrchr(name, '/');
    char *rel = pyc_cache_from_source(ip->magic, slash ? slash + 1 : name, level, NULL, NULL);
    if (!rel)
        return NULL;
    size_t dl = dir_len(source);
    char *out = malloc(dl + 1 + strlen(rel) + 1);
    if (out) {
        if (dl) {
            memcpy(out, source, dl);
            out[dl] = '/';
            strcpy(out + dl + 1, rel);
        } else {
            strcpy(out, rel);
        }
    }
    free(rel);
    return out;
}

/* DO_REWRITE: fresh, but in the wrong invalidation mode (on_source rewrites
 * the header). */
enum decision { DO_FRESH, DO_COMPILE, DO_REWRITE, DO_REWRITTEN, DO_ERROR };

/* What judge_source learnt of one cache file of a source. */
struct judged_level {
    char *cpath;          /* display path (malloc'd; on_source takes it), or
                             NULL: map_errno says why it could not be made */
    int map_errno;
    enum decision d;
    const char *reason;   /* why it must be compiled or rewritten, or "" */
    int cache_dirfd;      /* DO_REWRITE: the directory of cpath (borrowed
                             from the thread's state) and the verdict */
    pyc_verdict v;
    bool mode_changes;    /* the cache there is this interpreter's, in
                             another invalidation mode (old_mode) than the
                             one it is compiled or rewritten in */
    pyc_mode old_mode;
};

/* What judge_source learnt of one source, for on_source. */
struct judged {
    bool skipped;         /* -x, -l or -r leave it out */
    int pycache_error;    /* the __pycache__ beside it could not be opened
                             (errno; said once per directory), else 0 */
    pyc_source src;       /* stat'ed once for every interpreter and level */
    bool linked[MAX_PYTHONS]; /* its __pycache__ is a symbolic link */
    struct judged_level lv[MAX_PYTHONS][MAX_LEVELS];
};

/* The cache headers of a batch of sources (read_batch_heads), read together
 * before judge_source judges the sources one by one. Slot (j * npy + i) *
 * nlevels + k holds interpreter i's cache at level k of source j. */
struct batch_heads {
    headread *reader;     /* NULL: none (yet, or io_uring not here) */
    bool tried;           /* headread_new was called */
    bool broken;          /* the ring failed: kept (with scratch, which a
                             read may still fill) until the state goes */
    unsigned char (*scratch)[HEADREAD_LEN]; /* what headread_run fills */
    bool cold;            /* the last batch was mostly not in the page cache */
    const scan_item *items; /* the scan's batch (valid until the end call) */
    size_t n;             /* sources in it; 0: no batch */
    size_t next;          /* the first one judge_source has not met yet */
    unsigned char (*heads)[HEADREAD_LEN];
    int *res;             /* bytes read, -errno, or BATCH_NOT_READ */
    size_t cap;           /* slots in heads and res */
    size_t *slot, *offs;  /* the slots to read and their names' offsets */
    char *names;          /* the cache names of the slots read, one after
                             the other, NUL-terminated */
    size_t names_cap;
};

#define BATCH_NOT_READ INT_MIN

/* A walking thread's state (scan_options.prepare). */
struct judge_state {
    /* The source directory whose __pycache__ is described below: it is
     * opened once for all the sources beside it (the scan delivers a
     * directory's files together), not looked up once per source. */
    char *dir;            /* display path, malloc'd; NULL: none yet */
    size_t dir_len;
    int pycache_fd;       /* the __pycache__ opened, else -1 */
    bool pycache_link;    /* it is a symbolic link */
    int pycache_error;    /* why it could not be opened, while no source
                             has reported it yet (look_at_pycache) */

    /* The directory of a --prefix cache (opened by its path), cached while
     * consecutive sources share it. */
    char *cdir_key;
    int cdir_fd;

    struct judged judged; /* the current source's */
    struct batch_heads batch;
};

static void judged_clear(struct compile *c, struct judged *jd)
{
    for (size_t i = 0; i < c->npy; i++) {
        for (size_t k = 0; k < c->nlevels; k++) {
            free(jd->lv[i][k].cpath);
            jd->lv[i][k].cpath = NULL;
        }
    }
}

static void judge_state_free(void *state, void *ctx)
{
    struct compile *c = ctx;
    struct judge_state *js = state;
    judged_clear(c, &js->judged);
    if (js->pycache_fd >= 0)
        close(js->pycache_fd);
    if (js->cdir_fd >= 0)
        close(js->cdir_fd);
    free(js->dir);
    free(js->cdir_key);
    /* The reader first: a broken batch may still write into heads. */
    headread_free(js->batch.reader);
    free(js->batch.scratch);
    free(js->batch.heads);
    free(js->batch.res);
    free(js->batch.slot);
    free(js->batch.offs);
    free(js->batch.names);
    free(js);
}

/* This thread's state, made on first use; NULL when out of memory. */
static struct judge_state *judge_state_of(void **state)
{
    struct judge_state *js = *state;
    if (!js) {
        js = calloc(1, sizeof *js);
        if (!js)
            return NULL;
        js->pycache_fd = -1;
        js->cdir_fd = -1;
        *state = js;
    }
    return js;
}

/* Opens the __pycache__ beside source IT, once per source directory:
 * opened as the walk opens a directory (O_NOFOLLOW), so a symbolic link is
 * never followed. Why it could not be opened, if that is to be reported, is
 * left in js->pycache_error for the directory's first source. Returns
 * ENOMEM when out of memory, else 0. */
static int open_pycache(struct compile *c, struct judge_state *js, const scan_item *it)
{
    size_t n = dir_len(it->path);
    if (js->dir && js->dir_len == n && memcmp(js->dir, it->path, n) == 0)
        return 0;
    if (js->pycache_fd >= 0)
        close(js->pycache_fd);
    js->pycache_fd = -1;
    js->pycache_link = false;
    js->pycache_error = 0;
    free(js->dir);
    js->dir = strndup(it->path, n);
    js->dir_len = n;
    if (!js->dir)
        return ENOMEM;
    js->pycache_fd = openat(it->dirfd, "__pycache__",
                            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (js->pycache_fd >= 0)
        return 0;
    int err = errno;
    if (err == ENOENT)
        return 0;
    if (err == ENOTDIR || err == ELOOP) {
        /* A file, or a symbolic link (O_NOFOLLOW | O_DIRECTORY says
         * ENOTDIR for both): lstat tells which. */
        struct stat st;
        js->pycache_link = fstatat(it->dirfd, "__pycache__", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                           S_ISLNK(st.st_mode);
        return 0;
    }
    /* The walk used to enter every __pycache__ and report one it could not
     * open; it no longer enters them (scan.c, sources_only), so the error
     * is reported here, the same way: for a directory the walk read (not
     * the directory of a file given as an operand), unless --ignore
     * __pycache__ said not to enter them. */
    js->pycache_error = it->depth > 0 && !c->pycache_ignored ? err : 0;
    return 0;
}

/* Looks at the __pycache__ beside source IT (open_pycache). Returns the
 * errno to report with IT (once per directory), or 0. */
static int look_at_pycache(struct compile *c, struct judge_state *js, const scan_item *it)
{
    if (open_pycache(c, js, it) != 0)
        return ENOMEM;
    int err = js->pycache_error;
    js->pycache_error = 0;
    return err;
}

/* An fd for the directory of --prefix cache path CPATH (display path),
 * cached while consecutive sources share it. -1 with errno when it cannot
 * be opened. */
static int prefix_dir_fd(struct judge_state *js, const char *cpath)
{
    size_t n = dir_len(cpath);
    if (js->cdir_key && strlen(js->cdir_key) == n && memcmp(js->cdir_key, cpath, n) == 0) {
        if (js->cdir_fd < 0)
            errno = ENOENT;
        return js->cdir_fd;
    }
    if (js->cdir_fd >= 0)
        close(js->cdir_fd);
    free(js->cdir_key);
    js->cdir_fd = -1;
    js->cdir_key = strndup(cpath, n);
    if (!js->cdir_key)
        return -1;
    const char *dir = n ? js->cdir_key : (cpath[0] == '/' ? "/" : ".");
    js->cdir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return js->cdir_fd;
}

/* The directory IP's cache of source IT is in, for *at() calls: the
 * __pycache__ beside it, the source's own directory (legacy caches), or a
 * --prefix directory. -1 when there is none. */
static int cache_dir_fd(const struct compile *c, struct judge_state *js,
                        const struct interp *ip, const scan_item *it, const char *cpath)
{
    if (ip->prefix)
        return prefix_dir_fd(js, cpath);
    if (uses_pycache(c, ip))
        return js->pycache_fd;
    return it->dirfd;
}

/* Judges the cache file CPATH (in directory DIRFD) for source SRC as
 * interpreter IP would. Sets OUT's decision and reason (why it must be
 * compiled); a fresh cache in the wrong mode is DO_REWRITE, with OUT->v. */
static void judge(const struct compile *c, const struct interp *ip, int dirfd,
                  const char *cpath, pyc_source *src, const unsigned char *head,
                  struct judged_level *out)
{
    out->reason = "";
    out->cache_dirfd = dirfd;
    /* The slot is reused source after source (struct judge_state). */
    out->mode_changes = false;
    if (c->force) {
        out->reason = "force";
        out->d = DO_COMPILE;
        return;
    }
    const char *base = strrchr(cpath, '/');
    base = base ? base + 1 : cpath;
    if (dirfd < 0) {
        out->reason = "no-cache";
        out->d = DO_COMPILE;
        return;
    }
    bool in_pycache = uses_pycache(c, ip);
    pyc_cache_name cn;
    pyc_cache_name_parse(base, in_pycache, ip->prefix != NULL, &cn);
    if (cn.kind == PYC_KIND_LEGACY || cn.kind == PYC_KIND_NONE) {
        /* A legacy NAME.pyc (2.x, --legacy): what matters here is whether
         * its header matches the source by its interpreter's rules, not
         * whether an import would pick it over the source (3.x would not):
         * judge it as a tagless prefix entry, by its magic. */
        pyc_cache_name_parse(base, false, false, &cn);
        cn.kind = PYC_KIND_PREFIX;
        cn.tag_len = 0;
    }
    /* First without the fstat that checks the cache is a regular file: a
     * FIFO, socket or directory cannot be read (it is opened O_NONBLOCK),
     * and what CPython's get_data reads from a device it would use as
     * well. Only a cache that is not fresh is judged again with it, so
     * that its reason is the one it always was ("unreadable" for what is
     * not a regular file): a syscall spared per fresh cache. HEAD: its
     * first HEADREAD_LEN bytes, read with the rest of its batch
     * (read_batch_heads); the same bytes the open + pread here would
     * read, so the same verdict. */
    pyc_verdict_options fast = c->vopt;
    fast.skip_file_stat = true;
    pyc_verdict *v = &out->v;
    if ((head ? pyc_verdict_judge_head(base, &cn, src->dirfd, src, &fast, head,
                                       HEADREAD_LEN, v)
              : pyc_verdict_judge(dirfd, base, &cn, src->dirfd, src, &fast, v)) != 0) {
        out->reason = "unreadable";
        out->d = DO_COMPILE;
        return;
    }
    if (v->header_read && (v->status != PYC_FRESH || !v->judge ||
                           v->judge->word != ip->magic->word) &&
        pyc_verdict_judge(dirfd, base, &cn, src->dirfd, src, &c->vopt, v) != 0) {
        out->reason = "unreadable";
        out->d = DO_COMPILE;
        return;
    }
    if (!v->header_read) {
        /* The verdict's own open (or read) failed. A cache that is not
         * there at all (stat through symlinks fails: ENOENT, a dangling
         * link...) is missing; one that is there but cannot be read is
         * unreadable — the stat is made only in this rare case, instead of
         * before every verdict. */
        struct stat st;
        if (fstatat(dirfd, base, &st, 0) != 0) {
            out->reason = "no-cache";
            out->d = DO_COMPILE;
            return;
        }
    }
    /* The interpreter's own cache, in another mode than the one it will be
     * written in (an unchecked-hash pyc recompiled as timestamp starts to
     * follow its source; a timestamp pyc rewritten as unchecked-hash stops
     * to): on_source warns. */
    if (v->header_read && ip->has_mode && v->judge && v->judge->word == ip->magic->word &&
        v->header.mode != ip->mode) {
        out->mode_changes = true;
        out->old_mode = v->header.mode;
    }
    if (v->status != PYC_FRESH || !v->judge || v->judge->word != ip->magic->word) {
        out->reason = v->status == PYC_FRESH ? "magic" : pyc_reason_name(v->reason);
        if (!*out->reason)
            out->reason = pyc_status_name(v->status);
        out->d = DO_COMPILE;
        return;
    }
    if (!ip->has_mode || v->header.mode == ip->mode) {
        out->d = DO_FRESH;
        return;
    }
    /* Fresh, but in the wrong invalidation mode: the body is the same in
     * every mode (PEP 552), so only the header is rewritten (on_source). */
    out->reason = "mode";
    out->d = DO_REWRITE;
}

/* Whether -l, -r or -x leave source IT out. */
static bool source_skipped(const struct compile *c, const scan_item *it)
{
    /* -l / -r: compileall's maxlevels counts directories below the root. */
    return (c->maxlevels >= 0 && it->depth - 1 > c->maxlevels) ||
           (c->have_rx && regexec(&c->rx, it->path, 0, NULL, 0) == 0);
}

/* ---- reading a directory's cache headers at once ---------------------------------------
 *
 * judge_source alone reads one cache header after another, and on a cold
 * page cache waits for the disk on each. The scan hands the sources of a
 * directory over first, in batches (scan_prepare_batch_fn), and the
 * __pycache__ caches they need are read together as check reads its
 * headers: one io_uring batch of open + read + close (headread.h), preceded
 * by readahead hints for the whole batch when the previous one was mostly
 * cold (prefetch.h), so that the disk reads of a directory wait together
 * and the scan adds walks. headread never waits for the disk: a header it
 * could not read in full (not in the page cache, an error, a short or
 * special file, a symbolic link) is read by judge the ordinary way, which
 * gives every verdict and every error as before. Legacy and --prefix caches
 * are not batched (rare, and in other directories). */

static bool batch_grow(struct batch_heads *b, size_t slots)
{
    if (slots <= b->cap)
        return true;
    unsigned char (*heads)[HEADREAD_LEN] = malloc(slots * sizeof *heads);
    int *res = malloc(slots * sizeof *res);
    size_t *slot = malloc(slots * sizeof *slot);
    size_t *offs = malloc(slots * sizeof *offs);
    if (!heads || !res || !slot || !offs) {
        free(heads);
        free(res);
        free(slot);
        free(offs);
        return false;
    }
    free(b->heads);
    free(b->res);
    free(b->slot);
    free(b->offs);
    b->heads = heads;
    b->res = res;
    b->slot = slot;
    b->offs = offs;
    b->cap = slots;
    return true;
}

/* Appends NAME to b->names; its offset, or (size_t)-1 out of memory. */
static size_t batch_name(struct batch_heads *b, size_t *used, const char *name)
{
    size_t n = strlen(name) + 1;
    if (*used + n > b->names_cap) {
        size_t cap = b->names_cap ? b->names_cap : 8192;
        while (cap < *used + n)
            cap *= 2;
        char *nb = realloc(b->names, cap);
        if (!nb)
            return (size_t)-1;
        b->names = nb;
        b->names_cap = cap;
    }
    memcpy(b->names + *used, name, n);
    size_t off = *used;
    *used += n;
    return off;
}

/* Reads the heads of the M slots b->slot[] (names at b->offs[]) in
 * directory DIRFD, HEADREAD_BATCH at a time. Returns how many it read, and
 * adds to *NEED_WAIT those that were not in the page cache; stops (the rest
 * not read) when the ring failed. */
static size_t batch_read(struct batch_heads *b, int dirfd, size_t m, size_t *need_wait)
{
    size_t done = 0;
    while (done < m && !b->broken) {
        size_t k = m - done < HEADREAD_BATCH ? m - done : HEADREAD_BATCH;
        const char *names[HEADREAD_BATCH];
        for (size_t i = 0; i < k; i++)
            names[i] = b->names + b->offs[done + i];
        if (b->cold)
            prefetch_heads(dirfd, names, k, HEADREAD_LEN);
        int res[HEADREAD_BATCH];
        if (headread_run(b->reader, dirfd, names, k, b->scratch, res) != 0) {
            /* The ring failed: every later header the plain way. A read
             * may still be in flight into scratch: both are kept until
             * judge_state_free (headread.h). */
            b->broken = true;
            break;
        }
        for (size_t i = 0; i < k; i++) {
            size_t s = b->slot[done + i];
            b->res[s] = res[i];
            memcpy(b->heads[s], b->scratch[i], HEADREAD_LEN);
            *need_wait += res[i] == -EAGAIN;
        }
        done += k;
    }
    return done;
}

/* The scan's prepare_batch hook: reads the __pycache__ cache headers of the
 * sources ITEMS (one directory's) for judge_source; N = 0: the batch is
 * over. Returns whether the page cache looked cold. */
static bool read_batch_heads(const scan_item *items, size_t n, void **state, void *ctx)
{
    struct compile *c = ctx;
    struct judge_state *js = judge_state_of(state);
    if (!js)
        return false;
    struct batch_heads *b = &js->batch;
    b->n = 0;
    b->items = NULL;
    b->next = 0;
    /* -f judges nothing; --deep reads whole files, not heads. */
    if (n == 0 || c->force || c->vopt.deep)
        return false;
    if (!b->tried) {
        /* In the walking thread: a reader belongs to the thread that made
         * it. NULL (io_uring not here): every header the plain way. */
        b->tried = true;
        b->scratch = malloc(HEADREAD_BATCH * sizeof *b->scratch);
        b->reader = b->scratch ? headread_new() : NULL;
    }
    if (!b->reader || b->broken || open_pycache(c, js, &items[0]) != 0 ||
        js->pycache_fd < 0)
        return false;
    size_t per = c->npy * c->nlevels;
    if (!batch_grow(b, n * per))
        return false;
    size_t m = 0, used = 0;
    for (size_t j = 0; j < n; j++) {
        for (size_t s = 0; s < per; s++)
            b->res[j * per + s] = BATCH_NOT_READ;
        if (source_skipped(c, &items[j]))
            continue;
        for (size_t i = 0; i < c->npy; i++) {
            const struct interp *ip = &c->py[i];
            if (!uses_pycache(c, ip))
                continue;
            for (size_t k = 0; k < c->nlevels; k++) {
                /* "__pycache__/NAME.TAG[.opt-N].pyc": the name judge
                 * gets (cache_path), in the __pycache__ opened. */
                char *rel = pyc_cache_from_source(ip->magic, items[j].name, c->levels[k],
                                                  NULL, NULL);
                const char *base = rel ? strrchr(rel, '/') : NULL;
                size_t off = base ? batch_name(b, &used, base + 1) : (size_t)-1;
                free(rel);
                if (off == (size_t)-1)
                    continue;
                b->slot[m] = (j * c->npy + i) * c->nlevels + k;
                b->offs[m++] = off;
            }
        }
    }
    size_t need_wait = 0;
    size_t read = batch_read(b, js->pycache_fd, m, &need_wait);
    b->items = items;
    b->n = n;
    b->cold = prefetch_cold(read, need_wait);
    return b->cold;
}

/* The head read for interpreter I's cache at level K of source IT, if
 * read_batch_heads read all of it, else NULL. */
static const unsigned char *batch_head(const struct compile *c, struct judge_state *js,
                                       const scan_item *it, size_t i, size_t k)
{
    struct batch_heads *b = &js->batch;
    /* The source, found by name among the rest of the batch (one may have
     * dropped out; names are unique in a directory). */
    size_t j = b->next;
    while (j < b->n && strcmp(b->items[j].name, it->name) != 0)
        j++;
    if (j >= b->n || b->items[j].dirfd != it->dirfd)
        return NULL;
    b->next = j;
    size_t s = (j * c->npy + i) * c->nlevels + k;
    return b->res[s] == HEADREAD_LEN ? b->heads[s] : NULL;
}

/* The scan's prepare hook: judges every cache source IT needs, in the
 * walking thread, and leaves a struct judged in IT->prepared (NULL when out
 * of memory). Reads only the run's options. */
static void judge_source(scan_item *it, void **state, void *ctx)
{
    struct compile *c = ctx;
    if (it->event != SCAN_SOURCE)
        return;
    struct judge_state *js = judge_state_of(state);
    if (!js)
        return;
    struct judged *jd = &js->judged;
    judged_clear(c, jd);
    jd->pycache_error = look_at_pycache(c, js, it);
    if (jd->pycache_error == ENOMEM && !js->dir)
        return;
    jd->skipped = source_skipped(c, it);
    it->prepared = jd;
    if (jd->skipped)
        return;

    jd->src = (pyc_source){.dirfd = it->dirfd, .name = it->name, .state = -1};
    for (size_t i = 0; i < c->npy; i++) {
        const struct interp *ip = &c->py[i];
        /* py_compile follows a symbolic link __pycache__ (os.makedirs and
         * _write_atomic, as an import would) and would create or replace
         * files wherever it points, out of the tree; it refuses only a
         * cache *file* that is a link. So such a cache is not compiled, as
         * the walk never follows a link either: an error (on_source). */
        jd->linked[i] = uses_pycache(c, ip) && js->pycache_link;
        for (size_t k = 0; k < c->nlevels; k++) {
            struct judged_level *lv = &jd->lv[i][k];
            lv->cpath = cache_path(c, ip, it->path, it->name, c->levels[k]);
            lv->map_errno = lv->cpath ? 0 : errno;
            if (!lv->cpath || jd->linked[i])
                continue;
            const unsigned char *head =
                uses_pycache(c, ip) ? batch_head(c, js, it, i, k) : NULL;
            judge(c, ip, cache_dir_fd(c, js, ip, it, lv->cpath), lv->cpath, &jd->src, head,
                  lv);
        }
    }
}

/* Rewrites the header of a fresh cache in the wrong invalidation mode. */
static enum decision rewrite(struct compile *c, const struct interp *ip,
                             struct judged_level *lv, const pyc_source *src)
{
    const char *base = strrchr(lv->cpath, '/');
    base = base ? base + 1 : lv->cpath;
    int err = 0;
    const char *op = NULL;
    switch (convert_pyc(lv->cache_dirfd, base, &lv->v, src->dirfd, src->name, ip->mode,
                        c->dry_run, false, &err, &op)) {
    case CONVERT_DONE:
        return DO_REWRITTEN;
    case CONVERT_ALREADY:
        lv->reason = "";
        return DO_FRESH;
    case CONVERT_NOT_FRESH:
        return DO_COMPILE;
    case CONVERT_FAILED:
    default:
        progress_clear(c);
        cli_error_path(op ? op : "rewrite", lv->cpath, err);
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
        return DO_ERROR;
    }
}

static struct job *new_job(struct compile *c)
{
    if (c->njobs == c->jobs_cap) {
        size_t cap = c->jobs_cap ? c->jobs_cap * 2 : 256;
        struct job *nj = realloc(c->jobs, cap * sizeof *nj);
        if (!nj)
            return NULL;
        c->jobs = nj;
        c->jobs_cap = cap;
    }
    struct job *j = &c->jobs[c->njobs];
    memset(j, 0, sizeof *j);
    return j;
}

static void free_job(struct job *j)
{
    free(j->source);
    free(j->dfile);
    for (size_t k = 0; k < j->nlevels; k++)
        free(j->lv[k].cfile);
}

/* Which pool of IP compiles LEVEL. */
static size_t pool_index(const struct interp *ip, int level)
{
    return ip->magic->major < 3 ? (size_t)level : 0;
}

/* A source, judged by judge_source: count, report, rewrite, queue. */
static int on_source(struct compile *c, const scan_item *it)
{
    struct judged *jd = it->prepared;
    if (!jd) {
        cli_error("out of memory");
        return 1;
    }
    if (jd->pycache_error) {
        size_t n = dir_len(it->path);
        char *path = malloc(n + sizeof "/__pycache__");
        if (path) {
            memcpy(path, it->path, n);
            memcpy(path + n, "/__pycache__", sizeof "/__pycache__");
        }
        progress_clear(c);
        cli_error_path("open", path ? path : it->path, jd->pycache_error);
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
        free(path);
    }
    if (jd->skipped)
        return 0;

    for (size_t i = 0; i < c->npy; i++) {
        struct interp *ip = &c->py[i];
        /* One job per pool: all levels for 3.x (--hardlink-dupes compares
         * them), one per level for 2.x. */
        struct job pending[MAX_LEVELS];
        memset(pending, 0, sizeof pending);
        bool any_todo[MAX_LEVELS] = {false};
        static const char linked_msg[] = "__pycache__ is a symbolic link (not followed)";
        if (jd->linked[i]) {
            print_error(c, it->path, i, "OSError", linked_msg);
            c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
        }
        for (size_t k = 0; k < c->nlevels; k++) {
            struct judged_level *lv = &jd->lv[i][k];
            int level = c->levels[k];
            size_t pi = pool_index(ip, level);
            char *cpath = lv->cpath;
            if (!cpath) {
                progress_clear(c);
                cli_error_path("map", it->path, lv->map_errno);
                c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
                continue;
            }
            lv->cpath = NULL; /* ours now */
            struct tally *t = tally_of(c, i, level);
            if (jd->linked[i]) {
                t->errors++;
                report(c, "error", cpath, it->path, i, level, "symlink", "OSError",
                       linked_msg, 0);
                free(cpath);
                continue;
            }
            enum decision d = lv->d;
            if (d == DO_REWRITE) {
                lv->cpath = cpath; /* rewrite reports by it */
                d = rewrite(c, ip, lv, &jd->src);
                lv->cpath = NULL;
            }
            const char *reason = lv->reason;
            if (lv->mode_changes && (d == DO_COMPILE || d == DO_REWRITTEN))
                note_mode_change(c, ip, lv->old_mode, cpath);
            switch (d) {
            case DO_FRESH:
                t->fresh++;
                report(c, "fresh", cpath, it->path, i, level, NULL, NULL, NULL, 0);
                break;
            case DO_REWRITTEN:
                t->rewritten++;
                report(c, c->dry_run ? "would-rewrite" : "rewritten", cpath, it->path, i,
                       level, reason, NULL, NULL, 0);
                break;
            case DO_ERROR:
                t->errors++;
                report(c, "error", cpath, it->path, i, level, reason, "OSError",
                       "cannot rewrite the header", 0);
                break;
            case DO_REWRITE: /* not after rewrite() */
            case DO_COMPILE:
                any_todo[pi] = true;
                break;
            }
            struct job *pj = &pending[pi];
            pj->lv[pj->nlevels].level = level;
            pj->lv[pj->nlevels].cfile = cpath;
            pj->lv[pj->nlevels].todo = d == DO_COMPILE;
            pj->lv[pj->nlevels].reason = reason;
            pj->nlevels++;
        }
        for (size_t pi = 0; pi < MAX_LEVELS; pi++) {
            struct job *pj = &pending[pi];
            if (!any_todo[pi]) {
                free_job(pj);
                continue;
            }
            if (c->dry_run) {
                for (size_t k = 0; k < pj->nlevels; k++) {
                    if (!pj->lv[k].todo)
                        continue;
                    tally_of(c, i, pj->lv[k].level)->compiled++;
                    report(c, "would-compile", pj->lv[k].cfile, it->path, i,
                           pj->lv[k].level, pj->lv[k].reason, NULL, NULL, 0);
                }
                free_job(pj);
                continue;
            }
            struct job *j = new_job(c);
            bool ok = true;
            pj->source = strdup(it->path);
            pj->interp = i;
            if (c->ddir || c->strip || c->prepend)
                pj->dfile = dfile_for(c, it->path, it->depth > 0, &ok);
            if (!j || !pj->source || !ok) {
                free_job(pj);
                cli_error("out of memory");
                return 1;
            }
            *j = *pj;
            c->njobs++;
            for (size_t k = 0; k < pj->nlevels; k++)
                c->total += pj->lv[k].todo;
        }
    }
    return 0;
}

static int on_item(const scan_item *it, void *ctx)
{
    struct compile *c = ctx;
    switch (it->event) {
    case SCAN_SOURCE:
        return on_source(c, it);
    case SCAN_ERROR:
        progress_clear(c);
        cli_error_detail(it->error_op, it->path, it->error, it->error_detail);
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
        break;
    default:
        break;
    }
    return cli_stdout_failed() ? 1 : 0;
}

/* ---- answers from the workers ------------------------------------------------------------ */

static char *field_str(const worker_field *f)
{
    return strndup(f->data, f->len);
}

/* --deterministic: the cache the worker just wrote, rewritten into the
 * canonical marshal form (normalize_pyc). marshal's output depends on the
 * reference counts in the compiling process (Python/marshal.c w_ref sets
 * FLAG_REF on any object referenced more than once) and, before 3.11, on
 * the hash seed (set order), so a worker that compiled other modules
 * before, or another -j, gives other bytes; the normal form does not.
 * Returns false after reporting an error. */
static bool normalize_written(struct compile *c, const char *cfile)
{
    const char *why = NULL, *op = NULL;
    int err = 0;
    /* normalize_pyc writes its temporary file beside NAME in DIRFD: open
     * the cache's directory. */
    const char *slash = strrchr(cfile, '/');
    int dirfd = AT_FDCWD;
    const char *base = cfile;
    if (slash) {
        char *dir = strndup(cfile, (size_t)(slash - cfile) + 1);
        if (dir)
            dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        err = errno;
        free(dir);
        if (dirfd < 0 || !dir) {
            if (c->quiet < 2)
                cli_error_path("open the directory of", cfile, dir ? err : ENOMEM);
            return false;
        }
        base = slash + 1;
    }
    normalize_result r = normalize_pyc(dirfd, base, false, &why, &err, &op);
    if (dirfd != AT_FDCWD)
        close(dirfd);
    if (r == NORMALIZE_FAILED) {
        if (c->quiet < 2)
            cli_error_path(op ? op : "normalize", cfile, err);
        return false;
    }
    if (r == NORMALIZE_SKIPPED) {
        if (c->quiet < 2)
            cli_error("cannot normalize '%s': %s", cfile, why ? why : "skipped");
        return false;
    }
    return true;
}

static void on_done(void *ctx, size_t id, const worker_field *f, size_t n)
{
    struct compile *c = ctx;
    struct job *j = &c->jobs[id];
    bool reported_error = false;
    for (size_t k = 0; k < j->nlevels; k++) {
        struct level_job *lv = &j->lv[k];
        if (4 * k + 3 >= n)
            break;
        const worker_field *st = &f[4 * k];
        if (!lv->todo)
            continue;
        c->done++;
        struct tally *t = tally_of(c, j->interp, lv->level);
        if (st->len == 2 && memcmp(st->data, "ok", 2) == 0 && c->deterministic &&
            !normalize_written(c, lv->cfile)) {
            t->errors++;
            c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
            report(c, "error", lv->cfile, j->source, j->interp, lv->level, lv->reason, NULL,
                   "cannot normalize", 0);
        } else if (st->len == 2 && memcmp(st->data, "ok", 2) == 0) {
            t->compiled++;
            report(c, "compiled", lv->cfile, j->source, j->interp, lv->level, lv->reason,
                   NULL, NULL, 0);
        } else if (st->len == 6 && memcmp(st->data, "linked", 6) == 0) {
            t->compiled++;
            t->linked++;
            report(c, "linked", lv->cfile, j->source, j->interp, lv->level, lv->reason,
                   NULL, NULL, 0);
        } else {
            bool oserror = st->len == 7 && memcmp(st->data, "oserror", 7) == 0;
            char *type = field_str(&f[4 * k + 1]);
            char *msg = field_str(&f[4 * k + 2]);
            char *line = field_str(&f[4 * k + 3]);
            t->errors++;
            c->status = cli_exit_merge(c->status, oserror ? CLI_EXIT_IO : CLI_EXIT_FINDINGS);
            report(c, "error", lv->cfile, j->source, j->interp, lv->level, lv->reason,
                   type, msg, line ? atol(line) : 0);
            /* The same error for each level: say it once. */
            if (!reported_error && msg)
                print_error(c, j->source, j->interp, type, msg);
            reported_error = true;
            free(type);
            free(msg);
            free(line);
        }
    }
    progress(c);
}

static void on_lost(void *ctx, size_t id, const char *why)
{
    struct compile *c = ctx;
    struct job *j = &c->jobs[id];
    for (size_t k = 0; k < j->nlevels; k++) {
        struct level_job *lv = &j->lv[k];
        if (!lv->todo)
            continue;
        c->done++;
        tally_of(c, j->interp, lv->level)->errors++;
        report(c, "error", lv->cfile, j->source, j->interp, lv->level, lv->reason,
               "WorkerDied", why, 0);
    }
    if (c->quiet < 2) {
        progress_clear(c);
        cli_message_prefix();
        fputs("cannot compile '", stderr);
        cli_print_path(stderr, j->source);
        fprintf(stderr, "' for Python %s: %s\n", c->py[j->interp].label, why);
    }
    c->status = cli_exit_merge(c->status, CLI_EXIT_FINDINGS);
    progress(c);
}

/* ---- running the pools ------------------------------------------------------------------ */

static unsigned default_jobs(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static int run_jobs(struct compile *c)
{
    worker_pool *pools[MAX_PYTHONS * MAX_LEVELS];
    size_t npools = 0;
    /* Jobs per pool, so no pool starts more workers than it has jobs. */
    for (size_t id = 0; id < c->njobs; id++) {
        struct job *j = &c->jobs[id];
        struct interp *ip = &c->py[j->interp];
        size_t pi = pool_index(ip, j->lv[0].level);
        if (!ip->pool[pi]) {
            const char *flags[2] = {NULL, NULL};
            if (ip->magic->major < 3 && pi > 0)
                flags[0] = pi == 1 ? "-O" : "-OO";
            ip->pool[pi] = worker_pool_new(ip->path, flags, c->nworkers, ip->label,
                                           ip->magic->word);
            if (!ip->pool[pi]) {
                cli_error("out of memory");
                return CLI_EXIT_IO;
            }
        }
        worker_msg m;
        worker_msg_init(&m);
        worker_msg_add_str(&m, "C");
        worker_msg_add_int(&m, (long)id);
        worker_msg_add_str(&m, j->source);
        worker_msg_add_str(&m, j->dfile ? j->dfile : "");
        worker_msg_add_str(&m, ip->has_mode ? pyc_mode_name(ip->mode) : "");
        worker_msg_add_str(&m, c->hardlink ? "1" : "0");
        for (size_t k = 0; k < j->nlevels; k++) {
            worker_msg_add_int(&m, j->lv[k].level);
            worker_msg_add_str(&m, j->lv[k].cfile);
            worker_msg_add_str(&m, j->lv[k].todo ? "1" : "0");
        }
        if (worker_pool_submit(ip->pool[pi], id, j->source, &m) != 0) {
            cli_error("out of memory");
            return CLI_EXIT_IO;
        }
    }
    for (size_t i = 0; i < c->npy; i++)
        for (size_t pi = 0; pi < MAX_LEVELS; pi++)
            if (c->py[i].pool[pi])
                pools[npools++] = c->py[i].pool[pi];
    worker_callbacks cb = {.done = on_done, .lost = on_lost, .ctx = c};
    if (workers_run(pools, npools, &cb) != 0) {
        cli_error("cannot wait for the workers: %s", strerror(errno));
        return CLI_EXIT_IO;
    }
    return CLI_EXIT_OK;
}

/* ---- interpreters ------------------------------------------------------------------------ */

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static bool executable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* NAME looked up in $PATH, as execvp would: a malloc'd path or NULL. */
static char *which(const char *name)
{
    const char *env = getenv("PATH");
    if (!env)
        return NULL;
    char *list = strdup(env), *save = NULL;
    for (char *dir = list ? strtok_r(list, ":", &save) : NULL; dir;
         dir = strtok_r(NULL, ":", &save)) {
        char *path = path_join(*dir ? dir : ".", name);
        if (path && executable_file(path)) {
            free(list);
            return path;
        }
        free(path);
    }
    free(list);
    return NULL;
}

/* The version an interpreter file says without running it: its name, its
 * resolved name, a pyenv versions/X.Y.Z/ directory (pythons.h). */
static const pyc_magic *named_version(const char *path)
{
    const pyc_magic *m = cli_python_from_name(base_name(path));
    if (m)
        return m;
    char *real = realpath(path, NULL);
    if (real) {
        m = cli_python_from_name(base_name(real));
        if (!m)
            m = cli_python_from_path(real);
        free(real);
    }
    return m ? m : cli_python_from_path(path);
}

/* --python ARG: a path (has a '/'), a version installed here (3.11,
 * python3.11, cpython-311), or a command on $PATH. */
static int resolve_python(const cli_parser *p, const char *arg, struct interp *ip)
{
    memset(ip, 0, sizeof *ip);
    if (strchr(arg, '/')) {
        if (!executable_file(arg))
            return cli_usage_error(p->command, "--python: cannot run '%s': %s", arg,
                                   access(arg, F_OK) == 0 ? "not an executable file"
                                                          : strerror(errno));
        ip->path = arg;
        ip->magic = named_version(arg);
        return 0;
    }
    const pyc_magic *m = pyc_magic_parse_version(arg);
    if (m) {
        const cli_python *list;
        size_t n = cli_python_list(&list);
        for (size_t i = 0; i < n; i++) {
            const pyc_magic *lm = list[i].magic;
            if (lm->implementation == m->implementation && lm->major == m->major &&
                lm->minor == m->minor) {
                ip->path = list[i].path;
                ip->magic = lm;
                return 0;
            }
        }
        return cli_usage_error(p->command,
                               "--python: no Python %d.%d is installed here (see 'pycache "
                               "versions --installed', or give its path)",
                               m->major, m->minor);
    }
    char *path = which(arg);
    if (!path)
        return cli_usage_error(p->command,
                               "--python: '%s' is neither a Python version nor a command on "
                               "PATH",
                               arg);
    ip->path = path; /* kept for the run */
    ip->magic = named_version(path);
    return 0;
}

/* An interpreter whose file says nothing is asked, once, by a worker's
 * first message; that worker is kept for the run. */
static int probe(struct compile *c, struct interp *ip)
{
    worker_pool *pool = worker_pool_new(ip->path, NULL, c->nworkers, "?", 0);
    worker_hello h;
    if (!pool)
        return -1;
    if (worker_pool_probe(pool, &h) != 0) {
        worker_pool_free(pool);
        return -1;
    }
    ip->magic = pyc_magic_lookup(h.magic_word);
    if (!ip->magic || h.major < 3) {
        /* 2.x pools are per level (-O): this one is level 0's. */
        if (!ip->magic) {
            cli_error("'%s' is %s %d.%d with a magic number pycache does not know "
                      "(0x%08x)", ip->path, h.implementation, h.major, h.minor,
                      (unsigned)h.magic_word);
            worker_pool_free(pool);
            return -1;
        }
    }
    ip->pool[0] = pool;
    return 0;
}

/* Finishes an interpreter's set-up once its version is known: label,
 * invalidation mode, and the checks that need the version. */
static int setup_interp(const cli_parser *p, struct compile *c, struct interp *ip,
                        bool mode_given, pyc_mode mode)
{
    const pyc_magic *m = ip->magic;
    if (m->implementation == PYC_IMPL_CPYTHON)
        snprintf(ip->label, sizeof ip->label, "%d.%d", m->major, m->minor);
    else
        snprintf(ip->label, sizeof ip->label, "%s %d.%d",
                 pyc_implementation_name(m->implementation), m->major, m->minor);
    ip->has_mode = m->layout == PYC_LAYOUT_FLAGS;
    if (ip->has_mode) {
        /* py_compile._get_default_invalidation_mode (3.7+). */
        const char *sde = getenv("SOURCE_DATE_EPOCH");
        ip->mode = mode_given ? mode
                              : (sde && *sde ? PYC_MODE_CHECKED_HASH : PYC_MODE_TIMESTAMP);
    } else if (mode_given && mode != PYC_MODE_TIMESTAMP) {
        return cli_usage_error(p->command,
                               "--invalidation-mode: Python %s writes timestamp pycs only "
                               "(hash-based pycs are 3.7+)",
                               ip->label);
    }
    /* sys.pycache_prefix is 3.8+ (importlib's cache_from_source): 2.7-3.7
     * ignore $PYTHONPYCACHEPREFIX and write beside the sources as ever, and
     * so does compile for them. -b names the cache file itself (compileall
     * passes cfile to py_compile), so no prefix applies. An explicit
     * --prefix for an interpreter that has none is a mistake. */
    bool reads_prefix = m->major > 3 || (m->major == 3 && m->minor >= 8);
    if (c->prefix && !reads_prefix && tree_prefix_origin() == TREE_PREFIX_GIVEN)
        return cli_usage_error(p->command, "--prefix: Python %s has no pycache prefix (3.8+)",
                               ip->label);
    ip->prefix = reads_prefix && !c->legacy ? c->prefix : NULL;
    /* Levels that would share one file: 2.x and 3.2-3.4 write both -O and
     * -OO to one .pyo; --legacy writes every level to NAME.pyc. */
    char *seen[MAX_LEVELS] = {NULL};
    int rc = 0;
    for (size_t k = 0; k < c->nlevels && rc == 0; k++) {
        const char *why = NULL;
        seen[k] = ip->prefix ? pyc_cache_from_source_why(m, "/d/x.py", c->levels[k],
                                                         ip->prefix, "/", &why)
                            : cache_path(c, ip, "x.py", "x.py", c->levels[k]);
        if (!seen[k]) {
            rc = cli_usage_error(p->command, "Python %s cannot write level %d%s%s%s",
                                 ip->label, c->levels[k], why ? " (" : "", why ? why : "",
                                 why ? ")" : "");
            break;
        }
        for (size_t i = 0; i < k; i++) {
            if (strcmp(seen[i], seen[k]) == 0) {
                rc = cli_usage_error(p->command,
                                     "Python %s writes optimization levels %d and %d to "
                                     "the same file (%s): pick one",
                                     ip->label, c->levels[i], c->levels[k], seen[k]);
                break;
            }
        }
    }
    for (size_t k = 0; k < MAX_LEVELS; k++)
        free(seen[k]);
    return rc;
}

/* ---- -i FILE ------------------------------------------------------------------------------ */

struct names {
    char **v;
    size_t n, cap;
};

static int names_add(struct names *l, char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

/* ---- the command ------------------------------------------------------------------------ */

/* Whether the POSIX ERE PATTERN is safe to give glibc's regcomp, which
 * copies a quantified subexpression's tree once per repetition: stacked
 * quantifiers ("a++", "a*{2}") make that exponential (20 '+' took 700 MB),
 * and nested bounds ("(a{1000}){1000}") multiply. Python's re (compileall
 * -x) rejects stacked quantifiers as "multiple repeat" before 3.11, so
 * refusing them loses nothing users can rely on; the estimated size of the
 * expanded pattern is capped too. Returns NULL when tame, else why not. */
static const char *regex_untamed(const char *pattern)
{
    enum { MAX_DEPTH = 64, MAX_SIZE = 1 << 17 }; /* 131072 nodes: about 25 MB */
    double size[MAX_DEPTH + 1] = {0}; /* expanded size of each open group */
    double atom = 0;                  /* size of the last atom, 0: none */
    bool after_quantifier = false;
    int depth = 0;
    for (const char *s = pattern; *s; s++) {
        double this_atom = 0;
        switch (*s) {
        case '\\':
            if (s[1])
                s++;
            this_atom = 1;
            break;
        case '[': {
            const char *t = s + 1;
            if (*t == '^')
                t++;
            if (*t == ']')
                t++;
            while (*t && *t != ']') {
                if (*t == '[' && (t[1] == ':' || t[1] == '.' || t[1] == '=')) {
                    const char *end = strchr(t + 2, t[1]);
                    t = end && end[1] == ']' ? end + 2 : t + 1;
                } else {
                    t++;
                }
            }
            s = *t ? t : t - 1;
            this_atom = 1;
            break;
        }
        case '(':
            if (depth == MAX_DEPTH)
                return "groups nested too deeply";
            size[++depth] = 0;
            atom = 0;
            after_quantifier = false;
            continue;
        case ')':
            if (depth > 0) {
                this_atom = size[depth] + 1;
                depth--;
            } else {
                this_atom = 1;
            }
            break;
        case '*':
        case '+':
        case '?':
        case '{': {
            if (after_quantifier)
                return "a quantifier follows another (multiple repeat)";
            double times = 2;
            if (*s == '{') {
                char *end;
                unsigned long m = strtoul(s + 1, &end, 10), n = m;
                if (*end == ',')
                    n = end[1] == '}' ? m + 1 : strtoul(end + 1, &end, 10);
                else if (*end != '}')
                    n = 1;
                const char *close = strchr(s, '}');
                if (close)
                    s = close;
                times = (double)(n > m ? n : m) + 1;
            }
            size[depth] += atom * (times - 1);
            after_quantifier = true;
            if (size[depth] > MAX_SIZE)
                return "it expands too much";
            continue;
        }
        default:
            this_atom = 1;
            break;
        }
        atom = this_atom;
        size[depth] += this_atom;
        after_quantifier = false;
        if (size[depth] > MAX_SIZE)
            return "it expands too much";
    }
    return NULL;
}

static int parse_levels(const cli_parser *p, const char *text, struct compile *c)
{
    for (const char *s = text; *s; s++) {
        if (*s == ',')
            continue;
        if (*s < '0' || *s > '2' || (s[1] && s[1] != ',')) {
            cli_usage_error(p->command, "-o: optimization levels are 0, 1 or 2, not '%s'", text);
            return -1;
        }
        int level = *s - '0';
        bool dup = false;
        for (size_t i = 0; i < c->nlevels; i++)
            dup |= c->levels[i] == level;
        if (!dup)
            c->levels[c->nlevels++] = level;
    }
    return 0;
}

static int compare_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

static void print_summary(struct compile *c, unsigned started)
{
    for (size_t i = 0; i < c->npy; i++) {
        for (size_t k = 0; k < c->nlevels; k++) {
            struct tally *t = &c->tally[i][k];
            printf("%s %lu file%s for %s (opt %d), %lu already fresh, %lu %s header-only, "
                   "%lu error%s",
                   c->dry_run ? "would compile" : "compiled", t->compiled,
                   t->compiled == 1 ? "" : "s", c->py[i].label, c->levels[k], t->fresh,
                   t->rewritten, c->dry_run ? "would be rewritten" : "rewritten", t->errors,
                   t->errors == 1 ? "" : "s");
            if (t->linked)
                printf(" (%lu hard-linked)", t->linked);
            putchar('\n');
        }
    }
    if (c->verbose)
        printf("%u interpreter%s started\n", started, started == 1 ? "" : "s");
}

/* ---- an archive: compile ARCHIVE --output OUT ------------------------------------------------
 *
 * archive_fix (engine/archive.c) decides which caches each interpreter
 * needs where the archive is used and hands over the source members' bytes;
 * the workers compile them from memory ("B" jobs, worker_py.h) and send the
 * pyc's bytes back; archive_fix writes the new archive with them. */

static void archive_done(void *ctx, size_t id, const worker_field *f, size_t n)
{
    struct compile *c = ctx;
    archive_compile_job *j = &c->archive_jobs[id];
    if (n < 5)
        return;
    if (f[0].len == 2 && memcmp(f[0].data, "ok", 2) == 0) {
        j->pyc = malloc(f[4].len ? f[4].len : 1);
        if (j->pyc) {
            memcpy(j->pyc, f[4].data, f[4].len);
            j->pyc_len = f[4].len;
        } else {
            j->error = strdup("out of memory");
        }
        return;
    }
    j->error_type = field_str(&f[1]);
    j->error = field_str(&f[2]);
    char *line = field_str(&f[3]);
    j->error_line = line ? atol(line) : 0;
    free(line);
}

static void archive_lost(void *ctx, size_t id, const char *why)
{
    struct compile *c = ctx;
    archive_compile_job *j = &c->archive_jobs[id];
    j->error_type = strdup("WorkerDied");
    j->error = strdup(why);
}

static int compile_archive_jobs(archive_compile_job *jobs, size_t njobs, void *ctx)
{
    struct compile *c = ctx;
    worker_pool *pools[MAX_PYTHONS * MAX_LEVELS];
    size_t npools = 0;
    c->archive_jobs = jobs;
    for (size_t id = 0; id < njobs; id++) {
        archive_compile_job *j = &jobs[id];
        struct interp *ip = &c->py[j->target];
        size_t pi = pool_index(ip, j->level);
        if (!ip->pool[pi]) {
            const char *flags[2] = {NULL, NULL};
            if (ip->magic->major < 3 && pi > 0)
                flags[0] = pi == 1 ? "-O" : "-OO";
            ip->pool[pi] = worker_pool_new(ip->path, flags, c->nworkers, ip->label,
                                           ip->magic->word);
            if (!ip->pool[pi]) {
                cli_error("out of memory");
                return -1;
            }
        }
        worker_msg m;
        worker_msg_init(&m);
        worker_msg_add_str(&m, "B");
        worker_msg_add_int(&m, (long)id);
        worker_msg_add(&m, j->source, j->source_len);
        worker_msg_add_str(&m, j->dfile);
        worker_msg_add_str(&m, ip->has_mode ? pyc_mode_name(ip->mode) : "");
        worker_msg_add_int(&m, (long)j->mtime);
        worker_msg_add_int(&m, (long)j->size);
        worker_msg_add_str(&m, j->zipimport ? "1" : "0");
        worker_msg_add_int(&m, j->level);
        if (worker_pool_submit(ip->pool[pi], id, j->path, &m) != 0) {
            cli_error("out of memory");
            return -1;
        }
    }
    for (size_t i = 0; i < c->npy; i++)
        for (size_t pi = 0; pi < MAX_LEVELS; pi++)
            if (c->py[i].pool[pi])
                pools[npools++] = c->py[i].pool[pi];
    worker_callbacks cb = {.done = archive_done, .lost = archive_lost, .ctx = c};
    if (workers_run(pools, npools, &cb) != 0) {
        cli_error("cannot wait for the workers: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int on_archive_item(const archive_item *it, void *ctx)
{
    struct compile *c = ctx;
    if (it->event == ARCHIVE_ERROR) {
        if (c->quiet < 2)
            report_error_detail(it->error_op, it->path, it->error, it->error_detail);
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
        return 0;
    }
    if (it->event != ARCHIVE_CACHE)
        return 0;
    size_t interp = 0;
    while (interp + 1 < c->npy && c->py[interp].magic != it->expect)
        interp++;
    struct tally *t = tally_of(c, interp, it->expect_opt);
    const char *reason = it->verdict ? pyc_reason_name(it->verdict->reason) : "missing";
    if (strcmp(it->action, "fresh") == 0) {
        t->fresh++;
        report(c, "fresh", it->path, it->source_path, interp, it->expect_opt, NULL, NULL,
               NULL, 0);
    } else if (strcmp(it->action, "error") == 0) {
        t->errors++;
        c->status = cli_exit_merge(c->status, CLI_EXIT_FINDINGS);
        report(c, "error", it->path, it->source_path, interp, it->expect_opt, reason,
               it->error_op, it->error_detail, it->line);
        print_error(c, it->source_path, interp, it->error_op, it->error_detail);
    } else {
        t->compiled++;
        report(c, c->dry_run ? "would-compile" : "compiled", it->path, it->source_path, interp,
               it->expect_opt, reason, NULL, NULL, 0);
    }
    return cli_stdout_failed() ? 1 : 0;
}

/* Refuses what has no meaning for an archive; then archive_fix. */
static int compile_archive(const cli_parser *p, struct compile *c, const tree_options *t,
                           const char *archive, const char *output, bool force)
{
    if (c->legacy || c->hardlink || c->deterministic || c->ddir || c->strip || c->prepend ||
        c->have_rx || force || c->maxlevels >= 0 ||
        tree_prefix_origin() == TREE_PREFIX_GIVEN)
        return cli_usage_error(p->command,
                               "for an ARCHIVE, compile takes --python, -o LEVELS, "
                               "--invalidation-mode, -j, -n, --zipimport/--extracted, "
                               "--extract-mtime and the output options only");
    archive_compile_target targets[MAX_PYTHONS];
    for (size_t i = 0; i < c->npy; i++) {
        unsigned levels = 0;
        for (size_t k = 0; k < c->nlevels; k++)
            levels |= 1u << c->levels[k];
        targets[i] = (archive_compile_target){c->py[i].magic, levels, c->py[i].mode};
    }
    archive_fix_options fix = {
        .kind = ARCHIVE_FIX_COMPILE, .dry_run = c->dry_run, .targets = targets,
        .ntargets = c->npy, .compile = compile_archive_jobs, .compile_ctx = c,
        .zipimport_name = output,
    };
    int rc = archive_fix(archive, output, &fix, &t->archive, &c->vopt, on_archive_item, c);
    if (rc < 0)
        c->status = cli_exit_merge(c->status, CLI_EXIT_IO);
    c->status = cli_exit_merge(c->status, cli_listing_finish());
    unsigned started = 0;
    for (size_t i = 0; i < c->npy; i++)
        for (size_t pi = 0; pi < MAX_LEVELS; pi++)
            started += worker_pool_started(c->py[i].pool[pi]);
    if (rc == 0 && c->format == CLI_FORMAT_HUMAN && !c->quiet) {
        print_summary(c, started);
        if (!c->dry_run) {
            fputs("-> ", stdout);
            cli_print_path(stdout, output);
            putchar('\n');
        }
    }
    int status = c->status;
    if (rc == 0 && c->dry_run) {
        for (size_t i = 0; i < c->npy; i++)
            for (size_t k = 0; k < c->nlevels; k++)
                if (c->tally[i][k].compiled)
                    status = cli_exit_merge(status, CLI_EXIT_FINDINGS);
    }
    return status;
}

int cmd_compile(int argc, char **argv)
{
    cli_parser p = {
        .command = "compile",
        .usage = "[OPTION]... [PATH]...\n"
                 "   or: pycache compile --python X.Y [OPTION]... ARCHIVE (--output OUT | "
                 "--in-place)",
        .description =
            "Byte-compile the Python sources under each PATH (default: the current "
            "directory), or the files named, with the real interpreters, but only those "
            "whose cache is missing or not fresh by CPython's own rules (mtime and size, "
            "or the source hash): a second run on a compiled tree starts no interpreter "
            "at all. A fresh cache in the wrong invalidation mode has its header "
            "rewritten. Each interpreter runs as a pool of worker processes compiling with "
            "py_compile (atomic writes: an interrupted run leaves no half-written file). "
            "A syntax error is reported with the interpreter's own message and the other "
            "files are still compiled; a worker that dies is replaced and its file tried "
            "once more. Version-control metadata, node_modules and virtual environments "
            "are skipped unless asked for. An ARCHIVE (zip, wheel, zipapp, tar, container "
            "image) is never "
            "changed in place: the caches each --python needs where it is used "
            "(extracted: __pycache__; --zipimport: NAME.pyc beside the source) are "
            "compiled from the source members' bytes into --output OUT (or over it: "
            "--in-place), stamped so they are fresh there.",
        .options = options,
        .epilog = "With $PYTHONPYCACHEPREFIX set (or --prefix), 3.8+ caches are written\n"
                  "into the prefix, where the interpreter will read them; 2.7-3.7 caches\n"
                  "beside the sources. $PYTHONDONTWRITEBYTECODE does not stop compile, as\n"
                  "it does not stop compileall. A cache written in another invalidation\n"
                  "mode than it had (unchecked-hash rewritten as timestamp...) is warned\n"
                  "about on stderr: once with a count, and per file with -v. A dry run\n"
                  "(-n) exits with 1 when there is work, 0 when everything is fresh.\n"
                  "\n"
                  CLI_PYTHONS_RULE_HELP
                  "\n"
                  "Examples:\n"
                  "  pycache compile src/                     python3 on PATH, level 0\n"
                  "  pycache compile --python 3.11 --python 2.7 -o 0,1 lib/\n"
                  "  pycache compile -n --json . | jq .       what would be compiled\n"
                  "  git ls-files '*.py' | pycache compile -i -\n"
                  "  TZ=UTC pycache compile --python 3.12 function.zip --output fixed.zip\n",
    };
    tree_options t;
    tree_options_init(&t);
    scan_options sopt;
    struct compile *c = calloc(1, sizeof *c);
    if (!c) {
        cli_error("out of memory");
        return CLI_EXIT_IO;
    }
    c->maxlevels = -1;
    c->vopt.check_hash = PYC_CHECK_HASH_ALWAYS;
    const char *python_args[MAX_PYTHONS];
    size_t npython_args = 0;
    bool mode_given = false;
    pyc_mode mode = PYC_MODE_TIMESTAMP;
    long jobs = 0, r_levels = -2;
    bool no_recurse = false;
    int rc = CLI_EXIT_OK;
    struct names names = {0};

    cli_parser_init(&p, argc, argv);
    int id, exit_status;
    while ((id = tree_next_option(&p, &t, &exit_status)) > 0) {
        switch (id) {
        case OPT_PYTHON:
            if (npython_args == MAX_PYTHONS) {
                rc = cli_usage_error(p.command, "too many --python options");
                goto out;
            }
            python_args[npython_args++] = p.optarg;
            break;
        case 'o':
            if (parse_levels(&p, p.optarg, c) != 0) {
                rc = CLI_EXIT_USAGE;
                goto out;
            }
            break;
        case OPT_MODE:
            if (pyc_mode_parse(p.optarg, &mode) != 0) {
                rc = cli_usage_error(p.command,
                                     "--invalidation-mode takes timestamp, checked-hash or "
                                     "unchecked-hash, not '%s'",
                                     p.optarg);
                goto out;
            }
            mode_given = true;
            break;
        case 'f':
            c->force = true;
            break;
        case 'n':
            c->dry_run = true;
            break;
        case OPT_DEEP:
            c->vopt.deep = true;
            break;
        case 'j':
            if (cli_parse_int(&p, p.optarg, 0, 1024, &jobs) != 0) {
                rc = CLI_EXIT_USAGE;
                goto out;
            }
            break;
        case 'x':
            if (c->have_rx)
                regfree(&c->rx);
            c->have_rx = false;
            {
                const char *why = regex_untamed(p.optarg);
                if (why) {
                    rc = cli_usage_error(p.command, "-x: refusing regular expression '%s': %s",
                                         p.optarg, why);
                    goto out;
                }
                int e = regcomp(&c->rx, p.optarg, REG_EXTENDED | REG_NOSUB);
                if (e != 0) {
                    char msg[256];
                    regerror(e, &c->rx, msg, sizeof msg);
                    rc = cli_usage_error(p.command, "-x: invalid regular expression '%s': %s",
                                         p.optarg, msg);
                    goto out;
                }
            }
            c->have_rx = true;
            break;
        case 'l':
            no_recurse = true;
            break;
        case 'r':
            if (cli_parse_int(&p, p.optarg, 0, INT_MAX, &r_levels) != 0) {
                rc = CLI_EXIT_USAGE;
                goto out;
            }
            break;
        case 'd':
            c->ddir = p.optarg;
            break;
        case OPT_STRIP:
            c->strip = p.optarg;
            break;
        case OPT_PREPEND:
            c->prepend = p.optarg;
            break;
        case 'b':
            c->legacy = true;
            break;
        case OPT_DETERMINISTIC:
            c->deterministic = true;
            break;
        case OPT_HARDLINK:
            c->hardlink = true;
            break;
        }
    }
    if (id < 0) {
        rc = exit_status;
        goto out;
    }
    sopt = t.scan;
    sopt.want_sources = true;
    sopt.sources_only = true; /* each source's caches are judged by judge_source */
    sopt.prepare = judge_source;
    sopt.prepare_free = judge_state_free;
    sopt.prepare_batch = read_batch_heads;
    c->quiet = t.out.quiet;
    c->verbose = t.out.verbose;

    for (const char *const *n = sopt.walk.ignore_names; n && *n; n++)
        c->pycache_ignored |= strcmp(*n, "__pycache__") == 0;
    /* compileall: -r takes precedence over -l. */
    c->maxlevels = r_levels >= 0 ? r_levels : (no_recurse ? 0 : -1);
    if (c->ddir && (c->strip || c->prepend)) {
        rc = cli_usage_error(p.command, "-d cannot be combined with --strip or --prepend");
        goto out;
    }
    /* compile writes where the interpreter would read: the prefix in
     * force (treeopts.c), applied per interpreter (setup_interp); the scan
     * itself only finds the sources. */
    t.never_whole_prefix = true; /* no PATH: ".", never the prefix tree */
    tree_resolve_prefix(&t.scan, 1);
    c->prefix = t.scan.prefix;
    sopt.prefix = NULL;
    sopt.prefix_only = false;
    if (c->legacy && c->prefix && tree_prefix_origin() == TREE_PREFIX_GIVEN) {
        rc = cli_usage_error(p.command, "--legacy and --prefix cannot be combined");
        goto out;
    }
    if (!c->nlevels)
        c->levels[c->nlevels++] = 0;
    qsort(c->levels, c->nlevels, sizeof *c->levels, compare_int);
    if (c->hardlink && c->deterministic) {
        /* Rewriting a level's pyc by rename would undo the hard link. */
        rc = cli_usage_error(p.command, "--deterministic and --hardlink-dupes exclude each other");
        goto out;
    }
    if (c->hardlink && c->nlevels < 2) {
        rc = cli_usage_error(p.command,
                             "--hardlink-dupes needs at least two optimization levels (-o)");
        goto out;
    }
    c->nworkers = jobs > 0 ? (unsigned)jobs : default_jobs();

    /* The interpreters. */
    if (npython_args == 0) {
        struct interp *ip = &c->py[0];
        memset(ip, 0, sizeof *ip);
        ip->path = which("python3");
        if (!ip->path) {
            rc = cli_usage_error(p.command, "no python3 on PATH: say which with --python");
            goto out;
        }
        ip->magic = cli_default_python();
        c->npy = 1;
    }
    for (size_t i = 0; i < npython_args; i++) {
        if (resolve_python(&p, python_args[i], &c->py[c->npy]) != 0) {
            rc = CLI_EXIT_USAGE;
            goto out;
        }
        c->npy++;
    }
    for (size_t i = 0; i < c->npy; i++) {
        struct interp *ip = &c->py[i];
        if (!ip->magic && probe(c, ip) != 0) {
            rc = CLI_EXIT_IO;
            goto out;
        }
        if (setup_interp(&p, c, ip, mode_given, mode) != 0) {
            rc = CLI_EXIT_USAGE;
            goto out;
        }
        for (size_t k = 0; k < i; k++) {
            if (c->py[k].magic == ip->magic) {
                rc = cli_usage_error(p.command, "--python: Python %s is given twice",
                                     ip->label);
                goto out;
            }
        }
    }

    /* The roots: the operands, then the -i lists (tree_operands); none at
     * all: ".". Unlike the other tree commands, a directory in a list is
     * compiled recursively, as compileall -i does. */
    if ((rc = tree_operands(&p, &t)) != 0)
        goto out;
    c->format = t.out.format;
    const char *archive, *output;
    int fixing = tree_archive_output(&p, &t, &archive, &output, &exit_status);
    if (fixing != 0) {
        rc = fixing < 0 ? exit_status
                        : compile_archive(&p, c, &t, archive, output, c->force);
        goto out;
    }
    sopt.listed = 0;
    for (size_t i = 0; i < t.npaths; i++) {
        char *copy = strdup(t.paths[i]);
        if (!copy || names_add(&names, copy) != 0) {
            free(copy);
            cli_error("out of memory");
            rc = CLI_EXIT_IO;
            goto out;
        }
    }
    if (names.n == 0 && !t.nfrom) {
        char *dot = strdup(".");
        if (!dot || names_add(&names, dot) != 0) {
            free(dot);
            rc = CLI_EXIT_IO;
            goto out;
        }
    }

    /* Scan: decide, rewrite headers, queue the rest. */
    c->progress = c->quiet == 0 && isatty(STDERR_FILENO);
    sopt.progress = c->progress;
    for (size_t i = 0; i < names.n; i++) {
        c->root = names.v[i];
        int r = scan_run(&names.v[i], 1, &sopt, on_item, c);
        if (r < 0) {
            cli_error("cannot scan: %s", strerror(errno));
            rc = CLI_EXIT_IO;
            goto out;
        }
        if (r > 0)
            break;
    }

    if (c->njobs > 0) {
        clock_gettime(CLOCK_MONOTONIC, &c->last_progress);
        int r = run_jobs(c);
        c->status = cli_exit_merge(c->status, r);
    }
    progress_clear(c);
    c->status = cli_exit_merge(c->status, cli_listing_finish());
    unsigned started = 0;
    for (size_t i = 0; i < c->npy; i++)
        for (size_t pi = 0; pi < MAX_LEVELS; pi++)
            started += worker_pool_started(c->py[i].pool[pi]);
    progress_clear(c);
    mode_change_warning(c);
    if (c->format == CLI_FORMAT_HUMAN && !c->quiet)
        print_summary(c, started);
    rc = c->status;
    /* Every dry run says by its exit status whether there is work: 1 when
     * something would be compiled or rewritten (as clean -n, prune -n and
     * convert -n), 0 when the tree is up to date. */
    if (c->dry_run) {
        bool work = false;
        for (size_t i = 0; i < c->npy; i++)
            for (size_t k = 0; k < c->nlevels; k++)
                work |= c->tally[i][k].compiled || c->tally[i][k].rewritten;
        if (work)
            rc = cli_exit_merge(rc, CLI_EXIT_FINDINGS);
    }

out:
    for (size_t i = 0; i < c->npy; i++)
        for (size_t pi = 0; pi < MAX_LEVELS; pi++)
            worker_pool_free(c->py[i].pool[pi]);
    for (size_t i = 0; i < c->njobs; i++)
        free_job(&c->jobs[i]);
    free(c->jobs);
    for (size_t i = 0; i < names.n; i++)
        free(names.v[i]);
    free(names.v);
    if (c->have_rx)
        regfree(&c->rx);
    free(c);
    tree_options_free(&t);
    return rc;
}
