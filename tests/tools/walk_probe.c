/*
 * walk_probe — walks roots with pyc_walk() and prints one record per entry,
 * NUL-terminated, for tests/integration/test_walk.py:
 *
 *   F <type> <path>                  a file (type as find's %y: f d l p s c b U)
 *   D d <path>                       DIR_PRE
 *   P d <path>                       DIR_POST
 *   E <type> <errno> <op> <path>     an error entry
 *   X <message>                      a --verify check failed
 *
 * Options: --skip-vcs --skip-node-modules --skip-venvs --one-file-system
 * --ignore NAME (repeatable) --max-fds N --prune NAME (answer PRUNE at the
 * DIR_PRE of directories so named) --count (print only "N entries") --verify
 * (at every entry, check the parent chain: pyc_walk_dir_path(parent) + "/" +
 * name is the path, pyc_walk_dir_fd(parent) is the directory DIR_PRE
 * announced, fstatat(dirfd, name) works). Exit 0, or 1 if --verify failed.
 */
#include "pycache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct probe {
    const char *prune;
    bool count_only, verify;
    unsigned long count, failures;
    /* dev/ino announced by each DIR_PRE, by depth (for --verify) */
    dev_t *devs;
    ino_t *inos;
    size_t cap;
};

static char type_letter(unsigned char t)
{
    switch (t) {
    case DT_REG: return 'f';
    case DT_DIR: return 'd';
    case DT_LNK: return 'l';
    case DT_FIFO: return 'p';
    case DT_SOCK: return 's';
    case DT_CHR: return 'c';
    case DT_BLK: return 'b';
    default: return 'U';
    }
}

static void fail(struct probe *p, const char *what, const char *path)
{
    printf("X %s %s", what, path);
    putchar('\0');
    p->failures++;
}

static void verify(struct probe *p, const pyc_walk_entry *e)
{
    const pyc_walk_dir *parent = e->parent;
    struct stat st;
    if (!parent)
        return;
    int depth = e->depth - 1;
    const char *dp = pyc_walk_dir_path(parent);
    size_t n = dp ? strlen(dp) : 0;
    if (!dp || strncmp(dp, e->path, n) != 0 ||
        strcmp(e->path + n + (e->path[n] == '/'), e->name) != 0 ||
        strlen(e->path) != e->path_len)
        fail(p, "path", e->path);
    if (strcmp(pyc_walk_dir_name(parent),
               pyc_walk_dir_parent(parent) ? strrchr(dp, '/') + 1 : dp) != 0)
        fail(p, "name", e->path);
    int fd = pyc_walk_dir_fd(parent);
    if (fd < 0 || fstat(fd, &st) != 0 || (size_t)depth >= p->cap ||
        st.st_dev != p->devs[depth] || st.st_ino != p->inos[depth])
        fail(p, "dirfd", e->path);
    if (e->dirfd != fd && e->event != PYC_WALK_ERROR)
        fail(p, "entry-dirfd", e->path);
    if (e->event != PYC_WALK_ERROR &&
        fstatat(e->dirfd, e->name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        fail(p, "fstatat", e->path);
    /* Every ancestor reachable and the same directory (reopens them). */
    for (const pyc_walk_dir *a = pyc_walk_dir_parent(parent); a;
         a = pyc_walk_dir_parent(a)) {
        depth--;
        fd = pyc_walk_dir_fd(a);
        if (fd < 0 || fstat(fd, &st) != 0 || st.st_dev != p->devs[depth] ||
            st.st_ino != p->inos[depth]) {
            fail(p, "ancestor-fd", e->path);
            break;
        }
        if (depth < 0)
            break;
    }
}

static pyc_walk_action callback(const pyc_walk_entry *e, void *ctx)
{
    struct probe *p = ctx;
    p->count++;
    if (e->event == PYC_WALK_DIR_PRE && p->verify) {
        size_t d = (size_t)e->depth;
        if (d >= p->cap) {
            size_t n = p->cap ? p->cap * 2 : 64;
            while (n <= d)
                n *= 2;
            dev_t *dv = realloc(p->devs, n * sizeof *dv);
            if (dv)
                p->devs = dv;
            ino_t *iv = realloc(p->inos, n * sizeof *iv);
            if (iv)
                p->inos = iv;
            if (!dv || !iv) {
                perror("walk_probe");
                exit(2);
            }
            p->cap = n;
        }
        p->devs[d] = e->dev;
        p->inos[d] = e->ino;
    }
    if (p->verify)
        verify(p, e);
    if (!p->count_only) {
        switch (e->event) {
        case PYC_WALK_FILE:
            printf("F %c %s", type_letter(e->type), e->path);
            break;
        case PYC_WALK_DIR_PRE:
            printf("D d %s", e->path);
            break;
        case PYC_WALK_DIR_POST:
            printf("P d %s", e->path);
            break;
        case PYC_WALK_ERROR:
            printf("E %c %d %s %s", type_letter(e->type), e->error,
                   e->error_op ? e->error_op : "-", e->path);
            break;
        case PYC_WALK_FILES_END: /* the probe does not ask for it */
            printf("X d %s", e->path);
            break;
        }
        putchar('\0');
    }
    if (e->event == PYC_WALK_DIR_PRE && p->prune && e->depth > 0 &&
        strcmp(e->name, p->prune) == 0)
        return PYC_WALK_PRUNE;
    return PYC_WALK_CONTINUE;
}

int main(int argc, char **argv)
{
    pyc_walk_options opt = {0};
    struct probe p = {0};
    const char **ignore = calloc((size_t)argc, sizeof *ignore);
    const char **roots = calloc((size_t)argc, sizeof *roots);
    size_t nignore = 0, nroots = 0;
    int i, rc;

    if (!ignore || !roots) {
        perror("walk_probe");
        return 2;
    }
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            for (i++; i < argc; i++)
                roots[nroots++] = argv[i];
            break;
        } else if (strcmp(a, "--skip-vcs") == 0) {
            opt.skip_vcs = true;
        } else if (strcmp(a, "--skip-node-modules") == 0) {
            opt.skip_node_modules = true;
        } else if (strcmp(a, "--skip-venvs") == 0) {
            opt.skip_venvs = true;
        } else if (strcmp(a, "--one-file-system") == 0) {
            opt.one_file_system = true;
        } else if (strcmp(a, "--ignore") == 0 && i + 1 < argc) {
            ignore[nignore++] = argv[++i];
            opt.ignore_names = ignore;
        } else if (strcmp(a, "--max-fds") == 0 && i + 1 < argc) {
            opt.max_open_fds = atoi(argv[++i]);
        } else if (strcmp(a, "--prune") == 0 && i + 1 < argc) {
            p.prune = argv[++i];
        } else if (strcmp(a, "--count") == 0) {
            p.count_only = true;
        } else if (strcmp(a, "--verify") == 0) {
            p.verify = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "walk_probe: unknown option '%s'\n", a);
            return 2;
        } else {
            roots[nroots++] = a;
        }
    }
    rc = pyc_walk(roots, nroots, &opt, callback, &p);
    if (rc < 0) {
        perror("walk_probe: pyc_walk");
        return 2;
    }
    if (p.count_only)
        printf("%lu entries\n", p.count);
    if (fflush(stdout) != 0)
        return 2;
    free(p.devs);
    free(p.inos);
    free(ignore);
    free(roots);
    return p.failures ? 1 : 0;
}
