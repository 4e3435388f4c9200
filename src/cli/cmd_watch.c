/*
 * cmd_watch.c — `pycache watch`: follow trees with inotify and remove the
 * bytecode of each source the moment it goes away.
 *
 * A refactor or a branch switch deletes and renames sources; their caches
 * stay behind. Under __pycache__ they are orphans (never loaded, only
 * clutter), but a legacy NAME.pyc beside a deleted NAME.py is imported in
 * its place (importlib's SourcelessFileLoader, and Python 2's import.c), so
 * a deleted module keeps importing. watch closes that window: on IN_DELETE
 * or IN_MOVED_FROM of NAME.py it removes, at once,
 *   - every entry of the sibling __pycache__ whose name parses
 *     (pyc_cache_name_parse) to the stem NAME: all tags, all optimization
 *     levels, .pyo files and CPython's temp files, found by listing the
 *     directory rather than by guessing which interpreters wrote there;
 *   - the legacy NAME.pyc and NAME.pyo beside it;
 *   - with --prefix DIR, the same stem's entries in the prefix tree's
 *     directory for the source directory (the directory is the library's
 *     pyc_cache_from_source mapping, the entries are listed);
 * and then the __pycache__ (or prefix directories) left empty.
 *
 * inotify is not recursive: there is one watch per directory, kept in a
 * tree of `struct watch` (parent, name) so a directory renamed within the
 * watched tree is one re-parenting (IN_MOVED_FROM + IN_MOVED_TO with the
 * same cookie), whatever lies below it. New directories (IN_CREATE or
 * IN_MOVED_TO of a directory) get watches recursively, by the same walk
 * (pyc_walk) and the same skips as every tree command (VCS metadata,
 * node_modules, venvs, --ignore), and their subtree is then pruned of
 * orphans (files deleted before the watch existed leave theirs). A
 * directory moved out of the trees has its watches dropped. When the
 * kernel's event queue overflows (IN_Q_OVERFLOW: events were lost), the
 * watches are re-synchronised with the trees and every tree is rescanned
 * for orphans (scan_run: the verdict of `pycache check`).
 *
 * Removals go through remove.c's syscalls (unlinkat on a directory fd after
 * an fstatat without following links); a directory is reopened by its path
 * and checked to be the directory the watch was set on (dev, ino), so a
 * path swapped for a symlink leads nowhere. Links are never followed below
 * the roots. SIGINT and SIGTERM (a signalfd, polled with the inotify fd)
 * end the command with status 0, or 3 when something could not be removed
 * or watched during the session.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/remove.h"
#include "engine/report.h"
#include "cli/treeopts.h"
#include "engine/scan.h"

enum {
    OPT_PRUNE_FIRST = 256,
};

/* watch reports as things happen, not a listing at its end: its lines come
 * in the order of the events, and --format=github (annotations of a CI
 * run) does not apply to a process that runs until interrupted. */
static const cli_option options[] = {
    {'n', "dry-run", NULL, "report what would be removed, remove nothing"},
    {TREE_OPT_JSON, "json", NULL,
     "JSON Lines: one object per action, with an \"action\" field (removed, "
     "would-remove, failed)"},
    {'0', "null", NULL, "print the path of each file removed, ended by NUL, as it goes"},
    {'v', "verbose", NULL, "also say each source seen going, caches or not"},
    TREE_QUIET_OPTION,
    {TREE_OPT_COLOR, "color", "WHEN", "colour the action words: auto, always or never"},
    {OPT_PRUNE_FIRST, "prune-first", NULL,
     "at start-up, remove what `pycache prune` would (sourceless pycs kept)"},
    {TREE_OPT_PREFIX, "prefix", "DIR",
     "also remove the entries of the prefix tree DIR for the sources that go "
     "(default: $PYTHONPYCACHEPREFIX)"},
    TREE_NO_PREFIX_OPTION,
    TREE_WALK_OPTIONS,
    {0, NULL, NULL, NULL},
};

/* Events asked of every watched directory: sources that go (DELETE,
 * MOVED_FROM), directories that come (CREATE, MOVED_TO). IN_ONLYDIR: a
 * directory swapped for something else is refused. Roots also report their
 * own move: their paths would be wrong from then on. */
#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR)
#define ROOT_MASK (WATCH_MASK | IN_MOVE_SELF)

/* A pending IN_MOVED_FROM of a directory waits this long for its
 * IN_MOVED_TO (the kernel queues the two in one rename, but a read may fall
 * between them); unmatched, the directory left the trees. */
#define MOVE_WAIT_MS 50

/* One watched directory. */
struct watch {
    int wd;
    struct watch *parent;              /* NULL for a root */
    struct watch *child, *prev, *next; /* children, siblings */
    struct watch *hnext;               /* hash chain by wd */
    char *name;                        /* root: the path as given */
    char *abs;                         /* root: its real path (prefix trees) */
    dev_t dev;
    ino_t ino;
    unsigned long seen;                /* generation of the last sync */
};

struct deletion {
    struct watch *w;
    char *stem; /* NAME of the NAME.py that went */
};

struct move {
    uint32_t cookie;
    struct watch *w;
};

/* A rescan queued for the end of a batch of events. */
struct pass {
    char *path; /* display path of a subtree; NULL: every root */
    char *abs;  /* absolute path (for the prefix tree), or NULL */
    bool prefix_only;
};

struct watcher {
    int ifd, sfd;
    scan_options sopt;   /* skips, verdict options, and the prefix */
    bool dry_run, quiet;
    cli_format format;
    bool verbose, color;
    int status;
    bool stop;
    bool use_proc;       /* add watches through /proc/self/fd/N */
    bool limit_reported;
    bool fatal;          /* the start-up could not watch everything */
    unsigned long generation;

    struct watch **buckets;
    size_t nbuckets, count, nroots;
    struct watch **roots;
    size_t nroots_given;

    struct deletion *dels;
    size_t ndels, capdels;
    struct move *moves;
    size_t nmoves, capmoves;
    struct pass *passes;
    size_t npasses, cappasses;
    bool overflow;

    uint64_t removed;
    bool out_of_memory;
};

/* ---- the table of watches ----------------------------------------------------------- */

static size_t bucket_of(const struct watcher *W, int wd)
{
    return (size_t)(unsigned)wd * 2654435761u & (W->nbuckets - 1);
}

static struct watch *watch_find(const struct watcher *W, int wd)
{
    if (!W->nbuckets)
        return NULL;
    for (struct watch *w = W->buckets[bucket_of(W, wd)]; w; w = w->hnext)
        if (w->wd == wd)
            return w;
    return NULL;
}

static int watch_insert(struct watcher *W, struct watch *w)
{
    if (W->count + 1 > W->nbuckets) {
        size_t n = W->nbuckets ? W->nbuckets * 2 : 256;
        struct watch **nb = calloc(n, sizeof *nb);
        if (!nb)
            return -1;
        struct watch **old = W->buckets;
        size_t oldn = W->nbuckets;
        W->buckets = nb;
        W->nbuckets = n;
        for (size_t i = 0; i < oldn; i++) {
            for (struct watch *x = old[i], *next; x; x = next) {
                next = x->hnext;
                size_t b = bucket_of(W, x->wd);
                x->hnext = nb[b];
                nb[b] = x;
            }
        }
        free(old);
    }
    size_t b = bucket_of(W, w->wd);
    w->hnext = W->buckets[b];
    W->buckets[b] = w;
    W->count++;
    return 0;
}

static void watch_unhash(struct watcher *W, struct watch *w)
{
    for (struct watch **p = &W->buckets[bucket_of(W, w->wd)]; *p; p = &(*p)->hnext) {
        if (*p == w) {
            *p = w->hnext;
            W->count--;
            return;
        }
    }
}

static void watch_detach(struct watch *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else if (w->parent)
        w->parent->child = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->parent = NULL;
}

static void watch_attach(struct watch *w, struct watch *parent)
{
    w->parent = parent;
    w->prev = NULL;
    w->next = parent->child;
    if (parent->child)
        parent->child->prev = w;
    parent->child = w;
}

static bool is_root(const struct watcher *W, const struct watch *w)
{
    for (size_t i = 0; i < W->nroots_given; i++)
        if (W->roots[i] == w)
            return true;
    return false;
}

/* Forgets W and everything below it; RM: also tell the kernel (the watch
 * still exists: a directory moved out, a venv). The kernel's IN_IGNORED for
 * a removed wd finds nothing and is ignored. */
static void watch_drop(struct watcher *W, struct watch *w, bool rm)
{
    while (w->child)
        watch_drop(W, w->child, rm);
    if (rm)
        inotify_rm_watch(W->ifd, w->wd);
    watch_detach(w);
    watch_unhash(W, w);
    for (size_t i = 0; i < W->nroots_given; i++) {
        if (W->roots[i] == w) {
            W->roots[i] = NULL;
            W->nroots--;
        }
    }
    /* A pending deletion or move cannot outlive its directory. */
    for (size_t i = 0; i < W->ndels; i++)
        if (W->dels[i].w == w)
            W->dels[i].w = NULL;
    for (size_t i = 0; i < W->nmoves; i++)
        if (W->moves[i].w == w)
            W->moves[i].w = NULL;
    free(w->name);
    free(w->abs);
    free(w);
}

static struct watch *child_named(struct watch *parent, const char *name)
{
    for (struct watch *c = parent->child; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

/* The display path (ABS false) or the absolute path (ABS true) of W,
 * malloc'd; NULL when out of memory. */
static char *join(const char *dir, const char *name);
static char *watch_path(const struct watch *w, bool abs)
{
    if (!w->parent)
        return strdup(abs && w->abs ? w->abs : w->name);
    char *dir = watch_path(w->parent, abs);
    char *p = dir ? join(dir, w->name) : NULL;
    free(dir);
    return p;
}

/* Joins DIR and NAME with one slash; malloc'd. */
static char *join(const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    bool slash = dl > 0 && dir[dl - 1] == '/';
    char *p = malloc(dl + nl + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, dl);
    if (!slash)
        p[dl++] = '/';
    memcpy(p + dl, name, nl + 1);
    return p;
}

/* ---- output ----------------------------------------------------------------------------- */

static void note_error(struct watcher *W)
{
    W->status = cli_exit_merge(W->status, CLI_EXIT_IO);
}

static void oom(struct watcher *W)
{
    if (!W->out_of_memory)
        cli_error("out of memory: some events were not handled");
    W->out_of_memory = true;
    note_error(W);
}

static const char *action_word(const struct watcher *W)
{
    return W->dry_run ? "would-remove" : "removed";
}

/* One file removed (or that would be): "removed PATH (DETAIL)". V describes
 * it for JSON. */
static void report_file(struct watcher *W, const char *path, const char *source,
                        const pyc_verdict *v, const char *detail)
{
    W->removed++;
    switch (W->format) {
    case CLI_FORMAT_JSON:
        report_json_verdict(path, source, v, NULL, "action", action_word(W));
        break;
    case CLI_FORMAT_NUL:
        fputs(path, stdout);
        putchar('\0');
        break;
    case CLI_FORMAT_GITHUB:
    case CLI_FORMAT_HUMAN:
        if (W->quiet)
            break;
        if (W->color)
            fputs("\033[33m", stdout);
        fputs(W->dry_run ? "would remove" : "removed", stdout);
        if (W->color)
            fputs(CLI_SGR_RESET, stdout);
        putchar(' ');
        cli_print_path(stdout, path);
        printf(" (%s)\n", detail);
        break;
    }
}

/* A directory removed because it was left empty. */
static void report_dir(struct watcher *W, const char *path)
{
    switch (W->format) {
    case CLI_FORMAT_JSON: {
        cli_json j;
        cli_json_begin(&j, stdout);
        cli_json_str(&j, "path", path);
        static const char *const nulls[] = {"status", "reason", "source"};
        for (size_t i = 0; i < sizeof nulls / sizeof *nulls; i++)
            cli_json_null(&j, nulls[i]);
        cli_json_str(&j, "kind", "directory");
        report_json_fields_null(&j, "kind");
        cli_json_str(&j, "action", "removed");
        cli_json_end(&j);
        break;
    }
    case CLI_FORMAT_NUL:
        fputs(path, stdout);
        putchar('\0');
        break;
    case CLI_FORMAT_GITHUB:
    case CLI_FORMAT_HUMAN:
        if (W->quiet)
            break;
        fputs("removed ", stdout);
        cli_print_path(stdout, path);
        fputs(" (empty)\n", stdout);
        break;
    }
}

/* A removal that failed: one line on stderr, exit status 3; JSON also gets
 * the object with "action": "failed". */
static void report_failure(struct watcher *W, const char *path, const char *source,
                           const pyc_verdict *v, int err)
{
    note_error(W);
    if (err == REMOVE_NOT_FILE)
        cli_error("not removing '%s': not a regular file or symlink", path);
    else
        cli_error_path("remove", path, err);
    if (W->format == CLI_FORMAT_JSON)
        report_json_verdict(path, source, v, NULL, "action", "failed");
}

/* ---- removing the caches of the sources that went ---------------------------------- */

static int compare_stems(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Is NAME[0..len) one of the sorted STEMS? */
static bool stem_wanted(char **stems, size_t n, const char *name, size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strncmp(stems[mid], name, len);
        if (c == 0 && stems[mid][len] != '\0')
            c = 1;
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* A name-only verdict for a cache file whose source just went: the status
 * CPython's import would give it now (orphan in __pycache__ or a prefix
 * tree, sourceless beside the sources, temp), reason no-source. */
static void gone_verdict(pyc_verdict *v, const char *name, const pyc_cache_name *cn,
                         const struct stat *st)
{
    memset(v, 0, sizeof *v);
    v->name = *cn;
    v->cache_name = name;
    v->status = cn->kind == PYC_KIND_TEMP     ? PYC_TEMP
                : cn->kind == PYC_KIND_LEGACY ? PYC_SOURCELESS
                                              : PYC_ORPHAN;
    v->reason = cn->kind == PYC_KIND_TEMP ? PYC_REASON_INTERRUPTED : PYC_REASON_NO_SOURCE;
    if (cn->tag_len)
        v->judge = pyc_magic_for_tag(name + cn->tag_off, cn->tag_len);
    v->file_size = st ? (int64_t)st->st_size : -1;
    v->file_blocks = -1;
    v->source_size = -1;
    v->source_mtime = INT64_MIN;
}

/* Removes the file NAME in DIRFD (display path DIR/NAME), classified as CN,
 * whose source SRC_DIR/STEM.py went. Returns true when removed. */
static bool remove_gone(struct watcher *W, int dirfd, const char *dir, const char *name,
                        const pyc_cache_name *cn, const char *src_dir)
{
    char *path = join(dir, name);
    char *stem = strndup(name, cn->stem_len);
    char *src_name = stem ? malloc(strlen(stem) + 4) : NULL;
    char *source = NULL;
    if (src_name) {
        strcpy(src_name, stem);
        strcat(src_name, ".py");
        source = join(src_dir, src_name);
    }
    bool ok = false;
    if (!path || !source) {
        oom(W);
        goto out;
    }
    struct stat st;
    pyc_verdict v;
    int rc = remove_file_at(dirfd, name, W->dry_run, &st);
    if (rc == 0) {
        gone_verdict(&v, name, cn, &st);
        report_file(W, path, source, &v, "source gone");
        ok = true;
    } else if (rc == REMOVE_NOT_FILE) {
        gone_verdict(&v, name, cn, &st);
        report_failure(W, path, source, &v, REMOVE_NOT_FILE);
    } else if (errno != ENOENT) {
        int err = errno;
        gone_verdict(&v, name, cn, NULL);
        report_failure(W, path, source, &v, err);
    }
out:
    free(path);
    free(stem);
    free(src_name);
    free(source);
    return ok;
}

/* Removes every entry of the directory DIRFD (display path DIR) whose name
 * parses, as IN_PYCACHE / IN_PREFIX say, to one of STEMS. Returns how many
 * went. */
static size_t remove_listed(struct watcher *W, int dirfd, const char *dir, bool in_pycache,
                            bool in_prefix, char **stems, size_t nstems, const char *src_dir)
{
    int fd = dup(dirfd);
    if (fd < 0) {
        note_error(W);
        cli_error_path("read", dir, errno);
        return 0;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        note_error(W);
        cli_error_path("read", dir, errno);
        close(fd);
        return 0;
    }
    /* Names first, removals after: the listing is not disturbed. */
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        pyc_cache_name cn;
        if (pyc_cache_name_parse(de->d_name, in_pycache, in_prefix, &cn) == PYC_KIND_NONE ||
            !stem_wanted(stems, nstems, de->d_name, cn.stem_len))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn)
                break;
            names = nn;
            cap = nc;
        }
        if (!(names[n] = strdup(de->d_name)))
            break;
        n++;
    }
    if (de) { /* stopped early */
        oom(W);
    } else if (errno) {
        note_error(W);
        cli_error_path("read", dir, errno);
    }
    size_t removed = 0;
    for (size_t i = 0; i < n; i++) {
        pyc_cache_name cn;
        pyc_cache_name_parse(names[i], in_pycache, in_prefix, &cn);
        if (remove_gone(W, dirfd, dir, names[i], &cn, src_dir))
            removed++;
        free(names[i]);
    }
    free(names);
    closedir(d); /* closes the dup */
    return removed;
}

/* Opens the directory W watches, by its path, and checks it is still that
 * directory; -1 when it is gone or something else has its name. */
static int open_watched(const struct watch *w, const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (w->parent ? O_NOFOLLOW : 0));
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_dev != w->dev || st.st_ino != w->ino) {
        close(fd);
        errno = ESTALE;
        return -1;
    }
    return fd;
}

/* The prefix-tree directory holding the caches of the sources in the
 * absolute directory ABS_DIR: importlib's cache_from_source with
 * sys.pycache_prefix (3.8+), through the library's mapping. malloc'd. */
static char *prefix_dir_for(const char *prefix, const char *abs_dir)
{
    const pyc_magic *m = pyc_magic_final(PYC_IMPL_CPYTHON, 3, 8);
    char *src = m ? join(abs_dir, "x.py") : NULL;
    char *cache = src ? pyc_cache_from_source(m, src, 0, prefix, "/") : NULL;
    free(src);
    if (!cache)
        return NULL;
    char *slash = strrchr(cache, '/');
    if (slash)
        *slash = '\0';
    return cache;
}

/* Removes the prefix directories left empty from DIR up to, never
 * including, the prefix root. */
static void remove_empty_prefix_dirs(struct watcher *W, char *dir)
{
    const char *prefix = W->sopt.prefix;
    size_t plen = strlen(prefix);
    while (plen > 1 && prefix[plen - 1] == '/')
        plen--;
    for (;;) {
        size_t n = strlen(dir);
        if (n <= plen || strncmp(dir, prefix, plen) != 0 || dir[plen] != '/')
            return;
        if (rmdir(dir) != 0)
            return; /* not empty (or gone): the ancestors are not either */
        report_dir(W, dir);
        char *slash = strrchr(dir, '/');
        if (!slash)
            return;
        *slash = '\0';
    }
}

/* The caches of STEMS (sorted, distinct), whose NAME.py all went from the
 * directory W watches. */
static void remove_caches(struct watcher *W, struct watch *w, char **stems, size_t nstems)
{
    char *dir = watch_path(w, false);
    if (!dir) {
        oom(W);
        return;
    }
    int dfd = open_watched(w, dir);
    if (dfd >= 0) {
        /* __pycache__/NAME.*: every tag and level present. */
        int pfd = openat(dfd, "__pycache__", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (pfd >= 0) {
            char *pdir = join(dir, "__pycache__");
            if (!pdir) {
                oom(W);
            } else if (remove_listed(W, pfd, pdir, true, false, stems, nstems, dir) &&
                       !W->dry_run && remove_empty_dir_at(dfd, "__pycache__") == 0) {
                report_dir(W, pdir);
            }
            free(pdir);
            close(pfd);
        }
        /* NAME.pyc / NAME.pyo beside the source: imported in its place. */
        for (size_t i = 0; i < nstems; i++) {
            static const char *const suffixes[] = {".pyc", ".pyo"};
            for (size_t k = 0; k < 2; k++) {
                size_t sl = strlen(stems[i]);
                char *name = malloc(sl + 5);
                if (!name) {
                    oom(W);
                    continue;
                }
                memcpy(name, stems[i], sl);
                memcpy(name + sl, suffixes[k], 5);
                pyc_cache_name cn;
                if (pyc_cache_name_parse(name, false, false, &cn) == PYC_KIND_LEGACY &&
                    cn.stem_len == sl)
                    remove_gone(W, dfd, dir, name, &cn, dir);
                free(name);
            }
        }
        close(dfd);
    }
    if (W->sopt.prefix) {
        char *abs = watch_path(w, true);
        char *pdir = abs ? prefix_dir_for(W->sopt.prefix, abs) : NULL;
        if (!pdir) {
            if (!abs || errno == ENOMEM)
                oom(W);
        } else {
            int fd = open(pdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0) {
                size_t n = remove_listed(W, fd, pdir, false, true, stems, nstems, abs);
                close(fd);
                if (n && !W->dry_run)
                    remove_empty_prefix_dirs(W, pdir);
            }
        }
        free(pdir);
        free(abs);
    }
    free(dir);
}

static int compare_deletions(const void *a, const void *b)
{
    const struct deletion *x = a, *y = b;
    if (x->w != y->w)
        return (uintptr_t)x->w < (uintptr_t)y->w ? -1 : 1;
    if (!x->stem || !y->stem)
        return (x->stem != NULL) - (y->stem != NULL);
    return strcmp(x->stem, y->stem);
}

/* Handles the deletions queued so far, one listing per directory however
 * many of its sources went (a `git checkout` removes hundreds at once). */
static void flush_deletions(struct watcher *W)
{
    if (!W->ndels)
        return;
    qsort(W->dels, W->ndels, sizeof *W->dels, compare_deletions);
    char **stems = malloc(W->ndels * sizeof *stems);
    if (!stems)
        oom(W);
    for (size_t i = 0; i < W->ndels;) {
        size_t j = i, n = 0;
        for (; j < W->ndels && W->dels[j].w == W->dels[i].w; j++) {
            if (stems && W->dels[j].stem &&
                (n == 0 || strcmp(stems[n - 1], W->dels[j].stem) != 0))
                stems[n++] = W->dels[j].stem;
        }
        if (stems && W->dels[i].w && n) {
            qsort(stems, n, sizeof *stems, compare_stems);
            remove_caches(W, W->dels[i].w, stems, n);
        }
        i = j;
    }
    for (size_t i = 0; i < W->ndels; i++)
        free(W->dels[i].stem);
    free(stems);
    W->ndels = 0;
}

static void queue_deletion(struct watcher *W, struct watch *w, const char *name)
{
    size_t len = strlen(name);
    /* importlib's SOURCE_SUFFIXES on POSIX: ['.py']. */
    if (len <= 3 || strcmp(name + len - 3, ".py") != 0)
        return;
    if (W->ndels == W->capdels) {
        size_t cap = W->capdels ? W->capdels * 2 : 256;
        struct deletion *nd = realloc(W->dels, cap * sizeof *nd);
        if (!nd) {
            oom(W);
            return;
        }
        W->dels = nd;
        W->capdels = cap;
    }
    char *stem = strndup(name, len - 3);
    if (!stem) {
        oom(W);
        return;
    }
    if (W->verbose && !W->quiet && W->format == CLI_FORMAT_HUMAN) {
        char *dir = watch_path(w, false);
        char *path = dir ? join(dir, name) : NULL;
        if (path) {
            fputs("source gone ", stdout);
            cli_print_path(stdout, path);
            putchar('\n');
            fflush(stdout);
        }
        free(path);
        free(dir);
    }
    W->dels[W->ndels].w = w;
    W->dels[W->ndels].stem = stem;
    W->ndels++;
}

/* ---- rescans: orphans (and, at start-up, what prune removes) ------------------------- */

struct pass_ctx {
    struct watcher *W;
    bool prune;  /* prune's set of statuses, not only orphans */
    bool prefix; /* a prefix-tree scan */
    unsigned long items;
};

/* Checks the signalfd without blocking: a long rescan stays interruptible. */
static void check_signals(struct watcher *W)
{
    struct pollfd pf = {.fd = W->sfd, .events = POLLIN};
    if (poll(&pf, 1, 0) > 0 && (pf.revents & POLLIN)) {
        struct signalfd_siginfo si;
        if (read(W->sfd, &si, sizeof si) == (ssize_t)sizeof si)
            W->stop = true;
    }
}

static int on_pass_item(const scan_item *it, void *ctx)
{
    struct pass_ctx *pc = ctx;
    struct watcher *W = pc->W;
    if (++pc->items % 256 == 0)
        check_signals(W);
    if (W->stop || cli_stdout_failed())
        return 1;
    switch (it->event) {
    case SCAN_CACHE: {
        const pyc_verdict *v = it->verdict;
        bool go = v->status == PYC_ORPHAN;
        if (pc->prune) {
            /* prune's set; sourceless pycs are kept, as prune keeps them
             * without --sourceless. */
            go = remove_prunable(v, false);
            if (v->error && v->reason == PYC_REASON_UNREADABLE) {
                go = false;
                note_error(W);
                cli_error_path(v->error_op ? v->error_op : "read", it->path, v->error);
            }
        }
        if (!go)
            break;
        struct stat st;
        int rc = remove_file_at(it->dirfd, it->name, W->dry_run, &st);
        if (rc == 0) {
            char detail[96];
            const char *reason = pyc_reason_name(v->reason);
            snprintf(detail, sizeof detail, "%s%s%s", pyc_status_name(v->status),
                     *reason ? ": " : "", reason);
            report_file(W, it->path, it->source_path, v, detail);
        } else if (rc == REMOVE_NOT_FILE) {
            report_failure(W, it->path, it->source_path, v, REMOVE_NOT_FILE);
        } else if (errno != ENOENT) {
            report_failure(W, it->path, it->source_path, v, errno);
        }
        break;
    }
    case SCAN_PYCACHE_POST:
        /* A __pycache__ left empty goes, as prune removes it. */
        if (!W->dry_run && it->dirfd != -1 && remove_empty_dir_at(it->dirfd, it->name) == 0)
            report_dir(W, it->path);
        break;
    case SCAN_ERROR:
        if (it->error == ENOENT)
            break; /* gone since (or no prefix subtree for it): nothing left */
        note_error(W);
        cli_error_path(it->error_op ? it->error_op : "read", it->path, it->error);
        break;
    case SCAN_FOREIGN:
    case SCAN_SOURCE:
    case SCAN_MISSING:
        break;
    }
    return 0;
}

/* Rescans PATHS (display paths; ABS_PATHS for the prefix tree). */
static void run_pass(struct watcher *W, char *const *paths, char *const *abs_paths,
                     size_t n, bool prune, bool prefix_only)
{
    scan_options opt = W->sopt;
    opt.prefix = NULL;
    opt.progress = false;
    struct pass_ctx pc = {.W = W, .prune = prune};
    if (!prefix_only && scan_run(paths, n, &opt, on_pass_item, &pc) < 0)
        oom(W);
    if (W->sopt.prefix && !W->stop) {
        opt.prefix = W->sopt.prefix;
        opt.prefix_only = true; /* the tree was the pass above */
        pc.prefix = true;
        if (scan_run(abs_paths, n, &opt, on_pass_item, &pc) < 0)
            oom(W);
    }
}

static void queue_pass(struct watcher *W, char *path, char *abs, bool prefix_only)
{
    if (W->npasses == W->cappasses) {
        size_t cap = W->cappasses ? W->cappasses * 2 : 16;
        struct pass *np = realloc(W->passes, cap * sizeof *np);
        if (!np) {
            free(path);
            free(abs);
            oom(W);
            return;
        }
        W->passes = np;
        W->cappasses = cap;
    }
    W->passes[W->npasses++] = (struct pass){.path = path, .abs = abs, .prefix_only = prefix_only};
}

/* Is PATH equal to or below DIR? */
static bool under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static void sync_roots(struct watcher *W);

static void run_passes(struct watcher *W)
{
    if (W->overflow) {
        W->overflow = false;
        if (!W->quiet)
            cli_error("watch: the inotify event queue overflowed (events were lost): "
                      "rescanning every tree for orphans");
        sync_roots(W);
        char **paths = calloc(W->nroots_given + 1, sizeof *paths);
        char **abs = calloc(W->nroots_given + 1, sizeof *abs);
        size_t n = 0;
        if (!paths || !abs) {
            oom(W);
        } else {
            for (size_t i = 0; i < W->nroots_given; i++) {
                if (!W->roots[i])
                    continue;
                paths[n] = W->roots[i]->name;
                abs[n++] = W->roots[i]->abs;
            }
            if (n)
                run_pass(W, paths, abs, n, false, false);
        }
        free(paths);
        free(abs);
        /* The full rescan covers the queued subtrees. */
    } else {
        for (size_t i = 0; i < W->npasses && !W->stop; i++) {
            struct pass *p = &W->passes[i];
            /* A subtree inside one rescanned already is skipped. */
            bool covered = false;
            for (size_t k = 0; k < i && !covered; k++) {
                const struct pass *q = &W->passes[k];
                covered = q->prefix_only == p->prefix_only &&
                          (p->prefix_only ? under(p->abs, q->abs) : under(p->path, q->path));
            }
            if (!covered)
                run_pass(W, &p->path, &p->abs, 1, false, p->prefix_only);
        }
    }
    for (size_t i = 0; i < W->npasses; i++) {
        free(W->passes[i].path);
        free(W->passes[i].abs);
    }
    W->npasses = 0;
}

/* ---- adding watches -------------------------------------------------------------------- */

/* The directory names every tree command skips (walk.c skipped_by_name),
 * for a directory that appears: the walk's options never apply to the root
 * it is given. __pycache__ holds no sources: never watched. */
static bool skipped_name(const struct watcher *W, const char *name)
{
    static const char *const vcs[] = {".git", ".hg", ".svn", ".bzr", "_darcs"};
    if (strcmp(name, "__pycache__") == 0)
        return true;
    if (W->sopt.walk.skip_vcs)
        for (size_t i = 0; i < sizeof vcs / sizeof *vcs; i++)
            if (strcmp(name, vcs[i]) == 0)
                return true;
    if (W->sopt.walk.skip_node_modules && strcmp(name, "node_modules") == 0)
        return true;
    if (W->sopt.walk.ignore_names)
        for (const char *const *p = W->sopt.walk.ignore_names; *p; p++)
            if (strcmp(name, *p) == 0)
                return true;
    return false;
}

static unsigned long read_proc_ulong(const char *path)
{
    unsigned long v = 0;
    FILE *f = fopen(path, "re");
    if (f) {
        if (fscanf(f, "%lu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

/* inotify_add_watch failed with ERR on PATH. */
static void watch_failed(struct watcher *W, const char *path, int err)
{
    note_error(W);
    if (err != ENOSPC) {
        cli_error_path("watch", path, err);
        return;
    }
    if (W->limit_reported)
        return;
    W->limit_reported = true;
    /* Since Linux 5.11 the limit is counted per user namespace as well
     * (user.max_inotify_watches); the smaller one is the one reached. */
    const char *sysctl = "fs.inotify.max_user_watches";
    unsigned long limit = read_proc_ulong("/proc/sys/fs/inotify/max_user_watches");
    unsigned long ns_limit = read_proc_ulong("/proc/sys/user/max_inotify_watches");
    if (ns_limit && (!limit || ns_limit < limit)) {
        sysctl = "user.max_inotify_watches";
        limit = ns_limit;
    }
    fflush(stdout);
    cli_message_prefix();
    fputs("cannot watch '", stderr);
    cli_print_path(stderr, path);
    fprintf(stderr,
            "': the limit on inotify watches is reached (sysctl %s = %lu, one watch "
            "per directory); raise it, e.g.\n"
            "  sysctl %s=%lu\n"
            "or watch a smaller tree (--ignore NAME)\n",
            sysctl, limit, sysctl, limit < 524288 ? 524288ul : limit * 2);
}

struct sync_ctx {
    struct watcher *W;
    struct watch *top_parent; /* parent of the walk's root; NULL for a root */
    const char *top_name;     /* the walk's root's name in TOP_PARENT */
    const char *root_abs;     /* a root: its real path */
    bool is_root;
    dev_t root_dev;
    struct watch **stack;     /* the watch at each depth */
    size_t cap;
    struct watch *first;      /* the watch of the walk's root */
};

/* Sets (or refreshes) the watch of the directory a DIR_PRE names. */
static pyc_walk_action on_sync_entry(const pyc_walk_entry *e, void *ctx)
{
    struct sync_ctx *sc = ctx;
    struct watcher *W = sc->W;
    if (e->event == PYC_WALK_ERROR) {
        if (e->error != ENOENT) {
            note_error(W);
            cli_error_path(e->error_op ? e->error_op : "read", e->path, e->error);
        }
        return PYC_WALK_CONTINUE;
    }
    if (e->event != PYC_WALK_DIR_PRE)
        return PYC_WALK_CONTINUE;
    if (e->depth > 0 && strcmp(e->name, "__pycache__") == 0)
        return PYC_WALK_PRUNE;
    size_t depth = (size_t)e->depth;
    if (depth >= sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 64;
        while (cap <= depth)
            cap *= 2;
        struct watch **ns = realloc(sc->stack, cap * sizeof *ns);
        if (!ns) {
            oom(W);
            return PYC_WALK_STOP;
        }
        sc->stack = ns;
        sc->cap = cap;
    }
    struct watch *parent = depth ? sc->stack[depth - 1] : sc->top_parent;
    if (depth && !parent)
        return PYC_WALK_PRUNE; /* its parent could not be watched */

    /* The watch goes on the directory opened without following links (the
     * root: as given, like the walk), through /proc/self/fd so nothing is
     * resolved by name twice. */
    int oflags = O_PATH | O_DIRECTORY | O_CLOEXEC | (sc->is_root && !depth ? 0 : O_NOFOLLOW);
    int fd = openat(e->dirfd, e->name, oflags);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        if (err != ENOENT && err != ENOTDIR && err != ELOOP) {
            note_error(W);
            cli_error_path("open", e->path, err);
        }
        return PYC_WALK_PRUNE;
    }
    if (!depth && !sc->is_root) {
        /* The walk's skips never apply to its root: a directory that
         * appeared is checked here the way the walk checks the others. */
        struct stat cfg;
        if ((W->sopt.walk.one_file_system && st.st_dev != sc->root_dev) ||
            (W->sopt.walk.skip_venvs && fstatat(fd, "pyvenv.cfg", &cfg, 0) == 0 &&
             S_ISREG(cfg.st_mode))) {
            close(fd);
            return PYC_WALK_PRUNE;
        }
    }
    uint32_t mask = sc->is_root && !depth ? ROOT_MASK : WATCH_MASK;
    int wd = -1;
    if (W->use_proc) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        wd = inotify_add_watch(W->ifd, proc, mask);
        if (wd < 0 && errno == ENOENT && access("/proc/self/fd", F_OK) != 0)
            W->use_proc = false; /* no /proc: by path, not following links */
    }
    if (!W->use_proc)
        wd = inotify_add_watch(W->ifd, e->path, mask | IN_DONT_FOLLOW);
    int err = errno;
    close(fd);
    if (wd < 0) {
        if (err == ENOENT || err == ENOTDIR)
            return PYC_WALK_PRUNE; /* gone already */
        watch_failed(W, e->path, err);
        if (err == ENOSPC) {
            W->fatal = true;
            return PYC_WALK_STOP;
        }
        return PYC_WALK_PRUNE;
    }
    const char *name = !depth ? (sc->is_root ? e->path : sc->top_name) : e->name;
    struct watch *w = watch_find(W, wd);
    if (w) {
        /* Watched already (a re-sync after an overflow, or an event for a
         * directory the walk of its parent found): bring its place up to
         * date. */
        if (!is_root(W, w) && (w->parent != parent || strcmp(w->name, name) != 0)) {
            char *nn = strdup(name);
            if (!nn) {
                oom(W);
                return PYC_WALK_PRUNE;
            }
            free(w->name);
            w->name = nn;
            watch_detach(w);
            watch_attach(w, parent);
        }
    } else {
        w = calloc(1, sizeof *w);
        if (w)
            w->wd = wd;
        if (!w || !(w->name = strdup(name)) ||
            (sc->is_root && !depth && !(w->abs = strdup(sc->root_abs))) ||
            watch_insert(W, w) != 0) {
            if (w) {
                free(w->name);
                free(w->abs);
            }
            free(w);
            inotify_rm_watch(W->ifd, wd);
            oom(W);
            return PYC_WALK_STOP;
        }
        if (parent)
            watch_attach(w, parent);
    }
    w->dev = st.st_dev;
    w->ino = st.st_ino;
    w->seen = W->generation;
    sc->stack[depth] = w;
    if (!depth)
        sc->first = w;
    return PYC_WALK_CONTINUE;
}

/* Watches the tree at PATH: a root (PARENT NULL, ROOT_ABS its real path) or
 * a directory that appeared under PARENT. Returns its watch, or NULL. */
static struct watch *sync_tree(struct watcher *W, struct watch *parent, const char *name,
                               const char *path, const char *root_abs)
{
    struct sync_ctx sc = {
        .W = W, .top_parent = parent, .top_name = name, .root_abs = root_abs,
        .is_root = parent == NULL,
    };
    if (parent) {
        const struct watch *r = parent;
        while (r->parent)
            r = r->parent;
        sc.root_dev = r->dev;
    }
    pyc_walk_options wo = W->sopt.walk;
    const char *roots[] = {path};
    if (pyc_walk(roots, 1, &wo, on_sync_entry, &sc) < 0)
        oom(W);
    free(sc.stack);
    return sc.first;
}

/* After lost events: every tree walked again, each directory's watch put
 * back in its place, the watches of directories no longer there dropped. */
static void sync_roots(struct watcher *W)
{
    W->generation++;
    for (size_t i = 0; i < W->nroots_given; i++) {
        struct watch *r = W->roots[i];
        if (!r)
            continue;
        char *path = strdup(r->name), *abs = strdup(r->abs);
        if (path && abs)
            sync_tree(W, NULL, NULL, path, abs);
        else
            oom(W);
        free(path);
        free(abs);
    }
    for (size_t b = 0; b < W->nbuckets; b++) {
        for (struct watch *w = W->buckets[b], *next; w; w = next) {
            next = w->hnext;
            if (w->seen != W->generation && !is_root(W, w) &&
                (!w->parent || w->parent->seen == W->generation)) {
                watch_drop(W, w, true);
                next = W->buckets[b]; /* the chain changed: start again */
            }
        }
    }
}

/* A directory NAME appeared in the directory W watches (created, or moved
 * in from outside): watch it and what is below, then prune its orphans. */
static void directory_came(struct watcher *W, struct watch *w, const char *name)
{
    if (skipped_name(W, name))
        return;
    char *dir = watch_path(w, false);
    char *path = dir ? join(dir, name) : NULL;
    free(dir);
    if (!path) {
        oom(W);
        return;
    }
    struct watch *c = sync_tree(W, w, name, path, NULL);
    if (!c) {
        free(path);
        return;
    }
    char *abs = NULL;
    if (W->sopt.prefix && !(abs = watch_path(c, true))) {
        free(path);
        oom(W);
        return;
    }
    queue_pass(W, path, abs, false);
}

/* A directory that was watched left the trees (moved out), or became
 * something the trees skip (a venv): its watches go. (With a prefix tree,
 * the IN_MOVED_FROM queued a rescan of its old prefix entries.) */
static void directory_left(struct watcher *W, struct watch *c)
{
    watch_drop(W, c, true);
}

/* ---- events ----------------------------------------------------------------------------- */

static void add_move(struct watcher *W, uint32_t cookie, struct watch *c)
{
    if (W->nmoves == W->capmoves) {
        size_t cap = W->capmoves ? W->capmoves * 2 : 16;
        struct move *nm = realloc(W->moves, cap * sizeof *nm);
        if (!nm) {
            /* Unmatched, it would be taken as a move out: keep it instead. */
            oom(W);
            return;
        }
        W->moves = nm;
        W->capmoves = cap;
    }
    W->moves[W->nmoves++] = (struct move){.cookie = cookie, .w = c};
}

/* The directories moved out of the trees: their IN_MOVED_TO never came. */
static void resolve_moves(struct watcher *W)
{
    for (size_t i = 0; i < W->nmoves; i++)
        if (W->moves[i].w)
            directory_left(W, W->moves[i].w);
    W->nmoves = 0;
}

static void root_gone(struct watcher *W, struct watch *w, const char *why)
{
    if (!W->quiet) {
        fflush(stdout);
        cli_message_prefix();
        fputs("stopped watching '", stderr);
        cli_print_path(stderr, w->name);
        fprintf(stderr, "': %s\n", why);
    }
}

static void handle_event(struct watcher *W, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        W->overflow = true;
        return;
    }
    struct watch *w = watch_find(W, ev->wd);
    if (!w)
        return; /* a watch dropped already */
    const char *name = ev->len ? ev->name : "";
    bool dir = (ev->mask & IN_ISDIR) != 0;

    if (ev->mask & IN_IGNORED) {
        /* The directory is gone (deleted, or its file system unmounted). */
        flush_deletions(W);
        if (is_root(W, w))
            root_gone(W, w, "it was removed");
        watch_drop(W, w, false);
        return;
    }
    if (ev->mask & IN_MOVE_SELF) {
        if (is_root(W, w)) {
            flush_deletions(W);
            root_gone(W, w, "it was moved");
            watch_drop(W, w, true);
        }
        return;
    }
    if (!dir && (ev->mask & (IN_DELETE | IN_MOVED_FROM))) {
        queue_deletion(W, w, name);
        return;
    }
    if (!dir && (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
        /* A directory that becomes a venv leaves the trees (site.venv():
         * a pyvenv.cfg file in it), as the walk would skip it. */
        if (W->sopt.walk.skip_venvs && strcmp(name, "pyvenv.cfg") == 0 && !is_root(W, w)) {
            flush_deletions(W);
            directory_left(W, w);
        }
        return;
    }
    if (!dir)
        return;
    flush_deletions(W);
    if (ev->mask & IN_MOVED_FROM) {
        struct watch *c = child_named(w, name);
        if (c) {
            add_move(W, ev->cookie, c);
        }
        if (W->sopt.prefix && !skipped_name(W, name)) {
            /* Its sources are elsewhere now: the prefix entries under the
             * old path are orphans. */
            char *wabs = watch_path(w, true);
            char *old = wabs ? join(wabs, name) : NULL;
            free(wabs);
            if (old)
                queue_pass(W, NULL, old, true);
            else
                oom(W);
        }
        return;
    }
    if (ev->mask & IN_MOVED_TO) {
        for (size_t i = 0; i < W->nmoves; i++) {
            struct move *m = &W->moves[i];
            if (m->cookie != ev->cookie)
                continue;
            struct watch *c = m->w;
            m->w = NULL;
            if (!c)
                break;
            /* Renamed within the trees: the watches below go with it. */
            if (skipped_name(W, name)) {
                directory_left(W, c);
                return;
            }
            char *nn = strdup(name);
            if (!nn) {
                oom(W);
                return;
            }
            free(c->name);
            c->name = nn;
            watch_detach(c);
            watch_attach(c, w);
            return;
        }
        directory_came(W, w, name);
        return;
    }
    if (ev->mask & IN_CREATE)
        directory_came(W, w, name);
}

#define EVENT_BUFFER (256 * 1024)

/* Reads every event queued now. Returns -1 on a read error. */
static int drain(struct watcher *W, char *buf)
{
    for (;;) {
        ssize_t n = read(W->ifd, buf, EVENT_BUFFER);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            return -1;
        }
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            handle_event(W, ev);
            p += sizeof *ev + ev->len;
        }
    }
}

/* ---- the command ---------------------------------------------------------------------------- */

static int setup_signals(sigset_t *set)
{
    sigemptyset(set);
    struct sigaction old;
    /* A SIGINT ignored by whoever started us (a background job) stays
     * ignored. */
    if (sigaction(SIGINT, NULL, &old) == 0 && old.sa_handler != SIG_IGN)
        sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, set, NULL) != 0)
        return -1;
    return signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static void free_watcher(struct watcher *W)
{
    for (size_t b = 0; b < W->nbuckets; b++) {
        for (struct watch *w = W->buckets[b], *next; w; w = next) {
            next = w->hnext;
            free(w->name);
            free(w->abs);
            free(w);
        }
    }
    free(W->buckets);
    free(W->roots);
    for (size_t i = 0; i < W->ndels; i++)
        free(W->dels[i].stem);
    free(W->dels);
    free(W->moves);
    for (size_t i = 0; i < W->npasses; i++) {
        free(W->passes[i].path);
        free(W->passes[i].abs);
    }
    free(W->passes);
    if (W->ifd >= 0)
        close(W->ifd);
    if (W->sfd >= 0)
        close(W->sfd);
}

int cmd_watch(int argc, char **argv)
{
    cli_parser p = {
        .command = "watch",
        .usage = "[OPTION]... [PATH]...",
        .description =
            "Follow each directory tree PATH (default: the current directory) and, the "
            "moment a source NAME.py is deleted or renamed away, remove its bytecode: "
            "every __pycache__/NAME.*.pyc of any tag and optimization level, the legacy "
            "NAME.pyc and NAME.pyo beside it (which Python would import in place of the "
            "missing source) and, with --prefix, its entries in the prefix tree. "
            "Directories created or moved in are followed (and pruned of orphans); the "
            "same directories as every tree command are skipped. Runs until interrupted "
            "(SIGINT, SIGTERM). Uses inotify: one watch per directory.",
        .options = options,
        .epilog =
            "Output: one line per action, \"removed PATH (source gone)\"; --json: one\n"
            "object per action. Start-up and warnings go to stderr.\n"
            "\n"
            "Examples:\n"
            "  pycache watch                     this tree, until Ctrl-C\n"
            "  pycache watch --prune-first src tests\n"
            "  pycache watch -n --json .         report what would go, remove nothing\n"
            "\n"
            "Exit status 0 when interrupted (SIGINT, SIGTERM) or when every tree is\n"
            "gone; 3 when something could not be watched or removed on the way (one\n"
            "line on stderr each), or when the inotify watch limit\n"
            "(fs.inotify.max_user_watches) stops the start-up.\n",
    };
    struct watcher W;
    memset(&W, 0, sizeof W);
    W.ifd = W.sfd = -1;
    W.use_proc = true;
    W.generation = 1;
    tree_options t;
    tree_options_init(&t);
    bool prune_first = false;

    cli_parser_init(&p, argc, argv);
    int id, exit_status;
    while ((id = tree_next_option(&p, &t, &exit_status)) > 0) {
        switch (id) {
        case 'n':
            W.dry_run = true;
            break;
        case OPT_PRUNE_FIRST:
            prune_first = true;
            break;
        }
    }
    if (id < 0)
        return exit_status;
    tree_resolve_output(&t);
    W.sopt = t.scan;
    W.quiet = t.out.quiet;
    W.verbose = t.out.verbose;
    W.format = t.out.format;
    W.color = tree_color(&t);
    /* watch follows the PATHs (default .) and, with a prefix in force,
     * their prefix entries: never the whole prefix tree alone. It gathers
     * its operands itself, so it resolves the prefix here. */
    tree_resolve_prefix(&W.sopt, 1);
    if (W.format == CLI_FORMAT_HUMAN && !W.quiet)
        tree_prefix_note(p.command, &W.sopt);
    static char dot[] = ".";
    static char *dot_root[] = {dot};
    char **paths = CLI_OPERANDS(&p);
    size_t npaths = (size_t)CLI_NOPERANDS(&p);
    if (!npaths) {
        paths = dot_root;
        npaths = 1;
    }
    char **abs = calloc(npaths, sizeof *abs);
    W.roots = calloc(npaths, sizeof *W.roots);
    if (!abs || !W.roots) {
        free(abs);
        free(W.roots);
        cli_error("out of memory");
        return CLI_EXIT_IO;
    }
    int status = CLI_EXIT_OK;
    for (size_t i = 0; i < npaths; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            cli_error_path("watch", paths[i], errno);
            status = CLI_EXIT_IO;
        } else if (!S_ISDIR(st.st_mode)) {
            cli_error_path("watch", paths[i], ENOTDIR);
            status = CLI_EXIT_IO;
        } else if (!(abs[i] = realpath(paths[i], NULL))) {
            cli_error_path("resolve", paths[i], errno);
            status = CLI_EXIT_IO;
        }
    }
    if (status != CLI_EXIT_OK)
        goto out;

    sigset_t set;
    W.sfd = setup_signals(&set);
    if (W.sfd < 0) {
        cli_error("cannot set up signal handling: %s", strerror(errno));
        status = CLI_EXIT_IO;
        goto out;
    }
    W.ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (W.ifd < 0) {
        if (errno == EMFILE)
            cli_error("cannot start inotify: too many inotify instances "
                      "(sysctl fs.inotify.max_user_instances = %lu)",
                      read_proc_ulong("/proc/sys/fs/inotify/max_user_instances"));
        else
            cli_error("cannot start inotify: %s", strerror(errno));
        status = CLI_EXIT_IO;
        goto out;
    }

    /* Each root once: a root inside another is watched as part of it. */
    for (size_t i = 0; i < npaths; i++) {
        bool nested = false;
        for (size_t k = 0; k < npaths && !nested; k++)
            nested = k != i && abs[k] && under(abs[i], abs[k]) &&
                     (strcmp(abs[i], abs[k]) != 0 || k < i);
        if (nested)
            continue;
        struct watch *r = sync_tree(&W, NULL, NULL, paths[i], abs[i]);
        if (W.fatal)
            break;
        if (r) {
            W.roots[W.nroots_given++] = r;
            W.nroots++;
        }
    }
    if (W.fatal || !W.nroots) {
        status = CLI_EXIT_IO;
        goto out;
    }
    if (prune_first) {
        char **rp = calloc(W.nroots_given, sizeof *rp), **ra = calloc(W.nroots_given, sizeof *ra);
        if (rp && ra) {
            for (size_t i = 0; i < W.nroots_given; i++) {
                rp[i] = W.roots[i]->name;
                ra[i] = W.roots[i]->abs;
            }
            run_pass(&W, rp, ra, W.nroots_given, true, false);
        } else {
            oom(&W);
        }
        free(rp);
        free(ra);
    }
    if (!W.quiet) {
        fflush(stdout);
        cli_message_prefix();
        fprintf(stderr, "watching %zu director%s%s\n", W.count,
                W.count == 1 ? "y" : "ies", W.dry_run ? " (dry run: nothing is removed)" : "");
    }
    fflush(stdout);

    char *buf = malloc(EVENT_BUFFER);
    if (!buf) {
        oom(&W);
        goto done;
    }
    while (!W.stop && W.nroots && !cli_stdout_failed()) {
        struct pollfd pf[2] = {{.fd = W.ifd, .events = POLLIN}, {.fd = W.sfd, .events = POLLIN}};
        int n = poll(pf, 2, W.nmoves ? MOVE_WAIT_MS : -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            cli_error("cannot wait for events: %s", strerror(errno));
            note_error(&W);
            break;
        }
        if (n == 0) {
            resolve_moves(&W);
            run_passes(&W);
        }
        if (pf[0].revents & POLLIN) {
            if (drain(&W, buf) < 0) {
                cli_error("cannot read events: %s", strerror(errno));
                note_error(&W);
                break;
            }
            flush_deletions(&W);
            size_t k = 0;
            for (size_t i = 0; i < W.nmoves; i++)
                if (W.moves[i].w)
                    W.moves[k++] = W.moves[i];
            W.nmoves = k;
            run_passes(&W);
        }
        if (pf[1].revents & POLLIN)
            check_signals(&W);
        fflush(stdout);
    }
    free(buf);
done:
    flush_deletions(&W);
    if (!W.quiet && !W.nroots && !W.stop)
        cli_error("nothing left to watch");
    status = W.status;
out:
    for (size_t i = 0; i < npaths; i++)
        free(abs[i]);
    free(abs);
    free_watcher(&W);
    return status;
}
