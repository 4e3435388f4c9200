/*
 * scan.h — the one engine every tree command rides on.
 *
 * scan_run walks the given paths with the library's walker (pyc_walk),
 * classifies each entry by name (pyc_cache_name_parse), judges each cache
 * file (pyc_verdict_judge) with its source stat'ed once for all the tags and
 * optimization levels that share it, and hands the command one scan_item per
 * thing worth reporting. A command is a callback and an output format, not a
 * new loop: check, clean, prune, stats, compile and convert all use it.
 */
#ifndef PYCACHE_SCAN_H
#define PYCACHE_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "pycache.h"
#include "engine/archive.h"
#include "platform/dir.h"

typedef enum scan_event {
    SCAN_CACHE = 0,    /* a cache file (pycache, legacy, prefix or temp) */
    SCAN_FOREIGN,      /* an entry inside __pycache__ that is not bytecode */
    SCAN_SOURCE,       /* a source NAME.py (only with want_sources) */
    SCAN_MISSING,      /* a source without a fresh cache for an --expect
                          interpreter (verdict: the cache judged, if any) */
    SCAN_PYCACHE_POST, /* a __pycache__ directory after its entries; dirfd
                          and name address it for unlinkat(AT_REMOVEDIR) */
    SCAN_ERROR,        /* something could not be read */
} scan_event;

/* What scan_options.prepare did to the file of a SCAN_CACHE item before the
 * command's serialised callback sees it (clean, prune: the removal). */
typedef struct scan_removal {
    bool attempted;   /* the hook removed it (or tried; dry run: checked it) */
    int rc;           /* remove_file_at's result: 0, REMOVE_NOT_FILE or -1 */
    int error;        /* errno when rc is -1 */
    struct stat st;   /* what was there (st_size: the bytes freed) */
} scan_removal;

typedef struct scan_item {
    scan_event event;
    const char *path;         /* display path of the entry */
    size_t path_len;
    int dirfd;                /* the entry's directory, for *at() calls */
    const char *name;         /* the entry's name in dirfd */
    unsigned char type;       /* DT_REG, DT_LNK, DT_DIR ... */
    const pyc_verdict *verdict; /* SCAN_CACHE (and SCAN_MISSING when a cache
                                   exists but is not fresh), else NULL */
    const char *source_path;  /* display path of the source, or NULL */
    const pyc_magic *expect;  /* SCAN_MISSING: the interpreter expected */
    int expect_opt;           /* SCAN_MISSING: the optimization level */
    int error;                /* SCAN_ERROR: errno */
    const char *error_op;     /* SCAN_ERROR: "open", "read", ... */
    int depth;
    scan_removal removal;     /* SCAN_CACHE: what the prepare hook of a
                                 removing command did (clean) */
    void *prepared;           /* what the prepare hook left for the
                                 callback, or NULL */
    const char *archive;      /* a member of an archive (scan_options.
                                 archives): the archive's path as given;
                                 path is then ARCHIVE/member, dirfd -1 and
                                 nothing can be done to the file in place */
    const char *member;       /* the member's name inside ARCHIVE */
    const char *layer;        /* a container image's path: the digest of the
                                 layer that last wrote it */
    const char *error_detail; /* SCAN_ERROR: what is wrong in words, when no
                                 errno says it (an archive's unsafe member) */
} scan_item;

/* Work a command can do on an item in the walking thread, outside the lock
 * that serialises its callback (see scan_run), so a parallel scan runs it
 * on several cores at once: compile judges a source's caches here, clean
 * removes a file (its unlinkat can wait on the disk: remove.c). Called just
 * before the callback gets ITEM, in the same thread, and not once the scan
 * was stopped; *STATE is that thread's own (NULL at first, kept for the
 * rest of the scan, and handed to scan_options.prepare_free at its end). It
 * may fill ITEM->removal or set ITEM->prepared for the callback. It may run
 * in several threads at once and alongside the callback: it must not touch
 * what the callback touches. Another thread may stop the scan between the
 * hook and the callback: then the callback never gets ITEM (which only
 * happens when stdout has failed and nothing more can be reported), so
 * what it leaves must be freeable from STATE alone. */
typedef void scan_prepare_fn(scan_item *item, void **state, void *ctx);

/* A look ahead at the sources of one directory (scan_options.prepare_batch):
 * ITEMS are up to SCAN_SOURCE_BATCH SCAN_SOURCE items of one directory, as
 * prepare and the callback get them next, in that order (a source may still
 * drop out: prepare must not count on it). The hook can start what their
 * prepare will wait for, all at once: compile reads their caches' headers in
 * one io_uring batch (headread.h), where prepare alone would wait for one
 * file after another. Called in the walking thread with the same *STATE as
 * prepare; ITEMS, their paths and names stay valid until the hook is called
 * again with N = 0, which comes once the batch was delivered (not when the
 * scan stopped midway: nothing more is delivered then). Returns true when
 * most of what it read had to come from the device (the page cache is cold
 * here): the scan then runs more walks, so that more reads wait at once. */
typedef bool scan_prepare_batch_fn(const scan_item *items, size_t n, void **state,
                                   void *ctx);

/* Sources per prepare_batch call: a directory's worth for most packages. */
#define SCAN_SOURCE_BATCH 64

/* --expect X.Y[:opt,...]: every source needs a fresh cache for PYTHON at
 * each optimization level in OPTS (bit N set: level N). */
typedef struct scan_expect {
    const pyc_magic *python;
    unsigned opts;
} scan_expect;

typedef enum scan_judge {
    SCAN_JUDGE_FULL = 0, /* read headers, stat sources: a full verdict */
    SCAN_JUDGE_NAME,     /* classify by name only, no syscall: the
                            verdict's sizes are -1 (clean: what is
                            bytecode is decided by name, and the remover
                            stats each file before unlinking it) */
} scan_judge;

typedef struct scan_options {
    pyc_walk_options walk;
    pyc_verdict_options verdict;
    scan_judge judge;
    const char *prefix;         /* the cache prefix in force
                                   (sys.pycache_prefix), or NULL. With it,
                                   scan_run walks the paths as usual (the
                                   2.7-3.7 caches in __pycache__, legacy
                                   files, sources; the prefix directory
                                   itself is skipped if it lies inside),
                                   then the prefix tree's entries for the
                                   sources under the paths (scan_prefix_root),
                                   where 3.8+ reads and writes: one walk
                                   after the other. A 3.8+ cache in
                                   __pycache__ is judged as an interpreter
                                   without the prefix would judge it (another
                                   shell may read it), and --expect looks for
                                   a 3.8+ cache in the prefix */
    bool prefix_only;           /* with prefix: visit only the prefix tree
                                   (no paths: all of it) */
    const char *tree_prefix;    /* set by scan_run for the first walk (the
                                   prefix, while prefix is NULL); commands
                                   leave it NULL */
    bool tree_prefix_inside;    /* set by scan_run: the prefix directory
                                   (tree_prefix_dev, _ino) exists, and the
                                   first walk skips it where it meets it */
    dev_t tree_prefix_dev;
    ino_t tree_prefix_ino;
    const scan_expect *expect;  /* may be NULL */
    size_t nexpect;
    bool want_sources;          /* deliver SCAN_SOURCE for each NAME.py */
    bool sources_only;          /* deliver only sources (and errors): cache
                                   files are classified by name and skipped,
                                   never judged (compile judges the one cache
                                   each source needs itself), and no
                                   __pycache__ below a root is entered */
    bool no_sizes;              /* the command needs no file sizes: spare
                                   the fstat of each regular cache file
                                   (verdict sizes stay -1) */
    bool progress;              /* a progress line on stderr (a terminal) */
    scan_prepare_fn *prepare;   /* may be NULL (see scan_prepare_fn) */
    void (*prepare_free)(void *state, void *ctx); /* each thread's *STATE
                                   at the end of the scan, if not NULL */
    scan_prepare_batch_fn *prepare_batch; /* may be NULL; only with
                                   sources_only and want_sources, without
                                   --expect or a prefix tree (see
                                   scan_prepare_batch_fn) */
    bool waits_on_device;       /* the prepare hook's syscalls wait on the
                                   disk (unlinkat): run more walks than
                                   cores, so the waits overlap */
    archive_options *archives;  /* a PATH that is an archive (by its
                                   content: engine/archive.h) is judged
                                   member by member with these options;
                                   NULL: the command cannot handle archives,
                                   and such a PATH is a SCAN_ERROR
                                   (EOPNOTSUPP) */
    bool no_roots;              /* visit nothing (an -i list that named
                                   nothing), rather than "." */
    size_t listed;              /* the last LISTED paths came from -i lists
                                   (package file lists, git ls-files): a
                                   directory among them is not walked, since
                                   such lists name every directory as well
                                   as its files (dpkg -L names "/usr") */
} scan_options;

/* Called for each item; return 0 to go on, non-zero to stop the scan. */
typedef int scan_fn(const scan_item *item, void *ctx);

/* Runs the scan over PATHS (none: "."; in prefix mode, none: the whole
 * prefix tree). A path may be a directory (walked), a cache file (judged
 * alone), or a source NAME.py, which (unless the command wants sources:
 * want_sources, sources_only) stands for its caches: every tag and
 * level in its __pycache__ (temp files included), the legacy NAME.pyc and
 * NAME.pyo beside it, or in prefix mode its entries in the prefix tree;
 * after them comes one SCAN_PYCACHE_POST for the __pycache__ they were in
 * (clean removes it once empty). Errors on the way are delivered as
 * SCAN_ERROR items (the scan goes on). Returns 0 when the scan completed, 1 when the callback
 * stopped it, -1 with errno when it could not run at all (out of memory). */
int scan_run(char *const *paths, size_t npaths, const scan_options *opt,
             scan_fn *fn, void *ctx);

/* The subtree of the PYTHONPYCACHEPREFIX tree PREFIX that holds the caches
 * of the sources under PATH: PREFIX + PATH made absolute (realpath; as given
 * when it does not resolve), as importlib's cache_from_source maps a source
 * (3.8+); the prefix itself (trailing slashes dropped) when PATH is NULL.
 * Returns a malloc'd string, or NULL with errno = ENOMEM. */
char *scan_prefix_root(const char *prefix, const char *path);

/* At most this many --ignore names (walk.ignore_names). */
#define SCAN_MAX_IGNORES 256

/* The default walk options of every tree command: VCS metadata,
 * node_modules and virtual environments (by their pyvenv.cfg) skipped. */
void scan_default_options(scan_options *opt);

#endif /* PYCACHE_SCAN_H */
