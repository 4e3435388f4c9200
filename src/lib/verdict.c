/*
 * verdict.c — what CPython's import system would do with one cache file.
 *
 * Given a cache file and the directory its source would be in, decide the
 * status the interpreter the file belongs to would act on (DESIGN.md's
 * vocabulary: fresh, stale, stale-used, orphan, sourceless, shadowed,
 * corrupt, temp, foreign) and the first reason, in CPython's own order of
 * checks. The rules mirrored, by kind of file:
 *
 * __pycache__ and prefix-tree files (3.2+): importlib._bootstrap_external
 *   SourceLoader.get_code — the cache is read only when FileFinder found the
 *   source (_path_isfile: stat through symlinks, S_ISREG); then
 *   _classify_pyc (magic, length >= 16, flags & ~0b11), then either
 *   _validate_hash_pyc (when the pyc is checked, or check_hash_based_pycs is
 *   'always'; never when it is 'never') or _validate_timestamp_pyc (mtime,
 *   then size); a header that passes leads to _compile_bytecode:
 *   marshal.loads + "Non-code object", which *fail the import* rather than
 *   fall back to the source. 3.2-3.6 use _validate_bytecode_header (magic,
 *   mtime, size from 3.3).
 *
 * Legacy files beside the sources: 2.x and 3.0-3.1 keep their cache there
 *   (Python/import.c load_source_module + check_compiled_module: magic,
 *   then the mtime; a sourceless NAME.pyc is imported by
 *   load_compiled_module). From 3.2 the FileFinder tries, in order, a
 *   package directory NAME/ with an __init__ file, then NAME + each of
 *   EXTENSION_SUFFIXES, SOURCE_SUFFIXES (.py), BYTECODE_SUFFIXES (.pyc; .pyo
 *   under -O in 3.2-3.4; .pyo is never read from 3.5, PEP 488). So a legacy
 *   pyc is the module only when nothing earlier in that order exists.
 *
 * The judge is the interpreter named by the file's tag (__pycache__), else by
 * its magic (legacy files carry no tag).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "platform/noatime.h"
#include "platform/stattime.h"
#include "platform/casefold.h"
#include "pycache.h"

/* ---- names -------------------------------------------------------------------- */

static const char *const status_names[PYC_STATUS_COUNT] = {
    [PYC_FRESH] = "fresh",           [PYC_STALE] = "stale",
    [PYC_STALE_USED] = "stale-used", [PYC_ORPHAN] = "orphan",
    [PYC_SOURCELESS] = "sourceless", [PYC_SHADOWED] = "shadowed",
    [PYC_CORRUPT] = "corrupt",       [PYC_TEMP] = "temp",
    [PYC_MISSING] = "missing",       [PYC_FOREIGN] = "foreign",
};

static const char *const reason_names[PYC_REASON_COUNT] = {
    [PYC_REASON_NONE] = "",
    [PYC_REASON_MTIME] = "mtime",
    [PYC_REASON_SIZE] = "size",
    [PYC_REASON_HASH] = "hash",
    [PYC_REASON_MAGIC] = "magic",
    [PYC_REASON_TAG_MISMATCH] = "tag-mismatch",
    [PYC_REASON_FLAGS] = "flags",
    [PYC_REASON_TRUNCATED] = "truncated",
    [PYC_REASON_EMPTY] = "empty",
    [PYC_REASON_BODY] = "body",
    [PYC_REASON_NO_SOURCE] = "no-source",
    [PYC_REASON_SOURCE] = "source",
    [PYC_REASON_PACKAGE] = "package",
    [PYC_REASON_EXTENSION] = "extension",
    [PYC_REASON_PYO] = "pyo",
    [PYC_REASON_UNCHECKED] = "unchecked",
    [PYC_REASON_NOT_CHECKED] = "not-checked",
    [PYC_REASON_UNREADABLE] = "unreadable",
    [PYC_REASON_NOT_BYTECODE] = "not-bytecode",
    [PYC_REASON_INTERRUPTED] = "interrupted",
    [PYC_REASON_NO_CACHE] = "no-cache",
    [PYC_REASON_NAME] = "name",
    [PYC_REASON_ZIPIMPORT] = "zipimport",
    [PYC_REASON_ZIPIMPORT_UNREADABLE] = "zipimport-unreadable",
};

const char *pyc_status_name(pyc_status status)
{
    if ((unsigned)status >= PYC_STATUS_COUNT)
        return "unknown";
    return status_names[status];
}

const char *pyc_reason_name(pyc_reason reason)
{
    if ((unsigned)reason >= PYC_REASON_COUNT)
        return "unknown";
    return reason_names[reason];
}

pyc_severity pyc_status_severity(pyc_status status)
{
    switch (status) {
    case PYC_STALE_USED:
    case PYC_SOURCELESS:
    case PYC_CORRUPT:
        return PYC_SEVERITY_DANGEROUS;
    case PYC_MISSING:
        return PYC_SEVERITY_EXPECTED;
    case PYC_STALE:
    case PYC_ORPHAN:
    case PYC_SHADOWED:
    case PYC_TEMP:
        return PYC_SEVERITY_CLUTTER;
    case PYC_FRESH:
    case PYC_FOREIGN:
    case PYC_STATUS_COUNT:
        break;
    }
    return PYC_SEVERITY_FINE;
}

int pyc_status_parse(const char *name, pyc_status *out)
{
    for (int i = 0; i < PYC_STATUS_COUNT; i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *out = (pyc_status)i;
            return 0;
        }
    }
    errno = EINVAL;
    return -1;
}

/* ---- small helpers ---------------------------------------------------------------- */

/* Interpreters that keep their cache beside the source, not in __pycache__:
 * 2.x and 3.0-3.1 (PEP 3147 arrived in 3.2). */
static bool keeps_legacy_cache(const pyc_magic *m)
{
    return m->major < 3 || (m->major == 3 && m->minor < 2);
}

static bool at_least(const pyc_magic *m, int major, int minor)
{
    return m->major > major || (m->major == major && m->minor >= minor);
}

/* Where the names the verdict looks up live: a directory fd (the file
 * system), or a caller's view of a directory that is not one (an archive's
 * members: pyc_verdict_judge_view). */
struct place {
    int dirfd;
    const pyc_source_view *view; /* when not NULL, dirfd is unused */
};

/* importlib's _path_isfile / 2.x's stat + S_ISREG: stat through symlinks. */
static int stat_regular(const struct place *pl, const char *name, struct stat *st)
{
    if (pl->view) {
        if (pl->view->stat(pl->view->ctx, name, st) != 0)
            return -1;
    } else if (fstatat(pl->dirfd, name, st, 0) != 0) {
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        errno = S_ISDIR(st->st_mode) ? EISDIR : EINVAL;
        return -1;
    }
    return 0;
}

static bool exists_regular(const struct place *pl, const char *name)
{
    struct stat st;
    return stat_regular(pl, name, &st) == 0;
}

/* Fills SRC (state -1) by stat'ing it relative to its dirfd (or in the
 * view, when PL has one). */
static void source_lookup(pyc_source *src, const struct place *pl)
{
    if (src->state != -1)
        return;
    struct place here = {src->dirfd, pl ? pl->view : NULL};
    if (!here.view && src->dirfd < 0 && src->dirfd != AT_FDCWD) {
        src->state = 0;
        src->errno_ = ENOENT;
        return;
    }
    int saved = errno;
    if (stat_regular(&here, src->name, &src->st) == 0) {
        src->state = 1;
        src->errno_ = 0;
    } else {
        src->state = 0;
        src->errno_ = errno;
    }
    errno = saved;
}

static bool benign_absence(int err)
{
    return err == ENOENT || err == ENOTDIR || err == EISDIR || err == EINVAL ||
           err == ELOOP || err == ENAMETOOLONG;
}

/* Builds "STEM" + SUFFIX into BUF; false when it would not fit. */
static bool join_name(char *buf, size_t cap, const char *stem, size_t stem_len,
                      const char *suffix)
{
    size_t n = strlen(suffix);
    if (stem_len + n + 1 > cap)
        return false;
    memcpy(buf, stem, stem_len);
    memcpy(buf + stem_len, suffix, n + 1);
    return true;
}

/* The platform part of CPython's extension-module suffix
 * (EXTENSION_SUFFIXES[0] == ".cpython-311-x86_64-linux-gnu.so"). */
#if defined(__x86_64__) && defined(__linux__)
#define MULTIARCH "-x86_64-linux-gnu"
#elif defined(__aarch64__) && defined(__linux__)
#define MULTIARCH "-aarch64-linux-gnu"
#elif defined(__i386__) && defined(__linux__)
#define MULTIARCH "-i386-linux-gnu"
#else
#define MULTIARCH ""
#endif

/* Whether an extension module STEM exists for interpreter M:
 * importlib.machinery.EXTENSION_SUFFIXES, which on Linux are
 * '.cpython-3X{ABIFLAGS}{-MULTIARCH}.so', '.abi3.so', '.so' (PEP 3149: the
 * 'm' pymalloc flag 3.2-3.7, the multiarch triplet from 3.5 — checked
 * against 3.6/3.7/3.11's EXTENSION_SUFFIXES), and for 2.x
 * Python/dynload_shlib.c's _PyImport_DynLoadFiletab ('.so', 'module.so'). */
static bool extension_exists(const struct place *dirfd, const char *stem, size_t stem_len,
                             const pyc_magic *m)
{
    char name[NAME_MAX + 1];
    if (m->major < 3) {
        return (join_name(name, sizeof name, stem, stem_len, ".so") &&
                exists_regular(dirfd, name)) ||
               (join_name(name, sizeof name, stem, stem_len, "module.so") &&
                exists_regular(dirfd, name));
    }
    if (m->minor >= 2) {
        /* ".cpython-" MAJOR MINOR ["m"] [MULTIARCH] ".so", built by hand: a
         * legacy file asks this once per file, and snprintf costs ten times
         * the lookup's instructions (callgrind). */
        char suffix[64];
        size_t k = 0;
        memcpy(suffix, ".cpython-", 9);
        k = 9;
        k += lib_put_uint(suffix + k, (unsigned)m->major);
        k += lib_put_uint(suffix + k, (unsigned)m->minor);
        if (m->minor <= 7)
            suffix[k++] = 'm';
        if (m->minor >= 5) {
            memcpy(suffix + k, MULTIARCH, sizeof MULTIARCH - 1);
            k += sizeof MULTIARCH - 1;
        }
        memcpy(suffix + k, ".so", 4);
        if (join_name(name, sizeof name, stem, stem_len, suffix) &&
            exists_regular(dirfd, name))
            return true;
        if (join_name(name, sizeof name, stem, stem_len, ".abi3.so") &&
            exists_regular(dirfd, name))
            return true;
    }
    return join_name(name, sizeof name, stem, stem_len, ".so") &&
           exists_regular(dirfd, name);
}

/* Whether STEM/ is a regular package for interpreter M: FileFinder.find_spec
 * (3.x) / find_init_module (2.x) look for __init__ + any loader suffix. */
static bool package_exists(const struct place *pl, const char *stem, size_t stem_len,
                           const pyc_magic *m)
{
    char dir[NAME_MAX + 1];
    if (stem_len > NAME_MAX)
        return false;
    memcpy(dir, stem, stem_len);
    dir[stem_len] = '\0';
    struct place pkg = {-1, pl->view};
    const char *prefix = "";
    char name[NAME_MAX + 24];
    if (pl->view) {
        /* A view is asked for "STEM/__init__.py": the same lookup. */
        memcpy(name, dir, stem_len);
        name[stem_len] = '/';
        name[stem_len + 1] = '\0';
        prefix = name;
    } else {
        pkg.dirfd = openat(pl->dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pkg.dirfd < 0)
            return false;
    }
    char init[NAME_MAX + 40];
    size_t plen = strlen(prefix);
    memcpy(init, prefix, plen);
    memcpy(init + plen, "__init__", 9);
    bool found = (join_name(name, sizeof name, init, plen + 8, ".py") &&
                  exists_regular(&pkg, name)) ||
                 (join_name(name, sizeof name, init, plen + 8, ".pyc") &&
                  exists_regular(&pkg, name)) ||
                 extension_exists(&pkg, init, plen + 8, m);
    if (!found && ((m->major == 3 && m->minor >= 2 && m->minor <= 4) || m->major < 3))
        found = join_name(name, sizeof name, init, plen + 8, ".pyo") &&
                exists_regular(&pkg, name);
    if (pkg.dirfd >= 0)
        close(pkg.dirfd);
    return found;
}

/* ---- reading the cache file -------------------------------------------------------- */

/* Reads the whole file into a malloc'd buffer (for --deep). */
static unsigned char *read_all(int fd, size_t size_hint, size_t *len)
{
    size_t cap = size_hint + 1, n = 0;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return NULL;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap * 2;
            unsigned char *nbuf = realloc(buf, ncap);
            if (!nbuf) {
                free(buf);
                return NULL;
            }
            buf = nbuf;
            cap = ncap;
        }
        ssize_t r = pread(fd, buf + n, cap - n, (off_t)n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            errno = e;
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *len = n;
    return buf;
}

/* What was read of the cache file. */
struct cache_data {
    unsigned char head[PYC_HEADER_MAX + 1]; /* header + one body byte */
    size_t head_len;
    unsigned char *all; /* whole file, --deep only */
    size_t all_len;
};

/* Opens and reads the cache file. CPython reads it with open() through
 * symlinks (FileLoader.get_data); so do we, but only regular files
 * (O_NONBLOCK so a FIFO planted in __pycache__ cannot hang the walk), and
 * without updating its access time (psys_openat_read). */
static int read_cache(int dirfd, const char *name, bool deep, bool skip_stat,
                      struct cache_data *cd, pyc_verdict *out)
{
    int fd = psys_openat_read(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        out->error = errno;
        out->error_op = "open";
        return -1;
    }
    size_t size_hint = 4096;
    if (!skip_stat) {
        struct stat st;
        if (fstat(fd, &st) != 0) {
            out->error = errno;
            out->error_op = "stat";
            close(fd);
            return -1;
        }
        if (!S_ISREG(st.st_mode)) {
            out->error = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
            out->error_op = "read";
            close(fd);
            return -1;
        }
        out->file_size = (int64_t)st.st_size;
        out->file_blocks = (int64_t)st.st_blocks * 512;
        size_hint = (size_t)st.st_size;
    }
    if (deep) {
        cd->all = read_all(fd, size_hint, &cd->all_len);
        if (!cd->all) {
            out->error = errno;
            out->error_op = "read";
            close(fd);
            return -1;
        }
        cd->head_len = cd->all_len < sizeof cd->head ? cd->all_len : sizeof cd->head;
        memcpy(cd->head, cd->all, cd->head_len);
    } else {
        size_t n = 0;
        while (n < sizeof cd->head) {
            ssize_t r = pread(fd, cd->head + n, sizeof cd->head - n, (off_t)n);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                out->error = errno;
                out->error_op = "read";
                close(fd);
                return -1;
            }
            if (r == 0)
                break;
            n += (size_t)r;
        }
        cd->head_len = n;
    }
    close(fd);
    out->header_read = true;
    return 0;
}

/* The header passed; now what _compile_bytecode (3.x) or
 * read_compiled_module (2.x) does with the body: marshal.loads, which fails
 * the import on damage. Returns true when the body is known bad (and sets
 * the verdict to corrupt). */
static bool body_is_bad(const struct cache_data *cd, const pyc_magic *judge,
                        bool deep, pyc_verdict *out)
{
    size_t hlen = out->header.length;
    if (cd->head_len <= hlen) {
        out->status = PYC_CORRUPT;
        out->reason = PYC_REASON_EMPTY;
        return true;
    }
    if (deep && cd->all) {
        pyc_marshal_status ms =
            pyc_marshal_validate(judge, cd->all + hlen, cd->all_len - hlen, NULL);
        /* UNCHECKED: a version whose marshal format is not modelled (PyPy,
         * GraalPy, 3.0-3.5): no verdict on the body, so no claim. */
        if (ms != PYC_MARSHAL_OK && ms != PYC_MARSHAL_UNCHECKED) {
            out->status = PYC_CORRUPT;
            out->reason = PYC_REASON_BODY;
            return true;
        }
    }
    return false;
}

/* Checks the header against the judge's expectations: magic, length, flags.
 * Returns true when the header would be accepted (then the caller compares
 * it with the source); else sets a reason. */
static bool header_acceptable(const pyc_verdict *v, const pyc_magic *judge,
                              pyc_reason *reason)
{
    switch (v->header_status) {
    case PYC_HEADER_TRUNCATED:
        /* Fewer than 4 bytes: no magic at all. */
        if (!v->header.magic) {
            *reason = PYC_REASON_TRUNCATED;
            return false;
        }
        break;
    case PYC_HEADER_UNKNOWN_MAGIC:
        *reason = PYC_REASON_MAGIC;
        return false;
    default:
        break;
    }
    /* _classify_pyc / check_compiled_module: the magic first. */
    if (v->header.magic_word != judge->word) {
        const pyc_magic *m = v->header.magic;
        *reason = (m && (m->implementation != judge->implementation ||
                         m->major != judge->major || m->minor != judge->minor))
                      ? PYC_REASON_TAG_MISMATCH
                      : PYC_REASON_MAGIC;
        return false;
    }
    if (v->header_status == PYC_HEADER_TRUNCATED) {
        *reason = PYC_REASON_TRUNCATED;
        return false;
    }
    if (v->header_status == PYC_HEADER_BAD_FLAGS) {
        *reason = PYC_REASON_FLAGS;
        return false;
    }
    return true;
}

/* ---- the verdict ----------------------------------------------------------------- */

static void verdict_init(pyc_verdict *out)
{
    memset(out, 0, sizeof *out);
    out->file_size = -1;
    out->file_blocks = -1;
    out->source_size = -1;
    out->source_mtime = INT64_MIN;
}

static void note_source(pyc_verdict *out, const pyc_source *src)
{
    out->source_exists = src->state == 1;
    if (src->state == 1) {
        out->source_size = (int64_t)src->st.st_size;
        out->source_mtime = (int64_t)psys_mtim(&src->st).tv_sec;
    } else if (src->state == 0 && !benign_absence(src->errno_)) {
        /* The source exists but could not be looked at: CPython's
         * FileFinder would not find it either, but say why. */
        out->error = src->errno_;
        out->error_op = "stat";
    }
}

/* Compares an accepted header with the source, by the judge's rules, and
 * sets fresh / stale / stale-used. */
static void compare_with_source(const pyc_magic *judge, const pyc_source *src,
                                const struct place *pl,
                                const pyc_verdict_options *opt, pyc_verdict *out)
{
    const pyc_header *h = &out->header;
    if (h->mode == PYC_MODE_TIMESTAMP) {
        /* _validate_timestamp_pyc (3.7+), _validate_bytecode_header
         * (3.2-3.6), check_compiled_module (2.x): mtime, then size. */
        pyc_stamp stamp;
        pyc_stamp_from_stat(judge, &src->st, &stamp);
        if (!stamp.mtime_matchable || h->mtime != stamp.mtime) {
            out->status = PYC_STALE;
            out->reason = PYC_REASON_MTIME;
        } else if (stamp.size_checked && h->source_size != stamp.size) {
            out->status = PYC_STALE;
            out->reason = PYC_REASON_SIZE;
        } else {
            out->status = PYC_FRESH;
        }
        return;
    }
    /* Hash-based (3.7+): SourceLoader.get_code checks the hash when the pyc
     * is checked or check_hash_based_pycs is 'always', never when 'never'.
     * Unchecked, it is loaded as it is; we still hash the source to tell
     * whether what is loaded is what the source says (stale-used). */
    bool checked = h->mode == PYC_MODE_CHECKED_HASH;
    bool validated = opt->check_hash != PYC_CHECK_HASH_NEVER &&
                     (checked || opt->check_hash == PYC_CHECK_HASH_ALWAYS);
    uint8_t hash[8];
    int hashed = pl->view ? pl->view->source_hash(pl->view->ctx, judge, src->name, hash)
                          : pyc_source_hash_file(judge, src->dirfd, src->name, hash);
    if (hashed != 0) {
        /* get_data(source_path) raising OSError propagates out of get_code
         * when the hash is validated; otherwise the pyc is used unseen. */
        out->error = errno;
        out->error_op = "read";
        out->status = validated ? PYC_STALE : PYC_FRESH;
        out->reason = validated ? PYC_REASON_UNREADABLE : PYC_REASON_NOT_CHECKED;
        return;
    }
    bool same = memcmp(hash, h->source_hash, 8) == 0;
    if (validated) {
        out->status = same ? PYC_FRESH : PYC_STALE;
        out->reason = same ? PYC_REASON_NONE : PYC_REASON_HASH;
    } else {
        out->status = same ? PYC_FRESH : PYC_STALE_USED;
        out->reason = same ? PYC_REASON_UNCHECKED : PYC_REASON_HASH;
    }
}

/* The tag as written in the cache file's name. */
static const char *src_tag(const pyc_verdict *v)
{
    return v->cache_name + v->name.tag_off;
}

/* A cache file in __pycache__ or in a prefix tree. */
static void judge_pycache(const struct cache_data *cd, pyc_source *src,
                          const struct place *pl,
                          const pyc_verdict_options *opt, pyc_verdict *out)
{
    source_lookup(src, pl);
    note_source(out, src);
    if (src->state != 1) {
        /* The finder only reads __pycache__ for a source it found. */
        out->status = PYC_ORPHAN;
        out->reason = PYC_REASON_NO_SOURCE;
        return;
    }
    if (!out->header_read) {
        out->status = PYC_STALE;
        out->reason = PYC_REASON_UNREADABLE;
        return;
    }
    const pyc_magic *judge = out->judge;
    pyc_reason reason;
    if (judge && out->name.tag_len > 0 &&
        !(judge->tag && strlen(judge->tag) == out->name.tag_len &&
          memcmp(judge->tag, src_tag(out), out->name.tag_len) == 0)) {
        /* The tag names no interpreter we know, and the magic belongs to
         * one that would look for another name (or, 2.x, never reads
         * __pycache__ at all): nothing will ever load it under this name. */
        out->status = PYC_STALE;
        out->reason = PYC_REASON_TAG_MISMATCH;
        return;
    }
    if (!judge) {
        /* Neither the tag nor the magic is known: no interpreter we know
         * of would accept it, and the one the tag names would replace it. */
        out->status = PYC_STALE;
        out->reason = out->header_status == PYC_HEADER_TRUNCATED
                          ? PYC_REASON_TRUNCATED
                          : PYC_REASON_MAGIC;
        return;
    }
    if (!header_acceptable(out, judge, &reason)) {
        out->status = PYC_STALE;
        out->reason = reason;
        return;
    }
    /* A .pyo in __pycache__ is read only by 3.2-3.4 under -O (PEP 488
     * dropped it in 3.5); cache_name_parse only accepts such names then. */
    compare_with_source(judge, src, pl, opt, out);
    if (out->status == PYC_FRESH || out->status == PYC_STALE_USED) {
        pyc_reason kept = out->reason;
        pyc_status kept_status = out->status;
        if (!body_is_bad(cd, judge, opt->deep, out)) {
            out->status = kept_status;
            out->reason = kept;
        }
    }
}

/* A legacy NAME.pyc / NAME.pyo beside the sources. */
static void judge_legacy(const struct cache_data *cd, const struct place *dirfd,
                         pyc_source *src, const pyc_verdict_options *opt,
                         pyc_verdict *out)
{
    source_lookup(src, dirfd);
    note_source(out, src);
    const pyc_magic *judge = out->judge;
    const char *stem = src->name;
    size_t stem_len = out->name.stem_len;

    /* The finders look up NAME.pyc for a module NAME, and a module name
     * has no dot (a dotted import is a package's submodule): a legacy file
     * such as keyword.cpython-311.pyc is never read by any import. */
    if (memchr(stem, '.', stem_len)) {
        out->status = PYC_SHADOWED;
        out->reason = PYC_REASON_NAME;
        return;
    }
    if (!out->header_read) {
        out->status = src->state == 1 ? PYC_STALE : PYC_CORRUPT;
        out->reason = PYC_REASON_UNREADABLE;
        return;
    }
    if (!judge) {
        /* No known interpreter writes this: with a source beside it,
         * a 2.x would replace it and 3.x ignores it; without one, importing
         * it fails whatever the interpreter. */
        out->status = src->state == 1 ? PYC_STALE : PYC_CORRUPT;
        out->reason = out->header_status == PYC_HEADER_TRUNCATED
                          ? PYC_REASON_TRUNCATED
                          : PYC_REASON_MAGIC;
        return;
    }
    /* PEP 488: from 3.5 no interpreter reads .pyo. */
    if (out->name.pyo && !keeps_legacy_cache(judge) && at_least(judge, 3, 5)) {
        out->status = PYC_SHADOWED;
        out->reason = PYC_REASON_PYO;
        return;
    }
    /* The finder's order: package, extension, source, bytecode. */
    if (package_exists(dirfd, stem, stem_len, judge)) {
        out->status = PYC_SHADOWED;
        out->reason = PYC_REASON_PACKAGE;
        return;
    }
    if (extension_exists(dirfd, stem, stem_len, judge)) {
        out->status = PYC_SHADOWED;
        out->reason = PYC_REASON_EXTENSION;
        return;
    }
    pyc_reason reason;
    /* A source whose name differs in case only (Leg.py beside leg.pyc, on
     * a case-insensitive file system) is found by the stat but not by a
     * finder that compares names exactly (platform/casefold.h): importlib's
     * FileFinder then finds leg.pyc for `import leg`, sourceless. */
    bool source_found = src->state == 1 &&
                        (!psys_finder_exact(at_least(judge, 3, 3)) ||
                         psys_name_listed(src->dirfd, src->name));
    if (source_found) {
        if (!keeps_legacy_cache(judge)) {
            /* 3.2+: the source loader wins and reads __pycache__. */
            out->status = PYC_SHADOWED;
            out->reason = PYC_REASON_SOURCE;
            return;
        }
        /* 2.x / 3.0-3.1: this *is* the cache of NAME.py. */
        if (!header_acceptable(out, judge, &reason)) {
            out->status = PYC_STALE;
            out->reason = reason;
            return;
        }
        compare_with_source(judge, src, dirfd, opt, out);
        if (out->status == PYC_FRESH)
            body_is_bad(cd, judge, opt->deep, out);
        return;
    }
    /* No source: the sourceless loader imports it. Its header must pass
     * _classify_pyc (3.x) / the magic check (2.x), else the import fails. */
    if (!header_acceptable(out, judge, &reason)) {
        out->status = PYC_CORRUPT;
        out->reason = reason;
        return;
    }
    out->status = PYC_SOURCELESS;
    out->reason = PYC_REASON_NO_SOURCE;
    body_is_bad(cd, judge, opt->deep, out);
}


/* ---- zipimport -------------------------------------------------------------------- */

/* zipimport's lenient timestamp comparison: _eq_mtime (Lib/zipimport.py,
 * 3.8+) and eq_mtime (Modules/zipimport.c, 2.7-3.7), "dostime only stores
 * even seconds": abs(t1 - t2) <= 1. 2.x reads the header with get_long,
 * which sign-extends bit 31 on LP64 (3.x: get_uint32 / _unpack_uint32). */
static bool zip_eq_mtime(const pyc_magic *judge, uint32_t header, int64_t source)
{
    int64_t t1 = judge->major < 3 ? (int64_t)(int32_t)header : (int64_t)header;
    int64_t d = t1 - source;
    return d >= -1 && d <= 1;
}

/* A member NAME.pyc / NAME.pyo of a zip archive on sys.path, judged as the
 * zipimporter of the interpreter its magic belongs to would treat it.
 *   3.8+  Lib/zipimport.py _get_module_code: _zip_searchorder is
 *         /__init__.pyc, /__init__.py, .pyc, .py (no .pyo, no __pycache__);
 *         _unmarshal_code: _classify_pyc (bad magic or flags: ImportError,
 *         fewer than 16 bytes: EOFError, which no caller catches), then a
 *         hash pyc is validated against the source member's bytes when
 *         checked (or --check-hash-based-pycs always) and a source exists,
 *         a timestamp pyc against the source member's DOS time (_eq_mtime,
 *         +-1 s) and uncompressed size (only when a source exists:
 *         _get_mtime_and_size_of_source returns 0 otherwise); a mismatch
 *         returns None and the next suffix (.py) is tried; then
 *         marshal.loads, whose failure propagates. 3.8-3.9 catch the
 *         ImportError in _unmarshal_code (None: try the source); 3.10+
 *         keep it and, when no source follows, raise "module load failed".
 *         Either way, without a source the import fails.
 *   2.7-3.7 Modules/zipimport.c get_module_code / unmarshal_code: the same
 *         search order with .pyo after .pyc in 2.x (swapped under -O);
 *         a header shorter than its layout is ZipImportError "bad pyc
 *         data"; a bad magic or mtime returns None (try the source); no
 *         size is compared; 3.7 loads an unchecked hash pyc (flags 0x1)
 *         unseen and refuses every other flags value (checked hash pycs
 *         are never validated), unless --check-hash-based-pycs never. */
static void judge_zipimport(const struct cache_data *cd, const struct place *pl,
                            pyc_source *src, const pyc_verdict_options *opt,
                            pyc_verdict *out)
{
    source_lookup(src, pl);
    note_source(out, src);
    const pyc_magic *judge = out->judge;
    const char *stem = src->name;
    size_t stem_len = out->name.stem_len;
    bool has_source = src->state == 1;

    if (out->name.kind != PYC_KIND_LEGACY) {
        /* __pycache__ is not in _zip_searchorder: never read. */
        out->status = PYC_SHADOWED;
        out->reason = PYC_REASON_ZIPIMPORT;
        return;
    }
    if (memchr(stem, '.', stem_len)) {
        out->status = PYC_SHADOWED;
        out->reason = PYC_REASON_NAME;
        return;
    }
    if (!out->header_read) {
        out->status = has_source ? PYC_STALE : PYC_CORRUPT;
        out->reason = PYC_REASON_UNREADABLE;
        return;
    }
    /* The interpreter: the magic's; an unknown magic is judged by the
     * newest zipimport (every version rejects it the same way). */
    const pyc_magic *rules = judge ? judge : pyc_magic_at(0);
    if (!judge) {
        for (size_t i = 0; i < pyc_magic_count(); i++) {
            const pyc_magic *m = pyc_magic_at(i);
            if (m->implementation == PYC_IMPL_CPYTHON && m->final &&
                (m->major > rules->major ||
                 (m->major == rules->major && m->minor > rules->minor)))
                rules = m;
        }
    }
    bool modern = at_least(rules, 3, 8);
    if (out->name.pyo && (judge == NULL || at_least(rules, 3, 5))) {
        out->status = PYC_SHADOWED;
        out->reason = PYC_REASON_PYO;
        return;
    }
    /* /__init__.pyc and /__init__.py come first in _zip_searchorder. */
    char name[NAME_MAX + 24];
    if (stem_len + 14 < sizeof name) {
        memcpy(name, stem, stem_len);
        bool pkg = join_name(name, sizeof name, name, stem_len, "/__init__.pyc") &&
                   exists_regular(pl, name);
        if (!pkg)
            pkg = join_name(name, sizeof name, name, stem_len, "/__init__.py") &&
                  exists_regular(pl, name);
        if (!pkg && rules->major < 3)
            pkg = join_name(name, sizeof name, name, stem_len, "/__init__.pyo") &&
                  exists_regular(pl, name);
        if (pkg) {
            out->status = PYC_SHADOWED;
            out->reason = PYC_REASON_PACKAGE;
            return;
        }
    }
    /* What a rejected pyc leads to: the source is compiled instead, or,
     * without one, the import fails. */
    pyc_status rejected = has_source ? PYC_STALE : PYC_CORRUPT;
    if (!judge || out->header.magic_word != judge->word) {
        bool short_2x = !modern && rules->major < 3 && out->header.length < 8;
        if (out->header_status == PYC_HEADER_TRUNCATED && (!out->header.magic || short_2x)) {
            /* 2.x tests the length (8) before the magic: "bad pyc data";
             * 3.x compares the magic first. */
            out->status = short_2x ? PYC_CORRUPT : rejected;
            out->reason = PYC_REASON_TRUNCATED;
            return;
        }
        out->status = rejected;
        out->reason = PYC_REASON_MAGIC;
        return;
    }
    if (out->header_status == PYC_HEADER_TRUNCATED) {
        /* EOFError (3.8+) / ZipImportError "bad pyc data" (2.7-3.7):
         * the import fails, source or not. */
        out->status = PYC_CORRUPT;
        out->reason = PYC_REASON_TRUNCATED;
        return;
    }
    const pyc_header *h = &out->header;
    bool loaded = true;
    if (rules->layout == PYC_LAYOUT_FLAGS && !modern) {
        /* 3.7: flags != 0 is a hash pyc; only 0x1 is used (unchecked),
         * unless check_hash_based_pycs is 'never'. */
        if (h->flags != 0 && opt->check_hash != PYC_CHECK_HASH_NEVER &&
            (h->flags != 0x1 || opt->check_hash == PYC_CHECK_HASH_ALWAYS)) {
            out->status = rejected;
            out->reason = PYC_REASON_FLAGS;
            return;
        }
        if (h->flags != 0) {
            /* Loaded unseen: say whether the source agrees. */
            if (has_source) {
                uint8_t hash[8];
                if (pl->view->source_hash(pl->view->ctx, judge, src->name, hash) != 0) {
                    out->status = PYC_FRESH;
                    out->reason = PYC_REASON_NOT_CHECKED;
                } else if (memcmp(hash, h->source_hash, 8) == 0) {
                    out->status = PYC_FRESH;
                    out->reason = PYC_REASON_UNCHECKED;
                } else {
                    out->status = PYC_STALE_USED;
                    out->reason = PYC_REASON_HASH;
                }
            } else {
                out->status = PYC_SOURCELESS;
                out->reason = PYC_REASON_NO_SOURCE;
            }
            loaded = true;
            goto body;
        }
    } else if (out->header_status == PYC_HEADER_BAD_FLAGS) {
        out->status = rejected;
        out->reason = PYC_REASON_FLAGS;
        return;
    }
    if (!has_source) {
        out->status = PYC_SOURCELESS;
        out->reason = PYC_REASON_NO_SOURCE;
    } else if (h->mode == PYC_MODE_TIMESTAMP) {
        /* _get_mtime_and_size_of_source: the source member's DOS time
         * (the view's st_mtim) and uncompressed size; a DOS time of 0
         * means "no check". */
        int64_t smtime = (int64_t)src->st.st_mtim.tv_sec;
        if (smtime != 0 && !zip_eq_mtime(judge, h->mtime, smtime)) {
            out->status = PYC_STALE;
            out->reason = PYC_REASON_MTIME;
        } else if (smtime != 0 && modern &&
                   h->source_size != (uint32_t)((uint64_t)src->st.st_size & 0xFFFFFFFFu)) {
            out->status = PYC_STALE;
            out->reason = PYC_REASON_SIZE;
        } else {
            out->status = PYC_FRESH;
        }
    } else {
        compare_with_source(judge, src, pl, opt, out);
        if (out->status == PYC_STALE && out->reason == PYC_REASON_UNREADABLE) {
            /* _get_pyc_source could not read it: the import fails. */
            out->status = PYC_CORRUPT;
        }
    }
    loaded = out->status == PYC_FRESH || out->status == PYC_STALE_USED ||
             out->status == PYC_SOURCELESS;
body:
    if (loaded) {
        pyc_status kept_status = out->status;
        pyc_reason kept = out->reason;
        if (!body_is_bad(cd, judge, opt->deep, out)) {
            out->status = kept_status;
            out->reason = kept;
        }
    }
}

/* The verdict proper. HEAD (HEAD_LEN bytes) is the start of the cache file
 * when the caller read it already; NULL: read it here from CACHE_DIRFD. */
static int judge_file(int cache_dirfd, const char *cache_name, const pyc_cache_name *name,
                      int source_dirfd, const pyc_source_view *view, pyc_source *src,
                      const pyc_verdict_options *opt,
                      const unsigned char *head, size_t head_len, pyc_verdict *out)
{
    struct place pl = {source_dirfd, view};
    verdict_init(out);
    out->cache_name = cache_name;
    if (name)
        out->name = *name;
    else
        pyc_cache_name_parse(cache_name, false, false, &out->name);

    /* The source NAME.py, unless the caller tracks it. */
    pyc_source local;
    char source_name[NAME_MAX + 1];
    if (!src) {
        if (out->name.stem_len + 3 + 1 > sizeof source_name) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(source_name, cache_name, out->name.stem_len);
        memcpy(source_name + out->name.stem_len, ".py", 4);
        local.dirfd = source_dirfd;
        local.name = source_name;
        local.state = -1;
        local.errno_ = 0;
        src = &local;
    }

    struct cache_data cd = {0};
    bool deep = opt->deep && (out->name.kind == PYC_KIND_PYCACHE ||
                              out->name.kind == PYC_KIND_PREFIX ||
                              out->name.kind == PYC_KIND_LEGACY);
    if (head && deep && view) {
        /* The whole member was given: --deep reads its body. */
        cd.all = malloc(head_len ? head_len : 1);
        if (!cd.all)
            return -1;
        memcpy(cd.all, head, head_len);
        cd.all_len = head_len;
    }
    if (head) {
        cd.head_len = head_len < sizeof cd.head ? head_len : sizeof cd.head;
        memcpy(cd.head, head, cd.head_len);
        out->header_read = true;
        out->header_status = pyc_header_parse(cd.head, cd.head_len, &out->header);
    } else if (read_cache(cache_dirfd, cache_name, deep, opt->skip_file_stat, &cd,
                          out) == 0) {
        out->header_status = pyc_header_parse(cd.head, cd.head_len, &out->header);
    }

    /* Whose rules: the tag in the name, else the magic in the file. */
    if (out->name.tag_len > 0)
        out->judge = pyc_magic_for_tag(cache_name + out->name.tag_off,
                                       out->name.tag_len);
    if (!out->judge && out->header_read)
        out->judge = out->header.magic;

    switch (out->name.kind) {
    case PYC_KIND_NONE:
        out->status = PYC_FOREIGN;
        out->reason = PYC_REASON_NOT_BYTECODE;
        break;
    case PYC_KIND_TEMP:
        out->status = PYC_TEMP;
        out->reason = PYC_REASON_INTERRUPTED;
        break;
    case PYC_KIND_PYCACHE:
    case PYC_KIND_PREFIX:
        if (view && view->zipimport)
            judge_zipimport(&cd, &pl, src, opt, out);
        else
            judge_pycache(&cd, src, &pl, opt, out);
        break;
    case PYC_KIND_LEGACY:
        if (view && view->zipimport)
            judge_zipimport(&cd, &pl, src, opt, out);
        else
            judge_legacy(&cd, &pl, src, opt, out);
        break;
    }
    free(cd.all);
    return 0;
}

int pyc_verdict_judge(int cache_dirfd, const char *cache_name,
                      const pyc_cache_name *name, int source_dirfd,
                      pyc_source *src, const pyc_verdict_options *options,
                      pyc_verdict *out)
{
    static const pyc_verdict_options defaults;
    if (!cache_name || !out) {
        errno = EINVAL;
        return -1;
    }
    return judge_file(cache_dirfd, cache_name, name, source_dirfd, NULL, src,
                      options ? options : &defaults, NULL, 0, out);
}

int pyc_verdict_judge_head(const char *cache_name, const pyc_cache_name *name,
                           int source_dirfd, pyc_source *src,
                           const pyc_verdict_options *options,
                           const unsigned char *head, size_t head_len,
                           pyc_verdict *out)
{
    static const pyc_verdict_options defaults;
    if (!cache_name || !out || (!head && head_len) || (options && options->deep)) {
        errno = EINVAL;
        return -1;
    }
    static const unsigned char empty[1];
    return judge_file(-1, cache_name, name, source_dirfd, NULL, src,
                      options ? options : &defaults,
                      head ? head : empty, head_len, out);
}

int pyc_verdict_judge_view(const char *cache_name, const pyc_cache_name *name,
                           const pyc_source_view *view,
                           const pyc_verdict_options *options,
                           const unsigned char *data, size_t len,
                           pyc_verdict *out)
{
    static const pyc_verdict_options defaults;
    if (!cache_name || !out || !view || !view->stat || !view->source_hash ||
        (!data && len)) {
        errno = EINVAL;
        return -1;
    }
    static const unsigned char empty[1];
    return judge_file(-1, cache_name, name, -1, view, NULL,
                      options ? options : &defaults, data ? data : empty, len, out);
}

/* Splits PATH into a malloc'd directory part ("." when there is none) and a
 * pointer to its last component. Trailing slashes are not stripped: a
 * cache file name never ends in one. */
static char *split_path(const char *path, const char **base)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        *base = path;
        return strdup(".");
    }
    *base = slash + 1;
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* The last component of DIR, ignoring trailing slashes. */
static bool last_component_is(const char *dir, const char *want)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t start = n;
    while (start > 0 && dir[start - 1] != '/')
        start--;
    return n - start == strlen(want) && memcmp(dir + start, want, n - start) == 0;
}

/* DIR without its last component (the parent of __pycache__), as
 * source_from_cache's _path_split does it. */
static char *parent_dir(const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    while (n > 0 && dir[n - 1] != '/')
        n--;
    if (n == 0)
        return strdup(".");
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return strndup(dir, n);
}

int pyc_verdict_judge_path(const char *path, const char *prefix,
                           const pyc_verdict_options *options,
                           pyc_verdict *out)
{
    if (!path || !*path || !out) {
        errno = EINVAL;
        return -1;
    }
    const char *base;
    char *dir = split_path(path, &base);
    if (!dir)
        return -1;
    char *source_dir = NULL;
    int rc = -1, cache_fd = -1, source_fd = -1;

    bool in_pycache = last_component_is(dir, "__pycache__");
    bool in_prefix = false;
    if (prefix && *prefix) {
        /* source_from_cache (3.8+): a cache under sys.pycache_prefix maps to
         * the absolute source directory that follows the prefix. */
        size_t plen = strlen(prefix);
        while (plen > 1 && prefix[plen - 1] == '/')
            plen--;
        if (strncmp(dir, prefix, plen) == 0 && dir[plen] == '/') {
            in_prefix = true;
            source_dir = strdup(dir + plen);
        } else if (strncmp(dir, prefix, plen) == 0 && dir[plen] == '\0') {
            in_prefix = true;
            source_dir = strdup("/");
        }
    }
    if (!in_prefix)
        source_dir = in_pycache ? parent_dir(dir) : strdup(dir);
    if (!source_dir)
        goto out;

    pyc_cache_name name;
    pyc_cache_name_parse(base, in_pycache && !in_prefix, in_prefix, &name);

    cache_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cache_fd < 0) {
        verdict_init(out);
        out->name = name;
        out->error = errno;
        out->error_op = "open";
        out->status = name.kind == PYC_KIND_NONE ? PYC_FOREIGN : PYC_STALE;
        out->reason = PYC_REASON_UNREADABLE;
        rc = 0;
        goto out;
    }
    source_fd = open(source_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    rc = pyc_verdict_judge(cache_fd, base, &name, source_fd, NULL, options, out);

out:
    if (source_fd >= 0)
        close(source_fd);
    if (cache_fd >= 0)
        close(cache_fd);
    free(source_dir);
    free(dir);
    return rc;
}

bool pyc_verdict_racy(const pyc_verdict *v, const struct timespec *cache_mtime)
{
    /* _validate_timestamp_pyc compares int(source_mtime) & 0xFFFFFFFF with
     * the recorded word: an edit is unseen while it stays in that second,
     * which only a cache written in that second (or earlier, a clock set
     * back) can have missed. */
    if (!v || !cache_mtime || v->status != PYC_FRESH || !v->header_read ||
        v->header.mode != PYC_MODE_TIMESTAMP || v->source_mtime == INT64_MIN)
        return false;
    return (int64_t)cache_mtime->tv_sec <= v->source_mtime;
}
