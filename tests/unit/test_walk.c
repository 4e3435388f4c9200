/*
 * test_walk.c — the tree engine (include/pycache.h, 9): order, prune, stop,
 * errors as entries, symlinks never entered, skip options, trees far deeper
 * than PATH_MAX with few fds, reopening closed ancestors, trees that change
 * under the walk, deletion from the callback. Each test builds its fixture
 * tree in a fresh mkdtemp directory.
 */
#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "config.h"

/* ---- fixtures ------------------------------------------------------------ */

static char *make_root(void)
{
    char *t = strdup("/tmp/test_walk.XXXXXX");
    assert_non_null(t);
    assert_non_null(mkdtemp(t));
    return t;
}

static void remove_tree(char *root)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'",
             root, root);
    assert_int_equal(system(cmd), 0);
    free(root);
}

static void mk(const char *root, const char *rel)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void touch(const char *root, const char *rel)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    close(fd);
}

static void link_to(const char *root, const char *target, const char *rel)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    assert_int_equal(symlink(target, p), 0);
}

static int count_open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the DIR's own fd */
}

/* ---- a recording callback ------------------------------------------------ */

/* Lines "D rel", "F rel t", "P rel", "E rel errno op" (rel: the path with the
 * root's prefix removed, "." for the root) joined by '\n'. */
struct rec {
    const char *root;
    size_t root_len;
    char *log;
    size_t len, cap;
    int entries;
    /* behaviour */
    const char *prune;       /* PRUNE the directory so named */
    int stop_at;             /* STOP at this entry number (1-based), 0: never */
    bool delete_all;         /* unlink files, rmdir directories at POST */
    const char *delete_sibling; /* at the first FILE, rmdir this sibling */
    bool deleted_sibling;
    const char *rename_at;   /* at the FILE so named, run rename_cmd */
    const char *rename_cmd;
    int max_fds_seen;
    bool count_fds;
    int bad_path_len;
    int bad_files_end;
};

__attribute__((format(printf, 2, 3)))
static void rec_add(struct rec *r, const char *fmt, ...)
{
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof line);
    if (r->len + (size_t)n + 2 > r->cap) {
        r->cap = (r->cap + (size_t)n + 2) * 2;
        r->log = realloc(r->log, r->cap);
        assert_non_null(r->log);
    }
    memcpy(r->log + r->len, line, (size_t)n);
    r->len += (size_t)n;
    r->log[r->len++] = '\n';
    r->log[r->len] = '\0';
}

static const char *rel(struct rec *r, const char *path)
{
    if (strncmp(path, r->root, r->root_len) == 0) {
        if (path[r->root_len] == '\0')
            return ".";
        if (path[r->root_len] == '/')
            return path + r->root_len + 1;
    }
    return path;
}

static char type_char(unsigned char t)
{
    return t == DT_REG ? 'f' : t == DT_DIR ? 'd' : t == DT_LNK ? 'l' : '?';
}

static pyc_walk_action record(const pyc_walk_entry *e, void *ctx)
{
    struct rec *r = ctx;
    r->entries++;
    if (strlen(e->path) != e->path_len)
        r->bad_path_len++;
    if (r->count_fds) {
        int n = count_open_fds();
        if (n > r->max_fds_seen)
            r->max_fds_seen = n;
    }
    switch (e->event) {
    case PYC_WALK_DIR_PRE:
        rec_add(r, "D %s", rel(r, e->path));
        break;
    case PYC_WALK_DIR_POST:
        rec_add(r, "P %s", rel(r, e->path));
        break;
    case PYC_WALK_FILE:
        rec_add(r, "F %s %c", rel(r, e->path), type_char(e->type));
        break;
    case PYC_WALK_ERROR:
        rec_add(r, "E %s %d %s", rel(r, e->path), e->error, e->error_op);
        break;
    case PYC_WALK_FILES_END: {
        /* The directory's own fd, still open; parent: the directory. */
        struct stat st;
        if (fstat(e->dirfd, &st) != 0 || st.st_dev != e->dev || st.st_ino != e->ino ||
            e->dirfd != pyc_walk_dir_fd(e->parent) ||
            strcmp(e->path, pyc_walk_dir_path(e->parent)) != 0 || *e->name)
            r->bad_files_end++;
        rec_add(r, "X %s", rel(r, e->path));
        break;
    }
    }
    if (r->stop_at && r->entries == r->stop_at)
        return PYC_WALK_STOP;
    if (e->event == PYC_WALK_DIR_PRE && r->prune &&
        strcmp(e->name, r->prune) == 0)
        return PYC_WALK_PRUNE;
    if (e->event == PYC_WALK_FILE && r->delete_sibling && !r->deleted_sibling) {
        r->deleted_sibling = true;
        assert_int_equal(unlinkat(e->dirfd, r->delete_sibling, AT_REMOVEDIR), 0);
    }
    if (e->event == PYC_WALK_FILE && r->rename_at &&
        strcmp(e->name, r->rename_at) == 0)
        assert_int_equal(system(r->rename_cmd), 0);
    if (r->delete_all && e->event == PYC_WALK_FILE)
        assert_int_equal(unlinkat(e->dirfd, e->name, 0), 0);
    if (r->delete_all && e->event == PYC_WALK_DIR_POST && e->depth > 0)
        assert_int_equal(unlinkat(e->dirfd, e->name, AT_REMOVEDIR), 0);
    return PYC_WALK_CONTINUE;
}

static int walk1(struct rec *r, const char *root, const pyc_walk_options *o)
{
    const char *roots[1] = {root};
    r->root = root;
    r->root_len = strlen(root);
    return pyc_walk(roots, 1, o, record, r);
}

/* Index of LINE in the log (as a whole line), -1 if absent. */
static long line_at(const struct rec *r, const char *line)
{
    size_t n = strlen(line);
    const char *p = r->log;
    long i = 0;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        if ((size_t)(nl - p) == n && memcmp(p, line, n) == 0)
            return i;
        p = nl + 1;
        i++;
    }
    return -1;
}

static void assert_line(const struct rec *r, const char *line)
{
    if (line_at(r, line) < 0)
        fail_msg("missing line '%s' in:\n%s", line, r->log);
}

static void assert_no_line(const struct rec *r, const char *line)
{
    if (line_at(r, line) >= 0)
        fail_msg("unexpected line '%s' in:\n%s", line, r->log);
}

static void assert_before(const struct rec *r, const char *a, const char *b)
{
    long i = line_at(r, a), j = line_at(r, b);
    if (i < 0 || j < 0 || i >= j)
        fail_msg("'%s' (%ld) should come before '%s' (%ld) in:\n%s", a, i, b,
                 j, r->log);
}

static int count_lines(const struct rec *r)
{
    int n = 0;
    for (const char *p = r->log; p && *p; p++)
        n += *p == '\n';
    return n;
}

/* ---- order --------------------------------------------------------------- */

/* f1, a/{f2,f3}, a/b/f4, c/: files beside and below subdirectories. */
static char *make_order_tree(void)
{
    char *root = make_root();
    mk(root, "a");
    mk(root, "a/b");
    mk(root, "c");
    touch(root, "f1");
    touch(root, "a/f2");
    touch(root, "a/f3");
    touch(root, "a/b/f4");
    return root;
}

static void test_order(void **state)
{
    char *root = make_order_tree();
    struct rec r = {0};
    int before = count_open_fds();

    assert_int_equal(walk1(&r, root, NULL), 0);
    assert_int_equal(count_open_fds(), before);
    assert_int_equal(count_lines(&r), 12);
    assert_int_equal(line_at(&r, "D ."), 0);
    assert_int_equal(line_at(&r, "P ."), 11);
    /* A directory's files come right after its DIR_PRE, before any of its
     * subdirectories; DIR_POST after everything below. */
    assert_before(&r, "D .", "F f1 f");
    assert_before(&r, "F f1 f", "D a");
    assert_before(&r, "F f1 f", "D c");
    assert_before(&r, "D a", "F a/f2 f");
    assert_before(&r, "D a", "F a/f3 f");
    assert_before(&r, "F a/f2 f", "D a/b");
    assert_before(&r, "F a/f3 f", "D a/b");
    assert_before(&r, "D a/b", "F a/b/f4 f");
    assert_before(&r, "F a/b/f4 f", "P a/b");
    assert_before(&r, "P a/b", "P a");
    assert_before(&r, "D c", "P c");
    assert_int_equal(r.bad_path_len, 0);
    free(r.log);
    remove_tree(root);
}

/* files_end: FILES_END after a directory's files, before its subdirectories,
 * with the directory's fd still open; never without the option. */
static void test_files_end(void **state)
{
    char *root = make_order_tree();
    pyc_walk_options o = {.files_end = true};
    struct rec r = {0};
    assert_int_equal(walk1(&r, root, &o), 0);
    assert_int_equal(count_lines(&r), 16); /* one X per directory */
    assert_int_equal(r.bad_files_end, 0);
    assert_before(&r, "F f1 f", "X .");
    assert_before(&r, "X .", "D a");
    assert_before(&r, "X .", "D c");
    assert_before(&r, "F a/f2 f", "X a");
    assert_before(&r, "F a/f3 f", "X a");
    assert_before(&r, "X a", "D a/b");
    assert_before(&r, "F a/b/f4 f", "X a/b");
    assert_before(&r, "X a/b", "P a/b");
    assert_before(&r, "D c", "X c");
    assert_before(&r, "X c", "P c");
    free(r.log);

    /* Not asked: never delivered. */
    struct rec plain = {0};
    assert_int_equal(walk1(&plain, root, NULL), 0);
    assert_int_equal(count_lines(&plain), 12);
    free(plain.log);
    remove_tree(root);
}

/* Entries' fields: depth, parent chain, dirfd, name relative to dirfd. */
struct fields {
    int bad;
    char last[4096];
};

static pyc_walk_action check_fields(const pyc_walk_entry *e, void *ctx)
{
    struct fields *f = ctx;
    struct stat st;
    int depth = 0;
    for (const pyc_walk_dir *d = e->parent; d; d = pyc_walk_dir_parent(d))
        depth++;
    if (depth != e->depth)
        f->bad++;
    if (fstatat(e->dirfd, e->name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        f->bad++;
    if (e->event != PYC_WALK_FILE && (st.st_dev != e->dev || st.st_ino != e->ino))
        f->bad++;
    if (e->parent) {
        if (e->dirfd != pyc_walk_dir_fd(e->parent))
            f->bad++;
        const char *dp = pyc_walk_dir_path(e->parent);
        size_t n = strlen(dp);
        if (strncmp(e->path, dp, n) != 0 || e->path[n] != '/' ||
            strcmp(e->path + n + 1, e->name) != 0)
            f->bad++;
    } else {
        if (e->dirfd != AT_FDCWD || e->depth != 0 ||
            strcmp(e->name, e->path) != 0)
            f->bad++;
    }
    snprintf(f->last, sizeof f->last, "%s", e->path);
    return PYC_WALK_CONTINUE;
}

static void test_fields(void **state)
{
    char *root = make_root();
    mk(root, "a");
    mk(root, "a/b");
    touch(root, "a/b/x");
    touch(root, "a/y");
    struct fields f = {0};
    const char *roots[] = {root};
    assert_int_equal(pyc_walk(roots, 1, NULL, check_fields, &f), 0);
    assert_int_equal(f.bad, 0);
    remove_tree(root);
}

/* A root given with a trailing '/' gets no second one (as find prints). */
static void test_root_trailing_slash(void **state)
{
    char *root = make_root();
    char slash[4200];
    touch(root, "x");
    snprintf(slash, sizeof slash, "%s/", root);
    struct rec r = {0};
    const char *roots[] = {slash};
    r.root = "-";
    r.root_len = 1;
    assert_int_equal(pyc_walk(roots, 1, NULL, record, &r), 0);
    char want[4300];
    snprintf(want, sizeof want, "F %sx f", slash);
    assert_line(&r, want);
    free(r.log);
    remove_tree(root);
}

/* ---- prune, stop --------------------------------------------------------- */

static void test_prune(void **state)
{
    char *root = make_root();
    mk(root, "a");
    mk(root, "a/b");
    touch(root, "a/x");
    mk(root, "c");
    touch(root, "c/y");
    struct rec r = {.prune = "a"};
    assert_int_equal(walk1(&r, root, NULL), 0);
    assert_line(&r, "D a");
    assert_no_line(&r, "F a/x f");
    assert_no_line(&r, "D a/b");
    assert_no_line(&r, "P a");
    assert_line(&r, "F c/y f");
    assert_line(&r, "P c");
    free(r.log);
    remove_tree(root);
}

static void test_stop(void **state)
{
    char *root = make_root();
    mk(root, "a");
    mk(root, "a/b");
    mk(root, "a/b/c");
    touch(root, "a/b/c/x");
    touch(root, "a/b/c/y");
    int before = count_open_fds();
    /* D . / D a / D a/b / D a/b/c / F (stop) */
    struct rec r = {.stop_at = 5};
    assert_int_equal(walk1(&r, root, NULL), 1);
    assert_int_equal(r.entries, 5);
    assert_int_equal(count_open_fds(), before);
    free(r.log);

    /* Stopping a root stops the whole walk: later roots are not visited. */
    struct rec r2 = {.stop_at = 1};
    const char *roots[] = {root, root};
    r2.root = root;
    r2.root_len = strlen(root);
    assert_int_equal(pyc_walk(roots, 2, NULL, record, &r2), 1);
    assert_int_equal(r2.entries, 1);
    assert_int_equal(count_open_fds(), before);
    free(r2.log);
    remove_tree(root);
}

/* ---- roots --------------------------------------------------------------- */

static void test_roots(void **state)
{
    char *root = make_root();
    char file[4200], link[4200], missing[4200], dangling[4200];
    mk(root, "d");
    touch(root, "d/x");
    touch(root, "f");
    link_to(root, "d", "ld");
    link_to(root, "nowhere", "dangling");
    snprintf(file, sizeof file, "%s/f", root);
    snprintf(link, sizeof link, "%s/ld", root);
    snprintf(missing, sizeof missing, "%s/missing", root);
    snprintf(dangling, sizeof dangling, "%s/dangling", root);
    const char *roots[] = {file, link, missing, dangling};
    struct rec r = {.root = root, .root_len = strlen(root)};
    assert_int_equal(pyc_walk(roots, 4, NULL, record, &r), 0);
    char want[200];
    /* A root file is one FILE entry; a root symlink to a directory is
     * followed (find -H); a missing root is an error entry; a dangling root
     * symlink is a FILE of type DT_LNK. */
    const char *expect = "F f f\nD ld\nF ld/x f\nP ld\n";
    assert_int_equal(strncmp(r.log, expect, strlen(expect)), 0);
    snprintf(want, sizeof want, "E missing %d open", ENOENT);
    assert_line(&r, want);
    assert_line(&r, "F dangling l");
    free(r.log);
    remove_tree(root);
}

/* roots_nofollow: a root that is a symlink (to a directory) is one FILE
 * entry of type DT_LNK, never entered; a real directory root is walked. */
static void test_roots_nofollow(void **state)
{
    char *root = make_root();
    char link[4200], dir[4200];
    mk(root, "d");
    touch(root, "d/x");
    link_to(root, "d", "ld");
    snprintf(link, sizeof link, "%s/ld", root);
    snprintf(dir, sizeof dir, "%s/d", root);
    const char *roots[] = {link, dir};
    pyc_walk_options opt = {.roots_nofollow = true};
    struct rec r = {.root = root, .root_len = strlen(root)};
    assert_int_equal(pyc_walk(roots, 2, &opt, record, &r), 0);
    const char *expect = "F ld l\nD d\nF d/x f\nP d\n";
    assert_string_equal(r.log, expect);
    free(r.log);
    remove_tree(root);
}

/* pyc_walk_fd: the directory open at the fd is walked as a root with the
 * display path given, which is never opened (here it names nothing at
 * all, then a symbolic link to elsewhere: the walk still goes where the fd
 * is); the fd is the walk's, closed when it is done, even when it is not a
 * directory (an ERROR entry says so). */
static void test_walk_fd(void **state)
{
    char *root = make_order_tree();
    char other[4200], shown[4300];
    snprintf(other, sizeof other, "%s/c", root);
    int before = count_open_fds();

    /* A display path that does not exist. */
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    struct rec r = {.root = "/no/such/place", .root_len = strlen("/no/such/place")};
    assert_int_equal(pyc_walk_fd(fd, "/no/such/place", NULL, record, &r), 0);
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    assert_int_equal(count_open_fds(), before);
    struct rec ref = {0};
    assert_int_equal(walk1(&ref, root, NULL), 0);
    assert_string_equal(r.log, ref.log); /* the same walk, by fd */
    assert_int_equal(r.bad_path_len, 0);
    free(r.log);
    free(ref.log);

    /* A display path that is a symbolic link to another directory: not
     * followed, not even looked at. */
    snprintf(shown, sizeof shown, "%s/shown", root);
    assert_int_equal(symlink(other, shown), 0);
    fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    struct rec viafd = {.root = shown, .root_len = strlen(shown)};
    assert_int_equal(pyc_walk_fd(fd, shown, NULL, record, &viafd), 0);
    assert_line(&viafd, "F f1 f");
    assert_line(&viafd, "D a/b");
    assert_line(&viafd, "F shown l");
    free(viafd.log);

    /* The options apply below the root as in any walk; STOP is returned. */
    fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct rec pruned = {.root = root, .root_len = strlen(root), .prune = "a"};
    pyc_walk_options files_end = {.files_end = true};
    assert_int_equal(pyc_walk_fd(fd, root, &files_end, record, &pruned), 0);
    assert_no_line(&pruned, "F a/f2 f");
    assert_line(&pruned, "X .");
    assert_int_equal(pruned.bad_files_end, 0);
    free(pruned.log);
    fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct rec stopped = {.root = root, .root_len = strlen(root), .stop_at = 2};
    assert_int_equal(pyc_walk_fd(fd, root, NULL, record, &stopped), 1);
    assert_int_equal(count_lines(&stopped), 2);
    free(stopped.log);

    /* Not a directory: one ERROR entry, and the fd is closed all the same. */
    char file[4300];
    snprintf(file, sizeof file, "%s/f1", root);
    fd = open(file, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    struct rec notdir = {.root = file, .root_len = strlen(file)};
    assert_int_equal(pyc_walk_fd(fd, file, NULL, record, &notdir), 0);
    char want[64];
    snprintf(want, sizeof want, "E . %d stat\n", ENOTDIR);
    assert_string_equal(notdir.log, want);
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    free(notdir.log);

    /* No fd, no path: EINVAL, nothing delivered. */
    struct rec none = {0};
    errno = 0;
    assert_int_equal(pyc_walk_fd(-1, root, NULL, record, &none), -1);
    assert_int_equal(errno, EINVAL);
    fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_int_equal(pyc_walk_fd(fd, NULL, NULL, record, &none), -1);
    assert_int_equal(errno, EINVAL);
    close(fd);
    assert_int_equal(none.entries, 0);
    assert_int_equal(count_open_fds(), before);
    remove_tree(root);
}

/* ---- symlinks ------------------------------------------------------------ */

static void test_symlinks_not_entered(void **state)
{
    char *root = make_root();
    mk(root, "a");
    touch(root, "a/x");
    link_to(root, "..", "a/up");      /* a loop through a symlink */
    link_to(root, "../a", "a/again"); /* a symlink to a directory */
    link_to(root, "x", "a/tofile");
    struct rec r = {0};
    assert_int_equal(walk1(&r, root, NULL), 0);
    assert_line(&r, "F a/up l");
    assert_line(&r, "F a/again l");
    assert_line(&r, "F a/tofile l");
    assert_no_line(&r, "D a/up");
    assert_no_line(&r, "D a/again");
    assert_int_equal(count_lines(&r), 8);
    free(r.log);
    remove_tree(root);
}

/* ---- skip options -------------------------------------------------------- */

static void test_skip_options(void **state)
{
    char *root = make_root();
    const char *skipped[] = {".git", ".hg", ".svn", ".bzr", "_darcs",
                             "node_modules", "venv", "build"};
    for (size_t i = 0; i < sizeof skipped / sizeof *skipped; i++) {
        char p[100];
        mk(root, skipped[i]);
        snprintf(p, sizeof p, "%s/inside", skipped[i]);
        touch(root, p);
    }
    touch(root, "venv/pyvenv.cfg");
    /* Not a venv: pyvenv.cfg is a directory (site.venv uses isfile). */
    mk(root, "notvenv");
    mk(root, "notvenv/pyvenv.cfg");
    /* A file named like a skipped directory is still a file. */
    touch(root, "node_modules/.git");
    mk(root, "keep");
    touch(root, "keep/.hg");
    static const char *const ignore[] = {"build", NULL};
    pyc_walk_options o = {.skip_vcs = true, .skip_node_modules = true,
                          .skip_venvs = true, .ignore_names = ignore};

    struct rec all = {0};
    assert_int_equal(walk1(&all, root, NULL), 0);
    for (size_t i = 0; i < sizeof skipped / sizeof *skipped; i++) {
        char line[100];
        snprintf(line, sizeof line, "D %s", skipped[i]);
        assert_line(&all, line);
    }

    struct rec some = {0};
    assert_int_equal(walk1(&some, root, &o), 0);
    for (size_t i = 0; i < sizeof skipped / sizeof *skipped; i++) {
        /* Nothing at all is delivered for a skipped directory. */
        char line[100];
        snprintf(line, sizeof line, "D %s", skipped[i]);
        assert_no_line(&some, line);
        snprintf(line, sizeof line, " %s/", skipped[i]);
        if (strstr(some.log, line))
            fail_msg("'%s' delivered:\n%s", skipped[i], some.log);
    }
    assert_line(&some, "D notvenv");
    assert_line(&some, "D notvenv/pyvenv.cfg");
    assert_line(&some, "F keep/.hg f");
    free(all.log);
    free(some.log);

    /* The options never apply to a root: a venv named as a root is walked. */
    char venv[4200];
    snprintf(venv, sizeof venv, "%s/venv", root);
    struct rec v = {0};
    assert_int_equal(walk1(&v, venv, &o), 0);
    assert_line(&v, "F pyvenv.cfg f");
    free(v.log);
    remove_tree(root);
}

/* ---- errors -------------------------------------------------------------- */

/* Runs FN in a child that has dropped root (uid/gid 65534), so that modes
 * are enforced; its log comes back through a pipe. Returns false when the
 * privileges cannot be dropped. */
static bool run_unprivileged(const char *root, const pyc_walk_options *o,
                             struct rec *out)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        if (geteuid() == 0 &&
            (setresgid(65534, 65534, 65534) != 0 ||
             setresuid(65534, 65534, 65534) != 0))
            _exit(3);
        struct rec r = {0};
        const char *roots[] = {root};
        r.root = root;
        r.root_len = strlen(root);
        if (pyc_walk(roots, 1, o, record, &r) != 0)
            _exit(4);
        if (r.log && write(pfd[1], r.log, r.len) != (ssize_t)r.len)
            _exit(5);
        _exit(0);
    }
    close(pfd[1]);
    char buf[65536];
    size_t n = 0;
    ssize_t k;
    while ((k = read(pfd[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)k;
    close(pfd[0]);
    buf[n] = '\0';
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 3)
        return false;
    assert_int_equal(WEXITSTATUS(status), 0);
    out->log = strdup(buf);
    out->len = n;
    return true;
}

static void test_unreadable_directory(void **state)
{
    char *root = make_root();
    assert_int_equal(chmod(root, 0755), 0);
    mk(root, "locked");
    touch(root, "locked/secret");
    mk(root, "noexec");    /* readable, not searchable: names only */
    touch(root, "noexec/f");
    mk(root, "ok");
    touch(root, "ok/f");
    char p[4200];
    snprintf(p, sizeof p, "%s/locked", root);
    assert_int_equal(chmod(p, 0), 0);
    snprintf(p, sizeof p, "%s/noexec", root);
    assert_int_equal(chmod(p, 0644), 0);

    struct rec r = {0};
    if (!run_unprivileged(root, NULL, &r)) {
        remove_tree(root);
        skip();
    }
    char want[100];
    /* The locked directory is an error entry; the walk goes on. */
    snprintf(want, sizeof want, "E locked %d open", EACCES);
    assert_line(&r, want);
    assert_no_line(&r, "D locked");
    assert_no_line(&r, "P locked");
    assert_line(&r, "F ok/f f");
    assert_line(&r, "P .");
    /* r-- (no search permission): it opens and reads, and with d_type known
     * its entries are delivered without a stat. A reader without d_type
     * (src/platform/dir.h) would need the stat, which is refused. */
    assert_line(&r, "D noexec");
#if PYC_HAVE_GETDENTS64 || PYC_HAVE_D_TYPE
    assert_line(&r, "F noexec/f f");
#else
    snprintf(want, sizeof want, "E noexec/f %d stat", EACCES);
    assert_line(&r, want);
#endif
    assert_line(&r, "P noexec");
    free(r.log);
    remove_tree(root);
}

/* ---- trees deeper than PATH_MAX ------------------------------------------ */

#define DEEP_LEVELS 5000
#define DEEP_NAME 100

struct deep {
    int pre, post, files, max_depth, bad;
    size_t max_path;
    ino_t inos[DEEP_LEVELS + 2];
    dev_t devs[DEEP_LEVELS + 2];
    int max_fds_seen;
    int baseline;
    int checked;
};

static pyc_walk_action deep_cb(const pyc_walk_entry *e, void *ctx)
{
    struct deep *d = ctx;
    if (e->path_len > d->max_path)
        d->max_path = e->path_len;
    if (e->depth > d->max_depth)
        d->max_depth = e->depth;
    switch (e->event) {
    case PYC_WALK_DIR_PRE:
        d->pre++;
        d->inos[e->depth] = e->ino;
        d->devs[e->depth] = e->dev;
        break;
    case PYC_WALK_DIR_POST:
        d->post++;
        break;
    case PYC_WALK_FILE:
        d->files++;
        break;
    default:
        d->bad++;
        break;
    }
    /* The bound holds on the way down and back up (sampled: counting fds
     * costs a readdir of /proc/self/fd). */
    if (e->depth % 250 == 0 || e->depth > DEEP_LEVELS - 3) {
        int n = count_open_fds() - d->baseline;
        if (n > d->max_fds_seen)
            d->max_fds_seen = n;
    }
    /* At the deepest file: ancestors' fds, reopened as need be, are the
     * directories their DIR_PRE announced (a sample of them: each reopened fd
     * stays open until the callback returns). */
    if (e->event == PYC_WALK_FILE && e->depth == DEEP_LEVELS + 1) {
        int depth = e->depth - 1;
        struct stat st;
        for (const pyc_walk_dir *a = e->parent; a; a = pyc_walk_dir_parent(a)) {
            if (depth % 499 == 0 || depth < 2 || depth > DEEP_LEVELS - 20) {
                int fd = pyc_walk_dir_fd(a);
                if (fd < 0 || fstat(fd, &st) != 0 ||
                    st.st_ino != d->inos[depth] || st.st_dev != d->devs[depth])
                    d->bad++;
                d->checked++;
            }
            depth--;
        }
        if (depth != -1)
            d->bad++;
        if (fstatat(e->dirfd, e->name, &st, 0) != 0 || !S_ISREG(st.st_mode))
            d->bad++;
    }
    return PYC_WALK_CONTINUE;
}

static void test_deeper_than_path_max(void **state)
{
    char *root = make_root();
    char name[DEEP_NAME + 1];
    memset(name, 'n', DEEP_NAME);
    name[DEEP_NAME] = '\0';
    int fd = open(root, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    for (int i = 0; i < DEEP_LEVELS; i++) {
        assert_int_equal(mkdirat(fd, name, 0755), 0);
        int next = openat(fd, name, O_RDONLY | O_DIRECTORY);
        assert_true(next >= 0);
        close(fd);
        fd = next;
    }
    int f = openat(fd, "leaf", O_WRONLY | O_CREAT, 0644);
    assert_true(f >= 0);
    close(f);
    close(fd);

    struct deep *d = calloc(1, sizeof *d);
    assert_non_null(d);
    d->baseline = count_open_fds();
    pyc_walk_options o = {.max_open_fds = 16};
    const char *roots[] = {root};
    assert_int_equal(pyc_walk(roots, 1, &o, deep_cb, d), 0);
    assert_int_equal(d->bad, 0);
    assert_int_equal(d->pre, DEEP_LEVELS + 1);
    assert_int_equal(d->post, DEEP_LEVELS + 1);
    assert_int_equal(d->files, 1);
    assert_int_equal(d->max_depth, DEEP_LEVELS + 1);
    int sampled = 0;
    for (int i = 0; i <= DEEP_LEVELS; i++)
        sampled += i % 499 == 0 || i < 2 || i > DEEP_LEVELS - 20;
    assert_int_equal(d->checked, sampled);
    assert_true(d->max_path > 10 * PATH_MAX);
    assert_int_equal(d->max_path,
                     strlen(root) + (size_t)DEEP_LEVELS * (DEEP_NAME + 1) + 5);
    /* The bound holds, give or take the ancestors the deepest-file check
     * reopened (they stay open until popped or evicted). */
    if (d->max_fds_seen > 16 + d->checked)
        fail_msg("%d fds open", d->max_fds_seen);
    assert_int_equal(count_open_fds(), d->baseline);
    free(d);
    remove_tree(root);
}

/* With max_open_fds at its minimum, every ancestor is reopened on the way
 * back up, and each answers pyc_walk_dir_fd as the same directory. */
static void test_dir_fd_reopen(void **state)
{
    char *root = make_root();
    mk(root, "a");
    mk(root, "a/b");
    mk(root, "a/b/c");
    mk(root, "a/b/c/d");
    mk(root, "a/b/c/d/e");
    touch(root, "a/b/c/d/e/x");
    mk(root, "a/b/c/d2");
    touch(root, "a/b/c/d2/y");
    mk(root, "a/b2");
    touch(root, "a/b2/z");
    struct fields f = {0};
    pyc_walk_options o = {.max_open_fds = 3};
    const char *roots[] = {root};
    int before = count_open_fds();
    assert_int_equal(pyc_walk(roots, 1, &o, check_fields, &f), 0);
    assert_int_equal(f.bad, 0);
    assert_int_equal(count_open_fds(), before);

    struct rec r = {0};
    assert_int_equal(walk1(&r, root, &o), 0);
    assert_int_equal(count_lines(&r), 3 + 2 * 8);
    assert_line(&r, "F a/b/c/d2/y f");
    assert_line(&r, "F a/b2/z f");
    assert_before(&r, "P a/b/c/d/e", "P a/b/c/d");
    assert_before(&r, "P a/b/c", "D a/b2");
    free(r.log);
    remove_tree(root);
}

/* The tree changes under the walk: while at a/b/c/d/e/x (ancestors a, b, c
 * closed), a is renamed away and replaced by a new a/b/c/d, and the walk's d
 * moves out of the tree. Reopening c from d's ".." finds the root, and by
 * names finds a different c: ESTALE, delivered as errors; every DIR_PRE still
 * gets its DIR_POST; nothing of the new tree is walked. */
static void test_tree_changed(void **state)
{
    char *root = make_root();
    char cmd[4096];
    mk(root, "a");
    mk(root, "a/b");
    mk(root, "a/b/c");
    mk(root, "a/b/c/d");
    mk(root, "a/b/c/d/e");
    touch(root, "a/b/c/d/e/x");
    mk(root, "a/b/c/later"); /* read before the change: given up with c */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mv a old && mv old/b/c/d d_moved && "
             "mkdir -p a/b/c/d/e && touch a/b/c/d/e/new",
             root);
    struct rec r = {.rename_at = "x", .rename_cmd = cmd};
    pyc_walk_options o = {.max_open_fds = 3};
    assert_int_equal(walk1(&r, root, &o), 0);
    char want[100];
    snprintf(want, sizeof want, "E a/b/c %d open", ESTALE);
    assert_line(&r, want);
    assert_no_line(&r, "F a/b/c/d/e/new f");
    /* later, if getdents listed it after d, is given up with c. */
    long later = line_at(&r, "D a/b/c/later");
    assert_true(later < 0 || later < line_at(&r, "D a/b/c/d"));
    const char *pairs[] = {".", "a", "a/b", "a/b/c", "a/b/c/d", "a/b/c/d/e"};
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        char pre[64], post[64];
        snprintf(pre, sizeof pre, "D %s", pairs[i]);
        snprintf(post, sizeof post, "P %s", pairs[i]);
        assert_before(&r, pre, post);
    }
    free(r.log);
    remove_tree(root);
}

/* ---- the callback changes the tree --------------------------------------- */

static void test_delete_from_callback(void **state)
{
    char *root = make_root();
    mk(root, "pkg");
    mk(root, "pkg/__pycache__");
    touch(root, "pkg/__pycache__/m.cpython-311.pyc");
    touch(root, "pkg/__pycache__/n.cpython-311.pyc");
    touch(root, "pkg/m.py");
    mk(root, "pkg/sub");
    touch(root, "pkg/sub/x");
    touch(root, "top");
    /* Unlink every file at FILE, rmdir every directory at DIR_POST (with the
     * parent's fd): the tree ends empty. */
    struct rec r = {.delete_all = true};
    assert_int_equal(walk1(&r, root, NULL), 0);
    int n = 0;
    DIR *dir = opendir(root);
    struct dirent *e;
    assert_non_null(dir);
    while ((e = readdir(dir)))
        n += e->d_name[0] != '.';
    closedir(dir);
    assert_int_equal(n, 0);
    assert_line(&r, "P pkg/__pycache__");
    assert_line(&r, "P pkg");
    free(r.log);

    /* A subdirectory removed (by the callback) after getdents listed it and
     * before the walk reached it is skipped silently: no error entry. */
    mk(root, "d1");
    mk(root, "d2");
    touch(root, "f");
    struct rec v = {.delete_sibling = "d1"};
    struct rec v2 = {.delete_sibling = "d2"};
    assert_int_equal(walk1(&v, root, NULL), 0);
    mk(root, "d1");
    assert_int_equal(walk1(&v2, root, NULL), 0);
    assert_true(v.deleted_sibling && v2.deleted_sibling);
    assert_null(strstr(v.log, "E "));
    assert_null(strstr(v2.log, "E "));
    assert_no_line(&v, "D d1");
    assert_no_line(&v2, "D d2");
    assert_line(&v, "D d2");
    assert_line(&v2, "D d1");
    free(v.log);
    free(v2.log);
    remove_tree(root);
}

/* ---- mounts (root only, in a private mount namespace) -------------------- */

static void test_mounts(void **state)
{
    char *root = make_root();
    mk(root, "a");
    mk(root, "a/loop");
    mk(root, "a/tmp");
    touch(root, "a/x");
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char p[4200], q[4200];
        close(pfd[0]);
        if (unshare(CLONE_NEWNS) != 0 ||
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
            _exit(3);
        snprintf(p, sizeof p, "%s/a/loop", root);
        snprintf(q, sizeof q, "%s/a/tmp", root);
        /* a/loop is a itself again (a bind mount loop); a/tmp another fs */
        char a[4200];
        snprintf(a, sizeof a, "%s/a", root);
        if (mount(a, p, NULL, MS_BIND, NULL) != 0 ||
            mount("none", q, "tmpfs", 0, NULL) != 0)
            _exit(3);
        char t[4300];
        snprintf(t, sizeof t, "%s/intmp", q);
        int f = open(t, O_WRONLY | O_CREAT, 0644);
        if (f < 0)
            _exit(4);
        close(f);
        struct rec r = {0}, x = {0};
        pyc_walk_options o = {.one_file_system = true};
        if (walk1(&r, root, NULL) != 0 || walk1(&x, root, &o) != 0)
            _exit(4);
        if (write(pfd[1], r.log, r.len) != (ssize_t)r.len ||
            write(pfd[1], "--\n", 3) != 3 ||
            write(pfd[1], x.log, x.len) != (ssize_t)x.len)
            _exit(5);
        _exit(0);
    }
    close(pfd[1]);
    char buf[65536];
    size_t n = 0;
    ssize_t k;
    while ((k = read(pfd[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
    close(pfd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 3) {
        remove_tree(root);
        skip();
    }
    assert_int_equal(WEXITSTATUS(status), 0);
    char *sep = strstr(buf, "--\n");
    assert_non_null(sep);
    *sep = '\0';
    struct rec all = {.log = buf}, xdev = {.log = sep + 3};
    char want[100];
    snprintf(want, sizeof want, "E a/loop %d open", ELOOP);
    /* The loop is an error entry, never entered, in both walks. */
    assert_line(&all, want);
    assert_no_line(&all, "D a/loop");
    assert_line(&all, "F a/tmp/intmp f");
    assert_line(&xdev, want);
    /* one_file_system: the other filesystem is not delivered at all. */
    assert_no_line(&xdev, "D a/tmp");
    assert_null(strstr(xdev.log, "intmp"));
    assert_line(&xdev, "F a/x f");
    remove_tree(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_files_end),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_root_trailing_slash),
        cmocka_unit_test(test_prune),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_roots),
        cmocka_unit_test(test_roots_nofollow),
        cmocka_unit_test(test_walk_fd),
        cmocka_unit_test(test_symlinks_not_entered),
        cmocka_unit_test(test_skip_options),
        cmocka_unit_test(test_unreadable_directory),
        cmocka_unit_test(test_deeper_than_path_max),
        cmocka_unit_test(test_dir_fd_reopen),
        cmocka_unit_test(test_tree_changed),
        cmocka_unit_test(test_delete_from_callback),
        cmocka_unit_test(test_mounts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
