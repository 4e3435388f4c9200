/*
 * scan.c — walk + classify + judge: the engine of every tree command.
 *
 * One pass over the tree. For each directory entry:
 *   - inside a directory named __pycache__: a cache name is judged with its
 *     source NAME.py in the parent directory; anything else is foreign;
 *   - elsewhere: NAME.pyc / NAME.pyo are legacy cache files judged with
 *     NAME.py beside them; NAME.py is a source (reported on request, and
 *     checked against --expect);
 *   - in prefix mode every file of the prefix tree is a prefix entry whose
 *     source directory is the path after the prefix.
 * Sources are stat'ed once per directory and stem (pyc_source cache), since
 * several tags and optimization levels share one source. Directories that
 * cannot be read come as SCAN_ERROR items; the scan goes on.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/output.h"
#include "engine/headread.h"
#include "engine/prefetch.h"
#include "engine/scan.h"
#include "platform/mutex.h"

/* ---- a per-directory cache of source stats ------------------------------------------ */

struct source_slot {
    char *name; /* "NAME.py", malloc'd; NULL = empty */
    pyc_source src;
};

/* Open addressing, grown at half load: a stdlib directory has hundreds of
 * modules, each with a cache per tag and level sharing its source stat. */
struct source_cache {
    const void *owner; /* the directory the cached stats belong to */
    struct source_slot *slots;
    size_t cap;        /* a power of two, or 0 */
    size_t used;
};

static void source_cache_reset(struct source_cache *c, const void *owner)
{
    c->owner = owner;
    if (c->used == 0)
        return;
    for (size_t i = 0; i < c->cap; i++) {
        free(c->slots[i].name);
        c->slots[i].name = NULL;
    }
    c->used = 0;
}

static void source_cache_free(struct source_cache *c)
{
    source_cache_reset(c, NULL);
    free(c->slots);
    c->slots = NULL;
    c->cap = 0;
}

static size_t hash_bytes(const char *s, size_t n)
{
    size_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* The slot for NAME (stem + ".py", STEM_LEN bytes of stem) in SLOTS. */
static struct source_slot *source_slot_find(struct source_slot *slots, size_t cap,
                                            const char *stem, size_t stem_len)
{
    size_t i = hash_bytes(stem, stem_len) & (cap - 1);
    for (;;) {
        struct source_slot *s = &slots[i];
        if (!s->name || (strncmp(s->name, stem, stem_len) == 0 &&
                         strcmp(s->name + stem_len, ".py") == 0))
            return s;
        i = (i + 1) & (cap - 1);
    }
}

static bool source_cache_grow(struct source_cache *c)
{
    size_t cap = c->cap ? c->cap * 2 : 64;
    struct source_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < c->cap; i++) {
        struct source_slot *old = &c->slots[i];
        if (!old->name)
            continue;
        size_t stem_len = strlen(old->name) - 3;
        *source_slot_find(slots, cap, old->name, stem_len) = *old;
    }
    free(c->slots);
    c->slots = slots;
    c->cap = cap;
    return true;
}

/* The pyc_source for STEM (STEM_LEN bytes) in SOURCE_DIRFD, from the cache
 * or new (state -1: the verdict stats it and fills it in); valid until the
 * next call. NULL when out of memory (the verdict then stats itself). */
static pyc_source *source_cache_get(struct source_cache *c, int source_dirfd,
                                    const char *stem, size_t stem_len)
{
    if ((c->used + 1) * 2 > c->cap && !source_cache_grow(c))
        return NULL;
    struct source_slot *s = source_slot_find(c->slots, c->cap, stem, stem_len);
    if (s->name)
        return &s->src;
    s->name = malloc(stem_len + 4);
    if (!s->name)
        return NULL;
    memcpy(s->name, stem, stem_len);
    memcpy(s->name + stem_len, ".py", 4);
    s->src.dirfd = source_dirfd;
    s->src.name = s->name;
    s->src.state = -1;
    s->src.errno_ = 0;
    c->used++;
    return &s->src;
}

/* ---- batched header reads ---------------------------------------------------------------- */

/* Cache files whose verdict waits for their header, read for the whole
 * batch at once (headread.c). Only entries of one directory are batched,
 * and the batch is judged before any other event of the walk is handled,
 * so items reach the command in the walk's order, the directory fds the
 * entries name are still open, and the per-directory source cache is the
 * same as without batching. The walk's path and name buffers do not
 * outlive the callback: both are copied into ARENA. */
struct pending {
    pyc_walk_entry e;     /* path and name point nowhere until judged */
    size_t path_off;      /* where path and name are in the arena */
    size_t name_off;
};

struct batch {
    bool sources;         /* a batch of sources for opt->prepare_batch
                             (compile), not of cache files to read here */
    headread *reader;     /* NULL: none (yet, or not here) */
    bool tried;           /* headread_new was called */
    bool cold;            /* the last batch was mostly not in the page cache */
    const pyc_walk_dir *dir; /* the directory of the pending entries */
    struct pending items[HEADREAD_BATCH];
    size_t n;
    char *arena;
    size_t used, cap;
    unsigned char heads[HEADREAD_BATCH][HEADREAD_LEN];
    int res[HEADREAD_BATCH];
};

/* A batch of sources fits where a batch of cache files does. */
_Static_assert(SCAN_SOURCE_BATCH <= HEADREAD_BATCH, "struct batch holds a source batch");

/* ---- scan state -------------------------------------------------------------------------- */

/* What the threads of one scan share (see "parallel walk" below). */
/* The lock's type: glibc's adaptive mutex (see scan_run). musl, which
 * `make static` links, has no such type: that build passes
 * -DSCAN_MUTEX_TYPE=PTHREAD_MUTEX_NORMAL. */
#ifndef SCAN_MUTEX_TYPE
#define SCAN_MUTEX_TYPE PTHREAD_MUTEX_ADAPTIVE_NP
#endif

struct shared {
    pthread_mutex_t lock; /* the command's callback, the queue, the flags */
    pthread_cond_t more;  /* a job was queued, or the producer finished */
    struct job {
        char *path;       /* display path of a directory handed over */
        int fd;           /* the directory, opened by the walk that found
                             it (deeper than depth 1), or -1: open PATH
                             (depth 1: the root plus one name) */
        dev_t dev;        /* what it was when found: a sub-walk checks it */
        ino_t ino;
        int depth;        /* its depth below the scan's root */
    } *jobs;
    size_t head, n, cap;
    bool producing;       /* the first walk may still queue jobs */
    unsigned walking;     /* threads walking a job (they may queue more) */
    unsigned waiting;     /* threads waiting for a job */
    int wanted;           /* more threads wait than jobs are queued: the
                             walks hand directories over (read racily) */
    int stopped;          /* the callback asked to stop (read racily too) */
    int failed_errno;     /* a walk could not run (out of memory) */
    unsigned long entries;
    struct worker *workers; /* the walks beside the first (scan_run's) */
    int started;          /* threads running in workers[] */
    int most;             /* the most workers[] may hold (more_walks) */
    bool closed;          /* no more walks start: scan_run is joining */
};

struct scan {
    const scan_options *opt;
    scan_fn *fn;
    void *ctx;
    int stopped;
    struct shared *sh;    /* NULL: a single-threaded scan */
    bool splitting;       /* hand every depth-1 directory to the queue */
    const struct job *job; /* the directory this sub-walk was handed */
    bool main_thread;     /* prints the progress line */

    struct source_cache sources;
    struct batch *batch;  /* NULL: every file read on its own */
    void *prepared;       /* this thread's state for opt->prepare */

    /* The source directory for the current prefix-tree directory. */
    char *prefix_root;    /* the prefix, without trailing slashes */
    size_t prefix_len;
    char *mapped_dir;     /* prefix dir path whose source fd is cached */
    int mapped_fd;
    bool prefix_mapped;   /* the roots are scan_prefix_root of the paths:
                             one that does not exist holds no caches */
    /* --expect with a prefix: the real path of the source directory last
     * asked for (its display path the key). */
    char *expect_dir_key;
    char *expect_dir_abs;

    /* Display-path scratch for source paths. */
    char *buf;
    size_t cap;

    /* The source directory of a root that is a __pycache__, and whether
     * the current root is one (by its real path: "." may be). */
    dev_t root_parent_dev;
    ino_t root_parent_ino;
    int root_parent_fd;
    bool root_is_pycache;
    /* The directory of a root that is a file. */
    int root_file_dirfd;

    /* Progress on a terminal. */
    unsigned long entries;
    struct timespec last_progress;
    bool progress_shown;
};

/* Hands ITEM to the command. The command's callback is never run by two
 * threads at once: a parallel scan serialises it under the shared lock, so
 * commands need no locking of their own. Its prepare hook runs first,
 * unlocked, so that the work it takes on overlaps between threads. */
static int emit(struct scan *s, scan_item *item)
{
    if (s->stopped)
        return 1;
    /* A sub-walk numbers depths from the directory it was handed (0);
     * the command counts them from the root it gave (compile -l / -r). */
    if (s->job)
        item->depth += s->job->depth;
    if (s->opt->prepare) {
        /* Not once the scan was stopped: what the hook does (clean removes
         * the file), the callback must still be there to report. Another
         * thread may stop the scan between this check and the lock below;
         * see scan_prepare_fn. */
        if (s->sh && __atomic_load_n(&s->sh->stopped, __ATOMIC_RELAXED))
            s->stopped = 1;
        if (s->stopped)
            return 1;
        s->opt->prepare(item, &s->prepared, s->ctx);
    }
    if (!s->sh) {
        if (s->fn(item, s->ctx) != 0)
            s->stopped = 1;
        return s->stopped;
    }
    pthread_mutex_lock(&s->sh->lock);
    if (!s->sh->stopped && s->fn(item, s->ctx) != 0)
        s->sh->stopped = 1;
    s->stopped = s->sh->stopped;
    pthread_mutex_unlock(&s->sh->lock);
    return s->stopped;
}

static int emit_error(struct scan *s, const char *path, size_t len, int dirfd,
                      const char *name, int err, const char *op, int depth)
{
    scan_item item = {
        .event = SCAN_ERROR, .path = path, .path_len = len, .dirfd = dirfd,
        .name = name, .error = err, .error_op = op, .depth = depth,
    };
    return emit(s, &item);
}

/* Makes *BUF (of *CAP bytes, FIRST at first) hold at least NEED bytes,
 * doubling. 0, or -1 out of memory (*BUF unchanged). */
static int grow_buffer(char **buf, size_t *cap, size_t need, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : first;
    while (n < need)
        n *= 2;
    char *nb = realloc(*buf, n);
    if (!nb)
        return -1;
    *buf = nb;
    *cap = n;
    return 0;
}

/* Makes s->buf hold DIR + "/" + NAME[0..n) + SUFFIX. */
static const char *build_path(struct scan *s, const char *dir, size_t dir_len,
                              const char *name, size_t n, const char *suffix)
{
    size_t sl = strlen(suffix);
    if (grow_buffer(&s->buf, &s->cap, dir_len + 1 + n + sl + 1, 256) != 0)
        return NULL;
    size_t k = 0;
    if (dir_len) {
        memcpy(s->buf, dir, dir_len);
        k = dir_len;
        if (s->buf[k - 1] != '/')
            s->buf[k++] = '/';
    }
    memcpy(s->buf + k, name, n);
    k += n;
    memcpy(s->buf + k, suffix, sl + 1);
    return s->buf;
}

/* Length of the directory part of a display path (without the slash). */
static size_t dir_part(const char *path, size_t len)
{
    while (len > 0 && path[len - 1] != '/')
        len--;
    while (len > 1 && path[len - 1] == '/')
        len--;
    return len;
}

static void progress(struct scan *s)
{
    if (!s->opt->progress)
        return;
    unsigned long entries = s->sh ? __atomic_add_fetch(&s->sh->entries, 1, __ATOMIC_RELAXED)
                                  : ++s->entries;
    if (entries % 4096 || !s->main_thread)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (s->last_progress.tv_sec == 0) {
        s->last_progress = now;
        return;
    }
    double dt = (double)(now.tv_sec - s->last_progress.tv_sec) +
                (double)(now.tv_nsec - s->last_progress.tv_nsec) / 1e9;
    if (dt < 0.25)
        return;
    s->last_progress = now;
    fprintf(stderr, "\r\033[Kpycache: %lu entries...", entries);
    s->progress_shown = true;
}

/* The fd of the directory a __pycache__ entry's source lives in. */
static int pycache_source_fd(struct scan *s, const pyc_walk_entry *e)
{
    const pyc_walk_dir *pyc_dir = e->parent;
    const pyc_walk_dir *src_dir = pyc_dir ? pyc_walk_dir_parent(pyc_dir) : NULL;
    if (src_dir)
        return pyc_walk_dir_fd(src_dir);
    /* The root itself is a __pycache__ (or a file in one was given): its
     * source directory is the parent of the directory E->dirfd holds, which
     * the walk never opened. Cached by that directory's identity. */
    struct stat st;
    if (fstat(e->dirfd, &st) != 0)
        return -1;
    if (s->root_parent_fd >= 0 && s->root_parent_dev == st.st_dev &&
        s->root_parent_ino == st.st_ino)
        return s->root_parent_fd;
    if (s->root_parent_fd >= 0)
        close(s->root_parent_fd);
    s->root_parent_dev = st.st_dev;
    s->root_parent_ino = st.st_ino;
    s->root_parent_fd = openat(e->dirfd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return s->root_parent_fd;
}

/* The fd of the source directory a prefix-tree directory maps to: the path
 * after the prefix (source_from_cache, 3.8+). -1 when it does not exist. */
static int prefix_source_fd(struct scan *s, const pyc_walk_entry *e)
{
    size_t dlen = dir_part(e->path, e->path_len);
    if (s->mapped_dir && strlen(s->mapped_dir) == dlen &&
        memcmp(s->mapped_dir, e->path, dlen) == 0)
        return s->mapped_fd;
    if (s->mapped_fd >= 0)
        close(s->mapped_fd);
    free(s->mapped_dir);
    s->mapped_fd = -1;
    s->mapped_dir = strndup(e->path, dlen);
    if (!s->mapped_dir)
        return -1;
    const char *src = dlen > s->prefix_len ? s->mapped_dir + s->prefix_len : "/";
    s->mapped_fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return s->mapped_fd;
}

/* Whether NAME's last component is __pycache__ (the walker names a root
 * by the whole path the user gave, "pkg/__pycache__/"). */
static bool names_pycache_n(const char *name, size_t n)
{
    while (n > 1 && name[n - 1] == '/')
        n--;
    return n >= 11 && memcmp(name + n - 11, "__pycache__", 11) == 0 &&
           (n == 11 || name[n - 12] == '/');
}

static bool names_pycache(const char *name)
{
    return names_pycache_n(name, strlen(name));
}

/* Whether PATH, resolved, is a directory named __pycache__. */
static bool really_pycache(const char *path)
{
    char *real = realpath(path, NULL);
    bool yes = real && names_pycache(real);
    free(real);
    return yes;
}

static bool is_pycache_dir(const struct scan *s, const pyc_walk_dir *d)
{
    if (!d)
        return false;
    if (!pyc_walk_dir_parent(d))
        return s->root_is_pycache;
    return strcmp(pyc_walk_dir_name(d), "__pycache__") == 0;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Whether the entry is a source the finders would take: importlib's
 * _path_isfile stats through symlinks, so a symlink to a regular file is a
 * source too (one fstatat for links only). */
static bool is_source_file(const pyc_walk_entry *e)
{
    if (e->type == DT_REG)
        return true;
    if (e->type != DT_LNK)
        return false;
    struct stat st;
    return fstatat(e->dirfd, e->name, &st, 0) == 0 && S_ISREG(st.st_mode);
}

/* A file (or link, fifo...) entry. HEAD: its first HEAD_RES bytes when a
 * batch read them (headread.c), else NULL (or HEAD_RES < HEADREAD_LEN: the
 * batch could not read the whole header; the verdict reads the file). */
static int on_file(struct scan *s, const pyc_walk_entry *e, const unsigned char *head,
                   int head_res)
{
    const scan_options *opt = s->opt;
    bool in_pycache = !opt->prefix && is_pycache_dir(s, e->parent);
    bool in_prefix = opt->prefix != NULL;
    const char *base = e->name;
    pyc_walk_entry root_entry;
    if (!e->parent) {
        /* A root given as a file: its name is the whole path. Classify it by
         * its last component, and address it as that name in its directory
         * (opened here), like any other entry. */
        const char *slash = strrchr(e->path, '/');
        base = slash ? slash + 1 : e->path;
        size_t d = dir_part(e->path, e->path_len);
        char *dir = slash ? strndup(e->path, d) : strdup(".");
        if (!dir)
            return emit_error(s, e->path, e->path_len, e->dirfd, e->name, errno,
                              "open", e->depth);
        in_pycache = !in_prefix && really_pycache(dir);
        if (s->root_file_dirfd >= 0)
            close(s->root_file_dirfd);
        s->root_file_dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(dir);
        if (s->root_file_dirfd < 0)
            return emit_error(s, e->path, e->path_len, e->dirfd, e->name, errno,
                              "open", e->depth);
        root_entry = *e;
        root_entry.dirfd = s->root_file_dirfd;
        root_entry.name = base;
        e = &root_entry;
    }

    pyc_cache_name name;
    pyc_cache_kind kind = pyc_cache_name_parse(base, in_pycache, in_prefix, &name);
    if (opt->sources_only && (kind != PYC_KIND_NONE || in_pycache || in_prefix))
        return 0;
    if (kind == PYC_KIND_NONE) {
        if (in_pycache || in_prefix) {
            scan_item item = {
                .event = SCAN_FOREIGN, .path = e->path, .path_len = e->path_len,
                .dirfd = e->dirfd, .name = e->name, .type = e->type, .depth = e->depth,
            };
            return emit(s, &item);
        }
        if ((opt->want_sources || opt->nexpect) && ends_with(base, strlen(base), ".py") &&
            is_source_file(e)) {
            scan_item item = {
                .event = SCAN_SOURCE, .path = e->path, .path_len = e->path_len,
                .dirfd = e->dirfd, .name = e->name, .type = e->type, .depth = e->depth,
            };
            if (opt->want_sources && emit(s, &item))
                return 1;
            return 0; /* --expect is handled per directory, see on_source */
        }
        return 0;
    }
    /* Only regular files and symlinks can be cache files worth judging;
     * a directory named like one is foreign inside __pycache__. */
    if (e->type != DT_REG && e->type != DT_LNK) {
        if (in_pycache || in_prefix) {
            scan_item item = {
                .event = SCAN_FOREIGN, .path = e->path, .path_len = e->path_len,
                .dirfd = e->dirfd, .name = e->name, .type = e->type, .depth = e->depth,
            };
            return emit(s, &item);
        }
        return 0;
    }

    int source_fd;
    if (kind == PYC_KIND_PREFIX || (kind == PYC_KIND_TEMP && in_prefix))
        source_fd = prefix_source_fd(s, e);
    else if (in_pycache)
        source_fd = pycache_source_fd(s, e);
    else
        source_fd = e->dirfd;

    pyc_verdict v;
    const char *src_dir_path = e->path;
    size_t src_dir_len = dir_part(e->path, e->path_len);
    char *up = NULL;
    if (in_pycache) {
        if (names_pycache_n(e->path, src_dir_len)) {
            src_dir_len = dir_part(e->path, src_dir_len);
        } else if ((up = malloc(src_dir_len + 4)) != NULL) {
            /* A root that is a __pycache__ by its real path only ("."):
             * the source is in "./..". */
            memcpy(up, e->path, src_dir_len);
            strcpy(up + src_dir_len, src_dir_len ? "/.." : "..");
            src_dir_path = up;
            src_dir_len = strlen(up);
        }
    }
    else if (in_prefix && src_dir_len > s->prefix_len) {
        src_dir_path = e->path + s->prefix_len;
        src_dir_len -= s->prefix_len;
    }

    if (opt->judge == SCAN_JUDGE_NAME) {
        memset(&v, 0, sizeof v);
        v.name = name;
        v.cache_name = e->name;
        v.file_size = -1;
        v.file_blocks = -1;
        v.source_size = -1;
        /* No syscall at all: the size stays unknown (-1). A deleting
         * command learns it from the fstatat it makes right before the
         * unlinkat anyway (remove_file_at), so one stat per file is enough. */
        v.status = kind == PYC_KIND_TEMP ? PYC_TEMP : PYC_STALE;
        if (name.tag_len)
            v.judge = pyc_magic_for_tag(base + name.tag_off, name.tag_len);
    } else {
        /* Cache the source stat per source directory and stem. */
        const void *owner = e->parent;
        if (owner != s->sources.owner)
            source_cache_reset(&s->sources, owner);
        pyc_source *src = NULL;
        if (source_fd >= 0 && kind != PYC_KIND_TEMP)
            src = source_cache_get(&s->sources, source_fd, base, name.stem_len);
        pyc_verdict_options vo = opt->verdict;
        vo.skip_file_stat = opt->no_sizes && e->type == DT_REG;
        int jr = head && head_res == HEADREAD_LEN
                     ? pyc_verdict_judge_head(e->name, &name, source_fd, src, &vo, head,
                                              (size_t)head_res, &v)
                     : pyc_verdict_judge(e->dirfd, e->name, &name, source_fd, src, &vo,
                                         &v);
        if (jr != 0) {
            return emit_error(s, e->path, e->path_len, e->dirfd, e->name, errno,
                              "judge", e->depth);
        }
        /* The walk's rule for an entry that vanished since getdents (or was
         * replaced by a directory): skipped silently, not an error. Another
         * prune, clean or a deleting tool running at the same time is no
         * reason for exit status 3; a dangling link still is reported. */
        struct stat now;
        if (v.error && (v.error == ENOENT || v.error == EISDIR) &&
            (fstatat(e->dirfd, e->name, &now, AT_SYMLINK_NOFOLLOW) != 0
                 ? errno == ENOENT
                 : S_ISDIR(now.st_mode))) {
            free(up);
            return 0;
        }
    }

    const char *source_path =
        build_path(s, src_dir_path, src_dir_len, base, name.stem_len, ".py");
    free(up);
    scan_item item = {
        .event = SCAN_CACHE, .path = e->path, .path_len = e->path_len,
        .dirfd = e->dirfd, .name = e->name, .type = e->type, .verdict = &v,
        .source_path = source_path, .depth = e->depth,
    };
    return emit(s, &item);
}

/* Whether M reads sys.pycache_prefix: 3.8+ (importlib's cache_from_source
 * gained the prefix in 3.8; 2.7-3.7 ignore PYTHONPYCACHEPREFIX). */
static bool pyc_magic_has_prefix(const pyc_magic *m)
{
    return m->major > 3 || (m->major == 3 && m->minor >= 8);
}

/* The real path of the directory of source E (display path), cached for
 * the directory's other sources; NULL with errno when it cannot be
 * resolved. */
static const char *expect_source_dir(struct scan *s, const pyc_walk_entry *e)
{
    size_t dlen = dir_part(e->path, e->path_len);
    const char *dir = dlen ? e->path : ".";
    size_t n = dlen ? dlen : 1;
    if (s->expect_dir_key && strlen(s->expect_dir_key) == n &&
        memcmp(s->expect_dir_key, dir, n) == 0)
        return s->expect_dir_abs;
    free(s->expect_dir_key);
    free(s->expect_dir_abs);
    s->expect_dir_abs = NULL;
    s->expect_dir_key = strndup(dir, n);
    if (!s->expect_dir_key)
        return NULL;
    s->expect_dir_abs = realpath(s->expect_dir_key, NULL);
    return s->expect_dir_abs;
}

/* --expect under a prefix (3.8+ M): the cache M reads for source E is
 * cache_from_source's PREFIX/<real source dir>/NAME.TAG.pyc (the mapping
 * scan_prefix_root applies to the roots). Emits SCAN_MISSING unless it is
 * fresh. Returns non-zero when the scan was stopped. */
static int expect_in_prefix(struct scan *s, const pyc_walk_entry *e, const pyc_magic *m,
                            int level)
{
    const scan_options *opt = s->opt;
    const char *absdir = expect_source_dir(s, e);
    if (!absdir)
        return emit_error(s, e->path, e->path_len, e->dirfd, e->name, errno, "resolve",
                          e->depth);
    size_t al = strlen(absdir), nl = strlen(e->name);
    char *abs_source = malloc(al + nl + 2);
    if (!abs_source)
        return emit_error(s, e->path, e->path_len, e->dirfd, e->name, ENOMEM, "map",
                          e->depth);
    memcpy(abs_source, absdir, al);
    abs_source[al] = '/';
    memcpy(abs_source + al + 1, e->name, nl + 1);
    char *cache = pyc_cache_from_source(m, abs_source, level, opt->tree_prefix, "/");
    free(abs_source);
    if (!cache)
        return emit_error(s, e->path, e->path_len, e->dirfd, e->name, errno, "map",
                          e->depth);
    char *slash = strrchr(cache, '/');
    pyc_verdict v;
    bool have = false;
    int dirfd = -1;
    if (slash) {
        *slash = '\0';
        dirfd = open(slash == cache ? "/" : cache, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        *slash = '/';
    }
    const char *base = slash ? slash + 1 : cache;
    struct stat st;
    if (dirfd >= 0 && fstatat(dirfd, base, &st, 0) == 0) {
        pyc_cache_name cn;
        pyc_cache_name_parse(base, false, true, &cn);
        if (pyc_verdict_judge(dirfd, base, &cn, e->dirfd, NULL, &opt->verdict, &v) == 0)
            have = true;
    }
    if (dirfd >= 0)
        close(dirfd);
    int stopped = 0;
    if (!(have && v.status == PYC_FRESH && v.judge && v.judge->word == m->word)) {
        scan_item item = {
            .event = SCAN_MISSING, .path = cache, .path_len = strlen(cache),
            .dirfd = e->dirfd, .name = e->name, .type = e->type,
            .verdict = have ? &v : NULL, .source_path = e->path,
            .expect = m, .expect_opt = level, .depth = e->depth,
        };
        stopped = emit(s, &item);
    }
    free(cache);
    return stopped;
}

/* --expect: a source NAME.py in directory DIRFD needs a fresh cache for each
 * expected interpreter and level (3.8+ under a prefix: in the prefix). */
static int check_expect(struct scan *s, const pyc_walk_entry *e)
{
    const scan_options *opt = s->opt;
    size_t n = strlen(e->name);
    if (n < 4 || !ends_with(e->name, n, ".py") || !is_source_file(e))
        return 0;
    int pyc_fd = -2;
    for (size_t i = 0; i < opt->nexpect; i++) {
        const pyc_magic *m = opt->expect[i].python;
        for (int level = 0; level <= 2; level++) {
            if (!(opt->expect[i].opts & (1u << level)))
                continue;
            if (opt->tree_prefix && pyc_magic_has_prefix(m)) {
                if (expect_in_prefix(s, e, m, level))
                    goto out;
                continue;
            }
            /* The cache path this interpreter would read (cache_from_source),
             * relative to the source's directory. */
            char *cache = pyc_cache_from_source(m, e->name, level, NULL, NULL);
            if (!cache)
                return emit_error(s, e->path, e->path_len, e->dirfd, e->name, errno,
                                  "map", e->depth);
            const char *cache_base = strrchr(cache, '/');
            int dirfd = e->dirfd;
            bool pycache = cache_base != NULL;
            cache_base = cache_base ? cache_base + 1 : cache;
            if (pycache) {
                if (pyc_fd == -2)
                    pyc_fd = openat(e->dirfd, "__pycache__",
                                    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                dirfd = pyc_fd;
            }
            pyc_verdict v;
            bool have = false;
            if (dirfd >= 0 || dirfd == AT_FDCWD) {
                struct stat st;
                if (fstatat(dirfd, cache_base, &st, 0) == 0) {
                    pyc_cache_name cn;
                    pyc_cache_name_parse(cache_base, pycache, false, &cn);
                    if (pyc_verdict_judge(dirfd, cache_base, &cn, e->dirfd, NULL,
                                          &opt->verdict, &v) == 0)
                        have = true;
                }
            }
            bool fresh = have && v.status == PYC_FRESH &&
                         v.judge && v.judge->word == m->word;
            if (!fresh) {
                size_t dlen = dir_part(e->path, e->path_len);
                const char *cpath = build_path(s, e->path, dlen, cache, strlen(cache), "");
                scan_item item = {
                    .event = SCAN_MISSING, .path = cpath ? cpath : e->path,
                    .path_len = cpath ? strlen(cpath) : e->path_len,
                    .dirfd = e->dirfd, .name = e->name, .type = e->type,
                    .verdict = have ? &v : NULL, .source_path = e->path,
                    .expect = m, .expect_opt = level, .depth = e->depth,
                };
                if (emit(s, &item)) {
                    free(cache);
                    goto out;
                }
            }
            free(cache);
        }
    }
out:
    if (pyc_fd >= 0)
        close(pyc_fd);
    return s->stopped;
}

/* ---- batching (struct batch) ---------------------------------------------------- */

static void more_walks(struct scan *s);

/* Whether the scan batches header reads at all: only a plain verdict that
 * needs nothing of the cache file but its first bytes. */
static bool scan_batches(const scan_options *opt)
{
    return opt->judge == SCAN_JUDGE_FULL && opt->no_sizes && !opt->verdict.deep &&
           !opt->sources_only;
}

/* Whether it batches sources for the command's prepare_batch hook instead:
 * every source the walk finds is delivered (want_sources), and nothing else
 * is delivered between them (no --expect, no prefix tree). */
static bool scan_batches_sources(const scan_options *opt)
{
    return opt->prepare_batch && opt->sources_only && opt->want_sources &&
           !opt->nexpect && !opt->prefix;
}

/* Whether E waits in the batch: a regular file (by d_type) named like a
 * cache file, in a directory (not a root given as a file). */
static bool batchable(struct scan *s, const pyc_walk_entry *e)
{
    struct batch *b = s->batch;
    if (!b || e->type != DT_REG || !e->parent)
        return false;
    size_t n = strlen(e->name);
    /* A source batch: regular files NAME.py (a symbolic link is a source
     * only if it leads to a regular file: on_file decides, unbatched). */
    if (b->sources)
        return n > 3 && memcmp(e->name + n - 3, ".py", 3) == 0;
    if (b->tried && !b->reader)
        return false;
    return n > 4 && (memcmp(e->name + n - 4, ".pyc", 4) == 0 ||
                     memcmp(e->name + n - 4, ".pyo", 4) == 0);
}

/* Adds E to the batch; false when it cannot wait (no reader here, out of
 * memory): the caller judges it at once, after flushing the batch. */
static bool batch_push(struct scan *s, const pyc_walk_entry *e)
{
    struct batch *b = s->batch;
    if (!b->sources && !b->tried) {
        /* In the walking thread: a reader belongs to the thread that made it. */
        b->tried = true;
        b->reader = headread_new();
        if (!b->reader)
            return false;
    }
    size_t nlen = strlen(e->name);
    if (grow_buffer(&b->arena, &b->cap, b->used + e->path_len + 1 + nlen + 1, 16384) != 0)
        return false;
    struct pending *p = &b->items[b->n++];
    p->e = *e;
    p->e.path = NULL;
    p->e.name = NULL;
    p->path_off = b->used;
    memcpy(b->arena + b->used, e->path, e->path_len);
    b->arena[b->used + e->path_len] = '\0';
    b->used += e->path_len + 1;
    p->name_off = b->used;
    memcpy(b->arena + b->used, e->name, nlen + 1);
    b->used += nlen + 1;
    b->dir = e->parent;
    return true;
}

/* Reads the headers of the pending entries and judges them, in order. Runs
 * while their directory's fd is open: on the directory's FILES_END, or when
 * the batch is full. */
/* Hands the pending sources to the command's prepare_batch hook, then
 * delivers them in order (on_file: prepare and the callback each). */
static void batch_flush_sources(struct scan *s, size_t n)
{
    struct batch *b = s->batch;
    scan_item items[SCAN_SOURCE_BATCH];
    if (n == 0 || n > SCAN_SOURCE_BATCH)
        return; /* never: batch_flush flushes 1..SCAN_SOURCE_BATCH */
    int depth_off = s->job ? s->job->depth : 0; /* as emit counts depths */
    for (size_t i = 0; i < n; i++) {
        const struct pending *p = &b->items[i];
        items[i] = (scan_item){
            .event = SCAN_SOURCE, .path = b->arena + p->path_off,
            .path_len = p->e.path_len, .dirfd = p->e.dirfd, .name = b->arena + p->name_off,
            .type = p->e.type, .depth = p->e.depth + depth_off,
        };
    }
    if (s->sh && __atomic_load_n(&s->sh->stopped, __ATOMIC_RELAXED))
        s->stopped = 1;
    if (!s->stopped && s->opt->prepare_batch(items, n, &s->prepared, s->ctx))
        more_walks(s);
    for (size_t i = 0; i < n && !s->stopped; i++) {
        pyc_walk_entry e = b->items[i].e;
        e.path = b->arena + b->items[i].path_off;
        e.name = b->arena + b->items[i].name_off;
        on_file(s, &e, NULL, -1);
    }
    if (!s->stopped)
        s->opt->prepare_batch(NULL, 0, &s->prepared, s->ctx);
    b->used = 0;
}

static void batch_flush(struct scan *s)
{
    struct batch *b = s->batch;
    if (!b || b->n == 0)
        return;
    size_t n = b->n;
    b->n = 0;
    if (b->sources) {
        batch_flush_sources(s, n);
        return;
    }
    const char *names[HEADREAD_BATCH];
    for (size_t i = 0; i < n; i++)
        names[i] = b->arena + b->items[i].name_off;
    if (b->cold && !s->stopped)
        prefetch_heads(b->items[0].e.dirfd, names, n, HEADREAD_LEN);
    bool read = !s->stopped &&
                headread_run(b->reader, b->items[0].e.dirfd, names, n, b->heads, b->res) == 0;
    if (read) {
        size_t need_wait = 0;
        for (size_t i = 0; i < n; i++)
            need_wait += b->res[i] == -EAGAIN;
        b->cold = prefetch_cold(n, need_wait);
        if (b->cold)
            more_walks(s);
    }
    if (!read && !s->stopped) {
        /* The ring failed: this batch and every later file the plain way;
         * the heads stay untouched until the reader is freed. */
        headread_free(b->reader);
        b->reader = NULL;
    }
    for (size_t i = 0; i < n && !s->stopped; i++) {
        pyc_walk_entry e = b->items[i].e;
        e.path = b->arena + b->items[i].path_off;
        e.name = b->arena + b->items[i].name_off;
        on_file(s, &e, read ? b->heads[i] : NULL, read ? b->res[i] : -1);
    }
    b->used = 0;
}

/* After a walk: a walk that completed flushed its last batch on the last
 * FILES_END; one that stopped (or failed) leaves entries nobody wants. */
static void batch_discard(struct scan *s)
{
    if (s->batch) {
        s->batch->n = 0;
        s->batch->used = 0;
    }
}

static int queue_job(struct scan *s, const pyc_walk_entry *e);
static bool hand_over(const struct scan *s, const pyc_walk_entry *e);

static pyc_walk_action on_entry(const pyc_walk_entry *e, void *ctx)
{
    struct scan *s = ctx;
    if (s->sh && __atomic_load_n(&s->sh->stopped, __ATOMIC_RELAXED))
        s->stopped = 1;
    if (s->stopped)
        return PYC_WALK_STOP;
    if (e->event == PYC_WALK_FILES_END) {
        batch_flush(s);
        return s->stopped ? PYC_WALK_STOP : PYC_WALK_CONTINUE;
    }
    progress(s);
    if (e->event == PYC_WALK_FILE && batchable(s, e)) {
        if (s->batch->n && s->batch->dir != e->parent)
            batch_flush(s); /* cannot happen: FILES_END came between */
        if (!s->stopped && batch_push(s, e)) {
            if (s->batch->n == (s->batch->sources ? SCAN_SOURCE_BATCH : HEADREAD_BATCH))
                batch_flush(s);
            return s->stopped ? PYC_WALK_STOP : PYC_WALK_CONTINUE;
        }
    }
    /* Anything else is handled after what waits, so items keep the walk's
     * order. */
    batch_flush(s);
    if (s->stopped)
        return PYC_WALK_STOP;
    switch (e->event) {
    case PYC_WALK_FILES_END:
        break;
    case PYC_WALK_ERROR:
        /* A directory handed over that vanished before its walk began is
         * skipped, as the walk skips any entry that vanished since
         * getdents: it is no root the user named. */
        if (s->job && e->depth == 0 && e->error == ENOENT)
            break;
        /* No prefix subtree for a PATH: nothing of it was ever cached
         * there (cache_from_source's directories are made on the first
         * write). */
        if (s->prefix_mapped && e->depth == 0 && !s->job &&
            (e->error == ENOENT || e->error == ENOTDIR))
            break;
        emit_error(s, e->path, e->path_len, e->dirfd, e->name, e->error,
                   e->error_op ? e->error_op : "read", e->depth);
        break;
    case PYC_WALK_FILE:
        if (on_file(s, e, NULL, -1))
            break;
        if (s->opt->nexpect && !s->opt->prefix && !is_pycache_dir(s, e->parent))
            check_expect(s, e);
        break;
    case PYC_WALK_DIR_PRE:
        if (e->depth == 0 && s->job) {
            /* A directory handed over: still the one the first walk found
             * (it was opened without following links: a swap for a link
             * came as a FILE entry, a swap for another directory is here). */
            s->root_is_pycache = false;
            if (e->dev != s->job->dev || e->ino != s->job->ino) {
                emit_error(s, e->path, e->path_len, e->dirfd, e->name, ESTALE, "open",
                           e->depth);
                return PYC_WALK_PRUNE;
            }
        } else if (e->depth == 0) {
            s->root_is_pycache = !s->opt->prefix && really_pycache(e->path);
        } else if (s->opt->tree_prefix_inside && e->dev == s->opt->tree_prefix_dev &&
                   e->ino == s->opt->tree_prefix_ino) {
            /* The prefix directory inside the tree: its entries are the
             * prefix walk's (named NAME.TAG.pyc outside any __pycache__,
             * this walk would take them for legacy sourceless files). */
            return PYC_WALK_PRUNE;
        } else if (hand_over(s, e)) {
            /* Another thread walks it. */
            if (queue_job(s, e) == 0)
                return PYC_WALK_PRUNE;
        }
        break;
    case PYC_WALK_DIR_POST:
        if (!s->opt->prefix && names_pycache(e->name)) {
            scan_item item = {
                .event = SCAN_PYCACHE_POST, .path = e->path, .path_len = e->path_len,
                .dirfd = e->dirfd, .name = e->name, .type = DT_DIR, .depth = e->depth,
            };
            emit(s, &item);
        }
        /* The source-stat cache belongs to a directory now finished. */
        if (e->depth >= 0)
            source_cache_reset(&s->sources, NULL);
        break;
    }
    return s->stopped ? PYC_WALK_STOP : PYC_WALK_CONTINUE;
}

void scan_default_options(scan_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->walk.skip_vcs = true;
    opt->walk.skip_node_modules = true;
    opt->walk.skip_venvs = true;
    /* $PYTHONPYCACHEPREFIX is where CPython puts caches, but the tree
     * commands judge __pycache__ trees unless --prefix is given: a user who
     * exported it for one project should not have every check look
     * elsewhere silently. */
}

char *scan_prefix_root(const char *prefix, const char *path)
{
    size_t plen = strlen(prefix);
    while (plen > 1 && prefix[plen - 1] == '/')
        plen--;
    if (!path)
        return strndup(prefix, plen);
    /* A path that does not exist has no caches to visit; keep it as given
     * so the walk reports it. */
    char *abs = realpath(path, NULL);
    if (!abs)
        abs = strdup(path);
    if (!abs)
        return NULL;
    size_t al = strlen(abs);
    char *root = malloc(plen + al + 2);
    if (root) {
        memcpy(root, prefix, plen);
        size_t k = plen;
        if (abs[0] != '/')
            root[k++] = '/';
        memcpy(root + k, abs, al + 1);
    }
    free(abs);
    return root;
}

/* ---- roots ----------------------------------------------------------------------------
 *
 * What the walk starts from: each PATH as given (a directory is walked, a
 * file judged alone), except
 *   - in prefix mode, a PATH stands for its subtree of the prefix tree
 *     (scan_prefix_root), or the whole prefix when there is none;
 *   - a source NAME.py stands for its caches, found by name: NAME.*.pyc
 *     (every tag and level, temp files too) in its __pycache__ (prefix
 *     mode: in its directory's prefix subtree), and the legacy NAME.pyc and
 *     NAME.pyo beside it; a __pycache__ they were found in is remembered,
 *     for one SCAN_PYCACHE_POST after the walk;
 *   - a directory among the last opt->listed PATHS (from -i lists) is
 *     dropped. */
struct roots {
    char **v;          /* malloc'd strings */
    size_t n, cap;
    char **posts;      /* source directories whose __pycache__ held caches
                          of a source PATH ("" for the current one) */
    size_t nposts, posts_cap;
};

static int roots_push(char ***v, size_t *n, size_t *cap, char *s)
{
    if (!s)
        return -1;
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        char **nv = realloc(*v, ncap * sizeof *nv);
        if (!nv) {
            free(s);
            return -1;
        }
        *v = nv;
        *cap = ncap;
    }
    (*v)[(*n)++] = s;
    return 0;
}

static void roots_free(struct roots *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i]);
    for (size_t i = 0; i < r->nposts; i++)
        free(r->posts[i]);
    free(r->v);
    free(r->posts);
    memset(r, 0, sizeof *r);
}

/* DIR + "/" + NAME (DIR "" : NAME alone). */
static char *join(const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    char *p = malloc(dl + nl + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, dl);
    size_t k = dl;
    if (dl && dir[dl - 1] != '/')
        p[k++] = '/';
    memcpy(p + k, name, nl + 1);
    return p;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the entries of directory LISTED (display path SHOWN) whose cache name
 * has the stem STEM (STEM_LEN bytes), sorted. Returns how many were added,
 * -1 out of memory. A directory that cannot be listed adds nothing: the
 * source simply has no caches there. */
static int add_stem_entries(struct roots *r, const char *listed, const char *shown,
                            bool in_pycache, bool in_prefix, const char *stem,
                            size_t stem_len)
{
    DIR *d = opendir(listed);
    if (!d)
        return 0;
    size_t first = r->n;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        pyc_cache_name cn;
        if (pyc_cache_name_parse(de->d_name, in_pycache, in_prefix, &cn) == PYC_KIND_NONE ||
            cn.stem_len != stem_len || memcmp(de->d_name, stem, stem_len) != 0)
            continue;
        if (roots_push(&r->v, &r->n, &r->cap, join(shown, de->d_name)) != 0) {
            rc = -1;
            break;
        }
    }
    closedir(d);
    if (rc < 0)
        return -1;
    qsort(r->v + first, r->n - first, sizeof *r->v, by_string);
    return (int)(r->n - first);
}

/* PATH is a source file (NAME.py, a regular file or a link to one). */
static bool source_root(const char *path)
{
    size_t n = strlen(path);
    struct stat st;
    return n > 3 && memcmp(path + n - 3, ".py", 3) == 0 && path[n - 4] != '/' &&
           stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The caches of the source PATH (see above). */
static int expand_source(struct roots *r, const scan_options *opt, const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t stem_len = strlen(base) - 3;
    char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup("");
    if (!dir)
        return -1;
    int rc = 0;
    if (opt->prefix) {
        char *sub = scan_prefix_root(opt->prefix, *dir ? dir : ".");
        rc = sub ? add_stem_entries(r, sub, sub, false, true, base, stem_len) : -1;
        free(sub);
    } else {
        char *pyc = join(dir, "__pycache__");
        rc = pyc ? add_stem_entries(r, pyc, pyc, true, false, base, stem_len) : -1;
        free(pyc);
        if (rc > 0 && roots_push(&r->posts, &r->nposts, &r->posts_cap, strdup(dir)) != 0)
            rc = -1;
        for (const char *suffix = "c"; rc >= 0 && suffix; suffix = *suffix == 'c' ? "o" : NULL) {
            char name[NAME_MAX + 1];
            struct stat st;
            if (snprintf(name, sizeof name, "%.*sy%s", (int)(strlen(base) - 1), base,
                         suffix) >= (int)sizeof name)
                continue;
            char *legacy = join(dir, name);
            if (!legacy)
                rc = -1;
            else if (lstat(legacy, &st) == 0)
                rc = roots_push(&r->v, &r->n, &r->cap, legacy);
            else
                free(legacy);
        }
    }
    free(dir);
    return rc < 0 ? -1 : 0;
}

static int build_roots(struct roots *r, const scan_options *opt, char *const *paths,
                       size_t npaths)
{
    memset(r, 0, sizeof *r);
    if (npaths == 0) {
        char *root = opt->prefix ? scan_prefix_root(opt->prefix, NULL) : strdup(".");
        return roots_push(&r->v, &r->n, &r->cap, root);
    }
    size_t listed_from = opt->listed < npaths ? npaths - opt->listed : 0;
    for (size_t i = 0; i < npaths; i++) {
        struct stat st;
        if (i >= listed_from && stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode))
            continue;
        int rc;
        /* A command that wants the sources themselves (compile) gets a
         * source root as the source. */
        if (!opt->want_sources && !opt->sources_only && source_root(paths[i]))
            rc = expand_source(r, opt, paths[i]);
        else if (opt->prefix)
            rc = roots_push(&r->v, &r->n, &r->cap, scan_prefix_root(opt->prefix, paths[i]));
        else
            rc = roots_push(&r->v, &r->n, &r->cap, strdup(paths[i]));
        if (rc != 0) {
            roots_free(r);
            errno = ENOMEM;
            return -1;
        }
    }
    return 0;
}

/* After the walk: one SCAN_PYCACHE_POST for each __pycache__ that held the
 * caches of a source given as a PATH. */
static void emit_posts(struct scan *s, const struct roots *r)
{
    for (size_t i = 0; i < r->nposts && !s->stopped; i++) {
        const char *dir = *r->posts[i] ? r->posts[i] : ".";
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            continue;
        char *path = join(r->posts[i], "__pycache__");
        if (path) {
            scan_item item = {
                .event = SCAN_PYCACHE_POST, .path = path, .path_len = strlen(path),
                .dirfd = fd, .name = "__pycache__", .type = DT_DIR, .depth = 0,
            };
            emit(s, &item);
            free(path);
        }
        close(fd);
    }
}

/* ---- parallel walk ----------------------------------------------------------------
 *
 * The work of a scan is syscalls (getdents64, a stat per source, an open +
 * pread + close per cache file), so on a machine with several cores a scan
 * runs several walks at once, in the manner of bfs's parallel I/O. The first
 * walk goes over the roots as usual but hands each directory it meets at
 * depth 1 (except __pycache__, which belongs with its sources) to a queue,
 * instead of entering it; every thread, the first one included once its
 * walk is done, takes directories from the queue and walks each as a root.
 * While a thread waits with nothing queued, any walk also hands over the
 * next directory it meets (down to HAND_OVER_DEPTH), so one large subtree
 * (Lib/test) does not keep one thread busy alone.
 *
 * A handed-over directory never leads the scan out of the tree. One at
 * depth 1 is queued by its path, the root plus one name, opened with
 * O_NOFOLLOW, and must still be the directory (device, inode) the walk saw.
 * A deeper one is opened by the walk that met it, relative to its parent's
 * fd (O_NOFOLLOW, device and inode checked), and the fd itself is queued
 * (pyc_walk_fd): a path with more components could lead through a
 * directory swapped for a link since. (Deeper directories queued by path
 * were tried first, and test_concurrency's mutator, which swaps packages
 * and __pycache__ for links out of the tree, saw prune remove a file
 * outside it about once in eight runs with four walks.) The
 * skip rules were applied when a walk met it (they do not apply to roots);
 * its items' depths count from the scan's root all the same. The command's
 * callback is serialised (emit), so commands see one item at a time, in an
 * order that differs from run to run. Its prepare hook is not: it runs
 * before, unlocked, in the walking thread — compile judges there, clean and
 * prune remove there (a removal waits on the disk, remove.c: under the lock
 * the walks would take turns waiting instead of overlapping). */

static void scan_init(struct scan *s, const scan_options *opt, scan_fn *fn, void *ctx)
{
    memset(s, 0, sizeof *s);
    s->opt = opt;
    s->fn = fn;
    s->ctx = ctx;
    s->mapped_fd = -1;
    s->root_parent_fd = -1;
    s->root_file_dirfd = -1;
    /* Without it (out of memory) every file is read on its own. */
    if (scan_batches(opt) || scan_batches_sources(opt)) {
        s->batch = calloc(1, sizeof *s->batch);
        if (s->batch)
            s->batch->sources = !scan_batches(opt);
    }
}

static void scan_release(struct scan *s)
{
    if (s->prepared && s->opt->prepare_free)
        s->opt->prepare_free(s->prepared, s->ctx);
    s->prepared = NULL;
    source_cache_free(&s->sources);
    if (s->mapped_fd >= 0)
        close(s->mapped_fd);
    if (s->root_parent_fd >= 0)
        close(s->root_parent_fd);
    if (s->root_file_dirfd >= 0)
        close(s->root_file_dirfd);
    free(s->mapped_dir);
    free(s->prefix_root);
    free(s->expect_dir_key);
    free(s->expect_dir_abs);
    free(s->buf);
    if (s->batch) {
        headread_free(s->batch->reader);
        free(s->batch->arena);
        free(s->batch);
    }
}

/* Whether to hand directory E (at its DIR_PRE) to another thread:
 *   - each one at depth 1 while the first walk splits the tree;
 *   - below that, in any walk, one while a thread waits with nothing
 *     queued for it: a directory much larger than the others (Lib/test
 *     holds 45% of the stdlib's sources) would otherwise keep one thread
 *     busy long after the others ran out of work. Down to HAND_OVER_DEPTH
 *     only, so that in a chain of single directories the threads do not
 *     hand every level to each other.
 * A __pycache__ stays with the walk of its source directory. */
#define HAND_OVER_DEPTH 8
static bool hand_over(const struct scan *s, const pyc_walk_entry *e)
{
    int depth = e->depth + (s->job ? s->job->depth : 0);
    if (!s->sh || e->depth < 1 || depth > HAND_OVER_DEPTH ||
        strcmp(e->name, "__pycache__") == 0)
        return false;
    if (s->splitting && e->depth == 1)
        return true;
    return __atomic_load_n(&s->sh->wanted, __ATOMIC_RELAXED) != 0;
}

/* Updates sh->wanted; the lock is held. */
static void note_wanted(struct shared *sh)
{
    __atomic_store_n(&sh->wanted, sh->waiting > sh->n - sh->head, __ATOMIC_RELAXED);
}

/* Queues directory E for another walk. One found at depth 1 of the scan's
 * root is queued by its path (the root plus one name: O_NOFOLLOW covers
 * it), so a wide tree does not hold an fd per queued directory; a deeper
 * one is opened here, relative to its parent's fd, and queued open: a path
 * with more components could lead through a directory swapped for a link
 * since (test_concurrency's mutator swaps packages for links out of the
 * tree). Those are queued only while a thread waits for work, so few fds
 * are ever held in the queue. 0, or -1 when it cannot be queued: the walk
 * enters it itself. */
static int queue_job(struct scan *s, const pyc_walk_entry *e)
{
    struct shared *sh = s->sh;
    int depth = e->depth + (s->job ? s->job->depth : 0);
    int fd = -1;
    if (depth > 1) {
        struct stat st;
        fd = openat(e->dirfd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return -1;
        if (fstat(fd, &st) != 0 || st.st_dev != e->dev || st.st_ino != e->ino) {
            close(fd);
            return -1;
        }
    }
    char *path = strndup(e->path, e->path_len);
    if (!path)
        goto fail;
    pthread_mutex_lock(&sh->lock);
    if (sh->n == sh->cap) {
        size_t cap = sh->cap ? sh->cap * 2 : 256;
        struct job *jobs = realloc(sh->jobs, cap * sizeof *jobs);
        if (!jobs) {
            pthread_mutex_unlock(&sh->lock);
            goto fail;
        }
        sh->jobs = jobs;
        sh->cap = cap;
    }
    sh->jobs[sh->n++] = (struct job){path, fd, e->dev, e->ino, depth};
    note_wanted(sh);
    pthread_cond_signal(&sh->more);
    pthread_mutex_unlock(&sh->lock);
    return 0;
fail:
    free(path);
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Walks queued directories until the queue is empty and no walk is left
 * that could queue more (or the scan was stopped). */
static void drain_jobs(struct scan *s)
{
    struct shared *sh = s->sh;
    pyc_walk_options wopt = s->opt->walk;
    wopt.roots_nofollow = true;
    wopt.files_end = s->batch != NULL;
    for (;;) {
        pthread_mutex_lock(&sh->lock);
        while (sh->head == sh->n && (sh->producing || sh->walking) && !sh->stopped) {
            sh->waiting++;
            note_wanted(sh);
            pthread_cond_wait(&sh->more, &sh->lock);
            sh->waiting--;
        }
        if (sh->head == sh->n || sh->stopped) {
            note_wanted(sh);
            pthread_mutex_unlock(&sh->lock);
            return;
        }
        struct job job = sh->jobs[sh->head++];
        sh->walking++;
        note_wanted(sh);
        pthread_mutex_unlock(&sh->lock);

        const char *root = job.path;
        s->job = &job;
        s->stopped = 0;
        int rc = job.fd >= 0 ? pyc_walk_fd(job.fd, job.path, &wopt, on_entry, s)
                             : pyc_walk(&root, 1, &wopt, on_entry, s);
        batch_discard(s);
        source_cache_reset(&s->sources, NULL);
        s->job = NULL;
        free(job.path);
        pthread_mutex_lock(&sh->lock);
        if (rc < 0) {
            sh->failed_errno = errno;
            sh->stopped = 1;
        }
        /* The last walk is done (or the scan stopped): whoever waits for
         * more can stop. */
        if ((--sh->walking == 0 && sh->head == sh->n) || sh->stopped)
            pthread_cond_broadcast(&sh->more);
        pthread_mutex_unlock(&sh->lock);
    }
}

/* The most walks a scan runs at once (scan_threads). */
#define SCAN_MAX_WALKS 8

struct worker {
    pthread_t thread;
    struct scan scan;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    drain_jobs(&w->scan);
    return NULL;
}

/* Starts one more walk, up to sh->most, when S's batch waited on the
 * device. A walk that waits for a disk read has no use for its core, and
 * one walk keeps at most one batch of reads in flight, so on a cold cache
 * the number of walks follows the wait rather than the core count: each
 * mostly-cold batch adds a walk, which takes a directory from the queue
 * (it waits for work, so the others hand directories over). Measured on a
 * 2-core VM, 32k pycs, page cache dropped: check -q 1.7 s with 2 walks,
 * 1.0 s with 8 and the first-page hints (prefetch.h); find's stat walk
 * 1.5-2.1 s. A warm scan never gets here. */
static void start_walk(struct shared *sh, const struct scan *s)
{
    struct worker *w = &sh->workers[sh->started];
    scan_init(&w->scan, s->opt, s->fn, s->ctx);
    w->scan.sh = sh;
    if (pthread_create(&w->thread, NULL, worker_main, w) == 0) {
        __atomic_store_n(&sh->started, sh->started + 1, __ATOMIC_RELAXED);
    } else {
        scan_release(&w->scan);
        /* No thread to be had: stop asking. */
        __atomic_store_n(&sh->most, sh->started, __ATOMIC_RELAXED);
    }
}

static void more_walks(struct scan *s)
{
    struct shared *sh = s->sh;
    if (!sh || __atomic_load_n(&sh->started, __ATOMIC_RELAXED) >=
                   __atomic_load_n(&sh->most, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&sh->lock);
    if (sh->started < sh->most && !sh->closed && !sh->stopped)
        start_walk(sh, s);
    pthread_mutex_unlock(&sh->lock);
}

/* How many walks to run at once (and *MOST: how many more_walks may grow
 * it to when the reads wait on the device: SCAN_MAX_WALKS, unless
 * PYCACHE_THREADS says otherwise or the fd limit is low):
 *   - one per core, at most 4: the scan is bound by the kernel's directory
 *     and inode caches beyond that;
 *   - SCAN_MAX_WALKS whatever the core count when the command's prepare
 *     hook waits on the device (opt->waits_on_device): clean's and prune's
 *     unlinkat sleeps until ext4 has discarded the file's blocks on a disk
 *     mounted -o discard, the walks mostly sleep, and those waits overlap.
 *     Measured on this 2-core machine (fresh copy of the bench corpus, page
 *     cache dropped, alternating rounds): clean took 5.7 s with 2 walks,
 *     4.1 s with 4 (2026-12-05); then, on a faster disk, 1.76-2.08 s with
 *     4 walks and 1.68-1.70 s with 8, the discards in flight 2.8 -> 5.4
 *     (/proc/diskstats; beyond that the device's ~52k discards/s is the
 *     limit: 16 walks gave 1.54-1.65 s). On a tmpfs, where unlinkat never
 *     waits, 8 walks cost 2-3% (0.205 s against 0.201 s);
 *   - what PYCACHE_THREADS says, at most SCAN_MAX_WALKS;
 *   - fewer when the fd limit is low: each walk may keep up to 64 directory
 *     fds, and gets 256 of the limit;
 *   - one for a prefix tree. */
static int scan_threads(const scan_options *opt, int *most)
{
    const char *env = getenv("PYCACHE_THREADS");
    long n, cold = SCAN_MAX_WALKS;
    if (env && *env) {
        n = cold = strtol(env, NULL, 10);
    } else {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n > 4)
            n = 4;
        if (opt->waits_on_device)
            n = SCAN_MAX_WALKS;
    }
    *most = 1;
    if (n < 1 || opt->prefix)
        return 1;
    if (n > SCAN_MAX_WALKS)
        n = SCAN_MAX_WALKS;
    if (cold < n)
        cold = n;
    if (cold > SCAN_MAX_WALKS)
        cold = SCAN_MAX_WALKS;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        if (rl.rlim_cur < (rlim_t)(256 * n))
            n = (long)(rl.rlim_cur / 256);
        if (rl.rlim_cur < (rlim_t)(256 * cold))
            cold = (long)(rl.rlim_cur / 256);
    }
    if (n < 1)
        n = 1;
    *most = cold < n ? (int)n : (int)cold;
    return (int)n;
}

/* With sources_only, nothing inside a __pycache__ directory is delivered
 * (its files are caches or foreign), so the walk does not enter one at all:
 * an openat, a fstat, a pyvenv.cfg fstatat, two getdents64 and a close
 * spared per directory. Its
 * subdirectories go too, as compileall's _walk_dir skips every entry named
 * __pycache__ (3.2+). A root is still walked (the walk's name rules never
 * apply to roots). OPT as given otherwise, or COPY with IGNORE (room for
 * the --ignore names and two more) as its ignore list. */
static const scan_options *skip_pycache_dirs(const scan_options *opt, scan_options *copy,
                                              const char **ignore)
{
    if (!opt->sources_only || opt->nexpect || opt->prefix)
        return opt;
    size_t n = 0;
    for (const char *const *p = opt->walk.ignore_names; p && *p && n < SCAN_MAX_IGNORES; p++)
        ignore[n++] = *p;
    ignore[n++] = "__pycache__";
    ignore[n] = NULL;
    *copy = *opt;
    copy->walk.ignore_names = ignore;
    return copy;
}

/* ---- archives (engine/archive.c) ------------------------------------------------ */

struct archive_relay {
    struct scan *s;
};

static int on_archive_item(const archive_item *ai, void *ctx)
{
    struct archive_relay *relay = ctx;
    const char *slash = ai->member ? strrchr(ai->member, '/') : NULL;
    scan_item item = {
        .path = ai->path, .path_len = strlen(ai->path), .dirfd = -1,
        .name = ai->member ? (slash ? slash + 1 : ai->member) : ai->path,
        .type = DT_REG, .verdict = ai->verdict, .source_path = ai->source_path,
        .expect = ai->expect, .expect_opt = ai->expect_opt, .error = ai->error,
        .error_op = ai->error_op, .archive = ai->archive, .member = ai->member,
        .layer = ai->layer,
        .error_detail = ai->error_detail,
    };
    switch (ai->event) {
    case ARCHIVE_CACHE:
        item.event = SCAN_CACHE;
        break;
    case ARCHIVE_FOREIGN:
        item.event = SCAN_FOREIGN;
        break;
    case ARCHIVE_MISSING:
        item.event = SCAN_MISSING;
        break;
    case ARCHIVE_ERROR:
        item.event = SCAN_ERROR;
        break;
    case ARCHIVE_DIRECTORY: /* archive_fix only */
        return 0;
    }
    return emit(relay->s, &item);
}

/* Judges the archive PATH member by member (or, for a command that cannot
 * handle archives, says so). Returns non-zero when the scan was stopped. */
static int scan_archive(struct scan *s, const char *path)
{
    const scan_options *opt = s->opt;
    if (!opt->archives) {
        scan_item item = {
            .event = SCAN_ERROR, .path = path, .path_len = strlen(path), .dirfd = AT_FDCWD,
            .name = path, .error = EOPNOTSUPP, .error_op = "work on archive",
            .error_detail = "check, stats, inspect, diff and verify read an archive; convert, "
                            "clean, prune and normalize (-o OUT or --in-place) and compile "
                            "(--output OUT or --in-place) write a fixed one",
        };
        return emit(s, &item);
    }
    const pyc_magic *expect[16];
    unsigned opts[16];
    size_t n = opt->nexpect < 16 ? opt->nexpect : 16;
    for (size_t i = 0; i < n; i++) {
        expect[i] = opt->expect[i].python;
        opts[i] = opt->expect[i].opts;
    }
    struct archive_relay relay = {s};
    archive_scan(path, opt->archives, &opt->verdict, expect, opts, n, NULL,
                 on_archive_item, &relay);
    return s->stopped;
}

static int scan_walk(char *const *paths, size_t npaths, const scan_options *given,
                     scan_fn *fn, void *ctx)
{
    scan_options pruned;
    const char *ignore[SCAN_MAX_IGNORES + 2];
    const scan_options *opt = skip_pycache_dirs(given, &pruned, ignore);
    struct scan s;
    scan_init(&s, opt, fn, ctx);
    s.main_thread = true;
    int rc = -1;

    struct roots built;
    memset(&built, 0, sizeof built);
    char **kept = NULL;
    if (opt->no_roots) {
        rc = 0;
        goto out;
    }
    if (opt->prefix) {
        size_t plen = strlen(opt->prefix);
        while (plen > 1 && opt->prefix[plen - 1] == '/')
            plen--;
        s.prefix_root = strndup(opt->prefix, plen);
        if (!s.prefix_root)
            goto out;
        s.prefix_len = plen;
        /* The roots are the prefix subtrees of the paths: one that does
         * not exist holds no caches (on_entry). */
        s.prefix_mapped = npaths > 0;
    }
    /* Archives among the paths given (not those of -i lists), recognised
     * by content, are judged here, before the walk of the others. */
    size_t listed_from = opt->listed < npaths ? npaths - opt->listed : 0;
    if (!opt->prefix && npaths > 0) {
        kept = calloc(npaths, sizeof *kept);
        if (!kept)
            goto out;
        size_t nkept = 0;
        for (size_t i = 0; i < npaths; i++) {
            if (i < listed_from && archive_sniff(paths[i]) == 1) {
                if (scan_archive(&s, paths[i])) {
                    rc = 1;
                    goto out;
                }
                continue;
            }
            kept[nkept++] = paths[i];
        }
        if (nkept == 0) {
            rc = 0;
            goto out;
        }
        paths = kept;
        npaths = nkept;
    }
    if (build_roots(&built, opt, paths, npaths) != 0)
        goto out;
    char *const *roots = built.v;
    size_t nroots = built.n;
    if (nroots == 0) {
        rc = 0;
        goto posts;
    }

    pyc_walk_options wopt = opt->walk;
    wopt.files_end = s.batch != NULL;
    int most_walks;
    int nthreads = scan_threads(opt, &most_walks);
    if (nthreads == 1) {
        rc = pyc_walk((const char *const *)roots, nroots, &wopt, on_entry, &s);
        batch_discard(&s);
        if (rc >= 0 && s.stopped)
            rc = 1;
        goto posts;
    }

    struct shared sh;
    memset(&sh, 0, sizeof sh);
    /* Adaptive where there is one: the callback holds the lock for
     * microseconds (platform/mutex.h). */
    psys_mutex_init_brief(&sh.lock);
    pthread_cond_init(&sh.more, NULL);
    sh.producing = true;
    s.sh = &sh;
    s.splitting = true;

    struct worker workers[SCAN_MAX_WALKS - 1];
    sh.workers = workers;
    sh.most = most_walks - 1;
    pthread_mutex_lock(&sh.lock);
    while (sh.started < nthreads - 1 && sh.started < sh.most)
        start_walk(&sh, &s);
    pthread_mutex_unlock(&sh.lock);
    rc = pyc_walk((const char *const *)roots, nroots, &wopt, on_entry, &s);
    batch_discard(&s);
    if (rc < 0) {
        pthread_mutex_lock(&sh.lock);
        sh.failed_errno = errno;
        sh.stopped = 1;
        pthread_mutex_unlock(&sh.lock);
    }
    pthread_mutex_lock(&sh.lock);
    sh.producing = false;
    pthread_cond_broadcast(&sh.more);
    pthread_mutex_unlock(&sh.lock);
    s.splitting = false;
    drain_jobs(&s);
    pthread_mutex_lock(&sh.lock);
    sh.closed = true; /* the walks still running start no more */
    int started = sh.started;
    pthread_mutex_unlock(&sh.lock);
    for (int i = 0; i < started; i++) {
        pthread_join(workers[i].thread, NULL);
        scan_release(&workers[i].scan);
    }
    for (size_t i = sh.head; i < sh.n; i++) {
        free(sh.jobs[i].path);
        if (sh.jobs[i].fd >= 0)
            close(sh.jobs[i].fd);
    }
    free(sh.jobs);
    pthread_cond_destroy(&sh.more);
    pthread_mutex_destroy(&sh.lock);
    if (sh.failed_errno) {
        errno = sh.failed_errno;
        rc = -1;
    } else {
        rc = sh.stopped ? 1 : 0;
    }
    s.sh = NULL;

posts:
    if (rc == 0) {
        emit_posts(&s, &built);
        if (s.stopped)
            rc = 1;
    }
out:
    if (s.progress_shown)
        fputs("\r\033[K", stderr);
    roots_free(&built);
    free(kept);
    scan_release(&s);
    return rc;
}

/* A prefix in force (opt->prefix without prefix_only) is where 3.8+ reads
 * and writes, and only there: importlib's cache_from_source (3.8+) maps a
 * source to sys.pycache_prefix + its absolute directory when the prefix is
 * set, and the FileLoader never looks in __pycache__ then; 2.7-3.7 know no
 * prefix and keep using __pycache__ (and legacy files). So the scan is two
 * walks, one after the other, each the walk it always was: the paths with
 * no prefix (everything in __pycache__ and beside the sources, --expect
 * looking for 3.8+ caches in the prefix), then the prefix tree's entries
 * for the paths. */
int scan_run(char *const *paths, size_t npaths, const scan_options *opt,
             scan_fn *fn, void *ctx)
{
    if (!opt->prefix || opt->prefix_only)
        return scan_walk(paths, npaths, opt, fn, ctx);
    scan_options tree = *opt;
    tree.prefix = NULL;
    tree.tree_prefix = opt->prefix;
    struct stat st;
    if (stat(opt->prefix, &st) == 0 && S_ISDIR(st.st_mode)) {
        tree.tree_prefix_inside = true;
        tree.tree_prefix_dev = st.st_dev;
        tree.tree_prefix_ino = st.st_ino;
    }
    int rc = scan_walk(paths, npaths, &tree, fn, ctx);
    /* Sources (compile's sources_only) are never in the prefix tree. */
    if (rc != 0 || opt->sources_only)
        return rc;
    static char dot[] = ".";
    static char *const dot_root[] = {dot};
    scan_options pfx = *opt;
    pfx.nexpect = 0;
    pfx.expect = NULL;
    return npaths ? scan_walk(paths, npaths, &pfx, fn, ctx)
                  : scan_walk(dot_root, 1, &pfx, fn, ctx);
}
