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
    const char *action;      /* archive_convert: "converted", "already",
                                "not-fresh", "not-convertible" */
} archive_item;

typedef int archive_fn(const archive_item *item, void *ctx);

/* Whether the file at PATH is an archive this front end reads, by its
 * content: 1 yes, 0 no (a directory, a plain file, a compressed file that
 * holds no tar), -1 with errno when it cannot be opened. */
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

/* Writes OUTPUT, a copy of the archive PATH in which every fresh pyc of
 * CPython 3.7+ has the header py_compile writes in mode TO (the body is the
 * same in every mode, PEP 552): every other member keeps its content, name,
 * order, mode and mtime, and a wheel's RECORD gets the new digests and sizes.
 * The copy is written to a temporary file beside OUTPUT and renamed over it
 * (OUTPUT may be PATH: --in-place). Nothing is written when a member is
 * unsafe (archive_scan's errors), when the archive is damaged, or with
 * DRY_RUN. Each cache member is delivered with its verdict and action.
 * IGNORE_MTIME: a 3.7+ timestamp pyc stale by its mtime alone, whose recorded
 * source size is the source member's, is converted too (an archive whose
 * packager normalised every mtime: AWS SAM writes 1980-01-01).
 * Returns 0, 1 (the callback stopped), -1 (the reason was delivered). */
int archive_convert(const char *path, const char *output, pyc_mode to,
                    const archive_options *aopt, const pyc_verdict_options *vopt,
                    bool ignore_mtime, bool dry_run, archive_fn *fn, void *ctx);

/* Parses --extract-mtime=archive|now|EPOCH into OUT; -1 when malformed. */
int archive_parse_mtime(const char *text, archive_options *out);

#endif /* PYCACHE_ENGINE_ARCHIVE_H */
