/*
 * convert.h — rewriting a pyc's header into another invalidation mode
 * without recompiling (PEP 552: the marshalled body is the same in every
 * mode; only the 16-byte header differs). Used by `pycache convert` and by
 * `pycache compile` when a fresh cache is only in the wrong mode.
 */
#ifndef PYCACHE_CONVERT_H
#define PYCACHE_CONVERT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "pycache.h"

typedef enum convert_result {
    CONVERT_DONE = 0,      /* rewritten (or, dry run: would be) */
    CONVERT_ALREADY,       /* already in that mode: nothing to do */
    CONVERT_NOT_FRESH,     /* not fresh (or not 3.7+): left alone */
    CONVERT_FAILED,        /* I/O error: *err and *op say which; the original
                              file is untouched */
} convert_result;

/* Rewrites the cache file NAME in DIRFD, judged as V (must be a verdict of
 * pyc_verdict_judge for that file; only PYC_FRESH 3.7+ files are converted),
 * whose source is SOURCE_NAME in SOURCE_DIRFD, into mode TO: the new header
 * gets the source hash (hash modes) or the source's stamp (timestamp), the
 * body is copied byte for byte; written to a temporary file in DIRFD, fsync'd,
 * given the original's permission bits, then renamed over NAME, so a reader
 * sees the old file or the new one, never a mix. DRY_RUN decides without
 * writing. On CONVERT_FAILED, *ERR is the errno and *OP the operation
 * ("open", "write", "rename", ...). */
convert_result convert_pyc(int dirfd, const char *name, const pyc_verdict *v,
                           int source_dirfd, const char *source_name, pyc_mode to,
                           bool dry_run, int *err, const char **op);

typedef enum normalize_result {
    NORMALIZE_DONE = 0,    /* rewritten (or, dry run: would be) */
    NORMALIZE_ALREADY,     /* its body is in canonical form already */
    NORMALIZE_SKIPPED,     /* not a pyc whose body can be rewritten: *WHY
                              says why (unknown magic, a format not
                              modelled, a body marshal.loads rejects) */
    NORMALIZE_FAILED,      /* I/O error: *err and *op; file untouched */
} normalize_result;

/* Rewrites the cache file NAME in DIRFD with its body in the canonical
 * marshal form of pyc_marshal_normalize, header untouched: only a CPython
 * pyc whose body pyc_marshal_validate accepts, written to a temporary file
 * beside it and renamed over it as convert_pyc does (so a reader sees the
 * old file or the new one), and never when the file changed since it was
 * read. Never follows a symlink (O_NOFOLLOW: ELOOP). */
normalize_result normalize_pyc(int dirfd, const char *name, bool dry_run,
                               const char **why, int *err, const char **op);

/* The canonical form of the pyc in BUF (LEN bytes) as a malloc'd buffer in
 * *OUT, *OUT_LEN; *CHANGED whether it differs. Returns NORMALIZE_DONE (or
 * _ALREADY), _SKIPPED with *WHY, or _FAILED with errno ENOMEM. */
normalize_result normalize_buffer(const unsigned char *buf, size_t len,
                                  unsigned char **out, size_t *out_len,
                                  const char **why);

/* Reads all of the regular file NAME in DIRFD (through a symlink unless
 * NOFOLLOW) into a malloc'd *BUF. 0, or -1 with errno (EINVAL: not a
 * regular file) and *OP the operation that failed. */
int read_whole_file(int dirfd, const char *name, bool nofollow,
                    unsigned char **buf, size_t *len, struct stat *st,
                    const char **op);

#endif /* PYCACHE_CONVERT_H */
