/*
 * walk.c — the tree engine every command rides on (include/pycache.h, 9).
 *
 * A depth-first walk modelled on tavianator/bfs (src/bftw.c, src/dir.c): every
 * directory is opened relative to its parent's fd, entries come from the raw
 * getdents64 syscall into one 64 KiB buffer, d_type spares a stat per entry,
 * errors are delivered to the callback as entries and the walk goes on. bfs
 * walks breadth-first; we walk depth-first because the commands need two
 * things from the order:
 *
 *   - a directory's files are delivered together, right after its DIR_PRE and
 *     before any of its subdirectories, so a command can cache per directory
 *     (the sources beside a __pycache__ are stat'ed once);
 *   - DIR_POST comes after everything below, with the parent's fd, so `clean`
 *     can unlinkat(dirfd, name, AT_REMOVEDIR) a __pycache__ it just emptied.
 *
 * Order inside a directory D: DIR_PRE(D); every non-directory entry of D in
 * getdents order (FILE, or ERROR when a DT_UNKNOWN entry cannot be stat'ed);
 * FILES_END(D) if the options ask for it (D's fd still open); then each
 * subdirectory in getdents order (its DIR_PRE ... DIR_POST, or an ERROR when
 * it cannot be opened); DIR_POST(D). Nothing is sorted.
 *
 * Design: one frame per depth (struct pyc_walk_dir), allocated the first time
 * the walk reaches that depth and reused afterwards, so the steady state does
 * no malloc at all. While a directory is read, its files are delivered
 * straight from the getdents buffer (no copy) and only the names of its
 * subdirectories are appended to the frame's arena; the directory is read to
 * its end before the walk descends. So an ancestor needs no read position
 * (its fd can be closed), and memory is proportional to depth times the
 * subdirectory names of one directory per level — flat in the tree's size.
 * The display path lives in one growable buffer (never bounded by PATH_MAX):
 * a frame records the length of its own path, a child appends "/name" and
 * the parent's prefix stays intact; lengths are carried, never recomputed.
 *
 * Open fds. The root's fd stays open for the whole root; the others are
 * bounded by options->max_open_fds (default 64, at most half of
 * RLIMIT_NOFILE, at least 3). When a descent would exceed the bound, the
 * shallowest open ancestor (other than the root and the current directory)
 * is closed. Returning up to a closed directory reopens it with
 * openat(child_fd, "..") — one syscall whatever the depth — and checks that
 * (dev, ino) match what fstat said when it was first opened; if ".." cannot
 * be opened or is some other directory (the child was moved), it is reopened
 * by names from the nearest open ancestor (at worst the root), each step
 * O_NOFOLLOW|O_DIRECTORY and checked the same way; a mismatch there is
 * ESTALE. pyc_walk_dir_fd() reopens the same way for a callback; such an fd
 * stays in its frame (so it is valid at least until the callback returns,
 * and asking again is free) and the next descent closes any excess over the
 * bound. Climbing with ".." rather than always descending by names from the
 * root keeps the way back up O(1) per level: a 5000-level tree with 16 fds
 * costs about one extra openat per level, not depth squared over 16.
 *
 * Syscalls per directory (strace -c of a walk of /usr): one openat, one
 * fstat, getdents64 until it returns 0 (two for most directories), one
 * close; none per entry, except fstatat where d_type is DT_UNKNOWN. With
 * skip_venvs, a directory is read before its DIR_PRE (venv_marked), and the
 * two fstatat that ask for pyvenv.cfg and conda-meta are made only where
 * its listing cannot say they are absent: one that overflows the 64 KiB
 * buffer, or has a name that a lookup of either may find.
 *
 * Decisions (the brief left them open):
 *   - Skipped directories are never opened (name rules: skip_vcs,
 *     skip_node_modules, ignore_names) or are closed right after the fstat /
 *     fstatat that decides (one_file_system, skip_venvs), and nothing at all
 *     is delivered for them: no DIR_PRE, no DIR_POST, no entry.
 *     The options never apply to a root: a root the user names is walked.
 *   - A venv is a directory holding a regular file pyvenv.cfg (followed, as
 *     site.venv() tests it with os.path.isfile; Lib/site.py, 3.3+); a conda
 *     environment one holding a conda-meta directory (not followed).
 *   - An entry that vanishes between getdents and its use (openat/fstatat
 *     fail with ENOENT, getdents64 with ENOENT on a directory removed once
 *     opened) is skipped silently; so is a directory replaced by a
 *     non-directory or a symlink in that window (openat with O_NOFOLLOW |
 *     O_DIRECTORY fails with ENOTDIR or ELOOP): the walk delivers what it
 *     can still name. Every other failure is an ERROR entry.
 *   - A directory whose (dev, ino) equals an ancestor's (bind mount loop) is
 *     an ERROR entry with ELOOP and op "open"; it is not entered.
 *   - A directory that fails to read midway (getdents error) gets an ERROR
 *     entry (op "read") after the files read so far; its subdirectories read
 *     so far are still walked and its DIR_POST is still delivered: a DIR_PRE
 *     that was not pruned always gets its DIR_POST, unless the walk stops.
 *   - If a parent cannot be reopened when the walk returns to it, an ERROR
 *     entry (op "open") is delivered for it, its remaining subdirectories are
 *     skipped, and the DIR_POST of the child gets dirfd -1.
 *   - FILE entries carry d_ino and the device of their directory in ino and
 *     dev (free with getdents; the device is wrong for a mount point that is
 *     not a directory, which is harmless for the commands).
 */
#include "pycache.h"
#include "platform/dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* One getdents64 call fills at most this much; a directory is read in as many
 * batches as it needs (sys/dir.c; the portable reader needs no buffer). */
#define WALK_BUFSIZE PSYS_DIR_BUFSIZE
#define WALK_DEFAULT_FDS 64
#define WALK_MIN_FDS 3 /* the root, the current directory, a child */

#define WALK_OPEN_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

struct walk;

struct pyc_walk_dir {
    struct walk *walk;
    struct pyc_walk_dir *parent; /* NULL at the root */
    const char *name;   /* the root as given, or a name in parent's arena */
    size_t path_len;    /* length of this directory's path in walk->path */
    size_t prefix_len;  /* path_len plus the '/' its children get (if any) */
    int depth;
    int fd;             /* -1 while closed to respect the bound */
    dev_t dev;
    ino_t ino;
    /* Names of subdirectories still to visit, NUL-terminated, one after the
     * other; cursor is the next one. */
    char *names;
    size_t names_len, names_cap, cursor;
    bool read_ahead;    /* its entries are in walk->ahead (descend) */
};

struct walk {
    const pyc_walk_options *options;
    pyc_walk_fn *fn;
    void *ctx;

    struct pyc_walk_dir **frames; /* frames[depth], each allocated once */
    size_t nframes, frames_cap;
    int top;            /* depth of the current directory, -1 when none */
    int lowest_open;    /* no frame in [1, lowest_open) has an open fd */
    int nopen;
    int max_fds;
    dev_t root_dev;

    char *path;         /* the display path of the current entry */
    size_t path_cap;
    char *scratch;      /* pyc_walk_dir_path()'s answer */
    size_t scratch_cap;
    char *buf;          /* getdents64 batch */
    psys_dir ahead;     /* the reading of the frame marked read_ahead */
};

/* ---- small helpers ------------------------------------------------------- */

static int grow(char **p, size_t *cap, size_t need)
{
    size_t n = *cap ? *cap : 256;
    char *q;
    if (need <= *cap)
        return 0;
    while (n < need) {
        if (n > SIZE_MAX / 2) {
            errno = ENOMEM;
            return -1;
        }
        n *= 2;
    }
    q = realloc(*p, n);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

static void close_keep_errno(int fd)
{
    int e = errno;
    close(fd);
    errno = e;
}

/* Directories the options say never to enter, by name alone. */
static bool skipped_by_name(const pyc_walk_options *o, const char *name)
{
    if (o->skip_vcs &&
        (strcmp(name, ".git") == 0 || strcmp(name, ".hg") == 0 ||
         strcmp(name, ".svn") == 0 || strcmp(name, ".bzr") == 0 ||
         strcmp(name, "_darcs") == 0))
        return true;
    if (o->skip_node_modules && strcmp(name, "node_modules") == 0)
        return true;
    if (o->ignore_names) {
        /* Names or shell patterns ("build*"), matched as fnmatch(3) with no
         * flags: a leading dot is matched by '*' as any other byte, as
         * compileall -x's regex and git's pathspec globs would. */
        for (const char *const *p = o->ignore_names; *p; p++)
            if (fnmatch(*p, name, 0) == 0)
                return true;
    }
    return false;
}

/* The frame for DEPTH, allocated on first use. */
static struct pyc_walk_dir *frame_at(struct walk *w, int depth)
{
    size_t d = (size_t)depth;
    if (d >= w->frames_cap) {
        size_t n = w->frames_cap ? w->frames_cap * 2 : 16;
        struct pyc_walk_dir **f = realloc(w->frames, n * sizeof *f);
        if (!f)
            return NULL;
        w->frames = f;
        w->frames_cap = n;
    }
    while (w->nframes <= d) {
        struct pyc_walk_dir *dir = calloc(1, sizeof *dir);
        if (!dir)
            return NULL;
        dir->walk = w;
        dir->fd = -1;
        w->frames[w->nframes++] = dir;
    }
    return w->frames[d];
}

static void dir_close(struct walk *w, struct pyc_walk_dir *dir)
{
    if (dir->fd >= 0) {
        close_keep_errno(dir->fd);
        dir->fd = -1;
        w->nopen--;
    }
}

static void dir_set_fd(struct walk *w, struct pyc_walk_dir *dir, int fd)
{
    dir->fd = fd;
    w->nopen++;
    if (dir->depth >= 1 && dir->depth < w->lowest_open)
        w->lowest_open = dir->depth;
}

/* Closes the shallowest open ancestors (never the root, never the current
 * directory) until one more fd fits under the bound; ALL: close every one. */
static void evict(struct walk *w, bool all)
{
    int i;
    for (i = w->lowest_open; i < w->top; i++) {
        if (!all && w->nopen < w->max_fds)
            break;
        dir_close(w, w->frames[i]);
    }
    w->lowest_open = i;
}

/* Opens NAME under FD as a directory and checks it is (DEV, INO). */
static int open_checked(int fd, const char *name, int flags, dev_t dev,
                        ino_t ino)
{
    struct stat st;
    int nfd = openat(fd, name, flags);
    if (nfd < 0)
        return -1;
    if (fstat(nfd, &st) != 0) {
        close_keep_errno(nfd);
        return -1;
    }
    if (st.st_dev != dev || st.st_ino != ino) {
        close(nfd);
        errno = ESTALE;
        return -1;
    }
    return nfd;
}

/* Reopens frame K (closed to respect the bound). First by climbing with ".."
 * from the nearest open descendant, else by names from the nearest open
 * ancestor; each step checked against the (dev, ino) recorded at first open. */
static int reopen(struct walk *w, int k)
{
    struct pyc_walk_dir *target = w->frames[k];
    int fd = -1, i, j;

    for (j = k + 1; j <= w->top; j++)
        if (w->frames[j]->fd >= 0)
            break;
    if (j <= w->top) {
        int cur = w->frames[j]->fd;
        for (i = j - 1; i >= k; i--) {
            int nfd = open_checked(cur, "..", WALK_OPEN_FLAGS,
                                   w->frames[i]->dev, w->frames[i]->ino);
            if (cur != w->frames[j]->fd)
                close(cur);
            if (nfd < 0)
                break;
            cur = nfd;
        }
        if (i < k)
            fd = cur;
    }
    if (fd < 0) {
        for (i = k - 1; i > 0 && w->frames[i]->fd < 0; i--)
            ;
        if (w->frames[i]->fd < 0) { /* the root is pinned; cannot happen */
            errno = EBADF;
            return -1;
        }
        int cur = w->frames[i]->fd;
        for (i = i + 1; i <= k; i++) {
            int nfd = open_checked(cur, w->frames[i]->name, WALK_OPEN_FLAGS,
                                   w->frames[i]->dev, w->frames[i]->ino);
            if (cur != w->frames[i - 1]->fd)
                close_keep_errno(cur);
            if (nfd < 0)
                return -1;
            cur = nfd;
        }
        fd = cur;
    }
    dir_set_fd(w, target, fd);
    return fd;
}

static int frame_fd(struct walk *w, struct pyc_walk_dir *dir)
{
    if (dir->fd >= 0)
        return dir->fd;
    return reopen(w, dir->depth);
}

/* ---- delivery ------------------------------------------------------------ */

static pyc_walk_action deliver(struct walk *w, pyc_walk_entry *e)
{
    return w->fn(e, w->ctx);
}

/* The fd an entry for DIR itself gets: its parent's, reopened if need be
 * (AT_FDCWD at a root, -1 if the parent cannot be reopened); errno kept. */
static int parent_fd(struct walk *w, struct pyc_walk_dir *dir)
{
    int saved = errno, fd;
    if (!dir->parent)
        return AT_FDCWD;
    fd = frame_fd(w, dir->parent);
    errno = saved;
    return fd;
}

/* An entry for DIR itself (DIR_PRE, DIR_POST, ERROR): its path is a prefix of
 * the path buffer. */
static pyc_walk_action deliver_dir(struct walk *w, struct pyc_walk_dir *dir,
                                   int dirfd, pyc_walk_event event, int error,
                                   const char *op)
{
    pyc_walk_entry e;
    w->path[dir->path_len] = '\0';
    e.event = event;
    e.parent = dir->parent;
    e.dirfd = dirfd;
    e.name = dir->name;
    e.path = w->path;
    e.path_len = dir->path_len;
    e.type = DT_DIR;
    e.depth = dir->depth;
    e.dev = dir->dev;
    e.ino = dir->ino;
    e.error = error;
    e.error_op = op;
    return deliver(w, &e);
}

/* An entry NAME (of NAMELEN bytes) of the current directory DIR. */
static pyc_walk_action deliver_child(struct walk *w, struct pyc_walk_dir *dir,
                                     pyc_walk_event event, const char *name,
                                     size_t namelen, unsigned char type,
                                     ino_t ino, int error, const char *op)
{
    pyc_walk_entry e;
    /* An entry for DIR itself may have put its NUL where the '/' goes. */
    w->path[dir->path_len] = '/';
    memcpy(w->path + dir->prefix_len, name, namelen + 1);
    e.event = event;
    e.parent = dir;
    e.dirfd = dir->fd;
    e.name = name;
    e.path = w->path;
    e.path_len = dir->prefix_len + namelen;
    e.type = type;
    e.depth = dir->depth + 1;
    e.dev = dir->dev;
    e.ino = ino;
    e.error = error;
    e.error_op = op;
    return deliver(w, &e);
}

/* ---- reading one directory ----------------------------------------------- */

/* Reads the current directory DIR to its end: delivers its files, keeps the
 * names of its subdirectories in its arena. Returns the callback's STOP, or
 * CONTINUE; -1 (as an int) on allocation failure. */
static int read_dir(struct walk *w, struct pyc_walk_dir *dir)
{
    dir->names_len = 0;
    dir->cursor = 0;

    psys_dir rd;
    int more = 0;
    if (dir->read_ahead) {
        /* descend began it (venv_marked): go on from there. */
        rd = w->ahead;
        dir->read_ahead = false;
    } else {
        more = psys_dir_begin(&rd, dir->fd, w->buf);
    }
    for (;;) {
        const char *name;
        unsigned char type;
        ino_t d_ino;
        size_t len;
        if (more >= 0)
            more = psys_dir_next(&rd, &name, &type, &d_ino);
        if (more == 0)
            break;
        if (more < 0) {
            /* Removed since it was opened (iterate_dir: ENOENT on a dead
             * directory): vanished, like any entry, so nothing to list. */
            if (errno == ENOENT)
                break;
            int err = errno;
            psys_dir_end(&rd);
            errno = err;
            if (deliver_dir(w, dir, parent_fd(w, dir), PYC_WALK_ERROR, err,
                            "read") ==
                PYC_WALK_STOP)
                return PYC_WALK_STOP;
            break;
        }
        len = strlen(name);

        if (type == DT_UNKNOWN) {
            /* Some filesystems (XFS without ftype, some FUSE and network
             * ones) leave d_type unset, and the portable reader never
             * has it (platform/dir.h). */
            struct stat st;
            if (fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
                if (errno == ENOENT)
                    continue;
                int err = errno;
                if (grow(&w->path, &w->path_cap, dir->prefix_len + len + 1)) {
                    psys_dir_end(&rd);
                    return -1;
                }
                if (deliver_child(w, dir, PYC_WALK_ERROR, name, len,
                                  DT_UNKNOWN, d_ino, err,
                                  "stat") == PYC_WALK_STOP) {
                    psys_dir_end(&rd);
                    return PYC_WALK_STOP;
                }
                continue;
            }
            type = IFTODT(st.st_mode);
        }

        if (type == DT_DIR) {
            if (skipped_by_name(w->options, name))
                continue;
            if (grow(&dir->names, &dir->names_cap,
                     dir->names_len + len + 1)) {
                psys_dir_end(&rd);
                return -1;
            }
            memcpy(dir->names + dir->names_len, name, len + 1);
            dir->names_len += len + 1;
            continue;
        }

        if (dir->prefix_len + len + 1 > w->path_cap &&
            grow(&w->path, &w->path_cap, dir->prefix_len + len + 1)) {
            psys_dir_end(&rd);
            return -1;
        }
        if (deliver_child(w, dir, PYC_WALK_FILE, name, len, type,
                          d_ino, 0, NULL) == PYC_WALK_STOP) {
            psys_dir_end(&rd);
            return PYC_WALK_STOP;
        }
    }
    psys_dir_end(&rd);
    if (w->options->files_end) {
        pyc_walk_entry e;
        w->path[dir->path_len] = '\0';
        memset(&e, 0, sizeof e);
        e.event = PYC_WALK_FILES_END;
        e.parent = dir;
        e.dirfd = dir->fd;
        e.name = "";
        e.path = w->path;
        e.path_len = dir->path_len;
        e.type = DT_DIR;
        e.depth = dir->depth + 1;
        e.dev = dir->dev;
        e.ino = dir->ino;
        if (deliver(w, &e) == PYC_WALK_STOP)
            return PYC_WALK_STOP;
    }
    return PYC_WALK_CONTINUE;
}

/* ---- descending ---------------------------------------------------------- */

/* Whether NAME may be what an fstatat of "pyvenv.cfg" or "conda-meta" finds:
 * either in any case (a case-insensitive file system finds "PyVenv.cfg"),
 * or any name that is not ASCII (casefolding compares those in ways a byte
 * compare cannot tell; none is in a Python tree's usual directories). */
static int maybe_venv_marker(const char *name)
{
    if (strcasecmp(name, "pyvenv.cfg") == 0 || strcasecmp(name, "conda-meta") == 0)
        return 1;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p >= 0x80)
            return 1;
    return 0;
}

/* Whether the directory just opened on FD (frame CHILD) is a virtual
 * environment, to be skipped: it holds a regular file pyvenv.cfg (followed,
 * as site.venv() tests it with os.path.isfile; Lib/site.py, 3.3+), or a
 * conda-meta directory (not followed: conda.core.envs_manager).
 *
 * Asking by name costs two path lookups of a missing name per directory:
 * about 5% of the lookups of a check. So the directory's entries are read
 * first, into the walk's buffer (read_dir then goes on from there): when
 * they all fit and none could be either name, it is no venv and nothing
 * more is asked. Only the names of the whole directory can say a name is
 * absent, so a directory too large for the buffer (thousands of entries)
 * is asked the old way, as is one that has a candidate name. */
static bool venv_marked(struct walk *w, struct pyc_walk_dir *child, int fd)
{
    if (psys_dir_begin(&w->ahead, fd, w->buf) == 0) {
        child->read_ahead = true;
        if (psys_dir_read_ahead(&w->ahead) == 1 &&
            !psys_dir_ahead_any(&w->ahead, maybe_venv_marker))
            return false;
    }
    struct stat cfg;
    return (fstatat(fd, "pyvenv.cfg", &cfg, 0) == 0 && S_ISREG(cfg.st_mode)) ||
           (fstatat(fd, "conda-meta", &cfg, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISDIR(cfg.st_mode));
}

/* Forgets what venv_marked read of CHILD's entries (it is not entered). */
static void forget_read_ahead(struct walk *w, struct pyc_walk_dir *child)
{
    if (child->read_ahead)
        psys_dir_end(&w->ahead);
    child->read_ahead = false;
}

enum { DESCEND_SKIP, DESCEND_ENTERED, DESCEND_STOP, DESCEND_NOMEM };

/* Opens subdirectory NAME of the current directory DIR and, unless an
 * option skips it, pushes its frame and delivers its DIR_PRE. */
static int descend(struct walk *w, struct pyc_walk_dir *dir, const char *name)
{
    size_t len = strlen(name);
    struct pyc_walk_dir *child;
    struct stat st;
    int fd, err = 0;

    if (grow(&w->path, &w->path_cap, dir->prefix_len + len + 1))
        return DESCEND_NOMEM;
    /* frame_at may realloc the frame table (not the frames): do it before
     * opening so a failure leaks nothing. */
    child = frame_at(w, dir->depth + 1);
    if (!child)
        return DESCEND_NOMEM;

    if (w->nopen >= w->max_fds)
        evict(w, false);
    fd = openat(dir->fd, name, WALK_OPEN_FLAGS);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
        evict(w, true);
        fd = openat(dir->fd, name, WALK_OPEN_FLAGS);
    }
    if (fd < 0) {
        /* Vanished, or replaced by a file or a symlink since getdents. */
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
            return DESCEND_SKIP;
        return deliver_child(w, dir, PYC_WALK_ERROR, name, len, DT_DIR, 0,
                             errno, "open") == PYC_WALK_STOP
                   ? DESCEND_STOP
                   : DESCEND_SKIP;
    }
    if (fstat(fd, &st) != 0) {
        err = errno;
        close(fd);
        return deliver_child(w, dir, PYC_WALK_ERROR, name, len, DT_DIR, 0,
                             err, "stat") == PYC_WALK_STOP
                   ? DESCEND_STOP
                   : DESCEND_SKIP;
    }
    if (w->options->one_file_system && st.st_dev != w->root_dev) {
        close(fd);
        return DESCEND_SKIP;
    }
    for (struct pyc_walk_dir *a = dir; a; a = a->parent) {
        if (a->ino == st.st_ino && a->dev == st.st_dev) {
            close(fd);
            return deliver_child(w, dir, PYC_WALK_ERROR, name, len, DT_DIR,
                                 st.st_ino, ELOOP, "open") == PYC_WALK_STOP
                       ? DESCEND_STOP
                       : DESCEND_SKIP;
        }
    }
    child->read_ahead = false;
    if (w->options->skip_venvs && venv_marked(w, child, fd)) {
        forget_read_ahead(w, child);
        close(fd);
        return DESCEND_SKIP;
    }

    child->parent = dir;
    child->name = name;
    child->depth = dir->depth + 1;
    child->path_len = dir->prefix_len + len;
    child->prefix_len = child->path_len + 1;
    child->dev = st.st_dev;
    child->ino = st.st_ino;
    child->names_len = child->cursor = 0;
    dir_set_fd(w, child, fd);
    w->top = child->depth;

    w->path[dir->path_len] = '/';
    memcpy(w->path + dir->prefix_len, name, len + 1);
    switch (deliver_dir(w, child, dir->fd, PYC_WALK_DIR_PRE, 0, NULL)) {
    case PYC_WALK_STOP:
        forget_read_ahead(w, child);
        return DESCEND_STOP;
    case PYC_WALK_PRUNE:
        forget_read_ahead(w, child);
        dir_close(w, child);
        w->top = dir->depth;
        return DESCEND_SKIP;
    default:
        return DESCEND_ENTERED;
    }
}

/* ---- one root ------------------------------------------------------------ */

/* Walks ROOT: opened here by its path, or, when GIVEN_FD is not -1, the
 * directory open at GIVEN_FD (pyc_walk_fd), which is closed when done. */
static int walk_root(struct walk *w, const char *root, int given_fd)
{
    struct pyc_walk_dir *r = frame_at(w, 0);
    size_t len = strlen(root);
    struct stat st;
    int fd = given_fd;

    if (!r || grow(&w->path, &w->path_cap, len + 2)) {
        if (given_fd >= 0)
            close_keep_errno(given_fd);
        return -1;
    }
    memcpy(w->path, root, len + 1);
    if (given_fd >= 0)
        goto opened;

    /* The root follows a symlink (find -H): no O_NOFOLLOW, unless the caller
     * hands over directories it found itself (roots_nofollow). */
    bool nofollow = w->options && w->options->roots_nofollow;
    fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));
    if (fd < 0 && nofollow && (errno == ELOOP || errno == ENOTDIR) && lstat(root, &st) == 0) {
        /* Not (or no longer) a directory: one entry, as lstat sees it. */
        pyc_walk_entry e = {0};
        e.event = PYC_WALK_FILE;
        e.dirfd = AT_FDCWD;
        e.name = root;
        e.path = w->path;
        e.path_len = len;
        e.type = IFTODT(st.st_mode);
        e.dev = st.st_dev;
        e.ino = st.st_ino;
        return deliver(w, &e) == PYC_WALK_STOP ? 1 : 0;
    }
    if (fd < 0) {
        pyc_walk_entry e = {0};
        int err = errno;
        e.parent = NULL;
        e.dirfd = AT_FDCWD;
        e.name = root;
        e.path = w->path;
        e.path_len = len;
        e.depth = 0;
        e.event = PYC_WALK_ERROR;
        e.error = err;
        e.error_op = "open";
        if (err == ENOTDIR || err == ENOENT) {
            /* A file (followed, as find -H), or a dangling symlink. */
            if (stat(root, &st) == 0 ||
                (err == ENOENT && lstat(root, &st) == 0)) {
                e.event = PYC_WALK_FILE;
                e.error = 0;
                e.error_op = NULL;
                e.type = IFTODT(st.st_mode);
                e.dev = st.st_dev;
                e.ino = st.st_ino;
            }
            /* else: missing; the open error says so */
        }
        return deliver(w, &e) == PYC_WALK_STOP ? 1 : 0;
    }
opened:;
    /* (Only a given fd can be something else than a directory.) */
    int bad = fstat(fd, &st) != 0 ? errno : !S_ISDIR(st.st_mode) ? ENOTDIR : 0;
    if (bad) {
        pyc_walk_entry e = {0};
        e.event = PYC_WALK_ERROR;
        e.dirfd = AT_FDCWD;
        e.name = root;
        e.path = w->path;
        e.path_len = len;
        e.type = DT_DIR;
        e.error = bad;
        e.error_op = "stat";
        close(fd);
        return deliver(w, &e) == PYC_WALK_STOP ? 1 : 0;
    }

    r->parent = NULL;
    r->name = root;
    r->depth = 0;
    r->path_len = len;
    r->prefix_len = (len > 0 && root[len - 1] == '/') ? len : len + 1;
    r->dev = st.st_dev;
    r->ino = st.st_ino;
    r->names_len = r->cursor = 0;
    w->root_dev = st.st_dev;
    w->nopen = 0;
    w->lowest_open = 1;
    dir_set_fd(w, r, fd);
    w->top = 0;

    switch (deliver_dir(w, r, AT_FDCWD, PYC_WALK_DIR_PRE, 0, NULL)) {
    case PYC_WALK_STOP:
        return 1;
    case PYC_WALK_PRUNE:
        dir_close(w, r);
        w->top = -1;
        return 0;
    default:
        break;
    }

    /* The current directory has just been entered (read it) or is being
     * returned to (visit its next subdirectory); a frame knows which by its
     * cursor: entering resets names_len to 0 and read_dir fills it. */
    bool entered = true;
    for (;;) {
        struct pyc_walk_dir *dir = w->frames[w->top];
        if (entered) {
            int rc = read_dir(w, dir);
            if (rc < 0)
                return -1;
            if (rc == PYC_WALK_STOP)
                return 1;
        }
        if (dir->fd >= 0 && dir->cursor < dir->names_len) {
            const char *name = dir->names + dir->cursor;
            dir->cursor += strlen(name) + 1;
            switch (descend(w, dir, name)) {
            case DESCEND_NOMEM:
                return -1;
            case DESCEND_STOP:
                return 1;
            case DESCEND_ENTERED:
                entered = true;
                break;
            default:
                entered = false;
                break;
            }
            continue;
        }

        /* DIR is done: back to its parent (reopened if it was closed to
         * respect the bound), then DIR's DIR_POST with the parent's fd. */
        entered = false;
        struct pyc_walk_dir *parent = dir->parent;
        int pfd = AT_FDCWD, err = 0;
        if (parent) {
            pfd = frame_fd(w, parent);
            err = errno;
        }
        dir_close(w, dir);
        w->top = dir->depth - 1;
        if (deliver_dir(w, dir, pfd, PYC_WALK_DIR_POST, 0, NULL) ==
            PYC_WALK_STOP)
            return 1;
        if (!parent)
            return 0;
        if (pfd < 0) {
            /* The parent is gone or was moved: say so and give up its
             * remaining subdirectories; its DIR_POST still follows. */
            parent->cursor = parent->names_len;
            if (deliver_dir(w, parent, parent_fd(w, parent), PYC_WALK_ERROR,
                            err, "open") == PYC_WALK_STOP)
                return 1;
        }
    }
}

/* ---- public -------------------------------------------------------------- */

static void walk_close_all(struct walk *w)
{
    for (size_t i = 0; i < w->nframes; i++)
        dir_close(w, w->frames[i]);
    w->top = -1;
}

/* Sets up W for a walk; -1 when out of memory. */
static int walk_begin(struct walk *w, const pyc_walk_options *options,
                      pyc_walk_fn *fn, void *ctx)
{
    static const pyc_walk_options defaults = {0};
    struct rlimit rl;

    memset(w, 0, sizeof *w);
    w->options = options ? options : &defaults;
    w->fn = fn;
    w->ctx = ctx;
    w->top = -1;
    w->max_fds = w->options->max_open_fds > 0 ? w->options->max_open_fds
                                              : WALK_DEFAULT_FDS;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 2 < (rlim_t)w->max_fds)
        w->max_fds = (int)(rl.rlim_cur / 2);
    if (w->max_fds < WALK_MIN_FDS)
        w->max_fds = WALK_MIN_FDS;

    w->buf = malloc(WALK_BUFSIZE);
    return w->buf ? 0 : -1;
}

/* Frees W; returns RC, with errno set when it is -1. */
static int walk_end(struct walk *w, int rc)
{
    int saved = errno;
    for (size_t i = 0; i < w->nframes; i++) {
        free(w->frames[i]->names);
        free(w->frames[i]);
    }
    free(w->frames);
    free(w->path);
    free(w->scratch);
    free(w->buf);
    if (rc < 0)
        errno = saved ? saved : ENOMEM;
    return rc;
}

int pyc_walk(const char *const *roots, size_t nroots,
             const pyc_walk_options *options, pyc_walk_fn *fn, void *ctx)
{
    struct walk w;
    int rc = 0;

    if (walk_begin(&w, options, fn, ctx) != 0)
        return walk_end(&w, -1);
    for (size_t i = 0; i < nroots && rc == 0; i++) {
        rc = walk_root(&w, roots[i], -1);
        walk_close_all(&w);
    }
    return walk_end(&w, rc);
}

int pyc_walk_fd(int dirfd, const char *path, const pyc_walk_options *options,
                pyc_walk_fn *fn, void *ctx)
{
    struct walk w;
    int rc;

    if (dirfd < 0 || !path) {
        errno = EINVAL;
        return -1;
    }
    if (walk_begin(&w, options, fn, ctx) != 0) {
        close_keep_errno(dirfd);
        return walk_end(&w, -1);
    }
    rc = walk_root(&w, path, dirfd);
    walk_close_all(&w);
    return walk_end(&w, rc);
}

int pyc_walk_dir_fd(const pyc_walk_dir *dir)
{
    struct walk *w;
    if (!dir) {
        errno = EINVAL;
        return -1;
    }
    w = dir->walk;
    if (dir->depth > w->top || w->frames[dir->depth] != dir) {
        errno = EINVAL; /* not a directory of the walk in progress */
        return -1;
    }
    if (dir->fd >= 0)
        return dir->fd;
    return reopen(w, dir->depth);
}

const pyc_walk_dir *pyc_walk_dir_parent(const pyc_walk_dir *dir)
{
    return dir ? dir->parent : NULL;
}

const char *pyc_walk_dir_name(const pyc_walk_dir *dir)
{
    return dir ? dir->name : NULL;
}

/* The path buffer holds the current entry's path, of which DIR's path is a
 * prefix not NUL-terminated there: copy it. Valid until the next call or the
 * callback's return. */
const char *pyc_walk_dir_path(const pyc_walk_dir *dir)
{
    struct walk *w;
    if (!dir) {
        errno = EINVAL;
        return NULL;
    }
    w = dir->walk;
    if (grow(&w->scratch, &w->scratch_cap, dir->path_len + 1))
        return NULL;
    memcpy(w->scratch, w->path, dir->path_len);
    w->scratch[dir->path_len] = '\0';
    return w->scratch;
}
