/*
 * convert.c — rewriting a fresh 3.7+ pyc's header into another invalidation
 * mode without recompiling (convert.h).
 *
 * PEP 552 (3.7+): a pyc is a 16-byte header — magic, flags, then either the
 * source's mtime and size (flags 0, timestamp) or an 8-byte source hash
 * (flags 0b01 unchecked, 0b11 checked) — followed by the marshalled code
 * object, which py_compile and importlib write identically in every mode
 * (importlib._bootstrap_external._code_to_timestamp_pyc and
 * _code_to_hash_pyc differ only in the header). So a mode change is a
 * header rewrite, and the result is byte for byte what py_compile would
 * have written in that mode for the same source.
 *
 * What makes it safe is the evidence that the body belongs to the source,
 * re-established here at the moment of writing rather than trusted from the
 * scan (the tree may have changed since): the file is re-read through an
 * O_NOFOLLOW descriptor and its header must still be the one the verdict
 * saw; the source is read once, through one descriptor, and must still
 * match that header — the stamp for a timestamp pyc (by the judge's rules,
 * pyc_stamp_from_stat), the hash for a hash-based one (checked or not:
 * an unchecked pyc's hash is compared here even though CPython would not).
 * The new header is computed from those same bytes and that same stat.
 *
 * Writing: a temporary file ".NAME.XXXXXXXXXXXX.tmp" in the same directory
 * (a name no classifier takes for a cache file or for CPython's own
 * "NAME.pyc.DIGITS" temp files: it ends in ".tmp"; left behind by a crash,
 * `pycache check` reports it as foreign inside __pycache__), created with
 * O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600, given the original's owner
 * (as root, best effort) and permission bits, written in full, then
 * renamed over the original, whose inode must still be the one read.
 * Any failure unlinks the temporary file; the original is never touched
 * before the rename, and the rename is the whole change.
 *
 * Decisions:
 *   - The file's own mtime is not preserved, as py_compile does not: CPython
 *     never reads it, and a new mtime tells rsync, make and backups that
 *     the content changed (the size never does: the header is always 16
 *     bytes, so size + mtime quick checks would miss the change).
 *   - Permission bits are the original's 0777 bits; set-id and sticky bits
 *     (meaningless on a pyc) are not carried over.
 *   - No fsync per file (CPython's _write_atomic makes none either): the
 *     rename is atomic for readers, and file systems order the data of a
 *     file renamed over another before the rename (ext4's auto_da_alloc,
 *     XFS, btrfs), so after a crash the file is the old pyc or the new one.
 *     `pycache convert --sync` buys durability once per run instead (a
 *     syncfs per tree at the end). Measured on this machine's ext4 disk,
 *     11,642 conversions: an fsync per file 70-86 s, one syncfs 16 s, none
 *     about 2 s.
 *   - Only CPython's pycs: the source hash of PyPy and GraalPy is not
 *     verified against a real interpreter (siphash.c), and a wrong hash
 *     written here would be worse than no conversion.
 *   - The evidence is the one CPython itself trusts, no more: a timestamp
 *     pyc whose source was edited without changing its mtime (to the
 *     second) or its size is fresh to CPython (it loads the old code) and
 *     to us; converted to a hash mode, it gets the hash of the edited
 *     source. Only recompiling could tell (`pycache compile -f`).
 *   - A hard-linked pyc stops sharing its inode (the rename replaces the
 *     name), as py_compile's os.replace does.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/convert.h"
#include "platform/random.h"
#include "platform/stattime.h"

/* Reads all of FD into a malloc'd buffer; SIZE_HINT from fstat. Retries on
 * EINTR. 0, or -1 with errno. */
static int read_all(int fd, off_t size_hint, unsigned char **out, size_t *out_len)
{
    size_t cap = size_hint > 0 ? (size_t)size_hint + 1 : 4096, len = 0;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return -1;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap * 2;
            unsigned char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (!nb) {
                free(buf);
                errno = ENOMEM;
                return -1;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int saved = errno;
            free(buf);
            errno = saved;
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

/* Writes LEN bytes, through short writes and EINTR. 0, or -1 with errno. */
static int write_all(int fd, const unsigned char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Whether two stats describe the same unchanged file. */
static bool same_file_state(const struct stat *a, const struct stat *b)
{
    struct timespec ta = psys_mtim(a), tb = psys_mtim(b);
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           ta.tv_sec == tb.tv_sec && ta.tv_nsec == tb.tv_nsec;
}

/* Fills BUF with ".NAME.XXXXXXXXXXXX.tmp" (NAME cut so the whole fits in
 * NAME_MAX); X random [a-z0-9]. The result is never a cache file name to
 * pyc_cache_name_parse, in __pycache__, beside sources or in a prefix tree
 * (checked: the suffix is ".tmp", neither .pyc/.pyo nor CPython's ".DIGITS"). */
#define TEMP_RANDOM 12
static void temp_name(char *buf, size_t cap, const char *name)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    static unsigned long counter;
    unsigned char rnd[TEMP_RANDOM];
    if (psys_random(rnd, sizeof rnd) != 0) {
        /* No entropy yet (early boot): time, pid and a counter will do, since
         * O_EXCL catches collisions anyway. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                     ((uint64_t)getpid() << 40) ^ (++counter * 0x9E3779B97F4A7C15ULL);
        for (size_t i = 0; i < sizeof rnd; i++) {
            x ^= x >> 33;
            x *= 0xff51afd7ed558ccdULL;
            rnd[i] = (unsigned char)(x >> 24);
        }
    }
    /* "." + NAME + "." + 12 + ".tmp" + NUL must fit in NAME_MAX + 1. */
    size_t fixed = 1 + 1 + TEMP_RANDOM + 4;
    size_t n = strlen(name);
    size_t room = cap - 1 - fixed;
    if (n > room)
        n = room;
    size_t k = 0;
    buf[k++] = '.';
    memcpy(buf + k, name, n);
    k += n;
    buf[k++] = '.';
    for (size_t i = 0; i < TEMP_RANDOM; i++)
        buf[k++] = alphabet[rnd[i] % (sizeof alphabet - 1)];
    memcpy(buf + k, ".tmp", 5);
}

static bool is_cache_name(const char *name)
{
    pyc_cache_name cn;
    return pyc_cache_name_parse(name, true, false, &cn) != PYC_KIND_NONE ||
           pyc_cache_name_parse(name, false, false, &cn) != PYC_KIND_NONE ||
           pyc_cache_name_parse(name, false, true, &cn) != PYC_KIND_NONE;
}

/* Whether the header just read is still the one the verdict judged. */
static bool same_header(const pyc_header *now, const pyc_header *then)
{
    if (now->magic_word != then->magic_word || now->flags != then->flags ||
        now->mode != then->mode || now->length != then->length)
        return false;
    if (now->mode == PYC_MODE_TIMESTAMP)
        return now->mtime == then->mtime && now->source_size == then->source_size;
    return memcmp(now->source_hash, then->source_hash, 8) == 0;
}

#define RFAIL(operation)                                                           \
    do {                                                                           \
        *err = errno;                                                              \
        *op = (operation);                                                         \
        goto out;                                                                  \
    } while (0)

/* Replaces NAME in DIRFD, read as PST, with BUF: a temporary file beside
 * it (O_EXCL, mode 0600, then the original's owner and permission bits),
 * written in full, renamed over NAME if NAME is still the file read.
 * FSYNC_EACH (`convert --sync` where there is no syncfs, platform/sync.h):
 * the new file is fsync'ed before the rename and its directory after it.
 * Returns 0 when replaced, 1 when NAME changed or vanished meanwhile (left
 * alone), -1 with *ERR and *OP on failure; the temporary file never stays. */
static int replace_file(int dirfd, const char *name, const struct stat *pst,
                        const unsigned char *buf, size_t len, bool fsync_each, int *err,
                        const char **op)
{
    char tmp[NAME_MAX + 1];
    int tfd = -1, rc = -1;
    bool tmp_created = false;
    /* The temporary file, beside the original. */
    for (int attempt = 0;; attempt++) {
        temp_name(tmp, sizeof tmp, name);
        if (is_cache_name(tmp)) {
            /* Cannot happen (the ".tmp" suffix); never risk it. */
            tfd = -1;
            errno = EEXIST;
        } else {
            do
                tfd = openat(dirfd, tmp,
                             O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            while (tfd < 0 && errno == EINTR);
        }
        if (tfd >= 0)
            break;
        if (errno != EEXIST || attempt == 100)
            RFAIL("create a temporary file beside");
    }
    tmp_created = true;
    /* Owner first (chown may clear mode bits), best effort: root gives the
     * file back to its owner; anyone may keep its group if a member. */
    if (geteuid() == 0)
        (void)!fchown(tfd, pst->st_uid, pst->st_gid);
    else if (pst->st_gid != getegid())
        (void)!fchown(tfd, (uid_t)-1, pst->st_gid);
    if (fchmod(tfd, pst->st_mode & 0777) != 0)
        RFAIL("chmod");
    if (write_all(tfd, buf, len) != 0)
        RFAIL("write");
    if (fsync_each && fsync(tfd) != 0)
        RFAIL("sync");
    int c = close(tfd);
    tfd = -1;
    if (c != 0)
        RFAIL("write");

    /* Still the file we read? Someone may have replaced it meanwhile (an
     * interpreter writing a new cache): then theirs wins. */
    struct stat again;
    if (fstatat(dirfd, name, &again, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            rc = 1;
            goto out;
        }
        RFAIL("stat");
    }
    if (!same_file_state(&again, pst)) {
        rc = 1;
        goto out;
    }
    if (renameat(dirfd, tmp, dirfd, name) != 0)
        RFAIL("rename");
    tmp_created = false;
    /* The rename is durable once the directory is (POSIX fsync on a
     * directory fd; Linux, macOS and FreeBSD all honour it). */
    if (fsync_each && fsync(dirfd) != 0)
        RFAIL("sync");
    rc = 0;
out:
    if (tfd >= 0)
        close(tfd);
    if (tmp_created) {
        int saved = errno;
        unlinkat(dirfd, tmp, 0);
        errno = saved;
    }
    return rc;
}

#define FAIL(operation)                                                            \
    do {                                                                           \
        *err = errno;                                                              \
        *op = (operation);                                                         \
        result = CONVERT_FAILED;                                                   \
        goto out;                                                                  \
    } while (0)

convert_result convert_pyc(int dirfd, const char *name, const pyc_verdict *v,
                           int source_dirfd, const char *source_name, pyc_mode to,
                           bool dry_run, bool fsync_each, int *err, const char **op)
{
    convert_result result = CONVERT_NOT_FRESH;
    int fd = -1, sfd = -1;
    unsigned char *pyc = NULL, *src = NULL;
    size_t pyc_len = 0, src_len = 0;
    *err = 0;
    *op = NULL;

    /* Only a fresh CPython 3.7+ pyc judged by its own interpreter. */
    const pyc_header *seen = &v->header;
    if (v->status != PYC_FRESH || !v->header_read || v->header_status != PYC_HEADER_OK ||
        seen->layout != PYC_LAYOUT_FLAGS || !seen->magic ||
        seen->magic->implementation != PYC_IMPL_CPYTHON || !v->judge ||
        v->judge->word != seen->magic_word)
        return CONVERT_NOT_FRESH;
    if (seen->mode == to)
        return CONVERT_ALREADY;
    const pyc_magic *magic = seen->magic;

    /* The cache file, never through a symlink; O_NONBLOCK so that a FIFO
     * put in its place cannot hang us. */
    do
        fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (errno == ENOENT)
            goto out; /* gone since the scan: nothing to convert */
        FAIL("open");
    }
    struct stat pst;
    if (fstat(fd, &pst) != 0)
        FAIL("stat");
    if (!S_ISREG(pst.st_mode))
        goto out;
    if (read_all(fd, pst.st_size, &pyc, &pyc_len) != 0)
        FAIL("read");
    pyc_header now;
    if (pyc_header_parse(pyc, pyc_len, &now) != PYC_HEADER_OK || !same_header(&now, seen))
        goto out; /* rewritten since the scan */

    /* The source, read once through one descriptor (following symlinks, as
     * importlib's FileLoader.get_data and path_stats do); its stat before
     * and after the read must agree, or it changed while we read it. */
    do
        sfd = openat(source_dirfd, source_name, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    while (sfd < 0 && errno == EINTR);
    if (sfd < 0) {
        if (errno == ENOENT)
            goto out;
        FAIL("open source");
    }
    struct stat before, after;
    if (fstat(sfd, &before) != 0)
        FAIL("stat source");
    if (!S_ISREG(before.st_mode))
        goto out;
    if (read_all(sfd, before.st_size, &src, &src_len) != 0)
        FAIL("read source");
    if (fstat(sfd, &after) != 0)
        FAIL("stat source");
    if (!same_file_state(&before, &after) || (off_t)src_len != after.st_size)
        goto out;

    /* The evidence that the body was compiled from these bytes, by the rule
     * the judge applies: _validate_timestamp_pyc (mtime, then size) or
     * _validate_hash_pyc. */
    pyc_stamp stamp;
    pyc_stamp_from_stat(magic, &after, &stamp);
    uint8_t hash[8];
    if (pyc_source_hash(magic, src, src_len, hash) != 0)
        FAIL("hash source");
    if (now.mode == PYC_MODE_TIMESTAMP) {
        if (!stamp.mtime_matchable || stamp.mtime != now.mtime ||
            (stamp.size_checked && stamp.size != now.source_size))
            goto out;
    } else if (memcmp(hash, now.source_hash, 8) != 0) {
        goto out;
    }

    /* The new header: what py_compile.compile(invalidation_mode=TO) writes,
     * _code_to_timestamp_pyc(code, source_stats['mtime'], source_stats['size'])
     * with _pack_uint32 (int(mtime) & 0xFFFFFFFF, size & 0xFFFFFFFF), or
     * _code_to_hash_pyc(code, source_hash(source_bytes), checked). */
    if (to == PYC_MODE_TIMESTAMP && !stamp.mtime_matchable)
        goto out; /* no header of that mode could ever match this source */
    pyc_header fresh = now;
    fresh.mode = to;
    if (to == PYC_MODE_TIMESTAMP) {
        fresh.mtime = stamp.mtime;
        fresh.source_size = stamp.size;
        memset(fresh.source_hash, 0, sizeof fresh.source_hash);
    } else {
        fresh.mtime = 0;
        fresh.source_size = 0;
        memcpy(fresh.source_hash, hash, sizeof hash);
    }
    uint8_t header[PYC_HEADER_MAX];
    size_t hlen = pyc_header_encode(&fresh, header);
    if (hlen != now.length) {
        errno = EINVAL;
        FAIL("encode");
    }
    memcpy(pyc, header, hlen);

    if (dry_run) {
        result = CONVERT_DONE;
        goto out;
    }

    int replaced = replace_file(dirfd, name, &pst, pyc, pyc_len, fsync_each, err, op);
    if (replaced < 0) {
        result = CONVERT_FAILED;
        goto out;
    }
    if (replaced > 0)
        goto out; /* replaced by someone else meanwhile: theirs wins */
    result = CONVERT_DONE;

out:
    if (sfd >= 0)
        close(sfd);
    if (fd >= 0)
        close(fd);
    free(src);
    free(pyc);
    return result;
}

/* ---- normalize ------------------------------------------------------------
 *
 * `pycache normalize` and `compile --deterministic`: the body rewritten into
 * pyc_marshal_normalize's canonical form, the header left as it is. The
 * safety rules are convert_pyc's: the file is read through an O_NOFOLLOW
 * descriptor, the new bytes go to a temporary file beside it, renamed over
 * it only if it is still the file read. Only bodies the cache's own
 * interpreter would load are rewritten (pyc_marshal_parse applies every
 * rule of pyc_marshal_validate): a damaged file is reported, never
 * "repaired" into something else. */

int read_whole_file(int dirfd, const char *name, bool nofollow,
                    unsigned char **buf, size_t *len, struct stat *st,
                    const char **op)
{
    int fd;
    do
        fd = openat(dirfd, name,
                    O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY |
                        (nofollow ? O_NOFOLLOW : 0));
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        *op = "open";
        return -1;
    }
    if (fstat(fd, st) != 0) {
        *op = "stat";
        goto fail;
    }
    if (!S_ISREG(st->st_mode)) {
        *op = "read";
        errno = EINVAL;
        goto fail;
    }
    if (read_all(fd, st->st_size, buf, len) != 0) {
        *op = "read";
        goto fail;
    }
    close(fd);
    return 0;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

normalize_result normalize_buffer(const unsigned char *buf, size_t len,
                                  unsigned char **out, size_t *out_len,
                                  const char **why)
{
    pyc_header h;
    *out = NULL;
    *out_len = 0;
    *why = NULL;
    if (pyc_header_parse(buf, len, &h) != PYC_HEADER_OK || !h.magic) {
        *why = "not a cache file of a known interpreter";
        return NORMALIZE_SKIPPED;
    }
    const unsigned char *body = buf + h.length;
    size_t blen = len - h.length;
    /* Versions the validator does not judge (3.4, 3.5: parsed, but what
     * their interpreters accept was never confirmed) are left alone; it
     * answers that before looking at any byte. */
    if (pyc_marshal_validate(h.magic, NULL, 0, NULL) == PYC_MARSHAL_UNCHECKED) {
        *why = "marshal format of this interpreter not modelled";
        return NORMALIZE_SKIPPED;
    }
    /* Parsing applies every rule of the validator (one reader): a tree
     * comes back only for a body marshal.loads accepts. */
    pyc_marshal_status st = PYC_MARSHAL_UNCHECKED;
    pyc_marshal_tree *t = pyc_marshal_parse(h.magic, body, blen, &st, NULL);
    if (!t) {
        if (errno == ENOMEM)
            return NORMALIZE_FAILED;
        *why = st == PYC_MARSHAL_UNCHECKED ? "marshal format of this interpreter not modelled"
                                           : pyc_marshal_status_message(st);
        return NORMALIZE_SKIPPED;
    }
    if (st != PYC_MARSHAL_OK) {
        *why = pyc_marshal_status_message(st);
        pyc_marshal_tree_free(t);
        return NORMALIZE_SKIPPED;
    }
    int changed = pyc_marshal_normalize(t);
    unsigned char *nb = NULL;
    size_t nlen = 0;
    if (changed < 0 || pyc_marshal_write(t, &nb, &nlen) < 0) {
        pyc_marshal_tree_free(t);
        errno = ENOMEM;
        return NORMALIZE_FAILED;
    }
    pyc_marshal_tree_free(t);
    unsigned char *whole = malloc(h.length + nlen + 1);
    if (!whole) {
        free(nb);
        errno = ENOMEM;
        return NORMALIZE_FAILED;
    }
    memcpy(whole, buf, h.length);
    memcpy(whole + h.length, nb, nlen);
    free(nb);
    *out = whole;
    *out_len = h.length + nlen;
    if (*out_len == len && memcmp(whole, buf, len) == 0)
        return NORMALIZE_ALREADY;
    return NORMALIZE_DONE;
}

normalize_result normalize_pyc(int dirfd, const char *name, bool dry_run,
                               const char **why, int *err, const char **op)
{
    unsigned char *buf = NULL, *out = NULL;
    size_t len, out_len;
    struct stat st;
    *err = 0;
    *op = NULL;
    *why = NULL;
    if (read_whole_file(dirfd, name, true, &buf, &len, &st, op) != 0) {
        if (errno == EINVAL) {
            *why = "not a regular file";
            return NORMALIZE_SKIPPED;
        }
        *err = errno;
        return NORMALIZE_FAILED;
    }
    normalize_result r = normalize_buffer(buf, len, &out, &out_len, why);
    if (r == NORMALIZE_FAILED) {
        *err = errno;
        *op = "normalize";
    } else if (r == NORMALIZE_DONE && !dry_run) {
        int rc = replace_file(dirfd, name, &st, out, out_len, false, err, op);
        if (rc < 0)
            r = NORMALIZE_FAILED;
        else if (rc > 0) {
            r = NORMALIZE_SKIPPED;
            *why = "changed during the run";
        }
    }
    free(buf);
    free(out);
    return r;
}
