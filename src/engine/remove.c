/*
 * remove.c — race-safe deletion and the removal run clean and prune share.
 *
 * Every removal is an *at() call on the fd of the directory the walk is in,
 * with the entry's name: a path component swapped for a symlink mid-walk
 * can never lead the deletion outside the tree. Non-directories are checked
 * with fstatat(AT_SYMLINK_NOFOLLOW) right before unlinkat (Linux's unlinkat
 * without AT_REMOVEDIR refuses directories anyway, EISDIR, and never
 * follows a final symlink: the check makes a swap visible and reportable
 * rather than being the only guard). Directories go with AT_REMOVEDIR,
 * which only ever removes an empty one.
 *
 * Where the time goes. Removing a file can wait on the disk: on ext4
 * without a journal mounted with -o discard, unlinkat itself sleeps in
 * ext4_free_blocks -> blkdev_issue_discard -> submit_bio_wait until the
 * device has discarded the file's blocks (perf record -e sched:sched_switch
 * -g of a clean: 85% of the switches are there). Such a removal costs the
 * device's latency, not CPU, and two removals in flight at once cost little
 * more than one: so a scan's removals are made by its walking threads
 * themselves (remove_run_unlink, scan_options.prepare), outside the lock that
 * serialises the command's callback, which only reports them
 * (remove_run_cache). Under the lock, the walks took turns waiting.
 *
 * The fstatat before each unlinkat stays: it costs about a microsecond
 * (the walk has just read the directory, the inode is cached) against the
 * unlinkat's tens, it gives the size the summary reports as bytes freed
 * (unlinkat tells nothing; the walk's d_type tells no size), and it keeps a
 * FIFO, socket or device node swapped in under a bytecode name from being
 * unlinked (unlinkat would remove it: it is not a directory). d_type from
 * getdents alone would be a check made earlier, not a cheaper equal one.
 *
 * Errors are one line each on stderr (git style), but a read-only file
 * system or a root-owned tree would produce thousands of identical lines:
 * the first ERRORS_SHOWN failures of each errno are printed, the rest are
 * counted and summed up in one line at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/archive.h"
#include "engine/remove.h"
#include "engine/report.h"
#include "platform/dir.h"

/* ---- 1. syscalls ------------------------------------------------------------------ */

int remove_file_at(int dirfd, const char *name, bool dry_run, struct stat *st)
{
    struct stat local;
    if (!st)
        st = &local;
    if (fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) != 0)
        return -1;
    if (!S_ISREG(st->st_mode) && !S_ISLNK(st->st_mode))
        return REMOVE_NOT_FILE;
    if (dry_run)
        return 0;
    return unlinkat(dirfd, name, 0);
}

int remove_empty_dir_at(int dirfd, const char *name)
{
    return unlinkat(dirfd, name, AT_REMOVEDIR);
}

#define TREE_MAX_DEPTH 200 /* one fd per level: stay far below RLIMIT_NOFILE */

struct tree {
    bool dry_run;
    dev_t dev;
    remove_tree_stats *stats;
    remove_tree_error_fn *on_error;
    void *ctx;
    char *path; /* display path, grown as needed */
    size_t cap;
};

static int tree_fail(struct tree *t, const char *op, int err)
{
    t->stats->errors++;
    if (t->on_error)
        t->on_error(op, t->path, err, t->ctx);
    return -1;
}

/* Appends "/NAME" to t->path; returns the old length, or (size_t)-1. */
static size_t tree_push(struct tree *t, const char *name)
{
    size_t len = strlen(t->path), n = strlen(name);
    if (len + n + 2 > t->cap) {
        size_t cap = t->cap * 2;
        while (cap < len + n + 2)
            cap *= 2;
        char *p = realloc(t->path, cap);
        if (!p)
            return (size_t)-1;
        t->path = p;
        t->cap = cap;
    }
    t->path[len] = '/';
    memcpy(t->path + len + 1, name, n + 1);
    return len;
}

/* Empties the open directory FD (consumed) and returns 0 if everything in it
 * went. */
static int tree_empty(struct tree *t, int fd, int depth)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        int err = errno;
        close(fd);
        return tree_fail(t, "open", err);
    }
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                rc = tree_fail(t, "read", errno);
            break;
        }
        const char *name = de->d_name;
        if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
            continue;
        size_t old = tree_push(t, name);
        if (old == (size_t)-1) {
            rc = tree_fail(t, "remove", ENOMEM);
            break;
        }
        struct stat st;
        if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT)
                rc = tree_fail(t, "stat", errno);
        } else if (S_ISDIR(st.st_mode)) {
            if (st.st_dev != t->dev) {
                rc = tree_fail(t, "remove", EXDEV); /* a mount point: left alone */
            } else if (depth + 1 >= TREE_MAX_DEPTH) {
                rc = tree_fail(t, "remove", ELOOP);
            } else {
                int cfd = openat(dirfd(d), name,
                                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (cfd < 0) {
                    if (errno != ENOENT)
                        rc = tree_fail(t, "open", errno);
                } else {
                    struct stat cst;
                    /* The directory we stat'ed, not one swapped in since. */
                    if (fstat(cfd, &cst) != 0 || cst.st_dev != st.st_dev ||
                        cst.st_ino != st.st_ino) {
                        close(cfd);
                        rc = tree_fail(t, "remove", ESTALE);
                    } else if (tree_empty(t, cfd, depth + 1) != 0) {
                        rc = -1;
                    } else if (t->dry_run) {
                        t->stats->dirs++;
                    } else if (unlinkat(dirfd(d), name, AT_REMOVEDIR) == 0) {
                        t->stats->dirs++;
                    } else if (errno != ENOENT) {
                        rc = tree_fail(t, "remove", errno);
                    }
                }
            }
        } else if (t->dry_run) {
            t->stats->files++;
            t->stats->bytes += (uint64_t)st.st_size;
        } else if (unlinkat(dirfd(d), name, 0) == 0) {
            t->stats->files++;
            t->stats->bytes += (uint64_t)st.st_size;
        } else if (errno != ENOENT) {
            rc = tree_fail(t, "remove", errno);
        }
        t->path[old] = '\0';
    }
    closedir(d);
    return rc;
}

int remove_tree_at(int dirfd, const char *name, const char *path,
                   const struct stat *expect, bool dry_run,
                   remove_tree_stats *stats, remove_tree_error_fn *on_error,
                   void *ctx)
{
    struct tree t = {
        .dry_run = dry_run, .stats = stats, .on_error = on_error, .ctx = ctx,
    };
    t.cap = strlen(path) + 256;
    t.path = malloc(t.cap);
    if (!t.path)
        return -1;
    strcpy(t.path, path);
    int rc = -1;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        tree_fail(&t, "open", errno);
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        tree_fail(&t, "stat", errno);
        close(fd);
        goto out;
    }
    if (expect && (st.st_dev != expect->st_dev || st.st_ino != expect->st_ino)) {
        tree_fail(&t, "remove", ESTALE);
        close(fd);
        goto out;
    }
    t.dev = st.st_dev;
    if (tree_empty(&t, fd, 0) != 0)
        goto out;
    if (!dry_run && unlinkat(dirfd, name, AT_REMOVEDIR) != 0) {
        tree_fail(&t, "remove", errno);
        goto out;
    }
    stats->dirs++;
    rc = 0;
out:
    free(t.path);
    return rc;
}

/* ---- a set of directory paths (where something is kept) ------------------------------- */

struct pathset {
    char **slots;
    size_t cap, used;
};

static size_t hash_path(const char *s, size_t n)
{
    size_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static bool pathset_has(const struct pathset *s, const char *p, size_t n)
{
    if (!s->cap)
        return false;
    for (size_t i = hash_path(p, n) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        const char *k = s->slots[i];
        if (!k)
            return false;
        if (strlen(k) == n && memcmp(k, p, n) == 0)
            return true;
    }
}

/* Adds P[0..n); 1 when added, 0 when present, -1 out of memory. */
static int pathset_add(struct pathset *s, const char *p, size_t n)
{
    if (pathset_has(s, p, n))
        return 0;
    if ((s->used + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        char **slots = calloc(cap, sizeof *slots);
        if (!slots)
            return -1;
        for (size_t k = 0; k < s->cap; k++) {
            char *key = s->slots[k];
            if (!key)
                continue;
            size_t i = hash_path(key, strlen(key)) & (cap - 1);
            while (slots[i])
                i = (i + 1) & (cap - 1);
            slots[i] = key;
        }
        free(s->slots);
        s->slots = slots;
        s->cap = cap;
    }
    char *key = strndup(p, n);
    if (!key)
        return -1;
    size_t i = hash_path(p, n) & (s->cap - 1);
    while (s->slots[i])
        i = (i + 1) & (s->cap - 1);
    s->slots[i] = key;
    s->used++;
    return 1;
}

static void pathset_free(struct pathset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slots[i]);
    free(s->slots);
}

/* Length of PATH's directory part: up to its last slash, trailing slashes
 * dropped ("a/b//c" -> "a/b"); 0 when there is none. */
static size_t parent_len(const char *path, size_t n)
{
    while (n > 0 && path[n - 1] != '/')
        n--;
    while (n > 1 && path[n - 1] == '/')
        n--;
    return n;
}

/* ---- 2. a removal run ------------------------------------------------------------------ */

#define ERRORS_SHOWN 10 /* per errno, then counted */
#define ERRNO_SLOTS 256

struct remove_run {
    remove_run_options opt;
    int status;
    uint64_t files, bytes, dirs;
    uint64_t by_status[PYC_STATUS_COUNT];
    uint64_t debris;
    uint64_t kept_reported;
    uint64_t failures;
    unsigned long shown[ERRNO_SLOTS];
    unsigned long hidden[ERRNO_SLOTS];
    struct pathset kept; /* directories that will not become empty */
    bool out_of_memory;
    bool archive_written; /* remove_run_archive wrote opt.output */
};

remove_run *remove_run_new(const remove_run_options *opt)
{
    remove_run *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->opt = *opt;
    return r;
}

void remove_run_free(remove_run *r)
{
    if (!r)
        return;
    pathset_free(&r->kept);
    free(r);
}

void remove_run_error(remove_run *r, const char *op, const char *path, int err)
{
    r->status = cli_exit_merge(r->status, CLI_EXIT_IO);
    r->failures++;
    unsigned slot = err > 0 && err < ERRNO_SLOTS ? (unsigned)err : 0;
    /* The file's own record (--json: "action": "failed") says it too. */
    if (r->shown[slot] < ERRORS_SHOWN) {
        r->shown[slot]++;
        cli_error_path(op, path, err);
    } else {
        r->hidden[slot]++;
    }
}

static void tree_error(const char *op, const char *path, int err, void *ctx)
{
    remove_run *r = ctx;
    if (err == EXDEV) {
        /* Not a failure of ours: a file system mounted inside debris. */
        r->status = cli_exit_merge(r->status, CLI_EXIT_IO);
        cli_error("not removing '%s': another file system is mounted there", path);
        return;
    }
    remove_run_error(r, op, path, err);
}

/* Marks the directories holding PATH (all its ancestors) as not becoming
 * empty. Stops at the first one already marked: its ancestors are too. */
static void mark_kept(remove_run *r, const char *path, size_t n)
{
    for (size_t d = parent_len(path, n); d > 0; d = parent_len(path, d)) {
        int added = pathset_add(&r->kept, path, d);
        if (added < 0)
            r->out_of_memory = true;
        if (added <= 0)
            break;
        if (d == 1 && path[0] == '/')
            break;
    }
}

static const char *action_word(const remove_run *r)
{
    return r->opt.dry_run ? "would-remove" : "removed";
}

static void human_line(remove_run *r, const char *action, const char *path,
                       const char *detail)
{
    FILE *f = cli_listing();
    /* Colour (--color): what goes yellow, what stays dim, a failure red. */
    const char *sgr = !r->opt.color ? NULL
                      : strcmp(action, "kept") == 0 ? CLI_SGR_DIM
                      : strcmp(action, "partly removed") == 0 ? "\033[31m"
                                                               : "\033[33m";
    if (sgr)
        fputs(sgr, f);
    fputs(action, f);
    if (sgr)
        fputs(CLI_SGR_RESET, f);
    fputc(' ', f);
    cli_print_path(f, path);
    if (detail && *detail)
        fprintf(f, "  (%s)", detail);
    fputc('\n', f);
    cli_listing_end(path, strlen(path));
}

/* A path alone, NUL-terminated (-0). */
static void nul_line(const char *path)
{
    FILE *f = cli_listing();
    fputs(path, f);
    fputc('\0', f);
    cli_listing_end(path, strlen(path));
}

/* The detail of a judged file: "stale: mtime, 3.11". */
static void verdict_detail(const pyc_verdict *v, char *buf, size_t cap)
{
    char python[32];
    report_python_label(report_python_of(v), python, sizeof python);
    const char *reason = pyc_reason_name(v->reason);
    snprintf(buf, cap, "%s%s%s, %s", pyc_status_name(v->status), *reason ? ": " : "",
             reason, python);
}

bool remove_prunable(const pyc_verdict *v, bool sourceless)
{
    if (v->error && v->reason == PYC_REASON_UNREADABLE)
        return false;
    switch (v->status) {
    case PYC_SOURCELESS:
        return sourceless;
    case PYC_STALE:
    case PYC_STALE_USED:
    case PYC_ORPHAN:
    case PYC_SHADOWED:
    case PYC_CORRUPT:
    case PYC_TEMP:
        return true;
    case PYC_FRESH:
    case PYC_MISSING:
    case PYC_FOREIGN:
    case PYC_STATUS_COUNT:
        break;
    }
    return false;
}

void remove_run_unlink(const remove_run *r, scan_item *it)
{
    scan_removal *rm = &it->removal;
    rm->rc = remove_file_at(it->dirfd, it->name, r->opt.dry_run, &rm->st);
    rm->error = rm->rc < 0 ? errno : 0;
    rm->attempted = true;
}

int remove_run_cache(remove_run *r, const scan_item *it)
{
    scan_removal now;
    const scan_removal *rm = &it->removal;
    if (!rm->attempted) {
        now.rc = remove_file_at(it->dirfd, it->name, r->opt.dry_run, &now.st);
        now.error = now.rc < 0 ? errno : 0;
        rm = &now;
    }
    const struct stat *st = &rm->st;
    int rc = rm->rc;
    if (rc != 0) {
        if (rc < 0 && rm->error == ENOENT)
            return 0; /* gone since the walk saw it: nothing to do */
        mark_kept(r, it->path, it->path_len);
        if (rc == REMOVE_NOT_FILE) {
            r->status = cli_exit_merge(r->status, CLI_EXIT_IO);
            r->failures++;
            cli_error("not removing '%s': no longer a regular file or symlink", it->path);
        } else {
            remove_run_error(r, "remove", it->path, rm->error);
        }
        if (r->opt.format == CLI_FORMAT_JSON)
            report_json_verdict_member(it->path, it->source_path, it->verdict, NULL,
                                       "action", "failed", it->archive, it->member);
        return -1;
    }
    r->files++;
    r->bytes += (uint64_t)st->st_size;
    if (it->verdict)
        r->by_status[it->verdict->status]++;
    switch (r->opt.format) {
    case CLI_FORMAT_JSON: {
        pyc_verdict v = *it->verdict;
        if (v.file_size < 0)
            v.file_size = (int64_t)st->st_size;
        report_json_verdict_member(it->path, it->source_path, &v, NULL, "action",
                                   action_word(r), it->archive, it->member);
        break;
    }
    case CLI_FORMAT_NUL:
        nul_line(it->path);
        break;
    case CLI_FORMAT_GITHUB:
        if (it->verdict && r->opt.dry_run)
            report_github_verdict(it->path, it->verdict->status, it->verdict, NULL);
        break;
    case CLI_FORMAT_HUMAN:
        if (!r->opt.quiet && (r->opt.verbose || r->opt.dry_run)) {
            char detail[128] = "";
            if (r->opt.report_status && it->verdict)
                verdict_detail(it->verdict, detail, sizeof detail);
            human_line(r, r->opt.dry_run ? "would remove" : "removed", it->path, detail);
        }
        break;
    }
    return 0;
}

void remove_run_keep(remove_run *r, const scan_item *it, bool reported, bool finding,
                     const char *why)
{
    mark_kept(r, it->path, it->path_len);
    if (finding)
        r->status = cli_exit_merge(r->status, CLI_EXIT_FINDINGS);
    if (reported)
        r->kept_reported++;
    if (!reported && !r->opt.verbose)
        return;
    switch (r->opt.format) {
    case CLI_FORMAT_JSON:
        if (it->verdict) {
            report_json_verdict_member(it->path, it->source_path, it->verdict, NULL,
                                       "action", "kept", it->archive, it->member);
        } else {
            pyc_verdict v;
            memset(&v, 0, sizeof v);
            v.status = PYC_FOREIGN;
            v.reason = PYC_REASON_NOT_BYTECODE;
            v.file_size = -1;
            struct stat st;
            if (it->archive)
                v.file_size = it->removal.st.st_size;
            else if (fstatat(it->dirfd, it->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                     !S_ISDIR(st.st_mode))
                v.file_size = (int64_t)st.st_size;
            report_json_verdict_member(it->path, NULL, &v, NULL, "action", "kept",
                                       it->archive, it->member);
        }
        break;
    case CLI_FORMAT_NUL:
        break;
    case CLI_FORMAT_GITHUB:
        if (it->verdict && finding)
            report_github_verdict(it->path, it->verdict->status, it->verdict, NULL);
        break;
    case CLI_FORMAT_HUMAN:
        if (!r->opt.quiet) {
            char detail[160] = "";
            if (r->opt.report_status && it->verdict) {
                verdict_detail(it->verdict, detail, sizeof detail);
                if (why && *why) {
                    size_t n = strlen(detail);
                    snprintf(detail + n, sizeof detail - n, "; %s", why);
                }
            } else if (why) {
                snprintf(detail, sizeof detail, "%s", why);
            }
            human_line(r, "kept", it->path, detail);
        }
        break;
    }
}

/* A directory removed (or that would be): KIND "directory" in JSON. */
static void report_dir_member(remove_run *r, const char *path, const char *archive,
                              const char *member)
{
    r->dirs++;
    switch (r->opt.format) {
    case CLI_FORMAT_JSON: {
        cli_json j;
        cli_json_begin(&j, cli_listing());
        cli_json_str(&j, "path", path);
        static const char *const nulls[] = {"status", "reason", "source"};
        for (size_t i = 0; i < 3; i++)
            cli_json_null(&j, nulls[i]);
        cli_json_str(&j, "kind", "directory");
        report_json_fields_null(&j, "kind");
        cli_json_str(&j, "action", action_word(r));
        if (archive) {
            cli_json_str(&j, "archive", archive);
            cli_json_str(&j, "member", member);
        }
        cli_json_end(&j);
        cli_listing_end(path, strlen(path));
        break;
    }
    case CLI_FORMAT_NUL:
        nul_line(path);
        break;
    case CLI_FORMAT_GITHUB:
        break;
    case CLI_FORMAT_HUMAN:
        if (!r->opt.quiet && (r->opt.verbose || r->opt.dry_run))
            human_line(r, r->opt.dry_run ? "would remove" : "removed", path, NULL);
        break;
    }
}

static void report_dir(remove_run *r, const char *path)
{
    report_dir_member(r, path, NULL, NULL);
}

/* Dry run: does directory NAME in DIRFD hold a subdirectory (which the scan
 * delivers nothing for, and which would keep it from being removed)? */
static bool holds_subdirectory(int parent_fd, const char *name)
{
    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return true;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return true;
    }
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2])))
            continue;
        struct stat st;
        unsigned char type = PSYS_DIRENT_TYPE(de);
        if (type == DT_DIR)
            found = true;
        else if (type == DT_UNKNOWN &&
                 fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
            found = true;
    }
    closedir(d);
    return found;
}

void remove_run_pycache_post(remove_run *r, const scan_item *it)
{
    if (it->dirfd == -1)
        return;
    if (r->opt.dry_run) {
        if (pathset_has(&r->kept, it->path, it->path_len) ||
            holds_subdirectory(it->dirfd, it->name)) {
            mark_kept(r, it->path, it->path_len);
            return;
        }
        report_dir(r, it->path);
        return;
    }
    if (pathset_has(&r->kept, it->path, it->path_len))
        return; /* holds what was kept: not empty, and no error to report */
    if (remove_empty_dir_at(it->dirfd, it->name) == 0) {
        report_dir(r, it->path);
        return;
    }
    int err = errno;
    mark_kept(r, it->path, it->path_len);
    if (err == ENOTEMPTY || err == EEXIST || err == ENOENT || err == ENOTDIR)
        return; /* what it holds was reported (foreign, kept, failed) */
    remove_run_error(r, "remove", it->path, err);
}

void remove_run_scan_error(remove_run *r, const scan_item *it)
{
    mark_kept(r, it->path, it->path_len);
    /* The directory itself could not be read: it will not become empty. */
    pathset_add(&r->kept, it->path, it->path_len);
    r->status = cli_exit_merge(r->status, CLI_EXIT_IO);
    report_error_detail(it->error_op ? it->error_op : "read", it->path, it->error,
                        it->error_detail);
}

void remove_run_debris(remove_run *r, int dirfd, const char *name, const char *path,
                       const struct stat *st, const char *topic)
{
    remove_tree_stats ts = {0};
    int rc;
    if (S_ISDIR(st->st_mode)) {
        rc = remove_tree_at(dirfd, name, path, st, r->opt.dry_run, &ts, tree_error, r);
        if (rc != 0 && ts.errors == 0) /* out of memory before anything */
            remove_run_error(r, "remove", path, errno);
    } else {
        struct stat now;
        rc = remove_file_at(dirfd, name, r->opt.dry_run, &now);
        if (rc == 0) {
            ts.files = 1;
            ts.bytes = (uint64_t)now.st_size;
        } else if (rc == REMOVE_NOT_FILE) {
            r->status = cli_exit_merge(r->status, CLI_EXIT_IO);
            cli_error("not removing '%s': no longer a regular file or symlink", path);
        } else if (errno != ENOENT) {
            remove_run_error(r, "remove", path, errno);
        }
    }
    r->files += ts.files;
    r->bytes += ts.bytes;
    if (rc != 0 && !ts.files && !ts.dirs)
        return;
    r->debris++;
    const char *action = rc == 0 ? action_word(r) : "failed";
    switch (r->opt.format) {
    case CLI_FORMAT_JSON: {
        cli_json j;
        cli_json_begin(&j, cli_listing());
        cli_json_str(&j, "path", path);
        cli_json_str(&j, "status", "debris");
        cli_json_str(&j, "reason", topic);
        cli_json_null(&j, "source");
        cli_json_str(&j, "kind", S_ISDIR(st->st_mode) ? "directory" : "file");
        static const char *const more[] = {"implementation", "python", "tag", "opt",
                                           "magic", "mode", "mtime", "source_size",
                                           "hash"};
        for (size_t i = 0; i < sizeof more / sizeof *more; i++)
            cli_json_null(&j, more[i]);
        cli_json_int(&j, "size", (int64_t)ts.bytes);
        cli_json_int(&j, "files", (int64_t)ts.files);
        cli_json_str(&j, "action", action);
        cli_json_end(&j);
        cli_listing_end(path, strlen(path));
        break;
    }
    case CLI_FORMAT_NUL:
        if (rc == 0)
            nul_line(path);
        break;
    case CLI_FORMAT_GITHUB:
        break;
    case CLI_FORMAT_HUMAN:
        if (!r->opt.quiet && (r->opt.verbose || r->opt.dry_run)) {
            char detail[96], bytes[32];
            cli_format_bytes(bytes, sizeof bytes, ts.bytes);
            snprintf(detail, sizeof detail, "%s debris: %llu file%s, %s", topic,
                     (unsigned long long)ts.files, ts.files == 1 ? "" : "s", bytes);
            human_line(r, rc != 0 ? "partly removed" : r->opt.dry_run ? "would remove"
                                                                    : "removed",
                       path, detail);
        }
        break;
    }
}

/* ---- prefix trees ------------------------------------------------------------------------ */

struct prefix_walk {
    remove_run *r;
    const char *prefix_root;
};

static pyc_walk_action prefix_post(const pyc_walk_entry *e, void *ctx)
{
    struct prefix_walk *pw = ctx;
    remove_run *r = pw->r;
    if (e->event == PYC_WALK_ERROR) {
        mark_kept(r, e->path, e->path_len);
        return PYC_WALK_CONTINUE;
    }
    if (e->event != PYC_WALK_DIR_POST || e->dirfd == -1)
        return PYC_WALK_CONTINUE;
    if (e->depth == 0 && strcmp(e->path, pw->prefix_root) == 0)
        return PYC_WALK_CONTINUE; /* never the prefix root itself */
    if (r->opt.dry_run) {
        if (pathset_has(&r->kept, e->path, e->path_len))
            return PYC_WALK_CONTINUE;
        report_dir(r, e->path);
        return cli_stdout_failed() ? PYC_WALK_STOP : PYC_WALK_CONTINUE;
    }
    if (pathset_has(&r->kept, e->path, e->path_len)) {
        mark_kept(r, e->path, e->path_len);
    } else if (remove_empty_dir_at(e->dirfd, e->name) == 0) {
        report_dir(r, e->path);
    } else {
        int err = errno;
        mark_kept(r, e->path, e->path_len);
        pathset_add(&r->kept, e->path, e->path_len);
        if (err != ENOTEMPTY && err != EEXIST && err != ENOENT)
            remove_run_error(r, "remove", e->path, err);
    }
    return cli_stdout_failed() ? PYC_WALK_STOP : PYC_WALK_CONTINUE;
}

/* Dry run: would directory PATH be empty once CHILD (its entry, about to
 * go) is gone? */
static bool only_entry(const char *path, const char *child)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return false;
    }
    bool only = true;
    struct dirent *de;
    while (only && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2])))
            continue;
        if (strcmp(n, child) != 0)
            only = false;
    }
    closedir(d);
    return only;
}

void remove_run_prefix_dirs(remove_run *r, const char *prefix_root, char *const *roots,
                            size_t nroots, const pyc_walk_options *walk)
{
    struct prefix_walk pw = {.r = r, .prefix_root = prefix_root};
    size_t plen = strlen(prefix_root);
    for (size_t i = 0; i < nroots; i++) {
        struct stat st;
        if (lstat(roots[i], &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        const char *one[] = {roots[i]};
        if (pyc_walk(one, 1, walk, prefix_post, &pw) < 0) {
            remove_run_error(r, "walk", roots[i], errno);
            continue;
        }
        /* The root's ancestors inside the prefix, deepest first, while the
         * one below went. */
        size_t n = strlen(roots[i]);
        if (n <= plen || memcmp(roots[i], prefix_root, plen) != 0)
            continue;
        bool below_gone = r->opt.dry_run ? !pathset_has(&r->kept, roots[i], n)
                                         : lstat(roots[i], &st) != 0;
        char *path = strdup(roots[i]);
        if (!path) {
            r->out_of_memory = true;
            continue;
        }
        for (size_t d = parent_len(path, n); below_gone && d > plen; d = parent_len(path, d)) {
            const char *child = path + d + 1;
            while (*child == '/')
                child++;
            char saved = path[d];
            path[d] = '\0';
            if (r->opt.dry_run) {
                below_gone = !pathset_has(&r->kept, path, d) && only_entry(path, child);
            } else {
                below_gone = rmdir(path) == 0;
                if (!below_gone && errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT)
                    remove_run_error(r, "remove", path, errno);
            }
            if (below_gone)
                report_dir(r, path);
            /* Cut after the parent: the next round names its parent. */
            (void)saved;
        }
        free(path);
    }
}

uint64_t remove_run_removed(const remove_run *r)
{
    return r->files + r->dirs;
}

int remove_run_finish(remove_run *r)
{
    r->status = cli_exit_merge(r->status, cli_listing_finish());
    if (r->out_of_memory) {
        cli_error("out of memory: some directories may have been kept");
        r->status = cli_exit_merge(r->status, CLI_EXIT_IO);
    }
    for (unsigned e = 0; e < ERRNO_SLOTS; e++) {
        if (r->hidden[e])
            cli_error("%lu more error%s not shown: %s", r->hidden[e],
                      r->hidden[e] == 1 ? "" : "s", e ? strerror((int)e) : "unknown error");
    }
    if (r->opt.format == CLI_FORMAT_HUMAN && !r->opt.quiet) {
        char bytes[32];
        cli_format_bytes(bytes, sizeof bytes, r->bytes);
        if (!r->files && !r->dirs) {
            printf("nothing to remove");
        } else {
            printf("%s %llu file%s (%s)", r->opt.dry_run ? "would remove" : "removed",
                   (unsigned long long)r->files, r->files == 1 ? "" : "s", bytes);
            if (r->dirs)
                printf(" and %llu director%s", (unsigned long long)r->dirs,
                       r->dirs == 1 ? "y" : "ies");
            if (r->opt.report_status) {
                const char *sep = ": ";
                for (int st = 0; st < PYC_STATUS_COUNT; st++) {
                    if (!r->by_status[st])
                        continue;
                    printf("%s%llu %s", sep, (unsigned long long)r->by_status[st],
                           pyc_status_name((pyc_status)st));
                    sep = ", ";
                }
            }
            if (r->debris)
                printf("%s%llu debris", r->opt.report_status ? "; " : ", ",
                       (unsigned long long)r->debris);
        }
        if (r->opt.output && !r->opt.dry_run && r->archive_written) {
            fputs(" -> ", stdout);
            cli_print_path(stdout, r->opt.output);
        }
        if (r->kept_reported)
            printf("; kept %llu listed above", (unsigned long long)r->kept_reported);
        if (r->failures)
            printf("; %llu error%s (see above)", (unsigned long long)r->failures,
                   r->failures == 1 ? "" : "s");
        putchar('\n');
    }
    if (r->opt.dry_run && (r->files || r->dirs))
        r->status = cli_exit_merge(r->status, CLI_EXIT_FINDINGS);
    return r->status;
}

int remove_run_scan(remove_run *r, char *const *paths, size_t npaths,
                    const scan_options *sopt, scan_fn *fn, void *ctx, int *scan_rc)
{
    int status = CLI_EXIT_OK;
    /* A PATH that does not exist is reported by the scan's walk of the
     * paths themselves, which runs with a prefix in force too (scan_run). */
    int rc = scan_run(paths, npaths, sopt, fn, ctx);
    if (rc < 0) {
        cli_error("cannot scan: %s", strerror(errno));
        status = CLI_EXIT_IO;
    }
    if (rc == 0 && sopt->prefix) {
        char *prefix_root = scan_prefix_root(sopt->prefix, NULL);
        size_t n = npaths ? npaths : 1;
        /* No PATH: the whole prefix tree with --prefix DIR alone, else the
         * prefix subtree of "." (scan_run's default root), never more. */
        const char *dot = sopt->prefix_only ? NULL : ".";
        for (size_t i = 0; i < n && !sopt->no_roots; i++) {
            char *root = prefix_root ? scan_prefix_root(sopt->prefix, npaths ? paths[i] : dot)
                                     : NULL;
            if (!root) {
                cli_error("out of memory");
                status = CLI_EXIT_IO;
                break;
            }
            char *one[] = {root};
            remove_run_prefix_dirs(r, prefix_root, one, 1, &sopt->walk);
            free(root);
        }
        free(prefix_root);
    }
    *scan_rc = rc;
    return status;
}

/* ---- an archive ------------------------------------------------------------------------ */

struct archive_removal {
    remove_run *r;
    remove_choose_fn *choose;
    void *ctx;
};

/* The scan item a member of the archive stands for: no directory to act
 * in (dirfd -1), the member's size as what removing it frees. */
static void member_item(const archive_item *ai, scan_item *it)
{
    memset(it, 0, sizeof *it);
    it->event = ai->event == ARCHIVE_FOREIGN ? SCAN_FOREIGN : SCAN_CACHE;
    it->path = ai->path;
    it->path_len = strlen(ai->path);
    it->dirfd = -1;
    it->name = ai->member;
    it->type = DT_REG;
    it->verdict = ai->verdict;
    it->source_path = ai->source_path;
    it->archive = ai->archive;
    it->member = ai->member;
    it->error = ai->error;
    it->error_op = ai->error_op;
    it->error_detail = ai->error_detail;
    it->removal.st.st_size = ai->size > 0 ? (off_t)ai->size : 0;
}

static bool drop_member(const archive_item *ai, void *ctx)
{
    struct archive_removal *ar = ctx;
    scan_item it;
    member_item(ai, &it);
    const char *why = NULL;
    return ar->choose(&it, &why, ar->ctx) == REMOVE_DROP;
}

static int on_member(const archive_item *ai, void *ctx)
{
    struct archive_removal *ar = ctx;
    remove_run *r = ar->r;
    scan_item it;
    member_item(ai, &it);
    switch (ai->event) {
    case ARCHIVE_ERROR:
        r->status = cli_exit_merge(r->status, CLI_EXIT_IO);
        r->failures++;
        report_error_detail(ai->error_op, ai->path, ai->error, ai->error_detail);
        break;
    case ARCHIVE_FOREIGN:
        remove_run_keep(r, &it, true, false, "foreign: not bytecode");
        break;
    case ARCHIVE_CACHE:
        if (strcmp(ai->action, "removed") == 0) {
            it.removal.attempted = true;
            it.removal.rc = 0;
            remove_run_cache(r, &it);
        } else {
            const char *why = NULL;
            remove_choice c = ar->choose(&it, &why, ar->ctx);
            remove_run_keep(r, &it, c == REMOVE_KEEP_FINDING, c == REMOVE_KEEP_FINDING, why);
        }
        break;
    case ARCHIVE_DIRECTORY:
        report_dir_member(r, ai->path, ai->archive, ai->member);
        break;
    case ARCHIVE_MISSING:
        break;
    }
    return cli_stdout_failed() ? 1 : 0;
}

int remove_run_archive(remove_run *r, const char *path, const char *output,
                       const archive_options *aopt, const pyc_verdict_options *vopt,
                       remove_choose_fn *choose, void *ctx)
{
    struct archive_removal ar = {r, choose, ctx};
    archive_fix_options fix = {
        .kind = ARCHIVE_FIX_DROP, .dry_run = r->opt.dry_run, .drop = drop_member,
        .drop_ctx = &ar,
    };
    r->opt.output = output;
    int rc = archive_fix(path, output, &fix, aopt, vopt, on_member, &ar);
    if (rc < 0)
        r->status = cli_exit_merge(r->status, CLI_EXIT_IO);
    r->archive_written = rc == 0;
    return r->status;
}
