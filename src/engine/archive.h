/*
 * archive.h — the bytecode inside an archive, judged without extracting it.
 *
 * The archive front end reads a zip-family archive (.zip, .whl, .pyz, .egg,
 * jar-like; a zipapp's "#!" line in front is allowed) or a tar in any
 * compression libarchive reads (none, gzip, bzip2, xz, zstd, ...), recognised
 * by content, never by name. It keeps each member's metadata and, for cache
 * files, the first bytes (the whole file under --deep), then judges every
 * cache member with the library's verdict (pyc_verdict_judge_view) against
 * the other members, as one of two users of the archive would:
 *
 *   extracted  the files as an extractor will leave them on disk: sources
 *              carry the mtime the archive records (or the extraction time,
 *              or a clamped one: archive_mtime), and the file-system finder
 *              of the cache's interpreter decides;
 *   zipimport  the archive on sys.path: zipimport of the cache's
 *              interpreter decides (zip archives only).
 *
 * Nothing is written and nothing is extracted. Members are read at most
 * twice (the second pass only for the sources a hash-based pyc needs), and
 * what is decompressed is capped (archive_options.max_bytes), so a lying or
 * hostile archive costs bounded time and memory. Unsafe members (absolute
 * or '..' names, links, encrypted data, duplicates) are reported as errors
 * naming the member; a truncated or corrupt archive is one error.
 */
#ifndef PYCACHE_ENGINE_ARCHIVE_H
#define PYCACHE_ENGINE_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pycache.h"

typedef enum archive_use {
    ARCHIVE_USE_AUTO = 0,  /* zipimport for a zipapp (a .pyz / .pyzw name,
                              or a zip behind a "#!" line), else extracted */
    ARCHIVE_USE_EXTRACTED,
    ARCHIVE_USE_ZIPIMPORT,
} archive_use;

typedef enum archive_mtime {
    ARCHIVE_MTIME_ARCHIVE = 0, /* what the archive records (zip: Info-ZIP
                                  extended timestamp, else the DOS time in
                                  local time; tar: mtime with pax fraction) */
    ARCHIVE_MTIME_NOW,         /* the extractor sets none: every file is as
                                  new as the extraction */
    ARCHIVE_MTIME_EPOCH,       /* clamped: min(recorded, epoch) */
} archive_mtime;

typedef struct archive_options {
    archive_use use;
    archive_mtime mtime;
    int64_t epoch;       /* ARCHIVE_MTIME_EPOCH */
    uint64_t max_bytes;  /* cap on the bytes decompressed in all; 0: the
                            default (ARCHIVE_DEFAULT_MAX_BYTES, or
                            PYCACHE_ARCHIVE_MAX_BYTES from the environment) */
} archive_options;

#define ARCHIVE_DEFAULT_MAX_BYTES (UINT64_C(64) << 30)
/* A source member hashed for a hash-based pyc, or a cache member read
 * whole for --deep, may hold at most this many bytes. */
#define ARCHIVE_MAX_MEMBER_BYTES (UINT64_C(256) << 20)

/* What archive_scan hands its callback, one per cache member (in archive
 * order), per --expect miss, and per problem. */
typedef enum archive_event {
    ARCHIVE_CACHE = 0,  /* a cache member: verdict set */
    ARCHIVE_FOREIGN,    /* a non-bytecode member inside __pycache__ */
    ARCHIVE_MISSING,    /* a source member without a fresh cache for an
                           expected interpreter (verdict: the cache judged,
                           if there is one) */
    ARCHIVE_ERROR,      /* a member (or the archive) could not be judged */
    ARCHIVE_DIRECTORY,  /* archive_fix: a directory member dropped (an
                           empty __pycache__) */
} archive_event;

typedef struct archive_item {
    archive_event event;
    const char *path;        /* ARCHIVE/member (or ARCHIVE for the whole) */
    const char *archive;     /* the archive's path as given */
    const char *member;      /* the member's name, or NULL */
    const char *source_path; /* ARCHIVE/source member, or NULL */
    const pyc_verdict *verdict;
    int64_t size;            /* the member's uncompressed size, -1 unknown */
    const pyc_magic *expect; /* ARCHIVE_MISSING */
    int expect_opt;
    int error;               /* ARCHIVE_ERROR: errno-style code */
    const char *error_op;    /* ARCHIVE_ERROR: "read", "judge", ... */
    const char *error_detail; /* ARCHIVE_ERROR: what is wrong, in words */
    const char *layer;       /* a container image's path: the digest of the
                                layer that last wrote it, or NULL */
    const char *action;      /* archive_fix: what was done (see there) */
    long line;               /* archive_fix, compile "error": the line, or 0 */
} archive_item;

typedef int archive_fn(const archive_item *item, void *ctx);

/* A member's name as extractors use it: leading "./" and "/." components,
 * repeated slashes and a trailing slash dropped. NULL with errno EPERM for
 * a name an extractor could be led out of its directory by (absolute, or
 * a ".." component), EINVAL for an empty one (the top directory), ENOMEM.
 * Built with libarchive only (image.c shares it). */
char *archive_member_name(const char *raw);

/* Whether the file at PATH is an archive this front end reads, by its
 * content: 1 yes (a directory holding an OCI image layout too), 0 no (any
 * other directory, a plain file, a compressed file that holds no tar), -1
 * with errno when it cannot be opened. */
int archive_sniff(const char *path);

/* Judges the cache members of the archive PATH. EXPECT (NEXPECT entries,
 * may be NULL): the interpreters and levels (bit N: level N) every source
 * member needs a fresh cache for. MEMBER, when not NULL, restricts the
 * report to that one member (inspect). Returns 0 when the archive was
 * read to its end (member errors were delivered as items), 1 when the
 * callback stopped it, -1 when the archive is unreadable as a whole (the
 * error was delivered as an item first). */
int archive_scan(const char *path, const archive_options *aopt,
                 const pyc_verdict_options *vopt, const pyc_magic *const *expect,
                 const unsigned *expect_opts, size_t nexpect, const char *member,
                 archive_fn *fn, void *ctx);

/* The same for an archive held in memory (DATA, LEN bytes) shown as SHOWN:
 * the fuzzer's entry. No --expect, no member filter. */
int archive_scan_memory(const void *data, size_t len, const char *shown,
                        const archive_options *aopt, const pyc_verdict_options *vopt,
                        archive_fn *fn, void *ctx);

/* diff, verify: one cache member of an archive (a cache file name, in
 * __pycache__ or legacy; not a temporary file) with its whole bytes. */
typedef struct archive_cache {
    const char *member;          /* its name */
    const char *shown;           /* ARCHIVE/member */
    const unsigned char *data;   /* all of its bytes */
    size_t len;
    /* With SOURCES: */
    const pyc_verdict *verdict;  /* as check judges it, or NULL */
    const char *source_member;   /* the source member, or NULL: none */
    const char *source_shown;    /* ARCHIVE/source member */
    const unsigned char *source; /* its bytes, or NULL (SOURCE_ERROR) */
    size_t source_len;
    int source_error;
} archive_cache;

/* Return non-zero to stop. Everything pointed to lives until it returns. */
typedef int archive_bytes_fn(const archive_cache *cache, void *ctx);

/* Reads the cache members of the archive PATH whole (nothing extracted;
 * reads capped as archive_scan's) and hands each to BYTES in archive
 * order; with SOURCES each is judged and its source member (NAME.py of
 * its name) read whole too; a container image's members are the paths
 * of its final file system, read from the layers that provide them (an
 * index of several images is refused). Problems (an unsafe or unreadable
 * member, a damaged archive) go to FN as ARCHIVE_ERROR items. 0, 1 (stopped), -1 (the archive could not be read:
 * delivered first). */
int archive_read_caches(const char *path, const archive_options *aopt,
                        const pyc_verdict_options *vopt, bool sources, archive_bytes_fn *bytes,
                        archive_fn *fn, void *ctx);

/* ---- fixing: a new archive ------------------------------------------------------------
 *
 * Every fixing command (convert, clean, prune, compile, normalize) goes
 * through one rewrite (a container image: planned on its final file system
 * and written by image_fix, engine/image.h, into the layers that provide
 * each path; an index of several images is refused):
 * a plan decides, member by member, keep / replace its bytes / drop, and
 * one pass copies the archive into a temporary file beside OUTPUT with that
 * plan, renamed over OUTPUT once complete (OUTPUT may be PATH: --in-place).
 * Every member the plan keeps keeps its content, name, order, mode and
 * mtime; a wheel's RECORD loses the lines of dropped members and gets the
 * digests and sizes of replaced ones. Nothing is written when a member is
 * unsafe (archive_scan's errors), when the archive is damaged, or with
 * DRY_RUN; on any error the temporary file is removed and OUTPUT (and PATH)
 * are left as they were. */

typedef enum archive_fix_kind {
    ARCHIVE_FIX_CONVERT = 0, /* every fresh pyc of CPython 3.7+ gets the
                                header py_compile writes in mode TO (the
                                body is the same in every mode, PEP 552) */
    ARCHIVE_FIX_DROP,        /* the cache members DROP chooses go, and each
                                __pycache__ directory member left empty */
    ARCHIVE_FIX_COMPILE,     /* each source member gets the cache each of
                                TARGETS reads where it is used (extracted:
                                its __pycache__ name, or 2.x's NAME.pyc;
                                zipimport: NAME.pyc beside it), compiled by
                                COMPILE; a fresh one is kept, one that is not
                                (or in another mode) replaced */
    ARCHIVE_FIX_NORMALIZE,   /* each cache member's body rewritten into the
                                canonical marshal form (normalize_buffer,
                                engine/convert.h), its header untouched */
} archive_fix_kind;

/* ARCHIVE_FIX_COMPILE: an interpreter to compile for. */
typedef struct archive_compile_target {
    const pyc_magic *python;
    unsigned levels;         /* bit N: optimization level N */
    pyc_mode mode;           /* 3.7+: the invalidation mode to write */
} archive_compile_target;

/* One cache to compile from a source member's bytes (nothing is extracted).
 * The header a timestamp pyc gets is the source's stamp as the archive's
 * user sees it (extracted: the --extract-mtime model's mtime and the size;
 * zipimport: the DOS time as zipimport's _parse_dostime reads it), so the
 * cache is fresh where it lands. */
typedef struct archive_compile_job {
    size_t target;               /* index in TARGETS */
    int level;
    const unsigned char *source; /* the source member's bytes */
    size_t source_len;
    char *dfile;                 /* the name recorded in the code object */
    uint32_t mtime, size;        /* the header's stamp (timestamp mode) */
    bool zipimport;              /* compile as zipimport's _compile_source */
    char *path;                  /* ARCHIVE/cache member, for messages */
    char *source_path;           /* ARCHIVE/source member */
    /* Set by the compile function: the pyc's bytes (malloc'd), or NULL
     * with ERROR_TYPE / ERROR (malloc'd, the interpreter's words). */
    unsigned char *pyc;
    size_t pyc_len;
    char *error_type, *error;
    long error_line;
} archive_compile_job;

/* Compiles each of the NJOBS jobs (filling pyc or error). 0, or -1 when
 * the interpreters could not be run at all (said already). */
typedef int archive_compile_fn(archive_compile_job *jobs, size_t njobs, void *ctx);

/* ARCHIVE_FIX_DROP: whether the cache member IT (ARCHIVE_CACHE, verdict
 * set, action NULL) is dropped. */
typedef bool archive_drop_fn(const archive_item *it, void *ctx);

typedef struct archive_fix_options {
    archive_fix_kind kind;
    bool dry_run;            /* plan and report; write nothing */
    pyc_mode to;             /* CONVERT */
    bool ignore_mtime;       /* CONVERT: a 3.7+ timestamp pyc stale by its
                                mtime alone, whose recorded source size is
                                the source member's, is converted too (an
                                archive whose packager normalised every
                                mtime: AWS SAM writes 1980-01-01) */
    archive_drop_fn *drop;   /* DROP */
    void *drop_ctx;
    const archive_compile_target *targets; /* COMPILE */
    size_t ntargets;
    archive_compile_fn *compile;
    void *compile_ctx;
    const char *zipimport_name; /* COMPILE under zipimport: the archive's
                                   name on sys.path, recorded as the code
                                   objects' ARCHIVE/member file name */
} archive_fix_options;

/* Writes OUTPUT, the archive PATH fixed as FIX says. Each cache member is
 * delivered with its verdict and action (CONVERT: "converted", "already",
 * "not-fresh", "not-convertible"; DROP: "removed" or "kept"; NORMALIZE:
 * "normalized", "canonical", or "skipped" with error_detail saying why
 * the member was left as it is), each foreign
 * member with "kept", each directory member dropped as ARCHIVE_DIRECTORY
 * with "removed". COMPILE delivers each cache a target needs as an
 * ARCHIVE_CACHE item (verdict: the cache there was, or NULL; expect and
 * expect_opt: the target and level) with "fresh", "compiled" (a new
 * member) or "recompiled" (replacing one), or "error" with error_op and
 * error_detail (the source does not compile: the rest is still written). Returns 0, 1 (the callback stopped), -1 (the reason was
 * delivered as an ARCHIVE_ERROR). */
int archive_fix(const char *path, const char *output, const archive_fix_options *fix,
                const archive_options *aopt, const pyc_verdict_options *vopt,
                archive_fn *fn, void *ctx);

/* Parses --extract-mtime=archive|now|EPOCH into OUT; -1 when malformed. */
int archive_parse_mtime(const char *text, archive_options *out);

#endif /* PYCACHE_ENGINE_ARCHIVE_H */
