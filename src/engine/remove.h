/*
 * remove.h — race-safe deletion, shared by every command that deletes
 * (clean, prune, and later watch and doctor --fix).
 *
 * Two layers:
 *   1. syscalls: remove one non-directory entry, one empty directory, or a
 *      whole tree, each addressed as (parent fd, name) so nothing is ever
 *      resolved through a path that could change under us; the type of the
 *      entry is checked with fstatat(AT_SYMLINK_NOFOLLOW) right before the
 *      unlinkat, links are removed as links (their targets are never
 *      touched), directories are entered with O_NOFOLLOW and only on the
 *      device the tree started on;
 *   2. a removal run: the counts, the output (human, JSON Lines, NUL), the
 *      dry run, the throttled error lines and the exit status that clean
 *      and prune share, so the two commands speak the same way.
 */
#ifndef PYCACHE_CLI_REMOVE_H
#define PYCACHE_CLI_REMOVE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "engine/archive.h"
#include "engine/output.h"
#include "engine/scan.h"

/* ---- 1. syscalls ------------------------------------------------------------------ */

/* remove_file_at: the entry was not a regular file or symlink any more (a
 * directory, FIFO, socket or device was swapped in): left alone. */
#define REMOVE_NOT_FILE 1

/* Removes the non-directory NAME in DIRFD: fstatat(AT_SYMLINK_NOFOLLOW),
 * then, if it is a regular file or a symlink, unlinkat(DIRFD, NAME, 0).
 * DRY_RUN: only the fstatat. ST (if not NULL) receives what was there.
 * Returns 0 when removed (or would be), REMOVE_NOT_FILE when something else
 * is there now (left alone), -1 with errno on failure (ENOENT: already
 * gone). */
int remove_file_at(int dirfd, const char *name, bool dry_run, struct stat *st);

/* Removes the directory NAME in DIRFD if it is empty: unlinkat with
 * AT_REMOVEDIR, which never follows a link and never removes a non-empty
 * directory. Returns 0, or -1 with errno (ENOTEMPTY, ENOTDIR, ENOENT...). */
int remove_empty_dir_at(int dirfd, const char *name);

/* What remove_tree_at did (or would do, dry run). */
typedef struct remove_tree_stats {
    uint64_t files;   /* non-directories removed (links as links) */
    uint64_t dirs;    /* directories removed, the top one included */
    uint64_t bytes;   /* st_size of the files removed */
    uint64_t errors;  /* entries that could not be removed */
} remove_tree_stats;

/* Called for each entry remove_tree_at could not remove (PATH: the display
 * path, ERR: errno; REMOVE_NOT_FILE-like surprises come as EXDEV for a
 * mount point, ELOOP for a tree too deep). */
typedef void remove_tree_error_fn(const char *op, const char *path, int err, void *ctx);

/* Removes the directory NAME in DIRFD and everything in it, depth first:
 * each directory opened with openat(O_NOFOLLOW | O_DIRECTORY) relative to
 * its parent's fd and checked to be on DEV (the device of the tree's top;
 * another file system mounted inside is left alone and reported as EXDEV),
 * each non-directory removed with unlinkat (a symlink as a link), each
 * directory with unlinkat(AT_REMOVEDIR) after its entries. When EXPECT is
 * not NULL, the top must still be that directory (st_dev and st_ino), else
 * nothing is done and -1/ESTALE is returned. PATH is the top's display path
 * (for errors). DRY_RUN: counts what would go, removes nothing. Returns 0
 * when everything went (or would), -1 when something could not be removed
 * (reported through ON_ERROR, counted in STATS->errors). */
int remove_tree_at(int dirfd, const char *name, const char *path,
                   const struct stat *expect, bool dry_run,
                   remove_tree_stats *stats, remove_tree_error_fn *on_error,
                   void *ctx);

/* ---- 2. a removal run ------------------------------------------------------------------ */

typedef struct remove_run remove_run;

typedef struct remove_run_options {
    const char *command;  /* "clean", "prune": for the help in messages */
    cli_format format;
    bool dry_run;
    bool verbose;         /* human: a line per file removed or kept */
    bool quiet;           /* human: nothing but errors */
    bool report_status;   /* human lines carry the status (prune) */
    bool color;           /* human: colour the action words */
    const char *output;   /* remove_run_archive sets it: the archive
                             written, named in the summary */
} remove_run_options;

/* NULL with errno on allocation failure. */
remove_run *remove_run_new(const remove_run_options *opt);
void remove_run_free(remove_run *r);

/* Removes the cache file of IT (SCAN_CACHE, SCAN_MISSING never): reports it
 * (removed / would-remove), counts it, or reports the failure. When
 * remove_run_unlink already removed it (IT->removal.attempted), only
 * reports what happened. Returns 0, or -1 when the removal failed (already
 * reported, exit status 3). */
int remove_run_cache(remove_run *r, const scan_item *it);

/* The syscalls of remove_run_cache without its reporting: remove_file_at
 * on IT's file (dry run: the fstatat only), the outcome kept in
 * IT->removal for remove_run_cache to report. Reads nothing of R but its
 * options, so a scan's walking threads call it at once, outside the lock
 * (scan_options.prepare); the report must follow in the same thread's next
 * callback, before the directory's SCAN_PYCACHE_POST. */
void remove_run_unlink(const remove_run *r, scan_item *it);

/* Whether prune removes a cache file judged V: what CPython can never use
 * or should not use — stale, stale-used, orphan, shadowed, corrupt, temp —
 * and a sourceless one only with SOURCELESS; never one that could not be
 * read (it was not judged). prune and watch --prune share this set. */
bool remove_prunable(const pyc_verdict *v, bool sourceless);

/* Keeps the file of IT. REPORTED: shown even without -v (a foreign file,
 * a sourceless pyc kept by prune) with WHY as its human detail; FINDING:
 * the kept file is work left undone on purpose (exit status 1). Marks its
 * directories as not becoming empty. */
void remove_run_keep(remove_run *r, const scan_item *it, bool reported,
                     bool finding, const char *why);

/* A __pycache__ directory after its entries (SCAN_PYCACHE_POST): removed
 * when it is empty now (dry run: when nothing in it is kept). */
void remove_run_pycache_post(remove_run *r, const scan_item *it);

/* A SCAN_ERROR item: one line on stderr, exit status 3. */
void remove_run_scan_error(remove_run *r, const scan_item *it);

/* Removes the debris directory or file NAME in DIRFD (TOPIC: "pytest",
 * "coverage"...; ST: what the caller checked, from fstatat without following
 * links), recursively for a directory. */
void remove_run_debris(remove_run *r, int dirfd, const char *name, const char *path,
                       const struct stat *st, const char *topic);

/* After a scan in prefix mode: removes the directories of the prefix tree
 * under each ROOT that are left empty, then each ROOT's ancestors up to,
 * never including, PREFIX_ROOT (dry run: those nothing kept is under). */
void remove_run_prefix_dirs(remove_run *r, const char *prefix_root,
                            char *const *roots, size_t nroots,
                            const pyc_walk_options *walk);

/* The scan of a removing command (clean, prune): checks that each PATH
 * exists when a prefix tree is scanned (a missing PATH is an error of its
 * own; a missing prefix subtree only means no caches), runs scan_run with FN,
 * then, in prefix mode, removes the prefix directories left empty. *SCAN_RC
 * receives scan_run's result. Returns the exit status so far. */
int remove_run_scan(remove_run *r, char *const *paths, size_t npaths,
                    const scan_options *sopt, scan_fn *fn, void *ctx, int *scan_rc);

/* A failed removal outside the helpers above (op + path + errno): printed
 * with the run's throttle, exit status 3. */
void remove_run_error(remove_run *r, const char *op, const char *path, int err);

/* The removing commands on an archive (clean, prune ARCHIVE -o OUT): what
 * a choice function makes of each cache member of the archive, shown as a
 * scan item (dirfd -1, archive and member set, its size in removal.st). */
typedef enum remove_choice {
    REMOVE_KEEP = 0,      /* kept, listed with -v */
    REMOVE_DROP,          /* left out of the new archive */
    REMOVE_KEEP_FINDING,  /* kept and listed: work left undone on purpose
                             (prune's sourceless pycs; *WHY says why) */
} remove_choice;
typedef remove_choice remove_choose_fn(const scan_item *it, const char **why, void *ctx);

/* Writes OUTPUT (PATH itself: --in-place), the archive PATH without the
 * cache members CHOOSE drops and the __pycache__ directory members left
 * empty (archive_fix, ARCHIVE_FIX_DROP), reporting each as the removal of
 * a file of a tree is reported; nothing is written with the run's dry run,
 * or on any error. Returns the exit status so far. */
int remove_run_archive(remove_run *r, const char *path, const char *output,
                       const archive_options *aopt, const pyc_verdict_options *vopt,
                       remove_choose_fn *choose, void *ctx);

/* Counts a status for the summary line of prune ("3 stale, 1 orphan"). */
uint64_t remove_run_removed(const remove_run *r);

/* Writes the listing (cli_listing_finish), then prints the summary line
 * (human format, unless quiet) and the count of
 * error lines held back; returns the exit status: 3 if a removal failed,
 * 1 for a dry run that found something to remove or a kept finding, else 0. */
int remove_run_finish(remove_run *r);

#endif /* PYCACHE_CLI_REMOVE_H */
